//! Expiry without scanning the table: one deadline-ordered queue per shard, lazy deletion.
//!
//! Every live entry has exactly one *current* timer record `(deadline, slot, generation)` in
//! its shard's min-heap, and remembers that record's deadline (`timer_at`). Packets move an
//! entry's real deadline (`last_seen + timeout`) without touching the heap — the common case
//! (a packet extends the deadline) costs nothing. When a record pops:
//! - the slot's generation differs, or its `timer_at` is another deadline: the record is
//!   stale (entry removed, or rescheduled) and is dropped;
//! - the entry's real deadline has passed: the entry expires;
//! - otherwise it was extended: one new record at the real deadline replaces it.
//!
//! When a state change *shortens* the deadline (ESTABLISHED's 5 days to TIME_WAIT's 2 min),
//! a new, earlier record is pushed and the old one becomes stale. Stale records are garbage:
//! when they outnumber live entries the heap is compacted in one pass (amortised O(1) per
//! operation; it only ever looks at the queue, never at the table). Lookups also check the
//! deadline, so an entry past its timeout is never used even before its record pops.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One timer record; ordered by deadline first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    /// Deadline in seconds of the caller's clock.
    pub(crate) deadline: u32,
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

/// A shard's expiry queue.
#[derive(Debug, Default)]
pub(crate) struct ExpiryQueue {
    heap: BinaryHeap<Reverse<Timer>>,
}

impl ExpiryQueue {
    pub(crate) fn push(&mut self, t: Timer) {
        self.heap.push(Reverse(t));
    }

    /// The earliest record if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: u32) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse(t)) if t.deadline <= now => self.heap.pop().map(|r| r.0),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keep only records for which `current` holds (stale garbage removal).
    pub(crate) fn compact(&mut self, mut current: impl FnMut(&Timer) -> bool) {
        let v: Vec<Reverse<Timer>> = std::mem::take(&mut self.heap)
            .into_iter()
            .filter(|r| current(&r.0))
            .collect();
        self.heap = BinaryHeap::from(v);
    }

    /// Bytes allocated by the queue.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Reverse<Timer>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let mut q = ExpiryQueue::default();
        q.push(Timer {
            deadline: 30,
            slot: 1,
            gen: 0,
        });
        q.push(Timer {
            deadline: 10,
            slot: 2,
            gen: 0,
        });
        assert_eq!(q.pop_due(5), None);
        assert_eq!(q.pop_due(10).map(|t| t.slot), Some(2));
        assert_eq!(q.pop_due(20), None);
        q.compact(|t| t.slot != 1);
        assert_eq!(q.len(), 0);
    }
}
