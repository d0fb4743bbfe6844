//! Connection keys: the 5-tuple plus zone, and the two directions of a connection.

use std::net::IpAddr;

use serde::Serialize;

/// IP protocol numbers the tracker knows by name.
pub mod proto {
    /// ICMP (IPv4).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// Direction of a packet relative to the connection that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Dir {
    /// The direction of the packet that created the connection.
    Original = 0,
    /// The opposite direction.
    Reply = 1,
}

impl Dir {
    /// Index into per-direction arrays.
    pub fn idx(self) -> usize {
        self as usize
    }
    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// A connection key in one direction: zone, addresses, protocol and ports.
///
/// For TCP and UDP `sport`/`dport` are the ports. For ICMP and ICMPv6 echo (and the other
/// query/response pairs) `sport` holds the identifier and `dport` is 0: the identifier is the
/// same in both directions, so [`Tuple::reverse`] keeps the ports as they are for ICMP. For every
/// other protocol both ports are 0 and the connection is keyed by addresses and protocol only.
///
/// The zone is part of the key: identical 5-tuples in two zones are two connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Tuple {
    /// Conntrack zone.
    pub zone: u16,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (ICMP: identifier).
    pub sport: u16,
    /// Destination port (ICMP: 0).
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl Tuple {
    /// The key of the same connection seen from the other direction.
    pub fn reverse(&self) -> Tuple {
        let icmp = self.proto == proto::ICMP || self.proto == proto::ICMPV6;
        Tuple {
            zone: self.zone,
            src: self.dst,
            dst: self.src,
            sport: if icmp { self.sport } else { self.dport },
            dport: if icmp { self.dport } else { self.sport },
            proto: self.proto,
        }
    }

    /// Hash of this key in this direction (the index key). Hand-written over fixed words
    /// (two multiply-folds) rather than `derive(Hash)`: it is computed twice per packet.
    pub(crate) fn hash64(&self) -> u64 {
        let (s, d) = (addr_mix(&self.src), addr_mix(&self.dst));
        let misc = u64::from(self.sport)
            | u64::from(self.dport) << 16
            | u64::from(self.proto) << 32
            | u64::from(self.zone) << 40;
        fold(s ^ K[0], d.rotate_left(23) ^ K[1]) ^ fold(misc ^ K[2], s.wrapping_add(d) ^ K[3])
    }

    /// A hash that is the same for both directions, so that the two index records of a
    /// connection and the entry itself live in one shard (one lock covers all three). Built
    /// from operations that commute in (src, dst) and in (sport, dport), so it also holds for
    /// ICMP, whose reverse keeps the identifier in place.
    pub(crate) fn symmetric_hash(&self) -> u64 {
        let (s, d) = (addr_mix(&self.src), addr_mix(&self.dst));
        let (p, q) = (u64::from(self.sport), u64::from(self.dport));
        let misc =
            (p + q) | (p ^ q) << 17 | u64::from(self.proto) << 34 | u64::from(self.zone) << 42;
        fold(s.wrapping_add(d) ^ K[4], (s ^ d) ^ misc ^ K[5])
    }

    /// The tuple as `proto src:sport -> dst:dport zone=Z`, for logs and dumps.
    pub fn display(&self) -> String {
        format!(
            "proto={} src={} dst={} sport={} dport={} zone={}",
            self.proto, self.src, self.dst, self.sport, self.dport, self.zone
        )
    }
}

/// Arbitrary odd constants (digits of pi) to keep zero inputs away from zero products.
const K: [u64; 6] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
];

/// 64x64 -> 128-bit multiply, halves xor-ed: a fast, well-mixing combine.
fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// An address as one well-mixed word.
fn addr_mix(a: &IpAddr) -> u64 {
    match a {
        IpAddr::V4(v4) => u64::from(u32::from(*v4)) | 0xffff_0000_0000,
        IpAddr::V6(v6) => {
            let x = u128::from(*v6);
            fold((x >> 64) as u64 ^ K[2], x as u64 ^ K[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(proto: u8) -> Tuple {
        Tuple {
            zone: 3,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            sport: 1000,
            dport: 80,
            proto,
        }
    }

    #[test]
    fn reverse_is_an_involution_and_swaps_ports() {
        let a = t(proto::TCP);
        let r = a.reverse();
        assert_eq!(r.src, a.dst);
        assert_eq!(r.sport, 80);
        assert_eq!(r.dport, 1000);
        assert_eq!(r.reverse(), a);
        assert_eq!(a.symmetric_hash(), r.symmetric_hash());
        assert_ne!(a.hash64(), r.hash64());
        let mut v6 = a;
        v6.src = "2001:db8::1".parse().unwrap();
        v6.dst = "2001:db8::2".parse().unwrap();
        assert_eq!(v6.symmetric_hash(), v6.reverse().symmetric_hash());
    }

    #[test]
    fn hashes_spread() {
        let mut seen = std::collections::HashSet::new();
        let mut shards = [0u32; 64];
        for i in 0..4096u16 {
            let mut x = t(proto::TCP);
            x.sport = i;
            seen.insert(x.hash64() as u32);
            shards[(x.symmetric_hash() & 63) as usize] += 1;
        }
        assert!(seen.len() > 4090);
        assert!(shards.iter().all(|&n| n > 20 && n < 120), "{shards:?}");
    }

    #[test]
    fn icmp_reverse_keeps_identifier() {
        let a = t(proto::ICMP);
        assert_eq!(a.reverse().sport, a.sport);
        assert_eq!(a.reverse().dport, a.dport);
        assert_eq!(a.symmetric_hash(), a.reverse().symmetric_hash());
    }
}
