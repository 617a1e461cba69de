//! Channel tables: the owner side (members, which connections joined from which shard,
//! the publication sequence) and the local side (which of this shard's connections
//! receive a channel's events).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use ahash::AHashMap;

use super::message::{ConnAddr, ConnId};
use super::owned::{Owned, Record, ShardCounts};
use super::presence::ShardSet;

/// The owner shard's record of one channel.
#[derive(Debug, Default)]
pub struct ChannelRecord {
    /// Members in the order they joined, with how many of their connections joined.
    members: Vec<(Rc<str>, u32)>,
    /// Every joined connection, with its user if it is a member (not a subscriber), so
    /// a repeated join is idempotent and a lost shard's connections can be undone.
    conns: AHashMap<ConnAddr, Option<Rc<str>>>,
    /// Joined connections per shard: the shards a publication is sent to.
    per_shard: ShardCounts,
    /// The last sequence number given to a publication.
    pub seq: u64,
}

/// What a join or leave changed in the roster.
#[derive(Debug, PartialEq, Eq)]
pub enum RosterChange {
    /// The connection was already in (join) or already out (leave).
    None,
    /// The connection changed but the user's membership did not.
    ConnOnly,
    /// The user became, or stopped being, a member.
    Member,
}

impl ChannelRecord {
    /// Adds a connection of `user`.
    pub fn join(&mut self, user: &str, conn: ConnAddr) -> RosterChange {
        if self.conns.contains_key(&conn) {
            return RosterChange::None;
        }
        self.per_shard.add(conn.shard);
        let (key, change) = match self.members.iter_mut().find(|(u, _)| &**u == user) {
            Some((key, n)) => {
                *n += 1;
                (key.clone(), RosterChange::ConnOnly)
            }
            None => {
                let key: Rc<str> = Rc::from(user);
                self.members.push((key.clone(), 1));
                (key, RosterChange::Member)
            }
        };
        self.conns.insert(conn, Some(key));
        change
    }

    /// Removes a connection of `user`.
    pub fn leave(&mut self, user: &str, conn: ConnAddr) -> RosterChange {
        if self.conns.remove(&conn).is_none() {
            return RosterChange::None;
        }
        self.per_shard.remove(conn.shard);
        let Some(i) = self.members.iter().position(|(u, _)| &**u == user) else {
            return RosterChange::ConnOnly;
        };
        self.members[i].1 -= 1;
        if self.members[i].1 == 0 {
            self.members.remove(i);
            RosterChange::Member
        } else {
            RosterChange::ConnOnly
        }
    }

    /// Adds a subscriber: it receives publications but is not a member. False if the
    /// connection was already in.
    pub fn listen(&mut self, conn: ConnAddr) -> bool {
        let new = !self.conns.contains_key(&conn);
        if new {
            self.conns.insert(conn, None);
            self.per_shard.add(conn.shard);
        }
        new
    }

    /// Removes a subscriber.
    pub fn unlisten(&mut self, conn: ConnAddr) {
        if self.conns.remove(&conn).is_some() {
            self.per_shard.remove(conn.shard);
        }
    }

    pub fn has_conn(&self, conn: ConnAddr) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Every connection with the user it is a member as (`None`: a subscriber).
    pub fn conns(&self) -> impl Iterator<Item = (ConnAddr, Option<&Rc<str>>)> {
        self.conns.iter().map(|(conn, user)| (*conn, user.as_ref()))
    }

    /// Whether `user` may join under a limit of `max` members: it is one already, or
    /// there is room.
    pub fn admits(&self, user: &str, max: Option<usize>) -> bool {
        max.is_none_or(|max| self.members.len() < max)
            || self.members.iter().any(|(u, _)| &**u == user)
    }

    /// Member ids in join order.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(u, _)| &**u)
    }

    /// Shards with at least one joined connection.
    pub fn shards(&self) -> ShardSet {
        self.per_shard.shards()
    }
}

/// One channel's figures, as the dashboard lists the busiest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelFigures {
    pub channel: Box<str>,
    /// Connections joined to it (members and subscribers), on every shard and node.
    pub subscribers: usize,
    /// Publications it has carried (its sequence number): since it was last created.
    pub publications: u64,
}

/// The `n` channels of `channels` with the most subscribers (then the most
/// publications, then by name), busiest first. One pass, holding `n` at a time.
pub fn busiest(channels: &Owned<ChannelRecord>, n: usize) -> Vec<ChannelFigures> {
    let mut top = BinaryHeap::with_capacity(n + 1);
    for (name, rec) in channels.iter() {
        top.push(Reverse((rec.conns.len(), rec.seq, Reverse(name))));
        if top.len() > n {
            top.pop();
        }
    }
    top.into_sorted_vec()
        .into_iter()
        .map(
            |Reverse((subscribers, publications, Reverse(name)))| ChannelFigures {
                channel: Box::from(&**name),
                subscribers,
                publications,
            },
        )
        .collect()
}

impl Record for ChannelRecord {
    fn is_unused(&self) -> bool {
        self.conns.is_empty()
    }
}

/// Which local connections receive each channel's events: the fan-out list handed, as a
/// slice, to the network layer.
#[derive(Debug, Default)]
pub struct Memberships {
    channels: AHashMap<Rc<str>, Vec<ConnId>>,
}

impl Memberships {
    pub fn add(&mut self, channel: &str, conn: ConnId) {
        match self.channels.get_mut(channel) {
            Some(conns) => conns.push(conn),
            None => {
                self.channels.insert(Rc::from(channel), vec![conn]);
            }
        }
    }

    pub fn remove(&mut self, channel: &str, conn: ConnId) {
        if let Some(conns) = self.channels.get_mut(channel) {
            if let Some(i) = conns.iter().position(|c| *c == conn) {
                conns.swap_remove(i);
            }
            if conns.is_empty() {
                self.channels.remove(channel);
            }
        }
    }

    /// The local connections joined to `channel`.
    pub fn conns(&self, channel: &str) -> &[ConnId] {
        self.channels.get(channel).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ShardId;

    fn addr(shard: ShardId, conn: u64) -> ConnAddr {
        ConnAddr {
            shard,
            conn: ConnId(conn),
        }
    }

    #[test]
    fn a_user_is_one_member_however_many_connections_join() {
        let mut ch = ChannelRecord::default();
        assert_eq!(ch.join("a", addr(0, 1)), RosterChange::Member);
        assert_eq!(ch.join("a", addr(1, 2)), RosterChange::ConnOnly);
        assert_eq!(ch.join("a", addr(1, 2)), RosterChange::None);
        assert_eq!(ch.join("b", addr(1, 3)), RosterChange::Member);
        assert_eq!(ch.members().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(ch.shards().iter().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(ch.leave("a", addr(0, 1)), RosterChange::ConnOnly);
        assert_eq!(ch.shards().iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(ch.leave("a", addr(1, 2)), RosterChange::Member);
        assert_eq!(ch.leave("a", addr(1, 2)), RosterChange::None);
        assert_eq!(ch.members().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn the_busiest_are_those_with_most_subscribers_then_publications() {
        let mut channels = Owned::<ChannelRecord>::default();
        for (name, subscribers, seq) in [("a", 1, 9), ("b", 3, 0), ("c", 1, 2), ("d", 2, 0)] {
            let rec = channels.entry(name);
            for conn in 0..subscribers {
                rec.listen(addr(0, conn));
            }
            rec.seq = seq;
        }
        let top: Vec<(String, usize, u64)> = busiest(&channels, 3)
            .into_iter()
            .map(|c| (c.channel.into(), c.subscribers, c.publications))
            .collect();
        assert_eq!(
            top,
            [("b".into(), 3, 0), ("d".into(), 2, 0), ("a".into(), 1, 9)]
        );
        assert!(busiest(&channels, 0).is_empty());
    }

    #[test]
    fn subscribers_receive_without_being_members() {
        let mut ch = ChannelRecord::default();
        assert!(ch.listen(addr(1, 5)));
        assert!(!ch.listen(addr(1, 5)));
        assert_eq!(ch.members().count(), 0);
        assert_eq!(ch.shards().iter().collect::<Vec<_>>(), vec![1]);
        ch.unlisten(addr(1, 5));
        ch.unlisten(addr(1, 5));
        assert!(ch.is_unused());
        assert_eq!(ch.shards().iter().count(), 0);
    }

    #[test]
    fn memberships_drop_empty_channels() {
        let mut m = Memberships::default();
        m.add("c", ConnId(1));
        m.add("c", ConnId(2));
        m.remove("c", ConnId(1));
        assert_eq!(m.conns("c"), &[ConnId(2)]);
        m.remove("c", ConnId(2));
        assert!(m.channels.is_empty());
    }
}
