//! Flow tables: rules, their counters, and immutable pipeline versions.
//!
//! A [`Pipeline`] is one immutable version of all 255 tables of a bridge. The control thread
//! edits a copy ([`Pipeline::edit`] → [`PipelineEdit`]) and publishes the result whole; workers
//! keep using the version they hold until their next quiet point. A batch that fails halfway is
//! simply dropped, so the running version never sees half of it.
//!
//! Counters are the exception to immutability: each rule's [`RuleStats`] is shared (`Arc`) by
//! every version that contains the rule, so counts survive unrelated edits and `mod-flows`.

use crate::key::{FlowKey, MaskedKey};
use control::flow::ast::{Action, FlowSpec, Match};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Number of OpenFlow tables (0..=254).
pub const N_TABLES: usize = 255;

/// Packet/byte counters and last-use time of one rule, shared across pipeline versions.
#[derive(Debug, Default)]
pub struct RuleStats {
    /// Packets that hit the rule.
    pub packets: AtomicU64,
    /// Bytes that hit the rule.
    pub bytes: AtomicU64,
    /// Milliseconds since the Unix epoch of the last hit (0 = never).
    pub last_used_ms: AtomicU64,
}

impl RuleStats {
    /// Count one packet of `bytes` bytes at `now_ms`.
    #[inline]
    pub fn hit(&self, bytes: u64, now_ms: u64) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_used_ms.store(now_ms, Ordering::Relaxed);
    }
}

/// One installed flow.
#[derive(Debug)]
pub struct Rule {
    /// Table, priority, cookie, timeouts, flags as written.
    pub attrs: control::flow::ast::FlowAttrs,
    /// The match as written (normalized), for printing and filtering.
    pub matches: Match,
    /// The match compiled to the key layout.
    pub key: MaskedKey,
    /// The action list.
    pub actions: Vec<Action>,
    /// Milliseconds since the Unix epoch when the rule was added.
    pub created_ms: u64,
    /// Counters (shared across versions).
    pub stats: Arc<RuleStats>,
}

impl Rule {
    /// Build a rule from a parsed flow (actions default to drop).
    pub fn from_spec(spec: &FlowSpec, now_ms: u64) -> Rule {
        Rule {
            attrs: spec.attrs.clone(),
            matches: spec.matches.clone(),
            key: MaskedKey::from_match(&spec.matches),
            actions: spec.actions.clone().unwrap_or_default(),
            created_ms: now_ms,
            stats: Arc::new(RuleStats::default()),
        }
    }
}

/// Lookup counters of one table (shared across versions, like rule counters).
#[derive(Debug, Default)]
pub struct TableStats {
    /// Lookups done in the table.
    pub lookups: AtomicU64,
    /// Lookups that found a rule.
    pub matched: AtomicU64,
}

/// One flow table. Placeholder classifier: a priority-sorted list.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rules: Vec<Arc<Rule>>,
    stats: Arc<TableStats>,
}

impl Table {
    /// Highest-priority rule matching `key`. ORs into `wc` every key bit the decision
    /// depended on (the megaflow mask).
    pub fn lookup(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<&Arc<Rule>> {
        self.stats.lookups.fetch_add(1, Ordering::Relaxed);
        for r in &self.rules {
            wc.or_assign(&r.key.mask);
            if r.key.matches(key) {
                self.stats.matched.fetch_add(1, Ordering::Relaxed);
                return Some(r);
            }
        }
        None
    }

    /// All rules, highest priority first.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.iter()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if the table has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Lookup counters.
    pub fn stats(&self) -> &TableStats {
        &self.stats
    }
}

/// One immutable version of a bridge's tables.
#[derive(Debug, Clone)]
pub struct Pipeline {
    tables: Vec<Arc<Table>>,
    version: u64,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            tables: (0..N_TABLES).map(|_| Arc::new(Table::default())).collect(),
            version: 0,
        }
    }
}

impl Pipeline {
    /// Table `id`.
    #[inline]
    pub fn table(&self, id: u8) -> &Table {
        &self.tables[id as usize % N_TABLES]
    }

    /// Version number (increments with every published edit).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of rules in all tables.
    pub fn n_rules(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum()
    }

    /// Start an edit that produces the next version.
    pub fn edit(&self) -> PipelineEdit {
        PipelineEdit {
            next: Pipeline {
                tables: self.tables.clone(),
                version: self.version + 1,
            },
        }
    }
}

/// An edit in progress: a private copy of the tables, published by [`PipelineEdit::finish`].
#[derive(Debug)]
pub struct PipelineEdit {
    next: Pipeline,
}

impl PipelineEdit {
    /// Insert `rule`, replacing a rule with the same match and priority in the same table.
    /// Returns the replaced rule.
    pub fn insert(&mut self, rule: Rule) -> Option<Arc<Rule>> {
        let t = Arc::make_mut(&mut self.next.tables[rule.attrs.table as usize]);
        let old = t
            .rules
            .iter()
            .position(|r| r.attrs.priority == rule.attrs.priority && r.matches == rule.matches)
            .map(|i| t.rules.remove(i));
        let pos = t
            .rules
            .iter()
            .position(|r| r.attrs.priority < rule.attrs.priority)
            .unwrap_or(t.rules.len());
        t.rules.insert(pos, Arc::new(rule));
        old
    }

    /// The version this edit produces.
    pub fn finish(self) -> Pipeline {
        self.next
    }
}
