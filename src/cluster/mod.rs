//! Many nodes over Redis: the transport that carries shard messages between nodes, the
//! heartbeats that say which nodes are alive, and the view `/cluster` shows.
//!
//! # Shape
//!
//! Every object's owner is `crc32(id) % K` (node) and `(crc32(id) / K) % N` (shard
//! there): the engine routes by cluster index and does not care where a shard is. A
//! shard's outbox queues what it sends to another node's shards in one queue per node;
//! a pump per node (in `runtime`) encodes the queue as one [`batch::Batch`] and hands
//! it to [`Cluster::send`], so what one turn sends to one node leaves in one PUBLISH,
//! to `NAME:node:J`. Each node SUBSCRIBEs to its own channel, to `NAME:hb` and to
//! `NAME:api`; on a Redis Cluster the node channels are sharded (SSUBSCRIBE,
//! SPUBLISH, on the master of the channel's slot) and the others classic (`links`).
//!
//! # Why a thread of its own
//!
//! As with the backend hooks: a shard must never block, and the redis crate (a
//! maintained RESP client: multiplexed connections, pub/sub, reconnects on demand)
//! runs on tokio. The transport is one tokio current-thread runtime on a thread of its
//! own; shards reach it through a bounded channel ([`Cluster::send`] never waits: when
//! the channel holds [`OUTBOUND_CAPACITY`] batches or [`OUTBOUND_BYTES`] bytes the
//! batch is dropped, counted and logged, so a stalled Redis never grows a node's memory
//! past that bound) and it reaches them through one bounded channel per shard, whose
//! receiver a glommio task awaits. Every wait on Redis is bounded (`links`), so a
//! stalled Redis fails calls instead of hanging the transport.
//!
//! # Liveness
//!
//! Every node PUBLISHes a heartbeat to `NAME:hb` five times per `node_timeout`: its
//! index, a random incarnation chosen at start, and the digest of the node list. A node
//! unheard for `node_timeout` is gone ([`ShardInbound::NodeDown`]); a node heard again,
//! or heard with a new incarnation (it restarted), is up ([`ShardInbound::NodeUp`]:
//! the shards re-announce what they hold there). While Redis itself is unreachable no
//! node is declared gone ([`ShardInbound::ClusterDown`]); when it is back the shards
//! re-announce everything and, a settle time later, drop what nobody re-announced
//! ([`ShardInbound::ClusterUp`], [`ShardInbound::SweepStale`]). Redis counts as
//! unreachable when the subscription ends, when it carries nothing (not even this
//! node's own heartbeats) for `node_timeout`, and when the publisher lost batches to
//! it. While a node does not hear its own heartbeats (Redis is stalled or too slow to
//! carry them) it declares no other node gone: their silence says nothing then.

pub mod batch;
mod bus;
mod links;
mod redis_url;
mod state;
mod transport;

use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use redis_url::RedisUrl;
pub use state::{
    ClusterCounters, ClusterError, ClusterSettings, NodeState, OUTBOUND_BYTES, OUTBOUND_CAPACITY,
    ShardInbound, StatsSource,
};
use state::{Outgoing, Shared};

use crate::engine::NodeId;

/// The running transport, shared by the shards (cheap to clone).
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("settings", &self.shared.settings)
            .field("redis_connected", &self.redis_connected())
            .finish()
    }
}

/// What [`Cluster::start`] gives the runtime: the handle, and one receiver per shard.
pub struct Started {
    pub cluster: Cluster,
    pub inbound: Vec<tokio::sync::mpsc::Receiver<ShardInbound>>,
}

impl Cluster {
    /// Starts the transport for a node of `shards` shards and waits (about two
    /// heartbeats) to hear the other nodes, refusing to start when a live node lists
    /// other nodes or serves the same index. An unreachable Redis does not stop the
    /// start: the node serves its own objects and reports not ready until it connects.
    pub fn start(settings: ClusterSettings, shards: usize) -> Result<Started, ClusterError> {
        let (shared, inbound) = transport::start(settings, shards)?;
        Ok(Started {
            cluster: Cluster { shared },
            inbound,
        })
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.shared.settings
    }

    /// What this process's batches say it is (see [`batch::Batch`]).
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// Queues one encoded [`batch::Batch`] of `messages` for node `node`; never waits.
    /// False (and counted as dropped) when the queue is full or Redis is unreachable.
    pub fn send(&self, node: NodeId, messages: usize, payload: Vec<u8>) -> bool {
        let len = payload.len() as u64;
        let channel = self.shared.node_channels[node as usize].clone();
        if !self.enqueue(channel, payload, true) {
            return false;
        }
        let counters = &self.shared.counters;
        counters.batches_out.fetch_add(1, Ordering::Relaxed);
        counters
            .messages_out
            .fetch_add(messages as u64, Ordering::Relaxed);
        counters.bytes_out.fetch_add(len, Ordering::Relaxed);
        true
    }

    /// Queues one message (`sharded`: to a node channel); never waits. False (and
    /// counted as dropped) when the queue is full or Redis is unreachable.
    fn enqueue(&self, channel: Arc<str>, payload: Vec<u8>, sharded: bool) -> bool {
        let shared = &self.shared;
        if !shared.redis_connected.load(Ordering::Relaxed) {
            shared.counters.drop_batches(1, "Redis is unreachable");
            return false;
        }
        let len = payload.len();
        if !shared.hold(len) {
            shared
                .counters
                .drop_batches(1, "the queue toward Redis is full (bytes)");
            return false;
        }
        let out = Outgoing {
            channel,
            payload,
            sharded,
        };
        match shared.outbound.try_send(out) {
            Ok(()) => true,
            Err(_) => {
                shared.release(len);
                shared
                    .counters
                    .drop_batches(1, "the queue toward Redis is full");
                false
            }
        }
    }

    /// Whether the transport holds a Redis connection.
    pub fn redis_connected(&self) -> bool {
        self.shared.redis_connected.load(Ordering::Relaxed)
    }

    /// Names where this node's `/api/stats` figures come from; its heartbeats carry
    /// them from then on. A second call changes nothing.
    pub fn report_stats(&self, read: StatsSource) {
        let _ = self.shared.stats.set(read);
    }

    /// Each node's `/api/stats` figures as its last heartbeat carried them (`None`
    /// for this node and for nodes not heard yet).
    pub fn peer_stats(&self) -> Vec<Option<serde_json::Value>> {
        self.shared
            .peer_stats
            .lock()
            .expect("never poisoned")
            .clone()
    }

    /// Every node, with whether it is alive as this node sees it.
    pub fn nodes(&self) -> Vec<NodeState> {
        let alive = self.shared.alive.lock().expect("never poisoned").clone();
        let me = self.shared.settings.node;
        self.shared
            .settings
            .nodes
            .iter()
            .enumerate()
            .map(|(id, url)| NodeState {
                id: id as NodeId,
                url: url.clone(),
                alive: id as NodeId == me || alive[id],
            })
            .collect()
    }

    pub fn counters(&self) -> &ClusterCounters {
        &self.shared.counters
    }

    /// Batches waiting for Redis.
    pub fn queue_depth(&self) -> usize {
        OUTBOUND_CAPACITY - self.shared.outbound.capacity()
    }

    /// Payload bytes waiting for Redis (at most [`OUTBOUND_BYTES`]).
    pub fn queue_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }
}
