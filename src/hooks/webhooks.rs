//! Webhooks: events the server tells the backend about without waiting for it (a
//! channel occupied or vacated, a member added or removed, a user online or offline).
//!
//! [`Webhooks::send`] puts an event on a bounded queue and returns at once; when the
//! queue is full the event is dropped, counted and logged. A task on the hook thread
//! takes events off the queue in batches — up to `batch_max`, or whatever came within
//! `batch_interval` of a batch's first event — and POSTs each batch as
//!
//! ```json
//! {"time": 1764680000000, "events": [{"event": "channel_occupied", "channel": "arena"}]}
//! ```
//!
//! (`time` in ms since the epoch) with an `X-Turntable-Signature: sha256=<hex>` header,
//! the HMAC-SHA256 of the body's bytes under the webhook secret, which the backend
//! recomputes to know the batch is the server's. A batch that fails (no connection, a
//! timeout, 429 or 5xx) is tried again after 100 ms, 200 ms, ... up to `attempts` times
//! in all, then dropped and counted; batches go one at a time, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::Hooks;

/// The header that carries a batch's signature.
pub const SIGNATURE_HEADER: &str = "X-Turntable-Signature";

/// Where and how webhooks go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: String,
    /// The HMAC key batches are signed with.
    pub secret: Box<str>,
    /// Events in one batch at most.
    pub batch_max: usize,
    /// How long a batch waits after its first event for more.
    pub batch_interval: Duration,
    /// Events waiting to be sent at most; more are dropped.
    pub queue: usize,
    /// Tries per batch, the first included.
    pub attempts: u32,
    /// Each try's timeout.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// Settings for `url` and `secret` with the default batching and retries: batches
    /// of up to 100 events or 100 ms, 10 000 events queued, 3 tries of `timeout` each.
    pub fn new(url: String, secret: Box<str>, timeout: Duration) -> WebhookSettings {
        WebhookSettings {
            url,
            secret,
            batch_max: 100,
            batch_interval: Duration::from_millis(100),
            queue: 10_000,
            attempts: 3,
            timeout,
        }
    }
}

/// What the webhooks did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookCounts {
    /// Events the backend acknowledged (2xx).
    pub delivered: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Events in batches that failed every try.
    pub failed: u64,
    /// Tries that failed (retried or not).
    pub failed_tries: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    failed_tries: AtomicU64,
}

/// The sending side of the webhooks, cheap to clone (every shard holds one).
#[derive(Clone)]
pub struct Webhooks {
    queue: mpsc::Sender<Value>,
    counters: Arc<Counters>,
}

/// An event [`Webhooks::send`] could not queue: the queue was full or the hook thread
/// has stopped. It is counted in the webhook figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("webhook event dropped: the queue is full or the hook thread has stopped")]
pub struct WebhookDropped;

impl Webhooks {
    /// Starts the batching task on the hook thread.
    pub fn start(hooks: &Hooks, settings: WebhookSettings) -> Webhooks {
        let (queue, events) = mpsc::channel(settings.queue.max(1));
        let counters = Arc::new(Counters::default());
        let sender = Sender {
            http: hooks.0.http.clone(),
            settings,
            counters: counters.clone(),
        };
        hooks.runtime().spawn(sender.run(events));
        Webhooks { queue, counters }
    }

    /// Queues `event` without waiting; an event that cannot be queued (the queue is
    /// full, or the hook thread has stopped) is dropped, counted and logged.
    pub fn send(&self, event: Value) -> Result<(), WebhookDropped> {
        match self.queue.try_send(event) {
            Ok(()) => Ok(()),
            Err(_) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // The first drop and then one in a thousand, not one line per event.
                if dropped % 1000 == 1 {
                    tracing::warn!(dropped, "webhook queue full: events dropped");
                }
                Err(WebhookDropped)
            }
        }
    }

    /// What the sender has done with the events so far.
    pub fn counts(&self) -> WebhookCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookCounts {
            delivered: get(&self.counters.delivered),
            dropped: get(&self.counters.dropped),
            failed: get(&self.counters.failed),
            failed_tries: get(&self.counters.failed_tries),
        }
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as [`SIGNATURE_HEADER`]
/// carries it.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let mut text = String::from("sha256=");
    for byte in mac.finalize().into_bytes() {
        text.push(char::from_digit(u32::from(byte >> 4), 16).expect("a hex digit"));
        text.push(char::from_digit(u32::from(byte & 15), 16).expect("a hex digit"));
    }
    text
}

/// The batching task's state.
struct Sender {
    http: reqwest::Client,
    settings: WebhookSettings,
    counters: Arc<Counters>,
}

impl Sender {
    async fn run(self, mut events: mpsc::Receiver<Value>) {
        let mut open = true;
        while open {
            let Some(first) = events.recv().await else {
                return;
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.settings.batch_interval;
            while batch.len() < self.settings.batch_max {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(event)) => batch.push(event),
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.deliver(batch).await;
        }
    }

    /// Sends one batch, trying again on failures that may pass.
    async fn deliver(&self, batch: Vec<Value>) {
        let events = batch.len() as u64;
        let body = json!({"time": crate::clock::now_ms(), "events": batch}).to_string();
        let signed = signature(self.settings.secret.as_bytes(), body.as_bytes());
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=self.settings.attempts.max(1) {
            let sent = self
                .http
                .post(&self.settings.url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &signed)
                .body(body.clone())
                .timeout(self.settings.timeout)
                .send()
                .await;
            let retry = match sent {
                Ok(response) if response.status().is_success() => {
                    self.counters.delivered.fetch_add(events, Ordering::Relaxed);
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::warn!(%status, attempt, "webhook batch refused");
                    status.is_server_error() || status.as_u16() == 429
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "webhook batch not delivered");
                    true
                }
            };
            self.counters.failed_tries.fetch_add(1, Ordering::Relaxed);
            if !retry {
                break;
            }
            if attempt < self.settings.attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        self.counters.failed.fetch_add(events, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
