//! `swctl fip-check`: what this node's claim store says about each FIP configured here, and
//! what is wrong.
//!
//! Problems reported (each makes `fip-check` exit non-zero, for monitoring):
//! * the store itself: unreachable, or answering nonsense;
//! * this node's claim refused (another node holds it while this one is configured
//!   centralized: the second claim of seed 000), pending (no answer yet) or lost;
//! * more than one node configures the FIP as centralized (reported on every node that sees
//!   it, the holder included: the configuration is wrong even where the claim won);
//! * the nodes' mappings disagree: they do not all map the FIP to the same fixed IP;
//! * this node's own mapping is not (yet) published in the store.

use std::collections::BTreeSet;

use control::protocol::{FipCheckEntry, FipCheckReport, FipMapping};

use super::{ClaimRecord, ClaimStatus, ClaimStore, FipMode};

fn mode_name(mode: FipMode) -> &'static str {
    match mode {
        FipMode::Centralized => "centralized",
        FipMode::Distributed => "distributed",
    }
}

fn mapping(r: &ClaimRecord) -> FipMapping {
    FipMapping {
        node: r.node.clone(),
        bridge: r.bridge.clone(),
        fixed: r.fixed.to_string(),
        mode: mode_name(r.mode).into(),
    }
}

/// Check every FIP `store` has claimed for this node.
pub fn fip_check(store: &dyn ClaimStore) -> FipCheckReport {
    let health = store.health();
    let mut problems = Vec::new();
    if let Some(p) = &health.problem {
        problems.push(format!("store unreachable: {p}"));
    }
    let mut locals = store.local_records();
    locals.sort_by_key(|r| r.fip);
    let mut fips = Vec::new();
    for local in locals {
        let fip = local.fip;
        let status = store.status(fip);
        let records = store.records(fip);
        let mut holder = store.holder(fip);
        let (name, detail) = match &status {
            ClaimStatus::Standalone => ("standalone", None),
            ClaimStatus::Pending => ("pending", None),
            ClaimStatus::Owned => ("owned", None),
            ClaimStatus::Refused { holder } => ("refused", Some(holder.clone())),
            ClaimStatus::Lost { reason } => ("lost", Some(reason.clone())),
            ClaimStatus::NotClaimed => ("not-claimed", None),
        };
        if holder.is_none() && status.owns() {
            holder = Some(local.node.clone());
        }
        let mut mine = Vec::new();
        match &status {
            ClaimStatus::Refused { holder } => mine.push(format!(
                "second claim refused: {holder} owns {fip}, and this node ({}) is configured \
                 centralized for it too; it does not act as owner",
                local.node
            )),
            ClaimStatus::Pending if health.distributed => mine.push(format!(
                "claim pending: the store has not granted {fip} to this node yet (no owner here)"
            )),
            ClaimStatus::Lost { reason } => {
                mine.push(format!("claim lost: {reason}; claiming again"))
            }
            _ => {}
        }
        let central: BTreeSet<&str> = records
            .iter()
            .filter(|r| r.mode == FipMode::Centralized)
            .map(|r| r.node.as_str())
            .collect();
        if central.len() > 1 {
            mine.push(format!(
                "configured centralized on {} nodes ({}): only one may own a FIP",
                central.len(),
                central.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        let fixed: BTreeSet<_> = records.iter().map(|r| r.fixed).collect();
        if fixed.len() > 1 {
            let who: Vec<String> = records
                .iter()
                .map(|r| format!("{} -> {}", r.node, r.fixed))
                .collect();
            mine.push(format!("mappings disagree: {}", who.join(", ")));
        }
        if health.distributed
            && health.problem.is_none()
            && !records.iter().any(|r| r.node == local.node)
        {
            mine.push("this node's mapping is not published in the store yet".into());
        }
        problems.extend(mine.iter().map(|p| format!("{fip}: {p}")));
        fips.push(FipCheckEntry {
            fip: fip.to_string(),
            mapping: mapping(&local),
            status: name.into(),
            detail,
            owns: status.owns(),
            holder,
            mappings: records.iter().map(mapping).collect(),
            problems: mine,
        });
    }
    let mut report = FipCheckReport {
        store: store.describe(),
        distributed: health.distributed,
        claims_refused: health.claims_refused,
        leases_lost: health.leases_lost,
        fips,
        problems,
        text: String::new(),
    };
    report.text = render(&report);
    report
}

/// The report as `swctl fip-check` prints it.
fn render(report: &FipCheckReport) -> String {
    use std::fmt::Write;
    let mut s = format!("store: {}\n", report.store);
    let _ = writeln!(
        s,
        "claims refused: {}, leases lost: {}",
        report.claims_refused, report.leases_lost
    );
    if report.fips.is_empty() {
        s.push_str("no floating IPs configured on this node\n");
    }
    for f in &report.fips {
        let detail = f
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{} -> {} on {}: {}, {}{}",
            f.fip, f.mapping.fixed, f.mapping.bridge, f.mapping.mode, f.status, detail
        );
        let _ = writeln!(s, "  holder: {}", f.holder.as_deref().unwrap_or("none"));
        for m in &f.mappings {
            let _ = writeln!(
                s,
                "  mapping: {} {} -> {} on {}, {}",
                m.node, f.fip, m.fixed, m.bridge, m.mode
            );
        }
        for p in &f.problems {
            let _ = writeln!(s, "  PROBLEM: {p}");
        }
    }
    if let Some(p) = report.problems.iter().find(|p| p.starts_with("store ")) {
        let _ = writeln!(s, "PROBLEM: {p}");
    }
    let _ = writeln!(
        s,
        "{}",
        match report.problems.len() {
            0 => "ok".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::super::{ChangeListener, Standalone, StoreHealth};
    use super::*;
    use std::net::Ipv4Addr;

    const FIP: Ipv4Addr = Ipv4Addr::new(192, 168, 111, 223);

    fn rec(node: &str, fixed: [u8; 4], mode: FipMode) -> ClaimRecord {
        ClaimRecord {
            node: node.into(),
            bridge: "br-int".into(),
            fip: FIP,
            fixed: fixed.into(),
            mode,
        }
    }

    /// A store whose answers the test sets.
    struct Canned {
        local: ClaimRecord,
        status: ClaimStatus,
        records: Vec<ClaimRecord>,
        holder: Option<String>,
        health: StoreHealth,
    }

    impl ClaimStore for Canned {
        fn describe(&self) -> String {
            "canned".into()
        }
        fn claim(&self, _: &ClaimRecord) {}
        fn release(&self, _: Ipv4Addr) {}
        fn status(&self, _: Ipv4Addr) -> ClaimStatus {
            self.status.clone()
        }
        fn records(&self, _: Ipv4Addr) -> Vec<ClaimRecord> {
            self.records.clone()
        }
        fn set_listener(&self, _: ChangeListener) {}
        fn local_records(&self) -> Vec<ClaimRecord> {
            vec![self.local.clone()]
        }
        fn holder(&self, _: Ipv4Addr) -> Option<String> {
            self.holder.clone()
        }
        fn health(&self) -> StoreHealth {
            self.health.clone()
        }
    }

    fn distributed() -> StoreHealth {
        StoreHealth {
            distributed: true,
            ..StoreHealth::default()
        }
    }

    #[test]
    fn standalone_is_fine_and_says_so() {
        let s = Standalone::default();
        let r = fip_check(&s);
        assert!(r.fips.is_empty() && r.problems.is_empty());
        assert!(render(&r).contains("no floating IPs configured"));
        s.claim(&rec("n1", [88, 88, 88, 4], FipMode::Centralized));
        let r = fip_check(&s);
        assert_eq!(r.fips.len(), 1);
        assert_eq!(r.fips[0].status, "standalone");
        assert!(r.fips[0].owns);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.store.starts_with("standalone"));
        assert!(render(&r).ends_with("ok\n"));
    }

    #[test]
    fn second_claim_and_disagreement_are_problems() {
        let store = Canned {
            local: rec("n2", [88, 88, 88, 4], FipMode::Centralized),
            status: ClaimStatus::Refused {
                holder: "n1".into(),
            },
            records: vec![
                rec("n1", [88, 88, 88, 4], FipMode::Centralized),
                rec("n2", [88, 88, 88, 4], FipMode::Centralized),
                rec("n3", [88, 88, 88, 5], FipMode::Distributed),
            ],
            holder: Some("n1".into()),
            health: distributed(),
        };
        let r = fip_check(&store);
        assert_eq!(r.fips[0].status, "refused");
        assert_eq!(r.fips[0].holder.as_deref(), Some("n1"));
        assert!(!r.fips[0].owns);
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        assert!(r.problems[0].contains("second claim refused: n1 owns 192.168.111.223"));
        assert!(r.problems[1].contains("centralized on 2 nodes (n1, n2)"));
        assert!(r.problems[2].contains("n1 -> 88.88.88.4, n2 -> 88.88.88.4, n3 -> 88.88.88.5"));
        let text = render(&r);
        assert!(text.contains("192.168.111.223 -> 88.88.88.4 on br-int: centralized, refused (n1)"));
        assert!(text.contains("  mapping: n3 192.168.111.223 -> 88.88.88.5 on br-int, distributed"));
        assert!(text.ends_with("3 problems\n"), "{text}");
    }

    #[test]
    fn owner_with_agreeing_distributed_peer_is_ok() {
        let store = Canned {
            local: rec("n1", [88, 88, 88, 4], FipMode::Centralized),
            status: ClaimStatus::Owned,
            records: vec![
                rec("n1", [88, 88, 88, 4], FipMode::Centralized),
                rec("n2", [88, 88, 88, 4], FipMode::Distributed),
            ],
            holder: Some("n1".into()),
            health: distributed(),
        };
        let r = fip_check(&store);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.fips[0].owns);
    }

    #[test]
    fn store_down_pending_and_unpublished() {
        let mut store = Canned {
            local: rec("n1", [88, 88, 88, 4], FipMode::Centralized),
            status: ClaimStatus::Pending,
            records: vec![],
            holder: None,
            health: StoreHealth {
                problem: Some("cannot connect to etcd at 127.0.0.1:1: refused".into()),
                ..distributed()
            },
        };
        let r = fip_check(&store);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].starts_with("store unreachable: cannot connect"));
        assert!(r.problems[1].contains("claim pending"));
        assert!(render(&r).contains("PROBLEM: store unreachable"));
        store.health.problem = None;
        store.status = ClaimStatus::Lost {
            reason: "lease 5 expired at the store".into(),
        };
        let r = fip_check(&store);
        assert!(
            r.problems[0].contains("claim lost: lease 5 expired"),
            "{:?}",
            r.problems
        );
        assert!(r.problems[1].contains("not published"), "{:?}", r.problems);
    }
}
