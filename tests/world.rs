//! The World dialect over real WebSocket connections on a 2-shard server: configured
//! worlds, authentication, ping, channels across shards (RPC `success` to the sender,
//! broadcasts to the other members only), the protocol error codes,
//! `connection.replaced` and `server.fatal`. (Collaborative documents: `tests/world_ot.rs`.)

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Client;
use serde_json::{Map, Value, json};
use turntable::auth::{Auth, Secret, now_secs};
use turntable::runtime::Server;

const SECRET: &str = "world-test-secret-that-is-long-enough";

fn world_server(change: impl FnOnce(&mut turntable::config::Config)) -> Server {
    common::server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        c.worlds = vec!["alpha".into(), "beta".into()];
        change(c);
    })
}

fn token(user: &str) -> String {
    let mut profile = Map::new();
    profile.insert("level".into(), json!(7));
    Auth::new(&Secret::new(SECRET.into()).unwrap()).issue(
        user,
        Some("Display Name"),
        now_secs() + 600,
        profile,
    )
}

/// A client of world `alpha` on `shard`, authenticated as `user`.
fn member(addr: SocketAddr, shard: usize, user: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/ws/world/alpha", shard);
    c.send(json!(["authenticate", {"token": token(user)}]));
    assert_eq!(c.recv()[0], "authenticated");
    c
}

fn rpc(c: &mut Client, action: &str, id: impl Into<Value>, payload: Value) -> Value {
    let id: Value = id.into();
    c.send(json!([action, id, payload]));
    c.recv()
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply[0], "error", "{reply}");
    reply.as_array().unwrap().last().unwrap()["code"]
        .as_str()
        .unwrap()
}

#[test]
fn an_unknown_world_gets_an_error_and_a_close() {
    let server = world_server(|_| {});
    let mut c = Client::connect(server.local_addr(), "/ws/world/gamma");
    assert_eq!(c.recv(), json!(["error", {"code": "world.unknown_world"}]));
    assert_eq!(c.expect_close(), (4404, "unknown world".into()));
}

#[test]
fn authenticate_comes_first_and_checks_the_token() {
    let server = world_server(|_| {});
    let mut c = Client::connect(server.local_addr(), "/ws/world/beta");
    c.send(json!(["ping", 1234]));
    assert_eq!(c.recv(), json!(["pong", 1234]));
    let reply = rpc(&mut c, "channel.join", 1, json!({"channel": "a"}));
    assert_eq!(reply[1], 1);
    assert_eq!(error_code(&reply), "auth.required");

    c.send(json!(["authenticate", {"token": "not.a.token"}]));
    assert_eq!(c.recv(), json!(["error", {"code": "auth.denied"}]));
    let forged = Auth::new(&Secret::new("another-secret-that-is-long-enough".into()).unwrap())
        .issue("mallory", None, now_secs() + 600, Map::new());
    c.send(json!(["authenticate", {"token": forged}]));
    assert_eq!(c.recv(), json!(["error", {"code": "auth.denied"}]));

    c.send(json!(["authenticate", {"token": token("ann")}]));
    assert_eq!(
        c.recv(),
        json!(["authenticated", {
            "user": {"id": "ann", "name": "Display Name", "level": 7},
            "world": {"id": "beta"}
        }])
    );
    c.send(json!(["authenticate", {"token": token("ann")}]));
    assert_eq!(error_code(&c.recv()), "auth.already_authenticated");
}

#[test]
fn channel_traffic_crosses_shards_and_skips_the_sender() {
    let server = world_server(|_| {});
    let addr = server.local_addr();
    let mut ann = member(addr, 0, "ann");
    let mut bob = member(addr, 1, "bob");
    let mut cy = member(addr, 1, "cy");

    assert_eq!(
        rpc(&mut ann, "channel.join", 1, json!({"channel": "hall"})),
        json!(["success", 1, {"channel": "hall", "members": ["ann"]}])
    );
    let joined = rpc(&mut bob, "channel.join", "b1", json!({"channel": "hall"}));
    assert_eq!(joined[1], "b1");
    let mut members = joined[2]["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m.to_string());
    assert_eq!(members, vec![json!("ann"), json!("bob")]);
    assert_eq!(
        ann.recv(),
        json!(["channel.member_joined", {"channel": "hall", "user": "bob"}])
    );

    let sent = rpc(
        &mut ann,
        "channel.send",
        2,
        json!({"channel": "hall", "data": {"text": "hi"}}),
    );
    assert_eq!(sent, json!(["success", 2, {"channel": "hall"}]));
    assert_eq!(
        bob.recv(),
        json!(["channel.event", {"channel": "hall", "seq": 1, "user": "ann", "data": {"text": "hi"}}])
    );

    let hidden = rpc(&mut cy, "channel.members", 3, json!({"channel": "hall"}));
    assert_eq!(
        error_code(&hidden),
        "channel.forbidden",
        "world channels list their members to members"
    );
    let listed = rpc(&mut ann, "channel.members", 3, json!({"channel": "hall"}));
    let mut listed = listed[2]["members"].as_array().unwrap().clone();
    listed.sort_by_key(|m| m.to_string());
    assert_eq!(listed, vec![json!("ann"), json!("bob")]);
    let outsider = rpc(
        &mut cy,
        "channel.send",
        4,
        json!({"channel": "hall", "data": 1}),
    );
    assert_eq!(error_code(&outsider), "channel.not_member");

    assert_eq!(
        rpc(&mut bob, "channel.leave", 5, json!({"channel": "hall"})),
        json!(["success", 5, {"channel": "hall"}])
    );
    assert_eq!(
        ann.recv(),
        json!(["channel.member_left", {"channel": "hall", "user": "bob"}])
    );
    let after = rpc(
        &mut bob,
        "channel.send",
        6,
        json!({"channel": "hall", "data": 1}),
    );
    assert_eq!(error_code(&after), "channel.not_member");

    ann.expect_silence(Duration::from_millis(200));
    cy.expect_silence(Duration::from_millis(50));
}

#[test]
fn worlds_do_not_share_channels() {
    let server = world_server(|_| {});
    let addr = server.local_addr();
    let mut ann = member(addr, 0, "ann");
    let mut other = Client::connect_on_shard(addr, "/ws/world/beta", 1);
    other.send(json!(["authenticate", {"token": token("bob")}]));
    assert_eq!(other.recv()[0], "authenticated");
    rpc(&mut ann, "channel.join", 1, json!({"channel": "hall"}));
    let joined = rpc(&mut other, "channel.join", 1, json!({"channel": "hall"}));
    assert_eq!(joined[2]["members"], json!(["bob"]));
    rpc(
        &mut other,
        "channel.send",
        2,
        json!({"channel": "hall", "data": 1}),
    );
    ann.expect_silence(Duration::from_millis(200));
}

#[test]
fn bad_input_gets_the_documented_codes_and_the_connection_carries_on() {
    let server = world_server(|_| {});
    let mut c = member(server.local_addr(), 0, "ann");
    let cases = [
        (json!(["fly", 1, {}]).to_string(), "protocol.unknown_action"),
        (
            json!(["channel.join", 2, {}]).to_string(),
            "protocol.invalid_payload",
        ),
        (
            json!(["channel.join", 3, {"channel": 5}]).to_string(),
            "protocol.invalid_payload",
        ),
        (
            json!(["channel.join", 4, {"channel": "x".repeat(300)}]).to_string(),
            "protocol.invalid_payload",
        ),
        (
            json!(["channel.join", {"channel": "a"}]).to_string(),
            "protocol.invalid_payload",
        ),
        ("{".to_owned(), "protocol.invalid_message"),
        (
            json!({"action": "ping"}).to_string(),
            "protocol.invalid_message",
        ),
        (json!([1, 2, 3]).to_string(), "protocol.invalid_message"),
        (
            json!(["a", 1, 2, 3]).to_string(),
            "protocol.invalid_message",
        ),
    ];
    for (frame, code) in cases {
        c.send_text(&frame);
        let reply = c.recv();
        assert_eq!(error_code(&reply), code, "{frame} -> {reply}");
    }
    let unknown = rpc(&mut c, "fly", 9, json!({}));
    assert_eq!(unknown[1], 9, "errors carry the request's id: {unknown}");
    let bad_payload = rpc(&mut c, "channel.join", 10, json!({"channel": 7}));
    assert_eq!(bad_payload[1], 10, "{bad_payload}");
    assert_eq!(error_code(&bad_payload), "protocol.invalid_payload");
    c.send_binary(b"[\"ping\",1]");
    let binary = c.recv();
    assert_eq!(binary.as_array().map(Vec::len), Some(2), "no id: {binary}");
    assert_eq!(binary[1]["code"], "protocol.invalid_message", "{binary}");
    c.send(json!(["ping", "still here"]));
    assert_eq!(c.recv(), json!(["pong", "still here"]));
}

#[test]
fn one_connection_too_many_replaces_the_oldest() {
    let server = world_server(|c| c.world_max_connections_per_user = Some(2));
    let addr = server.local_addr();
    let mut first = member(addr, 0, "ann");
    let mut second = member(addr, 1, "ann");
    rpc(&mut first, "channel.join", 1, json!({"channel": "hall"}));
    let mut third = member(addr, 1, "ann");
    assert_eq!(
        first.recv(),
        json!(["error", {"code": "connection.replaced"}])
    );
    assert_eq!(first.expect_close(), (4000, "connection replaced".into()));
    for c in [&mut second, &mut third] {
        c.send(json!(["ping", 1]));
        assert_eq!(c.recv(), json!(["pong", 1]));
    }
    let mut fourth = member(addr, 0, "ann");
    assert_eq!(
        second.recv(),
        json!(["error", {"code": "connection.replaced"}])
    );
    assert_eq!(second.expect_close().0, 4000);
    fourth.send(json!(["ping", 2]));
    assert_eq!(fourth.recv(), json!(["pong", 2]));
    let mut bob = member(addr, 0, "bob");
    bob.send(json!(["ping", 3]));
    assert_eq!(bob.recv(), json!(["pong", 3]));
    third.expect_silence(Duration::from_millis(100));
}

#[test]
fn a_failing_handler_ends_only_its_own_connection() {
    let server = world_server(|c| c.fault_injection = true);
    let addr = server.local_addr();
    let mut victim = member(addr, 0, "ann");
    let mut neighbour = member(addr, 0, "bob");
    rpc(
        &mut neighbour,
        "channel.join",
        1,
        json!({"channel": "hall"}),
    );
    rpc(&mut victim, "channel.join", 1, json!({"channel": "hall"}));
    assert_eq!(neighbour.recv()[0], "channel.member_joined");

    victim.send(json!(["test.fail", 2, {}]));
    assert_eq!(victim.recv(), json!(["error", {"code": "server.fatal"}]));
    assert_eq!(victim.expect_close(), (1011, "internal error".into()));
    assert_eq!(
        neighbour.recv(),
        json!(["channel.member_left", {"channel": "hall", "user": "ann"}])
    );
    neighbour.send(json!(["ping", 1]));
    assert_eq!(neighbour.recv(), json!(["pong", 1]));
    let mut newcomer = member(addr, 0, "cy");
    assert_eq!(
        rpc(&mut newcomer, "channel.join", 1, json!({"channel": "hall"}))[2]["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn the_failing_path_is_unreachable_without_fault_injection() {
    let server = world_server(|_| {});
    let mut c = member(server.local_addr(), 0, "ann");
    let reply = rpc(&mut c, "test.fail", 1, json!({}));
    assert_eq!(error_code(&reply), "protocol.unknown_action");
}
