//! Lab scenario 5: `vswitchd` killed with SIGKILL comes back from its database with the same
//! bridges, ports (same ofports) and flows, opens its ports again over the XDP programs the
//! dead process left attached, carries traffic, and leaves no XDP program behind when it stops.

use integration::lab::switch::{add_flows, add_port, flows, show_ports, FlowView, PortView};
use integration::lab::{eventually, hosts, ping, require_root, tcp_transfer, xdp_attached, Lab};
use integration::Daemon;
use std::time::Duration;

/// A port as configured: name, ofport, kind.
type PortConfig = (String, u64, String);
/// A flow as configured: table, priority, match, actions.
type FlowConfig = (u64, u64, String, String);

/// What must survive a restart: ports and flows, without counters.
fn config(d: &Daemon) -> (Vec<PortConfig>, Vec<FlowConfig>) {
    let mut ports: Vec<_> = show_ports(d, "br0")
        .into_iter()
        .map(|p: PortView| (p.name, p.ofport, p.kind))
        .collect();
    ports.sort();
    let mut fl: Vec<_> = flows(d, "br0")
        .into_iter()
        .map(|f: FlowView| (f.table, f.priority, f.matches, f.actions))
        .collect();
    fl.sort();
    (ports, fl)
}

#[test]
fn sigkilled_daemon_restarts_from_its_db_and_forwards_again() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 61, 2);
    let mut d = Daemon::lab("lab-restart");
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    // Ofports 7 and 9, not 1 and 2: a restart that renumbers would break the flows. AF_XDP
    // ports, because their XDP programs are what a crash leaves behind.
    add_port(&d, "br0", h[0].port(), Some("afxdp"), Some(7));
    add_port(&d, "br0", h[1].port(), Some("afxdp"), Some(9));
    add_flows(
        &d,
        "br0",
        &[
            "priority=100,in_port=7 actions=output:9",
            "priority=100,in_port=9 actions=output:7",
        ],
    );
    assert_eq!(ping(&h[0].ns, &h[1].ip, 3), 3, "{}", d.log_text());
    let before = config(&d);
    assert_eq!(before.0.len(), 2, "{before:?}");

    d.kill9();
    // Not asserted (an implementation attaching through a bpf_link would leave none), but it
    // says whether this run exercised the stale-program sweep.
    let stale = h.iter().filter(|x| xdp_attached(x.port())).count();
    eprintln!("XDP programs left attached by the killed daemon: {stale}");
    d.restart();
    let after = config(&d);
    assert_eq!(
        after, before,
        "bridges, ports with ofports and flows restored"
    );
    assert_eq!(d.swctl(&["list-br"]).expect_ok("list-br").trim(), "br0");
    assert!(
        eventually(Duration::from_secs(10), || ping(&h[0].ns, &h[1].ip, 1) == 1),
        "traffic after restart (stale XDP programs swept?)\n{}",
        d.log_text()
    );
    assert_eq!(ping(&h[1].ns, &h[0].ip, 3), 3);
    let t = tcp_transfer(
        &h[1].ns,
        &h[1].ip,
        &h[0].ns,
        1 << 20,
        Duration::from_secs(30),
    );
    assert!(t.ok(), "{t:?}");

    d.terminate();
    for host in &h {
        assert!(
            !xdp_attached(host.port()),
            "{} keeps an XDP program after shutdown",
            host.port()
        );
    }
}
