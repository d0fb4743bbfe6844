//! AF_PACKET port queue: the fallback when AF_XDP cannot be had.
//!
//! One raw socket per port (`SOCK_RAW`, non-blocking, bound to the interface with
//! `ETH_P_ALL`), with:
//! * `PACKET_IGNORE_OUTGOING`, so frames we transmit are not received back;
//! * promiscuous membership (`PACKET_MR_PROMISC`), released by the kernel when the socket closes;
//! * `PACKET_AUXDATA`, because the kernel strips the outer VLAN tag before packet sockets see a
//!   frame: the tag comes back as metadata and is re-inserted so the switch sees the wire frame;
//! * batched I/O through `recvmmsg`/`sendmmsg` with message headers, iovecs and receive slots
//!   preallocated at open: no allocation per call.
//!
//! Checksums: frames a local stack sends through a veth may carry partial checksums
//! (`CHECKSUM_PARTIAL`); AF_PACKET would expose that through `PACKET_VNET_HDR`, which this port
//! does not use. Deployments (and the lab) turn off `tx`/`tso`/`gso` offloads on the peers,
//! exactly as for AF_XDP (`shared/notes/afxdp-on-veth.md`). GRO on the port's own interface
//! would hand the socket merged super-frames larger than a receive slot (MTU + 22 bytes, at
//! least 2 KiB); they are dropped and counted as `rx_oversize`, so keep GRO off on port
//! interfaces (the veth default).
//!
//! All `unsafe` here is the socket system calls and reading the control messages they return.
#![allow(unsafe_code)]

use super::iface::{IfaceInfo, Liveness};
use super::{PortError, PortQueue, QueueCounters};
use crate::execute::PacketBuf;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Frames per `recvmmsg`/`sendmmsg` call.
const BATCH: usize = 32;
/// Room in front of each receive slot to re-insert a stripped VLAN tag without copying twice.
const VLAN_ROOM: usize = 4;
/// Control buffer per message: `CMSG_SPACE(sizeof(tpacket_auxdata))` is 40 bytes on 64-bit.
const CMSG_WORDS: usize = 8;

/// Operator-readable name of this kind in errors.
const KIND: &str = "afpacket";

/// An AF_PACKET socket serving one interface.
pub struct AfPacketQueue {
    fd: OwnedFd,
    iface: String,
    /// Bytes of frame a receive slot holds (after `VLAN_ROOM`).
    slot_frame: usize,
    /// Largest frame accepted for transmission.
    max_tx: usize,
    rx_slots: Box<[u8]>,
    rx_cmsg: Box<[u64]>,
    rx_iov: Box<[libc::iovec]>,
    rx_msgs: Box<[libc::mmsghdr]>,
    tx_iov: Box<[libc::iovec]>,
    tx_msgs: Box<[libc::mmsghdr]>,
    counters: QueueCounters,
    live: Liveness,
}

// SAFETY: the raw pointers inside the message headers and iovecs point only into heap buffers
// owned by this same value (boxed slices, never reallocated), or — during `send` only — into
// the caller's borrowed frames; nothing is shared with another thread, so moving the whole
// value to another thread is sound.
unsafe impl Send for AfPacketQueue {}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Errors that say the interface may have been removed (checked by `Liveness`).
fn hints_gone(e: i32) -> bool {
    matches!(e, libc::ENETDOWN | libc::ENXIO | libc::ENODEV)
}

/// True if an interface with this index exists in our network namespace. No allocation.
pub(crate) fn ifindex_exists(ifindex: u32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` is IF_NAMESIZE bytes, the size if_indextoname(3) requires.
    let r = unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) };
    // Failures other than "no such device" (e.g. out of fds) must not declare it gone.
    !r.is_null() || errno() != libc::ENXIO
}

fn set_opt<T>(fd: &OwnedFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` and the length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn unavailable(iface: &str, reason: String) -> PortError {
    PortError::Unavailable {
        iface: iface.to_string(),
        kind: KIND,
        reason,
    }
}

fn zeroed_msgs(n: usize) -> Box<[libc::mmsghdr]> {
    // SAFETY: mmsghdr is a plain C struct for which all-zero bytes are a valid value (null
    // pointers, zero lengths).
    (0..n).map(|_| unsafe { std::mem::zeroed() }).collect()
}

impl AfPacketQueue {
    /// Open a raw socket on the interface.
    pub fn open(info: &IfaceInfo) -> Result<Self, PortError> {
        let iface = info.name.as_str();
        // Protocol 0 at creation: the socket receives nothing until bound to the interface, so
        // no frame of another interface slips in between socket() and bind().
        // SAFETY: plain system call with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(unavailable(
                iface,
                match e.raw_os_error() {
                    Some(libc::EPERM | libc::EACCES) => {
                        format!("creating an AF_PACKET socket needs CAP_NET_RAW ({e})")
                    }
                    _ => format!("socket(AF_PACKET): {e}"),
                },
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let one: libc::c_int = 1;
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one).map_err(|e| {
            unavailable(
                iface,
                format!("PACKET_IGNORE_OUTGOING (needs Linux 4.20 or later): {e}"),
            )
        })?;
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one)
            .map_err(|e| unavailable(iface, format!("PACKET_AUXDATA: {e}")))?;

        // SAFETY: sockaddr_ll is a plain C struct; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = info.ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENODEV | libc::ENXIO) => PortError::NoSuchInterface(iface.to_string()),
                _ => unavailable(iface, format!("bind to ifindex {}: {e}", info.ifindex)),
            });
        }

        // SAFETY: packet_mreq is a plain C struct; all-zero is valid.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = info.ifindex as i32;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| unavailable(iface, format!("promiscuous membership: {e}")))?;

        // Frames up to MTU + Ethernet header + two VLAN tags; at least 2 KiB so a port whose
        // MTU is raised later still receives ordinary frames.
        let max_frame = info.mtu as usize + 14 + 8;
        let slot_frame = max_frame.max(2048);
        let slot = VLAN_ROOM + slot_frame;
        let mut q = AfPacketQueue {
            fd,
            iface: info.name.clone(),
            slot_frame,
            max_tx: max_frame,
            rx_slots: vec![0u8; BATCH * slot].into_boxed_slice(),
            rx_cmsg: vec![0u64; BATCH * CMSG_WORDS].into_boxed_slice(),
            rx_iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ]
            .into_boxed_slice(),
            rx_msgs: zeroed_msgs(BATCH),
            tx_iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ]
            .into_boxed_slice(),
            tx_msgs: zeroed_msgs(BATCH),
            counters: QueueCounters::default(),
            live: Liveness::new(info.ifindex),
        };
        // Wire the headers to their buffers once; the boxed slices never move.
        let slots = q.rx_slots.as_mut_ptr();
        let cmsgs = q.rx_cmsg.as_mut_ptr();
        for i in 0..BATCH {
            q.rx_iov[i] = libc::iovec {
                // SAFETY: slot i starts inside `rx_slots` (BATCH * slot bytes long).
                iov_base: unsafe { slots.add(i * slot + VLAN_ROOM) }.cast(),
                iov_len: slot_frame,
            };
            let h = &mut q.rx_msgs[i].msg_hdr;
            // SAFETY: index i < BATCH, inside both boxed slices.
            h.msg_iov = unsafe { q.rx_iov.as_mut_ptr().add(i) };
            h.msg_iovlen = 1;
            // SAFETY: control buffer i starts inside `rx_cmsg` (BATCH * CMSG_WORDS words).
            h.msg_control = unsafe { cmsgs.add(i * CMSG_WORDS) }.cast();
            h.msg_controllen = CMSG_WORDS * 8;
            let t = &mut q.tx_msgs[i].msg_hdr;
            // SAFETY: index i < BATCH, inside the boxed slice.
            t.msg_iov = unsafe { q.tx_iov.as_mut_ptr().add(i) };
            t.msg_iovlen = 1;
        }
        Ok(q)
    }

    /// The VLAN tag the kernel stripped from received message `i`, as (TPID, TCI).
    fn stripped_vlan(&self, i: usize) -> Option<(u16, u16)> {
        let hdr = &self.rx_msgs[i].msg_hdr;
        // SAFETY: `hdr` describes control buffer i, which the kernel filled up to
        // `msg_controllen` bytes; the CMSG_* helpers stay inside that length, and the payload
        // is read unaligned into a plain C struct.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET
                    && (*c).cmsg_type == libc::PACKET_AUXDATA
                    && (*c).cmsg_len
                        >= libc::CMSG_LEN(std::mem::size_of::<libc::tpacket_auxdata>() as u32)
                            as usize
                {
                    let aux: libc::tpacket_auxdata =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
                        return None;
                    }
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    return Some((tpid, aux.tp_vlan_tci));
                }
                c = libc::CMSG_NXTHDR(hdr, c);
            }
        }
        None
    }
}

impl PortQueue for AfPacketQueue {
    fn recv(&mut self, bufs: &mut [PacketBuf]) -> usize {
        let want = bufs.len().min(BATCH);
        if want == 0 {
            return 0;
        }
        for m in &mut self.rx_msgs[..want] {
            // The kernel shrinks these to what it wrote; restore them.
            m.msg_hdr.msg_controllen = CMSG_WORDS * 8;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
        // SAFETY: `rx_msgs[..want]` are initialised headers pointing into our own buffers.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                self.rx_msgs.as_mut_ptr(),
                want as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            match errno() {
                libc::EAGAIN | libc::EINTR => {}
                e => {
                    self.counters.io_errors += 1;
                    if hints_gone(e) {
                        self.live.suspect();
                    }
                }
            }
            return 0;
        }
        let slot = VLAN_ROOM + self.slot_frame;
        let mut filled = 0;
        for i in 0..n as usize {
            let len = self.rx_msgs[i].msg_len as usize;
            if self.rx_msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len > self.slot_frame {
                self.counters.rx_oversize += 1;
                continue;
            }
            let vlan = self.stripped_vlan(i);
            let s = &mut self.rx_slots[i * slot..(i + 1) * slot];
            let frame: &[u8] = match vlan {
                Some((tpid, tci)) if len >= 12 => {
                    // Move the MAC addresses 4 bytes forward and put the tag after them.
                    s.copy_within(VLAN_ROOM..VLAN_ROOM + 12, 0);
                    s[12..14].copy_from_slice(&tpid.to_be_bytes());
                    s[14..16].copy_from_slice(&tci.to_be_bytes());
                    &s[..len + VLAN_ROOM]
                }
                _ => &s[VLAN_ROOM..VLAN_ROOM + len],
            };
            bufs[filled].reset(frame);
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += frame.len() as u64;
            filled += 1;
        }
        filled
    }

    fn send(&mut self, frames: &[&[u8]]) -> usize {
        let mut accepted = 0;
        let mut pos = 0;
        'batches: while pos < frames.len() {
            let mut n = 0;
            while pos < frames.len() && n < BATCH {
                let f = frames[pos];
                pos += 1;
                if f.len() > self.max_tx {
                    self.counters.tx_oversize += 1;
                    continue;
                }
                // The kernel only reads through this pointer (sendmmsg).
                self.tx_iov[n] = libc::iovec {
                    iov_base: f.as_ptr() as *mut libc::c_void,
                    iov_len: f.len(),
                };
                n += 1;
            }
            let mut off = 0;
            while off < n {
                // SAFETY: `tx_msgs[off..n]` point at `tx_iov[off..n]`, which point at frames
                // borrowed for the duration of this call.
                let r = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        self.tx_msgs.as_mut_ptr().add(off),
                        (n - off) as u32,
                        libc::MSG_DONTWAIT,
                    )
                };
                if r > 0 {
                    for iov in &self.tx_iov[off..off + r as usize] {
                        self.counters.tx_packets += 1;
                        self.counters.tx_bytes += iov.iov_len as u64;
                    }
                    accepted += r as usize;
                    off += r as usize;
                    continue;
                }
                match errno() {
                    // Socket buffer / qdisc full: drop the rest of this call.
                    libc::EAGAIN | libc::ENOBUFS => {
                        self.counters.tx_ring_full += (n - off) as u64;
                        self.drop_rest(&frames[pos..], false);
                        break 'batches;
                    }
                    libc::EMSGSIZE => self.counters.tx_oversize += 1,
                    e if hints_gone(e) => {
                        self.live.suspect();
                        self.counters.io_errors += (n - off) as u64;
                        self.drop_rest(&frames[pos..], true);
                        break 'batches;
                    }
                    _ => self.counters.io_errors += 1,
                }
                // Skip the frame that failed and carry on with the next.
                off += 1;
            }
        }
        // Do not keep pointers to the caller's frames past this call.
        for iov in &mut self.tx_iov[..] {
            iov.iov_base = std::ptr::null_mut();
        }
        accepted
    }

    fn poll(&mut self) -> Result<(), PortError> {
        if self.live.alive(ifindex_exists) {
            Ok(())
        } else {
            Err(PortError::Gone(self.iface.clone()))
        }
    }

    fn tx_pending(&self) -> bool {
        // sendmmsg hands frames to the kernel synchronously.
        false
    }

    fn rx_fd(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}

impl AfPacketQueue {
    /// Count frames a failed send did not get to.
    fn drop_rest(&mut self, rest: &[&[u8]], io_error: bool) {
        for f in rest {
            if f.len() > self.max_tx {
                self.counters.tx_oversize += 1;
            } else if io_error {
                self.counters.io_errors += 1;
            } else {
                self.counters.tx_ring_full += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ifindex_exists_and_a_huge_one_does_not() {
        assert!(ifindex_exists(1));
        assert!(!ifindex_exists(0x7fff_fff0));
    }

    #[test]
    fn gone_hints() {
        assert!(hints_gone(libc::ENETDOWN));
        assert!(hints_gone(libc::ENXIO));
        assert!(!hints_gone(libc::EAGAIN));
    }
}
