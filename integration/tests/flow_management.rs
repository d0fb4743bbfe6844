//! Flow management through `swctl`: atomic batches, bad input that changes nothing, and the
//! OpenFlow modify/delete/dump selection rules.

use integration::{swctl, Daemon};
use std::time::{Duration, Instant};

fn bridge(test: &str) -> Daemon {
    let d = Daemon::start(test);
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    d
}

fn dump(d: &Daemon, filter: Option<&str>) -> Vec<String> {
    d.flows("br0", filter)
}

#[test]
fn a_batch_with_one_bad_line_applies_nothing_and_names_line_and_token() {
    let d = bridge("batch");
    d.swctl(&["add-flow", "br0", "priority=1 actions=drop"])
        .expect_ok("seed flow");
    let before = dump(&d, None);
    let batch = "# security group rules\n\
                 table=0,priority=100,ip,nw_src=10.0.0.0/8 actions=goto_table:10\n\
                 \n\
                 table=10,priority=100,tcp,tp_dst=22 actions=output:2\n\
                 table=10,priority=100,udp,nw_dst=300.1.1.1 actions=output:2\n\
                 table=10,priority=50 actions=drop\n";
    let err = d
        .swctl_stdin(&["add-flows", "br0", "-"], batch)
        .expect_err("bad batch");
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("nw_dst=300.1.1.1"), "names the token: {err}");
    assert_eq!(dump(&d, None), before, "nothing applied");

    let good = batch.replace("300.1.1.1", "10.1.1.1");
    d.swctl_stdin(&["add-flows", "br0", "-"], &good)
        .expect_ok("good batch");
    assert_eq!(dump(&d, None).len(), 5);
}

#[test]
fn rejected_flows_name_the_token_and_change_nothing() {
    let d = bridge("bad");
    d.swctl(&["add-flow", "br0", "table=3,priority=7,ip actions=drop"])
        .expect_ok("seed flow");
    let before = dump(&d, None);
    let cases = [
        ("ip,nw_dstt=1.2.3.4 actions=drop", "nw_dstt"),
        ("nw_dst=1.2.3.4 actions=drop", "nw_dst"),
        ("tcp,tp_dst=99999 actions=drop", "tp_dst=99999"),
        ("ip actions=frobnicate", "frobnicate"),
        ("ip actions=output:", "output"),
        ("table=300,ip actions=drop", "table=300"),
        ("table=5,ip actions=goto_table:2", "goto_table:2"),
        ("ip actions=mod_tp_dst:80", "mod_tp_dst"),
        ("arp actions=ct(commit)", "ct"),
        ("ip", "ip"),
    ];
    for (flow, token) in cases {
        let err = d.swctl(&["add-flow", "br0", flow]).expect_err(flow);
        assert!(err.starts_with("swctl: "), "{flow}: {err}");
        assert!(
            err.contains(token),
            "{flow}: error should name {token:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(dump(&d, None), before, "running table unchanged");
}

#[test]
fn missing_prerequisite_is_named() {
    let d = bridge("prereq");
    let err = d
        .swctl(&["add-flow", "br0", "tp_dst=22 actions=drop"])
        .expect_err("tp_dst without tcp");
    assert!(err.contains("tp_dst"), "{err}");
    assert!(err.contains("tcp"), "names the missing prerequisite: {err}");
}

#[test]
fn conntrack_nat_is_accepted_alg_is_refused() {
    let d = bridge("ct");
    d.swctl(&[
        "add-flow",
        "br0",
        "ip actions=ct(commit,zone=5,nat(src=10.0.0.1))",
    ])
    .expect_ok("ct nat");
    let err = d
        .swctl(&["add-flow", "br0", "tcp actions=ct(commit,alg=ftp)"])
        .expect_err("alg");
    assert!(err.contains("not supported"), "{err}");
    // ct without nat is installed.
    d.swctl(&["add-flow", "br0", "ip actions=ct(commit,zone=5,table=1)"])
        .expect_ok("ct without nat");
    // The trace shows the conntrack step and where the tracked packet resumes.
    let t = d
        .swctl(&["trace", "br0", "in_port=1,tcp,nw_dst=10.0.0.2,tp_dst=22"])
        .expect_ok("trace");
    assert!(t.contains("recirculate to table 1"), "{t}");
    assert!(t.contains("ct(commit,zone=5)"), "{t}");
    // ... and that pass can be traced by giving the conntrack fields it would have.
    d.swctl(&[
        "add-flow",
        "br0",
        "table=1,ct_state=+trk+est actions=output:2",
    ])
    .expect_ok("table 1");
    let t = d
        .swctl(&[
            "trace",
            "br0",
            "table=1,ct_state=+trk+est,in_port=1,tcp,nw_dst=10.0.0.2,tp_dst=22",
        ])
        .expect_ok("trace table 1");
    assert!(t.contains("Output to port 2"), "{t}");
    d.swctl(&["del-flows", "br0"]).expect_ok("del-flows");
    // ... while ct_state matches are accepted and parsed.
    d.swctl(&["add-flow", "br0", "ip,ct_state=+trk+est actions=drop"])
        .expect_ok("ct_state match");
    let flows = dump(&d, None);
    assert!(flows[0].contains("ct_state=+est+trk"), "{flows:?}");
}

#[test]
fn modify_and_delete_follow_openflow_selection_rules() {
    let d = bridge("moddel");
    let flows = "table=0,priority=10,cookie=0x11,ip,nw_dst=10.0.0.1 actions=output:1\n\
                 table=0,priority=20,cookie=0x12,ip,nw_dst=10.0.0.2 actions=output:1\n\
                 table=0,priority=10,cookie=0x21,tcp,nw_dst=10.0.0.1,tp_dst=80 actions=output:1\n\
                 table=5,priority=10,cookie=0x22,ip,nw_dst=10.0.0.1 actions=output:1\n";
    d.swctl_stdin(&["add-flows", "br0", "-"], flows)
        .expect_ok("add");

    // Non-strict without table=: every flow in every table at least as specific.
    d.swctl(&["mod-flows", "br0", "ip,nw_dst=10.0.0.1 actions=output:2"])
        .expect_ok("mod non-strict");
    let all = dump(&d, None);
    let n2 = all
        .iter()
        .filter(|l| l.ends_with("actions=output:2"))
        .count();
    assert_eq!(n2, 3, "{all:#?}");

    // Strict: only the exact match and priority.
    d.swctl(&[
        "mod-flows",
        "br0",
        "--strict",
        "priority=20,ip,nw_dst=10.0.0.2 actions=output:3",
    ])
    .expect_ok("mod strict");
    assert!(dump(&d, Some("ip,nw_dst=10.0.0.2"))[0].ends_with("actions=output:3"));

    // Cookie mask selects 0x2X flows only.
    let sel = dump(&d, Some("cookie=0x20/0xf0"));
    assert_eq!(sel.len(), 2, "{sel:#?}");
    // table= restricts to one table.
    assert_eq!(dump(&d, Some("table=5")).len(), 1);

    // Strict delete needs the priority too.
    d.swctl(&["del-flows", "br0", "--strict", "ip,nw_dst=10.0.0.1"])
        .expect_ok("strict delete with default priority matches nothing");
    assert_eq!(dump(&d, None).len(), 4);
    d.swctl(&[
        "del-flows",
        "br0",
        "--strict",
        "table=0,priority=10,ip,nw_dst=10.0.0.1",
    ])
    .expect_ok("strict delete");
    assert_eq!(dump(&d, None).len(), 3);

    // Non-strict delete of the tcp subset, then all.
    d.swctl(&["del-flows", "br0", "tcp"]).expect_ok("del tcp");
    assert_eq!(dump(&d, None).len(), 2);
    d.swctl(&["del-flows", "br0"]).expect_ok("del all");
    assert!(dump(&d, None).is_empty());
}

#[test]
fn hard_timeout_removes_the_flow() {
    let d = bridge("expiry");
    d.swctl(&[
        "add-flow",
        "br0",
        "priority=5,hard_timeout=1,ip actions=drop",
    ])
    .expect_ok("add");
    d.swctl(&["add-flow", "br0", "priority=6,ip actions=drop"])
        .expect_ok("add permanent");
    let flows = dump(&d, None);
    assert!(
        flows.iter().any(|l| l.contains("hard_timeout=1")),
        "{flows:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while dump(&d, None).len() == 2 {
        assert!(Instant::now() < deadline, "flow never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = dump(&d, None);
    assert_eq!(left.len(), 1);
    assert!(left[0].contains("priority=6"), "{left:?}");
    assert!(d.log_text().contains("flow expired"));
}

#[test]
fn parse_flow_works_offline_and_normalizes() {
    // No daemon: an unused socket path.
    let r = swctl(
        &[
            "--socket",
            "/nonexistent/vswitchd.sock",
            "parse-flow",
            "table=20 priority=1024 dl_vlan=5 arp tun_id=0x43e arp_tpa=88.88.88.4 arp_op=1 action=strip_vlan,IN_PORT",
        ],
        None,
    );
    let out = r.expect_ok("parse-flow");
    assert_eq!(
        out.trim(),
        "table=20, priority=1024,arp,tun_id=0x43e,dl_vlan=5,arp_tpa=88.88.88.4,arp_op=1 actions=pop_vlan,IN_PORT"
    );
    let json = swctl(
        &["parse-flow", "--json", "ip,reg3=0x43e actions=drop"],
        None,
    )
    .expect_ok("parse-flow --json with a register");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(
        v["matches"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["field"] == "reg3"),
        "{json}"
    );
    let err = swctl(&["parse-flow", "ip,nw_src=1.2.3"], None).expect_err("bad parse-flow");
    assert!(err.contains("nw_src=1.2.3"), "{err}");
}

#[test]
fn trace_of_a_raw_frame_and_of_malformed_input() {
    let d = bridge("hex");
    d.swctl(&[
        "add-flow",
        "br0",
        "priority=10,in_port=1,ip actions=dec_ttl,output:2",
    ])
    .expect_ok("add");
    // Ethernet + IPv4 (TTL 64, ICMP echo request), checksums as the kernel would send them.
    let frame = "000000000002000000000001080045000024000040004001b97ec0a80001c0a80002\
                 0800f7ff00000000"
        .to_owned()
        + "0000000000000000";
    let out = d
        .swctl(&["trace", "br0", "--hex", &frame, "in_port=1"])
        .expect_ok("trace --hex");
    assert!(out.contains("nw_ttl: 64 -> 63"), "{out}");
    assert!(out.contains("Output to port 2: icmp,"), "{out}");

    // Truncated IPv4 header: refused with the parser's reason, nothing else happens.
    let err = d
        .swctl(&[
            "trace",
            "br0",
            "--hex",
            "00000000000200000000000108004500",
            "in_port=1",
        ])
        .expect_err("truncated frame");
    assert!(err.contains("malformed (bad_ipv4)"), "{err}");
    let err = d
        .swctl(&["trace", "br0", "--hex", "zz"])
        .expect_err("not hex");
    assert!(err.contains("invalid character 'z'"), "{err}");
}
