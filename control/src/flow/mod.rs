//! The flow language: field catalogue, parsed form, parser and printer.
//!
//! Compatible with `ovs-ofctl` (OpenFlow 1.3 output style): what an operator pastes from
//! `ovs-ofctl dump-flows` parses, and what we print is what `ovs-ofctl -O OpenFlow13` prints.

pub mod actions;
pub mod ast;
pub mod field;
pub mod filter;
pub mod lexer;
pub mod matches;
pub mod names;
pub mod nat;
pub mod parse;
pub mod ports;
pub mod print;
pub mod value;

pub use ast::{Action, FlowAttrs, FlowSpec, Match};
pub use field::Field;
pub use parse::{parse_flow, parse_flows, FlowError, FlowFileError, ParseMode};
pub use print::{format_actions, format_dump_line, format_flow, format_match, DumpStats};
