//! SockJS endpoints: one prefix per dialect — `/sockjs/turntable`, `/sockjs/talker`,
//! `/sockjs/world/<id>` — with the routes sockjs-node 0.3.24 serves under a prefix:
//! the greeting, `/info`, the iframe page, the raw WebSocket (`/websocket`, the bare
//! dialect) and the SockJS WebSocket transport (`/<server>/<session>/websocket`, the
//! dialect in SockJS frames, see `protocol::sockjs`).
//!
//! The HTTP transports (`xhr`, `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp` and
//! their `xhr_send` / `jsonp_send`) become a [`TransportRequest`], served on the session's
//! own shard by `net::sockjs_session`.

use super::http::{self, Decision, Routes};
use super::sockjs_request::{Receiver, Sender, Transport, TransportRequest};
use crate::protocol::DialectKind;
use crate::protocol::Opening;

/// sockjs-node's 404 body.
pub const NOT_FOUND: &[u8] = b"404 Error: Page not found\n";
/// sockjs-node's answer to caching on everything session-bound.
pub const NO_CACHE: (&str, &str) = (
    "Cache-Control",
    "no-store, no-cache, no-transform, must-revalidate, max-age=0",
);
const CACHE_FOR_A_YEAR: (&str, &str) = ("Cache-Control", "public, max-age=31536000");

/// `Expires` a year from now, as sockjs-node's `cache_for` sends with [`CACHE_FOR_A_YEAR`].
fn expires_in_a_year() -> (&'static str, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ("Expires", http_date(now + 365 * 24 * 3600))
}

/// An HTTP date (RFC 1123, GMT) of `secs` since the epoch.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The SockJS decision for a request under `/sockjs/`; `None` if the path names no
/// dialect prefix.
pub fn decide(
    request: &httparse::Request<'_, '_>,
    path: &str,
    routes: &Routes,
) -> Option<Decision> {
    let (service, rest) = split_prefix(path, routes)?;
    let opening = &service.opening;
    let method = request.method.unwrap_or("");
    // Every answer made here reads no body, so a request with one ends its connection
    // (or the body would be read as the next request); only a transport request, which
    // reads its body, keeps the connection as the client asks.
    let keep_alive = http::keep_alive(request) && !http::has_body(request);
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let decision = match (rest, &segments[..]) {
        ("" | "/", _) => only(method, "GET", || {
            respond(
                200,
                &[],
                "text/plain; charset=UTF-8",
                b"Welcome to SockJS!\n",
                keep_alive,
            )
        }),
        (_, ["info"]) => match method {
            "GET" => info(request, &service, routes, keep_alive),
            "OPTIONS" => options(request, &service, "OPTIONS, GET", keep_alive),
            _ => not_allowed("OPTIONS, GET"),
        },
        (_, [page]) if is_iframe(page) => only(method, "GET", || iframe(request, keep_alive)),
        (_, ["websocket"] | [_, _, "websocket"]) if !service.websocket => respond(
            404,
            &[CACHE_FOR_A_YEAR],
            "text/plain; charset=UTF-8",
            NOT_FOUND,
            false,
        ),
        (_, ["websocket"]) => only(method, "GET", || {
            http::upgrade(request, opening.clone(), false)
        }),
        (_, [server, session, "websocket"]) if is_id(server) && is_id(session) => {
            only(method, "GET", || {
                if http::header(request, "upgrade").is_none() {
                    return respond(
                        400,
                        &[],
                        "text/plain; charset=UTF-8",
                        b"Not a valid websocket request",
                        false,
                    );
                }
                http::upgrade(request, opening.clone(), true)
            })
        }
        (_, [server, session, kind]) if is_id(server) && is_id(session) => {
            match transport(request, &service, method, kind, keep_alive) {
                Some(Ok(transport)) => Decision::SockJs(Box::new(TransportRequest {
                    opening: opening.clone(),
                    // Keyed with the prefix: the same id under two prefixes is two
                    // sessions, each speaking its own dialect.
                    session: format!("{}/{session}", &path[..path.len() - rest.len()]).into(),
                    transport,
                    content_type: http::header(request, "content-type").map(str::to_owned),
                    body_len: match body_len(request) {
                        Ok(len) => len,
                        Err(refusal) => return Some(refusal),
                    },
                    cookie: sticky_cookie(request, &service),
                    cors: cors(request, *kind == "eventsource"),
                    response_limit: service.response_limit,
                    keep_alive: http::keep_alive(request),
                    http10: request.version == Some(0),
                })),
                Some(Err(refusal)) => refusal,
                None => not_found(keep_alive),
            }
        }
        _ => not_found(keep_alive),
    };
    Some(decision)
}

/// Bodies of `xhr_send` and `jsonp_send` longer than this are refused.
pub const MAX_SEND_BODY: usize = 128 << 10;

/// The transport a session URL names, or its refusal; `None` if it names none.
fn transport(
    request: &httparse::Request<'_, '_>,
    service: &Service,
    method: &str,
    kind: &str,
    keep_alive: bool,
) -> Option<Result<Transport, Decision>> {
    let post_or_options = |t: Transport| match method {
        "POST" => Ok(t),
        "OPTIONS" => Err(options(request, service, "OPTIONS, POST", keep_alive)),
        _ => Err(not_allowed("POST, OPTIONS")),
    };
    let get = || {
        if method == "GET" {
            Ok(())
        } else {
            Err(not_allowed("GET"))
        }
    };
    let callback = |max: Option<usize>| -> Result<String, Decision> {
        let query = request
            .path
            .unwrap_or("")
            .split_once('?')
            .map_or("", |(_, q)| q);
        let value = query_value(query, "c").or_else(|| query_value(query, "callback"));
        let Some(cb) = value else {
            return Err(refuse_500("\"callback\" parameter required"));
        };
        let valid = !cb.is_empty()
            && cb
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && max.is_none_or(|m| cb.len() <= m);
        if valid {
            Ok(cb)
        } else {
            Err(refuse_500("invalid \"callback\" parameter"))
        }
    };
    let body_len =
        http::header(request, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
    if body_len.is_some_and(|n| n > MAX_SEND_BODY) {
        return Some(Err(respond(
            413,
            &[],
            "text/plain; charset=UTF-8",
            b"Payload too large.",
            false,
        )));
    }
    Some(match kind {
        "xhr" => post_or_options(Transport::Receive(Receiver::XhrPolling)),
        "xhr_streaming" => post_or_options(Transport::Receive(Receiver::XhrStreaming)),
        "xhr_send" => post_or_options(Transport::Send(Sender::Xhr)),
        "eventsource" => get().map(|_| Transport::Receive(Receiver::EventSource)),
        "htmlfile" => get().and_then(|_| {
            callback(None).map(|callback| Transport::Receive(Receiver::HtmlFile { callback }))
        }),
        "jsonp" => get().and_then(|_| {
            callback(Some(32))
                .map(|callback| Transport::Receive(Receiver::JsonpPolling { callback }))
        }),
        "jsonp_send" => {
            if method == "POST" {
                Ok(Transport::Send(Sender::Jsonp))
            } else {
                Err(not_allowed("POST"))
            }
        }
        _ => return None,
    })
}

/// A chunk-size line longer than this is refused (hex digits and an extension or two).
const MAX_CHUNK_LINE: usize = 64;

/// A chunked body at the start of `buf`: `Some(Ok((body, bytes used)))` once complete,
/// `None` while more is needed, `Some(Err(()))` if malformed, over [`MAX_SEND_BODY`], or
/// chunked so finely that the coding alone outgrows it.
pub fn dechunk(buf: &[u8]) -> Option<Result<(Vec<u8>, usize), ()>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        // The coding may cost at most as much again as the body it carries.
        if at > 2 * MAX_SEND_BODY {
            return Some(Err(()));
        }
        let Some(line_len) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            let too_long = buf.len() - at > MAX_CHUNK_LINE;
            return too_long.then_some(Err(()));
        };
        if line_len > MAX_CHUNK_LINE {
            return Some(Err(()));
        }
        let line_end = at + line_len;
        let line = std::str::from_utf8(&buf[at..line_end]).ok();
        let size = line
            .map(|l| l.split(';').next().unwrap_or("").trim())
            .and_then(|hex| usize::from_str_radix(hex, 16).ok());
        let Some(size) = size else {
            return Some(Err(()));
        };
        at = line_end + 2;
        if size == 0 {
            // No trailers are expected: the body ends with an empty line.
            return (buf.len() >= at + 2).then(|| {
                if &buf[at..at + 2] == b"\r\n" {
                    Ok((body, at + 2))
                } else {
                    Err(())
                }
            });
        }
        if size > MAX_SEND_BODY - body.len() {
            return Some(Err(()));
        }
        if buf.len() - at < size + 2 {
            return None;
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Some(Err(()));
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

/// A transport request's body: `Some(length)`, or `None` when chunked; a
/// Content-Length that is not a number, or another transfer coding, is refused.
fn body_len(request: &httparse::Request<'_, '_>) -> Result<Option<usize>, Decision> {
    let bad = |what: &str| {
        Err(Decision::Reject {
            response: http::response(400, &[], "text/plain", what.as_bytes(), false),
        })
    };
    match http::header(request, "transfer-encoding") {
        Some(te) if te.trim().eq_ignore_ascii_case("chunked") => Ok(None),
        Some(_) => bad("unsupported transfer encoding\n"),
        None => match http::header(request, "content-length").map(|v| v.trim().parse()) {
            None => Ok(Some(0)),
            Some(Ok(len)) => Ok(Some(len)),
            Some(Err(_)) => bad("invalid content length\n"),
        },
    }
}

/// The percent-decoded value of `name` in a query string.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            http::form_decode(v)
        } else {
            None
        }
    })
}

/// A 500 whose body is the bare message (no content type), as sockjs-node reports a
/// refused request; the connection closes after it.
pub fn error_500<V: AsRef<str>>(message: &str, headers: &[(&str, V)]) -> Vec<u8> {
    http::Head::new(500)
        .header("Content-Length", message.len())
        .headers(headers)
        .end(false, message.as_bytes())
}

fn refuse_500(message: &str) -> Decision {
    Decision::Reject {
        response: error_500::<&str>(message, &[]),
    }
}

/// 404 with sockjs-node's body.
pub fn not_found(keep_alive: bool) -> Decision {
    respond(404, &[], "text/plain; charset=UTF-8", NOT_FOUND, keep_alive)
}

/// What a prefix serves: a dialect with the default options, or one of the protocol
/// test services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub opening: Opening,
    /// The WebSocket transports are offered.
    pub websocket: bool,
    /// Sticky-session cookies (`JSESSIONID`) are set.
    pub cookie_needed: bool,
    pub response_limit: usize,
}

impl Service {
    fn serving(opening: Opening) -> Service {
        Service {
            opening,
            websocket: true,
            cookie_needed: false,
            response_limit: 128 << 10,
        }
    }
}

/// The paths under which `--sockjs-test-services` serves what the sockjs-protocol test
/// suite expects.
pub const TEST_SERVICES: [&str; 4] = [
    "/echo",
    "/close",
    "/disabled_websocket_echo",
    "/cookie_needed_echo",
];

/// The service a prefix names, and the path after the prefix.
fn split_prefix<'p>(path: &'p str, routes: &Routes) -> Option<(Service, &'p str)> {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|r| r.is_empty() || r.starts_with('/'))
    };
    if routes.sockjs_test_services {
        let echo = Service::serving(Opening::of(DialectKind::Echo));
        let services = [
            (
                "/echo",
                Service {
                    response_limit: 4096,
                    ..echo.clone()
                },
            ),
            ("/close", Service::serving(Opening::of(DialectKind::GoAway))),
            (
                "/disabled_websocket_echo",
                Service {
                    websocket: false,
                    ..echo.clone()
                },
            ),
            (
                "/cookie_needed_echo",
                Service {
                    cookie_needed: true,
                    ..echo
                },
            ),
        ];
        for (prefix, service) in services {
            if let Some(r) = under(prefix) {
                return Some((service, r));
            }
        }
    }
    if let Some(r) = under("/sockjs/turntable") {
        return Some((Service::serving(Opening::of(DialectKind::Turntable)), r));
    }
    if let Some(r) = under("/sockjs/talker") {
        return Some((Service::serving(Opening::of(DialectKind::Talker)), r));
    }
    let world_and_rest = path.strip_prefix("/sockjs/world/")?;
    let (id, r) = world_and_rest
        .find('/')
        .map_or((world_and_rest, ""), |i| world_and_rest.split_at(i));
    let opening = Opening {
        dialect: DialectKind::World,
        arg: Some(Box::from(id)),
    };
    Some((Service::serving(opening), r))
}

/// Server and session ids: non-empty, without `.` (and without `/`, by splitting).
fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && !s.contains('.')
}

/// `iframe.html`, `iframe-1.2.3.html` and the like.
fn is_iframe(page: &str) -> bool {
    page.strip_prefix("iframe")
        .and_then(|r| r.strip_suffix("html"))
        .and_then(|r| r.strip_suffix(|c: char| c != '/'))
        .is_some_and(|middle| {
            middle
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || "-._".contains(c))
        })
}

fn only(method: &str, allowed: &'static str, answer: impl FnOnce() -> Decision) -> Decision {
    if method == allowed {
        answer()
    } else {
        not_allowed(allowed)
    }
}

/// 405 with `Allow`, no content type and an empty body, as sockjs-node answers.
fn not_allowed(allow: &str) -> Decision {
    Decision::Reject {
        response: http::Head::new(405)
            .header("Allow", allow)
            .header("Content-Length", 0)
            .end(false, b""),
    }
}

fn respond(
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Decision {
    finish(
        http::response(status, extra, content_type, body, keep_alive),
        keep_alive,
    )
}

/// Writes `response`, then keeps reading requests or closes.
fn finish(response: Vec<u8>, keep_alive: bool) -> Decision {
    if keep_alive {
        Decision::Respond { response }
    } else {
        Decision::Reject { response }
    }
}

/// sockjs-node's `h_sid`: the sticky-session cookie (`JSESSIONID`, the client's or
/// `dummy`), when the service asks for one.
fn sticky_cookie(
    request: &httparse::Request<'_, '_>,
    service: &Service,
) -> Option<(&'static str, String)> {
    service.cookie_needed.then(|| {
        let session = http::header(request, "cookie")
            .and_then(|c| {
                c.split(';')
                    .filter_map(|kv| kv.trim().split_once('='))
                    .find(|(k, _)| *k == "JSESSIONID")
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "dummy".to_owned());
        ("Set-Cookie", format!("JSESSIONID={session}; path=/"))
    })
}

/// CORS as sockjs-node's `xhr_cors`: the Origin echoed with credentials (or `*`), and
/// the requested headers allowed. EventSource answers `Origin: null` with `*`.
fn cors(request: &httparse::Request<'_, '_>, eventsource: bool) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(4);
    headers.push(("Vary", "Origin".to_owned()));
    let origin = http::header(request, "origin").filter(|o| !(eventsource && *o == "null"));
    match origin {
        Some(origin) => {
            headers.push(("Access-Control-Allow-Origin", origin.to_owned()));
            headers.push(("Access-Control-Allow-Credentials", "true".to_owned()));
        }
        None => headers.push(("Access-Control-Allow-Origin", "*".to_owned())),
    }
    if let Some(asked) =
        http::header(request, "access-control-request-headers").filter(|h| !h.is_empty())
    {
        headers.push(("Access-Control-Allow-Headers", asked.to_owned()));
    }
    headers
}

fn info(
    request: &httparse::Request<'_, '_>,
    service: &Service,
    routes: &Routes,
    keep_alive: bool,
) -> Decision {
    let origins = routes.origins.sockjs_origins(http::header(request, "host"));
    let body = serde_json::json!({
        "websocket": service.websocket,
        "origins": origins,
        "cookie_needed": service.cookie_needed,
        "entropy": entropy(),
    })
    .to_string();
    // No cookie on GET /info, as sockjs-node.
    let mut headers = cors(request, false);
    headers.push((NO_CACHE.0, NO_CACHE.1.to_owned()));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    respond(
        200,
        &headers,
        "application/json; charset=UTF-8",
        body.as_bytes(),
        keep_alive,
    )
}

/// A random 32-bit number for `/info` (clients seed their session ids with it).
fn entropy() -> u32 {
    ahash::RandomState::new().hash_one(std::time::Instant::now()) as u32
}

/// `OPTIONS` on `/info` (and, later, the xhr transports): 204 with CORS, cached a year.
fn options(
    request: &httparse::Request<'_, '_>,
    service: &Service,
    methods: &str,
    keep_alive: bool,
) -> Decision {
    let (expires, date) = expires_in_a_year();
    let response = http::Head::new(204)
        .headers(sticky_cookie(request, service).as_slice())
        .headers(&cors(request, false))
        .header(CACHE_FOR_A_YEAR.0, CACHE_FOR_A_YEAR.1)
        .header(expires, date)
        .header("Access-Control-Allow-Methods", methods)
        .header("Access-Control-Max-Age", 31_536_000)
        .end(keep_alive, b"");
    finish(response, keep_alive)
}

/// The iframe page sockjs-node serves for cross-domain transports; it loads the client
/// from jsDelivr.
const IFRAME: &str = concat!(
    "<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  ",
    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  ",
    "<script src=\"https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js\"></script>\n  ",
    "<script>\n    document.domain = document.domain;\n    ",
    "SockJS.bootstrap_iframe();\n  </script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  ",
    "<p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>"
);

/// The iframe page's `ETag` (a CRC32 of it, computed once).
static IFRAME_ETAG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("\"{:08x}\"", crc32fast::hash(IFRAME.as_bytes())));

fn iframe(request: &httparse::Request<'_, '_>, keep_alive: bool) -> Decision {
    let (expires, date) = expires_in_a_year();
    if http::header(request, "if-none-match") == Some(IFRAME_ETAG.as_str()) {
        let response = http::Head::new(304)
            .header(CACHE_FOR_A_YEAR.0, CACHE_FOR_A_YEAR.1)
            .header(expires, date)
            .end(keep_alive, b"");
        return finish(response, keep_alive);
    }
    respond(
        200,
        &[("ETag", &IFRAME_ETAG), CACHE_FOR_A_YEAR, (expires, &date)],
        "text/html; charset=UTF-8",
        IFRAME.as_bytes(),
        keep_alive,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_read_and_hostile_ones_refused() {
        let body = b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\nNEXT";
        assert_eq!(dechunk(body), Some(Ok((b"abcde".to_vec(), body.len() - 4))));
        assert_eq!(dechunk(b"3\r\nab"), None, "more to come");
        assert_eq!(dechunk(b"1\r\nx\r\nffffffffffffffff\r\nab"), Some(Err(())));
        assert_eq!(
            dechunk(&[b'0'; 100]),
            Some(Err(())),
            "a size line that never ends"
        );
        assert_eq!(dechunk(b"zz\r\n"), Some(Err(())));
        assert_eq!(
            dechunk(b"1\r\nxy\r\n0\r\n\r\n"),
            Some(Err(())),
            "data longer than its size"
        );
        let fine: Vec<u8> = b"1\r\nx\r\n".repeat(2 * MAX_SEND_BODY / 6 + 1);
        assert_eq!(
            dechunk(&fine),
            Some(Err(())),
            "the coding outgrows the limit"
        );
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_600_000), "Wed, 25 Nov 2026 09:46:40 GMT");
        let over = format!("{:x}\r\n", MAX_SEND_BODY + 1);
        assert_eq!(dechunk(over.as_bytes()), Some(Err(())));
    }
}
