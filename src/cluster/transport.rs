//! The transport thread: a tokio current-thread runtime running four tasks around one
//! view of the peers — the subscriber (reads `NAME:node:I`, `NAME:hb` and `NAME:api`,
//! hands shard messages and backend commands to the shards, notes heartbeats), the
//! publisher (sends what the shards queue, pipelined), the heartbeat, and the monitor
//! (declares silent nodes gone). `links` holds the connections, for one Redis server
//! or a Redis Cluster (sharded pub/sub there), with every wait on Redis bounded.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::batch;
use super::links::{Channels, Publisher, Subscription};
use super::redis_url::RedisUrl;
use super::state::{
    ClusterCounters, ClusterError, ClusterSettings, INBOUND_CAPACITY, OUTBOUND_CAPACITY, Outgoing,
    ShardInbound, Shared,
};
use crate::engine::{NodeId, ShardMsg, hand_out};

/// What every node PUBLISHes to `NAME:hb`, as JSON (readable by a backend too).
#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    node: NodeId,
    /// When the process started, in µs since the epoch: a restart announces a larger one.
    incarnation: u64,
    digest: String,
    nodes: Vec<Box<str>>,
    /// The node's `/api/stats` figures now, so any node's API answers for all.
    #[serde(default)]
    stats: Option<serde_json::Value>,
}

/// The longest wait between two attempts to reach Redis.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Messages the publisher sends in one pipeline.
const PIPELINE: usize = 64;

/// Starts the transport thread; the shared state, and a receiver per shard.
pub(super) fn start(
    settings: ClusterSettings,
    shards: usize,
) -> Result<(Arc<Shared>, Vec<mpsc::Receiver<ShardInbound>>), ClusterError> {
    let (outbound, outgoing) = mpsc::channel(OUTBOUND_CAPACITY);
    let (to_shards, inbound): (Vec<_>, Vec<_>) =
        (0..shards).map(|_| mpsc::channel(INBOUND_CAPACITY)).unzip();
    let nodes = settings.nodes.len();
    let incarnation = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let node_channels = (0..nodes as NodeId)
        .map(|node| Arc::from(settings.node_channel(node)))
        .collect();
    let digest = settings.digest();
    let shared = Arc::new(Shared {
        settings,
        node_channels,
        digest,
        incarnation,
        redis_connected: Default::default(),
        alive: Mutex::new(vec![false; nodes]),
        counters: ClusterCounters::default(),
        outbound,
        queued_bytes: Default::default(),
        stats: Default::default(),
        peer_stats: Mutex::new(vec![None; nodes]),
    });
    let (verdict_tx, verdict) = std::sync::mpsc::channel();
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("cluster".to_owned())
        .spawn(move || {
            let (resync_tx, resync) = mpsc::channel(1);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            let node = Rc::new(Node {
                shared: thread_shared,
                to_shards,
                peers: RefCell::new(Peers::new(nodes)),
                resync: RefCell::new(Some(resync)),
                resync_tx,
                verdict: RefCell::new(Some(verdict_tx)),
            });
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, node.run(outgoing));
        })
        .map_err(ClusterError::Thread)?;
    let patience = shared.settings.heartbeat_interval() * 3 + Duration::from_secs(5);
    match verdict.recv_timeout(patience) {
        Ok(Err(refusal)) => Err(refusal),
        _ => Ok((shared, inbound)),
    }
}

/// What the subscriber's wait for the next message ends with.
enum Read {
    Message(super::links::Incoming),
    /// The connection ended.
    Ended,
    /// Nothing came for node_timeout.
    Silent,
    /// The publisher lost batches to Redis.
    Lost,
}

/// What this node knows of the others.
struct Peers {
    /// Per node: when it was last heard, and its incarnation then.
    heard: Vec<Option<(Instant, u64)>>,
    /// Whether the subscriber has ever been connected since the last outage began.
    outage: bool,
    /// Whether the start-up wait is over.
    started: bool,
    /// When this node last heard its own heartbeat: while it does not, Redis is slow
    /// or stalled and the others' silence says nothing of them.
    me_heard: Instant,
}

impl Peers {
    fn new(nodes: usize) -> Self {
        Peers {
            heard: vec![None; nodes],
            outage: false,
            started: false,
            me_heard: Instant::now(),
        }
    }

    /// Silence until now said nothing of the peers (Redis was out or stalled): hear
    /// them afresh.
    fn hear_afresh(&mut self) {
        let now = Instant::now();
        for heard in self.heard.iter_mut().flatten() {
            heard.0 = now;
        }
        self.me_heard = now;
    }
}

/// The transport's state on its thread.
struct Node {
    shared: Arc<Shared>,
    to_shards: Vec<mpsc::Sender<ShardInbound>>,
    peers: RefCell<Peers>,
    /// The publisher's word that batches were lost to Redis: the subscriber (which
    /// takes the receiver) then treats the connection as lost, so the shards
    /// re-announce when it is back.
    resync: RefCell<Option<mpsc::Receiver<()>>>,
    resync_tx: mpsc::Sender<()>,
    /// Where the start-up verdict goes, until it is given.
    verdict: RefCell<Option<std::sync::mpsc::Sender<Result<(), ClusterError>>>>,
}

impl Node {
    fn settings(&self) -> &ClusterSettings {
        &self.shared.settings
    }

    async fn run(self: Rc<Self>, outgoing: mpsc::Receiver<Outgoing>) {
        tokio::task::spawn_local(self.clone().publisher(outgoing));
        tokio::task::spawn_local(self.clone().heartbeat());
        tokio::task::spawn_local(self.clone().monitor());
        tokio::task::spawn_local(self.clone().end_startup());
        self.subscriber().await;
    }

    /// Ends the start-up wait: peers unheard by now are down until they speak.
    async fn end_startup(self: Rc<Self>) {
        tokio::time::sleep(self.settings().heartbeat_interval() * 2).await;
        if let Some(verdict) = self.verdict.borrow_mut().take() {
            let _ = verdict.send(Ok(()));
        }
        let unheard: Vec<NodeId> = {
            let mut peers = self.peers.borrow_mut();
            peers.started = true;
            (0..peers.heard.len() as NodeId)
                .filter(|&n| n != self.settings().node && peers.heard[n as usize].is_none())
                .collect()
        };
        for node in unheard {
            self.broadcast(|| ShardInbound::NodeDown(node)).await;
        }
        if !self.shared.redis_connected.load(Ordering::Relaxed) {
            self.peers.borrow_mut().outage = true;
            self.broadcast(|| ShardInbound::ClusterDown).await;
        }
    }

    /// Gives the start-up verdict, if it is still to give: a refusal ends the start.
    fn refuse(&self, refusal: ClusterError) -> bool {
        match self.verdict.borrow_mut().take() {
            Some(verdict) => {
                let _ = verdict.send(Err(refusal));
                true
            }
            None => false,
        }
    }

    async fn broadcast(&self, event: impl Fn() -> ShardInbound) {
        for shard in &self.to_shards {
            let _ = shard.send(event()).await;
        }
    }

    /// Reads this node's channel and the heartbeats until the thread ends, reconnecting
    /// with backoff.
    async fn subscriber(self: Rc<Self>) {
        let mut resync = self.resync.take().expect("one subscriber");
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.subscribe().await {
                Ok(stream) => {
                    backoff = Duration::from_millis(50);
                    // A word from the publisher before this connection concerns an
                    // older one.
                    while resync.try_recv().is_ok() {}
                    self.connected().await;
                    self.read(stream, &mut resync).await;
                    self.disconnected().await;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot reach Redis");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn subscribe(&self) -> redis::RedisResult<Subscription> {
        let settings = self.settings();
        let channels = Channels {
            node: settings.node_channel(settings.node),
            classic: vec![settings.heartbeat_channel(), settings.api_channel()],
        };
        let shared = self.shared.clone();
        let overflow = move || {
            shared
                .counters
                .drop_batches(1, "the subscriber is behind what Redis sends");
        };
        Subscription::open(&settings.redis, &channels, overflow).await
    }

    async fn connected(&self) {
        let shared = &self.shared;
        shared.redis_connected.store(true, Ordering::Relaxed);
        shared.counters.connects.fetch_add(1, Ordering::Relaxed);
        tracing::info!(redis = %self.settings().redis, "connected to Redis");
        let was_out = {
            let mut peers = self.peers.borrow_mut();
            peers.hear_afresh();
            std::mem::replace(&mut peers.outage, false)
        };
        if was_out {
            self.broadcast(|| ShardInbound::ClusterUp).await;
            self.sweep_later();
        }
    }

    /// Has the shards drop, a settle time from now, what was not re-announced since.
    fn sweep_later(&self) {
        let settle = self.settings().heartbeat_interval() * 2;
        let to_shards = self.to_shards.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(settle).await;
            for shard in &to_shards {
                let _ = shard.send(ShardInbound::SweepStale).await;
            }
        });
    }

    async fn disconnected(&self) {
        self.shared.redis_connected.store(false, Ordering::Relaxed);
        tracing::warn!(
            redis = %self.settings().redis,
            "lost Redis: other nodes are unreachable until it is back"
        );
        let started = {
            let mut peers = self.peers.borrow_mut();
            peers.outage = true;
            peers.started
        };
        if started {
            self.broadcast(|| ShardInbound::ClusterDown).await;
        }
    }

    /// Hands over what arrives until the connection ends or falls silent: this node
    /// hears its own heartbeats (on a Redis Cluster, on the classic and the sharded
    /// path), so a node_timeout without a message on either is a stalled Redis.
    async fn read(&self, mut subscription: Subscription, resync: &mut mpsc::Receiver<()>) {
        let heartbeats = self.settings().heartbeat_channel();
        let api = self.settings().api_channel();
        let silence = self.settings().node_timeout;
        let sharded_path = matches!(self.settings().redis, RedisUrl::Cluster { .. });
        // When each path (classic, sharded) last carried a message.
        let mut heard = [Instant::now(); 2];
        loop {
            let quiet = if sharded_path {
                heard[0].min(heard[1])
            } else {
                heard[0]
            };
            let left = silence.saturating_sub(quiet.elapsed());
            let next = async {
                match tokio::time::timeout(left, subscription.next()).await {
                    Ok(Some(incoming)) => Read::Message(incoming),
                    Ok(None) => Read::Ended,
                    Err(_) => Read::Silent,
                }
            };
            let lost = async {
                match resync.recv().await {
                    Some(()) => Read::Lost,
                    None => std::future::pending().await,
                }
            };
            let incoming = match futures_lite::future::or(next, lost).await {
                Read::Message(incoming) => incoming,
                Read::Ended => return,
                Read::Silent => {
                    tracing::warn!(
                        redis = %self.settings().redis,
                        "Redis fell silent for node_timeout: reconnecting"
                    );
                    return;
                }
                Read::Lost => {
                    tracing::warn!(
                        redis = %self.settings().redis,
                        "batches were lost to Redis: reconnecting, so the nodes re-announce"
                    );
                    return;
                }
            };
            heard[usize::from(incoming.sharded)] = Instant::now();
            let msg = incoming.msg;
            let payload = msg.get_payload_bytes();
            if msg.get_channel_name() == heartbeats {
                self.on_heartbeat(payload).await;
            } else if msg.get_channel_name() == api {
                // Any shard can carry a command out: spread them by content.
                let shard = crc32fast::hash(payload) as usize % self.to_shards.len();
                let command = ShardInbound::Api(payload.to_vec());
                let _ = self.to_shards[shard].send(command).await;
            } else {
                self.on_batch(payload).await;
            }
        }
    }

    async fn on_heartbeat(&self, payload: &[u8]) {
        let Ok(beat) = serde_json::from_slice::<Heartbeat>(payload) else {
            self.shared
                .counters
                .malformed
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let settings = self.settings();
        if beat.digest != self.shared.digest {
            let refusal = ClusterError::NodeListMismatch {
                me: settings.node,
                mine: settings.nodes.join(","),
                my_digest: self.shared.digest.clone(),
                peer: beat.node,
                theirs: beat.nodes.join(","),
                their_digest: beat.digest,
            };
            if !self.refuse_once(refusal) {
                tracing::debug!("a node with another node list announces itself");
            }
            return;
        }
        if beat.node == settings.node {
            if beat.incarnation != self.shared.incarnation {
                let refusal = ClusterError::NodeIdTaken {
                    node: beat.node,
                    redis: settings.redis.to_string(),
                };
                self.refuse_once(refusal);
                return;
            }
            let mut peers = self.peers.borrow_mut();
            if peers.me_heard.elapsed() > settings.heartbeat_interval() * 2 {
                // Redis was stalled or slow: what the others sent meanwhile arrives
                // now, after this heartbeat perhaps, and their silence said nothing.
                tracing::info!("own heartbeats flow again after a pause");
                peers.hear_afresh();
            }
            peers.me_heard = Instant::now();
            return;
        }
        if self.observe(beat.node, beat.incarnation).await
            && let Some(slot) = self
                .shared
                .peer_stats
                .lock()
                .expect("never poisoned")
                .get_mut(beat.node as usize)
        {
            *slot = beat.stats;
        }
    }

    /// Refuses the start, or once running logs the refusal (the newcomer refuses).
    fn refuse_once(&self, refusal: ClusterError) -> bool {
        let text = refusal.to_string();
        if self.refuse(refusal) {
            return true;
        }
        tracing::error!("{text}");
        false
    }

    /// Notes that `node` spoke as `incarnation`: up if it was not, down and up again if
    /// it restarted. False for an older incarnation's leftovers.
    async fn observe(&self, node: NodeId, incarnation: u64) -> bool {
        let Some(slot) = self.peers.borrow().heard.get(node as usize).copied() else {
            return false;
        };
        let alive = self.shared.alive.lock().expect("never poisoned")[node as usize];
        let restarted = match slot {
            Some((_, known)) if incarnation < known => return false,
            Some((_, known)) => incarnation > known,
            None => false,
        };
        self.peers.borrow_mut().heard[node as usize] = Some((Instant::now(), incarnation));
        if alive && !restarted {
            return true;
        }
        if alive {
            tracing::info!(node, "node restarted");
            self.broadcast(|| ShardInbound::NodeDown(node)).await;
        } else {
            tracing::info!(node, "node is up");
        }
        self.shared.alive.lock().expect("never poisoned")[node as usize] = true;
        self.broadcast(|| ShardInbound::NodeUp(node)).await;
        self.sweep_later();
        true
    }

    async fn on_batch(&self, payload: &[u8]) {
        let counters = &self.shared.counters;
        let batch = match batch::decode(payload) {
            Ok(batch) => batch,
            Err(e) => {
                if counters
                    .malformed
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    tracing::warn!(error = %e, "a cross-node batch did not decode; dropped");
                }
                return;
            }
        };
        if batch.from as usize >= self.settings().nodes.len() {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if batch.from == self.settings().node || !self.observe(batch.from, batch.incarnation).await
        {
            return;
        }
        counters.batches_in.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes_in
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        counters
            .messages_in
            .fetch_add(batch.msgs.len() as u64, Ordering::Relaxed);
        let shards = self.to_shards.len();
        let mut per_shard: Vec<Vec<ShardMsg>> = vec![Vec::new(); shards];
        for (to, msg) in batch.msgs {
            if to.is_empty() || !to.below(shards) {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            hand_out(to.iter(), msg, |shard, msg| per_shard[shard].push(msg));
        }
        for (shard, msgs) in per_shard.into_iter().enumerate() {
            if !msgs.is_empty() {
                let _ = self.to_shards[shard].send(ShardInbound::Msgs(msgs)).await;
            }
        }
    }

    /// Sends what the shards queue, up to [`PIPELINE`] at a time in one round trip
    /// (per channel on a Redis Cluster). What fails (the connection died with Redis,
    /// or Redis did not answer within the links' timeouts) is sent once more on a new
    /// connection, so the re-announcements queued as Redis comes back are not lost to
    /// the old connection; what still cannot go is dropped and counted, and the
    /// subscriber told to start afresh. While the subscriber finds Redis out,
    /// everything queued behind it is dropped too (it would be stale when Redis is
    /// back, and the shards re-announce what they hold then).
    async fn publisher(self: Rc<Self>, mut outgoing: mpsc::Receiver<Outgoing>) {
        let mut connection: Option<Publisher> = None;
        let mut pending = Vec::with_capacity(PIPELINE);
        while outgoing.recv_many(&mut pending, PIPELINE).await > 0 {
            self.shared
                .release(pending.iter().map(|out| out.payload.len()).sum());
            for _attempt in 0..2 {
                if connection.is_none() {
                    connection = match Publisher::open(&self.settings().redis).await {
                        Ok(connection) => Some(connection),
                        Err(e) => {
                            tracing::debug!(error = %e, "cannot connect to publish");
                            None
                        }
                    };
                }
                let Some(conn) = connection.as_mut() else {
                    break;
                };
                match conn.send(&mut pending).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "PUBLISH failed");
                        connection = None;
                    }
                }
            }
            if !pending.is_empty() {
                let mut dropped = pending.len() as u64;
                pending.clear();
                if !self.shared.redis_connected.load(Ordering::Relaxed) {
                    while let Ok(out) = outgoing.try_recv() {
                        self.shared.release(out.payload.len());
                        dropped += 1;
                    }
                }
                self.shared
                    .counters
                    .drop_batches(dropped, "Redis is unreachable");
                // What was lost changed what other nodes should know: have the
                // subscriber start afresh, so every node re-announces (as after an
                // outage) once Redis answers again.
                if self.shared.redis_connected.load(Ordering::Relaxed) {
                    let _ = self.resync_tx.try_send(());
                }
            }
        }
    }

    /// Announces this node every heartbeat interval, also while the subscriber finds
    /// Redis out: on a Redis Cluster one stalled master takes this node's subscription
    /// down but not necessarily the heartbeats' path, and the others should not declare
    /// a live node gone for that (it asks them to re-announce when it is back).
    async fn heartbeat(self: Rc<Self>) {
        let settings = self.settings();
        let mut beat = Heartbeat {
            node: settings.node,
            incarnation: self.shared.incarnation,
            digest: self.shared.digest.clone(),
            nodes: settings.nodes.clone(),
            stats: None,
        };
        let channel: Arc<str> = Arc::from(settings.heartbeat_channel());
        // On a Redis Cluster, an empty batch to this node's own sharded channel too,
        // so the subscriber hears that path (`on_batch` ignores its own batches).
        let own = matches!(settings.redis, RedisUrl::Cluster { .. }).then(|| {
            let empty = batch::Batch {
                from: settings.node,
                incarnation: self.shared.incarnation,
                msgs: Vec::new(),
            };
            Outgoing {
                channel: self.shared.node_channels[settings.node as usize].clone(),
                payload: batch::encode(&empty),
                sharded: true,
            }
        });
        let mut tick = tokio::time::interval(settings.heartbeat_interval());
        loop {
            tick.tick().await;
            beat.stats = self.shared.stats.get().and_then(|read| read());
            let beat = Outgoing {
                channel: channel.clone(),
                payload: serde_json::to_vec(&beat).expect("a heartbeat serializes"),
                sharded: false,
            };
            let own = own.as_ref().map(|own| Outgoing {
                channel: own.channel.clone(),
                payload: own.payload.clone(),
                sharded: true,
            });
            // Heartbeats wait for room rather than being dropped; their few bytes are
            // counted like the rest.
            for out in std::iter::once(beat).chain(own) {
                self.shared
                    .queued_bytes
                    .fetch_add(out.payload.len(), Ordering::Relaxed);
                if self.shared.outbound.send(out).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Declares nodes unheard for node_timeout gone, while Redis is connected and this
    /// node hears its own heartbeats (in an outage, or while Redis is stalled or too
    /// slow to carry them, silence says nothing of the others).
    async fn monitor(self: Rc<Self>) {
        let settings = self.settings();
        let mut tick = tokio::time::interval(settings.heartbeat_interval() / 2);
        loop {
            tick.tick().await;
            if !self.shared.redis_connected.load(Ordering::Relaxed) {
                continue;
            }
            let gone: Vec<NodeId> = {
                let peers = self.peers.borrow();
                if peers.me_heard.elapsed() > settings.heartbeat_interval() * 2 {
                    continue;
                }
                let mut alive = self.shared.alive.lock().expect("never poisoned");
                (0..alive.len())
                    .filter(|&n| {
                        let silent = peers.heard[n]
                            .is_some_and(|(at, _)| at.elapsed() > settings.node_timeout);
                        let gone = alive[n] && silent;
                        if gone {
                            alive[n] = false;
                        }
                        gone
                    })
                    .map(|n| n as NodeId)
                    .collect()
            };
            for node in gone {
                tracing::warn!(node, "node is gone: no heartbeat within node_timeout");
                self.broadcast(|| ShardInbound::NodeDown(node)).await;
            }
        }
    }
}
