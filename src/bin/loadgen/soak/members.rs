//! The stable members: connections never dropped, one room each, that must see every
//! message of their room from its first to its last. Member `i` is in room
//! `i % rooms`; the first of each room is its publisher, sending on a fixed schedule
//! and, at the end, a last message whose `seq` tells the others where the room ended.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::room::{is_last, join, publication, read};
use super::sequence::Sequence;
use super::shared::Shared;
use crate::client::Client;

/// Runs stable member `i` for good (the executor ends it); a publisher sends one
/// message every `interval`.
pub async fn stable(shared: Rc<Shared>, i: usize, interval: Duration) {
    let room = i % shared.rooms;
    let user = format!("s{i}");
    let tally = &shared.tally;
    let permit = shared.gate.acquire_permit(1).await;
    let joined = join(shared.addr, &user, &[], room).await;
    drop(permit);
    let Ok(mut c) = joined else {
        return tally.failed.set(tally.failed.get() + 1);
    };
    tally.ready.set(tally.ready.get() + 1);
    shared.open.set(shared.open.get() + 1);
    shared.up.set(shared.up.get() + 1);
    let seq = &shared.stable[i];
    let lived = async {
        if i < shared.rooms {
            publish(&shared, &mut c, room, &user, seq, interval).await?;
        }
        read(&mut c, None, tally, seq, |_, _| false).await
    };
    // Reading for good ends only when the server closes the connection.
    if lived.await.is_err() {
        Shared::add(&shared.server_closes, 1);
    }
    shared.open.set(shared.open.get() - 1);
}

/// Publishes into `room` every `interval` (the rooms' schedules spread over one
/// interval) until the run stops, then sends the last message and records its `seq`.
async fn publish(
    shared: &Shared,
    c: &mut Client,
    room: usize,
    user: &str,
    seq: &Cell<Sequence>,
    interval: Duration,
) -> io::Result<()> {
    let tally = &shared.tally;
    shared.wait_started().await;
    let mut next = Instant::now() + interval.mul_f64(room as f64 / shared.rooms as f64);
    while !shared.stopping.get() {
        read(c, Some(next), tally, seq, |_, _| false).await?;
        // Stamped with the time it was due: a late send counts its delay as latency.
        let t = tally.us_at(next);
        next += interval;
        c.send(publication(room, user, t, false).as_bytes()).await?;
        Shared::add(&shared.published, 1);
    }
    c.send(publication(room, user, tally.now_us(), true).as_bytes())
        .await?;
    read(c, None, tally, seq, |text, n| {
        let last = is_last(text);
        if last {
            shared.finals[room].set(Some(n));
        }
        last
    })
    .await
}
