//! Frames the kernel drops before the switch sees them — an AF_XDP port's fill ring empty or
//! RX ring full because the worker does not keep up — are reported by `dump-ports` as drop
//! reasons of that port (`xsk_fill_ring_empty`, `xsk_rx_ring_full`). The overload comes from
//! the bench's generator (`benchlab gen`: BPF_PROG_RUN live frames, millions of frames per
//! second from one core) inside the lab's sending namespace.

use integration::lab::switch::{add_flows, add_port, dump_ports, PortStats};
use integration::lab::{hosts, require_root, Lab};
use integration::{bin_dir, Daemon};
use std::time::Duration;

/// `port`'s counters as `dump-ports` reports them.
fn port_stats(d: &Daemon, port: &str) -> PortStats {
    dump_ports(d, "br0")
        .into_iter()
        .find(|p| p.name == port)
        .expect("port listed")
}

/// The kernel's drops of `port`: fill ring empty or RX ring full.
fn kernel_drops(p: &PortStats) -> u64 {
    ["xsk_fill_ring_empty", "xsk_rx_ring_full"]
        .iter()
        .map(|r| p.drops.get(*r).copied().unwrap_or(0))
        .sum()
}

#[test]
fn kernel_drops_under_overload_are_reported_per_port() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let h = hosts(&lab, 87, 2);
    let d = Daemon::lab("lab-xsk-drops");
    d.swctl(&["add-br", "br0"]).expect_ok("add-br");
    add_port(&d, "br0", h[0].port(), Some("afxdp"), Some(1));
    add_port(&d, "br0", h[1].port(), Some("afxdp"), Some(2));
    add_flows(&d, "br0", &["priority=100,in_port=1 actions=output:2"]);
    assert_eq!(
        kernel_drops(&port_stats(&d, h[0].port())),
        0,
        "nothing offered yet"
    );

    // About a second of 64-byte frames at a few million per second (bounded in count too):
    // far beyond what one worker of a debug build forwards.
    let benchlab = bin_dir().join("benchlab");
    let out = h[0].ns.exec_timeout(
        &[
            benchlab.to_str().expect("utf-8 path"),
            "gen",
            "--dev",
            "eth0",
            "--seconds",
            "1",
            "--max-frames",
            "5000000",
            "--dst-mac",
            &h[1].mac,
            "--src-ip",
            &h[0].ip,
            "--dst-ip",
            &h[1].ip,
            "--mode",
            "live",
        ],
        Duration::from_secs(30),
    );
    assert!(out.ok, "generator: {out:?}");
    let offered: u64 = out
        .stdout
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("offered="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no offered= in {out:?}"));
    // Let the worker drain its rings before reading the counters.
    std::thread::sleep(Duration::from_millis(500));

    let stats = port_stats(&d, h[0].port());
    let dropped = kernel_drops(&stats);
    let received = stats.rx_packets;
    eprintln!("offered {offered}, received {received}, dropped by the kernel {dropped}");
    assert!(
        dropped > 0,
        "overload shows kernel drops: {:?}",
        dump_ports(&d, "br0")
    );
    // The veth may drop some frames itself before XDP; what reached the socket or was dropped
    // by it cannot exceed what was offered.
    assert!(
        received + dropped <= offered,
        "received {received} + dropped {dropped} <= offered {offered}"
    );
    assert!(
        received + dropped >= offered / 2,
        "most offered frames reach the socket's accounting: received {received} + dropped \
         {dropped} of {offered}"
    );
}
