//! Conntrack on an asymmetric path (scenario S1) with real kernel TCP: the switch sees only
//! the client's half of each connection.
//!
//! Topology: client (port 1) and server (port 2) on the switch, plus a direct veth between
//! the two namespaces that is the server's route back to the client. The client's packets go
//! through the switch (`ct(zone=7)`), the server's answers never do.
//!
//! - `profile=strict`: the client's ACK of the SYN-ACK it got the other way is invalid
//!   (counted), dropped by the flows: the connection never carries data (S1's failure).
//! - `profile=asym`: the ACK with `seq == SYN + 1` establishes the connection one-sided; a
//!   1 MiB transfer each way completes and closes, `dump-conntrack` shows the entry
//!   `[ONE_SIDED]`, no invalid packet is counted on the way.
//! - A spoofed ACK (raw socket, no SYN before it) to a port with a listener: with
//!   `invalid=drop` (and flows that would *forward* `+inv`) it is dropped in `ct()` and counted,
//!   the server's stack sees nothing and sends no RST. The control: with `invalid=untracked`
//!   and a flow forwarding `+trk` packets that are neither new nor established, the same spoof
//!   reaches the server, whose stack answers with a RST — the check can fail.
//! - A SYN flood of 200 SYNs with `limit=50`: the zone never holds more than 50 entries, the
//!   150 over the limit are counted (each evicted an older embryonic entry: `early_drop`).

use integration::lab::cmd::Spawned;
use integration::lab::scripts::RAW_TCP;
use integration::lab::switch::{add_flows, bridge_with_hosts, dump_ports, flow_packets};
use integration::lab::{eventually, hosts, require_root, Host, Lab, Netns};
use integration::Daemon;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const ZONE: &str = "7";

/// Client -> server through conntrack; nothing else but ARP. Table 1 decides on `ct_state`.
const FLOWS: &[&str] = &[
    "table=0,priority=100,arp actions=normal",
    "table=0,priority=10,ip,in_port=1,ct_state=-trk actions=ct(table=1,zone=7)",
    "table=0,priority=0 actions=drop",
    "table=1,priority=10,ip,in_port=1,ct_state=+trk+new actions=ct(commit,zone=7),output:2",
    "table=1,priority=10,ip,in_port=1,ct_state=+trk+est actions=output:2",
    "table=1,priority=10,ct_state=+trk+inv actions=drop",
    "table=1,priority=5 actions=drop",
];

/// Server: accept one connection, read to EOF, send `n` bytes back, close. Prints what it
/// received and what it sent (count and SHA-256).
const BIDI_SERVER: &str = r#"
import socket, sys, hashlib, random
addr, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(1); s.settimeout(timeout)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(timeout)
h = hashlib.sha256(); got = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b); got += len(b)
print("recv", got, h.hexdigest(), flush=True)
data = random.Random(n + 1).randbytes(n)
c.sendall(data)
c.close()
print("sent", n, hashlib.sha256(data).hexdigest(), flush=True)
"#;

/// Client: connect, send `n` bytes, half-close, read the server's bytes to EOF.
const BIDI_CLIENT: &str = r#"
import socket, sys, hashlib, random, struct
addr, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
data = random.Random(n).randbytes(n)
s = socket.create_connection((addr, port), timeout=timeout)
try:
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    print("sent", n, hashlib.sha256(data).hexdigest(), flush=True)
    h = hashlib.sha256(); got = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        h.update(b); got += len(b)
except OSError:
    # Abort (RST) rather than leave an orphan retransmitting into the next phase.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    raise
s.close()
print("recv", got, h.hexdigest(), flush=True)
"#;

/// Listen (never accept) for `timeout` seconds: a port with a listener for the spoofed ACK.
const LISTENER: &str = r#"
import socket, sys, time
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(8)
print("listening", flush=True)
time.sleep(timeout)
"#;

fn json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.swctl(args).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Zone 7 as `conntrack-stats --json` lists it.
fn zone7(d: &Daemon) -> Value {
    let st = json(d, &["conntrack-stats", "--json"]);
    st["zones"]
        .as_array()
        .and_then(|z| z.iter().find(|z| z["zone"] == 7).cloned())
        .unwrap_or_else(|| panic!("zone 7 in {st}"))
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn event(d: &Daemon, name: &str) -> u64 {
    json(d, &["conntrack-stats", "--json"])["events"][name]
        .as_u64()
        .unwrap_or(0)
}

/// Zone 7's invalid counters once they stopped moving (the strict phase's last packets
/// passed); bounded.
fn quiet_invalid(d: &Daemon) -> BTreeMap<String, u64> {
    let mut last = counts(&zone7(d)["invalid"]);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = counts(&zone7(d)["invalid"]);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("zone 7 invalid counters never settled: {last:?}");
}

/// The server namespace's TCP counters (`/proc/net/snmp` is per namespace).
fn tcp_counters(ns: &Netns) -> BTreeMap<String, u64> {
    let out = ns.exec_ok(&["cat", "/proc/net/snmp"]);
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("Tcp:")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    rows[0]
        .split_whitespace()
        .zip(rows[1].split_whitespace())
        .skip(1)
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(0)))
        .collect()
}

/// The server's counters once they stopped moving (stray retransmissions of earlier
/// phases die out); bounded.
fn quiet_tcp_counters(ns: &Netns) -> BTreeMap<String, u64> {
    let mut last = tcp_counters(ns);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = tcp_counters(ns);
        if now["InSegs"] == last["InSegs"] && now["OutRsts"] == last["OutRsts"] {
            return now;
        }
        last = now;
    }
    panic!("server TCP counters never settled: {last:?}");
}

#[derive(Debug)]
struct Bidi {
    client: String,
    server: String,
}

impl Bidi {
    /// Both directions carried `n` bytes intact.
    fn ok(&self, n: usize) -> bool {
        let lines = |s: &str| -> BTreeMap<String, String> {
            s.lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_owned(), v.to_owned()))
                })
                .collect()
        };
        let (c, s) = (lines(&self.client), lines(&self.server));
        let want = |v: Option<&String>| v.is_some_and(|v| v.starts_with(&format!("{n} ")));
        want(c.get("sent"))
            && want(s.get("sent"))
            && c.get("sent") == s.get("recv")
            && s.get("sent") == c.get("recv")
    }
}

/// A connection from the client to the server's `port`: `n` bytes each way.
fn bidi(server: &Host, client: &Host, port: u16, n: usize, timeout: Duration) -> Bidi {
    let (port, n, secs) = (
        port.to_string(),
        n.to_string(),
        timeout.as_secs().to_string(),
    );
    let mut srv = server
        .ns
        .spawn(&["python3", "-c", BIDI_SERVER, &server.ip, &port, &n, &secs]);
    assert!(
        srv.wait_line(|l| l == "listening", Duration::from_secs(10)),
        "server did not start"
    );
    let cli = client.ns.exec_timeout(
        &["python3", "-c", BIDI_CLIENT, &server.ip, &port, &n, &secs],
        timeout + Duration::from_secs(5),
    );
    let srv = srv.wait(timeout + Duration::from_secs(5));
    Bidi {
        client: cli.stdout + &cli.stderr,
        server: srv.stdout + &srv.stderr,
    }
}

fn listener(server: &Host, port: u16) -> Spawned {
    let srv = server.ns.spawn(&[
        "python3",
        "-c",
        LISTENER,
        &server.ip,
        &port.to_string(),
        "60",
    ]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    srv
}

fn raw_tcp(client: &Host, server: &Host, sport: u16, dport: u16, flags: u8, count: u32) {
    client.ns.exec_ok(&[
        "python3",
        "-c",
        RAW_TCP,
        &client.ip,
        &server.ip,
        &sport.to_string(),
        &dport.to_string(),
        &flags.to_string(),
        &count.to_string(),
    ]);
}

/// Make the server's route back to the client a direct veth between the two namespaces.
fn direct_return_path(client: &Host, server: &Host) {
    let s = server.ns.name();
    // Both ends live in lab namespaces and go with them.
    client.ns.exec_ok(&[
        "ip", "link", "add", "direct", "type", "veth", "peer", "name", "direct", "netns", s,
    ]);
    client
        .ns
        .exec_ok(&["ip", "addr", "add", "10.99.0.1/24", "dev", "direct"]);
    server
        .ns
        .exec_ok(&["ip", "addr", "add", "10.99.0.2/24", "dev", "direct"]);
    for ns in [&client.ns, &server.ns] {
        ns.exec_ok(&["ip", "link", "set", "direct", "up"]);
        // Each side receives from an address its route does not point back to.
        // Written directly (no `sysctl` binary needed): /proc/sys/net is the namespace's.
        for conf in ["all", "default", "direct", "eth0"] {
            ns.exec_ok(&[
                "sh",
                "-c",
                &format!("echo 0 > /proc/sys/net/ipv4/conf/{conf}/rp_filter"),
            ]);
        }
    }
    server.ns.exec_ok(&[
        "ip",
        "route",
        "add",
        &format!("{}/32", client.ip),
        "via",
        "10.99.0.1",
        "dev",
        "direct",
    ]);
}

#[test]
fn one_sided_tcp_through_conntrack() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 47, 2);
    let (client, server) = (&h[0], &h[1]);
    direct_return_path(client, server);
    let d = Daemon::lab("lab-ct-asym");
    bridge_with_hosts(&d, "br0", &h, None);
    add_flows(&d, "br0", FLOWS);

    // Strict: the handshake's ACK is invalid, nothing gets through.
    d.swctl(&["set-ct-zone", ZONE, "profile=strict"])
        .expect_ok("profile=strict");
    let before = counts(&zone7(&d)["invalid"]);
    let t = bidi(server, client, 23001, 1000, Duration::from_secs(3));
    assert!(
        !t.ok(1000),
        "strict must fail on the asymmetric path: {t:?}"
    );
    assert!(!t.server.contains("recv 1000"), "{t:?}");
    let after = counts(&zone7(&d)["invalid"]);
    let grew = |k: &str| after.get(k).copied().unwrap_or(0) > before.get(k).copied().unwrap_or(0);
    assert!(grew("invalid_transition"), "{before:?} -> {after:?}");
    assert!(flow_packets(&d, "br0", &["ct_state=+inv+trk"]) > 0);
    d.swctl(&["flush-conntrack", "--zone", ZONE])
        .expect_ok("flush");

    // Asym: 1 MiB each way, closed cleanly, the entry one-sided, nothing invalid.
    let out = d
        .swctl(&["set-ct-zone", ZONE, "profile=bogus"])
        .expect_err("bad profile");
    assert!(out.contains("bogus"), "{out}");
    d.swctl(&["set-ct-zone", ZONE, "profile=asym"])
        .expect_ok("profile=asym");
    let before = quiet_invalid(&d);
    let n = 1 << 20;
    let t = bidi(server, client, 23002, n, Duration::from_secs(60));
    assert!(
        t.ok(n),
        "1 MiB each way under asym: {t:?}\n{}",
        d.log_text()
    );
    assert_eq!(counts(&zone7(&d)["invalid"]), before, "no invalid packet");
    let dump = json(&d, &["dump-conntrack", "--zone", ZONE, "--json"]);
    let e = dump
        .as_array()
        .and_then(|a| a.iter().find(|e| e["original"]["dport"] == 23002))
        .unwrap_or_else(|| panic!("entry for port 23002 in {dump}"));
    assert_eq!(e["one_sided"], true, "{e}");
    assert_eq!(e["packets"][1], 0, "the switch saw no reply: {e}");
    assert!(e["packets"][0].as_u64().unwrap() > 700, "{e}");
    assert!(e["line"].as_str().unwrap().contains("[ONE_SIDED]"), "{e}");
    let text = d
        .swctl(&["dump-conntrack", "--zone", ZONE])
        .expect_ok("dump");
    assert!(
        text.contains("dport=23002") && text.contains("[ONE_SIDED]"),
        "{text}"
    );
    let stats = json(&d, &["conntrack-stats", "--json"]);
    assert!(
        stats["events"]["one_sided_established"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(stats["one_sided"].as_u64().unwrap() >= 1, "{stats}");
    let z = zone7(&d);
    assert_eq!(
        (z["profile"].as_str(), z["invalid_action"].as_str()),
        (Some("asym"), Some("flows"))
    );

    // A spoofed ACK, no SYN before it, to a port with a listener. invalid=drop, and table 1
    // would now *forward* +inv: ct() itself must drop it.
    let _l = listener(server, 23100);
    d.swctl(&["set-ct-zone", ZONE, "invalid=drop"])
        .expect_ok("invalid=drop");
    d.swctl_stdin(
        &["add-flows", "br0", "-"],
        "table=1,priority=10,ct_state=+trk+inv actions=output:2",
    )
    .expect_ok("forward +inv");
    let dropped_before = counts(&zone7(&d)["dropped"]);
    let drops_before = port1_drops(&d, "ct_invalid");
    let srv_before = quiet_tcp_counters(&server.ns);
    raw_tcp(client, server, 41000, 23100, 0x10, 1);
    assert!(
        eventually(Duration::from_secs(10), || counts(&zone7(&d)["dropped"])
            .get("not_new")
            .copied()
            .unwrap_or(0)
            > dropped_before.get("not_new").copied().unwrap_or(0)),
        "spoofed ACK counted as dropped: {}",
        zone7(&d)
    );
    assert!(eventually(Duration::from_secs(10), || port1_drops(
        &d,
        "ct_invalid"
    ) > drops_before));
    std::thread::sleep(Duration::from_secs(1));
    let srv_after = tcp_counters(&server.ns);
    assert_eq!(
        srv_after["InSegs"], srv_before["InSegs"],
        "nothing reached the server"
    );
    assert_eq!(
        srv_after["OutRsts"], srv_before["OutRsts"],
        "no RST came back"
    );
    let ss = server.ns.exec_ok(&["ss", "-tan", "sport", "=", ":23100"]);
    assert!(!ss.contains("SYN-RECV") && !ss.contains("ESTAB"), "{ss}");

    // Control: invalid=untracked and a flow forwarding +trk packets that are neither new nor
    // established. The same spoof now reaches the server, whose stack answers with a RST (the
    // RST leaks exactly as in S1): the checks above can fail.
    d.swctl(&["set-ct-zone", ZONE, "invalid=untracked"])
        .expect_ok("invalid=untracked");
    d.swctl_stdin(
        &["add-flows", "br0", "-"],
        "table=1,priority=10,ct_state=+trk+inv actions=drop\n\
         table=1,priority=8,ip,in_port=1,ct_state=+trk-new-est-inv actions=output:2",
    )
    .expect_ok("forward untracked");
    let srv_before = quiet_tcp_counters(&server.ns);
    raw_tcp(client, server, 41001, 23100, 0x10, 1);
    assert!(
        eventually(Duration::from_secs(10), || tcp_counters(&server.ns)
            ["OutRsts"]
            > srv_before["OutRsts"]),
        "untracked spoof reached the server's stack, which answered RST"
    );
    assert_eq!(
        flow_packets(&d, "br0", &["ct_state=-new-est-inv+trk", "ip", "in_port=1"]),
        1,
        "it continued with +trk only"
    );
    // Back to the S1 settings.
    d.swctl(&["set-ct-zone", ZONE, "invalid=drop", "limit=50"])
        .expect_ok("invalid=drop limit=50");
    d.swctl(&["flush-conntrack", "--zone", ZONE])
        .expect_ok("flush");

    // SYN flood: 200 SYNs to a closed port. The zone never holds more than 50 entries; each
    // SYN over the limit is counted (it evicted an older embryonic entry).
    let new_flow = || flow_packets(&d, "br0", &["ct_state=+new+trk", "ip", "in_port=1"]);
    let new_before = new_flow();
    let early_before = event(&d, "early_drop");
    let full_before = counts(&zone7(&d)["invalid"])
        .get("table_full")
        .copied()
        .unwrap_or(0);
    raw_tcp(client, server, 30000, 23999, 0x02, 200);
    assert!(
        eventually(Duration::from_secs(10), || new_flow() >= new_before + 200),
        "all SYNs went through ct"
    );
    let z = zone7(&d);
    assert_eq!(z["entries"], 50, "{z}");
    assert_eq!(z["limit"], 50, "{z}");
    let refused = event(&d, "early_drop") - early_before
        + counts(&z["invalid"])
            .get("table_full")
            .copied()
            .unwrap_or(0)
        - full_before;
    assert!(refused >= 150, "over-limit SYNs counted: {refused} {z}");
    let show = d.swctl(&["show"]).expect_ok("show");
    assert!(
        show.contains("ct zone 7: profile asym, invalid drop, limit 50"),
        "{show}"
    );
}

/// Worker drop counter `reason` on the client's port.
fn port1_drops(d: &Daemon, reason: &str) -> u64 {
    dump_ports(d, "br0")
        .iter()
        .find(|p| p.ofport == 1)
        .and_then(|p| p.drops.get(reason).copied())
        .unwrap_or(0)
}

#[test]
fn zone_settings_are_checked_and_persisted() {
    let mut d = Daemon::builder("ct-asym-persist").with_db().start();
    d.swctl(&[
        "set-ct-zone",
        "9",
        "profile=asym",
        "invalid=untracked",
        "timeout.tcp_one_sided_established=300",
    ])
    .expect_ok("set-ct-zone");
    for (bad, token) in [
        ("profile=loose", "loose"),
        ("invalid=pass", "pass"),
        ("timeout.tcp_one_sided=5", "tcp_one_sided"),
    ] {
        let err = d
            .swctl(&["set-ct-zone", "9", "invalid=drop", bad])
            .expect_err(bad);
        assert!(err.contains(token), "{bad}: {err}");
    }
    d.kill9();
    d.restart();
    let st = json(&d, &["conntrack-stats", "--json"]);
    let z = st["zones"]
        .as_array()
        .and_then(|z| z.iter().find(|z| z["zone"] == 9).cloned())
        .unwrap_or_else(|| panic!("{st}"));
    // The refused settings changed nothing (invalid=drop came with a bad token).
    assert_eq!(z["profile"], "asym", "{z}");
    assert_eq!(z["invalid_action"], "untracked", "{z}");
    let text = d.swctl(&["conntrack-stats"]).expect_ok("conntrack-stats");
    assert!(text.contains("profile asym, invalid untracked"), "{text}");
}
