//! SockJS on a 2-shard server: the real `sockjs-client` (1.6.1, through
//! `tests/interop/sockjs.mjs`) over the WebSocket transport, the SockJS framing seen
//! frame by frame with a plain WebSocket client, and the HTTP endpoints under a prefix
//! (greeting, `/info`, the iframe page, refusals) as sockjs-node answers them.

mod common;

use std::net::SocketAddr;

use common::Client;
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

#[test]
fn the_real_sockjs_client_speaks_the_dialects_over_websocket() {
    let server = common::server();
    let base = format!("http://{}", server.local_addr());
    common::node::run_harness("sockjs.mjs", &["--base", &base, "--transport", "websocket"]);
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
    assert_eq!(text(&mut c), r#"c[3000,"Broken framing."]"#);
    assert_eq!(c.expect_close(), (1000, "Normal closure".into()));
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
    let server = common::server();
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
