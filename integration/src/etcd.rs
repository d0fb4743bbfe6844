//! A private etcd for tests: Debian's `etcd` binary on loopback, on free ports, with its data
//! in a private temporary directory, stopped by PID when dropped (also when the test panics).
//! Never the system's etcd service, never its ports or data.

use crate::TempDir;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private etcd.
pub struct Etcd {
    child: Option<Child>,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    /// Network namespace it runs in (None: the caller's), and the address it listens on.
    netns: Option<String>,
    host: String,
}

/// Whether the `etcd` binary is available. Without it: panics when `CI=true` (`.ci/run`
/// installs `etcd-server`), else prints a skip notice and returns false.
pub fn require_etcd() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()));
    if found {
        return true;
    }
    let why = "`etcd` is not installed (bash .ci/run installs etcd-server)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("etcd test cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED etcd test: {why}");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Etcd {
    /// Start etcd and wait (bounded) until it serves requests. A port taken between choosing
    /// and binding it makes etcd exit: then it is tried again on new ports (3 attempts).
    pub fn start(test: &str) -> Etcd {
        Etcd::start_at(test, None, "127.0.0.1")
    }

    /// Start etcd inside the lab namespace `netns`, listening on `ip` (an address of that
    /// namespace), for daemons in other namespaces that reach it over the lab's links (the S1
    /// lab: on the compute node's underlay address). Ready-checked from inside `netns`.
    pub fn start_in(test: &str, netns: &str, ip: &str) -> Etcd {
        Etcd::start_at(test, Some(netns), ip)
    }

    fn start_at(test: &str, netns: Option<&str>, host: &str) -> Etcd {
        let dir = TempDir::new(&format!("etcd-{test}"));
        let mut etcd = Etcd {
            child: None,
            dir,
            client_port: 0,
            peer_port: 0,
            netns: netns.map(str::to_owned),
            host: host.to_owned(),
        };
        for _ in 0..3 {
            etcd.client_port = free_port();
            etcd.peer_port = free_port();
            if etcd.spawn() {
                return etcd;
            }
            etcd.kill();
        }
        panic!("etcd did not start; log:\n{}", etcd.log_text());
    }

    /// `http://127.0.0.1:PORT` (or the address given to [`Etcd::start_in`]).
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.client_port)
    }

    /// What etcd logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// SIGKILL etcd (by PID) and reap it; its data stays for [`Etcd::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::signal(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Start it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "etcd did not restart; log:\n{}",
            self.log_text()
        );
    }

    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log file");
        let client = format!("http://{}:{}", self.host, self.client_port);
        let peer = format!("http://{}:{}", self.host, self.peer_port);
        // `ip netns exec` execs etcd: the child's PID is etcd's, stopped by PID as usual.
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcd"]);
                c
            }
            None => Command::new("etcd"),
        };
        let child = cmd
            .arg("--name")
            .arg("lab")
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("lab={peer}")])
            // No metrics listener of its own, no proxy: only the two loopback ports above.
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            if self.healthy() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Whether etcd answers a range request (it has a leader and serves the v3 gateway).
    fn healthy(&self) -> bool {
        if let Some(ns) = &self.netns {
            // Only reachable from inside its namespace: ask from there.
            return Command::new("ip")
                .args(["netns", "exec", ns, "python3", "-c", HEALTH_PY, &self.host])
                .arg(self.client_port.to_string())
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success());
        }
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let body = r#"{"key":"AA=="}"#;
        let req = format!(
            "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.starts_with("HTTP/1.1 200") && resp.contains("\"header\"")
    }
}

/// [`Etcd::healthy`] from inside a namespace: the same range request; exit 0 when answered.
const HEALTH_PY: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
body = b'{"key":"AA=="}'
s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
resp = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    resp += b
sys.exit(0 if resp.startswith(b"HTTP/1.1 200") and b'"header"' in resp else 1)
"#;

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
