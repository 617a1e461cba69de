//! Cross-site WebSocket hijacking: a page of another site cannot open a WebSocket or a
//! SockJS session (403), whatever the dialect, unless `allowed_origins` names it; the
//! server's own pages and clients that send no Origin (not browsers) connect; SockJS's
//! `/info` reports the origins it takes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use common::{http, server, server_with};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The status line of an upgrade request (read alone: an upgraded connection stays
/// open).
fn upgrade(addr: SocketAddr, path: &str, host: &str, origin: Option<&str>) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Upgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

fn sockjs_send(addr: SocketAddr, origin: &str) -> String {
    let response = http(
        addr,
        &format!(
            "POST /sockjs/turntable/000/abcdefgh/xhr HTTP/1.1\r\nHost: chat.example\r\n\
             Origin: {origin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    response.lines().next().unwrap_or("").to_owned()
}

#[test]
fn pages_of_other_sites_are_refused_by_default_in_every_dialect() {
    let server = server();
    let addr = server.local_addr();
    for path in [
        "/turntable",
        "/talker",
        "/socketcluster/",
        "/ws/world/default",
    ] {
        let evil = upgrade(
            addr,
            path,
            "chat.example:7400",
            Some("https://evil.example"),
        );
        assert!(evil.starts_with("HTTP/1.1 403"), "{path}: {evil}");
        let own = upgrade(
            addr,
            path,
            "chat.example:7400",
            Some("http://chat.example:7400"),
        );
        assert!(own.starts_with("HTTP/1.1 101"), "{path}: {own}");
        let no_browser = upgrade(addr, path, "chat.example:7400", None);
        assert!(
            no_browser.starts_with("HTTP/1.1 101"),
            "{path}: {no_browser}"
        );
    }
    assert!(sockjs_send(addr, "https://evil.example").starts_with("HTTP/1.1 403"));
    assert!(sockjs_send(addr, "http://chat.example").starts_with("HTTP/1.1 200"));
    let info = http(
        addr,
        "GET /sockjs/turntable/info HTTP/1.1\r\nHost: chat.example\r\nConnection: close\r\n\r\n",
    );
    assert!(info.contains(r#""origins":["chat.example:80"]"#), "{info}");
}

#[test]
fn allowed_origins_names_the_sites_whose_pages_connect() {
    let server = server_with(|c| {
        c.allowed_origins = vec![
            "https://app.example".into(),
            "https://*.games.example".into(),
        ]
    });
    let addr = server.local_addr();
    let status = |origin| upgrade(addr, "/turntable", "ws.example", Some(origin));
    assert!(status("https://app.example").starts_with("HTTP/1.1 101"));
    assert!(status("https://eu.games.example").starts_with("HTTP/1.1 101"));
    assert!(status("https://games.example").starts_with("HTTP/1.1 403"));
    assert!(
        status("http://app.example").starts_with("HTTP/1.1 403"),
        "the scheme counts"
    );
    assert!(
        status("https://ws.example").starts_with("HTTP/1.1 403"),
        "listed means only those"
    );
    let info = http(
        addr,
        "GET /sockjs/turntable/info HTTP/1.1\r\nHost: ws.example\r\nConnection: close\r\n\r\n",
    );
    assert!(
        info.contains(r#""origins":["app.example:443","*.games.example:443"]"#),
        "{info}"
    );
}

#[test]
fn a_bad_origin_pattern_is_refused_at_start() {
    let (code, _, stderr) =
        common::run_binary(&["serve", "--check", "--allowed-origins", "evil.example"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("allowed_origins") && stderr.contains("not an origin pattern"),
        "{stderr}"
    );
}
