//! HTTP request heads and bodies: the router (`net::router::parse_request`, with the
//! SockJS routes of `net::sockjs`), then the body as the connection reads it — a
//! chunked SockJS body (`net::sockjs::dechunk`), a SockJS send body
//! (`net::sockjs_session::parse_send_body`), an API path's percent-decoding. The first
//! byte picks the optional routes and the allowed origins; the rest is what the client
//! sent. Checked beyond not panicking: a head is never longer than its bytes, a body's
//! length is bounded before it is read, and a connection kept open after an answer
//! that reads no body had none (else the body would be read as the next request).
#![no_main]

use libfuzzer_sys::fuzz_target;
use turntable::net::dashboard_access::MAX_SIGN_IN_BODY;
use turntable::net::http::{self, Decision, MAX_API_BODY, MAX_HEAD_BYTES, Parsed, Routes};
use turntable::net::origins::AllowedOrigins;
use turntable::net::router::parse_request;
use turntable::net::sockjs::{MAX_SEND_BODY, dechunk};
use turntable::net::sockjs_request::Transport;
use turntable::net::sockjs_session::parse_send_body;

/// Whether the request at the start of `bytes` says a body follows.
fn has_body(bytes: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(bytes).is_ok() && http::has_body(&request)
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, bytes)) = input.split_first() else {
        return;
    };
    let origins: &[Box<str>] = match flags >> 2 & 3 {
        0 => &[],
        1 => &[Box::from("*")],
        _ => &[
            Box::from("https://*.example.com"),
            Box::from("http://a.test:8080"),
        ],
    };
    let routes = Routes {
        echo: flags & 1 != 0,
        sockjs_test_services: flags & 2 != 0,
        origins: AllowedOrigins::new(origins),
    };
    let (head_len, decision) = match parse_request(bytes, &routes) {
        Parsed::Incomplete => {
            assert!(bytes.len() <= MAX_HEAD_BYTES);
            return;
        }
        Parsed::Done { head_len, decision } => (head_len, decision),
    };
    assert!(head_len <= bytes.len());
    let body = &bytes[head_len..];
    match decision {
        Decision::Upgrade { response, .. } => {
            assert!(response.ends_with(b"\r\n\r\n"));
            assert!(!has_body(bytes), "an upgrade with a body");
        }
        Decision::Http {
            keep_alive: true, ..
        }
        | Decision::Respond { .. } => {
            assert!(
                !has_body(bytes),
                "kept a connection whose body was not read"
            );
        }
        Decision::Http { .. } | Decision::Reject { .. } => {}
        Decision::Api(request) => {
            assert!(request.body_len <= MAX_API_BODY);
            for segment in request.path.split('/') {
                let _ = http::percent_decode(segment);
            }
        }
        Decision::Dashboard(request) => {
            assert!(
                request.body_len <= MAX_SIGN_IN_BODY,
                "a sign-in body of {} bytes",
                request.body_len
            );
            if request.body_len == 0 {
                assert!(!has_body(bytes), "a dashboard body that would not be read");
            }
        }
        Decision::SockJs(request) => {
            let sent = match request.body_len {
                Some(len) => {
                    assert!(len <= MAX_SEND_BODY, "a SockJS body of {len} bytes");
                    body.get(..len).map(<[u8]>::to_vec)
                }
                None => match dechunk(body) {
                    Some(Ok((sent, used))) => {
                        assert!(used <= body.len() && sent.len() <= MAX_SEND_BODY);
                        Some(sent)
                    }
                    Some(Err(())) | None => None,
                },
            };
            if let (Some(sent), Transport::Send(sender)) = (sent, &request.transport) {
                let _ = parse_send_body(*sender, &request, &sent);
            }
        }
    }
});
