use super::testutil::*;
use super::*;
use crate::flowtable::Pipeline;
use crate::xlate::{xlate, DropReason, XlateCtx, XlateOutput};
use control::flow::ast::{Action, FlowSpec, Match, OutputPort, Subfield};
use smoltcp::wire::{
    ArpOperation, ArpPacket, EthernetFrame, IpAddress, Ipv4Address, Ipv4Packet, Ipv6Address,
    Ipv6Packet, TcpPacket, UdpPacket,
};

const M1: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const M2: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// Run `actions` on `frame`; returns the outputs (port-ish, bytes).
fn exec(frame: &[u8], in_port: u32, actions: &[DpAction]) -> Vec<(Egress, Vec<u8>)> {
    let (key, layout) = extract_at_port(frame, in_port).expect("test frame parses");
    let mut buf = PacketBuf::from_frame(frame);
    let mut outs = Vec::new();
    execute(
        actions,
        &mut buf,
        layout,
        &key,
        &mut |e, b: &mut PacketBuf| outs.push((e, b.data().to_vec())),
    )
    .expect("execute");
    outs
}

/// Run `actions` and return the frame as finally output (the last output).
fn exec1(frame: &[u8], actions: &[DpAction]) -> Vec<u8> {
    let mut a = actions.to_vec();
    a.push(DpAction::Output(99));
    let outs = exec(frame, 1, &a);
    let f = outs.last().unwrap().1.clone();
    verify_checksums(&f).unwrap();
    f
}

fn ip4(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

fn set4(src: Option<[u8; 4]>, dst: Option<[u8; 4]>) -> DpAction {
    DpAction::SetIpv4 {
        src: src.map(ip4),
        dst: dst.map(ip4),
        tos: None,
        ttl: None,
    }
}

fn l3(f: &[u8]) -> Ipv4Packet<&[u8]> {
    Ipv4Packet::new_checked(&f[14..]).unwrap()
}

#[test]
fn ipv4_rewrite_tcp_udp_icmp() {
    let (a, b, n1, n2) = (
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        [88, 88, 88, 4],
        [192, 168, 111, 223],
    );
    for l4 in [
        tcp(1000, 22, 0x2, b"hello"),
        udp(53, 5353, b"q"),
        icmp(8, 0, b"ping"),
    ] {
        let proto = match l4.len() {
            25 => 6,
            9 => 17,
            _ => 1,
        };
        let f = eth(M1, M2, None, 0x0800, &ipv4(a, b, proto, 64, &l4));
        verify_checksums(&f).unwrap();
        let g = exec1(&f, &[set4(Some(n1), Some(n2))]);
        let p = l3(&g);
        assert_eq!(p.src_addr(), Ipv4Address::from(n1));
        assert_eq!(p.dst_addr(), Ipv4Address::from(n2));
        assert_eq!(p.payload().len(), l4.len());
    }
}

#[test]
fn ports_rewrite_and_udp_zero_checksum_stays_zero() {
    let f = eth(
        M1,
        M2,
        None,
        0x0800,
        &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 6, 64, &tcp(1, 2, 0x10, b"x")),
    );
    let g = exec1(
        &f,
        &[DpAction::SetL4Ports {
            proto: 6,
            src: Some(4242),
            dst: Some(443),
        }],
    );
    let t = TcpPacket::new_checked(&g[34..]).unwrap();
    assert_eq!((t.src_port(), t.dst_port()), (4242, 443));

    let mut ip = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, 64, &udp(1, 2, b"abc"));
    ip[26..28].copy_from_slice(&[0, 0]); // no checksum
    let f = eth(M1, M2, None, 0x0800, &ip);
    let g = exec1(
        &f,
        &[
            set4(Some([9, 9, 9, 9]), None),
            DpAction::SetL4Ports {
                proto: 17,
                src: None,
                dst: Some(53),
            },
        ],
    );
    let u = UdpPacket::new_checked(&g[34..]).unwrap();
    assert_eq!(u.checksum(), 0);
    assert_eq!(u.dst_port(), 53);
}

#[test]
fn udp_checksum_that_becomes_zero_is_sent_as_ffff() {
    // Find a source port for which the rewritten checksum is 0: it must go out as 0xffff.
    let f = eth(
        M1,
        M2,
        None,
        0x0800,
        &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, 64, &udp(1, 2, b"abcd")),
    );
    let c = u16::from_be_bytes([f[40], f[41]]);
    // new checksum = ~(~c + ~1 + p) == 0  <=>  ~c + ~1 + p == 0xffff (one's complement)
    let p = (0..=0xffffu16)
        .find(|&p| crate::checksum::update16(c, 1, p) == 0)
        .unwrap();
    let g = exec1(
        &f,
        &[DpAction::SetL4Ports {
            proto: 17,
            src: Some(p),
            dst: None,
        }],
    );
    assert_eq!(u16::from_be_bytes([g[40], g[41]]), 0xffff);
}

#[test]
fn ttl_tos_rewrite() {
    let f = eth(
        M1,
        M2,
        None,
        0x0800,
        &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 6, 64, &tcp(1, 2, 2, b"")),
    );
    let g = exec1(
        &f,
        &[DpAction::SetIpv4 {
            src: None,
            dst: None,
            tos: Some(0xb8),
            ttl: Some(63),
        }],
    );
    let p = l3(&g);
    assert_eq!(p.hop_limit(), 63);
    assert_eq!((p.dscp(), p.ecn()), (0xb8 >> 2, 0));
}

#[test]
fn push_pop_vlan() {
    let f = eth(
        M1,
        M2,
        None,
        0x0800,
        &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 6, 64, &tcp(1, 2, 2, b"")),
    );
    let actions = [
        DpAction::PushVlan {
            tpid: 0x8100,
            tci: 0x2000 | 100,
        },
        DpAction::Output(1),
        DpAction::SetVlanTci(200),
        DpAction::SetIpv4 {
            src: None,
            dst: None,
            tos: None,
            ttl: Some(9),
        },
        DpAction::Output(2),
        DpAction::PopVlan,
        DpAction::Output(3),
    ];
    let outs = exec(&f, 7, &actions);
    assert_eq!(outs.len(), 3);
    let (k1, l1) = extract_at_port(&outs[0].1, 0).unwrap();
    assert_eq!(l1.n_vlans, 1);
    assert_eq!(k1.get(Field::VlanTci), 0x1000 | 0x2000 | 100);
    assert_eq!(&outs[0].1[0..12], &f[0..12]);
    assert_eq!(&outs[0].1[16..], &f[12..]);
    let (k2, _) = extract_at_port(&outs[1].1, 0).unwrap();
    assert_eq!(k2.get(Field::VlanTci), 0x1000 | 200);
    assert_eq!(k2.get(Field::IpTtl), 9);
    for (_, o) in &outs {
        verify_checksums(o).unwrap();
    }
    assert_eq!(outs[2].1.len(), f.len());
    assert_eq!(&outs[2].1[..22], &f[..22]);
    assert_eq!(outs[2].0, Egress::Port(3));
}

#[test]
fn ipv6_rewrite_tcp_and_nd() {
    let s: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let d: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let n: [u8; 16] = [
        0x20, 0x01, 0xd, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 9,
    ];
    let f = eth(
        M1,
        M2,
        None,
        0x86dd,
        &ipv6(s, d, 6, 64, &tcp(5, 6, 2, b"data")),
    );
    verify_checksums(&f).unwrap();
    let g = exec1(
        &f,
        &[
            DpAction::SetIpv6Src(n),
            DpAction::SetIpv6Dst(s),
            DpAction::SetIpv6 {
                tc: Some(0x2e),
                hlim: Some(3),
                label: Some(0x12345),
            },
        ],
    );
    let p = Ipv6Packet::new_checked(&g[14..]).unwrap();
    assert_eq!(p.src_addr(), Ipv6Address::from(n));
    assert_eq!(p.dst_addr(), Ipv6Address::from(s));
    assert_eq!(p.hop_limit(), 3);
    assert_eq!(p.traffic_class(), 0x2e);
    assert_eq!(p.version(), 6);
    let t = TcpPacket::new_checked(p.payload()).unwrap();
    assert!(t.verify_checksum(&IpAddress::Ipv6(n.into()), &IpAddress::Ipv6(s.into())));

    // Neighbor solicitation with a source link-layer address option.
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&d);
    ns.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 2]);
    let f = eth(M1, M2, None, 0x86dd, &ipv6(s, d, 58, 255, &ns));
    verify_checksums(&f).unwrap();
    let g = exec1(
        &f,
        &[
            DpAction::SetNdTarget(n),
            DpAction::SetNd {
                sll: Some([0xfa, 0x16, 0x3e, 1, 2, 3]),
                tll: None,
            },
            DpAction::SetIcmp {
                ty: None,
                code: Some(0),
            },
        ],
    );
    let (k, _) = extract_at_port(&g, 0).unwrap();
    assert_eq!(k.get(Field::NdTarget), u128::from_be_bytes(n));
    assert_eq!(k.get(Field::NdSll), 0xfa16_3e01_0203);
}

#[test]
fn icmp_type_code_rewrite() {
    let f = eth(
        M1,
        M2,
        None,
        0x0800,
        &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1, 64, &icmp(8, 0, b"abc")),
    );
    let g = exec1(
        &f,
        &[DpAction::SetIcmp {
            ty: Some(0),
            code: Some(3),
        }],
    );
    assert_eq!((g[34], g[35]), (0, 3));
}

#[test]
fn truncated_frames_are_errors_not_panics() {
    let f = eth(
        M1,
        M2,
        None,
        0x0800,
        &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 6, 64, &tcp(1, 2, 2, b"")),
    );
    let (key, layout) = extract_at_port(&f, 1).unwrap();
    let all = [
        set4(Some([1, 1, 1, 1]), None),
        DpAction::SetL4Ports {
            proto: 6,
            src: Some(1),
            dst: None,
        },
        DpAction::PopVlan,
        DpAction::SetEth {
            src: Some(M1),
            dst: None,
        },
    ];
    for len in 0..f.len() {
        for a in &all {
            let mut buf = PacketBuf::from_frame(&f[..len]);
            let _ = execute(
                std::slice::from_ref(a),
                &mut buf,
                layout,
                &key,
                &mut |_, _| {},
            );
        }
    }
    let mut buf = PacketBuf::from_frame(&f[..30]);
    assert_eq!(
        execute(&all[..1], &mut buf, layout, &key, &mut |_, _| {}),
        Err(ExecError::Truncated)
    );
    // No headroom: a push is refused, not a reallocation or panic.
    let mut raw = f.clone();
    let n = raw.len();
    let mut buf = PacketBuf::new(&mut raw[..], 0, n).unwrap();
    assert_eq!(
        execute(
            &[DpAction::PushVlan {
                tpid: 0x8100,
                tci: 1
            }],
            &mut buf,
            layout,
            &key,
            &mut |_, _| {}
        ),
        Err(ExecError::NoHeadroom)
    );
}

#[test]
fn later_fragments_get_no_l4_rewrite() {
    let mut ip = ipv4(
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        6,
        64,
        &tcp(1, 2, 2, b"abcdefgh"),
    );
    {
        let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
        p.set_dont_frag(false);
        p.set_frag_offset(64);
        p.fill_checksum();
    }
    let f = eth(M1, M2, None, 0x0800, &ip);
    let (key, layout) = extract_at_port(&f, 1).unwrap();
    let mut buf = PacketBuf::from_frame(&f);
    execute(
        &[
            set4(Some([9, 9, 9, 9]), None),
            DpAction::SetL4Ports {
                proto: 6,
                src: Some(7),
                dst: None,
            },
        ],
        &mut buf,
        layout,
        &key,
        &mut |_, _| {},
    )
    .unwrap();
    let g = buf.data();
    assert!(l3(g).verify_checksum());
    // The "TCP header" bytes (really payload of a later fragment) are untouched.
    assert_eq!(&g[34..], &f[34..]);
}

// ---------------------------------------------------------------------------------------
// The seed's three scenarios (host5 dump-flows of /work/shared/seeds/000_315d3c4e9c3d5728.txt).

fn flow(table: u8, priority: u16, m: Match, actions: Vec<Action>) -> FlowSpec {
    FlowSpec::new(table, priority, m, actions)
}

fn matches(fields: &[(Field, u128)]) -> Match {
    fields.iter().copied().collect()
}

fn build(specs: &[FlowSpec]) -> Pipeline {
    let mut e = Pipeline::default().edit();
    for s in specs {
        e.insert(crate::flowtable::Rule::from_spec(s, 0));
    }
    e.finish()
}

fn translate(p: &Pipeline, key: &crate::key::FlowKey) -> XlateOutput {
    let ctx = XlateCtx {
        pipeline: p,
        ports: &[3, 5, 7],
        now_ms: 0,
        packet_len: 64,
    };
    let mut o = XlateOutput::new();
    xlate(&ctx, key, &mut o);
    o
}

fn whole(f: Field) -> Subfield {
    Subfield::whole(f)
}

fn set_field(field: Field, value: u128) -> Action {
    Action::SetField {
        field,
        value,
        mask: field.full_mask(),
    }
}

const GW_MAC: u128 = 0xfa16_3e4b_eb3c;

/// (a) table 20 answers ARP requests for 88.88.88.4 by rewriting the request into a reply
/// and sending it back out of the ingress port.
#[test]
fn seed_a_arp_responder() {
    let p = build(&[
        flow(
            0,
            100,
            matches(&[(Field::InPort, 3)]),
            vec![Action::GotoTable(20)],
        ),
        flow(
            20,
            1024,
            matches(&[
                (Field::EthType, 0x0806),
                (Field::TunId, 0x43e),
                (Field::ArpTpa, 0x5858_5804),
                (Field::ArpOp, 1),
            ]),
            vec![
                Action::Move {
                    src: whole(Field::EthSrc),
                    dst: whole(Field::EthDst),
                },
                set_field(Field::EthSrc, GW_MAC),
                Action::Load {
                    value: 2,
                    dst: whole(Field::ArpOp),
                },
                Action::Move {
                    src: whole(Field::ArpSha),
                    dst: whole(Field::ArpTha),
                },
                Action::Move {
                    src: whole(Field::ArpSpa),
                    dst: whole(Field::ArpTpa),
                },
                Action::Load {
                    value: GW_MAC,
                    dst: whole(Field::ArpSha),
                },
                Action::Load {
                    value: 0x5858_5804,
                    dst: whole(Field::ArpSpa),
                },
                Action::Output(OutputPort::InPort),
            ],
        ),
    ]);
    let vm: [u8; 6] = [0xfa, 0x16, 0x3e, 0x11, 0x22, 0x33];
    let f = eth(
        [0xff; 6],
        vm,
        None,
        0x0806,
        &arp(1, vm, [88, 88, 88, 10], [0; 6], [88, 88, 88, 4]),
    );
    let (mut key, layout) = extract_at_port(&f, 3).unwrap();
    key.set(Field::TunId, 0x43e);
    let o = translate(&p, &key);
    assert_eq!(o.drop_reason, None);
    assert_eq!(*o.actions.last().unwrap(), DpAction::Output(3));
    let mut buf = PacketBuf::from_frame(&f);
    let mut sent = Vec::new();
    execute(
        &o.actions,
        &mut buf,
        layout,
        &key,
        &mut |e, b: &mut PacketBuf| sent.push((e, b.data().to_vec())),
    )
    .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Egress::Port(3));
    let g = &sent[0].1;
    let e = EthernetFrame::new_checked(&g[..]).unwrap();
    assert_eq!(e.dst_addr().0, vm);
    assert_eq!(e.src_addr().0, [0xfa, 0x16, 0x3e, 0x4b, 0xeb, 0x3c]);
    let a = ArpPacket::new_checked(e.payload()).unwrap();
    assert_eq!(a.operation(), ArpOperation::Reply);
    assert_eq!(
        a.source_hardware_addr(),
        &[0xfa, 0x16, 0x3e, 0x4b, 0xeb, 0x3c]
    );
    assert_eq!(a.source_protocol_addr(), &[88, 88, 88, 4]);
    assert_eq!(a.target_hardware_addr(), &vm);
    assert_eq!(a.target_protocol_addr(), &[88, 88, 88, 10]);
    // Not an ARP request for us: no match in table 20.
    key.set(Field::ArpTpa, 0x5858_5805);
    assert_eq!(translate(&p, &key).drop_reason, Some(DropReason::TableMiss));
}

fn seed_b_pipeline(table40_fallback: bool) -> Pipeline {
    let mut specs = vec![
        flow(0, 0, Match::new(), vec![Action::GotoTable(30)]),
        flow(
            30,
            1024,
            matches(&[
                (Field::EthType, 0x0800),
                (Field::InPort, 5),
                (Field::Ipv4Dst, 0xc0a8_6fdf),
            ]),
            vec![
                set_field(Field::Ipv4Dst, 0x5858_5804),
                Action::Load {
                    value: 0x43e,
                    dst: whole(Field::Reg(3)),
                },
                Action::GotoTable(40),
            ],
        ),
        flow(
            40,
            36001,
            matches(&[
                (Field::EthType, 0x0800),
                (Field::InPort, 7),
                (Field::EthSrc, GW_MAC),
                (Field::Ipv4Src, 0x5858_5804),
            ]),
            vec![Action::GotoTable(50)],
        ),
    ];
    if table40_fallback {
        specs.push(flow(
            40,
            1,
            matches(&[(Field::Reg(3), 0x43e)]),
            vec![Action::Output(OutputPort::Port(7))],
        ));
    }
    build(&specs)
}

/// (b) table 30 DNATs the floating IP 192.168.111.223 to 88.88.88.4 and tags reg3.
#[test]
fn seed_b_floating_ip_dnat() {
    let f = tcp4_frame([192, 168, 111, 210], [192, 168, 111, 223], 17350, 22, 0);
    let (key, layout) = extract_at_port(&f, 5).unwrap();
    // The seed's table 40 only has the in_port=7 rule: the packet reaches it and misses.
    let o = translate(&seed_b_pipeline(false), &key);
    assert_eq!(o.final_key.get(Field::Ipv4Dst), 0x5858_5804);
    assert_eq!(o.final_key.get(Field::Reg(3)), 0x43e);
    assert_eq!(o.stats.lookups, 3);
    assert_eq!(o.drop_reason, Some(DropReason::TableMiss));
    // With a fallback in table 40 the rewritten packet goes out.
    let o = translate(&seed_b_pipeline(true), &key);
    assert_eq!(
        o.actions,
        vec![
            DpAction::SetIpv4 {
                src: None,
                dst: Some(0x5858_5804),
                tos: None,
                ttl: None
            },
            DpAction::Output(7)
        ]
    );
    let mut buf = PacketBuf::from_frame(&f);
    let mut sent = Vec::new();
    execute(
        &o.actions,
        &mut buf,
        layout,
        &key,
        &mut |e, b: &mut PacketBuf| sent.push((e, b.data().to_vec())),
    )
    .unwrap();
    let g = &sent[0].1;
    verify_checksums(g).unwrap();
    assert_eq!(l3(g).dst_addr(), Ipv4Address::new(88, 88, 88, 4));
    let (k2, _) = extract_at_port(g, 5).unwrap();
    assert_eq!(k2.w[16..], o.final_key.w[16..]);
}

/// (c) table 100 SNATs replies from 88.88.88.4 back to the floating IP and routes them.
#[test]
fn seed_c_floating_ip_snat_routed() {
    let p = build(&[
        flow(0, 0, Match::new(), vec![Action::GotoTable(100)]),
        flow(
            100,
            512,
            matches(&[
                (Field::EthType, 0x0800),
                (Field::TunId, 0x43e),
                (Field::EthDst, 0xfa16_3e91_5fa0),
                (Field::Ipv4Src, 0x5858_5804),
            ]),
            vec![
                set_field(Field::EthSrc, 0xfa16_3e74_dbc7),
                Action::DecTtl,
                set_field(Field::EthDst, 0x2cab_009a_0437),
                set_field(Field::Ipv4Src, 0xc0a8_6fdf),
                Action::Output(OutputPort::Port(5)),
            ],
        ),
    ]);
    let t = tcp(22, 17350, 0x012, b"");
    let ip = ipv4([88, 88, 88, 4], [192, 168, 111, 210], 6, 64, &t);
    let f = eth(
        [0xfa, 0x16, 0x3e, 0x91, 0x5f, 0xa0],
        [0xfa, 0x16, 0x3e, 0x4b, 0xeb, 0x3c],
        None,
        0x0800,
        &ip,
    );
    let (mut key, layout) = extract_at_port(&f, 7).unwrap();
    key.set(Field::TunId, 0x43e);
    let o = translate(&p, &key);
    assert_eq!(o.drop_reason, None);
    assert_eq!(
        o.actions,
        vec![
            DpAction::SetEth {
                src: Some([0xfa, 0x16, 0x3e, 0x74, 0xdb, 0xc7]),
                dst: Some([0x2c, 0xab, 0x00, 0x9a, 0x04, 0x37]),
            },
            DpAction::SetIpv4 {
                src: Some(0xc0a8_6fdf),
                dst: None,
                tos: None,
                ttl: Some(63)
            },
            DpAction::Output(5)
        ]
    );
    let mut buf = PacketBuf::from_frame(&f);
    let mut sent = Vec::new();
    execute(
        &o.actions,
        &mut buf,
        layout,
        &key,
        &mut |e, b: &mut PacketBuf| sent.push((e, b.data().to_vec())),
    )
    .unwrap();
    assert_eq!(sent[0].0, Egress::Port(5));
    let g = &sent[0].1;
    verify_checksums(g).unwrap();
    let p4 = l3(g);
    assert_eq!(p4.src_addr(), Ipv4Address::new(192, 168, 111, 223));
    assert_eq!(p4.hop_limit(), 63);
    let tc = TcpPacket::new_checked(p4.payload()).unwrap();
    assert!(tc.verify_checksum(
        &IpAddress::Ipv4(p4.src_addr()),
        &IpAddress::Ipv4(p4.dst_addr())
    ));
    // TTL 1: dropped, nothing sent.
    key.set(Field::IpTtl, 1);
    let o = translate(&p, &key);
    assert_eq!(o.drop_reason, Some(DropReason::TtlExceeded));
    assert!(o.actions.is_empty());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    /// A random valid frame: TCP/UDP/ICMP over IPv4 or IPv6, optionally tagged, or ARP.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..7,
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<(u16, u16)>(),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(any::<u8>(), 0..40),
            1u8..=255,
        )
            .prop_map(|(kind, s4, d4, s6, d6, (sp, dp), vlan, payload, ttl)| {
                let vlan = vlan.map(|t| t & !0x1000);
                match kind {
                    0 => eth(
                        M1,
                        M2,
                        vlan,
                        0x0800,
                        &ipv4(s4, d4, 6, ttl, &tcp(sp, dp, 0x18, &payload)),
                    ),
                    1 => eth(
                        M1,
                        M2,
                        vlan,
                        0x0800,
                        &ipv4(s4, d4, 17, ttl, &udp(sp, dp, &payload)),
                    ),
                    2 => eth(
                        M1,
                        M2,
                        vlan,
                        0x0800,
                        &ipv4(s4, d4, 1, ttl, &icmp(8, 0, &payload)),
                    ),
                    3 => eth(
                        M1,
                        M2,
                        vlan,
                        0x86dd,
                        &ipv6(s6, d6, 6, ttl, &tcp(sp, dp, 0x18, &payload)),
                    ),
                    4 => eth(
                        M1,
                        M2,
                        vlan,
                        0x86dd,
                        &ipv6(s6, d6, 17, ttl, &udp(sp, dp, &payload)),
                    ),
                    5 => eth(
                        M1,
                        M2,
                        vlan,
                        0x86dd,
                        &ipv6(s6, d6, 58, ttl, &icmp(128, 0, &payload)),
                    ),
                    _ => eth(M1, M2, vlan, 0x0806, &arp(1, M2, s4, [0; 6], d4)),
                }
            })
    }

    const FIELDS: [Field; 18] = [
        Field::EthSrc,
        Field::EthDst,
        Field::VlanTci,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::IpDscp,
        Field::IpEcn,
        Field::IpTtl,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::Ipv6Label,
        Field::TcpSrc,
        Field::TcpDst,
        Field::IcmpType,
        Field::IcmpCode,
        Field::ArpOp,
        Field::ArpSha,
        Field::ArpTha,
    ];

    fn act() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => (0..FIELDS.len(), any::<u128>()).prop_map(|(i, v)| {
                let f = FIELDS[i];
                let v = if f == Field::VlanTci { (v | 0x1000) & 0xffff } else { v & f.full_mask() };
                Action::SetField { field: f, value: v, mask: f.full_mask() }
            }),
            1 => Just(Action::DecTtl),
            1 => Just(Action::PushVlan(0x8100)),
            1 => Just(Action::PopVlan),
            1 => (1u32..4).prop_map(|p| Action::Output(OutputPort::Port(p))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// xlate → execute → re-extract gives the key translation predicted at every output,
        /// and every checksum verifies.
        #[test]
        fn executed_frames_match_the_translated_key(
            f in frame(),
            acts in proptest::collection::vec(act(), 0..8),
        ) {
            let (key, layout) = extract_at_port(&f, 9).unwrap();
            // Only fields meaningful for this packet (the daemon checks prerequisites).
            let acts: Vec<Action> = acts
                .into_iter()
                .filter(|a| match a {
                    Action::SetField { field, .. } => crate::xlate::trace::field_applies(*field, &key),
                    _ => true,
                })
                .chain([Action::Output(OutputPort::Port(5))])
                .collect();
            // Predicted key at each output: run the prefix of actions up to that output.
            let mut predicted = Vec::new();
            for (i, a) in acts.iter().enumerate() {
                if matches!(a, Action::Output(_)) {
                    let p = build(&[flow(0, 1, Match::new(), acts[..i].to_vec())]);
                    predicted.push(translate(&p, &key));
                }
            }
            let p = build(&[flow(0, 1, Match::new(), acts.clone())]);
            let o = translate(&p, &key);
            let mut buf = PacketBuf::from_frame(&f);
            let mut sent = Vec::new();
            execute(&o.actions, &mut buf, layout, &key, &mut |e, b: &mut PacketBuf| {
                sent.push((e, b.data().to_vec()))
            }).unwrap();
            if o.drop_reason == Some(DropReason::TtlExceeded) {
                return Ok(());
            }
            if o.drop_reason.is_some_and(DropReason::is_error) {
                // e.g. a third VLAN tag: the whole packet is dropped, nothing goes out.
                prop_assert!(sent.is_empty());
                return Ok(());
            }
            prop_assert_eq!(sent.len(), predicted.len());
            for ((_, g), pk) in sent.iter().zip(&predicted) {
                prop_assert!(verify_checksums(g).is_ok(), "{:?}", verify_checksums(g));
                let (k2, _) = extract_at_port(g, 9).unwrap();
                prop_assert_eq!(&k2.w[16..], &pk.final_key.w[16..]);
            }
        }
    }
}

#[test]
fn sctp_port_rewrite_recomputes_crc32c() {
    let mut sctp = vec![0u8; 12];
    sctp[0..2].copy_from_slice(&5000u16.to_be_bytes());
    sctp[2..4].copy_from_slice(&6000u16.to_be_bytes());
    sctp[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    sctp.extend_from_slice(&[0, 3, 0, 8, 1, 2, 3, 4]); // a chunk
    let crc = crate::checksum::crc32c(&sctp);
    sctp[8..12].copy_from_slice(&crc.to_le_bytes());
    let mut f = eth(
        M1,
        M2,
        None,
        0x0800,
        &ipv4([1, 2, 3, 4], [5, 6, 7, 8], 132, 64, &sctp),
    );
    f.extend_from_slice(&[0; 6]); // Ethernet padding is not part of the SCTP packet
    let g = exec1(
        &f,
        &[DpAction::SetL4Ports {
            proto: 132,
            src: None,
            dst: Some(7000),
        }],
    );
    let mut s = g[34..34 + sctp.len()].to_vec();
    assert_eq!(u16::from_be_bytes([s[2], s[3]]), 7000);
    let stored = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
    s[8..12].fill(0);
    assert_eq!(stored, crate::checksum::crc32c(&s));
}

#[test]
fn one_frame_to_several_ports_sees_each_state() {
    let f = tcp4_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 10);
    let outs = exec(
        &f,
        1,
        &[
            DpAction::Output(2),
            set4(None, Some([9, 9, 9, 9])),
            DpAction::Output(3),
            DpAction::Normal,
        ],
    );
    assert_eq!(outs[0], (Egress::Port(2), f.clone()));
    assert_eq!(outs[1].0, Egress::Port(3));
    assert_eq!(l3(&outs[1].1).dst_addr(), Ipv4Address::new(9, 9, 9, 9));
    assert_eq!(outs[2], (Egress::Normal, outs[1].1.clone()));
}
