//! Packet parsing: hand-written flow key extraction and typed header views.
//!
//! [`extract`] is the hot path: one pass over the frame, no allocation, filling a [`FlowKey`]
//! and a [`Layout`] (where each header starts) that the action executor uses to rewrite
//! headers in place. Malformed frames are reported by [`Malformed`] reason so the caller can
//! count them; nothing here panics on any input.
//!
//! # Malformed versus unparsed
//!
//! The rule: a frame is *malformed* when a header we parse claims structure the bytes do not
//! have — a header cut short, a length field that points past the end of its container, a
//! version or length value outside what the protocol allows. Such a frame cannot be forwarded
//! faithfully (an action rewriting `tp_dst` would write past the end), so it is dropped and
//! counted. Anything we simply do not look into is *unparsed payload*, never an error:
//!
//! - Unknown Ethertypes, IP protocols and ICMP types: the key has the fields of the headers
//!   before them (an unknown Ethertype gives Ethernet fields only). 802.3 length-field frames
//!   (type < 0x0600) get `eth_type` 0x05ff, as in Open vSwitch. A third VLAN tag is unparsed
//!   payload (`eth_type` is its TPID).
//! - Bytes after the IPv4 total length / IPv6 payload length: Ethernet padding (minimum frame
//!   size) — ignored, and transport headers are looked for only inside the IP length. The
//!   reverse (IP length larger than what the frame holds) is malformed.
//! - Checksums are not verified (IPv4 header, TCP, UDP, ICMP): that is the end host's job and
//!   would cost a pass over the payload. TTL 0, reserved bits, the UDP length field, TCP
//!   options and IPv4 options content are likewise not judged.
//! - Later fragments (IPv4 offset ≠ 0, IPv6 fragment offset ≠ 0): L4 is not parsed at all, so
//!   nothing after the IP header can be malformed; `Layout::l4` is `NONE`. A first fragment
//!   must carry its complete transport header (a tiny first fragment that splits the TCP
//!   header is the classic filter-evasion trick, RFC 1858), otherwise it is malformed.
//! - ARP/RARP must be Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4) and 28 bytes long:
//!   the key has no room for other shapes, so they are malformed ([`Malformed::BadArp`]).
//! - IPv6 extension headers (hop-by-hop, routing, destination options, fragment, AH) are walked
//!   and must fit in the payload length ([`Malformed::BadIpv6Ext`]); ESP and "no next header"
//!   end the walk and become `nw_proto`. Any fragment header sets `nw_frag` ANY (even an atomic
//!   fragment); a nonzero offset adds LATER and stops the walk.
//! - ICMPv4 needs its 8-byte header, ICMPv6 its 4-byte one. ND (NS 135 / NA 136 with code 0)
//!   needs the target address; its options must each have a nonzero length that fits, and at
//!   most one link-layer address option of the kind the message carries (SLL for NS, TLL for
//!   NA), else [`Malformed::BadNd`]. Options of other types, or of the other kind, are skipped.
//!
//! [`Layout`] on success: `l3` is always set (the byte after the Ethernet header and its tags,
//! for any Ethertype); `l4` only for IPv4/IPv6 packets that have a transport header in this
//! frame (not for later fragments), whatever the protocol number.
//!
//! # Contents
//!
//! - [`extract`], [`Layout`], [`Malformed`]: the hot path.
//! - [`vlan`]: smoltcp-style `VlanPacket`/`VlanRepr` for 802.1Q/802.1ad tags (smoltcp has none).
//! - [`vxlan`]: smoltcp-style `VxlanPacket`/`VxlanRepr` for the VXLAN header (RFC 7348).
//! - [`ether`]: Ethertype, IP protocol and header length constants.
//! - [`build`]: frames from flow matches (`swctl trace`), metadata into keys, hex frames.

use crate::key::FlowKey;

pub mod build;
pub mod ether;
mod extract;
pub use extract::FIRST_PACKET_WORD;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
pub mod vlan;
pub mod vxlan;

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
/// Every packet-field word is rewritten, so a reused key never carries a previous packet's
/// values. On `Err` the packet fields hold what was parsed before the bad header (Ethernet
/// fields at least, once the Ethernet header is complete); callers drop such packets.
#[inline]
pub fn extract(frame: &[u8], key: &mut FlowKey) -> Result<Layout, Malformed> {
    extract::extract(frame, key)
}
