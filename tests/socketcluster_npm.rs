//! SocketCluster protocol v1 against the real npm clients: socketcluster-client 14.3.2
//! (`sc14`) and 20.0.2 with `protocolVersion: 1` (`sc20`). Each test starts an in-process
//! 2-shard server (HS256 secret, `#1` every 500 ms, ping timeout 1500 ms) and runs
//! `node tests/interop/socketcluster.mjs` against it; the harness prints one `ok` /
//! `not ok` line per check and exits 0 only if all passed. `scripts/setup-node.sh`
//! (idempotent) first installs the pinned packages into `.cache/node`, so these tests
//! need `node` (>= 18) and `npm` on PATH, and the network on the first run.
//! (`tests/socketcluster.rs` checks the same protocol frame by frame.)

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use turntable::auth::Secret;

const SECRET: &str = "socketcluster-npm-interop-secret-long-enough";
const API_KEY: &str = "socketcluster-npm-interop-api-key";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `scripts/setup-node.sh` once per test process; panics with its output if it fails.
fn setup_node() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let done = DONE.get_or_init(|| {
        for tool in ["node", "npm"] {
            if let Err(e) = Command::new(tool).arg("--version").output() {
                return Err(format!(
                    "`{tool} --version` failed ({e}): the npm interop tests need Node.js >= 18 \
                     with npm on PATH"
                ));
            }
        }
        let out = Command::new("bash")
            .arg(Path::new(ROOT).join("scripts/setup-node.sh"))
            .current_dir(ROOT)
            .output()
            .map_err(|e| format!("cannot run scripts/setup-node.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/setup-node.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = done {
        panic!("{message}");
    }
}

/// Runs the harness with `client` against a fresh 2-shard server.
fn harness(client: &str) {
    setup_node();
    let server = common::server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        c.sc_ping_interval = Duration::from_millis(500);
        c.sc_ping_timeout = Duration::from_millis(1500);
        c.api_key = Some(API_KEY.into());
    });
    let url = format!("ws://{}/socketcluster/", server.local_addr());
    let api = format!("http://{}", server.local_addr());
    let started = Instant::now();
    let out = Command::new("node")
        .arg("tests/interop/socketcluster.mjs")
        .args(["--url", &url, "--secret", SECRET, "--client", client])
        .args(["--api", &api, "--api-key", API_KEY])
        .current_dir(ROOT)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the {client} harness failed ({}) after {:.1?}:\n{stdout}{stderr}",
        out.status,
        started.elapsed()
    );
    assert!(
        stdout.contains(" passed, 0 failed"),
        "no summary from the {client} harness:\n{stdout}{stderr}"
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
