//! Flow text → [`FlowSpec`].
//!
//! The text is split into tokens (see [`super::lexer`]); flow-mod attributes (`table`,
//! `priority`, `cookie`, timeouts, flags) are taken out, the counters of a `dump-flows` line
//! are ignored (so a dump line can be fed back), the rest is the match (see
//! [`super::matches`]) and everything after `actions=` the action list (see
//! [`super::actions`]).
//!
//! # Canonical forms
//!
//! Different spellings of the same flow parse to the same [`FlowSpec`] (so that
//! parse → print → parse is the identity, and so that the dataplane sees one form):
//!
//! * match: `xregN` becomes the two registers `reg2N`/`reg2N+1`; `dl_vlan`, `dl_vlan_pcp`,
//!   `vlan_vid`, `vlan_pcp` become [`Field::VlanTci`](super::field::Field::VlanTci) with the
//!   0x1000 "present" bit, reduced to what OpenFlow 1.3 can express (no PCP without a tag);
//!   `nw_tos` becomes `ip_dscp` (TOS >> 2); `nw_src` on ARP is `arp_spa`;
//! * actions: `drop` is the empty list; `mod_*`, `set_tunnel`, `set_tunnel64` are
//!   [`Action::SetField`](super::ast::Action::SetField) (the parser never produces `Drop` or
//!   `SetTunnel`); a masked `set_field` is one `Load` per run of mask bits and loads wider
//!   than 64 bits are split into 64-bit pieces (as `ovs-ofctl` does); `mod_vlan_vid` and
//!   `mod_vlan_pcp` on an untagged match push a 0x8100 tag first; `ct(zone=0)` has no zone;
//!   `controller(reason=action)` has no reason; `note:` bytes are zero-padded to 6 + 8k;
//!   `NXM_OF_IN_PORT[]` is the 16-bit view of `in_port` (`Subfield { n_bits: 16, .. }`).

use super::actions::parse_actions;
use super::ast::{FlowAttrs, FlowSpec};
use super::lexer::{split_actions, split_kv, split_tokens, Token};
use super::matches::{parse_in_port, MatchBuilder};
use super::value::{parse_uint, parse_uint_width, split_mask};

/// What the flow text is for: an add needs actions; filters for del/dump don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode {
    /// `add-flow`/`add-flows`: actions required; `cookie` mask not allowed.
    Add,
    /// `mod-flows`: actions required; `cookie=V/M` allowed as a filter.
    Modify,
    /// `del-flows`/`dump-flows` filters and `trace` packets: no actions; `cookie=V/M` allowed.
    Filter,
}

/// A rejected flow: the offending token and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at `{token}`)")]
pub struct FlowError {
    /// The token (as written) that could not be accepted.
    pub token: String,
    /// Why.
    pub message: String,
}

impl FlowError {
    fn at(token: &str, message: impl Into<String>) -> Self {
        FlowError {
            token: token.to_string(),
            message: message.into(),
        }
    }
}

/// Counters and ages printed by `dump-flows`: accepted with a value and ignored.
const IGNORED_WITH_VALUE: &[&str] = &[
    "duration",
    "n_packets",
    "n_bytes",
    "idle_age",
    "hard_age",
    "importance",
];

/// Flags printed by `dump-flows` that have no meaning for us: accepted and ignored.
const IGNORED_FLAGS: &[&str] = &["reset_counts", "no_packet_counts", "no_byte_counts"];

/// Parse one flow.
pub fn parse_flow(text: &str, mode: ParseMode) -> Result<FlowSpec, FlowError> {
    let (head, actions_text) = match split_actions(text) {
        Some((h, a)) => (h, Some(a)),
        None => (text, None),
    };
    if actions_text.is_none() && mode != ParseMode::Filter {
        return Err(FlowError::at(
            text.trim(),
            "must specify an action (actions=...)",
        ));
    }
    let mut attrs = FlowAttrs::default();
    let mut match_tokens = Vec::new();
    for raw in split_tokens(head) {
        let t = split_kv(raw, &['=']).map_err(|e| FlowError::at(raw, e))?;
        if !attr_token(&t, &mut attrs, mode)? {
            match_tokens.push(t);
        }
    }
    let matches = MatchBuilder::build(&match_tokens)?;
    let actions = match actions_text {
        Some(a) => Some(parse_actions(a, &matches, attrs.table)?),
        None => None,
    };
    Ok(FlowSpec {
        attrs,
        matches,
        actions,
    })
}

/// A rejected line of a flow file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct FlowFileError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong with it.
    pub error: FlowError,
}

/// Parse a flow file (`ovs-ofctl add-flows` style): one flow per line; blank lines and lines
/// starting with `#` are skipped. Stops at the first bad line.
pub fn parse_flows(text: &str, mode: ParseMode) -> Result<Vec<FlowSpec>, FlowFileError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(i, l)| parse_flow(l, mode).map_err(|error| FlowFileError { line: i + 1, error }))
        .collect()
}

/// Consume a flow-mod attribute or ignorable dump-flows token; `false` if `t` is a match token.
fn attr_token(t: &Token<'_>, a: &mut FlowAttrs, mode: ParseMode) -> Result<bool, FlowError> {
    let raw = t.raw;
    let val = || -> Result<&str, FlowError> {
        t.value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| FlowError::at(raw, format!("{}: missing value", t.key)))
    };
    let int = |w: u8| -> Result<u128, FlowError> {
        parse_uint_width(val()?, w).map_err(|e| FlowError::at(raw, e))
    };
    match t.key {
        "table" => {
            let v = int(8)?;
            if v > 254 {
                return Err(FlowError::at(raw, format!("{v}: invalid table id")));
            }
            a.table = v as u8;
        }
        "priority" => a.priority = int(16)? as u16,
        "idle_timeout" => a.idle_timeout = int(16)? as u16,
        "hard_timeout" => a.hard_timeout = int(16)? as u16,
        "cookie" => {
            let (v, m) = split_mask(val()?);
            let num = |s: &str| {
                parse_uint(s)
                    .and_then(|x| u64::try_from(x).ok())
                    .ok_or_else(|| FlowError::at(raw, format!("{s}: invalid cookie")))
            };
            a.cookie = num(v)?;
            if let Some(m) = m {
                if mode == ParseMode::Add {
                    return Err(FlowError::at(
                        raw,
                        "cookie masking is not allowed when adding flows",
                    ));
                }
                a.cookie_mask = num(m)?;
            }
        }
        "out_port" => {
            if mode != ParseMode::Filter {
                return Err(FlowError::at(raw, "out_port is only allowed in filters"));
            }
            let v = val()?;
            a.out_port = Some(
                parse_in_port(v)
                    .or_else(|_| parse_uint(v).and_then(|x| u32::try_from(x).ok()).ok_or(()))
                    .map_err(|_| FlowError::at(raw, format!("{v}: invalid port")))?,
            );
        }
        "send_flow_rem" | "check_overlap" if t.value.is_none() => {
            if t.key == "send_flow_rem" {
                a.send_flow_rem = true;
            } else {
                a.check_overlap = true;
            }
        }
        k if IGNORED_WITH_VALUE.contains(&k) => {
            val()?;
        }
        k if IGNORED_FLAGS.contains(&k) && t.value.is_none() => {}
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ast::{Action, CtZoneSrc, NatKind, OutputPort, Subfield};
    use crate::flow::field::Field;

    fn add(s: &str) -> FlowSpec {
        parse_flow(s, ParseMode::Add).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn actions(s: &str) -> Vec<Action> {
        add(s).actions.unwrap()
    }

    /// Parse must fail naming `token`, with `msg` in the message.
    fn bad(s: &str, token: &str, msg: &str) {
        let e = parse_flow(s, ParseMode::Add).expect_err(s);
        assert_eq!(e.token, token, "{s}: {e}");
        assert!(
            e.message.contains(msg),
            "{s}: {:?} lacks {msg:?}",
            e.message
        );
    }

    fn exact(s: &str, f: Field) -> Option<u128> {
        add(s).matches.exact(f)
    }

    fn entry(s: &str, f: Field) -> (u128, u128) {
        let e = add(s)
            .matches
            .get(f)
            .unwrap_or_else(|| panic!("{s}: no {f:?}"));
        (e.value, e.mask)
    }

    #[test]
    fn attributes() {
        let f = add("table=20, priority=1024,cookie=0x5,idle_timeout=10,hard_timeout=20,send_flow_rem,check_overlap actions=drop");
        assert_eq!(f.attrs.table, 20);
        assert_eq!(f.attrs.priority, 1024);
        assert_eq!(f.attrs.cookie, 5);
        assert_eq!((f.attrs.idle_timeout, f.attrs.hard_timeout), (10, 20));
        assert!(f.attrs.send_flow_rem && f.attrs.check_overlap);
        assert_eq!(add("actions=drop").attrs, FlowAttrs::default());
        assert_eq!(add("actions=drop").actions, Some(vec![]));
        assert_eq!(add("action=drop").actions, Some(vec![]));
        assert_eq!(add("actions=").actions, Some(vec![]));
    }

    #[test]
    fn dump_counters_are_ignored() {
        let f = add(" cookie=0x0, duration=517.302s, table=30, n_packets=0, n_bytes=0, idle_age=3, hard_age=4, reset_counts priority=1024,ip,in_port=5,nw_dst=192.168.111.223 actions=set_field:88.88.88.4->ip_dst,load:0x43e->NXM_NX_REG3[],goto_table:40");
        assert_eq!(f.attrs.table, 30);
        assert_eq!(f.matches.len(), 3);
        assert_eq!(f.actions.unwrap().len(), 3);
    }

    #[test]
    fn modes() {
        assert!(parse_flow("ip", ParseMode::Filter)
            .unwrap()
            .actions
            .is_none());
        assert!(parse_flow("", ParseMode::Filter)
            .unwrap()
            .matches
            .is_empty());
        let e = parse_flow("ip", ParseMode::Add).unwrap_err();
        assert!(e.message.contains("action"), "{e}");
        assert!(parse_flow("ip", ParseMode::Modify).is_err());
        let f = parse_flow("cookie=0x5/0xff,ip", ParseMode::Filter).unwrap();
        assert_eq!((f.attrs.cookie, f.attrs.cookie_mask), (5, 0xff));
        let f = parse_flow("cookie=0x5/0xff actions=drop", ParseMode::Modify).unwrap();
        assert_eq!(f.attrs.cookie_mask, 0xff);
        bad("cookie=0x5/0xff actions=drop", "cookie=0x5/0xff", "mask");
        let f = parse_flow("out_port=3", ParseMode::Filter).unwrap();
        assert_eq!(f.attrs.out_port, Some(3));
        bad("out_port=3 actions=drop", "out_port=3", "filter");
    }

    #[test]
    fn shorthands() {
        for (s, dl, proto) in [
            ("ip", 0x0800, None),
            ("ipv6", 0x86dd, None),
            ("arp", 0x0806, None),
            ("rarp", 0x8035, None),
            ("icmp", 0x0800, Some(1)),
            ("icmp6", 0x86dd, Some(58)),
            ("tcp", 0x0800, Some(6)),
            ("tcp6", 0x86dd, Some(6)),
            ("udp", 0x0800, Some(17)),
            ("udp6", 0x86dd, Some(17)),
            ("sctp", 0x0800, Some(132)),
            ("sctp6", 0x86dd, Some(132)),
        ] {
            let flow = format!("{s} actions=drop");
            assert_eq!(exact(&flow, Field::EthType), Some(dl), "{s}");
            assert_eq!(exact(&flow, Field::IpProto), proto, "{s}");
        }
        assert_eq!(
            add("dl_type=0x0800,nw_proto=6 actions=drop").matches,
            add("tcp actions=drop").matches
        );
        assert_eq!(
            add("eth_type=0x86dd,ip_proto=17 actions=drop").matches,
            add("udp6 actions=drop").matches
        );
    }

    #[test]
    fn ports_and_ethernet() {
        assert_eq!(exact("in_port=5 actions=drop", Field::InPort), Some(5));
        assert_eq!(
            exact("in_port=LOCAL actions=drop", Field::InPort),
            Some(0xffff_fffe)
        );
        assert_eq!(
            exact("in_port=local actions=drop", Field::InPort),
            Some(0xffff_fffe)
        );
        assert_eq!(
            exact("in_port=65534 actions=drop", Field::InPort),
            Some(0xffff_fffe)
        );
        assert_eq!(
            exact("NXM_OF_IN_PORT=3 actions=drop", Field::InPort),
            Some(3)
        );
        assert_eq!(
            exact("dl_src=FA:16:3e:4b:eb:3c actions=drop", Field::EthSrc),
            Some(0xfa163e4beb3c)
        );
        assert_eq!(
            entry(
                "eth_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop",
                Field::EthDst
            ),
            (0x0100_0000_0000, 0x0100_0000_0000)
        );
        assert_eq!(
            exact("dl_type=0x1234 actions=drop", Field::EthType),
            Some(0x1234)
        );
    }

    #[test]
    fn vlan_views() {
        assert_eq!(
            entry("dl_vlan=5 actions=drop", Field::VlanTci),
            (0x1005, 0x1fff)
        );
        assert_eq!(
            entry("dl_vlan=0xffff actions=drop", Field::VlanTci),
            (0, 0x1fff)
        );
        assert_eq!(
            entry("dl_vlan_pcp=3 actions=drop", Field::VlanTci),
            (0x7000, 0xf000)
        );
        assert_eq!(
            entry("vlan_pcp=3 actions=drop", Field::VlanTci),
            (0x7000, 0xf000)
        );
        assert_eq!(
            entry("dl_vlan=5,dl_vlan_pcp=3 actions=drop", Field::VlanTci),
            (0x7005, 0xffff)
        );
        assert_eq!(
            entry("vlan_tci=0x1000/0x1000 actions=drop", Field::VlanTci),
            (0x1000, 0x1000)
        );
        assert_eq!(
            entry("vlan_tci=0 actions=drop", Field::VlanTci),
            (0, 0x1fff)
        );
        assert_eq!(
            entry("vlan_vid=0x1005 actions=drop", Field::VlanTci),
            (0x1005, 0x1fff)
        );
        bad("dl_vlan=4096 actions=drop", "dl_vlan=4096", "VLAN ID");
        bad("dl_vlan_pcp=8 actions=drop", "dl_vlan_pcp=8", "priority");
    }

    #[test]
    fn ip_fields() {
        assert_eq!(
            exact("ip,nw_dst=1.2.3.4 actions=drop", Field::Ipv4Dst),
            Some(0x01020304)
        );
        assert_eq!(
            entry("ip,nw_src=10.0.0.0/8 actions=drop", Field::Ipv4Src),
            (0x0a00_0000, 0xff00_0000)
        );
        assert_eq!(
            entry(
                "ip,ip_dst=1.2.3.4/255.255.0.255 actions=drop",
                Field::Ipv4Dst
            ),
            (0x0102_0004, 0xffff_00ff)
        );
        assert_eq!(
            exact("ip,nw_tos=0xff actions=drop", Field::IpDscp),
            Some(63)
        );
        assert_eq!(exact("ip,nw_tos=8 actions=drop", Field::IpDscp), Some(2));
        assert_eq!(exact("ip,ip_dscp=46 actions=drop", Field::IpDscp), Some(46));
        // NXM_OF_IP_TOS names the TOS byte, like nw_tos.
        assert_eq!(
            exact("ip,NXM_OF_IP_TOS=0x20 actions=drop", Field::IpDscp),
            Some(8)
        );
        assert_eq!(
            exact("ip,OXM_OF_IPV4_DST=1.2.3.4 actions=drop", Field::Ipv4Dst),
            Some(0x0102_0304)
        );
        assert_eq!(exact("ip,nw_ecn=3 actions=drop", Field::IpEcn), Some(3));
        assert_eq!(exact("ipv6,ip_ecn=1 actions=drop", Field::IpEcn), Some(1));
        assert_eq!(exact("ip,nw_ttl=64 actions=drop", Field::IpTtl), Some(64));
        for (name, v, m) in [
            ("no", 0, 1),
            ("yes", 1, 1),
            ("first", 1, 3),
            ("later", 3, 3),
            ("not_later", 0, 2),
        ] {
            let f = format!("ip,nw_frag={name} actions=drop");
            assert_eq!(entry(&f, Field::IpFrag), (v, m), "{name}");
        }
        assert_eq!(
            entry("ipv6,ipv6_src=2001:db8::/32 actions=drop", Field::Ipv6Src).1,
            0xffff_ffff << 96
        );
        assert_eq!(
            exact("ipv6,ipv6_dst=::1 actions=drop", Field::Ipv6Dst),
            Some(1)
        );
        assert_eq!(
            exact("ipv6,ipv6_label=0x12345 actions=drop", Field::Ipv6Label),
            Some(0x12345)
        );
        assert_eq!(
            exact(
                "icmp6,icmp_type=135,nd_target=fe80::1 actions=drop",
                Field::NdTarget
            ),
            Some(0xfe80 << 112 | 1)
        );
        assert!(
            add("icmp6,icmp_type=135,nd_sll=00:00:00:00:00:01 actions=drop")
                .matches
                .get(Field::NdSll)
                .is_some()
        );
        assert!(
            add("icmp6,icmp_type=136,nd_tll=00:00:00:00:00:01 actions=drop")
                .matches
                .get(Field::NdTll)
                .is_some()
        );
    }

    #[test]
    fn transport_is_order_independent() {
        assert_eq!(exact("tp_dst=22,tcp actions=drop", Field::TcpDst), Some(22));
        assert_eq!(exact("tcp,tp_dst=22 actions=drop", Field::TcpDst), Some(22));
        assert_eq!(
            exact("udp6,tp_src=53 actions=drop", Field::UdpSrc),
            Some(53)
        );
        assert_eq!(exact("sctp,tp_dst=9 actions=drop", Field::SctpDst), Some(9));
        assert_eq!(
            entry("tcp,tcp_src=0x100/0xff00 actions=drop", Field::TcpSrc),
            (0x100, 0xff00)
        );
        assert_eq!(
            exact("udp,udp_dst=53 actions=drop", Field::UdpDst),
            Some(53)
        );
        assert_eq!(
            exact("sctp,sctp_src=7 actions=drop", Field::SctpSrc),
            Some(7)
        );
        assert_eq!(
            exact("icmp,icmp_type=8 actions=drop", Field::IcmpType),
            Some(8)
        );
        assert_eq!(
            exact("icmp,icmpv4_code=1 actions=drop", Field::IcmpCode),
            Some(1)
        );
        assert_eq!(
            exact("icmp6,icmp_type=135 actions=drop", Field::Icmpv6Type),
            Some(135)
        );
        assert_eq!(
            exact("icmp6,icmpv6_code=0 actions=drop", Field::Icmpv6Code),
            Some(0)
        );
    }

    #[test]
    fn tcp_flags_forms() {
        assert_eq!(
            entry("tcp,tcp_flags=+syn-ack actions=drop", Field::TcpFlags),
            (0x002, 0x012)
        );
        assert_eq!(
            entry("tcp,tcp_flags=0x002/0x012 actions=drop", Field::TcpFlags),
            (0x002, 0x012)
        );
        assert_eq!(
            entry("tcp,tcp_flags=syn|ack actions=drop", Field::TcpFlags),
            (0x012, 0xfff)
        );
        assert_eq!(
            entry("tcp,tcp_flags=0x010 actions=drop", Field::TcpFlags),
            (0x010, 0xfff)
        );
        bad(
            "tcp,tcp_flags=+bogus actions=drop",
            "tcp_flags=+bogus",
            "bogus",
        );
    }

    #[test]
    fn arp_fields() {
        let f = "arp,arp_op=1,arp_spa=1.1.1.1,arp_tpa=2.2.2.0/24,arp_sha=00:00:00:00:00:01,arp_tha=00:00:00:00:00:02 actions=drop";
        let m = add(f).matches;
        assert_eq!(m.exact(Field::ArpOp), Some(1));
        assert_eq!(m.exact(Field::ArpSpa), Some(0x0101_0101));
        assert_eq!(m.get(Field::ArpTpa).unwrap().mask, 0xffff_ff00);
        assert_eq!(m.exact(Field::ArpSha), Some(1));
        assert_eq!(m.exact(Field::ArpTha), Some(2));
        // nw_src/nw_dst mean the ARP addresses on ARP, as in ovs-ofctl.
        assert_eq!(
            exact("arp,nw_src=1.1.1.1 actions=drop", Field::ArpSpa),
            Some(0x0101_0101)
        );
    }

    #[test]
    fn metadata_registers_and_ct() {
        assert_eq!(
            entry("tun_id=0x5/0xff actions=drop", Field::TunId),
            (5, 0xff)
        );
        assert_eq!(
            exact("tun_src=1.1.1.1 actions=drop", Field::TunSrc),
            Some(0x0101_0101)
        );
        assert_eq!(
            entry("tun_dst=2.2.2.0/24 actions=drop", Field::TunDst).1,
            0xffff_ff00
        );
        assert_eq!(
            entry("metadata=0x3/0xf actions=drop", Field::Metadata),
            (3, 0xf)
        );
        assert_eq!(exact("reg15=7 actions=drop", Field::Reg(15)), Some(7));
        assert_eq!(
            entry("reg1=0x2/0xff actions=drop", Field::Reg(1)),
            (2, 0xff)
        );
        // xregN is split into its two registers so equal matches compare equal.
        let m = add("xreg3=0x100000005 actions=drop").matches;
        assert_eq!(
            (m.exact(Field::Reg(6)), m.exact(Field::Reg(7))),
            (Some(1), Some(5))
        );
        assert_eq!(m, add("reg6=1,reg7=5 actions=drop").matches);
        assert_eq!(exact("pkt_mark=9 actions=drop", Field::PktMark), Some(9));
        assert_eq!(
            entry("ct_state=+trk-inv actions=drop", Field::CtState),
            (0x20, 0x30)
        );
        assert_eq!(
            entry("ct_state=0x21/0x21 actions=drop", Field::CtState),
            (0x21, 0x21)
        );
        assert_eq!(
            entry("ct_state=new|trk actions=drop", Field::CtState),
            (0x21, 0xff)
        );
        assert_eq!(entry("ct_state=-new actions=drop", Field::CtState), (0, 1));
        assert_eq!(exact("ct_zone=4 actions=drop", Field::CtZone), Some(4));
        assert_eq!(entry("ct_mark=1/3 actions=drop", Field::CtMark), (1, 3));
        assert_eq!(exact("ct_label=0x5 actions=drop", Field::CtLabel), Some(5));
        bad(
            "ct_state=+trk+bogus actions=drop",
            "ct_state=+trk+bogus",
            "bogus",
        );
        bad(
            "ct_state=0x100 actions=drop",
            "ct_state=0x100",
            "unknown flag",
        );
    }

    #[test]
    fn subfield_matches() {
        assert_eq!(
            entry("tcp,tp_src[5]=1 actions=drop", Field::TcpSrc),
            (0x20, 0x20)
        );
        assert_eq!(
            entry("reg3[0..15]=0x43e actions=drop", Field::Reg(3)),
            (0x43e, 0xffff)
        );
        assert_eq!(
            entry("NXM_NX_REG0[8..15]=3 actions=drop", Field::Reg(0)),
            (0x300, 0xff00)
        );
        bad(
            "reg0[0..7]=0x100 actions=drop",
            "reg0[0..7]=0x100",
            "8 bits",
        );
        bad(
            "reg0[0..32]=1 actions=drop",
            "reg0[0..32]=1",
            "out of range",
        );
    }

    #[test]
    fn match_errors_name_the_token() {
        bad(
            "ip,nw_dst=300.1.1.1 actions=drop",
            "nw_dst=300.1.1.1",
            "invalid IPv4 address",
        );
        bad(
            "ip,nw_src=1.2.3.4/33 actions=drop",
            "nw_src=1.2.3.4/33",
            "prefix",
        );
        bad(
            "dl_src=00:11:22 actions=drop",
            "dl_src=00:11:22",
            "Ethernet",
        );
        bad("ipv6,ipv6_src=zz:: actions=drop", "ipv6_src=zz::", "IPv6");
        bad("foo=1 actions=drop", "foo=1", "unknown field `foo`");
        bad("bogus actions=drop", "bogus", "unknown keyword");
        bad(
            "nw_dst=1.1.1.1 actions=drop",
            "nw_dst=1.1.1.1",
            "nw_dst requires ip",
        );
        bad("tp_dst=80 actions=drop", "tp_dst=80", "tcp, udp or sctp");
        bad(
            "ip,tcp_flags=+syn actions=drop",
            "tcp_flags=+syn",
            "requires tcp",
        );
        bad("ip,arp_op=1 actions=drop", "arp_op=1", "requires arp");
        bad(
            "icmp6,nd_target=::1 actions=drop",
            "nd_target=::1",
            "icmp_type=135 or 136",
        );
        bad("tcp,udp actions=drop", "udp", "contradicts");
        bad("reg0=1,reg0=2 actions=drop", "reg0=2", "contradicts");
        bad(
            "reg0=0x100000000 actions=drop",
            "reg0=0x100000000",
            "32 bits",
        );
        bad("priority=65536 actions=drop", "priority=65536", "16 bits");
        bad("table=255 actions=drop", "table=255", "table");
        bad("ip,nw_ttl=1/1 actions=drop", "nw_ttl=1/1", "masking");
        bad("in_port=xyz actions=drop", "in_port=xyz", "in_port");
        bad("ip,nw_frag=maybe actions=drop", "nw_frag=maybe", "fragment");
        bad("ip,nw_dst= actions=drop", "nw_dst=", "missing value");
        bad("ip actions=ct(commit", "ct(commit", "unbalanced");
    }

    #[test]
    fn output_actions() {
        use OutputPort::*;
        assert_eq!(
            actions("actions=output:1,2,in_port,IN_PORT,normal,NORMAL,flood,all,local,LOCAL"),
            [
                Port(1),
                Port(2),
                InPort,
                InPort,
                Normal,
                Normal,
                Flood,
                All,
                Local,
                Local
            ]
            .map(Action::Output)
            .to_vec()
        );
        assert_eq!(
            actions("actions=output:NXM_NX_REG1[0..15]"),
            vec![Action::Output(Field(Subfield {
                field: crate::flow::field::Field::Reg(1),
                ofs: 0,
                n_bits: 16
            }))]
        );
        let c = actions(
            "actions=controller,controller:100,controller(reason=no_match,max_len=200,id=3)",
        );
        let Action::Controller(c0) = &c[0] else {
            panic!()
        };
        assert_eq!((c0.max_len, c0.id, c0.reason.clone()), (65535, 0, None));
        let Action::Controller(c1) = &c[1] else {
            panic!()
        };
        assert_eq!(c1.max_len, 100);
        let Action::Controller(c2) = &c[2] else {
            panic!()
        };
        assert_eq!(
            (c2.max_len, c2.id, c2.reason.as_deref()),
            (200, 3, Some("no_match"))
        );
        assert_eq!(actions("actions=group:5"), vec![Action::Group(5)]);
    }

    #[test]
    fn field_actions() {
        assert_eq!(
            actions("actions=set_field:fa:16:3e:4b:eb:3c->eth_src"),
            vec![Action::SetField {
                field: Field::EthSrc,
                value: 0xfa163e4beb3c,
                mask: 0xffff_ffff_ffff
            }]
        );
        // A masked set_field is one load per run of mask bits, as ovs-ofctl has it.
        assert_eq!(actions("actions=set_field:0x5/0x5->reg3").len(), 2);
        assert_eq!(
            actions("actions=load:0x43e->NXM_NX_REG3[]"),
            vec![Action::Load {
                value: 0x43e,
                dst: Subfield::whole(Field::Reg(3))
            }]
        );
        assert_eq!(
            actions("actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]"),
            actions("actions=move:eth_src->eth_dst")
        );
        assert_eq!(
            actions("actions=mod_dl_src:00:11:22:33:44:55"),
            actions("actions=set_field:00:11:22:33:44:55->eth_src")
        );
        assert_eq!(
            actions("ip actions=mod_nw_dst:1.2.3.4"),
            actions("ip actions=set_field:1.2.3.4->ip_dst")
        );
        assert_eq!(
            actions("ip actions=mod_nw_tos:8"),
            actions("ip actions=set_field:2->ip_dscp")
        );
        assert_eq!(
            actions("tcp actions=mod_tp_dst:80"),
            actions("tcp actions=set_field:80->tcp_dst")
        );
        assert_eq!(
            actions("udp actions=mod_tp_src:53"),
            actions("udp actions=set_field:53->udp_src")
        );
        assert_eq!(
            actions("actions=set_tunnel:5"),
            actions("actions=set_tunnel64:0x5")
        );
        // mod_vlan_vid on an untagged packet pushes a tag first.
        assert_eq!(
            actions("actions=mod_vlan_vid:5"),
            actions("actions=push_vlan:0x8100,set_field:4101->vlan_vid")
        );
        assert_eq!(
            actions("dl_vlan=3 actions=mod_vlan_pcp:3,strip_vlan"),
            vec![
                Action::SetField {
                    field: Field::VlanTci,
                    value: 0x6000,
                    mask: 0xe000
                },
                Action::PopVlan
            ]
        );
    }

    #[test]
    fn control_actions() {
        assert_eq!(actions("ip actions=dec_ttl"), vec![Action::DecTtl]);
        assert_eq!(actions("actions=goto_table:5"), vec![Action::GotoTable(5)]);
        assert_eq!(
            actions("actions=resubmit(,20),resubmit(5,20),resubmit:5,resubmit(in_port,3)"),
            vec![
                Action::Resubmit {
                    port: None,
                    table: Some(20)
                },
                Action::Resubmit {
                    port: Some(5),
                    table: Some(20)
                },
                Action::Resubmit {
                    port: Some(5),
                    table: None
                },
                Action::Resubmit {
                    port: None,
                    table: Some(3)
                },
            ]
        );
        assert_eq!(
            actions("actions=note:00.01.02"),
            vec![Action::Note(vec![0, 1, 2, 0, 0, 0])]
        );
        assert_eq!(actions("ip actions=ct_clear"), vec![Action::CtClear]);
        // Floating-IP extensions: no prerequisites (each is a no-op on other packets).
        assert_eq!(
            actions("actions=fip_arp,fip_dnat,fip_snat"),
            vec![Action::FipArp, Action::FipDnat, Action::FipSnat]
        );
        bad("actions=fip_dnat:1", "fip_dnat:1", "takes no argument");
        // SNAT pool extensions: errors name the token.
        bad(
            "ip actions=ct(commit,nat(dst=pool:gw))",
            "ct(commit,nat(dst=pool:gw))",
            "for src only",
        );
        bad(
            "ip actions=ct(commit,nat(src=pool:))",
            "ct(commit,nat(src=pool:))",
            "1-32 characters",
        );
        bad(
            "ip actions=ct(commit,nat(src=pool:a/b))",
            "ct(commit,nat(src=pool:a/b))",
            "not allowed",
        );
        bad(
            "ipv6 actions=ct(commit,nat(src=pool:gw))",
            "ct(commit,nat(src=pool:gw))",
            "IPv4 only",
        );
        bad(
            "ip actions=ct(commit,nat(src=pool:gw,persistent))",
            "ct(commit,nat(src=pool:gw,persistent))",
            "persistent",
        );
        bad(
            "ip actions=snat_pool_owner(gw)->NXM_NX_REG0[0..15]",
            "snat_pool_owner(gw)->NXM_NX_REG0[0..15]",
            "32 bits",
        );
        bad(
            "ip actions=snat_pool_owner(gw)",
            "snat_pool_owner(gw)",
            "expected snat_pool_owner(NAME)->DST",
        );
        bad(
            "ip actions=snat_pool_owner(g w)->reg0",
            "snat_pool_owner(g w)->reg0",
            "not allowed",
        );
        bad(
            "ip actions=snat_pool_owner(gw)->ct_mark",
            "snat_pool_owner(gw)->ct_mark",
            "ct_mark",
        );
        assert_eq!(
            actions("ip actions=snat_pool_owner(gw)->reg3"),
            vec![Action::SnatPoolOwner {
                pool: "gw".into(),
                dst: crate::flow::names::parse_subfield("reg3").unwrap()
            }]
        );
        bad("actions=fip_arp(x)", "fip_arp(x)", "takes no argument");
    }

    #[test]
    fn ct_action() {
        let a = actions("tcp actions=ct(commit,force,zone=NXM_NX_REG5[0..15],table=3,alg=ftp,nat(src=1.2.3.4-1.2.3.9:100-200,random,persistent),exec(set_field:1->ct_mark,set_field:0x5->ct_label,load:0x1->NXM_NX_CT_MARK[]))");
        let Action::Ct(ct) = &a[0] else { panic!() };
        assert!(ct.commit && ct.force);
        assert_eq!(
            ct.zone,
            Some(CtZoneSrc::Field(Subfield {
                field: Field::Reg(5),
                ofs: 0,
                n_bits: 16
            }))
        );
        assert_eq!(ct.table, Some(3));
        assert_eq!(ct.alg.as_deref(), Some("ftp"));
        let nat = ct.nat.as_ref().unwrap();
        assert_eq!(nat.kind, Some(NatKind::Src));
        assert_eq!(nat.ports, Some((100, 200)));
        assert!(nat.random && nat.persistent && !nat.hash);
        assert_eq!(ct.exec.len(), 3);
        let a = actions("ip actions=ct(zone=5,nat)");
        let Action::Ct(ct) = &a[0] else { panic!() };
        assert_eq!(ct.zone, Some(CtZoneSrc::Value(5)));
        assert_eq!(ct.nat.as_ref().unwrap().kind, None);
        let a = actions("ipv6 actions=ct(commit,nat(dst=[2001:db8::1]-[2001:db8::5]:80))");
        let Action::Ct(ct) = &a[0] else { panic!() };
        assert!(ct.nat.as_ref().unwrap().addrs.unwrap().0.is_ipv6());
    }

    #[test]
    fn action_errors_name_the_token() {
        bad("ip actions=bogus", "bogus", "unknown action");
        bad("actions=ct(commit)", "ct(commit)", "ip or ipv6");
        bad("ip actions=ct(commit,alg=ftp)", "ct(commit,alg=ftp)", "tcp");
        bad(
            "ip actions=ct(commit,bogus)",
            "ct(commit,bogus)",
            "unknown ct argument",
        );
        bad(
            "ip actions=ct(exec(set_field:1->ct_mark))",
            "ct(exec(set_field:1->ct_mark))",
            "commit",
        );
        bad(
            "ip actions=ct(commit,exec(set_field:1->reg0))",
            "set_field:1->reg0",
            "ct_mark",
        );
        bad(
            "actions=set_field:1->ct_mark",
            "set_field:1->ct_mark",
            "inside ct",
        );
        bad(
            "ip actions=mod_tp_dst:80",
            "mod_tp_dst:80",
            "tcp, udp or sctp",
        );
        bad(
            "udp actions=set_field:80->tcp_dst",
            "set_field:80->tcp_dst",
            "requires tcp",
        );
        bad("actions=dec_ttl", "dec_ttl", "ip or ipv6");
        bad(
            "actions=set_field:1.2.3.4->ip_dst",
            "set_field:1.2.3.4->ip_dst",
            "requires ip",
        );
        bad(
            "actions=move:tcp_src->reg0[0..15]",
            "move:tcp_src->reg0[0..15]",
            "requires tcp",
        );
        bad(
            "actions=move:reg0[0..7]->reg1[0..15]",
            "move:reg0[0..7]->reg1[0..15]",
            "8 bits wide but destination is 16",
        );
        bad(
            "actions=load:0x100->reg0[0..7]",
            "load:0x100->reg0[0..7]",
            "does not fit",
        );
        bad("actions=goto_table:5,output:1", "goto_table:5", "last");
        bad(
            "table=5 actions=goto_table:5",
            "goto_table:5",
            "later table",
        );
        bad(
            "actions=set_field:1->ct_zone",
            "set_field:1->ct_zone",
            "read-only",
        );
        bad(
            "tcp actions=load:1->NXM_OF_IP_PROTO[]",
            "load:1->NXM_OF_IP_PROTO[]",
            "read-only",
        );
        bad("actions=drop,output:1", "drop", "must not be accompanied");
        bad("actions=strip_vlan", "strip_vlan", "VLAN");
        bad("actions=note:abc", "note:abc", "hex");
        bad("ip actions=mod_nw_tos:9", "mod_nw_tos:9", "TOS");
        bad(
            "actions=output:0xfffffffd",
            "output:0xfffffffd",
            "unknown port",
        );
        bad(
            "actions=set_field:5->bogus",
            "set_field:5->bogus",
            "unknown field",
        );
        bad(
            "actions=controller(reason=bogus)",
            "controller(reason=bogus)",
            "reason",
        );
        bad(
            "ip actions=ct(nat(src=1.1.1.1-1.1.1.0))",
            "ct(nat(src=1.1.1.1-1.1.1.0))",
            "nat range",
        );
    }

    #[test]
    fn flow_files() {
        let text = "# comment\n\nip actions=drop\n  table=1, arp actions=NORMAL\n";
        let flows = parse_flows(text, ParseMode::Add).unwrap();
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[1].attrs.table, 1);
        let e = parse_flows("ip actions=drop\nbogus actions=drop\n", ParseMode::Add).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.error.token, "bogus");
    }

    #[test]
    fn never_panics_on_odd_text() {
        for s in [
            "",
            " ",
            ",",
            "=",
            "actions",
            "actions=",
            "actions=(",
            "actions=)",
            "(((",
            ")))",
            "[]",
            "reg0[",
            "reg0[]=",
            "ct_state=+",
            "tcp_flags=-",
            "actions=ct(nat(src=[))",
            "actions=load:->",
            "actions=move:->",
            "é=ü actions=ö",
            "ip actions=ct(exec(,))",
            "actions=resubmit()",
            "actions=resubmit(,,,)",
            "actionsé=1",
        ] {
            for mode in [ParseMode::Add, ParseMode::Modify, ParseMode::Filter] {
                let _ = parse_flow(s, mode);
            }
        }
    }
}
