//! The dashboard's figures: a JSON snapshot of this node, read from the figures its
//! shards publish for `/metrics` (nothing is counted twice, and the hot path does no
//! more), with rates from the difference to the previous snapshot of the same stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ahash::AHashMap;
use serde_json::{Value, json};

use super::metrics::{BUSIEST_CHANNELS, NodeFigures, ShardFigures};
use crate::cluster::Cluster;
use crate::engine::channels::ChannelFigures;
use crate::protocol::DialectKind;

/// The counters of one snapshot, which the next turns into rates.
#[derive(Debug)]
pub struct Counted {
    at: Instant,
    messages_in: u64,
    messages_out: u64,
    writes: u64,
    /// Each listed channel's publications.
    publications: AHashMap<Box<str>, u64>,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The node's figures at `now`, with rates since `last` (`null` without one), and
/// what this snapshot counted.
///
/// `{"node","connections","dialects":{NAME:N},"shards":[{"shard","connections",
/// "dialects","mesh_queue_depth","messages_in","messages_out"}],"messages_in",
/// "messages_out","writes","slow_consumer_disconnects","rates":{"messages_in",
/// "messages_out","writes","frames_per_write"},"mesh_queue_depth","redis","nodes":
/// [{"id","url","alive","self","connections"}],"channels":[{"channel","subscribers",
/// "publications","per_second"}]}`
pub fn snapshot(figures: &NodeFigures, last: Option<&Counted>, now: Instant) -> (Value, Counted) {
    let total = |f: &dyn Fn(&ShardFigures) -> u64| figures.shards.iter().map(f).sum::<u64>();
    let connections: usize = figures.connections().iter().sum();
    let channels = busiest(figures);
    let counted = Counted {
        at: now,
        messages_in: total(&|s| get(&s.messages_in)),
        messages_out: total(&|s| get(&s.messages_out)),
        writes: total(&|s| get(&s.writes)),
        publications: channels
            .iter()
            .map(|c| (c.channel.clone(), c.publications))
            .collect(),
    };
    let seconds = last.map(|l| now.duration_since(l.at).as_secs_f64());
    let rate = |now: u64, then: &dyn Fn(&Counted) -> u64| -> Value {
        match (last, seconds) {
            (Some(last), Some(s)) if s > 0.0 => (now.saturating_sub(then(last)) as f64 / s).into(),
            _ => Value::Null,
        }
    };
    let frames_per_write = match last {
        Some(last) if counted.writes > last.writes => ((counted.messages_out - last.messages_out)
            as f64
            / (counted.writes - last.writes) as f64)
            .into(),
        _ => Value::Null,
    };
    let dialects = |counts: &dyn Fn(usize) -> u64| -> Value {
        DialectKind::ALL
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name().to_owned(), Value::from(counts(i))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let shards: Vec<Value> = figures
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "shard": i,
                "connections": s.connections.load(Ordering::Relaxed),
                "dialects": dialects(&|d| get(&s.by_dialect[d])),
                "mesh_queue_depth": mesh_depth(i, s),
                "messages_in": get(&s.messages_in),
                "messages_out": get(&s.messages_out),
            })
        })
        .collect();
    let channels: Vec<Value> = channels
        .iter()
        .map(|c| {
            let before = last.and_then(|l| l.publications.get(&c.channel).copied());
            json!({
                "channel": &*c.channel,
                "subscribers": c.subscribers,
                "publications": c.publications,
                "per_second": before.map_or(Value::Null, |b| rate(c.publications, &|_| b)),
            })
        })
        .collect();
    let value = json!({
        "node": figures.cluster.as_ref().map_or(0, |c| c.settings().node),
        "connections": connections,
        "dialects": dialects(&|d| total(&|s| get(&s.by_dialect[d]))),
        "shards": shards,
        "messages_in": counted.messages_in,
        "messages_out": counted.messages_out,
        "writes": counted.writes,
        "slow_consumer_disconnects": total(&|s| get(&s.slow_consumers)),
        "rates": {
            "messages_in": rate(counted.messages_in, &|l| l.messages_in),
            "messages_out": rate(counted.messages_out, &|l| l.messages_out),
            "writes": rate(counted.writes, &|l| l.writes),
            "frames_per_write": frames_per_write,
        },
        "mesh_queue_depth": figures.shards.iter().enumerate().map(|(i, s)| mesh_depth(i, s)).sum::<u64>(),
        "redis": figures.cluster.as_ref().map(redis),
        "nodes": nodes(figures, connections),
        "channels": channels,
    });
    (value, counted)
}

/// Messages shard `i` has queued for its peer shards.
fn mesh_depth(i: usize, s: &ShardFigures) -> u64 {
    s.mesh_depth
        .iter()
        .enumerate()
        .filter(|(peer, _)| *peer != i)
        .map(|(_, a)| get(a))
        .sum()
}

/// The busiest channels of all shards (each channel has one owner shard).
fn busiest(figures: &NodeFigures) -> Vec<ChannelFigures> {
    let mut all: Vec<ChannelFigures> = figures
        .shards
        .iter()
        .flat_map(|s| s.busiest.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .collect();
    all.sort_by(|a, b| {
        (b.subscribers, b.publications)
            .cmp(&(a.subscribers, a.publications))
            .then_with(|| a.channel.cmp(&b.channel))
    });
    all.truncate(BUSIEST_CHANNELS);
    all
}

/// The Redis transport: connected, and the batches (and their bytes) waiting for it.
fn redis(cluster: &Cluster) -> Value {
    json!({
        "connected": cluster.redis_connected(),
        "queue_depth": cluster.queue_depth(),
        "queue_bytes": cluster.queue_bytes(),
        "dropped": get(&cluster.counters().dropped),
    })
}

/// The cluster's nodes as this one sees them, with their connections (the others' as
/// their last heartbeat said); a node on its own is the one node.
fn nodes(figures: &NodeFigures, connections: usize) -> Value {
    let Some(cluster) = &figures.cluster else {
        return json!([{"id": 0, "url": null, "alive": true, "self": true, "connections": connections}]);
    };
    let me = cluster.settings().node;
    let heard = cluster.peer_stats();
    cluster
        .nodes()
        .into_iter()
        .map(|node| {
            let connections = if node.id == me {
                Some(connections as u64)
            } else {
                heard
                    .get(node.id as usize)
                    .and_then(Option::as_ref)
                    .filter(|_| node.alive)
                    .and_then(|stats| stats["connections"].as_u64())
            };
            json!({
                "id": node.id,
                "url": &*node.url,
                "alive": node.alive,
                "self": node.id == me,
                "connections": connections,
            })
        })
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_come_from_the_previous_snapshot() {
        let figures = NodeFigures::new(2, None);
        let start = Instant::now();
        let (first, counted) = snapshot(&figures, None, start);
        assert_eq!(first["rates"]["messages_in"], Value::Null);
        assert_eq!(first["nodes"][0]["alive"], true);
        assert_eq!(first["shards"].as_array().unwrap().len(), 2);
        let s = &figures.shards[1];
        s.messages_in.store(10, Ordering::Relaxed);
        s.messages_out.store(40, Ordering::Relaxed);
        s.writes.store(10, Ordering::Relaxed);
        s.mesh_depth[0].store(3, Ordering::Relaxed);
        *s.busiest.lock().unwrap() = vec![ChannelFigures {
            channel: "news".into(),
            subscribers: 2,
            publications: 6,
        }];
        let (second, counted) = snapshot(&figures, Some(&counted), start + Duration::from_secs(2));
        assert_eq!(second["messages_in"], 10);
        assert_eq!(second["rates"]["messages_in"], 5.0);
        assert_eq!(second["rates"]["messages_out"], 20.0);
        assert_eq!(second["rates"]["frames_per_write"], 4.0);
        assert_eq!(second["mesh_queue_depth"], 3);
        assert_eq!(second["channels"][0]["channel"], "news");
        assert_eq!(second["channels"][0]["per_second"], Value::Null);
        s.busiest.lock().unwrap()[0].publications = 10;
        let (third, _) = snapshot(&figures, Some(&counted), start + Duration::from_secs(4));
        assert_eq!(third["channels"][0]["per_second"], 2.0);
        assert_eq!(third["rates"]["frames_per_write"], Value::Null);
    }
}
