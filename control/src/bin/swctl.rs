//! `swctl`: the operator's command-line tool for `vswitchd`.
//!
//! Every command but `parse-flow` talks to the daemon over its Unix socket. Failures print one
//! line on stderr (`swctl: ...`) and exit non-zero; read commands take `--json`.

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use control::client::{Client, ClientError};
use control::flow::{format_flow, parse_flow, ParseMode};
use control::protocol::{
    Command, CtStatsDump, FdbDump, FipDump, PortDump, PortType, Reply, ShowInfo, SnatPoolDump,
    TracePacket, TunnelOptions, WorkerDump, DEFAULT_SOCKET,
};
use std::io::Read;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "swctl",
    version,
    about = "Control the vswitchd software switch"
)]
struct Cli {
    /// Path of vswitchd's control socket.
    #[arg(long, global = true, default_value = DEFAULT_SOCKET, env = "VSWITCHD_SOCKET")]
    socket: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a bridge.
    AddBr {
        /// Bridge name.
        bridge: String,
        /// Do not fail if the bridge exists.
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete a bridge and its flows.
    DelBr {
        /// Bridge name.
        bridge: String,
        /// Do not fail if the bridge does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// List bridges.
    ListBr {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show bridges, tables and counters.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add one flow (ovs-ofctl syntax).
    AddFlow {
        /// Bridge name.
        bridge: String,
        /// The flow, e.g. "table=20,priority=1024,arp,arp_op=1 actions=IN_PORT".
        flow: String,
    },
    /// Add flows from a file (or - for stdin), one per line; all or nothing.
    AddFlows {
        /// Bridge name.
        bridge: String,
        /// File with one flow per line; `#` comments and blank lines are skipped.
        file: String,
    },
    /// Change the actions of flows matching FLOW.
    ModFlows {
        /// Bridge name.
        bridge: String,
        /// Match and new actions.
        flow: String,
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
    },
    /// Delete flows matching FLOW (all flows if omitted).
    DelFlows {
        /// Bridge name.
        bridge: String,
        /// Match (no actions).
        flow: Option<String>,
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
    },
    /// Print flows with counters, as ovs-ofctl dump-flows does.
    DumpFlows {
        /// Bridge name.
        bridge: String,
        /// Only flows matching this filter.
        flow: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Parse and validate a flow offline and print its normalized form (no daemon needed).
    ParseFlow {
        /// The flow.
        flow: String,
        /// Print the parsed structure as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Attach an interface to a bridge.
    AddPort {
        /// Bridge name.
        bridge: String,
        /// Interface name.
        iface: String,
        /// Port implementation: AF_XDP, AF_PACKET, or AF_XDP falling back to AF_PACKET.
        #[arg(long = "type", value_enum, default_value = "auto")]
        kind: KindArg,
        /// OpenFlow port number (default: the lowest free one).
        #[arg(long)]
        ofport: Option<u32>,
        /// vxlan: local VTEP address (must be an address of the daemon's namespace).
        #[arg(long)]
        local: Option<String>,
        /// vxlan: remote VTEP address, or `flow` (the packet's tun_dst).
        #[arg(long)]
        remote: Option<String>,
        /// vxlan: VNI (decimal or 0x hex), or `flow` (any VNI in, tun_id out). Default 0.
        #[arg(long)]
        key: Option<String>,
        /// vxlan: UDP port (default 4789).
        #[arg(long)]
        dst_port: Option<u16>,
    },
    /// Detach a port from a bridge.
    DelPort {
        /// Bridge name.
        bridge: String,
        /// Interface name.
        iface: String,
    },
    /// Print port counters (rx/tx packets and bytes, drops by reason).
    DumpPorts {
        /// Bridge name.
        bridge: String,
        /// Only this port (interface name or ofport).
        port: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the MAC learning table of the normal action.
    FdbShow {
        /// Bridge name.
        bridge: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print per-worker packet and time accounting.
    PmdStats {
        /// Reset the counters after printing them.
        #[arg(long)]
        clear: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a packet through a bridge's pipeline without sending it.
    Trace {
        /// Bridge name.
        bridge: String,
        /// The packet in flow syntax ("in_port=5,tcp,nw_dst=10.0.0.1,tp_dst=22"); with --hex,
        /// only metadata ("in_port=5,tun_id=0x43e").
        packet: Option<String>,
        /// A raw Ethernet frame in hex instead of a flow description.
        #[arg(long)]
        hex: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tracked connections, like `conntrack -L`.
    DumpConntrack {
        /// Only this zone.
        #[arg(long)]
        zone: Option<u16>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove tracked connections: all, one zone's, or those matching TUPLE.
    ///
    /// TUPLE uses Open vSwitch's `dpctl/flush-conntrack` syntax: comma-separated ct_nw_src=,
    /// ct_nw_dst= (IPv4), ct_ipv6_src=, ct_ipv6_dst=, ct_nw_proto=, ct_tp_src=, ct_tp_dst=,
    /// icmp_type=, icmp_code=, icmp_id=. Fields left out match anything; a connection goes if
    /// its original or its reply tuple matches. Without --zone, every zone is searched.
    /// Prints how many connections were removed; a bad TUPLE removes nothing.
    #[command(after_help = "Examples:\n  swctl flush-conntrack --zone 5 \
                      'ct_nw_src=10.1.1.1,ct_nw_dst=10.1.1.2,ct_nw_proto=6,ct_tp_src=40000,ct_tp_dst=22'\n  \
                      swctl flush-conntrack 'ct_nw_proto=1,icmp_type=8,icmp_id=10'\n  \
                      swctl flush-conntrack 'ct_ipv6_dst=fc00::2'")]
    FlushConntrack {
        /// Only this zone.
        #[arg(long)]
        zone: Option<u16>,
        /// Partial conntrack tuple, e.g. ct_nw_src=10.1.1.1,ct_nw_proto=17,ct_tp_dst=53.
        tuple: Option<String>,
    },
    /// Conntrack counters: entries, zones, invalid packets by reason.
    ConntrackStats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a floating IP: stateless 1:1 FIP <-> FIXED (IPv4) for the fip_dnat, fip_snat and
    /// fip_arp actions.
    AddFip {
        /// Bridge name.
        bridge: String,
        /// The floating IP.
        fip: String,
        /// The fixed IP it maps to.
        fixed: String,
        /// MAC to answer ARP for the FIP with (fip_arp); without it ARP is never answered.
        #[arg(long)]
        mac: Option<String>,
        /// centralized: this node owns the FIP (claimed; answers ARP); distributed: it only
        /// translates.
        #[arg(long, value_enum, default_value = "centralized")]
        mode: FipModeArg,
    },
    /// Remove a floating IP.
    DelFip {
        /// Bridge name.
        bridge: String,
        /// The floating IP.
        fip: String,
    },
    /// List floating IPs: mapping, MAC, mode, claim status, counters.
    DumpFips {
        /// Bridge name.
        bridge: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a shared-address SNAT pool: PUBLIC_IP shared by the addresses of INSIDE_CIDR, each
    /// owning a deterministic block of the port range (RFC 7422), for nat(src=pool:NAME) and
    /// snat_pool_owner(NAME)->DST.
    AddSnatPool {
        /// Bridge name.
        bridge: String,
        /// Pool name (1-32 of A-Z a-z 0-9 _ . -).
        name: String,
        /// The public IPv4 address.
        public_ip: String,
        /// The inside prefix, A.B.C.D/LEN.
        inside_cidr: String,
        /// Public port range LO-HI.
        #[arg(long, default_value = "1024-65535")]
        ports: String,
    },
    /// Remove an SNAT pool.
    DelSnatPool {
        /// Bridge name.
        bridge: String,
        /// Pool name.
        name: String,
    },
    /// List SNAT pools: public address, inside prefix, port range, block size.
    DumpSnatPools {
        /// Bridge name.
        bridge: String,
        /// Also show the block of this inside address.
        #[arg(long = "for", value_name = "IP")]
        for_addr: Option<String>,
        /// Also show which inside address owns this public port.
        #[arg(long, value_name = "PORT")]
        owner_of: Option<u16>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Configure a conntrack zone (kept in the configuration database).
    SetCtZone {
        /// Zone number.
        zone: u16,
        /// Settings: profile=strict|liberal|asym, invalid=flows|drop|untracked,
        /// limit=N (0: none), timeout.NAME=SECONDS (tcp_established, tcp_one_sided_established,
        /// udp_replied, icmp, ...).
        settings: Vec<String>,
    },
    /// Check this node's floating IPs against the ownership store: claim status, holder,
    /// every node's mapping. Exits 2 when a problem is found (for monitoring).
    FipCheck {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FipModeArg {
    Centralized,
    Distributed,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Auto,
    Afxdp,
    Afpacket,
    Vxlan,
}

impl From<KindArg> for PortType {
    fn from(k: KindArg) -> PortType {
        match k {
            KindArg::Auto => PortType::Auto,
            KindArg::Afxdp => PortType::Afxdp,
            KindArg::Afpacket => PortType::Afpacket,
            KindArg::Vxlan => PortType::Vxlan,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("swctl: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let socket = cli.socket;
    let call = |command: Command| -> Result<Reply> {
        let mut client = Client::connect(&socket)?;
        client.request(command).map_err(describe)
    };
    match cli.command {
        Cmd::ParseFlow { flow, json } => {
            let spec = parse_flow(&flow, ParseMode::Add).map_err(|e| anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&spec)?);
            } else {
                println!("{}", format_flow(&spec));
            }
        }
        Cmd::AddBr { bridge, may_exist } => {
            call(Command::AddBr { bridge, may_exist })?;
        }
        Cmd::DelBr { bridge, if_exists } => {
            call(Command::DelBr { bridge, if_exists })?;
        }
        Cmd::ListBr { json } => {
            if let Reply::Bridges { bridges } = call(Command::ListBr)? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&bridges)?);
                } else {
                    for b in bridges {
                        println!("{b}");
                    }
                }
            }
        }
        Cmd::Show { json } => {
            if let Reply::Show(info) = call(Command::Show)? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&info)?);
                } else {
                    print!("{}", render_show(&info));
                }
            }
        }
        Cmd::AddFlow { bridge, flow } => {
            call(Command::AddFlows {
                bridge,
                flows: vec![flow],
            })?;
        }
        Cmd::AddFlows { bridge, file } => {
            let text = if file == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading flows from stdin")?;
                s
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
            };
            let flows = text.lines().map(str::to_string).collect();
            call(Command::AddFlows { bridge, flows })?;
        }
        Cmd::ModFlows {
            bridge,
            flow,
            strict,
        } => {
            call(Command::ModFlows {
                bridge,
                flow,
                strict,
            })?;
        }
        Cmd::DelFlows {
            bridge,
            flow,
            strict,
        } => {
            call(Command::DelFlows {
                bridge,
                filter: flow,
                strict,
            })?;
        }
        Cmd::DumpFlows { bridge, flow, json } => {
            if let Reply::Flows { flows } = call(Command::DumpFlows {
                bridge,
                filter: flow,
            })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&flows)?);
                } else {
                    for f in flows {
                        println!("{}", f.line);
                    }
                }
            }
        }
        Cmd::AddPort {
            bridge,
            iface,
            kind,
            ofport,
            local,
            remote,
            key,
            dst_port,
        } => {
            let tunnel = TunnelOptions {
                local,
                remote,
                key,
                dst_port,
            };
            let tunnel = match kind {
                KindArg::Vxlan => Some(tunnel),
                _ if tunnel != TunnelOptions::default() => {
                    anyhow::bail!(
                        "--local, --remote, --key and --dst-port apply to --type vxlan only"
                    )
                }
                _ => None,
            };
            call(Command::AddPort {
                bridge,
                iface,
                kind: kind.into(),
                ofport,
                tunnel,
            })?;
        }
        Cmd::DelPort { bridge, iface } => {
            call(Command::DelPort { bridge, iface })?;
        }
        Cmd::DumpPorts { bridge, port, json } => {
            if let Reply::Ports { ports } = call(Command::DumpPorts { bridge, port })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&ports)?);
                } else {
                    print!("{}", render_ports(&ports));
                }
            }
        }
        Cmd::FdbShow { bridge, json } => {
            if let Reply::Fdb { entries } = call(Command::FdbShow { bridge })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&entries)?);
                } else {
                    print!("{}", render_fdb(&entries));
                }
            }
        }
        Cmd::PmdStats { clear, json } => {
            if let Reply::PmdStats { workers } = call(Command::PmdStats { clear })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&workers)?);
                } else {
                    print!("{}", render_pmd(&workers));
                }
            }
        }
        Cmd::Trace {
            bridge,
            packet,
            hex,
            json,
        } => {
            let packet = match hex {
                Some(hex) => TracePacket::Hex {
                    hex,
                    metadata: packet.unwrap_or_default(),
                },
                None => TracePacket::Flow(
                    packet.ok_or_else(|| anyhow!("trace needs a packet (flow syntax) or --hex"))?,
                ),
            };
            if let Reply::Trace(t) = call(Command::Trace { bridge, packet })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&t.detail)?);
                } else {
                    print!("{}", t.text);
                }
            }
        }
        Cmd::DumpConntrack { zone, json } => {
            if let Reply::Conntrack { entries } = call(Command::DumpConntrack { zone })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&entries)?);
                } else {
                    for e in entries {
                        println!("{}", e.line);
                    }
                }
            }
        }
        Cmd::FlushConntrack { zone, tuple } => {
            if let Reply::ConntrackFlushed { count } =
                call(Command::FlushConntrack { zone, tuple })?
            {
                println!(
                    "flushed {count} connection{}",
                    if count == 1 { "" } else { "s" }
                );
            }
        }
        Cmd::ConntrackStats { json } => {
            if let Reply::ConntrackStats(st) = call(Command::ConntrackStats)? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&st)?);
                } else {
                    print!("{}", render_ct_stats(&st));
                }
            }
        }
        Cmd::SetCtZone { zone, settings } => {
            call(Command::SetCtZone { zone, settings })?;
        }
        Cmd::AddFip {
            bridge,
            fip,
            fixed,
            mac,
            mode,
        } => {
            let mode = match mode {
                FipModeArg::Centralized => "centralized",
                FipModeArg::Distributed => "distributed",
            };
            call(Command::AddFip {
                bridge,
                fip,
                fixed,
                mac,
                mode: Some(mode.into()),
            })?;
        }
        Cmd::DelFip { bridge, fip } => {
            call(Command::DelFip { bridge, fip })?;
        }
        Cmd::DumpFips { bridge, json } => {
            if let Reply::Fips { fips } = call(Command::DumpFips { bridge })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&fips)?);
                } else {
                    print!("{}", render_fips(&fips));
                }
            }
        }
        Cmd::AddSnatPool {
            bridge,
            name,
            public_ip,
            inside_cidr,
            ports,
        } => {
            call(Command::AddSnatPool {
                bridge,
                name,
                public: public_ip,
                inside: inside_cidr,
                ports: Some(ports),
            })?;
        }
        Cmd::DelSnatPool { bridge, name } => {
            call(Command::DelSnatPool { bridge, name })?;
        }
        Cmd::DumpSnatPools {
            bridge,
            for_addr,
            owner_of,
            json,
        } => {
            if let Reply::SnatPools { pools } = call(Command::DumpSnatPools {
                bridge,
                for_addr: for_addr.clone(),
                owner_of,
            })? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&pools)?);
                } else {
                    print!(
                        "{}",
                        render_snat_pools(&pools, for_addr.as_deref(), owner_of)
                    );
                }
            }
        }
        Cmd::FipCheck { json } => {
            if let Reply::FipCheck(report) = call(Command::FipCheck)? {
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", report.text);
                }
                if !report.problems.is_empty() {
                    // 1 is "the command failed"; 2 is "it worked and found problems".
                    std::process::exit(2);
                }
            }
        }
    }
    Ok(())
}

/// Turn a client error into the one line the operator sees.
fn describe(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Refused(r) => match (r.line, r.token) {
            (Some(line), _) => anyhow!("line {line}: {}", r.message),
            _ => anyhow!("{}", r.message),
        },
        other => anyhow!(other),
    }
}

fn render_show(info: &ShowInfo) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "vswitchd {}  ({} worker{}, idle {}, db {})",
        info.daemon_version,
        info.workers,
        if info.workers == 1 { "" } else { "s" },
        info.idle,
        info.db.as_deref().unwrap_or("none")
    );
    if let Some(store) = &info.fip_store {
        let _ = writeln!(s, "  FIP ownership: {store}");
    }
    for b in &info.bridges {
        let _ = writeln!(
            s,
            "  Bridge {}  (pipeline version {}, {} flows)",
            b.name, b.version, b.n_flows
        );
        for p in &b.ports {
            let mode = if p.mode.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.mode)
            };
            let _ = writeln!(
                s,
                "    Port {} ofport {}: {}{}, {} queue{}, mtu {}, mac {}, {}",
                p.name,
                p.ofport,
                p.kind,
                mode,
                p.queues,
                if p.queues == 1 { "" } else { "s" },
                p.mtu,
                p.mac,
                p.state
            );
        }
        for t in &b.tables {
            let _ = writeln!(
                s,
                "    table {:>3}: {} flows, {} lookups, {} matched",
                t.id, t.n_flows, t.lookups, t.matched
            );
        }
        for (reason, n) in &b.drops {
            let _ = writeln!(s, "    dropped {reason}: {n}");
        }
    }
    for z in &info.ct_zones {
        let _ = writeln!(
            s,
            "  ct zone {}: profile {}, invalid {}, limit {}",
            z.zone,
            z.profile,
            z.invalid_action,
            if z.limit == 0 {
                "none".to_string()
            } else {
                z.limit.to_string()
            }
        );
    }
    s
}

fn render_fips(fips: &[FipDump]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for f in fips {
        let _ = writeln!(
            s,
            "{} -> {}  mac {}  {}  claim {}{}",
            f.fip,
            f.fixed,
            f.mac.as_deref().unwrap_or("none"),
            f.mode,
            f.status,
            if f.owner { " (owner)" } else { "" }
        );
        let _ = writeln!(
            s,
            "    in (dnat) pkts={} bytes={}  out (snat) pkts={} bytes={}  arp replies={}",
            f.dnat_packets, f.dnat_bytes, f.snat_packets, f.snat_bytes, f.arp_replies
        );
    }
    s
}

fn render_snat_pools(pools: &[SnatPoolDump], for_addr: Option<&str>, port: Option<u16>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for p in pools {
        let _ = writeln!(
            s,
            "{}: {} <- {}  ports {}-{}  {} addresses x {} ports{}",
            p.name,
            p.public,
            p.inside,
            p.port_lo,
            p.port_hi,
            p.addresses,
            p.block_size,
            p.unused
                .as_deref()
                .map(|u| format!("  (unused {u})"))
                .unwrap_or_default()
        );
        match (&p.block, for_addr) {
            (Some((addr, lo, hi)), _) => {
                let _ = writeln!(s, "    block of {addr}: {lo}-{hi}");
            }
            (None, Some(addr)) => {
                let _ = writeln!(s, "    block of {addr}: none (not in {})", p.inside);
            }
            (None, None) => {}
        }
        match (&p.owner, port) {
            (Some((port, owner)), _) => {
                let _ = writeln!(s, "    port {port} owned by {owner}");
            }
            (None, Some(port)) => {
                let _ = writeln!(s, "    port {port} owned by nobody (outside every block)");
            }
            (None, None) => {}
        }
        let _ = writeln!(
            s,
            "    nat packets={}  owner lookups={}",
            p.nat_packets, p.owner_lookups
        );
    }
    s
}

fn render_ct_stats(st: &CtStatsDump) -> String {
    use std::fmt::Write;
    let mut s = format!("entries: {}\n", st.entries);
    for z in &st.zones {
        let limit = if z.limit == 0 {
            "none".to_string()
        } else {
            z.limit.to_string()
        };
        let _ = writeln!(
            s,
            "  zone {:>5}: {} entries, limit {limit}, profile {}, invalid {}",
            z.zone, z.entries, z.profile, z.invalid_action
        );
        let list = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(r, n)| format!("{r}={n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !z.invalid.is_empty() {
            let _ = writeln!(s, "    invalid: {}", list(&z.invalid));
        }
        if !z.dropped.is_empty() {
            let _ = writeln!(s, "    dropped: {}", list(&z.dropped));
        }
    }
    if st.one_sided != 0 {
        let _ = writeln!(s, "one-sided: {}", st.one_sided);
    }
    let invalid: Vec<String> = st
        .invalid
        .iter()
        .filter(|(_, &n)| n != 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    let total: u64 = st.invalid.values().sum();
    let _ = writeln!(s, "invalid: {total}");
    if !invalid.is_empty() {
        let _ = writeln!(s, "  {}", invalid.join(", "));
    }
    let events: Vec<String> = st.events.iter().map(|(r, n)| format!("{r}={n}")).collect();
    let _ = writeln!(s, "events: {}", events.join(", "));
    s
}

fn render_ports(ports: &[PortDump]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for p in ports {
        let dropped: u64 = p.drops.values().sum();
        let _ = writeln!(
            s,
            "  port {:>3} ({}): rx pkts={}, bytes={}, drop={}",
            p.ofport, p.name, p.rx_packets, p.rx_bytes, dropped
        );
        let _ = writeln!(
            s,
            "           tx pkts={}, bytes={}",
            p.tx_packets, p.tx_bytes
        );
        if !p.drops.is_empty() {
            let reasons: Vec<String> = p.drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
            let _ = writeln!(s, "           drops: {}", reasons.join(", "));
        }
    }
    s
}

fn render_fdb(entries: &[FdbDump]) -> String {
    use std::fmt::Write;
    let mut s = String::from(" port  VLAN  MAC                Age\n");
    for e in entries {
        let _ = write!(s, "{:>5}  {:>4}  {}  {:>3}", e.port, e.vlan, e.mac, e.age);
        if !e.remote.is_empty() {
            let _ = write!(s, "  remote {}", e.remote);
        }
        s.push('\n');
    }
    s
}

fn render_pmd(workers: &[WorkerDump]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for w in workers {
        let total = (w.busy_ns + w.idle_ns).max(1) as f64;
        let _ = writeln!(s, "pmd thread {}:", w.id);
        let _ = writeln!(s, "  packets received: {}", w.packets);
        let _ = writeln!(s, "  fast-path cache hits: {}", w.cache_hits);
        let _ = writeln!(s, "  pipeline runs (cache misses): {}", w.cache_misses);
        let _ = writeln!(
            s,
            "  idle time: {} ns ({:.1}%)",
            w.idle_ns,
            100.0 * w.idle_ns as f64 / total
        );
        let _ = writeln!(
            s,
            "  busy time: {} ns ({:.1}%)",
            w.busy_ns,
            100.0 * w.busy_ns as f64 / total
        );
        let _ = writeln!(s, "  busy ns per packet: {:.1}", w.busy_ns_per_packet);
        let _ = writeln!(s, "  packets per batch: {:.1}", w.packets_per_batch);
    }
    s
}
