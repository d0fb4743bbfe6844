//! The parsed form of a flow: match, actions and flow-mod attributes.
//!
//! This is the contract between the language (parser, printer) and the dataplane (classifier,
//! pipeline). A [`Match`] is a set of `(field, value, mask)` triples over [`Field`]s only: all
//! syntax sugar (`tcp`, `dl_vlan`, `nw_tos`, `tp_dst`, CIDR prefixes, subfield matches) is already
//! resolved into plain masked fields. Values are stored already masked, so two matches that
//! select the same packets compare equal.

use super::field::Field;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One masked field in a match. Invariant: `value & !mask == 0`, `mask != 0`, both within the
/// field's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatchEntry {
    /// Matched value (already masked).
    pub value: u128,
    /// Bits that must equal `value`.
    pub mask: u128,
}

/// A flow match: the conjunction of masked fields. Absent fields are wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Match {
    // JSON maps need string keys; a list of entries also reads better.
    #[serde(with = "entry_list")]
    entries: BTreeMap<Field, MatchEntry>,
}

/// Serialize a match as `[{"field": "reg3", "value": .., "mask": ..}, ..]`.
mod entry_list {
    use super::{Field, MatchEntry};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        field: Field,
        value: u128,
        mask: u128,
    }

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<Field, MatchEntry>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter().map(|(f, e)| Entry {
            field: *f,
            value: e.value,
            mask: e.mask,
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Field, MatchEntry>, D::Error> {
        let list = Vec::<Entry>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|e| {
                let mask = e.mask & e.field.full_mask();
                (
                    e.field,
                    MatchEntry {
                        value: e.value & mask,
                        mask,
                    },
                )
            })
            .collect())
    }
}

impl Match {
    /// The match-everything match.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `value/mask` on `field`, intersected with what is already there. Returns `false` (and
    /// changes nothing) if the new constraint contradicts an existing one on the same bits.
    pub fn set(&mut self, field: Field, value: u128, mask: u128) -> bool {
        let mask = mask & field.full_mask();
        if mask == 0 {
            return true;
        }
        let value = value & mask;
        match self.entries.get_mut(&field) {
            None => {
                self.entries.insert(field, MatchEntry { value, mask });
                true
            }
            Some(e) => {
                let common = e.mask & mask;
                if (e.value & common) != (value & common) {
                    return false;
                }
                e.value |= value;
                e.mask |= mask;
                true
            }
        }
    }

    /// Exact match on `field`.
    pub fn set_exact(&mut self, field: Field, value: u128) -> bool {
        self.set(field, value, field.full_mask())
    }

    /// Remove any constraint on `field`.
    pub fn clear(&mut self, field: Field) {
        self.entries.remove(&field);
    }

    /// The constraint on `field`, if any.
    pub fn get(&self, field: Field) -> Option<MatchEntry> {
        self.entries.get(&field).copied()
    }

    /// The exact value of `field`, if the match pins all of its bits.
    pub fn exact(&self, field: Field) -> Option<u128> {
        self.get(field)
            .filter(|e| e.mask == field.full_mask())
            .map(|e| e.value)
    }

    /// All constraints in canonical field order.
    pub fn iter(&self) -> impl Iterator<Item = (Field, MatchEntry)> + '_ {
        self.entries.iter().map(|(f, e)| (*f, *e))
    }

    /// Number of constrained fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for the match-everything match.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if every packet matched by `self` is matched by `filter` (OpenFlow non-strict
    /// modify/delete/dump semantics: `self` is at least as specific as `filter`).
    pub fn is_within(&self, filter: &Match) -> bool {
        filter.iter().all(|(f, fe)| match self.get(f) {
            None => false,
            Some(se) => (se.mask & fe.mask) == fe.mask && (se.value & fe.mask) == fe.value,
        })
    }
}

impl FromIterator<(Field, u128)> for Match {
    /// A match pinning each field to a value exactly (a later duplicate must agree).
    fn from_iter<I: IntoIterator<Item = (Field, u128)>>(fields: I) -> Self {
        let mut m = Match::new();
        for (f, v) in fields {
            m.set_exact(f, v);
        }
        m
    }
}

/// A bit range of a field: `NXM_NX_REG3[0..15]`, `eth_dst[]`, `tp_src[5]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subfield {
    /// The field.
    pub field: Field,
    /// Offset of the lowest bit.
    pub ofs: u8,
    /// Number of bits (1..=width).
    pub n_bits: u8,
}

impl Subfield {
    /// The whole field.
    pub fn whole(field: Field) -> Self {
        Subfield {
            field,
            ofs: 0,
            n_bits: field.width(),
        }
    }

    /// True if this covers the whole field.
    pub fn is_whole(&self) -> bool {
        self.ofs == 0 && self.n_bits == self.field.width()
    }
}

/// Where `output` (and the port-like bare actions) send a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutputPort {
    /// A numbered OpenFlow port.
    Port(u32),
    /// The port the packet came in on (`in_port`, `IN_PORT`).
    InPort,
    /// The MAC-learning switch (`normal`).
    Normal,
    /// Every port but the ingress port, excluding ports with flooding disabled (`flood`).
    Flood,
    /// Every port but the ingress port (`all`).
    All,
    /// The bridge's internal port (`local`).
    Local,
    /// The port number held in a register subfield (`output:NXM_NX_REG1[0..15]`).
    Field(Subfield),
}

/// One side of a NAT range: `nat(src=10.0.0.1-10.0.0.9:1000-2000)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NatSpec {
    /// `src` (SNAT) or `dst` (DNAT); `None` for a bare `nat` that reuses the existing binding.
    pub kind: Option<NatKind>,
    /// First and last address (IPv4 or IPv6, as written), if given.
    pub addrs: Option<(std::net::IpAddr, std::net::IpAddr)>,
    /// First and last port, if given.
    pub ports: Option<(u16, u16)>,
    /// `random` port selection.
    pub random: bool,
    /// `persistent` (same mapping across reboots of the mapping table).
    pub persistent: bool,
    /// `hash` port selection (OVS's default when neither is given).
    pub hash: bool,
    /// `src=pool:NAME` (our extension, not in `ovs-ofctl`): source NAT to the public address of
    /// the bridge's SNAT pool NAME (`swctl add-snat-pool`), on a port of the source's
    /// deterministic block. `addrs` and `ports` are then `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// Direction of a NAT translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NatKind {
    /// Source NAT.
    Src,
    /// Destination NAT.
    Dst,
}

/// Where `ct(zone=...)` takes its zone from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CtZoneSrc {
    /// A literal zone.
    Value(u16),
    /// A 16-bit subfield (`zone=NXM_NX_REG5[0..15]`).
    Field(Subfield),
}

/// The `ct(...)` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CtAction {
    /// `commit`.
    pub commit: bool,
    /// `force` (commit, and delete a connection going the other way).
    pub force: bool,
    /// `zone=`; zone 0 when absent.
    pub zone: Option<CtZoneSrc>,
    /// `table=`: recirculate into this table after tracking.
    pub table: Option<u8>,
    /// `alg=` (e.g. `ftp`), kept to print it back.
    pub alg: Option<String>,
    /// `nat(...)`.
    pub nat: Option<NatSpec>,
    /// `exec(...)`: only `set_field`/`load` to `ct_mark`/`ct_label` are allowed.
    pub exec: Vec<Action>,
}

/// How `controller` was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ControllerAction {
    /// `max_len` (65535 when not given, as in OVS).
    pub max_len: u16,
    /// `reason=` as written (`action`, `no_match`, `invalid_ttl`), if given.
    pub reason: Option<String>,
    /// `id=`.
    pub id: u16,
}

/// One OpenFlow action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// `output:P`, a bare port number, or a reserved port name.
    Output(OutputPort),
    /// `controller`, `controller:N`, `controller(reason=..,max_len=..)`.
    Controller(ControllerAction),
    /// `drop` written explicitly (an empty action list drops too).
    Drop,
    /// `set_field:V[/M]->F` and the `mod_*` family (`mod_dl_src`, `mod_nw_dst`, ...).
    SetField {
        /// Field to write.
        field: Field,
        /// Value, within the field's width.
        value: u128,
        /// Bits to write (the whole field unless a mask was given).
        mask: u128,
    },
    /// `load:V->F[a..b]`.
    Load {
        /// Value, right-aligned.
        value: u128,
        /// Destination bits.
        dst: Subfield,
    },
    /// `move:F1[a..b]->F2[c..d]` (same number of bits on both sides).
    Move {
        /// Source bits.
        src: Subfield,
        /// Destination bits.
        dst: Subfield,
    },
    /// `push_vlan:ETHERTYPE` (0x8100 or 0x88a8).
    PushVlan(u16),
    /// `pop_vlan` / `strip_vlan`.
    PopVlan,
    /// `dec_ttl` (IPv4 TTL or IPv6 hop limit; drop at zero).
    DecTtl,
    /// `set_tunnel:V` / `set_tunnel64:V` (writes `tun_id`).
    SetTunnel(u64),
    /// `goto_table:N` (an instruction; always last).
    GotoTable(u8),
    /// `resubmit(port,table)`, `resubmit:port`; `None` port means "in_port unchanged", `None`
    /// table means "the current table".
    Resubmit {
        /// Port to pretend the packet came in on.
        port: Option<u32>,
        /// Table to look up in.
        table: Option<u8>,
    },
    /// `note:hex bytes`.
    Note(Vec<u8>),
    /// `ct(...)`.
    Ct(CtAction),
    /// `ct_clear`.
    CtClear,
    /// `group:N`.
    Group(u32),
    /// `fip_dnat` (our extension, not in `ovs-ofctl`): if the packet's IPv4 destination is a
    /// floating IP of the bridge (`swctl add-fip`), rewrite it to the fixed IP; in an ICMP error
    /// to the FIP, the quoted header's source too. No-op otherwise. Stateless.
    FipDnat,
    /// `fip_snat` (extension): if the IPv4 source is the fixed IP of a floating IP, rewrite it
    /// to the FIP; in an ICMP error from the fixed IP, the quoted header's destination too.
    FipSnat,
    /// `fip_arp` (extension): an ARP request for a floating IP this node owns and that has a
    /// MAC is turned into the reply and sent back out of the ingress port, ending the packet's
    /// actions; otherwise no-op.
    FipArp,
    /// `snat_pool_owner(NAME)->DST` (extension): if the packet is IPv4 TCP or UDP to the
    /// public address of the bridge's SNAT pool NAME, write the inside address whose port block
    /// holds its destination port into the 32-bit subfield DST; write 0 otherwise (no such pool,
    /// another address, a port of no block). Lets a node forward a reply that arrived at the
    /// wrong node to the node of the inside host.
    SnatPoolOwner {
        /// Pool name.
        pool: String,
        /// Where the owner's address goes (32 bits wide).
        dst: Subfield,
    },
}

/// Flow-mod attributes written with a flow: everything but the match and actions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowAttrs {
    /// `table=` (0 when absent).
    pub table: u8,
    /// `priority=` (32768 when absent).
    pub priority: u16,
    /// `cookie=`.
    pub cookie: u64,
    /// `cookie=V/M` mask (only meaningful for mod/del/dump filters; 0 when absent).
    pub cookie_mask: u64,
    /// `idle_timeout=` seconds (0 = none).
    pub idle_timeout: u16,
    /// `hard_timeout=` seconds (0 = none).
    pub hard_timeout: u16,
    /// `send_flow_rem`.
    pub send_flow_rem: bool,
    /// `check_overlap`.
    pub check_overlap: bool,
    /// `out_port=` filter (del/dump).
    pub out_port: Option<u32>,
}

impl Default for FlowAttrs {
    fn default() -> Self {
        FlowAttrs {
            table: 0,
            priority: 32768,
            cookie: 0,
            cookie_mask: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            send_flow_rem: false,
            check_overlap: false,
            out_port: None,
        }
    }
}

impl FlowSpec {
    /// A flow in `table` at `priority`, other attributes at their defaults.
    pub fn new(table: u8, priority: u16, matches: Match, actions: Vec<Action>) -> FlowSpec {
        FlowSpec {
            attrs: FlowAttrs {
                table,
                priority,
                ..FlowAttrs::default()
            },
            matches,
            actions: Some(actions),
        }
    }
}

/// A whole flow as written on the command line or in a flow file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowSpec {
    /// Table, priority, cookie, timeouts.
    pub attrs: FlowAttrs,
    /// The match.
    pub matches: Match,
    /// The action list; `None` when the text had no `actions=` (allowed for del/dump filters).
    pub actions: Option<Vec<Action>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_spec_round_trips_through_json_with_registers() {
        let mut m = Match::new();
        m.set_exact(Field::EthType, 0x0800);
        m.set(Field::Reg(3), 0x43e, 0xffff);
        m.set(Field::CtLabel, 1 << 100, u128::MAX);
        let spec = FlowSpec {
            attrs: FlowAttrs::default(),
            matches: m,
            actions: Some(vec![Action::Load {
                value: 0x43e,
                dst: Subfield::whole(Field::Reg(3)),
            }]),
        };
        let json = serde_json::to_string(&spec).expect("serializes");
        assert!(json.contains(r#""field":"reg3""#), "{json}");
        let back: FlowSpec = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, spec);
    }
}
