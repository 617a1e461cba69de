//! The presence storm: users connect at a steady rate over a few seconds, each
//! watching a set of friends who are connecting too. At the end every watcher must
//! see every friend online; the figure is the server's CPU per presence notification
//! (each status a watcher is told, in a snapshot or a change). With several addresses
//! (the nodes of a cluster) user i connects to address `i % n`, so most friends sit on
//! other nodes; redis-server's CPU is then reported apart.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use glommio::spawn_local;
use glommio::timer::Timer;

use super::{Snapshot, Tally, identify, wait_ready};

/// The scenario's settings.
pub struct Presence {
    /// Where the users connect, in turn.
    pub addrs: Vec<SocketAddr>,
    pub server_pid: Vec<u32>,
    pub redis_pid: Option<u32>,
    pub users: usize,
    pub friends: usize,
    /// Seconds over which the users connect.
    pub ramp: Duration,
}

/// What every watcher reports into.
#[derive(Default)]
struct Watched {
    /// Statuses received (snapshot entries and changes).
    notifications: Cell<u64>,
    /// Watchers that have seen all their friends online.
    correct: Cell<usize>,
}

impl Presence {
    pub async fn run(self) -> std::io::Result<()> {
        let tally = Tally::new();
        let watched = Rc::new(Watched::default());
        let done = Rc::new(Cell::new(false));
        let before = Snapshot::take(&self.server_pid);
        let redis_before = Snapshot::take(self.redis_pid.as_slice());
        let started = Instant::now();
        let gap = self.ramp.div_f64(self.users as f64);
        eprintln!(
            "connecting {} users over {:?}, each watching {} friends...",
            self.users, self.ramp, self.friends
        );
        for i in 0..self.users {
            Timer::new((started + gap.mul_f64(i as f64)).saturating_duration_since(Instant::now()))
                .await;
            let (tally, watched, done) = (tally.clone(), watched.clone(), done.clone());
            let addr = self.addrs[i % self.addrs.len()];
            let (users, friends) = (self.users, self.friends);
            spawn_local(async move {
                let ids: Vec<String> = (1..=friends)
                    .map(|k| format!("u{}", (i + k) % users))
                    .collect();
                let mut online: AHashMap<String, bool> = AHashMap::new();
                let mut c = match identify(addr, &format!("u{i}")).await {
                    Ok(c) => c,
                    Err(_) => return tally.failed.set(tally.failed.get() + 1),
                };
                let watch = format!(
                    r#"{{"command":"subscribe","data":{}}}"#,
                    serde_json::to_string(&ids).unwrap()
                );
                if c.send(watch.as_bytes()).await.is_err() {
                    return tally.failed.set(tally.failed.get() + 1);
                }
                tally.ready.set(tally.ready.get() + 1);
                // Users never leave here: once a watcher sees all its friends online it
                // is right for good.
                let mut right = false;
                while !right {
                    if c.recv(|text| record(text, &mut online, &watched))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    right = ids
                        .iter()
                        .all(|id| online.get(id).copied().unwrap_or(false));
                }
                watched.correct.set(watched.correct.get() + 1);
                while !done.get() {
                    if c.recv(|text| record(text, &mut online, &watched))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
            .detach();
        }
        wait_ready(&tally, self.users).await?;
        // Wait for every watcher to be right, or give up after 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        while watched.correct.get() < self.users && Instant::now() < deadline {
            Timer::new(Duration::from_millis(50)).await;
        }
        let after = Snapshot::take(&self.server_pid);
        let redis_after = Snapshot::take(self.redis_pid.as_slice());
        done.set(true);
        let notifications = watched.notifications.get() as f64;
        self.report(
            &watched,
            after.server_us_per(&before, notifications),
            redis_after.server_us_per(&redis_before, notifications),
        );
        tally.stop.set(true);
        Ok(())
    }

    fn report(&self, watched: &Watched, server_us: Option<f64>, redis_us: Option<f64>) {
        let notifications = watched.notifications.get();
        println!(
            "presence: {} users connecting over {:?} to {} address(es), {} friends each",
            self.users,
            self.ramp,
            self.addrs.len(),
            self.friends
        );
        println!(
            "  watchers right at the end  {} of {}",
            watched.correct.get(),
            self.users
        );
        println!("  statuses delivered         {notifications}");
        match server_us {
            Some(us) => println!("  server CPU/notification    {us:.3} µs (connects included)"),
            None => println!("  server CPU/notification    (pass --server-pid)"),
        }
        if let Some(us) = redis_us {
            println!("  redis CPU/notification     {us:.3} µs");
        }
        println!(
            "JSON {}",
            serde_json::json!({
                "scenario": "presence",
                "users": self.users,
                "friends": self.friends,
                "nodes": self.addrs.len(),
                "correct_watchers": watched.correct.get(),
                "notifications": notifications,
                "server_cpu_us_per_notification": server_us,
                "redis_cpu_us_per_notification": redis_us,
            })
        );
    }
}

/// Applies a `userchange` (snapshot or change) to a watcher's view.
fn record(text: &[u8], online: &mut AHashMap<String, bool>, watched: &Watched) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) else {
        return;
    };
    if value["command"] != "userchange" {
        return;
    }
    if let Some(statuses) = value["data"].as_object() {
        for (user, status) in statuses {
            watched.notifications.set(watched.notifications.get() + 1);
            online.insert(user.clone(), status != "offline");
        }
    }
}
