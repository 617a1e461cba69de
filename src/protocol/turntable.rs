//! The turntable v1 dialect (`../shared/protocols/turntable.md`): JSON objects
//! `{"command": NAME, "data": ...}` in text frames, presence and game rooms.
//!
//! Client → server: `idme`, `subscribe`, `unsubscribe`, `status`, `joingame`,
//! `leavegame`, `game`. Server → client: `idyou` (on open), `identified`, `userchange`,
//! `status`, `joined`, `left`, `memberjoined`, `memberleft`, `invite`, `game`, `error`.
//! Errors are `{"command":"error","data":{"code":"<dotted.code>","message":"..."}}` and
//! leave the connection usable.

use std::borrow::Cow;

use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::close::CloseReason;
use super::contract::{
    Action, Connected, Context, Denied, Dialect, Fault, Identify, Inbound, Keepalive, Settings,
};
use super::errors;
use super::json::{JsonError, write_key, write_str, write_str_array, write_u64};
use crate::auth::{Auth, AuthError};
use crate::clock::now_ms;
use crate::engine::id::{self as ids, MAX_ID_LEN};
use crate::engine::lobby::{GAME_PREFIX, LOBBY};
use crate::engine::namespace::TURNTABLE;
use crate::engine::{ChannelCommand, Command, Event, PublishMode, Status, UserCommand};

/// What the server sends first on every connection: "identify yourself".
pub const GREETING: &str = r#"{"command":"idyou","data":{}}"#;

/// A client frame the dialect refused, with the code and message the client gets.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: &'static str,
    pub message: Cow<'static, str>,
}

impl ProtocolError {
    fn new(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("protocol.invalid_data", message)
    }

    /// The refusal for a binary frame: this dialect is JSON text only.
    pub fn binary() -> Self {
        Self::new("protocol.binary_unsupported", "send JSON in text frames")
    }
}

/// Parses one text frame (in place: the buffer is scratch afterwards) into a command for
/// the engine. `user` is the connection's identity, if any; `auth` verifies `idme`
/// tokens (`None`: ids are trusted); `now_ms` stamps game actions.
pub fn decode(
    text: &mut [u8],
    user: Option<&str>,
    auth: Option<&Auth>,
    now_ms: u64,
) -> Result<Command, ProtocolError> {
    match decode_action(text, user, auth, false, now_ms)? {
        Action::Engine(cmd) => Ok(cmd),
        _ => Err(ProtocolError::invalid(
            "idme with credentials needs a connect hook",
        )),
    }
}

/// What one text frame asks for: an engine command, or (`idme` with `credentials`
/// when the server has a connect hook, `connect`) the backend's word on who it is.
pub fn decode_action(
    text: &mut [u8],
    user: Option<&str>,
    auth: Option<&Auth>,
    connect: bool,
    now_ms: u64,
) -> Result<Action, ProtocolError> {
    let mut value = super::json::parse(text).map_err(|e| match e {
        JsonError::Malformed => {
            ProtocolError::new("protocol.malformed_json", "frame is not valid JSON")
        }
        JsonError::DuplicateKey(key) => ProtocolError::new(
            "protocol.duplicate_key",
            format!("the key {key:?} appears twice in one object"),
        ),
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ProtocolError::new(
            "protocol.malformed_json",
            "frame must be a JSON object",
        ));
    };
    let command = match obj.get("command").and_then(|c| c.as_str()) {
        Some(name) => Name::parse(name).ok_or_else(|| {
            ProtocolError::new(
                "protocol.unknown_command",
                format!("unknown command {name:?}"),
            )
        })?,
        None => return Err(ProtocolError::invalid("\"command\" must be a string")),
    };
    let mut data = obj.remove("data").unwrap_or(BorrowedValue::null());
    let command = match command {
        Name::Idme if connect && data.get("credentials").is_some() => {
            return match data.get_str("credentials") {
                Some(credentials) if !credentials.is_empty() => Ok(Action::Connect {
                    credentials: Box::from(credentials),
                    resume: Box::from(""),
                }),
                _ => Err(ProtocolError::invalid(
                    "credentials must be a non-empty string",
                )),
            };
        }
        Name::Idme => return identify(&data, auth).map(Action::Engine),
        Name::Identified(command) => command,
    };
    let Some(user) = user else {
        return Err(ProtocolError::new(
            "auth.not_identified",
            "identify with idme first",
        ));
    };
    let cmd = match command {
        Identified::Subscribe => Ok(Command::User(UserCommand::Watch(id_list(
            &data,
            "subscribe",
        )?))),
        Identified::Unsubscribe => Ok(Command::User(UserCommand::Unwatch(id_list(
            &data,
            "unsubscribe",
        )?))),
        Identified::Status => match data.as_str() {
            Some("online") => Ok(Command::User(UserCommand::SetStatus(Status::Online))),
            Some("busy") => Ok(Command::User(UserCommand::SetStatus(Status::Busy))),
            _ => Err(ProtocolError::invalid(
                "status data must be \"online\" or \"busy\"",
            )),
        },
        Identified::Joingame => {
            let channel = room_channel(id(data.get_str("channel"), "joingame needs a channel")?);
            own_id(
                data.get_str("self"),
                user,
                ("game.spoofed_self", "self must be your own id"),
                "joingame needs self",
            )?;
            let invite = match data.get("invite") {
                None => Vec::new(),
                Some(list) => id_list(list, "invite")?,
            };
            Ok(Command::Channel(ChannelCommand::Join {
                channel,
                invite,
                receipt: None,
            }))
        }
        Identified::Leavegame => {
            let channel = room_channel(id(data.get_str("channel"), "leavegame needs a channel")?);
            Ok(Command::Channel(ChannelCommand::Leave {
                channel,
                receipt: None,
            }))
        }
        Identified::Game => game(&mut data, user, now_ms),
    };
    cmd.map(Action::Engine)
}

/// The commands a client may send: `idme`, and those that need an identity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Name {
    Idme,
    Identified(Identified),
}

/// The commands a connection may send once identified.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Identified {
    Subscribe,
    Unsubscribe,
    Status,
    Joingame,
    Leavegame,
    Game,
}

impl Name {
    fn parse(name: &str) -> Option<Name> {
        Some(match name {
            "idme" => Name::Idme,
            "subscribe" => Name::Identified(Identified::Subscribe),
            "unsubscribe" => Name::Identified(Identified::Unsubscribe),
            "status" => Name::Identified(Identified::Status),
            "joingame" => Name::Identified(Identified::Joingame),
            "leavegame" => Name::Identified(Identified::Leavegame),
            "game" => Name::Identified(Identified::Game),
            _ => return None,
        })
    }
}

/// `idme` carries `{"token": JWT}` when the server has a secret, a bare id otherwise.
fn identify(data: &BorrowedValue, auth: Option<&Auth>) -> Result<Command, ProtocolError> {
    let refused = |e: AuthError| ProtocolError::new(e.code(), e.message());
    match (auth, data.as_str()) {
        (None, Some(_)) => Ok(Command::Identify {
            user: id(data.as_str(), "idme data must be the user id string")?,
        }),
        (None, None) => Err(ProtocolError::invalid(
            "idme data must be the user id string (this server has no auth secret)",
        )),
        (Some(_), Some(_)) => Err(ProtocolError::new(
            "auth.token_required",
            r#"idme data must be {"token": "<jwt>"}"#,
        )),
        (Some(auth), None) => {
            let token = match data.get("token") {
                None => return Err(refused(AuthError::Missing)),
                Some(token) => token.as_str().ok_or_else(|| refused(AuthError::Invalid))?,
            };
            let identity = auth.verify(token).map_err(refused)?;
            Ok(Command::Identify {
                user: identity.user,
            })
        }
    }
}

/// Validates a game message and stamps its actions: `timestamp` becomes the server's
/// receive time, the client's value is kept as `client_timestamp`.
fn game(data: &mut BorrowedValue, user: &str, now_ms: u64) -> Result<Command, ProtocolError> {
    let channel = room_channel(id(data.get_str("channel"), "game needs a channel")?);
    let Some(actions) = data.get_mut("actions").and_then(|a| a.as_array_mut()) else {
        return Err(ProtocolError::invalid("game needs an actions array"));
    };
    for action in actions.iter_mut() {
        let Some(action) = action.as_object_mut() else {
            return Err(ProtocolError::invalid("each action must be an object"));
        };
        own_id(
            action.get("from").and_then(|f| f.as_str()),
            user,
            (
                "game.spoofed_from",
                "each action's from must be your own id",
            ),
            "each action needs from",
        )?;
        if let Some(client) = action.remove("timestamp") {
            action.insert("client_timestamp".into(), client);
        }
        action.insert("timestamp".into(), BorrowedValue::from(now_ms));
    }
    let data = data
        .get("actions")
        .expect("checked above")
        .encode()
        .into_boxed_str();
    Ok(Command::Channel(ChannelCommand::Publish {
        channel,
        data,
        mode: PublishMode {
            echo: true,
            receipt: None,
        },
    }))
}

/// The engine's name of a game room: the lobby and its games (`lobby`, `game:<id>`)
/// are the node's, shared with every dialect; any other room is `turntable:<room>`, in
/// the namespace of turntable game rooms.
fn room_channel(room: Box<str>) -> Box<str> {
    if &*room == LOBBY || room.starts_with(GAME_PREFIX) {
        room
    } else {
        format!("{TURNTABLE}:{room}").into_boxed_str()
    }
}

/// The room name clients know for an engine channel.
fn room_name(channel: &str) -> &str {
    channel
        .strip_prefix(TURNTABLE)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(channel)
}

/// Checks that an id a client names as itself (`self`, an action's `from`) is the
/// caller's: `spoofed` is the refusal (code, message) otherwise, `missing` the message
/// when it is absent.
fn own_id(
    claimed: Option<&str>,
    user: &str,
    spoofed: (&'static str, &'static str),
    missing: &'static str,
) -> Result<(), ProtocolError> {
    match claimed {
        Some(id) if id == user => Ok(()),
        Some(_) => Err(ProtocolError::new(spoofed.0, spoofed.1)),
        None => Err(ProtocolError::invalid(missing)),
    }
}

fn id(value: Option<&str>, what: &'static str) -> Result<Box<str>, ProtocolError> {
    match value {
        Some(s) if ids::is_valid(s) => Ok(Box::from(s)),
        Some(_) => Err(ProtocolError::invalid(format!(
            "ids must be 1 to {MAX_ID_LEN} bytes"
        ))),
        None => Err(ProtocolError::invalid(what)),
    }
}

fn id_list(value: &BorrowedValue, command: &str) -> Result<Vec<Box<str>>, ProtocolError> {
    let Some(items) = value.as_array() else {
        return Err(ProtocolError::invalid(format!(
            "{command} data must be an array of ids"
        )));
    };
    items
        .iter()
        .map(|item| id(item.as_str(), "ids must be strings"))
        .collect()
}

/// Encodes an engine event as this dialect's JSON text; false if the dialect has no
/// such event (the connection is not sent anything).
pub fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
    match event {
        Event::Reload => out.extend_from_slice(br#"{"command":"reload","data":{}}"#),
        Event::Kicked { channel, message } => {
            out.extend_from_slice(br#"{"command":"kicked","data":{"channel":"#);
            write_str(out, room_name(channel));
            out.extend_from_slice(br#","message":"#);
            write_str(out, message);
            out.extend_from_slice(b"}}");
        }
        Event::Identified { user } => {
            out.extend_from_slice(br#"{"command":"identified","data":{"id":"#);
            write_str(out, user);
            out.extend_from_slice(b"}}");
        }
        Event::Presence { statuses } => {
            out.extend_from_slice(br#"{"command":"userchange","data":{"#);
            for (i, (user, status)) in statuses.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_key(out, user);
                write_str(out, status.as_str());
            }
            out.extend_from_slice(b"}}");
        }
        Event::StatusSet { status } => {
            out.extend_from_slice(br#"{"command":"status","data":"#);
            write_str(out, status.as_str());
            out.push(b'}');
        }
        Event::Joined {
            channel, members, ..
        } => {
            out.extend_from_slice(br#"{"command":"joined","data":{"channel":"#);
            write_str(out, room_name(channel));
            out.extend_from_slice(br#","members":"#);
            write_str_array(out, members.iter().map(|m| &**m));
            out.extend_from_slice(b"}}");
        }
        Event::Left { channel, .. } => {
            out.extend_from_slice(br#"{"command":"left","data":{"channel":"#);
            write_str(out, room_name(channel));
            out.extend_from_slice(b"}}");
        }
        Event::MemberJoined { channel, user } => member(out, "memberjoined", channel, user),
        Event::MemberLeft { channel, user } => member(out, "memberleft", channel, user),
        Event::Invite { channel, from } => {
            out.extend_from_slice(br#"{"command":"invite","data":{"channel":"#);
            write_str(out, room_name(channel));
            out.extend_from_slice(br#","from":"#);
            write_str(out, from);
            out.extend_from_slice(b"}}");
        }
        Event::Message {
            channel,
            seq,
            from,
            data,
            ..
        } => {
            out.extend_from_slice(br#"{"command":"game","data":{"channel":"#);
            write_str(out, room_name(channel));
            out.extend_from_slice(br#","seq":"#);
            write_u64(out, *seq);
            out.extend_from_slice(br#","from":"#);
            write_str(out, from);
            out.extend_from_slice(br#","actions":"#);
            out.extend_from_slice(data.as_bytes());
            out.extend_from_slice(b"}}");
        }
        Event::Error { code, .. } => encode_error(errors::code(*code), errors::message(*code), out),
        Event::Refused { code, message, .. } => encode_error(code, message, out),
        Event::RoomConnected { .. }
        | Event::RoomUsers { .. }
        | Event::RoomPresence { .. }
        | Event::RoomLeave { .. }
        | Event::RoomMessage { .. }
        | Event::Subscribed { .. }
        | Event::Unsubscribed { .. }
        | Event::Published { .. }
        | Event::Answered { .. }
        | Event::Replaced
        | Event::Members { .. }
        | Event::Disconnected
        | Event::DocumentOpened { .. }
        | Event::EditAccepted { .. }
        | Event::DocumentEdited { .. } => return false,
    }
    true
}

fn member(out: &mut Vec<u8>, command: &str, channel: &str, user: &str) {
    out.extend_from_slice(br#"{"command":"#);
    write_str(out, command);
    out.extend_from_slice(br#","data":{"channel":"#);
    write_str(out, room_name(channel));
    out.extend_from_slice(br#","user":"#);
    write_str(out, user);
    out.extend_from_slice(b"}}");
}

/// Encodes an error reply.
pub fn encode_error(code: &str, message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"command":"error","data":{"code":"#);
    write_str(out, code);
    out.extend_from_slice(br#","message":"#);
    write_str(out, message);
    out.extend_from_slice(b"}}");
}

/// The turntable v1 dialect: presence and game rooms.
pub struct Turntable;

/// What a connection that sent no accepted `idme` within `identify_timeout` is told
/// before it is closed.
const IDENTIFY_TIMEOUT: &[u8] = br#"{"command":"error","data":{"code":"auth.identify_timeout","message":"identify with idme within the identify timeout"}}"#;

impl Dialect for Turntable {
    type Session = ();
    const NAME: &'static str = "turntable";

    fn open(_: Option<&str>, _: &Settings, out: &mut Vec<Action>) {
        out.push(Action::send(GREETING.as_bytes()));
    }

    fn on_message(_: &mut (), msg: Inbound<'_>, cx: &Context<'_>, out: &mut Vec<Action>) {
        let decoded = match msg {
            Inbound::Text(text) => {
                let connect = cx.settings.connect_hook;
                decode_action(text, cx.user(), cx.auth, connect, now_ms())
            }
            Inbound::Binary(_) => Err(ProtocolError::binary()),
        };
        match decoded {
            Ok(action @ Action::Engine(Command::Identify { .. })) => {
                out.push(action);
                out.push(Action::Identified);
            }
            Ok(action) => out.push(action),
            Err(e) => out.push(Action::send(error_text(e.code, &e.message))),
        }
    }

    fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
        encode(event, out)
    }

    fn keepalive(settings: &Settings) -> Keepalive {
        Keepalive::websocket(settings)
    }

    /// An accepted `idme` identifies.
    fn identify(settings: &Settings) -> Option<Identify> {
        Some(Identify {
            within: settings.identify_timeout,
            error: Some(IDENTIFY_TIMEOUT),
            close: CloseReason::IDENTIFY_TIMEOUT,
        })
    }

    /// The backend named the user of `idme`'s credentials (the engine then answers
    /// `identified`), or refused them.
    fn connected(_: &str, outcome: Result<Connected, Denied>, _: &Settings, out: &mut Vec<Action>) {
        match outcome {
            Ok(Connected { user, mut profile }) => {
                profile.insert("id".into(), serde_json::Value::from(&*user));
                let profile = serde_json::Value::Object(profile).to_string();
                out.push(Action::Engine(Command::Identify { user }));
                out.push(Action::Identified);
                out.push(Action::Engine(Command::Profile(profile.into_boxed_str())));
            }
            Err(denied) => out.push(Action::send(error_text(&denied.code, &denied.message))),
        }
    }

    fn on_fault(_: &mut (), Fault::Internal: Fault, out: &mut Vec<Action>) {
        out.push(Action::send(error_text(
            "server.internal",
            "internal error",
        )));
        out.push(Action::Close(CloseReason::SERVER_FATAL));
    }
}

/// An error reply as a text of its own.
fn error_text(code: &str, message: &str) -> Vec<u8> {
    let mut text = Vec::with_capacity(64 + message.len());
    encode_error(code, message, &mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ErrorCode;

    fn dec(text: &str, user: Option<&str>) -> Result<Command, ProtocolError> {
        decode(&mut text.as_bytes().to_vec(), user, None, 1_700_000_000_000)
    }

    #[test]
    fn idme_needs_a_valid_token_when_the_server_has_a_secret() {
        let auth = Auth::new(&crate::auth::Secret::new("k".repeat(32)).unwrap());
        let token = auth.issue(
            "1:7",
            None,
            crate::auth::now_secs() + 60,
            Default::default(),
        );
        let idme = |data: &str| {
            let text = format!(r#"{{"command":"idme","data":{data}}}"#);
            decode(&mut text.into_bytes(), None, Some(&auth), 0)
        };
        assert_eq!(
            idme(&format!(r#"{{"token":"{token}"}}"#)),
            Ok(Command::Identify { user: "1:7".into() })
        );
        let code = |data: &str| idme(data).unwrap_err().code;
        assert_eq!(code(r#""1:7""#), "auth.token_required");
        assert_eq!(code("{}"), "auth.missing_token");
        assert_eq!(code(r#"{"token":""}"#), "auth.missing_token");
        assert_eq!(code(r#"{"token":5}"#), "auth.invalid_token");
        assert_eq!(code(r#"{"token":"a.b.c"}"#), "auth.invalid_token");
        let expired = auth.issue("1:7", None, 1, Default::default());
        assert_eq!(
            code(&format!(r#"{{"token":"{expired}"}}"#)),
            "auth.expired_token"
        );
    }

    fn enc(event: &Event) -> serde_json::Value {
        let mut out = Vec::new();
        encode(event, &mut out);
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn decodes_the_seed_commands() {
        assert_eq!(
            dec(r#"{"command":"idme","data":"1:12345"}"#, None),
            Ok(Command::Identify {
                user: "1:12345".into()
            })
        );
        assert_eq!(
            dec(
                r#"{ "command": "subscribe", "data":["1:2345", "1:3456"]}"#,
                Some("u")
            ),
            Ok(Command::User(UserCommand::Watch(vec![
                "1:2345".into(),
                "1:3456".into()
            ])))
        );
        assert_eq!(
            dec(r#"{"command":"status","data":"busy"}"#, Some("u")),
            Ok(Command::User(UserCommand::SetStatus(Status::Busy)))
        );
        assert_eq!(
            dec(
                r#"{"command":"joingame","data":{"channel":"CStrike","self":"1:3456","invite":["1:2345"]}}"#,
                Some("1:3456")
            ),
            Ok(Command::Channel(ChannelCommand::Join {
                receipt: None,
                channel: "turntable:CStrike".into(),
                invite: vec!["1:2345".into()]
            }))
        );
    }

    #[test]
    fn game_actions_get_the_server_timestamp() {
        let cmd = dec(
            r#"{"command":"game","data":{"channel":"CStrike","actions":[{"timestamp":10223232,"from":"1:23456","data":{"strike_one":"1:1234"}}]}}"#,
            Some("1:23456"),
        )
        .unwrap();
        let Command::Channel(ChannelCommand::Publish { channel, data, .. }) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(&*channel, "turntable:CStrike");
        let actions: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(
            actions,
            serde_json::json!([{"timestamp":1_700_000_000_000u64,"client_timestamp":10223232,
                "from":"1:23456","data":{"strike_one":"1:1234"}}])
        );
    }

    #[test]
    fn refuses_bad_input_with_dotted_codes() {
        let code = |text: &str, user| dec(text, user).unwrap_err().code;
        assert_eq!(code("not json", None), "protocol.malformed_json");
        assert_eq!(code("[1,2]", None), "protocol.malformed_json");
        assert_eq!(code(r#"{"data":1}"#, None), "protocol.invalid_data");
        assert_eq!(
            code(r#"{"command":"dance"}"#, Some("u")),
            "protocol.unknown_command"
        );
        assert_eq!(
            code(r#"{"command":"subscribe","data":[]}"#, None),
            "auth.not_identified"
        );
        assert_eq!(
            code(r#"{"command":"idme","data":5}"#, None),
            "protocol.invalid_data"
        );
        assert_eq!(
            code(r#"{"command":"idme","data":""}"#, None),
            "protocol.invalid_data"
        );
        assert_eq!(
            code(r#"{"command":"subscribe","data":"x"}"#, Some("u")),
            "protocol.invalid_data"
        );
        assert_eq!(
            code(r#"{"command":"subscribe","data":[1]}"#, Some("u")),
            "protocol.invalid_data"
        );
        assert_eq!(
            code(r#"{"command":"status","data":"away"}"#, Some("u")),
            "protocol.invalid_data"
        );
        assert_eq!(
            code(
                r#"{"command":"joingame","data":{"channel":"c","self":"v"}}"#,
                Some("u")
            ),
            "game.spoofed_self"
        );
        assert_eq!(
            code(
                r#"{"command":"game","data":{"channel":"c","actions":[{"from":"v"}]}}"#,
                Some("u")
            ),
            "game.spoofed_from"
        );
        assert_eq!(
            code(
                r#"{"command":"game","data":{"channel":"c","actions":{}}}"#,
                Some("u")
            ),
            "protocol.invalid_data"
        );
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            code(&format!(r#"{{"command":"idme","data":"{long}"}}"#), None),
            "protocol.invalid_data"
        );
    }

    #[test]
    fn encodes_every_event_as_valid_json() {
        use serde_json::json;
        assert_eq!(
            enc(&Event::Identified { user: "1:1".into() }),
            json!({"command":"identified","data":{"id":"1:1"}})
        );
        assert_eq!(
            enc(&Event::Presence {
                statuses: vec![("a".into(), Status::Online), ("b\"".into(), Status::Busy)]
            }),
            json!({"command":"userchange","data":{"a":"online","b\"":"busy"}})
        );
        assert_eq!(
            enc(&Event::Joined {
                receipt: None,
                channel: "c".into(),
                members: vec!["a".into(), "b".into()]
            }),
            json!({"command":"joined","data":{"channel":"c","members":["a","b"]}})
        );
        assert_eq!(
            enc(&Event::Message {
                skip: None,
                channel: "c".into(),
                seq: 7,
                from: "a".into(),
                data: "[{\"x\":1}]".into()
            }),
            json!({"command":"game","data":{"channel":"c","seq":7,"from":"a","actions":[{"x":1}]}})
        );
        assert_eq!(
            enc(&Event::Error {
                receipt: None,
                code: ErrorCode::NotMember
            }),
            json!({"command":"error","data":{"code":"game.not_member","message":"not a member of this channel"}})
        );
        for event in [
            Event::StatusSet {
                status: Status::Busy,
            },
            Event::Left {
                receipt: None,
                channel: "c".into(),
            },
            Event::MemberJoined {
                channel: "c".into(),
                user: "u".into(),
            },
            Event::MemberLeft {
                channel: "c".into(),
                user: "u".into(),
            },
            Event::Invite {
                channel: "c".into(),
                from: "u".into(),
            },
        ] {
            enc(&event);
        }
    }
}
