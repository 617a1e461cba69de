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

/// Starts the server with `args`, stderr piped, stops it with SIGTERM once it listens,
/// and returns everything it wrote to stderr.
fn stderr_of_a_run(args: &[&str]) -> String {
    let (child, line) = spawn_binary(args);
    assert!(line.starts_with("listening on"), "{line}");
    // SAFETY: kill sends a signal to the child we started; no memory is involved.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

const KEY: &str = "an-api-key-of-some-length";
const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes!";

#[test]
fn text_logs_to_a_pipe_have_no_colour_and_say_start_settings_and_shutdown() {
    let stderr = stderr_of_a_run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--api-key",
        KEY,
        "--auth-secret",
        SECRET,
    ]);
    assert!(
        !stderr.contains("\x1b["),
        "ANSI codes in piped logs: {stderr:?}"
    );
    let start = stderr
        .lines()
        .find(|l| l.contains("INFO") && l.contains("starting"))
        .unwrap_or_else(|| panic!("no start line: {stderr}"));
    assert!(
        start.contains("shards=2") || start.contains("shards="),
        "{start}"
    );
    assert!(start.contains("listen=\"127.0.0.1:0\""), "{start}");
    assert!(start.contains("api_key=<redacted>") && start.contains("auth_secret=<redacted>"));
    assert!(
        !stderr.contains(KEY) && !stderr.contains(SECRET),
        "a secret in the logs"
    );
    let shutdown = stderr.find("shutting down").expect("a shutdown line");
    let stopped = stderr.find("stopped").expect("a stopped line");
    assert!(
        shutdown < stopped && stderr.contains("signal=\"SIGTERM\""),
        "{stderr}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let stderr = stderr_of_a_run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--api-key",
        KEY,
    ]);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["fields"]["message"].as_str().unwrap_or_default())
        .collect();
    for expected in ["starting", "listening", "stopped"] {
        assert!(
            messages.contains(&expected),
            "no {expected:?} in {messages:?}"
        );
    }
    assert!(messages.iter().any(|m| m.starts_with("shutting down")));
    let start = &lines[messages.iter().position(|m| *m == "starting").unwrap()];
    assert_eq!(start["level"], "INFO");
    let settings = start["fields"]["settings"].as_str().unwrap();
    assert!(settings.contains("log_format=\"json\"") && settings.contains("api_key=<redacted>"));
    assert!(!stderr.contains(KEY));
}

#[test]
fn an_unknown_log_format_is_refused() {
    let (code, _, stderr) = run_binary(&["serve", "--log-format", "xml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("log_format") && stderr.contains("text or json"),
        "{stderr}"
    );
}

/// A file in a fresh scratch directory of this test.
fn scratch_file(test: &str, name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("turntable-ops-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn gen_config_lists_every_setting_and_uncommented_is_accepted_by_check_config() {
    let (code, generated, stderr) = run_binary(&["gen-config"]);
    assert_eq!(code, 0, "{stderr}");
    for spec in turntable::config::SETTINGS {
        assert!(
            generated.contains(&format!("# {} = ", spec.name))
                || generated.contains(&format!("`{} = ...`", spec.name)),
            "{} missing from gen-config",
            spec.name
        );
        assert!(generated.contains(&spec.env()), "{} has no help", spec.name);
    }
    let names: Vec<&str> = turntable::config::SETTINGS.iter().map(|s| s.name).collect();
    let mut uncommented = 0;
    let text: String = generated
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if names.iter().any(|n| rest.starts_with(&format!("{n} = "))) => {
                uncommented += 1;
                format!("{rest}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let without_default = generated.matches("(no default: add `").count();
    assert_eq!(
        uncommented + without_default,
        names.len(),
        "every setting is a line to uncomment or says it has no default"
    );
    let path = scratch_file("gen", "turntable.toml", &text);
    let (code, checked, stderr) = run_binary(&["check-config", &path]);
    assert_eq!(
        code, 0,
        "check-config refused gen-config's output: {stderr}\n{text}"
    );
    // Uncommented, the defaults are what the server would run with anyway.
    let (_, defaults, _) = run_binary(&["serve", "--check"]);
    assert_eq!(checked, defaults);
}

#[test]
fn check_config_prints_the_effective_settings_without_secrets_or_exits_2() {
    let good = scratch_file(
        "check",
        "good.toml",
        &format!(
            "shards = 1\nidle_timeout = \"30s\"\napi_key = \"{KEY}\"\nauth_secret = \"{SECRET}\"\n"
        ),
    );
    let (code, out, stderr) = run_binary(&["check-config", &good]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("shards = 1\n") && out.contains("idle_timeout = \"30s\"\n"),
        "{out}"
    );
    assert!(out.contains("# api_key is set (not shown)"), "{out}");
    assert!(
        !out.contains(KEY) && !out.contains(SECRET),
        "a secret printed: {out}"
    );

    let bad = scratch_file("check", "bad.toml", "shards = 1\nidle_timeout = 30\n");
    let (code, out, stderr) = run_binary(&["check-config", &bad]);
    assert_eq!(code, 2, "{out}");
    assert!(stderr.contains("bad.toml:2: idle_timeout"), "{stderr}");

    let (code, _, stderr) = run_binary(&["check-config", "/nonexistent/turntable.toml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/turntable.toml"), "{stderr}");
}

/// `GET path` with extra header lines; the response head and body.
fn get_with(addr: &str, path: &str, headers: &str) -> (String, String) {
    let response = common::http(
        addr.parse().unwrap(),
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n"),
    );
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    (head.to_owned(), body.to_owned())
}

/// The value of the one sample named `name` (no labels) in a classic exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_pass_promtool_in_the_classic_format_with_process_and_build_figures() {
    let (mut server, line) = spawn_binary(&["serve", "--listen", "127.0.0.1:0"]);
    let addr = format!("127.0.0.1:{}", port_of(&line));
    let (head, before) = get_with(&addr, "/metrics", "Accept: text/plain; version=0.0.4\r\n");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    // Every family has HELP and TYPE naming exactly the series it holds (a
    // histogram's with their `_bucket`, `_sum` and `_count` suffixes).
    let mut described = std::collections::HashSet::new();
    let mut histograms = std::collections::HashSet::new();
    for line in before.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described.insert(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(described.contains(name), "{line}");
            if kind == "histogram" {
                histograms.insert(name.to_owned());
            }
        } else {
            assert!(!line.starts_with('#'), "{line}");
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|family| histograms.contains(*family));
            assert!(
                described.contains(name) || family.is_some(),
                "{name} has no HELP"
            );
        }
    }
    for name in [
        "turntable_handshake_seconds",
        "turntable_delivery_latency_seconds",
    ] {
        assert!(histograms.contains(name), "no histogram {name}");
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(described.contains(name), "no {name}");
    }
    assert!(sample(&before, "process_resident_memory_bytes") > 1e6);
    let version = env!("CARGO_PKG_VERSION");
    assert!(before.contains(&format!(
        "turntable_build_info{{version=\"{version}\"}} 1\n"
    )));

    // Each client is an open file descriptor.
    let clients: Vec<_> = (0..20)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    common::eventually(|| {
        let (_, now) = get_with(&addr, "/metrics", "");
        sample(&now, "process_open_fds") >= sample(&before, "process_open_fds") + 20.0
    });
    drop(clients);

    common::check_with_promtool(&before);

    let (head, body) = get_with(
        &addr,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
    );
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n") && body.contains("# TYPE process_cpu_seconds counter"));

    let (head, body) = get_with(&addr, "/readyz", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, r#"{"status":"ready"}"#);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn readyz_says_stopping_once_a_shutdown_began() {
    use std::io::{Read, Write};
    let (server, line) = spawn_binary(&["serve", "--listen", "127.0.0.1:0", "--shards", "1"]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", port_of(&line)).parse().unwrap();
    // A WebSocket client that does not answer the server's close holds the drain open
    // for shutdown_grace.
    let _client = common::Client::connect(addr, "/turntable");
    let mut http = std::net::TcpStream::connect(addr).unwrap();
    http.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut ask = || {
        http.write_all(b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = http.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = ask();
    assert!(ready.starts_with("HTTP/1.1 200") && ready.ends_with(r#"{"status":"ready"}"#));
    // SAFETY: kill sends a signal to the child we started; no memory is involved.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stopping = ask();
    assert!(
        stopping.starts_with("HTTP/1.1 503") && stopping.ends_with(r#"{"status":"stopping"}"#),
        "{stopping}"
    );
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success());
}

#[test]
fn a_drain_lasts_shutdown_grace_for_a_client_that_never_closes_and_no_longer() {
    let grace = std::time::Duration::from_secs(1);
    let (server, line) = spawn_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--shutdown-grace",
        "1s",
    ]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", port_of(&line)).parse().unwrap();
    // A client that reads nothing never answers the server's close.
    let _deaf = std::net::TcpStream::connect(addr).and_then(|mut s| {
        use std::io::Write;
        s.write_all(
            b"GET /turntable HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )?;
        Ok(s)
    });
    let series = r#"turntable_connections{shard="0",dialect="turntable"}"#;
    common::eventually(|| common::metric(addr, series) == 1);
    let asked = std::time::Instant::now();
    // SAFETY: kill sends a signal to the child we started; no memory is involved.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    let out = server.wait_with_output().unwrap();
    let took = asked.elapsed();
    assert!(out.status.success(), "{out:?}");
    assert!(
        took >= grace - std::time::Duration::from_millis(50)
            && took < grace + std::time::Duration::from_millis(700),
        "exited {took:?} after SIGTERM; shutdown_grace is {grace:?}"
    );
}

#[test]
fn io_uring_refused_by_seccomp_names_the_cause_and_the_fix() {
    use std::os::unix::process::CommandExt;
    let mut command = binary(&["serve", "--listen", "127.0.0.1:0"], &[]);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    // What Docker's default seccomp profile does to io_uring: io_uring_setup fails
    // with EPERM (and everything else is allowed here).
    let install_filter = || {
        // SAFETY: between fork and exec, only building a filter on the stack and two
        // prctl calls, which are async-signal-safe.
        unsafe {
            let stmt = |code: u32, k: u32| libc::BPF_STMT(code as u16, k);
            let filter = [
                // seccomp_data.nr is the first word.
                stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
                libc::BPF_JUMP(
                    (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                    libc::SYS_io_uring_setup as u32,
                    0,
                    1,
                ),
                stmt(
                    libc::BPF_RET | libc::BPF_K,
                    libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                ),
                stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
            ];
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure does only what is allowed between fork and exec (above).
    unsafe { command.pre_exec(install_filter) };
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("cannot set up io_uring"), "{stderr}");
    assert!(last.contains("os error 1"), "the errno is named: {stderr}");
    assert!(
        last.contains("seccomp=deploy/seccomp.json") && last.contains("io_uring_disabled"),
        "{stderr}"
    );
}

/// The JSON log lines of a server run at `level` during which one turntable client on
/// shard 0 sends a forged token five times, then closes.
fn json_logs_around_refused_tokens(level: &str) -> (Vec<serde_json::Value>, String, String) {
    use serde_json::json;
    let (child, line) = spawn_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--auth-secret",
        SECRET,
        "--log-format",
        "json",
        "--log-level",
        level,
    ]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port_of(&line)));
    let forged = turntable::auth::Auth::new(
        &turntable::auth::Secret::new("another-secret-that-is-long-enough-too!!".into()).unwrap(),
    )
    .issue(
        "1:1",
        None,
        turntable::auth::now_secs() + 60,
        serde_json::Map::new(),
    );
    let mut client = common::Client::connect_on_shard(addr, "/turntable", 0);
    client.recv();
    for _ in 0..5 {
        client.send(json!({"command":"idme","data":{"token": forged}}));
        assert_eq!(client.recv()["data"]["code"], "auth.invalid_token");
    }
    let bye = tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "bye".into(),
    };
    client.ws.close(Some(bye)).unwrap();
    while client.ws.read().is_ok() {}
    // SAFETY: kill sends a signal to the child we started; no memory is involved.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    (lines, stderr, forged)
}

fn with_message<'a>(lines: &'a [serde_json::Value], message: &str) -> Vec<&'a serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

#[test]
fn refused_tokens_are_logged_once_per_interval_without_the_token() {
    let (lines, stderr, forged) = json_logs_around_refused_tokens("info");
    let refused = with_message(&lines, "a client's token was refused");
    assert_eq!(
        refused.len(),
        1,
        "five refusals within 10 s, one line: {stderr}"
    );
    assert_eq!(refused[0]["level"], "INFO");
    assert_eq!(refused[0]["fields"]["reason"], "auth.invalid_token");
    let signature = forged.rsplit('.').next().unwrap();
    assert!(
        !stderr.contains(signature),
        "the token in the logs: {stderr}"
    );
    assert!(
        with_message(&lines, "connection opened").is_empty(),
        "connection events are debug-level: {stderr}"
    );
}

#[test]
fn connection_events_are_logged_at_debug_level() {
    let (lines, stderr, _) = json_logs_around_refused_tokens("debug");
    let opened = with_message(&lines, "connection opened");
    let opened = opened
        .iter()
        .find(|l| l["fields"]["dialect"] == "turntable" && l["fields"]["shard"] == 0)
        .unwrap_or_else(|| panic!("no turntable connection opened: {stderr}"));
    assert_eq!(opened["level"], "DEBUG");
    let peer = opened["fields"]["peer"].as_str().unwrap();
    assert!(peer.starts_with("127.0.0.1:"), "{opened}");
    let conn = &opened["fields"]["conn"];
    let of_conn = |message| {
        with_message(&lines, message)
            .into_iter()
            .find(|l| {
                &l["fields"]["conn"] == conn && l["fields"]["shard"] == opened["fields"]["shard"]
            })
            .unwrap_or_else(|| panic!("no {message:?} for conn {conn}: {stderr}"))
            .clone()
    };
    let client_close = of_conn("the client closes the connection");
    assert_eq!(
        (
            &client_close["fields"]["code"],
            &client_close["fields"]["reason"]
        ),
        (&serde_json::json!(1000), &serde_json::json!("bye"))
    );
    assert_eq!(
        of_conn("connection closed")["fields"]["dialect"],
        "turntable"
    );
}
