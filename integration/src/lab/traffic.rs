//! Bounded traffic between lab namespaces: ping, a verified TCP transfer, a UDP echo exchange.
//!
//! Everything is addressed to namespaces the test created and bounded in count and time:
//! ping always has `-c` and `-W`, the Python peers have socket timeouts, and each process is
//! killed by PID if it outlives its bound.

use super::cmd::Spawned;
use super::netns::Netns;
use super::scripts;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Interval between echo requests (root may go below 0.2 s; keeps tests short).
const PING_INTERVAL: &str = "0.1";

/// Ping `addr` from `ns` with `count` requests; returns how many replies came back.
pub fn ping(ns: &Netns, addr: &str, count: u32) -> u32 {
    ping_seqs(ns, addr, count).len() as u32
}

/// Ping and return the `icmp_seq` of every reply (1-based, in arrival order). Exactly `count`
/// requests are sent (no `-w`, which would keep sending until `count` replies), so flow
/// counters can be checked against it.
pub fn ping_seqs(ns: &Netns, addr: &str, count: u32) -> Vec<u32> {
    let argv = ping_argv(addr, count);
    let out = ns.exec_timeout(
        &as_strs(&argv),
        Duration::from_secs_f64(2.0 + count as f64 * 0.2),
    );
    reply_seqs(&out.stdout.lines().map(str::to_owned).collect::<Vec<_>>())
}

fn ping_argv(addr: &str, count: u32) -> Vec<String> {
    let count = count.to_string();
    [
        "ping",
        "-n",
        "-c",
        &count,
        "-i",
        PING_INTERVAL,
        "-W",
        "1",
        addr,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `icmp_seq` values of the reply lines of ping's output.
fn reply_seqs(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|s| s.parse().ok())
        })
        .collect()
}

/// A ping running in the background (10 requests a second, at most `count`), watched live:
/// used to see the effect of a change made while traffic flows.
pub struct BackgroundPing {
    proc: Spawned,
}

impl BackgroundPing {
    /// Start pinging `addr` from `ns`.
    pub fn start(ns: &Netns, addr: &str, count: u32) -> BackgroundPing {
        BackgroundPing {
            proc: ns.spawn(&as_strs(&ping_argv(addr, count))),
        }
    }

    /// Sequence numbers replied so far.
    pub fn seqs(&self) -> Vec<u32> {
        reply_seqs(&self.proc.lines())
    }

    /// Highest sequence number replied so far (0 if none).
    pub fn last_seq(&self) -> u32 {
        self.seqs().into_iter().max().unwrap_or(0)
    }

    /// Wait until a reply with sequence number above `seq` arrives (true) or `timeout` passes.
    pub fn wait_reply_after(&self, seq: u32, timeout: Duration) -> bool {
        self.proc.wait_line(
            |l| {
                reply_seqs(&[l.to_owned()])
                    .first()
                    .is_some_and(|&s| s > seq)
            },
            timeout,
        )
    }
}

/// Result of [`tcp_transfer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes the client sent.
    pub sent: usize,
    /// Bytes the server received.
    pub received: usize,
    /// The server's SHA-256 of what it received equals the client's of what it sent.
    pub checksum_ok: bool,
    /// Diagnostics (both peers' output) for assertion messages.
    pub log: String,
}

impl Transfer {
    /// Everything arrived intact.
    pub fn ok(&self) -> bool {
        self.received == self.sent && self.checksum_ok && self.sent > 0
    }
}

/// Server: accept one connection, read to EOF, print byte count and SHA-256, close.
const TCP_SERVER: &str = r#"
import socket, sys, hashlib
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(1); s.settimeout(timeout)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(timeout)
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b); n += len(b)
print(n, h.hexdigest(), flush=True)
c.close()
"#;

/// Client: send N deterministic pseudo-random bytes, half-close, wait for the server to close
/// (so everything was read), print count and SHA-256.
const TCP_CLIENT: &str = r#"
import socket, sys, hashlib, random, time
addr, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
data = random.Random(n).randbytes(n)
deadline = time.time() + timeout
while True:
    try:
        s = socket.create_connection((addr, port), timeout=2); break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
s.settimeout(timeout)
s.sendall(data); s.shutdown(socket.SHUT_WR)
s.recv(1)
print(n, hashlib.sha256(data).hexdigest(), flush=True)
"#;

/// A port number per transfer so back-to-back transfers never meet a TIME_WAIT socket.
fn next_port() -> String {
    static PORT: AtomicU16 = AtomicU16::new(20000);
    PORT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Send `bytes` bytes over TCP from `client` to `server_addr` (an address of `server`);
/// bounded by `timeout` on each side.
pub fn tcp_transfer(
    server: &Netns,
    server_addr: &str,
    client: &Netns,
    bytes: usize,
    timeout: Duration,
) -> Transfer {
    let port = next_port();
    let secs = timeout.as_secs_f64().to_string();
    let mut srv = server.spawn(&["python3", "-c", TCP_SERVER, server_addr, &port, &secs]);
    let listening = srv.wait_line(|l| l == "listening", Duration::from_secs(10));
    let n = bytes.to_string();
    let cli = client.exec_timeout(
        &["python3", "-c", TCP_CLIENT, server_addr, &port, &n, &secs],
        timeout + Duration::from_secs(5),
    );
    let srv_out = srv.wait(timeout + Duration::from_secs(5));
    let parse = |s: &str| -> Option<(usize, String)> {
        let mut w = s.lines().last()?.split_whitespace();
        Some((w.next()?.parse().ok()?, w.next()?.to_owned()))
    };
    let sent = parse(&cli.stdout);
    let got = parse(&srv_out.stdout);
    Transfer {
        sent: sent.as_ref().map_or(0, |s| s.0),
        received: got.as_ref().map_or(0, |g| g.0),
        checksum_ok: matches!((&sent, &got), (Some(a), Some(b)) if a.1 == b.1),
        log: format!("server listening: {listening}\nclient: {cli:?}\nserver: {srv_out:?}"),
    }
}

/// Client: send `count` numbered datagrams, each waiting up to 1 s for its echo; print how
/// many came back intact.
const UDP_CLIENT: &str = r#"
import socket, sys
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((addr, port)); s.settimeout(1.0)
ok = 0
for i in range(count):
    msg = b"swlab-%06d" % i + bytes(100)
    try:
        s.send(msg)
        while True:
            b = s.recv(65536)
            if b == msg:
                ok += 1
                break
    except OSError:
        pass
print(ok, flush=True)
"#;

/// Send `count` UDP datagrams from `client` to `server_addr` (in `server`), which echoes them;
/// returns how many echoes came back intact.
pub fn udp_exchange(server: &Netns, server_addr: &str, client: &Netns, count: u32) -> u32 {
    let port = next_port();
    let mut srv = server.spawn(&[
        "python3",
        "-c",
        scripts::UDP_ECHO_SERVER,
        server_addr,
        &port,
        "3",
        "15",
    ]);
    assert!(
        srv.wait_line(|l| l == "ready", Duration::from_secs(10)),
        "UDP echo server did not start in {}",
        server.name()
    );
    let out = client.exec_timeout(
        &[
            "python3",
            "-c",
            UDP_CLIENT,
            server_addr,
            &port,
            &count.to_string(),
        ],
        Duration::from_secs(5 + u64::from(count)),
    );
    drop(srv.wait(Duration::from_secs(5)));
    out.stdout.trim().parse().unwrap_or(0)
}
