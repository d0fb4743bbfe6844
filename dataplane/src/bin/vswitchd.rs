//! `vswitchd`: the switch daemon.

use anyhow::{Context, Result};
use clap::Parser;
use control::protocol::DEFAULT_SOCKET;
use dataplane::daemon::fip::Ownership;
use dataplane::daemon::ownership::etcd::{EtcdConfig, EtcdStore};
use dataplane::daemon::ownership::{ClaimStore, Standalone};
use dataplane::daemon::{server, Switch};
use dataplane::datapath::{affinity, DatapathConfig, IdlePolicy};
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
    /// Poll-mode worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// What workers do when their queues are empty: `busy` polls (lowest latency, one full
    /// core per worker: production hosts with dedicated cores), `sleep` backs off to short
    /// sleeps (small machines and labs).
    #[arg(long, value_enum, default_value = "busy")]
    idle: IdleArg,
    /// Pin the workers to these CPUs ("1", "2-3", "1,3"; worker i takes the i-th, wrapping),
    /// like Open vSwitch's pmd-cpu-mask. The other threads (control socket, housekeeping)
    /// keep the process's own affinity, so `taskset -c 0 vswitchd --pmd-cpus 1` keeps them
    /// off the worker's core. Default: workers are not pinned.
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    pmd_cpus: Option<CpuList>,
    /// Seconds a learned MAC address stays in the `normal` action's table without being seen.
    #[arg(long, default_value_t = 300)]
    mac_aging: u64,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive such as
    /// "dataplane=debug"); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// etcd v3 endpoint (http://HOST:PORT) where this node claims the floating IPs it owns,
    /// so no FIP has two owners across nodes. Without it the node runs standalone.
    #[arg(long, value_name = "URL")]
    etcd: Option<String>,
    /// This node's identity in the FIP store (default: the host name).
    #[arg(long, value_name = "NAME")]
    node_id: Option<String>,
    /// Seconds the FIP store keeps this node's claims after it stops refreshing them (a node
    /// that dies loses its FIPs after at most this long).
    #[arg(long, value_name = "S", default_value_t = 10, requires = "etcd")]
    lease_ttl: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum IdleArg {
    Busy,
    Sleep,
}

/// `--pmd-cpus`' value: one argument holding a list (a bare `Vec` would make clap expect
/// several arguments).
#[derive(Clone)]
struct CpuList(Vec<usize>);

fn parse_cpus(s: &str) -> Result<CpuList, String> {
    affinity::parse_cpu_list(s).map(CpuList)
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
    let dp_config = DatapathConfig {
        workers: args.workers.max(1),
        idle: match args.idle {
            IdleArg::Busy => IdlePolicy::Busy,
            IdleArg::Sleep => IdlePolicy::Sleep,
        },
        mac_aging_secs: args.mac_aging,
        pmd_cpus: args.pmd_cpus.clone().map(|c| c.0).unwrap_or_default(),
    };
    affinity::check_cpus(&dp_config.pmd_cpus).map_err(|e| anyhow::anyhow!("--pmd-cpus: {e}"))?;
    let db = (!args.no_db).then_some(args.db.as_path());
    let node = match &args.node_id {
        Some(n) => n.clone(),
        None => host_name()?,
    };
    let etcd = match &args.etcd {
        Some(url) => Some(Arc::new(EtcdStore::start(EtcdConfig {
            url: url.clone(),
            node: node.clone(),
            lease_ttl_secs: args.lease_ttl,
        })?)),
        None => {
            tracing::info!("no --etcd: FIP ownership is standalone (not checked across nodes)");
            None
        }
    };
    let store: Arc<dyn ClaimStore> = match &etcd {
        Some(store) => store.clone(),
        None => Arc::new(Standalone::default()),
    };
    let switch = Arc::new(Switch::start_with(
        db,
        dp_config,
        Ownership { store, node },
    )?);
    let listener = server::bind(&args.socket)?;
    tracing::info!(socket = %args.socket.display(), pid = std::process::id(), "vswitchd listening");

    std::thread::Builder::new()
        .name("ctl-accept".into())
        .spawn({
            let switch = switch.clone();
            move || server::serve(listener, switch)
        })
        .context("spawning the control thread")?;

    // Housekeeping: flow timeouts are in whole seconds, so checking every 250 ms keeps expiry
    // within a quarter second of the deadline (and costs nothing when no flow has a timeout);
    // vanished interfaces are noticed as fast, missing ports are retried every 2 s.
    std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn({
            let switch = switch.clone();
            move || {
                for tick in 0u64.. {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                    switch.expire_flows();
                    switch.housekeep_ports(tick % 8 == 0);
                }
            }
        })
        .context("spawning the housekeeping thread")?;

    let sig = signals.forever().next();
    tracing::info!(signal = ?sig, "shutting down");
    // Stop the workers first: dropping the ports detaches their XDP programs.
    switch.shutdown();
    // Leaving cleanly hands this node's FIPs over at once instead of after the lease TTL.
    if let Some(store) = etcd {
        store.shutdown();
    }
    if let Err(e) = std::fs::remove_file(&args.socket) {
        tracing::warn!(error = %e, "could not remove control socket");
    }
    Ok(())
}

/// The host name, the default node id.
fn host_name() -> Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name for --node-id")?;
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "the host name is empty: give --node-id");
    Ok(name.to_string())
}
