//! The flow classifier: tuple-space search over masked rules.
//!
//! # What it answers
//!
//! Given a [`FlowKey`], [`Classifier::lookup`] returns the matching rule of highest priority.
//! Ties between rules of equal priority are broken by a fixed order on their masks
//! ([`mask_order`]): the rule whose mask has **more bits set wins** (the more specific match),
//! and among masks with the same number of bits the lexicographically greater mask (compared
//! word by word, key word 0 first) wins. Two different rules of the same priority and the same
//! mask cannot match the same packet (their masked values differ), so this decides every tie.
//! The rule depends only on the set of rules installed, never on the order they were added or
//! on the edit history, so reloading a flow file or restarting the daemon cannot change which
//! rule a packet hits. (OpenFlow leaves this case undefined, and so does Open vSwitch's
//! classifier.)
//!
//! It also ORs into the caller's `wc` a megaflow mask: a set of key bits that includes every bit
//! the decision depended on (conservatively more; see "Megaflow" below). Any key that agrees
//! with the probed key on those bits gets the same answer, so the datapath may cache the
//! decision for all of them.
//!
//! # How (tuple-space search, after Open vSwitch's `lib/classifier.c`)
//!
//! Rules are grouped by mask: one *subtable* per distinct mask. Inside a subtable
//! every rule is `key & mask == value` for the same `mask`, so finding the rule for a packet is
//! one hash lookup of `key & mask`. The hash covers only the words the mask touches (the list
//! of nonzero words is precomputed), so an exact 5-tuple subtable hashes 4 words, not 29. A
//! bucket holds the rules with one masked value, highest priority first (same match, different
//! priorities); only the head can ever win, the others wait for it to be removed.
//!
//! Subtables are kept sorted by the highest priority they contain (then by their rank in the
//! tie order). A lookup walks them in that order and stops as soon as the best rule found so far
//! beats anything a remaining subtable could offer: its priority is above the subtable's maximum,
//! or equal to it while the best rule's mask ranks first. With the common "one priority for
//! everything" flow set this means the lookup stops at the first subtable that matches.
//!
//! # Cost
//!
//! * Lookup: O(number of subtables probed) — each probe is one hash over the touched words
//!   (computed incrementally, with one small set probe per stage boundary) and, on a hit, one
//!   comparison of those words. It does not grow with the number of rules: 100 000
//!   exact-match rules in one subtable cost one probe. It grows with the number of distinct masks
//!   (a miss probes them all), which is why masks should be few; each distinct CIDR prefix length
//!   is its own mask. No allocation and no lock: the classifier is immutable while shared, and
//!   the only writes on the lookup path are the caller's `wc` and the counters kept outside.
//! * Megaflow: for each subtable probed, the mask bits it examined. Lookup is *staged* as in
//!   Open vSwitch: a subtable hashes its key words stage by stage (metadata, L2, L3, L4) and
//!   keeps the set of its rules' hashes at each stage boundary, so a packet that cannot match
//!   stops at the first stage that proves it, and only the bits of the stages examined are
//!   un-wildcarded: traffic missing an exact 5-tuple subtable at its address pair leaves the
//!   ports wildcarded, and non-IP traffic un-wildcards only the ethertype. A probe that gets to
//!   the last stage un-wildcards the whole mask. Not implemented: prefix tracking (Open
//!   vSwitch's tries, which un-wildcard only as many address bits as needed to rule out the
//!   prefixes present), so a miss in a `/24` subtable that reaches its L3 stage un-wildcards
//!   all 24 bits; and subtables skipped by the priority bound contribute nothing, which is
//!   sound because the bound does not depend on the packet.
//! * Memory: per rule, one 32-byte bucket slot in a hashbrown table (plus a control byte and the
//!   7/8 load factor, ~40 bytes), plus at most one 16-byte entry per intermediate stage (an exact
//!   5-tuple subtable has two: L2 and L3, and the L2 set has a single entry) — in addition to
//!   the rule itself, which carries its match twice: as a `Match` for printing and as a
//!   464-byte [`MaskedKey`]. Per subtable, one 29-word mask and a small priority histogram.
//! * Edits: insertion and removal are O(1) expected in the subtable plus O(S log S) over the S
//!   subtables to restore their order (S is small; creating a subtable also re-ranks them).
//!
//! # Immutable versions and copy cost
//!
//! Pipelines are immutable versions: an edit clones the tables it touches (`Arc::make_mut`),
//! changes the clone, and publishes it; readers keep the old version untouched. To keep the
//! clone proportionate to the edit, sharing goes three levels deep:
//!
//! * a [`Classifier`] is a vector of subtables, each behind an `Arc`: copying a table copies S
//!   pointers;
//! * a subtable is a vector of shards, each behind an `Arc` (2^k shards of at most ~2 048 rules;
//!   see the `subtable` module): copying a subtable copies 2^k pointers;
//! * a shard is a plain hashbrown table, copied whole (one allocation, one reference-count
//!   increment per rule) the first time an edit changes it.
//!
//! So adding or removing one flow in a 100 000-rule table copies the touched subtable's shard
//! vector (64 pointers at that size) and one to three shards (its bucket's, and one per stage
//! entry) of ~1 500 rules each: measured ~150 µs for a new version with one more flow at 100 000
//! flows, against ~2.6 ms when each subtable was one table (`bench/benches/classify.rs`,
//! `edit_add_one`). Within one [`PipelineEdit`](crate::flowtable::PipelineEdit) a copied shard
//! is unique and later changes reuse it, so a batch pays each copy once. A batch that touches
//! every shard (a mass insert or delete) copies the whole table once, which its own O(n) work
//! dominates anyway. The price on the lookup path is one more pointer hop per probe (into a
//! vector that stays in cache), skipped arithmetic for single-shard subtables, and a few
//! nanoseconds on a miss that probes every subtable. A fully persistent map (HAMT) would bring
//! a single-flow edit to O(log n) copies, at a higher lookup cost; not needed at these sizes.

mod subtable;
#[cfg(test)]
mod tests;

use crate::flowtable::Rule;
use crate::key::{FlowKey, MaskedKey};
use std::cmp::Ordering;
use std::sync::Arc;
use subtable::Subtable;

/// The tie-break order on masks: `Less` means `a` wins a priority tie against `b`.
///
/// More mask bits first; among equal bit counts, the word-wise lexicographically greater mask.
/// A total order on distinct masks.
pub fn mask_order(a: &FlowKey, b: &FlowKey) -> Ordering {
    let bits = |k: &FlowKey| k.w.iter().map(|w| w.count_ones()).sum::<u32>();
    bits(b).cmp(&bits(a)).then_with(|| b.w.cmp(&a.w))
}

/// The order in which rules are listed ([`Classifier::sorted`], dump-flows): priority
/// descending, then the tie-break order of [`mask_order`] (so the rule a packet would hit comes
/// first), then by masked value, word by word. Depends only on the rules, not on history.
pub fn rule_order(a: &Rule, b: &Rule) -> Ordering {
    b.attrs
        .priority
        .cmp(&a.attrs.priority)
        .then_with(|| mask_order(&a.key.mask, &b.key.mask))
        .then_with(|| a.key.value.w.cmp(&b.key.value.w))
}

/// One subtable with the two numbers the lookup loop reads before deciding to probe it, kept
/// beside the pointer so skipping a subtable touches no other cache line.
#[derive(Debug, Clone)]
struct Slot {
    /// Highest priority in the subtable.
    max_priority: u16,
    /// Position of the subtable's mask in [`mask_order`] among this classifier's subtables
    /// (0 wins ties). Only the relative order matters.
    rank: u32,
    st: Arc<Subtable>,
}

/// A set of rules with priority lookup; see the module documentation.
///
/// Identity: a classifier holds at most one rule per (masked key, priority); inserting another
/// replaces it.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    /// Sorted by `max_priority` descending, then `rank` ascending.
    slots: Vec<Slot>,
    n_rules: usize,
}

impl Classifier {
    /// An empty classifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.n_rules
    }

    /// True if there are no rules.
    pub fn is_empty(&self) -> bool {
        self.n_rules == 0
    }

    /// Number of subtables (distinct masks): the worst-case number of hash probes per lookup.
    pub fn n_subtables(&self) -> usize {
        self.slots.len()
    }

    /// The best rule for `key` (highest priority; ties per [`mask_order`]). ORs into `wc`, for
    /// every subtable probed, the mask bits of the stages it examined, which cover every bit
    /// the answer depended on.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<&Arc<Rule>> {
        // (rule, its priority, its subtable's rank)
        let mut best: Option<(&Arc<Rule>, u16, u32)> = None;
        for slot in &self.slots {
            if let Some((_, bp, br)) = best {
                // Later subtables have max_priority <= this one's, and among equal maxima a
                // higher rank, so nothing from here on can beat `best`.
                if bp > slot.max_priority || (bp == slot.max_priority && br < slot.rank) {
                    break;
                }
            }
            if let Some(r) = slot.st.lookup(key, wc) {
                let p = r.attrs.priority;
                let better = match best {
                    None => true,
                    Some((_, bp, br)) => p > bp || (p == bp && slot.rank < br),
                };
                if better {
                    best = Some((r, p, slot.rank));
                }
            }
        }
        best.map(|(r, _, _)| r)
    }

    /// The rule with exactly this masked key and priority (OpenFlow "strict" identity).
    pub fn find_exact(&self, key: &MaskedKey, priority: u16) -> Option<&Arc<Rule>> {
        let slot = self.slot_of(&key.mask)?;
        self.slots[slot].st.find(&key.value, priority)
    }

    /// Some rule of priority `priority` that a packet could match together with `key` (the
    /// OpenFlow `check_overlap` test). An identical rule counts as overlapping.
    pub fn find_overlap(&self, key: &MaskedKey, priority: u16) -> Option<&Arc<Rule>> {
        for slot in &self.slots {
            let st = &slot.st;
            if !st.has_priority(priority) {
                continue;
            }
            let smask = &st.shape.mask;
            let contained = (0..smask.w.len()).all(|i| smask.w[i] & !key.mask.w[i] == 0);
            if contained {
                // Every bit the subtable looks at is fixed by `key`: only one bucket can overlap.
                let v = key.value.and(smask);
                if let Some(r) = st.bucket(&v).find(|r| r.attrs.priority == priority) {
                    return Some(r);
                }
            } else if let Some(r) = st.iter().find(|r| {
                r.attrs.priority == priority
                    && (0..smask.w.len()).all(|i| {
                        (r.key.value.w[i] ^ key.value.w[i]) & smask.w[i] & key.mask.w[i] == 0
                    })
            }) {
                return Some(r);
            }
        }
        None
    }

    /// Rules at least as specific as `filter` (OpenFlow non-strict selection: every packet the
    /// rule matches, `filter` matches too). Subtables whose mask lacks some filter bit are
    /// skipped without looking at their rules. Hash order.
    pub fn within(&self, filter: MaskedKey) -> impl Iterator<Item = &Arc<Rule>> {
        self.slots
            .iter()
            .filter(move |s| {
                let m = &s.st.shape.mask;
                (0..m.w.len()).all(|i| filter.mask.w[i] & !m.w[i] == 0)
            })
            .flat_map(|s| s.st.iter())
            .filter(move |r| {
                (0..r.key.value.w.len())
                    .all(|i| r.key.value.w[i] & filter.mask.w[i] == filter.value.w[i])
            })
    }

    /// Every rule, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.slots.iter().flat_map(|s| s.st.iter())
    }

    /// Every rule in [`rule_order`] (allocates; for dumps, not for the packet path).
    pub fn sorted(&self) -> Vec<&Arc<Rule>> {
        let mut v: Vec<&Arc<Rule>> = self.iter().collect();
        v.sort_by(|a, b| rule_order(a, b));
        v
    }

    /// Insert `rule`, replacing and returning the rule with the same masked key and priority.
    pub fn insert(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        let (idx, created) = match self.slot_of(&rule.key.mask) {
            Some(i) => (i, false),
            None => {
                self.slots.push(Slot {
                    max_priority: rule.attrs.priority,
                    rank: 0,
                    st: Arc::new(Subtable::new(&rule.key.mask)),
                });
                (self.slots.len() - 1, true)
            }
        };
        let slot = &mut self.slots[idx];
        let st = Arc::make_mut(&mut slot.st);
        let old = st.insert(rule);
        let max = st.max_priority();
        if old.is_none() {
            self.n_rules += 1;
        }
        if created {
            // The new mask may fall between two existing ones in the tie order.
            self.rerank();
        } else if slot.max_priority != max {
            slot.max_priority = max;
            self.resort();
        }
        old
    }

    /// Remove and return the rule with this masked key and priority.
    pub fn remove(&mut self, key: &MaskedKey, priority: u16) -> Option<Arc<Rule>> {
        let idx = self.slot_of(&key.mask)?;
        // Check before make_mut so a miss does not clone a shared subtable.
        self.slots[idx].st.find(&key.value, priority)?;
        let slot = &mut self.slots[idx];
        let st = Arc::make_mut(&mut slot.st);
        let old = st.remove(key, priority);
        debug_assert!(old.is_some());
        self.n_rules -= 1;
        if st.is_empty() {
            // Ranks of the others stay a valid order; no need to re-rank.
            self.slots.remove(idx);
        } else {
            let max = st.max_priority();
            if max != slot.max_priority {
                slot.max_priority = max;
                self.resort();
            }
        }
        old
    }

    fn slot_of(&self, mask: &FlowKey) -> Option<usize> {
        self.slots.iter().position(|s| s.st.shape.mask == *mask)
    }

    /// Reassign ranks after a subtable was created, then restore the slot order.
    fn rerank(&mut self) {
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by(|&a, &b| {
            mask_order(&self.slots[a].st.shape.mask, &self.slots[b].st.shape.mask)
        });
        for (rank, i) in order.into_iter().enumerate() {
            self.slots[i].rank = rank as u32;
        }
        self.resort();
    }

    fn resort(&mut self) {
        // Nearly sorted almost always; the stable merge sort is linear on that.
        self.slots.sort_by(|a, b| {
            b.max_priority
                .cmp(&a.max_priority)
                .then(a.rank.cmp(&b.rank))
        });
    }
}
