//! Control command handlers: every `swctl` command ends up here.
//!
//! Each handler either applies its whole change and publishes one new pipeline version, or
//! returns an error and leaves the running configuration untouched.

use super::bridge::Bridge;
use super::db::{self, DbError};
use super::fip::{self, FipConfigs, Ownership};
use super::ownership::check::fip_check;
use super::ports::PortEntry;
use super::snat_pool::{self, SnatPoolConfigs};
use super::trace::trace_packet;
use crate::datapath::{Datapath, DatapathConfig, IdlePolicy};
use crate::flowtable::{FlowModError, Pipeline, Rule};
use control::flow::ast::{Action, FlowSpec};
use control::flow::filter::{all_flows, parse_filter, Filter};
use control::flow::{format_dump_line, format_flow, parse_flow, DumpStats, FlowError, ParseMode};
use control::protocol::{
    BridgeInfo, Command, ErrorKind, ErrorReply, FlowDump, PortType, Reply, ShowInfo, TableInfo,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The whole switch: its bridges and ports, the datapath that moves their packets, and where
/// the configuration is kept.
pub struct Switch {
    /// Shared (weakly) with the FIP ownership thread.
    state: Arc<Mutex<State>>,
    /// The configuration database; `None` runs without persistence.
    db: Option<PathBuf>,
    /// Datapath settings, for `show`.
    dp_config: DatapathConfig,
    /// Where FIP ownership is claimed, and this node's name there.
    ownership: Ownership,
}

/// Everything the control plane changes, under one lock (control commands are rare; packet
/// workers never take it).
pub(super) struct State {
    /// Bridges by name.
    pub(super) bridges: BTreeMap<String, Arc<Bridge>>,
    /// Ports by bridge, then by ofport.
    pub(super) ports: BTreeMap<String, BTreeMap<u32, PortEntry>>,
    /// The workers; `None` once shut down.
    pub(super) datapath: Option<Datapath>,
    /// Conntrack zones configured with `set-ct-zone`: the settings in force and the
    /// `key=value` items as written (what the database keeps).
    pub(super) ct_zones: BTreeMap<u16, (conntrack::config::ZoneConfig, Vec<String>)>,
    /// Floating IPs by bridge (`add-fip`).
    pub(super) fips: FipConfigs,
    /// Shared-address SNAT pools by bridge (`add-snat-pool`).
    pub(super) snat_pools: SnatPoolConfigs,
}

impl State {
    /// A state without datapath, bridges or configuration (unit tests of handlers' pieces).
    #[cfg(test)]
    pub(super) fn for_tests() -> State {
        State {
            bridges: BTreeMap::new(),
            ports: BTreeMap::new(),
            datapath: None,
            ct_zones: BTreeMap::new(),
            fips: FipConfigs::new(),
            snat_pools: SnatPoolConfigs::new(),
        }
    }
}

/// Why the saved configuration could not be restored at start.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The file itself.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The file parsed, but a bridge or flow in it is not acceptable.
    #[error(
        "configuration database {path}: bridge {bridge}: {message}; the file was left untouched"
    )]
    Content {
        /// File.
        path: PathBuf,
        /// Bridge.
        bridge: String,
        /// What is wrong.
        message: String,
    },
}

type Outcome = Result<Reply, ErrorReply>;

impl Switch {
    /// Start the datapath and restore the configuration from `db` (when given and present),
    /// FIP ownership standalone (see [`Switch::start_with`]).
    pub fn start(db: Option<&Path>, dp_config: DatapathConfig) -> Result<Switch, RestoreError> {
        Switch::start_with(db, dp_config, Ownership::standalone())
    }

    /// [`Switch::start`] with FIP ownership claimed through `ownership` (a distributed claim
    /// store and this node's name in it).
    pub fn start_with(
        db: Option<&Path>,
        dp_config: DatapathConfig,
        ownership: Ownership,
    ) -> Result<Switch, RestoreError> {
        let switch = Switch {
            state: Arc::new(Mutex::new(State {
                bridges: BTreeMap::new(),
                ports: BTreeMap::new(),
                datapath: Some(Datapath::start(dp_config.clone())),
                ct_zones: BTreeMap::new(),
                fips: FipConfigs::new(),
                snat_pools: SnatPoolConfigs::new(),
            })),
            db: db.map(Path::to_path_buf),
            dp_config,
            ownership,
        };
        fip::spawn_ownership_follower(
            Arc::downgrade(&switch.state),
            switch.ownership.store.clone(),
        );
        let Some(db) = db else {
            tracing::info!("running without a configuration database");
            return Ok(switch);
        };
        let Some(config) = db::load(db)? else {
            tracing::info!(db = %db.display(), "no configuration database yet; starting empty");
            return Ok(switch);
        };
        let content = |bridge: &str, message: String| RestoreError::Content {
            path: db.to_path_buf(),
            bridge: bridge.to_string(),
            message,
        };
        let mut n_flows = 0;
        let mut n_ports = 0;
        {
            let mut st = switch.lock();
            for z in &config.ct_zones {
                st.apply_ct_zone(z.zone, &z.settings)
                    .map_err(|e| RestoreError::Content {
                        path: db.to_path_buf(),
                        bridge: "(none)".into(),
                        message: format!("conntrack zone {}: {e}", z.zone),
                    })?;
            }
            for bc in &config.bridges {
                validate_bridge_name(&bc.name).map_err(|e| content(&bc.name, e.message))?;
                let br = Bridge::new(&bc.name);
                let mut edit = br.pipeline().edit();
                let now = now_ms();
                for (i, line) in bc.flows.iter().enumerate() {
                    let spec = parse_flow(line, ParseMode::Add)
                        .map_err(|e| content(&bc.name, format!("flow {}: {e}", i + 1)))?;
                    edit.add(&spec, now)
                        .map_err(|e| content(&bc.name, format!("flow {}: {e}", i + 1)))?;
                    n_flows += 1;
                }
                // Floating IPs: checked like add-fip, claimed again (ownership is not kept).
                for fc in &bc.fips {
                    let conf = fip::from_db(&st.fips, &bc.name, fc).map_err(|e| {
                        content(&bc.name, format!("floating IP {}: {}", fc.fip, e.message))
                    })?;
                    st.fips
                        .entry(bc.name.clone())
                        .or_default()
                        .insert(conf.fip, conf);
                }
                if let Some(confs) = st.fips.get(&bc.name) {
                    let store = &*switch.ownership.store;
                    for c in confs.values() {
                        store.claim(&c.record(&switch.ownership.node, &bc.name));
                    }
                    let table = fip::build_table(confs.values(), store, edit.pipeline().fips())
                        .map_err(|e| content(&bc.name, e))?;
                    edit.set_fips(Arc::new(table));
                }
                // SNAT pools: checked like add-snat-pool.
                for pc in &bc.snat_pools {
                    let conf = snat_pool::from_db(&st.snat_pools, &bc.name, pc).map_err(|e| {
                        content(&bc.name, format!("SNAT pool {}: {}", pc.name, e.message))
                    })?;
                    st.snat_pools
                        .entry(bc.name.clone())
                        .or_default()
                        .insert(conf.name.clone(), conf);
                }
                if let Some(confs) = st.snat_pools.get(&bc.name) {
                    let table =
                        snat_pool::build_table(confs.values(), edit.pipeline().snat_pools());
                    edit.set_snat_pools(Arc::new(table));
                }
                br.publish(edit.finish());
                let br = Arc::new(br);
                st.add_bridge_runtime(&br)
                    .map_err(|e| content(&bc.name, e.message))?;
                st.bridges.insert(bc.name.clone(), br);
                for pc in &bc.ports {
                    let kind = PortType::from_name(&pc.kind).ok_or_else(|| {
                        content(
                            &bc.name,
                            format!("port {}: unknown kind {:?}", pc.iface, pc.kind),
                        )
                    })?;
                    // An interface that is missing now may appear later: the port stays
                    // configured and housekeeping retries it.
                    if kind == PortType::Vxlan && pc.vxlan.is_none() {
                        return Err(content(
                            &bc.name,
                            format!("port {}: a vxlan port without its options", pc.iface),
                        ));
                    }
                    st.attach_port(&bc.name, &pc.iface, kind, pc.vxlan, pc.ofport);
                    n_ports += 1;
                }
            }
        }
        tracing::info!(
            db = %db.display(),
            bridges = config.bridges.len(),
            ports = n_ports,
            flows = n_flows,
            "configuration restored"
        );
        Ok(switch)
    }

    /// Stop the workers and release every port (AF_XDP programs are detached).
    pub fn shutdown(&self) {
        let datapath = self.lock().datapath.take();
        if let Some(dp) = datapath {
            dp.shutdown();
        }
    }

    /// Save the configuration `st` describes — with `pending` standing in for the named
    /// bridge's pipeline, so a change is on disk before it is published. Without a database
    /// this does nothing.
    pub(super) fn persist(
        &self,
        st: &State,
        pending: Option<(&str, &Pipeline)>,
    ) -> Result<(), ErrorReply> {
        let Some(path) = &self.db else {
            return Ok(());
        };
        let everything = all_flows();
        let config = db::Config {
            format: db::FORMAT,
            bridges: st
                .bridges
                .values()
                .map(|br| {
                    let current;
                    let pipeline = match pending {
                        Some((name, p)) if name == br.name() => p,
                        _ => {
                            current = br.pipeline();
                            &*current
                        }
                    };
                    db::BridgeConfig {
                        name: br.name().to_string(),
                        ports: st
                            .ports
                            .get(br.name())
                            .into_iter()
                            .flatten()
                            .map(|(ofport, p)| db::PortConfig {
                                iface: p.iface.clone(),
                                ofport: *ofport,
                                kind: p.kind.name().to_string(),
                                vxlan: p.tunnel,
                            })
                            .collect(),
                        flows: pipeline
                            .dump(&everything.spec, None)
                            .iter()
                            .map(|r| format_flow(&r.spec()))
                            .collect(),
                        fips: st
                            .fips
                            .get(br.name())
                            .into_iter()
                            .flat_map(|m| m.values())
                            .map(|c| c.to_db())
                            .collect(),
                        snat_pools: st
                            .snat_pools
                            .get(br.name())
                            .into_iter()
                            .flat_map(|m| m.values())
                            .map(|c| c.to_db())
                            .collect(),
                    }
                })
                .collect(),
            ct_zones: st
                .ct_zones
                .iter()
                .map(|(&zone, (_, settings))| db::CtZoneConfig {
                    zone,
                    settings: settings.clone(),
                })
                .collect(),
        };
        db::save(path, &config).map_err(|e| {
            tracing::error!("{e}");
            ErrorReply::new(
                ErrorKind::Internal,
                format!("{e}; the change was not applied"),
            )
        })
    }

    /// The bridge called `name`.
    pub fn bridge(&self, name: &str) -> Option<Arc<Bridge>> {
        self.lock().bridges.get(name).cloned()
    }

    /// Where FIP ownership is claimed.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A handler that panicked cannot have published half a change (publishing is one
        // pointer swap), so the state is consistent even if the lock is poisoned.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Execute one command.
    pub fn handle(&self, command: Command) -> Outcome {
        match command {
            Command::Ping => Ok(Reply::Pong {
                daemon_version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
            }),
            Command::AddBr { bridge, may_exist } => self.add_br(&bridge, may_exist),
            Command::DelBr { bridge, if_exists } => self.del_br(&bridge, if_exists),
            Command::ListBr => Ok(Reply::Bridges {
                bridges: self.lock().bridges.keys().cloned().collect(),
            }),
            Command::Show => Ok(Reply::Show(self.show())),
            Command::AddFlows { bridge, flows } => self.add_flows(&bridge, &flows),
            Command::ModFlows {
                bridge,
                flow,
                strict,
            } => self.mod_flows(&bridge, &flow, strict),
            Command::DelFlows {
                bridge,
                filter,
                strict,
            } => self.del_flows(&bridge, filter.as_deref(), strict),
            Command::DumpFlows { bridge, filter } => self.dump_flows(&bridge, filter.as_deref()),
            Command::AddPort {
                bridge,
                iface,
                kind,
                ofport,
                tunnel,
            } => self.add_port(&bridge, &iface, kind, ofport, tunnel.as_ref()),
            Command::DelPort { bridge, iface } => self.del_port(&bridge, &iface),
            Command::DumpPorts { bridge, port } => self.dump_ports(&bridge, port.as_deref()),
            Command::FdbShow { bridge } => self.fdb_show(&bridge),
            Command::PmdStats { clear } => self.pmd_stats(clear),
            Command::DumpConntrack { zone } => self.dump_conntrack(zone),
            Command::FlushConntrack { zone, tuple } => self.flush_conntrack(zone, tuple.as_deref()),
            Command::ConntrackStats => self.conntrack_stats(),
            Command::SetCtZone { zone, settings } => self.set_ct_zone(zone, &settings),
            Command::AddFip {
                bridge,
                fip,
                fixed,
                mac,
                mode,
            } => self.add_fip(&bridge, &fip, &fixed, mac.as_deref(), mode.as_deref()),
            Command::DelFip { bridge, fip } => self.del_fip(&bridge, &fip),
            Command::DumpFips { bridge } => self.dump_fips(&bridge),
            Command::FipCheck => Ok(Reply::FipCheck(fip_check(&*self.ownership.store))),
            Command::AddSnatPool {
                bridge,
                name,
                public,
                inside,
                ports,
            } => self.add_snat_pool(&bridge, &name, &public, &inside, ports.as_deref()),
            Command::DelSnatPool { bridge, name } => self.del_snat_pool(&bridge, &name),
            Command::DumpSnatPools {
                bridge,
                for_addr,
                owner_of,
            } => self.dump_snat_pools(&bridge, for_addr.as_deref(), owner_of),
            Command::Trace { bridge, packet } => {
                // The ports that forward now are where flood/all would send the packet.
                let (br, ports) = {
                    let st = self.lock();
                    let br = st
                        .bridges
                        .get(&bridge)
                        .cloned()
                        .ok_or_else(|| no_such_bridge(&bridge))?;
                    (br, st.up_ofports(&bridge))
                };
                trace_packet(&br, &packet, &ports).map(Reply::Trace)
            }
        }
    }

    fn add_br(&self, name: &str, may_exist: bool) -> Outcome {
        validate_bridge_name(name)?;
        let mut st = self.lock();
        if st.bridges.contains_key(name) {
            if may_exist {
                return Ok(Reply::Done);
            }
            return Err(ErrorReply::new(
                ErrorKind::BridgeExists,
                format!("bridge {name} already exists"),
            ));
        }
        let br = Arc::new(Bridge::new(name));
        st.bridges.insert(name.to_string(), br.clone());
        if let Err(e) = self.persist(&st, None) {
            st.bridges.remove(name);
            return Err(e);
        }
        st.add_bridge_runtime(&br)?;
        tracing::info!(bridge = name, "bridge added");
        Ok(Reply::Done)
    }

    fn del_br(&self, name: &str, if_exists: bool) -> Outcome {
        let mut st = self.lock();
        let Some(removed) = st.bridges.remove(name) else {
            return if if_exists {
                Ok(Reply::Done)
            } else {
                Err(no_such_bridge(name))
            };
        };
        let ports = st.ports.remove(name);
        let fips = st.fips.remove(name);
        let pools = st.snat_pools.remove(name);
        if let Err(e) = self.persist(&st, None) {
            if let Some(p) = pools {
                st.snat_pools.insert(name.to_string(), p);
            }
            st.bridges.insert(name.to_string(), removed);
            if let Some(p) = ports {
                st.ports.insert(name.to_string(), p);
            }
            if let Some(f) = fips {
                st.fips.insert(name.to_string(), f);
            }
            return Err(e);
        }
        // Its floating IPs go with it: their claims are released.
        for fip in fips.into_iter().flat_map(|m| m.into_keys()) {
            self.ownership.store.release(fip);
        }
        if let Some(dp) = &st.datapath {
            // Removes the bridge's ports from the workers too.
            if let Err(e) = dp.del_bridge(name) {
                tracing::warn!(bridge = name, error = %e, "datapath did not know the bridge");
            }
        }
        tracing::info!(bridge = name, "bridge deleted");
        Ok(Reply::Done)
    }

    fn show(&self) -> ShowInfo {
        let st = self.lock();
        ShowInfo {
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            workers: self.dp_config.workers.max(1),
            idle: match self.dp_config.idle {
                IdlePolicy::Busy => "busy".into(),
                IdlePolicy::Sleep => "sleep".into(),
            },
            db: self.db.as_ref().map(|p| p.display().to_string()),
            bridges: st
                .bridges
                .values()
                .map(|b| {
                    let mut info = bridge_info(b.name(), &b.pipeline());
                    info.ports = st.port_show(b.name());
                    info.drops = st
                        .datapath
                        .as_ref()
                        .and_then(|dp| dp.drops(b.name()).ok())
                        .unwrap_or_default();
                    info
                })
                .collect(),
            ct_zones: st.ct_zone_show(),
            fip_store: Some(self.ownership.store.describe()),
        }
    }

    fn add_flows(&self, bridge: &str, lines: &[String]) -> Outcome {
        let st = self.lock();
        let br = st
            .bridges
            .get(bridge)
            .ok_or_else(|| no_such_bridge(bridge))?;
        // Parse and check every line before touching anything: a batch is all or nothing.
        let mut specs = Vec::new();
        let mut line_numbers = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let text = line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let spec = parse_flow(text, ParseMode::Add).map_err(|e| flow_error(i + 1, e))?;
            check_executable(&spec).map_err(|mut e| {
                e.line = Some(i + 1);
                e
            })?;
            specs.push(spec);
            line_numbers.push(i + 1);
        }
        let now = now_ms();
        let mut edit = br.pipeline().edit();
        for (spec, line) in specs.iter().zip(&line_numbers) {
            edit.add(spec, now).map_err(|e| flow_mod_error(*line, e))?;
        }
        let next = edit.finish();
        let version = next.version();
        self.persist(&st, Some((bridge, &next)))?;
        br.publish(next);
        tracing::info!(bridge, count = specs.len(), version, "flows added");
        Ok(Reply::FlowsChanged {
            count: specs.len(),
            version,
        })
    }

    fn mod_flows(&self, bridge: &str, text: &str, strict: bool) -> Outcome {
        let st = self.lock();
        let br = st
            .bridges
            .get(bridge)
            .ok_or_else(|| no_such_bridge(bridge))?;
        let filter = parse_filter(text, ParseMode::Modify).map_err(|e| flow_error(1, e))?;
        check_executable(&filter.spec)?;
        let mut edit = br.pipeline().edit();
        let count = edit.modify(&filter.spec, filter.table, strict);
        let next = edit.finish();
        let version = next.version();
        self.persist(&st, Some((bridge, &next)))?;
        br.publish(next);
        tracing::info!(bridge, count, version, strict, "flows modified");
        Ok(Reply::FlowsChanged { count, version })
    }

    fn del_flows(&self, bridge: &str, text: Option<&str>, strict: bool) -> Outcome {
        let st = self.lock();
        let br = st
            .bridges
            .get(bridge)
            .ok_or_else(|| no_such_bridge(bridge))?;
        let filter = parse_optional_filter(text)?;
        let mut edit = br.pipeline().edit();
        let removed = edit.delete(&filter.spec, filter.table, strict);
        let next = edit.finish();
        let version = next.version();
        br.publish(next);
        tracing::info!(
            bridge,
            count = removed.len(),
            version,
            strict,
            "flows deleted"
        );
        Ok(Reply::FlowsChanged {
            count: removed.len(),
            version,
        })
    }

    fn dump_flows(&self, bridge: &str, text: Option<&str>) -> Outcome {
        let br = self.bridge(bridge).ok_or_else(|| no_such_bridge(bridge))?;
        let filter = parse_optional_filter(text)?;
        let now = now_ms();
        let flows = br
            .pipeline()
            .dump(&filter.spec, filter.table)
            .iter()
            .map(|r| flow_dump(r, now))
            .collect();
        Ok(Reply::Flows { flows })
    }

    /// Remove flows whose idle or hard timeout has passed, on every bridge. Returns how many
    /// were removed. Cheap when no flow has a timeout (no new version is built).
    pub fn expire_flows(&self) -> usize {
        let st = self.lock();
        let now = now_ms();
        let mut total = 0;
        for br in st.bridges.values() {
            let current = br.pipeline();
            if !current.has_timeouts() || current.next_expiry_ms().is_some_and(|t| t > now) {
                continue;
            }
            let mut edit = current.edit();
            let expired = edit.expire(now);
            if expired.is_empty() {
                continue;
            }
            for (rule, reason) in &expired {
                tracing::info!(
                    bridge = br.name(),
                    table = rule.attrs.table,
                    priority = rule.attrs.priority,
                    reason = ?reason,
                    "flow expired"
                );
            }
            total += expired.len();
            let next = edit.finish();
            // Expiry is not a command anyone waits for: publish even if the save fails (the
            // error is logged); after a restart the flow would come back with a fresh timer.
            let _ = self.persist(&st, Some((br.name(), &next)));
            br.publish(next);
        }
        total
    }
}

fn parse_optional_filter(text: Option<&str>) -> Result<Filter, ErrorReply> {
    match text {
        Some(t) if !t.trim().is_empty() => {
            parse_filter(t, ParseMode::Filter).map_err(|e| flow_error(1, e))
        }
        _ => Ok(all_flows()),
    }
}

fn flow_mod_error(line: usize, e: FlowModError) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::BadFlow,
        message: e.to_string(),
        line: Some(line),
        token: None,
    }
}

/// A bridge name must be usable as an interface-like name: short, no separators.
fn validate_bridge_name(name: &str) -> Result<(), ErrorReply> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ErrorReply::new(
            ErrorKind::BadRequest,
            format!("invalid bridge name {name:?}: use 1 to 15 characters from [A-Za-z0-9._-]"),
        ))
    }
}

pub(super) fn no_such_bridge(name: &str) -> ErrorReply {
    ErrorReply::new(ErrorKind::NoSuchBridge, format!("no bridge named {name}"))
}

pub(crate) fn flow_error(line: usize, e: FlowError) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::BadFlow,
        message: e.to_string(),
        line: Some(line),
        token: Some(e.token),
    }
}

/// Reject flows whose actions this build cannot execute, so nothing is installed that would
/// silently misbehave.
fn check_executable(spec: &FlowSpec) -> Result<(), ErrorReply> {
    for a in spec.actions.iter().flatten() {
        match a {
            Action::Ct(ct) if ct.alg.is_some() || ct.force => {
                let what = if ct.force { "force" } else { "alg=" };
                return Err(ErrorReply {
                    kind: ErrorKind::Unsupported,
                    message: format!(
                        "ct({what}...) is not supported yet (no ALG helpers, no forced \
                         commit); use ct(commit,...)"
                    ),
                    line: None,
                    token: Some(what.trim_end_matches('=').into()),
                });
            }
            Action::Group(g) => {
                return Err(ErrorReply {
                    kind: ErrorKind::Unsupported,
                    message: format!("group {g} does not exist (groups are not supported yet)"),
                    line: None,
                    token: Some(format!("group:{g}")),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

fn flow_dump(rule: &Rule, now: u64) -> FlowDump {
    let spec = rule.spec();
    let n_packets = rule.stats.packets.load(Ordering::Relaxed);
    let n_bytes = rule.stats.bytes.load(Ordering::Relaxed);
    let last = rule
        .stats
        .last_used_ms
        .load(Ordering::Relaxed)
        .max(rule.created_ms);
    let stats = DumpStats {
        duration_secs: now.saturating_sub(rule.created_ms) as f64 / 1000.0,
        n_packets,
        n_bytes,
        idle_age_secs: Some(now.saturating_sub(last) / 1000),
    };
    FlowDump {
        line: format_dump_line(&spec, &stats),
        table: rule.attrs.table,
        priority: rule.attrs.priority,
        cookie: rule.attrs.cookie,
        duration_secs: stats.duration_secs,
        n_packets,
        n_bytes,
        idle_age_secs: stats.idle_age_secs.unwrap_or(0),
        matches: control::flow::format_match(&rule.matches),
        actions: control::flow::format_actions(&rule.actions),
    }
}

fn bridge_info(name: &str, p: &Pipeline) -> BridgeInfo {
    let tables = (0..crate::flowtable::N_TABLES as u8)
        .filter_map(|id| {
            let t = p.table(id);
            let lookups = t.stats().lookups.load(Ordering::Relaxed);
            (!t.is_empty() || lookups > 0).then(|| TableInfo {
                id,
                n_flows: t.len(),
                lookups,
                matched: t.stats().matched.load(Ordering::Relaxed),
            })
        })
        .collect();
    BridgeInfo {
        name: name.to_string(),
        version: p.version(),
        n_flows: p.n_rules(),
        tables,
        ports: Vec::new(),
        drops: Vec::new(),
    }
}
