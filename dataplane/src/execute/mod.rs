//! Datapath action executor: applies [`DpAction`]s to a frame's bytes in place.
//!
//! Every rewrite patches the checksums it affects incrementally (RFC 1624, see
//! [`crate::checksum`]) instead of recomputing them: the IPv4 header checksum for address,
//! TOS and TTL changes; the TCP/UDP checksum for address (pseudo-header) and port changes; the
//! ICMPv6 checksum for IPv6 address, type/code and ND changes; the ICMPv4 checksum for
//! type/code. A UDP checksum of 0 (IPv4 "none") stays 0. SCTP's CRC32c cannot be patched and is
//! recomputed on a port change (addresses are not covered by it). Non-first fragments have no
//! L4 header and get no L4 rewrite.
//!
//! The executor trusts the flow key for what the frame is (Ethertype, IP protocol, fragment
//! state: none of them is writable by actions) and the [`Layout`] for where headers start, but
//! checks every access: a frame shorter than the layout claims is reported as
//! [`ExecError::Truncated`] (a drop), never a panic.
//!
//! `Ct` is not executed here: the executor gathers it with its `nat`/`exec` modifiers into an
//! [`Egress::Ct`] for the caller (the datapath worker owns the connection tracker), then goes
//! on with the next action. The caller gets the frame mutably so that it can apply the NAT
//! rewrite conntrack reports in place, through the same checksum-patching helpers as the
//! `Set*` actions (`apply_nat`); the rest of the list then works on the translated frame.
//!
//! `PushVlan` needs 4 bytes in front of the frame: [`PacketBuf`] keeps headroom so the MAC
//! addresses move 4 bytes forward instead of the whole frame moving back.

mod buf;
mod fip;
#[cfg(test)]
mod fip_tests;
#[cfg(test)]
mod tests;
#[doc(hidden)]
pub mod testutil;

pub use buf::{PacketBuf, TunnelMeta};

use crate::checksum::{crc32c, udp_fixup, update128, update16, update32, update_bytes};
use crate::key::FlowKey;
use crate::packet::Layout;
use crate::xlate::{ControllerReason, DpAction, Mac};
use conntrack::nat::{NatKind, NatRequest, Rewrite};
use control::flow::ast::NatKind as AstNatKind;
use control::flow::field::{nw_frag, Field};
use std::net::IpAddr;

/// Where an output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// An OpenFlow port.
    Port(u32),
    /// The L2 learning switch (`output:NORMAL`).
    Normal,
    /// The controller.
    Controller {
        /// Why.
        reason: ControllerReason,
        /// Bytes of the frame to send.
        max_len: u16,
        /// Controller id.
        id: u16,
    },
    /// Connection tracking ([`DpAction::Ct`] with its `exec` modifiers gathered): the caller
    /// runs conntrack on the frame as it is at this point (and recirculates if asked).
    Ct(CtRequest),
}

/// A `ct` step as handed to the executor's caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtRequest {
    /// Zone.
    pub zone: u16,
    /// Commit the connection.
    pub commit: bool,
    /// Recirculation id, if the tracked copy is to be translated again.
    pub recirc: Option<u32>,
    /// `ct_mark` (value, mask) to set on commit.
    pub mark: Option<(u32, u32)>,
    /// `ct_label` (value, mask) to set on commit.
    pub label: Option<(u128, u128)>,
    /// `nat(...)`, if given.
    pub nat: Option<NatRequest>,
    /// Tracked in this zone already (see [`DpAction::Ct`]'s `again`).
    pub again: bool,
}

impl CtRequest {
    /// A `Ct` action with the `exec` modifiers that follow it (`rest`: the actions after it).
    fn gather(
        zone: u16,
        commit: bool,
        recirc: Option<u32>,
        again: bool,
        rest: &[DpAction],
    ) -> Self {
        let mut r = CtRequest {
            zone,
            commit,
            recirc,
            mark: None,
            label: None,
            nat: None,
            again,
        };
        for a in rest {
            match *a {
                DpAction::CtNat {
                    kind,
                    ports,
                    random,
                    persistent,
                    hash,
                } => {
                    r.nat = Some(NatRequest {
                        kind: kind.map(|k| match k {
                            AstNatKind::Src => NatKind::Src,
                            AstNatKind::Dst => NatKind::Dst,
                        }),
                        addrs: None,
                        ports,
                        random,
                        persistent,
                        hash,
                        block: None,
                    })
                }
                DpAction::CtNatAddr { max, addr } => {
                    if let Some(n) = r.nat.as_mut() {
                        let (lo, hi) = n.addrs.get_or_insert((addr, addr));
                        if max {
                            *hi = addr;
                        } else {
                            *lo = addr;
                        }
                    }
                }
                DpAction::CtNatBlocks {
                    net,
                    prefix_len,
                    lo,
                    hi,
                } => {
                    if let Some(n) = r.nat.as_mut() {
                        // Built from a validated pool. Should a layout be refused here anyway,
                        // an empty port range makes conntrack refuse the new connection
                        // (`malformed`) rather than translate it outside the pool.
                        match conntrack::PortBlocks::new(net.into(), prefix_len, lo, hi) {
                            Ok(b) => n.block = Some(b),
                            Err(_) => n.ports = Some((1, 0)),
                        }
                    }
                }
                DpAction::CtSetMark { value, mask } => r.mark = Some((value, mask)),
                DpAction::CtSetLabel { high, value, mask } => {
                    let (v, m) = r.label.unwrap_or((0, 0));
                    let sh = if high { 64 } else { 0 };
                    r.label = Some((v | (u128::from(value) << sh), m | (u128::from(mask) << sh)));
                }
                _ => break,
            }
        }
        r
    }
}

/// Why a frame could not be processed (it is dropped; each is a counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ExecError {
    /// The frame is shorter than the headers its layout and key describe.
    #[error("frame truncated for the requested rewrite")]
    Truncated,
    /// No headroom left to push a VLAN tag.
    #[error("no headroom to push a header")]
    NoHeadroom,
}

impl ExecError {
    /// Stable snake_case name for counters.
    pub fn name(self) -> &'static str {
        match self {
            ExecError::Truncated => "exec_truncated",
            ExecError::NoHeadroom => "exec_no_headroom",
        }
    }
}

type R<T> = Result<T, ExecError>;

fn rd<const N: usize>(d: &[u8], at: usize) -> R<[u8; N]> {
    d.get(at..at.checked_add(N).ok_or(ExecError::Truncated)?)
        .and_then(|s| s.try_into().ok())
        .ok_or(ExecError::Truncated)
}

fn wr(d: &mut [u8], at: usize, v: &[u8]) -> R<()> {
    let end = at.checked_add(v.len()).ok_or(ExecError::Truncated)?;
    d.get_mut(at..end)
        .ok_or(ExecError::Truncated)?
        .copy_from_slice(v);
    Ok(())
}

fn rd16(d: &[u8], at: usize) -> R<u16> {
    rd::<2>(d, at).map(u16::from_be_bytes)
}

fn rd32(d: &[u8], at: usize) -> R<u32> {
    rd::<4>(d, at).map(u32::from_be_bytes)
}

/// Patch the 16-bit checksum at `at` with `f`.
fn fix(d: &mut [u8], at: usize, f: impl FnOnce(u16) -> u16) -> R<()> {
    let c = rd16(d, at)?;
    wr(d, at, &f(c).to_be_bytes())
}

/// Frame facts the executor needs beyond the layout.
#[derive(Clone, Copy)]
struct Hdrs {
    eth_type: u16,
    proto: u8,
    l3: Option<usize>,
    /// `None` for later fragments and frames without L4.
    l4: Option<usize>,
}

impl Hdrs {
    fn l3(&self) -> R<usize> {
        self.l3.ok_or(ExecError::Truncated)
    }

    /// Offset of the L4 checksum patched on pseudo-header changes, if there is one.
    fn l4_pseudo_csum(&self, d: &[u8]) -> R<Option<(usize, bool)>> {
        let Some(l4) = self.l4 else { return Ok(None) };
        Ok(match self.proto {
            6 => Some((l4 + 16, false)),
            // UDP: 0 means "no checksum" (IPv4); leave it so.
            17 if rd16(d, l4 + 6)? != 0 => Some((l4 + 6, true)),
            58 if self.eth_type == 0x86dd => Some((l4 + 2, false)),
            _ => None,
        })
    }

    /// End of the IP payload (excludes Ethernet padding).
    fn ip_end(&self, d: &[u8]) -> R<usize> {
        let l3 = self.l3()?;
        let end = match self.eth_type {
            0x0800 => l3 + usize::from(rd16(d, l3 + 2)?),
            _ => l3 + 40 + usize::from(rd16(d, l3 + 4)?),
        };
        if end > d.len() {
            return Err(ExecError::Truncated);
        }
        Ok(end)
    }
}

fn shift(off: u16, delta: isize) -> u16 {
    if off == Layout::NONE {
        off
    } else {
        (off as isize + delta).clamp(0, Layout::NONE as isize - 1) as u16
    }
}

/// Apply `actions` to `buf` (a frame whose headers are at `layout`, whose flow key is `key`),
/// calling `out` for each output with the frame as it is at that point.
///
/// On error the frame must be dropped; outputs already handed out stand.
pub fn execute<B: AsRef<[u8]> + AsMut<[u8]>>(
    actions: &[DpAction],
    buf: &mut PacketBuf<B>,
    layout: Layout,
    key: &FlowKey,
    out: &mut impl FnMut(Egress, &mut PacketBuf<B>),
) -> Result<(), ExecError> {
    let mut layout = layout;
    let later = key.get(Field::IpFrag) as u8 & nw_frag::LATER != 0;
    let opt = |o: u16| (o != Layout::NONE).then_some(usize::from(o));
    let mut h = Hdrs {
        eth_type: key.get(Field::EthType) as u16,
        proto: key.get(Field::IpProto) as u8,
        l3: opt(layout.l3),
        l4: if later { None } else { opt(layout.l4) },
    };
    for (i, a) in actions.iter().enumerate() {
        match *a {
            DpAction::Output(p) => out(Egress::Port(p), buf),
            DpAction::Ct {
                zone,
                commit,
                recirc,
                again,
            } => out(
                Egress::Ct(CtRequest::gather(
                    zone,
                    commit,
                    recirc,
                    again,
                    &actions[i + 1..],
                )),
                buf,
            ),
            // Consumed with their `Ct`.
            DpAction::CtSetMark { .. }
            | DpAction::CtSetLabel { .. }
            | DpAction::CtNat { .. }
            | DpAction::CtNatBlocks { .. }
            | DpAction::CtNatAddr { .. } => {}
            DpAction::Normal => out(Egress::Normal, buf),
            DpAction::Controller {
                reason,
                max_len,
                id,
            } => out(
                Egress::Controller {
                    reason,
                    max_len,
                    id,
                },
                buf,
            ),
            DpAction::SetTunnel { id, src, dst } => {
                buf.tunnel = Some(TunnelMeta { id, src, dst });
            }
            DpAction::SetEth { src, dst } => {
                let d = buf.data_mut();
                if let Some(m) = dst {
                    wr(d, 0, &m)?;
                }
                if let Some(m) = src {
                    wr(d, 6, &m)?;
                }
            }
            DpAction::PushVlan { tpid, tci } => {
                if buf.data().len() < 14 {
                    return Err(ExecError::Truncated);
                }
                if !buf.push_front(4) {
                    return Err(ExecError::NoHeadroom);
                }
                let d = buf.data_mut();
                d.copy_within(4..16, 0);
                wr(d, 12, &tpid.to_be_bytes())?;
                wr(d, 14, &tci.to_be_bytes())?;
                layout.n_vlans = layout.n_vlans.saturating_add(1);
                layout.l3 = shift(layout.l3, 4);
                layout.l4 = shift(layout.l4, 4);
                h.l3 = h.l3.map(|o| o + 4);
                h.l4 = h.l4.map(|o| o + 4);
            }
            DpAction::PopVlan => {
                if layout.n_vlans == 0 {
                    continue;
                }
                if buf.data().len() < 18 {
                    return Err(ExecError::Truncated);
                }
                buf.data_mut().copy_within(0..12, 4);
                buf.pull_front(4);
                layout.n_vlans -= 1;
                layout.l3 = shift(layout.l3, -4);
                layout.l4 = shift(layout.l4, -4);
                h.l3 = h.l3.map(|o| o.saturating_sub(4));
                h.l4 = h.l4.map(|o| o.saturating_sub(4));
            }
            DpAction::SetVlanTci(tci) => {
                if layout.n_vlans > 0 {
                    wr(buf.data_mut(), 14, &tci.to_be_bytes())?;
                }
            }
            DpAction::SetIpv4 { src, dst, tos, ttl } => {
                set_ipv4(buf.data_mut(), &h, src, dst, tos, ttl)?
            }
            DpAction::SetIpv6Src(a) => set_ipv6_addr(buf.data_mut(), &h, 8, a)?,
            DpAction::SetIpv6Dst(a) => set_ipv6_addr(buf.data_mut(), &h, 24, a)?,
            DpAction::SetIpv6 { tc, hlim, label } => {
                let d = buf.data_mut();
                let l3 = h.l3()?;
                let mut w0 = rd32(d, l3)?;
                if let Some(tc) = tc {
                    w0 = (w0 & !0x0ff0_0000) | (u32::from(tc) << 20);
                }
                if let Some(l) = label {
                    w0 = (w0 & !0x000f_ffff) | (l & 0x000f_ffff);
                }
                wr(d, l3, &w0.to_be_bytes())?;
                if let Some(hl) = hlim {
                    wr(d, l3 + 7, &[hl])?;
                }
            }
            DpAction::SetL4Ports { src, dst, .. } => set_ports(buf.data_mut(), &h, src, dst)?,
            DpAction::SetIcmp { ty, code } => {
                let d = buf.data_mut();
                let Some(l4) = h.l4 else { continue };
                let old = rd16(d, l4)?;
                let [mut t, mut c] = old.to_be_bytes();
                t = ty.unwrap_or(t);
                c = code.unwrap_or(c);
                let new = u16::from_be_bytes([t, c]);
                wr(d, l4, &new.to_be_bytes())?;
                fix(d, l4 + 2, |s| update16(s, old, new))?;
            }
            DpAction::SetArp { op, spa, tpa } => {
                let d = buf.data_mut();
                let l3 = h.l3()?;
                if let Some(op) = op {
                    wr(d, l3 + 6, &op.to_be_bytes())?;
                }
                if let Some(a) = spa {
                    wr(d, l3 + 14, &a.to_be_bytes())?;
                }
                if let Some(a) = tpa {
                    wr(d, l3 + 24, &a.to_be_bytes())?;
                }
            }
            DpAction::SetArpHw { sha, tha } => {
                let d = buf.data_mut();
                let l3 = h.l3()?;
                if let Some(m) = sha {
                    wr(d, l3 + 8, &m)?;
                }
                if let Some(m) = tha {
                    wr(d, l3 + 18, &m)?;
                }
            }
            DpAction::SetNdTarget(t) => {
                let d = buf.data_mut();
                let Some(l4) = h.l4 else { continue };
                let old = u128::from_be_bytes(rd::<16>(d, l4 + 8)?);
                wr(d, l4 + 8, &t)?;
                fix(d, l4 + 2, |s| update128(s, old, u128::from_be_bytes(t)))?;
            }
            DpAction::SetNd { sll, tll } => set_nd_opts(buf.data_mut(), &h, sll, tll)?,
            DpAction::FipIcmpQuoted {
                quoted_dst,
                from,
                to,
            } => fip::icmp_quoted(buf.data_mut(), &h, quoted_dst, from, to)?,
        }
    }
    Ok(())
}

fn set_ipv4(
    d: &mut [u8],
    h: &Hdrs,
    src: Option<u32>,
    dst: Option<u32>,
    tos: Option<u8>,
    ttl: Option<u8>,
) -> R<()> {
    if h.eth_type != 0x0800 {
        return Ok(());
    }
    let l3 = h.l3()?;
    let l4c = h.l4_pseudo_csum(d)?;
    for (at, new) in [(12, src), (16, dst)] {
        let Some(new) = new else { continue };
        let old = rd32(d, l3 + at)?;
        wr(d, l3 + at, &new.to_be_bytes())?;
        fix(d, l3 + 10, |c| update32(c, old, new))?;
        if let Some((at, udp)) = l4c {
            fix(d, at, |c| {
                let c = update32(c, old, new);
                if udp {
                    udp_fixup(c)
                } else {
                    c
                }
            })?;
        }
    }
    if let Some(tos) = tos {
        let old = rd16(d, l3)?;
        let new = (old & 0xff00) | u16::from(tos);
        wr(d, l3, &new.to_be_bytes())?;
        fix(d, l3 + 10, |c| update16(c, old, new))?;
    }
    if let Some(ttl) = ttl {
        let old = rd16(d, l3 + 8)?;
        let new = (old & 0x00ff) | (u16::from(ttl) << 8);
        wr(d, l3 + 8, &new.to_be_bytes())?;
        fix(d, l3 + 10, |c| update16(c, old, new))?;
    }
    Ok(())
}

fn set_ipv6_addr(d: &mut [u8], h: &Hdrs, at: usize, new: [u8; 16]) -> R<()> {
    if h.eth_type != 0x86dd {
        return Ok(());
    }
    let l3 = h.l3()?;
    let old = u128::from_be_bytes(rd::<16>(d, l3 + at)?);
    let l4c = h.l4_pseudo_csum(d)?;
    wr(d, l3 + at, &new)?;
    if let Some((at, udp)) = l4c {
        let new = u128::from_be_bytes(new);
        fix(d, at, |c| {
            let c = update128(c, old, new);
            if udp {
                udp_fixup(c)
            } else {
                c
            }
        })?;
    }
    Ok(())
}

fn set_ports(d: &mut [u8], h: &Hdrs, src: Option<u16>, dst: Option<u16>) -> R<()> {
    let Some(l4) = h.l4 else { return Ok(()) };
    let csum = match h.proto {
        6 => Some(l4 + 16),
        17 => Some(l4 + 6),
        132 => None,
        _ => return Ok(()),
    };
    for (at, new) in [(0, src), (2, dst)] {
        let Some(new) = new else { continue };
        let old = rd16(d, l4 + at)?;
        wr(d, l4 + at, &new.to_be_bytes())?;
        match csum {
            // UDP: a zero checksum means "none" and stays zero.
            Some(c) if h.proto == 17 && rd16(d, c)? == 0 => {}
            Some(c) if h.proto == 17 => fix(d, c, |s| udp_fixup(update16(s, old, new)))?,
            Some(c) => fix(d, c, |s| update16(s, old, new))?,
            None => {}
        }
    }
    if h.proto == 132 {
        // SCTP: CRC32c over the whole SCTP packet with the checksum field zeroed, stored
        // least significant byte first (RFC 4960 appendix B).
        let end = h.ip_end(d)?;
        wr(d, l4 + 8, &[0; 4])?;
        let crc = crc32c(d.get(l4..end).ok_or(ExecError::Truncated)?);
        wr(d, l4 + 8, &crc.to_le_bytes())?;
    }
    Ok(())
}

fn set_nd_opts(d: &mut [u8], h: &Hdrs, sll: Option<Mac>, tll: Option<Mac>) -> R<()> {
    let Some(l4) = h.l4 else { return Ok(()) };
    let end = h.ip_end(d)?;
    // Options follow the 24-byte NS/NA body; each is a multiple of 8 bytes, so the address
    // (at +2) is 16-bit aligned relative to the ICMPv6 header and patches the sum directly.
    let mut o = l4 + 24;
    while o + 8 <= end {
        let [ty, len] = rd::<2>(d, o)?;
        if len == 0 {
            break;
        }
        let new = match ty {
            1 => sll,
            2 => tll,
            _ => None,
        };
        if let Some(new) = new {
            let old = rd::<6>(d, o + 2)?;
            wr(d, o + 2, &new)?;
            fix(d, l4 + 2, |c| update_bytes(c, &old, &new))?;
        }
        o += usize::from(len) * 8;
    }
    Ok(())
}

/// Apply a NAT rewrite from conntrack to the frame `d` (flow key `key`, headers at `layout`)
/// in place, checksums patched. For an ICMP error, `rewrite` is for the outer header and
/// `inner` for the quoted packet: the quoted IP header checksum is patched and the ICMP
/// checksum recomputed over the message (errors are rare; a recomputation covers every byte
/// changed inside it at once). The quoted L4 checksum is left alone, as the conntrack crate
/// decides (the quote is often truncated, so it cannot be verified anyway).
pub(crate) fn apply_nat(
    d: &mut [u8],
    layout: Layout,
    key: &FlowKey,
    rewrite: Option<&Rewrite>,
    inner: Option<&Rewrite>,
) -> Result<(), ExecError> {
    let later = key.get(Field::IpFrag) as u8 & nw_frag::LATER != 0;
    let opt = |o: u16| (o != Layout::NONE).then_some(usize::from(o));
    let h = Hdrs {
        eth_type: key.get(Field::EthType) as u16,
        proto: key.get(Field::IpProto) as u8,
        l3: opt(layout.l3),
        l4: if later { None } else { opt(layout.l4) },
    };
    if let Some(rw) = rewrite {
        rewrite_hdrs(d, &h, rw)?;
    }
    let (Some(rw), Some(l4)) = (inner, h.l4) else {
        return Ok(());
    };
    // The quoted packet: an IP header of the same family right after the 8-byte ICMP header.
    let q3 = l4 + 8;
    let (qproto, q4) = match h.eth_type {
        0x0800 => (
            rd::<1>(d, q3 + 9)?[0],
            q3 + usize::from(rd::<1>(d, q3)?[0] & 0x0f) * 4,
        ),
        _ => (rd::<1>(d, q3 + 6)?[0], q3 + 40),
    };
    let q = Hdrs {
        eth_type: h.eth_type,
        proto: qproto,
        l3: Some(q3),
        // Ports of the quoted L4 header are rewritten (if quoted); its checksum is not.
        l4: None,
    };
    rewrite_hdrs(d, &q, rw)?;
    let end = h.ip_end(d)?;
    let port = |d: &mut [u8], at: usize, v: Option<u16>| -> R<()> {
        match v {
            Some(v) if at + 2 <= end => wr(d, at, &v.to_be_bytes()),
            _ => Ok(()),
        }
    };
    match qproto {
        6 | 17 | 132 => {
            port(d, q4, rw.src.and_then(|s| s.1))?;
            port(d, q4 + 2, rw.dst.and_then(|s| s.1))?;
        }
        1 | 58 => port(d, q4 + 4, rw.icmp_id)?,
        _ => {}
    }
    // Recompute the ICMP checksum (ICMPv6: with the pseudo-header of the outer addresses,
    // already rewritten).
    let (csum_at, pseudo) = match h.eth_type {
        0x0800 => (l4 + 2, 0),
        _ => {
            let l3 = h.l3()?;
            let src = rd::<16>(d, l3 + 8)?;
            let dst = rd::<16>(d, l3 + 24)?;
            (
                l4 + 2,
                crate::checksum::pseudo_v6(&src, &dst, 58, (end - l4) as u32),
            )
        }
    };
    wr(d, csum_at, &[0, 0])?;
    let c = crate::checksum::checksum_with(pseudo, d.get(l4..end).ok_or(ExecError::Truncated)?);
    wr(d, csum_at, &c.to_be_bytes())
}

/// Addresses, ports and ICMP id of `rw` on the headers `h` describes.
fn rewrite_hdrs(d: &mut [u8], h: &Hdrs, rw: &Rewrite) -> R<()> {
    for (is_src, side) in [(true, rw.src), (false, rw.dst)] {
        let Some((addr, port)) = side else { continue };
        match addr {
            IpAddr::V4(a) => {
                let a = Some(u32::from(a));
                let (s, t) = if is_src { (a, None) } else { (None, a) };
                set_ipv4(d, h, s, t, None, None)?;
            }
            IpAddr::V6(a) => set_ipv6_addr(d, h, if is_src { 8 } else { 24 }, a.octets())?,
        }
        if port.is_some() {
            let (s, t) = if is_src { (port, None) } else { (None, port) };
            set_ports(d, h, s, t)?;
        }
    }
    if let (Some(id), Some(l4)) = (rw.icmp_id, h.l4) {
        // Echo request/reply identifier; the ICMP checksum covers it (not the pseudo-header
        // for ICMPv4; for ICMPv6 the address part was patched above).
        let old = rd16(d, l4 + 4)?;
        wr(d, l4 + 4, &id.to_be_bytes())?;
        fix(d, l4 + 2, |c| update16(c, old, id))?;
    }
    Ok(())
}
