//! Deterministic port blocks for shared-address SNAT (RFC 7422 style).
//!
//! Many inside addresses share one public IPv4 address. Instead of remembering which inside
//! address got which public port (state every node would have to exchange), the port range
//! `LO-HI` is cut into equal blocks and each inside address owns one block, computed from the
//! configuration alone:
//!
//! * `n` = number of addresses of the inside prefix (`2^(32 - len)`, network and broadcast
//!   addresses included: the offset in the prefix is the block number, nothing is skipped);
//! * `size` = `floor((HI - LO + 1) / n)`;
//! * the address at offset `i` owns ports `[LO + i*size, LO + (i+1)*size - 1]`;
//! * the last `(HI - LO + 1) - n*size` ports of the range belong to nobody (never allocated).
//!
//! The inverse is as cheap: port `p` in `[LO, LO + n*size - 1]` belongs to offset
//! `(p - LO) / size`. Any node holding the same pool configuration therefore computes the same
//! `(address, block)` for an inside host, and the same owner for a reply's destination port,
//! without talking to any other node (RFC 7422, section 2: "deterministic NAT").
//!
//! A block smaller than [`MIN_BLOCK`] ports is refused ([`BlockError::TooSmall`]): a host
//! with fewer simultaneous connections to one destination than that is of little use, and a
//! typo in the prefix length (`/16` for `/26`) would otherwise silently give every host a
//! handful of ports.
//!
//! The conntrack allocator uses a [`PortBlocks`] through [`crate::NatRequest::block`]: the
//! port range tried for a new SNAT connection is the block of the connection's source, so
//! translations stay collision-free (the ordinary allocator, restricted) and a full block is
//! `nat_exhausted` like any other exhausted range.

use std::net::Ipv4Addr;

/// The smallest block a pool may give each inside address (ports).
pub const MIN_BLOCK: u32 = 64;

/// The block layout of one pool: inside prefix and public port range. Small and `Copy`, so a
/// NAT request can carry it to the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortBlocks {
    /// Network address of the inside prefix (host bits zero).
    base: u32,
    /// Prefix length of the inside prefix (0-32).
    prefix_len: u8,
    /// First public port of the range.
    lo: u16,
    /// Last public port of the range (inclusive).
    hi: u16,
    /// Ports per inside address.
    size: u32,
}

/// Why a block layout is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Prefix length above 32.
    #[error("prefix length /{0} is out of range (0-32)")]
    Prefix(u8),
    /// The address is not the prefix's network address (host bits set).
    #[error("{addr}/{len} has host bits set (the prefix is {net}/{len})")]
    HostBits {
        /// As given.
        addr: Ipv4Addr,
        /// Prefix length.
        len: u8,
        /// The network address it probably meant.
        net: Ipv4Addr,
    },
    /// `lo` is 0 or above `hi`.
    #[error("port range {lo}-{hi} is empty or starts at 0")]
    Range {
        /// First port.
        lo: u16,
        /// Last port.
        hi: u16,
    },
    /// Fewer than [`MIN_BLOCK`] ports per inside address.
    #[error(
        "{addrs} inside addresses share {ports} ports: {size} ports each, fewer than the \
         minimum of {min} (use a longer prefix or a wider port range)"
    )]
    TooSmall {
        /// Inside addresses.
        addrs: u64,
        /// Ports in the range.
        ports: u32,
        /// The block size that would result.
        size: u64,
        /// [`MIN_BLOCK`].
        min: u32,
    },
}

impl PortBlocks {
    /// The layout for inside prefix `net/prefix_len` and public ports `lo-hi` (inclusive).
    pub fn new(net: Ipv4Addr, prefix_len: u8, lo: u16, hi: u16) -> Result<PortBlocks, BlockError> {
        if prefix_len > 32 {
            return Err(BlockError::Prefix(prefix_len));
        }
        let mask = prefix_mask(prefix_len);
        let base = u32::from(net) & mask;
        if base != u32::from(net) {
            return Err(BlockError::HostBits {
                addr: net,
                len: prefix_len,
                net: Ipv4Addr::from(base),
            });
        }
        if lo == 0 || lo > hi {
            return Err(BlockError::Range { lo, hi });
        }
        let addrs = 1u64 << (32 - u32::from(prefix_len));
        let ports = u32::from(hi - lo) + 1;
        let size = u64::from(ports) / addrs;
        if size < u64::from(MIN_BLOCK) {
            return Err(BlockError::TooSmall {
                addrs,
                ports,
                size,
                min: MIN_BLOCK,
            });
        }
        Ok(PortBlocks {
            base,
            prefix_len,
            lo,
            hi,
            size: size as u32,
        })
    }

    /// Network address of the inside prefix.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    /// Prefix length of the inside prefix.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The public port range `(lo, hi)`.
    pub fn range(&self) -> (u16, u16) {
        (self.lo, self.hi)
    }

    /// Number of inside addresses (blocks).
    pub fn addresses(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    /// Ports per inside address.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Offset of `addr` in the inside prefix, if it is inside.
    pub fn index_of(&self, addr: Ipv4Addr) -> Option<u32> {
        let a = u32::from(addr);
        (a & prefix_mask(self.prefix_len) == self.base).then_some(a - self.base)
    }

    /// The inside address at offset `i`.
    pub fn address(&self, i: u32) -> Option<Ipv4Addr> {
        (u64::from(i) < self.addresses()).then(|| Ipv4Addr::from(self.base + i))
    }

    /// The ports `(first, last)` of block `i`.
    pub fn block(&self, i: u32) -> Option<(u16, u16)> {
        if u64::from(i) >= self.addresses() {
            return None;
        }
        // Fits: i * size + size <= addresses * size <= ports <= 65535.
        let first = u32::from(self.lo) + i * self.size;
        Some((first as u16, (first + self.size - 1) as u16))
    }

    /// The block of inside address `addr`.
    pub fn block_of(&self, addr: Ipv4Addr) -> Option<(u16, u16)> {
        self.block(self.index_of(addr)?)
    }

    /// The block number that `port` belongs to (`None`: outside the range, or in the unused
    /// tail).
    pub fn owner_index(&self, port: u16) -> Option<u32> {
        if port < self.lo || port > self.hi {
            return None;
        }
        let i = u32::from(port - self.lo) / self.size;
        (u64::from(i) < self.addresses()).then_some(i)
    }

    /// The inside address that owns `port`.
    pub fn owner(&self, port: u16) -> Option<Ipv4Addr> {
        self.address(self.owner_index(port)?)
    }

    /// The ports at the end of the range that no block covers, if any.
    pub fn unused(&self) -> Option<(u16, u16)> {
        let used = self.addresses() * u64::from(self.size);
        let ports = u64::from(self.hi - self.lo) + 1;
        (used < ports).then(|| ((u64::from(self.lo) + used) as u16, self.hi))
    }
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_slash_32_owns_the_whole_range() {
        let b = PortBlocks::new(ip("10.0.0.7"), 32, 1024, 65535).unwrap();
        assert_eq!((b.addresses(), b.size()), (1, 64512));
        assert_eq!(b.block_of(ip("10.0.0.7")), Some((1024, 65535)));
        assert_eq!(b.block_of(ip("10.0.0.8")), None);
        assert_eq!(b.owner(1024), Some(ip("10.0.0.7")));
        assert_eq!(b.owner(65535), Some(ip("10.0.0.7")));
        assert_eq!(b.owner(1023), None);
        assert_eq!(b.unused(), None);
    }

    #[test]
    fn a_slash_24_over_the_default_range() {
        let b = PortBlocks::new(ip("88.88.88.0"), 24, 1024, 65535).unwrap();
        // 64512 / 256 = 252 ports each, nothing left over.
        assert_eq!(b.size(), 252);
        assert_eq!(b.block(0), Some((1024, 1275)));
        assert_eq!(
            b.block_of(ip("88.88.88.4")),
            Some((1024 + 4 * 252, 1024 + 5 * 252 - 1))
        );
        // The last block ends exactly at the end of the range.
        assert_eq!(b.block(255), Some((65535 - 251, 65535)));
        assert_eq!(b.block(256), None);
        assert_eq!(b.owner(65535), Some(ip("88.88.88.255")));
        assert_eq!(b.owner(1024 + 4 * 252), Some(ip("88.88.88.4")));
        assert_eq!(b.owner(1024 + 4 * 252 - 1), Some(ip("88.88.88.3")));
        assert_eq!(b.unused(), None);
    }

    #[test]
    fn the_tail_that_does_not_divide_belongs_to_nobody() {
        // 1000 ports / 8 addresses = 125 each; 10000-10999 is all used. 1001 ports: one spare.
        let b = PortBlocks::new(ip("192.168.1.0"), 29, 10000, 11000).unwrap();
        assert_eq!(b.size(), 125);
        assert_eq!(b.block(7), Some((10875, 10999)));
        assert_eq!(b.unused(), Some((11000, 11000)));
        assert_eq!(b.owner(11000), None);
        assert_eq!(b.owner(10999), Some(ip("192.168.1.7")));
        assert_eq!(b.owner(9999), None);
    }

    #[test]
    fn small_blocks_and_bad_layouts_are_refused() {
        // A /16 needs 65536 * 64 ports: never.
        assert_eq!(
            PortBlocks::new(ip("10.1.0.0"), 16, 1024, 65535),
            Err(BlockError::TooSmall {
                addrs: 65536,
                ports: 64512,
                size: 0,
                min: MIN_BLOCK
            })
        );
        // /22 over the default range: 63 ports each, one short.
        assert!(matches!(
            PortBlocks::new(ip("10.1.0.0"), 22, 1024, 65535),
            Err(BlockError::TooSmall { size: 63, .. })
        ));
        // /23: 126 each.
        assert_eq!(
            PortBlocks::new(ip("10.1.0.0"), 23, 1024, 65535)
                .unwrap()
                .size(),
            126
        );
        // Exactly the minimum is fine.
        assert_eq!(
            PortBlocks::new(ip("10.1.0.0"), 30, 2000, 2255)
                .unwrap()
                .size(),
            64
        );
        assert!(PortBlocks::new(ip("10.1.0.0"), 30, 2000, 2254).is_err());
        assert!(matches!(
            PortBlocks::new(ip("10.1.0.1"), 24, 1024, 65535),
            Err(BlockError::HostBits { .. })
        ));
        assert_eq!(
            PortBlocks::new(ip("10.1.0.0"), 33, 1024, 65535),
            Err(BlockError::Prefix(33))
        );
        assert!(matches!(
            PortBlocks::new(ip("10.1.0.0"), 32, 0, 100),
            Err(BlockError::Range { .. })
        ));
        assert!(matches!(
            PortBlocks::new(ip("10.1.0.0"), 32, 2000, 1999),
            Err(BlockError::Range { .. })
        ));
        // The whole IPv4 space as inside prefix: refused, no overflow.
        assert!(PortBlocks::new(ip("0.0.0.0"), 0, 1, 65535).is_err());
    }

    proptest! {
        /// `owner(block_port(i, k)) == i` for every block and every port in it; blocks tile
        /// the used part of the range without overlap.
        #[test]
        fn owner_inverts_block(
            len in 22u8..=32,
            net in any::<u32>(),
            lo in 1u16..=40000,
            span in 0u16..=25535,
            pick in any::<u32>(),
            k in any::<u32>(),
        ) {
            let hi = lo.saturating_add(span);
            let net = Ipv4Addr::from(net & prefix_mask(len));
            let Ok(b) = PortBlocks::new(net, len, lo, hi) else {
                // Refused only when the blocks would be too small.
                let n = 1u64 << (32 - u32::from(len));
                prop_assert!((u64::from(hi - lo) + 1) / n < u64::from(MIN_BLOCK));
                return Ok(());
            };
            let i = (u64::from(pick) % b.addresses()) as u32;
            let (first, last) = b.block(i).unwrap();
            prop_assert_eq!(u32::from(last - first) + 1, b.size());
            prop_assert!(b.size() >= MIN_BLOCK);
            let port = first + (k % b.size()) as u16;
            prop_assert_eq!(b.owner_index(port), Some(i));
            let addr = b.address(i).unwrap();
            prop_assert_eq!(b.owner(port), Some(addr));
            prop_assert_eq!(b.block_of(addr), Some((first, last)));
            prop_assert_eq!(b.index_of(addr), Some(i));
            if i + 1 < b.addresses() as u32 {
                prop_assert_eq!(b.block(i + 1).unwrap().0, last + 1);
            }
            prop_assert!(first >= lo && last <= hi);
        }
    }
}
