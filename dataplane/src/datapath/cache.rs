//! The per-worker megaflow cache in front of the pipeline.
//!
//! An entry is a translation together with the mask of key bits it depended on
//! (`XlateOutput::wc`, the megaflow): every packet that agrees with the translated key on those
//! bits gets the same datapath actions, so one entry serves all of them. Entries live in one
//! hash table per distinct mask ("mask group"); a lookup probes the groups in creation order,
//! hashing and comparing only the key words its mask touches — a handful for typical pipelines
//! instead of the whole 29-word key.
//!
//! Why megaflows and not exact match (the first version): measured on the veth lab
//! (`make bench-lab`, 10 000 UDP flows through a 3-table pipeline), the exact-match cache held
//! 10 000 entries of ~300 bytes; every packet's lookup missed the CPU caches and half of the
//! worker's own time was spent waiting for that one load. The same 10 000 flows are one
//! megaflow here (the pipeline only looks at `in_port` and `nw_dst`), which stays in L1. With
//! one flow the two cost the same, and a megaflow lookup hashes fewer words.
//!
//! Soundness rests on translation: `wc` must contain every bit the result depended on (the
//! classifier's staged lookup and xlate's action bookkeeping; both are property-tested against
//! "two keys that agree on the mask translate alike"). Megaflows of one bridge and epoch never
//! disagree, so whichever group answers first is right.
//!
//! Validity: an entry records its bridge's *epoch* at insertion; the worker moves a bridge to a
//! fresh epoch when it sees a new pipeline version or a port change, so older entries become
//! misses at once. A stale entry found by a lookup is removed on the spot; the others go when
//! the cache is full, which empties it whole (simple, and rare: it takes
//! [`DEFAULT_ENTRIES`] distinct megaflows, or [`MAX_GROUPS`] masks, within one epoch's life).
//! Entry storage (action and rule vectors) is reused, so a warm cache does not allocate.
//!
//! Cost of a hit (issue 3's speed work, measured with `DATAPATH_CPU=… cargo bench -p bench
//! --bench datapath`, see `bench/README.md`):
//! * **Hint first.** The worker passes the entry the previous packet hit; while consecutive
//!   packets keep hitting one entry (every packet of the veth lab's 10 000 flows, which are one
//!   megaflow), a lookup is a compare of the mask's words against that entry — no hash, no
//!   probe. A failed hint switches it off until two packets in a row hit one entry again, so
//!   traffic spread over many megaflows does not pay a failing compare per packet.
//! * **Compact entries.** At 10 000 megaflows the entries (~320 B) no longer fit the CPU
//!   caches; each [`Entry`] starts a cache line whose first line holds everything a hit reads
//!   for masks of up to three words, and stores the masked key packed (the group's words
//!   only), so a hit touches one or two lines of its entry instead of the four or five the
//!   whole-key layout spread the same fields over.

use crate::flowtable::RuleStats;
use crate::key::{FlowKey, KEY_WORDS};
use crate::xlate::{DpAction, DropReason, XlateOutput};
use hashbrown::HashTable;
use std::sync::Arc;

/// Default number of megaflows per worker.
pub const DEFAULT_ENTRIES: usize = 16 * 1024;

/// Most distinct masks before the cache is emptied (each costs a probe on a miss).
pub const MAX_GROUPS: usize = 64;

/// One cached translation.
///
/// Laid out for a hit at 10 000 megaflows, where entries no longer fit the CPU caches: an
/// entry starts a cache line, and that first line holds what every hit reads — the validity
/// fields, the actions' handle, the drop reason and the first masked words — so a hit on a
/// mask of up to 3 words touches one line of the entry (4 more words: two). The masked key is
/// stored packed (only the group's words, in order), not as a whole 29-word key.
#[derive(Default)]
#[repr(C, align(64))]
pub struct Entry {
    /// 0 = free.
    epoch: u64,
    /// Datapath actions.
    pub actions: Vec<DpAction>,
    bridge: u32,
    group: u16,
    /// Drop reason the translation reported.
    pub drop_reason: Option<DropReason>,
    /// The translated key's words under the group's mask, `packed[j]` for the group's
    /// `words[j]`.
    packed: [u64; KEY_WORDS],
    hash: u64,
    /// Rule counters to bump on each hit (once per batch).
    pub rules: Vec<Arc<RuleStats>>,
}

/// All megaflows with one mask.
struct Group {
    mask: FlowKey,
    /// Indices of the mask's nonzero words.
    words: Vec<u8>,
    /// Entry indices, by masked hash.
    table: HashTable<u32>,
}

impl Group {
    #[inline]
    fn hash(&self, bridge: u32, key: &FlowKey) -> u64 {
        // FxHash-style multiply-rotate over the masked words, then murmur3's avalanche so the
        // table's low bits depend on every input bit.
        let mut h = u64::from(bridge).wrapping_mul(0x517c_c1b7_2722_0a95);
        for &i in &self.words {
            let w = key.w[usize::from(i)] & self.mask.w[usize::from(i)];
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    #[inline]
    fn matches(&self, entry: &Entry, bridge: u32, key: &FlowKey) -> bool {
        entry.bridge == bridge
            && self.words.iter().zip(&entry.packed).all(|(&i, &m)| {
                let i = usize::from(i);
                key.w[i] & self.mask.w[i] == m
            })
    }
}

/// The cache.
pub struct FlowCache {
    groups: Vec<Group>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    capacity: usize,
}

/// Result of a lookup.
pub enum Lookup {
    /// Valid entry at this index.
    Hit(usize),
    /// No valid entry.
    Miss,
}

impl FlowCache {
    /// A cache of at most `entries` megaflows.
    pub fn new(entries: usize) -> FlowCache {
        FlowCache {
            groups: Vec::new(),
            entries: Vec::new(),
            free: Vec::new(),
            capacity: entries.max(1),
        }
    }

    /// Most megaflows held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Megaflows held now (including stale ones not yet found).
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct masks held now.
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Look `key` up for `bridge` whose current epoch is `epoch`, trying entry `hint` first
    /// (the entry the previous packet hit, or anything out of range for none): consecutive
    /// packets of one megaflow — the common case, and every packet when one megaflow covers a
    /// whole flow set — then cost a compare of the mask's words, no hash and no probe. Any
    /// valid entry of the bridge and epoch that matches is right (megaflows never disagree),
    /// so taking the hint's answer changes nothing but the cost.
    #[inline]
    pub fn lookup(&mut self, bridge: u32, epoch: u64, key: &FlowKey, hint: usize) -> Lookup {
        if let Some(e) = self.entries.get(hint) {
            // Free entries have epoch 0 (epochs start at 1), and a live entry's group exists.
            if e.epoch == epoch && self.groups[usize::from(e.group)].matches(e, bridge, key) {
                return Lookup::Hit(hint);
            }
        }
        for gi in 0..self.groups.len() {
            let g = &self.groups[gi];
            let h = g.hash(bridge, key);
            let entries = &self.entries;
            let Some(&idx) = g
                .table
                .find(h, |&i| g.matches(&entries[i as usize], bridge, key))
            else {
                continue;
            };
            if self.entries[idx as usize].epoch == epoch {
                return Lookup::Hit(idx as usize);
            }
            // Made under an older pipeline or port set: drop it and keep looking.
            self.remove(gi, h, idx);
        }
        Lookup::Miss
    }

    fn remove(&mut self, gi: usize, hash: u64, idx: u32) {
        if let Ok(slot) = self.groups[gi].table.find_entry(hash, |&i| i == idx) {
            slot.remove();
        }
        let e = &mut self.entries[idx as usize];
        e.epoch = 0;
        e.rules.clear();
        self.free.push(idx);
    }

    /// Entry `i`.
    #[inline]
    pub fn get(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    /// Store the translation `out` of `key` (its megaflow is `key` under `out.wc`); returns
    /// the entry's index. May empty the cache first when it is full: indices returned earlier
    /// are then invalid.
    pub fn insert(&mut self, bridge: u32, epoch: u64, key: &FlowKey, out: &XlateOutput) -> usize {
        if self.len() >= self.capacity {
            self.clear();
        }
        let gi = match self.groups.iter().position(|g| g.mask == out.wc) {
            Some(gi) => gi,
            None => {
                if self.groups.len() >= MAX_GROUPS {
                    self.clear();
                }
                let words = (0..KEY_WORDS)
                    .filter(|&i| out.wc.w[i] != 0)
                    .map(|i| i as u8)
                    .collect();
                self.groups.push(Group {
                    mask: out.wc,
                    words,
                    table: HashTable::new(),
                });
                self.groups.len() - 1
            }
        };
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry::default());
                (self.entries.len() - 1) as u32
            }
        };
        let g = &mut self.groups[gi];
        let hash = g.hash(bridge, key);
        let e = &mut self.entries[idx as usize];
        e.bridge = bridge;
        e.epoch = epoch;
        e.group = gi as u16;
        e.hash = hash;
        for (p, &i) in e.packed.iter_mut().zip(&g.words) {
            let i = usize::from(i);
            *p = key.w[i] & g.mask.w[i];
        }
        e.actions.clear();
        e.actions.extend_from_slice(&out.actions);
        e.rules.clear();
        e.rules.extend(out.rules.iter().cloned());
        e.drop_reason = out.drop_reason;
        let entries = &self.entries;
        g.table
            .insert_unique(hash, idx, |&i| entries[i as usize].hash);
        idx as usize
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.groups.clear();
        self.free.clear();
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.epoch = 0;
            e.rules.clear();
            self.free.push(i as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::flow::field::Field;

    const NO_HINT: usize = usize::MAX;

    fn key(src: u32, sport: u16) -> FlowKey {
        let mut k = FlowKey::zero();
        k.set(Field::InPort, 1);
        k.set(Field::EthType, 0x0800);
        k.set(Field::IpProto, 17);
        k.set(Field::Ipv4Src, u128::from(src));
        k.set(Field::Ipv4Dst, 0x0a00_0002);
        k.set(Field::UdpSrc, u128::from(sport));
        k
    }

    fn out_with_mask(fields: &[Field], port: u32) -> XlateOutput {
        let mut o = XlateOutput::new();
        for &f in fields {
            o.wc.set(f, u128::MAX);
        }
        o.actions.push(DpAction::Output(port));
        o
    }

    #[test]
    fn one_megaflow_serves_every_microflow_under_its_mask() {
        let mut c = FlowCache::new(DEFAULT_ENTRIES);
        let out = out_with_mask(&[Field::InPort, Field::EthType, Field::Ipv4Dst], 2);
        assert!(matches!(c.lookup(1, 1, &key(1, 1), NO_HINT), Lookup::Miss));
        c.insert(1, 1, &key(1, 1), &out);
        for sport in 0..10_000u16 {
            match c.lookup(
                1,
                1,
                &key(0x0a00_0001 + u32::from(sport % 7), sport),
                NO_HINT,
            ) {
                Lookup::Hit(i) => assert_eq!(c.get(i).actions, vec![DpAction::Output(2)]),
                Lookup::Miss => panic!("microflow {sport} missed"),
            }
        }
        assert_eq!((c.len(), c.n_groups()), (1, 1));
        // Another bridge, another destination: misses.
        assert!(matches!(c.lookup(2, 1, &key(1, 1), NO_HINT), Lookup::Miss));
        let mut other = key(1, 1);
        other.set(Field::Ipv4Dst, 0x0a00_0003);
        assert!(matches!(c.lookup(1, 1, &other, NO_HINT), Lookup::Miss));
    }

    #[test]
    fn stale_epochs_miss_and_are_removed() {
        let mut c = FlowCache::new(DEFAULT_ENTRIES);
        let out = out_with_mask(&[Field::Ipv4Dst], 2);
        c.insert(1, 1, &key(1, 1), &out);
        assert!(matches!(c.lookup(1, 2, &key(1, 1), NO_HINT), Lookup::Miss));
        assert_eq!(c.len(), 0, "stale entry removed when found");
        c.insert(1, 2, &key(1, 1), &out_with_mask(&[Field::Ipv4Dst], 3));
        match c.lookup(1, 2, &key(9, 9), NO_HINT) {
            Lookup::Hit(i) => assert_eq!(c.get(i).actions, vec![DpAction::Output(3)]),
            Lookup::Miss => panic!("miss"),
        }
    }

    #[test]
    fn several_masks_and_a_full_cache() {
        let mut c = FlowCache::new(100);
        c.insert(1, 1, &key(1, 1), &out_with_mask(&[Field::UdpSrc], 5));
        c.insert(
            1,
            1,
            &key(1, 2),
            &out_with_mask(&[Field::Ipv4Src, Field::UdpSrc], 6),
        );
        assert_eq!(c.n_groups(), 2);
        assert!(matches!(
            c.lookup(1, 1, &key(7, 1), NO_HINT),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            c.lookup(1, 1, &key(1, 2), NO_HINT),
            Lookup::Hit(_)
        ));
        assert!(matches!(c.lookup(1, 1, &key(7, 2), NO_HINT), Lookup::Miss));
        for sport in 100..300u16 {
            c.insert(1, 1, &key(1, sport), &out_with_mask(&[Field::UdpSrc], 5));
            assert!(c.len() <= 100);
        }
        assert!(matches!(
            c.lookup(1, 1, &key(3, 299), NO_HINT),
            Lookup::Hit(_)
        ));
    }

    /// Translate `k` through the stateful firewall's table 1 (`xlate_from`) and cache it.
    fn xlate_insert(
        c: &mut FlowCache,
        p: &crate::flowtable::Pipeline,
        k: &FlowKey,
        start: u8,
    ) -> usize {
        let ctx = crate::xlate::XlateCtx {
            pipeline: p,
            ports: &[1, 2],
            now_ms: 0,
            packet_len: 60,
        };
        let mut out = XlateOutput::new();
        crate::xlate::xlate_from(&ctx, k, start, &mut out);
        c.insert(1, 1, k, &out)
    }

    #[test]
    fn new_and_established_of_one_tuple_and_passes_stay_apart() {
        use conntrack::ct_state::{EST, NEW, RPL, TRK};
        let flows = [
            "table=0,ip actions=ct(table=1,zone=5)",
            "table=1,ip,ct_state=+trk+new,in_port=2 actions=drop",
            "table=1,ct_state=+trk+est,in_port=2 actions=output:1",
        ];
        let mut e = crate::flowtable::Pipeline::default().edit();
        for f in flows {
            let spec = control::flow::parse_flow(f, control::flow::ParseMode::Add).unwrap();
            e.insert(crate::flowtable::Rule::from_spec(&spec, 0));
        }
        let p = e.finish();
        let mut c = FlowCache::new(DEFAULT_ENTRIES);
        let mut first = key(7, 53);
        first.set(Field::InPort, 2);
        // Pass 0: ct + recirculation.
        let i0 = xlate_insert(&mut c, &p, &first, 0);
        assert!(matches!(c.get(i0).actions[0], DpAction::Ct { zone: 5, .. }));
        let recirc = |state: u32| {
            let mut k = first;
            k.set(Field::CtState, u128::from(state));
            k.set(Field::CtZone, 5);
            k.w[crate::key::RECIRC_WORD] |= u64::from(crate::xlate::recirc_id(1));
            k
        };
        // The recirculated +new key must not hit the first-pass entry.
        let new = recirc(TRK | NEW);
        assert!(matches!(c.lookup(1, 1, &new, NO_HINT), Lookup::Miss));
        let i_new = xlate_insert(&mut c, &p, &new, 1);
        assert!(c.get(i_new).actions.is_empty());
        // The same 5-tuple +est: its own entry, other actions.
        let est = recirc(TRK | EST | RPL);
        assert!(matches!(c.lookup(1, 1, &est, NO_HINT), Lookup::Miss));
        let i_est = xlate_insert(&mut c, &p, &est, 1);
        assert_eq!(c.get(i_est).actions, vec![DpAction::Output(1)]);
        // Each key now finds its own entry.
        assert!(matches!(c.lookup(1, 1, &first, NO_HINT), Lookup::Hit(i) if i == i0));
        assert!(matches!(c.lookup(1, 1, &new, NO_HINT), Lookup::Hit(i) if i == i_new));
        assert!(matches!(c.lookup(1, 1, &est, NO_HINT), Lookup::Hit(i) if i == i_est));
    }
}
