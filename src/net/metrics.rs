//! Node-wide figures for `/metrics`, `/api/stats` and `/healthz`, readable from any
//! shard without a lock.
//!
//! Each shard counts its own traffic in plain cells on its own thread ([`Tally`], and
//! the connection table's counters), so the hot path never touches an atomic; the
//! shard's clock tick publishes a snapshot into the shard's [`ShardFigures`] slot
//! (relaxed atomics, one cache-line-aligned slot per shard, written only by its shard).
//! Counters therefore lag by at most one tick (≤ 500 ms). Open connections are the
//! exception: counted live, since health checks and tests read them right after a
//! connect. `prometheus` writes them in the text formats of `/metrics`.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::http::STATUSES;
use super::latency::{Histogram, HistogramFigures};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::engine::channels::ChannelFigures;
use crate::protocol::DialectKind;

/// Channels each shard lists as its busiest while a dashboard watches.
pub const BUSIEST_CHANNELS: usize = 10;

/// One shard's traffic, counted on its thread: cells, never shared.
#[derive(Debug, Default)]
pub struct Tally {
    pub messages_in: Cell<u64>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub frames_out: Cell<u64>,
    /// Writes (`sendmsg` calls) that carried them: frames per write is the coalescing.
    pub writes: Cell<u64>,
    /// Responses by status, indexed like [`STATUSES`] (the statuses the server answers
    /// with) and anything else last, as `other`.
    pub http: [Cell<u64>; STATUSES.len() + 1],
    /// New connections refused by the per-address rate (answered 429 or closed unread).
    pub connections_rate_limited: Cell<u64>,
    /// From a WebSocket connection's accept (or its previous response) to its 101
    /// written.
    pub handshake: Histogram,
    /// From a publication reaching the node to its frames written to this shard's
    /// subscribers (see `Shard::handling`).
    pub delivery: Histogram,
}

impl Tally {
    /// Counts one WebSocket message from a client.
    pub fn message_in(&self) {
        Tally::add(&self.messages_in, 1);
    }

    /// Counts `bytes` written to a client, which finished `frames` frames.
    pub fn wrote(&self, bytes: usize, frames: usize) {
        Tally::add(&self.bytes_out, bytes);
        Tally::add(&self.frames_out, frames);
        Tally::add(&self.writes, 1);
    }

    /// Counts a new connection refused by the per-address rate.
    pub fn connection_rate_limited(&self) {
        Tally::add(&self.connections_rate_limited, 1);
    }

    pub fn add(cell: &Cell<u64>, n: usize) {
        cell.set(cell.get() + n as u64);
    }

    /// Counts an HTTP response (a 101 included) by its status.
    pub fn http_response(&self, status: u16) {
        let i = STATUSES
            .iter()
            .position(|(code, _)| *code == status)
            .unwrap_or(STATUSES.len());
        Tally::add(&self.http[i], 1);
    }
}

/// What one shard publishes on its tick (see the module doc); only that shard writes
/// it, with [`publish`].
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ShardFigures {
    /// Open WebSocket connections, counted live.
    pub connections: AtomicUsize,
    pub by_dialect: [AtomicU64; DialectKind::COUNT],
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub writes: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub connections_rate_limited: AtomicU64,
    pub auth_failures: AtomicU64,
    pub http: [AtomicU64; STATUSES.len() + 1],
    /// Messages waiting for each peer shard.
    pub mesh_depth: Box<[AtomicU64]>,
    pub users: AtomicU64,
    pub channels: AtomicU64,
    pub rooms: AtomicU64,
    pub documents: AtomicU64,
    pub handshake: HistogramFigures,
    pub delivery: HistogramFigures,
    /// The channels this shard owns with the most subscribers, at most
    /// [`BUSIEST_CHANNELS`]; kept only while a dashboard watches
    /// ([`NodeFigures::dashboards`]), empty otherwise.
    pub busiest: Mutex<Vec<ChannelFigures>>,
}

impl ShardFigures {
    fn new(shards: usize) -> ShardFigures {
        ShardFigures {
            mesh_depth: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            ..ShardFigures::default()
        }
    }
}

/// Every shard's figures.
#[derive(Debug)]
pub struct NodeFigures {
    pub shards: Box<[ShardFigures]>,
    /// The cluster transport, when this node is one of several.
    pub cluster: Option<Cluster>,
    /// Set once every shard accepts ([`NodeFigures::set_ready`]): `/readyz` says so.
    ready: AtomicBool,
    /// Dashboard event streams open on this node (see `net::dashboard`): the shards
    /// list their busiest channels only while there is one.
    pub dashboards: AtomicUsize,
}

/// Stores a shard's figure (only the owning shard calls this).
pub fn publish(a: &AtomicU64, v: u64) {
    a.store(v, Ordering::Relaxed);
}

pub(super) fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl NodeFigures {
    pub fn new(shards: usize, cluster: Option<Cluster>) -> NodeFigures {
        NodeFigures {
            shards: (0..shards).map(|_| ShardFigures::new(shards)).collect(),
            cluster,
            ready: AtomicBool::new(false),
            dashboards: AtomicUsize::new(0),
        }
    }

    /// Records that every shard accepts connections.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Whether every shard has started accepting.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Open WebSocket connections per shard, live.
    pub fn connections(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|s| s.connections.load(Ordering::Relaxed))
            .collect()
    }

    /// This node's figures: each shard's and their totals (`/api/stats` without a
    /// cluster, and what this node's heartbeats carry in one).
    pub fn node_stats(&self) -> Value {
        let shards: Vec<Value> = self
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "shard": i,
                    "connections": s.connections.load(Ordering::Relaxed),
                    "users": get(&s.users),
                    "channels": get(&s.channels),
                    "rooms": get(&s.rooms),
                    "documents": get(&s.documents),
                    "messages_in": get(&s.messages_in),
                    "messages_out": get(&s.messages_out),
                    "bytes_in": get(&s.bytes_in),
                    "bytes_out": get(&s.bytes_out),
                })
            })
            .collect();
        let mut stats = json!({ "shards": shards });
        let total = |f: &dyn Fn(&ShardFigures) -> u64| self.shards.iter().map(f).sum::<u64>();
        for (key, value) in [
            (
                "connections",
                self.connections().iter().sum::<usize>() as u64,
            ),
            ("users", total(&|s| get(&s.users))),
            ("channels", total(&|s| get(&s.channels))),
            ("messages_in", total(&|s| get(&s.messages_in))),
            ("messages_out", total(&|s| get(&s.messages_out))),
        ] {
            stats[key] = value.into();
        }
        stats
    }

    /// The `/api/stats` body: this node's figures and, in a cluster, `node` (this
    /// node's index), `nodes` (every node's figures, the others' as of their last
    /// heartbeat; none for a node that is not alive) and `cluster` (the totals over
    /// the live nodes heard).
    pub fn stats(&self) -> Value {
        let mut stats = self.node_stats();
        let Some(cluster) = &self.cluster else {
            return stats;
        };
        let me = cluster.settings().node;
        let heard = cluster.peer_stats();
        let mut totals = json!({});
        let nodes: Vec<Value> = cluster
            .nodes()
            .into_iter()
            .map(|node| {
                let figures = if node.id == me {
                    Some(stats.clone())
                } else if node.alive {
                    heard.get(node.id as usize).cloned().flatten()
                } else {
                    None
                };
                let mut entry = figures.unwrap_or_else(|| json!({}));
                for key in TOTALS {
                    let sum = totals[key].as_u64().unwrap_or(0) + entry[key].as_u64().unwrap_or(0);
                    totals[key] = sum.into();
                }
                entry["node"] = node.id.into();
                entry["alive"] = node.alive.into();
                entry
            })
            .collect();
        stats["node"] = me.into();
        stats["nodes"] = nodes.into();
        stats["cluster"] = totals;
        stats
    }
}

/// The figures `/api/stats` sums over shards, and over nodes in a cluster.
const TOTALS: [&str; 5] = [
    "connections",
    "users",
    "channels",
    "messages_in",
    "messages_out",
];
