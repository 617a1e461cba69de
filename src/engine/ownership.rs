//! Which shard owns a user or a channel.
//!
//! Every object id (user id, channel name) has one owner shard in the whole deployment:
//! its node is `crc32(id) % K` (the seed's `Abs(Crc32(Id)) % K`, so clients can compute
//! which server owns an object) and its shard inside that node is `(crc32(id) / K) % N`.
//! Dividing by K first keeps the shard choice independent of the node choice; plain
//! `crc32(id) % N` would correlate with it and leave shards empty when K and N share
//! factors.

/// Index of a shard (one pinned executor) inside this node.
pub type ShardId = usize;

/// The owner shard of `id` inside this node, for `nodes` nodes of `shards` shards each.
pub fn owner_shard(id: &str, nodes: u32, shards: usize) -> ShardId {
    let hash = crc32fast::hash(id.as_bytes());
    ((hash / nodes.max(1)) as usize) % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_spreads_ids_over_every_shard() {
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            seen[owner_shard(&format!("1:{i}"), 1, 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "uneven spread: {seen:?}");
    }

    #[test]
    fn shard_choice_is_independent_of_node_choice() {
        // With K = 2 nodes and N = 2 shards, `crc32 % N` would put every id of node 0
        // on shard 0. Dividing by K first uses both shards on each node.
        let mut node0_shards = [0usize; 2];
        for i in 0..1000 {
            let id = format!("user-{i}");
            if crc32fast::hash(id.as_bytes()).is_multiple_of(2) {
                node0_shards[owner_shard(&id, 2, 2)] += 1;
            }
        }
        assert!(node0_shards.iter().all(|&n| n > 100), "{node0_shards:?}");
    }

    #[test]
    fn matches_the_documented_formula() {
        let h = crc32fast::hash(b"1:12345");
        assert_eq!(owner_shard("1:12345", 1, 3), (h % 3) as usize);
        assert_eq!(owner_shard("1:12345", 3, 5), ((h / 3) % 5) as usize);
    }
}
