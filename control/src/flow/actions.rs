//! Action list text → `Vec<Action>`, with the consistency checks `ovs-ofctl` makes against the
//! flow's match (prerequisites of written fields, `ct` needing IP, `goto_table` last and
//! forward only, read-only fields, widths).

use super::ast::{Action, ControllerAction, CtAction, CtZoneSrc, Match, OutputPort, Subfield};
use super::field::{ones, Field, VLAN_PRESENT};
use super::lexer::{split_kv, split_tokens, Token};
use super::matches::prereq_holds;
use super::names::{self, field_by_name, parse_subfield};
use super::nat::parse_nat;
use super::parse::FlowError;
use super::ports::{named_port, output_number, parse_port, port, port_variant};
use super::value::{parse_ipv4, parse_uint, parse_uint_width};

/// Controller `reason=` values `ovs-ofctl` knows.
const REASONS: [&str; 6] = [
    "action",
    "no_match",
    "invalid_ttl",
    "action_set",
    "group",
    "packet_out",
];

fn err(raw: &str, msg: impl Into<String>) -> FlowError {
    FlowError {
        token: raw.to_string(),
        message: msg.into(),
    }
}

/// State carried along the action list.
struct Ctx<'m> {
    m: &'m Match,
    table: u8,
    /// A VLAN header is known to be present (matched or pushed earlier in the list).
    vlan: bool,
    /// Parsing the `exec(...)` of a `ct` action: the only place connection fields may be set.
    in_ct_exec: bool,
}

/// Parse an action list for a flow in `table` with match `m`. `drop` (alone) and an empty
/// list both give an empty vector.
pub fn parse_actions(text: &str, m: &Match, table: u8) -> Result<Vec<Action>, FlowError> {
    let vlan = m
        .get(Field::VlanTci)
        .is_some_and(|e| e.mask & e.value & u128::from(VLAN_PRESENT) != 0);
    let mut ctx = Ctx {
        m,
        table,
        vlan,
        in_ct_exec: false,
    };
    let raws = split_tokens(text);
    let mut out = Vec::new();
    let mut drop_tok: Option<&str> = None;
    let mut goto_tok: Option<&str> = None;
    for raw in &raws {
        if let Some(g) = goto_tok {
            return Err(err(
                g,
                "goto_table must be the last action (instructions follow apply_actions)",
            ));
        }
        // `snat_pool_owner(NAME)->DST` is the one action with text after its parentheses.
        if raw
            .get(..16)
            .is_some_and(|p| p.eq_ignore_ascii_case("snat_pool_owner("))
        {
            out.push(ctx.snat_pool_owner(raw)?);
            continue;
        }
        let tok = split_kv(raw, &['=', ':']).map_err(|e| err(raw, e))?;
        if tok.key.eq_ignore_ascii_case("drop") && tok.value.is_none() {
            drop_tok = Some(raw);
            continue;
        }
        let before = out.len();
        ctx.action(&tok, &mut out)?;
        if matches!(out.get(before), Some(Action::GotoTable(_))) {
            goto_tok = Some(raw);
        }
    }
    if let Some(d) = drop_tok {
        // `drop,drop` is still just drop; anything else alongside it is a mistake.
        if !out.is_empty() {
            return Err(err(
                d,
                "\"drop\" must not be accompanied by any other action or instruction",
            ));
        }
    }
    Ok(out)
}

impl Ctx<'_> {
    /// `snat_pool_owner(NAME)->DST` (our extension): DST must be a writable 32-bit subfield.
    fn snat_pool_owner(&self, raw: &str) -> Result<Action, FlowError> {
        let rest = &raw[16..];
        let (name, dst) = rest
            .split_once(")->")
            .ok_or_else(|| err(raw, "snat_pool_owner: expected snat_pool_owner(NAME)->DST"))?;
        super::nat::validate_pool_name(name)
            .map_err(|e| err(raw, format!("snat_pool_owner: {e}")))?;
        let dst = parse_subfield(dst).map_err(|e| err(raw, e))?;
        if dst.n_bits != 32 {
            return Err(err(
                raw,
                format!(
                    "snat_pool_owner: the destination must be 32 bits wide (an IPv4 address), not {}",
                    dst.n_bits
                ),
            ));
        }
        self.writable(raw, dst.field)?;
        Ok(Action::SnatPoolOwner {
            pool: name.to_string(),
            dst,
        })
    }

    fn action(&mut self, t: &Token<'_>, out: &mut Vec<Action>) -> Result<(), FlowError> {
        let raw = t.raw;
        let key = t.key.to_ascii_lowercase();
        let val = t.value;
        let need = |what: &str| -> Result<&str, FlowError> {
            match val {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(err(raw, format!("{}: missing {what}", t.key))),
            }
        };
        if val.is_none() {
            if let Some(p) = named_port(&key) {
                if p == port::CONTROLLER {
                    out.push(Action::Controller(ControllerAction {
                        max_len: 65535,
                        reason: None,
                        id: 0,
                    }));
                    return Ok(());
                }
                out.push(Action::Output(port_variant(p).map_err(|e| err(raw, e))?));
                return Ok(());
            }
            if let Some(n) = parse_uint(t.key) {
                out.push(Action::Output(output_number(n).map_err(|e| err(raw, e))?));
                return Ok(());
            }
        }
        match key.as_str() {
            "output" => {
                let v = need("port")?;
                let p = if v.contains('[') || field_by_name(v).is_some() {
                    let sf = parse_subfield(v).map_err(|e| err(raw, e))?;
                    if sf.n_bits > 32 {
                        return Err(err(raw, "output port field must be at most 32 bits"));
                    }
                    OutputPort::Field(sf)
                } else {
                    parse_port(v).map_err(|e| err(raw, e))?
                };
                out.push(Action::Output(p));
            }
            "controller" => out.push(Action::Controller(parse_controller(t)?)),
            "set_field" => {
                let v = need("argument")?;
                self.set_field(raw, v, out)?;
            }
            "load" => {
                let v = need("argument")?;
                let (value, dst) = v
                    .rsplit_once("->")
                    .ok_or_else(|| err(raw, format!("{v}: missing `->`")))?;
                let value =
                    parse_uint(value).ok_or_else(|| err(raw, format!("{value}: bad value")))?;
                let dst = parse_subfield(dst).map_err(|e| err(raw, e))?;
                if value & !ones(dst.n_bits) != 0 {
                    return Err(err(
                        raw,
                        format!(
                            "{v}: value {value:#x} does not fit into {} bits",
                            dst.n_bits
                        ),
                    ));
                }
                self.writable(raw, dst.field)?;
                push_loads(dst, value, out);
            }
            "move" => {
                let v = need("argument")?;
                let (src, dst) = v
                    .split_once("->")
                    .ok_or_else(|| err(raw, format!("{v}: missing `->`")))?;
                let src = parse_subfield(src).map_err(|e| err(raw, e))?;
                let dst = parse_subfield(dst).map_err(|e| err(raw, e))?;
                if src.n_bits != dst.n_bits {
                    return Err(err(
                        raw,
                        format!(
                            "{v}: source field is {} bits wide but destination is {} bits wide",
                            src.n_bits, dst.n_bits
                        ),
                    ));
                }
                self.prereq(raw, src.field)?;
                self.writable(raw, dst.field)?;
                out.push(Action::Move { src, dst });
            }
            "mod_dl_src" | "mod_dl_dst" => {
                let v = need("address")?;
                let mac = super::value::parse_mac(v)
                    .ok_or_else(|| err(raw, format!("{v}: invalid Ethernet address")))?;
                let f = if key == "mod_dl_src" {
                    Field::EthSrc
                } else {
                    Field::EthDst
                };
                out.push(self.set_whole(raw, f, mac)?);
            }
            "mod_nw_src" | "mod_nw_dst" => {
                let v = need("address")?;
                let ip =
                    parse_ipv4(v).ok_or_else(|| err(raw, format!("{v}: invalid IP address")))?;
                let f = if key == "mod_nw_src" {
                    Field::Ipv4Src
                } else {
                    Field::Ipv4Dst
                };
                out.push(self.set_whole(raw, f, u128::from(ip))?);
            }
            "mod_nw_tos" => {
                let v = parse_uint_width(need("value")?, 8).map_err(|e| err(raw, e))?;
                if v & 3 != 0 {
                    return Err(err(raw, format!("{v}: not a valid TOS")));
                }
                out.push(self.set_whole(raw, Field::IpDscp, v >> 2)?);
            }
            "mod_nw_ecn" => {
                let v = parse_uint_width(need("value")?, 8).map_err(|e| err(raw, e))?;
                if v > 3 {
                    return Err(err(raw, format!("{v}: not a valid ECN")));
                }
                out.push(self.set_whole(raw, Field::IpEcn, v)?);
            }
            "mod_nw_ttl" => {
                let v = parse_uint_width(need("value")?, 8).map_err(|e| err(raw, e))?;
                out.push(self.set_whole(raw, Field::IpTtl, v)?);
            }
            "mod_tp_src" | "mod_tp_dst" => {
                let v = parse_uint_width(need("port")?, 16).map_err(|e| err(raw, e))?;
                let src = key == "mod_tp_src";
                let f = match self.m.exact(Field::IpProto) {
                    Some(6) if src => Field::TcpSrc,
                    Some(6) => Field::TcpDst,
                    Some(17) if src => Field::UdpSrc,
                    Some(17) => Field::UdpDst,
                    Some(132) if src => Field::SctpSrc,
                    Some(132) => Field::SctpDst,
                    _ => {
                        return Err(err(
                            raw,
                            format!("{} requires tcp, udp or sctp in the match", t.key),
                        ))
                    }
                };
                out.push(self.set_whole(raw, f, v)?);
            }
            "mod_vlan_vid" => {
                let v = parse_uint_width(need("VLAN ID")?, 16).map_err(|e| err(raw, e))?;
                if v > 0xfff {
                    return Err(err(raw, format!("{v}: VLAN ID out of range")));
                }
                self.push_if_untagged(out);
                out.push(Action::SetField {
                    field: Field::VlanTci,
                    value: v | u128::from(VLAN_PRESENT),
                    mask: 0x1fff,
                });
            }
            "mod_vlan_pcp" => {
                let v = parse_uint_width(need("priority")?, 8).map_err(|e| err(raw, e))?;
                if v > 7 {
                    return Err(err(raw, format!("{v}: VLAN priority out of range")));
                }
                self.push_if_untagged(out);
                out.push(Action::SetField {
                    field: Field::VlanTci,
                    value: v << 13,
                    mask: 0xe000,
                });
            }
            "strip_vlan" | "pop_vlan" => {
                if !self.vlan {
                    return Err(err(
                        raw,
                        format!(
                            "{} requires a VLAN header (match one or push_vlan first)",
                            t.key
                        ),
                    ));
                }
                self.vlan = false;
                out.push(Action::PopVlan);
            }
            "push_vlan" => {
                let v = parse_uint_width(need("ethertype")?, 16).map_err(|e| err(raw, e))?;
                if v != 0x8100 && v != 0x88a8 {
                    return Err(err(raw, format!("{v:#x}: not a valid VLAN ethertype")));
                }
                self.vlan = true;
                out.push(Action::PushVlan(v as u16));
            }
            "dec_ttl" => {
                if !prereq_holds(self.m, super::field::Prereq::IpAny) {
                    return Err(err(raw, "dec_ttl requires ip or ipv6 in the match"));
                }
                if val.is_some_and(|v| !v.is_empty()) {
                    return Err(err(raw, "dec_ttl with controller ids is not supported"));
                }
                out.push(Action::DecTtl);
            }
            "set_tunnel" | "set_tunnel64" => {
                let v = parse_uint_width(need("tunnel id")?, 64).map_err(|e| err(raw, e))?;
                out.push(Action::SetField {
                    field: Field::TunId,
                    value: v,
                    mask: Field::TunId.full_mask(),
                });
            }
            "goto_table" => {
                let v = parse_uint_width(need("table")?, 8).map_err(|e| err(raw, e))?;
                if v <= u128::from(self.table) {
                    return Err(err(
                        raw,
                        format!(
                            "goto_table:{v} must go to a later table than this flow's table {}",
                            self.table
                        ),
                    ));
                }
                out.push(Action::GotoTable(v as u8));
            }
            "resubmit" => out.push(parse_resubmit(raw, val)?),
            "note" => out.push(Action::Note(parse_note(raw, val.unwrap_or(""))?)),
            "ct" => out.push(self.parse_ct(raw, val.unwrap_or(""))?),
            "ct_clear" if val.is_none() => out.push(Action::CtClear),
            // Our floating-IP extensions (not in ovs-ofctl). No match prerequisites: each one
            // looks at the packet and does nothing when it is not what it translates.
            "fip_dnat" | "fip_snat" | "fip_arp" => {
                if val.is_some() {
                    return Err(err(raw, format!("{} takes no argument", t.key)));
                }
                out.push(match key.as_str() {
                    "fip_dnat" => Action::FipDnat,
                    "fip_snat" => Action::FipSnat,
                    _ => Action::FipArp,
                });
            }
            "group" => {
                let v = parse_uint_width(need("group id")?, 32).map_err(|e| err(raw, e))?;
                out.push(Action::Group(v as u32));
            }
            _ => return Err(err(raw, format!("unknown action `{}`", t.key))),
        }
        Ok(())
    }

    fn push_if_untagged(&mut self, out: &mut Vec<Action>) {
        // `ovs-ofctl` turns mod_vlan_* on an untagged packet into push_vlan + set_field.
        if !self.vlan {
            out.push(Action::PushVlan(0x8100));
            self.vlan = true;
        }
    }

    fn prereq(&self, raw: &str, f: Field) -> Result<(), FlowError> {
        let pre = f.info().prereq;
        if f == Field::VlanTci && !self.vlan {
            return Err(err(
                raw,
                "writing the VLAN requires a VLAN header (match one or push_vlan first)",
            ));
        }
        if !prereq_holds(self.m, pre) {
            return Err(err(
                raw,
                format!("{} requires {} in the match", f.info().name, pre.describe()),
            ));
        }
        Ok(())
    }

    fn writable(&self, raw: &str, f: Field) -> Result<(), FlowError> {
        if !f.info().writable {
            return Err(err(raw, format!("{} is read-only", f.info().name)));
        }
        if matches!(f, Field::CtMark | Field::CtLabel) && !self.in_ct_exec {
            return Err(err(
                raw,
                format!(
                    "{} can only be set inside ct(commit,exec(...))",
                    f.info().name
                ),
            ));
        }
        self.prereq(raw, f)
    }

    fn set_whole(&self, raw: &str, field: Field, value: u128) -> Result<Action, FlowError> {
        self.writable(raw, field)?;
        Ok(Action::SetField {
            field,
            value,
            mask: field.full_mask(),
        })
    }

    /// `set_field:V[/M]->F`. A partial mask becomes one `load` per run of set bits, as
    /// `ovs-ofctl` does, so both spellings compare equal.
    fn set_field(&mut self, raw: &str, arg: &str, out: &mut Vec<Action>) -> Result<(), FlowError> {
        let (value, fname) = arg
            .rsplit_once("->")
            .ok_or_else(|| err(raw, format!("{arg}: missing `->`")))?;
        let (field, v, m) = match fname {
            "vlan_vid" => {
                // 12-bit VID plus the "present" bit, as OpenFlow 1.3 writes it (4101 = 0x1005).
                let v = parse_uint_width(value, 13).map_err(|e| err(raw, e))?;
                (Field::VlanTci, v, 0x1fff)
            }
            "vlan_pcp" => {
                let v = parse_uint_width(value, 3).map_err(|e| err(raw, e))?;
                (Field::VlanTci, v << 13, 0xe000)
            }
            _ => {
                let f = action_field(fname)
                    .ok_or_else(|| err(raw, format!("{fname}: unknown field")))?;
                let (v, m) = if f == Field::IpDscp && fname == "nw_tos" {
                    let v = parse_uint_width(value, 8).map_err(|e| err(raw, e))?;
                    (v >> 2, 0x3f)
                } else {
                    names::parse_value_masked(f, value).map_err(|e| err(raw, e))?
                };
                (f, v, m)
            }
        };
        self.writable(raw, field)?;
        if m == 0 {
            return Err(err(raw, format!("{arg}: mask is zero")));
        }
        if m != field.full_mask() && !field.info().maskable {
            return Err(err(
                raw,
                format!("{arg}: invalid mask for field {}", field.info().name),
            ));
        }
        // vlan_vid/vlan_pcp are whole OpenFlow 1.3 fields even though they are views of the TCI.
        if matches!(fname, "vlan_vid" | "vlan_pcp") || m == field.full_mask() {
            out.push(Action::SetField {
                field,
                value: v & m,
                mask: m,
            });
            return Ok(());
        }
        let mut bit = 0u32;
        let w = u32::from(field.width());
        while bit < w {
            if m >> bit & 1 == 0 {
                bit += 1;
                continue;
            }
            let start = bit;
            while bit < w && m >> bit & 1 == 1 {
                bit += 1;
            }
            let n = (bit - start) as u8;
            let dst = Subfield {
                field,
                ofs: start as u8,
                n_bits: n,
            };
            push_loads(dst, (v >> start) & ones(n), out);
        }
        Ok(())
    }

    fn parse_ct(&self, raw: &str, inner: &str) -> Result<Action, FlowError> {
        if !prereq_holds(self.m, super::field::Prereq::IpAny) {
            return Err(err(raw, "ct requires ip or ipv6 in the match"));
        }
        let mut ct = CtAction {
            commit: false,
            force: false,
            zone: None,
            table: None,
            alg: None,
            nat: None,
            exec: Vec::new(),
        };
        for arg in split_tokens(inner) {
            let t = split_kv(arg, &['=']).map_err(|e| err(raw, e))?;
            match (t.key, t.value) {
                ("commit", None) => ct.commit = true,
                ("force", None) => ct.force = true,
                ("zone", Some(z)) => {
                    ct.zone = Some(if let Some(n) = parse_uint(z) {
                        let n = u16::try_from(n)
                            .map_err(|_| err(raw, format!("{z}: zone out of range")))?;
                        // Zone 0 is the default zone: keep one canonical form.
                        if n == 0 {
                            continue;
                        }
                        CtZoneSrc::Value(n)
                    } else {
                        let sf = parse_subfield(z).map_err(|e| err(raw, e))?;
                        if sf.n_bits != 16 {
                            return Err(err(raw, format!("{z}: zone field must be 16 bits")));
                        }
                        CtZoneSrc::Field(sf)
                    })
                }
                ("table", Some(tb)) => {
                    let n = parse_uint_width(tb, 8).map_err(|e| err(raw, e))?;
                    if n > 254 {
                        return Err(err(raw, format!("{tb}: invalid table id")));
                    }
                    ct.table = Some(n as u8);
                }
                ("alg", Some(a)) => {
                    let need = match a {
                        "ftp" => 6,
                        "tftp" => 17,
                        _ => return Err(err(raw, format!("{a}: unknown ct alg"))),
                    };
                    if self.m.exact(Field::IpProto) != Some(need) {
                        let p = if need == 6 { "tcp" } else { "udp" };
                        return Err(err(raw, format!("ct alg={a} requires {p} in the match")));
                    }
                    ct.alg = Some(a.to_string());
                }
                ("nat", v) => ct.nat = Some(parse_nat(raw, v.unwrap_or(""), self.m)?),
                ("exec", Some(e)) => {
                    let mut sub = Ctx {
                        m: self.m,
                        table: self.table,
                        vlan: self.vlan,
                        in_ct_exec: true,
                    };
                    for a in split_tokens(e) {
                        let at = split_kv(a, &['=', ':']).map_err(|x| err(raw, x))?;
                        if !matches!(at.key, "set_field" | "load") {
                            return Err(err(
                                a,
                                "only set_field and load to ct_mark or ct_label are allowed in ct exec",
                            ));
                        }
                        let before = ct.exec.len();
                        sub.action(&at, &mut ct.exec)?;
                        for x in &ct.exec[before..] {
                            let f = match x {
                                Action::SetField { field, .. } => *field,
                                Action::Load { dst, .. } => dst.field,
                                _ => Field::InPort,
                            };
                            if !matches!(f, Field::CtMark | Field::CtLabel) {
                                return Err(err(
                                    a,
                                    "only ct_mark and ct_label may be written in ct exec",
                                ));
                            }
                        }
                    }
                }
                _ => return Err(err(raw, format!("{arg}: unknown ct argument"))),
            }
        }
        if ct.force && !ct.commit {
            return Err(err(raw, "ct: \"force\" requires \"commit\""));
        }
        if !ct.exec.is_empty() && !ct.commit {
            return Err(err(raw, "ct exec requires commit"));
        }
        Ok(Action::Ct(ct))
    }
}

/// Push `load:value->dst`, split into pieces of at most 64 bits from the low end: a load
/// carries a 64-bit value on the wire, and `ovs-ofctl` splits wider ones the same way, so
/// both spellings compare equal.
fn push_loads(dst: Subfield, value: u128, out: &mut Vec<Action>) {
    let mut ofs = 0u8;
    while ofs < dst.n_bits {
        let n = (dst.n_bits - ofs).min(64);
        out.push(Action::Load {
            value: (value >> ofs) & ones(n),
            dst: Subfield {
                field: dst.field,
                ofs: dst.ofs + ofs,
                n_bits: n,
            },
        });
        ofs += n;
    }
}

/// Field names accepted as `set_field` destinations (plain, NXM, OXM and a few legacy names).
fn action_field(name: &str) -> Option<Field> {
    match name {
        "nw_src" => Some(Field::Ipv4Src),
        "nw_dst" => Some(Field::Ipv4Dst),
        "nw_tos" => Some(Field::IpDscp),
        "nw_ttl" => Some(Field::IpTtl),
        "nw_ecn" | "ip_ecn" => Some(Field::IpEcn),
        "tp_src" | "tp_dst" => None,
        _ => field_by_name(name),
    }
}

fn parse_controller(t: &Token<'_>) -> Result<ControllerAction, FlowError> {
    let raw = t.raw;
    let mut c = ControllerAction {
        max_len: 65535,
        reason: None,
        id: 0,
    };
    let Some(v) = t.value else {
        return Ok(c);
    };
    if !raw[t.key.len()..].starts_with('(') {
        // controller:N
        let n = parse_uint_width(v, 16).map_err(|e| err(raw, e))?;
        c.max_len = n as u16;
        return Ok(c);
    }
    for arg in split_tokens(v) {
        let a = split_kv(arg, &['=']).map_err(|e| err(raw, e))?;
        match (a.key, a.value) {
            ("max_len", Some(n)) => {
                c.max_len = parse_uint_width(n, 16).map_err(|e| err(raw, e))? as u16
            }
            ("id", Some(n)) => c.id = parse_uint_width(n, 16).map_err(|e| err(raw, e))? as u16,
            ("reason", Some(r)) => {
                if !REASONS.contains(&r) {
                    return Err(err(raw, format!("{r}: unknown controller reason")));
                }
                // `action` is the default; keep the canonical form free of it.
                c.reason = (r != "action").then(|| r.to_string());
            }
            _ => return Err(err(raw, format!("{arg}: unknown controller argument"))),
        }
    }
    Ok(c)
}

fn parse_resubmit(raw: &str, val: Option<&str>) -> Result<Action, FlowError> {
    let Some(v) = val.filter(|v| !v.is_empty()) else {
        return Err(err(raw, "resubmit: missing port or table"));
    };
    let port_of = |p: &str| -> Result<Option<u32>, FlowError> {
        if p.is_empty() || p.eq_ignore_ascii_case("in_port") {
            return Ok(None);
        }
        match parse_port(p).map_err(|e| err(raw, e))? {
            OutputPort::Port(n) => Ok(Some(n)),
            OutputPort::Local => Ok(Some(port::LOCAL)),
            OutputPort::InPort => Ok(None),
            _ => Err(err(raw, format!("{p}: cannot resubmit to this port"))),
        }
    };
    if raw["resubmit".len()..].starts_with('(') {
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        if parts.len() > 3 {
            return Err(err(raw, "resubmit: too many arguments"));
        }
        let port = port_of(parts[0])?;
        let table = match parts.get(1).copied() {
            None | Some("") => None,
            Some(tb) => {
                let n = parse_uint_width(tb, 8).map_err(|e| err(raw, e))?;
                if n > 254 {
                    return Err(err(raw, format!("{tb}: invalid table id")));
                }
                Some(n as u8)
            }
        };
        if parts.len() == 3 && !parts[2].is_empty() {
            return Err(err(raw, "resubmit: ct argument is not supported"));
        }
        if port.is_none() && table.is_none() {
            return Err(err(
                raw,
                "resubmit: at least one of port and table is required",
            ));
        }
        Ok(Action::Resubmit { port, table })
    } else {
        let port = port_of(v)?;
        if port.is_none() {
            return Err(err(
                raw,
                "resubmit: at least one of port and table is required",
            ));
        }
        Ok(Action::Resubmit { port, table: None })
    }
}

/// `note:` hex bytes, optionally separated by dots; padded like `ovs-ofctl` does (the
/// action is a multiple of 8 bytes long, so the note holds 6 + 8k bytes).
fn parse_note(raw: &str, v: &str) -> Result<Vec<u8>, FlowError> {
    let mut bytes = Vec::new();
    let digits: Vec<char> = v.chars().filter(|c| *c != '.').collect();
    if digits.len() & 1 == 1 || !digits.iter().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(raw, "bad hex digit in `note' argument"));
    }
    for pair in digits.chunks(2) {
        let s: String = pair.iter().collect();
        bytes.push(u8::from_str_radix(&s, 16).map_err(|_| err(raw, "bad hex digit"))?);
    }
    let mut len = 6;
    while len < bytes.len() {
        len += 8;
    }
    bytes.resize(len, 0);
    Ok(bytes)
}
