//! SocketCluster protocol v1 over real WebSocket connections on a 2-shard server, frame
//! by frame as the wire notes show the reference server: handshake, pub/sub across
//! shards and dialects, batches, auth, `#disconnect`, keepalive, and bad input. (The
//! real npm clients are driven by `tests/socketcluster_npm.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::Client;
use common::socketcluster::{handshaken_on, recv, subscribe};
use serde_json::{Map, Value, json};
use tungstenite::Message;
use turntable::auth::{Auth, Secret, now_secs};
use turntable::runtime::Server;

const SECRET: &str = "socketcluster-test-secret-long-enough!!";

fn sc_server(change: impl FnOnce(&mut turntable::config::Config)) -> Server {
    common::server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        change(c);
    })
}

fn auth() -> Auth {
    Auth::new(&Secret::new(SECRET.into()).unwrap())
}

fn delivery(channel: &str, data: Value) -> Value {
    json!({"event":"#publish","data":{"channel":channel,"data":data}})
}

#[test]
fn handshake_gives_a_socket_id_and_the_ping_timeout() {
    let server = sc_server(|c| c.socketcluster_ping_timeout = Duration::from_millis(4000));
    let (_c, data) = handshaken_on(server.local_addr(), 0, json!({}));
    let id = data["id"].as_str().unwrap();
    assert_eq!(id.len(), 20, "{data}");
    assert_eq!(data["pingTimeout"], 4000);
    assert_eq!(data["isAuthenticated"], false);
    let (_d, other) = handshaken_on(server.local_addr(), 1, json!({}));
    assert_ne!(other["id"], data["id"]);
}

#[test]
fn anything_before_the_handshake_closes_with_4009() {
    let server = sc_server(|_| {});
    for first in [
        r##"{"event":"#subscribe","data":{"channel":"a"},"cid":1}"##,
        "#2",
        "not json",
    ] {
        let mut c = Client::connect(server.local_addr(), "/socketcluster/");
        c.send_text(first);
        assert_eq!(c.expect_close(), (4009, String::new()), "{first}");
    }
}

#[test]
fn publications_reach_subscribers_on_every_shard_before_the_ack() {
    let server = sc_server(|_| {});
    let addr = server.local_addr();
    let (mut a, _) = handshaken_on(addr, 0, json!({}));
    let (mut b, _) = handshaken_on(addr, 1, json!({}));
    let (mut outsider, _) = handshaken_on(addr, 1, json!({}));
    subscribe(&mut a, "room1", 4);
    subscribe(&mut b, "room1", 4);
    subscribe(&mut b, "room1", 7); // again: a plain ack

    a.send(json!({"event":"#publish","data":{"channel":"room1","data":"hi with cid"},"cid":5}));
    assert_eq!(recv(&mut a), delivery("room1", json!("hi with cid")));
    assert_eq!(recv(&mut a), json!({"rid":5}));
    assert_eq!(recv(&mut b), delivery("room1", json!("hi with cid")));

    a.send(json!({"event":"#publish","data":{"channel":"room1","data":{"n":[1,2]}}}));
    assert_eq!(recv(&mut a), delivery("room1", json!({"n":[1,2]})));
    assert_eq!(recv(&mut b), delivery("room1", json!({"n":[1,2]})));

    outsider.send(json!({"event":"#publish","data":{"channel":"room1","data":3},"cid":6}));
    assert_eq!(recv(&mut outsider), json!({"rid":6}));
    assert_eq!(recv(&mut a), delivery("room1", json!(3)));
    assert_eq!(recv(&mut b), delivery("room1", json!(3)));

    b.send(json!({"event":"#unsubscribe","data":"room1","cid":8}));
    assert_eq!(recv(&mut b), json!({"rid":8}));
    a.send(json!({"event":"#publish","data":{"channel":"room1","data":"after"},"cid":9}));
    assert_eq!(recv(&mut a), delivery("room1", json!("after")));
    assert_eq!(recv(&mut a), json!({"rid":9}));
    b.expect_silence(Duration::from_millis(300));

    b.send(json!({"event":"#unsubscribe","data":"room1","cid":10}));
    let refused = recv(&mut b);
    assert_eq!(refused["rid"], 10);
    assert_eq!(refused["error"]["name"], "BrokerError");
    outsider.expect_silence(Duration::from_millis(100));
}

#[test]
fn invalid_channels_get_broker_errors_and_the_connection_stays() {
    let server = sc_server(|_| {});
    let (mut c, _) = handshaken_on(server.local_addr(), 0, json!({}));
    c.send(json!({"event":"#subscribe","data":{},"cid":11}));
    let e = recv(&mut c);
    assert_eq!(
        (e["rid"].clone(), e["error"]["name"].clone()),
        (json!(11), json!("BrokerError"))
    );
    c.send(json!({"event":"#subscribe","data":{"channel":7},"cid":12}));
    assert_eq!(recv(&mut c)["error"]["name"], "BrokerError");
    c.send(json!({"event":"#publish","data":{"data":1},"cid":13}));
    assert_eq!(recv(&mut c)["error"]["name"], "BrokerError");
    c.send(json!({"event":"#subscribe","data":{"channel":"x".repeat(300)},"cid":14}));
    assert_eq!(recv(&mut c)["error"]["name"], "BrokerError");
    subscribe(&mut c, "fine", 15);
}

#[test]
fn custom_events_get_no_handler_errors_and_batches_are_split() {
    let server = sc_server(|_| {});
    let (mut c, _) = handshaken_on(server.local_addr(), 1, json!({}));
    c.send_text(r#"[{"event":"echo","data":"batched-1","cid":16},{"event":"echo","data":"batched-2","cid":17}]"#);
    for rid in [16, 17] {
        let e = recv(&mut c);
        assert_eq!(e["rid"], rid);
        assert_eq!(e["error"]["name"], "NoHandlerError");
    }
    c.send(json!({"event":"noSuchEvent","data":1}));
    c.expect_silence(Duration::from_millis(200));
}

#[test]
fn malformed_input_is_ignored_and_disturbs_no_one() {
    let server = sc_server(|_| {});
    let addr = server.local_addr();
    let (mut bad, _) = handshaken_on(addr, 0, json!({}));
    let (mut good, _) = handshaken_on(addr, 0, json!({}));
    subscribe(&mut good, "calm", 2);
    for junk in [
        "{",
        "42",
        "this is not json",
        "[]",
        "null",
        "{}",
        "\"#1\"",
        r#"{"event":123,"data":1,"cid":3}"#,
        r#"{"rid":424242,"data":1}"#,
        r#"[1,"x",{"rid":1},[[]]]"#,
    ] {
        bad.send_text(junk);
    }
    bad.ws
        .send(Message::binary(vec![0xff, 0x00, 0x7b]))
        .unwrap();
    bad.expect_silence(Duration::from_millis(300));
    subscribe(&mut bad, "calm", 5);
    good.send(json!({"event":"#publish","data":{"channel":"calm","data":"still here"}}));
    assert_eq!(recv(&mut good), delivery("calm", json!("still here")));
    assert_eq!(recv(&mut bad), delivery("calm", json!("still here")));
}

#[test]
fn authentication_valid_invalid_expired_and_removed() {
    let server = sc_server(|_| {});
    let addr = server.local_addr();
    let a = auth();
    let mut claims = Map::new();
    claims.insert("username".into(), json!("bob"));
    let valid = a.sign(&claims);

    let (_c, data) = handshaken_on(addr, 0, json!({"authToken": valid}));
    assert_eq!(data["isAuthenticated"], true);
    let (mut c, data) = handshaken_on(addr, 1, json!({"authToken": "not.a.token"}));
    assert_eq!(data["isAuthenticated"], false);
    assert_eq!(data["authError"]["name"], "AuthTokenInvalidError");

    let forged = Auth::new(&Secret::new("another-secret-that-is-long-enough!!!".into()).unwrap())
        .sign(&claims);
    c.send(json!({"event":"#authenticate","data":forged,"cid":20}));
    assert_eq!(
        recv(&mut c),
        json!({"event":"#removeAuthToken","data":null})
    );
    let refused = recv(&mut c);
    assert_eq!(refused["rid"], 20);
    assert_eq!(refused["error"]["name"], "AuthTokenInvalidError");
    assert_eq!(refused["data"]["isAuthenticated"], false);
    assert_eq!(
        refused["data"]["authError"]["name"],
        "AuthTokenInvalidError"
    );

    let mut old = claims.clone();
    old.insert("exp".into(), json!(now_secs() - 5));
    c.send(json!({"event":"#authenticate","data":a.sign(&old),"cid":21}));
    assert_eq!(recv(&mut c)["event"], "#removeAuthToken");
    assert_eq!(recv(&mut c)["error"]["name"], "AuthTokenExpiredError");
    let (_late, data) = handshaken_on(addr, 0, json!({"authToken": a.sign(&old)}));
    assert_eq!(
        data["isAuthenticated"], false,
        "an expired token in the handshake"
    );
    assert_eq!(data["authError"]["name"], "AuthTokenExpiredError");

    c.send(json!({"event":"#authenticate","data":valid,"cid":22}));
    assert_eq!(
        recv(&mut c),
        json!({"rid":22,"data":{"isAuthenticated":true,"authError":null}})
    );
    c.send(json!({"event":"#removeAuthToken"}));
    c.expect_silence(Duration::from_millis(200));
}

#[test]
fn a_token_past_half_its_life_is_renewed_with_set_auth_token_after_a_pong() {
    let server = sc_server(|c| c.socketcluster_ping_interval = Duration::from_millis(200));
    let a = auth();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!("alice"));
    claims.insert("iat".into(), json!(now_secs() - 3000));
    claims.insert("exp".into(), json!(now_secs() + 600));
    let mut c = Client::connect(server.local_addr(), "/socketcluster/");
    c.send(json!({"event":"#handshake","data":{"authToken":a.sign(&claims)},"cid":1}));
    assert_eq!(recv(&mut c)["data"]["isAuthenticated"], true);
    // Held back until the client's next #2 (socketcluster-client 20.x would otherwise
    // apply it before the handshake response and then revert to the old token).
    match c.next() {
        Message::Text(t) if t.as_str() == "#1" => c.send_text("#2"),
        other => panic!("expected #1 before the renewal, got {other:?}"),
    }
    let set = recv(&mut c);
    assert_eq!(set["event"], "#setAuthToken");
    assert!(set.get("cid").is_none());
    let renewed = a
        .verify_claims(set["data"]["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(renewed["sub"], "alice");
    assert!(renewed["exp"].as_u64().unwrap() >= now_secs() + 3500);
}

#[test]
fn disconnect_closes_with_the_given_code() {
    let server = sc_server(|_| {});
    let (mut c, _) = handshaken_on(server.local_addr(), 0, json!({}));
    c.send(json!({"event":"#disconnect","data":{"code":4321,"data":"bye"}}));
    assert_eq!(c.expect_close(), (4321, String::new()));
}

#[test]
fn keepalive_pings_and_closes_silent_clients_with_4001() {
    let server = sc_server(|c| {
        c.socketcluster_ping_interval = Duration::from_millis(200);
        c.socketcluster_ping_timeout = Duration::from_millis(700);
    });
    let addr = server.local_addr();
    let (mut silent, _) = handshaken_on(addr, 0, json!({}));
    let (mut live, _) = handshaken_on(addr, 1, json!({}));
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        match live.next() {
            Message::Text(t) if t.as_str() == "#1" => {
                pings += 1;
                live.send_text("#2");
            }
            other => panic!("expected #1, got {other:?}"),
        }
    }
    assert!(pings >= 3, "{pings} pings");
    assert_eq!(silent.expect_close(), (4001, String::new()));
    subscribe(&mut live, "still-open", 3);
}

#[test]
fn game_rooms_are_readable_where_their_namespace_says_and_never_writable() {
    let namespaces =
        <turntable::engine::namespace::Namespaces as turntable::config::SettingType>::parse(
            r#"turntable = { receive = "authenticated" }"#,
        )
        .unwrap();
    let server = sc_server(|c| c.namespaces = namespaces);
    let addr = server.local_addr();
    let (mut anonymous, _) = handshaken_on(addr, 1, json!({}));
    anonymous.send(json!({"event":"#subscribe","data":{"channel":"turntable:arena"},"cid":2}));
    assert_eq!(recv(&mut anonymous)["error"]["message"], "identify first");
    let mut claims = Map::new();
    claims.insert("username".into(), json!("watcher"));
    let (mut sc, _) = handshaken_on(addr, 0, json!({"authToken": auth().sign(&claims)}));
    subscribe(&mut sc, "turntable:arena", 2);
    let mut player = Client::connect_on_shard(addr, "/turntable", 1);
    assert_eq!(player.recv()["command"], "idyou");
    let token = auth().issue("p1", None, now_secs() + 60, Map::new());
    player.send(json!({"command":"idme","data":{"token":token}}));
    assert_eq!(player.recv()["command"], "identified");
    player.send(json!({"command":"joingame","data":{"channel":"arena","self":"p1"}}));
    assert_eq!(player.recv()["command"], "joined");

    player.send(json!({"command":"game","data":{"channel":"arena","actions":[{"timestamp":1,"from":"p1","data":{"move":"e4"}}]}}));
    let game = player.recv();
    let stamped = &game["data"]["actions"][0]["timestamp"];
    assert!(stamped.is_u64(), "the server stamps each action: {game}");
    let actions =
        json!([{"data":{"move":"e4"},"from":"p1","client_timestamp":1,"timestamp":stamped}]);
    assert_eq!(
        game,
        json!({"command":"game","data":{"channel":"arena","seq":1,"from":"p1","actions":actions}})
    );
    assert_eq!(recv(&mut sc), delivery("turntable:arena", actions));

    sc.send(json!({"event":"#publish","data":{"channel":"turntable:arena","data":[{"from":"p1"}]},"cid":3}));
    assert_eq!(
        recv(&mut sc)["error"]["message"],
        "not a member of this channel",
        "only players write a game room"
    );
    player.expect_silence(Duration::from_millis(300));
}
