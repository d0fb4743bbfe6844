//! The catalogue of match and set fields.
//!
//! Every field the flow language can match, load, move or set is one [`Field`]. Each has a fixed
//! bit width, the names operators write (`ovs-ofctl` names, NXM and OXM names), and the
//! prerequisite that must hold in the match before the field means anything (`tp_dst` needs a
//! transport protocol, `arp_tpa` needs `arp`). Values are carried as `u128` (every field is at
//! most 128 bits wide), masks likewise.
//!
//! Some syntax maps onto narrower views of these fields (`dl_vlan` and `dl_vlan_pcp` are parts
//! of `vlan_tci`; `nw_tos` is the DSCP part of the TOS byte, shifted); the parser and printer
//! translate them, so the dataplane only ever sees the fields listed here.

use serde::{Deserialize, Serialize};

/// A match/set field. Register fields carry their index. Serialized as its canonical name
/// (`"reg3"`, `"eth_src"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    // --- metadata that travels with the packet ---
    /// OpenFlow ingress port (32 bits as in OpenFlow 1.3).
    InPort,
    /// Tunnel ID / VNI (`tun_id`, `NXM_NX_TUN_ID`), 64 bits.
    TunId,
    /// Outer IPv4 source of the tunnel the packet arrived on.
    TunSrc,
    /// Outer IPv4 destination of the tunnel the packet arrived on.
    TunDst,
    /// OpenFlow metadata register, 64 bits.
    Metadata,
    /// 32-bit register `reg0..reg15`.
    Reg(u8),
    /// 64-bit register `xreg0..xreg7`; `xregN` is `reg(2N)` (high half) and `reg(2N+1)` (low).
    Xreg(u8),
    /// Packet mark (`pkt_mark`), 32 bits.
    PktMark,
    /// Connection tracking state flags (see [`ct_state`]).
    CtState,
    /// Connection tracking zone, 16 bits.
    CtZone,
    /// Connection mark, 32 bits.
    CtMark,
    /// Connection label, 128 bits.
    CtLabel,
    // --- Ethernet ---
    /// Ethernet source address, 48 bits.
    EthSrc,
    /// Ethernet destination address, 48 bits.
    EthDst,
    /// Ethertype (of the innermost tag's payload), 16 bits.
    EthType,
    /// 802.1Q TCI of the outer tag, with bit 0x1000 (CFI) meaning "a tag is present", as in OVS.
    VlanTci,
    // --- IPv4 / IPv6 ---
    /// IPv4 source address.
    Ipv4Src,
    /// IPv4 destination address.
    Ipv4Dst,
    /// IPv6 source address.
    Ipv6Src,
    /// IPv6 destination address.
    Ipv6Dst,
    /// IPv6 flow label, 20 bits.
    Ipv6Label,
    /// IP protocol / IPv6 next header (after extension headers), 8 bits.
    IpProto,
    /// DSCP, the 6 high bits of the TOS/traffic-class byte, as a value 0..=63.
    IpDscp,
    /// ECN, the 2 low bits of the TOS/traffic-class byte.
    IpEcn,
    /// IPv4 TTL / IPv6 hop limit.
    IpTtl,
    /// Fragment flags (see [`nw_frag`]), 2 bits.
    IpFrag,
    // --- ARP ---
    /// ARP opcode, 16 bits.
    ArpOp,
    /// ARP sender protocol address.
    ArpSpa,
    /// ARP target protocol address.
    ArpTpa,
    /// ARP sender hardware address.
    ArpSha,
    /// ARP target hardware address.
    ArpTha,
    // --- transport ---
    /// TCP source port.
    TcpSrc,
    /// TCP destination port.
    TcpDst,
    /// TCP flags, 12 bits.
    TcpFlags,
    /// UDP source port.
    UdpSrc,
    /// UDP destination port.
    UdpDst,
    /// SCTP source port.
    SctpSrc,
    /// SCTP destination port.
    SctpDst,
    /// ICMPv4 type.
    IcmpType,
    /// ICMPv4 code.
    IcmpCode,
    /// ICMPv6 type.
    Icmpv6Type,
    /// ICMPv6 code.
    Icmpv6Code,
    /// IPv6 Neighbor Discovery target address.
    NdTarget,
    /// ND source link-layer address option (neighbor solicitation).
    NdSll,
    /// ND target link-layer address option (neighbor advertisement).
    NdTll,
}

/// What must already be matched before a field is meaningful (OpenFlow "prerequisites").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prereq {
    /// Always meaningful.
    None,
    /// `dl_type=0x0800` or `dl_type=0x86dd` (`ip` or `ipv6`).
    IpAny,
    /// `dl_type=0x0800` (`ip`).
    Ipv4,
    /// `dl_type=0x86dd` (`ipv6`).
    Ipv6,
    /// `dl_type=0x0806` or `0x8035` (`arp` or `rarp`).
    Arp,
    /// IP (v4 or v6) with `nw_proto=6`.
    Tcp,
    /// IP (v4 or v6) with `nw_proto=17`.
    Udp,
    /// IP (v4 or v6) with `nw_proto=132`.
    Sctp,
    /// IPv4 with `nw_proto=1`.
    Icmp,
    /// IPv6 with `nw_proto=58`.
    Icmpv6,
    /// ICMPv6 with `icmp_type=135` or `136` (neighbor solicitation or advertisement).
    Nd,
    /// ICMPv6 with `icmp_type=135` (neighbor solicitation).
    NdSolicit,
    /// ICMPv6 with `icmp_type=136` (neighbor advertisement).
    NdAdvert,
}

impl Prereq {
    /// How an error message names the missing prerequisite.
    pub fn describe(self) -> &'static str {
        match self {
            Prereq::None => "nothing",
            Prereq::IpAny => "ip or ipv6 (dl_type=0x0800 or 0x86dd)",
            Prereq::Ipv4 => "ip (dl_type=0x0800)",
            Prereq::Ipv6 => "ipv6 (dl_type=0x86dd)",
            Prereq::Arp => "arp or rarp (dl_type=0x0806 or 0x8035)",
            Prereq::Tcp => "tcp or tcp6 (nw_proto=6)",
            Prereq::Udp => "udp or udp6 (nw_proto=17)",
            Prereq::Sctp => "sctp or sctp6 (nw_proto=132)",
            Prereq::Icmp => "icmp (ip,nw_proto=1)",
            Prereq::Icmpv6 => "icmp6 (ipv6,nw_proto=58)",
            Prereq::Nd => "icmp6 with icmp_type=135 or 136",
            Prereq::NdSolicit => "icmp6 with icmp_type=135",
            Prereq::NdAdvert => "icmp6 with icmp_type=136",
        }
    }
}

/// Static description of one field.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    /// Canonical `ovs-ofctl` name used in matches and `set_field` (`eth_src`, `reg3`, `arp_op`).
    pub name: &'static str,
    /// Width in bits.
    pub width: u8,
    /// NXM name (`NXM_OF_ETH_SRC`), if the field has one.
    pub nxm: Option<&'static str>,
    /// OXM name (`OXM_OF_ETH_SRC`), if the field has one.
    pub oxm: Option<&'static str>,
    /// Required protocol context.
    pub prereq: Prereq,
    /// Whether actions may write it (`set_field`, `load`, `move` destination).
    pub writable: bool,
    /// Whether a match on it may be arbitrarily masked (otherwise only exact or fully wild).
    pub maskable: bool,
}

macro_rules! info {
    ($name:expr, $w:expr, $nxm:expr, $oxm:expr, $pre:ident, $wr:expr, $mask:expr) => {
        FieldInfo {
            name: $name,
            width: $w,
            nxm: $nxm,
            oxm: $oxm,
            prereq: Prereq::$pre,
            writable: $wr,
            maskable: $mask,
        }
    };
}

const REG_NAMES: [&str; 16] = [
    "reg0", "reg1", "reg2", "reg3", "reg4", "reg5", "reg6", "reg7", "reg8", "reg9", "reg10",
    "reg11", "reg12", "reg13", "reg14", "reg15",
];
const REG_NXM: [&str; 16] = [
    "NXM_NX_REG0",
    "NXM_NX_REG1",
    "NXM_NX_REG2",
    "NXM_NX_REG3",
    "NXM_NX_REG4",
    "NXM_NX_REG5",
    "NXM_NX_REG6",
    "NXM_NX_REG7",
    "NXM_NX_REG8",
    "NXM_NX_REG9",
    "NXM_NX_REG10",
    "NXM_NX_REG11",
    "NXM_NX_REG12",
    "NXM_NX_REG13",
    "NXM_NX_REG14",
    "NXM_NX_REG15",
];
const XREG_NAMES: [&str; 8] = [
    "xreg0", "xreg1", "xreg2", "xreg3", "xreg4", "xreg5", "xreg6", "xreg7",
];
const XREG_OXM: [&str; 8] = [
    "OXM_OF_PKT_REG0",
    "OXM_OF_PKT_REG1",
    "OXM_OF_PKT_REG2",
    "OXM_OF_PKT_REG3",
    "OXM_OF_PKT_REG4",
    "OXM_OF_PKT_REG5",
    "OXM_OF_PKT_REG6",
    "OXM_OF_PKT_REG7",
];

impl Field {
    /// Every field, registers expanded, in canonical order.
    pub fn all() -> impl Iterator<Item = Field> {
        use Field::*;
        let head = [InPort, TunId, TunSrc, TunDst, Metadata];
        let regs = (0..16u8).map(Reg);
        let xregs = (0..8u8).map(Xreg);
        let tail = [
            PktMark, CtState, CtZone, CtMark, CtLabel, EthSrc, EthDst, EthType, VlanTci, Ipv4Src,
            Ipv4Dst, Ipv6Src, Ipv6Dst, Ipv6Label, IpProto, IpDscp, IpEcn, IpTtl, IpFrag, ArpOp,
            ArpSpa, ArpTpa, ArpSha, ArpTha, TcpSrc, TcpDst, TcpFlags, UdpSrc, UdpDst, SctpSrc,
            SctpDst, IcmpType, IcmpCode, Icmpv6Type, Icmpv6Code, NdTarget, NdSll, NdTll,
        ];
        head.into_iter().chain(regs).chain(xregs).chain(tail)
    }

    /// The field's static description.
    pub fn info(self) -> FieldInfo {
        use Field::*;
        match self {
            InPort => info!(
                "in_port",
                32,
                Some("NXM_OF_IN_PORT"),
                Some("OXM_OF_IN_PORT"),
                None,
                true,
                false
            ),
            TunId => info!(
                "tun_id",
                64,
                Some("NXM_NX_TUN_ID"),
                Some("OXM_OF_TUNNEL_ID"),
                None,
                true,
                true
            ),
            TunSrc => info!(
                "tun_src",
                32,
                Some("NXM_NX_TUN_IPV4_SRC"),
                None,
                None,
                true,
                true
            ),
            TunDst => info!(
                "tun_dst",
                32,
                Some("NXM_NX_TUN_IPV4_DST"),
                None,
                None,
                true,
                true
            ),
            Metadata => info!(
                "metadata",
                64,
                None,
                Some("OXM_OF_METADATA"),
                None,
                true,
                true
            ),
            Reg(i) => info!(
                REG_NAMES[(i & 15) as usize],
                32,
                Some(REG_NXM[(i & 15) as usize]),
                None,
                None,
                true,
                true
            ),
            Xreg(i) => info!(
                XREG_NAMES[(i & 7) as usize],
                64,
                None,
                Some(XREG_OXM[(i & 7) as usize]),
                None,
                true,
                true
            ),
            PktMark => info!(
                "pkt_mark",
                32,
                Some("NXM_NX_PKT_MARK"),
                None,
                None,
                true,
                true
            ),
            CtState => info!(
                "ct_state",
                32,
                Some("NXM_NX_CT_STATE"),
                None,
                None,
                false,
                true
            ),
            CtZone => info!(
                "ct_zone",
                16,
                Some("NXM_NX_CT_ZONE"),
                None,
                None,
                false,
                false
            ),
            CtMark => info!(
                "ct_mark",
                32,
                Some("NXM_NX_CT_MARK"),
                None,
                None,
                true,
                true
            ),
            CtLabel => info!(
                "ct_label",
                128,
                Some("NXM_NX_CT_LABEL"),
                None,
                None,
                true,
                true
            ),
            EthSrc => info!(
                "eth_src",
                48,
                Some("NXM_OF_ETH_SRC"),
                Some("OXM_OF_ETH_SRC"),
                None,
                true,
                true
            ),
            EthDst => info!(
                "eth_dst",
                48,
                Some("NXM_OF_ETH_DST"),
                Some("OXM_OF_ETH_DST"),
                None,
                true,
                true
            ),
            EthType => info!(
                "eth_type",
                16,
                Some("NXM_OF_ETH_TYPE"),
                Some("OXM_OF_ETH_TYPE"),
                None,
                false,
                false
            ),
            VlanTci => info!(
                "vlan_tci",
                16,
                Some("NXM_OF_VLAN_TCI"),
                None,
                None,
                true,
                true
            ),
            Ipv4Src => info!(
                "ip_src",
                32,
                Some("NXM_OF_IP_SRC"),
                Some("OXM_OF_IPV4_SRC"),
                Ipv4,
                true,
                true
            ),
            Ipv4Dst => info!(
                "ip_dst",
                32,
                Some("NXM_OF_IP_DST"),
                Some("OXM_OF_IPV4_DST"),
                Ipv4,
                true,
                true
            ),
            Ipv6Src => info!(
                "ipv6_src",
                128,
                Some("NXM_NX_IPV6_SRC"),
                Some("OXM_OF_IPV6_SRC"),
                Ipv6,
                true,
                true
            ),
            Ipv6Dst => info!(
                "ipv6_dst",
                128,
                Some("NXM_NX_IPV6_DST"),
                Some("OXM_OF_IPV6_DST"),
                Ipv6,
                true,
                true
            ),
            Ipv6Label => info!(
                "ipv6_label",
                20,
                Some("NXM_NX_IPV6_LABEL"),
                Some("OXM_OF_IPV6_FLABEL"),
                Ipv6,
                true,
                true
            ),
            IpProto => info!(
                "nw_proto",
                8,
                Some("NXM_OF_IP_PROTO"),
                Some("OXM_OF_IP_PROTO"),
                IpAny,
                false,
                false
            ),
            IpDscp => info!(
                "ip_dscp",
                6,
                Some("NXM_OF_IP_TOS"),
                Some("OXM_OF_IP_DSCP"),
                IpAny,
                true,
                false
            ),
            IpEcn => info!(
                "nw_ecn",
                2,
                Some("NXM_NX_IP_ECN"),
                Some("OXM_OF_IP_ECN"),
                IpAny,
                true,
                false
            ),
            IpTtl => info!("nw_ttl", 8, Some("NXM_NX_IP_TTL"), None, IpAny, true, false),
            IpFrag => info!(
                "nw_frag",
                2,
                Some("NXM_NX_IP_FRAG"),
                None,
                IpAny,
                false,
                true
            ),
            ArpOp => info!(
                "arp_op",
                16,
                Some("NXM_OF_ARP_OP"),
                Some("OXM_OF_ARP_OP"),
                Arp,
                true,
                false
            ),
            ArpSpa => info!(
                "arp_spa",
                32,
                Some("NXM_OF_ARP_SPA"),
                Some("OXM_OF_ARP_SPA"),
                Arp,
                true,
                true
            ),
            ArpTpa => info!(
                "arp_tpa",
                32,
                Some("NXM_OF_ARP_TPA"),
                Some("OXM_OF_ARP_TPA"),
                Arp,
                true,
                true
            ),
            ArpSha => info!(
                "arp_sha",
                48,
                Some("NXM_NX_ARP_SHA"),
                Some("OXM_OF_ARP_SHA"),
                Arp,
                true,
                true
            ),
            ArpTha => info!(
                "arp_tha",
                48,
                Some("NXM_NX_ARP_THA"),
                Some("OXM_OF_ARP_THA"),
                Arp,
                true,
                true
            ),
            TcpSrc => info!(
                "tcp_src",
                16,
                Some("NXM_OF_TCP_SRC"),
                Some("OXM_OF_TCP_SRC"),
                Tcp,
                true,
                true
            ),
            TcpDst => info!(
                "tcp_dst",
                16,
                Some("NXM_OF_TCP_DST"),
                Some("OXM_OF_TCP_DST"),
                Tcp,
                true,
                true
            ),
            TcpFlags => info!(
                "tcp_flags",
                12,
                Some("NXM_NX_TCP_FLAGS"),
                Some("ONFOXM_ET_TCP_FLAGS"),
                Tcp,
                false,
                true
            ),
            UdpSrc => info!(
                "udp_src",
                16,
                Some("NXM_OF_UDP_SRC"),
                Some("OXM_OF_UDP_SRC"),
                Udp,
                true,
                true
            ),
            UdpDst => info!(
                "udp_dst",
                16,
                Some("NXM_OF_UDP_DST"),
                Some("OXM_OF_UDP_DST"),
                Udp,
                true,
                true
            ),
            SctpSrc => info!(
                "sctp_src",
                16,
                None,
                Some("OXM_OF_SCTP_SRC"),
                Sctp,
                true,
                true
            ),
            SctpDst => info!(
                "sctp_dst",
                16,
                None,
                Some("OXM_OF_SCTP_DST"),
                Sctp,
                true,
                true
            ),
            IcmpType => info!(
                "icmp_type",
                8,
                Some("NXM_OF_ICMP_TYPE"),
                Some("OXM_OF_ICMPV4_TYPE"),
                Icmp,
                true,
                false
            ),
            IcmpCode => info!(
                "icmp_code",
                8,
                Some("NXM_OF_ICMP_CODE"),
                Some("OXM_OF_ICMPV4_CODE"),
                Icmp,
                true,
                false
            ),
            Icmpv6Type => info!(
                "icmpv6_type",
                8,
                Some("NXM_NX_ICMPV6_TYPE"),
                Some("OXM_OF_ICMPV6_TYPE"),
                Icmpv6,
                true,
                false
            ),
            Icmpv6Code => info!(
                "icmpv6_code",
                8,
                Some("NXM_NX_ICMPV6_CODE"),
                Some("OXM_OF_ICMPV6_CODE"),
                Icmpv6,
                true,
                false
            ),
            NdTarget => info!(
                "nd_target",
                128,
                Some("NXM_NX_ND_TARGET"),
                Some("OXM_OF_IPV6_ND_TARGET"),
                Nd,
                true,
                true
            ),
            NdSll => info!(
                "nd_sll",
                48,
                Some("NXM_NX_ND_SLL"),
                Some("OXM_OF_IPV6_ND_SLL"),
                NdSolicit,
                true,
                true
            ),
            NdTll => info!(
                "nd_tll",
                48,
                Some("NXM_NX_ND_TLL"),
                Some("OXM_OF_IPV6_ND_TLL"),
                NdAdvert,
                true,
                true
            ),
        }
    }

    /// Width in bits.
    pub fn width(self) -> u8 {
        self.info().width
    }

    /// A mask with all `width()` bits set.
    pub fn full_mask(self) -> u128 {
        ones(self.width())
    }

    /// Look a field up by any name an operator may write: ofctl names and their aliases
    /// (`dl_src`, `nw_src`, `tp_dst`-style names are resolved by the parser, which knows the
    /// protocol), NXM names and OXM names.
    pub fn by_name(name: &str) -> Option<Field> {
        Field::all().find(|f| {
            let i = f.info();
            i.name == name || i.nxm == Some(name) || i.oxm == Some(name)
        })
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.info().name)
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Field::by_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown field {name:?}")))
    }
}

/// `n` low bits set (`n` up to 128).
pub fn ones(n: u8) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// `ct_state` flag bits, as in Open vSwitch, in the order `ovs-ofctl` prints them.
pub mod ct_state {
    /// Beginning of a new connection.
    pub const NEW: u32 = 0x01;
    /// Part of an established connection.
    pub const EST: u32 = 0x02;
    /// Related to an established connection.
    pub const REL: u32 = 0x04;
    /// In the reply direction.
    pub const RPL: u32 = 0x08;
    /// Invalid: could not be tracked.
    pub const INV: u32 = 0x10;
    /// Went through conntrack.
    pub const TRK: u32 = 0x20;
    /// Source-NATed.
    pub const SNAT: u32 = 0x40;
    /// Destination-NATed.
    pub const DNAT: u32 = 0x80;
    /// Flag names in bit order.
    pub const NAMES: [(u32, &str); 8] = [
        (NEW, "new"),
        (EST, "est"),
        (REL, "rel"),
        (RPL, "rpl"),
        (INV, "inv"),
        (TRK, "trk"),
        (SNAT, "snat"),
        (DNAT, "dnat"),
    ];
}

/// `nw_frag` bits, as in Open vSwitch.
pub mod nw_frag {
    /// The packet is a fragment (first or later).
    pub const ANY: u8 = 0x01;
    /// The packet is a fragment with nonzero offset.
    pub const LATER: u8 = 0x02;
}

/// TCP flag bits as matched by `tcp_flags` (low 12 bits of the TCP header's offset/flags word).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS.
    pub const NS: u16 = 0x100;
}

/// 802.1Q TCI bit that marks "a VLAN header is present" in [`Field::VlanTci`] (OVS's VLAN_CFI).
pub const VLAN_PRESENT: u16 = 0x1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_resolve_back() {
        let mut seen = std::collections::HashSet::new();
        for f in Field::all() {
            let i = f.info();
            assert!(seen.insert(i.name), "duplicate name {}", i.name);
            assert_eq!(Field::by_name(i.name), Some(f));
            if let Some(n) = i.nxm {
                // xregN has no NXM name; regN NXM names are unique.
                assert_eq!(Field::by_name(n), Some(f), "{n}");
            }
        }
        assert_eq!(Field::by_name("NXM_OF_ARP_OP"), Some(Field::ArpOp));
        assert_eq!(Field::by_name("NXM_NX_REG3"), Some(Field::Reg(3)));
        assert_eq!(Field::by_name("nope"), None);
    }

    #[test]
    fn masks_cover_width() {
        assert_eq!(Field::EthSrc.full_mask(), 0xffff_ffff_ffff);
        assert_eq!(Field::CtLabel.full_mask(), u128::MAX);
        assert_eq!(Field::IpFrag.full_mask(), 3);
    }
}
