//! SockJS sessions over HTTP: a session is a connection like any other (a slot in the
//! shard's table, known to the engine) whose frames wait in its queue until a receiving
//! request — a poll or a stream — takes them. Sessions live on the owner shard of their
//! id; `conn` hands requests that land elsewhere over (see `runtime::handover`), so
//! a send and the poll that reads its answer meet on one shard, in order.
//!
//! As sockjs-node: the first receiving request opens the session (`o`); one receiver at
//! a time (a second gets `c[2010,"Another connection still open"]`); `h` every 25 s;
//! a stream ends after 128 KiB (4 KiB on the `/echo` test service) and the session carries on; a client that drops a
//! receiver ends the session at once; a session without a receiver for 5 s ends; a
//! session the server closed answers every receiver `c[code,"reason"]` until it ends.

use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;
use futures_lite::future::{self, poll_fn};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::conns::Framing;
use super::http;
use super::inbound;
use super::shard::Shard;
use super::sockjs::{NO_CACHE, NOT_FOUND};
use super::sockjs_request::{Receiver, Sender, Transport, TransportRequest};
use super::sockjs_table::HttpSession;
use super::sockjs_writer::{Writer, http_response};
use crate::engine::ConnId;
use crate::protocol::{CloseReason, sockjs};

/// How soon a SockJS client sends its next receiving request after one ends (polling
/// and streaming clients come back at once); shutdown waits this long for a session's
/// client to come back for its close frame.
const CLIENT_RETURN: Duration = Duration::from_secs(1);

/// What becomes of the connection once a transport request is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Read the connection's next request.
    KeepAlive,
    /// Close the connection.
    Close,
}

impl After {
    fn keep_alive_if(keep: bool) -> After {
        if keep { After::KeepAlive } else { After::Close }
    }
}

/// The client stopped reading (within the disconnect delay) or went away.
struct ClientGone;

/// Serves one transport request on this (the session's) shard.
pub async fn serve(
    shard: &Shard,
    stream: &mut TcpStream,
    request: &TransportRequest,
    body: &[u8],
) -> After {
    let receiver = match &request.transport {
        Transport::Send(sender) => {
            let response = send(shard, *sender, request, body);
            let status = http::status_of(&response);
            shard.tally.http_response(status);
            let written = stream.write_all(&response).await.is_ok();
            return After::keep_alive_if(written && request.keep_alive && status < 500);
        }
        Transport::Receive(receiver) => receiver,
    };
    if let Some(why) = refused_as_new(shard, request) {
        shard.tally.http_response(503);
        let busy = http::respond(503, "text/plain", why.as_bytes(), false);
        let _ = stream.write_all(&busy).await;
        return After::Close;
    }
    // Every receiver answers 200, whatever its frames say.
    shard.tally.http_response(200);
    receive(shard, stream, receiver, request).await
}

/// Why a receiver for a session that does not exist yet is refused: the shard holds as
/// many as it may, or is shutting down.
fn refused_as_new(shard: &Shard, request: &TransportRequest) -> Option<&'static str> {
    let sessions = shard.sockjs_sessions.borrow();
    if sessions.by_id.contains_key(&request.session) {
        return None;
    }
    if shard.stopping() {
        return Some("server shutting down\n");
    }
    (sessions.by_id.len() >= shard.settings.sockjs_max_sessions).then_some("too many sessions\n")
}

/// Hands the messages of an `xhr_send` / `jsonp_send` body to the session's dialect.
fn send(shard: &Shard, sender: Sender, request: &TransportRequest, body: &[u8]) -> Vec<u8> {
    let messages = match parse_send_body(sender, request, body) {
        Ok(messages) => messages,
        Err(message) => {
            let mut headers = request.xhr_headers();
            headers.push((NO_CACHE.0, NO_CACHE.1.to_owned()));
            return super::sockjs::error_500(message, &headers);
        }
    };
    let mut sessions = shard.sockjs_sessions.borrow_mut();
    let Some(session) = sessions.by_id.get_mut(&request.session) else {
        return http_response(
            404,
            "text/plain; charset=UTF-8",
            &request.xhr_headers(),
            NOT_FOUND,
            request.keep_alive,
        );
    };
    let (conn, mut state) = (session.conn, session.state.take());
    let open = session.closed.is_none();
    drop(sessions);
    if open && let Some(state) = &mut state {
        // A session the server is closing takes no more messages (its close frame is
        // waiting for the next receiver).
        let open = shard
            .conns
            .borrow_mut()
            .get_mut(conn)
            .filter(|s| s.close_requested().is_none())
            .map(|s| s.heard())
            .is_some();
        let limit = shard.settings.max_message_bytes;
        if open && messages.iter().any(|m| m.len() > limit) {
            if let Some(slot) = shard.conns.borrow_mut().get_mut(conn) {
                slot.request_close(CloseReason::TOO_BIG);
            }
        } else if open {
            for message in messages {
                shard.tally.message_in();
                inbound::on_text(shard, conn, state, message.into_bytes());
            }
        }
    }
    if let Some(session) = shard
        .sockjs_sessions
        .borrow_mut()
        .by_id
        .get_mut(&request.session)
    {
        session.state = state;
    }
    match sender {
        Sender::Jsonp => http_response(
            200,
            "text/plain; charset=UTF-8",
            &request.xhr_headers(),
            b"ok",
            request.keep_alive,
        ),
        _ => http::Head::new(204)
            .header("Content-Type", "text/plain; charset=UTF-8")
            .headers(&request.xhr_headers())
            .header(NO_CACHE.0, NO_CACHE.1)
            .end(request.keep_alive, b""),
    }
}

/// The messages of a send body, or sockjs-node's complaint.
pub fn parse_send_body(
    sender: Sender,
    request: &TransportRequest,
    body: &[u8],
) -> Result<Vec<String>, &'static str> {
    let base = request
        .content_type
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .unwrap_or("");
    let payload: Vec<u8> = match (sender, base) {
        (Sender::Jsonp, "application/x-www-form-urlencoded") => {
            let form = std::str::from_utf8(body).map_err(|_| "Payload expected.")?;
            super::sockjs::query_value(form, "d")
                .ok_or("Payload expected.")?
                .into_bytes()
        }
        (Sender::Jsonp, "" | "text/plain") => body.to_vec(),
        (
            Sender::Xhr,
            "" | "text/plain" | "T" | "application/json" | "application/xml" | "text/xml",
        ) => body.to_vec(),
        _ => return Err("Payload expected."),
    };
    if payload.is_empty() {
        return Err("Payload expected.");
    }
    match serde_json::from_slice::<serde_json::Value>(&payload) {
        Err(_) => Err("Broken JSON encoding."),
        Ok(serde_json::Value::Array(_)) => {
            sockjs::parse_client_frame(&payload).map_err(|_| "Broken JSON encoding.")
        }
        Ok(_) => Err("Payload expected."),
    }
}

/// What a receiving request should do next.
enum Step {
    /// Write this SockJS frame and carry on (or end, when polling).
    Frame(Vec<u8>),
    /// Write this frame and end the response (a close frame, or `c[2010,...]` to a
    /// second receiver).
    Last(Vec<u8>),
}

/// Serves a receiving request (a poll or a stream) until it ends.
async fn receive(
    shard: &Shard,
    stream: &mut TcpStream,
    receiver: &Receiver,
    request: &TransportRequest,
) -> After {
    let writer = Writer::new(receiver, request);
    let (attached, first) = attach(shard, request);
    if write_within(shard, stream, &writer.head()).await.is_err() {
        if attached {
            detach(shard, &request.session, true);
        }
        return After::Close;
    }
    // Heartbeats keep their own schedule; data does not push them back.
    let mut heartbeat_at = Instant::now() + shard.settings.sockjs_heartbeat_interval;
    let first = match first {
        Some(step) => Some(step),
        None => wait_for_frames(shard, request, stream, &mut heartbeat_at).await,
    };
    let mut sent = 0;
    let mut client_gone = first.is_none();
    let mut next = first.unwrap_or(Step::Frame(Vec::new()));
    while !client_gone {
        let (frame, last) = match next {
            Step::Frame(f) => (f, false),
            Step::Last(f) => (f, true),
        };
        let (bytes, counted) = writer.frame(&frame);
        sent += counted;
        if write_within(shard, stream, &bytes).await.is_err() {
            client_gone = true;
            break;
        }
        if last || !writer.streaming || sent >= request.response_limit {
            break;
        }
        match wait_for_frames(shard, request, stream, &mut heartbeat_at).await {
            Some(step) => next = step,
            None => {
                client_gone = true;
                break;
            }
        }
    }
    if client_gone {
        if attached {
            detach(shard, &request.session, true);
        }
        return After::Close;
    }
    if attached {
        detach(shard, &request.session, false);
    }
    let end = writer.end();
    let ended = write_within(shard, stream, &end).await.is_ok();
    After::keep_alive_if(ended && writer.keeps_connection())
}

/// Writes `bytes` unless the client takes longer than the disconnect delay to read
/// them. A receiver stuck on a client that stopped reading would otherwise keep its
/// session, and the user, online for ever.
async fn write_within(
    shard: &Shard,
    stream: &mut TcpStream,
    bytes: &[u8],
) -> Result<(), ClientGone> {
    if bytes.is_empty() {
        return Ok(());
    }
    let limit = shard.settings.sockjs_disconnect_delay;
    let written = future::or(async { stream.write_all(bytes).await.is_ok() }, async {
        Timer::new(limit).await;
        false
    })
    .await;
    if written { Ok(()) } else { Err(ClientGone) }
}

/// Opens the session if it is new and attaches the receiver; returns whether it did,
/// and the first frame if one is ready.
fn attach(shard: &Shard, request: &TransportRequest) -> (bool, Option<Step>) {
    let mut sessions = shard.sockjs_sessions.borrow_mut();
    if !sessions.by_id.contains_key(&request.session) {
        drop(sessions);
        open_session(shard, request);
        sessions = shard.sockjs_sessions.borrow_mut();
    }
    let session = sessions
        .by_id
        .get_mut(&request.session)
        .expect("opened above");
    if session.receiving {
        let busy = close_frame(2010, "Another connection still open");
        return (false, Some(Step::Last(busy)));
    }
    if let Some(reason) = session.closed {
        // Messages queued before the close go out first, then the close frame.
        session.idle_since = Instant::now();
        let conn = session.conn;
        drop(sessions);
        let frame = take_messages(shard, conn, true).unwrap_or_else(|| {
            told_close(shard, &request.session);
            close_frame(reason.code, reason.reason)
        });
        return (false, Some(Step::Last(frame)));
    }
    session.receiving = true;
    if !session.opened {
        session.opened = true;
        return (true, Some(Step::Frame(sockjs::OPEN.to_vec())));
    }
    let conn = session.conn;
    drop(sessions);
    (true, take_frames(shard, conn, &request.session, true))
}

/// Creates a session's connection and dialect state.
fn open_session(shard: &Shard, request: &TransportRequest) {
    let (conn, state) = inbound::open(shard, &request.opening, Framing::SockJsHttp, None);
    let session = HttpSession {
        conn,
        state: Some(state),
        receiving: false,
        opened: false,
        closed: None,
        close_told: false,
        idle_since: Instant::now(),
    };
    shard
        .sockjs_sessions
        .borrow_mut()
        .by_id
        .insert(request.session.clone(), session);
}

/// The session's waiting messages as one `a[...]` frame, or its close frame if the
/// server closed it; `None` if nothing is waiting.
fn take_frames(shard: &Shard, conn: ConnId, id: &str, whole: bool) -> Option<Step> {
    if let Some(frame) = take_messages(shard, conn, whole) {
        return Some(Step::Frame(frame));
    }
    let reason = shard.conns.borrow_mut().get_mut(conn)?.close_requested()?;
    shard.with_engine(|engine, out| engine.close(conn, out));
    if let Some(session) = shard.sockjs_sessions.borrow_mut().by_id.get_mut(id) {
        session.closed = Some(reason);
        session.close_told = true;
    }
    Some(Step::Last(close_frame(reason.code, reason.reason)))
}

/// Notes that session `id`'s client was given its close frame.
fn told_close(shard: &Shard, id: &str) {
    if let Some(session) = shard.sockjs_sessions.borrow_mut().by_id.get_mut(id) {
        session.close_told = true;
    }
}

/// The session's waiting messages as one `a[...]` frame — all of them (`whole`, what a
/// newly attached receiver gets) or the oldest (an attached receiver gets each message
/// as it comes) —; `None` if none is waiting.
fn take_messages(shard: &Shard, conn: ConnId, whole: bool) -> Option<Vec<u8>> {
    let mut conns = shard.conns.borrow_mut();
    let slot = conns.get_mut(conn)?;
    let messages = slot.take_front(if whole { usize::MAX } else { 1 });
    drop(conns);
    if messages.is_empty() {
        return None;
    }
    let count = messages.len();
    let mut frame = b"a[".to_vec();
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            frame.push(b',');
        }
        frame.extend_from_slice(message);
    }
    frame.push(b']');
    shard.tally.wrote(frame.len(), count);
    Some(frame)
}

/// Waits for the session's next frame, the heartbeat due at `heartbeat_at` (then
/// scheduled one interval later), or the client leaving (`None`).
async fn wait_for_frames(
    shard: &Shard,
    request: &TransportRequest,
    stream: &mut TcpStream,
    heartbeat_at: &mut Instant,
) -> Option<Step> {
    let conn = shard
        .sockjs_sessions
        .borrow()
        .by_id
        .get(&request.session)?
        .conn;
    let frames = poll_fn(|cx| {
        if let Some(step) = take_frames(shard, conn, &request.session, false) {
            return Poll::Ready(Some(step));
        }
        match shard.conns.borrow_mut().get_mut(conn) {
            Some(slot) => slot.park(cx.waker()),
            None => return Poll::Ready(Some(Step::Last(close_frame(1000, "Normal closure")))),
        }
        Poll::Pending
    });
    let due = *heartbeat_at;
    let interval = shard.settings.sockjs_heartbeat_interval;
    let heartbeat = async {
        Timer::new(due.saturating_duration_since(Instant::now())).await;
        Some(Step::Frame(sockjs::HEARTBEAT.to_vec()))
    };
    // Peeked, not read: bytes a client sends meanwhile (a pipelined request) stay for
    // whoever reads the connection next.
    let gone = async {
        let mut byte = [0u8; 1];
        match stream.peek(&mut byte).await {
            Ok(0) | Err(_) => None,
            Ok(_) => future::pending().await,
        }
    };
    let step = future::or(frames, future::or(heartbeat, gone)).await;
    if Instant::now() >= due {
        *heartbeat_at = due + interval;
    }
    step
}

/// The receiver leaves; a client that dropped it ends the session at once.
fn detach(shard: &Shard, id: &str, client_gone: bool) {
    let mut sessions = shard.sockjs_sessions.borrow_mut();
    let Some(session) = sessions.by_id.get_mut(id) else {
        return;
    };
    session.receiving = false;
    session.idle_since = Instant::now();
    if client_gone {
        let session = sessions.by_id.remove(id).expect("present");
        drop(sessions);
        end_session(shard, session.conn);
    }
}

fn end_session(shard: &Shard, conn: ConnId) {
    // A receiver still waiting (at shutdown) finds the session gone and ends.
    if let Some(slot) = shard.conns.borrow_mut().get_mut(conn) {
        slot.wake();
    }
    shard.close_conn(conn);
}

/// Takes sessions the server closed out of the engine at once (their close frame waits
/// for the next receiver), and ends the sessions no receiver came back to within the
/// disconnect delay.
pub fn expire(shard: &Shard) {
    let now = Instant::now();
    let closing: Vec<(Box<str>, ConnId, CloseReason)> = {
        let sessions = shard.sockjs_sessions.borrow();
        let mut conns = shard.conns.borrow_mut();
        sessions
            .by_id
            .iter()
            .filter(|(_, s)| s.closed.is_none() && !s.receiving)
            .filter_map(|(id, s)| {
                let reason = conns.get_mut(s.conn)?.close_requested()?;
                Some((id.clone(), s.conn, reason))
            })
            .collect()
    };
    for (id, conn, reason) in closing {
        shard.with_engine(|engine, out| engine.close(conn, out));
        if let Some(session) = shard.sockjs_sessions.borrow_mut().by_id.get_mut(&id) {
            session.closed = Some(reason);
            session.idle_since = now;
        }
    }
    let expired: Vec<Box<str>> = shard
        .sockjs_sessions
        .borrow()
        .by_id
        .iter()
        .filter(|(_, s)| {
            !s.receiving
                && now.duration_since(s.idle_since) >= shard.settings.sockjs_disconnect_delay
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in expired {
        let session = shard.sockjs_sessions.borrow_mut().by_id.remove(&id);
        if let Some(session) = session {
            end_session(shard, session.conn);
        }
    }
}

fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(32);
    sockjs::write_close(&mut frame, code, reason);
    frame
}

/// Whether some session's client is still to be given its close frame at shutdown: a
/// receiver is attached, or one left without it less than [`CLIENT_RETURN`] ago (a
/// polling client whose last poll took the messages queued before the close).
pub fn any_owed_close(shard: &Shard) -> bool {
    let now = Instant::now();
    shard
        .sockjs_sessions
        .borrow()
        .by_id
        .values()
        .any(|s| s.receiving || (!s.close_told && now.duration_since(s.idle_since) < CLIENT_RETURN))
}

/// Ends every session (the server is stopping).
pub fn end_all(shard: &Shard) {
    let sessions: Vec<HttpSession> = shard
        .sockjs_sessions
        .borrow_mut()
        .by_id
        .drain()
        .map(|(_, s)| s)
        .collect();
    for session in sessions {
        end_session(shard, session.conn);
    }
}
