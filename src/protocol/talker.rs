//! The Talker dialect (`../shared/protocols/talker.md`): chat rooms, one JSON event
//! `{"type": ...}` per WebSocket text frame.
//!
//! Client → server: `connect`, `message` (public, private with `to`, or an update with
//! `id`), `ping`, `close`. Server → client: `connected`, `users`, `join`, `idle`, `back`,
//! `leave`, `message`, `error` (`{"type":"error","message":...}`). Before `connected`,
//! anything wrong ends the connection after the error, as the seed says; after it,
//! errors leave the connection up.

use serde_json::{Map, Value};
use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::close::CloseReason;
use super::contract::{
    Action, Connected, Context, Denied, Dialect, Fault, Identify, Inbound, Keepalive, Settings,
};
use super::errors;
use super::json::{JsonError, write_str, write_u64};
use crate::auth::Auth;
use crate::engine::id as ids;
use crate::engine::{Command, ErrorCode, Event, RoomChange, RoomCommand, RoomMember};

/// The longest message content accepted, in bytes (the frame limit applies too).
pub const MAX_CONTENT_LEN: usize = 16 * 1024;

/// What a client event asks for.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// A command for the engine (connect or message).
    Engine(Command),
    /// Leave the room now and end the connection.
    Close,
    /// Keep the connection alive; nothing to answer.
    Ping,
    /// Ask the backend's connect hook who brings `credentials`, then enter `room`.
    Connect {
        credentials: Box<str>,
        room: Box<str>,
    },
}

/// A refused client event.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Send this error and close the connection (authentication, or before `connected`).
    Fatal(&'static str),
    /// Send this error; the connection stays up.
    Error(String),
}

/// The error sent when a token is missing, invalid or expired, as the seed words it.
pub const AUTH_FAILED: &str = "Authentication failed";

/// The error for a genuine token (its signature checked) that names no user `name`,
/// which a Talker member needs: it says what is missing, and only a token the server
/// signed can get it, so a forger learns nothing from it.
pub const NAMELESS_TOKEN: &str = "Authentication failed: the token has no name claim";

/// Parses one client event. `connected` says whether the connection is in a room;
/// `auth` verifies tokens (`None`: the `user` object of `connect` is trusted);
/// `backend` says whether `connect` may bring `credentials` for the connect hook.
pub fn decode(
    text: &mut [u8],
    connected: bool,
    auth: Option<&Auth>,
    backend: bool,
) -> Result<Request, Refusal> {
    let refuse = |message: &'static str| {
        if connected {
            Refusal::Error(message.to_owned())
        } else {
            Refusal::Fatal(message)
        }
    };
    let value = match super::json::parse(text) {
        Ok(value) => value,
        Err(JsonError::Malformed) => return Err(refuse("invalid JSON")),
        Err(JsonError::DuplicateKey(_)) => return Err(refuse("invalid JSON: a key appears twice")),
    };
    let Some(kind) = value.get_str("type") else {
        return Err(refuse("every event needs a string type"));
    };
    match (kind, connected) {
        ("connect", false) if backend && value.get("credentials").is_some() => credentials(&value),
        ("connect", false) => connect(&value, auth).map(Request::Engine),
        ("connect", true) => Err(Refusal::Error("already connected".to_owned())),
        (_, false) => Err(Refusal::Fatal("connect to a room first")),
        ("message", true) => message(&value).map(Request::Engine),
        ("ping", true) => Ok(Request::Ping),
        ("close", true) => Ok(Request::Close),
        (other, true) => Err(Refusal::Error(format!("unknown type {other:?}"))),
    }
}

fn connect(value: &BorrowedValue, auth: Option<&Auth>) -> Result<Command, Refusal> {
    let room = room_of(value)?;
    let profile = match auth {
        Some(auth) => {
            let token = value.get_str("token").unwrap_or("");
            let identity = auth
                .verify(token)
                .map_err(|_| Refusal::Fatal(AUTH_FAILED))?;
            let name = identity.name.ok_or(Refusal::Fatal(NAMELESS_TOKEN))?;
            let mut profile = identity.profile;
            profile.insert("id".into(), Value::from(&*identity.user));
            profile.insert("name".into(), Value::from(&*name));
            profile
        }
        None => trusted_user(value).ok_or(Refusal::Fatal(AUTH_FAILED))?,
    };
    enter(room, profile)
}

/// The room a `connect` names.
fn room_of<'v>(value: &'v BorrowedValue<'_>) -> Result<&'v str, Refusal> {
    match value.get_str("room") {
        Some(room) if ids::is_valid(room) => Ok(room),
        _ => Err(Refusal::Fatal("connect needs a room of 1 to 256 bytes")),
    }
}

/// A `connect` with `credentials` for the backend's connect hook.
fn credentials(value: &BorrowedValue) -> Result<Request, Refusal> {
    let room = room_of(value)?;
    match value.get_str("credentials") {
        Some(credentials) if !credentials.is_empty() => Ok(Request::Connect {
            credentials: Box::from(credentials),
            room: Box::from(room),
        }),
        _ => Err(Refusal::Fatal("credentials must be a non-empty string")),
    }
}

/// Enters `room` as the user `profile` describes (it has a string `id` and `name`).
fn enter(room: &str, mut profile: Map<String, Value>) -> Result<Command, Refusal> {
    let id = profile["id"].as_str().unwrap_or_default().to_owned();
    if !ids::is_valid(&id) {
        return Err(Refusal::Fatal(AUTH_FAILED));
    }
    let brief = serde_json::json!({"id": id, "name": profile["name"]}).to_string();
    // id and name lead the object, as in the seed's examples.
    let (id_value, name_value) = (profile.remove("id"), profile.remove("name"));
    let mut ordered = Map::new();
    ordered.insert("id".into(), id_value.unwrap_or_default());
    ordered.insert("name".into(), name_value.unwrap_or_default());
    ordered.append(&mut profile);
    Ok(Command::Room(RoomCommand::Connect {
        room: Box::from(room),
        member: RoomMember {
            id: id.into_boxed_str(),
            profile: Value::Object(ordered).to_string().into_boxed_str(),
            brief: brief.into_boxed_str(),
        },
    }))
}

/// Without a server secret the client's own `user` object is its identity; it needs a
/// string `id` and `name`.
fn trusted_user(value: &BorrowedValue) -> Option<Map<String, Value>> {
    let user: Value = serde_json::from_str(&value.get("user")?.encode()).ok()?;
    let user = user.as_object()?;
    user.get("id")?.as_str()?;
    user.get("name")?.as_str()?;
    Some(user.clone())
}

fn message(value: &BorrowedValue) -> Result<Command, Refusal> {
    let content = match value.get_str("content") {
        Some(c) if c.len() <= MAX_CONTENT_LEN => c,
        Some(_) => return Err(Refusal::Error("content is too long".to_owned())),
        None => return Err(Refusal::Error("message needs a string content".to_owned())),
    };
    let to = match value.get("to") {
        None => None,
        Some(to) => match to.as_str() {
            Some(to) if ids::is_valid(to) => Some(Box::from(to)),
            _ => return Err(Refusal::Error("to must be a user id".to_owned())),
        },
    };
    let update = match value.get("id") {
        None => None,
        Some(id) => match id.as_u64() {
            Some(id) => Some(id),
            None => return Err(Refusal::Error("id must be a message id".to_owned())),
        },
    };
    if to.is_some() && update.is_some() {
        return Err(Refusal::Error(
            "a private message cannot update another".to_owned(),
        ));
    }
    Ok(Command::Room(RoomCommand::Say {
        content: Box::from(content),
        to,
        update,
    }))
}

/// Encodes an engine event as this dialect's JSON; false if the dialect has no such
/// event (the connection is not sent anything).
pub fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
    match event {
        Event::RoomConnected { profile } => {
            out.extend_from_slice(br#"{"type":"connected","user":"#);
            out.extend_from_slice(profile.as_bytes());
            out.push(b'}');
        }
        Event::RoomUsers { profiles } => {
            out.extend_from_slice(br#"{"type":"users","users":["#);
            for (i, profile) in profiles.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(profile.as_bytes());
            }
            out.extend_from_slice(b"]}");
        }
        Event::RoomPresence {
            change,
            profile,
            time,
        } => {
            let kind = match change {
                RoomChange::Join => "join",
                RoomChange::Idle => "idle",
                RoomChange::Back => "back",
            };
            out.extend_from_slice(br#"{"type":"#);
            write_str(out, kind);
            out.extend_from_slice(br#","user":"#);
            out.extend_from_slice(profile.as_bytes());
            end_with_time(out, *time);
        }
        Event::RoomLeave { user, time } => {
            out.extend_from_slice(br#"{"type":"leave","user":"#);
            write_str(out, user);
            end_with_time(out, *time);
        }
        Event::RoomMessage {
            id,
            content,
            brief,
            time,
            private,
            update,
        } => {
            out.extend_from_slice(br#"{"type":"message","id":"#);
            write_u64(out, *id);
            out.extend_from_slice(br#","content":"#);
            write_str(out, content);
            out.extend_from_slice(br#","user":"#);
            out.extend_from_slice(brief.as_bytes());
            out.extend_from_slice(br#","time":"#);
            write_u64(out, *time);
            if *private {
                out.extend_from_slice(br#","private":true"#);
            }
            if *update {
                out.extend_from_slice(br#","update":true"#);
            }
            out.push(b'}');
        }
        Event::Error { code, .. } => encode_error(refusal_message(*code), out),
        Event::Refused { message, .. } => encode_error(message, out),
        Event::Reload => out.extend_from_slice(br#"{"type":"reload"}"#),
        Event::Disconnected => encode_error("disconnected by the server", out),
        _ => return false,
    }
    true
}

/// Ends a presence event with its `time` field.
fn end_with_time(out: &mut Vec<u8>, time: u64) {
    out.extend_from_slice(br#","time":"#);
    write_u64(out, time);
    out.push(b'}');
}

/// Encodes `{"type":"error","message":...}`.
pub fn encode_error(message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"type":"error","message":"#);
    write_str(out, message);
    out.push(b'}');
}

/// The Talker dialect: chat rooms.
pub struct Talker;

/// How a Talker connection ends after `{"type":"close"}`.
const BYE: CloseReason = CloseReason::new(1000, "closed");

/// What a connection that did not `connect` within `identify_timeout` is told before it
/// is closed.
const IDENTIFY_TIMEOUT: &[u8] =
    br#"{"type":"error","message":"connect to a room within the identify timeout"}"#;

/// How a Talker connection that stopped pinging ends.
const PING_TIMEOUT: CloseReason = CloseReason::new(1001, "ping timeout");

impl Dialect for Talker {
    type Session = ();
    const NAME: &'static str = "talker";

    fn open(_: Option<&str>, _: &Settings, _: &mut Vec<Action>) {}

    fn on_message(_: &mut (), msg: Inbound<'_>, cx: &Context<'_>, out: &mut Vec<Action>) {
        let decoded = match msg {
            Inbound::Text(text) => decode(text, cx.in_room(), cx.auth, cx.settings.connect_hook),
            Inbound::Binary(_) if cx.in_room() => {
                Err(Refusal::Error("send JSON in text frames".to_owned()))
            }
            Inbound::Binary(_) => Err(Refusal::Fatal("send JSON in text frames")),
        };
        match decoded {
            Ok(Request::Engine(cmd @ Command::Room(RoomCommand::Connect { .. }))) => {
                out.push(Action::Engine(cmd));
                out.push(Action::Identified);
            }
            Ok(Request::Engine(cmd)) => out.push(Action::Engine(cmd)),
            Ok(Request::Ping) => {}
            Ok(Request::Connect { credentials, room }) => out.push(Action::Connect {
                credentials,
                resume: room,
            }),
            Ok(Request::Close) => {
                out.push(Action::Engine(Command::Room(RoomCommand::Close)));
                out.push(Action::Close(BYE));
            }
            Err(Refusal::Error(message)) => out.push(Action::send(error_text(&message))),
            Err(Refusal::Fatal(message)) => fatal(message, out),
        }
    }

    /// The backend named the user of `connect`'s credentials: it enters room `room`
    /// (named by its `name`, else its id); a refusal ends the connection as a bad
    /// token does.
    fn connected(
        room: &str,
        outcome: Result<Connected, Denied>,
        _: &Settings,
        out: &mut Vec<Action>,
    ) {
        let entered = outcome.map_err(|_| Refusal::Fatal(AUTH_FAILED)).and_then(
            |Connected { user, mut profile }| {
                profile.insert("id".into(), Value::from(&*user));
                if !profile.get("name").is_some_and(Value::is_string) {
                    profile.insert("name".into(), Value::from(&*user));
                }
                enter(room, profile)
            },
        );
        match entered {
            Ok(cmd) => {
                out.push(Action::Engine(cmd));
                out.push(Action::Identified);
            }
            Err(Refusal::Fatal(message)) => fatal(message, out),
            Err(Refusal::Error(message)) => out.push(Action::send(error_text(&message))),
        }
    }

    fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
        encode(event, out)
    }

    /// Talker clients ping with `{"type":"ping"}`; WebSocket pings would let a browser
    /// answer for a page that has stopped talking.
    fn keepalive(settings: &Settings) -> Keepalive {
        Keepalive {
            ping_after: None,
            close_after: Some((settings.talker_ping_timeout, PING_TIMEOUT)),
            beat: None,
        }
    }

    /// An accepted `connect` identifies.
    fn identify(settings: &Settings) -> Option<Identify> {
        Some(Identify {
            within: settings.identify_timeout,
            error: Some(IDENTIFY_TIMEOUT),
            close: CloseReason::IDENTIFY_TIMEOUT,
        })
    }

    fn on_fault(_: &mut (), Fault::Internal: Fault, out: &mut Vec<Action>) {
        out.push(Action::send(error_text("internal error")));
        out.push(Action::Close(CloseReason::SERVER_FATAL));
    }
}

/// Tells the client `message` and closes (1008).
fn fatal(message: &'static str, out: &mut Vec<Action>) {
    out.push(Action::send(error_text(message)));
    out.push(Action::Close(CloseReason {
        code: 1008,
        reason: message,
    }));
}

/// An error event as a text of its own.
fn error_text(message: &str) -> Vec<u8> {
    let mut text = Vec::with_capacity(32 + message.len());
    encode_error(message, &mut text);
    text
}

/// The words of an engine refusal, as Talker says them.
fn refusal_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotInRoom => "connect to a room first",
        other => errors::message(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Secret, now_secs};

    fn dec(text: &str, connected: bool, auth: Option<&Auth>) -> Result<Request, Refusal> {
        decode(&mut text.as_bytes().to_vec(), connected, auth, false)
    }

    fn member(cmd: Request) -> RoomMember {
        match cmd {
            Request::Engine(Command::Room(RoomCommand::Connect { member, .. })) => member,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn connect_takes_the_identity_from_the_token() {
        let auth = Auth::new(&Secret::new("k".repeat(32)).unwrap());
        let mut claims = Map::new();
        claims.insert("avatar".into(), Value::from("a.png"));
        let token = auth.issue("7", Some("Ada"), now_secs() + 60, claims);
        let text = format!(r#"{{"type":"connect","room":"r","token":"{token}"}}"#);
        let m = member(dec(&text, false, Some(&auth)).unwrap());
        assert_eq!(&*m.id, "7");
        assert_eq!(&*m.brief, r#"{"id":"7","name":"Ada"}"#);
        assert_eq!(&*m.profile, r#"{"id":"7","name":"Ada","avatar":"a.png"}"#);

        let nameless = auth.issue("7", None, now_secs() + 60, Map::new());
        let text = format!(r#"{{"type":"connect","room":"r","token":"{nameless}"}}"#);
        assert_eq!(
            dec(&text, false, Some(&auth)),
            Err(Refusal::Fatal(NAMELESS_TOKEN))
        );
        let text = r#"{"type":"connect","room":"r","token":"nope"}"#;
        assert_eq!(
            dec(text, false, Some(&auth)),
            Err(Refusal::Fatal(AUTH_FAILED))
        );
    }

    #[test]
    fn without_a_secret_the_user_object_is_trusted() {
        let text = r#"{"type":"connect","room":"r","user":{"id":"9","name":"Bo","x":1}}"#;
        let m = member(dec(text, false, None).unwrap());
        assert_eq!(&*m.profile, r#"{"id":"9","name":"Bo","x":1}"#);
        let text = r#"{"type":"connect","room":"r","user":{"id":"9"}}"#;
        assert_eq!(dec(text, false, None), Err(Refusal::Fatal(AUTH_FAILED)));
    }

    #[test]
    fn errors_are_fatal_only_before_connected() {
        assert!(matches!(dec("{", false, None), Err(Refusal::Fatal(_))));
        assert!(matches!(dec("{", true, None), Err(Refusal::Error(_))));
        assert!(matches!(
            dec(r#"{"type":"ping"}"#, false, None),
            Err(Refusal::Fatal(_))
        ));
        assert_eq!(dec(r#"{"type":"ping"}"#, true, None), Ok(Request::Ping));
        assert!(matches!(
            dec(r#"{"type":"dance"}"#, true, None),
            Err(Refusal::Error(_))
        ));
        assert!(matches!(
            dec(r#"{"type":"message"}"#, true, None),
            Err(Refusal::Error(_))
        ));
        assert_eq!(
            dec(r#"{"type":"message","content":"hi","id":3}"#, true, None),
            Ok(Request::Engine(Command::Room(RoomCommand::Say {
                content: "hi".into(),
                to: None,
                update: Some(3)
            })))
        );
    }

    #[test]
    fn events_encode_as_the_seed_shows() {
        let mut out = Vec::new();
        assert!(encode(
            &Event::RoomMessage {
                id: 4,
                content: "hé \"x\"".into(),
                brief: r#"{"id":"1","name":"A"}"#.into(),
                time: 1255447115,
                private: true,
                update: false,
            },
            &mut out
        ));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"message","id":4,"content":"hé \"x\"","user":{"id":"1","name":"A"},"time":1255447115,"private":true})
        );
        assert!(!encode(
            &Event::Identified { user: "u".into() },
            &mut Vec::new()
        ));
    }
}
