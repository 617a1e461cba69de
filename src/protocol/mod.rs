//! Client dialects: each file turns its clients' frames into engine commands and engine
//! events into its frames. The only place that knows any dialect's JSON shapes.

pub mod delta;
pub mod json;
pub mod socketcluster;
pub mod sockjs;
pub mod talker;
pub mod turntable;
pub mod world;

use crate::engine::Command;

/// What handling a client message asks of the connection, for dialects whose
/// sessions answer some messages themselves (SocketCluster, World).
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Give the engine this command.
    Engine(Command),
    /// Send this text to this connection only.
    Send(Vec<u8>),
    /// Close the connection with this code and no reason.
    Close(u16),
}

/// The texts a session sent, parsed: what the dialects' unit tests assert on.
#[cfg(test)]
fn sent(actions: &[Action]) -> Vec<serde_json::Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(bytes) => Some(serde_json::from_slice(bytes).unwrap()),
            _ => None,
        })
        .collect()
}
