//! NAT with real kernel traffic: an SNAT gateway for two clients (200 concurrent TCP
//! connections, an ICMP port unreachable translated back to the client, UDP expiry), and a
//! DNAT port forward. The kernels on both sides accept only frames whose checksums (outer and
//! quoted) are right, so these runs check the rewrites end to end.
//!
//! The switch owns the public address: the peers reach it through a static neighbour entry,
//! and the flows after NAT set the destination MAC from the translated destination (the L2
//! decision is taken in the recirculated pass, on the new address).

use integration::lab::cmd::eventually;
use integration::lab::scripts::{TCP_ECHO_SERVER, TCP_ONE_CLIENT, TCP_ONE_ECHO};
use integration::lab::switch::{add_flows, bridge_with_hosts};
use integration::lab::{hosts, require_root, Lab};
use integration::Daemon;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// MAC the peers use for the switch's NAT address (nothing else has it).
const GW_MAC: &str = "02:00:00:ee:00:64";

fn json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.swctl(args).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn zone_entries(d: &Daemon, zone: &str) -> Vec<Value> {
    json(d, &["dump-conntrack", "--zone", zone, "--json"])
        .as_array()
        .expect("entry list")
        .clone()
}

/// Client: open `n` connections to ADDR:PORT at once, send a distinct message on each, read
/// every echo, print how many came back intact.
const TCP_MANY_CLIENT: &str = r#"
import socket, sys
addr, port, n, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
socks = []
for i in range(n):
    s = socket.create_connection((addr, port), timeout=10)
    socks.append(s)
ok = 0
for i, s in enumerate(socks):
    s.sendall(b"%s-%05d" % (tag.encode(), i))
for i, s in enumerate(socks):
    want = b"%s-%05d" % (tag.encode(), i)
    got = b""
    try:
        while len(got) < len(want):
            b = s.recv(64)
            if not b:
                break
            got += b
    except OSError:
        pass
    ok += got == want
for s in socks:
    s.close()
print(ok, flush=True)
"#;

/// UDP to a port nothing listens on: prints `refused` if the ICMP port unreachable reaches
/// the socket (the kernel matches it on the quoted header), `timeout` otherwise.
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

#[test]
fn snat_gateway_many_connections_icmp_errors_and_expiry() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    // h1, h2: clients; h3: the outside server. The gateway address is 10.81.0.100.
    let h = hosts(&lab, 81, 3);
    let d = Daemon::lab("lab-snat");
    bridge_with_hosts(&d, "br0", &h, None);
    let gw = "10.81.0.100";
    let server = &h[2];
    server.ns.exec_ok(&[
        "ip", "neigh", "replace", gw, "lladdr", GW_MAC, "dev", "eth0",
    ]);
    let snat = format!("ct(commit,zone=1,nat(src={gw}:1024-65535),table=1)");
    let mut flows = vec![
        "table=0,priority=100,arp actions=normal".to_string(),
        format!("table=0,priority=10,ip,in_port=1 actions={snat}"),
        format!("table=0,priority=10,ip,in_port=2 actions={snat}"),
        "table=0,priority=10,ip,in_port=3 actions=ct(zone=1,nat,table=1)".to_string(),
        "table=0,priority=0 actions=drop".to_string(),
        "table=1,priority=10,ip,in_port=1 actions=output:3".to_string(),
        "table=1,priority=10,ip,in_port=2 actions=output:3".to_string(),
        "table=1,priority=0 actions=drop".to_string(),
    ];
    // Back in: by the translated destination, which also decides the MAC.
    for (i, c) in h[..2].iter().enumerate() {
        for st in ["+trk+est", "+trk+rel"] {
            flows.push(format!(
                "table=1,priority=10,ip,in_port=3,ct_state={st},nw_dst={} \
                 actions=mod_dl_dst:{},output:{}",
                c.ip,
                c.mac,
                i + 1
            ));
        }
    }
    let flows: Vec<&str> = flows.iter().map(String::as_str).collect();
    add_flows(&d, "br0", &flows);

    // 200 concurrent connections, 100 from each client, all carrying data.
    let mut srv = server
        .ns
        .spawn(&["python3", "-c", TCP_ECHO_SERVER, "9000", "5"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let clients: Vec<_> = h[..2]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.ns.spawn(&[
                "python3",
                "-c",
                TCP_MANY_CLIENT,
                &server.ip,
                "9000",
                "100",
                &format!("c{i}"),
            ])
        })
        .collect();
    for (i, mut c) in clients.into_iter().enumerate() {
        let out = c.wait(Duration::from_secs(30));
        assert_eq!(
            out.stdout.trim(),
            "100",
            "client {i}: {out:?}\n{}",
            d.log_text()
        );
    }
    // While the server still holds them (it lingers 5 s), conntrack lists them translated.
    let entries = zone_entries(&d, "1");
    let tcp: Vec<&Value> = entries.iter().filter(|e| e["proto"] == 6).collect();
    assert!(tcp.len() >= 200, "{} tcp entries", tcp.len());
    for e in &tcp {
        // The reply comes from the server to the gateway address, not to the client.
        assert_eq!(e["reply"]["dst"], gw, "{e}");
        assert_eq!(e["reply"]["src"], server.ip.as_str(), "{e}");
        assert_eq!(
            (&e["snat"], &e["dnat"]),
            (&Value::Bool(true), &Value::Bool(false))
        );
    }
    let srv_out = srv.wait(Duration::from_secs(15));
    let peers: Vec<(String, String)> = srv_out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("peer ")?.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect();
    assert_eq!(peers.len(), 200, "{srv_out:?}");
    assert!(peers.iter().all(|(a, _)| a == gw), "{peers:?}");
    let ports: HashSet<&String> = peers.iter().map(|(_, p)| p).collect();
    assert_eq!(ports.len(), 200, "a source port shared: {peers:?}");
    let text = d.swctl(&["dump-conntrack"]).expect_ok("dump-conntrack");
    assert!(text.contains(&format!("dst={gw}")), "{text}");
    assert!(text.contains("[SNAT]"), "{text}");

    // A 2 s unreplied-UDP timeout (taken by connections created from now on), for the
    // expiry check below.
    d.swctl(&["set-ct-zone", "1", "timeout.udp_unreplied=2"])
        .expect_ok("set-ct-zone");
    // UDP to a closed port: the server's port unreachable, quoting the translated datagram,
    // comes back translated outer and inner, and the client's socket gets ECONNREFUSED.
    let out = h[0].ns.exec_timeout(
        &["python3", "-c", UDP_REFUSED_CLIENT, &server.ip, "9"],
        Duration::from_secs(10),
    );
    assert_eq!(out.stdout.trim(), "refused", "{out:?}\n{}", d.log_text());

    // Expiry: that entry goes away once idle past its 2 s.
    let udp9 = |d: &Daemon| {
        zone_entries(d, "1")
            .iter()
            .any(|e| e["proto"] == 17 && e["original"]["dport"] == 9)
    };
    assert!(udp9(&d), "the UDP entry is listed first");
    assert!(
        eventually(Duration::from_secs(20), || !udp9(&d)),
        "UDP entry did not expire"
    );
}

#[test]
fn dnat_port_forward() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    // h1: outside client; h2: inside server on :80, published as 10.82.0.100:8080.
    let h = hosts(&lab, 82, 2);
    let d = Daemon::lab("lab-dnat");
    bridge_with_hosts(&d, "br0", &h, None);
    let public = "10.82.0.100";
    let (client, server) = (&h[0], &h[1]);
    client.ns.exec_ok(&[
        "ip", "neigh", "replace", public, "lladdr", GW_MAC, "dev", "eth0",
    ]);
    let fwd = format!(
        "table=1,priority=10,ip,in_port=1,ct_state=+trk+dnat,nw_dst={} \
         actions=mod_dl_dst:{},output:2",
        server.ip, server.mac
    );
    let dnat = format!(
        "table=0,priority=10,tcp,in_port=1,nw_dst={public},tp_dst=8080 \
         actions=ct(commit,zone=2,nat(dst={}:80),table=1)",
        server.ip
    );
    add_flows(
        &d,
        "br0",
        &[
            "table=0,priority=100,arp actions=normal",
            &dnat,
            "table=0,priority=10,ip,in_port=2 actions=ct(zone=2,nat,table=1)",
            "table=0,priority=0 actions=drop",
            &fwd,
            "table=1,priority=10,ip,in_port=2,ct_state=+trk+est actions=output:1",
            "table=1,priority=0 actions=drop",
        ],
    );
    let mut srv = server.ns.spawn(&["python3", "-c", TCP_ONE_ECHO, "80", "5"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let out = client.ns.exec_timeout(
        &[
            "python3",
            "-c",
            TCP_ONE_CLIENT,
            public,
            "8080",
            "port-forwarded",
        ],
        Duration::from_secs(10),
    );
    // `REPLY PEERADDR PEERPORT LOCALPORT`: the reply came from the public address and port.
    assert_eq!(
        out.stdout
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        format!("echo:port-forwarded {public} 8080"),
        "{out:?}\n{}",
        d.log_text()
    );
    let srv_out = srv.wait(Duration::from_secs(10));
    assert!(
        srv_out.stdout.contains(&format!("peer {} ", client.ip)),
        "{srv_out:?}"
    );
    // The entry: original to the public address, reply from the real server.
    let e = zone_entries(&d, "2");
    assert!(
        e.iter().any(|e| e["original"]["dst"] == public
            && e["original"]["dport"] == 8080
            && e["reply"]["src"] == server.ip.as_str()
            && e["reply"]["sport"] == 80
            && e["dnat"] == true),
        "{e:?}"
    );
}

/// A veth pair with both ends in the root namespace (a Linux bridge's uplink to the switch);
/// deleting one end deletes the pair.
struct RootPair(String);

impl Drop for RootPair {
    fn drop(&mut self) {
        let _ = integration::lab::cmd::run(
            &["ip", "link", "del", "dev", &self.0],
            Duration::from_secs(10),
        );
    }
}

/// S5 (seed 003): client and server sit behind the same switch port (a Linux bridge behind
/// it); the client connects to the public address, the switch DNATs to the server and must
/// send the packet back out the port it came in on, to the server's MAC, decided after NAT
/// from the new destination. SNAT in a second zone makes the server answer through the
/// switch too (full hairpin NAT), so the client sees the public address answer.
#[test]
fn hairpin_dnat_back_out_the_ingress_port() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 83, 2);
    let (client, server) = (&h[0], &h[1]);
    let lb = lab.bridge("lb");
    lb.attach(&client.veth);
    lb.attach(&server.veth);
    let (up_lb, up_sw) = (lab.name("ua"), lab.name("ub"));
    integration::lab::cmd::must(&[
        "ip", "link", "add", &up_lb, "type", "veth", "peer", "name", &up_sw,
    ]);
    let _pair = RootPair(up_lb.clone());
    for dev in [&up_lb, &up_sw] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
        integration::lab::cmd::must(&["ip", "link", "set", "dev", dev, "up"]);
    }
    integration::lab::cmd::must(&["ip", "link", "set", "dev", &up_lb, "master", lb.name()]);
    let d = Daemon::lab("lab-hairpin");
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    integration::lab::switch::add_port(&d, "br0", &up_sw, None, Some(1));

    let public = "10.83.0.100";
    for h in [client, server] {
        h.ns.exec_ok(&[
            "ip", "neigh", "replace", public, "lladdr", GW_MAC, "dev", "eth0",
        ]);
    }
    let (c, s) = (&client.ip, &server.ip);
    let flows = [
        // Requests: DNAT (zone 3), then SNAT to the public address (zone 4).
        format!(
            "table=0,priority=10,tcp,nw_dst={public},tp_dst=8080 \
             actions=ct(commit,zone=3,nat(dst={s}:80),table=1)"
        ),
        format!("table=1,priority=10,tcp actions=ct(commit,zone=4,nat(src={public}),table=2)"),
        // L2 from the translated destination, back out the ingress port; from the gateway's
        // MAC, as a router would, or the Linux bridge would learn the client's (server's) MAC
        // on its uplink and never deliver the replies there.
        format!(
            "table=2,priority=10,ip,nw_dst={s} \
             actions=mod_dl_src:{GW_MAC},mod_dl_dst:{},in_port",
            server.mac
        ),
        // Replies to the public address: undo the SNAT, then the DNAT.
        format!(
            "table=0,priority=10,tcp,nw_src={s},tp_src=80,nw_dst={public} \
             actions=ct(zone=4,nat,table=3)"
        ),
        "table=3,priority=10,tcp actions=ct(zone=3,nat,table=4)".to_string(),
        format!(
            "table=4,priority=10,ip,nw_dst={c} \
             actions=mod_dl_src:{GW_MAC},mod_dl_dst:{},in_port",
            client.mac
        ),
        "table=0,priority=0 actions=drop".to_string(),
    ];
    let flows: Vec<&str> = flows.iter().map(String::as_str).collect();
    add_flows(&d, "br0", &flows);

    let mut srv = server.ns.spawn(&["python3", "-c", TCP_ONE_ECHO, "80", "5"]);
    assert!(srv.wait_line(|l| l == "listening", Duration::from_secs(10)));
    let out = client.ns.exec_timeout(
        &[
            "python3",
            "-c",
            TCP_ONE_CLIENT,
            public,
            "8080",
            "port-forwarded",
        ],
        Duration::from_secs(10),
    );
    // `REPLY PEERADDR PEERPORT LOCALPORT`: the reply came from the public address and port.
    assert_eq!(
        out.stdout
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        format!("echo:port-forwarded {public} 8080"),
        "{out:?}\n{}\n{}\n{}\n{}",
        d.log_text(),
        d.swctl(&["dump-flows", "br0"]).expect_ok("dump-flows"),
        d.swctl(&["dump-ports", "br0"]).expect_ok("dump-ports"),
        d.swctl(&["dump-conntrack"]).expect_ok("ct")
    );
    let srv_out = srv.wait(Duration::from_secs(10));
    assert!(
        srv_out.stdout.contains(&format!("peer {public} ")),
        "{srv_out:?}"
    );
}
