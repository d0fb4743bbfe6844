//! One poll-mode worker: its queues, its cache, its loop.
//!
//! # Per-packet work, and what was cut from it (issue 3, speed)
//!
//! One iteration: quiet point (topology and command channel, looked at only when
//! `Shared::wake` moved: one atomic load when nothing changed), frames crossing from other
//! workers, one batch of up to [`BATCH`] frames per
//! queue, flush of every queue's transmissions, `poll` of every queue. Per batch: the bridge's
//! pipeline version (one pointer compare), every frame touched, then per packet its key (into
//! one reused buffer), a cache lookup (translation on a miss) and the actions; hits are added
//! to rule counters once per entry per batch.
//!
//! Frame copies. The bare AF_XDP forwarder of the veth lab copies each frame once (RX UMEM →
//! TX UMEM). This worker used to copy three times (RX UMEM → packet buffer → transmit staging
//! buffer → TX UMEM); now also once:
//! * **receive in place**: a queue that can ([`PortQueue::recv_in_place`]; AF_XDP, memory) lends
//!   the batch where the kernel wrote it — the UMEM chunks, with their headroom for pushed
//!   tags — for the duration of [`Worker::process_batch`], and gets the chunks back for its
//!   fill ring afterwards. While lent, the queue is out of `queues` (a [`Lent`] stand-in takes
//!   its place), so outputs can reach every other queue; outputs back to the lent queue itself
//!   (`IN_PORT`, hairpin) wait in the worker's staging buffers and go out when it is back.
//!   Queues that cannot lend (AF_PACKET) still copy into the worker's packet buffers;
//! * **transmit straight into the queue**: an output calls [`PortQueue::stage`], which copies
//!   the frame into a free TX chunk at once (AF_XDP) and puts the batch on the ring at `flush`;
//!   queues without it keep the worker's staging buffers and `send`.
//!
//! First touch. A frame received in place was just written by another CPU (on veth the copy
//! into the UMEM runs on the sender's), so its first read misses the cache; the batch loop
//! touches every frame before parsing any, so those misses overlap.
//!
//! Loop overhead. An iteration that finds nothing reads no clock (see [`Worker::iterate`]);
//! the topology is checked through a plain atomic generation instead of an `ArcSwap` load (which
//! takes a debt slot), and the command channel through `is_empty` before `try_recv`. Lookups
//! try the previous packet's cache entry first (see [`FlowCache::lookup`]).

use super::cache::{self, FlowCache, Lookup};
use super::ct;
use super::stats::{self, Drops, N_DROPS};
use super::{
    BridgeTopo, Cmd, CrossFrame, GoneEvent, IdlePolicy, Link, NewQueue, QueueReport, Shared,
    Topology, WorkerReport, WorkerStats, BATCH,
};
use crate::execute::{execute, Egress, PacketBuf, TunnelMeta};
use crate::flowtable::Pipeline;
use crate::key::FlowKey;
use crate::key::RECIRC_WORD;
use crate::packet::{extract, FIRST_PACKET_WORD};
use crate::port::{PortError, PortQueue};
use crate::xlate::{recirc_table, xlate_from, DpAction, XlateCtx, XlateOutput};
use arc_swap::ArcSwap;
use control::flow::field::Field;
use crossbeam::channel::Receiver;
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Capacity reserved in transmit staging buffers (a full-size Ethernet frame with tags).
const FRAME_CAP: usize = 1536;
/// Deepest chain of recirculations (`ct(table=..)` in a recirculated pass, ...) for one
/// packet; deeper ones are dropped and counted (`recirc_too_deep`), so a pipeline that
/// recirculates in a loop cannot keep a worker busy.
pub(crate) const MAX_RECIRC_DEPTH: u8 = 8;
/// Most recirculations pending for one packet (several `ct(table=..)` in one pass); bounded so
/// the queue never grows (no allocation on the packet path).
const MAX_RECIRC_PENDING: usize = 16;

/// A recirculation waiting to run: the conntrack fields and recirculation id (words 12..=15
/// of the key), the table to start in, the depth.
#[derive(Clone, Copy)]
struct PendingRecirc {
    ct_words: [u64; 4],
    table: u8,
    depth: u8,
}

/// Empty iterations before the `Sleep` policy starts sleeping.
const SPIN_BEFORE_SLEEP: u32 = 16;

/// A queue this worker owns, with its transmit staging.
struct OwnedQueue {
    qid: u64,
    bridge: u32,
    /// Index of the bridge in the worker's topology.
    view: usize,
    ofport: u32,
    q: Box<dyn PortQueue>,
    /// The queue stages transmissions itself (`PortQueue::stages_tx`): an output is copied
    /// straight into its transmit memory, and `tx` stays empty — except while the queue is
    /// lent out (`lent`).
    direct: bool,
    /// The queue lends received frames in place (`PortQueue::recv_in_place_supported`).
    in_place: bool,
    /// While its own batch is processed in place, `q` is a stand-in ([`Lent`]): outputs to this
    /// queue go to `tx` and are sent once the real queue is back.
    lent: bool,
    /// Drops of packets received here.
    drops: Drops,
    /// Frames waiting to be sent (`tx[..tx_n]`); buffers are kept for reuse.
    tx: Vec<Vec<u8>>,
    /// Tunnel metadata of each staged frame (`tx_meta[..tx_n]`), for encapsulating ports.
    /// Grows with `tx` (beyond a batch only while the queue is lent), never shrinks.
    tx_meta: Vec<Option<TunnelMeta>>,
    tx_n: usize,
}

impl OwnedQueue {
    /// Hand the staged frames to the queue.
    fn flush(&mut self) {
        if self.lent {
            return;
        }
        for (chunk, meta) in self.tx[..self.tx_n]
            .chunks(BATCH)
            .zip(self.tx_meta[..self.tx_n].chunks(BATCH))
        {
            let mut refs: [&[u8]; BATCH] = [&[]; BATCH];
            for (r, b) in refs.iter_mut().zip(chunk) {
                *r = b;
            }
            // What the queue does not accept it counts itself (`tx_ring_full`, `tx_oversize`).
            self.q.send_tunneled(&refs[..chunk.len()], meta);
        }
        self.tx_n = 0;
        if self.direct {
            self.q.flush();
        }
    }

    /// The next staging buffer, for a frame with `tunnel` metadata (flushing first if the
    /// batch is full, unless the queue is lent: then `tx` grows, which takes a hairpin of more
    /// than a batch's worth of outputs).
    fn slot(&mut self, tunnel: Option<TunnelMeta>) -> &mut Vec<u8> {
        if self.tx_n >= BATCH && !self.lent {
            self.flush();
        }
        if self.tx.len() == self.tx_n {
            self.tx.push(Vec::with_capacity(FRAME_CAP));
            self.tx_meta.push(None);
        }
        self.tx_meta[self.tx_n] = tunnel;
        self.tx_n += 1;
        &mut self.tx[self.tx_n - 1]
    }

    fn stage(&mut self, frame: &[u8], tunnel: Option<TunnelMeta>) {
        if self.direct && !self.lent {
            // Counted by the queue if it cannot take it.
            self.q.stage(frame, tunnel);
            return;
        }
        let b = self.slot(tunnel);
        b.clear();
        b.extend_from_slice(frame);
    }

    fn report(&self) -> QueueReport {
        QueueReport {
            qid: self.qid,
            counters: self.q.counters(),
            drops: self.drops,
        }
    }
}

/// A bridge as this worker tracks it.
struct BridgeView {
    id: u32,
    /// The bridge's published pipeline, read through arc-swap's `Cache`: checking for a new
    /// version is one atomic load of the pointer (a plain `load` per batch took a debt slot
    /// and was the hottest spot of the loop).
    handle: arc_swap::Cache<Arc<ArcSwap<Pipeline>>, Arc<Pipeline>>,
    /// The version in use (held, so its address identifies it: no ABA).
    pipeline: Arc<Pipeline>,
    /// Cache epoch of the bridge (see `cache`).
    epoch: u64,
    drops: Drops,
    /// Where each OpenFlow port's frames go from this worker, resolved once per topology or
    /// queue change so an output costs one map lookup.
    dest: DestMap,
}

/// Port number → [`Dest`]: an array indexed by port for the usual small port numbers (an
/// output costs an index, not a hash probe), a hash map for the others.
#[derive(Default)]
struct DestMap {
    small: Vec<Option<Dest>>,
    large: FxHashMap<u32, Dest>,
}

impl DestMap {
    /// Ports below this are in `small`.
    const SMALL: u32 = 1024;

    fn from_iter(it: impl Iterator<Item = (u32, Dest)>) -> DestMap {
        let mut m = DestMap::default();
        for (p, d) in it {
            if p < Self::SMALL {
                let i = p as usize;
                if m.small.len() <= i {
                    m.small.resize(i + 1, None);
                }
                m.small[i] = Some(d);
            } else {
                m.large.insert(p, d);
            }
        }
        m
    }

    #[inline]
    fn get(&self, p: u32) -> Option<&Dest> {
        if p < Self::SMALL {
            self.small.get(p as usize)?.as_ref()
        } else {
            self.large.get(&p)
        }
    }

    fn contains_key(&self, p: u32) -> bool {
        self.get(p).is_some()
    }
}

/// Where an output to a port goes from this worker.
#[derive(Debug, Clone, Copy)]
enum Dest {
    /// A queue this worker owns (index in `queues`).
    Local(usize),
    /// A queue another worker owns.
    Remote { worker: usize, qid: u64 },
    /// A queue this worker should own but does not (gone, being removed).
    Stale,
}

/// Rate limit for the `controller` log line.
#[derive(Default)]
struct LogLimit {
    last_ms: u64,
    suppressed: u64,
}

#[derive(Default)]
struct Counters {
    packets: u64,
    hits: u64,
    misses: u64,
    busy_ns: u64,
    idle_ns: u64,
    /// Iterations that moved at least one frame.
    busy_iterations: u64,
}

/// A worker's state. Runs on its own thread ([`Worker::run`]) or is driven by a benchmark.
pub(crate) struct Worker {
    id: usize,
    shared: Arc<Shared>,
    cmds: Receiver<Cmd>,
    topo: Arc<Topology>,
    views: Vec<BridgeView>,
    queues: Vec<OwnedQueue>,
    /// qid → index in `queues`.
    qindex: FxHashMap<u64, usize>,
    cache: FlowCache,
    /// Cache hits of the current batch, per entry: (entry, packets, bytes). Rule counters are
    /// bumped once per entry per batch instead of once per packet (atomic operations on
    /// counters shared by every worker were a fifth of the worker's time at full load).
    batch_hits: Vec<(usize, u64, u64)>,
    epochs: u64,
    bufs: Vec<PacketBuf>,
    /// The key of the packet being processed (one, reused: see [`Worker::process_batch`]).
    key: FlowKey,
    xout: XlateOutput,
    /// Recirculations of the packet being processed (see [`PendingRecirc`]).
    recirc: Vec<PendingRecirc>,
    counters: Counters,
    log: LogLimit,
    idle_streak: u32,
    /// The `Shared::wake` value of the last quiet point (see [`Worker::iterate`]).
    seen_wake: u64,
    /// `Shared::stop` as last seen at a quiet point.
    stopping: bool,
    /// Workers of the datapath (fixed at start): the crossing links to drain.
    n_workers: usize,
    /// When the last busy stretch ended (idle time runs from here to the next frame).
    idle_since: Instant,
    /// Start of the current iteration's busy part: read when its first frame shows up, so an
    /// iteration that finds nothing reads no clock at all (an empty poll is ~100 ns, a clock
    /// read ~26 ns on the lab VM).
    busy_since: Option<Instant>,
    /// The cache entry the previous packet hit, tried first (see [`FlowCache::lookup`]) while
    /// `hint_live`: set when consecutive packets hit one entry, cleared when the hint fails, so
    /// traffic spread over many megaflows does not pay a failing compare per packet.
    hint: usize,
    hint_live: bool,
}

impl Worker {
    pub(crate) fn new(id: usize, shared: Arc<Shared>, cmds: Receiver<Cmd>) -> Worker {
        let n_workers = shared.links.len();
        let mut bufs = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let mut b = PacketBuf::from_frame(&[0; FRAME_CAP]);
            b.reset(&[]);
            bufs.push(b);
        }
        Worker {
            id,
            topo: Arc::new(Topology::default()),
            shared,
            cmds,
            views: Vec::new(),
            queues: Vec::new(),
            qindex: FxHashMap::default(),
            cache: FlowCache::new(cache::DEFAULT_ENTRIES),
            batch_hits: Vec::with_capacity(BATCH),
            epochs: 0,
            bufs,
            key: FlowKey::zero(),
            xout: XlateOutput::new(),
            recirc: Vec::with_capacity(MAX_RECIRC_PENDING),
            counters: Counters::default(),
            log: LogLimit::default(),
            idle_since: Instant::now(),
            busy_since: None,
            hint: usize::MAX,
            hint_live: false,
            idle_streak: 0,
            // Never a real value: the first iteration runs a quiet point.
            seen_wake: u64::MAX,
            stopping: false,
            n_workers,
        }
    }

    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn clear_cache(&mut self) {
        self.cache.clear();
    }

    pub(crate) fn cache_len(&self) -> usize {
        self.cache.len()
    }

    fn next_epoch(&mut self) -> u64 {
        self.epochs += 1;
        self.epochs
    }

    /// The thread body: iterate until stopped, then drop every queue.
    pub(crate) fn run(mut self) {
        while !self.stopping {
            let moved = self.iterate();
            if moved > 0 || self.shared.idle == IdlePolicy::Busy {
                self.idle_streak = 0;
                continue;
            }
            self.idle_streak += 1;
            if self.idle_streak > SPIN_BEFORE_SLEEP && !self.queues.iter().any(|q| q.q.tx_pending())
            {
                // The sleep counts as idle time with the rest of the gap (`idle_since`).
                let steps = (self.idle_streak - SPIN_BEFORE_SLEEP).min(4);
                std::thread::sleep(Duration::from_micros(50 * u64::from(steps)));
            }
        }
        self.queues.clear();
    }

    /// One iteration: quiet point, crossing frames, a batch from each queue, transmit, poll.
    ///
    /// Time accounting: the busy part of an iteration runs from the moment its first frame
    /// shows up (the clock is read then, once) to the end of the iteration (read again);
    /// everything between two busy parts — empty polls, sleeps — is idle. So an iteration that
    /// finds nothing reads no clock, and one with frames reads it twice however many it moves.
    pub(crate) fn iterate(&mut self) -> usize {
        // The quiet point runs only when the control side says something changed: `seen_wake`
        // is updated first, so a change made while the quiet point runs bumps `wake` again
        // and is picked up by the next iteration.
        let wake = self.shared.wake.load(Ordering::Acquire);
        if wake != self.seen_wake {
            self.seen_wake = wake;
            self.quiet_point();
        }
        self.busy_since = None;
        let mut moved = self.drain_crossing();
        for qi in 0..self.queues.len() {
            moved += self.process_queue(qi);
        }
        for q in &mut self.queues {
            q.flush();
        }
        self.poll_queues();
        if let Some(t0) = self.busy_since.take() {
            let t1 = Instant::now();
            self.counters.busy_ns += t1.saturating_duration_since(t0).as_nanos() as u64;
            self.counters.busy_iterations += 1;
            self.idle_since = t1;
        }
        moved
    }

    /// The start of this iteration's busy part (read from the clock by the first caller),
    /// closing the idle stretch before it.
    fn busy_start(&mut self) -> Instant {
        busy_start(&mut self.busy_since, self.idle_since, &mut self.counters)
    }

    /// Pick up a new topology and run pending commands.
    fn quiet_point(&mut self) {
        self.stopping = self.shared.stop.load(Ordering::Acquire);
        self.refresh_topology();
        // `is_empty` is two loads; `try_recv` on an empty channel costs several times that.
        if self.cmds.is_empty() {
            return;
        }
        while let Ok(cmd) = self.cmds.try_recv() {
            match cmd {
                Cmd::AddQueue(nq, ack) => {
                    self.refresh_topology();
                    self.add_queue(nq);
                    let _ = ack.send(());
                }
                Cmd::DelQueues(qids, ack) => {
                    let mut out = Vec::new();
                    for qid in qids {
                        if let Some(&i) = self.qindex.get(&qid) {
                            out.push(self.queues[i].report());
                            self.remove_queue(i);
                        }
                    }
                    // The queues are dropped before the acknowledgment is sent.
                    let _ = ack.send(out);
                }
                Cmd::Report { clear, reply } => {
                    let _ = reply.send(self.report(clear));
                }
            }
        }
    }

    fn refresh_topology(&mut self) {
        // One atomic load when nothing changed (an `ArcSwap::load` takes a debt slot).
        if self.shared.topo_gen.load(Ordering::Acquire) == self.topo.gen {
            return;
        }
        let topo = self.shared.topo.load_full();
        let mut views = Vec::with_capacity(topo.bridges.len());
        for b in &topo.bridges {
            // Ports changed (flood sets): every bridge gets a new epoch, old entries miss.
            let epoch = self.next_epoch();
            let old = self.views.iter().position(|v| v.id == b.id);
            views.push(match old {
                Some(i) => BridgeView {
                    id: b.id,
                    handle: arc_swap::Cache::new(b.pipeline.clone()),
                    pipeline: self.views[i].pipeline.clone(),
                    epoch,
                    drops: self.views[i].drops,
                    dest: DestMap::default(),
                },
                None => BridgeView {
                    id: b.id,
                    handle: arc_swap::Cache::new(b.pipeline.clone()),
                    pipeline: b.pipeline.load_full(),
                    epoch,
                    drops: [0; N_DROPS],
                    dest: DestMap::default(),
                },
            });
        }
        self.views = views;
        self.topo = topo;
        // Queues of bridges that vanished cannot be served (the control thread removes ports
        // before their bridge, so this does not happen in practice).
        let mut i = 0;
        while i < self.queues.len() {
            let bridge = self.queues[i].bridge;
            match self.topo.bridges.iter().position(|b| b.id == bridge) {
                Some(v) => {
                    self.queues[i].view = v;
                    i += 1;
                }
                None => self.remove_queue(i),
            }
        }
        self.reindex();
    }

    fn add_queue(&mut self, nq: NewQueue) {
        let Some(view) = self.topo.bridges.iter().position(|b| b.id == nq.bridge) else {
            tracing::warn!(iface = %nq.iface, "queue for an unknown bridge dropped");
            return;
        };
        self.queues.push(OwnedQueue {
            qid: nq.qid,
            bridge: nq.bridge,
            view,
            ofport: nq.ofport,
            direct: nq.queue.stages_tx(),
            in_place: nq.queue.recv_in_place_supported(),
            lent: false,
            q: nq.queue,
            drops: [0; N_DROPS],
            tx: Vec::new(),
            tx_meta: Vec::new(),
            tx_n: 0,
        });
        self.reindex();
    }

    fn remove_queue(&mut self, i: usize) {
        let mut q = self.queues.swap_remove(i);
        q.flush();
        drop(q);
        self.reindex();
    }

    /// Rebuild `qindex` and every bridge's destination table.
    fn reindex(&mut self) {
        self.qindex = self
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.qid, i))
            .collect();
        let me = self.id;
        for (v, b) in self.views.iter_mut().zip(&self.topo.bridges) {
            v.dest =
                DestMap::from_iter(b.port_map.iter().filter(|(_, locs)| !locs.is_empty()).map(
                    |(&p, locs)| {
                        // A queue of our own if the port has one (no crossing), else a fixed one.
                        let loc = locs
                            .iter()
                            .find(|l| l.worker == me)
                            .unwrap_or(&locs[me % locs.len()]);
                        let d = if loc.worker == me {
                            self.qindex
                                .get(&loc.qid)
                                .map_or(Dest::Stale, |&i| Dest::Local(i))
                        } else {
                            Dest::Remote {
                                worker: loc.worker,
                                qid: loc.qid,
                            }
                        };
                        (p, d)
                    },
                ));
        }
    }

    fn report(&mut self, clear: bool) -> WorkerReport {
        if self.busy_since.is_none() {
            // Account the idle stretch so far (called between iterations: never mid-busy).
            let t = Instant::now();
            self.counters.idle_ns += t.saturating_duration_since(self.idle_since).as_nanos() as u64;
            self.idle_since = t;
        }
        let c = &self.counters;
        let stats = WorkerStats {
            worker: self.id,
            queues: self.queues.len(),
            packets: c.packets,
            cache_hits: c.hits,
            cache_misses: c.misses,
            busy_ns: c.busy_ns,
            idle_ns: c.idle_ns,
            busy_ns_per_packet: if c.packets == 0 {
                0.0
            } else {
                c.busy_ns as f64 / c.packets as f64
            },
            packets_per_batch: if c.busy_iterations == 0 {
                0.0
            } else {
                c.packets as f64 / c.busy_iterations as f64
            },
        };
        if clear {
            self.counters = Counters::default();
        }
        WorkerReport {
            stats,
            queues: self.queues.iter().map(OwnedQueue::report).collect(),
            bridge_drops: self.views.iter().map(|v| (v.id, v.drops)).collect(),
        }
    }

    /// Transmit frames other workers sent us for our queues.
    fn drain_crossing(&mut self) -> usize {
        let mut moved = 0;
        for from in 0..self.n_workers {
            // A worker never sends to itself (`Dest::Remote` names another worker): skipping
            // its own link saves a poll of a queue that is always empty.
            if from == self.id {
                continue;
            }
            let link: &Link = &self.shared.links[from][self.id];
            while let Some(CrossFrame {
                qid,
                bridge,
                mut data,
                tunnel,
            }) = link.frames.pop()
            {
                moved += 1;
                busy_start(&mut self.busy_since, self.idle_since, &mut self.counters);
                match self.qindex.get(&qid) {
                    Some(&i) if self.queues[i].direct && !self.queues[i].lent => {
                        self.queues[i].stage(&data, tunnel)
                    }
                    Some(&i) => {
                        // Swap the buffer into the staging slot: no copy; the slot's old
                        // buffer goes back to the sender.
                        std::mem::swap(self.queues[i].slot(tunnel), &mut data);
                    }
                    None => {
                        // The port went away while the frame was crossing.
                        if let Some(v) = self.views.iter_mut().find(|v| v.id == bridge) {
                            v.drops[stats::STALE_QUEUE] += 1;
                        }
                    }
                }
                let _ = link.pool.push(data);
            }
        }
        moved
    }

    /// Poll every queue; drop the ones whose interface is gone and report them.
    fn poll_queues(&mut self) {
        let mut i = 0;
        while i < self.queues.len() {
            match self.queues[i].q.poll() {
                Err(PortError::Gone(iface)) => {
                    let q = &self.queues[i];
                    tracing::warn!(worker = self.id, %iface, ofport = q.ofport, "queue gone");
                    let ev = GoneEvent {
                        qid: q.qid,
                        bridge: q.bridge,
                        ofport: q.ofport,
                    };
                    self.remove_queue(i);
                    let _ = self.shared.gone.send(ev);
                }
                Err(e) => {
                    // Other errors are counted by the queue (`io_errors`); keep serving.
                    tracing::debug!(worker = self.id, error = %e, "queue poll error");
                    i += 1;
                }
                Ok(()) => i += 1,
            }
        }
    }

    /// Receive one batch on queue `qi` and process it.
    fn process_queue(&mut self, qi: usize) -> usize {
        if self.queues[qi].in_place {
            // Nothing waiting: no lending. Frames waiting: the busy part starts now, before
            // their descriptors are read (see `PortQueue::rx_ready`).
            if !self.queues[qi].q.rx_ready() {
                return 0;
            }
            self.busy_start();
            // Lend the queue out of `queues` for the batch, so outputs can reach every other
            // queue meanwhile; outputs to this one wait in its `tx` (see `OwnedQueue::lent`).
            let mut q = std::mem::replace(&mut self.queues[qi].q, Box::new(Lent));
            self.queues[qi].lent = true;
            let n = q.recv_in_place(BATCH, &mut |bufs| self.process_batch(qi, bufs));
            let oq = &mut self.queues[qi];
            oq.q = q;
            oq.lent = false;
            return n;
        }
        let n = self.queues[qi].q.recv(&mut self.bufs);
        if n == 0 {
            return 0;
        }
        let mut bufs = std::mem::take(&mut self.bufs);
        self.process_batch(qi, &mut bufs[..n]);
        self.bufs = bufs;
        n
    }

    /// Process a batch received on queue `qi`: keys, cache (translation on a miss), actions.
    /// `bufs` are the worker's own buffers or frames lent in place by the queue.
    fn process_batch<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        qi: usize,
        bufs: &mut [PacketBuf<B>],
    ) {
        let n = bufs.len();
        if n == 0 {
            return;
        }
        let t = self.busy_start();
        let now_ms = t.saturating_duration_since(self.shared.clock).as_millis() as u64;
        let wall_ms = self.shared.wall_base_ms + now_ms;
        let vi = self.queues[qi].view;
        // Quiet point for this bridge, after receiving: a version published before these
        // frames arrived is the one that handles them.
        let newer = {
            let view = &mut self.views[vi];
            let cur = view.handle.load();
            (!Arc::ptr_eq(cur, &view.pipeline)).then(|| cur.clone())
        };
        if let Some(p) = newer {
            let epoch = self.next_epoch();
            let view = &mut self.views[vi];
            view.pipeline = p;
            view.epoch = epoch;
        }
        let in_port = self.queues[qi].ofport;
        let mut drops: Drops = [0; N_DROPS];
        let Worker {
            id,
            shared,
            topo,
            views,
            queues,
            cache,
            batch_hits,
            key,
            xout,
            recirc,
            counters,
            log,
            hint,
            hint_live,
            ..
        } = self;
        let bridge = &topo.bridges[vi];
        let view = &views[vi];

        // Touch every frame before parsing any. Frames received in place were just written by
        // another CPU (on veth, the sender's runs the copy into the UMEM), so a frame's first
        // read is a cache miss; these loads are independent of each other, so their misses
        // overlap instead of each one stalling `extract` in turn.
        let mut touched = 0u8;
        for b in bufs.iter() {
            touched ^= b.data().first().copied().unwrap_or(0);
        }
        std::hint::black_box(touched);

        let mut emit = Emit {
            bridge,
            dest: &view.dest,
            queues,
            links: &shared.links[*id],
            drops: &mut drops,
            now_ms,
            in_port,
            log,
        };
        for buf in bufs.iter_mut() {
            // The key is extracted right before its lookup into one reused buffer: a key is
            // 232 bytes, and a batch of keys extracted up front (7 KiB) was rewritten and
            // re-read from L2 every batch, the kernel's transmit work in between having pushed
            // it out of L1.
            // Metadata words start at zero but `in_port`; `extract` rewrites every packet word.
            key.w[..FIRST_PACKET_WORD].fill(0);
            key.set(Field::InPort, u128::from(in_port));
            set_tunnel_fields(key, buf.tunnel);
            let first_layout = match extract(buf.data(), key) {
                Ok(l) => l,
                Err(m) => {
                    emit.drops[stats::malformed(m)] += 1;
                    continue;
                }
            };
            let len = buf.len() as u64;
            recirc.clear();
            // Pass 0 is the packet as received; pass k > 0 runs `recirc[k - 1]`, on the frame as
            // the earlier passes left it (actions before a `ct` apply to the frame first).
            let mut pass = 0;
            let mut rkey;
            loop {
                let (key, layout, start, depth) = if pass == 0 {
                    (&*key, first_layout, 0, 0)
                } else {
                    let Some(&r) = recirc.get(pass - 1) else {
                        break;
                    };
                    // Parse again: earlier passes may have rewritten or re-tagged the frame.
                    rkey = FlowKey::zero();
                    rkey.set(Field::InPort, u128::from(in_port));
                    // The tunnel metadata as the frame carries it now (a `set_tunnel` of an
                    // earlier pass included), like the rest of the frame.
                    set_tunnel_fields(&mut rkey, buf.tunnel);
                    let Ok(l) = extract(buf.data(), &mut rkey) else {
                        emit.drops[stats::exec(crate::execute::ExecError::Truncated)] += 1;
                        break;
                    };
                    rkey.w[12..16].copy_from_slice(&r.ct_words);
                    (&rkey, l, r.table, r.depth)
                };
                pass += 1;
                let try_hint = if *hint_live { *hint } else { usize::MAX };
                let idx = match cache.lookup(view.id, view.epoch, key, try_hint) {
                    Lookup::Hit(e) => {
                        counters.hits += 1;
                        match batch_hits.iter_mut().find(|h| h.0 == e) {
                            Some(h) => {
                                h.1 += 1;
                                h.2 += len;
                            }
                            None => batch_hits.push((e, 1, len)),
                        }
                        e
                    }
                    Lookup::Miss => {
                        counters.misses += 1;
                        // An insert may empty a full cache: settle the batch's hits first.
                        flush_hits(cache, batch_hits, wall_ms);
                        let ctx = XlateCtx {
                            pipeline: &view.pipeline,
                            ports: &bridge.ports,
                            now_ms: wall_ms,
                            packet_len: len,
                        };
                        // Translation counts this packet on its rules itself.
                        xlate_from(&ctx, key, start, xout);
                        cache.insert(view.id, view.epoch, key, xout)
                    }
                };
                *hint_live = idx == *hint;
                *hint = idx;
                let entry = cache.get(idx);
                if let Some(r) = entry.drop_reason {
                    emit.drops[stats::xlate(r)] += 1;
                }
                // The commonest megaflow, one output and nothing else, skips the action
                // interpreter (whose per-packet setup reads three key fields); `continue` runs
                // any recirculation still pending from an earlier pass.
                if let [DpAction::Output(p)] = entry.actions[..] {
                    emit.port_out(p, buf.data(), buf.tunnel);
                    continue;
                }
                // Set when NAT refuses the packet: nothing after that `ct` may send it on.
                let mut refused = false;
                let res = execute(&entry.actions, buf, layout, key, &mut |eg, b| {
                    if refused {
                        return;
                    }
                    let Egress::Ct(req) = eg else {
                        return emit.output(eg, b.data(), b.tunnel);
                    };
                    let k = match ct::track(&shared.conntrack, &req, b.data_mut(), in_port, now_ms)
                    {
                        ct::Tracked::Go(Some((k, _))) => k,
                        ct::Tracked::Go(None) => return,
                        ct::Tracked::NatExhausted => {
                            refused = true;
                            emit.drops[stats::NAT_EXHAUSTED] += 1;
                            return;
                        }
                        ct::Tracked::Truncated => {
                            refused = true;
                            emit.drops[stats::exec(crate::execute::ExecError::Truncated)] += 1;
                            return;
                        }
                        ct::Tracked::Invalid => {
                            refused = true;
                            emit.drops[stats::CT_INVALID] += 1;
                            return;
                        }
                    };
                    let table = recirc_table(k.w[RECIRC_WORD] as u32);
                    match table {
                        Some(table)
                            if depth < MAX_RECIRC_DEPTH && recirc.len() < MAX_RECIRC_PENDING =>
                        {
                            let mut ct_words = [0; 4];
                            ct_words.copy_from_slice(&k.w[12..16]);
                            recirc.push(PendingRecirc {
                                ct_words,
                                table,
                                depth: depth + 1,
                            });
                        }
                        _ => emit.drops[stats::RECIRC_TOO_DEEP] += 1,
                    }
                });
                if refused {
                    // Recirculations queued before the refusal are of the same packet.
                    recirc.clear();
                    break;
                }
                if let Err(e) = res {
                    emit.drops[stats::exec(e)] += 1;
                    break;
                }
            }
        }
        flush_hits(cache, batch_hits, wall_ms);
        counters.packets += n as u64;
        stats::add(&mut queues[qi].drops, &drops);
        stats::add(&mut views[vi].drops, &drops);
    }
}

/// Stands in for a queue lent out of `Worker::queues` while its own batch is processed in
/// place (`Worker::process_queue`). Nothing reaches it: outputs to a lent queue are staged in
/// the worker's buffers, and the queue is back before anything else is called.
struct Lent;

impl PortQueue for Lent {
    fn recv(&mut self, _: &mut [PacketBuf]) -> usize {
        0
    }
    fn send(&mut self, _: &[&[u8]]) -> usize {
        0
    }
    fn poll(&mut self) -> Result<(), PortError> {
        Ok(())
    }
    fn tx_pending(&self) -> bool {
        false
    }
    fn rx_fd(&self) -> Option<i32> {
        None
    }
    fn counters(&self) -> crate::port::QueueCounters {
        crate::port::QueueCounters::default()
    }
}

/// See [`Worker::busy_start`] (a function of the fields, usable while others are borrowed).
fn busy_start(busy_since: &mut Option<Instant>, idle_since: Instant, c: &mut Counters) -> Instant {
    if let Some(t) = *busy_since {
        return t;
    }
    let t = Instant::now();
    c.idle_ns += t.saturating_duration_since(idle_since).as_nanos() as u64;
    *busy_since = Some(t);
    t
}

/// Put a received frame's tunnel metadata (set by a tunnel port's `recv`) into its key:
/// `tun_id`, `tun_src`, `tun_dst` are then part of the megaflow key like any header field.
#[inline]
fn set_tunnel_fields(key: &mut FlowKey, tunnel: Option<TunnelMeta>) {
    if let Some(t) = tunnel {
        key.set(Field::TunId, u128::from(t.id));
        key.set(Field::TunSrc, u128::from(t.src));
        key.set(Field::TunDst, u128::from(t.dst));
    }
}

/// Add the batch's cache hits to the counters of the rules behind each entry.
fn flush_hits(cache: &FlowCache, hits: &mut Vec<(usize, u64, u64)>, now_ms: u64) {
    for &(e, packets, bytes) in hits.iter() {
        for r in &cache.get(e).rules {
            r.add(packets, bytes, now_ms);
        }
    }
    hits.clear();
}

/// Output handling for one batch: where frames go.
struct Emit<'a> {
    bridge: &'a BridgeTopo,
    dest: &'a DestMap,
    queues: &'a mut [OwnedQueue],
    /// `links[to]` from this worker.
    links: &'a [Link],
    drops: &'a mut Drops,
    now_ms: u64,
    in_port: u32,
    log: &'a mut LogLimit,
}

impl Emit<'_> {
    #[inline]
    fn output(&mut self, eg: Egress, frame: &[u8], tunnel: Option<TunnelMeta>) {
        match eg {
            Egress::Port(p) => self.port_out(p, frame, tunnel),
            Egress::Normal => self.normal(frame, tunnel),
            // Run by the caller before it gets here.
            Egress::Ct(_) => {}
            Egress::Controller { reason, .. } => {
                self.drops[stats::CONTROLLER] += 1;
                // No controller exists yet: say so, at most once a second per worker.
                if self.now_ms.saturating_sub(self.log.last_ms) >= 1000 || self.log.last_ms == 0 {
                    tracing::info!(
                        bridge = %self.bridge.name,
                        in_port = self.in_port,
                        reason = reason.name(),
                        suppressed = self.log.suppressed,
                        "packet to controller dropped: no controller"
                    );
                    self.log.last_ms = self.now_ms.max(1);
                    self.log.suppressed = 0;
                } else {
                    self.log.suppressed += 1;
                }
            }
        }
    }

    /// Send `frame` (with its tunnel metadata, for an encapsulating port) out of OpenFlow
    /// port `p`.
    #[inline]
    fn port_out(&mut self, p: u32, frame: &[u8], tunnel: Option<TunnelMeta>) {
        let (worker, qid) = match self.dest.get(p) {
            Some(&Dest::Local(i)) => return self.queues[i].stage(frame, tunnel),
            Some(&Dest::Remote { worker, qid }) => (worker, qid),
            Some(Dest::Stale) => {
                self.drops[stats::STALE_QUEUE] += 1;
                return;
            }
            None => {
                self.drops[stats::UNKNOWN_PORT] += 1;
                return;
            }
        };
        let link = &self.links[worker];
        let mut data = link
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(FRAME_CAP));
        data.clear();
        data.extend_from_slice(frame);
        let cf = CrossFrame {
            qid,
            bridge: self.bridge.id,
            data,
            tunnel,
        };
        if link.frames.push(cf).is_err() {
            self.drops[stats::CROSS_QUEUE_FULL] += 1;
        }
    }

    /// The learning switch: learn the source, forward to the known destination or flood.
    ///
    /// On a tunnel port the source MAC is learned together with the remote VTEP it came from
    /// (`tun_src`), and unicast to a MAC learned that way carries that remote as `tun_dst`,
    /// which a `--remote flow` VXLAN port sends to.
    fn normal(&mut self, frame: &[u8], tunnel: Option<TunnelMeta>) {
        if frame.len() < 14 {
            self.drops[stats::exec(crate::execute::ExecError::Truncated)] += 1;
            return;
        }
        let mac = |o: usize| -> [u8; 6] {
            let mut m = [0; 6];
            m.copy_from_slice(&frame[o..o + 6]);
            m
        };
        let (dst, src) = (mac(0), mac(6));
        let tpid = u16::from_be_bytes([frame[12], frame[13]]);
        let vlan = if (tpid == 0x8100 || tpid == 0x88a8) && frame.len() >= 16 {
            u16::from_be_bytes([frame[14], frame[15]]) & 0x0fff
        } else {
            0
        };
        let bridge = self.bridge;
        if src[0] & 1 == 0 {
            let remote = tunnel.map_or(0, |t| t.src);
            bridge
                .fdb
                .learn_remote(vlan, &src, self.in_port, remote, self.now_ms);
        }
        if dst[0] & 1 == 0 {
            if let Some((p, remote)) = bridge.fdb.lookup_remote(vlan, &dst, self.now_ms) {
                if p == self.in_port {
                    self.drops[stats::NORMAL_SAME_PORT] += 1;
                    return;
                }
                if self.dest.contains_key(p) {
                    let tunnel = if remote == 0 {
                        tunnel
                    } else {
                        let t = tunnel.unwrap_or_default();
                        Some(TunnelMeta { dst: remote, ..t })
                    };
                    self.port_out(p, frame, tunnel);
                    return;
                }
            }
        }
        // Unknown unicast, broadcast, multicast: every port but the ingress one.
        for &p in &bridge.ports {
            if p != self.in_port {
                self.port_out(p, frame, tunnel);
            }
        }
    }
}
