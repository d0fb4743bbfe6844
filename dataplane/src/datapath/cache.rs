//! The per-worker exact-match flow cache in front of the pipeline.
//!
//! Exact match on (bridge, whole flow key), two-way set associative, fixed size
//! ([`DEFAULT_ENTRIES`] per worker).
//!
//! Why exact match rather than megaflows (`XlateOutput::wc`): a hit costs one hash of the key
//! and one comparison, whatever the pipeline looks like, and a worker's cache is private so it
//! needs no synchronization. A megaflow cache costs a masked hash and probe per distinct mask
//! (tuple space search again, what the classifier already does) and pays off when many
//! microflows share a megaflow and the miss path is expensive. Measured
//! (`bench/benches/datapath.rs`, memory ports, one-rule pipeline, 2-core VM under load): a hit
//! costs ~120–130 ns per packet end to end (of which ~40 ns is the memory port itself), a miss
//! ~450 ns, and translating the 5-table benchmark pipeline alone ~250 ns (`bench/README.md`).
//! With 16k entries a working set of 10 000 flows stays on the hit path (~200 ns: the entries
//! no longer fit the CPU caches). So exact match is the simpler first layer; a megaflow layer
//! can go behind it later without changing the worker (translation already computes the mask).
//!
//! Validity: an entry records the *epoch* of its bridge at insertion. The worker gives a bridge
//! a fresh epoch whenever it notices a new pipeline version or a port added or removed (flood
//! sets change), so every older entry of that bridge becomes a miss at once, without walking
//! the cache. A new version is recognized by the identity of the `Arc<Pipeline>` the worker
//! holds, not by `Pipeline::version()`: two independently built pipelines can carry the same
//! number, while a held `Arc`'s address cannot be reused. Replacement: a new entry takes an empty way of its set, else the way inserted
//! longest ago (entries stay in place: moving ~300-byte entries cost more than translating).
//! Entry storage (the action and rule vectors) is reused, so a warm cache does not allocate
//! even on misses.

use crate::flowtable::RuleStats;
use crate::key::FlowKey;
use crate::xlate::{DpAction, DropReason, XlateOutput};
use std::hash::Hasher;
use std::sync::Arc;

/// Default number of entries per worker.
pub const DEFAULT_ENTRIES: usize = 16 * 1024;

/// One cached translation.
#[derive(Default)]
pub struct Entry {
    hash: u64,
    bridge: u32,
    /// 0 = empty.
    epoch: u64,
    /// Insertion order (replacement).
    seq: u64,
    key: FlowKey,
    /// Datapath actions.
    pub actions: Vec<DpAction>,
    /// Rule counters to bump on each hit.
    pub rules: Vec<Arc<RuleStats>>,
    /// Drop reason the translation reported.
    pub drop_reason: Option<DropReason>,
}

/// The cache.
pub struct FlowCache {
    entries: Vec<Entry>,
    sets_mask: usize,
    /// Insertions so far.
    seq: u64,
}

/// Hash of (bridge, key).
#[inline]
pub fn hash(bridge: u32, key: &FlowKey) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write_u32(bridge);
    for w in &key.w {
        h.write_u64(*w);
    }
    // FxHash's low bits depend only on the inputs' low bits (a multiply carries upward), and
    // keys differ in high bits (ports, addresses); the set index uses low bits, so finish with
    // murmur3's avalanche.
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Result of a lookup.
pub enum Lookup {
    /// Valid entry at this index.
    Hit(usize),
    /// No valid entry; insert here (`Some`: a stale copy of the same key to overwrite).
    Miss(Option<usize>),
}

impl FlowCache {
    /// A cache of about `entries` entries (rounded up to a power of two, at least 2).
    pub fn new(entries: usize) -> FlowCache {
        let sets = (entries / 2).max(1).next_power_of_two();
        FlowCache {
            entries: (0..sets * 2).map(|_| Entry::default()).collect(),
            sets_mask: sets - 1,
            seq: 0,
        }
    }

    /// Number of entries.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Look `key` up for `bridge` whose current epoch is `epoch`.
    #[inline]
    pub fn lookup(&self, bridge: u32, epoch: u64, key: &FlowKey, hash: u64) -> Lookup {
        let base = (hash as usize & self.sets_mask) * 2;
        for i in base..base + 2 {
            let e = &self.entries[i];
            if e.hash == hash && e.bridge == bridge && e.epoch != 0 && e.key == *key {
                return if e.epoch == epoch {
                    Lookup::Hit(i)
                } else {
                    Lookup::Miss(Some(i))
                };
            }
        }
        Lookup::Miss(None)
    }

    /// Entry `i`.
    #[inline]
    pub fn get(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    /// Store the translation `out` of `key`; returns the entry's index.
    pub fn insert(
        &mut self,
        bridge: u32,
        epoch: u64,
        key: &FlowKey,
        hash: u64,
        stale: Option<usize>,
        out: &XlateOutput,
    ) -> usize {
        let i = match stale {
            Some(i) => i,
            None => {
                // An empty way, else the one inserted first (FIFO per set). Entries stay in
                // place: moving ~300-byte entries around cost more than the translation.
                let base = (hash as usize & self.sets_mask) * 2;
                let (a, b) = (&self.entries[base], &self.entries[base + 1]);
                if a.epoch == 0 || (b.epoch != 0 && a.seq <= b.seq) {
                    base
                } else {
                    base + 1
                }
            }
        };
        self.seq += 1;
        let e = &mut self.entries[i];
        e.hash = hash;
        e.bridge = bridge;
        e.epoch = epoch;
        e.key = *key;
        e.actions.clear();
        e.actions.extend_from_slice(&out.actions);
        e.rules.clear();
        e.rules.extend(out.rules.iter().cloned());
        e.drop_reason = out.drop_reason;
        e.seq = self.seq;
        i
    }

    /// Forget everything (benchmarks of the miss path; entries of old epochs are otherwise
    /// just left to be overwritten).
    pub fn clear(&mut self) {
        for e in &mut self.entries {
            e.epoch = 0;
            e.rules.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::flow::field::Field;

    /// Keys that differ only in a transport port must spread over the sets.
    #[test]
    fn similar_keys_spread() {
        let mut c = FlowCache::new(DEFAULT_ENTRIES);
        let out = XlateOutput::new();
        let keys: Vec<FlowKey> = (0..10_000u32)
            .map(|i| {
                let mut k = FlowKey::zero();
                k.set(Field::InPort, 1);
                k.set(Field::EthType, 0x0800);
                k.set(Field::Ipv4Src, u128::from(0x0a00_0001 + i / 1000));
                k.set(Field::UdpSrc, u128::from(1000 + i % 1000));
                k
            })
            .collect();
        for n in [100, 10_000] {
            c.clear();
            for k in &keys[..n] {
                let h = hash(1, k);
                if let Lookup::Miss(s) = c.lookup(1, 1, k, h) {
                    c.insert(1, 1, k, h, s, &out);
                }
            }
            let hits = keys[..n]
                .iter()
                .filter(|k| matches!(c.lookup(1, 1, k, hash(1, k)), Lookup::Hit(_)))
                .count();
            // Random placement of 10 000 keys in 8192 two-way sets keeps ~90%.
            assert!(hits * 100 >= n * 85, "{n} keys: {hits} hits");
        }
    }
}
