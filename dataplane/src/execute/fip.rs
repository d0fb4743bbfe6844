//! The per-packet half of `fip_dnat`/`fip_snat`: the header quoted inside an ICMP error.
//!
//! The outer addresses are rewritten by the ordinary `SetIpv4` commit (translation changed the
//! key). The quoted header is not in the key, so [`DpAction::FipIcmpQuoted`] carries the address
//! expected in the quote and its replacement, and each frame is checked here: an ICMPv4 error
//! (type 3, 11 or 12) whose quote holds an IPv4 header with the expected address gets it
//! rewritten; anything else — another address, a quote too short to hold the field, a non-IPv4
//! quote, a later fragment — is left exactly as it is. The rewrite uses the same `set_ipv4`
//! as `set_field` does on the quoted header (its checksum, and the quoted TCP/UDP checksum when
//! the quote includes it, patched with RFC 1624), then patches the ICMP checksum for every byte
//! that changed, also with RFC 1624: a message that arrived with a wrong checksum keeps a wrong
//! one (the receiver must still be able to tell), and the cost does not depend on the quote's
//! length. (`apply_nat` recomputes the ICMP checksum instead; conntrack's NAT has validated the
//! message before it gets there.)
//!
//! [`DpAction::FipIcmpQuoted`]: crate::xlate::DpAction::FipIcmpQuoted

use super::{rd, rd16, rd32, set_ipv4, Hdrs, R};
use crate::checksum::{update16, update_bytes};
use crate::xlate::fip::is_icmp_error;

/// Rewrite the quoted IPv4 source (`quoted_dst == false`) or destination from `from` to `to` in
/// the ICMPv4 error `h` describes, if the frame is one and the quote holds `from` there.
pub(super) fn icmp_quoted(d: &mut [u8], h: &Hdrs, quoted_dst: bool, from: u32, to: u32) -> R<()> {
    if h.eth_type != 0x0800 || h.proto != 1 {
        return Ok(());
    }
    let Some(l4) = h.l4 else { return Ok(()) };
    let end = h.ip_end(d)?;
    if l4 + 8 > end || !is_icmp_error(rd::<1>(d, l4)?[0]) {
        return Ok(());
    }
    // The quote: an IPv4 header (at least the 20 fixed bytes, where the addresses and the
    // header checksum are), then as much of the packet as the error's sender kept.
    let q3 = l4 + 8;
    if q3 + 20 > end {
        return Ok(());
    }
    let vihl = rd::<1>(d, q3)?[0];
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Ok(());
    }
    let at = q3 + if quoted_dst { 16 } else { 12 };
    if rd32(d, at)? != from {
        return Ok(());
    }
    // The quoted TCP/UDP checksum covers the addresses (pseudo-header): patched too when the
    // quote holds it (UDP's is in the first 8 bytes, TCP's needs 18), so the quote is again the
    // packet the host sent. Not for a quoted later fragment (no L4 header there).
    let qproto = rd::<1>(d, q3 + 9)?[0];
    let first_fragment = rd16(d, q3 + 6)? & 0x1fff == 0;
    let q4 = q3 + ihl;
    let l4_csum = match qproto {
        6 if first_fragment && q4 + 18 <= end => Some(q4 + 16),
        17 if first_fragment && q4 + 8 <= end && rd16(d, q4 + 6)? != 0 => Some(q4 + 6),
        _ => None,
    };
    let old_hdr = rd::<20>(d, q3)?;
    let old_l4 = l4_csum.map(|c| rd16(d, c)).transpose()?;
    let q = Hdrs {
        eth_type: 0x0800,
        proto: qproto,
        l3: Some(q3),
        l4: l4_csum.map(|_| q4),
    };
    let (src, dst) = if quoted_dst {
        (None, Some(to))
    } else {
        (Some(to), None)
    };
    set_ipv4(d, &q, src, dst, None, None)?;
    // The ICMP checksum covers every byte just changed (all at even offsets from the ICMP
    // header: the quote starts 8 bytes in, its L4 header a multiple of 4 bytes later). The
    // quoted header's own changes cancel out (its checksum moved by the opposite amount), the
    // quoted L4 checksum's do not; both are accounted for, whatever the quote's state.
    let new_hdr = rd::<20>(d, q3)?;
    let mut c = rd16(d, l4 + 2)?;
    c = update_bytes(c, &old_hdr, &new_hdr);
    if let (Some(at), Some(old)) = (l4_csum, old_l4) {
        c = update16(c, old, rd16(d, at)?);
    }
    super::wr(d, l4 + 2, &c.to_be_bytes())
}
