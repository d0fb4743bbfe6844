//! NAT: the request a `ct(nat(...))` action carries, the rewrite reported for each packet,
//! and the candidate translations the allocator tries.
//!
//! The table ([`crate::table`]) owns the binding (the reply tuple stored with the connection
//! *is* the translation) and the collision checks; this module only produces, in a
//! deterministic order, the translated tuples to try, and turns a stored binding into the
//! header rewrite of one packet. See the crate documentation for the design.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::tuple::{proto, Tuple};

/// Which side of the original direction NAT translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// Source NAT: the original direction's source (address, port or ICMP id) changes.
    Src,
    /// Destination NAT: the original direction's destination changes.
    Dst,
}

/// A `ct(nat(...))` request, mirroring the flow language's `NatSpec` (the datapath converts;
/// this crate does not depend on `control`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatRequest {
    /// `src`/`dst`; `None` is a bare `nat`: apply an existing binding, create none.
    pub kind: Option<NatKind>,
    /// Address range, inclusive (`None`: keep the address).
    pub addrs: Option<(IpAddr, IpAddr)>,
    /// Port range, inclusive (`None`: keep the port, change it only to avoid a collision
    /// under SNAT). For ICMP queries the range applies to the identifier.
    pub ports: Option<(u16, u16)>,
    /// Start the port search at a random point (else at a keyed hash of the tuple).
    pub random: bool,
    /// Choose the address from the client address only, so one client keeps one address.
    pub persistent: bool,
    /// Hash-based start (the default; accepted for compatibility, same as no flag).
    pub hash: bool,
    /// Shared-address SNAT with deterministic port blocks (`nat(src=pool:NAME)`): the port
    /// range tried is the block of the connection's source address in this layout (which
    /// replaces `ports`); a source outside the layout's inside prefix gets no translation
    /// (`nat_exhausted`). Source NAT of IPv4 only. See [`crate::blocks`].
    pub block: Option<crate::blocks::PortBlocks>,
}

impl NatRequest {
    /// Bare `nat`: apply the connection's binding if it has one.
    pub fn bare() -> Self {
        NatRequest::default()
    }

    /// SNAT to one address, ports kept unless they collide.
    pub fn snat(addr: IpAddr) -> Self {
        NatRequest {
            kind: Some(NatKind::Src),
            addrs: Some((addr, addr)),
            ..NatRequest::default()
        }
    }

    /// DNAT to one address (and optionally one port).
    pub fn dnat(addr: IpAddr, port: Option<u16>) -> Self {
        NatRequest {
            kind: Some(NatKind::Dst),
            addrs: Some((addr, addr)),
            ports: port.map(|p| (p, p)),
            ..NatRequest::default()
        }
    }

    /// The same request with a port range.
    pub fn with_ports(self, min: u16, max: u16) -> Self {
        NatRequest {
            ports: Some((min, max)),
            ..self
        }
    }
}

/// What the datapath must rewrite in one packet's headers. `None` fields stay as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rewrite {
    /// New source address, and new source port if it changes (TCP/UDP only).
    pub src: Option<(IpAddr, Option<u16>)>,
    /// New destination address, and new destination port if it changes (TCP/UDP only).
    pub dst: Option<(IpAddr, Option<u16>)>,
    /// New ICMP query identifier.
    pub icmp_id: Option<u16>,
}

impl Rewrite {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.src.is_none() && self.dst.is_none() && self.icmp_id.is_none()
    }

    /// The rewrite that turns a packet keyed `from` into one keyed `to` (same connection,
    /// same direction). `None` if they are equal.
    pub(crate) fn between(from: &Tuple, to: &Tuple) -> Option<Rewrite> {
        let icmp = is_icmp(from.proto);
        let ports = has_ports(from.proto);
        let side = |a: IpAddr, pa: u16, b: IpAddr, pb: u16| {
            let port = (ports && pa != pb).then_some(pb);
            (a != b || port.is_some()).then_some((b, port))
        };
        let r = Rewrite {
            src: side(from.src, from.sport, to.src, to.sport),
            dst: side(from.dst, from.dport, to.dst, to.dport),
            icmp_id: (icmp && from.sport != to.sport).then_some(to.sport),
        };
        (!r.is_empty()).then_some(r)
    }

    /// Addresses only (the outer header of an ICMP error has no ports).
    pub(crate) fn addresses_only(from: &Tuple, to: &Tuple) -> Option<Rewrite> {
        let r = Rewrite {
            src: (from.src != to.src).then_some((to.src, None)),
            dst: (from.dst != to.dst).then_some((to.dst, None)),
            icmp_id: None,
        };
        (!r.is_empty()).then_some(r)
    }
}

/// The result of [`crate::Conntrack::process_nat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatVerdict {
    /// Tracking result, as [`crate::Conntrack::process`] gives it (plus `+snat`/`+dnat`).
    pub verdict: crate::Verdict,
    /// Rewrite of this packet's headers (for ICMP errors: the outer IP header's addresses).
    pub rewrite: Option<Rewrite>,
    /// For ICMP errors: rewrite of the quoted (inner) packet's headers.
    pub inner_rewrite: Option<Rewrite>,
}

pub(crate) fn is_icmp(p: u8) -> bool {
    p == proto::ICMP || p == proto::ICMPV6
}

/// Protocols whose ports NAT may change (ICMP ids are handled apart).
pub(crate) fn has_ports(p: u8) -> bool {
    p == proto::TCP || p == proto::UDP
}

/// Upper bound on candidate tuples tried for one connection. Every try takes one shard
/// lock; the bound keeps an exhausted range from costing more than a few milliseconds
/// (a full 64k port range with one address is tried completely).
pub(crate) const MAX_ATTEMPTS: u64 = 1 << 17;

fn addr_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn u128_addr(v6: bool, x: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(x))
    } else {
        IpAddr::V4(Ipv4Addr::from(x as u32))
    }
}

/// Why a request cannot apply to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadRequest {
    /// Address family of the range differs from the packet's, or min > max.
    Range,
    /// A port-block request for a source outside the blocks' inside prefix: no translation
    /// exists for it (reported as exhaustion).
    NoBlock,
}

/// The ordered candidate translations of one connection.
#[derive(Debug)]
pub(crate) struct Candidates {
    orig: Tuple,
    kind: NatKind,
    v6: bool,
    addr_base: u128,
    addr_count: u128,
    addr_start: u128,
    /// Port (or ICMP id) ranges tried in order: `(min, count, start offset)`.
    port_ranges: [(u16, u32, u32); 2],
    n_port_ranges: usize,
    /// DNAT of TCP/UDP: start offset of the source-port fallback in 1024-65535.
    src_fallback: Option<u32>,
}

impl Candidates {
    /// `seed`: the table's secret; `rand`: a fresh random word (used if `random`).
    pub(crate) fn new(
        orig: &Tuple,
        req: &NatRequest,
        kind: NatKind,
        seed: u64,
        rand: u64,
    ) -> Result<Candidates, BadRequest> {
        let v6 = orig.src.is_ipv6();
        let (own_addr, own_port) = match kind {
            NatKind::Src => (orig.src, orig.sport),
            NatKind::Dst => (orig.dst, orig.dport),
        };
        let (amin, amax) = req.addrs.unwrap_or((own_addr, own_addr));
        if amin.is_ipv6() != v6 || amax.is_ipv6() != v6 {
            return Err(BadRequest::Range);
        }
        let (lo, hi) = (addr_u128(amin), addr_u128(amax));
        if lo > hi {
            return Err(BadRequest::Range);
        }
        let addr_count = (hi - lo).saturating_add(1);
        let keyed = |x: u64| mix(x ^ seed);
        let addr_key = if req.persistent {
            // One client, one address, whatever it connects to.
            keyed(addr_u128(orig.src) as u64 ^ (addr_u128(orig.src) >> 64) as u64)
        } else {
            keyed(orig.hash64() ^ 0x5bd1_e995)
        };
        let addr_start = u128::from(addr_key) % addr_count;
        let port_key = if req.random {
            mix(rand ^ seed)
        } else {
            keyed(orig.hash64())
        };
        let icmp = is_icmp(orig.proto);
        let ports = icmp || has_ports(orig.proto);
        let req_ports = match (&req.block, orig.src) {
            (None, _) => req.ports,
            (Some(b), IpAddr::V4(src)) if kind == NatKind::Src => {
                Some(b.block_of(src).ok_or(BadRequest::NoBlock)?)
            }
            (Some(_), _) => return Err(BadRequest::Range),
        };
        // ICMP: the id is the "port", and it sits in `sport` in both directions; DNAT changes
        // it only as a fallback (a DNAT'd echo keeps its id unless it collides).
        let mut port_ranges = [(0u16, 0u32, 0u32); 2];
        let n;
        let own = if icmp { orig.sport } else { own_port };
        match req_ports {
            Some((pmin, pmax)) if ports && pmin <= pmax => {
                let count = u32::from(pmax - pmin) + 1;
                port_ranges[0] = (pmin, count, (port_key % u64::from(count)) as u32);
                n = 1;
            }
            Some(_) if ports => return Err(BadRequest::Range),
            _ => {
                // Keep the port first; on collision SNAT (and ICMP either way) moves to the
                // ephemeral range, as Open vSwitch does. DNAT never changes the service port
                // it was not asked to change.
                port_ranges[0] = (own, 1, 0);
                n = if ports && (kind == NatKind::Src || icmp) {
                    let (emin, count) = if icmp { (0, 65536) } else { (1024, 64512) };
                    port_ranges[1] = (emin, count, (port_key % u64::from(count)) as u32);
                    2
                } else {
                    1
                };
            }
        }
        Ok(Candidates {
            orig: *orig,
            kind,
            v6,
            addr_base: lo,
            addr_count,
            addr_start,
            port_ranges,
            n_port_ranges: n,
            // DNAT fallback (as Linux's implicit source remap): two clients that share an
            // address and port (or one client reaching one backend through two public
            // addresses) collide on the backend side; the second gets another source port.
            src_fallback: (kind == NatKind::Dst && has_ports(orig.proto))
                .then_some((mix(port_key ^ 0x2545_f491) % 64512) as u32),
        })
    }

    /// All candidate reply tuples in order (bounded by [`MAX_ATTEMPTS`]): for each address
    /// from the hashed start, each port range, each port from its start (linear probing);
    /// then, for DNAT of TCP/UDP, the first choice with each source port of 1024-65535.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Tuple> + '_ {
        let first = self.primary().next();
        let fallback = self
            .src_fallback
            .zip(first)
            .into_iter()
            .flat_map(|(start, r)| {
                (0..64512u32).map(move |k| Tuple {
                    dport: (1024 + (start + k) % 64512) as u16,
                    ..r
                })
            });
        self.primary().chain(fallback).take(MAX_ATTEMPTS as usize)
    }

    fn primary(&self) -> impl Iterator<Item = Tuple> + '_ {
        let addrs = self.addr_count.min(u128::from(MAX_ATTEMPTS)) as u64;
        (0..addrs)
            .flat_map(move |ai| {
                // `(start + ai) % count` without overflow (ranges may span all of IPv6).
                let (ai, left) = (u128::from(ai), self.addr_count - self.addr_start);
                let off = if ai < left {
                    self.addr_start + ai
                } else {
                    ai - left
                };
                let a = self.addr_base + off;
                let addr = u128_addr(self.v6, a);
                self.port_ranges[..self.n_port_ranges].iter().flat_map(
                    move |&(min, count, start)| {
                        (0..count)
                            .map(move |k| (addr, (u32::from(min) + (start + k) % count) as u16))
                    },
                )
            })
            .map(|(addr, port)| self.reply_for(addr, port))
    }

    /// The reply tuple when the translated side becomes `addr:port`.
    fn reply_for(&self, addr: IpAddr, port: u16) -> Tuple {
        let mut t = self.orig;
        let icmp = is_icmp(t.proto);
        let ports = has_ports(t.proto);
        match self.kind {
            NatKind::Src => {
                t.src = addr;
                if ports || icmp {
                    t.sport = port;
                }
            }
            NatKind::Dst => {
                t.dst = addr;
                if icmp {
                    t.sport = port;
                } else if ports {
                    t.dport = port;
                }
            }
        }
        // `t` is the translated original; the stored reply is its reverse.
        t.reverse()
    }
}

/// A strong 64-bit mix (splitmix64 finaliser).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A per-process random word (from the standard library's randomly keyed hasher).
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Tuple {
        Tuple {
            zone: 0,
            src: "10.0.0.1".parse().unwrap(),
            dst: "8.8.8.8".parse().unwrap(),
            sport: 5555,
            dport: 53,
            proto: proto::UDP,
        }
    }

    #[test]
    fn snat_keeps_port_first_then_ephemeral() {
        let req = NatRequest::snat("1.1.1.1".parse().unwrap());
        let c = Candidates::new(&t(), &req, NatKind::Src, 1, 2).unwrap();
        let v: Vec<Tuple> = c.iter().take(3).collect();
        assert_eq!(v[0].dst, req.addrs.unwrap().0);
        assert_eq!(v[0].dport, 5555);
        assert_eq!(v[0].src, t().dst);
        assert!(v[1].dport >= 1024);
        assert_eq!(c.iter().count(), 1 + 64512);
    }

    #[test]
    fn dnat_without_ports_tries_addresses_then_source_ports() {
        let mut req = NatRequest::dnat("10.1.0.1".parse().unwrap(), None);
        req.addrs = Some(("10.1.0.1".parse().unwrap(), "10.1.0.4".parse().unwrap()));
        let c = Candidates::new(&t(), &req, NatKind::Dst, 1, 2).unwrap();
        let v: Vec<Tuple> = c.iter().take(4).collect();
        assert!(v.iter().all(|r| r.sport == 53 && r.dport == 5555));
        // Then the source-port fallback.
        assert_eq!(c.iter().count(), 4 + 64512);
        let v6 = NatRequest::snat("2001:db8::1".parse().unwrap());
        assert!(Candidates::new(&t(), &v6, NatKind::Src, 0, 0).is_err());
    }

    #[test]
    fn whole_address_space_ranges_do_not_overflow() {
        let mut t6 = t();
        t6.src = "fd00::1".parse().unwrap();
        t6.dst = "fd00::2".parse().unwrap();
        let req = NatRequest {
            kind: Some(NatKind::Src),
            addrs: Some((
                "::".parse().unwrap(),
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
            )),
            ..NatRequest::default()
        };
        for seed in 0..50 {
            let c = Candidates::new(&t6, &req, NatKind::Src, seed, 0).unwrap();
            assert!(c.iter().take(3).all(|r| r.dst.is_ipv6()));
        }
        let v4 = NatRequest {
            addrs: Some((
                "0.0.0.0".parse().unwrap(),
                "255.255.255.255".parse().unwrap(),
            )),
            ..req
        };
        let c = Candidates::new(&t(), &v4, NatKind::Src, u64::MAX, 0).unwrap();
        assert_eq!(c.iter().take(1000).count(), 1000);
    }

    #[test]
    fn dnat_falls_back_to_source_ports() {
        let req = NatRequest::dnat("10.1.0.1".parse().unwrap(), Some(80));
        let c = Candidates::new(&t(), &req, NatKind::Dst, 1, 2).unwrap();
        let v: Vec<Tuple> = c.iter().take(3).collect();
        assert_eq!(
            (v[0].src, v[0].sport, v[0].dport),
            (req.addrs.unwrap().0, 80, 5555)
        );
        assert!(v[1..].iter().all(|r| r.sport == 80 && r.dport >= 1024));
        assert_eq!(c.iter().count(), 1 + 64512);
    }

    #[test]
    fn rewrite_between() {
        let a = t();
        let mut b = a;
        b.src = "1.1.1.1".parse().unwrap();
        let r = Rewrite::between(&a, &b).unwrap();
        assert_eq!(r.src, Some((b.src, None)));
        assert_eq!(r.dst, None);
        assert_eq!(Rewrite::between(&a, &a), None);
    }
}
