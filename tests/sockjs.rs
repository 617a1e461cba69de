//! SockJS on a 2-shard server: the real `sockjs-client` (1.6.1, through
//! `tests/interop/sockjs.mjs`) over each transport it can use from Node (websocket,
//! xhr-streaming, xhr-polling, eventsource), the SockJS framing seen frame by frame with
//! a plain WebSocket client, the transports the client cannot use outside a browser
//! (htmlfile, jsonp) and the session rules over raw HTTP — every request of a session
//! landing on whichever shard the kernel picks — and the endpoints under a prefix
//! (greeting, `/info`, the iframe page, refusals) as sockjs-node answers them.

mod common;

use std::net::SocketAddr;

use common::Client;
use common::sockjs_http::{dechunked, exchange, poll, send};
use serde_json::{Value, json};
use tungstenite::Message;

fn text(c: &mut Client) -> String {
    match c.next() {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The messages of the next SockJS `a[...]` frame, parsed as the dialect's JSON.
fn messages(c: &mut Client) -> Vec<Value> {
    let frame = text(c);
    let body = frame
        .strip_prefix('a')
        .unwrap_or_else(|| panic!("not a message frame: {frame}"));
    let strings: Vec<String> = serde_json::from_str(body).unwrap();
    strings
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
}

fn raw(addr: SocketAddr, request: &str) -> String {
    common::http(addr, request)
}

/// Runs the real-client harness with one transport against a fresh 2-shard server.
fn real_client(transport: &str) {
    let server = common::server();
    let base = format!("http://{}", server.local_addr());
    common::node::run_harness("sockjs.mjs", &["--base", &base, "--transport", transport]);
}

#[test]
fn the_real_sockjs_client_over_websocket() {
    real_client("websocket");
}

#[test]
fn the_real_sockjs_client_over_xhr_streaming() {
    real_client("xhr-streaming");
}

#[test]
fn the_real_sockjs_client_over_xhr_polling() {
    real_client("xhr-polling");
}

#[test]
fn the_real_sockjs_client_over_eventsource() {
    real_client("eventsource");
}

#[test]
fn the_websocket_transport_frames_each_message() {
    let server = common::server();
    let addr = server.local_addr();
    let mut c = Client::connect_on_shard(addr, "/sockjs/turntable/000/abcdef/websocket", 1);
    assert_eq!(text(&mut c), "o");
    assert_eq!(messages(&mut c), vec![json!({"command":"idyou","data":{}})]);
    // One frame may carry several messages; each is handled in order.
    c.send(json!(["{\"command\":\"fly\"}", "not json"]));
    let first = messages(&mut c);
    let second = messages(&mut c);
    assert_eq!(first[0]["data"]["code"], "protocol.unknown_command");
    assert_eq!(second[0]["data"]["code"], "protocol.malformed_json");
    c.send(json!([json!({"command":"idme","data":"sj"}).to_string()]));
    assert_eq!(
        messages(&mut c),
        vec![json!({"command":"identified","data":{"id":"sj"}})]
    );

    // A plain client on the other shard sees the SockJS user like any other.
    let mut plain = Client::connect_on_shard(addr, "/turntable", 0);
    plain.recv();
    plain.send(json!({"command":"idme","data":"watcher"}));
    plain.recv();
    plain.send(json!({"command":"subscribe","data":["sj"]}));
    assert_eq!(
        plain.recv(),
        json!({"command":"userchange","data":{"sj":"online"}})
    );

    c.send_text("[\"unterminated");
    assert_eq!(c.expect_close(), (3000, "Broken framing.".into()));
    assert_eq!(
        plain.recv(),
        json!({"command":"userchange","data":{"sj":"offline"}})
    );
}

#[test]
fn the_raw_websocket_is_the_bare_dialect() {
    let server = common::server();
    let mut c = Client::connect(server.local_addr(), "/sockjs/turntable/websocket");
    assert_eq!(c.recv(), json!({"command":"idyou","data":{}}));
    let mut world = Client::connect(server.local_addr(), "/sockjs/world/default/websocket");
    world.send(json!(["ping", 7]));
    assert_eq!(world.recv(), json!(["pong", 7]));
}

#[test]
fn the_http_endpoints_answer_as_sockjs_node_does() {
    // sockjs-node takes pages of any origin; so does this server when told to.
    let server = common::server_with(|c| c.allowed_origins = vec!["*".into()]);
    let addr = server.local_addr();
    let welcome = raw(
        addr,
        "GET /sockjs/talker HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(welcome.starts_with("HTTP/1.1 200"), "{welcome}");
    assert!(
        welcome.ends_with("\r\n\r\nWelcome to SockJS!\n"),
        "{welcome}"
    );

    // A body where none is read closes the connection: it is never taken for the next
    // request. A transport's body must have a length that is a number.
    let inner = "GET /sockjs/talker HTTP/1.1\r\nHost: t\r\n\r\n";
    let smuggled = raw(
        addr,
        &format!(
            "GET /sockjs/talker/info HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{inner}",
            inner.len()
        ),
    );
    assert_eq!(smuggled.matches("HTTP/1.1 ").count(), 1, "{smuggled}");
    assert!(smuggled.contains("Connection: close\r\n"), "{smuggled}");
    for (method, path) in [
        ("POST", "/sockjs/talker/a/b/bogus"),
        ("POST", "/sockjs/talker/a/b/c/d"),
        ("OPTIONS", "/sockjs/talker/a/b/xhr"),
    ] {
        let smuggled = raw(
            addr,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{inner}",
                inner.len()
            ),
        );
        assert_eq!(
            smuggled.matches("HTTP/1.1 ").count(),
            1,
            "{path}: {smuggled}"
        );
    }
    let upgrade_with_body = raw(
        addr,
        "GET /sockjs/talker/websocket HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert!(
        upgrade_with_body.starts_with("HTTP/1.1 400"),
        "{upgrade_with_body}"
    );
    let bad_length = raw(
        addr,
        "POST /sockjs/talker/000/bl/xhr_send HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n",
    );
    assert!(bad_length.starts_with("HTTP/1.1 400"), "{bad_length}");
    assert!(
        bad_length.ends_with("invalid content length\n"),
        "{bad_length}"
    );

    let info = |origin: &str| {
        raw(
            addr,
            &format!(
                "GET /sockjs/turntable/info HTTP/1.1\r\nHost: t\r\n{origin}Connection: close\r\n\r\n"
            ),
        )
    };
    let with_origin = info("Origin: https://app.example\r\n");
    assert!(with_origin.contains("Access-Control-Allow-Origin: https://app.example\r\n"));
    assert!(with_origin.contains("Access-Control-Allow-Credentials: true\r\n"));
    assert!(with_origin.contains(
        "Cache-Control: no-store, no-cache, no-transform, must-revalidate, max-age=0\r\n"
    ));
    let body =
        |r: &str| -> Value { serde_json::from_str(r.split_once("\r\n\r\n").unwrap().1).unwrap() };
    let first = body(&with_origin);
    assert_eq!(first["websocket"], true);
    assert_eq!(first["origins"], json!(["*:*"]));
    assert_eq!(first["cookie_needed"], false);
    assert!(info("").contains("Access-Control-Allow-Origin: *\r\n"));
    assert_ne!(
        first["entropy"],
        body(&info(""))["entropy"],
        "entropy is random"
    );

    let options = raw(
        addr,
        "OPTIONS /sockjs/turntable/info HTTP/1.1\r\nHost: t\r\nOrigin: null\r\n\
         Access-Control-Request-Headers: a, b\r\nConnection: close\r\n\r\n",
    );
    assert!(options.starts_with("HTTP/1.1 204"), "{options}");
    for header in [
        "Access-Control-Allow-Origin: null",
        "Access-Control-Allow-Headers: a, b",
        "Access-Control-Allow-Methods: OPTIONS, GET",
        "Access-Control-Max-Age: 31536000",
        "Cache-Control: public, max-age=31536000",
    ] {
        assert!(
            options.contains(&format!("{header}\r\n")),
            "{header} in {options}"
        );
    }

    assert!(options.contains("\r\nExpires: "), "{options}");

    let iframe = raw(
        addr,
        "GET /sockjs/turntable/iframe-1.6.1.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(iframe.starts_with("HTTP/1.1 200"), "{iframe}");
    assert!(iframe.contains("SockJS.bootstrap_iframe();"));
    let etag = iframe
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("an ETag")
        .to_owned();
    let cached = raw(
        addr,
        &format!(
            "GET /sockjs/turntable/iframe.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(cached.starts_with("HTTP/1.1 304"), "{cached}");

    let refused = [
        (
            "POST /sockjs/turntable/info",
            "405",
            Some("Allow: OPTIONS, GET"),
        ),
        ("GET /sockjs/turntable/a/b/c/xhr", "404", None),
        ("GET /sockjs/turntable/a.b/c/websocket", "404", None),
        ("GET /sockjs/turntable/0/0/websocket", "400", None),
        ("GET /sockjs/nothing", "404", None),
    ];
    for (line, status, header) in refused {
        let answer = raw(
            addr,
            &format!(
                "{line} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(&answer[9..12], status, "{line}: {answer}");
        if let Some(header) = header {
            assert!(answer.contains(header), "{line}: {answer}");
        }
    }
}

#[test]
fn polling_sessions_keep_their_order_whichever_shard_a_request_lands_on() {
    let server = common::server();
    let addr = server.local_addr();
    for session in ["alpha", "bravo", "charlie", "delta"] {
        assert_eq!(poll(addr, session), "o\n");
        assert_eq!(
            poll(addr, session),
            "a[\"{\\\"command\\\":\\\"idyou\\\",\\\"data\\\":{}}\"]\n"
        );
        let idme = json!({"command":"idme","data":session});
        let (fly, swim) = (json!({"command":"fly"}), json!({"command":"swim"}));
        assert_eq!(send(addr, session, &[idme, fly, swim]).0, 204);
        // `identified` waits for the user's owner shard; the two refusals are immediate
        // and must come in the order sent.
        let mut messages: Vec<Value> = Vec::new();
        while messages.len() < 3 {
            let frame = poll(addr, session);
            let texts: Vec<String> =
                serde_json::from_str(frame.trim_end().strip_prefix('a').unwrap()).unwrap();
            messages.extend(
                texts
                    .iter()
                    .map(|m| serde_json::from_str::<Value>(m).unwrap()),
            );
        }
        assert!(
            messages.contains(&json!({"command":"identified","data":{"id":session}})),
            "{messages:?}"
        );
        let refused: Vec<&Value> = messages
            .iter()
            .filter(|m| m["command"] == "error")
            .map(|m| &m["data"]["message"])
            .collect();
        assert_eq!(
            refused,
            [
                &json!("unknown command \"fly\""),
                &json!("unknown command \"swim\"")
            ]
        );
    }
}

#[test]
fn a_shard_holds_at_most_its_session_limit_and_long_ids_are_refused() {
    let server = common::server_with(|c| c.sockjs_max_sessions = 1);
    let addr = server.local_addr();
    // Two shards with a limit of one each: a third new session finds no room
    // wherever it lands, while the sessions that exist carry on.
    let mut open = Vec::new();
    for session in ["s1", "s2", "s3", "s4", "s5", "s6"] {
        let (status, body) = exchange(
            addr,
            "POST",
            &format!("/sockjs/turntable/000/{session}/xhr"),
            None,
            "",
        );
        match status {
            200 => {
                assert_eq!(body, "o\n");
                open.push(session);
            }
            503 => assert_eq!(body, "too many sessions\n"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        (1..=2).contains(&open.len()),
        "one session per shard: {open:?}"
    );
    assert!(
        poll(addr, open[0]).contains("idyou"),
        "an open session works"
    );
    let long = "x".repeat(65);
    assert_eq!(
        exchange(
            addr,
            "POST",
            &format!("/sockjs/turntable/000/{long}/xhr"),
            None,
            ""
        )
        .0,
        404
    );
}

#[test]
fn sends_are_checked_before_the_session_is_looked_up() {
    let server = common::server();
    let addr = server.local_addr();
    let url = "/sockjs/turntable/000/nosuch/xhr_send";
    assert_eq!(
        exchange(addr, "POST", url, Some("text/plain"), ""),
        (500, "Payload expected.".into())
    );
    assert_eq!(
        exchange(addr, "POST", url, Some("text/plain"), "[\"x"),
        (500, "Broken JSON encoding.".into())
    );
    assert_eq!(
        exchange(addr, "POST", url, Some("text/plain"), "{}"),
        (500, "Payload expected.".into())
    );
    assert_eq!(
        exchange(
            addr,
            "POST",
            url,
            Some("application/x-www-form-urlencoded"),
            "[\"x\"]"
        ),
        (500, "Payload expected.".into())
    );
    assert_eq!(
        exchange(addr, "POST", url, Some("text/plain"), "[\"x\"]"),
        (404, "404 Error: Page not found\n".into())
    );
}

#[test]
fn jsonp_and_htmlfile_frame_for_browsers() {
    let server = common::server();
    let addr = server.local_addr();
    let jsonp = |cb: &str| {
        exchange(
            addr,
            "GET",
            &format!("/sockjs/turntable/000/jp/jsonp?c={cb}"),
            None,
            "",
        )
    };
    assert_eq!(jsonp("cb"), (200, "/**/cb(\"o\");\r\n".into()));
    assert_eq!(
        jsonp("cb").1,
        "/**/cb(\"a[\\\"{\\\\\\\"command\\\\\\\":\\\\\\\"idyou\\\\\\\",\\\\\\\"data\\\\\\\":{}}\\\"]\");\r\n"
    );
    let form = format!(
        "d={}",
        "%5B%22%7B%5C%22command%5C%22%3A%5C%22idme%5C%22%2C%5C%22data%5C%22%3A%5C%22jp%5C%22%7D%22%5D"
    );
    let sent = exchange(
        addr,
        "POST",
        "/sockjs/turntable/000/jp/jsonp_send",
        Some("application/x-www-form-urlencoded"),
        &form,
    );
    assert_eq!(sent, (200, "ok".into()));
    assert!(jsonp("cb").1.contains("identified"));
    assert_eq!(jsonp("bad(").0, 500);
    assert_eq!(
        exchange(addr, "GET", "/sockjs/turntable/000/jp/jsonp", None, "").1,
        "\"callback\" parameter required"
    );

    let page = read_until(
        addr,
        "GET /sockjs/turntable/000/hf/htmlfile?c=%63allback HTTP/1.1\r\nHost: t\r\n\r\n",
        "idyou",
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("var c = parent.callback;"), "{page}");
    assert!(
        page.contains("<script>\np(\"o\");\n</script>\r\n"),
        "{page}"
    );
}

/// Sends `request` and reads the (streamed) answer until it contains `needle`.
fn read_until(addr: SocketAddr, request: &str, needle: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = stream.read(&mut buf).expect("more of the stream");
        assert!(
            n > 0,
            "the stream ended before {needle:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn one_receiver_at_a_time_and_a_closed_session_says_why() {
    let server = common::server();
    let addr = server.local_addr();
    assert_eq!(
        exchange(addr, "POST", "/sockjs/world/nowhere/000/w1/xhr", None, "").1,
        "o\n"
    );
    let unknown = exchange(addr, "POST", "/sockjs/world/nowhere/000/w1/xhr", None, "").1;
    assert!(unknown.contains("world.unknown_world"), "{unknown}");
    for _ in 0..2 {
        let closed = exchange(addr, "POST", "/sockjs/world/nowhere/000/w1/xhr", None, "").1;
        assert_eq!(closed, "c[4404,\"unknown world\"]\n");
    }

    assert_eq!(poll(addr, "busy"), "o\n");
    poll(addr, "busy");
    let waiting = std::thread::spawn(move || poll(addr, "busy"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        poll(addr, "busy"),
        "c[2010,\"Another connection still open\"]\n"
    );
    send(addr, "busy", &[json!({"command":"idme","data":"b"})]);
    assert!(waiting.join().unwrap().contains("identified"));
}

#[test]
fn a_client_that_drops_its_receiver_ends_the_session() {
    let server = common::server();
    let addr = server.local_addr();
    let stream = read_until(
        addr,
        "POST /sockjs/turntable/000/gone/xhr_streaming HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "idyou",
    );
    assert!(
        stream.contains(&format!("{}\n", "h".repeat(2048))),
        "the prelude"
    );
    // read_until dropped the connection: the session ended with it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(poll(addr, "gone"), "o\n", "a new session");
}

#[test]
fn the_protocol_test_services_are_there_when_asked_for() {
    let server = common::server_with(|c| c.sockjs_test_services = true);
    let addr = server.local_addr();
    let get = |path: &str| exchange(addr, "GET", path, None, "").1;
    assert_eq!(get("/echo"), "Welcome to SockJS!\n");
    let info = |path: &str| -> Value { serde_json::from_str(&get(path)).unwrap() };
    assert_eq!(info("/disabled_websocket_echo/info")["websocket"], false);
    assert_eq!(info("/cookie_needed_echo/info")["cookie_needed"], true);
    assert_eq!(
        exchange(addr, "GET", "/disabled_websocket_echo/websocket", None, "").0,
        404
    );

    let echo = |path: &str| exchange(addr, "POST", path, None, "").1;
    assert_eq!(echo("/echo/000/e/xhr"), "o\n");
    let sent = exchange(
        addr,
        "POST",
        "/echo/000/e/xhr_send",
        Some("text/plain"),
        r#"["a","b\u2028"]"#,
    );
    assert_eq!(sent.0, 204);
    assert_eq!(echo("/echo/000/e/xhr"), "a[\"a\",\"b\\u2028\"]\n");

    assert_eq!(echo("/close/000/c/xhr"), "o\n");
    assert_eq!(echo("/close/000/c/xhr"), "c[3000,\"Go away!\"]\n");
    assert_eq!(echo("/close/000/c/xhr"), "c[3000,\"Go away!\"]\n");
    let mut ws = Client::connect(addr, "/close/000/w/websocket");
    assert_eq!(text(&mut ws), "o");
    assert_eq!(text(&mut ws), "c[3000,\"Go away!\"]");
    assert_eq!(ws.expect_close(), (1000, "Normal closure".into()));

    let cookie = raw(
        addr,
        "POST /cookie_needed_echo/000/k/xhr HTTP/1.1\r\nHost: t\r\nCookie: JSESSIONID=abcdef\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(
        cookie.contains("Set-Cookie: JSESSIONID=abcdef; path=/\r\n"),
        "{cookie}"
    );
    let jsonp = raw(
        addr,
        "GET /cookie_needed_echo/000/kj/jsonp?c=cb HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        jsonp.contains("Set-Cookie: JSESSIONID=dummy; path=/\r\n"),
        "{jsonp}"
    );
}

#[test]
fn idle_receivers_get_heartbeats_and_abandoned_sessions_end() {
    use std::time::{Duration, Instant};
    let heartbeat = Duration::from_millis(500);
    let delay = Duration::from_millis(600);
    let server = common::server_with(|c| {
        c.sockjs_heartbeat_interval = heartbeat;
        c.sockjs_disconnect_delay = delay;
    });
    let addr = server.local_addr();
    let poll_world = |session: &str| {
        let path = format!("/sockjs/world/default/000/{session}/xhr");
        exchange(addr, "POST", &path, None, "").1
    };
    // Each timing both ways: not before its setting, and not long after it (the
    // sessions are swept every quarter of the delay; a loaded machine adds a little).
    let tolerance = Duration::from_millis(400);
    assert_eq!(poll_world("quiet"), "o\n");
    let began = Instant::now();
    assert_eq!(
        poll_world("quiet"),
        "h\n",
        "nothing to say within the heartbeat"
    );
    let waited = began.elapsed();
    assert!(
        waited >= heartbeat - Duration::from_millis(50) && waited < heartbeat + tolerance,
        "a heartbeat after {waited:?}, every {heartbeat:?}"
    );
    std::thread::sleep(delay - Duration::from_millis(250));
    assert_eq!(
        poll_world("quiet"),
        "h\n",
        "within the delay: the same session"
    );
    std::thread::sleep(delay + tolerance);
    assert_eq!(
        poll_world("quiet"),
        "o\n",
        "the session ended; this is a new one"
    );
}

#[test]
fn a_hostile_chunked_send_is_refused_and_every_shard_carries_on() {
    let server = common::server();
    let addr = server.local_addr();
    for session in ["h1", "h2", "h3", "h4"] {
        let answer = raw(
            addr,
            &format!(
                "POST /sockjs/turntable/000/{session}/xhr_send HTTP/1.1\r\nHost: t\r\n\
                 Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\nffffffffffffffff\r\nab"
            ),
        );
        // An answer at all: a shard that panicked on it would just drop the connection.
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.ends_with("broken chunked body\n"), "{answer}");
    }
    let mut shards = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let c = Client::connect(addr, "/sockjs/turntable/websocket");
        shards.insert(c.shard);
    }
    assert_eq!(shards.len(), 2, "both shards still accept");
    assert_eq!(poll(addr, "after"), "o\n");
}

#[test]
fn a_session_the_server_closed_takes_no_more_messages() {
    let server = common::server_with(|c| c.api_key = Some("an-api-key-for-the-tests".into()));
    let addr = server.local_addr();
    assert_eq!(poll(addr, "bob"), "o\n");
    poll(addr, "bob");
    send(addr, "bob", &[json!({"command":"idme","data":"bob"})]);
    assert!(poll(addr, "bob").contains("identified"));
    let kicked = raw(
        addr,
        "POST /api/users/bob/disconnect HTTP/1.1\r\nHost: t\r\nAuthorization: apikey an-api-key-for-the-tests\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert!(kicked.contains("\"disconnected\":1"), "{kicked}");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (status, body) = send(addr, "bob", &[json!({"command":"status","data":"busy"})]);
    assert_eq!(
        (status, body),
        (204, String::new()),
        "accepted, and dropped"
    );
    let users = raw(
        addr,
        "GET /api/users/bob HTTP/1.1\r\nHost: t\r\nAuthorization: apikey an-api-key-for-the-tests\r\nConnection: close\r\n\r\n",
    );
    assert!(users.contains("\"status\":\"offline\""), "{users}");
    assert_eq!(
        poll(addr, "bob"),
        "c[4003,\"disconnected by the server\"]\n"
    );
}

#[test]
fn the_websocket_transport_is_pinged_every_heartbeat() {
    let server = common::server_with(|c| {
        c.sockjs_heartbeat_interval = std::time::Duration::from_millis(200)
    });
    let mut c = Client::connect(
        server.local_addr(),
        "/sockjs/world/default/000/hb/websocket",
    );
    assert_eq!(text(&mut c), "o");
    let started = std::time::Instant::now();
    let mut pings = 0;
    while pings < 2 {
        match c.ws.read().expect("a frame") {
            Message::Ping(_) => pings += 1,
            other => panic!("expected a heartbeat ping, got {other:?}"),
        }
    }
    // Two heartbeats: not before two intervals, and not long after.
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(350)
            && took < std::time::Duration::from_millis(800),
        "two heartbeats in {took:?}, one every 200 ms"
    );
}

#[test]
fn an_oversize_message_over_http_closes_the_session_as_on_a_websocket() {
    let server = common::server_with(|c| c.max_message_bytes = 256);
    let addr = server.local_addr();
    assert_eq!(poll(addr, "big"), "o\n");
    assert!(poll(addr, "big").contains("idyou"));
    let huge = json!({"command":"idme","data":"x".repeat(300)});
    assert_eq!(send(addr, "big", &[huge]).0, 204);
    assert_eq!(poll(addr, "big"), "c[1009,\"message too big\"]\n");
}

#[test]
fn http_transport_answers_are_counted_in_the_metrics() {
    let server = common::server();
    let addr = server.local_addr();
    assert_eq!(poll(addr, "counted"), "o\n");
    let idme = json!({"command":"idme","data":"counted"});
    assert_eq!(send(addr, "counted", &[idme]).0, 204);
    let no_content = || {
        common::get(addr, "/metrics")
            .1
            .lines()
            .filter(|l| {
                l.starts_with("turntable_http_responses_total{") && l.contains("status=\"204\"")
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    common::eventually(|| no_content() == 1.0);
}

#[test]
fn the_same_session_id_under_two_prefixes_is_two_sessions() {
    let server = common::server();
    let addr = server.local_addr();
    assert_eq!(poll(addr, "twin"), "o\n");
    let to_talker = exchange(
        addr,
        "POST",
        "/sockjs/talker/000/twin/xhr_send",
        Some("text/plain"),
        r#"["{\"type\":\"ping\"}"]"#,
    );
    assert_eq!(to_talker, (404, "404 Error: Page not found\n".into()));
    assert!(
        poll(addr, "twin").contains("idyou"),
        "the turntable session is untouched"
    );
}

#[test]
fn a_waiting_receiver_hears_the_shutdown_as_a_websocket_does() {
    use std::io::{Read, Write};
    let server = common::server();
    let addr = server.local_addr();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
    stream
        .write_all(b"POST /sockjs/turntable/000/late/xhr_streaming HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Attached once the session's greeting has come through the stream.
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("idyou") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    server.stop();
    let _ = stream.read_to_end(&mut seen);
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.contains("c[1001,\"server shutting down\"]\n"),
        "{seen}"
    );
}

/// Sends a polling request for `session` on a kept-alive connection and reads its
/// response: the status and the (dechunked) body.
fn poll_kept_alive(stream: &mut std::net::TcpStream, session: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let request = format!(
        "POST /sockjs/turntable/000/{session}/xhr HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status = head[9..12].parse().unwrap();
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked")
            {
                if body.ends_with("0\r\n\r\n") {
                    return (status, dechunked(body));
                }
            } else if let Some(len) = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            }) && body.len() >= len.trim().parse::<usize>().unwrap()
            {
                return (status, body.to_owned());
            }
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "connection closed after: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_polling_client_gets_its_close_frame_after_the_messages_queued_before_a_shutdown() {
    let server = common::server();
    let addr = server.local_addr();
    let home = turntable::engine::Placement::single_node(2)
        .owner("owed")
        .shard;
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(common::PATIENCE)).unwrap();
    assert_eq!(poll_kept_alive(&mut client, "owed"), (200, "o\n".into()));
    // A WebSocket on the session's shard hears when that shard starts to drain.
    let mut watcher = common::Client::connect_on_shard(addr, "/turntable", home);
    watcher.recv();
    server.stop();
    assert_eq!(
        watcher.expect_close(),
        (1001, "server shutting down".into())
    );
    // The client comes back after the drain began: the greeting queued before it comes
    // first, then the close frame.
    let (status, queued) = poll_kept_alive(&mut client, "owed");
    assert_eq!((status, queued.contains("idyou")), (200, true), "{queued}");
    assert_eq!(
        poll_kept_alive(&mut client, "owed"),
        (200, "c[1001,\"server shutting down\"]\n".into())
    );
}

#[test]
fn an_htmlfile_frame_cannot_end_its_script() {
    use std::io::{Read, Write};
    let server = common::server_with(|c| c.sockjs_test_services = true);
    let addr = server.local_addr();
    let mut page = std::net::TcpStream::connect(addr).unwrap();
    page.set_read_timeout(Some(common::PATIENCE)).unwrap();
    page.write_all(b"GET /echo/000/hx/htmlfile?c=cb HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut read_until = |seen: &mut Vec<u8>, needle: &str| {
        while !String::from_utf8_lossy(seen).contains(needle) {
            let n = page.read(&mut chunk).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(seen));
            seen.extend_from_slice(&chunk[..n]);
        }
    };
    read_until(&mut seen, "p(\"o\")");
    let sent = exchange(
        addr,
        "POST",
        "/echo/000/hx/xhr_send",
        Some("text/plain"),
        r#"["</script><script>alert(1)</script>"]"#,
    );
    assert_eq!(sent.0, 204);
    // The whole frame: up to the end of its script call.
    read_until(&mut seen, "\"]\");");
    let seen = String::from_utf8_lossy(&seen);
    let frame = seen.rsplit("<script>\np(").next().unwrap();
    assert!(
        frame.starts_with(r#""a[\"\u003c/script>\u003cscript>alert(1)\u003c/script>\"]");"#),
        "{frame}"
    );
}

/// Polls `session` until the frames it got contain `needle`.
fn poll_until(addr: SocketAddr, session: &str, needle: &str) {
    let deadline = std::time::Instant::now() + common::PATIENCE;
    let mut seen = String::new();
    while !seen.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in {seen}"
        );
        seen += &poll(addr, session);
    }
}

#[test]
fn a_send_with_two_content_lengths_is_refused_and_nothing_is_published() {
    let server = common::server();
    let addr = server.local_addr();
    let mut member = Client::connect(addr, "/turntable");
    member.recv();
    member.send(json!({"command":"idme","data":"1:1"}));
    member.recv();
    member.send(json!({"command":"joingame","data":{"channel":"arena","self":"1:1"}}));
    assert_eq!(member.recv()["command"], "joined");

    let session = "smuggler";
    assert_eq!(poll(addr, session), "o\n");
    assert_eq!(
        send(addr, session, &[json!({"command":"idme","data":"2:2"})]).0,
        204
    );
    poll_until(addr, session, "identified");
    let join = json!({"command":"joingame","data":{"channel":"arena","self":"2:2"}});
    assert_eq!(send(addr, session, &[join]).0, 204);
    poll_until(addr, session, "joined");
    assert_eq!(member.recv()["command"], "memberjoined");

    let game =
        json!({"command":"game","data":{"channel":"arena","actions":[{"from":"2:2","data":{}}]}});
    let body = serde_json::to_string(&[game.to_string()]).unwrap();
    let path = format!("/sockjs/turntable/000/{session}/xhr_send");
    let smuggled = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for (framing, both) in common::ambiguous_framings(&body, &smuggled) {
        let answer = raw(
            addr,
            &format!("POST {path} HTTP/1.1\r\nHost: t\r\n{framing}\r\n{both}"),
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{framing}: {answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "one answer: {answer}"
        );
    }
    member.expect_silence(std::time::Duration::from_millis(300));
    // The same send with one length is published.
    assert_eq!(send(addr, session, &[game]).0, 204);
    assert_eq!(member.recv()["command"], "game");
}
