//! Shared-address SNAT pools: `add-snat-pool`, `del-snat-pool`, `dump-snat-pools`, and their
//! persistence.
//!
//! # The model: SNAT that agrees without talking
//!
//! Many VMs behind one public address (a router gateway), translated on whichever node the VM
//! runs on. Nodes share no NAT state; instead every inside address owns a *deterministic*
//! block of the public port range (RFC 7422): with `n` addresses in the inside prefix and the
//! range `LO-HI`, the block size is `floor((HI - LO + 1) / n)` and the address at offset `i` of
//! the prefix owns `[LO + i*size, LO + (i+1)*size - 1]` ([`conntrack::PortBlocks`]). Every node
//! configured with the same pool computes the same `(address, block)` for a VM and the same
//! owner for any public port, so:
//!
//! * the VM's node translates its connections with `ct(commit,nat(src=pool:NAME))`: conntrack's
//!   ordinary allocator, restricted to the VM's block (collision-free; a full block is
//!   `nat_exhausted`, counted like every NAT exhaustion; the `conntrack-stats` counters);
//! * a reply that enters another node (ECMP, a moved route, a neighbour entry pointing at the
//!   wrong node) is *not* translated there — that node has no connection for it — and must not
//!   be dropped: `snat_pool_owner(NAME)->NXM_NX_REG0[]` puts the owning inside address in a
//!   register, and flows send the packet to that VM's node (a tunnel), whose conntrack
//!   translates it.
//!
//! ```text
//! # node B, external port 2, VXLAN port 10 (remote from the flow), VM 10.1.0.4 lives on A:
//! table=0,priority=100,tcp,in_port=2,nw_dst=203.0.113.7 actions=snat_pool_owner(gw)->NXM_NX_REG0[],resubmit(,5)
//! table=5,priority=10,reg0=0x0a010004 actions=set_field:192.0.2.1->tun_dst,output:10
//! ```
//!
//! The mapping from inside address to node stays the operator's (or the orchestrator's)
//! business: the pool only names the inside address.
//!
//! # Rules a pool must satisfy (nothing changes when one fails; the error names the token)
//!
//! * NAME: 1-32 characters of `A-Z a-z 0-9 _ . -`, unique per bridge.
//! * PUBLIC_IP: an IPv4 unicast address (IPv6 pools are not supported), not inside
//!   INSIDE_CIDR.
//! * INSIDE_CIDR: `A.B.C.D/LEN`, IPv4, no host bits set. Every address of the prefix counts
//!   (network and broadcast included): the offset in the prefix *is* the block number.
//! * `--ports LO-HI`: 1 <= LO <= HI <= 65535 (default 1024-65535).
//! * Blocks of at least [`conntrack::MIN_BLOCK`] (64) ports: a `/16` over the default range
//!   would give each host less than one port and is refused.
//! * Two pools of a bridge with the same public address must not have overlapping port ranges
//!   (the owner of a port would be ambiguous).
//!
//! # Persistence
//!
//! Pools are saved with their bridge in the configuration database before a change is
//! acknowledged, and checked again like `add-snat-pool` at start. Flows name pools by name and
//! are resolved at translation time, so a flow may be added before its pool, and a pool may be
//! deleted under its flows (they then drop, see `xlate::snat_pool`).

use super::db;
use super::handlers::{no_such_bridge, State, Switch};
use crate::xlate::{SnatPool, SnatPoolStats, SnatPoolTable};
use conntrack::PortBlocks;
use control::protocol::{ErrorReply, Reply, SnatPoolDump};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

type Outcome = Result<Reply, ErrorReply>;

/// The default public port range.
pub const DEFAULT_PORTS: (u16, u16) = (1024, 65535);

/// One configured pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnatPoolConf {
    /// Pool name.
    pub name: String,
    /// The public address.
    pub public: Ipv4Addr,
    /// Inside prefix and port blocks.
    pub blocks: PortBlocks,
}

/// Configured pools: bridge -> name -> configuration.
pub(super) type SnatPoolConfigs = BTreeMap<String, BTreeMap<String, SnatPoolConf>>;

fn bad(token: &str, message: String) -> ErrorReply {
    ErrorReply::bad_token(token, message)
}

fn parse_ipv4(what: &str, text: &str) -> Result<Ipv4Addr, ErrorReply> {
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(bad(
            text,
            format!("{what} {text}: SNAT pools are IPv4 only (IPv6 is not supported)"),
        ));
    }
    text.parse()
        .map_err(|_| bad(text, format!("{what} {text:?}: not an IPv4 address")))
}

fn parse_public(text: &str) -> Result<Ipv4Addr, ErrorReply> {
    let a = parse_ipv4("public address", text)?;
    if a.octets()[0] == 0 || a.is_loopback() || a.is_multicast() || a.is_broadcast() {
        return Err(bad(
            text,
            format!("public address {a}: not a unicast host address"),
        ));
    }
    Ok(a)
}

fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), ErrorReply> {
    let Some((a, len)) = text.split_once('/') else {
        return Err(bad(
            text,
            format!("inside prefix {text:?}: expected A.B.C.D/LEN"),
        ));
    };
    let addr = parse_ipv4("inside prefix", a).map_err(|e| bad(text, e.message))?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32).ok_or_else(|| {
        bad(
            text,
            format!("inside prefix {text}: length {len:?} is not 0-32"),
        )
    })?;
    Ok((addr, len))
}

/// `LO-HI` (or a single port).
fn parse_ports(text: &str) -> Result<(u16, u16), ErrorReply> {
    let num = |s: &str| -> Result<u16, ErrorReply> {
        s.trim().parse::<u16>().map_err(|_| {
            bad(
                text,
                format!("port range {text:?}: {s:?} is not a port (1-65535)"),
            )
        })
    };
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(text)?;
            (p, p)
        }
    };
    if lo == 0 || lo > hi {
        return Err(bad(
            text,
            format!("port range {text}: must be LO-HI with 1 <= LO <= HI <= 65535"),
        ));
    }
    Ok((lo, hi))
}

/// Check an `add-snat-pool` against the bridge's other pools (`all`). Errors name the token.
pub(super) fn validate(
    all: &SnatPoolConfigs,
    bridge: &str,
    name: &str,
    public: &str,
    inside: &str,
    ports: Option<&str>,
) -> Result<SnatPoolConf, ErrorReply> {
    control::flow::nat::validate_pool_name(name).map_err(|e| bad(name, e))?;
    let others = all.get(bridge);
    if others.is_some_and(|m| m.contains_key(name)) {
        return Err(bad(
            name,
            format!("SNAT pool {name} already exists on bridge {bridge}"),
        ));
    }
    let public_ip = parse_public(public)?;
    let (net, len) = parse_cidr(inside)?;
    let (lo, hi) = match ports {
        Some(p) => parse_ports(p)?,
        None => DEFAULT_PORTS,
    };
    let blocks = PortBlocks::new(net, len, lo, hi).map_err(|e| match e {
        conntrack::BlockError::TooSmall { .. } => bad(
            inside,
            format!("SNAT pool {name}: {inside} over ports {lo}-{hi}: {e}"),
        ),
        conntrack::BlockError::Range { .. } => {
            bad(ports.unwrap_or(inside), format!("SNAT pool {name}: {e}"))
        }
        _ => bad(inside, format!("inside prefix {inside}: {e}")),
    })?;
    if blocks.index_of(public_ip).is_some() {
        return Err(bad(
            public,
            format!("public address {public_ip} is inside the pool's own prefix {inside}"),
        ));
    }
    for other in others.into_iter().flat_map(|m| m.values()) {
        let (olo, ohi) = other.blocks.range();
        if other.public == public_ip && lo <= ohi && olo <= hi {
            return Err(bad(
                public,
                format!(
                    "SNAT pool {} already hands out ports {olo}-{ohi} of {public_ip}: the \
                     ranges of one public address must not overlap",
                    other.name
                ),
            ));
        }
    }
    Ok(SnatPoolConf {
        name: name.to_string(),
        public: public_ip,
        blocks,
    })
}

impl SnatPoolConf {
    /// As the database keeps it.
    pub(super) fn to_db(&self) -> db::SnatPoolConfig {
        let (lo, hi) = self.blocks.range();
        db::SnatPoolConfig {
            name: self.name.clone(),
            public: self.public,
            inside: format!("{}/{}", self.blocks.network(), self.blocks.prefix_len()),
            ports: format!("{lo}-{hi}"),
        }
    }
}

/// A pool read from the database, checked like `add-snat-pool`.
pub(super) fn from_db(
    all: &SnatPoolConfigs,
    bridge: &str,
    c: &db::SnatPoolConfig,
) -> Result<SnatPoolConf, ErrorReply> {
    validate(
        all,
        bridge,
        &c.name,
        &c.public.to_string(),
        &c.inside,
        Some(&c.ports),
    )
}

/// The datapath's pool table for `confs`, keeping the counters of pools `old` already had with
/// the same layout.
pub(super) fn build_table<'a>(
    confs: impl IntoIterator<Item = &'a SnatPoolConf>,
    old: &SnatPoolTable,
) -> SnatPoolTable {
    let pools = confs
        .into_iter()
        .map(|c| {
            let stats = old
                .get(&c.name)
                .filter(|p| p.public == c.public && p.blocks == c.blocks)
                .map(|p| p.stats.clone())
                .unwrap_or_else(|| Arc::new(SnatPoolStats::default()));
            (
                c.name.clone(),
                SnatPool {
                    public: c.public,
                    blocks: c.blocks,
                    stats,
                },
            )
        })
        .collect();
    SnatPoolTable::new(pools)
}

impl State {
    /// Publish a new version of `bridge`'s pipeline whose pool table is built from the
    /// configuration. Returns the version.
    pub(super) fn publish_snat_pools(&self, bridge: &str) -> Result<u64, ErrorReply> {
        let br = self
            .bridges
            .get(bridge)
            .ok_or_else(|| no_such_bridge(bridge))?;
        let current = br.pipeline();
        let table = build_table(
            self.snat_pools
                .get(bridge)
                .into_iter()
                .flat_map(|m| m.values()),
            current.snat_pools(),
        );
        let mut edit = current.edit();
        edit.set_snat_pools(Arc::new(table));
        let next = edit.finish();
        let version = next.version();
        br.publish(next);
        Ok(version)
    }
}

impl Switch {
    pub(super) fn add_snat_pool(
        &self,
        bridge: &str,
        name: &str,
        public: &str,
        inside: &str,
        ports: Option<&str>,
    ) -> Outcome {
        let mut st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let conf = validate(&st.snat_pools, bridge, name, public, inside, ports)?;
        st.snat_pools
            .entry(bridge.to_string())
            .or_default()
            .insert(conf.name.clone(), conf.clone());
        if let Err(e) = self.persist(&st, None) {
            remove_conf(&mut st, bridge, name);
            return Err(e);
        }
        let version = st.publish_snat_pools(bridge)?;
        let (lo, hi) = conf.blocks.range();
        tracing::info!(
            bridge,
            pool = name,
            public = %conf.public,
            inside = %format!("{}/{}", conf.blocks.network(), conf.blocks.prefix_len()),
            ports = %format!("{lo}-{hi}"),
            block = conf.blocks.size(),
            version,
            "SNAT pool added"
        );
        Ok(Reply::SnatPools {
            pools: vec![dump(&st, bridge, &conf, None, None)],
        })
    }

    pub(super) fn del_snat_pool(&self, bridge: &str, name: &str) -> Outcome {
        let mut st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let Some(conf) = remove_conf(&mut st, bridge, name) else {
            return Err(bad(name, format!("no SNAT pool {name} on bridge {bridge}")));
        };
        if let Err(e) = self.persist(&st, None) {
            st.snat_pools
                .entry(bridge.to_string())
                .or_default()
                .insert(conf.name.clone(), conf);
            return Err(e);
        }
        let version = st.publish_snat_pools(bridge)?;
        tracing::info!(bridge, pool = name, version, "SNAT pool deleted");
        Ok(Reply::Done)
    }

    pub(super) fn dump_snat_pools(
        &self,
        bridge: &str,
        for_addr: Option<&str>,
        owner_of: Option<u16>,
    ) -> Outcome {
        let st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let addr = for_addr.map(|a| parse_ipv4("address", a)).transpose()?;
        let pools = st
            .snat_pools
            .get(bridge)
            .into_iter()
            .flat_map(|m| m.values())
            .map(|c| dump(&st, bridge, c, addr, owner_of))
            .collect();
        Ok(Reply::SnatPools { pools })
    }
}

fn remove_conf(st: &mut State, bridge: &str, name: &str) -> Option<SnatPoolConf> {
    let m = st.snat_pools.get_mut(bridge)?;
    let c = m.remove(name);
    if m.is_empty() {
        st.snat_pools.remove(bridge);
    }
    c
}

fn dump(
    st: &State,
    bridge: &str,
    c: &SnatPoolConf,
    addr: Option<Ipv4Addr>,
    port: Option<u16>,
) -> SnatPoolDump {
    let (lo, hi) = c.blocks.range();
    let p = st.bridges.get(bridge).map(|b| b.pipeline());
    let stats = p
        .as_ref()
        .and_then(|p| p.snat_pools().get(&c.name).map(|e| e.stats.clone()));
    let packets = |f: fn(&SnatPoolStats) -> &crate::flowtable::RuleStats| {
        stats
            .as_ref()
            .map_or(0, |s| f(s).packets.load(Ordering::Relaxed))
    };
    SnatPoolDump {
        name: c.name.clone(),
        public: c.public.to_string(),
        inside: format!("{}/{}", c.blocks.network(), c.blocks.prefix_len()),
        port_lo: lo,
        port_hi: hi,
        addresses: c.blocks.addresses(),
        block_size: c.blocks.size(),
        unused: c.blocks.unused().map(|(a, b)| format!("{a}-{b}")),
        block: addr.and_then(|a| {
            c.blocks
                .block_of(a)
                .map(|(first, last)| (a.to_string(), first, last))
        }),
        owner: port.and_then(|p| c.blocks.owner(p).map(|o| (p, o.to_string()))),
        nat_packets: packets(|s| &s.nat),
        owner_lookups: packets(|s| &s.owner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(
        all: &SnatPoolConfigs,
        args: [&str; 4],
        ports: Option<&str>,
        token: &str,
        text: &str,
    ) {
        let e = validate(all, "br0", args[0], args[1], args[2], ports)
            .expect_err(&format!("{args:?} {ports:?}"));
        assert_eq!(e.token.as_deref(), Some(token), "{}", e.message);
        assert!(e.message.contains(text), "{:?} lacks {text:?}", e.message);
    }

    #[test]
    fn validation_names_the_token() {
        let mut all = SnatPoolConfigs::new();
        let ok = validate(&all, "br0", "gw", "203.0.113.7", "10.1.0.0/24", None).unwrap();
        assert_eq!(ok.blocks.range(), DEFAULT_PORTS);
        assert_eq!(ok.blocks.size(), 252);
        all.entry("br0".into())
            .or_default()
            .insert("gw".into(), ok.clone());
        let a = |n, p, i| [n, p, i, ""];
        refused(
            &all,
            a("gw", "203.0.113.8", "10.2.0.0/24"),
            None,
            "gw",
            "already exists",
        );
        refused(
            &all,
            a("g/w", "203.0.113.8", "10.2.0.0/24"),
            None,
            "g/w",
            "not allowed",
        );
        refused(
            &all,
            a("x", "2001:db8::1", "10.2.0.0/24"),
            None,
            "2001:db8::1",
            "IPv4 only",
        );
        refused(
            &all,
            a("x", "1.2.3", "10.2.0.0/24"),
            None,
            "1.2.3",
            "not an IPv4",
        );
        refused(
            &all,
            a("x", "224.0.0.1", "10.2.0.0/24"),
            None,
            "224.0.0.1",
            "unicast",
        );
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.0"),
            None,
            "10.2.0.0",
            "A.B.C.D/LEN",
        );
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.0/33"),
            None,
            "10.2.0.0/33",
            "0-32",
        );
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.1/24"),
            None,
            "10.2.0.1/24",
            "host bits",
        );
        refused(
            &all,
            a("x", "10.2.0.5", "10.2.0.0/24"),
            None,
            "10.2.0.5",
            "inside the pool",
        );
        // A /16 over the default range: blocks far below 64 ports.
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.0/16"),
            None,
            "10.2.0.0/16",
            "minimum of 64",
        );
        // A /24 over a small range too.
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.0/24"),
            Some("2000-3000"),
            "10.2.0.0/24",
            "3 ports each",
        );
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.0/24"),
            Some("9-2"),
            "9-2",
            "LO-HI",
        );
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.0/24"),
            Some("0-99999"),
            "0-99999",
            "not a port",
        );
        refused(
            &all,
            a("x", "203.0.113.9", "10.2.0.0/24"),
            Some("a-b"),
            "a-b",
            "not a port",
        );
        // The same public address: port ranges must not overlap.
        refused(
            &all,
            a("x", "203.0.113.7", "10.2.0.0/26"),
            Some("60000-65535"),
            "203.0.113.7",
            "must not overlap",
        );
        let lower = validate(
            &all,
            "br0",
            "x",
            "203.0.113.7",
            "10.2.0.0/30",
            Some("1-1023"),
        )
        .unwrap();
        assert_eq!(lower.blocks.size(), 255);
        // Another bridge is another namespace of names.
        assert!(validate(&all, "br1", "gw", "203.0.113.7", "10.1.0.0/24", None).is_ok());
        // /32 and the database form round trip.
        let one = validate(
            &all,
            "br0",
            "one",
            "198.51.100.1",
            "10.9.9.9/32",
            Some("5000-5063"),
        )
        .unwrap();
        assert_eq!(
            one.blocks.block_of("10.9.9.9".parse().unwrap()),
            Some((5000, 5063))
        );
        let back = from_db(&SnatPoolConfigs::new(), "br0", &one.to_db()).unwrap();
        assert_eq!(back, one);
    }

    #[test]
    fn build_table_keeps_counters_of_unchanged_pools() {
        let all = SnatPoolConfigs::new();
        let a = validate(&all, "br0", "a", "203.0.113.7", "10.1.0.0/24", None).unwrap();
        let b = validate(&all, "br0", "b", "203.0.113.8", "10.2.0.0/24", None).unwrap();
        let t1 = build_table([&a, &b], &SnatPoolTable::default());
        t1.get("a").unwrap().stats.nat.hit(100, 1);
        let b2 = validate(&all, "br0", "b", "203.0.113.8", "10.2.0.0/25", None).unwrap();
        let t2 = build_table([&a, &b2], &t1);
        assert!(Arc::ptr_eq(
            &t1.get("a").unwrap().stats,
            &t2.get("a").unwrap().stats
        ));
        assert!(!Arc::ptr_eq(
            &t1.get("b").unwrap().stats,
            &t2.get("b").unwrap().stats
        ));
        assert_eq!(t2.get("b").unwrap().blocks.size(), 504);
    }
}
