//! Collaborative documents of the World dialect over real WebSocket connections on a
//! 2-shard server: `ot.open`, `ot` edits answered with the new revision (`variant`) and
//! broadcast transformed to the other clients, `ot.close`, the `ot.*` error codes, and
//! clients on both shards editing concurrently converging on the server's text.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Client;
use common::world_ot::{Editor, Random, edit_at_random, rpc};
use serde_json::{Value, json};

fn member(addr: SocketAddr, shard: usize, user: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/ws/world/default", shard);
    c.send(json!(["authenticate", {"user": {"id": user}}]));
    assert_eq!(c.recv()[0], "authenticated");
    c
}

fn edit(c: &mut Client, id: u64, variant: u64, ops: Value) -> Value {
    rpc(
        c,
        "ot",
        id,
        json!({"document": "notes", "variant": variant, "ops": ops}),
    )
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply[0], "error", "{reply}");
    reply[2]["code"].as_str().unwrap()
}

#[test]
fn edits_reach_the_other_clients_across_shards() {
    let server = common::server();
    let addr = server.local_addr();
    let mut ann = member(addr, 0, "ann");
    let mut bob = member(addr, 1, "bob");
    let opened = json!(["success", 1, {"document": "notes", "variant": 0, "text": ""}]);
    assert_eq!(
        rpc(&mut ann, "ot.open", 1, json!({"document": "notes"})),
        opened
    );
    assert_eq!(
        rpc(&mut bob, "ot.open", 1, json!({"document": "notes"})),
        opened
    );

    let ops = json!([{"insert": "hello world"}]);
    assert_eq!(
        edit(&mut ann, 2, 0, ops.clone()),
        json!(["success", 2, {"document": "notes", "variant": 1}])
    );
    assert_eq!(
        bob.recv(),
        json!(["ot", {"document": "notes", "variant": 1, "user": "ann", "ops": ops}])
    );
    // The seed's example, against the revision bob saw.
    let seed = json!([{"retain": 5}, {"insert": "foobar"}]);
    assert_eq!(edit(&mut bob, 2, 1, seed.clone())[2]["variant"], 2);
    assert_eq!(ann.recv()[1]["ops"], seed);

    let mut carol = member(addr, 1, "carol");
    let reopened = rpc(&mut carol, "ot.open", 7, json!({"document": "notes"}));
    assert_eq!(
        reopened,
        json!(["success", 7, {"document": "notes", "variant": 2, "text": "hellofoobar world"}])
    );

    assert_eq!(
        rpc(&mut bob, "ot.close", 3, json!({"document": "notes"})),
        json!(["success", 3, {"document": "notes"}])
    );
    edit(&mut ann, 3, 2, json!([{"delete": 5}]));
    assert_eq!(carol.recv()[1]["ops"], json!([{"delete": 5}]));
    bob.expect_silence(Duration::from_millis(200));
    ann.expect_silence(Duration::from_millis(50));
    assert_eq!(
        error_code(&edit(&mut bob, 4, 3, json!([{"insert": "x"}]))),
        "ot.not_open"
    );
    assert_eq!(
        rpc(&mut bob, "ot.close", 5, json!({"document": "notes"})),
        json!(["error", 5, {"code": "ot.not_open", "message": "open the document first"}]),
        "closing a document twice"
    );
}

#[test]
fn concurrent_edits_are_transformed_so_both_sides_agree() {
    let server = common::server();
    let addr = server.local_addr();
    let mut ann = member(addr, 0, "ann");
    let mut bob = member(addr, 1, "bob");
    rpc(&mut ann, "ot.open", 1, json!({"document": "notes"}));
    rpc(&mut bob, "ot.open", 1, json!({"document": "notes"}));
    edit(&mut ann, 2, 0, json!([{"insert": "abc"}]));
    bob.recv();

    // Both edit revision 1 at the same place; ann's reaches the server first.
    let first = edit(&mut ann, 3, 1, json!([{"retain": 1}, {"insert": "X"}]));
    assert_eq!(first[2]["variant"], 2);
    let before_ack = edit(&mut bob, 3, 1, json!([{"retain": 1}, {"insert": "Y"}]));
    assert_eq!(
        before_ack,
        json!(["ot", {"document": "notes", "variant": 2, "user": "ann",
                      "ops": [{"retain": 1}, {"insert": "X"}]}]),
        "bob gets ann's edit before his own acknowledgement"
    );
    assert_eq!(bob.recv()[2]["variant"], 3);
    assert_eq!(
        ann.recv()[1]["ops"],
        json!([{"retain": 2}, {"insert": "Y"}]),
        "bob's edit, transformed to follow ann's"
    );
    let mut carol = member(addr, 0, "carol");
    assert_eq!(
        rpc(&mut carol, "ot.open", 1, json!({"document": "notes"}))[2]["text"],
        "aXYbc"
    );
}

#[test]
fn clients_on_both_shards_editing_at_once_converge() {
    let server = common::server();
    let addr = server.local_addr();
    let mut editors: Vec<Editor> = (0..4)
        .map(|i| Editor::open(member(addr, i % 2, &format!("user{i}")), "notes"))
        .collect();
    edit_at_random(&mut editors, Random(0x9e37_79b9_7f4a_7c15), 40);
    let mut observer = member(addr, 0, "observer");
    let final_state = rpc(&mut observer, "ot.open", 1, json!({"document": "notes"}));
    let (text, revision) = (&final_state[2]["text"], &final_state[2]["variant"]);
    assert!(revision.as_u64().unwrap() > 40, "{final_state}");
    for editor in editors.iter_mut() {
        while editor.replica.revision() < revision.as_u64().unwrap() {
            editor.receive();
        }
        assert_eq!(
            editor.replica.text(),
            text.as_str().unwrap(),
            "a client diverged"
        );
        editor.conn.expect_silence(Duration::from_millis(20));
    }
}

#[test]
fn bad_edits_get_ot_codes_and_change_nothing() {
    let server = common::server_with(|c| c.max_document_len = 20);
    let addr = server.local_addr();
    let mut ann = member(addr, 0, "ann");
    assert_eq!(
        error_code(&edit(&mut ann, 1, 0, json!([{"insert": "x"}]))),
        "ot.not_open"
    );
    rpc(&mut ann, "ot.open", 2, json!({"document": "notes"}));
    edit(&mut ann, 3, 0, json!([{"insert": "a🎲b"}]));
    let cases = [
        (json!([{"insert": "x"}]), 5, "ot.revision_in_future"),
        (
            json!([{"retain": 9}, {"insert": "x"}]),
            1,
            "ot.out_of_range",
        ),
        (
            json!([{"retain": 2}, {"insert": "x"}]),
            1,
            "ot.splits_character",
        ),
        (json!([{"insert": "x".repeat(30)}]), 1, "ot.too_large"),
    ];
    for (ops, variant, code) in cases {
        let reply = edit(&mut ann, 4, variant, ops.clone());
        assert_eq!(error_code(&reply), code, "{ops} -> {reply}");
    }
    for payload in [
        json!({"document": "notes", "ops": []}),
        json!({"document": "notes", "variant": 1}),
        json!({"document": "notes", "variant": 1, "ops": [{"insert": "x", "attributes": {"bold": true}}]}),
        json!({"document": 7, "variant": 1, "ops": []}),
    ] {
        let reply = rpc(&mut ann, "ot", 5, payload.clone());
        assert_eq!(error_code(&reply), "protocol.invalid_payload", "{payload}");
    }
    let reserved = rpc(&mut ann, "channel.join", 6, json!({"channel": "ot:notes"}));
    assert_eq!(error_code(&reserved), "protocol.invalid_payload");
    let reopened = rpc(&mut ann, "ot.open", 7, json!({"document": "notes"}));
    assert_eq!(
        reopened[2],
        json!({"document": "notes", "variant": 1, "text": "a🎲b"})
    );
}

#[test]
fn an_edit_against_a_revision_older_than_the_history_is_refused() {
    let server = common::server();
    let mut ann = member(server.local_addr(), 1, "ann");
    rpc(&mut ann, "ot.open", 1, json!({"document": "notes"}));
    for variant in 0..300 {
        let reply = edit(&mut ann, 2, variant, json!([{"insert": "x"}]));
        assert_eq!(reply[2]["variant"], variant + 1);
    }
    let stale = edit(&mut ann, 3, 2, json!([{"insert": "y"}]));
    assert_eq!(error_code(&stale), "ot.revision_too_old");
}

#[test]
fn a_refused_open_leaves_nothing_half_open() {
    let server = common::server_with(|c| c.max_documents = 1);
    let addr = server.local_addr();
    let mut ann = member(addr, 0, "ann");
    // Two documents with the same owner shard, which has room for one.
    let owner = |name: &str| {
        let placement = turntable::engine::Placement::single_node(2);
        placement.owner(&format!("world:default:ot:{name}")).shard
    };
    let first = "d0";
    let second = (1..)
        .map(|i| format!("d{i}"))
        .find(|name| owner(name) == owner(first))
        .unwrap();
    assert_eq!(
        rpc(&mut ann, "ot.open", 1, json!({"document": first}))[0],
        "success"
    );
    assert_eq!(
        rpc(&mut ann, "ot.open", 2, json!({"document": second})),
        json!(["error", 2, {"code": "ot.too_many_documents", "message": "no room for another document on this server"}])
    );
    assert_eq!(
        error_code(&rpc(&mut ann, "ot.close", 3, json!({"document": second}))),
        "ot.not_open",
        "the refused open left no tie behind"
    );
    assert_eq!(
        rpc(&mut ann, "ot.close", 4, json!({"document": first}))[0],
        "success"
    );
}

#[test]
fn an_action_without_a_document_edits_the_worlds_default_one_as_the_seed_writes_it() {
    let server = common::server();
    let addr = server.local_addr();
    let (mut ann, mut bob) = (member(addr, 0, "ann"), member(addr, 1, "bob"));
    assert_eq!(
        rpc(&mut ann, "ot.open", 1, json!({})),
        json!(["success", 1, {"document": "default", "variant": 0, "text": ""}])
    );
    assert_eq!(
        rpc(
            &mut ann,
            "ot",
            2,
            json!({"variant": 0, "ops": [{"insert": "hello"}]})
        ),
        json!(["success", 2, {"document": "default", "variant": 1}])
    );
    // The seed's example, word for word but for the revision it was made against.
    ann.send(json!(["ot", 4953, {"variant": 1, "ops": [{"retain": 5}, {"insert": "foobar"}]}]));
    assert_eq!(
        ann.recv(),
        json!(["success", 4953, {"document": "default", "variant": 2}])
    );
    assert_eq!(
        rpc(&mut bob, "ot.open", 1, json!({"document": "default"}))[2]["text"],
        "hellofoobar"
    );
}

#[test]
fn other_dialects_cannot_join_subscribe_or_publish_to_a_documents_channel() {
    let server = common::server();
    let addr = server.local_addr();
    let mut ann = member(addr, 0, "ann");
    assert_eq!(
        rpc(&mut ann, "ot.open", 1, json!({"document": "notes"}))[0],
        "success"
    );
    let channel = "world:default:ot:notes";
    let refused = "a document's channel: open the document (World's ot.open) instead";

    let (mut sc, _) = common::socketcluster::handshaken_on(addr, 1, json!({}));
    sc.send(json!({"event":"#subscribe","data":{"channel":channel},"cid":2}));
    assert_eq!(
        common::socketcluster::recv(&mut sc),
        json!({"rid":2,"error":{"name":"BrokerError","message":refused}})
    );
    sc.send(json!({"event":"#publish","data":{"channel":channel,"data":{"forged":true}},"cid":3}));
    assert_eq!(
        common::socketcluster::recv(&mut sc),
        json!({"rid":3,"error":{"name":"BrokerError","message":refused}})
    );

    let mut v1 = Client::connect_on_shard(addr, "/turntable", 0);
    assert_eq!(v1.recv()["command"], "idyou");
    v1.send(json!({"command":"idme","data":"eve"}));
    assert_eq!(v1.recv()["command"], "identified");
    // A turntable room of that name is a turntable room (`turntable:world:...`), apart
    // from the document.
    v1.send(json!({"command":"joingame","data":{"channel":channel,"self":"eve"}}));
    assert_eq!(
        v1.recv(),
        json!({"command":"joined","data":{"channel":channel,"members":["eve"]}})
    );
    v1.send(json!({"command":"game","data":{"channel":channel,"actions":[{"from":"eve"}]}}));
    assert_eq!(v1.recv()["command"], "game");

    // The document's editor heard none of it, and its document still works.
    ann.expect_silence(Duration::from_millis(200));
    assert_eq!(
        edit(&mut ann, 2, 0, json!([{"insert": "ok"}])),
        json!(["success", 2, {"document": "notes", "variant": 1}])
    );
}

/// Two document names with the same owner shard (quotas are kept per shard).
fn two_on_one_shard() -> (String, String) {
    let owner = |name: &str| {
        let placement = turntable::engine::Placement::single_node(2);
        placement.owner(&format!("world:default:ot:{name}")).shard
    };
    let first = "q0".to_owned();
    let second = (1..)
        .map(|i| format!("q{i}"))
        .find(|name| owner(name) == owner(&first))
        .unwrap();
    (first, second)
}

/// Inserts `text` into the empty `document` (at variant 0).
fn insert_into_empty(c: &mut Client, id: u64, document: &str, text: &str) -> Value {
    let edit = json!({"document": document, "variant": 0, "ops": [{"insert": text}]});
    rpc(c, "ot", id, edit)
}

#[test]
fn a_user_creates_at_most_max_documents_per_user() {
    let server = common::server_with(|c| c.max_documents_per_user = 1);
    let addr = server.local_addr();
    let (mut ann, mut bob) = (member(addr, 0, "ann"), member(addr, 1, "bob"));
    let (first, second) = two_on_one_shard();
    let open = |c: &mut Client, id, name: &str| rpc(c, "ot.open", id, json!({"document": name}));
    assert_eq!(open(&mut ann, 1, &first)[0], "success");
    assert_eq!(
        open(&mut ann, 2, &second),
        json!(["error", 2, {"code": "ot.too_many_documents", "message": "no room for another document on this server"}])
    );
    // Opening a document someone else created costs nothing; bob has his own quota.
    assert_eq!(open(&mut bob, 3, &first)[0], "success");
    assert_eq!(open(&mut bob, 4, &second)[0], "success");
    assert_eq!(open(&mut ann, 5, &second)[0], "success");
}

#[test]
fn the_documents_a_user_created_hold_at_most_max_document_len_per_user() {
    let server = common::server_with(|c| c.max_document_len_per_user = 5);
    let addr = server.local_addr();
    let (mut ann, mut bob) = (member(addr, 0, "ann"), member(addr, 1, "bob"));
    let (first, second) = two_on_one_shard();
    for (id, name) in [(1, &first), (2, &second)] {
        assert_eq!(
            rpc(&mut ann, "ot.open", id, json!({"document": name}))[0],
            "success"
        );
    }
    assert_eq!(insert_into_empty(&mut ann, 3, &first, "abc")[0], "success");
    let over = insert_into_empty(&mut ann, 4, &second, "abc");
    assert_eq!(over[1], 4, "the refusal names the request: {over}");
    assert_eq!(error_code(&over), "ot.too_large");
    // The quota is the creator's, whoever edits.
    assert_eq!(
        rpc(&mut bob, "ot.open", 5, json!({"document": &second}))[0],
        "success"
    );
    assert_eq!(
        error_code(&insert_into_empty(&mut bob, 6, &second, "abc")),
        "ot.too_large"
    );
    assert_eq!(insert_into_empty(&mut bob, 7, &second, "ab")[0], "success");
}
