//! Classifier lookup cost for tables of 10, 1 000 and 100 000 flows in a realistic shape.
//!
//! Shape (priorities in parentheses), one subtable per line:
//! * exact TCP 5-tuples (200), ~60% of the flows;
//! * service rules: protocol + destination address + port (190), ~15%;
//! * L2 rules: `in_port` + `eth_dst` (180), ~10%;
//! * IPv4 destination prefixes /24 (124), /16 (116), /8 (108), ~8%, ~5%, at most 90;
//! * one catch-all (0).
//!
//! Cases: `hit_exact` hits a 5-tuple (first subtable probed, the best case); `hit_prefix` hits a
//! /24 after missing the three exact subtables; `fallthrough` reaches the catch-all after
//! probing every subtable (the worst case); `miss` is the same traffic on the same table without
//! the catch-all (a table miss). Keys rotate through 4 096 precomputed ones so the branch
//! predictor and caches see varied traffic. Lookups go through `Table::lookup`, including its
//! shared atomic counters, as the pipeline does; `cls_hit_exact` is `hit_exact` on the bare
//! classifier, without those counters.
//!
//! `edit_add_one` measures what adding one flow to the table costs as a new pipeline version:
//! `Pipeline::edit`, the insertion (which copies the touched subtable, see the classifier's
//! design notes), `finish`, and dropping the new version again.

use control::flow::ast::{FlowAttrs, FlowSpec, Match};
use control::flow::field::Field;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::flowtable::{Pipeline, Rule};
use dataplane::key::FlowKey;
use std::hint::black_box;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TCP: [(Field, u128); 2] = [(Field::EthType, 0x0800), (Field::IpProto, 6)];

fn rule(priority: u16, fields: &[(Field, u128, u128)]) -> Rule {
    let mut m = Match::new();
    for &(f, v, mask) in fields {
        m.set(f, v, mask);
    }
    let spec = FlowSpec {
        attrs: FlowAttrs {
            priority,
            ..FlowAttrs::default()
        },
        matches: m,
        actions: Some(vec![]),
    };
    Rule::from_spec(&spec, 0)
}

fn ex(f: Field, v: u128) -> (Field, u128, u128) {
    (f, v, f.full_mask())
}

fn pfx(v: u32, len: u32) -> (Field, u128, u128) {
    let mask = (u32::MAX << (32 - len)) as u128;
    (Field::Ipv4Dst, v as u128 & mask, mask)
}

fn tcp_key(src: u32, dst: u32, sport: u16, dport: u16) -> FlowKey {
    let mut k = FlowKey::zero();
    for (f, v) in TCP {
        k.set(f, v);
    }
    k.set(Field::InPort, 1);
    k.set(Field::EthDst, 0x0200_0000_0001);
    k.set(Field::Ipv4Src, src as u128);
    k.set(Field::Ipv4Dst, dst as u128);
    k.set(Field::TcpSrc, sport as u128);
    k.set(Field::TcpDst, dport as u128);
    k
}

/// An IPv4 address whose first octet lies in `lo..=hi`.
fn addr(rng: &mut Rng, lo: u32, hi: u32) -> u32 {
    let first = lo + rng.below((hi - lo + 1) as u64) as u32;
    (first << 24) | (rng.next() as u32 & 0x00ff_ffff)
}

struct Setup {
    with_catchall: Pipeline,
    without: Pipeline,
    exact_keys: Vec<FlowKey>,
    prefix_keys: Vec<FlowKey>,
    other_keys: Vec<FlowKey>,
}

fn setup(n: usize) -> Setup {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let tcp = [ex(TCP[0].0, TCP[0].1), ex(TCP[1].0, TCP[1].1)];
    let n_service = (n * 15 / 100).max(1);
    let n_l2 = (n * 10 / 100).max(1);
    let n_p24 = (n * 8 / 100).max(1);
    let n_p16 = (n * 5 / 100).max(1);
    let n_p8 = (n * 2 / 100).clamp(1, 90);
    let n_exact = n
        .saturating_sub(n_service + n_l2 + n_p24 + n_p16 + n_p8 + 1)
        .max(1);
    let mut rules = Vec::with_capacity(n);
    let mut exact_keys = Vec::new();
    for _ in 0..n_exact {
        let (s, d) = (rng.next() as u32, rng.next() as u32);
        let (sp, dp) = (rng.next() as u16, rng.next() as u16);
        let f = [
            ex(Field::Ipv4Src, s as u128),
            ex(Field::Ipv4Dst, d as u128),
            ex(Field::TcpSrc, sp as u128),
            ex(Field::TcpDst, dp as u128),
        ];
        rules.push(rule(200, &[tcp[0], tcp[1], f[0], f[1], f[2], f[3]]));
        exact_keys.push(tcp_key(s, d, sp, dp));
    }
    for _ in 0..n_service {
        let d = rng.next() as u32;
        let f = [ex(Field::Ipv4Dst, d as u128), ex(Field::TcpDst, 443)];
        rules.push(rule(190, &[tcp[0], tcp[1], f[0], f[1]]));
    }
    for _ in 0..n_l2 {
        let port = 2 + rng.below(64) as u128;
        let mac = 0x0200_0000_0000 | (rng.next() as u128 & 0xffff_ffff);
        rules.push(rule(
            180,
            &[ex(Field::InPort, port), ex(Field::EthDst, mac)],
        ));
    }
    let mut prefix_keys = Vec::new();
    for _ in 0..n_p24 {
        let d = addr(&mut rng, 173, 191);
        rules.push(rule(124, &[tcp[0], pfx(d, 24)]));
        prefix_keys.push(tcp_key(rng.next() as u32, d ^ 0x7f, 1234, 80));
    }
    for _ in 0..n_p16 {
        let d = addr(&mut rng, 101, 170);
        rules.push(rule(116, &[tcp[0], pfx(d, 16)]));
    }
    for i in 0..n_p8 {
        rules.push(rule(108, &[tcp[0], pfx((11 + i as u32) << 24, 8)]));
    }
    let mut e = Pipeline::default().edit();
    for r in rules {
        e.insert(r);
    }
    let without = e.finish();
    let mut e = without.edit();
    e.insert(rule(0, &[]));
    let with_catchall = e.finish();
    // Traffic to 192.0.0.0/3 matches no prefix and, with random 5-tuples, no exact rule.
    let other_keys = (0..4096)
        .map(|_| {
            let d = addr(&mut rng, 192, 223);
            tcp_key(rng.next() as u32, d, rng.next() as u16, rng.next() as u16)
        })
        .collect();
    Setup {
        with_catchall,
        without,
        exact_keys,
        prefix_keys,
        other_keys,
    }
}

fn rotate(keys: &[FlowKey]) -> Vec<FlowKey> {
    keys.iter().cycle().take(4096).copied().collect()
}

fn bench_classify(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    for n in [10usize, 1_000, 100_000] {
        let s = setup(n);
        let t = s.with_catchall.table(0);
        let label = format!("{}flows_{}subtables", t.len(), t.n_subtables());
        eprintln!(
            "classify: {} rules, {} subtables (exact 5-tuple subtable: {} keys, /24 keys: {})",
            t.len(),
            t.n_subtables(),
            s.exact_keys.len(),
            s.prefix_keys.len()
        );
        // Sanity: each case really exercises what its name says.
        let top = |k: &FlowKey, p: &Pipeline| {
            p.table(0)
                .lookup(k, &mut FlowKey::zero())
                .map(|r| r.attrs.priority)
        };
        assert_eq!(top(&s.exact_keys[0], &s.with_catchall), Some(200));
        assert_eq!(top(&s.prefix_keys[0], &s.with_catchall), Some(124));
        assert_eq!(top(&s.other_keys[0], &s.with_catchall), Some(0));
        assert_eq!(top(&s.other_keys[0], &s.without), None);

        let cases: [(&str, &Pipeline, Vec<FlowKey>); 4] = [
            ("hit_exact", &s.with_catchall, rotate(&s.exact_keys)),
            ("hit_prefix", &s.with_catchall, rotate(&s.prefix_keys)),
            ("fallthrough", &s.with_catchall, s.other_keys.clone()),
            ("miss", &s.without, s.other_keys.clone()),
        ];
        let cls = t.classifier();
        let keys = rotate(&s.exact_keys);
        g.bench_function(BenchmarkId::new("cls_hit_exact", &label), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & 4095;
                let mut wc = FlowKey::zero();
                let r = cls.lookup(black_box(&keys[i]), &mut wc);
                black_box((r.is_some(), wc.w[0]))
            })
        });
        for (name, p, keys) in cases {
            let table = p.table(0);
            g.bench_function(BenchmarkId::new(name, &label), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = (i + 1) & 4095;
                    let mut wc = FlowKey::zero();
                    let r = table.lookup(black_box(&keys[i]), &mut wc);
                    black_box((r.is_some(), wc.w[0]))
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("edit");
    for n in [10usize, 1_000, 100_000] {
        let s = setup(n);
        let p = &s.with_catchall;
        let label = format!("{}flows", p.table(0).len());
        let new_flow = |i: u64| {
            let k = [ex(Field::Ipv4Src, i as u128), ex(Field::Ipv4Dst, 1)];
            let tcp = [ex(TCP[0].0, TCP[0].1), ex(TCP[1].0, TCP[1].1)];
            let f = [ex(Field::TcpSrc, 1), ex(Field::TcpDst, 2)];
            rule(200, &[tcp[0], tcp[1], k[0], k[1], f[0], f[1]])
        };
        g.bench_function(BenchmarkId::new("edit_add_one", &label), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                let mut e = p.edit();
                e.insert(new_flow(i));
                black_box(e.finish())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_classify);
criterion_main!(benches);
