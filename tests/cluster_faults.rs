//! Cluster faults end to end: three real `turntable` nodes over a real redis-server,
//! with real clients. Redis killed and restarted on the same port (readiness,
//! reconnection, presence converging, local traffic carrying on, cross-node commands
//! refused with `cluster.unavailable`), and requests for objects a dead
//! node owns refused with `cluster.owner_unavailable` in every dialect.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{NODE_TIMEOUT, TestCluster, identified, owned_by, userchange};
use common::socketcluster::{self as sc, handshaken_on};
use common::{Client, get};
use serde_json::{Value, json};

/// `/cluster`'s `redis` field on `node`.
fn redis_field(cluster: &TestCluster, node: usize) -> Value {
    let (_, body) = get(cluster.addr(node), "/cluster");
    serde_json::from_str::<Value>(&body).unwrap()["redis"].clone()
}

#[test]
fn a_restarted_redis_is_rejoined_and_presence_converges() {
    let mut cluster = TestCluster::start(3);
    // Owned by node 0, where the watcher is: one user stays on node 1 throughout, the
    // other leaves node 2 during the outage.
    let stayer = owned_by(0, "stayer-");
    let leaver = owned_by(0, "leaver-");
    let mut watcher = identified(&cluster, 0, "watcher");
    watcher.send(json!({"command":"subscribe","data":[&stayer, &leaver]}));
    assert_eq!(
        watcher.recv(),
        json!({"command":"userchange","data":{&stayer:"offline",&leaver:"offline"}})
    );
    let _stays = identified(&cluster, 1, &stayer);
    assert_eq!(watcher.recv(), userchange(&stayer, "online"));
    let leaves = identified(&cluster, 2, &leaver);
    assert_eq!(watcher.recv(), userchange(&leaver, "online"));

    // Two SocketCluster clients on node 0, on a channel node 0 owns; a publisher on
    // node 0 toward a channel node 1 owns.
    let local = owned_by(0, "local-");
    let remote = owned_by(1, "remote-");
    let (mut sub, _) = handshaken_on(cluster.addr(0), 0, json!({}));
    sc::subscribe(&mut sub, &local, 2);
    let (mut publisher, _) = handshaken_on(cluster.addr(0), 1, json!({}));

    cluster.redis.kill();
    for node in 0..3 {
        common::eventually(|| {
            get(cluster.addr(node), "/readyz") == (503, r#"{"status":"no redis"}"#.into())
        });
        assert_eq!(redis_field(&cluster, node), false);
    }
    leaves.close();
    publisher.send(json!({"event":"#publish","data":{"channel":&local,"data":"here"},"cid":3}));
    assert_eq!(sc::recv(&mut publisher), json!({"rid":3}));
    assert_eq!(
        sc::recv(&mut sub),
        json!({"event":"#publish","data":{"channel":&local,"data":"here"}})
    );
    publisher.send(json!({"event":"#publish","data":{"channel":&remote,"data":"there"},"cid":4}));
    let refusal = sc::recv(&mut publisher);
    assert_eq!(refusal["rid"], 4, "{refusal}");
    assert!(
        refusal["error"]["message"]
            == "the servers cannot reach each other right now; try again soon",
        "{refusal}"
    );
    watcher.expect_silence(Duration::from_millis(300));

    cluster.redis.restart();
    let back = Instant::now();
    for node in 0..3 {
        common::eventually(|| get(cluster.addr(node), "/readyz").0 == 200);
        assert_eq!(redis_field(&cluster, node), true);
    }
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "{:?}",
        back.elapsed()
    );
    for node in 0..3 {
        cluster.wait_alive(node, 3);
    }
    // The close lost in the outage is swept; the stayer never flaps.
    assert_eq!(watcher.recv(), userchange(&leaver, "offline"));
    watcher.expect_silence(NODE_TIMEOUT);
    // Cross-node traffic flows again.
    let (mut far, _) = handshaken_on(cluster.addr(2), 0, json!({}));
    sc::subscribe(&mut far, &remote, 2);
    publisher.send(json!({"event":"#publish","data":{"channel":&remote,"data":"again"}}));
    let got = sc::recv(&mut far);
    assert_eq!(got["data"]["data"], "again", "{got}");
}

#[test]
fn requests_for_a_dead_nodes_objects_are_refused_in_every_dialect() {
    let mut cluster = TestCluster::start(3);
    cluster.kill(2);
    for node in [0, 1] {
        common::eventually(|| cluster.alive(node) == [true, true, false]);
    }
    let dead = |prefix: &str| owned_by(2, prefix);

    // turntable v1 joingame.
    let user = owned_by(0, "v1-user-");
    let mut v1 = identified(&cluster, 0, &user);
    let room = dead("room-");
    v1.send(json!({"command":"joingame","data":{"channel":&room,"self":&user}}));
    let reply = v1.recv();
    assert_eq!(reply["command"], "error", "{reply}");
    assert_eq!(
        reply["data"]["code"], "cluster.owner_unavailable",
        "{reply}"
    );

    // SocketCluster #subscribe and #publish.
    let (mut s, _) = handshaken_on(cluster.addr(1), 0, json!({}));
    let channel = dead("topic-");
    s.send(json!({"event":"#subscribe","data":{"channel":&channel},"cid":2}));
    let reply = sc::recv(&mut s);
    assert_eq!(reply["rid"], 2, "{reply}");
    assert!(
        reply["error"]["message"] == "the server that holds this is down; try again soon",
        "{reply}"
    );
    s.send(json!({"event":"#publish","data":{"channel":&channel,"data":1},"cid":3}));
    let reply = sc::recv(&mut s);
    assert_eq!(reply["rid"], 3, "{reply}");
    assert!(
        reply["error"]["message"] == "the server that holds this is down; try again soon",
        "{reply}"
    );

    // World channel.join (a World channel is `world:<world>:<name>` to placement).
    let name = (0..)
        .map(|i| format!("hall-{i}"))
        .find(|n| crc32fast::hash(format!("world:default:{n}").as_bytes()) % 3 == 2)
        .unwrap();
    let mut w = Client::connect(cluster.addr(0), "/ws/world/default");
    w.send(json!(["authenticate", {"user":{"id":"ann"}}]));
    assert_eq!(w.recv()[0], "authenticated");
    w.send(json!(["channel.join", 1, {"channel":&name}]));
    let reply = w.recv();
    assert_eq!(reply[0], "error", "{reply}");
    assert_eq!(reply[1], 1, "{reply}");
    assert_eq!(reply[2]["code"], "cluster.owner_unavailable", "{reply}");

    // Talker connect.
    let room = dead("den-");
    let mut t = Client::connect(cluster.addr(1), "/talker");
    t.send(json!({"type":"connect","room":&room,"user":{"id":"7","name":"Ada"}}));
    let reply = t.recv();
    assert_eq!(reply["type"], "error", "{reply}");
}
