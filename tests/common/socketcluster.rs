//! SocketCluster protocol v1 client steps shared by the tests: reading past the
//! server's `#1` keepalives, the handshake, and an acknowledged subscribe.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tungstenite::Message;

use super::Client;

/// The next JSON message, skipping the server's `#1` keepalives.
pub fn recv(c: &mut Client) -> Value {
    loop {
        match c.next() {
            Message::Text(t) if t.as_str() == "#1" => continue,
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Connects on `shard` and shakes hands; returns the client and the handshake data.
pub fn handshaken_on(addr: SocketAddr, shard: usize, data: Value) -> (Client, Value) {
    let mut c = Client::connect_on_shard(addr, "/socketcluster/", shard);
    c.send(json!({"event":"#handshake","data":data,"cid":1}));
    let mut reply = recv(&mut c);
    if reply.get("event").is_some() {
        // A refused token: #removeAuthToken comes first.
        assert_eq!(reply, json!({"event":"#removeAuthToken","data":null}));
        reply = recv(&mut c);
    }
    assert_eq!(reply["rid"], 1, "{reply}");
    (c, reply["data"].clone())
}

pub fn subscribe(c: &mut Client, channel: &str, cid: u64) {
    c.send(json!({"event":"#subscribe","data":{"channel":channel},"cid":cid}));
    assert_eq!(recv(c), json!({"rid":cid}));
}
