//! Frame builders and a minimal key extractor for tests and benchmarks.
//!
//! The real extractor is [`crate::packet::extract`]; this one knows just enough (Ethernet, up
//! to two tags, IPv4 without options beyond IHL, IPv6 without extension headers, ARP, TCP,
//! UDP, ICMP, ICMPv6 ND) to build keys for the frames the tests make, and to re-read a frame
//! after execution and compare it with the key translation predicted.

use crate::key::FlowKey;
use crate::packet::Layout;
use control::flow::field::{nw_frag, Field, VLAN_PRESENT};
use smoltcp::wire::{
    IpAddress, Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet, TcpPacket, UdpPacket,
};

fn mac_u(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | u128::from(x))
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Extract a key and layout from `frame` (see the module doc for what is understood).
pub fn mini_extract(frame: &[u8], in_port: u32) -> Option<(FlowKey, Layout)> {
    let mut k = FlowKey::zero();
    k.set(Field::InPort, u128::from(in_port));
    let mut lay = Layout {
        n_vlans: 0,
        l3: Layout::NONE,
        l4: Layout::NONE,
    };
    k.set(Field::EthDst, mac_u(frame.get(0..6)?));
    k.set(Field::EthSrc, mac_u(frame.get(6..12)?));
    let mut off = 12;
    let mut et = be16(frame, off)?;
    while (et == 0x8100 || et == 0x88a8) && lay.n_vlans < 8 {
        if lay.n_vlans == 0 {
            k.set(
                Field::VlanTci,
                u128::from(be16(frame, off + 2)? | VLAN_PRESENT),
            );
        }
        lay.n_vlans += 1;
        off += 4;
        et = be16(frame, off)?;
    }
    k.set(Field::EthType, u128::from(et));
    let l3 = off + 2;
    lay.l3 = l3 as u16;
    let d = frame;
    let mut l4 = None;
    let proto;
    match et {
        0x0800 => {
            let ihl = usize::from(d.get(l3)? & 0x0f) * 4;
            let tos = *d.get(l3 + 1)?;
            let fo = be16(d, l3 + 6)?;
            proto = *d.get(l3 + 9)?;
            k.set(Field::IpDscp, u128::from(tos >> 2));
            k.set(Field::IpEcn, u128::from(tos & 3));
            k.set(Field::IpTtl, u128::from(*d.get(l3 + 8)?));
            k.set(Field::IpProto, u128::from(proto));
            k.set(Field::Ipv4Src, mac_u(d.get(l3 + 12..l3 + 16)?));
            k.set(Field::Ipv4Dst, mac_u(d.get(l3 + 16..l3 + 20)?));
            let mut frag = 0;
            if fo & 0x3fff != 0 {
                frag |= nw_frag::ANY;
            }
            if fo & 0x1fff != 0 {
                frag |= nw_frag::LATER;
            } else {
                l4 = Some(l3 + ihl);
            }
            k.set(Field::IpFrag, u128::from(frag));
        }
        0x86dd => {
            let w0 = u32::from_be_bytes(d.get(l3..l3 + 4)?.try_into().ok()?);
            proto = *d.get(l3 + 6)?;
            let tc = (w0 >> 20) as u8;
            k.set(Field::IpDscp, u128::from(tc >> 2));
            k.set(Field::IpEcn, u128::from(tc & 3));
            k.set(Field::Ipv6Label, u128::from(w0 & 0xfffff));
            k.set(Field::IpTtl, u128::from(*d.get(l3 + 7)?));
            k.set(Field::IpProto, u128::from(proto));
            k.set(Field::Ipv6Src, mac_u(d.get(l3 + 8..l3 + 24)?));
            k.set(Field::Ipv6Dst, mac_u(d.get(l3 + 24..l3 + 40)?));
            l4 = Some(l3 + 40);
        }
        0x0806 | 0x8035 => {
            proto = 0;
            k.set(Field::ArpOp, u128::from(be16(d, l3 + 6)?));
            k.set(Field::ArpSha, mac_u(d.get(l3 + 8..l3 + 14)?));
            k.set(Field::ArpSpa, mac_u(d.get(l3 + 14..l3 + 18)?));
            k.set(Field::ArpTha, mac_u(d.get(l3 + 18..l3 + 24)?));
            k.set(Field::ArpTpa, mac_u(d.get(l3 + 24..l3 + 28)?));
        }
        _ => {
            lay.l3 = Layout::NONE;
            return Some((k, lay));
        }
    }
    let Some(l4) = l4 else {
        return Some((k, lay));
    };
    lay.l4 = l4 as u16;
    match proto {
        6 | 17 | 132 => {
            k.set(Field::TcpSrc, u128::from(be16(d, l4)?));
            k.set(Field::TcpDst, u128::from(be16(d, l4 + 2)?));
            if proto == 6 {
                k.set(Field::TcpFlags, u128::from(be16(d, l4 + 12)? & 0x0fff));
            }
        }
        1 | 58 => {
            let ty = *d.get(l4)?;
            k.set(Field::IcmpType, u128::from(ty));
            k.set(Field::IcmpCode, u128::from(*d.get(l4 + 1)?));
            if proto == 58 && (ty == 135 || ty == 136) {
                k.set(Field::NdTarget, mac_u(d.get(l4 + 8..l4 + 24)?));
                let mut o = l4 + 24;
                while let (Some(&t), Some(&len)) = (d.get(o), d.get(o + 1)) {
                    if len == 0 {
                        break;
                    }
                    if t == 1 {
                        k.set(Field::NdSll, mac_u(d.get(o + 2..o + 8)?));
                    } else if t == 2 {
                        k.set(Field::NdTll, mac_u(d.get(o + 2..o + 8)?));
                    }
                    o += usize::from(len) * 8;
                }
            }
        }
        _ => {}
    }
    Some((k, lay))
}

/// Ethernet header + `payload`, with an optional 802.1Q tag.
pub fn eth(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(tci) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet with `l4` as payload; `l4_fill` computes the L4 checksum given addresses.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + l4.len()];
    {
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_total_len((20 + l4.len()) as u16);
        p.set_ident(0x1234);
        p.set_dont_frag(true);
        p.set_hop_limit(ttl);
        p.set_next_header(proto.into());
        p.set_src_addr(Ipv4Address::from(src));
        p.set_dst_addr(Ipv4Address::from(dst));
        p.payload_mut().copy_from_slice(l4);
        p.fill_checksum();
    }
    let (s, d) = (
        IpAddress::Ipv4(Ipv4Address::from(src)),
        IpAddress::Ipv4(Ipv4Address::from(dst)),
    );
    fill_l4(&mut b[20..], proto, &s, &d);
    b
}

/// An IPv6 packet (no extension headers).
pub fn ipv6(src: [u8; 16], dst: [u8; 16], proto: u8, hlim: u8, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 40 + l4.len()];
    {
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version(6);
        p.set_payload_len(l4.len() as u16);
        p.set_next_header(proto.into());
        p.set_hop_limit(hlim);
        p.set_src_addr(Ipv6Address::from(src));
        p.set_dst_addr(Ipv6Address::from(dst));
        p.payload_mut().copy_from_slice(l4);
    }
    let (s, d) = (
        IpAddress::Ipv6(Ipv6Address::from(src)),
        IpAddress::Ipv6(Ipv6Address::from(dst)),
    );
    fill_l4(&mut b[40..], proto, &s, &d);
    b
}

fn fill_l4(b: &mut [u8], proto: u8, s: &IpAddress, d: &IpAddress) {
    match proto {
        6 => TcpPacket::new_unchecked(b).fill_checksum(s, d),
        17 => UdpPacket::new_unchecked(b).fill_checksum(s, d),
        1 => smoltcp::wire::Icmpv4Packet::new_unchecked(b).fill_checksum(),
        58 => {
            if let (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) = (s, d) {
                smoltcp::wire::Icmpv6Packet::new_unchecked(b).fill_checksum(s, d)
            }
        }
        _ => {}
    }
}

/// A TCP header (20 bytes) + payload, checksum zero (filled by [`ipv4`]/[`ipv6`]).
pub fn tcp(sport: u16, dport: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + payload.len()];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    b[12..14].copy_from_slice(&(0x5000 | flags).to_be_bytes());
    b[14..16].copy_from_slice(&8192u16.to_be_bytes());
    b[20..].copy_from_slice(payload);
    b
}

/// A UDP header + payload, checksum zero (filled by [`ipv4`]/[`ipv6`]).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 8 + payload.len()];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    b[8..].copy_from_slice(payload);
    b
}

/// An ICMP(v6) header: type, code, checksum zero, 4 bytes rest, payload.
pub fn icmp(ty: u8, code: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![ty, code, 0, 0, 0x12, 0x34, 0, 1];
    b.extend_from_slice(payload);
    b
}

/// An Ethernet/IPv4 ARP body.
pub fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut b = vec![0, 1, 8, 0, 6, 4];
    b.extend_from_slice(&op.to_be_bytes());
    b.extend_from_slice(&sha);
    b.extend_from_slice(&spa);
    b.extend_from_slice(&tha);
    b.extend_from_slice(&tpa);
    b
}

/// A TCP/IPv4 frame: `src_ip:sport -> dst_ip:dport`, SYN, with `payload_len` bytes of payload.
pub fn tcp4_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let t = tcp(sport, dport, 0x002, &payload);
    let ip = ipv4(src, dst, 6, 64, &t);
    eth(
        [0x02, 0, 0, 0, 0, 1],
        [0x02, 0, 0, 0, 0, 2],
        None,
        0x0800,
        &ip,
    )
}

/// Check every checksum of a frame with smoltcp (IPv4 header, TCP/UDP/ICMP/ICMPv6). Returns a
/// description of the first failure.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let (k, lay) = mini_extract(frame, 0).ok_or("unparsable")?;
    if lay.l3 == Layout::NONE {
        return Ok(());
    }
    let l3 = &frame[usize::from(lay.l3)..];
    let proto = k.get(Field::IpProto) as u8;
    let later = k.get(Field::IpFrag) as u8 & nw_frag::LATER != 0;
    let (s, d, l4) = match k.get(Field::EthType) {
        0x0800 => {
            let p = Ipv4Packet::new_checked(l3).map_err(|e| e.to_string())?;
            if !p.verify_checksum() {
                return Err("ipv4 header checksum".into());
            }
            (
                IpAddress::Ipv4(p.src_addr()),
                IpAddress::Ipv4(p.dst_addr()),
                p.payload(),
            )
        }
        0x86dd => {
            let p = Ipv6Packet::new_checked(l3).map_err(|e| e.to_string())?;
            (
                IpAddress::Ipv6(p.src_addr()),
                IpAddress::Ipv6(p.dst_addr()),
                p.payload(),
            )
        }
        _ => return Ok(()),
    };
    if later {
        return Ok(());
    }
    let ok = match proto {
        6 => TcpPacket::new_checked(l4)
            .map_err(|e| e.to_string())?
            .verify_checksum(&s, &d),
        17 => {
            let u = UdpPacket::new_checked(l4).map_err(|e| e.to_string())?;
            u.checksum() == 0 || u.verify_checksum(&s, &d)
        }
        1 => smoltcp::wire::Icmpv4Packet::new_checked(l4)
            .map_err(|e| e.to_string())?
            .verify_checksum(),
        58 => match (s, d) {
            (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) => {
                smoltcp::wire::Icmpv6Packet::new_checked(l4)
                    .map_err(|e| e.to_string())?
                    .verify_checksum(&s, &d)
            }
            _ => false,
        },
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("l4 checksum (proto {proto})"))
    }
}
