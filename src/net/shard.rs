//! What the connections of one shard share (all on the shard's thread): the engine, the
//! connection table, the queues toward other shards, the API's waiting requests, the
//! SockJS sessions and the figures. The runtime builds it and runs the shard's tasks
//! around it; everything in `net` reaches the shard through it.

use std::cell::{Cell, OnceCell, RefCell};
use std::io;
use std::rc::Weak;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

use super::address_rate::ConnectionRate;
use super::conns::ConnTable;
use super::hook_gate::HookGate;
use super::http::Routes;
use super::metrics::{BUSIEST_CHANNELS, NodeFigures, Tally, publish};
use super::outbox::{MeshOut, ShardOutbox};
use super::queries::Pending;
use super::sockjs_table::HttpSessions;
use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::engine::{ConnId, Engine, Placement, ShardId};
use crate::hooks::Webhooks;
use crate::protocol;

/// The settings the network layer reads, built from the server's configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The cluster's shape: this node's shards, and the owner of a SockJS session.
    pub placement: Placement,
    /// Largest WebSocket message (and SockJS send) accepted.
    pub max_message_bytes: usize,
    /// Bytes queued for one connection before it is closed as a slow consumer.
    pub max_outbound_bytes: usize,
    /// Time a new connection (and each request on it) has to send its request.
    pub handshake_timeout: Duration,
    /// How often an idle SockJS receiver gets `h`.
    pub sockjs_heartbeat_interval: Duration,
    /// How long a SockJS HTTP session waits for its next request.
    pub sockjs_disconnect_delay: Duration,
    /// SockJS HTTP sessions one shard holds.
    pub sockjs_max_sessions: usize,
    /// The key application servers present to the HTTP API.
    pub api_key: Option<Box<str>>,
    /// The API is open without a key (development mode: no auth secret, loopback).
    pub api_open_without_key: bool,
    /// Who may see the dashboard.
    pub dashboard: super::dashboard_access::Guard,
}

/// Passes a connection, with the bytes already read from it, to another shard of this
/// node (a SockJS request for a session that lives there). The runtime provides it once
/// the shards are joined; a single shard has none.
pub type HandOver = Box<dyn Fn(ShardId, &TcpStream, Vec<u8>) -> Result<(), HandoverError>>;

/// Why a connection could not be handed to another shard (the client gets 503).
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("cannot duplicate the socket: {0}")]
    Duplicate(io::Error),
    #[error("shard {0} takes no more connections now (its queue is full or closed)")]
    Busy(ShardId),
}

/// One shard's shared state (see the module doc).
pub struct Shard {
    pub id: ShardId,
    pub settings: Settings,
    /// What the dialects read.
    pub dialects: protocol::Settings,
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
    /// The per-address limit on new connections, shared by the process's shards.
    pub connection_rate: Arc<ConnectionRate>,
    /// This shard's traffic, counted on its thread.
    pub tally: Tally,
    /// HTTP API requests waiting for other shards.
    pub pending: Pending,
    /// SockJS sessions over HTTP that live on this shard.
    pub sockjs_sessions: RefCell<HttpSessions>,
    /// See [`HandOver`].
    pub handover: OnceCell<HandOver>,
    pub stop: Arc<AtomicBool>,
    /// The backend hooks and what waits for them.
    pub hooks: HookGate,
    /// Where the owners' notices go, when the server sends webhooks.
    pub webhooks: Option<Webhooks>,
    /// The cluster transport, when the server has a Redis: taps go out through it.
    pub cluster: Option<Cluster>,
    /// This shard, for the tasks it starts (a hook's answer); set once it is built.
    pub this: OnceCell<Weak<Shard>>,
    /// When the input being handled reached the node (see [`Shard::handling`]);
    /// `None` outside one.
    pub origin: Cell<Option<Instant>>,
}

impl Shard {
    /// Runs `f` as the handling of an input that reached the node at `origin` (a
    /// client's frame when it was read, a peer shard's batch with its own origin):
    /// the publications its engine calls deliver here, or send to peer shards, are
    /// timed from then in `turntable_delivery_latency_seconds`.
    pub fn handling<R>(&self, origin: Option<Instant>, f: impl FnOnce() -> R) -> R {
        /// Puts the outer origin back however `f` ends (a caught panic included), so
        /// a timer's engine call never times from an input handled long ago.
        struct Restore<'a>(&'a Cell<Option<Instant>>, Option<Instant>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _restore = Restore(&self.origin, self.origin.replace(origin));
        f()
    }

    /// Runs `f` with the engine and an outbox into this shard's connections and mesh.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine, &mut ShardOutbox<'_>) -> R) -> R {
        let mut engine = self.engine.borrow_mut();
        let mut conns = self.conns.borrow_mut();
        let mut out = ShardOutbox {
            conns: &mut conns,
            mesh: &self.mesh,
            pending: &self.pending,
            webhooks: self.webhooks.as_ref(),
            cluster: self.cluster.as_ref(),
            origin: self.origin.get(),
        };
        f(&mut engine, &mut out)
    }

    /// Undoes `inbound::open`. The table forgets the connection first: its socket
    /// is about to close, and the writer must never send to that descriptor (which the
    /// next accept may reuse) even if the engine's part below panics.
    pub fn close_conn(&self, id: ConnId) {
        let Some(dialect) = self.conns.borrow_mut().remove(id) else {
            return;
        };
        self.detach(id, dialect);
        self.figures.shards[self.id]
            .connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Takes a connection out of the engine as soon as it is closing, so rooms and
    /// presence see it gone now rather than after the closing handshake.
    pub fn detach(&self, id: ConnId, dialect: protocol::DialectKind) {
        if dialect.joins_engine() {
            self.with_engine(|engine, out| engine.close(id, out));
        }
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
            &f.connections_rate_limited,
            t.connections_rate_limited.get(),
        );
        publish(
            &f.auth_failures,
            self.auth.as_ref().map_or(0, Auth::failures),
        );
        publish(&f.users, engine.owned_users as u64);
        publish(&f.channels, engine.owned_channels as u64);
        publish(&f.rooms, engine.owned_rooms as u64);
        publish(&f.documents, engine.owned_documents as u64);
        f.handshake.publish(&t.handshake);
        f.delivery.publish(&t.delivery);
        let watched = self.figures.dashboards.load(Ordering::Relaxed) > 0;
        let mut busiest = f.busiest.lock().unwrap_or_else(|e| e.into_inner());
        if watched {
            *busiest = self.engine.borrow().busiest_channels(BUSIEST_CHANNELS);
        } else if !busiest.is_empty() {
            busiest.clear();
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
