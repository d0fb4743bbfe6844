//! [`FlowSpec`] → canonical `ovs-ofctl -O OpenFlow13` text. (Placeholder: the printer lands next.)

use super::ast::{Action, FlowSpec, Match};

/// The match part (`priority=…,arp,tun_id=…`), without table/cookie.
pub fn format_match(m: &Match) -> String {
    format!("{m:?}")
}

/// The action list (`move:…,IN_PORT`), `drop` when empty.
pub fn format_actions(actions: &[Action]) -> String {
    format!("{actions:?}")
}

/// A whole flow as `ovs-ofctl add-flow` accepts it.
pub fn format_flow(f: &FlowSpec) -> String {
    format!("{f:?}")
}
