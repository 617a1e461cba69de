//! Node-wide figures for `/metrics`, `/api/stats` and `/healthz`, readable from any
//! shard without a lock.
//!
//! Each shard counts its own traffic in plain cells on its own thread ([`Tally`], and
//! the connection table's counters), so the hot path never touches an atomic; the
//! shard's clock tick publishes a snapshot into the shard's [`ShardFigures`] slot
//! (relaxed atomics, one cache-line-aligned slot per shard, written only by its shard).
//! Counters therefore lag by at most one tick (≤ 500 ms). Open connections are the
//! exception: counted live, since health checks and tests read them right after a
//! connect.

use std::cell::Cell;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::http::STATUSES;
use crate::protocol::DialectKind;

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
    pub auth_failures: AtomicU64,
    pub http: [AtomicU64; STATUSES.len() + 1],
    /// Messages waiting for each peer shard.
    pub mesh_depth: Box<[AtomicU64]>,
    pub users: AtomicU64,
    pub channels: AtomicU64,
    pub rooms: AtomicU64,
    pub documents: AtomicU64,
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
}

/// Stores a shard's figure (only the owning shard calls this).
pub fn publish(a: &AtomicU64, v: u64) {
    a.store(v, Ordering::Relaxed);
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl NodeFigures {
    pub fn new(shards: usize) -> NodeFigures {
        NodeFigures {
            shards: (0..shards).map(|_| ShardFigures::new(shards)).collect(),
        }
    }

    /// Open WebSocket connections per shard, live.
    pub fn connections(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|s| s.connections.load(Ordering::Relaxed))
            .collect()
    }

    /// The figures in the Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let mut registry = Registry::with_prefix("turntable");
        let shard_counter =
            |registry: &mut Registry, name: &str, help: &str, f: &dyn Fn(&ShardFigures) -> u64| {
                let family = Family::<Vec<(&'static str, String)>, Counter>::default();
                for (i, s) in self.shards.iter().enumerate() {
                    family
                        .get_or_create(&vec![("shard", i.to_string())])
                        .inc_by(f(s));
                }
                registry.register(name, help, family);
            };
        shard_counter(
            &mut registry,
            "messages_received",
            "WebSocket messages received from clients",
            &|s| get(&s.messages_in),
        );
        shard_counter(
            &mut registry,
            "messages_delivered",
            "Frames written to clients (events, replies, keepalives)",
            &|s| get(&s.messages_out),
        );
        shard_counter(
            &mut registry,
            "received_bytes",
            "Bytes read from WebSocket clients",
            &|s| get(&s.bytes_in),
        );
        shard_counter(
            &mut registry,
            "sent_bytes",
            "Bytes written to WebSocket clients",
            &|s| get(&s.bytes_out),
        );
        shard_counter(
            &mut registry,
            "writes",
            "Writes to clients (sendmsg calls); frames written per write is the coalescing",
            &|s| get(&s.writes),
        );
        shard_counter(
            &mut registry,
            "slow_consumer_disconnects",
            "Connections closed because their outbound queue was full",
            &|s| get(&s.slow_consumers),
        );
        shard_counter(
            &mut registry,
            "auth_failures",
            "Tokens refused (forged, expired, malformed)",
            &|s| get(&s.auth_failures),
        );

        let connections = Family::<Vec<(&'static str, String)>, Gauge>::default();
        let owned = Family::<Vec<(&'static str, String)>, Gauge>::default();
        let mesh = Family::<Vec<(&'static str, String)>, Gauge>::default();
        let http = Family::<Vec<(&'static str, String)>, Counter>::default();
        for (i, s) in self.shards.iter().enumerate() {
            let shard = i.to_string();
            for (dialect, a) in DialectKind::ALL.iter().zip(&s.by_dialect) {
                let labels = vec![
                    ("shard", shard.clone()),
                    ("dialect", dialect.name().to_owned()),
                ];
                connections.get_or_create(&labels).set(get(a) as i64);
            }
            for (kind, a) in [
                ("users", &s.users),
                ("channels", &s.channels),
                ("rooms", &s.rooms),
                ("documents", &s.documents),
            ] {
                let labels = vec![("shard", shard.clone()), ("kind", kind.to_owned())];
                owned.get_or_create(&labels).set(get(a) as i64);
            }
            for (peer, a) in s.mesh_depth.iter().enumerate().filter(|(p, _)| *p != i) {
                let labels = vec![("shard", shard.clone()), ("peer", peer.to_string())];
                mesh.get_or_create(&labels).set(get(a) as i64);
            }
            for (j, a) in s.http.iter().enumerate() {
                let status = STATUSES
                    .get(j)
                    .map_or("other".to_owned(), |(code, _)| code.to_string());
                let n = get(a);
                if n > 0 {
                    let labels = vec![("shard", shard.clone()), ("status", status)];
                    http.get_or_create(&labels).inc_by(n);
                }
            }
        }
        registry.register("connections", "Open WebSocket connections", connections);
        registry.register(
            "owned",
            "Users, channels, chat rooms and documents a shard owns",
            owned,
        );
        registry.register("mesh_queue_depth", "Messages queued for a peer shard", mesh);
        registry.register(
            "http_responses",
            "HTTP responses by status (101 for WebSocket upgrades)",
            http,
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// The figures as the `/api/stats` JSON body.
    pub fn json(&self) -> String {
        let mut out = String::from(r#"{"shards":["#);
        for (i, s) in self.shards.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                r#"{{"shard":{i},"connections":{},"users":{},"channels":{},"rooms":{},"documents":{},"messages_in":{},"messages_out":{},"bytes_in":{},"bytes_out":{}}}"#,
                s.connections.load(Ordering::Relaxed),
                get(&s.users),
                get(&s.channels),
                get(&s.rooms),
                get(&s.documents),
                get(&s.messages_in),
                get(&s.messages_out),
                get(&s.bytes_in),
                get(&s.bytes_out),
            );
        }
        let total = |f: &dyn Fn(&ShardFigures) -> u64| self.shards.iter().map(f).sum::<u64>();
        let _ = write!(
            out,
            r#"],"connections":{},"users":{},"channels":{},"messages_in":{},"messages_out":{}}}"#,
            self.connections().iter().sum::<usize>(),
            total(&|s| get(&s.users)),
            total(&|s| get(&s.channels)),
            total(&|s| get(&s.messages_in)),
            total(&|s| get(&s.messages_out)),
        );
        out
    }
}
