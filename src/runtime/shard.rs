//! One shard: its state, and the tasks that run it on its executor — the accept loop,
//! the mesh pumps and receivers, the keepalive sweep, and the drain at shutdown.

use std::cell::{OnceCell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future::{self, poll_fn};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::net::TcpListener;
use glommio::timer::Timer;
use glommio::{spawn_local, yield_if_needed};

use super::handover::{self, Handover, HandoverMesh};
use super::mesh::{self, Batch, MeshOut};
use super::metrics::{NodeFigures, Tally, publish};
use super::outbox::{ShardOutbox, frame};
use super::queries::Pending;
use crate::auth::Auth;
use crate::clock::now_ms;
use crate::config::Config;
use crate::engine::{ConnId, Engine, ShardId};
use crate::net::conns::{CloseReason, ConnTable, Dialect, Frame, Framing};
use crate::net::dispatch::{self, Session};
use crate::net::http::Routes;
use crate::net::sockjs_session::{self, HttpSessions};
use crate::net::{conn, ws::Opcode};
use crate::protocol::socketcluster;

/// Everything one shard owns, shared by its tasks (all on one thread).
pub struct Shard {
    pub id: ShardId,
    pub config: Arc<Config>,
    pub routes: Routes,
    /// Verifies client tokens; `None` when the server runs without a secret.
    pub auth: Option<Auth>,
    pub engine: RefCell<Engine>,
    pub conns: RefCell<ConnTable>,
    pub mesh: MeshOut,
    /// The one read buffer of the shard: connections read into it and keep only the
    /// leftover of a partial frame, so an idle connection holds no read buffer.
    pub read_buf: RefCell<Box<[u8]>>,
    /// Every shard's published figures; this shard writes `figures.shards[id]`.
    pub figures: Arc<NodeFigures>,
    /// This shard's traffic, counted on its thread.
    pub tally: Tally,
    /// HTTP API requests waiting for other shards.
    pub pending: Pending,
    /// SockJS sessions over HTTP that live on this shard.
    pub sockjs_sessions: RefCell<HttpSessions>,
    /// Where connections go to another shard (set once the mesh is joined; never with
    /// one shard).
    pub handover: OnceCell<Senders<Handover>>,
    pub stop: Arc<AtomicBool>,
}

impl Shard {
    /// Runs `f` with the engine and an outbox into this shard's connections and mesh.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine, &mut ShardOutbox<'_>) -> R) -> R {
        let mut engine = self.engine.borrow_mut();
        let mut conns = self.conns.borrow_mut();
        let mut out = ShardOutbox {
            conns: &mut conns,
            mesh: &self.mesh,
            pending: &self.pending,
        };
        f(&mut engine, &mut out)
    }

    /// Publishes this shard's figures for every shard to read.
    pub fn publish_figures(&self) {
        let engine = self.engine.borrow().stats();
        let conns = self.conns.borrow();
        let t = &self.tally;
        let f = &self.figures.shards[self.id];
        for (a, v) in f.by_dialect.iter().zip(conns.by_dialect) {
            publish(a, v);
        }
        for (a, c) in f.http.iter().zip(&t.http) {
            publish(a, c.get());
        }
        for (a, v) in f.mesh_depth.iter().zip(self.mesh.depths()) {
            publish(a, v);
        }
        publish(&f.messages_in, t.messages_in.get());
        publish(&f.messages_out, t.frames_out.get());
        publish(&f.bytes_in, t.bytes_in.get());
        publish(&f.bytes_out, t.bytes_out.get());
        publish(&f.writes, t.writes.get());
        publish(&f.slow_consumers, conns.slow_consumers);
        publish(
            &f.auth_failures,
            self.auth.as_ref().map_or(0, Auth::failures),
        );
        publish(&f.users, engine.owned_users as u64);
        publish(&f.channels, engine.owned_channels as u64);
        publish(&f.rooms, engine.owned_rooms as u64);
        publish(&f.documents, engine.owned_documents as u64);
    }

    /// Registers a connection (a WebSocket or a SockJS HTTP session) in the connection
    /// table, the figures and the engine, and greets it as its dialect does.
    pub fn open_conn(
        &self,
        dialect: Dialect,
        framing: Framing,
        socket: Option<RawFd>,
        session: &Session,
    ) -> ConnId {
        let id = self.conns.borrow_mut().insert(dialect, framing, socket);
        self.figures.shards[self.id]
            .connections
            .fetch_add(1, Ordering::Relaxed);
        if dialect != Dialect::Echo {
            self.engine.borrow_mut().open(id);
        }
        dispatch::on_open(self, id, session);
        id
    }

    /// Undoes [`Shard::open_conn`]. The table forgets the connection first: its socket
    /// is about to close, and the writer must never send to that descriptor (which the
    /// next accept may reuse) even if the engine's part below panics.
    pub fn close_conn(&self, id: ConnId) {
        let Some(dialect) = self.conns.borrow_mut().remove(id) else {
            return;
        };
        if dialect != Dialect::Echo {
            self.with_engine(|engine, out| engine.close(id, out));
        }
        self.figures.shards[self.id]
            .connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// What a shard needs to start, sent to its executor thread.
pub struct ShardSetup {
    pub id: ShardId,
    pub addr: SocketAddr,
    pub config: Arc<Config>,
    pub mesh: MeshBuilder<Batch, Full>,
    pub handovers: HandoverMesh,
    pub figures: Arc<NodeFigures>,
    pub stop: Arc<AtomicBool>,
    pub ready: std::sync::mpsc::Sender<Result<(), String>>,
}

/// Binds, joins the mesh, reports ready, serves until stopped, then drains.
pub async fn run(setup: ShardSetup) -> io::Result<()> {
    let listener = match TcpListener::bind(setup.addr) {
        Ok(l) => l,
        Err(e) => {
            let msg = format!("shard {}: cannot listen on {}: {e}", setup.id, setup.addr);
            let _ = setup.ready.send(Err(msg.clone()));
            return Err(io::Error::other(msg));
        }
    };
    let config = setup.config.clone();
    let shards = config.shards;
    let shard = Rc::new(Shard {
        id: setup.id,
        routes: Routes {
            echo: config.echo,
            sockjs_test_services: config.sockjs_test_services,
            worlds: config.worlds.clone(),
        },
        auth: config.auth_secret.as_ref().map(Auth::new),
        engine: RefCell::new(Engine::new(setup.id, shards, config.limits())),
        conns: RefCell::new(ConnTable::new(config.max_outbound_bytes)),
        mesh: MeshOut::new(shards),
        read_buf: RefCell::new(vec![0; 64 << 10].into_boxed_slice()),
        figures: setup.figures,
        tally: Tally::default(),
        pending: Pending::default(),
        handover: OnceCell::new(),
        sockjs_sessions: RefCell::default(),
        stop: setup.stop,
        config,
    });
    if shards > 1 {
        let (senders, mut receivers) = setup
            .mesh
            .join()
            .await
            .map_err(|_| io::Error::other("cannot join the shard mesh"))?;
        let senders = Rc::new(senders);
        for peer in (0..shards).filter(|p| *p != shard.id) {
            let (s, tx) = (shard.clone(), senders.clone());
            spawn_local(async move { s.mesh.pump(peer, tx).await }).detach();
        }
        for (_, rx) in receivers.streams() {
            let s = shard.clone();
            spawn_local(mesh::receive(rx, move |batch| {
                s.with_engine(|engine, out| {
                    for msg in batch {
                        engine.shard_msg(msg, out);
                    }
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
        let _ = shard.handover.set(senders);
    }
    shard.with_engine(|engine, out| engine.tick(now_ms(), out));
    spawn_local(write_ready(shard.clone())).detach();
    spawn_local(clock(shard.clone())).detach();
    spawn_local(keepalive(shard.clone())).detach();
    spawn_local(socketcluster_pings(shard.clone())).detach();
    spawn_local(expire_sockjs_sessions(shard.clone())).detach();
    let _ = setup.ready.send(Ok(()));

    accept_until_stopped(&shard, listener).await;
    drain(&shard).await;
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
            Some(Ok(stream)) => {
                spawn_local(conn::serve(shard.clone(), stream, Vec::new())).detach();
            }
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
            shard
                .conns
                .borrow_mut()
                .write_ready(WRITES_PER_TURN, |bytes, frames| tally.wrote(bytes, frames))
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
async fn clock(shard: Rc<Shard>) {
    let grace = shard.config.talker_idle_grace;
    let tick = (grace / 4).clamp(Duration::from_millis(20), Duration::from_millis(500));
    while !shard.stopping() {
        Timer::new(tick).await;
        shard.with_engine(|engine, out| engine.tick(now_ms(), out));
        shard.publish_figures();
    }
}

/// Pings connections silent for half the idle timeout and closes those silent for all
/// of it.
async fn keepalive(shard: Rc<Shard>) {
    let idle = shard.config.idle_timeout;
    let shortest = idle
        .min(shard.config.talker_ping_timeout)
        .min(shard.config.socketcluster_ping_timeout)
        .min(shard.config.sockjs_heartbeat_interval);
    let tick = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let ping = frame(Opcode::Ping, b"");
    while !shard.stopping() {
        Timer::new(tick).await;
        sweep_idle(&shard, idle, &ping);
        yield_if_needed().await;
    }
}

/// How long a SockJS WebSocket client has to answer a heartbeat ping.
const SOCKJS_PONG_WAIT: Duration = Duration::from_secs(10);

fn sweep_idle(shard: &Shard, idle: Duration, ping: &Frame) {
    let now = Instant::now();
    let talker_timeout = shard.config.talker_ping_timeout;
    let sc_timeout = shard.config.socketcluster_ping_timeout;
    let sockjs_heartbeat = shard.config.sockjs_heartbeat_interval;
    for (_, slot) in shard.conns.borrow_mut().iter_mut() {
        // SockJS HTTP sessions end by their own timer, and take no WebSocket pings.
        if slot.close.is_some() || slot.framing == Framing::SockJsHttp {
            continue;
        }
        let silent = now.saturating_duration_since(slot.last_heard);
        if slot.framing == Framing::SockJsWebSocket {
            // As sockjs-node: a WebSocket ping after each heartbeat interval (here: of
            // silence), and no answer within SOCKJS_PONG_WAIT after it ends the session.
            if slot.pinged && silent >= sockjs_heartbeat + SOCKJS_PONG_WAIT {
                slot.request_close(CloseReason {
                    code: 3000,
                    reason: "No response from heartbeat",
                });
            } else if !slot.pinged && silent >= sockjs_heartbeat {
                slot.pinged = true;
                slot.push_control(ping.clone());
            }
        } else if slot.dialect == Dialect::Talker {
            // Talker clients ping with {"type":"ping"}; WebSocket pings would let a
            // browser answer for a page that has stopped talking.
            if silent >= talker_timeout {
                slot.request_close(CloseReason::PING_TIMEOUT);
            }
        } else if slot.dialect == Dialect::SocketCluster {
            // Any message counts (the 14.x reference resets on every inbound one).
            if silent >= sc_timeout {
                slot.request_close(CloseReason {
                    code: socketcluster::CLOSE_PING_TIMEOUT,
                    reason: "",
                });
            }
        } else if silent >= idle {
            slot.request_close(CloseReason::IDLE);
        } else if silent >= idle / 2 && !slot.pinged {
            slot.pinged = true;
            slot.push_control(ping.clone());
        }
    }
}

/// Sends `#1` to every SocketCluster connection each ping interval: the real clients
/// close a connection on which no `#1` arrived within the announced ping timeout,
/// whatever else flows.
async fn socketcluster_pings(shard: Rc<Shard>) {
    let ping = frame(Opcode::Text, socketcluster::PING);
    while !shard.stopping() {
        Timer::new(shard.config.socketcluster_ping_interval).await;
        for (_, slot) in shard.conns.borrow_mut().iter_mut() {
            if slot.dialect == Dialect::SocketCluster && slot.close.is_none() {
                slot.push_control(ping.clone());
            }
        }
        yield_if_needed().await;
    }
}

/// Ends SockJS HTTP sessions that no request came back to in time.
async fn expire_sockjs_sessions(shard: Rc<Shard>) {
    let tick = (shard.config.sockjs_disconnect_delay / 4)
        .clamp(Duration::from_millis(10), Duration::from_millis(500));
    while !shard.stopping() {
        Timer::new(tick).await;
        sockjs_session::expire(&shard);
    }
}

/// Closes every connection with 1001 and waits (at most the grace period) for them to go.
async fn drain(shard: &Rc<Shard>) {
    for (_, slot) in shard.conns.borrow_mut().iter_mut() {
        slot.request_close(CloseReason::SHUTDOWN);
    }
    let deadline = Instant::now() + shard.config.shutdown_grace;
    // SockJS clients get their session's close frame, as WebSockets do: receivers
    // attached now send it, and a polling client gets it from its next poll; then the
    // HTTP sessions end.
    while sockjs_session::any_owed_close(shard) && Instant::now() < deadline {
        Timer::new(Duration::from_millis(10)).await;
    }
    sockjs_session::end_all(shard);
    while !shard.conns.borrow().is_empty() && Instant::now() < deadline {
        Timer::new(Duration::from_millis(10)).await;
    }
}
