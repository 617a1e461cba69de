//! Shard messages to and from other nodes: a pump per node ships what this shard
//! queued for that node's shards as one Redis message (see `cluster`), and one task
//! hands what the cluster transport receives to the engine.

use std::rc::Rc;
use std::time::Instant;

use futures_lite::future::poll_fn;
use tokio::sync::mpsc::Receiver;

use crate::cluster::batch::{self, Batch};
use crate::cluster::{Cluster, ShardInbound};
use crate::engine::NodeId;
use crate::net::bus;
use crate::net::shard::Shard;

/// Ships this shard's queue for `node` in batches, one Redis message each, forever.
pub async fn pump(shard: &Shard, node: NodeId, cluster: &Cluster) {
    let from = cluster.settings().node;
    loop {
        let msgs = poll_fn(|cx| shard.mesh.poll_node_batch(node, cx)).await;
        let count = msgs.len();
        let batch = Batch {
            from,
            incarnation: cluster.incarnation(),
            msgs,
        };
        cluster.send(node, count, batch::encode(&batch));
    }
}

/// Hands the engine what the transport tells this shard, until the transport ends.
pub async fn receive(shard: Rc<Shard>, mut inbound: Receiver<ShardInbound>) {
    while let Some(event) = inbound.recv().await {
        match event {
            ShardInbound::Api(command) => {
                glommio::spawn_local(bus::carry_out(shard.clone(), command)).detach();
            }
            // Another node's clock is not this one's: its batches are timed from here.
            ShardInbound::Msgs(msgs) => shard.handling(Some(Instant::now()), || {
                shard.with_engine(|engine, out| {
                    for msg in msgs {
                        engine.shard_msg(msg, out);
                    }
                })
            }),
            ShardInbound::NodeDown(node) => {
                shard.with_engine(|engine, out| engine.node_down(node, out))
            }
            ShardInbound::NodeUp(node) => {
                shard.with_engine(|engine, out| engine.node_up(node, out))
            }
            ShardInbound::ClusterDown => shard.with_engine(|engine, out| engine.cluster_down(out)),
            ShardInbound::ClusterUp => shard.with_engine(|engine, out| engine.cluster_up(out)),
            ShardInbound::SweepStale => shard.with_engine(|engine, out| engine.sweep_stale(out)),
        }
    }
}
