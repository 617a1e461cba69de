//! turntable's load generator: opens many turntable v1 connections against a running
//! server and reports delivered messages per second, publish→delivery latency, the
//! server's CPU time per delivered message and its memory per idle connection (read
//! from /proc with `--server-pid`). `scripts/bench.sh` runs it against a fresh server.
//!
//! It runs on one glommio executor so that it stays cheap next to the server, and
//! reports its own CPU time so a saturated generator is visible.

mod client;
mod connect;
mod epoll;
mod fanout;
mod floor;
mod plot;
mod presence;
mod proc_stats;
mod reader;
mod rooms;
mod soak;
mod socketio;
mod summary;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use client::Client;
use glommio::sync::Semaphore;
use glommio::timer::{Timer, sleep};
use glommio::{LocalExecutorBuilder, Placement, spawn_local};
use hdrhistogram::Histogram;

/// Load generator for turntable (turntable v1 dialect).
#[derive(Parser)]
#[command(name = "loadgen", about, long_about = None)]
struct Cli {
    /// Server address. Several (comma-separated, or the option repeated) spread the
    /// fanout and presence connections over cluster nodes, round robin, the publishers
    /// on the first; the other scenarios use the first.
    #[arg(
        long,
        default_value = "127.0.0.1:7400",
        global = true,
        value_delimiter = ','
    )]
    addr: Vec<SocketAddr>,
    /// The server's PID, to read its CPU time and memory from /proc; repeated for a
    /// cluster (figures summed over all).
    #[arg(long, global = true)]
    server_pid: Vec<u32>,
    /// redis-server's PID: its CPU per delivery is reported apart from the servers'.
    #[arg(long, global = true)]
    redis_pid: Option<u32>,
    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 256, global = true)]
    concurrency: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Subscribers in one game channel, publishers sending at full rate with a bounded
    /// number of messages in flight each.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        /// Messages each publisher has in flight (sent, not yet delivered back to it).
        #[arg(long, default_value_t = 8)]
        inflight: usize,
        /// Padding bytes per message, on top of the ~100-byte envelope.
        #[arg(long, default_value_t = 0)]
        pad: usize,
        /// What the connections speak: turntable v1, or Socket.IO (Engine.IO v4 over
        /// WebSocket, to scripts/peer-socketio.mjs).
        #[arg(long, value_enum, default_value_t = fanout::Dialect::Turntable)]
        dialect: fanout::Dialect,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// Many game channels with many subscribers each and one paced publisher per
    /// channel: latency percentiles at a fixed publish rate, and nothing lost.
    Rooms {
        #[arg(long, default_value_t = 100)]
        channels: usize,
        /// Subscribers per channel.
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Publications per second over all channels.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Write the latency distribution as an SVG chart here.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// The rooms scenario with idle connections beside it that only get keepalives
    /// (SocketCluster `#1` beats, SockJS heartbeats; the members get WebSocket pings),
    /// to see keepalive in the deliveries' tail. Give the server short keepalive
    /// intervals so the window holds several rounds (bench.sh: `keepalive`). Against
    /// another server: `--socketcluster 0 --sockjs 0` leaves the rooms' own dialect
    /// (turntable v1 `joingame`/`game`) and the server's WebSocket pings.
    Keepalive {
        #[arg(long, default_value_t = 100)]
        channels: usize,
        /// Subscribers per channel.
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Publications per second over all channels.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Idle SocketCluster sockets.
        #[arg(long, default_value_t = 2000)]
        socketcluster: usize,
        /// Idle SockJS WebSockets (turntable v1 over SockJS).
        #[arg(long, default_value_t = 1000)]
        sockjs: usize,
        /// Open every connection at once (they connect within about a second), as
        /// after a restart.
        #[arg(long)]
        reconnect_storm: bool,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Write the latency distribution as an SVG chart here.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// Users connecting at a steady rate, each watching friends who connect too: every
    /// watcher must end seeing all its friends online.
    Presence {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        #[arg(long, default_value_t = 50)]
        friends: usize,
        /// Seconds over which the users connect.
        #[arg(long, default_value_t = 10.0)]
        ramp: f64,
    },
    /// Connections opened, identified and closed again: server CPU per connection and
    /// the time from TCP connect to `identified`.
    Connect {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
    /// No server: one thread writes 100-byte messages to groups of loopback TCP
    /// connections at a fixed rate and another reads them with epoll, to measure what
    /// the kernel alone costs per write here (the floor under the rooms figures).
    Floor {
        /// Connections in all (two descriptors each).
        #[arg(long, default_value_t = 9000)]
        connections: usize,
        /// Connections written per publication.
        #[arg(long, default_value_t = 100)]
        group: usize,
        /// Publications per second.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// A population held for a long time under churn (abrupt drops, and replacements
    /// that identify, watch users, join a game room and publish into it), the server's
    /// RSS sampled each second: it must end within 5 % of where it settled after the
    /// warm-up, and no member may miss a message of its room. Exits 1 when it does not
    /// pass. `scripts/soak.sh` runs it against a fresh server.
    Soak {
        #[arg(long, default_value_t = 15_000)]
        connections: usize,
        /// Seconds to run, the warm-up included.
        #[arg(long, default_value_t = 600.0)]
        duration: f64,
        /// Seconds of warm-up [default: a third of the run, at most 120].
        #[arg(long)]
        warmup: Option<f64>,
        /// Seconds of samples in the settled and the final medians [default: half the
        /// warm-up, at most 30].
        #[arg(long)]
        window: Option<f64>,
        /// Members per game room, on average.
        #[arg(long, default_value_t = 50)]
        room_size: usize,
        /// The share of each room's members that are never dropped.
        #[arg(long, default_value_t = 0.2)]
        stable: f64,
        /// Publications per second into each room by its publisher.
        #[arg(long, default_value_t = 0.5)]
        room_rate: f64,
        /// The share of the connections dropped and replaced each second.
        #[arg(long, default_value_t = 0.01)]
        churn: f64,
        /// Where to write the server's RSS and the counters, one line a second.
        #[arg(long, value_name = "FILE", default_value = "soak-rss.csv")]
        csv: std::path::PathBuf,
    },
    /// No server: prints one table of the results `scripts/bench.sh` wrote.
    Summary {
        /// Where the JSON results are.
        #[arg(long, default_value = "reports/bench")]
        dir: std::path::PathBuf,
    },
    /// Connections that identify, watch one user each, then sit idle.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Seconds to hold the connections open after measuring.
        #[arg(long, default_value_t = 0.0)]
        hold: f64,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Scenario::Summary { dir } = &cli.scenario {
        if let Err(e) = summary::print(dir) {
            eprintln!("loadgen: {}: {e}", dir.display());
            std::process::exit(1);
        }
        return;
    }
    if let Scenario::Floor {
        connections,
        group,
        rate,
        duration,
    } = cli.scenario
    {
        let floor = floor::Floor {
            connections,
            group,
            rate,
            duration: Duration::from_secs_f64(duration),
        };
        if let Err(e) = floor.run() {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
        return;
    }
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("loadgen")
        .io_memory(256 << 10)
        .spawn(move || async move {
            match cli.scenario {
                Scenario::Fanout {
                    subscribers,
                    publishers,
                    inflight,
                    pad,
                    dialect,
                    warmup,
                    duration,
                } => {
                    let f = fanout::Fanout {
                        addrs: cli.addr.clone(),
                        server_pid: cli.server_pid.clone(),
                        redis_pid: cli.redis_pid,
                        dialect,
                        concurrency: cli.concurrency,
                        subscribers,
                        publishers,
                        inflight,
                        pad,
                        warmup: Duration::from_secs_f64(warmup),
                        duration: Duration::from_secs_f64(duration),
                    };
                    f.run().await
                }
                Scenario::Rooms {
                    channels,
                    subscribers,
                    rate,
                    warmup,
                    duration,
                    plot,
                } => {
                    let r = rooms::Rooms {
                        name: "rooms",
                        addr: cli.addr[0],
                        server_pid: cli.server_pid.clone(),
                        concurrency: cli.concurrency,
                        channels,
                        subscribers,
                        rate,
                        warmup: Duration::from_secs_f64(warmup),
                        duration: Duration::from_secs_f64(duration),
                        plot,
                        idle: rooms::Idle::default(),
                        reconnect_storm: false,
                    };
                    r.run().await
                }
                Scenario::Keepalive {
                    channels,
                    subscribers,
                    rate,
                    socketcluster,
                    sockjs,
                    reconnect_storm,
                    warmup,
                    duration,
                    plot,
                } => {
                    let r = rooms::Rooms {
                        name: "keepalive",
                        addr: cli.addr[0],
                        server_pid: cli.server_pid.clone(),
                        concurrency: cli.concurrency,
                        channels,
                        subscribers,
                        rate,
                        warmup: Duration::from_secs_f64(warmup),
                        duration: Duration::from_secs_f64(duration),
                        plot,
                        idle: rooms::Idle {
                            socketcluster,
                            sockjs,
                        },
                        reconnect_storm,
                    };
                    r.run().await
                }
                Scenario::Presence {
                    users,
                    friends,
                    ramp,
                } => {
                    let p = presence::Presence {
                        addrs: cli.addr.clone(),
                        server_pid: cli.server_pid.clone(),
                        redis_pid: cli.redis_pid,
                        users,
                        friends,
                        ramp: Duration::from_secs_f64(ramp),
                    };
                    p.run().await
                }
                Scenario::Connect { connections } => {
                    connect::run(cli.addr[0], &cli.server_pid, cli.concurrency, connections).await
                }
                Scenario::Idle { connections, hold } => {
                    idle(
                        cli.addr[0],
                        &cli.server_pid,
                        cli.concurrency,
                        connections,
                        hold,
                    )
                    .await
                }
                Scenario::Soak {
                    connections,
                    duration,
                    warmup,
                    window,
                    room_size,
                    stable,
                    room_rate,
                    churn,
                    csv,
                } => {
                    let Some(&server_pid) = cli.server_pid.first() else {
                        return Err(std::io::Error::other(
                            "soak samples the server: pass --server-pid",
                        ));
                    };
                    let s = soak::Soak {
                        addr: cli.addr[0],
                        server_pid,
                        concurrency: cli.concurrency,
                        connections,
                        room_size,
                        stable_share: stable,
                        room_rate,
                        churn,
                        duration: Duration::from_secs_f64(duration),
                        warmup: warmup.map(Duration::from_secs_f64),
                        window: window.map(Duration::from_secs_f64),
                        csv,
                    };
                    s.run().await.map_err(std::io::Error::other)
                }
                Scenario::Floor { .. } | Scenario::Summary { .. } => {
                    unreachable!("run without an executor above")
                }
            }
        })
        .expect("start the load generator's executor");
    if let Err(e) = handle.join().expect("load generator executor") {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// What every connection task reports into.
struct Tally {
    start: Instant,
    ready: Cell<usize>,
    failed: Cell<usize>,
    measuring: Cell<bool>,
    stop: Cell<bool>,
    delivered: Cell<u64>,
    latency_us: RefCell<Histogram<u64>>,
}

impl Tally {
    fn new() -> Rc<Tally> {
        Rc::new(Tally {
            start: Instant::now(),
            ready: Cell::new(0),
            failed: Cell::new(0),
            measuring: Cell::new(false),
            stop: Cell::new(false),
            delivered: Cell::new(0),
            latency_us: RefCell::new(latency_histogram()),
        })
    }

    fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    /// `at` on the clock latencies are measured with.
    fn us_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_micros() as u64
    }

    /// Counts one delivered game message and its latency.
    fn delivered(&self, text: &[u8]) {
        if !self.measuring.get() {
            return;
        }
        self.delivered.set(self.delivered.get() + 1);
        if let Some(sent) = field_u64(text, b"\"t\":") {
            let _ = self
                .latency_us
                .borrow_mut()
                .record(self.now_us().saturating_sub(sent).max(1));
        }
    }
}

/// A histogram of latencies in µs: 1 µs to 60 s, three significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Parses the number after `key` in a JSON text, without a JSON parser.
fn field_u64(text: &[u8], key: &[u8]) -> Option<u64> {
    let at = text.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n: u64 = 0;
    let mut any = false;
    for d in digits {
        n = n * 10 + u64::from(d - b'0');
        any = true;
    }
    any.then_some(n)
}

/// Connects and identifies as `user`.
async fn identify(addr: SocketAddr, user: &str) -> std::io::Result<Client> {
    let mut c = Client::connect(addr, "/turntable").await?;
    c.wait_for("idyou").await?;
    c.send(format!(r#"{{"command":"idme","data":"{user}"}}"#).as_bytes())
        .await?;
    c.wait_for("identified").await?;
    Ok(c)
}

/// Connects, identifies as `user` and sends `then` (a subscribe or a join), waiting for
/// the reply containing `reply`.
async fn setup(addr: SocketAddr, user: &str, then: &str, reply: &str) -> std::io::Result<Client> {
    let mut c = identify(addr, user).await?;
    c.send(then.as_bytes()).await?;
    c.wait_for(reply).await?;
    Ok(c)
}

/// Spawns a member that sets up with `join` (a connect and join; at most the gate's count
/// setting up at once), counts itself ready, then runs `then` with its client.
fn spawn_member<J, F, Fut>(tally: &Rc<Tally>, gate: &Rc<Semaphore>, join: J, then: F)
where
    J: Future<Output = std::io::Result<Client>> + 'static,
    F: FnOnce(Rc<Tally>, Client) -> Fut + 'static,
    Fut: Future<Output = ()>,
{
    let (tally, gate) = (tally.clone(), gate.clone());
    spawn_local(async move {
        let permit = gate.acquire_permit(1).await;
        let c = match join.await {
            Ok(c) => c,
            Err(_) => return tally.failed.set(tally.failed.get() + 1),
        };
        drop(permit);
        tally.ready.set(tally.ready.get() + 1);
        then(tally, c).await;
    })
    .detach();
}

/// Prints the deliveries (as counted by `delivered`) of each whole second of `duration`.
async fn show_progress(delivered: impl Fn() -> u64, duration: Duration) {
    let mut last = 0;
    for second in 1..=duration.as_secs().max(1) {
        sleep(Duration::from_secs(1)).await;
        let now = delivered();
        eprintln!("  {second:>3}s  {:>10} delivered/s", now - last);
        last = now;
    }
}

/// Waits until `want` connections are set up (or failed).
async fn wait_ready(tally: &Tally, want: usize) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while tally.ready.get() + tally.failed.get() < want {
        if Instant::now() > deadline {
            return Err(std::io::Error::other(
                "connections did not complete in 120 s",
            ));
        }
        Timer::new(Duration::from_millis(20)).await;
    }
    if tally.failed.get() > 0 {
        return Err(std::io::Error::other(format!(
            "{} of {want} connections failed",
            tally.failed.get()
        )));
    }
    Ok(())
}

/// Server and generator counters at one moment.
struct Snapshot {
    at: Instant,
    server_cpu: Option<Duration>,
    server_rss: Option<u64>,
    own_cpu: Duration,
}

impl Snapshot {
    /// Server CPU microseconds per unit of work (`n` of them) since `before`; `None`
    /// without a server pid.
    fn server_us_per(&self, before: &Snapshot, n: f64) -> Option<f64> {
        self.server_cpu
            .zip(before.server_cpu)
            .map(|(a, b)| (a - b).as_secs_f64() * 1e6 / n.max(1.0))
    }

    /// The share of one core the generator itself used since `before`.
    fn own_cpu_share(&self, before: &Snapshot) -> f64 {
        let seconds = self.at.duration_since(before.at).as_secs_f64();
        (self.own_cpu - before.own_cpu).as_secs_f64() / seconds.max(1e-9)
    }

    /// The figures now, the servers' summed over `pids` (`None` without any pid, or when
    /// one cannot be read).
    fn take(pids: &[u32]) -> Snapshot {
        let any = !pids.is_empty();
        let cpu = pids
            .iter()
            .map(|&p| proc_stats::cpu_time(p))
            .sum::<Option<Duration>>();
        let rss = pids
            .iter()
            .map(|&p| proc_stats::rss_bytes(p))
            .sum::<Option<u64>>();
        Snapshot {
            at: Instant::now(),
            server_cpu: cpu.filter(|_| any),
            server_rss: rss.filter(|_| any),
            own_cpu: proc_stats::own_cpu_time(),
        }
    }
}

async fn idle(
    addr: SocketAddr,
    pid: &[u32],
    concurrency: usize,
    connections: usize,
    hold: f64,
) -> std::io::Result<()> {
    let tally = Tally::new();
    let gate = Rc::new(Semaphore::new(concurrency as u64));
    let before = Snapshot::take(pid);
    eprintln!("opening {connections} idle connections...");
    for i in 0..connections {
        let (tally, gate) = (tally.clone(), gate.clone());
        spawn_local(async move {
            let permit = gate.acquire_permit(1).await;
            let watch = format!(r#"{{"command":"subscribe","data":["friend{i}"]}}"#);
            match setup(addr, &format!("idle{i}"), &watch, "userchange").await {
                Ok(c) => {
                    drop(permit);
                    tally.ready.set(tally.ready.get() + 1);
                    while !tally.stop.get() {
                        Timer::new(Duration::from_millis(500)).await;
                    }
                    drop(c);
                }
                Err(_) => tally.failed.set(tally.failed.get() + 1),
            }
        })
        .detach();
    }
    wait_ready(&tally, connections).await?;
    let connected = Snapshot::take(pid);
    sleep(Duration::from_secs(1)).await;
    let after = Snapshot::take(pid);
    let n = connections as f64;
    let per_conn = after
        .server_rss
        .zip(before.server_rss)
        .map(|(a, b)| a.saturating_sub(b) as f64 / n);
    let cpu_per_conn = connected.server_us_per(&before, n);
    println!("idle: {connections} identified connections, each watching one user");
    match (per_conn, cpu_per_conn) {
        (Some(bytes), Some(us)) => {
            println!("  server RSS/connection  {bytes:.0} bytes");
            println!("  server CPU/connection  {us:.1} µs (accept, upgrade, identify, subscribe)");
        }
        _ => println!("  (pass --server-pid for memory and CPU figures)"),
    }
    println!(
        "JSON {{\"scenario\":\"idle\",\"connections\":{connections},\"rss_bytes_per_connection\":{},\"server_cpu_us_per_connection\":{}}}",
        per_conn.map_or("null".to_owned(), |v| format!("{v:.0}")),
        cpu_per_conn.map_or("null".to_owned(), |v| format!("{v:.1}"))
    );
    sleep(Duration::from_secs_f64(hold)).await;
    tally.stop.set(true);
    Ok(())
}
