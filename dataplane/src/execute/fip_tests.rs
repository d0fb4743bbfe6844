//! `fip_dnat`, `fip_snat`, `fip_arp` end to end: translation with a FIP table, execution on
//! real frames, every checksum (outer and quoted) verified with smoltcp.

use super::testutil::*;
use super::*;
use crate::flowtable::{Pipeline, Rule};
use crate::xlate::{xlate, xlate_trace, FipEntry, FipStats, FipTable, XlateCtx, XlateOutput};
use control::flow::ast::{Action, FlowSpec, Match, OutputPort};
use smoltcp::wire::{
    ArpOperation, ArpPacket, EthernetFrame, IpAddress, Ipv4Address, Ipv4Packet, TcpPacket,
    UdpPacket,
};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const FIP: [u8; 4] = [192, 168, 111, 223];
const FIXED: [u8; 4] = [88, 88, 88, 4];
const CLIENT: [u8; 4] = [192, 168, 111, 210];
const ROUTER: [u8; 4] = [192, 168, 111, 1];
const FIP_MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0x4b, 0xeb, 0x3c];
const M1: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const M2: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

fn entry(fip: [u8; 4], fixed: [u8; 4], mac: Option<[u8; 6]>, owned: bool) -> FipEntry {
    FipEntry {
        fip: Ipv4Addr::from(fip),
        fixed: Ipv4Addr::from(fixed),
        mac,
        owned,
        claim: if owned { "standalone" } else { "not claimed" }.into(),
        stats: Arc::new(FipStats::default()),
    }
}

/// One table-0 flow with `actions` followed by output:2, and the FIPs.
fn pipeline(actions: Vec<Action>, fips: Vec<FipEntry>) -> Pipeline {
    let mut acts = actions;
    acts.push(Action::Output(OutputPort::Port(2)));
    let mut e = Pipeline::default().edit();
    e.insert(Rule::from_spec(&FlowSpec::new(0, 1, Match::new(), acts), 0));
    e.set_fips(Arc::new(FipTable::new(fips).expect("valid table")));
    e.finish()
}

fn std_pipeline(actions: Vec<Action>) -> Pipeline {
    pipeline(actions, vec![entry(FIP, FIXED, Some(FIP_MAC), true)])
}

fn translate(p: &Pipeline, key: &crate::key::FlowKey) -> XlateOutput {
    let ctx = XlateCtx {
        pipeline: p,
        ports: &[1, 2, 3],
        now_ms: 0,
        packet_len: 100,
    };
    let mut o = XlateOutput::new();
    xlate(&ctx, key, &mut o);
    o
}

/// Translate and execute `frame` (arriving on port 1); the frames output.
fn run(p: &Pipeline, frame: &[u8]) -> (XlateOutput, Vec<Vec<u8>>) {
    let (key, _) = extract_at_port(frame, 1).expect("test frame parses");
    let o = translate(p, &key);
    (o.clone(), exec_with(&o.actions, frame))
}

fn exec_with(actions: &[DpAction], frame: &[u8]) -> Vec<Vec<u8>> {
    let (key, layout) = extract_at_port(frame, 1).expect("test frame parses");
    let mut buf = PacketBuf::from_frame(frame);
    let mut outs = Vec::new();
    execute(
        actions,
        &mut buf,
        layout,
        &key,
        &mut |_, b: &mut PacketBuf| outs.push(b.data().to_vec()),
    )
    .expect("execute");
    outs
}

fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    eth(M1, M2, None, 0x0800, &ipv4(src, dst, proto, 64, l4))
}

fn l3(f: &[u8]) -> Ipv4Packet<&[u8]> {
    Ipv4Packet::new_checked(&f[14..]).unwrap()
}

/// An ICMP error from `src` to `dst` quoting `quoted` (an IPv4 packet), cut to `keep` bytes.
fn icmp_error(ty: u8, code: u8, src: [u8; 4], dst: [u8; 4], quoted: &[u8], keep: usize) -> Vec<u8> {
    let q = &quoted[..keep.min(quoted.len())];
    ipv4_frame(src, dst, 1, &icmp(ty, code, q))
}

/// Check the quote of an ICMP error frame: its IPv4 header checksum, and its UDP/TCP checksum
/// when the quote holds the whole datagram. Returns the quote.
fn verify_quote(frame: &[u8]) -> Vec<u8> {
    let outer = l3(frame);
    let quote = outer.payload()[8..].to_vec();
    let q = Ipv4Packet::new_unchecked(&quote[..]);
    assert!(q.verify_checksum(), "quoted IPv4 header checksum");
    if usize::from(q.total_len()) == quote.len() {
        let (s, d) = (IpAddress::Ipv4(q.src_addr()), IpAddress::Ipv4(q.dst_addr()));
        let ok = match u8::from(q.next_header()) {
            6 => TcpPacket::new_checked(q.payload())
                .unwrap()
                .verify_checksum(&s, &d),
            17 => {
                let u = UdpPacket::new_checked(q.payload()).unwrap();
                u.checksum() == 0 || u.verify_checksum(&s, &d)
            }
            _ => true,
        };
        assert!(ok, "quoted L4 checksum");
    }
    quote
}

fn one(outs: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(outs.len(), 1, "one output expected");
    let f = outs.into_iter().next().unwrap();
    verify_checksums(&f).expect("outer checksums");
    f
}

#[test]
fn dnat_and_snat_tcp_udp_icmp_echo() {
    let dn = std_pipeline(vec![Action::FipDnat]);
    let sn = std_pipeline(vec![Action::FipSnat]);
    let l4s: [(u8, Vec<u8>); 3] = [
        (6, tcp(40000, 22, 0x002, b"hello")),
        (17, udp(40000, 53, b"query")),
        (1, icmp(8, 0, b"ping")),
    ];
    for (proto, l4) in &l4s {
        // In: client -> FIP becomes client -> fixed.
        let f = ipv4_frame(CLIENT, FIP, *proto, l4);
        let (o, outs) = run(&dn, &f);
        let g = one(outs);
        assert_eq!(l3(&g).dst_addr(), Ipv4Address::from(FIXED), "{proto}");
        assert_eq!(l3(&g).src_addr(), Ipv4Address::from(CLIENT));
        assert_eq!(l3(&g).payload().len(), l4.len());
        assert!(!o
            .actions
            .iter()
            .any(|a| matches!(a, DpAction::FipIcmpQuoted { .. })));
        // Out: fixed -> client becomes FIP -> client.
        let f = ipv4_frame(FIXED, CLIENT, *proto, l4);
        let g = one(run(&sn, &f).1);
        assert_eq!(l3(&g).src_addr(), Ipv4Address::from(FIP), "{proto}");
        assert_eq!(l3(&g).dst_addr(), Ipv4Address::from(CLIENT));
    }
    // A UDP datagram without checksum keeps none.
    let mut f = ipv4_frame(CLIENT, FIP, 17, &udp(1, 2, b"x"));
    f[14 + 20 + 6] = 0;
    f[14 + 20 + 7] = 0;
    let g = one(run(&dn, &f).1);
    assert_eq!(&g[14 + 20 + 6..14 + 20 + 8], &[0, 0]);
}

#[test]
fn counters_per_direction() {
    let p = std_pipeline(vec![Action::FipDnat, Action::FipSnat]);
    let st = p.fips().entries()[0].stats.clone();
    let (o, _) = run(&p, &ipv4_frame(CLIENT, FIP, 17, &udp(1, 2, b"x")));
    // Counted once at translation, and the cache gets the counter for its later hits.
    assert_eq!(st.dnat.packets.load(Ordering::Relaxed), 1);
    assert_eq!(st.snat.packets.load(Ordering::Relaxed), 0);
    assert!(o.rules.iter().any(|r| Arc::ptr_eq(r, &st.dnat)));
    run(&p, &ipv4_frame(FIXED, CLIENT, 17, &udp(1, 2, b"x")));
    assert_eq!(st.snat.packets.load(Ordering::Relaxed), 1);
}

#[test]
fn non_matching_and_non_ipv4_packets_are_untouched() {
    let p = std_pipeline(vec![Action::FipDnat, Action::FipSnat]);
    for f in [
        ipv4_frame(CLIENT, ROUTER, 6, &tcp(1, 2, 0x10, b"other")),
        // The FIP as a source and the fixed IP as a destination are not translated.
        ipv4_frame(FIP, CLIENT, 17, &udp(1, 2, b"x")),
        ipv4_frame(CLIENT, FIXED, 17, &udp(1, 2, b"x")),
        eth(
            M1,
            M2,
            None,
            0x86dd,
            &ipv6([1; 16], [2; 16], 17, 64, &udp(1, 2, b"v6")),
        ),
        eth(M1, M2, None, 0x0806, &arp(1, M1, CLIENT, [0; 6], FIP)),
    ] {
        let (o, outs) = run(&p, &f);
        assert_eq!(o.actions, vec![DpAction::Output(2)], "{f:02x?}");
        assert_eq!(outs, vec![f]);
    }
}

#[test]
fn icmp_errors_in_are_translated_outer_and_quoted() {
    let dn = std_pipeline(vec![Action::FipDnat]);
    // What the inside host sent, and what left the switch (source-NATed).
    let sent = ipv4(FIXED, [10, 99, 0, 2], 17, 1, &udp(33434, 33435, b"probe"));
    let left = one(run(
        &std_pipeline(vec![Action::FipSnat]),
        &eth(M1, M2, None, 0x0800, &sent),
    )
    .1);
    let left_ip = left[14..].to_vec();
    assert_eq!(&left_ip[12..16], &FIP);
    // Time exceeded, fragmentation needed, parameter problem from the router, about it.
    for (ty, code) in [(11, 0), (3, 4), (3, 3), (12, 0)] {
        let err = icmp_error(ty, code, ROUTER, FIP, &left_ip, usize::MAX);
        let (o, outs) = run(&dn, &err);
        assert!(o
            .actions
            .iter()
            .any(|a| matches!(a, DpAction::FipIcmpQuoted { .. })));
        let g = one(outs);
        assert_eq!(l3(&g).dst_addr(), Ipv4Address::from(FIXED));
        let quote = verify_quote(&g);
        // The quote is again exactly what the host sent (TTL and all).
        assert_eq!(quote, sent, "type {ty}/{code}");
    }
    // TCP, whole header quoted (frag needed for a big segment).
    let sent = ipv4(FIXED, [10, 99, 0, 2], 6, 63, &tcp(5000, 80, 0x18, &[7; 40]));
    let left = one(run(
        &std_pipeline(vec![Action::FipSnat]),
        &eth(M1, M2, None, 0x0800, &sent),
    )
    .1);
    let err = icmp_error(3, 4, ROUTER, FIP, &left[14..], usize::MAX);
    let g = one(run(&dn, &err).1);
    assert_eq!(verify_quote(&g), sent);
}

#[test]
fn icmp_errors_out_are_translated_outer_and_quoted() {
    let sn = std_pipeline(vec![Action::FipSnat]);
    // The client's datagram reached the inside host as client -> fixed (after fip_dnat); the
    // host answers port unreachable from the fixed IP quoting it.
    let arrived = ipv4(CLIENT, FIXED, 17, 63, &udp(40000, 9, b"anyone?"));
    let err = icmp_error(3, 3, FIXED, CLIENT, &arrived, usize::MAX);
    let g = one(run(&sn, &err).1);
    assert_eq!(l3(&g).src_addr(), Ipv4Address::from(FIP));
    let quote = verify_quote(&g);
    assert_eq!(&quote[16..20], &FIP, "quoted destination is the FIP again");
    // ... which is what the client sent.
    assert_eq!(quote, ipv4(CLIENT, FIP, 17, 63, &udp(40000, 9, b"anyone?")));
}

#[test]
fn truncated_quotes() {
    let dn = std_pipeline(vec![Action::FipDnat]);
    let left = ipv4(
        FIP,
        [10, 99, 0, 2],
        17,
        1,
        &udp(33434, 33435, b"probe-payload"),
    );
    // 28 bytes (RFC 792 minimum): header + 8 bytes of UDP, whose checksum is quoted.
    // 24: header + ports only (the UDP checksum is not quoted: only the header is patched).
    // 20: header alone. 12: not even a whole header: the quote is left alone.
    for keep in [28, 24, 20, 12] {
        let err = icmp_error(11, 0, ROUTER, FIP, &left, keep);
        let g = one(run(&dn, &err).1);
        assert_eq!(l3(&g).dst_addr(), Ipv4Address::from(FIXED));
        let quote = &l3(&g).payload()[8..];
        if keep >= 20 {
            assert!(Ipv4Packet::new_unchecked(quote).verify_checksum());
            assert_eq!(&quote[12..16], &FIXED, "keep {keep}");
        } else {
            assert_eq!(quote, &left[..keep]);
        }
        if keep == 28 {
            // Same checksum as if the host's own datagram had been quoted.
            let orig = ipv4(
                FIXED,
                [10, 99, 0, 2],
                17,
                1,
                &udp(33434, 33435, b"probe-payload"),
            );
            assert_eq!(&quote[..28], &orig[..28]);
        }
        if keep == 24 {
            assert_eq!(&quote[20..24], &left[20..24]);
        }
    }
}

#[test]
fn errors_of_one_megaflow_quoting_different_packets() {
    let dn = std_pipeline(vec![Action::FipDnat]);
    let about_fip = ipv4(FIP, [10, 99, 0, 2], 17, 1, &udp(1, 2, b"a"));
    let about_other = ipv4([192, 168, 111, 50], [10, 99, 0, 2], 17, 1, &udp(1, 2, b"b"));
    let e1 = icmp_error(11, 0, ROUTER, FIP, &about_fip, usize::MAX);
    let e2 = icmp_error(11, 0, ROUTER, FIP, &about_other, usize::MAX);
    let (k1, _) = extract_at_port(&e1, 1).unwrap();
    let (k2, _) = extract_at_port(&e2, 1).unwrap();
    let o = translate(&dn, &k1);
    // Both keys fall in the megaflow of the first translation ...
    assert_eq!(k1.and(&o.wc), k2.and(&o.wc), "one megaflow");
    // ... and the cached actions handle each on its own quote.
    let g1 = one(exec_with(&o.actions, &e1));
    let g2 = one(exec_with(&o.actions, &e2));
    assert_eq!(&verify_quote(&g1)[12..16], &FIXED);
    let q2 = verify_quote(&g2);
    assert_eq!(q2, about_other, "a quote about another host is not touched");
    assert_eq!(l3(&g2).dst_addr(), Ipv4Address::from(FIXED));

    // An echo request to the FIP gets no quoted rewrite; an error must not share its megaflow
    // (nor a TCP segment's), or it would miss the quoted rewrite.
    for other in [
        ipv4_frame(ROUTER, FIP, 1, &icmp(8, 0, b"ping")),
        ipv4_frame(ROUTER, FIP, 6, &tcp(1, 2, 2, b"")),
    ] {
        let (ko, _) = extract_at_port(&other, 1).unwrap();
        let oo = translate(&dn, &ko);
        assert_ne!(ko.and(&oo.wc), k1.and(&oo.wc), "separate megaflows");
    }
}

#[test]
fn mask_has_what_the_decision_read() {
    let p = std_pipeline(vec![Action::FipDnat]);
    let (k, _) =
        extract_at_port(&ipv4_frame(CLIENT, [1, 2, 3, 4], 6, &tcp(1, 2, 2, b"")), 1).unwrap();
    let o = translate(&p, &k);
    // A miss depends on the destination: another destination (the FIP) must not share it.
    assert_eq!(o.wc.get(Field::Ipv4Dst), u128::from(u32::MAX));
    assert_eq!(o.wc.get(Field::EthType), 0xffff);
}

#[test]
fn icmp_error_not_to_the_fip_is_not_touched_inside() {
    // The outer destination is not the FIP: no translation, even if the quote names the FIP.
    let p = std_pipeline(vec![Action::FipDnat]);
    let left = ipv4(FIP, [10, 99, 0, 2], 17, 1, &udp(1, 2, b"a"));
    let err = icmp_error(11, 0, ROUTER, CLIENT, &left, usize::MAX);
    let (o, outs) = run(&p, &err);
    assert_eq!(o.actions, vec![DpAction::Output(2)]);
    assert_eq!(outs, vec![err]);
}

fn arp_request(spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    eth([0xff; 6], M1, None, 0x0806, &arp(1, M1, spa, [0; 6], tpa))
}

#[test]
fn fip_arp_answers_only_when_owned_with_a_mac() {
    let p = std_pipeline(vec![Action::FipArp]);
    let (o, outs) = run(&p, &arp_request(CLIENT, FIP));
    // The reply goes back out of the ingress port (1), and nothing else happens (no output:2).
    assert_eq!(
        o.actions.last(),
        Some(&DpAction::Output(1)),
        "{:?}",
        o.actions
    );
    assert_eq!(outs.len(), 1);
    let e = EthernetFrame::new_checked(&outs[0][..]).unwrap();
    assert_eq!(e.dst_addr().0, M1);
    assert_eq!(e.src_addr().0, FIP_MAC);
    let a = ArpPacket::new_checked(e.payload()).unwrap();
    assert_eq!(a.operation(), ArpOperation::Reply);
    assert_eq!(a.source_hardware_addr(), &FIP_MAC);
    assert_eq!(a.source_protocol_addr(), &FIP);
    assert_eq!(a.target_hardware_addr(), &M1);
    assert_eq!(a.target_protocol_addr(), &CLIENT);
    assert_eq!(
        p.fips().entries()[0]
            .stats
            .arp
            .packets
            .load(Ordering::Relaxed),
        1
    );

    // Not owned, no MAC, not a FIP, a gratuitous ARP, a reply: no answer, the flow goes on.
    let cases = [
        (
            pipeline(
                vec![Action::FipArp],
                vec![entry(FIP, FIXED, Some(FIP_MAC), false)],
            ),
            arp_request(CLIENT, FIP),
        ),
        (
            pipeline(vec![Action::FipArp], vec![entry(FIP, FIXED, None, true)]),
            arp_request(CLIENT, FIP),
        ),
        (p.clone(), arp_request(CLIENT, ROUTER)),
        (p.clone(), arp_request(FIP, FIP)),
        (
            p.clone(),
            eth(M2, M1, None, 0x0806, &arp(2, M1, CLIENT, M2, FIP)),
        ),
        (p.clone(), ipv4_frame(CLIENT, FIP, 17, &udp(1, 2, b"x"))),
    ];
    for (i, (p, f)) in cases.into_iter().enumerate() {
        let (o, outs) = run(&p, &f);
        assert_eq!(o.actions.last(), Some(&DpAction::Output(2)), "case {i}");
        assert_eq!(outs, vec![f], "case {i}");
    }
}

#[test]
fn trace_shows_the_translation() {
    let p = std_pipeline(vec![Action::FipDnat]);
    let (k, _) = extract_at_port(&ipv4_frame(CLIENT, FIP, 6, &tcp(1, 22, 2, b"")), 1).unwrap();
    let ctx = XlateCtx {
        pipeline: &p,
        ports: &[1, 2],
        now_ms: 0,
        packet_len: 60,
    };
    let mut o = XlateOutput::new();
    let t = xlate_trace(&ctx, &k, &mut o);
    let text = t.render(control::flow::format_match, control::flow::format_actions);
    assert!(
        text.contains("fip_dnat: destination 192.168.111.223 -> 88.88.88.4"),
        "{text}"
    );
    assert!(text.contains("set(ipv4(dst=88.88.88.4))"), "{text}");
    // An ICMP error: the quoted half is announced and shows in the datapath actions.
    let left = ipv4(FIP, [10, 99, 0, 2], 17, 1, &udp(1, 2, b"a"));
    let (k, _) = extract_at_port(&icmp_error(11, 0, ROUTER, FIP, &left, usize::MAX), 1).unwrap();
    let t = xlate_trace(&ctx, &k, &mut o);
    let text = t.render(control::flow::format_match, control::flow::format_actions);
    assert!(
        text.contains("ICMP error: the quoted header's source 192.168.111.223 -> 88.88.88.4"),
        "{text}"
    );
    assert!(
        text.contains("fip_icmp_quoted(src=192.168.111.223->88.88.88.4)"),
        "{text}"
    );
    // A trace is not traffic.
    assert_eq!(
        p.fips().entries()[0]
            .stats
            .dnat
            .packets
            .load(Ordering::Relaxed),
        0
    );
}

#[test]
fn table_refuses_ambiguous_mappings() {
    use crate::xlate::fip::FipTableError;
    let e = |f, x| entry(f, x, None, true);
    assert!(matches!(
        FipTable::new(vec![e(FIP, FIXED), e(FIP, [1, 1, 1, 1])]),
        Err(FipTableError::DuplicateFip(_))
    ));
    assert!(matches!(
        FipTable::new(vec![e(FIP, FIXED), e([1, 1, 1, 1], FIXED)]),
        Err(FipTableError::DuplicateFixed { .. })
    ));
    assert!(matches!(
        FipTable::new(vec![e(FIP, FIXED), e(FIXED, [1, 1, 1, 1])]),
        Err(FipTableError::BothRoles(_))
    ));
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    /// Frames around the FIP: any protocol, addresses from a small set that includes the FIP
    /// and the fixed IP, ICMP errors with quotes of every length, ARP, random bytes.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        let addr = prop_oneof![Just(FIP), Just(FIXED), Just(CLIENT), any::<[u8; 4]>()];
        (
            0u8..6,
            addr.clone(),
            addr.clone(),
            addr.clone(),
            addr,
            prop_oneof![Just(3u8), Just(11), Just(12), Just(0), Just(8), any::<u8>()],
            0u8..3,
            proptest::collection::vec(any::<u8>(), 0..60),
            0usize..80,
        )
            .prop_map(|(kind, s, d, qs, qd, ty, qp, payload, keep)| match kind {
                0 => ipv4_frame(s, d, 6, &tcp(1, 2, 0x18, &payload)),
                1 => ipv4_frame(s, d, 17, &udp(1, 2, &payload)),
                2 | 3 => {
                    let inner = match qp {
                        0 => ipv4(qs, qd, 6, 5, &tcp(3, 4, 2, &payload)),
                        1 => ipv4(qs, qd, 17, 5, &udp(3, 4, &payload)),
                        _ => ipv4(qs, qd, 1, 5, &icmp(8, 0, &payload)),
                    };
                    icmp_error(ty, 0, s, d, &inner, keep)
                }
                4 => eth([0xff; 6], M1, None, 0x0806, &arp(1, M1, s, [0; 6], d)),
                _ => payload,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Any frame through fip_arp, fip_dnat, fip_snat: no panic, and checksums that were
        /// valid stay valid (outer, and the quoted IPv4 header of an ICMP error).
        #[test]
        fn any_packet_no_panic_checksums_stay_valid(
            f in frame(),
            order in 0u8..3,
            corrupt in any::<bool>(),
        ) {
            let acts = match order {
                0 => vec![Action::FipDnat],
                1 => vec![Action::FipSnat],
                _ => vec![Action::FipArp, Action::FipSnat, Action::FipDnat],
            };
            let p = std_pipeline(acts);
            let Some((key, layout)) = extract_at_port(&f, 1) else { return Ok(()) };
            let mut f = f;
            if corrupt && f.len() > 40 {
                let n = f.len();
                f[n - 1] ^= 0x5a;
            }
            let valid_before = verify_checksums(&f).is_ok();
            let quote_ok = |g: &[u8]| -> bool {
                let Ok(ip) = Ipv4Packet::new_checked(&g[14..]) else { return true };
                if u8::from(ip.next_header()) != 1 || ip.payload().len() < 28 {
                    return true;
                }
                let q = &ip.payload()[8..];
                q[0] >> 4 != 4 || q[0] & 0xf != 5 || Ipv4Packet::new_unchecked(q).verify_checksum()
            };
            let quote_before = quote_ok(&f);
            let o = translate(&p, &key);
            let mut buf = PacketBuf::from_frame(&f);
            let mut outs = Vec::new();
            let r = execute(&o.actions, &mut buf, layout, &key, &mut |_, b: &mut PacketBuf| {
                outs.push(b.data().to_vec())
            });
            prop_assert!(r.is_ok(), "{:?}", r);
            for g in &outs {
                if valid_before {
                    prop_assert!(verify_checksums(g).is_ok(), "{:?}", verify_checksums(g));
                }
                if quote_before {
                    prop_assert!(quote_ok(g));
                }
            }
        }
    }
}
