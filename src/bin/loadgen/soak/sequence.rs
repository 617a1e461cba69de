//! One member's check of its room's sequence numbers: the owner stamps each game
//! message with the room's next `seq`, so a member that sees them jump has lost
//! messages and one that sees a number again has had one twice.

/// What a member saw of its room's `seq` numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    /// The number expected next; `None` until the first message when counting from
    /// whatever arrives first.
    next: Option<u64>,
    /// Game messages received.
    pub received: u64,
    /// Numbers skipped over.
    pub gaps: u64,
    /// Messages whose number was not above the last one's (repeated or out of order).
    pub repeats: u64,
}

impl Sequence {
    /// A member that joined before the room's first message: it must see every one,
    /// from 1.
    pub fn from_start() -> Sequence {
        Sequence {
            next: Some(1),
            ..Sequence::default()
        }
    }

    /// A member that joined a room already in use: it must see every message after the
    /// first it gets.
    pub fn from_first() -> Sequence {
        Sequence::default()
    }

    /// Counts the message numbered `seq`.
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        match self.next {
            Some(next) if seq < next => self.repeats += 1,
            Some(next) => {
                self.gaps += seq - next;
                self.next = Some(seq + 1);
            }
            None => self.next = Some(seq + 1),
        }
    }

    /// The last number seen (0 before any).
    pub fn last(&self) -> u64 {
        self.next.map_or(0, |next| next - 1)
    }

    /// What went wrong between the first message and the last one seen.
    pub fn lost(&self) -> u64 {
        self.gaps + self.repeats
    }

    /// What went wrong if the room's last message was numbered `last`: the numbers
    /// still missing at the end count too.
    pub fn lost_up_to(&self, last: u64) -> u64 {
        self.lost() + last.saturating_sub(self.last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(mut seq: Sequence, numbers: &[u64]) -> Sequence {
        for &n in numbers {
            seq.record(n);
        }
        seq
    }

    #[test]
    fn every_number_in_order_loses_nothing() {
        let seq = after(Sequence::from_start(), &[1, 2, 3, 4]);
        assert_eq!((seq.received, seq.lost_up_to(4)), (4, 0));
    }

    #[test]
    fn a_jump_counts_the_numbers_skipped() {
        let seq = after(Sequence::from_start(), &[1, 2, 5, 6]);
        assert_eq!((seq.gaps, seq.repeats, seq.lost_up_to(6)), (2, 0, 2));
    }

    #[test]
    fn a_missing_first_message_counts_from_the_start() {
        assert_eq!(after(Sequence::from_start(), &[2, 3]).lost_up_to(3), 1);
    }

    #[test]
    fn a_repeat_or_a_step_back_counts() {
        let seq = after(Sequence::from_start(), &[1, 2, 2, 3, 1]);
        assert_eq!((seq.gaps, seq.repeats), (0, 2));
    }

    #[test]
    fn the_missing_tail_counts_against_the_room_s_last_number() {
        let seq = after(Sequence::from_start(), &[1, 2, 3]);
        assert_eq!((seq.lost(), seq.lost_up_to(5)), (0, 2));
    }

    #[test]
    fn a_late_joiner_counts_from_its_first_message() {
        let seq = after(Sequence::from_first(), &[40, 41, 43]);
        assert_eq!((seq.last(), seq.lost()), (43, 1));
    }
}
