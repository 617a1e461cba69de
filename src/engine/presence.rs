//! Presence tables: the owner side (each user's status, the shards holding its
//! connections and the shards watching it) and the watcher side (which local connections
//! watch which users, the last status heard from each owner, and snapshots still waiting
//! for an owner's first answer).

use std::rc::Rc;

use ahash::AHashMap;
use serde::{Deserialize, Serialize};

use super::message::{ConnId, Status};
use super::owned::Record;
use super::ownership::ShardId;

/// A set of shards (cluster indices) as a bit mask: shards are few (at most
/// [`MAX_SHARDS`] in the whole cluster) and these sets are touched on every presence
/// change, so a word beats a collection.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSet(u128);

/// The most shards a cluster can run, all nodes together (K x N); bounded by
/// [`ShardSet`]'s width.
pub const MAX_SHARDS: usize = 128;

impl ShardSet {
    /// Adds a shard; true when it was not there.
    pub fn insert(&mut self, shard: ShardId) -> bool {
        let had = self.contains(shard);
        self.0 |= 1u128 << shard;
        !had
    }

    /// Removes a shard; true when it was there.
    pub fn remove(&mut self, shard: ShardId) -> bool {
        let had = self.contains(shard);
        self.0 &= !(1u128 << shard);
        had
    }

    pub fn contains(self, shard: ShardId) -> bool {
        self.0 & (1u128 << shard) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The shards in either set.
    pub fn union(self, other: ShardSet) -> ShardSet {
        ShardSet(self.0 | other.0)
    }

    /// The shards in this set and not in `other`.
    pub fn difference(self, other: ShardSet) -> ShardSet {
        ShardSet(self.0 & !other.0)
    }

    /// The shards in both sets.
    pub fn intersection(self, other: ShardSet) -> ShardSet {
        ShardSet(self.0 & other.0)
    }

    /// The set with one shard.
    pub fn one(shard: ShardId) -> ShardSet {
        ShardSet(1u128 << shard)
    }

    /// The members of `range` in this set, renumbered from `range.start`: a node's
    /// shards (cluster indices) as indices inside that node.
    pub fn slice(self, range: std::ops::Range<ShardId>) -> ShardSet {
        let len = range.end - range.start;
        let mask = if len >= 128 {
            u128::MAX
        } else {
            (1u128 << len) - 1
        };
        ShardSet(self.0.checked_shr(range.start as u32).unwrap_or(0) & mask)
    }

    /// Whether every member is below `n`.
    pub fn below(self, n: ShardId) -> bool {
        n >= 128 || self.0 >> n == 0
    }

    /// The shards in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = ShardId> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let shard = bits.trailing_zeros() as ShardId;
            bits &= bits - 1;
            Some(shard)
        })
    }
}

impl FromIterator<ShardId> for ShardSet {
    fn from_iter<I: IntoIterator<Item = ShardId>>(iter: I) -> Self {
        let mut set = ShardSet::default();
        for shard in iter {
            set.insert(shard);
        }
        set
    }
}

/// The owner shard's record of one user.
#[derive(Debug)]
pub struct UserRecord {
    /// The status watchers see: `Offline` while no shard holds a connection.
    pub status: Status,
    /// Shards holding at least one connection of the user.
    pub connected: ShardSet,
    /// Shards with at least one connection watching the user.
    pub watchers: ShardSet,
    /// `status` came from a re-announcement to an owner that had lost the user, not
    /// from the user: a later re-announcement naming a status may still correct it.
    pub status_guessed: bool,
}

impl Default for UserRecord {
    /// An unknown user is offline.
    fn default() -> Self {
        UserRecord {
            status: Status::Offline,
            connected: ShardSet::default(),
            watchers: ShardSet::default(),
            status_guessed: false,
        }
    }
}

impl Record for UserRecord {
    /// Nobody is connected and nobody watches: the record can go.
    fn is_unused(&self) -> bool {
        self.connected.is_empty() && self.watchers.is_empty()
    }
}

/// One watched user on the watching shard.
#[derive(Debug, Default)]
pub struct WatchEntry {
    /// The owner's last word; `None` until its answer to our `Watch` arrives.
    pub status: Option<Status>,
    /// Local connections watching this user.
    pub conns: Vec<ConnId>,
}

/// A watch request whose snapshot waits for owners to answer.
#[derive(Debug)]
pub struct PendingSnapshot {
    pub conn: ConnId,
    /// Every id of the request, in the client's order (the snapshot lists them all).
    pub ids: Vec<Rc<str>>,
    /// Ids whose owner has not answered yet.
    pub missing: Vec<Rc<str>>,
}

/// The watcher side: what this shard's connections watch.
#[derive(Debug, Default)]
pub struct Watches {
    pub entries: AHashMap<Rc<str>, WatchEntry>,
    pub pending: Vec<PendingSnapshot>,
}

impl Watches {
    /// The shared key for `user`, and whether its entry was just created (so the owner
    /// must be told).
    pub fn entry(&mut self, user: &str) -> (Rc<str>, &mut WatchEntry, bool) {
        let created = !self.entries.contains_key(user);
        let key = match self.entries.get_key_value(user) {
            Some((key, _)) => key.clone(),
            None => Rc::from(user),
        };
        let entry = self.entries.entry(key.clone()).or_default();
        (key, entry, created)
    }

    /// The status to report for `user` in a snapshot.
    pub fn status_of(&self, user: &str) -> Status {
        self.entries
            .get(user)
            .and_then(|e| e.status)
            .unwrap_or(Status::Offline)
    }

    /// Marks `user` answered in every pending snapshot; returns the snapshots now
    /// complete.
    pub fn resolve(&mut self, user: &str) -> Vec<PendingSnapshot> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            p.missing.retain(|id| &**id != user);
            if p.missing.is_empty() {
                done.push(self.pending.swap_remove(i));
            } else {
                i += 1;
            }
        }
        done
    }

    /// True when `conn` waits for a snapshot that includes `user`: such a connection
    /// must not see a change of `user` before its snapshot.
    pub fn awaits_snapshot(&self, conn: ConnId, user: &str) -> bool {
        self.pending
            .iter()
            .any(|p| p.conn == conn && p.ids.iter().any(|id| &**id == user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_set_iterates_in_order() {
        let mut s = ShardSet::default();
        assert!(s.insert(5));
        assert!(s.insert(0));
        assert!(!s.insert(5));
        assert!(s.insert(63));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 5, 63]);
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 63]);
    }

    #[test]
    fn a_slice_renumbers_one_nodes_shards() {
        let s: ShardSet = [1, 4, 5, 127].into_iter().collect();
        assert_eq!(s.slice(0..4).iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(s.slice(4..8).iter().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(s.slice(8..126).iter().count(), 0);
        assert_eq!(s.slice(64..128).iter().collect::<Vec<_>>(), vec![63]);
        assert_eq!(s.slice(0..128), s);
        assert!(ShardSet::one(3).below(4) && !ShardSet::one(4).below(4));
        assert!(s.below(128));
    }

    #[test]
    fn resolve_completes_only_when_every_id_answered() {
        let mut w = Watches::default();
        let ids: Vec<Rc<str>> = vec!["a".into(), "b".into()];
        w.pending.push(PendingSnapshot {
            conn: ConnId(1),
            ids: ids.clone(),
            missing: ids,
        });
        assert!(w.resolve("a").is_empty());
        assert!(w.resolve("a").is_empty());
        assert_eq!(w.resolve("b").len(), 1);
        assert!(w.pending.is_empty());
    }
}
