//! The backend bus's commands: what a backend PUBLISHes to `NAME:api`, as
//! `{"method": "publish", "params": {...}}`. Every node hears each command; the one node
//! that acts is the owner node of the id it names (see [`api::command_owner_id`]), or
//! node 0 for one that names none, or when that node is unreachable the next reachable
//! node after it. It runs the HTTP API's own function for the method.

use std::rc::Rc;

use serde_json::Value;

use super::api;
use super::shard::Shard;
use crate::engine::NodeId;

/// Carries out one command from `NAME:api` if this node is the one to act; a refusal is
/// counted and logged, never answered (the bus has no replies).
pub async fn carry_out(shard: Rc<Shard>, payload: Vec<u8>) {
    let Some(cluster) = shard.cluster.clone() else {
        return;
    };
    let parsed = parse(&payload);
    let owner_id = parsed
        .as_ref()
        .ok()
        .and_then(|(method, params)| api::command_owner_id(method, params));
    if acting_node(&shard, owner_id.as_deref()) != cluster.settings().node {
        return;
    }
    let result = match parsed {
        Ok((method, params)) => api::command(&shard, &method, params)
            .await
            .map_err(|refusal| refusal.to_string()),
        Err(malformed) => Err(malformed.to_string()),
    };
    match result {
        Ok(answer) => {
            tracing::debug!(%answer, "carried out a backend bus command");
            cluster.count_bus_command(None);
        }
        Err(why) => cluster.count_bus_command(Some(&why)),
    }
}

/// The method and params of a command (`params` may be left out when empty).
fn parse(payload: &[u8]) -> Result<(String, serde_json::Map<String, Value>), MalformedCommand> {
    let Ok(Value::Object(mut command)) = serde_json::from_slice(payload) else {
        return Err(MalformedCommand::NotAnObject);
    };
    let Some(Value::String(method)) = command.remove("method") else {
        return Err(MalformedCommand::MethodNotAString);
    };
    match command.remove("params") {
        None => Ok((method, serde_json::Map::new())),
        Some(Value::Object(params)) => Ok((method, params)),
        Some(_) => Err(MalformedCommand::ParamsNotAnObject { method }),
    }
}

/// A bus command that is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum MalformedCommand {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("method must be a string")]
    MethodNotAString,
    #[error("{method}: params must be an object")]
    ParamsNotAnObject { method: String },
}

/// The node that carries out a command about `id`: its owner node, or node 0 without
/// an id, or the next node after that this node can reach.
fn acting_node(shard: &Shard, id: Option<&str>) -> NodeId {
    let placement = shard.settings.placement;
    let first = id.map_or(0, |id| placement.owner(id).node);
    let engine = shard.engine.borrow();
    (0..placement.nodes())
        .map(|i| (first + i) % placement.nodes())
        .find(|&node| engine.node_reachable(node))
        .unwrap_or(first)
}
