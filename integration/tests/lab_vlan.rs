//! Lab scenario 7: an access port and a trunk port. Host A is untagged on port 1 (access VLAN
//! 10 by flows); host B sits on VLAN 10 of the trunk behind port 2, so the switch must push
//! the tag one way and pop it the other for ping and TCP to work.

use integration::lab::switch::{add_flows, add_port};
use integration::lab::{hosts, ping, require_root, set_vlan, tcp_transfer, Lab, Veth};
use integration::Daemon;
use std::time::Duration;

#[test]
fn access_port_and_trunk_port_on_vlan_10() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let a = hosts(&lab, 71, 1).pop().expect("host A");
    let b_ns = lab.netns("h2");
    // The trunk's untagged interface has no address: B talks only on VLAN 10.
    let b_trunk = Veth::builder(&lab.name("p2"), &b_ns, "eth0").create();
    let b_vlan = set_vlan(&b_ns, "eth0", 10, Some("10.71.0.2/24"));
    let d = Daemon::lab("lab-vlan");
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    add_port(&d, "br0", a.port(), None, Some(1));
    add_port(&d, "br0", b_trunk.root_end(), None, Some(2));
    // 4106 = 0x1000 (VID present, as OVS writes it) | 10.
    add_flows(
        &d,
        "br0",
        &[
            "in_port=1 actions=push_vlan:0x8100,set_field:4106->vlan_vid,output:2",
            "in_port=2,dl_vlan=10 actions=pop_vlan,output:1",
        ],
    );

    let b_ip = "10.71.0.2";
    assert_eq!(
        ping(&a.ns, b_ip, 5),
        5,
        "A -> B over {} (kernel 802.1Q: {})\n{}",
        b_vlan.name(),
        b_vlan.in_kernel(),
        d.log_text()
    );
    assert_eq!(ping(&b_ns, &a.ip, 5), 5, "B -> A");
    let t = tcp_transfer(&b_ns, b_ip, &a.ns, 1 << 20, Duration::from_secs(30));
    assert!(t.ok(), "TCP A -> B: {t:?}");
    let t = tcp_transfer(&a.ns, &a.ip, &b_ns, 1 << 20, Duration::from_secs(30));
    assert!(t.ok(), "TCP B -> A: {t:?}");
}
