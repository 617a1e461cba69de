//! The HTTP front door: parses a request head once and decides what the connection
//! becomes — a WebSocket of some dialect, a plain HTTP answer, or a refusal.
//!
//! This is the one router: a new dialect or endpoint is one more arm in [`route`].

use std::fmt::Write;

use super::{sockjs, ws};
use crate::protocol::{DialectKind, json};

/// Request heads longer than this are refused with 431.
pub const MAX_HEAD_BYTES: usize = 8192;
/// Headers beyond this count are refused with 431.
const MAX_HEADERS: usize = 48;

/// Where a request goes once it is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket (or, under `/sockjs/`, a SockJS session) of a dialect.
    Dialect(Opening),
    /// `GET /healthz`: liveness and connection counts as JSON.
    Healthz,
    /// `GET /metrics`: the Prometheus text exposition.
    Metrics,
    /// `/api/...`: the HTTP API for application servers (see `net::api`).
    Api,
}

/// A dialect connection a route opens: the dialect, and what the path names beyond it
/// (a World id), for the dialect to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    pub dialect: DialectKind,
    pub arg: Option<Box<str>>,
}

impl Opening {
    pub fn of(dialect: DialectKind) -> Opening {
        Opening { dialect, arg: None }
    }
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
    /// Write `response`, then keep reading requests (it was made for this request).
    Respond { response: Vec<u8> },
    /// Serve a SockJS HTTP transport request on its session's shard.
    SockJs(Box<sockjs::TransportRequest>),
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

/// Parses the request head at the start of `buf` and routes it.
pub fn parse_request(buf: &[u8], routes: &Routes) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Parsed::Incomplete,
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {
            return done(
                buf.len(),
                reject(431, "request header fields too large\n", &[]),
            );
        }
        Err(_) => return done(buf.len(), reject(400, "malformed request\n", &[])),
    };
    Parsed::Done {
        head_len,
        decision: decide(&request, routes),
    }
}

fn done(head_len: usize, decision: Decision) -> Parsed {
    Parsed::Done { head_len, decision }
}

fn route(path: &str, routes: &Routes) -> Option<Route> {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let dialect = |dialect| Some(Route::Dialect(Opening::of(dialect)));
    match path {
        "/turntable" => dialect(DialectKind::Turntable),
        "/talker" => dialect(DialectKind::Talker),
        "/socketcluster/" | "/socketcluster" => dialect(DialectKind::SocketCluster),
        "/echo" if routes.echo => dialect(DialectKind::Echo),
        "/healthz" => Some(Route::Healthz),
        "/metrics" => Some(Route::Metrics),
        _ if path == "/api" || path.starts_with("/api/") => Some(Route::Api),
        _ => {
            let id = path.strip_prefix("/ws/world/")?;
            let id = id.strip_suffix('/').unwrap_or(id);
            Some(Route::Dialect(Opening {
                dialect: DialectKind::World,
                arg: Some(Box::from(id)),
            }))
        }
    }
}

fn decide(request: &httparse::Request<'_, '_>, routes: &Routes) -> Decision {
    let path = request.path.unwrap_or("/");
    let sockjs_path = path.starts_with("/sockjs/")
        || (routes.sockjs_test_services
            && sockjs::TEST_SERVICES.iter().any(|p| path.starts_with(p)));
    if sockjs_path
        && let Some(decision) =
            sockjs::decide(request, path.split('?').next().unwrap_or(path), routes)
    {
        return decision;
    }
    let Some(route) = route(path, routes) else {
        return reject(404, "not found\n", &[]);
    };
    if route == Route::Api {
        return api_request(request);
    }
    if request.method != Some("GET") {
        return reject(405, "method not allowed\n", &[("Allow", "GET")]);
    }
    let Route::Dialect(opening) = route else {
        let keep_alive = !has_body(request) && keep_alive(request);
        return Decision::Http { route, keep_alive };
    };
    upgrade(request, opening, false)
}

/// The 101 switching `request` to a WebSocket on `route` (in SockJS frames if
/// `sockjs`), or the refusal of a request that is not a valid upgrade.
pub fn upgrade(request: &httparse::Request<'_, '_>, opening: Opening, sockjs: bool) -> Decision {
    if has_body(request) {
        return reject(400, "a WebSocket upgrade has no body\n", &[]);
    }
    let upgrade = header(request, "upgrade").is_some_and(|v| has_token(v, "websocket"));
    let connection = header(request, "connection").is_some_and(|v| has_token(v, "upgrade"));
    if !upgrade || !connection {
        return reject(
            426,
            "this endpoint speaks WebSocket\n",
            &[("Upgrade", "websocket")],
        );
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

/// An API request, or its refusal when its body cannot be read: the API takes bodies
/// with a `Content-Length` of at most [`MAX_API_BODY`] bytes.
fn api_request(request: &httparse::Request<'_, '_>) -> Decision {
    if header(request, "transfer-encoding").is_some() {
        return api_reject(
            411,
            "api.length_required",
            "send the body with a Content-Length",
        );
    }
    let body_len = match header(request, "content-length").map(|v| v.trim().parse::<usize>()) {
        None => 0,
        Some(Ok(n)) if n <= MAX_API_BODY => n,
        Some(Ok(_)) => {
            return api_reject(413, "api.too_large", "the body is over 65536 bytes");
        }
        Some(Err(_)) => return api_reject(400, "api.malformed", "invalid Content-Length"),
    };
    let path = request.path.unwrap_or("/");
    Decision::Api(ApiRequest {
        method: request.method.unwrap_or("").to_owned(),
        path: path.split_once('?').map_or(path, |(p, _)| p).to_owned(),
        authorization: header(request, "authorization").map(str::to_owned),
        content_type: header(request, "content-type").map(str::to_owned),
        body_len,
        keep_alive: keep_alive(request),
    })
}

/// A JSON API error that closes the connection (the body, if any, is not read).
fn api_reject(status: u16, code: &str, message: &str) -> Decision {
    Decision::Reject {
        response: response(
            status,
            &[],
            "application/json",
            &api_error(code, message),
            false,
        ),
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

fn reject(status: u16, body: &str, extra: &[(&str, &str)]) -> Decision {
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
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
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
pub const STATUSES: [(u16, &str); 17] = [
    (101, "Switching Protocols"),
    (200, "OK"),
    (204, "No Content"),
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

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

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
        assert_eq!(form_decode("a+b%2Bc").unwrap(), "a b+c");
    }

    fn parse(request: &str) -> Parsed {
        parse_request(
            request.as_bytes(),
            &Routes {
                echo: true,
                ..Routes::default()
            },
        )
    }

    fn status_of(request: &str) -> String {
        match parse(request) {
            Parsed::Done {
                decision: Decision::Reject { response },
                ..
            }
            | Parsed::Done {
                decision: Decision::Upgrade { response, .. },
                ..
            } => String::from_utf8(response).unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn upgrade(path: &str, extra: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    #[test]
    fn upgrades_websocket_routes_and_reports_the_head_length() {
        let request = upgrade("/turntable?v=1", "");
        let mut bytes = request.clone().into_bytes();
        bytes.extend_from_slice(b"\x81\x80");
        match parse_request(&bytes, &Routes::default()) {
            Parsed::Done {
                head_len,
                decision:
                    Decision::Upgrade {
                        opening, response, ..
                    },
            } => {
                assert_eq!(head_len, request.len());
                assert_eq!(opening, Opening::of(DialectKind::Turntable));
                let response = String::from_utf8(response).unwrap();
                assert!(response.starts_with("HTTP/1.1 101"));
                assert!(
                    response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
                );
                assert!(response.ends_with("\r\n\r\n"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn echo_exists_only_when_enabled() {
        let request = upgrade("/echo", "");
        assert!(matches!(
            parse_request(request.as_bytes(), &Routes::default()),
            Parsed::Done {
                decision: Decision::Reject { .. },
                ..
            }
        ));
        assert!(status_of(&request).starts_with("HTTP/1.1 101"));
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert_eq!(
            parse("GET /turntable HTTP/1.1\r\nHost:"),
            Parsed::Incomplete
        );
    }

    #[test]
    fn refusals_carry_the_right_status() {
        assert!(status_of("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(status_of("GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400"));
        let post = status_of("POST /turntable HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET"));
        let plain = status_of("GET /turntable HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(plain.starts_with("HTTP/1.1 426") && plain.contains("Upgrade: websocket"));
        let version = status_of(&upgrade("/turntable", "").replace("Version: 13", "Version: 8"));
        assert!(
            version.starts_with("HTTP/1.1 426") && version.contains("Sec-WebSocket-Version: 13")
        );
        let key = status_of(&upgrade("/turntable", "").replace(KEY, "short"));
        assert!(key.starts_with("HTTP/1.1 400"));
    }

    #[test]
    fn oversize_heads_are_refused() {
        let mut long = String::from("GET /turntable HTTP/1.1\r\n");
        while long.len() <= MAX_HEAD_BYTES {
            long.push_str("X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(status_of(&long).starts_with("HTTP/1.1 431"));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        assert!(status_of(&format!("GET / HTTP/1.1\r\n{many}\r\n")).starts_with("HTTP/1.1 431"));
    }

    #[test]
    fn http_routes_honour_keep_alive() {
        let decision = |request: &str| match parse(request) {
            Parsed::Done { decision, .. } => decision,
            Parsed::Incomplete => panic!("incomplete"),
        };
        assert_eq!(
            decision("GET /healthz HTTP/1.1\r\n\r\n"),
            Decision::Http {
                route: Route::Healthz,
                keep_alive: true
            }
        );
        assert_eq!(
            decision("GET /healthz HTTP/1.0\r\n\r\n"),
            Decision::Http {
                route: Route::Healthz,
                keep_alive: false
            }
        );
        assert_eq!(
            decision("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"),
            Decision::Http {
                route: Route::Healthz,
                keep_alive: false
            }
        );
    }
}
