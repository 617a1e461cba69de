//! Cluster faults end to end: three real `turntable` nodes over a real redis-server,
//! with real clients. Redis killed and restarted on the same port (readiness,
//! reconnection, presence converging, local traffic carrying on, cross-node commands
//! refused with `cluster.unavailable`); Redis stopped (SIGSTOP) under cross-node load
//! (the bounded queue drops and counts, memory stays bounded, nothing hangs or flaps,
//! the cluster converges after SIGCONT), also one master of a Redis Cluster; and
//! requests for objects a dead node owns refused with `cluster.owner_unavailable` in
//! every dialect.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    NODE_TIMEOUT, RedisClusterNodes, TestCluster, identified, owned_as, owned_by, userchange,
};
use common::redis::listed_channels;
use common::socketcluster::{self as sc, handshaken_on};
use common::{Client, get};
use serde_json::{Value, json};

/// `/cluster`'s `redis` field on `node`.
fn redis_field(cluster: &TestCluster, node: usize) -> Value {
    let (_, body) = get(cluster.addr(node), "/cluster");
    serde_json::from_str::<Value>(&body).unwrap()["redis"].clone()
}

/// Without Redis: a SocketCluster publication to `local` (owned by the publisher's
/// node) reaches `sub`, one to `remote` (owned elsewhere) gets `cluster.unavailable`.
fn local_flows_and_remote_is_refused(
    publisher: &mut Client,
    sub: &mut Client,
    local: &str,
    remote: &str,
) {
    publisher.send(json!({"event":"#publish","data":{"channel":local,"data":"here"},"cid":3}));
    assert_eq!(sc::recv(publisher), json!({"rid":3}));
    assert_eq!(
        sc::recv(sub),
        json!({"event":"#publish","data":{"channel":local,"data":"here"}})
    );
    publisher.send(json!({"event":"#publish","data":{"channel":remote,"data":"there"},"cid":4}));
    let refusal = sc::recv(publisher);
    assert_eq!(refusal["rid"], 4, "{refusal}");
    assert!(
        refusal["error"]["message"]
            == "the servers cannot reach each other right now; try again soon",
        "{refusal}"
    );
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
    let logs: Vec<_> = (0..3).map(|node| cluster.log(node)).collect();
    let log_lines = |node: usize, text: &str| {
        let log = std::fs::read_to_string(&logs[node]).unwrap();
        log.lines().filter(|l| l.contains(text)).count()
    };
    for node in 0..3 {
        common::eventually(|| {
            get(cluster.addr(node), "/readyz") == (503, r#"{"status":"no redis"}"#.into())
        });
        assert_eq!(redis_field(&cluster, node), false);
        common::eventually(|| {
            log_lines(
                node,
                "lost Redis: other nodes are unreachable until it is back",
            ) == 1
        });
    }
    leaves.close();
    local_flows_and_remote_is_refused(&mut publisher, &mut sub, &local, &remote);
    watcher.expect_silence(Duration::from_millis(300));

    cluster.redis.restart();
    let back = Instant::now();
    for node in 0..3 {
        common::eventually(|| get(cluster.addr(node), "/readyz").0 == 200);
        assert_eq!(redis_field(&cluster, node), true);
        // Connected at the start, and again now.
        assert_eq!(log_lines(node, "connected to Redis"), 2, "node {node}");
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
    // The cluster's changes are in the survivors' logs.
    for node in [0, 1] {
        let log = std::fs::read_to_string(cluster.log(node)).unwrap();
        let line = |text: &str| log.lines().find(|l| l.contains(text)).map(str::to_owned);
        let up = line("node is up node=2").unwrap_or_else(|| panic!("node {node}: {log}"));
        assert!(up.contains(" INFO "), "{up}");
        let gone = line("node is gone: no heartbeat within node_timeout node=2")
            .unwrap_or_else(|| panic!("node {node}: {log}"));
        assert!(gone.contains(" WARN "), "{gone}");
    }
    let dead = |prefix: &str| owned_by(2, prefix);

    // turntable v1 joingame.
    let user = owned_by(0, "v1-user-");
    let mut v1 = identified(&cluster, 0, &user);
    let room = owned_as(2, "room-", |r| format!("turntable:{r}"));
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

/// Sends `signal` to process `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a PID this test started; no memory is shared.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// Resumes a SIGSTOPped Redis when dropped, so a failing test leaves no stopped process.
struct Stopped(u32);

impl Stopped {
    fn stop(pid: u32) -> Stopped {
        signal(pid, libc::SIGSTOP);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as in `signal`; a failure here (the process is gone) is harmless.
        unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGCONT) };
    }
}

/// The resident set size of process `pid`, in bytes (`VmRSS` in /proc/PID/status).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"));
    kib * 1024
}

/// `POST /api/publish` of `data` to `channel` on `addr`; the status code.
fn api_publish(addr: std::net::SocketAddr, channel: &str, data: &Value) -> u16 {
    let body = json!({"channel":channel,"data":data}).to_string();
    let response = common::http(
        addr,
        &format!(
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// What `/metrics` on `node` says of `series`.
fn metric(cluster: &TestCluster, node: usize, series: &str) -> u64 {
    common::metric(cluster.addr(node), series)
}

#[test]
fn a_stalled_redis_bounds_memory_drops_with_a_metric_and_the_cluster_converges_after() {
    let mut cluster = TestCluster::start(3);
    // The harness starts nodes one start-up wait (two heartbeats) apart, so their
    // heartbeats are in step. Node 2 is started again out of step, as nodes in
    // production are: its heartbeats come about three quarters of an interval (400
    // ms) after node 0's and 1's. Redis stopped just after one of node 2's then
    // leaves nodes 0 and 1 unheard for that much longer than the last message:
    // longer than the monitor's half-interval tick, so a monitor that took their
    // silence for death would declare them gone before the stall is noticed.
    cluster.kill(2);
    std::thread::sleep(Duration::from_millis(500)); // the kernel lets go of its port
    let beat_of = |beats: &mut common::redis::Subscriber| {
        serde_json::from_str::<Value>(&beats.next_payload()).unwrap()["node"].clone()
    };
    let mut beats = cluster.redis.subscribe("turntable:hb");
    while beat_of(&mut beats) != 0 {}
    std::thread::sleep(NODE_TIMEOUT / 8); // and the start's own latency
    cluster.restart(2);
    for node in 0..3 {
        cluster.wait_alive(node, 3);
    }
    // Presence across nodes that must not flap: a user owned by node 0, connected on
    // node 2, watched on node 0.
    let stayer = owned_by(0, "stayer-");
    let mut watcher = identified(&cluster, 0, "watcher");
    watcher.send(json!({"command":"subscribe","data":[&stayer]}));
    assert_eq!(watcher.recv(), userchange(&stayer, "offline"));
    let _stays = identified(&cluster, 2, &stayer);
    assert_eq!(watcher.recv(), userchange(&stayer, "online"));
    // A channel node 0 owns with subscribers on nodes 1 and 2: each publication on
    // node 0 is a batch to each of them. Local traffic on node 0; a publisher there
    // toward a channel node 1 owns.
    let flood = owned_by(0, "flood-");
    let mut far: Vec<Client> = [1, 2]
        .iter()
        .map(|&node| {
            let (mut c, _) = handshaken_on(cluster.addr(node), 0, json!({}));
            sc::subscribe(&mut c, &flood, 2);
            c
        })
        .collect();
    let local = owned_by(0, "local-");
    let remote = owned_by(1, "remote-");
    let (mut sub, _) = handshaken_on(cluster.addr(0), 0, json!({}));
    sc::subscribe(&mut sub, &local, 2);
    let (mut publisher, _) = handshaken_on(cluster.addr(0), 1, json!({}));
    assert_eq!(api_publish(cluster.addr(0), &flood, &json!("before")), 200);
    for c in &mut far {
        assert_eq!(sc::recv(c)["data"]["data"], "before");
    }

    let dropped = r#"turntable_cluster_dropped_total"#;
    let node0 = cluster.pid(0).unwrap();
    let rss_before = rss(node0);
    let dropped_before = metric(&cluster, 0, dropped);
    let mut beats = cluster.redis.subscribe("turntable:hb");
    while beat_of(&mut beats) != 2 {}
    let stalled = Stopped::stop(cluster.redis.pid().unwrap());
    let stopped_at = Instant::now();

    // Publications of 32 KiB from four threads for a node_timeout and a half: the
    // first node_timeout's worth fills the queue toward the stalled Redis (and more
    // is dropped), after it the nodes find Redis silent. 256 of them fill it (each is
    // a batch to two nodes), few enough for a loaded machine within the timeout.
    let payload = json!("x".repeat(32 << 10));
    let flood_for = NODE_TIMEOUT * 3 / 2;
    let mut peak = rss_before;
    let published: usize = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = rss_before;
            while stopped_at.elapsed() < flood_for + NODE_TIMEOUT {
                peak = peak.max(rss(node0));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut sent = 0;
                    while stopped_at.elapsed() < flood_for {
                        assert_eq!(api_publish(cluster.addr(0), &flood, &payload), 200);
                        sent += 1;
                    }
                    sent
                })
            })
            .collect();
        let published = threads.into_iter().map(|t| t.join().unwrap()).sum();
        peak = sampler.join().unwrap();
        published
    });
    eprintln!("{published} publications of 32 KiB during the stall");
    // A correctness bound, not a measurement: the queue holds at most 16 MiB.
    let growth = peak - rss_before;
    eprintln!("node 0 RSS grew by {} KiB at most", growth >> 10);
    assert!(growth < 64 << 20, "node 0 grew by {growth} bytes");
    let log = std::fs::read_to_string(cluster.log(0)).unwrap();
    assert!(
        log.contains("cross-node messages dropped: the queue toward Redis is full"),
        "{log}"
    );

    // The stall is noticed: every node says so, and none hangs on it.
    for node in 0..3 {
        common::eventually(|| {
            get(cluster.addr(node), "/readyz") == (503, r#"{"status":"no redis"}"#.into())
        });
    }
    assert!(
        stopped_at.elapsed() < NODE_TIMEOUT * 3,
        "noticed after {:?}",
        stopped_at.elapsed()
    );
    assert!(metric(&cluster, 0, dropped) > dropped_before);
    // The publisher does not hang on the stalled Redis: what was queued is dropped.
    common::eventually(|| metric(&cluster, 0, "turntable_cluster_queue_depth") == 0);
    let dropped_in_stall = metric(&cluster, 0, dropped) - dropped_before;
    eprintln!("{dropped_in_stall} batches dropped");
    assert!(rss(node0).saturating_sub(rss_before) < 64 << 20);

    // Traffic within node 0 flows; a publication for node 1's channel is refused.
    local_flows_and_remote_is_refused(&mut publisher, &mut sub, &local, &remote);
    // A stalled Redis is no dead node: every node still shows every node alive, and
    // the user on node 2 never went offline for the watcher on node 0.
    for node in 0..3 {
        assert_eq!(cluster.alive(node), [true, true, true], "node {node}");
    }
    watcher.expect_silence(Duration::from_millis(300));

    drop(stalled);
    let resumed = Instant::now();
    for node in 0..3 {
        common::eventually(|| get(cluster.addr(node), "/readyz").0 == 200);
        cluster.wait_alive(node, 3);
    }
    eprintln!("ready and all alive {:?} after SIGCONT", resumed.elapsed());
    // No flapping: every node keeps seeing every node alive, and the stayer online.
    let watch_until = Instant::now() + NODE_TIMEOUT * 2;
    while Instant::now() < watch_until {
        for node in 0..3 {
            assert_eq!(cluster.alive(node), [true, true, true], "node {node}");
        }
        watcher.expect_silence(Duration::from_millis(100));
    }
    // Cross-node traffic flows again (a subscriber may first see publications from
    // the stall that Redis still held).
    assert_eq!(api_publish(cluster.addr(0), &flood, &json!("after")), 200);
    for c in &mut far {
        let deadline = Instant::now() + common::PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "no \"after\"");
            if sc::recv(c)["data"]["data"] == "after" {
                break;
            }
        }
    }
    let late = owned_by(0, "late-");
    watcher.send(json!({"command":"subscribe","data":[&late]}));
    assert_eq!(watcher.recv(), userchange(&late, "offline"));
    let _late = identified(&cluster, 2, &late);
    assert_eq!(watcher.recv(), userchange(&late, "online"));
}

#[test]
fn a_stalled_redis_cluster_master_is_noticed_and_rejoined() {
    let redis = common::redis::RedisCluster::start();
    let nodes = RedisClusterNodes::start(3, &redis.url());
    // The master that holds node 1's sharded channel is stopped: what node 0 sends
    // node 1 goes there.
    let master = (0..3)
        .find(|&m| {
            listed_channels(&redis.nodes()[m].command(&["PUBSUB", "SHARDCHANNELS"]))
                .contains(&"turntable:node:1".to_owned())
        })
        .expect("a master holds turntable:node:1");
    let channel = owned_by(0, "over-shards-");
    let (mut far, _) = handshaken_on(nodes.addr(1), 0, json!({}));
    sc::subscribe(&mut far, &channel, 2);
    assert_eq!(api_publish(nodes.addr(0), &channel, &json!("before")), 200);
    assert_eq!(sc::recv(&mut far)["data"]["data"], "before");

    let stalled = Stopped::stop(redis.nodes()[master].pid().unwrap());
    let stopped_at = Instant::now();
    // Node 0's publications for node 1 fail within the links' bounds: it finds Redis
    // out, and so does node 1, whose own channel is silent.
    for node in [0, 1] {
        while get(nodes.addr(node), "/readyz").0 != 503 {
            assert_eq!(api_publish(nodes.addr(0), &channel, &json!("during")), 200);
            assert!(
                stopped_at.elapsed() < NODE_TIMEOUT * 3,
                "node {node} never noticed: {}",
                std::fs::read_to_string(nodes.log(node)).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!("noticed after {:?}", stopped_at.elapsed());
    // (A node whose publisher waits on the stalled master may fall silent on the
    // others for longer than node_timeout: they may declare it gone meanwhile, and
    // see it up again when the master is back.)
    std::thread::sleep(NODE_TIMEOUT);

    drop(stalled);
    let resumed = Instant::now();
    for node in 0..3 {
        common::eventually(|| get(nodes.addr(node), "/readyz").0 == 200);
        nodes.wait_all_alive(node);
    }
    eprintln!("ready and all alive {:?} after SIGCONT", resumed.elapsed());
    let watch_until = Instant::now() + NODE_TIMEOUT * 2;
    while Instant::now() < watch_until {
        for node in 0..3 {
            assert_eq!(nodes.alive(node), 3, "node {node}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(api_publish(nodes.addr(0), &channel, &json!("after")), 200);
    let deadline = Instant::now() + common::PATIENCE;
    while sc::recv(&mut far)["data"]["data"] != "after" {
        assert!(Instant::now() < deadline, "no \"after\"");
    }
}
