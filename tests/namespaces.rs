//! Channel namespaces over the wire on a 2-shard server: with the defaults no client
//! reads or writes a turntable game room, a lobby game, a World channel or document or
//! a Talker room it is not a member of, from any dialect, while SocketCluster's open
//! topics and the lobby stay open; configured namespaces change the rules (who may
//! receive, publish, how many may join, whether joins are announced).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::socketcluster::{handshaken_on, recv as sc_recv, subscribe};
use common::{Client, server, server_with};
use serde_json::{Map, Value, json};
use turntable::auth::{Auth, Secret};
use turntable::config::SettingType;
use turntable::engine::namespace::Namespaces;

const QUIET: Duration = Duration::from_millis(300);
const SECRET: &str = "namespace-test-secret-long-enough-for-hs256";

fn turntable_member(addr: SocketAddr, shard: usize, user: &str, room: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/turntable", shard);
    c.recv();
    c.send(json!({"command":"idme","data":user}));
    assert_eq!(c.recv()["command"], "identified");
    c.send(json!({"command":"joingame","data":{"channel":room,"self":user}}));
    let joined = c.recv();
    assert_eq!(joined["command"], "joined", "{joined}");
    c
}

fn world_member(addr: SocketAddr, shard: usize, user: &str, channel: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/ws/world/default", shard);
    c.send(json!(["authenticate", {"user": {"id": user}}]));
    assert_eq!(c.recv()[0], "authenticated");
    c.send(json!(["channel.join", 1, {"channel": channel}]));
    assert_eq!(c.recv()[0], "success");
    c
}

fn talker_member(addr: SocketAddr, shard: usize, user: &str, room: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/talker", shard);
    c.send(json!({"type":"connect","room":room,"user":{"id":user,"name":user}}));
    assert_eq!(c.recv()["type"], "connected");
    assert_eq!(c.recv()["type"], "users");
    c
}

/// A SocketCluster socket's `#subscribe` and `#publish` answers for `channel`.
fn sc_try(sc: &mut Client, channel: &str, cid: u64) -> (Value, Value) {
    sc.send(json!({"event":"#subscribe","data":{"channel":channel},"cid":cid}));
    let subscribed = sc_recv(sc);
    let forged = json!([{"from": "victim", "data": {"strike": 1}}]);
    sc.send(json!({"event":"#publish","data":{"channel":channel,"data":forged},"cid":cid + 1}));
    let published = sc_recv(sc);
    (subscribed, published)
}

fn broker_error(answer: &Value, cid: u64) -> &str {
    assert_eq!(answer["rid"], cid, "{answer}");
    assert_eq!(answer["error"]["name"], "BrokerError", "{answer}");
    answer["error"]["message"].as_str().unwrap()
}

#[test]
fn a_socketcluster_socket_reaches_no_other_dialect_s_channels_by_default() {
    let server = server();
    let addr = server.local_addr();
    let mut game = turntable_member(addr, 0, "1:1", "CStrike");
    let mut hall = world_member(addr, 1, "ann", "hall");
    let mut den = talker_member(addr, 0, "tess", "den");
    let (mut sc, _) = handshaken_on(addr, 1, json!({}));

    let forbidden = "the channel's namespace does not allow this";
    let mut cid = 10;
    for channel in [
        "turntable:CStrike",
        "game:duel",
        "world:default:hall",
        "talker:den",
    ] {
        let (subscribed, published) = sc_try(&mut sc, channel, cid);
        assert_eq!(broker_error(&subscribed, cid), forbidden, "{channel}");
        assert_eq!(
            broker_error(&published, cid + 1),
            "not a member of this channel",
            "{channel}"
        );
        cid += 2;
    }
    let (subscribed, published) = sc_try(&mut sc, "world:default:ot:notes", cid);
    assert!(broker_error(&subscribed, cid).contains("document"));
    assert!(broker_error(&published, cid + 1).contains("document"));

    // Nothing reached the members, in any dialect.
    game.expect_silence(QUIET);
    hall.expect_silence(QUIET);
    den.expect_silence(QUIET);

    // The same name without a namespace is a SocketCluster topic of its own.
    subscribe(&mut sc, "CStrike", 40);
    game.send(json!({"command":"game","data":{"channel":"CStrike","actions":[{"from":"1:1"}]}}));
    assert_eq!(game.recv()["data"]["actions"][0]["from"], "1:1");
    sc.expect_silence(QUIET);
}

#[test]
fn the_lobby_is_open_to_read_and_only_the_server_writes_it() {
    let server = server();
    let addr = server.local_addr();
    let (mut sc, _) = handshaken_on(addr, 0, json!({}));
    subscribe(&mut sc, "lobby", 2);
    sc.send(json!({"event":"#publish","data":{"channel":"lobby","data":{}},"cid":3}));
    assert_eq!(
        broker_error(&sc_recv(&mut sc), 3),
        "only the server publishes to this channel"
    );
    let mut v1 = turntable_member(addr, 1, "1:2", "lobby");
    v1.send(json!({"command":"game","data":{"channel":"lobby","actions":[{"from":"1:2"}]}}));
    assert_eq!(v1.recv()["data"]["code"], "channel.server_only");
}

#[test]
fn members_of_one_dialect_s_rooms_are_apart_from_another_s_channels() {
    let server = server();
    let addr = server.local_addr();
    let mut hall = world_member(addr, 0, "ann", "hall");
    // A turntable room named like a World channel is a turntable room.
    let mut v1 = turntable_member(addr, 1, "1:3", "world:default:hall");
    v1.send(json!({"command":"game","data":{"channel":"world:default:hall","actions":[{"from":"1:3"}]}}));
    assert_eq!(v1.recv()["data"]["channel"], "world:default:hall");
    hall.expect_silence(QUIET);
    // A World channel named like a turntable room is a World channel.
    let mut game = turntable_member(addr, 0, "1:4", "CStrike");
    let mut w = world_member(addr, 1, "bob", "turntable:CStrike");
    w.send(json!(["channel.send", 2, {"channel": "turntable:CStrike", "data": 1}]));
    assert_eq!(w.recv()[0], "success");
    game.expect_silence(QUIET);
    // Publishing without joining is refused in each dialect's words.
    let mut outsider = Client::connect_on_shard(addr, "/ws/world/default", 0);
    outsider.send(json!(["authenticate", {"user": {"id": "eve"}}]));
    assert_eq!(outsider.recv()[0], "authenticated");
    outsider.send(json!(["channel.send", 3, {"channel": "hall", "data": "hi"}]));
    let refused = outsider.recv();
    assert_eq!(refused[0], "error", "{refused}");
    assert_eq!(refused[1], 3);
    assert_eq!(refused[2]["code"], "channel.not_member");
    hall.expect_silence(QUIET);
    let mut stranger = Client::connect_on_shard(addr, "/turntable", 1);
    stranger.recv();
    stranger.send(json!({"command":"idme","data":"1:5"}));
    stranger.recv();
    stranger
        .send(json!({"command":"game","data":{"channel":"CStrike","actions":[{"from":"1:5"}]}}));
    assert_eq!(stranger.recv()["data"]["code"], "game.not_member");
    game.expect_silence(QUIET);
}

fn namespaces(tables: &str) -> Namespaces {
    Namespaces::parse(tables).expect("namespace tables")
}

fn sc_token(user: &str) -> String {
    let mut claims = Map::new();
    claims.insert("username".into(), json!(user));
    Auth::new(&Secret::new(SECRET.into()).unwrap()).sign(&claims)
}

#[test]
fn a_configured_namespace_decides_who_receives_and_publishes() {
    let ns = namespaces(r#"chat = { receive = "authenticated", publish = "subscribers" }"#);
    let server = server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        c.namespaces = ns;
    });
    let addr = server.local_addr();
    let (mut anonymous, _) = handshaken_on(addr, 0, json!({}));
    let (subscribed, published) = sc_try(&mut anonymous, "chat:general", 2);
    assert_eq!(broker_error(&subscribed, 2), "identify first");
    assert_eq!(broker_error(&published, 3), "not a member of this channel");

    let (mut alice, data) = handshaken_on(addr, 1, json!({"authToken": sc_token("alice")}));
    assert_eq!(data["isAuthenticated"], true);
    let (mut bob, _) = handshaken_on(addr, 0, json!({"authToken": sc_token("bob")}));
    subscribe(&mut alice, "chat:general", 2);
    bob.send(json!({"event":"#publish","data":{"channel":"chat:general","data":"hi"},"cid":3}));
    assert_eq!(
        broker_error(&sc_recv(&mut bob), 3),
        "not a member of this channel",
        "publishing takes a subscription here"
    );
    subscribe(&mut bob, "chat:general", 4);
    bob.send(json!({"event":"#publish","data":{"channel":"chat:general","data":"hi"},"cid":5}));
    let delivered = json!({"event":"#publish","data":{"channel":"chat:general","data":"hi"}});
    assert_eq!(
        sc_recv(&mut bob),
        delivered,
        "a subscriber gets its own publication"
    );
    assert_eq!(sc_recv(&mut bob), json!({"rid": 5}));
    assert_eq!(sc_recv(&mut alice), delivered);
    // Dropping the token drops what it allowed from then on.
    alice.send(json!({"event":"#removeAuthToken","data":null}));
    let (subscribed, _) = sc_try(&mut alice, "chat:other", 20);
    assert_eq!(broker_error(&subscribed, 20), "identify first");
    // Other namespaces keep their rules.
    let (subscribed, _) = sc_try(&mut alice, "turntable:CStrike", 6);
    assert_eq!(
        broker_error(&subscribed, 6),
        "the channel's namespace does not allow this"
    );
}

#[test]
fn a_built_in_namespace_takes_a_member_limit_and_can_hide_joins() {
    let ns = namespaces("turntable = { max_members = 2, join_leave = false }");
    let server = server_with(|c| c.namespaces = ns);
    let addr = server.local_addr();
    let mut first = turntable_member(addr, 0, "1:1", "duel");
    let _second = turntable_member(addr, 1, "1:2", "duel");
    first.expect_silence(QUIET);
    let mut third = Client::connect_on_shard(addr, "/turntable", 0);
    third.recv();
    third.send(json!({"command":"idme","data":"1:3"}));
    third.recv();
    third.send(json!({"command":"joingame","data":{"channel":"duel","self":"1:3"}}));
    let refused = third.recv();
    assert_eq!(refused["command"], "error", "{refused}");
    assert_eq!(refused["data"]["code"], "channel.full");
    // A member's second connection still joins.
    let _again = turntable_member(addr, 1, "1:1", "duel");
}

#[test]
fn presence_false_hides_a_channel_s_members_even_from_its_members() {
    let list = |c: &mut Client, id: u64| {
        c.send(json!(["channel.members", id, {"channel": "hall"}]));
        c.recv()
    };
    let open = server_with(|_| {});
    let mut ann = world_member(open.local_addr(), 0, "ann", "hall");
    assert_eq!(
        list(&mut ann, 7),
        json!(["success", 7, {"channel": "hall", "members": ["ann"]}]),
        "by default a member may list the members"
    );
    let ns = namespaces("world = { presence = false }");
    let hidden = server_with(|c| c.namespaces = ns);
    let addr = hidden.local_addr();
    let mut ann = world_member(addr, 0, "ann", "hall");
    let mut bob = world_member(addr, 1, "bob", "hall");
    // Joins are join_leave's to hide, not presence's.
    assert_eq!(ann.recv()[0], "channel.member_joined");
    for (c, id) in [(&mut ann, 8), (&mut bob, 9)] {
        let refused = list(c, id);
        assert_eq!((&refused[0], &refused[1]), (&json!("error"), &json!(id)));
        assert_eq!(refused[2]["code"], "channel.forbidden", "{refused}");
    }
    // The channel itself still works.
    ann.send(json!(["channel.send", 10, {"channel": "hall", "data": "hi"}]));
    assert_eq!(ann.recv(), json!(["success", 10, {"channel": "hall"}]));
    let event = bob.recv();
    assert_eq!(
        (&event[0], &event[1]["data"]),
        (&json!("channel.event"), &json!("hi"))
    );
}

#[test]
fn bad_namespace_settings_are_refused_with_where_and_why() {
    let (code, _, stderr) = common::run_binary(&[
        "serve",
        "--check",
        "--namespaces",
        r#"chat = { receive = "everyone" }"#,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("namespaces.chat.receive") && stderr.contains("everyone"),
        "{stderr}"
    );
    let backend = r#"chat = { receive = "backend" }"#;
    let (code, _, stderr) = common::run_binary(&["serve", "--check", "--namespaces", backend]);
    assert_eq!(
        (code, stderr.as_str()),
        (
            2,
            "turntable: invalid setting namespaces: chat.receive = \"backend\" (the backend \
             decides, so it needs a subscribe_hook URL: the namespace's or the global \
             subscribe_hook)\n"
        )
    );
    let (code, _, stderr) = common::run_binary(&[
        "serve",
        "--check",
        "--namespaces",
        backend,
        "--subscribe-hook",
        "http://127.0.0.1:9/join",
    ]);
    assert_eq!(code, 0, "the global hook serves it: {stderr}");
}

#[test]
fn every_toml_example_in_the_readme_and_docs_is_accepted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let dir = std::env::temp_dir().join(format!("turntable-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let example = block.split("```").next().unwrap();
            let path = dir.join(format!("example-{checked}.toml"));
            std::fs::write(&path, example).unwrap();
            let (code, _, stderr) = common::run_binary(&["check-config", path.to_str().unwrap()]);
            assert_eq!(
                code,
                0,
                "{} example {i}: {stderr}\n{example}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "the README's examples were found");
    std::fs::remove_dir_all(&dir).unwrap();
}
