//! Field names as operators write them: `ovs-ofctl` names, legacy aliases (`dl_src`,
//! `nw_dst`), NXM and OXM names, and subfield syntax (`NXM_NX_REG3[0..15]`).

use super::ast::Subfield;
use super::field::Field;

/// Legacy or alternative names that always mean one field, whatever the protocol.
const ALIASES: &[(&str, Field)] = &[
    ("dl_src", Field::EthSrc),
    ("dl_dst", Field::EthDst),
    ("dl_type", Field::EthType),
    ("ip_src", Field::Ipv4Src),
    ("ip_dst", Field::Ipv4Dst),
    ("ip_proto", Field::IpProto),
    ("ip_ecn", Field::IpEcn),
    ("ip_ttl", Field::IpTtl),
    ("ip_frag", Field::IpFrag),
    ("tunnel_id", Field::TunId),
    ("tun_ipv4_src", Field::TunSrc),
    ("tun_ipv4_dst", Field::TunDst),
    ("icmpv4_type", Field::IcmpType),
    ("icmpv4_code", Field::IcmpCode),
    ("ipv6_flabel", Field::Ipv6Label),
];

/// How a field's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `aa:bb:cc:dd:ee:ff`.
    Mac,
    /// Dotted quad, masks as prefix length or dotted mask.
    Ipv4,
    /// IPv6 text, masks as prefix length or address.
    Ipv6,
    /// Integer printed in hex (`0x43e`; `0` for zero).
    Hex,
    /// Integer printed in decimal when exact.
    Dec,
}

/// The value syntax of `f` (special fields such as `ct_state` are handled by their callers).
pub fn kind(f: Field) -> Kind {
    use Field::*;
    match f {
        EthSrc | EthDst | ArpSha | ArpTha | NdSll | NdTll => Kind::Mac,
        TunSrc | TunDst | Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa => Kind::Ipv4,
        Ipv6Src | Ipv6Dst | NdTarget => Kind::Ipv6,
        TunId | Metadata | Reg(_) | Xreg(_) | PktMark | CtMark | CtLabel | CtState | TcpFlags
        | Ipv6Label | EthType | VlanTci | IpFrag => Kind::Hex,
        InPort | CtZone | IpProto | IpDscp | IpEcn | IpTtl | ArpOp | TcpSrc | TcpDst | UdpSrc
        | UdpDst | SctpSrc | SctpDst | IcmpType | IcmpCode | Icmpv6Type | Icmpv6Code => Kind::Dec,
    }
}

/// Parse `value[/mask]` for field `f` according to its [`Kind`].
pub fn parse_value_masked(f: Field, s: &str) -> Result<(u128, u128), String> {
    use super::value::*;
    match kind(f) {
        Kind::Mac => parse_mac_masked(s),
        Kind::Ipv4 => parse_ipv4_masked(s),
        Kind::Ipv6 => parse_ipv6_masked(s),
        Kind::Hex | Kind::Dec => parse_uint_masked(s, f.width()),
    }
}

/// Format an exact value of `f` (no mask) as `set_field` and matches print it.
pub fn format_value(f: Field, v: u128) -> String {
    use super::value::*;
    match kind(f) {
        Kind::Mac => format_mac(v),
        Kind::Ipv4 => format_ipv4(v),
        Kind::Ipv6 => format_ipv6(v),
        Kind::Hex => format_hex(v),
        Kind::Dec => v.to_string(),
    }
}

/// The 16-bit NXM name of `in_port`.
const NXM_IN_PORT: &str = "NXM_OF_IN_PORT";

/// Resolve a name that denotes exactly one field (canonical, alias, NXM or OXM). Names whose
/// meaning depends on the protocol (`tp_src`, `nw_src` on ARP, `icmp_type` on ICMPv6) are the
/// caller's business.
pub fn field_by_name(name: &str) -> Option<Field> {
    if let Some(f) = Field::by_name(name) {
        return Some(f);
    }
    ALIASES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The name used when printing a field inside `load:`/`move:`/`output:` (NXM if it has one,
/// else OXM, else the plain name), as `ovs-ofctl` does.
pub fn subfield_name(f: Field) -> &'static str {
    let i = f.info();
    i.nxm.or(i.oxm).unwrap_or(i.name)
}

/// Parse `NAME`, `NAME[]`, `NAME[N]` or `NAME[A..B]`. `resolve` maps the name to a field
/// (lets the match parser resolve `tp_src` by protocol).
pub fn parse_subfield_with(
    s: &str,
    resolve: &dyn Fn(&str) -> Option<Field>,
) -> Result<Subfield, String> {
    let (name, range) = match s.find('[') {
        Some(i) => {
            let Some(r) = s[i + 1..].strip_suffix(']') else {
                return Err(format!("{s}: missing `]` in subfield"));
            };
            (&s[..i], Some(r))
        }
        None => (s, None),
    };
    if name == "NXM_OF_IP_TOS" {
        // The NXM field is the whole TOS byte; our field is the 6-bit DSCP value.
        return Err(format!(
            "{name} is the 8-bit TOS byte and cannot be used as a subfield; use ip_dscp"
        ));
    }
    let field = resolve(name).ok_or_else(|| format!("{name}: unknown field"))?;
    let width = if name == NXM_IN_PORT || name == "in_port" {
        // The NXM flavour of in_port is the OpenFlow 1.0 16-bit port number.
        16
    } else {
        u32::from(field.width())
    };
    let (ofs, n_bits) = match range {
        None | Some("") => (0, width),
        Some(r) => {
            let num = |t: &str| -> Result<u32, String> {
                if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) || t.len() > 4 {
                    return Err(format!("{s}: bad bit index `{t}`"));
                }
                t.parse::<u32>().map_err(|_| format!("{s}: bad bit index"))
            };
            let (a, b) = match r.split_once("..") {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let a = num(r)?;
                    (a, a)
                }
            };
            if a > b {
                return Err(format!("{s}: start bit {a} is greater than end bit {b}"));
            }
            if b >= width {
                return Err(format!(
                    "{s}: bit {b} is out of range for {} ({width} bits)",
                    field.info().name
                ));
            }
            (a, b - a + 1)
        }
    };
    Ok(Subfield {
        field,
        ofs: ofs as u8,
        n_bits: n_bits as u8,
    })
}

/// Parse a subfield whose field name is unambiguous.
pub fn parse_subfield(s: &str) -> Result<Subfield, String> {
    parse_subfield_with(s, &field_by_name)
}

/// `NXM_NX_REG3[0..15]`, `NXM_OF_ETH_DST[]`, `NXM_OF_TCP_SRC[5]`.
pub fn format_subfield(sf: &Subfield) -> String {
    let mut name = match sf.field {
        // NXM_OF_IP_TOS is the TOS byte; the 6-bit DSCP has only the OXM name.
        Field::IpDscp => "OXM_OF_IP_DSCP",
        f => subfield_name(f),
    };
    let mut whole = sf.is_whole();
    if sf.field == Field::InPort {
        // 16-bit views print with the NXM name (as written), wider ones with the OXM name.
        if u32::from(sf.ofs) + u32::from(sf.n_bits) <= 16 {
            name = NXM_IN_PORT;
            whole = sf.ofs == 0 && sf.n_bits == 16;
        } else {
            name = "OXM_OF_IN_PORT";
        }
    }
    if whole {
        format!("{name}[]")
    } else if sf.n_bits == 1 {
        format!("{name}[{}]", sf.ofs)
    } else {
        format!(
            "{name}[{}..{}]",
            sf.ofs,
            u32::from(sf.ofs) + u32::from(sf.n_bits) - 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subfields() {
        let sf = parse_subfield("NXM_NX_REG3[0..15]").unwrap();
        assert_eq!((sf.field, sf.ofs, sf.n_bits), (Field::Reg(3), 0, 16));
        assert_eq!(format_subfield(&sf), "NXM_NX_REG3[0..15]");
        let sf = parse_subfield("eth_src").unwrap();
        assert!(sf.is_whole());
        assert_eq!(format_subfield(&sf), "NXM_OF_ETH_SRC[]");
        let sf = parse_subfield("reg0[5]").unwrap();
        assert_eq!(format_subfield(&sf), "NXM_NX_REG0[5]");
        assert!(parse_subfield("reg0[0..32]").is_err());
        assert!(parse_subfield("reg0[5..4]").is_err());
        assert!(parse_subfield("bogus[]").is_err());
        assert!(parse_subfield("reg0[0..").is_err());
        assert_eq!(
            format_subfield(&parse_subfield("xreg1[0..3]").unwrap()),
            "OXM_OF_PKT_REG1[0..3]"
        );
    }
}
