//! The S1 lab through our switch: one `vswitchd` per node namespace, in the roles of seed 000.
//!
//! ```text
//!  client ── br-ex ──┬── qg-5d88ef18-33 (ofport 1) [vswitchd, network node] vx-43e (ofport 2)
//!                    │                                   ║ VXLAN VNI 0x43e, 10.0.0.1 <-> 10.0.0.2
//!                    └── ext (ofport 5) [vswitchd, compute node] vx-43e (ofport 3)
//!                                                        tap-vm (ofport 7) ── VM 88.88.88.4
//! ```
//!
//! **Network node = centralized router** (bridge `br-int`): it owns the floating IP
//! (`add-fip br-int 192.168.111.223 88.88.88.4 --mac fa:16:3e:e3:66:3c --mode centralized`) and
//! tracks the client's connections in zone 1, `profile=asym invalid=drop limit=100`
//! ([`network_node_flows`]):
//!
//! | table | match | actions | why |
//! |---|---|---|---|
//! | 0 | `arp,in_port=1` | `fip_arp` | the owner answers ARP for the FIP, nothing else |
//! | 0 | `ip,in_port=1,nw_dst=FIP` | `ct(zone=1,table=1)` | track before translating: the tuple is the client's |
//! | 0 | `ip,in_port=2,tun_id=0x43e,nw_src=VM` | `fip_snat`, MACs qg → client, `dec_ttl`, out qg | whatever the VM sends back this way (a symmetric path, ICMP errors) leaves as the FIP, statelessly |
//! | 1 | `ct_state=+trk+new` | `ct(commit,zone=1)`, `fip_dnat`, MACs qr → VM, `dec_ttl`, `set_tunnel:0x43e`, out the tunnel | a SYN (or a first ping/UDP datagram) opens an entry |
//! | 1 | `ct_state=+trk+est` | the same without commit | one-sided connections are `+est`; `+rel` ICMP errors too |
//! | 0/1 | anything else | drop | `+inv` never gets here: `invalid=drop` drops it inside `ct()` and counts it |
//!
//! The network node has no address for the FIP and no kernel stack behind it: its `qg-` port
//! is an AF_XDP port, every frame goes to the switch, so nothing can answer an invalid ACK
//! with an RST (seed 000's failure). The tests assert it from the namespace's own TCP counters.
//!
//! **Compute node = distributed router** (bridge `br-int`; seed 000's ofports: `tap-vm` is 7,
//! `ext` is 5; the tunnel is 3). Two ways to program it ([`ComputeFlows`]):
//! - [`ComputeFlows::Recipe`], the switch's own: `add-fip ... --mode distributed` (translates,
//!   never claims or answers ARP), tunnel → VM (`tun_id=0x43e,nw_dst=88.88.88.4` → VM MAC,
//!   out `tap-vm`), the VM's ARP for its gateway 88.88.88.1 answered locally with the router
//!   MAC (a responder like seed table 20), and VM → outside: `fip_snat`, MACs (compute's
//!   external MAC → client), `dec_ttl`, out `ext`.
//! - [`ComputeFlows::Seed`]: seed 000's OpenDaylight flows for tables 20–100, loaded verbatim
//!   ([`crate::SEED_000_FLOWS`]), plus the glue ODL's other tables would have had
//!   ([`SEED_GLUE`], each line explained there). Table 100 is the distributed SNAT itself:
//!   `set_field:192.168.111.223->ip_src`, MACs, `dec_ttl`, `output:5`.
//!
//! Either way the VM's replies leave through the compute node's `ext` already translated to
//! the FIP and never cross the network node, which sees only the client's half of each
//! connection: its entries are `[ONE_SIDED]`.

use super::{
    S1Lab, CLIENT_IP, CLIENT_MAC, CMP_EXT, CMP_EXT_MAC, CMP_UNDERLAY_IP, CMP_VM, FIP, NET_EXT,
    NET_UNDERLAY_IP, QG_MAC, QR_MAC, START_TIMEOUT, TENANT_GW, VM_IP, VM_MAC, VNI,
};
use crate::lab::netns::Netns;
use crate::lab::scripts::{RAW_TCP, UDP_ECHO_SERVER};
use crate::Daemon;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The bridge on both nodes.
pub const BRIDGE: &str = "br-int";
/// The VXLAN port's (logical) name on both nodes.
pub const VX_NAME: &str = "vx-43e";
/// Network node: ofport of `qg-5d88ef18-33`.
pub const NET_QG_OFPORT: u16 = 1;
/// Network node: ofport of the tunnel.
pub const NET_VX_OFPORT: u16 = 2;
/// Compute node: ofport of `ext` (seed 000's `output:5`).
pub const CMP_EXT_OFPORT: u16 = 5;
/// Compute node: ofport of `tap-vm` (seed 000's `in_port=7`).
pub const CMP_VM_OFPORT: u16 = 7;
/// Compute node: ofport of the tunnel.
pub const CMP_VX_OFPORT: u16 = 3;
/// The network node's conntrack zone for the floating IP.
pub const CT_ZONE: u16 = 1;
/// Its entry limit: above the lab's normal traffic (50 connections, pings, UDP), far below
/// the SYN flood.
pub const CT_LIMIT: u64 = 100;

/// How the compute node is programmed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeFlows {
    /// The switch's own recipe: `add-fip --mode distributed` and `fip_snat`.
    Recipe,
    /// Seed 000's ODL flows (tables 20–100) verbatim, plus [`SEED_GLUE`].
    Seed,
}

impl ComputeFlows {
    /// A short name for logs and test prefixes.
    pub fn name(self) -> &'static str {
        match self {
            ComputeFlows::Recipe => "recipe",
            ComputeFlows::Seed => "seed",
        }
    }
}

fn mac_hex(mac: &str) -> String {
    format!("0x{}", mac.replace(':', ""))
}

fn ip_hex(ip: &str) -> String {
    let o: Vec<u8> = ip.split('.').map(|b| b.parse().expect("IPv4")).collect();
    format!("0x{:02x}{:02x}{:02x}{:02x}", o[0], o[1], o[2], o[3])
}

/// The actions of seed 000's table-20 ARP responder, for the tenant gateway 88.88.88.1 and
/// the router MAC (the `qr-` MAC, which seed table 100 expects as the VM's frames'
/// destination).
fn gateway_arp_reply() -> String {
    format!(
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{QR_MAC}->eth_src,\
         load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],\
         move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:{}->NXM_NX_ARP_SHA[],\
         load:{}->NXM_OF_ARP_SPA[],IN_PORT",
        mac_hex(QR_MAC),
        ip_hex(TENANT_GW)
    )
}

/// The network node's flows (see the module docs' table).
pub fn network_node_flows() -> Vec<String> {
    let (qg, vx, z) = (NET_QG_OFPORT, NET_VX_OFPORT, CT_ZONE);
    let to_vm = format!(
        "fip_dnat,set_field:{QR_MAC}->eth_src,set_field:{VM_MAC}->eth_dst,dec_ttl,\
         set_tunnel:{VNI:#x},output:{vx}"
    );
    vec![
        format!("table=0,priority=100,arp,in_port={qg} actions=fip_arp"),
        format!("table=0,priority=50,ip,in_port={qg},nw_dst={FIP} actions=ct(zone={z},table=1)"),
        format!(
            "table=0,priority=50,ip,in_port={vx},tun_id={VNI:#x},nw_src={VM_IP} \
             actions=fip_snat,set_field:{QG_MAC}->eth_src,set_field:{CLIENT_MAC}->eth_dst,\
             dec_ttl,output:{qg}"
        ),
        "table=0,priority=0 actions=drop".to_owned(),
        format!("table=1,priority=10,ip,ct_state=+trk+new actions=ct(commit,zone={z}),{to_vm}"),
        format!("table=1,priority=10,ip,ct_state=+trk+est actions={to_vm}"),
        format!("table=1,priority=10,ip,ct_state=+trk+rel actions={to_vm}"),
        "table=1,priority=0 actions=drop".to_owned(),
    ]
}

/// The glue [`ComputeFlows::Seed`] adds around seed 000's tables 20–100: what ODL's legacy
/// netvirt pipeline (0 classifier, 20 ARP responder, 30 inbound NAT, 40 egress ACL, 50–60,
/// 70 L3 forwarding, 80–90, 100 outbound NAT, 110 L2 forwarding) had in the tables the seed
/// did not quote (it quoted only the lines mentioning 88.4). Placeholders: `{VM}`, `{EXT}`,
/// `{VX}` (ofports), `{GW_ARP}` (the responder's actions).
pub const SEED_GLUE: &[(&str, &str)] = &[
    (
        "table=0,priority=100,in_port={VM},dl_src=fa:16:3e:4b:eb:3c \
         actions=set_field:0x43e->tun_id,goto_table:20",
        "classifier: the VM's port belongs to VNI 0x43e; ODL marks it in tun_id, which seed \
         tables 20/70/100 match",
    ),
    (
        "table=0,priority=100,in_port={VX},tun_id=0x43e actions=goto_table:20",
        "classifier: from the tunnel, tun_id is already the packet's VNI",
    ),
    (
        "table=0,priority=0 actions=drop",
        "anything else (the external port's traffic is the FIP owner's, the network node's: \
         seed table 30 stays unused here, n_packets=0 as in the seed's dump)",
    ),
    (
        "table=20,priority=1024,arp,tun_id=0x43e,arp_tpa=88.88.88.1,arp_op=1 actions={GW_ARP}",
        "the tenant gateway's ARP answered locally, like seed table 20 does for the VM: the \
         VM's next hop gets the router MAC fa:16:3e:91:5f:a0, which seed table 100 matches",
    ),
    ("table=20,priority=0 actions=goto_table:30", "next table"),
    ("table=30,priority=0 actions=goto_table:40", "next table"),
    (
        "table=40,priority=1,in_port={VM} actions=drop",
        "port security: the VM's frames pass only with its own MAC and IP (seed table 40)",
    ),
    ("table=40,priority=0 actions=goto_table:50", "next table"),
    ("table=50,priority=0 actions=goto_table:60", "next table"),
    ("table=60,priority=0 actions=goto_table:70", "next table"),
    ("table=70,priority=0 actions=goto_table:80", "next table"),
    ("table=80,priority=0 actions=goto_table:90", "next table"),
    ("table=90,priority=0 actions=goto_table:100", "next table"),
    ("table=100,priority=0 actions=goto_table:110", "next table"),
    (
        "table=110,priority=100,tun_id=0x43e,dl_dst=fa:16:3e:4b:eb:3c actions=output:{VM}",
        "L2 forwarding: frames for the VM's MAC on its VNI (seed table 70 wrote that MAC)",
    ),
    (
        "table=110,priority=0 actions=drop",
        "nothing else is delivered",
    ),
];

/// [`SEED_GLUE`] with its placeholders filled in: (flow, why).
pub fn seed_glue() -> Vec<(String, &'static str)> {
    SEED_GLUE
        .iter()
        .map(|(f, why)| {
            let f = f
                .replace("{VM}", &CMP_VM_OFPORT.to_string())
                .replace("{EXT}", &CMP_EXT_OFPORT.to_string())
                .replace("{VX}", &CMP_VX_OFPORT.to_string())
                .replace("{GW_ARP}", &gateway_arp_reply());
            (f, *why)
        })
        .collect()
}

/// The compute node's flows for `how` (see the module docs).
pub fn compute_node_flows(how: ComputeFlows) -> Vec<String> {
    let (vm, ext, vx) = (CMP_VM_OFPORT, CMP_EXT_OFPORT, CMP_VX_OFPORT);
    match how {
        ComputeFlows::Recipe => vec![
            format!(
                "table=0,priority=100,arp,in_port={vm},arp_op=1,arp_tpa={TENANT_GW} actions={}",
                gateway_arp_reply()
            ),
            format!(
                "table=0,priority=50,ip,in_port={vx},tun_id={VNI:#x},nw_dst={VM_IP} \
                 actions=set_field:{VM_MAC}->eth_dst,output:{vm}"
            ),
            format!(
                "table=0,priority=50,ip,in_port={vm},dl_src={VM_MAC},dl_dst={QR_MAC},\
                 nw_src={VM_IP} actions=fip_snat,set_field:{CMP_EXT_MAC}->eth_src,\
                 set_field:{CLIENT_MAC}->eth_dst,dec_ttl,output:{ext}"
            ),
            "table=0,priority=0 actions=drop".to_owned(),
        ],
        ComputeFlows::Seed => {
            let mut flows: Vec<String> = crate::SEED_000_FLOWS
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            flows.extend(seed_glue().into_iter().map(|(f, _)| f));
            flows
        }
    }
}

/// The two daemons of the lab. Dropped before the [`S1Lab`] (declare it after the lab).
pub struct S1Switches {
    /// The network node's `vswitchd`.
    pub net: Daemon,
    /// The compute node's `vswitchd`.
    pub cmp: Daemon,
    /// How the compute node is programmed.
    pub how: ComputeFlows,
}

fn node_daemon(test: &str, node: &Netns, etcd: Option<(&str, &str)>) -> Daemon {
    let mut b = Daemon::builder(test)
        .netns(node.name())
        .log_level("info")
        .with_db()
        .workers(1)
        .idle("sleep");
    if let Some((url, node_id)) = etcd {
        b = b
            .option("--etcd", url)
            .option("--node-id", node_id)
            .option("--lease-ttl", "2");
    }
    b.start()
}

fn swctl_ok(d: &Daemon, args: &[&str]) {
    d.swctl(args).expect_ok(&args.join(" "));
}

fn add_flows(d: &Daemon, flows: &[String]) {
    d.swctl_stdin(&["add-flows", BRIDGE, "-"], &flows.join("\n"))
        .expect_ok("add-flows");
}

impl S1Switches {
    /// Start one `vswitchd` in each node namespace of `s1` and program both nodes (`test`
    /// names the daemons' temp dirs).
    pub fn start(s1: &S1Lab, test: &str, how: ComputeFlows) -> S1Switches {
        S1Switches::start_with(s1, test, how, None)
    }

    /// [`S1Switches::start`] with both daemons claiming floating IPs through the etcd at
    /// `etcd` (`--etcd URL --node-id net|cmp --lease-ttl 2`) when given.
    pub fn start_with(s1: &S1Lab, test: &str, how: ComputeFlows, etcd: Option<&str>) -> S1Switches {
        let net = node_daemon(&format!("{test}-net"), &s1.net, etcd.map(|u| (u, "net")));
        let cmp = node_daemon(&format!("{test}-cmp"), &s1.cmp, etcd.map(|u| (u, "cmp")));
        let sw = S1Switches { net, cmp, how };

        // Network node.
        let d = &sw.net;
        swctl_ok(d, &["add-br", BRIDGE]);
        swctl_ok(
            d,
            &[
                "add-port",
                BRIDGE,
                NET_EXT,
                "--ofport",
                &NET_QG_OFPORT.to_string(),
            ],
        );
        swctl_ok(
            d,
            &[
                "add-port",
                BRIDGE,
                VX_NAME,
                "--type",
                "vxlan",
                "--local",
                NET_UNDERLAY_IP,
                "--remote",
                CMP_UNDERLAY_IP,
                "--key",
                "flow",
                "--ofport",
                &NET_VX_OFPORT.to_string(),
            ],
        );
        swctl_ok(
            d,
            &[
                "add-fip",
                BRIDGE,
                FIP,
                VM_IP,
                "--mac",
                QG_MAC,
                "--mode",
                "centralized",
            ],
        );
        swctl_ok(
            d,
            &[
                "set-ct-zone",
                &CT_ZONE.to_string(),
                "profile=asym",
                "invalid=drop",
                &format!("limit={CT_LIMIT}"),
            ],
        );
        add_flows(d, &network_node_flows());

        // Compute node.
        let d = &sw.cmp;
        swctl_ok(d, &["add-br", BRIDGE]);
        for (iface, ofport) in [(CMP_VM, CMP_VM_OFPORT), (CMP_EXT, CMP_EXT_OFPORT)] {
            swctl_ok(
                d,
                &["add-port", BRIDGE, iface, "--ofport", &ofport.to_string()],
            );
        }
        swctl_ok(
            d,
            &[
                "add-port",
                BRIDGE,
                VX_NAME,
                "--type",
                "vxlan",
                "--local",
                CMP_UNDERLAY_IP,
                "--remote",
                NET_UNDERLAY_IP,
                "--key",
                &format!("{VNI:#x}"),
                "--ofport",
                &CMP_VX_OFPORT.to_string(),
            ],
        );
        if how == ComputeFlows::Recipe {
            swctl_ok(d, &["add-fip", BRIDGE, FIP, VM_IP, "--mode", "distributed"]);
        }
        add_flows(d, &compute_node_flows(how));
        sw
    }

    /// Both daemons' logs, for assertion messages.
    pub fn logs(&self) -> String {
        format!(
            "--- network node vswitchd ---\n{}\n--- compute node vswitchd ({}) ---\n{}",
            self.net.log_text(),
            self.how.name(),
            self.cmp.log_text()
        )
    }
}

/// `swctl ARGS --json` on `d`, parsed.
pub fn json(d: &Daemon, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.push("--json");
    let out = d.swctl(&full).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {out}"))
}

/// A `name -> count` object as a map.
pub fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The network node's zone ([`CT_ZONE`]) as `conntrack-stats --json` lists it.
pub fn ct_zone(net: &Daemon) -> Value {
    let st = json(net, &["conntrack-stats"]);
    st["zones"]
        .as_array()
        .and_then(|z| z.iter().find(|z| z["zone"] == CT_ZONE).cloned())
        .unwrap_or_else(|| panic!("zone {CT_ZONE} in {st}"))
}

/// A conntrack event counter (`early_drop`, `one_sided_established`, ...).
pub fn ct_event(d: &Daemon, name: &str) -> u64 {
    json(d, &["conntrack-stats"])["events"][name]
        .as_u64()
        .unwrap_or(0)
}

/// The network node's zone entries (`dump-conntrack --zone 1 --json`).
pub fn ct_entries(net: &Daemon) -> Vec<Value> {
    json(net, &["dump-conntrack", "--zone", &CT_ZONE.to_string()])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A namespace's kernel TCP counters (`/proc/net/snmp` is per namespace): `InSegs`,
/// `OutRsts`, `ActiveOpens`, ...
pub fn tcp_counters(ns: &Netns) -> BTreeMap<String, u64> {
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

/// The VM's server for [`transfers`]: accept `count` connections one after the other on
/// 88.88.88.4:22. Each starts with a 12-byte header (seed, bytes up, bytes down); the server
/// reads the client's bytes to EOF, checks them against the seed's, sends its own bytes and
/// closes. One line per connection: `conn SEED PEER UP_OK`.
const TRANSFER_SERVER: &str = r#"
import socket, sys, struct, random, hashlib
addr, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(8); s.settimeout(timeout)
print("listening", flush=True)
for _ in range(count):
    try:
        c, peer = s.accept()
    except socket.timeout:
        print("no connection", flush=True); break
    c.settimeout(timeout)
    try:
        hdr = b""
        while len(hdr) < 12:
            b = c.recv(12 - len(hdr))
            if not b:
                break
            hdr += b
        seed, up, down = struct.unpack("!III", hdr)
        h = hashlib.sha256(); got = 0
        while True:
            b = c.recv(65536)
            if not b:
                break
            h.update(b); got += len(b)
        want = hashlib.sha256(random.Random(seed).randbytes(up)).hexdigest()
        c.sendall(random.Random(seed + 1).randbytes(down))
        c.close()
        print("conn", seed, peer[0], "ok" if (got == up and h.hexdigest() == want) else "bad:%d" % got, flush=True)
    except Exception as e:
        print("conn error", type(e).__name__, flush=True)
        c.close()
"#;

/// The client for [`transfers`]: one connection per (seed, up, down) given as `seed:up:down`
/// arguments, each to ADDR:PORT; prints `conn SEED ok MS` or `conn SEED fail WHY`.
const TRANSFER_CLIENT: &str = r#"
import socket, sys, struct, random, hashlib, time
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for spec in sys.argv[4:]:
    seed, up, down = (int(x) for x in spec.split(":"))
    t0 = time.monotonic()
    try:
        s = socket.create_connection((addr, port), timeout=timeout)
        peer = s.getpeername()[0]
        s.sendall(struct.pack("!III", seed, up, down) + random.Random(seed).randbytes(up))
        s.shutdown(socket.SHUT_WR)
        h = hashlib.sha256(); got = 0
        while True:
            b = s.recv(65536)
            if not b:
                break
            h.update(b); got += len(b)
        s.close()
        ok = got == down and h.hexdigest() == hashlib.sha256(random.Random(seed + 1).randbytes(down)).hexdigest()
        ms = int((time.monotonic() - t0) * 1000)
        print("conn", seed, ("ok %d" % ms) if ok and peer == addr else "fail got=%d peer=%s" % (got, peer), flush=True)
    except Exception as e:
        print("conn", seed, "fail", type(e).__name__, flush=True)
"#;

/// What [`transfers`] saw.
#[derive(Debug)]
pub struct Transfers {
    /// Connections that carried both directions intact and closed (client side).
    pub ok: usize,
    /// Connections the server checked (client's bytes intact, peer the client's address).
    pub server_ok: usize,
    /// Milliseconds of each successful connection (client side).
    pub ms: Vec<u64>,
    /// Both sides' output.
    pub log: String,
}

/// Run `sizes.len()` TCP connections from the client to FIP:22, one after the other, the
/// i-th carrying `sizes[i]` bytes each way (a listener on the VM serves them all). Each
/// connection is bounded by `timeout` per blocking step; the whole run by the sum.
pub fn transfers(s1: &S1Lab, sizes: &[usize], timeout: Duration) -> Transfers {
    let secs = timeout.as_secs_f64().to_string();
    let port = super::SSH_PORT.to_string();
    let count = sizes.len().to_string();
    let mut server = s1.vm.spawn(&[
        "python3",
        "-c",
        TRANSFER_SERVER,
        VM_IP,
        &port,
        &count,
        &secs,
    ]);
    assert!(
        server.wait_line(|l| l == "listening", START_TIMEOUT),
        "the VM's server did not start: {:?}",
        server.lines()
    );
    let specs: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{}:{n}:{n}", 1000 + i))
        .collect();
    let mut argv = vec!["python3", "-c", TRANSFER_CLIENT, FIP, &port, &secs];
    argv.extend(specs.iter().map(String::as_str));
    let bound = timeout * (3 * sizes.len() as u32 + 1);
    let client = s1.client.exec_timeout(&argv, bound);
    let server = server.wait(timeout + Duration::from_secs(5));
    let ok_lines = |out: &str, word: &str| {
        out.lines()
            .filter(|l| l.starts_with("conn ") && l.split_whitespace().nth(2) == Some(word))
            .count()
    };
    let ms = client
        .stdout
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4 && w[2] == "ok").then(|| w[3].parse().ok())?
        })
        .collect();
    let server_ok = server
        .stdout
        .lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() == 4 && w[0] == "conn" && w[2] == CLIENT_IP && w[3] == "ok"
        })
        .count();
    Transfers {
        ok: ok_lines(&client.stdout, "ok"),
        server_ok,
        ms,
        log: format!(
            "client: {}{}\nserver: {}{}",
            client.stdout, client.stderr, server.stdout, server.stderr
        ),
    }
}

/// Client for [`udp_to_fip`]: a connected socket (so only answers from the FIP count), each
/// datagram waiting up to 1 s for its echo; prints how many came back intact.
const UDP_CLIENT: &str = r#"
import socket, sys
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((addr, port)); s.settimeout(1.0)
ok = 0
for i in range(count):
    msg = b"s1-udp-%06d" % i + bytes(200)
    try:
        s.send(msg)
        while True:
            if s.recv(65536) == msg:
                ok += 1
                break
    except OSError:
        pass
print(ok, flush=True)
"#;

/// The UDP port [`udp_to_fip`] uses on the VM.
pub const UDP_PORT: u16 = 5001;

/// `count` UDP datagrams from the client to FIP:[`UDP_PORT`], echoed by the VM; how many
/// echoes came back (from the FIP: the client's socket is connected to it).
pub fn udp_to_fip(s1: &S1Lab, count: u32) -> u32 {
    let port = UDP_PORT.to_string();
    let mut srv = s1
        .vm
        .spawn(&["python3", "-c", UDP_ECHO_SERVER, VM_IP, &port, "3", "15"]);
    assert!(
        srv.wait_line(|l| l == "ready", START_TIMEOUT),
        "UDP echo server did not start"
    );
    let out = s1.client.exec_timeout(
        &["python3", "-c", UDP_CLIENT, FIP, &port, &count.to_string()],
        Duration::from_secs(5 + u64::from(count)),
    );
    drop(srv.wait(Duration::from_secs(5)));
    out.stdout.trim().parse().unwrap_or(0)
}

/// TCP flag: SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag: ACK.
pub const TCP_ACK: u8 = 0x10;

/// Send `count` raw TCP segments with `flags` from the client to FIP:`dport` (source ports
/// from `sport` on).
pub fn raw_tcp_to_fip(s1: &S1Lab, sport: u16, dport: u16, flags: u8, count: u32) {
    s1.client.exec_ok(&[
        "python3",
        "-c",
        RAW_TCP,
        CLIENT_IP,
        FIP,
        &sport.to_string(),
        &dport.to_string(),
        &flags.to_string(),
        &count.to_string(),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_in() {
        // The flows themselves are parsed by `swctl parse-flow` in lab_s1_switch.rs (no root
        // needed) and loaded by the lab; here only that no placeholder was left.
        for how in [ComputeFlows::Recipe, ComputeFlows::Seed] {
            for f in compute_node_flows(how) {
                assert!(!f.contains('{'), "{f}");
            }
        }
        assert_eq!(ip_hex("88.88.88.1"), "0x58585801");
        assert_eq!(mac_hex(QR_MAC), "0xfa163e915fa0");
        assert!(network_node_flows().iter().all(|f| !f.contains('{')));
    }
}
