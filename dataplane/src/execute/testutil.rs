//! Frame builders for tests and benchmarks, and a shorthand for extracting a frame's key on a
//! given ingress port (to re-read a frame after execution and compare it with the key
//! translation predicted).

use crate::key::FlowKey;
use crate::packet::Layout;
use control::flow::field::{nw_frag, Field};
use smoltcp::wire::{
    IpAddress, Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet, TcpPacket, UdpPacket,
};

/// The key and layout of `frame` as the real extractor sees it, arriving on `in_port`.
pub fn extract_at_port(frame: &[u8], in_port: u32) -> Option<(FlowKey, Layout)> {
    let mut k = FlowKey::zero();
    k.set(Field::InPort, u128::from(in_port));
    let layout = crate::packet::extract(frame, &mut k).ok()?;
    Some((k, layout))
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
    let (k, lay) = extract_at_port(frame, 0).ok_or("unparsable")?;
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
