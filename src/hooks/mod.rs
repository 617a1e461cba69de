//! Calls into the application's backend: HTTP requests with JSON bodies that a shard
//! makes and awaits (the connect, subscribe, publish and RPC hooks, Centrifugo-proxy
//! style), and [`Webhooks`], events sent in signed batches without anyone waiting.
//!
//! # Why a thread of its own
//!
//! A shard is one glommio executor on one core: it must never block, and a backend
//! that is slow or down must cost it no more than an error. The HTTP client is reqwest
//! (a maintained client over hyper: keep-alive pooling, per-request timeouts, DNS off
//! the calling thread) on a one-worker tokio runtime, [`Hooks`], which the shards share.
//! A shard's [`HookClient`] hands each call to that runtime and awaits the answer over a
//! oneshot channel, whose receiver is a plain future that any executor can poll, glommio
//! included (glommio tasks may be woken from other threads). hyper over glommio would
//! keep the calls on the shard but needs an I/O adapter, a pool, a resolver that does
//! not block (std's `getaddrinfo` would stall the shard) and TLS wiring of its own; the
//! thread costs one hop each way (a few µs) and gets all of that from reqwest.
//!
//! # How to call it
//!
//! ```no_run
//! # async fn example(hooks: turntable::hooks::Hooks) {
//! use std::time::Duration;
//! let client = hooks.client(); // once per shard; clones share the shard's bound
//! let body = serde_json::json!({"user": "1:42", "channel": "arena"});
//! match client.call("http://backend:8000/subscribe", &body, Duration::from_secs(1)).await {
//!     Ok(reply) => println!("{} {}", reply.status, reply.body),
//!     Err(e) => println!("refused: {e}"), // fail closed
//! }
//! # }
//! ```
//!
//! Every call has a timeout (the whole exchange: connecting, sending, the answer's
//! body). A shard has at most `concurrency` calls in flight; one more fails at once with
//! [`HookError::Overloaded`] rather than queueing. A call whose future is dropped is
//! cancelled. The answer must be 2xx with a JSON body (or none); anything else is an
//! error, so a caller that refuses on any error fails closed.
//!
//! Nothing here starts unless asked: without hook URLs in the settings no [`Hooks`] is
//! made, no thread runs, and the hot path has nothing to check.

mod webhooks;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
pub use webhooks::{SIGNATURE_HEADER, WebhookCounts, WebhookSettings, Webhooks, signature};

/// The longest answer body a hook reads; a longer one is [`HookError::Body`].
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// What every shard's client shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookSettings {
    /// The timeout [`HookClient::call`] callers use unless a hook says otherwise.
    pub timeout: Duration,
    /// Calls one shard may have in flight; more fail with [`HookError::Overloaded`].
    pub concurrency: usize,
}

/// A backend's 2xx answer.
#[derive(Clone, Debug, PartialEq)]
pub struct HookReply {
    pub status: u16,
    /// The JSON body; `null` when the body is empty.
    pub body: Value,
}

/// Why a hook call has no answer to act on. Callers treat every one as a refusal.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The backend did not answer in time.
    #[error("the backend did not answer within {0:?}")]
    Timeout(Duration),
    /// The backend could not be reached (refused, unreachable, unknown host).
    #[error("cannot connect to the backend: {0}")]
    Connect(String),
    /// The backend answered with a status other than 2xx.
    #[error("the backend answered {status}")]
    Status { status: u16, body: Vec<u8> },
    /// The answer's body is not JSON, or is over [`MAX_REPLY_BYTES`].
    #[error("the backend's answer is unusable: {0}")]
    Body(String),
    /// The shard has as many calls in flight as it may.
    #[error("{0} hook calls in flight on this shard already")]
    Overloaded(usize),
    /// The URL is not an `http://` or `https://` URL.
    #[error("invalid hook URL {0:?}")]
    Url(String),
    /// The exchange failed otherwise (the connection broke mid-answer, ...).
    #[error("the hook request failed: {0}")]
    Request(String),
    /// The hook thread is gone (the server is stopping).
    #[error("the hook thread has stopped")]
    Stopped,
}

/// The hook thread and HTTP client, shared by every shard (cheap to clone). Dropping
/// the last clone stops the thread without waiting for calls in flight.
#[derive(Clone)]
pub struct Hooks(Arc<Inner>);

struct Inner {
    /// `Some` until dropped, when it is shut down in the background.
    runtime: Option<tokio::runtime::Runtime>,
    http: reqwest::Client,
    settings: HookSettings,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Hooks {
    /// Starts the hook thread (`turntable-hooks`) and its HTTP client.
    pub fn start(settings: HookSettings) -> std::io::Result<Hooks> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("turntable-hooks")
            .enable_all()
            .build()?;
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Hooks(Arc::new(Inner {
            runtime: Some(runtime),
            http,
            settings,
        })))
    }

    pub fn settings(&self) -> HookSettings {
        self.0.settings
    }

    /// A shard's client: its clones share one bound of calls in flight.
    pub fn client(&self) -> HookClient {
        HookClient {
            hooks: self.clone(),
            in_flight: Rc::default(),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.0.runtime.as_ref().expect("present until dropped")
    }
}

/// One shard's way to call the backend (see the module's doc). Not `Send`: each shard
/// makes its own with [`Hooks::client`].
#[derive(Clone)]
pub struct HookClient {
    hooks: Hooks,
    in_flight: Rc<Cell<usize>>,
}

/// A call in flight: counted while it lives, and cancelled on the hook thread if the
/// caller stops waiting.
struct InFlight {
    count: Rc<Cell<usize>>,
    abort: Option<tokio::task::AbortHandle>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.set(self.count.get() - 1);
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}

impl HookClient {
    /// Calls in flight on this shard.
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// POSTs `body` as JSON to `url` and returns the backend's 2xx JSON answer, within
    /// `timeout`.
    pub async fn call(
        &self,
        url: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<HookReply, HookError> {
        let max = self.hooks.0.settings.concurrency;
        if self.in_flight.get() >= max {
            return Err(HookError::Overloaded(max));
        }
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| HookError::Url(url.to_owned()))?;
        self.in_flight.set(self.in_flight.get() + 1);
        let mut slot = InFlight {
            count: self.in_flight.clone(),
            abort: None,
        };
        let request = self
            .hooks
            .0
            .http
            .post(parsed)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("a Value always serializes"))
            .timeout(timeout);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = self.hooks.runtime().spawn(async move {
            let _ = tx.send(exchange(request, timeout).await);
        });
        slot.abort = Some(task.abort_handle());
        let answer = rx.await.map_err(|_| HookError::Stopped)?;
        drop(slot);
        answer
    }
}

/// One request and its answer, on the hook thread.
async fn exchange(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<HookReply, HookError> {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            HookError::Timeout(timeout)
        } else if e.is_connect() {
            HookError::Connect(error_chain(&e))
        } else {
            HookError::Request(error_chain(&e))
        }
    };
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(HookError::Body(format!("over {MAX_REPLY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !(200..300).contains(&status) {
        return Err(HookError::Status { status, body });
    }
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| HookError::Body(e.to_string()))?
    };
    Ok(HookReply { status, body })
}

/// An error and its causes on one line (reqwest's own message names only the first).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text += ": ";
        text += &cause.to_string();
        source = cause.source();
    }
    text
}
