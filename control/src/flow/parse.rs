//! Flow text → [`FlowSpec`].
//!
//! The text is split into tokens (see [`super::lexer`]); flow-mod attributes (`table`,
//! `priority`, `cookie`, timeouts, flags) are taken out, the counters of a `dump-flows` line
//! are ignored (so a dump line can be fed back), the rest is the match (see
//! [`super::matches`]) and everything after `actions=` the action list (see
//! [`super::actions`]).

use super::actions::parse_actions;
use super::ast::{FlowAttrs, FlowSpec};
use super::lexer::{split_actions, split_kv, split_tokens, Token};
use super::matches::{parse_in_port, MatchBuilder};
use super::value::{parse_uint, parse_uint_width, split_mask};

/// What the flow text is for: an add needs actions; filters for del/dump don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode {
    /// `add-flow`/`add-flows`: actions required; `cookie` mask not allowed.
    Add,
    /// `mod-flows`: actions required; `cookie=V/M` allowed as a filter.
    Modify,
    /// `del-flows`/`dump-flows` filters and `trace` packets: no actions; `cookie=V/M` allowed.
    Filter,
}

/// A rejected flow: the offending token and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at `{token}`)")]
pub struct FlowError {
    /// The token (as written) that could not be accepted.
    pub token: String,
    /// Why.
    pub message: String,
}

impl FlowError {
    fn at(token: &str, message: impl Into<String>) -> Self {
        FlowError {
            token: token.to_string(),
            message: message.into(),
        }
    }
}

/// Counters and ages printed by `dump-flows`: accepted with a value and ignored.
const IGNORED_WITH_VALUE: &[&str] = &[
    "duration",
    "n_packets",
    "n_bytes",
    "idle_age",
    "hard_age",
    "importance",
];

/// Flags printed by `dump-flows` that have no meaning for us: accepted and ignored.
const IGNORED_FLAGS: &[&str] = &["reset_counts", "no_packet_counts", "no_byte_counts"];

/// Parse one flow.
pub fn parse_flow(text: &str, mode: ParseMode) -> Result<FlowSpec, FlowError> {
    let (head, actions_text) = match split_actions(text) {
        Some((h, a)) => (h, Some(a)),
        None => (text, None),
    };
    if actions_text.is_none() && mode != ParseMode::Filter {
        return Err(FlowError::at(
            text.trim(),
            "must specify an action (actions=...)",
        ));
    }
    let mut attrs = FlowAttrs::default();
    let mut match_tokens = Vec::new();
    for raw in split_tokens(head) {
        let t = split_kv(raw, &['=']).map_err(|e| FlowError::at(raw, e))?;
        if !attr_token(&t, &mut attrs, mode)? {
            match_tokens.push(t);
        }
    }
    let matches = MatchBuilder::build(&match_tokens)?;
    let actions = match actions_text {
        Some(a) => Some(parse_actions(a, &matches, attrs.table)?),
        None => None,
    };
    Ok(FlowSpec {
        attrs,
        matches,
        actions,
    })
}

/// Consume a flow-mod attribute or ignorable dump-flows token; `false` if `t` is a match token.
fn attr_token(t: &Token<'_>, a: &mut FlowAttrs, mode: ParseMode) -> Result<bool, FlowError> {
    let raw = t.raw;
    let val = || -> Result<&str, FlowError> {
        t.value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| FlowError::at(raw, format!("{}: missing value", t.key)))
    };
    let int = |w: u8| -> Result<u128, FlowError> {
        parse_uint_width(val()?, w).map_err(|e| FlowError::at(raw, e))
    };
    match t.key {
        "table" => {
            let v = int(8)?;
            if v > 254 {
                return Err(FlowError::at(raw, format!("{v}: invalid table id")));
            }
            a.table = v as u8;
        }
        "priority" => a.priority = int(16)? as u16,
        "idle_timeout" => a.idle_timeout = int(16)? as u16,
        "hard_timeout" => a.hard_timeout = int(16)? as u16,
        "cookie" => {
            let (v, m) = split_mask(val()?);
            let num = |s: &str| {
                parse_uint(s)
                    .and_then(|x| u64::try_from(x).ok())
                    .ok_or_else(|| FlowError::at(raw, format!("{s}: invalid cookie")))
            };
            a.cookie = num(v)?;
            if let Some(m) = m {
                if mode == ParseMode::Add {
                    return Err(FlowError::at(
                        raw,
                        "cookie masking is not allowed when adding flows",
                    ));
                }
                a.cookie_mask = num(m)?;
            }
        }
        "out_port" => {
            if mode != ParseMode::Filter {
                return Err(FlowError::at(raw, "out_port is only allowed in filters"));
            }
            let v = val()?;
            a.out_port = Some(
                parse_in_port(v)
                    .or_else(|_| parse_uint(v).and_then(|x| u32::try_from(x).ok()).ok_or(()))
                    .map_err(|_| FlowError::at(raw, format!("{v}: invalid port")))?,
            );
        }
        "send_flow_rem" | "check_overlap" if t.value.is_none() => {
            if t.key == "send_flow_rem" {
                a.send_flow_rem = true;
            } else {
                a.check_overlap = true;
            }
        }
        k if IGNORED_WITH_VALUE.contains(&k) => {
            val()?;
        }
        k if IGNORED_FLAGS.contains(&k) && t.value.is_none() => {}
        _ => return Ok(false),
    }
    Ok(true)
}
