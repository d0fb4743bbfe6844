//! Behaviour tests of the whole table: handshakes, windows, ICMP, zones, limits, expiry,
//! concurrency and a property test.

use std::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;

use crate::ct_state::{EST, INV, NEW, REL, RPL, TRK};
use crate::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use crate::*;

const S: u64 = 1000; // one second in the API's milliseconds

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP connection between a client and a server, with sequence numbers kept by the test.
struct Tcp<'a> {
    ct: &'a Conntrack,
    zone: u16,
    c: IpAddr,
    s: IpAddr,
    cport: u16,
    sport: u16,
    cseq: u32,
    sseq: u32,
}

impl<'a> Tcp<'a> {
    fn new(ct: &'a Conntrack, c: &str, s: &str) -> Self {
        Tcp {
            ct,
            zone: 0,
            c: ip(c),
            s: ip(s),
            cport: 40000,
            sport: 22,
            cseq: 1000,
            sseq: 900_000,
        }
    }

    fn seg(&self, from_client: bool, flags: u8, seq: u32, ack: u32, len: u32) -> PacketInfo {
        self.seg_w(from_client, flags, seq, ack, len, 65535, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn seg_w(
        &self,
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
        window: u16,
        wscale: Option<u8>,
    ) -> PacketInfo {
        let (src, dst, sp, dp) = if from_client {
            (self.c, self.s, self.cport, self.sport)
        } else {
            (self.s, self.c, self.sport, self.cport)
        };
        PacketInfo::tcp(
            self.zone,
            src,
            dst,
            TcpInfo {
                sport: sp,
                dport: dp,
                seq,
                ack,
                window,
                flags,
                wscale,
                payload_len: len,
            },
        )
    }

    fn go(&self, p: PacketInfo, now: u64) -> Verdict {
        self.ct.process(&p, now, true)
    }

    /// Client sends `len` bytes (or flags) and advances its sequence number.
    fn client(&mut self, flags: u8, len: u32, now: u64) -> Verdict {
        let p = self.seg(true, flags, self.cseq, self.sseq, len);
        self.cseq = self
            .cseq
            .wrapping_add(len + u32::from(flags & (SYN | FIN) != 0));
        self.go(p, now)
    }

    fn server(&mut self, flags: u8, len: u32, now: u64) -> Verdict {
        let p = self.seg(false, flags, self.sseq, self.cseq, len);
        self.sseq = self
            .sseq
            .wrapping_add(len + u32::from(flags & (SYN | FIN) != 0));
        self.go(p, now)
    }

    fn handshake(&mut self, now: u64) {
        let v = self.client(SYN, 0, now);
        assert_eq!(v.state, TRK | NEW, "{v:?}");
        assert!(v.entry.is_some());
        let v = self.server(SYN | ACK, 0, now);
        assert_eq!(v.state, TRK | EST | RPL, "{v:?}");
        let v = self.client(ACK, 0, now);
        assert_eq!(v.state, TRK | EST, "{v:?}");
    }

    fn state(&self) -> &'static str {
        let t = self.seg(true, ACK, 0, 0, 0).tuple();
        self.ct
            .entries(Some(self.zone), 0)
            .into_iter()
            .find(|e| e.original == t || e.reply == t)
            .map_or("GONE", |e| e.state)
    }
}

fn count(ct: &Conntrack, r: InvalidReason) -> u64 {
    ct.invalid_count(r)
}

#[test]
fn tcp_handshake_data_and_client_close() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "192.168.111.210", "192.168.111.223");
    c.handshake(0);
    assert_eq!(c.state(), "ESTABLISHED");
    assert_eq!(c.client(ACK | PSH, 100, S).state, TRK | EST);
    assert_eq!(c.server(ACK | PSH, 1400, S).state, TRK | EST | RPL);
    assert_eq!(c.client(FIN | ACK, 0, 2 * S).state, TRK | EST);
    assert_eq!(c.state(), "FIN_WAIT");
    c.server(ACK, 0, 2 * S);
    assert_eq!(c.state(), "CLOSE_WAIT");
    c.server(FIN | ACK, 0, 3 * S);
    assert_eq!(c.state(), "LAST_ACK");
    c.client(ACK, 0, 3 * S);
    assert_eq!(c.state(), "TIME_WAIT");
    let e = &ct.entries(None, 3 * S)[0];
    assert_eq!(e.packets, [5, 4]);
    assert_eq!(e.bytes[0], 5 * 40 + 100);
    assert_eq!(e.timeout_remaining, 120);
    // TIME_WAIT lasts 120 s, then the entry is gone without any scan of the table.
    assert_eq!(ct.expire(122 * S), 0);
    assert_eq!(ct.len(), 1);
    assert_eq!(ct.expire(123 * S), 1);
    assert_eq!(ct.len(), 0);
    assert!(ct.invalid_counters().iter().all(|(_, n)| *n == 0));
}

#[test]
fn tcp_server_closes_first_and_rst_close() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.handshake(0);
    c.server(FIN | ACK, 0, S);
    assert_eq!(c.state(), "FIN_WAIT");
    c.client(FIN | ACK, 0, S);
    assert_eq!(c.state(), "LAST_ACK");
    c.server(ACK, 0, S);
    assert_eq!(c.state(), "TIME_WAIT");

    let mut d = Tcp::new(&ct, "10.0.0.1", "10.0.0.3");
    d.handshake(0);
    assert_eq!(d.server(RST, 0, S).state, TRK | EST | RPL);
    assert_eq!(d.state(), "CLOSE");
    assert_eq!(
        ct.entries(None, S)
            .iter()
            .find(|e| e.state == "CLOSE")
            .unwrap()
            .timeout_remaining,
        10
    );
}

#[test]
fn retransmissions_are_accepted() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    let syn = c.seg(true, SYN, c.cseq, 0, 0);
    assert_eq!(c.go(syn, 0).state, TRK | NEW);
    assert_eq!(c.go(syn, S).state, TRK | NEW, "retransmitted SYN");
    c.cseq += 1;
    let synack = c.seg(false, SYN | ACK, c.sseq, c.cseq, 0);
    c.sseq += 1;
    assert_eq!(c.go(synack, S).state, TRK | EST | RPL);
    c.client(ACK, 0, S);
    // The server did not get the ACK and retransmits its SYN-ACK: still fine.
    assert_eq!(c.go(synack, 2 * S).state, TRK | EST | RPL);
    let data = c.seg(true, ACK | PSH, c.cseq, c.sseq, 500);
    assert_eq!(c.go(data, 2 * S).state, TRK | EST);
    assert_eq!(c.go(data, 3 * S).state, TRK | EST, "retransmitted data");
    assert_eq!(c.state(), "ESTABLISHED");
}

#[test]
fn syn_retransmitted_with_a_new_isn() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.client(SYN, 0, 0);
    // The client gave up and retried with another initial sequence number.
    c.cseq = 777_777;
    assert_eq!(c.client(SYN, 0, S).state, TRK | NEW);
    // The server answers the second SYN; the first one's ISN would now be refused.
    let stale = c.seg(false, SYN | ACK, c.sseq, 1001, 0);
    assert_eq!(c.go(stale, S).invalid, Some(InvalidReason::BadSynAck));
    assert_eq!(c.server(SYN | ACK, 0, S).state, TRK | EST | RPL);
    assert_eq!(c.client(ACK, 0, S).state, TRK | EST);
    assert_eq!(c.state(), "ESTABLISHED");
}

#[test]
fn out_of_window_is_invalid_and_counted() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.handshake(0);
    let bad = c.seg(true, ACK, c.cseq.wrapping_add(10_000_000), c.sseq, 100);
    let v = c.go(bad, S);
    assert_eq!(v.state, TRK | INV);
    assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
    // Acknowledging data the server never sent is out of window too.
    let bad_ack = c.seg(true, ACK, c.cseq, c.sseq.wrapping_add(5_000_000), 0);
    assert!(c.go(bad_ack, S).has(INV));
    assert_eq!(count(&ct, InvalidReason::OutOfWindow), 2);
    assert_eq!(c.state(), "ESTABLISHED", "invalid segments change nothing");
    assert_eq!(c.client(ACK, 10, S).state, TRK | EST);
}

#[test]
fn liberal_accepts_what_strict_rejects() {
    let ct = Conntrack::default();
    ct.set_zone_config(
        7,
        ZoneConfig {
            profile: Profile::Liberal,
            ..ZoneConfig::default()
        },
    );
    for zone in [0u16, 7] {
        let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
        c.zone = zone;
        c.handshake(0);
        let bad = c.seg(true, ACK, c.cseq.wrapping_add(10_000_000), c.sseq, 100);
        let v = c.go(bad, S);
        if zone == 0 {
            assert_eq!(v.invalid, Some(InvalidReason::OutOfWindow));
        } else {
            assert_eq!(v.state, TRK | EST, "liberal zone");
        }
    }
    // Even liberal, an unsolicited ACK opens nothing.
    let mut c = Tcp::new(&ct, "10.9.0.1", "10.9.0.2");
    c.zone = 7;
    assert_eq!(c.client(ACK, 0, 0).invalid, Some(InvalidReason::NotNew));
}

#[test]
fn rst_in_and_out_of_window() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.handshake(0);
    c.client(ACK | PSH, 1000, S);
    // Blind RST far from the expected sequence number.
    let blind = c.seg(false, RST, c.sseq.wrapping_add(3_000_000), 0, 0);
    let v = c.go(blind, S);
    assert_eq!(v.invalid, Some(InvalidReason::BadRst));
    assert_eq!(c.state(), "ESTABLISHED");
    // RST just behind what the client acknowledged (stale): refused too.
    let stale = c.seg(false, RST, c.sseq.wrapping_sub(100), 0, 0);
    assert_eq!(c.go(stale, S).invalid, Some(InvalidReason::BadRst));
    // RST at the exact next sequence number.
    let good = c.seg(false, RST | ACK, c.sseq, c.cseq, 0);
    assert_eq!(c.go(good, S).state, TRK | EST | RPL);
    assert_eq!(c.state(), "CLOSE");
    assert_eq!(count(&ct, InvalidReason::BadRst), 2);
}

#[test]
fn rst_answering_a_syn_must_acknowledge_it() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.client(SYN, 0, 0);
    let wrong = c.seg(false, RST | ACK, 0, c.cseq + 7, 0);
    assert_eq!(c.go(wrong, 0).invalid, Some(InvalidReason::BadRst));
    let right = c.seg(false, RST | ACK, 0, c.cseq, 0);
    assert!(!c.go(right, 0).has(INV));
    assert_eq!(c.state(), "CLOSE");
}

#[test]
fn synack_must_acknowledge_the_syn() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.client(SYN, 0, 0);
    let wrong = c.seg(false, SYN | ACK, c.sseq, c.cseq + 1000, 0);
    assert_eq!(c.go(wrong, 0).invalid, Some(InvalidReason::BadSynAck));
    assert_eq!(c.state(), "SYN_SENT");
}

#[test]
fn window_scaling_from_syn_options() {
    for scaled in [true, false] {
        let ct = Conntrack::default();
        let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
        let syn = c.seg_w(true, SYN, c.cseq, 0, 0, 512, Some(7));
        assert!(!c.go(syn, 0).has(INV));
        c.cseq += 1;
        let ws = scaled.then_some(7);
        let synack = c.seg_w(false, SYN | ACK, c.sseq, c.cseq, 0, 512, ws);
        assert!(!c.go(synack, 0).has(INV));
        c.sseq += 1;
        let ack = c.seg_w(true, ACK, c.cseq, c.sseq, 0, 512, None);
        assert!(!c.go(ack, 0).has(INV));
        // The server advertises 512 << 7 = 64 KiB when scaling is on, 512 bytes when off.
        let sack = c.seg_w(false, ACK, c.sseq, c.cseq, 0, 512, None);
        assert!(!c.go(sack, 0).has(INV));
        let far = c.seg_w(true, ACK, c.cseq + 60_000, c.sseq, 1000, 512, None);
        let v = c.go(far, 0);
        assert_eq!(v.has(INV), !scaled, "scaled={scaled} {v:?}");
    }
}

#[test]
fn simultaneous_open() {
    let ct = Conntrack::default();
    let c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    let (a, b) = (5000u32, 9000u32);
    assert_eq!(c.go(c.seg(true, SYN, a, 0, 0), 0).state, TRK | NEW);
    assert_eq!(c.go(c.seg(false, SYN, b, 0, 0), 0).state, TRK | EST | RPL);
    assert_eq!(c.state(), "SYN_SENT2");
    assert!(!c.go(c.seg(false, SYN | ACK, b, a + 1, 0), 0).has(INV));
    assert_eq!(c.state(), "SYN_RECV");
    assert!(!c.go(c.seg(true, SYN | ACK, a, b + 1, 0), 0).has(INV));
    assert!(!c.go(c.seg(true, ACK, a + 1, b + 1, 0), 0).has(INV));
    assert_eq!(c.state(), "ESTABLISHED");
}

#[test]
fn unsolicited_segments_open_nothing() {
    let ct = Conntrack::default();
    let c = Tcp::new(&ct, "192.168.111.210", "192.168.111.223");
    // Scenario S1's security floor: an ACK with no SYN behind it.
    assert_eq!(
        c.go(c.seg(true, ACK, 1, 1, 0), 0).invalid,
        Some(InvalidReason::NotNew)
    );
    assert_eq!(
        c.go(c.seg(true, SYN | FIN, 1, 0, 0), 0).invalid,
        Some(InvalidReason::BadFlags)
    );
    assert_eq!(
        c.go(c.seg(true, 0, 1, 0, 0), 0).invalid,
        Some(InvalidReason::BadFlags)
    );
    assert_eq!(
        c.go(c.seg(false, SYN | ACK, 1, 1, 0), 0).invalid,
        Some(InvalidReason::NotNew)
    );
    assert!(ct.is_empty());
}

#[test]
fn reply_ack_without_synack_is_not_a_reply() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.client(SYN, 0, 0);
    let v = c.go(c.seg(false, ACK, 77, c.cseq, 0), 0);
    assert_eq!(v.invalid, Some(InvalidReason::InvalidTransition));
    // The connection is still +new for the client: no reply was seen.
    assert_eq!(c.go(c.seg(true, SYN, c.cseq - 1, 0, 0), 0).state, TRK | NEW);
    // The client may abandon its SYN with a RST at its next sequence number.
    assert!(!c.go(c.seg(true, RST, c.cseq, 0, 0), 0).has(INV));
    assert_eq!(c.state(), "CLOSE");
}

#[test]
fn no_commit_reports_new_but_remembers_nothing() {
    let ct = Conntrack::default();
    let c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    let v = ct.process(&c.seg(true, SYN, 1, 0, 0), 0, false);
    assert_eq!(v.state, TRK | NEW);
    assert_eq!(v.entry, None);
    assert!(ct.is_empty());
    assert!(c.go(c.seg(false, SYN | ACK, 7, 2, 0), 0).has(INV));
}

#[test]
fn syn_on_time_wait_reopens() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.handshake(0);
    c.client(FIN | ACK, 0, 0);
    c.server(FIN | ACK, 0, 0);
    c.client(ACK, 0, 0);
    assert_eq!(c.state(), "TIME_WAIT");
    c.cseq = c.cseq.wrapping_add(1_000_000);
    let v = c.client(SYN, 0, S);
    assert_eq!(v.state, TRK | NEW);
    assert_eq!(c.state(), "SYN_SENT");
    assert_eq!(ct.len(), 1);
}

#[test]
fn ipv6_tcp_and_icmpv6() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "2001:db8::1", "2001:db8::2");
    c.handshake(0);
    c.client(ACK | PSH, 10, S);
    assert_eq!(c.state(), "ESTABLISHED");
    // Packet too big quoting the client's segment, sent by a router to the client.
    let inner = InnerTuple {
        src: c.c,
        dst: c.s,
        proto: proto::TCP,
        sport: c.cport,
        dport: c.sport,
    };
    let ptb = PacketInfo::icmp(0, ip("2001:db8::ff"), c.c, 2, 0, 0, Some(inner));
    assert_eq!(ct.process(&ptb, S, false).state, TRK | REL | RPL);
    // ICMPv6 echo.
    let req = PacketInfo::icmp(0, c.c, c.s, 128, 0, 77, None);
    assert_eq!(ct.process(&req, S, true).state, TRK | NEW);
    let rep = PacketInfo::icmp(0, c.s, c.c, 129, 0, 77, None);
    assert_eq!(ct.process(&rep, S, true).state, TRK | EST | RPL);
    // Neighbour solicitation is not tracked.
    let ns = PacketInfo::icmp(0, c.c, c.s, 135, 0, 0, None);
    assert_eq!(
        ct.process(&ns, S, true).invalid,
        Some(InvalidReason::IcmpUnsupported)
    );
}

#[test]
fn udp_unreplied_replied_assured() {
    let ct = Conntrack::default();
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.53"));
    let q = PacketInfo::udp(0, a, b, 5353, 53);
    let r = PacketInfo::udp(0, b, a, 53, 5353);
    assert_eq!(ct.process(&q, 0, true).state, TRK | NEW);
    assert_eq!(ct.process(&q, S, true).state, TRK | NEW);
    let e = &ct.entries(None, S)[0];
    assert_eq!(
        (e.state, e.timeout_remaining, e.assured),
        ("UNREPLIED", 30, false)
    );
    assert_eq!(ct.process(&r, 2 * S, true).state, TRK | EST | RPL);
    let e = &ct.entries(None, 2 * S)[0];
    assert_eq!((e.state, e.timeout_remaining), ("REPLIED", 120));
    assert_eq!(ct.process(&q, 3 * S, true).state, TRK | EST);
    let e = &ct.entries(None, 3 * S)[0];
    assert_eq!(
        (e.state, e.timeout_remaining, e.assured),
        ("ASSURED", 180, true)
    );
    assert_eq!(e.packets, [3, 1]);
}

#[test]
fn icmp_echo_and_id_mismatch() {
    let ct = Conntrack::default();
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let req = PacketInfo::icmp(0, a, b, 8, 0, 0x1234, None);
    assert_eq!(ct.process(&req, 0, true).state, TRK | NEW);
    let wrong_id = PacketInfo::icmp(0, b, a, 0, 0, 0x9999, None);
    assert_eq!(
        ct.process(&wrong_id, 0, true).invalid,
        Some(InvalidReason::NotNew)
    );
    let rep = PacketInfo::icmp(0, b, a, 0, 0, 0x1234, None);
    assert_eq!(ct.process(&rep, 0, true).state, TRK | EST | RPL);
    // A request coming back the other way on the same id is not a reply.
    let back = PacketInfo::icmp(0, b, a, 8, 0, 0x1234, None);
    assert_eq!(
        ct.process(&back, 0, true).invalid,
        Some(InvalidReason::IcmpWrongDirection)
    );
    // The echo entry times out after 30 s.
    ct.expire(31 * S);
    assert!(ct.is_empty());
}

#[test]
fn icmp_error_related_to_tcp() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.handshake(0);
    let router = ip("10.0.0.254");
    let from_client = InnerTuple {
        src: c.c,
        dst: c.s,
        proto: proto::TCP,
        sport: c.cport,
        dport: c.sport,
    };
    // Fragmentation needed, sent to the client about its own segment: related, reply direction.
    let err = PacketInfo::icmp(0, router, c.c, 3, 4, 0, Some(from_client));
    let v = ct.process(&err, S, false);
    assert_eq!(v.state, TRK | REL | RPL);
    assert!(v.entry.is_some());
    // Time exceeded about the server's segment, sent to the server: related, original direction.
    let from_server = InnerTuple {
        src: c.s,
        dst: c.c,
        proto: proto::TCP,
        sport: c.sport,
        dport: c.cport,
    };
    let err = PacketInfo::icmp(0, router, c.s, 11, 0, 0, Some(from_server));
    assert_eq!(ct.process(&err, S, false).state, TRK | REL);
    // Quoting a connection nobody opened.
    let other = InnerTuple {
        sport: 1,
        ..from_client
    };
    let err = PacketInfo::icmp(0, router, c.c, 3, 1, 0, Some(other));
    assert_eq!(
        ct.process(&err, S, false).invalid,
        Some(InvalidReason::IcmpNoConnection)
    );
    // Sent to someone other than the quoted packet's source.
    let err = PacketInfo::icmp(0, router, ip("10.0.0.99"), 3, 1, 0, Some(from_client));
    assert_eq!(
        ct.process(&err, S, false).invalid,
        Some(InvalidReason::IcmpMismatch)
    );
    assert_eq!(ct.len(), 1, "errors never create entries");
}

#[test]
fn other_protocols_by_addresses() {
    let ct = Conntrack::default();
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    assert_eq!(
        ct.process(&PacketInfo::other(0, a, b, 47), 0, true).state,
        TRK | NEW
    );
    assert_eq!(
        ct.process(&PacketInfo::other(0, b, a, 47), 0, true).state,
        TRK | EST | RPL
    );
    assert_eq!(
        ct.process(&PacketInfo::other(0, b, a, 50), 0, false).state,
        TRK | NEW
    );
    assert_eq!(ct.entries(None, 0)[0].timeout_remaining, 600);
    let bad = PacketInfo {
        proto: proto::TCP,
        ..PacketInfo::other(0, a, b, 47)
    };
    assert_eq!(
        ct.process(&bad, 0, true).invalid,
        Some(InvalidReason::Malformed)
    );
}

#[test]
fn zones_isolate_identical_tuples() {
    let ct = Conntrack::default();
    let mut z1 = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    z1.zone = 1;
    z1.handshake(0);
    let mut z2 = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    z2.zone = 2;
    // Zone 2 never saw the SYN: the SYN-ACK is not part of anything there.
    let v = z2.go(z2.seg(false, SYN | ACK, z2.sseq, z2.cseq + 1, 0), 0);
    assert_eq!(v.invalid, Some(InvalidReason::NotNew));
    z2.handshake(0);
    assert_eq!(ct.zone_counts(), vec![(1, 1), (2, 1)]);
    assert_eq!(ct.entries(Some(2), 0).len(), 1);
    assert_eq!(ct.flush(Some(1), None), 1);
    assert_eq!(z2.state(), "ESTABLISHED");
    assert_eq!(z1.state(), "GONE");
}

fn limited(zone_limit: u32) -> Conntrack {
    let ct = Conntrack::default();
    ct.set_zone_config(
        5,
        ZoneConfig {
            limit: zone_limit,
            ..ZoneConfig::default()
        },
    );
    ct
}

fn established(ct: &Conntrack, zone: u16, i: u16) -> Verdict {
    let mut c = Tcp::new(ct, "10.1.0.1", "10.1.0.2");
    c.zone = zone;
    c.cport = 1000 + i;
    let v = c.client(SYN, 0, 0);
    if v.has(INV) {
        return v;
    }
    c.server(SYN | ACK, 0, 0);
    c.client(ACK, 0, 0)
}

#[test]
fn zone_limit_refuses_the_eleventh_with_a_counter() {
    let ct = limited(10);
    for i in 0..10 {
        assert!(!established(&ct, 5, i).has(INV));
    }
    let v = established(&ct, 5, 10);
    assert_eq!(v.invalid, Some(InvalidReason::TableFull));
    assert_eq!(count(&ct, InvalidReason::TableFull), 1);
    assert_eq!(ct.zone_len(5), 10);
    // Other zones are not affected by zone 5's limit.
    assert!(!established(&ct, 6, 10).has(INV));
    ct.check_invariants();
}

#[test]
fn early_drop_prefers_unassured_entries() {
    let ct = limited(10);
    for i in 0..9 {
        established(&ct, 5, i);
    }
    let mut half = Tcp::new(&ct, "10.2.0.1", "10.2.0.2");
    half.zone = 5;
    half.client(SYN, 0, 0);
    assert_eq!(ct.zone_len(5), 10);
    assert!(
        !established(&ct, 5, 100).has(INV),
        "made room by dropping the SYN_SENT entry"
    );
    assert_eq!(half.state(), "GONE");
    assert_eq!(ct.zone_len(5), 10);
    assert!(ct
        .entries(Some(5), 0)
        .iter()
        .all(|e| e.state == "ESTABLISHED"));
    assert!(ct.event_counters().contains(&("early_drop", 1)));
    assert_eq!(count(&ct, InvalidReason::TableFull), 0);
    ct.check_invariants();
}

#[test]
fn global_limit() {
    let ct = Conntrack::new(Config {
        global_limit: 4,
        ..Config::default()
    });
    for i in 0..4 {
        assert!(!established(&ct, i % 3, i).has(INV));
    }
    assert_eq!(
        established(&ct, 9, 9).invalid,
        Some(InvalidReason::TableFull)
    );
    assert_eq!(ct.len(), 4);
}

#[test]
fn expiry_without_scans() {
    let ct = Conntrack::default();
    for i in 0..50u16 {
        let p = PacketInfo::udp(0, ip("10.0.0.1"), ip("10.0.0.2"), 2000 + i, 53);
        ct.process(&p, 0, true);
    }
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.handshake(0);
    assert_eq!(ct.len(), 51);
    assert_eq!(ct.expire(29 * S), 0);
    assert_eq!(ct.expire(30 * S), 50);
    assert_eq!(ct.len(), 1);
    // Keep the connection busy: its deadline moves, its timer is re-armed lazily.
    c.client(ACK, 10, 100 * S);
    assert_eq!(ct.expire(432_000 * S), 0);
    assert_eq!(c.state(), "ESTABLISHED");
    assert_eq!(ct.expire(432_101 * S), 1);
    assert!(ct.is_empty());
    ct.check_invariants();
}

#[test]
fn lookups_never_use_an_expired_entry() {
    let ct = Conntrack::default();
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    ct.process(&PacketInfo::udp(0, a, b, 1, 2), 0, true);
    // No expire() call: the lookup notices the deadline passed.
    let v = ct.process(&PacketInfo::udp(0, b, a, 2, 1), 31 * S, false);
    assert_eq!(v.state, TRK | NEW);
    assert!(ct.is_empty());
}

#[test]
fn timeouts_per_zone() {
    let ct = Conntrack::default();
    let t = Timeouts {
        udp_unreplied: 5,
        ..Timeouts::default()
    };
    ct.set_zone_config(
        3,
        ZoneConfig {
            timeouts: t,
            ..ZoneConfig::default()
        },
    );
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    ct.process(&PacketInfo::udp(3, a, b, 1, 2), 0, true);
    ct.process(&PacketInfo::udp(0, a, b, 1, 2), 0, true);
    assert_eq!(ct.expire(5 * S), 1);
    assert_eq!(ct.zone_counts(), vec![(0, 1)]);
}

#[test]
fn mark_label_dump_and_flush_by_tuple() {
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
    c.handshake(0);
    let id = c.client(ACK, 0, 0).entry.unwrap();
    ct.set_mark(id, 0x42).unwrap();
    ct.set_label(id, 1 << 100).unwrap();
    let v = c.server(ACK, 0, 0);
    assert_eq!((v.mark, v.label), (0x42, 1 << 100));
    let e = &ct.entries(Some(0), 0)[0];
    assert_eq!(e.reply, e.original.reverse());
    assert_eq!((e.proto, e.mark), (proto::TCP, 0x42));
    // Flush by the reply-direction tuple finds the same connection.
    assert_eq!(ct.flush(None, Some(e.reply)), 1);
    assert_eq!(ct.set_mark(id, 1), Err(Error::StaleEntry));
    assert!(ct.is_empty());
}

#[test]
fn concurrent_workers_both_directions() {
    let ct = Arc::new(Conntrack::new(Config {
        shards: 16,
        ..Config::default()
    }));
    let threads = 4;
    let per = 500u16;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ct = Arc::clone(&ct);
            std::thread::spawn(move || {
                let mut invalid = 0;
                for i in 0..per {
                    let mut c = Tcp::new(&ct, "10.0.0.1", "10.0.0.2");
                    c.zone = t;
                    c.cport = 1024 + i;
                    c.handshake(0);
                    for _ in 0..3 {
                        invalid += u32::from(c.client(ACK | PSH, 100, S).has(INV));
                        invalid += u32::from(c.server(ACK | PSH, 100, S).has(INV));
                    }
                }
                invalid
            })
        })
        .collect();
    // Meanwhile, a reader dumps and expires.
    for _ in 0..20 {
        let _ = ct.entries(None, S);
        ct.expire(S);
    }
    let invalid: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(invalid, 0);
    assert_eq!(ct.len(), usize::from(per) * threads as usize);
    for t in 0..threads {
        assert_eq!(ct.zone_len(t), usize::from(per));
    }
    let all = ct.entries(None, S);
    assert!(all
        .iter()
        .all(|e| e.packets == [5, 4] && e.state == "ESTABLISHED"));
    ct.check_invariants();
}

#[test]
fn concurrent_directions_of_the_same_flows() {
    let ct = Arc::new(Conntrack::default());
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let n = 2000u16;
    for p in 0..n {
        assert_eq!(
            ct.process(&PacketInfo::udp(0, a, b, p, 53), 0, true).state,
            TRK | NEW
        );
    }
    let side = |from_a: bool| {
        let ct = Arc::clone(&ct);
        std::thread::spawn(move || {
            for _ in 0..5 {
                for p in 0..n {
                    let pkt = if from_a {
                        PacketInfo::udp(0, a, b, p, 53)
                    } else {
                        PacketInfo::udp(0, b, a, 53, p)
                    };
                    assert!(!ct.process(&pkt, S, true).has(INV));
                }
            }
        })
    };
    let (x, y) = (side(true), side(false));
    x.join().unwrap();
    y.join().unwrap();
    assert_eq!(ct.len(), usize::from(n));
    for e in ct.entries(None, S) {
        assert_eq!(e.packets, [6, 5]);
        assert_eq!(e.state, "ASSURED");
    }
    ct.check_invariants();
}

#[test]
fn memory_at_scale() {
    let ct = Conntrack::default();
    for i in 0..20_000u32 {
        let a = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
        ct.process(&PacketInfo::udp(0, a, ip("10.255.0.1"), 1000, 53), 0, true);
    }
    let m = ct.memory();
    println!(
        "{} entries: entry {} B, nominal {} B/connection, allocated {} B/connection",
        m.entries,
        m.entry_size,
        m.nominal_per_entry,
        m.allocated_per_entry()
    );
    assert_eq!(m.entries, 20_000);
    assert!(m.nominal_per_entry <= 256);
}

#[derive(Clone, Debug)]
enum Op {
    Tcp {
        client: bool,
        port: u8,
        flags: u8,
        seq: u8,
        ack: u8,
        len: u8,
    },
    Udp {
        client: bool,
        port: u8,
    },
    Icmp {
        client: bool,
        ty: u8,
        id: u8,
    },
    Error {
        port: u8,
    },
    Tick(u16),
    Flush,
}

fn op() -> impl Strategy<Value = (u8, bool, Op)> {
    let flags = prop::sample::select(vec![
        SYN,
        SYN | ACK,
        ACK,
        ACK | PSH,
        FIN | ACK,
        RST,
        RST | ACK,
        SYN | FIN,
        0,
    ]);
    let o = prop_oneof![
        8 => (any::<bool>(), 0u8..6, flags, any::<u8>(), any::<u8>(), 0u8..3)
            .prop_map(|(client, port, flags, seq, ack, len)| Op::Tcp { client, port, flags, seq, ack, len }),
        2 => (any::<bool>(), 0u8..6).prop_map(|(client, port)| Op::Udp { client, port }),
        2 => (any::<bool>(), prop::sample::select(vec![0u8, 8, 13, 3, 11, 42]), 0u8..3)
            .prop_map(|(client, ty, id)| Op::Icmp { client, ty, id }),
        1 => (0u8..6).prop_map(|port| Op::Error { port }),
        1 => (0u16..200).prop_map(Op::Tick),
        1 => Just(Op::Flush),
    ];
    (0u8..3, any::<bool>(), o)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_packets_never_panic_and_respect_limits(ops in prop::collection::vec(op(), 1..300)) {
        let ct = Conntrack::new(Config { global_limit: 12, shards: 4, ..Config::default() });
        ct.set_zone_config(1, ZoneConfig { limit: 5, ..ZoneConfig::default() });
        ct.set_zone_config(2, ZoneConfig { limit: 5, profile: Profile::Liberal, ..ZoneConfig::default() });
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let mut now = 0u64;
        for (zone, commit, o) in ops {
            let zone = u16::from(zone);
            let dirs = |client: bool| if client { (a, b) } else { (b, a) };
            let v = match o {
                Op::Tcp { client, port, flags, seq, ack, len } => {
                    let (s, d) = dirs(client);
                    let (sp, dp) = if client { (1000 + u16::from(port), 80) } else { (80, 1000 + u16::from(port)) };
                    // Sequence numbers near a few bases so that some segments are in window.
                    let base = if client { 1000u32 } else { 50_000 };
                    let info = TcpInfo {
                        sport: sp, dport: dp,
                        seq: base + u32::from(seq) * 10,
                        ack: (if client { 50_000u32 } else { 1000 }) + u32::from(ack) * 10,
                        window: 1000, flags, wscale: (seq % 3 == 0).then_some(seq % 16),
                        payload_len: u32::from(len) * 10,
                    };
                    ct.process(&PacketInfo::tcp(zone, s, d, info), now, commit)
                }
                Op::Udp { client, port } => {
                    let (s, d) = dirs(client);
                    let (sp, dp) = if client { (u16::from(port), 53) } else { (53, u16::from(port)) };
                    ct.process(&PacketInfo::udp(zone, s, d, sp, dp), now, commit)
                }
                Op::Icmp { client, ty, id } => {
                    let (s, d) = dirs(client);
                    let inner = InnerTuple { src: d, dst: s, proto: proto::ICMP, sport: u16::from(id), dport: 0 };
                    ct.process(&PacketInfo::icmp(zone, s, d, ty, 0, u16::from(id), Some(inner)), now, commit)
                }
                Op::Error { port } => {
                    let inner = InnerTuple { src: a, dst: b, proto: proto::TCP, sport: 1000 + u16::from(port), dport: 80 };
                    ct.process(&PacketInfo::icmp(zone, ip("10.0.0.254"), a, 3, 1, 0, Some(inner)), now, false)
                }
                Op::Tick(s) => {
                    now += u64::from(s) * S;
                    ct.expire(now);
                    continue;
                }
                Op::Flush => {
                    ct.flush(Some(zone), None);
                    continue;
                }
            };
            prop_assert!(v.has(TRK));
            prop_assert_eq!(v.has(INV), v.invalid.is_some());
            prop_assert!(ct.len() <= 12);
            prop_assert!(ct.zone_len(1) <= 5 && ct.zone_len(2) <= 5);
        }
        ct.check_invariants();
        let total: u32 = ct.zone_counts().iter().map(|(_, n)| n).sum();
        prop_assert_eq!(total as usize, ct.len());
    }
}

/// `ct(zone=Z,table=T)` then `ct(commit,zone=Z)` on the same packet (the usual flow pattern,
/// S1's network node among them): the second pass gives the verdict again without tracking
/// the packet twice — no double count of an unreplied UDP stream or ICMP echo, no second TCP
/// state transition — and a connection the first pass did not find is created by the commit.
#[test]
fn a_packet_tracked_again_in_its_zone_is_counted_once() {
    let ct = Conntrack::default();
    let (a, b) = (ip("192.168.111.210"), ip("192.168.111.223"));
    let q = PacketInfo::udp(0, a, b, 40000, 5001);
    for (i, now) in [(1u64, 0), (2, S), (3, 2 * S)] {
        // ct(table=1): the first datagram finds nothing, the later ones their entry.
        let v = ct.process(&q, now, false);
        assert_eq!(v.state, TRK | NEW, "{v:?}");
        // ct(commit) in table 1, the same datagram.
        let v = ct.process_nat_again(&q, now, true, None).verdict;
        assert_eq!(v.state, TRK | NEW, "{v:?}");
        assert!(v.entry.is_some(), "committed");
        let e = &ct.entries(None, now)[0];
        assert_eq!(e.packets, [i, 0], "datagram {i} counted once");
    }
    assert_eq!(ct.len(), 1);

    // TCP: the state machine runs once per segment; an established connection's counters
    // and the reply flag are untouched by the second pass.
    let ct = Conntrack::default();
    let mut c = Tcp::new(&ct, "192.168.111.210", "192.168.111.223");
    c.handshake(0);
    let seg = c.seg(true, ACK | PSH, c.cseq, c.sseq, 100);
    assert_eq!(ct.process(&seg, S, false).state, TRK | EST);
    let v = ct.process_nat_again(&seg, S, true, None).verdict;
    assert_eq!(v.state, TRK | EST, "{v:?}");
    let e = &ct.entries(None, S)[0];
    assert_eq!(e.packets, [3, 1], "SYN, ACK, data; SYN-ACK");
    // Without `again`, the same call counts a packet (what the datapath did before).
    ct.process(&seg, S, true);
    assert_eq!(ct.entries(None, S)[0].packets, [4, 1]);
}
