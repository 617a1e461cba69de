//! The live dashboard over the wire: the page and its files, who may see them, and the
//! event stream's figures as a client publishes and on a node of a cluster; then the
//! page itself in headless Chromium (`tests/browser/dashboard.mjs`, with Debian's
//! chromium and playwright-core installed by `scripts/setup-chromium.sh`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{Client, PATIENCE, get, http, server, server_with};
use serde_json::{Value, json};
use turntable::auth::Secret;
use turntable::net::dashboard::MAX_STREAMS;

const API_KEY: &str = "the-api-key-of-the-dashboard-tests";
const DASHBOARD_KEY: &str = "the-dashboard-key-of-the-tests";

/// The value of header `name` in a raw response.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn status(response: &str) -> u16 {
    response[9..12].parse().expect("status code")
}

/// `GET path` with `extra` header lines; the whole response.
fn get_with(addr: SocketAddr, path: &str, extra: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n"),
    )
}

/// Signs in with `key` through the form; the whole response.
fn sign_in(addr: SocketAddr, key: &str) -> String {
    let body = format!("key={key}");
    http(
        addr,
        &format!(
            "POST /dashboard HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// An open `/dashboard/events` stream.
struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    /// Opens the stream with `extra` header lines; its status and head on refusal.
    fn open(addr: SocketAddr, extra: &str) -> Result<Events, String> {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        write!(
            stream,
            "GET /dashboard/events HTTP/1.1\r\nHost: test\r\n{extra}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            if reader.read_line(&mut head).unwrap() == 0 {
                return Err(head);
            }
        }
        if status(&head) != 200 {
            return Err(head);
        }
        assert_eq!(header(&head, "content-type"), Some("text/event-stream"));
        Ok(Events { reader })
    }

    /// The next snapshot.
    fn next(&mut self) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "the stream ended"
            );
            if let Some(data) = line.strip_prefix("data: ") {
                return serde_json::from_str(data).expect("a JSON snapshot");
            }
        }
    }

    /// Reads snapshots until one satisfies `f` (they come each second).
    fn until(&mut self, mut f: impl FnMut(&Value) -> bool) -> Value {
        for _ in 0..10 {
            let snapshot = self.next();
            if f(&snapshot) {
                return snapshot;
            }
        }
        panic!("none of 10 snapshots did");
    }

    /// Whether the server closed the stream (reads until it does, or the patience ends).
    fn ends(mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

#[test]
fn the_page_and_its_files_are_served_with_their_types() {
    let server = server(); // development mode: no key, loopback, the API open
    let addr = server.local_addr();
    let page = get_with(addr, "/dashboard", "");
    assert_eq!(status(&page), 200, "{page}");
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&page, "content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(page.contains(r#"<script src="/dashboard/dashboard.js""#));
    for (path, content_type, starts) in [
        (
            "/dashboard/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
            "/*! https://github.com/leeoniya/uPlot (v1.6.32) */",
        ),
        (
            "/dashboard/uPlot.min.css",
            "text/css; charset=utf-8",
            ".uplot",
        ),
        (
            "/dashboard/dashboard.js",
            "text/javascript; charset=utf-8",
            "//",
        ),
        ("/dashboard/dashboard.css", "text/css; charset=utf-8", "/*"),
        (
            "/dashboard/uPlot.LICENSE.txt",
            "text/plain; charset=utf-8",
            "The MIT License",
        ),
    ] {
        let response = get_with(addr, path, "");
        assert_eq!(status(&response), 200, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            Some(content_type),
            "{path}"
        );
        let body = response.split_once("\r\n\r\n").unwrap().1;
        assert!(body.starts_with(starts), "{path}: {}", &body[..40]);
    }
    assert_eq!(get(addr, "/dashboard/index.html").0, 404);
    assert_eq!(get(addr, "/dashboard/nothing").0, 404);
    let events = Events::open(addr, "").map(|mut e| e.next());
    assert!(events.is_ok_and(
        |s| s["nodes"] == json!([{"id":0,"url":null,"alive":true,"self":true,"connections":0}])
    ));
    let put = http(addr, "PUT /dashboard/events HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status(&put), 405);
    assert_eq!(header(&put, "allow"), Some("GET"));
}

#[test]
fn with_an_api_key_the_dashboard_asks_for_it() {
    let server = server_with(|c| c.api_key = Some(API_KEY.into()));
    let addr = server.local_addr();
    let page = get_with(addr, "/dashboard", "");
    assert_eq!(status(&page), 401);
    assert!(page.contains(r#"<form method="post" action="/dashboard">"#));
    let refused = Events::open(addr, "").err().expect("refused without a key");
    assert_eq!(status(&refused), 401);
    let cookie = format!("Cookie: turntable_dashboard={API_KEY}\r\n");
    assert_eq!(status(&Events::open(addr, &cookie).err().unwrap()), 401);
    let wrong = sign_in(addr, "not-the-key");
    assert_eq!(status(&wrong), 401);
    assert!(wrong.contains("That is not the key."));

    let header_key = format!("Authorization: apikey {API_KEY}\r\n");
    assert_eq!(status(&get_with(addr, "/dashboard", &header_key)), 200);
    assert!(Events::open(addr, &header_key).is_ok());

    let signed_in = sign_in(addr, API_KEY);
    assert_eq!(status(&signed_in), 303, "{signed_in}");
    assert_eq!(header(&signed_in, "location"), Some("/dashboard"));
    let set = header(&signed_in, "set-cookie").expect("a cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains(API_KEY),
        "{set}"
    );
    let cookie = format!("Cookie: {}\r\n", set.split(';').next().unwrap());
    assert_eq!(status(&get_with(addr, "/dashboard", &cookie)), 200);
    assert!(Events::open(addr, &cookie).is_ok());
}

#[test]
fn a_dashboard_key_replaces_the_api_key() {
    let server = server_with(|c| {
        c.api_key = Some(API_KEY.into());
        c.dashboard_key = Some(DASHBOARD_KEY.into());
    });
    let addr = server.local_addr();
    assert_eq!(status(&sign_in(addr, API_KEY)), 401);
    assert_eq!(status(&sign_in(addr, DASHBOARD_KEY)), 303);
    let header_key = format!("Authorization: apikey {DASHBOARD_KEY}\r\n");
    assert!(Events::open(addr, &header_key).is_ok());
}

#[test]
fn without_any_key_outside_development_mode_it_is_closed() {
    let server = server_with(|c| {
        c.auth_secret = Some(Secret::new("a-secret-that-is-long-enough-for-hs256".into()).unwrap());
    });
    let addr = server.local_addr();
    assert_eq!(get(addr, "/dashboard").0, 403);
    assert_eq!(status(&Events::open(addr, "").err().unwrap()), 403);
    assert_eq!(status(&sign_in(addr, API_KEY)), 403);
}

fn identified(addr: SocketAddr, user: &str) -> Client {
    let mut c = Client::connect(addr, "/turntable");
    assert_eq!(c.recv()["command"], "idyou");
    c.send(json!({"command":"idme","data":user}));
    assert_eq!(c.recv()["command"], "identified");
    c
}

#[test]
fn the_figures_change_when_a_client_publishes() {
    let server = server();
    let addr = server.local_addr();
    let mut events = Events::open(addr, "").unwrap();
    let first = events.next();
    assert_eq!(first["connections"], 0);
    assert_eq!(first["rates"]["messages_in"], Value::Null);
    assert_eq!(first["shards"].as_array().unwrap().len(), 2);

    let mut players: Vec<Client> = ["ann", "bob"]
        .iter()
        .map(|user| identified(addr, user))
        .collect();
    for (i, player) in players.iter_mut().enumerate() {
        let user = ["ann", "bob"][i];
        player.send(json!({"command":"joingame","data":{"channel":"arena","self":user}}));
        assert_eq!(player.recv()["command"], "joined");
    }
    assert_eq!(players[0].recv()["command"], "memberjoined");
    for n in 0..20 {
        players[0].send(
            json!({"command":"game","data":{"channel":"arena","actions":[{"from":"ann","n":n}]}}),
        );
        assert_eq!(players[0].recv()["command"], "game");
        assert_eq!(players[1].recv()["command"], "game");
    }

    let seen = events.until(|s| {
        s["messages_in"].as_u64() >= Some(first["messages_in"].as_u64().unwrap() + 24)
            && s["channels"][0]["publications"] == 20
    });
    assert_eq!(seen["connections"], 2);
    assert_eq!(seen["dialects"]["turntable"], 2);
    assert_eq!(seen["channels"][0]["channel"], "turntable:arena", "{seen}");
    assert_eq!(seen["channels"][0]["subscribers"], 2);
    assert!(seen["messages_out"].as_u64() >= Some(44), "{seen}");
    assert!(seen["writes"].as_u64() > Some(0));
    assert!(seen["rates"]["messages_in"].as_f64() > Some(0.0), "{seen}");
    assert!(
        seen["rates"]["frames_per_write"].as_f64() >= Some(1.0),
        "{seen}"
    );
    assert_eq!(seen["redis"], Value::Null);
    drop(players);
    let quiet = events.until(|s| s["connections"] == 0 && s["rates"]["messages_in"] == 0.0);
    assert_eq!(quiet["channels"], json!([]));
}

#[test]
fn streams_are_bounded_and_end_when_the_server_stops() {
    let server = server();
    let addr = server.local_addr();
    let mut open: Vec<Events> = (0..MAX_STREAMS)
        .map(|_| Events::open(addr, "").unwrap())
        .collect();
    let refused = Events::open(addr, "").err().expect("one too many");
    assert_eq!(status(&refused), 503);
    assert_eq!(header(&refused, "retry-after"), Some("10"));
    drop(open.pop());
    common::eventually(|| Events::open(addr, "").is_ok());
    server.stop();
    assert!(
        open.pop().unwrap().ends(),
        "the stream ends with the server"
    );
}

#[test]
fn a_node_of_a_cluster_shows_every_node_and_its_redis() {
    let mut cluster = common::cluster::TestCluster::start(2);
    let _client = Client::connect(cluster.addr(1), "/turntable");
    let mut events = Events::open(cluster.addr(0), "").unwrap();
    let seen = events.until(|s| s["nodes"][1]["connections"] == 1);
    assert_eq!(seen["nodes"][0]["self"], true);
    assert_eq!(seen["nodes"][1]["alive"], true);
    assert_eq!(seen["redis"]["connected"], true, "{seen}");
    assert!(seen["redis"]["queue_depth"].is_u64());
    cluster.kill(1);
    let seen = events.until(|s| s["nodes"][1]["alive"] == false);
    assert_eq!(seen["nodes"][1]["connections"], Value::Null);
}

#[test]
fn the_page_shows_live_figures_in_headless_chromium() {
    let chromium = common::setup_script("setup-chromium.sh").unwrap_or_else(|e| panic!("{e}"));
    let chromium = chromium
        .lines()
        .last()
        .expect("the path of chromium")
        .trim();
    let server = server_with(|c| c.api_key = Some(API_KEY.into()));
    let url = format!("http://{}", server.local_addr());
    let screenshot = std::env::var("DASHBOARD_SCREENSHOT").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join(format!("turntable-dashboard-{}.png", std::process::id()))
            .display()
            .to_string()
    });
    common::node::run_script(
        std::path::Path::new("tests/browser/dashboard.mjs"),
        &[
            "--url",
            &url,
            "--key",
            API_KEY,
            "--chromium",
            chromium,
            "--screenshot",
            &screenshot,
        ],
    );
}
