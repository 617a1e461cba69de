//! The engine's [`Outbox`] in production: events become WebSocket frames encoded once
//! per dialect and framing and shared by every recipient's queue; shard messages wait
//! in a queue per peer shard ([`MeshOut`]) for the runtime's mesh pumps.

use std::cell::{Cell, RefCell};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::conns::{ConnTable, Frame, Framing};
use super::queries::Pending;
use super::ws::{self, Opcode};
use crate::cluster::Cluster;
use crate::engine::{
    Answer, ConnId, Event, NodeId, Notice, Outbox, Placement, ShardId, ShardMsg, ShardSet,
    TapEvent, hand_out,
};
use crate::hooks::Webhooks;
use crate::protocol::{CloseReason, DialectKind, sockjs};

/// Borrowed pieces of a shard that engine output goes to, for one engine call.
pub struct ShardOutbox<'a> {
    pub conns: &'a mut ConnTable,
    pub mesh: &'a MeshOut,
    /// HTTP API requests waiting for answers.
    pub pending: &'a Pending,
    /// Where notices go, when the server sends webhooks.
    pub webhooks: Option<&'a Webhooks>,
    /// Where tap notices go, when the server has a Redis.
    pub cluster: Option<&'a Cluster>,
    /// When the input this engine call handles reached the node (see
    /// `Shard::handling`): publications delivered or passed on are timed from then.
    pub origin: Option<Instant>,
}

impl Outbox for ShardOutbox<'_> {
    fn deliver(&mut self, to: &[ConnId], event: &Event) {
        // Encoded at most once per dialect met (recipients of one event nearly always
        // share one), then the same frame is queued on every recipient.
        let mut frames: [Option<Option<Frame>>; Framing::COUNT * DialectKind::COUNT] =
            Default::default();
        let close = CloseReason::after(event);
        for &conn in to {
            let _ = self.conns.push_with(conn, |dialect, framing| {
                let index = dialect.index() * Framing::COUNT + framing.index();
                let cached = &mut frames[index];
                cached
                    .get_or_insert_with(|| encode(dialect, framing, event))
                    .clone()
            });
            if let Some(reason) = close
                && let Some(slot) = self.conns.get_mut(conn)
            {
                slot.request_close(reason);
            }
        }
        if let Some(origin) = self.origin
            && event.is_publication()
        {
            self.conns.time_delivery(origin);
        }
    }

    fn send(&mut self, shard: ShardId, msg: ShardMsg) {
        self.mesh.send(shard, msg, self.origin);
    }

    fn send_many(&mut self, shards: ShardSet, msg: ShardMsg) {
        self.mesh.send_many(shards, msg, self.origin);
    }

    fn answer(&mut self, ticket: u64, answer: Answer) {
        self.pending.answer(ticket, answer);
    }

    fn notice(&mut self, notice: Notice) {
        match notice {
            Notice::Tap { channel, event } => {
                if let Some(cluster) = self.cluster {
                    cluster.publish_tap(&channel, tap_message(&channel, event));
                }
            }
            notice => {
                if let Some(webhooks) = self.webhooks
                    && let Some(event) = webhook_event(notice)
                {
                    // A dropped event is counted and logged by the sender.
                    let _ = webhooks.send(event);
                }
            }
        }
    }
}

/// A tap notice as the backend bus PUBLISHes it: a publication as
/// `{"channel","seq","time","from","data"}` (`time` in ms since the epoch, when the owner
/// stamped it; `data` the JSON published, or a string if it is not JSON), a member as
/// `{"event":"join"|"leave","channel","user"}`.
fn tap_message(channel: &str, event: TapEvent) -> Vec<u8> {
    use serde_json::json;
    let message = match event {
        TapEvent::Message { seq, from, data } => {
            let data = serde_json::from_str(&data)
                .unwrap_or_else(|_| serde_json::Value::String(data.into()));
            json!({"channel": channel, "seq": seq, "time": crate::clock::now_ms(),
                "from": &*from, "data": data})
        }
        TapEvent::Join { user } => json!({"event": "join", "channel": channel, "user": &*user}),
        TapEvent::Leave { user } => {
            json!({"event": "leave", "channel": channel, "user": &*user})
        }
    };
    message.to_string().into_bytes()
}

/// A notice as a webhook event: `{"event": "member_added", "channel": ..., "user": ...}`;
/// `None` for a tap notice, which goes to the backend bus instead.
fn webhook_event(notice: Notice) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match notice {
        Notice::ChannelOccupied { channel } => {
            json!({"event": "channel_occupied", "channel": &*channel})
        }
        Notice::ChannelVacated { channel } => {
            json!({"event": "channel_vacated", "channel": &*channel})
        }
        Notice::MemberAdded { channel, user } => {
            json!({"event": "member_added", "channel": &*channel, "user": &*user})
        }
        Notice::MemberRemoved { channel, user } => {
            json!({"event": "member_removed", "channel": &*channel, "user": &*user})
        }
        Notice::UserOnline { user } => json!({"event": "user_online", "user": &*user}),
        Notice::UserOffline { user } => json!({"event": "user_offline", "user": &*user}),
        Notice::Tap { .. } => return None,
    })
}

/// `event` as a text frame of `dialect` in `framing`; `None` if the dialect has no such
/// event.
fn encode(dialect: DialectKind, framing: Framing, event: &Event) -> Option<Frame> {
    let write = |payload: &mut Vec<u8>| dialect.encode(event, payload);
    if framing == Framing::Plain {
        return frame_with(Opcode::Text, write);
    }
    let mut message = Vec::with_capacity(128);
    if !write(&mut message) {
        return None;
    }
    Some(text_frame(framing, &message))
}

/// One dialect message as `framing` queues it.
pub fn text_frame(framing: Framing, payload: &[u8]) -> Frame {
    match framing {
        Framing::Plain => frame(Opcode::Text, payload),
        Framing::SockJsWebSocket => frame_with(Opcode::Text, |buf| {
            sockjs::write_message(buf, payload);
            true
        })
        .expect("the payload is always written"),
        Framing::SockJsHttp => {
            let mut quoted = Vec::with_capacity(payload.len() + 16);
            sockjs::quote(&mut quoted, &String::from_utf8_lossy(payload));
            Frame::from(quoted)
        }
    }
}

thread_local! {
    /// The shard's encoding buffer (one executor per thread): payloads are written
    /// after room for the longest header, so a frame costs one allocation, its own.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
}

/// A frame whose payload `write` appends to the buffer it is given; `None` if `write`
/// returns false.
pub fn frame_with(opcode: Opcode, write: impl FnOnce(&mut Vec<u8>) -> bool) -> Option<Frame> {
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        buf.resize(ws::MAX_HEADER_LEN, 0);
        if !write(buf) {
            return None;
        }
        let (head, used) = ws::header(opcode, buf.len() - ws::MAX_HEADER_LEN, None);
        let start = ws::MAX_HEADER_LEN - used;
        buf[start..ws::MAX_HEADER_LEN].copy_from_slice(&head[..used]);
        let frame = Frame::from(&buf[start..]);
        if buf.capacity() > 64 << 10 {
            *buf = Vec::with_capacity(4096);
        }
        Some(frame)
    })
}

/// One unmasked server frame, ready to share between connections.
pub fn frame(opcode: Opcode, payload: &[u8]) -> Frame {
    frame_with(opcode, |buf| {
        buf.extend_from_slice(payload);
        true
    })
    .expect("the payload is always written")
}

/// Messages waiting to be pumped to one peer: a shard of this node (`T` a message) or
/// another node (`T` a message with the receiving shards there).
struct PeerQueue<T> {
    msgs: RefCell<Vec<T>>,
    /// When the oldest input behind the queued messages reached the node, if known.
    origin: Cell<Option<Instant>>,
    waker: Cell<Option<Waker>>,
}

impl<T> Default for PeerQueue<T> {
    fn default() -> Self {
        PeerQueue {
            msgs: RefCell::new(Vec::new()),
            origin: Cell::new(None),
            waker: Cell::new(None),
        }
    }
}

impl<T> PeerQueue<T> {
    fn push(&self, item: T, origin: Option<Instant>) {
        self.msgs.borrow_mut().push(item);
        if self.origin.get().is_none() {
            self.origin.set(origin);
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Everything queued and when the oldest of it reached the node, once there is
    /// something; until then the pump's waker is kept.
    fn poll_take(&self, cx: &Context<'_>) -> Poll<(Vec<T>, Option<Instant>)> {
        let mut msgs = self.msgs.borrow_mut();
        if msgs.is_empty() {
            self.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        } else {
            Poll::Ready((std::mem::take(&mut *msgs), self.origin.take()))
        }
    }

    fn depth(&self) -> u64 {
        self.msgs.borrow().len() as u64
    }
}

/// Where [`MeshOut::send_many`] queues one copy: a peer shard of this node, or another
/// node with its receiving shards there.
enum Destination {
    Peer(ShardId),
    Node(NodeId, ShardSet),
}

/// This shard's outgoing side of the mesh and of the cluster transport: a queue per
/// peer shard of this node and one per other node. Sending never waits: the runtime's
/// pump for a peer ships its whole queue as one batch when the mesh has room (to a
/// shard), or as one Redis message (to a node).
pub struct MeshOut {
    placement: Placement,
    node: NodeId,
    /// The cluster index of this node's first shard.
    first: ShardId,
    peers: Vec<PeerQueue<ShardMsg>>,
    /// Each message with its receiving shards, as indices inside that node.
    nodes: Vec<PeerQueue<(ShardSet, ShardMsg)>>,
}

impl MeshOut {
    /// Queues for every shard of this node (the entry for this shard stays unused) and
    /// every node of the cluster (the entry for this node stays unused).
    pub fn new(placement: Placement, node: NodeId) -> Self {
        MeshOut {
            placement,
            node,
            first: placement.shards_of(node).start,
            peers: (0..placement.shards())
                .map(|_| PeerQueue::default())
                .collect(),
            nodes: (0..placement.nodes())
                .map(|_| PeerQueue::default())
                .collect(),
        }
    }

    /// Queues `msg` for the shard with cluster index `shard`; its pump sends it with
    /// whatever else is queued for that shard, or for that shard's node. `origin` is
    /// when the input that caused it reached this node, if known (a peer shard of
    /// this node times its deliveries from then; another node, from its own arrival).
    pub fn send(&self, shard: ShardId, msg: ShardMsg, origin: Option<Instant>) {
        // This node's shards are the indices `first..first + N`: one subtraction and
        // compare picks them, without the division `addr` needs.
        let local = shard.wrapping_sub(self.first);
        if local < self.peers.len() {
            self.peers[local].push(msg, origin);
        } else {
            let to = self.placement.addr(shard);
            self.nodes[to.node as usize].push((ShardSet::one(to.shard), msg), None);
        }
    }

    /// Queues `msg` for every shard in `shards` (cluster indices): a copy for each
    /// shard of this node, one for each other node with its shards there (`origin` as
    /// for [`MeshOut::send`]).
    pub fn send_many(&self, shards: ShardSet, msg: ShardMsg, origin: Option<Instant>) {
        let (placement, me) = (self.placement, self.node);
        let destinations = (0..placement.nodes()).flat_map(move |node| {
            let there = shards.slice(placement.shards_of(node));
            let peers = (node == me).then(|| there.iter()).into_iter().flatten();
            let other = (node != me && !there.is_empty()).then_some((node, there));
            peers
                .map(Destination::Peer)
                .chain(other.map(|(node, there)| Destination::Node(node, there)))
        });
        hand_out(destinations, msg, |to, msg| match to {
            Destination::Peer(shard) => self.peers[shard].push(msg, origin),
            Destination::Node(node, there) => self.nodes[node as usize].push((there, msg), None),
        });
    }

    /// Everything queued for `peer`, a shard of this node, and when the oldest input
    /// behind it reached the node.
    pub fn poll_batch(
        &self,
        peer: ShardId,
        cx: &Context<'_>,
    ) -> Poll<(Vec<ShardMsg>, Option<Instant>)> {
        self.peers[peer].poll_take(cx)
    }

    /// Everything queued for node `node`, each with its shards there.
    pub fn poll_node_batch(
        &self,
        node: NodeId,
        cx: &Context<'_>,
    ) -> Poll<Vec<(ShardSet, ShardMsg)>> {
        self.nodes[node as usize]
            .poll_take(cx)
            .map(|(msgs, _)| msgs)
    }

    /// Messages waiting for each peer shard of this node.
    pub fn depths(&self) -> Vec<u64> {
        self.peers.iter().map(PeerQueue::depth).collect()
    }
}
