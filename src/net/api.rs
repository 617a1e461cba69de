//! The HTTP API for application servers: JSON over `/api/...`, authenticated with an
//! API key (`Authorization: apikey KEY`). Any shard can serve any request: what it does
//! not know it asks of the shards that do (see `runtime::queries`), so every shard gives
//! the same answer.
//!
//! Errors are `{"error":{"code","message"}}` with the status that fits: 400 malformed
//! body, 401 missing or wrong key, 403 API closed (no key configured), 404 unknown
//! path, 405 wrong method, 411/413 body without length or too large (refused from the
//! head, see `http::api_request`), 415 a body that is not JSON, 503 a shard did not
//! answer in time.

use std::time::Instant;

use serde_json::{Value, json};

use super::http::{self, ApiRequest};
use super::keys;
use super::shard::Shard;
use crate::engine::lobby::{GAME_PREFIX, GameInfo};
use crate::engine::{Answer, Query, ShardId, Status, is_document_channel};

/// A refused request (or backend bus command).
#[derive(Debug)]
pub struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
    /// What a 405's `Allow` header lists.
    allow: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
        allow: "",
    }
}

/// The whole HTTP response to an API request with its body (`X-Turntable-Shard` says
/// which shard answered).
pub async fn answer(shard: &Shard, request: &ApiRequest, body: &[u8]) -> Vec<u8> {
    let (status, extra, body) = match handle(shard, request, body).await {
        Ok(value) => (200, None, value.to_string().into_bytes()),
        Err(r) => {
            let extra = match r.status {
                401 => Some(("WWW-Authenticate", "apikey")),
                405 => Some(("Allow", r.allow)),
                _ => None,
            };
            (r.status, extra, http::api_error(r.code, &r.message))
        }
    };
    let shard_id = shard.id.to_string();
    let mut headers = vec![("X-Turntable-Shard", shard_id.as_str())];
    headers.extend(extra);
    http::response(
        status,
        &headers,
        "application/json",
        &body,
        request.keep_alive,
    )
}

async fn handle(shard: &Shard, request: &ApiRequest, body: &[u8]) -> Result<Value, Refusal> {
    authorize(shard, request.authorization.as_deref())?;
    let segments = decoded_segments(&request.path)
        .ok_or_else(|| refuse(400, "api.malformed", "invalid percent-encoding in the path"))?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some(endpoint) = Endpoint::parse(&segments) else {
        return Err(refuse(
            404,
            "api.not_found",
            format!("no endpoint {}", request.path),
        ));
    };
    let method = request.method.as_str();
    if endpoint.methods().split(", ").all(|m| m != method) {
        return Err(Refusal {
            allow: endpoint.methods(),
            ..refuse(
                405,
                "api.method_not_allowed",
                format!("{method} is not allowed here"),
            )
        });
    }
    match endpoint {
        Endpoint::Stats => Ok(shard.figures.stats()),
        Endpoint::Publish => publish(shard, json_body(request, body)?).await,
        Endpoint::Presence(channel) => presence(shard, channel).await,
        Endpoint::User(user) => user_info(shard, user).await,
        Endpoint::Disconnect(user) => disconnect(shard, user).await,
        Endpoint::Kick(channel) => kick(shard, channel, json_body(request, body)?).await,
        Endpoint::Games if method == "GET" => list_games(shard).await,
        Endpoint::Games => create_game(shard, json_body(request, body)?).await,
        Endpoint::Game(game) => close_game(shard, game).await,
        Endpoint::Reload => reload(shard).await,
    }
}

/// Carries out a command of the backend bus: the API's orders by name, each with its
/// request body as `params` (and the ids its path names as `user`, `channel`, `id`).
pub async fn command(
    shard: &Shard,
    method: &str,
    params: serde_json::Map<String, Value>,
) -> Result<Value, Refusal> {
    match method {
        "publish" => publish(shard, params).await,
        "disconnect" => disconnect(shard, id(params.get("user"), "user")?).await,
        "kick" => kick(shard, id(params.get("channel"), "channel")?, params.clone()).await,
        "reload" => reload(shard).await,
        "create_game" => create_game(shard, params).await,
        "close_game" => close_game(shard, id(params.get("id"), "id")?).await,
        _ => Err(refuse(
            404,
            "api.not_found",
            format!(
                "no method {method:?}: publish, disconnect, kick, reload, create_game or close_game"
            ),
        )),
    }
}

/// The id whose owner node carries a bus command out: the channel, room, user or game
/// it names; `None` for a command that names none (or not as a string).
pub fn command_owner_id(method: &str, params: &serde_json::Map<String, Value>) -> Option<String> {
    let param = |key: &str| params.get(key).and_then(Value::as_str);
    match method {
        "publish" => {
            param("channel").map(|c| c.strip_prefix(TALKER_PREFIX).unwrap_or(c).to_owned())
        }
        "disconnect" => param("user").map(str::to_owned),
        "kick" => param("channel").map(str::to_owned),
        "create_game" | "close_game" => param("id").map(|id| format!("{GAME_PREFIX}{id}")),
        _ => None,
    }
}

async fn disconnect(shard: &Shard, user: &str) -> Result<Value, Refusal> {
    let answers = ask_all(shard, Query::Disconnect { user: user.into() }).await?;
    Ok(json!({"id": user, "disconnected": count(&answers)}))
}

async fn reload(shard: &Shard) -> Result<Value, Refusal> {
    let answers = ask_all(shard, Query::Reload).await?;
    Ok(json!({"reloaded": count(&answers)}))
}

/// What an API path names (with the ids in it), whatever the method: the one table of
/// the API's routes, for answering a request and for `Allow`.
enum Endpoint<'a> {
    Stats,
    Publish,
    Presence(&'a str),
    User(&'a str),
    Disconnect(&'a str),
    Kick(&'a str),
    Games,
    Game(&'a str),
    Reload,
}

impl<'a> Endpoint<'a> {
    fn parse(segments: &[&'a str]) -> Option<Self> {
        Some(match *segments {
            ["stats"] => Endpoint::Stats,
            ["publish"] => Endpoint::Publish,
            ["channels", channel, "presence"] => Endpoint::Presence(channel),
            ["channels", channel, "kick"] => Endpoint::Kick(channel),
            ["users", user] => Endpoint::User(user),
            ["users", user, "disconnect"] => Endpoint::Disconnect(user),
            ["games"] => Endpoint::Games,
            ["games", game] => Endpoint::Game(game),
            ["clients", "reload"] => Endpoint::Reload,
            _ => return None,
        })
    }

    /// The methods it takes, as an `Allow` header lists them.
    fn methods(&self) -> &'static str {
        match self {
            Endpoint::Stats | Endpoint::Presence(_) | Endpoint::User(_) => "GET",
            Endpoint::Games => "GET, POST",
            Endpoint::Game(_) => "DELETE",
            Endpoint::Publish | Endpoint::Disconnect(_) | Endpoint::Kick(_) | Endpoint::Reload => {
                "POST"
            }
        }
    }
}

/// The segments of an API path after `/api`, percent-decoded; `None` if an escape is
/// invalid.
fn decoded_segments(path: &str) -> Option<Vec<String>> {
    path.strip_prefix("/api")
        .unwrap_or(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::percent_decode)
        .collect()
}

/// Checks the API key. Without one configured the API is closed (403), except in
/// development mode: no auth secret and a loopback address, where it is open.
fn authorize(shard: &Shard, authorization: Option<&str>) -> Result<(), Refusal> {
    let settings = &shard.settings;
    let Some(key) = settings.api_key.as_deref() else {
        if settings.api_open_without_key {
            return Ok(());
        }
        return Err(refuse(
            403,
            "api.disabled",
            "the HTTP API needs --api-key (or TURNTABLE_API_KEY)",
        ));
    };
    match keys::presented(authorization) {
        Some(given) if keys::constant_time_eq(given.as_bytes(), key.as_bytes()) => Ok(()),
        Some(_) => Err(refuse(401, "api.unauthorized", "wrong API key")),
        None => Err(refuse(
            401,
            "api.unauthorized",
            "send Authorization: apikey KEY",
        )),
    }
}

/// The request body as a JSON object; it must say it is JSON.
fn json_body(request: &ApiRequest, body: &[u8]) -> Result<serde_json::Map<String, Value>, Refusal> {
    let is_json = request.content_type.as_deref().is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        return Err(refuse(
            415,
            "api.unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(refuse(
            400,
            "api.malformed",
            "the body must be a JSON object",
        )),
        Err(e) => Err(refuse(
            400,
            "api.malformed",
            format!("the body is not JSON: {e}"),
        )),
    }
}

/// A World document's channel carries its edits to those who opened it: the API
/// neither publishes to it nor kicks from it.
fn refuse_document_channel(channel: &str) -> Result<(), Refusal> {
    if is_document_channel(channel) {
        return Err(refuse(
            403,
            "api.document_channel",
            "a document's channel carries its edits only",
        ));
    }
    Ok(())
}

/// A channel or user id from the request: 1 to 256 bytes.
fn id<'a>(value: Option<&'a Value>, what: &str) -> Result<&'a str, Refusal> {
    match value.and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 256 => Ok(s),
        _ => Err(refuse(
            400,
            "api.malformed",
            format!("{what} must be a string of 1 to 256 bytes"),
        )),
    }
}

async fn publish(shard: &Shard, body: serde_json::Map<String, Value>) -> Result<Value, Refusal> {
    let channel = id(body.get("channel"), "channel")?;
    refuse_document_channel(channel)?;
    let data = body
        .get("data")
        .ok_or_else(|| refuse(400, "api.malformed", "data is missing"))?;
    // `talker:<room>` posts in a Talker chat room: a string as it is, else its JSON.
    let (owner, query) = match channel.strip_prefix(TALKER_PREFIX) {
        Some(room) => {
            let content = data
                .as_str()
                .map_or_else(|| data.to_string(), str::to_owned);
            let query = Query::RoomPost {
                room: room.into(),
                content: content.into_boxed_str(),
            };
            (self::owner(shard, room), query)
        }
        None => {
            let query = Query::Publish {
                channel: channel.into(),
                data: data.to_string().into_boxed_str(),
            };
            (self::owner(shard, channel), query)
        }
    };
    match &ask_shards(shard, &[owner], query).await?[..] {
        [Answer::Published { seq }] => Ok(json!({"channel": channel, "seq": seq})),
        other => Err(unexpected("a publish", other)),
    }
}

/// Takes `user`'s connections (or everyone's) out of a channel: SocketCluster
/// subscribers get `#kickOut`, the others their dialect's notice.
async fn kick(
    shard: &Shard,
    channel: &str,
    body: serde_json::Map<String, Value>,
) -> Result<Value, Refusal> {
    refuse_document_channel(channel)?;
    let user = match body.get("user") {
        None => None,
        some => Some(id(some, "user")?),
    };
    let message = match body.get("message") {
        None => "",
        Some(Value::String(m)) => m.as_str(),
        Some(_) => return Err(refuse(400, "api.malformed", "message must be a string")),
    };
    let query = Query::Kick {
        channel: channel.into(),
        user: user.map(Box::from),
        message: message.into(),
    };
    let answers = ask_all(shard, query).await?;
    Ok(json!({"channel": channel, "kicked": count(&answers)}))
}

async fn list_games(shard: &Shard) -> Result<Value, Refusal> {
    let mut games: Vec<GameInfo> = ask_all(shard, Query::ListGames)
        .await?
        .into_iter()
        .flat_map(|a| match a {
            Answer::Games(games) => games,
            _ => Vec::new(),
        })
        .collect();
    games.sort_by(|a, b| a.id.cmp(&b.id));
    let games: Vec<Value> = games.iter().map(GameInfo::to_json).collect();
    Ok(json!({"games": games}))
}

async fn create_game(
    shard: &Shard,
    body: serde_json::Map<String, Value>,
) -> Result<Value, Refusal> {
    let name = id(body.get("name"), "name")?;
    let max_players = body
        .get("max_players")
        .and_then(Value::as_u64)
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| refuse(400, "api.malformed", "max_players must be 1 to 10000"))?;
    let id = match body.get("id") {
        None => new_game_id(),
        some => id(some, "id")?.to_owned(),
    };
    let info = GameInfo {
        id: id.clone().into_boxed_str(),
        name: name.into(),
        max_players: max_players as usize,
        metadata: body
            .get("metadata")
            .unwrap_or(&Value::Null)
            .to_string()
            .into_boxed_str(),
        players: 0,
    };
    let owner = owner(shard, &format!("{GAME_PREFIX}{id}"));
    match &ask_shards(shard, &[owner], Query::CreateGame(info)).await?[..] {
        [Answer::Games(created)] if created.len() == 1 => Ok(created[0].to_json()),
        _ => Err(refuse(
            409,
            "api.conflict",
            format!("a game {id:?} is already open"),
        )),
    }
}

async fn close_game(shard: &Shard, id: &str) -> Result<Value, Refusal> {
    let owner = owner(shard, &format!("{GAME_PREFIX}{id}"));
    let query = Query::CloseGame { id: id.into() };
    let closed = matches!(&ask_shards(shard, &[owner], query).await?[..], [Answer::Games(g)] if g.len() == 1);
    if !closed {
        return Err(refuse(
            404,
            "api.not_found",
            format!("no game {id:?} is open"),
        ));
    }
    let kick = Query::Kick {
        channel: format!("{GAME_PREFIX}{id}").into_boxed_str(),
        user: None,
        message: "game closed".into(),
    };
    let kicked = count(&ask_all(shard, kick).await?);
    Ok(json!({"id": id, "closed": true, "kicked": kicked}))
}

/// A fresh game id: 12 random letters and digits.
fn new_game_id() -> String {
    crate::engine::id::random_id()[..12].to_owned()
}

async fn presence(shard: &Shard, channel: &str) -> Result<Value, Refusal> {
    let owner = owner(shard, channel);
    let query = Query::Members {
        channel: channel.into(),
    };
    match &ask_shards(shard, &[owner], query).await?[..] {
        [Answer::Members(members)] => {
            let members = with_profiles(shard, members).await?;
            Ok(json!({"channel": channel, "members": members}))
        }
        other => Err(unexpected("a members query", other)),
    }
}

/// Each member as its profile (the dialect's user object), or `{"id"}` when no
/// dialect gave one.
async fn with_profiles(shard: &Shard, members: &[Box<str>]) -> Result<Vec<Value>, Refusal> {
    let query = Query::Profiles {
        users: members.to_vec(),
    };
    let mut profiles = ahash::AHashMap::new();
    for answer in ask_all(shard, query).await? {
        if let Answer::Profiles(found) = answer {
            profiles.extend(found);
        }
    }
    Ok(members
        .iter()
        .map(|m| {
            profiles
                .get(m)
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_else(|| json!({"id": &**m}))
        })
        .collect())
}

async fn user_info(shard: &Shard, user: &str) -> Result<Value, Refusal> {
    let answers = ask_all(shard, Query::User { user: user.into() }).await?;
    let status = answers
        .iter()
        .find_map(|a| match a {
            Answer::Count { status, .. } => *status,
            _ => None,
        })
        .unwrap_or(Status::Offline);
    Ok(json!({"id": user, "status": status.as_str(), "connections": count(&answers)}))
}

/// The prefix that makes a publication a message in a Talker chat room.
const TALKER_PREFIX: &str = "talker:";

fn owner(shard: &Shard, id: &str) -> ShardId {
    shard.engine.borrow().owner_of(id)
}

/// Asks every shard of every node this one can reach (a node that is gone has no
/// connections, and owns nothing anyone can use until it is back).
async fn ask_all(shard: &Shard, query: Query) -> Result<Vec<Answer>, Refusal> {
    let all: Vec<ShardId> = (0..shard.settings.placement.cluster_shards())
        .filter(|&target| reachable(shard, target))
        .collect();
    ask_shards(shard, &all, query).await
}

/// Whether shard `target` (a cluster index) can be asked now.
fn reachable(shard: &Shard, target: ShardId) -> bool {
    let node = shard.settings.placement.addr(target).node;
    shard.engine.borrow().node_reachable(node)
}

/// Asks the shards `to` and waits for all their answers; a shard on a node that cannot
/// be reached is refused at once (503 `cluster.owner_unavailable`), not waited for.
async fn ask_shards(shard: &Shard, to: &[ShardId], query: Query) -> Result<Vec<Answer>, Refusal> {
    if !to.iter().all(|&target| reachable(shard, target)) {
        return Err(refuse(
            503,
            "cluster.owner_unavailable",
            "the node that owns this is unreachable; try again soon",
        ));
    }
    shard
        .pending
        .ask(to.len(), |ticket| {
            // A publication through the API is timed from here.
            shard.handling(Some(Instant::now()), || {
                shard.with_engine(|engine, out| {
                    for &target in to {
                        engine.ask(target, ticket, query.clone(), out);
                    }
                })
            })
        })
        .await
        .ok_or_else(|| refuse(503, "api.unavailable", "a shard did not answer in time"))
}

/// The refusal of a request whose owner answered something its query does not ask
/// for (a bug between the API and the engine): logged, and a 500 for the caller.
fn unexpected(what: &str, answers: &[Answer]) -> Refusal {
    tracing::error!(?answers, "{what} got an answer of another kind");
    refuse(500, "api.internal", "the server answered out of turn")
}

/// The connections the shards' answers count.
fn count(answers: &[Answer]) -> usize {
    answers
        .iter()
        .map(|a| match a {
            Answer::Count { connections, .. } => *connections,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The methods a path takes, as a 405's `Allow` lists them; empty if it is unknown.
    fn allowed(path: &str) -> &'static str {
        let segments = decoded_segments(path).unwrap_or_default();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        Endpoint::parse(&segments).map_or("", |endpoint| endpoint.methods())
    }

    #[test]
    fn paths_know_their_methods() {
        assert_eq!(allowed("/api/users/ann"), "GET");
        assert_eq!(allowed("/api/users/ann/disconnect"), "POST");
        assert_eq!(allowed("/api/nothing"), "");
        assert_eq!(allowed("/api/api/stats"), "", "the prefix is stripped once");
        assert_eq!(
            allowed("/api/g%61mes"),
            "GET, POST",
            "decoded as the request is"
        );
    }
}
