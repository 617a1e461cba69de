//! Client dialects: each file turns its clients' messages into engine commands and
//! engine events into its messages, and is the only place that knows that dialect's
//! shapes, its greeting, its errors and its keepalive rules.
//!
//! Every dialect implements [`Dialect`] (in `contract`); `dialects!` lists them once and generates
//! [`DialectKind`] (the dialect of a connection, a small `Copy` tag) and [`Session`]
//! (a connection's dialect state, one variant per dialect), which dispatch to the
//! dialects statically. The layers below (`net`, `runtime`) hold no per-dialect match.
//!
//! Adding a dialect: write `protocol/<name>.rs` with a type implementing [`Dialect`],
//! add one line to the `dialects!` list below, and one route in `net::http::route`.

pub mod close;
pub mod contract;
pub mod delta;
pub mod echo;
pub mod errors;
pub mod json;
pub mod socketcluster;
pub mod sockjs;
pub mod talker;
pub mod turntable;
pub mod world;

use crate::engine::Event;
pub use close::CloseReason;
pub use contract::{
    Action, Connected, Context, Denied, Dialect, Fault, Identify, Inbound, Keepalive, Settings,
};

/// A dialect connection to open, as a route names it: the dialect, and what the path
/// names beyond it (a World id), for the dialect to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    pub dialect: DialectKind,
    pub arg: Option<Box<str>>,
}

impl Opening {
    pub fn of(dialect: DialectKind) -> Opening {
        Opening { dialect, arg: None }
    }
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

            /// See [`Dialect::identify`].
            pub fn identify(self, settings: &Settings) -> Option<Identify> {
                match self {
                    $(DialectKind::$variant => <$dialect as Dialect>::identify(settings)),+
                }
            }

            /// See [`Dialect::connected`].
            pub fn connected(
                self,
                resume: &str,
                outcome: Result<Connected, Denied>,
                settings: &Settings,
                out: &mut Vec<Action>,
            ) {
                match self {
                    $(DialectKind::$variant => {
                        <$dialect as Dialect>::connected(resume, outcome, settings, out)
                    }),+
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

            /// See [`Dialect::receipt_of`].
            pub fn receipt_of(&self, text: &mut [u8]) -> crate::engine::Receipt {
                match self {
                    $(Session::$variant(_) => <$dialect as Dialect>::receipt_of(text)),+
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings() -> Settings {
        Settings {
            talker_ping_timeout: Duration::from_secs(45),
            worlds: vec![Box::from("w")],
            ..Settings::default()
        }
    }

    /// Every dialect tells its client of a fault in its own words, then closes.
    #[test]
    fn a_fault_is_told_then_closes() {
        let expected: [(DialectKind, Option<serde_json::Value>, u16); 6] = [
            (
                DialectKind::Turntable,
                Some(
                    serde_json::json!({"command":"error","data":{"code":"server.internal","message":"internal error"}}),
                ),
                1011,
            ),
            (
                DialectKind::Talker,
                Some(serde_json::json!({"type":"error","message":"internal error"})),
                1011,
            ),
            (DialectKind::SocketCluster, None, 1011),
            (
                DialectKind::World,
                Some(serde_json::json!(["error",{"code":"server.fatal"}])),
                1011,
            ),
            (DialectKind::Echo, None, 1011),
            (DialectKind::GoAway, None, 3000),
        ];
        for (dialect, told, code) in expected {
            let mut out = Vec::new();
            let mut session = dialect.open(Some("w"), &settings(), &mut out);
            out.clear();
            session.on_fault(Fault::Internal, &mut out);
            assert_eq!(sent(&out).first().cloned(), told, "{dialect:?}");
            assert!(
                matches!(out.last(), Some(Action::Close(r)) if r.code == code),
                "{dialect:?}: {out:?}"
            );
        }
    }

    #[test]
    fn each_dialect_keeps_alive_its_own_way() {
        let s = settings();
        let plain = Keepalive::websocket(&s);
        assert_eq!(plain.ping_after, Some(Duration::from_secs(30)));
        assert_eq!(DialectKind::Turntable.keepalive(&s), plain);
        assert_eq!(DialectKind::World.keepalive(&s), plain);
        let talker = DialectKind::Talker.keepalive(&s);
        assert_eq!(talker.ping_after, None, "Talker clients ping themselves");
        assert_eq!(talker.close_after.map(|c| c.0), Some(s.talker_ping_timeout));
        let sc = DialectKind::SocketCluster.keepalive(&s);
        assert_eq!(sc.ping_after, None);
        assert_eq!(
            sc.close_after.map(|(d, r)| (d, r.code)),
            Some((s.socketcluster_ping_timeout, 4001))
        );
        assert_eq!(sc.beat, Some((s.socketcluster_ping_interval, &b"#1"[..])));
    }

    #[test]
    fn a_world_this_server_does_not_serve_is_refused_at_open() {
        let mut out = Vec::new();
        DialectKind::World.open(Some("elsewhere"), &settings(), &mut out);
        assert_eq!(
            sent(&out),
            vec![serde_json::json!(["error",{"code":"world.unknown_world"}])]
        );
        assert!(matches!(out.last(), Some(Action::Close(r)) if r.code == 4404));
    }
}
