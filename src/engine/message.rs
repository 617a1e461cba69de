//! The vocabulary between the layers: what a connection asks of the engine
//! ([`Command`]), what the engine tells connections ([`Event`]) and what shards tell
//! each other ([`ShardMsg`]). None of it knows any dialect's JSON shape.

use serde::{Deserialize, Serialize};

use super::lobby::GameInfo;
use super::ot::{Delta, OtError};
use super::ownership::ShardId;

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
/// [`ErrorCode::NotIdentified`] before identification).
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
