//! Client dialects: each file turns its clients' messages into engine commands and
//! engine events into its messages, and is the only place that knows that dialect's
//! shapes, its greeting, its errors and its keepalive rules.
//!
//! Every dialect implements [`Dialect`]; [`dialects!`] lists them once and generates
//! [`DialectKind`] (the dialect of a connection, a small `Copy` tag) and [`Session`]
//! (a connection's dialect state, one variant per dialect), which dispatch to the
//! dialects statically. The layers below (`net`, `runtime`) hold no per-dialect match.
//!
//! Adding a dialect: write `protocol/<name>.rs` with a type implementing [`Dialect`],
//! add one line to the [`dialects!`] list below, and one route in `net::http::route`.

pub mod close;
pub mod delta;
pub mod echo;
pub mod errors;
pub mod json;
pub mod socketcluster;
pub mod sockjs;
pub mod talker;
pub mod turntable;
pub mod world;

use std::time::Duration;

use crate::auth::Auth;
use crate::engine::{Command, ConnId, Engine, Event};
pub use close::CloseReason;

/// What handling a client message asks of the connection, in order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Give the engine this command.
    Engine(Command),
    /// Send this dialect text to this connection only.
    Send(Vec<u8>),
    /// Send these bytes back in a binary message (the echo service).
    SendBinary(Vec<u8>),
    /// Close the connection.
    Close(CloseReason),
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
    pub sockjs_heartbeat: Duration,
    /// World connections one user may hold.
    pub max_connections_per_user: Option<usize>,
    /// The world ids served at `/ws/world/<id>`.
    pub worlds: Vec<Box<str>>,
    /// Tests may reach `test.fail`, a World handler that panics.
    pub fault_injection: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            idle_timeout: Duration::from_secs(60),
            talker_ping_timeout: Duration::from_secs(60),
            socketcluster_ping_interval: Duration::from_secs(8),
            socketcluster_ping_timeout: Duration::from_secs(20),
            sockjs_heartbeat: Duration::from_secs(25),
            max_connections_per_user: None,
            worlds: vec![Box::from("default")],
            fault_injection: false,
        }
    }
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

    /// Tells the client of a server fault, and closes.
    fn on_fault(session: &mut Self::Session, fault: Fault, out: &mut Vec<Action>);
}

/// Declares the dialects: `Variant => module::Type`. Generates [`DialectKind`] and
/// [`Session`], whose methods dispatch to each dialect's [`Dialect`] implementation.
macro_rules! dialects {
    ($($variant:ident => $dialect:ty),+ $(,)?) => {
        /// Which dialect a connection speaks: how engine events are encoded for it, how
        /// it is kept alive, which figures count it.
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub enum DialectKind {
            $($variant),+
        }

        impl DialectKind {
            /// Every dialect, in [`DialectKind::index`] order.
            pub const ALL: &[DialectKind] = &[$(DialectKind::$variant),+];
            /// How many dialects there are, for per-dialect tables.
            pub const COUNT: usize = Self::ALL.len();

            /// This dialect's place in per-dialect tables.
            pub fn index(self) -> usize {
                self as usize
            }

            /// The dialect's name in metrics and logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(DialectKind::$variant => <$dialect as Dialect>::NAME),+
                }
            }

            /// Connections of this dialect take part in the engine.
            pub fn joins_engine(self) -> bool {
                match self {
                    $(DialectKind::$variant => <$dialect as Dialect>::ENGINE),+
                }
            }

            /// See [`Dialect::encode`].
            pub fn encode(self, event: &Event, out: &mut Vec<u8>) -> bool {
                match self {
                    $(DialectKind::$variant => <$dialect as Dialect>::encode(event, out)),+
                }
            }

            /// See [`Dialect::keepalive`].
            pub fn keepalive(self, settings: &Settings) -> Keepalive {
                match self {
                    $(DialectKind::$variant => <$dialect as Dialect>::keepalive(settings)),+
                }
            }

            /// A new connection of this dialect: see [`Dialect::open`].
            pub fn open(
                self,
                arg: Option<&str>,
                settings: &Settings,
                out: &mut Vec<Action>,
            ) -> Session {
                match self {
                    $(DialectKind::$variant => {
                        Session::$variant(<$dialect as Dialect>::open(arg, settings, out))
                    }),+
                }
            }
        }

        /// One connection's dialect state.
        #[allow(clippy::large_enum_variant)]
        pub enum Session {
            $($variant(<$dialect as Dialect>::Session)),+
        }

        impl Session {
            pub fn kind(&self) -> DialectKind {
                match self {
                    $(Session::$variant(_) => DialectKind::$variant),+
                }
            }

            /// See [`Dialect::on_message`].
            pub fn on_message(
                &mut self,
                msg: Inbound<'_>,
                cx: &Context<'_>,
                out: &mut Vec<Action>,
            ) {
                match self {
                    $(Session::$variant(s) => <$dialect as Dialect>::on_message(s, msg, cx, out)),+
                }
            }

            /// See [`Dialect::on_fault`].
            pub fn on_fault(&mut self, fault: Fault, out: &mut Vec<Action>) {
                match self {
                    $(Session::$variant(s) => <$dialect as Dialect>::on_fault(s, fault, out)),+
                }
            }
        }
    };
}

dialects! {
    Turntable => turntable::Turntable,
    Talker => talker::Talker,
    SocketCluster => socketcluster::SocketCluster,
    World => world::World,
    Echo => echo::Echo,
    GoAway => echo::GoAway,
}

/// The texts a session sent, parsed: what the dialects' unit tests assert on.
#[cfg(test)]
fn sent(actions: &[Action]) -> Vec<serde_json::Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(bytes) => Some(serde_json::from_slice(bytes).unwrap()),
            _ => None,
        })
        .collect()
}
