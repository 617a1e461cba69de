//! The names the layers share: connections, statuses, refusal codes, receipts.

use serde::{Deserialize, Serialize};

use crate::engine::ot::OtError;
use crate::engine::ownership::ShardId;

/// A connection's id on its own shard, assigned by the network layer (slab key plus a
/// generation, so a reused slot never receives a stale reply).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnId(pub u64);

/// A connection anywhere in the cluster: the shard that holds it (its cluster index,
/// `node * N + shard`) and its id there.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnAddr {
    pub shard: ShardId,
    pub conn: ConnId,
}

/// A user's presence as watchers see it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Online,
    Busy,
    Offline,
}

impl Status {
    /// The wire name every dialect uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Busy => "busy",
            Status::Offline => "offline",
        }
    }
}

/// Why the engine refused a command; dialects map these to their own error shapes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// A command that needs an identity arrived before identification.
    NotIdentified,
    /// A second identification on the same connection.
    AlreadyIdentified,
    /// A publish or leave on a channel the connection has not joined (a game's channel
    /// takes publishes from its players only, whatever the dialect).
    NotMember,
    /// A connection tried to watch more users than the configured limit.
    TooManyWatches,
    /// A connection tried to join more channels than the configured limit.
    TooManyChannels,
    /// A room command from a connection that is not in a room.
    NotInRoom,
    /// A second room connect on the same connection.
    AlreadyInRoom,
    /// A private message to someone not online in the room.
    UnknownRecipient,
    /// An update of a message someone else wrote.
    NotYourMessage,
    /// An update of a message the room does not know (never sent, or too old).
    UnknownMessage,
    /// An unsubscribe from a channel the connection is not subscribed to.
    NotSubscribed,
    /// A join of `game:<id>` when no such game is open.
    UnknownGame,
    /// A join of a game that has as many players as it allows.
    GameFull,
    /// A client publish to a channel only the server publishes to (the lobby).
    ServerChannel,
    /// A subscription, publication or member list the channel's namespace does not
    /// allow this connection.
    Forbidden,
    /// A join of a channel that has as many members as its namespace allows.
    ChannelFull,
    /// A join, subscription or publication on a document's channel (reached only by
    /// opening the document).
    DocumentChannel,
    /// An edit of a document the connection has not opened.
    DocumentNotOpen,
    /// A new document on a shard that holds as many as it may.
    TooManyDocuments,
    /// An edit the document refused (stale or future revision, out of range, too large).
    EditRefused(OtError),
    /// The owner of what the command is about is on a node that is down.
    OwnerUnavailable,
    /// The owner of what the command is about is on another node, and the cluster
    /// transport is down.
    ClusterUnavailable,
}

/// A request id of an RPC dialect (SocketCluster's `cid`, World's correlation id) as
/// raw JSON, echoed in the answer so the client can match it; `None` when the client
/// expects no answer. The engine never looks inside.
pub type Receipt = Option<Box<str>>;

/// How a publication is delivered and answered; who may publish is the channel's
/// namespace's rule (see [`super::namespace`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishMode {
    /// The publisher's own connection receives the publication too.
    pub echo: bool,
    /// Answer [`Event::Published`] once the channel has taken the publication.
    pub receipt: Receipt,
}
