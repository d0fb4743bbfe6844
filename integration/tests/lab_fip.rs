//! Floating IPs (`add-fip` + the `fip_arp`, `fip_dnat`, `fip_snat` actions) with real kernel
//! traffic, in the seed's addresses: an inside host 88.88.88.4 (gateway 88.88.88.1, answered by
//! a seed-style ARP responder flow) published as 192.168.111.223 on the outside network
//! 192.168.111.0/24, where an outside host (.210) and a Linux router (.1) sit; behind the router
//! a far network 10.99.0.0/24 with a smaller MTU (1280).
//!
//! ```text
//!   in (88.88.88.4) --1-[ vswitchd br0 ]-2-- out (192.168.111.210)
//!                                       -3-- rt (192.168.111.1 | 10.99.0.1, mtu 1280) -- far (10.99.0.2)
//! ```
//!
//! The kernels check every checksum (outer, ICMP) and match ICMP errors to sockets by the
//! quoted header, so a time-exceeded or frag-needed that reaches the inside host's socket
//! proves the quoted header was translated back correctly.

use integration::lab::cmd::eventually;
use integration::lab::switch::{add_flows, add_port};
use integration::lab::{ping, require_root, Lab, Netns, Veth};
use integration::Daemon;
use serde_json::Value;
use std::time::Duration;

const FIP: &str = "192.168.111.223";
const FIXED: &str = "88.88.88.4";
const OUT_IP: &str = "192.168.111.210";
const RT_IP: &str = "192.168.111.1";
const FAR_IP: &str = "10.99.0.2";
/// The FIP's MAC (the seed's qg- port).
const FIP_MAC: &str = "fa:16:3e:e3:66:3c";
/// The inside gateway 88.88.88.1's MAC (answered by the table-20 responder).
const GW_IN_MAC: &str = "02:00:00:58:00:01";
const IN_MAC: &str = "02:00:00:58:00:04";
const OUT_MAC: &str = "02:00:00:6f:00:d2";
const RT_MAC: &str = "02:00:00:6f:00:01";

fn json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.swctl(args).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn fips(d: &Daemon) -> Vec<Value> {
    json(d, &["dump-fips", "br0", "--json"])
        .as_array()
        .expect("list")
        .clone()
}

/// The switch's flows: ARP through `fip_arp` (then the inside gateway's responder, or plain
/// L2 between the outside ports), IP from outside through `fip_dnat`, IP from inside through
/// `fip_snat`, each followed by the MAC rewrite a router does.
fn flows() -> Vec<String> {
    let gw_mac_hex = format!("0x{}", GW_IN_MAC.replace(':', ""));
    vec![
        "table=0,priority=100,arp actions=fip_arp,goto_table:20".into(),
        // Seed 000 table 20, for the inside gateway 88.88.88.1.
        format!(
            "table=20,priority=10,arp,in_port=1,arp_op=1,arp_tpa=88.88.88.1 \
             actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{GW_IN_MAC}->eth_src,\
             load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],\
             move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:{gw_mac_hex}->NXM_NX_ARP_SHA[],\
             load:0x58585801->NXM_OF_ARP_SPA[],IN_PORT"
        ),
        "table=20,priority=5,arp,in_port=1 actions=drop".into(),
        "table=20,priority=1,arp actions=output:2,output:3".into(),
        "table=0,priority=10,ip,in_port=2 actions=fip_dnat,goto_table:30".into(),
        "table=0,priority=10,ip,in_port=3 actions=fip_dnat,goto_table:30".into(),
        format!(
            "table=30,priority=10,ip,nw_dst={FIXED} \
             actions=set_field:{GW_IN_MAC}->eth_src,set_field:{IN_MAC}->eth_dst,dec_ttl,output:1"
        ),
        "table=30,priority=1,ip actions=output:2,output:3".into(),
        "table=0,priority=10,ip,in_port=1 actions=fip_snat,goto_table:40".into(),
        format!(
            "table=40,priority=10,ip,nw_src={FIP} \
             actions=set_field:{FIP_MAC}->eth_src,dec_ttl,goto_table:50"
        ),
        "table=40,priority=0 actions=drop".into(),
        format!(
            "table=50,priority=10,ip,nw_dst={OUT_IP} actions=set_field:{OUT_MAC}->eth_dst,output:2"
        ),
        format!("table=50,priority=1,ip actions=set_field:{RT_MAC}->eth_dst,output:3"),
        "table=0,priority=0 actions=drop".into(),
    ]
}

/// The lab: namespaces, links, the switch with its ports and flows.
struct Topo {
    // Field order: links before their namespaces.
    _vin: Veth,
    _vout: Veth,
    _vrt: Veth,
    inside: Netns,
    out: Netns,
    rt: Netns,
    _far: Netns,
    d: Daemon,
}

fn topo(lab: &Lab, test: &str) -> Topo {
    let (inside, out, rt, far) = (
        lab.netns("in"),
        lab.netns("out"),
        lab.netns("rt"),
        lab.netns("far"),
    );
    let vin = Veth::builder(&lab.name("pin"), &inside, "eth0")
        .ip(&format!("{FIXED}/24"))
        .mac(IN_MAC)
        .create();
    let vout = Veth::builder(&lab.name("pout"), &out, "eth0")
        .ip(&format!("{OUT_IP}/24"))
        .mac(OUT_MAC)
        .create();
    let vrt = Veth::builder(&lab.name("prt"), &rt, "eth0")
        .ip(&format!("{RT_IP}/24"))
        .mac(RT_MAC)
        .create();
    inside.exec_ok(&["ip", "route", "add", "default", "via", "88.88.88.1"]);
    // The far network: a veth between the router and the far host (both ends inside
    // namespaces, so it goes away with them), MTU 1280.
    rt.exec_ok(&[
        "ip",
        "link",
        "add",
        "eth1",
        "mtu",
        "1280",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "mtu",
        "1280",
        "netns",
        far.name(),
    ]);
    rt.exec_ok(&["ip", "addr", "add", "10.99.0.1/24", "dev", "eth1"]);
    rt.exec_ok(&["ip", "link", "set", "eth1", "up"]);
    // Through /proc rather than sysctl(8): procps is not on every Debian.
    rt.exec_ok(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    far.exec_ok(&["ip", "addr", "add", &format!("{FAR_IP}/24"), "dev", "eth0"]);
    far.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    far.exec_ok(&["ip", "route", "add", "default", "via", "10.99.0.1"]);

    let d = Daemon::lab(test);
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    for (i, v) in [&vin, &vout, &vrt].iter().enumerate() {
        add_port(&d, "br0", v.root_end(), None, Some(i as u16 + 1));
    }
    let flows = flows();
    let flows: Vec<&str> = flows.iter().map(String::as_str).collect();
    add_flows(&d, "br0", &flows);
    Topo {
        _vin: vin,
        _vout: vout,
        _vrt: vrt,
        inside,
        out,
        rt,
        _far: far,
        d,
    }
}

/// Server: accept one connection on 0.0.0.0:PORT, print the peer, read to EOF, send N bytes
/// back, print what it received (count, SHA-256).
const TCP_BOTH_WAYS_SERVER: &str = r#"
import socket, sys, hashlib, random
port, n, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port)); s.listen(1); s.settimeout(timeout)
print("listening", flush=True)
c, peer = s.accept(); c.settimeout(timeout)
print("peer", peer[0], flush=True)
h = hashlib.sha256(); got = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b); got += len(b)
print("received", got, h.hexdigest(), flush=True)
c.sendall(random.Random(n + 1).randbytes(n)); c.close()
"#;

/// Client: connect to ADDR:PORT, send N bytes, half-close, read to EOF; print what it sent and
/// what it received (count, SHA-256 each) and the peer address.
const TCP_BOTH_WAYS_CLIENT: &str = r#"
import socket, sys, hashlib, random
addr, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
data = random.Random(n).randbytes(n)
s = socket.create_connection((addr, port), timeout=timeout)
peer = s.getpeername()[0]
s.sendall(data); s.shutdown(socket.SHUT_WR)
h = hashlib.sha256(); got = 0
while True:
    b = s.recv(65536)
    if not b:
        break
    h.update(b); got += len(b)
print("sent", n, hashlib.sha256(data).hexdigest(), flush=True)
print("received", got, h.hexdigest(), peer, flush=True)
"#;

/// SHA-256 of the bytes the server sends back (`random.Random(n + 1).randbytes(n)`), computed
/// by the same Python so both sides agree on the generator.
fn reply_digest(ns: &Netns, n: usize) -> String {
    ns.exec_ok(&[
        "python3",
        "-c",
        "import hashlib,random,sys;n=int(sys.argv[1]);print(hashlib.sha256(random.Random(n+1).randbytes(n)).hexdigest())",
        &n.to_string(),
    ])
    .trim()
    .to_string()
}

/// 1 MB each way between `client` (connecting to `addr`) and `server`; returns the peer
/// address the server saw and the one the client saw.
fn tcp_both_ways(server: &Netns, client: &Netns, addr: &str, port: &str) -> (String, String) {
    let n = 1 << 20;
    let mut srv = server.spawn(&[
        "python3",
        "-c",
        TCP_BOTH_WAYS_SERVER,
        port,
        &n.to_string(),
        "20",
    ]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let cli = client.exec_timeout(
        &[
            "python3",
            "-c",
            TCP_BOTH_WAYS_CLIENT,
            addr,
            port,
            &n.to_string(),
            "20",
        ],
        Duration::from_secs(30),
    );
    let srv_out = srv.wait(Duration::from_secs(30));
    let line = |out: &str, tag: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(tag))
            .unwrap_or_else(|| panic!("no {tag:?} line: client {cli:?} server {srv_out:?}"))
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect()
    };
    let sent = line(&cli.stdout, "sent");
    let got_back = line(&cli.stdout, "received");
    let received = line(&srv_out.stdout, "received");
    assert_eq!(received, sent, "client -> server intact: {srv_out:?}");
    assert_eq!(got_back[0], n.to_string(), "server -> client: {cli:?}");
    assert_eq!(
        got_back[1],
        reply_digest(server, n),
        "server -> client intact"
    );
    (
        line(&srv_out.stdout, "peer")[0].clone(),
        got_back[2].clone(),
    )
}

/// UDP probe from the inside host with IP_RECVERR: TTL and size as given, DF set when `df`.
/// Prints `err ORIGIN TYPE CODE INFO OFFENDER` for the first error queued on the socket (the
/// kernel queues it only if the ICMP error's quoted header matches the socket), then
/// `mtu N` (the socket's path MTU), or `none` after 5 s.
const UDP_PROBE: &str = r#"
import socket, struct, sys, time
dst, ttl, size, df = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "df"
IP_RECVERR, IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 11, 10, 2, 14
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
s.setsockopt(socket.SOL_IP, socket.IP_TTL, ttl)
if df:
    s.setsockopt(socket.SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
s.connect((dst, 33434))
deadline = time.time() + 5
next_send = 0
while time.time() < deadline:
    if time.time() >= next_send:
        try:
            s.send(b"p" * size)
        except OSError:
            pass
        next_send = time.time() + 1
    try:
        _, anc, _, _ = s.recvmsg(4096, 1024, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except BlockingIOError:
        time.sleep(0.05)
        continue
    for level, kind, d in anc:
        if level == socket.SOL_IP and kind == IP_RECVERR:
            _, origin, ty, code, _, info, _ = struct.unpack("=IBBBBII", d[:16])
            offender = socket.inet_ntoa(d[20:24])
            print("err", origin, ty, code, info, offender, flush=True)
            print("mtu", s.getsockopt(socket.SOL_IP, IP_MTU), flush=True)
            sys.exit(0)
print("none", flush=True)
"#;

fn probe(t: &Topo, ttl: u32, size: u32, df: bool) -> String {
    let out = t.inside.exec_timeout(
        &[
            "python3",
            "-c",
            UDP_PROBE,
            FAR_IP,
            &ttl.to_string(),
            &size.to_string(),
            if df { "df" } else { "-" },
        ],
        Duration::from_secs(15),
    );
    out.stdout
}

/// UDP to a port nothing listens on: `refused` if the ICMP port unreachable reaches the
/// socket (matched on the quoted header), `timeout` otherwise.
const UDP_REFUSED_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2]))); s.settimeout(2.0)
try:
    s.send(b"anyone?")
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
"#;

fn neigh(ns: &Netns, ip: &str) -> String {
    ns.exec_ok(&["ip", "neigh", "show", ip, "dev", "eth0"])
}

#[test]
fn centralized_fip_ping_tcp_arp_and_translated_icmp_errors() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let t = topo(&lab, "lab-fip");
    let d = &t.d;
    d.swctl(&["add-fip", "br0", FIP, FIXED, "--mac", FIP_MAC])
        .expect_ok("add-fip");
    let f = &fips(d)[0];
    assert_eq!(
        (&f["status"], &f["owner"], &f["mode"]),
        (
            &Value::from("standalone"),
            &Value::Bool(true),
            &Value::from("centralized")
        ),
        "{f}"
    );

    // The outside host finds the FIP by ARP, answered with the FIP's MAC, and reaches the
    // inside host through it.
    let _ = t
        .out
        .exec(&["ip", "neigh", "flush", "dev", "eth0", "to", FIP]);
    let replies = ping(&t.out, FIP, 5);
    assert!(
        replies >= 4,
        "{replies}/5 ping replies through the FIP\n{}\n{}",
        d.swctl(&["dump-flows", "br0"]).expect_ok("dump-flows"),
        d.log_text()
    );
    let n = neigh(&t.out, FIP);
    assert!(n.contains(FIP_MAC), "outside host's neighbour entry: {n}");
    assert!(!n.contains("PERMANENT"), "learnt by ARP, not static: {n}");
    let f = &fips(d)[0];
    assert!(f["arp_replies"].as_u64().unwrap() >= 1, "{f}");
    assert!(f["dnat_packets"].as_u64().unwrap() >= 4, "{f}");
    assert!(f["snat_packets"].as_u64().unwrap() >= 4, "{f}");

    // TCP, 1 MB each way, connecting to the FIP: the inside host sees the client's own
    // address (DNAT only), the client talks to the FIP.
    let (server_saw, client_saw) = tcp_both_ways(&t.inside, &t.out, FIP, "7001");
    assert_eq!((server_saw.as_str(), client_saw.as_str()), (OUT_IP, FIP));
    // And connecting out from the inside host: the outside server sees the FIP.
    let (server_saw, client_saw) = tcp_both_ways(&t.out, &t.inside, OUT_IP, "7002");
    assert_eq!((server_saw.as_str(), client_saw.as_str()), (FIP, OUT_IP));

    // A UDP datagram to a closed port of the inside host: its port unreachable goes out
    // translated outer (source) and quoted (destination), and the outside socket sees it.
    let out = t.out.exec_timeout(
        &["python3", "-c", UDP_REFUSED_CLIENT, FIP, "9"],
        Duration::from_secs(10),
    );
    assert_eq!(out.stdout.trim(), "refused", "{out:?}");

    // Traceroute-style: TTL 2 from the inside host (the switch routes: dec_ttl) expires at the
    // router, whose time exceeded to the FIP reaches the inside socket.
    let out = probe(&t, 2, 64, false);
    assert!(
        out.contains(&format!("err 2 11 0 0 {RT_IP}")),
        "time exceeded not delivered translated: {out}\n{}",
        d.log_text()
    );
    // The router's neighbour entry for the FIP came from fip_arp too.
    assert!(neigh(&t.rt, FIP).contains(FIP_MAC), "{}", neigh(&t.rt, FIP));

    // Path MTU: 1400-byte DF datagrams to the far host meet the router's 1280-byte link; its
    // fragmentation needed reaches the sender translated, which learns the path MTU.
    let out = probe(&t, 64, 1400, true);
    assert!(
        out.contains(&format!("err 2 3 4 1280 {RT_IP}")) && out.contains("mtu 1280"),
        "frag needed not delivered translated: {out}"
    );
    let route = t.inside.exec_ok(&["ip", "route", "get", FAR_IP]);
    assert!(route.contains("mtu 1280"), "route cache: {route}");
    // And the far host is reachable through the FIP (its replies come back via the router).
    assert!(ping(&t.inside, FAR_IP, 3) >= 2);

    // `trace` shows the translation.
    let tr = d
        .swctl(&[
            "trace",
            "br0",
            &format!("in_port=2,tcp,nw_src={OUT_IP},nw_dst={FIP},tp_dst=22"),
        ])
        .expect_ok("trace");
    assert!(
        tr.contains(&format!("fip_dnat: destination {FIP} -> {FIXED}")),
        "{tr}"
    );
}

#[test]
fn distributed_fip_translates_but_never_answers_arp() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let t = topo(&lab, "lab-fip-dist");
    let d = &t.d;
    d.swctl(&[
        "add-fip",
        "br0",
        FIP,
        FIXED,
        "--mac",
        FIP_MAC,
        "--mode",
        "distributed",
    ])
    .expect_ok("add-fip");
    let f = &fips(d)[0];
    assert_eq!(
        (&f["status"], &f["owner"]),
        (
            &Value::from("not claimed (distributed)"),
            &Value::Bool(false)
        ),
        "{f}"
    );
    let arp_hits = || -> u64 {
        integration::lab::switch::flows(d, "br0")
            .iter()
            .filter(|f| f.table == 0 && f.matches == "arp")
            .map(|f| f.n_packets)
            .sum()
    };
    let before = arp_hits();
    // Nobody answers the outside host's ARP for the FIP, although the requests reach the
    // switch (the fip_arp flow counts them).
    assert_eq!(ping(&t.out, FIP, 3), 0);
    assert!(arp_hits() > before, "the ARP requests reached the switch");
    let n = neigh(&t.out, FIP);
    assert!(!n.contains(FIP_MAC), "nothing may answer for the FIP: {n}");
    assert_eq!(fips(d)[0]["arp_replies"], 0);

    // With a static neighbour entry, the translation works as on the owner.
    t.out.exec_ok(&[
        "ip", "neigh", "replace", FIP, "lladdr", FIP_MAC, "dev", "eth0",
    ]);
    assert!(ping(&t.out, FIP, 5) >= 4);
    let (server_saw, client_saw) = tcp_both_ways(&t.inside, &t.out, FIP, "7003");
    assert_eq!((server_saw.as_str(), client_saw.as_str()), (OUT_IP, FIP));
    let f = &fips(d)[0];
    assert!(f["dnat_packets"].as_u64().unwrap() > 0 && f["snat_packets"].as_u64().unwrap() > 0);

    // Becoming the owner (re-added centralized) takes effect for the next ARP request.
    d.swctl(&["del-fip", "br0", FIP]).expect_ok("del-fip");
    d.swctl(&["add-fip", "br0", FIP, FIXED, "--mac", FIP_MAC])
        .expect_ok("add-fip");
    t.out.exec_ok(&["ip", "neigh", "del", FIP, "dev", "eth0"]);
    assert!(
        eventually(Duration::from_secs(10), || ping(&t.out, FIP, 1) == 1),
        "owner answers ARP"
    );
    assert!(neigh(&t.out, FIP).contains(FIP_MAC));
}

/// The commands themselves: validation naming the token with nothing changed, persistence
/// across SIGKILL with the claim made again, del-fip, del-br.
#[test]
fn fip_commands_validate_persist_and_restore() {
    let mut d = Daemon::builder("fip-cmds").with_db().start();
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    d.swctl(&["add-fip", "br0", FIP, FIXED, "--mac", FIP_MAC])
        .expect_ok("add-fip");
    d.swctl(&[
        "add-fip",
        "br0",
        "192.168.111.224",
        "88.88.88.5",
        "--mode",
        "distributed",
    ])
    .expect_ok("add-fip distributed");
    let before = fips(&d);
    assert_eq!(before.len(), 2);
    for (args, token) in [
        (vec![FIP, "88.88.88.9"], FIP),
        (vec!["192.168.111.9", FIXED], FIXED),
        (vec!["2001:db8::1", "88.88.88.9"], "2001:db8::1"),
        (vec!["192.168.111.300", "88.88.88.9"], "192.168.111.300"),
        (
            vec!["192.168.111.9", "88.88.88.9", "--mac", "ff:ff:ff:ff:ff:ff"],
            "ff:ff:ff:ff:ff:ff",
        ),
    ] {
        let mut a = vec!["add-fip", "br0"];
        a.extend(&args);
        let e = d.swctl(&a).expect_err(&a.join(" "));
        assert!(e.contains(token), "{a:?}: {e}");
    }
    let e = d
        .swctl(&["add-fip", "nobr", "1.2.3.4", "5.6.7.8"])
        .expect_err("no bridge");
    assert!(e.contains("nobr"), "{e}");
    let e = d
        .swctl(&["add-fip", "br0", "1.2.3.4", "5.6.7.8", "--mode", "both"])
        .expect_err("bad mode");
    assert!(e.contains("both"), "{e}");
    let e = d
        .swctl(&["del-fip", "br0", "192.168.111.99"])
        .expect_err("unknown fip");
    assert!(e.contains("192.168.111.99"), "{e}");
    assert_eq!(fips(&d), before, "nothing changed by the refused commands");
    let text = d.swctl(&["dump-fips", "br0"]).expect_ok("dump-fips");
    assert!(
        text.contains(&format!(
            "{FIP} -> {FIXED}  mac {FIP_MAC}  centralized  claim standalone (owner)"
        )),
        "{text}"
    );

    d.kill9();
    d.restart();
    assert_eq!(fips(&d), before, "restored and claimed again");
    assert!(d.log_text().contains("configuration restored"));

    d.swctl(&["del-fip", "br0", FIP]).expect_ok("del-fip");
    assert_eq!(fips(&d).len(), 1);
    // The FIP can be added again (also on another bridge once it is gone from this one).
    d.swctl(&["add-br", "br1"]).expect_ok("add-br");
    d.swctl(&["add-fip", "br1", FIP, FIXED])
        .expect_ok("add-fip on br1");
    let e = d
        .swctl(&["add-fip", "br0", FIP, "88.88.88.7"])
        .expect_err("FIP on two bridges");
    assert!(e.contains("br1"), "{e}");
    d.swctl(&["del-br", "br1"]).expect_ok("del-br");
    d.swctl(&["add-fip", "br0", FIP, "88.88.88.7"])
        .expect_ok("FIP free again after del-br");
    d.kill9();
    d.restart();
    let after: Vec<String> = fips(&d)
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["fip"].as_str().unwrap(),
                f["fixed"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        after,
        vec![
            format!("{FIP} 88.88.88.7"),
            "192.168.111.224 88.88.88.5".to_string()
        ]
    );
}
