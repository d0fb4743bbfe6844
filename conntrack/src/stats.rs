//! Counters: every packet judged invalid is counted under exactly one reason, globally and
//! per zone (with, per zone, how many of them `ct()` dropped itself: the zone's
//! [`InvalidAction`] is kept here too), plus event counters (created, expired, early drops,
//! one-sided establishments). Counters are relaxed atomics: they are statistics, not
//! synchronisation, and invalid packets are rare on the fast path. The per-zone part is a map
//! behind a read-write lock taken only for invalid packets (a read lock, except the first
//! time a zone has one).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::RwLock;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::config::InvalidAction;

/// Why a packet was judged invalid (`+trk+inv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum InvalidReason {
    /// TCP sequence or acknowledgment number outside the tracked windows.
    OutOfWindow,
    /// TCP flag combination that no valid segment carries (e.g. SYN+FIN, no flags).
    BadFlags,
    /// Segment not allowed in the connection's state (e.g. a SYN-ACK in the original direction).
    InvalidTransition,
    /// A new connection that does not start like one (a TCP segment without SYN, an echo reply
    /// without a request).
    NotNew,
    /// The table (global or zone limit) is full and no unassured entry could be dropped.
    TableFull,
    /// RST whose sequence number is not in the receiver's window (RFC 5961 blind reset).
    BadRst,
    /// SYN-ACK that does not acknowledge the SYN.
    BadSynAck,
    /// ICMP error quoting a packet of no tracked connection.
    IcmpNoConnection,
    /// ICMP error whose outer addresses do not match the quoted packet.
    IcmpMismatch,
    /// ICMP type the tracker does not follow (neither query/response nor error).
    IcmpUnsupported,
    /// ICMP query/response in the wrong direction (a request answered by a request).
    IcmpWrongDirection,
    /// Source and destination of different IP families, or an L4 that does not match `proto`
    /// (also: a NAT range of the other family, or with min > max).
    Malformed,
    /// No free translation in the NAT request's ranges: the new connection is refused.
    NatExhausted,
    /// The packet's key, or the reply key a new connection would store, is the reply key of
    /// a NATed connection (or reserved by one being created).
    ReplyInUse,
    /// Profile `Asym`: an original-direction ACK after the SYN, with nothing seen in reply,
    /// whose sequence number is not the SYN's end (`SYN.seq + 1`): not the handshake's ACK,
    /// so it opens nothing.
    AsymBadSeq,
    /// A frame `ct()` cannot describe to conntrack (not IP, an IP fragment, truncated
    /// headers); counted by the datapath through [`crate::Conntrack::untrackable`].
    Untrackable,
}

/// Number of [`InvalidReason`]s.
pub const N_REASONS: usize = InvalidReason::ALL.len();

impl InvalidReason {
    /// All reasons, in counter order.
    pub const ALL: [InvalidReason; 16] = [
        InvalidReason::OutOfWindow,
        InvalidReason::BadFlags,
        InvalidReason::InvalidTransition,
        InvalidReason::NotNew,
        InvalidReason::TableFull,
        InvalidReason::BadRst,
        InvalidReason::BadSynAck,
        InvalidReason::IcmpNoConnection,
        InvalidReason::IcmpMismatch,
        InvalidReason::IcmpUnsupported,
        InvalidReason::IcmpWrongDirection,
        InvalidReason::Malformed,
        InvalidReason::NatExhausted,
        InvalidReason::ReplyInUse,
        InvalidReason::AsymBadSeq,
        InvalidReason::Untrackable,
    ];

    /// Stable name for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            InvalidReason::OutOfWindow => "out_of_window",
            InvalidReason::BadFlags => "bad_flags",
            InvalidReason::InvalidTransition => "invalid_transition",
            InvalidReason::NotNew => "not_new",
            InvalidReason::TableFull => "table_full",
            InvalidReason::BadRst => "bad_rst",
            InvalidReason::BadSynAck => "bad_synack",
            InvalidReason::IcmpNoConnection => "icmp_no_connection",
            InvalidReason::IcmpMismatch => "icmp_mismatch",
            InvalidReason::IcmpUnsupported => "icmp_unsupported",
            InvalidReason::IcmpWrongDirection => "icmp_wrong_direction",
            InvalidReason::Malformed => "malformed",
            InvalidReason::NatExhausted => "nat_exhausted",
            InvalidReason::ReplyInUse => "reply_in_use",
            InvalidReason::AsymBadSeq => "asym_bad_seq",
            InvalidReason::Untrackable => "untrackable",
        }
    }
}

/// Events that are not invalid packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Created,
    Expired,
    EarlyDrop,
    Flushed,
    Reopened,
    NatExhausted,
    /// A connection established one-sided (profile `Asym`).
    OneSided,
}

const EVENT_NAMES: [&str; 7] = [
    "created",
    "expired",
    "early_drop",
    "flushed",
    "reopened",
    "nat_exhausted",
    "one_sided_established",
];

/// One zone's invalid-packet action and counters.
#[derive(Debug)]
struct ZoneStats {
    action: AtomicU8,
    invalid: [AtomicU64; N_REASONS],
    dropped: [AtomicU64; N_REASONS],
}

impl ZoneStats {
    fn new(action: InvalidAction) -> Box<ZoneStats> {
        Box::new(ZoneStats {
            action: AtomicU8::new(action as u8),
            invalid: Default::default(),
            dropped: Default::default(),
        })
    }

    fn action(&self) -> InvalidAction {
        match self.action.load(Ordering::Relaxed) {
            1 => InvalidAction::Drop,
            2 => InvalidAction::Untracked,
            _ => InvalidAction::Flows,
        }
    }
}

/// Per-zone counters of one zone, as reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZoneInvalid {
    /// Invalid packets by reason (non-zero reasons only).
    pub invalid: Vec<(&'static str, u64)>,
    /// Of those, dropped by `ct()` itself (zone action `drop`), by reason (non-zero only).
    pub dropped: Vec<(&'static str, u64)>,
}

/// The table's counters.
#[derive(Debug)]
pub(crate) struct Stats {
    invalid: [AtomicU64; N_REASONS],
    events: [AtomicU64; 7],
    zones: RwLock<FxHashMap<u16, Box<ZoneStats>>>,
    /// Action of zones without their own configuration.
    default_action: InvalidAction,
}

impl Stats {
    pub(crate) fn new(default_action: InvalidAction) -> Stats {
        Stats {
            invalid: Default::default(),
            events: Default::default(),
            zones: RwLock::new(FxHashMap::default()),
            default_action,
        }
    }

    /// Count an invalid packet of `zone` and return what `ct()` must do with it (a drop is
    /// counted here, so the count and the action agree even if the zone changes meanwhile).
    pub(crate) fn invalid(&self, zone: u16, r: InvalidReason) -> InvalidAction {
        self.invalid[r as usize].fetch_add(1, Ordering::Relaxed);
        let count = |z: &ZoneStats| {
            z.invalid[r as usize].fetch_add(1, Ordering::Relaxed);
            let a = z.action();
            if a == InvalidAction::Drop {
                z.dropped[r as usize].fetch_add(1, Ordering::Relaxed);
            }
            a
        };
        {
            let zones = self.zones.read().unwrap_or_else(|p| p.into_inner());
            if let Some(z) = zones.get(&zone) {
                return count(z);
            }
        }
        let mut zones = self.zones.write().unwrap_or_else(|p| p.into_inner());
        count(
            zones
                .entry(zone)
                .or_insert_with(|| ZoneStats::new(self.default_action)),
        )
    }

    pub(crate) fn set_action(&self, zone: u16, a: InvalidAction) {
        let mut zones = self.zones.write().unwrap_or_else(|p| p.into_inner());
        zones
            .entry(zone)
            .or_insert_with(|| ZoneStats::new(a))
            .action
            .store(a as u8, Ordering::Relaxed);
    }

    pub(crate) fn zone_invalid(&self, zone: u16) -> ZoneInvalid {
        let zones = self.zones.read().unwrap_or_else(|p| p.into_inner());
        let Some(z) = zones.get(&zone) else {
            return ZoneInvalid::default();
        };
        let nonzero = |a: &[AtomicU64; N_REASONS]| {
            InvalidReason::ALL
                .iter()
                .map(|r| (r.name(), a[*r as usize].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n != 0)
                .collect()
        };
        ZoneInvalid {
            invalid: nonzero(&z.invalid),
            dropped: nonzero(&z.dropped),
        }
    }

    pub(crate) fn event(&self, e: Event, n: u64) {
        self.events[e as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn event_count(&self, e: Event) -> u64 {
        self.events[e as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn invalid_counters(&self) -> Vec<(&'static str, u64)> {
        InvalidReason::ALL
            .iter()
            .map(|r| (r.name(), self.invalid[*r as usize].load(Ordering::Relaxed)))
            .collect()
    }

    pub(crate) fn event_counters(&self) -> Vec<(&'static str, u64)> {
        EVENT_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, self.events[i].load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_ordered() {
        for (i, r) in InvalidReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        let names: std::collections::HashSet<_> =
            InvalidReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), N_REASONS);
    }

    #[test]
    fn per_zone_counts_and_drops_follow_the_action() {
        let s = Stats::new(InvalidAction::Flows);
        assert_eq!(s.invalid(3, InvalidReason::NotNew), InvalidAction::Flows);
        s.set_action(3, InvalidAction::Drop);
        s.set_action(4, InvalidAction::Untracked);
        assert_eq!(s.invalid(3, InvalidReason::NotNew), InvalidAction::Drop);
        assert_eq!(
            s.invalid(4, InvalidReason::BadRst),
            InvalidAction::Untracked
        );
        let z = s.zone_invalid(3);
        assert_eq!(z.invalid, vec![("not_new", 2)]);
        assert_eq!(z.dropped, vec![("not_new", 1)]);
        assert_eq!(s.zone_invalid(4).dropped, vec![]);
        assert_eq!(s.zone_invalid(9), ZoneInvalid::default());
        let total: u64 = s.invalid_counters().iter().map(|(_, n)| n).sum();
        assert_eq!(total, 3);
    }
}
