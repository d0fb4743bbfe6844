//! What conntrack needs to know about a packet, filled in by the caller.
//!
//! The dataplane already parses headers; it describes each packet with a [`PacketInfo`] and
//! this crate never looks at bytes. That keeps header parsing in one place (the dataplane's
//! extractor) and lets tests build packets directly.

use std::net::IpAddr;

use crate::tuple::{proto, Tuple};

/// TCP flag bits as in the header's flag byte.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// The TCP header fields the state machine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpInfo {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful only with ACK).
    pub ack: u32,
    /// Window field as on the wire (not scaled).
    pub window: u16,
    /// Flag byte (see [`tcp_flags`]).
    pub flags: u8,
    /// Window-scale option shift, if the segment carries one (only looked at on SYN).
    pub wscale: Option<u8>,
    /// Payload length in bytes (IP payload minus TCP header).
    pub payload_len: u32,
}

/// The quoted header inside an ICMP error: the packet that provoked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerTuple {
    /// Source address of the quoted packet.
    pub src: IpAddr,
    /// Destination address of the quoted packet.
    pub dst: IpAddr,
    /// IP protocol of the quoted packet.
    pub proto: u8,
    /// Source port (ICMP echo: identifier).
    pub sport: u16,
    /// Destination port (ICMP echo: 0).
    pub dport: u16,
}

/// Layer-4 part of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// TCP segment.
    Tcp(TcpInfo),
    /// UDP datagram.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP or ICMPv6 message (which one follows from the IP version).
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Identifier of echo-like messages (0 otherwise).
        id: u16,
        /// For error messages, the quoted packet's tuple.
        inner: Option<InnerTuple>,
    },
    /// Any other protocol: tracked by addresses and protocol number.
    Other,
}

/// Everything conntrack needs from one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Conntrack zone (from the `ct(zone=...)` action).
    pub zone: u16,
    /// Source address (IPv4 or IPv6; both addresses must be the same family).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (for IPv6, the upper-layer protocol after extension headers).
    pub proto: u8,
    /// Layer-4 information.
    pub l4: L4,
    /// Length of the IP packet in bytes, for the byte counters.
    pub len: u32,
}

impl PacketInfo {
    /// A TCP packet (helper for callers and tests).
    pub fn tcp(zone: u16, src: IpAddr, dst: IpAddr, tcp: TcpInfo) -> Self {
        let len = tcp.payload_len + if src.is_ipv4() { 40 } else { 60 };
        PacketInfo {
            zone,
            src,
            dst,
            proto: proto::TCP,
            l4: L4::Tcp(tcp),
            len,
        }
    }

    /// A UDP packet.
    pub fn udp(zone: u16, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Self {
        let len = if src.is_ipv4() { 28 } else { 48 };
        PacketInfo {
            zone,
            src,
            dst,
            proto: proto::UDP,
            l4: L4::Udp { sport, dport },
            len,
        }
    }

    /// An ICMP (IPv4) or ICMPv6 (IPv6) message.
    pub fn icmp(
        zone: u16,
        src: IpAddr,
        dst: IpAddr,
        icmp_type: u8,
        code: u8,
        id: u16,
        inner: Option<InnerTuple>,
    ) -> Self {
        let (proto, len) = if src.is_ipv4() {
            (proto::ICMP, 28)
        } else {
            (proto::ICMPV6, 48)
        };
        PacketInfo {
            zone,
            src,
            dst,
            proto,
            l4: L4::Icmp {
                icmp_type,
                code,
                id,
                inner,
            },
            len,
        }
    }

    /// A packet of any other protocol.
    pub fn other(zone: u16, src: IpAddr, dst: IpAddr, proto: u8) -> Self {
        PacketInfo {
            zone,
            src,
            dst,
            proto,
            l4: L4::Other,
            len: 20,
        }
    }

    /// The key of this packet in its own direction. ICMP errors are keyed by their outer
    /// addresses here; the connection they relate to is found from the inner tuple.
    pub fn tuple(&self) -> Tuple {
        let (sport, dport) = match self.l4 {
            L4::Tcp(t) => (t.sport, t.dport),
            L4::Udp { sport, dport } => (sport, dport),
            L4::Icmp { id, .. } => (id, 0),
            L4::Other => (0, 0),
        };
        Tuple {
            zone: self.zone,
            src: self.src,
            dst: self.dst,
            sport,
            dport,
            proto: self.proto,
        }
    }
}

impl InnerTuple {
    /// The quoted packet's key in the given zone.
    pub fn tuple(&self, zone: u16) -> Tuple {
        Tuple {
            zone,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
        }
    }
}
