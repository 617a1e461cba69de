//! Cross-shard messaging over glommio's channel mesh, without ever blocking a shard.
//!
//! Sending never awaits: messages go into a local queue per peer (`net::outbox::MeshOut`),
//! and one pump task per peer ships the whole queue as a single batch (`Vec<ShardMsg>`)
//! when the mesh has room, with when the oldest input behind it reached the node (the
//! receiver times its deliveries from then). Two shards that await sends to each other from their receive loops would
//! deadlock once both channels fill; this shape cannot. One receive task per peer hands
//! each batch to the engine.

use std::rc::Rc;
use std::time::Instant;

use futures_lite::future::poll_fn;
use glommio::channels::channel_mesh::Senders;
use glommio::channels::shared_channel::ConnectedReceiver;

use crate::engine::{ShardId, ShardMsg};
use crate::net::outbox::MeshOut;

/// A batch of messages from one shard to another.
pub struct Batch {
    pub msgs: Vec<ShardMsg>,
    /// When the oldest input behind these messages reached the node, if known.
    pub origin: Option<Instant>,
}

/// Ships the queue `out` holds for `peer` in batches until the mesh closes.
pub async fn pump(out: &MeshOut, peer: ShardId, senders: Rc<Senders<Batch>>) {
    loop {
        let (msgs, origin) = poll_fn(|cx| out.poll_batch(peer, cx)).await;
        let batch = Batch { msgs, origin };
        if senders.send_to(peer, batch).await.is_err() {
            return;
        }
    }
}

/// Receives batches from one peer and hands each to `handle`.
pub async fn receive(rx: ConnectedReceiver<Batch>, mut handle: impl FnMut(Batch)) {
    while let Some(batch) = rx.recv().await {
        handle(batch);
    }
}
