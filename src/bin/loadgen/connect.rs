//! The connect scenario: connections opened, identified and closed again, at most
//! `concurrency` in progress at once, measuring the server's CPU per connection
//! (accept, HTTP upgrade, identify, close) and the time each takes from TCP connect to
//! `identified`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::spawn_local;
use glommio::sync::Semaphore;
use glommio::timer::sleep;

use super::{Snapshot, Tally, identify, wait_ready};

pub async fn run(
    addr: SocketAddr,
    pid: &[u32],
    concurrency: usize,
    connections: usize,
) -> std::io::Result<()> {
    let tally = Tally::new();
    let gate = Rc::new(Semaphore::new(concurrency as u64));
    eprintln!("opening, identifying and closing {connections} connections...");
    let before = Snapshot::take(pid);
    for i in 0..connections {
        let (tally, gate) = (tally.clone(), gate.clone());
        spawn_local(async move {
            let _permit = gate.acquire_permit(1).await;
            let started = Instant::now();
            match identify(addr, &format!("conn{i}")).await {
                Ok(client) => {
                    let us = started.elapsed().as_micros() as u64;
                    let _ = tally.latency_us.borrow_mut().record(us.max(1));
                    drop(client);
                    tally.ready.set(tally.ready.get() + 1);
                }
                Err(_) => tally.failed.set(tally.failed.get() + 1),
            }
        })
        .detach();
    }
    wait_ready(&tally, connections).await?;
    let identified = Snapshot::take(pid);
    // The server sees the last closes now; its CPU for them counts too.
    sleep(Duration::from_millis(500)).await;
    let after = Snapshot::take(pid);
    let n = connections as f64;
    let rate = n / identified.at.duration_since(before.at).as_secs_f64();
    let server_us = after.server_us_per(&before, n);
    let loadgen_share = identified.own_cpu_share(&before);
    let hist = tally.latency_us.borrow();
    let (p50, p99, p999) = (
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
    );
    println!("connect: {connections} connections, {concurrency} in progress at once");
    println!("  connections/s          {rate:.0}");
    println!("  connect→identified     p50/p99/p999 {p50} / {p99} / {p999} µs");
    match server_us {
        Some(us) => {
            println!("  server CPU/connection  {us:.1} µs (accept, upgrade, identify, close)")
        }
        None => println!("  server CPU/connection  (pass --server-pid)"),
    }
    println!(
        "  loadgen CPU            {:.0}% of one core",
        100.0 * loadgen_share
    );
    println!(
        "JSON {}",
        serde_json::json!({
            "scenario": "connect",
            "connections": connections,
            "connections_per_s": rate.round(),
            "p50_us": p50,
            "p99_us": p99,
            "p999_us": p999,
            "server_cpu_us_per_connection": server_us,
            "loadgen_cpu_share": (loadgen_share * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}
