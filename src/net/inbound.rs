//! Hands each client message to its connection's dialect and carries out what the
//! dialect asks for: engine commands, replies, closes. Ping, pong and close frames are
//! the WebSocket's own; SockJS frames are unwrapped into the messages they carry.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Weak;

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use super::conns::{Frame, Framing};
use super::hook_gate::Verdict;
use super::outbox::{frame, text_frame};
use super::rate::Admit;
use super::shard::Shard;
use super::ws::{Message, Opcode};
use crate::engine::{ConnId, Event, Outbox};
use crate::protocol::{Action, CloseReason, Context, Fault, Inbound, Opening, Session, sockjs};

/// The close of a connection that went on sending over its message budget.
const RATE_LIMITED: CloseReason = CloseReason {
    code: 1008,
    reason: "rate limit exceeded",
};

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
fn on_message(shard: &Shard, id: ConnId, session: &mut Session, mut msg: Inbound<'_>) {
    // Bound first: the table's borrow must end before the refusal is delivered.
    let (admitted, heard) = {
        let mut conns = shard.conns.borrow_mut();
        (conns.admit(id), conns.last_heard(id))
    };
    match admitted {
        Admit::Yes => {}
        Admit::Refuse => {
            // Answering the request's id, when it has one, so the client can match it.
            let receipt = match &mut msg {
                Inbound::Text(text) => session.receipt_of(text),
                Inbound::Binary(_) => None,
            };
            let event = Event::Refused {
                code: "rate.limited".into(),
                message: "too many messages: this one was dropped".into(),
                receipt,
            };
            return shard.with_engine(|_, out| out.deliver(&[id], &event));
        }
        Admit::Close => return close(shard, id, RATE_LIMITED),
    }
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
    shard.handling(heard, || perform(shard, id, &mut actions));
    ACTIONS.set(actions);
}

/// Carries out (and empties) a dialect's actions, in order; one that needs the
/// backend's answer first (see `hook_gate`) holds those after it until then.
pub fn perform(shard: &Shard, id: ConnId, actions: &mut Vec<Action>) {
    for action in actions.drain(..) {
        if !shard.hooks.enabled() {
            carry_out(shard, id, action);
            continue;
        }
        let unasked = shard
            .hooks
            .hold(id, action)
            .or_else(|action| ask(shard, id, action));
        if let Err(action) = unasked {
            carry_out(shard, id, action);
        }
    }
}

/// Starts asking the backend if `action` needs it, holding the connection's next
/// actions until the answer comes; the action back if it needs no asking.
fn ask(shard: &Shard, id: ConnId, action: Action) -> Result<(), Action> {
    let question = shard.hooks.question(action)?;
    let Some(shard) = shard.this.get().and_then(Weak::upgrade) else {
        return Ok(());
    };
    shard.hooks.start_holding(id);
    glommio::spawn_local(async move {
        let user = shard.engine.borrow().user_of(id).map(str::to_owned);
        let dialect = shard
            .conns
            .borrow_mut()
            .get_mut(id)
            .map(|slot| slot.dialect);
        let dialect = dialect.map_or("", |d| d.name());
        match shard.hooks.answer(question, user.as_deref(), dialect).await {
            Verdict::Go(action) => carry_out(&shard, id, action),
            Verdict::Tell(event) => shard.with_engine(|_, out| out.deliver(&[id], &event)),
            Verdict::Connected { resume, outcome } => {
                let kind = shard
                    .conns
                    .borrow_mut()
                    .get_mut(id)
                    .map(|slot| slot.dialect);
                let mut actions = Vec::new();
                if let Some(kind) = kind {
                    kind.connected(&resume, outcome, &shard.dialects, &mut actions);
                }
                for action in actions {
                    carry_out(&shard, id, action);
                }
            }
        }
        perform(&shard, id, &mut shard.hooks.release(id));
    })
    .detach();
    Ok(())
}

/// Carries out one action now (the hooks, if any, have had their say).
pub fn carry_out(shard: &Shard, id: ConnId, action: Action) {
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
        // Sent only with a connect hook, which the gate asks.
        Action::Connect { .. } => close(shard, id, CloseReason::SERVER_FATAL),
        Action::Rpc { receipt, .. } => {
            let event = Event::Refused {
                code: "rpc.unavailable".into(),
                message: "no backend takes calls on this server".into(),
                receipt,
            };
            shard.with_engine(|_, out| out.deliver(&[id], &event));
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
