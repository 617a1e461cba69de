//! The shard's table of open WebSocket connections: for each, the bounded queue of
//! encoded frames waiting to be written, the waker of its task, keepalive bookkeeping,
//! and a close the server has asked for. Anything on the shard (engine deliveries, the
//! keepalive timers, shutdown) reaches a connection through here.
//!
//! Keepalive is scheduled by the runtime (`runtime::keepalive`, a timer wheel of
//! connection ids); [`ConnTable::keep_alive`] is what one due entry does: apply the
//! connection's policy at that instant (ping, beat, close) and say when to look again.
//! Silence is counted from `last_heard`, which every read updates without touching the
//! timers: an entry that comes due early just finds nothing to do and is re-armed.
//!
//! Frames for a WebSocket go out through the shard's writer: the table lists the
//! connections whose queue was empty when a frame arrived, and the writer task, run
//! once the producing task (a read, a mesh batch) has queued everything, writes each
//! listed queue with one vectored send. A delivery does not wake the connection's own
//! task: the writer wakes it when its socket is full or failed (to wait for room, or
//! end), and control frames and closes (`push_control`, `request_close`) wake it.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use super::latency::Histogram;
use super::rate::{Admit, Budget, RateLimit};
use super::socket::send_vectored;
use crate::engine::ConnId;
use crate::protocol::{CloseReason, DialectKind, Identify, Keepalive};

/// The most frames one vectored send carries.
const MAX_IOVECS: usize = 64;

/// An encoded WebSocket frame, shared by every connection it is queued on.
pub type Frame = Rc<[u8]>;

/// How a connection's dialect text reaches the client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One WebSocket text frame per message.
    Plain,
    /// SockJS frames (`o`, `a[...]`, `c[...]`) in WebSocket text frames.
    SockJsWebSocket,
    /// A SockJS session over HTTP requests: the queue holds each message quoted as a
    /// JSON string, and the request that receives them frames them (`a[...]`).
    SockJsHttp,
}

impl Framing {
    /// How many framings there are, for per-framing caches.
    pub const COUNT: usize = 3;

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One connection's shared state.
#[derive(Debug)]
pub struct Slot {
    generation: u32,
    pub dialect: DialectKind,
    pub framing: Framing,
    /// The socket the shard's writer sends a WebSocket connection's frames to; `None`
    /// for a SockJS HTTP session, whose frames the request polling it takes.
    socket: Option<RawFd>,
    /// Frames waiting to be written, oldest first.
    queue: VecDeque<Frame>,
    /// Bytes of the front frame already written.
    front_written: usize,
    /// Bytes of every frame in `queue`: kept right by the methods that change it.
    queued_bytes: usize,
    /// The connection task's waker, to call when there is something to do.
    waker: Option<Waker>,
    /// Set when the server decided to close the connection.
    close: Option<CloseReason>,
    /// When the client was last heard from.
    last_heard: Instant,
    /// A keepalive ping was sent since the client was last heard from.
    pinged: bool,
    /// On the writer's list.
    listed: bool,
    /// The messages the client may still send (see `rate`).
    budget: Budget,
    /// The connection identified as its dialect requires (see [`Identify`]).
    identified: bool,
    /// Beats (the dialect's periodic text) sent so far.
    beats: u32,
    /// When the connection opened: beats and the identify timeout count from here.
    opened: Instant,
}

impl Slot {
    /// Nothing is waiting to be written.
    pub fn is_drained(&self) -> bool {
        self.queue.is_empty()
    }

    /// The close the server asked for, if it did.
    pub fn close_requested(&self) -> Option<CloseReason> {
        self.close
    }

    /// Notes that the client was heard from now.
    pub fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.pinged = false;
    }

    /// Keeps the connection task's waker, to be called when there is something to do.
    pub fn park(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    /// The front frame and how much of it is written, if anything is queued.
    pub fn front(&self) -> Option<(Frame, usize)> {
        self.queue.front().map(|f| (f.clone(), self.front_written))
    }

    /// Takes up to `count` whole frames from the front of the queue (a SockJS HTTP
    /// session's messages, which are never partly written).
    pub fn take_front(&mut self, count: usize) -> Vec<Frame> {
        debug_assert_eq!(self.front_written, 0, "frames taken whole");
        let count = count.min(self.queue.len());
        let taken: Vec<Frame> = self.queue.drain(..count).collect();
        self.queued_bytes -= taken.iter().map(|f| f.len()).sum::<usize>();
        taken
    }

    /// Queues a frame, unless that would exceed the queue bound (the caller closes).
    fn push(&mut self, frame: Frame, max_bytes: usize) -> Result<(), NotQueued> {
        if self.queued_bytes + frame.len() > max_bytes {
            return Err(NotQueued::SlowConsumer);
        }
        self.queued_bytes += frame.len();
        self.queue.push_back(frame);
        Ok(())
    }

    /// Marks `n` more bytes as written, dropping finished frames; returns how many
    /// frames finished.
    pub fn advance(&mut self, mut n: usize) -> usize {
        let mut finished = 0;
        while n > 0 {
            let front = self.queue.front().expect("wrote more than was queued");
            let left = front.len() - self.front_written;
            if n < left {
                self.front_written += n;
                return finished;
            }
            n -= left;
            self.queued_bytes -= front.len();
            self.front_written = 0;
            self.queue.pop_front();
            finished += 1;
        }
        if self.queue.is_empty() && self.queue.capacity() > 64 {
            self.queue = VecDeque::new();
        }
        finished
    }

    /// Writes queued frames to `fd`, up to [`MAX_IOVECS`] per vectored send, until the
    /// queue is empty; `on_write(bytes, frames)` is told of each send. An error
    /// (`WouldBlock` when the socket is full) leaves the rest queued.
    pub fn send_queued(
        &mut self,
        fd: RawFd,
        mut on_write: impl FnMut(usize, usize),
    ) -> io::Result<()> {
        while !self.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (i, frame) in self.queue.iter().take(MAX_IOVECS).enumerate() {
                let start = if i == 0 { self.front_written } else { 0 };
                slices[i] = IoSlice::new(&frame[start..]);
                count += 1;
            }
            match send_vectored(fd, &slices[..count]) {
                Ok(n) => {
                    let frames = self.advance(n);
                    on_write(n, frames);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The connection is on the shard writer's list: what is queued goes out with the
    /// writer's batch.
    pub fn listed_for_writer(&self) -> bool {
        self.listed
    }

    /// Queues a control frame (keepalive ping, close) past the bound: there is at most
    /// one of each in flight, and a close must go out even to a slow consumer.
    pub fn push_control(&mut self, frame: Frame) {
        self.queued_bytes += frame.len();
        self.queue.push_back(frame);
        self.wake();
    }

    /// Wakes the connection's task (or the request waiting on a SockJS session).
    pub fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Asks the connection to close (the first reason wins).
    pub fn request_close(&mut self, reason: CloseReason) {
        if self.close.is_none() {
            self.close = Some(reason);
            if reason == CloseReason::SLOW_CONSUMER {
                // Drop the backlog, but finish a frame already partly written: the
                // close frame must start on a frame boundary.
                let keep = usize::from(self.front_written > 0);
                self.queue.truncate(keep);
                self.queued_bytes = self.queue.front().map_or(0, |f| f.len());
            }
        }
        self.wake();
    }
}

/// What keepalive does to the connections of one dialect in one framing: the dialect's
/// policies, with the frames they send already encoded for that framing.
#[derive(Clone, Debug, Default)]
pub struct KeepalivePlan {
    pub keepalive: Keepalive,
    pub identify: Option<Identify>,
    /// The WebSocket ping sent after `keepalive.ping_after` of silence.
    pub ping: Option<Frame>,
    /// The beat, `keepalive.beat`'s text in this framing.
    pub beat: Option<Frame>,
    /// The identify timeout's error in this framing.
    pub identify_error: Option<Frame>,
}

/// Why a frame was not queued for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotQueued {
    /// No such connection (it closed).
    Gone,
    /// The server is closing the connection: nothing more goes out but the close.
    Closing,
    /// The connection's dialect has nothing to send for this.
    NothingToSend,
    /// Its queue is full: the connection is being closed as a slow consumer.
    SlowConsumer,
}

/// All open WebSocket connections of one shard.
#[derive(Debug)]
pub struct ConnTable {
    slots: Slab<Slot>,
    next_generation: u32,
    max_outbound_bytes: usize,
    /// How many messages a connection may send.
    rate: RateLimit,
    /// Open connections by [`DialectKind::index`].
    pub by_dialect: [u64; DialectKind::COUNT],
    /// Connections closed as slow consumers since the start.
    pub slow_consumers: u64,
    /// WebSocket connections given frames since the writer last ran.
    ready: Vec<ConnId>,
    /// The shard writer's waker.
    writer: Option<Waker>,
    /// Connections opened since the keepalive timers last took them.
    opened: Vec<ConnId>,
    /// Spreads connections' keepalive phases (see [`ConnTable::phase`]).
    phase_seed: u64,
    /// When the publications queued since the writer last emptied its list reached
    /// the node (see [`ConnTable::time_delivery`]).
    timed: Vec<Instant>,
}

/// Publications one writer pass times at most; a busier pass is timed by its first.
const TIMED_PER_PASS: usize = 1024;

impl ConnTable {
    pub fn new(max_outbound_bytes: usize, rate: RateLimit) -> Self {
        ConnTable {
            slots: Slab::new(),
            next_generation: 0,
            max_outbound_bytes,
            rate,
            by_dialect: [0; DialectKind::COUNT],
            slow_consumers: 0,
            ready: Vec::new(),
            writer: None,
            opened: Vec::new(),
            phase_seed: RandomState::new().hash_one(0u64) | 1,
            timed: Vec::new(),
        }
    }

    /// Times a publication, which reached the node at `origin`, whose frames were just
    /// queued: [`ConnTable::observe_delivered`] takes its latency once the writer has
    /// sent them. Frames only for SockJS HTTP sessions (which the writer does not
    /// send) are not timed.
    pub fn time_delivery(&mut self, origin: Instant) {
        if !self.ready.is_empty() && self.timed.len() < TIMED_PER_PASS {
            self.timed.push(origin);
        }
    }

    /// Once the writer has sent every listed queue: the latency of each publication
    /// timed since, from its origin to now, into `histogram`.
    pub fn observe_delivered(&mut self, histogram: &Histogram) {
        if self.timed.is_empty() || !self.ready.is_empty() {
            return;
        }
        let now = Instant::now();
        for origin in self.timed.drain(..) {
            histogram.observe(now.saturating_duration_since(origin));
        }
    }

    /// Spends one of the connection's message budget; see [`RateLimit::admit`]. The
    /// time is when the bytes carrying the message were read ([`Slot::heard`], which
    /// every path that delivers messages calls first), so no clock is read per message.
    pub fn admit(&mut self, id: ConnId) -> Admit {
        let rate = self.rate;
        self.get_mut(id).map_or(Admit::Yes, |slot| {
            let heard = slot.last_heard;
            rate.admit(&mut slot.budget, heard)
        })
    }

    /// When the connection's client was last heard from ([`Slot::heard`]): when the
    /// bytes of the message being handled were read.
    pub fn last_heard(&self, id: ConnId) -> Option<Instant> {
        self.slots
            .get(key_of(id))
            .filter(|slot| u64::from(slot.generation) == id.0 >> 32)
            .map(|slot| slot.last_heard)
    }

    /// Registers a connection and returns its id; `socket` is what the shard's writer
    /// sends its frames to (a WebSocket's, open for as long as the connection is in the
    /// table), `None` for a SockJS HTTP session, whose frames the polling request takes.
    pub fn insert(
        &mut self,
        dialect: DialectKind,
        framing: Framing,
        socket: Option<RawFd>,
    ) -> ConnId {
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        self.by_dialect[dialect.index()] += 1;
        let now = Instant::now();
        let key = self.slots.insert(Slot {
            generation,
            dialect,
            framing,
            socket,
            queue: VecDeque::new(),
            front_written: 0,
            queued_bytes: 0,
            waker: None,
            close: None,
            last_heard: now,
            pinged: false,
            listed: false,
            budget: self.rate.fresh(now),
            identified: false,
            beats: 0,
            opened: now,
        });
        let id = ConnId(u64::from(generation) << 32 | key as u64);
        self.opened.push(id);
        id
    }

    /// Moves the connections opened since the last call to `into`, for the keepalive
    /// timers to arm.
    pub fn take_opened(&mut self, into: &mut Vec<ConnId>) {
        into.append(&mut self.opened);
    }

    /// Notes that a connection identified: its identify timeout no longer applies.
    pub fn identified(&mut self, id: ConnId) {
        if let Some(slot) = self.get_mut(id) {
            slot.identified = true;
        }
    }

    /// The connection's keepalive phase, a fraction in [0, 1) fixed at its opening and
    /// spread evenly whatever the opening times (connections that opened together, as in
    /// a reconnect storm, get phases all over the interval).
    fn phase(&self, id: ConnId) -> f64 {
        let mixed = (id.0 ^ self.phase_seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Applies a connection's keepalive at `now`, with the plan `plan_for` gives for its
    /// dialect and framing, and returns when it next has something due; `None` when
    /// nothing ever will (gone, closing, closed now, or no policy).
    ///
    /// * not identified within `identify.within` of opening: the identify error, then its
    ///   close (whether or not the client answers pings);
    /// * silent for `close_after`: closed with its reason;
    /// * silent for `ping_after` plus the connection's jitter (its phase times a 16th of
    ///   `ping_after`, at most a quarter of the wait from the ping to the close): one ping
    ///   until the client is heard again (while one is unanswered, the connection is
    ///   looked at again each such wait: an answer does not re-arm the timers);
    /// * beats: the first at the connection's phase of the interval after opening, then
    ///   every interval (beats missed while the shard was busy are not made up).
    ///
    /// Frames go out with the shard writer's next batch, not through a wake of the
    /// connection's task (but a close wakes it: the task sends its close frame).
    pub fn keep_alive<'p>(
        &mut self,
        id: ConnId,
        now: Instant,
        plan_for: impl FnOnce(DialectKind, Framing) -> &'p KeepalivePlan,
    ) -> Option<Instant> {
        let phase = self.phase(id);
        let slot = self.get_mut(id)?;
        if slot.close.is_some() {
            return None;
        }
        let plan = plan_for(slot.dialect, slot.framing);
        let mut next: Option<Instant> = None;
        let mut sooner = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        if let Some(identify) = plan.identify.filter(|_| !slot.identified) {
            let by = slot.opened + identify.within;
            if now >= by {
                if let Some(error) = &plan.identify_error {
                    self.push_past_bound(id, error.clone());
                }
                self.get_mut(id)?.request_close(identify.close);
                return None;
            }
            sooner(by);
        }
        let policy = plan.keepalive;
        if let Some((after, reason)) = policy.close_after {
            let at = slot.last_heard + after;
            if now >= at {
                slot.request_close(reason);
                return None;
            }
            sooner(at);
        }
        let mut ping = None;
        if let (Some(after), Some(frame)) = (policy.ping_after, &plan.ping) {
            let room = policy
                .close_after
                .map_or(Duration::MAX, |(close, _)| close.saturating_sub(after) / 4);
            let wait = after + (after / 16).min(room).mul_f64(phase);
            if !slot.pinged && now >= slot.last_heard + wait {
                slot.pinged = true;
                ping = Some(frame.clone());
            }
            if slot.pinged {
                // The answer may come at any moment, and the next ping is due a wait
                // after it: no sooner than a wait from now.
                sooner(now + wait);
            } else {
                sooner(slot.last_heard + wait);
            }
        }
        let mut beat = None;
        if let (Some((interval, _)), Some(frame)) = (policy.beat, &plan.beat) {
            let first = slot.opened + interval.mul_f64(phase);
            if now >= first + interval * slot.beats {
                let due = now.duration_since(first).as_nanos() / interval.as_nanos().max(1);
                slot.beats = u32::try_from(due + 1).unwrap_or(u32::MAX);
                beat = Some(frame.clone());
            }
            sooner(first + interval * slot.beats);
        }
        for frame in [ping, beat].into_iter().flatten() {
            self.push_past_bound(id, frame);
        }
        next
    }

    /// Queues a keepalive frame past the queue bound (there is at most one of each in
    /// flight) for the shard writer's next batch, or, for a SockJS HTTP session, wakes
    /// the request waiting on it.
    fn push_past_bound(&mut self, id: ConnId, frame: Frame) {
        let Some(slot) = slot_of(&mut self.slots, id) else {
            return;
        };
        let was_empty = slot.queue.is_empty();
        slot.queued_bytes += frame.len();
        slot.queue.push_back(frame);
        if was_empty {
            list_for_writer(slot, id, &mut self.ready, &mut self.writer);
        }
    }

    /// Forgets a connection (and the socket the writer sent to); its dialect, if it
    /// was still here.
    pub fn remove(&mut self, id: ConnId) -> Option<DialectKind> {
        let dialect = self.get_mut(id)?.dialect;
        self.by_dialect[dialect.index()] -= 1;
        self.slots.remove(key_of(id));
        Some(dialect)
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Slot> {
        slot_of(&mut self.slots, id)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Queues a frame for a connection and has it sent (by the shard's writer, or for a
    /// SockJS HTTP session by waking its task); a connection over its queue bound
    /// is closed as a slow consumer instead.
    pub fn push(&mut self, id: ConnId, frame: Frame) -> Result<(), NotQueued> {
        self.push_with(id, |_, _| Some(frame))
    }

    /// [`ConnTable::push`] of the frame `frame_for` makes for the connection's dialect
    /// and framing (`None`: nothing to send it), looking the connection up once.
    pub fn push_with(
        &mut self,
        id: ConnId,
        frame_for: impl FnOnce(DialectKind, Framing) -> Option<Frame>,
    ) -> Result<(), NotQueued> {
        let max = self.max_outbound_bytes;
        let Some(slot) = slot_of(&mut self.slots, id) else {
            return Err(NotQueued::Gone);
        };
        if slot.close.is_some() {
            return Err(NotQueued::Closing);
        }
        let Some(frame) = frame_for(slot.dialect, slot.framing) else {
            return Err(NotQueued::NothingToSend);
        };
        let was_empty = slot.queue.is_empty();
        if let Err(full) = slot.push(frame, max) {
            slot.request_close(CloseReason::SLOW_CONSUMER);
            self.slow_consumers += 1;
            tracing::warn!(
                conn = id.0,
                max_bytes = max,
                "slow consumer: outbound queue full, closing"
            );
            return Err(full);
        }
        if was_empty {
            list_for_writer(slot, id, &mut self.ready, &mut self.writer);
        }
        Ok(())
    }

    /// Ready once some connection has frames for the writer; otherwise keeps the
    /// writer's waker.
    pub fn poll_ready(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.ready.is_empty() {
            self.writer = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// The writer's turn: sends the queues of up to `max` listed connections, oldest
    /// first; true if more are listed. A connection whose socket is full or failed is
    /// woken to wait for room, or end, itself.
    pub fn write_ready(&mut self, max: usize, mut on_write: impl FnMut(usize, usize)) -> bool {
        let mut ready = std::mem::take(&mut self.ready);
        let count = ready.len().min(max);
        for id in ready.drain(..count) {
            let Some(slot) = self.get_mut(id) else {
                continue;
            };
            slot.listed = false;
            let fd = slot
                .socket
                .expect("only connections with a socket are listed");
            if slot.send_queued(fd, &mut on_write).is_err() {
                slot.wake();
            }
        }
        // Keep the list's allocation (and what is left of it) for the next turn.
        self.ready = ready;
        !self.ready.is_empty()
    }

    /// After a panic in the writer's turn: unlists every connection and wakes its task,
    /// which sends its own queue (what the listed ones were waiting for).
    pub fn reset_writer(&mut self) {
        self.ready.clear();
        for (_, slot) in self.slots.iter_mut() {
            slot.listed = false;
            slot.wake();
        }
    }

    /// Every connection, for the keepalive sweep and shutdown.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ConnId, &mut Slot)> {
        self.slots
            .iter_mut()
            .map(|(key, slot)| (ConnId(u64::from(slot.generation) << 32 | key as u64), slot))
    }
}

/// Has what was just queued on an empty queue sent: by the shard's writer (listed once,
/// the writer woken), or for a SockJS HTTP session by waking its task.
fn list_for_writer(
    slot: &mut Slot,
    id: ConnId,
    ready: &mut Vec<ConnId>,
    writer: &mut Option<Waker>,
) {
    if slot.socket.is_none() {
        slot.wake();
    } else if !slot.listed {
        slot.listed = true;
        ready.push(id);
        if let Some(writer) = writer.take() {
            writer.wake();
        }
    }
}

/// The slot of `id`, unless it closed (and its key went to another connection).
fn slot_of(slots: &mut Slab<Slot>, id: ConnId) -> Option<&mut Slot> {
    slots
        .get_mut(key_of(id))
        .filter(|slot| u64::from(slot.generation) == id.0 >> 32)
}

fn key_of(id: ConnId) -> usize {
    (id.0 & 0xffff_ffff) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn plan(keepalive: Keepalive) -> KeepalivePlan {
        KeepalivePlan {
            keepalive,
            identify: None,
            ping: Some(Rc::from(&b"ping"[..])),
            beat: Some(Rc::from(&b"#1"[..])),
            identify_error: Some(Rc::from(&b"err"[..])),
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn keepalive_pings_once_then_closes_and_hearing_resets_it() {
        let plan = plan(Keepalive {
            ping_after: Some(Duration::from_secs(30)),
            close_after: Some((Duration::from_secs(60), CloseReason::IDLE)),
            beat: None,
        });
        let mut t = ConnTable::new(4096, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::Turntable, Framing::Plain, None);
        let start = t.get_mut(a).unwrap().last_heard;
        let next = t.keep_alive(a, start + secs(29.0), |_, _| &plan).unwrap();
        assert!(t.get_mut(a).unwrap().is_drained(), "not due yet");
        let jitter = next - (start + secs(30.0));
        assert!(
            jitter <= secs(30.0 / 16.0),
            "the ping comes within its jitter"
        );
        assert_eq!(
            t.keep_alive(a, next, |_, _| &plan),
            Some(start + secs(60.0))
        );
        t.keep_alive(a, start + secs(45.0), |_, _| &plan);
        let slot = t.get_mut(a).unwrap();
        assert_eq!(slot.queue.len(), 1, "one ping per silence");
        assert_eq!(slot.close_requested(), None);
        slot.heard();
        slot.take_front(1);
        // Heard 50 s in (the test's clock).
        slot.last_heard = start + secs(50.0);
        let heard = slot.last_heard;
        // The entry armed for the close comes due, finds the client heard, re-arms.
        let next = t.keep_alive(a, start + secs(60.0), |_, _| &plan).unwrap();
        assert_eq!(
            next,
            heard + secs(30.0) + jitter,
            "the same phase each silence"
        );
        assert!(t.get_mut(a).unwrap().is_drained());
        t.keep_alive(a, next, |_, _| &plan);
        assert_eq!(
            t.get_mut(a).unwrap().queue.len(),
            1,
            "pinged again after hearing from the client"
        );
        assert_eq!(t.keep_alive(a, heard + secs(60.0), |_, _| &plan), None);
        assert_eq!(
            t.get_mut(a).unwrap().close_requested(),
            Some(CloseReason::IDLE)
        );
    }

    #[test]
    fn an_answered_ping_is_followed_by_the_next_one_a_wait_later() {
        let plan = plan(Keepalive {
            ping_after: Some(Duration::from_secs(1)),
            close_after: Some((Duration::from_secs(100), CloseReason::IDLE)),
            beat: None,
        });
        let mut t = ConnTable::new(4096, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::Turntable, Framing::Plain, None);
        let start = t.get_mut(a).unwrap().last_heard;
        let pinged = t.keep_alive(a, start, |_, _| &plan).unwrap();
        let wait = pinged - start;
        let next = t.keep_alive(a, pinged, |_, _| &plan).unwrap();
        assert_eq!(t.get_mut(a).unwrap().queue.len(), 1);
        assert_eq!(
            next,
            pinged + wait,
            "looked at again a wait later, not at the close"
        );
        // The pong comes at once: the next ping a wait after it.
        t.get_mut(a).unwrap().pinged = false;
        t.get_mut(a).unwrap().last_heard = pinged;
        assert_eq!(t.keep_alive(a, next, |_, _| &plan), Some(next + wait));
        assert_eq!(t.get_mut(a).unwrap().queue.len(), 2);
    }

    #[test]
    fn keepalive_without_a_ping_only_closes() {
        let reason = CloseReason::code(4001);
        let plan = plan(Keepalive {
            ping_after: None,
            close_after: Some((Duration::from_secs(20), reason)),
            beat: None,
        });
        let mut t = ConnTable::new(4096, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::SocketCluster, Framing::Plain, None);
        let start = t.get_mut(a).unwrap().last_heard;
        let next = t.keep_alive(a, start + secs(19.0), |_, _| &plan);
        assert_eq!(next, Some(start + secs(20.0)));
        let slot = t.get_mut(a).unwrap();
        assert!(slot.is_drained() && slot.close_requested().is_none());
        assert_eq!(t.keep_alive(a, start + secs(20.0), |_, _| &plan), None);
        assert_eq!(t.get_mut(a).unwrap().close_requested(), Some(reason));
    }

    #[test]
    fn beats_start_at_the_connections_phase_then_keep_the_interval() {
        let plan = plan(Keepalive {
            ping_after: None,
            close_after: None,
            beat: Some((Duration::from_secs(8), b"#1")),
        });
        let mut t = ConnTable::new(4096, RateLimit::new(0, 1));
        let mut firsts = Vec::new();
        for _ in 0..200 {
            let a = t.insert(DialectKind::SocketCluster, Framing::Plain, None);
            let opened = t.get_mut(a).unwrap().opened;
            let first = t.keep_alive(a, opened, |_, _| &plan).unwrap();
            assert!(first >= opened && first < opened + secs(8.0));
            assert!(
                t.get_mut(a).unwrap().is_drained(),
                "nothing before the phase"
            );
            let second = t.keep_alive(a, first, |_, _| &plan).unwrap();
            assert_eq!(second, first + secs(8.0));
            assert_eq!(t.get_mut(a).unwrap().queue.len(), 1);
            // Late by two intervals: one beat, and the cadence kept.
            let later = t.keep_alive(a, second + secs(16.5), |_, _| &plan).unwrap();
            assert_eq!(later, first + secs(32.0));
            assert_eq!(t.get_mut(a).unwrap().queue.len(), 2);
            firsts.push((first - opened).as_secs_f64());
        }
        // Connections opened together are spread over the interval.
        let early = firsts.iter().filter(|f| **f < 4.0).count();
        assert!(
            (60..140).contains(&early),
            "{early} of 200 in the first half"
        );
    }

    #[test]
    fn a_connection_that_does_not_identify_in_time_is_told_then_closed() {
        let reason = CloseReason::IDENTIFY_TIMEOUT;
        let mut plan = plan(Keepalive {
            ping_after: Some(Duration::from_secs(4)),
            close_after: Some((Duration::from_secs(8), CloseReason::IDLE)),
            beat: None,
        });
        plan.identify = Some(Identify {
            within: Duration::from_secs(10),
            error: Some(b"err"),
            close: reason,
        });
        let mut t = ConnTable::new(4096, RateLimit::new(0, 1));
        let (a, b) = (
            t.insert(DialectKind::Turntable, Framing::Plain, None),
            t.insert(DialectKind::Turntable, Framing::Plain, None),
        );
        t.identified(b);
        let opened = t.get_mut(a).unwrap().opened;
        for id in [a, b] {
            // Answering pings keeps the connection from its idle close...
            t.get_mut(id).unwrap().last_heard = opened + secs(9.0);
            t.get_mut(id).unwrap().pinged = false;
        }
        let next = t.keep_alive(a, opened + secs(9.5), |_, _| &plan);
        assert_eq!(next, Some(opened + secs(10.0)));
        assert_eq!(t.keep_alive(a, opened + secs(10.0), |_, _| &plan), None);
        let slot = t.get_mut(a).unwrap();
        assert_eq!(slot.close_requested(), Some(reason));
        assert_eq!(&*slot.front().unwrap().0, b"err", "the error first");
        // ...but not from the identify timeout; an identified one stays.
        assert!(t.keep_alive(b, opened + secs(10.0), |_, _| &plan).is_some());
        assert_eq!(t.get_mut(b).unwrap().close_requested(), None);
    }

    #[test]
    fn stale_ids_do_not_reach_a_reused_slot() {
        let mut t = ConnTable::new(1 << 20, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::Turntable, Framing::Plain, None);
        t.remove(a);
        let b = t.insert(DialectKind::Turntable, Framing::Plain, None);
        assert_eq!(key_of(a), key_of(b));
        assert_eq!(t.push(a, Rc::from(&b"x"[..])), Err(NotQueued::Gone));
        assert_eq!(Ok(()), t.push(b, Rc::from(&b"x"[..])));
    }

    #[test]
    fn a_full_queue_closes_the_connection_and_frees_its_frames() {
        let mut t = ConnTable::new(4096, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::Turntable, Framing::Plain, None);
        let frame: Frame = Rc::from(vec![0u8; 3000]);
        assert_eq!(Ok(()), t.push(a, frame.clone()));
        assert_eq!(t.push(a, frame.clone()), Err(NotQueued::SlowConsumer));
        let slot = t.get_mut(a).unwrap();
        assert_eq!(slot.close, Some(CloseReason::SLOW_CONSUMER));
        assert!(slot.queue.is_empty());
        assert_eq!(Rc::strong_count(&frame), 1);
    }

    #[test]
    fn a_slow_consumer_keeps_the_frame_it_is_halfway_through() {
        let mut t = ConnTable::new(4096, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::Turntable, Framing::Plain, None);
        let frame: Frame = Rc::from(vec![0u8; 2000]);
        assert_eq!(Ok(()), t.push(a, frame.clone()));
        assert_eq!(Ok(()), t.push(a, frame.clone()));
        t.get_mut(a).unwrap().advance(500);
        assert_eq!(t.push(a, frame.clone()), Err(NotQueued::SlowConsumer));
        let slot = t.get_mut(a).unwrap();
        assert_eq!(slot.queue.len(), 1);
        assert_eq!(slot.front_written, 500);
        slot.advance(1500);
        assert!(slot.queue.is_empty());
    }

    #[test]
    fn partial_writes_advance_through_frames() {
        let mut t = ConnTable::new(1 << 20, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::Turntable, Framing::Plain, None);
        let _ = t.push(a, Rc::from(&b"abc"[..]));
        let _ = t.push(a, Rc::from(&b"de"[..]));
        let slot = t.get_mut(a).unwrap();
        slot.advance(2);
        assert_eq!((slot.queue.len(), slot.front_written), (2, 2));
        slot.advance(2);
        assert_eq!((slot.queue.len(), slot.front_written), (1, 1));
        slot.advance(1);
        assert!(slot.queue.is_empty());
    }

    /// A waker that counts its wakes.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn counting_waker() -> (std::sync::Arc<CountingWaker>, Waker) {
        let counter = std::sync::Arc::new(CountingWaker(Default::default()));
        (counter.clone(), Waker::from(counter))
    }

    fn wakes(counter: &CountingWaker) -> usize {
        counter.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One WebSocket connection in a table with queue bound `max`, written to the near
    /// end of a socket pair: the table, the connection, its task's wake counter, and
    /// both ends (the near one must outlive the test's writes).
    fn socket_conn(max: usize) -> (ConnTable, ConnId, std::sync::Arc<CountingWaker>, Pair) {
        use std::os::fd::AsRawFd;
        let pair = UnixStream::pair().unwrap();
        let mut t = ConnTable::new(max, RateLimit::new(0, 1));
        let a = t.insert(
            DialectKind::Turntable,
            Framing::Plain,
            Some(pair.0.as_raw_fd()),
        );
        let (task, task_waker) = counting_waker();
        t.get_mut(a).unwrap().waker = Some(task_waker);
        (t, a, task, pair)
    }

    use std::os::unix::net::UnixStream;
    type Pair = (UnixStream, UnixStream);

    #[test]
    fn the_writer_sends_each_ready_queue_in_order_without_waking_its_task() {
        use std::io::Read;
        let (mut t, a, task, (_ours, mut peer)) = socket_conn(1 << 20);
        let (writer, writer_waker) = counting_waker();
        let cx = Context::from_waker(&writer_waker);
        assert!(t.poll_ready(&cx).is_pending());

        let _ = t.push(a, Rc::from(&b"one "[..]));
        let _ = t.push(a, Rc::from(&b"two"[..]));
        assert_eq!(wakes(&writer), 1, "the first frame wakes the writer once");
        assert!(t.poll_ready(&cx).is_ready());
        let mut written = (0, 0);
        assert!(!t.write_ready(usize::MAX, |bytes, frames| {
            written = (written.0 + bytes, written.1 + frames)
        }));
        assert_eq!(written, (7, 2));
        let mut got = [0u8; 7];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"one two");
        assert_eq!(wakes(&task), 0, "the connection's task slept through it");
        assert!(t.poll_ready(&cx).is_pending());
    }

    #[test]
    fn the_writer_leaves_what_is_over_its_budget_for_its_next_turn() {
        use std::os::fd::AsRawFd;
        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let mut t = ConnTable::new(1 << 20, RateLimit::new(0, 1));
        for (ours, _) in &pairs {
            let id = t.insert(
                DialectKind::Turntable,
                Framing::Plain,
                Some(ours.as_raw_fd()),
            );
            let _ = t.push(id, Rc::from(&b"x"[..]));
        }
        let mut frames = 0;
        assert!(t.write_ready(2, |_, f| frames += f), "one is left");
        assert_eq!(frames, 2);
        assert!(!t.write_ready(2, |_, f| frames += f));
        assert_eq!(frames, 3);
    }

    #[test]
    fn a_connection_is_listed_for_the_writer_once() {
        use std::os::fd::AsRawFd;
        let (mut t, a, _, (ours, _peer)) = socket_conn(1 << 20);
        let _ = t.push(a, Rc::from(&b"1"[..]));
        // Its own task sends that before the writer runs; a second frame comes.
        t.get_mut(a)
            .unwrap()
            .send_queued(ours.as_raw_fd(), |_, _| {})
            .unwrap();
        let _ = t.push(a, Rc::from(&b"2"[..]));
        let mut turns = Vec::new();
        assert!(
            !t.write_ready(1, |_, frames| turns.push(frames)),
            "listed once"
        );
        assert_eq!(turns, [1]);
    }

    #[test]
    fn after_a_writer_panic_the_tasks_send_their_own_queues() {
        let (mut t, a, task, _pair) = socket_conn(1 << 20);
        let _ = t.push(a, Rc::from(&b"1"[..]));
        t.reset_writer();
        assert_eq!(wakes(&task), 1);
        let (_, writer_waker) = counting_waker();
        assert!(
            t.poll_ready(&Context::from_waker(&writer_waker))
                .is_pending()
        );
        assert!(!t.get_mut(a).unwrap().listed);
    }

    #[test]
    fn a_full_socket_hands_the_rest_to_the_connection_task() {
        let (mut t, a, task, _pair) = socket_conn(64 << 20);
        let big: Frame = Rc::from(vec![0u8; 1 << 20]);
        for _ in 0..8 {
            let _ = t.push(a, big.clone());
        }
        t.write_ready(usize::MAX, |_, _| {});
        assert!(!t.get_mut(a).unwrap().queue.is_empty(), "the socket filled");
        assert_eq!(wakes(&task), 1, "the task waits for room itself");
    }

    #[test]
    fn sessions_without_a_socket_wake_their_task_instead() {
        let mut t = ConnTable::new(1 << 20, RateLimit::new(0, 1));
        let a = t.insert(DialectKind::Turntable, Framing::SockJsHttp, None);
        let (task, task_waker) = counting_waker();
        t.get_mut(a).unwrap().waker = Some(task_waker);
        let _ = t.push(a, Rc::from(&b"x"[..]));
        assert_eq!(wakes(&task), 1);
        let (_, writer_waker) = counting_waker();
        assert!(
            t.poll_ready(&Context::from_waker(&writer_waker))
                .is_pending()
        );
    }
}
