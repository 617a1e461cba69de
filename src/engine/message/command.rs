//! What a local connection asks of the engine ([`Command`]), by the part of the
//! engine that handles it.

use super::event::RoomMember;
use super::ids::{PublishMode, Receipt, Status};
use crate::engine::ot::Delta;

/// What a local connection asks of the engine, already parsed and validated by its
/// dialect. Commands are grouped by the part of the engine that handles them, so each
/// handler takes exactly its own commands.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Bind the connection to a user id; the user is online while any connection is.
    Identify { user: Box<str> },
    /// The identified user's profile, a JSON object with `id` (what the HTTP API's
    /// presence shows).
    Profile(Box<str>),
    /// The connection gained (true) or dropped (false) a credential that names no
    /// engine identity (SocketCluster's token): namespaces that take authenticated
    /// connections take it while it holds one.
    Credentialed(bool),
    /// What only an identified connection may ask.
    User(UserCommand),
    /// Channels: joins, subscriptions and publications.
    Channel(ChannelCommand),
    /// The connection's chat room.
    Room(RoomCommand),
    /// Collaborative documents.
    Document(DocumentCommand),
}

/// The commands of an identified connection (refused with
/// [`ErrorCode::NotIdentified`](super::ErrorCode::NotIdentified) before identification).
#[derive(Clone, Debug, PartialEq)]
pub enum UserCommand {
    /// Change the caller's status (online or busy).
    SetStatus(Status),
    /// Watch these users' presence: one snapshot now, then every change.
    Watch(Vec<Box<str>>),
    /// Stop watching these users.
    Unwatch(Vec<Box<str>>),
    /// Count this connection against its user's limit of `max` connections; the
    /// user's oldest claimed connection (by `since`, ms since the epoch when it
    /// claimed) is replaced when over it.
    Claim { max: usize, since: u64 },
}

/// Channel commands.
#[derive(Clone, Debug, PartialEq)]
pub enum ChannelCommand {
    /// Join (creating if needed) a channel and invite users to it.
    Join {
        channel: Box<str>,
        invite: Vec<Box<str>>,
        receipt: Receipt,
    },
    /// Leave a channel.
    Leave { channel: Box<str>, receipt: Receipt },
    /// Receive a channel's publications without being a member (pub/sub dialects; no
    /// identity needed). Subscribing again is acknowledged and changes nothing.
    Subscribe { channel: Box<str>, receipt: Receipt },
    /// Stop receiving a channel's publications.
    Unsubscribe { channel: Box<str>, receipt: Receipt },
    /// Publish a JSON payload to every member and subscriber of a channel, in the
    /// channel's order.
    Publish {
        channel: Box<str>,
        data: Box<str>,
        mode: PublishMode,
    },
    /// The members of a channel.
    Members { channel: Box<str>, receipt: Receipt },
}

/// Chat room commands (one chat room per connection).
#[derive(Clone, Debug, PartialEq)]
pub enum RoomCommand {
    /// Enter a chat room as `member`.
    Connect { room: Box<str>, member: RoomMember },
    /// Say something in the connection's room: to everyone, to one user (`to`), or as a
    /// new version of an earlier message (`update`).
    Say {
        content: Box<str>,
        to: Option<Box<str>>,
        update: Option<u64>,
    },
    /// Leave the room now (no idle grace).
    Close,
}

/// Collaborative document commands.
#[derive(Clone, Debug, PartialEq)]
pub enum DocumentCommand {
    /// Open a collaborative document: its text and revision now, then every edit the
    /// document accepts from others. Closing it is [`ChannelCommand::Unsubscribe`].
    Open {
        document: Box<str>,
        receipt: Receipt,
    },
    /// Edit an open document; `base` is the revision the delta was made against.
    Edit {
        document: Box<str>,
        base: u64,
        delta: Delta,
        receipt: Receipt,
    },
}
