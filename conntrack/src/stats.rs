//! Counters: every packet judged invalid is counted under exactly one reason, plus event
//! counters (created, expired, early drops). Counters are relaxed atomics: they are
//! statistics, not synchronisation, and invalid packets are rare on the fast path.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

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
}

impl InvalidReason {
    /// All reasons, in counter order.
    pub const ALL: [InvalidReason; 14] = [
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
}

const EVENT_NAMES: [&str; 6] = [
    "created",
    "expired",
    "early_drop",
    "flushed",
    "reopened",
    "nat_exhausted",
];

/// The table's counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    invalid: [AtomicU64; 14],
    events: [AtomicU64; 6],
}

impl Stats {
    pub(crate) fn invalid(&self, r: InvalidReason) {
        self.invalid[r as usize].fetch_add(1, Ordering::Relaxed);
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
