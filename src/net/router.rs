//! The front door's router: parses a request head once and decides what the
//! connection becomes — a WebSocket of some dialect, a SockJS transport, the API, a
//! plain HTTP answer, or a refusal.
//!
//! This is the one router: a new dialect or endpoint is one more arm in [`route`].

use super::dashboard_access::{Credentials, MAX_SIGN_IN_BODY, Page, Request as DashboardRequest};
use super::dashboard_assets::Asset;
use super::exposition::Format;
use super::http::{
    self, ApiRequest, Decision, MAX_API_BODY, MAX_HEAD_BYTES, Parsed, Route, Routes, api_error,
    has_body, header, keep_alive, reject, response,
};
use super::sockjs;
use crate::protocol::{DialectKind, Opening};

/// Headers beyond this count are refused with 431.
const MAX_HEADERS: usize = 48;

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
        "/readyz" => Some(Route::Readyz),
        "/cluster" => Some(Route::Cluster),
        "/metrics" => Some(Route::Metrics(Format::Classic)),
        "/dashboard" | "/dashboard/" => Some(Route::Dashboard(Page::Page)),
        "/dashboard/events" => Some(Route::Dashboard(Page::Events)),
        _ if path == "/api" || path.starts_with("/api/") => Some(Route::Api),
        _ if let Some(asset) = path.strip_prefix("/dashboard/").and_then(Asset::named) => {
            Some(Route::Dashboard(Page::Asset(asset)))
        }
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
    if let Some(problem) = ambiguous_framing(request) {
        return if route(path, routes) == Some(Route::Api) {
            api_reject(400, "api.malformed", problem)
        } else {
            reject(400, &format!("{problem}\n"), &[])
        };
    }
    let sockjs_path = path.starts_with("/sockjs/")
        || (routes.sockjs_test_services
            && sockjs::TEST_SERVICES.iter().any(|p| path.starts_with(p)));
    let opens_connection = sockjs_path || matches!(route(path, routes), Some(Route::Dialect(_)));
    if opens_connection
        && !routes
            .origins
            .allows(header(request, "origin"), header(request, "host"))
    {
        tracing::info!(
            origin = header(request, "origin").unwrap_or(""),
            "refused a connection from a page of another origin (allowed_origins)"
        );
        return reject(
            403,
            "origin not allowed (see allowed_origins)
",
            &[],
        );
    }
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
    if let Route::Dashboard(page) = route {
        return dashboard_request(request, page);
    }
    if request.method != Some("GET") {
        return reject(405, "method not allowed\n", &[("Allow", "GET")]);
    }
    let route = match route {
        Route::Metrics(_) => Route::Metrics(Format::asked(header(request, "accept"))),
        other => other,
    };
    let Route::Dialect(opening) = route else {
        let keep_alive = !has_body(request) && keep_alive(request);
        return Decision::Http { route, keep_alive };
    };
    http::upgrade(request, opening, false)
}

/// Why the body's length is ambiguous, if it is (RFC 9112 §6.3): more than one
/// `Content-Length` field, even with one value, or one listing several values, a
/// `Content-Length` beside a `Transfer-Encoding`, or more than one `Transfer-Encoding`
/// field (their codings would add up to a list this server does not take). Such a request is refused with 400
/// and the connection closed, whatever its route: two parsers reading it two ways is
/// how requests are smuggled.
fn ambiguous_framing(request: &httparse::Request<'_, '_>) -> Option<&'static str> {
    let count = |name: &str| {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    };
    let lengths = count("content-length");
    if lengths > 1 || header(request, "content-length").is_some_and(|v| v.contains(',')) {
        return Some("more than one Content-Length");
    }
    let codings = count("transfer-encoding");
    if lengths == 1 && codings > 0 {
        return Some("both Content-Length and Transfer-Encoding");
    }
    if codings > 1 {
        return Some("more than one Transfer-Encoding");
    }
    None
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

/// A dashboard request: a `GET`, or the sign-in form's `POST /dashboard` with a
/// `Content-Length` of at most [`MAX_SIGN_IN_BODY`] bytes.
fn dashboard_request(request: &httparse::Request<'_, '_>, page: Page) -> Decision {
    let (page, allow) = match (page, request.method) {
        (Page::Page, Some("POST")) => (Page::SignIn, "GET, POST"),
        (Page::Page, _) => (Page::Page, "GET, POST"),
        (other, _) => (other, "GET"),
    };
    let body_len = if page == Page::SignIn {
        match header(request, "content-length").map(|v| v.trim().parse::<usize>()) {
            Some(Ok(n)) if n <= MAX_SIGN_IN_BODY => n,
            _ => return reject(411, "send the form with a Content-Length\n", &[]),
        }
    } else if request.method != Some("GET") {
        return reject(405, "method not allowed\n", &[("Allow", allow)]);
    } else if has_body(request) {
        return reject(400, "a GET has no body\n", &[]);
    } else {
        0
    };
    Decision::Dashboard(DashboardRequest {
        page,
        credentials: Credentials::from_headers(
            header(request, "cookie"),
            header(request, "authorization"),
        ),
        https: header(request, "x-forwarded-proto")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http::{Decision, Parsed, Route, Routes};
    use crate::protocol::DialectKind;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

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
        let connection = upgrade("/turntable", "").replace("keep-alive, Upgrade", "close");
        assert!(
            status_of(&connection).starts_with("HTTP/1.1 400"),
            "{connection}"
        );
    }

    #[test]
    fn an_ambiguous_body_length_is_refused_on_every_route() {
        for path in [
            "/api/publish",
            "/sockjs/turntable/000/s/xhr_send",
            "/turntable",
        ] {
            for framing in [
                "Content-Length: 2\r\nContent-Length: 40\r\n",
                "Content-Length: 40\r\nContent-Length: 2\r\n",
                "Content-Length: 2\r\ncontent-length: 2\r\n",
                "Content-Length: 2, 2\r\n",
                "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
                "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
            ] {
                let answer =
                    status_of(&format!("POST {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n"));
                assert!(
                    answer.starts_with("HTTP/1.1 400"),
                    "{path} {framing}: {answer}"
                );
                assert!(answer.contains("Connection: close"), "{answer}");
            }
        }
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
