//! AF_XDP port queues: one XDP socket per active RX queue, each with its own UMEM.
//!
//! # Library
//! The module drives libbpf's `xsk` API (UMEM and socket creation, libbpf's default XSK
//! redirect program) through `libbpf-sys` 0.3 — the very library, vendored
//! and built from source, that the `afxdp` crate 0.4 wraps. The crate itself was evaluated
//! first and not used, because its defects sit where a wrapper cannot guard against them:
//! * its TX wake-up `panic!`s on any `sendto` errno outside a fixed list — including `ENXIO`,
//!   which is what a socket returns once its interface is deleted; the errno only exists after
//!   the call, and release builds use `panic = "abort"`, so the daemon would die;
//! * its socket constructor hard-codes the XDP attach flags (no native/generic choice), and it
//!   reports libbpf's negative return codes as OS errors ("Unknown error -22").
//!
//! The rings themselves are driven by [`ring`]: libbpf's `static inline` accessors written
//! out in Rust, because `libbpf-sys` exports them as out-of-line functions (a call per
//! descriptor).
//!
//! Every libbpf type stays inside this module; the rest of the switch sees [`PortQueue`].
//!
//! # Mode obtained on veth
//! Opening tries, in order: native XDP + zero-copy, native + copy, generic (SKB) + copy, and
//! reports what it got in `PortInfo::mode`. On veth (kernel 6.x) the result is
//! **"native, copy"**: zero-copy binding fails with EOPNOTSUPP (a cheap failure: it happens at
//! `bind`, before any program is attached).
//!
//! # Defects handled
//! * **Errors**: libbpf returns `-errno`; it is negated and reported with the step that failed
//!   (`PortError::Unavailable` names the attempt, the error and a hint for EBUSY/EEXIST/ENOENT).
//! * **Stale program**: libbpf's redirect program stays attached after the process exits.
//!   Before opening, [`cleanup_stale_xdp`] detaches an XSK program (one using a map named
//!   `xsks_map`) that no port of this process owns; a foreign XDP program is left alone and
//!   reported. When the last queue of a port is dropped, the program this port attached is
//!   detached (only if it is still the one attached), so no interface keeps a stale program.
//! * **EBUSY on re-bind**: the kernel releases a closed socket's queue binding asynchronously
//!   (~2 s measured); socket creation is retried on EBUSY for up to 3 s.
//! * **Copy-mode TX stall**: the kernel transmits at most 32 descriptors per wake-up in copy
//!   mode. TX-kick policy: `stage` copies a frame into a free TX chunk at once and keeps at
//!   most 64 staged; `flush` (or the 65th `stage`) submits them and wakes the kernel once per
//!   32, back to back (`send` is `stage` for each frame, then `flush`), and `poll` wakes the
//!   kernel again while descriptors it has not consumed remain in the TX ring (completions
//!   outstanding); `tx_pending` stays true until every completion is reaped. Why 64 and
//!   back-to-back wake-ups: each `sendto` runs ~30 µs of kernel transmit work that evicts the
//!   worker's code and data from L1, and the worker pays the refill once per iteration; with
//!   64-frame batches it pays it once per 64 frames (lab: ~+2% forwarded, ~−2% busy time per
//!   packet over ten paired runs, `bench/README.md`).
//! * **Fill ring**: every RX chunk is in the fill ring at open, and each received chunk goes
//!   back to it in the same `recv` call (or in `poll` if the ring was momentarily full).
//!
//! # Gone
//! A deleted interface unbinds the socket: RX silently stops and a TX wake-up fails with
//! ENXIO. `poll` returns [`PortError::Gone`] after such an error or when a periodic probe of the
//! ifindex fails.
#![allow(unsafe_code)]

mod ring;

use super::afpacket::ifindex_exists;
use super::iface::{self, IfaceInfo, Liveness};
use super::{LentBatch, PortError, PortQueue, QueueCounters};
use crate::execute::{PacketBuf, TunnelMeta};
use libbpf_sys as bpf;
use std::ffi::CString;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Size of each of the four rings (fill, completion, RX, TX).
const RING: u32 = 2048;
/// UMEM chunks reserved for receiving (all of them live in the fill ring or the RX ring).
const RX_FRAMES: u32 = RING;
/// UMEM chunks reserved for transmitting.
const TX_FRAMES: u32 = RING;
/// The kernel's copy-mode transmit budget: descriptors sent per wake-up (`sendto`).
const KERNEL_TX_BUDGET: usize = 32;
/// Most frames staged before they are put on the TX ring: two wake-ups' worth, sent by
/// back-to-back wake-ups (see the module docs, "Copy-mode TX stall").
const TX_KICK_BATCH: usize = 2 * KERNEL_TX_BUDGET;
/// Most frames taken from the RX ring per `recv` call.
const RX_BATCH: usize = 64;
/// Most frames lent per `recv_in_place` call (the views live in an array on the stack): the
/// worker's batch, two of the kernel's transmit budgets (see the module docs).
const RX_LEND: usize = 64;
/// How long socket creation is retried while the queue is still busy (EBUSY).
const BUSY_RETRY: Duration = Duration::from_secs(3);
/// The kernel puts received data this far into a chunk (XDP headroom) in copy mode.
const RX_HEADROOM: u32 = bpf::XDP_PACKET_HEADROOM;

const KIND: &str = "afxdp";

/// Interfaces (by ifindex) on which this process holds an AF_XDP port: never swept as stale.
static OPEN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn open_set() -> std::sync::MutexGuard<'static, Vec<u32>> {
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A libbpf netlink-style return code (`-errno`) as an error.
fn neg_errno(ret: i32) -> io::Error {
    io::Error::from_raw_os_error(ret.checked_neg().unwrap_or(libc::EINVAL))
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn unavailable(iface: &str, reason: String) -> PortError {
    PortError::Unavailable {
        iface: iface.to_string(),
        kind: KIND,
        reason,
    }
}

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttachMode {
    Native,
    Generic,
}

impl AttachMode {
    fn flag(self) -> u32 {
        match self {
            AttachMode::Native => bpf::XDP_FLAGS_DRV_MODE,
            AttachMode::Generic => bpf::XDP_FLAGS_SKB_MODE,
        }
    }
    fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }
}

/// One way of opening the sockets, tried in order.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    mode: AttachMode,
    zero_copy: bool,
}

impl Attempt {
    const ORDER: [Attempt; 3] = [
        Attempt {
            mode: AttachMode::Native,
            zero_copy: true,
        },
        Attempt {
            mode: AttachMode::Native,
            zero_copy: false,
        },
        Attempt {
            mode: AttachMode::Generic,
            zero_copy: false,
        },
    ];

    fn describe(self) -> String {
        format!(
            "{}, {}",
            self.mode.name(),
            if self.zero_copy { "zero-copy" } else { "copy" }
        )
    }
}

// ---------------------------------------------------------------------------------------------
// XDP program bookkeeping

fn link_info(ifindex: u32) -> io::Result<bpf::xdp_link_info> {
    let mut info = bpf::xdp_link_info::default();
    // SAFETY: `info` is a valid xdp_link_info and its size is passed.
    let r = unsafe {
        bpf::bpf_get_link_xdp_info(
            ifindex as i32,
            &mut info,
            std::mem::size_of::<bpf::xdp_link_info>() as _,
            0,
        )
    };
    if r < 0 {
        Err(neg_errno(r))
    } else {
        Ok(info)
    }
}

/// True if BPF program `id` uses an XSKMAP named `xsks_map`: libbpf's default AF_XDP redirect
/// program (or one built the same way), i.e. one only AF_XDP sockets can be served by.
fn is_xsk_program(id: u32) -> bool {
    // SAFETY: plain system call; the fd returned is closed below.
    let fd = unsafe { bpf::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return false;
    }
    let mut map_ids = [0u32; 8];
    let mut info = bpf::bpf_prog_info {
        nr_map_ids: map_ids.len() as u32,
        map_ids: map_ids.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut len = std::mem::size_of::<bpf::bpf_prog_info>() as u32;
    // SAFETY: `info` is a bpf_prog_info whose map_ids points to `nr_map_ids` u32s.
    let r = unsafe {
        bpf::bpf_obj_get_info_by_fd(fd, (&mut info as *mut bpf::bpf_prog_info).cast(), &mut len)
    };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    if r != 0 {
        return false;
    }
    let n = (info.nr_map_ids as usize).min(map_ids.len());
    map_ids[..n].iter().any(|&mid| {
        // SAFETY: plain system call; the fd returned is closed below.
        let mfd = unsafe { bpf::bpf_map_get_fd_by_id(mid) };
        if mfd < 0 {
            return false;
        }
        let mut minfo = bpf::bpf_map_info::default();
        let mut mlen = std::mem::size_of::<bpf::bpf_map_info>() as u32;
        // SAFETY: `minfo` is a bpf_map_info and its size is passed.
        let r = unsafe {
            bpf::bpf_obj_get_info_by_fd(
                mfd,
                (&mut minfo as *mut bpf::bpf_map_info).cast(),
                &mut mlen,
            )
        };
        // SAFETY: `mfd` is ours.
        unsafe { libc::close(mfd) };
        let name: Vec<u8> = minfo
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        r == 0 && minfo.type_ == bpf::BPF_MAP_TYPE_XSKMAP && name == b"xsks_map"
    })
}

fn detach(ifindex: u32, mode: AttachMode) -> io::Result<()> {
    // SAFETY: plain netlink request; fd -1 detaches.
    let r = unsafe { bpf::bpf_set_link_xdp_fd(ifindex as i32, -1, mode.flag()) };
    if r < 0 {
        Err(neg_errno(r))
    } else {
        Ok(())
    }
}

/// Detach a stale AF_XDP redirect program from `iface`: one left attached by an earlier run
/// (libbpf's program outlives the process). Leaves alone interfaces on which this process has
/// an AF_XDP port open, and XDP programs that are not XSK redirect programs. Returns the id of
/// the program detached, if any.
///
/// Call it at daemon start for every interface the daemon is configured to own ([`sweep_stale_xdp`]);
/// [`open`] calls it before binding. It assumes no other process serves AF_XDP sockets on the
/// interface.
pub fn cleanup_stale_xdp(iface: &str) -> Result<Option<u32>, PortError> {
    let info = iface::lookup(iface)?;
    cleanup_stale_ifindex(&info)
}

fn cleanup_stale_ifindex(info: &IfaceInfo) -> Result<Option<u32>, PortError> {
    if open_set().contains(&info.ifindex) {
        return Ok(None);
    }
    detach_stale(info)
}

/// Detach an XSK redirect program from the interface, whoever attached it.
fn detach_stale(info: &IfaceInfo) -> Result<Option<u32>, PortError> {
    let link = link_info(info.ifindex).map_err(|e| PortError::Io {
        context: format!("querying the XDP program of {}", info.name),
        source: e,
    })?;
    for (id, mode) in [
        (link.drv_prog_id, AttachMode::Native),
        (link.skb_prog_id, AttachMode::Generic),
    ] {
        if id != 0 && is_xsk_program(id) {
            detach(info.ifindex, mode).map_err(|e| PortError::Io {
                context: format!(
                    "detaching stale AF_XDP program {id} ({}) from {}",
                    mode.name(),
                    info.name
                ),
                source: e,
            })?;
            tracing::warn!(
                iface = %info.name,
                prog_id = id,
                mode = mode.name(),
                "detached a stale AF_XDP program left attached by an earlier run"
            );
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// [`cleanup_stale_xdp`] over the interfaces the daemon owns, at startup. Interfaces that do
/// not exist are skipped; other failures are logged. Returns `(iface, program id)` detached.
pub fn sweep_stale_xdp<'a>(ifaces: impl IntoIterator<Item = &'a str>) -> Vec<(String, u32)> {
    let mut detached = Vec::new();
    for name in ifaces {
        match cleanup_stale_xdp(name) {
            Ok(Some(id)) => detached.push((name.to_string(), id)),
            Ok(None) | Err(PortError::NoSuchInterface(_)) => {}
            Err(e) => tracing::warn!(iface = name, "stale XDP sweep: {e}"),
        }
    }
    detached
}

/// The XDP program a port attached; detached when the last queue of the port is dropped.
#[derive(Debug)]
struct Attachment {
    iface: String,
    ifindex: u32,
    prog_id: u32,
    mode: AttachMode,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        open_set().retain(|&i| i != self.ifindex);
        let still_ours = link_info(self.ifindex).is_ok_and(|l| {
            let id = match self.mode {
                AttachMode::Native => l.drv_prog_id,
                AttachMode::Generic => l.skb_prog_id,
            };
            id != 0 && id == self.prog_id
        });
        if still_ours {
            if let Err(e) = detach(self.ifindex, self.mode) {
                tracing::warn!(iface = %self.iface, "detaching our XDP program: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Socket + UMEM

/// Ring structs libbpf keeps pointers to: boxed so their addresses never change.
#[derive(Default)]
struct Rings {
    fill: bpf::xsk_ring_prod,
    comp: bpf::xsk_ring_cons,
    rx: bpf::xsk_ring_cons,
    tx: bpf::xsk_ring_prod,
}

/// Anonymous mapping backing a UMEM.
struct Area {
    ptr: *mut u8,
    len: usize,
}

impl Area {
    fn new(len: usize) -> io::Result<Area> {
        // SAFETY: anonymous private mapping, no file, result checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            Err(io::Error::last_os_error())
        } else {
            Ok(Area { ptr: p.cast(), len })
        }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// A socket bound to one queue, its UMEM and rings; torn down in the right order on drop.
struct Xsk {
    xsk: *mut bpf::xsk_socket,
    umem: *mut bpf::xsk_umem,
    rings: Box<Rings>,
    // Declared after the pointers: unmapped only once the socket and UMEM are deleted.
    area: Area,
    fd: i32,
}

impl Drop for Xsk {
    fn drop(&mut self) {
        // SAFETY: both pointers came from successful libbpf create calls and are deleted once,
        // socket first (the UMEM refuses deletion while a socket uses it).
        unsafe {
            if !self.xsk.is_null() {
                bpf::xsk_socket__delete(self.xsk);
            }
            if !self.umem.is_null() {
                bpf::xsk_umem__delete(self.umem);
            }
        }
    }
}

/// Why one socket creation failed: the step and the errno.
struct CreateError {
    step: &'static str,
    err: io::Error,
}

impl CreateError {
    fn errno(&self) -> Option<i32> {
        self.err.raw_os_error()
    }
}

impl Xsk {
    fn create(
        iface: &CString,
        queue: u32,
        frame_size: u32,
        attempt: Attempt,
    ) -> Result<Xsk, CreateError> {
        let area = Area::new(((RX_FRAMES + TX_FRAMES) * frame_size) as usize).map_err(|err| {
            CreateError {
                step: "mapping the UMEM",
                err,
            }
        })?;
        let mut x = Xsk {
            xsk: std::ptr::null_mut(),
            umem: std::ptr::null_mut(),
            rings: Box::default(),
            area,
            fd: -1,
        };
        let ucfg = bpf::xsk_umem_config {
            fill_size: RING,
            comp_size: RING,
            frame_size,
            frame_headroom: 0,
            flags: 0,
        };
        let rings: &mut Rings = &mut x.rings;
        // SAFETY: the area is a live mapping of the size given; the ring structs are boxed
        // (stable addresses, as libbpf keeps pointers to them) and outlive the UMEM (dropped
        // after it in `Xsk::drop`).
        let r = unsafe {
            bpf::xsk_umem__create(
                &mut x.umem,
                x.area.ptr.cast(),
                x.area.len as u64,
                &mut rings.fill,
                &mut rings.comp,
                &ucfg,
            )
        };
        if r != 0 {
            x.umem = std::ptr::null_mut();
            return Err(CreateError {
                step: "registering the UMEM",
                err: neg_errno(r),
            });
        }
        let mut bind_flags = bpf::XDP_USE_NEED_WAKEUP;
        bind_flags |= if attempt.zero_copy {
            bpf::XDP_ZEROCOPY
        } else {
            bpf::XDP_COPY
        };
        let scfg = bpf::xsk_socket_config {
            rx_size: RING,
            tx_size: RING,
            libbpf_flags: 0,
            xdp_flags: bpf::XDP_FLAGS_UPDATE_IF_NOEXIST | attempt.mode.flag(),
            bind_flags: bind_flags as u16,
        };
        // SAFETY: `iface` is NUL-terminated, the UMEM was just created, the rings are boxed
        // and outlive the socket.
        let r = unsafe {
            bpf::xsk_socket__create(
                &mut x.xsk,
                iface.as_ptr(),
                queue,
                x.umem,
                &mut rings.rx,
                &mut rings.tx,
                &scfg,
            )
        };
        if r != 0 {
            x.xsk = std::ptr::null_mut();
            return Err(CreateError {
                step: "creating the socket / attaching the XDP program",
                err: neg_errno(r),
            });
        }
        // SAFETY: the socket was just created.
        x.fd = unsafe { bpf::xsk_socket__fd(x.xsk) };
        Ok(x)
    }

    /// The kernel's counters for this socket (`XDP_STATISTICS`), if it answers.
    fn statistics(&self) -> Option<libc::xdp_statistics> {
        // SAFETY: all-zero is a valid `xdp_statistics` (plain integers).
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `st`, which is that large; `fd`
        // is this live socket's.
        let r = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(st)
    }

    /// True if the kernel bound the socket in zero-copy mode.
    fn zero_copy(&self) -> bool {
        #[repr(C)]
        struct XdpOptions {
            flags: u32,
        }
        let mut o = XdpOptions { flags: 0 };
        let mut len = std::mem::size_of::<XdpOptions>() as libc::socklen_t;
        // SAFETY: `o` is a live xdp_options-shaped struct and its size is passed.
        let r = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_XDP,
                bpf::XDP_OPTIONS as i32,
                (&mut o as *mut XdpOptions).cast(),
                &mut len,
            )
        };
        r == 0 && o.flags & bpf::XDP_OPTIONS_ZEROCOPY != 0
    }
}

/// Create the socket for `queue`, retrying while the kernel still releases an earlier binding.
fn create_retrying(
    iface: &CString,
    queue: u32,
    frame_size: u32,
    attempt: Attempt,
) -> Result<Xsk, CreateError> {
    let deadline = Instant::now() + BUSY_RETRY;
    loop {
        match Xsk::create(iface, queue, frame_size, attempt) {
            Err(e) if e.errno() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

fn hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EBUSY) => {
            " (queue still bound by another AF_XDP socket, or XDP already attached in another mode)"
        }
        Some(libc::EEXIST) | Some(libc::ENOENT) => {
            " (another XDP program is attached; remove it with `ip link set dev IFACE xdp off`)"
        }
        Some(libc::EPERM) => " (needs CAP_NET_ADMIN and CAP_BPF)",
        Some(libc::EINVAL) => " (queue id beyond the active queues, or the MTU too large for XDP)",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Opening a port

/// Largest frame (bytes) a port can carry with `frame_size` chunks.
fn max_rx_frame(frame_size: u32) -> u32 {
    frame_size - RX_HEADROOM
}

/// Chunk size for an interface MTU: the smallest of 2 KiB / 4 KiB that holds a whole frame
/// (MTU + Ethernet header + two VLAN tags) after the XDP headroom.
fn frame_size_for(mtu: u32) -> Option<u32> {
    let frame = mtu.checked_add(14 + 8)?;
    [2048u32, 4096]
        .into_iter()
        .find(|&fs| frame <= max_rx_frame(fs))
}

/// Open AF_XDP sockets on every active queue of the interface. Returns the queues and the mode
/// string ("native, copy", ...).
pub fn open(info: &IfaceInfo) -> Result<(Vec<Box<dyn PortQueue>>, String), PortError> {
    let name = info.name.as_str();
    let frame_size = frame_size_for(info.mtu).ok_or_else(|| {
        unavailable(
            name,
            format!(
                "MTU {} does not fit one 4 KiB UMEM chunk (at most {})",
                info.mtu,
                max_rx_frame(4096) - 22
            ),
        )
    })?;
    let cname = CString::new(name).map_err(|_| PortError::NoSuchInterface(name.to_string()))?;

    // Claim the interface for this process before sweeping, so two opens cannot race.
    {
        let mut set = open_set();
        if set.contains(&info.ifindex) {
            return Err(unavailable(
                name,
                "an AF_XDP port is already open on it in this process".to_string(),
            ));
        }
        set.push(info.ifindex);
    }
    let release_claim = || open_set().retain(|&i| i != info.ifindex);

    if let Err(e) = detach_stale(info) {
        release_claim();
        return Err(e);
    }

    // Queue 0 decides the mode; the others must get the same.
    let mut failures = Vec::new();
    let mut first = None;
    for attempt in Attempt::ORDER {
        match create_retrying(&cname, 0, frame_size, attempt) {
            Ok(x) => {
                first = Some((x, attempt));
                break;
            }
            Err(e) => failures.push(format!(
                "{}: {} failed: {}{}",
                attempt.describe(),
                e.step,
                e.err,
                hint(e.errno())
            )),
        }
    }
    let Some((x0, attempt)) = first else {
        release_claim();
        return Err(unavailable(name, failures.join("; ")));
    };

    // Record the program libbpf attached (or reused), to detach it when the port closes.
    let link = match link_info(info.ifindex) {
        Ok(l) => l,
        Err(e) => {
            drop(x0);
            release_claim();
            return Err(PortError::Io {
                context: format!("querying the XDP program of {name}"),
                source: e,
            });
        }
    };
    let prog_id = match attempt.mode {
        AttachMode::Native => link.drv_prog_id,
        AttachMode::Generic => link.skb_prog_id,
    };
    // From here on the attachment owns the claim (its drop releases it).
    let attach = Arc::new(Attachment {
        iface: name.to_string(),
        ifindex: info.ifindex,
        prog_id,
        mode: attempt.mode,
    });
    let zc = x0.zero_copy();
    let mode = format!(
        "{}, {}",
        attempt.mode.name(),
        if zc { "zero-copy" } else { "copy" }
    );
    let max_tx = (info.mtu as usize + 14 + 8).min(max_rx_frame(frame_size) as usize);

    let mut queues: Vec<Box<dyn PortQueue>> = Vec::with_capacity(info.rx_queues as usize);
    queues.push(Box::new(AfXdpQueue::new(
        x0,
        info,
        0,
        frame_size,
        max_tx,
        attach.clone(),
    )));
    for q in 1..info.rx_queues.max(1) {
        match create_retrying(&cname, q, frame_size, attempt) {
            Ok(x) => queues.push(Box::new(AfXdpQueue::new(
                x,
                info,
                q,
                frame_size,
                max_tx,
                attach.clone(),
            ))),
            Err(e) => {
                return Err(unavailable(
                    name,
                    format!(
                        "queue {q} ({}): {} failed: {}{}",
                        attempt.describe(),
                        e.step,
                        e.err,
                        hint(e.errno())
                    ),
                ))
            }
        }
    }
    Ok((queues, mode))
}

// ---------------------------------------------------------------------------------------------
// The queue

/// One AF_XDP socket serving one queue of an interface.
pub struct AfXdpQueue {
    x: Xsk,
    iface: String,
    queue: u32,
    frame_mask: u64,
    /// UMEM offsets below this are RX chunks, the rest TX chunks.
    rx_region: u64,
    max_tx: usize,
    /// TX chunks free for `send` (capacity TX_FRAMES, never grown).
    free_tx: Vec<u64>,
    /// RX chunks not yet back in the fill ring (capacity RX_FRAMES, never grown).
    rx_spare: Vec<u64>,
    /// Descriptors submitted whose completion has not been reaped.
    tx_outstanding: u32,
    /// The last receive found the RX ring empty: only then can the kernel be waiting for a
    /// wake-up on the fill ring (`wake_rx`), so only then is its flag read — the flag shares a
    /// cache line with the fill ring's consumer index, which the receiving CPU keeps writing.
    rx_empty: bool,
    /// Frames copied into TX chunks by `stage`, not yet on the TX ring: (UMEM address,
    /// length), `staged[..n_staged]`. At most one kick's worth.
    staged: [(u64, u32); TX_KICK_BATCH],
    n_staged: usize,
    /// RX chunks lent by the `recv_in_place` call in progress (by chunk index).
    lent: ChunkSet,
    counters: QueueCounters,
    live: Liveness,
    // Last: the program is detached after the socket is deleted.
    _attach: Arc<Attachment>,
}

// SAFETY: the raw pointers are libbpf objects and ring memory owned exclusively by this queue;
// libbpf keeps no thread-local state for them, and the queue is used through `&mut self` by one
// worker at a time, so moving it to another thread is sound.
unsafe impl Send for AfXdpQueue {}

impl AfXdpQueue {
    fn new(
        x: Xsk,
        info: &IfaceInfo,
        queue: u32,
        frame_size: u32,
        max_tx: usize,
        attach: Arc<Attachment>,
    ) -> Self {
        let fs = frame_size as u64;
        let mut q = AfXdpQueue {
            x,
            iface: info.name.clone(),
            queue,
            frame_mask: !(fs - 1),
            rx_region: RX_FRAMES as u64 * fs,
            max_tx,
            free_tx: (RX_FRAMES as u64..(RX_FRAMES + TX_FRAMES) as u64)
                .map(|i| i * fs)
                .collect(),
            rx_spare: (0..RX_FRAMES as u64).map(|i| i * fs).collect(),
            tx_outstanding: 0,
            rx_empty: true,
            staged: [(0, 0); TX_KICK_BATCH],
            n_staged: 0,
            lent: ChunkSet::default(),
            counters: QueueCounters::default(),
            live: Liveness::new(info.ifindex),
            _attach: attach,
        };
        q.restock_fill();
        q
    }

    /// Queue index on the interface.
    pub fn queue_id(&self) -> u32 {
        self.queue
    }

    /// Give spare RX chunks back to the kernel (as many as the fill ring has room for).
    fn restock_fill(&mut self) {
        let given = fill_ring_put(&mut self.x.rings.fill, &self.rx_spare);
        self.rx_spare.truncate(self.rx_spare.len() - given);
    }

    /// Give the chunks of a lent batch back to the fill ring at once; what does not fit waits
    /// in `rx_spare` (restocked later).
    fn return_chunks(&mut self, chunks: &[u64]) {
        let given = fill_ring_put(&mut self.x.rings.fill, chunks);
        for &c in &chunks[..chunks.len() - given] {
            if self.rx_spare.len() < self.rx_spare.capacity() {
                self.rx_spare.push(c);
            }
        }
    }

    /// Move completed TX chunks back to the free list.
    fn reap_completions(&mut self) {
        if self.tx_outstanding == 0 {
            return;
        }
        let mut idx = 0u32;
        // SAFETY: the completion ring belongs to this queue's live UMEM.
        let n = unsafe { ring::cons_peek(&mut self.x.rings.comp, RING, &mut idx) } as usize;
        for i in 0..n {
            // SAFETY: entries idx..idx+n were made available by peek.
            let addr = unsafe { ring::comp_addr(&self.x.rings.comp, idx.wrapping_add(i as u32)) };
            if self.free_tx.len() < self.free_tx.capacity() {
                self.free_tx.push(addr & self.frame_mask);
            } else {
                // Never expected: the kernel returned more chunks than we sent.
                self.counters.io_errors += 1;
            }
        }
        if n > 0 {
            // SAFETY: releases exactly the `n` entries peeked.
            unsafe { ring::cons_release(&mut self.x.rings.comp, n as u32) };
            self.tx_outstanding = self.tx_outstanding.saturating_sub(n as u32);
        }
    }

    /// Descriptors in the TX ring the kernel has not consumed yet.
    fn tx_unconsumed(&mut self) -> u32 {
        // SAFETY: the TX ring belongs to this live socket; asking for RING free entries makes
        // libbpf refresh its view of the consumer index.
        let free = unsafe { ring::prod_nb_free(&mut self.x.rings.tx, RING) };
        RING.saturating_sub(free)
    }

    /// Wake the kernel to transmit (it sends at most 32 descriptors per wake-up in copy mode).
    fn kick(&mut self) {
        // SAFETY: the TX ring belongs to this live socket.
        if !unsafe { ring::prod_needs_wakeup(&self.x.rings.tx) } {
            return;
        }
        // SAFETY: a zero-length sendto is the AF_XDP TX wake-up; no buffer is passed.
        let r = unsafe {
            libc::sendto(
                self.x.fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            match errno() {
                // The kernel is busy or out of skbs: the next kick retries.
                libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR => {}
                // The socket is unbound: its interface was unregistered.
                libc::ENXIO => {
                    self.counters.io_errors += 1;
                    self.live.set_gone();
                }
                libc::ENETDOWN | libc::ENODEV => {
                    self.counters.io_errors += 1;
                    self.live.suspect();
                }
                _ => self.counters.io_errors += 1,
            }
        }
    }

    /// Wake the kernel's RX side if it asked for it (zero-copy drivers with an empty fill ring).
    fn wake_rx(&mut self) {
        // SAFETY: the fill ring belongs to this live UMEM.
        if !unsafe { ring::prod_needs_wakeup(&self.x.rings.fill) } {
            return;
        }
        // SAFETY: a zero-length non-blocking recvfrom is the AF_XDP RX wake-up.
        unsafe {
            libc::recvfrom(
                self.x.fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}

/// Put the last chunks of `chunks` on the fill ring, as many as it has room for (one
/// reservation); returns how many went (taken from the end of `chunks`).
fn fill_ring_put(fill: &mut bpf::xsk_ring_prod, chunks: &[u64]) -> usize {
    if chunks.is_empty() {
        return 0;
    }
    let want = chunks.len() as u32;
    let mut idx = 0u32;
    // SAFETY: the fill ring belongs to a live UMEM: `fill` is only ever a queue's own ring
    // (ring module contract).
    let got = unsafe {
        let room = ring::prod_nb_free(fill, want).min(want);
        ring::prod_reserve(fill, room, &mut idx)
    };
    let from = chunks.len() - got as usize;
    for (i, &addr) in chunks[from..].iter().enumerate() {
        // SAFETY: slots idx..idx+got were reserved above.
        unsafe { *ring::fill_addr(fill, idx.wrapping_add(i as u32)) = addr };
    }
    if got > 0 {
        // SAFETY: exactly `got` slots were reserved and written.
        unsafe { ring::prod_submit(fill, got) };
    }
    got as usize
}

/// A set of RX chunk indices (below `RX_FRAMES`), one bit each.
struct ChunkSet([u64; RX_FRAMES as usize / 64]);

impl Default for ChunkSet {
    fn default() -> Self {
        ChunkSet([0; RX_FRAMES as usize / 64])
    }
}

impl ChunkSet {
    /// Add `i`; true if it was there already (or out of range, which is refused alike).
    fn insert(&mut self, i: u64) -> bool {
        let Some(w) = self.0.get_mut((i / 64) as usize) else {
            return true;
        };
        let bit = 1u64 << (i % 64);
        let had = *w & bit != 0;
        *w |= bit;
        had
    }

    fn remove(&mut self, i: u64) {
        if let Some(w) = self.0.get_mut((i / 64) as usize) {
            *w &= !(1u64 << (i % 64));
        }
    }
}

/// Bounds-checked view of `len` bytes at UMEM offset `addr`.
fn umem_slice(area: &Area, addr: u64, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(addr).ok()?;
    let end = start.checked_add(len)?;
    if end > area.len {
        return None;
    }
    // SAFETY: `start..end` lies inside the live UMEM mapping (checked above); the kernel wrote
    // this chunk before publishing its RX descriptor and does not touch it until it is back in
    // the fill ring.
    Some(unsafe { std::slice::from_raw_parts(area.ptr.add(start), len) })
}

impl PortQueue for AfXdpQueue {
    fn recv(&mut self, bufs: &mut [PacketBuf]) -> usize {
        let want = bufs.len().min(RX_BATCH);
        if want == 0 {
            return 0;
        }
        let mut idx = 0u32;
        // SAFETY: the RX ring belongs to this live socket.
        let n = unsafe { ring::cons_peek(&mut self.x.rings.rx, want as u32, &mut idx) } as usize;
        self.rx_empty = n == 0;
        if n == 0 {
            return 0;
        }
        let mut filled = 0;
        for i in 0..n {
            // SAFETY: descriptors idx..idx+n were made available by peek.
            let d = unsafe { ring::rx_desc(&self.x.rings.rx, idx.wrapping_add(i as u32)) };
            match umem_slice(&self.x.area, d.addr, d.len as usize) {
                Some(frame) => {
                    bufs[filled].reset(frame);
                    self.counters.rx_packets += 1;
                    self.counters.rx_bytes += u64::from(d.len);
                    filled += 1;
                }
                None => self.counters.io_errors += 1,
            }
            // Back to the kernel, if it is one of our RX chunks (it always should be).
            let chunk = d.addr & self.frame_mask;
            if chunk < self.rx_region && self.rx_spare.len() < self.rx_spare.capacity() {
                self.rx_spare.push(chunk);
            }
        }
        // SAFETY: releases exactly the `n` descriptors peeked, after their data was copied.
        unsafe { ring::cons_release(&mut self.x.rings.rx, n as u32) };
        self.restock_fill();
        filled
    }

    fn send(&mut self, frames: &[&[u8]]) -> usize {
        let mut accepted = 0;
        for f in frames {
            accepted += usize::from(self.stage(f, None));
        }
        PortQueue::flush(self);
        accepted
    }

    fn stages_tx(&self) -> bool {
        true
    }

    /// AF_XDP ports do not encapsulate: the tunnel metadata is not used.
    fn stage(&mut self, f: &[u8], _tunnel: Option<TunnelMeta>) -> bool {
        if f.is_empty() || f.len() > self.max_tx {
            self.counters.tx_oversize += 1;
            return false;
        }
        if self.n_staged == TX_KICK_BATCH {
            PortQueue::flush(self);
        }
        if self.free_tx.is_empty() {
            self.reap_completions();
        }
        let Some(addr) = self.free_tx.pop() else {
            self.counters.tx_ring_full += 1;
            return false;
        };
        // SAFETY: `addr` is a TX chunk start inside the UMEM (free list invariant) and
        // `f.len() <= max_tx <= chunk size`, so the copy stays inside the chunk; the kernel does
        // not own a chunk on the free list, and `f` cannot overlap it: `f` is caller memory or
        // a frame lent by some queue's `recv_in_place`, which is always an RX chunk, never a
        // TX chunk on a free list.
        unsafe {
            std::ptr::copy_nonoverlapping(f.as_ptr(), self.x.area.ptr.add(addr as usize), f.len());
        }
        self.staged[self.n_staged] = (addr, f.len() as u32);
        self.n_staged += 1;
        true
    }

    /// Put the staged frames on the TX ring (one reservation, one submit) and wake the kernel.
    fn flush(&mut self) {
        let n = self.n_staged;
        if n == 0 {
            return;
        }
        self.n_staged = 0;
        let mut idx = 0u32;
        // SAFETY: the TX ring belongs to this live socket.
        let reserved =
            unsafe { ring::prod_reserve(&mut self.x.rings.tx, n as u32, &mut idx) } as usize;
        for (i, &(addr, len)) in self.staged[..n].iter().enumerate() {
            if i >= reserved {
                // Never expected (a free chunk implies a free ring slot): give the chunk back.
                self.free_tx.push(addr);
                self.counters.tx_ring_full += 1;
                continue;
            }
            // SAFETY: slot idx+i was reserved above; the chunk holds the staged frame.
            let d = unsafe { ring::tx_desc(&mut self.x.rings.tx, idx.wrapping_add(i as u32)) };
            d.addr = addr;
            d.len = len;
            d.options = 0;
            self.counters.tx_packets += 1;
            self.counters.tx_bytes += u64::from(len);
        }
        if reserved > 0 {
            // SAFETY: exactly `reserved` slots were reserved and written.
            unsafe { ring::prod_submit(&mut self.x.rings.tx, reserved as u32) };
            self.tx_outstanding += reserved as u32;
            // One wake-up per kernel budget, back to back (see the module docs).
            for _ in 0..reserved.div_ceil(KERNEL_TX_BUDGET) {
                self.kick();
            }
        }
    }

    fn poll(&mut self) -> Result<(), PortError> {
        PortQueue::flush(self);
        self.reap_completions();
        self.restock_fill();
        if self.rx_empty {
            self.wake_rx();
        }
        if self.tx_outstanding > 0 && self.tx_unconsumed() > 0 {
            self.kick();
        }
        if self.live.alive(ifindex_exists) {
            Ok(())
        } else {
            Err(PortError::Gone(self.iface.clone()))
        }
    }

    fn tx_pending(&self) -> bool {
        self.tx_outstanding > 0 || self.n_staged > 0
    }

    fn recv_in_place_supported(&self) -> bool {
        true
    }

    fn rx_ready(&mut self) -> bool {
        // SAFETY: the RX ring belongs to this live socket.
        let ready = unsafe { ring::cons_ready(&mut self.x.rings.rx) } > 0;
        self.rx_empty = !ready;
        ready
    }

    fn recv_in_place(&mut self, max: usize, f: &mut LentBatch<'_>) -> usize {
        let want = max.min(RX_LEND);
        if want == 0 {
            return 0;
        }
        let mut idx = 0u32;
        // SAFETY: the RX ring belongs to this live socket.
        let n = unsafe { ring::cons_peek(&mut self.x.rings.rx, want as u32, &mut idx) } as usize;
        self.rx_empty = n == 0;
        if n == 0 {
            return 0;
        }
        // Take the descriptors and release the ring entries at once: a chunk belongs to us from
        // its RX descriptor until we put it back in the fill ring, below.
        let mut descs = [(0u64, 0u32); RX_LEND];
        for (i, d) in descs[..n].iter_mut().enumerate() {
            // SAFETY: descriptors idx..idx+n were made available by peek.
            let x = unsafe { ring::rx_desc(&self.x.rings.rx, idx.wrapping_add(i as u32)) };
            *d = (x.addr, x.len);
        }
        // SAFETY: releases exactly the `n` descriptors peeked (read above).
        unsafe { ring::cons_release(&mut self.x.rings.rx, n as u32) };

        let chunk_size = !self.frame_mask + 1;
        let mut filled = 0;
        // The views live in this block only: they are gone before their chunks go back to the
        // kernel below.
        {
            // Unused slots are empty views (an empty range of empty storage is always valid).
            let mut views: [PacketBuf<&mut [u8]>; RX_LEND] = std::array::from_fn(|_| {
                PacketBuf::new(<&mut [u8]>::default(), 0, 0).unwrap_or_else(|| unreachable!())
            });
            for d in descs[..n].iter_mut() {
                let (addr, len) = *d;
                let chunk = addr & self.frame_mask;
                let off = addr - chunk;
                // One of our RX chunks (never a TX one), not lent twice in this batch (two views of
                // one chunk would alias). Never expected otherwise; such a descriptor is counted
                // and its chunk not given back (a second time).
                if chunk >= self.rx_region || self.lent.insert(chunk / chunk_size) {
                    self.counters.io_errors += 1;
                    d.0 = u64::MAX;
                    continue;
                }
                if off + u64::from(len) > chunk_size {
                    self.counters.io_errors += 1;
                    continue;
                }
                // SAFETY: `chunk..chunk + chunk_size` is an RX chunk inside the live UMEM mapping
                // (`rx_region` <= the area's length); the kernel wrote it before publishing its
                // descriptor and does not touch it until it is back in the fill ring, which happens
                // only after `f` returns and every view is gone. `lent` guarantees no other view of
                // this call covers the same chunk, and nothing else of this queue touches RX chunks
                // meanwhile (`stage` writes TX chunks only), so the `&mut` is unique.
                let mem = unsafe {
                    std::slice::from_raw_parts_mut(
                        self.x.area.ptr.add(chunk as usize),
                        chunk_size as usize,
                    )
                };
                if let Some(b) = PacketBuf::new(mem, off as usize, len as usize) {
                    views[filled] = b;
                    filled += 1;
                    self.counters.rx_packets += 1;
                    self.counters.rx_bytes += u64::from(len);
                }
            }
            f(&mut views[..filled]);
        }
        let mut back = [0u64; RX_LEND];
        let mut nb = 0;
        for &(addr, _) in &descs[..n] {
            if addr == u64::MAX {
                continue;
            }
            let chunk = addr & self.frame_mask;
            self.lent.remove(chunk / chunk_size);
            back[nb] = chunk;
            nb += 1;
        }
        self.return_chunks(&back[..nb]);
        self.restock_fill();
        filled
    }

    fn rx_fd(&self) -> Option<i32> {
        Some(self.x.fd)
    }

    fn counters(&self) -> QueueCounters {
        let mut c = self.counters;
        // Reports are rare (a `dump-ports`), so one system call here costs nothing per packet;
        // a socket that cannot answer just reports no kernel drops.
        if let Some(st) = self.x.statistics() {
            // `rx_dropped` includes the fill-ring-empty drops: split so the reasons add up.
            c.xsk_fill_ring_empty = st.rx_fill_ring_empty_descs;
            c.xsk_rx_dropped = st.rx_dropped.saturating_sub(st.rx_fill_ring_empty_descs);
            c.xsk_rx_ring_full = st.rx_ring_full;
            c.xsk_invalid_descs = st.rx_invalid_descs + st.tx_invalid_descs;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_follows_mtu() {
        assert_eq!(frame_size_for(1500), Some(2048));
        assert_eq!(frame_size_for(1770), Some(2048));
        assert_eq!(frame_size_for(1771), Some(4096));
        assert_eq!(frame_size_for(9000), None);
        assert_eq!(frame_size_for(u32::MAX), None);
    }

    #[test]
    fn errors_are_negated() {
        assert_eq!(neg_errno(-22).raw_os_error(), Some(libc::EINVAL));
        assert_eq!(neg_errno(i32::MIN).raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn attempts_prefer_native_then_zero_copy() {
        let names: Vec<String> = Attempt::ORDER.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            ["native, zero-copy", "native, copy", "generic, copy"]
        );
    }
}
