//! `vswitchd`: the switch daemon.

use anyhow::{Context, Result};
use clap::Parser;
use control::protocol::DEFAULT_SOCKET;
use dataplane::daemon::{server, Switch};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "vswitchd", version, about = "Userspace software switch daemon")]
struct Args {
    /// Path of the control socket (created mode 0600: root only).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Configuration database (bridges, ports, flows), restored at start and written
    /// atomically after every change.
    #[arg(long, default_value = "/var/lib/vswitchd/conf.db")]
    db: PathBuf,
    /// Run without a configuration database: nothing is restored or saved.
    #[arg(long, conflicts_with = "db")]
    no_db: bool,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive such as
    /// "dataplane=debug"); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(args) {
        tracing::error!("{e:#}");
        eprintln!("vswitchd: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    // Register signal handlers before anything else so a SIGTERM during start-up still
    // removes the socket.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    let switch = Arc::new(if args.no_db {
        Switch::new()
    } else {
        Switch::open(&args.db)?
    });
    let listener = server::bind(&args.socket)?;
    tracing::info!(socket = %args.socket.display(), pid = std::process::id(), "vswitchd listening");

    std::thread::Builder::new()
        .name("ctl-accept".into())
        .spawn({
            let switch = switch.clone();
            move || server::serve(listener, switch)
        })
        .context("spawning the control thread")?;

    // Flow timeouts are in whole seconds; checking every 250 ms keeps expiry within a
    // quarter second of the deadline and costs nothing when no flow has a timeout.
    std::thread::Builder::new()
        .name("flow-expiry".into())
        .spawn({
            let switch = switch.clone();
            move || loop {
                std::thread::sleep(std::time::Duration::from_millis(250));
                switch.expire_flows();
            }
        })
        .context("spawning the expiry thread")?;

    let sig = signals.forever().next();
    tracing::info!(signal = ?sig, "shutting down");
    if let Err(e) = std::fs::remove_file(&args.socket) {
        tracing::warn!(error = %e, "could not remove control socket");
    }
    Ok(())
}
