//! Numbers over the wire: in data the server does not read, integers of any size it
//! parses (what JavaScript's `JSON.stringify(2**64)` writes, a 30-digit id) pass through
//! digit for digit; numbers the server must read (a World revision, an OT retain) are
//! refused when out of range, with the request's own id.

mod common;

use std::net::SocketAddr;

use common::socketcluster::{handshaken_on, subscribe};
use common::{Client, server};
use serde_json::json;
use tungstenite::Message;

const TWO_TO_64: &str = "18446744073709552000";
const THIRTY_DIGITS: &str = "123456789012345678901234567890";

fn text(c: &mut Client) -> String {
    loop {
        match c.next() {
            Message::Text(t) if t.as_str() == "#1" => continue,
            Message::Text(t) => return t.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn player(addr: SocketAddr, shard: usize, user: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/turntable", shard);
    c.recv();
    c.send(json!({"command":"idme","data":user}));
    c.recv();
    c.send(json!({"command":"joingame","data":{"channel":"big","self":user}}));
    assert_eq!(c.recv()["command"], "joined");
    c
}

#[test]
fn large_integers_in_opaque_data_pass_through_unchanged() {
    let server = server();
    let addr = server.local_addr();
    let mut a = player(addr, 0, "a");
    let mut b = player(addr, 1, "b");
    a.recv();
    a.send_text(&format!(
        r#"{{"command":"game","data":{{"channel":"big","actions":[{{"from":"a","data":{{"n":{TWO_TO_64},"id":{THIRTY_DIGITS},"neg":-{THIRTY_DIGITS}}}}}]}}}}"#
    ));
    let delivered = text(&mut b);
    for digits in [TWO_TO_64, THIRTY_DIGITS] {
        assert!(delivered.contains(digits), "{digits} in {delivered}");
    }
    assert!(
        delivered.contains(&format!("-{THIRTY_DIGITS}")),
        "{delivered}"
    );

    let (mut publisher, _) = handshaken_on(addr, 0, json!({}));
    let (mut reader, _) = handshaken_on(addr, 1, json!({}));
    subscribe(&mut reader, "ticks", 2);
    publisher.send_text(&format!(
        r##"{{"event":"#publish","data":{{"channel":"ticks","data":[{TWO_TO_64},{THIRTY_DIGITS}]}}}}"##
    ));
    let delivered = text(&mut reader);
    assert!(
        delivered.contains(&format!("[{TWO_TO_64},{THIRTY_DIGITS}]")),
        "{delivered}"
    );
}

#[test]
fn out_of_range_numbers_the_server_reads_are_refused_with_the_request_id() {
    let server = server();
    let mut ann = Client::connect_on_shard(server.local_addr(), "/ws/world/default", 0);
    ann.send(json!(["authenticate", {"user": {"id": "ann"}}]));
    assert_eq!(ann.recv()[0], "authenticated");
    ann.send(json!(["ot.open", 1, {"document": "notes"}]));
    assert_eq!(ann.recv()[0], "success");
    for (id, payload) in [
        (
            2,
            format!(r#"{{"document":"notes","variant":0,"ops":[{TWO_TO_64}]}}"#),
        ),
        (
            3,
            format!(r#"{{"document":"notes","variant":{TWO_TO_64},"ops":["x"]}}"#),
        ),
        (
            4,
            format!(r#"{{"document":"notes","variant":0,"ops":[-{THIRTY_DIGITS}]}}"#),
        ),
    ] {
        ann.send_text(&format!(r#"["ot", {id}, {payload}]"#));
        let refused = ann.recv();
        assert_eq!(refused[0], "error", "{payload}: {refused}");
        assert_eq!(refused[1], id, "{payload}: {refused}");
        assert_eq!(refused[2]["code"], "protocol.invalid_payload", "{refused}");
    }
}
