//! Datapath tests with memory ports (no root needed).

use super::*;
use crate::execute::testutil::{eth, ipv4, udp};
use crate::flowtable::{Pipeline, Rule};
use crate::port::memory::{self, MemoryPeer};
use control::flow::ast::{Action, ControllerAction, FlowSpec, Match, OutputPort};
use control::flow::field::Field;
use std::time::Duration;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
const C: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc];
const BCAST: [u8; 6] = [0xff; 6];

fn frame(src: [u8; 6], dst: [u8; 6], sport: u16) -> Vec<u8> {
    eth(
        dst,
        src,
        None,
        0x0800,
        &ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            64,
            &udp(sport, 80, b"hello"),
        ),
    )
}

fn out(p: u32) -> Action {
    Action::Output(OutputPort::Port(p))
}

fn spec(m: &[(Field, u128)], actions: Vec<Action>) -> FlowSpec {
    FlowSpec::new(0, 100, m.iter().copied().collect::<Match>(), actions)
}

fn pipeline(specs: &[FlowSpec]) -> Pipeline {
    let mut e = Pipeline::default().edit();
    for s in specs {
        e.insert(Rule::from_spec(s, 0));
    }
    e.finish()
}

/// A datapath with one bridge `br0` and memory ports `p1..=pN` as ofports 1..=N.
struct Rig {
    dp: Datapath,
    pipe: Arc<ArcSwap<Pipeline>>,
    peers: Vec<MemoryPeer>,
}

impl Rig {
    fn new(workers: usize, ports: u32, aging: u64, specs: &[FlowSpec]) -> Rig {
        let dp = Datapath::start(DatapathConfig {
            workers,
            idle: IdlePolicy::Sleep,
            mac_aging_secs: aging,
            pmd_cpus: Vec::new(),
        });
        let pipe = Arc::new(ArcSwap::from_pointee(pipeline(specs)));
        dp.add_bridge("br0", pipe.clone()).unwrap();
        let mut peers = Vec::new();
        for n in 1..=ports {
            let (port, peer) = memory::pair(&format!("p{n}"));
            dp.add_port("br0", n, port).unwrap();
            peers.push(peer);
        }
        Rig { dp, pipe, peers }
    }

    fn peer(&self, ofport: u32) -> &MemoryPeer {
        &self.peers[ofport as usize - 1]
    }

    /// Inject on `ofport` and wait until the datapath has processed it.
    fn send(&self, ofport: u32, f: &[u8]) {
        let before = self.processed();
        assert!(self.peer(ofport).inject(f));
        wait_until(|| self.processed() > before);
    }

    fn processed(&self) -> u64 {
        self.dp.worker_stats(false).iter().map(|s| s.packets).sum()
    }

    /// Frames each port transmitted since the last call (index = ofport - 1).
    fn taken(&self) -> Vec<usize> {
        self.peers.iter().map(|p| p.take().len()).collect()
    }

    fn drop_count(&self, reason: &str) -> u64 {
        self.dp
            .drops("br0")
            .unwrap()
            .iter()
            .find(|(n, _)| n == reason)
            .map_or(0, |(_, c)| *c)
    }

    fn set_flows(&self, specs: &[FlowSpec]) {
        // As `mod-flows` does: a new version derived from the current one.
        let cur = self.pipe.load_full();
        let mut e = cur.edit();
        for s in specs {
            if e.modify(s, Some(0), true) == 0 {
                e.insert(Rule::from_spec(s, 0));
            }
        }
        self.pipe.store(Arc::new(e.finish()));
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn normal() -> Vec<FlowSpec> {
    vec![spec(&[], vec![Action::Output(OutputPort::Normal)])]
}

#[test]
fn datapath_is_send_sync() {
    fn ok<T: Send + Sync>() {}
    ok::<Datapath>();
}

#[test]
fn normal_floods_unknown_then_unicasts() {
    let r = Rig::new(1, 3, 300, &normal());
    // Unknown destination: flooded to every port but the ingress one.
    r.send(1, &frame(A, B, 1));
    assert_eq!(r.taken(), vec![0, 1, 1]);
    // B answers: A is known, unicast to port 1 only.
    r.send(2, &frame(B, A, 1));
    assert_eq!(r.taken(), vec![1, 0, 0]);
    // Now B is known too.
    r.send(1, &frame(A, B, 2));
    assert_eq!(r.taken(), vec![0, 1, 0]);
    // Broadcast floods, never reflected.
    r.send(3, &frame(C, BCAST, 1));
    assert_eq!(r.taken(), vec![1, 1, 0]);
    // A known destination on the ingress port is dropped.
    r.send(1, &frame(B, A, 3));
    assert_eq!(r.taken(), vec![0, 0, 0]);
    assert_eq!(r.drop_count("normal_same_port"), 1);
    // B moved to port 1 with that frame.
    let fdb = r.dp.fdb("br0").unwrap();
    let got: Vec<([u8; 6], u32)> = fdb.iter().map(|e| (e.mac, e.ofport)).collect();
    assert_eq!(got, vec![(A, 1), (B, 1), (C, 3)]);
    assert!(fdb.iter().all(|e| e.vlan == 0 && e.age_secs < 5));
}

#[test]
fn normal_is_per_vlan() {
    let r = Rig::new(1, 3, 300, &normal());
    let tagged = |src, dst, vid: u16| {
        eth(
            dst,
            src,
            Some(vid),
            0x0800,
            &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, 64, &udp(1, 2, b"x")),
        )
    };
    r.send(2, &tagged(B, A, 10));
    r.taken();
    // B is known on VLAN 10 only.
    r.send(1, &tagged(A, B, 20));
    assert_eq!(r.taken(), vec![0, 1, 1]);
    r.send(1, &tagged(A, B, 10));
    assert_eq!(r.taken(), vec![0, 1, 0]);
    let vlans: Vec<u16> = r.dp.fdb("br0").unwrap().iter().map(|e| e.vlan).collect();
    assert_eq!(vlans, vec![10, 10, 20]);
}

#[test]
fn mac_aging() {
    let r = Rig::new(1, 3, 1, &normal());
    r.send(2, &frame(B, A, 1));
    r.taken();
    r.send(1, &frame(A, B, 1));
    assert_eq!(r.taken(), vec![0, 1, 0]);
    assert_eq!(r.dp.fdb("br0").unwrap().len(), 2);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(r.dp.fdb("br0").unwrap().is_empty());
    // B has aged out: flooded again.
    r.send(3, &frame(C, B, 1));
    assert_eq!(r.taken(), vec![1, 1, 0]);
}

#[test]
fn explicit_output_rule_counters_equal_packets() {
    let r = Rig::new(1, 2, 300, &[spec(&[(Field::InPort, 1)], vec![out(2)])]);
    // 100 packets over 10 flows: misses and hits both count.
    for i in 0..100u16 {
        assert!(r.peer(1).inject(&frame(A, B, i % 10)));
    }
    wait_until(|| r.processed() == 100);
    assert_eq!(r.taken(), vec![0, 100]);
    let p = r.pipe.load();
    let rule = p.table(0).rules().next().unwrap().clone();
    assert_eq!(rule.stats.packets.load(Ordering::Relaxed), 100);
    assert_eq!(
        rule.stats.bytes.load(Ordering::Relaxed),
        100 * frame(A, B, 0).len() as u64
    );
    let ws = r.dp.worker_stats(false);
    // The rule looks at in_port only, so the 10 flows are one megaflow: one translation.
    assert_eq!(ws[0].cache_misses, 1);
    assert_eq!(ws[0].cache_hits, 99);
    let ports = r.dp.ports("br0").unwrap();
    assert_eq!(ports[0].counters.rx_packets, 100);
    assert_eq!(ports[1].counters.tx_packets, 100);
    // Clearing resets worker counters only.
    r.dp.worker_stats(true);
    assert_eq!(r.dp.worker_stats(false)[0].packets, 0);
}

#[test]
fn pipeline_change_applies_to_the_very_next_packet() {
    let r = Rig::new(1, 3, 300, &[spec(&[(Field::InPort, 1)], vec![out(2)])]);
    let f = frame(A, B, 7);
    for round in 0..20 {
        r.send(1, &f);
        r.send(1, &f);
        let (to, other) = if round % 2 == 0 { (2, 3) } else { (3, 2) };
        let got = r.taken();
        assert_eq!(got[to - 1], 2, "round {round}");
        assert_eq!(got[other - 1], 0);
        // mod-flows: the next packet of the same stream follows the new actions.
        r.set_flows(&[spec(&[(Field::InPort, 1)], vec![out(other as u32)])]);
    }
    // The rule's counters survived every modify and count every packet.
    let p = r.pipe.load();
    let rule = p.table(0).rules().next().unwrap().clone();
    assert_eq!(rule.stats.packets.load(Ordering::Relaxed), 40);
}

#[test]
fn flood_action_follows_port_changes() {
    let r = Rig::new(
        1,
        2,
        300,
        &[spec(&[], vec![Action::Output(OutputPort::Flood)])],
    );
    let f = frame(A, B, 1);
    r.send(1, &f);
    assert_eq!(r.taken(), vec![0, 1]);
    let (port, peer3) = memory::pair("p3");
    r.dp.add_port("br0", 3, port).unwrap();
    // The cached flood set must not be stale.
    r.send(1, &f);
    assert_eq!(r.taken(), vec![0, 1]);
    assert_eq!(peer3.take().len(), 1);
}

#[test]
fn table_miss_malformed_and_controller_are_counted() {
    let ctl = Action::Controller(ControllerAction {
        max_len: 128,
        reason: None,
        id: 0,
    });
    let r = Rig::new(1, 2, 300, &[spec(&[(Field::InPort, 2)], vec![ctl])]);
    // Table miss (no rule for in_port 1), twice: the cached miss counts too.
    r.send(1, &frame(A, B, 1));
    r.send(1, &frame(A, B, 1));
    assert_eq!(r.drop_count("table_miss"), 2);
    // Controller.
    r.send(2, &frame(B, A, 1));
    assert_eq!(r.drop_count("controller"), 1);
    // Malformed: too short for Ethernet; IPv4 header cut short.
    r.send(1, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let mut bad = frame(A, B, 1);
    bad.truncate(14 + 10);
    r.send(1, &bad);
    assert_eq!(r.drop_count("truncated_ethernet"), 1);
    assert_eq!(r.drop_count("bad_ipv4"), 1);
    assert_eq!(r.taken(), vec![0, 0]);
    // Per-port view of the same drops.
    let ports = r.dp.ports("br0").unwrap();
    let p1: BTreeMap<String, u64> = ports[0].drops.iter().cloned().collect();
    assert_eq!(p1.get("table_miss"), Some(&2));
    assert_eq!(p1.get("truncated_ethernet"), Some(&1));
    assert_eq!(p1.get("controller"), None);
    assert_eq!(ports[1].drops, vec![("controller".to_string(), 1)]);
}

#[test]
fn output_to_unknown_port_is_counted() {
    let r = Rig::new(1, 2, 300, &[spec(&[], vec![out(9)])]);
    r.send(1, &frame(A, B, 1));
    assert_eq!(r.drop_count("unknown_port"), 1);
}

#[test]
fn del_port_releases_queues_before_returning() {
    let r = Rig::new(2, 2, 300, &normal());
    assert_eq!(r.peer(2).live_queues(), 1);
    let info = r.dp.del_port("br0", 2).unwrap();
    assert_eq!(info.iface, "p2");
    assert_eq!(r.peer(2).live_queues(), 0);
    assert_eq!(
        r.dp.del_port("br0", 2),
        Err(DatapathError::NoSuchPort {
            bridge: "br0".into(),
            ofport: 2
        })
    );
    // The same interface can be added again at once.
    let (port, peer) = memory::pair("p2");
    r.dp.add_port("br0", 2, port).unwrap();
    r.send(1, &frame(A, BCAST, 1));
    wait_until(|| peer.take().len() == 1);
}

#[test]
fn del_port_under_traffic_and_readd() {
    let r = Rig::new(2, 3, 300, &normal());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0u16;
            while !stop.load(Ordering::Relaxed) {
                r.peer(1).inject(&frame(A, BCAST, i));
                r.peer(3).inject(&frame(C, B, i));
                i = i.wrapping_add(1);
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        for round in 0..5 {
            r.send(2, &frame(B, A, round));
            std::thread::sleep(Duration::from_millis(5));
            let info = r.dp.del_port("br0", 2).unwrap();
            assert_eq!(r.peer(2).live_queues(), 0, "round {round}");
            assert!(r.dp.fdb("br0").unwrap().iter().all(|e| e.ofport != 2));
            std::thread::sleep(Duration::from_millis(5));
            let (port, peer) = memory::pair(&info.iface);
            r.dp.add_port("br0", 2, port).unwrap();
            wait_until(|| !peer.take().is_empty());
        }
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
fn gone_port_is_reported_and_removed() {
    let r = Rig::new(1, 3, 300, &normal());
    r.peer(2).disconnect();
    let mut gone = Vec::new();
    wait_until(|| {
        gone.extend(r.dp.take_gone_ports());
        !gone.is_empty()
    });
    assert_eq!(gone, vec![("br0".to_string(), 2, "p2".to_string())]);
    assert_eq!(r.peer(2).live_queues(), 0);
    let ports: Vec<u32> =
        r.dp.ports("br0")
            .unwrap()
            .iter()
            .map(|p| p.ofport)
            .collect();
    assert_eq!(ports, vec![1, 3]);
    // Traffic keeps flowing without the port.
    r.send(1, &frame(A, BCAST, 1));
    assert_eq!(r.taken(), vec![0, 0, 1]);
    assert!(r.dp.take_gone_ports().is_empty());
}

#[test]
fn two_workers_cross_worker_queues() {
    let r = Rig::new(2, 2, 300, &normal());
    let ports = r.dp.ports("br0").unwrap();
    assert_eq!(ports[0].queue_workers, vec![0]);
    assert_eq!(ports[1].queue_workers, vec![1]);
    r.send(1, &frame(A, B, 1));
    wait_until(|| r.peer(2).rx_pending() == 0);
    let mut got = Vec::new();
    wait_until(|| {
        got.extend(r.peer(2).take());
        !got.is_empty()
    });
    assert_eq!(got, vec![frame(A, B, 1)]);
    // A burst both ways, every frame arrives, in order.
    for i in 0..200u16 {
        r.peer(1).inject(&frame(A, B, i));
        r.peer(2).inject(&frame(B, A, i));
    }
    let (mut to2, mut to1) = (Vec::new(), Vec::new());
    wait_until(|| {
        to2.extend(r.peer(2).take());
        to1.extend(r.peer(1).take());
        to2.len() == 200 && to1.len() == 200
    });
    assert_eq!(to2, (0..200).map(|i| frame(A, B, i)).collect::<Vec<_>>());
    assert_eq!(to1, (0..200).map(|i| frame(B, A, i)).collect::<Vec<_>>());
    let ws = r.dp.worker_stats(false);
    assert!(ws.iter().all(|w| w.packets >= 200 && w.queues == 1));
}

#[test]
fn multi_queue_port_output_is_deterministic() {
    let dp = Datapath::start(DatapathConfig {
        workers: 2,
        idle: IdlePolicy::Sleep,
        mac_aging_secs: 300,
        pmd_cpus: Vec::new(),
    });
    let pipe = Arc::new(ArcSwap::from_pointee(pipeline(&[spec(
        &[(Field::InPort, 1)],
        vec![out(2)],
    )])));
    dp.add_bridge("br0", pipe).unwrap();
    let (p1, peer1) = memory::pair("p1");
    let (p2, peer2) = memory::pair_with_queues("p2", 2);
    dp.add_port("br0", 1, p1).unwrap();
    dp.add_port("br0", 2, p2).unwrap();
    let st = dp.ports("br0").unwrap();
    assert_eq!(st[1].queue_workers, vec![1, 0]);
    for i in 0..50 {
        peer1.inject(&frame(A, B, i));
    }
    let mut got = Vec::new();
    wait_until(|| {
        got.extend(peer2.take());
        got.len() == 50
    });
    // Worker 0 owns p1 and p2's queue 1: everything leaves through queue 1, in order.
    assert_eq!(got, (0..50).map(|i| frame(A, B, i)).collect::<Vec<_>>());
    let st = dp.ports("br0").unwrap();
    assert_eq!(st[1].counters.tx_packets, 50);
    dp.shutdown();
    assert_eq!(peer2.live_queues(), 0);
}

#[test]
fn bridge_and_port_errors() {
    let r = Rig::new(1, 1, 300, &normal());
    let h = Arc::new(ArcSwap::from_pointee(Pipeline::default()));
    assert_eq!(
        r.dp.add_bridge("br0", h.clone()),
        Err(DatapathError::BridgeExists("br0".into()))
    );
    let (p, _peer) = memory::pair("x");
    assert_eq!(
        r.dp.add_port("nope", 1, p),
        Err(DatapathError::NoSuchBridge("nope".into()))
    );
    let (p, _peer) = memory::pair("x");
    assert!(matches!(
        r.dp.add_port("br0", 1, p),
        Err(DatapathError::OfportInUse { .. })
    ));
    let (p, _peer) = memory::pair("p1");
    assert!(matches!(
        r.dp.add_port("br0", 5, p),
        Err(DatapathError::PortExists { .. })
    ));
    r.dp.add_bridge("br1", h).unwrap();
    let (p, peer) = memory::pair("q1");
    r.dp.add_port("br1", 1, p).unwrap();
    r.dp.del_bridge("br1").unwrap();
    assert_eq!(peer.live_queues(), 0);
    assert_eq!(
        r.dp.fdb("br1"),
        Err(DatapathError::NoSuchBridge("br1".into()))
    );
}

#[test]
fn shutdown_drops_every_queue() {
    let r = Rig::new(2, 3, 300, &normal());
    let Rig { dp, peers, .. } = r;
    dp.shutdown();
    assert!(peers.iter().all(|p| p.live_queues() == 0));
}

#[test]
fn full_crossing_queue_drops_and_counts() {
    // Detached workers: worker 1 (owner of p2) does not run while worker 0 forwards to p2.
    let (dp, mut ws) = Datapath::start_detached(DatapathConfig {
        workers: 2,
        idle: IdlePolicy::Busy,
        mac_aging_secs: 300,
        pmd_cpus: Vec::new(),
    });
    let pipe = Arc::new(ArcSwap::from_pointee(pipeline(&[spec(
        &[(Field::InPort, 1)],
        vec![out(2)],
    )])));
    dp.add_bridge("br0", pipe).unwrap();
    let (p1, peer1) = memory::pair("p1");
    let (p2, peer2) = memory::pair("p2");
    dp.add_port("br0", 1, p1).unwrap();
    dp.add_port("br0", 2, p2).unwrap();
    ws[1].iterate();
    let extra = 100;
    for i in 0..CROSS_QUEUE + extra {
        peer1.inject(&frame(A, B, i as u16));
        if i % BATCH == BATCH - 1 {
            ws[0].iterate();
        }
    }
    while ws[0].iterate() > 0 {}
    // Now the owner catches up and sends what fitted.
    ws[1].iterate();
    assert_eq!(peer2.take().len(), CROSS_QUEUE);
    let drops = std::thread::scope(|s| {
        let h = s.spawn(|| dp.drops("br0").unwrap());
        while !h.is_finished() {
            for w in ws.iter_mut() {
                w.iterate();
            }
        }
        h.join().unwrap()
    });
    assert_eq!(drops, vec![("cross_queue_full".to_string(), extra as u64)]);
}

#[test]
fn busy_policy_forwards_and_accounts_time() {
    let dp = Datapath::start(DatapathConfig {
        workers: 1,
        idle: IdlePolicy::Busy,
        mac_aging_secs: 300,
        pmd_cpus: Vec::new(),
    });
    let pipe = Arc::new(ArcSwap::from_pointee(pipeline(&normal())));
    dp.add_bridge("br0", pipe).unwrap();
    let (p1, peer1) = memory::pair("p1");
    let (p2, peer2) = memory::pair("p2");
    dp.add_port("br0", 1, p1).unwrap();
    dp.add_port("br0", 2, p2).unwrap();
    for i in 0..64 {
        peer1.inject(&frame(A, B, i % 4));
    }
    let mut got = 0;
    wait_until(|| {
        got += peer2.take().len();
        got == 64
    });
    std::thread::sleep(Duration::from_millis(5));
    let ws = dp.worker_stats(false);
    assert_eq!(ws.len(), 1);
    let w = &ws[0];
    // normal depends on in_port, the MACs and the VLAN, not on the 4 flows' ports: one
    // megaflow.
    assert_eq!((w.packets, w.cache_misses, w.cache_hits), (64, 1, 63));
    assert!(w.busy_ns > 0 && w.idle_ns > 0);
    assert!(w.busy_ns_per_packet > 0.0);
    dp.shutdown();
    assert_eq!(peer1.live_queues() + peer2.live_queues(), 0);
}

#[test]
fn megaflows_keep_apart_the_flows_the_pipeline_tells_apart() {
    // Two rules on the UDP source port, one catch-all: three megaflows, interleaved traffic.
    let udp = |port: u16| {
        vec![
            (Field::EthType, 0x0800),
            (Field::IpProto, 17),
            (Field::UdpSrc, u128::from(port)),
        ]
    };
    let mut specs = vec![spec(&udp(7), vec![out(2)]), spec(&udp(8), vec![out(3)])];
    specs.push(FlowSpec::new(0, 1, Match::new(), vec![out(4)]));
    let r = Rig::new(1, 4, 300, &specs);
    for round in 0..5 {
        for sport in [7u16, 8, 9, 7, 10] {
            r.send(1, &frame(A, B, sport));
        }
        assert_eq!(r.taken(), vec![0, 2, 1, 2], "round {round}");
    }
    let ws = r.dp.worker_stats(false);
    // 7 and 8 are exact on the port; 9 and 10 fall through the port rules to the catch-all,
    // whose megaflow still pins the port bits the first rules looked at.
    assert_eq!(ws[0].cache_misses + ws[0].cache_hits, 25);
    assert!(ws[0].cache_misses <= 4, "{:?}", ws[0]);
}

/// Flows from `swctl`-style text.
fn flows(text: &[&str]) -> Vec<FlowSpec> {
    text.iter()
        .map(|t| control::flow::parse_flow(t, control::flow::ParseMode::Add).unwrap())
        .collect()
}

/// The stateful firewall of the conntrack tests: port 1 is inside, port 2 outside.
fn firewall() -> Vec<FlowSpec> {
    flows(&[
        "table=0,priority=10,ip,ct_state=-trk actions=ct(table=1,zone=5)",
        "table=0,priority=0 actions=drop",
        "table=1,priority=10,ip,ct_state=+trk+new,in_port=1 actions=ct(commit,zone=5),output:2",
        "table=1,priority=10,ct_state=+trk+est,in_port=1 actions=output:2",
        "table=1,priority=10,ct_state=+trk+est,in_port=2 actions=output:1",
        "table=1,priority=10,ct_state=+trk+new,in_port=2 actions=drop",
        "table=1,priority=5 actions=drop",
    ])
}

/// A TCP segment between the inside (10.0.0.1:1000) and the outside (10.0.0.2:80).
fn seg(from_inside: bool, flags: u16, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (s, d, sp, dp, sm, dm) = if from_inside {
        ([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, A, B)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 1000, B, A)
    };
    let mut t = crate::execute::testutil::tcp(sp, dp, flags, payload);
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    eth(dm, sm, None, 0x0800, &ipv4(s, d, 6, 64, &t))
}

/// Packets counted on the rule of `table` whose printed match has every comma-separated item
/// of `m`.
fn rule_packets(r: &Rig, table: u8, m: &str) -> u64 {
    let p = r.pipe.load();
    let rule = p
        .table(table)
        .rules()
        .find(|rule| {
            let text = control::flow::format_match(&rule.matches);
            m.split(',').all(|item| text.split(',').any(|t| t == item))
        })
        .unwrap_or_else(|| panic!("no rule {m} in table {table}"));
    rule.stats
        .packets
        .load(std::sync::atomic::Ordering::Relaxed)
}

const SYN: u16 = 0x02;
const ACK: u16 = 0x10;
const PSH: u16 = 0x08;

#[test]
fn stateful_firewall_lets_inside_out_and_replies_in() {
    let r = Rig::new(1, 2, 300, &firewall());
    // A new connection from outside is dropped.
    r.send(2, &seg(false, SYN, 7000, 0, b""));
    assert_eq!(r.taken(), vec![0, 0]);
    // The handshake from inside passes both ways.
    r.send(1, &seg(true, SYN, 100, 0, b""));
    assert_eq!(r.taken(), vec![0, 1]);
    r.send(2, &seg(false, SYN | ACK, 500, 101, b""));
    assert_eq!(r.taken(), vec![1, 0]);
    r.send(1, &seg(true, ACK, 101, 501, b""));
    assert_eq!(r.taken(), vec![0, 1]);
    r.send(1, &seg(true, ACK | PSH, 101, 501, b"GET /"));
    assert_eq!(r.taken(), vec![0, 1]);
    r.send(2, &seg(false, ACK | PSH, 501, 106, b"200 OK"));
    assert_eq!(r.taken(), vec![1, 0]);

    // Counters per ct_state rule: one +new from each side, two +est each way.
    assert_eq!(rule_packets(&r, 1, "ct_state=+new+trk,in_port=1"), 1);
    assert_eq!(rule_packets(&r, 1, "ct_state=+new+trk,in_port=2"), 1);
    assert_eq!(rule_packets(&r, 1, "ct_state=+est+trk,in_port=1"), 2);
    assert_eq!(rule_packets(&r, 1, "ct_state=+est+trk,in_port=2"), 2);
    assert_eq!(rule_packets(&r, 0, "ct_state=-trk"), 6);

    // One connection in zone 5, established both ways.
    let ct = r.dp.conntrack();
    let e = ct.entries(Some(5), r.dp.ct_now_ms());
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].state, "ESTABLISHED");
    assert_eq!(e[0].packets, [3, 2]);
    assert!(ct.entries(Some(0), r.dp.ct_now_ms()).is_empty());

    // After a flush the outside's next segment is a new connection: dropped.
    assert_eq!(ct.flush(Some(5), None), 1);
    r.send(2, &seg(false, ACK | PSH, 507, 106, b"more"));
    assert_eq!(r.taken(), vec![0, 0]);
    r.dp.shutdown();
}

#[test]
fn cache_keeps_new_and_established_of_one_tuple_apart() {
    // UDP: the same 5-tuple is +new until the reply, +est after.
    let r = Rig::new(1, 2, 300, &firewall());
    let req = frame(A, B, 53);
    let reply = eth(
        A,
        B,
        None,
        0x0800,
        &ipv4([10, 0, 0, 2], [10, 0, 0, 1], 17, 64, &udp(80, 53, b"hi")),
    );
    // Not committed yet (the +new rule of port 2 drops): the reply is +new, dropped.
    r.send(2, &reply);
    assert_eq!(r.taken(), vec![0, 0]);
    r.send(1, &req);
    assert_eq!(r.taken(), vec![0, 1]);
    r.send(1, &req);
    assert_eq!(r.taken(), vec![0, 1]);
    // The same reply frame, now +est: the cache must not reuse the +new entry.
    r.send(2, &reply);
    assert_eq!(r.taken(), vec![1, 0]);
    // Again: a cache hit on the +est entry.
    r.send(2, &reply);
    assert_eq!(r.taken(), vec![1, 0]);
    assert_eq!(rule_packets(&r, 1, "ct_state=+new+trk,in_port=2"), 1);
    assert_eq!(rule_packets(&r, 1, "ct_state=+est+trk,in_port=2"), 2);
    let hits: u64 = r.dp.worker_stats(false).iter().map(|s| s.cache_hits).sum();
    assert!(hits > 0);
    r.dp.shutdown();
}

#[test]
fn recirculation_depth_is_bounded() {
    // Every pass recirculates again (table 1 sends back to table 1 via ct(table=1)).
    let r = Rig::new(
        1,
        2,
        300,
        &flows(&[
            "table=0,ip actions=ct(table=1,zone=1)",
            "table=1,ip actions=ct(table=1,zone=1),output:2",
        ]),
    );
    r.send(1, &frame(A, B, 9));
    // Eight recirculated passes each output once, then the ninth is refused and counted.
    assert_eq!(r.taken(), vec![0, 8]);
    assert_eq!(r.drop_count("recirc_too_deep"), 1);
    r.dp.shutdown();
}

// --- NAT ------------------------------------------------------------------------------------
//
// Port 1 is inside (10.0.0.1), port 2 outside (10.0.0.2); the gateway address is 10.0.0.100.

const INSIDE: [u8; 4] = [10, 0, 0, 1];
const OUTSIDE: [u8; 4] = [10, 0, 0, 2];
const GW: [u8; 4] = [10, 0, 0, 100];

/// SNAT of everything from port 1 with `nat`, bare `nat` for port 2, forwarding by direction
/// (`+rel` for ICMP errors about NATed connections).
fn snat_flows(nat: &str) -> Vec<FlowSpec> {
    snat_flows_for("ip", nat)
}

/// [`snat_flows`] for `l3` (`ip` or `ipv6`).
fn snat_flows_for(l3: &str, nat: &str) -> Vec<FlowSpec> {
    let first =
        format!("table=0,priority=10,in_port=1,{l3} actions=ct(commit,zone=1,{nat},table=1)");
    let second = format!("table=0,priority=10,in_port=2,{l3} actions=ct(zone=1,nat,table=1)");
    flows(&[
        &first,
        &second,
        "table=1,priority=10,in_port=1 actions=output:2",
        "table=1,priority=10,in_port=2,ct_state=+trk+est actions=output:1",
        "table=1,priority=10,in_port=2,ct_state=+trk+rel actions=output:1",
        "table=1,priority=5 actions=drop",
    ])
}

fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    eth(
        B,
        A,
        None,
        0x0800,
        &ipv4(src, dst, 17, 64, &udp(sport, dport, b"data")),
    )
}

/// (source, destination, L4 source, L4 destination) of a frame, checksums verified.
fn tuple_of(f: &[u8]) -> (std::net::Ipv4Addr, std::net::Ipv4Addr, u16, u16) {
    use crate::execute::testutil::{extract_at_port, verify_checksums};
    verify_checksums(f).unwrap_or_else(|e| panic!("{e}: {f:02x?}"));
    let (k, _) = extract_at_port(f, 0).expect("parsable");
    let l4 = |tcp: Field, udp: Field| match k.get(Field::IpProto) {
        6 => k.get(tcp) as u16,
        17 => k.get(udp) as u16,
        _ => 0,
    };
    (
        (k.get(Field::Ipv4Src) as u32).into(),
        (k.get(Field::Ipv4Dst) as u32).into(),
        l4(Field::TcpSrc, Field::UdpSrc),
        l4(Field::TcpDst, Field::UdpDst),
    )
}

/// The one frame port `p` sent.
fn one(r: &Rig, p: u32) -> Vec<u8> {
    let mut f = r.peer(p).take();
    assert_eq!(f.len(), 1, "port {p}: {} frames", f.len());
    f.pop().unwrap()
}

#[test]
fn snat_udp_and_tcp_out_and_back() {
    let r = Rig::new(1, 2, 300, &snat_flows("nat(src=10.0.0.100:1024-65535)"));
    r.send(1, &udp4(INSIDE, OUTSIDE, 53, 80));
    let (s, d, sp, dp) = tuple_of(&one(&r, 2));
    assert_eq!((s, d, dp), (GW.into(), OUTSIDE.into(), 80));
    assert!(sp >= 1024);
    // The reply to the translated address and port goes back to the client, translated.
    r.send(2, &udp4(OUTSIDE, GW, 80, sp));
    assert_eq!(
        tuple_of(&one(&r, 1)),
        (OUTSIDE.into(), INSIDE.into(), 80, 53)
    );

    // TCP: the handshake both ways.
    r.send(1, &seg(true, SYN, 100, 0, b""));
    let (s, _, tsp, dp) = tuple_of(&one(&r, 2));
    assert_eq!((s, dp), (GW.into(), 80));
    let mut synack = seg(false, SYN | ACK, 500, 101, b"");
    // seg() builds 10.0.0.2:80 -> 10.0.0.1:1000: address it to the gateway instead.
    synack = {
        let mut t = crate::execute::testutil::tcp(80, tsp, SYN | ACK, b"");
        t[4..8].copy_from_slice(&500u32.to_be_bytes());
        t[8..12].copy_from_slice(&101u32.to_be_bytes());
        let _ = synack;
        eth(A, B, None, 0x0800, &ipv4(OUTSIDE, GW, 6, 64, &t))
    };
    r.send(2, &synack);
    assert_eq!(
        tuple_of(&one(&r, 1)),
        (OUTSIDE.into(), INSIDE.into(), 80, 1000)
    );
    r.send(1, &seg(true, ACK | PSH, 101, 501, b"GET /"));
    assert_eq!(tuple_of(&one(&r, 2)), (GW.into(), OUTSIDE.into(), tsp, 80));

    // Both connections are listed with the translation in their reply tuple.
    let e = r.dp.conntrack().entries(Some(1), r.dp.ct_now_ms());
    assert_eq!(e.len(), 2, "{e:?}");
    r.dp.shutdown();
}

#[test]
fn dnat_port_forward_both_ways() {
    let r = Rig::new(
        1,
        2,
        300,
        &flows(&[
            "table=0,priority=10,in_port=2,ip actions=ct(commit,zone=1,nat(dst=10.0.0.1:80),table=1)",
            "table=0,priority=10,in_port=1,ip actions=ct(zone=1,nat,table=1)",
            "table=1,priority=10,in_port=2 actions=output:1",
            "table=1,priority=10,in_port=1,ct_state=+trk+est actions=output:2",
            "table=1,priority=5 actions=drop",
        ]),
    );
    r.send(2, &udp4(OUTSIDE, GW, 4000, 8080));
    assert_eq!(
        tuple_of(&one(&r, 1)),
        (OUTSIDE.into(), INSIDE.into(), 4000, 80)
    );
    r.send(1, &udp4(INSIDE, OUTSIDE, 80, 4000));
    assert_eq!(
        tuple_of(&one(&r, 2)),
        (GW.into(), OUTSIDE.into(), 8080, 4000)
    );
    let e = r.dp.conntrack().entries(Some(1), r.dp.ct_now_ms());
    assert_eq!(e.len(), 1, "{e:?}");
    r.dp.shutdown();
}

#[test]
fn icmp_echo_id_through_snat() {
    use crate::execute::testutil::icmp;
    let r = Rig::new(1, 2, 300, &snat_flows("nat(src=10.0.0.100:2000-2000)"));
    // icmp() writes identifier 0x1234.
    let req = eth(
        B,
        A,
        None,
        0x0800,
        &ipv4(INSIDE, OUTSIDE, 1, 64, &icmp(8, 0, b"ping")),
    );
    r.send(1, &req);
    let f = one(&r, 2);
    tuple_of(&f);
    assert_eq!(&f[14 + 12..14 + 16], &GW);
    assert_eq!(u16::from_be_bytes([f[34 + 4], f[34 + 5]]), 2000);
    let mut reply = icmp(0, 0, b"ping");
    reply[4..6].copy_from_slice(&2000u16.to_be_bytes());
    r.send(
        2,
        &eth(A, B, None, 0x0800, &ipv4(OUTSIDE, GW, 1, 64, &reply)),
    );
    let f = one(&r, 1);
    tuple_of(&f);
    assert_eq!(&f[14 + 16..14 + 20], &INSIDE);
    assert_eq!(u16::from_be_bytes([f[34 + 4], f[34 + 5]]), 0x1234);
    r.dp.shutdown();
}

#[test]
fn icmp_errors_about_snat_connections_are_translated_outer_and_inner() {
    use crate::execute::testutil::icmp;
    let r = Rig::new(1, 2, 300, &snat_flows("nat(src=10.0.0.100:3000-3000)"));
    r.send(1, &udp4(INSIDE, OUTSIDE, 53, 80));
    let sent = one(&r, 2);
    assert_eq!(tuple_of(&sent).2, 3000);
    // Port unreachable from the server, and time exceeded from a router on the way (both
    // quote the translated datagram as it left, IP header + 8 bytes).
    let quoted = &sent[14..14 + 28];
    let router = [10, 0, 0, 9];
    for (from, ty, code) in [(OUTSIDE, 3, 3), (router, 11, 0), (OUTSIDE, 3, 4)] {
        let err = eth(
            A,
            B,
            None,
            0x0800,
            &ipv4(from, GW, 1, 64, &icmp(ty, code, quoted)),
        );
        r.send(2, &err);
        let f = one(&r, 1);
        let (s, d, _, _) = tuple_of(&f);
        assert_eq!((s, d), (from.into(), INSIDE.into()), "type {ty}");
        // The quoted header: the client's own datagram again, its IP checksum valid.
        let inner = &f[34 + 8..];
        // Unchecked: the quote is shorter than its total length says.
        let ip = smoltcp::wire::Ipv4Packet::new_unchecked(inner);
        assert!(ip.verify_checksum(), "inner ip checksum");
        assert_eq!(ip.src_addr(), smoltcp::wire::Ipv4Address::from(INSIDE));
        assert_eq!(ip.dst_addr(), smoltcp::wire::Ipv4Address::from(OUTSIDE));
        assert_eq!(u16::from_be_bytes([inner[20], inner[21]]), 53);
        assert_eq!(u16::from_be_bytes([inner[22], inner[23]]), 80);
    }
    r.dp.shutdown();
}

#[test]
fn nat_exhaustion_drops_and_counts() {
    let r = Rig::new(1, 2, 300, &snat_flows("nat(src=10.0.0.100:5000)"));
    r.send(1, &udp4(INSIDE, OUTSIDE, 53, 80));
    assert_eq!(tuple_of(&one(&r, 2)).2, 5000);
    // Another client port to the same server needs the same single translated port.
    r.send(1, &udp4(INSIDE, OUTSIDE, 54, 80));
    assert_eq!(r.taken(), vec![0, 0]);
    assert_eq!(r.drop_count("nat_exhausted"), 1);
    assert_eq!(
        r.dp.conntrack()
            .invalid_count(conntrack::InvalidReason::NatExhausted),
        1
    );
    r.dp.shutdown();
}

#[test]
fn snat_ipv6_udp_and_icmpv6_error() {
    use crate::execute::testutil::{icmp, ipv6, verify_checksums};
    let r = Rig::new(
        1,
        2,
        300,
        &snat_flows_for("ipv6", "nat(src=[fd00::100]:4000-4000)"),
    );
    let ip = |s: &str| -> [u8; 16] { s.parse::<std::net::Ipv6Addr>().unwrap().octets() };
    let (inside, outside, gw) = (ip("fd00::1"), ip("fd00::2"), ip("fd00::100"));
    let f = eth(
        B,
        A,
        None,
        0x86dd,
        &ipv6(inside, outside, 17, 64, &udp(53, 80, b"v6")),
    );
    r.send(1, &f);
    let out = one(&r, 2);
    verify_checksums(&out).unwrap();
    assert_eq!(&out[14 + 8..14 + 24], &gw);
    assert_eq!(u16::from_be_bytes([out[54], out[55]]), 4000);
    // The reply comes back to the client.
    let reply = eth(
        A,
        B,
        None,
        0x86dd,
        &ipv6(outside, gw, 17, 64, &udp(80, 4000, b"v6")),
    );
    r.send(2, &reply);
    let back = one(&r, 1);
    verify_checksums(&back).unwrap();
    assert_eq!(&back[14 + 24..14 + 40], &inside);
    assert_eq!(u16::from_be_bytes([back[56], back[57]]), 53);
    // Destination unreachable (ICMPv6 type 1) quoting the translated datagram: outer and
    // inner translated, the ICMPv6 checksum (pseudo-header included) valid.
    let quoted = &out[14..14 + 48];
    let err = eth(
        A,
        B,
        None,
        0x86dd,
        &ipv6(outside, gw, 58, 64, &icmp(1, 4, quoted)),
    );
    r.send(2, &err);
    let e = one(&r, 1);
    verify_checksums(&e).unwrap();
    assert_eq!(&e[14 + 24..14 + 40], &inside);
    let inner = &e[14 + 40 + 8..];
    assert_eq!(&inner[8..24], &inside);
    assert_eq!(u16::from_be_bytes([inner[40], inner[41]]), 53);
    r.dp.shutdown();
}

/// Frames lent in place by the queue (memory ports do it like AF_XDP) and frames copied into
/// the worker's buffers (`recv`, like AF_PACKET) get the same treatment: a rewrite, an output to
/// another port, and two hairpins back out of the ingress queue — which is lent out of the
/// worker while its own batch runs, so those wait in the worker's staging, more of them than a
/// batch holds — in order and with exact counters.
#[test]
fn in_place_and_copied_receive_forward_alike() {
    for lend in [true, false] {
        let dp = Datapath::start(DatapathConfig {
            workers: 1,
            idle: IdlePolicy::Sleep,
            mac_aging_secs: 300,
            pmd_cpus: Vec::new(),
        });
        let specs =
            flows(&["in_port=1 actions=mod_dl_src:02:00:00:00:00:0c,output:2,IN_PORT,IN_PORT"]);
        let pipe = Arc::new(ArcSwap::from_pointee(pipeline(&specs)));
        dp.add_bridge("br0", pipe).unwrap();
        let (p1, peer1) = memory::pair("p1");
        let (p2, peer2) = memory::pair("p2");
        peer1.set_lend_rx(lend);
        peer2.set_lend_rx(lend);
        dp.add_port("br0", 1, p1).unwrap();
        dp.add_port("br0", 2, p2).unwrap();
        for i in 0..100u16 {
            assert!(peer1.inject(&frame(A, B, i)));
        }
        let (mut back, mut out) = (Vec::new(), Vec::new());
        wait_until(|| {
            back.extend(peer1.take());
            out.extend(peer2.take());
            back.len() >= 200 && out.len() >= 100
        });
        assert_eq!((back.len(), out.len()), (200, 100), "lend={lend}");
        for (i, f) in out.iter().enumerate() {
            assert_eq!(f, &frame(C, B, i as u16), "lend={lend}: output {i}");
        }
        for (i, f) in back.iter().enumerate() {
            assert_eq!(f, &frame(C, B, (i / 2) as u16), "lend={lend}: hairpin {i}");
        }
        let ports = dp.ports("br0").unwrap();
        assert_eq!(ports[0].counters.rx_packets, 100);
        assert_eq!(ports[0].counters.tx_packets, 200);
        assert_eq!(ports[1].counters.tx_packets, 100);
        let ws = dp.worker_stats(false);
        assert_eq!((ws[0].packets, ws[0].cache_misses), (100, 1));
        dp.shutdown();
    }
}

mod tunnel {
    //! Tunnel metadata through the worker: received metadata in the key (and so in the
    //! megaflow), `set_tunnel`/`tun_dst` to the output port, and the remote VTEP `normal`
    //! learns. Port 1 plays the VXLAN port (memory ports carry metadata like it).

    use super::*;
    use crate::execute::TunnelMeta;

    const VTEP_B: u32 = 0x0a00_0002;
    const VTEP_C: u32 = 0x0a00_0003;
    const LOCAL: u32 = 0x0a00_0001;

    fn meta(id: u64, src: u32) -> TunnelMeta {
        TunnelMeta {
            id,
            src,
            dst: LOCAL,
        }
    }

    fn send_tunneled(r: &Rig, f: &[u8], t: TunnelMeta) {
        let before = r.processed();
        assert!(r.peer(1).inject_tunneled(f, t));
        wait_until(|| r.processed() > before);
    }

    #[test]
    fn tun_id_is_part_of_the_megaflow_key() {
        let r = Rig::new(
            1,
            2,
            300,
            &flows(&[
                "priority=10,tun_id=0x43e,in_port=1 actions=output:2",
                "priority=5,tun_src=10.0.0.3,in_port=1 actions=output:2",
                "priority=0 actions=drop",
            ]),
        );
        let f = frame(A, B, 1);
        // The same inner frame on another VNI first: its (drop) megaflow must not be served
        // to the matching VNI afterwards, nor the other way round.
        for round in 0..3 {
            send_tunneled(&r, &f, meta(0x43f, VTEP_B));
            assert_eq!(r.taken(), vec![0, 0], "round {round}: other VNI dropped");
            send_tunneled(&r, &f, meta(0x43e, VTEP_B));
            assert_eq!(r.taken(), vec![0, 1], "round {round}: VNI 0x43e forwarded");
            send_tunneled(&r, &f, meta(0x43f, VTEP_C));
            assert_eq!(r.taken(), vec![0, 1], "round {round}: tun_src matched");
        }
        // Untunneled on the same port: no tunnel metadata, nothing matches but the drop.
        r.send(1, &f);
        assert_eq!(r.taken(), vec![0, 0]);
        let ws = r.dp.worker_stats(false);
        assert!(ws[0].cache_hits >= 6, "{:?}", ws[0]);
    }

    #[test]
    fn set_tunnel_and_tun_dst_reach_the_encapsulating_port() {
        let r = Rig::new(
            1,
            2,
            300,
            &flows(&[
                "in_port=2 actions=set_tunnel:0x43e,set_field:10.0.0.2->tun_dst,output:1",
                "tun_id=0x43e,in_port=1 actions=output:2",
            ]),
        );
        for _ in 0..2 {
            r.send(2, &frame(B, A, 1));
            let out = r.peer(1).take_tunneled();
            assert_eq!(out.len(), 1);
            assert_eq!(
                out[0].1,
                Some(TunnelMeta {
                    id: 0x43e,
                    src: 0,
                    dst: VTEP_B
                })
            );
        }
        // Received metadata travels with the frame when no action changes it.
        send_tunneled(&r, &frame(A, B, 1), meta(0x43e, VTEP_B));
        let out = r.peer(2).take_tunneled();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, Some(meta(0x43e, VTEP_B)));
    }

    #[test]
    fn normal_learns_the_remote_vtep_of_a_mac() {
        let r = Rig::new(1, 3, 300, &normal());
        // A and C are behind the tunnel port, at different VTEPs.
        send_tunneled(&r, &frame(A, BCAST, 1), meta(0x43e, VTEP_B));
        send_tunneled(&r, &frame(C, BCAST, 1), meta(0x43e, VTEP_C));
        r.peer(2).take();
        r.peer(3).take();
        let fdb = r.dp.fdb("br0").unwrap();
        let remote = |mac| {
            fdb.iter()
                .find(|e| e.mac == mac)
                .map(|e| (e.ofport, e.remote))
        };
        assert_eq!(remote(A), Some((1, VTEP_B)));
        assert_eq!(remote(C), Some((1, VTEP_C)));
        // Unicast from a local host goes to the tunnel port with the learned remote.
        r.send(2, &frame(B, A, 1));
        r.send(2, &frame(B, C, 1));
        let out = r.peer(1).take_tunneled();
        let dsts: Vec<u32> = out.iter().map(|(_, t)| t.map_or(0, |t| t.dst)).collect();
        assert_eq!(dsts, vec![VTEP_B, VTEP_C]);
        // B was learned on a plain port: no remote.
        let fdb = r.dp.fdb("br0").unwrap();
        assert_eq!(fdb.iter().find(|e| e.mac == B).map(|e| e.remote), Some(0));
    }
}

/// Floating IPs through the real flow cache: two ICMP errors of one megaflow quoting different
/// packets are each handled on their own quote (the second one is a cache hit), and a FIP
/// table change is seen by the very next packet.
#[test]
fn fip_icmp_errors_share_a_megaflow_but_not_the_quote_decision() {
    use crate::execute::testutil::icmp;
    use crate::xlate::{FipEntry, FipStats, FipTable};
    let (fip, fixed, router) = ([192, 168, 111, 223], [88, 88, 88, 4], [192, 168, 111, 1]);
    let table = |entries: Vec<FipEntry>| Arc::new(FipTable::new(entries).unwrap());
    let entry = FipEntry {
        fip: fip.into(),
        fixed: fixed.into(),
        mac: None,
        owned: true,
        claim: "standalone".into(),
        stats: Arc::new(FipStats::default()),
    };
    let rig = Rig::new(1, 2, 300, &[spec(&[], vec![Action::FipDnat, out(2)])]);
    let publish = |t: Arc<FipTable>| {
        let mut e = rig.pipe.load_full().edit();
        e.set_fips(t);
        rig.pipe.store(Arc::new(e.finish()));
    };
    publish(table(vec![entry.clone()]));
    let err = |quoted_src: [u8; 4]| {
        let quoted = ipv4(
            quoted_src,
            [10, 99, 0, 2],
            17,
            1,
            &udp(33434, 33435, b"probe"),
        );
        eth(
            B,
            A,
            None,
            0x0800,
            &ipv4(router, fip, 1, 64, &icmp(11, 0, &quoted)),
        )
    };
    let quoted_src =
        |f: &[u8]| -> [u8; 4] { f[14 + 20 + 8 + 12..14 + 20 + 8 + 16].try_into().unwrap() };
    let outer_dst = |f: &[u8]| -> [u8; 4] { f[14 + 16..14 + 20].try_into().unwrap() };
    let hits = || {
        rig.dp
            .worker_stats(false)
            .iter()
            .map(|s| s.cache_hits)
            .sum::<u64>()
    };

    rig.send(1, &err(fip));
    let got = rig.peer(2).take();
    assert_eq!((outer_dst(&got[0]), quoted_src(&got[0])), (fixed, fixed));
    let h = hits();
    rig.send(1, &err([192, 168, 111, 50]));
    let got = rig.peer(2).take();
    assert_eq!(hits(), h + 1, "same megaflow: a cache hit");
    assert_eq!(
        (outer_dst(&got[0]), quoted_src(&got[0])),
        (fixed, [192, 168, 111, 50]),
        "the other quote is left alone"
    );
    for f in &got {
        crate::execute::testutil::verify_checksums(f).unwrap();
    }
    assert_eq!(
        entry
            .stats
            .dnat
            .packets
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // The FIP removed: the next packet is not translated (the cached decision is gone).
    publish(table(Vec::new()));
    rig.send(1, &err(fip));
    let got = rig.peer(2).take();
    assert_eq!((outer_dst(&got[0]), quoted_src(&got[0])), (fip, fip));
}
