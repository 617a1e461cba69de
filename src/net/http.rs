//! HTTP for the front door: what a request head can become ([`Decision`]), the
//! WebSocket upgrade, and the helpers every HTTP answer is built with. The router
//! (`router`) reads request heads and decides.

use std::fmt::Write;

use super::dashboard_access::{Page, Request as DashboardRequest};
use super::sockjs_request::TransportRequest;
use super::ws;
use crate::protocol::Opening;
use crate::protocol::json;

/// Request heads longer than this are refused with 431.
pub const MAX_HEAD_BYTES: usize = 8192;

/// Where a request goes once it is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket (or, under `/sockjs/`, a SockJS session) of a dialect.
    Dialect(Opening),
    /// `GET /healthz`: liveness and connection counts as JSON.
    Healthz,
    /// `GET /readyz`: whether the server takes traffic (every shard accepting, not
    /// shutting down).
    Readyz,
    /// `GET /cluster`: the nodes, which are alive, and how ids are placed on them.
    Cluster,
    /// `GET /metrics`: the figures, in the format the scraper asked for.
    Metrics(super::exposition::Format),
    /// `/api/...`: the HTTP API for application servers (see `net::api`).
    Api,
    /// `/dashboard` and what is under it (see `net::dashboard`).
    Dashboard(Page),
}

/// API request bodies longer than this are refused with 413.
pub const MAX_API_BODY: usize = 64 << 10;

/// An HTTP API request head, with what the API needs of it.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: String,
    /// The path without its query string, still percent-encoded.
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The body's length (`Content-Length`), read after the head.
    pub body_len: usize,
    pub keep_alive: bool,
}

/// The routes this server offers; optional ones are switched on by settings.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    pub echo: bool,
    /// The web pages that may open WebSockets and SockJS sessions.
    pub origins: super::origins::AllowedOrigins,
    /// The sockjs-protocol test services (`/echo`, `/close`, ...), which take over `/echo`.
    pub sockjs_test_services: bool,
}

/// What to do with a complete request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Switch to WebSocket after writing `response` (a 101 ending in a blank line);
    /// `sockjs`: the dialect travels in SockJS frames.
    Upgrade {
        opening: Opening,
        response: Vec<u8>,
        sockjs: bool,
    },
    /// Answer over HTTP, then keep reading requests if `keep_alive`.
    Http { route: Route, keep_alive: bool },
    /// Read the body, then answer an API request.
    Api(ApiRequest),
    /// Read the body (a sign-in form's), then serve the dashboard.
    Dashboard(DashboardRequest),
    /// Write `response`, then keep reading requests (it was made for this request).
    Respond { response: Vec<u8> },
    /// Serve a SockJS HTTP transport request on its session's shard.
    SockJs(Box<TransportRequest>),
    /// Write `response` and close.
    Reject { response: Vec<u8> },
}

/// The parser's verdict on the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Keep reading: the head is not complete yet.
    Incomplete,
    /// The head is `head_len` bytes long; what follows belongs to the next phase.
    Done { head_len: usize, decision: Decision },
}

/// The 101 switching `request` to a WebSocket on `route` (in SockJS frames if
/// `sockjs`), or the refusal of a request that is not a valid upgrade.
pub fn upgrade(request: &httparse::Request<'_, '_>, opening: Opening, sockjs: bool) -> Decision {
    if has_body(request) {
        return reject(400, "a WebSocket upgrade has no body\n", &[]);
    }
    let upgrade = header(request, "upgrade").is_some_and(|v| has_token(v, "websocket"));
    let connection = header(request, "connection").is_some_and(|v| has_token(v, "upgrade"));
    if !upgrade {
        return reject(
            426,
            "this endpoint speaks WebSocket\n",
            &[("Upgrade", "websocket")],
        );
    }
    // An upgrade asked for with a Connection header that does not carry it is a
    // malformed request (the sockjs-protocol suite's test_invalidConnectionHeader).
    if !connection {
        return reject(400, "\"Connection\" must be \"Upgrade\"\n", &[]);
    }
    if header(request, "sec-websocket-version").map(str::trim) != Some("13") {
        return reject(
            426,
            "unsupported WebSocket version\n",
            &[("Sec-WebSocket-Version", "13")],
        );
    }
    let key = header(request, "sec-websocket-key").map(str::trim);
    let Some(key) = key.filter(|k| is_websocket_key(k)) else {
        return reject(400, "missing or invalid Sec-WebSocket-Key\n", &[]);
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        ws::accept_key(key.as_bytes())
    );
    Decision::Upgrade {
        opening,
        response: response.into_bytes(),
        sockjs,
    }
}

/// `{"error":{"code","message"}}`, the API's error body.
pub fn api_error(code: &str, message: &str) -> Vec<u8> {
    let mut body = br#"{"error":{"code":"#.to_vec();
    json::write_str(&mut body, code);
    body.extend_from_slice(br#","message":"#);
    json::write_str(&mut body, message);
    body.extend_from_slice(b"}}");
    body
}

/// The value of the first header named `name` (case-insensitive), if it is text.
pub fn header<'a>(request: &httparse::Request<'_, 'a>, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// True if the comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A key is the base64 encoding of 16 bytes: 22 characters and `==`.
fn is_websocket_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 24
        && bytes.ends_with(b"==")
        && bytes[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// The client wants the connection kept open after this request.
pub fn keep_alive(request: &httparse::Request<'_, '_>) -> bool {
    let connection = header(request, "connection");
    if request.version == Some(0) {
        connection.is_some_and(|v| has_token(v, "keep-alive"))
    } else {
        !connection.is_some_and(|v| has_token(v, "close"))
    }
}

pub fn reject(status: u16, body: &str, extra: &[(&str, &str)]) -> Decision {
    Decision::Reject {
        response: response(status, extra, "text/plain", body.as_bytes(), false),
    }
}

/// Whether a body follows the head (a route that reads none must not keep the
/// connection, or the body would be read as the next request).
pub fn has_body(request: &httparse::Request<'_, '_>) -> bool {
    header(request, "content-length").is_some_and(|v| v.trim() != "0")
        || header(request, "transfer-encoding").is_some()
}

/// Decodes `%XX` escapes (a path segment or query value); `None` if one is malformed
/// or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly (from_str_radix alone would take `%+1`).
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes a form-encoded (`application/x-www-form-urlencoded`) value: `+` is a space.
pub fn form_decode(s: &str) -> Option<String> {
    percent_decode(&s.replace('+', " "))
}

/// The status code of a response this module made.
pub fn status_of(response: &[u8]) -> u16 {
    std::str::from_utf8(response.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A complete HTTP/1.1 response with a body.
pub fn respond(status: u16, content_type: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    response(status, &[], content_type, body, keep_alive)
}

/// A complete HTTP/1.1 response with extra headers, a content type and a length, and
/// `Cache-Control: no-store` unless `extra` says otherwise.
pub fn response(
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let head = Head::new(status)
        .headers(extra)
        .header("Content-Type", content_type)
        .header("Content-Length", body.len());
    let cached = extra
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("cache-control"));
    let head = if cached {
        head
    } else {
        head.header("Cache-Control", "no-store")
    };
    head.end(keep_alive, body)
}

/// An HTTP/1.1 response head written header by header, for the responses outside
/// [`response`]'s shape: empty bodies, bodies without a content type, streams.
pub struct Head(String);

impl Head {
    pub fn new(status: u16) -> Head {
        let mut head = String::with_capacity(192);
        let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
        Head(head)
    }

    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Head {
        let _ = write!(self.0, "{name}: {value}\r\n");
        self
    }

    pub fn headers<V: AsRef<str>>(self, headers: &[(&str, V)]) -> Head {
        headers.iter().fold(self, |head, (name, value)| {
            head.header(name, value.as_ref())
        })
    }

    /// The `Connection` header, the end of the head, then `body`.
    pub fn end(self, keep_alive: bool, body: &[u8]) -> Vec<u8> {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let mut bytes = self.header("Connection", connection).0.into_bytes();
        bytes.reserve(2 + body.len());
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(body);
        bytes
    }
}

/// Every status this server answers with and its reason phrase (the metrics count
/// responses by these too).
pub const STATUSES: [(u16, &str); 19] = [
    (101, "Switching Protocols"),
    (200, "OK"),
    (204, "No Content"),
    (303, "See Other"),
    (304, "Not Modified"),
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (409, "Conflict"),
    (411, "Length Required"),
    (413, "Content Too Large"),
    (415, "Unsupported Media Type"),
    (426, "Upgrade Required"),
    (429, "Too Many Requests"),
    (431, "Request Header Fields Too Large"),
    (500, "Internal Server Error"),
    (503, "Service Unavailable"),
];

fn reason_phrase(status: u16) -> &'static str {
    STATUSES
        .iter()
        .find(|(code, _)| *code == status)
        .map_or("", |(_, reason)| reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_form_decoding() {
        assert_eq!(
            percent_decode("world%3Adefault%3Alobby").unwrap(),
            "world:default:lobby"
        );
        assert_eq!(percent_decode("caf%C3%A9").unwrap(), "café");
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert!(percent_decode("bad%2").is_none());
        assert!(percent_decode("%ff").is_none());
        for lax in ["%+1", "%-1", "%1g", "% 1"] {
            assert!(percent_decode(lax).is_none(), "{lax}");
        }
        assert_eq!(form_decode("a+b%2Bc").unwrap(), "a b+c");
    }
}
