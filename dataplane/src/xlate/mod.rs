//! Pipeline translation: a packet's flow key → datapath actions (+ megaflow mask, + trace).
//!
//! # What translation is
//!
//! This is the slow path. It takes the key extracted from a packet, runs it through the
//! OpenFlow tables of one [`Pipeline`] version, executes the OpenFlow actions *on a copy of the
//! key*, and emits a short list of [`DpAction`]s that, applied to the frame by
//! [`crate::execute`], produce exactly the packets the OpenFlow pipeline describes. The flow
//! cache in front of it remembers `key & wc → actions`, so every later packet of the same
//! megaflow skips the tables; that is why translation never touches the frame, and why it
//! reports the rule counters it bumped ([`XlateOutput::rules`]): the cache bumps them again on
//! each of its hits.
//!
//! # Guarantees
//!
//! * **One version.** A translation holds `&Pipeline`, an immutable version; edits publish a
//!   new version, so a packet never sees half of a `mod-flows` batch or a rule removed
//!   between two tables.
//! * **Megaflow soundness.** [`XlateOutput::wc`] has a bit set for every key bit the result
//!   depended on: the classifier ORs in what each lookup consulted, and translation adds what
//!   the actions read (`move` sources, `output:reg`, the TTL for `dec_ttl`, `in_port` for the
//!   in-port check and flooding, the VLAN TCI for push/pop) and every header field an action
//!   wrote (whether a `set` is emitted depends on the original value). Any packet agreeing
//!   with the key on those bits translates to the same actions.
//! * **Output commit.** The datapath actions are lazy: a `set_field` only changes the key. At
//!   each output (and `controller`, `normal`) [`commit`] compares the key with the *committed*
//!   key (what the frame looks like given the datapath actions emitted so far, initially the
//!   packet's own key) and emits the minimal rewrites for the fields that differ, then the
//!   output; then committed := current. So `set_field:A->ip_dst, output:1, set_field:B->eth_src,
//!   output:2` emits `set(ipv4(dst=A)),1,set(eth(src=B)),2`, and a set that restores the
//!   original value emits nothing.
//! * **Bounded work, no panics.** Resubmit nesting is limited to [`MAX_DEPTH`] (deeper: the
//!   packet is dropped, [`DropReason::ResubmitLoop`]); total lookups per packet to
//!   [`MAX_LOOKUPS`] (a rule that resubmits twice at every level is exponential without it);
//!   emitted actions to [`MAX_DP_ACTIONS`]. `goto_table` must go forward. Actions the
//!   datapath cannot run yet (`group`) drop with [`DropReason::Unsupported`]
//!   rather than panic, although the daemon rejects them at add time.
//!
//! # Conntrack and recirculation
//!
//! `ct(...)` commits pending header rewrites (conntrack sees the frame as the key describes
//! it) and emits [`DpAction::Ct`] with the zone resolved (a register zone is read from the key
//! and joins the megaflow mask) and the `nat(...)` request ([`DpAction::CtNat`],
//! [`DpAction::CtNatAddr`]) and `exec` mark/label writes as modifiers. The datapath applies
//! the NAT rewrite to the frame itself, so the rest of the list and a recirculated pass see
//! the translated packet. As in Open
//! vSwitch the packet itself goes on with the rest of the action list, its conntrack fields
//! unchanged; with `table=T` the datapath also translates a copy of the key, its `ct_*` fields
//! set by conntrack and its recirculation id set to [`recirc_id`]`(T)`, from table `T`
//! ([`xlate_from`]). Recirculation ids stand for a table of the bridge and nothing else, so
//! registers and `metadata` start at zero in the recirculated pass (Open vSwitch freezes
//! them; not needed by the pipelines this datapath runs yet). Every translation marks the
//! recirculation id in the megaflow mask, so entries of different passes never match each
//! other's keys.
//!
//! # Drop semantics
//!
//! Errors (loops, backward goto, unsupported or malformed actions, too much output) drop the
//! whole packet: emitted actions are discarded. A failed `dec_ttl` follows OpenFlow: the rest
//! of the translation stops, outputs already done stand, and the reason is reported. A packet
//! that reaches the end of the pipeline without any output reports [`DropReason::TableMiss`]
//! if the last lookup missed, else [`DropReason::NoOutput`].
//!
//! # Ports
//!
//! `output:N` to the packet's own `in_port` is skipped (OpenFlow); `IN_PORT` sends it back.
//! `flood`/`all` go to every port of [`XlateCtx::ports`] but the ingress one. Reserved port
//! numbers written numerically or read from a register (`output:NXM_NX_REG0[]`) act as the
//! reserved ports. `normal` emits [`DpAction::Normal`], a placeholder the L2 learning switch
//! resolves; its inputs (in_port, MACs, VLAN) are already in the megaflow mask.
//!
//! # Floating IPs
//!
//! `fip_dnat`, `fip_snat` and `fip_arp` consult the bridge's FIP table, which is part of the
//! pipeline version (see [`fip`]): stateless address rewrites through the key like `set_field`,
//! plus a per-packet [`DpAction::FipIcmpQuoted`] for the header quoted in ICMP errors.
//!
//! # SNAT pools
//!
//! `ct(commit,nat(src=pool:NAME))` and `snat_pool_owner(NAME)->DST` consult the bridge's SNAT
//! pool table, also part of the pipeline version (see [`snat_pool`]): the first becomes
//! `nat(src=PUBLIC)` plus the pool's block layout ([`DpAction::CtNatBlocks`]) for conntrack,
//! the second writes the inside address owning a public port into a register.
//!
//! # Tracing
//!
//! [`xlate`] and [`xlate_trace`] are the same code instantiated with a `const TRACE: bool`;
//! with `TRACE = false` every trace branch is compiled out. A trace records each table visited
//! (rule or miss), each action with the key fields it changed, each output with the rewrites
//! committed for it, and drops; [`Trace::render`] prints it like `ofproto/trace`. Traces do
//! not bump rule counters.

mod commit;
pub mod dpaction;
pub mod fip;
pub mod snat_pool;
#[cfg(test)]
mod tests;
pub mod trace;

pub use dpaction::{ControllerReason, DpAction, DpActions, Mac};
pub use fip::{FipEntry, FipStats, FipTable};
pub use snat_pool::{SnatPool, SnatPoolStats, SnatPoolTable};
pub use trace::{FieldChange, Trace, TraceEvent, TraceRule};

use crate::flowtable::{Pipeline, RuleStats};
use crate::key::{loc, FlowKey, RECIRC_WORD};
use control::flow::ast::{Action, CtAction, CtZoneSrc, OutputPort, Subfield};
use control::flow::field::{ones, Field, VLAN_PRESENT};
use serde::Serialize;
use std::sync::Arc;

/// Deepest resubmit nesting (as in Open vSwitch).
pub const MAX_DEPTH: u32 = 64;
/// Most table lookups for one packet, all depths together.
pub const MAX_LOOKUPS: u32 = 4096;
/// Tags `push_vlan` may add over an already tagged key (two tags in all: what the extractor
/// parses).
pub const MAX_EXTRA_VLANS: usize = 1;
/// Most datapath actions for one packet.
pub const MAX_DP_ACTIONS: usize = 1024;
/// First reserved OpenFlow port number (OpenFlow 1.3 `OFPP_MAX` + 1).
pub const OFPP_MAX: u32 = 0xffff_ff00;
/// OpenFlow `IN_PORT`.
pub const OFPP_IN_PORT: u32 = 0xffff_fff8;
/// OpenFlow `NORMAL`.
pub const OFPP_NORMAL: u32 = 0xffff_fffa;
/// OpenFlow `FLOOD`.
pub const OFPP_FLOOD: u32 = 0xffff_fffb;
/// OpenFlow `ALL`.
pub const OFPP_ALL: u32 = 0xffff_fffc;
/// OpenFlow `CONTROLLER`.
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// OpenFlow `LOCAL` port number.
pub const OFPP_LOCAL: u32 = 0xffff_fffe;

/// The recirculation id that means "resume in table `table`" (never 0: 0 is the first pass).
pub fn recirc_id(table: u8) -> u32 {
    u32::from(table) + 1
}

/// The table a recirculation id resumes in (`None` for 0, the first pass, and unknown ids).
pub fn recirc_table(id: u32) -> Option<u8> {
    id.checked_sub(1).and_then(|t| u8::try_from(t).ok())
}

/// Why a packet was (or partly was) dropped. Each reason is a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The last table lookup found no rule and nothing was output.
    #[error("table miss")]
    TableMiss,
    /// The pipeline ended without any output (`drop`, empty action list).
    #[error("no output")]
    NoOutput,
    /// `dec_ttl` on a TTL/hop limit of 0 or 1.
    #[error("TTL exceeded")]
    TtlExceeded,
    /// Resubmit nesting deeper than [`MAX_DEPTH`].
    #[error("resubmit loop")]
    ResubmitLoop,
    /// More than [`MAX_LOOKUPS`] lookups.
    #[error("too many resubmits")]
    TooManyResubmits,
    /// `goto_table` to a table not after the current one.
    #[error("goto_table backward")]
    GotoBackward,
    /// An action the datapath cannot execute yet (`ct`, `group`).
    #[error("unsupported action")]
    Unsupported,
    /// A malformed action (subfield out of range, move width mismatch).
    #[error("invalid action")]
    InvalidAction,
    /// More than [`MAX_DP_ACTIONS`] datapath actions.
    #[error("too many datapath actions")]
    TooManyActions,
}

impl DropReason {
    /// Every reason, for counter tables.
    pub const ALL: [DropReason; 9] = [
        DropReason::TableMiss,
        DropReason::NoOutput,
        DropReason::TtlExceeded,
        DropReason::ResubmitLoop,
        DropReason::TooManyResubmits,
        DropReason::GotoBackward,
        DropReason::Unsupported,
        DropReason::InvalidAction,
        DropReason::TooManyActions,
    ];

    /// Stable snake_case name for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::TableMiss => "table_miss",
            DropReason::NoOutput => "no_output",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::ResubmitLoop => "resubmit_loop",
            DropReason::TooManyResubmits => "too_many_resubmits",
            DropReason::GotoBackward => "goto_backward",
            DropReason::Unsupported => "unsupported",
            DropReason::InvalidAction => "invalid_action",
            DropReason::TooManyActions => "too_many_actions",
        }
    }

    /// True for reasons that discard the whole packet (errors), false for the ones that only
    /// end the pipeline.
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            DropReason::TableMiss | DropReason::NoOutput | DropReason::TtlExceeded
        )
    }
}

/// What a translation needs besides the key.
#[derive(Debug, Clone, Copy)]
pub struct XlateCtx<'a> {
    /// The pipeline version the packet sees, start to end.
    pub pipeline: &'a Pipeline,
    /// OpenFlow port numbers of the bridge (for `flood` and `all`).
    pub ports: &'a [u32],
    /// Milliseconds since the Unix epoch, for rule `last_used`.
    pub now_ms: u64,
    /// Frame length in bytes, for rule byte counters.
    pub packet_len: u64,
}

/// Counters of one translation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct XlateStats {
    /// Table lookups done (all depths).
    pub lookups: u32,
    /// Lookups that found no rule.
    pub misses: u32,
    /// Resubmits executed.
    pub resubmits: u32,
    /// Deepest resubmit nesting reached.
    pub max_depth: u32,
    /// `controller` actions emitted.
    pub controller: u32,
}

/// Result of a translation. Reuse one across calls: [`xlate`] clears it (keeping capacity).
#[derive(Debug, Clone, Default)]
pub struct XlateOutput {
    /// Datapath actions to apply to the frame, in order.
    pub actions: Vec<DpAction>,
    /// Megaflow mask: the key bits the result depends on.
    pub wc: FlowKey,
    /// Counters of every rule hit, in hit order (the cache bumps them on its hits).
    pub rules: Vec<Arc<RuleStats>>,
    /// Why the packet was dropped, if it was (see the module doc for partial drops).
    pub drop_reason: Option<DropReason>,
    /// The key after all actions.
    pub final_key: FlowKey,
    /// Counters.
    pub stats: XlateStats,
}

impl XlateOutput {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    fn clear(&mut self) {
        self.actions.clear();
        self.wc = FlowKey::zero();
        self.rules.clear();
        self.drop_reason = None;
        self.final_key = FlowKey::zero();
        self.stats = XlateStats::default();
    }
}

/// Translate `key` through `ctx.pipeline` starting at table 0, into `out` (cleared first).
pub fn xlate(ctx: &XlateCtx<'_>, key: &FlowKey, out: &mut XlateOutput) {
    let mut trace = Trace::default();
    run::<false>(ctx, key, 0, out, &mut trace);
}

/// [`xlate`] starting at table `start`: the recirculated pass of a `ct(table=start)`.
pub fn xlate_from(ctx: &XlateCtx<'_>, key: &FlowKey, start: u8, out: &mut XlateOutput) {
    let mut trace = Trace::default();
    run::<false>(ctx, key, start, out, &mut trace);
}

/// [`xlate`] that also records what it did, for `ofproto/trace`. Neither rule nor table
/// counters are bumped (a trace is not traffic).
pub fn xlate_trace(ctx: &XlateCtx<'_>, key: &FlowKey, out: &mut XlateOutput) -> Trace {
    xlate_trace_from(ctx, key, 0, out)
}

/// [`xlate_trace`] starting at table `start` instead of 0 (`swctl trace` with `table=N`: an
/// operator examining one stage of a pipeline whose earlier stages are elsewhere).
pub fn xlate_trace_from(
    ctx: &XlateCtx<'_>,
    key: &FlowKey,
    start: u8,
    out: &mut XlateOutput,
) -> Trace {
    let mut trace = Trace {
        flow: trace::key_to_match(key),
        ..Trace::default()
    };
    run::<true>(ctx, key, start, out, &mut trace);
    trace.final_flow = trace::key_to_match(&out.final_key);
    trace.megaflow = trace::mask_to_match(&out.final_key, key, &out.wc);
    trace.actions = out.actions.clone();
    trace.drop_reason = out.drop_reason;
    trace
}

fn run<const TRACE: bool>(
    ctx: &XlateCtx<'_>,
    key: &FlowKey,
    start: u8,
    out: &mut XlateOutput,
    trace: &mut Trace,
) {
    out.clear();
    // Megaflows of different recirculation passes must never match each other's keys.
    out.wc.w[RECIRC_WORD] |= 0xffff_ffff;
    let mut x = Xlate::<TRACE> {
        ctx,
        key: *key,
        committed: *key,
        written: FlowKey::zero(),
        out,
        trace,
        vlan_tpid: 0x8100,
        vlan_repush: false,
        vlan_saved: [0; 4],
        n_vlan_saved: 0,
        stopped: false,
        last_missed: false,
        any_output: false,
    };
    x.table(start, 0);
    if x.out.drop_reason.is_none() && !x.any_output {
        x.out.drop_reason = Some(if x.last_missed {
            DropReason::TableMiss
        } else {
            DropReason::NoOutput
        });
    }
    x.out.final_key = x.key;
}

/// Translation state for one packet.
struct Xlate<'c, 'p, const TRACE: bool> {
    ctx: &'c XlateCtx<'p>,
    /// The key as the actions so far have made it.
    key: FlowKey,
    /// The key as the frame will look after the datapath actions emitted so far.
    committed: FlowKey,
    /// Bits written by actions (they join the megaflow mask at commit).
    written: FlowKey,
    out: &'c mut XlateOutput,
    trace: &'c mut Trace,
    /// TPID for a lazily pushed tag.
    vlan_tpid: u16,
    /// A tag was popped and another pushed since the last commit (TPID may differ: re-push).
    vlan_repush: bool,
    /// TCIs of tags under eagerly pushed ones (so `pop_vlan` can restore the key).
    vlan_saved: [u16; 4],
    n_vlan_saved: u8,
    /// Set when translation must stop (error or failed `dec_ttl`).
    stopped: bool,
    /// Whether the most recent lookup missed.
    last_missed: bool,
    /// Whether anything was output.
    any_output: bool,
}

/// Header fields the commit turns into rewrites, grouped by what is rewritten as a unit.
const COMMIT_FIELDS: &[&[Field]] = &[
    &[Field::TunId, Field::TunSrc, Field::TunDst],
    &[Field::EthSrc],
    &[Field::EthDst],
    &[Field::VlanTci],
    &[Field::Ipv4Src],
    &[Field::Ipv4Dst],
    &[Field::IpDscp, Field::IpEcn],
    &[Field::IpTtl],
    &[Field::Ipv6Src],
    &[Field::Ipv6Dst],
    &[Field::Ipv6Label],
    &[Field::TcpSrc],
    &[Field::TcpDst],
    &[Field::IcmpType],
    &[Field::IcmpCode],
    &[Field::ArpOp],
    &[Field::ArpSha],
    &[Field::ArpTha],
    &[Field::NdTarget],
];

/// True if `sf` lies inside its field.
fn subfield_ok(sf: &Subfield) -> bool {
    sf.n_bits >= 1 && u16::from(sf.ofs) + u16::from(sf.n_bits) <= u16::from(sf.field.width())
}

fn read_subfield(key: &FlowKey, sf: &Subfield) -> u128 {
    (key.get_loc(loc(sf.field)) >> sf.ofs) & ones(sf.n_bits)
}

fn write_subfield(key: &mut FlowKey, sf: &Subfield, v: u128) {
    let m = ones(sf.n_bits) << sf.ofs;
    key.set_loc_masked(loc(sf.field), v << sf.ofs, m);
}

/// Mark the bits of `sf` in a mask key.
fn mark_subfield(mask: &mut FlowKey, sf: &Subfield) {
    let m = ones(sf.n_bits) << sf.ofs;
    mask.set_loc_masked(loc(sf.field), m, m);
}

fn mark_field(mask: &mut FlowKey, f: Field) {
    mask.set_loc_masked(loc(f), u128::MAX, u128::MAX);
}

impl<const TRACE: bool> Xlate<'_, '_, TRACE> {
    /// Drop the whole packet for an error.
    fn fail(&mut self, reason: DropReason, depth: u32) {
        self.stopped = true;
        self.out.actions.clear();
        self.any_output = false;
        self.out.drop_reason = Some(reason);
        if TRACE {
            self.trace.events.push(TraceEvent::Drop {
                depth: depth as u8,
                reason,
            });
        }
    }

    fn note(&mut self, depth: u32, text: &str) {
        if TRACE {
            self.trace.events.push(TraceEvent::Note {
                depth: depth as u8,
                text: text.to_string(),
            });
        }
    }

    /// Look up `table` and run the matching rule's actions, following `goto_table`.
    fn table(&mut self, mut table: u8, depth: u32) {
        loop {
            if self.stopped {
                return;
            }
            let stats = &mut self.out.stats;
            stats.lookups += 1;
            if stats.lookups > MAX_LOOKUPS {
                self.fail(DropReason::TooManyResubmits, depth);
                return;
            }
            stats.max_depth = stats.max_depth.max(depth);
            let pipeline = self.ctx.pipeline;
            let t = pipeline.table(table);
            // A trace is not traffic: it leaves rule and table counters alone.
            let found = if TRACE {
                t.lookup_uncounted(&self.key, &mut self.out.wc)
            } else {
                t.lookup(&self.key, &mut self.out.wc)
            };
            let Some(rule) = found else {
                self.out.stats.misses += 1;
                self.last_missed = true;
                if TRACE {
                    self.trace.events.push(TraceEvent::Table {
                        depth: depth as u8,
                        table,
                        rule: None,
                    });
                }
                return;
            };
            self.last_missed = false;
            // A trace is a question about a hypothetical packet (`ofproto/trace`): it does not
            // count as traffic.
            if !TRACE {
                rule.stats.hit(self.ctx.packet_len, self.ctx.now_ms);
            }
            self.out.rules.push(rule.stats.clone());
            if TRACE {
                self.trace.events.push(TraceEvent::Table {
                    depth: depth as u8,
                    table,
                    rule: Some(TraceRule {
                        priority: rule.attrs.priority,
                        cookie: rule.attrs.cookie,
                        matches: rule.matches.clone(),
                        actions: rule.actions.clone(),
                    }),
                });
            }
            match self.actions(&rule.actions, table, depth) {
                Some(next) if usize::from(next) >= crate::flowtable::N_TABLES => {
                    self.fail(DropReason::InvalidAction, depth);
                    return;
                }
                Some(next) if next > table => table = next,
                Some(_) => {
                    self.fail(DropReason::GotoBackward, depth);
                    return;
                }
                None => return,
            }
        }
    }

    /// Run an action list; returns the `goto_table` target if there is one.
    fn actions(&mut self, actions: &[Action], table: u8, depth: u32) -> Option<u8> {
        for a in actions {
            if self.stopped {
                return None;
            }
            let (before, ev) = if TRACE {
                self.trace.events.push(TraceEvent::Action {
                    depth: depth as u8,
                    action: a.clone(),
                    changes: Vec::new(),
                });
                (self.key, self.trace.events.len() - 1)
            } else {
                (FlowKey::zero(), 0)
            };
            match a {
                Action::GotoTable(n) => return Some(*n),
                Action::Drop => return None,
                Action::Resubmit { port, table: t } => {
                    // Table 255 (OFPTT_ALL) in NX resubmit encoding means "this table".
                    let t = t.filter(|&t| usize::from(t) < crate::flowtable::N_TABLES);
                    self.resubmit(*port, t.unwrap_or(table), depth);
                    continue;
                }
                _ => self.action(a, depth),
            }
            if TRACE {
                let changes = trace::diff(&before, &self.key);
                if let Some(TraceEvent::Action { changes: c, .. }) = self.trace.events.get_mut(ev) {
                    *c = changes;
                }
            }
        }
        None
    }

    fn resubmit(&mut self, port: Option<u32>, table: u8, depth: u32) {
        if depth + 1 > MAX_DEPTH {
            self.fail(DropReason::ResubmitLoop, depth);
            return;
        }
        self.out.stats.resubmits += 1;
        let old = self.key.get(Field::InPort);
        if let Some(p) = port {
            self.key.set(Field::InPort, u128::from(p));
        }
        self.table(table, depth + 1);
        if port.is_some() {
            self.key.set(Field::InPort, old);
        }
    }

    /// One action that neither jumps nor recurses.
    fn action(&mut self, a: &Action, depth: u32) {
        match a {
            Action::Output(p) => self.output(*p, depth),
            Action::Controller(c) => self.controller(
                ControllerReason::from_text(c.reason.as_deref()),
                c.max_len,
                c.id,
                depth,
            ),
            Action::SetField { field, value, mask } => {
                self.key.set_masked(*field, *value, *mask);
                self.written.set_masked(*field, *mask, *mask);
            }
            Action::Load { value, dst } => {
                if !subfield_ok(dst) {
                    return self.fail(DropReason::InvalidAction, depth);
                }
                write_subfield(&mut self.key, dst, *value);
                mark_subfield(&mut self.written, dst);
            }
            Action::Move { src, dst } => {
                if !subfield_ok(src) || !subfield_ok(dst) || src.n_bits != dst.n_bits {
                    return self.fail(DropReason::InvalidAction, depth);
                }
                // Read the source completely before writing: overlapping moves are defined.
                let v = read_subfield(&self.key, src);
                mark_subfield(&mut self.out.wc, src);
                write_subfield(&mut self.key, dst, v);
                mark_subfield(&mut self.written, dst);
            }
            Action::SetTunnel(id) => {
                self.key.set(Field::TunId, u128::from(*id));
                mark_field(&mut self.written, Field::TunId);
            }
            Action::DecTtl => self.dec_ttl(depth),
            Action::PushVlan(tpid) => self.push_vlan(*tpid, depth),
            Action::PopVlan => self.pop_vlan(depth),
            Action::Note(_) => {}
            Action::CtClear => {
                for f in [Field::CtState, Field::CtZone, Field::CtMark, Field::CtLabel] {
                    self.key.set(f, 0);
                }
            }
            Action::Ct(ct) => self.ct(ct, depth),
            Action::Group(_) => self.fail(DropReason::Unsupported, depth),
            Action::FipDnat => self.fip_translate(false, depth),
            Action::FipSnat => self.fip_translate(true, depth),
            Action::FipArp => self.fip_arp(depth),
            Action::SnatPoolOwner { pool, dst } => self.snat_pool_owner(pool, dst, depth),
            // Handled by the caller.
            Action::GotoTable(_) | Action::Drop | Action::Resubmit { .. } => {}
        }
    }

    /// `ct(...)`: see the module documentation.
    fn ct(&mut self, ct: &CtAction, depth: u32) {
        let zone = match &ct.zone {
            None => 0,
            Some(CtZoneSrc::Value(z)) => *z,
            Some(CtZoneSrc::Field(sf)) => {
                if !subfield_ok(sf) || sf.n_bits > 16 {
                    return self.fail(DropReason::InvalidAction, depth);
                }
                mark_subfield(&mut self.out.wc, sf);
                read_subfield(&self.key, sf) as u16
            }
        };
        let mut mark: Option<(u32, u32)> = None;
        let mut label: Option<(u128, u128)> = None;
        for a in &ct.exec {
            let (field, value, mask) = match a {
                Action::SetField { field, value, mask } => (*field, value & mask, *mask),
                Action::Load { value, dst } if subfield_ok(dst) => {
                    let m = ones(dst.n_bits) << dst.ofs;
                    (dst.field, (value << dst.ofs) & m, m)
                }
                _ => return self.fail(DropReason::InvalidAction, depth),
            };
            match field {
                Field::CtMark => {
                    let (v, m) = mark.unwrap_or((0, 0));
                    let (value, mask) = (value as u32, mask as u32);
                    mark = Some(((v & !mask) | value, m | mask));
                }
                Field::CtLabel => {
                    let (v, m) = label.unwrap_or((0, 0));
                    label = Some(((v & !mask) | value, m | mask));
                }
                _ => return self.fail(DropReason::InvalidAction, depth),
            }
        }
        // Conntrack looks at the frame: it must be what the key says by now.
        self.commit();
        let recirc = ct.table.map(recirc_id);
        // Tracked in this zone already (a recirculated pass, no `ct_clear` since): told to
        // conntrack, which then does not track the packet twice. The decision reads the
        // key's conntrack state and zone, so they join the megaflow mask.
        let mask_trk = u128::from(conntrack::ct_state::TRK);
        self.out
            .wc
            .set_loc_masked(loc(Field::CtState), mask_trk, mask_trk);
        mark_field(&mut self.out.wc, Field::CtZone);
        let again = self.key.get(Field::CtState) & mask_trk != 0
            && self.key.get(Field::CtZone) == u128::from(zone);
        self.push(
            DpAction::Ct {
                zone,
                commit: ct.commit || ct.force,
                recirc,
                again: again && !ct.force,
            },
            depth,
        );
        if let Some(name) = ct.nat.as_ref().and_then(|n| n.pool.as_deref()) {
            let nat = ct.nat.as_ref().expect("checked above");
            if !self.ct_nat_pool(name, nat, depth) {
                return;
            }
        } else if let Some(nat) = &ct.nat {
            self.push(
                DpAction::CtNat {
                    kind: nat.kind,
                    ports: nat.ports,
                    random: nat.random,
                    persistent: nat.persistent,
                    hash: nat.hash,
                },
                depth,
            );
            if let Some((lo, hi)) = nat.addrs {
                self.push(
                    DpAction::CtNatAddr {
                        max: false,
                        addr: lo,
                    },
                    depth,
                );
                self.push(
                    DpAction::CtNatAddr {
                        max: true,
                        addr: hi,
                    },
                    depth,
                );
            }
        }
        if let Some((value, mask)) = mark {
            self.push(DpAction::CtSetMark { value, mask }, depth);
        }
        if let Some((value, mask)) = label {
            for high in [true, false] {
                let sh = if high { 64 } else { 0 };
                let m = (mask >> sh) as u64;
                if m != 0 {
                    let value = (value >> sh) as u64;
                    self.push(
                        DpAction::CtSetLabel {
                            high,
                            value,
                            mask: m,
                        },
                        depth,
                    );
                }
            }
        }
        if let Some(t) = ct.table {
            // The packet lives on in table `t`: not a drop.
            self.any_output = true;
            if TRACE {
                self.note(
                    depth,
                    &format!(
                        "ct(zone={zone}) -> recirculate to table {t} with the conntrack fields set \
                         (trace that pass with table={t} and ct_state=...)"
                    ),
                );
            }
        }
    }

    fn controller(&mut self, reason: ControllerReason, max_len: u16, id: u16, depth: u32) {
        self.commit();
        self.push(
            DpAction::Controller {
                reason,
                max_len,
                id,
            },
            depth,
        );
        self.out.stats.controller += 1;
        self.any_output = true;
    }

    fn dec_ttl(&mut self, depth: u32) {
        mark_field(&mut self.out.wc, Field::EthType);
        let et = self.key.get(Field::EthType);
        if et != 0x0800 && et != 0x86dd {
            // OpenFlow: dec_ttl on a non-IP packet does nothing.
            return;
        }
        mark_field(&mut self.out.wc, Field::IpTtl);
        let ttl = self.key.get(Field::IpTtl);
        if ttl <= 1 {
            // The rest of the pipeline is not run; outputs already done stand.
            self.stopped = true;
            self.out.drop_reason = Some(DropReason::TtlExceeded);
            if TRACE {
                self.trace.events.push(TraceEvent::Drop {
                    depth: depth as u8,
                    reason: DropReason::TtlExceeded,
                });
            }
            return;
        }
        self.key.set(Field::IpTtl, ttl - 1);
        mark_field(&mut self.written, Field::IpTtl);
    }

    fn tci(k: &FlowKey) -> u16 {
        k.get(Field::VlanTci) as u16
    }

    fn push_vlan(&mut self, tpid: u16, depth: u32) {
        mark_field(&mut self.out.wc, Field::VlanTci);
        let cur = Self::tci(&self.key);
        if cur & VLAN_PRESENT == 0 {
            // Lazy: the key says "tagged, vid 0"; commit emits the push (or a re-push if the
            // frame still carries the tag an earlier pop_vlan removed from the key).
            if Self::tci(&self.committed) & VLAN_PRESENT != 0 {
                self.vlan_repush = true;
            }
            self.vlan_tpid = tpid;
            self.key.set(Field::VlanTci, u128::from(VLAN_PRESENT));
            return;
        }
        // Already tagged: the key holds only the outer tag, so make the frame catch up now and
        // remember the inner TCI for a later pop. At most two tags, like the extractor and OVS's
        // flow key: behind a third one the L3 headers would be invisible to every later lookup.
        if usize::from(self.n_vlan_saved) >= MAX_EXTRA_VLANS {
            return self.fail(DropReason::Unsupported, depth);
        }
        self.commit();
        self.vlan_saved[usize::from(self.n_vlan_saved)] = cur;
        self.n_vlan_saved += 1;
        self.push(DpAction::PushVlan { tpid, tci: 0 }, depth);
        self.key.set(Field::VlanTci, u128::from(VLAN_PRESENT));
        self.committed.set(Field::VlanTci, u128::from(VLAN_PRESENT));
    }

    fn pop_vlan(&mut self, depth: u32) {
        mark_field(&mut self.out.wc, Field::VlanTci);
        if Self::tci(&self.key) & VLAN_PRESENT == 0 {
            return;
        }
        if self.n_vlan_saved == 0 {
            // Lazy. Limitation: the key cannot describe a second tag of a double-tagged frame.
            self.key.set(Field::VlanTci, 0);
            return;
        }
        self.commit();
        self.push(DpAction::PopVlan, depth);
        self.n_vlan_saved -= 1;
        let inner = self.vlan_saved[usize::from(self.n_vlan_saved)];
        self.key.set(Field::VlanTci, u128::from(inner));
        self.committed.set(Field::VlanTci, u128::from(inner));
    }

    /// Append a datapath action (bounded).
    fn push(&mut self, a: DpAction, depth: u32) {
        if self.out.actions.len() >= MAX_DP_ACTIONS {
            return self.fail(DropReason::TooManyActions, depth);
        }
        self.out.actions.push(a);
    }

    fn output(&mut self, p: OutputPort, depth: u32) {
        let in_port = self.key.get(Field::InPort) as u32;
        match p {
            // Reserved numbers (from a register, or written numerically) mean the reserved
            // ports, as in OpenFlow 1.3.
            OutputPort::Port(n) if n >= OFPP_MAX => match n {
                OFPP_IN_PORT => self.output(OutputPort::InPort, depth),
                OFPP_NORMAL => self.output(OutputPort::Normal, depth),
                OFPP_FLOOD => self.output(OutputPort::Flood, depth),
                OFPP_ALL => self.output(OutputPort::All, depth),
                OFPP_LOCAL => self.output(OutputPort::Local, depth),
                OFPP_CONTROLLER => self.controller(ControllerReason::Action, u16::MAX, 0, depth),
                // OFPP_TABLE (packet-out only), OFPP_ANY and unassigned numbers.
                _ => self.fail(DropReason::InvalidAction, depth),
            },
            OutputPort::Port(n) => self.output_port(n, in_port, depth),
            OutputPort::InPort => {
                mark_field(&mut self.out.wc, Field::InPort);
                self.emit_output(in_port, depth)
            }
            OutputPort::Local => self.output_port(OFPP_LOCAL, in_port, depth),
            OutputPort::Field(sf) => {
                if !subfield_ok(&sf) || sf.n_bits > 32 {
                    return self.fail(DropReason::InvalidAction, depth);
                }
                mark_subfield(&mut self.out.wc, &sf);
                let n = read_subfield(&self.key, &sf) as u32;
                self.output(OutputPort::Port(n), depth);
            }
            OutputPort::Flood | OutputPort::All => {
                mark_field(&mut self.out.wc, Field::InPort);
                let ports = self.ctx.ports;
                for &port in ports {
                    if port != in_port {
                        self.emit_output(port, depth);
                    }
                }
            }
            OutputPort::Normal => {
                // The learning switch decides per packet at execution from these fields; keep
                // them in the megaflow so a cached entry never serves another L2 context.
                for f in [Field::InPort, Field::EthSrc, Field::EthDst, Field::VlanTci] {
                    mark_field(&mut self.out.wc, f);
                }
                self.note(
                    depth,
                    "normal: the MAC learning table decides per packet (see fdb-show)",
                );
                self.commit();
                self.push(DpAction::Normal, depth);
                self.any_output = true;
            }
        }
    }

    /// `output:N`: OpenFlow never sends a packet back out of its ingress port unless asked
    /// with `IN_PORT`.
    fn output_port(&mut self, port: u32, in_port: u32, depth: u32) {
        mark_field(&mut self.out.wc, Field::InPort);
        if port == in_port {
            self.note(depth, "skipped: output to the input port (use IN_PORT)");
            return;
        }
        self.emit_output(port, depth);
    }

    fn emit_output(&mut self, port: u32, depth: u32) {
        let before = self.out.actions.len();
        self.commit();
        self.push(DpAction::Output(port), depth);
        if self.stopped {
            return;
        }
        self.any_output = true;
        if TRACE {
            let emitted = self.out.actions[before..].to_vec();
            self.trace.events.push(TraceEvent::Output {
                depth: depth as u8,
                port,
                emitted,
            });
        }
    }

    /// Emit the rewrites that make the frame match the key (see the module doc).
    fn commit(&mut self) {
        // Whether a set is emitted depends on the original value of every written header
        // field: those bits join the megaflow mask.
        let hdr_written = self.written.w[0..2].iter().any(|&w| w != 0)
            || self.written.w[16..].iter().any(|&w| w != 0);
        if hdr_written {
            // Rewrites carry whole fields, so a partly written field depends on its unwritten
            // bits as well: every touched field joins the mask whole (DSCP and ECN together,
            // as they form one TOS byte).
            for group in COMMIT_FIELDS {
                if group.iter().any(|&f| self.written.get(f) != 0) {
                    for &f in *group {
                        mark_field(&mut self.out.wc, f);
                    }
                }
            }
            // Which rewrites a change turns into depends on the protocol (and IPv4 source vs
            // ARP SPA share storage): the protocol fields join the mask too.
            mark_field(&mut self.out.wc, Field::EthType);
            let et = self.key.get(Field::EthType);
            if et == 0x0800 || et == 0x86dd {
                mark_field(&mut self.out.wc, Field::IpProto);
                mark_field(&mut self.out.wc, Field::IpFrag);
                if self.key.get(Field::IpProto) == 58 {
                    mark_field(&mut self.out.wc, Field::Icmpv6Type);
                }
            }
        }
        let room = MAX_DP_ACTIONS.saturating_sub(self.out.actions.len());
        let n = commit::commit(
            &self.committed,
            &self.key,
            self.vlan_tpid,
            self.vlan_repush,
            &mut self.out.actions,
        );
        if n > room {
            self.fail(DropReason::TooManyActions, 0);
            return;
        }
        self.vlan_repush = false;
        self.committed = self.key;
    }
}
