//! The churn: slots that each hold one connection at a time. A slot's connection is a
//! new user that connects, identifies, watches three users, joins a random room and
//! publishes into it, reads the room for a random lifetime (exponential, so the drops
//! of all slots come at a steady rate), then drops abruptly, and the slot connects its
//! replacement. While it lives it checks its room's `seq` from the first message it
//! gets.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;

use super::room::{join, publication, read};
use super::sequence::Sequence;
use super::shared::Shared;
use crate::client::Client;

/// How a churned connection is dropped: never with a WebSocket close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abrupt {
    /// The socket closed (a FIN, or a reset if unread data was waiting).
    Close,
    /// Half a game message's frame sent, then the socket closed.
    MidMessage,
    /// A TCP reset (`SO_LINGER` of zero).
    Reset,
}

impl Abrupt {
    /// Every way, in the order of `Shared::drops`.
    pub const ALL: [Abrupt; 3] = [Abrupt::Close, Abrupt::MidMessage, Abrupt::Reset];
}

/// Runs churn slot `slot` until the run stops; lifetimes average `lifetime`.
pub async fn slot(shared: Rc<Shared>, slot: usize, lifetime: Duration) {
    let mut rng = Rng(slot as u64);
    let tally = &shared.tally;
    shared.wait_started().await;
    let mut first = true;
    while !shared.stopping.get() {
        let n = shared.next_user();
        let user = format!("c{n}");
        let room = rng.below(shared.rooms);
        let watch = [
            format!("c{}", n.saturating_sub(1)),
            format!("c{}", n + 1),
            format!("s{}", rng.below(shared.stable.len())),
        ];
        let permit = shared.gate.acquire_permit(1).await;
        let joined = join(shared.addr, &user, &watch, room).await;
        drop(permit);
        let Ok(mut c) = joined else {
            tally.failed.set(tally.failed.get() + 1);
            sleep(Duration::from_millis(100)).await;
            continue;
        };
        tally.ready.set(tally.ready.get() + 1);
        shared.open.set(shared.open.get() + 1);
        if first {
            shared.up.set(shared.up.get() + 1);
            first = false;
        }
        let until = Instant::now() + lifetime.mul_f64(rng.exponential());
        let seq = Cell::new(Sequence::from_first());
        let lived = async {
            c.send(publication(room, &user, tally.now_us(), false).as_bytes())
                .await?;
            Shared::add(&shared.churn_published, 1);
            read(&mut c, Some(until), tally, &seq, |_, _| false).await
        }
        .await;
        Shared::add(&shared.churn_lost, seq.get().lost());
        shared.open.set(shared.open.get() - 1);
        if lived.is_err() {
            Shared::add(&shared.server_closes, 1);
            continue;
        }
        let how = Abrupt::ALL[rng.below(Abrupt::ALL.len())];
        drop_abruptly(c, how, &publication(room, &user, 0, false)).await;
        Shared::add(&shared.drops[how as usize], 1);
    }
}

/// Ends the connection `how`, without a WebSocket close; `message` is the one half
/// sent by `MidMessage`.
async fn drop_abruptly(mut c: Client, how: Abrupt, message: &str) {
    // A write or setsockopt that fails leaves the socket to be closed all the same.
    match how {
        Abrupt::Close => {}
        Abrupt::MidMessage => {
            let _ = c.send_half(message.as_bytes()).await;
        }
        Abrupt::Reset => {
            let _ = c.reset_on_close();
        }
    }
    drop(c);
}

/// splitmix64: cheap reproducible choices of rooms, lifetimes and ways to drop.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// An exponentially distributed number of mean 1.
    fn exponential(&mut self) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        -(1.0 - unit).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_average_their_mean_and_choices_stay_in_range() {
        let mut rng = Rng(7);
        let n = 100_000;
        let mean = (0..n).map(|_| rng.exponential()).sum::<f64>() / n as f64;
        assert!((0.97..1.03).contains(&mean), "mean {mean}");
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }
}
