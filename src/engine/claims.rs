//! Per-user connection limits: a user's owner shard keeps the user's claimed
//! connections oldest first, by when each claimed (a claim from another node may arrive
//! after a younger one), and when one more than allowed is claimed, the oldest is told
//! it was replaced (its network layer then closes it).

use std::collections::VecDeque;

use super::message::{ClaimMsg, ConnAddr, ConnId, Event, ShardMsg};
use super::owned::Record;
use super::ownership::ShardId;
use super::{Engine, Outbox};

/// The owner's list of one user's claimed connections, oldest first, each with when
/// it claimed.
#[derive(Debug, Default)]
pub struct ClaimList {
    conns: VecDeque<(u64, ConnAddr)>,
}

impl Record for ClaimList {
    fn is_unused(&self) -> bool {
        self.conns.is_empty()
    }
}

impl ClaimList {
    /// Adds a connection that claimed at `since` and returns those beyond `max`,
    /// oldest first.
    pub fn claim(&mut self, conn: ConnAddr, since: u64, max: usize) -> Vec<ConnAddr> {
        self.insert(conn, since);
        let over = self.conns.len().saturating_sub(max);
        self.conns.drain(..over).map(|(_, c)| c).collect()
    }

    /// Puts `conn` in its place by `since`, after the claims of the same instant.
    fn insert(&mut self, conn: ConnAddr, since: u64) {
        if self.conns.iter().any(|(_, c)| *c == conn) {
            return;
        }
        let at = self.conns.partition_point(|(t, _)| *t <= since);
        self.conns.insert(at, (since, conn));
    }

    pub fn release(&mut self, conn: ConnAddr) {
        self.conns.retain(|(_, c)| *c != conn);
    }

    /// The claimed connections, oldest first.
    pub fn conns(&self) -> impl Iterator<Item = ConnAddr> + '_ {
        self.conns.iter().map(|(_, c)| *c)
    }

    /// Makes `from`'s claimed connections exactly `conns` (a re-announcement, each with
    /// when it claimed): those gone are released, the others take their places.
    pub fn resync(&mut self, from: ShardId, conns: &[(ConnId, u64)]) {
        self.conns
            .retain(|(_, c)| c.shard != from || conns.iter().any(|(id, _)| *id == c.conn));
        for &(conn, since) in conns {
            self.insert(ConnAddr { shard: from, conn }, since);
        }
    }
}

impl Engine {
    /// A local, identified connection claims one of its user's connection slots.
    pub(super) fn claim(
        &mut self,
        conn: ConnId,
        user: &str,
        max: usize,
        since: u64,
        out: &mut impl Outbox,
    ) {
        let local = self.conns.get_mut(&conn).expect("checked by caller");
        local.claimed_at = Some(since);
        let msg = ShardMsg::Claim(ClaimMsg::Claim {
            user: Box::from(user),
            conn: self.addr(conn),
            max,
            since,
        });
        self.send_to_owner(user, msg, out);
    }

    /// The owner side of claims and releases.
    pub(super) fn on_claim_msg(&mut self, msg: ClaimMsg, out: &mut impl Outbox) {
        match msg {
            ClaimMsg::Claim {
                user,
                conn,
                max,
                since,
            } => {
                for replaced in self.claims.entry(&user).claim(conn, since, max) {
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
        assert!(list.claim(addr(0, 1), 10, 2).is_empty());
        assert!(list.claim(addr(1, 2), 20, 2).is_empty());
        assert!(list.claim(addr(1, 2), 20, 2).is_empty());
        assert_eq!(list.claim(addr(0, 3), 30, 2), vec![addr(0, 1)]);
        list.release(addr(1, 2));
        assert!(list.claim(addr(1, 4), 40, 2).is_empty());
        list.release(addr(0, 3));
        list.release(addr(1, 4));
        assert!(list.is_unused());
    }

    #[test]
    fn a_claim_that_arrives_late_takes_its_place_by_time() {
        let addr = |shard, conn| ConnAddr {
            shard,
            conn: ConnId(conn),
        };
        let mut list = ClaimList::default();
        assert!(list.claim(addr(1, 2), 20, 2).is_empty());
        // Claimed first on another node, heard second: still the oldest.
        assert!(list.claim(addr(0, 1), 10, 2).is_empty());
        assert_eq!(list.claim(addr(2, 3), 30, 2), vec![addr(0, 1)]);
        // A re-announcement keeps each claim's place.
        list.resync(2, &[(ConnId(3), 30), (ConnId(5), 15)]);
        assert_eq!(
            list.conns().collect::<Vec<_>>(),
            vec![addr(2, 5), addr(1, 2), addr(2, 3)]
        );
    }
}
