//! The backend hook client and the webhooks against a small backend written here (a
//! std TcpListener speaking just enough HTTP/1.1, keep-alive included): answers,
//! refusals, a backend that sleeps past the timeout, one that is down, the per-shard
//! bound, connection reuse, and webhook batches — their signature and grouping,
//! retries, and a full queue. Hook calls run inside a glommio executor, as on a shard,
//! whose timer keeps ticking while a call waits.

mod common;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::backend::Backend;
use serde_json::{Value, json};
use turntable::hooks::{
    HookError, HookSettings, Hooks, SIGNATURE_HEADER, WebhookSettings, Webhooks, signature,
};

fn hooks(concurrency: usize) -> Hooks {
    Hooks::start(HookSettings {
        timeout: Duration::from_secs(1),
        concurrency,
    })
    .unwrap()
}

/// Runs `f` on a glommio executor, as a shard would.
fn on_shard<T: Send + 'static>(f: impl AsyncFnOnce() -> T + Send + 'static) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(256 << 10)
        .spawn(move || async move { f().await })
        .unwrap()
        .join()
        .unwrap()
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn an_answer_comes_back_as_json_and_connections_are_kept() {
    let backend = Backend::start(|request, n| {
        let user = request.json()["user"].clone();
        (
            200,
            json!({"result": {"user": user, "n": n}}).to_string(),
            Duration::ZERO,
        )
    });
    let url = backend.url("/connect");
    let hooks = hooks(8);
    let replies = on_shard(async move || {
        let client = hooks.client();
        let mut replies = Vec::new();
        for i in 0..5 {
            let body = json!({"user": format!("u{i}")});
            replies.push(client.call(&url, &body, SECOND).await.unwrap());
        }
        assert_eq!(client.in_flight(), 0);
        replies
    });
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.body,
            json!({"result": {"user": format!("u{i}"), "n": i}})
        );
    }
    let requests = backend.requests();
    assert_eq!(requests[0].path, "/connect");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        backend.connections.load(Ordering::SeqCst),
        1,
        "one kept-alive connection for five calls"
    );
}

#[test]
fn a_refusal_status_and_a_body_that_is_not_json_are_errors() {
    let backend = Backend::start(|request, _| match request.path.as_str() {
        "/deny" => (403, r#"{"error":"banned"}"#.to_owned(), Duration::ZERO),
        "/garbage" => (200, "<html>".to_owned(), Duration::ZERO),
        _ => (204, String::new(), Duration::ZERO),
    });
    let (deny, garbage, empty) = (
        backend.url("/deny"),
        backend.url("/garbage"),
        backend.url("/empty"),
    );
    let hooks = hooks(8);
    on_shard(async move || {
        let client = hooks.client();
        match client.call(&deny, &json!({}), SECOND).await {
            Err(HookError::Status { status, body }) => {
                assert_eq!((status, body), (403, br#"{"error":"banned"}"#.to_vec()));
            }
            other => panic!("{other:?}"),
        }
        let garbage = client.call(&garbage, &json!({}), SECOND).await;
        assert!(matches!(garbage, Err(HookError::Body(_))), "{garbage:?}");
        let empty = client.call(&empty, &json!({}), SECOND).await.unwrap();
        assert_eq!((empty.status, empty.body), (204, Value::Null));
        let bad = client.call("ftp://backend/", &json!({}), SECOND).await;
        assert!(matches!(bad, Err(HookError::Url(_))), "{bad:?}");
    });
}

#[test]
fn a_slow_backend_times_out_and_the_shard_keeps_running() {
    let backend = Backend::start(|_, _| (200, "{}".to_owned(), Duration::from_secs(3)));
    let url = backend.url("/slow");
    let hooks = hooks(8);
    let (result, waited, ticks) = on_shard(async move || {
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let counted = ticks.clone();
        let ticker = glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_millis(10)).await;
                counted.set(counted.get() + 1);
            }
        })
        .detach();
        let start = Instant::now();
        let result = hooks
            .client()
            .call(&url, &json!({}), Duration::from_millis(300))
            .await;
        let waited = start.elapsed();
        ticker.cancel();
        (result.map(|_| ()), waited, ticks.get())
    });
    assert!(
        matches!(result, Err(HookError::Timeout(t)) if t == Duration::from_millis(300)),
        "{result:?}"
    );
    assert!(waited < Duration::from_millis(1500), "waited {waited:?}");
    assert!(
        ticks >= 10,
        "the shard's timer ticked {ticks} times meanwhile"
    );
}

#[test]
fn a_backend_that_is_down_is_a_connect_error() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let hooks = hooks(8);
    let result = on_shard(async move || {
        let url = format!("http://{addr}/connect");
        hooks
            .client()
            .call(&url, &json!({}), SECOND)
            .await
            .map(|_| ())
    });
    assert!(matches!(result, Err(HookError::Connect(_))), "{result:?}");
}

#[test]
fn past_the_bound_a_call_is_refused_at_once() {
    let backend = Backend::start(|_, _| (200, "{}".to_owned(), Duration::from_millis(300)));
    let url = backend.url("/slow");
    let hooks = hooks(2);
    on_shard(async move || {
        let client = hooks.client();
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                glommio::spawn_local(async move { client.call(&url, &json!({}), SECOND).await })
            })
            .collect();
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert_eq!(client.in_flight(), 2);
        let start = Instant::now();
        let third = client.call(&url, &json!({}), SECOND).await;
        assert!(matches!(third, Err(HookError::Overloaded(2))), "{third:?}");
        assert!(start.elapsed() < Duration::from_millis(50));
        for call in calls {
            assert!(call.await.is_ok());
        }
        assert_eq!(client.in_flight(), 0);
        assert!(client.call(&url, &json!({}), SECOND).await.is_ok());
        // Another shard's client has its own bound.
        assert_eq!(hooks.client().in_flight(), 0);
    });
}

fn webhook_settings(url: String) -> WebhookSettings {
    WebhookSettings {
        batch_max: 10,
        batch_interval: Duration::from_millis(200),
        ..WebhookSettings::new(url, "a-webhook-secret".into(), SECOND)
    }
}

/// Waits until `f` holds.
fn eventually(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "never became true");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn webhooks_come_in_signed_batches() {
    let backend = Backend::start(|_, _| (200, String::new(), Duration::ZERO));
    let hooks = hooks(8);
    let webhooks = Webhooks::start(&hooks, webhook_settings(backend.url("/events")));
    for i in 0..25 {
        assert_eq!(
            webhooks.send(json!({"event": "user_online", "user": i})),
            Ok(())
        );
    }
    eventually(|| webhooks.counts().delivered == 25);
    let batches = backend.requests();
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| b.json()["events"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [10, 10, 5], "at most batch_max to a batch, in order");
    let users: Vec<Value> = batches
        .iter()
        .flat_map(|b| b.json()["events"].as_array().unwrap().clone())
        .map(|e| e["user"].clone())
        .collect();
    assert_eq!(users, (0..25).map(Value::from).collect::<Vec<_>>());
    for batch in &batches {
        let header = batch
            .header(&SIGNATURE_HEADER.to_ascii_lowercase())
            .unwrap();
        assert_eq!(header, signature(b"a-webhook-secret", &batch.body));
        assert_ne!(header, signature(b"another-secret!!", &batch.body));
        assert!(batch.json()["time"].as_u64().unwrap() > 1_700_000_000_000);
    }
    // Events a while apart go in separate batches, each within the interval.
    let start = Instant::now();
    webhooks.send(json!({"event": "a"})).unwrap();
    eventually(|| backend.requests().len() == 4);
    assert!(start.elapsed() < Duration::from_secs(1));
    webhooks.send(json!({"event": "b"})).unwrap();
    eventually(|| backend.requests().len() == 5);
}

#[test]
fn a_failed_batch_is_tried_again_a_bounded_number_of_times() {
    // The first try of each batch fails; a batch to /down always does.
    let backend = Backend::start(|request, n| match (request.path.as_str(), n) {
        (_, 0) | ("/down", _) => (503, String::new(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let hooks = hooks(8);
    let webhooks = Webhooks::start(&hooks, webhook_settings(backend.url("/events")));
    webhooks.send(json!({"event": "x"})).unwrap();
    eventually(|| webhooks.counts().delivered == 1);
    assert_eq!(backend.requests().len(), 2, "one retry");
    assert_eq!(webhooks.counts().failed_tries, 1);

    let down = Webhooks::start(&hooks, webhook_settings(backend.url("/down")));
    down.send(json!({"event": "y"})).unwrap();
    eventually(|| down.counts().failed == 1);
    let tries = backend
        .requests()
        .iter()
        .filter(|r| r.path == "/down")
        .count();
    assert_eq!(tries, 3, "attempts in all, then dropped");
}

#[test]
fn a_full_queue_drops_events_without_waiting() {
    // A backend that answers slowly holds the first batch while the queue fills.
    let backend = Backend::start(|_, _| (200, String::new(), Duration::from_millis(500)));
    let hooks = hooks(8);
    let settings = WebhookSettings {
        queue: 5,
        batch_max: 1,
        ..webhook_settings(backend.url("/events"))
    };
    let webhooks = Webhooks::start(&hooks, settings);
    let start = Instant::now();
    let accepted = (0..50)
        .filter(|i| webhooks.send(json!({"n": i})).is_ok())
        .count();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "send never waits"
    );
    assert!(accepted <= 7, "{accepted} accepted into a queue of 5");
    assert_eq!(webhooks.counts().dropped, 50 - accepted as u64);
}

/// What a hook call costs from one shard against the backend above on this machine:
/// p50/p99 of one call at a time, then calls per second with 32 in flight. Run with
/// `cargo test --release --test hooks -- --ignored --nocapture bench`.
#[test]
#[ignore = "a benchmark: run it with --ignored --nocapture"]
fn bench_hook_calls() {
    let backend = Backend::start(|_, _| (200, r#"{"result":{}}"#.to_owned(), Duration::ZERO));
    let url = backend.url("/publish");
    let hooks = hooks(64);
    let (mut latencies, calls, elapsed) = on_shard(async move || {
        let client = hooks.client();
        let body = json!({"channel": "arena", "user": "1:42", "data": {"n": 1}});
        let mut latencies = Vec::new();
        for _ in 0..5000 {
            let start = Instant::now();
            client.call(&url, &body, SECOND).await.unwrap();
            latencies.push(start.elapsed());
        }
        let calls = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let start = Instant::now();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (client, url, body, calls) =
                    (client.clone(), url.clone(), body.clone(), calls.clone());
                glommio::spawn_local(async move {
                    while start.elapsed() < Duration::from_secs(2) {
                        client.call(&url, &body, SECOND).await.unwrap();
                        calls.set(calls.get() + 1);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        (latencies, calls.get(), start.elapsed())
    });
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "hook call, one at a time: p50 {:?}, p99 {:?}; 32 in flight: {:.0} calls/s",
        at(0.50),
        at(0.99),
        calls as f64 / elapsed.as_secs_f64()
    );
}
