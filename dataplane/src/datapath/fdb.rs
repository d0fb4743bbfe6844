//! The MAC learning table of one bridge, shared by every worker without locks.
//!
//! Every packet handled by `normal` reads it (destination lookup) and most of them would write
//! it (source learning), from several workers at once, so a lock — even a read lock — per packet
//! is out. The table is a fixed array of slots; a (VLAN, MAC) pair hashes to a window of
//! [`WINDOW`] consecutive slots and may sit in any of them. Each slot is a small seqlock made of
//! atomics: a writer claims the slot by moving its sequence number from even to odd with a
//! compare-and-swap (if another writer holds it, this learning attempt is simply skipped — the
//! next packet from that host retries), stores key and port, and releases with the next even
//! number; a reader retries nothing: a slot being written, or written while read, reads as
//! absent, which makes `normal` flood one packet, the safe answer.
//!
//! Learning writes only what changed: a (VLAN, MAC) already mapped to the ingress port is left
//! alone unless its timestamp is older than [`REFRESH_MS`], so a steady stream writes its
//! slot's `seen` word about once a second and never takes the slot. Aging is lazy: an entry
//! older than the aging time reads as absent and its slot is reused first. When a window is
//! full of live entries the least recently seen one is replaced (a bounded table degrades to
//! flooding, never to unbounded memory).
//!
//! Learned remote VTEP: a MAC learned on a tunnel port also records the outer source address
//! (`tun_src`) it came from, stored with the port in the same 64-bit word (`remote << 32 |
//! port`), so it is read and written under the same seqlock at no extra cost. `normal` sends
//! unicast to that MAC to that remote (`--remote flow` VXLAN ports). A MAC that moves to
//! another remote on the same port is rewritten like a MAC that moves to another port.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Slots per bridge (power of two).
pub const SLOTS: usize = 8192;
/// Slots a key may occupy.
pub const WINDOW: usize = 8;
/// A correct entry's timestamp is refreshed at most this often (ms).
pub const REFRESH_MS: u64 = 1000;

const VALID: u64 = 1 << 63;

#[derive(Default)]
struct Slot {
    /// Seqlock sequence: odd while a writer holds the slot.
    seq: AtomicU64,
    /// `VALID | vlan << 48 | mac`, 0 when empty.
    key: AtomicU64,
    /// `remote << 32 | port`: OpenFlow port and remote VTEP (IPv4, 0 if none).
    port: AtomicU64,
    /// Milliseconds (datapath clock) when last seen on `port`; written outside the seqlock
    /// (a torn pairing with `port` only makes an age off by one refresh).
    seen: AtomicU64,
}

/// One learned entry as read from the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// VLAN id (0 for untagged).
    pub vlan: u16,
    /// MAC address.
    pub mac: [u8; 6],
    /// Port it was last seen on.
    pub port: u32,
    /// Remote VTEP (IPv4) it was seen behind, on a tunnel port; 0 otherwise.
    pub remote: u32,
    /// When (datapath clock, ms).
    pub seen_ms: u64,
}

/// A bridge's MAC table.
pub struct Fdb {
    slots: Box<[Slot]>,
    aging_ms: u64,
}

/// The packed key of (VLAN, MAC).
#[inline]
fn pack(vlan: u16, mac: &[u8; 6]) -> u64 {
    let m = mac.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    VALID | (u64::from(vlan & 0xfff) << 48) | m
}

fn unpack(k: u64) -> (u16, [u8; 6]) {
    let b = k.to_be_bytes();
    (
        ((k >> 48) & 0xfff) as u16,
        [b[2], b[3], b[4], b[5], b[6], b[7]],
    )
}

impl Fdb {
    /// An empty table whose entries expire `aging_secs` after they were last seen.
    pub fn new(aging_secs: u64) -> Fdb {
        Fdb {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            aging_ms: aging_secs.saturating_mul(1000).max(1),
        }
    }

    #[inline]
    fn window(k: u64) -> impl Iterator<Item = usize> {
        // Fibonacci hashing: the top bits of the product depend on every key bit.
        let h = (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize;
        (0..WINDOW).map(move |i| (h + i) & (SLOTS - 1))
    }

    /// Consistent read of slot `i`: (key, `remote << 32 | port`), or `None` if it is being
    /// written.
    #[inline]
    fn read(&self, i: usize) -> Option<(u64, u64)> {
        let s = &self.slots[i];
        let s1 = s.seq.load(Ordering::Acquire);
        if s1 & 1 != 0 {
            return None;
        }
        let k = s.key.load(Ordering::Relaxed);
        let p = s.port.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (s.seq.load(Ordering::Relaxed) == s1).then_some((k, p))
    }

    /// Write slot `i` if no other writer holds it.
    fn write(&self, i: usize, k: u64, port: u64, now_ms: u64) {
        let s = &self.slots[i];
        let s1 = s.seq.load(Ordering::Relaxed);
        if s1 & 1 != 0
            || s.seq
                .compare_exchange(s1, s1 + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        s.key.store(k, Ordering::Relaxed);
        s.port.store(port, Ordering::Relaxed);
        s.seen.store(now_ms, Ordering::Relaxed);
        s.seq.store(s1 + 2, Ordering::Release);
    }

    fn fresh(&self, i: usize, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.slots[i].seen.load(Ordering::Relaxed)) < self.aging_ms
    }

    /// The port (VLAN, MAC) was last seen on, if the entry is live.
    #[inline]
    pub fn lookup(&self, vlan: u16, mac: &[u8; 6], now_ms: u64) -> Option<u32> {
        self.lookup_remote(vlan, mac, now_ms).map(|(p, _)| p)
    }

    /// The port and remote VTEP (0 if none) (VLAN, MAC) was last seen on, if live.
    #[inline]
    pub fn lookup_remote(&self, vlan: u16, mac: &[u8; 6], now_ms: u64) -> Option<(u32, u32)> {
        let k = pack(vlan, mac);
        Self::window(k).find_map(|i| match self.read(i) {
            Some((kk, p)) if kk == k && self.fresh(i, now_ms) => Some((p as u32, (p >> 32) as u32)),
            _ => None,
        })
    }

    /// Record that (VLAN, MAC) was seen on `port`. Writes nothing if the entry already says so
    /// and was refreshed less than [`REFRESH_MS`] ago.
    #[inline]
    pub fn learn(&self, vlan: u16, mac: &[u8; 6], port: u32, now_ms: u64) {
        self.learn_remote(vlan, mac, port, 0, now_ms)
    }

    /// [`Fdb::learn`], recording also the remote VTEP (`tun_src`, 0 if none) behind `port`.
    pub fn learn_remote(&self, vlan: u16, mac: &[u8; 6], port: u32, remote: u32, now_ms: u64) {
        let port = (u64::from(remote) << 32) | u64::from(port);
        let k = pack(vlan, mac);
        let mut victim: Option<(usize, u64)> = None;
        for i in Self::window(k) {
            let Some((kk, p)) = self.read(i) else {
                continue;
            };
            let seen = self.slots[i].seen.load(Ordering::Relaxed);
            if kk == k {
                if p != port {
                    self.write(i, k, port, now_ms);
                } else if now_ms.saturating_sub(seen) >= REFRESH_MS {
                    self.slots[i].seen.store(now_ms, Ordering::Relaxed);
                }
                return;
            }
            // Empty or expired slots first, then the least recently seen.
            let rank = if kk == 0 || !self.fresh(i, now_ms) {
                0
            } else {
                seen.saturating_add(1)
            };
            if !matches!(victim, Some((_, r)) if r <= rank) {
                victim = Some((i, rank));
            }
        }
        if let Some((i, _)) = victim {
            self.write(i, k, port, now_ms);
        }
    }

    /// Forget every entry pointing to `port` (the port was deleted).
    pub fn flush_port(&self, port: u32, now_ms: u64) {
        for i in 0..SLOTS {
            if let Some((k, p)) = self.read(i) {
                if k != 0 && p as u32 == port {
                    self.write(i, 0, 0, now_ms);
                }
            }
        }
    }

    /// Live entries (one per (VLAN, MAC), the most recent if a race stored two), sorted by
    /// VLAN then MAC.
    pub fn entries(&self, now_ms: u64) -> Vec<Learned> {
        let mut v: Vec<Learned> = (0..SLOTS)
            .filter_map(|i| {
                let (k, p) = self.read(i)?;
                if k == 0 || !self.fresh(i, now_ms) {
                    return None;
                }
                let (vlan, mac) = unpack(k);
                Some(Learned {
                    vlan,
                    mac,
                    port: p as u32,
                    remote: (p >> 32) as u32,
                    seen_ms: self.slots[i].seen.load(Ordering::Relaxed),
                })
            })
            .collect();
        v.sort_by(|a, b| (a.vlan, a.mac, b.seen_ms).cmp(&(b.vlan, b.mac, a.seen_ms)));
        v.dedup_by(|b, a| a.vlan == b.vlan && a.mac == b.mac);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn learn_lookup_age_move_flush() {
        let f = Fdb::new(2);
        assert_eq!(f.lookup(0, &A, 0), None);
        f.learn(0, &A, 1, 0);
        assert_eq!(f.lookup(0, &A, 10), Some(1));
        assert_eq!(f.lookup(5, &A, 10), None, "per VLAN");
        f.learn(0, &A, 2, 20);
        assert_eq!(f.lookup(0, &A, 30), Some(2), "moved");
        assert_eq!(f.lookup(0, &A, 2020), None, "aged");
        f.learn(0, &A, 2, 3000);
        assert_eq!(f.entries(3000).len(), 1);
        f.flush_port(2, 3000);
        assert_eq!(f.lookup(0, &A, 3000), None);
    }

    #[test]
    fn remote_vtep_is_learned_with_the_port() {
        let f = Fdb::new(300);
        f.learn_remote(0, &A, 7, 0x0a00_0002, 0);
        assert_eq!(f.lookup_remote(0, &A, 10), Some((7, 0x0a00_0002)));
        assert_eq!(f.lookup(0, &A, 10), Some(7));
        // Moving to another remote behind the same port rewrites the entry at once.
        f.learn_remote(0, &A, 7, 0x0a00_0003, 20);
        assert_eq!(f.lookup_remote(0, &A, 30), Some((7, 0x0a00_0003)));
        assert_eq!(f.entries(30)[0].remote, 0x0a00_0003);
        // Seen on a plain port: no remote.
        f.learn(0, &A, 2, 40);
        assert_eq!(f.lookup_remote(0, &A, 50), Some((2, 0)));
        f.flush_port(2, 60);
        assert_eq!(f.lookup(0, &A, 60), None);
    }

    #[test]
    fn full_window_replaces_oldest() {
        let f = Fdb::new(300);
        // Many more MACs than slots: the table stays bounded and recent ones are found.
        for i in 0..(SLOTS as u64 * 2) {
            let b = i.to_be_bytes();
            f.learn(0, &[2, b[3], b[4], b[5], b[6], b[7]], 1, i);
        }
        assert!(f.entries(SLOTS as u64 * 2).len() <= SLOTS);
        let b = (SLOTS as u64 * 2 - 1).to_be_bytes();
        assert_eq!(
            f.lookup(0, &[2, b[3], b[4], b[5], b[6], b[7]], SLOTS as u64 * 2),
            Some(1)
        );
    }
}
