//! NAT behaviour tests: SNAT/DNAT bindings, allocation, exhaustion, ICMP, IPv6, races and a
//! property test.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;

use crate::ct_state::{DNAT, EST, INV, NEW, REL, RPL, SNAT, TRK};
use crate::packet::tcp_flags::{ACK, SYN};
use crate::*;

const S: u64 = 1000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
) -> PacketInfo {
    PacketInfo::tcp(
        0,
        src,
        dst,
        TcpInfo {
            sport,
            dport,
            seq,
            ack,
            window: 65535,
            flags,
            wscale: None,
            payload_len: 0,
        },
    )
}

fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> PacketInfo {
    tcp(src, sport, dst, dport, SYN, 1000, 0)
}

/// Apply a rewrite to a packet's key, as the datapath would.
fn apply(t: &Tuple, r: Option<Rewrite>) -> Tuple {
    let mut t = *t;
    if let Some(r) = r {
        if let Some((a, p)) = r.src {
            t.src = a;
            if let Some(p) = p {
                t.sport = p;
            }
        }
        if let Some((a, p)) = r.dst {
            t.dst = a;
            if let Some(p) = p {
                t.dport = p;
            }
        }
        if let Some(id) = r.icmp_id {
            t.sport = id;
        }
    }
    t
}

/// No key is used by two connections of a zone (either direction).
fn keys_unique(ct: &Conntrack) {
    let mut seen = HashSet::new();
    for e in ct.entries(None, 0) {
        assert!(seen.insert(e.original), "original key used twice: {e:?}");
        if e.reply != e.original {
            assert!(seen.insert(e.reply), "reply key used twice: {e:?}");
        }
    }
    ct.check_invariants();
}

#[test]
fn snat_200_concurrent_connections_get_distinct_ports() {
    let ct = Arc::new(Conntrack::default());
    let nat_ip = ip("203.0.113.1");
    let server = ip("198.51.100.10");
    let req = NatRequest::snat(nat_ip).with_ports(1024, 65535);
    let handles: Vec<_> = (0..4u8)
        .map(|c| {
            let ct = Arc::clone(&ct);
            std::thread::spawn(move || {
                let client = IpAddr::from([10, 0, 0, c + 1]);
                (0..50u16)
                    .map(|i| {
                        // Every client uses the same ports: translation must separate them.
                        let p = syn(client, 40000 + i, server, 443);
                        let v = ct.process_nat(&p, 0, true, Some(&req));
                        assert_eq!(v.verdict.state, TRK | NEW | SNAT);
                        let out = apply(&p.tuple(), v.rewrite);
                        assert_eq!(out.src, nat_ip);
                        assert_eq!((out.dst, out.dport), (server, 443));
                        (p, out)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let conns: Vec<(PacketInfo, Tuple)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(conns.len(), 200);
    let ports: HashSet<u16> = conns.iter().map(|(_, o)| o.sport).collect();
    assert_eq!(ports.len(), 200, "distinct translated ports");
    assert_eq!(ct.len(), 200);
    keys_unique(&ct);
    // Replies come to the NAT address and find their connection; the reverse rewrite
    // restores the client's address and port.
    let nat = NatRequest::bare();
    for (p, out) in &conns {
        let r = tcp(server, 443, nat_ip, out.sport, SYN | ACK, 5000, 1001);
        let v = ct.process_nat(&r, S, true, Some(&nat));
        assert_eq!(v.verdict.state, TRK | EST | RPL | SNAT, "{out:?}");
        let back = apply(&r.tuple(), v.rewrite);
        assert_eq!(back, p.tuple().reverse());
        assert_eq!(v.rewrite.unwrap().src, None);
    }
    let e = ct.entries(None, S);
    assert!(e.iter().all(|e| e.snat && !e.dnat && e.reply.dst == nat_ip));
}

#[test]
fn port_range_exhaustion_refuses_and_counts() {
    let ct = Conntrack::default();
    let req = NatRequest::snat(ip("203.0.113.1")).with_ports(5000, 5009);
    let server = ip("198.51.100.10");
    let mut ok = HashSet::new();
    for i in 0..12u16 {
        let p = syn(ip("10.0.0.1"), 30000 + i, server, 80);
        let v = ct.process_nat(&p, 0, true, Some(&req));
        if i < 10 {
            let port = v.rewrite.unwrap().src.unwrap().1.unwrap();
            assert!((5000..=5009).contains(&port));
            assert!(ok.insert(port));
        } else {
            assert_eq!(v.verdict.state, TRK | INV);
            assert_eq!(v.verdict.invalid, Some(InvalidReason::NatExhausted));
            assert_eq!(
                v.rewrite, None,
                "never sent untranslated: the caller drops it"
            );
        }
    }
    assert_eq!(ct.len(), 10);
    assert_eq!(ct.invalid_count(InvalidReason::NatExhausted), 2);
    assert!(ct.event_counters().contains(&("nat_exhausted", 2)));
    assert_eq!(ct.nat_exhausted_log(100 * S), Some(2));
    assert_eq!(ct.nat_exhausted_log(101 * S), None);
    // Another destination has its own port space.
    let p = syn(ip("10.0.0.1"), 30000, ip("198.51.100.11"), 80);
    assert!(ct.process_nat(&p, 0, true, Some(&req)).verdict.has(NEW));
    // A freed binding is reusable.
    assert_eq!(
        ct.flush(None, Some(syn(ip("10.0.0.1"), 30000, server, 80).tuple())),
        1
    );
    let p = syn(ip("10.0.0.1"), 30011, server, 80);
    assert!(ct
        .process_nat(&p, 0, true, Some(&req))
        .verdict
        .has(NEW | SNAT));
    keys_unique(&ct);
    // Expiry cleans remote records too.
    ct.expire(1_000_000 * S);
    assert!(ct.is_empty());
    ct.check_invariants();
}

#[test]
fn snat_keeps_the_port_when_free() {
    let ct = Conntrack::default();
    let req = NatRequest::snat(ip("203.0.113.1"));
    let p = syn(ip("10.0.0.1"), 40000, ip("198.51.100.1"), 80);
    let v = ct.process_nat(&p, 0, true, Some(&req));
    assert_eq!(v.rewrite.unwrap().src, Some((ip("203.0.113.1"), None)));
    // Same port from another client: moved to the ephemeral range.
    let p = syn(ip("10.0.0.2"), 40000, ip("198.51.100.1"), 80);
    let v = ct.process_nat(&p, 0, true, Some(&req));
    let (a, port) = v.rewrite.unwrap().src.unwrap();
    assert_eq!(a, ip("203.0.113.1"));
    assert!(port.is_some_and(|p| p >= 1024 && p != 40000));
    keys_unique(&ct);
}

#[test]
fn dnat_port_forward_both_ways() {
    let ct = Conntrack::default();
    let (client, public, backend) = (ip("198.51.100.7"), ip("203.0.113.1"), ip("10.0.0.5"));
    let req = NatRequest::dnat(backend, Some(80));
    let p = syn(client, 33333, public, 8080);
    let v = ct.process_nat(&p, 0, true, Some(&req));
    assert_eq!(v.verdict.state, TRK | NEW | DNAT);
    let r = v.rewrite.unwrap();
    assert_eq!((r.src, r.dst), (None, Some((backend, Some(80)))));
    // The backend answers the client directly; the source becomes the public endpoint.
    let reply = tcp(backend, 80, client, 33333, SYN | ACK, 5000, 1001);
    let v = ct.process_nat(&reply, S, true, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | EST | RPL | DNAT);
    let r = v.rewrite.unwrap();
    assert_eq!((r.src, r.dst), (Some((public, Some(8080))), None));
    // The client's ACK is forwarded again (a `dnat` request with another target changes
    // nothing: the binding is the connection's).
    let other = NatRequest::dnat(ip("10.0.0.99"), Some(81));
    let ack = tcp(client, 33333, public, 8080, ACK, 1001, 5001);
    let v = ct.process_nat(&ack, 2 * S, true, Some(&other));
    assert_eq!(v.verdict.state, TRK | EST | DNAT);
    assert_eq!(v.rewrite.unwrap().dst, Some((backend, Some(80))));
    let e = &ct.entries(None, 2 * S)[0];
    assert!(e.dnat && !e.snat);
    assert_eq!((e.reply.src, e.reply.sport), (backend, 80));
    assert_eq!((e.reply.dst, e.reply.dport), (client, 33333));
    assert_eq!(e.state, "ESTABLISHED");
    keys_unique(&ct);
}

#[test]
fn dnat_collision_moves_the_source_port() {
    let ct = Conntrack::default();
    let (client, backend) = (ip("198.51.100.7"), ip("10.0.0.5"));
    let req = NatRequest::dnat(backend, Some(80));
    // One client, one port, two public addresses forwarded to the same backend.
    let a = syn(client, 33333, ip("203.0.113.1"), 80);
    let b = syn(client, 33333, ip("203.0.113.2"), 80);
    let ra = ct.process_nat(&a, 0, true, Some(&req)).rewrite.unwrap();
    assert_eq!((ra.src, ra.dst), (None, Some((backend, None))));
    let rb = ct.process_nat(&b, 0, true, Some(&req)).rewrite.unwrap();
    let (sa, sp) = rb.src.unwrap();
    assert_eq!(sa, client);
    let sp = sp.unwrap();
    assert_ne!(sp, 33333);
    assert_eq!(rb.dst, Some((backend, None)));
    // The backend's answers to each port go back through the right public address.
    let reply = tcp(backend, 80, client, sp, SYN | ACK, 5000, 1001);
    let v = ct.process_nat(&reply, 0, true, Some(&NatRequest::bare()));
    let r = v.rewrite.unwrap();
    assert_eq!(r.src, Some((ip("203.0.113.2"), None)));
    assert_eq!(r.dst, Some((client, Some(33333))));
    keys_unique(&ct);
}

#[test]
fn floating_ip_one_to_one_both_ways() {
    let ct = Conntrack::default();
    let (floating, fixed, peer) = (ip("203.0.113.10"), ip("10.0.0.10"), ip("198.51.100.2"));
    // Inbound: DNAT of the floating address, ports untouched.
    let p = PacketInfo::udp(0, peer, floating, 5000, 53);
    let v = ct.process_nat(&p, 0, true, Some(&NatRequest::dnat(fixed, None)));
    assert_eq!(v.rewrite.unwrap().dst, Some((fixed, None)));
    let r = PacketInfo::udp(0, fixed, peer, 53, 5000);
    let v = ct.process_nat(&r, 0, true, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | EST | RPL | DNAT);
    assert_eq!(v.rewrite.unwrap().src, Some((floating, None)));
    // Outbound from the fixed address: SNAT to the floating one.
    let p = PacketInfo::udp(0, fixed, peer, 6000, 123);
    let v = ct.process_nat(&p, 0, true, Some(&NatRequest::snat(floating)));
    assert_eq!(v.rewrite.unwrap().src, Some((floating, None)));
    let r = PacketInfo::udp(0, peer, floating, 123, 6000);
    let v = ct.process_nat(&r, 0, true, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | EST | RPL | SNAT);
    assert_eq!(v.rewrite.unwrap().dst, Some((fixed, None)));
    keys_unique(&ct);
}

#[test]
fn persistent_keeps_one_address_per_client() {
    let ct = Conntrack::default();
    let req = NatRequest {
        kind: Some(NatKind::Src),
        addrs: Some((ip("203.0.113.1"), ip("203.0.113.8"))),
        persistent: true,
        ..NatRequest::default()
    };
    let mut per_client: Vec<HashSet<IpAddr>> = vec![HashSet::new(); 8];
    for c in 0..8u8 {
        for d in 0..10u8 {
            let p = PacketInfo::udp(
                0,
                IpAddr::from([10, 0, 0, c]),
                IpAddr::from([8, 8, 8, d]),
                999,
                53,
            );
            let v = ct.process_nat(&p, 0, true, Some(&req));
            per_client[usize::from(c)].insert(v.rewrite.unwrap().src.unwrap().0);
        }
    }
    assert!(per_client.iter().all(|s| s.len() == 1), "{per_client:?}");
    let used: HashSet<_> = per_client.iter().flatten().collect();
    assert!(used.len() > 1, "clients spread over the range");
    keys_unique(&ct);
}

#[test]
fn icmp_echo_ids_avoid_collisions() {
    let ct = Conntrack::default();
    let (nat_ip, server) = (ip("203.0.113.1"), ip("198.51.100.1"));
    let req = NatRequest::snat(nat_ip);
    let mut ids = HashSet::new();
    for c in 1..=5u8 {
        let client = IpAddr::from([10, 0, 0, c]);
        let p = PacketInfo::icmp(0, client, server, 8, 0, 77, None);
        let v = ct.process_nat(&p, 0, true, Some(&req));
        assert_eq!(v.verdict.state, TRK | NEW | SNAT);
        let out = apply(&p.tuple(), v.rewrite);
        assert_eq!(out.src, nat_ip);
        assert!(ids.insert(out.sport), "id {} twice", out.sport);
        // The echo reply to the NAT address with the translated id comes back translated.
        let r = PacketInfo::icmp(0, server, nat_ip, 0, 0, out.sport, None);
        let v = ct.process_nat(&r, 0, true, Some(&NatRequest::bare()));
        assert_eq!(v.verdict.state, TRK | EST | RPL | SNAT);
        let back = apply(&r.tuple(), v.rewrite);
        assert_eq!((back.dst, back.sport), (client, 77));
    }
    assert!(ids.contains(&77), "the first keeps its id");
    keys_unique(&ct);
}

#[test]
fn icmp_error_quoting_a_snat_connection_gets_outer_and_inner_rewrites() {
    let ct = Conntrack::default();
    let (nat_ip, server, router) = (ip("203.0.113.1"), ip("198.51.100.1"), ip("192.0.2.254"));
    let req = NatRequest::snat(nat_ip);
    // The first client takes port 40000; the second is moved.
    ct.process_nat(
        &syn(ip("10.0.0.1"), 40000, server, 443),
        0,
        true,
        Some(&req),
    );
    let p = syn(ip("10.0.0.2"), 40000, server, 443);
    let v = ct.process_nat(&p, 0, true, Some(&req));
    let out = apply(&p.tuple(), v.rewrite);
    assert_ne!(out.sport, 40000);
    // Time exceeded from a router past the NAT, quoting the translated SYN, sent to the NAT.
    let quoted = InnerTuple {
        src: out.src,
        dst: out.dst,
        proto: proto::TCP,
        sport: out.sport,
        dport: out.dport,
    };
    let err = PacketInfo::icmp(0, router, nat_ip, 11, 0, 0, Some(quoted));
    let v = ct.process_nat(&err, S, false, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | REL | RPL | SNAT);
    let outer = v.rewrite.unwrap();
    assert_eq!((outer.src, outer.dst), (None, Some((ip("10.0.0.2"), None))));
    let inner = v.inner_rewrite.unwrap();
    assert_eq!(inner.src, Some((ip("10.0.0.2"), Some(40000))));
    assert_eq!(inner.dst, None);
    // Without `nat` the error is related but nothing is rewritten.
    let v = ct.process_nat(&err, S, false, None);
    assert_eq!(v.verdict.state, TRK | REL | RPL);
    assert_eq!((v.rewrite, v.inner_rewrite), (None, None));
    // An error from the client's side about the server's (translated-back) segment: the
    // outer source and the inner destination become the NAT side.
    let from_server = InnerTuple {
        src: server,
        dst: ip("10.0.0.2"),
        proto: proto::TCP,
        sport: 443,
        dport: 40000,
    };
    let err = PacketInfo::icmp(0, ip("10.0.0.2"), server, 3, 3, 0, Some(from_server));
    let v = ct.process_nat(&err, S, false, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | REL | SNAT);
    assert_eq!(v.rewrite.unwrap().src, Some((nat_ip, None)));
    assert_eq!(
        v.inner_rewrite.unwrap().dst,
        Some((nat_ip, Some(out.sport)))
    );
    // An error from a router on the client's side about the client's own (untranslated)
    // segment: related, going back to the client, nothing to translate.
    let own = InnerTuple {
        src: ip("10.0.0.2"),
        dst: server,
        proto: proto::TCP,
        sport: 40000,
        dport: 443,
    };
    let err = PacketInfo::icmp(0, ip("10.0.0.254"), ip("10.0.0.2"), 3, 4, 0, Some(own));
    let v = ct.process_nat(&err, S, false, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | REL | RPL);
    assert_eq!((v.rewrite, v.inner_rewrite), (None, None));
    assert_eq!(ct.len(), 2, "errors create nothing");
}

#[test]
fn bare_nat_applies_an_existing_binding_only() {
    let ct = Conntrack::default();
    let (client, server, nat_ip) = (ip("10.0.0.1"), ip("198.51.100.1"), ip("203.0.113.1"));
    let p = PacketInfo::udp(0, client, server, 1234, 53);
    ct.process_nat(&p, 0, true, Some(&NatRequest::snat(nat_ip)));
    // Bare `nat` on the next original packet: the binding applies.
    let v = ct.process_nat(&p, 0, true, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | NEW | SNAT);
    assert_eq!(v.rewrite.unwrap().src, Some((nat_ip, None)));
    // `ct()` without nat: tracked, not translated.
    let v = ct.process_nat(&p, 0, true, None);
    assert_eq!((v.verdict.state, v.rewrite), (TRK | NEW, None));
    // Bare `nat` on a new connection commits it without a binding.
    let q = PacketInfo::udp(0, client, server, 1235, 53);
    let v = ct.process_nat(&q, 0, true, Some(&NatRequest::bare()));
    assert_eq!((v.verdict.state, v.rewrite), (TRK | NEW, None));
    let v = ct.process_nat(&q, 0, true, Some(&NatRequest::snat(nat_ip)));
    assert_eq!(
        (v.verdict.state, v.rewrite),
        (TRK | NEW, None),
        "no binding added later"
    );
    // Not committed: `+new`, no binding, nothing stored.
    let r = PacketInfo::udp(0, client, server, 1236, 53);
    let v = ct.process_nat(&r, 0, false, Some(&NatRequest::snat(nat_ip)));
    assert_eq!((v.verdict.state, v.rewrite), (TRK | NEW, None));
    assert_eq!(ct.len(), 2);
}

#[test]
fn ipv6_snat() {
    let ct = Conntrack::default();
    let (client, server, nat_ip) = (ip("fd00::1"), ip("2001:db8::80"), ip("2001:db8:ffff::1"));
    let req = NatRequest::snat(nat_ip).with_ports(20000, 20099);
    let p = syn(client, 50000, server, 443);
    let v = ct.process_nat(&p, 0, true, Some(&req));
    let out = apply(&p.tuple(), v.rewrite);
    assert_eq!(out.src, nat_ip);
    assert!((20000..20100).contains(&out.sport));
    let r = tcp(server, 443, nat_ip, out.sport, SYN | ACK, 5000, 1001);
    let v = ct.process_nat(&r, 0, true, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state, TRK | EST | RPL | SNAT);
    assert_eq!(v.rewrite.unwrap().dst, Some((client, Some(50000))));
    // A v4 range on a v6 packet is refused, not ignored.
    let q = syn(client, 50001, server, 443);
    let v = ct.process_nat(&q, 0, true, Some(&NatRequest::snat(ip("1.2.3.4"))));
    assert_eq!(v.verdict.invalid, Some(InvalidReason::Malformed));
    assert_eq!(ct.len(), 1);
    keys_unique(&ct);
}

#[test]
fn a_plain_connection_cannot_take_a_nat_reply_key() {
    let ct = Conntrack::default();
    let (client, server, nat_ip) = (ip("10.0.0.1"), ip("198.51.100.1"), ip("203.0.113.1"));
    ct.process_nat(
        &PacketInfo::udp(0, client, server, 1234, 53),
        0,
        true,
        Some(&NatRequest::snat(nat_ip)),
    );
    // A packet from the NAT address that looks like the translated original: committing it
    // would store a second connection whose reply key is the NATed one's.
    let v = ct.process(&PacketInfo::udp(0, nat_ip, server, 1234, 53), 0, true);
    assert_eq!(v.invalid, Some(InvalidReason::ReplyInUse));
    assert_eq!(ct.len(), 1);
    keys_unique(&ct);
}

#[test]
fn concurrent_creation_of_one_connection_stores_one_entry() {
    for _ in 0..20 {
        let ct = Arc::new(Conntrack::default());
        let req = NatRequest::snat(ip("203.0.113.1")).with_ports(1024, 2047);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let ct = Arc::clone(&ct);
                std::thread::spawn(move || {
                    let p = syn(ip("10.0.0.1"), 40000, ip("198.51.100.1"), 80);
                    ct.process_nat(&p, 0, true, Some(&req)).rewrite
                })
            })
            .collect();
        let r: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(r[0], r[1], "both copies get the same translation");
        assert_eq!(ct.len(), 1);
        keys_unique(&ct);
    }
}

#[test]
fn concurrent_creations_replies_and_removals_keep_the_index_consistent() {
    let ct = Arc::new(Conntrack::new(Config {
        global_limit: 500,
        shards: 8,
        ..Config::default()
    }));
    let nat_ip = ip("203.0.113.1");
    let server = ip("198.51.100.1");
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let ct = Arc::clone(&ct);
            std::thread::spawn(move || {
                let req = NatRequest::snat(nat_ip).with_ports(2000, 2299);
                let client = IpAddr::from([10, 0, 0, t]);
                for i in 0..3000u32 {
                    let port = 1000 + (i % 400) as u16;
                    let now = u64::from(i / 100) * 10 * S;
                    let p = PacketInfo::udp(0, client, server, port, 53);
                    let v = ct.process_nat(&p, now, true, Some(&req));
                    if let Some(out) = v.rewrite.and_then(|r| r.src) {
                        let r = PacketInfo::udp(0, server, nat_ip, 53, out.1.unwrap_or(port));
                        let v = ct.process_nat(&r, now, true, Some(&NatRequest::bare()));
                        // Other threads (with later clocks) may have expired it and given
                        // the port to another client in between; never to this thread's
                        // other connections (it has none in flight).
                        if let Some(back) = v.rewrite.and_then(|r| r.dst) {
                            if back.0 == client {
                                assert_eq!(back, (client, Some(port)));
                            }
                        }
                    }
                    match i % 7 {
                        0 => {
                            ct.flush(None, Some(p.tuple()));
                        }
                        3 => {
                            ct.expire(now);
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    keys_unique(&ct);
    ct.flush(None, None);
    ct.check_invariants();
    assert!(ct.is_empty());
}

#[derive(Clone, Debug)]
enum Op {
    Pkt {
        proto: u8,
        client: u8,
        server: u8,
        port: u8,
        reply: bool,
        flags: u8,
    },
    Flush(u8),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..3u8, 0..4u8, 0..3u8, 0..6u8, any::<bool>(), prop::sample::select(vec![SYN, SYN | ACK, ACK]))
            .prop_map(|(proto, client, server, port, reply, flags)| Op::Pkt { proto, client, server, port, reply, flags }),
        1 => (0..4u8).prop_map(Op::Flush),
        1 => Just(Op::Expire),
    ]
}

fn request() -> impl Strategy<Value = Option<NatRequest>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(NatRequest::bare())),
        4 => (any::<bool>(), 0..3u8, prop::option::of((1000u16..1004, 0u16..4)), any::<bool>(), any::<bool>())
            .prop_map(|(src, naddr, ports, random, persistent)| Some(NatRequest {
                kind: Some(if src { NatKind::Src } else { NatKind::Dst }),
                addrs: (naddr > 0).then(|| (ip("10.9.0.1"), IpAddr::from([10, 9, 0, naddr]))),
                ports: ports.map(|(a, n)| (a, a + n)),
                random,
                persistent,
                hash: false,
                block: None,
            })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_nat_never_panics_nor_shares_a_reply_key(
        ops in prop::collection::vec((op(), request(), any::<bool>()), 1..200)
    ) {
        let ct = Conntrack::new(Config { global_limit: 40, shards: 4, ..Config::default() });
        let mut now = 0u64;
        // Hosts include the NAT addresses, so packets also hit translated keys.
        let host = |i: u8| IpAddr::from([10, 9, 0, i]);
        for (o, req, commit) in ops {
            match o {
                Op::Pkt { proto: pr, client, server, port, reply, flags } => {
                    let (c, s) = (host(client), host(4 + server));
                    let (src, dst) = if reply { (s, c) } else { (c, s) };
                    let cp = 1000 + u16::from(port);
                    let (sp, dp) = if reply { (80, cp) } else { (cp, 80) };
                    let p = match pr {
                        0 => tcp(src, sp, dst, dp, flags, 1000, 0),
                        1 => PacketInfo::udp(0, src, dst, sp, dp),
                        _ => {
                            let ty = if reply { 0 } else { 8 };
                            PacketInfo::icmp(0, src, dst, ty, 0, cp, None)
                        }
                    };
                    let v = ct.process_nat(&p, now, commit, req.as_ref());
                    prop_assert!(v.verdict.has(TRK));
                    if v.verdict.has(INV) {
                        prop_assert!(v.rewrite.is_none());
                    }
                }
                Op::Flush(client) => {
                    let t = PacketInfo::udp(0, host(client), host(4), 1000, 80).tuple();
                    ct.flush(None, Some(t));
                    ct.flush(None, Some(t.reverse()));
                }
                Op::Expire => {
                    now += 40 * S;
                    ct.expire(now);
                }
            }
        }
        keys_unique(&ct);
        prop_assert!(ct.len() <= 40);
    }
}

/// Shared-address SNAT through port blocks: each inside host's connections get ports of its
/// own block only, collision-free, and a full block is exhausted and counted like any range.
#[test]
fn port_blocks_restrict_allocation_and_exhaust_per_host() {
    let ct = Conntrack::default();
    let public = ip("203.0.113.7");
    // A /30 over 64 * 4 ports: 64 ports per host, 4000-4255.
    let blocks = PortBlocks::new("10.0.0.0".parse().unwrap(), 30, 4000, 4255).unwrap();
    let req = NatRequest {
        block: Some(blocks),
        ..NatRequest::snat(public)
    };
    let server = ip("198.51.100.1");
    for host in 0..4u8 {
        let src = IpAddr::from([10, 0, 0, host]);
        let (first, last) = blocks.block(u32::from(host)).unwrap();
        let mut ports = HashSet::new();
        // 64 connections fill the block (the first keeps nothing of the original port: 40000
        // is not in the block).
        for i in 0..64u16 {
            let v = ct.process_nat(&syn(src, 40000 + i, server, 80), 0, true, Some(&req));
            assert_eq!(v.verdict.state, TRK | NEW | SNAT, "host {host} conn {i}");
            let (a, p) = v.rewrite.unwrap().src.unwrap();
            let p = p.unwrap();
            assert_eq!(a, public);
            assert!((first..=last).contains(&p), "{p} outside {first}-{last}");
            assert_eq!(
                blocks.owner(p),
                Some(std::net::Ipv4Addr::from([10, 0, 0, host]))
            );
            assert!(ports.insert(p), "port {p} given twice");
        }
        // The 65th has no free port left in its block: refused and counted, even though
        // other hosts' blocks have room.
        let v = ct.process_nat(&syn(src, 50000, server, 80), 0, true, Some(&req));
        assert_eq!(v.verdict.invalid, Some(InvalidReason::NatExhausted));
        assert!(v.rewrite.is_none());
    }
    assert_eq!(ct.invalid_count(InvalidReason::NatExhausted), 4);
    assert!(ct.event_counters().contains(&("nat_exhausted", 4)));
    // A source outside the inside prefix has no block: no translation, counted the same way.
    let v = ct.process_nat(&syn(ip("10.0.0.9"), 1, server, 80), 0, true, Some(&req));
    assert_eq!(v.verdict.invalid, Some(InvalidReason::NatExhausted));
    assert_eq!(ct.invalid_count(InvalidReason::NatExhausted), 5);
    // A reply to a translated port finds its connection (an ordinary NAT binding).
    let e = ct.entries(None, 0).into_iter().next().unwrap();
    let back = tcp(
        e.reply.src,
        e.reply.sport,
        e.reply.dst,
        e.reply.dport,
        SYN | ACK,
        7,
        1001,
    );
    let v = ct.process_nat(&back, 0, true, Some(&NatRequest::bare()));
    assert_eq!(v.verdict.state & (EST | RPL), EST | RPL);
    assert_eq!(
        v.rewrite.unwrap().dst,
        Some((e.original.src, Some(e.original.sport)))
    );
    keys_unique(&ct);
    // ICMP echo ids are drawn from the block too; IPv6 packets cannot use an IPv4 layout.
    let echo = PacketInfo::icmp(0, ip("10.0.0.2"), server, 8, 0, 77, None);
    let v = ct.process_nat(&echo, 0, true, Some(&req));
    let id = v.rewrite.unwrap().icmp_id.unwrap();
    assert_eq!(blocks.owner(id), Some("10.0.0.2".parse().unwrap()));
    let v6 = syn(ip("fd00::2"), 1000, ip("fd00::1"), 80);
    let v = ct.process_nat(&v6, 0, true, Some(&req));
    assert_eq!(v.verdict.invalid, Some(InvalidReason::Malformed));
}
