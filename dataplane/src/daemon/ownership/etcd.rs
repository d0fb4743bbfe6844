//! [`EtcdStore`]: FIP claims kept in etcd, one owner per FIP across every node.
//!
//! # Keys
//!
//! Under `/vswitch/fips/<FIP>/`, values are JSON [`ClaimRecord`]s, every key bound to the
//! writing node's lease:
//! * `owner` — the claim. Created by a transaction `create_revision(owner) == 0 → put`, so of
//!   two nodes claiming at once exactly one succeeds; the other reads the holder back and its
//!   claim is [`ClaimStatus::Refused`] (a WARN line naming FIP and holder, the `claims_refused`
//!   counter).
//! * `map/<node>` — every node's mapping, whatever its mode, so `swctl fip-check` on any node
//!   can compare them: all nodes must map a FIP to the same fixed IP.
//!
//! # Leases and failure
//!
//! The node grants itself one lease of `--lease-ttl` seconds (default 10; etcd raises anything
//! below its minimum, 2 s by default) and refreshes it every TTL/3. When a node dies, its keys
//! vanish with its lease after at most one TTL, and the others' next poll takes the claim.
//!
//! * A keep-alive answered "unknown lease" (it expired: the node was stopped or cut off past
//!   the TTL), or no keep-alive answered for a whole TTL counted from the *sending* of the last
//!   successful one (so the node stops acting as owner no later than etcd can expire it):
//!   every owned claim becomes [`ClaimStatus::Lost`], `leases_lost` is counted, a WARN is
//!   logged, and the node grants a new lease and claims again (it may then be refused: another
//!   node took over meanwhile).
//! * etcd unreachable, a 5xx, an answer that is not the gateway's JSON: logged once per change
//!   (WARN, then INFO when it answers again), shown by `fip-check`, retried every
//!   TTL/4 (250 ms – 2 s). A claim never granted stays [`ClaimStatus::Pending`] (the node does
//!   not act as owner); nothing panics.
//!
//! # Polling rather than watching
//!
//! Every TTL/2, at most 5 s (and at once after any `claim`/`release`), the store reads the whole prefix with
//! one range request, retries refused or vanished claims, re-publishes a missing mapping, and
//! refreshes what `records` returns. A watch over the gateway is a long-lived chunked stream
//! that would need its own connection handling; polling one range of a few keys per FIP every
//! few seconds costs etcd nothing at this scale and bounds take-over at about TTL + TTL/2
//! after the holder died.
//!
//! Scale: each poll reads every node's keys for every FIP (about 200 bytes per key, two or
//! three keys per FIP), which is what lets `fip-check` show every mapping. That is nothing for
//! hundreds of FIPs; for tens of thousands, one range per FIP configured here or a watch on
//! the prefix would be the next step (and the client caps an answer at 16 MiB).
//!
//! # Restart with the same node id
//!
//! A daemon restarted with the same `--node-id` while its previous lease is still alive finds
//! `owner` held by its own node id under another lease. It takes the key over — a transaction
//! conditioned on the key's `mod_revision` as read, so it replaces exactly that record — rather
//! than locking itself out until the old lease expires. Node ids must therefore be unique: if
//! a claim this daemon holds is later taken by the same node id under another lease, a second
//! live daemon uses this id; this one stands down (status `Refused`, holder named "… (another
//! daemon with this node id)") and does not fight back, and `fip-check` shows it.
//!
//! Keys bound to this daemon's current lease that it no longer wants (FIP released, or
//! changed from centralized to distributed) are deleted with a transaction conditioned on the
//! lease, so a node never deletes another node's claim. Keys of an earlier incarnation for FIPs
//! no longer configured are left to expire with their lease.
//!
//! # Threads
//!
//! All network I/O happens on the store's own thread (`fip-store`). `claim`, `release`,
//! `status`, `records` only touch a mutex-protected state and wake that thread; the packet
//! path and the control thread never wait on etcd. The listener is called from the store
//! thread, never while the store's lock is held.
//!
//! Shutdown: [`EtcdStore::shutdown`] (vswitchd on SIGTERM) revokes the lease, so a node leaving
//! cleanly hands its FIPs over at once. Dropping the store without it stops the thread and
//! sends nothing, exactly like a crash: the claims stay until the lease expires.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::{Created, EtcdClient, EtcdError, Kv};
use super::{ChangeListener, ClaimRecord, ClaimStatus, ClaimStore, FipMode, StoreHealth};

/// Root of every key this store writes.
pub const PREFIX: &str = "/vswitch/fips/";

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EtcdStoreError {
    /// The URL.
    #[error(transparent)]
    Client(#[from] EtcdError),
    /// The node id cannot be part of a key.
    #[error("invalid node id {0:?}: use 1 to 64 characters from [A-Za-z0-9._-]")]
    NodeId(String),
    /// The lease TTL.
    #[error("invalid lease TTL {0} s: use 1 to 3600")]
    Ttl(u64),
    /// The thread.
    #[error("cannot start the FIP store thread: {0}")]
    Thread(std::io::Error),
}

/// Where and as whom to claim.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// `http://host:port` of an etcd v3 endpoint.
    pub url: String,
    /// This node's identity in the keys and records.
    pub node: String,
    /// Lease TTL asked for, seconds.
    pub lease_ttl_secs: u64,
}

fn owner_key(fip: Ipv4Addr) -> String {
    format!("{PREFIX}{fip}/owner")
}

fn map_key(fip: Ipv4Addr, node: &str) -> String {
    format!("{PREFIX}{fip}/map/{node}")
}

/// Whether `node` can be used in a key: it must not contain `/`.
pub fn valid_node_id(node: &str) -> bool {
    !node.is_empty()
        && node.len() <= 64
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Everything the daemon's threads share with the store thread.
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// What this node wants published, by FIP.
    desired: BTreeMap<Ipv4Addr, ClaimRecord>,
    /// This node's claim status, by FIP (desired FIPs only).
    status: BTreeMap<Ipv4Addr, ClaimStatus>,
    /// The holder of each FIP's `owner` key, as last read (every FIP under the prefix).
    holders: BTreeMap<Ipv4Addr, String>,
    /// Every node's mapping, as last read.
    records: BTreeMap<Ipv4Addr, Vec<ClaimRecord>>,
    /// What is wrong with the store right now, for `fip-check` and `describe`.
    problem: Option<String>,
    /// The lease in force, for `describe`.
    lease: Option<(i64, u64)>,
    claims_refused: u64,
    leases_lost: u64,
    listener: Option<ChangeListener>,
    /// `claim`/`release` happened: reconcile now.
    kicked: bool,
    stop: bool,
}

/// FIP claims in etcd. See the module docs.
pub struct EtcdStore {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    client: EtcdClient,
    url: String,
    node: String,
    ttl_secs: u64,
}

impl EtcdStore {
    /// Check the configuration and start the store thread. etcd is not contacted here: an
    /// unreachable store is retried in the background and reported, never fatal.
    pub fn start(config: EtcdConfig) -> Result<EtcdStore, EtcdStoreError> {
        if !valid_node_id(&config.node) {
            return Err(EtcdStoreError::NodeId(config.node));
        }
        if !(1..=3600).contains(&config.lease_ttl_secs) {
            return Err(EtcdStoreError::Ttl(config.lease_ttl_secs));
        }
        let ttl = Duration::from_secs(config.lease_ttl_secs);
        // A request may not take longer than the keep-alive period, or one slow answer would
        // eat the margin before the lease expires.
        let timeout = (ttl / 3).clamp(Duration::from_millis(300), Duration::from_secs(3));
        let client = EtcdClient::new(&config.url, timeout)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let mut worker = Worker {
            shared: shared.clone(),
            client: client.clone(),
            node: config.node.clone(),
            ttl_asked: config.lease_ttl_secs,
            lease: None,
            next_poll: Instant::now(),
            retry_at: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("fip-store".into())
            .spawn(move || worker.run())
            .map_err(EtcdStoreError::Thread)?;
        tracing::info!(
            url = %config.url,
            node = %config.node,
            lease_ttl = config.lease_ttl_secs,
            "FIP ownership through etcd"
        );
        Ok(EtcdStore {
            shared,
            thread: Mutex::new(Some(thread)),
            client,
            url: config.url,
            node: config.node,
            ttl_secs: config.lease_ttl_secs,
        })
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Leave cleanly: stop the store thread and revoke the lease, which deletes this node's
    /// claims and mappings at once so another node can take its FIPs without waiting for the
    /// TTL. Best effort (logged when etcd does not answer).
    pub fn shutdown(&self) {
        self.stop_thread();
        let lease = self.lock().lease.take();
        if let Some((id, _)) = lease {
            match self.client.lease_revoke(id) {
                Ok(()) => tracing::info!(lease = id, "FIP claims released (lease revoked)"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not revoke the FIP lease; its claims expire with its TTL"
                ),
            }
        }
    }

    fn stop_thread(&self) {
        self.lock().stop = true;
        self.shared.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kick(&self, mut st: MutexGuard<'_, State>) {
        st.kicked = true;
        drop(st);
        self.shared.wake.notify_all();
    }
}

impl Drop for EtcdStore {
    /// Like a crash: the thread stops, nothing is released (see [`EtcdStore::shutdown`]).
    fn drop(&mut self) {
        self.stop_thread();
    }
}

impl ClaimStore for EtcdStore {
    fn describe(&self) -> String {
        let st = self.lock();
        let state = match (&st.problem, st.lease) {
            (Some(p), _) => format!("unreachable: {p}"),
            (None, Some((id, ttl))) => format!("connected, lease {id:x} (TTL {ttl} s)"),
            (None, None) => "connecting".into(),
        };
        format!(
            "etcd {} as {} (lease TTL {} s): {state}",
            self.url, self.node, self.ttl_secs
        )
    }

    /// The record's `node` is replaced by this store's node id: the store is who it claims as.
    fn claim(&self, record: &ClaimRecord) {
        let mut record = record.clone();
        record.node = self.node.clone();
        let mut st = self.lock();
        let fip = record.fip;
        let changed = st.desired.get(&fip) != Some(&record);
        if changed {
            let initial = match record.mode {
                FipMode::Centralized => ClaimStatus::Pending,
                FipMode::Distributed => ClaimStatus::NotClaimed,
            };
            // A changed record of a FIP already owned stays owned while the key is updated.
            let keep = record.mode == FipMode::Centralized
                && st.status.get(&fip) == Some(&ClaimStatus::Owned);
            if !keep {
                st.status.insert(fip, initial);
            }
            st.desired.insert(fip, record);
        }
        self.kick(st);
    }

    fn release(&self, fip: Ipv4Addr) {
        let mut st = self.lock();
        st.desired.remove(&fip);
        st.status.remove(&fip);
        self.kick(st);
    }

    fn status(&self, fip: Ipv4Addr) -> ClaimStatus {
        self.lock()
            .status
            .get(&fip)
            .cloned()
            .unwrap_or(ClaimStatus::Pending)
    }

    fn records(&self, fip: Ipv4Addr) -> Vec<ClaimRecord> {
        self.lock().records.get(&fip).cloned().unwrap_or_default()
    }

    fn set_listener(&self, listener: ChangeListener) {
        self.lock().listener = Some(listener);
    }

    fn local_records(&self) -> Vec<ClaimRecord> {
        self.lock().desired.values().cloned().collect()
    }

    fn holder(&self, fip: Ipv4Addr) -> Option<String> {
        self.lock().holders.get(&fip).cloned()
    }

    fn health(&self) -> StoreHealth {
        let st = self.lock();
        StoreHealth {
            distributed: true,
            problem: st.problem.clone(),
            claims_refused: st.claims_refused,
            leases_lost: st.leases_lost,
        }
    }
}

/// This daemon's lease.
struct Lease {
    id: i64,
    ttl: Duration,
    /// When the last successful grant or keep-alive was *sent*: etcd's countdown restarted
    /// no earlier than that.
    confirmed: Instant,
    next_keepalive: Instant,
}

/// The store thread.
struct Worker {
    shared: Arc<Shared>,
    client: EtcdClient,
    node: String,
    ttl_asked: u64,
    lease: Option<Lease>,
    next_poll: Instant,
    /// When to try again after a failure to get a lease.
    retry_at: Instant,
}

/// What one range read showed.
#[derive(Default)]
struct View {
    owners: BTreeMap<Ipv4Addr, (Kv, Option<ClaimRecord>)>,
    maps: BTreeMap<Ipv4Addr, Vec<(Kv, ClaimRecord)>>,
}

impl View {
    fn parse(kvs: Vec<Kv>) -> View {
        let mut view = View::default();
        for kv in kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            let Some(rest) = key.strip_prefix(PREFIX) else {
                continue;
            };
            let mut parts = rest.splitn(3, '/');
            let (Some(fip), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(fip) = fip.parse::<Ipv4Addr>() else {
                tracing::debug!(key, "ignoring a key that names no IPv4 FIP");
                continue;
            };
            let record = serde_json::from_slice::<ClaimRecord>(&kv.value).ok();
            match (kind, parts.next()) {
                ("owner", None) => {
                    if record.is_none() {
                        tracing::warn!(key, "unreadable FIP owner record");
                    }
                    view.owners.insert(fip, (kv, record));
                }
                ("map", Some(_)) => match record {
                    Some(r) if r.fip == fip => view.maps.entry(fip).or_default().push((kv, r)),
                    _ => tracing::warn!(key, "unreadable FIP mapping record ignored"),
                },
                _ => tracing::debug!(key, "ignoring an unknown key"),
            }
        }
        view
    }
}

/// How often the prefix is read: TTL/2, at most 5 s (a FIP handed over by a clean shutdown is
/// noticed within that, whatever the TTL).
fn poll_period(ttl: Duration) -> Duration {
    (ttl / 2).min(Duration::from_secs(5))
}

/// The retry period after a failure.
fn retry_period(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(2))
}

impl Worker {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ttl(&self) -> Duration {
        self.lease
            .as_ref()
            .map_or(Duration::from_secs(self.ttl_asked), |l| l.ttl)
    }

    fn run(&mut self) {
        loop {
            let kicked = {
                let mut st = self.lock();
                loop {
                    if st.stop {
                        return;
                    }
                    if st.kicked {
                        break;
                    }
                    let deadline = match &self.lease {
                        Some(l) => l.next_keepalive.min(self.next_poll),
                        None => self.retry_at,
                    };
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    st = self
                        .shared
                        .wake
                        .wait_timeout(st, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                std::mem::take(&mut st.kicked)
            };
            self.step(kicked);
        }
    }

    fn step(&mut self, kicked: bool) {
        let now = Instant::now();
        let mut reconcile = kicked || now >= self.next_poll;
        if let Some(lease) = &self.lease {
            if now >= lease.next_keepalive {
                self.keepalive();
            }
        }
        if self.lease.is_none() {
            if Instant::now() < self.retry_at && !kicked {
                return;
            }
            if !self.grant() {
                return;
            }
            reconcile = true;
        }
        if reconcile {
            self.next_poll = Instant::now() + poll_period(self.ttl());
            if let Err(e) = self.reconcile() {
                self.failed(&e);
                self.next_poll = Instant::now() + retry_period(self.ttl());
            }
        }
    }

    fn grant(&mut self) -> bool {
        let sent = Instant::now();
        match self.client.lease_grant(self.ttl_asked) {
            Ok((id, ttl)) => {
                let ttl_d = Duration::from_secs(ttl);
                self.lease = Some(Lease {
                    id,
                    ttl: ttl_d,
                    confirmed: sent,
                    next_keepalive: sent + ttl_d / 3,
                });
                self.lock().lease = Some((id, ttl));
                self.reachable();
                tracing::info!(lease = id, ttl, "FIP lease granted");
                true
            }
            Err(e) => {
                self.failed(&e);
                self.retry_at = Instant::now() + retry_period(self.ttl());
                false
            }
        }
    }

    fn keepalive(&mut self) {
        let Some(lease) = &mut self.lease else {
            return;
        };
        let sent = Instant::now();
        let id = lease.id;
        match self.client.lease_keepalive(id) {
            Ok(Some(_)) => {
                lease.confirmed = sent;
                lease.next_keepalive = sent + lease.ttl / 3;
                self.reachable();
            }
            Ok(None) => {
                self.lose_lease(format!("lease {id:x} expired at the store"));
            }
            Err(e) => {
                let silent = sent.saturating_duration_since(lease.confirmed);
                let ttl = lease.ttl;
                lease.next_keepalive = Instant::now() + retry_period(ttl);
                self.failed(&e);
                if silent >= ttl {
                    self.lose_lease(format!(
                        "no keep-alive answered for {} s (the lease TTL): {e}",
                        silent.as_secs()
                    ));
                }
            }
        }
    }

    /// The lease is gone: stop acting as owner everywhere, and get a new one.
    fn lose_lease(&mut self, reason: String) {
        self.lease = None;
        self.retry_at = Instant::now();
        let listener = {
            let mut st = self.lock();
            st.lease = None;
            st.leases_lost += 1;
            let mut lost = Vec::new();
            for (fip, status) in st.status.iter_mut() {
                if *status == ClaimStatus::Owned {
                    *status = ClaimStatus::Lost {
                        reason: reason.clone(),
                    };
                    lost.push(*fip);
                }
            }
            tracing::warn!(
                reason,
                lost = ?lost,
                "FIP lease lost: no longer acting as owner of these FIPs; claiming again"
            );
            st.listener.clone()
        };
        if let Some(l) = listener {
            l();
        }
    }

    fn failed(&self, e: &EtcdError) {
        let mut st = self.lock();
        let text = e.to_string();
        if st.problem.as_deref() != Some(&text) {
            tracing::warn!(error = %text, "FIP store: etcd request failed; retrying");
            st.problem = Some(text);
        }
    }

    fn reachable(&self) {
        let mut st = self.lock();
        if st.problem.take().is_some() {
            tracing::info!("FIP store: etcd answers again");
        }
    }

    /// Read every FIP key, publish what is missing, claim what is free, clean up what this
    /// lease no longer wants, and record the outcome.
    fn reconcile(&mut self) -> Result<(), EtcdError> {
        let Some(lease) = self.lease.as_ref().map(|l| l.id) else {
            return Ok(());
        };
        let (desired, previous) = {
            let st = self.lock();
            (st.desired.clone(), st.status.clone())
        };
        let mut view = View::parse(self.client.range_prefix(PREFIX)?);

        // Keys of this lease nobody wants any more.
        for (fip, (kv, _)) in &view.owners {
            let wanted = desired
                .get(fip)
                .is_some_and(|r| r.mode == FipMode::Centralized);
            if kv.lease == lease && !wanted {
                self.client.delete_if_lease(&owner_key(*fip), lease)?;
                tracing::info!(fip = %fip, "FIP claim withdrawn");
            }
        }
        for (fip, maps) in &mut view.maps {
            if desired.contains_key(fip) {
                continue;
            }
            for (kv, r) in maps.iter() {
                if kv.lease == lease && r.node == self.node {
                    self.client
                        .delete_if_lease(&map_key(*fip, &r.node), lease)?;
                }
            }
            maps.retain(|(kv, r)| !(kv.lease == lease && r.node == self.node));
        }
        view.owners.retain(|fip, (kv, _)| {
            kv.lease != lease
                || desired
                    .get(fip)
                    .is_some_and(|r| r.mode == FipMode::Centralized)
        });

        // This node's mappings.
        for (fip, rec) in &desired {
            let maps = view.maps.entry(*fip).or_default();
            let mine = maps.iter().position(|(_, r)| r.node == self.node);
            let current = mine.is_some_and(|i| maps[i].0.lease == lease && maps[i].1 == *rec);
            if !current {
                let value = serde_json::to_vec(rec).unwrap_or_default();
                self.client.put(&map_key(*fip, &self.node), &value, lease)?;
                let kv = Kv {
                    key: map_key(*fip, &self.node).into_bytes(),
                    value,
                    create_revision: 0,
                    mod_revision: 0,
                    lease,
                };
                match mine {
                    Some(i) => maps[i] = (kv, rec.clone()),
                    None => maps.push((kv, rec.clone())),
                }
            }
        }

        // Claims.
        let mut status = BTreeMap::new();
        for (fip, rec) in &desired {
            let s = match rec.mode {
                FipMode::Distributed => ClaimStatus::NotClaimed,
                FipMode::Centralized => {
                    let prev = previous.get(fip).cloned().unwrap_or(ClaimStatus::Pending);
                    let s = self.claim(rec, lease, &prev, &mut view)?;
                    s.unwrap_or(prev)
                }
            };
            status.insert(*fip, s);
        }

        // Record the outcome.
        let holders: BTreeMap<Ipv4Addr, String> = view
            .owners
            .iter()
            .map(|(fip, (_, r))| {
                let who = r
                    .as_ref()
                    .map_or_else(|| "(unreadable owner record)".into(), |r| r.node.clone());
                (*fip, who)
            })
            .collect();
        let records: BTreeMap<Ipv4Addr, Vec<ClaimRecord>> = view
            .maps
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(fip, mut m)| {
                m.sort_by(|a, b| a.1.node.cmp(&b.1.node));
                (fip, m.into_iter().map(|(_, r)| r).collect())
            })
            .collect();
        let listener = {
            let mut st = self.lock();
            let mut changed = st.holders != holders || st.records != records;
            for (fip, s) in status {
                // Released or changed while we were talking to etcd: the next round decides.
                if st.desired.get(&fip) != desired.get(&fip) {
                    continue;
                }
                let old = st.status.insert(fip, s.clone());
                if old.as_ref() == Some(&s) {
                    continue;
                }
                changed = true;
                match &s {
                    ClaimStatus::Owned => {
                        tracing::info!(fip = %fip, "FIP claim granted: this node owns it")
                    }
                    ClaimStatus::Refused { holder } => {
                        st.claims_refused += 1;
                        tracing::warn!(
                            fip = %fip,
                            holder = %holder,
                            "FIP claim refused: {fip} is already owned by {holder}; this node \
                             will not act as its owner (configured centralized on two nodes?)"
                        );
                    }
                    _ => {}
                }
            }
            st.holders = holders;
            st.records = records;
            changed.then(|| st.listener.clone()).flatten()
        };
        if let Some(l) = listener {
            l();
        }
        Ok(())
    }

    /// Decide one centralized claim; `None` keeps the previous status (try again next round).
    fn claim(
        &self,
        rec: &ClaimRecord,
        lease: i64,
        prev: &ClaimStatus,
        view: &mut View,
    ) -> Result<Option<ClaimStatus>, EtcdError> {
        let key = owner_key(rec.fip);
        let value = serde_json::to_vec(rec).unwrap_or_default();
        let current = match view.owners.get(&rec.fip) {
            Some((kv, r)) => Some((kv.clone(), r.clone())),
            None => match self.client.create_if_absent(&key, &value, lease)? {
                Created::Yes => {
                    let kv = Kv {
                        key: key.clone().into_bytes(),
                        value: value.clone(),
                        create_revision: 0,
                        mod_revision: 0,
                        lease,
                    };
                    view.owners.insert(rec.fip, (kv, Some(rec.clone())));
                    return Ok(Some(ClaimStatus::Owned));
                }
                Created::Exists(kv) => {
                    let r = serde_json::from_slice::<ClaimRecord>(&kv.value).ok();
                    view.owners.insert(rec.fip, (kv.clone(), r.clone()));
                    Some((kv, r))
                }
                Created::Vanished => None,
            },
        };
        let Some((kv, holder)) = current else {
            return Ok(None);
        };
        if kv.lease == lease {
            if holder.as_ref() != Some(rec) {
                // Ours, but the record changed (bridge or fixed IP): update it in place.
                if self
                    .client
                    .replace_if_unchanged(&key, &value, lease, kv.mod_revision)?
                {
                    view.owners.insert(rec.fip, (kv, Some(rec.clone())));
                }
            }
            return Ok(Some(ClaimStatus::Owned));
        }
        let Some(holder) = holder else {
            return Ok(Some(ClaimStatus::Refused {
                holder: "(unreadable owner record)".into(),
            }));
        };
        if holder.node != self.node {
            return Ok(Some(ClaimStatus::Refused {
                holder: holder.node,
            }));
        }
        // Our node id under another lease.
        let duplicate = matches!(prev, ClaimStatus::Owned)
            || matches!(prev, ClaimStatus::Refused { holder } if holder.contains("same node id"));
        if duplicate {
            if matches!(prev, ClaimStatus::Owned) {
                tracing::error!(
                    fip = %rec.fip,
                    node = %self.node,
                    "another live daemon uses this node id and took the FIP claim; standing \
                     down (node ids must be unique)"
                );
            }
            return Ok(Some(ClaimStatus::Refused {
                holder: format!(
                    "{} (another daemon with the same node id, lease {:x})",
                    holder.node, kv.lease
                ),
            }));
        }
        if self
            .client
            .replace_if_unchanged(&key, &value, lease, kv.mod_revision)?
        {
            tracing::info!(
                fip = %rec.fip,
                old_lease = format!("{:x}", kv.lease),
                "FIP claim taken over from this node's earlier lease (restart)"
            );
            let mut kv = kv;
            kv.lease = lease;
            view.owners.insert(rec.fip, (kv, Some(rec.clone())));
            return Ok(Some(ClaimStatus::Owned));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::tests::{ok, FakeServer};
    use super::*;

    fn record(node: &str, mode: FipMode) -> ClaimRecord {
        ClaimRecord {
            node: node.into(),
            bridge: "br-int".into(),
            fip: Ipv4Addr::new(192, 168, 111, 223),
            fixed: Ipv4Addr::new(88, 88, 88, 4),
            mode,
        }
    }

    fn store(url: &str, node: &str) -> EtcdStore {
        EtcdStore::start(EtcdConfig {
            url: url.into(),
            node: node.into(),
            lease_ttl_secs: 2,
        })
        .unwrap()
    }

    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn bad_configuration_is_refused() {
        let cfg = |url: &str, node: &str, ttl| EtcdConfig {
            url: url.into(),
            node: node.into(),
            lease_ttl_secs: ttl,
        };
        let e = EtcdStore::start(cfg("http://127.0.0.1:1", "a/b", 5))
            .err()
            .unwrap();
        assert!(e.to_string().contains("\"a/b\""), "{e}");
        let e = EtcdStore::start(cfg("http://127.0.0.1:1", "a", 0))
            .err()
            .unwrap();
        assert!(e.to_string().contains("TTL 0"), "{e}");
        let e = EtcdStore::start(cfg("127.0.0.1:2379", "a", 5))
            .err()
            .unwrap();
        assert!(e.to_string().contains("127.0.0.1:2379"), "{e}");
    }

    #[test]
    fn etcd_down_leaves_claims_pending_and_says_why() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let s = store(&format!("http://127.0.0.1:{port}"), "n1");
        s.claim(&record("n1", FipMode::Centralized));
        let fip = record("n1", FipMode::Centralized).fip;
        assert!(wait_for(|| s.health().problem.is_some()));
        assert_eq!(s.status(fip), ClaimStatus::Pending);
        assert!(!s.status(fip).owns());
        assert!(s.describe().contains("unreachable"), "{}", s.describe());
        assert!(s.health().problem.unwrap().contains("cannot connect"));
        assert_eq!(s.local_records().len(), 1);
        assert_eq!(s.local_records()[0].node, "n1");
    }

    #[test]
    fn server_errors_and_garbage_are_reported_not_fatal() {
        for resp in [
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops".to_vec(),
            ok("{{{{"),
            ok(r#"{"ID":"12","TTL":"2"}"#), // grant ok, then every other call gets this
        ] {
            let fake = FakeServer::start(vec![resp]);
            let s = store(&fake.url, "n1");
            s.claim(&record("n1", FipMode::Centralized));
            let fip = record("n1", FipMode::Centralized).fip;
            assert!(
                wait_for(|| s.health().problem.is_some() || s.status(fip) != ClaimStatus::Pending),
                "no outcome"
            );
            // The third server grants a lease but answers nonsense to the range: the claim is
            // never granted.
            assert!(!s.status(fip).owns(), "{:?}", s.status(fip));
        }
    }

    #[test]
    fn keys_and_node_ids() {
        let fip = Ipv4Addr::new(192, 168, 111, 223);
        assert_eq!(owner_key(fip), "/vswitch/fips/192.168.111.223/owner");
        assert_eq!(map_key(fip, "n1"), "/vswitch/fips/192.168.111.223/map/n1");
        assert!(valid_node_id("compute-1.example"));
        for bad in ["", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_node_id(bad), "{bad}");
        }
    }

    #[test]
    fn view_parsing_skips_foreign_and_garbled_keys() {
        let rec = record("n1", FipMode::Centralized);
        let kv = |k: &str, v: &[u8]| Kv {
            key: k.as_bytes().to_vec(),
            value: v.to_vec(),
            create_revision: 1,
            mod_revision: 1,
            lease: 7,
        };
        let json = serde_json::to_vec(&rec).unwrap();
        let view = View::parse(vec![
            kv("/vswitch/fips/192.168.111.223/owner", &json),
            kv("/vswitch/fips/192.168.111.223/map/n1", &json),
            kv("/vswitch/fips/192.168.111.223/map/n2", b"garbage"),
            kv("/vswitch/fips/10.0.0.1/map/n2", &json), // names another FIP than its key
            kv("/vswitch/fips/not-an-ip/owner", &json),
            kv("/vswitch/fips/10.0.0.2/owner", b"{"),
            kv("/vswitch/fips/10.0.0.3/other", &json),
        ]);
        assert_eq!(view.owners.len(), 2);
        assert_eq!(view.owners[&rec.fip].1.as_ref(), Some(&rec));
        assert!(view.owners[&Ipv4Addr::new(10, 0, 0, 2)].1.is_none());
        assert_eq!(view.maps.len(), 1);
        assert_eq!(view.maps[&rec.fip].len(), 1);
    }
}
