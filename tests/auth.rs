//! Token authentication over the wire: turntable v1's `idme` with a server secret
//! (valid, forged, expired, missing and bare-id identifications), the insecure
//! development mode's guard rails, and tokens printed by `turntable token`.

mod common;

use common::{Client, run_binary, server_with, spawn_binary};
use serde_json::{Map, Value, json};
use turntable::auth::{Auth, Secret, now_secs};

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

fn auth(secret: &str) -> Auth {
    Auth::new(&Secret::new(secret.to_owned()).unwrap())
}

fn token(user: &str, expires_at: u64) -> String {
    auth(SECRET).issue(user, None, expires_at, Map::new())
}

fn idme(c: &mut Client, data: Value) -> Value {
    c.send(json!({"command":"idme","data":data}));
    c.recv()
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply["command"], "error", "{reply}");
    reply["data"]["code"].as_str().unwrap()
}

#[test]
fn idme_with_a_secret_accepts_only_valid_tokens() {
    let server = server_with(|c| c.auth_secret = Some(Secret::new(SECRET.into()).unwrap()));
    let addr = server.local_addr();
    let mut c = Client::connect(addr, "/turntable");
    assert_eq!(c.recv()["command"], "idyou");

    assert_eq!(
        error_code(&idme(&mut c, json!("1:1"))),
        "auth.token_required"
    );
    assert_eq!(error_code(&idme(&mut c, json!({}))), "auth.missing_token");
    let forged = auth("another-secret-that-is-long-enough-too!!").issue(
        "1:1",
        None,
        now_secs() + 60,
        Map::new(),
    );
    assert_eq!(
        error_code(&idme(&mut c, json!({"token": forged}))),
        "auth.invalid_token"
    );
    let expired = token("1:1", now_secs() - 60);
    assert_eq!(
        error_code(&idme(&mut c, json!({"token": expired}))),
        "auth.expired_token"
    );
    assert_eq!(
        error_code(&idme(&mut c, json!({"token": "x.y.z"}))),
        "auth.invalid_token"
    );
    // Refusals leave the connection unidentified but usable.
    c.send(json!({"command":"subscribe","data":["1:2"]}));
    assert_eq!(error_code(&c.recv()), "auth.not_identified");

    let valid = token("1:1", now_secs() + 60);
    assert_eq!(
        idme(&mut c, json!({"token": valid})),
        json!({"command":"identified","data":{"id":"1:1"}})
    );
    // The identity is the token's: others see that user online.
    let mut watcher = Client::connect(addr, "/turntable");
    watcher.recv();
    idme(
        &mut watcher,
        json!({"token": token("1:2", now_secs() + 60)}),
    );
    watcher.send(json!({"command":"subscribe","data":["1:1"]}));
    assert_eq!(
        watcher.recv(),
        json!({"command":"userchange","data":{"1:1":"online"}})
    );
}

#[test]
fn without_a_secret_ids_are_trusted_and_tokens_refused() {
    let server = server_with(|_| {});
    let mut c = Client::connect(server.local_addr(), "/turntable");
    c.recv();
    let reply = idme(&mut c, json!({"token": token("1:1", now_secs() + 60)}));
    assert_eq!(error_code(&reply), "protocol.invalid_data");
    assert_eq!(idme(&mut c, json!("1:1"))["command"], "identified");
}

#[test]
fn insecure_mode_warns_and_refuses_public_addresses() {
    let (code, _, err) = run_binary(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("invalid setting listen") && err.contains("--insecure"),
        "{err}"
    );

    let (code, _, err) = run_binary(&["serve", "--auth-secret", "short"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid setting auth_secret"), "{err}");

    let (mut child, line) = spawn_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--pin=false",
    ]);
    assert!(line.starts_with("listening on"), "{line}");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("insecure development mode"), "{stderr}");
}

#[test]
fn the_token_command_signs_what_the_server_accepts() {
    let (code, out, err) = run_binary(&[
        "token",
        "--auth-secret",
        SECRET,
        "--user",
        "1:9",
        "--name",
        "Ada",
        "--ttl",
        "2h",
        "--claim",
        "team=red",
        "--claim",
        "level=3",
    ]);
    assert_eq!(code, 0, "{err}");
    let identity = auth(SECRET).verify(out.trim()).unwrap();
    assert_eq!(&*identity.user, "1:9");
    assert_eq!(identity.name.as_deref(), Some("Ada"));
    assert_eq!(identity.profile["team"], "red");
    assert_eq!(identity.profile["level"], 3);

    let (code, _, err) = run_binary(&["token", "--user", "1:9"]);
    assert_eq!(code, 2);
    assert!(err.contains("no secret"), "{err}");
    let (code, _, err) = run_binary(&[
        "token",
        "--auth-secret",
        SECRET,
        "--user",
        "u",
        "--ttl",
        "soon",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("soon"), "{err}");
}

/// A token for `user` signed with the test secret, with `claim` set `ahead` seconds
/// from now (and `exp` an hour away).
fn token_with(user: &str, claim: &str, ahead: u64) -> String {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user));
    claims.insert("exp".into(), json!(now_secs() + 3600));
    claims.insert(claim.into(), json!(now_secs() + ahead));
    auth(SECRET).sign(&claims)
}

const HOUR: u64 = 3600;
const YEAR: u64 = 365 * 86_400;

#[test]
fn tokens_made_for_later_are_refused_in_every_dialect_beyond_the_leeway() {
    let server = server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        c.token_leeway = std::time::Duration::from_secs(30);
    });
    let addr = server.local_addr();
    let later = [("nbf", HOUR), ("iat", YEAR)];
    let within = [("nbf", 20), ("iat", 20)];

    // turntable v1: `auth.invalid_token`, and the connection may try again.
    let mut c = Client::connect(addr, "/turntable");
    c.recv();
    for (claim, ahead) in later {
        let reply = idme(&mut c, json!({"token": token_with("1:1", claim, ahead)}));
        assert_eq!(error_code(&reply), "auth.invalid_token", "{claim}");
    }
    for (claim, ahead) in within {
        let mut c = Client::connect(addr, "/turntable");
        c.recv();
        let reply = idme(&mut c, json!({"token": token_with("1:1", claim, ahead)}));
        assert_eq!(reply["command"], "identified", "{claim}: {reply}");
    }

    // SocketCluster: the handshake says AuthTokenInvalidError and not authenticated.
    for (claim, ahead) in later {
        let data = json!({"authToken": token_with("bob", claim, ahead)});
        let (_c, reply) = common::socketcluster::handshaken_on(addr, 0, data);
        assert_eq!(reply["isAuthenticated"], false, "{claim}");
        assert_eq!(
            reply["authError"]["name"], "AuthTokenInvalidError",
            "{claim}"
        );
    }
    for (claim, ahead) in within {
        let data = json!({"authToken": token_with("bob", claim, ahead)});
        let (_c, reply) = common::socketcluster::handshaken_on(addr, 1, data);
        assert_eq!(reply["isAuthenticated"], true, "{claim}: {reply}");
    }

    // World: `auth.denied`.
    for (claim, ahead) in later {
        let mut c = Client::connect(addr, "/ws/world/default");
        c.send(json!(["authenticate", {"token": token_with("ann", claim, ahead)}]));
        assert_eq!(
            c.recv(),
            json!(["error", {"code": "auth.denied"}]),
            "{claim}"
        );
    }
    for (claim, ahead) in within {
        let mut c = Client::connect(addr, "/ws/world/default");
        c.send(json!(["authenticate", {"token": token_with("ann", claim, ahead)}]));
        assert_eq!(c.recv()[0], "authenticated", "{claim}");
    }
}

#[test]
fn the_leeway_is_a_setting() {
    let server = server_with(|c| {
        c.auth_secret = Some(Secret::new(SECRET.into()).unwrap());
        c.token_leeway = std::time::Duration::ZERO;
    });
    let mut c = Client::connect(server.local_addr(), "/turntable");
    c.recv();
    let reply = idme(&mut c, json!({"token": token_with("1:1", "nbf", 20)}));
    assert_eq!(error_code(&reply), "auth.invalid_token");
}
