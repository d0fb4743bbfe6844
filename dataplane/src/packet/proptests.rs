//! Property tests: random well-formed frames built with smoltcp must extract to exactly what
//! smoltcp's own parsers read from the same bytes; arbitrary bytes must never panic.

use super::*;
use control::flow::field::{nw_frag, Field};
use proptest::prelude::*;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv6Packet,
    IpProtocol, Ipv4Packet, Ipv6ExtHeader, Ipv6Packet, TcpPacket, UdpPacket,
};

#[derive(Debug, Clone)]
enum L4 {
    Tcp { flags: u16, opt_words: u8 },
    Udp,
    Icmp { ty: u8, code: u8 },
    Other(u8),
}

#[derive(Debug, Clone)]
struct Spec {
    dst: [u8; 6],
    src: [u8; 6],
    /// Outer tag TCI, then an optional inner (QinQ) one.
    vlan: Option<(u16, Option<u16>)>,
    v6: bool,
    src4: u32,
    dst4: u32,
    src6: u128,
    dst6: u128,
    tos: u8,
    ttl: u8,
    label: u32,
    /// IPv4: (more fragments, offset in 8-byte units).
    frag4: (bool, u16),
    /// IPv6: a hop-by-hop header in front of the transport.
    hbh: bool,
    /// IPv4 option words (NOPs).
    ip_opts: u8,
    l4: L4,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
    padding: usize,
}

fn l4_strategy() -> impl Strategy<Value = L4> {
    prop_oneof![
        (0u16..0x1000, 0u8..4).prop_map(|(flags, opt_words)| L4::Tcp { flags, opt_words }),
        Just(L4::Udp),
        (any::<u8>(), any::<u8>()).prop_map(|(ty, code)| L4::Icmp { ty, code }),
        // Protocols the extractor does not look into (avoiding the ones it does and IPv6
        // extension header numbers, which would change what follows).
        prop_oneof![Just(47u8), Just(50), Just(89), Just(103), Just(253)].prop_map(L4::Other),
    ]
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        (any::<[u8; 6]>(), any::<[u8; 6]>()),
        proptest::option::of((any::<u16>(), proptest::option::of(any::<u16>()))),
        any::<bool>(),
        (any::<u32>(), any::<u32>(), any::<u128>(), any::<u128>()),
        (any::<u8>(), any::<u8>(), 0u32..0x10_0000),
        (
            prop_oneof![3 => Just((false, 0u16)), 1 => (any::<bool>(), 0u16..0x2000)],
            any::<bool>(),
            0u8..4,
        ),
        l4_strategy(),
        (any::<u16>(), any::<u16>()),
        (proptest::collection::vec(any::<u8>(), 0..40), 0usize..20),
    )
        .prop_map(
            |(
                (dst, src),
                vlan,
                v6,
                (src4, dst4, src6, dst6),
                (tos, ttl, label),
                (frag4, hbh, ip_opts),
                l4,
                (sport, dport),
                (payload, padding),
            )| Spec {
                dst,
                src,
                vlan,
                v6,
                src4,
                dst4,
                src6,
                dst6,
                tos,
                ttl,
                label,
                frag4,
                hbh,
                ip_opts,
                l4,
                sport,
                dport,
                payload,
                padding,
            },
        )
}

/// The transport header plus payload, checksums filled in.
fn build_l4(s: &Spec) -> Vec<u8> {
    let (src, dst) = if s.v6 {
        (
            smoltcp::wire::IpAddress::Ipv6(s.src6.into()),
            smoltcp::wire::IpAddress::Ipv6(s.dst6.into()),
        )
    } else {
        (
            smoltcp::wire::IpAddress::Ipv4(s.src4.into()),
            smoltcp::wire::IpAddress::Ipv4(s.dst4.into()),
        )
    };
    match s.l4 {
        L4::Tcp { flags, opt_words } => {
            let hlen = 20 + 4 * usize::from(opt_words);
            let mut b = vec![1u8; hlen]; // options: NOPs
            b.extend_from_slice(&s.payload);
            let mut t = TcpPacket::new_unchecked(&mut b[..]);
            t.set_src_port(s.sport);
            t.set_dst_port(s.dport);
            t.set_seq_number(smoltcp::wire::TcpSeqNumber(7));
            t.set_ack_number(smoltcp::wire::TcpSeqNumber(9));
            t.set_window_len(1000);
            t.set_urgent_at(0);
            b[12..14].copy_from_slice(&(((hlen as u16 / 4) << 12) | flags).to_be_bytes());
            TcpPacket::new_unchecked(&mut b[..]).fill_checksum(&src, &dst);
            b
        }
        L4::Udp => {
            let mut b = vec![0u8; 8];
            b.extend_from_slice(&s.payload);
            let mut u = UdpPacket::new_unchecked(&mut b[..]);
            u.set_src_port(s.sport);
            u.set_dst_port(s.dport);
            u.set_len((8 + s.payload.len()) as u16);
            u.fill_checksum(&src, &dst);
            b
        }
        L4::Icmp { ty, code } => {
            // ICMPv6 types smoltcp checks with a plain 8-byte header (ND/MLD need more).
            let ty = if s.v6 {
                [1, 2, 3, 4, 128, 129][usize::from(ty) % 6]
            } else {
                ty
            };
            let mut b = vec![ty, code, 0, 0, 0, 1, 0, 2];
            b.extend_from_slice(&s.payload);
            if s.v6 {
                Icmpv6Packet::new_unchecked(&mut b[..])
                    .fill_checksum(&s.src6.into(), &s.dst6.into());
            } else {
                Icmpv4Packet::new_unchecked(&mut b[..]).fill_checksum();
            }
            b
        }
        L4::Other(_) => s.payload.clone(),
    }
}

fn proto(s: &Spec) -> u8 {
    match s.l4 {
        L4::Tcp { .. } => 6,
        L4::Udp => 17,
        L4::Icmp { .. } => {
            if s.v6 {
                58
            } else {
                1
            }
        }
        L4::Other(p) => p,
    }
}

fn build(s: &Spec) -> Vec<u8> {
    let l4 = build_l4(s);
    let mut l3 = Vec::new();
    if s.v6 {
        let mut ext = Vec::new();
        if s.hbh {
            ext.extend_from_slice(&[proto(s), 0, 1, 4, 0, 0, 0, 0]);
        }
        l3.resize(40, 0);
        let mut ip = Ipv6Packet::new_unchecked(&mut l3[..]);
        ip.set_version(6);
        ip.set_traffic_class(s.tos);
        ip.set_flow_label(s.label);
        ip.set_payload_len((ext.len() + l4.len()) as u16);
        ip.set_next_header(if s.hbh {
            IpProtocol::HopByHop
        } else {
            proto(s).into()
        });
        ip.set_hop_limit(s.ttl);
        ip.set_src_addr(s.src6.into());
        ip.set_dst_addr(s.dst6.into());
        l3.extend_from_slice(&ext);
    } else {
        let hlen = 20 + 4 * usize::from(s.ip_opts);
        l3.resize(hlen, 1); // options: NOPs
        let mut ip = Ipv4Packet::new_unchecked(&mut l3[..]);
        ip.set_version(4);
        ip.set_header_len(hlen as u8);
        ip.set_dscp(s.tos >> 2);
        ip.set_ecn(s.tos & 3);
        ip.set_total_len((hlen + l4.len()) as u16);
        ip.set_ident(0x1234);
        ip.set_more_frags(s.frag4.0);
        ip.set_frag_offset(s.frag4.1 << 3);
        ip.set_hop_limit(s.ttl);
        ip.set_next_header(proto(s).into());
        ip.set_src_addr(s.src4.into());
        ip.set_dst_addr(s.dst4.into());
        ip.fill_checksum();
    }
    l3.extend_from_slice(&l4);

    let l3_type: u16 = if s.v6 { 0x86dd } else { 0x0800 };
    let mut tags = Vec::new();
    let outer_type = match s.vlan {
        None => l3_type,
        Some((tci, None)) => {
            tags.extend_from_slice(&tci.to_be_bytes());
            tags.extend_from_slice(&l3_type.to_be_bytes());
            0x8100
        }
        Some((stci, Some(ctci))) => {
            tags.extend_from_slice(&stci.to_be_bytes());
            tags.extend_from_slice(&[0x81, 0x00]);
            tags.extend_from_slice(&ctci.to_be_bytes());
            tags.extend_from_slice(&l3_type.to_be_bytes());
            0x88a8
        }
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(s.src),
        dst_addr: EthernetAddress(s.dst),
        ethertype: EthernetProtocol::from(outer_type),
    };
    let mut f = vec![0u8; eth.buffer_len() + tags.len() + l3.len() + s.padding];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f[14..14 + tags.len()].copy_from_slice(&tags);
    f[14 + tags.len()..14 + tags.len() + l3.len()].copy_from_slice(&l3);
    f
}

fn mac(a: EthernetAddress) -> u128 {
    a.0.iter().fold(0, |acc, &b| (acc << 8) | u128::from(b))
}

/// Compare the key with what smoltcp (and, for VLAN tags, which smoltcp lacks, our own
/// `VlanPacket` checked against the spec) reads from `f`.
fn check_against_smoltcp(s: &Spec, f: &[u8], k: &FlowKey, l: &Layout) {
    let eth = EthernetFrame::new_checked(f).unwrap();
    assert_eq!(k.get(Field::EthDst), mac(eth.dst_addr()));
    assert_eq!(k.get(Field::EthSrc), mac(eth.src_addr()));
    let mut ty = u16::from(eth.ethertype());
    let mut l3 = eth.payload();
    match s.vlan {
        None => assert_eq!(k.get(Field::VlanTci), 0),
        Some((outer, inner)) => {
            let tag = vlan::VlanPacket::new_checked(l3).unwrap();
            assert_eq!(tag.tci(), outer);
            assert_eq!(k.get(Field::VlanTci), u128::from(outer | 0x1000));
            ty = tag.ethertype();
            l3 = tag.payload();
            if let Some(inner) = inner {
                let tag = vlan::VlanPacket::new_checked(l3).unwrap();
                assert_eq!(tag.tci(), inner);
                ty = tag.ethertype();
                l3 = tag.payload();
            }
        }
    }
    assert_eq!(k.get(Field::EthType), u128::from(ty));
    assert_eq!(usize::from(l.l3), f.len() - l3.len());
    assert_eq!(
        usize::from(l.n_vlans),
        s.vlan.map_or(0, |v| 1 + v.1.is_some() as usize)
    );

    let (proto, l4, later) = if s.v6 {
        let ip = Ipv6Packet::new_checked(l3).unwrap();
        assert_eq!(k.get(Field::Ipv6Src), u128::from(ip.src_addr()));
        assert_eq!(k.get(Field::Ipv6Dst), u128::from(ip.dst_addr()));
        assert_eq!(k.get(Field::Ipv6Label), u128::from(ip.flow_label()));
        assert_eq!(k.get(Field::IpDscp), u128::from(ip.traffic_class() >> 2));
        assert_eq!(k.get(Field::IpEcn), u128::from(ip.traffic_class() & 3));
        assert_eq!(k.get(Field::IpTtl), u128::from(ip.hop_limit()));
        assert_eq!(k.get(Field::IpFrag), 0);
        assert_eq!(k.get(Field::Ipv4Src), 0);
        let mut nh = ip.next_header();
        let mut payload = ip.payload();
        if nh == IpProtocol::HopByHop {
            let ext = Ipv6ExtHeader::new_checked(payload).unwrap();
            nh = ext.next_header();
            payload = &payload[(usize::from(ext.header_len()) + 1) * 8..];
        }
        (u8::from(nh), payload, false)
    } else {
        let ip = Ipv4Packet::new_checked(l3).unwrap();
        assert_eq!(k.get(Field::Ipv4Src), u128::from(u32::from(ip.src_addr())));
        assert_eq!(k.get(Field::Ipv4Dst), u128::from(u32::from(ip.dst_addr())));
        assert_eq!(k.get(Field::IpDscp), u128::from(ip.dscp()));
        assert_eq!(k.get(Field::IpEcn), u128::from(ip.ecn()));
        assert_eq!(k.get(Field::IpTtl), u128::from(ip.hop_limit()));
        let later = ip.frag_offset() != 0;
        let frag = if later {
            nw_frag::ANY | nw_frag::LATER
        } else if ip.more_frags() {
            nw_frag::ANY
        } else {
            0
        };
        assert_eq!(k.get(Field::IpFrag), u128::from(frag));
        assert_eq!(k.get(Field::Ipv6Src), 0);
        (u8::from(ip.next_header()), ip.payload(), later)
    };
    assert_eq!(k.get(Field::IpProto), u128::from(proto));
    if later {
        assert_eq!(l.l4, Layout::NONE);
        assert_eq!(
            k.w[usize::from(crate::key::loc(Field::TcpSrc).word)],
            0,
            "no transport fields in a later fragment"
        );
        return;
    }
    // l4 is measured from the frame start; smoltcp's payload slice ends at the IP length, so
    // count from the frame end minus Ethernet padding.
    assert_eq!(usize::from(l.l4), f.len() - s.padding - l4.len());

    match proto {
        6 => {
            let t = TcpPacket::new_checked(l4).unwrap();
            assert_eq!(k.get(Field::TcpSrc), u128::from(t.src_port()));
            assert_eq!(k.get(Field::TcpDst), u128::from(t.dst_port()));
            let named = [
                (t.fin(), 0x001),
                (t.syn(), 0x002),
                (t.rst(), 0x004),
                (t.psh(), 0x008),
                (t.ack(), 0x010),
                (t.urg(), 0x020),
                (t.ece(), 0x040),
                (t.cwr(), 0x080),
                (t.ns(), 0x100),
            ]
            .iter()
            .fold(0u128, |acc, &(on, bit)| if on { acc | bit } else { acc });
            let flags = k.get(Field::TcpFlags);
            assert_eq!(flags & 0x1ff, named);
            // smoltcp has no getter for the three reserved bits: compare with what was built.
            if let L4::Tcp { flags: built, .. } = s.l4 {
                assert_eq!(flags, u128::from(built));
            }
        }
        17 => {
            let u = UdpPacket::new_checked(l4).unwrap();
            assert_eq!(k.get(Field::UdpSrc), u128::from(u.src_port()));
            assert_eq!(k.get(Field::UdpDst), u128::from(u.dst_port()));
            assert_eq!(k.get(Field::TcpFlags), 0);
        }
        1 => {
            let i = Icmpv4Packet::new_checked(l4).unwrap();
            assert_eq!(k.get(Field::IcmpType), u128::from(u8::from(i.msg_type())));
            assert_eq!(k.get(Field::IcmpCode), u128::from(i.msg_code()));
        }
        58 => {
            let i = Icmpv6Packet::new_checked(l4).unwrap();
            assert_eq!(k.get(Field::Icmpv6Type), u128::from(u8::from(i.msg_type())));
            assert_eq!(k.get(Field::Icmpv6Code), u128::from(i.msg_code()));
            assert_eq!(k.get(Field::NdTarget), 0);
        }
        _ => assert_eq!(k.w[usize::from(crate::key::loc(Field::TcpSrc).word)], 0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn extract_agrees_with_smoltcp(s in spec_strategy()) {
        let f = build(&s);
        // A key full of garbage first: every packet field must be overwritten.
        let mut k = FlowKey { w: [!0; crate::key::KEY_WORDS] };
        let l = extract(&f, &mut k).unwrap_or_else(|e| panic!("{e} on {f:02x?}"));
        check_against_smoltcp(&s, &f, &k, &l);
        // Metadata words untouched.
        for w in &k.w[..extract::FIRST_PACKET_WORD] {
            prop_assert_eq!(*w, !0);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut k = FlowKey::zero();
        if let Ok(l) = extract(&bytes, &mut k) {
            prop_assert!(usize::from(l.l3) <= bytes.len());
            prop_assert!(l.l4 == Layout::NONE || usize::from(l.l4) <= bytes.len());
        }
    }

    /// Random bytes behind a plausible Ethernet header reach the deeper parsers more often.
    #[test]
    fn random_payloads_never_panic(
        ty in prop_oneof![
            Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100), Just(0x88a8)
        ],
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(&body);
        let mut k = FlowKey::zero();
        if let Ok(l) = extract(&f, &mut k) {
            prop_assert!(l.l4 == Layout::NONE || usize::from(l.l4) <= f.len());
        }
    }

    /// Valid frames with a few bytes overwritten: every header shape, every field value.
    #[test]
    fn mutated_frames_never_panic(
        s in spec_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = build(&s);
        for (i, b) in edits {
            let i = i.index(f.len());
            f[i] = b;
        }
        let mut k = FlowKey::zero();
        let _ = extract(&f, &mut k);
        let n = cut.index(f.len() + 1);
        let _ = extract(&f[..n], &mut k);
    }

    /// Every frame the builder makes parses to its match, for random pinned values.
    #[test]
    fn build_round_trip(
        s in spec_strategy(),
    ) {
        let mut m = control::flow::ast::Match::new();
        let eth_type = if s.v6 { 0x86dd } else { 0x0800 };
        m.set_exact(Field::EthType, eth_type);
        m.set_exact(Field::EthSrc, mac(EthernetAddress(s.src)));
        if let Some((tci, _)) = s.vlan {
            m.set_exact(Field::VlanTci, u128::from(tci | 0x1000));
        }
        m.set_exact(Field::IpDscp, u128::from(s.tos >> 2));
        m.set_exact(Field::IpTtl, u128::from(s.ttl));
        if s.v6 {
            m.set_exact(Field::Ipv6Src, s.src6);
            m.set_exact(Field::Ipv6Label, u128::from(s.label));
        } else {
            m.set_exact(Field::Ipv4Dst, u128::from(s.dst4));
        }
        match s.l4 {
            L4::Tcp { flags, .. } => {
                m.set_exact(Field::TcpSrc, u128::from(s.sport));
                m.set_exact(Field::TcpFlags, u128::from(flags));
            }
            L4::Udp => {
                m.set_exact(Field::UdpDst, u128::from(s.dport));
            }
            L4::Icmp { ty, code } if !s.v6 => {
                m.set_exact(Field::IcmpType, u128::from(ty));
                m.set_exact(Field::IcmpCode, u128::from(code));
            }
            _ => {}
        }
        let f = build::frame_from_match(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut k = FlowKey::zero();
        extract(&f, &mut k).unwrap();
        prop_assert!(crate::key::MaskedKey::from_match(&m).matches(&k));
    }
}

/// Ethernet + IPv6 header around an ICMPv6 message, lengths consistent.
fn ipv6_frame(src: u128, dst: u128, hlim: u8, icmp: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40];
    EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        ethertype: EthernetProtocol::Ipv6,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let mut ip = Ipv6Packet::new_unchecked(&mut f[14..]);
    ip.set_version(6);
    ip.set_payload_len(icmp.len() as u16);
    ip.set_next_header(IpProtocol::Icmpv6);
    ip.set_hop_limit(hlim);
    ip.set_src_addr(src.into());
    ip.set_dst_addr(dst.into());
    f.extend_from_slice(icmp);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// ARP built by smoltcp's `ArpRepr`, read back by `ArpPacket`.
    #[test]
    fn arp_agrees_with_smoltcp(
        op in 1u16..5,
        sha in any::<[u8; 6]>(),
        tha in any::<[u8; 6]>(),
        spa in any::<u32>(),
        tpa in any::<u32>(),
        vlan in proptest::option::of(any::<u16>()),
    ) {
        use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr};
        let repr = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::from(op),
            source_hardware_addr: EthernetAddress(sha),
            source_protocol_addr: spa.into(),
            target_hardware_addr: EthernetAddress(tha),
            target_protocol_addr: tpa.into(),
        };
        let mut body = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
        let mut f = vec![0xff; 12];
        if let Some(tci) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&body);
        let mut k = FlowKey::zero();
        let l = extract(&f, &mut k).unwrap();
        prop_assert_eq!(l.l4, Layout::NONE);
        let a = ArpPacket::new_checked(&f[usize::from(l.l3)..]).unwrap();
        prop_assert_eq!(k.get(Field::ArpOp), u128::from(u16::from(a.operation())));
        let read = |b: &[u8]| b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x));
        prop_assert_eq!(k.get(Field::ArpSha), read(a.source_hardware_addr()));
        prop_assert_eq!(k.get(Field::ArpSpa), read(a.source_protocol_addr()));
        prop_assert_eq!(k.get(Field::ArpTha), read(a.target_hardware_addr()));
        prop_assert_eq!(k.get(Field::ArpTpa), read(a.target_protocol_addr()));
        prop_assert_eq!(k.get(Field::IpProto), 0);
    }

    /// Neighbor solicitations/advertisements built by smoltcp's `NdiscRepr`, parsed back by it.
    #[test]
    fn nd_agrees_with_smoltcp(
        advert in any::<bool>(),
        target in any::<u128>(),
        lladdr in proptest::option::of(any::<[u8; 6]>()),
        src in any::<u128>(),
        dst in any::<u128>(),
    ) {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{Icmpv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress};
        let ll = lladdr.map(|b| RawHardwareAddress::from(EthernetAddress(b)));
        let nd = if advert {
            NdiscRepr::NeighborAdvert {
                flags: NdiscNeighborFlags::SOLICITED,
                target_addr: target.into(),
                lladdr: ll,
            }
        } else {
            NdiscRepr::NeighborSolicit { target_addr: target.into(), lladdr: ll }
        };
        let repr = Icmpv6Repr::Ndisc(nd);
        let mut icmp = vec![0u8; repr.buffer_len()];
        repr.emit(
            &src.into(),
            &dst.into(),
            &mut Icmpv6Packet::new_unchecked(&mut icmp[..]),
            &ChecksumCapabilities::default(),
        );
        let f = ipv6_frame(src, dst, 255, &icmp);
        let mut k = FlowKey::zero();
        let l = extract(&f, &mut k).unwrap();

        let packet = Icmpv6Packet::new_checked(&f[usize::from(l.l4)..]).unwrap();
        let parsed = Icmpv6Repr::parse(
            &src.into(), &dst.into(), &packet, &ChecksumCapabilities::default(),
        ).unwrap();
        let mac = |r: Option<RawHardwareAddress>| {
            r.map_or(0, |r| r.as_bytes().iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x)))
        };
        let (ty, t, sll, tll) = match parsed {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, lladdr }) => {
                (135, target_addr, mac(lladdr), 0)
            }
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { target_addr, lladdr, .. }) => {
                (136, target_addr, 0, mac(lladdr))
            }
            other => panic!("unexpected {other:?}"),
        };
        prop_assert_eq!(k.get(Field::Icmpv6Type), ty);
        prop_assert_eq!(k.get(Field::Icmpv6Code), 0);
        prop_assert_eq!(k.get(Field::NdTarget), u128::from(t));
        prop_assert_eq!(k.get(Field::NdSll), sll);
        prop_assert_eq!(k.get(Field::NdTll), tll);
    }
}
