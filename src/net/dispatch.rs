//! Hands each decoded WebSocket message to its connection's dialect: parse with the
//! dialect's decoder, give the engine the command, or answer the dialect's error.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;

use super::conns::{CloseReason, Dialect, Framing};
use super::http::Route;
use super::ws::{Message, Opcode};
use crate::clock::now_ms;
use crate::engine::{Command, ConnId};
use crate::protocol::talker::{self, Refusal, Request};
use crate::protocol::turntable;
use crate::protocol::{Action, world};
use crate::protocol::{socketcluster, sockjs};
use crate::runtime::outbox::{frame, text_frame};
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
    /// The SockJS `close` test service: closed as soon as it opens.
    GoAway,
    SocketCluster(socketcluster::Session),
    /// `None`: a world this server does not serve (the connection is being closed).
    World(Option<world::Session>),
}

impl Session {
    /// The dialect and starting state of a WebSocket on `route`; `None` if the route
    /// is not a WebSocket.
    pub fn for_route(route: Route, shard: &Shard) -> Option<(Dialect, Session)> {
        Some(match route {
            Route::Turntable => (Dialect::Turntable, Session::Stateless),
            Route::Talker => (Dialect::Talker, Session::Stateless),
            Route::Echo => (Dialect::Echo, Session::Stateless),
            Route::GoAway => (Dialect::Echo, Session::GoAway),
            Route::SocketCluster => (
                Dialect::SocketCluster,
                Session::SocketCluster(socketcluster::Session::new(new_random_id())),
            ),
            Route::World { world } => {
                let world = world.map(|i| world::Session::new(shard.config.worlds[i].clone()));
                (Dialect::World, Session::World(world))
            }
            Route::Healthz | Route::Metrics | Route::Api => return None,
        })
    }
}

/// What a new connection is told first: turntable's `idyou`, or that a World client
/// asked for a world this server does not serve (then it is closed).
pub fn on_open(shard: &Shard, id: ConnId, session: &Session) {
    let mut conns = shard.conns.borrow_mut();
    let Some(slot) = conns.get_mut(id) else {
        return;
    };
    if slot.framing == Framing::SockJsWebSocket {
        slot.push_control(frame(Opcode::Text, sockjs::OPEN));
    }
    match (slot.dialect, session) {
        (Dialect::Turntable, _) => {
            slot.push_control(text_frame(slot.framing, turntable::GREETING.as_bytes()))
        }
        (_, Session::GoAway) => slot.request_close(CloseReason {
            code: 3000,
            reason: "Go away!",
        }),
        (_, Session::World(None)) => {
            slot.push_control(text_frame(slot.framing, world::UNKNOWN_WORLD));
            slot.request_close(CloseReason::UNKNOWN_WORLD);
        }
        _ => {}
    }
}

/// A fresh 20-character id (SocketCluster socket ids, lobby game ids): a per-thread
/// counter hashed with the process's random hash keys (unique, and not guessable from
/// other ids).
pub fn new_random_id() -> Box<str> {
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

/// Hands a client frame to the connection's dialect: as it is, or, on a SockJS
/// connection, each message its text carries.
pub fn on_frame(
    shard: &Shard,
    id: ConnId,
    dialect: Dialect,
    sockjs: bool,
    session: &mut Session,
    msg: Message<'_>,
) {
    let text = match (sockjs, msg) {
        (true, Message::Text(text) | Message::Binary(text)) => text,
        (_, msg) => return on_message(shard, id, dialect, session, msg),
    };
    match sockjs::parse_client_frame(text) {
        Ok(messages) => {
            for message in messages {
                let mut bytes = message.into_bytes();
                on_message(shard, id, dialect, session, Message::Text(&mut bytes));
            }
        }
        Err(_) => close(shard, id, CloseReason::BROKEN_FRAMING),
    }
}

/// Hands one text message (from a SockJS HTTP send) to the connection's dialect.
pub fn on_text(
    shard: &Shard,
    id: ConnId,
    dialect: Dialect,
    session: &mut Session,
    mut text: Vec<u8>,
) {
    on_message(shard, id, dialect, session, Message::Text(&mut text));
}

/// Hands one data or control message to the connection's dialect.
fn on_message(
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
        (Dialect::World, Message::Text(text)) => {
            if let Session::World(Some(session)) = session {
                world_message(shard, id, session, text);
            }
        }
        (Dialect::World, Message::Binary(_)) => {
            reply(shard, id, Opcode::Text, br#"["error",{"code":"protocol.invalid_message","message":"send JSON in text frames"}]"#);
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
        ping_timeout_ms: shard.config.socketcluster_ping_timeout.as_millis() as u64,
    };
    session.on_text(text, &cx, &mut |action| perform(shard, id, action));
}

/// Hands a World message to its session. A panic while handling it ends this one
/// connection with `server.fatal`; the shard and its other connections carry on.
fn world_message(shard: &Shard, id: ConnId, session: &mut world::Session, text: &mut [u8]) {
    let cx = world::Context {
        auth: shard.auth.as_ref(),
        max_connections_per_user: shard.config.world_max_connections_per_user,
        fault_injection: shard.config.fault_injection,
    };
    let handled = std::panic::catch_unwind(AssertUnwindSafe(|| {
        session.on_text(text, &cx, &mut |action| perform(shard, id, action));
    }));
    if handled.is_err() {
        tracing::error!(
            shard = shard.id,
            "World handler failed; connection closed with server.fatal"
        );
        reply(shard, id, Opcode::Text, world::SERVER_FATAL);
        close(shard, id, CloseReason::SERVER_FATAL);
    }
}

/// Carries out what a session asked for.
fn perform(shard: &Shard, id: ConnId, action: Action) {
    match action {
        Action::Engine(cmd) => command(shard, id, cmd),
        Action::Send(text) => reply(shard, id, Opcode::Text, &text),
        Action::Close(code) => close(shard, id, CloseReason { code, reason: "" }),
    }
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
    let mut text = Vec::with_capacity(128);
    write(&mut text);
    reply(shard, id, Opcode::Text, &text);
}

/// Queues a frame for this connection only (text in a SockJS frame on SockJS).
fn reply(shard: &Shard, id: ConnId, opcode: Opcode, payload: &[u8]) {
    shard.conns.borrow_mut().push_with(id, |_, framing| {
        Some(match opcode {
            Opcode::Text => text_frame(framing, payload),
            _ => frame(opcode, payload),
        })
    });
}
