//! What one node sends another in one Redis message: every shard message one shard's
//! turn addressed to the other node's shards, in order, with the sender's node and
//! incarnation (a restarted node's leftovers are told apart from its new messages).
//!
//! The bytes are `engine::wire`'s: its version byte ([`wire::VERSION`]), then the
//! postcard [`Batch`].

use serde::{Deserialize, Serialize};

use crate::engine::{NodeId, ShardMsg, ShardSet, wire};

/// Shard messages from one shard of node `from` to shards of one other node.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub from: NodeId,
    pub incarnation: u64,
    /// Each message once, with the receiving shards (indices inside the node): a
    /// publication to several shards of the node crosses once.
    pub msgs: Vec<(ShardSet, ShardMsg)>,
}

/// `batch` as the bytes of one Redis message.
pub fn encode(batch: &Batch) -> Vec<u8> {
    wire::encode(batch)
}

/// The batch `bytes` hold, as [`encode`] wrote it.
pub fn decode(bytes: &[u8]) -> Result<Batch, wire::WireError> {
    wire::decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Status;

    #[test]
    fn a_batch_reads_back_as_written_and_refuses_other_versions() {
        let batch = Batch {
            from: 2,
            incarnation: 77,
            msgs: vec![
                (
                    ShardSet::one(1),
                    ShardMsg::SetStatus {
                        user: "ann".into(),
                        status: Status::Busy,
                    },
                ),
                (
                    [0, 1].into_iter().collect(),
                    ShardMsg::UserDown {
                        user: "bob".into(),
                        from: 5,
                    },
                ),
            ],
        };
        let bytes = encode(&batch);
        assert_eq!(decode(&bytes).unwrap(), batch);
        let mut other = bytes.clone();
        other[0] = wire::VERSION + 1;
        assert!(matches!(
            decode(&other),
            Err(wire::WireError::Version { .. })
        ));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
