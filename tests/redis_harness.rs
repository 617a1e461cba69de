//! The Redis harness itself (tests/common/redis.rs), against a real `redis-server`: the
//! cluster-over-Redis tests trust it to start, kill and restart servers and to form a
//! cluster, so each of those is checked on Redis's own replies here.

mod common;

use std::net::TcpStream;

use common::redis::{RedisCluster, RedisServer};

#[test]
fn a_server_answers_ping_and_keeps_nothing_on_disk() {
    let redis = RedisServer::start();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert_eq!(redis.command(&["PING"]), "+PONG\r\n");
    assert_eq!(
        redis.command(&["CONFIG", "GET", "save"]),
        "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    );
    assert_eq!(
        redis.command(&["CONFIG", "GET", "appendonly"]),
        "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    );
}

#[test]
fn command_returns_whole_replies() {
    let redis = RedisServer::start();
    assert_eq!(redis.command(&["SET", "k", "a\r\nb"]), "+OK\r\n");
    assert_eq!(redis.command(&["GET", "k"]), "$4\r\na\r\nb\r\n");
    assert_eq!(redis.command(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(redis.command(&["PUBLISH", "room", "hi"]), ":0\r\n");
    assert_eq!(redis.command(&["PUBSUB", "CHANNELS"]), "*0\r\n");
    assert!(
        redis.command(&["NO-SUCH-COMMAND"]).starts_with("-ERR "),
        "an error reply"
    );
}

#[test]
fn kill_and_restart_on_the_same_port() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    assert_eq!(redis.command(&["SET", "k", "v"]), "+OK\r\n");
    let pid = redis.pid().expect("running");

    redis.kill();
    assert_eq!(redis.pid(), None);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on {port} after kill"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} is gone (and reaped)"
    );

    redis.restart();
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), Some(pid));
    assert_eq!(redis.command(&["PING"]), "+PONG\r\n");
    assert_eq!(redis.command(&["GET", "k"]), "$-1\r\n", "back empty");
}

#[test]
fn a_cluster_of_three_masters_is_ok() {
    let cluster = RedisCluster::start();
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    assert_eq!(ports.len(), 3);
    assert_eq!(
        cluster.url(),
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
            ports[0], ports[1], ports[2]
        )
    );
    for node in cluster.nodes() {
        let info = node.command(&["CLUSTER", "INFO"]);
        for line in [
            "cluster_state:ok",
            "cluster_slots_assigned:16384",
            "cluster_known_nodes:3",
            "cluster_size:3",
        ] {
            assert!(info.contains(line), "{line} on {}:\n{info}", node.port());
        }
    }
    // A key lands on one master; the others redirect to it.
    let replies: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| n.command(&["SET", "k", "v"]))
        .collect();
    assert_eq!(replies.iter().filter(|r| *r == "+OK\r\n").count(), 1);
    assert_eq!(
        replies.iter().filter(|r| r.starts_with("-MOVED ")).count(),
        2,
        "{replies:?}"
    );
}
