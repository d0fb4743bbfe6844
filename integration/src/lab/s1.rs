//! The S1 lab (`shared/scenarios.md`, seeds 000/001): a floating IP served on two paths.
//!
//! ```text
//!  client ns                  ext ns (the external network): bridge br-ex
//!  eth0 192.168.111.210 ────── to-client
//!       2c:ab:00:9a:04:37      to-net ──────────────┐     to-cmp ─────────────────┐
//!                                                   │                             │
//!  network node ns                                  │     compute node ns         │
//!  qg-5d88ef18-33 fa:16:3e:e3:66:3c ────────────────┘     ext fa:16:3e:74:db:c7 ──┘
//!  ul 10.0.0.1/24 ═══════════ underlay veth ══════════════ ul 10.0.0.2/24
//!                                                          tap-vm ── eth0 88.88.88.4/24 (VM ns)
//!                                                                    fa:16:3e:4b:eb:3c
//! ```
//!
//! [`S1Lab::new`] builds only what does not depend on who drives the two nodes: the five
//! namespaces (per-test names from [`Lab`]), the links, the client's and the VM's addresses
//! (the VM's default route is the tenant gateway 88.88.88.1), the underlay addresses, and the
//! seed's MACs on the nodes' external links. The nodes' own behaviour is configured apart:
//! [`configure_linux`] makes them plain Linux (this is the negative control), and the same
//! namespaces and interface names ([`S1Lab::network_node`], [`NET_EXT`], [`NET_UNDERLAY`],
//! [`CMP_EXT`], [`CMP_UNDERLAY`], [`CMP_VM`]) are where one `vswitchd` per node will be
//! started instead, with those interfaces as its ports.
//!
//! The plain-Linux roles, as in the seed:
//! - network node (Neutron's `qrouter-` namespace): holds the floating IP
//!   `192.168.111.223/32` on `qg-5d88ef18-33` and the tenant gateway `88.88.88.1/24` on
//!   `qr-dcedd015-a5`, which here is the kernel VXLAN device itself (VNI 0x43e over the
//!   underlay; MTU 1450 as in the seed); nftables DNATs FIP → VM and SNATs VM → FIP with
//!   conntrack, like the L3 agent's iptables rules;
//! - compute node: the tenant network is a Linux bridge `br-int` joining the VM's `tap-vm`
//!   and a VXLAN device (VNI 0x43e). With [`Routing::Asymmetric`] it also plays
//!   OpenDaylight's distributed router (flow table 100 of seed 000): an nftables `netdev`
//!   ingress chain on `tap-vm` takes the VM's IPv4 frames for the router's MAC bound outside
//!   the tenant subnet, rewrites the source to the floating IP and the MACs exactly as that
//!   flow does, and forwards them straight out of `ext`. The packets never enter the compute
//!   node's IP stack, so no conntrack sees them there: the stateless SNAT (`notrack`) of the
//!   issue, without any routing decision to bypass. (`dec_ttl` is left out: nftables has no
//!   arithmetic on header fields, and nothing here depends on the TTL.)
//!   With [`Routing::Symmetric`] the compute node only bridges, and the VM's replies go back
//!   through the network node, which is the control that shows the lab itself is sound.

use super::cmd::{must, run, Spawned};
use super::names::Lab;
use super::netns::Netns;
use std::time::{Duration, Instant};

pub mod switches;

/// The external client (the seed's `192.168.111.210`).
pub const CLIENT_IP: &str = "192.168.111.210";
/// The client's MAC: the destination MAC seed 000's SNAT flow writes (`2c:ab:00:9a:04:37`).
pub const CLIENT_MAC: &str = "2c:ab:00:9a:04:37";
/// The floating IP.
pub const FIP: &str = "192.168.111.223";
/// The external network.
pub const EXT_CIDR: &str = "192.168.111.0/24";
/// The VM's tenant address.
pub const VM_IP: &str = "88.88.88.4";
/// The VM's MAC (seed 000's ARP responder and table 40/70 flows).
pub const VM_MAC: &str = "fa:16:3e:4b:eb:3c";
/// The tenant network.
pub const TENANT_CIDR: &str = "88.88.88.0/24";
/// The tenant gateway, held by the network node's `qr-` port.
pub const TENANT_GW: &str = "88.88.88.1";
/// MAC of the network node's `qr-dcedd015-a5` (seed 000).
pub const QR_MAC: &str = "fa:16:3e:91:5f:a0";
/// MAC of the network node's `qg-5d88ef18-33` (seed 000).
pub const QG_MAC: &str = "fa:16:3e:e3:66:3c";
/// MAC the compute node's distributed router sends from on the external network (seed 000,
/// table 100: `set_field:fa:16:3e:74:db:c7->eth_src`).
pub const CMP_EXT_MAC: &str = "fa:16:3e:74:db:c7";
/// The tenant network's VXLAN network identifier (`tun_id=0x43e`).
pub const VNI: u32 = 0x43e;
/// VXLAN's UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// Tenant-network MTU (the seed's `qr-` port: 1500 less the VXLAN overhead).
pub const TENANT_MTU: u32 = 1450;
/// The network node's underlay address.
pub const NET_UNDERLAY_IP: &str = "10.0.0.1";
/// The compute node's underlay address.
pub const CMP_UNDERLAY_IP: &str = "10.0.0.2";
/// The port the VM listens on (ssh).
pub const SSH_PORT: u16 = 22;

/// Network node: external link (the seed's `qg-` port name).
pub const NET_EXT: &str = "qg-5d88ef18-33";
/// Network node: the underlay link to the compute node.
pub const NET_UNDERLAY: &str = "ul";
/// Network node, plain Linux: the tenant-side port (the seed's `qr-` name), a VXLAN device.
pub const NET_QR: &str = "qr-dcedd015-a5";
/// Compute node: external link (OpenFlow port 5 in seed 000).
pub const CMP_EXT: &str = "ext";
/// Compute node: the underlay link to the network node.
pub const CMP_UNDERLAY: &str = "ul";
/// Compute node: the VM's link (OpenFlow port 7 in seed 000).
pub const CMP_VM: &str = "tap-vm";
/// Compute node, plain Linux: the tenant bridge.
pub const CMP_BRIDGE: &str = "br-int";
/// Compute node, plain Linux: its VXLAN device.
pub const CMP_VXLAN: &str = "vxlan-43e";
/// The client's and the VM's interface.
pub const HOST_IF: &str = "eth0";
/// The external network's bridge (in the ext namespace).
pub const EXT_BRIDGE: &str = "br-ex";
/// The external network's ports towards client, network node and compute node.
pub const EXT_TO_CLIENT: &str = "to-client";
/// See [`EXT_TO_CLIENT`].
pub const EXT_TO_NET: &str = "to-net";
/// See [`EXT_TO_CLIENT`].
pub const EXT_TO_CMP: &str = "to-cmp";

/// Name of the nftables table [`configure_linux`] creates on each node.
pub const NFT_TABLE: &str = "s1";
/// The network node's named counter of the client's bare ACKs that conntrack judged invalid.
pub const NFT_INVALID_ACKS: &str = "invalid_acks";
/// The compute node's named counter of frames its distributed SNAT sent out (asymmetric).
pub const NFT_BYPASSED: &str = "bypassed";

/// Bound for a capture or watcher to start, and for the evidence a test waits for.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A veth pair between two lab namespaces, deleted on drop (deleting one end takes both;
/// when a namespace went first the pair is already gone).
#[derive(Debug)]
pub struct NsLink {
    ns_a: String,
    a: String,
}

impl NsLink {
    /// `a` in `ns_a` paired with `b` in `ns_b`, both up, offloads off on both ends (complete
    /// checksums, frames no larger than the MTU: what an AF_XDP port on either end needs, see
    /// `shared/notes/afxdp-on-veth.md`), MACs set when given.
    pub fn new(
        ns_a: &Netns,
        a: &str,
        mac_a: Option<&str>,
        ns_b: &Netns,
        b: &str,
        mac_b: Option<&str>,
    ) -> NsLink {
        must(&[
            "ip",
            "-n",
            ns_a.name(),
            "link",
            "add",
            a,
            "type",
            "veth",
            "peer",
            "name",
            b,
            "netns",
            ns_b.name(),
        ]);
        let link = NsLink {
            ns_a: ns_a.name().to_owned(),
            a: a.to_owned(),
        };
        for (ns, end, mac) in [(ns_a, a, mac_a), (ns_b, b, mac_b)] {
            if let Some(mac) = mac {
                must(&[
                    "ip",
                    "-n",
                    ns.name(),
                    "link",
                    "set",
                    "dev",
                    end,
                    "address",
                    mac,
                ]);
            }
            ns.exec_ok(&[
                "ethtool", "-K", end, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
            ]);
            must(&["ip", "-n", ns.name(), "link", "set", "dev", end, "up"]);
        }
        link
    }
}

impl Drop for NsLink {
    fn drop(&mut self) {
        let _ = run(
            &["ip", "-n", &self.ns_a, "link", "del", "dev", &self.a],
            Duration::from_secs(10),
        );
    }
}

/// The S1 topology: namespaces and links (see the module docs). Dropping it removes
/// everything, processes left inside the namespaces included.
#[derive(Debug)]
pub struct S1Lab {
    // Links first: fields drop in order, and a link's guard needs its namespace.
    links: Vec<NsLink>,
    /// The external client.
    pub client: Netns,
    /// The external network (bridge `br-ex`).
    pub ext: Netns,
    /// The network node (plain Linux: Neutron's `qrouter-` namespace).
    pub net: Netns,
    /// The compute node.
    pub cmp: Netns,
    /// The VM.
    pub vm: Netns,
}

impl S1Lab {
    /// Build the topology under `lab`'s prefix (namespaces `<prefix>-cl`, `-ext`, `-net`,
    /// `-cmp`, `-vm`). Nothing is configured inside the two nodes beyond link MACs and
    /// underlay addresses.
    pub fn new(lab: &Lab) -> S1Lab {
        let mut s1 = S1Lab {
            links: Vec::new(),
            client: lab.netns("cl"),
            ext: lab.netns("ext"),
            net: lab.netns("net"),
            cmp: lab.netns("cmp"),
            vm: lab.netns("vm"),
        };
        // The external network: a bridge in its own namespace (nothing in the root one).
        let ext = s1.ext.name().to_owned();
        must(&[
            "ip",
            "-n",
            &ext,
            "link",
            "add",
            EXT_BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
        ]);
        bridge_without_netfilter(&s1.ext, EXT_BRIDGE);
        must(&["ip", "-n", &ext, "link", "set", EXT_BRIDGE, "up"]);

        let links = vec![
            NsLink::new(
                &s1.client,
                HOST_IF,
                Some(CLIENT_MAC),
                &s1.ext,
                EXT_TO_CLIENT,
                None,
            ),
            NsLink::new(&s1.net, NET_EXT, Some(QG_MAC), &s1.ext, EXT_TO_NET, None),
            NsLink::new(
                &s1.cmp,
                CMP_EXT,
                Some(CMP_EXT_MAC),
                &s1.ext,
                EXT_TO_CMP,
                None,
            ),
            NsLink::new(&s1.net, NET_UNDERLAY, None, &s1.cmp, CMP_UNDERLAY, None),
            NsLink::new(&s1.vm, HOST_IF, Some(VM_MAC), &s1.cmp, CMP_VM, None),
        ];
        s1.links = links;
        for port in [EXT_TO_CLIENT, EXT_TO_NET, EXT_TO_CMP] {
            must(&["ip", "-n", &ext, "link", "set", port, "master", EXT_BRIDGE]);
        }

        let cl = s1.client.name();
        must(&[
            "ip",
            "-n",
            cl,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            HOST_IF,
        ]);
        let vm = s1.vm.name();
        must(&[
            "ip",
            "-n",
            vm,
            "link",
            "set",
            HOST_IF,
            "mtu",
            &TENANT_MTU.to_string(),
        ]);
        must(&[
            "ip",
            "-n",
            vm,
            "addr",
            "add",
            &format!("{VM_IP}/24"),
            "dev",
            HOST_IF,
        ]);
        must(&["ip", "-n", vm, "route", "add", "default", "via", TENANT_GW]);
        for (ns, ip, dev) in [
            (&s1.net, NET_UNDERLAY_IP, NET_UNDERLAY),
            (&s1.cmp, CMP_UNDERLAY_IP, CMP_UNDERLAY),
        ] {
            must(&[
                "ip",
                "-n",
                ns.name(),
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                dev,
            ]);
            // Each direction of a connection may enter a node by another interface than the
            // one its reverse route leaves by: that is the scenario, so no reverse-path filter.
            for conf in ["all", "default"] {
                ns.exec_ok(&[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.conf.{conf}.rp_filter=0"),
                ]);
            }
        }
        s1
    }

    /// The network node's namespace (where its `vswitchd` runs in the switch variant).
    pub fn network_node(&self) -> &Netns {
        &self.net
    }

    /// The compute node's namespace.
    pub fn compute_node(&self) -> &Netns {
        &self.cmp
    }
}

/// A bridge's frames must not be seen by the namespace's own netfilter (`br_netfilter`, when
/// another program loaded it): the nodes' rules are for routed packets only.
fn bridge_without_netfilter(ns: &Netns, bridge: &str) {
    let _ = ns.exec(&[
        "ip",
        "link",
        "set",
        "dev",
        bridge,
        "type",
        "bridge",
        "nf_call_iptables",
        "0",
        "nf_call_ip6tables",
        "0",
        "nf_call_arptables",
        "0",
    ]);
}

/// Which way the VM's replies leave the compute node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The seed: the compute node SNATs them statelessly and sends them straight to the
    /// external network; the network node sees only the client's half of the connection.
    Asymmetric,
    /// The control: they go back through the tunnel to the network node, which un-NATs them.
    Symmetric,
}

/// The network node's nftables ruleset: Neutron's floating-IP rules (DNAT in, SNAT out), and a
/// counter of the client's bare ACKs (no SYN, no RST) that conntrack judged invalid — the
/// ACK of seed 000 that got no DNAT and was answered with an RST.
fn network_node_ruleset() -> String {
    format!(
        "table ip {NFT_TABLE} {{
  counter {NFT_INVALID_ACKS} {{ }}
  chain floating_ip_dnat {{
    type nat hook prerouting priority dstnat;
    ip daddr {FIP} dnat to {VM_IP}
  }}
  chain floating_ip_snat {{
    type nat hook postrouting priority srcnat;
    ip saddr {VM_IP} oifname \"{NET_EXT}\" snat to {FIP}
  }}
  chain invalid {{
    type filter hook prerouting priority mangle;
    ct state invalid ip saddr {CLIENT_IP} tcp flags & (syn | rst | ack) == ack counter name {NFT_INVALID_ACKS}
  }}
}}
"
    )
}

/// The compute node's distributed router for [`Routing::Asymmetric`]: seed 000's table 100
/// (`ip,tun_id=0x43e,dl_dst=<qr MAC>,nw_src=88.88.88.4 actions=set_field:<ext MAC>->eth_src,
/// dec_ttl,set_field:<client MAC>->eth_dst,set_field:<FIP>->ip_src,output:5`) as an ingress
/// chain on the VM's port. nftables fixes the IP and TCP checksums of the rewritten source.
/// With [`Routing::Symmetric`] only the (then idle) counter is there, so both cases read it.
fn compute_node_ruleset(routing: Routing) -> String {
    let chain = match routing {
        Routing::Symmetric => String::new(),
        Routing::Asymmetric => format!(
            "  chain distributed_snat {{
    type filter hook ingress device \"{CMP_VM}\" priority filter;
    ether daddr {QR_MAC} ip saddr {VM_IP} ip daddr != {TENANT_CIDR} counter name {NFT_BYPASSED} ether saddr set {CMP_EXT_MAC} ether daddr set {CLIENT_MAC} ip saddr set {FIP} fwd to \"{CMP_EXT}\"
  }}
"
        ),
    };
    format!(
        "table netdev {NFT_TABLE} {{
  counter {NFT_BYPASSED} {{ }}
{chain}}}
"
    )
}

fn nft_load(ns: &Netns, ruleset: &str) {
    let dir = crate::TempDir::new("swtest-s1nft");
    let file = dir.path().join("ruleset.nft");
    std::fs::write(&file, ruleset).expect("writing the nftables ruleset");
    let path = file.to_str().expect("utf-8 temp path");
    ns.exec_ok(&["nft", "-f", path]);
}

/// Make the two nodes plain Linux (see the module docs).
pub fn configure_linux(s1: &S1Lab, routing: Routing) {
    let vni = VNI.to_string();
    let port = VXLAN_PORT.to_string();
    let mtu = TENANT_MTU.to_string();

    // Network node: the router namespace.
    let net = s1.net.name();
    let dev = |args: &[&str]| {
        let mut argv = vec!["ip", "-n", net];
        argv.extend_from_slice(args);
        must(&argv);
    };
    dev(&["addr", "add", &format!("{FIP}/32"), "dev", NET_EXT]);
    dev(&["route", "add", EXT_CIDR, "dev", NET_EXT]);
    dev(&[
        "link",
        "add",
        NET_QR,
        "address",
        QR_MAC,
        "mtu",
        &mtu,
        "type",
        "vxlan",
        "id",
        &vni,
        "local",
        NET_UNDERLAY_IP,
        "remote",
        CMP_UNDERLAY_IP,
        "dstport",
        &port,
        "dev",
        NET_UNDERLAY,
    ]);
    dev(&["addr", "add", &format!("{TENANT_GW}/24"), "dev", NET_QR]);
    dev(&["link", "set", NET_QR, "up"]);
    s1.net.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    nft_load(&s1.net, &network_node_ruleset());

    // Compute node: the tenant network bridged onto the tunnel.
    let cmp = s1.cmp.name();
    let dev = |args: &[&str]| {
        let mut argv = vec!["ip", "-n", cmp];
        argv.extend_from_slice(args);
        must(&argv);
    };
    dev(&[
        "link",
        "add",
        CMP_BRIDGE,
        "type",
        "bridge",
        "stp_state",
        "0",
    ]);
    bridge_without_netfilter(&s1.cmp, CMP_BRIDGE);
    dev(&[
        "link",
        "add",
        CMP_VXLAN,
        "mtu",
        &mtu,
        "type",
        "vxlan",
        "id",
        &vni,
        "local",
        CMP_UNDERLAY_IP,
        "remote",
        NET_UNDERLAY_IP,
        "dstport",
        &port,
        "dev",
        CMP_UNDERLAY,
    ]);
    for p in [CMP_VXLAN, CMP_VM] {
        dev(&["link", "set", p, "master", CMP_BRIDGE, "up"]);
    }
    dev(&["link", "set", CMP_BRIDGE, "up"]);
    nft_load(&s1.cmp, &compute_node_ruleset(routing));
}

/// A named nftables counter's packet count in `ns` (`table` of `family`).
pub fn nft_counter(ns: &Netns, family: &str, table: &str, name: &str) -> u64 {
    let out = ns.exec_ok(&["nft", "list", "counter", family, table, name]);
    parse_nft_counter(&out)
        .unwrap_or_else(|| panic!("no packet count in `nft list counter` output:\n{out}"))
}

fn parse_nft_counter(out: &str) -> Option<u64> {
    let mut words = out.split_whitespace();
    words.find(|w| *w == "packets")?;
    words.next()?.parse().ok()
}

/// Tools the S1 lab needs beyond the harness's: `tcpdump` (captures), and for the plain-Linux
/// nodes `nft` and `conntrack`. Like [`super::require_root`]: true when the lab can run;
/// otherwise panics under `CI=true`, else prints a skip notice and returns false.
pub fn require_tools() -> bool {
    if !super::require_root() {
        return false;
    }
    let missing: Vec<&str> = ["tcpdump", "nft", "conntrack"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} not installed (bash .ci/run installs the lab's packages)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("S1 lab cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED S1 lab test: {why}");
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(tool).is_file())
    })
}

/// One TCP segment as `tcpdump -e -nn` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Ethernet source.
    pub src_mac: String,
    /// Ethernet destination.
    pub dst_mac: String,
    /// IPv4 source.
    pub src: String,
    /// TCP source port.
    pub sport: u16,
    /// IPv4 destination.
    pub dst: String,
    /// TCP destination port.
    pub dport: u16,
    /// tcpdump's flags: `S` (SYN), `S.` (SYN-ACK), `.` (ACK), `R`, `R.`, `P.`, `F.`, ...
    pub flags: String,
    /// The line as printed.
    pub line: String,
}

impl Segment {
    /// Parse a line of `tcpdump -e -nn` output; None for anything but an IPv4 TCP segment.
    /// Shape: `TIME SRCMAC > DSTMAC, ethertype IPv4 (0x0800), length N: A.B.C.D.P >
    /// E.F.G.H.Q: Flags [X], ...`.
    pub fn parse(line: &str) -> Option<Segment> {
        let mut w = line.split_whitespace();
        let _time = w.next()?;
        let src_mac = w.next()?.to_owned();
        (w.next()? == ">").then_some(())?;
        let dst_mac = w.next()?.trim_end_matches(',').to_owned();
        let rest = line.split_once(", ethertype IPv4 (0x0800), length ")?.1;
        let ip = rest.split_once(": ")?.1;
        let (src, ip) = ip.split_once(" > ")?;
        let (dst, ip) = ip.split_once(": Flags [")?;
        let flags = ip.split_once(']')?.0.to_owned();
        let endpoint = |s: &str| -> Option<(String, u16)> {
            let (addr, port) = s.rsplit_once('.')?;
            Some((addr.to_owned(), port.parse().ok()?))
        };
        let (src, sport) = endpoint(src)?;
        let (dst, dport) = endpoint(dst)?;
        Some(Segment {
            src_mac,
            dst_mac,
            src,
            sport,
            dst,
            dport,
            flags,
            line: line.to_owned(),
        })
    }

    /// A reset (`R` or `R.`).
    pub fn is_rst(&self) -> bool {
        self.flags.starts_with('R')
    }

    /// A SYN without ACK.
    pub fn is_syn(&self) -> bool {
        self.flags == "S"
    }

    /// A SYN-ACK.
    pub fn is_syn_ack(&self) -> bool {
        self.flags == "S."
    }
}

/// `tcpdump` on one interface of a namespace, TCP port 22 only, printing Ethernet headers;
/// stopped by PID (SIGTERM, then killed on drop if it lingers).
pub struct Capture {
    /// Where: `<namespace>/<interface>`.
    pub place: String,
    proc: Spawned,
}

impl Capture {
    /// Start it and wait (bounded) until tcpdump says it is listening.
    pub fn start(ns: &Netns, iface: &str) -> Capture {
        Capture::start_filter(ns, iface, &format!("tcp port {SSH_PORT}"))
    }

    /// The same with another capture filter (a pcap-filter expression, one shell word list:
    /// no quotes inside), e.g. only SYN, FIN and RST segments of a long transfer.
    pub fn start_filter(ns: &Netns, iface: &str, filter: &str) -> Capture {
        // Immediate mode: each packet is handed over as it comes (otherwise the kernel ring
        // holds it up to a second, and a capture stopped early misses it).
        let cmd = format!("exec tcpdump -i {iface} --immediate-mode -e -nn -l '{filter}' 2>&1");
        let proc = ns.spawn(&["sh", "-c", &cmd]);
        let place = format!("{}/{iface}", ns.name());
        assert!(
            proc.wait_line(|l| l.starts_with("listening on"), START_TIMEOUT),
            "tcpdump on {place} did not start: {:?}",
            proc.lines()
        );
        Capture { place, proc }
    }

    /// Segments captured so far.
    pub fn segments(&self) -> Vec<Segment> {
        self.proc
            .lines()
            .iter()
            .filter_map(|l| Segment::parse(l))
            .collect()
    }

    /// Wait until a captured segment satisfies `pred` (true) or `timeout` passes (false).
    pub fn wait_for(&self, pred: impl Fn(&Segment) -> bool, timeout: Duration) -> bool {
        self.proc
            .wait_line(|l| Segment::parse(l).is_some_and(|s| pred(&s)), timeout)
    }

    /// Stop it (SIGTERM: tcpdump flushes and exits; bounded wait) and return every segment
    /// it captured.
    pub fn stop(mut self) -> Vec<Segment> {
        crate::signal(self.proc.pid(), "TERM");
        let out = self.proc.wait(Duration::from_secs(5));
        out.stdout.lines().filter_map(Segment::parse).collect()
    }
}

/// `conntrack -E` (event log) in a namespace, TCP only; killed by PID on drop.
pub struct ConntrackEvents {
    proc: Spawned,
}

impl ConntrackEvents {
    /// Start it and wait (bounded) until it has subscribed to the conntrack event groups: a
    /// netfilter netlink socket with groups appears in the namespace (`conntrack -E` prints
    /// nothing until the first event, so its output cannot tell).
    pub fn start(ns: &Netns) -> ConntrackEvents {
        let proc = ns.spawn(&["conntrack", "-E", "-p", "tcp"]);
        let pid = proc.pid();
        let subscribed = || {
            std::fs::read_to_string(format!("/proc/{pid}/net/netlink"))
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // sk Eth Pid Groups ...: NETLINK_NETFILTER is 12.
                    f.len() > 3 && f[1] == "12" && !f[3].trim_start_matches('0').is_empty()
                })
        };
        assert!(
            super::cmd::eventually(START_TIMEOUT, subscribed),
            "conntrack -E in {} did not subscribe",
            ns.name()
        );
        ConntrackEvents { proc }
    }

    /// Event lines about connections to the floating IP's port 22, so far.
    pub fn lines(&self) -> Vec<String> {
        self.proc
            .lines()
            .into_iter()
            .filter(|l| l.contains(&format!("dst={FIP} ")) && l.contains("dport=22 "))
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// Wait until an event line contains `what` (true) or `timeout` passes.
    pub fn wait_for(&self, what: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines().iter().any(|l| l.contains(what)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The network node's conntrack table entries for the floating IP's port 22 (`conntrack -L`).
pub fn conntrack_entries(ns: &Netns) -> Vec<String> {
    ns.exec_ok(&["conntrack", "-L", "-p", "tcp", "--orig-dst", FIP])
        .lines()
        .filter(|l| l.contains("dport=22 "))
        .map(str::to_owned)
        .collect()
}

/// The VM's ssh stand-in: accept one connection on 88.88.88.4:22, send a banner as sshd
/// does, echo one message. Logs `accepted ADDR PORT` and `echoed N`; gives up after the
/// given number of seconds without a connection (`no connection`).
const SSH_SERVER: &str = r#"
import socket, sys
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(4); s.settimeout(timeout)
print("listening", flush=True)
try:
    c, peer = s.accept()
    print("accepted %s %d" % peer, flush=True)
    c.settimeout(timeout)
    c.sendall(b"SSH-2.0-s1lab\r\n")
    b = c.recv(100)
    c.sendall(b)
    print("echoed", len(b), flush=True)
    c.close()
except socket.timeout:
    print("no connection", flush=True)
"#;

/// The client: connect, read the banner, send a line, read its echo. Prints one word:
/// `ok`, `reset`, `refused`, `timeout` or `closed` (the peer closed without a banner).
const SSH_CLIENT: &str = r#"
import socket, sys
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    s = socket.create_connection((addr, port), timeout=timeout)
    print("connected", flush=True)
    banner = s.recv(100)
    if not banner:
        print("closed"); sys.exit()
    print("banner", banner.strip().decode(errors="replace"), flush=True)
    s.sendall(b"hello from the client\n")
    echo = s.recv(100)
    print("ok" if echo == b"hello from the client\n" else "closed", flush=True)
except ConnectionResetError:
    print("reset")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
"#;

/// How the client's ssh-like exchange with the floating IP ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshOutcome {
    /// Connected, got the banner, the echo came back.
    Ok,
    /// The connection was reset (ECONNRESET).
    Reset,
    /// Refused (an RST answered the SYN).
    Refused,
    /// Nothing came back in time.
    Timeout,
    /// The peer closed without finishing the exchange.
    Closed,
    /// The client printed something else (its output).
    Other(String),
}

/// Result of [`ssh_to_fip`].
pub struct SshRun {
    /// How it ended for the client.
    pub outcome: SshOutcome,
    /// Everything the client printed.
    pub client_log: String,
    /// The VM's listener, still running so the VM keeps answering as a real sshd would
    /// (it retransmits an unacknowledged SYN-ACK); it gives up by itself and is killed by PID
    /// when this drops.
    server: Spawned,
}

impl SshRun {
    /// What the VM's listener printed so far: `accepted ADDR PORT` tells that the connection
    /// reached it, `no connection` that it gave up.
    pub fn server_lines(&self) -> Vec<String> {
        self.server.lines()
    }

    /// Whether the VM's listener accepted a connection.
    pub fn server_accepted(&self) -> bool {
        self.server_lines()
            .iter()
            .any(|l| l.starts_with("accepted"))
    }
}

/// Start the VM's listener, run the client against FIP:22 (each step bounded by `timeout`),
/// and report how it went.
pub fn ssh_to_fip(s1: &S1Lab, timeout: Duration) -> SshRun {
    let secs = timeout.as_secs_f64().to_string();
    let port = SSH_PORT.to_string();
    let server = s1
        .vm
        .spawn(&["python3", "-c", SSH_SERVER, VM_IP, &port, &secs]);
    assert!(
        server.wait_line(|l| l == "listening", START_TIMEOUT),
        "the VM's listener did not start: {:?}",
        server.lines()
    );
    let out = s1.client.exec_timeout(
        &["python3", "-c", SSH_CLIENT, FIP, &port, &secs],
        timeout * 3 + Duration::from_secs(5),
    );
    let last = out.stdout.lines().last().unwrap_or("").trim().to_owned();
    let outcome = match last.as_str() {
        "ok" => SshOutcome::Ok,
        "reset" => SshOutcome::Reset,
        "refused" => SshOutcome::Refused,
        "timeout" => SshOutcome::Timeout,
        "closed" => SshOutcome::Closed,
        _ => SshOutcome::Other(format!("{out:?}")),
    };
    SshRun {
        outcome,
        client_log: format!("{}{}", out.stdout, out.stderr),
        server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcpdump_lines_from_the_seed_lab() {
        let rst = "13:43:36.001292 fa:16:3e:e3:66:3c > 2c:ab:00:9a:04:37, ethertype IPv4 \
                   (0x0800), length 54: 192.168.111.223.22 > 192.168.111.210.41000: Flags [R], \
                   seq 2343124308, win 0, length 0";
        let s = Segment::parse(rst).expect("a TCP segment");
        assert_eq!(
            (s.src_mac.as_str(), s.dst_mac.as_str()),
            (QG_MAC, CLIENT_MAC)
        );
        assert_eq!((s.src.as_str(), s.sport), (FIP, 22));
        assert_eq!((s.dst.as_str(), s.dport), (CLIENT_IP, 41000));
        assert!(s.is_rst() && !s.is_syn() && !s.is_syn_ack());

        let syn_ack = "13:43:36.001204 fa:16:3e:4b:eb:3c > fa:16:3e:91:5f:a0, ethertype IPv4 \
                       (0x0800), length 74: 88.88.88.4.22 > 192.168.111.210.41000: Flags [S.], \
                       seq 2343124307, ack 1986832409, win 64308, length 0";
        assert!(Segment::parse(syn_ack).expect("segment").is_syn_ack());
        let syn = "13:43:36.001189 2c:ab:00:9a:04:37 > fa:16:3e:e3:66:3c, ethertype IPv4 \
                   (0x0800), length 74: 192.168.111.210.41000 > 88.88.88.4.22: Flags [S], seq 1";
        assert!(Segment::parse(syn).expect("segment").is_syn());

        for other in [
            "listening on qg-5d88ef18-33, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
            "4 packets captured",
            "13:43:36.0 fa:16:3e:e3:66:3c > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: \
             Request who-has 192.168.111.210 tell 192.168.111.223, length 28",
            "",
        ] {
            assert_eq!(Segment::parse(other), None, "{other}");
        }
    }

    #[test]
    fn parses_nft_counters() {
        let out = "table ip s1 {\n\tcounter invalid_acks {\n\t\tpackets 3 bytes 180\n\t}\n}\n";
        assert_eq!(parse_nft_counter(out), Some(3));
        assert_eq!(parse_nft_counter("table ip s1 {\n}"), None);
    }
}
