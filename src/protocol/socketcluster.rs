//! SocketCluster protocol v1 (`../shared/protocols/socketcluster-v1.md` and the wire
//! notes beside it), as the real `socketcluster-client` packages speak it: JSON events
//! `{"event","data","cid"}`, responses `{"rid","data"|"error"}`, arrays as batches,
//! keepalive strings `#1` (server) and `#2` (client).
//!
//! A [`Session`] is one connection's protocol state (its socket id, whether it shook
//! hands, whether it is authenticated). It turns client text into [`Action`]s and knows
//! nothing of sockets; engine events are encoded by [`encode`], once per shard.

use serde_json::{Map, Value};
use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::close::CloseReason;
use super::contract::{Action, Dialect, Fault, Identify, Inbound, Keepalive, Settings};
use super::errors;
use super::json::{write_key, write_str, write_u64};
use crate::auth::{Auth, AuthError, now_secs};
use crate::engine::id::{self as ids, MAX_ID_LEN};
use crate::engine::{ChannelCommand, Command, ErrorCode, Event, PublishMode, Receipt};

/// The close of a connection whose first message is not `#handshake`.
const CLOSE_NO_HANDSHAKE: CloseReason = CloseReason::code(4009);
/// The close of a client silent longer than the ping timeout.
const CLOSE_PING_TIMEOUT: CloseReason = CloseReason::code(4001);
/// The server's keepalive message.
const PING: &[u8] = b"#1";
/// The client's answer to [`PING`].
const PONG: &[u8] = b"#2";

/// What a session needs from the server to answer.
pub struct Context<'a> {
    /// Verifies tokens; without it every token is refused.
    pub auth: Option<&'a Auth>,
    /// The ping timeout announced in the handshake, in ms.
    pub ping_timeout_ms: u64,
    /// Custom events go to the application's backend.
    pub backend_calls: bool,
}

/// One SocketCluster connection's protocol state.
#[derive(Debug)]
pub struct Session {
    /// The 20-character socket id the handshake announces.
    id: Box<str>,
    handshaken: bool,
    authenticated: bool,
    /// A renewed token held back until the client's next `#2` (see [`Session::on_text`]).
    renewed: Option<String>,
}

impl Session {
    /// A session whose socket id is `id` (20 characters, see [`ids::random_id`]).
    pub fn new(id: Box<str>) -> Session {
        Session {
            id,
            handshaken: false,
            authenticated: false,
            renewed: None,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Handles one text message; every resulting action goes to `act`, in order.
    pub fn on_text(&mut self, text: &mut [u8], cx: &Context<'_>, act: &mut impl FnMut(Action)) {
        let pong = text == PONG;
        let json = matches!(
            text.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
        let value = if json {
            super::json::parse_keeping_repeats(text).ok()
        } else {
            None
        };
        if let Some(key) = value.as_ref().and_then(super::json::repeated_key) {
            // What the server checks (a channel name) could differ from what a
            // client reads: refused, answering the request when it has a cid.
            let message = format!("the key {key:?} appears twice in one object");
            if let Some(cid) = value
                .as_ref()
                .and_then(|v| v.get("cid"))
                .and_then(receipt_of)
            {
                act(Action::send(error_response(
                    &cid,
                    "InvalidMessageError",
                    &message,
                )));
            }
            return;
        }
        match value {
            Some(BorrowedValue::Array(batch)) => {
                for item in batch.iter() {
                    if !self.on_value(item, cx, act) {
                        return;
                    }
                }
            }
            Some(value) => {
                self.on_value(&value, cx, act);
            }
            None if !self.handshaken => act(Action::Close(CLOSE_NO_HANDSHAKE)),
            // A pong delivers a renewed token. Sent right after the handshake or
            // #authenticate response, #setAuthToken reaches socketcluster-client 20.x in
            // the same read and is applied before the response's awaited continuation,
            // which then puts the old token back. A `#2` answers a `#1`, which (but for
            // a ping already on its way) left after the response: by the time the token
            // arrives the client has finished with the response.
            None if pong => {
                if let Some(token) = self.renewed.take() {
                    act(Action::send(set_auth_token(&token)));
                }
            }
            // Other raw messages (anything not JSON) are ignored once handshaken.
            None => {}
        }
    }

    /// Handles one event or response; false once the connection is closing.
    fn on_value(
        &mut self,
        value: &BorrowedValue,
        cx: &Context<'_>,
        act: &mut impl FnMut(Action),
    ) -> bool {
        let event = value.get_str("event");
        if !self.handshaken && event != Some("#handshake") {
            act(Action::Close(CLOSE_NO_HANDSHAKE));
            return false;
        }
        let Some(event) = event else {
            // Responses (`rid`) to events we never send with a cid, and anything
            // else without an event name, are ignored as the reference server does.
            return true;
        };
        let cid = value.get("cid").and_then(receipt_of);
        let data = value.get("data");
        match event {
            "#handshake" => self.handshake(data, cid, cx, act),
            "#subscribe" => match data
                .and_then(|d| d.get_str("channel"))
                .filter(valid_channel)
            {
                Some(channel) => act(Action::Engine(Command::Channel(
                    ChannelCommand::Subscribe {
                        channel: Box::from(channel),
                        receipt: cid,
                    },
                ))),
                None => self.broker_error(cid, "Failed to subscribe socket to the channel", act),
            },
            "#unsubscribe" => match data.and_then(|d| d.as_str()).filter(valid_channel) {
                Some(channel) => act(Action::Engine(Command::Channel(
                    ChannelCommand::Unsubscribe {
                        channel: Box::from(channel),
                        receipt: cid,
                    },
                ))),
                None => {
                    self.broker_error(cid, "Failed to unsubscribe socket from the channel", act)
                }
            },
            "#publish" => {
                let channel = data
                    .and_then(|d| d.get_str("channel"))
                    .filter(valid_channel);
                match channel {
                    Some(channel) => {
                        act(Action::Engine(Command::Channel(ChannelCommand::Publish {
                            channel: Box::from(channel),
                            data: payload(data.and_then(|d| d.get("data"))),
                            mode: PublishMode {
                                echo: true,
                                receipt: cid,
                            },
                        })))
                    }
                    None => self.broker_error(cid, "Failed to publish to the channel", act),
                }
            }
            "#authenticate" => {
                let token = data.and_then(|d| d.as_str()).unwrap_or("");
                self.authenticate(token, cid, cx, act);
            }
            "#removeAuthToken" => {
                self.set_authenticated(false, act);
                self.renewed = None;
                if let Some(cid) = cid {
                    act(Action::send(response(&cid, None)));
                }
            }
            "#disconnect" => {
                let code = data
                    .and_then(|d| d.get_u64("code"))
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|c| sendable_close_code(*c))
                    .unwrap_or(1000);
                act(Action::Close(CloseReason::code(code)));
                return false;
            }
            // A custom event goes to the backend when there is one (its answer is the
            // response); without a cid nobody waits, and it is dropped as before.
            other if cx.backend_calls && !other.starts_with('#') => {
                if cid.is_some() {
                    act(Action::Rpc {
                        method: Box::from(other),
                        data: payload(data),
                        receipt: cid,
                    });
                }
            }
            other => {
                if let Some(cid) = cid {
                    let message = format!(
                        "no handler for event {other:?}: turntable runs no application code"
                    );
                    act(Action::send(error_response(
                        &cid,
                        "NoHandlerError",
                        &message,
                    )));
                }
            }
        }
        true
    }

    fn handshake(
        &mut self,
        data: Option<&BorrowedValue>,
        cid: Receipt,
        cx: &Context<'_>,
        act: &mut impl FnMut(Action),
    ) {
        self.handshaken = true;
        act(Action::Identified);
        let token = data.and_then(|d| d.get_str("authToken"));
        let checked = token.map(|token| verify(cx.auth, token));
        self.set_authenticated(matches!(checked, Some(Ok(_))), act);
        if let Some(Err(_)) = checked {
            act(Action::send(REMOVE_AUTH_TOKEN));
        }
        let Some(cid) = cid else { return };
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(br##"{"rid":"##);
        out.extend_from_slice(cid.as_bytes());
        out.extend_from_slice(br##","data":{"id":"##);
        write_str(&mut out, &self.id);
        out.extend_from_slice(br##","pingTimeout":"##);
        write_u64(&mut out, cx.ping_timeout_ms);
        if let Some(Err(e)) = checked {
            out.extend_from_slice(br##","authError":"##);
            write_auth_error(&mut out, e);
        }
        out.extend_from_slice(br##","isAuthenticated":"##);
        out.extend_from_slice(if self.authenticated {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(b"}}");
        act(Action::send(out));
        if let Some(Ok(claims)) = checked {
            self.renewed = renew(cx.auth, claims);
        }
    }

    fn authenticate(
        &mut self,
        token: &str,
        cid: Receipt,
        cx: &Context<'_>,
        act: &mut impl FnMut(Action),
    ) {
        match verify(cx.auth, token) {
            Ok(claims) => {
                self.set_authenticated(true, act);
                if let Some(cid) = cid {
                    let data = br##"{"isAuthenticated":true,"authError":null}"##;
                    act(Action::send(response(&cid, Some(data))));
                }
                self.renewed = renew(cx.auth, claims);
            }
            Err(e) => {
                self.set_authenticated(false, act);
                self.renewed = None;
                act(Action::send(REMOVE_AUTH_TOKEN));
                let Some(cid) = cid else { return };
                let mut out = Vec::with_capacity(256);
                out.extend_from_slice(br##"{"rid":"##);
                out.extend_from_slice(cid.as_bytes());
                out.extend_from_slice(br##","error":"##);
                write_auth_error(&mut out, e);
                out.extend_from_slice(br##","data":{"isAuthenticated":false,"authError":"##);
                write_auth_error(&mut out, e);
                out.extend_from_slice(b"}}");
                act(Action::send(out));
            }
        }
    }

    /// Records whether the socket holds a valid token, telling the engine when that
    /// changes (namespaces open to authenticated connections take it while it does).
    fn set_authenticated(&mut self, authenticated: bool, act: &mut impl FnMut(Action)) {
        if self.authenticated != authenticated {
            self.authenticated = authenticated;
            act(Action::Engine(Command::Credentialed(authenticated)));
        }
    }

    /// The reference server's answer to an invalid channel name.
    fn broker_error(&self, cid: Receipt, what: &str, act: &mut impl FnMut(Action)) {
        if let Some(cid) = cid {
            let message = format!(
                "{what} - Socket {} provided an invalid channel name (a string of 1 to {MAX_ID_LEN} bytes)",
                self.id
            );
            act(Action::send(error_response(&cid, "BrokerError", &message)));
        }
    }
}

/// Sent before the answer when a token is refused: the client drops its stored token.
const REMOVE_AUTH_TOKEN: &[u8] = br##"{"event":"#removeAuthToken","data":null}"##;

/// A cid as raw JSON, if it is one a client can match (a number or a string).
fn receipt_of(cid: &BorrowedValue) -> Receipt {
    (cid.is_number() || cid.is_str()).then(|| cid.encode().into_boxed_str())
}

fn valid_channel(channel: &&str) -> bool {
    ids::is_valid(channel)
}

/// The publication's payload as JSON text (`null` when absent).
fn payload(data: Option<&BorrowedValue>) -> Box<str> {
    data.map_or_else(|| Box::from("null"), |d| d.encode().into_boxed_str())
}

/// Close codes a server may put in a close frame (RFC 6455 section 7.4).
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

fn verify(auth: Option<&Auth>, token: &str) -> Result<Map<String, Value>, AuthError> {
    auth.ok_or(AuthError::Invalid)?.verify_claims(token)
}

/// A fresh token with the same claims and lifetime when less than half of the old
/// one's lifetime (`iat` to `exp`) is left: clients with sliding sessions stay signed
/// in without ever holding a token valid for longer than they were given.
fn renew(auth: Option<&Auth>, mut claims: Map<String, Value>) -> Option<String> {
    let auth = auth?;
    let exp = claims.get("exp")?.as_u64()?;
    let iat = claims.get("iat")?.as_u64()?;
    let (now, lifetime) = (now_secs(), exp.checked_sub(iat)?);
    if exp.saturating_sub(now).saturating_mul(2) >= lifetime {
        return None;
    }
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now.checked_add(lifetime)?));
    Some(auth.sign(&claims))
}

fn set_auth_token(token: &str) -> Vec<u8> {
    let mut out = br##"{"event":"#setAuthToken","data":{"token":"##.to_vec();
    write_str(&mut out, token);
    out.extend_from_slice(b"}}");
    out
}

fn write_auth_error(out: &mut Vec<u8>, e: AuthError) {
    let (name, message) = match e {
        AuthError::Expired => ("AuthTokenExpiredError", "jwt expired"),
        AuthError::Missing | AuthError::Invalid => ("AuthTokenInvalidError", "invalid token"),
    };
    write_error(out, name, message);
}

fn write_error(out: &mut Vec<u8>, name: &str, message: &str) {
    out.extend_from_slice(br##"{"message":"##);
    write_str(out, message);
    out.extend_from_slice(br##","name":"##);
    write_str(out, name);
    out.push(b'}');
}

/// `{"rid":cid}` or `{"rid":cid,"data":data}`.
fn response(cid: &str, data: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    write_rid(&mut out, cid);
    if let Some(data) = data {
        out.push(b',');
        write_key(&mut out, "data");
        out.extend_from_slice(data);
    }
    out.push(b'}');
    out
}

fn error_response(cid: &str, name: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.len());
    write_rid(&mut out, cid);
    out.extend_from_slice(br##","error":"##);
    write_error(&mut out, name, message);
    out.push(b'}');
    out
}

fn write_rid(out: &mut Vec<u8>, cid: &str) {
    out.extend_from_slice(br##"{"rid":"##);
    out.extend_from_slice(cid.as_bytes());
}

/// Encodes an engine event for SocketCluster clients; false if they get nothing.
pub fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
    match event {
        Event::Message { channel, data, .. } => {
            out.extend_from_slice(br##"{"event":"#publish","data":{"channel":"##);
            write_str(out, channel);
            out.extend_from_slice(br##","data":"##);
            out.extend_from_slice(data.as_bytes());
            out.extend_from_slice(b"}}");
        }
        Event::Subscribed {
            receipt: Some(cid), ..
        }
        | Event::Unsubscribed {
            receipt: Some(cid), ..
        }
        | Event::Published { receipt: cid, .. } => {
            write_rid(out, cid);
            out.push(b'}');
        }
        Event::Error {
            code,
            receipt: Some(cid),
        } => {
            let message = match code {
                ErrorCode::NotSubscribed => {
                    "Failed to unsubscribe socket from the channel - the socket tried to unsubscribe from a channel which it is not subscribed to"
                }
                ErrorCode::TooManyChannels => {
                    "Failed to subscribe socket to the channel - too many channels on this socket"
                }
                other => errors::message(*other),
            };
            write_rid(out, cid);
            out.extend_from_slice(br##","error":"##);
            write_error(out, "BrokerError", message);
            out.push(b'}');
        }
        Event::Refused {
            code,
            message,
            receipt: Some(cid),
        } => {
            write_rid(out, cid);
            out.extend_from_slice(br##","error":"##);
            write_error(out, code, message);
            out.push(b'}');
        }
        Event::Answered {
            data,
            receipt: Some(cid),
        } => {
            write_rid(out, cid);
            out.extend_from_slice(br##","data":"##);
            out.extend_from_slice(data.as_bytes());
            out.push(b'}');
        }
        Event::Reload => out.extend_from_slice(br#"{"event":"reload","data":{}}"#),
        Event::Kicked { channel, message } => {
            out.extend_from_slice(br##"{"event":"#kickOut","data":{"message":"##);
            write_str(out, message);
            out.extend_from_slice(br#","channel":"#);
            write_str(out, channel);
            out.extend_from_slice(b"}}");
        }
        _ => return false,
    }
    true
}

/// SocketCluster protocol v1: pub/sub channels.
pub struct SocketCluster;

impl Dialect for SocketCluster {
    type Session = Session;
    const NAME: &'static str = "socketcluster";

    fn open(_: Option<&str>, _: &Settings, _: &mut Vec<Action>) -> Session {
        Session::new(ids::random_id())
    }

    fn on_message(
        session: &mut Session,
        msg: Inbound<'_>,
        cx: &super::contract::Context<'_>,
        out: &mut Vec<Action>,
    ) {
        let (Inbound::Text(text) | Inbound::Binary(text)) = msg;
        let cx = Context {
            auth: cx.auth,
            ping_timeout_ms: cx.settings.socketcluster_ping_timeout.as_millis() as u64,
            backend_calls: cx.settings.rpc_hook.is_some(),
        };
        session.on_text(text, &cx, &mut |action| out.push(action));
    }

    fn encode(event: &Event, out: &mut Vec<u8>) -> bool {
        encode(event, out)
    }

    /// The real clients close a connection on which no `#1` arrived within the
    /// announced ping timeout, whatever else flows; any client message counts as life
    /// (the 14.x reference resets on every inbound one).
    fn keepalive(settings: &Settings) -> Keepalive {
        Keepalive {
            ping_after: None,
            close_after: Some((settings.socketcluster_ping_timeout, CLOSE_PING_TIMEOUT)),
            beat: Some((settings.socketcluster_ping_interval, PING)),
        }
    }

    /// The `#handshake` identifies (anonymous sockets are legitimate: open pub/sub); a
    /// socket without one is closed with SocketCluster's own code for that, 4005.
    fn identify(settings: &Settings) -> Option<Identify> {
        Some(Identify {
            within: settings.identify_timeout,
            error: None,
            close: CloseReason::IDENTIFY_TIMEOUT,
        })
    }

    /// The cid of a single event (a batch's events are refused together, unanswered).
    fn receipt_of(text: &mut [u8]) -> Receipt {
        super::json::parse(text)
            .ok()?
            .get("cid")
            .and_then(receipt_of)
    }

    fn on_fault(_: &mut Session, Fault::Internal: Fault, out: &mut Vec<Action>) {
        out.push(Action::Close(CloseReason::SERVER_FATAL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;
    use crate::protocol::sent;

    fn run(session: &mut Session, text: &str, auth: Option<&Auth>) -> Vec<Action> {
        let cx = Context {
            auth,
            ping_timeout_ms: 4000,
            backend_calls: false,
        };
        let mut actions = Vec::new();
        session.on_text(&mut text.as_bytes().to_vec(), &cx, &mut |a| actions.push(a));
        actions
    }

    fn session() -> Session {
        Session::new(Box::from("AAAAAAAAAAAAAAAAAAAA"))
    }

    fn handshaken() -> Session {
        let mut s = session();
        run(
            &mut s,
            r##"{"event":"#handshake","data":{},"cid":1}"##,
            None,
        );
        s
    }

    fn secret() -> Auth {
        Auth::new(&Secret::new("s".repeat(32)).unwrap())
    }

    #[test]
    fn handshake_answers_with_id_and_ping_timeout() {
        let mut s = session();
        let actions = run(
            &mut s,
            r##"{"event":"#handshake","data":{},"cid":1}"##,
            None,
        );
        let id = "A".repeat(20);
        assert_eq!(
            sent(&actions),
            vec![
                serde_json::json!({"rid":1,"data":{"id":id,"pingTimeout":4000,"isAuthenticated":false}})
            ]
        );
    }

    #[test]
    fn anything_before_the_handshake_closes_with_4009() {
        for first in [
            r##"{"event":"#subscribe","data":{"channel":"a"},"cid":1}"##,
            "#2",
            "not json",
            r##"{"rid":3}"##,
        ] {
            let mut s = session();
            assert_eq!(
                run(&mut s, first, None),
                vec![Action::Close(CloseReason::code(4009))],
                "{first}"
            );
        }
    }

    #[test]
    fn handshake_with_tokens() {
        let auth = secret();
        let mut claims = Map::new();
        claims.insert("username".into(), Value::from("bob"));
        let good = auth.sign(&claims);
        let mut s = session();
        let text = format!(r##"{{"event":"#handshake","data":{{"authToken":"{good}"}},"cid":1}}"##);
        let out = sent(&run(&mut s, &text, Some(&auth)));
        assert_eq!(out[0]["data"]["isAuthenticated"], true);
        assert!(s.is_authenticated());

        let mut s = session();
        let text = r##"{"event":"#handshake","data":{"authToken":"forged"},"cid":1}"##;
        let out = sent(&run(&mut s, text, Some(&auth)));
        assert_eq!(
            out[0],
            serde_json::json!({"event":"#removeAuthToken","data":null})
        );
        assert_eq!(out[1]["data"]["authError"]["name"], "AuthTokenInvalidError");
        assert_eq!(out[1]["data"]["isAuthenticated"], false);
    }

    #[test]
    fn pub_sub_commands_carry_the_cid_as_receipt() {
        let mut s = handshaken();
        let actions = run(
            &mut s,
            r##"[{"event":"#subscribe","data":{"channel":"c"},"cid":4},{"event":"#publish","data":{"channel":"c","data":{"x":[1]}},"cid":"p5"},{"event":"#unsubscribe","data":"c"}]"##,
            None,
        );
        assert_eq!(
            actions,
            vec![
                Action::Engine(Command::Channel(ChannelCommand::Subscribe {
                    channel: "c".into(),
                    receipt: Some("4".into())
                })),
                Action::Engine(Command::Channel(ChannelCommand::Publish {
                    channel: "c".into(),
                    data: r##"{"x":[1]}"##.into(),
                    mode: PublishMode {
                        echo: true,
                        receipt: Some(r##""p5""##.into())
                    }
                })),
                Action::Engine(Command::Channel(ChannelCommand::Unsubscribe {
                    channel: "c".into(),
                    receipt: None
                })),
            ]
        );
    }

    #[test]
    fn bad_input_after_the_handshake() {
        let mut s = handshaken();
        for ignored in [
            "42",
            "#2",
            r##""#1""##,
            "{",
            "[]",
            "null",
            "{}",
            r##"{"event":123,"cid":2}"##,
            r##"{"rid":424242}"##,
        ] {
            assert_eq!(run(&mut s, ignored, None), vec![], "{ignored}");
        }
        let out = sent(&run(
            &mut s,
            r##"{"event":"#subscribe","data":{},"cid":11}"##,
            None,
        ));
        assert_eq!(out[0]["rid"], 11);
        assert_eq!(out[0]["error"]["name"], "BrokerError");
        let out = sent(&run(
            &mut s,
            r##"{"event":"noSuchEvent","data":1,"cid":14}"##,
            None,
        ));
        assert_eq!(out[0]["error"]["name"], "NoHandlerError");
        assert_eq!(
            run(&mut s, r##"{"event":"noSuchEvent","data":1}"##, None),
            vec![]
        );
        assert_eq!(
            run(
                &mut s,
                r##"{"event":"#disconnect","data":{"code":4321,"data":"bye"}}"##,
                None
            ),
            vec![Action::Close(CloseReason::code(4321))]
        );
        assert_eq!(
            run(
                &mut s,
                r##"{"event":"#disconnect","data":{"code":1005}}"##,
                None
            ),
            vec![Action::Close(CloseReason::code(1000))]
        );
    }

    #[test]
    fn authenticate_valid_invalid_expired() {
        let auth = secret();
        let mut s = handshaken();
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("alice"));
        let text = |t: &str, cid: u32| {
            format!(r##"{{"event":"#authenticate","data":"{t}","cid":{cid}}}"##)
        };
        let out = sent(&run(&mut s, &text(&auth.sign(&claims), 20), Some(&auth)));
        assert_eq!(
            out,
            vec![serde_json::json!({"rid":20,"data":{"isAuthenticated":true,"authError":null}})]
        );
        assert!(s.is_authenticated());

        let forged = Auth::new(&Secret::new("x".repeat(32)).unwrap()).sign(&claims);
        let out = sent(&run(&mut s, &text(&forged, 21), Some(&auth)));
        assert_eq!(out[0]["event"], "#removeAuthToken");
        assert_eq!(out[1]["error"]["name"], "AuthTokenInvalidError");
        assert_eq!(out[1]["data"]["authError"]["name"], "AuthTokenInvalidError");
        assert!(!s.is_authenticated());

        claims.insert("exp".into(), Value::from(now_secs() - 1));
        let out = sent(&run(&mut s, &text(&auth.sign(&claims), 22), Some(&auth)));
        assert_eq!(out[1]["error"]["name"], "AuthTokenExpiredError");
    }

    #[test]
    fn tokens_past_half_their_life_are_renewed_on_the_next_pong() {
        let auth = secret();
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("alice"));
        claims.insert("iat".into(), Value::from(now_secs() - 100));
        claims.insert("exp".into(), Value::from(now_secs() + 20));
        let aging = auth.sign(&claims);
        let authenticate = |cid: u32, token: &str| {
            format!(r##"{{"event":"#authenticate","data":"{token}","cid":{cid}}}"##)
        };
        let mut s = handshaken();
        let out = sent(&run(&mut s, &authenticate(3, &aging), Some(&auth)));
        assert_eq!(
            out,
            vec![serde_json::json!({"rid":3,"data":{"isAuthenticated":true,"authError":null}})]
        );
        let out = sent(&run(&mut s, "#2", Some(&auth)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["event"], "#setAuthToken");
        let renewed = auth
            .verify_claims(out[0]["data"]["token"].as_str().unwrap())
            .unwrap();
        assert_eq!(renewed["sub"], "alice");
        assert!(renewed["exp"].as_u64().unwrap() >= now_secs() + 119);
        assert_eq!(run(&mut s, "#2", Some(&auth)), vec![], "sent once");

        // At the handshake too; deauthenticating drops a renewal not yet sent.
        let mut s = session();
        let text =
            format!(r##"{{"event":"#handshake","data":{{"authToken":"{aging}"}},"cid":1}}"##);
        assert_eq!(sent(&run(&mut s, &text, Some(&auth))).len(), 1);
        run(&mut s, r##"{"event":"#removeAuthToken"}"##, Some(&auth));
        assert_eq!(run(&mut s, "#2", Some(&auth)), vec![]);

        // A token with more than half its lifetime left is not renewed.
        claims.insert("iat".into(), Value::from(now_secs()));
        run(&mut s, &authenticate(4, &auth.sign(&claims)), Some(&auth));
        assert_eq!(run(&mut s, "#2", Some(&auth)), vec![]);
    }

    #[test]
    fn engine_events_encode_as_the_reference_does() {
        let enc = |e: &Event| {
            let mut out = Vec::new();
            encode(e, &mut out).then(|| serde_json::from_slice::<Value>(&out).unwrap())
        };
        let message = Event::Message {
            channel: "room1".into(),
            seq: 1,
            from: "".into(),
            data: r##""hi""##.into(),
            skip: None,
        };
        assert_eq!(
            enc(&message),
            Some(serde_json::json!({"event":"#publish","data":{"channel":"room1","data":"hi"}}))
        );
        let acked = Event::Subscribed {
            channel: "c".into(),
            receipt: Some("4".into()),
        };
        assert_eq!(enc(&acked), Some(serde_json::json!({"rid":4})));
        let silent = Event::Subscribed {
            channel: "c".into(),
            receipt: None,
        };
        assert_eq!(enc(&silent), None);
        let refused = Event::Error {
            code: ErrorCode::NotSubscribed,
            receipt: Some("8".into()),
        };
        assert_eq!(enc(&refused).unwrap()["error"]["name"], "BrokerError");
    }
}
