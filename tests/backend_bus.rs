//! The backend bus of the MMOTD design, end to end: three nodes of two shards over a real
//! redis-server, clients of several dialects on different nodes, and a backend that
//! speaks only Redis (PUBLISH to `turntable:api`, PSUBSCRIBE `turntable:tap:game:*`):
//! a real Python one on redis-py for a game, and raw RESP for the rest.

mod common;

use std::time::Duration;

use common::cluster::{TestCluster, identified, owned_by};
use common::python::Harness;
use common::socketcluster::{self as sc, handshaken_on};
use common::{Client, eventually, get, metric};
use serde_json::{Value, json};

/// How long the Python backend gets for each line it should print.
const BACKEND_PATIENCE: Duration = Duration::from_secs(10);

/// A World client of the default world on `node`, authenticated as `user` (the nodes
/// run without a secret, so the user object is trusted).
fn world_member(cluster: &TestCluster, node: usize, user: &str) -> Client {
    let mut c = Client::connect(cluster.addr(node), "/ws/world/default");
    c.send(json!(["authenticate", {"user": {"id": user}}]));
    assert_eq!(c.recv()[0], "authenticated");
    c
}

/// PUBLISHes `command` to the cluster's `turntable:api` as a backend does; every node
/// hears it.
fn publish_command(cluster: &TestCluster, command: &str) {
    let reply = cluster
        .redis
        .command(&["PUBLISH", "turntable:api", command]);
    assert_eq!(reply, ":3\r\n", "all three nodes listen on turntable:api");
}

/// A bus counter (`commands` or `refused`) summed over every node.
fn bus_total(cluster: &TestCluster, counter: &str, nodes: &[usize]) -> u64 {
    nodes
        .iter()
        .map(|&node| {
            metric(
                cluster.addr(node),
                &format!("turntable_cluster_bus_{counter}_total"),
            )
        })
        .sum()
}

#[test]
fn a_python_backend_watches_a_game_and_kicks_a_cheater_in_its_own_dialect() {
    let cluster = TestCluster::start_with(3, &["--tap", "game:*"]);
    // The game's channel is owned by node 2; its players are on nodes 0 and 1.
    let channel = owned_by(2, "game:duel-");
    let game = channel.strip_prefix("game:").unwrap();
    let port = cluster.redis.port().to_string();
    let mut backend = Harness::start("backend_bus.py", &["--port", &port, "--game", game]);
    assert_eq!(backend.recv(BACKEND_PATIENCE), json!({"ready": true}));
    // The backend opened the game through the bus; every node lists it.
    eventually(|| get(cluster.addr(0), "/api/games").1.contains(game));

    let mut ann = identified(&cluster, 0, "ann");
    ann.send(json!({"command":"joingame","data":{"channel":&channel,"self":"ann"}}));
    assert_eq!(
        ann.recv(),
        json!({"command":"joined","data":{"channel":&channel,"members":["ann"]}})
    );
    let mut bob = world_member(&cluster, 1, "bob");
    bob.send(json!(["channel.join", 1, {"channel": &channel}]));
    assert_eq!(bob.recv()[0], "success");
    assert_eq!(
        ann.recv(),
        json!({"command":"memberjoined","data":{"channel":&channel,"user":"bob"}})
    );

    ann.send(
        json!({"command":"game","data":{"channel":&channel,"actions":[{"from":"ann","data":{"move":5}}]}}),
    );
    assert_eq!(ann.recv()["data"]["seq"], 1);
    assert_eq!(bob.recv()[1]["seq"], 1);
    bob.send(json!(["channel.send", 2, {"channel": &channel, "data": {"move": 3}}]));
    assert_eq!(bob.recv(), json!(["success", 2, {"channel": &channel}]));
    assert_eq!(ann.recv()["data"]["seq"], 2);
    // Not a move of this game: the backend kicks bob, and bob hears it as World does.
    bob.send(json!(["channel.send", 3, {"channel": &channel, "data": {"move": 42}}]));
    assert_eq!(bob.recv(), json!(["success", 3, {"channel": &channel}]));
    assert_eq!(
        bob.recv(),
        json!(["channel.kicked", {"channel": &channel, "message": "invalid move"}])
    );
    assert_eq!(ann.recv()["data"]["seq"], 3);
    assert_eq!(
        ann.recv(),
        json!({"command":"memberleft","data":{"channel":&channel,"user":"bob"}})
    );

    // What the backend saw: the members and every action, in the owner's order, with
    // the owner's sequence numbers and timestamps and the sender it checked.
    let seen: Vec<Value> = (0..7).map(|_| backend.recv(BACKEND_PATIENCE)).collect();
    assert_eq!(
        seen[0],
        json!({"event":"join","channel":&channel,"user":"ann"})
    );
    assert_eq!(
        seen[1],
        json!({"event":"join","channel":&channel,"user":"bob"})
    );
    let publications = [
        ("ann", json!([{"from":"ann","data":{"move":5}}])),
        ("bob", json!({"move":3})),
        ("bob", json!({"move":42})),
    ];
    for (i, (from, data)) in publications.iter().enumerate() {
        let tapped = &seen[2 + i];
        assert_eq!(tapped["channel"], *channel);
        assert_eq!(tapped["seq"], i + 1);
        assert_eq!(tapped["from"], *from);
        assert!(tapped["time"].as_u64().is_some(), "{tapped}");
        if from == &"ann" {
            // A turntable v1 game message's actions, stamped with the owner's time.
            let action = &tapped["data"][0];
            assert_eq!(action["data"], data[0]["data"]);
            assert!(action["timestamp"].as_u64().is_some(), "{tapped}");
        } else {
            assert_eq!(tapped["data"], *data);
        }
    }
    assert_eq!(seen[5], json!({"kicked":"bob"}));
    assert_eq!(
        seen[6],
        json!({"event":"leave","channel":&channel,"user":"bob"})
    );
    assert_eq!(
        backend.wait(BACKEND_PATIENCE),
        0,
        "the backend found nothing off"
    );
}

#[test]
fn every_bus_command_is_carried_out_once_by_the_owner_or_the_next_live_node() {
    let mut cluster = TestCluster::start(3);
    let all = [0, 1, 2];
    let channel = owned_by(1, "news-");
    let mut subscribers: Vec<Client> = all
        .iter()
        .map(|&node| {
            let (mut c, _) = handshaken_on(cluster.addr(node), 0, json!({}));
            sc::subscribe(&mut c, &channel, 2);
            c
        })
        .collect();

    // A publication reaches every subscriber once, whichever node hears it first.
    publish_command(
        &cluster,
        &json!({"method":"publish","params":{"channel":&channel,"data":{"n":1}}}).to_string(),
    );
    for c in &mut subscribers {
        assert_eq!(
            sc::recv(c),
            json!({"event":"#publish","data":{"channel":&channel,"data":{"n":1}}})
        );
    }
    // A reload (which names no id: node 0 acts) reaches every connection once.
    publish_command(&cluster, r#"{"method":"reload"}"#);
    for c in &mut subscribers {
        assert_eq!(sc::recv(c), json!({"event":"reload","data":{}}));
        c.expect_silence(Duration::from_millis(300));
    }

    // Bad commands change nothing; each is refused once.
    for bad in [
        "not json",
        r#"{"method":"teleport","params":{}}"#,
        r#"{"method":"kick","params":[1]}"#,
        r#"{"method":"publish","params":{"data":1}}"#,
    ] {
        publish_command(&cluster, bad);
    }
    eventually(|| bus_total(&cluster, "refused", &all) == 4);
    eventually(|| bus_total(&cluster, "commands", &all) == 2);
    for c in &mut subscribers {
        c.expect_silence(Duration::from_millis(200));
    }

    // The owner of the user is gone: the next live node disconnects the user's
    // connections on the nodes that are left.
    let user = owned_by(1, "carol-");
    let mut on_zero = identified(&cluster, 0, &user);
    let mut on_two = identified(&cluster, 2, &user);
    cluster.kill(1);
    cluster.wait_alive(0, 2);
    cluster.wait_alive(2, 2);
    let reply = cluster.redis.command(&[
        "PUBLISH",
        "turntable:api",
        &json!({"method":"disconnect","params":{"user":&user}}).to_string(),
    ]);
    assert_eq!(reply, ":2\r\n");
    for c in [&mut on_zero, &mut on_two] {
        assert_eq!(
            c.expect_close(),
            (4003, "disconnected by the server".to_owned())
        );
    }
    eventually(|| bus_total(&cluster, "commands", &[0, 2]) == 2);
}
