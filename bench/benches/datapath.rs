//! One datapath worker iteration, per packet, with memory ports.
//!
//! Each criterion iteration injects a batch of 32 UDP/IPv4 frames on port 1 and runs one
//! worker iteration (`DetachedWorker::iterate`): receive the batch, extract keys, look the
//! flow cache up (translate on a miss), execute, stage and transmit on port 2 (whose peer
//! discards). Figures are per packet (throughput in elements) and include the memory port's
//! own work on both sides (a copy into a pooled buffer and a lock-free queue push to inject, a
//! pop and a copy into the worker's buffer to receive, a counter bump to transmit).
//!
//! * hit path: flows cycle over 1, 100 or 10 000 distinct 5-tuples (all fit the 16k-entry
//!   cache; 10 000 flows exercise its memory footprint);
//! * miss path: every packet is a new megaflow (the source address counts up under the
//!   10 000-megaflow rule set below), so each one is translated and inserted, evicting;
//! * normal: the hit path with `actions=NORMAL`, two hosts already learned (MAC lookup and
//!   learn check per packet at execute time);
//! * lab pipeline: the veth lab's three tables (`in_port=1 → goto 1`, `ip,nw_dst=/24 → goto
//!   2`, `ip → output:2`), 10 000 flows: one megaflow serves them all, as in `make bench-lab`;
//! * 10 000 megaflows: a higher-priority rule on `nw_src`+`tp_src` that no packet matches makes
//!   translation un-wildcard both fields, so every flow is its own megaflow and the cache holds
//!   10 000 entries (the cache's memory footprint, not the lab's case).

use control::flow::ast::{Action, FlowSpec, Match, OutputPort};
use control::flow::field::Field;
use criterion::{criterion_group, Criterion, Throughput};
use dataplane::daemon::Bridge;
use dataplane::datapath::{Datapath, DatapathConfig, DetachedWorker, IdlePolicy, BATCH};
use dataplane::execute::testutil::{eth, ipv4, udp};
use dataplane::execute::PacketBuf;
use dataplane::flowtable::{Pipeline, Rule};
use dataplane::port::memory::{self, MemoryPeer};

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

fn frame(src_ip: u32, sport: u16) -> Vec<u8> {
    eth(
        B,
        A,
        None,
        0x0800,
        &ipv4(
            src_ip.to_be_bytes(),
            [10, 0, 0, 2],
            17,
            64,
            &udp(sport, 80, &[0u8; 18]),
        ),
    )
}

struct Rig {
    _dp: Datapath,
    worker: DetachedWorker,
    p1: MemoryPeer,
    p2: MemoryPeer,
}

/// Bridge `br0` with one rule (`in_port=1` if `only_port1`, else match-all) and memory ports
/// p1, p2 (p2 discards what it transmits).
fn rig(action: Action, only_port1: bool) -> Rig {
    let mut m = Match::new();
    if only_port1 {
        m.set_exact(Field::InPort, 1);
    }
    rig_flows(&[FlowSpec::new(0, 100, m, vec![action])])
}

/// Bridge `br0` with the flows written in the flow language.
fn rig_text(flows: &[&str]) -> Rig {
    let specs: Vec<FlowSpec> = flows
        .iter()
        .map(|f| control::flow::parse_flow(f, control::flow::ParseMode::Add).unwrap())
        .collect();
    rig_flows(&specs)
}

/// Bridge `br0` with these flows and memory ports p1, p2 (p2 discards what it transmits).
fn rig_flows(flows: &[FlowSpec]) -> Rig {
    let (dp, mut workers) = Datapath::start_detached(DatapathConfig {
        workers: 1,
        idle: IdlePolicy::Busy,
        mac_aging_secs: 300,
        pmd_cpus: Vec::new(),
    });
    let mut e = Pipeline::default().edit();
    for f in flows {
        e.insert(Rule::from_spec(f, 0));
    }
    // The daemon's bridge type owns the published pipeline handle.
    let bridge = Bridge::new("br0");
    bridge.publish(e.finish());
    dp.add_bridge("br0", bridge.pipeline_handle()).unwrap();
    let (port1, p1) = memory::pair("p1");
    let (port2, p2) = memory::pair("p2");
    dp.add_port("br0", 1, port1).unwrap();
    dp.add_port("br0", 2, port2).unwrap();
    p2.set_discard_tx(true);
    let mut worker = workers.pop().unwrap();
    worker.iterate();
    Rig {
        _dp: dp,
        worker,
        p1,
        p2,
    }
}

impl Rig {
    /// Inject `frames[*next..]` (wrapping) as one batch and run one iteration.
    fn batch(&mut self, frames: &[Vec<u8>], next: &mut usize) {
        for _ in 0..BATCH {
            self.p1.inject(&frames[*next]);
            *next = (*next + 1) % frames.len();
        }
        let n = self.worker.iterate();
        debug_assert_eq!(n, BATCH);
    }
}

/// One benchmark case: its name and one batch of its work (32 frames).
type Case = (String, Box<dyn FnMut()>);

/// Every case, set up and warmed.
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();

    for flows in [1usize, 100, 10_000] {
        let mut r = rig(Action::Output(OutputPort::Port(2)), true);
        let frames: Vec<Vec<u8>> = (0..flows)
            .map(|i| frame(0x0a00_0001 + (i / 1000) as u32, 1000 + (i % 1000) as u16))
            .collect();
        let mut next = 0;
        // Warm the cache: every flow translated once.
        for _ in 0..flows.div_ceil(BATCH) + 1 {
            r.batch(&frames, &mut next);
        }
        assert!(r.p2.discarded() > 0);
        cases.push((
            format!("hit output:2/{flows}"),
            Box::new(move || r.batch(&frames, &mut next)),
        ));
    }

    // 10 000 flows with distinct source addresses (the megaflow case keys on them).
    let frames: Vec<Vec<u8>> = (0..10_000u32)
        .map(|i| frame(0x0a01_0000 + i, 1000 + (i % 1000) as u16))
        .collect();
    for (name, flows) in [
        (
            "lab pipeline (3 tables, 1 megaflow)",
            &[
                "table=0,priority=10,in_port=1 actions=goto_table:1",
                "table=1,priority=10,ip,nw_dst=10.0.0.0/24 actions=goto_table:2",
                "table=2,priority=10,ip actions=output:2",
            ][..],
        ),
        (
            "10000 megaflows",
            &[
                "priority=200,udp,nw_src=10.9.9.9,tp_src=9 actions=drop",
                "priority=100,in_port=1 actions=output:2",
            ][..],
        ),
    ] {
        let mut r = rig_text(flows);
        let frames = frames.clone();
        let mut next = 0;
        for _ in 0..frames.len().div_ceil(BATCH) + 1 {
            r.batch(&frames, &mut next);
        }
        let want = if name.starts_with("lab") { 1 } else { 10_000 };
        assert_eq!(r.worker.cache_len(), want, "{name}: megaflows in the cache");
        assert!(r.p2.discarded() > 0);
        cases.push((
            format!("{name}/10000"),
            Box::new(move || r.batch(&frames, &mut next)),
        ));
    }

    {
        // The megaflow rule set above: a new source address is a new megaflow, so every
        // packet is translated and inserted (the cache empties itself when full).
        let mut r = rig_text(&[
            "priority=200,udp,nw_src=10.9.9.9,tp_src=9 actions=drop",
            "priority=100,in_port=1 actions=output:2",
        ]);
        let mut tmpl = frame(0, 1000);
        let mut src: u32 = 0x0b00_0000;
        cases.push((
            "miss output:2 (every packet a new megaflow)".into(),
            Box::new(move || {
                for _ in 0..BATCH {
                    src = src.wrapping_add(1);
                    // IPv4 source at 14 + 12.
                    tmpl[26..30].copy_from_slice(&src.to_be_bytes());
                    r.p1.inject(&tmpl);
                }
                r.worker.iterate();
            }),
        ));
    }

    {
        let mut r = rig(Action::Output(OutputPort::Normal), false);
        let frames: Vec<Vec<u8>> = (0..100).map(|i| frame(0x0a00_0001, 1000 + i)).collect();
        // B speaks first from port 2, so `normal` unicasts A's frames to it.
        let back = eth(
            A,
            B,
            None,
            0x0800,
            &ipv4(
                [10, 0, 0, 2],
                [10, 0, 0, 1],
                17,
                64,
                &udp(80, 1000, &[0; 18]),
            ),
        );
        r.p2.inject(&back);
        r.worker.iterate();
        let mut next = 0;
        for _ in 0..5 {
            r.batch(&frames, &mut next);
        }
        cases.push((
            "hit normal (100 flows)".into(),
            Box::new(move || r.batch(&frames, &mut next)),
        ));
    }

    {
        // The memory ports alone: inject, receive into worker-like buffers, send (discarded).
        // Subtract from the figures above for the datapath's own cost.
        let (mut port, peer) = memory::pair("m");
        peer.set_discard_tx(true);
        let mut q = port.queues.remove(0);
        let f = frame(0x0a00_0001, 1000);
        let mut bufs: Vec<PacketBuf> = (0..BATCH).map(|_| PacketBuf::from_frame(&f)).collect();
        cases.push((
            "memory port only (inject+recv+send)".into(),
            Box::new(move || {
                for _ in 0..BATCH {
                    peer.inject(&f);
                }
                let n = q.recv(&mut bufs);
                let mut refs: [&[u8]; BATCH] = [&[]; BATCH];
                for (r, b) in refs.iter_mut().zip(&bufs[..n]) {
                    *r = b.data();
                }
                q.send(&refs[..n]);
            }),
        ));
    }
    cases
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("datapath");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, mut f) in cases() {
        g.bench_function(name, |b| b.iter(&mut f));
    }
    g.finish();
}

/// This thread's CPU time so far (ns): unlike wall time it does not grow while the thread
/// waits for a core another process holds.
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// `DATAPATH_CPU=ROUNDS[,BATCHES]`: instead of criterion, measure each case's CPU time per
/// packet over ROUNDS rounds of BATCHES batches (default 2000), cases interleaved round by
/// round, and print the minimum and the median over rounds. On a machine shared with other
/// work this is far steadier than wall time: the minimum is the round least disturbed.
fn cpu_mode(spec: &str, filter: Option<&str>) {
    let mut it = spec.split(',');
    let rounds: usize = it.next().and_then(|v| v.parse().ok()).unwrap_or(15);
    let batches: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let mut cases: Vec<Case> = cases()
        .into_iter()
        .filter(|(n, _)| filter.is_none_or(|f| n.contains(f)))
        .collect();
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in cases.iter_mut().enumerate() {
            let t0 = thread_cpu_ns();
            for _ in 0..batches {
                f();
            }
            let ns = thread_cpu_ns() - t0;
            per[i].push(ns as f64 / (batches * BATCH as u64) as f64);
        }
    }
    for ((name, _), v) in cases.iter().zip(&mut per) {
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<55} min {:7.1}  median {:7.1} ns/packet (CPU time, {rounds} rounds)",
            v[0],
            v[v.len() / 2]
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var("DATAPATH_CPU") {
        // The first free argument (not an option, not cargo's `--bench`) filters cases.
        let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
        cpu_mode(&spec, filter.as_deref());
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
