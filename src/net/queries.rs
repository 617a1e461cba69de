//! HTTP API requests waiting for the shards' answers. A request takes a ticket, asks
//! one or more shards through the engine ([`Engine::ask`]), and waits here until every
//! asked shard has answered (they arrive through the engine's [`Outbox::answer`]) or
//! the deadline passes.
//!
//! [`Engine::ask`]: crate::engine::Engine::ask
//! [`Outbox::answer`]: crate::engine::Outbox::answer

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::Duration;

use ahash::AHashMap;
use futures_lite::future::{self, poll_fn};
use glommio::timer::Timer;

use crate::engine::Answer;

/// How long a request waits for the shards before giving up (503).
const PATIENCE: Duration = Duration::from_secs(5);

/// The tickets of one shard's waiting requests.
#[derive(Default)]
pub struct Pending {
    next: Cell<u64>,
    waiting: RefCell<AHashMap<u64, Waiting>>,
}

struct Waiting {
    answers: Vec<Answer>,
    expected: usize,
    waker: Option<Waker>,
}

impl Pending {
    fn open(&self, expected: usize) -> u64 {
        let ticket = self.next.get();
        self.next.set(ticket + 1);
        let waiting = Waiting {
            answers: Vec::with_capacity(expected),
            expected,
            waker: None,
        };
        self.waiting.borrow_mut().insert(ticket, waiting);
        ticket
    }

    /// One shard's answer; an answer for a request that gave up is dropped.
    pub fn answer(&self, ticket: u64, answer: Answer) {
        if let Some(w) = self.waiting.borrow_mut().get_mut(&ticket) {
            w.answers.push(answer);
            if w.answers.len() == w.expected
                && let Some(waker) = w.waker.take()
            {
                waker.wake();
            }
        }
    }

    async fn wait(&self, ticket: u64) -> Vec<Answer> {
        poll_fn(|cx| {
            let mut waiting = self.waiting.borrow_mut();
            let w = waiting.get_mut(&ticket).expect("open until taken");
            if w.answers.len() == w.expected {
                let done = waiting.remove(&ticket).expect("present");
                return Poll::Ready(done.answers);
            }
            w.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Takes a ticket for `expected` answers, has `ask` send the questions with it,
    /// and returns the answers (in arrival order); `None` if some did not come in time.
    pub async fn ask(&self, expected: usize, ask: impl FnOnce(u64)) -> Option<Vec<Answer>> {
        let ticket = self.open(expected);
        ask(ticket);
        let answers = future::or(async { Some(self.wait(ticket).await) }, async {
            Timer::new(PATIENCE).await;
            None
        })
        .await;
        if answers.is_none() {
            self.waiting.borrow_mut().remove(&ticket);
        }
        answers
    }
}
