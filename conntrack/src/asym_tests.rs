//! Profile `Asym` (one-sided TCP connections) and the per-zone invalid action.

use std::net::IpAddr;

use proptest::prelude::*;

use crate::ct_state::{EST, INV, NEW, RPL, TRK};
use crate::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use crate::tcp::ONE_SIDED_SLACK;
use crate::*;

const S: u64 = 1000;
const ZONE: u16 = 7;
const ISN: u32 = 4_000_000_000; // close to the wrap, on purpose
const PEER_ISN: u32 = 77_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn table(profile: Profile) -> Conntrack {
    let ct = Conntrack::default();
    ct.set_zone_config(
        ZONE,
        ZoneConfig {
            profile,
            ..ZoneConfig::default()
        },
    );
    ct
}

/// A segment from the client (`true`) or the server.
fn seg(from_client: bool, flags: u8, seq: u32, ack: u32, len: u32) -> PacketInfo {
    let (c, s) = (ip("192.168.111.210"), ip("192.168.111.223"));
    let (src, dst, sp, dp) = if from_client {
        (c, s, 40000, 22)
    } else {
        (s, c, 22, 40000)
    };
    PacketInfo::tcp(
        ZONE,
        src,
        dst,
        TcpInfo {
            sport: sp,
            dport: dp,
            seq,
            ack,
            window: 502,
            flags,
            wscale: (flags & SYN != 0).then_some(7),
            payload_len: len,
        },
    )
}

fn c(ct: &Conntrack, flags: u8, seq: u32, ack: u32, len: u32, now: u64) -> Verdict {
    ct.process(&seg(true, flags, seq, ack, len), now, true)
}

fn s(ct: &Conntrack, flags: u8, seq: u32, ack: u32, len: u32, now: u64) -> Verdict {
    ct.process(&seg(false, flags, seq, ack, len), now, true)
}

fn entry(ct: &Conntrack) -> EntryInfo {
    let mut e = ct.entries(Some(ZONE), 0);
    assert_eq!(e.len(), 1, "{e:?}");
    e.remove(0)
}

fn event(ct: &Conntrack, name: &str) -> u64 {
    ct.event_counters()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
}

/// SYN, then the client's ACK of the (unseen) SYN-ACK: one-sided ESTABLISHED.
fn open_one_sided(ct: &Conntrack) {
    assert_eq!(c(ct, SYN, ISN, 0, 0, 0).state, TRK | NEW);
    let v = c(ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, 0);
    assert_eq!(v.state, TRK | EST, "{v:?}");
    assert!(v.entry.is_some());
}

#[test]
fn strict_judges_the_half_handshake_invalid() {
    // Scenario S1's failure: the SYN-ACK went another way, the ACK is invalid.
    let ct = table(Profile::Strict);
    c(&ct, SYN, ISN, 0, 0, 0);
    let v = c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, 0);
    assert_eq!(v.state, TRK | INV);
    assert_eq!(v.invalid, Some(InvalidReason::InvalidTransition));
    assert_eq!(entry(&ct).state, "SYN_SENT");
    assert_eq!(ct.one_sided_count(), 0);
}

#[test]
fn ack_after_syn_establishes_one_sided() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    let e = entry(&ct);
    assert_eq!(e.state, "ESTABLISHED");
    assert!(e.one_sided);
    assert!(!e.assured, "one-sided entries are early-droppable");
    assert_eq!(
        e.timeout_remaining,
        Timeouts::default().tcp_one_sided_established
    );
    assert_eq!(
        (ct.one_sided_count(), event(&ct, "one_sided_established")),
        (1, 1)
    );
    // Data in the seen direction: +est, never +rpl.
    let mut seq = ISN.wrapping_add(1);
    for i in 0..100u32 {
        let v = c(&ct, ACK | PSH, seq, PEER_ISN + 1 + i * 10, 1448, S);
        assert_eq!(v.state, TRK | EST, "{v:?}");
        seq = seq.wrapping_add(1448);
    }
    // A retransmission (behind the highest sequence) is fine.
    assert_eq!(
        c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1000, 1448, S).state,
        TRK | EST
    );
    assert_eq!(entry(&ct).packets, [103, 0]);
    ct.check_invariants();
}

#[test]
fn fin_ack_after_syn_establishes_one_sided_and_closes() {
    let ct = table(Profile::Asym);
    c(&ct, SYN, ISN, 0, 0, 0);
    let v = c(&ct, FIN | ACK, ISN.wrapping_add(1), PEER_ISN + 1, 10, 0);
    assert_eq!(v.state, TRK | EST);
    let e = entry(&ct);
    assert_eq!((e.state, e.one_sided), ("FIN_WAIT", true));
    assert_eq!(
        e.timeout_remaining,
        Timeouts::default().tcp_one_sided_closing
    );
}

#[test]
fn ack_without_syn_opens_nothing() {
    let ct = table(Profile::Asym);
    let v = c(&ct, ACK, 1234, 5678, 0, 0);
    assert_eq!(
        (v.state, v.invalid),
        (TRK | INV, Some(InvalidReason::NotNew))
    );
    let v = c(&ct, ACK | PSH, 1234, 5678, 100, 0);
    assert_eq!(v.invalid, Some(InvalidReason::NotNew));
    assert!(ct.is_empty());
    assert_eq!(ct.invalid_count(InvalidReason::NotNew), 2);
    assert_eq!(event(&ct, "one_sided_established"), 0);
}

#[test]
fn ack_with_the_wrong_sequence_opens_nothing() {
    let ct = table(Profile::Asym);
    c(&ct, SYN, ISN, 0, 0, 0);
    for seq in [
        ISN,
        ISN.wrapping_add(2),
        ISN.wrapping_sub(1000),
        0,
        ISN.wrapping_add(1 << 20),
    ] {
        let v = c(&ct, ACK, seq, PEER_ISN + 1, 0, 0);
        assert_eq!(v.invalid, Some(InvalidReason::AsymBadSeq), "seq {seq}");
    }
    assert_eq!(ct.invalid_count(InvalidReason::AsymBadSeq), 5);
    let e = entry(&ct);
    assert_eq!((e.state, e.one_sided), ("SYN_SENT", false));
    // The real ACK still establishes.
    assert_eq!(
        c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, 0).state,
        TRK | EST
    );
    assert!(entry(&ct).one_sided);
}

#[test]
fn retransmitted_syn_moves_the_expected_ack() {
    let ct = table(Profile::Asym);
    c(&ct, SYN, ISN, 0, 0, 0);
    c(&ct, SYN, 5, 0, 0, S); // reinitialised TCP, new ISN
    let v = c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::AsymBadSeq));
    assert_eq!(c(&ct, ACK, 6, PEER_ISN + 1, 0, S).state, TRK | EST);
}

#[test]
fn seen_direction_is_checked_for_plausibility() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    let base = ISN.wrapping_add(1);
    // Far ahead of anything the sender could have sent.
    let v = c(
        &ct,
        ACK,
        base.wrapping_add(ONE_SIDED_SLACK + 10),
        PEER_ISN + 1,
        100,
        S,
    );
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    // Far behind.
    let v = c(
        &ct,
        ACK,
        base.wrapping_sub(ONE_SIDED_SLACK + 10),
        PEER_ISN + 1,
        100,
        S,
    );
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    // An acknowledgment far from the sender's own earlier ones.
    let v = c(&ct, ACK, base, PEER_ISN.wrapping_add(1 << 30), 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    // Ahead of a hole (data lost before reaching us) within the slack: accepted.
    let v = c(&ct, ACK, base.wrapping_add(1 << 20), PEER_ISN + 1, 1448, S);
    assert_eq!(v.state, TRK | EST);
    // Flags no segment carries are still refused.
    let v = c(&ct, SYN | FIN, base, 0, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::BadFlags));
    // A SYN-ACK from the originator: not a transition.
    let v = c(&ct, SYN | ACK, base, PEER_ISN + 1, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::InvalidTransition));
    assert_eq!(entry(&ct).state, "ESTABLISHED");
}

#[test]
fn rst_in_the_seen_direction_must_be_in_range() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    let base = ISN.wrapping_add(1);
    let v = c(&ct, RST, base.wrapping_add(1 << 30), 0, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::BadRst));
    assert_eq!(entry(&ct).state, "ESTABLISHED");
    assert_eq!(ct.invalid_count(InvalidReason::BadRst), 1);
    let v = c(&ct, RST | ACK, base, PEER_ISN + 1, 0, S);
    assert_eq!(v.state, TRK | EST);
    let e = entry(&ct);
    assert_eq!((e.state, e.one_sided), ("CLOSE", true));
    assert_eq!(e.timeout_remaining, Timeouts::default().tcp_close + 1); // dumped at 0 s
    assert_eq!(ct.expire(12 * S), 1);
    assert_eq!(ct.one_sided_count(), 0);
    ct.check_invariants();
}

#[test]
fn fin_close_in_the_seen_direction_and_own_closing_timer() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    let base = ISN.wrapping_add(1);
    assert_eq!(
        c(&ct, ACK | PSH, base, PEER_ISN + 1, 100, S).state,
        TRK | EST
    );
    assert_eq!(
        c(&ct, FIN | ACK, base + 100, PEER_ISN + 1, 0, S).state,
        TRK | EST
    );
    assert_eq!(entry(&ct).state, "FIN_WAIT");
    // The client acknowledges the server's (unseen) FIN.
    assert_eq!(
        c(&ct, ACK, base + 101, PEER_ISN + 2, 0, 2 * S).state,
        TRK | EST
    );
    let e = entry(&ct);
    assert_eq!((e.state, e.one_sided), ("CLOSE_WAIT", true));
    let closing = u64::from(Timeouts::default().tcp_one_sided_closing);
    assert_eq!(ct.expire((2 + closing - 1) * S), 0);
    assert_eq!(ct.expire((2 + closing) * S), 1);
    assert!(ct.is_empty());
    assert_eq!(ct.one_sided_count(), 0);
}

#[test]
fn one_sided_timeouts_are_configurable_and_expire_on_the_fake_clock() {
    let ct = Conntrack::default();
    let mut cfg = ZoneConfig {
        profile: Profile::Asym,
        ..ZoneConfig::default()
    };
    *cfg.timeouts.by_name("tcp_one_sided_established").unwrap() = 100;
    ct.set_zone_config(ZONE, cfg);
    open_one_sided(&ct);
    assert_eq!(entry(&ct).timeout_remaining, 100);
    c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, 50 * S);
    assert_eq!(ct.expire(149 * S), 0);
    assert_eq!(ct.expire(150 * S), 1);
    assert_eq!(ct.one_sided_count(), 0);
    // Gone: the next ACK opens nothing.
    let v = c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, 151 * S);
    assert_eq!(v.invalid, Some(InvalidReason::NotNew));
}

#[test]
fn reply_appearing_later_makes_it_two_sided() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    let base = ISN.wrapping_add(1);
    c(&ct, ACK | PSH, base, PEER_ISN + 1, 500, S);
    // A reply whose acknowledgment covers data the client never sent: refused.
    let v = s(&ct, ACK, PEER_ISN + 1, base + 10_000, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    // A reply far from what the client acknowledged: refused.
    let v = s(&ct, ACK, PEER_ISN.wrapping_add(1 << 30), base + 500, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    // A reply RST outside the client's window: refused.
    let v = s(&ct, RST, PEER_ISN.wrapping_add(1 << 30), 0, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::BadRst));
    assert!(entry(&ct).one_sided);
    // A plausible reply: +est+rpl, two-sided from now on.
    let v = s(&ct, ACK | PSH, PEER_ISN + 1, base + 500, 300, 2 * S);
    assert_eq!(v.state, TRK | EST | RPL);
    let e = entry(&ct);
    assert!(!e.one_sided && e.assured, "{e:?}");
    assert_eq!(e.timeout_remaining, Timeouts::default().tcp_established + 2);
    assert_eq!(ct.one_sided_count(), 0);
    assert_eq!(
        c(&ct, ACK, base + 500, PEER_ISN + 301, 0, 2 * S).state,
        TRK | EST
    );
    // Windows followed, not enforced (its history has holes): the route may flap back.
    let v = c(&ct, ACK, base + 500, PEER_ISN + 900_000, 0, 2 * S);
    assert_eq!(v.state, TRK | EST);
    assert_eq!(event(&ct, "one_sided_established"), 1);
    ct.check_invariants();
}

#[test]
fn reply_rst_inside_the_window_closes() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    let v = s(&ct, RST, PEER_ISN + 1, 0, 0, S);
    assert_eq!(v.state, TRK | EST | RPL);
    assert_eq!(entry(&ct).state, "CLOSE");
    assert_eq!(ct.one_sided_count(), 0);
}

#[test]
fn new_syn_reopens_a_closing_one_sided_connection() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    c(&ct, FIN | ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, S);
    let v = c(&ct, SYN, 10, 0, 0, 2 * S);
    assert_eq!(v.state, TRK | NEW);
    let e = entry(&ct);
    assert_eq!((e.state, e.one_sided), ("SYN_SENT", false));
    assert_eq!(ct.one_sided_count(), 0);
    assert_eq!(c(&ct, ACK, 11, 5, 0, 2 * S).state, TRK | EST);
    assert_eq!(event(&ct, "one_sided_established"), 2);
    ct.check_invariants();
}

#[test]
fn a_syn_on_a_live_one_sided_connection_changes_nothing() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    let v = c(&ct, SYN, ISN.wrapping_add(1), 0, 0, S);
    assert_eq!(v.state, TRK | EST);
    let v = c(&ct, SYN, 12345, 0, 0, S);
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    assert!(entry(&ct).one_sided);
}

#[test]
fn two_sided_connections_under_asym_are_strict() {
    let ct = table(Profile::Asym);
    c(&ct, SYN, ISN, 0, 0, 0);
    assert_eq!(
        s(&ct, SYN | ACK, PEER_ISN, ISN.wrapping_add(1), 0, 0).state,
        TRK | EST | RPL
    );
    // After a SYN-ACK we saw, a wrong ACK is judged as Strict judges it, not one-sided.
    let v = c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 50_000, 0, 0);
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    assert_eq!(
        c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 0, 0).state,
        TRK | EST
    );
    let e = entry(&ct);
    assert!(!e.one_sided && e.assured);
    let v = c(&ct, ACK, ISN.wrapping_add(100_000_000), PEER_ISN + 1, 10, 0);
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    // A bad SYN-ACK is refused as under Strict.
    c(&ct, SYN, 1, 0, 0, 0);
    assert_eq!(ct.one_sided_count(), 0);
}

#[test]
fn one_sided_entries_stay_one_sided_when_the_profile_changes() {
    let ct = table(Profile::Asym);
    open_one_sided(&ct);
    ct.set_zone_config(ZONE, ZoneConfig::default());
    assert_eq!(
        c(&ct, ACK, ISN.wrapping_add(1), PEER_ISN + 1, 10, S).state,
        TRK | EST
    );
    assert!(entry(&ct).one_sided);
    // But no new one is created under Strict.
    let other = PacketInfo::tcp(
        ZONE,
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        TcpInfo {
            sport: 1,
            dport: 2,
            seq: 100,
            ack: 0,
            window: 100,
            flags: SYN,
            wscale: None,
            payload_len: 0,
        },
    );
    ct.process(&other, S, true);
    let mut ack = other;
    if let L4::Tcp(t) = &mut ack.l4 {
        t.flags = ACK;
        t.seq = 101;
        t.ack = 9;
    }
    assert_eq!(ct.process(&ack, S, true).state, TRK | INV);
    assert_eq!(ct.one_sided_count(), 1);
}

#[test]
fn one_sided_entries_are_early_dropped_and_a_syn_flood_is_bounded() {
    let ct = Conntrack::default();
    ct.set_zone_config(
        ZONE,
        ZoneConfig {
            profile: Profile::Asym,
            limit: 50,
            ..ZoneConfig::default()
        },
    );
    open_one_sided(&ct);
    for i in 0..200u16 {
        let p = PacketInfo::tcp(
            ZONE,
            ip("10.9.0.1"),
            ip("10.9.0.2"),
            TcpInfo {
                sport: 1000 + i,
                dport: 22,
                seq: u32::from(i),
                ack: 0,
                window: 100,
                flags: SYN,
                wscale: None,
                payload_len: 0,
            },
        );
        assert_eq!(ct.process(&p, S, true).state, TRK | NEW);
        assert!(ct.zone_len(ZONE) <= 50);
    }
    assert_eq!(ct.zone_len(ZONE), 50);
    assert_eq!(event(&ct, "early_drop"), 151);
    ct.check_invariants();
}

#[test]
fn invalid_action_is_per_zone_and_counted_per_reason() {
    let ct = table(Profile::Asym);
    let v = c(&ct, ACK, 1, 1, 0, 0);
    assert_eq!(v.action, InvalidAction::Flows);
    ct.set_zone_config(
        ZONE,
        ZoneConfig {
            profile: Profile::Asym,
            invalid: InvalidAction::Drop,
            ..ZoneConfig::default()
        },
    );
    let v = c(&ct, ACK, 1, 1, 0, 0);
    assert_eq!((v.state, v.action), (TRK | INV, InvalidAction::Drop));
    c(&ct, SYN, ISN, 0, 0, 0);
    let v = c(&ct, ACK, 5, 1, 0, 0);
    assert_eq!(v.invalid, Some(InvalidReason::AsymBadSeq));
    assert_eq!(v.action, InvalidAction::Drop);
    assert_eq!(ct.untrackable(ZONE).action, InvalidAction::Drop);
    let z = ct.zone_invalid(ZONE);
    assert_eq!(
        z.invalid,
        vec![("not_new", 2), ("asym_bad_seq", 1), ("untrackable", 1)]
    );
    assert_eq!(
        z.dropped,
        vec![("not_new", 1), ("asym_bad_seq", 1), ("untrackable", 1)]
    );
    // Another zone keeps the default.
    let other = PacketInfo::udp(3, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2);
    let mut bad = other;
    bad.dst = ip("::1");
    let v = ct.process(&bad, 0, true);
    assert_eq!(
        (v.invalid, v.action),
        (Some(InvalidReason::Malformed), InvalidAction::Flows)
    );
    assert_eq!(ct.zone_invalid(3).dropped, vec![]);
    // Valid packets are never given an action.
    assert_eq!(ct.process(&other, 0, true).action, InvalidAction::Flows);
    ct.set_zone_config(
        3,
        ZoneConfig {
            invalid: InvalidAction::Untracked,
            ..ZoneConfig::default()
        },
    );
    assert_eq!(ct.process(&bad, 0, true).action, InvalidAction::Untracked);
}

#[test]
fn names_of_profiles_and_actions() {
    for p in [Profile::Strict, Profile::Liberal, Profile::Asym] {
        assert_eq!(Profile::from_name(p.name()), Some(p));
    }
    for a in [
        InvalidAction::Flows,
        InvalidAction::Drop,
        InvalidAction::Untracked,
    ] {
        assert_eq!(InvalidAction::from_name(a.name()), Some(a));
    }
    assert_eq!(Profile::from_name("loose"), None);
    assert_eq!(InvalidAction::from_name("pass"), None);
    let mut t = Timeouts::default();
    assert_eq!(t.by_name("tcp_one_sided_closing").copied(), Some(60));
    assert!(t.by_name("tcp_one_sided").is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// After a SYN, an original-direction segment establishes one-sided exactly when it is
    /// an ACK or FIN-ACK with the SYN's end as sequence number; whatever comes after, nothing
    /// panics, counts agree and only the seen direction's plausible segments are `+est`.
    #[test]
    fn only_the_handshake_ack_establishes(
        isn in any::<u32>(),
        first in (prop::sample::select(vec![ACK, ACK | PSH, FIN | ACK, RST, RST | ACK, SYN | ACK, 0u8]),
                  prop_oneof![Just(1u32), any::<u32>()], 0u32..2000),
        rest in prop::collection::vec(
            (any::<bool>(), prop::sample::select(vec![ACK, ACK | PSH, FIN | ACK, RST, SYN, SYN | ACK]),
             -20_000_000i64..20_000_000, 0u32..1500),
            0..20),
    ) {
        let ct = table(Profile::Asym);
        prop_assert_eq!(c(&ct, SYN, isn, 0, 0, 0).state, TRK | NEW);
        let (flags, off, len) = first;
        let v = c(&ct, flags, isn.wrapping_add(off), PEER_ISN + 1, len, 0);
        let handshake = off == 1 && matches!(flags, x if x == ACK || x == ACK | PSH || x == FIN | ACK);
        prop_assert_eq!(v.state == TRK | EST, handshake, "{:?}", v);
        prop_assert_eq!(ct.one_sided_count(), usize::from(handshake));
        if !handshake && flags & (ACK | RST | SYN | FIN) == ACK {
            prop_assert_eq!(v.invalid, Some(InvalidReason::AsymBadSeq));
        }
        let mut seq = isn.wrapping_add(1);
        for (from_client, f, delta, len) in rest {
            let at = seq.wrapping_add(delta as u32);
            let v = if from_client {
                c(&ct, f, at, PEER_ISN + 1, len, S)
            } else {
                s(&ct, f, PEER_ISN.wrapping_add(delta as u32), at, len, S)
            };
            if v.state & INV == 0 && from_client {
                seq = seq.wrapping_add(len);
            }
            prop_assert!(v.state & RPL == 0 || !from_client);
            ct.check_invariants();
        }
        prop_assert_eq!(event(&ct, "one_sided_established") >= u64::from(handshake), true);
    }
}
