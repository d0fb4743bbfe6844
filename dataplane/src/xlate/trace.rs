//! `ofproto/trace`: a record of one translation, serializable and renderable as text.

use super::dpaction::{DpAction, DpActions};
use super::DropReason;
use crate::key::FlowKey;
use control::flow::ast::{Action, Match};
use control::flow::field::{Field, Prereq};
use serde::Serialize;
use std::fmt::Write;

/// The rule a lookup found, copied for printing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceRule {
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// The rule's match.
    #[serde(serialize_with = "ser_match")]
    pub matches: Match,
    /// The rule's actions.
    pub actions: Vec<Action>,
}

/// One key field changed by an action, values formatted for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The field (serialized by its `ovs-ofctl` name).
    #[serde(serialize_with = "ser_field")]
    pub field: Field,
    /// Value before.
    pub old: String,
    /// Value after.
    pub new: String,
}

/// One step of a translation. `depth` is the resubmit nesting (0 at the top).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A table lookup; `rule` is `None` on a table miss.
    Table {
        /// Resubmit depth.
        depth: u8,
        /// Table id.
        table: u8,
        /// The matching rule.
        rule: Option<TraceRule>,
    },
    /// An OpenFlow action and the key fields it changed.
    Action {
        /// Resubmit depth.
        depth: u8,
        /// The action.
        action: Action,
        /// Key changes.
        changes: Vec<FieldChange>,
    },
    /// A datapath output with the rewrites committed just before it.
    Output {
        /// Resubmit depth.
        depth: u8,
        /// Port.
        port: u32,
        /// Datapath actions emitted for this output (rewrites, then the output).
        emitted: Vec<DpAction>,
    },
    /// A remark (skipped output, placeholder behavior).
    Note {
        /// Resubmit depth.
        depth: u8,
        /// Text.
        text: String,
    },
    /// The packet was dropped here.
    Drop {
        /// Resubmit depth.
        depth: u8,
        /// Why.
        reason: DropReason,
    },
}

/// A whole translation as `ofproto/trace` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trace {
    /// Bridge name for the header (set by the caller).
    pub bridge: String,
    /// The packet's key, as an exact match over its non-zero fields.
    #[serde(serialize_with = "ser_match")]
    pub flow: Match,
    /// Steps in order.
    pub events: Vec<TraceEvent>,
    /// The key after all actions.
    #[serde(serialize_with = "ser_match")]
    pub final_flow: Match,
    /// The megaflow: the packet's key under the translation's wildcard mask.
    #[serde(serialize_with = "ser_match")]
    pub megaflow: Match,
    /// Resulting datapath actions.
    pub actions: Vec<DpAction>,
    /// Why the packet was dropped, if it was.
    pub drop_reason: Option<DropReason>,
}

/// `Match` derives `Serialize` as a map keyed by `Field`, which JSON cannot express for
/// `Reg(n)`; traces serialize matches as a list of `{field, value, mask}` with hex strings.
fn ser_match<S: serde::Serializer>(m: &Match, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Entry {
        field: &'static str,
        value: String,
        mask: String,
    }
    let mut seq = s.serialize_seq(Some(m.len()))?;
    for (f, e) in m.iter() {
        seq.serialize_element(&Entry {
            field: f.info().name,
            value: format!("{:#x}", e.value),
            mask: format!("{:#x}", e.mask),
        })?;
    }
    seq.end()
}

fn ser_field<S: serde::Serializer>(f: &Field, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.info().name)
}

impl Trace {
    /// Render like `ovs-appctl ofproto/trace`. The match and action printers are passed in so
    /// this module does not depend on the language printer's output.
    pub fn render(
        &self,
        fmt_match: impl Fn(&Match) -> String,
        fmt_actions: impl Fn(&[Action]) -> String,
    ) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Flow: {}", fmt_match(&self.flow));
        let _ = writeln!(s, "bridge(\"{}\")", self.bridge);
        let _ = writeln!(s, "{}", "-".repeat(self.bridge.len() + 10));
        for e in &self.events {
            let d = match e {
                TraceEvent::Table { depth, .. }
                | TraceEvent::Action { depth, .. }
                | TraceEvent::Output { depth, .. }
                | TraceEvent::Note { depth, .. }
                | TraceEvent::Drop { depth, .. } => *depth as usize,
            };
            let pre = "    ".repeat(d);
            match e {
                TraceEvent::Table { table, rule, .. } => match rule {
                    None => {
                        let _ = writeln!(s, "{pre}{table:>2}. No match (table miss).");
                    }
                    Some(r) => {
                        let m = fmt_match(&r.matches);
                        let sep = if m.is_empty() { "" } else { ", " };
                        let _ = write!(s, "{pre}{table:>2}. {m}{sep}priority {}", r.priority);
                        if r.cookie != 0 {
                            let _ = write!(s, ", cookie {:#x}", r.cookie);
                        }
                        s.push('\n');
                    }
                },
                TraceEvent::Action {
                    action, changes, ..
                } => {
                    let _ = writeln!(s, "{pre}    {}", fmt_actions(std::slice::from_ref(action)));
                    for c in changes {
                        let _ = writeln!(
                            s,
                            "{pre}     {}: {} -> {}",
                            c.field.info().name,
                            c.old,
                            c.new
                        );
                    }
                }
                TraceEvent::Output { emitted, .. } => {
                    let _ = writeln!(s, "{pre}     -> {}", DpActions(emitted));
                }
                TraceEvent::Note { text, .. } => {
                    let _ = writeln!(s, "{pre}     >> {text}");
                }
                TraceEvent::Drop { reason, .. } => {
                    let _ = writeln!(s, "{pre}     >> drop: {}", reason.name());
                }
            }
        }
        s.push('\n');
        if self.final_flow == self.flow {
            s.push_str("Final flow: unchanged\n");
        } else {
            let _ = writeln!(s, "Final flow: {}", fmt_match(&self.final_flow));
        }
        let _ = writeln!(s, "Megaflow: {}", fmt_match(&self.megaflow));
        let _ = write!(s, "Datapath actions: {}", DpActions(&self.actions));
        if let Some(r) = self.drop_reason {
            let _ = write!(s, " (drop reason: {})", r.name());
        }
        s.push('\n');
        s
    }
}

/// Whether `f` means something for a packet with key `k` (its prerequisite holds). Aliased
/// fields (ARP SPA vs IPv4 source, ICMP type vs TCP source port) are told apart this way;
/// `xreg`s are skipped in favor of the `reg`s they are made of.
pub fn field_applies(f: Field, k: &FlowKey) -> bool {
    let et = k.get(Field::EthType);
    let proto = k.get(Field::IpProto);
    let ip = et == 0x0800 || et == 0x86dd;
    let icmp6 = et == 0x86dd && proto == 58;
    let ty6 = k.get(Field::Icmpv6Type);
    match f.info().prereq {
        Prereq::None => !matches!(f, Field::Xreg(_)),
        Prereq::IpAny => ip,
        Prereq::Ipv4 => et == 0x0800,
        Prereq::Ipv6 => et == 0x86dd,
        Prereq::Arp => et == 0x0806 || et == 0x8035,
        Prereq::Tcp => ip && proto == 6,
        Prereq::Udp => ip && proto == 17,
        Prereq::Sctp => ip && proto == 132,
        Prereq::Icmp => et == 0x0800 && proto == 1,
        Prereq::Icmpv6 => icmp6,
        Prereq::Nd => icmp6 && (ty6 == 135 || ty6 == 136),
        Prereq::NdSolicit => icmp6 && ty6 == 135,
        Prereq::NdAdvert => icmp6 && ty6 == 136,
    }
}

/// Format a field value for people: MACs, dotted quads, IPv6 text, decimals for small counters.
pub fn fmt_value(f: Field, v: u128) -> String {
    use Field::*;
    match f {
        EthSrc | EthDst | ArpSha | ArpTha | NdSll | NdTll => {
            let b = (v as u64).to_be_bytes();
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                b[2], b[3], b[4], b[5], b[6], b[7]
            )
        }
        Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa | TunSrc | TunDst => {
            std::net::Ipv4Addr::from(v as u32).to_string()
        }
        Ipv6Src | Ipv6Dst | NdTarget => std::net::Ipv6Addr::from(v).to_string(),
        InPort | IpTtl | IpProto | IpDscp | IpEcn | TcpSrc | TcpDst | UdpSrc | UdpDst | SctpSrc
        | SctpDst | IcmpType | IcmpCode | Icmpv6Type | Icmpv6Code | ArpOp | CtZone => v.to_string(),
        _ => format!("{v:#x}"),
    }
}

/// The fields that differ between two keys.
pub(super) fn diff(a: &FlowKey, b: &FlowKey) -> Vec<FieldChange> {
    if a == b {
        return Vec::new();
    }
    Field::all()
        .filter(|&f| field_applies(f, b))
        .filter_map(|f| {
            let (o, n) = (a.get(f), b.get(f));
            (o != n).then(|| FieldChange {
                field: f,
                old: fmt_value(f, o),
                new: fmt_value(f, n),
            })
        })
        .collect()
}

/// The key as an exact match over its meaningful non-zero fields.
pub fn key_to_match(k: &FlowKey) -> Match {
    let mut m = Match::new();
    for f in Field::all().filter(|&f| field_applies(f, k)) {
        let v = k.get(f);
        if v != 0 {
            m.set_exact(f, v);
        }
    }
    m
}

/// The original key restricted to the megaflow mask `wc`, as a (masked) match. `final_key`
/// decides which aliases apply (eth_type and nw_proto are never rewritten, so either works).
pub fn mask_to_match(final_key: &FlowKey, orig: &FlowKey, wc: &FlowKey) -> Match {
    let mut m = Match::new();
    for f in Field::all().filter(|&f| field_applies(f, final_key)) {
        let mask = wc.get(f);
        if mask != 0 {
            m.set(f, orig.get(f), mask);
        }
    }
    m
}
