//! The sans-IO engine: one per shard, holding that shard's users, watchers and channels.
//!
//! It takes [`Command`]s from local connections and [`ShardMsg`]s from other shards and
//! answers through an [`Outbox`]: events for local connections and messages for other
//! shards. It owns no socket, task or clock, so it is driven directly by unit tests with
//! several simulated shards (see `sim`), and by `runtime` in production.
//!
//! Ownership: a user's or channel's owner shard (see [`ownership`]) keeps its
//! authoritative state. A connection's own shard keeps what fan-out needs locally: which
//! connections watch a user, which joined a channel, which belong to a user.
//!
//! Nodes die, restart and lose the cluster transport; the runtime says so and the
//! engine forgets, refuses and re-announces accordingly (see `cluster`).

mod channel_owner;
pub mod channels;
mod claims;
mod cluster;
mod conn_map;
mod documents;
pub mod id;
pub mod lobby;
pub mod message;
pub mod namespace;
pub mod ot;
pub mod ot_client;
pub mod owned;
pub mod ownership;
pub mod presence;
mod pubsub;
mod queries;
pub mod rooms;
#[cfg(test)]
mod sim;
pub mod tap;
pub mod wire;

use std::collections::VecDeque;
use std::rc::Rc;

use ahash::{AHashMap, AHashSet};

use channels::{ChannelRecord, Memberships};
use claims::ClaimList;
use conn_map::ConnMap;
pub use documents::{DOCUMENT_PREFIX, document_channel, document_name, is_document_channel};
use lobby::Game;
pub use message::{
    Answer, ChannelCommand, ChannelMsg, ClaimMsg, Command, ConnAddr, ConnId, DocumentCommand,
    DocumentMsg, ErrorCode, Event, Notice, PublishMode, Query, Receipt, Resync, ResyncSeat,
    ResyncTie, RoomChange, RoomCommand, RoomMember, ShardMsg, Status, TapEvent, UserCommand,
    hand_out,
};
use ot::Document;
use owned::Owned;
pub use ownership::{NodeId, Placement, ShardAddr, ShardId};
pub use presence::ShardSet;
use presence::{PendingSnapshot, UserRecord, Watches};
use pubsub::Tie;
use rooms::{IdleMembers, Room, RoomSeats, Seat};

/// Where the engine's output goes: the network layer in production, queues in tests.
pub trait Outbox {
    /// Delivers one event to the given local connections (encode once, share the bytes).
    fn deliver(&mut self, to: &[ConnId], event: &Event);
    /// Sends a message to another shard (never to this one: the engine loops those back
    /// itself).
    fn send(&mut self, shard: ShardId, msg: ShardMsg);
    /// Sends one message to several other shards (never this one): a copy to each
    /// shard of this node, and to another node once, with the set of its shards, so
    /// a publication crosses to a node once however many of its shards receive it.
    fn send_many(&mut self, shards: ShardSet, msg: ShardMsg);
    /// Completes the HTTP API query `ticket` (asked with [`Engine::ask`]) with one
    /// shard's answer.
    fn answer(&mut self, ticket: u64, answer: Answer);
    /// Tells the backend of a change (webhooks); outboxes without webhooks drop it.
    fn notice(&mut self, notice: Notice);
}

/// Per-connection bounds that keep one client from growing a shard's memory without
/// limit, and the channels' rules. `Default` gives the settings' defaults (see `config`).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Who may read, write and join which channels.
    pub namespaces: std::sync::Arc<namespace::Namespaces>,
    /// The channels whose activity the owner tells the backend bus.
    pub taps: std::sync::Arc<tap::Taps>,
    pub max_watches_per_conn: usize,
    /// Watches all of one user's connections on a shard may hold together.
    pub max_watches_per_user: usize,
    /// Watches all of a shard's connections may hold together.
    pub max_watches_per_shard: usize,
    pub max_channels_per_conn: usize,
    /// How long a chat room member whose connections all dropped stays (idle) before
    /// the room is told they left.
    pub room_idle_grace_ms: u64,
    /// Collaborative documents one shard holds.
    pub max_documents: usize,
    /// A document's longest text, in UTF-16 units.
    pub max_document_len: usize,
    /// Documents one user may have created among those a shard holds.
    pub max_documents_per_user: usize,
    /// The text of the documents one user created that a shard holds, in UTF-16 units
    /// all together.
    pub max_document_len_per_user: usize,
}

/// Counts for health checks and stats.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub connections: usize,
    pub owned_users: usize,
    pub owned_channels: usize,
    pub owned_rooms: usize,
    pub owned_documents: usize,
}

/// The users one connection watches. Hashed with ahash's fixed keys rather than a
/// per-set random state, which would add 32 bytes to every connection (the set is
/// bounded by `max_watches_per_conn`).
type WatchSet = std::collections::HashSet<Rc<str>, std::hash::BuildHasherDefault<ahash::AHasher>>;

/// What the engine keeps about one local connection.
#[derive(Debug, Default)]
struct LocalConn {
    user: Option<Rc<str>>,
    watching: WatchSet,
    /// Channels joined or subscribed to.
    ties: Vec<Tie>,
    /// The chat room the connection is in, if any (boxed: few connections are).
    seat: Option<Box<Seat>>,
    /// When the connection began to count against its user's connection limit (ms
    /// since the epoch): the owner keeps a user's claims in this order, however late
    /// one arrives.
    claimed_at: Option<u64>,
    /// The connection holds a credential without a user identity (SocketCluster's
    /// token): it counts as authenticated for the namespaces' rules.
    credentialed: bool,
}

impl LocalConn {
    fn tie(&self, channel: &str) -> Option<&Tie> {
        self.ties.iter().find(|t| &*t.channel == channel)
    }
}

/// This shard's connections of one user, and whether the user's owner has counted
/// this shard yet.
struct LocalUser {
    conns: Vec<ConnId>,
    /// The connection whose identification announced the user to the owner.
    announced_by: ConnId,
    /// The owner acknowledged the announcement. Until then `identified` is held back,
    /// so a client never sees its ack while presence could still say it is offline.
    confirmed: bool,
    /// The user's profile (a JSON object with `id`), from the dialect that knows one.
    profile: Option<Box<str>>,
    /// Watches these connections hold together (bounded by `max_watches_per_user`).
    watches: usize,
    /// The status these connections last set, re-announced to an owner that lost it.
    status: Option<Status>,
}

/// One shard's state and rules.
pub struct Engine {
    /// This shard's cluster index (`node * N + shard`).
    me: ShardId,
    placement: Placement,
    limits: Limits,
    conns: ConnMap<LocalConn>,
    /// Local connections of each identified user.
    local_users: AHashMap<Rc<str>, LocalUser>,
    owned_users: Owned<UserRecord>,
    watches: Watches,
    /// Watches this shard's connections hold together (bounded by
    /// `max_watches_per_shard`).
    watch_count: usize,
    owned_channels: Owned<ChannelRecord>,
    memberships: Memberships,
    rooms: Owned<Room>,
    seats: RoomSeats,
    idle: IdleMembers,
    /// Claimed connections of the users this shard owns.
    claims: Owned<ClaimList>,
    /// Lobby games this shard owns, by channel (`game:<id>`).
    games: AHashMap<Box<str>, Game>,
    /// Collaborative documents this shard owns, by name (the name of their channel).
    documents: AHashMap<Box<str>, Document>,
    /// Who created each of `documents`, and what each creator's documents hold.
    document_quotas: documents::Quotas,
    /// The clock as of the last [`Engine::tick`], in ms since the epoch.
    now_ms: u64,
    /// Messages this shard sends to itself, handled before a call returns.
    loopback: VecDeque<ShardMsg>,
    /// Answers still due to a live connection for requests of a tie it dropped (left,
    /// closed) before they came, by connection and channel. Owners answer in order,
    /// so the next that many answers for that channel are these, not the new tie's.
    /// Empty but in a rare race.
    stale_answers: Vec<(ConnId, Rc<str>, u16)>,
    /// Which nodes are reachable, and re-announcements under way (see `cluster`).
    cluster: cluster::Reach,
}

impl Engine {
    /// The engine of shard `me` of a cluster shaped as `placement`; what it sends to a
    /// shard is addressed by cluster index (see `ownership`).
    pub fn new(me: ShardAddr, placement: Placement, limits: Limits) -> Self {
        assert!(me.shard < placement.shards() && me.node < placement.nodes());
        assert!(placement.cluster_shards() <= presence::MAX_SHARDS);
        let mut engine = Engine {
            me: placement.index(me),
            placement,
            limits,
            conns: ConnMap::default(),
            local_users: AHashMap::default(),
            owned_users: Owned::default(),
            watches: Watches::default(),
            watch_count: 0,
            owned_channels: Owned::default(),
            memberships: Memberships::default(),
            rooms: Owned::default(),
            seats: RoomSeats::default(),
            idle: IdleMembers::default(),
            claims: Owned::default(),
            documents: AHashMap::new(),
            document_quotas: documents::Quotas::default(),
            games: AHashMap::new(),
            now_ms: 0,
            loopback: VecDeque::new(),
            stale_answers: Vec::new(),
            cluster: cluster::Reach::default(),
        };
        engine.start_restoring();
        engine
    }

    /// This shard's cluster index.
    pub fn shard(&self) -> ShardId {
        self.me
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            connections: self.conns.len(),
            owned_users: self.owned_users.len(),
            owned_channels: self.owned_channels.len(),
            owned_rooms: self.rooms.len(),
            owned_documents: self.documents.len(),
        }
    }

    /// The `n` channels this shard owns with the most subscribers (see
    /// [`channels::busiest`]).
    pub fn busiest_channels(&self, n: usize) -> Vec<channels::ChannelFigures> {
        channels::busiest(&self.owned_channels, n)
    }

    /// A new local connection.
    pub fn open(&mut self, conn: ConnId) {
        self.conns.insert(conn, LocalConn::default());
    }

    /// The user a local connection identified as, if any.
    pub fn user_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn)?.user.as_deref()
    }

    /// Whether a local connection has entered a chat room.
    pub fn in_room(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.seat.is_some())
    }

    /// A local connection asks for something.
    pub fn command(&mut self, conn: ConnId, cmd: Command, out: &mut impl Outbox) {
        self.on_command(conn, cmd, out);
        self.drain_loopback(out);
    }

    /// A local connection is gone: undo everything it did.
    pub fn close(&mut self, conn: ConnId, out: &mut impl Outbox) {
        self.on_close(conn, out);
        self.drain_loopback(out);
    }

    /// Another shard tells this one something.
    pub fn shard_msg(&mut self, msg: ShardMsg, out: &mut impl Outbox) {
        self.on_shard_msg(msg, out);
        self.drain_loopback(out);
    }

    fn drain_loopback(&mut self, out: &mut impl Outbox) {
        while let Some(msg) = self.loopback.pop_front() {
            self.on_shard_msg(msg, out);
        }
    }

    /// The cluster index of the shard that owns `id`.
    fn owner(&self, id: &str) -> ShardId {
        self.placement.index(self.placement.owner(id))
    }

    /// Sends `msg` to `shard`, unless that shard is unreachable now (what it misses
    /// is re-announced when it is back).
    fn route(&mut self, shard: ShardId, msg: ShardMsg, out: &mut impl Outbox) {
        if shard == self.me {
            self.loopback.push_back(msg);
        } else if !self.cluster.unreachable.contains(shard) {
            out.send(shard, msg);
        }
    }

    /// Sends `msg` to every shard in `shards`: this shard's copy loops back, shards
    /// on unreachable nodes get none, the others go in one [`Outbox::send_many`].
    fn route_many(&mut self, shards: ShardSet, msg: ShardMsg, out: &mut impl Outbox) {
        let mut others = shards.difference(self.cluster.unreachable);
        if others.remove(self.me) {
            if others.is_empty() {
                self.loopback.push_back(msg);
                return;
            }
            self.loopback.push_back(msg.clone());
        }
        if !others.is_empty() {
            out.send_many(others, msg);
        }
    }

    fn send_to_owner(&mut self, id: &str, msg: ShardMsg, out: &mut impl Outbox) {
        let shard = self.owner(id);
        self.route(shard, msg, out);
    }

    /// Delivers `event` to one connection, on whichever shard holds it.
    fn send_to_conn(&mut self, conn: ConnAddr, event: Event, out: &mut impl Outbox) {
        let msg = ShardMsg::ToConn {
            conn: conn.conn,
            event,
        };
        self.route(conn.shard, msg, out);
    }

    /// Refuses a command whose connection may be on another shard.
    fn refuse_at(
        &mut self,
        conn: ConnAddr,
        code: ErrorCode,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        self.send_to_conn(conn, Event::Error { code, receipt }, out);
    }

    fn on_command(&mut self, conn: ConnId, cmd: Command, out: &mut impl Outbox) {
        let Some(local) = self.conns.get(&conn) else {
            return;
        };
        let user = local.user.clone();
        if let Some((code, receipt)) = self.unavailable(conn, &cmd) {
            return refuse(conn, code, receipt, out);
        }
        match cmd {
            Command::Identify { user } => self.identify(conn, user, out),
            Command::Room(cmd) => self.room_command(conn, cmd, out),
            Command::Credentialed(held) => {
                if let Some(local) = self.conns.get_mut(&conn) {
                    local.credentialed = held;
                }
            }
            Command::Channel(cmd) => self.channel_command(conn, user, cmd, out),
            Command::Document(cmd) => {
                self.document_command(conn, user.as_deref().unwrap_or(""), cmd, out)
            }
            Command::Profile(profile) => {
                if let Some(local_user) = user.and_then(|u| self.local_users.get_mut(&*u)) {
                    local_user.profile = Some(profile);
                }
            }
            Command::User(cmd) => {
                let Some(user) = user else {
                    return refuse(conn, ErrorCode::NotIdentified, None, out);
                };
                self.user_command(conn, &user, cmd, out);
            }
        }
    }

    fn user_command(&mut self, conn: ConnId, user: &str, cmd: UserCommand, out: &mut impl Outbox) {
        match cmd {
            UserCommand::SetStatus(status) => {
                if let Some(local_user) = self.local_users.get_mut(user) {
                    local_user.status = Some(status);
                }
                let msg = ShardMsg::SetStatus {
                    user: Box::from(user),
                    status,
                };
                self.send_to_owner(user, msg, out);
                out.deliver(&[conn], &Event::StatusSet { status });
            }
            UserCommand::Watch(ids) => self.watch(conn, user, ids, out),
            UserCommand::Unwatch(ids) => {
                for id in ids {
                    self.unwatch(conn, &id, out);
                }
            }
            UserCommand::Claim { max, since } => self.claim(conn, user, max, since, out),
        }
    }

    fn addr(&self, conn: ConnId) -> ConnAddr {
        ConnAddr {
            shard: self.me,
            conn,
        }
    }

    fn identify(&mut self, conn: ConnId, user: Box<str>, out: &mut impl Outbox) {
        let local = self.conns.get_mut(&conn).expect("checked by caller");
        if local.user.is_some() {
            return refuse(conn, ErrorCode::AlreadyIdentified, None, out);
        }
        let key: Rc<str> = match self.local_users.get_key_value(&*user) {
            Some((k, _)) => k.clone(),
            None => Rc::from(&*user),
        };
        local.user = Some(key.clone());
        let local_user = self.local_users.entry(key).or_insert_with(|| LocalUser {
            conns: Vec::new(),
            announced_by: conn,
            confirmed: false,
            profile: None,
            watches: 0,
            status: None,
        });
        local_user.conns.push(conn);
        if local_user.confirmed {
            out.deliver(&[conn], &Event::Identified { user });
        } else if local_user.announced_by == conn {
            let msg = ShardMsg::UserUp {
                user: user.clone(),
                from: self.me,
                conn,
            };
            self.send_to_owner(&user, msg, out);
        }
    }

    /// Watches `ids` for `user`'s connection `conn`, unless that takes the connection,
    /// the user's connections on this shard or all of this shard's connections past
    /// their limit (then nothing is watched: `TooManyWatches`).
    fn watch(&mut self, conn: ConnId, user: &str, mut ids: Vec<Box<str>>, out: &mut impl Outbox) {
        let mut seen = AHashSet::with_capacity(ids.len());
        ids.retain(|id| seen.insert(id.clone()));
        let local = &self.conns[&conn];
        let new = ids
            .iter()
            .filter(|id| !local.watching.contains(&***id))
            .count();
        let by_user = self.local_users.get(user).map_or(0, |u| u.watches);
        if local.watching.len() + new > self.limits.max_watches_per_conn
            || by_user + new > self.limits.max_watches_per_user
            || self.watch_count + new > self.limits.max_watches_per_shard
        {
            return refuse(conn, ErrorCode::TooManyWatches, None, out);
        }
        self.watch_count += new;
        if let Some(local_user) = self.local_users.get_mut(user) {
            local_user.watches += new;
        }
        let mut keys = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in &ids {
            let (key, entry, created) = self.watches.entry(id);
            if entry.status.is_none() {
                missing.push(key.clone());
            }
            let local = self.conns.get_mut(&conn).expect("checked above");
            if local.watching.insert(key.clone()) {
                entry.conns.push(conn);
            }
            if created {
                let msg = ShardMsg::Watch {
                    user: id.clone(),
                    from: self.me,
                };
                self.send_to_owner(id, msg, out);
            }
            keys.push(key);
        }
        let pending = PendingSnapshot {
            conn,
            ids: keys,
            missing,
        };
        if pending.missing.is_empty() {
            self.send_snapshot(pending, out);
        } else {
            self.watches.pending.push(pending);
        }
    }

    fn send_snapshot(&self, pending: PendingSnapshot, out: &mut impl Outbox) {
        let statuses = pending
            .ids
            .iter()
            .map(|id| (Box::from(&**id), self.watches.status_of(id)))
            .collect();
        out.deliver(&[pending.conn], &Event::Presence { statuses });
    }

    fn unwatch(&mut self, conn: ConnId, id: &str, out: &mut impl Outbox) {
        let Some(local) = self.conns.get_mut(&conn) else {
            return;
        };
        if !local.watching.remove(id) {
            return;
        }
        self.watch_count -= 1;
        let user = local.user.as_deref();
        if let Some(local_user) = user.and_then(|u| self.local_users.get_mut(u)) {
            local_user.watches -= 1;
        }
        let Some(entry) = self.watches.entries.get_mut(id) else {
            return;
        };
        entry.conns.retain(|c| *c != conn);
        if !entry.conns.is_empty() {
            return;
        }
        let answered = entry.status.is_some();
        self.watches.entries.remove(id);
        let msg = ShardMsg::Unwatch {
            user: Box::from(id),
            from: self.me,
        };
        self.send_to_owner(id, msg, out);
        if !answered {
            for done in self.watches.resolve(id) {
                self.send_snapshot(done, out);
            }
        }
    }

    fn on_close(&mut self, conn: ConnId, out: &mut impl Outbox) {
        self.leave_room(conn, false, out);
        let Some(local) = self.conns.get(&conn) else {
            return;
        };
        self.watches.pending.retain(|p| p.conn != conn);
        self.stale_answers.retain(|(c, ..)| *c != conn);
        let watching: Vec<Rc<str>> = local.watching.iter().cloned().collect();
        for id in watching {
            self.unwatch(conn, &id, out);
        }
        let local = self.conns.remove(&conn).expect("present above");
        let user = local.user.as_deref().unwrap_or("");
        self.drop_ties(conn, user, local.ties, out);
        let Some(user) = local.user else {
            return;
        };
        if local.claimed_at.is_some() {
            let msg = ShardMsg::Claim(ClaimMsg::Release {
                user: Box::from(&*user),
                conn: self.addr(conn),
            });
            self.send_to_owner(&user, msg, out);
        }
        if let Some(local_user) = self.local_users.get_mut(&user) {
            local_user.conns.retain(|c| *c != conn);
            if local_user.conns.is_empty() {
                self.local_users.remove(&user);
                let msg = ShardMsg::UserDown {
                    user: Box::from(&*user),
                    from: self.me,
                };
                self.send_to_owner(&user, msg, out);
            }
        }
    }

    fn on_shard_msg(&mut self, msg: ShardMsg, out: &mut impl Outbox) {
        match msg {
            ShardMsg::UserUp { user, from, conn } => {
                self.count_user(user, from, conn, Status::Online, out)
            }
            ShardMsg::UserCounted { user, conn } => {
                let Some(local_user) = self.local_users.get_mut(&*user) else {
                    return;
                };
                if local_user.announced_by == conn && !local_user.confirmed {
                    local_user.confirmed = true;
                    out.deliver(&local_user.conns, &Event::Identified { user });
                }
            }
            ShardMsg::UserDown { user, from } => {
                let Some(rec) = self.owned_users.get_mut(&user) else {
                    return;
                };
                rec.connected.remove(from);
                if rec.connected.is_empty() {
                    rec.status = Status::Offline;
                    self.notify_watchers(&user, out);
                    self.owned_users.remove_if_unused(&user);
                    out.notice(Notice::UserOffline { user });
                }
            }
            ShardMsg::SetStatus { user, status } => {
                let Some(rec) = self.owned_users.get_mut(&user) else {
                    return;
                };
                rec.status_guessed = false;
                if !rec.connected.is_empty() && rec.status != status {
                    rec.status = status;
                    self.notify_watchers(&user, out);
                }
            }
            ShardMsg::Watch { user, from } => {
                let rec = self.owned_users.entry(&user);
                rec.watchers.insert(from);
                let status = rec.status;
                self.route(from, ShardMsg::StatusOf { user, status }, out);
            }
            ShardMsg::Unwatch { user, from } => {
                if let Some(rec) = self.owned_users.get_mut(&user) {
                    rec.watchers.remove(from);
                    self.owned_users.remove_if_unused(&user);
                }
            }
            ShardMsg::ToUser { user, event } => {
                let Some(rec) = self.owned_users.get(&user) else {
                    return;
                };
                let shards = rec.connected;
                self.route_many(shards, ShardMsg::ToLocalUser { user, event }, out);
            }
            ShardMsg::Claim(msg) => self.on_claim_msg(msg, out),
            ShardMsg::Channel(msg) => self.on_channel_msg(msg, out),
            ShardMsg::Document(msg) => self.on_document_msg(msg, out),
            ShardMsg::Joined {
                channel,
                conn,
                members,
                receipt,
            } => self.on_joined(channel, conn, members, receipt, out),
            ShardMsg::Subscribed {
                channel,
                conn,
                receipt,
            } => self.on_subscribed(channel, conn, receipt, out),
            ShardMsg::TieRefused {
                channel,
                conn,
                code,
                receipt,
            } => self.on_tie_refused(&channel, conn, code, receipt, out),
            ShardMsg::DocumentOpened {
                document,
                conn,
                text,
                revision,
                receipt,
            } => self.on_document_opened(document, conn, text, revision, receipt, out),
            ShardMsg::ToChannel { channel, event } => {
                self.deliver_to_channel(&channel, &event, out)
            }
            ShardMsg::Query {
                from,
                ticket,
                query,
            } => self.on_query(from, ticket, query, out),
            ShardMsg::Answer { ticket, answer } => out.answer(ticket, answer),
            ShardMsg::StatusOf { user, status } => self.on_status(&user, status, out),
            ShardMsg::ToLocalUser { user, event } => {
                if let Some(local_user) = self.local_users.get(&*user) {
                    out.deliver(&local_user.conns, &event);
                }
            }
            ShardMsg::ToConn { conn, event } => {
                if self.conns.contains_key(&conn) {
                    if let Event::RoomConnected { .. } = event {
                        self.seat_taken(conn);
                    }
                    out.deliver(&[conn], &event);
                }
            }
            ShardMsg::RoomEnter { room, member, conn } => self.on_enter(room, member, conn, out),
            ShardMsg::RoomExit {
                room,
                user,
                conn,
                leaving,
            } => self.on_exit(&room, &user, conn, leaving, out),
            ShardMsg::RoomSay {
                room,
                user,
                conn,
                content,
                to,
                update,
            } => self.on_say(&room, &user, conn, content, to, update, out),
            ShardMsg::ToRoom { room, event } => self.on_to_room(&room, &event, out),
            ShardMsg::Resync(msg) => self.on_resync(msg, out),
        }
    }

    /// The owner side of `UserUp`: `from` holds connections of `user` (`conn`
    /// announced them); a user who was offline comes online as `status`.
    fn count_user(
        &mut self,
        user: Box<str>,
        from: ShardId,
        conn: ConnId,
        status: Status,
        out: &mut impl Outbox,
    ) {
        let rec = self.owned_users.entry(&user);
        let first = rec.connected.is_empty();
        rec.connected.insert(from);
        if first {
            rec.status = status;
            rec.status_guessed = false;
            self.notify_watchers(&user, out);
            out.notice(Notice::UserOnline { user: user.clone() });
        }
        self.route(from, ShardMsg::UserCounted { user, conn }, out);
    }

    fn notify_watchers(&mut self, user: &str, out: &mut impl Outbox) {
        let Some(rec) = self.owned_users.get(user) else {
            return;
        };
        let (status, watchers) = (rec.status, rec.watchers);
        let msg = ShardMsg::StatusOf {
            user: Box::from(user),
            status,
        };
        self.route_many(watchers, msg, out);
    }

    fn on_status(&mut self, user: &str, status: Status, out: &mut impl Outbox) {
        let Some(entry) = self.watches.entries.get_mut(user) else {
            return;
        };
        match entry.status.replace(status) {
            None => {
                for done in self.watches.resolve(user) {
                    self.send_snapshot(done, out);
                }
            }
            Some(previous) if previous != status => {
                let event = Event::Presence {
                    statuses: vec![(Box::from(user), status)],
                };
                let entry = &self.watches.entries[user];
                if self.watches.pending.is_empty() {
                    out.deliver(&entry.conns, &event);
                } else {
                    let ready: Vec<ConnId> = entry
                        .conns
                        .iter()
                        .copied()
                        .filter(|c| !self.watches.awaits_snapshot(*c, user))
                        .collect();
                    out.deliver(&ready, &event);
                }
            }
            Some(_) => {}
        }
    }
}

/// Refuses a command of a local connection.
fn refuse(conn: ConnId, code: ErrorCode, receipt: Receipt, out: &mut impl Outbox) {
    out.deliver(&[conn], &Event::Error { code, receipt });
}
