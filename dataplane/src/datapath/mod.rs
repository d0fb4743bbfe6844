//! The datapath: poll-mode workers that move frames between port queues through the flow
//! cache, the pipeline and the `normal` learning switch.
//!
//! # Threads and ownership
//!
//! [`Datapath::start`] spawns `workers` threads named `pmd-0`, `pmd-1`, … Each owns a set of
//! port queues outright (`Box<dyn PortQueue>` moved into the thread): it is the only thread that
//! receives or transmits on them, as the port contract requires (an AF_XDP socket is bound to
//! one queue and is not shared). A port's queues are spread over the workers by load (the
//! worker with the fewest queues gets the next one). Everything a worker touches per packet is
//! private to it: its receive buffers, keys, flow cache, transmit staging and counters. The only
//! shared writes per packet are the rule counters (`RuleStats::hit`, atomics by contract) and,
//! rarely, the MAC table (see [`fdb`]).
//!
//! Frames for a queue owned by another worker cross over a bounded lock-free
//! `crossbeam::queue::ArrayQueue` per (sending worker → owning worker) pair; the owner drains
//! its incoming queues at the top of each iteration and transmits them with its own frames. A
//! full crossing queue drops the frame (`cross_queue_full`), so a stalled worker never stalls
//! another. Frame buffers travel back on a second queue per pair and are reused, so the
//! crossing does not allocate once warm. When a port has several queues, a worker sends
//! through the one it owns if there is one, else through queue `worker id % queues`: a flow
//! arrives on one queue, is handled by one worker, so it always leaves by the same queue and
//! stays in order.
//!
//! # Control and quiet points
//!
//! The control thread (the daemon's handlers, calling the methods of [`Datapath`]) never
//! touches a worker's data. It talks to workers in two ways:
//!
//! * **An epoch-published topology.** Bridges, their port lists (the flood set and
//!   `XlateCtx::ports`), where each port's queues live, and each bridge's MAC table, in one
//!   immutable `Topology` behind an `ArcSwap` with a generation number. The control thread
//!   builds a new one under its own mutex and stores it; a worker compares the generation at
//!   its quiet point (one atomic load) and switches.
//! * **A command channel per worker** for what must move or be answered: handing a queue to its
//!   owner, taking queues back (`del_port`), and counter snapshots. Workers `try_recv` at their
//!   quiet point; the control thread waits for the answer, which comes within one iteration
//!   (plus at most one idle sleep of 200 µs under [`IdlePolicy::Sleep`]). `del_port` therefore
//!   returns only after the owners have dropped the queues, so the interface can be reopened
//!   at once.
//!
//! A worker's quiet point is between batches: before each iteration (commands, topology: a
//! generation number and the channel's emptiness, two plain atomic loads when nothing changed) and
//! after receiving a batch on a queue and before processing it (the bridge's pipeline,
//! `ArcSwap::load`, a pointer comparison). Loading the pipeline *after* receiving means that a
//! packet injected after `Bridge::publish` returned is always translated by the new version.
//! A worker never takes a lock and never waits for the control thread; the control thread
//! never blocks a worker.
//!
//! # The flow cache and its invalidation
//!
//! Per worker, megaflows: (bridge, key under the translation's mask); see [`cache`] for why
//! megaflows rather than exact match, and for the size and replacement. Hits are added up per
//! cache entry over a batch and then to the counters of every rule the translation hit, so
//! `dump-flows` counts equal packets and idle timeouts see traffic.
//! Entries carry the epoch of their bridge; a worker gives a bridge a new epoch when it sees a
//! new pipeline (`Arc` pointer differs from the one it holds) or a new topology (ports added or
//! removed change `flood`/`all` outputs), which invalidates all of that bridge's entries at once.
//!
//! `normal` is not resolved into the cache: the cached actions keep `DpAction::Normal`, and the
//! learning switch ([`fdb`]) decides per packet at execute time, on the frame as it is at that
//! point (after earlier rewrites). So MAC learning, moves and aging never need a cache
//! invalidation and are never stale.
//!
//! # Counters
//!
//! Each worker counts, in private arrays, drops by reason per ingress port and per bridge
//! (reasons: `Malformed::name`, `DropReason::name`, `ExecError::name`, and `controller`,
//! `unknown_port`, `cross_queue_full`, `normal_same_port`, `stale_queue`; see [`stats`]),
//! plus packets, cache hits and misses, and busy/idle time (from `Instant`: the busy part of
//! an iteration runs from its first frame to its end, two clock reads; an iteration that finds
//! nothing reads no clock and counts as idle with the rest of the gap). Port I/O counters are
//! kept by the queues themselves. Reading any of them sends a snapshot request to every worker and sums the
//! answers. Per-port counters disappear with the port; per-bridge drop counters stay until the
//! bridge is deleted; `drops()` adds the current ports' `tx_ring_full`, `tx_oversize`,
//! `rx_oversize`, `io_errors` and the VXLAN ports' `vxlan_*` reasons.
//!
//! # Idle policy
//!
//! [`IdlePolicy::Busy`] spins (production: a dedicated core per worker). [`IdlePolicy::Sleep`]
//! backs off after a few empty iterations with sleeps growing from 50 to 200 µs, never while a
//! queue reports `tx_pending`. (`poll(2)` on the queues' `rx_fd` would wake sooner, but needs
//! `unsafe` FFI, which this module does not have; the port module could offer a safe wrapper.)
//!
//! # Conntrack and recirculation
//!
//! One [`conntrack::table::Conntrack`] per datapath, created with it and shared by every
//! worker (it is sharded inside); the daemon's housekeeping expires entries
//! ([`Datapath::ct_expire`]). The generic executor does not know conntrack: it hands each
//! `ct` to the worker as `Egress::Ct`, and the worker (`ct.rs`) describes the frame *as it is
//! at that point* to conntrack (rewrites emitted before the `ct` are already applied), applies
//! the `exec` mark/label on commit, and, for `ct(table=T)`, queues a recirculation: the
//! packet's key with `ct_state/zone/mark/label` and the recirculation id set. After the pass
//! that queued it has run to its end (its later outputs included), the recirculated pass
//! parses the same frame buffer again, restores those fields, and goes through the same
//! cache + translation path ([`crate::xlate::xlate_from`] from table `T`). Its cache entries
//! are its own: translation puts the recirculation id in every megaflow mask. Chains are
//! bounded (depth 8, 16 pending per packet); beyond, the recirculation is dropped and counted
//! (`recirc_too_deep`).
//!
//! # Gone ports
//!
//! A queue whose `poll` reports `PortError::Gone` is dropped by its worker at once and reported
//! on a channel; the next control call ([`Datapath::take_gone_ports`], or any other) removes the
//! whole port from the bridge (its other queues, its MAC entries) before doing anything else, so
//! callers never observe a gone port as present once it has been reported.

pub mod affinity;
pub mod cache;
mod ct;
pub mod fdb;
pub mod stats;
#[cfg(test)]
mod tests;
mod worker;

use crate::flowtable::Pipeline;
use crate::port::{OpenedPort, PortInfo, PortQueue, QueueCounters};
use arc_swap::ArcSwap;
use crossbeam::channel::{self, Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use fdb::Fdb;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use stats::Drops;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;
use worker::Worker;

/// Frames received per queue per iteration: 64, two of the AF_XDP copy-mode transmit budgets
/// (the per-iteration costs, cache refills after each transmit wake-up among them, are shared
/// by more frames; measured in `bench/README.md`).
pub const BATCH: usize = 64;
/// Frames a crossing queue (one per pair of workers) holds.
pub const CROSS_QUEUE: usize = 1024;

/// What a worker does when it finds no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdlePolicy {
    /// Spin (lowest latency; one core per worker).
    #[default]
    Busy,
    /// Back off with short sleeps (50–200 µs) so a small machine stays usable.
    Sleep,
}

/// Datapath configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathConfig {
    /// Worker threads (at least 1; 0 is taken as 1).
    pub workers: usize,
    /// Idle behaviour.
    pub idle: IdlePolicy,
    /// MAC learning entries expire this long after the host was last seen (default 300).
    pub mac_aging_secs: u64,
    /// CPUs to pin workers to: worker `i` runs on `pmd_cpus[i % len]`; empty: not pinned
    /// (see [`affinity`]). Check them with [`affinity::check_cpus`] first.
    pub pmd_cpus: Vec<usize>,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            workers: 1,
            idle: IdlePolicy::Busy,
            mac_aging_secs: 300,
            pmd_cpus: Vec::new(),
        }
    }
}

/// Why a datapath operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatapathError {
    /// No bridge of that name.
    #[error("no bridge named {0}")]
    NoSuchBridge(String),
    /// A bridge of that name exists already.
    #[error("bridge {0} exists already")]
    BridgeExists(String),
    /// The bridge has no such OpenFlow port.
    #[error("bridge {bridge} has no port {ofport}")]
    NoSuchPort {
        /// Bridge.
        bridge: String,
        /// OpenFlow port number.
        ofport: u32,
    },
    /// The OpenFlow port number is taken on that bridge.
    #[error("port number {ofport} is in use on bridge {bridge}")]
    OfportInUse {
        /// Bridge.
        bridge: String,
        /// OpenFlow port number.
        ofport: u32,
    },
    /// The interface is already a port (of this or another bridge).
    #[error("interface {iface} is already a port of bridge {bridge}")]
    PortExists {
        /// Interface.
        iface: String,
        /// Bridge that has it.
        bridge: String,
    },
    /// Reserved OpenFlow port numbers (and 0) cannot be assigned.
    #[error("port number {0} is reserved")]
    ReservedOfport(u32),
    /// The opened port has no queues.
    #[error("port {0} has no queues")]
    NoQueues(String),
    /// A worker thread has exited (it panicked); the datapath is unusable.
    #[error("worker {0} is not running")]
    WorkerDown(usize),
}

/// One port as `ports()` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortStatus {
    /// OpenFlow port number.
    pub ofport: u32,
    /// How the port was opened.
    pub info: PortInfo,
    /// I/O counters of all its queues, summed.
    pub counters: QueueCounters,
    /// Drops of packets received on this port, by reason (nonzero only).
    pub drops: Vec<(String, u64)>,
    /// For each queue (in queue order), the worker that owns it.
    pub queue_workers: Vec<usize>,
}

/// One learned MAC address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdbEntry {
    /// VLAN id (0: untagged).
    pub vlan: u16,
    /// MAC address.
    pub mac: [u8; 6],
    /// Port it was learned on.
    pub ofport: u32,
    /// Seconds since it was last seen.
    pub age_secs: u64,
    /// Remote VTEP (IPv4) it was learned behind, on a tunnel port; 0 otherwise.
    pub remote: u32,
}

/// Counters of one worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkerStats {
    /// Worker index (thread `pmd-N`).
    pub worker: usize,
    /// Queues owned.
    pub queues: usize,
    /// Packets received and processed.
    pub packets: u64,
    /// Flow cache hits.
    pub cache_hits: u64,
    /// Flow cache misses (pipeline translations).
    pub cache_misses: u64,
    /// Time in iterations that moved frames (ns).
    pub busy_ns: u64,
    /// Time in empty iterations and idle sleeps (ns).
    pub idle_ns: u64,
    /// `busy_ns / packets` (0 without packets).
    pub busy_ns_per_packet: f64,
    /// Packets per iteration that moved any (how full the receive batches are).
    pub packets_per_batch: f64,
}

/// A bridge as workers see it (part of the published topology).
pub(crate) struct BridgeTopo {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) pipeline: Arc<ArcSwap<Pipeline>>,
    pub(crate) fdb: Arc<Fdb>,
    /// OpenFlow port numbers, ascending (flood set, `XlateCtx::ports`).
    pub(crate) ports: Vec<u32>,
    /// Where each port's queues live.
    pub(crate) port_map: FxHashMap<u32, Vec<QueueLoc>>,
}

/// Where a queue lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueLoc {
    pub(crate) worker: usize,
    pub(crate) qid: u64,
}

/// Everything workers need to know about bridges and ports, published whole.
#[derive(Default)]
pub(crate) struct Topology {
    pub(crate) gen: u64,
    pub(crate) bridges: Vec<BridgeTopo>,
}

/// A frame crossing from one worker to the owner of its output queue.
pub(crate) struct CrossFrame {
    pub(crate) qid: u64,
    /// Bridge id, to count the frame if the queue is gone on arrival.
    pub(crate) bridge: u32,
    pub(crate) data: Vec<u8>,
    /// Tunnel metadata for an encapsulating output port.
    pub(crate) tunnel: Option<crate::execute::TunnelMeta>,
}

/// The queues between an ordered pair of workers.
pub(crate) struct Link {
    pub(crate) frames: ArrayQueue<CrossFrame>,
    /// Emptied buffers going back to the sender.
    pub(crate) pool: ArrayQueue<Vec<u8>>,
}

/// State shared by the control thread and the workers.
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) topo: ArcSwap<Topology>,
    /// `topo`'s generation, stored after it: a worker compares it (when `wake` moved) and
    /// loads `topo` only when it moved.
    pub(crate) topo_gen: AtomicU64,
    /// Bumped after every change a worker must look at: a new topology, a command sent on
    /// its channel, `stop`. A worker loads only this per iteration, and looks at `topo_gen`,
    /// its command channel and `stop` only when it moved: one cache line that nothing writes
    /// while the configuration is unchanged, where the others were three or four lines read
    /// right after the kernel's transmit work had pushed them out of the worker's L1.
    pub(crate) wake: CachePadded<AtomicU64>,
    /// `links[from][to]`.
    pub(crate) links: Vec<Vec<Link>>,
    pub(crate) gone: Sender<GoneEvent>,
    /// Origin of the datapath clock (MAC ages).
    pub(crate) clock: Instant,
    /// Wall-clock time at `clock`, in ms since the Unix epoch: workers derive rule `last_used`
    /// times from their monotonic readings instead of reading the wall clock too (clock reads
    /// were a noticeable share of a worker's own time).
    pub(crate) wall_base_ms: u64,
    pub(crate) idle: IdlePolicy,
    /// The datapath's connection tracker, shared by every worker (it is sharded inside).
    /// Its clock is [`Shared::now_ms`].
    pub(crate) conntrack: conntrack::table::Conntrack,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }
}

/// A queue handed to a worker.
pub(crate) struct NewQueue {
    pub(crate) qid: u64,
    pub(crate) bridge: u32,
    pub(crate) ofport: u32,
    pub(crate) iface: String,
    pub(crate) queue: Box<dyn PortQueue>,
}

/// Counters of one queue.
#[derive(Clone)]
pub(crate) struct QueueReport {
    pub(crate) qid: u64,
    pub(crate) counters: QueueCounters,
    pub(crate) drops: Drops,
}

/// A worker's counter snapshot.
pub(crate) struct WorkerReport {
    pub(crate) stats: WorkerStats,
    pub(crate) queues: Vec<QueueReport>,
    pub(crate) bridge_drops: Vec<(u32, Drops)>,
}

/// Control → worker.
pub(crate) enum Cmd {
    AddQueue(NewQueue, Sender<()>),
    DelQueues(Vec<u64>, Sender<Vec<QueueReport>>),
    Report {
        clear: bool,
        reply: Sender<WorkerReport>,
    },
}

/// Worker → control: a queue reported `PortError::Gone` and was dropped.
pub(crate) struct GoneEvent {
    pub(crate) qid: u64,
    pub(crate) bridge: u32,
    pub(crate) ofport: u32,
}

struct PortCtl {
    info: PortInfo,
    queues: Vec<QueueLoc>,
}

struct BridgeCtl {
    id: u32,
    pipeline: Arc<ArcSwap<Pipeline>>,
    fdb: Arc<Fdb>,
    ports: BTreeMap<u32, PortCtl>,
}

/// Control-side state, under the control mutex (never touched by workers).
struct Ctl {
    next_bridge: u32,
    next_qid: u64,
    gen: u64,
    bridges: BTreeMap<String, BridgeCtl>,
    /// Queues per worker.
    load: Vec<usize>,
    gone: Vec<(String, u32, String)>,
}

/// The datapath. `Send + Sync`: share it in an `Arc`; methods serialize on an internal mutex.
pub struct Datapath {
    shared: Arc<Shared>,
    ctl: Mutex<Ctl>,
    cmds: Vec<Sender<Cmd>>,
    gone_rx: Receiver<GoneEvent>,
    threads: Vec<JoinHandle<()>>,
    /// Workers are driven by the caller ([`Datapath::start_detached`]): do not wait for them.
    detached: bool,
    aging_secs: u64,
}

/// A worker driven by the caller instead of a thread (benchmarks).
#[doc(hidden)]
pub struct DetachedWorker(Worker);

impl DetachedWorker {
    /// Run one worker iteration (commands, crossing frames, one batch per queue, transmit).
    /// Returns the number of frames moved.
    pub fn iterate(&mut self) -> usize {
        self.0.iterate()
    }

    /// Empty the flow cache (to measure the miss path).
    pub fn clear_cache(&mut self) {
        self.0.clear_cache()
    }

    /// Megaflows in the flow cache (benchmarks check what they measure).
    pub fn cache_len(&self) -> usize {
        self.0.cache_len()
    }
}

impl Datapath {
    /// Start `cfg.workers` worker threads (`pmd-0`, …) with no bridges.
    pub fn start(cfg: DatapathConfig) -> Datapath {
        let (mut dp, workers) = Self::build(&cfg, false);
        for w in workers {
            let name = format!("pmd-{}", w.id());
            let cpu = (!cfg.pmd_cpus.is_empty()).then(|| cfg.pmd_cpus[w.id() % cfg.pmd_cpus.len()]);
            let h = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        // Checked at start (`affinity::check_cpus`); a CPU taken offline since
                        // leaves the worker unpinned, which is worth a warning, not a stop.
                        match affinity::pin_current_thread(cpu) {
                            Ok(()) => tracing::info!(worker = w.id(), cpu, "worker pinned"),
                            Err(e) => tracing::warn!(worker = w.id(), "worker not pinned: {e}"),
                        }
                    }
                    w.run()
                })
                .expect("spawning a datapath worker thread");
            dp.threads.push(h);
        }
        dp
    }

    /// Like [`Datapath::start`] but the workers are returned to be driven by the caller
    /// ([`DetachedWorker::iterate`]). Port and bridge changes then do not wait for workers
    /// (they take effect at the next `iterate`); counter reads (`ports`, `drops`,
    /// `worker_stats`) do wait for an `iterate`, so make them from another thread.
    #[doc(hidden)]
    pub fn start_detached(cfg: DatapathConfig) -> (Datapath, Vec<DetachedWorker>) {
        let (dp, workers) = Self::build(&cfg, true);
        (dp, workers.into_iter().map(DetachedWorker).collect())
    }

    fn build(cfg: &DatapathConfig, detached: bool) -> (Datapath, Vec<Worker>) {
        let n = cfg.workers.max(1);
        let (gone_tx, gone_rx) = channel::unbounded();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            topo: ArcSwap::from_pointee(Topology::default()),
            topo_gen: AtomicU64::new(0),
            wake: CachePadded::new(AtomicU64::new(0)),
            links: (0..n)
                .map(|_| {
                    (0..n)
                        .map(|_| Link {
                            frames: ArrayQueue::new(CROSS_QUEUE),
                            pool: ArrayQueue::new(CROSS_QUEUE),
                        })
                        .collect()
                })
                .collect(),
            gone: gone_tx,
            clock: Instant::now(),
            wall_base_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            idle: cfg.idle,
            conntrack: conntrack::table::Conntrack::new(conntrack::config::Config::default()),
        });
        let mut cmds = Vec::new();
        let mut workers = Vec::new();
        for id in 0..n {
            let (tx, rx) = channel::unbounded();
            cmds.push(tx);
            workers.push(Worker::new(id, shared.clone(), rx));
        }
        let dp = Datapath {
            shared,
            ctl: Mutex::new(Ctl {
                next_bridge: 1,
                next_qid: 1,
                gen: 0,
                bridges: BTreeMap::new(),
                load: vec![0; n],
                gone: Vec::new(),
            }),
            cmds,
            gone_rx,
            threads: Vec::new(),
            detached,
            aging_secs: cfg.mac_aging_secs,
        };
        (dp, workers)
    }

    /// The connection tracker of this datapath (`dump-conntrack`, zone settings, ...). Pass
    /// [`Datapath::ct_now_ms`] as its clock.
    pub fn conntrack(&self) -> &conntrack::table::Conntrack {
        &self.shared.conntrack
    }

    /// The conntrack clock: milliseconds since the datapath started (monotonic).
    pub fn ct_now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    /// Housekeeping: remove expired connections. Returns how many were removed.
    pub fn ct_expire(&self) -> usize {
        self.shared.conntrack.expire(self.shared.now_ms())
    }

    /// Number of workers.
    pub fn n_workers(&self) -> usize {
        self.cmds.len()
    }

    /// Lock the control state and apply gone-port reports first.
    fn lock(&self) -> MutexGuard<'_, Ctl> {
        // A panic while holding the lock leaves consistent-enough state (every edit publishes
        // at its end); keep serving.
        let mut ctl = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        while let Ok(ev) = self.gone_rx.try_recv() {
            let Some((name, b)) = ctl.bridges.iter().find(|(_, b)| b.id == ev.bridge) else {
                continue;
            };
            let still = b
                .ports
                .get(&ev.ofport)
                .is_some_and(|p| p.queues.iter().any(|q| q.qid == ev.qid));
            if !still {
                continue;
            }
            let name = name.clone();
            if let Ok(info) = self.remove_port(&mut ctl, &name, ev.ofport) {
                tracing::warn!(bridge = %name, ofport = ev.ofport, iface = %info.iface,
                    "interface disappeared; port removed");
                ctl.gone.push((name, ev.ofport, info.iface));
            }
        }
        ctl
    }

    /// Build and publish the topology from the control state.
    fn publish(&self, ctl: &mut Ctl) {
        ctl.gen += 1;
        let topo = Topology {
            gen: ctl.gen,
            bridges: ctl
                .bridges
                .iter()
                .map(|(name, b)| BridgeTopo {
                    id: b.id,
                    name: name.clone(),
                    pipeline: b.pipeline.clone(),
                    fdb: b.fdb.clone(),
                    ports: b.ports.keys().copied().collect(),
                    port_map: b
                        .ports
                        .iter()
                        .map(|(&n, p)| (n, p.queues.clone()))
                        .collect(),
                })
                .collect(),
        };
        self.shared.topo.store(Arc::new(topo));
        self.shared.topo_gen.store(ctl.gen, Ordering::Release);
        self.shared.wake.fetch_add(1, Ordering::Release);
    }

    /// Send `cmd` to worker `w`.
    fn send(&self, w: usize, cmd: Cmd) -> Result<(), DatapathError> {
        self.cmds[w]
            .send(cmd)
            .map_err(|_| DatapathError::WorkerDown(w))?;
        // After the send: a worker that sees the new value finds the command queued.
        self.shared.wake.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Wait for a worker's answer (not in detached mode).
    fn wait<T>(&self, w: usize, rx: Receiver<T>) -> Result<Option<T>, DatapathError> {
        if self.detached {
            return Ok(None);
        }
        rx.recv()
            .map(Some)
            .map_err(|_| DatapathError::WorkerDown(w))
    }

    /// Add a bridge whose pipeline workers read through `pipeline`.
    pub fn add_bridge(
        &self,
        name: &str,
        pipeline: Arc<ArcSwap<Pipeline>>,
    ) -> Result<(), DatapathError> {
        let mut ctl = self.lock();
        if ctl.bridges.contains_key(name) {
            return Err(DatapathError::BridgeExists(name.to_string()));
        }
        let id = ctl.next_bridge;
        ctl.next_bridge += 1;
        ctl.bridges.insert(
            name.to_string(),
            BridgeCtl {
                id,
                pipeline,
                fdb: Arc::new(Fdb::new(self.aging_secs)),
                ports: BTreeMap::new(),
            },
        );
        self.publish(&mut ctl);
        Ok(())
    }

    /// Delete a bridge, removing its ports first (their queues are released when this returns).
    pub fn del_bridge(&self, name: &str) -> Result<(), DatapathError> {
        let mut ctl = self.lock();
        let ports: Vec<u32> = ctl
            .bridges
            .get(name)
            .ok_or_else(|| DatapathError::NoSuchBridge(name.to_string()))?
            .ports
            .keys()
            .copied()
            .collect();
        for p in ports {
            self.remove_port(&mut ctl, name, p)?;
        }
        ctl.bridges.remove(name);
        self.publish(&mut ctl);
        Ok(())
    }

    /// Add `port` to `bridge` as OpenFlow port `ofport`. Its queues go to the least loaded
    /// workers; the call returns once every queue is in its worker's hands.
    pub fn add_port(
        &self,
        bridge: &str,
        ofport: u32,
        port: OpenedPort,
    ) -> Result<(), DatapathError> {
        if ofport == 0 || ofport >= crate::xlate::OFPP_MAX {
            return Err(DatapathError::ReservedOfport(ofport));
        }
        let mut ctl = self.lock();
        if let Some((b, _)) = ctl
            .bridges
            .iter()
            .find(|(_, b)| b.ports.values().any(|p| p.info.iface == port.info.iface))
        {
            return Err(DatapathError::PortExists {
                iface: port.info.iface.clone(),
                bridge: b.clone(),
            });
        }
        let b = ctl
            .bridges
            .get(bridge)
            .ok_or_else(|| DatapathError::NoSuchBridge(bridge.to_string()))?;
        if b.ports.contains_key(&ofport) {
            return Err(DatapathError::OfportInUse {
                bridge: bridge.to_string(),
                ofport,
            });
        }
        if port.queues.is_empty() {
            return Err(DatapathError::NoQueues(port.info.iface));
        }
        let bridge_id = b.id;
        let mut locs = Vec::new();
        let mut acks = Vec::new();
        for queue in port.queues {
            // Least loaded, lowest index on ties.
            let w = (0..ctl.load.len())
                .min_by_key(|&w| ctl.load[w])
                .unwrap_or(0);
            ctl.load[w] += 1;
            let qid = ctl.next_qid;
            ctl.next_qid += 1;
            let (tx, rx) = channel::bounded(1);
            let nq = NewQueue {
                qid,
                bridge: bridge_id,
                ofport,
                iface: port.info.iface.clone(),
                queue,
            };
            self.send(w, Cmd::AddQueue(nq, tx))?;
            locs.push(QueueLoc { worker: w, qid });
            acks.push((w, rx));
        }
        if let Some(b) = ctl.bridges.get_mut(bridge) {
            b.ports.insert(
                ofport,
                PortCtl {
                    info: port.info,
                    queues: locs,
                },
            );
        }
        self.publish(&mut ctl);
        for (w, rx) in acks {
            self.wait(w, rx)?;
        }
        Ok(())
    }

    /// Remove a port: unpublish it, take its queues back from their workers (waiting until
    /// each has dropped them), forget its MAC entries.
    fn remove_port(
        &self,
        ctl: &mut Ctl,
        bridge: &str,
        ofport: u32,
    ) -> Result<PortInfo, DatapathError> {
        let b = ctl
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| DatapathError::NoSuchBridge(bridge.to_string()))?;
        let p = b.ports.remove(&ofport).ok_or(DatapathError::NoSuchPort {
            bridge: bridge.to_string(),
            ofport,
        })?;
        let fdb = b.fdb.clone();
        self.publish(ctl);
        let mut by_worker: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for q in &p.queues {
            by_worker.entry(q.worker).or_default().push(q.qid);
            ctl.load[q.worker] = ctl.load[q.worker].saturating_sub(1);
        }
        let mut acks = Vec::new();
        for (w, qids) in by_worker {
            let (tx, rx) = channel::bounded(1);
            self.send(w, Cmd::DelQueues(qids, tx))?;
            acks.push((w, rx));
        }
        for (w, rx) in acks {
            self.wait(w, rx)?;
        }
        fdb.flush_port(ofport, self.shared.now_ms());
        Ok(p.info)
    }

    /// Remove OpenFlow port `ofport` from `bridge`. Returns once every worker has dropped the
    /// port's queues (the interface can be reopened at once).
    pub fn del_port(&self, bridge: &str, ofport: u32) -> Result<PortInfo, DatapathError> {
        let mut ctl = self.lock();
        self.remove_port(&mut ctl, bridge, ofport)
    }

    /// Counter snapshots of every worker.
    fn reports(&self, clear: bool) -> Result<Vec<WorkerReport>, DatapathError> {
        let mut rxs = Vec::new();
        for w in 0..self.cmds.len() {
            let (tx, rx) = channel::bounded(1);
            self.send(w, Cmd::Report { clear, reply: tx })?;
            rxs.push((w, rx));
        }
        // Always waits, also in detached mode: read counters from another thread than the
        // one driving the workers.
        let mut out = Vec::new();
        for (w, rx) in rxs {
            out.push(rx.recv().map_err(|_| DatapathError::WorkerDown(w))?);
        }
        Ok(out)
    }

    /// The ports of `bridge` with their counters, by OpenFlow port number.
    pub fn ports(&self, bridge: &str) -> Result<Vec<PortStatus>, DatapathError> {
        let ctl = self.lock();
        let b = ctl
            .bridges
            .get(bridge)
            .ok_or_else(|| DatapathError::NoSuchBridge(bridge.to_string()))?;
        let reports = self.reports(false)?;
        let by_qid: FxHashMap<u64, &QueueReport> = reports
            .iter()
            .flat_map(|r| r.queues.iter())
            .map(|q| (q.qid, q))
            .collect();
        Ok(b.ports
            .iter()
            .map(|(&ofport, p)| {
                let mut counters = QueueCounters::default();
                let mut drops = [0; stats::N_DROPS];
                for q in p.queues.iter().filter_map(|l| by_qid.get(&l.qid)) {
                    add_counters(&mut counters, &q.counters);
                    stats::add(&mut drops, &q.drops);
                }
                PortStatus {
                    ofport,
                    info: p.info.clone(),
                    counters,
                    drops: stats::named(&drops),
                    queue_workers: p.queues.iter().map(|l| l.worker).collect(),
                }
            })
            .collect())
    }

    /// The live MAC learning entries of `bridge`, by VLAN then MAC.
    pub fn fdb(&self, bridge: &str) -> Result<Vec<FdbEntry>, DatapathError> {
        let ctl = self.lock();
        let b = ctl
            .bridges
            .get(bridge)
            .ok_or_else(|| DatapathError::NoSuchBridge(bridge.to_string()))?;
        let now = self.shared.now_ms();
        Ok(b.fdb
            .entries(now)
            .into_iter()
            .map(|e| FdbEntry {
                vlan: e.vlan,
                mac: e.mac,
                ofport: e.port,
                age_secs: now.saturating_sub(e.seen_ms) / 1000,
                remote: e.remote,
            })
            .collect())
    }

    /// Drops on `bridge` by reason (nonzero only): what the workers counted since the bridge
    /// was added, plus the transmit/receive drops of its current ports' queues.
    pub fn drops(&self, bridge: &str) -> Result<Vec<(String, u64)>, DatapathError> {
        let ctl = self.lock();
        let b = ctl
            .bridges
            .get(bridge)
            .ok_or_else(|| DatapathError::NoSuchBridge(bridge.to_string()))?;
        let reports = self.reports(false)?;
        let mut drops = [0; stats::N_DROPS];
        for r in &reports {
            for (id, d) in &r.bridge_drops {
                if *id == b.id {
                    stats::add(&mut drops, d);
                }
            }
        }
        let qids: std::collections::HashSet<u64> = b
            .ports
            .values()
            .flat_map(|p| p.queues.iter().map(|l| l.qid))
            .collect();
        let mut io = QueueCounters::default();
        for q in reports.iter().flat_map(|r| r.queues.iter()) {
            if qids.contains(&q.qid) {
                add_counters(&mut io, &q.counters);
            }
        }
        let mut out = stats::named(&drops);
        for (name, n) in [
            ("tx_ring_full", io.tx_ring_full),
            ("tx_oversize", io.tx_oversize),
            ("rx_oversize", io.rx_oversize),
            ("io_errors", io.io_errors),
            ("vxlan_bad_header", io.vxlan_bad_header),
            ("vxlan_unknown_vni", io.vxlan_unknown_vni),
            ("vxlan_no_remote", io.vxlan_no_remote),
        ] {
            if n != 0 {
                out.push((name.to_string(), n));
            }
        }
        Ok(out)
    }

    /// Per-worker counters, by worker index; `clear` resets them after reading.
    pub fn worker_stats(&self, clear: bool) -> Vec<WorkerStats> {
        let _ctl = self.lock();
        let mut v: Vec<WorkerStats> = self
            .reports(clear)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.stats)
            .collect();
        v.sort_by_key(|s| s.worker);
        v
    }

    /// Ports whose interface disappeared since the last call, as (bridge, ofport, iface).
    /// They have already been removed from their bridges.
    pub fn take_gone_ports(&self) -> Vec<(String, u32, String)> {
        std::mem::take(&mut self.lock().gone)
    }

    /// Stop the workers and drop every queue.
    pub fn shutdown(self) {
        drop(self)
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.fetch_add(1, Ordering::Release);
        for t in self.threads.drain(..) {
            // A worker that panicked has nothing left to release.
            let _ = t.join();
        }
    }
}

fn add_counters(a: &mut QueueCounters, b: &QueueCounters) {
    a.rx_packets += b.rx_packets;
    a.rx_bytes += b.rx_bytes;
    a.tx_packets += b.tx_packets;
    a.tx_bytes += b.tx_bytes;
    a.rx_oversize += b.rx_oversize;
    a.tx_ring_full += b.tx_ring_full;
    a.tx_oversize += b.tx_oversize;
    a.io_errors += b.io_errors;
    a.vxlan_bad_header += b.vxlan_bad_header;
    a.vxlan_unknown_vni += b.vxlan_unknown_vni;
    a.vxlan_no_remote += b.vxlan_no_remote;
    a.xsk_fill_ring_empty += b.xsk_fill_ring_empty;
    a.xsk_rx_ring_full += b.xsk_rx_ring_full;
    a.xsk_rx_dropped += b.xsk_rx_dropped;
    a.xsk_invalid_descs += b.xsk_invalid_descs;
}
