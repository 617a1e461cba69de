//! The soak's figures at the end and its verdict: the server's memory back within 5 %
//! of where it settled after the warm-up, nothing lost by a well-behaved client, every
//! connect served and no well-behaved connection closed by the server.

use serde_json::json;

/// How far the final RSS may be from the settled one, either way.
pub const RSS_TOLERANCE: f64 = 0.05;

/// What the run measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub connections: usize,
    pub rooms: usize,
    pub stable: usize,
    /// Seconds run (the last sample's time).
    pub seconds: f64,
    /// The warm-up's length and the window the settled and final medians span (s).
    pub warmup: f64,
    pub window: f64,
    /// When every stable member and churn slot first had its connection up (s).
    pub reached: Option<f64>,
    pub settled_rss: Option<u64>,
    pub final_rss: Option<u64>,
    pub connects: u64,
    pub failed_connects: u64,
    /// Drops by `churn::Abrupt::ALL`'s order: closed, mid-message, reset.
    pub drops: [u64; 3],
    pub published: u64,
    pub churn_published: u64,
    pub delivered: u64,
    pub stable_lost: u64,
    pub churn_lost: u64,
    /// Rooms whose publisher never had its last message back.
    pub unfinished_rooms: usize,
    pub server_closes: u64,
    pub server_cpu_s: f64,
    pub loadgen_cpu_share: f64,
    /// Publish→delivery latency percentiles (µs): p50, p99, p99.9.
    pub latency_us: [u64; 3],
}

/// Why a run failed.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error("the {0} connections were not all set up before the settled window began")]
    NotSettled(usize),
    #[error("final RSS {final_kib} KiB is {change_pct:+.1} % from the settled {settled_kib} KiB")]
    RssMoved {
        settled_kib: u64,
        final_kib: u64,
        change_pct: f64,
    },
    #[error("stable members lost {0} messages")]
    StableLost(u64),
    #[error("churned members lost {0} messages while members")]
    ChurnLost(u64),
    #[error("{0} rooms' publishers never had their last message back")]
    Unfinished(usize),
    #[error("{0} connects failed")]
    ConnectsFailed(u64),
    #[error("the server closed {0} well-behaved connections")]
    ServerClosed(u64),
}

impl Figures {
    /// Final RSS over settled RSS.
    pub fn ratio(&self) -> Option<f64> {
        let (settled, last) = (self.settled_rss?, self.final_rss?);
        Some(last as f64 / settled.max(1) as f64)
    }

    /// Everything that makes the run fail; empty when it passed.
    pub fn failures(&self) -> Vec<Failure> {
        let mut failures = Vec::new();
        let settled_from = self.warmup - self.window;
        if self.reached.is_none_or(|at| at >= settled_from) {
            failures.push(Failure::NotSettled(self.connections));
        }
        if let (Some(settled), Some(last), Some(ratio)) =
            (self.settled_rss, self.final_rss, self.ratio())
            && (ratio - 1.0).abs() > RSS_TOLERANCE
        {
            failures.push(Failure::RssMoved {
                settled_kib: settled / 1024,
                final_kib: last / 1024,
                change_pct: (ratio - 1.0) * 100.0,
            });
        }
        let counts = [
            (self.stable_lost, Failure::StableLost as fn(u64) -> Failure),
            (self.churn_lost, Failure::ChurnLost),
            (self.failed_connects, Failure::ConnectsFailed),
            (self.server_closes, Failure::ServerClosed),
        ];
        failures.extend(
            counts
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, f)| f(n)),
        );
        if self.unfinished_rooms > 0 {
            failures.push(Failure::Unfinished(self.unfinished_rooms));
        }
        failures
    }

    /// Prints the figures, a `JSON` line of them and the verdict.
    pub fn print(&self, failures: &[Failure]) {
        let mib = |b: Option<u64>| {
            b.map_or("?".to_owned(), |b| {
                format!("{:.1} MiB", b as f64 / 1048576.0)
            })
        };
        let drops: u64 = self.drops.iter().sum();
        println!(
            "soak: {} connections ({} stable, one publisher each in {} rooms), {:.0} s",
            self.connections, self.stable, self.rooms, self.seconds
        );
        println!(
            "  server RSS             settled {} (median of {:.0}-{:.0} s), final {} (last {:.0} s), ratio {}",
            mib(self.settled_rss),
            self.warmup - self.window,
            self.warmup,
            mib(self.final_rss),
            self.window,
            self.ratio().map_or("?".to_owned(), |r| format!("{r:.4}"))
        );
        println!(
            "  connects / drops       {} / {drops} (closed {}, mid-message {}, reset {}), {} failed; all up at {}",
            self.connects,
            self.drops[0],
            self.drops[1],
            self.drops[2],
            self.failed_connects,
            self.reached
                .map_or("never".to_owned(), |t| format!("{t:.0} s"))
        );
        println!(
            "  published / delivered  {} by publishers + {} by churned connections / {}",
            self.published, self.churn_published, self.delivered
        );
        println!(
            "  lost                   {} by stable members, {} by churned ones; {} rooms unfinished, {} connections closed by the server",
            self.stable_lost, self.churn_lost, self.unfinished_rooms, self.server_closes
        );
        println!(
            "  latency p50/p99/p999   {} / {} / {} µs",
            self.latency_us[0], self.latency_us[1], self.latency_us[2]
        );
        println!(
            "  server CPU             {:.1} s, {:.0}% of one core",
            self.server_cpu_s,
            100.0 * self.server_cpu_s / self.seconds.max(1.0)
        );
        println!(
            "  loadgen CPU            {:.0}% of one core",
            100.0 * self.loadgen_cpu_share
        );
        println!("JSON {}", self.json(failures.is_empty()));
        if failures.is_empty() {
            println!("verdict: PASS");
        } else {
            let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
            println!("verdict: FAIL: {}", reasons.join("; "));
        }
    }

    fn json(&self, passed: bool) -> serde_json::Value {
        json!({
            "scenario": "soak",
            "connections": self.connections,
            "rooms": self.rooms,
            "stable": self.stable,
            "seconds": self.seconds,
            "warmup_s": self.warmup,
            "window_s": self.window,
            "population_reached_s": self.reached,
            "settled_rss_bytes": self.settled_rss,
            "final_rss_bytes": self.final_rss,
            "rss_ratio": self.ratio().map(|r| (r * 10_000.0).round() / 10_000.0),
            "connects": self.connects,
            "failed_connects": self.failed_connects,
            "drops_closed": self.drops[0],
            "drops_mid_message": self.drops[1],
            "drops_reset": self.drops[2],
            "published": self.published,
            "churn_published": self.churn_published,
            "delivered": self.delivered,
            "lost": self.stable_lost + self.churn_lost,
            "stable_lost": self.stable_lost,
            "churn_lost": self.churn_lost,
            "unfinished_rooms": self.unfinished_rooms,
            "server_closes": self.server_closes,
            "p50_us": self.latency_us[0],
            "p99_us": self.latency_us[1],
            "p999_us": self.latency_us[2],
            "server_cpu_s": (self.server_cpu_s * 100.0).round() / 100.0,
            "loadgen_cpu_share": (self.loadgen_cpu_share * 1000.0).round() / 1000.0,
            "passed": passed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing() -> Figures {
        Figures {
            connections: 100,
            seconds: 60.0,
            warmup: 20.0,
            window: 10.0,
            reached: Some(3.0),
            settled_rss: Some(100 << 20),
            final_rss: Some(104 << 20),
            ..Figures::default()
        }
    }

    #[test]
    fn memory_within_five_percent_and_nothing_lost_passes() {
        assert_eq!(passing().failures(), []);
    }

    #[test]
    fn memory_more_than_five_percent_up_or_down_fails() {
        for final_mib in [106, 94] {
            let run = Figures {
                final_rss: Some(final_mib << 20),
                ..passing()
            };
            assert!(matches!(run.failures()[..], [Failure::RssMoved { .. }]));
        }
    }

    #[test]
    fn any_loss_failed_connect_or_server_close_fails() {
        let run = Figures {
            stable_lost: 1,
            churn_lost: 2,
            failed_connects: 3,
            server_closes: 4,
            unfinished_rooms: 5,
            ..passing()
        };
        assert_eq!(
            run.failures(),
            [
                Failure::StableLost(1),
                Failure::ChurnLost(2),
                Failure::ConnectsFailed(3),
                Failure::ServerClosed(4),
                Failure::Unfinished(5),
            ]
        );
    }

    #[test]
    fn a_population_reached_only_in_the_settled_window_fails() {
        let run = Figures {
            reached: Some(12.0),
            ..passing()
        };
        assert_eq!(run.failures(), [Failure::NotSettled(100)]);
        let never = Figures {
            reached: None,
            ..passing()
        };
        assert_eq!(never.failures(), [Failure::NotSettled(100)]);
    }
}
