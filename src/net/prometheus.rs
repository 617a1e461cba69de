//! `/metrics` in Prometheus's text formats: the node's figures (`turntable_*`, from
//! the shards' published slots and the cluster transport's counters), the build, and
//! the process's own (`process_*`, read from `/proc/self` at each scrape), in
//! OpenMetrics or the classic format a scraper may ask for.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::exposition::Format;
use super::http::STATUSES;
use super::latency::ShardHistograms;
use super::metrics::{NodeFigures, ShardFigures, get};
use crate::cluster::Cluster;
use crate::protocol::DialectKind;

impl NodeFigures {
    /// The figures, the build and the process's own (`process_*`) in `format`.
    pub fn prometheus(&self, format: Format) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode_registry(&mut text, &process_registry())
            .expect("writing to a String cannot fail");
        text += &self.openmetrics();
        match format {
            Format::OpenMetrics => text,
            Format::Classic => classic(&text),
        }
    }

    /// The node's figures (`turntable_*`) in OpenMetrics, ending in `# EOF`.
    fn openmetrics(&self) -> String {
        let mut registry = Registry::with_prefix("turntable");
        let build = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register(
            "build_info",
            "The running build: its version, as a label",
            build,
        );
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
            "connections_rate_limited",
            "New connections over their address's connection_rate: answered 429, or closed unread past a further burst",
            &|s| get(&s.connections_rate_limited),
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
            "handshake_seconds",
            "From a WebSocket connection's accept (or the previous response on it) to its \
             101 response written",
            ShardHistograms::new(self.shards.iter().map(|s| &s.handshake)),
        );
        registry.register(
            "delivery_latency_seconds",
            "From a publication reaching the node (read from a client, or from Redis) to \
             its frames written to this shard's subscribers",
            ShardHistograms::new(self.shards.iter().map(|s| &s.delivery)),
        );
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
        if let Some(cluster) = &self.cluster {
            register_cluster(&mut registry, cluster);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The cluster transport's figures (`turntable_cluster_*`).
fn register_cluster(registry: &mut Registry, cluster: &Cluster) {
    let c = cluster.counters();
    let gauge = |registry: &mut Registry, name: &str, help: &str, v: u64| {
        let g = Gauge::<i64>::default();
        g.set(v as i64);
        registry.register(name, help, g);
    };
    let counter = |registry: &mut Registry, name: &str, help: &str, v: &AtomicU64| {
        let counter = Counter::<u64>::default();
        counter.inc_by(get(v));
        registry.register(name, help, counter);
    };
    let both =
        |registry: &mut Registry, name: &str, help: &str, out: &AtomicU64, into: &AtomicU64| {
            let family = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
            family
                .get_or_create(&vec![("direction", "out")])
                .inc_by(get(out));
            family
                .get_or_create(&vec![("direction", "in")])
                .inc_by(get(into));
            registry.register(name, help, family);
        };
    let alive = cluster.nodes().iter().filter(|n| n.alive).count() as u64;
    gauge(
        registry,
        "cluster_redis_connected",
        "1 while the node holds a Redis connection",
        cluster.redis_connected() as u64,
    );
    gauge(
        registry,
        "cluster_nodes_alive",
        "Nodes this node sees alive, itself included",
        alive,
    );
    gauge(
        registry,
        "cluster_queue_depth",
        "Batches waiting to be PUBLISHed to Redis",
        cluster.queue_depth() as u64,
    );
    gauge(
        registry,
        "cluster_queue_bytes",
        "Payload bytes of the batches waiting to be PUBLISHed to Redis",
        cluster.queue_bytes() as u64,
    );
    both(
        registry,
        "cluster_messages",
        "Shard messages sent to and received from other nodes",
        &c.messages_out,
        &c.messages_in,
    );
    both(
        registry,
        "cluster_bytes",
        "Bytes of shard messages sent to and received from other nodes",
        &c.bytes_out,
        &c.bytes_in,
    );
    both(
        registry,
        "cluster_batches",
        "Redis messages (batches of shard messages) sent and received",
        &c.batches_out,
        &c.batches_in,
    );
    counter(
        registry,
        "cluster_dropped",
        "Batches for other nodes dropped: queue full or Redis unreachable",
        &c.dropped,
    );
    counter(
        registry,
        "cluster_malformed",
        "Batches and heartbeats from Redis that did not decode",
        &c.malformed,
    );
    counter(
        registry,
        "cluster_bus_commands",
        "Backend bus commands (NAME:api) this node carried out",
        &c.bus_commands,
    );
    counter(
        registry,
        "cluster_bus_refused",
        "Backend bus commands this node refused: malformed, unknown method, bad params",
        &c.bus_refused,
    );
    counter(
        registry,
        "cluster_taps",
        "Tap messages (NAME:tap:CHANNEL) queued for Redis",
        &c.taps_out,
    );
    counter(
        registry,
        "cluster_redis_connects",
        "Times the node (re)connected to Redis",
        &c.connects,
    );
}

/// OpenMetrics text rewritten in the classic format: a counter family's HELP and TYPE
/// name its `_total` series, `unknown` is `untyped`, and there is no `# UNIT` or `# EOF`.
fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 256);
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some(help) = help.take() {
                let text = help.split_once(' ').map_or("", |(_, text)| text);
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The process's own figures under Prometheus's usual `process_*` names, read from
/// `/proc/self` when asked: CPU time, resident and virtual memory, open and allowed
/// file descriptors, start time. A figure `/proc` does not give is left out.
fn process_registry() -> Registry {
    let mut registry = Registry::default();
    let stat = ProcStat::read();
    if let Some(stat) = &stat {
        let cpu = Counter::<f64, AtomicU64>::default();
        cpu.inc_by(stat.cpu_seconds);
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            cpu,
        );
        let rss = Gauge::<i64>::default();
        rss.set(stat.resident_bytes as i64);
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            rss,
        );
        let virtual_bytes = Gauge::<i64>::default();
        virtual_bytes.set(stat.virtual_bytes as i64);
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            virtual_bytes,
        );
        let start = Gauge::<f64, AtomicU64>::default();
        start.set(stat.start_time_seconds);
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            start,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let open = Gauge::<i64>::default();
        open.set(fds.count() as i64);
        registry.register(
            "process_open_fds",
            "Open file descriptors (each connection is one)",
            open,
        );
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit to the pointer it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        let max = Gauge::<i64>::default();
        max.set(i64::try_from(limit.rlim_cur).unwrap_or(i64::MAX));
        registry.register(
            "process_max_fds",
            "The most file descriptors the process may open (RLIMIT_NOFILE)",
            max,
        );
    }
    registry
}

/// What `/proc/self/stat` (and `/proc/stat`'s boot time) says of this process.
struct ProcStat {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time_seconds: f64,
}

impl ProcStat {
    fn read() -> Option<ProcStat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name may hold spaces and parentheses: the fields follow the last ')'.
        let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
        // Fields 3.. of proc(5), so field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        // SAFETY: sysconf only reads a configuration value.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
        let page = u64::try_from(page).ok()?;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        Some(ProcStat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks as f64,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            start_time_seconds: boot as f64 + field(22)? as f64 / ticks as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_names_a_counter_family_by_its_total_series() {
        let om = "# HELP a_writes Writes.\n# TYPE a_writes counter\na_writes_total{shard=\"0\"} 3\n# HELP b Gauge.\n# TYPE b gauge\n# UNIT b bytes\nb 1\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP a_writes_total Writes.\n# TYPE a_writes_total counter\na_writes_total{shard=\"0\"} 3\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n"
        );
    }

    #[test]
    fn the_process_figures_are_read() {
        let stat = ProcStat::read().expect("/proc/self/stat");
        assert!(stat.resident_bytes > 0 && stat.virtual_bytes >= stat.resident_bytes);
        assert!(stat.start_time_seconds > 1.6e9);
    }
}
