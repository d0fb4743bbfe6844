//! Drop reasons as counter indexes, and the per-worker counter arrays.
//!
//! Every drop reason has a fixed slot in a [`Drops`] array so that counting is one indexed
//! add on a worker-private array (no hashing, no shared cache line); the control thread asks
//! the workers for copies and sums them.

use crate::execute::ExecError;
use crate::packet::Malformed;
use crate::xlate::DropReason;

const N_MALFORMED: usize = Malformed::ALL.len();
const N_XLATE: usize = DropReason::ALL.len();
const BASE_XLATE: usize = N_MALFORMED;
const BASE_EXEC: usize = BASE_XLATE + N_XLATE;
const BASE_OTHER: usize = BASE_EXEC + 2;

/// Packets sent to the controller (there is none yet: counted and logged).
pub const CONTROLLER: usize = BASE_OTHER;
/// Output to an OpenFlow port the bridge does not have.
pub const UNKNOWN_PORT: usize = BASE_OTHER + 1;
/// The lock-free queue to the worker owning the output queue was full.
pub const CROSS_QUEUE_FULL: usize = BASE_OTHER + 2;
/// `normal`: the destination MAC was learned on the ingress port.
pub const NORMAL_SAME_PORT: usize = BASE_OTHER + 3;
/// A frame reached a worker for a queue it no longer owns (port deleted in flight).
pub const STALE_QUEUE: usize = BASE_OTHER + 4;
/// Recirculation (`ct(table=..)`) nested deeper than the worker allows, or too many
/// recirculations pending for one packet.
pub const RECIRC_TOO_DEEP: usize = BASE_OTHER + 5;
/// `ct(nat(...))` found no free translation for a new connection.
pub const NAT_EXHAUSTED: usize = BASE_OTHER + 6;
/// `ct()` dropped a packet conntrack judged invalid, in a zone whose invalid action is `drop`
/// (`conntrack-stats` has them per zone and reason).
pub const CT_INVALID: usize = BASE_OTHER + 7;
/// Number of reasons counted by workers.
pub const N_DROPS: usize = BASE_OTHER + 8;

/// Counters per reason.
pub type Drops = [u64; N_DROPS];

/// Counter index of a malformed frame.
#[inline]
pub fn malformed(m: Malformed) -> usize {
    m as usize
}

/// Counter index of a translation drop.
#[inline]
pub fn xlate(r: DropReason) -> usize {
    BASE_XLATE + r as usize
}

/// Counter index of an execution error.
#[inline]
pub fn exec(e: ExecError) -> usize {
    BASE_EXEC
        + match e {
            ExecError::Truncated => 0,
            ExecError::NoHeadroom => 1,
        }
}

/// Stable name of counter `i`.
pub fn name(i: usize) -> &'static str {
    if i < BASE_XLATE {
        Malformed::ALL[i].name()
    } else if i < BASE_EXEC {
        DropReason::ALL[i - BASE_XLATE].name()
    } else if i < BASE_OTHER {
        [ExecError::Truncated, ExecError::NoHeadroom][i - BASE_EXEC].name()
    } else {
        [
            "controller",
            "unknown_port",
            "cross_queue_full",
            "normal_same_port",
            "stale_queue",
            "recirc_too_deep",
            "nat_exhausted",
            "ct_invalid",
        ][i - BASE_OTHER]
    }
}

/// Add `b` into `a`.
pub fn add(a: &mut Drops, b: &Drops) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Nonzero counters as (name, count).
pub fn named(d: &Drops) -> Vec<(String, u64)> {
    d.iter()
        .enumerate()
        .filter(|(_, &n)| n != 0)
        .map(|(i, &n)| (name(i).to_string(), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_names() {
        for m in Malformed::ALL {
            assert_eq!(name(malformed(m)), m.name());
        }
        for r in DropReason::ALL {
            assert_eq!(name(xlate(r)), r.name());
        }
        for e in [ExecError::Truncated, ExecError::NoHeadroom] {
            assert_eq!(name(exec(e)), e.name());
        }
        let names: std::collections::HashSet<_> = (0..N_DROPS).map(name).collect();
        assert_eq!(names.len(), N_DROPS);
    }
}
