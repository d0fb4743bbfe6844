//! Connection keys: the 5-tuple plus zone, and the two directions of a connection.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use rustc_hash::FxHasher;
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

    /// Hash of this key in this direction (the index key).
    pub(crate) fn hash64(&self) -> u64 {
        let mut h = FxHasher::default();
        self.hash(&mut h);
        // FxHash's low bits are weak on small inputs; fold the high half in.
        let v = h.finish();
        v ^ (v >> 29)
    }

    /// A hash that is the same for both directions, so that the two index records of a
    /// connection and the entry itself live in one shard (one lock covers all three).
    pub(crate) fn symmetric_hash(&self) -> u64 {
        let r = self.reverse();
        let canon = if *self <= r { *self } else { r };
        let v = canon.hash64();
        v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17
    }

    /// The tuple as `proto src:sport -> dst:dport zone=Z`, for logs and dumps.
    pub fn display(&self) -> String {
        format!(
            "proto={} src={} dst={} sport={} dport={} zone={}",
            self.proto, self.src, self.dst, self.sport, self.dport, self.zone
        )
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
    }

    #[test]
    fn icmp_reverse_keeps_identifier() {
        let a = t(proto::ICMP);
        assert_eq!(a.reverse().sport, a.sport);
        assert_eq!(a.reverse().dport, a.dport);
        assert_eq!(a.symmetric_hash(), a.reverse().symmetric_hash());
    }
}
