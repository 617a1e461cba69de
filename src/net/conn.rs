//! One client connection's HTTP phase, from accept (or handover) to the end of its
//! last request: request heads and bodies, plain HTTP answers, the API and SockJS HTTP
//! transports, and the upgrade that hands the connection to `websocket`.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use futures_lite::future::{self, FutureExt};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::spawn_local;
use glommio::timer::Timer;
use std::panic::AssertUnwindSafe;

use super::http::{self, Decision, Parsed, Route};
use super::rate::Admit;
use super::shard::Shard;
use super::{api, dashboard, router, sockjs_session, websocket};
use crate::cluster::Cluster;

/// How a connection came to be served, for its address's `connection_rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Accepted by this shard, within its address's rate (one token spent).
    Accepted(IpAddr),
    /// Accepted over its address's rate: only an authorized API request is served, the
    /// rest get 429.
    OverRate(IpAddr),
    /// Not counted any more: handed over by another shard (which counted it), or its
    /// token given back (an authorized API request came on it).
    Settled,
}

/// Takes a connection the shard just accepted: served, answered 429 when its address
/// opens connections faster than `connection_rate` allows (but for the API with its
/// key: an application server is not a flood), or closed unread when the address keeps
/// on past a further burst (see `address_rate`).
pub fn accept(shard: &Rc<Shard>, stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let admission = match shard.connection_rate.admit(peer.ip(), Instant::now()) {
        Admit::Yes => Admission::Accepted(peer.ip()),
        Admit::Refuse => Admission::OverRate(peer.ip()),
        Admit::Close => return shard.tally.connection_rate_limited(),
    };
    spawn_local(serve(shard.clone(), stream, Vec::new(), admission)).detach();
}

/// Serves one TCP connection until it closes: accepted here, or handed over by another
/// shard with the bytes it had read. A panic while serving it ends this connection only.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream, read: Vec<u8>, admission: Admission) {
    let id = shard.id;
    if AssertUnwindSafe(serve_from(shard, stream, read, admission))
        .catch_unwind()
        .await
        .is_err()
    {
        tracing::error!(shard = id, "request handler panicked; connection closed");
    }
}

/// The answer to a request on a connection over its address's rate (sent once its head
/// is in: closing before reading it would reset the connection, and the client would
/// never see why).
fn too_many_connections() -> Vec<u8> {
    http::response(
        429,
        &[("Retry-After", "1")],
        "text/plain",
        b"too many new connections from this address; retry later\n",
        false,
    )
}

async fn serve_from(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    mut head: Vec<u8>,
    mut admission: Admission,
) {
    let _ = stream.set_nodelay(true);
    loop {
        // Where an upgrade's handshake time starts: the accept, or the previous
        // response on this connection.
        let began = Instant::now();
        let Some((head_len, decision)) = read_head(&shard, &mut stream, &mut head).await else {
            return;
        };
        if matches!(admission, Admission::OverRate(_)) && !matches!(decision, Decision::Api(_)) {
            shard.tally.connection_rate_limited();
            shard.tally.http_response(429);
            let _ = stream.write_all(&too_many_connections()).await;
            return;
        }
        match decision {
            Decision::Reject { response } => {
                shard.tally.http_response(http::status_of(&response));
                let _ = stream.write_all(&response).await;
                return;
            }
            Decision::SockJs(request) => {
                // A session lives on the node its first request reached (README, Load
                // balancers); inside the node, on its owner shard.
                let home = shard.settings.placement.owner(&request.session).shard;
                if home != shard.id
                    && let Some(hand_over) = shard.handover.get()
                {
                    let Err(e) = hand_over(home, &stream, std::mem::take(&mut head)) else {
                        return;
                    };
                    tracing::warn!(
                        shard = shard.id,
                        to = home,
                        error = %e,
                        "could not hand a SockJS request to its session's shard"
                    );
                    let busy = http::respond(503, "text/plain", b"try again\n", false);
                    shard.tally.http_response(503);
                    let _ = stream.write_all(&busy).await;
                    return;
                }
                let (body, end) =
                    match read_body(&shard, &mut stream, &mut head, head_len, request.body_len)
                        .await
                    {
                        Ok(read) => read,
                        Err(BodyError::Gone) => return,
                        Err(BodyError::Malformed) => {
                            let bad =
                                http::respond(400, "text/plain", b"broken chunked body\n", false);
                            shard.tally.http_response(400);
                            let _ = stream.write_all(&bad).await;
                            return;
                        }
                    };
                let after = Box::pin(sockjs_session::serve(&shard, &mut stream, &request, &body));
                if after.await == sockjs_session::After::Close {
                    return;
                }
                head.drain(..end);
            }
            Decision::Respond { response } => {
                shard.tally.http_response(http::status_of(&response));
                if stream.write_all(&response).await.is_err() {
                    return;
                }
                head.drain(..head_len);
            }
            Decision::Api(request) => {
                let end = head_len + request.body_len;
                if read_at_least(&shard, &mut stream, &mut head, end)
                    .await
                    .is_err()
                {
                    return;
                }
                // Boxed, as the other rare phases: a future's state is sized for its
                // largest phase, and every idle WebSocket would carry the API's.
                let response = Box::pin(api::answer(&shard, &request, &head[head_len..end])).await;
                // An application server calling the API with its key gives back the
                // connection's token (it may open a connection per call); over the
                // rate, an unauthorized request gets 429 instead of its answer.
                let status = http::status_of(&response);
                let authorized = !matches!(status, 401 | 403);
                match admission {
                    Admission::Accepted(peer) | Admission::OverRate(peer) if authorized => {
                        shard.connection_rate.give_back(peer, Instant::now());
                        admission = Admission::Settled;
                    }
                    Admission::OverRate(_) => {
                        shard.tally.connection_rate_limited();
                        shard.tally.http_response(429);
                        let _ = stream.write_all(&too_many_connections()).await;
                        return;
                    }
                    Admission::Accepted(_) | Admission::Settled => {}
                }
                shard.tally.http_response(status);
                if stream.write_all(&response).await.is_err() || !request.keep_alive {
                    return;
                }
                head.drain(..end);
            }
            Decision::Dashboard(request) => {
                let end = head_len + request.body_len;
                if read_at_least(&shard, &mut stream, &mut head, end)
                    .await
                    .is_err()
                {
                    return;
                }
                let body = &head[head_len..end];
                let keep_alive =
                    Box::pin(dashboard::serve(&shard, &mut stream, &request, body)).await;
                if !keep_alive {
                    return;
                }
                head.drain(..end);
            }
            Decision::Http { route, keep_alive } => {
                let response = answer_http(&shard, route, keep_alive);
                shard.tally.http_response(http::status_of(&response));
                if stream.write_all(&response).await.is_err() || !keep_alive {
                    return;
                }
                head.drain(..head_len);
            }
            Decision::Upgrade {
                opening,
                response,
                sockjs,
            } => {
                let response = with_shard_header(response, shard.id);
                shard.tally.http_response(101);
                let written = stream.write_all(&response).await;
                drop(response); // not held for the connection's lifetime
                if written.is_err() {
                    return;
                }
                shard.tally.handshake.observe(began.elapsed());
                head.drain(..head_len);
                websocket::spawn(shard, stream, &opening, sockjs, head);
                return;
            }
        }
    }
}

/// The client went away — a timeout, EOF or a socket error — before its request was
/// read: nobody to answer.
struct Gone;

/// Reads until `buf` holds at least `len` bytes (a request body after its head).
async fn read_at_least(
    shard: &Shard,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: usize,
) -> Result<(), Gone> {
    let deadline = Instant::now() + shard.settings.handshake_timeout;
    while buf.len() < len {
        read_more(stream, buf, deadline).await?;
    }
    Ok(())
}

/// Why a request body could not be read.
enum BodyError {
    Gone,
    /// A chunked body that breaks the chunked coding (answered with 400).
    Malformed,
}

impl From<Gone> for BodyError {
    fn from(_: Gone) -> BodyError {
        BodyError::Gone
    }
}

/// Reads the body after a head of `head_len` bytes — `len` bytes, or chunked if `None`
/// — and returns it with where it ends in `buf`.
async fn read_body(
    shard: &Shard,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_len: usize,
    len: Option<usize>,
) -> Result<(Vec<u8>, usize), BodyError> {
    if let Some(len) = len {
        let end = head_len + len;
        read_at_least(shard, stream, buf, end).await?;
        return Ok((buf[head_len..end].to_vec(), end));
    }
    let deadline = Instant::now() + shard.settings.handshake_timeout;
    loop {
        match super::sockjs::dechunk(&buf[head_len..]) {
            Some(Ok((body, used))) => return Ok((body, head_len + used)),
            Some(Err(())) => return Err(BodyError::Malformed),
            None => read_more(stream, buf, deadline).await?,
        }
    }
}

/// Reads once more into `buf`. (Into `buf` itself, not a buffer on the stack: that would
/// sit in every connection task's state.)
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), Gone> {
    const CHUNK: usize = 2048;
    let start = buf.len();
    // Reads grow with what is buffered, so a large body takes few reads (and a chunked
    // one few re-parses).
    buf.resize(start + CHUNK.max(start.min(64 << 10)), 0);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let read = future::or(
        async { Some(stream.read(&mut buf[start..]).await) },
        async {
            Timer::new(remaining).await;
            None
        },
    )
    .await;
    let n = match read {
        Some(Ok(n)) => n,
        _ => 0,
    };
    buf.truncate(start + n);
    if n > 0 { Ok(()) } else { Err(Gone) }
}

/// Reads until a complete request head is buffered; `None` on timeout, EOF or error.
async fn read_head(
    shard: &Shard,
    stream: &mut TcpStream,
    head: &mut Vec<u8>,
) -> Option<(usize, Decision)> {
    let deadline = Instant::now() + shard.settings.handshake_timeout;
    loop {
        if let Parsed::Done { head_len, decision } = router::parse_request(head, &shard.routes) {
            return Some((head_len, decision));
        }
        read_more(stream, head, deadline).await.ok()?;
    }
}

fn answer_http(shard: &Shard, route: Route, keep_alive: bool) -> Vec<u8> {
    match route {
        Route::Healthz => {
            let per_shard = shard.figures.connections();
            let total: usize = per_shard.iter().sum();
            let body = serde_json::json!({
                "status": "ok",
                "shard": shard.id,
                "shards": per_shard.len(),
                "connections": total,
                "per_shard": per_shard,
                "cluster": shard.figures.cluster.as_ref().map(cluster_view),
            });
            http::respond(
                200,
                "application/json",
                body.to_string().as_bytes(),
                keep_alive,
            )
        }
        Route::Readyz => {
            let started = shard.figures.is_ready();
            let redis = shard
                .figures
                .cluster
                .as_ref()
                .is_none_or(Cluster::redis_connected);
            let (status, body) = match (started, shard.stopping(), redis) {
                (true, false, true) => (200, r#"{"status":"ready"}"#),
                (true, false, false) => (503, r#"{"status":"no redis"}"#),
                (true, true, _) => (503, r#"{"status":"stopping"}"#),
                (false, _, _) => (503, r#"{"status":"starting"}"#),
            };
            http::respond(status, "application/json", body.as_bytes(), keep_alive)
        }
        Route::Cluster => {
            let body = match &shard.figures.cluster {
                Some(cluster) => cluster_view(cluster),
                None => serde_json::json!({
                    "cluster": null,
                    "node": 0,
                    "nodes": [{"id": 0, "url": null, "alive": true}],
                    "placement": PLACEMENT,
                }),
            };
            http::respond(
                200,
                "application/json",
                body.to_string().as_bytes(),
                keep_alive,
            )
        }
        Route::Metrics(format) => {
            let text = shard.figures.prometheus(format);
            http::respond(200, format.content_type(), text.as_bytes(), keep_alive)
        }
        _ => http::respond(404, "text/plain", b"not found\n", false),
    }
}

/// How ids are placed on nodes, as `/cluster` states it.
const PLACEMENT: &str = "crc32(id) % K";

/// `/cluster`'s body: `{"cluster","node","nodes":[{"id","url","alive"}],"placement"}`,
/// plus whether Redis is connected.
fn cluster_view(cluster: &Cluster) -> serde_json::Value {
    let settings = cluster.settings();
    serde_json::json!({
        "cluster": &*settings.name,
        "node": settings.node,
        "nodes": cluster.nodes(),
        "placement": PLACEMENT,
        "redis": cluster.redis_connected(),
    })
}

/// Adds `X-Turntable-Shard` to the 101 response: operators and tests can see which
/// shard a connection landed on.
fn with_shard_header(mut response: Vec<u8>, shard: usize) -> Vec<u8> {
    let end = response.len() - 2;
    let header = format!("X-Turntable-Shard: {shard}\r\n");
    response.splice(end..end, header.bytes());
    response
}
