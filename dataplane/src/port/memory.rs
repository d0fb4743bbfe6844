//! In-process ports for tests and benchmarks.
//!
//! [`pair`] opens a port whose "wire" is a pair of bounded lock-free queues: the [`MemoryPeer`]
//! injects frames the switch will receive and takes the frames the switch transmitted. The peer
//! can also make the port disappear ([`MemoryPeer::disconnect`], the queue's `poll` then reports
//! [`PortError::Gone`]) and observe whether the switch still holds the queues
//! ([`MemoryPeer::live_queues`]), which is how tests check that `del_port` really released them.
//!
//! Frame buffers are recycled through a pool shared by both sides, so a benchmark that injects
//! and receives in a loop does not measure the allocator; with [`MemoryPeer::set_discard_tx`]
//! transmitted frames are only counted, not kept.
//!
//! Tunnel metadata travels on the wire too ([`MemoryPeer::inject_tunneled`],
//! [`MemoryPeer::take_tunneled`]), so datapath tests can play a tunnel port without sockets.

use super::{LentBatch, OpenedPort, PortError, PortInfo, PortKind, PortQueue, QueueCounters};
use crate::execute::{PacketBuf, TunnelMeta};
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Frames each direction of a memory queue holds before it counts drops.
pub const RING: usize = 4096;
/// Largest frame a memory port carries (larger ones are `rx_oversize`/`tx_oversize`).
pub const MAX_FRAME: usize = 16 * 1024;
/// Most frames lent per `recv_in_place` call.
const LEND: usize = 32;
/// Headroom in front of a lent frame (as an AF_XDP chunk has).
const LEND_HEADROOM: usize = 256;

/// State shared by one queue and the peer.
struct Wire {
    /// Peer → switch.
    rx: ArrayQueue<(Vec<u8>, Option<TunnelMeta>)>,
    /// Switch → peer.
    tx: ArrayQueue<(Vec<u8>, Option<TunnelMeta>)>,
    /// Spare buffers (both directions recycle through it).
    pool: ArrayQueue<Vec<u8>>,
    /// Set by [`MemoryPeer::disconnect`].
    gone: AtomicBool,
    /// True while the switch side ([`MemoryQueue`]) exists.
    alive: AtomicBool,
    /// Count transmitted frames instead of keeping them.
    discard: AtomicBool,
    /// Frames transmitted while discarding.
    discarded: AtomicU64,
    /// Frames the peer could not inject because the RX ring was full.
    inject_full: AtomicU64,
    /// The queue offers `recv_in_place` ([`MemoryPeer::set_lend_rx`]).
    lend: AtomicBool,
}

impl Wire {
    fn buffer(&self, frame: &[u8]) -> Vec<u8> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(frame);
        v
    }

    fn recycle(&self, v: Vec<u8>) {
        // A full pool just frees the buffer.
        let _ = self.pool.push(v);
    }
}

/// The switch side of one memory queue.
pub struct MemoryQueue {
    iface: String,
    wire: Arc<Wire>,
    counters: QueueCounters,
    /// Receive buffers lent by `recv_in_place` (with headroom, reused).
    lend: Vec<Vec<u8>>,
}

impl Drop for MemoryQueue {
    fn drop(&mut self) {
        self.wire.alive.store(false, Ordering::Release);
    }
}

impl PortQueue for MemoryQueue {
    fn recv(&mut self, bufs: &mut [PacketBuf]) -> usize {
        let mut n = 0;
        while n < bufs.len() {
            let Some((frame, tunnel)) = self.wire.rx.pop() else {
                break;
            };
            if frame.len() > MAX_FRAME {
                self.counters.rx_oversize += 1;
            } else {
                bufs[n].reset(&frame);
                bufs[n].tunnel = tunnel;
                self.counters.rx_packets += 1;
                self.counters.rx_bytes += frame.len() as u64;
                n += 1;
            }
            self.wire.recycle(frame);
        }
        n
    }

    fn send(&mut self, frames: &[&[u8]]) -> usize {
        self.send_tunneled(frames, &[])
    }

    fn send_tunneled(&mut self, frames: &[&[u8]], meta: &[Option<TunnelMeta>]) -> usize {
        let mut sent = 0;
        for (i, f) in frames.iter().enumerate() {
            sent += usize::from(self.stage(f, meta.get(i).copied().flatten()));
        }
        sent
    }

    fn stages_tx(&self) -> bool {
        true
    }

    /// Copies the frame into a pooled buffer and puts it on the wire at once (nothing to flush).
    fn stage(&mut self, f: &[u8], tunnel: Option<TunnelMeta>) -> bool {
        if f.len() > MAX_FRAME {
            self.counters.tx_oversize += 1;
            return false;
        }
        if self.wire.discard.load(Ordering::Relaxed) {
            self.wire.discarded.fetch_add(1, Ordering::Relaxed);
        } else if let Err((v, _)) = self.wire.tx.push((self.wire.buffer(f), tunnel)) {
            self.wire.recycle(v);
            self.counters.tx_ring_full += 1;
            return false;
        }
        self.counters.tx_packets += 1;
        self.counters.tx_bytes += f.len() as u64;
        true
    }

    fn recv_in_place_supported(&self) -> bool {
        self.wire.lend.load(Ordering::Relaxed)
    }

    /// The frames are copied from the wire into the queue's own buffers (with headroom, as an
    /// AF_XDP chunk has) and lent from there: a memory port has no receive memory of its own,
    /// but the worker goes through the same in-place path as with AF_XDP.
    fn recv_in_place(&mut self, max: usize, f: &mut LentBatch<'_>) -> usize {
        let max = max.min(LEND);
        let mut lens = [0usize; LEND];
        let mut tunnels = [None; LEND];
        let mut n = 0;
        while n < max {
            let Some((frame, tunnel)) = self.wire.rx.pop() else {
                break;
            };
            if frame.len() > MAX_FRAME {
                self.counters.rx_oversize += 1;
            } else {
                tunnels[n] = tunnel;
                if self.lend.len() == n {
                    self.lend.push(Vec::new());
                }
                let b = &mut self.lend[n];
                if b.len() < LEND_HEADROOM + frame.len() {
                    b.resize(LEND_HEADROOM + frame.len(), 0);
                }
                b[LEND_HEADROOM..LEND_HEADROOM + frame.len()].copy_from_slice(&frame);
                lens[n] = frame.len();
                self.counters.rx_packets += 1;
                self.counters.rx_bytes += frame.len() as u64;
                n += 1;
            }
            self.wire.recycle(frame);
        }
        if n == 0 {
            return 0;
        }
        let mut bufs = self.lend.iter_mut();
        let mut views: [PacketBuf<&mut [u8]>; LEND] = std::array::from_fn(|i| {
            let (mem, start, len) = match bufs.next() {
                Some(b) if i < n => (&mut b[..], LEND_HEADROOM, lens[i]),
                _ => (<&mut [u8]>::default(), 0, 0),
            };
            let mut b = PacketBuf::new(mem, start, len).unwrap_or_else(|| unreachable!());
            b.tunnel = tunnels.get(i).copied().flatten();
            b
        });
        f(&mut views[..n]);
        n
    }

    fn poll(&mut self) -> Result<(), PortError> {
        if self.wire.gone.load(Ordering::Acquire) {
            return Err(PortError::Gone(self.iface.clone()));
        }
        Ok(())
    }

    fn tx_pending(&self) -> bool {
        false
    }

    fn rx_fd(&self) -> Option<i32> {
        None
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}

/// The far side of a memory port: the test's or benchmark's end of the wire.
pub struct MemoryPeer {
    name: String,
    wires: Vec<Arc<Wire>>,
}

impl MemoryPeer {
    /// Interface name of the port.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deliver `frame` to the switch on queue 0. False if the RX ring was full (dropped).
    pub fn inject(&self, frame: &[u8]) -> bool {
        self.inject_to(0, frame)
    }

    /// Deliver `frame` to the switch on queue `queue` (modulo the number of queues).
    pub fn inject_to(&self, queue: usize, frame: &[u8]) -> bool {
        self.inject_full(queue, frame, None)
    }

    /// Deliver `frame` on queue 0 as a tunnel port would: decapsulated, with `tunnel`
    /// metadata (the worker puts it into `tun_id`/`tun_src`/`tun_dst`).
    pub fn inject_tunneled(&self, frame: &[u8], tunnel: TunnelMeta) -> bool {
        self.inject_full(0, frame, Some(tunnel))
    }

    fn inject_full(&self, queue: usize, frame: &[u8], tunnel: Option<TunnelMeta>) -> bool {
        let w = &self.wires[queue % self.wires.len()];
        match w.rx.push((w.buffer(frame), tunnel)) {
            Ok(()) => true,
            Err((v, _)) => {
                w.recycle(v);
                w.inject_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Frames the switch transmitted since the last call, queue 0 first, in order per queue.
    pub fn take(&self) -> Vec<Vec<u8>> {
        self.take_tunneled().into_iter().map(|(f, _)| f).collect()
    }

    /// [`MemoryPeer::take`] with the tunnel metadata the switch sent each frame with.
    pub fn take_tunneled(&self) -> Vec<(Vec<u8>, Option<TunnelMeta>)> {
        let mut out = Vec::new();
        for w in &self.wires {
            while let Some(f) = w.tx.pop() {
                out.push(f);
            }
        }
        out
    }

    /// Frames injected but not yet received by the switch.
    pub fn rx_pending(&self) -> usize {
        self.wires.iter().map(|w| w.rx.len()).sum()
    }

    /// Make the interface disappear: the queues' `poll` reports [`PortError::Gone`].
    pub fn disconnect(&self) {
        for w in &self.wires {
            w.gone.store(true, Ordering::Release);
        }
    }

    /// How many of the port's queues the switch side still holds (not dropped).
    pub fn live_queues(&self) -> usize {
        self.wires
            .iter()
            .filter(|w| w.alive.load(Ordering::Acquire))
            .count()
    }

    /// Count transmitted frames instead of keeping them (benchmarks).
    pub fn set_discard_tx(&self, discard: bool) {
        for w in &self.wires {
            w.discard.store(discard, Ordering::Relaxed);
        }
    }

    /// Whether the port's queues lend received frames in place (`PortQueue::recv_in_place`,
    /// the default, like AF_XDP) or only copy them into the worker's buffers (`recv`, like
    /// AF_PACKET). Read when a worker takes the queue: set it before `add_port`.
    pub fn set_lend_rx(&self, lend: bool) {
        for w in &self.wires {
            w.lend.store(lend, Ordering::Relaxed);
        }
    }

    /// Frames transmitted while discarding.
    pub fn discarded(&self) -> u64 {
        self.wires
            .iter()
            .map(|w| w.discarded.load(Ordering::Relaxed))
            .sum()
    }
}

/// A one-queue memory port named `name`, and its peer.
pub fn pair(name: &str) -> (OpenedPort, MemoryPeer) {
    pair_with_queues(name, 1)
}

/// A memory port with `queues` queues (at least 1), and its peer.
pub fn pair_with_queues(name: &str, queues: usize) -> (OpenedPort, MemoryPeer) {
    let queues = queues.max(1);
    let wires: Vec<Arc<Wire>> = (0..queues)
        .map(|_| {
            Arc::new(Wire {
                rx: ArrayQueue::new(RING),
                tx: ArrayQueue::new(RING),
                pool: ArrayQueue::new(RING),
                gone: AtomicBool::new(false),
                alive: AtomicBool::new(true),
                discard: AtomicBool::new(false),
                discarded: AtomicU64::new(0),
                inject_full: AtomicU64::new(0),
                lend: AtomicBool::new(true),
            })
        })
        .collect();
    // A locally administered MAC derived from the name, so ports differ.
    let h = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
        .to_be_bytes();
    let info = PortInfo {
        iface: name.to_string(),
        ifindex: 0,
        kind: PortKind::Memory,
        mode: String::new(),
        queues: queues as u32,
        mtu: 1500,
        mac: [0x02, h[0], h[1], h[2], h[3], h[4]],
    };
    let port = OpenedPort {
        info,
        queues: wires
            .iter()
            .map(|w| {
                Box::new(MemoryQueue {
                    iface: name.to_string(),
                    wire: w.clone(),
                    counters: QueueCounters::default(),
                    lend: (0..LEND).map(|_| vec![0; LEND_HEADROOM + 1536]).collect(),
                }) as Box<dyn PortQueue>
            })
            .collect(),
    };
    (
        port,
        MemoryPeer {
            name: name.to_string(),
            wires,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_gone() {
        let (mut port, peer) = pair("m0");
        assert_eq!(port.info.kind, PortKind::Memory);
        let q = &mut port.queues[0];
        assert!(peer.inject(&[1, 2, 3]));
        let mut bufs = vec![PacketBuf::from_frame(&[]); 4];
        assert_eq!(q.recv(&mut bufs), 1);
        assert_eq!(bufs[0].data(), &[1, 2, 3]);
        assert_eq!(q.send(&[&[4, 5], &[6]]), 2);
        assert_eq!(peer.take(), vec![vec![4, 5], vec![6]]);
        assert_eq!(q.counters().tx_packets, 2);
        assert!(q.poll().is_ok());
        peer.disconnect();
        assert!(matches!(q.poll(), Err(PortError::Gone(_))));
        assert_eq!(peer.live_queues(), 1);
        drop(port);
        assert_eq!(peer.live_queues(), 0);
    }
}
