//! Backend hooks over the wire on a 2-shard server with a small backend written in the
//! tests: a namespace's subscribe hook allows or refuses joins and subscriptions with
//! the backend's code, its publish hook refuses or rewrites publications (the seed's
//! inline cheat check), SocketCluster custom events and World's unknown actions are the
//! backend's RPCs, and a backend that is down or slow refuses (fail closed) without
//! stalling the shard or the connection's later messages.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::backend::Backend;
use common::socketcluster::{handshaken_on, recv as sc_recv, subscribe};
use common::{Client, server_with};
use serde_json::{Value, json};
use turntable::config::SettingType;
use turntable::engine::namespace::Namespaces;
use turntable::runtime::Server;

const QUIET: Duration = Duration::from_millis(300);

/// A backend that refuses channels named `*:secret*`, rewrites publications whose data
/// has `"cheat": true`, answers RPC `echo` with its data and `add` with a sum, and
/// refuses the rest.
fn backend() -> Backend {
    Backend::start(|request, _| {
        let body: Value = request.json();
        let answer = match body["hook"].as_str() {
            Some("subscribe") if body["channel"].as_str().unwrap().contains("secret") => {
                json!({"error": {"code": "app.forbidden", "message": "not for you"}})
            }
            Some("subscribe") => json!({}),
            Some("publish") if body["data"]["cheat"] == true => {
                json!({"data": {"cheat": false, "flagged": body["user"]}})
            }
            Some("publish") if body["data"]["spam"] == true => {
                json!({"error": {"code": "app.spam", "message": "no spam"}})
            }
            Some("publish") => json!({}),
            Some("rpc") if body["method"] == "echo" => json!({"data": body["data"]}),
            Some("rpc") if body["method"] == "slow" => {
                return (200, "{}".into(), Duration::from_secs(3));
            }
            Some("rpc") => json!({"error": {"code": "app.no_method", "message": "no such method"}}),
            _ => json!({"error": {"code": "app.bad", "message": "?"}}),
        };
        (200, answer.to_string(), Duration::ZERO)
    })
}

fn hooked_server(backend: &Backend) -> Server {
    let tables = format!(
        r#"default = {{ subscribe_hook = "{sub}", publish_hook = "{publish}" }}
           turntable = {{ subscribe_hook = "{sub}", publish_hook = "{publish}" }}"#,
        sub = backend.url("/subscribe"),
        publish = backend.url("/publish"),
    );
    let namespaces = Namespaces::parse(&tables).unwrap();
    let rpc = backend.url("/rpc");
    server_with(move |c| {
        c.namespaces = namespaces;
        c.rpc_hook = Some(rpc);
        c.hook_timeout = Duration::from_millis(500);
    })
}

fn player(addr: SocketAddr, shard: usize, user: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/turntable", shard);
    c.recv();
    c.send(json!({"command":"idme","data":user}));
    assert_eq!(c.recv()["command"], "identified");
    c
}

#[test]
fn the_subscribe_hook_allows_and_refuses_with_the_backend_s_code() {
    let backend = backend();
    let server = hooked_server(&backend);
    let addr = server.local_addr();
    let (mut sc, _) = handshaken_on(addr, 0, json!({}));
    subscribe(&mut sc, "news", 2);
    sc.send(json!({"event":"#subscribe","data":{"channel":"secret-plans"},"cid":3}));
    assert_eq!(
        sc_recv(&mut sc),
        json!({"rid":3,"error":{"name":"app.forbidden","message":"not for you"}})
    );
    let mut p = player(addr, 1, "1:1");
    p.send(json!({"command":"joingame","data":{"channel":"secret-room","self":"1:1"}}));
    assert_eq!(
        p.recv(),
        json!({"command":"error","data":{"code":"app.forbidden","message":"not for you"}})
    );
    p.send(json!({"command":"joingame","data":{"channel":"open-room","self":"1:1"}}));
    assert_eq!(p.recv()["command"], "joined");
    let asked: Vec<Value> = backend
        .requests()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["hook"] == "subscribe")
        .collect();
    assert!(
        asked.contains(&json!({"hook":"subscribe","channel":"turntable:open-room",
            "namespace":"turntable","user":"1:1","dialect":"turntable","join":true})),
        "{asked:?}"
    );
}

#[test]
fn the_publish_hook_refuses_or_rewrites_what_members_receive() {
    let backend = backend();
    let server = hooked_server(&backend);
    let addr = server.local_addr();
    let (mut reader, _) = handshaken_on(addr, 1, json!({}));
    subscribe(&mut reader, "arena", 2);
    let (mut writer, _) = handshaken_on(addr, 0, json!({}));
    writer
        .send(json!({"event":"#publish","data":{"channel":"arena","data":{"spam":true}},"cid":4}));
    assert_eq!(
        sc_recv(&mut writer),
        json!({"rid":4,"error":{"name":"app.spam","message":"no spam"}})
    );
    writer
        .send(json!({"event":"#publish","data":{"channel":"arena","data":{"cheat":true}},"cid":5}));
    assert_eq!(sc_recv(&mut writer), json!({"rid":5}));
    assert_eq!(
        sc_recv(&mut reader),
        json!({"event":"#publish","data":{"channel":"arena","data":{"cheat":false,"flagged":null}}}),
        "the backend's data replaced the client's"
    );
    // Messages behind a hook keep their order: three publications, one answer each.
    for i in 0..3 {
        writer.send(
            json!({"event":"#publish","data":{"channel":"arena","data":{"n":i}},"cid":10 + i}),
        );
    }
    for i in 0..3 {
        assert_eq!(sc_recv(&mut writer), json!({"rid": 10 + i}));
        assert_eq!(sc_recv(&mut reader)["data"]["data"]["n"], i);
    }
}

#[test]
fn custom_events_and_unknown_world_actions_are_the_backend_s_rpcs() {
    let backend = backend();
    let server = hooked_server(&backend);
    let addr = server.local_addr();
    let (mut sc, _) = handshaken_on(addr, 0, json!({}));
    sc.send(json!({"event":"echo","data":{"x":[1,2]},"cid":7}));
    assert_eq!(sc_recv(&mut sc), json!({"rid":7,"data":{"x":[1,2]}}));
    sc.send(json!({"event":"nope","data":1,"cid":8}));
    assert_eq!(
        sc_recv(&mut sc),
        json!({"rid":8,"error":{"name":"app.no_method","message":"no such method"}})
    );
    let mut world = Client::connect_on_shard(addr, "/ws/world/default", 1);
    world.send(json!(["authenticate", {"user": {"id": "ann"}}]));
    assert_eq!(world.recv()[0], "authenticated");
    world.send(json!(["echo", 9, {"hello": "world"}]));
    assert_eq!(world.recv(), json!(["success", 9, {"hello": "world"}]));
    world.send(json!(["nope", 10, {}]));
    let refused = world.recv();
    assert_eq!(refused[0], "error");
    assert_eq!(refused[1], 10);
    assert_eq!(refused[2]["code"], "app.no_method");
}

#[test]
fn where_a_namespace_says_backend_the_hook_alone_decides_who_receives_and_publishes() {
    let backend = backend();
    let tables = format!(
        r#"chat = {{ receive = "backend", publish = "backend", subscribe_hook = "{sub}", publish_hook = "{publish}" }}"#,
        sub = backend.url("/subscribe"),
        publish = backend.url("/publish"),
    );
    let namespaces = Namespaces::parse(&tables).unwrap();
    let server = server_with(move |c| c.namespaces = namespaces);
    let addr = server.local_addr();
    // Sockets without a token: a members-only or authenticated rule would refuse them.
    let (mut reader, _) = handshaken_on(addr, 0, json!({}));
    subscribe(&mut reader, "chat:news", 2);
    reader.send(json!({"event":"#subscribe","data":{"channel":"chat:secret"},"cid":3}));
    assert_eq!(
        sc_recv(&mut reader),
        json!({"rid":3,"error":{"name":"app.forbidden","message":"not for you"}})
    );
    let (mut writer, _) = handshaken_on(addr, 1, json!({}));
    writer.send(json!({"event":"#publish","data":{"channel":"chat:news","data":"hello"},"cid":4}));
    assert_eq!(
        sc_recv(&mut writer),
        json!({"rid":4}),
        "not subscribed, yet allowed"
    );
    assert_eq!(
        sc_recv(&mut reader),
        json!({"event":"#publish","data":{"channel":"chat:news","data":"hello"}})
    );
    writer.send(
        json!({"event":"#publish","data":{"channel":"chat:news","data":{"spam":true}},"cid":5}),
    );
    assert_eq!(
        sc_recv(&mut writer),
        json!({"rid":5,"error":{"name":"app.spam","message":"no spam"}})
    );
    reader.expect_silence(QUIET);
    let asked: Vec<Value> = backend.requests().iter().map(|r| r.json()).collect();
    assert!(
        asked.contains(
            &json!({"hook":"publish","channel":"chat:news","namespace":"chat",
            "user":null,"dialect":"socketcluster","data":"hello"})
        ),
        "{asked:?}"
    );
}

#[test]
fn global_hooks_serve_every_namespace_that_names_none_of_its_own() {
    let backend = backend();
    let (sub, publish) = (backend.url("/subscribe"), backend.url("/publish"));
    // `chat` names its own subscribe hook, a backend that lets everything through.
    let allow_all = Backend::start(|_, _| (200, "{}".into(), Duration::ZERO));
    let tables = format!(
        r#"chat = {{ receive = "anyone", publish = "anyone", subscribe_hook = "{}" }}"#,
        allow_all.url("/own")
    );
    let namespaces = Namespaces::parse(&tables).unwrap();
    let server = server_with(move |c| {
        c.subscribe_hook = Some(sub);
        c.publish_hook = Some(publish);
        c.namespaces = namespaces;
    });
    let addr = server.local_addr();
    let mut p = player(addr, 0, "1:1");
    p.send(json!({"command":"joingame","data":{"channel":"secret-room","self":"1:1"}}));
    assert_eq!(
        p.recv(),
        json!({"command":"error","data":{"code":"app.forbidden","message":"not for you"}}),
        "the global subscribe hook decides turntable's joins"
    );
    p.send(json!({"command":"joingame","data":{"channel":"arena","self":"1:1"}}));
    assert_eq!(p.recv()["command"], "joined");
    let (mut reader, _) = handshaken_on(addr, 1, json!({}));
    subscribe(&mut reader, "news", 2);
    reader.send(json!({"event":"#subscribe","data":{"channel":"secret-news"},"cid":3}));
    assert_eq!(sc_recv(&mut reader)["error"]["name"], "app.forbidden");
    reader
        .send(json!({"event":"#publish","data":{"channel":"news","data":{"cheat":true}},"cid":4}));
    // The ack and the delivery, in either order.
    let got = [sc_recv(&mut reader), sc_recv(&mut reader)];
    assert!(got.contains(&json!({"rid":4})), "{got:?}");
    assert!(
        got.contains(&json!({"event":"#publish","data":{"channel":"news",
            "data":{"cheat":false,"flagged":null}}})),
        "the global publish hook rewrote it: {got:?}"
    );
    // The namespace's own hook wins over the global one.
    subscribe(&mut reader, "chat:secret-plans", 5);
    let own: Vec<Value> = allow_all.requests().iter().map(|r| r.json()).collect();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["channel"], "chat:secret-plans");
    let global: Vec<Value> = backend.requests().iter().map(|r| r.json()).collect();
    assert!(
        global.iter().all(|r| r["channel"] != "chat:secret-plans"),
        "{global:?}"
    );
}

#[test]
fn a_slow_or_absent_backend_refuses_and_stalls_no_one_else() {
    let backend = backend();
    let server = hooked_server(&backend);
    let addr = server.local_addr();
    let (mut waiting, _) = handshaken_on(addr, 0, json!({}));
    let asked = std::time::Instant::now();
    waiting.send(json!({"event":"slow","data":1,"cid":2}));
    // Another socket on the same shard is served while the backend sleeps.
    let (mut other, _) = handshaken_on(addr, 0, json!({}));
    other.send(json!({"event":"echo","data":"quick","cid":3}));
    assert_eq!(sc_recv(&mut other), json!({"rid":3,"data":"quick"}));
    let refused = sc_recv(&mut waiting);
    // hook_timeout both ways: not before it, and not long after (the backend would
    // take 3 s).
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(900),
        "refused after {took:?}; hook_timeout is 500 ms"
    );
    assert_eq!(refused["rid"], 2);
    assert_eq!(refused["error"]["name"], "hook.unavailable", "{refused}");
    drop(server);

    let down = "http://127.0.0.1:9/nothing-listens-here";
    let namespaces =
        Namespaces::parse(&format!(r#"default = {{ subscribe_hook = "{down}" }}"#)).unwrap();
    let server = server_with(move |c| c.namespaces = namespaces);
    let (mut sc, _) = handshaken_on(server.local_addr(), 1, json!({}));
    sc.send(json!({"event":"#subscribe","data":{"channel":"news"},"cid":4}));
    let refused = sc_recv(&mut sc);
    assert_eq!(refused["error"]["name"], "hook.unavailable", "{refused}");
    sc.expect_silence(QUIET);
}

#[test]
fn webhooks_tell_the_backend_of_rooms_members_and_users_in_signed_batches() {
    let backend = Backend::start(|_, _| (200, "{}".into(), Duration::ZERO));
    let url = backend.url("/events");
    let server = server_with(move |c| {
        c.webhook_url = Some(url);
        c.webhook_secret = Some("a-webhook-secret-for-tests".into());
    });
    let addr = server.local_addr();
    let mut a = player(addr, 0, "1:1");
    a.send(json!({"command":"joingame","data":{"channel":"arena","self":"1:1"}}));
    assert_eq!(a.recv()["command"], "joined");
    a.send(json!({"command":"leavegame","data":{"channel":"arena"}}));
    assert_eq!(a.recv()["command"], "left");
    a.close();
    let expected = [
        json!({"event":"user_online","user":"1:1"}),
        json!({"event":"channel_occupied","channel":"turntable:arena"}),
        json!({"event":"member_added","channel":"turntable:arena","user":"1:1"}),
        json!({"event":"member_removed","channel":"turntable:arena","user":"1:1"}),
        json!({"event":"channel_vacated","channel":"turntable:arena"}),
        json!({"event":"user_offline","user":"1:1"}),
    ];
    let mut events = Vec::new();
    common::eventually(|| {
        events = backend
            .requests()
            .iter()
            .flat_map(|r| {
                let signed = turntable::hooks::signature(b"a-webhook-secret-for-tests", &r.body);
                assert_eq!(r.header("x-turntable-signature"), Some(signed.as_str()));
                r.json()["events"].as_array().unwrap().clone()
            })
            .collect();
        events.len() >= expected.len()
    });
    for event in &expected {
        assert!(events.contains(event), "{event} in {events:?}");
    }
    let at = |e: &Value| events.iter().position(|x| x == e).unwrap();
    assert!(at(&expected[1]) < at(&expected[2]) && at(&expected[3]) < at(&expected[4]));
}

/// p50 and p99 of `latencies`.
fn quantiles(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (at(0.50), at(0.99))
}

/// SocketCluster publications acknowledged one at a time (publish → ack) on one socket,
/// then as many as 16 sockets on shard 0 publish in 2 s, each with one in flight.
fn publish_figures(addr: SocketAddr) -> ((Duration, Duration), f64) {
    let (mut sc, _) = handshaken_on(addr, 0, json!({}));
    let mut latencies = Vec::new();
    for i in 0..2000u64 {
        let start = std::time::Instant::now();
        sc.send(json!({"event":"#publish","data":{"channel":"bench","data":{"n":i}},"cid":i + 10}));
        assert_eq!(sc_recv(&mut sc)["rid"], i + 10);
        latencies.push(start.elapsed());
    }
    let start = std::time::Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut sc, _) = handshaken_on(addr, 0, json!({}));
                let mut sent = 0u64;
                while start.elapsed() < Duration::from_secs(2) {
                    sc.send(json!({"event":"#publish","data":{"channel":"bench","data":1},"cid":sent + 10}));
                    sc_recv(&mut sc);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let sent: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    (
        quantiles(latencies),
        sent as f64 / start.elapsed().as_secs_f64(),
    )
}

/// `cargo test --release --test backend_hooks -- --ignored --nocapture bench`: what a
/// publish hook adds to a publication's round trip, and publications per second on one
/// shard through it, beside the same server without the hook, in one run.
#[test]
#[ignore = "a benchmark: run it by name"]
fn bench_publish_hook() {
    let backend = Backend::start(|_, _| (200, "{}".into(), Duration::ZERO));
    let plain = server_with(|_| {});
    let ((p50, p99), rate) = publish_figures(plain.local_addr());
    println!(
        "without a hook: publish→ack p50 {p50:?} p99 {p99:?}; {rate:.0} publications/s on one shard"
    );
    drop(plain);
    let url = backend.url("/publish");
    let namespaces =
        Namespaces::parse(&format!(r#"default = {{ publish_hook = "{url}" }}"#)).unwrap();
    let hooked = server_with(move |c| c.namespaces = namespaces);
    let ((p50, p99), rate) = publish_figures(hooked.local_addr());
    println!(
        "with a publish hook: publish→ack p50 {p50:?} p99 {p99:?}; {rate:.0} publications/s on one shard"
    );
}

/// A backend whose connect hook knows one session per user and refuses the rest.
fn sessions() -> Backend {
    Backend::start(|request, _| {
        let body = request.json();
        let answer = match body["credentials"].as_str() {
            Some("sess-ann") => json!({"user": "ann", "profile": {"name": "Ann", "level": 3}}),
            Some("sess-nobody") => json!({}),
            _ => json!({"error": {"code": "auth.session_expired", "message": "log in again"}}),
        };
        (200, answer.to_string(), Duration::ZERO)
    })
}

#[test]
fn the_connect_hook_names_the_user_of_credentials_in_every_dialect_that_identifies() {
    let backend = sessions();
    let url = backend.url("/connect");
    let server = server_with(move |c| c.connect_hook = Some(url));
    let addr = server.local_addr();

    let mut v1 = Client::connect_on_shard(addr, "/turntable", 0);
    v1.recv();
    v1.send(json!({"command":"idme","data":{"credentials":"sess-ann"}}));
    assert_eq!(
        v1.recv(),
        json!({"command":"identified","data":{"id":"ann"}})
    );
    let mut refused = Client::connect_on_shard(addr, "/turntable", 1);
    refused.recv();
    refused.send(json!({"command":"idme","data":{"credentials":"sess-old"}}));
    assert_eq!(
        refused.recv(),
        json!({"command":"error","data":{"code":"auth.session_expired","message":"log in again"}})
    );
    refused.send(json!({"command":"idme","data":{"credentials":"sess-nobody"}}));
    assert_eq!(refused.recv()["data"]["code"], "auth.denied");
    refused.send(json!({"command":"status","data":"busy"}));
    assert_eq!(refused.recv()["data"]["code"], "auth.not_identified");

    let mut world = Client::connect_on_shard(addr, "/ws/world/default", 1);
    world.send(json!(["authenticate", {"credentials": "sess-ann"}]));
    assert_eq!(
        world.recv(),
        json!(["authenticated", {"user": {"id": "ann", "name": "Ann", "level": 3}, "world": {"id": "default"}}])
    );
    world.send(json!(["channel.join", 1, {"channel": "hall"}]));
    assert_eq!(
        world.recv()[0],
        "success",
        "the backend's user is authenticated"
    );
    let mut stranger = Client::connect_on_shard(addr, "/ws/world/default", 0);
    stranger.send(json!(["authenticate", {"credentials": "sess-old"}]));
    assert_eq!(stranger.recv()[1]["code"], "auth.session_expired");

    let mut talker = Client::connect_on_shard(addr, "/talker", 0);
    talker.send(json!({"type":"connect","room":"den","credentials":"sess-ann"}));
    assert_eq!(
        talker.recv(),
        json!({"type":"connected","user":{"id":"ann","name":"Ann","level":3}})
    );
    assert_eq!(talker.recv()["type"], "users");
    let mut gone = Client::connect_on_shard(addr, "/talker", 1);
    gone.send(json!({"type":"connect","room":"den","credentials":"sess-old"}));
    assert_eq!(
        gone.recv(),
        json!({"type":"error","message":"Authentication failed"})
    );
    assert_eq!(gone.expect_close().0, 1008);

    // The backend is asked with the credentials and the dialect that brought them.
    let asked: Vec<Value> = backend.requests().iter().map(|r| r.json()).collect();
    assert!(
        asked.contains(&json!({"hook":"connect","credentials":"sess-ann","dialect":"world"})),
        "{asked:?}"
    );
}
