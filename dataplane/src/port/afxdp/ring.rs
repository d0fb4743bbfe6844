//! The AF_XDP rings (fill, completion, RX, TX), driven from Rust.
//!
//! libbpf sets the rings up (`xsk_umem__create`, `xsk_socket__create`) and describes each in
//! an `xsk_ring_prod` / `xsk_ring_cons`: pointers to the shared producer and consumer indices,
//! to the descriptor array and to the flags word, plus the indices last seen (`cached_*`).
//! Its accessors are `static inline` C functions, which `libbpf-sys` exports as real,
//! out-of-line functions (`_xsk_ring_cons__peek`, ...): a call through the GOT for every
//! descriptor read or written — four to five per forwarded frame. These are the same
//! operations (libbpf's `xsk.h`: index arithmetic, one acquire load to refresh a cached index,
//! one release store to publish) inlined into the worker's loops.
//!
//! # Safety
//! Every function here takes a ring struct that libbpf filled in for a socket or UMEM that is
//! still alive (its mappings stay valid until `xsk_socket__delete` / `xsk_umem__delete`), and
//! indices obtained from [`prod_reserve`] / [`cons_peek`] on that ring and not yet submitted /
//! released. The shared indices are `u32`s the kernel updates concurrently, so they are only
//! accessed as atomics.
#![allow(unsafe_code)]

use libbpf_sys as bpf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The kernel-shared index at `p` as an atomic.
///
/// # Safety
/// `p` points into a live ring mapping (aligned, valid for the ring's lifetime).
#[inline(always)]
unsafe fn shared<'a>(p: *mut u32) -> &'a AtomicU32 {
    // SAFETY: per the function's contract; the kernel accesses it only atomically as well.
    unsafe { AtomicU32::from_ptr(p) }
}

/// Free slots of a producer ring, refreshing the consumer index only when the cached view
/// shows fewer than `nb` (libbpf's `xsk_prod_nb_free`: `cached_cons` is kept `size` ahead).
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(super) unsafe fn prod_nb_free(r: &mut bpf::xsk_ring_prod, nb: u32) -> u32 {
    let free = r.cached_cons.wrapping_sub(r.cached_prod);
    if free >= nb {
        return free;
    }
    // SAFETY: `consumer` points into this live ring (module contract).
    let cons = unsafe { shared(r.consumer) }.load(Ordering::Acquire);
    r.cached_cons = cons.wrapping_add(r.size);
    r.cached_cons.wrapping_sub(r.cached_prod)
}

/// Reserve `nb` slots (all or none); the first one's index goes to `idx`.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(super) unsafe fn prod_reserve(r: &mut bpf::xsk_ring_prod, nb: u32, idx: &mut u32) -> u32 {
    // SAFETY: forwarded contract.
    if unsafe { prod_nb_free(r, nb) } < nb {
        return 0;
    }
    *idx = r.cached_prod;
    r.cached_prod = r.cached_prod.wrapping_add(nb);
    nb
}

/// Publish `nb` reserved slots, written before this call, to the kernel.
///
/// # Safety
/// See the module docs; the `nb` slots were reserved and written.
#[inline(always)]
pub(super) unsafe fn prod_submit(r: &mut bpf::xsk_ring_prod, nb: u32) {
    // SAFETY: `producer` points into this live ring; only this process produces on it.
    let p = unsafe { shared(r.producer) };
    // Release: the descriptors written before are visible before the new index.
    p.store(
        p.load(Ordering::Relaxed).wrapping_add(nb),
        Ordering::Release,
    );
}

/// Whether the kernel asked to be woken up (`XDP_RING_NEED_WAKEUP`).
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(super) unsafe fn prod_needs_wakeup(r: &bpf::xsk_ring_prod) -> bool {
    // SAFETY: `flags` points into this live ring.
    unsafe { shared(r.flags) }.load(Ordering::Relaxed) & bpf::XDP_RING_NEED_WAKEUP != 0
}

/// Entries ready in a consumer ring, at most `nb`; the first one's index goes to `idx`, and
/// the entries are taken (read them, then [`cons_release`]).
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(super) unsafe fn cons_peek(r: &mut bpf::xsk_ring_cons, nb: u32, idx: &mut u32) -> u32 {
    let mut entries = r.cached_prod.wrapping_sub(r.cached_cons);
    if entries == 0 {
        // Acquire: the descriptors the kernel wrote before publishing are visible after.
        // SAFETY: `producer` points into this live ring (module contract).
        r.cached_prod = unsafe { shared(r.producer) }.load(Ordering::Acquire);
        entries = r.cached_prod.wrapping_sub(r.cached_cons);
    }
    let n = entries.min(nb);
    if n > 0 {
        *idx = r.cached_cons;
        r.cached_cons = r.cached_cons.wrapping_add(n);
    }
    n
}

/// Entries ready in a consumer ring (not taken), refreshing the producer index only when the
/// cached view shows none, like [`cons_peek`].
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(super) unsafe fn cons_ready(r: &mut bpf::xsk_ring_cons) -> u32 {
    let entries = r.cached_prod.wrapping_sub(r.cached_cons);
    if entries > 0 {
        return entries;
    }
    // SAFETY: `producer` points into this live ring (module contract).
    r.cached_prod = unsafe { shared(r.producer) }.load(Ordering::Acquire);
    r.cached_prod.wrapping_sub(r.cached_cons)
}

/// Give `nb` peeked entries back to the kernel (after reading them).
///
/// # Safety
/// See the module docs; the `nb` entries were peeked and are no longer read.
#[inline(always)]
pub(super) unsafe fn cons_release(r: &mut bpf::xsk_ring_cons, nb: u32) {
    // SAFETY: `consumer` points into this live ring; only this process consumes from it.
    let c = unsafe { shared(r.consumer) };
    // Release: our reads of the entries happen before the kernel may overwrite them.
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(nb),
        Ordering::Release,
    );
}

/// The fill-ring slot `idx` (a UMEM address to write).
///
/// # Safety
/// See the module docs; `idx` was reserved on this fill ring.
#[inline(always)]
pub(super) unsafe fn fill_addr(r: &mut bpf::xsk_ring_prod, idx: u32) -> &mut u64 {
    // SAFETY: the fill ring's array holds `mask + 1` u64 slots.
    unsafe { &mut *r.ring.cast::<u64>().add((idx & r.mask) as usize) }
}

/// The completion-ring entry `idx` (a UMEM address the kernel is done with).
///
/// # Safety
/// See the module docs; `idx` was peeked on this completion ring.
#[inline(always)]
pub(super) unsafe fn comp_addr(r: &bpf::xsk_ring_cons, idx: u32) -> u64 {
    // SAFETY: the completion ring's array holds `mask + 1` u64 slots.
    unsafe { *r.ring.cast::<u64>().add((idx & r.mask) as usize) }
}

/// The RX descriptor `idx`.
///
/// # Safety
/// See the module docs; `idx` was peeked on this RX ring.
#[inline(always)]
pub(super) unsafe fn rx_desc(r: &bpf::xsk_ring_cons, idx: u32) -> bpf::xdp_desc {
    // SAFETY: the RX ring's array holds `mask + 1` descriptors.
    unsafe { *r.ring.cast::<bpf::xdp_desc>().add((idx & r.mask) as usize) }
}

/// The TX descriptor slot `idx`.
///
/// # Safety
/// See the module docs; `idx` was reserved on this TX ring.
#[inline(always)]
pub(super) unsafe fn tx_desc(r: &mut bpf::xsk_ring_prod, idx: u32) -> &mut bpf::xdp_desc {
    // SAFETY: the TX ring's array holds `mask + 1` descriptors.
    unsafe { &mut *r.ring.cast::<bpf::xdp_desc>().add((idx & r.mask) as usize) }
}

#[cfg(test)]
mod tests {
    //! The index arithmetic against a ring in plain memory, the kernel's side played by the
    //! test (it moves the shared indices by hand).
    use super::*;

    use std::cell::Cell;

    /// The shared words and slots, written by the test through atomics and cells while the
    /// ring struct holds raw pointers to them.
    struct FakeRing {
        producer: Box<AtomicU32>,
        consumer: Box<AtomicU32>,
        flags: Box<AtomicU32>,
        slots: Vec<Cell<u64>>,
    }

    fn fake(size: u32) -> FakeRing {
        FakeRing {
            producer: Box::new(AtomicU32::new(0)),
            consumer: Box::new(AtomicU32::new(0)),
            flags: Box::new(AtomicU32::new(0)),
            slots: (0..size).map(|_| Cell::new(0)).collect(),
        }
    }

    fn prod(f: &FakeRing, size: u32) -> bpf::xsk_ring_prod {
        bpf::xsk_ring_prod {
            cached_prod: 0,
            // As libbpf initialises a producer ring: the consumer index plus the size.
            cached_cons: size,
            mask: size - 1,
            size,
            producer: f.producer.as_ptr(),
            consumer: f.consumer.as_ptr(),
            ring: f.slots.as_ptr() as *mut std::ffi::c_void,
            flags: f.flags.as_ptr(),
        }
    }

    fn cons(f: &FakeRing, size: u32) -> bpf::xsk_ring_cons {
        bpf::xsk_ring_cons {
            cached_prod: 0,
            cached_cons: 0,
            mask: size - 1,
            size,
            producer: f.producer.as_ptr(),
            consumer: f.consumer.as_ptr(),
            ring: f.slots.as_ptr() as *mut std::ffi::c_void,
            flags: f.flags.as_ptr(),
        }
    }

    fn get(a: &AtomicU32) -> u32 {
        a.load(Ordering::Relaxed)
    }

    fn set(a: &AtomicU32, v: u32) {
        a.store(v, Ordering::Relaxed)
    }

    #[test]
    fn producer_reserves_all_or_nothing_and_sees_the_consumer_move() {
        let f = fake(8);
        let mut r = prod(&f, 8);
        let mut idx = 0;
        // SAFETY: the fake ring's memory lives in `f` for the whole test.
        unsafe {
            assert_eq!(prod_reserve(&mut r, 6, &mut idx), 6);
            assert_eq!(idx, 0);
            for i in 0..6 {
                *fill_addr(&mut r, idx + i) = 100 + u64::from(i);
            }
            prod_submit(&mut r, 6);
            assert_eq!(get(&f.producer), 6);
            // Two free: three is refused whole.
            assert_eq!(prod_reserve(&mut r, 3, &mut idx), 0);
            // The "kernel" consumes four: now there is room, and the slots wrap around.
            set(&f.consumer, 4);
            assert_eq!(prod_reserve(&mut r, 3, &mut idx), 3);
            assert_eq!(idx, 6);
            for i in 0..3 {
                *fill_addr(&mut r, idx + i) = 200 + u64::from(i);
            }
            prod_submit(&mut r, 3);
            assert_eq!(get(&f.producer), 9);
            assert_eq!(prod_nb_free(&mut r, 8), 3);
        }
        let slots: Vec<u64> = f.slots.iter().map(Cell::get).collect();
        assert_eq!(slots, vec![202, 101, 102, 103, 104, 105, 200, 201]);
    }

    #[test]
    fn consumer_peeks_what_was_published_and_releases_it() {
        let f = fake(4);
        let mut r = cons(&f, 4);
        let mut idx = 0;
        // SAFETY: the fake ring's memory lives in `f` for the whole test.
        unsafe {
            assert_eq!(cons_peek(&mut r, 4, &mut idx), 0);
            f.slots[0].set(7);
            f.slots[1].set(8);
            f.slots[2].set(9);
            set(&f.producer, 3);
            // Ready entries are counted without being taken.
            assert_eq!(cons_ready(&mut r), 3);
            assert_eq!(cons_ready(&mut r), 3);
            assert_eq!(cons_peek(&mut r, 2, &mut idx), 2);
            assert_eq!(cons_ready(&mut r), 1);
            assert_eq!((idx, comp_addr(&r, idx), comp_addr(&r, idx + 1)), (0, 7, 8));
            cons_release(&mut r, 2);
            assert_eq!(get(&f.consumer), 2);
            // The third entry is still cached; the index wraps past the end.
            assert_eq!(cons_peek(&mut r, 4, &mut idx), 1);
            assert_eq!(comp_addr(&r, idx), 9);
            cons_release(&mut r, 1);
            f.slots[3].set(10);
            f.slots[0].set(11);
            set(&f.producer, 5);
            assert_eq!(cons_peek(&mut r, 4, &mut idx), 2);
            assert_eq!((comp_addr(&r, idx), comp_addr(&r, idx + 1)), (10, 11));
            cons_release(&mut r, 2);
            assert_eq!(get(&f.consumer), 5);
        }
    }

    #[test]
    fn wakeup_flag_is_read_from_the_shared_word() {
        let f = fake(4);
        let r = prod(&f, 4);
        // SAFETY: the fake ring's memory lives in `f` for the whole test.
        unsafe {
            assert!(!prod_needs_wakeup(&r));
            set(&f.flags, bpf::XDP_RING_NEED_WAKEUP);
            assert!(prod_needs_wakeup(&r));
        }
    }
}
