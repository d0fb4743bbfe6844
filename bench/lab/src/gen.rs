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
    /// Every frame a new UDP 5-tuple (random source and destination ports) instead of `flows`.
    pub new_conns: bool,
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

/// Which transmitter: live frames, AF_PACKET, or live frames falling back to AF_PACKET.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Auto,
    Live,
    Packet,
}

fn frame_for(a: &Args, src_mac: [u8; 6], src_port: u16) -> Vec<u8> {
    frame::build(&frame::FrameSpec {
        src_mac,
        dst_mac: a.dst_mac,
        src_ip: a.src_ip,
        dst_ip: a.dst_ip,
        src_port,
        dst_port: 9,
    })
}

pub fn run(a: &Args, mode: Mode) -> Result<()> {
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
    if a.new_conns && mode == Mode::Packet {
        bail!(
            "--new-conns needs live frames (the AF_PACKET sender cycles through prebuilt frames)"
        );
    }
    let ifindex = netif::ifindex(&a.dev)?;
    let src_mac = netif::mac(&a.dev)?;
    let stop = Stop::new(Duration::from_secs_f64(a.seconds))?;
    let tx0 = netif::counter(&a.dev, "tx_packets")?;
    let cpu0 = cpu::snapshot(a.peer_pid);
    let start = Instant::now();
    let (name, offered) = match mode {
        Mode::Packet => ("af-packet", packet(a, ifindex, src_mac, &stop)?),
        Mode::Live | Mode::Auto => match live(a, ifindex, src_mac, &stop) {
            Ok(n) => ("xdp-live-frames", n),
            Err(e) if mode == Mode::Auto && e.unavailable && !a.new_conns => {
                eprintln!(
                    "benchlab gen: live frames unavailable ({}); falling back to AF_PACKET",
                    e.err
                );
                ("af-packet", packet(a, ifindex, src_mac, &stop)?)
            }
            Err(e) => return Err(e.err),
        },
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = cpu::snapshot(a.peer_pid);
    let tx = netif::counter(&a.dev, "tx_packets")? - tx0;
    // One line of key=value pairs for the runner.
    let flows = if a.new_conns {
        "new".to_string()
    } else {
        a.flows.to_string()
    };
    println!(
        "generator={name} flows={flows} offered={} seconds={:.3} offered_pps={:.0} dev_tx_packets={} dev_tx_pps={:.0} {}",
        offered,
        secs,
        offered as f64 / secs,
        tx,
        tx as f64 / secs,
        cpu::report(&cpu0, &cpu1, secs, sys::clock_ticks())
    );
    Ok(())
}

struct LiveError {
    err: anyhow::Error,
    /// The very first call failed: the kernel lacks live frames (or refuses them here).
    unavailable: bool,
}

/// Live frames: returns the frames offered.
fn live(a: &Args, ifindex: u32, src_mac: [u8; 6], stop: &Stop) -> Result<u64, LiveError> {
    let fail = |err: anyhow::Error, unavailable| LiveError { err, unavailable };
    let data = frame_for(a, src_mac, BASE_PORT);
    let insns = if a.new_conns {
        bpf_prog::new_tuples(BASE_PORT)
    } else if a.flows == 1 {
        bpf_prog::constant(bpf_prog::XDP_TX)
    } else {
        bpf_prog::spread_flows(a.flows, BASE_PORT)
    };
    let prog = sys::prog_load_xdp(&insns, "benchlab_gen").map_err(|e| {
        fail(
            anyhow::anyhow!("loading the generator's XDP program: {e} (needs root/CAP_BPF)"),
            false,
        )
    })?;
    let ctx = sys::XdpMd {
        data: 0,
        data_end: data.len() as u32,
        data_meta: 0,
        ingress_ifindex: ifindex,
        rx_queue_index: 0,
        egress_ifindex: 0,
    };
    let mut offered: u64 = 0;
    let mut repeat: u32 = 20_000;
    while !stop.should_stop() && offered < a.max_frames {
        let n = (repeat as u64).min(a.max_frames - offered) as u32;
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
                return Err(fail(
                    anyhow::Error::new(e).context(
                        "BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES failed (kernel >= 5.18 \
                         needed; is the device up and its peer able to receive XDP frames?)",
                    ),
                    true,
                ))
            }
            Err(e) => {
                return Err(fail(
                    anyhow::Error::new(e).context("BPF_PROG_RUN (live frames)"),
                    false,
                ))
            }
        }
        offered += n as u64;
        // Size the next call from the rate just seen, and never overrun the deadline by more
        // than a fraction of a call.
        let rate = n as f64 / t.elapsed().as_secs_f64().max(1e-6);
        let budget = CALL_TARGET.min(stop.remaining()).as_secs_f64();
        repeat = (rate * budget).clamp(1_000.0, 50_000_000.0) as u32;
    }
    Ok(offered)
}

/// AF_PACKET fallback: one prebuilt frame per flow, sent round-robin with `sendmmsg`. Much
/// slower than live frames (the generator's own stack costs CPU 0): report which was used.
fn packet(a: &Args, ifindex: u32, src_mac: [u8; 6], stop: &Stop) -> Result<u64> {
    let sock =
        sys::PacketSocket::new(ifindex).context("AF_PACKET socket (needs root/CAP_NET_RAW)")?;
    let frames: Vec<Vec<u8>> = (0..a.flows)
        .map(|i| frame_for(a, src_mac, BASE_PORT + i as u16))
        .collect();
    let batch = a.batch as usize;
    let mut next = 0usize;
    let mut offered: u64 = 0;
    let mut spins: u64 = 0;
    while offered < a.max_frames {
        spins += 1;
        if spins & 63 == 0 && stop.should_stop() {
            break;
        }
        let n = batch.min((a.max_frames - offered) as usize);
        let refs: Vec<&[u8]> = (0..n)
            .map(|i| frames[(next + i) % frames.len()].as_slice())
            .collect();
        let sent = sock.send(&refs).context("sendmmsg")?;
        next = (next + sent) % frames.len();
        offered += sent as u64;
    }
    Ok(offered)
}
