//! Who owns a floating IP across nodes.
//!
//! A floating IP (FIP) is a stateless 1:1 mapping `FIP <-> fixed IP` that every node carrying
//! it computes from the same configuration (see the FIP module). What must not be duplicated is
//! *ownership*: the node that answers ARP for the FIP and receives its inbound traffic. Two
//! owners is the root cause of scenario S1 (seed 000/001: one node's centralized router and
//! another's distributed router both acting for 192.168.111.223).
//!
//! Nodes do not talk to each other for this: they coordinate through an existing distributed
//! store (etcd). This module is the seam between the daemon and that store: the daemon asks a
//! [`ClaimStore`] to claim the FIPs it is configured to own and reads back each claim's
//! [`ClaimStatus`]; the store decides (create-if-absent, bound to a lease, in etcd) and tells
//! the daemon when a status changes, so the datapath's ownership (ARP answers) follows it.
//! Without a store configured the node runs [`Standalone`]: every claim is granted locally and
//! `show` says so.
//!
//! * [`etcd::EtcdStore`] (`vswitchd --etcd URL`): claims as leased etcd keys, over etcd's JSON
//!   gateway with the small blocking [`client`]; its module docs give the keys, the lease and
//!   failure rules, and what a restart with the same node id does.
//! * [`check`]: `swctl fip-check`, built only from the trait (`local_records`, `status`,
//!   `holder`, `records`, `health`), so it needs nothing from the FIP table.

pub mod check;
pub mod client;
pub mod etcd;

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How a node carries a floating IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FipMode {
    /// This node is the FIP's gateway (a centralized router, the "network node" of S1): it
    /// owns the FIP — answers ARP for it and receives its inbound traffic — and translates both
    /// directions. Needs a granted claim.
    Centralized,
    /// This node hosts the fixed IP and translates the VM's traffic statelessly with the same
    /// mapping (the "distributed router" of S1, sending replies straight out). It does not own
    /// the FIP: no ARP answers, no claim; it publishes its mapping so others can check it.
    Distributed,
}

/// What this node publishes about one FIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    /// Node identity (`vswitchd --node-id`, default: the host name).
    pub node: String,
    /// Bridge carrying the FIP on that node.
    pub bridge: String,
    /// The floating IP.
    pub fip: Ipv4Addr,
    /// The fixed IP it maps to.
    pub fixed: Ipv4Addr,
    /// How the node carries it.
    pub mode: FipMode,
}

/// The state of this node's claim on one FIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ClaimStatus {
    /// No store configured: granted locally, nobody else consulted.
    Standalone,
    /// Asked the store, no answer yet (the node does not act as owner meanwhile).
    Pending,
    /// The store granted the claim; this node is the owner.
    Owned,
    /// Another node holds the claim; this node must not act as owner.
    Refused {
        /// The holder's node identity.
        holder: String,
    },
    /// The claim was held and is gone (lease expired, store unreachable past the lease, key
    /// deleted); the node stops acting as owner and retries.
    Lost {
        /// Why, for the operator.
        reason: String,
    },
    /// Not a claim: the FIP is carried in `distributed` mode, which owns nothing.
    NotClaimed,
}

impl ClaimStatus {
    /// Whether this node may act as the FIP's owner (answer ARP, take inbound traffic).
    pub fn owns(&self) -> bool {
        matches!(self, ClaimStatus::Standalone | ClaimStatus::Owned)
    }
}

/// Called by a store when any claim status or any peer mapping changed.
pub type ChangeListener = Arc<dyn Fn() + Send + Sync>;

/// Where claims are made. Calls return at once (a store talks to the network on its own
/// thread); statuses change later and are announced through the listener.
pub trait ClaimStore: Send + Sync {
    /// Human-readable description for `show` ("standalone", "etcd http://127.0.0.1:2379 as node-a").
    fn describe(&self) -> String;
    /// Publish this node's mapping for `record.fip`; for `Centralized`, also claim ownership.
    fn claim(&self, record: &ClaimRecord);
    /// Withdraw this node's mapping and claim for `fip` (FIP deleted).
    fn release(&self, fip: Ipv4Addr);
    /// This node's claim status for `fip` (`NotClaimed` for distributed, `Pending` if unknown).
    fn status(&self, fip: Ipv4Addr) -> ClaimStatus;
    /// Every record published for `fip` by any node, this one included (for `fip-check`).
    fn records(&self, fip: Ipv4Addr) -> Vec<ClaimRecord>;
    /// Register the function to call when statuses or records change.
    fn set_listener(&self, listener: ChangeListener);
    /// This node's records: what it claimed and has not released (for `fip-check`, which
    /// lists the FIPs configured on this node).
    fn local_records(&self) -> Vec<ClaimRecord> {
        Vec::new()
    }
    /// The node holding `fip`'s claim, as far as this store knows (any node, for any FIP it
    /// has seen); `None` when nobody holds it or the store cannot tell.
    fn holder(&self, _fip: Ipv4Addr) -> Option<String> {
        None
    }
    /// The store's own state and counters, for `fip-check`.
    fn health(&self) -> StoreHealth {
        StoreHealth::default()
    }
}

/// How a store is doing, for `fip-check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Whether claims are checked across nodes (false: standalone).
    pub distributed: bool,
    /// What is wrong right now (store unreachable, bad answers), if anything.
    pub problem: Option<String>,
    /// Claims this node made that another node's claim refused (each time a claim becomes
    /// refused, not each retry).
    pub claims_refused: u64,
    /// Leases lost (expired at the store, or not refreshed for a whole TTL).
    pub leases_lost: u64,
}

/// The store of a node without a distributed store: grants every centralized claim locally.
#[derive(Default)]
pub struct Standalone {
    records: std::sync::Mutex<Vec<ClaimRecord>>,
}

impl ClaimStore for Standalone {
    fn describe(&self) -> String {
        "standalone (no distributed store configured: FIP ownership is not checked across nodes)"
            .into()
    }

    fn claim(&self, record: &ClaimRecord) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.retain(|r| r.fip != record.fip);
        records.push(record.clone());
    }

    fn release(&self, fip: Ipv4Addr) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.retain(|r| r.fip != fip);
    }

    fn status(&self, fip: Ipv4Addr) -> ClaimStatus {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        match records.iter().find(|r| r.fip == fip) {
            Some(r) if r.mode == FipMode::Centralized => ClaimStatus::Standalone,
            Some(_) => ClaimStatus::NotClaimed,
            None => ClaimStatus::Pending,
        }
    }

    fn records(&self, fip: Ipv4Addr) -> Vec<ClaimRecord> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.iter().filter(|r| r.fip == fip).cloned().collect()
    }

    fn set_listener(&self, _listener: ChangeListener) {}

    fn local_records(&self) -> Vec<ClaimRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mode: FipMode) -> ClaimRecord {
        ClaimRecord {
            node: "n1".into(),
            bridge: "br-int".into(),
            fip: Ipv4Addr::new(192, 168, 111, 223),
            fixed: Ipv4Addr::new(88, 88, 88, 4),
            mode,
        }
    }

    #[test]
    fn standalone_grants_centralized_and_claims_nothing_for_distributed() {
        let s = Standalone::default();
        let fip = Ipv4Addr::new(192, 168, 111, 223);
        assert_eq!(s.status(fip), ClaimStatus::Pending);
        s.claim(&record(FipMode::Centralized));
        assert!(s.status(fip).owns());
        s.claim(&record(FipMode::Distributed));
        assert_eq!(s.status(fip), ClaimStatus::NotClaimed);
        assert!(!s.status(fip).owns());
        assert_eq!(s.records(fip).len(), 1);
        s.release(fip);
        assert!(s.records(fip).is_empty());
    }
}
