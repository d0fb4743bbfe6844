//! Lab scenarios 4 and 8: ports deleted and re-added under traffic, and an interface that
//! disappears under the daemon.

use integration::lab::switch::{add_port, bridge_with_hosts, show_port, show_ports};
use integration::lab::{eventually, hosts, ping, require_root, xdp_attached, BackgroundPing, Lab};
use integration::Daemon;
use std::time::Duration;

#[test]
fn a_port_deleted_and_re_added_under_traffic_carries_it_again() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 51, 2);
    let mut d = Daemon::lab("lab-readd");
    bridge_with_hosts(&d, "br0", &h, None);
    d.swctl(&["add-flow", "br0", "priority=0 actions=normal"])
        .expect_ok("add-flow");
    let bg = BackgroundPing::start(&h[0].ns, &h[1].ip, 300);
    assert!(
        bg.wait_reply_after(3, Duration::from_secs(5)),
        "{}",
        d.log_text()
    );

    d.swctl(&["del-port", "br0", h[1].port()])
        .expect_ok("del-port");
    assert_eq!(show_port(&d, "br0", h[1].port()), None, "gone from show");
    assert!(
        eventually(Duration::from_secs(2), || !xdp_attached(h[1].port())),
        "its XDP program (if any) is detached"
    );
    assert_eq!(ping(&h[0].ns, &h[1].ip, 3), 0, "no path without the port");
    let cut = bg.last_seq();

    add_port(&d, "br0", h[1].port(), None, Some(2));
    assert_eq!(
        show_port(&d, "br0", h[1].port()).map(|p| p.ofport),
        Some(2),
        "back with the same ofport"
    );
    assert!(
        eventually(Duration::from_secs(5), || ping(&h[0].ns, &h[1].ip, 1) == 1),
        "traffic again after re-adding\n{}",
        d.log_text()
    );
    assert_eq!(ping(&h[0].ns, &h[1].ip, 3), 3);
    assert!(
        bg.wait_reply_after(cut, Duration::from_secs(3)),
        "the running ping resumes"
    );
    assert!(d.is_running(), "no crash");
    d.swctl(&["show"]).expect_ok("daemon still answers");
}

#[test]
fn an_interface_deleted_under_the_daemon_is_reported_and_the_rest_keeps_working() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let mut h = hosts(&lab, 52, 3);
    let mut d = Daemon::lab("lab-ifgone");
    bridge_with_hosts(&d, "br0", &h, None);
    d.swctl(&["add-flow", "br0", "priority=0 actions=normal"])
        .expect_ok("add-flow");
    assert_eq!(ping(&h[0].ns, &h[2].ip, 2), 2, "{}", d.log_text());

    let gone = h.pop().expect("third host");
    let name = gone.port().to_owned();
    let log_before = d.log_text().len();
    drop(gone); // deletes the veth (and the namespace) under the running daemon
    let reported = eventually(Duration::from_secs(5), || {
        let listed = show_ports(&d, "br0").iter().any(|p| p.name == name);
        let logged = d
            .log_text()
            .get(log_before..)
            .is_some_and(|l| l.contains(&name));
        !listed || logged
    });
    assert!(
        reported,
        "{name} neither left `show` nor was logged:\n{}",
        d.log_text()
    );

    assert!(d.is_running(), "daemon survives:\n{}", d.log_text());
    d.swctl(&["show"]).expect_ok("daemon still answers");
    d.swctl(&["dump-ports", "br0"]).expect_ok("dump-ports");
    assert_eq!(
        ping(&h[0].ns, &h[1].ip, 3),
        3,
        "the other ports still switch"
    );
}
