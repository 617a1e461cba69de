//! The live dashboard: `GET /dashboard` (the page, or its sign-in form), `POST
//! /dashboard` (signing in), `GET /dashboard/events` (the figures as server-sent
//! events, a JSON snapshot each second) and the page's static files. Who may see it:
//! `dashboard_access`; what it shows: `dashboard_figures`.
//!
//! Streams are bounded: at most [`MAX_STREAMS`] open on a node (more get 503), each
//! closed when the server stops, when its client goes, or when a write stays stuck
//! for [`STUCK`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;
use futures_lite::future;
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::dashboard_access::{Page, Request, Verdict};
use super::dashboard_assets::{PAGE, SIGN_IN};
use super::dashboard_figures;
use super::http::{self, Head};
use super::shard::Shard;

/// Event streams one node serves at once.
pub const MAX_STREAMS: usize = 16;

/// Time between two snapshots of a stream.
const INTERVAL: Duration = Duration::from_secs(1);

/// A stream whose write takes longer than this is closed (its client stopped reading).
const STUCK: Duration = Duration::from_secs(10);

/// What every dashboard page is sent with: its own files only, no frames, no referrer.
const PAGE_HEADERS: [(&str, &str); 3] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// Serves a dashboard request on `stream` (`body`: the sign-in form's); whether to
/// read the connection's next request.
pub async fn serve(shard: &Shard, stream: &mut TcpStream, request: &Request, body: &[u8]) -> bool {
    let verdict = shard.settings.dashboard.admits(&request.credentials);
    if request.page == Page::Events && verdict == Verdict::Granted {
        events(shard, stream).await;
        return false;
    }
    let response = answer(shard, request, verdict, body);
    shard.tally.http_response(http::status_of(&response));
    stream.write_all(&response).await.is_ok() && request.keep_alive
}

/// The answer to any dashboard request but a granted event stream.
fn answer(shard: &Shard, request: &Request, verdict: Verdict, body: &[u8]) -> Vec<u8> {
    let keep_alive = request.keep_alive;
    let html = |status: u16, extra: &[(&str, &str)], text: &str| {
        let headers = [&PAGE_HEADERS[..], extra].concat();
        http::response(
            status,
            &headers,
            "text/html; charset=utf-8",
            text.as_bytes(),
            keep_alive,
        )
    };
    let sign_in_form = |message: &str| {
        html(
            401,
            &[("WWW-Authenticate", "apikey")],
            &SIGN_IN.replace("{message}", message),
        )
    };
    match (request.page, verdict) {
        (Page::Asset(asset), _) => http::response(
            200,
            &PAGE_HEADERS[1..2],
            asset.content_type(),
            asset.body().as_bytes(),
            keep_alive,
        ),
        (_, Verdict::Closed) => http::respond(
            403,
            "text/plain",
            b"the dashboard is closed: set dashboard_key or api_key\n",
            keep_alive,
        ),
        (Page::SignIn, _) => {
            let given = form_value(body, "key").unwrap_or_default();
            let guard = &shard.settings.dashboard;
            match (verdict, guard.sign_in(&given, request.https)) {
                (_, Some(cookie)) => html(
                    303,
                    &[("Location", "/dashboard"), ("Set-Cookie", &cookie)],
                    "",
                ),
                (Verdict::Granted, None) => html(303, &[("Location", "/dashboard")], ""),
                _ => sign_in_form("That is not the key."),
            }
        }
        (Page::Page, Verdict::Granted) => html(200, &[], PAGE),
        (Page::Page, Verdict::SignIn) => sign_in_form(""),
        (Page::Events, _) => http::response(
            401,
            &[("WWW-Authenticate", "apikey")],
            "text/plain",
            b"sign in at /dashboard, or send Authorization: apikey KEY\n",
            keep_alive,
        ),
    }
}

/// The value of `name` in a form-encoded body.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| http::form_decode(v))
}

/// One of the node's [`MAX_STREAMS`] stream seats, given back when dropped.
struct Seat<'a>(&'a AtomicUsize);

impl<'a> Seat<'a> {
    fn take(open: &'a AtomicUsize) -> Option<Seat<'a>> {
        open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_STREAMS).then_some(n + 1)
        })
        .ok()
        .map(|_| Seat(open))
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Streams a snapshot each [`INTERVAL`] until the client goes or the server stops.
async fn events(shard: &Shard, stream: &mut TcpStream) {
    let Some(_seat) = Seat::take(&shard.figures.dashboards) else {
        shard.tally.http_response(503);
        let busy = http::response(
            503,
            &[("Retry-After", "10")],
            "text/plain",
            b"too many dashboard streams are open\n",
            false,
        );
        let _ = stream.write_all(&busy).await;
        return;
    };
    shard.tally.http_response(200);
    let head = Head::new(200)
        .header("Content-Type", "text/event-stream")
        .header("Cache-Control", "no-store")
        .header("X-Accel-Buffering", "no")
        .end(false, b"retry: 3000\n\n");
    let mut written = write_within(stream, &head).await;
    let mut last = None;
    while written && !shard.stopping() {
        let (figures, counted) =
            dashboard_figures::snapshot(&shard.figures, last.as_ref(), Instant::now());
        last = Some(counted);
        written = write_within(stream, format!("data: {figures}\n\n").as_bytes()).await
            && pause(shard).await;
    }
}

/// Writes `bytes`; false if the client is gone or the write stays stuck for [`STUCK`].
async fn write_within(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    future::or(async { stream.write_all(bytes).await.is_ok() }, async {
        Timer::new(STUCK).await;
        false
    })
    .await
}

/// Waits for the next snapshot; false if the server is stopping.
async fn pause(shard: &Shard) -> bool {
    let step = Duration::from_millis(100);
    let until = Instant::now() + INTERVAL;
    while Instant::now() < until {
        if shard.stopping() {
            return false;
        }
        Timer::new(step).await;
    }
    !shard.stopping()
}
