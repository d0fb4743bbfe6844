//! Build a frame from a flow match, for `swctl trace` (`in_port=5,tcp,nw_dst=10.0.0.2,...`).
//!
//! The contract: [`frame_from_match`] returns a well-formed frame (every checksum right, so a
//! packet handed to a real host through an `output` would be accepted) whose extracted key
//! agrees with the match on every bit the match pins. Masked constraints contribute their value
//! bits; the bits a mask leaves free, and fields the match does not mention, take defaults:
//!
//! | field | default |
//! |---|---|
//! | `eth_src` / `eth_dst` | `00:00:00:00:00:01` / `00:00:00:00:00:02` |
//! | `eth_type` | inferred from the other fields (IPv6, ARP, else IPv4) |
//! | `vlan_tci` | untagged; any nonzero value adds one 802.1Q tag |
//! | IPv4 src / dst | `10.0.0.1` / `10.0.0.2` |
//! | IPv6 src / dst | `2001:db8::1` / `2001:db8::2` |
//! | `nw_proto` | inferred from transport fields, else 0 (IPv4) / 59 "no next header" (IPv6) |
//! | `nw_ttl` | 64 (255 for ND, which requires it) |
//! | ports | 0 (so the trace cannot hit a port-specific flow by accident) |
//! | `tcp_flags` | SYN |
//! | ICMP type | echo request (8 / 128) |
//! | `arp_op` | request (1), RARP: reverse request (3); SHA = `eth_src`, SPA/TPA as IPv4 |
//! | `nd_target` | the IPv6 destination |
//!
//! Payloads are empty. Metadata fields (`in_port`, tunnel, `metadata`, registers, `pkt_mark`,
//! conntrack) are not in a frame; [`metadata_from_match`] writes them into the key instead.
//!
//! Rather than reason out every contradictory combination (`arp,nw_proto=6`, `nw_frag=later`
//! with `tcp_flags`, ...) up front, the builder extracts the key of the frame it made and
//! reports the first pinned field the frame could not honour ([`BuildError::Unsatisfiable`]).

use super::ether::{ethertype, icmpv6, ipproto, len};
use super::extract::FIRST_PACKET_WORD;
use super::vlan::{VlanPacket, VlanRepr};
use super::{extract, Malformed};
use crate::key::{loc, FlowKey};
use control::flow::ast::Match;
use control::flow::field::{nw_frag, tcp_flags, Field, VLAN_PRESENT};
use smoltcp::wire::{
    ArpHardware, ArpOperation, ArpPacket, EthernetProtocol, IpAddress, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv6Address, Ipv6Packet, TcpPacket, UdpPacket,
};

/// Why no frame could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A character that is not a hex digit, space or colon.
    #[error("invalid character {ch:?} at position {pos} in hex frame")]
    BadHexDigit {
        /// The character.
        ch: char,
        /// Its character position in the input.
        pos: usize,
    },
    /// Half a byte at the end.
    #[error("hex frame has an odd number of digits ({0})")]
    OddHexLength(usize),
    /// No digits at all.
    #[error("hex frame is empty")]
    Empty,
    /// The match pins bits that no frame can have together with the rest of the match.
    #[error(
        "no frame satisfies {field}={want:#x}/{mask:#x} together with the rest of the match \
         (the closest frame has {field}={got:#x}; check the protocol prerequisites)"
    )]
    Unsatisfiable {
        /// Field name as operators write it.
        field: &'static str,
        /// Value the match wants (under `mask`).
        want: u128,
        /// Bits the match pins.
        mask: u128,
        /// What the built frame carries.
        got: u128,
    },
    /// The closest frame to the match is malformed: the match pins a header shape that cannot
    /// be completed (`ipv6,nw_proto=44` names an extension header as the transport, a VLAN
    /// TPID as `eth_type` promises a tag that is not there).
    #[error("the match describes no well-formed frame (the closest one is malformed: {0})")]
    Malformed(#[from] Malformed),
}

/// `default` with the match's pinned bits of `field` substituted in.
fn pick(m: &Match, field: Field, default: u128) -> u128 {
    match m.get(field) {
        Some(e) => (default & !e.mask) | e.value,
        None => default,
    }
}

fn has_any(m: &Match, fields: &[Field]) -> bool {
    fields.iter().any(|&f| m.get(f).is_some())
}

fn infer_eth_type(m: &Match) -> u16 {
    use Field::*;
    if has_any(m, &[Ipv6Src, Ipv6Dst, Ipv6Label, Icmpv6Type, Icmpv6Code])
        || has_any(m, &[NdTarget, NdSll, NdTll])
    {
        ethertype::IPV6
    } else if has_any(m, &[ArpOp, ArpSpa, ArpTpa, ArpSha, ArpTha]) {
        ethertype::ARP
    } else {
        ethertype::IPV4
    }
}

fn infer_proto(m: &Match, v6: bool) -> u8 {
    use Field::*;
    let inferred = if has_any(m, &[TcpSrc, TcpDst, TcpFlags]) {
        ipproto::TCP
    } else if has_any(m, &[UdpSrc, UdpDst]) {
        ipproto::UDP
    } else if has_any(m, &[SctpSrc, SctpDst]) {
        ipproto::SCTP
    } else if has_any(m, &[IcmpType, IcmpCode]) {
        ipproto::ICMP
    } else if has_any(m, &[Icmpv6Type, Icmpv6Code, NdTarget, NdSll, NdTll]) {
        ipproto::ICMPV6
    } else if v6 {
        ipproto::NONE
    } else {
        0
    };
    pick(m, IpProto, u128::from(inferred)) as u8
}

fn mac_bytes(v: u128) -> [u8; 6] {
    let b = (v as u64).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Offset of a later fragment's data: 1480 bytes, one full Ethernet-MTU fragment in.
const LATER_FRAG_OFFSET: u16 = 1480;

/// Build a frame whose key agrees with `m` on every pinned packet field (see the module
/// documentation for defaults).
pub fn frame_from_match(m: &Match) -> Result<Vec<u8>, BuildError> {
    let eth_src = pick(m, Field::EthSrc, 1);
    let eth_dst = pick(m, Field::EthDst, 2);
    let eth_type = pick(m, Field::EthType, u128::from(infer_eth_type(m))) as u16;

    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&mac_bytes(eth_dst));
    f.extend_from_slice(&mac_bytes(eth_src));
    let tci = pick(m, Field::VlanTci, 0) as u16;
    if tci != 0 {
        // The key's present bit is the frame's DEI bit, which extraction overwrites, so it
        // cannot be carried; leaving it clear gives the canonical tag.
        f.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        let mut tag = [0u8; super::vlan::HEADER_LEN];
        let tag_tci = tci & !VLAN_PRESENT;
        VlanRepr {
            pcp: (tag_tci >> 13) as u8,
            dei: false,
            vid: tag_tci & 0x0fff,
            ethertype: eth_type,
        }
        .emit(&mut VlanPacket::new_unchecked(&mut tag[..]));
        f.extend_from_slice(&tag);
    } else {
        f.extend_from_slice(&eth_type.to_be_bytes());
    }

    match eth_type {
        ethertype::IPV4 => ipv4(m, &mut f),
        ethertype::IPV6 => ipv6(m, &mut f),
        ethertype::ARP | ethertype::RARP => arp(m, eth_type, eth_src, &mut f),
        _ => {}
    }
    check(m, &f)?;
    Ok(f)
}

/// Extract the frame and compare with every pinned packet field of `m`.
fn check(m: &Match, frame: &[u8]) -> Result<(), BuildError> {
    let mut key = FlowKey::zero();
    extract(frame, &mut key)?;
    for (field, e) in m.iter() {
        if usize::from(loc(field).word) < FIRST_PACKET_WORD {
            continue;
        }
        let got = key.get(field);
        if got & e.mask != e.value {
            return Err(BuildError::Unsatisfiable {
                field: field.info().name,
                want: e.value,
                mask: e.mask,
                got,
            });
        }
    }
    Ok(())
}

fn tos(m: &Match) -> u8 {
    let dscp = pick(m, Field::IpDscp, 0) as u8;
    let ecn = pick(m, Field::IpEcn, 0) as u8;
    (dscp << 2) | (ecn & 3)
}

fn ipv4(m: &Match, f: &mut Vec<u8>) {
    let src = Ipv4Address::from(pick(m, Field::Ipv4Src, 0x0a00_0001) as u32);
    let dst = Ipv4Address::from(pick(m, Field::Ipv4Dst, 0x0a00_0002) as u32);
    let proto = infer_proto(m, false);
    let frag = pick(m, Field::IpFrag, 0) as u8;
    let later = frag & nw_frag::LATER != 0;
    let l4 = if later {
        // A later fragment carries data, not a header; a few zero bytes stand for it.
        vec![0; 8]
    } else {
        transport(m, proto, IpAddress::Ipv4(src), IpAddress::Ipv4(dst))
    };

    let mut h = [0u8; len::IPV4];
    let mut ip = Ipv4Packet::new_unchecked(&mut h[..]);
    ip.set_version(4);
    ip.set_header_len(len::IPV4 as u8);
    ip.set_dscp(tos(m) >> 2);
    ip.set_ecn(tos(m) & 3);
    ip.set_total_len((len::IPV4 + l4.len()) as u16);
    ip.set_ident(0);
    ip.set_dont_frag(frag == 0);
    ip.set_more_frags(frag & nw_frag::ANY != 0 && !later);
    ip.set_frag_offset(if later { LATER_FRAG_OFFSET } else { 0 });
    ip.set_hop_limit(pick(m, Field::IpTtl, 64) as u8);
    ip.set_next_header(IpProtocol::from(proto));
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    f.extend_from_slice(&h);
    f.extend_from_slice(&l4);
}

fn ipv6(m: &Match, f: &mut Vec<u8>) {
    let src = Ipv6Address::from(pick(m, Field::Ipv6Src, 0x2001_0db8 << 96 | 1));
    let dst = Ipv6Address::from(pick(m, Field::Ipv6Dst, 0x2001_0db8 << 96 | 2));
    let proto = infer_proto(m, true);
    let frag = pick(m, Field::IpFrag, 0) as u8;
    let later = frag & nw_frag::LATER != 0;
    let is_nd = proto == ipproto::ICMPV6
        && matches!(
            pick(m, Field::Icmpv6Type, 128) as u8,
            icmpv6::ND_NS | icmpv6::ND_NA
        );

    let mut payload = Vec::new();
    let mut next_header = proto;
    if frag != 0 {
        // Fragment header: next header, reserved, offset/M, identification.
        let off_m = if later { LATER_FRAG_OFFSET } else { 1 };
        payload.extend_from_slice(&[proto, 0]);
        payload.extend_from_slice(&off_m.to_be_bytes());
        payload.extend_from_slice(&1u32.to_be_bytes());
        next_header = ipproto::FRAGMENT;
    }
    if later {
        payload.extend_from_slice(&[0; 8]);
    } else {
        payload.extend(transport(
            m,
            proto,
            IpAddress::Ipv6(src),
            IpAddress::Ipv6(dst),
        ));
    }

    let mut h = [0u8; len::IPV6];
    let mut ip = Ipv6Packet::new_unchecked(&mut h[..]);
    ip.set_version(6);
    ip.set_traffic_class(tos(m));
    ip.set_flow_label(pick(m, Field::Ipv6Label, 0) as u32);
    ip.set_payload_len(payload.len() as u16);
    ip.set_next_header(IpProtocol::from(next_header));
    ip.set_hop_limit(pick(m, Field::IpTtl, if is_nd { 255 } else { 64 }) as u8);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    f.extend_from_slice(&h);
    f.extend_from_slice(&payload);
}

fn arp(m: &Match, eth_type: u16, eth_src: u128, f: &mut Vec<u8>) {
    let default_op = if eth_type == ethertype::RARP { 3 } else { 1 };
    let mut b = [0u8; len::ARP];
    let mut a = ArpPacket::new_unchecked(&mut b[..]);
    a.set_hardware_type(ArpHardware::Ethernet);
    a.set_protocol_type(EthernetProtocol::Ipv4);
    a.set_hardware_len(6);
    a.set_protocol_len(4);
    a.set_operation(ArpOperation::from(pick(m, Field::ArpOp, default_op) as u16));
    a.set_source_hardware_addr(&mac_bytes(pick(m, Field::ArpSha, eth_src)));
    a.set_source_protocol_addr(&(pick(m, Field::ArpSpa, 0x0a00_0001) as u32).to_be_bytes());
    a.set_target_hardware_addr(&mac_bytes(pick(m, Field::ArpTha, 0)));
    a.set_target_protocol_addr(&(pick(m, Field::ArpTpa, 0x0a00_0002) as u32).to_be_bytes());
    f.extend_from_slice(&b);
}

/// The transport header for `proto`, checksummed against the pseudo-header of `src`/`dst`.
fn transport(m: &Match, proto: u8, src: IpAddress, dst: IpAddress) -> Vec<u8> {
    let port = |f: Field| pick(m, f, 0) as u16;
    match proto {
        ipproto::TCP => {
            let mut b = vec![0u8; len::TCP];
            let mut t = TcpPacket::new_unchecked(&mut b[..]);
            t.set_src_port(port(Field::TcpSrc));
            t.set_dst_port(port(Field::TcpDst));
            t.set_window_len(65535);
            // smoltcp has a setter per named flag but none for the three reserved bits, which
            // `tcp_flags` covers: write the offset/flags word whole.
            let flags = pick(m, Field::TcpFlags, u128::from(tcp_flags::SYN)) as u16 & 0x0fff;
            b[12..14].copy_from_slice(&((5u16 << 12) | flags).to_be_bytes());
            TcpPacket::new_unchecked(&mut b[..]).fill_checksum(&src, &dst);
            b
        }
        ipproto::UDP => {
            let mut b = vec![0u8; len::UDP];
            let mut u = UdpPacket::new_unchecked(&mut b[..]);
            u.set_src_port(port(Field::UdpSrc));
            u.set_dst_port(port(Field::UdpDst));
            u.set_len(len::UDP as u16);
            u.fill_checksum(&src, &dst);
            b
        }
        ipproto::SCTP => {
            // smoltcp has no SCTP: common header with a zero verification tag, CRC32c.
            let mut b = vec![0u8; len::SCTP];
            b[0..2].copy_from_slice(&port(Field::SctpSrc).to_be_bytes());
            b[2..4].copy_from_slice(&port(Field::SctpDst).to_be_bytes());
            let crc = crc32c(&b);
            // RFC 4960 appendix B: the CRC goes out least significant byte first.
            b[8..12].copy_from_slice(&crc.to_le_bytes());
            b
        }
        ipproto::ICMP if matches!(src, IpAddress::Ipv4(_)) => {
            let mut b = vec![0u8; len::ICMPV4];
            b[0] = pick(m, Field::IcmpType, 8) as u8;
            b[1] = pick(m, Field::IcmpCode, 0) as u8;
            smoltcp::wire::Icmpv4Packet::new_unchecked(&mut b[..]).fill_checksum();
            b
        }
        ipproto::ICMPV6 => match (src, dst) {
            (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) => icmpv6_msg(m, s, d),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn icmpv6_msg(m: &Match, src: Ipv6Address, dst: Ipv6Address) -> Vec<u8> {
    let ty = pick(m, Field::Icmpv6Type, 128) as u8;
    let code = pick(m, Field::Icmpv6Code, 0) as u8;
    let mut b = vec![ty, code, 0, 0];
    if (ty == icmpv6::ND_NS || ty == icmpv6::ND_NA) && code == 0 {
        // NA: solicited + override, the usual answer to a solicitation. NS: reserved.
        let flags: u32 = if ty == icmpv6::ND_NA { 0x6000_0000 } else { 0 };
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&pick(m, Field::NdTarget, u128::from(dst)).to_be_bytes());
        let (opt, field) = if ty == icmpv6::ND_NS {
            (icmpv6::OPT_SLL, Field::NdSll)
        } else {
            (icmpv6::OPT_TLL, Field::NdTll)
        };
        // The option is optional; an address of zero is what its absence extracts to.
        let lladdr = pick(m, field, 0);
        if lladdr != 0 {
            b.extend_from_slice(&[opt, 1]);
            b.extend_from_slice(&mac_bytes(lladdr));
        }
    } else {
        // Echo identifier and sequence number, or the "unused" word of error messages.
        b.extend_from_slice(&[0; 4]);
    }
    smoltcp::wire::Icmpv6Packet::new_unchecked(&mut b[..]).fill_checksum(&src, &dst);
    b
}

/// CRC32c (Castagnoli), bit by bit: SCTP frames are built once per trace, not per packet.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Write the metadata fields the match pins (`in_port`, tunnel, `metadata`, registers,
/// `pkt_mark`, conntrack) into `key`; packet fields are left alone (they come from the frame).
/// Masked constraints write their pinned bits only.
pub fn metadata_from_match(m: &Match, key: &mut FlowKey) {
    for (field, e) in m.iter() {
        if usize::from(loc(field).word) < FIRST_PACKET_WORD {
            key.set_masked(field, e.value, e.mask);
        }
    }
}

/// Everything `swctl trace` needs to push a packet through the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePacket {
    /// The frame, as [`frame_from_match`] built it.
    pub frame: Vec<u8>,
    /// Its extracted key, with the match's metadata ([`metadata_from_match`]) filled in.
    pub key: FlowKey,
    /// Header offsets of `frame`.
    pub layout: super::Layout,
}

/// [`frame_from_match`], [`extract`] and [`metadata_from_match`] in one call.
pub fn packet_from_match(m: &Match) -> Result<TracePacket, BuildError> {
    let frame = frame_from_match(m)?;
    let mut key = FlowKey::zero();
    let layout = extract(&frame, &mut key)?;
    metadata_from_match(m, &mut key);
    Ok(TracePacket { frame, key, layout })
}

/// Parse a frame written in hex; spaces, tabs, newlines and colons between digits are ignored
/// (`00:11:22...`, `0011 2233 ...`). No length check: a trace may well want a runt.
pub fn frame_from_hex(s: &str) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (pos, ch) in s.chars().enumerate() {
        if ch.is_whitespace() || ch == ':' {
            continue;
        }
        let Some(nibble) = ch.to_digit(16) else {
            return Err(BuildError::BadHexDigit { ch, pos });
        };
        digits += 1;
        match high.take() {
            None => high = Some(nibble as u8),
            Some(h) => out.push((h << 4) | nibble as u8),
        }
    }
    if high.is_some() {
        return Err(BuildError::OddHexLength(digits));
    }
    if out.is_empty() {
        return Err(BuildError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{
        EthernetFrame, Icmpv4Packet, Icmpv6Packet, Icmpv6Repr, NdiscRepr, RawHardwareAddress,
    };

    fn matching(fields: &[(Field, u128)]) -> Match {
        let mut m = Match::new();
        for &(f, v) in fields {
            assert!(m.set_exact(f, v));
        }
        m
    }

    fn v4(s: &str) -> u128 {
        u128::from(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()))
    }

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    /// Build, extract, and check every pinned field; returns the frame and key.
    fn round_trip(m: &Match) -> (Vec<u8>, FlowKey) {
        let f = frame_from_match(m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        let mut k = FlowKey::zero();
        extract(&f, &mut k).unwrap();
        for (field, e) in m.iter() {
            if usize::from(loc(field).word) >= FIRST_PACKET_WORD {
                assert_eq!(k.get(field) & e.mask, e.value, "{field:?}");
            }
        }
        (f, k)
    }

    /// The L3 start and whether the IP/transport checksums verify, per smoltcp.
    fn verify_checksums(f: &[u8]) {
        let eth = EthernetFrame::new_checked(f).unwrap();
        let mut l3 = eth.payload();
        let mut ty = u16::from(eth.ethertype());
        if ty == ethertype::VLAN {
            let tag = VlanPacket::new_checked(l3).unwrap();
            ty = tag.ethertype();
            l3 = tag.payload();
        }
        match ty {
            ethertype::IPV4 => {
                let ip = Ipv4Packet::new_checked(l3).unwrap();
                assert!(ip.verify_checksum(), "ipv4 header checksum");
                if ip.frag_offset() != 0 {
                    return;
                }
                let (s, d) = (
                    IpAddress::Ipv4(ip.src_addr()),
                    IpAddress::Ipv4(ip.dst_addr()),
                );
                match ip.next_header() {
                    IpProtocol::Tcp => {
                        let t = TcpPacket::new_checked(ip.payload()).unwrap();
                        assert!(t.verify_checksum(&s, &d), "tcp checksum");
                    }
                    IpProtocol::Udp => {
                        let u = UdpPacket::new_checked(ip.payload()).unwrap();
                        assert!(u.verify_checksum(&s, &d), "udp checksum");
                    }
                    IpProtocol::Icmp => {
                        let i = Icmpv4Packet::new_checked(ip.payload()).unwrap();
                        assert!(i.verify_checksum(), "icmp checksum");
                    }
                    _ => {}
                }
            }
            ethertype::IPV6 => {
                let ip = Ipv6Packet::new_checked(l3).unwrap();
                let (s, d) = (ip.src_addr(), ip.dst_addr());
                match ip.next_header() {
                    IpProtocol::Tcp => {
                        let t = TcpPacket::new_checked(ip.payload()).unwrap();
                        assert!(t.verify_checksum(&IpAddress::Ipv6(s), &IpAddress::Ipv6(d)));
                    }
                    IpProtocol::Udp => {
                        let u = UdpPacket::new_checked(ip.payload()).unwrap();
                        assert!(u.verify_checksum(&IpAddress::Ipv6(s), &IpAddress::Ipv6(d)));
                    }
                    IpProtocol::Icmpv6 => {
                        let i = Icmpv6Packet::new_checked(ip.payload()).unwrap();
                        assert!(i.verify_checksum(&s, &d), "icmpv6 checksum");
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    #[test]
    fn trace_example_tcp() {
        // in_port=5,tcp,nw_src=10.0.0.1,nw_dst=192.168.111.223,tp_dst=22
        let m = matching(&[
            (Field::InPort, 5),
            (Field::EthType, 0x0800),
            (Field::IpProto, 6),
            (Field::Ipv4Src, v4("10.0.0.1")),
            (Field::Ipv4Dst, v4("192.168.111.223")),
            (Field::TcpDst, 22),
        ]);
        let (f, k) = round_trip(&m);
        verify_checksums(&f);
        assert_eq!(k.get(Field::TcpFlags), u128::from(tcp_flags::SYN));
        assert_eq!(k.get(Field::IpTtl), 64);
        assert_eq!(k.get(Field::EthSrc), 1);
        assert_eq!(k.get(Field::EthDst), 2);
        assert_eq!(k.get(Field::InPort), 0, "metadata is not in the frame");
        assert_eq!(f.len(), 14 + 20 + 20);

        let mut k = FlowKey::zero();
        metadata_from_match(&m, &mut k);
        assert_eq!(k.get(Field::InPort), 5);
        assert_eq!(
            k.get(Field::Ipv4Dst),
            0,
            "packet fields come from the frame"
        );
    }

    #[test]
    fn inferred_protocols_and_checksums() {
        let cases: Vec<Vec<(Field, u128)>> = vec![
            vec![(Field::UdpSrc, 68), (Field::UdpDst, 67)],
            vec![(Field::SctpDst, 2905)],
            vec![(Field::IcmpType, 3), (Field::IcmpCode, 1)],
            vec![(Field::TcpFlags, 0x012), (Field::VlanTci, 0x1000 | 100)],
            vec![(Field::Ipv6Src, v6("fe80::1")), (Field::UdpDst, 546)],
            vec![(Field::Ipv6Dst, v6("2001:db8::99")), (Field::TcpSrc, 443)],
            vec![(Field::Icmpv6Type, 128), (Field::Ipv6Label, 0xabcde)],
            vec![(Field::IpDscp, 46), (Field::IpEcn, 2), (Field::IpTtl, 3)],
            vec![(Field::EthType, 0x86dd), (Field::IpDscp, 10)],
            vec![(Field::EthType, 0x88cc)],
            vec![],
        ];
        for c in cases {
            let (f, _) = round_trip(&matching(&c));
            verify_checksums(&f);
        }
    }

    #[test]
    fn sctp_crc32c() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let (f, k) = round_trip(&matching(&[(Field::SctpSrc, 1), (Field::SctpDst, 2)]));
        assert_eq!(k.get(Field::IpProto), 132);
        let sctp = &f[34..];
        let mut zeroed = sctp.to_vec();
        zeroed[8..12].fill(0);
        assert_eq!(sctp[8..12], crc32c(&zeroed).to_le_bytes());
    }

    #[test]
    fn arp_and_rarp() {
        let m = matching(&[
            (Field::ArpOp, 2),
            (Field::ArpSpa, v4("192.168.0.1")),
            (Field::ArpTha, 0x0000_5e00_5301),
        ]);
        let (f, k) = round_trip(&m);
        assert_eq!(k.get(Field::EthType), 0x0806);
        assert_eq!(k.get(Field::ArpSha), 1, "defaults to eth_src");
        assert_eq!(k.get(Field::ArpTpa), v4("10.0.0.2"));
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let a = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(a.operation(), ArpOperation::Reply);

        let (_, k) = round_trip(&matching(&[(Field::EthType, 0x8035)]));
        assert_eq!(k.get(Field::ArpOp), 3);
    }

    #[test]
    fn nd_with_options() {
        let m = matching(&[
            (Field::Icmpv6Type, 135),
            (Field::NdTarget, v6("fe80::2")),
            (Field::NdSll, 0x0200_0000_0001),
        ]);
        let (f, k) = round_trip(&m);
        verify_checksums(&f);
        assert_eq!(k.get(Field::IpTtl), 255);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(
            &ip.src_addr(),
            &ip.dst_addr(),
            &icmp,
            &smoltcp::phy::ChecksumCapabilities::default(),
        )
        .unwrap();
        let lladdr = RawHardwareAddress::from_bytes(&[2, 0, 0, 0, 0, 1]);
        assert_eq!(
            repr,
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr: "fe80::2".parse().unwrap(),
                lladdr: Some(lladdr),
            })
        );

        let m = matching(&[(Field::Icmpv6Type, 136), (Field::NdTll, 0x0200_0000_0002)]);
        let (f, k) = round_trip(&m);
        verify_checksums(&f);
        assert_eq!(k.get(Field::NdTarget), v6("2001:db8::2"));
        assert_eq!(k.get(Field::NdSll), 0);
    }

    #[test]
    fn fragments() {
        for (eth_type, frag) in [(0x0800, 1), (0x0800, 3), (0x86dd, 1), (0x86dd, 3)] {
            let m = matching(&[
                (Field::EthType, eth_type),
                (Field::IpProto, 17),
                (Field::IpFrag, frag),
            ]);
            let (f, _) = round_trip(&m);
            verify_checksums(&f);
        }
        // A later fragment has no transport header to carry ports.
        let m = matching(&[(Field::IpFrag, 3), (Field::TcpDst, 80)]);
        assert!(matches!(
            frame_from_match(&m),
            Err(BuildError::Unsatisfiable {
                field: "tcp_dst",
                ..
            })
        ));
    }

    #[test]
    fn masked_constraints_use_value_bits() {
        let mut m = Match::new();
        m.set(Field::Ipv4Dst, v4("192.168.0.0"), 0xffff_0000);
        m.set(Field::EthDst, 0x0100_0000_0000, 0x0100_0000_0000);
        m.set(Field::TcpFlags, 0x010, 0x012);
        let (_, k) = round_trip(&m);
        // Free bits keep the default: 10.0.0.2 -> 192.168.0.2; multicast bit onto ..:02.
        assert_eq!(k.get(Field::Ipv4Dst), v4("192.168.0.2"));
        assert_eq!(k.get(Field::EthDst), 0x0100_0000_0002);
        assert_eq!(k.get(Field::TcpFlags), 0x010);
    }

    #[test]
    fn contradictions_are_reported() {
        let m = matching(&[(Field::EthType, 0x0806), (Field::IpProto, 6)]);
        let e = frame_from_match(&m).unwrap_err();
        assert!(matches!(
            e,
            BuildError::Unsatisfiable {
                field: "nw_proto",
                ..
            }
        ));
        assert!(e.to_string().contains("nw_proto=0x6"), "{e}");
        let m = matching(&[(Field::EthType, 0x0800), (Field::Ipv6Src, 1)]);
        assert!(frame_from_match(&m).is_err());
        // VLAN present bit explicitly clear but a VID wanted.
        let mut m = Match::new();
        m.set(Field::VlanTci, 0x0064, 0x1fff);
        assert!(frame_from_match(&m).is_err());
    }

    #[test]
    fn malformed_shapes_are_reported() {
        let m = matching(&[(Field::EthType, 0x86dd), (Field::IpProto, 44)]);
        assert_eq!(
            frame_from_match(&m),
            Err(BuildError::Malformed(Malformed::BadIpv6Ext))
        );
        let m = matching(&[(Field::EthType, 0x8100)]);
        assert_eq!(
            frame_from_match(&m),
            Err(BuildError::Malformed(Malformed::TruncatedVlan))
        );
    }

    #[test]
    fn metadata_masked() {
        let mut m = Match::new();
        m.set(Field::Reg(3), 0x0000_00ab, 0x0000_00ff);
        m.set_exact(Field::TunId, 42);
        m.set_exact(Field::CtState, 0x21);
        m.set_exact(Field::TcpDst, 80);
        let mut k = FlowKey::zero();
        k.set(Field::Reg(3), 0x1234_5600);
        metadata_from_match(&m, &mut k);
        assert_eq!(k.get(Field::Reg(3)), 0x1234_56ab);
        assert_eq!(k.get(Field::TunId), 42);
        assert_eq!(k.get(Field::CtState), 0x21);
        assert_eq!(k.get(Field::TcpDst), 0);
    }

    #[test]
    fn trace_packet_has_metadata_and_packet_fields() {
        let m = matching(&[
            (Field::InPort, 5),
            (Field::Reg(0), 7),
            (Field::TcpDst, 22),
            (Field::VlanTci, 0x1000 | 10),
        ]);
        let p = packet_from_match(&m).unwrap();
        assert!(crate::key::MaskedKey::from_match(&m).matches(&p.key));
        assert_eq!(p.layout.n_vlans, 1);
        assert_eq!(p.layout.l4, 14 + 4 + 20);
        assert_eq!(p.frame.len(), 14 + 4 + 20 + 20);
    }

    #[test]
    fn hex_frames() {
        assert_eq!(
            frame_from_hex("00:11:22 33\n4455").unwrap(),
            vec![0, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
        assert_eq!(frame_from_hex("aB").unwrap(), vec![0xab]);
        assert_eq!(
            frame_from_hex("00 1g").unwrap_err(),
            BuildError::BadHexDigit { ch: 'g', pos: 4 }
        );
        assert_eq!(
            frame_from_hex("001").unwrap_err(),
            BuildError::OddHexLength(3)
        );
        assert_eq!(frame_from_hex(" : ").unwrap_err(), BuildError::Empty);
    }
}
