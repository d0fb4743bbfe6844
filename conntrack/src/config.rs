//! Per-zone configuration: tracking profile, entry limit and timeouts.

use serde::Serialize;

/// How strictly a zone's TCP connections are checked.
///
/// The profile is an input of the TCP transition function ([`crate::tcp`]), not a flag tested
/// here and there: each profile decides which checks run, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub enum Profile {
    /// Full state machine and sequence/acknowledgment window checks (Linux nf_conntrack
    /// default, pf's `modulate`-less `keep state`). Out-of-window segments are `+inv`.
    #[default]
    Strict,
    /// State machine without window checks (Linux `nf_conntrack_tcp_be_liberal`): windows are
    /// still tracked, so a zone can switch back to `Strict`, but a segment outside them is
    /// accepted, and so is any RST or SYN-ACK with a valid flag combination. Trade-off: a
    /// blind attacker who guesses the 4-tuple can inject data or reset a connection. Only a
    /// SYN still opens a connection. Useful where one node sees only part of the traffic.
    Liberal,
}

/// Timeouts in seconds per protocol state (defaults are Linux's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct Timeouts {
    pub tcp_syn_sent: u32,
    pub tcp_syn_recv: u32,
    pub tcp_established: u32,
    pub tcp_fin_wait: u32,
    pub tcp_close_wait: u32,
    pub tcp_last_ack: u32,
    pub tcp_time_wait: u32,
    pub tcp_close: u32,
    pub udp_unreplied: u32,
    pub udp_replied: u32,
    pub udp_assured: u32,
    pub icmp: u32,
    pub other: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            udp_unreplied: 30,
            udp_replied: 120,
            udp_assured: 180,
            icmp: 30,
            other: 600,
        }
    }
}

/// Configuration of one zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct ZoneConfig {
    /// TCP tracking profile.
    pub profile: Profile,
    /// Maximum number of entries in this zone (0: only the global limit applies).
    pub limit: u32,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// Configuration of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Maximum number of entries over all zones.
    pub global_limit: u32,
    /// Configuration of zones without their own.
    pub default_zone: ZoneConfig,
    /// Number of lock shards (rounded up to a power of two).
    pub shards: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            global_limit: 1 << 21,
            default_zone: ZoneConfig::default(),
            shards: 64,
        }
    }
}
