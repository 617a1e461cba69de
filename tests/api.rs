//! The HTTP API and `/metrics` on a 2-shard server, over real HTTP connections: API key
//! checks, every error status, and each endpoint as clients of several dialects see its
//! effect on the wire (publish, presence, user status, disconnect, reload, stats).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{Client, eventually, socketcluster};
use serde_json::{Value, json};
use turntable::auth::Secret;
use turntable::config::SettingType;
use turntable::engine::namespace::Namespaces;
use turntable::runtime::Server;

const KEY: &str = "an-api-key-for-the-tests";

fn api_server() -> Server {
    common::server_with(|c| c.api_key = Some(KEY.into()))
}

/// An API server whose namespaces `open` let anyone subscribe to their channels, so one
/// channel has receivers of every dialect.
fn api_server_opening(open: &[&str]) -> Server {
    let tables: Vec<String> = open
        .iter()
        .map(|name| format!(r#"{name} = {{ receive = "anyone" }}"#))
        .collect();
    let namespaces = Namespaces::parse(&tables.join("\n")).expect("namespace tables");
    common::server_with(|c| {
        c.api_key = Some(KEY.into());
        c.namespaces = namespaces;
    })
}

/// One HTTP response: status, headers (lowercased names) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap().to_owned()
    }
}

fn send(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
    stream.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(key) = key {
        raw += &format!("Authorization: apikey {key}\r\n");
    }
    if let Some(body) = body {
        raw += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    } else {
        raw += "\r\n";
    }
    send(addr, raw.as_bytes())
}

fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, Some(KEY), None)
}

fn post(addr: SocketAddr, path: &str, body: Value) -> Response {
    request(addr, "POST", path, Some(KEY), Some(&body.to_string()))
}

fn turntable_member(addr: SocketAddr, shard: usize, user: &str, channel: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/turntable", shard);
    c.recv();
    c.send(json!({"command":"idme","data":user}));
    c.recv();
    c.send(json!({"command":"joingame","data":{"channel":channel,"self":user}}));
    assert_eq!(c.recv()["command"], "joined");
    c
}

fn world_member(addr: SocketAddr, shard: usize, user: &str) -> Client {
    let mut c = Client::connect_on_shard(addr, "/ws/world/default", shard);
    c.send(json!(["authenticate", {"user": {"id": user}}]));
    assert_eq!(c.recv()[0], "authenticated");
    c
}

fn sc_subscriber(addr: SocketAddr, shard: usize, channel: &str) -> Client {
    let (mut c, _) = socketcluster::handshaken_on(addr, shard, json!({}));
    socketcluster::subscribe(&mut c, channel, 2);
    c
}

#[test]
fn the_api_key_is_required_and_checked() {
    let server = api_server();
    let addr = server.local_addr();
    let missing = request(addr, "GET", "/api/stats", None, None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error_code(), "api.unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("apikey"));
    let wrong = request(
        addr,
        "GET",
        "/api/stats",
        Some("not-the-key-at-all!!"),
        None,
    );
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (401, "api.unauthorized")
    );
    assert_eq!(get(addr, "/api/stats").status, 200);

    let keyless = common::server_with(|c| {
        c.auth_secret = Some(Secret::new("a-secret-that-is-long-enough-for-hs256".into()).unwrap())
    });
    let closed = request(keyless.local_addr(), "GET", "/api/stats", None, None);
    assert_eq!(
        (closed.status, closed.error_code().as_str()),
        (403, "api.disabled")
    );

    let development = common::server();
    let open = request(development.local_addr(), "GET", "/api/stats", None, None);
    assert_eq!(open.status, 200, "no secret and loopback: development mode");
}

#[test]
fn every_refusal_has_its_status_and_a_json_error() {
    let server = api_server();
    let addr = server.local_addr();
    let cases: Vec<(Response, u16, &str)> = vec![
        (get(addr, "/api/nothing"), 404, "api.not_found"),
        (get(addr, "/api"), 404, "api.not_found"),
        (get(addr, "/api/publish"), 405, "api.method_not_allowed"),
        (
            request(addr, "DELETE", "/api/users/ann", Some(KEY), None),
            405,
            "api.method_not_allowed",
        ),
        (
            request(addr, "POST", "/api/publish", Some(KEY), Some("{not json")),
            400,
            "api.malformed",
        ),
        (
            request(addr, "POST", "/api/publish", Some(KEY), Some("[1]")),
            400,
            "api.malformed",
        ),
        (
            post(addr, "/api/publish", json!({"data": 1})),
            400,
            "api.malformed",
        ),
        (
            post(addr, "/api/publish", json!({"channel": "", "data": 1})),
            400,
            "api.malformed",
        ),
        (
            post(addr, "/api/publish", json!({"channel": "a"})),
            400,
            "api.malformed",
        ),
        (get(addr, "/api/users/bad%zzescape"), 400, "api.malformed"),
        (
            post(
                addr,
                "/api/publish",
                json!({"channel": "world:default:ot:notes", "data": 1}),
            ),
            403,
            "api.document_channel",
        ),
        (
            post(addr, "/api/channels/world:default:ot:notes/kick", json!({})),
            403,
            "api.document_channel",
        ),
    ];
    for (response, status, code) in cases {
        assert_eq!(
            (response.status, response.error_code().as_str()),
            (status, code),
            "{}",
            response.body
        );
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
    assert_eq!(get(addr, "/api/publish").header("allow"), Some("POST"));

    let form = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: apikey {KEY}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1"
    );
    let unsupported = send(addr, form.as_bytes());
    assert_eq!(
        (unsupported.status, unsupported.error_code().as_str()),
        (415, "api.unsupported_media_type")
    );

    let huge = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: apikey {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n"
    );
    let too_large = send(addr, huge.as_bytes());
    assert_eq!(
        (too_large.status, too_large.error_code().as_str()),
        (413, "api.too_large")
    );

    let chunked = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: apikey {KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(send(addr, chunked.as_bytes()).status, 411);
}

#[test]
fn a_publish_reaches_every_dialect_in_channel_order() {
    let server = api_server_opening(&["turntable"]);
    let addr = server.local_addr();
    let mut game = turntable_member(addr, 0, "1:1", "arena");
    let mut sc = sc_subscriber(addr, 1, "turntable:arena");
    let mut world = world_member(addr, 1, "ann");
    world.send(json!(["channel.join", 1, {"channel": "hall"}]));
    assert_eq!(world.recv()[0], "success");

    for i in 1..=3 {
        let answer = post(
            addr,
            "/api/publish",
            json!({"channel": "turntable:arena", "data": {"n": i}}),
        );
        assert_eq!(
            (answer.status, answer.json()),
            (200, json!({"channel": "turntable:arena", "seq": i}))
        );
    }
    for i in 1..=3 {
        assert_eq!(
            game.recv(),
            json!({"command":"game","data":{"channel":"arena","seq":i,"from":"","actions":{"n":i}}})
        );
        assert_eq!(
            socketcluster::recv(&mut sc),
            json!({"event":"#publish","data":{"channel":"turntable:arena","data":{"n":i}}})
        );
    }
    let answer = post(
        addr,
        "/api/publish",
        json!({"channel": "world:default:hall", "data": "hi"}),
    );
    assert_eq!(answer.json()["seq"], 1);
    assert_eq!(
        world.recv(),
        json!(["channel.event", {"channel": "hall", "seq": 1, "user": "", "data": "hi"}])
    );
    let nobody = post(addr, "/api/publish", json!({"channel": "empty", "data": 1}));
    assert_eq!(nobody.json(), json!({"channel": "empty", "seq": null}));

    let mut chat = Client::connect_on_shard(addr, "/talker", 0);
    chat.send(json!({"type":"connect","room":"den","user":{"id":"t1","name":"Tess"}}));
    assert_eq!(chat.recv()["type"], "connected");
    assert_eq!(chat.recv()["type"], "users");
    let posted = post(
        addr,
        "/api/publish",
        json!({"channel": "talker:den", "data": "doors close at 10"}),
    );
    assert_eq!(posted.json(), json!({"channel": "talker:den", "seq": 1}));
    let message = chat.recv();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"], "doors close at 10");
    assert_eq!(message["user"], json!({"id": "", "name": "server"}));
}

#[test]
fn presence_and_user_status_are_the_same_from_every_shard() {
    let server = api_server();
    let addr = server.local_addr();
    let _a = turntable_member(addr, 0, "1:1", "arena");
    let _b = turntable_member(addr, 1, "1:1", "arena");
    let _c = turntable_member(addr, 1, "1:2", "arena");
    let mut seen_shards = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let presence = get(addr, "/api/channels/turntable%3Aarena/presence");
        seen_shards.insert(presence.header("x-turntable-shard").unwrap().to_owned());
        assert_eq!(
            presence.json(),
            json!({"channel": "turntable:arena", "members": [{"id": "1:1"}, {"id": "1:2"}]})
        );
        let user = get(addr, "/api/users/1%3A1");
        assert_eq!(
            user.json(),
            json!({"id": "1:1", "status": "online", "connections": 2})
        );
    }
    assert_eq!(seen_shards.len(), 2, "both shards answered");
    assert_eq!(
        get(addr, "/api/users/nobody").json(),
        json!({"id": "nobody", "status": "offline", "connections": 0})
    );
    assert_eq!(
        get(addr, "/api/channels/none/presence").json(),
        json!({"channel": "none", "members": []})
    );
}

#[test]
fn presence_shows_the_profiles_the_dialects_know() {
    let server = api_server();
    let addr = server.local_addr();
    let _v1 = turntable_member(addr, 0, "1:7", "lobby");
    let mut world = Client::connect_on_shard(addr, "/ws/world/default", 1);
    world.send(json!(["authenticate", {"user": {"id": "ann", "name": "Ann", "level": 3}}]));
    assert_eq!(world.recv()[0], "authenticated");
    world.send(json!(["channel.join", 1, {"channel": "lobby"}]));
    assert_eq!(world.recv()[0], "success");
    assert_eq!(
        get(addr, "/api/channels/lobby/presence").json(),
        json!({"channel": "lobby", "members": [
            {"id": "1:7"},
            {"id": "ann", "name": "Ann", "level": 3}
        ]})
    );
}

#[test]
fn disconnect_closes_every_connection_of_the_user_with_a_reason() {
    let server = api_server();
    let addr = server.local_addr();
    let mut game = turntable_member(addr, 0, "ann", "arena");
    let mut world = world_member(addr, 1, "ann");
    let mut other = world_member(addr, 1, "bob");
    let answer = post(addr, "/api/users/ann/disconnect", json!({}));
    assert_eq!(answer.json(), json!({"id": "ann", "disconnected": 2}));
    assert_eq!(
        game.expect_close(),
        (4003, "disconnected by the server".into())
    );
    assert_eq!(
        world.recv(),
        json!(["error", {"code": "connection.disconnected"}])
    );
    assert_eq!(world.expect_close().0, 4003);
    other.send(json!(["ping", 1]));
    assert_eq!(other.recv(), json!(["pong", 1]));
    let after = get(addr, "/api/users/ann");
    assert_eq!(after.json()["connections"], 0);
}

#[test]
fn reload_reaches_every_client_in_its_dialect() {
    let server = api_server();
    let addr = server.local_addr();
    let mut game = turntable_member(addr, 0, "ann", "arena");
    let mut world = world_member(addr, 1, "bob");
    let mut sc = sc_subscriber(addr, 0, "news");
    let answer = post(addr, "/api/clients/reload", json!({}));
    assert_eq!(answer.json(), json!({"reloaded": 3}));
    assert_eq!(game.recv(), json!({"command":"reload","data":{}}));
    assert_eq!(world.recv(), json!(["connection.reload", {}]));
    assert_eq!(
        socketcluster::recv(&mut sc),
        json!({"event":"reload","data":{}})
    );
}

/// Polls `f` until it is true (figures are published on each shard's clock tick).
#[test]
fn stats_and_metrics_count_the_traffic() {
    let server = api_server();
    let addr = server.local_addr();
    let mut game = turntable_member(addr, 0, "ann", "arena");
    let _world = world_member(addr, 1, "bob");
    game.send(json!({"command":"game","data":{"channel":"arena","actions":[1]}}));
    game.recv();
    eventually(|| {
        let stats = get(addr, "/api/stats").json();
        stats["connections"] == 2 && stats["messages_in"].as_u64() >= Some(4)
    });
    let stats = get(addr, "/api/stats").json();
    assert_eq!(stats["shards"].as_array().unwrap().len(), 2);
    assert!(stats["channels"].as_u64() >= Some(1), "{stats}");

    // A Prometheus server prefers OpenMetrics; a bare GET gets the classic format.
    let metrics = common::http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n",
    );
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let (head, body) = metrics.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let samples = parse_openmetrics(body);
    let sum = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    };
    assert_eq!(sum("turntable_connections"), 2.0);
    assert!(sum("turntable_messages_received_total") >= 4.0);
    assert!(sum("turntable_messages_delivered_total") >= 5.0);
    assert!(sum("turntable_http_responses_total") >= 3.0);
    assert!(
        samples
            .iter()
            .any(|(n, labels, _)| n == "turntable_connections"
                && labels.contains("dialect=\"world\""))
    );
}

/// Checks the OpenMetrics text format line by line (metadata, samples, the closing
/// `# EOF`) and returns the samples: name, labels, value.
fn parse_openmetrics(text: &str) -> Vec<(String, String, f64)> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "the exposition ends with # EOF"
    );
    let mut samples = Vec::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(meta) = line.strip_prefix("# ") {
            let kind = meta.split(' ').next().unwrap();
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closed labels")),
            None => (series, ""),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        for label in labels.split(',').filter(|l| !l.is_empty()) {
            let (k, v) = label.split_once('=').expect("label=value");
            assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
        }
        samples.push((name.to_owned(), labels.to_owned(), value));
    }
    samples
}

#[test]
fn kick_takes_connections_out_of_a_channel_in_every_dialect() {
    let server = api_server_opening(&["world"]);
    let addr = server.local_addr();
    let mut sc = sc_subscriber(addr, 0, "world:default:hall");
    let mut ann = world_member(addr, 1, "ann");
    let mut bob = world_member(addr, 0, "bob");
    for c in [&mut ann, &mut bob] {
        c.send(json!(["channel.join", 1, {"channel": "hall"}]));
        assert_eq!(c.recv()[0], "success");
    }
    assert_eq!(ann.recv()[0], "channel.member_joined");

    let one = post(
        addr,
        "/api/channels/world%3Adefault%3Ahall/kick",
        json!({"user": "bob", "message": "afk"}),
    );
    assert_eq!(
        one.json(),
        json!({"channel": "world:default:hall", "kicked": 1})
    );
    assert_eq!(
        bob.recv(),
        json!(["channel.kicked", {"channel": "hall", "message": "afk"}])
    );
    assert_eq!(
        ann.recv(),
        json!(["channel.member_left", {"channel": "hall", "user": "bob"}])
    );

    let all = post(
        addr,
        "/api/channels/world%3Adefault%3Ahall/kick",
        json!({"message": "closing"}),
    );
    assert_eq!(all.json()["kicked"], 2);
    assert_eq!(
        socketcluster::recv(&mut sc),
        json!({"event":"#kickOut","data":{"message":"closing","channel":"world:default:hall"}})
    );
    assert_eq!(ann.recv()[0], "channel.kicked");
    let published = post(
        addr,
        "/api/publish",
        json!({"channel": "world:default:hall", "data": 1}),
    );
    assert_eq!(
        published.json()["seq"],
        Value::Null,
        "nobody is left to receive it"
    );
    let bad = post(addr, "/api/channels/x/kick", json!({"user": 5}));
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "api.malformed")
    );
}

fn delete(addr: SocketAddr, path: &str) -> Response {
    request(addr, "DELETE", path, Some(KEY), None)
}

#[test]
fn lobby_games_are_created_joined_left_and_closed_in_view_of_every_dialect() {
    let server = api_server();
    let addr = server.local_addr();
    let mut lobby_v1 = turntable_member(addr, 0, "watcher", "lobby");
    let mut lobby_sc = sc_subscriber(addr, 1, "lobby");
    let mut lobby_world = world_member(addr, 1, "onlooker");
    lobby_world.send(json!(["channel.join", 1, {"channel": "lobby"}]));
    assert_eq!(
        lobby_world.recv()[2]["channel"],
        "lobby",
        "the lobby is the node's"
    );
    assert_eq!(lobby_v1.recv()["command"], "memberjoined");

    let created = post(
        addr,
        "/api/games",
        json!({"id": "duel", "name": "Duel", "max_players": 2, "metadata": {"map": "dust"}}),
    );
    let game = json!({"id": "duel", "name": "Duel", "max_players": 2, "players": 0, "metadata": {"map": "dust"}});
    assert_eq!((created.status, created.json()), (200, game.clone()));
    let news = json!({"type": "game_created", "game": game});
    assert_eq!(lobby_v1.recv()["data"]["actions"], news);
    assert_eq!(socketcluster::recv(&mut lobby_sc)["data"]["data"], news);
    assert_eq!(lobby_world.recv()[1]["data"], news);

    // The lobby is the server's, and a game takes publishes from its players only:
    // forged announcements are refused in every dialect and reach nobody.
    lobby_sc.send(json!({"event":"#publish","data":{"channel":"lobby","data":news},"cid":7}));
    assert_eq!(
        socketcluster::recv(&mut lobby_sc),
        json!({"rid":7,"error":{"name":"BrokerError","message":"only the server publishes to this channel"}})
    );
    lobby_sc.send(json!({"event":"#publish","data":{"channel":"game:duel","data":{}},"cid":8}));
    assert_eq!(
        socketcluster::recv(&mut lobby_sc)["error"]["message"],
        "not a member of this channel"
    );
    lobby_world.send(json!(["channel.send", 2, {"channel": "lobby", "data": news}]));
    assert_eq!(
        lobby_world.recv(),
        json!(["error", 2, {"code": "channel.server_only", "message": "only the server publishes to this channel"}])
    );
    assert_eq!(get(addr, "/api/games").json(), json!({"games": [game]}));

    let mut ann = turntable_member(addr, 0, "ann", "game:duel");
    let joined = |user: &str, players: u64| json!({"type": "player_joined", "game": "duel", "user": user, "players": players});
    assert_eq!(
        socketcluster::recv(&mut lobby_sc)["data"]["data"],
        joined("ann", 1)
    );
    let mut bob = world_member(addr, 1, "bob");
    bob.send(json!(["channel.join", 2, {"channel": "game:duel"}]));
    assert_eq!(bob.recv()[2]["members"], json!(["ann", "bob"]));
    assert_eq!(
        ann.recv(),
        json!({"command":"memberjoined","data":{"channel":"game:duel","user":"bob"}})
    );
    assert_eq!(
        socketcluster::recv(&mut lobby_sc)["data"]["data"],
        joined("bob", 2)
    );

    let mut late = world_member(addr, 0, "cy");
    late.send(json!(["channel.join", 3, {"channel": "game:duel"}]));
    assert_eq!(late.recv()[2]["code"], "game.full");
    late.send(json!(["channel.join", 4, {"channel": "game:nope"}]));
    assert_eq!(late.recv()[2]["code"], "game.unknown");
    late.send(json!(["channel.send", 5, {"channel": "game:duel", "data": 1}]));
    assert_eq!(
        late.recv()[2]["code"],
        "channel.not_member",
        "a refused join leaves nothing behind"
    );

    bob.send(json!(["channel.leave", 6, {"channel": "game:duel"}]));
    assert_eq!(bob.recv()[0], "success");
    assert_eq!(ann.recv()["command"], "memberleft");
    assert_eq!(
        socketcluster::recv(&mut lobby_sc)["data"]["data"],
        json!({"type": "player_left", "game": "duel", "user": "bob", "players": 1})
    );
    assert_eq!(get(addr, "/api/games").json()["games"][0]["players"], 1);

    let closed = delete(addr, "/api/games/duel");
    assert_eq!(
        closed.json(),
        json!({"id": "duel", "closed": true, "kicked": 1})
    );
    assert_eq!(
        ann.recv(),
        json!({"command":"kicked","data":{"channel":"game:duel","message":"game closed"}})
    );
    assert_eq!(
        socketcluster::recv(&mut lobby_sc)["data"]["data"],
        json!({"type": "game_closed", "game": "duel"})
    );
    assert_eq!(get(addr, "/api/games").json(), json!({"games": []}));
    assert_eq!(delete(addr, "/api/games/duel").status, 404);
}

#[test]
fn game_requests_are_checked() {
    let server = api_server();
    let addr = server.local_addr();
    let made = post(
        addr,
        "/api/games",
        json!({"name": "Open", "max_players": 4}),
    );
    let id = made.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);
    assert_eq!(made.json()["metadata"], Value::Null);
    let again = post(
        addr,
        "/api/games",
        json!({"id": id, "name": "Twin", "max_players": 4}),
    );
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (409, "api.conflict")
    );
    for body in [
        json!({"max_players": 4}),
        json!({"name": "x", "max_players": 0}),
        json!({"name": "x", "max_players": "4"}),
        json!({"name": "x", "max_players": 4, "id": ""}),
    ] {
        let refused = post(addr, "/api/games", body.clone());
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (400, "api.malformed"),
            "{body}"
        );
    }
    let wrong = request(addr, "PUT", "/api/games", Some(KEY), None);
    assert_eq!(
        (wrong.status, wrong.header("allow")),
        (405, Some("GET, POST"))
    );
}

#[test]
fn two_content_lengths_are_refused_and_nothing_is_published() {
    let server = api_server();
    let addr = server.local_addr();
    let mut sc = sc_subscriber(addr, 1, "arena");
    let publish = |n: u32| json!({"channel": "arena", "data": {"n": n}}).to_string();
    let second = publish(2);
    let smuggled = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: apikey {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{second}",
        second.len()
    );
    for (framing, body) in common::ambiguous_framings(&publish(1), &smuggled) {
        let answer = common::http(
            addr,
            &format!(
                "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: apikey {KEY}\r\n\
                 Content-Type: application/json\r\n{framing}\r\n{body}"
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{framing}: {answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
        assert!(answer.contains(r#""code":"api.malformed""#), "{answer}");
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "one answer: {answer}"
        );
    }
    sc.expect_silence(std::time::Duration::from_millis(300));
    // The same publish with one length does reach the subscriber.
    assert_eq!(
        post(addr, "/api/publish", json!({"channel": "arena", "data": 1})).status,
        200
    );
    assert_eq!(
        socketcluster::recv(&mut sc),
        json!({"event":"#publish","data":{"channel":"arena","data":1}})
    );
}
