//! Every dialect across nodes: three `turntable` processes of two shards each over one
//! real redis-server (tests/common/cluster.rs), with real clients placed so that the
//! room, channel, document or user a test is about is owned by another node than where
//! some of its clients connect. Talker rooms (chat, private messages, updates,
//! idle/back/leave, and members of a killed node going idle then leaving), World
//! channels and collaborative documents, SocketCluster pub/sub, World's per-user
//! connection limit counted over every node, and `cluster.owner_unavailable` in each
//! dialect for what a killed node owns.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Client;
use common::cluster::{TestCluster, identified, owned_as, owned_by};
use common::socketcluster::{self as sc, handshaken_on};
use common::world_ot::{Editor, Random, delta_of, edit_at_random, rpc};
use serde_json::{Value, json};
use turntable::engine::ot::Op;

/// A Talker room owned by `node`: a room is placed by its name as the client gives it
/// (`talker:<room>` only names it to the HTTP API), so the name is chosen where the
/// two would disagree.
fn talker_room(node: u32, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|r| {
            crc32fast::hash(r.as_bytes()) % 3 == node
                && crc32fast::hash(format!("talker:{r}").as_bytes()) % 3 != node
        })
        .unwrap()
}

/// The refusal's words where a dialect has no code (SocketCluster, Talker).
const OWNER_DOWN: &str = "the server that holds this is down; try again soon";

/// The Talker grace the tests' nodes run with.
const GRACE: &str = "1s";

// ---------------------------------------------------------------- Talker

/// A Talker user object (development mode: the client's own object is trusted).
fn talker_user(id: &str) -> Value {
    json!({"id": id, "name": format!("Name {id}")})
}

/// Connects `user` to `room` on `node`; returns the client and the ids in `users`.
fn talk(cluster: &TestCluster, node: usize, room: &str, user: &str) -> (Client, BTreeSet<String>) {
    let mut c = Client::connect(cluster.addr(node), "/talker");
    c.send(json!({"type":"connect","room":room,"user":talker_user(user)}));
    assert_eq!(
        c.recv(),
        json!({"type":"connected","user":talker_user(user)})
    );
    let ids = common::user_ids(&c.recv());
    (c, ids)
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A Talker `time`: the server's epoch seconds, today's (not a fresh process's zero).
fn assert_epoch_seconds(time: &Value) {
    let time = time.as_u64().expect("time in epoch seconds");
    assert!(time.abs_diff(turntable::auth::now_secs()) < 3600, "{time}");
}

/// Asserts the next event is a presence change `kind` (`join`, `idle`, `back`) of `user`.
fn assert_presence(c: &mut Client, kind: &str, user: &str) {
    let event = c.recv();
    assert_eq!(event["type"], kind, "{event}");
    assert_eq!(event["user"], talker_user(user), "{event}");
    assert_epoch_seconds(&event["time"]);
}

fn assert_leave(c: &mut Client, user: &str) {
    let event = c.recv();
    assert_eq!(event["type"], "leave", "{event}");
    assert_eq!(event["user"], user, "{event}");
    assert_epoch_seconds(&event["time"]);
}

#[test]
fn talker_rooms_span_nodes_with_private_messages_updates_and_idle_back_leave() {
    let cluster = TestCluster::start_with(3, &["--talker-idle-grace", GRACE]);
    // The room is owned by node 2; its members connect on nodes 0, 1 and 2.
    let room = talker_room(2, "den-");
    let (mut a, users) = talk(&cluster, 0, &room, "a");
    assert_eq!(users, ids(&["a"]));
    let (mut b, users) = talk(&cluster, 1, &room, "b");
    assert_eq!(users, ids(&["a", "b"]));
    assert_presence(&mut a, "join", "b");
    let (mut c, users) = talk(&cluster, 2, &room, "c");
    assert_eq!(users, ids(&["a", "b", "c"]));
    assert_presence(&mut a, "join", "c");
    assert_presence(&mut b, "join", "c");

    // A public message reaches everyone, the sender included, alike.
    a.send(json!({"type":"message","content":"hello"}));
    let seen: Vec<Value> = [&mut a, &mut b, &mut c].map(|m| m.recv()).into();
    assert!(seen.iter().all(|m| *m == seen[0]), "{seen:?}");
    assert_eq!(seen[0]["content"], "hello");
    assert_eq!(seen[0]["user"], talker_user("a"));
    assert_eq!(seen[0].get("private"), None);
    let id = seen[0]["id"].as_u64().unwrap();

    // A private message from node 1 reaches only its recipient on node 0.
    b.send(json!({"type":"message","content":"psst","to":"a"}));
    let private = a.recv();
    assert_eq!(private["content"], "psst");
    assert_eq!(private["private"], true);
    assert_eq!(private["user"], talker_user("b"));

    // The author updates their message; the owner checks who wrote it.
    a.send(json!({"type":"message","id":id,"content":"hello, edited"}));
    for m in [&mut a, &mut b, &mut c] {
        let update = m.recv();
        assert_eq!(update["id"], id, "{update}");
        assert_eq!(update["update"], true, "{update}");
        assert_eq!(update["content"], "hello, edited", "{update}");
    }
    c.send(json!({"type":"message","id":id,"content":"not mine"}));
    assert_eq!(
        c.recv(),
        json!({"type":"error","message":"only the author can update a message"})
    );
    c.send(json!({"type":"message","content":"?","to":"nobody"}));
    assert_eq!(
        c.recv(),
        json!({"type":"error","message":"no such user online in this room"})
    );
    b.expect_silence(Duration::from_millis(200));

    // b drops without a close: idle; back within the grace on another node.
    b.drop_abruptly();
    assert_presence(&mut a, "idle", "b");
    assert_presence(&mut c, "idle", "b");
    let (mut b, users) = talk(&cluster, 0, &room, "b");
    assert_eq!(users, ids(&["a", "b", "c"]));
    assert_presence(&mut a, "back", "b");
    assert_presence(&mut c, "back", "b");

    // A second connection of a on node 2: a is one member, and a closed connection of
    // two changes nothing.
    let (mut a2, users) = talk(&cluster, 2, &room, "a");
    assert_eq!(users, ids(&["a", "b", "c"]));
    a.close();
    b.send(json!({"type":"message","content":"still there?","to":"a"}));
    assert_eq!(a2.recv()["content"], "still there?");
    c.expect_silence(Duration::from_millis(200));

    // c drops: idle, then after the grace it leaves, for members on both other nodes.
    c.drop_abruptly();
    assert_presence(&mut a2, "idle", "c");
    assert_presence(&mut b, "idle", "c");
    assert_leave(&mut a2, "c");
    assert_leave(&mut b, "c");

    // b closes: it leaves at once.
    b.send(json!({"type":"close"}));
    assert_eq!(b.expect_close().0, 1000);
    assert_leave(&mut a2, "b");
    let (_late, users) = talk(&cluster, 1, &room, "d");
    assert_eq!(users, ids(&["a", "d"]));
}

#[test]
fn talker_members_of_a_killed_node_go_idle_then_leave_for_the_others() {
    // A grace long enough for f to come back on another node after it went idle.
    let mut cluster = TestCluster::start_with(3, &["--talker-idle-grace", "2s"]);
    // The room is owned by node 2. a is on node 0 and c on the owner; b and f are only
    // on node 1, which dies (f comes back on node 2 within the grace); d is on node 1
    // and node 0, so it stays.
    let room = talker_room(2, "hall-");
    let (mut a, _) = talk(&cluster, 0, &room, "a");
    let (mut c, _) = talk(&cluster, 2, &room, "c");
    assert_presence(&mut a, "join", "c");
    let (_b, _) = talk(&cluster, 1, &room, "b");
    for m in [&mut a, &mut c] {
        assert_presence(m, "join", "b");
    }
    let (_d_on_doomed_node, _) = talk(&cluster, 1, &room, "d");
    for m in [&mut a, &mut c] {
        assert_presence(m, "join", "d");
    }
    let (_f, _) = talk(&cluster, 1, &room, "f");
    for m in [&mut a, &mut c] {
        assert_presence(m, "join", "f");
    }
    let (mut d, users) = talk(&cluster, 0, &room, "d");
    assert_eq!(users, ids(&["a", "b", "c", "d", "f"]));
    a.expect_silence(Duration::from_millis(200));

    cluster.kill(1);
    for m in [&mut a, &mut c, &mut d] {
        let idle: BTreeSet<String> = (0..2)
            .map(|_| {
                let event = m.recv();
                assert_eq!(event["type"], "idle", "{event}");
                assert_epoch_seconds(&event["time"]);
                event["user"]["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(idle, ids(&["b", "f"]));
    }
    let (_f, users) = talk(&cluster, 2, &room, "f");
    assert_eq!(
        users,
        ids(&["a", "b", "c", "d", "f"]),
        "b is idle, still in"
    );
    for m in [&mut a, &mut c, &mut d] {
        assert_presence(m, "back", "f");
    }
    for m in [&mut a, &mut c, &mut d] {
        assert_leave(m, "b");
    }
    // d, still connected on node 0, never went idle and still hears the room.
    a.send(json!({"type":"message","content":"who is left?"}));
    for m in [&mut a, &mut c, &mut d] {
        let message = m.recv();
        assert_eq!(message["content"], "who is left?", "{message}");
    }
    let (_e, users) = talk(&cluster, 2, &room, "e");
    assert_eq!(users, ids(&["a", "c", "d", "e", "f"]));
}

// ---------------------------------------------------------------- World

/// A World client of world `default` on `node`, authenticated as `user`.
fn world_member(cluster: &TestCluster, node: usize, user: &str) -> Client {
    let mut c = Client::connect(cluster.addr(node), "/ws/world/default");
    c.send(json!(["authenticate", {"user": {"id": user}}]));
    let reply = c.recv();
    assert_eq!(reply[0], "authenticated", "{reply}");
    c
}

fn sorted_members(reply: &Value) -> Vec<String> {
    let mut members: Vec<String> = reply[2]["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members: {reply}"))
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    members.sort();
    members
}

fn world_channel(name: &str) -> String {
    format!("world:default:{name}")
}

#[test]
fn world_channels_span_nodes_and_a_killed_nodes_members_leave_them() {
    let mut cluster = TestCluster::start(3);
    // The channel is owned by node 1; ann is on node 0, bob on node 2, eve on the owner;
    // dan is on node 2, which dies.
    let hall = owned_as(1, "hall-", world_channel);
    let mut ann = world_member(&cluster, 0, "ann");
    let mut bob = world_member(&cluster, 2, "bob");
    let mut eve = world_member(&cluster, 1, "eve");
    assert_eq!(
        rpc(&mut ann, "channel.join", 1, json!({"channel": &hall})),
        json!(["success", 1, {"channel": &hall, "members": ["ann"]}])
    );
    let joined = rpc(&mut bob, "channel.join", 1, json!({"channel": &hall}));
    assert_eq!(sorted_members(&joined), ["ann", "bob"]);
    assert_eq!(
        ann.recv(),
        json!(["channel.member_joined", {"channel": &hall, "user": "bob"}])
    );
    let joined = rpc(&mut eve, "channel.join", 1, json!({"channel": &hall}));
    assert_eq!(sorted_members(&joined), ["ann", "bob", "eve"]);
    for m in [&mut ann, &mut bob] {
        assert_eq!(
            m.recv(),
            json!(["channel.member_joined", {"channel": &hall, "user": "eve"}])
        );
    }

    // Sends are answered to the sender and numbered by the owner for the others.
    let event = |seq: u64, user: &str, n: u64| json!(["channel.event", {"channel": &hall, "seq": seq, "user": user, "data": {"n": n}}]);
    assert_eq!(
        rpc(
            &mut bob,
            "channel.send",
            2,
            json!({"channel": &hall, "data": {"n": 1}})
        ),
        json!(["success", 2, {"channel": &hall}])
    );
    assert_eq!(ann.recv(), event(1, "bob", 1));
    assert_eq!(
        rpc(
            &mut ann,
            "channel.send",
            2,
            json!({"channel": &hall, "data": {"n": 2}})
        ),
        json!(["success", 2, {"channel": &hall}])
    );
    assert_eq!(bob.recv(), event(2, "ann", 2));
    assert_eq!(eve.recv(), event(1, "bob", 1));
    assert_eq!(eve.recv(), event(2, "ann", 2));
    let listed = rpc(&mut bob, "channel.members", 3, json!({"channel": &hall}));
    assert_eq!(sorted_members(&listed), ["ann", "bob", "eve"]);

    // A leave from node 2 reaches the others.
    assert_eq!(
        rpc(&mut bob, "channel.leave", 4, json!({"channel": &hall})),
        json!(["success", 4, {"channel": &hall}])
    );
    for m in [&mut ann, &mut eve] {
        assert_eq!(
            m.recv(),
            json!(["channel.member_left", {"channel": &hall, "user": "bob"}])
        );
    }
    let outside = rpc(
        &mut bob,
        "channel.send",
        5,
        json!({"channel": &hall, "data": 0}),
    );
    assert_eq!(outside[2]["code"], "channel.not_member", "{outside}");

    // dan joins from node 2, which then dies: the others hear dan leave.
    let mut dan = world_member(&cluster, 2, "dan");
    rpc(&mut dan, "channel.join", 1, json!({"channel": &hall}));
    for m in [&mut ann, &mut eve] {
        assert_eq!(
            m.recv(),
            json!(["channel.member_joined", {"channel": &hall, "user": "dan"}])
        );
    }
    cluster.kill(2);
    for m in [&mut ann, &mut eve] {
        assert_eq!(
            m.recv(),
            json!(["channel.member_left", {"channel": &hall, "user": "dan"}])
        );
    }
    let listed = rpc(&mut ann, "channel.members", 6, json!({"channel": &hall}));
    assert_eq!(sorted_members(&listed), ["ann", "eve"]);
    assert_eq!(
        rpc(
            &mut eve,
            "channel.send",
            7,
            json!({"channel": &hall, "data": {"n": 3}})
        )[0],
        "success"
    );
    assert_eq!(ann.recv(), event(3, "eve", 3));
}

#[test]
fn editors_of_a_document_on_every_node_converge() {
    let cluster = TestCluster::start(3);
    // The document is owned by node 1; two editors on each node.
    let document = owned_as(1, "notes-", |d| format!("world:default:ot:{d}"));
    let mut editors: Vec<Editor> = (0..6)
        .map(|i| {
            Editor::open(
                world_member(&cluster, i % 3, &format!("editor{i}")),
                &document,
            )
        })
        .collect();

    // One edit first, to see it cross: the others get it with its author.
    editors[0].edit_locally([Op::Insert("start ".into())].into_iter().collect());
    editors[0].receive();
    for editor in &mut editors[1..] {
        let message = editor.conn.recv();
        assert_eq!(
            message,
            json!(["ot", {"document": &document, "variant": 1, "user": "editor0",
                          "ops": [{"insert": "start "}]}])
        );
        editor
            .replica
            .receive(1, delta_of(&message[1]["ops"]))
            .unwrap();
    }

    edit_at_random(&mut editors, Random(0x2545_f491_4f6c_dd1d), 25);
    let mut observer = world_member(&cluster, 2, "observer");
    let state = rpc(&mut observer, "ot.open", 1, json!({"document": &document}));
    let (text, revision) = (
        state[2]["text"].as_str().unwrap(),
        state[2]["variant"].as_u64().unwrap(),
    );
    assert!(revision > 25, "{state}");
    for editor in editors.iter_mut() {
        while editor.replica.revision() < revision {
            editor.receive();
        }
        assert_eq!(editor.replica.text(), text, "an editor diverged");
        editor.conn.expect_silence(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- SocketCluster

fn delivery(channel: &str, data: Value) -> Value {
    json!({"event":"#publish","data":{"channel":channel,"data":data}})
}

#[test]
fn socketcluster_subscriptions_acks_and_unsubscribes_cross_nodes_and_survive_a_dead_subscriber_node()
 {
    let mut cluster = TestCluster::start(3);
    // The channel is owned by node 2. The publisher, itself subscribed, is on node 0;
    // other subscribers are on nodes 0, 1 and the owner.
    let channel = owned_by(2, "ticker-");
    let (mut publisher, _) = handshaken_on(cluster.addr(0), 0, json!({}));
    sc::subscribe(&mut publisher, &channel, 2);
    let (mut near, _) = handshaken_on(cluster.addr(0), 1, json!({}));
    sc::subscribe(&mut near, &channel, 2);
    let (mut far, _) = handshaken_on(cluster.addr(1), 0, json!({}));
    sc::subscribe(&mut far, &channel, 2);
    let (mut at_owner, _) = handshaken_on(cluster.addr(2), 1, json!({}));
    sc::subscribe(&mut at_owner, &channel, 2);

    // An acknowledged publication: the publisher gets its own delivery, then the ack.
    publisher.send(json!({"event":"#publish","data":{"channel":&channel,"data":{"n":1}},"cid":3}));
    assert_eq!(sc::recv(&mut publisher), delivery(&channel, json!({"n":1})));
    assert_eq!(sc::recv(&mut publisher), json!({"rid":3}));
    for c in [&mut near, &mut far, &mut at_owner] {
        assert_eq!(sc::recv(c), delivery(&channel, json!({"n":1})));
    }

    // An unsubscribe on node 1 reaches the owner: node 1 gets nothing more.
    far.send(json!({"event":"#unsubscribe","data":&channel,"cid":4}));
    assert_eq!(sc::recv(&mut far), json!({"rid":4}));
    let (mut from_node_1, _) = handshaken_on(cluster.addr(1), 1, json!({}));
    from_node_1
        .send(json!({"event":"#publish","data":{"channel":&channel,"data":{"n":2}},"cid":5}));
    assert_eq!(sc::recv(&mut from_node_1), json!({"rid":5}));
    for c in [&mut publisher, &mut near, &mut at_owner] {
        assert_eq!(sc::recv(c), delivery(&channel, json!({"n":2})));
    }
    far.expect_silence(Duration::from_millis(300));

    // Subscribed again on node 1, which then dies: publications carry on elsewhere.
    sc::subscribe(&mut far, &channel, 6);
    cluster.kill(1);
    for node in [0, 2] {
        common::eventually(|| cluster.alive(node) == [true, false, true]);
    }
    for n in 3..6 {
        publisher
            .send(json!({"event":"#publish","data":{"channel":&channel,"data":{"n":n}},"cid":n}));
        assert_eq!(sc::recv(&mut publisher), delivery(&channel, json!({"n":n})));
        assert_eq!(sc::recv(&mut publisher), json!({"rid":n}));
    }
    for c in [&mut near, &mut at_owner] {
        for n in 3..6 {
            assert_eq!(sc::recv(c), delivery(&channel, json!({"n":n})));
        }
        c.expect_silence(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------- Connection limits

/// A World client of `user` on `node` answers a ping: it is still open.
fn assert_open(c: &mut Client, n: u64) {
    c.send(json!(["ping", n]));
    assert_eq!(c.recv(), json!(["pong", n]));
}

fn assert_replaced(c: &mut Client) {
    assert_eq!(c.recv(), json!(["error", {"code": "connection.replaced"}]));
    assert_eq!(c.expect_close(), (4000, "connection replaced".into()));
}

/// Another user whose owner is the same shard as `user`'s (K = 3, two shards), so its
/// presence tells when that shard has handled something.
fn same_owner_shard(user: &str, prefix: &str) -> String {
    let placement = turntable::engine::Placement::new(3, 2);
    let owner = placement.owner(user);
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|id| placement.owner(id) == owner)
        .unwrap()
}

#[test]
fn world_connection_limits_count_connections_on_every_node() {
    let mut cluster = TestCluster::start_with(3, &["--world-max-connections-per-user", "2"]);
    // The user is owned by node 2; their connections open on nodes 0, 1, 2, then 0.
    let user = owned_by(2, "limited-");
    let mut first = world_member(&cluster, 0, &user);
    let mut second = world_member(&cluster, 1, &user);
    assert_open(&mut first, 1);
    let mut third = world_member(&cluster, 2, &user);
    assert_replaced(&mut first);
    assert_open(&mut second, 2);
    assert_open(&mut third, 3);
    let mut fourth = world_member(&cluster, 0, &user);
    assert_replaced(&mut second);
    assert_open(&mut third, 4);
    assert_open(&mut fourth, 5);
    // Another user has limits of their own.
    let mut other = world_member(&cluster, 1, &owned_by(2, "unlimited-"));
    assert_open(&mut other, 6);

    // A node's connections stop counting when it dies. The user is owned by node 0;
    // their connections are on node 1 (which dies) and node 2. A sentinel user on
    // node 1 with the same owner shard shows when that shard has seen node 1 go.
    let user = owned_by(0, "survivor-");
    let sentinel = same_owner_shard(&user, "sentinel-");
    let mut watcher = identified(&cluster, 2, "watcher");
    watcher.send(json!({"command":"subscribe","data":[&sentinel]}));
    assert_eq!(
        watcher.recv(),
        common::cluster::userchange(&sentinel, "offline")
    );
    let _sentinel = identified(&cluster, 1, &sentinel);
    assert_eq!(
        watcher.recv(),
        common::cluster::userchange(&sentinel, "online")
    );
    let mut on_doomed_node = world_member(&cluster, 1, &user);
    let mut older = world_member(&cluster, 2, &user);
    assert_open(&mut on_doomed_node, 7);
    cluster.kill(1);
    assert_eq!(
        watcher.recv(),
        common::cluster::userchange(&sentinel, "offline")
    );
    let mut newer = world_member(&cluster, 0, &user);
    assert_open(&mut older, 8);
    assert_open(&mut newer, 9);
    let _newest = world_member(&cluster, 2, &user);
    assert_replaced(&mut older);
    assert_open(&mut newer, 10);
}

// ---------------------------------------------------------------- A dead owner

#[test]
fn what_a_killed_node_owns_is_refused_with_owner_unavailable_in_each_dialect() {
    let mut cluster = TestCluster::start(3);
    // Everything below is owned by node 2, which dies; clients are on nodes 0 and 1 as
    // users the live nodes own, but for `holder`.
    let v1_room = owned_as(2, "arena-", |r| format!("turntable:{r}"));
    let player = owned_by(0, "player-");
    let holder = owned_by(2, "holder-");
    let mut v1 = identified(&cluster, 0, &player);
    v1.send(json!({"command":"joingame","data":{"channel":&v1_room,"self":&player}}));
    assert_eq!(v1.recv()["command"], "joined");
    let mut v1_holder = identified(&cluster, 1, &holder);

    let den = talker_room(2, "den-");
    let (mut talker, _) = talk(&cluster, 0, &den, "a");

    let world_user = owned_by(1, "ann-");
    let hall = owned_as(2, "hall-", world_channel);
    let notes = owned_as(2, "notes-", |d| format!("world:default:ot:{d}"));
    let drafts = owned_as(2, "drafts-", |d| format!("world:default:ot:{d}"));
    let mut world = world_member(&cluster, 1, &world_user);
    assert_eq!(
        rpc(&mut world, "channel.join", 1, json!({"channel": &hall}))[0],
        "success"
    );
    assert_eq!(
        rpc(&mut world, "ot.open", 2, json!({"document": &notes}))[0],
        "success"
    );

    let topic = owned_by(2, "topic-");
    let (mut socket, _) = handshaken_on(cluster.addr(1), 0, json!({}));
    sc::subscribe(&mut socket, &topic, 2);

    cluster.kill(2);
    for node in [0, 1] {
        common::eventually(|| cluster.alive(node) == [true, true, false]);
    }

    // turntable v1: a game move, a status, a watch and an identification.
    let v1_code = |c: &mut Client| {
        let reply = c.recv();
        assert_eq!(reply["command"], "error", "{reply}");
        reply["data"]["code"].as_str().unwrap().to_owned()
    };
    v1.send(json!({"command":"game","data":{"channel":&v1_room,"actions":[{"from":&player}]}}));
    assert_eq!(v1_code(&mut v1), "cluster.owner_unavailable");
    v1_holder.send(json!({"command":"status","data":"busy"}));
    assert_eq!(v1_code(&mut v1_holder), "cluster.owner_unavailable");
    v1.send(json!({"command":"subscribe","data":[&holder]}));
    assert_eq!(v1_code(&mut v1), "cluster.owner_unavailable");
    let mut late = Client::connect(cluster.addr(0), "/turntable");
    assert_eq!(late.recv()["command"], "idyou");
    late.send(json!({"command":"idme","data":owned_by(2, "latecomer-")}));
    assert_eq!(v1_code(&mut late), "cluster.owner_unavailable");

    // Talker: a message in a room joined before, and a connect; the connection stays
    // and may connect elsewhere.
    let refused = json!({"type":"error","message":OWNER_DOWN});
    talker.send(json!({"type":"message","content":"anyone?"}));
    assert_eq!(talker.recv(), refused);
    let mut newcomer = Client::connect(cluster.addr(1), "/talker");
    newcomer.send(json!({"type":"connect","room":talker_room(2, "den-x"),"user":talker_user("b")}));
    assert_eq!(newcomer.recv(), refused);
    let elsewhere = talker_room(0, "den-");
    newcomer.send(json!({"type":"connect","room":&elsewhere,"user":talker_user("b")}));
    assert_eq!(
        newcomer.recv(),
        json!({"type":"connected","user":talker_user("b")})
    );
    assert_eq!(newcomer.recv()["type"], "users");

    // World: a send and a member list of a joined channel, an edit of an open document,
    // an open of another; each answered with its request's id.
    let world_code = |reply: Value, id: u64| {
        assert_eq!(reply[0], "error", "{reply}");
        assert_eq!(reply[1], id, "{reply}");
        reply[2]["code"].as_str().unwrap().to_owned()
    };
    let sent = rpc(
        &mut world,
        "channel.send",
        3,
        json!({"channel": &hall, "data": 1}),
    );
    assert_eq!(world_code(sent, 3), "cluster.owner_unavailable");
    let listed = rpc(&mut world, "channel.members", 4, json!({"channel": &hall}));
    assert_eq!(world_code(listed, 4), "cluster.owner_unavailable");
    let edit = json!({"document": &notes, "variant": 0, "ops": [{"insert": "x"}]});
    assert_eq!(
        world_code(rpc(&mut world, "ot", 5, edit), 5),
        "cluster.owner_unavailable"
    );
    let opened = rpc(&mut world, "ot.open", 6, json!({"document": &drafts}));
    assert_eq!(world_code(opened, 6), "cluster.owner_unavailable");

    // SocketCluster: a publication to a channel subscribed before.
    socket.send(json!({"event":"#publish","data":{"channel":&topic,"data":1},"cid":3}));
    let reply = sc::recv(&mut socket);
    assert_eq!(reply["rid"], 3, "{reply}");
    assert_eq!(reply["error"]["message"], OWNER_DOWN, "{reply}");

    // What the live nodes own still works for all of them.
    let open_room = owned_as(0, "open-", |r| format!("turntable:{r}"));
    v1.send(json!({"command":"joingame","data":{"channel":&open_room,"self":&player}}));
    assert_eq!(v1.recv()["command"], "joined");
    let open_hall = owned_as(1, "open-hall-", world_channel);
    assert_eq!(
        rpc(
            &mut world,
            "channel.join",
            7,
            json!({"channel": &open_hall})
        )[0],
        "success"
    );
}

// ---------------------------------------------------------------- A restarted owner

/// Sends a Talker message until the room's owner has `c`'s seat back (until then it
/// answers `connect to a room first`); returns what else `c` heard meanwhile.
fn say_once_seated(c: &mut Client, content: &str) -> Vec<Value> {
    let mut heard = Vec::new();
    for _ in 0..100 {
        c.send(json!({"type":"message","content":content}));
        loop {
            let event = c.recv();
            if event == json!({"type":"error","message":"connect to a room first"}) {
                break;
            }
            if event["type"] == "message" && event["content"] == content {
                return heard;
            }
            heard.push(event);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never seated again; heard {heard:?}");
}

/// A channel's members as `GET /api/channels/{channel}/presence` on `node` lists them.
fn api_members(cluster: &TestCluster, node: usize, channel: &str) -> Vec<String> {
    let (status, body) = common::get(
        cluster.addr(node),
        &format!("/api/channels/{channel}/presence"),
    );
    let view: Value = serde_json::from_str(&body).unwrap_or_default();
    if status != 200 {
        return Vec::new();
    }
    let mut ids: Vec<String> = view["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[test]
fn a_restarted_owner_gets_its_rooms_and_channels_back_and_members_hear_no_joins() {
    let mut cluster = TestCluster::start_with(3, &["--talker-idle-grace", GRACE]);
    // A Talker room and a World channel owned by node 2, which restarts; their members
    // are on nodes 0 and 1 as users those nodes own.
    let room = talker_room(2, "den-");
    let (mut a, _) = talk(&cluster, 0, &room, "a");
    let (mut b, _) = talk(&cluster, 1, &room, "b");
    assert_presence(&mut a, "join", "b");
    let hall = owned_as(2, "hall-", world_channel);
    let (ann_id, bob_id) = (owned_by(0, "ann-"), owned_by(1, "bob-"));
    let mut ann = world_member(&cluster, 0, &ann_id);
    let mut bob = world_member(&cluster, 1, &bob_id);
    rpc(&mut ann, "channel.join", 1, json!({"channel": &hall}));
    rpc(&mut bob, "channel.join", 1, json!({"channel": &hall}));
    assert_eq!(ann.recv()[0], "channel.member_joined");

    cluster.restart(2);
    for node in 0..3 {
        cluster.wait_alive(node, 3);
    }
    // The members re-announce themselves to the new process; they knew each other,
    // so nobody hears anyone join (nor themselves).
    let members = {
        let mut m = vec![ann_id.clone(), bob_id.clone()];
        m.sort();
        m
    };
    common::eventually(|| api_members(&cluster, 0, &world_channel(&hall)) == members);
    ann.expect_silence(Duration::from_millis(500));
    bob.expect_silence(Duration::from_millis(50));
    let listed = rpc(&mut ann, "channel.members", 2, json!({"channel": &hall}));
    assert_eq!(sorted_members(&listed), members);
    assert_eq!(
        rpc(
            &mut bob,
            "channel.send",
            3,
            json!({"channel": &hall, "data": "again"})
        )[0],
        "success"
    );
    let event = ann.recv();
    assert_eq!(event[0], "channel.event", "{event}");
    assert_eq!(event[1]["data"], "again", "{event}");

    let heard = say_once_seated(&mut b, "b is back");
    assert!(heard.is_empty(), "b heard {heard:?}");
    let heard = say_once_seated(&mut a, "a is back");
    let messages_only = heard.iter().all(|e| e["type"] == "message");
    assert!(messages_only, "a heard {heard:?}");
    let message = b.recv();
    assert_eq!(message["content"], "a is back", "{message}");
    a.expect_silence(Duration::from_millis(100));

    // Newcomers are announced as ever.
    let (_c, users) = talk(&cluster, 2, &room, "c");
    assert_eq!(users, ids(&["a", "b", "c"]));
    assert_presence(&mut a, "join", "c");
    assert_presence(&mut b, "join", "c");
    let mut cy = world_member(&cluster, 2, &owned_by(2, "cy-"));
    let joined = rpc(&mut cy, "channel.join", 1, json!({"channel": &hall}));
    assert_eq!(
        joined[2]["members"].as_array().map(Vec::len),
        Some(3),
        "{joined}"
    );
    for m in [&mut ann, &mut bob] {
        let event = m.recv();
        assert_eq!(event[0], "channel.member_joined", "{event}");
    }
}
