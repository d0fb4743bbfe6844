//! Ports in the control plane: `add-port`, `del-port`, `dump-ports`, `fdb-show`,
//! `pmd-stats`, and the housekeeping that keeps configured ports attached.
//!
//! A configured port is either *up* (its queues are served by workers) or *missing* (its
//! interface does not exist or cannot be opened right now). Missing ports stay in the
//! configuration, are shown with the reason, and are retried every few seconds, so an
//! interface that disappears (or is created after the daemon starts) comes back by itself —
//! as in Open vSwitch. An interface that vanishes under traffic is reported by its queue
//! (`PortError::Gone`), removed from the workers, logged, and marked missing.
//!
//! VXLAN ports (`--type vxlan`) have a logical name and no interface: their options are
//! validated here ([`VxlanConfig::parse`], errors name the option and value) before anything
//! changes, "opening" one binds its UDP socket to `--local` (a failure is refused like a
//! missing interface at `add-port`, and leaves a restored port missing and retried, e.g. until
//! the address is configured), and the parsed options are kept with the port and in the
//! database. Two VXLAN ports on the same local address and UDP port are refused up front.

use super::handlers::{no_such_bridge, State, Switch};
use crate::port::vxlan::VxlanConfig;
use crate::port::{self, PortInfo, PortRequest};
use control::protocol::{
    ErrorKind, ErrorReply, FdbDump, PortDump, PortShow, PortType, Reply, TunnelOptions, WorkerDump,
};
use std::sync::Arc;

/// Highest ofport an operator may assign (OpenFlow reserved numbers start at 0xff00 in the
/// 16-bit space `ovs-ofctl` uses).
const MAX_OFPORT: u32 = 0xfeff;

/// One configured port.
#[derive(Debug, Clone)]
pub struct PortEntry {
    /// Interface name.
    pub iface: String,
    /// Kind asked for.
    pub kind: PortType,
    /// Options of a VXLAN port.
    pub tunnel: Option<VxlanConfig>,
    /// Up or missing.
    pub state: PortState,
}

/// Whether a configured port is forwarding.
#[derive(Debug, Clone)]
pub enum PortState {
    /// Served by the workers.
    Up(PortInfo),
    /// Not attached, and why.
    Missing(String),
}

/// The interface request of a kind that opens an interface (`None` for tunnel kinds).
fn request(kind: PortType) -> Option<PortRequest> {
    match kind {
        PortType::Auto => Some(PortRequest::Auto),
        PortType::Afxdp => Some(PortRequest::Afxdp),
        PortType::Afpacket => Some(PortRequest::Afpacket),
        PortType::Vxlan => None,
    }
}

/// Validate `add-port` tunnel options against the kind: a VXLAN port needs them, other kinds
/// take none.
fn tunnel_config(
    kind: PortType,
    opts: Option<&TunnelOptions>,
) -> Result<Option<VxlanConfig>, ErrorReply> {
    match (kind, opts) {
        (PortType::Vxlan, o) => {
            let o = o.cloned().unwrap_or_default();
            VxlanConfig::parse(
                o.local.as_deref(),
                o.remote.as_deref(),
                o.key.as_deref(),
                o.dst_port,
            )
            .map(Some)
            .map_err(|e| port_error(ErrorKind::BadRequest, e.to_string()))
        }
        (_, Some(o)) if *o != TunnelOptions::default() => Err(port_error(
            ErrorKind::BadRequest,
            format!(
                "--local, --remote, --key and --dst-port apply to --type vxlan only, not {}",
                kind.name()
            ),
        )),
        _ => Ok(None),
    }
}

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn port_error(kind: ErrorKind, message: String) -> ErrorReply {
    ErrorReply::new(kind, message)
}

impl State {
    /// Register a bridge with the datapath.
    pub(super) fn add_bridge_runtime(&mut self, br: &Arc<super::Bridge>) -> Result<(), ErrorReply> {
        if let Some(dp) = &self.datapath {
            dp.add_bridge(br.name(), br.pipeline_handle())
                .map_err(|e| port_error(ErrorKind::Internal, e.to_string()))?;
        }
        Ok(())
    }

    /// The running datapath.
    pub(super) fn datapath(&self) -> Result<&crate::datapath::Datapath, ErrorReply> {
        self.datapath
            .as_ref()
            .ok_or_else(|| port_error(ErrorKind::Internal, "datapath is shut down".into()))
    }

    /// The running datapath, after checking that `bridge` exists.
    fn datapath_of(&self, bridge: &str) -> Result<&crate::datapath::Datapath, ErrorReply> {
        if !self.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        self.datapath()
    }

    /// Open `iface` (or bind the VXLAN port `tunnel` describes) and hand its queues to the
    /// workers.
    fn open_port(
        &self,
        bridge: &str,
        iface: &str,
        kind: PortType,
        tunnel: Option<&VxlanConfig>,
        ofport: u32,
    ) -> Result<PortInfo, ErrorReply> {
        let dp = self.datapath()?;
        let opened = match (request(kind), tunnel) {
            (Some(req), _) => port::open(iface, req),
            (None, Some(cfg)) => port::open_vxlan(iface, cfg),
            (None, None) => {
                return Err(port_error(
                    ErrorKind::Internal,
                    format!("{} port {iface} has no options", kind.name()),
                ))
            }
        }
        .map_err(|e| port_error(ErrorKind::PortUnavailable, e.to_string()))?;
        let info = opened.info.clone();
        dp.add_port(bridge, ofport, opened)
            .map_err(|e| port_error(ErrorKind::PortExists, e.to_string()))?;
        Ok(info)
    }

    /// Configure a port and try to bring it up; a failure leaves it configured but missing.
    /// Used when restoring the configuration.
    pub(super) fn attach_port(
        &mut self,
        bridge: &str,
        iface: &str,
        kind: PortType,
        tunnel: Option<VxlanConfig>,
        ofport: u32,
    ) {
        let state = match self.open_port(bridge, iface, kind, tunnel.as_ref(), ofport) {
            Ok(info) => {
                tracing::info!(bridge, iface, ofport, kind = info.kind.name(), mode = %info.mode, "port up");
                PortState::Up(info)
            }
            Err(e) => {
                tracing::warn!(bridge, iface, ofport, error = %e.message, "port missing; will retry");
                PortState::Missing(e.message)
            }
        };
        self.ports.entry(bridge.to_string()).or_default().insert(
            ofport,
            PortEntry {
                iface: iface.to_string(),
                kind,
                tunnel,
                state,
            },
        );
    }

    /// The bridge and ofport of the port on `iface`, in any bridge.
    fn find_iface(&self, iface: &str) -> Option<(String, u32)> {
        self.ports.iter().find_map(|(br, ports)| {
            ports
                .iter()
                .find(|(_, p)| p.iface == iface)
                .map(|(ofport, _)| (br.clone(), *ofport))
        })
    }

    /// OpenFlow numbers of `bridge`'s ports that are up (what `flood`/`all` reach).
    pub(super) fn up_ofports(&self, bridge: &str) -> Vec<u32> {
        self.ports
            .get(bridge)
            .into_iter()
            .flatten()
            .filter(|(_, p)| matches!(p.state, PortState::Up(_)))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Ports of `bridge` as `show` prints them.
    pub(super) fn port_show(&self, bridge: &str) -> Vec<PortShow> {
        self.ports
            .get(bridge)
            .into_iter()
            .flatten()
            .map(|(ofport, p)| match &p.state {
                PortState::Up(info) => PortShow {
                    name: p.iface.clone(),
                    ofport: *ofport,
                    kind: info.kind.name().to_string(),
                    mode: info.mode.clone(),
                    queues: info.queues,
                    mtu: info.mtu,
                    mac: mac_text(&info.mac),
                    state: "up".into(),
                },
                PortState::Missing(why) => PortShow {
                    name: p.iface.clone(),
                    ofport: *ofport,
                    kind: p.kind.name().to_string(),
                    mode: p.tunnel.map(|t| t.describe()).unwrap_or_default(),
                    queues: 0,
                    mtu: 0,
                    mac: String::new(),
                    state: format!("missing: {why}"),
                },
            })
            .collect()
    }
}

impl Switch {
    pub(super) fn add_port(
        &self,
        bridge: &str,
        iface: &str,
        kind: PortType,
        ofport: Option<u32>,
        tunnel: Option<&TunnelOptions>,
    ) -> Result<Reply, ErrorReply> {
        let mut st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let tunnel = tunnel_config(kind, tunnel)?;
        if let Some(t) = &tunnel {
            if !port::iface::valid_name(iface) {
                return Err(port_error(
                    ErrorKind::BadRequest,
                    format!(
                        "{iface:?} is not a valid port name (1 to 15 characters, no '/' or spaces)"
                    ),
                ));
            }
            let clash = st.ports.iter().find_map(|(br, ports)| {
                ports.values().find_map(|p| {
                    p.tunnel
                        .filter(|o| o.local == t.local && o.dst_port == t.dst_port)
                        .map(|_| (br.clone(), p.iface.clone()))
                })
            });
            if let Some((br, name)) = clash {
                return Err(port_error(
                    ErrorKind::PortExists,
                    format!(
                        "VXLAN port {name} of bridge {br} already uses {}:{}",
                        t.local, t.dst_port
                    ),
                ));
            }
        }
        if let Some((br, n)) = st.find_iface(iface) {
            return Err(port_error(
                ErrorKind::PortExists,
                format!("interface {iface} is already port {n} of bridge {br}"),
            ));
        }
        let used = st.ports.get(bridge).cloned().unwrap_or_default();
        let ofport = match ofport {
            Some(n) if n == 0 || n > MAX_OFPORT => {
                return Err(port_error(
                    ErrorKind::BadRequest,
                    format!("ofport {n} is out of range (1 to {MAX_OFPORT})"),
                ))
            }
            Some(n) if used.contains_key(&n) => {
                return Err(port_error(
                    ErrorKind::PortExists,
                    format!(
                        "ofport {n} is in use on bridge {bridge} by {}",
                        used[&n].iface
                    ),
                ))
            }
            Some(n) => n,
            None => (1..=MAX_OFPORT)
                .find(|n| !used.contains_key(n))
                .ok_or_else(|| {
                    port_error(ErrorKind::PortExists, format!("bridge {bridge} is full"))
                })?,
        };
        // Open first: a missing interface or an impossible kind changes nothing.
        let info = st.open_port(bridge, iface, kind, tunnel.as_ref(), ofport)?;
        st.ports.entry(bridge.to_string()).or_default().insert(
            ofport,
            PortEntry {
                iface: iface.to_string(),
                kind,
                tunnel,
                state: PortState::Up(info.clone()),
            },
        );
        if let Err(e) = self.persist(&st, None) {
            if let Some(ports) = st.ports.get_mut(bridge) {
                ports.remove(&ofport);
            }
            if let Some(dp) = &st.datapath {
                let _ = dp.del_port(bridge, ofport);
            }
            return Err(e);
        }
        tracing::info!(bridge, iface, ofport, kind = info.kind.name(), mode = %info.mode, queues = info.queues, "port added");
        let port = st
            .port_show(bridge)
            .into_iter()
            .find(|p| p.ofport == ofport)
            .ok_or_else(|| port_error(ErrorKind::Internal, "port vanished".into()))?;
        Ok(Reply::PortAdded { ofport, port })
    }

    pub(super) fn del_port(&self, bridge: &str, iface: &str) -> Result<Reply, ErrorReply> {
        let mut st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let ofport = st
            .ports
            .get(bridge)
            .and_then(|ports| ports.iter().find(|(_, p)| p.iface == iface))
            .map(|(n, _)| *n)
            .ok_or_else(|| {
                port_error(
                    ErrorKind::NoSuchPort,
                    format!("bridge {bridge} has no port {iface}"),
                )
            })?;
        let entry = st
            .ports
            .get_mut(bridge)
            .and_then(|ports| ports.remove(&ofport))
            .ok_or_else(|| port_error(ErrorKind::Internal, "port vanished".into()))?;
        // On disk first: if that fails, the port is still configured and still forwarding.
        if let Err(e) = self.persist(&st, None) {
            st.ports
                .entry(bridge.to_string())
                .or_default()
                .insert(ofport, entry);
            return Err(e);
        }
        if let (PortState::Up(_), Some(dp)) = (&entry.state, &st.datapath) {
            if let Err(e) = dp.del_port(bridge, ofport) {
                tracing::warn!(bridge, iface, error = %e, "datapath had no such port");
            }
        }
        tracing::info!(bridge, iface, ofport, "port deleted");
        Ok(Reply::Done)
    }

    pub(super) fn dump_ports(&self, bridge: &str, only: Option<&str>) -> Result<Reply, ErrorReply> {
        let st = self.lock();
        let dp = st.datapath_of(bridge)?;
        let statuses = dp
            .ports(bridge)
            .map_err(|e| port_error(ErrorKind::Internal, e.to_string()))?;
        let configured = st.ports.get(bridge).cloned().unwrap_or_default();
        let mut ports = Vec::new();
        for (ofport, entry) in &configured {
            if let Some(o) = only {
                if o != entry.iface && o != ofport.to_string() {
                    continue;
                }
            }
            let status = statuses.iter().find(|s| s.ofport == *ofport);
            let c = status.map(|s| s.counters).unwrap_or_default();
            let mut drops: std::collections::BTreeMap<String, u64> = status
                .map(|s| s.drops.iter().cloned().collect())
                .unwrap_or_default();
            for (reason, n) in [
                ("rx_oversize", c.rx_oversize),
                ("tx_ring_full", c.tx_ring_full),
                ("tx_oversize", c.tx_oversize),
                ("io_errors", c.io_errors),
                ("vxlan_bad_header", c.vxlan_bad_header),
                ("vxlan_unknown_vni", c.vxlan_unknown_vni),
                ("vxlan_no_remote", c.vxlan_no_remote),
                ("xsk_fill_ring_empty", c.xsk_fill_ring_empty),
                ("xsk_rx_ring_full", c.xsk_rx_ring_full),
                ("xsk_rx_dropped", c.xsk_rx_dropped),
                ("xsk_invalid_descs", c.xsk_invalid_descs),
            ] {
                if n > 0 {
                    *drops.entry(reason.to_string()).or_default() += n;
                }
            }
            ports.push(PortDump {
                ofport: *ofport,
                name: entry.iface.clone(),
                rx_packets: c.rx_packets,
                rx_bytes: c.rx_bytes,
                tx_packets: c.tx_packets,
                tx_bytes: c.tx_bytes,
                drops,
            });
        }
        if let Some(o) = only {
            if ports.is_empty() {
                return Err(port_error(
                    ErrorKind::NoSuchPort,
                    format!("bridge {bridge} has no port {o}"),
                ));
            }
        }
        Ok(Reply::Ports { ports })
    }

    pub(super) fn fdb_show(&self, bridge: &str) -> Result<Reply, ErrorReply> {
        let st = self.lock();
        let entries = st
            .datapath_of(bridge)?
            .fdb(bridge)
            .map_err(|e| port_error(ErrorKind::Internal, e.to_string()))?
            .into_iter()
            .map(|e| FdbDump {
                port: e.ofport,
                vlan: e.vlan,
                mac: mac_text(&e.mac),
                age: e.age_secs,
                remote: if e.remote == 0 {
                    String::new()
                } else {
                    std::net::Ipv4Addr::from(e.remote).to_string()
                },
            })
            .collect();
        Ok(Reply::Fdb { entries })
    }

    pub(super) fn pmd_stats(&self, clear: bool) -> Result<Reply, ErrorReply> {
        let st = self.lock();
        let workers = st
            .datapath()?
            .worker_stats(clear)
            .into_iter()
            .map(|w| WorkerDump {
                id: w.worker,
                packets: w.packets,
                cache_hits: w.cache_hits,
                cache_misses: w.cache_misses,
                busy_ns: w.busy_ns,
                idle_ns: w.idle_ns,
                busy_ns_per_packet: w.busy_ns_per_packet,
                packets_per_batch: w.packets_per_batch,
            })
            .collect();
        Ok(Reply::PmdStats { workers })
    }

    /// Mark ports whose interface vanished as missing, and retry missing ports when
    /// `retry` is set. Called periodically by the daemon.
    pub fn housekeep_ports(&self, retry: bool) {
        let mut st = self.lock();
        let gone = match &st.datapath {
            Some(dp) => {
                // Conntrack timeouts are whole seconds too: this tick is fine for them.
                dp.ct_expire();
                // The packet path only counts refusals; the log line is rate-limited here.
                if let Some(n) = dp.conntrack().nat_exhausted_log(dp.ct_now_ms()) {
                    tracing::warn!(
                        refused = n,
                        "ct(nat): no free translation for new connections (nat_exhausted); \
                         widen the nat() address/port range"
                    );
                }
                dp.take_gone_ports()
            }
            None => return,
        };
        for (bridge, ofport, iface) in gone {
            tracing::warn!(
                bridge,
                iface,
                ofport,
                "interface disappeared; port removed from the datapath, kept configured as missing"
            );
            if let Some(p) = st.ports.get_mut(&bridge).and_then(|p| p.get_mut(&ofport)) {
                p.state = PortState::Missing(format!("interface {iface} disappeared"));
            }
        }
        if !retry {
            return;
        }
        type Missing = (String, u32, String, PortType, Option<VxlanConfig>);
        let missing: Vec<Missing> = st
            .ports
            .iter()
            .flat_map(|(br, ports)| {
                ports.iter().filter_map(move |(n, p)| match p.state {
                    PortState::Missing(_) => {
                        Some((br.clone(), *n, p.iface.clone(), p.kind, p.tunnel))
                    }
                    PortState::Up(_) => None,
                })
            })
            .collect();
        for (bridge, ofport, iface, kind, tunnel) in missing {
            if let Ok(info) = st.open_port(&bridge, &iface, kind, tunnel.as_ref(), ofport) {
                tracing::info!(
                    bridge,
                    iface,
                    ofport,
                    kind = info.kind.name(),
                    "missing port is back"
                );
                if let Some(p) = st.ports.get_mut(&bridge).and_then(|p| p.get_mut(&ofport)) {
                    p.state = PortState::Up(info);
                }
            }
        }
    }
}
