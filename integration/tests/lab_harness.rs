//! Self-tests of the lab harness with plain Linux (a bridge in the root namespace, no
//! vswitchd): traffic helpers work, and every guard cleans up, also when the test panics.

use integration::lab::names::{links_with_prefix, netns_names};
use integration::lab::{
    eventually, hosts, ping, require_root, set_vlan, tcp_transfer, udp_exchange, xdp_attached,
    BackgroundPing, Lab, Veth,
};
use std::time::Duration;

const MB: usize = 1 << 20;

/// What of this lab still exists: namespaces and root-namespace links with its prefix.
fn leftovers(lab: &Lab) -> Vec<String> {
    let dash = format!("{}-", lab.prefix());
    let mut left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| n.starts_with(&dash))
        .collect();
    left.extend(links_with_prefix(&dash));
    left
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn names_are_unique_per_lab_and_fit_an_interface_name() {
    let (a, b) = (Lab::new(), Lab::new());
    assert_ne!(a.prefix(), b.prefix());
    let pid = std::process::id() % 1000;
    assert!(
        a.prefix().starts_with(&format!("sw{pid}t")),
        "{}",
        a.prefix()
    );
    assert!(a.name("h1").len() <= 15);
    let too_long = std::panic::catch_unwind(|| a.name("muchtoolongsuffix"));
    assert!(too_long.is_err(), "names over 15 bytes are refused");
}

#[test]
fn two_namespaces_through_a_linux_bridge_ping_and_transfer() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    {
        let h = hosts(&lab, 21, 2);
        let br = lab.bridge("br");
        for host in &h {
            br.attach(&host.veth);
            assert!(
                !xdp_attached(host.port()),
                "a fresh veth has no XDP program"
            );
        }
        assert_eq!(ping(&h[0].ns, &h[1].ip, 3), 3, "h1 -> h2");
        assert_eq!(ping(&h[1].ns, &h[0].ip, 3), 3, "h2 -> h1");
        for (srv, cli) in [(1, 0), (0, 1)] {
            let t = tcp_transfer(
                &h[srv].ns,
                &h[srv].ip,
                &h[cli].ns,
                MB,
                Duration::from_secs(20),
            );
            assert!(t.ok(), "1 MB h{} -> h{}: {t:?}", cli + 1, srv + 1);
            assert_eq!(t.received, MB);
        }
        assert_eq!(udp_exchange(&h[1].ns, &h[1].ip, &h[0].ns, 10), 10);
        assert_eq!(h[0].veth.ns_mac(), h[0].mac, "the fixed MAC is applied");
        assert!(!leftovers(&lab).is_empty());
    }
    assert_eq!(
        leftovers(&lab),
        Vec::<String>::new(),
        "guards delete everything"
    );
}

#[test]
fn vlan_subinterfaces_talk_over_the_bridge() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 22, 2);
    let br = lab.bridge("br");
    let mut vlans = Vec::new();
    for (i, host) in h.iter().enumerate() {
        br.attach(&host.veth);
        let cidr = format!("10.122.0.{}/24", i + 1);
        let vlan = set_vlan(&host.ns, "eth0", 10, Some(&cidr));
        assert_eq!(vlan.name(), "eth0.10");
        vlans.push(vlan);
    }
    assert_eq!(ping(&h[0].ns, "10.122.0.2", 3), 3, "over VLAN 10");
    let t = tcp_transfer(
        &h[1].ns,
        "10.122.0.2",
        &h[0].ns,
        MB,
        Duration::from_secs(20),
    );
    assert!(t.ok(), "{t:?}");
    let back = tcp_transfer(
        &h[0].ns,
        "10.122.0.1",
        &h[1].ns,
        MB,
        Duration::from_secs(20),
    );
    assert!(back.ok(), "{back:?}");
}

#[test]
fn a_background_ping_shows_when_traffic_stops_and_resumes() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 23, 2);
    let br = lab.bridge("br");
    for host in &h {
        br.attach(&host.veth);
    }
    let bg = BackgroundPing::start(&h[0].ns, &h[1].ip, 100);
    assert!(
        bg.wait_reply_after(3, Duration::from_secs(5)),
        "replies flow"
    );
    integration::lab::cmd::must(&["ip", "link", "set", "dev", h[1].port(), "nomaster"]);
    let cut = bg.last_seq();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        bg.last_seq() <= cut + 1,
        "no replies once the port left the bridge"
    );
    br.attach(&h[1].veth);
    assert!(
        bg.wait_reply_after(cut + 2, Duration::from_secs(5)),
        "replies resume"
    );
    let seqs = bg.seqs();
    let lost = (1..=bg.last_seq()).filter(|s| !seqs.contains(s)).count();
    assert!(lost >= 3, "a gap while detached: {seqs:?}");
}

#[test]
fn spawned_processes_die_with_their_guard_and_namespace() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let ns = lab.netns("h1");
    let guarded = ns.spawn(&["sleep", "30"]);
    let pid = guarded.pid();
    assert!(pid_alive(pid));
    // `ip netns exec` enters the namespace and then execs: until it has, the namespace has no
    // process (seen under load), so wait for it to appear before comparing.
    integration::lab::cmd::eventually(Duration::from_secs(5), || !ns.pids().is_empty());
    assert_eq!(
        ns.pids(),
        vec![pid],
        "ip netns exec runs the command itself"
    );
    drop(guarded);
    assert!(!pid_alive(pid), "killed by PID on drop");

    // A process a test forgot (no guard) dies with the namespace.
    let forgotten = ns.spawn(&["sleep", "30"]);
    let pid = forgotten.pid();
    std::mem::forget(forgotten);
    // `ip netns exec` enters the namespace after it starts: wait until it is in there, which
    // is the situation this checks (a process left running inside the namespace).
    assert!(
        eventually(Duration::from_secs(5), || ns.pids().contains(&pid)),
        "the process entered the namespace"
    );
    drop(ns);
    // SIGKILL is delivered at once, but on a loaded 2-core machine the process may need a
    // while to be scheduled and exit: poll (bounded) rather than sleep a fixed time.
    let zombie_or_gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    assert!(
        eventually(Duration::from_secs(5), zombie_or_gone),
        "killed when its namespace was deleted"
    );
    assert_eq!(leftovers(&lab), Vec::<String>::new());
}

#[test]
fn a_panicking_test_body_still_cleans_up() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let inner = lab.clone();
    let pid = std::sync::Mutex::new(0);
    let result = std::panic::catch_unwind(|| {
        let h = hosts(&inner, 24, 2);
        let _extra = Veth::builder(&inner.name("x"), &h[0].ns, "eth1").create();
        let _br = inner.bridge("br");
        let sleeper = h[1].ns.spawn(&["sleep", "30"]);
        *pid.lock().unwrap() = sleeper.pid();
        assert!(!leftovers(&inner).is_empty());
        panic!("test body fails half-way");
    });
    assert!(result.is_err());
    assert_eq!(
        leftovers(&lab),
        Vec::<String>::new(),
        "unwinding dropped every guard"
    );
    assert!(!pid_alive(*pid.lock().unwrap()));
}

#[test]
fn lab_clean_removes_what_a_crashed_lab_left_behind() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    // A "crash": guards that never run.
    let h = hosts(&lab, 25, 2);
    let sleeper = h[0].ns.spawn(&["sleep", "30"]);
    let pid = sleeper.pid();
    std::mem::forget(sleeper);
    std::mem::forget(h);
    std::mem::forget(lab.bridge("br"));
    assert!(!leftovers(&lab).is_empty());

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lab-clean.sh");
    let out = std::process::Command::new(script)
        .env("LAB_CLEAN_ONLY", format!("{}-", lab.prefix()))
        .output()
        .expect("running lab-clean.sh");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(leftovers(&lab), Vec::<String>::new(), "{out:?}");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "process in the namespace stopped"
    );
}
