//! The HTTP API of a cluster: three `turntable` processes and a real redis-server, with
//! clients of every dialect on different nodes. Whichever node it asks, an API caller
//! sees the whole cluster: channel presence, kicks, reloads and disconnects reach every
//! node; the lobby's games and events span them; `/api/stats` gives each node's figures
//! and the cluster's totals.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::cluster::{TestCluster, identified, owned_as};
use common::socketcluster::{self as sc, handshaken_on};
use common::{Client, eventually, http};
use serde_json::{Value, json};

/// One API call on a fresh connection: the status and the JSON body.
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let response = http(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"));
    (status, json)
}

/// A turntable v1 connection to `node` identified as `user` and a member of `room`.
fn member(cluster: &TestCluster, node: usize, user: &str, room: &str) -> Client {
    let mut c = identified(cluster, node, user);
    c.send(json!({"command":"joingame","data":{"channel":room,"self":user}}));
    assert_eq!(c.recv()["command"], "joined");
    c
}

fn world_member(cluster: &TestCluster, node: usize, user: &str) -> Client {
    let mut c = Client::connect(cluster.addr(node), "/ws/world/default");
    c.send(json!(["authenticate", {"user": {"id": user}}]));
    assert_eq!(c.recv()[0], "authenticated");
    c
}

#[test]
fn presence_kick_reload_and_disconnect_reach_every_node() {
    let cluster = TestCluster::start(3);
    // The room is owned by node 2; its members are on nodes 0 and 1.
    let room = owned_as(2, "hall", |r| format!("turntable:{r}"));
    let api_channel = format!("turntable%3A{room}");
    let mut ann = member(&cluster, 0, "ann", &room);
    let mut bob = member(&cluster, 1, "bob", &room);
    assert_eq!(ann.recv()["command"], "memberjoined");
    let mut ann_elsewhere = identified(&cluster, 2, "ann");
    let (mut subscriber, _) = handshaken_on(cluster.addr(2), 1, json!({}));
    sc::subscribe(&mut subscriber, "news", 2);

    for node in 0..3 {
        let (status, presence) = call(
            cluster.addr(node),
            "GET",
            &format!("/api/channels/{api_channel}/presence"),
            None,
        );
        assert_eq!(status, 200);
        let ids: BTreeSet<&str> = presence["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, BTreeSet::from(["ann", "bob"]), "asked of node {node}");
    }

    let (_, kicked) = call(
        cluster.addr(0),
        "POST",
        &format!("/api/channels/{api_channel}/kick"),
        Some(json!({"user":"bob","message":"afk"})),
    );
    assert_eq!(
        kicked,
        json!({"channel": format!("turntable:{room}"), "kicked": 1})
    );
    assert_eq!(
        bob.recv(),
        json!({"command":"kicked","data":{"channel":&room,"message":"afk"}})
    );
    assert_eq!(
        ann.recv(),
        json!({"command":"memberleft","data":{"channel":&room,"user":"bob"}})
    );

    let (_, reloaded) = call(cluster.addr(1), "POST", "/api/clients/reload", None);
    assert_eq!(reloaded, json!({"reloaded": 4}));
    for c in [&mut ann, &mut bob, &mut ann_elsewhere] {
        assert_eq!(c.recv(), json!({"command":"reload","data":{}}));
    }
    assert_eq!(
        sc::recv(&mut subscriber),
        json!({"event":"reload","data":{}})
    );

    let (_, disconnected) = call(cluster.addr(1), "POST", "/api/users/ann/disconnect", None);
    assert_eq!(disconnected, json!({"id":"ann","disconnected":2}));
    for c in [&mut ann, &mut ann_elsewhere] {
        assert_eq!(
            c.expect_close(),
            (4003, "disconnected by the server".into())
        );
    }
    bob.send(json!({"command":"status","data":"busy"}));
    assert_eq!(bob.recv(), json!({"command":"status","data":"busy"}));
    for node in 0..3 {
        eventually(|| {
            let (_, user) = call(cluster.addr(node), "GET", "/api/users/ann", None);
            user == json!({"id":"ann","status":"offline","connections":0})
        });
    }
}

#[test]
fn the_lobby_spans_every_node_and_stats_count_each_node_and_the_cluster() {
    let mut cluster = TestCluster::start(3);
    let mut lobby_v1 = member(&cluster, 0, "watcher", "lobby");
    let (mut lobby_sc, _) = handshaken_on(cluster.addr(1), 0, json!({}));
    sc::subscribe(&mut lobby_sc, "lobby", 2);
    let mut lobby_world = world_member(&cluster, 2, "onlooker");
    lobby_world.send(json!(["channel.join", 1, {"channel": "lobby"}]));
    assert_eq!(lobby_world.recv()[0], "success");
    assert_eq!(lobby_v1.recv()["command"], "memberjoined");

    // One game owned by node 2, made through node 1; one owned by node 0, made
    // through node 2.
    let far = owned_as(2, "duel", |g| format!("game:{g}"));
    let near = owned_as(0, "melee", |g| format!("game:{g}"));
    let mut games = Vec::new();
    for (id, via) in [(&far, 1), (&near, 2)] {
        let (status, game) = call(
            cluster.addr(via),
            "POST",
            "/api/games",
            Some(json!({"id": id, "name": "Match", "max_players": 2})),
        );
        assert_eq!(status, 200, "{game}");
        let news = json!({"type": "game_created", "game": &game});
        assert_eq!(lobby_v1.recv()["data"]["actions"], news);
        assert_eq!(sc::recv(&mut lobby_sc)["data"]["data"], news);
        assert_eq!(lobby_world.recv()[1]["data"], news);
        games.push(game);
    }
    let (status, again) = call(
        cluster.addr(0),
        "POST",
        "/api/games",
        Some(json!({"id": &far, "name": "Twice", "max_players": 2})),
    );
    assert_eq!(
        (status, &again["error"]["code"]),
        (409, &json!("api.conflict"))
    );
    for node in 0..3 {
        let (_, listed) = call(cluster.addr(node), "GET", "/api/games", None);
        let mut listed = listed["games"].as_array().unwrap().clone();
        listed.sort_by_key(|g| g["id"].as_str().unwrap().to_owned());
        let mut expected = games.clone();
        expected.sort_by_key(|g| g["id"].as_str().unwrap().to_owned());
        assert_eq!(listed, expected, "listed by node {node}");
    }

    let mut player = member(&cluster, 1, "ann", &format!("game:{far}"));
    let joined = json!({"type": "player_joined", "game": &far, "user": "ann", "players": 1});
    assert_eq!(sc::recv(&mut lobby_sc)["data"]["data"], joined);
    assert_eq!(lobby_world.recv()[1]["data"], joined);
    let (_, closed) = call(
        cluster.addr(0),
        "DELETE",
        &format!("/api/games/{far}"),
        None,
    );
    assert_eq!(closed, json!({"id": &far, "closed": true, "kicked": 1}));
    assert_eq!(
        player.recv(),
        json!({"command":"kicked","data":{"channel":format!("game:{far}"),"message":"game closed"}})
    );
    let (_, listed) = call(cluster.addr(2), "GET", "/api/games", None);
    assert_eq!(listed, json!({"games": [&games[1]]}));

    // Open now: node 0 the lobby member, node 1 the SocketCluster client and the
    // player, node 2 the World client. Other nodes' figures come with their
    // heartbeats.
    let per_node = [1, 2, 1];
    for node in 0..3 {
        eventually(|| {
            let (_, stats) = call(cluster.addr(node), "GET", "/api/stats", None);
            let nodes = stats["nodes"].as_array().cloned().unwrap_or_default();
            stats["node"] == node
                && stats["connections"] == per_node[node]
                && stats["cluster"]["connections"] == 4
                && nodes.len() == 3
                && nodes.iter().enumerate().all(|(i, n)| {
                    n["node"] == i
                        && n["alive"] == true
                        && n["connections"] == per_node[i]
                        && n["shards"].as_array().map(Vec::len) == Some(2)
                })
        });
    }

    // A dead node's last figures leave the totals: node 1's two connections go.
    cluster.kill(1);
    for node in [0, 2] {
        eventually(|| {
            let (_, stats) = call(cluster.addr(node), "GET", "/api/stats", None);
            stats["cluster"]["connections"] == 2
                && stats["nodes"][1]["alive"] == false
                && stats["nodes"][1].get("connections").is_none()
        });
    }
}
