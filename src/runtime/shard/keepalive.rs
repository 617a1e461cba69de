//! The shard's keepalive timers: every connection's pings, beats (SocketCluster's `#1`),
//! silence closes and identify timeout, with work proportional to the connections that
//! are due, not to all of them.
//!
//! One hashed timer wheel per shard ([`Wheel`]): [`SLOTS`] buckets of [`TICK`] each,
//! a bucket a `Vec` of connection ids. A connection has one entry at a time, at the
//! next instant its keepalive has something due ([`ConnTable::keep_alive`] says when);
//! when its bucket comes round the entry is taken, the connection's policy applied,
//! and the entry re-armed at the next instant. Nothing is updated when a message
//! arrives: silence is counted from the connection's `last_heard`, so an entry that
//! comes due after the client spoke finds nothing to do and moves on. Entries of closed
//! connections are dropped when they come round (the id's generation no longer matches).
//!
//! Why a wheel rather than a `BinaryHeap` of `(due, id)`: arming and taking are O(1)
//! (a push onto a bucket, a bucket's drain) against the heap's O(log n) sifts through
//! memory far apart, and an entry is the 8-byte id alone (the heap's is 16 with its
//! due time, and needs the same lazy deletion). Deadlines beyond the wheel's span
//! ([`SLOTS`] × [`TICK`], 41 s) come round once per revolution early and are re-armed:
//! one table lookup per connection per 41 s.
//!
//! Connections are spread over each interval by their phase (`ConnTable::phase`,
//! random per connection), so connections that opened within the same second (a
//! reconnect storm) do not stay in step; the frames due go into the connections'
//! queues and the shard writer sends them with its next batch.

use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::timer::Timer;
use glommio::yield_if_needed;

use crate::engine::ConnId;
use crate::net::conns::{Framing, KeepalivePlan};
use crate::net::outbox::{frame, text_frame};
use crate::net::shard::Shard;
use crate::net::ws::Opcode;
use crate::protocol::{self, DialectKind, Keepalive, sockjs};

/// The wheel's resolution: a due entry is handled within a tick (and the timer's
/// lateness) of its instant, never before it.
pub const TICK: Duration = Duration::from_millis(10);

/// Buckets in the wheel (a power of two): 4096 × 10 ms spans 41 s, longer than the
/// default intervals (8 s beats, 30 s pings, 20 s SocketCluster silence).
pub const SLOTS: usize = 4096;

/// Due connections handled before the timers let the shard's other tasks run.
const BATCH: usize = 1024;

/// A hashed timer wheel of connection ids (see the module's documentation).
#[derive(Debug)]
pub struct Wheel {
    epoch: Instant,
    /// The next tick to take: every bucket before it has been taken.
    next: u64,
    buckets: Box<[Vec<ConnId>]>,
}

impl Wheel {
    /// An empty wheel whose tick 0 is `epoch`.
    pub fn new(epoch: Instant) -> Wheel {
        Wheel {
            epoch,
            next: 0,
            buckets: (0..SLOTS).map(|_| Vec::new()).collect(),
        }
    }

    /// Arms `id` at `at`: it is taken at the first tick at or after `at` (the next tick
    /// to take, if `at` has passed), or a revolution early when `at` is further than the
    /// wheel's span.
    pub fn arm(&mut self, id: ConnId, at: Instant) {
        let since = at.saturating_duration_since(self.epoch);
        let tick = (since.as_nanos().div_ceil(TICK.as_nanos()) as u64).max(self.next);
        self.buckets[tick as usize % SLOTS].push(id);
    }

    /// Moves every entry armed at or before `now` (and those of later revolutions in the
    /// same buckets) to `due`.
    pub fn take_due(&mut self, now: Instant, due: &mut Vec<ConnId>) {
        let upto = (now.saturating_duration_since(self.epoch).as_nanos() / TICK.as_nanos()) as u64;
        // After a stall of a whole revolution every bucket is due once.
        let first = self.next.max((upto + 1).saturating_sub(SLOTS as u64));
        for tick in first..=upto {
            due.append(&mut self.buckets[tick as usize % SLOTS]);
        }
        self.next = self.next.max(upto + 1);
    }
}

/// The keepalive plan of each dialect in each framing, indexed as
/// `dialect × Framing::COUNT + framing`: a SockJS WebSocket follows SockJS's ping rules
/// whatever its dialect, a SockJS HTTP session ends by its own timer; beats and the
/// identify timeout are the dialect's in every framing.
pub fn plans(settings: &protocol::Settings) -> Vec<KeepalivePlan> {
    let ping = frame(Opcode::Ping, b"");
    let mut table = vec![KeepalivePlan::default(); DialectKind::COUNT * Framing::COUNT];
    for &dialect in DialectKind::ALL {
        let own = dialect.keepalive(settings);
        let identify = dialect.identify(settings);
        for framing in [
            Framing::Plain,
            Framing::SockJsWebSocket,
            Framing::SockJsHttp,
        ] {
            let silence = match framing {
                Framing::Plain => own,
                Framing::SockJsWebSocket => sockjs::keepalive(settings),
                Framing::SockJsHttp => Keepalive::default(),
            };
            let keepalive = Keepalive {
                beat: own.beat,
                ..silence
            };
            table[index(dialect, framing)] = KeepalivePlan {
                keepalive,
                identify,
                ping: keepalive.ping_after.map(|_| ping.clone()),
                beat: keepalive.beat.map(|(_, text)| text_frame(framing, text)),
                identify_error: identify
                    .and_then(|i| i.error)
                    .map(|text| text_frame(framing, text)),
            };
        }
    }
    table
}

/// A plan's place in [`plans`]'s table.
pub fn index(dialect: DialectKind, framing: Framing) -> usize {
    dialect.index() * Framing::COUNT + framing.index()
}

/// The shard's keepalive task: each tick, arms the connections opened since the last
/// one and applies the keepalive of those due, [`BATCH`] at a time.
pub async fn run(shard: Rc<Shard>) {
    let plans = plans(&shard.dialects);
    let mut wheel = Wheel::new(Instant::now());
    let mut due = Vec::new();
    while !shard.stopping() {
        Timer::new(TICK).await;
        shard.conns.borrow_mut().take_opened(&mut due);
        wheel.take_due(Instant::now(), &mut due);
        for chunk in due.chunks(BATCH) {
            {
                let now = Instant::now();
                let mut conns = shard.conns.borrow_mut();
                for &id in chunk {
                    let next = conns.keep_alive(id, now, |d, f| &plans[index(d, f)]);
                    if let Some(at) = next {
                        wheel.arm(id, at);
                    }
                }
            }
            yield_if_needed().await;
        }
        due.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<ConnId> {
        (0..n).map(ConnId).collect()
    }

    #[test]
    fn an_entry_is_taken_at_its_tick_never_before() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        wheel.arm(ConnId(1), t0 + Duration::from_millis(25));
        let mut due = Vec::new();
        wheel.take_due(t0 + Duration::from_millis(29), &mut due);
        assert!(due.is_empty(), "tick 3 starts at 30 ms: {due:?}");
        wheel.take_due(t0 + Duration::from_millis(30), &mut due);
        assert_eq!(due, [ConnId(1)]);
        due.clear();
        wheel.take_due(t0 + Duration::from_millis(60), &mut due);
        assert!(due.is_empty(), "taken once");
    }

    #[test]
    fn a_past_instant_is_taken_at_the_next_tick() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        let mut due = Vec::new();
        wheel.take_due(t0 + Duration::from_millis(100), &mut due);
        wheel.arm(ConnId(7), t0);
        wheel.take_due(t0 + Duration::from_millis(105), &mut due);
        assert!(due.is_empty());
        wheel.take_due(t0 + Duration::from_millis(110), &mut due);
        assert_eq!(due, [ConnId(7)]);
    }

    #[test]
    fn beyond_the_span_an_entry_comes_round_early_and_after_a_stall_all_come_once() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        let span = TICK * SLOTS as u32;
        wheel.arm(ConnId(1), t0 + span + Duration::from_millis(50));
        let mut due = Vec::new();
        wheel.take_due(t0 + Duration::from_millis(50), &mut due);
        assert_eq!(
            due,
            [ConnId(1)],
            "one revolution early (the caller re-arms)"
        );
        due.clear();
        for id in ids(100) {
            wheel.arm(id, t0 + Duration::from_millis(100 + id.0 * 37));
        }
        wheel.take_due(t0 + 3 * span, &mut due);
        due.sort_by_key(|id| id.0);
        assert_eq!(due, ids(100));
    }

    #[test]
    fn every_dialect_has_a_plan_in_every_framing() {
        let settings = protocol::Settings {
            talker_ping_timeout: Duration::from_secs(45),
            ..protocol::Settings::default()
        };
        let table = plans(&settings);
        let sc = &table[index(DialectKind::SocketCluster, Framing::Plain)];
        assert!(sc.beat.is_some() && sc.ping.is_none());
        assert_eq!(sc.identify.map(|i| i.close.code), Some(4005));
        let tt = &table[index(DialectKind::Turntable, Framing::SockJsWebSocket)];
        assert_eq!(tt.keepalive.ping_after, Some(Duration::from_secs(25)));
        assert!(tt.identify_error.is_some());
        let http = &table[index(DialectKind::Talker, Framing::SockJsHttp)];
        assert_eq!(http.keepalive.close_after, None);
        assert!(http.identify.is_some());
        let echo = &table[index(DialectKind::Echo, Framing::Plain)];
        assert!(echo.identify.is_none());
    }
}
