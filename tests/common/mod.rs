//! Shared pieces of the integration tests: an in-process server on an ephemeral
//! loopback port (2 shards, unpinned) and a real WebSocket client (tungstenite's own
//! client, independent of turntable's framing code).

#![allow(dead_code)] // each test file uses a different subset

pub mod backend;
pub mod balancer;
pub mod cluster;
pub mod node;
pub mod python;
pub mod redis;
pub mod socketcluster;
pub mod sockjs_http;
pub mod world_ot;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use turntable::config::Config;
use turntable::runtime::{Server, start};

/// How long a test waits for a message it expects.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server with 2 shards on an ephemeral port.
pub fn server() -> Server {
    server_with(|_| {})
}

/// A 2-shard server with some settings changed.
pub fn server_with(change: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::ephemeral(2);
    change(&mut config);
    start(config).expect("server starts")
}

/// A WebSocket client connection.
pub struct Client {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    /// The shard the server put this connection on (from `X-Turntable-Shard`).
    pub shard: usize,
}

impl Client {
    pub fn connect(addr: SocketAddr, path: &str) -> Client {
        let (ws, response) =
            tungstenite::connect(format!("ws://{addr}{path}")).expect("WebSocket handshake");
        let shard = response
            .headers()
            .get("x-turntable-shard")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("X-Turntable-Shard header");
        let client = Client { ws, shard };
        client.set_timeout(Some(PATIENCE));
        client
    }

    /// Connects until the server places the connection on `shard`.
    pub fn connect_on_shard(addr: SocketAddr, path: &str, shard: usize) -> Client {
        for _ in 0..200 {
            let client = Client::connect(addr, path);
            if client.shard == shard {
                return client;
            }
        }
        panic!("never landed on shard {shard}");
    }

    fn set_timeout(&self, timeout: Option<Duration>) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
            s.set_read_timeout(timeout).unwrap();
        }
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).expect("send");
    }

    pub fn send(&mut self, value: Value) {
        self.send_text(&value.to_string());
    }

    /// The next message, whatever it is.
    pub fn next(&mut self) -> Message {
        loop {
            match self.ws.read() {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(msg) => return msg,
                Err(e) => panic!("expected a message, got {e}"),
            }
        }
    }

    /// The next text message, parsed as JSON.
    pub fn recv(&mut self) -> Value {
        match self.next() {
            Message::Text(text) => serde_json::from_str(&text).expect("JSON text"),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next message or error if one arrives within `wait`; `None` if nothing does.
    fn read_within(&mut self, wait: Duration) -> Option<tungstenite::Result<Message>> {
        self.set_timeout(Some(wait.max(Duration::from_millis(1))));
        let result = self.ws.read();
        self.set_timeout(Some(PATIENCE));
        match result {
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            other => Some(other),
        }
    }

    /// Asserts that nothing arrives for a while but keepalives (SocketCluster's `#1`
    /// comes at each connection's own phase of its interval, so at any moment).
    pub fn expect_silence(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.read_within(left) {
                None => return,
                Some(Ok(Message::Text(t))) if t.as_str() == "#1" => {}
                Some(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Keeps reading for `wait`, as a live client does: pings are answered (tungstenite
    /// queues the pong and sends it on the next read); anything else fails the test.
    pub fn expect_only_pings(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut pings = 0;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.read_within(left) {
                None => {}
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(other) => panic!("expected only pings, got {other:?}"),
            }
        }
        assert!(pings > 0, "no ping arrived in {wait:?}");
    }

    /// Reads until the server closes; returns the close code and reason.
    pub fn expect_close(&mut self) -> (u16, String) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Close(Some(frame))) => {
                    return (frame.code.into(), frame.reason.to_string());
                }
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => continue,
                Err(e) => panic!("connection ended without a close frame: {e}"),
            }
        }
        panic!("no close frame");
    }

    /// Closes with a normal close frame.
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
        while self.ws.read().is_ok() {}
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_abruptly(self) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Sends a raw HTTP request and returns the whole response as text.
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// `GET path` with `Connection: close`; returns the status code and body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    );
    let status = response[9..12].parse().expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs `scripts/NAME` (an idempotent set-up script) from the repository's root; its
/// stdout, or why it failed with everything it printed.
pub fn setup_script(name: &str) -> Result<String, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("bash")
        .arg(std::path::Path::new(root).join("scripts").join(name))
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run scripts/{name}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "scripts/{name} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The value of the Prometheus series `series` (name and labels, as `/metrics` prints
/// them) on the server at `addr`.
pub fn metric(addr: SocketAddr, series: &str) -> u64 {
    let (_, scrape) = get(addr, "/metrics");
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {scrape}"))
}

/// The `turntable` binary with `args` and `env`, and no other `TURNTABLE_*` variable (nor
/// `RUST_LOG`) from the tests' environment.
pub fn binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_turntable"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TURNTABLE_") {
            command.env_remove(name);
        }
    }
    command
        .env_remove("RUST_LOG")
        .args(args)
        .envs(env.iter().copied());
    command
}

/// Starts the `turntable` binary with `args` (and no settings from the environment) and
/// returns it with the first line it printed to stdout. Its stderr is piped.
pub fn spawn_binary(args: &[&str]) -> (std::process::Child, String) {
    let mut child = binary(args, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    (child, line)
}

/// Runs the `turntable` binary to completion (with no settings from the environment);
/// returns its exit code, stdout and stderr.
pub fn run_binary(args: &[&str]) -> (i32, String, String) {
    run_binary_with_env(args, &[])
}

/// Runs the `turntable` binary to completion with `env` as its only `TURNTABLE_*`
/// variables; returns its exit code, stdout and stderr.
pub fn run_binary_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = binary(args, env).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until `f` holds (figures the server publishes on its tick lag a little).
pub fn eventually(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "never became true");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The framings of one body that two parsers could read two ways (RFC 9112 §6.3): two
/// `Content-Length`s in both orders (the second request hides after the shorter one),
/// the same one repeated, and a `Content-Length` beside a `Transfer-Encoding`, both
/// orders. Each is `(headers, body)` for a request whose first reading is `body`.
pub fn ambiguous_framings(body: &str, smuggled: &str) -> Vec<(String, String)> {
    let (short, long) = (body.len(), body.len() + smuggled.len());
    let both = format!("{body}{smuggled}");
    vec![
        (
            format!("Content-Length: {short}\r\nContent-Length: {long}\r\n"),
            both.clone(),
        ),
        (
            format!("Content-Length: {long}\r\nContent-Length: {short}\r\n"),
            both.clone(),
        ),
        (
            format!("Content-Length: {short}\r\nContent-Length: {short}\r\n"),
            both.clone(),
        ),
        (
            format!("Content-Length: {short}\r\nTransfer-Encoding: chunked\r\n"),
            both.clone(),
        ),
        (
            format!("Transfer-Encoding: chunked\r\nContent-Length: {short}\r\n"),
            both,
        ),
    ]
}

/// The promtool to check with: $PROMTOOL (scripts/test.sh sets it), else the one
/// scripts/setup-promtool.sh unpacks, else one on PATH.
fn promtool() -> Option<std::path::PathBuf> {
    use std::process::Command;
    let unpacked = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.cache/promtool/usr/bin/promtool"
    );
    std::env::var_os("PROMTOOL")
        .map(Into::into)
        .into_iter()
        .chain([unpacked.into(), "promtool".into()])
        .find(|path: &std::path::PathBuf| {
            Command::new(path)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Runs `promtool check metrics` on a scrape (said loudly and skipped when there is no
/// promtool: scripts/test.sh always provides one).
pub fn check_with_promtool(scrape: &str) {
    use std::process::{Command, Stdio};
    let Some(promtool) = promtool() else {
        eprintln!("SKIPPED: promtool check metrics (no promtool: run scripts/setup-promtool.sh)");
        return;
    };
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), scrape.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The user ids of a Talker `users` event (asserting that it is one).
pub fn user_ids(users: &Value) -> std::collections::BTreeSet<String> {
    assert_eq!(users["type"], "users", "{users}");
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}
