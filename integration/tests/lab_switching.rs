//! Lab scenarios 1, 2 and 6: real kernel traffic switched by `vswitchd` between namespaces,
//! by MAC learning (`normal`) on either port kind, and by explicit flows with exact counters.

use integration::lab::switch::{
    add_flows, bridge_with_hosts, dump_ports, fdb, fdb_has, flow_packets, show_port,
};
use integration::lab::{eventually, hosts, ping, require_root, tcp_transfer, xdp_attached, Lab};
use integration::Daemon;
use std::time::Duration;

const MB: usize = 1 << 20;

/// Scenario 1 (and 6 with a port kind): two hosts through `priority=0 actions=normal`.
fn two_hosts_through_normal(test: &str, subnet: u8, kind: Option<&str>) {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, subnet, 2);
    let mut d = Daemon::lab(test);
    bridge_with_hosts(&d, "br0", &h, kind);
    d.swctl(&["add-flow", "br0", "priority=0 actions=normal"])
        .expect_ok("add-flow normal");
    if let Some(kind) = kind {
        for host in &h {
            let port = show_port(&d, "br0", host.port()).expect("port listed in show");
            assert_eq!(port.kind, kind, "{port:?}");
            // An AF_XDP port really receives through XDP; an AF_PACKET port leaves XDP alone.
            assert_eq!(xdp_attached(host.port()), kind == "afxdp", "{port:?}");
        }
    }

    assert_eq!(ping(&h[0].ns, &h[1].ip, 5), 5, "h1 -> h2\n{}", d.log_text());
    assert_eq!(ping(&h[1].ns, &h[0].ip, 5), 5, "h2 -> h1");
    for (srv, cli) in [(1, 0), (0, 1)] {
        let t = tcp_transfer(
            &h[srv].ns,
            &h[srv].ip,
            &h[cli].ns,
            MB,
            Duration::from_secs(30),
        );
        assert!(t.ok(), "1 MB h{} -> h{}: {t:?}", cli + 1, srv + 1);
    }

    let table = fdb(&d, "br0");
    for (i, host) in h.iter().enumerate() {
        assert!(
            fdb_has(&table, &host.mac, host.port(), i as u64 + 1),
            "{} learned on {}: {table:#?}",
            host.mac,
            host.port()
        );
    }
    let stats = dump_ports(&d, "br0");
    for host in &h {
        let s = stats
            .iter()
            .find(|s| s.name == host.port())
            .expect("port counters");
        // A 1 MB transfer each way is hundreds of frames in and out of every port.
        assert!(s.rx_packets > 500 && s.tx_packets > 500, "{s:?}");
    }
    assert!(d.is_running());
}

#[test]
fn two_hosts_through_normal_default_port_kind() {
    two_hosts_through_normal("lab-normal", 31, None);
}

#[test]
fn two_hosts_through_normal_on_afxdp_ports() {
    two_hosts_through_normal("lab-afxdp", 32, Some("afxdp"));
}

#[test]
fn two_hosts_through_normal_on_afpacket_ports() {
    two_hosts_through_normal("lab-afpacket", 33, Some("afpacket"));
}

/// Scenario 2: three hosts through explicit per-port flows; ARP has flows of its own so the
/// ICMP flows count exactly the echo requests and replies that ping sent.
#[test]
fn three_hosts_through_explicit_flows_count_exactly() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 34, 3);
    let d = Daemon::lab("lab-flows");
    bridge_with_hosts(&d, "br0", &h, None);
    let mut flows = Vec::new();
    for a in 1..=3usize {
        let others: Vec<String> = (1..=3)
            .filter(|&b| b != a)
            .map(|b| format!("output:{b}"))
            .collect();
        flows.push(format!(
            "priority=100,arp,in_port={a} actions={}",
            others.join(",")
        ));
        for b in (1..=3).filter(|&b| b != a) {
            flows.push(format!(
                "priority=100,icmp,in_port={a},nw_dst={} actions=output:{b}",
                h[b - 1].ip
            ));
        }
    }
    add_flows(
        &d,
        "br0",
        &flows.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // (from, to, count): each pair pinged once, with a different count.
    let pings = [(1, 2, 5u64), (2, 3, 4), (1, 3, 3)];
    for &(a, b, n) in &pings {
        let got = ping(&h[a - 1].ns, &h[b - 1].ip, n as u32);
        assert_eq!(u64::from(got), n, "h{a} -> h{b}\n{}", d.log_text());
    }
    let icmp = |from: usize, to: usize| {
        let (port, dst) = (
            format!("in_port={from}"),
            format!("nw_dst={}", h[to - 1].ip),
        );
        flow_packets(&d, "br0", &["icmp", &port, &dst])
    };
    // Every request goes through the flow towards its target, every reply back.
    let expected: Vec<((usize, usize), u64)> = pings
        .iter()
        .flat_map(|&(a, b, n)| [((a, b), n), ((b, a), n)])
        .collect();
    let actual = || {
        expected
            .iter()
            .map(|&((a, b), n)| ((a, b), n, icmp(a, b)))
            .collect::<Vec<_>>()
    };
    // Counters may be gathered from the workers a moment later; they must then be exact.
    eventually(Duration::from_secs(3), || {
        actual().iter().all(|(_, n, got)| n == got)
    });
    for ((a, b), n, got) in actual() {
        assert_eq!(
            got, n,
            "ICMP flow in_port={a} -> h{b}: requests/replies counted once each"
        );
    }
}

#[test]
fn trace_of_a_flood_flow_lists_the_bridges_ports() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 57, 3);
    let d = Daemon::lab("lab-trace-flood");
    bridge_with_hosts(&d, "br0", &h, None);
    d.swctl(&["add-flow", "br0", "priority=0 actions=flood"])
        .expect_ok("add-flow");
    let out = d
        .swctl(&["trace", "br0", "in_port=2,udp,nw_dst=10.57.0.9"])
        .expect_ok("trace");
    // Every port but the ingress one, and nothing else.
    assert!(out.contains("Output to port 1:"), "{out}");
    assert!(out.contains("Output to port 3:"), "{out}");
    assert!(!out.contains("Output to port 2:"), "{out}");
    // A port that is deleted is no longer flooded to.
    d.swctl(&["del-port", "br0", h[2].port()])
        .expect_ok("del-port");
    let out = d
        .swctl(&["trace", "br0", "in_port=2,udp,nw_dst=10.57.0.9"])
        .expect_ok("trace");
    assert!(out.contains("Output to port 1:"), "{out}");
    assert!(!out.contains("Output to port 3:"), "{out}");
}
