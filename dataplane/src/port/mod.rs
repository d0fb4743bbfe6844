//! Ports: the narrow interface between the switch and whatever moves frames.
//!
//! A port is opened on an interface and yields one [`PortQueue`] per active RX queue of that
//! interface. Each queue is owned by exactly one worker, which does both receive and transmit
//! on it (an AF_XDP socket is bound to one queue and is not shared between threads); frames
//! another worker wants to send through it cross over a lock-free queue to the owner.
//!
//! Kinds:
//! * `afxdp` — AF_XDP sockets (copy or zero-copy, native or generic XDP), the fast path. All
//!   `unsafe` of the project lives in its module.
//! * `afpacket` — a raw `AF_PACKET` socket with `PACKET_IGNORE_OUTGOING`, the fallback when
//!   AF_XDP cannot be had.
//! * `memory` — an in-process port for tests and benchmarks.
//! * `vxlan` — a logical VXLAN tunnel port: the switch builds and parses the VXLAN header,
//!   picks the VNI and remote VTEP, and fills `tun_id`/`tun_src`/`tun_dst`; the outer IPv4/UDP
//!   goes through a kernel UDP socket bound to the local VTEP address (the kernel does routing,
//!   ARP and checksums of the underlay). See [`vxlan`] for the decision and its limits.
//!
//! Tunnel metadata crosses the queue interface in both directions: `recv` sets
//! `PacketBuf::tunnel` on decapsulated frames, and [`PortQueue::send_tunneled`] hands each
//! frame's metadata (from `set_tunnel`, `set_field:..->tun_dst`, or as received) to the
//! encapsulating port; other kinds ignore it.
//!
//! [`open()`] opens a port as a [`PortRequest`] asks (`auto`: AF_XDP, else AF_PACKET with a
//! warning giving the reason); [`iface`] looks interfaces up; [`cleanup_stale_xdp`] and
//! [`sweep_stale_xdp`] detach AF_XDP programs a crashed run left attached. The backends'
//! modules document what they fix (`afxdp`: mode obtained on veth, libbpf defects, TX-kick
//! policy; `afpacket`: VLAN re-insertion, checksum caveat). Lab tests on real veths and
//! namespaces: `dataplane/tests/port_lab.rs` (root).
//!
//! The queue interface copies frames in and out of the caller's buffers, so packet buffers never
//! alias socket memory and a port can be swapped without touching the workers. Transmit has a
//! second form for queues that can take it: [`PortQueue::stage`] copies a frame straight into
//! the queue's transmit memory (the AF_XDP UMEM) at output time and [`PortQueue::flush`] puts
//! the batch on the ring, which saves the worker's own staging copy; queues that do not offer
//! it (`stages_tx` false, the default) keep working through `send`. Receive likewise:
//! [`PortQueue::recv_in_place`] lends the received frames where the kernel wrote them for the
//! duration of a callback, so an AF_XDP worker copies each forwarded frame exactly once (RX UMEM
//! chunk → TX UMEM chunk, like a bare forwarder); `recv` into owned buffers stays for the rest.

use crate::execute::{PacketBuf, TunnelMeta};

pub mod memory;
use serde::{Deserialize, Serialize};

pub mod afpacket;
pub mod afxdp;
pub mod iface;
mod open;
pub mod vxlan;

pub use afxdp::{cleanup_stale_xdp, sweep_stale_xdp};
pub use open::{open, open_vxlan};

/// Which implementation a port uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortKind {
    /// AF_XDP socket.
    Afxdp,
    /// AF_PACKET raw socket.
    Afpacket,
    /// In-process (tests, benchmarks).
    Memory,
    /// VXLAN tunnel (logical port, kernel UDP socket underneath).
    Vxlan,
}

impl PortKind {
    /// Lower-case name as shown by `swctl show`.
    pub fn name(self) -> &'static str {
        match self {
            PortKind::Afxdp => "afxdp",
            PortKind::Afpacket => "afpacket",
            PortKind::Memory => "memory",
            PortKind::Vxlan => "vxlan",
        }
    }
}

/// What `swctl add-port --type` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRequest {
    /// AF_XDP if it can be had, else AF_PACKET (the reason is logged).
    Auto,
    /// AF_XDP or fail.
    Afxdp,
    /// AF_PACKET or fail.
    Afpacket,
}

/// How the port was actually set up, for `swctl show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    /// Interface name.
    pub iface: String,
    /// Interface index.
    pub ifindex: u32,
    /// Kind obtained.
    pub kind: PortKind,
    /// For AF_XDP: "native" or "generic" XDP attach, and "copy" or "zero-copy"
    /// (e.g. "native, copy"); empty for other kinds.
    pub mode: String,
    /// Number of queues served.
    pub queues: u32,
    /// Interface MTU.
    pub mtu: u32,
    /// Interface MAC address.
    pub mac: [u8; 6],
}

/// Per-queue I/O counters, kept by the queue itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames handed to the kernel/peer for transmission.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Frames dropped on receive because they did not fit a buffer.
    pub rx_oversize: u64,
    /// Frames dropped on transmit because the TX ring or buffers were full.
    pub tx_ring_full: u64,
    /// Frames dropped on transmit because they exceed the port's frame size.
    pub tx_oversize: u64,
    /// Receive or transmit system-call errors.
    pub io_errors: u64,
    /// VXLAN: datagrams received without a valid VXLAN header and inner Ethernet header.
    #[serde(default)]
    pub vxlan_bad_header: u64,
    /// VXLAN: datagrams received with a VNI other than the port's fixed `--key`.
    #[serde(default)]
    pub vxlan_unknown_vni: u64,
    /// VXLAN: frames not sent because a `--remote flow` port had no `tun_dst` for them.
    #[serde(default)]
    pub vxlan_no_remote: u64,
    /// AF_XDP, counted by the kernel (`XDP_STATISTICS`): frames dropped before the switch saw
    /// them because no free chunk was in the fill ring — the worker is not keeping up (at
    /// overload, every received chunk is waiting in the RX ring).
    #[serde(default)]
    pub xsk_fill_ring_empty: u64,
    /// AF_XDP, kernel: frames dropped because the RX ring was full.
    #[serde(default)]
    pub xsk_rx_ring_full: u64,
    /// AF_XDP, kernel: frames dropped on receive for other reasons (larger than a chunk, ...).
    #[serde(default)]
    pub xsk_rx_dropped: u64,
    /// AF_XDP, kernel: invalid descriptors in the fill (RX) or TX ring (never expected).
    #[serde(default)]
    pub xsk_invalid_descs: u64,
}

/// Why a port or queue failed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// No such interface.
    #[error("no interface named {0}")]
    NoSuchInterface(String),
    /// The requested kind cannot be set up on this interface (reason given).
    #[error("cannot open {iface} as {kind}: {reason}")]
    Unavailable {
        /// Interface.
        iface: String,
        /// Kind tried.
        kind: &'static str,
        /// Why, in words an operator can act on.
        reason: String,
    },
    /// The interface went away while the port was open.
    #[error("interface {0} disappeared")]
    Gone(String),
    /// Other I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// What [`PortQueue::recv_in_place`] hands a batch of lent frames to.
pub type LentBatch<'a> = dyn FnMut(&mut [PacketBuf<&mut [u8]>]) + 'a;

/// One queue of an open port: the only thing a worker touches on the packet path.
///
/// Contract: `recv` and `send` never block and never allocate on the steady-state path; errors
/// are counted in [`QueueCounters`] and the call returns what it managed. Implementations fix
/// their backend's quirks inside (e.g. AF_XDP copy mode sends at most 32 descriptors per
/// kernel wake-up: `send` submits ≤ 32 per kick and `poll` keeps kicking while completions are
/// outstanding; the fill ring is kept stocked even on a mostly-TX queue).
pub trait PortQueue: Send {
    /// Receive up to `bufs.len()` frames, copying each into the next buffer (via
    /// `PacketBuf::reset`). Returns how many buffers were filled.
    fn recv(&mut self, bufs: &mut [PacketBuf]) -> usize;

    /// Queue `frames` for transmission. Returns how many were accepted; the rest were dropped
    /// and counted (`tx_ring_full`, `tx_oversize`).
    fn send(&mut self, frames: &[&[u8]]) -> usize;

    /// [`PortQueue::send`] with each frame's tunnel metadata (`meta[i]` for `frames[i]`;
    /// missing entries are `None`), for ports that encapsulate. The default ignores it.
    fn send_tunneled(&mut self, frames: &[&[u8]], meta: &[Option<TunnelMeta>]) -> usize {
        let _ = meta;
        self.send(frames)
    }

    /// True if the queue stages outgoing frames itself ([`PortQueue::stage`] copies straight
    /// into its transmit memory). Otherwise (the default) the worker copies frames into staging
    /// buffers of its own and hands a batch to [`PortQueue::send`]. Fixed for a queue's life.
    fn stages_tx(&self) -> bool {
        false
    }

    /// Copy `frame` (with its tunnel metadata, for a port that encapsulates) into the queue's
    /// transmit memory now; it goes out with the next [`PortQueue::flush`] (or earlier, once a
    /// kernel wake-up's worth is staged). Returns false if it was dropped and counted
    /// (`tx_ring_full`, `tx_oversize`). The default sends it at once.
    fn stage(&mut self, frame: &[u8], tunnel: Option<TunnelMeta>) -> bool {
        self.send_tunneled(&[frame], &[tunnel]) == 1
    }

    /// Transmit what [`PortQueue::stage`] staged. The default has nothing staged.
    fn flush(&mut self) {}

    /// True if the queue can lend received frames in place ([`PortQueue::recv_in_place`]).
    /// Fixed for a queue's life; the default is false.
    fn recv_in_place_supported(&self) -> bool {
        false
    }

    /// Receive up to `max` frames and hand them to `f` in place — views into the queue's own
    /// receive memory (AF_XDP: the UMEM chunks the kernel wrote), each with the chunk's
    /// headroom and tailroom for rewrites — instead of copying them into the caller's buffers.
    /// The memory goes back to the kernel when `f` returns. Returns how many frames `f` got.
    /// Queues without it (the default) receive nothing here: callers check
    /// [`PortQueue::recv_in_place_supported`] and use [`PortQueue::recv`] otherwise.
    fn recv_in_place(&mut self, max: usize, f: &mut LentBatch<'_>) -> usize {
        let _ = (max, f);
        0
    }

    /// Whether received frames are waiting, as far as the queue can tell cheaply (without taking
    /// them). The worker checks it before lending a batch, so that an empty queue costs no
    /// more than this, and so that an iteration's busy time starts when frames are there —
    /// before their descriptors are read, as the bare forwarder of the lab benchmark counts it.
    /// The default says yes (the receive call finds out).
    fn rx_ready(&mut self) -> bool {
        true
    }

    /// Make progress without new work: reap TX completions, wake the kernel if transmissions
    /// are pending, restock the fill ring. Called once per worker loop iteration. Returns
    /// `Err(PortError::Gone)` once the interface has disappeared.
    fn poll(&mut self) -> Result<(), PortError>;

    /// True if there is TX work in flight (the worker must not sleep while it is).
    fn tx_pending(&self) -> bool;

    /// A file descriptor that becomes readable when frames arrive, for the `sleep` idle
    /// policy (`poll(2)` on it); `None` if the queue cannot be waited on.
    fn rx_fd(&self) -> Option<i32>;

    /// Counters so far.
    fn counters(&self) -> QueueCounters;
}

/// An opened port: its description and its queues (one per active RX queue).
pub struct OpenedPort {
    /// How it was set up.
    pub info: PortInfo,
    /// Queues, to be distributed over workers.
    pub queues: Vec<Box<dyn PortQueue>>,
}
