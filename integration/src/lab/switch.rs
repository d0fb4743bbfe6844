//! The switch's read commands as data: every `--json` field name the lab tests rely on is
//! read here and only here, so aligning with the daemon is a one-file change.
//!
//! Assumed shapes:
//! - `show --json`: `{"bridges": [{"name", "ports": [{"name", "ofport", "kind", "mode",
//!   "queues", "mtu", "mac"}]}]}`
//! - `dump-ports BR --json`: `[{"ofport", "name", "rx_packets", "tx_packets", "drops":
//!   {reason: count}}]`
//! - `fdb-show BR --json`: `[{"port", "vlan", "mac", "age"}]` (`port` a name or an ofport)
//! - `dump-flows BR --json`: `[{"table", "priority", "matches", "actions", "n_packets",
//!   "n_bytes"}]`

use super::topology::Host;
use crate::Daemon;
use serde_json::Value;
use std::collections::BTreeMap;

/// A port as `show --json` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct PortView {
    /// Interface name.
    pub name: String,
    /// OpenFlow port number.
    pub ofport: u64,
    /// `afxdp` or `afpacket`.
    pub kind: String,
    /// XDP mode (e.g. `native`/`generic`; empty for AF_PACKET).
    pub mode: String,
    /// RX queues opened.
    pub queues: u64,
    /// MTU.
    pub mtu: u64,
    /// MAC of the interface.
    pub mac: String,
}

/// A port's counters as `dump-ports --json` gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct PortStats {
    /// OpenFlow port number.
    pub ofport: u64,
    /// Interface name.
    pub name: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
}

/// A learned MAC.
#[derive(Debug, Clone, PartialEq)]
pub struct FdbEntry {
    /// Port name or ofport, as text.
    pub port: String,
    /// VLAN id (0 when untagged).
    pub vlan: u64,
    /// MAC, lower case.
    pub mac: String,
    /// Seconds since last seen.
    pub age: u64,
}

/// A flow with its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowView {
    /// Table id.
    pub table: u64,
    /// Priority.
    pub priority: u64,
    /// Canonical match text.
    pub matches: String,
    /// Canonical actions text.
    pub actions: String,
    /// Packets matched.
    pub n_packets: u64,
    /// Bytes matched.
    pub n_bytes: u64,
}

fn json(d: &Daemon, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.push("--json");
    let out = d.swctl(&full).expect_ok(&args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{} --json: {e}\n{out}", args[0]))
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Ports of `bridge` from `show --json`.
pub fn show_ports(d: &Daemon, bridge: &str) -> Vec<PortView> {
    let show = json(d, &["show"]);
    list(&show["bridges"])
        .iter()
        .filter(|b| b["name"] == bridge)
        .flat_map(|b| list(&b["ports"]))
        .map(|p| PortView {
            name: text(p, "name"),
            ofport: num(p, "ofport"),
            kind: text(p, "kind"),
            mode: text(p, "mode"),
            queues: num(p, "queues"),
            mtu: num(p, "mtu"),
            mac: text(p, "mac").to_lowercase(),
        })
        .collect()
}

/// The port named `iface` on `bridge`, if listed.
pub fn show_port(d: &Daemon, bridge: &str, iface: &str) -> Option<PortView> {
    show_ports(d, bridge).into_iter().find(|p| p.name == iface)
}

/// Counters of every port of `bridge`.
pub fn dump_ports(d: &Daemon, bridge: &str) -> Vec<PortStats> {
    list(&json(d, &["dump-ports", bridge]))
        .iter()
        .map(|p| PortStats {
            ofport: num(p, "ofport"),
            name: text(p, "name"),
            rx_packets: num(p, "rx_packets"),
            tx_packets: num(p, "tx_packets"),
            drops: p["drops"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The MAC table of `bridge`.
pub fn fdb(d: &Daemon, bridge: &str) -> Vec<FdbEntry> {
    list(&json(d, &["fdb-show", bridge]))
        .iter()
        .map(|e| FdbEntry {
            port: text(e, "port"),
            vlan: num(e, "vlan"),
            mac: text(e, "mac").to_lowercase(),
            age: num(e, "age"),
        })
        .collect()
}

/// Whether `fdb` maps `mac` to the port called `name` or numbered `ofport`.
pub fn fdb_has(fdb: &[FdbEntry], mac: &str, name: &str, ofport: u64) -> bool {
    fdb.iter().any(|e| {
        e.mac.eq_ignore_ascii_case(mac) && (e.port == name || e.port == ofport.to_string())
    })
}

/// Flows of `bridge` with counters.
pub fn flows(d: &Daemon, bridge: &str) -> Vec<FlowView> {
    list(&json(d, &["dump-flows", bridge]))
        .iter()
        .map(|f| FlowView {
            table: num(f, "table"),
            priority: num(f, "priority"),
            matches: text(f, "matches"),
            actions: text(f, "actions"),
            n_packets: num(f, "n_packets"),
            n_bytes: num(f, "n_bytes"),
        })
        .collect()
}

/// `n_packets` of the one flow whose match consists of exactly `tokens` (in any order, as
/// the daemon may print them in its canonical order).
pub fn flow_packets(d: &Daemon, bridge: &str, tokens: &[&str]) -> u64 {
    let all = flows(d, bridge);
    let found: Vec<_> = all
        .iter()
        .filter(|f| same_match(&f.matches, tokens))
        .collect();
    assert_eq!(found.len(), 1, "one flow matching {tokens:?} in {all:#?}");
    found[0].n_packets
}

fn same_match(matches: &str, tokens: &[&str]) -> bool {
    let mut have: Vec<&str> = matches.split(',').map(str::trim).collect();
    let mut want = tokens.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    have == want
}

/// `swctl add-flows BR -` with `flows`, which must succeed.
pub fn add_flows(d: &Daemon, bridge: &str, flows: &[&str]) {
    d.swctl_stdin(&["add-flows", bridge, "-"], &flows.join("\n"))
        .expect_ok("add-flows");
}

/// Bridge `bridge` with every host's root end as a port, ofports 1..n in order.
pub fn bridge_with_hosts(d: &Daemon, bridge: &str, hosts: &[Host], kind: Option<&str>) {
    d.swctl(&["add-br", bridge]).expect_ok("add-br");
    for (i, h) in hosts.iter().enumerate() {
        let ofport = u16::try_from(i + 1).expect("few hosts");
        add_port(d, bridge, h.port(), kind, Some(ofport));
    }
}

/// `swctl add-port BR IFACE [--type T] [--ofport N]`, which must succeed.
pub fn add_port(d: &Daemon, bridge: &str, iface: &str, kind: Option<&str>, ofport: Option<u16>) {
    let ofport = ofport.map(|n| n.to_string());
    let mut args = vec!["add-port", bridge, iface];
    if let Some(k) = kind {
        args.extend(["--type", k]);
    }
    if let Some(n) = &ofport {
        args.extend(["--ofport", n.as_str()]);
    }
    d.swctl(&args).expect_ok(&args.join(" "));
}
