//! The fanout scenario: subscribers in one channel (spread round robin over the given
//! addresses, cluster nodes), publishers on the first address sending at full rate with
//! a bounded number of messages in flight each. Reports deliveries per second, latency,
//! the servers' CPU per delivery summed over all their PIDs, redis-server's apart, and
//! for a turntable cluster the messages and Redis PUBLISHes between nodes per
//! publication (from each node's /metrics).

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use glommio::spawn_local;
use glommio::sync::Semaphore;
use glommio::timer::sleep;

use super::client::{Client, contains};
use super::{Snapshot, Tally, setup, show_progress, socketio, spawn_member, wait_ready};

/// What the fanout connections speak.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Dialect {
    /// turntable v1 (`joingame`, `game`).
    Turntable,
    /// Socket.IO (scripts/peer-socketio.mjs: `join`, `publish`, `game` events).
    Socketio,
}

const CHANNEL: &str = "bench";

impl Dialect {
    /// Connects as `user` and joins the channel.
    async fn join(self, addr: SocketAddr, user: String) -> std::io::Result<Client> {
        match self {
            Dialect::Turntable => {
                let join = format!(
                    r#"{{"command":"joingame","data":{{"channel":"{CHANNEL}","self":"{user}"}}}}"#
                );
                setup(addr, &user, &join, "\"joined\"").await
            }
            Dialect::Socketio => socketio::join(addr, CHANNEL).await,
        }
    }

    /// One publication from `user` stamped `t`.
    fn publication(self, user: &str, t: u64, pad: &str) -> String {
        match self {
            Dialect::Turntable => format!(
                r#"{{"command":"game","data":{{"channel":"{CHANNEL}","actions":[{{"from":"{user}","t":{t},"p":"{pad}"}}]}}}}"#
            ),
            Dialect::Socketio => socketio::publish(CHANNEL, user, t, pad),
        }
    }

    /// Reads at least once, calling `on_message` for each delivered message.
    async fn recv(self, c: &mut Client, on_message: impl FnMut(&[u8])) -> std::io::Result<()> {
        match self {
            Dialect::Turntable => c.recv(on_message).await,
            Dialect::Socketio => socketio::recv(c, on_message).await,
        }
    }
}

/// The scenario's settings.
pub struct Fanout {
    /// Subscribers go round robin over these; publishers on the first.
    pub addrs: Vec<SocketAddr>,
    pub server_pid: Vec<u32>,
    pub redis_pid: Option<u32>,
    pub dialect: Dialect,
    pub concurrency: usize,
    pub subscribers: usize,
    pub publishers: usize,
    pub inflight: usize,
    pub pad: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl Fanout {
    pub async fn run(self) -> std::io::Result<()> {
        let tally = Tally::new();
        let dialect = self.dialect;
        let gate = Rc::new(Semaphore::new(self.concurrency as u64));
        eprintln!(
            "connecting {} subscribers over {} address(es)...",
            self.subscribers,
            self.addrs.len()
        );
        for i in 0..self.subscribers {
            let join = dialect.join(self.addrs[i % self.addrs.len()], format!("sub{i}"));
            spawn_member(&tally, &gate, join, move |tally, mut c| async move {
                while !tally.stop.get() {
                    if dialect
                        .recv(&mut c, |text| tally.delivered(text))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        wait_ready(&tally, self.subscribers).await?;
        eprintln!("starting {} publishers", self.publishers);
        // Publications measured: each publisher's own messages delivered back to it.
        let published = Rc::new(Cell::new(0u64));
        for i in 0..self.publishers {
            let (tally, published, addr) = (tally.clone(), published.clone(), self.addrs[0]);
            let user = format!("pub{i}");
            let (inflight, pad) = (self.inflight, "x".repeat(self.pad));
            spawn_local(async move {
                let Ok(mut c) = dialect.join(addr, user.clone()).await else {
                    return tally.failed.set(tally.failed.get() + 1);
                };
                let mine = format!(r#""from":"{user}""#);
                let mut in_flight = 0;
                while !tally.stop.get() {
                    while in_flight < inflight {
                        let msg = dialect.publication(&user, tally.now_us(), &pad);
                        if c.send(msg.as_bytes()).await.is_err() {
                            return;
                        }
                        in_flight += 1;
                    }
                    let result = dialect
                        .recv(&mut c, |text| {
                            tally.delivered(text);
                            if contains(text, mine.as_bytes()) {
                                in_flight -= 1;
                                if tally.measuring.get() {
                                    published.set(published.get() + 1);
                                }
                            }
                        })
                        .await;
                    if result.is_err() {
                        return;
                    }
                }
            })
            .detach();
        }
        sleep(self.warmup).await;
        let cluster_before = self.cluster_counts();
        let before = Snapshot::take(&self.server_pid);
        let redis_before = Snapshot::take(self.redis_pid.as_slice());
        tally.measuring.set(true);
        show_progress(|| tally.delivered.get(), self.duration).await;
        sleep(self.duration - Duration::from_secs(self.duration.as_secs())).await;
        tally.measuring.set(false);
        let after = Snapshot::take(&self.server_pid);
        let redis_after = Snapshot::take(self.redis_pid.as_slice());
        let cluster_after = self.cluster_counts();
        tally.stop.set(true);

        let delivered = tally.delivered.get();
        let publications = published.get() as f64;
        let seconds = after.at.duration_since(before.at).as_secs_f64();
        let hist = tally.latency_us.borrow();
        let server_us = after.server_us_per(&before, delivered as f64);
        let redis_us = redis_after.server_us_per(&redis_before, delivered as f64);
        let per_publication = |(a, b): (u64, u64)| (a - b) as f64 / publications.max(1.0);
        let cluster = cluster_after
            .zip(cluster_before)
            .map(|(a, b)| (per_publication((a.0, b.0)), per_publication((a.1, b.1))));
        let loadgen_share = after.own_cpu_share(&before);
        println!(
            "fanout ({:?}): {} subscribers over {} node(s), {} publishers x {} in flight, {seconds:.1} s measured",
            self.dialect,
            self.subscribers,
            self.addrs.len(),
            self.publishers,
            self.inflight,
        );
        println!("  delivered/s            {:.0}", delivered as f64 / seconds);
        println!("  publications/s         {:.0}", publications / seconds);
        println!(
            "  latency p50/p99/p999   {} / {} / {} µs",
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999)
        );
        match server_us {
            Some(us) => println!(
                "  server CPU/delivery    {us:.3} µs ({} process(es) summed)",
                self.server_pid.len()
            ),
            None => println!("  server CPU/delivery    (pass --server-pid)"),
        }
        if let Some(us) = redis_us {
            println!("  redis CPU/delivery     {us:.3} µs");
        }
        if let Some((messages, batches)) = cluster {
            println!(
                "  per publication        {messages:.2} shard messages to other nodes, {batches:.2} Redis PUBLISHes (all nodes' turntable_cluster_*_total{{direction=\"out\"}})"
            );
        }
        println!(
            "  loadgen CPU            {:.0}% of one core",
            100.0 * loadgen_share
        );
        println!(
            "JSON {}",
            serde_json::json!({
                "scenario": "fanout",
                "dialect": format!("{:?}", self.dialect).to_lowercase(),
                "nodes": self.addrs.len(),
                "subscribers": self.subscribers,
                "publishers": self.publishers,
                "inflight": self.inflight,
                "delivered_per_s": (delivered as f64 / seconds).round(),
                "publications_per_s": (publications / seconds).round(),
                "p50_us": hist.value_at_quantile(0.5),
                "p99_us": hist.value_at_quantile(0.99),
                "p999_us": hist.value_at_quantile(0.999),
                "server_cpu_us_per_delivery": server_us,
                "redis_cpu_us_per_delivery": redis_us,
                "cluster_messages_per_publication": cluster.map(|c| c.0),
                "redis_publishes_per_publication": cluster.map(|c| c.1),
                "loadgen_cpu_share": (loadgen_share * 1000.0).round() / 1000.0,
                "failed_connections": tally.failed.get(),
            })
        );
        Ok(())
    }

    /// Shard messages and Redis PUBLISHes all turntable nodes have sent to other nodes
    /// (`turntable_cluster_{messages,batches}_total{direction="out"}` from each node's
    /// /metrics); `None` for one node or another dialect, or when a node does not answer.
    fn cluster_counts(&self) -> Option<(u64, u64)> {
        if self.addrs.len() < 2 || !matches!(self.dialect, Dialect::Turntable) {
            return None;
        }
        let mut sum = (0, 0);
        for &addr in &self.addrs {
            let text = metrics(addr).ok()?;
            let out = |name: &str| {
                let key = format!("{name}{{direction=\"out\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(key.as_str()))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            sum.0 += out("turntable_cluster_messages_total")?;
            sum.1 += out("turntable_cluster_batches_total")?;
        }
        Some(sum)
    }
}

/// `GET /metrics` from a node (blocking; only before and after the measured window).
fn metrics(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}
