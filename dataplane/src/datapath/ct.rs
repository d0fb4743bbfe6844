//! The datapath side of `ct(...)`: describe a frame to conntrack, apply the verdict to a key.
//!
//! The executor hands a [`CtRequest`] with the frame as it is at that point of the action list
//! (rewrites emitted before `ct` already applied). The frame is parsed again here rather than
//! trusting the packet's original key and layout: earlier actions may have rewritten addresses
//! or pushed a tag, and conntrack must see what goes on the wire. The key built from it is the
//! one a recirculated pass starts from.
//!
//! With `nat(...)` the verdict's rewrite is applied to the frame here, before the key of the
//! recirculated pass is taken, so table `T` of `ct(nat,table=T)` matches (and decides L2
//! delivery on) the translated addresses. A new connection NAT cannot translate is refused
//! ([`Tracked::NatExhausted`]): it must not leave untranslated.
//!
//! An invalid packet (conntrack's `+inv`, or a frame it cannot describe: not IP, a fragment,
//! truncated headers) gets its zone's action (`set-ct-zone Z invalid=...`), which the verdict
//! carries: `flows` — it continues with `+trk+inv`; `drop` — [`Tracked::Invalid`], the worker
//! drops it here (counted `ct_invalid`; conntrack counts it per zone and reason), so it never
//! reaches the recirculation table nor any action after the `ct`; `untracked` — it continues
//! with `+trk` only, never translated by `ct(nat)` (an invalid verdict carries no rewrite), so
//! the flows may translate it statelessly. Scenario S1: a floating IP's packet must never
//! fall to a local stack because tracking judged it invalid.

use crate::execute::{apply_nat, CtRequest};
use crate::key::{FlowKey, RECIRC_WORD};
use crate::packet::{extract, Layout};
use conntrack::config::InvalidAction;
use conntrack::ct_state;
use conntrack::packet::{InnerTuple, PacketInfo, TcpInfo};
use conntrack::stats::InvalidReason;
use conntrack::table::Conntrack;
use control::flow::field::Field;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn rd16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn rd32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn ip4(d: &[u8], at: usize) -> Option<IpAddr> {
    rd32(d, at).map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}

fn ip6(d: &[u8], at: usize) -> Option<IpAddr> {
    let b: [u8; 16] = d.get(at..at + 16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(b)))
}

/// The TCP fields conntrack checks, from the segment at `l4` ending at `end`.
fn tcp_info(d: &[u8], key: &FlowKey, l4: usize, end: usize) -> Option<TcpInfo> {
    let doff = usize::from(*d.get(l4 + 12)? >> 4) * 4;
    let flags = *d.get(l4 + 13)?;
    let mut wscale = None;
    if flags & conntrack::packet::tcp_flags::SYN != 0 {
        // Options: kind 0 ends, 1 pads, 3 is window scale (len 3).
        let mut o = l4 + 20;
        let oend = (l4 + doff).min(d.len());
        while o < oend {
            match d[o] {
                0 => break,
                1 => o += 1,
                kind => {
                    let len = usize::from(*d.get(o + 1)?);
                    if len < 2 {
                        break;
                    }
                    if kind == 3 && len == 3 {
                        wscale = d.get(o + 2).copied();
                    }
                    o += len;
                }
            }
        }
    }
    Some(TcpInfo {
        sport: key.get(Field::TcpSrc) as u16,
        dport: key.get(Field::TcpDst) as u16,
        seq: rd32(d, l4 + 4)?,
        ack: rd32(d, l4 + 8)?,
        window: rd16(d, l4 + 14)?,
        flags,
        wscale,
        payload_len: end.checked_sub(l4 + doff)? as u32,
    })
}

/// The quoted packet of an ICMP error whose payload starts at `at`.
fn inner_tuple(d: &[u8], at: usize, v6: bool) -> Option<InnerTuple> {
    let (src, dst, proto, l4) = if v6 {
        (ip6(d, at + 8)?, ip6(d, at + 24)?, *d.get(at + 6)?, at + 40)
    } else {
        let ihl = usize::from(*d.get(at)? & 0x0f) * 4;
        (
            ip4(d, at + 12)?,
            ip4(d, at + 16)?,
            *d.get(at + 9)?,
            at + ihl,
        )
    };
    let (sport, dport) = match proto {
        6 | 17 | 132 => (rd16(d, l4)?, rd16(d, l4 + 2)?),
        // Echo: keyed by identifier.
        1 | 58 => (rd16(d, l4 + 4)?, 0),
        _ => (0, 0),
    };
    Some(InnerTuple {
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

/// Describe the IP packet `key`/`layout` say `d` is to conntrack. `None`: not trackable (not
/// IP, a fragment, truncated headers).
fn packet_info(d: &[u8], key: &FlowKey, layout: &Layout, zone: u16) -> Option<PacketInfo> {
    let et = key.get(Field::EthType) as u16;
    if (et != 0x0800 && et != 0x86dd) || layout.l3 == Layout::NONE {
        return None;
    }
    // No reassembly yet: fragments cannot be tracked.
    if key.get(Field::IpFrag) != 0 || layout.l4 == Layout::NONE {
        return None;
    }
    let v6 = et == 0x86dd;
    let (l3, l4) = (usize::from(layout.l3), usize::from(layout.l4));
    let (src, dst, end) = if v6 {
        let src = IpAddr::V6(Ipv6Addr::from(key.get(Field::Ipv6Src)));
        let dst = IpAddr::V6(Ipv6Addr::from(key.get(Field::Ipv6Dst)));
        (src, dst, l3 + 40 + usize::from(rd16(d, l3 + 4)?))
    } else {
        let src = IpAddr::V4(Ipv4Addr::from(key.get(Field::Ipv4Src) as u32));
        let dst = IpAddr::V4(Ipv4Addr::from(key.get(Field::Ipv4Dst) as u32));
        (src, dst, l3 + usize::from(rd16(d, l3 + 2)?))
    };
    if end > d.len() {
        return None;
    }
    let proto = key.get(Field::IpProto) as u8;
    let mut pkt = match proto {
        6 => PacketInfo::tcp(zone, src, dst, tcp_info(d, key, l4, end)?),
        17 => PacketInfo::udp(
            zone,
            src,
            dst,
            key.get(Field::UdpSrc) as u16,
            key.get(Field::UdpDst) as u16,
        ),
        1 | 58 if (proto == 1) != v6 => {
            let ty = key.get(Field::IcmpType) as u8;
            let code = key.get(Field::IcmpCode) as u8;
            let (echo, error) = if v6 {
                (matches!(ty, 128 | 129), matches!(ty, 1..=4))
            } else {
                (
                    matches!(ty, 0 | 8 | 13 | 14),
                    matches!(ty, 3 | 4 | 5 | 11 | 12),
                )
            };
            let id = if echo { rd16(d, l4 + 4)? } else { 0 };
            let inner = if error {
                Some(inner_tuple(d, l4 + 8, v6)?)
            } else {
                None
            };
            PacketInfo::icmp(zone, src, dst, ty, code, id, inner)
        }
        _ => PacketInfo::other(zone, src, dst, proto),
    };
    pkt.len = (end - l3) as u32;
    Some(pkt)
}

/// What [`track`] decided for the packet.
#[derive(Debug)]
// Returned by value once per `ct`; boxing the key would allocate per packet.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Tracked {
    /// The packet goes on; with the key (and layout) of the recirculated pass if the request
    /// asks for one.
    Go(Option<(FlowKey, Layout)>),
    /// NAT found no free translation for a new connection: the packet must be dropped (it
    /// must not leave untranslated), counted `nat_exhausted`.
    NatExhausted,
    /// The NAT rewrite did not fit the frame: dropped rather than sent half translated.
    Truncated,
    /// Invalid in a zone whose invalid action is `drop`: dropped by `ct()` itself (conntrack
    /// counted it per zone and reason).
    Invalid,
}

/// The `ct_state` an invalid packet continues with under its zone's action; `None`: drop it.
fn invalid_state(v: &conntrack::Verdict) -> Option<u32> {
    match (v.invalid, v.action) {
        (None, _) | (Some(_), InvalidAction::Flows) => Some(v.state),
        (Some(_), InvalidAction::Untracked) => Some(ct_state::TRK),
        (Some(_), InvalidAction::Drop) => None,
    }
}

/// Run conntrack for `req` on `frame` (received on `in_port`), applying the NAT rewrite it
/// reports to `frame` in place. The recirculated key is the one of the frame as it is
/// afterwards (translated, as in Open vSwitch: table `T` of `ct(nat,table=T)` sees the new
/// addresses), with `in_port`, the conntrack fields and the recirculation id.
pub(crate) fn track(
    ct: &Conntrack,
    req: &CtRequest,
    frame: &mut [u8],
    in_port: u32,
    now_ms: u64,
) -> Tracked {
    let mut key = FlowKey::zero();
    key.set(Field::InPort, u128::from(in_port));
    let mut layout = extract(frame, &mut key).ok();
    let info = layout.and_then(|l| packet_info(frame, &key, &l, req.zone));
    let (state, mark, label) = match info {
        Some(pkt) => {
            // A packet tracked in this zone before (a recirculated pass) gets its verdict
            // again without being tracked twice: see `Conntrack::process_nat_again`.
            let nv = if req.again {
                ct.process_nat_again(&pkt, now_ms, req.commit, req.nat.as_ref())
            } else {
                ct.process_nat(&pkt, now_ms, req.commit, req.nat.as_ref())
            };
            let v = nv.verdict;
            if v.invalid == Some(InvalidReason::NatExhausted) {
                // Whatever the zone's action: a new connection must not leave untranslated.
                return Tracked::NatExhausted;
            }
            // An invalid verdict has no rewrite and no entry: the code below leaves it alone.
            let Some(state) = invalid_state(&v) else {
                return Tracked::Invalid;
            };
            if let (Some(l), true) = (layout, nv.rewrite.is_some() || nv.inner_rewrite.is_some()) {
                if apply_nat(
                    frame,
                    l,
                    &key,
                    nv.rewrite.as_ref(),
                    nv.inner_rewrite.as_ref(),
                )
                .is_err()
                {
                    // Conntrack parsed these headers, so they are there; should a rewrite
                    // still fail, the frame must not go on half translated.
                    return Tracked::Truncated;
                }
                // The key of the translated frame: what the recirculated pass matches on.
                key = FlowKey::zero();
                key.set(Field::InPort, u128::from(in_port));
                layout = extract(frame, &mut key).ok();
            }
            let (mut mark, mut label) = (v.mark, v.label);
            if let (true, Some(id)) = (req.commit, v.entry) {
                // A stale id only means the entry went away meanwhile: nothing to mark.
                if let Some((val, m)) = req.mark {
                    mark = (mark & !m) | (val & m);
                    let _ = ct.set_mark(id, mark);
                }
                if let Some((val, m)) = req.label {
                    label = (label & !m) | (val & m);
                    let _ = ct.set_label(id, label);
                }
            }
            (state, mark, label)
        }
        // Not trackable: what conntrack says of a packet it cannot make sense of, under the
        // zone's invalid action like any invalid packet.
        None => match invalid_state(&ct.untrackable(req.zone)) {
            Some(state) => (state, 0, 0),
            None => return Tracked::Invalid,
        },
    };
    let (Some(recirc), Some(layout)) = (req.recirc, layout) else {
        return Tracked::Go(None);
    };
    key.set(Field::CtState, u128::from(state));
    key.set(Field::CtZone, u128::from(req.zone));
    key.set(Field::CtMark, u128::from(mark));
    key.set(Field::CtLabel, label);
    key.w[RECIRC_WORD] = (key.w[RECIRC_WORD] & !0xffff_ffff) | u64::from(recirc);
    Tracked::Go(Some((key, layout)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::testutil::{arp, eth, icmp, ipv4, tcp, udp};
    use conntrack::config::InvalidAction;
    use conntrack::packet::L4;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn info(frame: &[u8]) -> Option<PacketInfo> {
        let mut key = FlowKey::zero();
        let layout = extract(frame, &mut key).ok()?;
        packet_info(frame, &key, &layout, 5)
    }

    #[test]
    fn tcp_syn_fields_and_window_scale() {
        // SYN with options: MSS (4 bytes), NOP, window scale 7; data offset 8 words.
        let mut t = tcp(
            1000,
            80,
            0x02,
            &[2, 4, 5, 0xb4, 1, 3, 3, 7, 0, 0, 0, 0, b'x'],
        );
        t[12] = 8 << 4;
        t[4..8].copy_from_slice(&77u32.to_be_bytes());
        let f = eth(
            B,
            A,
            None,
            0x0800,
            &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 64, &t),
        );
        let p = info(&f).expect("tracked");
        assert_eq!(p.zone, 5);
        let L4::Tcp(t) = p.l4 else { panic!("{p:?}") };
        assert_eq!((t.sport, t.dport, t.seq, t.flags), (1000, 80, 77, 0x02));
        assert_eq!(t.wscale, Some(7));
        assert_eq!(t.payload_len, 1);
        assert_eq!(p.len, 20 + 32 + 1);
    }

    #[test]
    fn icmp_echo_and_error_with_inner_tuple() {
        let echo = eth(
            B,
            A,
            None,
            0x0800,
            &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 1, 64, &icmp(8, 0, b"")),
        );
        let p = info(&echo).expect("tracked");
        assert!(
            matches!(
                p.l4,
                L4::Icmp {
                    icmp_type: 8,
                    id: 0x1234,
                    inner: None,
                    ..
                }
            ),
            "{p:?}"
        );
        // Port unreachable quoting a UDP datagram 10.0.0.1:53 -> 10.0.0.2:9.
        let quoted = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, 64, &udp(53, 9, b"q"));
        let err = eth(
            A,
            B,
            None,
            0x0800,
            &ipv4([10, 0, 0, 2], [10, 0, 0, 1], 1, 64, &icmp(3, 3, &quoted)),
        );
        let p = info(&err).expect("tracked");
        let L4::Icmp { inner: Some(i), .. } = p.l4 else {
            panic!("{p:?}")
        };
        assert_eq!((i.proto, i.sport, i.dport), (17, 53, 9));
        assert_eq!(i.src, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn untrackable_frames_are_invalid_and_recirculate_as_such() {
        let ct = Conntrack::new(conntrack::config::Config::default());
        let arp = eth(
            B,
            A,
            None,
            0x0806,
            &arp(1, A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]),
        );
        let req = CtRequest {
            zone: 3,
            commit: true,
            recirc: Some(crate::xlate::recirc_id(2)),
            mark: Some((1, 1)),
            label: None,
            nat: None,
            again: false,
        };
        let mut arp = arp;
        let Tracked::Go(Some((k, _))) = track(&ct, &req, &mut arp, 4, 0) else {
            panic!("recirculates")
        };
        assert_eq!(k.get(Field::CtState) as u32, ct_state::TRK | ct_state::INV);
        assert_eq!(k.get(Field::CtZone), 3);
        assert_eq!(k.get(Field::InPort), 4);
        assert_eq!(k.w[RECIRC_WORD] & 0xffff_ffff, 3);
        assert!(ct.is_empty());
    }

    #[test]
    fn commit_applies_exec_mark_and_label() {
        let ct = Conntrack::new(conntrack::config::Config::default());
        let f = eth(
            B,
            A,
            None,
            0x0800,
            &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, 64, &udp(1, 2, b"")),
        );
        let req = CtRequest {
            zone: 1,
            commit: true,
            recirc: Some(crate::xlate::recirc_id(1)),
            mark: Some((0xab, 0xff)),
            label: Some((1 << 100, 1 << 100)),
            nat: None,
            again: false,
        };
        let mut f = f;
        let Tracked::Go(Some((k, _))) = track(&ct, &req, &mut f, 1, 0) else {
            panic!("recirculates")
        };
        assert_eq!(k.get(Field::CtState) as u32, ct_state::TRK | ct_state::NEW);
        assert_eq!(k.get(Field::CtMark), 0xab);
        assert_eq!(k.get(Field::CtLabel), 1 << 100);
        let e = ct.entries(Some(1), 0);
        assert_eq!((e.len(), e[0].mark, e[0].label), (1, 0xab, 1 << 100));
        // Without recirculation nothing comes back, but the packet is tracked.
        let req = CtRequest {
            recirc: None,
            ..req
        };
        assert!(matches!(track(&ct, &req, &mut f, 1, 1), Tracked::Go(None)));
        assert_eq!(ct.entries(Some(1), 1)[0].packets[0], 2);
    }

    /// S1's network node: `ct(zone=1,table=1)`, then `ct(commit,zone=1)` in table 1, for each
    /// ping of a stream no reply of which passes this node. Each echo request is counted
    /// once (it was counted twice before `again`), and it stays `+new` for the flows.
    #[test]
    fn a_recirculated_commit_tracks_the_packet_once() {
        let ct = Conntrack::new(conntrack::config::Config::default());
        let lookup = CtRequest {
            zone: 1,
            commit: false,
            recirc: Some(crate::xlate::recirc_id(1)),
            mark: None,
            label: None,
            nat: None,
            again: false,
        };
        let commit = CtRequest {
            commit: true,
            recirc: None,
            again: true,
            ..lookup
        };
        for n in 1..=3u64 {
            let mut f = eth(
                B,
                A,
                None,
                0x0800,
                &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 1, 64, &icmp(8, 0, &[n as u8])),
            );
            let Tracked::Go(Some((k, _))) = track(&ct, &lookup, &mut f, 1, n * 1000) else {
                panic!("recirculates")
            };
            assert_eq!(k.get(Field::CtState) as u32, ct_state::TRK | ct_state::NEW);
            assert!(matches!(
                track(&ct, &commit, &mut f, 1, n * 1000),
                Tracked::Go(None)
            ));
            let e = ct.entries(Some(1), n * 1000);
            assert_eq!((e.len(), e[0].packets[0]), (1, n), "echo request {n}");
        }
    }

    /// A bare ACK with no SYN before it (an unsolicited ACK: `not_new`), to 10.0.0.2:22.
    fn spoofed_ack() -> Vec<u8> {
        eth(
            B,
            A,
            None,
            0x0800,
            &ipv4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                6,
                64,
                &tcp(40000, 22, 0x10, b""),
            ),
        )
    }

    fn zone_with(ct: &Conntrack, zone: u16, invalid: InvalidAction) {
        ct.set_zone_config(
            zone,
            conntrack::ZoneConfig {
                invalid,
                ..conntrack::ZoneConfig::default()
            },
        );
    }

    fn ct_req(zone: u16, nat: Option<conntrack::NatRequest>) -> CtRequest {
        CtRequest {
            zone,
            commit: true,
            recirc: Some(crate::xlate::recirc_id(1)),
            mark: None,
            label: None,
            nat,
            again: false,
        }
    }

    #[test]
    fn invalid_action_flows_continues_inv() {
        let ct = Conntrack::new(conntrack::config::Config::default());
        let mut f = spoofed_ack();
        let Tracked::Go(Some((k, _))) = track(&ct, &ct_req(7, None), &mut f, 1, 0) else {
            panic!("recirculates")
        };
        assert_eq!(k.get(Field::CtState) as u32, ct_state::TRK | ct_state::INV);
        assert_eq!(ct.invalid_count(InvalidReason::NotNew), 1);
        assert!(ct.zone_invalid(7).dropped.is_empty());
    }

    #[test]
    fn invalid_action_drop_stops_the_packet_in_ct_and_counts_it() {
        let ct = Conntrack::new(conntrack::config::Config::default());
        zone_with(&ct, 7, InvalidAction::Drop);
        let mut f = spoofed_ack();
        assert!(matches!(
            track(&ct, &ct_req(7, None), &mut f, 1, 0),
            Tracked::Invalid
        ));
        // Untrackable frames too (here an ARP request sent through ct()).
        let mut a = eth(
            B,
            A,
            None,
            0x0806,
            &arp(1, A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]),
        );
        assert!(matches!(
            track(&ct, &ct_req(7, None), &mut a, 1, 0),
            Tracked::Invalid
        ));
        let z = ct.zone_invalid(7);
        assert_eq!(z.dropped, vec![("not_new", 1), ("untrackable", 1)]);
        assert!(ct.is_empty());
        // Valid packets are not affected: a SYN is tracked as new.
        let mut syn = eth(
            B,
            A,
            None,
            0x0800,
            &ipv4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                6,
                64,
                &tcp(40000, 22, 0x02, b""),
            ),
        );
        let Tracked::Go(Some((k, _))) = track(&ct, &ct_req(7, None), &mut syn, 1, 0) else {
            panic!("recirculates")
        };
        assert_eq!(k.get(Field::CtState) as u32, ct_state::TRK | ct_state::NEW);
    }

    #[test]
    fn invalid_action_untracked_continues_trk_only_and_untranslated() {
        let ct = Conntrack::new(conntrack::config::Config::default());
        zone_with(&ct, 7, InvalidAction::Untracked);
        // With a NAT request: an invalid packet is never translated by ct.
        let nat = conntrack::NatRequest::snat("192.0.2.9".parse().unwrap());
        let mut f = spoofed_ack();
        let orig = f.clone();
        let Tracked::Go(Some((k, _))) = track(&ct, &ct_req(7, Some(nat)), &mut f, 1, 0) else {
            panic!("recirculates")
        };
        assert_eq!(k.get(Field::CtState) as u32, ct_state::TRK);
        assert_eq!(f, orig, "not translated");
        assert_eq!(k.get(Field::Ipv4Src), 0x0a00_0001);
        assert_eq!(ct.zone_invalid(7).invalid, vec![("not_new", 1)]);
        assert!(ct.zone_invalid(7).dropped.is_empty());
        assert!(ct.is_empty());
    }
}
