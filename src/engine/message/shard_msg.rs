//! What shards tell each other ([`ShardMsg`]), and what a shard re-sends an owner
//! that was out of reach ([`Resync`]).

use serde::{Deserialize, Serialize};

use super::event::{Event, RoomMember};
use super::ids::{ConnAddr, ConnId, ErrorCode, PublishMode, Receipt, Status};
use super::query::{Answer, Query};
use crate::engine::ot::Delta;
use crate::engine::ownership::ShardId;

/// What one shard tells another over the mesh. Messages to a user's owner come first,
/// then those to a channel's owner (grouped, one group per handler), then those back to
/// the shards holding connections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShardMsg {
    /// `from` now holds at least one connection of `user`; `conn` is the one that
    /// announced it, to be named in the `UserCounted` reply.
    UserUp {
        user: Box<str>,
        from: ShardId,
        conn: ConnId,
    },
    /// `from` no longer holds any connection of `user`.
    UserDown { user: Box<str>, from: ShardId },
    /// The user chose a status.
    SetStatus { user: Box<str>, status: Status },
    /// `from` has local watchers of `user`: send it the status now and on every change.
    Watch { user: Box<str>, from: ShardId },
    /// `from` has no more watchers of `user`.
    Unwatch { user: Box<str>, from: ShardId },
    /// Deliver `event` to every connection of `user`, wherever they are.
    ToUser { user: Box<str>, event: Event },
    /// Connection limits, to the user's owner.
    Claim(ClaimMsg),

    /// To a channel's owner.
    Channel(ChannelMsg),
    /// To a document's owner (the owner of its channel).
    Document(DocumentMsg),

    /// The owner counted this shard's connections of `user` (the answer to `UserUp`).
    UserCounted { user: Box<str>, conn: ConnId },
    /// A watched user's status (the answer to `Watch`, then every change).
    StatusOf { user: Box<str>, status: Status },
    /// Deliver `event` to this shard's connections of `user`.
    ToLocalUser { user: Box<str>, event: Event },
    /// The channel owner accepted a join; `members` is the roster.
    Joined {
        channel: Box<str>,
        conn: ConnId,
        members: Vec<Box<str>>,
        receipt: Receipt,
    },
    /// The channel owner refused a join (a game that is unknown or full) or a document
    /// open (no room for another document): the connection's pending tie goes.
    TieRefused {
        channel: Box<str>,
        conn: ConnId,
        code: ErrorCode,
        receipt: Receipt,
    },
    /// The channel owner counted a subscription.
    Subscribed {
        channel: Box<str>,
        conn: ConnId,
        receipt: Receipt,
    },
    /// The document owner's answer to [`DocumentMsg::Open`]: the connection now listens
    /// to the document's channel, and this is the text it starts from.
    DocumentOpened {
        document: Box<str>,
        conn: ConnId,
        text: Box<str>,
        revision: u64,
        receipt: Receipt,
    },
    /// Deliver `event` to this shard's members of `channel`.
    ToChannel { channel: Box<str>, event: Event },
    /// Deliver `event` to one connection of this shard.
    ToConn { conn: ConnId, event: Event },
    /// An HTTP API question for this shard; the answer goes back to `from`.
    Query {
        from: ShardId,
        ticket: u64,
        query: Query,
    },
    /// This shard's answer to the query `ticket`.
    Answer { ticket: u64, answer: Answer },

    /// A connection enters a chat room (to the room's owner).
    RoomEnter {
        room: Box<str>,
        member: RoomMember,
        conn: ConnAddr,
    },
    /// A connection is out of its room: `leaving` when it said so, else it dropped.
    RoomExit {
        room: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
        leaving: bool,
    },
    /// A connection says something in its room.
    RoomSay {
        room: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
        content: Box<str>,
        to: Option<Box<str>>,
        update: Option<u64>,
    },
    /// Deliver `event` to this shard's connections in `room`.
    ToRoom { room: Box<str>, event: Event },

    /// A re-announcement after a node or the cluster transport came back (see
    /// `engine::cluster`), to the owner of what it names.
    Resync(Resync),
}

/// What one shard holds of one owner's objects, sent when the owner's node is reachable
/// again. Each message is absolute: the owner replaces what it had from `from` for that
/// object, so a repeat, or one to an owner that never lost its state, changes nothing.
/// A batch ends with [`Resync::Done`]; the owner then drops what `from` contributed to
/// objects the batch did not name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Resync {
    /// `from` holds connections of `user` (`conn` announced them, as in `UserUp`) or
    /// none (`None`), and watches it or not; `status` is the last one its connections
    /// set, for an owner that has no record of the user.
    User {
        user: Box<str>,
        from: ShardId,
        conn: Option<ConnId>,
        status: Option<Status>,
        watching: bool,
    },
    /// Every connection of `from` joined or subscribed to `channel` (documents too).
    Channel {
        channel: Box<str>,
        from: ShardId,
        ties: Vec<ResyncTie>,
    },
    /// Every connection of `from` in chat room `room`.
    Room {
        room: Box<str>,
        from: ShardId,
        seats: Vec<ResyncSeat>,
    },
    /// Every claimed connection of `user` on `from`, with when it claimed.
    Claims {
        user: Box<str>,
        from: ShardId,
        conns: Vec<(ConnId, u64)>,
    },
    /// `from` has re-announced everything it holds of this shard's objects.
    Done { from: ShardId },
    /// Re-announce to `from` what this shard holds of its objects.
    Ask { from: ShardId },
}

impl Resync {
    /// The shard that sent it.
    pub fn from(&self) -> ShardId {
        match self {
            Resync::User { from, .. }
            | Resync::Channel { from, .. }
            | Resync::Room { from, .. }
            | Resync::Claims { from, .. }
            | Resync::Done { from }
            | Resync::Ask { from } => *from,
        }
    }
}

/// One connection's join or subscription in a [`Resync::Channel`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResyncTie {
    pub conn: ConnId,
    /// The connection's user (empty if it has none).
    pub user: Box<str>,
    /// A member rather than a subscriber.
    pub member: bool,
}

/// One connection's place in a [`Resync::Room`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResyncSeat {
    pub conn: ConnId,
    pub member: RoomMember,
    /// The room's owner had told the connection it is in (else its answer is still
    /// due).
    pub seated: bool,
}

/// Connection limits, to a user's owner (see `engine::claims`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClaimMsg {
    /// A connection of `user` counts against a limit of `max`, since `since` (ms
    /// since the epoch, by its node's clock).
    Claim {
        user: Box<str>,
        conn: ConnAddr,
        max: usize,
        since: u64,
    },
    /// A claimed connection is gone.
    Release { user: Box<str>, conn: ConnAddr },
}

/// What a channel's owner is asked; every message names its channel (see
/// [`ChannelMsg::channel`]), which picks the owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChannelMsg {
    /// A connection joins a channel, inviting others.
    Join {
        channel: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
        invite: Vec<Box<str>>,
        receipt: Receipt,
    },
    /// A connection leaves a channel.
    Leave {
        channel: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
    },
    /// A connection subscribes to a channel.
    Subscribe {
        channel: Box<str>,
        conn: ConnAddr,
        receipt: Receipt,
    },
    /// A connection unsubscribes from a channel.
    Unsubscribe { channel: Box<str>, conn: ConnAddr },
    /// A connection publishes to a channel.
    Publish {
        channel: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
        data: Box<str>,
        mode: PublishMode,
    },
    /// Publish `data` with no publisher on the channel: lobby news.
    Announce { channel: Box<str>, data: Box<str> },
    /// Who is in a channel.
    Members {
        channel: Box<str>,
        conn: ConnAddr,
        receipt: Receipt,
    },
}

impl ChannelMsg {
    /// The channel the message is about: its owner is the message's destination.
    pub fn channel(&self) -> &str {
        match self {
            ChannelMsg::Join { channel, .. }
            | ChannelMsg::Leave { channel, .. }
            | ChannelMsg::Subscribe { channel, .. }
            | ChannelMsg::Unsubscribe { channel, .. }
            | ChannelMsg::Publish { channel, .. }
            | ChannelMsg::Announce { channel, .. }
            | ChannelMsg::Members { channel, .. } => channel,
        }
    }
}

/// What a document's owner is asked (see `engine::documents`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DocumentMsg {
    /// A connection opens a document.
    Open {
        document: Box<str>,
        /// Who opens it: a new document counts against this user's quotas.
        user: Box<str>,
        conn: ConnAddr,
        receipt: Receipt,
    },
    /// A connection edits a document.
    Edit {
        document: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
        base: u64,
        delta: Delta,
        receipt: Receipt,
    },
}

impl DocumentMsg {
    /// The document the message is about: its owner is the message's destination.
    pub fn document(&self) -> &str {
        match self {
            DocumentMsg::Open { document, .. } | DocumentMsg::Edit { document, .. } => document,
        }
    }
}

/// Gives `value` to each of `targets`: a clone to each but the last, which takes
/// `value` itself, so a message for N receivers is copied N - 1 times.
pub fn hand_out<X, T: Clone>(
    targets: impl IntoIterator<Item = X>,
    value: T,
    mut give: impl FnMut(X, T),
) {
    let mut targets = targets.into_iter().peekable();
    while let Some(target) = targets.next() {
        if targets.peek().is_none() {
            give(target, value);
            return;
        }
        give(target, value.clone());
    }
}
