//! Shared-address SNAT pools in the pipeline: the per-bridge pool table,
//! `ct(commit,nat(src=pool:NAME))` and `snat_pool_owner(NAME)->DST`.
//!
//! # What a pool is
//!
//! A pool (`swctl add-snat-pool BR NAME PUBLIC_IP INSIDE_CIDR [--ports LO-HI]`, see
//! `daemon::snat_pool`) is one public IPv4 address shared by every address of an inside prefix,
//! each inside address owning a deterministic block of the public port range
//! ([`conntrack::PortBlocks`], RFC 7422). The table is part of the bridge's
//! [`Pipeline`](crate::flowtable::Pipeline) version, like the FIP table: a pool change
//! publishes a new version and drops every megaflow made under the old one.
//!
//! # The actions (extensions to the flow language; not in `ovs-ofctl`)
//!
//! * `ct(commit,...,nat(src=pool:NAME))`: the `ct` action is translated as
//!   `nat(src=PUBLIC_IP)` plus [`DpAction::CtNatBlocks`], which hands the pool's block layout to
//!   conntrack. Conntrack picks the port in the block of the *packet's* source when it creates
//!   the connection ([`conntrack::NatRequest::block`]), so the translation does not depend on
//!   any key bit beyond what `ct` already uses: one megaflow serves every inside host. A source
//!   outside the inside prefix, or a full block, is `nat_exhausted` (dropped and counted, never
//!   sent untranslated). Existing connections keep their binding whatever the request says, as
//!   with any `nat(src=...)`. A pool the bridge does not have: the packet is dropped
//!   (`invalid_action`) and `trace` says why — a flow may name a pool before it is added, and
//!   a pool may be deleted under its flows.
//! * `snat_pool_owner(NAME)->DST`: if the key is IPv4 TCP or UDP with the pool's public address
//!   as destination, the inside address that owns the destination port's block is written to
//!   DST (a 32-bit subfield, e.g. `NXM_NX_REG0[]`); otherwise 0 (not this pool's address, a
//!   port outside every block, no such pool, not TCP/UDP). Flows then pick the node of that
//!   address (`reg0=10.1.0.4 actions=set_field:192.0.2.2->tun_dst,output:vx`), whose conntrack
//!   holds the connection and translates the reply. ICMP echo identifiers are allocated in the
//!   blocks too, but the flow key holds no ICMP identifier, so echo replies cannot be steered
//!   by this action.
//!
//! # Megaflow soundness
//!
//! `snat_pool_owner` reads the Ethertype, the IP protocol, the IPv4 destination and the L4
//! destination port: all are joined to the mask exactly (a megaflow per public port, which is
//! what the decision needs).
//!
//! # Counters
//!
//! Each pool counts the packets its `ct(nat(src=pool:..))` translations were asked for and the
//! packets `snat_pool_owner` found an owner for, as [`RuleStats`] in
//! [`super::XlateOutput::rules`] (the cache counts its hits on them, as for rules and FIPs).

use super::dpaction::DpAction;
use super::{mark_field, mark_subfield, write_subfield, DropReason, Xlate};
use crate::flowtable::RuleStats;
use conntrack::PortBlocks;
use control::flow::ast::Subfield;
use control::flow::field::Field;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Counters of one pool, kept across table versions.
#[derive(Debug, Default)]
pub struct SnatPoolStats {
    /// Packets whose `ct(nat(src=pool:NAME))` used the pool.
    pub nat: Arc<RuleStats>,
    /// Packets for which `snat_pool_owner(NAME)` found an owner.
    pub owner: Arc<RuleStats>,
}

/// One pool as the datapath sees it.
#[derive(Debug, Clone)]
pub struct SnatPool {
    /// The shared public address.
    pub public: Ipv4Addr,
    /// Inside prefix and port blocks.
    pub blocks: PortBlocks,
    /// Counters (shared by every version of the table that has this pool).
    pub stats: Arc<SnatPoolStats>,
}

/// The pools of one bridge, by name. Immutable once built (a change builds a new one).
#[derive(Debug, Clone, Default)]
pub struct SnatPoolTable {
    pools: BTreeMap<String, SnatPool>,
}

impl SnatPoolTable {
    /// A table of `pools` (names are unique by construction of the map).
    pub fn new(pools: BTreeMap<String, SnatPool>) -> SnatPoolTable {
        SnatPoolTable { pools }
    }

    /// The pool called `name`.
    pub fn get(&self, name: &str) -> Option<&SnatPool> {
        self.pools.get(name)
    }

    /// Every pool, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &SnatPool)> {
        self.pools.iter()
    }

    /// True when the bridge has no pool.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }
}

impl<const TRACE: bool> Xlate<'_, '_, TRACE> {
    fn pool_count(&mut self, stats: &Arc<RuleStats>) {
        if !TRACE {
            stats.hit(self.ctx.packet_len, self.ctx.now_ms);
        }
        self.out.rules.push(stats.clone());
    }

    /// The `nat(src=pool:NAME)` of a `ct` action: the pool's public address and block layout,
    /// as datapath actions following the `Ct`. `false` if the packet was dropped (no pool).
    pub(super) fn ct_nat_pool(
        &mut self,
        name: &str,
        nat: &control::flow::ast::NatSpec,
        depth: u32,
    ) -> bool {
        let Some(pool) = self.ctx.pipeline.snat_pools().get(name).cloned() else {
            self.note(
                depth,
                &format!("ct: nat(src=pool:{name}): this bridge has no SNAT pool {name}"),
            );
            self.fail(DropReason::InvalidAction, depth);
            return false;
        };
        let public = std::net::IpAddr::V4(pool.public);
        self.push(
            DpAction::CtNat {
                kind: Some(control::flow::ast::NatKind::Src),
                ports: None,
                random: nat.random,
                persistent: false,
                hash: nat.hash,
            },
            depth,
        );
        for max in [false, true] {
            self.push(DpAction::CtNatAddr { max, addr: public }, depth);
        }
        let (lo, hi) = pool.blocks.range();
        self.push(
            DpAction::CtNatBlocks {
                net: u32::from(pool.blocks.network()),
                prefix_len: pool.blocks.prefix_len(),
                lo,
                hi,
            },
            depth,
        );
        self.pool_count(&pool.stats.nat);
        if TRACE {
            self.note(
                depth,
                &format!(
                    "ct: nat(src=pool:{name}): source NAT to {} on a port of the source's block \
                     ({}/{} sharing {lo}-{hi}, {} ports each; chosen by conntrack for a new \
                     connection)",
                    pool.public,
                    pool.blocks.network(),
                    pool.blocks.prefix_len(),
                    pool.blocks.size()
                ),
            );
        }
        true
    }

    /// `snat_pool_owner(NAME)->DST`.
    pub(super) fn snat_pool_owner(&mut self, name: &str, dst: &Subfield, depth: u32) {
        if dst.n_bits != 32 || u16::from(dst.ofs) + 32 > u16::from(dst.field.width()) {
            return self.fail(DropReason::InvalidAction, depth);
        }
        let owner = self.pool_owner_of_key(name, depth);
        if let Some((_, stats)) = &owner {
            self.pool_count(stats);
        }
        let value = owner.map_or(0, |(a, _)| u32::from(a));
        write_subfield(&mut self.key, dst, u128::from(value));
        mark_subfield(&mut self.written, dst);
    }

    fn pool_owner_of_key(&mut self, name: &str, depth: u32) -> Option<(Ipv4Addr, Arc<RuleStats>)> {
        let what = format!("snat_pool_owner({name})");
        let Some(pool) = self.ctx.pipeline.snat_pools().get(name).cloned() else {
            self.note(
                depth,
                &format!("{what}: no SNAT pool {name} on this bridge: 0"),
            );
            return None;
        };
        mark_field(&mut self.out.wc, Field::EthType);
        if self.key.get(Field::EthType) != 0x0800 {
            self.note(depth, &format!("{what}: not IPv4: 0"));
            return None;
        }
        mark_field(&mut self.out.wc, Field::IpProto);
        let port_field = match self.key.get(Field::IpProto) {
            6 => Field::TcpDst,
            17 => Field::UdpDst,
            _ => {
                self.note(depth, &format!("{what}: not TCP or UDP: 0"));
                return None;
            }
        };
        mark_field(&mut self.out.wc, Field::Ipv4Dst);
        let dst = Ipv4Addr::from(self.key.get(Field::Ipv4Dst) as u32);
        if dst != pool.public {
            self.note(
                depth,
                &format!(
                    "{what}: destination {dst} is not the pool's {}: 0",
                    pool.public
                ),
            );
            return None;
        }
        mark_field(&mut self.out.wc, port_field);
        let port = self.key.get(port_field) as u16;
        match pool.blocks.owner(port) {
            Some(owner) => {
                if TRACE {
                    let (lo, hi) = pool.blocks.block_of(owner).unwrap_or((0, 0));
                    self.note(
                        depth,
                        &format!("{what}: port {port} is in block {lo}-{hi} of {owner}"),
                    );
                }
                Some((owner, pool.stats.owner.clone()))
            }
            None => {
                self.note(depth, &format!("{what}: port {port} is in no block: 0"));
                None
            }
        }
    }
}
