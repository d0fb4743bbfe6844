//! The connection table: shards, entries, the two index records per entry, `process`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::config::{Config, InvalidAction, Profile, ZoneConfig};
use crate::expiry::{ExpiryQueue, Timer};
use crate::filter::TupleFilter;
use crate::icmp::{self, IcmpKind};
use crate::limits::{Full, Limits};
use crate::nat::{self, Candidates, NatKind, NatRequest, NatVerdict, Rewrite};
use crate::packet::{PacketInfo, L4};
use crate::stats::{Event, InvalidReason, Stats, ZoneInvalid};
use crate::tcp::{self, Outcome, TcpConn};
use crate::tuple::{proto, Dir, Tuple};
use crate::udp::UdpState;
use crate::{ct_state, Error};

/// End of an index chain.
const NIL: u32 = u32::MAX;
/// Entries examined at most by one early-drop attempt (over all shards).
const EARLY_DROP_BUDGET: usize = 1024;
/// Due timers handled by one `process` call on its own shard (amortised housekeeping).
const EXPIRE_PER_PACKET: usize = 4;

const F_LIVE: u8 = 0x01;
const F_SEEN_REPLY: u8 = 0x02;
/// Source-NATed connection.
const F_SNAT: u8 = 0x04;
/// Destination-NATed connection.
const F_DNAT: u8 = 0x08;
/// The reply tuple's index record is a [`RemoteRef`] in another shard.
const F_REMOTE: u8 = 0x10;
/// `RemoteRef::slot` of a reply tuple reserved by a connection being created.
const PENDING: u32 = u32::MAX;
/// Attempts of one packet when it races with removals or creations in other shards.
const MAX_RETRIES: usize = 4;
/// Minimum seconds between two `nat_exhausted` log reports.
const NAT_LOG_INTERVAL: u64 = 10;

/// Index record of a NATed connection's reply tuple kept in the tuple's own shard when the
/// entry lives in another one. `slot == PENDING`: reserved by a creation in progress (`gen`
/// is then the creation's token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RemoteRef {
    shard: u32,
    slot: u32,
    gen: u32,
}

/// Protocol-specific state of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProtoState {
    Tcp(TcpConn),
    Udp(UdpState),
    /// ICMP query: the response type that answers it.
    Icmp {
        response: u8,
    },
    Other,
}

/// One connection. Both direction keys live here; the index holds only small records
/// (hash → slot/direction link) pointing at it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    tuples: [Tuple; 2],
    /// Next link in the index chain of each direction's hash (`slot << 1 | dir`).
    next: [u32; 2],
    gen: u32,
    /// Current timeout in seconds (depends on the state; `last_seen + timeout` is the deadline).
    timeout: u32,
    mark: u32,
    label: [u64; 2],
    packets: [u64; 2],
    bytes: [u64; 2],
    created: u32,
    last_seen: u32,
    /// Deadline of this entry's current timer record (see [`crate::expiry`]).
    timer_at: u32,
    proto: ProtoState,
    flags: u8,
}

impl Entry {
    fn deadline(&self) -> u32 {
        self.last_seen.saturating_add(self.timeout)
    }

    fn live(&self) -> bool {
        self.flags & F_LIVE != 0
    }

    fn assured(&self) -> bool {
        match &self.proto {
            ProtoState::Tcp(c) => c.is_assured(),
            ProtoState::Udp(s) => *s == UdpState::Assured,
            ProtoState::Icmp { .. } => false,
            ProtoState::Other => self.flags & F_SEEN_REPLY != 0,
        }
    }

    /// A TCP connection established one-sided (profile `Asym`), reply never seen.
    fn one_sided(&self) -> bool {
        matches!(&self.proto, ProtoState::Tcp(c) if c.is_one_sided())
    }

    fn state_name(&self) -> &'static str {
        match &self.proto {
            ProtoState::Tcp(c) => c.state.name(),
            ProtoState::Udp(s) => s.name(),
            ProtoState::Icmp { .. } | ProtoState::Other => {
                if self.flags & F_SEEN_REPLY != 0 {
                    "REPLIED"
                } else {
                    "UNREPLIED"
                }
            }
        }
    }

    fn compute_timeout(&self, cfg: &ZoneConfig) -> u32 {
        let t = &cfg.timeouts;
        match &self.proto {
            ProtoState::Tcp(c) => c.timeout(t),
            ProtoState::Udp(s) => s.timeout(t),
            ProtoState::Icmp { .. } => t.icmp,
            ProtoState::Other => t.other,
        }
    }

    fn label(&self) -> u128 {
        (u128::from(self.label[0]) << 64) | u128::from(self.label[1])
    }

    /// ICMP type of each direction's packets (query, response) for an ICMP connection.
    fn icmp_types(&self) -> [Option<u8>; 2] {
        match self.proto {
            ProtoState::Icmp { response } => [
                icmp::query_of(self.tuples[0].src.is_ipv6(), response),
                Some(response),
            ],
            _ => [None, None],
        }
    }

    /// `+snat`/`+dnat` bits of a NATed connection.
    fn nat_bits(&self) -> u32 {
        let mut b = 0;
        if self.flags & F_SNAT != 0 {
            b |= ct_state::SNAT;
        }
        if self.flags & F_DNAT != 0 {
            b |= ct_state::DNAT;
        }
        b
    }

    /// Rewrite of a packet in direction `dir`: from its wire key to the key the other side
    /// expects (the reverse of the other direction's key). `None` without a binding.
    fn rewrite(&self, dir: Dir) -> Option<Rewrite> {
        if self.flags & (F_SNAT | F_DNAT) == 0 {
            return None;
        }
        Rewrite::between(
            &self.tuples[dir.idx()],
            &self.tuples[dir.flip().idx()].reverse(),
        )
    }
}

/// Handle of an entry: stays valid until the entry is removed (the generation changes then).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct EntryId {
    shard: u32,
    slot: u32,
    gen: u32,
}

/// The result of [`Conntrack::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `ct_state` bits (see [`crate::ct_state`]); always includes `TRK`.
    pub state: u32,
    /// The connection the packet belongs (or is related) to; `None` for invalid packets and
    /// for new connections that were not committed.
    pub entry: Option<EntryId>,
    /// Why the packet is invalid (set exactly when `state` has `INV`).
    pub invalid: Option<InvalidReason>,
    /// The entry's `ct_mark` (0 without an entry).
    pub mark: u32,
    /// The entry's `ct_label` (0 without an entry).
    pub label: u128,
    /// For an invalid packet, what the zone says `ct()` does with it (counted already: a
    /// `Drop` is in the zone's dropped counters); `Flows` otherwise.
    pub action: InvalidAction,
}

impl Verdict {
    fn invalid(r: InvalidReason) -> Verdict {
        Verdict {
            state: ct_state::TRK | ct_state::INV,
            entry: None,
            invalid: Some(r),
            mark: 0,
            label: 0,
            action: InvalidAction::Flows,
        }
    }

    /// Whether all of `bits` are set.
    pub fn has(&self, bits: u32) -> bool {
        self.state & bits == bits
    }
}

/// One connection as dumped (`swctl dump-conntrack`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryInfo {
    /// Zone.
    pub zone: u16,
    /// IP protocol number.
    pub proto: u8,
    /// State name (`ESTABLISHED`, `UNREPLIED`, ...).
    pub state: &'static str,
    /// Key of the original direction.
    pub original: Tuple,
    /// Key of the reply direction.
    pub reply: Tuple,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label`.
    pub label: u128,
    /// Seconds before the entry expires if no packet comes.
    pub timeout_remaining: u32,
    /// Packets per direction (original, reply).
    pub packets: [u64; 2],
    /// Bytes per direction (original, reply).
    pub bytes: [u64; 2],
    /// Whether the entry is protected from early drop.
    pub assured: bool,
    /// Seconds since the entry was created.
    pub age: u32,
    /// Handle, for `set_mark`/`set_label`.
    pub id: EntryId,
    /// Source-NATed: the reply tuple's destination is the translated source.
    pub snat: bool,
    /// Destination-NATed: the reply tuple's source is the translated destination.
    pub dnat: bool,
    /// Established one-sided (profile `Asym`): only the original direction was ever seen.
    pub one_sided: bool,
}

/// Memory used by the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryReport {
    /// Live entries.
    pub entries: usize,
    /// `size_of` of one entry.
    pub entry_size: usize,
    /// Nominal bytes per connection: the entry, two index records (key, value and control
    /// byte) and one timer record, without allocator slack.
    pub nominal_per_entry: usize,
    /// Bytes allocated by slabs, indexes and expiry queues (capacities, not lengths).
    pub allocated: usize,
}

impl MemoryReport {
    /// Allocated bytes divided by live entries.
    pub fn allocated_per_entry(&self) -> usize {
        self.allocated / self.entries.max(1)
    }
}

/// One lock's worth of the table.
#[derive(Debug)]
struct Shard {
    /// Hash of a direction's tuple → head of its chain. 32-bit keys: chains resolve collisions.
    index: FxHashMap<u32, u32>,
    slab: Vec<Entry>,
    free: Vec<u32>,
    timers: ExpiryQueue,
    /// Zones with their own configuration (a copy per shard, so no shared lock on the path).
    zones: FxHashMap<u16, ZoneConfig>,
    default_zone: ZoneConfig,
    live: usize,
    /// Where the next early-drop scan of this shard starts.
    cursor: usize,
    /// Reply tuples of NATed connections living in other shards (see the crate docs).
    remote: FxHashMap<Tuple, RemoteRef>,
    /// Remote records to delete once this shard's lock is released: `(tuple, slot, gen)` of
    /// removed entries (cleaned by [`Conntrack::unlock`]).
    orphans: Vec<(Tuple, u32, u32)>,
    /// Live NATed entries of this shard (while 0 and `remote` is empty, no reply key here can
    /// differ from the reverse of an original key, and a new connection skips one lookup).
    nat_live: usize,
    /// Live one-sided entries of this shard.
    one_sided: usize,
}

fn link(slot: u32, dir: Dir) -> u32 {
    (slot << 1) | dir as u32
}

fn unlink_parts(l: u32) -> (usize, usize) {
    ((l >> 1) as usize, (l & 1) as usize)
}

fn h32(t: &Tuple) -> u32 {
    let h = t.hash64();
    (h ^ (h >> 32)) as u32
}

impl Shard {
    fn new(default_zone: ZoneConfig) -> Self {
        Shard {
            index: FxHashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            timers: ExpiryQueue::default(),
            zones: FxHashMap::default(),
            default_zone,
            live: 0,
            cursor: 0,
            remote: FxHashMap::default(),
            orphans: Vec::new(),
            nat_live: 0,
            one_sided: 0,
        }
    }

    fn zone_cfg(&self, zone: u16) -> ZoneConfig {
        self.zones.get(&zone).copied().unwrap_or(self.default_zone)
    }

    fn find(&self, t: &Tuple) -> Option<(u32, Dir)> {
        let mut l = *self.index.get(&h32(t))?;
        while l != NIL {
            let (slot, d) = unlink_parts(l);
            let e = &self.slab[slot];
            if e.tuples[d] == *t {
                let dir = if d == 0 { Dir::Original } else { Dir::Reply };
                return Some((slot as u32, dir));
            }
            l = e.next[d];
        }
        None
    }

    fn index_insert(&mut self, slot: u32, dir: Dir) {
        let h = h32(&self.slab[slot as usize].tuples[dir.idx()]);
        let head = self.index.entry(h).or_insert(NIL);
        self.slab[slot as usize].next[dir.idx()] = *head;
        *head = link(slot, dir);
    }

    fn index_remove(&mut self, slot: u32, dir: Dir) {
        let me = link(slot, dir);
        let h = h32(&self.slab[slot as usize].tuples[dir.idx()]);
        let next_of_me = self.slab[slot as usize].next[dir.idx()];
        let Some(head) = self.index.get_mut(&h) else {
            return;
        };
        if *head == me {
            if next_of_me == NIL {
                self.index.remove(&h);
            } else {
                *head = next_of_me;
            }
            return;
        }
        let mut l = *head;
        while l != NIL {
            let (s, d) = unlink_parts(l);
            let n = self.slab[s].next[d];
            if n == me {
                self.slab[s].next[d] = next_of_me;
                return;
            }
            l = n;
        }
    }

    fn insert(&mut self, mut e: Entry) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(s) => {
                e.gen = self.slab[s as usize].gen;
                self.slab[s as usize] = e;
                s
            }
            None => {
                self.slab.push(e);
                (self.slab.len() - 1) as u32
            }
        };
        self.index_insert(slot, Dir::Original);
        // A tuple that is its own reverse (same address and port both ways) gets one record;
        // a reply living in another shard has a remote record there instead.
        let en = &self.slab[slot as usize];
        if en.tuples[0] != en.tuples[1] && en.flags & F_REMOTE == 0 {
            self.index_insert(slot, Dir::Reply);
        }
        let en = &self.slab[slot as usize];
        let (gen, deadline) = (en.gen, en.deadline());
        self.slab[slot as usize].timer_at = deadline;
        self.timers.push(Timer {
            deadline,
            slot,
            gen,
        });
        self.live += 1;
        if self.slab[slot as usize].flags & (F_SNAT | F_DNAT) != 0 {
            self.nat_live += 1;
        }
        (slot, gen)
    }

    /// Remove a live entry; returns its zone so the caller can release the limit.
    fn remove(&mut self, slot: u32) -> u16 {
        self.index_remove(slot, Dir::Original);
        let e = &self.slab[slot as usize];
        if e.flags & F_REMOTE != 0 {
            self.orphans.push((e.tuples[1], slot, e.gen));
        } else if e.tuples[0] != e.tuples[1] {
            self.index_remove(slot, Dir::Reply);
        }
        let e = &mut self.slab[slot as usize];
        if e.flags & (F_SNAT | F_DNAT) != 0 {
            self.nat_live -= 1;
        }
        if e.one_sided() {
            self.one_sided -= 1;
        }
        e.flags = 0;
        e.gen = e.gen.wrapping_add(1);
        let zone = e.tuples[0].zone;
        self.free.push(slot);
        self.live -= 1;
        self.maybe_compact();
        zone
    }

    /// Drop stale timer records once they outnumber live entries (see [`crate::expiry`]).
    fn maybe_compact(&mut self) {
        if self.timers.len() > 2 * self.live + 64 {
            let slab = &self.slab;
            self.timers.compact(|t| {
                let e = &slab[t.slot as usize];
                e.live() && e.gen == t.gen && e.timer_at == t.deadline
            });
        }
    }

    /// Re-arm the entry's timer if its deadline moved before the current record.
    fn reschedule_if_earlier(&mut self, slot: u32) {
        let e = &self.slab[slot as usize];
        let d = e.deadline();
        if d < e.timer_at {
            let gen = e.gen;
            self.slab[slot as usize].timer_at = d;
            self.timers.push(Timer {
                deadline: d,
                slot,
                gen,
            });
            self.maybe_compact();
        }
    }

    /// Handle up to `budget` due timer records; returns the zones of expired entries.
    fn expire(&mut self, now: u32, budget: usize, expired: &mut Vec<u16>) {
        for _ in 0..budget {
            let Some(t) = self.timers.pop_due(now) else {
                return;
            };
            let e = &self.slab[t.slot as usize];
            if !e.live() || e.gen != t.gen || e.timer_at != t.deadline {
                continue; // stale record
            }
            let d = e.deadline();
            if d <= now {
                expired.push(self.remove(t.slot));
            } else {
                self.slab[t.slot as usize].timer_at = d;
                self.timers.push(Timer {
                    deadline: d,
                    slot: t.slot,
                    gen: t.gen,
                });
            }
        }
    }

    /// Whether a packet keyed `t` would belong to some connection (either direction, also
    /// a reservation in progress or an entry past its deadline): a NAT must not produce it.
    fn in_use(&self, t: &Tuple) -> bool {
        self.find(t).is_some() || self.remote.contains_key(t)
    }

    fn allocated(&self) -> usize {
        self.remote.capacity() * (std::mem::size_of::<(Tuple, RemoteRef)>() + 1)
            + self.slab.capacity() * std::mem::size_of::<Entry>()
            + self.index.capacity() * (std::mem::size_of::<(u32, u32)>() + 1)
            + self.free.capacity() * 4
            + self.timers.capacity_bytes()
    }
}

/// Outcome of one attempt at processing a packet.
enum Step {
    Done(Verdict, Option<Rewrite>),
    /// A new connection to commit hit a limit; try an early drop and come back.
    Full(Full),
    /// A race with another shard's update (a removal, a concurrent creation): start over.
    Retry,
    /// A new connection with a NAT request, its entry count reserved: allocate the binding.
    CreateNat {
        proto_state: ProtoState,
        cfg: ZoneConfig,
        kind: NatKind,
    },
}

impl Step {
    fn done(v: Verdict) -> Step {
        Step::Done(v, None)
    }
}

/// Where a key was found.
enum Located<'a> {
    /// In shard `si`, entry `slot`, as direction `dir`; the guard is that shard's.
    Found(usize, MutexGuard<'a, Shard>, u32, Dir),
    /// Nowhere; the guard is the key's own shard's.
    Absent(MutexGuard<'a, Shard>),
    /// Reserved as the reply of a NAT binding being created (guard of the key's shard).
    Pending(MutexGuard<'a, Shard>),
}

/// A connection-tracking table (all zones).
#[derive(Debug)]
pub struct Conntrack {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
    limits: Limits,
    stats: Stats,
    /// Where the next early-drop search starts (spreads evictions over shards).
    drop_cursor: AtomicUsize,
    /// Secret key of NAT's hash-based port and address choice (unpredictable translations).
    seed: u64,
    /// Counter for NAT creation tokens and `random` port starts.
    nat_counter: AtomicU64,
    /// `nat_exhausted` events already reported by [`Conntrack::nat_exhausted_log`], and when.
    nat_logged: AtomicU64,
    nat_logged_at: AtomicU64,
}

fn secs(now_ms: u64) -> u32 {
    u32::try_from(now_ms / 1000).unwrap_or(u32::MAX)
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack::new(Config::default())
    }
}

impl Conntrack {
    /// An empty table.
    pub fn new(cfg: Config) -> Self {
        let n = cfg.shards.clamp(1, 4096).next_power_of_two();
        Conntrack {
            shards: (0..n)
                .map(|_| Mutex::new(Shard::new(cfg.default_zone)))
                .collect(),
            mask: n - 1,
            limits: Limits::new(cfg.global_limit),
            stats: Stats::new(cfg.default_zone.invalid),
            drop_cursor: AtomicUsize::new(0),
            seed: nat::random_seed(),
            nat_counter: AtomicU64::new(0),
            nat_logged: AtomicU64::new(0),
            nat_logged_at: AtomicU64::new(0),
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard lock cannot leave an entry half-linked in a way that
        // matters more than losing the table, and the daemon aborts on panic anyway.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Release shard `si`'s lock, then delete the remote reply records of the NATed entries
    /// removed under it, one shard lock at a time (never two held).
    #[inline]
    fn unlock(&self, si: usize, mut g: MutexGuard<'_, Shard>) {
        if g.orphans.is_empty() {
            return; // the common case: nothing removed, or no NAT
        }
        let orphans = std::mem::take(&mut g.orphans);
        drop(g);
        for (t, slot, gen) in orphans {
            let me = RemoteRef {
                shard: si as u32,
                slot,
                gen,
            };
            let mut s = self.lock(self.shard_of(&t));
            if s.remote.get(&t) == Some(&me) {
                s.remote.remove(&t);
            }
        }
    }

    fn shard_of(&self, t: &Tuple) -> usize {
        (t.symmetric_hash() as usize) & self.mask
    }

    /// Find the connection a key belongs to, following a remote reply record to the entry's
    /// shard (the first lock is released before the second is taken). A remote record whose
    /// entry is gone is stale (its removal's cleanup has not run yet) and is deleted here.
    /// `first` runs once on the key's own shard, under the lookup's lock (housekeeping).
    #[inline]
    fn locate(&self, t: &Tuple, mut first: impl FnMut(&mut Shard)) -> Located<'_> {
        let home = self.shard_of(t);
        let mut once = true;
        loop {
            let mut g = self.lock(home);
            if once {
                first(&mut g);
                once = false;
            }
            if let Some((slot, dir)) = g.find(t) {
                return Located::Found(home, g, slot, dir);
            }
            let Some(r) = g.remote.get(t).copied() else {
                return Located::Absent(g);
            };
            if r.slot == PENDING {
                return Located::Pending(g);
            }
            self.unlock(home, g);
            let owner = self.lock(r.shard as usize);
            match owner.slab.get(r.slot as usize) {
                Some(e) if e.live() && e.gen == r.gen && e.tuples[1] == *t => {
                    return Located::Found(r.shard as usize, owner, r.slot, Dir::Reply);
                }
                _ => {}
            }
            drop(owner);
            let mut g = self.lock(home);
            if g.remote.get(t) == Some(&r) {
                g.remote.remove(t);
            }
        }
    }

    /// Set the configuration of one zone (profile, limit, timeouts). Existing entries get the
    /// new timeouts at their next packet.
    pub fn set_zone_config(&self, zone: u16, cfg: ZoneConfig) {
        for i in 0..self.shards.len() {
            self.lock(i).zones.insert(zone, cfg);
        }
        self.stats.set_action(zone, cfg.invalid);
    }

    /// The configuration in force for `zone`.
    pub fn zone_config(&self, zone: u16) -> ZoneConfig {
        self.lock(0).zone_cfg(zone)
    }

    /// Track one packet at time `now_ms` (the caller's monotonic clock, milliseconds; entries
    /// keep second resolution). With `commit`, a new connection is remembered; without it, it
    /// is reported `+new` and forgotten (Open vSwitch `ct()` vs `ct(commit)`). No NAT is
    /// applied (`ct()` without `nat`); see [`Conntrack::process_nat`].
    pub fn process(&self, pkt: &PacketInfo, now_ms: u64, commit: bool) -> Verdict {
        self.process_nat(pkt, now_ms, commit, None).verdict
    }

    /// [`Conntrack::process`] with a NAT request (`ct(nat...)`).
    ///
    /// - A new connection with `commit` and a request of some kind gets a binding: the
    ///   translated tuple is chosen so that its reply tuple is used by no other connection
    ///   of the zone; the rewrite of this packet is returned. No free translation: `+inv`
    ///   `nat_exhausted`, nothing stored — the packet must not be sent untranslated.
    /// - A packet of a NATed connection, with any request (bare `nat` included), gets its
    ///   direction's rewrite (replies: the reverse translation) and `+snat`/`+dnat`. A
    ///   binding is made only at creation: a request on a connection committed without NAT
    ///   changes nothing.
    /// - An ICMP error related to a NATed connection gets `rewrite` for its outer header
    ///   (addresses) and `inner_rewrite` for the quoted packet.
    ///
    /// Without a request (`None`) no rewrite is reported and no `+snat`/`+dnat` bit is set,
    /// even on a NATed connection: the packet is not translated.
    pub fn process_nat(
        &self,
        pkt: &PacketInfo,
        now_ms: u64,
        commit: bool,
        nat: Option<&NatRequest>,
    ) -> NatVerdict {
        self.process_inner(pkt, now_ms, commit, nat, false)
    }

    /// [`Conntrack::process_nat`] for a packet this tracker already saw in the same zone: a
    /// `ct(commit,...)` after a `ct(zone=Z,table=T)` recirculation. Its connection, if it has
    /// one, is not tracked a second time — no state transition, no packet or byte counted
    /// twice, no timeout restarted — only the verdict (state bits, mark, label, the NAT
    /// rewrite of a NATed connection) is given again; one it did not find then (a new,
    /// uncommitted connection) is created on `commit` as usual. Open vSwitch does the same
    /// (the kernel datapath's `skb_nfct_cached`, the userspace one's `process_one_fast`).
    pub fn process_nat_again(
        &self,
        pkt: &PacketInfo,
        now_ms: u64,
        commit: bool,
        nat: Option<&NatRequest>,
    ) -> NatVerdict {
        self.process_inner(pkt, now_ms, commit, nat, true)
    }

    fn process_inner(
        &self,
        pkt: &PacketInfo,
        now_ms: u64,
        commit: bool,
        nat: Option<&NatRequest>,
        again: bool,
    ) -> NatVerdict {
        let now = secs(now_ms);
        let plain = |verdict| NatVerdict {
            verdict,
            rewrite: None,
            inner_rewrite: None,
        };
        if let Err(r) = validate(pkt) {
            return plain(self.invalid(pkt.zone, r));
        }
        if let L4::Icmp {
            icmp_type, inner, ..
        } = pkt.l4
        {
            if icmp::classify(pkt.src.is_ipv6(), icmp_type) == IcmpKind::Error {
                return self.related(pkt, inner, now, nat.is_some());
            }
        }
        let mut first = true;
        let mut early_dropped = false;
        for _ in 0..MAX_RETRIES {
            let step = match self.try_process(pkt, now, commit, first, nat, again) {
                Step::CreateNat {
                    proto_state,
                    cfg,
                    kind,
                } => {
                    // `CreateNat` is only returned with `nat` set.
                    let req = nat.copied().unwrap_or_default();
                    self.create_nat(pkt, now, proto_state, &cfg, kind, &req)
                }
                s => s,
            };
            first = false;
            match step {
                Step::Done(verdict, rewrite) => {
                    return NatVerdict {
                        verdict,
                        rewrite,
                        inner_rewrite: None,
                    }
                }
                Step::Full(which) => {
                    let zone = (which == Full::Zone).then_some(pkt.zone);
                    if early_dropped || !self.early_drop(zone, now) {
                        return plain(self.invalid(pkt.zone, InvalidReason::TableFull));
                    }
                    early_dropped = true;
                }
                Step::Retry | Step::CreateNat { .. } => {}
            }
        }
        // Only a storm of races with other shards gets here.
        plain(self.invalid(pkt.zone, InvalidReason::ReplyInUse))
    }

    /// Count an invalid packet of `zone`; the verdict carries the zone's action for it.
    fn invalid(&self, zone: u16, r: InvalidReason) -> Verdict {
        let action = self.stats.invalid(zone, r);
        Verdict {
            action,
            ..Verdict::invalid(r)
        }
    }

    /// A frame `ct()` could not describe (not IP, a fragment, truncated headers) in `zone`:
    /// counted `untrackable` like any invalid packet (the verdict is `+trk+inv` and carries
    /// the zone's action).
    pub fn untrackable(&self, zone: u16) -> Verdict {
        self.invalid(zone, InvalidReason::Untrackable)
    }

    fn release_all(&self, zones: &[u16]) {
        for z in zones {
            self.limits.release(*z);
        }
    }

    fn try_process(
        &self,
        pkt: &PacketInfo,
        now: u32,
        commit: bool,
        first: bool,
        nat: Option<&NatRequest>,
        again: bool,
    ) -> Step {
        let tuple = pkt.tuple();
        let home = self.shard_of(&tuple);
        let mut expired = Vec::new();
        let mut reopened = false;
        let located = self.locate(&tuple, |s| {
            if first {
                s.expire(now, EXPIRE_PER_PACKET, &mut expired);
            }
        });
        let (si, mut shard) = match located {
            Located::Pending(g) => {
                self.release_all(&expired);
                // The reply key of a binding being created: its original packet has not even
                // left yet, so this is no reply; and it must not open a second connection
                // with the same key.
                self.unlock(home, g);
                return Step::done(self.invalid(pkt.zone, InvalidReason::ReplyInUse));
            }
            Located::Absent(g) => (home, g),
            Located::Found(si, mut shard, slot, dir) => {
                let cfg = shard.zone_cfg(pkt.zone);
                let e = &mut shard.slab[slot as usize];
                if e.deadline() <= now {
                    // Past its timeout but its timer has not popped yet: it is gone.
                    expired.push(shard.remove(slot));
                } else {
                    let was_one_sided = e.one_sided();
                    // Seen already (`again`): the verdict only, nothing updated twice.
                    let res = if again {
                        Ok(Outcome::Accept)
                    } else {
                        update(e, dir, pkt, cfg.profile)
                    };
                    let one_sided = e.one_sided();
                    if one_sided != was_one_sided {
                        if one_sided {
                            shard.one_sided += 1;
                            self.stats.event(Event::OneSided, 1);
                        } else {
                            shard.one_sided -= 1;
                        }
                    }
                    let e = &mut shard.slab[slot as usize];
                    match res {
                        Err(r) => {
                            self.unlock(si, shard);
                            self.release_all(&expired);
                            return Step::done(self.invalid(pkt.zone, r));
                        }
                        Ok(Outcome::Reopen) => {
                            expired.push(shard.remove(slot));
                            reopened = true;
                        }
                        Ok(Outcome::Accept) => {
                            if !again {
                                let d = dir.idx();
                                e.packets[d] += 1;
                                e.bytes[d] += u64::from(pkt.len);
                                e.last_seen = now;
                                if dir == Dir::Reply {
                                    e.flags |= F_SEEN_REPLY;
                                }
                                e.timeout = e.compute_timeout(&cfg);
                            }
                            let mut state = ct_state::TRK;
                            state |= match (dir, e.flags & F_SEEN_REPLY != 0) {
                                (Dir::Reply, _) => ct_state::EST | ct_state::RPL,
                                (Dir::Original, true) => ct_state::EST,
                                // Established without its reply ever seen (profile `Asym`).
                                (Dir::Original, false) if one_sided => ct_state::EST,
                                (Dir::Original, false) => ct_state::NEW,
                            };
                            let rewrite = if nat.is_some() {
                                state |= e.nat_bits();
                                e.rewrite(dir)
                            } else {
                                None
                            };
                            let v = Verdict {
                                state,
                                entry: Some(EntryId {
                                    shard: si as u32,
                                    slot,
                                    gen: e.gen,
                                }),
                                invalid: None,
                                mark: e.mark,
                                label: e.label(),
                                action: InvalidAction::Flows,
                            };
                            shard.reschedule_if_earlier(slot);
                            self.unlock(si, shard);
                            self.release_all(&expired);
                            return Step::Done(v, rewrite);
                        }
                    }
                }
                if si != home {
                    // The removed entry lived in another shard; a new connection belongs in
                    // this key's own shard.
                    self.unlock(si, shard);
                    self.release_all(&expired);
                    if reopened {
                        self.stats.event(Event::Reopened, 1);
                    }
                    return Step::Retry;
                }
                (si, shard)
            }
        };
        let cfg = shard.zone_cfg(pkt.zone);

        // A new connection.
        let proto_state = match new_state(pkt, cfg.profile) {
            Ok(p) => p,
            Err(r) => {
                self.unlock(si, shard);
                self.release_all(&expired);
                return Step::done(self.invalid(pkt.zone, r));
            }
        };
        if reopened {
            self.stats.event(Event::Reopened, 1);
        }
        let new_verdict = Verdict {
            state: ct_state::TRK | ct_state::NEW,
            entry: None,
            invalid: None,
            mark: 0,
            label: 0,
            action: InvalidAction::Flows,
        };
        if !commit {
            self.unlock(si, shard);
            self.release_all(&expired);
            return Step::done(new_verdict);
        }
        // Expired entries free their places before we reserve ours.
        self.release_all(&expired);
        let nat_kind = nat.and_then(|n| n.kind);
        let nat_here = shard.nat_live > 0 || !shard.remote.is_empty();
        if nat_kind.is_none() && nat_here && shard.in_use(&tuple.reverse()) {
            // Our reply key is the reply (or reservation) of a NATed connection: storing a
            // second connection with it would make replies ambiguous.
            self.unlock(si, shard);
            return Step::done(self.invalid(pkt.zone, InvalidReason::ReplyInUse));
        }
        if let Err(which) = self.limits.try_reserve(pkt.zone, cfg.limit) {
            self.unlock(si, shard);
            return Step::Full(which);
        }
        if let Some(kind) = nat_kind {
            self.unlock(si, shard);
            return Step::CreateNat {
                proto_state,
                cfg,
                kind,
            };
        }
        let e = new_entry(pkt, now, tuple.reverse(), proto_state, &cfg, 0);
        let (slot, gen) = shard.insert(e);
        self.unlock(si, shard);
        self.stats.event(Event::Created, 1);
        Step::done(Verdict {
            entry: Some(EntryId {
                shard: si as u32,
                slot,
                gen,
            }),
            ..new_verdict
        })
    }

    /// Create a NATed connection (its entry count is reserved). Allocation reserves the
    /// chosen reply key in its own shard (a `PENDING` remote record) before the entry exists,
    /// taking one shard lock at a time; see the crate documentation for the races.
    fn create_nat(
        &self,
        pkt: &PacketInfo,
        now: u32,
        proto_state: ProtoState,
        cfg: &ZoneConfig,
        kind: NatKind,
        req: &NatRequest,
    ) -> Step {
        let tuple = pkt.tuple();
        let home = self.shard_of(&tuple);
        let counter = self.nat_counter.fetch_add(1, Ordering::Relaxed);
        let token = (counter as u32) | 1; // never 0, so a bug cannot alias gen 0
        let cands = match Candidates::new(&tuple, req, kind, self.seed, nat::mix(counter)) {
            Ok(c) => c,
            Err(nat::BadRequest::NoBlock) => {
                // The pool has no block for this source: exhausted, as a full block is.
                self.limits.release(pkt.zone);
                self.stats.event(Event::NatExhausted, 1);
                return Step::done(self.invalid(pkt.zone, InvalidReason::NatExhausted));
            }
            Err(nat::BadRequest::Range) => {
                self.limits.release(pkt.zone);
                return Step::done(self.invalid(pkt.zone, InvalidReason::Malformed));
            }
        };
        let pending = RemoteRef {
            shard: home as u32,
            slot: PENDING,
            gen: token,
        };
        let mut chosen = None;
        for cand in cands.iter() {
            let r = self.shard_of(&cand);
            let mut s = self.lock(r);
            if !s.in_use(&cand) {
                s.remote.insert(cand, pending);
                chosen = Some((cand, r));
                break;
            }
        }
        let Some((reply, r)) = chosen else {
            self.limits.release(pkt.zone);
            self.stats.event(Event::NatExhausted, 1);
            return Step::done(self.invalid(pkt.zone, InvalidReason::NatExhausted));
        };
        let drop_reservation = |expect: RemoteRef| {
            let mut s = self.lock(r);
            if s.remote.get(&reply) == Some(&expect) {
                s.remote.remove(&reply);
            }
        };
        let mut shard = self.lock(home);
        if shard.in_use(&tuple) {
            // Another packet of this connection created it meanwhile: undo, start over (the
            // next attempt finds it).
            self.unlock(home, shard);
            drop_reservation(pending);
            self.limits.release(pkt.zone);
            return Step::Retry;
        }
        let remote = r != home;
        if !remote {
            // Same shard: an ordinary reply record replaces the reservation.
            shard.remote.remove(&reply);
        }
        let flags = match kind {
            NatKind::Src => F_SNAT,
            NatKind::Dst => F_DNAT,
        } | if remote { F_REMOTE } else { 0 };
        let e = new_entry(pkt, now, reply, proto_state, cfg, flags);
        let rewrite = e.rewrite(Dir::Original);
        let nat_bits = e.nat_bits();
        let (slot, gen) = shard.insert(e);
        self.unlock(home, shard);
        self.stats.event(Event::Created, 1);
        if remote {
            let me = RemoteRef {
                shard: home as u32,
                slot,
                gen,
            };
            {
                let mut s = self.lock(r);
                if let Some(x) = s.remote.get_mut(&reply) {
                    if *x == pending {
                        *x = me;
                    }
                }
            }
            // If the entry was removed before the record pointed at it, the removal's
            // cleanup missed the record: check and delete it ourselves.
            let alive = {
                let g = self.lock(home);
                let alive = g.slab[slot as usize].live() && g.slab[slot as usize].gen == gen;
                self.unlock(home, g);
                alive
            };
            if !alive {
                drop_reservation(me);
                drop_reservation(pending);
            }
        }
        Step::Done(
            Verdict {
                state: ct_state::TRK | ct_state::NEW | nat_bits,
                entry: Some(EntryId {
                    shard: home as u32,
                    slot,
                    gen,
                }),
                invalid: None,
                mark: 0,
                label: 0,
                action: InvalidAction::Flows,
            },
            rewrite,
        )
    }

    /// An ICMP error: `+rel` to the connection of the packet it quotes. The quoted packet
    /// went the other way; the key of the error's own direction is the reverse of the quoted
    /// packet's (on the error's side of the NAT), so that is the key looked up.
    fn related(
        &self,
        pkt: &PacketInfo,
        inner: Option<crate::packet::InnerTuple>,
        now: u32,
        nat: bool,
    ) -> NatVerdict {
        let plain = |verdict| NatVerdict {
            verdict,
            rewrite: None,
            inner_rewrite: None,
        };
        let Some(inner) = inner else {
            return plain(self.invalid(pkt.zone, InvalidReason::Malformed));
        };
        // The error travels back to the quoted packet's sender; anything else is spoofed or
        // mangled. Both are as seen on this side of the NAT, so the check holds through it.
        if pkt.dst != inner.src || inner.src.is_ipv4() != pkt.src.is_ipv4() {
            return plain(self.invalid(pkt.zone, InvalidReason::IcmpMismatch));
        }
        let quoted = inner.tuple(pkt.zone);
        // Usually the error's own key (the quoted packet reversed) is indexed: the error
        // entered from the side its direction's packets enter, and may cross the NAT. An error
        // about a NATed connection's packet that never crossed the NAT (a router on the
        // client's side quoting the client's untranslated packet) is found by the quoted key
        // itself; it goes back the way it came and is not translated.
        let mut crossed = true;
        let mut found = None;
        for t in [quoted.reverse(), quoted] {
            match self.locate(&t, |_| ()) {
                Located::Found(si, g, slot, dir) if g.slab[slot as usize].deadline() > now => {
                    let dir = if crossed { dir } else { dir.flip() };
                    found = Some((si, g, slot, dir));
                    break;
                }
                Located::Found(si, g, ..) => self.unlock(si, g),
                Located::Absent(g) | Located::Pending(g) => drop(g),
            }
            crossed = false;
        }
        let Some((si, shard, slot, dir)) = found else {
            return plain(self.invalid(pkt.zone, InvalidReason::IcmpNoConnection));
        };
        let e = &shard.slab[slot as usize];
        let rpl = if dir == Dir::Reply { ct_state::RPL } else { 0 };
        let mut state = ct_state::TRK | ct_state::REL | rpl;
        let (mut rewrite, mut inner_rewrite) = (None, None);
        if nat && crossed && e.flags & (F_SNAT | F_DNAT) != 0 {
            state |= e.nat_bits();
            // Outer header: the addresses of this direction's translation, whoever sent the
            // error (as Linux and Open vSwitch do: an error from a router behind a DNAT
            // appears to come from the public address).
            let target = e.tuples[dir.flip().idx()].reverse();
            rewrite = Rewrite::addresses_only(&e.tuples[dir.idx()], &target);
            // Inner: the quoted packet is the other direction's, as it looked on this side;
            // it becomes that direction's packet as seen on the far side.
            inner_rewrite =
                Rewrite::between(&e.tuples[dir.idx()].reverse(), &e.tuples[dir.flip().idx()]);
        }
        let verdict = Verdict {
            state,
            entry: Some(EntryId {
                shard: si as u32,
                slot,
                gen: e.gen,
            }),
            invalid: None,
            mark: e.mark,
            label: e.label(),
            action: InvalidAction::Flows,
        };
        self.unlock(si, shard);
        NatVerdict {
            verdict,
            rewrite,
            inner_rewrite,
        }
    }

    /// Rate-limited report of NAT exhaustion for the log: the number of connections refused
    /// (`nat_exhausted`) since the last report, at most once every 10 seconds and only if
    /// there were any. Meant for the housekeeping thread (the packet path never logs).
    pub fn nat_exhausted_log(&self, now_ms: u64) -> Option<u64> {
        let now = now_ms / 1000;
        let last = self.nat_logged_at.load(Ordering::Relaxed);
        if last != 0 && now < last + NAT_LOG_INTERVAL {
            return None;
        }
        let total = self.stats.event_count(Event::NatExhausted);
        let before = self.nat_logged.load(Ordering::Relaxed);
        if total == before {
            return None;
        }
        // One reporter wins a race; the others stay quiet.
        self.nat_logged_at
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        self.nat_logged.store(total, Ordering::Relaxed);
        Some(total - before)
    }

    /// Evict one unassured entry (of `zone` if given) to make room. Visits shards one at a time
    /// (never two locks held) from a rotating start, examining at most
    /// [`EARLY_DROP_BUDGET`] entries; expired entries met on the way are reclaimed too.
    fn early_drop(&self, zone: Option<u16>, now: u32) -> bool {
        let n = self.shards.len();
        let start = self.drop_cursor.fetch_add(1, Ordering::Relaxed);
        let mut budget = EARLY_DROP_BUDGET;
        let mut freed = false;
        for k in 0..n {
            if budget == 0 {
                break;
            }
            let si = (start + k) & self.mask;
            let mut shard = self.lock(si);
            let len = shard.slab.len();
            let mut released = Vec::new();
            for _ in 0..len.min(budget) {
                budget -= 1;
                let slot = shard.cursor % len;
                shard.cursor = shard.cursor.wrapping_add(1);
                let e = &shard.slab[slot];
                if !e.live() || zone.is_some_and(|z| e.tuples[0].zone != z) {
                    continue;
                }
                if e.deadline() <= now {
                    released.push(shard.remove(slot as u32));
                    self.stats.event(Event::Expired, 1);
                    freed = true;
                } else if !e.assured() {
                    released.push(shard.remove(slot as u32));
                    self.stats.event(Event::EarlyDrop, 1);
                    freed = true;
                    break;
                }
            }
            self.unlock(si, shard);
            self.release_all(&released);
            if freed {
                return true;
            }
        }
        false
    }

    /// Expire every entry whose timeout has passed at `now_ms`. Looks only at due timer records
    /// (see [`crate::expiry`]), never at the whole table. Returns how many entries expired.
    pub fn expire(&self, now_ms: u64) -> usize {
        let now = secs(now_ms);
        let mut total = 0;
        for i in 0..self.shards.len() {
            let mut expired = Vec::new();
            let mut s = self.lock(i);
            s.expire(now, usize::MAX, &mut expired);
            self.unlock(i, s);
            total += expired.len();
            self.release_all(&expired);
        }
        self.stats.event(Event::Expired, total as u64);
        total
    }

    /// Set an entry's `ct_mark`.
    pub fn set_mark(&self, id: EntryId, mark: u32) -> Result<(), Error> {
        self.with_entry(id, |e| e.mark = mark)
    }

    /// Set an entry's `ct_label`.
    pub fn set_label(&self, id: EntryId, label: u128) -> Result<(), Error> {
        self.with_entry(id, |e| e.label = [(label >> 64) as u64, label as u64])
    }

    fn with_entry(&self, id: EntryId, f: impl FnOnce(&mut Entry)) -> Result<(), Error> {
        let mut shard = self
            .shards
            .get(id.shard as usize)
            .ok_or(Error::StaleEntry)?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match shard.slab.get_mut(id.slot as usize) {
            Some(e) if e.live() && e.gen == id.gen => {
                f(e);
                Ok(())
            }
            _ => Err(Error::StaleEntry),
        }
    }

    /// The entries of one zone (or all), for dumps. Takes each shard lock in turn.
    pub fn entries(&self, zone: Option<u16>, now_ms: u64) -> Vec<EntryInfo> {
        let now = secs(now_ms);
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            for (slot, e) in shard.slab.iter().enumerate() {
                if !e.live() || zone.is_some_and(|z| e.tuples[0].zone != z) {
                    continue;
                }
                out.push(EntryInfo {
                    zone: e.tuples[0].zone,
                    proto: e.tuples[0].proto,
                    state: e.state_name(),
                    original: e.tuples[0],
                    reply: e.tuples[1],
                    mark: e.mark,
                    label: e.label(),
                    timeout_remaining: e.deadline().saturating_sub(now),
                    packets: e.packets,
                    bytes: e.bytes,
                    assured: e.assured(),
                    age: now.saturating_sub(e.created),
                    id: EntryId {
                        shard: i as u32,
                        slot: slot as u32,
                        gen: e.gen,
                    },
                    snat: e.flags & F_SNAT != 0,
                    dnat: e.flags & F_DNAT != 0,
                    one_sided: e.one_sided(),
                });
            }
        }
        out
    }

    /// Remove entries: all, one zone's, or the one connection with `tuple` (either direction;
    /// its zone is the tuple's). Returns how many were removed.
    pub fn flush(&self, zone: Option<u16>, tuple: Option<Tuple>) -> usize {
        let mut removed = Vec::new();
        if let Some(t) = tuple {
            if zone.is_none_or(|z| z == t.zone) {
                match self.locate(&t, |_| ()) {
                    Located::Found(si, mut shard, slot, _) => {
                        removed.push(shard.remove(slot));
                        self.unlock(si, shard);
                    }
                    Located::Absent(g) | Located::Pending(g) => drop(g),
                }
            }
        } else {
            for i in 0..self.shards.len() {
                let mut shard = self.lock(i);
                for slot in 0..shard.slab.len() {
                    let e = &shard.slab[slot];
                    if e.live() && zone.is_none_or(|z| e.tuples[0].zone == z) {
                        removed.push(shard.remove(slot as u32));
                    }
                }
                self.unlock(i, shard);
            }
        }
        self.release_all(&removed);
        self.stats.event(Event::Flushed, removed.len() as u64);
        removed.len()
    }

    /// Remove the connections (of `zone`, or of every zone) whose original or reply key
    /// matches `filter` (omitted fields match anything; see [`crate::filter`]). Visits the
    /// shards one after the other. Returns how many were removed.
    pub fn flush_matching(&self, zone: Option<u16>, filter: &TupleFilter) -> usize {
        let mut removed = Vec::new();
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            for slot in 0..shard.slab.len() {
                let e = &shard.slab[slot];
                if !e.live() || zone.is_some_and(|z| e.tuples[0].zone != z) {
                    continue;
                }
                let types = e.icmp_types();
                if filter.matches(&e.tuples[0], types[0]) || filter.matches(&e.tuples[1], types[1])
                {
                    removed.push(shard.remove(slot as u32));
                }
            }
            self.unlock(i, shard);
        }
        self.release_all(&removed);
        self.stats.event(Event::Flushed, removed.len() as u64);
        removed.len()
    }

    /// Invalid packets by reason.
    pub fn invalid_counters(&self) -> Vec<(&'static str, u64)> {
        self.stats.invalid_counters()
    }

    /// Event counters: created, expired, early_drop, flushed, reopened, nat_exhausted.
    pub fn event_counters(&self) -> Vec<(&'static str, u64)> {
        self.stats.event_counters()
    }

    /// One zone's invalid packets by reason, and those `ct()` dropped itself (zone action
    /// `drop`); non-zero reasons only.
    pub fn zone_invalid(&self, zone: u16) -> ZoneInvalid {
        self.stats.zone_invalid(zone)
    }

    /// Live one-sided connections (profile `Asym`), all zones. Takes each shard lock in turn.
    pub fn one_sided_count(&self) -> usize {
        (0..self.shards.len()).map(|i| self.lock(i).one_sided).sum()
    }

    /// Count of one invalid reason (convenience for tests and `swctl`).
    pub fn invalid_count(&self, r: InvalidReason) -> u64 {
        self.invalid_counters()
            .into_iter()
            .find(|(n, _)| *n == r.name())
            .map_or(0, |(_, c)| c)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.limits.total() as usize
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries in one zone.
    pub fn zone_len(&self, zone: u16) -> usize {
        self.limits.zone(zone) as usize
    }

    /// Non-zero per-zone entry counts.
    pub fn zone_counts(&self) -> Vec<(u16, u32)> {
        self.limits.zone_counts()
    }

    /// Memory accounting (takes each shard lock in turn).
    pub fn memory(&self) -> MemoryReport {
        let mut allocated = 0;
        let mut entries = 0;
        for i in 0..self.shards.len() {
            let s = self.lock(i);
            allocated += s.allocated();
            entries += s.live;
        }
        MemoryReport {
            entries,
            entry_size: std::mem::size_of::<Entry>(),
            nominal_per_entry: entry_nominal_size(),
            allocated,
        }
    }

    /// Internal consistency check for tests: counts, index and timers agree.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut total = 0;
        let (mut remotes, mut nremote) = (Vec::new(), 0);
        for i in 0..self.shards.len() {
            let s = self.lock(i);
            let live = s.slab.iter().filter(|e| e.live()).count();
            assert_eq!(live, s.live);
            let one_sided = s.slab.iter().filter(|e| e.live() && e.one_sided()).count();
            assert_eq!(one_sided, s.one_sided, "one-sided count");
            for (slot, e) in s.slab.iter().enumerate().filter(|(_, e)| e.live()) {
                assert_eq!(self.shard_of(&e.tuples[0]), i, "entry in its key's shard");
                for d in [Dir::Original, Dir::Reply] {
                    if d == Dir::Reply && e.flags & F_REMOTE != 0 {
                        remotes.push((e.tuples[1], i, slot, e.gen));
                        continue;
                    }
                    let (fs, _) = s.find(&e.tuples[d.idx()]).expect("indexed");
                    assert_eq!(fs as usize, slot);
                }
            }
            total += live;
            nremote += s.remote.len();
        }
        assert_eq!(total, self.len(), "live entries vs counted");
        // Every remote reply record points at its live entry, and no other exists (no
        // leaked reservation or stale record once the table is quiet).
        assert_eq!(nremote, remotes.len(), "remote records");
        for (t, i, slot, gen) in remotes {
            let s = self.lock(self.shard_of(&t));
            let r = s.remote.get(&t).expect("remote record");
            assert_eq!(
                *r,
                RemoteRef {
                    shard: i as u32,
                    slot: slot as u32,
                    gen
                }
            );
            assert!(s.find(&t).is_none(), "reply key used twice");
        }
    }
}

/// Nominal bytes per connection: entry + two index records + one timer record.
pub fn entry_nominal_size() -> usize {
    std::mem::size_of::<Entry>()
        + 2 * (std::mem::size_of::<(u32, u32)>() + 1)
        + std::mem::size_of::<Timer>()
}

/// A new entry for the connection opened by `pkt`, with reply key `reply`.
fn new_entry(
    pkt: &PacketInfo,
    now: u32,
    reply: Tuple,
    proto: ProtoState,
    cfg: &ZoneConfig,
    nat_flags: u8,
) -> Entry {
    let mut e = Entry {
        tuples: [pkt.tuple(), reply],
        next: [NIL; 2],
        gen: 0,
        timeout: 0,
        mark: 0,
        label: [0; 2],
        packets: [1, 0],
        bytes: [u64::from(pkt.len), 0],
        created: now,
        last_seen: now,
        timer_at: 0,
        proto,
        flags: F_LIVE | nat_flags,
    };
    e.timeout = e.compute_timeout(cfg);
    e
}

/// Consistency of a caller-built packet.
fn validate(pkt: &PacketInfo) -> Result<(), InvalidReason> {
    if pkt.src.is_ipv4() != pkt.dst.is_ipv4() {
        return Err(InvalidReason::Malformed);
    }
    let ok = match pkt.l4 {
        L4::Tcp(_) => pkt.proto == proto::TCP,
        L4::Udp { .. } => pkt.proto == proto::UDP,
        L4::Icmp { .. } => {
            (pkt.proto == proto::ICMP && pkt.src.is_ipv4())
                || (pkt.proto == proto::ICMPV6 && pkt.src.is_ipv6())
        }
        L4::Other => !matches!(
            pkt.proto,
            proto::TCP | proto::UDP | proto::ICMP | proto::ICMPV6
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(InvalidReason::Malformed)
    }
}

/// State of a connection opened by `pkt`, or why it cannot open one.
fn new_state(pkt: &PacketInfo, profile: Profile) -> Result<ProtoState, InvalidReason> {
    Ok(match pkt.l4 {
        L4::Tcp(t) => ProtoState::Tcp(TcpConn::new(&t, profile)?),
        L4::Udp { .. } => ProtoState::Udp(UdpState::Unreplied),
        L4::Icmp { icmp_type, .. } => match icmp::classify(pkt.src.is_ipv6(), icmp_type) {
            IcmpKind::Query { response } => ProtoState::Icmp { response },
            IcmpKind::Response => return Err(InvalidReason::NotNew),
            IcmpKind::Error => return Err(InvalidReason::IcmpNoConnection),
            IcmpKind::Unsupported => return Err(InvalidReason::IcmpUnsupported),
        },
        L4::Other => ProtoState::Other,
    })
}

/// Run a packet of an existing entry through its protocol's state machine.
fn update(
    e: &mut Entry,
    dir: Dir,
    pkt: &PacketInfo,
    profile: Profile,
) -> Result<Outcome, InvalidReason> {
    match (&mut e.proto, &pkt.l4) {
        (ProtoState::Tcp(c), L4::Tcp(t)) => tcp::track(c, dir, t, profile),
        (ProtoState::Udp(s), L4::Udp { .. }) => {
            *s = s.on_packet(dir);
            Ok(Outcome::Accept)
        }
        (ProtoState::Icmp { response }, L4::Icmp { icmp_type, .. }) => {
            let want_response = dir == Dir::Reply;
            let is_response = *icmp_type == *response;
            match icmp::classify(pkt.src.is_ipv6(), *icmp_type) {
                IcmpKind::Unsupported => Err(InvalidReason::IcmpUnsupported),
                _ if want_response == is_response => Ok(Outcome::Accept),
                _ => Err(InvalidReason::IcmpWrongDirection),
            }
        }
        (ProtoState::Other, L4::Other) => Ok(Outcome::Accept),
        _ => Err(InvalidReason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_per_connection() {
        let n = entry_nominal_size();
        println!(
            "entry {} bytes, tuple {} bytes, nominal per connection {} bytes",
            std::mem::size_of::<Entry>(),
            std::mem::size_of::<Tuple>(),
            n
        );
        assert!(n <= 256, "nominal {n} bytes per connection");
    }
}
