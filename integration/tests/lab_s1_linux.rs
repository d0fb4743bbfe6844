//! S1 negative control on plain Linux (issue 5): the seed's outage reproduced, and the same
//! lab working when the replies take the symmetric path.
//!
//! Topology and roles: `integration/src/lab/s1.rs`. The client ssh-es (a banner-and-echo
//! stand-in on port 22) to the floating IP 192.168.111.223. With the compute node's
//! distributed SNAT (seed 000's flow table 100, here an nftables netdev chain) the VM's SYN-ACK
//! bypasses the network node, whose conntrack entry stays in SYN_SENT; the client's ACK is
//! judged invalid, gets no DNAT, reaches the router's own stack, and is answered with an RST
//! from the floating IP: exactly the captures of seed 000. Without that bypass the same lab
//! carries the connection, so the failure comes from the asymmetry and not from the lab.
//!
//! Evidence is read where a person would look: tcpdump on the network node's and the compute
//! node's cables to the external network (inside the external network's namespace, so the
//! same captures will serve when `vswitchd` drives the nodes) and on the VM's interface;
//! `conntrack -E` and nftables counters on the network node. Every wait is bounded and waits
//! for a condition; the assertion messages carry every capture.

use integration::lab::names::{links_with_prefix, netns_names};
use integration::lab::s1::{
    configure_linux, nft_counter, require_tools, ssh_to_fip, Capture, ConntrackEvents, Routing,
    S1Lab, Segment, SshOutcome, CLIENT_IP, CMP_EXT_MAC, EXT_TO_CMP, EXT_TO_NET, FIP, HOST_IF,
    NFT_BYPASSED, NFT_INVALID_ACKS, NFT_TABLE, QG_MAC, SSH_PORT, VM_IP,
};
use integration::lab::Lab;
use std::time::Duration;

/// Bound for each step of the client's exchange.
const STEP: Duration = Duration::from_secs(5);
/// Bound for evidence to show up in a capture or the event log.
const EVIDENCE: Duration = Duration::from_secs(10);

fn show(name: &str, segs: &[Segment]) -> String {
    let mut s = format!("--- {name} ({} segments)\n", segs.len());
    for seg in segs {
        s.push_str(&seg.line);
        s.push('\n');
    }
    s
}

/// An RST from the floating IP's port 22 to the client, sent by the network node's `qg-`.
fn rst_from_network_node(s: &Segment) -> bool {
    s.is_rst()
        && s.src == FIP
        && s.sport == SSH_PORT
        && s.dst == CLIENT_IP
        && s.src_mac.eq_ignore_ascii_case(QG_MAC)
}

fn syn_to_vm(s: &Segment) -> bool {
    s.is_syn() && s.src == CLIENT_IP && s.dst == VM_IP && s.dport == SSH_PORT
}

fn syn_ack_from_vm(s: &Segment) -> bool {
    s.is_syn_ack() && s.src == VM_IP && s.sport == SSH_PORT && s.dst == CLIENT_IP
}

#[test]
fn asymmetric_floating_ip_is_reset_by_the_network_node() {
    if !require_tools() {
        return;
    }
    let lab = Lab::new();
    let s1 = S1Lab::new(&lab);
    configure_linux(&s1, Routing::Asymmetric);

    let net_wire = Capture::start(&s1.ext, EXT_TO_NET);
    let cmp_wire = Capture::start(&s1.ext, EXT_TO_CMP);
    let vm_if = Capture::start(&s1.vm, HOST_IF);
    let events = ConntrackEvents::start(&s1.net);

    let run = ssh_to_fip(&s1, STEP);

    // Let the evidence arrive (each wait ends as soon as its segment or event is there).
    net_wire.wait_for(rst_from_network_node, EVIDENCE);
    vm_if.wait_for(syn_ack_from_vm, EVIDENCE);
    cmp_wire.wait_for(|s| s.is_syn_ack(), EVIDENCE);
    events.wait_for("[NEW]", EVIDENCE);
    let invalid_acks = nft_counter(&s1.net, "ip", NFT_TABLE, NFT_INVALID_ACKS);
    let bypassed = nft_counter(&s1.cmp, "netdev", NFT_TABLE, NFT_BYPASSED);
    let ct_events = events.lines();
    let server = run.server_lines();
    let (net, cmp, vm) = (net_wire.stop(), cmp_wire.stop(), vm_if.stop());
    let report = format!(
        "client: {:?}\n{}\nVM listener: {server:?}\nnetwork node conntrack events: \
         {ct_events:#?}\ninvalid ACKs (network node): {invalid_acks}\nbypassed \
         (compute node): {bypassed}\n{}{}{}",
        run.outcome,
        run.client_log,
        show("network node's external cable", &net),
        show("compute node's external cable", &cmp),
        show("VM eth0", &vm),
    );

    // The outage: the client's connection is reset, and the listener never got it.
    assert_eq!(run.outcome, SshOutcome::Reset, "{report}");
    assert!(!run.server_accepted(), "{report}");
    // The RST comes from the floating IP, sent by the network node.
    assert!(net.iter().any(rst_from_network_node), "{report}");
    // The VM saw the SYN (DNATed by the network node, through the tunnel) and answered...
    assert!(vm.iter().any(syn_to_vm), "{report}");
    assert!(vm.iter().any(syn_ack_from_vm), "{report}");
    assert!(
        !vm.iter().any(|s| s.is_rst() && s.src == VM_IP),
        "the VM sent no RST: {report}"
    );
    // ...and its SYN-ACK left the compute node straight to the external network, already
    // translated to the floating IP, never passing the network node.
    assert!(
        cmp.iter().any(|s| s.is_syn_ack()
            && s.src == FIP
            && s.dst == CLIENT_IP
            && s.src_mac.eq_ignore_ascii_case(CMP_EXT_MAC)),
        "{report}"
    );
    assert!(bypassed >= 1, "{report}");
    assert!(!net.iter().any(|s| s.is_syn_ack()), "{report}");
    // The network node's conntrack: the entry was made by the SYN (DNAT to the VM) in
    // SYN_SENT, never saw a reply, never moved on; the client's ACK was judged invalid.
    let new = ct_events
        .iter()
        .find(|l| l.starts_with("[NEW]"))
        .unwrap_or_else(|| panic!("no conntrack NEW event: {report}"));
    assert!(
        new.contains("SYN_SENT")
            && new.contains("[UNREPLIED]")
            && new.contains(&format!("src={VM_IP} dst={CLIENT_IP} sport=22")),
        "{new}\n{report}"
    );
    assert!(
        !ct_events
            .iter()
            .any(|l| l.contains("SYN_RECV") || l.contains("ESTABLISHED")),
        "{report}"
    );
    assert!(invalid_acks >= 1, "{report}");
}

#[test]
fn symmetric_floating_ip_carries_the_connection() {
    if !require_tools() {
        return;
    }
    let lab = Lab::new();
    let s1 = S1Lab::new(&lab);
    configure_linux(&s1, Routing::Symmetric);

    let net_wire = Capture::start(&s1.ext, EXT_TO_NET);
    let vm_if = Capture::start(&s1.vm, HOST_IF);
    let events = ConntrackEvents::start(&s1.net);

    let run = ssh_to_fip(&s1, STEP);

    events.wait_for("ESTABLISHED", EVIDENCE);
    net_wire.wait_for(|s| s.is_syn_ack(), EVIDENCE);
    vm_if.wait_for(syn_ack_from_vm, EVIDENCE);
    let invalid_acks = nft_counter(&s1.net, "ip", NFT_TABLE, NFT_INVALID_ACKS);
    let bypassed = nft_counter(&s1.cmp, "netdev", NFT_TABLE, NFT_BYPASSED);
    let ct_events = events.lines();
    let server = run.server_lines();
    let (net, vm) = (net_wire.stop(), vm_if.stop());
    let report = format!(
        "client: {:?}\n{}\nVM listener: {server:?}\nnetwork node conntrack events: \
         {ct_events:#?}\ninvalid ACKs (network node): {invalid_acks}\nbypassed (compute \
         node): {bypassed}\n{}{}",
        run.outcome,
        run.client_log,
        show("network node's external cable", &net),
        show("VM eth0", &vm),
    );

    assert_eq!(run.outcome, SshOutcome::Ok, "{report}");
    assert!(run.server_accepted(), "{report}");
    assert!(
        vm.iter().any(syn_to_vm) && vm.iter().any(syn_ack_from_vm),
        "{report}"
    );
    // The reply went back through the network node, translated there.
    assert!(
        net.iter()
            .any(|s| s.is_syn_ack() && s.src == FIP && s.src_mac.eq_ignore_ascii_case(QG_MAC)),
        "{report}"
    );
    assert!(!net.iter().any(Segment::is_rst), "{report}");
    assert!(
        ct_events
            .iter()
            .any(|l| l.contains("ESTABLISHED") && l.contains("[ASSURED]")),
        "{report}"
    );
    assert_eq!(invalid_acks, 0, "{report}");
    assert_eq!(bypassed, 0, "{report}");

    // Cleanup on drop: nothing of this lab is left.
    drop((run, events));
    drop(s1);
    let dash = format!("{}-", lab.prefix());
    let mut left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| n.starts_with(&dash))
        .collect();
    left.extend(links_with_prefix(&dash));
    assert!(left.is_empty(), "left behind: {left:?}");
}
