//! Port backends on real veth pairs in real network namespaces (needs root / CAP_NET_ADMIN).
//!
//! Topology per test (names carry a per-process, per-test prefix `pl<pid%10000><letter>`):
//!
//! ```text
//!   netns <p>a: <p>an 10.77.0.1/24 ── veth ── <p>ar (root ns) ┐
//!                                                             ├─ forwarder in this test
//!   netns <p>b: <p>bn 10.77.0.2/24 ── veth ── <p>br (root ns) ┘
//! ```
//!
//! The namespace-side veths have `tx tso gso gro` off (partial checksums otherwise) and one
//! queue each. Every namespace and link is removed by a Drop guard, also on panic. Without the
//! privileges the tests print a skip notice, except under `CI=true` where they fail.

use dataplane::execute::PacketBuf;
use dataplane::port::{self, OpenedPort, PortError, PortKind, PortRequest};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Lab plumbing

/// True if we have CAP_NET_ADMIN (bit 12 of the effective set).
fn net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

/// Whether the lab can run; under CI a missing privilege is a failure, never a silent skip.
fn lab_available(test: &str) -> bool {
    if net_admin() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: port lab needs root / CAP_NET_ADMIN and CI=true forbids skipping");
    }
    // Written to the stream directly: libtest's capture would hide eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: port lab needs root / CAP_NET_ADMIN"
    );
    false
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn sh(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, each joined to the root namespace by a veth. Removed on drop.
struct Lab {
    p: String,
}

impl Lab {
    fn new() -> Lab {
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let p = format!(
            "pl{}{}",
            std::process::id() % 10000,
            (b'a' + (n % 26) as u8) as char
        );
        let lab = Lab { p };
        for side in ["a", "b"] {
            lab.add_side(side);
        }
        lab
    }

    fn ns(&self, side: &str) -> String {
        format!("{}{side}", self.p)
    }
    /// Root-namespace end of a side's veth: the switch port.
    fn root(&self, side: &str) -> String {
        format!("{}{side}r", self.p)
    }
    /// An extra root-namespace link name (removed by the guard).
    fn extra(&self, tag: &str) -> String {
        format!("{}x{tag}", self.p)
    }
    /// Namespace end.
    fn inner(&self, side: &str) -> String {
        format!("{}{side}n", self.p)
    }
    fn ip(side: &str) -> &'static str {
        if side == "a" {
            "10.77.0.1"
        } else {
            "10.77.0.2"
        }
    }

    fn add_side(&self, side: &str) {
        let (ns, root, inner) = (self.ns(side), self.root(side), self.inner(side));
        sh(&["ip", "netns", "add", &ns]);
        sh(&[
            "ip", "link", "add", &root, "type", "veth", "peer", "name", &inner, "netns", &ns,
        ]);
        // The root end carries no addresses; keep IPv6 from adding noise to the counters.
        let _ = run(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{root}.disable_ipv6=1"),
        ]);
        sh(&["ip", "link", "set", &root, "up"]);
        let addr = format!("{}/24", Self::ip(side));
        sh(&["ip", "-n", &ns, "addr", "add", &addr, "dev", &inner]);
        sh(&["ip", "-n", &ns, "link", "set", &inner, "up"]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        // Full checksums and no super-frames from the namespace's stack.
        sh(&[
            "ip", "netns", "exec", &ns, "ethtool", "-K", &inner, "tx", "off", "tso", "off", "gso",
            "off", "gro", "off",
        ]);
    }

    /// `ip link show` of the root-side ends mentions no XDP program.
    fn assert_no_xdp(&self) {
        for side in ["a", "b"] {
            let o = run(&["ip", "link", "show", "dev", &self.root(side)]);
            let s = String::from_utf8_lossy(&o.stdout);
            assert!(
                !s.contains("xdp"),
                "XDP program left on {}: {s}",
                self.root(side)
            );
        }
    }

    fn has_xdp(&self, side: &str) -> bool {
        String::from_utf8_lossy(&run(&["ip", "link", "show", "dev", &self.root(side)]).stdout)
            .contains("xdp")
    }

    /// RX packet counter of a namespace-side veth.
    fn inner_rx_packets(&self, side: &str) -> u64 {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.ns(side),
            "cat",
            &format!("/sys/class/net/{}/statistics/rx_packets", self.inner(side)),
        ])
        .trim()
        .parse()
        .expect("rx_packets is a number")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.extra("g")]);
        for side in ["a", "b"] {
            let _ = run(&["ip", "link", "del", &self.root(side)]);
            let _ = run(&["ip", "netns", "del", &self.ns(side)]);
        }
    }
}

fn open(iface: &str, req: PortRequest) -> OpenedPort {
    port::open(iface, req).unwrap_or_else(|e| panic!("open {iface} as {req:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// A minimal forwarder: everything from one port goes out of the other

fn forward_once(src: &mut OpenedPort, dst: &mut OpenedPort, bufs: &mut [PacketBuf]) -> usize {
    let mut moved = 0;
    for q in 0..src.queues.len() {
        let n = src.queues[q].recv(bufs);
        if n > 0 {
            let frames: Vec<&[u8]> = bufs[..n].iter().map(|b| b.data()).collect();
            // Lab veths have one queue: everything leaves through queue 0.
            dst.queues[0].send(&frames);
            moved += n;
        }
    }
    moved
}

/// Like [`forward_once`] through the in-place forms: frames lent by `recv_in_place` (checked to
/// have headroom for a pushed tag) are staged straight into `dst` and flushed — one copy per
/// frame, as the datapath worker does.
fn forward_in_place(src: &mut OpenedPort, dst: &mut OpenedPort) -> usize {
    let mut moved = 0;
    let out = &mut dst.queues[0];
    for q in src.queues.iter_mut() {
        assert!(q.recv_in_place_supported());
        moved += q.recv_in_place(32, &mut |bufs| {
            for b in bufs.iter_mut() {
                assert!(b.headroom() >= 64, "lent frame without headroom");
                // A tag's worth pushed and pulled again: the frame is unchanged.
                assert!(b.push_front(4) && b.pull_front(4));
                out.stage(b.data(), None);
            }
        });
    }
    out.flush();
    moved
}

struct Forwarder {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(OpenedPort, OpenedPort, u64)>,
}

impl Forwarder {
    /// Forward between `a` and `b` on a thread until stopped or `limit` elapsed.
    fn start(a: OpenedPort, b: OpenedPort, limit: Duration) -> Forwarder {
        Self::start_with(a, b, limit, false)
    }

    /// The same, through `recv_in_place` and `stage`/`flush` if `in_place`.
    fn start_with(
        mut a: OpenedPort,
        mut b: OpenedPort,
        limit: Duration,
        in_place: bool,
    ) -> Forwarder {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut bufs: Vec<PacketBuf> = (0..32).map(|_| PacketBuf::from_frame(&[])).collect();
            let start = Instant::now();
            let mut moved = 0u64;
            while !s.load(Ordering::Relaxed) && start.elapsed() < limit {
                let n = if in_place {
                    forward_in_place(&mut a, &mut b) + forward_in_place(&mut b, &mut a)
                } else {
                    forward_once(&mut a, &mut b, &mut bufs)
                        + forward_once(&mut b, &mut a, &mut bufs)
                };
                for q in a.queues.iter_mut().chain(b.queues.iter_mut()) {
                    q.poll().expect("port vanished during forwarding");
                }
                moved += n as u64;
                if n == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            (a, b, moved)
        });
        Forwarder { stop, handle }
    }

    fn stop(self) -> (OpenedPort, OpenedPort, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("forwarder thread panicked")
    }
}

fn ping(lab: &Lab, dst: &str) -> (bool, String) {
    let o = run(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("a"),
        "ping",
        "-c",
        "5",
        "-W",
        "1",
        "-i",
        "0.2",
        dst,
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    (out.contains("5 packets transmitted, 5 received"), out)
}

fn ping_through(ka: PortRequest, kb: PortRequest) {
    ping_through_lab(&Lab::new(), ka, kb, Lab::ip("b"));
}

fn ping_through_lab(lab: &Lab, ka: PortRequest, kb: PortRequest, dst: &str) {
    let a = open(&lab.root("a"), ka);
    let b = open(&lab.root("b"), kb);
    eprintln!("port a: {:?}\nport b: {:?}", a.info, b.info);
    let fwd = Forwarder::start(a, b, Duration::from_secs(10));
    let (ok, out) = ping(lab, dst);
    let (a, b, moved) = fwd.stop();
    eprintln!("{out}forwarded {moved} frames");
    for q in a.queues.iter().chain(b.queues.iter()) {
        eprintln!("{:?}", q.counters());
    }
    assert!(ok, "not all 5 pings answered:\n{out}");
    drop((a, b));
    lab.assert_no_xdp();
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn ping_through_afxdp_forwarder() {
    if !lab_available("ping_through_afxdp_forwarder") {
        return;
    }
    ping_through(PortRequest::Afxdp, PortRequest::Afxdp);
}

#[test]
fn ping_through_afpacket_forwarder() {
    if !lab_available("ping_through_afpacket_forwarder") {
        return;
    }
    ping_through(PortRequest::Afpacket, PortRequest::Afpacket);
}

#[test]
fn ping_through_mixed_forwarder() {
    if !lab_available("ping_through_mixed_forwarder") {
        return;
    }
    ping_through(PortRequest::Auto, PortRequest::Afpacket);
}

const RAW_SEND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
s.send(bytes.fromhex(sys.argv[2]))
"#;

/// A namespace sends an 802.1Q-tagged frame; the root-side port must deliver it with its tag.
/// (The kernel strips the tag before packet sockets see a frame; the AF_PACKET queue puts it
/// back from PACKET_AUXDATA. No 8021q module here, so the frame comes from a raw socket.)
fn vlan_tag_survives(req: PortRequest) {
    let lab = Lab::new();
    let mut p = open(&lab.root("a"), req);
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x81, 0x00, 0x20, 0x0a, 0x88, 0xb5]);
    frame.extend_from_slice(b"vlan tag test frame");
    frame.resize(64, 0x5a);
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("a"),
        "python3",
        "-c",
        RAW_SEND,
        &lab.inner("a"),
        &hex,
    ]);
    let mut bufs: Vec<PacketBuf> = (0..8).map(|_| PacketBuf::from_frame(&[])).collect();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        let n = p.queues[0].recv(&mut bufs);
        seen = bufs[..n]
            .iter()
            .map(|b| b.data().to_vec())
            .find(|d| d.windows(19).any(|w| w == b"vlan tag test frame"));
        p.queues[0].poll().expect("poll");
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen = seen.expect("the tagged frame arrived");
    assert_eq!(seen, frame, "{req:?} changed the frame");
    drop(p);
    lab.assert_no_xdp();
}

#[test]
fn vlan_tag_survives_afpacket() {
    if !lab_available("vlan_tag_survives_afpacket") {
        return;
    }
    vlan_tag_survives(PortRequest::Afpacket);
}

#[test]
fn vlan_tag_survives_afxdp() {
    if !lab_available("vlan_tag_survives_afxdp") {
        return;
    }
    vlan_tag_survives(PortRequest::Afxdp);
}

#[test]
fn afxdp_serves_every_active_queue() {
    if !lab_available("afxdp_serves_every_active_queue") {
        return;
    }
    let lab = Lab::new();
    for side in ["a", "b"] {
        sh(&["ethtool", "-L", &lab.root(side), "rx", "2", "tx", "2"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.ns(side),
            "ethtool",
            "-L",
            &lab.inner(side),
            "rx",
            "2",
            "tx",
            "2",
        ]);
    }
    let p = open(&lab.root("a"), PortRequest::Afxdp);
    assert_eq!(p.info.queues, 2);
    assert_eq!(p.queues.len(), 2);
    drop(p);
    lab.assert_no_xdp();
    ping_through_lab(&lab, PortRequest::Afxdp, PortRequest::Afxdp, Lab::ip("b"));
}

#[test]
fn afxdp_mode_on_veth_is_reported() {
    if !lab_available("afxdp_mode_on_veth_is_reported") {
        return;
    }
    let lab = Lab::new();
    let p = open(&lab.root("a"), PortRequest::Auto);
    eprintln!("{:?}", p.info);
    assert_eq!(p.info.kind, PortKind::Afxdp);
    assert_eq!(p.info.mode, "native, copy");
    assert_eq!(p.info.queues, 1);
    assert_eq!(p.queues.len(), 1);
    assert!(lab.has_xdp("a"), "program attached while the port is open");
    // A second AF_XDP open of the same interface in this process is refused, not a crash.
    match port::open(&lab.root("a"), PortRequest::Afxdp) {
        Err(PortError::Unavailable { reason, .. }) => assert!(reason.contains("already open")),
        other => panic!("second open: {:?}", other.map(|p| p.info)),
    }
    drop(p);
    lab.assert_no_xdp();
}

const TCP_SERVER: &str = r#"
import socket, hashlib, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(10)
c, _ = s.accept(); c.settimeout(10)
h = hashlib.sha256(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
print(n, h.hexdigest())
"#;

const TCP_CLIENT: &str = r#"
import socket, hashlib, sys, time
data = bytes((i * 7 + i // 251) & 0xff for i in range(1 << 20))
for _ in range(50):
    try:
        c = socket.create_connection((sys.argv[1], 5001), timeout=10); break
    except OSError:
        time.sleep(0.1)
c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
print(len(data), hashlib.sha256(data).hexdigest())
"#;

#[test]
fn tcp_megabyte_through_afxdp_forwarder() {
    if !lab_available("tcp_megabyte_through_afxdp_forwarder") {
        return;
    }
    tcp_megabyte_through(PortRequest::Afxdp);
}

#[test]
fn tcp_megabyte_through_afpacket_forwarder() {
    if !lab_available("tcp_megabyte_through_afpacket_forwarder") {
        return;
    }
    tcp_megabyte_through(PortRequest::Afpacket);
}

#[test]
fn tcp_megabyte_through_afxdp_in_place_forwarder() {
    if !lab_available("tcp_megabyte_through_afxdp_in_place_forwarder") {
        return;
    }
    tcp_megabyte_through_with(PortRequest::Afxdp, true);
}

/// 3000 flood pings each way through the in-place forwarder: more frames than a queue has RX
/// chunks (2048), so every lent chunk must have gone back to the fill ring for all to arrive.
#[test]
fn afxdp_in_place_gives_every_chunk_back() {
    if !lab_available("afxdp_in_place_gives_every_chunk_back") {
        return;
    }
    let lab = Lab::new();
    let a = open(&lab.root("a"), PortRequest::Afxdp);
    let b = open(&lab.root("b"), PortRequest::Afxdp);
    let fwd = Forwarder::start_with(a, b, Duration::from_secs(20), true);
    let o = run(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("a"),
        "ping",
        "-f",
        "-c",
        "3000",
        "-w",
        "15",
        Lab::ip("b"),
    ]);
    let (a, b, moved) = fwd.stop();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("{out}forwarded {moved} frames");
    let rx_a: u64 = a.queues.iter().map(|q| q.counters().rx_packets).sum();
    for q in a.queues.iter().chain(b.queues.iter()) {
        eprintln!("{:?}", q.counters());
    }
    assert!(
        out.contains("3000 packets transmitted, 3000 received"),
        "flood pings lost:\n{out}"
    );
    assert!(rx_a >= 3000, "port a received only {rx_a} frames");
    drop((a, b));
    lab.assert_no_xdp();
}

fn tcp_megabyte_through(req: PortRequest) {
    tcp_megabyte_through_with(req, false)
}

fn tcp_megabyte_through_with(req: PortRequest, in_place: bool) {
    let lab = Lab::new();
    let a = open(&lab.root("a"), req);
    let b = open(&lab.root("b"), req);
    let fwd = Forwarder::start_with(a, b, Duration::from_secs(10), in_place);
    let server = Command::new("timeout")
        .args([
            "10",
            "ip",
            "netns",
            "exec",
            &lab.ns("b"),
            "python3",
            "-c",
            TCP_SERVER,
        ])
        .arg(Lab::ip("b"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start server");
    let client = run(&[
        "timeout",
        "10",
        "ip",
        "netns",
        "exec",
        &lab.ns("a"),
        "python3",
        "-c",
        TCP_CLIENT,
        Lab::ip("b"),
    ]);
    let server = server.wait_with_output().expect("server output");
    let (a, b, moved) = fwd.stop();
    let sent = String::from_utf8_lossy(&client.stdout).trim().to_string();
    let got = String::from_utf8_lossy(&server.stdout).trim().to_string();
    eprintln!("client: {sent}\nserver: {got}\nforwarded {moved} frames");
    eprintln!("{}", String::from_utf8_lossy(&client.stderr));
    eprintln!("{}", String::from_utf8_lossy(&server.stderr));
    for q in a.queues.iter().chain(b.queues.iter()) {
        eprintln!("{:?}", q.counters());
    }
    assert!(
        sent.starts_with("1048576 "),
        "client did not finish: {sent}"
    );
    assert_eq!(sent, got, "bytes or checksum differ");
    drop((a, b));
    lab.assert_no_xdp();
}

/// Distinct broadcast frames of an experimental EtherType, so nothing in the namespace answers.
fn test_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5]);
            f.extend_from_slice(&(i as u32).to_be_bytes());
            f.resize(60, 0xa5);
            f
        })
        .collect()
}

fn burst_arrives(req: PortRequest) {
    let lab = Lab::new();
    let mut p = open(&lab.root("a"), req);
    let frames = test_frames(1000);
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let before = lab.inner_rx_packets("a");
    let q = &mut p.queues[0];
    let accepted = q.send(&refs);
    let deadline = Instant::now() + Duration::from_secs(5);
    while q.tx_pending() && Instant::now() < deadline {
        q.poll().expect("poll");
        std::thread::sleep(Duration::from_micros(100));
    }
    assert!(!q.tx_pending(), "completions still outstanding after 5 s");
    let delivered = lab.inner_rx_packets("a") - before;
    eprintln!(
        "{req:?} ({}): accepted {accepted}, peer received {delivered}, {:?}",
        p.info.mode,
        q.counters()
    );
    assert_eq!(accepted, 1000);
    assert!(
        delivered >= 1000,
        "only {delivered} of 1000 frames reached the peer"
    );
    drop(p);
    lab.assert_no_xdp();
}

#[test]
fn afxdp_burst_of_1000_frames_all_arrive() {
    if !lab_available("afxdp_burst_of_1000_frames_all_arrive") {
        return;
    }
    burst_arrives(PortRequest::Afxdp);
}

#[test]
fn afpacket_burst_of_1000_frames_all_arrive() {
    if !lab_available("afpacket_burst_of_1000_frames_all_arrive") {
        return;
    }
    burst_arrives(PortRequest::Afpacket);
}

/// Env var telling [`child_opens_afxdp_and_crashes`] which interface to open.
const CHILD_ENV: &str = "PORT_LAB_CRASH_ON_IFACE";

/// Not a test by itself: the crashed run of `stale_program_of_a_crashed_run_is_swept`. Without
/// the environment variable it does nothing.
#[test]
fn child_opens_afxdp_and_crashes() {
    let Ok(iface) = std::env::var(CHILD_ENV) else {
        return;
    };
    let p = open(&iface, PortRequest::Afxdp);
    println!("CHILD OPENED {}", p.info.mode);
    // Die without running any destructor, like a crashed daemon.
    std::process::abort();
}

#[test]
fn stale_program_of_a_crashed_run_is_swept() {
    if !lab_available("stale_program_of_a_crashed_run_is_swept") {
        return;
    }
    let lab = Lab::new();
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_opens_afxdp_and_crashes", "--nocapture"])
        .env(CHILD_ENV, lab.root("a"))
        .output()
        .expect("run child");
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(out.contains("CHILD OPENED"), "child did not open: {out}");
    assert!(!child.status.success(), "child was meant to crash");
    assert!(
        lab.has_xdp("a"),
        "the crashed run left its program attached"
    );

    // Re-open right away: the stale program is detached, EBUSY (if any) retried.
    let t = Instant::now();
    let p = open(&lab.root("a"), PortRequest::Afxdp);
    eprintln!("re-opened after crash in {:?}: {:?}", t.elapsed(), p.info);
    drop(p);
    lab.assert_no_xdp();

    // The sweep helper on its own: another crashed run, then sweep, then nothing attached.
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_opens_afxdp_and_crashes", "--nocapture"])
        .env(CHILD_ENV, lab.root("b"))
        .output()
        .expect("run child");
    assert!(String::from_utf8_lossy(&child.stdout).contains("CHILD OPENED"));
    assert!(lab.has_xdp("b"));
    let swept = port::sweep_stale_xdp([lab.root("a").as_str(), lab.root("b").as_str()]);
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!(swept[0].0, lab.root("b"));
    lab.assert_no_xdp();
}

#[test]
fn deleted_interface_is_gone_not_a_panic() {
    if !lab_available("deleted_interface_is_gone_not_a_panic") {
        return;
    }
    let lab = Lab::new();
    let mut x = open(&lab.root("a"), PortRequest::Afxdp);
    let mut k = open(&lab.root("b"), PortRequest::Afpacket);
    for p in [&mut x, &mut k] {
        p.queues[0].poll().expect("alive at first");
    }
    sh(&["ip", "link", "del", &lab.root("a")]);
    sh(&["ip", "link", "del", &lab.root("b")]);
    let frames = test_frames(40);
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let mut bufs: Vec<PacketBuf> = (0..8).map(|_| PacketBuf::from_frame(&[])).collect();
    for p in [&mut x, &mut k] {
        let q = &mut p.queues[0];
        let deadline = Instant::now() + Duration::from_secs(2);
        let gone = loop {
            // Keep using the queue the way a worker would: nothing may panic.
            q.send(&refs);
            q.recv(&mut bufs);
            match q.poll() {
                Err(PortError::Gone(i)) => break Some(i),
                Err(e) => panic!("unexpected error: {e}"),
                Ok(()) if Instant::now() > deadline => break None,
                Ok(()) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        eprintln!("{:?}: gone = {gone:?}, {:?}", p.info.kind, q.counters());
        assert_eq!(gone.as_deref(), Some(p.info.iface.as_str()));
    }
}

/// A bridge device has no native XDP: the port must fall back to generic (SKB) mode.
#[test]
fn afxdp_falls_back_to_generic_xdp() {
    if !lab_available("afxdp_falls_back_to_generic_xdp") {
        return;
    }
    let lab = Lab::new();
    let br = lab.extra("g");
    sh(&["ip", "link", "add", &br, "type", "bridge"]);
    sh(&["ip", "link", "set", &br, "up"]);
    let p = open(&br, PortRequest::Afxdp);
    eprintln!("{:?}", p.info);
    assert_eq!(p.info.mode, "generic, copy");
    drop(p);
    let shown = sh(&["ip", "link", "show", "dev", &br]);
    assert!(!shown.contains("xdp"), "{shown}");
}

/// With an MTU no UMEM chunk holds, AF_XDP is refused with the reason and `auto` falls back
/// to AF_PACKET, which still forwards.
#[test]
fn auto_falls_back_to_afpacket() {
    if !lab_available("auto_falls_back_to_afpacket") {
        return;
    }
    let lab = Lab::new();
    sh(&["ip", "link", "set", "dev", &lab.root("a"), "mtu", "9000"]);
    match port::open(&lab.root("a"), PortRequest::Afxdp) {
        Err(PortError::Unavailable { kind, reason, .. }) => {
            eprintln!("afxdp refused: {reason}");
            assert_eq!(kind, "afxdp");
            assert!(reason.contains("MTU 9000"), "{reason}");
        }
        other => panic!("expected Unavailable, got {:?}", other.map(|p| p.info)),
    }
    let a = open(&lab.root("a"), PortRequest::Auto);
    assert_eq!(a.info.kind, PortKind::Afpacket);
    assert_eq!(a.info.mtu, 9000);
    drop(a);
    ping_through_lab(&lab, PortRequest::Auto, PortRequest::Auto, Lab::ip("b"));
}

#[test]
fn missing_interface_is_reported() {
    // No privileges needed.
    assert!(matches!(
        port::open("plnosuch0", PortRequest::Auto),
        Err(PortError::NoSuchInterface(_))
    ));
}
