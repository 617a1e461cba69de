//! How many messages one connection may send: a token bucket per connection
//! (`message_rate` per second, up to `message_burst` at once), so one client cannot take
//! its shard's time from the others. A message over the budget is dropped and the
//! client told (its dialect's `rate.limited` error); one that goes on sending a further
//! burst beyond that is closed (1008).

use std::time::Instant;

/// The limit every connection of a shard has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Tokens added per millisecond; 0 turns the limit off.
    per_ms: f32,
    burst: f32,
    /// The clock the buckets count from (their times are ms since it).
    epoch: Instant,
}

/// What to do with one message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Drop it and tell the client.
    Refuse,
    /// The client keeps on over its budget: close it.
    Close,
}

/// One connection's tokens: 8 bytes, kept in its slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// May go down to `-burst` (messages refused) before the connection is closed.
    tokens: f32,
    /// When `tokens` was last brought up to date, in ms since the limit's epoch.
    at_ms: u32,
}

impl RateLimit {
    /// `per_second` messages a second, `burst` at once; `per_second` 0 is no limit.
    pub fn new(per_second: usize, burst: usize) -> RateLimit {
        RateLimit {
            per_ms: per_second as f32 / 1000.0,
            burst: burst.max(1) as f32,
            epoch: Instant::now(),
        }
    }

    /// A new connection's budget: a full burst.
    pub fn fresh(&self, now: Instant) -> Budget {
        Budget {
            tokens: self.burst,
            at_ms: self.ms(now),
        }
    }

    /// Spends one token of `budget` for a message arriving `now`.
    pub fn admit(&self, budget: &mut Budget, now: Instant) -> Admit {
        if self.is_off() {
            return Admit::Yes;
        }
        let at = self.ms(now);
        let elapsed = at.wrapping_sub(budget.at_ms) as f32;
        budget.at_ms = at;
        // Floored just past closing, so a client that hammers on is locked out for a
        // bounded time (a further burst's worth), not one that grows with its attempts.
        budget.tokens =
            ((budget.tokens + elapsed * self.per_ms).min(self.burst) - 1.0).max(-self.burst - 1.0);
        if budget.tokens >= 0.0 {
            Admit::Yes
        } else if budget.tokens >= -self.burst {
            Admit::Refuse
        } else {
            Admit::Close
        }
    }

    /// Returns the token a message (or connection) spent: `budget` as if it had not
    /// come, the refill up to `now` included.
    pub fn give_back(&self, budget: &mut Budget, now: Instant) {
        let at = self.ms(now);
        let elapsed = at.wrapping_sub(budget.at_ms) as f32;
        budget.at_ms = at;
        budget.tokens = (budget.tokens + elapsed * self.per_ms + 1.0).min(self.burst);
    }

    /// Whether this limit lets everything through (a rate of 0).
    pub fn is_off(&self) -> bool {
        self.per_ms == 0.0
    }

    /// Whether `budget` has refilled to a full burst by `now`: it is then as good as
    /// a fresh one.
    pub fn is_rested(&self, budget: &Budget, now: Instant) -> bool {
        let elapsed = self.ms(now).wrapping_sub(budget.at_ms) as f32;
        budget.tokens + elapsed * self.per_ms >= self.burst
    }

    fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_messages_are_refused_then_the_connection_closed() {
        let limit = RateLimit::new(10, 5);
        let start = Instant::now();
        let mut budget = limit.fresh(start);
        let admitted: Vec<Admit> = (0..12).map(|_| limit.admit(&mut budget, start)).collect();
        assert_eq!(&admitted[..5], &[Admit::Yes; 5]);
        assert_eq!(&admitted[5..10], &[Admit::Refuse; 5]);
        assert_eq!(admitted[10], Admit::Close);
        // Time refills the bucket at the rate.
        let mut budget = limit.fresh(start);
        for _ in 0..5 {
            limit.admit(&mut budget, start);
        }
        let later = start + Duration::from_millis(200);
        assert_eq!(limit.admit(&mut budget, later), Admit::Yes);
        assert_eq!(limit.admit(&mut budget, later), Admit::Yes);
        assert_eq!(limit.admit(&mut budget, later), Admit::Refuse);
    }

    #[test]
    fn a_rate_of_zero_is_no_limit() {
        let limit = RateLimit::new(0, 1);
        let now = Instant::now();
        let mut budget = limit.fresh(now);
        assert!((0..10_000).all(|_| limit.admit(&mut budget, now) == Admit::Yes));
    }
}
