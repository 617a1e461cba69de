//! SockJS across nodes: three `turntable` processes and a real redis-server behind the
//! balancer README's "Load balancers" section describes (every request of a session to
//! its owner node, `crc32("<prefix>/<session>") % K`). The real `sockjs-client` speaks
//! through it over the HTTP transports, whose sessions span many requests; a raw polling
//! session on one node is a user that watchers on other nodes see; and a request for the
//! session that reaches another node finds no session there.

mod common;

use common::balancer::{Balancer, node_for};
use common::cluster::{TestCluster, identified, owned_by, userchange};
use common::sockjs_http::{poll, send};
use serde_json::{Value, json};

fn balanced(cluster: &TestCluster) -> Balancer {
    Balancer::start((0..3).map(|node| cluster.addr(node)).collect())
}

#[test]
fn the_real_sockjs_client_works_through_a_balancer_that_routes_by_session_owner() {
    let cluster = TestCluster::start(3);
    let balancer = balanced(&cluster);
    let base = format!("http://{}", balancer.addr());
    for transport in ["xhr-streaming", "xhr-polling", "eventsource"] {
        common::node::run_harness("sockjs.mjs", &["--base", &base, "--transport", transport]);
    }
}

/// The messages of polls of `session` through `addr` until one of them is `wanted`.
fn poll_until(addr: std::net::SocketAddr, session: &str, wanted: &Value) -> Vec<Value> {
    let mut seen = Vec::new();
    while !seen.contains(wanted) {
        let frame = poll(addr, session);
        let body = frame
            .trim_end()
            .strip_prefix('a')
            .unwrap_or_else(|| panic!("not a message frame: {frame:?} after {seen:?}"));
        let texts: Vec<String> = serde_json::from_str(body).unwrap();
        seen.extend(
            texts
                .iter()
                .map(|t| serde_json::from_str::<Value>(t).unwrap()),
        );
    }
    seen
}

#[test]
fn a_polling_session_lives_on_its_owner_node_and_is_seen_from_every_node() {
    let cluster = TestCluster::start(3);
    let balancer = balanced(&cluster);
    let via = balancer.addr();
    // The session's owner is node 1, the user's owner node 0, the watcher is on node 2.
    let session = (0..)
        .map(|i| format!("polled{i}"))
        .find(|s| node_for(&format!("/sockjs/turntable/000/{s}/xhr"), 3) == 1)
        .unwrap();
    let user = owned_by(0, "sockjs-user-");
    let mut watcher = identified(&cluster, 2, "watcher");
    watcher.send(json!({"command":"subscribe","data":[&user]}));
    assert_eq!(watcher.recv(), userchange(&user, "offline"));

    assert_eq!(poll(via, &session), "o\n");
    poll_until(via, &session, &json!({"command":"idyou","data":{}}));
    assert_eq!(
        send(via, &session, &[json!({"command":"idme","data":&user})]).0,
        204
    );
    poll_until(
        via,
        &session,
        &json!({"command":"identified","data":{"id":&user}}),
    );
    assert_eq!(watcher.recv(), userchange(&user, "online"));

    // The owner node holds the session: asked directly, it carries the next message.
    let busy = json!({"command":"status","data":"busy"});
    assert_eq!(
        send(cluster.addr(1), &session, std::slice::from_ref(&busy)).0,
        204
    );
    poll_until(cluster.addr(1), &session, &busy);
    assert_eq!(watcher.recv(), userchange(&user, "busy"));

    // The other nodes have no such session: the 404 of an unknown session, and nothing
    // reaches the user's watchers.
    for node in [0, 2] {
        assert_eq!(
            send(
                cluster.addr(node),
                &session,
                &[json!({"command":"status","data":"online"})]
            ),
            (404, "404 Error: Page not found\n".into()),
            "node {node}"
        );
    }
    watcher.expect_silence(std::time::Duration::from_millis(300));
}
