//! One shard's tasks on its executor: the accept loop, the mesh pumps and receivers,
//! the shard's writer, the clock, the keepalive timers (`keepalive`), and the drain at
//! shutdown — around the state they share (`net::shard::Shard`).

pub mod keepalive;

use std::cell::{Cell, OnceCell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future::{self, poll_fn};
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::net::TcpListener;
use glommio::spawn_local;
use glommio::timer::Timer;

use super::handover::{self, HandoverMesh};
use super::mesh::{self, Batch};
use super::nodes;
use crate::clock::now_ms;
use crate::cluster::{Cluster, ShardInbound};
use crate::config::Config;
use crate::engine::{Engine, ShardAddr, ShardId};
use crate::hooks::{Hooks, Webhooks};
use crate::net::address_rate::ConnectionRate;
use crate::net::conn;
use crate::net::conns::ConnTable;
use crate::net::dashboard_access::Guard;
use crate::net::hook_gate::HookGate;
use crate::net::http::Routes;
use crate::net::metrics::{NodeFigures, Tally};
use crate::net::origins::AllowedOrigins;
use crate::net::outbox::MeshOut;
use crate::net::queries::Pending;
use crate::net::rate::RateLimit;
use crate::net::shard::{self, Shard};
use crate::net::sockjs_session;
use crate::protocol::CloseReason;

/// What a shard needs to start, sent to its executor thread.
pub struct ShardSetup {
    pub id: ShardId,
    pub addr: SocketAddr,
    pub config: Arc<Config>,
    /// The per-address limit on new connections, shared by the process's shards.
    pub connection_rate: Arc<ConnectionRate>,
    pub mesh: MeshBuilder<Batch, Full>,
    pub handovers: HandoverMesh,
    pub figures: Arc<NodeFigures>,
    pub stop: Arc<AtomicBool>,
    /// Where the shard reports that it serves, or why it cannot.
    pub ready: std::sync::mpsc::Sender<Result<(), ListenError>>,
    /// The backend hook thread, when a hook is configured.
    pub hooks: Option<Hooks>,
    /// The webhook sender, when webhooks are configured.
    pub webhooks: Option<Webhooks>,
    /// The cluster transport, when this node is one of several.
    pub cluster: Option<Cluster>,
    /// What the transport tells this shard.
    pub cluster_inbound: Option<tokio::sync::mpsc::Receiver<ShardInbound>>,
}

/// A shard could not bind the address the process's shards share.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: cannot listen on {addr}: {source}")]
pub struct ListenError {
    pub shard: ShardId,
    pub addr: SocketAddr,
    pub source: io::Error,
}

/// Binds, joins the mesh, reports ready, serves until stopped, then drains.
pub async fn run(setup: ShardSetup) -> io::Result<()> {
    let listener = match TcpListener::bind(setup.addr) {
        Ok(l) => l,
        Err(e) => {
            let (shard, addr) = (setup.id, setup.addr);
            let source = io::Error::from(e);
            let returned = io::Error::new(source.kind(), source.to_string());
            let _ = setup.ready.send(Err(ListenError {
                shard,
                addr,
                source,
            }));
            return Err(returned);
        }
    };
    let config = setup.config.clone();
    let shards = config.shards;
    let shard = Rc::new(Shard {
        id: setup.id,
        settings: net_settings(&config),
        dialects: config.dialect_settings(),
        routes: Routes {
            echo: config.echo,
            origins: AllowedOrigins::new(&config.allowed_origins),
            sockjs_test_services: config.sockjs_test_services,
        },
        auth: config.auth(),
        engine: RefCell::new(Engine::new(
            ShardAddr {
                node: config.node(),
                shard: setup.id,
            },
            config.placement(),
            config.limits(),
        )),
        conns: RefCell::new(ConnTable::new(
            config.max_outbound_bytes,
            RateLimit::new(config.message_rate, config.message_burst),
        )),
        mesh: MeshOut::new(config.placement(), config.node()),
        read_buf: RefCell::new(vec![0; 64 << 10].into_boxed_slice()),
        figures: setup.figures,
        connection_rate: setup.connection_rate,
        tally: Tally::default(),
        pending: Pending::default(),
        handover: Default::default(),
        sockjs_sessions: RefCell::default(),
        stop: setup.stop,
        hooks: HookGate::new(
            // A hook thread started for webhooks alone asks nothing.
            setup
                .hooks
                .as_ref()
                .filter(|_| config.calls_backend())
                .map(Hooks::client),
            config.hook_timeout,
            Arc::new(config.effective_namespaces()),
            config.rpc_hook.as_deref().map(Box::from),
            config.connect_hook.as_deref().map(Box::from),
        ),
        this: OnceCell::new(),
        webhooks: setup.webhooks.clone(),
        cluster: setup.cluster.clone(),
        origin: Cell::new(None),
    });
    let _ = shard.this.set(Rc::downgrade(&shard));
    // The clock first: whatever the engine handles from here on (a re-announcement from
    // another node may come before this shard serves) is stamped with the time.
    shard.with_engine(|engine, out| engine.tick(now_ms(), out));
    if shards > 1 {
        let (senders, mut receivers) = setup
            .mesh
            .join()
            .await
            .map_err(|_| io::Error::other("cannot join the shard mesh"))?;
        let senders = Rc::new(senders);
        for peer in (0..shards).filter(|p| *p != shard.id) {
            let (s, tx) = (shard.clone(), senders.clone());
            spawn_local(async move { mesh::pump(&s.mesh, peer, tx).await }).detach();
        }
        for (_, rx) in receivers.streams() {
            let s = shard.clone();
            spawn_local(mesh::receive(rx, move |batch| {
                s.handling(batch.origin, || {
                    s.with_engine(|engine, out| {
                        for msg in batch.msgs {
                            engine.shard_msg(msg, out);
                        }
                    })
                })
            }))
            .detach();
        }
        let (senders, mut receivers) = setup
            .handovers
            .join()
            .await
            .map_err(|_| io::Error::other("cannot join the handover mesh"))?;
        for (_, rx) in receivers.streams() {
            spawn_local(handover::receive(shard.clone(), rx)).detach();
        }
        let hand_over: shard::HandOver =
            Box::new(move |to, stream, read| handover::hand_over(&senders, to, stream, read));
        let _ = shard.handover.set(hand_over);
    }
    if let Some(cluster) = setup.cluster {
        let placement = config.placement();
        for node in (0..placement.nodes()).filter(|&n| n != config.node()) {
            let (s, c) = (shard.clone(), cluster.clone());
            spawn_local(async move { nodes::pump(&s, node, &c).await }).detach();
        }
    }
    if let Some(inbound) = setup.cluster_inbound {
        spawn_local(nodes::receive(shard.clone(), inbound)).detach();
    }
    spawn_local(write_ready(shard.clone())).detach();
    spawn_local(clock(shard.clone(), config.talker_idle_grace)).detach();
    spawn_local(keepalive::run(shard.clone())).detach();
    spawn_local(expire_sockjs_sessions(shard.clone())).detach();
    let _ = setup.ready.send(Ok(()));

    accept_until_stopped(&shard, listener).await;
    drain(&shard, config.shutdown_grace).await;
    Ok(())
}

async fn accept_until_stopped(shard: &Rc<Shard>, listener: TcpListener) {
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            while !shard.stopping() {
                Timer::new(Duration::from_millis(100)).await;
            }
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => conn::accept(shard, stream),
            Some(Err(e)) => {
                // EMFILE and friends: back off instead of spinning, warn at most every 10 s.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(shard = shard.id, error = %e, "accept failed; backing off");
                    last_warning = Some(Instant::now());
                }
                Timer::new(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connections the writer sends to before it lets the shard's other runnable tasks
/// have a turn (~1 ms of sends on loopback), as the per-connection tasks it replaced
/// were interleaved with them.
const WRITES_PER_TURN: usize = 256;

/// The shard's writer: once a turn's producers have queued their frames, sends each
/// connection that got some its whole queue in one vectored send (see `net::conns`).
/// A panic here must not end the writer: every WebSocket of the shard depends on it.
async fn write_ready(shard: Rc<Shard>) {
    loop {
        poll_fn(|cx| shard.conns.borrow_mut().poll_ready(cx)).await;
        let tally = &shard.tally;
        let turn = || {
            let mut conns = shard.conns.borrow_mut();
            let more =
                conns.write_ready(WRITES_PER_TURN, |bytes, frames| tally.wrote(bytes, frames));
            conns.observe_delivered(&tally.delivery);
            more
        };
        let more =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(turn)).unwrap_or_else(|_| {
                tracing::error!(shard = shard.id, "the shard's writer panicked; carrying on");
                shard.conns.borrow_mut().reset_writer();
                false
            });
        if more {
            future::yield_now().await;
        }
    }
}

/// Gives the engine the time: it stamps events with it and ends chat room grace periods.
async fn clock(shard: Rc<Shard>, grace: Duration) {
    let tick = (grace / 4).clamp(Duration::from_millis(20), Duration::from_millis(500));
    while !shard.stopping() {
        Timer::new(tick).await;
        shard.with_engine(|engine, out| engine.tick(now_ms(), out));
        shard.publish_figures();
    }
}

/// The network layer's settings from the configuration.
fn net_settings(config: &Config) -> shard::Settings {
    let api_open_without_key = config.auth_secret.is_none() && config.listen.ip().is_loopback();
    shard::Settings {
        placement: config.placement(),
        max_message_bytes: config.max_message_bytes,
        max_outbound_bytes: config.max_outbound_bytes,
        handshake_timeout: config.handshake_timeout,
        sockjs_heartbeat_interval: config.sockjs_heartbeat_interval,
        sockjs_disconnect_delay: config.sockjs_disconnect_delay,
        sockjs_max_sessions: config.sockjs_max_sessions,
        api_key: config.api_key.as_deref().map(Box::from),
        api_open_without_key,
        dashboard: Guard::new(
            config
                .dashboard_key
                .as_deref()
                .or(config.api_key.as_deref()),
            api_open_without_key,
        ),
    }
}

/// Ends SockJS HTTP sessions that no request came back to in time.
async fn expire_sockjs_sessions(shard: Rc<Shard>) {
    let tick = (shard.settings.sockjs_disconnect_delay / 4)
        .clamp(Duration::from_millis(10), Duration::from_millis(500));
    while !shard.stopping() {
        Timer::new(tick).await;
        sockjs_session::expire(&shard);
    }
}

/// Closes every connection with 1001 and waits (at most the grace period) for them, and
/// the node's dashboard streams, to go.
async fn drain(shard: &Rc<Shard>, grace: Duration) {
    for (_, slot) in shard.conns.borrow_mut().iter_mut() {
        slot.request_close(CloseReason::SHUTDOWN);
    }
    let deadline = Instant::now() + grace;
    // SockJS clients get their session's close frame, as WebSockets do: receivers
    // attached now send it, and a polling client gets it from its next poll; then the
    // HTTP sessions end.
    while sockjs_session::any_owed_close(shard) && Instant::now() < deadline {
        Timer::new(Duration::from_millis(10)).await;
    }
    sockjs_session::end_all(shard);
    // Dashboard streams see the stop between two snapshots and close.
    while (!shard.conns.borrow().is_empty() || shard.figures.dashboards.load(Ordering::Relaxed) > 0)
        && Instant::now() < deadline
    {
        Timer::new(Duration::from_millis(10)).await;
    }
}
