//! `benchlab`: the pieces of the end-to-end veth lab benchmark (`bench/lab/run.sh` drives them;
//! see `bench/LAB.md`).
//!
//! - `gen`: XDP live-frames traffic generator (run inside the generator namespace),
//! - `hold`: keep an XDP_DROP / XDP_PASS program attached (the sink),
//! - `fwd`: bare AF_XDP forwarder between two interfaces (the I/O ceiling).

mod bpf_prog;
mod cpu;
mod frame;
mod fwd;
mod gen;
mod hold;
mod netif;
mod stop;
mod sys;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "benchlab",
    about = "veth lab benchmark tools (generator, sink, bare AF_XDP forwarder)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenMode {
    /// Live frames, AF_PACKET if the kernel refuses them.
    Auto,
    /// BPF_PROG_RUN live frames only.
    Live,
    /// AF_PACKET sendmmsg only.
    Packet,
}

#[derive(Clone, Copy, ValueEnum)]
enum Action {
    Drop,
    Pass,
}

#[derive(Subcommand)]
enum Cmd {
    /// Offer 64-byte UDP frames out of DEV with BPF_PROG_RUN live frames; prints key=value.
    Gen {
        #[arg(long)]
        dev: String,
        /// Distinct flows (UDP source ports).
        #[arg(long, default_value_t = 1)]
        flows: u32,
        /// Every frame a new connection: random UDP source and destination ports, 2^30
        /// tuples (replaces --flows; live frames only).
        #[arg(long)]
        new_conns: bool,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Upper bound on frames, whatever the duration.
        #[arg(long, default_value_t = 100_000_000)]
        max_frames: u64,
        /// Frames per batch inside the kernel (≤ 256).
        #[arg(long, default_value_t = 64)]
        batch: u32,
        /// Destination MAC (the sink's).
        #[arg(long)]
        dst_mac: String,
        #[arg(long, default_value = "10.0.0.1")]
        src_ip: std::net::Ipv4Addr,
        #[arg(long, default_value = "10.0.1.1")]
        dst_ip: std::net::Ipv4Addr,
        /// PID of the peer under test: report its CPU time over the traffic window.
        #[arg(long)]
        peer_pid: Option<u32>,
        /// Transmitter.
        #[arg(long, value_enum, default_value_t = GenMode::Auto)]
        mode: GenMode,
    },
    /// Attach an XDP program returning ACTION to DEV until SIGTERM or SECONDS pass.
    Hold {
        #[arg(long)]
        dev: String,
        #[arg(long, value_enum, default_value_t = Action::Drop)]
        action: Action,
        #[arg(long, default_value_t = 600.0)]
        seconds: f64,
    },
    /// Forward every frame between A and B through two copy-mode AF_XDP sockets.
    Fwd {
        #[arg(long)]
        a: String,
        #[arg(long)]
        b: String,
        #[arg(long, default_value_t = 600.0)]
        seconds: f64,
    },
}

fn main() {
    let r = run(Cli::parse());
    // Everything attached or mapped is released by now; report an interruption as such.
    stop::exit_like_signal();
    if let Err(e) = r {
        eprintln!("benchlab: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Gen {
            dev,
            flows,
            new_conns,
            seconds,
            max_frames,
            batch,
            dst_mac,
            src_ip,
            dst_ip,
            peer_pid,
            mode,
        } => {
            let dst_mac =
                frame::parse_mac(&dst_mac).ok_or_else(|| anyhow!("bad --dst-mac {dst_mac:?}"))?;
            gen::run(
                &gen::Args {
                    dev,
                    flows,
                    new_conns,
                    seconds,
                    max_frames,
                    batch,
                    dst_mac,
                    src_ip: src_ip.octets(),
                    dst_ip: dst_ip.octets(),
                    peer_pid,
                },
                match mode {
                    GenMode::Auto => gen::Mode::Auto,
                    GenMode::Live => gen::Mode::Live,
                    GenMode::Packet => gen::Mode::Packet,
                },
            )
        }
        Cmd::Hold {
            dev,
            action,
            seconds,
        } => {
            let a = match action {
                Action::Drop => bpf_prog::XDP_DROP,
                Action::Pass => bpf_prog::XDP_PASS,
            };
            hold::run(&dev, a, seconds)
        }
        Cmd::Fwd { a, b, seconds } => fwd::run(&a, &b, seconds),
    }
}
