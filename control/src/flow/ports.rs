//! OpenFlow port numbers and names as actions write them (`output:5`, `LOCAL`, `in_port`).

use super::ast::OutputPort;
use super::value::parse_uint;

/// OpenFlow reserved port numbers (32-bit).
pub mod port {
    /// `IN_PORT`.
    pub const IN_PORT: u32 = 0xffff_fff8;
    /// `TABLE`.
    pub const TABLE: u32 = 0xffff_fff9;
    /// `NORMAL`.
    pub const NORMAL: u32 = 0xffff_fffa;
    /// `FLOOD`.
    pub const FLOOD: u32 = 0xffff_fffb;
    /// `ALL`.
    pub const ALL: u32 = 0xffff_fffc;
    /// `CONTROLLER`.
    pub const CONTROLLER: u32 = 0xffff_fffd;
    /// `LOCAL`.
    pub const LOCAL: u32 = 0xffff_fffe;
    /// `ANY` / `NONE`.
    pub const ANY: u32 = 0xffff_ffff;
}

/// Port names usable as bare actions and in `output:`.
pub fn named_port(s: &str) -> Option<u32> {
    Some(match s.to_ascii_lowercase().as_str() {
        "in_port" => port::IN_PORT,
        "normal" => port::NORMAL,
        "flood" => port::FLOOD,
        "all" => port::ALL,
        "local" => port::LOCAL,
        "controller" => port::CONTROLLER,
        _ => return None,
    })
}

/// The [`OutputPort`] for a 32-bit port number (reserved numbers become their variants).
pub fn port_variant(p: u32) -> Result<OutputPort, String> {
    Ok(match p {
        port::IN_PORT => OutputPort::InPort,
        port::NORMAL => OutputPort::Normal,
        port::FLOOD => OutputPort::Flood,
        port::ALL => OutputPort::All,
        port::LOCAL => OutputPort::Local,
        // Ports are 16-bit inside the switch (as in OVS): only 0..0xff00 and the reserved
        // names are real.
        p if p >= 0xff00 => return Err(format!("{p}: output to unknown port")),
        p => OutputPort::Port(p),
    })
}

/// A numeric `output:` port (16-bit OpenFlow 1.0 reserved numbers are widened first).
pub fn output_number(n: u128) -> Result<OutputPort, String> {
    let p = u32::try_from(n).map_err(|_| format!("{n}: port number out of range"))?;
    // OpenFlow 1.0 16-bit reserved numbers mean the same ports as their 32-bit forms.
    let p = if (0xff00..=0xffff).contains(&p) {
        p | 0xffff_0000
    } else {
        p
    };
    port_variant(p)
}

/// An `output:`/`resubmit` port: a number or a reserved name (not `controller`).
pub fn parse_port(s: &str) -> Result<OutputPort, String> {
    if let Some(p) = named_port(s) {
        if p == port::CONTROLLER {
            return Err("use the controller action to send to the controller".into());
        }
        return port_variant(p);
    }
    let n = parse_uint(s).ok_or_else(|| format!("{s}: invalid port"))?;
    output_number(n)
}
