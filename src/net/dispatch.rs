//! Hands each decoded WebSocket message to its connection's dialect: parse with the
//! dialect's decoder, give the engine the command, or answer the dialect's error.

use std::cell::Cell;

use super::conns::{CloseReason, Dialect};
use super::ws::{Message, Opcode};
use crate::clock::now_ms;
use crate::engine::{Command, ConnId};
use crate::protocol::socketcluster::{self, Action};
use crate::protocol::talker::{self, Refusal, Request};
use crate::protocol::turntable;
use crate::runtime::outbox::{frame, frame_with};
use crate::runtime::shard::Shard;

/// How a Talker connection ends after `{"type":"close"}`.
const TALKER_BYE: CloseReason = CloseReason {
    code: 1000,
    reason: "closed",
};

/// A connection's dialect state that lives with the connection's task, for dialects
/// whose frames cannot be understood without it.
#[derive(Debug)]
pub enum Session {
    Stateless,
    SocketCluster(socketcluster::Session),
}

impl Session {
    /// The state a new connection of `dialect` starts with.
    pub fn new(dialect: Dialect) -> Session {
        match dialect {
            Dialect::SocketCluster => {
                Session::SocketCluster(socketcluster::Session::new(new_socket_id()))
            }
            Dialect::Turntable | Dialect::Talker | Dialect::Echo => Session::Stateless,
        }
    }
}

/// A fresh SocketCluster socket id: a per-thread counter hashed with the process's
/// random hash keys (unique, and not guessable from other ids).
fn new_socket_id() -> Box<str> {
    thread_local! {
        static KEYS: ahash::RandomState = ahash::RandomState::new();
        static COUNTER: Cell<u64> = const { Cell::new(0) };
    }
    let n = COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let thread = std::thread::current().id();
    let (a, b) = KEYS.with(|k| (k.hash_one((thread, n, 0u8)), k.hash_one((thread, n, 1u8))));
    let mut random = [0u8; 15];
    random[..8].copy_from_slice(&a.to_le_bytes());
    random[8..].copy_from_slice(&b.to_le_bytes()[..7]);
    socketcluster::socket_id(random)
}

/// Hands one data or control message to the connection's dialect.
pub fn on_message(
    shard: &Shard,
    id: ConnId,
    dialect: Dialect,
    session: &mut Session,
    msg: Message<'_>,
) {
    match (dialect, msg) {
        (_, Message::Ping(payload)) => reply(shard, id, Opcode::Pong, payload),
        (_, Message::Pong(_) | Message::Close(_)) => {}
        (Dialect::Echo, Message::Text(payload)) => reply(shard, id, Opcode::Text, payload),
        (Dialect::Echo, Message::Binary(payload)) => reply(shard, id, Opcode::Binary, payload),
        (Dialect::Turntable, Message::Text(text)) => {
            let parsed = {
                let engine = shard.engine.borrow();
                turntable::decode(text, engine.user_of(id), shard.auth.as_ref(), now_ms())
            };
            match parsed {
                Ok(cmd) => command(shard, id, cmd),
                Err(e) => turntable_error(shard, id, e),
            }
        }
        (Dialect::Turntable, Message::Binary(_)) => {
            turntable_error(shard, id, turntable::ProtocolError::binary());
        }
        (Dialect::Talker, Message::Text(text)) => {
            let connected = shard.engine.borrow().in_room(id);
            match talker::decode(text, connected, shard.auth.as_ref()) {
                Ok(Request::Engine(cmd)) => command(shard, id, cmd),
                Ok(Request::Ping) => {}
                Ok(Request::Close) => {
                    command(shard, id, Command::RoomClose);
                    close(shard, id, TALKER_BYE);
                }
                Err(refusal) => talker_refusal(shard, id, refusal),
            }
        }
        (Dialect::SocketCluster, Message::Text(text) | Message::Binary(text)) => {
            let Session::SocketCluster(session) = session else {
                unreachable!("SocketCluster connections start with their session");
            };
            socketcluster_message(shard, id, session, text);
        }
        (Dialect::Talker, Message::Binary(_)) => {
            let connected = shard.engine.borrow().in_room(id);
            let message = "send JSON in text frames";
            talker_refusal(
                shard,
                id,
                if connected {
                    Refusal::Error(message.to_owned())
                } else {
                    Refusal::Fatal(message)
                },
            );
        }
    }
}

fn socketcluster_message(
    shard: &Shard,
    id: ConnId,
    session: &mut socketcluster::Session,
    text: &mut [u8],
) {
    let cx = socketcluster::Context {
        auth: shard.auth.as_ref(),
        ping_timeout_ms: shard.config.sc_ping_timeout.as_millis() as u64,
    };
    session.on_text(text, &cx, &mut |action| match action {
        Action::Engine(cmd) => command(shard, id, cmd),
        Action::Send(text) => reply(shard, id, Opcode::Text, &text),
        Action::Close(code) => close(shard, id, CloseReason { code, reason: "" }),
    });
}

fn command(shard: &Shard, id: ConnId, cmd: Command) {
    shard.with_engine(|engine, out| engine.command(id, cmd, out));
}

fn turntable_error(shard: &Shard, id: ConnId, e: turntable::ProtocolError) {
    reply_text(shard, id, |buf| {
        turntable::encode_error(e.code, &e.message, buf)
    });
}

/// Sends a Talker error event; a fatal one also closes the connection (1008).
fn talker_refusal(shard: &Shard, id: ConnId, refusal: Refusal) {
    match refusal {
        Refusal::Error(message) => reply_text(shard, id, |buf| talker::encode_error(&message, buf)),
        Refusal::Fatal(message) => {
            reply_text(shard, id, |buf| talker::encode_error(message, buf));
            close(
                shard,
                id,
                CloseReason {
                    code: 1008,
                    reason: message,
                },
            );
        }
    }
}

fn close(shard: &Shard, id: ConnId, reason: CloseReason) {
    if let Some(slot) = shard.conns.borrow_mut().get_mut(id) {
        slot.request_close(reason);
    }
}

/// Queues a text frame, written by `write`, for this connection only.
fn reply_text(shard: &Shard, id: ConnId, write: impl FnOnce(&mut Vec<u8>)) {
    let frame = frame_with(Opcode::Text, |buf| {
        write(buf);
        true
    });
    if let Some(frame) = frame {
        shard.conns.borrow_mut().push(id, frame);
    }
}

/// Queues a frame for this connection only.
fn reply(shard: &Shard, id: ConnId, opcode: Opcode, payload: &[u8]) {
    shard.conns.borrow_mut().push(id, frame(opcode, payload));
}
