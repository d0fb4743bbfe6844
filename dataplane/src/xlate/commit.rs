//! Output commit: the minimal datapath rewrites that turn the committed key into the current one.

use super::dpaction::{DpAction, Mac};
use crate::key::FlowKey;
use control::flow::field::{nw_frag, Field, VLAN_PRESENT};

fn mac(v: u128) -> Mac {
    let b = (v as u64).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn v16(v: u128) -> [u8; 16] {
    v.to_be_bytes()
}

/// `Some(new)` if the field differs between `c` (committed) and `k` (current).
#[inline]
fn diff(c: &FlowKey, k: &FlowKey, f: Field) -> Option<u128> {
    let n = k.get(f);
    (c.get(f) != n).then_some(n)
}

/// Append to `out` the actions that rewrite a frame described by `c` into one described by `k`;
/// returns how many were appended. `tpid` is the TPID for a tag that `k` has and `c` lacks;
/// `repush` forces pop+push when both have a tag (a pop then push happened in between).
pub(super) fn commit(
    c: &FlowKey,
    k: &FlowKey,
    tpid: u16,
    repush: bool,
    out: &mut Vec<DpAction>,
) -> usize {
    let start = out.len();
    // Fast exit: no header or tunnel word changed (metadata changes emit nothing).
    if c.w[0..2] == k.w[0..2] && c.w[16..] == k.w[16..] && !repush {
        return 0;
    }
    use Field::*;

    if c.w[0..2] != k.w[0..2] {
        out.push(DpAction::SetTunnel {
            id: k.get(TunId) as u64,
            src: k.get(TunSrc) as u32,
            dst: k.get(TunDst) as u32,
        });
    }

    let (src, dst) = (diff(c, k, EthSrc), diff(c, k, EthDst));
    if src.is_some() || dst.is_some() {
        out.push(DpAction::SetEth {
            src: src.map(mac),
            dst: dst.map(mac),
        });
    }

    let (ct, kt) = (c.get(VlanTci) as u16, k.get(VlanTci) as u16);
    let wire = kt & !VLAN_PRESENT;
    match (ct & VLAN_PRESENT != 0, kt & VLAN_PRESENT != 0) {
        (true, false) => out.push(DpAction::PopVlan),
        (false, true) => out.push(DpAction::PushVlan { tpid, tci: wire }),
        (true, true) if repush => {
            out.push(DpAction::PopVlan);
            out.push(DpAction::PushVlan { tpid, tci: wire });
        }
        (true, true) if ct != kt => out.push(DpAction::SetVlanTci(wire)),
        _ => {}
    }

    let eth_type = k.get(EthType);
    let proto = k.get(IpProto) as u8;
    // Later fragments carry no L4 header: nothing to rewrite there.
    let l4 = k.get(IpFrag) as u8 & nw_frag::LATER == 0;
    let tos = |x: &FlowKey| ((x.get(IpDscp) << 2) | x.get(IpEcn)) as u8;
    match eth_type {
        0x0800 => {
            let (src, dst, ttl) = (diff(c, k, Ipv4Src), diff(c, k, Ipv4Dst), diff(c, k, IpTtl));
            let tos = (tos(c) != tos(k)).then(|| tos(k));
            if src.is_some() || dst.is_some() || ttl.is_some() || tos.is_some() {
                out.push(DpAction::SetIpv4 {
                    src: src.map(|v| v as u32),
                    dst: dst.map(|v| v as u32),
                    tos,
                    ttl: ttl.map(|v| v as u8),
                });
            }
            if l4 {
                commit_l4(c, k, proto, 1, out);
            }
        }
        0x86dd => {
            if let Some(v) = diff(c, k, Ipv6Src) {
                out.push(DpAction::SetIpv6Src(v16(v)));
            }
            if let Some(v) = diff(c, k, Ipv6Dst) {
                out.push(DpAction::SetIpv6Dst(v16(v)));
            }
            let (hlim, label) = (diff(c, k, IpTtl), diff(c, k, Ipv6Label));
            let tc = (tos(c) != tos(k)).then(|| tos(k));
            if tc.is_some() || hlim.is_some() || label.is_some() {
                out.push(DpAction::SetIpv6 {
                    tc,
                    hlim: hlim.map(|v| v as u8),
                    label: label.map(|v| v as u32),
                });
            }
            if l4 {
                commit_l4(c, k, proto, 58, out);
            }
            // Neighbor discovery (ICMPv6 NS/NA, code 0).
            let ty = k.get(Icmpv6Type);
            if l4 && proto == 58 && (ty == 135 || ty == 136) {
                if let Some(v) = diff(c, k, NdTarget) {
                    out.push(DpAction::SetNdTarget(v16(v)));
                }
                let (sll, tll) = (diff(c, k, NdSll), diff(c, k, NdTll));
                if sll.is_some() || tll.is_some() {
                    out.push(DpAction::SetNd {
                        sll: sll.map(mac),
                        tll: tll.map(mac),
                    });
                }
            }
        }
        0x0806 | 0x8035 => {
            let (op, spa, tpa) = (diff(c, k, ArpOp), diff(c, k, ArpSpa), diff(c, k, ArpTpa));
            if op.is_some() || spa.is_some() || tpa.is_some() {
                out.push(DpAction::SetArp {
                    op: op.map(|v| v as u16),
                    spa: spa.map(|v| v as u32),
                    tpa: tpa.map(|v| v as u32),
                });
            }
            let (sha, tha) = (diff(c, k, ArpSha), diff(c, k, ArpTha));
            if sha.is_some() || tha.is_some() {
                out.push(DpAction::SetArpHw {
                    sha: sha.map(mac),
                    tha: tha.map(mac),
                });
            }
        }
        _ => {}
    }
    out.len() - start
}

/// Ports for TCP/UDP/SCTP, type/code for ICMP (`icmp_proto` is 1 for IPv4, 58 for IPv6).
fn commit_l4(c: &FlowKey, k: &FlowKey, proto: u8, icmp_proto: u8, out: &mut Vec<DpAction>) {
    use Field::*;
    match proto {
        6 | 17 | 132 => {
            let (src, dst) = (diff(c, k, TcpSrc), diff(c, k, TcpDst));
            if src.is_some() || dst.is_some() {
                out.push(DpAction::SetL4Ports {
                    proto,
                    src: src.map(|v| v as u16),
                    dst: dst.map(|v| v as u16),
                });
            }
        }
        p if p == icmp_proto => {
            let (ty, code) = (diff(c, k, IcmpType), diff(c, k, IcmpCode));
            if ty.is_some() || code.is_some() {
                out.push(DpAction::SetIcmp {
                    ty: ty.map(|v| v as u8),
                    code: code.map(|v| v as u8),
                });
            }
        }
        _ => {}
    }
}
