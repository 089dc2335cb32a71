//! Where each partition should go on: the offset the next message must have. tansu 0.6 answers a fetch from
//! an offset inside a record batch with the batch after it, so a consumer that takes over a partition from the
//! committed offset can be handed messages past a run it never saw (docs/reliability.md). A message beyond the
//! expected offset is such a gap: the partition is sought back, further each time, until the missing
//! messages arrive; storing is idempotent, so what is read twice is stored once.

use std::collections::HashMap;

/// How far back the first seek after a gap goes; each further gap on the partition doubles it.
const FIRST_REWIND: i64 = 500;

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Store it.
    Take,
    /// Messages are missing before it: seek the partition back to this offset and drop what came after.
    Rewind(i64),
}

/// The expected next offset of every partition this member reads.
#[derive(Debug, Default)]
pub struct Positions {
    next: HashMap<i32, i64>,
    rewind: HashMap<i32, i64>,
}

impl Positions {
    /// Forgets every partition (after a rebalance: the next message of each is checked against the committed
    /// offset again).
    pub fn reset(&mut self) {
        self.next.clear();
        self.rewind.clear();
    }

    /// The offset the partition's next message must have, when known.
    pub fn expected(&self, partition: i32) -> Option<i64> {
        self.next.get(&partition).copied()
    }

    /// Sets where a partition starts: its committed offset (or its first offset when nothing is committed).
    pub fn start(&mut self, partition: i32, offset: i64) {
        self.next.insert(partition, offset);
    }

    /// Judges a message of a partition whose start is known.
    pub fn admit(&mut self, partition: i32, offset: i64) -> Admission {
        let Some(expected) = self.expected(partition) else {
            self.next.insert(partition, offset + 1);
            return Admission::Take;
        };
        if offset <= expected {
            if offset == expected {
                self.rewind.remove(&partition);
            }
            self.next.insert(partition, expected.max(offset + 1));
            return Admission::Take;
        }
        let rewind = self.rewind.get(&partition).copied().unwrap_or(FIRST_REWIND);
        if expected - rewind / 2 <= 0 && self.rewind.contains_key(&partition) {
            // Sought back to the partition's start already: what is missing is gone from the broker. The
            // producer's reconcile publishes it again.
            self.rewind.remove(&partition);
            self.next.insert(partition, offset + 1);
            return Admission::Take;
        }
        self.rewind.insert(partition, rewind.saturating_mul(2));
        Admission::Rewind((expected - rewind).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_in_order_and_repeats_are_taken() {
        let mut positions = Positions::default();
        positions.start(0, 10);
        assert_eq!(positions.admit(0, 10), Admission::Take);
        assert_eq!(positions.admit(0, 11), Admission::Take);
        assert_eq!(
            positions.admit(0, 5),
            Admission::Take,
            "read again after a rewind"
        );
        assert_eq!(positions.expected(0), Some(12));
    }

    #[test]
    fn a_gap_rewinds_further_each_time_until_the_missing_message_comes() {
        let mut positions = Positions::default();
        positions.start(3, 2_000);
        assert_eq!(positions.admit(3, 2_037), Admission::Rewind(1_500));
        assert_eq!(positions.admit(3, 2_037), Admission::Rewind(1_000));
        assert_eq!(positions.admit(3, 1_200), Admission::Take);
        assert_eq!(positions.admit(3, 2_000), Admission::Take);
        assert_eq!(positions.admit(3, 2_001), Admission::Take);
        assert_eq!(positions.expected(3), Some(2_002));
    }

    #[test]
    fn a_gap_that_rewinding_to_the_start_cannot_fill_is_passed() {
        let mut positions = Positions::default();
        positions.start(1, 100);
        assert_eq!(positions.admit(1, 300), Admission::Rewind(0));
        assert_eq!(positions.admit(1, 300), Admission::Take);
        assert_eq!(positions.expected(1), Some(301));
        positions.reset();
        assert_eq!(positions.expected(1), None);
    }
}
