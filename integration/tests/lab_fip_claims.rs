//! One owner per floating IP, through a real etcd (scenario S1's root cause: the same FIP
//! configured centralized on one node and distributed — or centralized — on another).
//!
//! Each test starts its own etcd on free loopback ports with a private data dir (stopped by
//! PID). The nodes are `EtcdStore`s — the claim store `vswitchd --etcd` runs — driven
//! directly: "killing a node" drops its store without releasing anything, exactly what a
//! SIGKILLed daemon leaves behind (keys bound to a lease nobody refreshes). The last test runs
//! the real `vswitchd`/`swctl` with the etcd options. Every wait is bounded and waits for a
//! condition; the bounds are far above the lease TTLs so a loaded machine does not flake.

use dataplane::daemon::ownership::check::fip_check;
use dataplane::daemon::ownership::etcd::{EtcdConfig, EtcdStore};
use dataplane::daemon::ownership::{ClaimRecord, ClaimStatus, ClaimStore, FipMode};
use integration::etcd::{require_etcd, Etcd};
use integration::lab::eventually;
use integration::{bin_dir, Daemon};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIP: Ipv4Addr = Ipv4Addr::new(192, 168, 111, 223);
const FIXED: Ipv4Addr = Ipv4Addr::new(88, 88, 88, 4);
const WAIT: Duration = Duration::from_secs(30);

fn node(etcd: &Etcd, name: &str, ttl: u64) -> EtcdStore {
    EtcdStore::start(EtcdConfig {
        url: etcd.url(),
        node: name.into(),
        lease_ttl_secs: ttl,
    })
    .expect("store starts")
}

fn rec(node: &str, mode: FipMode, fixed: Ipv4Addr) -> ClaimRecord {
    ClaimRecord {
        node: node.into(),
        bridge: "br-int".into(),
        fip: FIP,
        fixed,
        mode,
    }
}

fn refused_by(s: &ClaimStatus, holder: &str) -> bool {
    matches!(s, ClaimStatus::Refused { holder: h } if h == holder)
}

/// Wait until `store`'s status for the FIP satisfies `pred`; panic with the status and the
/// store's description otherwise.
fn wait_status(store: &EtcdStore, what: &str, pred: impl Fn(&ClaimStatus) -> bool) {
    let ok = eventually(WAIT, || pred(&store.status(FIP)));
    assert!(
        ok,
        "{} never became {what}: {:?} ({})",
        store.node(),
        store.status(FIP),
        store.describe()
    );
}

#[test]
fn second_centralized_claim_is_refused_and_taken_over_when_the_owner_dies() {
    if !require_etcd() {
        return;
    }
    let etcd = Etcd::start("claims");
    let a = node(&etcd, "node-a", 2);
    a.claim(&rec("node-a", FipMode::Centralized, FIXED));
    wait_status(&a, "owned", |s| *s == ClaimStatus::Owned);

    let b = node(&etcd, "node-b", 2);
    let b_changes = Arc::new(AtomicUsize::new(0));
    b.set_listener({
        let n = b_changes.clone();
        Arc::new(move || {
            n.fetch_add(1, Ordering::Relaxed);
        })
    });
    b.claim(&rec("node-b", FipMode::Centralized, FIXED));
    wait_status(&b, "refused by node-a", |s| refused_by(s, "node-a"));
    assert!(!b.status(FIP).owns());
    assert!(a.status(FIP).owns());
    assert!(b_changes.load(Ordering::Relaxed) > 0, "listener not called");

    // fip-check on the refused node: the second claim, and two centralized nodes.
    let report = fip_check(&b);
    assert_eq!(report.fips.len(), 1);
    let f = &report.fips[0];
    assert_eq!(f.status, "refused");
    assert_eq!(f.holder.as_deref(), Some("node-a"));
    assert_eq!(
        f.mappings
            .iter()
            .map(|m| m.node.as_str())
            .collect::<Vec<_>>(),
        ["node-a", "node-b"]
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("second claim refused: node-a owns 192.168.111.223")),
        "{}",
        report.text
    );
    assert!(report
        .problems
        .iter()
        .any(|p| p.contains("centralized on 2 nodes (node-a, node-b)")));
    assert_eq!(report.claims_refused, 1);
    // The owner sees the misconfiguration too once it has polled.
    assert!(
        eventually(WAIT, || a.records(FIP).len() == 2),
        "{:?}",
        a.records(FIP)
    );
    assert!(fip_check(&a)
        .problems
        .iter()
        .any(|p| p.contains("centralized on 2 nodes")));

    // node-b keeps retrying (a poll every TTL/2) without ever winning while node-a lives, and
    // a refusal is counted once, not once per retry.
    std::thread::sleep(Duration::from_secs(3));
    assert!(refused_by(&b.status(FIP), "node-a"), "{:?}", b.status(FIP));
    assert_eq!(b.health().claims_refused, 1);

    // Kill node-a: no release, its keys stay until its lease expires; then node-b takes over.
    let killed = Instant::now();
    drop(a);
    wait_status(&b, "owned after node-a died", |s| *s == ClaimStatus::Owned);
    eprintln!(
        "take-over after the owner died: {:.1} s (lease TTL 2 s, poll every 1 s)",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(b.holder(FIP).as_deref(), Some("node-b"));
    // node-a's mapping expired with its lease: nothing left to complain about.
    assert!(
        eventually(WAIT, || fip_check(&b).problems.is_empty()),
        "{}",
        fip_check(&b).text
    );
}

#[test]
fn disagreeing_mappings_are_reported_and_mode_changes_move_the_claim() {
    if !require_etcd() {
        return;
    }
    let etcd = Etcd::start("mappings");
    let a = node(&etcd, "node-a", 2);
    let c = node(&etcd, "node-c", 2);
    a.claim(&rec("node-a", FipMode::Centralized, FIXED));
    wait_status(&a, "owned", |s| *s == ClaimStatus::Owned);
    // The compute node maps the FIP to another fixed IP: both sides report it.
    let wrong = Ipv4Addr::new(88, 88, 88, 5);
    c.claim(&rec("node-c", FipMode::Distributed, wrong));
    assert_eq!(c.status(FIP), ClaimStatus::NotClaimed);
    let disagree = |s: &EtcdStore| {
        fip_check(s)
            .problems
            .iter()
            .any(|p| p.contains("mappings disagree: node-a -> 88.88.88.4, node-c -> 88.88.88.5"))
    };
    assert!(eventually(WAIT, || disagree(&c)), "{}", fip_check(&c).text);
    assert!(eventually(WAIT, || disagree(&a)), "{}", fip_check(&a).text);
    assert!(a.status(FIP).owns(), "a distributed mapping claims nothing");
    assert_eq!(c.holder(FIP).as_deref(), Some("node-a"));

    // Fixing the mapping clears the problem everywhere.
    c.claim(&rec("node-c", FipMode::Distributed, FIXED));
    assert!(
        eventually(WAIT, || fip_check(&a).problems.is_empty()
            && fip_check(&c).problems.is_empty()),
        "a: {}\nc: {}",
        fip_check(&a).text,
        fip_check(&c).text
    );

    // The network node turns distributed: its claim is withdrawn at once (not at lease
    // expiry), and the compute node can become the owner.
    a.claim(&rec("node-a", FipMode::Distributed, FIXED));
    assert_eq!(a.status(FIP), ClaimStatus::NotClaimed);
    assert!(
        eventually(WAIT, || c.holder(FIP).is_none()),
        "{:?}",
        c.holder(FIP)
    );
    c.claim(&rec("node-c", FipMode::Centralized, FIXED));
    wait_status(&c, "owned", |s| *s == ClaimStatus::Owned);

    // Releasing removes the mapping.
    a.release(FIP);
    assert!(
        eventually(WAIT, || c.records(FIP).len() == 1),
        "{:?}",
        c.records(FIP)
    );
    assert!(a.local_records().is_empty());
}

#[test]
fn restart_with_the_same_node_id_takes_its_claim_back_and_a_duplicate_id_stands_down() {
    if !require_etcd() {
        return;
    }
    let etcd = Etcd::start("restart");
    // A long TTL: only the take-over can give the restarted node its claim within WAIT/2.
    let a = node(&etcd, "node-a", 60);
    a.claim(&rec("node-a", FipMode::Centralized, FIXED));
    wait_status(&a, "owned", |s| *s == ClaimStatus::Owned);
    let b = node(&etcd, "node-b", 60);
    b.claim(&rec("node-b", FipMode::Centralized, FIXED));
    wait_status(&b, "refused", |s| refused_by(s, "node-a"));

    drop(a); // crash: the old lease lives on for 60 s
    let a2 = node(&etcd, "node-a", 60);
    a2.claim(&rec("node-a", FipMode::Centralized, FIXED));
    let ok = eventually(WAIT / 2, || a2.status(FIP) == ClaimStatus::Owned);
    assert!(ok, "restarted node locked out: {:?}", a2.status(FIP));
    assert!(refused_by(&b.status(FIP), "node-a"));

    // A second live daemon with the same id takes it (it cannot tell that from a restart);
    // the first notices and stands down instead of fighting back.
    let a3 = node(&etcd, "node-a", 60);
    a3.claim(&rec("node-a", FipMode::Centralized, FIXED));
    wait_status(&a3, "owned", |s| *s == ClaimStatus::Owned);
    wait_status(
        &a2,
        "refused (duplicate id)",
        |s| matches!(s, ClaimStatus::Refused { holder } if holder.contains("another daemon with the same node id")),
    );
    std::thread::sleep(Duration::from_secs(2)); // a few polls of both
    assert_eq!(a3.status(FIP), ClaimStatus::Owned);
    assert!(!a2.status(FIP).owns());
}

#[test]
fn clean_shutdown_hands_the_fip_over_at_once() {
    if !require_etcd() {
        return;
    }
    let etcd = Etcd::start("shutdown");
    let a = node(&etcd, "node-a", 60);
    a.claim(&rec("node-a", FipMode::Centralized, FIXED));
    wait_status(&a, "owned", |s| *s == ClaimStatus::Owned);
    let b = node(&etcd, "node-b", 60);
    b.claim(&rec("node-b", FipMode::Centralized, FIXED));
    wait_status(&b, "refused", |s| refused_by(s, "node-a"));
    a.shutdown(); // revokes the lease: no 60 s wait
    let ok = eventually(WAIT / 2, || b.status(FIP) == ClaimStatus::Owned);
    assert!(ok, "not handed over: {:?}", b.status(FIP));
}

#[test]
fn etcd_outage_loses_the_lease_and_the_claim_comes_back() {
    if !require_etcd() {
        return;
    }
    let mut etcd = Etcd::start("outage");
    let a = node(&etcd, "node-a", 2);
    a.claim(&rec("node-a", FipMode::Centralized, FIXED));
    wait_status(&a, "owned", |s| *s == ClaimStatus::Owned);

    etcd.kill();
    wait_status(&a, "lost", |s| matches!(s, ClaimStatus::Lost { .. }));
    assert!(!a.status(FIP).owns());
    let health = a.health();
    assert_eq!(health.leases_lost, 1);
    assert!(health.problem.is_some());
    let report = fip_check(&a);
    assert!(
        report.problems[0].starts_with("store unreachable"),
        "{}",
        report.text
    );
    assert!(
        report.problems.iter().any(|p| p.contains("claim lost")),
        "{}",
        report.text
    );
    assert!(a.describe().contains("unreachable"), "{}", a.describe());

    // etcd back (same data): a new lease, the claim again (taking over the key its old lease
    // may still hold), the problem gone.
    etcd.restart();
    wait_status(&a, "owned again", |s| *s == ClaimStatus::Owned);
    assert!(
        eventually(WAIT, || fip_check(&a).problems.is_empty()),
        "{}",
        fip_check(&a).text
    );
}

/// `swctl fip-check`'s exit status (0 fine, 2 problems) and stdout.
fn fip_check_cli(d: &Daemon, json: bool) -> (i32, String) {
    let mut cmd = std::process::Command::new(bin_dir().join("swctl"));
    cmd.arg("--socket").arg(d.socket()).arg("fip-check");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("running swctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn vswitchd_etcd_options_show_and_fip_check() {
    if !require_etcd() {
        return;
    }
    let etcd = Etcd::start("daemon");
    let d = Daemon::builder("fipclaims-etcd")
        .option("--etcd", &etcd.url())
        .option("--node-id", "lab-a")
        .option("--lease-ttl", "2")
        .start();
    let want = format!(
        "FIP ownership: etcd {} as lab-a (lease TTL 2 s)",
        etcd.url()
    );
    let connected = eventually(WAIT, || {
        let show = d.swctl(&["show"]).expect_ok("show");
        show.contains(&want) && show.contains(": connected, lease")
    });
    assert!(connected, "{}", d.swctl(&["show"]).expect_ok("show"));
    let (code, text) = fip_check_cli(&d, false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("no floating IPs configured on this node"),
        "{text}"
    );
    let (code, json) = fip_check_cli(&d, true);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("fip-check --json");
    assert_eq!(v["distributed"], true);
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0));

    // Without --etcd: standalone, and show says so.
    let s = Daemon::start("fipclaims-standalone");
    let show = s.swctl(&["show"]).expect_ok("show");
    assert!(show.contains("FIP ownership: standalone"), "{show}");
    assert_eq!(fip_check_cli(&s, false).0, 0);

    // A store nobody answers on: fip-check reports it and exits 2.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Daemon::builder("fipclaims-down")
        .option("--etcd", &format!("http://127.0.0.1:{dead_port}"))
        .option("--node-id", "lab-b")
        .start();
    let reported = eventually(WAIT, || {
        let (code, text) = fip_check_cli(&down, false);
        code == 2 && text.contains("PROBLEM: store unreachable: cannot connect to etcd")
    });
    assert!(reported, "{:?}", fip_check_cli(&down, false));

    // Bad options are refused at start, naming the offending value.
    for (args, token) in [
        (
            vec!["--etcd", "http://127.0.0.1:1", "--node-id", "a/b"],
            "a/b",
        ),
        (vec!["--etcd", "https://127.0.0.1:1"], "https"),
        (vec!["--lease-ttl", "5"], "--etcd"),
    ] {
        let out = std::process::Command::new(bin_dir().join("vswitchd"))
            .args(["--no-db", "--socket", "/nonexistent/dir/for/this/test.sock"])
            .args(&args)
            .output()
            .expect("running vswitchd");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(err.contains(token), "{args:?}: {err}");
    }
}

/// What `swctl fip-check --json` says about the one FIP: (status, holder, exit code).
fn fip_status(d: &Daemon) -> (String, Option<String>, i32) {
    let (code, json) = fip_check_cli(d, true);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let f = &v["fips"][0];
    (
        f["status"].as_str().unwrap_or("").to_string(),
        f["holder"].as_str().map(str::to_string),
        code,
    )
}

/// Ask, from `ns`, for the MAC of `ip` (ARP through the kernel: a ping that resolves the
/// neighbour first), and return the MAC the kernel learnt, if any.
fn arp_resolve(ns: &integration::lab::Netns, ip: &str) -> Option<String> {
    ns.exec(&["ip", "neigh", "flush", "dev", "eth0"]);
    // The echo itself is dropped by the switch; only the ARP exchange matters.
    ns.exec(&["ping", "-c", "1", "-W", "1", ip]);
    let neigh = ns.exec(&["ip", "neigh", "show", ip, "dev", "eth0"]).stdout;
    let mut words = neigh.split_whitespace();
    words
        .by_ref()
        .find(|w| *w == "lladdr")
        .and_then(|_| words.next())
        .map(str::to_string)
}

/// Two real `vswitchd` nodes, one etcd, the same FIP configured centralized on both (the
/// seed's misconfiguration): only the first claim wins, only its switch answers ARP for the
/// FIP (kernel ARP from a namespace on each node), the other reports the refusal; SIGKILL the
/// owner: after its lease expires the other node owns the FIP and answers ARP.
#[test]
fn two_vswitchd_nodes_one_arp_owner_and_take_over_after_sigkill() {
    use integration::lab::{require_root, Lab, Veth};
    if !require_root() || !require_etcd() {
        return;
    }
    const FIP_MAC: &str = "02:00:00:00:02:23";
    let etcd = Etcd::start("nodes");
    let lab = Lab::new();
    let ns_a = lab.netns("ca");
    let ns_b = lab.netns("cb");
    let va = Veth::builder(&lab.name("pa"), &ns_a, "eth0")
        .ip("10.77.0.10/24")
        .mac("02:00:00:77:00:0a")
        .create();
    let vb = Veth::builder(&lab.name("pb"), &ns_b, "eth0")
        .ip("10.77.0.11/24")
        .mac("02:00:00:77:00:0b")
        .create();
    let start = |name: &str, node: &str| {
        Daemon::builder(name)
            .log_level("info")
            .workers(1)
            .idle("sleep")
            .option("--etcd", &etcd.url())
            .option("--node-id", node)
            .option("--lease-ttl", "2")
            .start()
    };
    let mut da = start("fipclaims-na", "node-a");
    let db = start("fipclaims-nb", "node-b");
    for (d, port) in [(&da, va.root_end()), (&db, vb.root_end())] {
        d.swctl(&["add-br", "br0"]).expect_ok("add-br");
        integration::lab::switch::add_port(d, "br0", port, None, Some(1));
        integration::lab::switch::add_flows(d, "br0", &["priority=10,arp actions=fip_arp"]);
    }
    da.swctl(&[
        "add-fip",
        "br0",
        "10.77.0.223",
        "10.77.0.50",
        "--mac",
        FIP_MAC,
    ])
    .expect_ok("add-fip on node-a");
    assert!(
        eventually(WAIT, || fip_status(&da).0 == "owned"),
        "{:?}",
        fip_status(&da)
    );
    db.swctl(&[
        "add-fip",
        "br0",
        "10.77.0.223",
        "10.77.0.50",
        "--mac",
        FIP_MAC,
    ])
    .expect_ok("add-fip on node-b (accepted: the claim is what is refused)");
    assert!(
        eventually(WAIT, || fip_status(&db).0 == "refused"),
        "{:?}",
        fip_status(&db)
    );
    let (_, holder, code) = fip_status(&db);
    assert_eq!(holder.as_deref(), Some("node-a"));
    assert_eq!(code, 2, "fip-check must exit 2 on the refused node");
    let (_, text) = fip_check_cli(&db, false);
    assert!(
        text.contains("second claim refused: node-a owns 10.77.0.223"),
        "{text}"
    );
    assert!(
        db.log_text().contains("FIP claim refused"),
        "no WARN line:\n{}",
        db.log_text()
    );

    // Kernel ARP: node-a's switch answers with the FIP's MAC, node-b's does not.
    let answered_a = eventually(WAIT, || {
        arp_resolve(&ns_a, "10.77.0.223").as_deref() == Some(FIP_MAC)
    });
    assert!(answered_a, "the owner did not answer ARP for the FIP");
    assert_eq!(
        arp_resolve(&ns_b, "10.77.0.223"),
        None,
        "the refused node answered ARP for a FIP it does not own"
    );

    // SIGKILL the owner: nothing released; node-b takes over once the lease expires.
    let killed = Instant::now();
    da.kill9();
    assert!(
        eventually(WAIT, || fip_status(&db).0 == "owned"),
        "{:?}",
        fip_status(&db)
    );
    let took_over = killed.elapsed();
    let answered_b = eventually(WAIT, || {
        arp_resolve(&ns_b, "10.77.0.223").as_deref() == Some(FIP_MAC)
    });
    assert!(answered_b, "the new owner does not answer ARP for the FIP");
    eprintln!(
        "SIGKILLed owner: node-b owned the FIP after {:.1} s, answered ARP after {:.1} s \
         (lease TTL 2 s)",
        took_over.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    // node-a's mapping went with its lease: node-b is alone and healthy.
    assert!(
        eventually(WAIT, || fip_status(&db).2 == 0),
        "{}",
        fip_check_cli(&db, false).1
    );
    drop((vb, va));
}
