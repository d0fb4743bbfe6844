//! Flow tables: rules, their counters, and immutable pipeline versions.
//!
//! A [`Pipeline`] is one immutable version of all 255 tables of a bridge. The control thread
//! edits a copy ([`Pipeline::edit`] → [`PipelineEdit`]) and publishes the result whole; workers
//! keep using the version they hold until their next quiet point. A batch that fails halfway is
//! simply dropped, so the running version never sees half of it.
//!
//! Counters are the exception to immutability: each rule's [`RuleStats`] is shared (`Arc`) by
//! every version that contains the rule, so counts survive unrelated edits and `mod-flows`.
//! Table lookup counters ([`TableStats`]) are shared the same way.
//!
//! Each [`Table`] is a [`Classifier`] (tuple-space search; see [`crate::classifier`] for the
//! lookup algorithm, tie-breaking, megaflow masks and the cost of copying a table into a new
//! version).
//!
//! # Flow-mod semantics (what `add-flow`, `mod-flows`, `del-flows`, `dump-flows` do)
//!
//! * Identity: a table holds at most one rule per (match, priority), where "match" is the match
//!   compiled to the key layout ([`MaskedKey`]), so two spellings of the same bits (`reg0` and
//!   the high half of `xreg0`) are the same match, as in Open vSwitch.
//! * [`PipelineEdit::add`]: replaces a rule with the same identity (fresh counters and creation
//!   time, as Open vSwitch does); with `check_overlap`, fails if a rule of the same priority
//!   could match a common packet (an identical rule counts).
//! * [`PipelineEdit::modify`]: changes only the actions. Kept: counters (the same
//!   `Arc<RuleStats>`), creation time, timeouts, cookie (the filter's cookie is a filter, as in
//!   OpenFlow 1.1+). A modify that selects nothing adds nothing (OpenFlow 1.1+ semantics; in
//!   OpenFlow 1.0 it would behave like an add).
//! * Selection, shared by modify, delete and dump: a rule is selected if its cookie agrees with
//!   the filter's on `cookie_mask`, and (non-strict) its match is within the filter's
//!   ([`Match::is_within`], evaluated on the compiled keys) or (strict) its match and priority
//!   equal the filter's. Delete and dump also honour `out_port` (the rule has an
//!   `output:PORT` action to that port). `table: None` means every table, as `ovs-ofctl`
//!   commands without `table=` do; `FlowAttrs::table` is ignored by these three.
//! * Order of dumps and of returned rules: table ascending, then [`rule_order`] (priority
//!   descending, then the classifier's tie order, so within a table the rule a packet would hit
//!   is listed first, then the masked value). It depends only on the rules, never on history.
//! * Expiry ([`PipelineEdit::expire`]): hard timeout counted from creation, idle timeout from
//!   the last hit (or creation if never hit); a rule past both reports [`ExpiryReason::Hard`].
//!   Each table keeps the set of its rules that have a timeout, so expiry and
//!   [`Pipeline::next_expiry_ms`] cost O(rules with timeouts), not O(all rules).

use crate::classifier::{rule_order, Classifier};
use crate::key::{FlowKey, MaskedKey};
use crate::xlate::{FipTable, SnatPoolTable};
use control::flow::ast::{Action, FlowSpec, Match, OutputPort};
use rustc_hash::FxHashMap;
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
    /// Count `packets` packets totalling `bytes` bytes, the last at `now_ms` (the datapath
    /// adds up a batch's hits and pays the atomic operations once).
    #[inline]
    pub fn add(&self, packets: u64, bytes: u64, now_ms: u64) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_used_ms.store(now_ms, Ordering::Relaxed);
    }

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
    /// The flow as the language describes it (for printing and saving).
    pub fn spec(&self) -> FlowSpec {
        FlowSpec {
            attrs: self.attrs.clone(),
            matches: self.matches.clone(),
            actions: Some(self.actions.clone()),
        }
    }

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

    /// True if the rule has an idle or hard timeout.
    pub fn has_timeouts(&self) -> bool {
        self.attrs.idle_timeout != 0 || self.attrs.hard_timeout != 0
    }

    /// When the rule expires if it is not hit again (milliseconds since the epoch), or `None`
    /// if it has no timeout. Reads the shared last-use time, so the answer moves with hits.
    pub fn expires_at_ms(&self) -> Option<u64> {
        let hard = (self.attrs.hard_timeout != 0)
            .then(|| self.created_ms + u64::from(self.attrs.hard_timeout) * 1000);
        let idle = (self.attrs.idle_timeout != 0)
            .then(|| self.last_active_ms() + u64::from(self.attrs.idle_timeout) * 1000);
        match (hard, idle) {
            (Some(h), Some(i)) => Some(h.min(i)),
            (h, i) => h.or(i),
        }
    }

    /// Why the rule has expired at `now_ms`, if it has.
    pub fn expired(&self, now_ms: u64) -> Option<ExpiryReason> {
        let hard = u64::from(self.attrs.hard_timeout) * 1000;
        let idle = u64::from(self.attrs.idle_timeout) * 1000;
        if hard != 0 && now_ms >= self.created_ms + hard {
            Some(ExpiryReason::Hard)
        } else if idle != 0 && now_ms >= self.last_active_ms() + idle {
            Some(ExpiryReason::Idle)
        } else {
            None
        }
    }

    /// Last hit, or creation if never hit (`last_used_ms == 0`).
    fn last_active_ms(&self) -> u64 {
        self.stats
            .last_used_ms
            .load(Ordering::Relaxed)
            .max(self.created_ms)
    }

    /// True if the rule has an `output:PORT` action to `port` (the `out_port` filter).
    pub fn outputs_to(&self, port: u32) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, Action::Output(OutputPort::Port(p)) if *p == port))
    }
}

/// Why [`PipelineEdit::expire`] removed a rule (OpenFlow flow-removed reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryReason {
    /// `idle_timeout` seconds passed without a hit.
    Idle,
    /// `hard_timeout` seconds passed since the rule was added.
    Hard,
}

/// Why a flow-mod was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowModError {
    /// The table number is not 0..=254.
    #[error("table {0} does not exist (tables are 0..=254)")]
    BadTable(u8),
    /// `check_overlap` was given and a rule of the same priority overlaps.
    #[error("flow overlaps an existing flow of priority {priority} in table {table}")]
    Overlap {
        /// Table of the clash.
        table: u8,
        /// Priority shared by both rules.
        priority: u16,
    },
}

/// Lookup counters of one table (shared across versions, like rule counters).
#[derive(Debug, Default)]
pub struct TableStats {
    /// Lookups done in the table.
    pub lookups: AtomicU64,
    /// Lookups that found a rule.
    pub matched: AtomicU64,
}

/// Rules of one table that have a timeout, keyed by the rule's address (unique while the map
/// holds the `Arc`). Behind an `Arc` so that an edit that touches no timed rule does not copy it.
type Timed = Arc<FxHashMap<usize, Arc<Rule>>>;

/// One flow table: a classifier plus its counters.
#[derive(Debug, Clone, Default)]
pub struct Table {
    cls: Classifier,
    timed: Timed,
    stats: Arc<TableStats>,
}

impl Table {
    /// Highest-priority rule matching `key` (`None` is a table miss). ORs into `wc` every key
    /// bit the decision depended on (the megaflow mask; see [`Classifier::lookup`]).
    #[inline]
    pub fn lookup(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<&Arc<Rule>> {
        self.stats.lookups.fetch_add(1, Ordering::Relaxed);
        let r = self.cls.lookup(key, wc);
        if r.is_some() {
            self.stats.matched.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// [`Table::lookup`] without touching the table's counters (`swctl trace` is not traffic).
    pub fn lookup_uncounted(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<&Arc<Rule>> {
        self.cls.lookup(key, wc)
    }

    /// All rules in dump order ([`rule_order`]: highest priority first). Allocates and sorts;
    /// use [`Table::iter`] when the order does not matter.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.cls.sorted().into_iter()
    }

    /// All rules, in no particular order, without allocating.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.cls.iter()
    }

    /// The rule with exactly this match and priority.
    pub fn find_strict(&self, m: &Match, priority: u16) -> Option<&Arc<Rule>> {
        self.cls.find_exact(&MaskedKey::from_match(m), priority)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.cls.len()
    }

    /// True if the table has no rules.
    pub fn is_empty(&self) -> bool {
        self.cls.is_empty()
    }

    /// Number of distinct masks: the most hash probes a lookup can take.
    pub fn n_subtables(&self) -> usize {
        self.cls.n_subtables()
    }

    /// The classifier itself.
    pub fn classifier(&self) -> &Classifier {
        &self.cls
    }

    /// Lookup counters.
    pub fn stats(&self) -> &TableStats {
        &self.stats
    }

    /// The shared lookup counters (the same `Arc` in every version of this table).
    pub fn stats_arc(&self) -> &Arc<TableStats> {
        &self.stats
    }

    /// Number of rules with an idle or hard timeout.
    pub fn n_timed(&self) -> usize {
        self.timed.len()
    }

    fn insert_rule(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        let timed = rule.has_timeouts().then(|| rule.clone());
        let old = self.cls.insert(rule);
        if let Some(o) = old.as_ref().filter(|o| o.has_timeouts()) {
            Arc::make_mut(&mut self.timed).remove(&addr(o));
        }
        if let Some(t) = timed {
            Arc::make_mut(&mut self.timed).insert(addr(&t), t);
        }
        old
    }

    fn remove_rule(&mut self, key: &MaskedKey, priority: u16) -> Option<Arc<Rule>> {
        let old = self.cls.remove(key, priority)?;
        if old.has_timeouts() {
            Arc::make_mut(&mut self.timed).remove(&addr(&old));
        }
        Some(old)
    }
}

fn addr(r: &Arc<Rule>) -> usize {
    Arc::as_ptr(r) as usize
}

/// Which rules a modify, delete or dump applies to (see the module documentation).
struct Selector {
    key: MaskedKey,
    /// `Some(priority)` for strict selection.
    strict: Option<u16>,
    cookie: u64,
    cookie_mask: u64,
    out_port: Option<u32>,
}

impl Selector {
    fn new(filter: &FlowSpec, strict: bool, use_out_port: bool) -> Self {
        Selector {
            key: MaskedKey::from_match(&filter.matches),
            strict: strict.then_some(filter.attrs.priority),
            cookie: filter.attrs.cookie,
            cookie_mask: filter.attrs.cookie_mask,
            out_port: if use_out_port {
                filter.attrs.out_port
            } else {
                None
            },
        }
    }

    /// The other conditions, once the match part is known to hold.
    fn accepts(&self, r: &Rule) -> bool {
        (r.attrs.cookie ^ self.cookie) & self.cookie_mask == 0
            && match self.out_port {
                None => true,
                Some(p) => r.outputs_to(p),
            }
    }

    /// Selected rules of `t`, in dump order.
    fn select<'a>(&self, t: &'a Table) -> Vec<&'a Arc<Rule>> {
        let mut v: Vec<&Arc<Rule>> = match self.strict {
            Some(p) => t.cls.find_exact(&self.key, p).into_iter().collect(),
            None => t.cls.within(self.key).collect(),
        };
        v.retain(|r| self.accepts(r));
        v.sort_by(|a, b| rule_order(a, b));
        v
    }
}

/// The table ids `table` designates (`None`: all of them).
fn table_ids(table: Option<u8>) -> std::ops::Range<usize> {
    match table {
        None => 0..N_TABLES,
        Some(t) if (t as usize) < N_TABLES => t as usize..t as usize + 1,
        Some(_) => 0..0,
    }
}

/// One immutable version of a bridge's tables.
#[derive(Debug, Clone)]
pub struct Pipeline {
    tables: Vec<Arc<Table>>,
    version: u64,
    /// The bridge's floating IPs (`fip_*` actions), versioned with the tables.
    fips: Arc<FipTable>,
    /// The bridge's SNAT pools (`nat(src=pool:..)`, `snat_pool_owner`), versioned likewise.
    snat_pools: Arc<SnatPoolTable>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            tables: (0..N_TABLES).map(|_| Arc::new(Table::default())).collect(),
            version: 0,
            fips: Arc::default(),
            snat_pools: Arc::default(),
        }
    }
}

impl Pipeline {
    /// Table `id`.
    #[inline]
    pub fn table(&self, id: u8) -> &Table {
        &self.tables[id as usize % N_TABLES]
    }

    /// The floating IPs the `fip_*` actions of this version use.
    #[inline]
    pub fn fips(&self) -> &FipTable {
        &self.fips
    }

    /// The same, shared.
    pub fn fips_arc(&self) -> &Arc<FipTable> {
        &self.fips
    }

    /// The SNAT pools of this version.
    #[inline]
    pub fn snat_pools(&self) -> &SnatPoolTable {
        &self.snat_pools
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
                fips: self.fips.clone(),
                snat_pools: self.snat_pools.clone(),
            },
        }
    }

    /// The rules `dump-flows` shows for `filter`: non-strict selection by match, cookie/mask
    /// and `out_port`, in `table` (`None`: all tables). Ordered by table, then [`rule_order`].
    pub fn dump(&self, filter: &FlowSpec, table: Option<u8>) -> Vec<Arc<Rule>> {
        let sel = Selector::new(filter, false, true);
        table_ids(table)
            .flat_map(|t| sel.select(&self.tables[t]).into_iter().cloned())
            .collect()
    }

    /// True if some rule has an idle or hard timeout (else expiry can be skipped entirely).
    pub fn has_timeouts(&self) -> bool {
        self.tables.iter().any(|t| t.n_timed() != 0)
    }

    /// The earliest time at which some rule would expire if nothing hits it, or `None` if no
    /// rule has a timeout. Hits only postpone idle expiry, so calling [`PipelineEdit::expire`]
    /// before this time finds nothing. Costs O(rules with timeouts).
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.tables
            .iter()
            .filter(|t| t.n_timed() != 0)
            .flat_map(|t| t.timed.values())
            .filter_map(|r| r.expires_at_ms())
            .min()
    }
}

/// An edit in progress: a private copy of the tables, published by [`PipelineEdit::finish`].
///
/// Only tables that an operation actually changes are copied (an operation that selects
/// nothing copies nothing); see [`crate::classifier`] for what a copy costs.
#[derive(Debug)]
pub struct PipelineEdit {
    next: Pipeline,
}

impl PipelineEdit {
    /// The tables as edited so far.
    pub fn pipeline(&self) -> &Pipeline {
        &self.next
    }

    /// Replace the floating-IP table (a FIP or ownership change publishes a new version, so
    /// every cached decision taken under the old table is dropped).
    pub fn set_fips(&mut self, fips: Arc<FipTable>) {
        self.next.fips = fips;
    }

    /// Replace the SNAT pool table (a pool change publishes a new version, like a FIP change).
    pub fn set_snat_pools(&mut self, pools: Arc<SnatPoolTable>) {
        self.next.snat_pools = pools;
    }

    fn table_mut(&mut self, id: usize) -> &mut Table {
        Arc::make_mut(&mut self.next.tables[id])
    }

    /// The rules of table `id` that `sel` selects (owned, so the table can then be edited).
    fn selected(&self, sel: &Selector, id: usize) -> Vec<Arc<Rule>> {
        sel.select(&self.next.tables[id])
            .into_iter()
            .cloned()
            .collect()
    }

    /// Insert `rule`, replacing a rule with the same match and priority in the same table
    /// (`rule.attrs.table`, modulo 255: use [`PipelineEdit::add`] for validation).
    /// Returns the replaced rule.
    pub fn insert(&mut self, rule: Rule) -> Option<Arc<Rule>> {
        let t = rule.attrs.table as usize % N_TABLES;
        self.table_mut(t).insert_rule(Arc::new(rule))
    }

    /// `add-flow`: add the flow `spec` at `now_ms`, replacing (with fresh counters) a rule with
    /// the same match and priority. Returns the replaced rule.
    pub fn add(&mut self, spec: &FlowSpec, now_ms: u64) -> Result<Option<Arc<Rule>>, FlowModError> {
        let table = spec.attrs.table;
        if table as usize >= N_TABLES {
            return Err(FlowModError::BadTable(table));
        }
        let rule = Rule::from_spec(spec, now_ms);
        if spec.attrs.check_overlap
            && self.next.tables[table as usize]
                .cls
                .find_overlap(&rule.key, rule.attrs.priority)
                .is_some()
        {
            return Err(FlowModError::Overlap {
                table,
                priority: rule.attrs.priority,
            });
        }
        Ok(self.insert(rule))
    }

    /// `mod-flows`: give the rules selected by `spec` (see the module documentation) in `table`
    /// (`None`: all tables) the actions of `spec`, keeping everything else, counters included.
    /// Returns how many rules changed. Selecting nothing adds nothing (OpenFlow 1.1+).
    /// `spec.actions == None` installs an empty action list (drop); the caller should have
    /// rejected a `mod-flows` without `actions=` already.
    pub fn modify(&mut self, spec: &FlowSpec, table: Option<u8>, strict: bool) -> usize {
        let sel = Selector::new(spec, strict, false);
        let actions = spec.actions.clone().unwrap_or_default();
        let mut n = 0;
        for t in table_ids(table) {
            let chosen = self.selected(&sel, t);
            if chosen.is_empty() {
                continue;
            }
            let tm = self.table_mut(t);
            for old in chosen {
                let new = Rule {
                    attrs: old.attrs.clone(),
                    matches: old.matches.clone(),
                    key: old.key,
                    actions: actions.clone(),
                    created_ms: old.created_ms,
                    stats: old.stats.clone(),
                };
                tm.insert_rule(Arc::new(new));
                n += 1;
            }
        }
        n
    }

    /// `del-flows`: remove the rules selected by `filter` (match, cookie/mask, `out_port`;
    /// strict adds priority) from `table` (`None`: all tables). Returns them in dump order.
    pub fn delete(&mut self, filter: &FlowSpec, table: Option<u8>, strict: bool) -> Vec<Arc<Rule>> {
        let sel = Selector::new(filter, strict, true);
        let mut out = Vec::new();
        for t in table_ids(table) {
            let chosen = self.selected(&sel, t);
            if chosen.is_empty() {
                continue;
            }
            let tm = self.table_mut(t);
            for r in &chosen {
                tm.remove_rule(&r.key, r.attrs.priority);
            }
            out.extend(chosen);
        }
        out
    }

    /// Remove every rule whose hard or idle timeout has run out at `now_ms`. Returns them with
    /// the reason, by table then [`rule_order`].
    pub fn expire(&mut self, now_ms: u64) -> Vec<(Arc<Rule>, ExpiryReason)> {
        let mut out = Vec::new();
        for t in 0..N_TABLES {
            if self.next.tables[t].n_timed() == 0 {
                continue;
            }
            let mut dead: Vec<(Arc<Rule>, ExpiryReason)> = self.next.tables[t]
                .timed
                .values()
                .filter_map(|r| r.expired(now_ms).map(|why| (r.clone(), why)))
                .collect();
            if dead.is_empty() {
                continue;
            }
            dead.sort_by(|a, b| rule_order(&a.0, &b.0));
            let tm = self.table_mut(t);
            for (r, _) in &dead {
                tm.remove_rule(&r.key, r.attrs.priority);
            }
            out.extend(dead);
        }
        out
    }

    /// The version this edit produces.
    pub fn finish(self) -> Pipeline {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::flow::ast::FlowAttrs;
    use control::flow::field::Field;

    fn spec(table: u8, priority: u16, fields: &[(Field, u128)], actions: Vec<Action>) -> FlowSpec {
        FlowSpec::new(table, priority, fields.iter().copied().collect(), actions)
    }

    fn out(p: u32) -> Vec<Action> {
        vec![Action::Output(OutputPort::Port(p))]
    }

    fn key(fields: &[(Field, u128)]) -> FlowKey {
        let mut k = FlowKey::zero();
        for &(f, v) in fields {
            k.set(f, v);
        }
        k
    }

    fn hit<'a>(p: &'a Pipeline, table: u8, k: &FlowKey) -> Option<&'a Arc<Rule>> {
        p.table(table).lookup(k, &mut FlowKey::zero())
    }

    /// Filter matching everything (what `del-flows` / `dump-flows` without arguments use).
    fn all() -> FlowSpec {
        FlowSpec {
            attrs: FlowAttrs::default(),
            matches: Match::new(),
            actions: None,
        }
    }

    fn with_cookie(mut s: FlowSpec, cookie: u64, mask: u64) -> FlowSpec {
        s.attrs.cookie = cookie;
        s.attrs.cookie_mask = mask;
        s
    }

    const IP: (Field, u128) = (Field::EthType, 0x0800);

    #[test]
    fn add_replaces_identical_and_resets_counters() {
        let mut e = Pipeline::default().edit();
        let s = spec(0, 10, &[(Field::InPort, 1)], out(2));
        assert!(e.add(&s, 1000).unwrap().is_none());
        let first = e.pipeline().table(0).rules().next().unwrap().clone();
        first.stats.hit(60, 1500);
        let s2 = spec(0, 10, &[(Field::InPort, 1)], out(3));
        let old = e.add(&s2, 2000).unwrap().unwrap();
        assert!(Arc::ptr_eq(&old, &first));
        let p = e.finish();
        assert_eq!(p.n_rules(), 1);
        let r = hit(&p, 0, &key(&[(Field::InPort, 1)])).unwrap();
        assert_eq!(r.actions, out(3));
        assert_eq!(r.created_ms, 2000);
        assert_eq!(r.stats.packets.load(Ordering::Relaxed), 0);
        // A different priority is a different rule.
        let mut e = p.edit();
        assert!(e
            .add(&spec(0, 11, &[(Field::InPort, 1)], out(4)), 0)
            .unwrap()
            .is_none());
        assert_eq!(e.finish().n_rules(), 2);
    }

    #[test]
    fn add_checks_table_and_overlap() {
        let mut e = Pipeline::default().edit();
        assert_eq!(
            e.add(&spec(255, 1, &[], vec![]), 0).unwrap_err(),
            FlowModError::BadTable(255)
        );
        e.add(
            &spec(1, 10, &[IP, (Field::Ipv4Dst, 0x0a00_0001)], out(1)),
            0,
        )
        .unwrap();
        let mut s = spec(1, 10, &[IP], out(2));
        s.attrs.check_overlap = true;
        assert_eq!(
            e.add(&s, 0).unwrap_err(),
            FlowModError::Overlap {
                table: 1,
                priority: 10
            }
        );
        // Same match, other priority or other table: no overlap.
        s.attrs.priority = 9;
        assert!(e.add(&s, 0).is_ok());
        s.attrs.table = 2;
        s.attrs.priority = 10;
        assert!(e.add(&s, 0).is_ok());
        // Disjoint at the same priority.
        let mut d = spec(1, 10, &[IP, (Field::Ipv4Dst, 0x0a00_0002)], out(1));
        d.attrs.check_overlap = true;
        assert!(e.add(&d, 0).is_ok());
        assert_eq!(e.finish().n_rules(), 4);
    }

    /// Table 0: three rules under cookies 0x1, 0x2, 0x11; table 1: one with cookie 0x1.
    fn cookie_pipeline() -> Pipeline {
        let mut e = Pipeline::default().edit();
        let rules = [
            (0, 0x1, 100, 0x0a00_0001u128, 1u32),
            (0, 0x2, 100, 0x0a00_0002, 2),
            (0, 0x11, 200, 0x0a00_0003, 1),
            (1, 0x1, 100, 0x0a00_0001, 3),
        ];
        for (t, cookie, prio, dst, port) in rules {
            let mut s = spec(t, prio, &[IP, (Field::Ipv4Dst, dst)], out(port));
            s.attrs.cookie = cookie;
            e.add(&s, 0).unwrap();
        }
        e.finish()
    }

    #[test]
    fn modify_non_strict_with_cookie_mask_keeps_counters() {
        let p = cookie_pipeline();
        let before: Vec<Arc<Rule>> = p.dump(&all(), None);
        for r in &before {
            r.stats.hit(100, 5);
        }
        let mut e = p.edit();
        let f = with_cookie(spec(0, 0, &[IP], out(9)), 0x1, 0xf);
        // Table 0 only: 0x1 and 0x11 match the cookie filter.
        assert_eq!(e.modify(&f, Some(0), false), 2);
        let q = e.finish();
        let changed: Vec<u64> = q
            .dump(&all(), None)
            .iter()
            .filter(|r| r.actions == out(9))
            .map(|r| r.attrs.cookie)
            .collect();
        assert_eq!(changed, vec![0x11, 0x1]);
        for r in q.dump(&all(), None) {
            assert_eq!(r.stats.packets.load(Ordering::Relaxed), 1, "counters kept");
            let old = before
                .iter()
                .find(|o| o.key == r.key && o.attrs.table == r.attrs.table)
                .unwrap();
            assert!(Arc::ptr_eq(&old.stats, &r.stats));
            assert_eq!(r.attrs.cookie, old.attrs.cookie, "cookie is a filter");
        }
        // All tables: the table-1 rule too.
        let mut e = q.edit();
        assert_eq!(e.modify(&f, None, false), 3);
        // A filter that selects nothing adds nothing.
        let none = spec(0, 0, &[(Field::InPort, 77)], out(1));
        assert_eq!(e.modify(&none, None, false), 0);
        assert_eq!(e.finish().n_rules(), 4);
    }

    #[test]
    fn modify_strict_needs_exact_match_and_priority() {
        let p = cookie_pipeline();
        let mut e = p.edit();
        let exact = spec(0, 100, &[IP, (Field::Ipv4Dst, 0x0a00_0001)], out(7));
        let mut wrong_prio = exact.clone();
        wrong_prio.attrs.priority = 101;
        let broader = spec(0, 100, &[IP], out(7));
        assert_eq!(e.modify(&wrong_prio, Some(0), true), 0);
        assert_eq!(e.modify(&broader, Some(0), true), 0);
        // Cookie filter applies to strict too.
        assert_eq!(
            e.modify(&with_cookie(exact.clone(), 0x2, 0xff), Some(0), true),
            0
        );
        assert_eq!(e.modify(&exact, Some(0), true), 1);
        let q = e.finish();
        let k = key(&[IP, (Field::Ipv4Dst, 0x0a00_0001)]);
        assert_eq!(hit(&q, 0, &k).unwrap().actions, out(7));
        assert_eq!(hit(&q, 1, &k).unwrap().actions, out(3));
        // The previous version still answers the old way.
        assert_eq!(hit(&p, 0, &k).unwrap().actions, out(1));
    }

    #[test]
    fn delete_strict_non_strict_cookie_and_out_port() {
        let p = cookie_pipeline();
        // out_port=1 in all tables: the 0x1 and 0x11 rules of table 0.
        let mut e = p.edit();
        let mut f = all();
        f.attrs.out_port = Some(1);
        let gone = e.delete(&f, None, false);
        assert_eq!(
            gone.iter().map(|r| r.attrs.cookie).collect::<Vec<_>>(),
            vec![0x11, 0x1]
        );
        assert_eq!(e.pipeline().n_rules(), 2);
        // Cookie mask in table 1 only.
        let gone = e.delete(&with_cookie(all(), 0x1, 0xff), Some(1), false);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].attrs.table, 1);
        // Strict: priority must agree.
        let s = spec(0, 99, &[IP, (Field::Ipv4Dst, 0x0a00_0002)], vec![]);
        assert!(e.delete(&s, Some(0), true).is_empty());
        let s = spec(0, 100, &[IP, (Field::Ipv4Dst, 0x0a00_0002)], vec![]);
        assert_eq!(e.delete(&s, Some(0), true).len(), 1);
        assert_eq!(e.finish().n_rules(), 0);
        // Non-strict by match: everything within ip in table 0.
        let mut e = p.edit();
        let within = spec(0, 0, &[IP], vec![]);
        assert_eq!(e.delete(&within, Some(0), false).len(), 3);
        // Delete everything left.
        assert_eq!(e.delete(&all(), None, false).len(), 1);
        assert_eq!(e.finish().n_rules(), 0);
        assert_eq!(p.n_rules(), 4, "old version untouched");
    }

    #[test]
    fn dump_order_and_filters() {
        let p = cookie_pipeline();
        let d = p.dump(&all(), None);
        let got: Vec<(u8, u16, u64)> = d
            .iter()
            .map(|r| (r.attrs.table, r.attrs.priority, r.attrs.cookie))
            .collect();
        assert_eq!(
            got,
            vec![(0, 200, 0x11), (0, 100, 0x1), (0, 100, 0x2), (1, 100, 0x1)]
        );
        assert_eq!(p.dump(&all(), Some(1)).len(), 1);
        assert_eq!(p.dump(&all(), Some(255)).len(), 0);
        let f = spec(0, 0, &[IP, (Field::Ipv4Dst, 0x0a00_0002)], vec![]);
        assert_eq!(p.dump(&f, None).len(), 1);
        let f = with_cookie(all(), 0x10, 0x10);
        assert_eq!(p.dump(&f, None).len(), 1);
        // Table::rules agrees with the dump order.
        let t0: Vec<u64> = p.table(0).rules().map(|r| r.attrs.cookie).collect();
        assert_eq!(t0, vec![0x11, 0x1, 0x2]);
    }

    #[test]
    fn expiry_idle_and_hard() {
        let mut e = Pipeline::default().edit();
        let mut idle = spec(0, 1, &[(Field::InPort, 1)], out(1));
        idle.attrs.idle_timeout = 10;
        let mut hard = spec(0, 1, &[(Field::InPort, 2)], out(1));
        hard.attrs.hard_timeout = 30;
        let forever = spec(0, 1, &[(Field::InPort, 3)], out(1));
        for s in [&idle, &hard, &forever] {
            e.add(s, 1_000).unwrap();
        }
        let p = e.finish();
        assert!(p.has_timeouts());
        assert_eq!(p.next_expiry_ms(), Some(11_000));
        // A hit at 8s postpones the idle rule to 18s.
        let r = hit(&p, 0, &key(&[(Field::InPort, 1)])).unwrap();
        r.stats.hit(64, 8_000);
        assert_eq!(p.next_expiry_ms(), Some(18_000));
        let mut e = p.edit();
        assert!(e.expire(17_999).is_empty());
        let gone = e.expire(18_000);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].1, ExpiryReason::Idle);
        assert!(Arc::ptr_eq(&gone[0].0, r));
        let q = e.finish();
        assert_eq!(q.next_expiry_ms(), Some(31_000));
        // Hits do not postpone a hard timeout.
        hit(&q, 0, &key(&[(Field::InPort, 2)]))
            .unwrap()
            .stats
            .hit(1, 30_500);
        let mut e = q.edit();
        let gone = e.expire(31_000);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].1, ExpiryReason::Hard);
        let z = e.finish();
        assert!(!z.has_timeouts());
        assert_eq!(z.next_expiry_ms(), None);
        assert_eq!(z.n_rules(), 1);
        assert_eq!(p.n_rules(), 3);
    }

    #[test]
    fn modify_and_replace_keep_timeout_bookkeeping() {
        let mut e = Pipeline::default().edit();
        let mut s = spec(0, 1, &[(Field::InPort, 1)], out(1));
        s.attrs.hard_timeout = 5;
        e.add(&s, 0).unwrap();
        assert_eq!(e.modify(&s, Some(0), true), 1);
        assert_eq!(e.pipeline().table(0).n_timed(), 1);
        assert_eq!(e.pipeline().next_expiry_ms(), Some(5_000));
        // Replacing with a flow without timeouts drops it from the timed set.
        s.attrs.hard_timeout = 0;
        e.add(&s, 0).unwrap();
        assert_eq!(e.pipeline().table(0).n_timed(), 0);
        assert!(e.expire(u64::MAX / 2).is_empty());
    }

    #[test]
    fn versions_are_immutable_and_share_counters() {
        let mut e = Pipeline::default().edit();
        e.add(&spec(0, 5, &[(Field::InPort, 1)], out(1)), 0)
            .unwrap();
        let v1 = e.finish();
        let k1 = key(&[(Field::InPort, 1)]);
        let k2 = key(&[(Field::InPort, 2)]);
        let mut e = v1.edit();
        e.add(&spec(0, 5, &[(Field::InPort, 2)], out(2)), 0)
            .unwrap();
        e.add(&spec(3, 5, &[], out(3)), 0).unwrap();
        let v2 = e.finish();
        assert_eq!(v2.version(), v1.version() + 1);
        // Old version: unchanged answers.
        assert!(hit(&v1, 0, &k2).is_none());
        assert!(hit(&v1, 3, &k2).is_none());
        assert_eq!(v1.n_rules(), 1);
        assert_eq!(v2.n_rules(), 3);
        // Same rule object and counters in both versions; untouched tables are shared.
        let a = hit(&v1, 0, &k1).unwrap();
        let b = hit(&v2, 0, &k1).unwrap();
        assert!(Arc::ptr_eq(a, b));
        a.stats.hit(10, 1);
        assert_eq!(b.stats.bytes.load(Ordering::Relaxed), 10);
        assert!(std::ptr::eq(v1.table(7), v2.table(7)));
        // Table counters are shared too: lookups via v1 (3 so far on table 0, 2 matched)
        // are visible through v2.
        let t1 = v1.table(0).stats();
        let t2 = v2.table(0).stats();
        assert!(std::ptr::eq(t1, t2));
        assert_eq!(t2.lookups.load(Ordering::Relaxed), 3);
        assert_eq!(t2.matched.load(Ordering::Relaxed), 2);
        // A delete that selects nothing copies nothing.
        let mut e = v2.edit();
        assert!(e
            .delete(&spec(0, 0, &[(Field::InPort, 9)], vec![]), None, false)
            .is_empty());
        let v3 = e.finish();
        assert!(std::ptr::eq(v2.table(0), v3.table(0)));
    }

    #[test]
    fn insert_keeps_legacy_behaviour() {
        let mut e = Pipeline::default().edit();
        let s = spec(2, 7, &[(Field::InPort, 1)], out(1));
        assert!(e.insert(Rule::from_spec(&s, 0)).is_none());
        assert!(e.insert(Rule::from_spec(&s, 0)).is_some());
        let p = e.finish();
        assert_eq!(p.table(2).len(), 1);
        assert!(!p.table(2).is_empty());
        assert!(p
            .table(2)
            .find_strict(&s.matches, 7)
            .is_some_and(|r| r.attrs.table == 2));
    }

    // --- property test: flow-mods against a linear model; old versions never change ---

    use proptest::prelude::*;

    type MatchGen = (Option<u128>, Option<(u128, u128)>, Option<bool>);

    fn match_gen() -> impl Strategy<Value = MatchGen> {
        (
            prop::option::of(0u128..3),
            prop::option::of((prop::sample::select(vec![1u128, 3, 2]), 0u128..4)),
            prop::option::of(any::<bool>()),
        )
    }

    fn build_match(g: &MatchGen) -> Match {
        let mut m = Match::new();
        if let Some(p) = g.0 {
            m.set_exact(Field::InPort, p);
        }
        if let Some((mask, v)) = g.1 {
            m.set(Field::Reg(0), v, mask);
        }
        if let Some(v6) = g.2 {
            m.set_exact(Field::EthType, if v6 { 0x86dd } else { 0x0800 });
        }
        m
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, u16, MatchGen, u64, u32),
        Modify(Option<u8>, bool, u16, MatchGen, u64, u64, u32),
        Delete(Option<u8>, bool, u16, MatchGen, u64, u64, Option<u32>),
    }

    fn op_gen() -> impl Strategy<Value = Op> {
        let table = || prop::option::of(0u8..2);
        prop_oneof![
            3 => (0u8..2, 0u16..3, match_gen(), 0u64..4, 1u32..4)
                .prop_map(|(t, p, m, c, o)| Op::Add(t, p, m, c, o)),
            1 => (table(), any::<bool>(), 0u16..3, match_gen(), 0u64..4, 0u64..4, 1u32..4)
                .prop_map(|(t, s, p, m, c, cm, o)| Op::Modify(t, s, p, m, c, cm, o)),
            1 => (
                table(),
                any::<bool>(),
                0u16..3,
                match_gen(),
                0u64..4,
                0u64..4,
                prop::option::of(1u32..4)
            )
                .prop_map(|(t, s, p, m, c, cm, o)| Op::Delete(t, s, p, m, c, cm, o)),
        ]
    }

    /// What the model remembers of a rule: (table, priority, key, cookie, output port).
    type Model = Vec<(u8, u16, MaskedKey, u64, u32)>;

    fn snapshot(p: &Pipeline) -> Model {
        p.dump(&all(), None)
            .iter()
            .map(|r| {
                let port = match r.actions[..] {
                    [Action::Output(OutputPort::Port(o))] => o,
                    _ => unreachable!(),
                };
                (r.attrs.table, r.attrs.priority, r.key, r.attrs.cookie, port)
            })
            .collect()
    }

    fn sort_model(m: &mut Model) {
        m.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(b.1.cmp(&a.1))
                .then_with(|| crate::classifier::mask_order(&a.2.mask, &b.2.mask))
                .then_with(|| a.2.value.w.cmp(&b.2.value.w))
        });
    }

    fn selected(
        r: &(u8, u16, MaskedKey, u64, u32),
        table: Option<u8>,
        strict: bool,
        prio: u16,
        f: &MaskedKey,
        cookie: u64,
        cmask: u64,
    ) -> bool {
        table.is_none_or(|t| t == r.0)
            && (r.3 ^ cookie) & cmask == 0
            && if strict {
                r.1 == prio && r.2 == *f
            } else {
                (0..f.mask.w.len()).all(|i| {
                    f.mask.w[i] & !r.2.mask.w[i] == 0
                        && r.2.value.w[i] & f.mask.w[i] == f.value.w[i]
                })
            }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn flow_mods_match_model(ops in prop::collection::vec(op_gen(), 1..30)) {
            let mut p = Pipeline::default();
            let mut model: Model = Vec::new();
            for op in ops {
                let before = p.clone();
                let before_snap = snapshot(&before);
                let mut e = p.edit();
                match op {
                    Op::Add(t, prio, m, cookie, port) => {
                        let mut s = spec(t, prio, &[], out(port));
                        s.matches = build_match(&m);
                        s.attrs.cookie = cookie;
                        let key = MaskedKey::from_match(&s.matches);
                        let replaced = e.add(&s, 0).unwrap();
                        let old = model.iter().position(|r| r.0 == t && r.1 == prio && r.2 == key);
                        prop_assert_eq!(replaced.is_some(), old.is_some());
                        if let Some(i) = old {
                            model.remove(i);
                        }
                        model.push((t, prio, key, cookie, port));
                    }
                    Op::Modify(t, strict, prio, m, cookie, cmask, port) => {
                        let mut s = spec(0, prio, &[], out(port));
                        s.matches = build_match(&m);
                        s = with_cookie(s, cookie, cmask);
                        let f = MaskedKey::from_match(&s.matches);
                        let n = e.modify(&s, t, strict);
                        let mut want = 0;
                        for r in model.iter_mut() {
                            if selected(r, t, strict, prio, &f, cookie, cmask) {
                                r.4 = port;
                                want += 1;
                            }
                        }
                        prop_assert_eq!(n, want);
                    }
                    Op::Delete(t, strict, prio, m, cookie, cmask, out_port) => {
                        let mut s = spec(0, prio, &[], vec![]);
                        s.matches = build_match(&m);
                        s = with_cookie(s, cookie, cmask);
                        s.attrs.out_port = out_port;
                        let f = MaskedKey::from_match(&s.matches);
                        let gone = e.delete(&s, t, strict);
                        let before_len = model.len();
                        model.retain(|r| {
                            !(selected(r, t, strict, prio, &f, cookie, cmask)
                                && out_port.is_none_or(|o| o == r.4))
                        });
                        prop_assert_eq!(gone.len(), before_len - model.len());
                    }
                }
                p = e.finish();
                sort_model(&mut model);
                prop_assert_eq!(&snapshot(&p), &model);
                prop_assert_eq!(&snapshot(&before), &before_snap);
                // Lookups agree with the model too.
                for port in 0..3u128 {
                    for reg in 0..4u128 {
                        for et in [0x0800u128, 0x86dd] {
                            let k = key(&[(Field::InPort, port), (Field::Reg(0), reg), (Field::EthType, et)]);
                            for t in 0..2u8 {
                                let got = hit(&p, t, &k).map(|r| (r.attrs.priority, r.key));
                                let want = model
                                    .iter()
                                    .filter(|r| r.0 == t && r.2.matches(&k))
                                    .map(|r| (r.1, r.2))
                                    .next();
                                prop_assert_eq!(got, want);
                            }
                        }
                    }
                }
            }
        }
    }
}
