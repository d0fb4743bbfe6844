//! The daemon and its control channel, driven through the real `swctl` binary.

use integration::{swctl, Daemon, TempDir};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

#[test]
fn socket_is_root_only_and_removed_on_sigterm() {
    let mut d = Daemon::start("sock");
    let meta = std::fs::metadata(d.socket()).expect("socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    let socket = d.socket().to_path_buf();
    let status = d.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!socket.exists(), "socket removed on shutdown");
}

#[test]
fn second_daemon_on_same_socket_is_refused() {
    let d = Daemon::start("dup");
    let out = std::process::Command::new(integration::bin_dir().join("vswitchd"))
        .arg("--socket")
        .arg(d.socket())
        .arg("--no-db")
        .output()
        .expect("run second vswitchd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already listening"), "{err}");
    // The first daemon is unharmed.
    d.swctl(&["list-br"]).expect_ok("list-br on first daemon");
}

#[test]
fn stale_socket_from_a_crash_is_replaced() {
    let dir = TempDir::new("swtest-stale");
    let path = dir.path().join("s.sock");
    // A socket file nobody listens on, as a SIGKILLed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let mut child = std::process::Command::new(integration::bin_dir().join("vswitchd"))
        .arg("--socket")
        .arg(&path)
        .arg("--no-db")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start vswitchd");
    let pid = child.id();
    let mut ok = false;
    for _ in 0..500 {
        let r = swctl(&["--socket", path.to_str().unwrap(), "list-br"], None);
        if r.ok {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    integration::signal(pid, "TERM");
    let _ = child.wait();
    assert!(ok, "daemon took over the stale socket");
}

#[test]
fn swctl_says_clearly_when_daemon_is_not_running() {
    let dir = TempDir::new("swtest-nodaemon");
    let sock = dir.path().join("none.sock");
    let err = swctl(&["--socket", sock.to_str().unwrap(), "show"], None).expect_err("show");
    assert!(
        err.starts_with("swctl: cannot connect to vswitchd at"),
        "{err}"
    );
    assert!(err.contains("is vswitchd running?"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn bridges_add_list_delete() {
    let d = Daemon::start("br");
    d.swctl(&["add-br", "br-int"]).expect_ok("add-br");
    d.swctl(&["add-br", "br-ex"]).expect_ok("add-br");
    let err = d
        .swctl(&["add-br", "br-int"])
        .expect_err("duplicate add-br");
    assert!(err.contains("br-int already exists"), "{err}");
    d.swctl(&["add-br", "br-int", "--may-exist"])
        .expect_ok("add-br --may-exist");
    let err = d.swctl(&["add-br", "bad name!"]).expect_err("bad name");
    assert!(err.contains("invalid bridge name"), "{err}");

    assert_eq!(
        d.swctl(&["list-br"]).expect_ok("list-br"),
        "br-ex\nbr-int\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.swctl(&["list-br", "--json"]).expect_ok("list-br --json"))
            .expect("json");
    assert_eq!(json, serde_json::json!(["br-ex", "br-int"]));

    d.swctl(&["del-br", "br-ex"]).expect_ok("del-br");
    let err = d.swctl(&["del-br", "br-ex"]).expect_err("del missing");
    assert!(err.contains("no bridge named br-ex"), "{err}");
    d.swctl(&["del-br", "br-ex", "--if-exists"])
        .expect_ok("del-br --if-exists");
    let show = d.swctl(&["show"]).expect_ok("show");
    assert!(show.contains("Bridge br-int"), "{show}");
    assert!(!show.contains("br-ex"), "{show}");
    let show: serde_json::Value =
        serde_json::from_str(&d.swctl(&["show", "--json"]).expect_ok("show --json")).unwrap();
    assert_eq!(show["bridges"][0]["name"], "br-int");
}

#[test]
fn commands_on_a_missing_bridge_fail_cleanly() {
    let d = Daemon::start("nobr");
    for args in [
        vec!["add-flow", "nope", "actions=drop"],
        vec!["dump-flows", "nope"],
        vec!["del-flows", "nope"],
    ] {
        let err = d.swctl(&args).expect_err(&args.join(" "));
        assert!(err.contains("no bridge named nope"), "{args:?}: {err}");
    }
}
