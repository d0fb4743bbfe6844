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
//! * miss path: every packet is a new flow (the source address counts up), so each one is
//!   translated and inserted, evicting;
//! * normal: the hit path with `actions=NORMAL`, two hosts already learned (MAC lookup and
//!   learn check per packet at execute time);
//! * lab pipeline: the veth lab's three tables (`in_port=1 → goto 1`, `ip,nw_dst=/24 → goto
//!   2`, `ip → output:2`), 10 000 flows: one megaflow serves them all, as in `make bench-lab`;
//! * 10 000 megaflows: a higher-priority rule on `nw_src`+`tp_src` that no packet matches makes
//!   translation un-wildcard both fields, so every flow is its own megaflow and the cache holds
//!   10 000 entries (the cache's memory footprint, not the lab's case).

use control::flow::ast::{Action, FlowSpec, Match, OutputPort};
use control::flow::field::Field;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("datapath");
    g.throughput(Throughput::Elements(BATCH as u64));

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
        g.bench_with_input(BenchmarkId::new("hit output:2", flows), &flows, |b, _| {
            b.iter(|| r.batch(&frames, &mut next))
        });
        assert!(r.p2.discarded() > 0);
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
        let mut next = 0;
        for _ in 0..frames.len().div_ceil(BATCH) + 1 {
            r.batch(&frames, &mut next);
        }
        let want = if name.starts_with("lab") { 1 } else { 10_000 };
        assert_eq!(r.worker.cache_len(), want, "{name}: megaflows in the cache");
        g.bench_with_input(BenchmarkId::new(name, 10_000), &(), |b, _| {
            b.iter(|| r.batch(&frames, &mut next))
        });
        assert!(r.p2.discarded() > 0);
    }

    {
        let mut r = rig(Action::Output(OutputPort::Port(2)), true);
        let mut tmpl = frame(0, 1000);
        let mut src: u32 = 0x0b00_0000;
        // IPv4 source at 14 + 12.
        g.bench_function("miss output:2 (every packet a new flow)", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    src = src.wrapping_add(1);
                    tmpl[26..30].copy_from_slice(&src.to_be_bytes());
                    r.p1.inject(&tmpl);
                }
                r.worker.iterate()
            })
        });
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
        g.bench_function("hit normal (100 flows)", |b| {
            b.iter(|| r.batch(&frames, &mut next))
        });
    }

    {
        // The memory ports alone: inject, receive into worker-like buffers, send (discarded).
        // Subtract from the figures above for the datapath's own cost.
        let (mut port, peer) = memory::pair("m");
        peer.set_discard_tx(true);
        let q = &mut port.queues[0];
        let f = frame(0x0a00_0001, 1000);
        let mut bufs: Vec<PacketBuf> = (0..BATCH).map(|_| PacketBuf::from_frame(&f)).collect();
        g.bench_function("memory port only (inject+recv+send)", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    peer.inject(&f);
                }
                let n = q.recv(&mut bufs);
                let mut refs: [&[u8]; BATCH] = [&[]; BATCH];
                for (r, b) in refs.iter_mut().zip(&bufs[..n]) {
                    *r = b.data();
                }
                q.send(&refs[..n])
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
