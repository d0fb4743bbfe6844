//! The bare AF_XDP forwarder: the I/O ceiling of an AF_XDP switch on veth. Two copy-mode
//! sockets (one per port, queue 0), each frame received on one is copied into the other's UMEM
//! and transmitted; no parsing, no lookup. Mirrors what a switch worker must do at minimum:
//! - fill rings kept stocked (an RX frame goes straight back once copied),
//! - at most 32 TX descriptors per kick (copy mode sends ≤ 32 per sendto; more would stall),
//! - kick again while TX descriptors are outstanding, reap completions every pass.

use crate::{bpf_prog, netif, stop::Stop, sys};
use anyhow::{Context, Result};
use std::os::fd::AsRawFd;
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
fn forward(src: &mut Port, dst: &mut Port) -> u32 {
    let n = src
        .xsk
        .rx
        .available()
        .min(BATCH)
        .min(dst.xsk.tx.free())
        .min(dst.tx_free.len() as u32)
        .min(src.xsk.fill.free());
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

pub fn run(a: &str, b: &str, seconds: f64) -> Result<()> {
    let (mut pa, _la) = Port::open(a)?;
    let (mut pb, _lb) = Port::open(b)?;
    let stop = Stop::new(Duration::from_secs_f64(seconds))?;
    println!("ready a={a} b={b}");
    let start = Instant::now();
    let mut spins: u64 = 0;
    loop {
        // The deadline check costs a clock read: do it every 1024 passes.
        spins += 1;
        if spins & 1023 == 0 && stop.should_stop() {
            break;
        }
        forward(&mut pa, &mut pb);
        forward(&mut pb, &mut pa);
        kick(&pa)?;
        kick(&pb)?;
        pa.reap();
        pb.reap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "forwarder {a}->{b}: rx={} tx={}; {b}->{a}: rx={} tx={}; seconds={secs:.3}",
        pa.rx, pb.tx, pb.rx, pa.tx
    );
    Ok(())
}
