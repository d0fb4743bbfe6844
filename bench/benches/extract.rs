//! Flow key extraction, ns per packet, on the frames a switch sees most; and smoltcp parsing
//! the same TCP/IPv4 frame, for scale.
//!
//! `cargo bench -p bench --bench extract -- --warm-up-time 1 --measurement-time 3`

use control::flow::ast::Match;
use control::flow::field::Field;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dataplane::key::FlowKey;
use dataplane::packet::{build::frame_from_match, extract};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{EthernetFrame, IpAddress, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr};

fn frame(fields: &[(Field, u128)]) -> Vec<u8> {
    let mut m = Match::new();
    for &(f, v) in fields {
        m.set_exact(f, v);
    }
    frame_from_match(&m).expect("bench frame")
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let tcp4 = [
        (Field::EthType, 0x0800),
        (Field::IpProto, 6),
        (Field::Ipv4Src, 0x0a00_0001),
        (Field::Ipv4Dst, 0xc0a8_6fdf),
        (Field::TcpSrc, 40000),
        (Field::TcpDst, 22),
    ];
    let mut vlan_tcp4 = tcp4.to_vec();
    vlan_tcp4.push((Field::VlanTci, 0x1000 | 100));
    vec![
        ("tcp4", frame(&tcp4)),
        ("vlan_tcp4", frame(&vlan_tcp4)),
        (
            "udp6",
            frame(&[
                (Field::EthType, 0x86dd),
                (Field::IpProto, 17),
                (Field::Ipv6Src, 0x2001_0db8 << 96 | 1),
                (Field::UdpSrc, 5353),
                (Field::UdpDst, 5353),
            ]),
        ),
        (
            "arp",
            frame(&[
                (Field::EthType, 0x0806),
                (Field::ArpOp, 1),
                (Field::ArpTpa, 0x0a00_0002),
            ]),
        ),
    ]
}

fn bench_extract(c: &mut Criterion) {
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(1));
    for (name, f) in frames() {
        let mut key = FlowKey::zero();
        g.bench_function(name, |b| {
            b.iter(|| {
                let l = extract(black_box(&f), &mut key);
                black_box(&key);
                l
            })
        });
    }
    g.finish();
}

fn bench_smoltcp(c: &mut Criterion) {
    let (_, f) = frames().swap_remove(0);
    let mut g = c.benchmark_group("smoltcp_tcp4");
    g.throughput(Throughput::Elements(1));
    // Checked views and the getters for the fields a flow key holds: the closest smoltcp
    // equivalent of what `extract` does.
    g.bench_function("views", |b| {
        b.iter(|| {
            let eth = EthernetFrame::new_checked(black_box(&f[..])).ok()?;
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
            Some((
                eth.dst_addr(),
                eth.src_addr(),
                eth.ethertype(),
                ip.src_addr(),
                ip.dst_addr(),
                ip.next_header(),
                ip.dscp(),
                ip.ecn(),
                ip.hop_limit(),
                ip.more_frags(),
                ip.frag_offset(),
                tcp.src_port(),
                tcp.dst_port(),
                tcp.syn(),
                tcp.ack(),
                tcp.fin(),
            ))
        })
    });
    // The full Repr parse a host stack does: validates and verifies checksums.
    g.bench_function("repr_with_checksums", |b| {
        let caps = ChecksumCapabilities::default();
        b.iter(|| {
            let eth = EthernetFrame::new_checked(black_box(&f[..])).ok()?;
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            let ip_repr = Ipv4Repr::parse(&ip, &caps).ok()?;
            let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
            let tcp_repr = TcpRepr::parse(
                &tcp,
                &IpAddress::Ipv4(ip_repr.src_addr),
                &IpAddress::Ipv4(ip_repr.dst_addr),
                &caps,
            )
            .ok()?;
            Some((ip_repr, tcp_repr.src_port, tcp_repr.dst_port))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_extract, bench_smoltcp);
criterion_main!(benches);
