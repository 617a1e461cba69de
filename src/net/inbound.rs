//! Hands each client message to its connection's dialect and carries out what the
//! dialect asks for: engine commands, replies, closes. Ping, pong and close frames are
//! the WebSocket's own; SockJS frames are unwrapped into the messages they carry.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use super::conns::{Frame, Framing};
use super::outbox::{frame, text_frame};
use super::shard::Shard;
use super::ws::{Message, Opcode};
use crate::engine::ConnId;
use crate::protocol::{Action, CloseReason, Context, Fault, Inbound, Opening, Session, sockjs};

thread_local! {
    /// The shard's action list (one executor per thread), reused message after message.
    static ACTIONS: Cell<Vec<Action>> = const { Cell::new(Vec::new()) };
}

/// Registers a connection (a WebSocket or a SockJS HTTP session) in the connection
/// table, the figures and the engine, and opens its dialect (which greets it).
pub fn open(
    shard: &Shard,
    opening: &Opening,
    framing: Framing,
    socket: Option<RawFd>,
) -> (ConnId, Session) {
    let dialect = opening.dialect;
    let id = shard.conns.borrow_mut().insert(dialect, framing, socket);
    shard.figures.shards[shard.id]
        .connections
        .fetch_add(1, Ordering::Relaxed);
    if dialect.joins_engine() {
        shard.engine.borrow_mut().open(id);
    }
    if framing == Framing::SockJsWebSocket
        && let Some(slot) = shard.conns.borrow_mut().get_mut(id)
    {
        slot.push_control(frame(Opcode::Text, sockjs::OPEN));
    }
    let mut actions = ACTIONS.take();
    let session = dialect.open(opening.arg.as_deref(), &shard.dialects, &mut actions);
    perform(shard, id, &mut actions);
    ACTIONS.set(actions);
    (id, session)
}

/// Hands a client WebSocket message to the connection's dialect: as it is, or, on a
/// SockJS connection, each message its frame carries.
pub fn on_frame(shard: &Shard, id: ConnId, session: &mut Session, sockjs: bool, msg: Message<'_>) {
    match msg {
        Message::Ping(payload) => reply(shard, id, frame(Opcode::Pong, payload)),
        Message::Pong(_) | Message::Close(_) => {}
        Message::Text(text) | Message::Binary(text) if sockjs => {
            match sockjs::parse_client_frame(text) {
                Ok(messages) => {
                    for message in messages {
                        on_text(shard, id, session, message.into_bytes());
                    }
                }
                Err(_) => close(shard, id, sockjs::BROKEN_FRAMING),
            }
        }
        Message::Text(text) => on_message(shard, id, session, Inbound::Text(text)),
        Message::Binary(data) => on_message(shard, id, session, Inbound::Binary(data)),
    }
}

/// Hands one text message (from a SockJS frame or HTTP send) to the connection's
/// dialect.
pub fn on_text(shard: &Shard, id: ConnId, session: &mut Session, mut text: Vec<u8>) {
    on_message(shard, id, session, Inbound::Text(&mut text));
}

/// Hands one data message to the dialect, then carries out its actions. The dialect
/// reads the engine but never changes it (it answers with actions), so a panic in its
/// handler leaves the engine as it was: the connection gets the dialect's fault and is
/// closed, the shard and its other connections carry on.
fn on_message(shard: &Shard, id: ConnId, session: &mut Session, msg: Inbound<'_>) {
    let mut actions = ACTIONS.take();
    let handled = {
        let engine = shard.engine.borrow();
        let cx = Context {
            engine: &engine,
            conn: id,
            auth: shard.auth.as_ref(),
            settings: &shard.dialects,
        };
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            session.on_message(msg, &cx, &mut actions)
        }))
    };
    if handled.is_err() {
        tracing::error!(
            shard = shard.id,
            dialect = session.kind().name(),
            "dialect handler failed; connection closed"
        );
        actions.clear();
        session.on_fault(Fault::Internal, &mut actions);
    }
    perform(shard, id, &mut actions);
    ACTIONS.set(actions);
}

/// Carries out (and empties) a dialect's actions, in order.
pub fn perform(shard: &Shard, id: ConnId, actions: &mut Vec<Action>) {
    for action in actions.drain(..) {
        match action {
            Action::Engine(cmd) => shard.with_engine(|engine, out| engine.command(id, cmd, out)),
            Action::Send(text) => {
                let mut conns = shard.conns.borrow_mut();
                // A frame not queued needs nothing more: the connection is closing.
                let _ = conns.push_with(id, |_, framing| Some(text_frame(framing, &text)));
            }
            Action::SendBinary(data) => reply(shard, id, frame(Opcode::Binary, &data)),
            Action::Close(reason) => close(shard, id, reason),
            Action::Identified => shard.conns.borrow_mut().identified(id),
        }
    }
}

fn close(shard: &Shard, id: ConnId, reason: CloseReason) {
    if let Some(slot) = shard.conns.borrow_mut().get_mut(id) {
        slot.request_close(reason);
    }
}

/// Queues a frame for this connection only.
fn reply(shard: &Shard, id: ConnId, frame: Frame) {
    // A frame not queued needs nothing more: the connection is closing.
    let _ = shard.conns.borrow_mut().push(id, frame);
}
