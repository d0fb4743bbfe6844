//! The bare AF_XDP forwarder: the I/O ceiling of an AF_XDP switch on veth. Two copy-mode
//! sockets (one per port, queue 0), each frame received on one is copied into the other's UMEM
//! and transmitted; no parsing, no lookup. Mirrors what a switch worker must do at minimum:
//! - fill rings kept stocked (an RX frame goes straight back once copied),
//! - at most 32 TX descriptors per kick (copy mode sends ≤ 32 per sendto; more would stall),
//! - kick again while TX descriptors are outstanding, reap completions every pass.
//!
//! Busy time is accounted as `vswitchd`'s `pmd-stats` does it, so the two "busy ns per packet"
//! figures compare: a pass's busy part starts when its first frame shows up (one clock read)
//! and ends after its kicks and completions (a second one); passes that find nothing are idle
//! and read no clock. SIGUSR1 prints the figures since the previous SIGUSR1 (`stats ...`) and
//! starts a new interval: the lab script sends one before and one after each measurement.

use crate::{bpf_prog, netif, stop::Stop, sys};
use anyhow::{Context, Result};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRAMES: u32 = 4096;
const FRAME_SIZE: u32 = 2048;
const RING: u32 = 2048;
/// Copy-mode TX budget per sendto.
const BATCH: u32 = 32;

struct Port {
    name: String,
    xsk: sys::Xsk,
    /// Frames of this UMEM free for TX (the other half of the UMEM feeds the fill ring).
    tx_free: Vec<u64>,
    rx: u64,
    tx: u64,
}

impl Port {
    fn open(name: &str) -> Result<(Port, sys::OwnedLink)> {
        let ifindex = netif::ifindex(name)?;
        let mut xsk = sys::Xsk::new(ifindex, 0, FRAMES, FRAME_SIZE, RING)
            .with_context(|| format!("port {name}"))?;
        // Lower half of the UMEM: RX (fill ring); upper half: TX.
        let half = FRAMES / 2;
        for i in 0..half {
            xsk.fill.write(i, i as u64 * FRAME_SIZE as u64);
        }
        xsk.fill.submit(half);
        let tx_free = (half..FRAMES)
            .map(|i| i as u64 * FRAME_SIZE as u64)
            .collect();
        let map = sys::xskmap_create(64).context("creating XSKMAP")?;
        sys::map_update_u32(&map, 0, xsk.raw_fd()).context("XSKMAP update")?;
        let prog = sys::prog_load_xdp(
            &bpf_prog::xsk_redirect(map.as_raw_fd() as u32),
            "benchlab_xsk",
        )?;
        let link = sys::xdp_link(&prog, ifindex)
            .with_context(|| format!("attaching the XSK redirect program to {name}"))?;
        let owned = sys::OwnedLink {
            _link: link,
            _prog: prog,
            _map: map,
        };
        Ok((
            Port {
                name: name.to_string(),
                xsk,
                tx_free,
                rx: 0,
                tx: 0,
            },
            owned,
        ))
    }

    /// Completions: TX frames come back to the free list.
    fn reap(&mut self) {
        let n = self.xsk.comp.available();
        for i in 0..n {
            let addr = self.xsk.comp.read(i);
            self.tx_free.push(addr & !(FRAME_SIZE as u64 - 1));
        }
        self.xsk.comp.release(n);
    }
}

/// Move up to BATCH frames from `src`'s RX ring to `dst`'s TX ring. Returns frames moved.
/// The pass's busy part starts (`clock`) before the first copy.
fn forward(src: &mut Port, dst: &mut Port, clock: &mut BusyClock) -> u32 {
    let n = src
        .xsk
        .rx
        .available()
        .min(BATCH)
        .min(dst.xsk.tx.free())
        .min(dst.tx_free.len() as u32)
        .min(src.xsk.fill.free());
    clock.frames(n);
    for i in 0..n {
        let d = src.xsk.rx.read(i);
        let to = dst.tx_free.pop().expect("counted above");
        let len = d.len.min(FRAME_SIZE);
        dst.xsk
            .frame_mut(to, len)
            .copy_from_slice(src.xsk.frame(d.addr, len));
        dst.xsk.tx.write(
            i,
            libc::xdp_desc {
                addr: to,
                len,
                options: 0,
            },
        );
        // Copied: the RX frame can go back to the kernel at once.
        src.xsk.fill.write(i, d.addr & !(FRAME_SIZE as u64 - 1));
    }
    if n > 0 {
        src.xsk.rx.release(n);
        src.xsk.fill.submit(n);
        dst.xsk.tx.submit(n);
        src.rx += n as u64;
        dst.tx += n as u64;
    }
    n
}

fn kick(p: &Port) -> Result<()> {
    if p.xsk.tx.outstanding() > 0 {
        p.xsk
            .kick_tx()
            .with_context(|| format!("sendto on {}", p.name))?;
    }
    Ok(())
}

/// Busy/idle accounting of the forwarding loop (see the module docs).
struct BusyClock {
    /// Start of the current pass's busy part, if a frame showed up in it.
    busy_since: Option<Instant>,
    /// End of the last busy part: idle time runs from here.
    idle_since: Instant,
    busy_ns: u64,
    idle_ns: u64,
    packets: u64,
    busy_passes: u64,
    /// Idle stretches by length: < 1 µs, < 10 µs, < 100 µs, < 1 ms, longer.
    idle_hist: [u64; 5],
}

impl BusyClock {
    fn new() -> BusyClock {
        BusyClock {
            busy_since: None,
            idle_since: Instant::now(),
            busy_ns: 0,
            idle_ns: 0,
            packets: 0,
            busy_passes: 0,
            idle_hist: [0; 5],
        }
    }

    /// Frames showed up in this pass: its busy part starts now unless it already has.
    fn frames(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.packets += u64::from(n);
        if self.busy_since.is_none() {
            let t = Instant::now();
            let idle = t.saturating_duration_since(self.idle_since).as_nanos() as u64;
            self.idle_ns += idle;
            let bucket = match idle {
                0..1_000 => 0,
                1_000..10_000 => 1,
                10_000..100_000 => 2,
                100_000..1_000_000 => 3,
                _ => 4,
            };
            self.idle_hist[bucket] += 1;
            self.busy_since = Some(t);
        }
    }

    fn end_pass(&mut self) {
        if let Some(t0) = self.busy_since.take() {
            let t1 = Instant::now();
            self.busy_ns += t1.saturating_duration_since(t0).as_nanos() as u64;
            self.busy_passes += 1;
            self.idle_since = t1;
        }
    }

    /// Print the interval's figures and start a new one.
    fn report(&mut self) {
        let per_packet = if self.packets > 0 {
            self.busy_ns as f64 / self.packets as f64
        } else {
            0.0
        };
        let total = (self.busy_ns + self.idle_ns).max(1);
        println!(
            "stats packets={} busy_ns={} idle_ns={} busy_ns_per_packet={per_packet:.1} \
             idle_pct={:.1} packets_per_busy_pass={:.1} idle_stretches_1us_10us_100us_1ms_more={:?}",
            self.packets,
            self.busy_ns,
            self.idle_ns,
            self.idle_ns as f64 * 100.0 / total as f64,
            self.packets as f64 / self.busy_passes.max(1) as f64,
            self.idle_hist,
        );
        *self = BusyClock {
            idle_since: Instant::now(),
            ..BusyClock::new()
        };
    }
}

pub fn run(a: &str, b: &str, seconds: f64) -> Result<()> {
    let (mut pa, _la) = Port::open(a)?;
    let (mut pb, _lb) = Port::open(b)?;
    let stop = Stop::new(Duration::from_secs_f64(seconds))?;
    let report = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&report))
        .context("SIGUSR1 handler")?;
    println!("ready a={a} b={b}");
    let start = Instant::now();
    let mut clock = BusyClock::new();
    let mut spins: u64 = 0;
    loop {
        // The deadline check costs a clock read: do it every 1024 passes.
        spins += 1;
        if spins & 1023 == 0 {
            if stop.should_stop() {
                break;
            }
            if report.swap(false, Ordering::Relaxed) {
                clock.report();
                for p in [&pa, &pb] {
                    if let Ok(st) = p.xsk.statistics() {
                        println!(
                            "xsk {} rx_dropped={} rx_ring_full={} rx_fill_ring_empty={} \
                             tx_ring_empty={} (since start)",
                            p.name,
                            st.rx_dropped,
                            st.rx_ring_full,
                            st.rx_fill_ring_empty_descs,
                            st.tx_ring_empty_descs
                        );
                    }
                }
            }
        }
        forward(&mut pa, &mut pb, &mut clock);
        forward(&mut pb, &mut pa, &mut clock);
        kick(&pa)?;
        kick(&pb)?;
        pa.reap();
        pb.reap();
        clock.end_pass();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "forwarder {a}->{b}: rx={} tx={}; {b}->{a}: rx={} tx={}; seconds={secs:.3}",
        pa.rx, pb.tx, pb.rx, pa.tx
    );
    Ok(())
}
