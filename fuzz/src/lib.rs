//! What the fuzz targets share: a dialect connection driven the way `net::inbound`
//! drives one, without sockets.

use std::sync::LazyLock;

use turntable::auth::{Auth, Secret};
use turntable::engine::{
    Answer, ConnId, Engine, Event, Limits, Notice, Outbox, Placement, ShardId, ShardMsg, ShardSet,
};
use turntable::protocol::{Action, Connected, Context, DialectKind, Inbound, Settings};

/// The secret the dialect targets verify tokens with when their input asks for one (the
/// seeds' tokens are signed with it: user `ann`, expiring in 2100).
pub const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret";

/// The World id the World target's connections open.
pub const WORLD: &str = "w";

/// The settings' defaults, built once (from the whole config's defaults: not cheap).
static DEFAULTS: LazyLock<(Settings, Limits)> =
    LazyLock::new(|| (Settings::default(), Limits::default()));

/// An outbox for a shard alone in its cluster: every event for the connection is
/// encoded in its dialect (which must not fail), nothing goes elsewhere.
struct Encoder {
    dialect: DialectKind,
    out: Vec<u8>,
}

impl Outbox for Encoder {
    fn deliver(&mut self, _: &[ConnId], event: &Event) {
        self.out.clear();
        self.dialect.encode(event, &mut self.out);
    }

    fn send(&mut self, shard: ShardId, _: ShardMsg) {
        unreachable!("a single shard sent to shard {shard}");
    }

    fn send_many(&mut self, shards: ShardSet, _: ShardMsg) {
        assert!(shards.is_empty(), "a single shard sent to others");
    }

    fn answer(&mut self, _: u64, _: Answer) {}

    fn notice(&mut self, _: Notice) {}
}

/// Opens a connection of `dialect` on an engine of its own and hands it `input`'s
/// messages, carrying out what the dialect asks as `net::inbound` does, until it closes.
///
/// The first byte chooses the settings: bit 0 a secret ([`SECRET`]) to verify tokens
/// with, bit 1 a connect hook (whose answer is always user `u1`), bit 2 an RPC hook.
/// The rest is the messages, one per line: a text message if it is UTF-8 (as the
/// WebSocket decoder guarantees), else a binary one.
pub fn run_dialect(dialect: DialectKind, input: &[u8]) {
    let Some((&flags, messages)) = input.split_first() else {
        return;
    };
    let settings = Settings {
        worlds: vec![Box::from(WORLD)],
        connect_hook: flags & 2 != 0,
        rpc_hook: (flags & 4 != 0).then(|| Box::from("http://127.0.0.1:1/rpc")),
        ..DEFAULTS.0.clone()
    };
    let auth = (flags & 1 != 0).then(|| Auth::new(&Secret::new(SECRET.to_owned()).unwrap()));
    let placement = Placement::single_node(1);
    let mut engine = Engine::new(placement.addr(0), placement, DEFAULTS.1.clone());
    let mut outbox = Encoder {
        dialect,
        out: Vec::new(),
    };
    let conn = ConnId(1);
    if dialect.joins_engine() {
        engine.open(conn);
    }
    let mut actions = Vec::new();
    let mut session = dialect.open(Some(WORLD), &settings, &mut actions);
    let mut open = perform(&mut engine, &mut outbox, conn, &settings, &mut actions);
    for message in messages.split(|&b| b == b'\n') {
        if !open {
            break;
        }
        let mut buf = message.to_vec();
        let msg = if std::str::from_utf8(&buf).is_ok() {
            Inbound::Text(&mut buf)
        } else {
            Inbound::Binary(&mut buf)
        };
        let cx = Context {
            engine: &engine,
            conn,
            auth: auth.as_ref(),
            settings: &settings,
        };
        session.on_message(msg, &cx, &mut actions);
        open = perform(&mut engine, &mut outbox, conn, &settings, &mut actions);
    }
    if dialect.joins_engine() {
        engine.close(conn, &mut outbox);
    }
}

/// Carries out (and empties) `actions`; false once one closes the connection.
fn perform(
    engine: &mut Engine,
    outbox: &mut Encoder,
    conn: ConnId,
    settings: &Settings,
    actions: &mut Vec<Action>,
) -> bool {
    let mut open = true;
    let mut pending: Vec<Action> = actions.drain(..).collect();
    while !pending.is_empty() && open {
        let mut more = Vec::new();
        for action in pending.drain(..) {
            match action {
                Action::Engine(cmd) => engine.command(conn, cmd, outbox),
                Action::Close(_) => {
                    open = false;
                    break;
                }
                Action::Rpc { receipt, .. } => {
                    assert!(settings.rpc_hook.is_some(), "an RPC without an rpc_hook");
                    outbox.deliver(
                        &[conn],
                        &Event::Refused {
                            code: "rpc.unavailable".into(),
                            message: "no backend".into(),
                            receipt,
                        },
                    )
                }
                Action::Connect { resume, .. } => {
                    assert!(settings.connect_hook, "a Connect without a connect hook");
                    let user = Connected {
                        user: "u1".into(),
                        profile: serde_json::Map::new(),
                    };
                    outbox
                        .dialect
                        .connected(&resume, Ok(user), settings, &mut more);
                }
                Action::Send(_) | Action::SendBinary(_) | Action::Identified => {}
            }
        }
        pending = more;
    }
    open
}
