//! `make demo-s1`: the S1 lab (floating IP served on two paths, seeds 000/001) run for a person
//! to read. Part 1 builds the lab from plain Linux and shows the outage node by node; part 1b
//! is the same lab with symmetric routing, which works; part 2 runs the same lab through two
//! `vswitchd` instances (network node: centralized router with one-sided conntrack; compute
//! node: distributed router with the switch's own floating-IP recipe), part 2b with seed
//! 000's own ODL flows on the compute node. Uses the same topology and switch code as
//! `tests/lab_s1_linux.rs` and `tests/lab_s1_switch.rs` (`integration::lab::s1`), so what the
//! demo shows is what the tests assert.
//!
//! Needs root and the lab's tools; `scripts/demo-s1.sh` checks them and removes the lab if
//! this program is killed before its guards run.

use integration::lab::s1::switches::{
    compute_node_flows, ct_zone, raw_tcp_to_fip, seed_glue, tcp_counters, transfers, udp_to_fip,
    ComputeFlows, S1Switches, BRIDGE, CT_LIMIT, CT_ZONE, TCP_ACK, TCP_SYN,
};
use integration::lab::s1::SSH_PORT;
use integration::lab::s1::{
    configure_linux, conntrack_entries, nft_counter, require_tools, ssh_to_fip, Capture,
    ConntrackEvents, Routing, S1Lab, Segment, SshOutcome, CLIENT_IP, CMP_EXT_MAC, EXT_TO_CMP,
    EXT_TO_NET, FIP, HOST_IF, NET_EXT, NET_QR, NFT_BYPASSED, NFT_INVALID_ACKS, NFT_TABLE, QG_MAC,
    VM_IP, VNI,
};
use integration::lab::{eventually, ping, Lab};
use integration::Daemon;
use std::time::Duration;

const STEP: Duration = Duration::from_secs(5);
const EVIDENCE: Duration = Duration::from_secs(10);

/// A captured segment the way the seed quotes tcpdump: time, MACs, addresses, flags.
fn brief(s: &Segment) -> String {
    let time = s.line.split_whitespace().next().unwrap_or("");
    format!(
        "    {time} {} > {}  {}.{} > {}.{}: Flags [{}]",
        s.src_mac, s.dst_mac, s.src, s.sport, s.dst, s.dport, s.flags
    )
}

fn print_capture(segs: &[Segment]) {
    if segs.is_empty() {
        println!("    (nothing)");
    }
    for s in segs {
        println!("{}", brief(s));
    }
}

struct Captures {
    client: Capture,
    qg: Capture,
    qr: Capture,
    net_wire: Capture,
    cmp_wire: Capture,
    vm: Capture,
}

fn start_captures(s1: &S1Lab) -> Captures {
    Captures {
        client: Capture::start(&s1.client, HOST_IF),
        qg: Capture::start(&s1.net, NET_EXT),
        qr: Capture::start(&s1.net, NET_QR),
        net_wire: Capture::start(&s1.ext, EXT_TO_NET),
        cmp_wire: Capture::start(&s1.ext, EXT_TO_CMP),
        vm: Capture::start(&s1.vm, HOST_IF),
    }
}

fn topology(s1: &S1Lab) {
    println!(
        "  client       {CLIENT_IP} (namespace {})",
        s1.client.name()
    );
    println!(
        "  network node {} : {NET_EXT} holds the floating IP {FIP}/32 (MAC {QG_MAC}),",
        s1.net.name()
    );
    println!("               {NET_QR} holds the tenant gateway 88.88.88.1/24, a VXLAN device");
    println!("               (VNI {VNI:#x}) over the underlay 10.0.0.1 <-> 10.0.0.2;");
    println!("               nftables DNAT {FIP} -> {VM_IP} and SNAT back, with conntrack");
    println!(
        "  compute node {} : bridge br-int = the VM's tap + VXLAN (VNI {VNI:#x})",
        s1.cmp.name()
    );
    println!(
        "  VM           {VM_IP} (namespace {}), a listener on port 22",
        s1.vm.name()
    );
    println!("  external network: bridge br-ex in {}", s1.ext.name());
}

/// Part 1; true when the outage was reproduced (reset, and the RST came from the network node).
fn asymmetric(lab: &Lab) -> bool {
    println!("======================================================================");
    println!("PART 1 - plain Linux, as in the seed: the compute node's distributed router");
    println!("         sends the VM's replies straight out (stateless SNAT to the floating IP)");
    println!("======================================================================");
    let s1 = S1Lab::new(lab);
    configure_linux(&s1, Routing::Asymmetric);
    topology(&s1);
    explain(&format!(
        "compute node: nftables netdev chain on tap-vm = seed 000's flow table 100: frames \
         from {VM_IP} to the router MAC get source {FIP}, source MAC {CMP_EXT_MAC}, and go \
         out 'ext' directly (never through the compute node's IP stack or conntrack)."
    ));
    let caps = start_captures(&s1);
    let events = ConntrackEvents::start(&s1.net);

    println!("\n# The client connects to {FIP}:22, waits for the banner, sends a line.");
    let run = ssh_to_fip(&s1, STEP);
    print!("{}", indent(&run.client_log));
    println!("  => {}", outcome_text(&run.outcome));
    // The network node's table right after the reset (the entry may close later, when the
    // client answers the VM's retransmitted SYN-ACK with a reset of its own).
    let entries_now = conntrack_entries(&s1.net);
    // As in the seed a second later: the VM retransmits its SYN-ACK, the client (its socket
    // gone) answers with an RST. Wait for that (bounded) so the captures show it.
    let retransmitted = eventually(Duration::from_secs(4), || {
        caps.vm
            .segments()
            .iter()
            .filter(|s| s.is_syn_ack() && s.src == VM_IP)
            .count()
            >= 2
    });
    if retransmitted {
        let _ = caps.vm.wait_for(|s| s.is_rst(), Duration::from_secs(2));
    }
    let invalid = nft_counter(&s1.net, "ip", NFT_TABLE, NFT_INVALID_ACKS);
    let bypassed = nft_counter(&s1.cmp, "netdev", NFT_TABLE, NFT_BYPASSED);
    let _ = events.wait_for("[NEW]", EVIDENCE);
    let ct_events = events.lines();
    let server = run.server_lines();

    println!("\n# What each node saw");
    println!("\n[client] eth0:");
    print_capture(&caps.client.stop());
    explain(&format!(
        "The SYN-ACK comes from {FIP} but with source MAC {CMP_EXT_MAC}: the compute node \
         sent it. The client ACKs it to {FIP} (the network node's MAC), and gets an RST."
    ));

    println!("\n[network node] the seed's 'tcpdump -ni qg-5d88ef18-33' in the router namespace:");
    print_capture(&caps.qg.stop());
    println!("[network node] 'tcpdump -ni qr-dcedd015-a5' (tenant side):");
    print_capture(&caps.qr.stop());
    println!("[network node] its cable to the external network (captured in the ext namespace):");
    let net_wire = caps.net_wire.stop();
    let rst_from_net = net_wire
        .iter()
        .any(|s| s.is_rst() && s.src == FIP && s.src_mac.eq_ignore_ascii_case(QG_MAC));
    print_capture(&net_wire);
    explain(&format!(
        "The SYN went through (DNAT to {VM_IP}, out of qr). The SYN-ACK never passed here. \
         The client's ACK did, and the RST from {FIP}:22 with source MAC {QG_MAC} is the \
         network node's own TCP stack answering it."
    ));
    println!("[network node] conntrack -E (events for {FIP}:22):");
    for l in &ct_events {
        println!("    {l}");
    }
    println!("[network node] conntrack -L right after the reset:");
    for l in &entries_now {
        println!("    {l}");
    }
    println!("[network node] nftables: client ACKs judged invalid by conntrack: {invalid}");
    explain(&format!(
        "The entry was created by the SYN in SYN_SENT [UNREPLIED] (reply tuple: the VM). \
         The reply never came this way, so the client's ACK does not fit SYN_SENT: conntrack \
         calls it INVALID, no DNAT is applied, the packet is delivered locally to {FIP}, \
         where no socket listens: RST. (seed 000: tcp_packet -> invalid, tcp_v4_send_reset)"
    ));

    println!("\n[compute node] its cable to the external network:");
    print_capture(&caps.cmp_wire.stop());
    println!(
        "[compute node] nftables: frames sent straight out by the distributed SNAT: {bypassed}"
    );

    println!("\n[VM] eth0:");
    print_capture(&caps.vm.stop());
    println!("[VM] listener: {server:?}");
    explain(
        "The VM got the SYN and answered; it never got the ACK, so it retransmits its \
         SYN-ACK; the client, whose socket was reset, answers that with an RST.",
    );
    run.outcome == SshOutcome::Reset && rst_from_net
}

/// Part 1b; true when the connection worked.
fn symmetric(lab: &Lab) -> bool {
    println!("\n======================================================================");
    println!("PART 1b - the same lab, symmetric: the VM's replies go back through the network");
    println!("          node (the compute node only bridges). The control: it must work.");
    println!("======================================================================");
    let s1 = S1Lab::new(lab);
    configure_linux(&s1, Routing::Symmetric);
    let net_wire = Capture::start(&s1.ext, EXT_TO_NET);
    let events = ConntrackEvents::start(&s1.net);
    let run = ssh_to_fip(&s1, STEP);
    print!("{}", indent(&run.client_log));
    println!("  => {}", outcome_text(&run.outcome));
    let _ = events.wait_for("ESTABLISHED", EVIDENCE);
    let invalid = nft_counter(&s1.net, "ip", NFT_TABLE, NFT_INVALID_ACKS);
    println!("\n[network node] its cable to the external network:");
    print_capture(&net_wire.stop());
    println!("[network node] conntrack -E:");
    for l in events.lines() {
        println!("    {l}");
    }
    println!("[network node] client ACKs judged invalid: {invalid}");
    println!("[VM] listener: {:?}", run.server_lines());
    explain(
        "Both directions crossed the network node's conntrack: SYN_SENT -> SYN_RECV -> \
         ESTABLISHED [ASSURED]; so the reset in part 1 is caused by the asymmetry alone.",
    );
    run.outcome == SshOutcome::Ok
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// `swctl ARGS` on `d`, printed indented under a title.
fn swctl_show(node: &str, d: &Daemon, args: &[&str]) {
    println!("[{node}] swctl {}", args.join(" "));
    let out = d.swctl(args).expect_ok(&args.join(" "));
    if out.trim().is_empty() {
        println!("    (nothing)");
    }
    for l in out.lines() {
        println!("    {}", l.trim_end());
    }
}

/// Part 2 / 2b; true when everything worked as the test asserts it.
fn through_the_switch(lab: &Lab, how: ComputeFlows) -> bool {
    println!("\n======================================================================");
    match how {
        ComputeFlows::Recipe => {
            println!("PART 2 - the same lab through vswitchd, one instance per node namespace;");
            println!("         compute node programmed with the switch's own floating-IP recipe");
        }
        ComputeFlows::Seed => {
            println!("PART 2b - the same, but the compute node runs seed 000's own ODL flows");
            println!("          (tables 20-100, verbatim) plus the glue ODL's other tables had");
        }
    }
    println!("======================================================================");
    let s1 = S1Lab::new(lab);
    let sw = S1Switches::start(&s1, &format!("demo-s1-{}", how.name()), how);
    let (net, cmp) = (&sw.net, &sw.cmp);
    explain(&format!(
        "network node: vswitchd with ports {NET_EXT} (AF_XDP) and a VXLAN port (VNI {VNI:#x}, \
         10.0.0.1 -> 10.0.0.2). It owns {FIP} (add-fip --mode centralized: answers ARP for \
         it) and tracks the client's connections in conntrack zone {CT_ZONE} with profile \
         asym, invalid=drop, limit={CT_LIMIT}; the switch, not the kernel, holds the FIP: no \
         stack there can answer RST."
    ));
    explain(&format!(
        "compute node: vswitchd with ports tap-vm (ofport 7), ext (ofport 5) and the VXLAN \
         port; it sends the VM's replies straight out of ext, translated to {FIP} \
         (fip_snat, or seed table 100's set_field)."
    ));
    println!();
    swctl_show("network node", net, &["dump-flows", BRIDGE]);
    if how == ComputeFlows::Seed {
        println!("[compute node] glue added around seed 000's flows, and why:");
        for (flow, why) in seed_glue() {
            println!("    {flow}");
            println!("        - {why}");
        }
        println!(
            "[compute node] all flows: {} lines",
            compute_node_flows(how).len()
        );
    } else {
        swctl_show("compute node", cmp, &["dump-flows", BRIDGE]);
    }

    // Where a person would look: the client, the two nodes' cables, the VM.
    let client_if = Capture::start(&s1.client, HOST_IF);
    let net_cable = Capture::start(&s1.ext, EXT_TO_NET);
    let cmp_cable = Capture::start(&s1.ext, EXT_TO_CMP);
    let vm_if = Capture::start(&s1.vm, HOST_IF);
    let net_tcp_before = tcp_counters(&s1.net);
    println!("\n# The client connects to {FIP}:22, waits for the banner, sends a line.");
    let run = ssh_to_fip(&s1, STEP);
    print!("{}", indent(&run.client_log));
    println!("  => {}", outcome_text(&run.outcome));
    let _ = cmp_cable.wait_for(|s| s.flags.contains('F') && s.src == FIP, EVIDENCE);
    println!("\n[client] eth0:");
    print_capture(&client_if.stop());
    println!("[network node] its cable to the external network:");
    let net_wire = net_cable.stop();
    print_capture(&net_wire);
    explain(&format!(
        "Only the client's half crosses the network node: SYN, ACK, data, FIN, all to {FIP}. \
         Nothing from {FIP} leaves here."
    ));
    println!("[compute node] its cable to the external network:");
    print_capture(&cmp_cable.stop());
    explain(&format!(
        "The VM's half: from {FIP}, source MAC {CMP_EXT_MAC} (the compute node), straight to \
         the client."
    ));
    println!("[VM] eth0:");
    print_capture(&vm_if.stop());
    println!("[VM] listener: {:?}", run.server_lines());
    swctl_show(
        "network node",
        net,
        &["dump-conntrack", "--zone", &CT_ZONE.to_string()],
    );
    explain(
        "The entry is [ONE_SIDED]: established by the client's ACK with seq = SYN + 1 while \
         nothing came back (the reply counters stay 0), so the client's later segments are \
         +est and DNATed to the VM. In part 1 Linux called that ACK invalid.",
    );

    println!("\n# Ping, UDP, and 20 connections carrying 1 MiB each way, one after the other.");
    let pings = (0..3)
        .map(|_| ping(&s1.client, FIP, 5))
        .find(|&n| n == 5)
        .unwrap_or(0);
    println!("  ping {FIP}: {pings}/5 replies");
    let udp = (0..3)
        .map(|_| udp_to_fip(&s1, 10))
        .find(|&n| n == 10)
        .unwrap_or(0);
    println!("  UDP echo via {FIP}: {udp}/10");
    let t = transfers(&s1, &[1 << 20; 20], Duration::from_secs(20));
    let mut ms = t.ms.clone();
    ms.sort_unstable();
    println!(
        "  TCP: {}/20 connections intact both ways and closed (server checked {}); per \
         connection min/median/max {}/{}/{} ms",
        t.ok,
        t.server_ok,
        ms.first().copied().unwrap_or(0),
        ms.get(ms.len() / 2).copied().unwrap_or(0),
        ms.last().copied().unwrap_or(0)
    );
    swctl_show("network node", net, &["dump-fips", BRIDGE]);
    if how == ComputeFlows::Recipe {
        swctl_show("compute node", cmp, &["dump-fips", BRIDGE]);
        explain(
            "The network node is the owner (centralized) and answered the client's ARP; the \
             compute node translates the same mapping (distributed) without claiming it.",
        );
    }
    swctl_show("network node", net, &["conntrack-stats"]);
    explain("one_sided_established counts the connections; no invalid packet in zone 1.");
    for (node, d) in [("network node", net), ("compute node", cmp)] {
        swctl_show(node, d, &["dump-ports", BRIDGE]);
        swctl_show(node, d, &["pmd-stats"]);
    }
    explain(
        "The network node's VXLAN port only sends, the compute node's only receives: every \
         reply left through ext.",
    );

    println!("\n# Security: a spoofed ACK to {FIP}:22 with no SYN before it (raw socket).");
    let vm_before = tcp_counters(&s1.vm);
    let z0 = ct_zone(net);
    raw_tcp_to_fip(&s1, 41000, SSH_PORT, TCP_ACK, 1);
    let _ = eventually(EVIDENCE, || ct_zone(net)["dropped"] != z0["dropped"]);
    std::thread::sleep(Duration::from_millis(500));
    let vm_after = tcp_counters(&s1.vm);
    println!("  zone {CT_ZONE} drops before: {}", z0["dropped"]);
    println!("  zone {CT_ZONE} drops after:  {}", ct_zone(net)["dropped"]);
    println!(
        "  VM segments received during it: {}",
        vm_after["InSegs"] - vm_before["InSegs"]
    );
    explain(
        "ct() judged it invalid (not_new: no connection, and not a SYN) and dropped it itself \
         (invalid=drop): nothing reached the VM, and nothing answers RST for the FIP.",
    );
    println!("\n# Security: a flood of 300 SYNs to {FIP}:22 from a raw socket.");
    raw_tcp_to_fip(&s1, 30000, SSH_PORT, TCP_SYN, 300);
    std::thread::sleep(Duration::from_secs(2));
    let z = ct_zone(net);
    println!(
        "  zone {CT_ZONE}: {} entries (limit {}); early drops so far: {}",
        z["entries"],
        z["limit"],
        integration::lab::s1::switches::ct_event(net, "early_drop")
    );
    explain(
        "The zone never holds more than its limit: each SYN over it evicts an older embryonic \
         entry (early_drop) or is refused (table_full), and both are counted.",
    );
    let net_tcp_after = tcp_counters(&s1.net);
    println!(
        "  network node's own TCP stack: {} segments in, {} RSTs out during part 2",
        net_tcp_after["InSegs"] - net_tcp_before["InSegs"],
        net_tcp_after["OutRsts"] - net_tcp_before["OutRsts"]
    );
    let rst_from_net = net_wire.iter().any(|s| s.is_rst());
    run.outcome == SshOutcome::Ok
        && !rst_from_net
        && pings == 5
        && udp == 10
        && t.ok == 20
        && t.server_ok == 20
        && z["entries"].as_u64().is_some_and(|n| n <= CT_LIMIT)
}

/// Print an explanation wrapped at 96 columns, indented by two spaces.
fn explain(text: &str) {
    let mut line = String::from(" ");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 96 {
            println!("{line}");
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(word);
    }
    println!("{line}");
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  client: {l}\n")).collect()
}

fn outcome_text(o: &SshOutcome) -> String {
    match o {
        SshOutcome::Ok => "connection works: banner and echo received".to_owned(),
        SshOutcome::Reset => "connection RESET (the seed's failure)".to_owned(),
        other => format!("{other:?}"),
    }
}

fn main() {
    if !require_tools() {
        std::process::exit(1);
    }
    let lab = Lab::new();
    println!(
        "# S1 lab, namespaces {}-{{cl,ext,net,cmp,vm}}",
        lab.prefix()
    );
    let reproduced = asymmetric(&lab);
    let control_works = symmetric(&lab);
    let switch_works = through_the_switch(&lab, ComputeFlows::Recipe);
    let seed_works = through_the_switch(&lab, ComputeFlows::Seed);
    println!("\n======================================================================");
    println!("SUMMARY");
    println!(
        "  plain Linux, asymmetric: client reset by the network node .... {}",
        yes(reproduced)
    );
    println!(
        "  plain Linux, symmetric control works .......................... {}",
        yes(control_works)
    );
    println!(
        "  vswitchd on both nodes (switch's recipe) works ................ {}",
        yes(switch_works)
    );
    println!(
        "  vswitchd on both nodes (seed 000's ODL flows) works ........... {}",
        yes(seed_works)
    );
    if !(reproduced && control_works && switch_works && seed_works) {
        println!("\nUNEXPECTED result (see above)");
        std::process::exit(1);
    }
}
