//! Conntrack with real kernel traffic: a stateful firewall in zone 5 lets the inside host
//! (port 1) open connections to the outside host (port 2) and lets their replies back, but
//! refuses connections opened from outside; the conntrack commands show, count and flush
//! what was tracked, and a zone limit refuses a connection over it.

use integration::lab::switch::{add_flows, bridge_with_hosts, flow_packets};
use integration::lab::{hosts, ping, require_root, tcp_transfer, udp_exchange, Lab};
use integration::Daemon;
use serde_json::Value;
use std::time::Duration;

const FIREWALL: &[&str] = &[
    "table=0,priority=100,arp actions=normal",
    "table=0,priority=10,ip,ct_state=-trk actions=ct(table=1,zone=5)",
    "table=0,priority=0 actions=drop",
    "table=1,priority=10,ip,ct_state=+trk+new,in_port=1 actions=ct(commit,zone=5),output:2",
    "table=1,priority=10,ct_state=+trk+est,in_port=1 actions=output:2",
    "table=1,priority=10,ct_state=+trk+est,in_port=2 actions=output:1",
    "table=1,priority=10,ct_state=+trk+new,in_port=2 actions=drop",
    "table=1,priority=5 actions=drop",
];

fn json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.swctl(args).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Protocol numbers of the zone-5 entries.
fn zone5_protos(d: &Daemon) -> Vec<u64> {
    let v = json(d, &["dump-conntrack", "--zone", "5", "--json"]);
    let mut p: Vec<u64> = v
        .as_array()
        .expect("entry list")
        .iter()
        .map(|e| e["proto"].as_u64().expect("proto"))
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

#[test]
fn stateful_firewall_in_zone_5() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 41, 2);
    let mut d = Daemon::lab("lab-ct");
    bridge_with_hosts(&d, "br0", &h, None);
    add_flows(&d, "br0", FIREWALL);
    let (inside, outside) = (&h[0], &h[1]);

    // Inside -> outside: ping, TCP and UDP work (their replies are +est).
    assert_eq!(ping(&inside.ns, &outside.ip, 3), 3, "{}", d.log_text());
    let t = tcp_transfer(
        &outside.ns,
        &outside.ip,
        &inside.ns,
        256 << 10,
        Duration::from_secs(20),
    );
    assert!(t.ok(), "TCP inside -> outside: {t:?}");
    assert_eq!(udp_exchange(&outside.ns, &outside.ip, &inside.ns, 3), 3);

    // Outside -> inside: a new connection is dropped (bounded wait).
    let t = tcp_transfer(
        &inside.ns,
        &inside.ip,
        &outside.ns,
        1000,
        Duration::from_secs(2),
    );
    assert!(!t.ok() && t.received == 0, "TCP outside -> inside: {t:?}");
    assert_eq!(ping(&outside.ns, &inside.ip, 2), 0);
    assert!(flow_packets(&d, "br0", &["ct_state=+new+trk", "in_port=2"]) > 0);
    // Replies: 3 echo replies, 3 UDP echoes, the TCP server's SYN-ACK and ACKs.
    let replies = flow_packets(&d, "br0", &["ct_state=+est+trk", "in_port=2"]);
    assert!(replies > 7, "{replies}");

    // What was tracked: TCP, UDP and ICMP in zone 5, nothing elsewhere.
    assert_eq!(zone5_protos(&d), vec![1, 6, 17]);
    let text = d.swctl(&["dump-conntrack"]).expect_ok("dump-conntrack");
    assert!(
        text.lines()
            .any(|l| l.starts_with("tcp") && l.contains("zone=5")),
        "{text}"
    );
    let stats = json(&d, &["conntrack-stats", "--json"]);
    let zones = stats["zones"].as_array().expect("zones");
    let z5 = zones
        .iter()
        .find(|z| z["zone"] == 5)
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(z5["entries"].as_u64().unwrap() >= 3, "{stats}");
    assert_eq!(stats["entries"], z5["entries"], "{stats}");

    // Flush: empty, and the counters say so.
    let out = d
        .swctl(&["flush-conntrack", "--zone", "5"])
        .expect_ok("flush");
    assert!(out.starts_with("flushed "), "{out}");
    assert!(zone5_protos(&d).is_empty());
    assert_eq!(json(&d, &["conntrack-stats", "--json"])["entries"], 0);

    // Zone limit 1: one UDP flow holds the only slot (assured: two exchanges, so it is not
    // early-dropped to make room); a TCP connection is refused, counted.
    d.swctl(&["set-ct-zone", "5", "limit=1"])
        .expect_ok("set-ct-zone");
    assert_eq!(udp_exchange(&outside.ns, &outside.ip, &inside.ns, 2), 2);
    let full_before = json(&d, &["conntrack-stats", "--json"])["invalid"]["table_full"]
        .as_u64()
        .unwrap_or(0);
    let t = tcp_transfer(
        &outside.ns,
        &outside.ip,
        &inside.ns,
        1000,
        Duration::from_secs(2),
    );
    assert!(!t.ok(), "over the zone limit: {t:?}");
    let stats = json(&d, &["conntrack-stats", "--json"]);
    assert!(
        stats["invalid"]["table_full"].as_u64().unwrap_or(0) > full_before,
        "{stats}"
    );
    // Lifting the limit lets connections through again.
    d.swctl(&["set-ct-zone", "5", "limit=0"])
        .expect_ok("set-ct-zone");
    let t = tcp_transfer(
        &outside.ns,
        &outside.ip,
        &inside.ns,
        1000,
        Duration::from_secs(10),
    );
    assert!(t.ok(), "after lifting the limit: {t:?}");
    assert!(d.is_running());
}
