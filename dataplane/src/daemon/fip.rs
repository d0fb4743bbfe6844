//! Floating IPs: `add-fip`, `del-fip`, `dump-fips`, their persistence, and ownership.
//!
//! # The model
//!
//! A floating IP is a stateless 1:1 mapping `FIP <-> fixed IP` (IPv4 only: IPv6 floating IPs
//! are refused with a message saying so). `swctl add-fip BR FIP FIXED [--mac MAC] [--mode
//! centralized|distributed]` puts it in the bridge's FIP table, which the flow actions
//! `fip_dnat` (destination FIP -> fixed on the way in), `fip_snat` (source fixed -> FIP on the
//! way out) and `fip_arp` (ARP replies for the FIP) consult; see [`crate::xlate::fip`] for
//! what they do to packets. Flows decide *where* translation happens (which ports, which
//! tables), the FIP table decides *what* it is, so the same table on two nodes gives the same
//! translation whichever node a packet crosses, and nothing about a connection is remembered.
//!
//! # Rules an added FIP must satisfy (nothing changes when one fails; the error names the token)
//!
//! * FIP and fixed IP are IPv4 unicast addresses (not 0.0.0.0/8, 127/8, multicast,
//!   255.255.255.255), and differ.
//! * A FIP appears once *per node*, not just per bridge: ownership is claimed per node and
//!   FIP ([`ClaimStore`] is keyed by the FIP), so two bridges carrying one FIP could not be told
//!   apart by the store.
//! * A fixed IP is mapped by at most one FIP of a bridge (else `fip_snat` would have to pick
//!   one), and an address is not both a FIP and a fixed IP of a bridge (the translations would
//!   chain).
//! * `--mac` is a unicast Ethernet address; without it `fip_arp` never answers (the FIP is
//!   reached through static neighbour entries or another responder).
//!
//! # Ownership
//!
//! `centralized` (the default) means this node is the FIP's gateway and owns it: `add-fip`
//! claims it through the node's [`ClaimStore`] ([`super::ownership::Standalone`] without a
//! distributed store, which grants every claim). `distributed` means this node only translates
//! (a compute node sending its VM's traffic straight out): it publishes its mapping but claims
//! nothing. Only an owner answers ARP for the FIP (`ClaimStatus::owns`), so two nodes never
//! both answer — the root cause of scenario S1.
//!
//! The claim's status is copied into the datapath's FIP table as one bit per FIP. The store
//! announces status changes through its listener; the listener only wakes the `fip-owner`
//! thread (it never takes a lock, so a store may call it while holding its own), which reads
//! every status again and, if a bit changed, publishes a new pipeline version — the next ARP
//! request is judged by the new status, and megaflows made under the old one are dropped with
//! the old version. The thread also checks every second, in case a change was missed. Lock
//! order: switch state, then the store; the store never waits for the switch.
//!
//! # Persistence
//!
//! FIPs are saved with their bridge in the configuration database (mapping, MAC, mode; not the
//! ownership) before a change is acknowledged, and claimed again through the store at start.

use super::db;
use super::handlers::{no_such_bridge, State, Switch};
use super::ownership::{ClaimRecord, ClaimStatus, ClaimStore, FipMode, Standalone};
use crate::xlate::{FipEntry, FipStats, FipTable, Mac};
use control::protocol::{ErrorKind, ErrorReply, FipDump, Reply};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

type Outcome = Result<Reply, ErrorReply>;

/// How this node coordinates FIP ownership: the claim store and the node's identity in it.
#[derive(Clone)]
pub struct Ownership {
    /// Where claims are made.
    pub store: Arc<dyn ClaimStore>,
    /// This node's identity (`ClaimRecord::node`).
    pub node: String,
}

impl Ownership {
    /// No distributed store: every centralized claim is granted locally; the node is named
    /// after the host.
    pub fn standalone() -> Ownership {
        Ownership {
            store: Arc::new(Standalone::default()),
            node: host_name(),
        }
    }
}

/// The host name (`/proc/sys/kernel/hostname`), or `localhost`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// One configured floating IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FipConf {
    /// The floating IP.
    pub fip: Ipv4Addr,
    /// The fixed IP.
    pub fixed: Ipv4Addr,
    /// MAC for ARP replies.
    pub mac: Option<Mac>,
    /// How this node carries it.
    pub mode: FipMode,
}

/// Configured FIPs: bridge -> FIP -> configuration.
pub(super) type FipConfigs = BTreeMap<String, BTreeMap<Ipv4Addr, FipConf>>;

fn bad(token: &str, message: String) -> ErrorReply {
    ErrorReply::bad_token(token, message)
}

/// Parse an address given as `what` (`floating IP`, `fixed IP`).
fn parse_addr(what: &str, text: &str) -> Result<Ipv4Addr, ErrorReply> {
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(bad(
            text,
            format!("{what} {text}: floating IPs are IPv4 only (IPv6 is not supported)"),
        ));
    }
    let a: Ipv4Addr = text
        .parse()
        .map_err(|_| bad(text, format!("{what} {text:?}: not an IPv4 address")))?;
    if a.is_unspecified()
        || a.octets()[0] == 0
        || a.is_loopback()
        || a.is_multicast()
        || a.is_broadcast()
    {
        return Err(bad(text, format!("{what} {a}: not a unicast host address")));
    }
    Ok(a)
}

fn parse_mac(text: &str) -> Result<Mac, ErrorReply> {
    let v = control::flow::value::parse_mac(text)
        .ok_or_else(|| bad(text, format!("--mac {text:?}: not an Ethernet address")))?;
    let b = (v as u64).to_be_bytes();
    let m = [b[2], b[3], b[4], b[5], b[6], b[7]];
    if m[0] & 1 != 0 || m == [0; 6] {
        return Err(bad(
            text,
            format!("--mac {text}: not a unicast Ethernet address"),
        ));
    }
    Ok(m)
}

fn parse_mode(text: &str) -> Result<FipMode, ErrorReply> {
    match text {
        "centralized" => Ok(FipMode::Centralized),
        "distributed" => Ok(FipMode::Distributed),
        _ => Err(bad(
            text,
            format!("--mode {text:?}: expected centralized or distributed"),
        )),
    }
}

fn fmt_mac(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn mode_name(m: FipMode) -> &'static str {
    match m {
        FipMode::Centralized => "centralized",
        FipMode::Distributed => "distributed",
    }
}

/// A claim status in words.
pub fn status_text(s: &ClaimStatus) -> String {
    match s {
        ClaimStatus::Standalone => "standalone".into(),
        ClaimStatus::Pending => "pending".into(),
        ClaimStatus::Owned => "owned".into(),
        ClaimStatus::Refused { holder } => format!("refused: held by {holder}"),
        ClaimStatus::Lost { reason } => format!("lost: {reason}"),
        ClaimStatus::NotClaimed => "not claimed (distributed)".into(),
    }
}

/// Parse and check an `add-fip` against the FIPs configured on this node (`all`), for
/// `bridge`. Nothing is changed.
pub(super) fn validate(
    all: &FipConfigs,
    bridge: &str,
    fip: &str,
    fixed: &str,
    mac: Option<&str>,
    mode: Option<&str>,
) -> Result<FipConf, ErrorReply> {
    let conf = FipConf {
        fip: parse_addr("floating IP", fip)?,
        fixed: parse_addr("fixed IP", fixed)?,
        mac: mac.map(parse_mac).transpose()?,
        mode: mode
            .map(parse_mode)
            .transpose()?
            .unwrap_or(FipMode::Centralized),
    };
    if conf.fip == conf.fixed {
        return Err(bad(
            fixed,
            format!("fixed IP {fixed}: the same address as the floating IP"),
        ));
    }
    for (b, fips) in all {
        if let Some(other) = fips.get(&conf.fip) {
            let where_ = if b == bridge {
                format!("on bridge {b}")
            } else {
                format!(
                    "on bridge {b} (a FIP is claimed per node, so it can be on one bridge only)"
                )
            };
            return Err(bad(
                fip,
                format!(
                    "floating IP {fip} already exists {where_}, mapped to {}; del-fip it first",
                    other.fixed
                ),
            ));
        }
    }
    let here = all.get(bridge);
    for other in here.into_iter().flat_map(|m| m.values()) {
        if other.fixed == conf.fixed {
            return Err(bad(
                fixed,
                format!(
                    "fixed IP {fixed} is already mapped by floating IP {} on bridge {bridge}",
                    other.fip
                ),
            ));
        }
        if other.fixed == conf.fip {
            return Err(bad(
                fip,
                format!(
                    "floating IP {fip} is the fixed IP of floating IP {} on bridge {bridge}",
                    other.fip
                ),
            ));
        }
        if other.fip == conf.fixed {
            return Err(bad(
                fixed,
                format!("fixed IP {fixed} is a floating IP on bridge {bridge}"),
            ));
        }
    }
    Ok(conf)
}

/// The datapath's FIP table for `confs`, with each FIP's ownership read from `store` and the
/// counters of FIPs `old` already had kept.
pub(super) fn build_table<'a>(
    confs: impl IntoIterator<Item = &'a FipConf>,
    store: &dyn ClaimStore,
    old: &FipTable,
) -> Result<FipTable, String> {
    let entries = confs
        .into_iter()
        .map(|c| {
            let status = store.status(c.fip);
            let stats = old
                .by_fip(u32::from(c.fip))
                .filter(|e| e.fixed == c.fixed)
                .map(|e| e.stats.clone())
                .unwrap_or_else(|| Arc::new(FipStats::default()));
            FipEntry {
                fip: c.fip,
                fixed: c.fixed,
                mac: c.mac,
                owned: status.owns(),
                claim: status_text(&status),
                stats,
            }
        })
        .collect();
    FipTable::new(entries).map_err(|e| e.to_string())
}

impl FipConf {
    pub(super) fn record(&self, node: &str, bridge: &str) -> ClaimRecord {
        ClaimRecord {
            node: node.to_string(),
            bridge: bridge.to_string(),
            fip: self.fip,
            fixed: self.fixed,
            mode: self.mode,
        }
    }

    /// As the database keeps it.
    pub(super) fn to_db(&self) -> db::FipConfig {
        db::FipConfig {
            fip: self.fip,
            fixed: self.fixed,
            mac: self.mac.map(fmt_mac),
            mode: self.mode,
        }
    }
}

/// The configuration of a FIP read from the database (checked like `add-fip`).
pub(super) fn from_db(
    all: &FipConfigs,
    bridge: &str,
    c: &db::FipConfig,
) -> Result<FipConf, ErrorReply> {
    validate(
        all,
        bridge,
        &c.fip.to_string(),
        &c.fixed.to_string(),
        c.mac.as_deref(),
        Some(mode_name(c.mode)),
    )
}

impl State {
    /// Publish a new version of `bridge`'s pipeline whose FIP table is built from the
    /// configuration and the store's current statuses. Returns the version.
    pub(super) fn publish_fips(
        &self,
        bridge: &str,
        store: &dyn ClaimStore,
    ) -> Result<u64, ErrorReply> {
        let br = self
            .bridges
            .get(bridge)
            .ok_or_else(|| no_such_bridge(bridge))?;
        let current = br.pipeline();
        let table = build_table(
            self.fips.get(bridge).into_iter().flat_map(|m| m.values()),
            store,
            current.fips(),
        )
        .map_err(|e| ErrorReply::new(ErrorKind::Internal, e))?;
        let mut edit = current.edit();
        edit.set_fips(Arc::new(table));
        let next = edit.finish();
        let version = next.version();
        br.publish(next);
        Ok(version)
    }

    /// Read every claim status again; publish a new pipeline version of each bridge whose
    /// FIPs' ownership changed. Returns how many bridges were republished.
    pub(super) fn refresh_ownership(&self, store: &dyn ClaimStore) -> usize {
        let mut n = 0;
        for (bridge, confs) in &self.fips {
            let Some(br) = self.bridges.get(bridge) else {
                continue;
            };
            let current = br.pipeline();
            let mut changed = false;
            for c in confs.values() {
                let status = store.status(c.fip);
                let now = status.owns();
                let before = current.fips().by_fip(u32::from(c.fip));
                let (was, was_text) = before.map_or((false, ""), |e| (e.owned, e.claim.as_str()));
                let text = status_text(&status);
                if now != was || text != was_text {
                    changed = true;
                    if now != was {
                        tracing::info!(
                            bridge = %bridge,
                            fip = %c.fip,
                            claim = %text,
                            "{}",
                            if now {
                                "this node now owns the floating IP (answers ARP for it)"
                            } else {
                                "this node no longer owns the floating IP (stops answering ARP)"
                            }
                        );
                    }
                }
            }
            if changed && self.publish_fips(bridge, store).is_ok() {
                n += 1;
            }
        }
        n
    }
}

/// Start the thread that follows claim status changes: `store`'s listener wakes it, and it
/// also checks every second. It ends when the switch state is gone.
pub(super) fn spawn_ownership_follower(state: Weak<Mutex<State>>, store: Arc<dyn ClaimStore>) {
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    store.set_listener(Arc::new(move || {
        // Never blocks: a pending wake-up already covers this change.
        let _ = tx.try_send(());
    }));
    let spawned = std::thread::Builder::new()
        .name("fip-owner".into())
        .spawn(move || loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_secs(1))
                }
            }
            let Some(state) = state.upgrade() else {
                return;
            };
            let st = state.lock().unwrap_or_else(|p| p.into_inner());
            st.refresh_ownership(&*store);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the FIP ownership thread: ownership changes apply at the next FIP command");
    }
}

impl Switch {
    /// This node's record for every FIP configured on it (all bridges, by bridge then address):
    /// what it has published to the claim store (for `fip-check`).
    pub fn configured_fips(&self) -> Vec<ClaimRecord> {
        let st = self.lock();
        let node = &self.ownership().node;
        st.fips
            .iter()
            .flat_map(|(b, m)| m.values().map(move |c| c.record(node, b)))
            .collect()
    }

    pub(super) fn add_fip(
        &self,
        bridge: &str,
        fip: &str,
        fixed: &str,
        mac: Option<&str>,
        mode: Option<&str>,
    ) -> Outcome {
        let mut st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let conf = validate(&st.fips, bridge, fip, fixed, mac, mode)?;
        st.fips
            .entry(bridge.to_string())
            .or_default()
            .insert(conf.fip, conf.clone());
        if let Err(e) = self.persist(&st, None) {
            remove_conf(&mut st, bridge, conf.fip);
            return Err(e);
        }
        let own = self.ownership();
        own.store.claim(&conf.record(&own.node, bridge));
        let version = st.publish_fips(bridge, &*own.store)?;
        tracing::info!(
            bridge,
            fip = %conf.fip,
            fixed = %conf.fixed,
            mode = mode_name(conf.mode),
            version,
            "floating IP added"
        );
        Ok(Reply::Fips {
            fips: vec![dump(&st, &*own.store, bridge, &conf)],
        })
    }

    pub(super) fn del_fip(&self, bridge: &str, fip: &str) -> Outcome {
        let mut st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let addr = parse_addr("floating IP", fip)?;
        let Some(conf) = remove_conf(&mut st, bridge, addr) else {
            return Err(bad(fip, format!("no floating IP {fip} on bridge {bridge}")));
        };
        if let Err(e) = self.persist(&st, None) {
            st.fips
                .entry(bridge.to_string())
                .or_default()
                .insert(conf.fip, conf);
            return Err(e);
        }
        let own = self.ownership();
        own.store.release(addr);
        let version = st.publish_fips(bridge, &*own.store)?;
        tracing::info!(bridge, fip = %addr, version, "floating IP deleted");
        Ok(Reply::Done)
    }

    pub(super) fn dump_fips(&self, bridge: &str) -> Outcome {
        let st = self.lock();
        if !st.bridges.contains_key(bridge) {
            return Err(no_such_bridge(bridge));
        }
        let store = &*self.ownership().store;
        let fips = st
            .fips
            .get(bridge)
            .into_iter()
            .flat_map(|m| m.values())
            .map(|c| dump(&st, store, bridge, c))
            .collect();
        Ok(Reply::Fips { fips })
    }
}

/// Forget `bridge`'s FIP `fip`; returns its configuration.
fn remove_conf(st: &mut State, bridge: &str, fip: Ipv4Addr) -> Option<FipConf> {
    let m = st.fips.get_mut(bridge)?;
    let c = m.remove(&fip);
    if m.is_empty() {
        st.fips.remove(bridge);
    }
    c
}

fn dump(st: &State, store: &dyn ClaimStore, bridge: &str, c: &FipConf) -> FipDump {
    let p = st.bridges.get(bridge).map(|b| b.pipeline());
    let e = p
        .as_ref()
        .and_then(|p| p.fips().by_fip(u32::from(c.fip)).cloned());
    let load = |f: fn(&FipStats) -> &crate::flowtable::RuleStats, bytes: bool| {
        e.as_ref().map_or(0, |e| {
            let s = f(&e.stats);
            if bytes {
                s.bytes.load(Ordering::Relaxed)
            } else {
                s.packets.load(Ordering::Relaxed)
            }
        })
    };
    FipDump {
        fip: c.fip.to_string(),
        fixed: c.fixed.to_string(),
        mac: c.mac.map(fmt_mac),
        mode: mode_name(c.mode).into(),
        status: status_text(&store.status(c.fip)),
        owner: e.as_ref().is_some_and(|e| e.owned),
        dnat_packets: load(|s| &s.dnat, false),
        dnat_bytes: load(|s| &s.dnat, true),
        snat_packets: load(|s| &s.snat, false),
        snat_bytes: load(|s| &s.snat, true),
        arp_replies: load(|s| &s.arp, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(entries: &[(&str, &str, &str)]) -> FipConfigs {
        let mut m = FipConfigs::new();
        for (b, f, x) in entries {
            let c = validate(&m, b, f, x, None, None).unwrap();
            m.entry(b.to_string()).or_default().insert(c.fip, c);
        }
        m
    }

    fn refused(all: &FipConfigs, bridge: &str, args: [&str; 4], token: &str, text: &str) {
        let mac = (!args[2].is_empty()).then_some(args[2]);
        let mode = (!args[3].is_empty()).then_some(args[3]);
        let e = validate(all, bridge, args[0], args[1], mac, mode).expect_err(text);
        assert_eq!(e.token.as_deref(), Some(token), "{e:?}");
        assert!(e.message.contains(text), "{e:?} lacks {text:?}");
    }

    #[test]
    fn validation_names_the_token() {
        let a = all(&[("br0", "192.168.111.223", "88.88.88.4")]);
        let ok = validate(
            &a,
            "br0",
            "192.168.111.224",
            "88.88.88.5",
            Some("FA:16:3E:00:00:01"),
            Some("distributed"),
        )
        .unwrap();
        assert_eq!(ok.mac, Some([0xfa, 0x16, 0x3e, 0, 0, 1]));
        assert_eq!(ok.mode, FipMode::Distributed);
        let args = |f, x, m, o| [f, x, m, o];
        refused(
            &a,
            "br0",
            args("2001:db8::1", "88.88.88.9", "", ""),
            "2001:db8::1",
            "IPv4 only",
        );
        refused(
            &a,
            "br0",
            args("1.2.3", "88.88.88.9", "", ""),
            "1.2.3",
            "not an IPv4",
        );
        refused(
            &a,
            "br0",
            args("1.2.3.4", "224.0.0.1", "", ""),
            "224.0.0.1",
            "unicast",
        );
        refused(
            &a,
            "br0",
            args("0.0.0.0", "1.1.1.1", "", ""),
            "0.0.0.0",
            "unicast",
        );
        refused(
            &a,
            "br0",
            args("1.2.3.4", "1.2.3.4", "", ""),
            "1.2.3.4",
            "same address",
        );
        refused(
            &a,
            "br0",
            args("1.2.3.4", "5.6.7.8", "01:00:5e:00:00:01", ""),
            "01:00:5e:00:00:01",
            "unicast",
        );
        refused(
            &a,
            "br0",
            args("1.2.3.4", "5.6.7.8", "zz", ""),
            "zz",
            "Ethernet",
        );
        refused(
            &a,
            "br0",
            args("1.2.3.4", "5.6.7.8", "", "both"),
            "both",
            "centralized or distributed",
        );
        refused(
            &a,
            "br0",
            args("192.168.111.223", "88.88.88.9", "", ""),
            "192.168.111.223",
            "already exists on bridge br0",
        );
        refused(
            &a,
            "br1",
            args("192.168.111.223", "88.88.88.9", "", ""),
            "192.168.111.223",
            "one bridge only",
        );
        refused(
            &a,
            "br0",
            args("192.168.111.9", "88.88.88.4", "", ""),
            "88.88.88.4",
            "already mapped by floating IP 192.168.111.223",
        );
        refused(
            &a,
            "br0",
            args("88.88.88.4", "10.0.0.1", "", ""),
            "88.88.88.4",
            "is the fixed IP",
        );
        refused(
            &a,
            "br0",
            args("10.0.0.1", "192.168.111.223", "", ""),
            "192.168.111.223",
            "is a floating IP",
        );
        // The same fixed IP on another bridge (another tenant network) is fine.
        validate(&a, "br1", "192.168.111.9", "88.88.88.4", None, None).unwrap();
    }

    /// A store whose statuses the test sets, announcing changes like a real one.
    #[derive(Default)]
    struct Scripted {
        statuses: Mutex<BTreeMap<Ipv4Addr, ClaimStatus>>,
        listener: Mutex<Option<super::super::ownership::ChangeListener>>,
    }

    impl Scripted {
        fn set(&self, fip: Ipv4Addr, s: ClaimStatus) {
            self.statuses.lock().unwrap().insert(fip, s);
            let l = self.listener.lock().unwrap().clone();
            if let Some(l) = l {
                l();
            }
        }
    }

    impl ClaimStore for Scripted {
        fn describe(&self) -> String {
            "scripted".into()
        }
        fn claim(&self, r: &ClaimRecord) {
            self.statuses
                .lock()
                .unwrap()
                .entry(r.fip)
                .or_insert(ClaimStatus::Pending);
        }
        fn release(&self, fip: Ipv4Addr) {
            self.statuses.lock().unwrap().remove(&fip);
        }
        fn status(&self, fip: Ipv4Addr) -> ClaimStatus {
            self.statuses
                .lock()
                .unwrap()
                .get(&fip)
                .cloned()
                .unwrap_or(ClaimStatus::Pending)
        }
        fn records(&self, _fip: Ipv4Addr) -> Vec<ClaimRecord> {
            Vec::new()
        }
        fn set_listener(&self, l: super::super::ownership::ChangeListener) {
            *self.listener.lock().unwrap() = Some(l);
        }
    }

    #[test]
    fn ownership_changes_publish_a_new_version_keeping_counters() {
        let store = Arc::new(Scripted::default());
        let state = Arc::new(Mutex::new(State::for_tests()));
        let fip: Ipv4Addr = "192.168.111.223".parse().unwrap();
        {
            let mut st = state.lock().unwrap();
            st.bridges
                .insert("br0".into(), Arc::new(super::super::Bridge::new("br0")));
            let c = validate(
                &st.fips,
                "br0",
                "192.168.111.223",
                "88.88.88.4",
                Some("fa:16:3e:4b:eb:3c"),
                None,
            )
            .unwrap();
            store.claim(&c.record("n1", "br0"));
            st.fips.entry("br0".into()).or_default().insert(fip, c);
            st.publish_fips("br0", &*store).unwrap();
        }
        let pipeline = |st: &Arc<Mutex<State>>| st.lock().unwrap().bridges["br0"].pipeline();
        let p0 = pipeline(&state);
        let e0 = p0.fips().by_fip(u32::from(fip)).unwrap().clone();
        assert!(!e0.owned, "pending: not the owner yet");
        e0.stats.dnat.hit(100, 1);
        spawn_ownership_follower(Arc::downgrade(&state), store.clone());

        // Granted: the follower publishes a version where the FIP is owned.
        store.set(fip, ClaimStatus::Owned);
        let owned = |st: &Arc<Mutex<State>>| {
            pipeline(st)
                .fips()
                .by_fip(u32::from(fip))
                .is_some_and(|e| e.owned)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !owned(&state) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let p1 = pipeline(&state);
        assert!(owned(&state));
        assert!(p1.version() > p0.version());
        let e1 = p1.fips().by_fip(u32::from(fip)).unwrap();
        assert!(Arc::ptr_eq(&e1.stats, &e0.stats), "counters kept");

        // Lost: no longer the owner.
        store.set(
            fip,
            ClaimStatus::Lost {
                reason: "lease expired".into(),
            },
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while owned(&state) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!owned(&state));
        assert_eq!(
            pipeline(&state)
                .fips()
                .by_fip(u32::from(fip))
                .unwrap()
                .claim,
            "lost: lease expired"
        );
        // Nothing changed: nothing published.
        let v = pipeline(&state).version();
        assert_eq!(state.lock().unwrap().refresh_ownership(&*store), 0);
        assert_eq!(pipeline(&state).version(), v);
    }
}
