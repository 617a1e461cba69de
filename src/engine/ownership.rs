//! Which shard of which node owns a user or a channel.
//!
//! Every object id (user id, channel name) has one owner shard in the whole deployment:
//! its node is `crc32(id) % K` (the seed's `Abs(Crc32(Id)) % K`, so clients can compute
//! which server owns an object) and its shard inside that node is `(crc32(id) / K) % N`.
//! Dividing by K first keeps the shard choice independent of the node choice; plain
//! `crc32(id) % N` would correlate with it and leave shards empty when K and N share
//! factors.
//!
//! Inside the engine a shard is named by its index in the whole cluster,
//! `node * N + shard` ([`Placement::index`]): presence sets, channel fan-out and shard
//! messages then work the same whether a peer shard is on this node or another, and
//! on one node the index is the shard's own. The runtime turns an index back into a
//! node and a shard ([`Placement::addr`]) to pick the mesh or the cluster transport.

use serde::{Deserialize, Serialize};

/// Index of a shard (one pinned executor): inside its node in a [`ShardAddr`], in the
/// whole cluster (`node * N + shard`) everywhere in the engine.
pub type ShardId = usize;

/// Index of a node (one server process) in the cluster, `0..K`.
pub type NodeId = u32;

/// One shard anywhere in the cluster: where an object's owner is, and where a
/// connection lives. Within one node only `shard` differs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardAddr {
    pub node: NodeId,
    pub shard: ShardId,
}

/// The cluster's shape as placement sees it: K nodes of N shards each. Every node
/// computes the same owner for an id from it, and so can a client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    nodes: u32,
    shards: usize,
}

impl Placement {
    /// `nodes` nodes of `shards` shards each (both at least 1).
    pub fn new(nodes: u32, shards: usize) -> Placement {
        assert!(
            nodes >= 1 && shards >= 1,
            "a cluster has a node and a shard"
        );
        Placement { nodes, shards }
    }

    /// One node of `shards` shards: the deployment until the cluster settings exist.
    pub fn single_node(shards: usize) -> Placement {
        Placement::new(1, shards)
    }

    /// K, the number of nodes.
    pub fn nodes(&self) -> u32 {
        self.nodes
    }

    /// N, the number of shards of each node.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The owner of `id`: node `crc32(id) % K`, shard `(crc32(id) / K) % N` there.
    pub fn owner(&self, id: &str) -> ShardAddr {
        let hash = crc32fast::hash(id.as_bytes());
        ShardAddr {
            node: hash % self.nodes,
            shard: ((hash / self.nodes) as usize) % self.shards,
        }
    }

    /// The shards of the whole cluster, K x N.
    pub fn cluster_shards(&self) -> usize {
        self.nodes as usize * self.shards
    }

    /// `addr`'s index in the whole cluster: `node * N + shard`.
    pub fn index(&self, addr: ShardAddr) -> ShardId {
        addr.node as usize * self.shards + addr.shard
    }

    /// The node and shard of a cluster index.
    pub fn addr(&self, index: ShardId) -> ShardAddr {
        ShardAddr {
            node: (index / self.shards) as NodeId,
            shard: index % self.shards,
        }
    }

    /// The cluster indices of `node`'s shards.
    pub fn shards_of(&self, node: NodeId) -> std::ops::Range<ShardId> {
        let first = node as usize * self.shards;
        first..first + self.shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_spreads_ids_over_every_shard() {
        let placement = Placement::single_node(4);
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            let owner = placement.owner(&format!("1:{i}"));
            assert_eq!(owner.node, 0);
            seen[owner.shard] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "uneven spread: {seen:?}");
    }

    #[test]
    fn shard_choice_is_independent_of_node_choice() {
        // With K = 2 nodes and N = 2 shards, `crc32 % N` would put every id of node 0
        // on shard 0. Dividing by K first uses both shards on each node.
        let placement = Placement::new(2, 2);
        let mut node0_shards = [0usize; 2];
        for i in 0..1000 {
            let owner = placement.owner(&format!("user-{i}"));
            if owner.node == 0 {
                node0_shards[owner.shard] += 1;
            }
        }
        assert!(node0_shards.iter().all(|&n| n > 100), "{node0_shards:?}");
    }

    #[test]
    fn cluster_indices_name_every_shard_of_every_node_once() {
        let placement = Placement::new(3, 2);
        let indices: Vec<_> = (0..3)
            .flat_map(|node| (0..2).map(move |shard| ShardAddr { node, shard }))
            .map(|addr| placement.index(addr))
            .collect();
        assert_eq!(indices, (0..6).collect::<Vec<_>>());
        for index in 0..6 {
            assert_eq!(placement.index(placement.addr(index)), index);
        }
        assert_eq!(placement.shards_of(2), 4..6);
    }

    #[test]
    fn matches_the_documented_formula() {
        let h = crc32fast::hash(b"1:12345");
        assert_eq!(
            Placement::single_node(3).owner("1:12345"),
            ShardAddr {
                node: 0,
                shard: (h % 3) as usize
            }
        );
        assert_eq!(
            Placement::new(3, 5).owner("1:12345"),
            ShardAddr {
                node: h % 3,
                shard: ((h / 3) % 5) as usize
            }
        );
    }
}
