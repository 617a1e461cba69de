//! The sleep/notify handshake of the vendored glommio (vendor/glommio/PATCHES.md: no
//! `membarrier()` on sleep, a fence on each side instead) under stress: two executors
//! on threads of their own (pinned to separate cores when possible) pass a message
//! back and forth over glommio's shared channels, the transport of turntable's mesh,
//! in bursts of 1 to 64 round trips. An executor that waits parks at once (no
//! `spin_before_park`), so every round trip is two go-to-sleep / notify handshakes,
//! most of them racing the peer's message; between bursts one side also sleeps on a
//! timer for 10 µs to 400 µs, alternately, so the other is deeply asleep with no timer
//! armed and only the peer's notify can wake it. A lost wake-up leaves both sides
//! waiting forever: the watchdog (the test's own thread) fails the test after 10 s
//! without progress, naming the round trip and what each side was doing, instead of
//! hanging the suite.
//!
//! The target is a million round trips, but the test stops after 20 s (past 20 000
//! round trips): a round trip costs about 200 µs when the 2-core development machine
//! is busy compiling, so the million takes about 4 minutes there.
//! `TURNTABLE_WAKEUP_ROUND_TRIPS=1000000` runs exactly that many, with no time limit;
//! `TURNTABLE_WAKEUP_SPIN_US` sets a spin before parking, `TURNTABLE_WAKEUP_PIN=0`
//! leaves the executors unpinned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future::zip;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender};
use glommio::{LocalExecutorBuilder, Placement};

/// Round trips in a burst: 1 to `MAX_BURST`, varying so the naps fall at all phases.
const MAX_BURST: u64 = 64;
/// The naps between bursts, picked in turn by the burst's number: short ones, where the
/// message often comes as the peer goes to sleep, and long ones.
const NAPS: [Duration; 4] = [
    Duration::from_micros(10),
    Duration::from_micros(40),
    Duration::from_micros(80),
    Duration::from_micros(400),
];
/// The test stops after this long even if the million round trips are not done (see
/// the module comment), but not before `MIN_ROUND_TRIPS`.
const BUDGET: Duration = Duration::from_secs(20);
const MIN_ROUND_TRIPS: u64 = 20_000;
const STALL: Duration = Duration::from_secs(10);

/// What a side is doing, for the watchdog's report.
const CONNECTING: u8 = 0;
const RUNNING: u8 = 1;
const WAITING: u8 = 2;
const NAPPING: u8 = 3;
const DONE: u8 = 4;

#[derive(Default)]
struct Side {
    /// Messages this side has received.
    received: AtomicU64,
    /// Timer sleeps this side took between bursts, and how many were 400 µs long.
    naps: AtomicU64,
    long_naps: AtomicU64,
    state: AtomicU8,
    /// Voluntary context switches of the executor's thread while it ran the test:
    /// each is one time the thread blocked, which for an executor is going to sleep.
    parks: AtomicU64,
}

impl Side {
    fn describe(&self) -> &'static str {
        match self.state.load(Ordering::SeqCst) {
            CONNECTING => "connecting its channels",
            RUNNING => "running",
            WAITING => "waiting for a message",
            NAPPING => "in a timer sleep",
            _ => "finished",
        }
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Burst `n`'s length: a fixed pseudo-random sequence in 1..=MAX_BURST.
fn burst_len(n: u64) -> u64 {
    (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) % MAX_BURST + 1
}

/// The nap after burst `n`: another fixed pseudo-random sequence over `NAPS`.
fn nap_len(n: u64) -> Duration {
    NAPS[((n.wrapping_mul(0xD1B5_4A32_D192_ED03) >> 40) % NAPS.len() as u64) as usize]
}

fn voluntary_ctxt_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn recv(rx: &ConnectedReceiver<u64>, me: &Side) -> u64 {
    me.state.store(WAITING, Ordering::SeqCst);
    let v = rx.recv().await.expect("the peer closed its channel");
    me.state.store(RUNNING, Ordering::SeqCst);
    me.received.fetch_add(1, Ordering::SeqCst);
    v
}

async fn nap(me: &Side, burst: u64) {
    let len = nap_len(burst);
    me.state.store(NAPPING, Ordering::SeqCst);
    glommio::timer::sleep(len).await;
    me.state.store(RUNNING, Ordering::SeqCst);
    me.naps.fetch_add(1, Ordering::SeqCst);
    if len == NAPS[NAPS.len() - 1] {
        me.long_naps.fetch_add(1, Ordering::SeqCst);
    }
}

async fn send(tx: &ConnectedSender<u64>, v: u64) {
    tx.send(v).await.expect("the peer closed its channel");
}

/// Sent instead of a round trip's number when the time budget is spent.
const STOP: u64 = u64::MAX;

/// The initiator: sends round trip `i`, waits for it to come back; naps before every
/// even burst, while the echoer waits in `recv`. Returns the round trips done: `total`,
/// or fewer if `budget` runs out first.
async fn initiator(
    tx: ConnectedSender<u64>,
    rx: ConnectedReceiver<u64>,
    me: &Side,
    total: u64,
    budget: Option<Duration>,
) -> u64 {
    let started = Instant::now();
    let (mut i, mut burst) = (0, 0);
    while i < total {
        if budget.is_some_and(|b| i >= MIN_ROUND_TRIPS && started.elapsed() > b) {
            send(&tx, STOP).await;
            break;
        }
        if burst % 2 == 0 {
            nap(me, burst).await;
        }
        let end = (i + burst_len(burst)).min(total);
        while i < end {
            send(&tx, i).await;
            let back = recv(&rx, me).await;
            assert_eq!(back, i, "the echo of round trip {i}");
            i += 1;
        }
        burst += 1;
    }
    i
}

/// The echoer: sends each message back; before answering the last message of every odd
/// burst it naps, while the initiator waits in `recv`.
async fn echoer(tx: ConnectedSender<u64>, rx: ConnectedReceiver<u64>, me: &Side, total: u64) {
    let (mut i, mut burst) = (0, 0);
    while i < total {
        let end = (i + burst_len(burst)).min(total);
        while i < end {
            let v = recv(&rx, me).await;
            if v == STOP {
                return;
            }
            assert_eq!(v, i, "round trip {i} at the echoer");
            if i + 1 == end && burst % 2 == 1 {
                nap(me, burst).await;
            }
            send(&tx, v).await;
            i += 1;
        }
        burst += 1;
    }
}

/// Each executor pinned to a core of its own, as turntable's shards are; unbound if
/// there are fewer than two cores or pinning is refused.
fn placements() -> (Placement, Placement) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let pinnable = |c: core_affinity::CoreId| {
        std::thread::spawn(move || core_affinity::set_for_current(c))
            .join()
            .unwrap_or(false)
    };
    match cores[..] {
        _ if env("TURNTABLE_WAKEUP_PIN") == Some(0) => (Placement::Unbound, Placement::Unbound),
        [a, b, ..] if pinnable(a) && pinnable(b) => {
            (Placement::Fixed(a.id), Placement::Fixed(b.id))
        }
        _ => (Placement::Unbound, Placement::Unbound),
    }
}

#[test]
fn a_million_round_trips_between_sleeping_executors_lose_no_wake_up() {
    let (total, budget) = match env("TURNTABLE_WAKEUP_ROUND_TRIPS") {
        Some(n) => (n, None),
        None => (1_000_000, Some(BUDGET)),
    };
    let spin = Duration::from_micros(env("TURNTABLE_WAKEUP_SPIN_US").unwrap_or(0));
    let sides: Arc<[Side; 2]> = Arc::new(Default::default());
    let done = Arc::new(AtomicBool::new(false));
    let (to_echoer, from_initiator) = shared_channel::new_bounded::<u64>(1);
    let (to_initiator, from_echoer) = shared_channel::new_bounded::<u64>(1);
    let (pa, pb) = placements();
    let placed = format!("{pa:?}, {pb:?}");
    let started = Instant::now();

    let s = sides.clone();
    let a = LocalExecutorBuilder::new(pa)
        .name("wakeup-initiator")
        .io_memory(256 << 10)
        .spin_before_park(spin)
        .spawn(move || async move {
            let (tx, rx) = zip(to_echoer.connect(), from_echoer.connect()).await;
            let before = voluntary_ctxt_switches();
            let done = initiator(tx, rx, &s[0], total, budget).await;
            s[0].parks
                .store(voluntary_ctxt_switches() - before, Ordering::SeqCst);
            s[0].state.store(DONE, Ordering::SeqCst);
            done
        })
        .expect("cannot start the initiator's executor");
    let s = sides.clone();
    let d = done.clone();
    let b = LocalExecutorBuilder::new(pb)
        .name("wakeup-echoer")
        .io_memory(256 << 10)
        .spin_before_park(spin)
        .spawn(move || async move {
            let (tx, rx) = zip(to_initiator.connect(), from_initiator.connect()).await;
            let before = voluntary_ctxt_switches();
            echoer(tx, rx, &s[1], total).await;
            s[1].parks
                .store(voluntary_ctxt_switches() - before, Ordering::SeqCst);
            s[1].state.store(DONE, Ordering::SeqCst);
            d.store(true, Ordering::SeqCst);
        })
        .expect("cannot start the echoer's executor");

    // The watchdog: progress is any message received on either side.
    let progress =
        || sides[0].received.load(Ordering::SeqCst) + sides[1].received.load(Ordering::SeqCst);
    let (mut last, mut since) = (progress(), Instant::now());
    while !(done.load(Ordering::SeqCst) && sides[0].state.load(Ordering::SeqCst) == DONE) {
        std::thread::sleep(Duration::from_millis(50));
        let now = progress();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > STALL {
            let (ra, rb) = (
                sides[0].received.load(Ordering::SeqCst),
                sides[1].received.load(Ordering::SeqCst),
            );
            panic!(
                "no progress for {STALL:?}, a lost wake-up: at round trip {ra} of {total} the \
                 initiator is {} (it has received {ra} echoes) and the echoer is {} (it has \
                 received {rb} messages); {} and {} timer sleeps so far",
                sides[0].describe(),
                sides[1].describe(),
                sides[0].naps.load(Ordering::SeqCst),
                sides[1].naps.load(Ordering::SeqCst),
            );
        }
    }
    let done = a.join().expect("the initiator's executor failed");
    b.join().expect("the echoer's executor failed");
    let elapsed = started.elapsed();

    let [ia, eb] = &*sides;
    let load = |a: &AtomicU64| a.load(Ordering::SeqCst);
    let naps = [load(&ia.naps), load(&eb.naps)];
    let long = [load(&ia.long_naps), load(&eb.long_naps)];
    let parks = [load(&ia.parks), load(&eb.parks)];
    println!(
        "{done} round trips of {total} in {elapsed:.2?} ({placed}, spin {spin:?}); timer sleeps \
         (400 µs ones): initiator {} ({}), echoer {} ({}); times each executor's thread \
         blocked (voluntary context switches): initiator {}, echoer {}",
        naps[0], long[0], naps[1], long[1], parks[0], parks[1]
    );
    assert_eq!(load(&ia.received), done);
    assert_eq!(
        load(&eb.received),
        done + u64::from(done < total),
        "round trips and STOP"
    );
    // During a 400 µs nap the other side has nothing to do (for ten times the spin, if
    // one is set): its executor parks, to be woken by the notify of the message that
    // follows. Not one for one: a thread preempted for the whole nap finds the message
    // already there. (With no spin, each side parks about once per round trip.)
    assert!(long[0] > 0 && long[1] > 0, "both sides took long naps");
    assert!(
        parks[1] >= long[0] / 2 && parks[0] >= long[1] / 2,
        "each side's executor slept during its peer's long naps: parks {parks:?}, long naps {long:?}"
    );
}
