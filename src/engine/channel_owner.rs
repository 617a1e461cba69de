//! Channels on their owner's shard: the record of members and subscribers, joins
//! checked against the namespace's member limit and the lobby's games, and every
//! publication stamped with the channel's next sequence number and sent once to each
//! shard with receivers (so every receiver sees one order, whichever dialect it speaks).
//! The connection's side is in `pubsub`.

use super::channels::{ChannelRecord, RosterChange};
use super::documents::is_document_channel;
use super::lobby::PlayerChange;
use super::message::{
    ChannelMsg, ConnAddr, ConnId, ErrorCode, Event, Notice, PublishMode, Receipt, ShardMsg,
    TapEvent,
};
use super::namespace::Writers;
use super::{Engine, Outbox};

impl Engine {
    /// The owner's record of `channel`, made (and the backend told) if it is new.
    pub(super) fn occupy(&mut self, channel: &str, out: &mut impl Outbox) -> &mut ChannelRecord {
        if !self.owned_channels.contains(channel) && !is_document_channel(channel) {
            out.notice(Notice::ChannelOccupied {
                channel: Box::from(channel),
            });
        }
        self.owned_channels.entry(channel)
    }

    /// Drops the owner's record of `channel` if nothing refers to it (and tells the
    /// backend).
    pub(super) fn vacate_if_unused(&mut self, channel: Box<str>, out: &mut impl Outbox) {
        if self.owned_channels.remove_if_unused(&channel) && !is_document_channel(&channel) {
            out.notice(Notice::ChannelVacated { channel });
        }
    }

    /// Sends a message to the owner of the channel it names.
    pub(super) fn send_to_owner_of_channel(&mut self, msg: ChannelMsg, out: &mut impl Outbox) {
        let owner = self.owner(msg.channel());
        self.route(owner, ShardMsg::Channel(msg), out);
    }

    /// A message to this shard as a channel's owner.
    pub(super) fn on_channel_msg(&mut self, msg: ChannelMsg, out: &mut impl Outbox) {
        match msg {
            ChannelMsg::Join {
                channel,
                user,
                conn,
                invite,
                receipt,
            } => self.owner_join(channel, user, conn, invite, receipt, out),
            ChannelMsg::Leave {
                channel,
                user,
                conn,
            } => {
                let Some(rec) = self.owned_channels.get_mut(&channel) else {
                    return;
                };
                if rec.leave(&user, conn) == RosterChange::Member {
                    self.player_changed(&channel, &user, PlayerChange::Left, out);
                    out.notice(Notice::MemberRemoved {
                        channel: channel.clone(),
                        user: user.clone(),
                    });
                    self.tap(&channel, || TapEvent::Leave { user: user.clone() }, out);
                    if self.limits.namespaces.policy_of(&channel).join_leave {
                        let event = Event::MemberLeft {
                            channel: channel.clone(),
                            user,
                        };
                        self.send_to_channel(&channel, event, out);
                    }
                }
                self.vacate_if_unused(channel, out);
            }
            ChannelMsg::Subscribe {
                channel,
                conn,
                receipt,
            } => {
                self.occupy(&channel, out).listen(conn);
                let msg = ShardMsg::Subscribed {
                    channel,
                    conn: conn.conn,
                    receipt,
                };
                self.route(conn.shard, msg, out);
            }
            ChannelMsg::Unsubscribe { channel, conn } => {
                if let Some(rec) = self.owned_channels.get_mut(&channel) {
                    rec.unlisten(conn);
                    self.vacate_if_unused(channel, out);
                }
            }
            ChannelMsg::Publish {
                channel,
                user,
                conn,
                data,
                mode,
            } => self.owner_publish(channel, user, conn, data, mode, out),
            ChannelMsg::Announce { channel, data } => {
                self.sequence_and_send(&channel, Box::from(""), data, None, out);
            }
            ChannelMsg::Members {
                channel,
                conn,
                receipt,
            } => {
                let members = self
                    .owned_channels
                    .get(&channel)
                    .map(|rec| rec.members().map(Box::from).collect())
                    .unwrap_or_default();
                let event = Event::Members {
                    channel,
                    members,
                    receipt,
                };
                self.send_to_conn(conn, event, out);
            }
        }
    }

    fn owner_join(
        &mut self,
        channel: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
        invite: Vec<Box<str>>,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        if let Some(code) = self.game_refusal(&channel, &user) {
            return self.refuse_tie(conn, channel, code, receipt, out);
        }
        let max_members = self.limits.namespaces.policy_of(&channel).max_members;
        if !self.occupy(&channel, out).admits(&user, max_members) {
            self.vacate_if_unused(channel.clone(), out);
            return self.refuse_tie(conn, channel, ErrorCode::ChannelFull, receipt, out);
        }
        // Before `Joined`, so the newcomer's shard has not added it to the channel
        // yet and only the other members hear of it.
        self.admit_member(&channel, &user, conn, out);
        let members = self.owned_channels.get(&channel).expect("joined above");
        let members = members.members().map(Box::from).collect();
        let joined = ShardMsg::Joined {
            channel: channel.clone(),
            conn: conn.conn,
            members,
            receipt,
        };
        self.route(conn.shard, joined, out);
        for invitee in invite {
            if invitee == user {
                continue;
            }
            let event = Event::Invite {
                channel: channel.clone(),
                from: user.clone(),
            };
            let msg = ShardMsg::ToUser {
                user: invitee.clone(),
                event,
            };
            self.send_to_owner(&invitee, msg, out);
        }
    }

    /// Adds a member's connection to a channel's roster; a new member is announced to
    /// the backend, the channel's members and the lobby.
    pub(super) fn admit_member(
        &mut self,
        channel: &str,
        user: &str,
        conn: ConnAddr,
        out: &mut impl Outbox,
    ) {
        if self.occupy(channel, out).join(user, conn) != RosterChange::Member {
            return;
        }
        out.notice(Notice::MemberAdded {
            channel: Box::from(channel),
            user: Box::from(user),
        });
        self.tap(channel, || TapEvent::Join { user: user.into() }, out);
        if self.limits.namespaces.policy_of(channel).join_leave {
            let event = Event::MemberJoined {
                channel: Box::from(channel),
                user: Box::from(user),
            };
            self.send_to_channel(channel, event, out);
        }
        self.player_changed(channel, user, PlayerChange::Joined, out);
    }

    fn owner_publish(
        &mut self,
        channel: Box<str>,
        user: Box<str>,
        conn: ConnAddr,
        data: Box<str>,
        mode: PublishMode,
        out: &mut impl Outbox,
    ) {
        // The publisher's shard checked its tie; the owner checks it still holds.
        let tied = || {
            self.owned_channels
                .get(&channel)
                .is_some_and(|rec| rec.has_conn(conn))
        };
        let writers = self.limits.namespaces.policy_of(&channel).publish;
        if matches!(writers, Writers::Members | Writers::Subscribers) && !tied() {
            return self.refuse_at(conn, ErrorCode::NotMember, mode.receipt, out);
        }
        let skip = (!mode.echo).then_some(conn);
        self.sequence_and_send(&channel, user, data, skip, out);
        if let Some(receipt) = mode.receipt {
            self.send_to_conn(conn, Event::Published { channel, receipt }, out);
        }
    }

    /// Stamps a publication with the channel's next sequence number and sends it to
    /// every receiver; `None` (nothing sent) if the channel has no members or
    /// subscribers.
    pub(super) fn sequence_and_send(
        &mut self,
        channel: &str,
        from: Box<str>,
        data: Box<str>,
        skip: Option<ConnAddr>,
        out: &mut impl Outbox,
    ) -> Option<u64> {
        let rec = self.owned_channels.get_mut(channel)?;
        rec.seq += 1;
        let seq = rec.seq;
        self.tap(
            channel,
            || TapEvent::Message {
                seq,
                from: from.clone(),
                data: data.clone(),
            },
            out,
        );
        let event = Event::Message {
            channel: Box::from(channel),
            seq,
            from,
            data,
            skip,
        };
        self.send_to_channel(channel, event, out);
        Some(seq)
    }

    /// Tells the backend bus of `event` on `channel`, if the tap patterns select it.
    fn tap(&self, channel: &str, event: impl FnOnce() -> TapEvent, out: &mut impl Outbox) {
        if self.limits.taps.matches(channel) {
            out.notice(Notice::Tap {
                channel: channel.into(),
                event: event(),
            });
        }
    }

    /// Sends a channel event to every shard with receivers: one message per shard of
    /// this node, one per other node.
    pub(super) fn send_to_channel(&mut self, channel: &str, event: Event, out: &mut impl Outbox) {
        let Some(rec) = self.owned_channels.get(channel) else {
            return;
        };
        let shards = rec.shards();
        let msg = ShardMsg::ToChannel {
            channel: Box::from(channel),
            event,
        };
        self.route_many(shards, msg, out);
    }

    /// Delivers a channel event to this shard's receivers, minus a publisher that
    /// asked not to get its own publication.
    pub(super) fn deliver_to_channel(
        &mut self,
        channel: &str,
        event: &Event,
        out: &mut impl Outbox,
    ) {
        let receivers = self.memberships.conns(channel);
        match event.skipped() {
            Some(skip) if skip.shard == self.me && receivers.contains(&skip.conn) => {
                let others: Vec<ConnId> = receivers
                    .iter()
                    .copied()
                    .filter(|c| *c != skip.conn)
                    .collect();
                out.deliver(&others, event);
            }
            _ => out.deliver(receivers, event),
        }
    }
}
