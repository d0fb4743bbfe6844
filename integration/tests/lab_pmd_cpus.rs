//! `vswitchd --pmd-cpus`: the worker runs pinned to the CPU named, the control threads keep
//! the process's affinity, traffic flows; a CPU that cannot be pinned to stops the daemon at
//! start with an error naming the option.

use integration::lab::switch::{add_flows, add_port};
use integration::lab::{hosts, ping, require_root, tcp_transfer, Lab};
use integration::{bin_dir, Daemon, TempDir};
use std::time::Duration;

/// The `Cpus_allowed_list` of a `/proc/.../status` text ("" if absent).
fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// `Cpus_allowed_list` of every thread of `pid`, by thread name.
fn thread_cpus(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let dir = t.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        out.push((comm.trim().to_owned(), cpus_allowed(&status)));
    }
    out
}

/// The highest CPU this process may run on (the worker is pinned there, so the test also
/// means something on a machine where CPU 0 is all there is).
fn last_allowed_cpu() -> String {
    let list = cpus_allowed(&std::fs::read_to_string("/proc/self/status").expect("status"));
    let last = list.rsplit(',').next().expect("an element");
    last.rsplit('-').next().expect("a number").to_owned()
}

#[test]
fn worker_runs_on_the_cpu_named_and_forwards() {
    if !require_root() {
        return;
    }
    let cpu = last_allowed_cpu();
    let lab = Lab::new();
    let h = hosts(&lab, 86, 2);
    let d = Daemon::builder("lab-pmd-cpus")
        .option("--pmd-cpus", &cpu)
        .idle("sleep")
        .start();
    let threads = thread_cpus(d.pid());
    let pmd: Vec<_> = threads
        .iter()
        .filter(|(n, _)| n.starts_with("pmd-"))
        .collect();
    assert_eq!(pmd.len(), 1, "{threads:?}");
    assert_eq!(pmd[0].1, cpu, "pmd-0 pinned: {threads:?}");
    let ctl = threads
        .iter()
        .find(|(n, _)| n == "ctl-accept")
        .unwrap_or_else(|| panic!("{threads:?}"));
    let process = thread_cpus(std::process::id())[0].1.clone();
    assert_eq!(ctl.1, process, "control thread keeps the process's CPUs");
    assert!(d.log_text().contains("worker pinned"), "{}", d.log_text());

    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    add_port(&d, "br0", h[0].port(), Some("afxdp"), Some(1));
    add_port(&d, "br0", h[1].port(), Some("afxdp"), Some(2));
    add_flows(
        &d,
        "br0",
        &[
            "priority=100,in_port=1 actions=output:2",
            "priority=100,in_port=2 actions=output:1",
        ],
    );
    assert_eq!(ping(&h[0].ns, &h[1].ip, 3), 3, "{}", d.log_text());
    let t = tcp_transfer(
        &h[1].ns,
        &h[1].ip,
        &h[0].ns,
        1 << 20,
        Duration::from_secs(30),
    );
    assert!(t.ok(), "{t:?}");
}

#[test]
fn a_cpu_that_cannot_be_pinned_to_stops_the_daemon_at_start() {
    let dir = TempDir::new("swtest-pmd-cpus-bad");
    let sock = dir.path().join("vswitchd.sock");
    for (list, says) in [
        ("1023", "--pmd-cpus: pinning to CPU 1023"),
        ("3-1", "bad CPU range"),
        ("x", "bad CPU list element"),
    ] {
        let out = std::process::Command::new(bin_dir().join("vswitchd"))
            .args(["--no-db", "--pmd-cpus", list, "--socket"])
            .arg(&sock)
            .output()
            .expect("running vswitchd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{list}: {stderr}");
        assert!(stderr.contains(says), "{list}: {stderr}");
        assert!(!sock.exists(), "{list}: no control socket was created");
    }
}
