//! The HTTP front door and the process around it: routing, health, refusals, the echo
//! route, the command line, config files and graceful shutdown on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::{Client, get, http, run_binary, server, server_with, spawn_binary};
use tungstenite::Message;

#[test]
fn healthz_reports_shards_and_connections() {
    let server = server();
    let addr = server.local_addr();
    let _a = Client::connect_on_shard(addr, "/turntable", 0);
    let _b = Client::connect_on_shard(addr, "/turntable", 1);
    std::thread::sleep(Duration::from_millis(100));
    let (status, body) = get(addr, "/healthz");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["shards"], 2);
    assert_eq!(health["connections"], 2);
    assert_eq!(health["per_shard"], serde_json::json!([1, 1]));
}

#[test]
fn refusals_have_the_right_status() {
    let server = server();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/nowhere").0, 404);
    assert_eq!(get(addr, "/echo").0, 404, "echo is off by default");
    let plain = http(addr, "GET /turntable HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
    let malformed = http(addr, "GARBAGE\r\n\r\n");
    assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let oversize = http(addr, &huge);
    assert!(oversize.starts_with("HTTP/1.1 431"), "{oversize}");
    let bad_version = http(
        addr,
        "GET /turntable HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert!(bad_version.starts_with("HTTP/1.1 426"), "{bad_version}");
    let bad_connection = http(
        addr,
        "GET /sockjs/turntable/000/abcdefgh/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n\
         Connection: close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(
        bad_connection.starts_with("HTTP/1.1 400") && bad_connection.contains("\"Connection\""),
        "an upgrade without Connection: Upgrade is malformed: {bad_connection}"
    );
    // The server is still fine.
    assert_eq!(get(addr, "/healthz").0, 200);
}

#[test]
fn echo_route_returns_each_message_with_its_opcode() {
    let server = server_with(|c| c.echo = true);
    let mut c = Client::connect(server.local_addr(), "/echo");
    c.ws.send(Message::text("héllo")).unwrap();
    assert_eq!(c.next(), Message::text("héllo"));
    c.ws.send(Message::binary(vec![0u8, 255, 7])).unwrap();
    assert_eq!(c.next(), Message::binary(vec![0u8, 255, 7]));
}

#[test]
fn sigterm_closes_connections_with_1001_and_exits_cleanly() {
    let (mut child, line) = spawn_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "2",
        "--pin=false",
    ]);
    let rest = line
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let (port, shards) = rest.trim_end().split_once(' ').unwrap();
    assert_eq!(shards, "(2 shards)");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Client::connect(addr, "/turntable");
    c.recv();

    let started = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(c.expect_close(), (1001, "server shutting down".to_owned()));
    c.close();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn invalid_settings_fail_at_start_naming_the_setting() {
    let (code, _, err) = run_binary(&["serve", "--shards", "0"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("invalid setting shards"), "{err}");

    let dir = std::env::temp_dir().join(format!("turntable-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "max_message_bytes = 10\n").unwrap();
    let (code, _, err) = run_binary(&["serve", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid setting max_message_bytes"), "{err}");

    std::fs::write(&file, "shardz = 2\n").unwrap();
    let (code, _, err) = run_binary(&["serve", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("shardz"), "{err}");
}

#[test]
fn flags_override_the_config_file() {
    let dir = std::env::temp_dir().join(format!("turntable-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ok.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nshards = 1\npin = false\necho = true\n",
    )
    .unwrap();
    let (mut child, line) =
        spawn_binary(&["serve", "--config", file.to_str().unwrap(), "--shards", "2"]);
    assert!(line.ends_with("(2 shards)\n"), "{line}");
    let port = line.split(':').nth(1).unwrap().split(' ').next().unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Client::connect(addr, "/echo");
    c.send_text("from the file");
    assert_eq!(c.next(), Message::text("from the file"));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn frames_sent_with_the_upgrade_request_are_handled() {
    use std::io::{Read, Write};
    use turntable::net::ws::{Opcode, encode_frame};
    let server = server();
    let mut request = b"GET /turntable HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    encode_frame(
        &mut request,
        Opcode::Text,
        br#"{"command":"idme","data":"early"}"#,
        Some([1, 2, 3, 4]),
    );
    let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
    stream.write_all(&request).unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(r#""identified""#) {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 101"), "{seen}");
    assert!(
        seen.contains(r#"{"command":"identified","data":{"id":"early"}}"#),
        "{seen}"
    );
}
