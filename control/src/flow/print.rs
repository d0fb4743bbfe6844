//! [`FlowSpec`] → canonical `ovs-ofctl -O OpenFlow13` text.
//!
//! The match is printed in the order `ovs-ofctl` uses (connection-tracking metadata, protocol
//! shorthand, registers, tunnel, metadata, in_port, VLAN, Ethernet, L3, L4); values the way it
//! prints them (hex for registers and marks, decimal for ports, masks as prefixes where
//! possible, flags by name in bit order).

use super::ast::{Action, CtAction, CtZoneSrc, FlowSpec, Match, MatchEntry, NatKind, OutputPort};
use super::field::{ct_state, Field, VLAN_PRESENT};
use super::matches::{CT_STATE_ALL, FRAG_NAMES, SHORTHANDS, TCP_FLAG_NAMES};
use super::names::{format_subfield, format_value, kind, Kind};
use super::ports::port;
use super::value::{format_hex, prefix_len};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::IpAddr;

/// Counters printed by [`format_dump_line`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DumpStats {
    /// Seconds since the flow was added.
    pub duration_secs: f64,
    /// Packets matched.
    pub n_packets: u64,
    /// Bytes matched.
    pub n_bytes: u64,
    /// Seconds since the flow last matched, if it ever did (printed as `idle_age=`).
    pub idle_age_secs: Option<u64>,
}

/// The match part (`arp,tun_id=…`), without table, cookie or priority.
pub fn format_match(m: &Match) -> String {
    let mut p: Vec<String> = Vec::new();
    let put = |f: Field, name: &str, p: &mut Vec<String>| {
        if let Some(e) = m.get(f) {
            p.push(format!("{name}={}", format_entry(f, e)));
        }
    };
    put(Field::PktMark, "pkt_mark", &mut p);
    if let Some(e) = m.get(Field::CtState) {
        p.push(format!(
            "ct_state={}",
            format_flags(e, &ct_state::NAMES, CT_STATE_ALL)
        ));
    }
    put(Field::CtZone, "ct_zone", &mut p);
    put(Field::CtMark, "ct_mark", &mut p);
    put(Field::CtLabel, "ct_label", &mut p);

    let dl = m.exact(Field::EthType);
    let proto = m.exact(Field::IpProto);
    let short = dl.and_then(|d| {
        SHORTHANDS
            .iter()
            .find(|(_, sd, sp)| *sd == d && sp.is_some() && *sp == proto)
            .or_else(|| {
                SHORTHANDS
                    .iter()
                    .find(|(_, sd, sp)| *sd == d && sp.is_none())
            })
    });
    let (dl_done, proto_done) = match short {
        Some((name, _, sp)) => {
            p.push((*name).to_string());
            (true, sp.is_some())
        }
        None => (false, false),
    };
    for i in 0..16 {
        put(Field::Reg(i), &format!("reg{i}"), &mut p);
    }
    for i in 0..8 {
        put(Field::Xreg(i), &format!("xreg{i}"), &mut p);
    }
    put(Field::TunId, "tun_id", &mut p);
    put(Field::TunSrc, "tun_src", &mut p);
    put(Field::TunDst, "tun_dst", &mut p);
    put(Field::Metadata, "metadata", &mut p);
    put(Field::InPort, "in_port", &mut p);
    if let Some(e) = m.get(Field::VlanTci) {
        format_vlan(e, &mut p);
    }
    put(Field::EthSrc, "dl_src", &mut p);
    put(Field::EthDst, "dl_dst", &mut p);
    if !dl_done {
        put(Field::EthType, "dl_type", &mut p);
    }
    put(Field::Ipv6Src, "ipv6_src", &mut p);
    put(Field::Ipv6Dst, "ipv6_dst", &mut p);
    put(Field::Ipv6Label, "ipv6_label", &mut p);
    put(Field::ArpSpa, "arp_spa", &mut p);
    put(Field::ArpTpa, "arp_tpa", &mut p);
    put(Field::ArpOp, "arp_op", &mut p);
    put(Field::ArpSha, "arp_sha", &mut p);
    put(Field::ArpTha, "arp_tha", &mut p);
    put(Field::Ipv4Src, "nw_src", &mut p);
    put(Field::Ipv4Dst, "nw_dst", &mut p);
    if !proto_done {
        put(Field::IpProto, "nw_proto", &mut p);
    }
    if let Some(e) = m.get(Field::IpDscp) {
        p.push(format!("nw_tos={}", (e.value & 0x3f) << 2));
    }
    put(Field::IpEcn, "nw_ecn", &mut p);
    put(Field::IpTtl, "nw_ttl", &mut p);
    if let Some(e) = m.get(Field::IpFrag) {
        let name = FRAG_NAMES
            .iter()
            .find(|(_, v, mk)| u128::from(*v) == e.value && u128::from(*mk) == e.mask)
            .map(|(n, _, _)| (*n).to_string())
            .unwrap_or_else(|| format!("{:#x}/{:#x}", e.value, e.mask));
        p.push(format!("nw_frag={name}"));
    }
    put(Field::IcmpType, "icmp_type", &mut p);
    put(Field::IcmpCode, "icmp_code", &mut p);
    put(Field::Icmpv6Type, "icmp_type", &mut p);
    put(Field::Icmpv6Code, "icmp_code", &mut p);
    put(Field::NdTarget, "nd_target", &mut p);
    put(Field::NdSll, "nd_sll", &mut p);
    put(Field::NdTll, "nd_tll", &mut p);
    for (s, d) in [
        (Field::TcpSrc, Field::TcpDst),
        (Field::UdpSrc, Field::UdpDst),
        (Field::SctpSrc, Field::SctpDst),
    ] {
        put(s, "tp_src", &mut p);
        put(d, "tp_dst", &mut p);
    }
    if let Some(e) = m.get(Field::TcpFlags) {
        p.push(format!(
            "tcp_flags={}",
            format_flags(e, &TCP_FLAG_NAMES, 0xfff)
        ));
    }
    p.join(",")
}

/// One masked value as `ovs-ofctl` prints it in a match.
fn format_entry(f: Field, e: MatchEntry) -> String {
    let full = e.mask == f.full_mask();
    if f == Field::InPort && full {
        return format_port(e.value as u32);
    }
    if f == Field::EthType && full {
        return format!("{:#06x}", e.value);
    }
    if f == Field::Ipv6Label {
        return if full {
            format!("{:#07x}", e.value)
        } else {
            format!("{:#07x}/{:#07x}", e.value, e.mask)
        };
    }
    if full {
        return format_value(f, e.value);
    }
    match kind(f) {
        Kind::Ipv4 | Kind::Ipv6 => match prefix_len(e.mask, f.width()) {
            Some(n) => format!("{}/{n}", format_value(f, e.value)),
            None => format!("{}/{}", format_value(f, e.value), format_value(f, e.mask)),
        },
        Kind::Mac => format!("{}/{}", format_value(f, e.value), format_value(f, e.mask)),
        Kind::Hex => format!("{}/{:#x}", format_hex(e.value), e.mask),
        Kind::Dec => format!("{:#x}/{:#x}", e.value, e.mask),
    }
}

/// `dl_vlan`/`dl_vlan_pcp` when they say it all, else `vlan_tci=V[/M]`.
fn format_vlan(e: MatchEntry, p: &mut Vec<String>) {
    let (v, m) = (e.value as u16, e.mask as u16);
    let vid_mask = m & 0x0fff;
    let pcp_mask = m & 0xe000;
    if m & VLAN_PRESENT != 0
        && v & VLAN_PRESENT != 0
        && (vid_mask == 0 || vid_mask == 0x0fff)
        && (pcp_mask == 0 || pcp_mask == 0xe000)
        && (vid_mask != 0 || pcp_mask != 0)
    {
        if vid_mask != 0 {
            p.push(format!("dl_vlan={}", v & 0x0fff));
        }
        if pcp_mask != 0 {
            p.push(format!("dl_vlan_pcp={}", v >> 13));
        }
    } else if m == 0xffff {
        p.push(format!("vlan_tci={v:#06x}"));
    } else {
        p.push(format!("vlan_tci={v:#06x}/{m:#06x}"));
    }
}

/// Flags: `a|b` when every known bit is matched (`0` for none), else `+a-b` in bit order.
fn format_flags(e: MatchEntry, names: &[(u32, &str)], all: u128) -> String {
    let name_of = |bit: u128| -> String {
        names
            .iter()
            .find(|(b, _)| u128::from(*b) == bit)
            .map(|(_, n)| (*n).to_string())
            .unwrap_or_else(|| format!("[{bit:x}]"))
    };
    let bits = (0..12).map(|i| 1u128 << i).filter(|b| b & all != 0);
    if e.mask == all {
        if e.value == 0 {
            return "0".into();
        }
        return bits
            .filter(|b| e.value & b != 0)
            .map(name_of)
            .collect::<Vec<_>>()
            .join("|");
    }
    let mut s = String::new();
    for b in bits.filter(|b| e.mask & b != 0) {
        s.push(if e.value & b != 0 { '+' } else { '-' });
        s.push_str(&name_of(b));
    }
    s
}

/// A port number, with the names `ovs-ofctl` uses for reserved ports.
fn format_port(p: u32) -> String {
    match p {
        port::IN_PORT => "IN_PORT".into(),
        port::TABLE => "TABLE".into(),
        port::NORMAL => "NORMAL".into(),
        port::FLOOD => "FLOOD".into(),
        port::ALL => "ALL".into(),
        port::CONTROLLER => "CONTROLLER".into(),
        port::LOCAL => "LOCAL".into(),
        port::ANY => "ANY".into(),
        n => n.to_string(),
    }
}

/// The action list (`move:…,IN_PORT`), `drop` when empty.
pub fn format_actions(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions
        .iter()
        .map(format_action)
        .collect::<Vec<_>>()
        .join(",")
}

fn format_action(a: &Action) -> String {
    match a {
        Action::Output(p) => match p {
            OutputPort::Port(n) => format!("output:{n}"),
            OutputPort::InPort => "IN_PORT".into(),
            OutputPort::Normal => "NORMAL".into(),
            OutputPort::Flood => "FLOOD".into(),
            OutputPort::All => "ALL".into(),
            OutputPort::Local => "LOCAL".into(),
            OutputPort::Field(sf) => format!("output:{}", format_subfield(sf)),
        },
        Action::Controller(c) => {
            if c.reason.is_none() && c.id == 0 {
                format!("CONTROLLER:{}", c.max_len)
            } else {
                let mut parts = Vec::new();
                if let Some(r) = &c.reason {
                    parts.push(format!("reason={r}"));
                }
                if c.max_len != 65535 {
                    parts.push(format!("max_len={}", c.max_len));
                }
                if c.id != 0 {
                    parts.push(format!("id={}", c.id));
                }
                format!("controller({})", parts.join(","))
            }
        }
        Action::Drop => "drop".into(),
        Action::SetField { field, value, mask } => format_set_field(*field, *value, *mask),
        Action::Load { value, dst } => {
            format!("load:{}->{}", format_hex(*value), format_subfield(dst))
        }
        Action::Move { src, dst } => {
            format!("move:{}->{}", format_subfield(src), format_subfield(dst))
        }
        Action::PushVlan(t) => format!("push_vlan:{t:#06x}"),
        Action::PopVlan => "pop_vlan".into(),
        Action::DecTtl => "dec_ttl".into(),
        Action::SetTunnel(v) => format!("set_field:{}->tun_id", format_hex(u128::from(*v))),
        Action::GotoTable(t) => format!("goto_table:{t}"),
        Action::Resubmit { port, table } => match (port, table) {
            (Some(p), None) => format!("resubmit:{}", format_port(*p)),
            (p, t) => format!(
                "resubmit({},{})",
                p.map(format_port).unwrap_or_default(),
                t.map(|t| t.to_string()).unwrap_or_default()
            ),
        },
        Action::Note(bytes) => {
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("note:{}", hex.join("."))
        }
        Action::Ct(ct) => format_ct(ct),
        Action::CtClear => "ct_clear".into(),
        Action::Group(g) => format!("group:{g}"),
        Action::FipDnat => "fip_dnat".into(),
        Action::FipSnat => "fip_snat".into(),
        Action::FipArp => "fip_arp".into(),
        Action::SnatPoolOwner { pool, dst } => {
            format!("snat_pool_owner({pool})->{}", format_subfield(dst))
        }
    }
}

fn format_set_field(field: Field, value: u128, mask: u128) -> String {
    if field == Field::VlanTci {
        if mask == 0x1fff {
            return format!("set_field:{value}->vlan_vid");
        }
        if mask == 0xe000 {
            return format!("set_field:{}->vlan_pcp", value >> 13);
        }
    }
    let name = field.info().name;
    if mask == field.full_mask() {
        format!("set_field:{}->{name}", format_value(field, value))
    } else {
        format!(
            "set_field:{}/{}->{name}",
            format_value(field, value),
            format_value(field, mask)
        )
    }
}

fn format_ct(ct: &CtAction) -> String {
    let mut p: Vec<String> = Vec::new();
    if ct.commit {
        p.push("commit".into());
    }
    if ct.force {
        p.push("force".into());
    }
    if let Some(t) = ct.table {
        p.push(format!("table={t}"));
    }
    match &ct.zone {
        Some(CtZoneSrc::Value(0)) | None => {}
        Some(CtZoneSrc::Value(z)) => p.push(format!("zone={z}")),
        Some(CtZoneSrc::Field(sf)) => p.push(format!("zone={}", format_subfield(sf))),
    }
    if let Some(n) = &ct.nat {
        let mut s = String::from("nat");
        let mut args: Vec<String> = Vec::new();
        if let Some(k) = n.kind {
            let k = match k {
                NatKind::Src => "src",
                NatKind::Dst => "dst",
            };
            let mut r = k.to_string();
            if let Some(pool) = &n.pool {
                let _ = write!(r, "=pool:{pool}");
            }
            if let Some((a1, a2)) = n.addrs {
                let bracket = n.ports.is_some() && a1.is_ipv6();
                let fa = |a: IpAddr| {
                    if bracket {
                        format!("[{a}]")
                    } else {
                        a.to_string()
                    }
                };
                let _ = write!(r, "={}", fa(a1));
                if a2 != a1 {
                    let _ = write!(r, "-{}", fa(a2));
                }
                if let Some((p1, p2)) = n.ports {
                    let _ = write!(r, ":{p1}");
                    if p2 != p1 {
                        let _ = write!(r, "-{p2}");
                    }
                }
            }
            args.push(r);
        }
        if n.persistent {
            args.push("persistent".into());
        }
        if n.hash {
            args.push("hash".into());
        }
        if n.random {
            args.push("random".into());
        }
        if !args.is_empty() {
            let _ = write!(s, "({})", args.join(","));
        }
        p.push(s);
    }
    if !ct.exec.is_empty() {
        p.push(format!("exec({})", format_actions(&ct.exec)));
    }
    if let Some(a) = &ct.alg {
        p.push(format!("alg={a}"));
    }
    format!("ct({})", p.join(","))
}

/// The attribute prefix of a flow line (`cookie=…, table=…, ` or the dump-flows form).
fn attrs_prefix(f: &FlowSpec, stats: Option<&DumpStats>) -> String {
    let a = &f.attrs;
    let mut s = String::new();
    if stats.is_some() || a.cookie != 0 || a.cookie_mask != 0 {
        let _ = write!(s, "cookie={:#x}", a.cookie);
        if a.cookie_mask != 0 {
            let _ = write!(s, "/{:#x}", a.cookie_mask);
        }
        s.push_str(", ");
    }
    if let Some(st) = stats {
        let _ = write!(s, "duration={:.3}s, ", st.duration_secs);
    }
    if stats.is_some() || a.table != 0 {
        let _ = write!(s, "table={}, ", a.table);
    }
    if let Some(st) = stats {
        let _ = write!(s, "n_packets={}, n_bytes={}, ", st.n_packets, st.n_bytes);
    }
    if a.idle_timeout != 0 {
        let _ = write!(s, "idle_timeout={}, ", a.idle_timeout);
    }
    if a.hard_timeout != 0 {
        let _ = write!(s, "hard_timeout={}, ", a.hard_timeout);
    }
    // Flags are separated by a space only, as dump-flows prints them
    // (`n_bytes=0, send_flow_rem priority=…`).
    if a.send_flow_rem {
        s.push_str("send_flow_rem ");
    }
    if a.check_overlap {
        s.push_str("check_overlap ");
    }
    if let Some(age) = stats.and_then(|st| st.idle_age_secs) {
        let _ = write!(s, "idle_age={age}, ");
    }
    if let Some(p) = a.out_port {
        let _ = write!(s, "out_port={}, ", format_port(p));
    }
    s
}

/// The match with its priority (`priority=1024,arp,…`); `priority=` is omitted at the default
/// 32768, as `ovs-ofctl` does.
fn priority_and_match(f: &FlowSpec) -> String {
    let m = format_match(&f.matches);
    let mut parts = Vec::new();
    if f.attrs.priority != 32768 {
        parts.push(format!("priority={}", f.attrs.priority));
    }
    if !m.is_empty() {
        parts.push(m);
    }
    parts.join(",")
}

fn flow_body(f: &FlowSpec) -> String {
    let pm = priority_and_match(f);
    match &f.actions {
        Some(a) if pm.is_empty() => format!("actions={}", format_actions(a)),
        Some(a) => format!("{pm} actions={}", format_actions(a)),
        None => pm,
    }
}

/// A whole flow in the `dump-flows` style without counters, as `ovs-ofctl add-flow` accepts it:
/// `cookie=0x5, table=20, priority=1024,arp,… actions=…` (`cookie` omitted when 0, `table`
/// when 0).
pub fn format_flow(f: &FlowSpec) -> String {
    format!("{}{}", attrs_prefix(f, None), flow_body(f))
}

/// A `dump-flows` line:
/// ` cookie=0x0, duration=543.500s, table=20, n_packets=0, n_bytes=0, idle_age=12, priority=…`.
pub fn format_dump_line(f: &FlowSpec, stats: &DumpStats) -> String {
    format!(" {}{}", attrs_prefix(f, Some(stats)), flow_body(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::parse::{parse_flow, ParseMode};

    /// Parse (add mode) and print.
    fn canon(s: &str) -> String {
        format_flow(&parse_flow(s, ParseMode::Add).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn flow_layout() {
        assert_eq!(canon("actions=drop"), "actions=drop");
        assert_eq!(canon("priority=32768,ip actions="), "ip actions=drop");
        assert_eq!(
            canon("table=0,priority=5 actions=drop"),
            "priority=5 actions=drop"
        );
        assert_eq!(
            canon("hard_timeout=20,idle_timeout=10,cookie=0x5,table=3,send_flow_rem,check_overlap,priority=1,ip actions=drop"),
            "cookie=0x5, table=3, idle_timeout=10, hard_timeout=20, send_flow_rem check_overlap priority=1,ip actions=drop"
        );
        let f = parse_flow("cookie=0x5/0xff,ip", ParseMode::Filter).unwrap();
        assert_eq!(format_flow(&f), "cookie=0x5/0xff, ip");
    }

    #[test]
    fn fip_actions_round_trip() {
        // Our extensions print as written and parse back to the same flow.
        for s in [
            "table=20,priority=100,arp actions=fip_arp,NORMAL",
            "priority=10,ip,in_port=2 actions=fip_dnat,goto_table:30",
            "priority=10,ip,in_port=1 actions=fip_snat,dec_ttl,output:3",
            "actions=fip_arp,fip_dnat,fip_snat",
        ] {
            let f = parse_flow(s, ParseMode::Add).unwrap_or_else(|e| panic!("{s}: {e}"));
            let text = format_flow(&f);
            assert_eq!(parse_flow(&text, ParseMode::Add).unwrap(), f, "{text}");
        }
        assert_eq!(
            canon("table=20, priority=100,arp actions=FIP_ARP,normal"),
            "table=20, priority=100,arp actions=fip_arp,NORMAL"
        );
        assert_eq!(
            canon("ip actions=fip_dnat,fip_snat,IN_PORT"),
            "ip actions=fip_dnat,fip_snat,IN_PORT"
        );
    }

    #[test]
    fn snat_pool_extensions_round_trip() {
        for s in [
            "ip,in_port=1 actions=ct(commit,table=1,nat(src=pool:gw-1))",
            "tcp actions=ct(commit,zone=5,nat(src=pool:p.2_x,random))",
            "tcp,nw_dst=203.0.113.7 actions=snat_pool_owner(gw-1)->NXM_NX_REG0[],resubmit(,5)",
            "udp actions=snat_pool_owner(p)->OXM_OF_PKT_REG0[32..63],snat_pool_owner(q)->tun_dst",
        ] {
            let f = parse_flow(s, ParseMode::Add).unwrap_or_else(|e| panic!("{s}: {e}"));
            let text = format_flow(&f);
            assert_eq!(parse_flow(&text, ParseMode::Add).unwrap(), f, "{text}");
        }
        assert_eq!(
            canon("ip actions=ct(commit,nat(src=pool:gw))"),
            "ip actions=ct(commit,nat(src=pool:gw))"
        );
        assert_eq!(
            canon("tcp actions=SNAT_POOL_OWNER(gw)->reg0,output:2"),
            "tcp actions=snat_pool_owner(gw)->NXM_NX_REG0[],output:2"
        );
        // OVS syntax next to it is untouched.
        assert_eq!(
            canon("ip actions=ct(commit,nat(src=1.1.1.1:5-9))"),
            "ip actions=ct(commit,nat(src=1.1.1.1:5-9))"
        );
    }

    #[test]
    fn dump_line_with_flags() {
        let f = parse_flow(
            "table=3,idle_timeout=10,send_flow_rem,priority=5 actions=drop",
            ParseMode::Add,
        )
        .unwrap();
        let st = DumpStats {
            duration_secs: 0.25,
            n_packets: 0,
            n_bytes: 0,
            idle_age_secs: Some(0),
        };
        let line = format_dump_line(&f, &st);
        assert_eq!(
            line,
            " cookie=0x0, duration=0.250s, table=3, n_packets=0, n_bytes=0, idle_timeout=10, send_flow_rem idle_age=0, priority=5 actions=drop"
        );
        assert_eq!(parse_flow(&line, ParseMode::Add).unwrap(), f);
    }

    #[test]
    fn dump_line() {
        let f = parse_flow("table=20,priority=1024,arp actions=IN_PORT", ParseMode::Add).unwrap();
        let st = DumpStats {
            duration_secs: 543.5,
            n_packets: 7,
            n_bytes: 600,
            idle_age_secs: Some(12),
        };
        assert_eq!(
            format_dump_line(&f, &st),
            " cookie=0x0, duration=543.500s, table=20, n_packets=7, n_bytes=600, idle_age=12, priority=1024,arp actions=IN_PORT"
        );
        let back = format_dump_line(
            &f,
            &DumpStats {
                idle_age_secs: None,
                ..st
            },
        );
        assert_eq!(parse_flow(&back, ParseMode::Add).unwrap(), f);
        let json = serde_json::to_string(&st).unwrap();
        assert_eq!(serde_json::from_str::<DumpStats>(&json).unwrap(), st);
    }

    #[test]
    fn match_order_and_values() {
        assert_eq!(
            canon("tcp,tp_dst=0x100/0xff00,nw_src=10.0.0.0/8,in_port=4,reg1=2/0xff,ct_state=+trk+est-new,pkt_mark=9,tun_id=5,metadata=0,dl_src=AA:bb:cc:dd:ee:ff actions=drop"),
            "pkt_mark=0x9,ct_state=-new+est+trk,tcp,reg1=0x2/0xff,tun_id=0x5,metadata=0,in_port=4,dl_src=aa:bb:cc:dd:ee:ff,nw_src=10.0.0.0/8,tp_dst=0x100/0xff00 actions=drop"
        );
        assert_eq!(
            canon("ip,nw_dst=1.2.3.4/255.255.0.255 actions=drop"),
            "ip,nw_dst=1.2.0.4/255.255.0.255 actions=drop"
        );
        assert_eq!(
            canon("ip,nw_src=1.2.3.4/32 actions=drop"),
            "ip,nw_src=1.2.3.4 actions=drop"
        );
        assert_eq!(
            canon("ip,ip_dscp=5,nw_ecn=3 actions=drop"),
            "ip,nw_tos=20,nw_ecn=3 actions=drop"
        );
        assert_eq!(
            canon("ip,nw_proto=47 actions=drop"),
            "ip,nw_proto=47 actions=drop"
        );
        assert_eq!(
            canon("dl_type=0x0800,nw_proto=6 actions=drop"),
            "tcp actions=drop"
        );
        assert_eq!(
            canon("ipv6,ipv6_label=5 actions=drop"),
            "ipv6,ipv6_label=0x00005 actions=drop"
        );
        assert_eq!(
            canon("in_port=local actions=drop"),
            "in_port=LOCAL actions=drop"
        );
        assert_eq!(
            canon("xreg3=5 actions=drop"),
            "reg6=0,reg7=0x5 actions=drop"
        );
        assert_eq!(
            canon("arp,arp_op=1,arp_sha=00:00:00:00:00:01,arp_spa=1.1.1.1 actions=drop"),
            "arp,arp_spa=1.1.1.1,arp_op=1,arp_sha=00:00:00:00:00:01 actions=drop"
        );
        assert_eq!(
            canon("icmp6,icmp_type=135,ipv6_src=::2,nd_target=::1 actions=drop"),
            "icmp6,ipv6_src=::2,icmp_type=135,nd_target=::1 actions=drop"
        );
    }

    #[test]
    fn vlan_printing() {
        assert_eq!(canon("dl_vlan=5 actions=drop"), "dl_vlan=5 actions=drop");
        assert_eq!(
            canon("dl_vlan=0xffff actions=drop"),
            "vlan_tci=0x0000/0x1fff actions=drop"
        );
        assert_eq!(
            canon("vlan_tci=0 actions=drop"),
            "vlan_tci=0x0000/0x1fff actions=drop"
        );
        assert_eq!(
            canon("dl_vlan_pcp=5 actions=drop"),
            "dl_vlan_pcp=5 actions=drop"
        );
        assert_eq!(
            canon("vlan_tci=0x1000/0x1000 actions=drop"),
            "vlan_tci=0x1000/0x1000 actions=drop"
        );
        assert_eq!(
            canon("vlan_tci=0x0123/0x0fff actions=drop"),
            "vlan_tci=0x0123/0x0fff actions=drop"
        );
    }

    #[test]
    fn flag_printing() {
        assert_eq!(
            canon("ct_state=0x21 actions=drop"),
            "ct_state=new|trk actions=drop"
        );
        assert_eq!(
            canon("ct_state=0/0xff actions=drop"),
            "ct_state=0 actions=drop"
        );
        assert_eq!(
            canon("tcp,tcp_flags=0x002 actions=drop"),
            "tcp,tcp_flags=syn actions=drop"
        );
        assert_eq!(
            canon("tcp,tcp_flags=0x002/0xe02 actions=drop"),
            "tcp,tcp_flags=+syn-[200]-[400]-[800] actions=drop"
        );
        assert_eq!(
            canon("ip,nw_frag=not_later actions=drop"),
            "ip,nw_frag=not_later actions=drop"
        );
    }

    #[test]
    fn action_printing() {
        assert_eq!(
            canon("actions=output:1,in_port,normal,flood,all,local,controller,controller:100,controller(reason=no_match,max_len=200,id=3)"),
            "actions=output:1,IN_PORT,NORMAL,FLOOD,ALL,LOCAL,CONTROLLER:65535,CONTROLLER:100,controller(reason=no_match,max_len=200,id=3)"
        );
        assert_eq!(
            canon("tcp actions=mod_tp_dst:80,mod_nw_src:1.2.3.4,mod_dl_dst:AA:bb:cc:dd:ee:ff,set_tunnel:5"),
            "tcp actions=set_field:80->tcp_dst,set_field:1.2.3.4->ip_src,set_field:aa:bb:cc:dd:ee:ff->eth_dst,set_field:0x5->tun_id"
        );
        assert_eq!(
            canon("actions=set_field:0x1/0x1->reg0,set_field:0xf0/0xf0->reg2,load:0->reg1[],load:5->xreg1[0..3]"),
            "actions=load:0x1->NXM_NX_REG0[0],load:0xf->NXM_NX_REG2[4..7],load:0->NXM_NX_REG1[],load:0x5->OXM_OF_PKT_REG1[0..3]"
        );
        assert_eq!(
            canon("actions=move:reg0->reg1,move:metadata[0..7]->reg0[0..7],output:reg1"),
            "actions=move:NXM_NX_REG0[]->NXM_NX_REG1[],move:OXM_OF_METADATA[0..7]->NXM_NX_REG0[0..7],output:NXM_NX_REG1[]"
        );
        assert_eq!(
            canon("actions=mod_vlan_vid:5"),
            "actions=push_vlan:0x8100,set_field:4101->vlan_vid"
        );
        assert_eq!(
            canon("vlan_tci=0x1000/0x1000 actions=mod_vlan_pcp:3,strip_vlan"),
            "vlan_tci=0x1000/0x1000 actions=set_field:3->vlan_pcp,pop_vlan"
        );
        assert_eq!(
            canon("ip actions=mod_nw_tos:8,mod_nw_ecn:1,dec_ttl"),
            "ip actions=set_field:2->ip_dscp,set_field:1->nw_ecn,dec_ttl"
        );
        assert_eq!(
            canon("actions=resubmit(,20),resubmit(5,20),resubmit(5),resubmit(in_port,3),resubmit(LOCAL,3),group:5,goto_table:9"),
            "actions=resubmit(,20),resubmit(5,20),resubmit:5,resubmit(,3),resubmit(LOCAL,3),group:5,goto_table:9"
        );
        assert_eq!(
            canon("actions=note:00.01.02,note:01020304050607"),
            "actions=note:00.01.02.00.00.00,note:01.02.03.04.05.06.07.00.00.00.00.00.00.00"
        );
    }

    #[test]
    fn ct_printing() {
        assert_eq!(
            canon("tcp actions=ct(nat(src=1.2.3.4,hash,persistent),exec(set_field:1->ct_mark),alg=ftp,zone=5,table=3,force,commit)"),
            "tcp actions=ct(commit,force,table=3,zone=5,nat(src=1.2.3.4,persistent,hash),exec(set_field:0x1->ct_mark),alg=ftp)"
        );
        assert_eq!(canon("ip actions=ct(zone=0)"), "ip actions=ct()");
        assert_eq!(
            canon("ip actions=ct(commit,nat(src=1.1.1.1-1.1.1.1:5-5))"),
            "ip actions=ct(commit,nat(src=1.1.1.1:5))"
        );
        assert_eq!(
            canon("ipv6 actions=ct(commit,nat(src=[2001:db8::1]-[2001:db8::5]:80),exec(set_field:0x1/0xff->ct_label))"),
            "ipv6 actions=ct(commit,nat(src=[2001:db8::1]-[2001:db8::5]:80),exec(load:0x1->NXM_NX_CT_LABEL[0..7]))"
        );
        assert_eq!(
            canon("ip actions=ct(table=5,zone=NXM_NX_REG5[0..15]),ct_clear"),
            "ip actions=ct(table=5,zone=NXM_NX_REG5[0..15]),ct_clear"
        );
    }
}
