//! The World dialect (`../shared/protocols/world.md`): JSON arrays
//! `[action, id, payload]` over `/ws/world/<worldid>`, generic RPC answered
//! `["success", id, result]` or `["error", id, {"code"}]`, broadcasts `[action, payload]`
//! to the other clients, `["ping", ts]` / `["pong", ts]`.
//!
//! Actions (README "World" lists them with examples): `authenticate` (first, without
//! id), `ping`, `channel.join`, `channel.leave`, `channel.send`, `channel.members`,
//! `ot.open`, `ot` (collaborative text documents). Channel and document names are
//! scoped to the world: the engine sees `world:<worldid>:<name>`.

use serde_json::{Map, Value};
use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::close::CloseReason;
use super::contract::{
    Action, Connected, Denied, Dialect, Fault, Identify, Inbound, Keepalive, Settings,
};
use super::json::{write_key, write_str, write_str_array, write_u64};
use super::{delta, errors};
use crate::auth::Auth;
use crate::engine::id::{self as ids, MAX_ID_LEN};
use crate::engine::lobby::{GAME_PREFIX, LOBBY};
use crate::engine::{
    self, ChannelCommand, Command, DOCUMENT_PREFIX, DocumentCommand, ErrorCode, Event, PublishMode,
    Receipt, UserCommand, document_channel,
};

/// What the server sends a client of a world it does not serve, before closing.
const UNKNOWN_WORLD: &[u8] = br#"["error",{"code":"world.unknown_world"}]"#;
/// How a connection to a world this server does not serve is closed.
const CLOSE_UNKNOWN_WORLD: CloseReason = CloseReason::new(4404, "unknown world");
/// What a connection that did not `authenticate` within `identify_timeout` is told
/// before it is closed.
const IDENTIFY_TIMEOUT: &[u8] = br#"["error",{"code":"auth.identify_timeout","message":"authenticate within the identify timeout"}]"#;
/// What a connection gets when an internal error ends it.
const SERVER_FATAL: &[u8] = br#"["error",{"code":"server.fatal"}]"#;

/// The document an `ot` action names when it names none.
const DEFAULT_DOCUMENT: &str = "default";

/// What a session needs from the server.
pub struct Context<'a> {
    /// Verifies tokens; `None` trusts the client's `user` object (development mode).
    pub auth: Option<&'a Auth>,
    /// World connections one user may hold.
    pub max_connections_per_user: Option<usize>,
    /// Tests may reach `test.fail`, a handler that panics.
    pub fault_injection: bool,
    /// Actions turntable does not define go to the application's backend.
    pub backend_calls: bool,
    /// `authenticate` may bring `credentials` for the backend's connect hook.
    pub backend_connect: bool,
    /// The engine knows who the connection is: its `authenticate` (or the connect
    /// hook's answer) was carried out. The one record of it; the session keeps none.
    pub identified: bool,
}

/// One World connection's protocol state.
#[derive(Debug)]
pub struct Session {
    world: Box<str>,
}

/// A refused request: the error code and, where it helps, a message.
struct Refusal {
    code: &'static str,
    message: Option<String>,
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        code: "protocol.invalid_payload",
        message: Some(message.into()),
    }
}

impl Session {
    pub fn new(world: Box<str>) -> Session {
        Session { world }
    }

    /// Handles one text message; every resulting action goes to `act`, in order.
    pub fn on_text(&mut self, text: &mut [u8], cx: &Context<'_>, act: &mut impl FnMut(Action)) {
        let Ok(BorrowedValue::Array(frame)) = super::json::parse_keeping_repeats(text) else {
            return act(Action::send(error(
                None,
                "protocol.invalid_message",
                Some("send a JSON array [action, id, payload]"),
            )));
        };
        let (Some(action), 2..=3) = (frame.first().and_then(|a| a.as_str()), frame.len()) else {
            return act(Action::send(error(
                None,
                "protocol.invalid_message",
                Some("send a JSON array [action, id, payload]"),
            )));
        };
        let payload = frame.last().expect("two or three items");
        let id = (frame.len() == 3).then(|| frame[1].encode().into_boxed_str());
        if let Some(key) = super::json::repeated_key(payload) {
            let message = format!("the key {key:?} appears twice in one object");
            return act(Action::send(error(
                id.as_deref(),
                "protocol.duplicate_key",
                Some(&message),
            )));
        }
        if let Err(refusal) = self.on_action(action, id.clone(), payload, cx, act) {
            act(Action::send(error(
                id.as_deref(),
                refusal.code,
                refusal.message.as_deref(),
            )));
        }
    }

    fn on_action(
        &mut self,
        action: &str,
        id: Receipt,
        payload: &BorrowedValue,
        cx: &Context<'_>,
        act: &mut impl FnMut(Action),
    ) -> Result<(), Refusal> {
        match action {
            "ping" => {
                let mut out = br#"["pong","#.to_vec();
                out.extend_from_slice(payload.encode().as_bytes());
                out.push(b']');
                act(Action::send(out));
                return Ok(());
            }
            "authenticate" => return self.authenticate(payload, cx, act),
            _ if !cx.identified => {
                return Err(Refusal {
                    code: "auth.required",
                    message: Some("authenticate first".into()),
                });
            }
            _ => {}
        }
        let known = matches!(
            action,
            "channel.join"
                | "channel.leave"
                | "channel.send"
                | "channel.members"
                | "ot.open"
                | "ot"
                | "ot.close"
                | "test.fail"
        );
        if !known && cx.backend_calls && id.is_some() {
            // An action turntable does not define is the backend's; its answer comes
            // back as this request's success.
            act(Action::Rpc {
                method: Box::from(action),
                data: payload.encode().into_boxed_str(),
                receipt: id,
            });
            return Ok(());
        }
        if !known {
            return Err(Refusal {
                code: "protocol.unknown_action",
                message: Some(format!("no action {action:?}")),
            });
        }
        let Some(receipt) = id else {
            return Err(invalid(
                "this action needs a correlation id: [action, id, payload]",
            ));
        };
        let channel = || self.channel(payload);
        let cmd = match action {
            "channel.join" => Command::Channel(ChannelCommand::Join {
                channel: channel()?,
                invite: Vec::new(),
                receipt: Some(receipt),
            }),
            "channel.leave" => Command::Channel(ChannelCommand::Leave {
                channel: channel()?,
                receipt: Some(receipt),
            }),
            "channel.send" => Command::Channel(ChannelCommand::Publish {
                channel: channel()?,
                data: payload
                    .get("data")
                    .map_or_else(|| Box::from("null"), |d| d.encode().into_boxed_str()),
                mode: PublishMode {
                    echo: false,
                    receipt: Some(receipt),
                },
            }),
            "channel.members" => Command::Channel(ChannelCommand::Members {
                channel: channel()?,
                receipt: Some(receipt),
            }),
            "ot.open" => Command::Document(DocumentCommand::Open {
                document: self.document(payload)?,
                receipt: Some(receipt),
            }),
            "ot" => Command::Document(DocumentCommand::Edit {
                document: self.document(payload)?,
                base: payload.get_u64("variant").ok_or_else(|| {
                    invalid("variant must be the revision the ops were made against")
                })?,
                delta: payload
                    .get("ops")
                    .and_then(delta::parse)
                    .ok_or_else(|| invalid(delta::SHAPE))?,
                receipt: Some(receipt),
            }),
            "ot.close" => Command::Channel(ChannelCommand::Unsubscribe {
                channel: self.document(payload)?,
                receipt: Some(receipt),
            }),
            _ => {
                assert!(!cx.fault_injection, "test.fail: a deliberate failure");
                return Err(Refusal {
                    code: "protocol.unknown_action",
                    message: Some(format!("no action {action:?}")),
                });
            }
        };
        act(Action::Engine(cmd));
        Ok(())
    }

    /// The engine's name of the channel a payload names. Names starting `ot:` are the
    /// channels of documents, not for `channel.*` actions; the lobby and its games
    /// (`lobby`, `game:<id>`) are the node's, shared with every world and dialect.
    fn channel(&self, payload: &BorrowedValue) -> Result<Box<str>, Refusal> {
        match payload.get_str("channel") {
            Some(name) if name.starts_with(DOCUMENT_PREFIX) => Err(invalid(format!(
                "channel names starting {DOCUMENT_PREFIX:?} are reserved for documents"
            ))),
            Some(name) if name == LOBBY || name.starts_with(GAME_PREFIX) => Ok(Box::from(name)),
            Some(name) if ids::is_valid(name) => {
                Ok(format!("world:{}:{name}", self.world).into_boxed_str())
            }
            _ => Err(invalid(format!(
                "channel must be a string of 1 to {MAX_ID_LEN} bytes"
            ))),
        }
    }

    /// The engine's name of the document a payload names: `world:<id>:ot:<name>`. A
    /// payload without `document` names the world's [`DEFAULT_DOCUMENT`], so the
    /// seed's `["ot", 4953, {"variant": 103, "ops": [...]}]` works as written.
    fn document(&self, payload: &BorrowedValue) -> Result<Box<str>, Refusal> {
        let name = payload
            .get("document")
            .map_or(Some(DEFAULT_DOCUMENT), |name| name.as_str());
        match name {
            Some(name) if ids::is_valid(name) => Ok(document_channel(&self.world, name)),
            _ => Err(invalid(format!(
                "document must be a string of 1 to {MAX_ID_LEN} bytes"
            ))),
        }
    }

    fn authenticate(
        &mut self,
        payload: &BorrowedValue,
        cx: &Context<'_>,
        act: &mut impl FnMut(Action),
    ) -> Result<(), Refusal> {
        if cx.identified {
            return Err(Refusal {
                code: "auth.already_authenticated",
                message: None,
            });
        }
        if cx.backend_connect && payload.get("credentials").is_some() {
            return match payload.get_str("credentials") {
                Some(credentials) if !credentials.is_empty() => {
                    act(Action::Connect {
                        credentials: Box::from(credentials),
                        resume: self.world.clone(),
                    });
                    Ok(())
                }
                _ => Err(invalid("credentials must be a non-empty string")),
            };
        }
        let denied = Refusal {
            code: "auth.denied",
            message: None,
        };
        let user = match cx.auth {
            Some(auth) => {
                let identity = auth
                    .verify(payload.get_str("token").unwrap_or(""))
                    .map_err(|_| denied)?;
                let mut user = Map::new();
                user.insert("id".into(), Value::from(&*identity.user));
                if let Some(name) = identity.name {
                    user.insert("name".into(), Value::from(&*name));
                }
                // The token's `sub` is the id, whatever other claims say.
                user.extend(identity.profile.into_iter().filter(|(k, _)| k != "id"));
                user
            }
            None => trusted_user(payload).ok_or(denied)?,
        };
        let id: Box<str> = Box::from(user["id"].as_str().expect("checked above"));
        authenticated(&self.world, id, user, cx.max_connections_per_user, act);
        Ok(())
    }
}

/// Without a server secret the client's `user` object (with a string `id`) is trusted.
/// Tells the client who it is in `world` and the engine who the connection is.
fn authenticated(
    world: &str,
    id: Box<str>,
    user: Map<String, Value>,
    max_connections_per_user: Option<usize>,
    act: &mut impl FnMut(Action),
) {
    let profile = Value::Object(user).to_string();
    let mut out = br#"["authenticated",{"user":"#.to_vec();
    out.extend_from_slice(profile.as_bytes());
    out.extend_from_slice(br#","world":{"id":"#);
    write_str(&mut out, world);
    out.extend_from_slice(b"}}]");
    act(Action::send(out));
    act(Action::Engine(Command::Identify { user: id }));
    act(Action::Identified);
    act(Action::Engine(Command::Profile(profile.into_boxed_str())));
    if let Some(max) = max_connections_per_user {
        let since = crate::clock::now_ms();
        act(Action::Engine(Command::User(UserCommand::Claim {
            max,
            since,
        })));
    }
}

fn trusted_user(payload: &BorrowedValue) -> Option<Map<String, Value>> {
    let user: Value = serde_json::from_str(&payload.get("user")?.encode()).ok()?;
    let id = user.get("id")?.as_str()?;
    if !ids::is_valid(id) {
        return None;
    }
    user.as_object().cloned()
}

/// `["error", id, {"code", "message"}]`, or `["error", {"code"}]` without an id.
fn error(id: Option<&str>, code: &str, message: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_error(&mut out, id, code, message);
    out
}

fn write_error(out: &mut Vec<u8>, id: Option<&str>, code: &str, message: Option<&str>) {
    out.extend_from_slice(br#"["error","#);
    if let Some(id) = id {
        out.extend_from_slice(id.as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(br#"{"code":"#);
    write_str(out, code);
    if let Some(message) = message {
        out.extend_from_slice(br#","message":"#);
        write_str(out, message);
    }
    out.extend_from_slice(b"}]");
}

/// A world-scoped engine name without its `world:<id>:` prefix.
fn local_name(scoped: &str) -> &str {
    scoped
        .strip_prefix("world:")
        .and_then(|rest| rest.split_once(':'))
        .map_or(scoped, |(_, name)| name)
}

/// A document's name from its channel (`world:<id>:ot:<name>`).
fn document_name(scoped: &str) -> &str {
    engine::document_name(scoped).unwrap_or_else(|| local_name(scoped))
}

/// Starts `["success",id,{"document":name,"variant":revision` (closed by the caller).
fn success_for_document(out: &mut Vec<u8>, id: &str, document: &str, revision: u64) {
    out.extend_from_slice(br#"["success","#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#",{"document":"#);
    write_str(out, document_name(document));
    out.extend_from_slice(br#","variant":"#);
    write_u64(out, revision);
}

/// Starts `["success",id,{"channel":name` (the caller closes it with `}]`).
fn success_for_channel(out: &mut Vec<u8>, id: &str, channel: &str) {
    out.extend_from_slice(br#"["success","#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#",{"channel":"#);
    write_str(out, local_name(channel));
}

/// Starts `[action,{"channel":name` for a broadcast.
fn broadcast_for_channel(out: &mut Vec<u8>, action: &str, channel: &str) {
    out.push(b'[');
    write_str(out, action);
    out.extend_from_slice(br#",{"channel":"#);
    write_str(out, local_name(channel));
}

/// The World code and message for an engine refusal.
fn refusal(code: ErrorCode) -> (&'static str, &'static str) {
    match code {
        ErrorCode::NotIdentified => ("auth.required", "authenticate first"),
        ErrorCode::NotMember => ("channel.not_member", errors::message(code)),
        ErrorCode::TooManyChannels => ("channel.too_many", errors::message(code)),
        // World's only unsubscribe is `ot.close`.
        ErrorCode::NotSubscribed => refusal(ErrorCode::DocumentNotOpen),
        other => (errors::code(other), errors::message(other)),
    }
}

/// Encodes an engine event for World clients; false if they get nothing.
pub fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
    match event {
        Event::Joined {
            channel,
            members,
            receipt: Some(id),
        }
        | Event::Members {
            channel,
            members,
            receipt: Some(id),
        } => {
            success_for_channel(out, id, channel);
            out.push(b',');
            write_key(out, "members");
            write_str_array(out, members.iter().map(|m| &**m));
        }
        Event::Left {
            channel,
            receipt: Some(id),
        }
        | Event::Published {
            channel,
            receipt: id,
        } => success_for_channel(out, id, channel),
        Event::MemberJoined { channel, user } | Event::MemberLeft { channel, user } => {
            let action = match event {
                Event::MemberJoined { .. } => "channel.member_joined",
                _ => "channel.member_left",
            };
            broadcast_for_channel(out, action, channel);
            out.extend_from_slice(br#","user":"#);
            write_str(out, user);
        }
        Event::Message {
            channel,
            seq,
            from,
            data,
            ..
        } => {
            broadcast_for_channel(out, "channel.event", channel);
            out.extend_from_slice(br#","seq":"#);
            write_u64(out, *seq);
            out.extend_from_slice(br#","user":"#);
            write_str(out, from);
            out.extend_from_slice(br#","data":"#);
            out.extend_from_slice(data.as_bytes());
        }
        Event::Error { code, receipt } => {
            let (code, message) = refusal(*code);
            write_error(out, receipt.as_deref(), code, Some(message));
            return true;
        }
        Event::Refused {
            code,
            message,
            receipt,
        } => {
            write_error(out, receipt.as_deref(), code, Some(message));
            return true;
        }
        Event::Answered { data, receipt } => {
            out.extend_from_slice(br#"["success","#);
            out.extend_from_slice(receipt.as_deref().unwrap_or("null").as_bytes());
            out.push(b',');
            out.extend_from_slice(data.as_bytes());
            out.push(b']');
            return true;
        }
        Event::Replaced => {
            write_error(out, None, "connection.replaced", None);
            return true;
        }
        Event::Disconnected => {
            write_error(out, None, "connection.disconnected", None);
            return true;
        }
        Event::Reload => {
            out.extend_from_slice(br#"["connection.reload",{}]"#);
            return true;
        }
        Event::Kicked { channel, message } => {
            broadcast_for_channel(out, "channel.kicked", channel);
            out.extend_from_slice(br#","message":"#);
            write_str(out, message);
        }
        Event::DocumentOpened {
            document,
            text,
            revision,
            receipt: Some(id),
        } => {
            success_for_document(out, id, document, *revision);
            out.extend_from_slice(br#","text":"#);
            write_str(out, text);
        }
        Event::EditAccepted {
            document,
            revision,
            receipt: Some(id),
        } => success_for_document(out, id, document, *revision),
        Event::Unsubscribed {
            channel,
            receipt: Some(id),
        } => {
            out.extend_from_slice(br#"["success","#);
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(br#",{"document":"#);
            write_str(out, document_name(channel));
        }
        Event::DocumentEdited {
            document,
            revision,
            user,
            delta,
            ..
        } => {
            out.extend_from_slice(br#"["ot",{"document":"#);
            write_str(out, document_name(document));
            out.extend_from_slice(br#","variant":"#);
            write_u64(out, *revision);
            out.extend_from_slice(br#","user":"#);
            write_str(out, user);
            out.extend_from_slice(br#","ops":"#);
            delta::write(out, delta);
        }
        _ => return false,
    }
    out.extend_from_slice(b"}]");
    true
}

/// The World dialect: array-framed RPC with channels and collaborative documents.
pub struct World;

impl Dialect for World {
    /// `None`: a world this server does not serve (the connection is being closed).
    type Session = Option<Session>;
    const NAME: &'static str = "world";

    fn open(world: Option<&str>, settings: &Settings, out: &mut Vec<Action>) -> Option<Session> {
        let served = world.and_then(|id| settings.worlds.iter().find(|w| ***w == *id));
        if served.is_none() {
            out.push(Action::send(UNKNOWN_WORLD));
            out.push(Action::Close(CLOSE_UNKNOWN_WORLD));
        }
        served.map(|world| Session::new(world.clone()))
    }

    fn on_message(
        session: &mut Option<Session>,
        msg: Inbound<'_>,
        cx: &super::contract::Context<'_>,
        out: &mut Vec<Action>,
    ) {
        let Some(session) = session else {
            return;
        };
        match msg {
            Inbound::Text(text) => {
                let cx = Context {
                    auth: cx.auth,
                    max_connections_per_user: cx.settings.world_max_connections_per_user,
                    fault_injection: cx.settings.fault_injection,
                    backend_calls: cx.settings.rpc_hook.is_some(),
                    backend_connect: cx.settings.connect_hook,
                    identified: cx.user().is_some(),
                };
                session.on_text(text, &cx, &mut |action| out.push(action));
            }
            Inbound::Binary(_) => out.push(Action::send(error(
                None,
                "protocol.invalid_message",
                Some("send JSON in text frames"),
            ))),
        }
    }

    fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
        encode(event, out)
    }

    fn keepalive(settings: &Settings) -> Keepalive {
        Keepalive::websocket(settings)
    }

    /// An accepted `authenticate` identifies.
    fn identify(settings: &Settings) -> Option<Identify> {
        Some(Identify {
            within: settings.identify_timeout,
            error: Some(IDENTIFY_TIMEOUT),
            close: CloseReason::IDENTIFY_TIMEOUT,
        })
    }

    /// The backend named the user of `authenticate`'s credentials in world `resume`,
    /// or refused them (`auth.denied`-style, in the backend's words).
    fn connected(
        world: &str,
        outcome: Result<Connected, Denied>,
        settings: &Settings,
        out: &mut Vec<Action>,
    ) {
        match outcome {
            Ok(Connected { user: id, profile }) => {
                let mut user = Map::new();
                user.insert("id".into(), Value::from(&*id));
                user.extend(profile);
                let max = settings.world_max_connections_per_user;
                authenticated(world, id, user, max, &mut |a| out.push(a));
            }
            Err(denied) => out.push(Action::send(error(
                None,
                &denied.code,
                Some(&denied.message),
            ))),
        }
    }

    fn receipt_of(text: &mut [u8]) -> Receipt {
        let value = super::json::parse(text).ok()?;
        let frame = value.as_array()?;
        (frame.len() == 3).then(|| frame[1].encode().into_boxed_str())
    }

    fn on_fault(_: &mut Option<Session>, Fault::Internal: Fault, out: &mut Vec<Action>) {
        out.push(Action::send(SERVER_FATAL));
        out.push(Action::Close(CloseReason::SERVER_FATAL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Secret, now_secs};
    use crate::protocol::sent;

    fn run(session: &mut Session, text: &str, cx: &Context<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        session.on_text(&mut text.as_bytes().to_vec(), cx, &mut |a| actions.push(a));
        actions
    }

    const TRUSTING: Context<'static> = Context {
        auth: None,
        max_connections_per_user: Some(2),
        fault_injection: false,
        backend_calls: false,
        backend_connect: false,
        identified: false,
    };

    /// A connection the engine knows as `u1` (its `authenticate` was carried out).
    const AUTHENTICATED: Context<'static> = Context {
        identified: true,
        ..TRUSTING
    };

    #[test]
    fn authenticate_with_a_token() {
        let auth = Auth::new(&Secret::new("k".repeat(32)).unwrap());
        let cx = Context {
            auth: Some(&auth),
            max_connections_per_user: None,
            fault_injection: false,
            backend_calls: false,
            backend_connect: false,
            identified: false,
        };
        let token = auth.issue("7", Some("Ada"), now_secs() + 60, Map::new());
        let mut s = Session::new("w1".into());
        let text = format!(r#"["authenticate",{{"token":"{token}"}}]"#);
        let actions = run(&mut s, &text, &cx);
        assert_eq!(
            sent(&actions),
            vec![
                serde_json::json!(["authenticated",{"user":{"id":"7","name":"Ada"},"world":{"id":"w1"}}])
            ]
        );
        assert_eq!(
            actions[1],
            Action::Engine(Command::Identify { user: "7".into() })
        );
        let mut s = Session::new("w1".into());
        let out = sent(&run(&mut s, r#"["authenticate",{"token":"bad"}]"#, &cx));
        assert_eq!(
            out,
            vec![serde_json::json!(["error",{"code":"auth.denied"}])]
        );
    }

    #[test]
    fn nothing_but_ping_before_authenticate() {
        let mut s = Session::new("w1".into());
        let out = sent(&run(&mut s, r#"["ping",1501676765]"#, &TRUSTING));
        assert_eq!(out, vec![serde_json::json!(["pong", 1501676765])]);
        let out = sent(&run(
            &mut s,
            r#"["channel.join",1,{"channel":"a"}]"#,
            &TRUSTING,
        ));
        assert_eq!(out[0][0], "error");
        assert_eq!(out[0][1], 1);
        assert_eq!(out[0][2]["code"], "auth.required");
    }

    #[test]
    fn identity_profile_and_claim_follow_authentication() {
        let mut s = Session::new("w1".into());
        let actions = run(
            &mut s,
            r#"["authenticate",{"user":{"id":"u1","name":"Ann"}}]"#,
            &TRUSTING,
        );
        let before = crate::clock::now_ms();
        assert_eq!(
            actions[1..4],
            [
                Action::Engine(Command::Identify { user: "u1".into() }),
                Action::Identified,
                Action::Engine(Command::Profile(r#"{"id":"u1","name":"Ann"}"#.into())),
            ]
        );
        let Action::Engine(Command::User(UserCommand::Claim { max: 2, since })) = actions[4] else {
            panic!("no claim: {:?}", actions[4]);
        };
        assert!(
            since.abs_diff(before) < 60_000,
            "stamped with the wall clock"
        );
    }

    #[test]
    fn channel_actions_scope_names_to_the_world() {
        let mut s = Session::new("w1".into());
        let actions = run(
            &mut s,
            r#"["channel.send","c9",{"channel":"hall","data":{"t":"hi"}}]"#,
            &AUTHENTICATED,
        );
        assert_eq!(
            actions,
            vec![Action::Engine(Command::Channel(ChannelCommand::Publish {
                channel: "world:w1:hall".into(),
                data: r#"{"t":"hi"}"#.into(),
                mode: PublishMode {
                    echo: false,
                    receipt: Some(r#""c9""#.into())
                }
            }))]
        );
        let lobby = run(
            &mut s,
            r#"["channel.join",1,{"channel":"game:g1"}]"#,
            &AUTHENTICATED,
        );
        assert_eq!(
            lobby,
            vec![Action::Engine(Command::Channel(ChannelCommand::Join {
                channel: "game:g1".into(),
                invite: Vec::new(),
                receipt: Some("1".into())
            }))],
            "the lobby's games are the node's"
        );
    }

    #[test]
    fn bad_input_gets_the_documented_codes() {
        let mut s = Session::new("w1".into());
        let code = |s: &mut Session, text: &str| sent(&run(s, text, &AUTHENTICATED))[0].clone();
        assert_eq!(
            code(&mut s, r#"["dance",4,{}]"#),
            serde_json::json!(["error",4,{"code":"protocol.unknown_action","message":"no action \"dance\""}])
        );
        assert_eq!(
            code(&mut s, r#"["channel.join",5,{"channel":3}]"#)[2]["code"],
            "protocol.invalid_payload"
        );
        assert_eq!(
            code(&mut s, r#"["channel.join",{"channel":"a"}]"#)[1]["code"],
            "protocol.invalid_payload"
        );
        assert_eq!(code(&mut s, "{")[1]["code"], "protocol.invalid_message");
        assert_eq!(
            code(&mut s, r#"{"a":1}"#)[1]["code"],
            "protocol.invalid_message"
        );
        assert_eq!(
            code(&mut s, r#"[1,2,3]"#)[1]["code"],
            "protocol.invalid_message"
        );
        assert_eq!(
            code(&mut s, r#"["authenticate",{"user":{"id":"u2"}}]"#)[1]["code"],
            "auth.already_authenticated"
        );
    }

    #[test]
    fn events_encode_with_local_names() {
        let enc = |e: &Event| {
            let mut out = Vec::new();
            encode(e, &mut out).then(|| serde_json::from_slice::<Value>(&out).unwrap())
        };
        let message = Event::Message {
            channel: "world:w1:lobby".into(),
            seq: 3,
            from: "u1".into(),
            data: r#"{"t":"hi"}"#.into(),
            skip: None,
        };
        assert_eq!(
            enc(&message),
            Some(
                serde_json::json!(["channel.event",{"channel":"lobby","seq":3,"user":"u1","data":{"t":"hi"}}])
            )
        );
        let joined = Event::Joined {
            channel: "world:w1:lobby".into(),
            members: vec!["u1".into()],
            receipt: Some("7".into()),
        };
        assert_eq!(
            enc(&joined),
            Some(serde_json::json!(["success",7,{"channel":"lobby","members":["u1"]}]))
        );
        assert_eq!(
            enc(&Event::Replaced),
            Some(serde_json::json!(["error",{"code":"connection.replaced"}]))
        );
        let refused = Event::Error {
            code: ErrorCode::NotMember,
            receipt: Some("8".into()),
        };
        assert_eq!(enc(&refused).unwrap()[2]["code"], "channel.not_member");
    }
}
