//! The engine's records of its local connections, kept in a vector indexed by the
//! connection table's slot (the low 32 bits of a [`ConnId`]) instead of a hash map:
//! a record costs its own size and a slot, without a hash table's load-factor headroom
//! that doubles at the worst moment. The full id is stored with the record, so a slot
//! the network layer has reused never answers for the connection it held before.

use std::ops::Index;

use super::message::ConnId;

/// Records by connection; see the module doc.
#[derive(Debug)]
pub struct ConnMap<V> {
    slots: Vec<Option<(ConnId, V)>>,
    len: usize,
}

impl<V> Default for ConnMap<V> {
    fn default() -> Self {
        ConnMap {
            slots: Vec::new(),
            len: 0,
        }
    }
}

fn slot_of(id: ConnId) -> usize {
    (id.0 & 0xffff_ffff) as usize
}

impl<V> ConnMap<V> {
    pub fn get(&self, id: &ConnId) -> Option<&V> {
        match self.slots.get(slot_of(*id))? {
            Some((held, record)) if held == id => Some(record),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, id: &ConnId) -> Option<&mut V> {
        match self.slots.get_mut(slot_of(*id))? {
            Some((held, record)) if held == id => Some(record),
            _ => None,
        }
    }

    pub fn contains_key(&self, id: &ConnId) -> bool {
        self.get(id).is_some()
    }

    /// Stores `record` for `id` (its slot is free: the network layer reuses a slot only
    /// after the engine closed its connection).
    pub fn insert(&mut self, id: ConnId, record: V) {
        let slot = slot_of(id);
        if slot >= self.slots.len() {
            self.slots.resize_with(slot + 1, || None);
        }
        let held = self.slots[slot].replace((id, record));
        debug_assert!(
            held.is_none(),
            "a connection's slot reused before its close"
        );
        if held.is_none() {
            self.len += 1;
        }
    }

    pub fn remove(&mut self, id: &ConnId) -> Option<V> {
        let entry = self.slots.get_mut(slot_of(*id))?;
        if entry.as_ref().is_some_and(|(held, _)| held == id) {
            self.len -= 1;
            return entry.take().map(|(_, record)| record);
        }
        None
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ConnId, &V)> {
        self.slots.iter().flatten().map(|(id, record)| (id, record))
    }

    pub fn keys(&self) -> impl Iterator<Item = &ConnId> {
        self.iter().map(|(id, _)| id)
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl<V> Index<&ConnId> for ConnMap<V> {
    type Output = V;

    fn index(&self, id: &ConnId) -> &V {
        self.get(id).expect("a record for this connection")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_for_its_old_connection() {
        let mut map = ConnMap::default();
        let (old, new) = (ConnId(1 << 32 | 3), ConnId(2 << 32 | 3));
        map.insert(old, "old");
        assert_eq!(map.remove(&old), Some("old"));
        map.insert(new, "new");
        assert_eq!((map.get(&old), map.get(&new)), (None, Some(&"new")));
        assert_eq!(map.remove(&old), None);
        assert_eq!(map.len(), 1);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![new]);
    }
}
