//! The only module with `unsafe`: the raw `bpf(2)` syscall and the AF_XDP socket (setsockopt,
//! mmap'ed rings, sendto). Everything above it is safe code.
//!
//! Why raw syscalls: the lab tool must not need clang, bpftool or libbpf at build time, and the
//! programs it loads are a dozen instructions (see `bpf_prog.rs`).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

// bpf(2) commands and constants (include/uapi/linux/bpf.h).
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_LINK_CREATE: u32 = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
/// `enum bpf_attach_type` value of BPF_XDP.
const BPF_XDP: u32 = 37;
/// Native (driver) mode: veth supports it, and it is what the switch uses.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// BPF_PROG_RUN flag: send the frames for real (kernel >= 5.18).
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// `union bpf_attr`, as bytes. 128 bytes covers every command used here; the kernel zero-fills
/// the rest of its (larger) union when we pass a smaller size.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }
}

fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: `attr` is a valid, writable, 8-aligned buffer of exactly the size we pass; every
    // pointer stored inside it by the callers points to a live buffer of the size also stored
    // there, borrowed for the duration of this call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.0.as_mut_ptr(),
            attr.0.len() as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

/// Load an XDP program. On failure the error carries the verifier log.
pub fn prog_load_xdp(insns: &[u64], name: &str) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut log = vec![0u8; 64 * 1024];
    let mut name_bytes = [0u8; 16];
    for (d, s) in name_bytes.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    let attempt = |log_level: u32, log: &mut [u8]| {
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, log_level)
            .u32(28, if log_level > 0 { log.len() as u32 } else { 0 })
            .u64(
                32,
                if log_level > 0 {
                    log.as_mut_ptr() as u64
                } else {
                    0
                },
            )
            .u32(68, BPF_XDP);
        a.0[48..64].copy_from_slice(&name_bytes);
        bpf(BPF_PROG_LOAD, &mut a)
    };
    match attempt(0, &mut log) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => {
            // Retry with the verifier log on, to say why.
            let _ = attempt(1, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            Err(io::Error::new(
                e.kind(),
                format!("BPF_PROG_LOAD {name}: {e}; verifier: {}", text.trim()),
            ))
        }
    }
}

/// An XSKMAP with `entries` slots (one per RX queue).
pub fn xskmap_create(entries: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, BPF_MAP_TYPE_XSKMAP)
        .u32(4, 4)
        .u32(8, 4)
        .u32(12, entries);
    bpf(BPF_MAP_CREATE, &mut a).map(fd_from)
}

pub fn map_update_u32(map: &OwnedFd, key: u32, value: u32) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32)
        .u64(8, &key as *const u32 as u64)
        .u64(16, &value as *const u32 as u64);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

/// Attach an XDP program to an interface through a BPF link: the program is detached when the
/// returned descriptor is closed, including when the process dies, so no stale program stays
/// behind on the lab's interfaces.
pub fn xdp_link(prog: &OwnedFd, ifindex: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32)
        .u32(4, ifindex)
        .u32(8, BPF_XDP)
        .u32(12, XDP_FLAGS_DRV_MODE);
    bpf(BPF_LINK_CREATE, &mut a).map(fd_from)
}

/// `struct xdp_md` given as `ctx_in` to BPF_PROG_RUN.
#[repr(C)]
pub struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

/// BPF_PROG_RUN on an XDP program. Returns the program's last return value.
pub fn prog_test_run_xdp(
    prog: &OwnedFd,
    data: &[u8],
    ctx: &XdpMd,
    repeat: u32,
    flags: u32,
    batch_size: u32,
) -> io::Result<u32> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32)
        .u32(8, data.len() as u32)
        .u64(16, data.as_ptr() as u64)
        .u32(32, repeat)
        .u32(40, std::mem::size_of::<XdpMd>() as u32)
        .u64(48, ctx as *const XdpMd as u64)
        .u32(64, flags)
        .u32(72, batch_size);
    bpf(BPF_PROG_TEST_RUN, &mut a)?;
    Ok(a.get_u32(4))
}

/// BPF_PROG_RUN once on a copy of `data`, not live: the program's return value and the frame
/// as it left the program (for tests of the generator programs).
#[cfg(test)]
pub fn prog_run_xdp_once(prog: &OwnedFd, data: &[u8]) -> io::Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; data.len() + 256];
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32)
        .u32(8, data.len() as u32)
        .u32(12, out.len() as u32)
        .u64(16, data.as_ptr() as u64)
        .u64(24, out.as_mut_ptr() as u64)
        .u32(32, 1);
    bpf(BPF_PROG_TEST_RUN, &mut a)?;
    out.truncate(a.get_u32(12) as usize);
    Ok((a.get_u32(4), out))
}

/// A private anonymous mapping, unmapped on drop.
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    fn map(len: usize, fd: Option<(RawFd, i64)>) -> io::Result<Self> {
        let (flags, raw, off) = match fd {
            None => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            ),
            Some((fd, off)) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd, off),
        };
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL); it aliases no Rust object.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                raw,
                off as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(p.cast()).expect("mmap returned non-null"),
            len,
        })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: we own this mapping and nothing borrows it past the owner's lifetime.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One mmap'ed AF_XDP ring (fill, completion, RX or TX). `T` is the slot type: `u64` addresses
/// for fill/completion, `libc::xdp_desc` for RX/TX.
pub struct Ring<T> {
    _map: Mmap,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    slots: NonNull<T>,
    mask: u32,
    /// Our side's index (producer for fill/TX, consumer for completion/RX), published by
    /// `submit`/`release`.
    local: u32,
}

impl<T: Copy> Ring<T> {
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, pgoff: i64, size: u32) -> io::Result<Self> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        let map = Mmap::map(len, Some((fd, pgoff)))?;
        let base = map.ptr.as_ptr();
        // SAFETY: the kernel's offsets lie inside the mapping of `len` bytes it sized for us.
        let (p, c, d) = unsafe {
            (
                base.add(off.producer as usize),
                base.add(off.consumer as usize),
                base.add(off.desc as usize),
            )
        };
        let producer = NonNull::new(p.cast::<AtomicU32>()).expect("non-null");
        let consumer = NonNull::new(c.cast::<AtomicU32>()).expect("non-null");
        let slots = NonNull::new(d.cast::<T>()).expect("non-null");
        Ok(Ring {
            _map: map,
            producer,
            consumer,
            slots,
            mask: size - 1,
            // A fresh socket's rings start at 0 on both sides.
            local: 0,
        })
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into `_map`, which lives as long as `self`.
        unsafe { self.producer.as_ref() }
    }
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as `prod`.
        unsafe { self.consumer.as_ref() }
    }

    // --- producer side (fill, TX) ---

    /// Slots we may write now.
    pub fn free(&self) -> u32 {
        let size = self.mask + 1;
        size - self.local.wrapping_sub(self.cons().load(Ordering::Acquire))
    }
    /// Write slot `i` past our producer index (not visible until `submit`).
    pub fn write(&mut self, i: u32, v: T) {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx <= mask, inside the ring's slot array; the kernel does not read slots
        // past the published producer index.
        unsafe { self.slots.as_ptr().add(idx).write_volatile(v) };
    }
    pub fn submit(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.prod().store(self.local, Ordering::Release);
    }
    /// Descriptors published but not yet consumed by the kernel.
    pub fn outstanding(&self) -> u32 {
        self.local.wrapping_sub(self.cons().load(Ordering::Acquire))
    }

    // --- consumer side (completion, RX) ---

    pub fn available(&self) -> u32 {
        self.prod().load(Ordering::Acquire).wrapping_sub(self.local)
    }
    pub fn read(&self, i: u32) -> T {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx <= mask; the kernel published this slot (i < available()).
        unsafe { self.slots.as_ptr().add(idx).read_volatile() }
    }
    pub fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.cons().store(self.local, Ordering::Release);
    }
}

/// An AF_XDP socket in copy mode with its own UMEM.
pub struct Xsk {
    pub fill: Ring<u64>,
    pub comp: Ring<u64>,
    pub rx: Ring<libc::xdp_desc>,
    pub tx: Ring<libc::xdp_desc>,
    umem: Mmap,
    fd: OwnedFd,
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value whose size we pass.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Xsk {
    /// Create, size the rings and bind (XDP_COPY) to `ifindex` queue `queue`.
    pub fn new(
        ifindex: u32,
        queue: u32,
        frames: u32,
        frame_size: u32,
        ring: u32,
    ) -> io::Result<Self> {
        let ctx =
            |what: &str, e: io::Error| io::Error::new(e.kind(), format!("AF_XDP {what}: {e}"));
        // SAFETY: plain socket creation; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(ctx("socket", io::Error::last_os_error()));
        }
        let fd = fd_from(raw as i64);
        let len = frames as usize * frame_size as usize;
        let umem = Mmap::map(len, None).map_err(|e| ctx("umem mmap", e))?;
        let reg = libc::xdp_umem_reg_v1 {
            addr: umem.ptr.as_ptr() as u64,
            len: len as u64,
            chunk_size: frame_size,
            headroom: 0,
        };
        setsockopt(raw, libc::XDP_UMEM_REG, &reg).map_err(|e| ctx("UMEM_REG", e))?;
        for opt in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(raw, opt, &(ring as libc::c_int)).map_err(|e| ctx("ring size", e))?;
        }
        // SAFETY: an all-zero xdp_mmap_offsets is a valid value of that plain-data struct.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut olen = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is writable for `olen` bytes.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut olen,
            )
        };
        if r < 0 {
            return Err(ctx("MMAP_OFFSETS", io::Error::last_os_error()));
        }
        let fill = Ring::map(raw, &off.fr, libc::XDP_UMEM_PGOFF_FILL_RING as i64, ring)
            .map_err(|e| ctx("fill mmap", e))?;
        let comp = Ring::map(
            raw,
            &off.cr,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as i64,
            ring,
        )
        .map_err(|e| ctx("completion mmap", e))?;
        let rx = Ring::map(raw, &off.rx, libc::XDP_PGOFF_RX_RING, ring)
            .map_err(|e| ctx("rx mmap", e))?;
        let tx = Ring::map(raw, &off.tx, libc::XDP_PGOFF_TX_RING, ring)
            .map_err(|e| ctx("tx mmap", e))?;
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a live sockaddr_xdp whose size we pass.
        let r = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(ctx("bind", io::Error::last_os_error()));
        }
        Ok(Xsk {
            fill,
            comp,
            rx,
            tx,
            umem,
            fd,
        })
    }

    pub fn raw_fd(&self) -> u32 {
        self.fd.as_raw_fd() as u32
    }

    /// The kernel's counters for this socket (`XDP_STATISTICS`): why received frames were
    /// dropped (RX ring full, fill ring empty, ...).
    pub fn statistics(&self) -> io::Result<libc::xdp_statistics> {
        // SAFETY: all-zero is a valid `xdp_statistics` (plain integers).
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `st`, which is that large.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }

    /// The UMEM bytes `[addr, addr+len)`. Panics on a descriptor outside the UMEM (a kernel bug).
    pub fn frame(&self, addr: u64, len: u32) -> &[u8] {
        assert!(addr as usize + len as usize <= self.umem.len);
        // SAFETY: in bounds (checked); the kernel handed this frame to us via RX and does not
        // write it until we give it back through the fill ring.
        unsafe {
            std::slice::from_raw_parts(self.umem.ptr.as_ptr().add(addr as usize), len as usize)
        }
    }

    pub fn frame_mut(&mut self, addr: u64, len: u32) -> &mut [u8] {
        assert!(addr as usize + len as usize <= self.umem.len);
        // SAFETY: in bounds (checked); frames on our free list are owned by us until submitted.
        unsafe {
            std::slice::from_raw_parts_mut(self.umem.ptr.as_ptr().add(addr as usize), len as usize)
        }
    }

    /// Wake the kernel to transmit: in copy mode it sends at most 32 descriptors per call.
    /// Transient "busy" errors are ignored; the caller kicks again while TX is outstanding.
    pub fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: sendto with no buffer: the AF_XDP "transmit what is in the TX ring" call.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => {}
                _ => return Err(e),
            }
        }
        Ok(())
    }
}

/// An attached XDP program with what it references; dropping it detaches the program.
pub struct OwnedLink {
    pub _link: OwnedFd,
    pub _prog: OwnedFd,
    pub _map: OwnedFd,
}

/// Clock ticks per second (the unit of /proc/stat and /proc/PID/stat times).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Fallback transmitter for kernels without live frames: an AF_PACKET socket bound to one
/// interface, frames sent with `sendmmsg`, qdisc bypassed when allowed.
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    pub fn new(ifindex: u32) -> io::Result<Self> {
        // Protocol 0: transmit only, nothing is queued to us on receive.
        // SAFETY: plain socket creation; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = fd_from(raw as i64);
        let one: libc::c_int = 1;
        // Best effort: skipping the qdisc is faster but not required.
        // SAFETY: `one` is a live c_int whose size we pass.
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SAFETY: an all-zero sockaddr_ll is a valid value of that plain-data struct.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_ifindex = ifindex as i32;
        // SAFETY: `sa` is a live sockaddr_ll whose size we pass.
        let r = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd })
    }

    /// Send as many of `frames` as the kernel takes now; returns how many went out
    /// (0 when the socket's buffer is full).
    pub fn send(&self, frames: &[&[u8]]) -> io::Result<usize> {
        let mut iov: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: an all-zero mmsghdr is valid (null name, no control data).
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: `msgs` and the iovecs and frames they point to are live for the call; the
        // kernel only reads the frames.
        let r = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => Ok(0),
                _ => Err(e),
            };
        }
        Ok(r as usize)
    }
}
