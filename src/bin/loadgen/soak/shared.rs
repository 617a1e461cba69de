//! What the soak's connections share with the run that drives them: where and how
//! fast to connect, the phase of the run, and what they count.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use glommio::sync::Semaphore;
use glommio::timer::Timer;

use super::sequence::Sequence;
use crate::Tally;

/// The run's state as its connections see it.
pub struct Shared {
    pub addr: SocketAddr,
    /// Connects (`ready`), failed connects (`failed`), deliveries and their latency.
    pub tally: Rc<Tally>,
    /// Handshakes in progress at once.
    pub gate: Semaphore,
    pub rooms: usize,
    /// Set once every stable member has joined: publishing and churn start.
    pub started: Cell<bool>,
    /// Set at the end: publishers send their last message, churn slots stop
    /// reconnecting.
    pub stopping: Cell<bool>,
    /// Connections set up and not dropped.
    pub open: Cell<usize>,
    /// Stable members and churn slots that have set up their first connection: once
    /// all have, the population is reached (`open` itself dips below it whenever a
    /// slot is between a drop and its replacement).
    pub up: Cell<usize>,
    /// Drops, by `churn::Abrupt::ALL`'s order.
    pub drops: [Cell<u64>; 3],
    /// Publications by the rooms' publishers.
    pub published: Cell<u64>,
    /// Publications by churned connections (one each, on joining).
    pub churn_published: Cell<u64>,
    /// Gaps and repeats churned connections saw while they were members.
    pub churn_lost: Cell<u64>,
    /// Connections of well-behaved clients that the server closed.
    pub server_closes: Cell<u64>,
    /// Each stable member's check of its room, by member index.
    pub stable: Vec<Cell<Sequence>>,
    /// Each room's last `seq`, once its publisher has had its final message back.
    pub finals: Vec<Cell<Option<u64>>>,
    next_user: Cell<u64>,
}

impl Shared {
    pub fn new(addr: SocketAddr, concurrency: usize, rooms: usize, stable: usize) -> Shared {
        let tally = Tally::new();
        tally.measuring.set(true);
        Shared {
            addr,
            tally,
            gate: Semaphore::new(concurrency as u64),
            rooms,
            started: Cell::new(false),
            stopping: Cell::new(false),
            open: Cell::new(0),
            up: Cell::new(0),
            drops: Default::default(),
            published: Cell::new(0),
            churn_published: Cell::new(0),
            churn_lost: Cell::new(0),
            server_closes: Cell::new(0),
            stable: (0..stable)
                .map(|_| Cell::new(Sequence::from_start()))
                .collect(),
            finals: (0..rooms).map(|_| Cell::new(None)).collect(),
            next_user: Cell::new(0),
        }
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &Cell<u64>, n: u64) {
        counter.set(counter.get() + n);
    }

    /// A number no churned user has had yet.
    pub fn next_user(&self) -> u64 {
        let n = self.next_user.get();
        self.next_user.set(n + 1);
        n
    }

    pub fn drops_total(&self) -> u64 {
        self.drops.iter().map(Cell::get).sum()
    }

    /// Waits until publishing and churn start.
    pub async fn wait_started(&self) {
        while !self.started.get() {
            Timer::new(Duration::from_millis(20)).await;
        }
    }
}
