//! The soak scenario: a population of connections held for a long time under churn,
//! with the server's resident memory sampled every second. Stable members (never
//! dropped; one of each room publishes on a schedule) must see every message of their
//! room; churn slots replace their connections at a steady rate, each new one joining a
//! room, watching users and publishing before it drops abruptly (see `churn`). The
//! median RSS of the warm-up's last `window` seconds is the settled figure; the median
//! of the run's last `window` seconds must be within 5 % of it (see `verdict`).

mod churn;
mod members;
mod room;
mod rss;
mod sequence;
mod shared;
mod verdict;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::spawn_local;
use glommio::timer::{Timer, sleep};

use crate::proc_stats;
use rss::{RssLog, Sample, median_rss};
use shared::Shared;
use verdict::{Failure, Figures};

/// The scenario's settings.
pub struct Soak {
    pub addr: SocketAddr,
    pub server_pid: u32,
    /// Handshakes in progress at once.
    pub concurrency: usize,
    /// The population held: stable members and churn slots.
    pub connections: usize,
    /// Members per room, on average.
    pub room_size: usize,
    /// The share of each room's members that are stable.
    pub stable_share: f64,
    /// Publications per second into each room by its publisher.
    pub room_rate: f64,
    /// The share of the population dropped (and replaced) each second.
    pub churn: f64,
    pub duration: Duration,
    /// Default: a third of the run, at most 2 minutes.
    pub warmup: Option<Duration>,
    /// Default: half the warm-up, at most 30 s.
    pub window: Option<Duration>,
    /// Where the per-second samples go.
    pub csv: PathBuf,
}

/// Why the soak did not pass.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cannot read the server's memory in /proc/{0}/status")]
    NoServer(u32),
    #[error("soak failed: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Failed(Vec<Failure>),
}

/// The shape of a run, worked out from the settings.
#[derive(Debug, PartialEq)]
struct Plan {
    rooms: usize,
    stable: usize,
    slots: usize,
    /// Between one publisher's publications.
    interval: Duration,
    /// A churned connection's mean lifetime.
    lifetime: Duration,
    /// Whole seconds: the run, the warm-up, the median windows.
    seconds: u64,
    warmup: u64,
    window: u64,
}

impl Soak {
    fn plan(&self) -> Result<Plan, SoakError> {
        let bad = |why: &str| Err(SoakError::Settings(why.to_owned()));
        if self.room_size < 2 || self.connections < self.room_size {
            return bad("--room-size must be at least 2 and at most --connections");
        }
        if !(self.room_rate > 0.0 && self.churn > 0.0 && self.stable_share > 0.0) {
            return bad("--room-rate, --churn and --stable must be above 0");
        }
        let rooms = self.connections.div_ceil(self.room_size);
        let per_room = ((self.room_size as f64 * self.stable_share).round() as usize).max(2);
        let stable = rooms * per_room;
        if stable >= self.connections {
            return bad("--stable leaves no connections to churn");
        }
        let slots = self.connections - stable;
        let seconds = self.duration.as_secs();
        let warmup = self.warmup.map_or((seconds / 3).min(120), |w| w.as_secs());
        let window = self.window.map_or((warmup / 2).min(30), |w| w.as_secs());
        if window == 0 || warmup < window || warmup + window > seconds {
            return bad("the run must hold the warm-up and then a window (of at least 1 s) more");
        }
        Ok(Plan {
            rooms,
            stable,
            slots,
            interval: Duration::from_secs_f64(1.0 / self.room_rate),
            lifetime: Duration::from_secs_f64(
                slots as f64 / (self.churn * self.connections as f64),
            ),
            seconds,
            warmup,
            window,
        })
    }

    pub async fn run(self) -> Result<(), SoakError> {
        let plan = self.plan()?;
        let shared = Rc::new(Shared::new(
            self.addr,
            self.concurrency,
            plan.rooms,
            plan.stable,
        ));
        let mut log = RssLog::create(&self.csv)?;
        eprintln!(
            "soak: {} connections ({} stable in {} rooms, {} churn slots living {:.0?} on average), {} s, warm-up {} s, samples in {}",
            self.connections,
            plan.stable,
            plan.rooms,
            plan.slots,
            plan.lifetime,
            plan.seconds,
            plan.warmup,
            self.csv.display()
        );
        for i in 0..plan.stable {
            spawn_local(members::stable(shared.clone(), i, plan.interval)).detach();
        }
        let start = Instant::now();
        let own_before = proc_stats::own_cpu_time();
        let mut reached = None;
        for second in 0..=plan.seconds {
            Timer::new(
                (start + Duration::from_secs(second)).saturating_duration_since(Instant::now()),
            )
            .await;
            let sample = self.sample(&shared, second)?;
            log.push(sample)?;
            let tally = &shared.tally;
            if !shared.started.get() && tally.ready.get() + tally.failed.get() >= plan.stable {
                shared.started.set(true);
                for slot in 0..plan.slots {
                    spawn_local(churn::slot(shared.clone(), slot, plan.lifetime)).detach();
                }
            }
            if reached.is_none() && shared.up.get() >= self.connections {
                reached = Some(second as f64);
            }
            if second % 10 == 0 {
                eprintln!(
                    "  {second:>4} s  RSS {:>7.1} MiB  open {:>6}  connects {:>7}  drops {:>7}  delivered {:>10}",
                    sample.rss_bytes as f64 / 1048576.0,
                    sample.open,
                    sample.connects,
                    sample.drops,
                    sample.delivered
                );
            }
        }
        let own_cpu = proc_stats::own_cpu_time() - own_before;
        let wall = start.elapsed();
        shared.stopping.set(true);
        settle(&shared).await;
        let figures = self.figures(
            &plan,
            &shared,
            log.samples(),
            reached,
            own_cpu.as_secs_f64() / wall.as_secs_f64(),
        );
        let failures = figures.failures();
        figures.print(&failures);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(SoakError::Failed(failures))
        }
    }

    /// The figures of second `second`.
    fn sample(&self, shared: &Shared, second: u64) -> Result<Sample, SoakError> {
        let pid = self.server_pid;
        let (Some(rss_bytes), Some(server_cpu)) =
            (proc_stats::rss_bytes(pid), proc_stats::cpu_time(pid))
        else {
            return Err(SoakError::NoServer(pid));
        };
        Ok(Sample {
            t: second as f64,
            rss_bytes,
            server_cpu,
            open: shared.open.get(),
            connects: shared.tally.ready.get() as u64,
            drops: shared.drops_total(),
            published: shared.published.get() + shared.churn_published.get(),
            delivered: shared.tally.delivered.get(),
        })
    }

    fn figures(
        &self,
        plan: &Plan,
        shared: &Shared,
        samples: &[Sample],
        reached: Option<f64>,
        loadgen_cpu_share: f64,
    ) -> Figures {
        let (warmup, window, seconds) =
            (plan.warmup as f64, plan.window as f64, plan.seconds as f64);
        let server_cpu = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) => (b.server_cpu - a.server_cpu).as_secs_f64(),
            _ => 0.0,
        };
        let mut stable_lost = 0;
        let mut unfinished_rooms = 0;
        for (room, last) in shared.finals.iter().enumerate() {
            match last.get() {
                Some(last) => {
                    stable_lost += (room..plan.stable)
                        .step_by(plan.rooms)
                        .map(|i| shared.stable[i].get().lost_up_to(last))
                        .sum::<u64>();
                }
                None => unfinished_rooms += 1,
            }
        }
        let hist = shared.tally.latency_us.borrow();
        Figures {
            connections: self.connections,
            rooms: plan.rooms,
            stable: plan.stable,
            seconds,
            warmup,
            window,
            reached,
            settled_rss: median_rss(samples, warmup - window, warmup),
            final_rss: median_rss(samples, seconds + 1.0 - window, seconds + 1.0),
            connects: shared.tally.ready.get() as u64,
            failed_connects: shared.tally.failed.get() as u64,
            drops: shared.drops.each_ref().map(|d| d.get()),
            published: shared.published.get(),
            churn_published: shared.churn_published.get(),
            delivered: shared.tally.delivered.get(),
            stable_lost,
            churn_lost: shared.churn_lost.get(),
            unfinished_rooms,
            server_closes: shared.server_closes.get(),
            server_cpu_s: server_cpu,
            loadgen_cpu_share,
            latency_us: [0.5, 0.99, 0.999].map(|q| hist.value_at_quantile(q)),
        }
    }
}

/// Waits (at most 10 s each) for every publisher to have its last message back, then
/// for every stable member to have caught up with its room's last message.
async fn settle(shared: &Shared) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.finals.iter().any(|f| f.get().is_none()) && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
    let caught_up = || {
        shared.stable.iter().enumerate().all(|(i, seq)| {
            shared.finals[i % shared.rooms]
                .get()
                .is_none_or(|last| seq.get().last() >= last)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !caught_up() && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soak(connections: usize, minutes: f64) -> Soak {
        Soak {
            addr: "127.0.0.1:7400".parse().unwrap(),
            server_pid: 1,
            concurrency: 256,
            connections,
            room_size: 50,
            stable_share: 0.2,
            room_rate: 0.5,
            churn: 0.01,
            duration: Duration::from_secs_f64(minutes * 60.0),
            warmup: None,
            window: None,
            csv: PathBuf::new(),
        }
    }

    #[test]
    fn the_full_soak_warms_up_two_minutes_and_compares_30_s_medians() {
        let plan = soak(15_000, 10.0).plan().unwrap();
        assert_eq!((plan.rooms, plan.stable, plan.slots), (300, 3000, 12_000));
        assert_eq!((plan.seconds, plan.warmup, plan.window), (600, 120, 30));
        // 1 % of 15 000 a second out of 12 000 slots: each lives 80 s on average.
        assert_eq!(plan.lifetime, Duration::from_secs(80));
        assert_eq!(plan.interval, Duration::from_secs(2));
    }

    #[test]
    fn a_short_run_scales_its_warm_up_and_windows() {
        let plan = soak(500, 0.5).plan().unwrap();
        assert_eq!((plan.rooms, plan.stable, plan.slots), (10, 100, 400));
        assert_eq!((plan.seconds, plan.warmup, plan.window), (30, 10, 5));
    }

    #[test]
    fn settings_that_leave_no_churn_or_no_final_window_are_refused() {
        let all_stable = Soak {
            stable_share: 1.0,
            ..soak(500, 1.0)
        };
        assert!(matches!(all_stable.plan(), Err(SoakError::Settings(_))));
        let no_window = Soak {
            warmup: Some(Duration::from_secs(60)),
            ..soak(500, 1.0)
        };
        assert!(matches!(no_window.plan(), Err(SoakError::Settings(_))));
    }
}
