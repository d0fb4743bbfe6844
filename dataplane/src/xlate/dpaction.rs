//! Datapath actions: the compact, already-resolved instructions the executor applies to a frame.
//!
//! A translation produces a short list of these; the flow cache stores the list per megaflow,
//! so the type is kept small (24 bytes, no heap): every `Set*` carries only the fields that
//! changed (`None` = leave as is), and wide fields (IPv6 addresses, the ND target) get variants
//! of their own rather than widening every action.

use control::flow::ast::NatKind;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// A MAC address in wire order.
pub type Mac = [u8; 6];

/// Why a packet is sent to the controller (`reason=` of the `controller` action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControllerReason {
    /// An explicit `controller` action (the default).
    Action,
    /// `reason=no_match`.
    NoMatch,
    /// `reason=invalid_ttl`.
    InvalidTtl,
}

impl ControllerReason {
    /// Parse the `reason=` text of a `controller` action; unknown text means `action`.
    pub fn from_text(s: Option<&str>) -> Self {
        match s {
            Some("no_match") => ControllerReason::NoMatch,
            Some("invalid_ttl") => ControllerReason::InvalidTtl,
            _ => ControllerReason::Action,
        }
    }

    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ControllerReason::Action => "action",
            ControllerReason::NoMatch => "no_match",
            ControllerReason::InvalidTtl => "invalid_ttl",
        }
    }
}

/// One datapath action. Header rewrites apply to the frame as it is at that point; `Output`
/// hands out the frame as it is at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DpAction {
    /// Send the frame out of this OpenFlow port.
    Output(u32),
    /// Hand the frame to the L2 learning switch (`output:NORMAL`), resolved later.
    Normal,
    /// Send the frame to the controller.
    Controller {
        /// Why.
        reason: ControllerReason,
        /// Bytes of the frame to send.
        max_len: u16,
        /// Controller id.
        id: u16,
    },
    /// Set tunnel metadata for the encapsulating output port (all three, as a unit).
    SetTunnel {
        /// Tunnel id / VNI.
        id: u64,
        /// Outer IPv4 source.
        src: u32,
        /// Outer IPv4 destination.
        dst: u32,
    },
    /// Rewrite Ethernet addresses.
    SetEth {
        /// New source, if it changes.
        src: Option<Mac>,
        /// New destination, if it changes.
        dst: Option<Mac>,
    },
    /// Remove the outermost 802.1Q/802.1ad tag.
    PopVlan,
    /// Insert a tag after the MAC addresses.
    PushVlan {
        /// 0x8100 or 0x88a8.
        tpid: u16,
        /// The TCI as on the wire (PCP, DEI, VID).
        tci: u16,
    },
    /// Rewrite the TCI of the outermost tag (as on the wire).
    SetVlanTci(u16),
    /// Rewrite IPv4 header fields (checksums updated incrementally).
    SetIpv4 {
        /// New source address.
        src: Option<u32>,
        /// New destination address.
        dst: Option<u32>,
        /// New TOS byte (DSCP << 2 | ECN).
        tos: Option<u8>,
        /// New TTL.
        ttl: Option<u8>,
    },
    /// Rewrite the IPv6 source address.
    SetIpv6Src([u8; 16]),
    /// Rewrite the IPv6 destination address.
    SetIpv6Dst([u8; 16]),
    /// Rewrite other IPv6 header fields.
    SetIpv6 {
        /// New traffic class byte.
        tc: Option<u8>,
        /// New hop limit.
        hlim: Option<u8>,
        /// New flow label (20 bits).
        label: Option<u32>,
    },
    /// Rewrite TCP/UDP/SCTP ports.
    SetL4Ports {
        /// IP protocol (6, 17 or 132), for printing; the executor trusts the key.
        proto: u8,
        /// New source port.
        src: Option<u16>,
        /// New destination port.
        dst: Option<u16>,
    },
    /// Rewrite ICMP / ICMPv6 type and code.
    SetIcmp {
        /// New type.
        ty: Option<u8>,
        /// New code.
        code: Option<u8>,
    },
    /// Rewrite ARP opcode and protocol addresses.
    SetArp {
        /// New opcode.
        op: Option<u16>,
        /// New sender protocol address.
        spa: Option<u32>,
        /// New target protocol address.
        tpa: Option<u32>,
    },
    /// Rewrite ARP hardware addresses.
    SetArpHw {
        /// New sender hardware address.
        sha: Option<Mac>,
        /// New target hardware address.
        tha: Option<Mac>,
    },
    /// Rewrite the ND target address.
    SetNdTarget([u8; 16]),
    /// Rewrite ND link-layer address options (only if the option is present in the frame).
    SetNd {
        /// New source link-layer address.
        sll: Option<Mac>,
        /// New target link-layer address.
        tll: Option<Mac>,
    },
    /// Send the frame (as it is at this point) through connection tracking. The packet itself
    /// goes on with the next action unchanged; with `recirc`, a copy of its key with the
    /// conntrack fields set is translated again from the table that recirculation id stands
    /// for (see [`crate::xlate::recirc_table`]). Any [`DpAction::CtSetMark`] /
    /// [`DpAction::CtSetLabel`] right after it belong to it (`exec(...)`): kept as separate
    /// actions so that this enum stays at 24 bytes.
    Ct {
        /// Conntrack zone (resolved at translation time).
        zone: u16,
        /// Commit the connection (create the entry).
        commit: bool,
        /// Recirculation id (`table=`), if any.
        recirc: Option<u32>,
        /// The packet was tracked in this zone already (its key says `+trk` in `zone`: a
        /// pass recirculated by an earlier `ct`): conntrack gives the verdict again without
        /// tracking it twice (Open vSwitch's cached conntrack).
        again: bool,
    },
    /// `exec(set_field:V/M->ct_mark)` of the preceding [`DpAction::Ct`] (applied on commit).
    CtSetMark {
        /// New bits.
        value: u32,
        /// Which bits.
        mask: u32,
    },
    /// Half of `exec(set_field:V/M->ct_label)` of the preceding [`DpAction::Ct`].
    CtSetLabel {
        /// The high 64 bits (else the low ones).
        high: bool,
        /// New bits.
        value: u64,
        /// Which bits.
        mask: u64,
    },
    /// `nat(...)` of the preceding [`DpAction::Ct`]; its address range follows as
    /// [`DpAction::CtNatAddr`] (split so that this enum stays at 24 bytes and `Copy`: no
    /// allocation when the request is handed to conntrack).
    CtNat {
        /// `src`/`dst`; `None` for a bare `nat`.
        kind: Option<NatKind>,
        /// Port range, inclusive.
        ports: Option<(u16, u16)>,
        /// `random`.
        random: bool,
        /// `persistent`.
        persistent: bool,
        /// `hash`.
        hash: bool,
    },
    /// The quoted-header half of `fip_dnat`/`fip_snat` on an ICMP error: if the frame is an
    /// ICMPv4 error whose quoted IPv4 header has `from` as its source (`quoted_dst == false`,
    /// `fip_dnat`) or destination (`quoted_dst == true`, `fip_snat`), rewrite it to `to`,
    /// patching the quoted IPv4 header checksum, the quoted TCP/UDP checksum when it is quoted,
    /// and the ICMP checksum incrementally. Decided on each packet (the quote is not in the
    /// flow key); any other frame is left as it is.
    FipIcmpQuoted {
        /// Rewrite the quoted destination (else the quoted source).
        quoted_dst: bool,
        /// The address expected there.
        from: u32,
        /// Its replacement.
        to: u32,
    },
    /// `nat(src=pool:NAME)` of the preceding [`DpAction::CtNat`]: the pool's block layout
    /// (inside prefix and public port range); conntrack allocates the port in the block of the
    /// connection's source ([`conntrack::NatRequest::block`]).
    CtNatBlocks {
        /// Network address of the inside prefix.
        net: u32,
        /// Its length.
        prefix_len: u8,
        /// First public port.
        lo: u16,
        /// Last public port.
        hi: u16,
    },
    /// One end of the address range of the preceding [`DpAction::CtNat`].
    CtNatAddr {
        /// The last address (else the first).
        max: bool,
        /// The address.
        addr: IpAddr,
    },
}

struct MacFmt(Mac);
impl fmt::Display for MacFmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Writes `name=value` items separated by commas.
struct Items<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}
impl Items<'_, '_> {
    fn item(&mut self, name: &str, v: Option<impl fmt::Display>) -> fmt::Result {
        if let Some(v) = v {
            if !self.first {
                self.f.write_str(",")?;
            }
            self.first = false;
            write!(self.f, "{name}={v}")?;
        }
        Ok(())
    }
}

fn ip4(a: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(a)
}

/// `ovs-dpctl`-like text: `set(ipv4(dst=88.88.88.4))`, `push_vlan(tpid=0x8100,vid=5,pcp=0)`, `5`.
impl fmt::Display for DpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        macro_rules! set {
            ($name:expr, $($k:expr => $v:expr),*) => {{
                write!(f, "set({}(", $name)?;
                let mut it = Items { f, first: true };
                $( it.item($k, $v)?; )*
                f.write_str("))")
            }};
        }
        match *self {
            DpAction::Output(p) => write!(f, "{p}"),
            DpAction::Normal => f.write_str("normal"),
            DpAction::Controller {
                reason,
                max_len,
                id,
            } => write!(
                f,
                "userspace(controller(reason={},max_len={max_len},id={id}))",
                reason.name()
            ),
            DpAction::SetTunnel { id, src, dst } => write!(
                f,
                "set(tunnel(tun_id={id:#x},src={},dst={}))",
                ip4(src),
                ip4(dst)
            ),
            DpAction::SetEth { src, dst } => {
                set!("eth", "src" => src.map(MacFmt), "dst" => dst.map(MacFmt))
            }
            DpAction::PopVlan => f.write_str("pop_vlan"),
            DpAction::PushVlan { tpid, tci } => write!(
                f,
                "push_vlan(tpid={tpid:#x},vid={},pcp={})",
                tci & 0xfff,
                tci >> 13
            ),
            DpAction::SetVlanTci(tci) => {
                write!(f, "set(vlan(vid={},pcp={}))", tci & 0xfff, tci >> 13)
            }
            DpAction::SetIpv4 { src, dst, tos, ttl } => set!("ipv4",
                "src" => src.map(ip4), "dst" => dst.map(ip4),
                "tos" => tos.map(|t| format!("{t:#x}")), "ttl" => ttl),
            DpAction::SetIpv6Src(a) => {
                write!(f, "set(ipv6(src={}))", std::net::Ipv6Addr::from(a))
            }
            DpAction::SetIpv6Dst(a) => {
                write!(f, "set(ipv6(dst={}))", std::net::Ipv6Addr::from(a))
            }
            DpAction::SetIpv6 { tc, hlim, label } => set!("ipv6",
                "tclass" => tc.map(|t| format!("{t:#x}")), "hlimit" => hlim,
                "label" => label.map(|l| format!("{l:#x}"))),
            DpAction::SetL4Ports { proto, src, dst } => {
                let name = match proto {
                    6 => "tcp",
                    17 => "udp",
                    132 => "sctp",
                    _ => "l4",
                };
                set!(name, "src" => src, "dst" => dst)
            }
            DpAction::SetIcmp { ty, code } => set!("icmp", "type" => ty, "code" => code),
            DpAction::SetArp { op, spa, tpa } => set!("arp",
                "sip" => spa.map(ip4), "tip" => tpa.map(ip4), "op" => op),
            DpAction::SetArpHw { sha, tha } => {
                set!("arp", "sha" => sha.map(MacFmt), "tha" => tha.map(MacFmt))
            }
            DpAction::SetNdTarget(a) => {
                write!(f, "set(nd(target={}))", std::net::Ipv6Addr::from(a))
            }
            DpAction::SetNd { sll, tll } => {
                set!("nd", "sll" => sll.map(MacFmt), "tll" => tll.map(MacFmt))
            }
            DpAction::Ct {
                zone,
                commit,
                recirc,
                again: _,
            } => {
                f.write_str("ct(")?;
                if commit {
                    f.write_str("commit,")?;
                }
                write!(f, "zone={zone})")?;
                if let Some(r) = recirc {
                    write!(f, ",recirc({r:#x})")?;
                }
                Ok(())
            }
            DpAction::CtSetMark { value, mask } => write!(f, "ct_mark({value:#x}/{mask:#x})"),
            DpAction::CtNat {
                kind,
                ports,
                random,
                persistent,
                hash,
            } => {
                f.write_str("nat(")?;
                match kind {
                    Some(NatKind::Src) => f.write_str("src")?,
                    Some(NatKind::Dst) => f.write_str("dst")?,
                    None => f.write_str("bare")?,
                }
                if let Some((a, b)) = ports {
                    write!(f, ",ports={a}-{b}")?;
                }
                for (on, name) in [
                    (random, "random"),
                    (persistent, "persistent"),
                    (hash, "hash"),
                ] {
                    if on {
                        write!(f, ",{name}")?;
                    }
                }
                f.write_str(")")
            }
            DpAction::CtNatBlocks {
                net,
                prefix_len,
                lo,
                hi,
            } => write!(f, "nat_blocks({}/{prefix_len}:{lo}-{hi})", ip4(net)),
            DpAction::CtNatAddr { max, addr } => {
                write!(f, "nat_addr_{}({addr})", if max { "max" } else { "min" })
            }
            DpAction::FipIcmpQuoted {
                quoted_dst,
                from,
                to,
            } => write!(
                f,
                "fip_icmp_quoted({}={}->{})",
                if quoted_dst { "dst" } else { "src" },
                ip4(from),
                ip4(to)
            ),
            DpAction::CtSetLabel { high, value, mask } => write!(
                f,
                "ct_label_{}({value:#x}/{mask:#x})",
                if high { "hi" } else { "lo" }
            ),
        }
    }
}

/// Formats a list of datapath actions comma-separated, `drop` when empty.
pub struct DpActions<'a>(pub &'a [DpAction]);

impl fmt::Display for DpActions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("drop");
        }
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}
