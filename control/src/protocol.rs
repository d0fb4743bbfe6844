//! The request/response protocol between `swctl` (or any client) and `vswitchd`.
//!
//! Transport: a Unix stream socket (root-only, mode 0600). Framing: one JSON object per line,
//! in both directions; a connection may carry any number of request/response pairs, strictly
//! alternating. Every message carries [`PROTOCOL_VERSION`]; the daemon refuses a request of
//! another version with [`ErrorKind::VersionMismatch`] rather than guessing.
//!
//! Flows travel as text, exactly as the operator wrote them: the daemon parses them with the
//! same parser `swctl parse-flow` uses, so an error always names the token as written and the
//! line it came from.

use serde::{Deserialize, Serialize};

/// Version of this protocol. Bump on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default path of the daemon's control socket.
pub const DEFAULT_SOCKET: &str = "/run/vswitchd/vswitchd.sock";

/// A request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version spoken by the client.
    pub version: u32,
    /// What to do.
    pub command: Command,
}

/// Commands the daemon understands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    /// Liveness and version check.
    Ping,
    /// Create a bridge.
    AddBr {
        /// Bridge name.
        bridge: String,
        /// Succeed if it already exists.
        may_exist: bool,
    },
    /// Delete a bridge and all its flows.
    DelBr {
        /// Bridge name.
        bridge: String,
        /// Succeed if it does not exist.
        if_exists: bool,
    },
    /// List bridge names.
    ListBr,
    /// Describe the switch: bridges, tables, versions.
    Show,
    /// Add flows atomically: all lines or none. Blank lines and `#` comments are skipped but
    /// still counted, so errors name the line number of the original file.
    AddFlows {
        /// Bridge name.
        bridge: String,
        /// Flow lines.
        flows: Vec<String>,
    },
    /// Modify the actions of matching flows.
    ModFlows {
        /// Bridge name.
        bridge: String,
        /// Match (filter) and new actions.
        flow: String,
        /// Exact match and priority instead of "at least as specific".
        strict: bool,
    },
    /// Delete matching flows (all flows when `filter` is `None`).
    DelFlows {
        /// Bridge name.
        bridge: String,
        /// Filter in flow syntax, without actions.
        filter: Option<String>,
        /// Exact match and priority instead of "at least as specific".
        strict: bool,
    },
    /// List flows with counters.
    DumpFlows {
        /// Bridge name.
        bridge: String,
        /// Filter in flow syntax, without actions.
        filter: Option<String>,
    },
    /// Attach an interface to a bridge as a port.
    AddPort {
        /// Bridge name.
        bridge: String,
        /// Interface name.
        iface: String,
        /// Port implementation wanted.
        kind: PortType,
        /// OpenFlow port number; the lowest free one when `None`.
        ofport: Option<u32>,
        /// Options of a tunnel port (`kind` = `vxlan`); absent for other kinds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tunnel: Option<TunnelOptions>,
    },
    /// Detach a port.
    DelPort {
        /// Bridge name.
        bridge: String,
        /// Interface name.
        iface: String,
    },
    /// Port counters.
    DumpPorts {
        /// Bridge name.
        bridge: String,
        /// Only this port (interface name or ofport).
        port: Option<String>,
    },
    /// The MAC learning table of the `normal` action.
    FdbShow {
        /// Bridge name.
        bridge: String,
    },
    /// Per-worker packet and time accounting.
    PmdStats {
        /// Reset the counters after reading them.
        clear: bool,
    },
    /// Run a packet through the pipeline without sending it.
    Trace {
        /// Bridge name.
        bridge: String,
        /// The packet.
        packet: TracePacket,
    },
    /// List tracked connections (`conntrack -L`).
    DumpConntrack {
        /// Only this zone.
        zone: Option<u16>,
    },
    /// Remove tracked connections.
    FlushConntrack {
        /// Only this zone.
        zone: Option<u16>,
        /// Only connections whose original or reply key matches this partial tuple, in
        /// Open vSwitch's `flush-conntrack` syntax (`ct_nw_src=..,ct_nw_proto=6,ct_tp_dst=80`;
        /// omitted fields match anything). Parsed by the daemon.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tuple: Option<String>,
    },
    /// Conntrack counters: entries, per-zone counts and limits, invalid packets by reason.
    ConntrackStats,
    /// Add a floating IP: a stateless 1:1 mapping FIP <-> fixed IP (IPv4 only) used by the
    /// `fip_dnat`, `fip_snat` and `fip_arp` actions. Addresses travel as text, so the daemon's
    /// errors name the token as written.
    AddFip {
        /// Bridge name.
        bridge: String,
        /// The floating IP.
        fip: String,
        /// The fixed IP it maps to.
        fixed: String,
        /// MAC `fip_arp` answers with (none: ARP for the FIP is never answered).
        mac: Option<String>,
        /// `centralized` (default: this node owns the FIP, claimed through the claim store) or
        /// `distributed` (translates only, owns nothing).
        mode: Option<String>,
    },
    /// Remove a floating IP (its claim is released).
    DelFip {
        /// Bridge name.
        bridge: String,
        /// The floating IP.
        fip: String,
    },
    /// List a bridge's floating IPs with their claim status and counters.
    DumpFips {
        /// Bridge name.
        bridge: String,
    },
    /// Configure a conntrack zone.
    SetCtZone {
        /// Zone.
        zone: u16,
        /// `key=value` settings as written: `profile=strict|liberal|asym`,
        /// `invalid=flows|drop|untracked`, `limit=N`,
        /// `timeout.NAME=SECONDS` (parsed by the daemon so errors come from one place).
        settings: Vec<String>,
    },
    /// Check the floating IPs configured on this node against the ownership store: claim
    /// status, holder, every node's mapping, and problems.
    FipCheck,
    /// Add a shared-address SNAT pool: `public` shared by the addresses of `inside`, each
    /// owning a deterministic block of the port range (`nat(src=pool:NAME)`,
    /// `snat_pool_owner(NAME)->DST`). Text as written, so the daemon's errors name the token.
    AddSnatPool {
        /// Bridge name.
        bridge: String,
        /// Pool name.
        name: String,
        /// The public IPv4 address.
        public: String,
        /// The inside prefix, `A.B.C.D/LEN`.
        inside: String,
        /// Port range `LO-HI` (default 1024-65535).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ports: Option<String>,
    },
    /// Remove an SNAT pool.
    DelSnatPool {
        /// Bridge name.
        bridge: String,
        /// Pool name.
        name: String,
    },
    /// List a bridge's SNAT pools (block size, unused tail) and, on request, the block of an
    /// inside address and the owner of a public port.
    DumpSnatPools {
        /// Bridge name.
        bridge: String,
        /// Show the block of this inside address in each pool that has it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_addr: Option<String>,
        /// Show which inside address owns this public port in each pool.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner_of: Option<u16>,
    },
}

/// Port implementation asked for by `add-port --type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortType {
    /// AF_XDP if possible, else AF_PACKET (the reason is logged).
    Auto,
    /// AF_XDP or fail.
    Afxdp,
    /// AF_PACKET or fail.
    Afpacket,
    /// VXLAN tunnel port (a logical name; options in [`TunnelOptions`]).
    Vxlan,
}

/// `add-port --type vxlan` options, as typed: the daemon validates them (an error names the
/// option and the value) so every client gets the same checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelOptions {
    /// `--local IP`: local VTEP address (the daemon's UDP socket is bound to it).
    pub local: Option<String>,
    /// `--remote IP|flow`: remote VTEP, or `flow` (the packet's `tun_dst`).
    pub remote: Option<String>,
    /// `--key N|flow`: the VNI, or `flow` (any VNI in, the packet's `tun_id` out).
    pub key: Option<String>,
    /// `--dst-port P`: UDP port (default 4789).
    pub dst_port: Option<u16>,
}

impl PortType {
    /// Name as written on the command line and stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            PortType::Auto => "auto",
            PortType::Afxdp => "afxdp",
            PortType::Afpacket => "afpacket",
            PortType::Vxlan => "vxlan",
        }
    }

    /// Parse a name written by [`PortType::name`].
    pub fn from_name(s: &str) -> Option<PortType> {
        match s {
            "auto" => Some(PortType::Auto),
            "afxdp" => Some(PortType::Afxdp),
            "afpacket" => Some(PortType::Afpacket),
            "vxlan" => Some(PortType::Vxlan),
            _ => None,
        }
    }
}

/// How a traced packet is described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TracePacket {
    /// Flow syntax (`in_port=5,tcp,nw_dst=...,tp_dst=22`): a frame is built from it.
    Flow(String),
    /// A raw frame in hex, plus metadata in flow syntax (`in_port=5,tun_id=0x43e`).
    Hex {
        /// The frame.
        hex: String,
        /// Metadata fields (`in_port`, `tun_id`, registers, ...), may be empty.
        metadata: String,
    },
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version spoken by the daemon.
    pub version: u32,
    /// The outcome.
    pub result: Result<Reply, ErrorReply>,
}

/// Successful outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    /// Done, nothing to report.
    Done,
    /// Answer to `Ping`.
    Pong {
        /// Daemon version (crate version).
        daemon_version: String,
        /// Process id, so scripts can wait for it.
        pid: u32,
    },
    /// Bridge names.
    Bridges {
        /// Names, sorted.
        bridges: Vec<String>,
    },
    /// Switch description.
    Show(ShowInfo),
    /// Flows were added, modified or deleted.
    FlowsChanged {
        /// How many flows were added, modified or deleted.
        count: usize,
        /// The pipeline version now running.
        version: u64,
    },
    /// Dumped flows.
    Flows {
        /// Flows in dump order.
        flows: Vec<FlowDump>,
    },
    /// Trace result.
    Trace(TraceReply),
    /// A port was added.
    PortAdded {
        /// Its OpenFlow port number.
        ofport: u32,
        /// How it was set up.
        port: PortShow,
    },
    /// Port counters.
    Ports {
        /// One entry per port, by ofport.
        ports: Vec<PortDump>,
    },
    /// MAC learning table.
    Fdb {
        /// Entries.
        entries: Vec<FdbDump>,
    },
    /// Worker accounting.
    PmdStats {
        /// One entry per worker.
        workers: Vec<WorkerDump>,
    },
    /// Tracked connections.
    Conntrack {
        /// Entries, ordered by zone then original tuple.
        entries: Vec<CtEntryDump>,
    },
    /// Connections were flushed.
    ConntrackFlushed {
        /// How many.
        count: usize,
    },
    /// Conntrack counters.
    ConntrackStats(CtStatsDump),
    /// Floating IPs (`dump-fips`; `add-fip` answers with the one added).
    Fips {
        /// By address.
        fips: Vec<FipDump>,
    },
    /// FIP ownership check.
    FipCheck(FipCheckReport),
    /// SNAT pools (`dump-snat-pools`; `add-snat-pool` answers with the one added).
    SnatPools {
        /// By name.
        pools: Vec<SnatPoolDump>,
    },
}

/// One SNAT pool in `dump-snat-pools`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnatPoolDump {
    /// Pool name.
    pub name: String,
    /// The public address.
    pub public: String,
    /// The inside prefix.
    pub inside: String,
    /// First port of the range.
    pub port_lo: u16,
    /// Last port of the range.
    pub port_hi: u16,
    /// Inside addresses (blocks).
    pub addresses: u64,
    /// Ports per inside address.
    pub block_size: u32,
    /// Ports at the end of the range no block covers (`LO-HI`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unused: Option<String>,
    /// `--for IP`: that address's block `(first, last)` (absent: not asked, or not inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<(String, u16, u16)>,
    /// `--owner-of PORT`: the inside address owning that port (absent: not asked, or none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<(u16, String)>,
    /// Packets whose `ct(nat(src=pool:NAME))` used this pool (first packets of connections
    /// and packets of the megaflows that carry them).
    pub nat_packets: u64,
    /// Packets `snat_pool_owner(NAME)` found an owner for.
    pub owner_lookups: u64,
}

/// One floating IP in `dump-fips`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FipDump {
    /// The floating IP.
    pub fip: String,
    /// The fixed IP.
    pub fixed: String,
    /// The MAC ARP is answered with, if any.
    pub mac: Option<String>,
    /// `centralized` or `distributed`.
    pub mode: String,
    /// The claim status from the claim store (`standalone`, `pending`, `owned`,
    /// `refused: held by NODE`, `lost: REASON`, `not claimed (distributed)`).
    pub status: String,
    /// Whether the datapath acts as the owner now (answers ARP for it).
    pub owner: bool,
    /// Packets (and bytes) translated by `fip_dnat`: to the FIP, towards the fixed IP.
    pub dnat_packets: u64,
    /// Bytes translated by `fip_dnat`.
    pub dnat_bytes: u64,
    /// Packets translated by `fip_snat`: from the fixed IP, out as the FIP.
    pub snat_packets: u64,
    /// Bytes translated by `fip_snat`.
    pub snat_bytes: u64,
    /// ARP requests answered by `fip_arp`.
    pub arp_replies: u64,
}

/// `fip-check`: this node's floating IPs as the ownership store sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FipCheckReport {
    /// The store's description (`standalone …` or `etcd URL as NODE …`).
    pub store: String,
    /// Whether ownership is checked across nodes (false: standalone).
    pub distributed: bool,
    /// Claims of this node another node's claim refused.
    pub claims_refused: u64,
    /// Leases this node lost (expired, or not refreshed for a whole TTL).
    pub leases_lost: u64,
    /// One entry per FIP configured on this node, by address.
    pub fips: Vec<FipCheckEntry>,
    /// Every problem found, one line each (the store's first); empty when all is well.
    pub problems: Vec<String>,
    /// The report as `swctl fip-check` prints it (made by the daemon, as `trace`'s text is).
    pub text: String,
}

/// One FIP in `fip-check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FipCheckEntry {
    /// The floating IP.
    pub fip: String,
    /// This node's mapping.
    pub mapping: FipMapping,
    /// This node's claim status: `owned`, `refused`, `pending`, `lost`, `standalone`,
    /// `not-claimed`.
    pub status: String,
    /// The holder (refused) or the reason (lost).
    pub detail: Option<String>,
    /// Whether this node acts as the FIP's owner.
    pub owns: bool,
    /// The node holding the claim, as the store knows it.
    pub holder: Option<String>,
    /// Every node's published mapping, this node's included.
    pub mappings: Vec<FipMapping>,
    /// This FIP's problems.
    pub problems: Vec<String>,
}

/// One node's mapping of a FIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FipMapping {
    /// Node id.
    pub node: String,
    /// Bridge carrying it there.
    pub bridge: String,
    /// Fixed IP it maps to.
    pub fixed: String,
    /// `centralized` or `distributed`.
    pub mode: String,
}

/// One direction of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtTupleDump {
    /// Source address.
    pub src: String,
    /// Destination address.
    pub dst: String,
    /// Source port (ICMP: identifier).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// One tracked connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtEntryDump {
    /// The line as `conntrack -L` prints it.
    pub line: String,
    /// Zone.
    pub zone: u16,
    /// IP protocol number.
    pub proto: u8,
    /// State name (`ESTABLISHED`, ...).
    pub state: String,
    /// Seconds before it expires without traffic.
    pub timeout: u32,
    /// Original direction.
    pub original: CtTupleDump,
    /// Reply direction.
    pub reply: CtTupleDump,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label`, hex.
    pub label: String,
    /// Packets (original, reply).
    pub packets: [u64; 2],
    /// Bytes (original, reply).
    pub bytes: [u64; 2],
    /// Assured (seen both ways, not early-dropped).
    pub assured: bool,
    /// Source-NATed (the reply tuple's destination differs from the original source).
    #[serde(default)]
    pub snat: bool,
    /// Destination-NATed.
    #[serde(default)]
    pub dnat: bool,
    /// Established one-sided (profile `asym`): only the original direction was ever seen.
    #[serde(default)]
    pub one_sided: bool,
}

/// One zone in `conntrack-stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtZoneDump {
    /// Zone.
    pub zone: u16,
    /// Entries in it.
    pub entries: u32,
    /// Its limit (0: none but the global one).
    pub limit: u32,
    /// `strict`, `liberal` or `asym`.
    pub profile: String,
    /// What `ct()` does with its invalid packets: `flows`, `drop` or `untracked`.
    #[serde(default)]
    pub invalid_action: String,
    /// Its invalid packets by reason (non-zero reasons).
    #[serde(default)]
    pub invalid: std::collections::BTreeMap<String, u64>,
    /// Of those, dropped by `ct()` itself (action `drop`), by reason.
    #[serde(default)]
    pub dropped: std::collections::BTreeMap<String, u64>,
}

/// `conntrack-stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtStatsDump {
    /// Entries in all zones.
    pub entries: usize,
    /// Of those, one-sided TCP connections (profile `asym`).
    #[serde(default)]
    pub one_sided: usize,
    /// Zones with entries or their own settings.
    pub zones: Vec<CtZoneDump>,
    /// Invalid packets by reason (all reasons, zeros included).
    pub invalid: std::collections::BTreeMap<String, u64>,
    /// Events: created, expired, early_drop, flushed, reopened.
    pub events: std::collections::BTreeMap<String, u64>,
}

/// A port in `show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortShow {
    /// Interface name.
    pub name: String,
    /// OpenFlow port number.
    pub ofport: u32,
    /// Kind obtained (`afxdp`, `afpacket`), or the kind requested while the port is missing.
    pub kind: String,
    /// AF_XDP attach and copy mode (`native, copy`); empty otherwise.
    pub mode: String,
    /// Queues served.
    pub queues: u32,
    /// Interface MTU.
    pub mtu: u32,
    /// Interface MAC address.
    pub mac: String,
    /// `up`, or why the port is not forwarding (e.g. `missing: no interface named veth3`).
    pub state: String,
}

/// Counters of one port in `dump-ports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortDump {
    /// OpenFlow port number.
    pub ofport: u32,
    /// Interface name.
    pub name: String,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames dropped, by reason.
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// One MAC learning entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdbDump {
    /// OpenFlow port the MAC was learned on.
    pub port: u32,
    /// VLAN id (0 = untagged).
    pub vlan: u16,
    /// MAC address.
    pub mac: String,
    /// Seconds since last seen.
    pub age: u64,
    /// Remote VTEP the MAC was learned behind (tunnel ports); empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote: String,
}

/// One worker's accounting, like `ovs-appctl dpif-netdev/pmd-stats-show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerDump {
    /// Worker index.
    pub id: usize,
    /// Packets processed.
    pub packets: u64,
    /// Fast-path cache hits.
    pub cache_hits: u64,
    /// Pipeline runs (cache misses).
    pub cache_misses: u64,
    /// Time spent on packets, nanoseconds.
    pub busy_ns: u64,
    /// Time spent polling empty queues or sleeping, nanoseconds.
    pub idle_ns: u64,
    /// Busy nanoseconds per packet.
    pub busy_ns_per_packet: f64,
    /// Packets per busy iteration (receive batches of up to 32).
    pub packets_per_batch: f64,
}

/// Description of the running switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowInfo {
    /// Daemon version.
    pub daemon_version: String,
    /// Worker threads.
    pub workers: usize,
    /// Idle policy of the workers (`busy` or `sleep`).
    pub idle: String,
    /// Configuration database, or `None` when running without one.
    pub db: Option<String>,
    /// Bridges, sorted by name.
    pub bridges: Vec<BridgeInfo>,
    /// Conntrack zones configured with `set-ct-zone`: profile, invalid action, limit.
    #[serde(default)]
    pub ct_zones: Vec<CtZoneDump>,
    /// Where FIP ownership is decided (the claim store's description).
    #[serde(default)]
    pub fip_store: Option<String>,
}

/// One bridge in `show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeInfo {
    /// Name.
    pub name: String,
    /// Pipeline version number.
    pub version: u64,
    /// Total flows.
    pub n_flows: usize,
    /// Tables that hold flows or saw lookups.
    pub tables: Vec<TableInfo>,
    /// Ports, by ofport.
    pub ports: Vec<PortShow>,
    /// Packets dropped by reason (table miss, resubmit loop, ...), nonzero only.
    pub drops: Vec<(String, u64)>,
}

/// One table in `show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Table id.
    pub id: u8,
    /// Flows in it.
    pub n_flows: usize,
    /// Lookups done.
    pub lookups: u64,
    /// Lookups that matched.
    pub matched: u64,
}

/// One flow in `dump-flows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDump {
    /// The line as `ovs-ofctl dump-flows` prints it (feedable to `add-flow`).
    pub line: String,
    /// Table id.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Seconds since the flow was added.
    pub duration_secs: f64,
    /// Packets matched.
    pub n_packets: u64,
    /// Bytes matched.
    pub n_bytes: u64,
    /// Seconds since the last hit (or since added).
    pub idle_age_secs: u64,
    /// Match part, canonical.
    pub matches: String,
    /// Action part, canonical.
    pub actions: String,
}

/// Result of `trace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceReply {
    /// Human-readable trace, like `ovs-appctl ofproto/trace`.
    pub text: String,
    /// The same, structured.
    pub detail: serde_json::Value,
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ErrorReply {
    /// Machine-readable class.
    pub kind: ErrorKind,
    /// One line for the operator, naming what was wrong.
    pub message: String,
    /// For flow errors: 1-based line number within the batch.
    pub line: Option<usize>,
    /// For flow errors: the offending token as written.
    pub token: Option<String>,
}

/// Classes of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request could not be decoded.
    BadRequest,
    /// Client and daemon speak different protocol versions.
    VersionMismatch,
    /// No bridge of that name.
    NoSuchBridge,
    /// A bridge of that name exists.
    BridgeExists,
    /// A flow was rejected (syntax, prerequisites, consistency).
    BadFlow,
    /// A flow uses something this build cannot execute yet (e.g. conntrack).
    Unsupported,
    /// A packet for `trace` could not be built.
    BadPacket,
    /// No such port.
    NoSuchPort,
    /// The port, interface or ofport is already in use.
    PortExists,
    /// The interface cannot be opened as a port.
    PortUnavailable,
    /// A bug: the daemon could not complete a valid request.
    Internal,
}

impl ErrorReply {
    /// An error without line/token.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorReply {
            kind,
            message: message.into(),
            line: None,
            token: None,
        }
    }

    /// A bad request naming the offending token (the operator sees which word was wrong).
    pub fn bad_token(token: &str, message: impl Into<String>) -> Self {
        ErrorReply {
            kind: ErrorKind::BadRequest,
            message: message.into(),
            line: None,
            token: Some(token.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_as_one_json_line() {
        let r = Request {
            version: PROTOCOL_VERSION,
            command: Command::AddFlows {
                bridge: "br-int".into(),
                flows: vec!["table=20,priority=1024,arp actions=drop".into()],
            },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(!s.contains('\n'));
        assert!(s.contains(r#""cmd":"add-flows""#), "{s}");
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
    }

    #[test]
    fn flush_conntrack_tuple_is_optional_on_the_wire() {
        // A request from an older client (no tuple) still decodes.
        let old = r#"{"version":PV,"command":{"cmd":"flush-conntrack","zone":5}}"#
            .replace("PV", &PROTOCOL_VERSION.to_string());
        let r: Request = serde_json::from_str(&old).unwrap();
        assert_eq!(
            r.command,
            Command::FlushConntrack {
                zone: Some(5),
                tuple: None
            }
        );
        let r = Request {
            version: PROTOCOL_VERSION,
            command: Command::FlushConntrack {
                zone: None,
                tuple: Some("ct_nw_proto=6,ct_tp_dst=22".into()),
            },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
    }

    #[test]
    fn error_response_round_trips() {
        let r = Response {
            version: PROTOCOL_VERSION,
            result: Err(ErrorReply {
                kind: ErrorKind::BadFlow,
                message: "unknown field".into(),
                line: Some(3),
                token: Some("nw_dstt=1.2.3.4".into()),
            }),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), r);
    }
}
