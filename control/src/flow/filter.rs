//! Selecting flows for `mod-flows`, `del-flows` and `dump-flows`.
//!
//! In `ovs-ofctl`, a filter without `table=` selects flows in every table, while
//! [`FlowAttrs::table`](super::ast::FlowAttrs::table) defaults to 0 once parsed. This module
//! keeps that distinction.

use super::ast::FlowSpec;
use super::lexer::{split_actions, split_tokens};
use super::parse::{parse_flow, FlowError, ParseMode};

/// A parsed filter and the table it is restricted to (`None`: all tables).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The parsed flow (match, cookie/mask, out_port, and actions for `mod-flows`).
    pub spec: FlowSpec,
    /// `Some(t)` when the text said `table=t`.
    pub table: Option<u8>,
}

/// Parse `text` as a filter in `mode` (Filter or Modify).
pub fn parse_filter(text: &str, mode: ParseMode) -> Result<Filter, FlowError> {
    let spec = parse_flow(text, mode)?;
    let head = split_actions(text).map(|(h, _)| h).unwrap_or(text);
    let names_table = split_tokens(head).iter().any(|t| {
        t.split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("table"))
    });
    let table = names_table.then_some(spec.attrs.table);
    Ok(Filter { spec, table })
}

/// The select-everything filter.
pub fn all_flows() -> Filter {
    Filter {
        spec: FlowSpec {
            attrs: Default::default(),
            matches: Default::default(),
            actions: None,
        },
        table: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_only_set_when_written() {
        let f = parse_filter("ip,nw_dst=10.0.0.1", ParseMode::Filter).unwrap();
        assert_eq!(f.table, None);
        let f = parse_filter("table=0,ip", ParseMode::Filter).unwrap();
        assert_eq!(f.table, Some(0));
        let f = parse_filter("table=30, priority=1,ip", ParseMode::Filter).unwrap();
        assert_eq!(f.table, Some(30));
        // `table=` inside the actions does not count.
        let f = parse_filter("ip actions=resubmit(,20)", ParseMode::Modify).unwrap();
        assert_eq!(f.table, None);
    }
}
