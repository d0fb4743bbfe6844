//! The flow key: every matchable field of a packet in a flat array of 64-bit words.
//!
//! A flat fixed layout makes the hot operations cheap and uniform: a masked match is "AND the
//! key with a mask key, compare with a value key", a classifier subtable hashes only the words
//! its mask touches, and `set_field`/`load`/`move` are bit operations at a known location, the
//! same code for a register as for an IPv6 address. Metadata (registers, `metadata`, tunnel and
//! conntrack fields) lives in the key too, so it travels with the packet through the pipeline.
//!
//! Fields that cannot be present at the same time share storage, as in Open vSwitch: ARP SPA/TPA
//! share the IPv4 address word, ICMP type/code share the transport ports, ND SLL/TLL share the
//! ARP hardware addresses. Prerequisites checked at flow-add time make the aliasing safe.
//!
//! Layout (word: contents, high bits first):
//! ```text
//!  0 tun_id                      1 tun_src | tun_dst           2 metadata
//!  3..=10 xreg0..7 (reg 2N high, reg 2N+1 low)
//! 11 in_port | pkt_mark         12 ct_state | ct_mark          13 ct_zone(16) | 0(16) | recirc_id(32)
//! 14,15 ct_label                16 eth_dst(48) | eth_type      17 eth_src(48) | vlan_tci
//! 18 nw_src | nw_dst (arp_spa | arp_tpa)
//! 19,20 ipv6_src                21,22 ipv6_dst
//! 23 nw_proto(8) | tos(8) | nw_ttl(8) | nw_frag(8) | ipv6_label(32, 20 used)
//! 24 tp_src(16) | tp_dst(16) | tcp_flags(16) | arp_op(16)      (icmp type/code in tp_src/tp_dst)
//! 25 arp_sha/nd_sll(48) | 0      26 arp_tha/nd_tll(48) | 0      27,28 nd_target
//! ```

use control::flow::ast::Match;
use control::flow::field::{ones, Field};

/// Number of 64-bit words in a [`FlowKey`].
pub const KEY_WORDS: usize = 29;

/// Word index of `recirc_id`, which is not an operator-visible field but is matched like one
/// (conntrack recirculation).
pub const RECIRC_WORD: usize = 13;

/// A packet's flow key (or a mask over keys: same layout, bits set where the mask cares).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// The words; see the module documentation for the layout.
    pub w: [u64; KEY_WORDS],
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FlowKey[")?;
        for (i, w) in self.w.iter().enumerate() {
            if *w != 0 {
                write!(f, " {i}:{w:#x}")?;
            }
        }
        write!(f, " ]")
    }
}

/// Where a field is stored: `width` bits starting `shift` bits above the low end of word `word`.
/// 128-bit fields occupy words `word` (high half) and `word + 1` (low half) with `shift == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// First word.
    pub word: u8,
    /// Bit offset inside the word (of the field's least significant bit).
    pub shift: u8,
    /// Width in bits.
    pub width: u8,
}

/// The storage location of `field` in a [`FlowKey`].
pub const fn loc(field: Field) -> Loc {
    use Field::*;
    const fn l(word: u8, shift: u8, width: u8) -> Loc {
        Loc { word, shift, width }
    }
    match field {
        TunId => l(0, 0, 64),
        TunSrc => l(1, 32, 32),
        TunDst => l(1, 0, 32),
        Metadata => l(2, 0, 64),
        Reg(i) => l(3 + (i & 15) / 2, if i % 2 == 0 { 32 } else { 0 }, 32),
        Xreg(i) => l(3 + (i & 7), 0, 64),
        InPort => l(11, 32, 32),
        PktMark => l(11, 0, 32),
        CtState => l(12, 32, 32),
        CtMark => l(12, 0, 32),
        CtZone => l(13, 48, 16),
        CtLabel => l(14, 0, 128),
        EthDst => l(16, 16, 48),
        EthType => l(16, 0, 16),
        EthSrc => l(17, 16, 48),
        VlanTci => l(17, 0, 16),
        Ipv4Src | ArpSpa => l(18, 32, 32),
        Ipv4Dst | ArpTpa => l(18, 0, 32),
        Ipv6Src => l(19, 0, 128),
        Ipv6Dst => l(21, 0, 128),
        IpProto => l(23, 56, 8),
        IpDscp => l(23, 50, 6),
        IpEcn => l(23, 48, 2),
        IpTtl => l(23, 40, 8),
        IpFrag => l(23, 32, 2),
        Ipv6Label => l(23, 0, 20),
        TcpSrc | UdpSrc | SctpSrc => l(24, 48, 16),
        TcpDst | UdpDst | SctpDst => l(24, 32, 16),
        IcmpType | Icmpv6Type => l(24, 48, 8),
        IcmpCode | Icmpv6Code => l(24, 32, 8),
        TcpFlags => l(24, 16, 12),
        ArpOp => l(24, 0, 16),
        ArpSha | NdSll => l(25, 16, 48),
        ArpTha | NdTll => l(26, 16, 48),
        NdTarget => l(27, 0, 128),
    }
}

impl FlowKey {
    /// An all-zero key (also: the all-wildcard mask).
    pub const fn zero() -> Self {
        FlowKey { w: [0; KEY_WORDS] }
    }

    /// Read `field`.
    #[inline]
    pub fn get(&self, field: Field) -> u128 {
        self.get_loc(loc(field))
    }

    /// Write `field` (value truncated to the field's width).
    #[inline]
    pub fn set(&mut self, field: Field, value: u128) {
        self.set_loc_masked(loc(field), value, u128::MAX)
    }

    /// Write the bits of `value` selected by `mask` into `field`.
    #[inline]
    pub fn set_masked(&mut self, field: Field, value: u128, mask: u128) {
        self.set_loc_masked(loc(field), value, mask)
    }

    /// Read the value at `l`.
    #[inline]
    pub fn get_loc(&self, l: Loc) -> u128 {
        let w = l.word as usize;
        if l.width == 128 {
            ((self.w[w] as u128) << 64) | self.w[w + 1] as u128
        } else {
            ((self.w[w] >> l.shift) as u128) & ones(l.width)
        }
    }

    /// Write the bits of `value` selected by `mask` (both right-aligned) at `l`.
    #[inline]
    pub fn set_loc_masked(&mut self, l: Loc, value: u128, mask: u128) {
        let w = l.word as usize;
        let mask = mask & ones(l.width);
        let value = value & mask;
        if l.width == 128 {
            let (mh, ml) = ((mask >> 64) as u64, mask as u64);
            let (vh, vl) = ((value >> 64) as u64, value as u64);
            self.w[w] = (self.w[w] & !mh) | vh;
            self.w[w + 1] = (self.w[w + 1] & !ml) | vl;
        } else {
            let m = (mask as u64) << l.shift;
            self.w[w] = (self.w[w] & !m) | ((value as u64) << l.shift);
        }
    }

    /// `self AND mask`, word by word.
    #[inline]
    pub fn and(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::zero();
        for i in 0..KEY_WORDS {
            out.w[i] = self.w[i] & mask.w[i];
        }
        out
    }

    /// `self OR other`, word by word (used to accumulate the bits a lookup consulted).
    #[inline]
    pub fn or_assign(&mut self, other: &FlowKey) {
        for i in 0..KEY_WORDS {
            self.w[i] |= other.w[i];
        }
    }
}

/// A match compiled to the key layout: `packet matches  <=>  key & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MaskedKey {
    /// Required bits (already masked).
    pub value: FlowKey,
    /// Bits that matter.
    pub mask: FlowKey,
}

impl MaskedKey {
    /// Compile a language-level [`Match`] into the key layout.
    pub fn from_match(m: &Match) -> Self {
        let mut out = MaskedKey::default();
        for (field, e) in m.iter() {
            let l = loc(field);
            out.mask.set_loc_masked(l, e.mask, e.mask);
            out.value.set_loc_masked(l, e.value, e.mask);
        }
        out
    }

    /// True if `key` matches.
    #[inline]
    pub fn matches(&self, key: &FlowKey) -> bool {
        (0..KEY_WORDS).all(|i| key.w[i] & self.mask.w[i] == self.value.w[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap_unless_aliased() {
        // Two fields may share bits only if they are documented aliases.
        let aliases = |a: Field, b: Field| {
            use Field::*;
            let group = |f: Field| match f {
                Ipv4Src | ArpSpa => 1,
                Ipv4Dst | ArpTpa => 2,
                TcpSrc | UdpSrc | SctpSrc | IcmpType | Icmpv6Type => 3,
                TcpDst | UdpDst | SctpDst | IcmpCode | Icmpv6Code => 4,
                ArpSha | NdSll => 5,
                ArpTha | NdTll => 6,
                Reg(_) | Xreg(_) => 7,
                _ => 100 + loc(f).word as u32 * 64 + loc(f).shift as u32,
            };
            group(a) == group(b)
        };
        let fields: Vec<Field> = Field::all().collect();
        for &a in &fields {
            let mut ka = FlowKey::zero();
            ka.set(a, u128::MAX);
            assert_eq!(ka.get(a), a.full_mask(), "{a:?} round trip");
            for &b in &fields {
                if a == b || aliases(a, b) {
                    continue;
                }
                let mut kb = FlowKey::zero();
                kb.set(b, u128::MAX);
                let overlap = (0..KEY_WORDS).any(|i| ka.w[i] & kb.w[i] != 0);
                assert!(!overlap, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn xreg_is_pair_of_regs() {
        let mut k = FlowKey::zero();
        k.set(Field::Reg(2), 0xdead_beef);
        k.set(Field::Reg(3), 0x1234_5678);
        assert_eq!(k.get(Field::Xreg(1)), 0xdead_beef_1234_5678);
    }

    #[test]
    fn masked_key_matches() {
        let mut m = Match::new();
        m.set_exact(Field::EthType, 0x0800);
        m.set(Field::Ipv4Dst, 0x0a00_0000, 0xff00_0000);
        let mk = MaskedKey::from_match(&m);
        let mut k = FlowKey::zero();
        k.set(Field::EthType, 0x0800);
        k.set(Field::Ipv4Dst, 0x0a01_0203);
        assert!(mk.matches(&k));
        k.set(Field::Ipv4Dst, 0x0b01_0203);
        assert!(!mk.matches(&k));
    }
}
