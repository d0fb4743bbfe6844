//! Floating IPs in the pipeline: the per-bridge mapping table and the `fip_dnat`, `fip_snat`
//! and `fip_arp` actions.
//!
//! # What a floating IP is here
//!
//! A floating IP (FIP) is a stateless 1:1 address mapping `FIP <-> fixed IP` (IPv4 only),
//! configured per bridge with `swctl add-fip` (see `daemon::fip`). The table is part of the
//! bridge's [`Pipeline`](crate::flowtable::Pipeline) version: a FIP change or an ownership
//! change publishes a new version, exactly like a flow change, so every worker picks it up at
//! its next quiet point and every megaflow made under the old table is invalidated.
//!
//! # The actions (our extensions to the flow language; not in `ovs-ofctl`)
//!
//! * `fip_dnat`: if the key's IPv4 destination is a FIP, it becomes the fixed IP (the key
//!   changes, like `set_field:FIXED->ip_dst`, so later tables see the fixed IP and the rewrite is
//!   committed at output). If the packet is an ICMP error (destination unreachable — including
//!   fragmentation needed —, time exceeded, parameter problem) the quoted header's *source* is
//!   rewritten FIP -> fixed as well, so the host behind the FIP recognises its own packet.
//! * `fip_snat`: if the IPv4 source is a fixed IP, it becomes the FIP; in an ICMP error the
//!   quoted header's *destination* is rewritten fixed -> FIP.
//! * `fip_arp`: an ARP request (not a gratuitous announcement) for a FIP that this node owns
//!   and that has a MAC becomes the reply — the same edits as seed 000's table-20 responder —
//!   and is sent back out of the ingress port; the packet's translation ends there. For any
//!   other packet it does nothing and the flow's remaining actions run.
//!
//! Both translations work on every node whatever the FIP's mode: the mapping is the same
//! everywhere, so a packet is translated the same way whichever node it crosses, and nothing
//! is remembered per connection. The mode only decides ownership, i.e. who answers ARP.
//!
//! # Megaflow soundness
//!
//! The decisions depend on the Ethertype, the IPv4 destination (source), the IP protocol and,
//! for ICMP, the type — all joined to the mask. The quoted header of an ICMP error is not in
//! the flow key, so translation cannot decide about it once for a whole megaflow: it emits
//! [`DpAction::FipIcmpQuoted`], and the executor checks the quoted address of each packet and
//! rewrites it only if it is the one expected (two errors of one megaflow quoting different
//! packets are each handled on their own).
//!
//! # Counters
//!
//! Each FIP has packet/byte counters for each direction and for ARP replies. They are
//! [`RuleStats`] carried in [`super::XlateOutput::rules`], so the flow cache counts its hits
//! on them exactly as it does for rules (no work per packet beyond what rules already cost).

use super::dpaction::{DpAction, Mac};
use super::{mark_field, Xlate};
use crate::flowtable::RuleStats;
use control::flow::ast::OutputPort;
use control::flow::field::Field;
use rustc_hash::FxHashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// ICMPv4 types whose body quotes the offending packet's header and which `fip_*` translate:
/// destination unreachable (incl. fragmentation needed), time exceeded, parameter problem.
pub const ICMP_ERROR_TYPES: [u8; 3] = [3, 11, 12];

/// True if `ty` is an ICMPv4 error type that quotes a packet.
pub fn is_icmp_error(ty: u8) -> bool {
    ICMP_ERROR_TYPES.contains(&ty)
}

/// Counters of one FIP, kept across table versions.
#[derive(Debug, Default)]
pub struct FipStats {
    /// Packets translated by `fip_dnat` (to the FIP, towards the fixed IP).
    pub dnat: Arc<RuleStats>,
    /// Packets translated by `fip_snat` (from the fixed IP, leaving as the FIP).
    pub snat: Arc<RuleStats>,
    /// ARP requests answered by `fip_arp`.
    pub arp: Arc<RuleStats>,
}

/// One floating IP as the datapath sees it.
#[derive(Debug, Clone)]
pub struct FipEntry {
    /// The floating IP.
    pub fip: Ipv4Addr,
    /// The fixed IP it maps to.
    pub fixed: Ipv4Addr,
    /// The MAC `fip_arp` answers with (none: never answered).
    pub mac: Option<Mac>,
    /// Whether this node owns the FIP now (its claim is granted): only then `fip_arp` answers.
    pub owned: bool,
    /// The claim status in words, for traces ("standalone", "refused: held by node-b").
    pub claim: String,
    /// Counters (shared by every version of the table that has this FIP).
    pub stats: Arc<FipStats>,
}

/// The FIPs of one bridge, indexed both ways. Immutable once built (a change builds a new one).
#[derive(Debug, Clone, Default)]
pub struct FipTable {
    entries: Vec<FipEntry>,
    by_fip: FxHashMap<u32, usize>,
    by_fixed: FxHashMap<u32, usize>,
}

/// Why a set of FIPs cannot form a table (the daemon validates before building; this is the
/// last line of defence, so the datapath never sees an ambiguous mapping).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FipTableError {
    /// The same FIP twice.
    #[error("floating IP {0} is configured twice")]
    DuplicateFip(Ipv4Addr),
    /// Two FIPs for one fixed IP: `fip_snat` would not know which one to use.
    #[error("fixed IP {fixed} is already mapped by floating IP {other}")]
    DuplicateFixed {
        /// The fixed IP.
        fixed: Ipv4Addr,
        /// The FIP that maps it already.
        other: Ipv4Addr,
    },
    /// An address used both as a FIP and as a fixed IP: the two translations would chain.
    #[error("{0} is used both as a floating IP and as a fixed IP")]
    BothRoles(Ipv4Addr),
}

impl FipTable {
    /// Build a table from `entries`, refusing ambiguous mappings.
    pub fn new(entries: Vec<FipEntry>) -> Result<FipTable, FipTableError> {
        let mut t = FipTable::default();
        for (i, e) in entries.iter().enumerate() {
            let (f, x) = (u32::from(e.fip), u32::from(e.fixed));
            if t.by_fip.insert(f, i).is_some() {
                return Err(FipTableError::DuplicateFip(e.fip));
            }
            if let Some(&j) = t.by_fixed.get(&x) {
                return Err(FipTableError::DuplicateFixed {
                    fixed: e.fixed,
                    other: entries[j].fip,
                });
            }
            t.by_fixed.insert(x, i);
        }
        for e in &entries {
            if t.by_fixed.contains_key(&u32::from(e.fip)) {
                return Err(FipTableError::BothRoles(e.fip));
            }
        }
        t.entries = entries;
        Ok(t)
    }

    /// The entry whose FIP is `addr`.
    #[inline]
    pub fn by_fip(&self, addr: u32) -> Option<&FipEntry> {
        self.by_fip.get(&addr).map(|&i| &self.entries[i])
    }

    /// The entry whose fixed IP is `addr`.
    #[inline]
    pub fn by_fixed(&self, addr: u32) -> Option<&FipEntry> {
        self.by_fixed.get(&addr).map(|&i| &self.entries[i])
    }

    /// Every entry, in configuration order.
    pub fn entries(&self) -> &[FipEntry] {
        &self.entries
    }

    /// True when the bridge has no FIP.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn mac_value(m: Mac) -> u128 {
    m.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b))
}

fn fmt_mac(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl<const TRACE: bool> Xlate<'_, '_, TRACE> {
    /// Count a translation on a FIP counter (the cache counts the later packets of the megaflow).
    fn fip_count(&mut self, stats: &Arc<RuleStats>) {
        if !TRACE {
            stats.hit(self.ctx.packet_len, self.ctx.now_ms);
        }
        self.out.rules.push(stats.clone());
    }

    /// `fip_dnat` (`snat == false`) and `fip_snat` (`snat == true`).
    pub(super) fn fip_translate(&mut self, snat: bool, depth: u32) {
        let name = if snat { "fip_snat" } else { "fip_dnat" };
        mark_field(&mut self.out.wc, Field::EthType);
        if self.key.get(Field::EthType) != 0x0800 {
            self.note(depth, &format!("{name}: not IPv4, nothing to translate"));
            return;
        }
        let addr_field = if snat { Field::Ipv4Src } else { Field::Ipv4Dst };
        mark_field(&mut self.out.wc, addr_field);
        let addr = self.key.get(addr_field) as u32;
        let table = self.ctx.pipeline.fips();
        let hit = if snat {
            table.by_fixed(addr)
        } else {
            table.by_fip(addr)
        };
        let Some(e) = hit else {
            if TRACE {
                let what = if snat { "source" } else { "destination" };
                let role = if snat { "fixed IP" } else { "floating IP" };
                self.note(
                    depth,
                    &format!(
                        "{name}: {what} {} is not a {role} of this bridge: unchanged",
                        Ipv4Addr::from(addr)
                    ),
                );
            }
            return;
        };
        let (from, to) = if snat {
            (e.fixed, e.fip)
        } else {
            (e.fip, e.fixed)
        };
        let stats = if snat {
            e.stats.snat.clone()
        } else {
            e.stats.dnat.clone()
        };
        self.key.set(addr_field, u128::from(u32::from(to)));
        mark_field(&mut self.written, addr_field);
        self.fip_count(&stats);
        if TRACE {
            let what = if snat { "source" } else { "destination" };
            self.note(
                depth,
                &format!("{name}: {what} {from} -> {to} (stateless 1:1 mapping)"),
            );
        }
        // ICMP errors quote the packet they are about: its header must be translated the
        // other way round (decided per packet by the executor: not in the key).
        mark_field(&mut self.out.wc, Field::IpProto);
        if self.key.get(Field::IpProto) != 1 {
            return;
        }
        mark_field(&mut self.out.wc, Field::IcmpType);
        if !is_icmp_error(self.key.get(Field::IcmpType) as u8) {
            return;
        }
        self.push(
            DpAction::FipIcmpQuoted {
                quoted_dst: snat,
                from: u32::from(from),
                to: u32::from(to),
            },
            depth,
        );
        if TRACE {
            let field = if snat { "destination" } else { "source" };
            self.note(
                depth,
                &format!(
                    "{name}: ICMP error: the quoted header's {field} {from} -> {to}, if it is \
                     {from} (checked on each packet)"
                ),
            );
        }
    }

    /// `fip_arp`.
    pub(super) fn fip_arp(&mut self, depth: u32) {
        mark_field(&mut self.out.wc, Field::EthType);
        if self.key.get(Field::EthType) != 0x0806 {
            self.note(depth, "fip_arp: not ARP, nothing to answer");
            return;
        }
        for f in [Field::ArpOp, Field::ArpTpa, Field::ArpSpa] {
            mark_field(&mut self.out.wc, f);
        }
        let (op, spa, tpa) = (
            self.key.get(Field::ArpOp),
            self.key.get(Field::ArpSpa) as u32,
            self.key.get(Field::ArpTpa) as u32,
        );
        let target = Ipv4Addr::from(tpa);
        if op != 1 || spa == tpa {
            self.note(
                depth,
                "fip_arp: not an ARP request (or a gratuitous one): not answered",
            );
            return;
        }
        let Some(e) = self.ctx.pipeline.fips().by_fip(tpa) else {
            if TRACE {
                self.note(
                    depth,
                    &format!("fip_arp: {target} is not a floating IP of this bridge"),
                );
            }
            return;
        };
        let Some(mac) = e.mac.filter(|_| e.owned) else {
            if TRACE {
                let why = if e.owned {
                    "it has no --mac".to_string()
                } else {
                    format!("this node does not own it (claim: {})", e.claim)
                };
                self.note(depth, &format!("fip_arp: {target}: not answered, {why}"));
            }
            return;
        };
        let stats = e.stats.arp.clone();
        // The reply, as seed 000's table-20 responder builds it.
        for f in [Field::EthSrc, Field::ArpSha] {
            mark_field(&mut self.out.wc, f);
        }
        let k = &mut self.key;
        let (eth_src, sha) = (k.get(Field::EthSrc), k.get(Field::ArpSha));
        k.set(Field::EthDst, eth_src);
        k.set(Field::EthSrc, mac_value(mac));
        k.set(Field::ArpOp, 2);
        k.set(Field::ArpTha, sha);
        k.set(Field::ArpTpa, u128::from(spa));
        k.set(Field::ArpSha, mac_value(mac));
        k.set(Field::ArpSpa, u128::from(tpa));
        for f in [
            Field::EthDst,
            Field::EthSrc,
            Field::ArpOp,
            Field::ArpTha,
            Field::ArpTpa,
            Field::ArpSha,
            Field::ArpSpa,
        ] {
            mark_field(&mut self.written, f);
        }
        self.fip_count(&stats);
        if TRACE {
            self.note(
                depth,
                &format!(
                    "fip_arp: {target} is at {} (owned, claim: {}): reply out of the ingress \
                     port; the packet's actions end here",
                    fmt_mac(mac),
                    e.claim
                ),
            );
        }
        self.output(OutputPort::InPort, depth);
        // The request has been answered: nothing else happens to it.
        self.stopped = true;
    }
}
