//! The transport's vocabulary, shared by its handle (`cluster`) and its thread
//! (`transport`): the settings, what shards are told, the refusals, the counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;

use super::redis_url::RedisUrl;
use crate::engine::{NodeId, ShardMsg};

/// Batches the transport holds for Redis before `Cluster::send` drops more.
pub const OUTBOUND_CAPACITY: usize = 4096;

/// Bytes of payload the transport holds for Redis before `Cluster::send` drops more,
/// however few the batches: with large batches the count alone would not bound memory.
pub const OUTBOUND_BYTES: usize = 16 << 20;

/// Batches the transport holds for one shard before it stops reading Redis.
pub(super) const INBOUND_CAPACITY: usize = 1024;

/// How this node joins the others.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// The prefix of every Redis channel (`cluster_name`).
    pub name: Box<str>,
    /// Every node's public base URL, in order.
    pub nodes: Vec<Box<str>>,
    /// This node's index in `nodes`.
    pub node: NodeId,
    pub redis: RedisUrl,
    /// Heartbeat silence after which a node is gone.
    pub node_timeout: Duration,
}

impl ClusterSettings {
    /// The digest of the node list every node announces: equal lists, equal digests.
    pub fn digest(&self) -> String {
        let mut hasher = crc32fast::Hasher::new();
        for url in &self.nodes {
            hasher.update(url.as_bytes());
            hasher.update(b"\n");
        }
        format!("{:08x}", hasher.finalize())
    }

    /// The channel node `node` receives shard messages on.
    pub fn node_channel(&self, node: NodeId) -> String {
        format!("{}:node:{node}", self.name)
    }

    /// The channel every node's heartbeats go to.
    pub fn heartbeat_channel(&self) -> String {
        format!("{}:hb", self.name)
    }

    /// The channel backends PUBLISH commands to (see `bus`).
    pub fn api_channel(&self) -> String {
        format!("{}:api", self.name)
    }

    /// The channel a tapped channel's activity goes to (see `bus`).
    pub fn tap_channel(&self, channel: &str) -> String {
        format!("{}:tap:{channel}", self.name)
    }

    /// Time between two heartbeats of one node.
    pub fn heartbeat_interval(&self) -> Duration {
        self.node_timeout / 5
    }
}

/// What the transport tells one shard.
#[derive(Debug)]
pub enum ShardInbound {
    /// Shard messages from another node, in the order it sent them.
    Msgs(Vec<ShardMsg>),
    /// A node stopped answering: treat its connections as closed.
    NodeDown(NodeId),
    /// A node answers (again, or as a new process): re-announce what lives there.
    NodeUp(NodeId),
    /// Redis is unreachable: other nodes cannot be reached, nothing is forgotten.
    ClusterDown,
    /// Redis is back: re-announce everything to every node.
    ClusterUp,
    /// A settle time after [`ShardInbound::ClusterUp`]: drop what nobody re-announced.
    SweepStale,
    /// A backend's command from `NAME:api`, as it came (see `bus`).
    Api(Vec<u8>),
}

/// Why this node cannot join the cluster; shown on one line.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Another live node announces another node list.
    #[error(
        "node {me} lists nodes [{mine}] (digest {my_digest}) but live node {peer} lists \
         [{theirs}] (digest {their_digest}): give every node the same --nodes, in the same order"
    )]
    NodeListMismatch {
        me: NodeId,
        mine: String,
        my_digest: String,
        peer: NodeId,
        theirs: String,
        their_digest: String,
    },
    /// Another live process already serves this node's index.
    #[error(
        "node {node} is already running (another process announces it on Redis {redis}): \
         give this one its own --node-id"
    )]
    NodeIdTaken { node: NodeId, redis: String },
    /// The transport thread could not start.
    #[error("cannot start the cluster transport thread: {0}")]
    Thread(std::io::Error),
}

/// One node as the view holds it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeState {
    pub id: NodeId,
    pub url: Box<str>,
    pub alive: bool,
}

/// Counts for /metrics.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub batches_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub batches_in: AtomicU64,
    /// Batches dropped: the queue toward Redis was full, or Redis unreachable.
    pub dropped: AtomicU64,
    /// Batches from other nodes that did not decode.
    pub malformed: AtomicU64,
    /// Times the transport (re)connected to Redis.
    pub connects: AtomicU64,
    /// Backend bus commands this node carried out.
    pub bus_commands: AtomicU64,
    /// Backend bus commands this node refused (malformed, unknown, bad params).
    pub bus_refused: AtomicU64,
    /// Tap messages queued for Redis.
    pub taps_out: AtomicU64,
}

impl ClusterCounters {
    /// Counts `batches` dropped, and says so in the log for the first and then every
    /// thousandth.
    pub(super) fn drop_batches(&self, batches: u64, why: &str) {
        let before = self.dropped.fetch_add(batches, Ordering::Relaxed);
        if before == 0 || before / 1000 != (before + batches) / 1000 {
            tracing::warn!(
                dropped = before + batches,
                "cross-node messages dropped: {why}"
            );
        }
    }
}

/// What the shards, `/cluster`, `/healthz` and `/metrics` read of the transport.
pub(super) struct Shared {
    pub(super) settings: ClusterSettings,
    /// `NAME:node:J` for every node J, named once: every batch to J goes there.
    pub(super) node_channels: Box<[Arc<str>]>,
    /// The digest of the node list, as heartbeats carry it.
    pub(super) digest: String,
    /// This process's incarnation: when it started, in µs since the epoch.
    pub(super) incarnation: u64,
    pub(super) redis_connected: AtomicBool,
    pub(super) alive: Mutex<Vec<bool>>,
    pub(super) counters: ClusterCounters,
    pub(super) outbound: tokio::sync::mpsc::Sender<Outgoing>,
    /// Payload bytes in `outbound`, at most about [`OUTBOUND_BYTES`].
    pub(super) queued_bytes: AtomicUsize,
    /// This node's figures for its heartbeats, once the runtime names where they are.
    pub(super) stats: OnceLock<StatsSource>,
    /// Each node's figures as its last heartbeat carried them.
    pub(super) peer_stats: Mutex<Vec<Option<serde_json::Value>>>,
}

/// Reads this node's `/api/stats` figures for a heartbeat (see [`Shared::stats`]).
pub type StatsSource = Box<dyn Fn() -> Option<serde_json::Value> + Send + Sync>;

impl Shared {
    /// Counts `len` more bytes queued toward Redis; false (and nothing counted) if
    /// that would pass [`OUTBOUND_BYTES`].
    pub(super) fn hold(&self, len: usize) -> bool {
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before + len > OUTBOUND_BYTES {
            self.release(len);
            return false;
        }
        true
    }

    /// Counts `len` bytes taken out of the queue toward Redis.
    pub(super) fn release(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
    }
}

/// One message for the transport's publisher.
pub(super) struct Outgoing {
    pub channel: Arc<str>,
    pub payload: Vec<u8>,
    /// Whether it goes to a node channel, which is sharded on a Redis Cluster
    /// (SPUBLISH); the others are classic (PUBLISH). See `links`.
    pub sharded: bool,
}
