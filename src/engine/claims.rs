//! Per-user connection limits: a user's owner shard keeps the user's claimed
//! connections oldest first, and when one more than allowed is claimed, the oldest is
//! told it was replaced (its network layer then closes it).

use std::collections::VecDeque;

use super::message::{ClaimMsg, ConnAddr, ConnId, Event, ShardMsg};
use super::owned::Record;
use super::ownership::ShardId;
use super::{Engine, Outbox};

/// The owner's list of one user's claimed connections, oldest first.
#[derive(Debug, Default)]
pub struct ClaimList {
    conns: VecDeque<ConnAddr>,
}

impl Record for ClaimList {
    fn is_unused(&self) -> bool {
        self.conns.is_empty()
    }
}

impl ClaimList {
    /// Adds a connection and returns those beyond `max`, oldest first.
    pub fn claim(&mut self, conn: ConnAddr, max: usize) -> Vec<ConnAddr> {
        if !self.conns.contains(&conn) {
            self.conns.push_back(conn);
        }
        let over = self.conns.len().saturating_sub(max);
        self.conns.drain(..over).collect()
    }

    pub fn release(&mut self, conn: ConnAddr) {
        self.conns.retain(|c| *c != conn);
    }

    /// The claimed connections, oldest first.
    pub fn conns(&self) -> impl Iterator<Item = ConnAddr> + '_ {
        self.conns.iter().copied()
    }

    /// Makes `from`'s claimed connections exactly `conns` (a re-announcement): those
    /// gone are released, new ones count as the newest.
    pub fn resync(&mut self, from: ShardId, conns: &[ConnId]) {
        self.conns
            .retain(|c| c.shard != from || conns.contains(&c.conn));
        for &conn in conns {
            let conn = ConnAddr { shard: from, conn };
            if !self.conns.contains(&conn) {
                self.conns.push_back(conn);
            }
        }
    }
}

impl Engine {
    /// A local, identified connection claims one of its user's connection slots.
    pub(super) fn claim(&mut self, conn: ConnId, user: &str, max: usize, out: &mut impl Outbox) {
        let local = self.conns.get_mut(&conn).expect("checked by caller");
        local.claimed = true;
        let msg = ShardMsg::Claim(ClaimMsg::Claim {
            user: Box::from(user),
            conn: self.addr(conn),
            max,
        });
        self.send_to_owner(user, msg, out);
    }

    /// The owner side of claims and releases.
    pub(super) fn on_claim_msg(&mut self, msg: ClaimMsg, out: &mut impl Outbox) {
        match msg {
            ClaimMsg::Claim { user, conn, max } => {
                for replaced in self.claims.entry(&user).claim(conn, max) {
                    self.send_to_conn(replaced, Event::Replaced, out);
                }
            }
            ClaimMsg::Release { user, conn } => {
                if let Some(list) = self.claims.get_mut(&user) {
                    list.release(conn);
                    self.claims.remove_if_unused(&user);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_claims_go_first() {
        let addr = |shard, conn| ConnAddr {
            shard,
            conn: ConnId(conn),
        };
        let mut list = ClaimList::default();
        assert!(list.claim(addr(0, 1), 2).is_empty());
        assert!(list.claim(addr(1, 2), 2).is_empty());
        assert!(list.claim(addr(1, 2), 2).is_empty());
        assert_eq!(list.claim(addr(0, 3), 2), vec![addr(0, 1)]);
        list.release(addr(1, 2));
        assert!(list.claim(addr(1, 4), 2).is_empty());
        list.release(addr(0, 3));
        list.release(addr(1, 4));
        assert!(list.is_unused());
    }
}
