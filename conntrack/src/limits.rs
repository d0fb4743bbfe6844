//! Entry limits: global and per zone.
//!
//! Counts are atomics reserved *before* an entry is inserted (`fetch_add`, then undo if over
//! the limit), so concurrent inserts on different shards can never make the table exceed a
//! limit, and no lock is shared between shards. When a limit is hit the table tries an early
//! drop (see `Conntrack::early_drop`): an unassured entry is evicted to make room; if none is
//! found the new connection is refused and counted (`table_full`) — never silently skipped.

use std::sync::atomic::{AtomicU32, Ordering};

/// Which limit refused a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    Global,
    Zone,
}

/// Entry counts.
#[derive(Debug)]
pub(crate) struct Limits {
    global_limit: u32,
    total: AtomicU32,
    zones: Box<[AtomicU32]>,
}

impl Limits {
    pub(crate) fn new(global_limit: u32) -> Self {
        Limits {
            global_limit,
            total: AtomicU32::new(0),
            zones: (0..=u16::MAX).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Count one more entry in `zone`, unless that would pass a limit (`zone_limit` 0: none).
    pub(crate) fn try_reserve(&self, zone: u16, zone_limit: u32) -> Result<(), Full> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.global_limit {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Global);
        }
        let z = &self.zones[usize::from(zone)];
        if z.fetch_add(1, Ordering::AcqRel) >= zone_limit && zone_limit != 0 {
            z.fetch_sub(1, Ordering::AcqRel);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Zone);
        }
        Ok(())
    }

    /// One entry of `zone` is gone.
    pub(crate) fn release(&self, zone: u16) {
        self.zones[usize::from(zone)].fetch_sub(1, Ordering::AcqRel);
        self.total.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn total(&self) -> u32 {
        self.total.load(Ordering::Acquire)
    }

    pub(crate) fn zone(&self, zone: u16) -> u32 {
        self.zones[usize::from(zone)].load(Ordering::Acquire)
    }

    /// Non-zero per-zone counts.
    pub(crate) fn zone_counts(&self) -> Vec<(u16, u32)> {
        self.zones
            .iter()
            .enumerate()
            .filter_map(|(z, c)| {
                let c = c.load(Ordering::Acquire);
                (c != 0).then_some((z as u16, c))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_and_global_limits() {
        let l = Limits::new(3);
        assert!(l.try_reserve(1, 2).is_ok());
        assert!(l.try_reserve(1, 2).is_ok());
        assert_eq!(l.try_reserve(1, 2), Err(Full::Zone));
        assert!(l.try_reserve(2, 0).is_ok());
        assert_eq!(l.try_reserve(3, 0), Err(Full::Global));
        assert_eq!(l.total(), 3);
        l.release(1);
        assert_eq!(l.zone(1), 1);
        assert_eq!(l.zone_counts(), vec![(1, 1), (2, 1)]);
    }
}
