//! Channels on a connection's side: members that join (with a roster and invitations)
//! and subscribers that only listen, the namespace's rules checked, the requests sent to
//! the channel's owner and its answers taken. The owner's side is `channel_owner`.
//!
//! Every publication goes through the channel's owner shard, which stamps its sequence
//! number and sends one message per shard with receivers, so every receiver sees a
//! channel's publications in one order whichever dialect it speaks.

use std::rc::Rc;

use super::documents::is_document_channel;
use super::message::{
    ChannelCommand, ChannelMsg, ConnAddr, ConnId, ErrorCode, Event, PublishMode, Receipt, ShardMsg,
};
use super::namespace::{Readers, Writers};
use super::{Engine, Outbox, refuse};

/// How far a local connection's join or subscription has got.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum JoinState {
    /// Sent to the owner, not yet acknowledged.
    Pending,
    Done,
}

/// One channel a local connection joined or subscribed to.
#[derive(Debug)]
pub(super) struct Tie {
    pub channel: Rc<str>,
    pub state: JoinState,
    /// A member (joined, on the roster) rather than a subscriber.
    pub member: bool,
    /// Requests for this tie sent to the owner and not answered yet (a client may
    /// repeat a join or an open before the first is answered): a refusal takes a
    /// pending tie only when it answers the last of them.
    pub in_flight: u16,
}

impl Engine {
    /// Join, leave, subscribe, unsubscribe or publish for a local connection; `user` is
    /// its identity, if it has one.
    pub(super) fn channel_command(
        &mut self,
        conn: ConnId,
        user: Option<Rc<str>>,
        cmd: ChannelCommand,
        out: &mut impl Outbox,
    ) {
        if let ChannelCommand::Join { receipt, .. } | ChannelCommand::Leave { receipt, .. } = &cmd
            && user.is_none()
        {
            let receipt = receipt.clone();
            return refuse(conn, ErrorCode::NotIdentified, receipt, out);
        }
        // A document's channel carries its edits, in order, to those who opened it;
        // World's `ot.close` unsubscribes from it, nothing else may touch it.
        let into_document = match &cmd {
            ChannelCommand::Join {
                channel, receipt, ..
            }
            | ChannelCommand::Subscribe { channel, receipt }
            | ChannelCommand::Members { channel, receipt } => Some((channel, receipt)),
            ChannelCommand::Publish { channel, mode, .. } => Some((channel, &mode.receipt)),
            _ => None,
        };
        if let Some((channel, receipt)) = into_document
            && is_document_channel(channel)
        {
            let receipt = receipt.clone();
            return refuse(conn, ErrorCode::DocumentChannel, receipt, out);
        }
        let authenticated = user.is_some() || self.conns[&conn].credentialed;
        if let Err((code, receipt)) = self.permitted(conn, authenticated, &cmd) {
            return refuse(conn, code, receipt, out);
        }
        let user = user.as_deref().unwrap_or("");
        match cmd {
            ChannelCommand::Join {
                channel,
                invite,
                receipt,
            } => self.join(conn, user, channel, invite, receipt, out),
            ChannelCommand::Leave { channel, receipt } => {
                self.leave(conn, user, channel, receipt, out)
            }
            ChannelCommand::Subscribe { channel, receipt } => {
                self.subscribe(conn, channel, receipt, out)
            }
            ChannelCommand::Unsubscribe { channel, receipt } => {
                self.unsubscribe(conn, channel, receipt, out)
            }
            ChannelCommand::Publish {
                channel,
                data,
                mode,
            } => self.publish(conn, user, channel, data, mode, out),
            ChannelCommand::Members { channel, receipt } => {
                let msg = ChannelMsg::Members {
                    conn: self.addr(conn),
                    receipt,
                    channel,
                };
                self.send_to_owner_of_channel(msg, out);
            }
        }
    }

    /// Whether the channel's namespace lets this connection (`identified`: with an
    /// identity or a credential, or not) do
    /// `cmd`; the refusal and its receipt if not. Joins and leaves are checked
    /// elsewhere (an identity here, the member limit at the owner).
    fn permitted(
        &self,
        conn: ConnId,
        identified: bool,
        cmd: &ChannelCommand,
    ) -> Result<(), (ErrorCode, Receipt)> {
        let tie = |channel: &str| {
            self.conns[&conn]
                .tie(channel)
                .filter(|t| t.state == JoinState::Done)
        };
        let refuse = |code, receipt: &Receipt| Err((code, receipt.clone()));
        match cmd {
            ChannelCommand::Subscribe { channel, receipt } => {
                match self.limits.namespaces.policy_of(channel).receive {
                    Readers::Anyone | Readers::Backend => Ok(()),
                    Readers::Authenticated if identified => Ok(()),
                    Readers::Authenticated => refuse(ErrorCode::NotIdentified, receipt),
                    Readers::Members => refuse(ErrorCode::Forbidden, receipt),
                }
            }
            ChannelCommand::Publish { channel, mode, .. } => {
                let receipt = &mode.receipt;
                match self.limits.namespaces.policy_of(channel).publish {
                    Writers::Anyone | Writers::Backend => Ok(()),
                    Writers::Authenticated if identified => Ok(()),
                    Writers::Authenticated => refuse(ErrorCode::NotIdentified, receipt),
                    Writers::Subscribers if tie(channel).is_some() => Ok(()),
                    Writers::Members if tie(channel).is_some_and(|t| t.member) => Ok(()),
                    Writers::Subscribers | Writers::Members => {
                        refuse(ErrorCode::NotMember, receipt)
                    }
                    Writers::Server => refuse(ErrorCode::ServerChannel, receipt),
                }
            }
            ChannelCommand::Members { channel, receipt } => {
                // Whoever may receive the channel may list its members: by the same
                // rule as a subscription, and through a tie where the backend decides
                // (the hook was asked when the tie was made).
                let policy = self.limits.namespaces.policy_of(channel);
                let reader = match policy.receive {
                    Readers::Anyone => true,
                    Readers::Authenticated => identified,
                    Readers::Members | Readers::Backend => tie(channel).is_some(),
                };
                if policy.presence && reader {
                    Ok(())
                } else {
                    refuse(ErrorCode::Forbidden, receipt)
                }
            }
            ChannelCommand::Join { .. }
            | ChannelCommand::Leave { .. }
            | ChannelCommand::Unsubscribe { .. } => Ok(()),
        }
    }

    /// Adds a tie unless the connection has one to `channel`; false (after refusing) if
    /// that would exceed the per-connection limit.
    pub(super) fn tie(
        &mut self,
        conn: ConnId,
        channel: &str,
        member: bool,
        receipt: &Receipt,
        out: &mut impl Outbox,
    ) -> bool {
        let local = self.conns.get_mut(&conn).expect("checked by caller");
        if let Some(tie) = local.ties.iter_mut().find(|t| &*t.channel == channel) {
            tie.in_flight = tie.in_flight.saturating_add(1);
            return true;
        }
        if local.ties.len() >= self.limits.max_channels_per_conn {
            refuse(conn, ErrorCode::TooManyChannels, receipt.clone(), out);
            return false;
        }
        local.ties.push(Tie {
            channel: Rc::from(channel),
            state: JoinState::Pending,
            member,
            in_flight: 1,
        });
        true
    }

    fn join(
        &mut self,
        conn: ConnId,
        user: &str,
        channel: Box<str>,
        invite: Vec<Box<str>>,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        if !self.tie(conn, &channel, true, &receipt, out) {
            return;
        }
        let msg = ChannelMsg::Join {
            user: Box::from(user),
            conn: self.addr(conn),
            invite,
            receipt,
            channel,
        };
        self.send_to_owner_of_channel(msg, out);
    }

    fn subscribe(
        &mut self,
        conn: ConnId,
        channel: Box<str>,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        let local = &self.conns[&conn];
        if local
            .tie(&channel)
            .is_some_and(|t| t.state == JoinState::Done)
        {
            return out.deliver(&[conn], &Event::Subscribed { channel, receipt });
        }
        if !self.tie(conn, &channel, false, &receipt, out) {
            return;
        }
        let msg = ChannelMsg::Subscribe {
            conn: self.addr(conn),
            receipt,
            channel,
        };
        self.send_to_owner_of_channel(msg, out);
    }

    /// Removes the connection's tie to `channel` locally and tells the owner.
    pub(super) fn untie(
        &mut self,
        conn: ConnId,
        user: &str,
        channel: &str,
        out: &mut impl Outbox,
    ) -> bool {
        let local = self.conns.get_mut(&conn).expect("checked by caller");
        let Some(i) = local.ties.iter().position(|t| &*t.channel == channel) else {
            return false;
        };
        let tie = local.ties.swap_remove(i);
        if tie.in_flight > 0 {
            self.stale_answers
                .push((conn, tie.channel.clone(), tie.in_flight));
        }
        self.send_untie(conn, user, tie, out);
        true
    }

    /// Whether this answer for `channel` is one of those due for a tie the connection
    /// dropped (see `Engine::stale_answers`); counts it if so.
    pub(super) fn answer_was_stale(&mut self, conn: ConnId, channel: &str) -> bool {
        let Some(i) = self
            .stale_answers
            .iter()
            .position(|(c, ch, _)| *c == conn && &**ch == channel)
        else {
            return false;
        };
        let due = &mut self.stale_answers[i].2;
        *due -= 1;
        if *due == 0 {
            self.stale_answers.swap_remove(i);
        }
        true
    }

    fn send_untie(&mut self, conn: ConnId, user: &str, tie: Tie, out: &mut impl Outbox) {
        self.memberships.remove(&tie.channel, conn);
        let channel = Box::from(&*tie.channel);
        let msg = if tie.member {
            ChannelMsg::Leave {
                channel,
                user: Box::from(user),
                conn: self.addr(conn),
            }
        } else {
            ChannelMsg::Unsubscribe {
                channel,
                conn: self.addr(conn),
            }
        };
        self.send_to_owner_of_channel(msg, out);
    }

    /// The owner refuses a join or an open: the connection's shard drops its pending tie
    /// and answers the request.
    pub(super) fn refuse_tie(
        &mut self,
        conn: ConnAddr,
        channel: Box<str>,
        code: ErrorCode,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        let refused = ShardMsg::TieRefused {
            channel,
            conn: conn.conn,
            code,
            receipt,
        };
        self.route(conn.shard, refused, out);
    }

    fn leave(
        &mut self,
        conn: ConnId,
        user: &str,
        channel: Box<str>,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        let member = self.conns[&conn].tie(&channel).is_some_and(|t| t.member);
        if !member || !self.untie(conn, user, &channel, out) {
            return refuse(conn, ErrorCode::NotMember, receipt, out);
        }
        out.deliver(&[conn], &Event::Left { channel, receipt });
    }

    fn unsubscribe(
        &mut self,
        conn: ConnId,
        channel: Box<str>,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        let listener = self.conns[&conn].tie(&channel).is_some_and(|t| !t.member);
        if !listener || !self.untie(conn, "", &channel, out) {
            return refuse(conn, ErrorCode::NotSubscribed, receipt, out);
        }
        out.deliver(&[conn], &Event::Unsubscribed { channel, receipt });
    }

    fn publish(
        &mut self,
        conn: ConnId,
        user: &str,
        channel: Box<str>,
        data: Box<str>,
        mode: PublishMode,
        out: &mut impl Outbox,
    ) {
        let msg = ChannelMsg::Publish {
            user: Box::from(user),
            conn: self.addr(conn),
            data,
            mode,
            channel,
        };
        self.send_to_owner_of_channel(msg, out);
    }

    /// Undoes every join and subscription of a closing connection.
    pub(super) fn drop_ties(
        &mut self,
        conn: ConnId,
        user: &str,
        ties: Vec<Tie>,
        out: &mut impl Outbox,
    ) {
        for tie in ties {
            self.send_untie(conn, user, tie, out);
        }
    }

    /// The channel owner accepted a join of a local connection.
    pub(super) fn on_joined(
        &mut self,
        channel: Box<str>,
        conn: ConnId,
        members: Vec<Box<str>>,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        // An answer to a join the client left before it came (the leave undid it at the
        // owner) touches no newer tie.
        let fresh = !self.answer_was_stale(conn, &channel) && self.tie_done(conn, &channel);
        // Every RPC request is answered (a repeated join, or one the client left again
        // before this came); turntable v1 hears of a join once.
        let rpc = receipt.is_some() && self.conns.contains_key(&conn);
        if fresh || rpc {
            let event = Event::Joined {
                channel,
                members,
                receipt,
            };
            out.deliver(&[conn], &event);
        }
    }

    /// The channel owner counted a subscription of a local connection.
    pub(super) fn on_subscribed(
        &mut self,
        channel: Box<str>,
        conn: ConnId,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        if self.conns.contains_key(&conn) {
            if !self.answer_was_stale(conn, &channel) {
                self.tie_done(conn, &channel);
            }
            out.deliver(&[conn], &Event::Subscribed { channel, receipt });
        }
    }

    /// The channel owner refused a join or an open of a local connection.
    pub(super) fn on_tie_refused(
        &mut self,
        channel: &str,
        conn: ConnId,
        code: ErrorCode,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        if !self.answer_was_stale(conn, channel)
            && let Some(local) = self.conns.get_mut(&conn)
            && let Some(i) = local.ties.iter().position(|t| &*t.channel == channel)
        {
            let tie = &mut local.ties[i];
            tie.in_flight = tie.in_flight.saturating_sub(1);
            if tie.state == JoinState::Pending && tie.in_flight == 0 {
                local.ties.swap_remove(i);
            }
        }
        refuse(conn, code, receipt, out);
    }

    /// Counts an owner's acceptance of one of the tie's requests, marking a pending tie
    /// done and adding the connection to the channel's local receivers; false if there
    /// was no pending tie (closed, left, or a repeat).
    pub(super) fn tie_done(&mut self, conn: ConnId, channel: &str) -> bool {
        let Some(local) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Some(tie) = local.ties.iter_mut().find(|t| &*t.channel == channel) else {
            return false;
        };
        tie.in_flight = tie.in_flight.saturating_sub(1);
        if tie.state == JoinState::Done {
            return false;
        }
        tie.state = JoinState::Done;
        self.memberships.add(channel, conn);
        true
    }
}
