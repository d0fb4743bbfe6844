//! VXLAN tunnel ports between two `vswitchd` instances, each inside its own "node" namespace,
//! joined by an underlay veth (10.0.0.1/24 ↔ 10.0.0.2/24): the tenant network of seed 000
//! (88.88.88.0/24 on VNI 0x43e) stretched across the nodes, with the kernel's own ping and TCP.
//!
//! ```text
//!  ns ha (88.88.88.4)          node na                              node nb          ns hb (88.88.88.10)
//!   eth0 ── veth ── pa [vswitchd br0: pa=1, vx0=10] ul 10.0.0.1 ══ ul 10.0.0.2 [vswitchd br0] pb ── eth0
//! ```
//!
//! Hosts use MTU 1450: the encapsulation adds 50 bytes to the 1500-byte underlay.

use integration::lab::cmd::must;
use integration::lab::switch::{add_flows, dump_ports, flow_packets, show_port, PortStats};
use integration::lab::{eventually, ping, require_root, tcp_transfer, Lab, Netns, Spawned};
use integration::Daemon;
use std::time::Duration;

const MB: usize = 1 << 20;
const VX: &str = "10";
const HA_IP: &str = "88.88.88.4";
const HB_IP: &str = "88.88.88.10";
const HA_MAC: &str = "fa:16:3e:00:00:04";
const HB_MAC: &str = "fa:16:3e:00:00:0a";

/// The two nodes and their hosts. Field order is drop order: daemons first, then the host
/// namespaces, then the nodes (deleting a namespace deletes the veths inside it).
struct TwoNodes {
    da: Daemon,
    db: Daemon,
    ha: Netns,
    hb: Netns,
    na: Netns,
    /// Held for its drop (node B; its daemon and veths go with it).
    _nb: Netns,
}

/// A host namespace `h` joined to node `node` by a veth whose node end `port` becomes a
/// switch port.
fn host(node: &Netns, h: &Netns, port: &str, ip: &str, mac: &str) {
    must(&[
        "ip",
        "-n",
        h.name(),
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        port,
        "netns",
        node.name(),
    ]);
    let ns = h.name();
    must(&[
        "ip", "-n", ns, "link", "set", "eth0", "address", mac, "mtu", "1450",
    ]);
    must(&[
        "ip",
        "-n",
        ns,
        "addr",
        "add",
        &format!("{ip}/24"),
        "dev",
        "eth0",
    ]);
    // Partial checksums and GSO super-frames must not reach the AF_XDP port (README).
    h.exec_ok(&[
        "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off", "gro", "off",
    ]);
    must(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
    must(&["ip", "-n", node.name(), "link", "set", port, "up"]);
}

fn node_daemon(test: &str, node: &Netns) -> Daemon {
    Daemon::builder(test)
        .netns(node.name())
        .log_level("info")
        .with_db()
        .workers(1)
        .idle("sleep")
        .start()
}

impl TwoNodes {
    fn new(lab: &Lab, test: &str) -> TwoNodes {
        let na = lab.netns("na");
        let nb = lab.netns("nb");
        let ha = lab.netns("ha");
        let hb = lab.netns("hb");
        // The underlay: the kernel of each node routes and resolves it.
        must(&[
            "ip",
            "-n",
            na.name(),
            "link",
            "add",
            "ul",
            "type",
            "veth",
            "peer",
            "name",
            "ul",
            "netns",
            nb.name(),
        ]);
        for (n, ip) in [(&na, "10.0.0.1/24"), (&nb, "10.0.0.2/24")] {
            must(&["ip", "-n", n.name(), "addr", "add", ip, "dev", "ul"]);
            must(&["ip", "-n", n.name(), "link", "set", "ul", "up"]);
        }
        host(&na, &ha, "pa", HA_IP, HA_MAC);
        host(&nb, &hb, "pb", HB_IP, HB_MAC);
        let da = node_daemon(&format!("{test}-a"), &na);
        let db = node_daemon(&format!("{test}-b"), &nb);
        for (d, p) in [(&da, "pa"), (&db, "pb")] {
            d.swctl(&["add-br", "br0"]).expect_ok("add-br");
            d.swctl(&["add-port", "br0", p, "--ofport", "1"])
                .expect_ok("add-port host");
        }
        TwoNodes {
            da,
            db,
            ha,
            hb,
            na,
            _nb: nb,
        }
    }

    /// `add-port br0 vx0 --type vxlan --ofport 10 --local L --remote R --key K` on `d`.
    fn vxlan(d: &Daemon, local: &str, remote: &str, key: &str) {
        d.swctl(&[
            "add-port", "br0", "vx0", "--type", "vxlan", "--ofport", VX, "--local", local,
            "--remote", remote, "--key", key,
        ])
        .expect_ok("add-port vxlan");
    }

    fn logs(&self) -> String {
        format!(
            "--- node a ---\n{}\n--- node b ---\n{}",
            self.da.log_text(),
            self.db.log_text()
        )
    }
}

fn vx_stats(d: &Daemon) -> PortStats {
    dump_ports(d, "br0")
        .into_iter()
        .find(|s| s.name == "vx0")
        .expect("vx0 in dump-ports")
}

fn drops(d: &Daemon, reason: &str) -> u64 {
    vx_stats(d).drops.get(reason).copied().unwrap_or(0)
}

/// Send raw UDP datagrams (hex payloads) from `src` in `ns` to `dst`:4789, as another VTEP
/// would (the switch's own socket holds port 4789, the sender takes any free port).
fn send_udp(ns: &Netns, src: &str, dst: &str, payloads: &[String]) {
    let list = payloads
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{src}',0))\n\
         for p in [{list}]:\n    s.sendto(bytes.fromhex(p),('{dst}',4789))\n"
    );
    ns.exec_ok(&["python3", "-c", &script]);
}

/// An inner broadcast frame (ARP-sized, type 0x88b5 local experimental) from `src_mac`.
fn inner_frame(src_mac: &str) -> String {
    format!(
        "ffffffffffff{}88b5{}",
        src_mac.replace(':', ""),
        "00".repeat(46)
    )
}

#[test]
fn vxlan_explicit_flows_ping_tcp_vni_filter_and_restart() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let mut t = TwoNodes::new(&lab, "vxflows");
    // Node A takes any VNI (flows choose), node B only 0x43e.
    TwoNodes::vxlan(&t.da, "10.0.0.1", "10.0.0.2", "flow");
    TwoNodes::vxlan(&t.db, "10.0.0.2", "10.0.0.1", "0x43e");
    let flows = [
        "in_port=1 actions=set_tunnel:0x43e,output:10",
        "tun_id=0x43e,in_port=10 actions=output:1",
    ];
    add_flows(&t.da, "br0", &flows);
    add_flows(&t.db, "br0", &flows);

    let vx = show_port(&t.da, "br0", "vx0").expect("vx0 in show");
    assert_eq!(vx.kind, "vxlan", "{vx:?}");
    assert_eq!(
        vx.mode, "local=10.0.0.1 remote=10.0.0.2 key=flow dst_port=4789",
        "{vx:?}"
    );
    assert_eq!(vx.mtu, 1450, "underlay 1500 minus 50: {vx:?}");
    let vxb = show_port(&t.db, "br0", "vx0").expect("vx0 in show");
    assert_eq!(
        vxb.mode, "local=10.0.0.2 remote=10.0.0.1 key=0x43e dst_port=4789",
        "{vxb:?}"
    );

    // The underlay carries UDP 4789 with VNI 0x43e (1086): watch it while pinging.
    let capture = t.na.spawn(&[
        "timeout", "30", "tcpdump", "-i", "ul", "-nn", "-l", "-c", "20", "udp", "port", "4789",
    ]);
    let seen_vni = |c: &Spawned| {
        c.lines()
            .iter()
            .any(|l| l.contains(".4789: VXLAN") && l.contains("vni 1086"))
    };
    let mut captured = false;
    for _ in 0..20 {
        ping(&t.ha, HB_IP, 1);
        if capture.wait_line(|l| l.contains("vni 1086"), Duration::from_millis(500)) {
            captured = seen_vni(&capture);
            break;
        }
    }
    assert!(
        captured,
        "no VXLAN VNI 1086 on the underlay: {:?}\n{}",
        capture.lines(),
        t.logs()
    );
    drop(capture);

    assert_eq!(ping(&t.ha, HB_IP, 5), 5, "ha -> hb\n{}", t.logs());
    assert_eq!(ping(&t.hb, HA_IP, 5), 5, "hb -> ha");
    for (srv, srv_ip, cli) in [(&t.hb, HB_IP, &t.ha), (&t.ha, HA_IP, &t.hb)] {
        let tr = tcp_transfer(srv, srv_ip, cli, MB, Duration::from_secs(60));
        assert!(
            tr.ok(),
            "1 MB through VNI 0x43e to {srv_ip}: {tr:?}\n{}",
            t.logs()
        );
    }
    for d in [&t.da, &t.db] {
        assert!(flow_packets(d, "br0", &["tun_id=0x43e", "in_port=10"]) >= 10);
        let s = vx_stats(d);
        assert!(s.rx_packets >= 10 && s.tx_packets >= 10, "{s:?}");
    }

    // Another VNI reaching node B (fixed key 0x43e) is dropped and counted; so is a datagram
    // that is not VXLAN at all.
    let before_vni = drops(&t.db, "vxlan_unknown_vni");
    let before_bad = drops(&t.db, "vxlan_bad_header");
    let rx_before = vx_stats(&t.db).rx_packets;
    send_udp(
        &t.na,
        "10.0.0.1",
        "10.0.0.2",
        &[
            format!("0800000000043f00{}", inner_frame(HA_MAC)),
            format!("0000000000043e00{}", inner_frame(HA_MAC)),
        ],
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            drops(&t.db, "vxlan_unknown_vni") == before_vni + 1
                && drops(&t.db, "vxlan_bad_header") == before_bad + 1
        }),
        "{:?}",
        vx_stats(&t.db)
    );
    assert_eq!(vx_stats(&t.db).rx_packets, rx_before, "nothing delivered");

    // Oversize: a host with a 1500 MTU sending a full frame that cannot fit the underlay with
    // 50 bytes on top: dropped at the tunnel port and counted, never fragmented.
    must(&[
        "ip",
        "-n",
        t.ha.name(),
        "link",
        "set",
        "eth0",
        "mtu",
        "1500",
    ]);
    let before = drops(&t.da, "tx_oversize");
    let out = t.ha.exec(&[
        "ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "1472", HB_IP,
    ]);
    assert!(!out.stdout.contains("bytes from"), "{out:?}");
    assert!(
        eventually(Duration::from_secs(5), || drops(&t.da, "tx_oversize")
            > before),
        "{:?}",
        vx_stats(&t.da)
    );
    must(&[
        "ip",
        "-n",
        t.ha.name(),
        "link",
        "set",
        "eth0",
        "mtu",
        "1450",
    ]);

    // The port and its options survive a restart (database), and forward again.
    t.da.restart();
    let vx2 = show_port(&t.da, "br0", "vx0").expect("vx0 restored");
    assert_eq!(
        (vx2.kind.as_str(), vx2.mode.as_str()),
        ("vxlan", vx.mode.as_str())
    );
    assert!(
        eventually(Duration::from_secs(10), || ping(&t.ha, HB_IP, 1) == 1),
        "ping after restart\n{}",
        t.logs()
    );
    assert_eq!(ping(&t.ha, HB_IP, 3), 3);
}

#[test]
fn vxlan_normal_learns_the_remote_vtep() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let t = TwoNodes::new(&lab, "vxnormal");
    // Node A sends to whatever remote `normal` learned for the destination MAC.
    TwoNodes::vxlan(&t.da, "10.0.0.1", "flow", "0x43e");
    TwoNodes::vxlan(&t.db, "10.0.0.2", "10.0.0.1", "0x43e");
    for d in [&t.da, &t.db] {
        d.swctl(&["add-flow", "br0", "priority=0 actions=normal"])
            .expect_ok("add-flow normal");
    }
    // hb speaks first: its ARP request floods to node A, which learns hb's MAC behind VTEP
    // 10.0.0.2; ha's unicast replies then go there.
    assert!(
        eventually(Duration::from_secs(10), || ping(&t.hb, HA_IP, 1) == 1),
        "hb -> ha through normal\n{}",
        t.logs()
    );
    assert_eq!(ping(&t.hb, HA_IP, 5), 5);
    assert_eq!(ping(&t.ha, HB_IP, 5), 5, "ha -> hb (learned remote)");
    let tr = tcp_transfer(&t.hb, HB_IP, &t.ha, MB, Duration::from_secs(60));
    assert!(tr.ok(), "{tr:?}");

    let fdb: serde_json::Value = serde_json::from_str(
        &t.da
            .swctl(&["fdb-show", "br0", "--json"])
            .expect_ok("fdb-show"),
    )
    .expect("fdb json");
    let entry = fdb
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["mac"] == HB_MAC)
        .unwrap_or_else(|| panic!("hb's MAC learned on node A: {fdb}"));
    assert_eq!(entry["port"], 10, "{entry}");
    assert_eq!(entry["remote"], "10.0.0.2", "{entry}");
    let text = t.da.swctl(&["fdb-show", "br0"]).expect_ok("fdb-show");
    assert!(text.contains("remote 10.0.0.2"), "{text}");
    let s = vx_stats(&t.da);
    assert!(s.tx_packets >= 10, "{s:?}");
}

#[test]
fn vxlan_remote_chosen_by_the_flow() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let t = TwoNodes::new(&lab, "vxremote");
    TwoNodes::vxlan(&t.da, "10.0.0.1", "flow", "flow");
    TwoNodes::vxlan(&t.db, "10.0.0.2", "10.0.0.1", "0x43e");
    add_flows(
        &t.da,
        "br0",
        &[
            "in_port=1 actions=set_tunnel:0x43e,set_field:10.0.0.2->tun_dst,output:10",
            "tun_id=0x43e,in_port=10 actions=output:1",
        ],
    );
    add_flows(
        &t.db,
        "br0",
        &[
            "in_port=1 actions=output:10",
            "tun_id=0x43e,tun_src=10.0.0.1,in_port=10 actions=output:1",
        ],
    );
    assert_eq!(ping(&t.ha, HB_IP, 5), 5, "ha -> hb\n{}", t.logs());
    let tr = tcp_transfer(&t.hb, HB_IP, &t.ha, MB, Duration::from_secs(60));
    assert!(tr.ok(), "{tr:?}");
    assert!(
        flow_packets(
            &t.db,
            "br0",
            &["tun_id=0x43e", "tun_src=10.0.0.1", "in_port=10"]
        ) >= 5
    );

    // Without a tun_dst the flow-remote port has nowhere to send: dropped and counted.
    t.da.swctl(&[
        "mod-flows",
        "br0",
        "in_port=1 actions=set_tunnel:0x43e,output:10",
    ])
    .expect_ok("mod-flows");
    let before = drops(&t.da, "vxlan_no_remote");
    assert_eq!(ping(&t.ha, HB_IP, 2), 0);
    assert!(
        eventually(Duration::from_secs(5), || drops(&t.da, "vxlan_no_remote")
            >= before + 2),
        "{:?}",
        vx_stats(&t.da)
    );
}

/// Refusals: each names what was wrong, and nothing changes. Needs no namespace: the
/// addresses are loopback ones of the test's own namespace.
#[test]
fn vxlan_add_port_errors_change_nothing() {
    let d = Daemon::builder("vxerrors").with_db().start();
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    let port = (20000 + std::process::id() % 20000).to_string();
    let ok = [
        "add-port",
        "br0",
        "vx0",
        "--type",
        "vxlan",
        "--local",
        "127.0.0.31",
        "--remote",
        "127.0.0.32",
        "--key",
        "0x43e",
        "--dst-port",
        &port,
        "--ofport",
        "10",
    ];
    d.swctl(&ok).expect_ok("add-port vx0");
    let show_before = d.swctl(&["show"]).expect_ok("show");
    assert!(show_before.contains("vxlan"), "{show_before}");
    let db_before = std::fs::read_to_string(d.db().expect("db")).expect("db file");
    let vx = |extra: &[&str]| {
        let mut a = vec!["add-port", "br0"];
        a.extend_from_slice(extra);
        d.swctl(&a).expect_err(&a.join(" "))
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["vx1", "--type", "vxlan", "--remote", "127.0.0.32"],
            "--local",
        ),
        (
            vec!["vx1", "--type", "vxlan", "--local", "127.0.0.33"],
            "--remote",
        ),
        (
            vec![
                "vx1",
                "--type",
                "vxlan",
                "--local",
                "127.0.0.x",
                "--remote",
                "flow",
            ],
            "127.0.0.x",
        ),
        (
            vec![
                "vx1",
                "--type",
                "vxlan",
                "--local",
                "127.0.0.33",
                "--remote",
                "nowhere",
            ],
            "nowhere",
        ),
        (
            vec![
                "vx1",
                "--type",
                "vxlan",
                "--local",
                "127.0.0.33",
                "--remote",
                "flow",
                "--key",
                "0x1000000",
            ],
            "0x1000000",
        ),
        (
            vec![
                "vx1",
                "--type",
                "vxlan",
                "--local",
                "192.0.2.9",
                "--remote",
                "flow",
            ],
            "not an address of this network namespace",
        ),
        (
            vec![
                "vx0",
                "--type",
                "vxlan",
                "--local",
                "127.0.0.33",
                "--remote",
                "flow",
            ],
            "vx0",
        ),
        (
            vec![
                "vx1",
                "--type",
                "vxlan",
                "--local",
                "127.0.0.33",
                "--remote",
                "flow",
                "--ofport",
                "10",
            ],
            "ofport 10",
        ),
        (
            vec![
                "vx1",
                "--type",
                "vxlan",
                "--local",
                "127.0.0.31",
                "--remote",
                "flow",
                "--dst-port",
                &port,
            ],
            "already uses",
        ),
        (vec!["lo", "--remote", "127.0.0.32"], "--type vxlan only"),
    ];
    for (args, token) in &cases {
        let err = vx(args);
        assert!(err.contains(token), "{args:?}: {err}");
    }
    assert_eq!(d.swctl(&["show"]).expect_ok("show"), show_before);
    assert_eq!(
        std::fs::read_to_string(d.db().expect("db")).expect("db file"),
        db_before
    );
    // The stored options are the parsed ones.
    assert!(db_before.contains("\"vxlan\""), "{db_before}");
    assert!(db_before.contains("\"key\": \"0x43e\""), "{db_before}");
    // Deleting the port releases its socket: the same address can be bound again at once.
    d.swctl(&["del-port", "br0", "vx0"])
        .expect_ok("del-port vx0");
    d.swctl(&ok).expect_ok("add-port vx0 again");
}
