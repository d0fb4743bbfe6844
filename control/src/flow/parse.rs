//! Flow text → [`FlowSpec`]. (Placeholder: the full parser lands next.)

use super::ast::FlowSpec;

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

/// Parse one flow.
pub fn parse_flow(text: &str, mode: ParseMode) -> Result<FlowSpec, FlowError> {
    let _ = mode;
    Err(FlowError {
        token: text.to_string(),
        message: "parser not implemented yet".into(),
    })
}
