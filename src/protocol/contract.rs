//! The contract between a dialect and the layers below it: what a dialect is given
//! ([`Context`], [`Settings`], [`Inbound`] messages) and what it answers ([`Action`]s,
//! encoded events, its [`Keepalive`] and fault report).

use std::borrow::Cow;
use std::time::Duration;

use super::close::CloseReason;
use crate::auth::Auth;
use crate::engine::{Command, ConnId, Engine, Event, Receipt};

/// What handling a client message asks of the connection, in order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Give the engine this command.
    Engine(Command),
    /// Send this dialect text to this connection only (a fixed text is not copied).
    Send(Cow<'static, [u8]>),
    /// Send these bytes back in a binary message (the echo service).
    SendBinary(Vec<u8>),
    /// Close the connection.
    Close(CloseReason),
    /// Ask the application's backend (`rpc_hook`) and send its answer back as
    /// [`Event::Answered`] (or its refusal as [`Event::Refused`]); a dialect sends it
    /// only when [`Settings::rpc_hook`] is set.
    Rpc {
        method: Box<str>,
        data: Box<str>,
        receipt: crate::engine::Receipt,
    },
    /// Ask the backend's connect hook who brings these `credentials` (a session id, a
    /// cookie, any string rather than a token); its answer goes to the dialect's
    /// [`Dialect::connected`] with `resume`, what the dialect needs to go on (a room).
    /// A dialect sends it only when [`Settings::connect_hook`] is set.
    Connect {
        credentials: Box<str>,
        resume: Box<str>,
    },
    /// The connection has identified as its dialect requires ([`Dialect::identify`]):
    /// its identify timeout no longer applies.
    Identified,
}

/// Who the backend's connect hook says a client is: a valid id, and a profile object
/// (without `id`).
#[derive(Clone, Debug, PartialEq)]
pub struct Connected {
    pub user: Box<str>,
    pub profile: serde_json::Map<String, serde_json::Value>,
}

/// The backend's refusal of a client's credentials: a code and a message, in its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub code: Box<str>,
    pub message: Box<str>,
}

impl Action {
    /// Sends `text` (built, or a constant) to this connection only.
    pub fn send(text: impl Into<Cow<'static, [u8]>>) -> Action {
        Action::Send(text.into())
    }
}

/// A client's data message, as the dialect receives it (its buffer is scratch
/// afterwards: parsers work in place).
#[derive(Debug)]
pub enum Inbound<'a> {
    Text(&'a mut [u8]),
    Binary(&'a mut [u8]),
}

/// Something that went wrong on the server's side while serving a connection, which the
/// dialect tells its client in its own terms before the connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A handler failed (a bug): the connection ends, the shard carries on.
    Internal,
}

/// The settings dialects read, built from the server's configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Client silence that closes a plain WebSocket; the server pings after half of it.
    pub idle_timeout: Duration,
    /// Silence that ends a Talker connection (its clients send `{"type":"ping"}`).
    pub talker_ping_timeout: Duration,
    /// How often SocketCluster clients get `#1`.
    pub socketcluster_ping_interval: Duration,
    /// SocketCluster client silence that closes the connection (announced in the
    /// handshake).
    pub socketcluster_ping_timeout: Duration,
    /// Silence after which a SockJS WebSocket is pinged.
    pub sockjs_heartbeat_interval: Duration,
    /// Time a connection has to identify (see [`Dialect::identify`]).
    pub identify_timeout: Duration,
    /// World connections one user may hold.
    pub world_max_connections_per_user: Option<usize>,
    /// The world ids served at `/ws/world/<id>`.
    pub worlds: Vec<Box<str>>,
    /// Tests may reach `test.fail`, a World handler that panics.
    pub fault_injection: bool,
    /// Where calls the server has no handler for go (SocketCluster's custom events,
    /// World's unknown actions); `None`: they are refused as before.
    pub rpc_hook: Option<Box<str>>,
    /// A connect hook takes `credentials` in place of a token (turntable v1's `idme`,
    /// World's `authenticate`, Talker's `connect`).
    pub connect_hook: bool,
}

/// What a dialect sees of the connection a message came on: the engine's record of it
/// (read-only: the dialect answers with [`Action`]s, so a failing handler cannot leave
/// the engine half-updated), and the shard's tools.
pub struct Context<'a> {
    pub engine: &'a Engine,
    pub conn: ConnId,
    /// Verifies tokens; `None` when the server runs without a secret.
    pub auth: Option<&'a Auth>,
    pub settings: &'a Settings,
}

impl Context<'_> {
    /// The user the connection identified as, if it did.
    pub fn user(&self) -> Option<&str> {
        self.engine.user_of(self.conn)
    }

    /// The connection is in a chat room.
    pub fn in_room(&self) -> bool {
        self.engine.in_room(self.conn)
    }
}

/// How a dialect keeps a quiet connection alive and decides that it is gone. Silence
/// is counted from the last bytes the client sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keepalive {
    /// After this much silence, send one WebSocket ping (again after the next message).
    pub ping_after: Option<Duration>,
    /// After this much silence, close the connection with this reason.
    pub close_after: Option<(Duration, CloseReason)>,
    /// A text the dialect sends at this interval whatever else flows.
    pub beat: Option<(Duration, &'static [u8])>,
}

impl Keepalive {
    /// The keepalive of dialects that have none of their own: a WebSocket ping after
    /// half the idle timeout of silence, a close (1001 "idle timeout") after all of it.
    pub fn websocket(settings: &Settings) -> Keepalive {
        Keepalive {
            ping_after: Some(settings.idle_timeout / 2),
            close_after: Some((settings.idle_timeout, CloseReason::IDLE)),
            beat: None,
        }
    }
}

/// How a dialect ends a connection that has not identified within the identify timeout,
/// whether or not it answers pings: the text it is sent first, if any, then the close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identify {
    /// Time from the connection's opening to identify in.
    pub within: Duration,
    /// The dialect's error, sent before the close.
    pub error: Option<&'static [u8]>,
    /// The close that follows.
    pub close: CloseReason,
}

/// One client dialect: its connections' state, what they are told first, how their
/// messages become engine commands, how engine events look to them, how they are kept
/// alive and how a server fault is reported.
pub trait Dialect {
    /// The connection's dialect state.
    type Session;
    /// The dialect's name in metrics and logs.
    const NAME: &'static str;
    /// Connections take part in the engine (everything but test services).
    const ENGINE: bool = true;

    /// A new connection's state; what it is told first goes to `out`. `arg` is what the
    /// route took from the path (a World id), if anything.
    fn open(arg: Option<&str>, settings: &Settings, out: &mut Vec<Action>) -> Self::Session;

    /// Handles one client message; every resulting action goes to `out`, in order.
    fn on_message(
        session: &mut Self::Session,
        msg: Inbound<'_>,
        cx: &Context<'_>,
        out: &mut Vec<Action>,
    );

    /// Appends `event` as this dialect's text to `out`; false if the dialect has no
    /// such event (its connections are sent nothing).
    fn encode(event: &Event, out: &mut Vec<u8>) -> bool;

    /// How this dialect's connections are kept alive over a plain WebSocket.
    fn keepalive(settings: &Settings) -> Keepalive;

    /// How long a connection has to identify, and how it is told it did not; `None`: it
    /// need not. A dialect that requires it answers the accepted identification with
    /// [`Action::Identified`].
    fn identify(_settings: &Settings) -> Option<Identify> {
        None
    }

    /// The request id `text` carries (World's `id`, SocketCluster's `cid`), read without
    /// handling the message (it may be overwritten): a message dropped unread, over the
    /// rate limit, is refused with it so the client can match the refusal. Dialects
    /// without request ids keep the default.
    fn receipt_of(_text: &mut [u8]) -> Receipt {
        None
    }

    /// Tells the client of a server fault, and closes.
    fn on_fault(session: &mut Self::Session, fault: Fault, out: &mut Vec<Action>);

    /// Goes on after the backend's connect hook answered an [`Action::Connect`] this
    /// dialect sent with `resume`. Dialects that never send one keep the default.
    fn connected(
        resume: &str,
        outcome: Result<Connected, Denied>,
        settings: &Settings,
        out: &mut Vec<Action>,
    ) {
        let _ = (resume, outcome, settings, out);
    }
}
