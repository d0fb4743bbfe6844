//! Protocol numbers used by the parser and the frame builder.
//!
//! Plain `u16`/`u8` constants rather than smoltcp's enums: the hot path compares raw header
//! bytes, and smoltcp has no names for several of these (802.1ad, RARP, SCTP, AH).

/// Ethertypes.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// Reverse ARP (same body as ARP).
    pub const RARP: u16 = 0x8035;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// Smallest value that is an Ethertype; below it the field is an 802.3 length.
    pub const MIN: u16 = 0x0600;
    /// What the key's `eth_type` holds for 802.3 (length-field) frames, as in Open vSwitch.
    pub const NONE: u16 = 0x05ff;

    /// True for the TPIDs that introduce a VLAN tag.
    #[inline(always)]
    pub const fn is_vlan(t: u16) -> bool {
        t == VLAN || t == QINQ
    }
}

/// IP protocol / IPv6 next-header numbers.
pub mod ipproto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPTS: u8 = 0;
    /// ICMPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// IPsec ESP (opaque: ends the header chain).
    pub const ESP: u8 = 50;
    /// IPsec authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NONE: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// ICMPv6 message types the parser looks inside.
pub mod icmpv6 {
    /// Neighbor solicitation.
    pub const ND_NS: u8 = 135;
    /// Neighbor advertisement.
    pub const ND_NA: u8 = 136;
    /// ND option: source link-layer address.
    pub const OPT_SLL: u8 = 1;
    /// ND option: target link-layer address.
    pub const OPT_TLL: u8 = 2;
}

/// Header lengths (minimum lengths for variable-size headers).
pub mod len {
    /// Ethernet II header (two MACs and the Ethertype).
    pub const ETH: usize = 14;
    /// One 802.1Q/802.1ad tag (TCI and the next Ethertype).
    pub const VLAN: usize = 4;
    /// IPv4 header without options.
    pub const IPV4: usize = 20;
    /// IPv6 fixed header.
    pub const IPV6: usize = 40;
    /// ARP body for Ethernet/IPv4.
    pub const ARP: usize = 28;
    /// TCP header without options.
    pub const TCP: usize = 20;
    /// UDP header.
    pub const UDP: usize = 8;
    /// SCTP common header.
    pub const SCTP: usize = 12;
    /// ICMPv4 header (type, code, checksum and the 4-byte rest-of-header every message has).
    pub const ICMPV4: usize = 8;
    /// ICMPv6 header (type, code, checksum; RFC 4443 puts everything else in the body).
    pub const ICMPV6: usize = 4;
    /// ND NS/NA fixed part: ICMPv6 header, flags/reserved, target address.
    pub const ND: usize = 24;
}
