//! Running the server as an operator does: start failures that name their cause and
//! fix, logs, the config commands, metrics and readiness. Each test runs the real
//! binary.

mod common;

use std::process::{Command, Stdio};

use common::{binary, spawn_binary};

/// Runs `turntable ARGS` (no settings from the environment) and returns its exit code,
/// stdout and stderr; fails the test if it is still running after 15 s (a server that
/// started where it should have refused to).
fn run_binary(args: &[&str]) -> (i32, String, String) {
    let mut child = binary(args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "turntable {args:?} still running after 15 s; it printed {:?}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The port from the binary's `listening on ADDR:PORT (N shards)` line.
fn port_of(line: &str) -> u16 {
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("not a listening line: {line:?}"));
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// Runs `turntable ARGS` from a shell that first runs `limit` (a `ulimit` command), with
/// no settings from the environment; its exit code and stderr.
fn run_limited(limit: &str, args: &[&str]) -> (i32, String) {
    let program = binary(args, &[]);
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("{limit} && exec \"$0\" \"$@\""))
        .arg(program.get_program())
        .args(program.get_args())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = shell.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_second_server_on_a_served_port_is_refused_naming_the_port() {
    let (mut first, line) = spawn_binary(&["serve", "--listen", "127.0.0.1:0", "--shards", "2"]);
    let port = port_of(&line);
    let addr = format!("127.0.0.1:{port}");
    let (code, _, stderr) = run_binary(&["serve", "--listen", &addr, "--shards", "2"]);
    assert_eq!(code, 2, "the second server must not start: {stderr}");
    assert!(
        stderr.contains(&format!("port {port} is already in use")) && stderr.contains("--listen"),
        "{stderr}"
    );
    // The first server still has every connection to itself.
    let (status, body) = common::get(addr.parse().unwrap(), "/healthz");
    assert_eq!(status, 200, "{body}");
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn a_port_held_by_another_program_is_refused() {
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port();
    let (code, _, stderr) = run_binary(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("port {port} is already in use")),
        "{stderr}"
    );
}

#[test]
fn a_low_memlock_limit_names_the_limit_and_the_fix() {
    let (code, stderr) = run_limited("ulimit -l 300", &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("RLIMIT_MEMLOCK") && last.contains("300 KiB"),
        "{stderr}"
    );
    assert!(
        last.contains("ulimit -l") && last.contains("LimitMEMLOCK"),
        "{stderr}"
    );
    assert!(!stderr.contains("a shard did not start"), "{stderr}");
}

#[test]
fn more_pinned_shards_than_cpus_names_the_fix() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let shards = (cores + 1).to_string();
    let (code, _, stderr) = run_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        &shards,
        "--pin",
        "true",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cores") && stderr.contains("pin"),
        "{stderr}"
    );
}
