//! Byte-array tests of the extractor: one static frame per protocol, exact key fields, and
//! every truncation of every frame.

use super::*;
use control::flow::field::{nw_frag, tcp_flags, Field};

/// Hex with whitespace and comments (`# ...` to end of line) ignored: frames below are written
/// one header per line.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: String = s
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<String>()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(digits.len() % 2, 0, "odd hex");
    (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

pub(crate) const VLAN_TCP: &str = "
    001122334455 66778899aabb     # dst, src
    8100 6064 0800                # 802.1Q pcp 3 vid 100, then IPv4
    45b8 0028 1234 4000 4006 0000 # dscp 46, total 40, DF, ttl 64, tcp
    0a000001 c0a86fdf             # 10.0.0.1 -> 192.168.111.223
    3039 0016 00000001 00000000   # 12345 -> 22
    5012 ffff 0000 0000           # doff 5, SYN|ACK
    000000000000                  # Ethernet padding
";

pub(crate) const QINQ_UDP: &str = "
    001122334455 66778899aabb
    88a8 000a 8100 0014 0800      # S-tag vid 10, C-tag vid 20
    4501 001c 0000 0000 1111 0000 # ecn 1, total 28, ttl 17, udp
    01020304 05060708
    0035 d431 0008 0000           # 53 -> 54321
";

pub(crate) const ARP_REQ: &str = "
    ffffffffffff 000000000001 0806
    0001 0800 06 04 0001          # Ethernet/IPv4 request
    000000000001 0a000001         # sha, spa
    000000000000 0a000002         # tha, tpa
";

const IPV4_OPTS_UDP: &str = "
    000000000002 000000000001 0800
    4600 0020 0000 0000 4011 0000 # ihl 6, total 32
    0a000001 0a000002
    01010100                      # NOP NOP NOP EOL
    1f90 0050 0008 0000           # 8080 -> 80
";

const IPV4_FIRST_FRAG: &str = "
    000000000002 000000000001 0800
    4500 0028 0001 2000 4006 0000 # MF, offset 0
    0a000001 0a000002
    0400 0050 00000000 00000000 5002 0000 0000 0000
";

const IPV4_LATER_FRAG: &str = "
    000000000002 000000000001 0800
    4500 001c 0001 00b9 4006 0000 # offset 185 * 8
    0a000001 0a000002
    0400 0050 00000000            # looks like ports, but is not a header
";

pub(crate) const IPV6_HBH_FRAG_UDP: &str = "
    000000000002 000000000001 86dd
    6b812345 0018 00 40           # tc 0xb8, label 0x12345, plen 24, hop-by-hop, hlim 64
    20010db8000000000000000000000001
    20010db8000000000000000000000002
    2c00 0104 00000000            # hop-by-hop -> fragment, PadN
    1100 0001 12345678            # fragment -> udp, offset 0, M
    1234 5678 0008 0000
";

const IPV6_LATER_FRAG: &str = "
    000000000002 000000000001 86dd
    60000000 0010 2c 40
    20010db8000000000000000000000001
    20010db8000000000000000000000002
    0600 0100 12345678            # fragment -> tcp, offset 32
    1234 5678 0000 0000
";

pub(crate) const ND_NS_SLL: &str = "
    333300000001 000000000001 86dd
    60000000 0020 3a ff
    fe800000000000000000000000000001
    ff0200000000000000000001ff000002
    8700 0000 00000000            # NS, code 0
    fe800000000000000000000000000002
    0101 000000000001             # SLL
";

const ND_NA_TLL: &str = "
    000000000001 000000000002 86dd
    60000000 0020 3a ff
    fe800000000000000000000000000002
    fe800000000000000000000000000001
    8800 0000 60000000            # NA, solicited + override
    fe800000000000000000000000000002
    0201 000000000002             # TLL
";

const SCTP: &str = "
    000000000002 000000000001 0800
    4500 0020 0000 0000 4084 0000 # sctp
    0a000001 0a000002
    0b59 0b5a 00000000 00000000   # 2905 -> 2906
";

const ICMP_ECHO: &str = "
    000000000002 000000000001 0800
    4500 001c 0000 0000 4001 0000
    0a000001 0a000002
    0800 0000 0001 0001           # echo request
";

const UNKNOWN_TYPE: &str = "000000000002 000000000001 88cc 0102030405";

pub(crate) const ALL_FRAMES: [&str; 13] = [
    VLAN_TCP,
    QINQ_UDP,
    ARP_REQ,
    IPV4_OPTS_UDP,
    IPV4_FIRST_FRAG,
    IPV4_LATER_FRAG,
    IPV6_HBH_FRAG_UDP,
    IPV6_LATER_FRAG,
    ND_NS_SLL,
    ND_NA_TLL,
    SCTP,
    ICMP_ECHO,
    UNKNOWN_TYPE,
];

fn parse(frame: &str) -> (FlowKey, Layout) {
    let mut k = FlowKey::zero();
    let l = extract(&hex(frame), &mut k).expect("parses");
    (k, l)
}

fn parse_err(bytes: &[u8]) -> Malformed {
    extract(bytes, &mut FlowKey::zero()).expect_err("malformed")
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
}

fn v4(s: &str) -> u128 {
    u128::from(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()))
}

#[test]
fn vlan_tcp() {
    let (k, l) = parse(VLAN_TCP);
    assert_eq!(k.get(Field::EthDst), 0x0011_2233_4455);
    assert_eq!(k.get(Field::EthSrc), 0x6677_8899_aabb);
    assert_eq!(k.get(Field::EthType), 0x0800);
    assert_eq!(k.get(Field::VlanTci), 0x7064);
    assert_eq!(k.get(Field::Ipv4Src), v4("10.0.0.1"));
    assert_eq!(k.get(Field::Ipv4Dst), v4("192.168.111.223"));
    assert_eq!(k.get(Field::IpProto), 6);
    assert_eq!(k.get(Field::IpDscp), 46);
    assert_eq!(k.get(Field::IpEcn), 0);
    assert_eq!(k.get(Field::IpTtl), 64);
    assert_eq!(k.get(Field::IpFrag), 0);
    assert_eq!(k.get(Field::TcpSrc), 12345);
    assert_eq!(k.get(Field::TcpDst), 22);
    assert_eq!(
        k.get(Field::TcpFlags),
        u128::from(tcp_flags::SYN | tcp_flags::ACK)
    );
    assert_eq!(
        l,
        Layout {
            n_vlans: 1,
            l3: 18,
            l4: 38
        }
    );
}

#[test]
fn qinq_udp() {
    let (k, l) = parse(QINQ_UDP);
    assert_eq!(k.get(Field::VlanTci), 0x100a, "outer tag, present bit");
    assert_eq!(k.get(Field::EthType), 0x0800, "innermost type");
    assert_eq!(k.get(Field::IpEcn), 1);
    assert_eq!(k.get(Field::IpDscp), 0);
    assert_eq!(k.get(Field::IpTtl), 17);
    assert_eq!(k.get(Field::IpProto), 17);
    assert_eq!(k.get(Field::UdpSrc), 53);
    assert_eq!(k.get(Field::UdpDst), 54321);
    assert_eq!(k.get(Field::TcpFlags), 0);
    assert_eq!(
        l,
        Layout {
            n_vlans: 2,
            l3: 22,
            l4: 42
        }
    );
}

#[test]
fn arp_request() {
    let (k, l) = parse(ARP_REQ);
    assert_eq!(k.get(Field::EthType), 0x0806);
    assert_eq!(k.get(Field::VlanTci), 0);
    assert_eq!(k.get(Field::ArpOp), 1);
    assert_eq!(k.get(Field::ArpSpa), v4("10.0.0.1"));
    assert_eq!(k.get(Field::ArpTpa), v4("10.0.0.2"));
    assert_eq!(k.get(Field::ArpSha), 1);
    assert_eq!(k.get(Field::ArpTha), 0);
    assert_eq!(k.get(Field::IpProto), 0);
    assert_eq!(l.l3, 14);
    assert_eq!(l.l4, Layout::NONE);
}

#[test]
fn rarp_is_parsed_like_arp() {
    let mut f = hex(ARP_REQ);
    f[12..14].copy_from_slice(&[0x80, 0x35]);
    f[21] = 3;
    let mut k = FlowKey::zero();
    extract(&f, &mut k).unwrap();
    assert_eq!(k.get(Field::EthType), 0x8035);
    assert_eq!(k.get(Field::ArpOp), 3);
    assert_eq!(k.get(Field::ArpSha), 1);
}

#[test]
fn ipv4_options_are_skipped() {
    let (k, l) = parse(IPV4_OPTS_UDP);
    assert_eq!(k.get(Field::UdpSrc), 8080);
    assert_eq!(k.get(Field::UdpDst), 80);
    assert_eq!(l.l4, 14 + 24);
}

#[test]
fn ipv4_fragments() {
    let (k, l) = parse(IPV4_FIRST_FRAG);
    assert_eq!(k.get(Field::IpFrag), u128::from(nw_frag::ANY));
    assert_eq!(k.get(Field::TcpSrc), 1024);
    assert_eq!(k.get(Field::TcpDst), 80);
    assert_eq!(k.get(Field::TcpFlags), u128::from(tcp_flags::SYN));
    assert_eq!(l.l4, 34);

    let (k, l) = parse(IPV4_LATER_FRAG);
    assert_eq!(
        k.get(Field::IpFrag),
        u128::from(nw_frag::ANY | nw_frag::LATER)
    );
    assert_eq!(k.get(Field::IpProto), 6);
    assert_eq!(k.get(Field::TcpSrc), 0, "no L4 in later fragments");
    assert_eq!(k.get(Field::TcpDst), 0);
    assert_eq!(l.l4, Layout::NONE);
}

#[test]
fn ipv6_hop_by_hop_and_fragment() {
    let (k, l) = parse(IPV6_HBH_FRAG_UDP);
    assert_eq!(k.get(Field::EthType), 0x86dd);
    assert_eq!(k.get(Field::Ipv6Src), v6("2001:db8::1"));
    assert_eq!(k.get(Field::Ipv6Dst), v6("2001:db8::2"));
    assert_eq!(k.get(Field::Ipv6Label), 0x12345);
    assert_eq!(k.get(Field::IpDscp), 0xb8 >> 2);
    assert_eq!(k.get(Field::IpEcn), 0);
    assert_eq!(k.get(Field::IpTtl), 64);
    assert_eq!(k.get(Field::IpProto), 17, "final next header");
    assert_eq!(k.get(Field::IpFrag), u128::from(nw_frag::ANY));
    assert_eq!(k.get(Field::UdpSrc), 0x1234);
    assert_eq!(k.get(Field::UdpDst), 0x5678);
    assert_eq!(k.get(Field::Ipv4Src), 0, "no IPv4 fields");
    assert_eq!(l.l4, 14 + 40 + 16);

    let (k, l) = parse(IPV6_LATER_FRAG);
    assert_eq!(
        k.get(Field::IpFrag),
        u128::from(nw_frag::ANY | nw_frag::LATER)
    );
    assert_eq!(k.get(Field::IpProto), 6);
    assert_eq!(k.get(Field::TcpSrc), 0);
    assert_eq!(l.l4, Layout::NONE);
}

#[test]
fn nd_solicit_with_sll() {
    let (k, l) = parse(ND_NS_SLL);
    assert_eq!(k.get(Field::IpProto), 58);
    assert_eq!(k.get(Field::IpTtl), 255);
    assert_eq!(k.get(Field::Icmpv6Type), 135);
    assert_eq!(k.get(Field::Icmpv6Code), 0);
    assert_eq!(k.get(Field::NdTarget), v6("fe80::2"));
    assert_eq!(k.get(Field::NdSll), 1);
    assert_eq!(k.get(Field::NdTll), 0);
    assert_eq!(l.l4, 54);
}

#[test]
fn nd_advert_with_tll() {
    let (k, _) = parse(ND_NA_TLL);
    assert_eq!(k.get(Field::Icmpv6Type), 136);
    assert_eq!(k.get(Field::NdTarget), v6("fe80::2"));
    assert_eq!(k.get(Field::NdSll), 0);
    assert_eq!(k.get(Field::NdTll), 2);
}

#[test]
fn sctp_and_icmp() {
    let (k, _) = parse(SCTP);
    assert_eq!(k.get(Field::IpProto), 132);
    assert_eq!(k.get(Field::SctpSrc), 2905);
    assert_eq!(k.get(Field::SctpDst), 2906);

    let (k, _) = parse(ICMP_ECHO);
    assert_eq!(k.get(Field::IpProto), 1);
    assert_eq!(k.get(Field::IcmpType), 8);
    assert_eq!(k.get(Field::IcmpCode), 0);
}

#[test]
fn unknown_ethertype_has_ethernet_fields_only() {
    let (k, l) = parse(UNKNOWN_TYPE);
    assert_eq!(k.get(Field::EthType), 0x88cc);
    assert_eq!(k.get(Field::EthDst), 2);
    assert_eq!(
        l,
        Layout {
            n_vlans: 0,
            l3: 14,
            l4: Layout::NONE
        }
    );
    // 802.3 length field: OVS's "no Ethertype" value.
    let mut f = hex(UNKNOWN_TYPE);
    f[12..14].copy_from_slice(&[0x00, 0x40]);
    let mut k = FlowKey::zero();
    extract(&f, &mut k).unwrap();
    assert_eq!(k.get(Field::EthType), 0x05ff);
}

#[test]
fn metadata_words_untouched_and_packet_words_cleared() {
    let mut k = FlowKey::zero();
    for w in k.w.iter_mut() {
        *w = 0xa5a5_a5a5_a5a5_a5a5;
    }
    let before = k;
    extract(&hex(UNKNOWN_TYPE), &mut k).unwrap();
    for f in Field::all() {
        let l = crate::key::loc(f);
        if usize::from(l.word) < extract::FIRST_PACKET_WORD {
            assert_eq!(k.get(f), before.get(f), "{f:?} changed");
        } else if !matches!(f, Field::EthSrc | Field::EthDst | Field::EthType) {
            assert_eq!(k.get(f), 0, "{f:?} leaked");
        }
    }
    // Whole words, not just the named bits (padding bits in the SHA/THA words too).
    for i in extract::FIRST_PACKET_WORD + 2..crate::key::KEY_WORDS {
        assert_eq!(k.w[i], 0, "word {i}");
    }
}

#[test]
fn every_truncation_parses_or_is_malformed() {
    for f in ALL_FRAMES {
        let full = hex(f);
        for n in 0..full.len() {
            let mut k = FlowKey::zero();
            // Must not panic; either outcome is fine here.
            let _ = extract(&full[..n], &mut k);
        }
    }
}

#[test]
fn truncation_reasons() {
    let f = hex(VLAN_TCP);
    assert_eq!(parse_err(&f[..0]), Malformed::TruncatedEthernet);
    assert_eq!(parse_err(&f[..13]), Malformed::TruncatedEthernet);
    assert_eq!(parse_err(&f[..14]), Malformed::TruncatedVlan);
    assert_eq!(parse_err(&f[..17]), Malformed::TruncatedVlan);
    assert_eq!(parse_err(&f[..18]), Malformed::BadIpv4);
    assert_eq!(parse_err(&f[..37]), Malformed::BadIpv4);
    // The IPv4 total length still claims the whole TCP header.
    assert_eq!(parse_err(&f[..50]), Malformed::BadIpv4);
    // Exactly the IP length: padding gone, fine.
    assert!(extract(&f[..58], &mut FlowKey::zero()).is_ok());

    let q = hex(QINQ_UDP);
    assert_eq!(parse_err(&q[..20]), Malformed::TruncatedVlan);

    let a = hex(ARP_REQ);
    assert_eq!(parse_err(&a[..14 + 27]), Malformed::BadArp);

    let v = hex(IPV6_HBH_FRAG_UDP);
    assert_eq!(parse_err(&v[..14 + 39]), Malformed::BadIpv6);
    assert_eq!(parse_err(&v[..v.len() - 1]), Malformed::BadIpv6);

    let n = hex(ND_NS_SLL);
    assert_eq!(parse_err(&n[..n.len() - 1]), Malformed::BadIpv6);
}

/// Shrink the IP length fields along with the frame, so the cut lands in a transport header
/// or extension header that the IP header claims is complete.
fn cut_consistently(frame: &str, l3: usize, n: usize) -> Vec<u8> {
    let mut f = hex(frame);
    f.truncate(n);
    let ip_len = n - l3;
    if f[l3] >> 4 == 4 {
        f[l3 + 2..l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    } else {
        f[l3 + 4..l3 + 6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
    }
    f
}

#[test]
fn transport_reasons() {
    assert_eq!(
        parse_err(&cut_consistently(VLAN_TCP, 18, 18 + 20 + 19)),
        Malformed::BadTcp
    );
    // Data offset beyond the segment.
    let mut f = hex(VLAN_TCP);
    f[18 + 20 + 12] = 0x60;
    assert_eq!(parse_err(&f), Malformed::BadTcp);
    // Data offset below 5.
    f[18 + 20 + 12] = 0x40;
    assert_eq!(parse_err(&f), Malformed::BadTcp);

    assert_eq!(
        parse_err(&cut_consistently(QINQ_UDP, 22, 22 + 20 + 7)),
        Malformed::BadUdp
    );
    assert_eq!(
        parse_err(&cut_consistently(SCTP, 14, 14 + 20 + 11)),
        Malformed::BadSctp
    );
    assert_eq!(
        parse_err(&cut_consistently(ICMP_ECHO, 14, 14 + 20 + 7)),
        Malformed::BadIcmp
    );
    assert_eq!(
        parse_err(&cut_consistently(IPV6_HBH_FRAG_UDP, 14, 14 + 40 + 7)),
        Malformed::BadIpv6Ext
    );
    assert_eq!(
        parse_err(&cut_consistently(IPV6_HBH_FRAG_UDP, 14, 14 + 40 + 15)),
        Malformed::BadIpv6Ext
    );
    assert_eq!(
        parse_err(&cut_consistently(IPV6_HBH_FRAG_UDP, 14, 14 + 40 + 16 + 7)),
        Malformed::BadUdp
    );
    // ND: target cut short, then a half option.
    assert_eq!(
        parse_err(&cut_consistently(ND_NS_SLL, 14, 14 + 40 + 20)),
        Malformed::BadNd
    );
    assert_eq!(
        parse_err(&cut_consistently(ND_NS_SLL, 14, 14 + 40 + 28)),
        Malformed::BadNd
    );
    // An ICMPv6 cut before the ND body is an ICMP problem, not an ND one.
    assert_eq!(
        parse_err(&cut_consistently(ND_NS_SLL, 14, 14 + 40 + 3)),
        Malformed::BadIcmp
    );
}

#[test]
fn bad_headers() {
    let mut f = hex(VLAN_TCP);
    f[18] = 0x65; // version 6 in an IPv4 Ethertype
    assert_eq!(parse_err(&f), Malformed::BadIpv4);
    f[18] = 0x44; // IHL 4
    assert_eq!(parse_err(&f), Malformed::BadIpv4);
    let mut f = hex(VLAN_TCP);
    f[18 + 3] = 19; // total length shorter than the header
    assert_eq!(parse_err(&f), Malformed::BadIpv4);

    let mut a = hex(ARP_REQ);
    a[18] = 8; // hlen
    assert_eq!(parse_err(&a), Malformed::BadArp);

    let mut v = hex(IPV6_HBH_FRAG_UDP);
    v[14] = 0x4b;
    assert_eq!(parse_err(&v), Malformed::BadIpv6);
}

#[test]
fn nd_options() {
    let n = hex(ND_NS_SLL);
    let opt = 14 + 40 + 24;
    // Zero-length option.
    let mut f = n.clone();
    f[opt + 1] = 0;
    assert_eq!(parse_err(&f), Malformed::BadNd);
    // Option longer than the message.
    f[opt + 1] = 2;
    assert_eq!(parse_err(&f), Malformed::BadNd);
    // A TLL in a solicitation is skipped, not stored.
    let mut f = n.clone();
    f[opt] = 2;
    let mut k = FlowKey::zero();
    extract(&f, &mut k).unwrap();
    assert_eq!(k.get(Field::NdSll), 0);
    assert_eq!(k.get(Field::NdTll), 0);
    // Two SLL options.
    let mut f = cut_consistently(ND_NS_SLL, 14, n.len());
    f.extend_from_slice(&n[opt..]);
    let plen = (f.len() - 54) as u16;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(parse_err(&f), Malformed::BadNd);
    // Nonzero code: plain ICMPv6, ND body not looked at.
    let mut f = n.clone();
    f[54 + 1] = 1;
    f[opt + 1] = 0;
    let mut k = FlowKey::zero();
    extract(&f, &mut k).unwrap();
    assert_eq!(k.get(Field::Icmpv6Code), 1);
    assert_eq!(k.get(Field::NdTarget), 0);
}

#[test]
fn reused_key_does_not_leak() {
    let mut k = FlowKey::zero();
    extract(&hex(ARP_REQ), &mut k).unwrap();
    extract(&hex(ND_NA_TLL), &mut k).unwrap();
    let mut fresh = FlowKey::zero();
    extract(&hex(ND_NA_TLL), &mut fresh).unwrap();
    assert_eq!(k, fresh);
}

#[test]
fn malformed_names_are_unique() {
    let names: std::collections::HashSet<_> = Malformed::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names.len(), Malformed::ALL.len());
}
