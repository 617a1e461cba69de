//! The turntable v1 dialect end to end: a 2-shard server on an ephemeral port and real
//! WebSocket clients, asserting on what clients see on the wire.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Client, eventually, server, server_with};
use serde_json::{Value, json};
use tungstenite::Message;

/// A connection that has read the greeting and identified as `user`.
fn identified(addr: SocketAddr, user: &str) -> Client {
    let mut c = Client::connect(addr, "/turntable");
    identify(&mut c, user);
    c
}

fn identified_on(addr: SocketAddr, shard: usize, user: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/turntable", shard);
    identify(&mut c, user);
    c
}

fn identify(c: &mut Client, user: &str) {
    assert_eq!(c.recv(), json!({"command":"idyou","data":{}}));
    c.send(json!({"command":"idme","data":user}));
    assert_eq!(c.recv(), json!({"command":"identified","data":{"id":user}}));
}

fn userchange(pairs: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(u, s)| (u.to_string(), json!(s)))
        .collect();
    json!({"command":"userchange","data":data})
}

fn error_code(c: &mut Client) -> String {
    let msg = c.recv();
    assert_eq!(msg["command"], "error", "{msg}");
    assert!(msg["data"]["message"].is_string(), "{msg}");
    msg["data"]["code"].as_str().unwrap().to_owned()
}

#[test]
fn greets_and_identifies() {
    let server = server();
    let mut c = Client::connect(server.local_addr(), "/turntable");
    assert_eq!(c.recv(), json!({"command":"idyou","data":{}}));
    c.send(json!({"command":"idme","data":"1:12345"}));
    assert_eq!(
        c.recv(),
        json!({"command":"identified","data":{"id":"1:12345"}})
    );
}

#[test]
fn presence_reaches_watchers_on_the_other_shard() {
    let server = server();
    let addr = server.local_addr();
    let mut watcher = identified_on(addr, 0, "watcher");
    watcher.send(json!({"command":"subscribe","data":["1:2345","1:789"]}));
    assert_eq!(
        watcher.recv(),
        userchange(&[("1:2345", "offline"), ("1:789", "offline")])
    );

    let mut friend = identified_on(addr, 1, "1:2345");
    assert_eq!(watcher.recv(), userchange(&[("1:2345", "online")]));
    friend.send(json!({"command":"status","data":"busy"}));
    assert_eq!(friend.recv(), json!({"command":"status","data":"busy"}));
    assert_eq!(watcher.recv(), userchange(&[("1:2345", "busy")]));
    friend.send(json!({"command":"status","data":"online"}));
    assert_eq!(watcher.recv(), userchange(&[("1:2345", "online")]));
    friend.close();
    assert_eq!(watcher.recv(), userchange(&[("1:2345", "offline")]));

    watcher.send(json!({"command":"unsubscribe","data":["1:2345"]}));
    let _again = identified_on(addr, 1, "1:2345");
    watcher.expect_silence(Duration::from_millis(300));
}

#[test]
fn a_user_is_online_until_the_last_connection_closes() {
    let server = server();
    let addr = server.local_addr();
    let mut watcher = identified(addr, "w");
    watcher.send(json!({"command":"subscribe","data":["u"]}));
    assert_eq!(watcher.recv(), userchange(&[("u", "offline")]));
    let first = identified_on(addr, 0, "u");
    assert_eq!(watcher.recv(), userchange(&[("u", "online")]));
    let second = identified_on(addr, 1, "u");
    first.close();
    watcher.expect_silence(Duration::from_millis(300));
    second.drop_abruptly();
    assert_eq!(watcher.recv(), userchange(&[("u", "offline")]));
}

#[test]
fn presence_across_many_connections() {
    let server = server();
    let addr = server.local_addr();
    let users: Vec<String> = (0..40).map(|i| format!("1:{i}")).collect();
    let mut conns: Vec<Client> = users.iter().map(|u| identified(addr, u)).collect();
    let shards: std::collections::BTreeSet<usize> = conns.iter().map(|c| c.shard).collect();
    assert_eq!(shards.len(), 2, "connections landed on both shards");

    let mut watcher = identified(addr, "w");
    watcher.send(json!({"command":"subscribe","data":users}));
    let snapshot = watcher.recv();
    for u in &users {
        assert_eq!(snapshot["data"][u], "online", "{u}: {snapshot}");
    }
    for c in conns.drain(20..) {
        c.close();
    }
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 20 {
        let msg = watcher.recv();
        for (u, s) in msg["data"].as_object().unwrap() {
            seen.insert(u.clone(), s.clone());
        }
    }
    for u in &users[20..] {
        assert_eq!(seen[u], "offline");
    }
}

#[test]
fn presence_churn_ends_in_the_right_status() {
    let server = server();
    let addr = server.local_addr();
    let users: Vec<String> = (0..8).map(|i| format!("churn{i}")).collect();
    let mut watcher = identified(addr, "w");
    watcher.send(json!({"command":"subscribe","data":users}));
    watcher.recv();

    let threads: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let user = user.clone();
            std::thread::spawn(move || {
                let mut open = Vec::new();
                for round in 0..12 {
                    if round % 3 == 2 {
                        if let Some(c) = open.pop() {
                            let c: Client = c;
                            c.drop_abruptly();
                        }
                    } else {
                        open.push(identified(addr, &user));
                    }
                }
                // Even users end with no connection, odd ones keep theirs open.
                if i % 2 == 0 {
                    for c in open.drain(..) {
                        c.close();
                    }
                }
                open
            })
        })
        .collect();
    let kept: Vec<Vec<Client>> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    let mut checker = identified(addr, "checker");
    checker.send(json!({"command":"subscribe","data":users}));
    let snapshot = checker.recv();
    let mut last = std::collections::BTreeMap::new();
    loop {
        // The watcher's stream of changes must end in the same statuses.
        for (i, u) in users.iter().enumerate() {
            let expected = if i % 2 == 0 { "offline" } else { "online" };
            assert_eq!(snapshot["data"][u], expected, "{u}");
        }
        let done = users.iter().enumerate().all(|(i, u)| {
            last.get(u).map(String::as_str) == Some(if i % 2 == 0 { "offline" } else { "online" })
        });
        if done {
            break;
        }
        let msg = watcher.recv();
        for (u, s) in msg["data"].as_object().unwrap() {
            last.insert(u.clone(), s.as_str().unwrap().to_owned());
        }
    }
    watcher.expect_silence(Duration::from_millis(300));
    drop(kept);
}

#[test]
fn game_rooms_invite_order_and_stamp_actions() {
    let server = server();
    let addr = server.local_addr();
    let mut host = identified_on(addr, 0, "1:3456");
    let mut guest_a = identified_on(addr, 0, "1:2345");
    let mut guest_b = identified_on(addr, 1, "1:2345");
    let mut bystander = identified(addr, "1:999");

    host.send(json!({"command":"joingame","data":{"channel":"CStrike","self":"1:3456","invite":["1:2345"]}}));
    assert_eq!(
        host.recv(),
        json!({"command":"joined","data":{"channel":"CStrike","members":["1:3456"]}})
    );
    let invite = json!({"command":"invite","data":{"channel":"CStrike","from":"1:3456"}});
    assert_eq!(guest_a.recv(), invite);
    assert_eq!(guest_b.recv(), invite);

    guest_b.send(json!({"command":"joingame","data":{"channel":"CStrike","self":"1:2345"}}));
    assert_eq!(
        guest_b.recv(),
        json!({"command":"joined","data":{"channel":"CStrike","members":["1:3456","1:2345"]}})
    );
    assert_eq!(
        host.recv(),
        json!({"command":"memberjoined","data":{"channel":"CStrike","user":"1:2345"}})
    );

    // Two members publish concurrently; both see one and the same order.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for i in 0..20 {
        host.send(
            json!({"command":"game","data":{"channel":"CStrike","actions":[
            {"timestamp":10223232,"from":"1:3456","data":{"strike":i}}]}}),
        );
        guest_b.send(
            json!({"command":"game","data":{"channel":"CStrike","actions":[
            {"timestamp":5,"from":"1:2345","data":{"parry":i}}]}}),
        );
    }
    let host_log: Vec<Value> = (0..40).map(|_| host.recv()).collect();
    let guest_log: Vec<Value> = (0..40).map(|_| guest_b.recv()).collect();
    assert_eq!(host_log, guest_log);
    for (i, msg) in host_log.iter().enumerate() {
        assert_eq!(msg["command"], "game");
        assert_eq!(msg["data"]["channel"], "CStrike");
        assert_eq!(msg["data"]["seq"], i as u64 + 1);
        let action = &msg["data"]["actions"][0];
        assert_eq!(action["from"], msg["data"]["from"]);
        let stamped = action["timestamp"].as_u64().unwrap();
        assert!(stamped >= before, "server time {stamped} >= {before}");
        let client = action["client_timestamp"].as_u64().unwrap();
        assert!(client == 10223232 || client == 5);
    }
    guest_a.expect_silence(Duration::from_millis(200));
    bystander.expect_silence(Duration::from_millis(200));

    guest_b.send(json!({"command":"leavegame","data":{"channel":"CStrike"}}));
    assert_eq!(
        guest_b.recv(),
        json!({"command":"left","data":{"channel":"CStrike"}})
    );
    assert_eq!(
        host.recv(),
        json!({"command":"memberleft","data":{"channel":"CStrike","user":"1:2345"}})
    );
    guest_b
        .send(json!({"command":"game","data":{"channel":"CStrike","actions":[{"from":"1:2345"}]}}));
    assert_eq!(error_code(&mut guest_b), "game.not_member");
}

#[test]
fn bad_input_gets_dotted_errors_and_disturbs_nobody() {
    let server = server();
    let addr = server.local_addr();
    let mut other = identified(addr, "other");
    other.send(json!({"command":"subscribe","data":["1:1"]}));
    other.recv();

    let mut c = Client::connect(addr, "/turntable");
    c.recv();
    c.send(json!({"command":"subscribe","data":["x"]}));
    assert_eq!(error_code(&mut c), "auth.not_identified");
    c.send(json!({"command":"game","data":{}}));
    assert_eq!(error_code(&mut c), "auth.not_identified");
    c.send_text("{not json");
    assert_eq!(error_code(&mut c), "protocol.malformed_json");
    c.send_text("[]");
    assert_eq!(error_code(&mut c), "protocol.malformed_json");
    c.send(json!({"command":"dance","data":{}}));
    assert_eq!(error_code(&mut c), "protocol.unknown_command");
    c.send(json!({"command":"idme","data":{"id":1}}));
    assert_eq!(error_code(&mut c), "protocol.invalid_data");
    c.ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(error_code(&mut c), "protocol.binary_unsupported");
    identify_after_greeting(&mut c, "1:1");

    c.send(json!({"command":"idme","data":"someone-else"}));
    assert_eq!(error_code(&mut c), "auth.already_identified");
    c.send(json!({"command":"subscribe","data":"1:2"}));
    assert_eq!(error_code(&mut c), "protocol.invalid_data");
    c.send(json!({"command":"status","data":"sleeping"}));
    assert_eq!(error_code(&mut c), "protocol.invalid_data");
    c.send(json!({"command":"joingame","data":{"channel":"g","self":"1:2"}}));
    assert_eq!(error_code(&mut c), "game.spoofed_self");
    c.send(json!({"command":"joingame","data":{"channel":"g","self":"1:1"}}));
    assert_eq!(c.recv()["command"], "joined");
    c.send(json!({"command":"game","data":{"channel":"g","actions":[{"from":"1:2"}]}}));
    assert_eq!(error_code(&mut c), "game.spoofed_from");
    c.send(json!({"command":"game","data":{"channel":"elsewhere","actions":[{"from":"1:1"}]}}));
    assert_eq!(error_code(&mut c), "game.not_member");
    c.send(json!({"command":"leavegame","data":{"channel":"elsewhere"}}));
    assert_eq!(error_code(&mut c), "game.not_member");

    // Still usable after all that.
    c.send(json!({"command":"status","data":"busy"}));
    assert_eq!(c.recv(), json!({"command":"status","data":"busy"}));
    // The other client saw only the real presence changes.
    assert_eq!(other.recv(), userchange(&[("1:1", "online")]));
    assert_eq!(other.recv(), userchange(&[("1:1", "busy")]));
    other.expect_silence(Duration::from_millis(200));
}

fn identify_after_greeting(c: &mut Client, user: &str) {
    c.send(json!({"command":"idme","data":user}));
    assert_eq!(c.recv(), json!({"command":"identified","data":{"id":user}}));
}

#[test]
fn oversize_messages_close_with_1009_and_others_carry_on() {
    let server = server_with(|c| c.max_message_bytes = 1024);
    let addr = server.local_addr();
    let mut bystander = identified(addr, "b");
    let mut c = identified(addr, "big");
    c.send_text(&format!(
        "{{\"command\":\"status\",\"data\":\"{}\"}}",
        "x".repeat(2000)
    ));
    assert_eq!(c.expect_close().0, 1009);
    bystander.send(json!({"command":"status","data":"busy"}));
    assert_eq!(bystander.recv(), json!({"command":"status","data":"busy"}));
}

#[test]
fn websocket_pings_are_answered() {
    let server = server();
    let mut c = Client::connect(server.local_addr(), "/turntable");
    c.recv();
    c.ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match c.ws.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected pong, got {other:?}"),
    }
}

#[test]
fn silent_connections_are_pinged_then_closed() {
    let server = server_with(|c| c.idle_timeout = Duration::from_millis(600));
    let mut c = Client::connect(server.local_addr(), "/turntable");
    std::thread::sleep(Duration::from_millis(1000));
    // Not reading meant not answering the server's ping: the server gave up.
    let mut saw_ping = false;
    loop {
        match c.ws.read() {
            Ok(Message::Ping(_)) => saw_ping = true,
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1001);
                assert_eq!(frame.reason, "idle timeout");
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
    assert!(saw_ping);

    // A client that answers pings stays connected.
    let mut alive = Client::connect(server.local_addr(), "/turntable");
    alive.recv();
    alive.expect_only_pings(Duration::from_millis(1500));
    alive.send(json!({"command":"idme","data":"still-here"}));
    assert_eq!(alive.recv()["command"], "identified");
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    let server = server_with(|c| c.max_outbound_bytes = 64 << 10);
    let addr = server.local_addr();
    let mut slow = identified(addr, "slow");
    slow.send(json!({"command":"joingame","data":{"channel":"flood","self":"slow"}}));
    assert_eq!(slow.recv()["command"], "joined");
    let mut publisher = identified(addr, "pub");
    publisher.send(json!({"command":"joingame","data":{"channel":"flood","self":"pub"}}));
    assert_eq!(publisher.recv()["command"], "joined");
    assert_eq!(slow.recv()["command"], "memberjoined");

    let blob = "x".repeat(30_000);
    let connections_before = health(addr)["connections"].as_u64().unwrap();
    let mut sent = 0;
    let mut saw_left = false;
    while health(addr)["connections"].as_u64().unwrap() == connections_before {
        for _ in 0..50 {
            publisher.send(json!({"command":"game","data":{"channel":"flood","actions":[{"from":"pub","blob":blob}]}}));
            let reply = publisher.recv();
            if reply["command"] == "memberleft" {
                assert_eq!(reply["data"]["user"], "slow");
                saw_left = true;
                assert_eq!(publisher.recv()["command"], "game");
            } else {
                assert_eq!(reply["command"], "game");
            }
            sent += 1;
        }
        assert!(sent < 5000, "slow consumer never disconnected");
    }
    // The publisher is unaffected and learns that the slow member left.
    publisher.send(json!({"command":"status","data":"busy"}));
    let mut reply = publisher.recv();
    if !saw_left {
        assert_eq!(reply["command"], "memberleft");
        assert_eq!(reply["data"]["user"], "slow");
        reply = publisher.recv();
    }
    assert_eq!(reply["command"], "status");
    // The slow client finds part of its backlog, then the end: the close frame with
    // the reason if the server could still write it, or the end of the stream.
    let mut received = 0;
    loop {
        match slow.ws.read() {
            Ok(Message::Text(_)) => received += 1,
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason, "slow consumer: outbound queue full");
                break;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            // The backlog must end on a frame boundary, so any end is clean or a
            // dropped socket, never a broken frame.
            Err(tungstenite::Error::Protocol(e)) => panic!("corrupt stream: {e}"),
            Err(_) => break,
        }
    }
    assert!(received < sent, "{received} of {sent} delivered");
}

fn health(addr: SocketAddr) -> Value {
    let (status, body) = common::get(addr, "/healthz");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

#[test]
fn ids_with_control_characters_are_refused() {
    let server = server();
    let mut c = Client::connect(server.local_addr(), "/turntable");
    assert_eq!(c.recv(), json!({"command":"idyou","data":{}}));
    c.send(json!({"command":"idme","data":"a\nb"}));
    assert_eq!(error_code(&mut c), "protocol.invalid_data");
    c.send(json!({"command":"idme","data":"ab"}));
    assert_eq!(c.recv(), json!({"command":"identified","data":{"id":"ab"}}));
}

fn subscribe(c: &mut Client, users: &[&str]) -> Value {
    c.send(json!({"command":"subscribe","data":users}));
    c.recv()
}

fn refused_as_too_many(reply: &Value) -> bool {
    reply["command"] == "error" && reply["data"]["code"] == "subscribe.too_many"
}

#[test]
fn a_connection_watches_at_most_max_watches_per_conn() {
    let server = server_with(|c| c.max_watches_per_conn = 2);
    let addr = server.local_addr();
    let mut a = identified(addr, "1:1");
    let mut same_user = identified(addr, "1:1");
    assert_eq!(subscribe(&mut a, &["x", "y"])["command"], "userchange");
    let over = subscribe(&mut a, &["z"]);
    assert!(refused_as_too_many(&over), "{over}");
    // Watching one already watched takes nothing more.
    assert_eq!(subscribe(&mut a, &["y"])["command"], "userchange");
    // The same user's other connection has a limit of its own.
    assert_eq!(
        subscribe(&mut same_user, &["z", "w"])["command"],
        "userchange"
    );
    a.send(json!({"command":"unsubscribe","data":["x"]}));
    eventually(|| subscribe(&mut a, &["z"])["command"] == "userchange");
}

#[test]
fn one_users_connections_on_a_shard_watch_at_most_max_watches_per_user() {
    let server = server_with(|c| c.max_watches_per_user = 3);
    let addr = server.local_addr();
    let mut a = identified_on(addr, 0, "1:1");
    let mut b = identified_on(addr, 0, "1:1");
    let mut other = identified_on(addr, 0, "1:2");
    assert_eq!(subscribe(&mut a, &["x", "y"])["command"], "userchange");
    let over = subscribe(&mut b, &["z", "w"]);
    assert!(refused_as_too_many(&over), "{over}");
    assert_eq!(subscribe(&mut b, &["z"])["command"], "userchange");
    // Another user has a quota of their own.
    assert_eq!(
        subscribe(&mut other, &["x", "y", "z"])["command"],
        "userchange"
    );
    // An unsubscribe gives the quota back.
    a.send(json!({"command":"unsubscribe","data":["x"]}));
    eventually(|| subscribe(&mut b, &["w"])["command"] == "userchange");
}

#[test]
fn a_shards_connections_watch_at_most_max_watches_per_shard() {
    let server = server_with(|c| c.max_watches_per_shard = 4);
    let addr = server.local_addr();
    let mut a = identified_on(addr, 0, "1:1");
    let mut b = identified_on(addr, 0, "1:2");
    let mut elsewhere = identified_on(addr, 1, "1:3");
    assert_eq!(subscribe(&mut a, &["x", "y", "z"])["command"], "userchange");
    let over = subscribe(&mut b, &["x", "y"]);
    assert!(refused_as_too_many(&over), "{over}");
    assert_eq!(subscribe(&mut b, &["x"])["command"], "userchange");
    // The other shard keeps its own count.
    assert_eq!(
        subscribe(&mut elsewhere, &["x", "y", "z", "w"])["command"],
        "userchange"
    );
    // A closed connection's watches are given back.
    a.close();
    eventually(|| subscribe(&mut b, &["y"])["command"] == "userchange");
}

/// The sum over shards of the samples of `series` (`name{shard="N"...}`) in a scrape.
fn shard_sum(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{series}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A histogram's series for one shard: cumulative buckets that end in `+Inf` equal to
/// the count, each no smaller than the one before.
fn check_buckets(scrape: &str, histogram: &str, shard: usize) -> f64 {
    let prefix = format!("{histogram}_bucket{{");
    let buckets: Vec<f64> = scrape
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&format!("shard=\"{shard}\"")))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        buckets.len() > 10,
        "{histogram} has buckets for shard {shard}"
    );
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    let count = scrape
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{histogram}_count{{shard=\"{shard}\"}} ")))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(*buckets.last().unwrap(), count, "+Inf is the count");
    count
}

#[test]
fn metrics_time_each_handshake_and_each_publication_from_arrival_to_delivery() {
    let server = server();
    let addr = server.local_addr();
    let mut host = identified_on(addr, 0, "1:3456");
    let mut near = identified_on(addr, 0, "1:2345");
    let mut far = identified_on(addr, 1, "1:2346");
    for (c, user) in [
        (&mut host, "1:3456"),
        (&mut near, "1:2345"),
        (&mut far, "1:2346"),
    ] {
        c.send(json!({"command":"joingame","data":{"channel":"timed","self":user}}));
        assert_eq!(c.recv()["command"], "joined");
    }
    let before = common::get(addr, "/metrics").1;
    let published = 10;
    for i in 0..published {
        host.send(
            json!({"command":"game","data":{"channel":"timed","actions":[
            {"from":"1:3456","data":{"n":i}}]}}),
        );
    }
    for c in [&mut host, &mut near, &mut far] {
        let mut games = 0;
        while games < published {
            games += u64::from(c.recv()["command"] == "game");
        }
    }
    // Each shard with members times each publication once it has written its frames;
    // shard 1 gets them over the mesh, timed from when shard 0 read them.
    let delivered = |scrape: &str, shard: usize| {
        check_buckets(scrape, "turntable_delivery_latency_seconds", shard)
    };
    eventually(|| {
        let now = common::get(addr, "/metrics").1;
        (0..2).all(|s| delivered(&now, s) >= delivered(&before, s) + published as f64)
    });
    let after = common::get(addr, "/metrics").1;
    assert!(shard_sum(&after, "turntable_delivery_latency_seconds_sum") > 0.0);
    // A publication timed from a stale origin (a previous input) would take seconds.
    for shard in 0..2 {
        let under_a_second = after
            .lines()
            .find(|l| {
                l.starts_with("turntable_delivery_latency_seconds_bucket{le=\"1.0\"")
                    && l.contains(&format!("shard=\"{shard}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .expect("a 1 s bucket");
        assert_eq!(under_a_second, delivered(&after, shard));
    }

    // One handshake timed per upgrade answered (connect_on_shard may have made more
    // connections than it kept).
    let upgrades = after
        .lines()
        .filter(|l| l.starts_with("turntable_http_responses_total{") && l.contains("\"101\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum::<f64>();
    let handshakes: f64 = (0..2)
        .map(|s| check_buckets(&after, "turntable_handshake_seconds", s))
        .sum();
    assert!(upgrades >= 3.0);
    assert_eq!(handshakes, upgrades);
    assert!(shard_sum(&after, "turntable_handshake_seconds_sum") > 0.0);
}
