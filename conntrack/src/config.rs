//! Per-zone configuration: tracking profile, invalid-packet action, entry limit and timeouts.

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
    /// `Strict`, plus one-sided connections for zones that may see only the original
    /// direction (scenario S1: the network node sees the client's packets, the VM's answers
    /// leave through the compute node). After a SYN we saw, an original-direction ACK (or
    /// FIN-ACK, with or without data) whose sequence number is exactly the SYN's end
    /// (`SYN.seq + 1`), while nothing came back, *establishes* the connection as one-sided
    /// (`+est`, never `+rpl`) instead of being `+inv`. See [`crate::tcp`] for the rules and
    /// the crate docs ("Profiles and their trade-offs") for what this costs in security.
    ///
    /// Still refused: an ACK with no SYN behind it (`not_new`), an ACK after the SYN with
    /// another sequence number (`asym_bad_seq`). Connections whose reply is seen are tracked
    /// exactly as under `Strict`.
    Asym,
}

impl Profile {
    /// Name as `set-ct-zone profile=NAME` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Strict => "strict",
            Profile::Liberal => "liberal",
            Profile::Asym => "asym",
        }
    }

    /// The profile called `name` (`strict`, `liberal`, `asym`).
    pub fn from_name(name: &str) -> Option<Profile> {
        [Profile::Strict, Profile::Liberal, Profile::Asym]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// What `ct()` does with a packet conntrack judged invalid (`+trk+inv`), per zone.
///
/// Whatever the action, the packet is counted under its [`crate::InvalidReason`] (globally
/// and per zone). The point of `Drop` and `Untracked` is that an invalid packet of a
/// translated address never reaches a local stack by default-forwarding accident (scenario
/// S1: the router's stack answered the client's ACK with a RST).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub enum InvalidAction {
    /// Open vSwitch semantics: the packet continues with `+trk+inv` and the flows decide.
    #[default]
    Flows,
    /// `ct()` drops the packet itself and counts it (per zone and reason): it never reaches
    /// the table `ct(table=..)` names nor any action after the `ct`.
    Drop,
    /// The packet continues with `ct_state=+trk` only (neither `+new`/`+est` nor `+inv`),
    /// untranslated by `ct(nat)`, so the flows can translate it statelessly (e.g. a floating
    /// IP's `set_field` actions) or forward it as they would untracked traffic.
    Untracked,
}

impl InvalidAction {
    /// Name as `set-ct-zone invalid=NAME` takes it.
    pub fn name(self) -> &'static str {
        match self {
            InvalidAction::Flows => "flows",
            InvalidAction::Drop => "drop",
            InvalidAction::Untracked => "untracked",
        }
    }

    /// The action called `name` (`flows`, `drop`, `untracked`).
    pub fn from_name(name: &str) -> Option<InvalidAction> {
        [
            InvalidAction::Flows,
            InvalidAction::Drop,
            InvalidAction::Untracked,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

/// Timeouts in seconds per protocol state (defaults are Linux's, except the one-sided ones,
/// which Linux does not have).
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
    /// One-sided connection (profile `Asym`) in ESTABLISHED. Default 7440 s (2 h 4 min):
    /// longer than Linux's default keepalive interval (7200 s) so an idle but live session
    /// with keepalives keeps its entry, much shorter than `tcp_established` (5 days) because
    /// nothing but the originator's own packets vouches for the connection.
    pub tcp_one_sided_established: u32,
    /// One-sided connection closing (FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT): the peer's
    /// part of the close is never seen, so there is nothing to wait for but the originator's
    /// retransmissions. Default 60 s. (CLOSE after a RST uses `tcp_close`.)
    pub tcp_one_sided_closing: u32,
    pub udp_unreplied: u32,
    pub udp_replied: u32,
    pub udp_assured: u32,
    pub icmp: u32,
    pub other: u32,
}

impl Timeouts {
    /// The timeout called `name` (`tcp_established`, `udp_unreplied`, ...), for settings.
    pub fn by_name(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "tcp_syn_sent" => &mut self.tcp_syn_sent,
            "tcp_syn_recv" => &mut self.tcp_syn_recv,
            "tcp_established" => &mut self.tcp_established,
            "tcp_fin_wait" => &mut self.tcp_fin_wait,
            "tcp_close_wait" => &mut self.tcp_close_wait,
            "tcp_last_ack" => &mut self.tcp_last_ack,
            "tcp_time_wait" => &mut self.tcp_time_wait,
            "tcp_close" => &mut self.tcp_close,
            "tcp_one_sided_established" => &mut self.tcp_one_sided_established,
            "tcp_one_sided_closing" => &mut self.tcp_one_sided_closing,
            "udp_unreplied" => &mut self.udp_unreplied,
            "udp_replied" => &mut self.udp_replied,
            "udp_assured" => &mut self.udp_assured,
            "icmp" => &mut self.icmp,
            "other" => &mut self.other,
            _ => return None,
        })
    }
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
            tcp_one_sided_established: 7440,
            tcp_one_sided_closing: 60,
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
    /// What `ct()` does with this zone's invalid packets.
    pub invalid: InvalidAction,
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
