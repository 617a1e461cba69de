//! The backend bus's side of the transport: tap messages out (`NAME:tap:CHANNEL`); the
//! commands in (`NAME:api`) are handed to a shard as [`super::ShardInbound::Api`] and
//! carried out there (`net::bus`).

use std::sync::atomic::Ordering;

use super::Cluster;

impl Cluster {
    /// Queues `payload` (JSON) for Redis channel `NAME:tap:CHANNEL`; never waits. False
    /// (and counted as dropped) when the queue is full or Redis is unreachable.
    pub fn publish_tap(&self, channel: &str, payload: Vec<u8>) -> bool {
        let sent = self.enqueue(
            self.shared.settings.tap_channel(channel).into(),
            payload,
            false,
        );
        if sent {
            self.shared
                .counters
                .taps_out
                .fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Counts a bus command carried out (`refused` false) or refused by this node, and
    /// logs the first refusal and then every hundredth.
    pub fn count_bus_command(&self, refused: Option<&str>) {
        let counters = &self.shared.counters;
        let Some(why) = refused else {
            counters.bus_commands.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let before = counters.bus_refused.fetch_add(1, Ordering::Relaxed);
        if before.is_multiple_of(100) {
            tracing::warn!(
                refused = before + 1,
                "a backend bus command was refused: {why}"
            );
        }
    }
}
