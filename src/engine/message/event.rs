//! What the engine tells connections ([`Event`]) and the backend ([`Notice`]).

use serde::{Deserialize, Serialize};

use super::ids::{ConnAddr, ErrorCode, Receipt, Status};
use crate::engine::ot::Delta;

/// A chat room member as the room sees them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomMember {
    pub id: Box<str>,
    /// The whole user object as JSON: id, name and any profile claims.
    pub profile: Box<str>,
    /// `{"id":..,"name":..}` as JSON, what messages carry.
    pub brief: Box<str>,
}

/// A change in who is in a chat room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomChange {
    Join,
    Idle,
    Back,
}

/// What the application's backend may want to hear of (webhooks), told by the owner
/// where it happens: once per change, whichever shard the connections are on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A channel got its first member or subscriber.
    ChannelOccupied { channel: Box<str> },
    /// A channel's last member or subscriber left.
    ChannelVacated { channel: Box<str> },
    /// A user became a member of a channel.
    MemberAdded { channel: Box<str>, user: Box<str> },
    /// A user stopped being a member of a channel.
    MemberRemoved { channel: Box<str>, user: Box<str> },
    /// A user's first connection opened.
    UserOnline { user: Box<str> },
    /// A user's last connection closed.
    UserOffline { user: Box<str> },
    /// Activity on a channel the `tap` setting selects, for the backend bus; told by
    /// the owner in channel order.
    Tap { channel: Box<str>, event: TapEvent },
}

/// What a tapped channel's owner saw happen (see [`Notice::Tap`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapEvent {
    /// An accepted publication, as the owner stamped it (`from` empty for the server).
    Message {
        seq: u64,
        from: Box<str>,
        data: Box<str>,
    },
    /// A user became a member.
    Join { user: Box<str> },
    /// A user stopped being a member.
    Leave { user: Box<str> },
}

/// What the engine tells local connections. Encoded once per dialect per shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The connection is now this user.
    Identified { user: Box<str> },
    /// Statuses of watched users: the snapshot after a watch, or a change.
    Presence { statuses: Vec<(Box<str>, Status)> },
    /// The caller's own status was set.
    StatusSet { status: Status },
    /// The connection joined `channel`, whose members are now `members`.
    Joined {
        channel: Box<str>,
        members: Vec<Box<str>>,
        receipt: Receipt,
    },
    /// The connection left `channel`.
    Left { channel: Box<str>, receipt: Receipt },
    /// The connection receives `channel`'s publications from now on.
    Subscribed { channel: Box<str>, receipt: Receipt },
    /// The connection no longer receives `channel`'s publications.
    Unsubscribed { channel: Box<str>, receipt: Receipt },
    /// The channel took a publication that asked for a receipt (its deliveries to the
    /// publisher's shard precede this).
    Published {
        channel: Box<str>,
        receipt: Box<str>,
    },
    /// Another user became a member of a channel the connection is in.
    MemberJoined { channel: Box<str>, user: Box<str> },
    /// A user stopped being a member of a channel the connection is in.
    MemberLeft { channel: Box<str>, user: Box<str> },
    /// `from` invites the user to `channel`.
    Invite { channel: Box<str>, from: Box<str> },
    /// A publication, with its per-channel sequence number. `from` is the publisher's
    /// user id (empty for an anonymous publisher); `skip` is a publisher that does not
    /// want its own publication.
    Message {
        channel: Box<str>,
        seq: u64,
        from: Box<str>,
        data: Box<str>,
        skip: Option<ConnAddr>,
    },
    /// A command was refused.
    Error { code: ErrorCode, receipt: Receipt },
    /// The application's backend refused a command (a hook's answer), in its words.
    Refused {
        code: Box<str>,
        message: Box<str>,
        receipt: Receipt,
    },
    /// The application's backend answered a call a dialect made to it (an RPC), with
    /// this JSON.
    Answered { data: Box<str>, receipt: Receipt },
    /// The user opened more connections than allowed and this, the oldest, must go.
    /// The network layer closes a connection after queueing this event.
    Replaced,
    /// The members of `channel` (an answer to [`ChannelCommand::Members`]).
    Members {
        channel: Box<str>,
        members: Vec<Box<str>>,
        receipt: Receipt,
    },
    /// The document's text at `revision`, for a connection that opened it.
    DocumentOpened {
        document: Box<str>,
        text: Box<str>,
        revision: u64,
        receipt: Receipt,
    },
    /// The connection's edit became `revision` (edits by others that precede it were
    /// delivered first).
    EditAccepted {
        document: Box<str>,
        revision: u64,
        receipt: Receipt,
    },
    /// `user` edited a document the connection has open: `delta`, transformed to apply
    /// to the previous revision, makes `revision`. `skip` is the editor's connection.
    DocumentEdited {
        document: Box<str>,
        revision: u64,
        user: Box<str>,
        delta: Delta,
        skip: Option<ConnAddr>,
    },
    /// The server asks the client to reload (HTTP API `POST /api/clients/reload`).
    Reload,
    /// The server took the connection out of `channel` (HTTP API
    /// `POST /api/channels/{channel}/kick`).
    Kicked {
        channel: Box<str>,
        message: Box<str>,
    },
    /// The server ends the connection (HTTP API `POST /api/users/{id}/disconnect`).
    /// The network layer closes a connection after queueing this event.
    Disconnected,
    /// The connection is in the room as `profile` (a JSON user object).
    RoomConnected { profile: Box<str> },
    /// Everyone in the room (JSON user objects), sent to a newcomer.
    RoomUsers { profiles: Vec<Box<str>> },
    /// A member joined, went idle or came back.
    RoomPresence {
        change: RoomChange,
        profile: Box<str>,
        time: u64,
    },
    /// A member left the room.
    RoomLeave { user: Box<str>, time: u64 },
    /// A chat message (`brief` is the author as JSON).
    RoomMessage {
        id: u64,
        content: Box<str>,
        brief: Box<str>,
        time: u64,
        private: bool,
        update: bool,
    },
}

impl Event {
    /// The connection a channel event is not for: its own publisher or editor.
    pub fn skipped(&self) -> Option<ConnAddr> {
        match self {
            Event::Message { skip, .. } | Event::DocumentEdited { skip, .. } => *skip,
            _ => None,
        }
    }

    /// A publication to a channel's or chat room's members, or an edit of a shared
    /// document: what `/metrics` times from its arrival to its delivery.
    pub fn is_publication(&self) -> bool {
        matches!(
            self,
            Event::Message { .. } | Event::RoomMessage { .. } | Event::DocumentEdited { .. }
        )
    }
}
