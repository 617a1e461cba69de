//! The machine's floor for the rooms shape, with no server in the way: one thread
//! writes a 100-byte message to each connection of a group per publication (cycling
//! through the groups at a fixed rate), another reads them all with epoll. What the
//! writer spends per write and the latencies the reader sees are what the kernel's
//! loopback path alone costs on this machine: the figure to hold turntable's rooms
//! results against, since every delivery there pays at least this much.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::epoll::Epoll;
use super::latency_histogram;
use super::proc_stats::thread_cpu_time;

/// Bytes per message; the first 8 carry the send time.
const MESSAGE: usize = 100;

/// The scenario's settings.
pub struct Floor {
    /// Connections in all (at most ~9 000 here: each takes two descriptors).
    pub connections: usize,
    /// Connections written per publication.
    pub group: usize,
    /// Publications per second.
    pub rate: f64,
    pub duration: Duration,
}

/// What the reader thread measured.
struct Received {
    latency_us: Histogram<u64>,
    messages: u64,
    cpu: Duration,
}

impl Floor {
    pub fn run(self) -> io::Result<()> {
        let group = self.group.clamp(1, self.connections.max(1));
        let (writers, readers) = connect_pairs(self.connections.max(group))?;
        let rounds = (self.rate * self.duration.as_secs_f64()).ceil().max(1.0) as u64;
        let expected = rounds * group as u64;
        let start = Instant::now();
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let reader_core = cores.get(1).copied();
        // The reader gives up after this long without a message.
        let patience = Duration::from_secs_f64((3.0 / self.rate).max(1.0));
        let reader = std::thread::spawn(move || {
            if let Some(core) = reader_core {
                core_affinity::set_for_current(core);
            }
            read_all(readers, expected, start, patience)
        });
        if let Some(&core) = cores.first() {
            core_affinity::set_for_current(core);
        }
        eprintln!(
            "floor: {} loopback connections, {group} written per publication, {}/s for {:?}",
            writers.len(),
            self.rate,
            self.duration
        );
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let mut message = [b'x'; MESSAGE];
        let mut writing = Duration::ZERO;
        for round in 0..rounds {
            let due = start + interval * round as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let sent_us = due.duration_since(start).as_micros() as u64;
            message[..8].copy_from_slice(&sent_us.to_le_bytes());
            let before = thread_cpu_time();
            let first = (round as usize * group) % (writers.len() - group + 1);
            for stream in &writers[first..first + group] {
                (&*stream).write_all(&message)?;
            }
            writing += thread_cpu_time() - before;
        }
        let got = reader.join().expect("reader thread")?;
        let h = &got.latency_us;
        let per_write_us = writing.as_secs_f64() * 1e6 / expected as f64;
        let per_read_us = got.cpu.as_secs_f64() * 1e6 / got.messages.max(1) as f64;
        println!(
            "floor: {group} of {} connections per publication, {}/s",
            writers.len(),
            self.rate
        );
        println!("  received / sent        {} / {expected}", got.messages);
        println!(
            "  latency p50/p99/p999   {} / {} / {} µs",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        );
        println!("  writer CPU/write       {per_write_us:.3} µs");
        println!("  reader CPU/message     {per_read_us:.3} µs");
        println!(
            "JSON {{\"scenario\":\"floor\",\"connections\":{},\"group\":{group},\"rate\":{},\"sent\":{expected},\"received\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"writer_cpu_us_per_write\":{per_write_us:.4},\"reader_cpu_us_per_message\":{per_read_us:.4}}}",
            writers.len(),
            self.rate,
            got.messages,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        );
        Ok(())
    }
}

/// `n` connected loopback pairs: the writing ends and the reading ends.
fn connect_pairs(n: usize) -> io::Result<(Vec<TcpStream>, Vec<TcpStream>)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let (mut writers, mut readers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let writer = TcpStream::connect(addr)?;
        writer.set_nodelay(true)?;
        let (reader, _) = listener.accept()?;
        reader.set_nonblocking(true)?;
        writers.push(writer);
        readers.push(reader);
    }
    Ok((writers, readers))
}

/// Reads until `expected` messages arrived (or nothing came for `patience`), recording
/// each one's latency from the time it was due to be sent.
fn read_all(
    readers: Vec<TcpStream>,
    expected: u64,
    start: Instant,
    patience: Duration,
) -> io::Result<Received> {
    let epoll = Epoll::new()?;
    for (i, stream) in readers.iter().enumerate() {
        epoll.add(stream.as_raw_fd(), i as u64)?;
    }
    // `None` once closed (which takes the socket out of the epoll set).
    let mut readers: Vec<Option<TcpStream>> = readers.into_iter().map(Some).collect();
    let patience_ms = patience.as_millis().min(i32::MAX as u128) as i32;
    let mut partial: Vec<Vec<u8>> = vec![Vec::new(); readers.len()];
    let mut got = Received {
        latency_us: latency_histogram(),
        messages: 0,
        cpu: Duration::ZERO,
    };
    let before = thread_cpu_time();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let mut buf = vec![0u8; 64 << 10];
    while got.messages < expected {
        let ready = epoll.wait(&mut events, patience_ms)?;
        if ready == 0 {
            break;
        }
        for event in &events[..ready] {
            let i = event.u64 as usize;
            let Some(stream) = &readers[i] else {
                continue;
            };
            let n = match (&*stream).read(&mut buf) {
                Ok(0) => {
                    readers[i] = None;
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            let now_us = start.elapsed().as_micros() as u64;
            let pending = &mut partial[i];
            pending.extend_from_slice(&buf[..n]);
            let whole = pending.len() / MESSAGE * MESSAGE;
            for message in pending[..whole].chunks_exact(MESSAGE) {
                let sent = u64::from_le_bytes(message[..8].try_into().expect("8 bytes"));
                let _ = got.latency_us.record(now_us.saturating_sub(sent).max(1));
                got.messages += 1;
            }
            pending.drain(..whole);
        }
    }
    got.cpu = thread_cpu_time() - before;
    Ok(got)
}
