//! The transport's two links to Redis, for one server (`redis://`) and for a Redis
//! Cluster (`redis+cluster://`): the subscription the subscriber reads and the
//! connection the publisher writes to. Every wait on Redis here is bounded, so a
//! stalled Redis (a process stopped, a network black hole) fails a call in seconds
//! instead of hanging the transport's tasks.
//!
//! # What goes where
//!
//! With one server everything is classic pub/sub: SUBSCRIBE to `NAME:node:I`, `NAME:hb`
//! and `NAME:api`, PUBLISH to every channel.
//!
//! With a Redis Cluster the node channels are **sharded** channels: each node
//! SSUBSCRIBEs to its own `NAME:node:I` and batches go out with SPUBLISH, so a batch
//! travels only to the master that owns the channel's hash slot (and its replicas)
//! instead of over the whole cluster bus, and cross-node traffic spreads over the
//! masters as the node channels' slots do. The redis crate's cluster client (RESP3)
//! routes each command to the slot's master, follows MOVED and ASK, and resubscribes
//! when slots move. `NAME:hb`, `NAME:api` and the taps `NAME:tap:CHANNEL` stay classic
//! (SUBSCRIBE, PUBLISH): a Redis Cluster broadcasts those to every node, which is what
//! heartbeats and a backend using any node want. Each heartbeat a node also SPUBLISHes
//! an empty batch of its own to its own channel, so the subscriber hears the sharded
//! path as well as the classic one and notices when either falls silent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use tokio::sync::mpsc;

use super::redis_url::RedisUrl;
use super::state::Outgoing;

/// The longest a connection (TCP and handshake) to one Redis server may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest Redis may take to answer one command or pipeline.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest any one call into the redis crate may take, whatever it does inside
/// (retries, redirections, slot refreshes): the bound that holds if all else fails.
pub(super) const DEADLINE: Duration = Duration::from_secs(3);

/// Pushes (messages) a Redis Cluster subscription holds before more are dropped.
const PUSH_CAPACITY: usize = 4096;

/// Runs `call` for at most [`DEADLINE`]; a call that takes longer is an error.
async fn bounded<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(DEADLINE, call).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "Redis did not answer in time",
        ))),
    }
}

/// The channels one node reads.
pub(super) struct Channels {
    /// `NAME:node:I`: sharded on a Redis Cluster.
    pub node: String,
    /// `NAME:hb`, `NAME:api`: classic everywhere.
    pub classic: Vec<String>,
}

/// One message the subscriber read, and whether it came on a sharded channel.
pub(super) struct Incoming {
    pub msg: redis::Msg,
    pub sharded: bool,
}

/// What the subscriber reads.
pub(super) enum Subscription {
    Single(redis::aio::PubSubStream),
    Cluster {
        /// Held so the subscriptions last; messages arrive through `pushes`.
        _connection: redis::cluster_async::ClusterConnection,
        pushes: mpsc::Receiver<redis::PushInfo>,
    },
}

impl Subscription {
    /// Subscribes to `channels` on the server, or on the cluster through any of its
    /// seeds. `overflow` is called for each message a
    /// cluster subscription drops because the subscriber is behind by
    /// [`PUSH_CAPACITY`] messages.
    pub(super) async fn open(
        redis: &RedisUrl,
        channels: &Channels,
        overflow: impl Fn() + Send + Sync + 'static,
    ) -> redis::RedisResult<Subscription> {
        bounded(async {
            match redis {
                RedisUrl::Single { url, .. } => {
                    let client = redis::Client::open(&**url)?;
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channels.node).await?;
                    for channel in &channels.classic {
                        pubsub.subscribe(channel).await?;
                    }
                    let (_sink, stream) = pubsub.split();
                    Ok(Subscription::Single(stream))
                }
                RedisUrl::Cluster { seeds } => {
                    let (tx, pushes) = mpsc::channel(PUSH_CAPACITY);
                    let push =
                        move |info: redis::PushInfo| tx.try_send(info).map_err(|_| overflow());
                    let client = cluster_client(seeds)
                        .use_protocol(redis::ProtocolVersion::RESP3)
                        .push_sender(push)
                        .build()?;
                    let mut connection = client.get_async_connection().await?;
                    connection.ssubscribe(&channels.node).await?;
                    connection.subscribe(&channels.classic).await?;
                    Ok(Subscription::Cluster {
                        _connection: connection,
                        pushes,
                    })
                }
            }
        })
        .await
    }

    /// The next message; `None` when the connection ended (for a cluster: when the
    /// connection to any of its masters did, as messages may have been lost then).
    pub(super) async fn next(&mut self) -> Option<Incoming> {
        match self {
            Subscription::Single(stream) => stream.next().await.map(|msg| Incoming {
                msg,
                sharded: false,
            }),
            Subscription::Cluster { pushes, .. } => loop {
                let push = pushes.recv().await?;
                let sharded = match push.kind {
                    redis::PushKind::Message => false,
                    redis::PushKind::SMessage => true,
                    redis::PushKind::Disconnection => return None,
                    _ => continue, // confirmations of (s)subscribe
                };
                if let Some(msg) = redis::Msg::from_push_info(push) {
                    return Some(Incoming { msg, sharded });
                }
            },
        }
    }
}

/// A cluster client builder for `seeds` with the transport's bounds.
fn cluster_client(seeds: &[Box<str>]) -> redis::cluster::ClusterClientBuilder {
    redis::cluster::ClusterClientBuilder::new(seeds.iter().map(|seed| format!("redis://{seed}")))
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .overall_response_timeout(Some(DEADLINE - CONNECT_TIMEOUT))
}

/// The publisher's connection.
pub(super) enum Publisher {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Publisher {
    pub(super) async fn open(redis: &RedisUrl) -> redis::RedisResult<Publisher> {
        bounded(async {
            match redis {
                RedisUrl::Single { url, .. } => {
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT));
                    let client = redis::Client::open(&**url)?;
                    let connection = client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?;
                    Ok(Publisher::Single(connection))
                }
                RedisUrl::Cluster { seeds } => {
                    let client = cluster_client(seeds).build()?;
                    Ok(Publisher::Cluster(client.get_async_connection().await?))
                }
            }
        })
        .await
    }

    /// Sends `pending` in pipelines and removes from it what went out; what is left
    /// could not go (the error says why). One server takes one pipeline of PUBLISHes.
    /// A cluster takes one pipeline per channel (a pipeline goes to one hash slot's
    /// master), all at once: SPUBLISH for the sharded ones, PUBLISH for the others.
    pub(super) async fn send(&mut self, pending: &mut Vec<Outgoing>) -> redis::RedisResult<()> {
        match self {
            Publisher::Single(connection) => {
                let mut pipe = redis::pipe();
                for out in pending.iter() {
                    pipe.publish(&*out.channel, &out.payload).ignore();
                }
                bounded(pipe.query_async::<()>(connection)).await?;
                pending.clear();
                Ok(())
            }
            Publisher::Cluster(connection) => {
                let mut groups: Vec<(Arc<str>, Vec<Outgoing>)> = Vec::new();
                let mut index: HashMap<Arc<str>, usize> = HashMap::new();
                for out in pending.drain(..) {
                    let at = *index.entry(out.channel.clone()).or_insert_with(|| {
                        groups.push((out.channel.clone(), Vec::new()));
                        groups.len() - 1
                    });
                    groups[at].1.push(out);
                }
                let sends: Vec<_> = groups
                    .iter()
                    .map(|(channel, outs)| {
                        let mut pipe = redis::pipe();
                        for out in outs {
                            let command = if out.sharded { "SPUBLISH" } else { "PUBLISH" };
                            pipe.cmd(command).arg(&**channel).arg(&out.payload).ignore();
                        }
                        let mut connection = connection.clone();
                        tokio::task::spawn_local(async move {
                            bounded(pipe.query_async::<()>(&mut connection)).await
                        })
                    })
                    .collect();
                let mut failure = None;
                for ((_, outs), send) in groups.into_iter().zip(sends) {
                    let result = send.await.unwrap_or_else(|_| {
                        Err(redis::RedisError::from(std::io::Error::other(
                            "the send task ended",
                        )))
                    });
                    if let Err(e) = result {
                        pending.extend(outs);
                        failure = Some(e);
                    }
                }
                failure.map_or(Ok(()), Err)
            }
        }
    }
}
