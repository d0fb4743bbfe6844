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

#[test]
fn bad_add_port_requests_are_refused_and_change_nothing() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 53, 3);
    let d = Daemon::lab("lab-badport");
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    d.swctl(&["add-br", "br1"]).expect_ok("add-br");
    add_port(&d, "br0", h[0].port(), None, Some(5));
    let before = (show_ports(&d, "br0"), show_ports(&d, "br1"));

    let refusals: [(Vec<&str>, &str); 5] = [
        (
            vec!["add-port", "br0", "nosuchif0"],
            "no interface named nosuchif0",
        ),
        (
            vec!["add-port", "br0", h[0].port()],
            "is already port 5 of bridge br0",
        ),
        (
            vec!["add-port", "br1", h[0].port()],
            "is already port 5 of bridge br0",
        ),
        (
            vec!["add-port", "br0", h[1].port(), "--ofport", "5"],
            "ofport 5 is in use on bridge br0",
        ),
        (
            vec!["add-port", "br0", h[1].port(), "--ofport", "0"],
            "out of range",
        ),
    ];
    for (args, expected) in refusals {
        let err = d.swctl(&args).expect_err(&args.join(" "));
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(
        (show_ports(&d, "br0"), show_ports(&d, "br1")),
        before,
        "nothing changed"
    );
    assert!(
        !xdp_attached(h[1].port()),
        "the refused interface was not touched"
    );
    // And the deletion of something that is not there.
    let err = d
        .swctl(&["del-port", "br0", h[2].port()])
        .expect_err("del-port of a non-port");
    assert!(err.contains("has no port"), "{err}");
}
