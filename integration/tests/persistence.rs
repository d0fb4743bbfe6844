//! The configuration database: what a command acknowledged survives SIGKILL; a corrupt file
//! stops the daemon with a clear error and is left untouched.

use integration::{bin_dir, Daemon, TempDir};

fn dump(d: &Daemon, br: &str) -> Vec<String> {
    d.flows(br, None)
}

#[test]
fn acknowledged_configuration_survives_sigkill() {
    let mut d = Daemon::builder("persist").with_db().start();
    d.swctl(&["add-br", "br-int"]).expect_ok("add-br");
    d.swctl(&["add-br", "br-ex"]).expect_ok("add-br");
    d.swctl_stdin(
        &["add-flows", "br-int", "-"],
        "table=20,priority=1024,cookie=0x7,arp,tun_id=0x43e,arp_tpa=88.88.88.4,arp_op=1 actions=IN_PORT\n\
         table=30,priority=1024,ip,in_port=5,nw_dst=192.168.111.223 actions=set_field:88.88.88.4->ip_dst,load:0x43e->NXM_NX_REG3[],goto_table:40\n\
         priority=5,idle_timeout=600,ip actions=drop\n",
    )
    .expect_ok("add-flows");
    d.swctl(&["del-br", "br-ex"]).expect_ok("del-br");
    d.swctl(&["mod-flows", "br-int", "table=20,arp actions=drop"])
        .expect_ok("mod-flows");
    let before = dump(&d, "br-int");
    assert_eq!(before.len(), 3);

    d.kill9();
    d.restart();
    assert_eq!(d.swctl(&["list-br"]).expect_ok("list-br"), "br-int\n");
    let after = dump(&d, "br-int");
    // Counters restart from zero; everything else is as acknowledged.
    assert_eq!(after, before);
    assert!(d.log_text().contains("configuration restored"));
}

#[test]
fn a_failed_command_is_not_saved() {
    let mut d = Daemon::builder("persist-fail").with_db().start();
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    d.swctl(&["add-flow", "br0", "priority=1,ip actions=drop"])
        .expect_ok("add-flow");
    d.swctl_stdin(
        &["add-flows", "br0", "-"],
        "priority=2,ip actions=drop\npriority=3,ip,nw_dst=1.2.3 actions=drop\n",
    )
    .expect_err("bad batch");
    d.kill9();
    d.restart();
    assert_eq!(dump(&d, "br0").len(), 1);
}

/// Run vswitchd on `db` to completion (it is expected to refuse to start).
fn run_on(dir: &TempDir, db: &std::path::Path) -> std::process::Output {
    std::process::Command::new(bin_dir().join("vswitchd"))
        .arg("--socket")
        .arg(dir.path().join("s.sock"))
        .arg("--db")
        .arg(db)
        .output()
        .expect("run vswitchd")
}

#[test]
fn corrupt_database_stops_the_daemon_and_is_left_untouched() {
    let dir = TempDir::new("swtest-corrupt");
    let db = dir.path().join("conf.db");
    let garbage = "{\"format\": 1, \"bridges\": [{\"name\": \"br0\", \"ports\": [], \"flows\": [";
    std::fs::write(&db, garbage).unwrap();
    let out = run_on(&dir, &db);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt or unreadable"), "{err}");
    assert!(err.contains(db.to_str().unwrap()), "names the file: {err}");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), garbage);
    assert!(!dir.path().join("s.sock").exists(), "no socket left behind");

    // A flow the parser refuses is as fatal as broken JSON, and names the flow.
    let bad_flow = r#"{"format":1,"bridges":[{"name":"br0","ports":[],"flows":["ip,nw_dst=1.2.3 actions=drop"]}]}"#;
    std::fs::write(&db, bad_flow).unwrap();
    let out = run_on(&dir, &db);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bridge br0: flow 1"), "{err}");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), bad_flow);
}

#[test]
fn conntrack_zone_settings_survive_a_restart() {
    let mut d = Daemon::builder("persist-ct").with_db().start();
    d.swctl(&["set-ct-zone", "5", "limit=7", "profile=liberal"])
        .expect_ok("set-ct-zone");
    d.swctl(&["set-ct-zone", "5", "limit=9", "timeout.tcp_established=60"])
        .expect_ok("set-ct-zone again");
    let err = d
        .swctl(&["set-ct-zone", "6", "limit=many"])
        .expect_err("bad limit");
    assert!(err.contains("limit"), "{err}");
    let err = d
        .swctl(&["set-ct-zone", "6", "timeout.bogus=1"])
        .expect_err("bad timeout");
    assert!(err.contains("bogus"), "{err}");
    d.kill9();
    d.restart();
    let stats = d.swctl(&["conntrack-stats"]).expect_ok("conntrack-stats");
    assert!(
        stats.contains("zone     5: 0 entries, limit 9, profile liberal"),
        "{stats}"
    );
    assert!(!stats.contains("zone     6"), "{stats}");
}
