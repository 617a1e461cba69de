//! One upgraded WebSocket connection: reading into the shard's buffer, decoding frames,
//! handing messages to the connection's dialect, writing its queued frames when it runs
//! (the shard's writer, see `conns`, sends what deliveries queue meanwhile) and, when
//! the socket is full, once it has room again — then the closing handshake.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::conns::{Frame, Framing};
use super::inbound;
use super::metrics::Tally;
use super::outbox::frame;
use super::shard::Shard;
use super::ws::{self, DecodeError, Decoder, Flow, Message, Opcode, Role};
use crate::engine::ConnId;
use crate::protocol::Opening;
use crate::protocol::{CloseReason, DialectKind, Session, sockjs};

/// How long a closing connection waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Reads handled in one turn before the task yields to others.
const READ_BUDGET: usize = 32;

/// Starts the WebSocket phase of an upgraded connection as a task of its own; `leftover`
/// holds the frames that came with the request.
pub fn spawn(
    shard: Rc<Shard>,
    stream: TcpStream,
    opening: &Opening,
    sockjs: bool,
    leftover: Vec<u8>,
) {
    let conn = WsConn::open(shard, stream, opening, sockjs, leftover);
    glommio::spawn_local(WsTask {
        conn,
        started: false,
    })
    .detach();
}

/// The WebSocket phase as a task of its own, sized for the connection rather than for
/// the HTTP phase before it (whose futures would otherwise sit in every idle
/// connection's task). A panic in a handler ends this connection only (caught here, so
/// it never unwinds through the connection, whose drop unregisters it).
struct WsTask {
    conn: WsConn,
    /// The frames that came with the request have been handled.
    started: bool,
}

impl Future for WsTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let WsTask { conn, started } = self.get_mut();
        let turn = || {
            if !std::mem::replace(started, true) {
                conn.decode_pending();
            }
            conn.poll(cx)
        };
        std::panic::catch_unwind(AssertUnwindSafe(turn)).unwrap_or_else(|_| {
            tracing::error!(
                shard = conn.shard.id,
                "connection handler panicked; connection closed"
            );
            Poll::Ready(())
        })
    }
}

/// Where a connection is in its life.
enum Phase {
    /// Messages flow both ways.
    Open,
    /// The client broke the protocol: what it sends is discarded; the close the server
    /// asked for goes out next.
    Failed,
    /// Our close frame is queued: what the client sends is read only to find its close
    /// frame (`discard`: not even that), until the linger ends.
    Closing { linger: Timer, discard: bool },
    /// The client's close frame came and ours is queued: the connection ends once ours
    /// is written, or at the linger's end.
    Closed { linger: Timer },
}

/// A WebSocket connection's own state (the shared part lives in the shard's table).
struct WsConn {
    shard: Rc<Shard>,
    id: ConnId,
    dialect: DialectKind,
    /// The dialect travels in SockJS frames.
    sockjs: bool,
    /// The dialect's per-connection protocol state.
    session: Session,
    stream: TcpStream,
    decoder: Decoder,
    /// Bytes of a partial frame, kept until the rest arrives.
    pending: Vec<u8>,
    phase: Phase,
}

impl Drop for WsConn {
    /// Unregisters the connection, however it ended.
    fn drop(&mut self) {
        // Runs where glommio drops a finished task, outside any catch_unwind: a panic
        // here must not take the shard down.
        let (shard, id) = (&self.shard, self.id);
        tracing::debug!(
            shard = shard.id,
            conn = id.0,
            dialect = self.dialect.name(),
            "connection closed"
        );
        if std::panic::catch_unwind(AssertUnwindSafe(|| shard.close_conn(id))).is_err() {
            tracing::error!(shard = shard.id, "unregistering a connection panicked");
        }
    }
}

/// What one read brought.
enum Read {
    Data,
    Eof,
}

impl WsConn {
    /// Registers an upgraded connection; `leftover` holds the frames that came with the
    /// request, for the task's first turn.
    fn open(
        shard: Rc<Shard>,
        stream: TcpStream,
        opening: &Opening,
        sockjs: bool,
        leftover: Vec<u8>,
    ) -> WsConn {
        let framing = if sockjs {
            Framing::SockJsWebSocket
        } else {
            Framing::Plain
        };
        let (id, session) = inbound::open(&shard, opening, framing, Some(stream.as_raw_fd()));
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                shard = shard.id,
                conn = id.0,
                dialect = opening.dialect.name(),
                sockjs,
                peer = %stream.peer_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
                "connection opened"
            );
        }
        WsConn {
            decoder: Decoder::new(Role::Server, shard.settings.max_message_bytes),
            shard,
            id,
            dialect: opening.dialect,
            sockjs,
            stream,
            session,
            pending: leftover,
            phase: Phase::Open,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..READ_BUDGET {
            if self.flush(cx).is_err() {
                return Poll::Ready(());
            }
            let (drained, close) = {
                let mut conns = self.shard.conns.borrow_mut();
                let Some(slot) = conns.get_mut(self.id) else {
                    return Poll::Ready(());
                };
                (slot.is_drained(), slot.close_requested())
            };
            if let (Some(reason), Phase::Open | Phase::Failed) = (close, &self.phase) {
                tracing::debug!(
                    shard = self.shard.id,
                    conn = self.id.0,
                    code = reason.code,
                    reason = reason.reason,
                    "the server closes the connection"
                );
                self.shard.detach(self.id, self.dialect);
                if self.sockjs && reason != sockjs::BROKEN_FRAMING {
                    // SockJS clients read the code and reason from a `c` frame (but
                    // broken framing is refused with the WebSocket close alone, as
                    // sockjs-node does).
                    self.push_sockjs_close(reason);
                    self.send_close(Some((1000, "Normal closure")));
                } else {
                    self.send_close(Some((reason.code, reason.reason)));
                }
                continue;
            }
            if let Phase::Closed { linger } = &mut self.phase {
                if drained || Pin::new(linger).poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                // Our close reply is queued; wait for it to be written.
                self.park(cx);
                return Poll::Pending;
            }
            if let Phase::Closing { linger, .. } = &mut self.phase
                && Pin::new(linger).poll(cx).is_ready()
            {
                return Poll::Ready(());
            }
            match self.read(cx) {
                Poll::Ready(Ok(Read::Data)) => continue,
                Poll::Ready(Ok(Read::Eof) | Err(_)) => return Poll::Ready(()),
                Poll::Pending => {
                    self.park(cx);
                    return Poll::Pending;
                }
            }
        }
        self.park(cx);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Leaves the task's waker where frame producers find it.
    fn park(&self, cx: &Context<'_>) {
        if let Some(slot) = self.shard.conns.borrow_mut().get_mut(self.id) {
            slot.park(cx.waker());
        }
    }

    /// Queues `c[code,"reason"]` for a SockJS client.
    fn push_sockjs_close(&self, reason: CloseReason) {
        let mut text = Vec::with_capacity(64);
        sockjs::write_close(&mut text, reason.code, reason.reason);
        if let Some(slot) = self.shard.conns.borrow_mut().get_mut(self.id) {
            slot.push_control(frame(Opcode::Text, &text));
        }
    }

    /// Queues a close frame (code and reason, or an empty one) and starts the linger.
    fn send_close(&mut self, code: Option<(u16, &str)>) {
        let mut payload = Vec::new();
        if let Some((code, reason)) = code {
            ws::encode_close(&mut payload, code, reason, None);
        } else {
            ws::encode_frame(&mut payload, Opcode::Close, b"", None);
        }
        if let Some(slot) = self.shard.conns.borrow_mut().get_mut(self.id) {
            slot.push_control(Frame::from(payload));
        }
        let discard = matches!(self.phase, Phase::Failed);
        self.phase = Phase::Closing {
            linger: Timer::new(CLOSE_LINGER),
            discard,
        };
    }

    /// Writes queued frames until the queue is empty or the socket is full (then the
    /// task is woken when it can write again).
    fn flush(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let mut conns = self.shard.conns.borrow_mut();
        let Some(slot) = conns.get_mut(self.id) else {
            return Ok(());
        };
        // Frames the writer will send with its batch wait for it (a reply to what this
        // task just read, say); a closing connection sends its own.
        let open = matches!(self.phase, Phase::Open | Phase::Failed);
        if slot.listed_for_writer() && slot.close_requested().is_none() && open {
            return Ok(());
        }
        let tally = &self.shard.tally;
        loop {
            match slot.send_queued(self.stream.as_raw_fd(), |n, frames| tally.wrote(n, frames)) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Let glommio register interest in writability: it retries the
                    // front frame and parks the task if the socket is still full.
                    let (front, start) = slot.front().expect("not empty");
                    match Pin::new(&mut self.stream).poll_write(cx, &front[start..]) {
                        Poll::Ready(Ok(n)) => tally.wrote(n, slot.advance(n)),
                        Poll::Ready(Err(e)) => return Err(e),
                        Poll::Pending => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads once into the shard's buffer and handles every complete frame.
    fn read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Read>> {
        let shard = self.shard.clone();
        let mut buf = shard.read_buf.borrow_mut();
        let n = match Pin::new(&mut self.stream).poll_read(cx, &mut buf[..]) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if n == 0 {
            return Poll::Ready(Ok(Read::Eof));
        }
        Tally::add(&shard.tally.bytes_in, n);
        if let Some(slot) = shard.conns.borrow_mut().get_mut(self.id) {
            slot.heard();
        }
        if matches!(
            self.phase,
            Phase::Failed | Phase::Closed { .. } | Phase::Closing { discard: true, .. }
        ) {
            return Poll::Ready(Ok(Read::Data));
        }
        if self.pending.is_empty() {
            let consumed = self.decode(&mut buf[..n]);
            if consumed < n && !matches!(self.phase, Phase::Failed) {
                self.pending.extend_from_slice(&buf[consumed..n]);
            }
        } else {
            self.pending.extend_from_slice(&buf[..n]);
            drop(buf);
            self.decode_pending();
        }
        Poll::Ready(Ok(Read::Data))
    }

    /// Decodes what `pending` holds and keeps only the unconsumed tail.
    fn decode_pending(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let consumed = self.decode(&mut pending);
        pending.drain(..consumed.min(pending.len()));
        // An idle connection holds no read buffer: only a partial frame keeps one.
        if pending.is_empty() {
            pending = Vec::new();
        }
        self.pending = pending;
    }

    /// Decodes complete frames from `data`, returning how many bytes were used.
    fn decode(&mut self, data: &mut [u8]) -> usize {
        let (shard, id, sockjs) = (&*self.shard, self.id, self.sockjs);
        let session = &mut self.session;
        // Once our close frame is queued nothing else may follow it: what the client
        // sends meanwhile is read only to find its close frame.
        let closing = !matches!(self.phase, Phase::Open);
        let mut close: Option<Option<(u16, String)>> = None;
        let result = self.decoder.decode(data, |msg| match msg {
            Message::Close(c) => {
                close = Some(c.map(|(code, reason)| (code, reason.to_owned())));
                Flow::Stop
            }
            _ if closing => Flow::Continue,
            other => {
                shard.tally.message_in();
                inbound::on_frame(shard, id, session, sockjs, other);
                Flow::Continue
            }
        });
        let consumed = match result {
            Ok(consumed) => consumed,
            Err(e) => {
                self.fail(e);
                return data.len();
            }
        };
        if let Some(code) = close {
            tracing::debug!(
                shard = self.shard.id,
                conn = self.id.0,
                code = code.as_ref().map(|(c, _)| *c),
                reason = code.as_ref().map(|(_, r)| r.as_str()),
                "the client closes the connection"
            );
            self.shard.detach(self.id, self.dialect);
            if matches!(self.phase, Phase::Open) {
                // Echo the client's code, as RFC 6455 section 5.5.1 asks.
                self.send_close(code.map(|(c, _)| (c, "")));
            }
            let linger = match std::mem::replace(&mut self.phase, Phase::Open) {
                Phase::Closing { linger, .. } | Phase::Closed { linger } => linger,
                Phase::Open | Phase::Failed => Timer::new(CLOSE_LINGER),
            };
            self.phase = Phase::Closed { linger };
        }
        consumed
    }

    fn fail(&mut self, e: DecodeError) {
        tracing::info!(
            shard = self.shard.id,
            code = e.close_code(),
            reason = e.reason(),
            "closing a connection that broke the WebSocket protocol"
        );
        match &mut self.phase {
            Phase::Open => self.phase = Phase::Failed,
            Phase::Closing { discard, .. } => *discard = true,
            Phase::Failed | Phase::Closed { .. } => {}
        }
        self.pending = Vec::new();
        if let Some(slot) = self.shard.conns.borrow_mut().get_mut(self.id) {
            slot.request_close(CloseReason {
                code: e.close_code(),
                reason: e.reason(),
            });
        }
    }
}
