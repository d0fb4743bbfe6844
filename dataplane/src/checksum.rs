//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The action executor rewrites header fields in place; recomputing a TCP checksum over a
//! 1500-byte payload for every NAT'ed packet would cost more than the rest of the fast path, so
//! every rewrite patches the existing checksum with RFC 1624 equation 3:
//! `HC' = ~(~HC + ~m + m')`, where `m` is the old and `m'` the new value of each 16-bit word
//! that changed. The full sum is here for tests and slow paths (building ICMP errors).
//!
//! Representation: with equation 3 the result is `0x0000` (never `0xFFFF`) whenever the true
//! checksum is zero, which is what a full recomputation over non-zero data produces as well, so
//! `update(full(data)) == full(data')` for every real header. UDP, where `0` means "no
//! checksum", maps a computed `0` to `0xFFFF` itself (see [`udp_fixup`]).

/// One's-complement sum of `data` as big-endian 16-bit words (an odd trailing byte is padded
/// with zero), added to `initial`, not yet folded or complemented.
#[inline]
pub fn sum(initial: u64, data: &[u8]) -> u64 {
    let mut acc = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Fold a wide one's-complement accumulator to 16 bits (end-around carry).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The RFC 1071 checksum of `data`: the complement of its folded one's-complement sum.
/// Over a header whose checksum field holds a valid checksum the result is `0`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// Checksum of `data` preceded by a pseudo-header already summed into `pseudo` (see
/// [`pseudo_v4`], [`pseudo_v6`]).
#[inline]
pub fn checksum_with(pseudo: u64, data: &[u8]) -> u16 {
    !fold(sum(pseudo, data))
}

/// Unfolded sum of the IPv4 pseudo-header (RFC 793/768).
pub fn pseudo_v4(src: u32, dst: u32, proto: u8, len: u16) -> u64 {
    u64::from(src >> 16)
        + u64::from(src & 0xffff)
        + u64::from(dst >> 16)
        + u64::from(dst & 0xffff)
        + u64::from(proto)
        + u64::from(len)
}

/// Unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], proto: u8, len: u32) -> u64 {
    sum(sum(0, src), dst) + u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(proto)
}

/// RFC 1624 eq. 3 for one 16-bit word changing from `old` to `new`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!csum) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// RFC 1624 for a 32-bit (two-word) field, e.g. an IPv4 address.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!csum)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(acc)
}

/// RFC 1624 for a 128-bit (eight-word) field, e.g. an IPv6 address.
#[inline]
pub fn update128(csum: u16, old: u128, new: u128) -> u16 {
    let mut acc = u64::from(!csum);
    for i in 0..8 {
        let sh = i * 16;
        acc += u64::from(!((old >> sh) as u16)) + u64::from((new >> sh) as u16);
    }
    !fold(acc)
}

/// RFC 1624 for an arbitrary even-length, 16-bit-aligned run of bytes changing from `old` to
/// `new` (e.g. a 48-bit MAC inside an ND option). Lengths must be equal; extra bytes of the
/// longer slice are ignored.
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = u64::from(!csum);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u64::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u64::from(u16::from_be_bytes([n[0], n[1]]));
    }
    !fold(acc)
}

/// UDP transmits a computed checksum of zero as `0xFFFF`, because `0` means "no checksum"
/// (RFC 768). Apply to the result of an update of a UDP checksum.
#[inline]
pub fn udp_fixup(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// CRC32c (Castagnoli), used by SCTP instead of the Internet checksum: any SCTP rewrite
/// recomputes it over the whole packet (it is not incrementally updatable like a sum).
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Write `v` at byte `at` and patch the checksum at `csum_at` incrementally.
    fn patch16(buf: &mut [u8], csum_at: usize, at: usize, v: u16) {
        let old = u16::from_be_bytes([buf[at], buf[at + 1]]);
        buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
        let c = u16::from_be_bytes([buf[csum_at], buf[csum_at + 1]]);
        buf[csum_at..csum_at + 2].copy_from_slice(&update16(c, old, v).to_be_bytes());
    }

    fn fill_ipv4_csum(h: &mut [u8]) {
        h[10] = 0;
        h[11] = 0;
        let c = checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example bytes: sum 0xddf2 (folded), checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
        // Odd length pads with a zero byte.
        assert_eq!(fold(sum(0, &[0x12])), 0x1200);
    }

    #[test]
    fn zero_and_ffff_edges() {
        // A header whose true checksum is zero: incremental must give 0x0000, like a full sum,
        // not the equivalent 0xFFFF.
        // Words: 0xffff (so the sum is 0xffff -> checksum 0) after the update.
        let mut h = [0x12, 0x34, 0x00, 0x00, 0xed, 0xcb];
        let c = checksum(&h);
        h[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&h), 0);
        // Rewrite word 0 so that the data (without checksum) sums to 0xffff.
        let new = 0xffff - 0xedcb;
        let old = u16::from_be_bytes([h[0], h[1]]);
        let inc = update16(c, old, new);
        h[0..2].copy_from_slice(&new.to_be_bytes());
        h[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&h));
        assert_eq!(inc, 0x0000);
        // And back out of zero.
        h[2..4].copy_from_slice(&inc.to_be_bytes());
        let inc2 = update16(inc, new, 0x0001);
        h[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
        h[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(inc2, checksum(&h));
        // Old/new of 0xffff vs 0x0000 are the same one's-complement number: no change.
        assert_eq!(update16(0x1234, 0xffff, 0x0000), 0x1234);
        assert_eq!(udp_fixup(0), 0xffff);
        assert_eq!(udp_fixup(5), 5);
    }

    #[test]
    fn pseudo_header_sums_match_smoltcp() {
        use crate::execute::testutil::{ipv4, ipv6, tcp, udp};
        let ip = ipv4(
            [10, 0, 0, 1],
            [192, 168, 1, 9],
            6,
            64,
            &tcp(1, 2, 2, b"abc"),
        );
        let l4 = &ip[20..];
        let ps = pseudo_v4(0x0a00_0001, 0xc0a8_0109, 6, l4.len() as u16);
        assert_eq!(checksum_with(ps, l4), 0);
        let (s, d) = ([1u8; 16], [2u8; 16]);
        let ip = ipv6(s, d, 17, 64, &udp(7, 8, b"hello"));
        let l4 = &ip[40..];
        assert_eq!(checksum_with(pseudo_v6(&s, &d, 17, l4.len() as u32), l4), 0);
    }

    #[test]
    fn crc32c_known_vector() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    proptest! {
        #[test]
        fn incremental16_matches_full(
            mut h in proptest::collection::vec(any::<u8>(), 20..=60),
            word in 0usize..30,
            v in any::<u16>(),
        ) {
            let n = h.len() & !1;
            h.truncate(n);
            // Keep at least one nonzero word so the full sum is never the all-zero special case.
            h[0] |= 0x45;
            fill_ipv4_csum(&mut h);
            let at = (word % (n / 2)) * 2;
            prop_assume!(at != 10 && at != 0);
            patch16(&mut h, 10, at, v);
            let inc = u16::from_be_bytes([h[10], h[11]]);
            fill_ipv4_csum(&mut h);
            prop_assert_eq!(inc, u16::from_be_bytes([h[10], h[11]]));
        }

        #[test]
        fn incremental32_128_match_full(
            mut h in proptest::collection::vec(any::<u8>(), 40..=40),
            a in any::<u32>(),
            b in any::<u128>(),
        ) {
            h[0] |= 0x45;
            fill_ipv4_csum(&mut h);
            let c0 = u16::from_be_bytes([h[10], h[11]]);
            let old32 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            let mut old128b = [0u8; 16];
            old128b.copy_from_slice(&h[24..40]);
            let old128 = u128::from_be_bytes(old128b);
            let c1 = update128(update32(c0, old32, a), old128, b);
            h[12..16].copy_from_slice(&a.to_be_bytes());
            h[24..40].copy_from_slice(&b.to_be_bytes());
            let mut h2 = h.clone();
            fill_ipv4_csum(&mut h2);
            prop_assert_eq!(c1, u16::from_be_bytes([h2[10], h2[11]]));
            // update_bytes agrees with update128 on the same change.
            let c2 = update_bytes(update32(c0, old32, a), &old128b, &b.to_be_bytes());
            prop_assert_eq!(c1, c2);
        }

        #[test]
        fn smoltcp_agrees_after_ipv4_rewrite(
            src in any::<u32>(), dst in any::<u32>(), ttl in 2u8..=255,
            nsrc in any::<u32>(), tos in any::<u8>(),
        ) {
            use smoltcp::wire::{Ipv4Packet, Ipv4Address};
            let mut b = [0u8; 20];
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            p.set_version(4);
            p.set_header_len(20);
            p.set_total_len(20);
            p.set_hop_limit(ttl);
            p.set_src_addr(Ipv4Address::from(src));
            p.set_dst_addr(Ipv4Address::from(dst));
            p.fill_checksum();
            let c = p.checksum();
            let c = update32(c, src, nsrc);
            let c = update16(c, u16::from_be_bytes([ttl, 0]), u16::from_be_bytes([ttl - 1, 0]));
            let c = update16(c, 0x4500, 0x4500 | u16::from(tos));
            p.set_src_addr(Ipv4Address::from(nsrc));
            p.set_hop_limit(ttl - 1);
            p.set_dscp(tos >> 2);
            p.set_ecn(tos & 3);
            p.set_checksum(c);
            prop_assert!(p.verify_checksum());
        }
    }
}
