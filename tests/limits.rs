//! Documented limits, each with a test that fails when the limit is removed:
//! `max_channels_per_conn` in each dialect that joins or subscribes,
//! `handshake_timeout` both ways (not before it, and not long after it), the
//! per-address `connection_rate`, and `max_message_bytes` with frames past 64 KiB each
//! way through an independent client (tungstenite).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::socketcluster::{handshaken_on, recv as sc_recv};
use common::{Client, server_with};
use serde_json::json;

#[test]
fn a_connection_joins_at_most_max_channels_per_conn_channels() {
    let server = server_with(|c| c.max_channels_per_conn = 2);
    let addr = server.local_addr();
    let mut v1 = Client::connect_on_shard(addr, "/turntable", 0);
    v1.recv();
    v1.send(json!({"command":"idme","data":"1:1"}));
    v1.recv();
    for room in ["a", "b"] {
        v1.send(json!({"command":"joingame","data":{"channel":room,"self":"1:1"}}));
        assert_eq!(v1.recv()["command"], "joined");
    }
    v1.send(json!({"command":"joingame","data":{"channel":"c","self":"1:1"}}));
    assert_eq!(v1.recv()["data"]["code"], "joingame.too_many");
    // Leaving makes room again.
    v1.send(json!({"command":"leavegame","data":{"channel":"a"}}));
    assert_eq!(v1.recv()["command"], "left");
    v1.send(json!({"command":"joingame","data":{"channel":"c","self":"1:1"}}));
    assert_eq!(v1.recv()["command"], "joined");

    let (mut sc, _) = handshaken_on(addr, 1, json!({}));
    for (i, channel) in ["x", "y", "z"].into_iter().enumerate() {
        sc.send(json!({"event":"#subscribe","data":{"channel":channel},"cid":i + 2}));
        let answer = sc_recv(&mut sc);
        if i < 2 {
            assert_eq!(answer, json!({"rid": i + 2}));
        } else {
            assert_eq!(answer["error"]["name"], "BrokerError", "{answer}");
        }
    }

    let mut world = Client::connect_on_shard(addr, "/ws/world/default", 0);
    world.send(json!(["authenticate", {"user": {"id": "ann"}}]));
    world.recv();
    for (i, channel) in ["p", "q", "r"].into_iter().enumerate() {
        world.send(json!(["channel.join", i, {"channel": channel}]));
        let answer = world.recv();
        let expected = if i < 2 { "success" } else { "error" };
        assert_eq!(answer[0], expected, "{answer}");
    }
}

/// How long the server keeps a connection that sends nothing.
fn silent_connection_lifetime(addr: std::net::SocketAddr) -> Duration {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
    }
}

#[test]
fn a_connection_that_sends_no_request_is_closed_after_handshake_timeout() {
    let timeout = Duration::from_secs(1);
    let server = server_with(|c| c.handshake_timeout = timeout);
    let addr = server.local_addr();
    // The server's clock starts at its accept, the client's when connect returns, and
    // a loaded machine delays timers a little: a small tolerance either way, well
    // short of twice the timeout.
    let tolerance = Duration::from_millis(500);
    let lived = silent_connection_lifetime(addr);
    assert!(
        lived >= timeout - Duration::from_millis(50),
        "closed after {lived:?}, before {timeout:?}"
    );
    assert!(
        lived < timeout + tolerance,
        "closed {lived:?} after connecting"
    );
    // A partial request head is no request either.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /turntable HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let lived = start.elapsed();
    assert!(lived >= timeout - Duration::from_millis(50), "{lived:?}");
    assert!(lived < timeout + tolerance, "{lived:?}");
}

#[test]
fn a_connection_over_its_message_rate_is_told_then_closed_and_others_carry_on() {
    let server = server_with(|c| {
        c.message_rate = 5;
        c.message_burst = 4;
    });
    let addr = server.local_addr();
    let mut flood = Client::connect_on_shard(addr, "/turntable", 0);
    flood.recv();
    let mut calm = Client::connect_on_shard(addr, "/turntable", 0);
    calm.recv();
    for _ in 0..4 {
        flood.send(json!({"command":"idme","data":"1:1"}));
    }
    assert_eq!(flood.recv()["command"], "identified");
    for _ in 0..3 {
        assert_eq!(flood.recv()["data"]["code"], "auth.already_identified");
    }
    flood.send(json!({"command":"status","data":"busy"}));
    assert_eq!(
        flood.recv()["data"]["code"],
        "rate.limited",
        "over the burst, a message is dropped and the client told"
    );
    for _ in 0..10 {
        flood.send_text(r#"{"command":"status","data":"busy"}"#);
    }
    let (code, reason) = flood.expect_close();
    assert_eq!((code, reason.as_str()), (1008, "rate limit exceeded"));
    calm.send(json!({"command":"idme","data":"1:2"}));
    assert_eq!(
        calm.recv()["command"],
        "identified",
        "its shard still serves others"
    );
}

/// A TCP connection to `addr` from the loopback address `source` (all of 127.0.0.0/8
/// is this host's), so one test can be several client addresses.
fn tcp_from(source: [u8; 4], addr: std::net::SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from = std::net::SocketAddr::from((source, 0));
    socket.bind(&from.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
    stream
}

/// What a connection from `source` that asks to upgrade to turntable v1 gets: the
/// response's status line, or `None` when the server closes it without a word.
fn upgrade_from(source: [u8; 4], addr: std::net::SocketAddr) -> Option<String> {
    let mut stream = tcp_from(source, addr);
    let request = "GET /turntable HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    // A write to a connection the server already closed may fail: that is the answer.
    let _ = stream.write_all(request.as_bytes());
    let mut response = Vec::new();
    let mut chunk = [0; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    (!text.is_empty()).then_some(text)
}

#[test]
fn an_address_over_connection_rate_gets_429_then_is_closed_unread_while_others_are_served() {
    let server = server_with(|c| {
        c.connection_rate = 1;
        c.connection_burst = 3;
    });
    let addr = server.local_addr();
    let hammer = [127, 0, 0, 2];
    let answers: Vec<Option<String>> = (0..8).map(|_| upgrade_from(hammer, addr)).collect();
    for answer in &answers[..3] {
        let answer = answer.as_deref().unwrap_or("closed");
        assert!(
            answer.starts_with("HTTP/1.1 101"),
            "within the burst: {answer}"
        );
    }
    for answer in &answers[3..6] {
        let answer = answer.as_deref().unwrap_or("closed");
        assert!(
            answer.starts_with("HTTP/1.1 429"),
            "over the rate: {answer}"
        );
        assert!(answer.contains("Retry-After: 1"), "{answer}");
    }
    for answer in &answers[6..] {
        assert_eq!(answer, &None, "past a further burst: closed unread");
    }

    // Another address is its own budget, and a WebSocket client on it talks as usual.
    let stream = tcp_from([127, 0, 0, 3], addr);
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/turntable"), stream).unwrap();
    let greeting: serde_json::Value =
        serde_json::from_str(&ws.read().unwrap().into_text().unwrap()).unwrap();
    assert_eq!(greeting, json!({"command":"idyou","data":{}}));

    // Figures are published on the shards' tick; each scrape comes from an address
    // of its own.
    let mut scrapes = 10u8..;
    common::eventually(|| {
        rate_limited_count(tcp_from([127, 0, 1, scrapes.next().unwrap()], addr)) == 5
    });
}

/// `turntable_connections_rate_limited_total` over every shard, scraped on `stream`.
fn rate_limited_count(mut stream: TcpStream) -> u64 {
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut metrics = String::new();
    let _ = stream.read_to_string(&mut metrics);
    metrics
        .lines()
        .filter(|line| line.starts_with("turntable_connections_rate_limited_total{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// `GET /api/stats` on a connection of its own from `source`, with `key` if any: the
/// response's status.
fn api_stats_from(source: [u8; 4], addr: std::net::SocketAddr, key: Option<&str>) -> u16 {
    let mut stream = tcp_from(source, addr);
    let auth = key.map_or(String::new(), |k| format!("Authorization: apikey {k}\r\n"));
    let request = format!("GET /api/stats HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_application_server_calling_the_api_with_its_key_is_not_held_to_connection_rate() {
    const KEY: &str = "an-api-key-for-the-rate-tests";
    let server = server_with(|c| {
        c.connection_rate = 1;
        c.connection_burst = 3;
        c.api_key = Some(KEY.into());
    });
    let addr = server.local_addr();
    // A connection per call, far past the burst.
    for call in 0..12 {
        assert_eq!(
            api_stats_from([127, 0, 2, 1], addr, Some(KEY)),
            200,
            "call {call}"
        );
    }
    // Without the key the calls count: refused (401) within the burst, then 429.
    let answers: Vec<u16> = (0..5)
        .map(|_| api_stats_from([127, 0, 2, 2], addr, None))
        .collect();
    assert_eq!(answers, [401, 401, 401, 429, 429]);
    // And a key does not let an address over the rate open WebSockets.
    let answer = upgrade_from([127, 0, 2, 2], addr).unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
}

#[test]
fn exempt_address_blocks_are_not_held_to_connection_rate() {
    let server = server_with(|c| {
        c.connection_rate = 1;
        c.connection_burst = 1;
        c.connection_rate_exempt = vec!["127.0.0.0/24".into()];
    });
    let addr = server.local_addr();
    for _ in 0..5 {
        let answer = upgrade_from([127, 0, 0, 9], addr).unwrap_or_default();
        assert!(answer.starts_with("HTTP/1.1 101"), "exempt: {answer}");
    }
    assert!(upgrade_from([127, 0, 1, 9], addr).is_some_and(|a| a.starts_with("HTTP/1.1 101")));
    let outside = upgrade_from([127, 0, 1, 9], addr).unwrap_or_default();
    assert!(outside.starts_with("HTTP/1.1 429"), "not exempt: {outside}");
}

/// A turntable game message of `len` bytes or a little more from `1:1` in room `big`.
fn game_of(len: usize) -> serde_json::Value {
    json!({"command":"game","data":{"channel":"big","actions":[
        {"from":"1:1","data":{"blob":"x".repeat(len)}}]}})
}

#[test]
fn frames_past_64_kib_go_each_way_through_an_independent_client_up_to_max_message_bytes() {
    // Frames of 64 KiB and more carry a 64-bit length (RFC 6455 section 5.2); the client
    // is tungstenite, which shares no code with the server's framing.
    let server = server_with(|c| c.max_message_bytes = 1 << 20);
    let addr = server.local_addr();
    let mut sender = Client::connect(addr, "/turntable");
    let mut member = Client::connect(addr, "/turntable");
    for (c, user) in [(&mut sender, "1:1"), (&mut member, "1:2")] {
        c.recv();
        c.send(json!({"command":"idme","data":user}));
        c.recv();
        c.send(json!({"command":"joingame","data":{"channel":"big","self":user}}));
        assert_eq!(c.recv()["command"], "joined");
    }
    assert_eq!(sender.recv()["command"], "memberjoined");
    for len in [70_000, 300_000, 1_000_000] {
        sender.send(game_of(len));
        for c in [&mut sender, &mut member] {
            let game = c.recv();
            let blob = game["data"]["actions"][0]["data"]["blob"].as_str().unwrap();
            assert_eq!(blob.len(), len, "a {len}-byte blob arrives whole");
        }
    }
    // One byte over the limit is refused from the frame's header with 1009.
    let overhead = game_of(0).to_string().len();
    let just_over = game_of((1 << 20) + 1 - overhead);
    sender.send(just_over);
    assert_eq!(sender.expect_close().0, 1009);
    assert_eq!(
        member.recv(),
        json!({"command":"memberleft","data":{"channel":"big","user":"1:1"}}),
        "the refused message is not delivered; its sender leaves"
    );
}

#[test]
fn a_message_of_exactly_max_message_bytes_is_served_at_the_default_limit() {
    // The default limit, 64 KiB, is the first length that needs 64 bits.
    let server = server_with(|_| {});
    let mut c = Client::connect(server.local_addr(), "/turntable");
    c.recv();
    c.send(json!({"command":"idme","data":"1:1"}));
    c.recv();
    c.send(json!({"command":"joingame","data":{"channel":"big","self":"1:1"}}));
    c.recv();
    let overhead = game_of(0).to_string().len();
    c.send(game_of((64 << 10) - overhead));
    let game = c.recv();
    let blob = game["data"]["actions"][0]["data"]["blob"].as_str().unwrap();
    assert_eq!(blob.len(), (64 << 10) - overhead);
    c.send(game_of((64 << 10) - overhead + 1));
    assert_eq!(c.expect_close().0, 1009);
}

#[test]
fn every_dialect_tells_a_client_over_its_message_rate_then_closes_it() {
    let server = server_with(|c| {
        c.message_rate = 1;
        c.message_burst = 3;
    });
    let addr = server.local_addr();
    let talker_connect = json!({"type":"connect","room":"r","user":{"id":"t1","name":"t1"}});
    // (path, what identifies, what it then sends over and over, the refusal it expects)
    let dialects = [
        (
            "/ws/world/default",
            json!(["authenticate", {"user": {"id": "w1"}}]),
            json!(["channel.join", 1, {"channel": "c"}]),
            // Dropped unhandled, yet answering the request's id.
            json!(["error", 1, {"code": "rate.limited", "message": "too many messages: this one was dropped"}]),
        ),
        (
            "/talker",
            talker_connect,
            json!({"type":"message","content":"hi"}),
            json!({"type":"error","message":"too many messages: this one was dropped"}),
        ),
    ];
    for (path, identify, again, refusal) in dialects {
        let mut c = Client::connect(addr, path);
        c.send(identify);
        c.recv();
        let mut seen = Vec::new();
        for _ in 0..3 {
            c.send(again.clone());
        }
        c.send(again.clone());
        loop {
            let message = c.recv();
            if message == refusal {
                break;
            }
            seen.push(message);
            assert!(seen.len() < 10, "{path}: no refusal in {seen:?}");
        }
        for _ in 0..10 {
            c.send(again.clone());
        }
        let (code, reason) = c.expect_close();
        assert_eq!(
            (code, reason.as_str()),
            (1008, "rate limit exceeded"),
            "{path}"
        );
    }
    // SocketCluster answers a dropped event's cid; one without a cid gets nothing but
    // the close.
    let (mut sc, _) = handshaken_on(addr, 0, json!({}));
    for cid in 10..14 {
        sc.send(json!({"event":"#publish","data":{"channel":"c","data":1},"cid":cid}));
    }
    let mut answers: Vec<serde_json::Value> = (0..4).map(|_| sc_recv(&mut sc)).collect();
    answers.sort_by_key(|a| a["rid"].as_u64());
    let refused =
        json!({"name": "rate.limited", "message": "too many messages: this one was dropped"});
    assert_eq!(
        answers,
        [
            json!({"rid": 10}),
            json!({"rid": 11}),
            json!({"rid": 12, "error": refused}),
            json!({"rid": 13, "error": refused}),
        ],
        "the burst (the handshake took one), then refusals answering their cids"
    );
    for _ in 0..20 {
        sc.send(json!({"event":"#publish","data":{"channel":"c","data":1}}));
    }
    let (code, reason) = sc.expect_close();
    assert_eq!((code, reason.as_str()), (1008, "rate limit exceeded"));
}
