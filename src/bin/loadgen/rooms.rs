//! The rooms scenario: many game channels with many subscribers each, publishers at a
//! paced total rate (not as fast as possible), measuring publish→delivery latency at
//! the subscribers and whether every publication reached every subscriber.
//!
//! Each channel has one publisher, itself a member, which sends on a fixed schedule
//! and reads its own echoes between sends; each publication is stamped with the time
//! it was due, so a send the server held back (by answering the previous one late)
//! counts the delay in its latency instead of hiding it.
//!
//! The keepalive scenario is the same run with idle connections beside the rooms'
//! (SocketCluster sockets that get `#1` beats, SockJS WebSockets that get heartbeat
//! pings; the rooms' members get WebSocket pings) and, with `--reconnect-storm`, every
//! connection opened at once, as after a restart: what keepalive work costs the
//! deliveries shows in their tail.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::spawn_local;
use glommio::sync::Semaphore;
use glommio::timer::{Timer, sleep};

use hdrhistogram::Histogram;

use super::client::Client;
use super::reader::{Readers, Window};
use super::{Snapshot, Tally, plot, setup, wait_ready};

/// The scenario's settings.
pub struct Rooms {
    /// The scenario's name in the report: `rooms` or `keepalive`.
    pub name: &'static str,
    pub addr: SocketAddr,
    pub server_pid: Vec<u32>,
    pub concurrency: usize,
    pub channels: usize,
    pub subscribers: usize,
    /// Publications per second over all channels.
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    /// Where to write the latency distribution as an SVG chart.
    pub plot: Option<PathBuf>,
    /// Idle connections beside the rooms' (the keepalive scenario).
    pub idle: Idle,
    /// Open every connection at once rather than `concurrency` at a time.
    pub reconnect_storm: bool,
}

/// Idle connections that only answer keepalives, read with the rooms' members.
#[derive(Clone, Copy, Debug, Default)]
pub struct Idle {
    /// SocketCluster sockets, handshaken (they answer `#1` with `#2`).
    pub socketcluster: usize,
    /// SockJS WebSockets carrying turntable v1, identified (they answer pings).
    pub sockjs: usize,
}

impl Idle {
    fn total(&self) -> usize {
        self.socketcluster + self.sockjs
    }
}

/// Opens idle connection `i` (SocketCluster first, then SockJS) and sets it up.
async fn open_idle(addr: SocketAddr, idle: Idle, i: usize) -> std::io::Result<Client> {
    if i < idle.socketcluster {
        let mut c = Client::connect(addr, "/socketcluster/").await?;
        c.send(br##"{"event":"#handshake","data":{},"cid":1}"##)
            .await?;
        c.wait_for(r#""rid":1"#).await?;
        Ok(c)
    } else {
        let mut c = Client::connect(addr, &format!("/sockjs/turntable/000/k{i}/websocket")).await?;
        c.wait_for("o").await?;
        let idme = format!(r#"["{{\"command\":\"idme\",\"data\":\"k{i}\"}}"]"#);
        c.send(idme.as_bytes()).await?;
        c.wait_for("identified").await?;
        Ok(c)
    }
}

impl Rooms {
    pub async fn run(self) -> std::io::Result<()> {
        let tally = Tally::new();
        let window = Arc::new(Window::default());
        let published = Rc::new(Cell::new(0u64));
        let total = self.channels * self.subscribers;
        let idle = self.idle;
        let all = total + idle.total();
        let concurrency = if self.reconnect_storm {
            all
        } else {
            self.concurrency
        };
        let gate = Rc::new(Semaphore::new(concurrency as u64));
        eprintln!(
            "connecting {total} subscribers in {} channels, {} idle SocketCluster and {} idle SockJS connections{}...",
            self.channels,
            idle.socketcluster,
            idle.sockjs,
            if self.reconnect_storm {
                ", all at once"
            } else {
                ""
            }
        );
        let connecting = Instant::now();
        let members = Rc::new(RefCell::new(Vec::with_capacity(all)));
        for i in 0..idle.total() {
            let (tally, gate, members, addr) =
                (tally.clone(), gate.clone(), members.clone(), self.addr);
            spawn_local(async move {
                let permit = gate.acquire_permit(1).await;
                match open_idle(addr, idle, i).await {
                    Ok(c) => members.borrow_mut().push(c),
                    Err(_) => return tally.failed.set(tally.failed.get() + 1),
                }
                drop(permit);
                tally.ready.set(tally.ready.get() + 1);
            })
            .detach();
        }
        for i in 0..total {
            let (channel, user) = (i % self.channels, format!("r{i}"));
            let (join, addr) = (join_message(channel, &user), self.addr);
            let join = async move { setup(addr, &user, &join, "\"joined\"").await };
            let members = members.clone();
            super::spawn_member(&tally, &gate, join, move |_, c| {
                members.borrow_mut().push(c);
                async {}
            });
        }
        wait_ready(&tally, all).await?;
        let connected_in = connecting.elapsed();
        eprintln!("connected {all} in {connected_in:.2?}");
        let members = std::mem::take(&mut *members.borrow_mut());
        let readers = Readers::spawn(members, tally.start, window.clone())?;
        let publishing = Rc::new(Cell::new(true));
        let interval = Duration::from_secs_f64(self.channels as f64 / self.rate);
        eprintln!(
            "publishing {}/s ({} channels, one every {:?} each)",
            self.rate, self.channels, interval
        );
        for channel in 0..self.channels {
            let (tally, published, publishing) =
                (tally.clone(), published.clone(), publishing.clone());
            let window = window.clone();
            let addr = self.addr;
            // Spread the channels' schedules over one interval.
            let offset = interval.mul_f64(channel as f64 / self.channels as f64);
            spawn_local(async move {
                let user = format!("p{channel}");
                let Ok(mut c) = setup(addr, &user, &join_message(channel, &user), "\"joined\"").await
                else {
                    return tally.failed.set(tally.failed.get() + 1);
                };
                let mine = format!(r#""from":"{user}""#);
                let mut next = Instant::now() + offset;
                while publishing.get() {
                    Timer::new(next.saturating_duration_since(Instant::now())).await;
                    // Stamped with the time it was due, not the time it went: a send
                    // held back by a slow server counts that delay as latency.
                    let t = tally.us_at(next);
                    next += interval;
                    let msg = format!(
                        r#"{{"command":"game","data":{{"channel":"room{channel}","actions":[{{"from":"{user}","t":{t}}}]}}}}"#
                    );
                    if c.send(msg.as_bytes()).await.is_err() {
                        return;
                    }
                    if window.contains(t) {
                        published.set(published.get() + 1);
                    }
                    let mut echoed = false;
                    while !echoed {
                        if c.recv(|text| echoed |= super::client::contains(text, mine.as_bytes())).await.is_err() {
                            return;
                        }
                    }
                }
            })
            .detach();
        }
        sleep(self.warmup).await;
        let before = Snapshot::take(&self.server_pid);
        window.open(tally.now_us());
        super::show_progress(|| readers.delivered(), self.duration).await;
        // Publications stamped in the window count; give the last of them time to arrive.
        window.close(tally.now_us());
        let after = Snapshot::take(&self.server_pid);
        publishing.set(false);
        sleep(Duration::from_secs(2)).await;
        tally.stop.set(true);
        let (delivered, latency_us) = readers.finish()?;
        let measured = Measured {
            seconds: window.seconds(),
            published: published.get(),
            delivered,
            latency_us,
            connected_in,
        };
        self.report(&measured, &before, &after)
    }

    fn report(
        &self,
        measured: &Measured,
        before: &Snapshot,
        after: &Snapshot,
    ) -> std::io::Result<()> {
        // The publications counted are those due inside the window, which can outlast
        // the requested duration when the generator's own timers run late.
        let Measured {
            seconds,
            published,
            delivered,
            latency_us: hist,
            connected_in,
        } = measured;
        let connected_s = connected_in.as_secs_f64();
        let (published, delivered) = (*published, *delivered);
        let expected = published * self.subscribers as u64;
        let server_us = after.server_us_per(before, delivered as f64);
        let loadgen_share = after.own_cpu_share(before);
        let (p50, p99, p999) = (
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
        );
        println!(
            "{}: {} channels x {} subscribers, {} publishes/s, {seconds:.1} s measured",
            self.name, self.channels, self.subscribers, self.rate
        );
        println!(
            "  idle SC / SockJS       {} / {} (all {} connected in {connected_s:.2} s{})",
            self.idle.socketcluster,
            self.idle.sockjs,
            self.channels * self.subscribers + self.idle.total(),
            if self.reconnect_storm {
                ", a storm"
            } else {
                ""
            }
        );
        println!("  published / delivered  {published} / {delivered} (expected {expected})");
        println!("  latency p50/p99/p999   {p50} / {p99} / {p999} µs");
        match server_us {
            Some(us) => println!("  server CPU/delivery    {us:.3} µs"),
            None => println!("  server CPU/delivery    (pass --server-pid)"),
        }
        println!(
            "  loadgen CPU            {:.0}% of one core",
            100.0 * loadgen_share
        );
        if let Some(path) = &self.plot {
            let title = format!(
                "{} channels x {} subscribers, {} publishes/s",
                self.channels, self.subscribers, self.rate
            );
            std::fs::write(path, plot::latency_svg(hist, &title))?;
            println!("  latency chart          {}", path.display());
        }
        println!(
            "JSON {{\"scenario\":\"{}\",\"idle_socketcluster\":{},\"idle_sockjs\":{},\"reconnect_storm\":{},\"connected_s\":{connected_s:.2},\"channels\":{},\"subscribers\":{},\"rate\":{},\"published\":{published},\"delivered\":{delivered},\"expected\":{expected},\"lost\":{},\"p50_us\":{p50},\"p99_us\":{p99},\"p999_us\":{p999},\"server_cpu_us_per_delivery\":{},\"loadgen_cpu_share\":{loadgen_share:.3}}}",
            self.name,
            self.idle.socketcluster,
            self.idle.sockjs,
            self.reconnect_storm,
            self.channels,
            self.subscribers,
            self.rate,
            expected.saturating_sub(delivered),
            server_us.map_or("null".to_owned(), |v| format!("{v:.4}")),
        );
        if delivered < expected {
            eprintln!("LOST {} deliveries", expected - delivered);
        }
        Ok(())
    }
}

/// What the measured window produced.
struct Measured {
    seconds: f64,
    published: u64,
    delivered: u64,
    latency_us: Histogram<u64>,
    /// From the first connect to the last connection set up.
    connected_in: Duration,
}

fn join_message(channel: usize, user: &str) -> String {
    format!(r#"{{"command":"joingame","data":{{"channel":"room{channel}","self":"{user}"}}}}"#)
}
