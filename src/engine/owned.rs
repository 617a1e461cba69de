//! What an owner shard keeps per id, shared by users, channels and chat rooms: a table of
//! records created on first use and dropped as soon as nothing refers to them (memory
//! follows activity, not history), and per-shard connection counts (where to fan out).

use std::rc::Rc;

use ahash::AHashMap;

use super::ownership::ShardId;
use super::presence::ShardSet;

/// A record an owner shard keeps for one id.
pub trait Record: Default {
    /// Nothing refers to the record any more: it can go.
    fn is_unused(&self) -> bool;
}

/// The records of one kind this shard owns, by id.
#[derive(Debug)]
pub struct Owned<R> {
    records: AHashMap<Rc<str>, R>,
}

impl<R> Default for Owned<R> {
    fn default() -> Self {
        Owned {
            records: AHashMap::default(),
        }
    }
}

impl<R: Record> Owned<R> {
    pub fn get(&self, id: &str) -> Option<&R> {
        self.records.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut R> {
        self.records.get_mut(id)
    }

    /// The record of `id`, created (default) when missing.
    pub fn entry(&mut self, id: &str) -> &mut R {
        if !self.records.contains_key(id) {
            self.records.insert(Rc::from(id), R::default());
        }
        self.records.get_mut(id).expect("inserted above")
    }

    /// Drops the record of `id` if it is unused; true if it did.
    pub fn remove_if_unused(&mut self, id: &str) -> bool {
        let unused = self.records.get(id).is_some_and(R::is_unused);
        if unused {
            self.records.remove(id);
        }
        unused
    }

    pub fn contains(&self, id: &str) -> bool {
        self.records.contains_key(id)
    }

    /// Every record.
    pub fn iter(&self) -> impl Iterator<Item = (&Rc<str>, &R)> {
        self.records.iter()
    }

    /// Every record, to update them all (then [`Owned::remove_unused`]).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Rc<str>, &mut R)> {
        self.records.iter_mut()
    }

    /// Drops every unused record.
    pub fn remove_unused(&mut self) {
        self.records.retain(|_, record| !record.is_unused());
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Connections per shard of one channel or room: the shards its events go to, kept up to
/// date on join and leave so a broadcast never walks the members.
#[derive(Debug, Default)]
pub struct ShardCounts {
    per_shard: Vec<u32>,
    shards: ShardSet,
}

impl ShardCounts {
    pub fn add(&mut self, shard: ShardId) {
        if self.per_shard.len() <= shard {
            self.per_shard.resize(shard + 1, 0);
        }
        self.per_shard[shard] += 1;
        self.shards.insert(shard);
    }

    pub fn remove(&mut self, shard: ShardId) {
        self.per_shard[shard] -= 1;
        if self.per_shard[shard] == 0 {
            self.shards.remove(shard);
        }
    }

    /// Shards with at least one connection.
    pub fn shards(&self) -> ShardSet {
        self.shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(u32);

    impl Record for Counter {
        fn is_unused(&self) -> bool {
            self.0 == 0
        }
    }

    #[test]
    fn records_live_while_used() {
        let mut owned: Owned<Counter> = Owned::default();
        owned.entry("a").0 += 1;
        owned.entry("b");
        owned.remove_if_unused("a");
        owned.remove_if_unused("b");
        assert_eq!(owned.len(), 1);
        owned.get_mut("a").unwrap().0 = 0;
        owned.remove_unused();
        assert!(owned.is_empty());
    }

    #[test]
    fn shard_counts_track_the_shards_with_connections() {
        let mut counts = ShardCounts::default();
        counts.add(3);
        counts.add(3);
        counts.add(0);
        counts.remove(3);
        assert_eq!(counts.shards().iter().collect::<Vec<_>>(), vec![0, 3]);
        counts.remove(3);
        assert_eq!(counts.shards().iter().collect::<Vec<_>>(), vec![0]);
    }
}
