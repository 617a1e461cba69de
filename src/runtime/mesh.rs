//! Cross-shard messaging over glommio's channel mesh, without ever blocking a shard.
//!
//! Sending never awaits: messages go into a local queue per peer, and one pump task per
//! peer ships the whole queue as a single batch (`Vec<ShardMsg>`) when the mesh has
//! room. Two shards that await sends to each other from their receive loops would
//! deadlock once both channels fill; this shape cannot. One receive task per peer hands
//! each batch to the engine.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_lite::future::poll_fn;
use glommio::channels::channel_mesh::Senders;
use glommio::channels::shared_channel::ConnectedReceiver;

use crate::engine::{ShardId, ShardMsg};

/// A batch of messages from one shard to another.
pub type Batch = Vec<ShardMsg>;

/// Messages waiting to be pumped to one peer.
#[derive(Default)]
struct PeerQueue {
    msgs: RefCell<Batch>,
    waker: Cell<Option<Waker>>,
}

/// This shard's outgoing side of the mesh: a queue per peer.
pub struct MeshOut {
    peers: Vec<Rc<PeerQueue>>,
}

impl MeshOut {
    /// Queues for `shards` peers (the entry for this shard stays unused).
    pub fn new(shards: usize) -> Self {
        MeshOut {
            peers: (0..shards).map(|_| Rc::default()).collect(),
        }
    }

    /// Queues `msg` for `shard`; the pump sends it with whatever else is queued.
    pub fn send(&self, shard: ShardId, msg: ShardMsg) {
        let peer = &self.peers[shard];
        peer.msgs.borrow_mut().push(msg);
        if let Some(waker) = peer.waker.take() {
            waker.wake();
        }
    }

    /// Messages waiting for each peer.
    pub fn depths(&self) -> Vec<u64> {
        self.peers
            .iter()
            .map(|p| p.msgs.borrow().len() as u64)
            .collect()
    }

    /// Ships `peer`'s queue in batches until the mesh closes.
    pub async fn pump(&self, peer: ShardId, senders: Rc<Senders<Batch>>) {
        let queue = self.peers[peer].clone();
        loop {
            let batch = poll_fn(|cx| {
                let mut msgs = queue.msgs.borrow_mut();
                if msgs.is_empty() {
                    queue.waker.set(Some(cx.waker().clone()));
                    Poll::Pending
                } else {
                    Poll::Ready(std::mem::take(&mut *msgs))
                }
            })
            .await;
            if senders.send_to(peer, batch).await.is_err() {
                return;
            }
        }
    }
}

/// Receives batches from one peer and hands each message to `handle`.
pub async fn receive(rx: ConnectedReceiver<Batch>, mut handle: impl FnMut(Batch)) {
    while let Some(batch) = rx.recv().await {
        handle(batch);
    }
}
