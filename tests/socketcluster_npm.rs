//! SocketCluster protocol v1 against the real npm clients: socketcluster-client 14.3.2
//! (`sc14`) and 20.0.2 with `protocolVersion: 1` (`sc20`). Each test starts an in-process
//! 2-shard server (HS256 secret, `#1` every 500 ms, ping timeout 1500 ms) and runs
//! `node tests/interop/socketcluster.mjs` against it; the harness prints one `ok` /
//! `not ok` line per check and exits 0 only if all passed. `scripts/setup-node.sh`
//! (idempotent) first installs the pinned packages into `.cache/node`, so these tests
//! need `node` (>= 18) and `npm` on PATH, and the network on the first run.
//! (`tests/socketcluster.rs` checks the same protocol frame by frame.)

mod common;

use std::time::Duration;

use turntable::auth::Secret;

const SECRET: &str = "socketcluster-npm-interop-secret-long-enough";
const API_KEY: &str = "socketcluster-npm-interop-api-key";

/// Runs the harness with `client` against a fresh 2-shard server.
fn harness(client: &str) {
    let server = common::server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        c.socketcluster_ping_interval = Duration::from_millis(500);
        c.socketcluster_ping_timeout = Duration::from_millis(1500);
        c.api_key = Some(API_KEY.into());
    });
    let url = format!("ws://{}/socketcluster/", server.local_addr());
    let api = format!("http://{}", server.local_addr());
    let args = ["--url", &url, "--secret", SECRET, "--client", client];
    common::node::run_harness(
        "socketcluster.mjs",
        &[&args[..], &["--api", &api, "--api-key", API_KEY]].concat(),
    );
}

#[test]
fn socketcluster_client_14() {
    harness("sc14");
}

#[test]
fn socketcluster_client_20_protocol_v1() {
    harness("sc20");
}
