//! Packet parsing: hand-written flow key extraction and typed header views.
//!
//! `extract` is the hot path: one pass over the frame, no allocation, filling a [`FlowKey`]
//! and a [`Layout`] (where each header starts) that the action executor uses to rewrite
//! headers in place. Malformed frames are reported by [`Malformed`] reason so the caller can
//! count them; nothing here panics on any input.

use crate::key::FlowKey;

/// Offsets of the headers found in a frame. `NONE` marks an absent layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// Number of 802.1Q/802.1ad tags after the MAC addresses (0..=2).
    pub n_vlans: u8,
    /// Offset of the L3 header (after the Ethertype/tags), or `Layout::NONE`.
    pub l3: u16,
    /// Offset of the L4 header (after IPv4 options / IPv6 extension headers), or `Layout::NONE`.
    pub l4: u16,
}

impl Layout {
    /// Marker for an absent layer.
    pub const NONE: u16 = u16::MAX;
}

/// Why a frame could not be parsed. Each reason is a drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Malformed {
    /// Shorter than an Ethernet header.
    #[error("frame shorter than an Ethernet header")]
    TruncatedEthernet,
    /// An 802.1Q tag is cut short.
    #[error("truncated VLAN tag")]
    TruncatedVlan,
    /// IPv4 header cut short, bad version, IHL < 5, or total length inconsistent.
    #[error("bad or truncated IPv4 header")]
    BadIpv4,
    /// IPv6 header cut short or bad version.
    #[error("bad or truncated IPv6 header")]
    BadIpv6,
    /// IPv6 extension header chain cut short.
    #[error("truncated IPv6 extension header")]
    BadIpv6Ext,
    /// ARP packet cut short or not Ethernet/IPv4.
    #[error("bad or truncated ARP")]
    BadArp,
    /// TCP header cut short or data offset < 5.
    #[error("bad or truncated TCP header")]
    BadTcp,
    /// UDP header cut short.
    #[error("truncated UDP header")]
    BadUdp,
    /// SCTP header cut short.
    #[error("truncated SCTP header")]
    BadSctp,
    /// ICMP/ICMPv6 header cut short.
    #[error("truncated ICMP header")]
    BadIcmp,
    /// Neighbor Discovery message or option malformed.
    #[error("malformed neighbor discovery message")]
    BadNd,
}

impl Malformed {
    /// Every reason, for counter tables.
    pub const ALL: [Malformed; 11] = [
        Malformed::TruncatedEthernet,
        Malformed::TruncatedVlan,
        Malformed::BadIpv4,
        Malformed::BadIpv6,
        Malformed::BadIpv6Ext,
        Malformed::BadArp,
        Malformed::BadTcp,
        Malformed::BadUdp,
        Malformed::BadSctp,
        Malformed::BadIcmp,
        Malformed::BadNd,
    ];

    /// Stable snake_case name for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            Malformed::TruncatedEthernet => "truncated_ethernet",
            Malformed::TruncatedVlan => "truncated_vlan",
            Malformed::BadIpv4 => "bad_ipv4",
            Malformed::BadIpv6 => "bad_ipv6",
            Malformed::BadIpv6Ext => "bad_ipv6_ext",
            Malformed::BadArp => "bad_arp",
            Malformed::BadTcp => "bad_tcp",
            Malformed::BadUdp => "bad_udp",
            Malformed::BadSctp => "bad_sctp",
            Malformed::BadIcmp => "bad_icmp",
            Malformed::BadNd => "bad_nd",
        }
    }
}

/// Extract the flow key of `frame` into `key`'s packet fields (metadata words — tunnel,
/// registers, in_port, conntrack — are left as the caller set them).
///
/// Placeholder until the extractor lands: parses nothing.
pub fn extract(frame: &[u8], key: &mut FlowKey) -> Result<Layout, Malformed> {
    let _ = key;
    if frame.len() < 14 {
        return Err(Malformed::TruncatedEthernet);
    }
    Ok(Layout::default())
}
