//! Nodes that die, restart or lose the cluster transport, and how owners and the
//! shards holding connections agree again afterwards.
//!
//! The runtime tells every shard when a node is gone ([`Engine::node_down`]), runs
//! again ([`Engine::node_up`]), or when the cluster transport is down or back
//! ([`Engine::cluster_down`], [`Engine::cluster_up`]). Messages to an unreachable
//! shard are not sent, and commands for an object whose owner is unreachable are
//! refused (`OwnerUnavailable`, `ClusterUnavailable`) rather than left unanswered.
//!
//! A dead node's contributions are forgotten by the owners at once, as if its
//! connections had closed. When a node is reachable again each side re-announces to
//! the other, in one batch per owner shard, what its local connections hold there
//! ([`Resync`]: absolute state, so repeating it or sending it to an owner that never
//! lost anything changes nothing), ending with [`Resync::Done`]; the owner then drops
//! what that shard contributed to objects the batch did not name (a close or leave
//! lost in the outage). Each side also asks the other for its batch
//! ([`Resync::Ask`]), so it does not matter which side hears of the reconnection
//! first. Shards that never answer are swept by [`Engine::sweep_stale`].

use std::rc::Rc;

use ahash::{AHashMap, AHashSet};

use super::message::{
    ChannelCommand, ChannelMsg, ClaimMsg, Command, ConnAddr, ConnId, DocumentCommand, ErrorCode,
    Event, Receipt, Resync, ResyncSeat, ResyncTie, RoomCommand, ShardMsg, Status, UserCommand,
};
use super::ownership::{NodeId, ShardId};
use super::presence::ShardSet;
use super::pubsub::JoinState;
use super::{Engine, Outbox};

/// What a re-announcement names: a user (its connections and watchers), a channel,
/// a chat room, or a user's claims.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    User,
    Channel,
    Room,
    Claims,
}

/// A shard's view of the cluster's reachability and of re-announcements under way.
#[derive(Debug, Default)]
pub(super) struct Reach {
    /// Shards of nodes declared down.
    dead: ShardSet,
    /// Shards nothing is sent to now: `dead`, and every other node's while the
    /// cluster transport is down.
    pub unreachable: ShardSet,
    transport_down: bool,
    /// Remote shards whose re-announcement this shard, as owner, still waits for.
    awaiting: ShardSet,
    /// Remote shards that have not finished a re-announcement since this shard started
    /// (a restarted owner): what they name, their connections' peers already knew
    /// of, so it is restored without join events. A shard of a node declared down is
    /// no longer one: the others heard its members leave.
    restoring: ShardSet,
    /// Objects each shard has re-announced since its last `Done`.
    refreshed: AHashMap<(ShardId, Kind), AHashSet<Box<str>>>,
}

impl Reach {
    fn refreshed(&self, from: ShardId, kind: Kind, id: &str) -> bool {
        self.refreshed
            .get(&(from, kind))
            .is_some_and(|ids| ids.contains(id))
    }

    fn refresh(&mut self, from: ShardId, kind: Kind, id: &str) {
        self.refreshed
            .entry((from, kind))
            .or_default()
            .insert(Box::from(id));
    }
}

impl Engine {
    /// At start: every other node's first re-announcement restores what this shard's
    /// previous process owned (see `Reach::restoring`).
    pub(super) fn start_restoring(&mut self) {
        self.cluster.restoring = self.remote_shards();
    }

    /// Whether messages reach node `node` now (this shard's own node always).
    pub fn node_reachable(&self, node: NodeId) -> bool {
        let shards: ShardSet = self.placement.shards_of(node).collect();
        shards.intersection(self.cluster.unreachable).is_empty()
    }

    /// Node `node` is gone (its process died): the objects this shard owns forget what
    /// that node's shards contributed, as if all their connections had closed (their
    /// users go offline unless connected elsewhere, members leave, room members go
    /// idle, claims release). Until [`Engine::node_up`], commands of this shard's
    /// connections for objects owned there are refused with `OwnerUnavailable`; their
    /// joins and subscriptions still waiting for it are refused now. Those already
    /// made are kept, to be re-announced.
    pub fn node_down(&mut self, node: NodeId, out: &mut impl Outbox) {
        let shards = self.shards_of_other(node);
        let reach = &mut self.cluster;
        reach.dead = reach.dead.union(shards);
        reach.unreachable = reach.unreachable.union(shards);
        reach.awaiting = reach.awaiting.difference(shards);
        reach.restoring = reach.restoring.difference(shards);
        reach
            .refreshed
            .retain(|(from, _), _| !shards.contains(*from));
        self.drop_unrefreshed(shards);
        self.give_up_on_unreachable(out);
        self.drain_loopback(out);
    }

    /// Node `node` runs (again, perhaps as a fresh process with no state): it is
    /// reachable, this shard re-announces to its shards everything its connections hold
    /// there (identities and statuses, watches, joins, subscriptions, open documents,
    /// room seats, claims), and asks them to re-announce theirs. Call
    /// [`Engine::sweep_stale`] a settle time later.
    pub fn node_up(&mut self, node: NodeId, out: &mut impl Outbox) {
        let shards = self.shards_of_other(node);
        let reach = &mut self.cluster;
        reach.dead = reach.dead.difference(shards);
        if !reach.transport_down {
            reach.unreachable = reach.unreachable.difference(shards);
        }
        self.reconnect(shards, out);
        self.drain_loopback(out);
    }

    /// The cluster transport is down: no other node is reachable, but nothing is
    /// forgotten (their processes may be fine). Until [`Engine::cluster_up`], commands
    /// for objects owned on other nodes are refused with `ClusterUnavailable`; objects
    /// this node owns keep working for its connections.
    pub fn cluster_down(&mut self, out: &mut impl Outbox) {
        let remote = self.remote_shards();
        let reach = &mut self.cluster;
        reach.transport_down = true;
        reach.unreachable = reach.unreachable.union(remote);
        self.give_up_on_unreachable(out);
        self.drain_loopback(out);
    }

    /// The cluster transport is back: every node not declared down is re-announced to
    /// and asked to re-announce (as by [`Engine::node_up`]); what their shards
    /// contributed here is stale until they do. Call [`Engine::sweep_stale`] a settle
    /// time later.
    pub fn cluster_up(&mut self, out: &mut impl Outbox) {
        let reach = &mut self.cluster;
        reach.transport_down = false;
        reach.unreachable = reach.dead;
        let live = self.remote_shards().difference(self.cluster.dead);
        self.reconnect(live, out);
        self.drain_loopback(out);
    }

    /// Drops what remote shards contributed to the objects this shard owns if they
    /// have not re-announced it since [`Engine::cluster_up`] or [`Engine::node_up`]
    /// (with the usual events, as [`Engine::node_down`] would), so presence and
    /// memberships match the connections again after messages were lost. What was
    /// re-announced is left as it was, without events.
    pub fn sweep_stale(&mut self, out: &mut impl Outbox) {
        let stale = std::mem::take(&mut self.cluster.awaiting);
        self.drop_unrefreshed(stale);
        self.drain_loopback(out);
    }

    /// The cluster indices of `node`'s shards, none if it is this shard's own node.
    fn shards_of_other(&self, node: NodeId) -> ShardSet {
        if self.placement.addr(self.me).node == node {
            return ShardSet::default();
        }
        self.placement.shards_of(node).collect()
    }

    /// Every shard of the other nodes.
    fn remote_shards(&self) -> ShardSet {
        (0..self.placement.nodes())
            .map(|node| self.shards_of_other(node))
            .fold(ShardSet::default(), ShardSet::union)
    }

    /// Why a command for an object owned by `shard` is refused, if it is.
    fn unreachable_code(&self, shard: ShardId) -> Option<ErrorCode> {
        if !self.cluster.unreachable.contains(shard) {
            None
        } else if self.cluster.dead.contains(shard) {
            Some(ErrorCode::OwnerUnavailable)
        } else {
            Some(ErrorCode::ClusterUnavailable)
        }
    }

    /// The refusal of a local connection's command whose object's owner is
    /// unreachable. Leaves, unsubscribes, unwatches and room closes are not refused:
    /// they are undone locally and the owner learns of it when it is re-announced to.
    pub(super) fn unavailable(&self, conn: ConnId, cmd: &Command) -> Option<(ErrorCode, Receipt)> {
        if self.cluster.unreachable.is_empty() {
            return None;
        }
        let at = |id: &str, receipt: &Receipt| {
            let code = self.unreachable_code(self.owner(id))?;
            Some((code, receipt.clone()))
        };
        let local = &self.conns[&conn];
        let user = local.user.as_deref();
        match cmd {
            Command::Identify { user } => {
                let counted = self.local_users.get(&**user).is_some_and(|u| u.confirmed);
                if counted { None } else { at(user, &None) }
            }
            Command::User(UserCommand::SetStatus(_) | UserCommand::Claim { .. }) => {
                at(user?, &None)
            }
            Command::User(UserCommand::Watch(ids)) => ids.iter().find_map(|id| at(id, &None)),
            Command::Channel(
                ChannelCommand::Join {
                    channel, receipt, ..
                }
                | ChannelCommand::Subscribe { channel, receipt }
                | ChannelCommand::Members { channel, receipt },
            ) => at(channel, receipt),
            Command::Channel(ChannelCommand::Publish { channel, mode, .. }) => {
                at(channel, &mode.receipt)
            }
            Command::Document(
                DocumentCommand::Open { document, receipt }
                | DocumentCommand::Edit {
                    document, receipt, ..
                },
            ) => at(document, receipt),
            Command::Room(RoomCommand::Connect { room, .. }) => at(room, &None),
            Command::Room(RoomCommand::Say { .. }) => at(&local.seat.as_ref()?.room, &None),
            _ => None,
        }
    }

    /// Answers what local connections wait for from owners that just became
    /// unreachable: pending joins, subscriptions, opens and room connects are refused
    /// (and dropped), identifications are acknowledged (the owner counts them when
    /// they are re-announced), and snapshots waiting for a user's status count it
    /// offline until the owner answers again.
    fn give_up_on_unreachable(&mut self, out: &mut impl Outbox) {
        let mut ties = Vec::new();
        let mut seats = Vec::new();
        for (&conn, local) in self.conns.iter() {
            for tie in &local.ties {
                if tie.state == JoinState::Pending
                    && let Some(code) = self.unreachable_code(self.owner(&tie.channel))
                {
                    let user = local.user.clone().unwrap_or_else(|| Rc::from(""));
                    ties.push((conn, user, tie.channel.clone(), code));
                }
            }
            if let Some(seat) = &local.seat
                && !self.seats.seated(&seat.room, conn)
                && let Some(code) = self.unreachable_code(self.owner(&seat.room))
            {
                seats.push((conn, code));
            }
        }
        for (conn, user, channel, code) in ties {
            self.untie(conn, &user, &channel, out);
            super::refuse(conn, code, None, out);
        }
        for (conn, code) in seats {
            self.leave_room(conn, false, out);
            super::refuse(conn, code, None, out);
        }
        for (user, local_user) in &mut self.local_users {
            let owner = self.placement.index(self.placement.owner(user));
            if !local_user.confirmed && self.cluster.unreachable.contains(owner) {
                local_user.confirmed = true;
                let identified = Event::Identified {
                    user: Box::from(&**user),
                };
                out.deliver(&local_user.conns, &identified);
            }
        }
        let unanswered: Vec<Rc<str>> = self
            .watches
            .entries
            .iter()
            .filter(|(id, entry)| {
                entry.status.is_none() && self.unreachable_code(self.owner(id)).is_some()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in unanswered {
            self.on_status(&id, Status::Offline, out);
        }
    }

    /// Re-announces to `shards` and asks them to re-announce; what they contributed
    /// here is stale until they do.
    fn reconnect(&mut self, shards: ShardSet, out: &mut impl Outbox) {
        self.cluster.awaiting = self.cluster.awaiting.union(shards);
        self.announce_to(shards, out);
        self.route_many(shards, ShardMsg::Resync(Resync::Ask { from: self.me }), out);
    }

    /// Sends the owners among `targets` what this shard's connections hold of their
    /// objects, then `Done` to each.
    fn announce_to(&mut self, targets: ShardSet, out: &mut impl Outbox) {
        let me = self.me;
        let owner_there = |id: &str| Some(self.owner(id)).filter(|o| targets.contains(*o));
        let mut batch = Vec::new();
        for (user, local_user) in &self.local_users {
            if let Some(owner) = owner_there(user) {
                let msg = Resync::User {
                    user: Box::from(&**user),
                    from: me,
                    conn: Some(local_user.announced_by),
                    status: local_user.status,
                    watching: self.watches.entries.contains_key(user),
                };
                batch.push((owner, msg));
            }
        }
        for user in self.watches.entries.keys() {
            if let Some(owner) = owner_there(user)
                && !self.local_users.contains_key(user)
            {
                let msg = Resync::User {
                    user: Box::from(&**user),
                    from: me,
                    conn: None,
                    status: None,
                    watching: true,
                };
                batch.push((owner, msg));
            }
        }
        let mut channels: AHashMap<Rc<str>, Vec<ResyncTie>> = AHashMap::new();
        let mut rooms: AHashMap<Rc<str>, Vec<ResyncSeat>> = AHashMap::new();
        let mut claims: AHashMap<Rc<str>, Vec<(ConnId, u64)>> = AHashMap::new();
        for (&conn, local) in self.conns.iter() {
            let user = local.user.as_deref().unwrap_or("");
            for tie in local.ties.iter() {
                if owner_there(&tie.channel).is_some() {
                    let tie_of = ResyncTie {
                        conn,
                        user: Box::from(user),
                        member: tie.member,
                    };
                    channels
                        .entry(tie.channel.clone())
                        .or_default()
                        .push(tie_of);
                }
            }
            if let Some(seat) = &local.seat
                && owner_there(&seat.room).is_some()
            {
                rooms
                    .entry(seat.room.clone())
                    .or_default()
                    .push(ResyncSeat {
                        conn,
                        member: seat.member.clone(),
                        seated: self.seats.seated(&seat.room, conn),
                    });
            }
            if let Some(user) = &local.user
                && let Some(since) = local.claimed_at
                && owner_there(user).is_some()
            {
                claims.entry(user.clone()).or_default().push((conn, since));
            }
        }
        let to_owner = |id: &Rc<str>| (self.owner(id), Box::<str>::from(&**id));
        for (channel, ties) in channels {
            let (owner, channel) = to_owner(&channel);
            batch.push((
                owner,
                Resync::Channel {
                    channel,
                    from: me,
                    ties,
                },
            ));
        }
        for (room, seats) in rooms {
            let (owner, room) = to_owner(&room);
            batch.push((
                owner,
                Resync::Room {
                    room,
                    from: me,
                    seats,
                },
            ));
        }
        for (user, conns) in claims {
            let (owner, user) = to_owner(&user);
            batch.push((
                owner,
                Resync::Claims {
                    user,
                    from: me,
                    conns,
                },
            ));
        }
        for (owner, msg) in batch {
            self.route(owner, ShardMsg::Resync(msg), out);
        }
        self.route_many(targets, ShardMsg::Resync(Resync::Done { from: me }), out);
    }

    /// A re-announcement, to this shard as the owner of what it names. One from a
    /// node declared down is ignored: it is asked again at [`Engine::node_up`].
    pub(super) fn on_resync(&mut self, msg: Resync, out: &mut impl Outbox) {
        if self.cluster.dead.contains(msg.from()) {
            return;
        }
        match msg {
            Resync::User {
                user,
                from,
                conn,
                status,
                watching,
            } => {
                self.cluster.refresh(from, Kind::User, &user);
                let rec = self.owned_users.get(&user);
                let (connected, watched) = rec.map_or((false, false), |r| {
                    (r.connected.contains(from), r.watchers.contains(from))
                });
                match conn {
                    Some(conn) => self.recount_user(&user, from, conn, status, out),
                    None if connected => {
                        let down = ShardMsg::UserDown {
                            user: user.clone(),
                            from,
                        };
                        self.on_shard_msg(down, out);
                    }
                    None => {}
                }
                if watching {
                    self.on_shard_msg(ShardMsg::Watch { user, from }, out);
                } else if watched {
                    self.on_shard_msg(ShardMsg::Unwatch { user, from }, out);
                }
            }
            Resync::Channel {
                channel,
                from,
                ties,
            } => self.resync_channel(channel, from, ties, out),
            Resync::Room { room, from, seats } => self.resync_room(&room, from, seats, out),
            Resync::Claims { user, from, conns } => {
                self.cluster.refresh(from, Kind::Claims, &user);
                self.claims.entry(&user).resync(from, &conns);
                self.claims.remove_if_unused(&user);
            }
            Resync::Done { from } => {
                self.cluster.awaiting.remove(from);
                self.cluster.restoring.remove(from);
                self.drop_unrefreshed(ShardSet::from_iter([from]));
            }
            Resync::Ask { from } => self.announce_to(ShardSet::from_iter([from]), out),
        }
    }

    /// `from` holds connections of `user` (re-announced): counted as by `UserUp`,
    /// and, for an owner that had lost the user, with the status they last set.
    fn recount_user(
        &mut self,
        user: &str,
        from: ShardId,
        conn: ConnId,
        status: Option<Status>,
        out: &mut impl Outbox,
    ) {
        let known = self
            .owned_users
            .get(user)
            .is_some_and(|rec| !rec.connected.is_empty());
        let online = status.unwrap_or(Status::Online);
        self.count_user(Box::from(user), from, conn, online, out);
        let rec = self.owned_users.entry(user);
        if !known {
            rec.status_guessed = true;
        } else if let Some(status) = status
            && rec.status_guessed
            && rec.status != status
        {
            rec.status = status;
            self.notify_watchers(user, out);
        }
    }

    /// Makes `from`'s connections in `channel` exactly `ties`; members new to this
    /// owner are announced as joins unless they are restored (`Reach::restoring`).
    fn resync_channel(
        &mut self,
        channel: Box<str>,
        from: ShardId,
        ties: Vec<ResyncTie>,
        out: &mut impl Outbox,
    ) {
        self.cluster.refresh(from, Kind::Channel, &channel);
        let held: Vec<ConnAddr> = self.owned_channels.get(&channel).map_or(Vec::new(), |rec| {
            rec.conns()
                .map(|(conn, _)| conn)
                .filter(|c| c.shard == from)
                .collect()
        });
        let gone = held
            .iter()
            .filter(|c| !ties.iter().any(|t| t.conn == c.conn));
        let undo: Vec<ShardMsg> = gone
            .filter_map(|&conn| self.undo_tie(&channel, conn))
            .collect();
        self.loopback.extend(undo);
        for tie in ties {
            let conn = ConnAddr {
                shard: from,
                conn: tie.conn,
            };
            if held.contains(&conn) {
                continue;
            }
            if tie.member && self.cluster.restoring.contains(from) {
                self.occupy(&channel, out).join(&tie.user, conn);
            } else if tie.member {
                self.admit_member(&channel, &tie.user, conn, out);
            } else if !super::is_document_channel(&channel)
                || self.ensure_document(&channel, &tie.user)
            {
                self.occupy(&channel, out).listen(conn);
            }
        }
    }

    /// Makes `from`'s connections in chat room `name` exactly `seats`; a connection
    /// still waiting to be seated is seated now, and seated ones new to this owner are
    /// announced as joins unless they are restored (`Reach::restoring`).
    fn resync_room(
        &mut self,
        name: &str,
        from: ShardId,
        seats: Vec<ResyncSeat>,
        out: &mut impl Outbox,
    ) {
        self.cluster.refresh(from, Kind::Room, name);
        let held: Vec<(Box<str>, ConnAddr)> = self.rooms.get(name).map_or(Vec::new(), |room| {
            room.conns()
                .filter(|(_, c)| c.shard == from)
                .map(|(user, c)| (Box::from(user), c))
                .collect()
        });
        for (user, conn) in &held {
            if !seats.iter().any(|s| s.conn == conn.conn) {
                self.on_exit(name, user, *conn, false, out);
            }
        }
        for seat in seats {
            let conn = ConnAddr {
                shard: from,
                conn: seat.conn,
            };
            if held.iter().any(|(_, c)| *c == conn) {
                continue;
            }
            if seat.seated {
                let announce = !self.cluster.restoring.contains(from);
                self.admit_to_room(name, seat.member, conn, announce, out);
            } else {
                self.on_enter(Box::from(name), seat.member, conn, out);
            }
        }
    }

    /// The message that undoes one connection's tie to `channel`, as its close would.
    fn undo_tie(&self, channel: &str, conn: ConnAddr) -> Option<ShardMsg> {
        let rec = self.owned_channels.get(channel)?;
        let (_, member) = rec.conns().find(|(c, _)| *c == conn)?;
        let channel = Box::from(channel);
        let msg = match member {
            Some(user) => ChannelMsg::Leave {
                channel,
                user: Box::from(&**user),
                conn,
            },
            None => ChannelMsg::Unsubscribe { channel, conn },
        };
        Some(ShardMsg::Channel(msg))
    }

    /// Queues, as if their connections had closed, the undoing of everything `shards`
    /// contributed to the objects this shard owns that they have not re-announced
    /// since their last `Done`, and forgets what they re-announced.
    fn drop_unrefreshed(&mut self, shards: ShardSet) {
        if shards.is_empty() {
            return;
        }
        let reach = &self.cluster;
        let stale =
            |kind, id: &str, from| shards.contains(from) && !reach.refreshed(from, kind, id);
        let mut undo = Vec::new();
        for (user, rec) in self.owned_users.iter() {
            for from in rec.connected.intersection(shards).iter() {
                if stale(Kind::User, user, from) {
                    let user = Box::from(&**user);
                    undo.push(ShardMsg::UserDown { user, from });
                }
            }
            for from in rec.watchers.intersection(shards).iter() {
                if stale(Kind::User, user, from) {
                    let user = Box::from(&**user);
                    undo.push(ShardMsg::Unwatch { user, from });
                }
            }
        }
        for (channel, rec) in self.owned_channels.iter() {
            for (conn, _) in rec.conns() {
                if stale(Kind::Channel, channel, conn.shard) {
                    undo.extend(self.undo_tie(channel, conn));
                }
            }
        }
        for (name, room) in self.rooms.iter() {
            for (user, conn) in room.conns() {
                if stale(Kind::Room, name, conn.shard) {
                    undo.push(ShardMsg::RoomExit {
                        room: Box::from(&**name),
                        user: Box::from(user),
                        conn,
                        leaving: false,
                    });
                }
            }
        }
        for (user, list) in self.claims.iter() {
            for conn in list.conns() {
                if stale(Kind::Claims, user, conn.shard) {
                    let user = Box::from(&**user);
                    undo.push(ShardMsg::Claim(ClaimMsg::Release { user, conn }));
                }
            }
        }
        self.cluster
            .refreshed
            .retain(|(from, _), _| !shards.contains(*from));
        self.loopback.extend(undo);
    }
}
