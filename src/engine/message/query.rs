//! The HTTP API's questions to each shard ([`Query`]) and their answers.

use serde::{Deserialize, Serialize};

use super::ids::Status;
use crate::engine::lobby::GameInfo;

/// A question or order from the HTTP API, for one shard's engine (see
/// `engine::queries`); every shard answers with an [`Answer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Query {
    /// To every shard: the user's local connections, and its status from its owner.
    User { user: Box<str> },
    /// To every shard: close the user's local connections.
    Disconnect { user: Box<str> },
    /// To every shard: tell every local connection to reload.
    Reload,
    /// To every shard: take the local connections of `user` (or all of them) out of
    /// `channel`, telling each why.
    Kick {
        channel: Box<str>,
        user: Option<Box<str>>,
        message: Box<str>,
    },
    /// To the channel's owner: its members.
    Members { channel: Box<str> },
    /// To every shard: the profiles of these users it knows.
    Profiles { users: Vec<Box<str>> },
    /// To the channel's owner: publish `data` (JSON) with no publisher.
    Publish { channel: Box<str>, data: Box<str> },
    /// To the chat room's owner: post `content` as the server.
    RoomPost { room: Box<str>, content: Box<str> },
    /// To the owner of `game:<id>`: open a game.
    CreateGame(GameInfo),
    /// To every shard: the games it owns.
    ListGames,
    /// To the owner of `game:<id>`: close the game.
    CloseGame { id: Box<str> },
}

/// One shard's answer to a [`Query`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    /// How many local connections the query found (or closed, or told to reload), and
    /// the user's status when this shard owns the user.
    Count {
        connections: usize,
        status: Option<Status>,
    },
    /// A channel's members (empty if the channel does not exist).
    Members(Vec<Box<str>>),
    /// Users' profiles (JSON objects), for those a shard knows.
    Profiles(Vec<(Box<str>, Box<str>)>),
    /// The publication's sequence number; `None` if the channel had no receivers.
    Published { seq: Option<u64> },
    /// Games created, listed or closed (empty: the id was taken, or unknown).
    Games(Vec<GameInfo>),
}
