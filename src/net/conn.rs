//! One client connection from accept to close: the HTTP request head, then either a
//! plain HTTP answer or the WebSocket phase — reading into the shard's buffer, decoding
//! frames, handing messages to the connection's dialect, and writing its queued frames
//! when it runs (the shard's writer, see `conns`, sends what deliveries queue meanwhile)
//! and, when the socket is full, once it has room again.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::future::{self, FutureExt};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::conns::{CloseReason, Dialect, Frame, Framing};
use super::dispatch::{self, Session};
use super::http::{self, Decision, Parsed, Route};
use super::ws::{self, DecodeError, Decoder, Flow, Message, Opcode, Role};
use super::{api, sockjs_session};
use crate::engine::ConnId;
use crate::engine::owner_shard;
use crate::protocol::sockjs;
use crate::runtime::handover;
use crate::runtime::metrics::Tally;
use crate::runtime::outbox::frame;
use crate::runtime::shard::Shard;

/// How long a closing connection waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Reads handled in one turn before the task yields to others.
const READ_BUDGET: usize = 32;

/// Serves one TCP connection until it closes: accepted here, or handed over by another
/// shard with the bytes it had read. A panic while serving it ends this connection only.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream, read: Vec<u8>) {
    let id = shard.id;
    if AssertUnwindSafe(serve_from(shard, stream, read))
        .catch_unwind()
        .await
        .is_err()
    {
        tracing::error!(shard = id, "request handler panicked; connection closed");
    }
}

async fn serve_from(shard: Rc<Shard>, mut stream: TcpStream, mut head: Vec<u8>) {
    let _ = stream.set_nodelay(true);
    loop {
        let Some((head_len, decision)) = read_head(&shard, &mut stream, &mut head).await else {
            return;
        };
        match decision {
            Decision::Reject { response } => {
                shard.tally.http_response(http::status_of(&response));
                let _ = stream.write_all(&response).await;
                return;
            }
            Decision::SockJs(request) => {
                let home = owner_shard(&request.session, 1, shard.config.shards);
                if home != shard.id
                    && let Some(senders) = shard.handover.get()
                {
                    if handover::hand_over(senders, home, &stream, std::mem::take(&mut head)) {
                        return;
                    }
                    tracing::warn!(
                        shard = shard.id,
                        to = home,
                        "could not hand a SockJS request to its session's shard"
                    );
                    let busy = http::respond(503, "text/plain", b"try again\n", false);
                    shard.tally.http_response(503);
                    let _ = stream.write_all(&busy).await;
                    return;
                }
                let (body, end) =
                    match read_body(&shard, &mut stream, &mut head, head_len, request.body_len)
                        .await
                    {
                        Ok(read) => read,
                        Err(BodyError::Gone) => return,
                        Err(BodyError::Malformed) => {
                            let bad =
                                http::respond(400, "text/plain", b"broken chunked body\n", false);
                            shard.tally.http_response(400);
                            let _ = stream.write_all(&bad).await;
                            return;
                        }
                    };
                if !Box::pin(sockjs_session::serve(&shard, &mut stream, &request, &body)).await {
                    return;
                }
                head.drain(..end);
            }
            Decision::Respond { response } => {
                shard.tally.http_response(http::status_of(&response));
                if stream.write_all(&response).await.is_err() {
                    return;
                }
                head.drain(..head_len);
            }
            Decision::Api(request) => {
                let end = head_len + request.body_len;
                if !read_at_least(&shard, &mut stream, &mut head, end).await {
                    return;
                }
                // Boxed, as the other rare phases: a future's state is sized for its
                // largest phase, and every idle WebSocket would carry the API's.
                let response = Box::pin(api::answer(&shard, &request, &head[head_len..end])).await;
                shard.tally.http_response(http::status_of(&response));
                if stream.write_all(&response).await.is_err() || !request.keep_alive {
                    return;
                }
                head.drain(..end);
            }
            Decision::Http { route, keep_alive } => {
                let response = answer_http(&shard, route, keep_alive);
                shard.tally.http_response(http::status_of(&response));
                if stream.write_all(&response).await.is_err() || !keep_alive {
                    return;
                }
                head.drain(..head_len);
            }
            Decision::Upgrade {
                route,
                response,
                sockjs,
            } => {
                let Some((dialect, session)) = Session::for_route(route, &shard) else {
                    return;
                };
                let response = with_shard_header(response, shard.id);
                shard.tally.http_response(101);
                let written = stream.write_all(&response).await;
                drop(response); // not held for the connection's lifetime
                if written.is_err() {
                    return;
                }
                head.drain(..head_len);
                let conn = WsConn::open(shard, stream, dialect, sockjs, session, head);
                glommio::spawn_local(WsTask {
                    conn,
                    started: false,
                })
                .detach();
                return;
            }
        }
    }
}

/// Reads until `buf` holds at least `len` bytes (a request body after its head); false
/// on timeout, EOF or error.
async fn read_at_least(
    shard: &Shard,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: usize,
) -> bool {
    let deadline = Instant::now() + shard.config.handshake_timeout;
    while buf.len() < len {
        if !read_more(stream, buf, deadline).await {
            return false;
        }
    }
    true
}

/// Why a request body could not be read.
enum BodyError {
    /// Timeout, EOF or a socket error: nobody to answer.
    Gone,
    /// A chunked body that breaks the chunked coding (answered with 400).
    Malformed,
}

/// Reads the body after a head of `head_len` bytes — `len` bytes, or chunked if `None`
/// — and returns it with where it ends in `buf`.
async fn read_body(
    shard: &Shard,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_len: usize,
    len: Option<usize>,
) -> Result<(Vec<u8>, usize), BodyError> {
    if let Some(len) = len {
        let end = head_len + len;
        return match read_at_least(shard, stream, buf, end).await {
            true => Ok((buf[head_len..end].to_vec(), end)),
            false => Err(BodyError::Gone),
        };
    }
    let deadline = Instant::now() + shard.config.handshake_timeout;
    loop {
        match super::sockjs::dechunk(&buf[head_len..]) {
            Some(Ok((body, used))) => return Ok((body, head_len + used)),
            Some(Err(())) => return Err(BodyError::Malformed),
            None if !read_more(stream, buf, deadline).await => return Err(BodyError::Gone),
            None => {}
        }
    }
}

/// Reads once more into `buf`; false on timeout, EOF or error. (Into `buf` itself, not
/// a buffer on the stack: that would sit in every connection task's state.)
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> bool {
    const CHUNK: usize = 2048;
    let start = buf.len();
    // Reads grow with what is buffered, so a large body takes few reads (and a chunked
    // one few re-parses).
    buf.resize(start + CHUNK.max(start.min(64 << 10)), 0);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let read = future::or(
        async { Some(stream.read(&mut buf[start..]).await) },
        async {
            Timer::new(remaining).await;
            None
        },
    )
    .await;
    let n = match read {
        Some(Ok(n)) => n,
        _ => 0,
    };
    buf.truncate(start + n);
    n > 0
}

/// Reads until a complete request head is buffered; `None` on timeout, EOF or error.
async fn read_head(
    shard: &Shard,
    stream: &mut TcpStream,
    head: &mut Vec<u8>,
) -> Option<(usize, Decision)> {
    let deadline = Instant::now() + shard.config.handshake_timeout;
    loop {
        if let Parsed::Done { head_len, decision } = http::parse_request(head, &shard.routes) {
            return Some((head_len, decision));
        }
        if !read_more(stream, head, deadline).await {
            return None;
        }
    }
}

fn answer_http(shard: &Shard, route: Route, keep_alive: bool) -> Vec<u8> {
    match route {
        Route::Healthz => {
            let per_shard = shard.figures.connections();
            let total: usize = per_shard.iter().sum();
            let body = format!(
                r#"{{"status":"ok","shard":{},"shards":{},"connections":{},"per_shard":{}}}"#,
                shard.id,
                per_shard.len(),
                total,
                serde_json::to_string(&per_shard).expect("a list of numbers")
            );
            http::respond(200, "application/json", body.as_bytes(), keep_alive)
        }
        Route::Metrics => {
            let text = shard.figures.prometheus();
            http::respond(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text.as_bytes(),
                keep_alive,
            )
        }
        _ => http::respond(404, "text/plain", b"not found\n", false),
    }
}

/// Adds `X-Turntable-Shard` to the 101 response: operators and tests can see which
/// shard a connection landed on.
fn with_shard_header(mut response: Vec<u8>, shard: usize) -> Vec<u8> {
    let end = response.len() - 2;
    let header = format!("X-Turntable-Shard: {shard}\r\n");
    response.splice(end..end, header.bytes());
    response
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

/// A WebSocket connection's own state (the shared part lives in the shard's table).
struct WsConn {
    shard: Rc<Shard>,
    id: ConnId,
    dialect: Dialect,
    /// The dialect travels in SockJS frames.
    sockjs: bool,
    /// The dialect's per-connection protocol state.
    session: Session,
    stream: TcpStream,
    decoder: Decoder,
    /// Bytes of a partial frame, kept until the rest arrives.
    pending: Vec<u8>,
    close_sent: bool,
    close_received: bool,
    /// The client broke the protocol: read and discard until it goes.
    failed: bool,
    eof: bool,
    linger: Option<Timer>,
}

impl Drop for WsConn {
    /// Unregisters the connection, however it ended.
    fn drop(&mut self) {
        // Runs where glommio drops a finished task, outside any catch_unwind: a panic
        // here must not take the shard down.
        let (shard, id) = (&self.shard, self.id);
        if std::panic::catch_unwind(AssertUnwindSafe(|| shard.close_conn(id))).is_err() {
            tracing::error!(shard = shard.id, "unregistering a connection panicked");
        }
    }
}

impl WsConn {
    /// Registers an upgraded connection; `leftover` holds the frames that came with the
    /// request, for the task's first turn.
    fn open(
        shard: Rc<Shard>,
        stream: TcpStream,
        dialect: Dialect,
        sockjs: bool,
        session: Session,
        leftover: Vec<u8>,
    ) -> WsConn {
        let framing = if sockjs {
            Framing::SockJsWebSocket
        } else {
            Framing::Plain
        };
        let id = shard.open_conn(dialect, framing, Some(stream.as_raw_fd()), &session);
        WsConn {
            decoder: Decoder::new(Role::Server, shard.config.max_message_bytes),
            shard,
            id,
            dialect,
            sockjs,
            stream,
            session,
            pending: leftover,
            close_sent: false,
            close_received: false,
            failed: false,
            eof: false,
            linger: None,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..READ_BUDGET {
            if self.flush(cx).is_err() {
                return Poll::Ready(());
            }
            let (queue_empty, close) = {
                let mut conns = self.shard.conns.borrow_mut();
                let Some(slot) = conns.get_mut(self.id) else {
                    return Poll::Ready(());
                };
                (slot.queue.is_empty(), slot.close)
            };
            if let (Some(reason), false) = (close, self.close_sent) {
                self.detach();
                if self.sockjs && reason != CloseReason::BROKEN_FRAMING {
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
            if self.close_sent && queue_empty && (self.close_received || self.eof) {
                return Poll::Ready(());
            }
            if self.eof {
                return Poll::Ready(());
            }
            if let Some(timer) = &mut self.linger
                && Pin::new(timer).poll(cx).is_ready()
            {
                return Poll::Ready(());
            }
            if self.close_received {
                // Our close reply is queued; wait for it to be written.
                break;
            }
            match self.read(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => {
                    self.park(cx);
                    return Poll::Pending;
                }
            }
        }
        self.park(cx);
        if !self.close_received {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Leaves the task's waker where frame producers find it.
    fn park(&self, cx: &Context<'_>) {
        if let Some(slot) = self.shard.conns.borrow_mut().get_mut(self.id) {
            match &slot.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => slot.waker = Some(cx.waker().clone()),
            }
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
        self.close_sent = true;
        self.linger = Some(Timer::new(CLOSE_LINGER));
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
        if slot.listed_for_writer() && slot.close.is_none() && !self.close_sent {
            return Ok(());
        }
        let tally = &self.shard.tally;
        loop {
            match slot.send_queued(self.stream.as_raw_fd(), |n, frames| tally.wrote(n, frames)) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Let glommio register interest in writability: it retries the
                    // front frame and parks the task if the socket is still full.
                    let front = slot.queue.front().expect("not empty").clone();
                    let start = slot.front_written;
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
    fn read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shard = self.shard.clone();
        let mut buf = shard.read_buf.borrow_mut();
        let n = match Pin::new(&mut self.stream).poll_read(cx, &mut buf[..]) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if n == 0 {
            self.eof = true;
            return Poll::Ready(Ok(()));
        }
        Tally::add(&shard.tally.bytes_in, n);
        if let Some(slot) = shard.conns.borrow_mut().get_mut(self.id) {
            slot.last_heard = Instant::now();
            slot.pinged = false;
        }
        if self.failed || self.close_received {
            return Poll::Ready(Ok(()));
        }
        if self.pending.is_empty() {
            let consumed = self.decode(&mut buf[..n]);
            if consumed < n && !self.failed {
                self.pending.extend_from_slice(&buf[consumed..n]);
            }
        } else {
            self.pending.extend_from_slice(&buf[..n]);
            drop(buf);
            self.decode_pending();
        }
        Poll::Ready(Ok(()))
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
        let (shard, id, dialect, sockjs) = (&*self.shard, self.id, self.dialect, self.sockjs);
        let session = &mut self.session;
        // Once our close frame is queued nothing else may follow it: what the client
        // sends meanwhile is read only to find its close frame.
        let closing = self.close_sent;
        let mut close: Option<Option<(u16, String)>> = None;
        let result = self.decoder.decode(data, |msg| match msg {
            Message::Close(c) => {
                close = Some(c.map(|(code, reason)| (code, reason.to_owned())));
                Flow::Stop
            }
            _ if closing => Flow::Continue,
            other => {
                shard.tally.message_in();
                dispatch::on_frame(shard, id, dialect, sockjs, session, other);
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
            self.close_received = true;
            self.detach();
            if !self.close_sent {
                // Echo the client's code, as RFC 6455 section 5.5.1 asks.
                self.send_close(code.map(|(c, _)| (c, "")));
            }
        }
        consumed
    }

    /// Takes the connection out of the engine as soon as it is closing, so rooms and
    /// presence see it gone now rather than after the closing handshake.
    fn detach(&self) {
        if self.dialect != Dialect::Echo {
            let id = self.id;
            self.shard.with_engine(|engine, out| engine.close(id, out));
        }
    }

    fn fail(&mut self, e: DecodeError) {
        tracing::info!(
            shard = self.shard.id,
            code = e.close_code(),
            reason = e.reason(),
            "closing a connection that broke the WebSocket protocol"
        );
        self.failed = true;
        self.pending = Vec::new();
        if let Some(slot) = self.shard.conns.borrow_mut().get_mut(self.id) {
            slot.request_close(CloseReason {
                code: e.close_code(),
                reason: e.reason(),
            });
        }
    }
}
