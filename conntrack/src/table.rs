//! The connection table: shards, entries, the two index records per entry, `process`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::config::{Config, Profile, ZoneConfig};
use crate::expiry::{ExpiryQueue, Timer};
use crate::icmp::{self, IcmpKind};
use crate::limits::{Full, Limits};
use crate::packet::{PacketInfo, L4};
use crate::stats::{Event, InvalidReason, Stats};
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
            ProtoState::Tcp(c) => c.state.timeout(t),
            ProtoState::Udp(s) => s.timeout(t),
            ProtoState::Icmp { .. } => t.icmp,
            ProtoState::Other => t.other,
        }
    }

    fn label(&self) -> u128 {
        (u128::from(self.label[0]) << 64) | u128::from(self.label[1])
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
}

impl Verdict {
    fn invalid(r: InvalidReason) -> Verdict {
        Verdict {
            state: ct_state::TRK | ct_state::INV,
            entry: None,
            invalid: Some(r),
            mark: 0,
            label: 0,
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
        // A tuple that is its own reverse (same address and port both ways) gets one record.
        let en = &self.slab[slot as usize];
        if en.tuples[0] != en.tuples[1] {
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
        (slot, gen)
    }

    /// Remove a live entry; returns its zone so the caller can release the limit.
    fn remove(&mut self, slot: u32) -> u16 {
        self.index_remove(slot, Dir::Original);
        let e = &self.slab[slot as usize];
        if e.tuples[0] != e.tuples[1] {
            self.index_remove(slot, Dir::Reply);
        }
        let e = &mut self.slab[slot as usize];
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

    fn allocated(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Entry>()
            + self.index.capacity() * (std::mem::size_of::<(u32, u32)>() + 1)
            + self.free.capacity() * 4
            + self.timers.capacity_bytes()
    }
}

/// Outcome of one attempt at processing a packet.
enum Step {
    Done(Verdict),
    /// A new connection to commit hit a limit; try an early drop and come back.
    Full(Full),
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
            stats: Stats::default(),
            drop_cursor: AtomicUsize::new(0),
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard lock cannot leave an entry half-linked in a way that
        // matters more than losing the table, and the daemon aborts on panic anyway.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shard_of(&self, t: &Tuple) -> usize {
        (t.symmetric_hash() as usize) & self.mask
    }

    /// Set the configuration of one zone (profile, limit, timeouts). Existing entries get the
    /// new timeouts at their next packet.
    pub fn set_zone_config(&self, zone: u16, cfg: ZoneConfig) {
        for i in 0..self.shards.len() {
            self.lock(i).zones.insert(zone, cfg);
        }
    }

    /// The configuration in force for `zone`.
    pub fn zone_config(&self, zone: u16) -> ZoneConfig {
        self.lock(0).zone_cfg(zone)
    }

    /// Track one packet at time `now_ms` (the caller's monotonic clock, milliseconds; entries
    /// keep second resolution). With `commit`, a new connection is remembered; without it, it
    /// is reported `+new` and forgotten (Open vSwitch `ct()` vs `ct(commit)`).
    pub fn process(&self, pkt: &PacketInfo, now_ms: u64, commit: bool) -> Verdict {
        let now = secs(now_ms);
        if let Err(r) = validate(pkt) {
            return self.invalid(r);
        }
        if let L4::Icmp {
            icmp_type, inner, ..
        } = pkt.l4
        {
            if icmp::classify(pkt.src.is_ipv6(), icmp_type) == IcmpKind::Error {
                return self.related(pkt, inner, now);
            }
        }
        match self.try_process(pkt, now, commit, true) {
            Step::Done(v) => v,
            Step::Full(which) => {
                let zone = (which == Full::Zone).then_some(pkt.zone);
                if self.early_drop(zone, now) {
                    if let Step::Done(v) = self.try_process(pkt, now, commit, false) {
                        return v;
                    }
                }
                self.invalid(InvalidReason::TableFull)
            }
        }
    }

    fn invalid(&self, r: InvalidReason) -> Verdict {
        self.stats.invalid(r);
        Verdict::invalid(r)
    }

    fn release_all(&self, zones: &[u16]) {
        for z in zones {
            self.limits.release(*z);
        }
    }

    fn try_process(&self, pkt: &PacketInfo, now: u32, commit: bool, first: bool) -> Step {
        let tuple = pkt.tuple();
        let si = self.shard_of(&tuple);
        let mut shard = self.lock(si);
        let mut expired = Vec::new();
        if first {
            shard.expire(now, EXPIRE_PER_PACKET, &mut expired);
        }
        let cfg = shard.zone_cfg(pkt.zone);
        let mut reopened = false;

        if let Some((slot, dir)) = shard.find(&tuple) {
            let e = &mut shard.slab[slot as usize];
            if e.deadline() <= now {
                // Past its timeout but its timer has not popped yet: it is gone.
                expired.push(shard.remove(slot));
            } else {
                match update(e, dir, pkt, cfg.profile) {
                    Err(r) => {
                        drop(shard);
                        self.release_all(&expired);
                        return Step::Done(self.invalid(r));
                    }
                    Ok(Outcome::Reopen) => {
                        let z = shard.remove(slot);
                        self.limits.release(z);
                        reopened = true;
                    }
                    Ok(Outcome::Accept) => {
                        let d = dir.idx();
                        e.packets[d] += 1;
                        e.bytes[d] += u64::from(pkt.len);
                        e.last_seen = now;
                        if dir == Dir::Reply {
                            e.flags |= F_SEEN_REPLY;
                        }
                        e.timeout = e.compute_timeout(&cfg);
                        let mut state = ct_state::TRK;
                        state |= match (dir, e.flags & F_SEEN_REPLY != 0) {
                            (Dir::Reply, _) => ct_state::EST | ct_state::RPL,
                            (Dir::Original, true) => ct_state::EST,
                            (Dir::Original, false) => ct_state::NEW,
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
                        };
                        shard.reschedule_if_earlier(slot);
                        drop(shard);
                        self.release_all(&expired);
                        return Step::Done(v);
                    }
                }
            }
        }

        // A new connection.
        let proto_state = match new_state(pkt, cfg.profile) {
            Ok(p) => p,
            Err(r) => {
                drop(shard);
                self.release_all(&expired);
                return Step::Done(self.invalid(r));
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
        };
        if !commit {
            drop(shard);
            self.release_all(&expired);
            return Step::Done(new_verdict);
        }
        // Expired entries free their places before we reserve ours.
        self.release_all(&expired);
        if let Err(which) = self.limits.try_reserve(pkt.zone, cfg.limit) {
            return if first {
                Step::Full(which)
            } else {
                Step::Done(self.invalid(InvalidReason::TableFull))
            };
        }
        let mut e = Entry {
            tuples: [tuple, tuple.reverse()],
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
            proto: proto_state,
            flags: F_LIVE,
        };
        e.timeout = e.compute_timeout(&cfg);
        let (slot, gen) = shard.insert(e);
        drop(shard);
        self.stats.event(Event::Created, 1);
        Step::Done(Verdict {
            entry: Some(EntryId {
                shard: si as u32,
                slot,
                gen,
            }),
            ..new_verdict
        })
    }

    /// An ICMP error: `+rel` to the connection of the packet it quotes.
    fn related(
        &self,
        pkt: &PacketInfo,
        inner: Option<crate::packet::InnerTuple>,
        now: u32,
    ) -> Verdict {
        let Some(inner) = inner else {
            return self.invalid(InvalidReason::Malformed);
        };
        // The error travels back to the quoted packet's sender; anything else is spoofed or
        // mangled (NAT will rewrite both before this check when it arrives).
        if pkt.dst != inner.src || inner.src.is_ipv4() != pkt.src.is_ipv4() {
            return self.invalid(InvalidReason::IcmpMismatch);
        }
        let t = inner.tuple(pkt.zone);
        let si = self.shard_of(&t);
        let shard = self.lock(si);
        let found = shard
            .find(&t)
            .filter(|(slot, _)| shard.slab[*slot as usize].deadline() > now);
        let Some((slot, dir)) = found else {
            drop(shard);
            return self.invalid(InvalidReason::IcmpNoConnection);
        };
        let e = &shard.slab[slot as usize];
        // The error goes the other way from the quoted packet.
        let rpl = if dir == Dir::Original {
            ct_state::RPL
        } else {
            0
        };
        Verdict {
            state: ct_state::TRK | ct_state::REL | rpl,
            entry: Some(EntryId {
                shard: si as u32,
                slot,
                gen: e.gen,
            }),
            invalid: None,
            mark: e.mark,
            label: e.label(),
        }
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
            drop(shard);
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
            self.lock(i).expire(now, usize::MAX, &mut expired);
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
                let mut shard = self.lock(self.shard_of(&t));
                if let Some((slot, _)) = shard.find(&t) {
                    removed.push(shard.remove(slot));
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
            }
        }
        self.release_all(&removed);
        self.stats.event(Event::Flushed, removed.len() as u64);
        removed.len()
    }

    /// Invalid packets by reason.
    pub fn invalid_counters(&self) -> Vec<(&'static str, u64)> {
        self.stats.invalid_counters()
    }

    /// Event counters: created, expired, early_drop, flushed, reopened.
    pub fn event_counters(&self) -> Vec<(&'static str, u64)> {
        self.stats.event_counters()
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
        for i in 0..self.shards.len() {
            let s = self.lock(i);
            let live = s.slab.iter().filter(|e| e.live()).count();
            assert_eq!(live, s.live);
            for (slot, e) in s.slab.iter().enumerate().filter(|(_, e)| e.live()) {
                for d in [Dir::Original, Dir::Reply] {
                    let (fs, _) = s.find(&e.tuples[d.idx()]).expect("indexed");
                    assert_eq!(fs as usize, slot);
                }
            }
            total += live;
        }
        assert_eq!(total, self.len());
    }
}

/// Nominal bytes per connection: entry + two index records + one timer record.
pub fn entry_nominal_size() -> usize {
    std::mem::size_of::<Entry>()
        + 2 * (std::mem::size_of::<(u32, u32)>() + 1)
        + std::mem::size_of::<Timer>()
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
