//! What the server checked is what it forwards: a message naming a key twice in one
//! object (written plainly or escaped, `"fr\u006fm"`) is refused with each dialect's
//! documented error, and nothing of it reaches other clients. Readers disagree on which
//! of two values counts, so a forwarded copy could show another sender than the one
//! the server checked.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::socketcluster::{handshaken_on, recv as sc_recv, subscribe};
use common::{Client, server};
use serde_json::json;

const QUIET: Duration = Duration::from_millis(300);

fn player(addr: SocketAddr, shard: usize, user: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/turntable", shard);
    c.recv();
    c.send(json!({"command":"idme","data":user}));
    assert_eq!(c.recv()["command"], "identified");
    c.send(json!({"command":"joingame","data":{"channel":"duel","self":user}}));
    assert_eq!(c.recv()["command"], "joined");
    c
}

#[test]
fn a_game_action_with_a_second_from_is_refused_and_never_delivered() {
    let server = server();
    let addr = server.local_addr();
    let mut a = player(addr, 0, "A");
    let mut b = player(addr, 1, "B");
    assert_eq!(a.recv()["command"], "memberjoined");
    for forged in [
        r#"{"command":"game","data":{"channel":"duel","actions":[{"from":"A","from":"B","data":{}}]}}"#,
        r#"{"command":"game","data":{"channel":"duel","actions":[{"from":"A","fr\u006fm":"B","data":{}}]}}"#,
        r#"{"command":"game","command":"idme","data":{"channel":"duel","actions":[{"from":"A"}]}}"#,
    ] {
        a.send_text(forged);
        let refused = a.recv();
        assert_eq!(refused["command"], "error", "{forged}: {refused}");
        assert_eq!(
            refused["data"]["code"], "protocol.duplicate_key",
            "{forged}"
        );
    }
    b.expect_silence(QUIET);
    // The same key in different objects is fine.
    a.send_text(r#"{"command":"game","data":{"channel":"duel","actions":[{"from":"A","data":{"from":"x"}}]}}"#);
    assert_eq!(b.recv()["data"]["actions"][0]["from"], "A");
}

#[test]
fn world_socketcluster_and_talker_refuse_repeated_keys_in_their_words() {
    let server = server();
    let addr = server.local_addr();

    let mut world = Client::connect_on_shard(addr, "/ws/world/default", 0);
    world.send(json!(["authenticate", {"user": {"id": "ann"}}]));
    assert_eq!(world.recv()[0], "authenticated");
    world.send_text(r#"["channel.join", 7, {"channel": "hall", "channel": "lobby"}]"#);
    let refused = world.recv();
    assert_eq!(refused[0], "error", "{refused}");
    assert_eq!(refused[1], 7, "the answer names the request");
    assert_eq!(refused[2]["code"], "protocol.duplicate_key");

    let (mut sc, _) = handshaken_on(addr, 1, json!({}));
    let (mut listener, _) = handshaken_on(addr, 0, json!({}));
    subscribe(&mut listener, "news", 2);
    sc.send_text(
        r##"{"event":"#publish","data":{"channel":"news","ch\u0061nnel":"other","data":1},"cid":5}"##,
    );
    let refused = sc_recv(&mut sc);
    assert_eq!(refused["rid"], 5, "{refused}");
    assert_eq!(refused["error"]["name"], "InvalidMessageError");
    listener.expect_silence(QUIET);

    let mut talker = Client::connect_on_shard(addr, "/talker", 1);
    talker.send(json!({"type":"connect","room":"den","user":{"id":"t","name":"T"}}));
    assert_eq!(talker.recv()["type"], "connected");
    assert_eq!(talker.recv()["type"], "users");
    talker.send_text(r#"{"type":"message","content":"a","content":"b"}"#);
    let refused = talker.recv();
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("twice"),
        "{refused}"
    );
}
