//! Connection tracking for the switch: TCP, UDP, ICMP/ICMPv6 and other protocols over IPv4
//! and IPv6, per zone, without a global lock.
//!
//! # What it guarantees
//!
//! - **Both directions find one entry.** An entry holds the keys of both directions
//!   ([`Tuple`] original and reply); each is indexed, so a reply packet finds the connection
//!   its original packet created. The zone is part of every key: identical 5-tuples in two
//!   zones are two connections.
//! - **Open vSwitch semantics.** [`Conntrack::process`] returns `ct_state` bits with the values
//!   of `control::flow::field::ct_state` (see [`ct_state`]): `+trk` always; `+new` for a
//!   connection whose reply was not seen yet; `+est` once it was; `+rpl` in the reply
//!   direction; `+rel` for ICMP errors quoting a tracked connection; `+inv` with an
//!   [`InvalidReason`] otherwise. Only `commit` creates an entry: without it a new
//!   connection is reported `+new` and forgotten.
//! - **Nothing opens a connection by accident.** Only a bare SYN opens a TCP connection, only
//!   a query (echo request, ...) opens an ICMP one: an unsolicited ACK or echo reply is
//!   `+inv` (`not_new`). This is the security floor scenario S1 asks for; the one-sided
//!   (`Asym`) profile planned next keeps it (an ACK establishes only after a SYN we saw, with
//!   `seq == SYN + 1`).
//! - **Every invalid packet is counted** under exactly one reason
//!   ([`Conntrack::invalid_counters`]); a connection refused because the table is full is
//!   `+inv` `table_full`, never silently untracked.
//! - **Limits hold under concurrency.** Entry counts (global, per zone) are reserved before
//!   insertion; the table never holds more entries than a limit allows.
//!
//! # Concurrency and lock order
//!
//! The table is split in `2^k` shards, each a `Mutex` around its slab of entries, its index
//! and its expiry queue. A connection lives entirely in one shard: the shard is chosen by a
//! hash that is the same for a tuple and its reverse ([`Tuple`]'s symmetric hash), so both
//! index records and the entry are under one lock and a packet takes exactly one lock. No
//! code path holds two shard locks: early drop, expiry, dumps and flushes visit shards one
//! after the other. Entry and zone counts are atomics outside the shards; zone
//! configuration is copied into every shard (writers update each shard in turn), so the
//! packet path reads it under the lock it already holds. Locks are never held across calls
//! out of the crate.
//!
//! NAT (next) gives a reply key that is not the reverse of the original, so the reply's index
//! record may belong to another shard. The plan: the record in that shard points to
//! `(shard, slot, generation)` of the entry; a lookup that hits such a record releases the
//! first lock before taking the owner's and re-checks the generation. The one-lock-at-a-time
//! rule stays.
//!
//! # Expiry
//!
//! Per-shard min-heaps of `(deadline, slot, generation)` with lazy deletion; see
//! [`expiry`] for the rules. No periodic scan of the table exists: every
//! `process` call handles up to four due records of its own shard, [`Conntrack::expire`]
//! handles all due records (for the housekeeping thread), and a lookup that meets an entry
//! past its deadline treats it as gone. Time is passed in by the caller (`now_ms`), so tests
//! use a fake clock.
//!
//! # Memory
//!
//! One entry (both keys, counters, mark, label, timestamps, protocol state) in a per-shard
//! slab, plus two index records `u32 hash → u32 link` (collisions chained through the entry,
//! so a record needs no key of its own) and one 12-byte timer record. The nominal size is
//! printed by the `memory_per_connection` test and by the benchmark; the target is 256 bytes.
//! Timestamps are kept in seconds (`u32`), which is all the timeouts need.
//!
//! # Profiles and their trade-offs
//!
//! [`Profile`] is an argument of the TCP transition function, chosen per zone:
//! - `Strict` (default): Linux nf_conntrack behaviour — state machine, sequence and
//!   acknowledgment windows (van Rooij), window scaling, SYN-ACK must acknowledge the SYN,
//!   RSTs must fall in the receiver's window (RFC 5961 without challenge ACKs). Blind
//!   injection needs a guess within the window.
//! - `Liberal`: the same state machine, windows tracked but not enforced (any RST with valid
//!   flags closes the connection). Survives asymmetric routing and lost state at the cost of
//!   letting an off-path attacker who knows the 4-tuple inject segments or reset connections.
//!   Still, only a SYN opens a connection.
//!
//! # Modules
//!
//! [`tuple`](mod@tuple) keys, [`packet`] the caller's description of a packet, [`table`] shards and
//! `process`, [`tcp`]/[`udp`]/[`icmp`] the protocols, [`expiry`] timers, [`limits`] entry
//! limits, [`stats`] counters, [`config`] zones and timeouts.

#![warn(missing_docs)]

pub mod config;
pub mod expiry;
pub mod icmp;
pub mod limits;
pub mod nat;
pub mod packet;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod tuple;
pub mod udp;

pub use config::{Config, Profile, Timeouts, ZoneConfig};
pub use nat::{NatKind, NatRequest, NatVerdict, Rewrite};
pub use packet::{tcp_flags, InnerTuple, PacketInfo, TcpInfo, L4};
pub use stats::InvalidReason;
pub use table::{entry_nominal_size, Conntrack, EntryId, EntryInfo, MemoryReport, Verdict};
pub use tcp::TcpState;
pub use tuple::{proto, Dir, Tuple};
pub use udp::UdpState;

/// `ct_state` bits, the same values as the flow language's (`control::flow::field::ct_state`,
/// Open vSwitch's); duplicated so that this crate depends on neither `control` nor `dataplane`.
pub mod ct_state {
    /// Beginning of a new connection.
    pub const NEW: u32 = 0x01;
    /// Part of an established connection.
    pub const EST: u32 = 0x02;
    /// Related to an established connection.
    pub const REL: u32 = 0x04;
    /// In the reply direction.
    pub const RPL: u32 = 0x08;
    /// Invalid: could not be tracked.
    pub const INV: u32 = 0x10;
    /// Went through conntrack.
    pub const TRK: u32 = 0x20;
    /// Source-NATed (the packet of a source-NATed connection, translated by `ct(nat)`).
    pub const SNAT: u32 = 0x40;
    /// Destination-NATed (likewise).
    pub const DNAT: u32 = 0x80;
}

/// Errors of the control-side API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The entry no longer exists (expired, flushed or replaced).
    #[error("conntrack entry no longer exists")]
    StaleEntry,
}

#[cfg(test)]
mod nat_tests;
#[cfg(test)]
mod tests;
