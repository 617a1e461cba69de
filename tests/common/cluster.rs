//! A real cluster for the tests: one redis-server ([`RedisServer`]) and K `turntable`
//! processes of two shards each on free loopback ports, joined over it. Nodes are
//! killed (SIGKILL) and restarted by PID; everything stops when the value drops.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::redis::RedisServer;
use super::{binary, get};

/// The heartbeat silence after which the tests' nodes count a node as gone: short, so
/// fault tests stay quick, and still ten heartbeats long.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(2);

/// A running cluster of K nodes over one Redis.
pub struct TestCluster {
    pub redis: RedisServer,
    ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
    extra: Vec<String>,
}

impl TestCluster {
    /// K nodes of two shards each, every one listening (and so every one past its
    /// start-up wait for the others).
    pub fn start(k: usize) -> TestCluster {
        TestCluster::start_with(k, &[])
    }

    /// As [`TestCluster::start`], with more flags for every node.
    pub fn start_with(k: usize, extra: &[&str]) -> TestCluster {
        let redis = RedisServer::start();
        let ports = (0..k).map(|_| free_port()).collect();
        let mut cluster = TestCluster {
            redis,
            ports,
            nodes: (0..k).map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for node in 0..k {
            // A log left by an earlier run on the same port is not this node's.
            let _ = std::fs::remove_file(cluster.log(node));
            cluster.spawn(node);
        }
        for node in 0..k {
            cluster.wait_alive(node, k);
        }
        cluster
    }

    /// The `--nodes` list every node gets.
    pub fn node_list(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `node`'s flags.
    pub fn args(&self, node: usize) -> Vec<String> {
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", self.ports[node]),
            "--shards",
            "2",
            "--pin",
            "false",
            "--nodes",
            &self.node_list(),
            "--node-id",
            &node.to_string(),
            "--redis",
            &self.redis.url(),
            "--node-timeout",
            &format!("{}ms", NODE_TIMEOUT.as_millis()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Starts node `node`. A node killed a moment ago may still hold its port for a
    /// few milliseconds (the kernel closes an io_uring's sockets after the process is
    /// gone), so a start refused for that is tried again for a while.
    fn spawn(&mut self, node: usize) {
        let args = self.args(node);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log(node))
                .expect("a log file");
            let mut child = binary(&args, &[])
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .expect("start a node");
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            if line.starts_with("listening on") {
                self.nodes[node] = Some(child);
                return;
            }
            child.wait().expect("reap the node");
            let log = std::fs::read_to_string(self.log(node)).unwrap_or_default();
            assert!(
                log.contains("already in use") && std::time::Instant::now() < deadline,
                "node {node} did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where node `node` logs (its stderr), for a failing test's reader.
    pub fn log(&self, node: usize) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("turntable-node-{}.log", self.ports[node]))
    }

    /// Waits until `/cluster` on `node` shows `alive` nodes alive.
    pub fn wait_alive(&self, node: usize, alive: usize) {
        super::eventually(|| self.alive(node).iter().filter(|a| **a).count() == alive);
    }

    /// Which nodes `node`'s `/cluster` shows alive.
    pub fn alive(&self, node: usize) -> Vec<bool> {
        let (status, body) = get(self.addr(node), "/cluster");
        assert_eq!(status, 200, "{body}");
        let view: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        view["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["alive"] == true)
            .collect()
    }

    pub fn addr(&self, node: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[node]))
    }

    /// The PID of node `node`'s process, if it runs (to read its /proc status).
    pub fn pid(&self, node: usize) -> Option<u32> {
        self.nodes[node].as_ref().map(Child::id)
    }

    /// Kills node `node` with SIGKILL, by PID, and reaps it.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            child.kill().expect("SIGKILL the node");
            child.wait().expect("reap the node");
        }
    }

    /// Starts node `node` again, on its own port, with its own flags.
    pub fn restart(&mut self, node: usize) {
        self.kill(node);
        self.spawn(node);
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
    }
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A turntable v1 connection to `node` identified as `user`.
pub fn identified(cluster: &TestCluster, node: usize, user: &str) -> super::Client {
    let mut c = super::Client::connect(cluster.addr(node), "/turntable");
    assert_eq!(c.recv(), json!({"command":"idyou","data":{}}));
    c.send(json!({"command":"idme","data":user}));
    assert_eq!(c.recv(), json!({"command":"identified","data":{"id":user}}));
    c
}

/// The turntable v1 presence change of one user.
pub fn userchange(user: &str, status: &str) -> Value {
    json!({"command":"userchange","data":{user: status}})
}

/// An id `<prefix><n>` whose engine name (`scope(id)`) is owned by `node` for K = 3:
/// World channels are `world:<world>:<name>` to placement, documents
/// `world:<world>:ot:<name>`, turntable v1 rooms `turntable:<room>`.
pub fn owned_as(node: u32, prefix: &str, scope: impl Fn(&str) -> String) -> String {
    // Where the bare name would be owned elsewhere, so a wrong scope shows.
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|id| {
            crc32fast::hash(scope(id).as_bytes()) % 3 == node
                && crc32fast::hash(id.as_bytes()) % 3 != node
        })
        .unwrap()
}

/// An id whose owner node is `node` for K = 3 (`crc32(id) % 3`), so tests put objects
/// on the node they mean to.
pub fn owned_by(node: u32, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|id| crc32fast::hash(id.as_bytes()) % 3 == node)
        .unwrap()
}

/// `turntable` nodes over a Redis Cluster, killed (by PID) when dropped.
pub struct RedisClusterNodes {
    ports: Vec<u16>,
    children: Vec<std::process::Child>,
}

impl RedisClusterNodes {
    /// K nodes of two shards over the Redis Cluster at `url`, each logging to its own
    /// file; waits until every one sees all alive.
    pub fn start(k: usize, url: &str) -> RedisClusterNodes {
        let ports: Vec<u16> = (0..k).map(|_| free_port()).collect();
        let list = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = RedisClusterNodes {
            ports: ports.clone(),
            children: Vec::new(),
        };
        for (id, port) in ports.iter().enumerate() {
            let log = std::fs::File::create(nodes.log(id)).unwrap();
            let listen = format!("127.0.0.1:{port}");
            let id = id.to_string();
            let timeout = format!("{}ms", NODE_TIMEOUT.as_millis());
            let mut child = super::binary(
                &[
                    "serve",
                    "--listen",
                    &listen,
                    "--shards",
                    "2",
                    "--pin",
                    "false",
                    "--nodes",
                    &list,
                    "--node-id",
                    &id,
                    "--redis",
                    url,
                    "--node-timeout",
                    &timeout,
                ],
                &[],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert!(line.starts_with("listening on"), "{line}");
            nodes.children.push(child);
        }
        for node in 0..k {
            nodes.wait_all_alive(node);
        }
        nodes
    }

    pub fn addr(&self, node: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.ports[node]))
    }

    pub fn log(&self, node: usize) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("turntable-rc-node-{}.log", self.ports[node]))
    }

    pub fn alive(&self, node: usize) -> usize {
        let (_, body) = get(self.addr(node), "/cluster");
        body.matches(r#""alive":true"#).count()
    }

    pub fn wait_all_alive(&self, node: usize) {
        super::eventually(|| self.alive(node) == self.ports.len());
    }
}

impl Drop for RedisClusterNodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
