//! Match tokens → [`Match`]: shorthands, legacy names, protocol-dependent names (`tp_dst`),
//! VLAN and TOS views, flag syntaxes, subfield matches and prerequisite checks.

use super::ast::Match;
use super::field::{ct_state, nw_frag, ones, tcp_flags, Field, Prereq, VLAN_PRESENT};
use super::lexer::Token;
use super::names::{self, field_by_name};
use super::parse::FlowError;
use super::value::{parse_uint, parse_uint_width};
use std::collections::BTreeMap;

/// Ethertypes the shorthands and prerequisites talk about.
pub const ETH_IP: u128 = 0x0800;
/// IPv6 ethertype.
pub const ETH_IPV6: u128 = 0x86dd;
/// ARP ethertype.
pub const ETH_ARP: u128 = 0x0806;
/// RARP ethertype.
pub const ETH_RARP: u128 = 0x8035;

/// `(name, dl_type, nw_proto)` for every protocol shorthand.
pub const SHORTHANDS: &[(&str, u128, Option<u128>)] = &[
    ("ip", ETH_IP, None),
    ("ipv6", ETH_IPV6, None),
    ("icmp", ETH_IP, Some(1)),
    ("icmp6", ETH_IPV6, Some(58)),
    ("tcp", ETH_IP, Some(6)),
    ("tcp6", ETH_IPV6, Some(6)),
    ("udp", ETH_IP, Some(17)),
    ("udp6", ETH_IPV6, Some(17)),
    ("sctp", ETH_IP, Some(132)),
    ("sctp6", ETH_IPV6, Some(132)),
    ("arp", ETH_ARP, None),
    ("rarp", ETH_RARP, None),
    ("mpls", 0x8847, None),
    ("mplsm", 0x8848, None),
];

/// TCP flag names in bit order (as `ovs-ofctl` prints them).
pub const TCP_FLAG_NAMES: [(u32, &str); 9] = [
    (tcp_flags::FIN as u32, "fin"),
    (tcp_flags::SYN as u32, "syn"),
    (tcp_flags::RST as u32, "rst"),
    (tcp_flags::PSH as u32, "psh"),
    (tcp_flags::ACK as u32, "ack"),
    (tcp_flags::URG as u32, "urg"),
    (tcp_flags::ECE as u32, "ece"),
    (tcp_flags::CWR as u32, "cwr"),
    (tcp_flags::NS as u32, "ns"),
];

/// `nw_frag` keywords and their `(value, mask)`.
pub const FRAG_NAMES: [(&str, u8, u8); 5] = [
    ("no", 0, nw_frag::ANY),
    ("yes", nw_frag::ANY, nw_frag::ANY),
    ("first", nw_frag::ANY, nw_frag::ANY | nw_frag::LATER),
    (
        "later",
        nw_frag::ANY | nw_frag::LATER,
        nw_frag::ANY | nw_frag::LATER,
    ),
    ("not_later", 0, nw_frag::LATER),
];

/// All valid `ct_state` bits.
pub const CT_STATE_ALL: u128 = 0xff;

fn err(tok: &Token<'_>, msg: impl Into<String>) -> FlowError {
    FlowError {
        token: tok.raw.to_string(),
        message: msg.into(),
    }
}

/// Builds a [`Match`] from tokens, remembering which token introduced each field so that
/// prerequisite errors can point at it.
#[derive(Default)]
pub struct MatchBuilder<'a> {
    m: Match,
    origin: BTreeMap<Field, Token<'a>>,
}

impl<'a> MatchBuilder<'a> {
    /// Parse all match tokens (order-independent).
    pub fn build(tokens: &[Token<'a>]) -> Result<Match, FlowError> {
        let mut b = MatchBuilder::default();
        // Pass 1: what decides the protocol (shorthands, dl_type, nw_proto), so that
        // `tp_dst=22,tcp` resolves like `tcp,tp_dst=22`.
        let mut rest = Vec::new();
        for t in tokens {
            if !b.protocol_token(t)? {
                rest.push(t);
            }
        }
        for t in rest {
            b.token(t)?;
        }
        b.normalize_vlan();
        b.check_prereqs()?;
        Ok(b.m)
    }

    fn set(&mut self, tok: &Token<'a>, f: Field, v: u128, m: u128) -> Result<(), FlowError> {
        if !self.m.set(f, v, m) {
            return Err(err(
                tok,
                format!(
                    "{} contradicts an earlier match on {}",
                    tok.raw,
                    f.info().name
                ),
            ));
        }
        self.origin.entry(f).or_insert_with(|| tok.clone());
        Ok(())
    }

    /// Handle a shorthand, `dl_type` or `nw_proto` token; `false` if it is something else.
    fn protocol_token(&mut self, t: &Token<'a>) -> Result<bool, FlowError> {
        if t.value.is_none() {
            if let Some((_, dl, proto)) = SHORTHANDS.iter().find(|(n, _, _)| *n == t.key) {
                self.set(t, Field::EthType, *dl, 0xffff)?;
                if let Some(p) = proto {
                    self.set(t, Field::IpProto, *p, 0xff)?;
                }
                return Ok(true);
            }
            return Ok(false);
        }
        let f = match t.key {
            "dl_type" | "eth_type" | "NXM_OF_ETH_TYPE" | "OXM_OF_ETH_TYPE" => Field::EthType,
            "nw_proto" | "ip_proto" | "NXM_OF_IP_PROTO" | "OXM_OF_IP_PROTO" => Field::IpProto,
            _ => return Ok(false),
        };
        let s = t.value.unwrap_or("");
        let v = parse_uint_width(s, f.width()).map_err(|e| err(t, e))?;
        self.set(t, f, v, f.full_mask())?;
        Ok(true)
    }

    fn dl_type(&self) -> Option<u128> {
        self.m.exact(Field::EthType)
    }

    /// Resolve names whose field depends on the protocol.
    fn resolve(&self, name: &str) -> Option<Field> {
        let proto = self.m.exact(Field::IpProto);
        let v6 = self.dl_type() == Some(ETH_IPV6);
        let arp = matches!(self.dl_type(), Some(ETH_ARP | ETH_RARP));
        let tp = |tcp, udp, sctp| match proto {
            Some(6) => Some(tcp),
            Some(17) => Some(udp),
            Some(132) => Some(sctp),
            _ => None,
        };
        match name {
            "tp_src" => tp(Field::TcpSrc, Field::UdpSrc, Field::SctpSrc),
            "tp_dst" => tp(Field::TcpDst, Field::UdpDst, Field::SctpDst),
            "icmp_type" => Some(if v6 {
                Field::Icmpv6Type
            } else {
                Field::IcmpType
            }),
            "icmp_code" => Some(if v6 {
                Field::Icmpv6Code
            } else {
                Field::IcmpCode
            }),
            "nw_src" => Some(if arp { Field::ArpSpa } else { Field::Ipv4Src }),
            "nw_dst" => Some(if arp { Field::ArpTpa } else { Field::Ipv4Dst }),
            "nw_ttl" => Some(Field::IpTtl),
            "nw_ecn" => Some(Field::IpEcn),
            "nw_frag" => Some(Field::IpFrag),
            _ => field_by_name(name),
        }
    }

    fn token(&mut self, t: &Token<'a>) -> Result<(), FlowError> {
        let Some(val) = t.value else {
            return Err(err(t, format!("unknown keyword `{}`", t.key)));
        };
        if val.is_empty() {
            return Err(err(t, format!("{}: missing value", t.key)));
        }
        if t.key.contains('[') {
            return self.subfield_match(t, val);
        }
        match t.key {
            "dl_vlan" => {
                let v = parse_uint_width(val, 16).map_err(|e| err(t, e))?;
                if v == 0xffff {
                    return self.set(t, Field::VlanTci, 0, 0xffff);
                }
                if v > 0xfff {
                    return Err(err(t, format!("{val}: VLAN ID out of range (0..4095)")));
                }
                return self.set(t, Field::VlanTci, v | u128::from(VLAN_PRESENT), 0x1fff);
            }
            "dl_vlan_pcp" | "vlan_pcp" => {
                let v = parse_uint_width(val, 8).map_err(|e| err(t, e))?;
                if v > 7 {
                    return Err(err(t, format!("{val}: VLAN priority out of range (0..7)")));
                }
                return self.set(t, Field::VlanTci, (v << 13) | 0x1000, 0xf000);
            }
            "vlan_vid" => {
                let (v, m) = super::value::parse_uint_masked(val, 13).map_err(|e| err(t, e))?;
                return self.set(t, Field::VlanTci, v, m);
            }
            "nw_tos" | "NXM_OF_IP_TOS" => {
                let v = parse_uint_width(val, 8).map_err(|e| err(t, e))?;
                return self.set(t, Field::IpDscp, v >> 2, 0x3f);
            }
            "ip_dscp" => {
                let v = parse_uint_width(val, 6).map_err(|e| err(t, e))?;
                return self.set(t, Field::IpDscp, v, 0x3f);
            }
            "nw_frag" | "ip_frag" => {
                if val.starts_with(|c: char| c.is_ascii_digit()) {
                    // The numeric form the printer falls back to for unnamed combinations.
                    let (v, m) = super::value::parse_uint_masked(val, 2).map_err(|e| err(t, e))?;
                    return self.set(t, Field::IpFrag, v, m);
                }
                let (_, v, m) = FRAG_NAMES
                    .iter()
                    .find(|(n, _, _)| *n == val)
                    .ok_or_else(|| {
                        err(
                            t,
                            format!(
                                "{val}: unknown fragment type (no, yes, first, later, not_later)"
                            ),
                        )
                    })?;
                return self.set(t, Field::IpFrag, u128::from(*v), u128::from(*m));
            }
            "tcp_flags" | "NXM_NX_TCP_FLAGS" | "ONFOXM_ET_TCP_FLAGS" => {
                let (v, m) = parse_flags(val, &TCP_FLAG_NAMES, 0xfff, 0xfff)
                    .map_err(|e| err(t, format!("{val}: {e}")))?;
                return self.set(t, Field::TcpFlags, v, m);
            }
            "ct_state" | "NXM_NX_CT_STATE" => {
                let (v, m) = parse_flags(val, &ct_state::NAMES, CT_STATE_ALL, CT_STATE_ALL)
                    .map_err(|e| err(t, format!("{val}: {e}")))?;
                return self.set(t, Field::CtState, v, m);
            }
            _ => {}
        }
        let f = self.resolve(t.key).ok_or_else(|| {
            if matches!(t.key, "tp_src" | "tp_dst") {
                err(
                    t,
                    format!(
                        "{} requires tcp, udp or sctp (nw_proto=6, 17 or 132)",
                        t.key
                    ),
                )
            } else {
                err(t, format!("unknown field `{}`", t.key))
            }
        })?;
        if f == Field::InPort {
            let p = parse_in_port(val).map_err(|e| err(t, e))?;
            return self.set(t, f, u128::from(p), f.full_mask());
        }
        if matches!(f, Field::EthType | Field::IpProto) {
            // Reached only through unusual spellings; treat like pass 1.
            let v = parse_uint_width(val, f.width()).map_err(|e| err(t, e))?;
            return self.set(t, f, v, f.full_mask());
        }
        let (v, m) = names::parse_value_masked(f, val).map_err(|e| err(t, e))?;
        if !f.info().maskable && m != f.full_mask() && m != 0 {
            return Err(err(
                t,
                format!("{} does not support masking", f.info().name),
            ));
        }
        self.set_field(t, f, v, m)
    }

    /// Set a field, splitting 64-bit `xregN` into its two 32-bit registers (so every way of
    /// writing the same match compares equal).
    fn set_field(&mut self, t: &Token<'a>, f: Field, v: u128, m: u128) -> Result<(), FlowError> {
        if let Field::Xreg(i) = f {
            let i = i & 7;
            self.set(t, Field::Reg(2 * i), v >> 32, m >> 32)?;
            return self.set(t, Field::Reg(2 * i + 1), v & 0xffff_ffff, m & 0xffff_ffff);
        }
        self.set(t, f, v, m)
    }

    fn subfield_match(&mut self, t: &Token<'a>, val: &str) -> Result<(), FlowError> {
        let sf = names::parse_subfield_with(t.key, &|n| self.resolve(n)).map_err(|e| err(t, e))?;
        let v = parse_uint(val).ok_or_else(|| err(t, format!("{val}: invalid value")))?;
        if v & !ones(sf.n_bits) != 0 {
            return Err(err(
                t,
                format!("{val}: value does not fit into {} bits", sf.n_bits),
            ));
        }
        let f = sf.field;
        if !f.info().maskable && !sf.is_whole() {
            return Err(err(
                t,
                format!(
                    "{} does not support matching on part of the field",
                    f.info().name
                ),
            ));
        }
        if matches!(f, Field::CtState) && (v << sf.ofs) & !CT_STATE_ALL != 0 {
            return Err(err(t, format!("{val}: unknown ct_state flag(s)")));
        }
        self.set_field(t, f, v << sf.ofs, ones(sf.n_bits) << sf.ofs)
    }

    /// OpenFlow 1.3 expresses the VLAN as `vlan_vid` (with the present bit) plus `vlan_pcp`
    /// (only when a tag is present), so a TCI match is reduced to what it can express.
    fn normalize_vlan(&mut self) {
        let Some(e) = self.m.get(Field::VlanTci) else {
            return;
        };
        let present_bit = u128::from(VLAN_PRESENT);
        let (mut v, mut m) = (e.value, e.mask);
        if m & present_bit != 0 && v & present_bit == 0 {
            // "No tag": nothing else can be matched.
            v = 0;
            m &= 0x1fff;
        } else if m & present_bit == 0 {
            m &= 0x0fff;
            v &= m;
        }
        self.m.clear(Field::VlanTci);
        self.m.set(Field::VlanTci, v, m);
    }

    fn check_prereqs(&self) -> Result<(), FlowError> {
        // Later fragments carry no TCP/UDP/SCTP header, so port and flag matches can never hit.
        let later = self
            .m
            .get(Field::IpFrag)
            .is_some_and(|e| e.mask & e.value & u128::from(nw_frag::LATER) != 0);
        for (f, _) in self.m.iter() {
            // (ovs-ofctl still lets ICMP fields through on later fragments; so do we.)
            let l4 = matches!(f.info().prereq, Prereq::Tcp | Prereq::Udp | Prereq::Sctp);
            if later && l4 {
                if let Some(tok) = self.origin.get(&f) {
                    return Err(err(
                        tok,
                        format!(
                            "{} cannot match later fragments (nw_frag=later): they have no \
                             transport header",
                            tok.key
                        ),
                    ));
                }
            }
        }
        for (f, _) in self.m.iter() {
            let pre = f.info().prereq;
            if !prereq_holds(&self.m, pre) {
                let tok = self.origin.get(&f).cloned().unwrap_or(Token {
                    raw: "",
                    key: "",
                    value: None,
                });
                return Err(err(
                    &tok,
                    format!("{} requires {}", tok.key, pre.describe()),
                ));
            }
        }
        Ok(())
    }
}

/// Does `m` satisfy `pre`?
pub fn prereq_holds(m: &Match, pre: Prereq) -> bool {
    let dl = m.exact(Field::EthType);
    let proto = m.exact(Field::IpProto);
    let ip_any = matches!(dl, Some(ETH_IP | ETH_IPV6));
    match pre {
        Prereq::None => true,
        Prereq::IpAny => ip_any,
        Prereq::Ipv4 => dl == Some(ETH_IP),
        Prereq::Ipv6 => dl == Some(ETH_IPV6),
        Prereq::Arp => matches!(dl, Some(ETH_ARP | ETH_RARP)),
        Prereq::Tcp => ip_any && proto == Some(6),
        Prereq::Udp => ip_any && proto == Some(17),
        Prereq::Sctp => ip_any && proto == Some(132),
        Prereq::Icmp => dl == Some(ETH_IP) && proto == Some(1),
        Prereq::Icmpv6 => dl == Some(ETH_IPV6) && proto == Some(58),
        Prereq::Nd => {
            prereq_holds(m, Prereq::Icmpv6) && matches!(m.exact(Field::Icmpv6Type), Some(135 | 136))
        }
        Prereq::NdSolicit => {
            prereq_holds(m, Prereq::Icmpv6) && m.exact(Field::Icmpv6Type) == Some(135)
        }
        Prereq::NdAdvert => {
            prereq_holds(m, Prereq::Icmpv6) && m.exact(Field::Icmpv6Type) == Some(136)
        }
    }
}

/// Parse an `in_port` value: a number (OpenFlow 1.0 reserved numbers `0xff00..` are widened
/// to their 32-bit form) or `LOCAL`.
pub fn parse_in_port(s: &str) -> Result<u32, String> {
    if s.eq_ignore_ascii_case("local") {
        return Ok(0xffff_fffe);
    }
    let v = parse_uint(s).ok_or_else(|| format!("{s}: invalid or unknown port for in_port"))?;
    let v = u32::try_from(v).map_err(|_| format!("{s}: port number out of range"))?;
    let v = if (0xff00..=0xffff).contains(&v) {
        v | 0xffff_0000
    } else {
        v
    };
    // Ports are 16-bit inside the switch, as in OVS; LOCAL is the only reserved port a packet
    // can arrive on.
    if v >= 0xff00 && v != 0xffff_fffe {
        return Err(format!("{s}: invalid or unknown port for in_port"));
    }
    Ok(v)
}

/// Parse a flag-set match: `+a-b` (masked: only the named bits), `a|b` or a bare name (exact:
/// all `exact_mask` bits), or an integer with optional mask.
fn parse_flags(
    s: &str,
    table: &[(u32, &str)],
    valid: u128,
    exact_mask: u128,
) -> Result<(u128, u128), String> {
    if s.starts_with('+') || s.starts_with('-') {
        let (mut v, mut m) = (0u128, 0u128);
        let mut rest = s;
        while !rest.is_empty() {
            let plus = rest.starts_with('+');
            if !plus && !rest.starts_with('-') {
                return Err(format!("expected `+` or `-` before `{rest}`"));
            }
            rest = &rest[1..];
            let end = rest.find(['+', '-']).unwrap_or(rest.len());
            let name = &rest[..end];
            rest = &rest[end..];
            let bit = flag_bit(table, name)?;
            if m & bit != 0 {
                return Err(format!("{name}: flag specified more than once"));
            }
            m |= bit;
            if plus {
                v |= bit;
            }
        }
        if m & !valid != 0 {
            return Err("unknown flag(s)".into());
        }
        return Ok((v, m));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let (a, mk) = super::value::split_mask(s);
        let v = parse_uint(a).ok_or_else(|| format!("invalid value `{a}`"))?;
        let m = match mk {
            Some(mk) => parse_uint(mk).ok_or_else(|| format!("invalid mask `{mk}`"))?,
            None => exact_mask,
        };
        if v & !valid != 0 || m & !valid != 0 {
            return Err("unknown flag(s)".into());
        }
        return Ok((v & m, m));
    }
    let mut v = 0u128;
    for name in s.split('|') {
        v |= flag_bit(table, name)?;
    }
    if v & !valid != 0 {
        return Err("unknown flag(s)".into());
    }
    Ok((v, exact_mask))
}

fn flag_bit(table: &[(u32, &str)], name: &str) -> Result<u128, String> {
    // `[200]`: a bit without a name, as the printer writes it.
    if let Some(hex) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return u128::from_str_radix(hex, 16)
            .ok()
            .filter(|b| b.count_ones() == 1 && *b <= 0x800)
            .ok_or_else(|| format!("unknown flag `{name}`"));
    }
    table
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(b, _)| u128::from(*b))
        .ok_or_else(|| format!("unknown flag `{name}`"))
}
