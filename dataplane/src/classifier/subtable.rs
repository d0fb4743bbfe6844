//! One subtable: every rule that shares one mask, in a hash table keyed by the masked value.
//!
//! See the parent module for the design. This file only knows about one mask; ordering between
//! subtables and tie-breaking are the parent's business.
//!
//! # Staged lookup
//!
//! The key words fall into four stages, in key order: metadata (words 0..=15: tunnel,
//! `metadata`, registers, `in_port`, conntrack), L2 (16..=17), L3 (18..=23), L4 (24..=28). A
//! subtable whose mask spans several stages also keeps, for each stage but its last, the set of
//! hashes of its rules' values over the words up to the end of that stage (a counted multiset,
//! so removal is exact). A lookup hashes incrementally, stage by stage; if the hash of the
//! prefix so far is absent from the stage's set, no rule of the subtable can match, and only the
//! mask bits of the stages examined go into the megaflow mask. So a packet missing an exact
//! 5-tuple subtable at L3 (no rule for this address pair) leaves the ports wildcarded.
//! Sound: any key that agrees on those bits has the same prefix hash, so it misses too. A hash
//! collision only makes the lookup continue to the next stage (more bits, still correct).
//! Cost: one extra probe of a small set per intermediate stage on a hit, and one `(u64, u32)`
//! entry per distinct prefix per intermediate stage (at most one per rule).
//!
//! # Shards
//!
//! A subtable's hash tables are split into 2^k shards by the top bits of the hash remixed by one
//! multiplication (the Fx hash's own bits are poorly mixed in places: keys with entropy only in
//! high bits leave whole ranges of it constant, and hashbrown already uses its low bits for the
//! bucket index and its top 7 for the tag), each shard behind its own `Arc`, with
//! k doubled whenever shards would average more than [`SHARD_TARGET`] rules. Copying a subtable into a new
//! version therefore copies 2^k pointers, and changing one rule then copies the one or few
//! shards it touches (its bucket's shard and one per stage entry), about `SHARD_TARGET`
//! entries each, instead of the whole subtable. The price is one more pointer hop per probe,
//! into a small vector that stays in cache. Shards are never merged back when rules go away.

use crate::flowtable::Rule;
use crate::key::{FlowKey, MaskedKey, KEY_WORDS};
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::Arc;

/// Maximum number of intermediate stages (four stages, the last is the full lookup).
const MAX_STAGES: usize = 3;

/// Stage of key word `i` (see the module documentation).
fn stage_of(i: u8) -> u8 {
    match i {
        0..=15 => 0,
        16..=17 => 1,
        18..=23 => 2,
        _ => 3,
    }
}

/// The mask of a subtable plus the precomputed list of the words it touches, so hashing and
/// comparing cost O(words touched) rather than O(KEY_WORDS).
#[derive(Debug, Clone)]
pub(super) struct Shape {
    /// The mask shared by every rule of the subtable.
    pub mask: FlowKey,
    /// Indices of the nonzero words of `mask`, ascending; only the first `n_words` are valid.
    /// A fixed array rather than a `Vec` keeps the lookup free of one pointer chase.
    words: [u8; KEY_WORDS],
    n_words: u8,
    /// `stage_ends[s]`: number of entries of `words()` up to the end of intermediate stage `s`;
    /// the first `n_stages` are valid. The stages are those the mask touches, minus the last.
    stage_ends: [u8; MAX_STAGES],
    n_stages: u8,
}

impl Shape {
    fn new(mask: &FlowKey) -> Self {
        let mut words = [0u8; KEY_WORDS];
        let mut n = 0;
        for (i, w) in mask.w.iter().enumerate() {
            if *w != 0 {
                words[n] = i as u8;
                n += 1;
            }
        }
        let mut stage_ends = [0u8; MAX_STAGES];
        let mut n_stages = 0;
        for k in 1..n {
            if stage_of(words[k]) != stage_of(words[k - 1]) {
                stage_ends[n_stages] = k as u8;
                n_stages += 1;
            }
        }
        Shape {
            mask: *mask,
            words,
            n_words: n as u8,
            stage_ends,
            n_stages: n_stages as u8,
        }
    }

    /// Ends (in `words()`) of the intermediate stages.
    #[inline]
    fn stage_ends(&self) -> &[u8] {
        &self.stage_ends[..self.n_stages as usize]
    }

    /// Feed `key & mask` over `words()[from..to]` into `h`.
    #[inline]
    fn feed(&self, h: &mut FxHasher, key: &FlowKey, from: usize, to: usize) {
        for &i in &self.words()[from..to] {
            let i = i as usize;
            h.write_u64(key.w[i] & self.mask.w[i]);
        }
    }

    /// Hashes of `key & mask` up to the end of each intermediate stage. The same incremental
    /// hash, continued over the remaining words, is [`Shape::hash`].
    fn stage_hashes(&self, key: &FlowKey) -> [u64; MAX_STAGES] {
        let mut out = [0u64; MAX_STAGES];
        let mut h = FxHasher::default();
        let mut pos = 0;
        for (s, &end) in self.stage_ends().iter().enumerate() {
            self.feed(&mut h, key, pos, end as usize);
            pos = end as usize;
            out[s] = h.finish();
        }
        out
    }

    /// Indices of the words the mask touches.
    #[inline]
    pub fn words(&self) -> &[u8] {
        &self.words[..self.n_words as usize]
    }

    /// Hash of `key & mask`. Rule values are stored already masked, so the same function
    /// hashes a rule's value and a packet's key consistently.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        let mut h = FxHasher::default();
        for &i in self.words() {
            let i = i as usize;
            h.write_u64(key.w[i] & self.mask.w[i]);
        }
        h.finish()
    }

    /// True if `key & mask == value` (for a masked `value`), looking only at touched words.
    #[inline]
    pub fn eq(&self, key: &FlowKey, value: &FlowKey) -> bool {
        self.words().iter().all(|&i| {
            let i = i as usize;
            key.w[i] & self.mask.w[i] == value.w[i]
        })
    }

    /// OR the mask bits of `words()[..upto]` into `wc` (the megaflow mask).
    #[inline]
    fn fold_into(&self, wc: &mut FlowKey, upto: usize) {
        for &i in &self.words()[..upto] {
            let i = i as usize;
            wc.w[i] |= self.mask.w[i];
        }
    }
}

/// All rules with one masked value, highest priority first. The common case (one rule per
/// match) keeps `rest` empty, and an empty `Vec` costs no allocation to create or to clone.
#[derive(Debug, Clone)]
struct Bucket {
    head: Arc<Rule>,
    /// Lower-priority rules with the same match, priority strictly descending (a table holds at
    /// most one rule per match and priority).
    rest: Vec<Arc<Rule>>,
}

impl Bucket {
    fn iter(&self) -> impl Iterator<Item = &Arc<Rule>> {
        std::iter::once(&self.head).chain(self.rest.iter())
    }
}

/// Rules per shard above which the number of shards doubles. Tiny under test, so that the
/// property tests (a few dozen rules) exercise several shards and resharding.
pub(super) const SHARD_TARGET: usize = if cfg!(test) { 4 } else { 2048 };
/// At most 2^12 shards (8 million rules at the target size).
const MAX_SHARD_BITS: u8 = 12;
/// The shard of `hash` among `1 << bits` (see "Shards").
#[inline]
fn shard_of(bits: u8, hash: u64) -> usize {
    // Top `bits` bits of the remixed hash; the split shift keeps `bits == 0` well defined.
    ((hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (63 - bits)) >> 1) as usize
}

/// One shard of a subtable: the buckets and stage entries whose hashes select it.
#[derive(Debug, Clone, Default)]
struct Shard {
    buckets: HashTable<Bucket>,
    /// Per intermediate stage: (prefix hash, number of rules with it). See "Staged lookup".
    stages: [HashTable<(u64, u32)>; MAX_STAGES],
}

/// Rules sharing one mask.
#[derive(Debug, Clone)]
pub(super) struct Subtable {
    pub shape: Shape,
    /// `1 << shard_bits` shards.
    shards: Vec<Arc<Shard>>,
    shard_bits: u8,
    /// Priority → number of rules at that priority. Gives the maximum priority in O(log n)
    /// after a removal, where a rescan would make mass deletion quadratic.
    prios: BTreeMap<u16, u32>,
    n_rules: usize,
}

impl Subtable {
    pub fn new(mask: &FlowKey) -> Self {
        Subtable {
            shape: Shape::new(mask),
            shards: vec![Arc::new(Shard::default())],
            shard_bits: 0,
            prios: BTreeMap::new(),
            n_rules: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.n_rules == 0
    }

    /// Highest priority of any rule (0 when empty; empty subtables are removed by the parent).
    pub fn max_priority(&self) -> u16 {
        self.prios.keys().next_back().copied().unwrap_or(0)
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard {
        // Most subtables have one shard: skip the remix (a predictable branch).
        if self.shard_bits == 0 {
            &self.shards[0]
        } else {
            &self.shards[shard_of(self.shard_bits, hash)]
        }
    }

    /// The shard for `hash`, copied first if another version shares it.
    fn shard_mut(&mut self, hash: u64) -> &mut Shard {
        Arc::make_mut(&mut self.shards[shard_of(self.shard_bits, hash)])
    }

    /// True if some rule has priority `p`.
    pub fn has_priority(&self, p: u16) -> bool {
        self.prios.contains_key(&p)
    }

    /// The highest-priority rule matching `key`, ORing into `wc` the mask bits examined (all
    /// of them, unless a stage proves early that nothing can match). No allocation: one
    /// incremental hash over the touched words, one probe per stage, and a comparison of the
    /// touched words.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<&Arc<Rule>> {
        let shape = &self.shape;
        let mut h = FxHasher::default();
        let mut pos = 0;
        for (s, &end) in shape.stage_ends().iter().enumerate() {
            shape.feed(&mut h, key, pos, end as usize);
            pos = end as usize;
            let hs = h.finish();
            if self.shard(hs).stages[s].find(hs, |e| e.0 == hs).is_none() {
                shape.fold_into(wc, pos);
                return None;
            }
        }
        let n = shape.words().len();
        shape.feed(&mut h, key, pos, n);
        shape.fold_into(wc, n);
        let hash = h.finish();
        self.shard(hash)
            .buckets
            .find(hash, |b| shape.eq(key, &b.head.key.value))
            .map(|b| &b.head)
    }

    /// Count `value`'s stage prefixes in (`delta == 1`) or out (`-1`) of the stage sets.
    fn count_stages(&mut self, value: &FlowKey, delta: i32) {
        let hashes = self.shape.stage_hashes(value);
        for (s, &hs) in hashes.iter().enumerate().take(self.shape.n_stages as usize) {
            let set = &mut self.shard_mut(hs).stages[s];
            match set.find_entry(hs, |e| e.0 == hs) {
                Ok(mut e) => {
                    let n = &mut e.get_mut().1;
                    if delta > 0 {
                        *n += 1;
                    } else if *n > 1 {
                        *n -= 1;
                    } else {
                        e.remove();
                    }
                }
                Err(_) => {
                    debug_assert!(delta > 0, "stage count underflow");
                    set.insert_unique(hs, (hs, 1), |e| e.0);
                }
            }
        }
    }

    /// All rules whose masked value is `value` (which must already be masked).
    pub fn bucket(&self, value: &FlowKey) -> impl Iterator<Item = &Arc<Rule>> {
        let hash = self.shape.hash(value);
        self.shard(hash)
            .buckets
            .find(hash, |b| self.shape.eq(value, &b.head.key.value))
            .into_iter()
            .flat_map(Bucket::iter)
    }

    /// The rule with exactly this value (masked) and priority.
    pub fn find(&self, value: &FlowKey, priority: u16) -> Option<&Arc<Rule>> {
        self.bucket(value).find(|r| r.attrs.priority == priority)
    }

    /// Every rule, in hash order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.shards
            .iter()
            .flat_map(|s| s.buckets.iter())
            .flat_map(Bucket::iter)
    }

    /// Insert `rule` (whose mask must be this subtable's), replacing and returning a rule with
    /// the same value and priority.
    pub fn insert(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        debug_assert_eq!(rule.key.mask, self.shape.mask);
        let shape = &self.shape;
        let p = rule.attrs.priority;
        let hash = shape.hash(&rule.key.value);
        let value = rule.key.value;
        let buckets = &mut Arc::make_mut(&mut self.shards[shard_of(self.shard_bits, hash)]).buckets;
        let old = match buckets.find_mut(hash, |b| shape.eq(&value, &b.head.key.value)) {
            None => {
                buckets.insert_unique(
                    hash,
                    Bucket {
                        head: rule,
                        rest: Vec::new(),
                    },
                    |b| shape.hash(&b.head.key.value),
                );
                None
            }
            Some(b) => {
                let hp = b.head.attrs.priority;
                if hp == p {
                    Some(std::mem::replace(&mut b.head, rule))
                } else if hp < p {
                    let old_head = std::mem::replace(&mut b.head, rule);
                    b.rest.insert(0, old_head);
                    None
                } else {
                    match b.rest.binary_search_by(|r| p.cmp(&r.attrs.priority)) {
                        Ok(i) => Some(std::mem::replace(&mut b.rest[i], rule)),
                        Err(i) => {
                            b.rest.insert(i, rule);
                            None
                        }
                    }
                }
            }
        };
        if old.is_none() {
            *self.prios.entry(p).or_insert(0) += 1;
            self.n_rules += 1;
            self.count_stages(&value, 1);
            if self.n_rules > SHARD_TARGET << self.shard_bits && self.shard_bits < MAX_SHARD_BITS {
                self.reshard(self.shard_bits + 1);
            }
        }
        old
    }

    /// Remove and return the rule with this masked key and priority.
    pub fn remove(&mut self, key: &MaskedKey, priority: u16) -> Option<Arc<Rule>> {
        let shape = &self.shape;
        let hash = shape.hash(&key.value);
        // Do not copy a shared shard for nothing.
        self.shard(hash)
            .buckets
            .find(hash, |b| shape.eq(&key.value, &b.head.key.value))?;
        let buckets = &mut Arc::make_mut(&mut self.shards[shard_of(self.shard_bits, hash)]).buckets;
        let Ok(mut entry) = buckets.find_entry(hash, |b| shape.eq(&key.value, &b.head.key.value))
        else {
            return None;
        };
        let b = entry.get_mut();
        let removed = if b.head.attrs.priority == priority {
            if b.rest.is_empty() {
                Some(entry.remove().0.head)
            } else {
                let next = b.rest.remove(0);
                Some(std::mem::replace(&mut b.head, next))
            }
        } else {
            b.rest
                .iter()
                .position(|r| r.attrs.priority == priority)
                .map(|i| b.rest.remove(i))
        };
        if removed.is_some() {
            match self.prios.get_mut(&priority) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    self.prios.remove(&priority);
                }
            }
            self.n_rules -= 1;
            self.count_stages(&key.value, -1);
        }
        removed
    }

    /// Redistribute everything into `1 << bits` shards (when the subtable has grown; O(n),
    /// amortized by doubling).
    fn reshard(&mut self, bits: u8) {
        let shape = &self.shape;
        let mut new: Vec<Shard> = (0..1usize << bits).map(|_| Shard::default()).collect();
        for old in &self.shards {
            for b in old.buckets.iter() {
                let h = shape.hash(&b.head.key.value);
                new[shard_of(bits, h)]
                    .buckets
                    .insert_unique(h, b.clone(), |b| shape.hash(&b.head.key.value));
            }
            for (s, set) in old.stages.iter().enumerate() {
                for &(hs, n) in set.iter() {
                    new[shard_of(bits, hs)].stages[s].insert_unique(hs, (hs, n), |e| e.0);
                }
            }
        }
        self.shards = new.into_iter().map(Arc::new).collect();
        self.shard_bits = bits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::flow::ast::{FlowAttrs, FlowSpec, Match};
    use control::flow::field::Field;

    fn rule(priority: u16, port: u128) -> Arc<Rule> {
        let mut m = Match::new();
        m.set_exact(Field::EthType, 0x0800);
        m.set_exact(Field::InPort, port);
        let spec = FlowSpec {
            attrs: FlowAttrs {
                priority,
                ..FlowAttrs::default()
            },
            matches: m,
            actions: None,
        };
        Arc::new(Rule::from_spec(&spec, 0))
    }

    #[test]
    fn grows_shards_and_copies_only_touched_ones() {
        let n = SHARD_TARGET * 5;
        let rules: Vec<Arc<Rule>> = (0..n).map(|i| rule(1, i as u128)).collect();
        let mut st = Subtable::new(&rules[0].key.mask);
        for r in &rules {
            assert!(st.insert(r.clone()).is_none());
        }
        assert_eq!(st.shard_bits, 3);
        assert_eq!(st.iter().count(), n);
        // Rules and stage entries spread over the shards (in_port sits in the high half of its
        // word, the case a plain bit range of the Fx hash gets wrong).
        let most = st.shards.iter().map(|s| s.buckets.len()).max().unwrap();
        assert!(most <= n / 4, "unbalanced shards: {most} of {n}");
        let most = st.shards.iter().map(|s| s.stages[0].len()).max().unwrap();
        assert!(most <= n / 4, "unbalanced stage shards: {most} of {n}");
        for r in &rules {
            let mut k = r.key.value;
            k.w[0] = 0xdead; // an unmasked word: must not matter
            let mut wc = FlowKey::zero();
            assert!(st.lookup(&k, &mut wc).is_some_and(|x| Arc::ptr_eq(x, r)));
            assert_eq!(wc, r.key.mask);
        }
        // A copy shares every shard; removing one rule copies only what it touches
        // (its bucket's shard and its stage entry's shard).
        let snapshot = st.clone();
        assert!(st.remove(&rules[7].key, 1).is_some());
        let copied = (0..st.shards.len())
            .filter(|&i| !Arc::ptr_eq(&st.shards[i], &snapshot.shards[i]))
            .count();
        assert!((1..=2).contains(&copied), "{copied} shards copied");
        assert!(snapshot.find(&rules[7].key.value, 1).is_some());
        assert!(st.find(&rules[7].key.value, 1).is_none());
        assert!(st.remove(&rules[7].key, 1).is_none());
        // Removing everything empties the stage sets too.
        for r in &rules {
            st.remove(&r.key, 1);
        }
        assert!(st.is_empty());
        assert!(st
            .shards
            .iter()
            .all(|s| s.buckets.is_empty() && s.stages.iter().all(|t| t.is_empty())));
    }
}
