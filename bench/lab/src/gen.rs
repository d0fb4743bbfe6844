//! Traffic generator: BPF_PROG_RUN in XDP live-frames mode on the generator's veth end. A
//! trivial program returns XDP_TX, which the kernel turns into a redirect out of
//! `ingress_ifindex`, i.e. into the veth peer (the port of the switch under test). One core
//! offers millions of frames per second this way, far more than `trafgen`.

use crate::{bpf_prog, cpu, frame, netif, stop::Stop, sys};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};

pub struct Args {
    pub dev: String,
    pub flows: u32,
    pub seconds: f64,
    pub max_frames: u64,
    pub batch: u32,
    pub dst_mac: [u8; 6],
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    /// The peer under test, for its CPU time over the traffic window.
    pub peer_pid: Option<u32>,
}

/// First UDP source port; flows use `BASE_PORT .. BASE_PORT + flows`.
const BASE_PORT: u16 = 1024;
/// Each BPF_PROG_RUN call lasts about this long (the last one is cut to the deadline; a signal
/// interrupts a call at once). Per-call setup is not free: with 50 ms calls CPU 0 sat idle
/// ~25% of the time and offered ~1.9 Mpps, with 250 ms calls ~97% busy and ~2.9 Mpps.
const CALL_TARGET: Duration = Duration::from_millis(250);

pub fn run(a: &Args) -> Result<()> {
    if a.flows == 0 || a.flows > 60_000 {
        bail!(
            "--flows must be 1..=60000 (distinct UDP source ports), got {}",
            a.flows
        );
    }
    if a.batch == 0 || a.batch > 256 {
        bail!(
            "--batch must be 1..=256 (the kernel's limit for live frames), got {}",
            a.batch
        );
    }
    let ifindex = netif::ifindex(&a.dev)?;
    let data = frame::build(&frame::FrameSpec {
        src_mac: netif::mac(&a.dev)?,
        dst_mac: a.dst_mac,
        src_ip: a.src_ip,
        dst_ip: a.dst_ip,
        src_port: BASE_PORT,
        dst_port: 9,
    });
    let insns = if a.flows == 1 {
        bpf_prog::constant(bpf_prog::XDP_TX)
    } else {
        bpf_prog::spread_flows(a.flows, BASE_PORT)
    };
    let prog = sys::prog_load_xdp(&insns, "benchlab_gen").map_err(|e| {
        anyhow::anyhow!("loading the generator's XDP program: {e} (needs root/CAP_BPF)")
    })?;
    let ctx = sys::XdpMd {
        data: 0,
        data_end: data.len() as u32,
        data_meta: 0,
        ingress_ifindex: ifindex,
        rx_queue_index: 0,
        egress_ifindex: 0,
    };

    let stop = Stop::new(Duration::from_secs_f64(a.seconds))?;
    let tx0 = netif::counter(&a.dev, "tx_packets")?;
    let cpu0 = cpu::snapshot(a.peer_pid);
    let start = Instant::now();
    let mut offered: u64 = 0;
    let mut repeat: u32 = 20_000;
    while !stop.should_stop() && offered < a.max_frames {
        let left = a.max_frames - offered;
        let n = (repeat as u64).min(left) as u32;
        let t = Instant::now();
        match sys::prog_test_run_xdp(
            &prog,
            &data,
            &ctx,
            n,
            sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            a.batch,
        ) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => break,
            Err(e) if offered == 0 => {
                return Err(e).context(
                    "BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES failed (kernel >= 5.18 needed; \
                     is the device up and its peer able to receive XDP frames?). \
                     Fallback: trafgen (netsniff-ng)",
                )
            }
            Err(e) => return Err(e).context("BPF_PROG_RUN (live frames)"),
        }
        offered += n as u64;
        // Size the next call from the rate just seen, and never overrun the deadline by more
        // than a fraction of a call.
        let rate = n as f64 / t.elapsed().as_secs_f64().max(1e-6);
        let budget = CALL_TARGET.min(stop.remaining()).as_secs_f64();
        repeat = (rate * budget).clamp(1_000.0, 50_000_000.0) as u32;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = cpu::snapshot(a.peer_pid);
    let tx = netif::counter(&a.dev, "tx_packets")? - tx0;
    // One line of key=value pairs for the runner.
    println!(
        "generator=xdp-live-frames flows={} offered={} seconds={:.3} offered_pps={:.0} dev_tx_packets={} dev_tx_pps={:.0} {}",
        a.flows,
        offered,
        secs,
        offered as f64 / secs,
        tx,
        tx as f64 / secs,
        cpu::report(&cpu0, &cpu1, secs, sys::clock_ticks())
    );
    Ok(())
}
