//! The Talker dialect over real WebSocket connections on a 2-shard server: connecting
//! with tokens, chat between members on different shards, private and updated
//! messages, idle/back/leave with a short grace period, pings, and bad input.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::Client;
use serde_json::{Map, Value, json};
use turntable::auth::{Auth, Secret, now_secs};
use turntable::runtime::Server;

const SECRET: &str = "talker-test-secret-long-enough-for-hs256!";
const GRACE_MS: u64 = 1000;

fn talker_server(change: impl FnOnce(&mut turntable::config::Config)) -> Server {
    common::server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        c.talker_idle_grace = Duration::from_millis(GRACE_MS);
        change(c);
    })
}

fn token(user: &str, expires_at: u64) -> String {
    let mut profile = Map::new();
    profile.insert("avatar".into(), Value::from(format!("{user}.png")));
    Auth::new(&Secret::new(SECRET.into()).unwrap()).issue(
        user,
        Some(&format!("Name {user}")),
        expires_at,
        profile,
    )
}

fn profile(user: &str) -> Value {
    json!({"id": user, "name": format!("Name {user}"), "avatar": format!("{user}.png")})
}

/// Connects `user` to `room` on `shard` and checks the `connected` reply; returns the
/// client and the `users` list it got.
fn enter(addr: SocketAddr, shard: usize, room: &str, user: &str) -> (Client, BTreeSet<String>) {
    let mut c = Client::connect_on_shard(addr, "/talker", shard);
    c.send(json!({"type":"connect","room":room,"token":token(user, now_secs() + 600)}));
    assert_eq!(c.recv(), json!({"type":"connected","user":profile(user)}));
    let ids = common::user_ids(&c.recv());
    (c, ids)
}

fn assert_recent(time: &Value) {
    let time = time.as_u64().expect("time in epoch seconds");
    assert!(time.abs_diff(now_secs()) <= 5, "{time}");
}

#[test]
fn members_on_different_shards_chat_publicly_privately_and_with_updates() {
    let server = talker_server(|_| {});
    let addr = server.local_addr();
    let (mut a, users) = enter(addr, 0, "lobby", "a");
    assert_eq!(users, BTreeSet::from(["a".to_owned()]));
    let (mut b, users) = enter(addr, 1, "lobby", "b");
    assert_eq!(users, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    let join = a.recv();
    assert_eq!(join["type"], "join");
    assert_eq!(join["user"], profile("b"));
    assert_recent(&join["time"]);

    a.send(json!({"type":"message","content":"hello"}));
    let to_a = a.recv();
    let to_b = b.recv();
    assert_eq!(to_a, to_b);
    assert_eq!(to_a["content"], "hello");
    assert_eq!(to_a["user"], json!({"id":"a","name":"Name a"}));
    assert_eq!(to_a.get("private"), None);
    assert_recent(&to_a["time"]);
    let id = to_a["id"].as_u64().unwrap();

    b.send(json!({"type":"message","content":"psst","to":"a"}));
    let private = a.recv();
    assert_eq!(private["content"], "psst");
    assert_eq!(private["private"], true);
    assert_eq!(private["user"]["id"], "b");
    b.expect_silence(Duration::from_millis(200));

    a.send(json!({"type":"message","id":id,"content":"hello, edited"}));
    for c in [&mut a, &mut b] {
        let update = c.recv();
        assert_eq!(update["id"], id);
        assert_eq!(update["update"], true);
        assert_eq!(update["content"], "hello, edited");
    }

    b.send(json!({"type":"message","id":id,"content":"not mine"}));
    assert_eq!(
        b.recv(),
        json!({"type":"error","message":"only the author can update a message"})
    );
    b.send(json!({"type":"message","content":"?","to":"nobody"}));
    let error = b.recv();
    assert_eq!(
        error,
        json!({"type":"error","message":"no such user online in this room"})
    );
    a.expect_silence(Duration::from_millis(200));
}

#[test]
fn bad_tokens_and_early_events_get_the_error_then_a_close() {
    let server = talker_server(|_| {});
    let addr = server.local_addr();
    let failed = json!({"type":"error","message":"Authentication failed"});
    let forged = Auth::new(&Secret::new("x".repeat(40)).unwrap()).issue(
        "a",
        Some("A"),
        now_secs() + 60,
        Map::new(),
    );
    let attempts = [
        json!({"type":"connect","room":"r"}),
        json!({"type":"connect","room":"r","token":forged}),
        json!({"type":"connect","room":"r","token":token("a", now_secs() - 60)}),
    ];
    for attempt in attempts {
        let mut c = Client::connect(addr, "/talker");
        c.send(attempt);
        assert_eq!(c.recv(), failed);
        assert_eq!(c.expect_close().0, 1008);
    }
    let mut early = Client::connect(addr, "/talker");
    early.send(json!({"type":"message","content":"too soon"}));
    assert_eq!(early.recv()["type"], "error");
    assert_eq!(early.expect_close().0, 1008);
    let mut garbage = Client::connect(addr, "/talker");
    garbage.send_text("{not json");
    assert_eq!(garbage.recv()["type"], "error");
    assert_eq!(garbage.expect_close().0, 1008);
}

#[test]
fn after_connecting_bad_events_get_an_error_and_the_connection_stays() {
    let server = talker_server(|_| {});
    let (mut a, _) = enter(server.local_addr(), 0, "r", "a");
    for bad in [
        "{not json",
        r#"{"type":"dance"}"#,
        r#"{"type":"message"}"#,
        r#"{"no":"type"}"#,
    ] {
        a.send_text(bad);
        let error = a.recv();
        assert_eq!(error["type"], "error", "{bad}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{bad}: {error}"
        );
    }
    a.send(json!({"type":"connect","room":"other","token":token("a", now_secs() + 60)}));
    assert_eq!(
        a.recv(),
        json!({"type":"error","message":"already connected"})
    );
    a.send(json!({"type":"message","content":"still here"}));
    assert_eq!(a.recv()["content"], "still here");
}

#[test]
fn a_dropped_member_goes_idle_comes_back_within_grace_and_leaves_after_it() {
    let server = talker_server(|_| {});
    let addr = server.local_addr();
    let (mut a, _) = enter(addr, 0, "r", "a");
    let (b, _) = enter(addr, 1, "r", "b");
    assert_eq!(a.recv()["type"], "join");

    b.drop_abruptly();
    let idle = a.recv();
    assert_eq!(idle["type"], "idle");
    assert_eq!(idle["user"], profile("b"));
    let (b, users) = enter(addr, 0, "r", "b");
    assert!(users.contains("a") && users.contains("b"));
    let back = a.recv();
    assert_eq!(back["type"], "back");
    assert_eq!(back["user"], profile("b"));

    b.drop_abruptly();
    assert_eq!(a.recv()["type"], "idle");
    // Not before the grace ends, and not long after: the server's clock ticks every
    // quarter of the grace, and a loaded machine adds a little.
    let idle_at = std::time::Instant::now();
    a.expect_silence(Duration::from_millis(GRACE_MS - 150));
    let leave = a.recv();
    let after = idle_at.elapsed();
    assert!(
        after <= Duration::from_millis(GRACE_MS + 600),
        "leave {after:?} after idle, grace {GRACE_MS} ms"
    );
    assert_eq!(leave["type"], "leave");
    assert_eq!(leave["user"], "b");
    assert_recent(&leave["time"]);
}

#[test]
fn a_user_with_two_connections_is_one_member_and_close_leaves_at_once() {
    let server = talker_server(|_| {});
    let addr = server.local_addr();
    let (mut a, _) = enter(addr, 0, "r", "a");
    let (b1, _) = enter(addr, 0, "r", "b");
    assert_eq!(a.recv()["type"], "join");
    let (mut b2, users) = enter(addr, 1, "r", "b");
    assert_eq!(users.len(), 2);
    a.expect_silence(Duration::from_millis(200));

    b1.drop_abruptly();
    a.expect_silence(Duration::from_millis(300));
    b2.send(json!({"type":"close"}));
    assert_eq!(b2.expect_close().0, 1000);
    let leave = a.recv();
    assert_eq!(leave["type"], "leave");
    assert_eq!(leave["user"], "b");
}

#[test]
fn silent_connections_count_as_dropped_and_pings_keep_them() {
    let server = talker_server(|c| c.talker_ping_timeout = Duration::from_millis(700));
    let addr = server.local_addr();
    let (mut a, _) = enter(addr, 0, "r", "a");
    let (mut b, _) = enter(addr, 1, "r", "b");
    assert_eq!(a.recv()["type"], "join");
    // a pings; b stays silent and is dropped after the ping timeout.
    for _ in 0..5 {
        a.send(json!({"type":"ping"}));
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(b.expect_close(), (1001, "ping timeout".to_owned()));
    let idle = a.recv();
    assert_eq!(idle["type"], "idle");
    assert_eq!(idle["user"]["id"], "b");
    a.send(json!({"type":"message","content":"alive"}));
    assert_eq!(a.recv()["content"], "alive");
}

#[test]
fn without_a_secret_the_client_user_object_is_trusted() {
    let server = common::server();
    let mut c = Client::connect(server.local_addr(), "/talker");
    c.send(json!({"type":"connect","room":"r","user":{"id":"7","name":"Seven","color":"red"}}));
    assert_eq!(
        c.recv(),
        json!({"type":"connected","user":{"id":"7","name":"Seven","color":"red"}})
    );
    let mut anonymous = Client::connect(server.local_addr(), "/talker");
    anonymous.send(json!({"type":"connect","room":"r","user":{"name":"no id"}}));
    assert_eq!(anonymous.recv()["message"], "Authentication failed");
    assert_eq!(anonymous.expect_close().0, 1008);
}

#[test]
fn a_genuine_token_without_a_name_says_so_and_a_forged_one_does_not() {
    let server = talker_server(|_| {});
    let addr = server.local_addr();
    let nameless = Auth::new(&Secret::new(SECRET.into()).unwrap()).issue(
        "7",
        None,
        now_secs() + 60,
        Map::new(),
    );
    let mut c = Client::connect_on_shard(addr, "/talker", 0);
    c.send(json!({"type":"connect","room":"r","token":nameless}));
    assert_eq!(
        c.recv(),
        json!({"type":"error","message":"Authentication failed: the token has no name claim"})
    );
    assert_eq!(c.expect_close().0, 1008);
    let forged = Auth::new(
        &Secret::new("another-secret-that-is-long-enough-too!!".into()).unwrap(),
    )
    .issue("7", None, now_secs() + 60, Map::new());
    let mut c = Client::connect_on_shard(addr, "/talker", 1);
    c.send(json!({"type":"connect","room":"r","token":forged}));
    assert_eq!(
        c.recv(),
        json!({"type":"error","message":"Authentication failed"})
    );
}
