//! More conntrack with real kernel traffic (issue 4's remaining labs):
//!
//! - a stateful firewall lets an ICMP error related to a connection in (`+rel`: the inside
//!   socket sees ECONNREFUSED) and drops an unrelated one injected from outside (the inside
//!   socket sees nothing; a control run without conntrack shows it would have); connections
//!   are flushed by partial tuple (`flush-conntrack TUPLE`);
//! - a TCP segment far outside the window of an established connection is `+inv`
//!   (`out_of_window`), dropped before the inside host sees it, and the connection still works;
//! - a zone limit of 10 admits 10 concurrent TCP connections and refuses the 11th, counted;
//! - a 1:1 floating IP (`nat(dst=FIXED)` in, `nat(src=FIP)` out) with Linux routers on both
//!   sides: ping and TCP through the FIP both ways, and traceroute-style time-exceeded and
//!   fragmentation-needed errors reach the sender with the quoted header translated (the
//!   sender's kernel matches them to its socket by that header, so an untranslated quote
//!   would be ignored).
//!
//! Packets the kernel cannot make (an unrelated ICMP error, an out-of-window segment) are
//! injected with python3 raw sockets in the test's own namespaces, addressed to hosts of the
//! lab only.

use integration::lab::cmd::eventually;
use integration::lab::scripts::{TCP_ECHO_SERVER, TCP_ONE_CLIENT, TCP_ONE_ECHO};
use integration::lab::switch::{add_flows, bridge_with_hosts, flow_packets};
use integration::lab::{hosts, ping, require_root, Lab, Netns};
use integration::{Daemon, TempDir};
use serde_json::Value;
use std::time::Duration;

fn json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.swctl(args).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn ct_stats(d: &Daemon) -> Value {
    json(d, &["conntrack-stats", "--json"])
}

/// Invalid-packet counter `reason` of `conntrack-stats`.
fn invalid(d: &Daemon, reason: &str) -> u64 {
    let st = ct_stats(d);
    st["invalid"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("no invalid counter {reason:?}: {st}"))
}

/// Entries of `zone` and its limit, from `conntrack-stats`.
fn zone_stats(d: &Daemon, zone: u64) -> (u64, u64) {
    let st = ct_stats(d);
    st["zones"]
        .as_array()
        .expect("zones")
        .iter()
        .find(|z| z["zone"] == zone)
        .map_or((0, 0), |z| {
            (
                z["entries"].as_u64().unwrap_or(0),
                z["limit"].as_u64().unwrap_or(0),
            )
        })
}

fn zone_entries(d: &Daemon, zone: &str) -> Vec<Value> {
    json(d, &["dump-conntrack", "--zone", zone, "--json"])
        .as_array()
        .expect("entry list")
        .clone()
}

fn touch(dir: &TempDir, name: &str) {
    std::fs::write(dir.path().join(name), b"go").expect("writing a go file");
}

fn path(dir: &TempDir, name: &str) -> String {
    dir.path().join(name).to_string_lossy().into_owned()
}

/// `Tcp: InSegs` of a namespace (segments its TCP stack received).
fn tcp_in_segs(ns: &Netns) -> u64 {
    let snmp = ns.exec_ok(&["cat", "/proc/net/snmp"]);
    let tcp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Tcp:")).collect();
    assert_eq!(tcp.len(), 2, "{snmp}");
    let names: Vec<&str> = tcp[0].split_whitespace().collect();
    let values: Vec<&str> = tcp[1].split_whitespace().collect();
    let i = names
        .iter()
        .position(|n| *n == "InSegs")
        .expect("InSegs column");
    values[i].parse().expect("InSegs value")
}

/// InSegs once it stops moving (two equal readings 300 ms apart; bounded).
fn settled_in_segs(ns: &Netns) -> u64 {
    let mut last = tcp_in_segs(ns);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        let now = tcp_in_segs(ns);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Zone-5 stateful firewall: inside (port 1) may open connections, outside (port 2) may
/// answer them and send errors about them; invalid packets hit their own drop flow.
const FIREWALL: &[&str] = &[
    "table=0,priority=100,arp actions=normal",
    "table=0,priority=10,ip,ct_state=-trk actions=ct(table=1,zone=5)",
    "table=0,priority=0 actions=drop",
    "table=1,priority=20,ct_state=+trk+inv actions=drop",
    "table=1,priority=15,ct_state=+trk+rel,in_port=2 actions=output:1",
    "table=1,priority=15,ct_state=+trk+rel,in_port=1 actions=output:2",
    "table=1,priority=10,ip,ct_state=+trk+new,in_port=1 actions=ct(commit,zone=5),output:2",
    "table=1,priority=10,ct_state=+trk+est,in_port=1 actions=output:2",
    "table=1,priority=10,ct_state=+trk+est,in_port=2 actions=output:1",
    "table=1,priority=10,ct_state=+trk+new,in_port=2 actions=drop",
    "table=1,priority=5 actions=drop",
];

/// Packets of the firewall's `+inv` drop flow.
fn inv_drops(d: &Daemon) -> u64 {
    flow_packets(d, "br0", &["ct_state=+inv+trk"])
}

/// UDP to a port nothing listens on: `refused` if the port unreachable reaches the socket.
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

/// A connected UDP socket that never sends: prints `ready`, then `refused` as soon as an ICMP
/// port unreachable quoting its 4-tuple reaches it, or `quiet` once the go file exists (after
/// a last 0.5 s look). Bounded to 30 s.
const UDP_SILENT_LISTENER: &str = r#"
import os, socket, sys, time
local, lport, peer, pport, gofile = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((local, lport)); s.connect((peer, pport)); s.settimeout(0.1)
print("ready", flush=True)
deadline = time.time() + 30
last = False
while time.time() < deadline:
    if not last and os.path.exists(gofile):
        last = True; s.settimeout(0.5)
    try:
        s.recv(100)
    except ConnectionRefusedError:
        print("refused", flush=True); sys.exit(0)
    except socket.timeout:
        if last:
            break
print("quiet", flush=True)
"#;

/// Raw ICMP port unreachable from this namespace to ARGV1 quoting a UDP datagram
/// ARGV1:ARGV3 -> ARGV2:ARGV4 that was never sent (checksums right, so a kernel would take it).
const INJECT_PORT_UNREACHABLE: &str = r#"
import socket, struct, sys
victim, me, vport, myport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 36, 0x4242, 0x4000, 64, 17, 0,
                 socket.inet_aton(victim), socket.inet_aton(me))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
udp = struct.pack("!HHHH", vport, myport, 16, 0)
msg = struct.pack("!BBHI", 3, 3, 0, 0) + ip + udp
msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(msg, (victim, 0))
print("injected", flush=True)
"#;

#[test]
fn related_icmp_passes_unrelated_is_dropped_and_flush_by_tuple() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 42, 2);
    let mut d = Daemon::lab("lab-ct-rel");
    bridge_with_hosts(&d, "br0", &h, None);
    add_flows(&d, "br0", FIREWALL);
    let (inside, outside) = (&h[0], &h[1]);
    let tmp = TempDir::new("lab-ct-rel");

    // Related: UDP to a closed port outside; the outside kernel's port unreachable comes back
    // +rel and the inside socket gets ECONNREFUSED.
    let out = inside.ns.exec_timeout(
        &["python3", "-c", UDP_REFUSED_CLIENT, &outside.ip, "9"],
        Duration::from_secs(10),
    );
    assert_eq!(out.stdout.trim(), "refused", "{out:?}\n{}", d.log_text());
    assert_eq!(
        flow_packets(&d, "br0", &["ct_state=+rel+trk", "in_port=2"]),
        1
    );
    assert_eq!(inv_drops(&d), 0);

    // Unrelated: the same kind of error, quoting a datagram inside:40001 -> outside:40002
    // that was never sent, to a socket connected on exactly that 4-tuple.
    let inject_and_listen = |go: &str, wait_for: &dyn Fn() -> bool| -> String {
        let mut l = inside.ns.spawn(&[
            "python3",
            "-c",
            UDP_SILENT_LISTENER,
            &inside.ip,
            "40001",
            &outside.ip,
            "40002",
            &path(&tmp, go),
        ]);
        assert!(l.wait_line(|s| s == "ready", Duration::from_secs(10)));
        let inj = outside.ns.exec_timeout(
            &[
                "python3",
                "-c",
                INJECT_PORT_UNREACHABLE,
                &inside.ip,
                &outside.ip,
                "40001",
                "40002",
            ],
            Duration::from_secs(10),
        );
        assert_eq!(inj.stdout.trim(), "injected", "{inj:?}");
        // The switch has decided the error's fate once its counter moved.
        assert!(
            eventually(Duration::from_secs(10), wait_for),
            "the injected error never reached the switch\n{}",
            d.swctl(&["dump-flows", "br0"]).expect_ok("dump-flows")
        );
        touch(&tmp, go);
        let out = l.wait(Duration::from_secs(15));
        out.stdout.lines().last().unwrap_or_default().to_owned()
    };
    let no_conn = invalid(&d, "icmp_no_connection");
    let seen = inject_and_listen("go1", &|| inv_drops(&d) == 1);
    assert_eq!(seen, "quiet", "the unrelated error got through");
    assert_eq!(invalid(&d, "icmp_no_connection"), no_conn + 1);
    // Control: without conntrack in the way, the same injection reaches the socket (so the
    // "quiet" above is the switch's doing, not a harmless packet).
    add_flows(
        &d,
        "br0",
        &["table=0,priority=200,icmp,in_port=2 actions=output:1"],
    );
    let bypass = || flow_packets(&d, "br0", &["icmp", "in_port=2"]) >= 1;
    assert_eq!(inject_and_listen("go2", &bypass), "refused");
    d.swctl(&[
        "del-flows",
        "br0",
        "table=0,priority=200,icmp,in_port=2",
        "--strict",
    ])
    .expect_ok("del-flows");

    // Flush by tuple. Zone 5 holds the UDP flow to port 9 and one echo connection.
    assert_eq!(ping(&inside.ns, &outside.ip, 2), 2);
    let protos = |d: &Daemon| {
        let mut p: Vec<u64> = zone_entries(d, "5")
            .iter()
            .map(|e| e["proto"].as_u64().unwrap())
            .collect();
        p.sort_unstable();
        p
    };
    assert_eq!(protos(&d), vec![1, 17]);
    // A bad tuple names the item and removes nothing.
    let bad = d.swctl(&[
        "flush-conntrack",
        &format!("ct_nw_src={},ct_tp_dst=9", inside.ip),
    ]);
    assert!(!bad.ok, "{bad:?}");
    assert!(
        bad.stderr.contains("ct_tp_dst=9") && bad.stderr.contains("without protocol"),
        "{bad:?}"
    );
    let bad = d.swctl(&["flush-conntrack", "ct_nw_src=10.42.0.999"]);
    assert!(
        !bad.ok && bad.stderr.contains("ct_nw_src=10.42.0.999"),
        "{bad:?}"
    );
    assert_eq!(protos(&d), vec![1, 17]);
    // No match: nothing removed (another zone; another port).
    let out = d
        .swctl(&["flush-conntrack", "--zone", "6", "ct_nw_proto=17"])
        .expect_ok("flush zone 6");
    assert_eq!(out.trim(), "flushed 0 connections");
    let out = d
        .swctl(&["flush-conntrack", "ct_nw_proto=17,ct_tp_dst=10"])
        .expect_ok("flush port 10");
    assert_eq!(out.trim(), "flushed 0 connections");
    // Partial tuple: UDP to port 9 only.
    let out = d
        .swctl(&[
            "flush-conntrack",
            "--zone",
            "5",
            "ct_nw_proto=17,ct_tp_dst=9",
        ])
        .expect_ok("flush udp");
    assert_eq!(out.trim(), "flushed 1 connection");
    assert_eq!(protos(&d), vec![1]);
    // The echo connection named by its reply tuple (outside -> inside, echo reply).
    let reply = format!(
        "ct_nw_src={},ct_nw_dst={},ct_nw_proto=1,icmp_type=0,icmp_code=0",
        outside.ip, inside.ip
    );
    let out = d
        .swctl(&["flush-conntrack", &reply])
        .expect_ok("flush icmp");
    assert_eq!(out.trim(), "flushed 1 connection");
    assert!(protos(&d).is_empty());
    assert!(ct_stats(&d)["events"]["flushed"].as_u64().unwrap() >= 2);
    assert!(d.is_running());
}

/// One long-lived connection: connect, print `connected LOCALPORT`; on go file 1 exchange
/// "one" (print `one ok`), on go file 2 exchange "two" (print `two ok`). Bounded.
const TCP_STEPPED_CLIENT: &str = r#"
import os, socket, sys, time
addr, port, go1, go2 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((addr, port), timeout=10)
print("connected", s.getsockname()[1], flush=True)
def step(go, msg):
    deadline = time.time() + 60
    while not os.path.exists(go):
        if time.time() > deadline:
            sys.exit("no go file " + go)
        time.sleep(0.05)
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(100)
        if not b:
            break
        got += b
    print(msg.decode(), "ok" if got == msg else "bad %r" % got, flush=True)
step(go1, b"one")
step(go2, b"two")
s.close()
"#;

/// In the server's namespace: sniff eth0 (AF_PACKET) for the server's next data segment to
/// the client, print `seen`, then on the go file send the client a segment on the same
/// 4-tuple whose sequence number is 2^31 past the server's next one (as far from any window
/// as sequence space allows), ACK set, 10 bytes of data, checksums right.
const INJECT_OUT_OF_WINDOW: &str = r#"
import os, socket, struct, sys, time
client, server, cport, sport, gofile = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
# ETH_P_ALL: only "all" taps see outgoing frames.
sn = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sn.bind(("eth0", 0)); sn.settimeout(0.2)
cip, sip = socket.inet_aton(client), socket.inet_aton(server)
print("sniffing", flush=True)
deadline = time.time() + 60
nxt = None
while nxt is None and time.time() < deadline:
    try:
        f = sn.recv(65535)
    except socket.timeout:
        continue
    ip = f[14:]
    if f[12:14] != b"\x08\x00" or len(ip) < 40 or ip[9] != 6 or ip[12:16] != sip or ip[16:20] != cip:
        continue
    ihl = (ip[0] & 15) * 4
    tot = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:tot]
    sp, dp, seq, ack = struct.unpack("!HHII", tcp[:12])
    doff = (tcp[12] >> 4) * 4
    if sp == sport and dp == cport and len(tcp) > doff:
        nxt, acked = (seq + len(tcp) - doff) & 0xffffffff, ack
if nxt is None:
    sys.exit("no server segment seen")
print("seen", nxt, acked, flush=True)
while not os.path.exists(gofile):
    if time.time() > deadline:
        sys.exit("no go file")
    time.sleep(0.05)
bogus = (nxt + (1 << 31)) & 0xffffffff
data = b"OUTOFWINDW"
hdr = struct.pack("!HHIIBBHHH", sport, cport, bogus, acked, 5 << 4, 0x18, 502, 0, 0)
pseudo = sip + cip + struct.pack("!BBH", 0, 6, len(hdr) + len(data))
c = csum(pseudo + hdr + data)
seg = hdr[:16] + struct.pack("!H", c) + hdr[18:] + data
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
raw.sendto(seg, (client, 0))
print("injected", bogus, flush=True)
"#;

#[test]
fn out_of_window_segment_is_invalid_and_dropped() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 43, 2);
    let d = Daemon::lab("lab-ct-oow");
    bridge_with_hosts(&d, "br0", &h, None);
    add_flows(&d, "br0", FIREWALL);
    let (inside, outside) = (&h[0], &h[1]);
    let tmp = TempDir::new("lab-ct-oow");
    let stats = ct_stats(&d);
    let profile = stats["zones"]
        .as_array()
        .and_then(|z| z.iter().find(|z| z["zone"] == 5))
        .map_or("strict".to_owned(), |z| {
            z["profile"].as_str().unwrap().to_owned()
        });
    assert_eq!(profile, "strict", "zone 5 must be strict: {stats}");

    let srv = outside
        .ns
        .spawn(&["python3", "-c", TCP_ECHO_SERVER, "7000", "30"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let (go1, go2, inject) = (path(&tmp, "go1"), path(&tmp, "go2"), path(&tmp, "inject"));
    let mut cli = inside.ns.spawn(&[
        "python3",
        "-c",
        TCP_STEPPED_CLIENT,
        &outside.ip,
        "7000",
        &go1,
        &go2,
    ]);
    assert!(
        cli.wait_line(|l| l.starts_with("connected "), Duration::from_secs(10)),
        "{}",
        d.log_text()
    );
    let cport = cli
        .lines()
        .iter()
        .find_map(|l| l.strip_prefix("connected ").map(str::to_owned))
        .expect("client port");
    let mut inj = outside.ns.spawn(&[
        "python3",
        "-c",
        INJECT_OUT_OF_WINDOW,
        &inside.ip,
        &outside.ip,
        &cport,
        "7000",
        &inject,
    ]);
    assert!(inj.wait_line(|l| l == "sniffing", Duration::from_secs(10)));
    touch(&tmp, "go1");
    assert!(
        cli.wait_line(|l| l == "one ok", Duration::from_secs(10)),
        "{:?}",
        cli.lines()
    );
    assert!(
        inj.wait_line(|l| l.starts_with("seen "), Duration::from_secs(10)),
        "{:?}",
        inj.lines()
    );
    let e = zone_entries(&d, "5");
    assert!(
        e.iter()
            .any(|e| e["proto"] == 6 && e["state"] == "ESTABLISHED"),
        "{e:?}"
    );

    let (oow, drops) = (invalid(&d, "out_of_window"), inv_drops(&d));
    let segs = settled_in_segs(&inside.ns);
    touch(&tmp, "inject");
    assert!(
        inj.wait_line(|l| l.starts_with("injected "), Duration::from_secs(10)),
        "{:?}",
        inj.wait(Duration::from_secs(5))
    );
    assert!(
        eventually(Duration::from_secs(10), || invalid(&d, "out_of_window")
            == oow + 1),
        "out_of_window stayed at {oow}: {}",
        ct_stats(&d)
    );
    assert_eq!(inv_drops(&d), drops + 1, "the +inv drop flow took it");
    // The inside stack never received it (it would have counted it, and answered with an ACK).
    assert_eq!(
        settled_in_segs(&inside.ns),
        segs,
        "the bogus segment got in"
    );

    // The connection is unharmed: data still flows both ways.
    touch(&tmp, "go2");
    assert!(
        cli.wait_line(|l| l == "two ok", Duration::from_secs(10)),
        "{:?}\n{}",
        cli.lines(),
        d.log_text()
    );
    assert!(tcp_in_segs(&inside.ns) > segs, "InSegs is live");
    let out = cli.wait(Duration::from_secs(10));
    assert!(out.ok, "{out:?}");
    assert_eq!(invalid(&d, "out_of_window"), oow + 1);
    drop(srv);
}

/// Open ARGV3 connections to ARGV1:ARGV2, exchange a message on each and print `open N`
/// (N that echoed); then one more connection with a 0.5 s connect timeout, printing
/// `extra connected|timeout|refused`; then wait for the go file and close everything.
const TCP_LIMIT_CLIENT: &str = r#"
import os, socket, sys, time
addr, port, n, gofile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
socks, ok = [], 0
for i in range(n):
    s = socket.create_connection((addr, port), timeout=10)
    socks.append(s)
for i, s in enumerate(socks):
    msg = b"conn-%03d" % i
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(64)
        if not b:
            break
        got += b
    ok += got == msg
print("open", ok, flush=True)
x = socket.socket()
x.settimeout(0.5)
try:
    x.connect((addr, port)); print("extra connected", flush=True)
except socket.timeout:
    print("extra timeout", flush=True)
except ConnectionRefusedError:
    print("extra refused", flush=True)
x.close()
deadline = time.time() + 60
while not os.path.exists(gofile) and time.time() < deadline:
    time.sleep(0.05)
for s in socks:
    s.close()
"#;

#[test]
fn zone_limit_10_admits_ten_refuses_the_eleventh() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 44, 2);
    let d = Daemon::lab("lab-ct-lim");
    bridge_with_hosts(&d, "br0", &h, None);
    add_flows(&d, "br0", FIREWALL);
    let (inside, outside) = (&h[0], &h[1]);
    let tmp = TempDir::new("lab-ct-lim");
    d.swctl(&["set-ct-zone", "5", "limit=10"])
        .expect_ok("set-ct-zone");
    assert_eq!(zone_stats(&d, 5), (0, 10));

    let srv = outside
        .ns
        .spawn(&["python3", "-c", TCP_ECHO_SERVER, "7100", "30"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let (full, drops) = (invalid(&d, "table_full"), inv_drops(&d));
    let mut cli = inside.ns.spawn(&[
        "python3",
        "-c",
        TCP_LIMIT_CLIENT,
        &outside.ip,
        "7100",
        "10",
        &path(&tmp, "close"),
    ]);
    assert!(
        cli.wait_line(|l| l.starts_with("extra "), Duration::from_secs(30)),
        "{:?}\n{}",
        cli.lines(),
        d.log_text()
    );
    let lines = cli.lines();
    assert!(lines.iter().any(|l| l == "open 10"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "extra timeout"), "{lines:?}");
    // Ten entries, at the limit; the eleventh's SYN refused: counted table_full once per SYN
    // the switch saw (the +inv drop flow counts those). That is one SYN: the client gives up
    // after 0.5 s and the kernel's first retransmission is due at 1 s; should a stalled
    // client let a retransmission out, it is refused and counted the same way.
    assert_eq!(zone_stats(&d, 5), (10, 10), "{}", ct_stats(&d));
    let refused = invalid(&d, "table_full") - full;
    assert!(refused >= 1, "{}", ct_stats(&d));
    assert_eq!(inv_drops(&d) - drops, refused, "one count per refused SYN");
    let srv_peers = srv
        .lines()
        .iter()
        .filter(|l| l.starts_with("peer "))
        .count();
    assert_eq!(srv_peers, 10, "the server accepted exactly ten");
    touch(&tmp, "close");
    let out = cli.wait(Duration::from_secs(20));
    assert!(out.ok, "{out:?}");
    drop(srv);
}

/// MAC the routers use for the switch's addresses (the FIP outside, the gateway inside).
const GW_MAC: &str = "02:00:00:ee:00:5b";

/// Traceroute-style probes on a connected UDP socket with IP_RECVERR, so the kernel hands
/// over an ICMP error only if its quoted header matches this socket (addresses and ports as
/// the socket knows them):
/// - `ttl ADDR PORT TTL`: send with that TTL (every 0.5 s, at most 10 times) until an error
///   is queued; print `icmp type=T code=C from=OFFENDER` or `none`;
/// - `pmtu ADDR PORT SIZE`: DF datagrams of SIZE bytes (every 0.2 s, at most 25) until the
///   kernel refuses one (EMSGSIZE: it learnt a smaller path MTU); print `emsgsize mtu=M` or
///   `none`.
const UDP_PROBE: &str = r#"
import errno, socket, struct, sys, time
mode, addr, port, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
IP_RECVERR, IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 11, 10, 2, 14
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
if mode == "ttl":
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, arg)
s.connect((addr, port))
def errqueue():
    try:
        _, anc, _, _ = s.recvmsg(512, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    for level, typ, data in anc:
        if level == socket.IPPROTO_IP and typ == IP_RECVERR:
            ee_errno, origin, etype, code, pad, info, edata = struct.unpack("=IBBBBII", data[:16])
            off = socket.inet_ntoa(data[20:24]) if len(data) >= 24 else "?"
            return etype, code, off
    return None
if mode == "ttl":
    for _ in range(10):
        try:
            s.send(b"probe")
        except OSError:
            pass
        end = time.time() + 0.5
        while time.time() < end:
            e = errqueue()
            if e:
                print("icmp type=%d code=%d from=%s" % e, flush=True); sys.exit(0)
            time.sleep(0.02)
    print("none", flush=True)
else:
    for _ in range(25):
        try:
            s.send(bytes(arg))
        except OSError as e:
            if e.errno == errno.EMSGSIZE:
                print("emsgsize mtu=%d" % s.getsockopt(socket.IPPROTO_IP, IP_MTU), flush=True)
                sys.exit(0)
        errqueue()
        time.sleep(0.2)
    print("none", flush=True)
"#;

/// A veth pair between two lab namespaces (`a_end` in `a`, `b_end` in `b`), offloads off,
/// addresses and MTU set, up. Removed with the namespaces.
#[allow(clippy::too_many_arguments)]
fn link(a: &Netns, a_end: &str, a_ip: &str, b: &Netns, b_end: &str, b_ip: &str, mtu: u32) {
    a.exec_ok(&[
        "ip",
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
    let mtu = mtu.to_string();
    for (ns, dev, ip) in [(a, a_end, a_ip), (b, b_end, b_ip)] {
        ns.exec_ok(&["ip", "link", "set", "dev", dev, "mtu", &mtu]);
        ns.exec_ok(&["ip", "addr", "add", ip, "dev", dev]);
        ns.exec_ok(&[
            "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
        ]);
        ns.exec_ok(&["ip", "link", "set", "dev", dev, "up"]);
    }
}

/// Make `ns` a router: forwarding on, reverse-path filtering off (the lab's asymmetry is
/// deliberate: errors come from router addresses, replies from the FIP).
fn router(ns: &Netns) {
    // Through /proc rather than sysctl(8): sh and coreutils are on every Debian, procps not.
    let mut cmd = String::from("echo 1 > /proc/sys/net/ipv4/ip_forward");
    for dev in ns
        .exec_ok(&["ls", "/proc/sys/net/ipv4/conf"])
        .split_whitespace()
    {
        cmd.push_str(&format!(
            "; echo 0 > /proc/sys/net/ipv4/conf/{dev}/rp_filter"
        ));
    }
    ns.exec_ok(&["sh", "-ec", &cmd]);
}

/// `mtu N` of `ip route get ADDR` in `ns` (the PMTU the kernel learnt), if any.
fn route_mtu(ns: &Netns, addr: &str) -> Option<u32> {
    let out = ns.exec_ok(&["ip", "route", "get", addr]);
    let w: Vec<&str> = out.split_whitespace().collect();
    w.windows(2)
        .find(|p| p[0] == "mtu")
        .and_then(|p| p[1].parse().ok())
}

/// 1:1 floating IP: `FIP <-> FIXED`, with a Linux router on each side of the switch:
///
/// ```text
///  C (client) ─┬─ 1500: 10.91.3.0/24 ─┐
///              └─ 1280: 10.91.4.0/24 ─┴─ R2 ── 10.91.0.0/24 (FIP .100) ── [switch] ──
///     10.91.1.0/24 (gw .100) ── R ── 1400: 10.91.2.0/24 ── VM (FIXED 10.91.2.2)
/// ```
///
/// The switch translates only addresses (`nat(dst=FIXED)` in, `nat(src=FIP)` out, ports
/// kept) and routes by rewriting MACs; it does not decrement TTL. Errors made behind the NAT
/// (by R for the client's packets, by R2 for the VM's) quote the translated packet, so they
/// reach the sender only if the switch translates the quoted header back.
#[test]
fn floating_ip_one_to_one_with_translated_icmp_errors() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    // h1 = R2 (outside router, port 1), h2 = R (inside router, port 2).
    let h = hosts(&lab, 91, 2);
    let (r2, r) = (&h[0], &h[1]);
    let (c, vm) = (lab.netns("c"), lab.netns("vm"));
    let (fip, fixed, gw) = ("10.91.0.100", "10.91.2.2", "10.91.1.100");
    let (client, client_small) = ("10.91.3.2", "10.91.4.2");
    // h2 was numbered 10.91.0.2 by the helper: move R to the inside network.
    r.ns.exec_ok(&["ip", "addr", "flush", "dev", "eth0"]);
    r.ns.exec_ok(&["ip", "addr", "add", "10.91.1.1/24", "dev", "eth0"]);
    link(
        &c,
        "eth0",
        "10.91.3.2/24",
        &r2.ns,
        "eth1",
        "10.91.3.1/24",
        1500,
    );
    link(
        &c,
        "eth1",
        "10.91.4.2/24",
        &r2.ns,
        "eth2",
        "10.91.4.1/24",
        1280,
    );
    link(
        &vm,
        "eth0",
        "10.91.2.2/24",
        &r.ns,
        "eth1",
        "10.91.2.1/24",
        1400,
    );
    c.exec_ok(&["ip", "route", "add", "default", "via", "10.91.3.1"]);
    vm.exec_ok(&["ip", "route", "add", "default", "via", "10.91.2.1"]);
    r.ns.exec_ok(&["ip", "route", "add", "default", "via", gw]);
    r2.ns.exec_ok(&[
        "ip", "neigh", "replace", fip, "lladdr", GW_MAC, "dev", "eth0",
    ]);
    r.ns.exec_ok(&[
        "ip", "neigh", "replace", gw, "lladdr", GW_MAC, "dev", "eth0",
    ]);
    router(&r.ns);
    router(&r2.ns);

    let mut d = Daemon::lab("lab-fip");
    bridge_with_hosts(&d, "br0", &h, None);
    let to_r = format!("mod_dl_src:{GW_MAC},mod_dl_dst:{},output:2", r.mac);
    let to_r2 = format!("mod_dl_src:{GW_MAC},mod_dl_dst:{},output:1", r2.mac);
    let flows = [
        // In: anything for the FIP is DNATed to the fixed address (errors about the VM's
        // own connections are +rel and translated by those connections).
        format!(
            "table=0,priority=10,ip,in_port=1,nw_dst={fip} \
             actions=ct(commit,zone=7,nat(dst={fixed}),table=1)"
        ),
        // Out: the VM's packets are SNATed to the FIP; others from behind R (its ICMP errors)
        // only looked up, so related errors are translated.
        format!(
            "table=0,priority=10,ip,in_port=2,nw_src={fixed} \
             actions=ct(commit,zone=7,nat(src={fip}),table=1)"
        ),
        "table=0,priority=5,ip,in_port=2 actions=ct(zone=7,nat,table=1)".to_string(),
        "table=0,priority=0 actions=drop".to_string(),
        format!("table=1,priority=10,ip,in_port=1,ct_state=+trk-inv actions={to_r}"),
        format!("table=1,priority=10,ip,in_port=2,ct_state=+trk+est actions={to_r2}"),
        format!("table=1,priority=10,ip,in_port=2,ct_state=+trk+rel actions={to_r2}"),
        format!("table=1,priority=10,ip,in_port=2,ct_state=+trk+new,nw_src={fip} actions={to_r2}"),
        "table=1,priority=0 actions=drop".to_string(),
    ];
    let flows: Vec<&str> = flows.iter().map(String::as_str).collect();
    add_flows(&d, "br0", &flows);
    let diag = |d: &Daemon| {
        format!(
            "{}\n{}\n{}",
            d.swctl(&["dump-flows", "br0"]).expect_ok("dump-flows"),
            d.swctl(&["dump-conntrack"]).expect_ok("dump-conntrack"),
            d.log_text()
        )
    };

    // Ping the FIP from outside: the replies come from the FIP.
    let out = c.exec_timeout(
        &["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", fip],
        Duration::from_secs(15),
    );
    let replies = out
        .stdout
        .lines()
        .filter(|l| l.contains(&format!("bytes from {fip}:")))
        .count();
    assert_eq!(replies, 3, "{out:?}\n{}", diag(&d));

    // TCP in through the FIP: the VM sees the client's own address, the client talks to the
    // FIP (its kernel took the SYN-ACK from the FIP), port unchanged.
    let srv = vm.spawn(&["python3", "-c", TCP_ONE_ECHO, "2222", "20"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let out = c.exec_timeout(
        &["python3", "-c", TCP_ONE_CLIENT, fip, "2222", "hello"],
        Duration::from_secs(15),
    );
    let w: Vec<String> = out.stdout.split_whitespace().map(str::to_owned).collect();
    assert_eq!(
        w.get(..3).map(|w| w.join(" ")),
        Some(format!("echo:hello {fip} 2222")),
        "{out:?}\n{}",
        diag(&d)
    );
    assert!(
        srv.wait_line(
            |l| l == format!("peer {client} {}", w[3]).as_str(),
            Duration::from_secs(5)
        ),
        "{:?}",
        srv.lines()
    );
    drop(srv);

    // TCP out from the VM: the client sees the FIP, with the VM's own source port (1:1).
    let srv = c.spawn(&["python3", "-c", TCP_ONE_ECHO, "2223", "20"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let out = vm.exec_timeout(
        &["python3", "-c", TCP_ONE_CLIENT, client, "2223", "hello"],
        Duration::from_secs(15),
    );
    let w: Vec<String> = out.stdout.split_whitespace().map(str::to_owned).collect();
    assert_eq!(
        w.get(..3).map(|w| w.join(" ")),
        Some(format!("echo:hello {client} 2223")),
        "{out:?}\n{}",
        diag(&d)
    );
    assert!(
        srv.wait_line(
            |l| l == format!("peer {fip} {}", w[3]).as_str(),
            Duration::from_secs(5)
        ),
        "SNAT to the FIP with the port kept: {:?}",
        srv.lines()
    );
    drop(srv);

    // (i) Time exceeded. Client -> FIP with TTL 2: R2 makes it 1, R drops it and answers
    // from its own address, quoting dst=FIXED; the switch relates it to the DNAT connection,
    // turns the quote back into dst=FIP and (like Linux) the outer source into the FIP.
    let probe = |ns: &Netns, args: &[&str]| {
        let mut argv = vec!["python3", "-c", UDP_PROBE];
        argv.extend_from_slice(args);
        let out = ns.exec_timeout(&argv, Duration::from_secs(20));
        out.stdout.trim().to_owned()
    };
    let got = probe(&c, &["ttl", fip, "33434", "2"]);
    assert_eq!(
        got,
        format!("icmp type=11 code=0 from={fip}"),
        "{}",
        diag(&d)
    );
    // VM -> client with TTL 2: R makes it 1, R2 drops it and answers the FIP; the switch
    // turns the quoted source back into FIXED and the outer destination into FIXED.
    let got = probe(&vm, &["ttl", client, "33435", "2"]);
    assert_eq!(got, "icmp type=11 code=0 from=10.91.0.1", "{}", diag(&d));

    // (ii) Fragmentation needed. Client -> FIP, 1400-byte DF datagrams: R cannot forward
    // them onto the VM's 1400-byte link and says so quoting dst=FIXED; once translated the
    // client's kernel learns the path MTU of the FIP (it would otherwise file it under an
    // address it never sent to, or nowhere).
    assert_eq!(route_mtu(&c, fip), None);
    let got = probe(&c, &["pmtu", fip, "5001", "1400"]);
    assert_eq!(got, "emsgsize mtu=1400", "{}", diag(&d));
    assert_eq!(route_mtu(&c, fip), Some(1400));
    assert_eq!(
        route_mtu(&c, fixed),
        None,
        "nothing learnt for the hidden address"
    );
    // VM -> the client's 1280-byte link: R2 says so to the FIP; translated back to the VM.
    assert_eq!(route_mtu(&vm, client_small), None);
    let got = probe(&vm, &["pmtu", client_small, "5002", "1300"]);
    assert_eq!(got, "emsgsize mtu=1280", "{}", diag(&d));
    assert_eq!(route_mtu(&vm, client_small), Some(1280));

    // Every connection went through the one 1:1 binding: DNAT ones to FIXED, SNAT ones from
    // the FIP, ports untouched.
    for e in zone_entries(&d, "7") {
        let (o, r) = (&e["original"], &e["reply"]);
        if e["proto"] == 1 {
            assert_eq!(o["sport"], r["sport"], "echo id changed: {e}");
        } else {
            assert_eq!(o["sport"], r["dport"], "port changed: {e}");
        }
        if e["dnat"] == true {
            assert_eq!(
                (&o["dst"], &r["src"]),
                (&Value::from(fip), &Value::from(fixed))
            );
        } else {
            assert_eq!(e["snat"], true, "{e}");
            assert_eq!(
                (&o["src"], &r["dst"]),
                (&Value::from(fixed), &Value::from(fip))
            );
        }
    }
    assert!(d.is_running());
}
