//! The keepalive timers' cost without a network, for instruction counts under
//! callgrind (stable on a noisy machine where times are not):
//!
//! ```sh
//! cargo bench --bench keepalive --no-run   # prints the binary's path
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/keepalive-* MODE N SECONDS
//! ```
//!
//! N SocketCluster connections with the default policy (`#1` every 8 s from each
//! connection's phase, closed after 20 s of silence) are kept for SECONDS of simulated
//! time. MODE `wheel` runs the shard's timer wheel (a 10 ms tick, only the due
//! connections looked at); `sweep` models the sweep it replaced, which looked at every
//! connection of the shard each tick (1 s with the default settings); `setup` only opens
//! the connections, the baseline to subtract. Prints the keepalive frames queued, which
//! both modes must agree on.

use std::time::{Duration, Instant};

use turntable::net::conns::{ConnTable, Framing, KeepalivePlan};
use turntable::net::rate::RateLimit;
use turntable::protocol::{DialectKind, Settings};
use turntable::runtime::shard::keepalive::{self, TICK, Wheel, plans};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || args.iter().any(|a| a == "--bench") {
        // `cargo bench` runs every bench with `--bench`: nothing to time here.
        eprintln!("usage: keepalive wheel|sweep|setup N SECONDS (run under callgrind)");
        return;
    }
    let (mode, n, seconds) = (
        args[1].as_str(),
        args[2].parse::<usize>().expect("N"),
        args[3].parse::<u64>().expect("SECONDS"),
    );
    let settings = Settings {
        talker_ping_timeout: Duration::from_secs(60),
        ..Settings::default()
    };
    let table = plans(&settings);
    let plan = |d: DialectKind, f: Framing| -> &KeepalivePlan { &table[keepalive::index(d, f)] };
    let mut conns = ConnTable::new(1 << 20, RateLimit::new(0, 1));
    let ids: Vec<_> = (0..n)
        .map(|_| {
            let id = conns.insert(DialectKind::SocketCluster, Framing::Plain, None);
            conns.identified(id);
            id
        })
        .collect();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(seconds);
    let mut looked_at = 0u64;
    match mode {
        "setup" => {}
        "sweep" => {
            let mut now = t0;
            while now < end {
                now += Duration::from_secs(1);
                for &id in &ids {
                    conns.keep_alive(id, now, plan);
                    looked_at += 1;
                }
            }
        }
        "wheel" => {
            let mut wheel = Wheel::new(t0);
            let mut due = Vec::new();
            conns.take_opened(&mut due);
            let mut now = t0;
            while now < end {
                now += TICK;
                wheel.take_due(now, &mut due);
                for &id in &due {
                    looked_at += 1;
                    if let Some(at) = conns.keep_alive(id, now, plan) {
                        wheel.arm(id, at);
                    }
                }
                due.clear();
            }
        }
        other => panic!("unknown mode {other}"),
    }
    let queued: usize = ids
        .iter()
        .map(|&id| {
            conns
                .get_mut(id)
                .map_or(0, |s| usize::from(!s.is_drained()))
        })
        .sum();
    println!(
        "{mode}: {n} connections, {seconds} s, {looked_at} looked at, {queued} with frames queued"
    );
}
