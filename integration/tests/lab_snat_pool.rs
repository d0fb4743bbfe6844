//! Shared-address SNAT with deterministic port blocks across two nodes, with real kernel TCP.
//!
//! Two `vswitchd` instances, each in its own node namespace, joined by an underlay veth
//! (10.0.0.1 ↔ 10.0.0.2) and a VXLAN port each. Two VMs live on node A and leave through the
//! pool `gw` (public 203.0.113.7, inside 10.1.0.0/24, ports 1024-65535: 252 ports each; VM
//! 10.1.0.4 owns 2032-2283, VM 10.1.0.5 owns 2284-2535). The outside server is reachable from
//! both nodes' external ports; node B holds the same pool configuration and no connection.
//!
//! ```text
//!  vm1 10.1.0.4 ─ p1 ┐                                                      ┌ xb ─ tb ┐
//!                    [vswitchd A: p1=1 p2=2 xa=3 vx0=10] ul ══ ul [vswitchd B: xb=3 vx0=10]   srv 198.51.100.10
//!  vm2 10.1.0.5 ─ p2 ┘                     xa ─ ta ─────────────────────────────────────────────┘
//! ```
//!
//! 1. TCP from both VMs works through node A's `ct(commit,nat(src=pool:gw))`; the source ports
//!    the server sees fall in each VM's block.
//! 2. The server's replies for VM1's connection are then routed to node B (a policy rule on
//!    that connection's port). Node B has no conntrack entry: `snat_pool_owner(gw)` names
//!    10.1.0.4 from the destination port, B sends the packet untranslated through the tunnel
//!    to A, and A's conntrack translates it. The connection carries data all along.

use integration::lab::cmd::must;
use integration::lab::scripts::TCP_ECHO_SERVER;
use integration::lab::switch::{add_flows, flows};
use integration::lab::{eventually, require_root, Lab, Netns};
use integration::Daemon;
use serde_json::Value;
use std::time::Duration;

const PUBLIC: &str = "203.0.113.7";
const SRV_IP: &str = "198.51.100.10";
const VM1_IP: &str = "10.1.0.4";
const VM2_IP: &str = "10.1.0.5";
const VM1_MAC: &str = "02:00:0a:01:00:04";
const VM2_MAC: &str = "02:00:0a:01:00:05";
/// The VMs' gateway MAC (static neighbour entry in the VMs).
const GW_IN_MAC: &str = "02:00:0a:01:00:01";
/// Node A's and node B's external MACs (static neighbour entries in the server).
const GW_A_MAC: &str = "02:00:cb:00:71:0a";
const GW_B_MAC: &str = "02:00:cb:00:71:0b";
const TA_MAC: &str = "02:00:c6:33:64:0a";
const TB_MAC: &str = "02:00:c6:33:64:0b";
/// The blocks of the two VMs in `gw` (checked against `dump-snat-pools` too).
const VM1_BLOCK: (u16, u16) = (2032, 2283);
const VM2_BLOCK: (u16, u16) = (2284, 2535);

/// Client: one connection; `rounds1` echoed messages, prints `phase1`, waits (at most 60 s)
/// for the file GO to exist, then `rounds2` more; prints `done N` with the number of intact
/// echoes. Every round trip must complete: a lost reply stalls it until the socket timeout.
const CLIENT: &str = r#"
import os, socket, sys, time
addr, port, go, r1, r2 = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection((addr, port), timeout=20)
ok = 0
def rt(i):
    global ok
    msg = (b"%06d" % i) * 200
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(65536)
        if not b:
            break
        got += b
    ok += got == msg
for i in range(r1):
    rt(i)
print("phase1 %d" % ok, flush=True)
deadline = time.time() + 60
while r2 and not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
for i in range(r1, r1 + r2):
    rt(i)
print("done %d" % ok, flush=True)
s.close()
"#;

/// Field order is drop order: daemons, then end namespaces, then nodes.
struct Lab2 {
    da: Daemon,
    db: Daemon,
    vm1: Netns,
    vm2: Netns,
    srv: Netns,
    /// Held for their drop (the nodes; their veths go with them).
    _na: Netns,
    _nb: Netns,
}

fn veth(a: &Netns, a_end: &str, b: &Netns, b_end: &str) {
    must(&[
        "ip",
        "-n",
        a.name(),
        "link",
        "add",
        a_end,
        "type",
        "veth",
        "peer",
        "name",
        b_end,
        "netns",
        b.name(),
    ]);
}

/// The namespace end of a veth whose other end is a switch port: fixed MAC, no offloads
/// (partial checksums must not reach AF_XDP), up.
fn end_up(ns: &Netns, dev: &str, mac: &str) {
    must(&["ip", "-n", ns.name(), "link", "set", dev, "address", mac]);
    ns.exec_ok(&[
        "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
    ]);
    must(&["ip", "-n", ns.name(), "link", "set", dev, "up"]);
}

fn vm(node: &Netns, vm: &Netns, port: &str, ip: &str, mac: &str) {
    veth(vm, "eth0", node, port);
    end_up(vm, "eth0", mac);
    let ns = vm.name();
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
    must(&["ip", "-n", ns, "route", "add", "default", "via", "10.1.0.1"]);
    must(&[
        "ip", "-n", ns, "neigh", "replace", "10.1.0.1", "lladdr", GW_IN_MAC, "dev", "eth0",
    ]);
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

impl Lab2 {
    fn new(lab: &Lab, test: &str) -> Lab2 {
        let na = lab.netns("na");
        let nb = lab.netns("nb");
        let vm1 = lab.netns("vm1");
        let vm2 = lab.netns("vm2");
        let srv = lab.netns("srv");
        // Underlay, with room for 1500-byte inner frames plus 50 bytes of VXLAN.
        veth(&na, "ul", &nb, "ul");
        for (n, ip) in [(&na, "10.0.0.1/24"), (&nb, "10.0.0.2/24")] {
            must(&["ip", "-n", n.name(), "link", "set", "ul", "mtu", "9000"]);
            must(&["ip", "-n", n.name(), "addr", "add", ip, "dev", "ul"]);
            must(&["ip", "-n", n.name(), "link", "set", "ul", "up"]);
        }
        vm(&na, &vm1, "p1", VM1_IP, VM1_MAC);
        vm(&na, &vm2, "p2", VM2_IP, VM2_MAC);
        // The server, one cable to each node's external port.
        veth(&srv, "ta", &na, "xa");
        veth(&srv, "tb", &nb, "xb");
        end_up(&srv, "ta", TA_MAC);
        end_up(&srv, "tb", TB_MAC);
        must(&["ip", "-n", na.name(), "link", "set", "xa", "up"]);
        must(&["ip", "-n", nb.name(), "link", "set", "xb", "up"]);
        let s = srv.name();
        must(&["ip", "-n", s, "link", "set", "lo", "up"]);
        must(&[
            "ip",
            "-n",
            s,
            "addr",
            "add",
            &format!("{SRV_IP}/32"),
            "dev",
            "lo",
        ]);
        // Replies to the public address leave through node A (main table) ...
        must(&[
            "ip",
            "-n",
            s,
            "route",
            "add",
            &format!("{PUBLIC}/32"),
            "dev",
            "ta",
        ]);
        must(&[
            "ip", "-n", s, "neigh", "replace", PUBLIC, "lladdr", GW_A_MAC, "dev", "ta",
        ]);
        // ... or through node B (table 100, chosen later by a rule for one connection).
        must(&[
            "ip",
            "-n",
            s,
            "route",
            "add",
            &format!("{PUBLIC}/32"),
            "dev",
            "tb",
            "table",
            "100",
        ]);
        must(&[
            "ip", "-n", s, "neigh", "replace", PUBLIC, "lladdr", GW_B_MAC, "dev", "tb",
        ]);
        // Requests arrive on ta, some replies leave by tb: no reverse-path filtering.
        srv.exec_ok(&[
            "sh",
            "-c",
            "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done",
        ]);
        let da = node_daemon(&format!("{test}-a"), &na);
        let db = node_daemon(&format!("{test}-b"), &nb);
        for d in [&da, &db] {
            d.swctl(&["add-br", "br0"]).expect_ok("add-br");
        }
        for (p, n) in [("p1", "1"), ("p2", "2"), ("xa", "3")] {
            da.swctl(&["add-port", "br0", p, "--ofport", n])
                .expect_ok("add-port a");
        }
        db.swctl(&["add-port", "br0", "xb", "--ofport", "3"])
            .expect_ok("add-port b");
        da.swctl(&[
            "add-port", "br0", "vx0", "--type", "vxlan", "--ofport", "10", "--local", "10.0.0.1",
            "--remote", "10.0.0.2", "--key", "0x64",
        ])
        .expect_ok("vxlan a");
        db.swctl(&[
            "add-port", "br0", "vx0", "--type", "vxlan", "--ofport", "10", "--local", "10.0.0.2",
            "--remote", "flow", "--key", "0x64",
        ])
        .expect_ok("vxlan b");
        Lab2 {
            da,
            db,
            vm1,
            vm2,
            srv,
            _na: na,
            _nb: nb,
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- node a ---\n{}\n--- node b ---\n{}",
            self.da.log_text(),
            self.db.log_text()
        )
    }
}

fn json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.swctl(args).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn pool(d: &Daemon, extra: &[&str]) -> Value {
    let mut args = vec!["dump-snat-pools", "br0", "--json"];
    args.extend_from_slice(extra);
    let v = json(d, &args);
    v.as_array().expect("pool list")[0].clone()
}

fn tx_packets(ns: &Netns, dev: &str) -> u64 {
    ns.exec_ok(&[
        "cat",
        &format!("/sys/class/net/{dev}/statistics/tx_packets"),
    ])
    .trim()
    .parse()
    .expect("tx_packets")
}

#[test]
fn snat_pool_blocks_and_wrong_node_replies_forwarded_to_the_owner() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let mut t = Lab2::new(&lab, "snatpool");
    // The same pool on both nodes; bad pools are refused naming the token, nothing added.
    for d in [&t.da, &t.db] {
        let bad = d.swctl(&["add-snat-pool", "br0", "big", PUBLIC, "10.2.0.0/16"]);
        assert!(!bad.ok, "a /16 over the default range must be refused");
        assert!(bad.stderr.contains("10.2.0.0/16"), "{}", bad.stderr);
        d.swctl(&["add-snat-pool", "br0", "gw", PUBLIC, "10.1.0.0/24"])
            .expect_ok("add-snat-pool");
        let p = pool(d, &["--for", VM1_IP, "--owner-of", "2284"]);
        assert_eq!(p["block_size"], 252, "{p}");
        assert_eq!(
            p["block"],
            serde_json::json!([VM1_IP, VM1_BLOCK.0, VM1_BLOCK.1])
        );
        assert_eq!(p["owner"], serde_json::json!([2284, VM2_IP]));
        assert_eq!(
            json(d, &["dump-snat-pools", "br0", "--json"])
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    let nat = "ct(commit,zone=1,nat(src=pool:gw),table=1)";
    let a_flows = [
        format!("table=0,priority=10,ip,in_port=1 actions={nat}"),
        format!("table=0,priority=10,ip,in_port=2 actions={nat}"),
        "table=0,priority=10,ip,in_port=3 actions=ct(zone=1,nat,table=1)".into(),
        // Replies node B forwarded: untranslated, translated here by the owner's conntrack.
        "table=0,priority=10,ip,in_port=10 actions=ct(zone=1,nat,table=1)".into(),
        "table=0,priority=0 actions=drop".into(),
        format!("table=1,priority=10,ip,in_port=1 actions=mod_dl_src:{GW_A_MAC},mod_dl_dst:{TA_MAC},output:3"),
        format!("table=1,priority=10,ip,in_port=2 actions=mod_dl_src:{GW_A_MAC},mod_dl_dst:{TA_MAC},output:3"),
        format!("table=1,priority=20,ip,ct_state=+trk+est,nw_dst={VM1_IP} actions=mod_dl_src:{GW_IN_MAC},mod_dl_dst:{VM1_MAC},output:1"),
        format!("table=1,priority=20,ip,ct_state=+trk+est,nw_dst={VM2_IP} actions=mod_dl_src:{GW_IN_MAC},mod_dl_dst:{VM2_MAC},output:2"),
        "table=1,priority=0 actions=drop".into(),
    ];
    let a_flows: Vec<&str> = a_flows.iter().map(String::as_str).collect();
    add_flows(&t.da, "br0", &a_flows);
    // Node B: no conntrack at all. A reply to the public address goes to the node of the
    // inside address owning its port (both VMs are on A, 10.0.0.1).
    let b_flows = [
        format!("table=0,priority=10,tcp,in_port=3,nw_dst={PUBLIC} actions=snat_pool_owner(gw)->NXM_NX_REG0[],resubmit(,1)"),
        "table=0,priority=0 actions=drop".into(),
        "table=1,priority=10,reg0=0xa010004 actions=set_field:10.0.0.1->tun_dst,output:10".into(),
        "table=1,priority=10,reg0=0xa010005 actions=set_field:10.0.0.1->tun_dst,output:10".into(),
        "table=1,priority=0 actions=drop".into(),
    ];
    let b_flows: Vec<&str> = b_flows.iter().map(String::as_str).collect();
    add_flows(&t.db, "br0", &b_flows);

    let srv = t
        .srv
        .spawn(&["python3", "-c", TCP_ECHO_SERVER, "9000", "30"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let go = format!("/tmp/{}-go", lab.prefix());
    let _ = std::fs::remove_file(&go);
    let mut c1 = t
        .vm1
        .spawn(&["python3", "-c", CLIENT, SRV_IP, "9000", &go, "20", "300"]);
    let mut c2 = t
        .vm2
        .spawn(&["python3", "-c", CLIENT, SRV_IP, "9000", &go, "20", "0"]);
    let out2 = c2.wait(Duration::from_secs(40));
    assert_eq!(
        out2.stdout.trim().lines().last(),
        Some("done 20"),
        "vm2: {out2:?}\n{}",
        t.logs()
    );
    assert!(
        c1.wait_line(|l| l == "phase1 20", Duration::from_secs(40)),
        "vm1 phase 1: {:?}\n{}",
        c1.lines(),
        t.logs()
    );
    // The server saw the public address, on a port of each VM's block.
    let peers = |lines: &[String]| -> Vec<u16> {
        lines
            .iter()
            .filter_map(|l| {
                let mut w = l.strip_prefix("peer ")?.split_whitespace();
                assert_eq!(w.next(), Some(PUBLIC), "{l}");
                w.next()?.parse().ok()
            })
            .collect()
    };
    assert!(eventually(Duration::from_secs(5), || peers(&srv.lines())
        .len()
        == 2));
    let ports = peers(&srv.lines());
    let in_block = |p: u16, b: (u16, u16)| (b.0..=b.1).contains(&p);
    let p1 = *ports
        .iter()
        .find(|&&p| in_block(p, VM1_BLOCK))
        .unwrap_or_else(|| panic!("no port of vm1's block {VM1_BLOCK:?} in {ports:?}"));
    assert!(
        ports.iter().any(|&p| in_block(p, VM2_BLOCK)),
        "no port of vm2's block {VM2_BLOCK:?} in {ports:?}"
    );
    // Node A's conntrack shows the translation to the block; node B has no entry.
    let entries = json(&t.da, &["dump-conntrack", "--zone", "1", "--json"]);
    let e1 = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["original"]["src"] == VM1_IP && e["proto"] == 6)
        .unwrap_or_else(|| panic!("vm1's connection in {entries:#}"))
        .clone();
    assert_eq!(e1["reply"]["dst"], PUBLIC, "{e1}");
    assert_eq!(e1["reply"]["dport"], p1, "{e1}");
    assert!(pool(&t.da, &[])["nat_packets"].as_u64().unwrap() > 0);

    // Phase 2: the server's replies for vm1's connection now enter node B.
    let tb_before = tx_packets(&t.srv, "tb");
    t.srv.exec_ok(&[
        "ip",
        "rule",
        "add",
        "ipproto",
        "tcp",
        "sport",
        "9000",
        "dport",
        &p1.to_string(),
        "lookup",
        "100",
    ]);
    // Routing decisions are cached per socket: flush so the next reply takes the rule.
    t.srv.exec_ok(&["ip", "route", "flush", "cache"]);
    std::fs::write(&go, b"go").expect("go file");
    let out1 = c1.wait(Duration::from_secs(60));
    let _ = std::fs::remove_file(&go);
    assert_eq!(
        out1.stdout.trim().lines().last(),
        Some("done 320"),
        "vm1: {out1:?}\n{}",
        t.logs()
    );
    // The replies really took node B: left the server by tb, were looked up by B's owner
    // action, sent to A through the tunnel, and B tracked nothing.
    let tb_sent = tx_packets(&t.srv, "tb") - tb_before;
    assert!(
        tb_sent >= 100,
        "only {tb_sent} packets left the server by tb"
    );
    let b_pool = pool(&t.db, &["--owner-of", &p1.to_string()]);
    assert_eq!(b_pool["owner"], serde_json::json!([p1, VM1_IP]));
    let looked_up = b_pool["owner_lookups"].as_u64().unwrap();
    assert!(
        looked_up >= 100,
        "owner lookups on B: {looked_up}\n{}",
        t.logs()
    );
    let packets = |d: &Daemon, table: u64, what: &str| -> u64 {
        flows(d, "br0")
            .iter()
            .filter(|f| f.table == table && f.matches.contains(what))
            .map(|f| f.n_packets)
            .sum()
    };
    let forwarded = packets(&t.db, 1, "reg0=");
    assert!(forwarded >= 100, "forwarded by B: {forwarded}");
    let b_entries = json(&t.db, &["dump-conntrack", "--json"]);
    assert_eq!(b_entries.as_array().map(Vec::len), Some(0), "{b_entries:#}");
    let from_tunnel = packets(&t.da, 0, "in_port=10");
    assert!(
        from_tunnel >= 100,
        "A received {from_tunnel} from the tunnel"
    );
    drop(srv);
    // The pool is in the database: a restarted node computes the same blocks.
    t.da.restart();
    let p = pool(&t.da, &["--for", VM2_IP]);
    assert_eq!(
        p["block"],
        serde_json::json!([VM2_IP, VM2_BLOCK.0, VM2_BLOCK.1])
    );
    t.da.swctl(&["del-snat-pool", "br0", "gw"])
        .expect_ok("del-snat-pool");
    let gone = t.da.swctl(&["del-snat-pool", "br0", "gw"]);
    assert!(!gone.ok && gone.stderr.contains("gw"), "{}", gone.stderr);
}
