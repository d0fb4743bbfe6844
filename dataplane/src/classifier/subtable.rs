//! One subtable: every rule that shares one mask, in a hash table keyed by the masked value.
//!
//! See the parent module for the design. This file only knows about one mask; ordering between
//! subtables, tie-breaking and the megaflow mask are the parent's business.

use crate::flowtable::Rule;
use crate::key::{FlowKey, MaskedKey, KEY_WORDS};
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::Arc;

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
        Shape {
            mask: *mask,
            words,
            n_words: n as u8,
        }
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

    /// OR the mask into `wc` (the megaflow mask of a lookup that probed this subtable).
    #[inline]
    pub fn fold_into(&self, wc: &mut FlowKey) {
        for &i in self.words() {
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

/// Rules sharing one mask.
#[derive(Debug, Clone)]
pub(super) struct Subtable {
    pub shape: Shape,
    buckets: HashTable<Bucket>,
    /// Priority → number of rules at that priority. Gives the maximum priority in O(log n)
    /// after a removal, where a rescan would make mass deletion quadratic.
    prios: BTreeMap<u16, u32>,
    n_rules: usize,
}

impl Subtable {
    pub fn new(mask: &FlowKey) -> Self {
        Subtable {
            shape: Shape::new(mask),
            buckets: HashTable::new(),
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

    /// True if some rule has priority `p`.
    pub fn has_priority(&self, p: u16) -> bool {
        self.prios.contains_key(&p)
    }

    /// The highest-priority rule matching `key`. No allocation: one hash over the touched
    /// words, one probe, and a comparison of the touched words.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<&Arc<Rule>> {
        let hash = self.shape.hash(key);
        self.buckets
            .find(hash, |b| self.shape.eq(key, &b.head.key.value))
            .map(|b| &b.head)
    }

    /// All rules whose masked value is `value` (which must already be masked).
    pub fn bucket(&self, value: &FlowKey) -> impl Iterator<Item = &Arc<Rule>> {
        let hash = self.shape.hash(value);
        self.buckets
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
        self.buckets.iter().flat_map(Bucket::iter)
    }

    /// Insert `rule` (whose mask must be this subtable's), replacing and returning a rule with
    /// the same value and priority.
    pub fn insert(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        debug_assert_eq!(rule.key.mask, self.shape.mask);
        let shape = &self.shape;
        let p = rule.attrs.priority;
        let hash = shape.hash(&rule.key.value);
        let value = rule.key.value;
        let old = match self
            .buckets
            .find_mut(hash, |b| shape.eq(&value, &b.head.key.value))
        {
            None => {
                self.buckets.insert_unique(
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
        }
        old
    }

    /// Remove and return the rule with this masked key and priority.
    pub fn remove(&mut self, key: &MaskedKey, priority: u16) -> Option<Arc<Rule>> {
        let shape = &self.shape;
        let hash = shape.hash(&key.value);
        let Ok(mut entry) = self
            .buckets
            .find_entry(hash, |b| shape.eq(&key.value, &b.head.key.value))
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
        }
        removed
    }
}
