//! SockJS over raw HTTP for the tests: one exchange per fresh connection, and the
//! `xhr` / `xhr_send` requests of a turntable v1 session under `/sockjs/turntable`.

use std::net::SocketAddr;

use serde_json::Value;

/// One HTTP exchange on a fresh connection: status and body (chunked bodies joined).
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(t) = content_type {
        request += &format!("Content-Type: {t}\r\n");
    }
    request += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    let response = super::http(addr, &request);
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunked(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// A chunked body's chunks joined.
pub fn dechunked(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            break;
        }
        out += &rest[..size];
        body = &rest[size + 2..];
    }
    out
}

/// One `xhr` poll of a turntable v1 session: the frame it returns.
pub fn poll(addr: SocketAddr, session: &str) -> String {
    exchange(
        addr,
        "POST",
        &format!("/sockjs/turntable/000/{session}/xhr"),
        None,
        "",
    )
    .1
}

/// One `xhr_send` of a turntable v1 session: status and body.
pub fn send(addr: SocketAddr, session: &str, messages: &[Value]) -> (u16, String) {
    let body: Vec<String> = messages.iter().map(Value::to_string).collect();
    let body = serde_json::to_string(&body).unwrap();
    exchange(
        addr,
        "POST",
        &format!("/sockjs/turntable/000/{session}/xhr_send"),
        Some("text/plain"),
        &body,
    )
}
