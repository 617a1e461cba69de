//! Real `redis-server` processes for the cluster-over-Redis tests: a [`RedisServer`] on
//! a free loopback port with no persistence, and a three-master [`RedisCluster`]. Both
//! are spoken to in RESP over a plain std `TcpStream` (no Redis client crate in the
//! tests), and stopped by PID when dropped. The binary is `$REDIS_SERVER` if set (as
//! `scripts/test.sh` does, from `scripts/setup-redis.sh`), else `redis-server` on PATH.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server (or cluster) gets to answer before the test fails.
const STARTUP: Duration = Duration::from_secs(15);

/// The `redis-server` binary: `$REDIS_SERVER`, else the one on PATH.
fn server_binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// The `redis-cli` binary: `$REDIS_CLI`, else the one beside `$REDIS_SERVER`, else the
/// one on PATH (Debian's redis-server package puts both in /usr/bin).
fn cli_binary() -> PathBuf {
    if let Some(cli) = std::env::var_os("REDIS_CLI") {
        return PathBuf::from(cli);
    }
    let beside = server_binary().with_file_name("redis-cli");
    if beside.is_absolute() && beside.exists() {
        beside
    } else {
        PathBuf::from("redis-cli")
    }
}

/// A loopback port nothing listens on now and that this process has not handed out
/// before (tests run in parallel threads). With `bus`, port + 10000 (where a cluster
/// node listens for its peers) is free too.
fn free_port(bus: bool) -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap();
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port")
            .port();
        if given.contains(&port) {
            continue;
        }
        if bus && (port > 55535 || TcpListener::bind(("127.0.0.1", port + 10000)).is_err()) {
            continue;
        }
        given.insert(port);
        return port;
    }
}

/// Encodes `args` as one RESP command (an array of bulk strings).
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one whole RESP reply and appends it, raw, to `out`.
fn read_reply(reader: &mut impl BufRead, out: &mut String) -> std::io::Result<()> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    out.push_str(&line);
    let head = line.trim_end();
    let count = |s: &str| -> std::io::Result<i64> {
        s.parse()
            .map_err(|_| std::io::Error::other(format!("bad RESP length in {head:?}")))
    };
    match head.as_bytes().first() {
        Some(b'$') => {
            let len = count(&head[1..])?;
            if len >= 0 {
                let mut body = vec![0; len as usize + 2];
                reader.read_exact(&mut body)?;
                out.push_str(&String::from_utf8_lossy(&body));
            }
        }
        Some(b'*') => {
            for _ in 0..count(&head[1..])?.max(0) {
                read_reply(reader, out)?;
            }
        }
        _ => {} // +simple, -error, :integer are one line
    }
    Ok(())
}

/// Sends one command to 127.0.0.1:`port` on a fresh connection; returns the raw reply.
fn send(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(&encode(args))?;
    let mut reply = String::new();
    read_reply(&mut BufReader::new(stream), &mut reply)?;
    Ok(reply)
}

/// Removes a directory when dropped, so a panicking test leaves no temp dir behind.
struct TempDir(PathBuf);

impl TempDir {
    fn new(port: u16) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "turntable-redis-{}-{}-{port}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the redis temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One real `redis-server` on 127.0.0.1, with no persistence and its own temp dir, for
/// tests that need Redis to fail and come back (`kill`, `restart`). Killed on drop.
pub struct RedisServer {
    port: u16,
    /// Arguments beyond the common ones (a cluster node's), kept for `restart`.
    extra: Vec<String>,
    child: Option<Child>,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a standalone server on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false, |_, _| Vec::new())
    }

    /// Starts a server on a free port (one with a free cluster bus port if `bus`), with
    /// the extra arguments `extra(dir, port)` gives; retries on another port if the
    /// chosen one was taken meanwhile.
    fn start_with(bus: bool, extra: impl Fn(&Path, u16) -> Vec<String>) -> RedisServer {
        let mut attempts = 0;
        loop {
            let port = free_port(bus);
            let dir = TempDir::new(port);
            let extra = extra(&dir.0, port);
            let mut server = RedisServer {
                port,
                extra,
                child: None,
                dir,
            };
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(e) if attempts < 3 && e.contains("Address already in use") => {
                    attempts += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Spawns the process on `self.port` and waits for PONG; on failure, the reason
    /// with the server's log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = self.dir.0.join("redis.log");
        let port = self.port.to_string();
        let mut command = Command::new(server_binary());
        command
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.0)
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {:?} ({e}): run scripts/setup-redis.sh, or set REDIS_SERVER",
                server_binary()
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        loop {
            if send(self.port, &["PING"]).is_ok_and(|reply| reply == "+PONG\r\n") {
                return Ok(());
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                self.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "redis-server on port {} did not answer PING ({}); its log:\n{log}",
                    self.port,
                    match exited {
                        Some(status) => format!("it exited: {status}"),
                        None => format!("not within {STARTUP:?}"),
                    }
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on (the same across `restart`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address to hand turntable: `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The PID of the running process, if it is running (to check it is gone, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the process by PID and waits for it: Redis vanishing, for the tests of
    /// what turntable does then. A no-op if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (killing it first if it still runs) and
    /// waits until it answers PING: Redis coming back, empty.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn_and_wait() {
            panic!("{e}");
        }
    }

    /// Sends one command (`["PUBLISH", channel, message]`, `["PUBSUB", "CHANNELS"]`) on
    /// a fresh connection and returns the raw RESP reply, `\r\n`s included.
    pub fn command(&self, args: &[&str]) -> String {
        send(self.port, args)
            .unwrap_or_else(|e| panic!("redis {args:?} on port {}: {e}", self.port))
    }
}

/// A connection SUBSCRIBEd to one channel, read message by message.
pub struct Subscriber {
    reader: BufReader<TcpStream>,
}

impl RedisServer {
    /// SUBSCRIBEs to `channel` on a connection of its own.
    pub fn subscribe(&self, channel: &str) -> Subscriber {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(STARTUP)).unwrap();
        stream.write_all(&encode(&["SUBSCRIBE", channel])).unwrap();
        let mut subscriber = Subscriber {
            reader: BufReader::new(stream),
        };
        let mut confirmation = String::new();
        read_reply(&mut subscriber.reader, &mut confirmation).expect("subscribed");
        subscriber
    }
}

impl Subscriber {
    /// The payload of the next message (one without `\r\n` in it, as JSON is).
    pub fn next_payload(&mut self) -> String {
        let mut raw = String::new();
        read_reply(&mut self.reader, &mut raw).expect("a message");
        // *3 $7 message $N channel $M payload
        raw.split("\r\n").nth(6).unwrap_or_default().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three `redis-server` masters in cluster mode with all 16384 slots assigned, for the
/// tests of turntable over Redis Cluster (`redis+cluster://` URLs). Killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them with `redis-cli --cluster
    /// create`, and waits until every node reports `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(true, |dir, port| {
                    let conf = dir.join(format!("nodes-{port}.conf"));
                    vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        conf.to_string_lossy().into_owned(),
                    ]
                })
            })
            .collect();
        let cluster = RedisCluster { nodes };
        let out = Command::new(cli_binary())
            .args(["--cluster", "create"])
            .args(cluster.addresses())
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cli_binary()));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + STARTUP;
        for node in &cluster.nodes {
            loop {
                let info = node.command(&["CLUSTER", "INFO"]);
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} never reached cluster_state:ok:\n{info}",
                    node.port()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    /// `127.0.0.1:PORT` of each node, in order.
    fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect()
    }

    /// The nodes, to send one a command.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, to kill or restart one (it rejoins from its nodes-PORT.conf).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// The address to hand turntable:
    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        format!("redis+cluster://{}", self.addresses().join(","))
    }
}

/// The channels a raw `PUBSUB CHANNELS` / `PUBSUB SHARDCHANNELS` reply lists.
pub fn listed_channels(reply: &str) -> Vec<String> {
    let lines: Vec<&str> = reply.split("\r\n").collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with('$'))
        .map(|w| w[1].to_owned())
        .collect()
}
