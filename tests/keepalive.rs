//! Keepalive and the identify timeout over the wire, every dialect: each timeout is
//! checked both ways (nothing before its setting, and it happens not long after it,
//! within [`TOLERANCE`]). Times are measured from before the client's connect for
//! "not before" and from after it for "not long after", so the client's clock brackets
//! the server's.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Client, server_with};
use serde_json::{Value, json};
use tungstenite::Message;
use turntable::config::Config;

/// How late a timeout may fire on a loaded test machine (the timers' resolution is
/// 10 ms).
const TOLERANCE: Duration = Duration::from_millis(400);

const IDENTIFY: Duration = Duration::from_millis(900);

/// A server with a short identify timeout and pings every ~150 ms, which tungstenite
/// answers while it reads.
fn identify_server(change: impl FnOnce(&mut Config)) -> turntable::runtime::Server {
    server_with(|c| {
        c.identify_timeout = IDENTIFY;
        c.idle_timeout = Duration::from_millis(300);
        change(c);
    })
}

/// Connects; returns the client and the instants just before and after the connect.
fn connect(addr: SocketAddr, path: &str) -> (Client, Instant, Instant) {
    let before = Instant::now();
    let c = Client::connect(addr, path);
    (c, before, Instant::now())
}

/// Asserts that `at` (an instant after `before` and `after`) is `setting` after them:
/// not before it from `before`, not more than [`TOLERANCE`] after it from `after`.
fn about(at: Instant, (before, after): (Instant, Instant), setting: Duration, what: &str) {
    let early = at.duration_since(before);
    let late = at.saturating_duration_since(after);
    assert!(
        early >= setting,
        "{what} after {early:?}, before {setting:?}"
    );
    assert!(
        late <= setting + TOLERANCE,
        "{what} after {late:?}, long after {setting:?}"
    );
}

/// Reads (answering pings) until the server closes; the text messages on the way, the
/// close code and reason, and when the close came.
fn read_to_close(c: &mut Client) -> (Vec<String>, (u16, String), Instant) {
    let mut texts = Vec::new();
    loop {
        match c.ws.read() {
            Ok(Message::Text(t)) => texts.push(t.to_string()),
            Ok(Message::Close(frame)) => {
                let at = Instant::now();
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (f.code.into(), f.reason.to_string())
                });
                return (texts, (code, reason), at);
            }
            Ok(_) => {}
            Err(e) => panic!("ended without a close frame: {e}"),
        }
    }
}

/// Reads (answering pings, and SocketCluster's `#1` with `#2`) for `wait`; fails if the
/// server closes. Returns how many WebSocket pings came.
fn stays_open(c: &mut Client, wait: Duration) -> usize {
    let deadline = Instant::now() + wait;
    let mut pings = 0;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let MaybePlain(Some(s)) = plain(c) {
            s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
        }
        match c.ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(Message::Text(t)) if t.as_str() == "#1" => c.send_text("#2"),
            Ok(Message::Close(frame)) => panic!("closed: {frame:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("ended: {e}"),
        }
    }
    pings
}

struct MaybePlain<'a>(Option<&'a TcpStream>);

fn plain(c: &Client) -> MaybePlain<'_> {
    match c.ws.get_ref() {
        tungstenite::stream::MaybeTlsStream::Plain(s) => MaybePlain(Some(s)),
        _ => MaybePlain(None),
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

#[test]
fn turntable_unidentified_is_told_and_closed_at_the_identify_timeout_though_it_pongs() {
    let server = identify_server(|_| {});
    let (mut c, before, after) = connect(server.local_addr(), "/turntable");
    let (texts, close, at) = read_to_close(&mut c);
    about(at, (before, after), IDENTIFY, "closed");
    assert_eq!(json_of(&texts[0]), json!({"command":"idyou","data":{}}));
    let error = json_of(texts.last().unwrap());
    assert_eq!(error["command"], "error", "{error}");
    assert_eq!(error["data"]["code"], "auth.identify_timeout", "{error}");
    assert!(error["data"]["message"].is_string());
    assert_eq!(close, (4005, "identify timeout".to_owned()));

    let (mut c, _, _) = connect(server.local_addr(), "/turntable");
    c.recv();
    c.send(json!({"command":"idme","data":"1:5"}));
    let pings = stays_open(&mut c, IDENTIFY * 2);
    assert!(pings > 0, "pinged while it stayed");
}

#[test]
fn talker_unidentified_is_told_and_closed_at_the_identify_timeout() {
    let server = identify_server(|_| {});
    let (mut c, before, after) = connect(server.local_addr(), "/talker");
    let (texts, close, at) = read_to_close(&mut c);
    about(at, (before, after), IDENTIFY, "closed");
    let error = json_of(texts.last().expect("an error"));
    assert_eq!(error["type"], "error", "{error}");
    assert!(error["message"].is_string());
    assert_eq!(close, (4005, "identify timeout".to_owned()));

    let (mut c, _, _) = connect(server.local_addr(), "/talker");
    c.send(json!({"type":"connect","room":"r","user":{"id":"9","name":"Bo"}}));
    stays_open(&mut c, IDENTIFY * 2);
}

#[test]
fn world_unidentified_is_told_and_closed_at_the_identify_timeout_though_it_pongs() {
    let server = identify_server(|_| {});
    let (mut c, before, after) = connect(server.local_addr(), "/ws/world/default");
    let (texts, close, at) = read_to_close(&mut c);
    about(at, (before, after), IDENTIFY, "closed");
    let error = json_of(texts.last().expect("an error"));
    assert_eq!(error[0], "error", "{error}");
    assert_eq!(error[1]["code"], "auth.identify_timeout", "{error}");
    assert_eq!(close, (4005, "identify timeout".to_owned()));

    let (mut c, _, _) = connect(server.local_addr(), "/ws/world/default");
    c.send(json!(["authenticate", {"user": {"id": "u1"}}]));
    let pings = stays_open(&mut c, IDENTIFY * 2);
    assert!(pings > 0, "pinged while it stayed");
}

#[test]
fn socketcluster_without_a_handshake_is_closed_with_4005_and_with_one_it_stays() {
    let server = identify_server(|c| c.socketcluster_ping_interval = Duration::from_millis(200));
    let (mut c, before, after) = connect(server.local_addr(), "/socketcluster/");
    let (texts, close, at) = read_to_close(&mut c);
    about(at, (before, after), IDENTIFY, "closed");
    assert!(texts.iter().all(|t| t == "#1"), "{texts:?}");
    assert_eq!(close, (4005, "identify timeout".to_owned()));

    let (mut c, _, _) = connect(server.local_addr(), "/socketcluster/");
    c.send(json!({"event":"#handshake","data":{},"cid":1}));
    stays_open(&mut c, IDENTIFY * 2);
}

/// A WebSocket client that never answers pings: the upgrade by hand, then frames read
/// raw (server frames are unmasked). Returns the stream and the instants around the
/// upgrade.
fn silent(addr: SocketAddr, path: &str) -> (TcpStream, Instant, Instant) {
    let before = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (s, before, Instant::now())
}

/// The next frame: its opcode, payload and when it was read.
fn raw_frame(s: &mut TcpStream) -> (u8, Vec<u8>, Instant) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            u16::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload, Instant::now())
}

#[test]
fn a_silent_websocket_is_pinged_after_half_the_idle_timeout_and_closed_after_all_of_it() {
    let idle = Duration::from_millis(1200);
    let server = server_with(|c| c.idle_timeout = idle);
    let (mut s, before, after) = silent(server.local_addr(), "/turntable");
    let (op, _, _) = raw_frame(&mut s);
    assert_eq!(op, 1, "the greeting");
    let (op, _, pinged) = raw_frame(&mut s);
    assert_eq!(op, 9, "a ping");
    // The ping's jitter is at most a 16th of the wait.
    about(pinged, (before, after), idle / 2, "pinged");
    assert!(pinged.saturating_duration_since(after) <= idle / 2 + idle / 32 + TOLERANCE);
    let (op, payload, closed) = raw_frame(&mut s);
    assert_eq!(op, 8, "then the close, no second ping");
    assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"idle timeout");
    about(closed, (before, after), idle, "closed");
}

#[test]
fn a_silent_talker_is_closed_at_its_ping_timeout_not_before() {
    let timeout = Duration::from_millis(800);
    let server = server_with(|c| c.talker_ping_timeout = timeout);
    let mut c = Client::connect(server.local_addr(), "/talker");
    let before = Instant::now();
    c.send(json!({"type":"connect","room":"r","user":{"id":"9","name":"Bo"}}));
    let after = Instant::now();
    let (_, close, at) = read_to_close(&mut c);
    assert_eq!(close, (1001, "ping timeout".to_owned()));
    about(at, (before, after), timeout, "closed");
}

#[test]
fn socketcluster_beats_come_every_interval_and_a_silent_client_is_closed_at_its_timeout() {
    let interval = Duration::from_millis(300);
    let timeout = Duration::from_millis(1400);
    let server = server_with(|c| {
        c.socketcluster_ping_interval = interval;
        c.socketcluster_ping_timeout = timeout;
    });
    let mut c = Client::connect(server.local_addr(), "/socketcluster/");
    let before = Instant::now();
    c.send(json!({"event":"#handshake","data":{},"cid":1}));
    let after = Instant::now();
    let mut beats = Vec::new();
    let (close, closed) = loop {
        match c.ws.read() {
            Ok(Message::Text(t)) if t.as_str() == "#1" => beats.push(Instant::now()),
            Ok(Message::Text(_)) => {}
            Ok(Message::Close(Some(f))) => {
                break ((u16::from(f.code), f.reason.to_string()), Instant::now());
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.0, 4001, "{close:?}");
    about(closed, (before, after), timeout, "closed");
    // The first beat at the connection's phase within the interval, then one each
    // interval (the client's silence does not stop them).
    assert!(beats.len() >= 3, "{} beats in {timeout:?}", beats.len());
    assert!(beats[0].saturating_duration_since(after) <= interval + TOLERANCE);
    for pair in beats.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap + TOLERANCE / 2 >= interval && gap <= interval + TOLERANCE / 2,
            "a gap of {gap:?} between beats every {interval:?}"
        );
    }
}

/// One xhr poll of a SockJS HTTP session: the response body.
fn xhr_poll(addr: SocketAddr, session: &str) -> String {
    let response = common::http(
        addr,
        &format!(
            "POST /sockjs/talker/000/{session}/xhr HTTP/1.1\r\nHost: test\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    let (_, body) = response.split_once("\r\n\r\n").expect("a response");
    body.to_owned()
}

#[test]
fn a_sockjs_http_session_that_does_not_identify_gets_the_error_then_its_close() {
    let server = identify_server(|_| {});
    let addr = server.local_addr();
    let before = Instant::now();
    assert_eq!(xhr_poll(addr, "idle"), "o\n");
    let after = Instant::now();
    let mut bodies = String::new();
    let closed = loop {
        let body = xhr_poll(addr, "idle");
        bodies.push_str(&body);
        if body.starts_with("c[") {
            break Instant::now();
        }
    };
    assert!(
        bodies.contains("connect to a room within the identify timeout"),
        "{bodies}"
    );
    assert!(
        bodies.ends_with("c[4005,\"identify timeout\"]\n"),
        "{bodies}"
    );
    about(closed, (before, after), IDENTIFY, "closed");
}

#[test]
fn identified_through_the_connect_hook_stays_and_refused_is_closed_at_the_timeout() {
    let backend = common::backend::Backend::start(|request, _| {
        let answer = match request.json()["credentials"].as_str() {
            Some("sess-ann") => json!({"user": "ann", "profile": {"name": "Ann"}}),
            _ => json!({"error": {"code": "auth.session_expired", "message": "log in again"}}),
        };
        (200, answer.to_string(), Duration::ZERO)
    });
    let url = backend.url("/connect");
    // Long idle timeout: the identified clients are not read while the refused one is.
    let server = identify_server(move |c| {
        c.connect_hook = Some(url);
        c.idle_timeout = Duration::from_secs(30);
    });
    let addr = server.local_addr();
    let (mut refused, before, after) = connect(addr, "/turntable");
    refused.send(json!({"command":"idme","data":{"credentials":"sess-old"}}));
    let mut v1 = Client::connect(addr, "/turntable");
    v1.send(json!({"command":"idme","data":{"credentials":"sess-ann"}}));
    let mut world = Client::connect(addr, "/ws/world/default");
    world.send(json!(["authenticate", {"credentials": "sess-ann"}]));
    let mut talker = Client::connect(addr, "/talker");
    talker.send(json!({"type":"connect","room":"den","credentials":"sess-ann"}));
    let (texts, close, at) = read_to_close(&mut refused);
    assert!(
        texts.iter().any(|t| t.contains("auth.session_expired")),
        "{texts:?}"
    );
    assert_eq!(close, (4005, "identify timeout".to_owned()));
    about(at, (before, after), IDENTIFY, "closed");
    for c in [&mut v1, &mut world, &mut talker] {
        stays_open(c, IDENTIFY / 2);
    }
}
