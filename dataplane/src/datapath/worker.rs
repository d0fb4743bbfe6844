//! One poll-mode worker: its queues, its cache, its loop.

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
use crate::packet::{extract, Layout};
use crate::port::{PortError, PortQueue};
use crate::xlate::{recirc_table, xlate_from, XlateCtx, XlateOutput};
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
    /// Drops of packets received here.
    drops: Drops,
    /// Frames waiting to be sent (`tx[..tx_n]`); buffers are kept for reuse.
    tx: Vec<Vec<u8>>,
    /// Tunnel metadata of each staged frame (`tx_meta[..tx_n]`), for encapsulating ports.
    tx_meta: [Option<TunnelMeta>; BATCH],
    tx_n: usize,
}

impl OwnedQueue {
    /// Hand the staged frames to the queue.
    fn flush(&mut self) {
        if self.tx_n == 0 {
            return;
        }
        let mut refs: [&[u8]; BATCH] = [&[]; BATCH];
        for (r, b) in refs.iter_mut().zip(&self.tx[..self.tx_n]) {
            *r = b;
        }
        // What the queue does not accept it counts itself (`tx_ring_full`, `tx_oversize`).
        self.q
            .send_tunneled(&refs[..self.tx_n], &self.tx_meta[..self.tx_n]);
        self.tx_n = 0;
    }

    /// The next staging buffer (flushing first if the batch is full), for a frame with
    /// `tunnel` metadata.
    fn slot(&mut self, tunnel: Option<TunnelMeta>) -> &mut Vec<u8> {
        if self.tx_n == BATCH {
            self.flush();
        }
        if self.tx.len() == self.tx_n {
            self.tx.push(Vec::with_capacity(FRAME_CAP));
        }
        self.tx_meta[self.tx_n] = tunnel;
        self.tx_n += 1;
        &mut self.tx[self.tx_n - 1]
    }

    fn stage(&mut self, frame: &[u8], tunnel: Option<TunnelMeta>) {
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
    dest: FxHashMap<u32, Dest>,
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
    keys: Vec<FlowKey>,
    layouts: Vec<Option<Layout>>,
    xout: XlateOutput,
    /// Recirculations of the packet being processed (see [`PendingRecirc`]).
    recirc: Vec<PendingRecirc>,
    counters: Counters,
    log: LogLimit,
    idle_streak: u32,
    /// The clock reading that ended the previous iteration, which starts the next one: one
    /// clock read per iteration. `None` after a sleep (the sleep is accounted on its own).
    clock_mark: Option<Instant>,
}

impl Worker {
    pub(crate) fn new(id: usize, shared: Arc<Shared>, cmds: Receiver<Cmd>) -> Worker {
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
            keys: vec![FlowKey::zero(); BATCH],
            layouts: vec![None; BATCH],
            xout: XlateOutput::new(),
            recirc: Vec::with_capacity(MAX_RECIRC_PENDING),
            counters: Counters::default(),
            log: LogLimit::default(),
            clock_mark: None,
            idle_streak: 0,
        }
    }

    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn clear_cache(&mut self) {
        self.cache.clear();
    }

    fn next_epoch(&mut self) -> u64 {
        self.epochs += 1;
        self.epochs
    }

    /// The thread body: iterate until stopped, then drop every queue.
    pub(crate) fn run(mut self) {
        while !self.shared.stop.load(Ordering::Acquire) {
            let moved = self.iterate();
            if moved > 0 || self.shared.idle == IdlePolicy::Busy {
                self.idle_streak = 0;
                continue;
            }
            self.idle_streak += 1;
            if self.idle_streak > SPIN_BEFORE_SLEEP && !self.queues.iter().any(|q| q.q.tx_pending())
            {
                let steps = (self.idle_streak - SPIN_BEFORE_SLEEP).min(4);
                let t = Instant::now();
                std::thread::sleep(Duration::from_micros(50 * u64::from(steps)));
                self.counters.idle_ns += t.elapsed().as_nanos() as u64;
                self.clock_mark = None;
            }
        }
        self.queues.clear();
    }

    /// One iteration: quiet point, crossing frames, a batch from each queue, transmit, poll.
    pub(crate) fn iterate(&mut self) -> usize {
        let t0 = self.clock_mark.take().unwrap_or_else(Instant::now);
        self.quiet_point();
        let now_ms = t0.saturating_duration_since(self.shared.clock).as_millis() as u64;
        let wall_ms = self.shared.wall_base_ms + now_ms;
        let mut moved = self.drain_crossing();
        for qi in 0..self.queues.len() {
            moved += self.process_queue(qi, now_ms, wall_ms);
        }
        for q in &mut self.queues {
            q.flush();
        }
        self.poll_queues();
        let t1 = Instant::now();
        self.clock_mark = Some(t1);
        let ns = t1.saturating_duration_since(t0).as_nanos() as u64;
        if moved > 0 {
            self.counters.busy_ns += ns;
            self.counters.busy_iterations += 1;
        } else {
            self.counters.idle_ns += ns;
        }
        moved
    }

    /// Pick up a new topology and run pending commands.
    fn quiet_point(&mut self) {
        self.refresh_topology();
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
        if self.shared.topo.load().gen == self.topo.gen {
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
                    dest: FxHashMap::default(),
                },
                None => BridgeView {
                    id: b.id,
                    handle: arc_swap::Cache::new(b.pipeline.clone()),
                    pipeline: b.pipeline.load_full(),
                    epoch,
                    drops: [0; N_DROPS],
                    dest: FxHashMap::default(),
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
            q: nq.queue,
            drops: [0; N_DROPS],
            tx: Vec::new(),
            tx_meta: [None; BATCH],
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
            v.dest = b
                .port_map
                .iter()
                .filter(|(_, locs)| !locs.is_empty())
                .map(|(&p, locs)| {
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
                })
                .collect();
        }
    }

    fn report(&mut self, clear: bool) -> WorkerReport {
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
        for from in 0..self.shared.links.len() {
            let link: &Link = &self.shared.links[from][self.id];
            while let Some(CrossFrame {
                qid,
                bridge,
                mut data,
                tunnel,
            }) = link.frames.pop()
            {
                moved += 1;
                match self.qindex.get(&qid) {
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
    fn process_queue(&mut self, qi: usize, now_ms: u64, wall_ms: u64) -> usize {
        let n = self.queues[qi].q.recv(&mut self.bufs);
        if n == 0 {
            return 0;
        }
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
            bufs,
            keys,
            layouts,
            xout,
            recirc,
            counters,
            log,
            ..
        } = self;
        let bridge = &topo.bridges[vi];
        let view = &views[vi];

        // Keys for the whole batch first (the extractor's code stays hot).
        for i in 0..n {
            let key = &mut keys[i];
            *key = FlowKey::zero();
            key.set(Field::InPort, u128::from(in_port));
            set_tunnel_fields(key, bufs[i].tunnel);
            layouts[i] = match extract(bufs[i].data(), key) {
                Ok(l) => Some(l),
                Err(m) => {
                    drops[stats::malformed(m)] += 1;
                    None
                }
            };
        }

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
        for i in 0..n {
            let Some(first_layout) = layouts[i] else {
                continue;
            };
            let len = bufs[i].len() as u64;
            recirc.clear();
            // Pass 0 is the packet as received; pass k > 0 runs `recirc[k - 1]`, on the frame as
            // the earlier passes left it (actions before a `ct` apply to the frame first).
            let mut pass = 0;
            let mut rkey;
            loop {
                let (key, layout, start, depth) = if pass == 0 {
                    (&keys[i], first_layout, 0, 0)
                } else {
                    let Some(&r) = recirc.get(pass - 1) else {
                        break;
                    };
                    // Parse again: earlier passes may have rewritten or re-tagged the frame.
                    rkey = FlowKey::zero();
                    rkey.set(Field::InPort, u128::from(in_port));
                    // The tunnel metadata as the frame carries it now (a `set_tunnel` of an
                    // earlier pass included), like the rest of the frame.
                    set_tunnel_fields(&mut rkey, bufs[i].tunnel);
                    let Ok(l) = extract(bufs[i].data(), &mut rkey) else {
                        emit.drops[stats::exec(crate::execute::ExecError::Truncated)] += 1;
                        break;
                    };
                    rkey.w[12..16].copy_from_slice(&r.ct_words);
                    (&rkey, l, r.table, r.depth)
                };
                pass += 1;
                let idx = match cache.lookup(view.id, view.epoch, key) {
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
                let entry = cache.get(idx);
                if let Some(r) = entry.drop_reason {
                    emit.drops[stats::xlate(r)] += 1;
                }
                // Set when NAT refuses the packet: nothing after that `ct` may send it on.
                let mut refused = false;
                let res = execute(&entry.actions, &mut bufs[i], layout, key, &mut |eg, b| {
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
        n
    }
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
    dest: &'a FxHashMap<u32, Dest>,
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
        let (worker, qid) = match self.dest.get(&p) {
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
                if self.dest.contains_key(&p) {
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
