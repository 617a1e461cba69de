//! A load balancer for the cluster's SockJS tests, as README's "Load balancers" section
//! describes one: every HTTP request goes to the owner node of its SockJS session,
//! `crc32("<prefix>/<session>") % K` (the path without the server id and transport:
//! `/sockjs/turntable/000/abc/xhr` → `/sockjs/turntable/abc`), and a request that names
//! no session (`/info`, the iframe, a WebSocket upgrade on `/websocket`) goes to node 0.
//! One request per client connection (it asks the node for `Connection: close`; upgrades
//! pass through), relayed byte for byte both ways on threads of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The balancer's listening socket; it stops accepting when dropped.
pub struct Balancer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Balancer {
    /// A balancer on a free loopback port in front of `nodes` (node i is entry i).
    pub fn start(nodes: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the balancer");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let nodes = nodes.clone();
                std::thread::spawn(move || relay(client, &nodes));
            }
        });
        Balancer { addr, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// The SockJS session key of a request path, if it names a session.
pub fn session_key(path: &str) -> Option<String> {
    let path = path.split('?').next()?;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let [prefix @ .., _server, session, _transport] = segments.as_slice() else {
        return None;
    };
    (prefix.first() == Some(&"sockjs") && prefix.len() >= 2)
        .then(|| format!("/{}/{session}", prefix.join("/")))
}

/// The node a request for `path` goes to among `k`.
pub fn node_for(path: &str, k: usize) -> usize {
    session_key(path).map_or(0, |key| crc32fast::hash(key.as_bytes()) as usize % k)
}

/// Serves one client connection: reads its request head, sends it to the node, and
/// relays both ways until either side closes.
fn relay(mut client: TcpStream, nodes: &[SocketAddr]) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/");
    let Ok(mut node) = TcpStream::connect(nodes[node_for(path, nodes.len())]) else {
        return;
    };
    let _ = node.write_all(one_request(&head).as_bytes());
    let (Ok(mut client_in), Ok(mut node_in)) = (client.try_clone(), node.try_clone()) else {
        return;
    };
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut node);
        let _ = node.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut node_in, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = upstream.join();
}

/// The request head with `Connection: close`, unless it is a WebSocket upgrade.
fn one_request(head: &str) -> String {
    if head.to_ascii_lowercase().contains("\r\nupgrade:") {
        return head.to_owned();
    }
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}
