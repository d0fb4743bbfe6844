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
//!   (`Asym`) profile keeps it (an ACK establishes only after a SYN we saw, with
//!   `seq == SYN + 1`; any other number is `asym_bad_seq`).
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
//! NAT gives a reply key that is not the reverse of the original, so the reply's index
//! record may belong to another shard; see [NAT](#nat) for how the rule survives.
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
//! # NAT
//!
//! [`Conntrack::process_nat`] takes the `ct(nat...)` request ([`NatRequest`], a mirror of
//! the flow language's `NatSpec`; the datapath converts) and returns, with the verdict, the
//! [`Rewrite`] the datapath applies to this packet.
//!
//! **The binding is the reply key.** A NATed connection stores its original key as the
//! packet arrived and, as reply key, the reverse of the *translated* original: under SNAT of
//! `c:p -> s:80` to `n:q` the reply key is `s:80 -> n:q`, which is what the server's answers
//! carry on the wire, so they find the connection by the ordinary lookup. A packet's rewrite
//! is always "from my direction's key to the reverse of the other direction's key": the
//! translation for original packets, the reverse translation for replies; no separate NAT
//! record exists. `+snat`/`+dnat` (flags of the entry) are reported, with the rewrite, when
//! the caller asked for NAT (any request, bare `nat` included): a packet tracked by `ct()`
//! without `nat` is not translated. A binding is made only when the connection is created
//! (with `commit`); later requests, whatever their ranges, apply the existing binding, as in
//! Open vSwitch and Linux. [`EntryInfo`] shows both keys as stored and `snat`/`dnat`.
//!
//! **Allocation.** [`nat`] lists candidate translations in order: each address of the range
//! from a start chosen by a keyed hash of the original key (or of the client address alone
//! with `persistent`, so a client keeps one address across connections); for each address,
//! each port (or ICMP query id) of the range from a keyed-hash start (`random`: a random
//! start), probing linearly. Without a port range the port is kept if free; on a collision
//! SNAT moves to the ephemeral range 1024–65535 (ICMP ids: 0–65535) as Open vSwitch does,
//! while DNAT keeps the service port and tries the other addresses, then (TCP/UDP) moves the
//! *source* port of its first choice into 1024–65535, like Linux's implicit source remap
//! (two clients behind one address and port reaching one backend). Without an address
//! range the address is kept. A candidate is taken when its reply key is used by no
//! connection of the zone in either direction, nor reserved. With no free candidate (or
//! after 2^17 tries, a bound on the locks one packet may take) the packet is `+inv`
//! `nat_exhausted`, counted, nothing is stored and no rewrite is given: the caller drops it,
//! it is never forwarded untranslated. [`Conntrack::nat_exhausted_log`] gives the
//! housekeeping thread a rate-limited (10 s) count for the log.
//!
//! **Locks.** The entry and its original record live in the original key's shard (`H`); the
//! reply key's shard `R` may differ. Then `R` holds a *remote record*
//! `reply key → (H, slot, generation)`. Every key is indexed in its own shard, so "is this
//! key in use" is one lookup under one lock. The creation protocol never holds two locks:
//! 1. under `H`: the original key is unknown; the entry count is reserved;
//! 2. for each candidate, under its `R` only: if the key is free, insert a *pending* remote
//!    record (`slot = PENDING`, a creation token) — the reservation that makes the choice
//!    exclusive;
//! 3. under `H` again: if the original key appeared meanwhile (the same connection created
//!    by another packet), undo the reservation and start over (the retry finds the
//!    connection); else insert the entry (if `R == H` the pending record becomes an
//!    ordinary index record);
//! 4. under `R`: point the record at the entry; then under `H`: if the entry was already
//!    removed (its removal could not find the record while pending), delete the record.
//!
//! A lookup that hits a remote record releases `R` before taking `H` and re-checks
//! generation and key (the entry may be gone: the stale record is then deleted). A packet
//! whose key is a pending reservation is `+inv` `reply_in_use` (it cannot be a reply: the
//! original has not left yet), and so is the commit of a connection whose reply key is a NAT
//! binding's reply key (a packet that imitates a translated original): storing it would make
//! two connections share a key. Removing a NATed entry (expiry, early drop, flush, reopen)
//! queues its remote record; the record is deleted after `H`'s lock is released. Until then
//! it is stale: lookups ignore it and allocation treats its key as in use (harmless).
//! `check_invariants` verifies that every remote record points at its live entry and no
//! other exists once the table is quiet. Packets that race with removals in another shard
//! retry (at most 4 times, then `reply_in_use`). Cost: one remote record (~56 bytes) per
//! NATed connection whose reply lands in another shard (63 of 64 with 64 shards), and two
//! to four extra lock round trips per NAT creation, none per packet of an existing one
//! except the remote hop for replies.
//!
//! **Port blocks.** A request may carry a [`PortBlocks`] layout ([`NatRequest::block`],
//! the flow language's `nat(src=pool:NAME)`): the ports tried are then the block of the
//! connection's source address — RFC 7422's deterministic NAT, so every node with the same
//! layout agrees on which inside host a public port belongs to, see [`blocks`]. The allocator
//! is the one above, restricted; a full block, or a source outside the layout's inside
//! prefix, is `nat_exhausted`.
//!
//! **ICMP errors.** An error's key is the reverse of the packet it quotes, as seen on the
//! error's side, so an error about a translated packet finds its connection like a reply
//! does. For a NATed connection the verdict carries `rewrite` for the *outer* header
//! (addresses only, this direction's translation applied whoever sent the error — a
//! router's error behind a DNAT appears to come from the public address, as in Linux and
//! Open vSwitch) and `inner_rewrite` for the quoted header (addresses, ports, ICMP id: the
//! other direction's translation). Checksums the datapath must update: the outer IP header
//! checksum (IPv4); the ICMP checksum, computed over the modified ICMP message including the
//! quoted bytes (ICMPv6: plus the pseudo-header with the new outer addresses); the quoted
//! IPv4 header's checksum. The quoted L4 checksum is **not** updated: the quote is often
//! truncated, receivers do not verify it, and Linux and Open vSwitch leave it alone.
//!
//! **Security notes.** Port and address starts are keyed by a per-table random secret, so
//! an outside observer cannot predict the next translated port from earlier ones (blind
//! injection into translated connections needs the port); `random` draws a fresh start per
//! connection. Exhaustion is refused and counted, never bypassed. A NATed connection's keys
//! cannot be taken over by a crafted packet (`reply_in_use`). A range of the wrong address
//! family, or with min > max, is `+inv` `malformed`. Not done: protocols other than
//! TCP/UDP/ICMP are translated by address only (no GRE/SCTP keys), no FTP/SIP helpers.
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
//! - `Asym`: `Strict`, plus *one-sided* connections for zones that may see one direction
//!   only (scenario S1's network node). After a SYN we saw, with nothing seen coming back,
//!   the originator's ACK with `seq == SYN + 1` establishes the connection one-sided
//!   (`+est`, flagged in dumps, counted in `one_sided_established` and
//!   [`Conntrack::one_sided_count`]); see [`tcp`] for every rule. What it costs:
//!   - *The originator alone vouches for the connection.* Anyone who can send a SYN and
//!     then an ACK with its own ISN + 1 (no answer needed, so a spoofed source works too)
//!     creates an ESTABLISHED entry and gets `+est` for its packets. Flows of an `Asym`
//!     zone must therefore not grant `+est` more than they grant `+new` (in S1 both are
//!     forwarded to the VM, which answers a connection it never accepted with a RST).
//!     What stays refused: an ACK with no SYN before it (`not_new`), an ACK with another
//!     sequence number (`asym_bad_seq`) — so a *blind* ACK, the classic way to slip through
//!     a stateful filter or to make a router's stack answer, still opens nothing.
//!   - *State exhaustion.* Two packets make an entry, so one-sided entries are not
//!     assured: they are early-dropped like SYN_SENT ones when the zone is full, which keeps
//!     a flood from locking the zone but lets a flood evict live one-sided connections
//!     (their next packet is then `not_new`). Bound the zone with `limit=`.
//!   - *Weaker window checks.* The peer's windows are never seen: a segment of the seen
//!     direction is accepted within [`tcp::ONE_SIDED_SLACK`] (8 MiB) of the sender's
//!     highest sequence number and acknowledgment. Blind injection or a blind RST in that
//!     direction needs a guess within ±8 MiB (1 in 256 of the sequence space) instead of
//!     the receiver's window. A reply-direction segment is accepted only near what the
//!     originator acknowledged, and then the connection is tracked like `Liberal` for life.
//!   - *Own timers.* `tcp_one_sided_established` (default 7440 s, not 5 days: nothing
//!     but the originator's own packets keeps it alive) and `tcp_one_sided_closing`
//!     (default 60 s).
//!
//! # Invalid packets
//!
//! Every invalid verdict is counted globally and per zone ([`Conntrack::zone_invalid`]) and
//! carries the zone's [`InvalidAction`] (`Verdict::action`): `Flows` (Open vSwitch: continue
//! with `+trk+inv`), `Drop` (the datapath drops it in `ct()`; counted per zone and reason
//! when the verdict is given), `Untracked` (continue with `+trk` only, untranslated). Frames
//! the datapath cannot describe are counted through [`Conntrack::untrackable`].
//!
//! # Modules
//!
//! [`tuple`](mod@tuple) keys, [`packet`] the caller's description of a packet, [`table`]
//! shards and `process`, [`nat`] requests, rewrites and candidate translations,
//! [`tcp`]/[`udp`]/[`icmp`] the protocols, [`expiry`] timers, [`limits`] entry limits,
//! [`stats`] counters, [`config`] zones, profiles, invalid actions and timeouts, [`filter`]
//! partial tuples for `flush-conntrack`.

#![warn(missing_docs)]

pub mod blocks;
pub mod config;
pub mod expiry;
pub mod filter;
pub mod icmp;
pub mod limits;
pub mod nat;
pub mod packet;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod tuple;
pub mod udp;

pub use blocks::{BlockError, PortBlocks, MIN_BLOCK};
pub use config::{Config, InvalidAction, Profile, Timeouts, ZoneConfig};
pub use filter::{FilterError, TupleFilter};
pub use nat::{NatKind, NatRequest, NatVerdict, Rewrite};
pub use packet::{tcp_flags, InnerTuple, PacketInfo, TcpInfo, L4};
pub use stats::{InvalidReason, ZoneInvalid};
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
mod asym_tests;
#[cfg(test)]
mod nat_tests;
#[cfg(test)]
mod tests;
