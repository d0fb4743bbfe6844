//! VXLAN tunnel ports (RFC 7348): the switch encapsulates and decapsulates, the kernel carries.
//!
//! A VXLAN port is a *logical* port (its name is not an interface) of kind `vxlan`:
//!
//! ```text
//! swctl add-port BR vx0 --type vxlan --local 10.0.0.1 --remote 10.0.0.2|flow \
//!       [--key flow|N] [--dst-port 4789]
//! ```
//!
//! # Who does what
//!
//! The switch owns everything VXLAN: building and parsing the 8-byte header
//! ([`crate::packet::vxlan`]), VNI handling (`--key`), the choice of the remote VTEP
//! (`--remote`, `set_field:IP->tun_dst`, or the remote learned by `normal`), and putting the
//! outer addresses and VNI of a received packet into its flow key (`tun_id`, `tun_src`,
//! `tun_dst`). The outer IPv4/UDP goes through an ordinary kernel UDP socket bound to
//! `--local`:`--dst-port` in the daemon's network namespace, so the kernel's underlay stack
//! does routing, neighbour resolution (ARP), outer checksums and fragment reassembly. The
//! underlay is the host's business and the kernel already does it well; Open vSwitch's
//! userspace datapath re-implements route and ARP lookups for its tunnels, we reuse the
//! kernel's. The door stays open for an AF_XDP underlay later: only this module knows how
//! the outer headers are sent.
//!
//! I/O is batched and non-blocking: `recvmmsg`/`sendmmsg` through `nix` (safe wrappers), up to
//! [`BATCH`] datagrams per system call; the inner frame is sent from the caller's buffer with
//! the header in a second iovec (no copy on transmit), and received into per-queue buffers
//! that are copied once into the worker's packet buffers like every other port kind.
//!
//! # Receive
//!
//! Each datagram must hold a VXLAN header with the I flag and an inner frame of at least an
//! Ethernet header, else it is dropped and counted `vxlan_bad_header`. With `--key N` only VNI
//! N is accepted (others: `vxlan_unknown_vni`); with `--key flow` any VNI is. The inner frame
//! enters the pipeline with `in_port` = this port and [`TunnelMeta`] = (VNI, outer source,
//! outer destination = `--local`), which the worker copies into the key's `tun_id`,
//! `tun_src`, `tun_dst` — so they are part of the megaflow key and flows matching
//! `tun_id=0x43e` stay correct in the cache. A datagram larger than the receive buffer
//! ([`RX_BUF`]) is `rx_oversize`.
//!
//! # Transmit
//!
//! VNI: the packet's tunnel metadata `tun_id` (from `set_tunnel`/`set_field:..->tun_id`, or as
//! received on a tunnel port) with `--key flow` (0 if the packet has none), else N. Remote:
//! `--remote IP`, or with `--remote flow` the packet's `tun_dst` (`set_field:IP->tun_dst`, or
//! the remote VTEP `normal` learned for the destination MAC); none → dropped and counted
//! `vxlan_no_remote`. The outer UDP source port is the bound `--dst-port` (one socket per
//! port: no per-flow source-port entropy for ECMP underlays; documented limit).
//!
//! # MTU
//!
//! The outer packet adds 50 bytes to the inner IP packet (outer IPv4 20 + UDP 8 + VXLAN 8 +
//! inner Ethernet 14), so hosts behind the tunnel must use an MTU of at most the underlay's
//! MTU minus 50 (minus 4 more per VLAN tag inside). The underlay MTU is that of the interface
//! holding `--local` when the port is opened (1500 if none is found); `show` prints the
//! resulting inner MTU. An inner frame that would not fit is dropped and counted
//! `tx_oversize` rather than fragmented by the kernel (VXLAN frames must not be fragmented,
//! RFC 7348 §4.3). IPv6 underlays are not supported (`tun_src`/`tun_dst` are IPv4 fields).
//!
//! # Limits
//!
//! One VXLAN port per (`--local`, `--dst-port`): the socket owns that address, so a second
//! port on it is refused by the bind (`address in use`); several VNIs on one address are
//! served by one `--key flow` port and flows matching `tun_id`.

#![allow(unsafe_code)]

use super::{OpenedPort, PortError, PortInfo, PortKind, PortQueue, QueueCounters};
use crate::execute::{PacketBuf, TunnelMeta};
use crate::packet::vxlan::{self, VxlanPacket, VxlanRepr, VNI_MAX};
use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrIn};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams per `recvmmsg`/`sendmmsg` call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: a 9000-byte jumbo inner frame with tags and the header.
pub const RX_BUF: usize = 9216 + vxlan::HEADER_LEN;
/// Bytes the encapsulation adds in front of the inner frame on the wire (IPv4, UDP, VXLAN).
pub const OUTER_LEN: usize = 20 + 8 + vxlan::HEADER_LEN;
/// What `show` subtracts from the underlay MTU: the outer headers plus the inner Ethernet
/// header (the inner IP MTU hosts must use).
pub const OVERHEAD: u32 = OUTER_LEN as u32 + 14;
/// Socket buffers asked for (the kernel caps them at `net.core.{r,w}mem_max`).
const SOCK_BUF: usize = 4 << 20;

/// Where a VXLAN port sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Remote {
    /// Always this VTEP.
    Ip(Ipv4Addr),
    /// The packet's `tun_dst` (set by a flow or learned by `normal`).
    Flow,
}

/// Which VNI a VXLAN port accepts and sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Key {
    /// Only this VNI is accepted; every frame is sent with it.
    Fixed(u32),
    /// Any VNI is accepted (it becomes `tun_id`); the packet's `tun_id` is sent.
    Flow,
}

/// A VXLAN port's configuration, as `add-port` took it and the database keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VxlanConfig {
    /// Local VTEP address: the socket is bound to it.
    pub local: Ipv4Addr,
    /// Remote VTEP.
    pub remote: Remote,
    /// VNI policy.
    pub key: Key,
    /// UDP port (both ends).
    pub dst_port: u16,
}

/// Why `add-port --type vxlan` options were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VxlanConfigError {
    /// An option the kind needs was not given.
    #[error("a vxlan port needs --{0}")]
    Missing(&'static str),
    /// `--local`/`--remote` is not an IPv4 address (or `flow` for `--remote`).
    #[error("--{option}: {value:?} is not an IPv4 address{also}")]
    BadAddress {
        /// Option name.
        option: &'static str,
        /// What was given.
        value: String,
        /// What else is accepted.
        also: &'static str,
    },
    /// `--key` is neither `flow` nor a 24-bit number.
    #[error("--key: {0:?} is not `flow` or a VNI from 0 to 16777215 (0xffffff)")]
    BadKey(String),
    /// `--dst-port 0`.
    #[error("--dst-port: 0 is not a UDP port")]
    BadPort,
    /// `--local` must be a unicast address of this host.
    #[error("--local: {0} cannot be a local VTEP address (unspecified, broadcast or multicast)")]
    BadLocal(Ipv4Addr),
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Remote::Ip(a) => write!(f, "{a}"),
            Remote::Flow => f.write_str("flow"),
        }
    }
}

impl std::str::FromStr for Remote {
    type Err = VxlanConfigError;
    fn from_str(s: &str) -> Result<Remote, VxlanConfigError> {
        if s == "flow" {
            return Ok(Remote::Flow);
        }
        s.parse()
            .map(Remote::Ip)
            .map_err(|_| VxlanConfigError::BadAddress {
                option: "remote",
                value: s.to_string(),
                also: " or `flow`",
            })
    }
}

impl TryFrom<String> for Remote {
    type Error = VxlanConfigError;
    fn try_from(s: String) -> Result<Remote, VxlanConfigError> {
        s.parse()
    }
}

impl From<Remote> for String {
    fn from(r: Remote) -> String {
        r.to_string()
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Fixed(n) => write!(f, "{n:#x}"),
            Key::Flow => f.write_str("flow"),
        }
    }
}

impl std::str::FromStr for Key {
    type Err = VxlanConfigError;
    fn from_str(s: &str) -> Result<Key, VxlanConfigError> {
        if s == "flow" {
            return Ok(Key::Flow);
        }
        let n = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => u32::from_str_radix(h, 16),
            None => s.parse(),
        };
        match n {
            Ok(n) if n <= VNI_MAX => Ok(Key::Fixed(n)),
            _ => Err(VxlanConfigError::BadKey(s.to_string())),
        }
    }
}

impl TryFrom<String> for Key {
    type Error = VxlanConfigError;
    fn try_from(s: String) -> Result<Key, VxlanConfigError> {
        s.parse()
    }
}

impl From<Key> for String {
    fn from(k: Key) -> String {
        k.to_string()
    }
}

impl VxlanConfig {
    /// Build a configuration from `add-port` options. `key` defaults to VNI 0 (as in Open
    /// vSwitch, where a tunnel without `key` uses VNI 0), `dst_port` to 4789.
    pub fn parse(
        local: Option<&str>,
        remote: Option<&str>,
        key: Option<&str>,
        dst_port: Option<u16>,
    ) -> Result<VxlanConfig, VxlanConfigError> {
        let local = local.ok_or(VxlanConfigError::Missing("local IP"))?;
        let local: Ipv4Addr = local.parse().map_err(|_| VxlanConfigError::BadAddress {
            option: "local",
            value: local.to_string(),
            also: "",
        })?;
        if local.is_unspecified() || local.is_broadcast() || local.is_multicast() {
            return Err(VxlanConfigError::BadLocal(local));
        }
        let remote: Remote = remote
            .ok_or(VxlanConfigError::Missing("remote IP|flow"))?
            .parse()?;
        let key = match key {
            Some(k) => k.parse()?,
            None => Key::Fixed(0),
        };
        let dst_port = dst_port.unwrap_or(vxlan::UDP_PORT);
        if dst_port == 0 {
            return Err(VxlanConfigError::BadPort);
        }
        Ok(VxlanConfig {
            local,
            remote,
            key,
            dst_port,
        })
    }

    /// How `show` describes the port (its "mode" column).
    pub fn describe(&self) -> String {
        format!(
            "local={} remote={} key={} dst_port={}",
            self.local, self.remote, self.key, self.dst_port
        )
    }
}

/// MTU of the interface that holds `addr` in this namespace, if any.
fn underlay_mtu(addr: Ipv4Addr) -> Option<u32> {
    let ifaddrs = nix::ifaddrs::getifaddrs().ok()?;
    let name = ifaddrs
        .filter(|a| {
            a.address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .is_some_and(|s| s.ip() == addr)
        })
        .map(|a| a.interface_name)
        .next()?;
    super::iface::lookup(&name).ok().map(|i| i.mtu)
}

/// Open a VXLAN port named `name`: bind the UDP socket (a failure names the address and the
/// likely cause, and changes nothing).
pub fn open(name: &str, cfg: &VxlanConfig) -> Result<OpenedPort, PortError> {
    let unavailable = |reason: String| PortError::Unavailable {
        iface: name.to_string(),
        kind: "vxlan",
        reason,
    };
    let sock = UdpSocket::bind(SocketAddrV4::new(cfg.local, cfg.dst_port)).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EADDRNOTAVAIL) => " (not an address of this network namespace)",
            Some(libc::EADDRINUSE) => " (another socket or VXLAN port uses it)",
            _ => "",
        };
        unavailable(format!(
            "cannot bind UDP {}:{}: {e}{hint}",
            cfg.local, cfg.dst_port
        ))
    })?;
    sock.set_nonblocking(true)
        .map_err(|e| unavailable(format!("cannot make the socket non-blocking: {e}")))?;
    for (opt, what) in [(true, "receive"), (false, "send")] {
        let fd = sock.as_raw_fd();
        let r = if opt {
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::RcvBuf, &SOCK_BUF)
        } else {
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SndBuf, &SOCK_BUF)
        };
        if let Err(e) = r {
            tracing::debug!(port = name, fd, "cannot grow the {what} buffer: {e}");
        }
    }
    let mtu = underlay_mtu(cfg.local).unwrap_or_else(|| {
        tracing::warn!(
            port = name,
            local = %cfg.local,
            "no interface holds the local VTEP address; assuming an underlay MTU of 1500"
        );
        1500
    });
    let q = VxlanQueue::new(name, *cfg, sock, mtu);
    Ok(OpenedPort {
        info: PortInfo {
            iface: name.to_string(),
            ifindex: 0,
            kind: PortKind::Vxlan,
            mode: cfg.describe(),
            queues: 1,
            mtu: mtu.saturating_sub(OVERHEAD),
            mac: [0; 6],
        },
        queues: vec![Box::new(q)],
    })
}

/// The one queue of a VXLAN port.
pub struct VxlanQueue {
    cfg: VxlanConfig,
    sock: UdpSocket,
    /// Largest inner frame that fits the underlay MTU.
    max_inner: usize,
    counters: QueueCounters,
    /// `recvmmsg` headers, reused.
    rxh: MultiHeaders<SockaddrIn>,
    /// `sendmmsg` headers, reused.
    txh: MultiHeaders<SockaddrIn>,
    /// Receive buffers, [`RX_BUF`] bytes per datagram.
    rxmem: Vec<u8>,
    /// VXLAN headers of the frames being sent.
    txhdr: [[u8; vxlan::HEADER_LEN]; BATCH],
}

// SAFETY: `MultiHeaders` holds raw pointers (the `mmsghdr` array points at its own address
// slots, and at the iovecs of the call in progress), which makes it `!Send`. Each pointer
// either targets memory owned by the same `MultiHeaders` (moved along with it: the slots are a
// boxed slice whose heap address does not change) or memory borrowed only for the duration of
// one `recvmmsg`/`sendmmsg` call and never read afterwards (nix rewrites the iovec pointers at
// every call). The queue is used by one thread at a time (`&mut self`), as the `PortQueue`
// contract requires, so moving it to the worker thread that owns it is sound.
unsafe impl Send for VxlanQueue {}

impl VxlanQueue {
    fn new(name: &str, cfg: VxlanConfig, sock: UdpSocket, underlay_mtu: u32) -> VxlanQueue {
        tracing::debug!(port = name, underlay_mtu, "vxlan queue");
        VxlanQueue {
            cfg,
            sock,
            max_inner: (underlay_mtu as usize).saturating_sub(OUTER_LEN),
            counters: QueueCounters::default(),
            rxh: MultiHeaders::preallocate(BATCH, None),
            txh: MultiHeaders::preallocate(BATCH, None),
            rxmem: vec![0; BATCH * RX_BUF],
            txhdr: [[0; vxlan::HEADER_LEN]; BATCH],
        }
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// VNI and remote for one frame, or the reason it cannot be sent (counted here).
    fn route(&mut self, meta: Option<TunnelMeta>) -> Option<(u32, Ipv4Addr)> {
        let vni = match self.cfg.key {
            Key::Fixed(n) => n,
            Key::Flow => meta.map_or(0, |m| (m.id & u64::from(VNI_MAX)) as u32),
        };
        let remote = match self.cfg.remote {
            Remote::Ip(a) => a,
            Remote::Flow => match meta.map(|m| m.dst) {
                Some(d) if d != 0 => Ipv4Addr::from(d),
                _ => {
                    self.counters.vxlan_no_remote += 1;
                    return None;
                }
            },
        };
        Some((vni, remote))
    }

    /// Encapsulate and send up to [`BATCH`] frames; returns how many went out.
    fn send_chunk(&mut self, frames: &[&[u8]], meta: &[Option<TunnelMeta>]) -> usize {
        let mut addrs: [Option<SockaddrIn>; BATCH] = [None; BATCH];
        let mut lens = [0usize; BATCH];
        let mut pick = [0usize; BATCH];
        let mut k = 0;
        for (i, frame) in frames.iter().enumerate().take(BATCH) {
            if frame.len() > self.max_inner {
                self.counters.tx_oversize += 1;
                continue;
            }
            let Some((vni, remote)) = self.route(meta.get(i).copied().flatten()) else {
                continue;
            };
            self.txhdr[k] = VxlanRepr { vni }.to_bytes();
            addrs[k] = Some(SockaddrIn::from(SocketAddrV4::new(
                remote,
                self.cfg.dst_port,
            )));
            lens[k] = frame.len();
            pick[k] = i;
            k += 1;
        }
        let fd = self.fd();
        let empty: &[u8] = &[];
        let mut iovs = [[IoSlice::new(empty), IoSlice::new(empty)]; BATCH];
        for j in 0..k {
            iovs[j] = [IoSlice::new(&self.txhdr[j]), IoSlice::new(frames[pick[j]])];
        }
        let mut sent = 0;
        let mut i = 0;
        // Each round sends at least one datagram or ends the loop: at most `k` rounds.
        while i < k {
            let r = sendmmsg(
                fd,
                &mut self.txh,
                iovs[i..k].iter(),
                &addrs[i..k],
                [] as [ControlMessage; 0],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|res| res.count());
            match r {
                Ok(n) if n > 0 => {
                    for &l in &lens[i..i + n] {
                        self.counters.tx_packets += 1;
                        self.counters.tx_bytes += l as u64;
                    }
                    sent += n;
                    i += n;
                }
                Ok(_) | Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => {
                    self.counters.tx_ring_full += (k - i) as u64;
                    break;
                }
                Err(Errno::EMSGSIZE) => {
                    self.counters.tx_oversize += 1;
                    i += 1;
                }
                Err(_) => {
                    // No route, address removed, interrupted: the first datagram failed and
                    // is counted; the rest may be fine (no retry, so the loop stays bounded).
                    self.counters.io_errors += 1;
                    i += 1;
                }
            }
        }
        sent
    }
}

/// Receive-side outcome of one datagram, copied out of `recvmmsg`'s results.
#[derive(Clone, Copy, Default)]
struct Got {
    bytes: usize,
    src: u32,
    truncated: bool,
}

impl PortQueue for VxlanQueue {
    fn recv(&mut self, bufs: &mut [PacketBuf]) -> usize {
        let want = bufs.len().min(BATCH);
        if want == 0 {
            return 0;
        }
        let fd = self.fd();
        let mut got = [Got::default(); BATCH];
        let received = {
            let mut chunks = self.rxmem.chunks_mut(RX_BUF);
            let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
            match recvmmsg(
                fd,
                &mut self.rxh,
                iovs[..want].iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(res) => {
                    let mut n = 0;
                    for (g, m) in got.iter_mut().zip(res) {
                        *g = Got {
                            bytes: m.bytes,
                            src: m.address.map_or(0, |a| u32::from(a.ip())),
                            truncated: m.flags.contains(MsgFlags::MSG_TRUNC),
                        };
                        n += 1;
                    }
                    n
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => 0,
                Err(_) => {
                    self.counters.io_errors += 1;
                    0
                }
            }
        };
        let local = u32::from(self.cfg.local);
        let mut n = 0;
        for (k, g) in got[..received].iter().enumerate() {
            if g.truncated || g.bytes > RX_BUF {
                self.counters.rx_oversize += 1;
                continue;
            }
            let data = &self.rxmem[k * RX_BUF..k * RX_BUF + g.bytes];
            let p = VxlanPacket::new_unchecked(data);
            let vni = match VxlanRepr::parse(&p) {
                Ok(r) if p.payload().len() >= 14 => r.vni,
                _ => {
                    self.counters.vxlan_bad_header += 1;
                    continue;
                }
            };
            if matches!(self.cfg.key, Key::Fixed(want) if want != vni) {
                self.counters.vxlan_unknown_vni += 1;
                continue;
            }
            let inner = p.payload();
            bufs[n].reset(inner);
            bufs[n].tunnel = Some(TunnelMeta {
                id: u64::from(vni),
                src: g.src,
                dst: local,
            });
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += inner.len() as u64;
            n += 1;
        }
        n
    }

    fn send(&mut self, frames: &[&[u8]]) -> usize {
        const NONE: [Option<TunnelMeta>; BATCH] = [None; BATCH];
        frames
            .chunks(BATCH)
            .map(|c| self.send_chunk(c, &NONE[..c.len()]))
            .sum()
    }

    fn send_tunneled(&mut self, frames: &[&[u8]], meta: &[Option<TunnelMeta>]) -> usize {
        frames
            .chunks(BATCH)
            .zip(meta.chunks(BATCH).chain(std::iter::repeat(&[][..])))
            .map(|(c, m)| self.send_chunk(c, m))
            .sum()
    }

    fn poll(&mut self) -> Result<(), PortError> {
        Ok(())
    }

    fn tx_pending(&self) -> bool {
        false
    }

    fn rx_fd(&self) -> Option<i32> {
        Some(self.fd())
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_describes() {
        let c =
            VxlanConfig::parse(Some("10.0.0.1"), Some("10.0.0.2"), Some("0x43e"), None).unwrap();
        assert_eq!(c.local, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(c.remote, Remote::Ip(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(c.key, Key::Fixed(0x43e));
        assert_eq!(c.dst_port, 4789);
        assert_eq!(
            c.describe(),
            "local=10.0.0.1 remote=10.0.0.2 key=0x43e dst_port=4789"
        );
        let c =
            VxlanConfig::parse(Some("10.0.0.1"), Some("flow"), Some("flow"), Some(8472)).unwrap();
        assert_eq!(
            (c.remote, c.key, c.dst_port),
            (Remote::Flow, Key::Flow, 8472)
        );
        assert_eq!(
            VxlanConfig::parse(Some("10.0.0.1"), Some("10.0.0.2"), Some("1086"), None)
                .unwrap()
                .key,
            Key::Fixed(1086)
        );
        let c = VxlanConfig::parse(Some("10.0.0.1"), Some("10.0.0.2"), None, None).unwrap();
        assert_eq!(c.key, Key::Fixed(0));
    }

    #[test]
    fn bad_options_name_the_token() {
        let e = |l, r, k, p| VxlanConfig::parse(l, r, k, p).unwrap_err().to_string();
        assert_eq!(
            e(None, Some("10.0.0.2"), None, None),
            "a vxlan port needs --local IP"
        );
        assert_eq!(
            e(Some("10.0.0.1"), None, None, None),
            "a vxlan port needs --remote IP|flow"
        );
        assert!(e(Some("10.0.0.x"), Some("10.0.0.2"), None, None).contains("\"10.0.0.x\""));
        assert!(e(Some("10.0.0.1"), Some("nowhere"), None, None).contains("\"nowhere\""));
        assert!(e(Some("10.0.0.1"), Some("flow"), Some("0x1000000"), None).contains("0x1000000"));
        assert!(e(Some("10.0.0.1"), Some("flow"), Some("abc"), None).contains("\"abc\""));
        assert!(e(Some("10.0.0.1"), Some("flow"), None, Some(0)).contains("--dst-port"));
        assert!(e(Some("0.0.0.0"), Some("flow"), None, None).contains("0.0.0.0"));
        assert!(e(Some("224.0.0.1"), Some("flow"), None, None).contains("224.0.0.1"));
    }

    #[test]
    fn config_round_trips_through_json() {
        for c in [
            VxlanConfig::parse(Some("10.0.0.1"), Some("10.0.0.2"), Some("0x43e"), None).unwrap(),
            VxlanConfig::parse(Some("10.0.0.1"), Some("flow"), Some("flow"), Some(1)).unwrap(),
        ] {
            let j = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<VxlanConfig>(&j).unwrap(), c, "{j}");
        }
        assert!(serde_json::from_str::<VxlanConfig>(
            r#"{"local":"10.0.0.1","remote":"x","key":"flow","dst_port":4789}"#
        )
        .is_err());
    }

    /// Two VXLAN queues on loopback addresses talk to each other: encapsulation, VNI policy,
    /// metadata at receive, drops by reason. Needs no privilege (127.0.0.0/8 is local).
    #[test]
    fn loopback_pair_encapsulates_and_filters() {
        let port = 40000 + (std::process::id() % 20000) as u16;
        let a_cfg = VxlanConfig::parse(
            Some("127.0.0.21"),
            Some("127.0.0.22"),
            Some("0x43e"),
            Some(port),
        )
        .unwrap();
        let b_cfg =
            VxlanConfig::parse(Some("127.0.0.22"), Some("flow"), Some("flow"), Some(port)).unwrap();
        let mut a = open("vxa", &a_cfg).unwrap();
        let mut b = open("vxb", &b_cfg).unwrap();
        assert_eq!(a.info.kind, PortKind::Vxlan);
        let (qa, qb) = (&mut a.queues[0], &mut b.queues[0]);
        let frame: Vec<u8> = (0..60u8).collect();
        assert_eq!(qa.send(&[&frame, &frame]), 2);
        let mut bufs: Vec<PacketBuf> = (0..4).map(|_| PacketBuf::from_frame(&[])).collect();
        let mut n = 0;
        for _ in 0..200 {
            n += qb.recv(&mut bufs[n..]);
            if n == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(n, 2);
        assert_eq!(bufs[0].data(), &frame[..]);
        assert_eq!(
            bufs[0].tunnel,
            Some(TunnelMeta {
                id: 0x43e,
                src: u32::from(Ipv4Addr::new(127, 0, 0, 21)),
                dst: u32::from(Ipv4Addr::new(127, 0, 0, 22)),
            })
        );
        // b (remote=flow): without tun_dst nothing goes out; with it, VNI from tun_id.
        assert_eq!(qb.send(&[&frame]), 0);
        assert_eq!(qb.counters().vxlan_no_remote, 1);
        let to_a = |id| {
            Some(TunnelMeta {
                id,
                src: 0,
                dst: u32::from(Ipv4Addr::new(127, 0, 0, 21)),
            })
        };
        assert_eq!(
            qb.send_tunneled(&[&frame, &frame], &[to_a(0x43e), to_a(7)]),
            2
        );
        // a (key=0x43e) accepts the first, drops the second as an unknown VNI.
        let mut got = 0;
        for _ in 0..200 {
            got += qa.recv(&mut bufs);
            if got == 1 && qa.counters().vxlan_unknown_vni == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, 1);
        assert_eq!(qa.counters().vxlan_unknown_vni, 1);
        assert_eq!(bufs[0].tunnel.map(|t| t.id), Some(0x43e));
        // A datagram that is not VXLAN is counted, not delivered.
        let raw = UdpSocket::bind("127.0.0.23:0").unwrap();
        raw.send_to(&[0u8; 30], ("127.0.0.22", port)).unwrap();
        for _ in 0..200 {
            assert_eq!(qb.recv(&mut bufs), 0);
            if qb.counters().vxlan_bad_header == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(qb.counters().vxlan_bad_header, 1);
        // Oversize inner frames are dropped before the kernel sees them.
        let big = vec![0u8; 70000];
        assert_eq!(qa.send(&[&big]), 0);
        assert_eq!(qa.counters().tx_oversize, 1);
        let c = qa.counters();
        assert_eq!((c.tx_packets, c.tx_bytes), (2, 120));
    }

    #[test]
    fn binding_a_foreign_address_is_a_clear_error() {
        let cfg = VxlanConfig::parse(Some("192.0.2.77"), Some("flow"), None, None).unwrap();
        let e = open("vxz", &cfg).err().unwrap().to_string();
        assert!(e.contains("192.0.2.77:4789"), "{e}");
        assert!(
            e.contains("not an address of this network namespace"),
            "{e}"
        );
    }
}
