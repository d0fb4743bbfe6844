//! The hot-path flow key extractor. See the parent module for what counts as malformed.
//!
//! Every header is taken as a fixed-size array reference (`&[u8; N]`) after one length check,
//! so the field reads that follow use constant offsets into an array of known size: they compile
//! to plain loads with no further bounds checks and cannot panic. Key words are composed in
//! registers and stored whole rather than through [`FlowKey::set`], which would re-derive each
//! field's location on every packet.

use super::ether::{ethertype, icmpv6, ipproto, len};
use super::{Layout, Malformed};
use crate::key::{loc, FlowKey, KEY_WORDS};
use control::flow::field::{nw_frag, Field, VLAN_PRESENT};

const fn word(f: Field) -> usize {
    loc(f).word as usize
}
const fn shift(f: Field) -> u32 {
    loc(f).shift as u32
}

// Word indices, derived from the contract in `key.rs` so a layout change there cannot silently
// desynchronise the parser; the shape assumptions the word composition relies on are checked at
// compile time just below.
const W_ETH_DST: usize = word(Field::EthDst);
const W_ETH_SRC: usize = word(Field::EthSrc);
const W_NW: usize = word(Field::Ipv4Src);
const W_IPV6_SRC: usize = word(Field::Ipv6Src);
const W_IPV6_DST: usize = word(Field::Ipv6Dst);
const W_IP: usize = word(Field::IpProto);
const W_TP: usize = word(Field::TcpSrc);
const W_SHA: usize = word(Field::ArpSha);
const W_THA: usize = word(Field::ArpTha);
const W_ND_TARGET: usize = word(Field::NdTarget);
/// First [`FlowKey`] word holding packet (not metadata) fields: [`extract`](super::extract)
/// rewrites every word from here to the end and none before it.
pub const FIRST_PACKET_WORD: usize = W_ETH_DST;

const _: () = {
    use Field::*;
    // Ethernet: MAC in the high 48 bits, type/TCI in the low 16.
    assert!(word(EthType) == W_ETH_DST && shift(EthDst) == 16 && shift(EthType) == 0);
    assert!(word(VlanTci) == W_ETH_SRC && shift(EthSrc) == 16 && shift(VlanTci) == 0);
    // IPv4 / ARP addresses: src high, dst low.
    assert!(word(Ipv4Dst) == W_NW && shift(Ipv4Src) == 32 && shift(Ipv4Dst) == 0);
    assert!(word(ArpSpa) == W_NW && word(ArpTpa) == W_NW);
    assert!(loc(Ipv6Src).width == 128 && loc(Ipv6Dst).width == 128);
    assert!(loc(NdTarget).width == 128 && W_ND_TARGET + 1 < KEY_WORDS);
    // IP word: proto | tos | ttl | frag | label.
    assert!(shift(IpProto) == 56 && shift(IpEcn) == 48 && shift(IpDscp) == 50);
    assert!(shift(IpTtl) == 40 && shift(IpFrag) == 32 && shift(Ipv6Label) == 0);
    assert!(word(IpTtl) == W_IP && word(IpFrag) == W_IP && word(Ipv6Label) == W_IP);
    // Transport word: ports | tcp_flags | arp_op; ICMP type/code in the low byte of the ports.
    assert!(shift(TcpSrc) == 48 && shift(TcpDst) == 32 && shift(TcpFlags) == 16);
    assert!(word(ArpOp) == W_TP && shift(ArpOp) == 0);
    assert!(shift(IcmpType) == 48 && shift(IcmpCode) == 32 && word(Icmpv6Type) == W_TP);
    assert!(shift(ArpSha) == 16 && shift(ArpTha) == 16);
    assert!(word(NdSll) == W_SHA && word(NdTll) == W_THA);
    // Every packet field lives at or after FIRST_PACKET_WORD, every metadata field before it.
    assert!(word(CtLabel) + 1 < FIRST_PACKET_WORD && word(Ipv6Dst) > FIRST_PACKET_WORD);
};

/// `N` bytes at `at`, or `None` if `s` is too short.
#[inline(always)]
fn chunk<const N: usize>(s: &[u8], at: usize) -> Option<&[u8; N]> {
    s.get(at..)?.first_chunk()
}

/// The rest of `s` from `at` (empty if `at` is past the end).
#[inline(always)]
fn rest(s: &[u8], at: usize) -> &[u8] {
    s.get(at..).unwrap_or_default()
}

// Big-endian loads at a (constant, after inlining) offset of a fixed-size header. Out-of-range
// reads yield 0 instead of panicking; every call site reads inside the array, which the
// compiler sees, so the fallback is folded away.
#[inline(always)]
fn be16<const N: usize>(h: &[u8; N], at: usize) -> u16 {
    chunk::<2>(h, at).map_or(0, |b| u16::from_be_bytes(*b))
}
#[inline(always)]
fn be32<const N: usize>(h: &[u8; N], at: usize) -> u32 {
    chunk::<4>(h, at).map_or(0, |b| u32::from_be_bytes(*b))
}
#[inline(always)]
fn be64<const N: usize>(h: &[u8; N], at: usize) -> u64 {
    chunk::<8>(h, at).map_or(0, |b| u64::from_be_bytes(*b))
}

/// Low 16 bits cleared: turns an 8-byte load that starts at a MAC address into "MAC in the high
/// 48 bits", the key's layout for every MAC field.
const MAC_MASK: u64 = !0xffff;

/// See [`super::extract`].
#[inline]
pub fn extract(frame: &[u8], key: &mut FlowKey) -> Result<Layout, Malformed> {
    // Packet words are overwritten wholesale so a reused key never leaks a previous packet's
    // fields (an ARP's SHA into an IPv6 packet's ND SLL, say).
    for w in key.w.iter_mut().skip(FIRST_PACKET_WORD) {
        *w = 0;
    }

    let eth: &[u8; len::ETH] = frame.first_chunk().ok_or(Malformed::TruncatedEthernet)?;
    let w_dst = be64(eth, 0) & MAC_MASK;
    let mut w_src = be64(eth, 6) & MAC_MASK;
    let mut ty = be16(eth, 12);
    let mut l3 = len::ETH;
    let mut n_vlans = 0u8;
    if ethertype::is_vlan(ty) {
        let tag: &[u8; len::VLAN] = chunk(frame, l3).ok_or(Malformed::TruncatedVlan)?;
        // The key carries the outer tag only; the present bit doubles as OVS's CFI marker.
        w_src |= u64::from(be16(tag, 0) | VLAN_PRESENT);
        ty = be16(tag, 2);
        l3 += len::VLAN;
        n_vlans = 1;
        if ethertype::is_vlan(ty) {
            let tag: &[u8; len::VLAN] = chunk(frame, l3).ok_or(Malformed::TruncatedVlan)?;
            ty = be16(tag, 2);
            l3 += len::VLAN;
            n_vlans = 2;
        }
    }
    if ty < ethertype::MIN {
        ty = ethertype::NONE;
    }
    key.w[W_ETH_DST] = w_dst | u64::from(ty);
    key.w[W_ETH_SRC] = w_src;

    let l4 = match ty {
        ethertype::IPV4 => ipv4(frame, l3, key)?,
        ethertype::IPV6 => ipv6(frame, l3, key)?,
        ethertype::ARP | ethertype::RARP => {
            arp(frame, l3, key)?;
            Layout::NONE
        }
        _ => Layout::NONE,
    };
    Ok(Layout {
        n_vlans,
        // At most 14 + 2 * 4: always fits.
        l3: l3 as u16,
        l4,
    })
}

#[inline(always)]
fn arp(frame: &[u8], l3: usize, key: &mut FlowKey) -> Result<(), Malformed> {
    let a: &[u8; len::ARP] = chunk(frame, l3).ok_or(Malformed::BadArp)?;
    // htype Ethernet, ptype IPv4, hlen 6, plen 4: the only shape the key has room for.
    if be32(a, 0) != 0x0001_0800 || be16(a, 4) != 0x0604 {
        return Err(Malformed::BadArp);
    }
    key.w[W_TP] = u64::from(be16(a, 6));
    key.w[W_SHA] = be64(a, 8) & MAC_MASK;
    key.w[W_NW] = (u64::from(be32(a, 14)) << 32) | u64::from(be32(a, 24));
    key.w[W_THA] = be64(a, 18) & MAC_MASK;
    Ok(())
}

#[inline(always)]
fn ip_word(proto: u8, tos: u8, ttl: u8, frag: u8, label: u32) -> u64 {
    (u64::from(proto) << 56)
        | (u64::from(tos) << 48)
        | (u64::from(ttl) << 40)
        | (u64::from(frag) << 32)
        | u64::from(label)
}

/// Returns the L4 offset (`Layout::NONE` for later fragments).
#[inline(always)]
fn ipv4(frame: &[u8], l3: usize, key: &mut FlowKey) -> Result<u16, Malformed> {
    let ip = rest(frame, l3);
    let h: &[u8; len::IPV4] = ip.first_chunk().ok_or(Malformed::BadIpv4)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(be16(h, 2));
    if h[0] >> 4 != 4 || ihl < len::IPV4 || total < ihl || total > ip.len() {
        return Err(Malformed::BadIpv4);
    }
    let frag_field = be16(h, 6);
    let offset = frag_field & 0x1fff;
    let more = frag_field & 0x2000 != 0;
    let frag = if offset != 0 {
        nw_frag::ANY | nw_frag::LATER
    } else if more {
        nw_frag::ANY
    } else {
        0
    };
    let proto = h[9];
    key.w[W_NW] = be64(h, 12);
    key.w[W_IP] = ip_word(proto, h[1], h[8], frag, 0);
    if offset != 0 {
        return Ok(Layout::NONE);
    }
    // The payload ends at the total length, not the frame end: trailing bytes are Ethernet
    // padding and must not be mistaken for transport header bytes.
    let payload = ip.get(ihl..total).unwrap_or_default();
    transport(proto, payload, false, key)?;
    // l3 <= 22 and ihl <= 60.
    Ok((l3 + ihl) as u16)
}

/// Returns the L4 offset (`Layout::NONE` for non-first fragments).
#[inline(always)]
fn ipv6(frame: &[u8], l3: usize, key: &mut FlowKey) -> Result<u16, Malformed> {
    let ip = rest(frame, l3);
    let h: &[u8; len::IPV6] = ip.first_chunk().ok_or(Malformed::BadIpv6)?;
    let vtf = be32(h, 0);
    let plen = usize::from(be16(h, 4));
    let Some(mut p) = ip.get(len::IPV6..len::IPV6 + plen) else {
        return Err(Malformed::BadIpv6);
    };
    if vtf >> 28 != 6 {
        return Err(Malformed::BadIpv6);
    }
    key.w[W_IPV6_SRC] = be64(h, 8);
    key.w[W_IPV6_SRC + 1] = be64(h, 16);
    key.w[W_IPV6_DST] = be64(h, 24);
    key.w[W_IPV6_DST + 1] = be64(h, 32);
    let tclass = (vtf >> 20) as u8;
    let label = vtf & 0x000f_ffff;
    let hlim = h[7];

    let mut nh = h[6];
    let mut l4 = l3 + len::IPV6;
    let mut frag = 0u8;
    // Each extension header consumes at least 8 bytes of a payload bounded by `plen`, so the
    // walk ends.
    loop {
        let ext_len = match nh {
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS => {
                let e: &[u8; 2] = p.first_chunk().ok_or(Malformed::BadIpv6Ext)?;
                nh = e[0];
                (usize::from(e[1]) + 1) * 8
            }
            ipproto::AH => {
                let e: &[u8; 2] = p.first_chunk().ok_or(Malformed::BadIpv6Ext)?;
                nh = e[0];
                (usize::from(e[1]) + 2) * 4
            }
            ipproto::FRAGMENT => {
                let e: &[u8; 8] = p.first_chunk().ok_or(Malformed::BadIpv6Ext)?;
                nh = e[0];
                // Any fragment header marks a fragment, even an "atomic" one (offset 0, no
                // more fragments): the header is there and a reassembler would see it.
                frag |= nw_frag::ANY;
                if be16(e, 2) & 0xfff8 != 0 {
                    frag |= nw_frag::LATER;
                }
                8
            }
            _ => break,
        };
        p = p.get(ext_len..).ok_or(Malformed::BadIpv6Ext)?;
        l4 += ext_len;
        if frag & nw_frag::LATER != 0 {
            break;
        }
    }
    key.w[W_IP] = ip_word(nh, tclass, hlim, frag, label);
    if frag & nw_frag::LATER != 0 {
        return Ok(Layout::NONE);
    }
    // A chain of extension headers could in principle push the offset past what a u16 holds.
    let l4 = u16::try_from(l4)
        .ok()
        .filter(|&o| o != Layout::NONE)
        .ok_or(Malformed::BadIpv6Ext)?;
    transport(nh, p, true, key)?;
    Ok(l4)
}

/// Parse the transport header at the start of `p` (the IP payload, already trimmed to the IP
/// length). Unknown protocols are not an error.
#[inline(always)]
fn transport(proto: u8, p: &[u8], v6: bool, key: &mut FlowKey) -> Result<(), Malformed> {
    match proto {
        ipproto::TCP => {
            let h: &[u8; len::TCP] = p.first_chunk().ok_or(Malformed::BadTcp)?;
            let off_flags = be16(h, 12);
            let hlen = usize::from(off_flags >> 12) * 4;
            if hlen < len::TCP || hlen > p.len() {
                return Err(Malformed::BadTcp);
            }
            key.w[W_TP] = (u64::from(be32(h, 0)) << 32) | (u64::from(off_flags & 0x0fff) << 16);
        }
        ipproto::UDP => {
            let h: &[u8; len::UDP] = p.first_chunk().ok_or(Malformed::BadUdp)?;
            key.w[W_TP] = u64::from(be32(h, 0)) << 32;
        }
        ipproto::SCTP => {
            let h: &[u8; len::SCTP] = p.first_chunk().ok_or(Malformed::BadSctp)?;
            key.w[W_TP] = u64::from(be32(h, 0)) << 32;
        }
        ipproto::ICMP if !v6 => {
            let h: &[u8; len::ICMPV4] = p.first_chunk().ok_or(Malformed::BadIcmp)?;
            key.w[W_TP] = icmp_word(h[0], h[1]);
        }
        ipproto::ICMPV6 if v6 => {
            let h: &[u8; len::ICMPV6] = p.first_chunk().ok_or(Malformed::BadIcmp)?;
            key.w[W_TP] = icmp_word(h[0], h[1]);
            if (h[0] == icmpv6::ND_NS || h[0] == icmpv6::ND_NA) && h[1] == 0 {
                nd(h[0], p, key)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[inline(always)]
fn icmp_word(ty: u8, code: u8) -> u64 {
    (u64::from(ty) << 48) | (u64::from(code) << 32)
}

/// Neighbor solicitation / advertisement: target address and the link-layer address option
/// that goes with the message type. Kept out of line: ND is rare next to TCP/UDP.
#[inline(never)]
fn nd(ty: u8, p: &[u8], key: &mut FlowKey) -> Result<(), Malformed> {
    let h: &[u8; len::ND] = p.first_chunk().ok_or(Malformed::BadNd)?;
    key.w[W_ND_TARGET] = be64(h, 8);
    key.w[W_ND_TARGET + 1] = be64(h, 16);
    let (want, dst) = if ty == icmpv6::ND_NS {
        (icmpv6::OPT_SLL, W_SHA)
    } else {
        (icmpv6::OPT_TLL, W_THA)
    };
    let mut seen = false;
    let mut opts = rest(p, len::ND);
    while let Some(&[opt_ty, opt_len]) = opts.first_chunk::<2>() {
        let n = usize::from(opt_len) * 8;
        // A zero length would loop forever (RFC 4861 says drop); an overrun is a lie.
        if n == 0 || n > opts.len() {
            return Err(Malformed::BadNd);
        }
        if opt_ty == want && n == 8 {
            // Two conflicting link-layer addresses: no way to tell which one to believe.
            if seen {
                return Err(Malformed::BadNd);
            }
            seen = true;
            if let Some(o) = opts.first_chunk::<8>() {
                key.w[dst] = be64(o, 0) << 16;
            }
        }
        opts = rest(opts, n);
    }
    // A single dangling byte cannot be an option.
    if !opts.is_empty() {
        return Err(Malformed::BadNd);
    }
    Ok(())
}
