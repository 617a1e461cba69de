//! Subscribers read on a thread of their own. Once the async client has set them up,
//! their sockets move to one epoll loop that decodes frames and records latencies, so
//! the generator spends per delivery close to what the kernel does: an async task per
//! socket pays a wake-up, a poll and a re-armed io_uring request for every message,
//! ~7 µs against ~2 µs here, which at 100 000 deliveries a second took most of the core
//! the generator shares with a shard.
//!
//! The thread answers keepalives as a live client does: a WebSocket ping with a pong,
//! SocketCluster's `#1` with `#2`, so the server's keepalive runs its full course.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use hdrhistogram::Histogram;
use turntable::net::ws::{self, Decoder, Flow, Message, Opcode, Role};

use super::client::Client;
use super::epoll::Epoll;
use super::{field_u64, latency_histogram};

/// The measured stretch, as publication timestamps (µs on the generator's clock):
/// publications stamped inside it are counted when sent and when delivered, so a
/// delivery that arrives after the window closes still counts.
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    pub fn contains(&self, t: u64) -> bool {
        (self.start.load(Ordering::Relaxed)..self.end.load(Ordering::Relaxed)).contains(&t)
    }

    pub fn open(&self, at: u64) {
        self.start.store(at, Ordering::Relaxed);
    }

    pub fn close(&self, at: u64) {
        self.end.store(at, Ordering::Relaxed);
    }

    /// The window's length in seconds.
    pub fn seconds(&self) -> f64 {
        let (start, end) = (
            self.start.load(Ordering::Relaxed),
            self.end.load(Ordering::Relaxed),
        );
        end.saturating_sub(start) as f64 / 1e6
    }
}

/// The reader thread and what it shares with the scenario.
pub struct Readers {
    delivered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<(u64, Histogram<u64>)>>,
}

impl Readers {
    /// Moves `clients` to a new reader thread, which counts every delivery of a
    /// publication stamped inside `window` and its latency on `clock` (the clock the
    /// stamps were taken on).
    pub fn spawn(clients: Vec<Client>, clock: Instant, window: Arc<Window>) -> io::Result<Readers> {
        let epoll = Epoll::new()?;
        let mut members = Vec::with_capacity(clients.len());
        for (i, client) in clients.into_iter().enumerate() {
            let (stream, pending) = client.into_std()?;
            epoll.add(stream.as_raw_fd(), i as u64)?;
            members.push(Member {
                stream: Some(stream),
                decoder: Decoder::new(Role::Client, 1 << 20),
                pending,
                answers: Vec::new(),
            });
        }
        let delivered = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            clock,
            window,
            delivered: delivered.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("loadgen-readers".into())
            .spawn(move || shared.read(epoll, members))?;
        Ok(Readers {
            delivered,
            stop,
            thread,
        })
    }

    /// Deliveries counted so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Stops the thread and returns the deliveries it counted and their latencies (µs).
    pub fn finish(self) -> io::Result<(u64, Histogram<u64>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the reader thread panicked"))?
    }
}

/// One subscriber's socket and the start of a frame not yet complete.
struct Member {
    /// `None` once the server closed it.
    stream: Option<TcpStream>,
    decoder: Decoder,
    pending: Vec<u8>,
    /// Keepalive answers to write after the frames just decoded.
    answers: Vec<u8>,
}

/// What the reader thread needs besides its sockets.
struct Shared {
    clock: Instant,
    window: Arc<Window>,
    delivered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Shared {
    fn read(self, epoll: Epoll, mut members: Vec<Member>) -> io::Result<(u64, Histogram<u64>)> {
        let mut latency_us = latency_histogram();
        let mut delivered = 0u64;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
        let mut buf = vec![0u8; 64 << 10];
        while !self.stop.load(Ordering::Relaxed) {
            let ready = epoll.wait(&mut events, 50)?;
            for event in &events[..ready] {
                let member = &mut members[event.u64 as usize];
                let Some(stream) = &member.stream else {
                    continue;
                };
                let n = match (&*stream).read(&mut buf) {
                    Ok(n) if n > 0 => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    _ => {
                        // Closed by the server (its missing deliveries show as lost);
                        // closing the socket takes it out of the epoll set.
                        member.stream = None;
                        continue;
                    }
                };
                let now_us = self.clock.elapsed().as_micros() as u64;
                let mut on_text = |text: &[u8]| {
                    if let Some(t) = field_u64(text, b"\"t\":")
                        && self.window.contains(t)
                    {
                        delivered += 1;
                        let _ = latency_us.record(now_us.saturating_sub(t).max(1));
                    }
                };
                if member.decode(&mut buf[..n], &mut on_text).is_err() {
                    member.stream = None;
                }
                member.answer();
            }
            self.delivered.store(delivered, Ordering::Relaxed);
        }
        Ok((delivered, latency_us))
    }
}

impl Member {
    /// Decodes the complete frames of `pending` followed by `data`, keeping the rest.
    fn decode(&mut self, data: &mut [u8], on_text: &mut impl FnMut(&[u8])) -> Result<(), ()> {
        let answers = &mut self.answers;
        let deliver = |msg: Message<'_>| {
            match msg {
                Message::Text(text) if &text[..] == b"#1" => answer(answers, Opcode::Text, b"#2"),
                Message::Text(text) => on_text(text),
                Message::Ping(payload) => answer(answers, Opcode::Pong, payload),
                _ => {}
            }
            Flow::Continue
        };
        if self.pending.is_empty() {
            let used = self.decoder.decode(data, deliver).map_err(drop)?;
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let used = self
                .decoder
                .decode(&mut self.pending, deliver)
                .map_err(drop)?;
            self.pending.drain(..used);
        }
        Ok(())
    }

    /// Writes the keepalive answers the last frames asked for (a full socket drops
    /// them: the server then closes the connection, and its deliveries show as lost).
    fn answer(&mut self) {
        if let Some(stream) = &self.stream
            && !self.answers.is_empty()
        {
            let _ = (&*stream).write_all(&self.answers);
            self.answers.clear();
        }
    }
}

/// Appends a masked client frame.
fn answer(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    ws::encode_frame(out, opcode, payload, Some([5, 9, 13, 17]));
}
