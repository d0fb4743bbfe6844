use super::*;
use crate::flowtable::Rule;
use control::flow::ast::{FlowAttrs, FlowSpec, Match};
use control::flow::field::Field;
use proptest::prelude::*;

fn rule(priority: u16, fields: &[(Field, u128, u128)]) -> Arc<Rule> {
    let mut m = Match::new();
    for &(f, v, mask) in fields {
        assert!(m.set(f, v, mask));
    }
    let spec = FlowSpec {
        attrs: FlowAttrs {
            priority,
            ..FlowAttrs::default()
        },
        matches: m,
        actions: Some(vec![]),
    };
    Arc::new(Rule::from_spec(&spec, 0))
}

fn key(fields: &[(Field, u128)]) -> FlowKey {
    let mut k = FlowKey::zero();
    for &(f, v) in fields {
        k.set(f, v);
    }
    k
}

fn exact(f: Field, v: u128) -> (Field, u128, u128) {
    (f, v, f.full_mask())
}

fn prefix(f: Field, v: u128, len: u8) -> (Field, u128, u128) {
    let w = f.width();
    let mask = if len == 0 {
        0
    } else {
        control::flow::field::ones(len) << (w - len)
    };
    (f, v, mask)
}

fn look<'a>(c: &'a Classifier, k: &FlowKey) -> (Option<&'a Arc<Rule>>, FlowKey) {
    let mut wc = FlowKey::zero();
    let r = c.lookup(k, &mut wc);
    (r, wc)
}

fn same(a: Option<&Arc<Rule>>, b: &Arc<Rule>) -> bool {
    a.is_some_and(|a| Arc::ptr_eq(a, b))
}

const IP: (Field, u128, u128) = (Field::EthType, 0x0800, 0xffff);

#[test]
fn priorities_across_subtables() {
    let mut c = Classifier::new();
    let ip = rule(10, &[IP]);
    let net = rule(20, &[IP, prefix(Field::Ipv4Dst, 0x0a00_0000, 8)]);
    let host = rule(15, &[IP, exact(Field::Ipv4Dst, 0x0a00_0001)]);
    let all = rule(0, &[]);
    for r in [&ip, &net, &host, &all] {
        assert!(c.insert(r.clone()).is_none());
    }
    assert_eq!(c.len(), 4);
    assert_eq!(c.n_subtables(), 4);
    let k = |dst| key(&[(Field::EthType, 0x0800), (Field::Ipv4Dst, dst)]);
    // The /8 at 20 beats the host route at 15: priority, not specificity, decides.
    assert!(same(look(&c, &k(0x0a00_0001)).0, &net));
    assert!(same(look(&c, &k(0x0b00_0001)).0, &ip));
    assert!(same(look(&c, &key(&[(Field::EthType, 0x0806)])).0, &all));
    // Removing the /8 uncovers the host route.
    assert!(c.remove(&net.key, 20).is_some());
    assert!(same(look(&c, &k(0x0a00_0001)).0, &host));
    assert!(same(look(&c, &k(0x0a00_0002)).0, &ip));
    assert!(c.remove(&net.key, 20).is_none());
    assert_eq!(c.len(), 3);
    assert_eq!(c.n_subtables(), 3);
}

#[test]
fn equal_priority_more_specific_mask_wins_whatever_the_insertion_order() {
    let broad = rule(100, &[IP]);
    let narrow = rule(100, &[IP, prefix(Field::Ipv4Src, 0xc0a8_0000, 16)]);
    // Same bit count: reg0 (high half of word 3) ranks above reg1 (low half).
    let r0 = rule(100, &[exact(Field::Reg(0), 7)]);
    let r1 = rule(100, &[exact(Field::Reg(1), 7)]);
    let orders: [[&Arc<Rule>; 4]; 2] = [[&broad, &narrow, &r0, &r1], [&r1, &r0, &narrow, &broad]];
    for order in orders {
        let mut c = Classifier::new();
        for r in order {
            c.insert(r.clone());
        }
        let k = key(&[(Field::EthType, 0x0800), (Field::Ipv4Src, 0xc0a8_0101)]);
        assert!(same(look(&c, &k).0, &narrow));
        let k = key(&[(Field::EthType, 0x0800), (Field::Ipv4Src, 0xc0a9_0101)]);
        assert!(same(look(&c, &k).0, &broad));
        let k = key(&[(Field::Reg(0), 7), (Field::Reg(1), 7)]);
        assert!(same(look(&c, &k).0, &r0));
        let k = key(&[(Field::Reg(1), 7)]);
        assert!(same(look(&c, &k).0, &r1));
    }
}

#[test]
fn ipv6_prefixes_and_128_bit_fields() {
    let mut c = Classifier::new();
    let v6 = (Field::EthType, 0x86dd, 0xffff);
    let p48 = rule(
        48,
        &[v6, prefix(Field::Ipv6Src, 0x2001_0db8_0001 << 80, 48)],
    );
    let p64 = rule(
        64,
        &[v6, prefix(Field::Ipv6Src, 0x2001_0db8_0001_0002 << 64, 64)],
    );
    let p128 = rule(
        128,
        &[v6, exact(Field::Ipv6Src, (0x2001_0db8_0001_0002 << 64) | 5)],
    );
    // Low-word-only mask on a 128-bit field, and a label bit match at both ends.
    let low = rule(10, &[v6, (Field::Ipv6Dst, 0xff, 0xff)]);
    let lab_hi = rule(7, &[(Field::CtLabel, 1 << 127, 1 << 127)]);
    let lab_lo = rule(6, &[(Field::CtLabel, 1, 1)]);
    for r in [&p48, &p64, &p128, &low, &lab_hi, &lab_lo] {
        c.insert(r.clone());
    }
    let k = |src: u128, dst: u128, label: u128| {
        key(&[
            (Field::EthType, 0x86dd),
            (Field::Ipv6Src, src),
            (Field::Ipv6Dst, dst),
            (Field::CtLabel, label),
        ])
    };
    let base = 0x2001_0db8_0001_0002u128 << 64;
    assert!(same(look(&c, &k(base | 5, 0, 0)).0, &p128));
    assert!(same(look(&c, &k(base | 6, 0, 0)).0, &p64));
    assert!(same(look(&c, &k(base ^ (1 << 64), 0, 0)).0, &p48));
    assert!(same(look(&c, &k(0, 0x1ff, 0)).0, &low));
    assert!(same(look(&c, &k(0, 0, u128::MAX)).0, &lab_hi));
    assert!(same(look(&c, &k(0, 0, 3)).0, &lab_lo));
    assert!(look(&c, &k(0, 0, 2)).0.is_none());
    // The /128 hit stopped the walk: lower-priority masks were not probed, so dst and the
    // label stay wildcarded.
    let (_, wc) = look(&c, &k(base | 5, 0, 0));
    assert_eq!(wc.get(Field::Ipv6Src), u128::MAX);
    assert_eq!(wc.get(Field::Ipv6Dst), 0);
    assert_eq!(wc.get(Field::CtLabel), 0);
    // A miss probes everything.
    let (_, wc) = look(&c, &k(0, 0, 2));
    assert_eq!(wc.get(Field::Ipv6Dst), 0xff);
    assert_eq!(wc.get(Field::CtLabel), 1 | (1 << 127));
    assert_eq!(wc.get(Field::EthType), 0xffff);
}

#[test]
fn staged_lookup_wildcards_later_stages_on_early_miss() {
    let mut c = Classifier::new();
    let five = [
        IP,
        exact(Field::IpProto, 6),
        exact(Field::Ipv4Src, 0x0a00_0001),
        exact(Field::Ipv4Dst, 0x0a00_0002),
        exact(Field::TcpSrc, 1000),
        exact(Field::TcpDst, 80),
    ];
    let r = rule(10, &five);
    c.insert(r.clone());
    let k = |src: u128, sport: u128| {
        key(&[
            (Field::EthType, 0x0800),
            (Field::IpProto, 6),
            (Field::Ipv4Src, src),
            (Field::Ipv4Dst, 0x0a00_0002),
            (Field::TcpSrc, sport),
            (Field::TcpDst, 80),
        ])
    };
    // Hit: everything.
    let (got, wc) = look(&c, &k(0x0a00_0001, 1000));
    assert!(same(got, &r));
    assert_eq!(wc.get(Field::TcpSrc), 0xffff);
    // Miss at L4: everything too (the last stage is the full match).
    let (got, wc) = look(&c, &k(0x0a00_0001, 1001));
    assert!(got.is_none());
    assert_eq!(wc.get(Field::TcpSrc), 0xffff);
    // Miss at L3: the ports stay wildcarded.
    let (got, wc) = look(&c, &k(0x0a00_0009, 1000));
    assert!(got.is_none());
    assert_eq!(wc.get(Field::Ipv4Src), 0xffff_ffff);
    assert_eq!(wc.get(Field::IpProto), 0xff);
    assert_eq!(wc.get(Field::TcpSrc), 0);
    assert_eq!(wc.get(Field::TcpDst), 0);
    // Miss at L2 (not IPv4): only the ethertype.
    let (got, wc) = look(&c, &key(&[(Field::EthType, 0x0806)]));
    assert!(got.is_none());
    let mut only = FlowKey::zero();
    only.set(Field::EthType, 0xffff);
    assert_eq!(wc, only);
    // Removing the rule empties the stage sets with it.
    c.remove(&r.key, 10);
    c.insert(rule(
        10,
        &[IP, exact(Field::IpProto, 6), exact(Field::TcpDst, 80)],
    ));
    let (_, wc) = look(&c, &key(&[(Field::EthType, 0x86dd)]));
    assert_eq!(wc, only);
}

#[test]
fn registers_and_same_match_at_several_priorities() {
    let mut c = Classifier::new();
    let hi = rule(30, &[(Field::Reg(5), 0x10, 0xf0)]);
    let mid = rule(20, &[(Field::Reg(5), 0x10, 0xf0)]);
    let lo = rule(10, &[(Field::Reg(5), 0x10, 0xf0)]);
    let x = rule(25, &[exact(Field::Xreg(0), 0xdead_beef_0000_0001)]);
    for r in [&mid, &lo, &hi, &x] {
        c.insert(r.clone());
    }
    assert_eq!(c.n_subtables(), 2);
    let k = key(&[(Field::Reg(5), 0x1234_5617)]);
    assert!(same(look(&c, &k).0, &hi));
    c.remove(&hi.key, 30);
    assert!(same(look(&c, &k).0, &mid));
    // reg0/reg1 and xreg0 are the same bits.
    let k2 = key(&[
        (Field::Reg(0), 0xdead_beef),
        (Field::Reg(1), 1),
        (Field::Reg(5), 0x10),
    ]);
    assert!(same(look(&c, &k2).0, &x));
    c.remove(&mid.key, 20);
    assert!(same(look(&c, &k).0, &lo));
    assert!(c.find_exact(&lo.key, 10).is_some());
    assert!(c.find_exact(&lo.key, 11).is_none());
    // Replacement returns the old rule and keeps the count.
    let lo2 = rule(10, &[(Field::Reg(5), 0x10, 0xf0)]);
    assert!(c.insert(lo2.clone()).is_some_and(|o| Arc::ptr_eq(&o, &lo)));
    assert_eq!(c.len(), 2);
    assert!(same(look(&c, &k).0, &lo2));
}

#[test]
fn overlap() {
    let mut c = Classifier::new();
    c.insert(rule(10, &[IP, prefix(Field::Ipv4Dst, 0x0a00_0000, 8)]));
    c.insert(rule(10, &[exact(Field::InPort, 3)]));
    let ov = |prio, fields: &[(Field, u128, u128)]| {
        c.find_overlap(&rule(prio, fields).key, prio).is_some()
    };
    // Narrower, inside the /8.
    assert!(ov(10, &[IP, prefix(Field::Ipv4Dst, 0x0a01_0000, 16)]));
    // Broader: contains the /8.
    assert!(ov(10, &[IP]));
    // Identical.
    assert!(ov(10, &[IP, prefix(Field::Ipv4Dst, 0x0a00_0000, 8)]));
    // Disjoint on a shared field, and a different priority.
    assert!(!ov(
        10,
        &[
            IP,
            prefix(Field::Ipv4Dst, 0x0b00_0000, 8),
            exact(Field::InPort, 4)
        ]
    ));
    assert!(!ov(11, &[IP]));
    // Different fields always overlap (a packet can satisfy both).
    assert!(ov(10, &[exact(Field::TunId, 5)]));
}

#[test]
fn clones_are_independent() {
    let mut a = Classifier::new();
    let r1 = rule(1, &[exact(Field::InPort, 1)]);
    a.insert(r1.clone());
    let mut b = a.clone();
    let r2 = rule(2, &[exact(Field::InPort, 2)]);
    b.insert(r2);
    b.remove(&r1.key, 1);
    assert_eq!(a.len(), 1);
    assert!(same(look(&a, &key(&[(Field::InPort, 1)])).0, &r1));
    assert!(look(&a, &key(&[(Field::InPort, 2)])).0.is_none());
    assert!(look(&b, &key(&[(Field::InPort, 1)])).0.is_none());
    assert_eq!(b.len(), 1);
}

#[test]
fn within_selects_rules_at_least_as_specific() {
    let mut c = Classifier::new();
    let a = rule(1, &[IP, prefix(Field::Ipv4Dst, 0x0a01_0000, 16)]);
    let b = rule(1, &[IP, exact(Field::Ipv4Dst, 0x0a02_0001)]);
    let d = rule(1, &[IP]);
    let e = rule(1, &[(Field::EthType, 0x86dd, 0xffff)]);
    for r in [&a, &b, &d, &e] {
        c.insert(r.clone());
    }
    let f = rule(0, &[IP, prefix(Field::Ipv4Dst, 0x0a00_0000, 8)]);
    let mut got: Vec<_> = c.within(f.key).map(Arc::as_ptr).collect();
    got.sort();
    let mut want = vec![Arc::as_ptr(&a), Arc::as_ptr(&b)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(c.within(MaskedKey::default()).count(), 4);
}

// --- property test: the classifier agrees with a linear scan, and its megaflow is sound ---

/// Fields and the masks rules may use on them. Few bits per mask so random keys hit often; the
/// 128-bit fields get masks in either half and across both.
const MASKS: [(Field, [u128; 3]); 5] = [
    (Field::Reg(0), [0x3, 0x1, 0x6]),
    (Field::Reg(1), [0x3, 0x3, 0x1]),
    (Field::Ipv6Src, [3 << 126, 3, (1 << 127) | 1]),
    (Field::EthType, [0x3, 0x1, 0x2]),
    (Field::CtLabel, [1, 1 << 127, (1 << 64) | (1 << 63)]),
];

type RuleGen = (u16, [Option<(usize, u128)>; 5]);

fn rule_gen() -> impl Strategy<Value = RuleGen> {
    let f = || prop::option::weighted(0.4, (0usize..3, any::<u128>()));
    (0u16..4, [f(), f(), f(), f(), f()])
}

fn build(g: &RuleGen) -> Arc<Rule> {
    let fields: Vec<(Field, u128, u128)> =
        g.1.iter()
            .zip(MASKS.iter())
            .filter_map(|(c, (f, masks))| c.map(|(i, v)| (*f, v, masks[i])))
            .collect();
    rule(g.0, &fields)
}

fn key_gen() -> impl Strategy<Value = FlowKey> {
    prop::collection::vec(any::<u64>(), crate::key::KEY_WORDS).prop_map(|v| {
        let mut k = FlowKey::zero();
        k.w.copy_from_slice(&v);
        k
    })
}

/// The specification: the highest-priority matching rule, ties by [`mask_order`].
fn brute<'a>(rules: &'a [Arc<Rule>], k: &FlowKey) -> Option<&'a Arc<Rule>> {
    rules.iter().filter(|r| r.key.matches(k)).min_by(|a, b| {
        b.attrs
            .priority
            .cmp(&a.attrs.priority)
            .then_with(|| mask_order(&a.key.mask, &b.key.mask))
    })
}

fn check(c: &Classifier, reference: &[Arc<Rule>], k: &FlowKey, noise: &FlowKey) {
    let mut wc = FlowKey::zero();
    let got = c.lookup(k, &mut wc);
    let want = brute(reference, k);
    assert_eq!(got.map(Arc::as_ptr), want.map(Arc::as_ptr), "key {k:?}");
    // Any key equal to `k` on the wildcard-mask bits gets the same answer.
    let mut k2 = *k;
    for i in 0..k2.w.len() {
        k2.w[i] ^= noise.w[i] & !wc.w[i];
    }
    let want2 = brute(reference, &k2);
    assert_eq!(
        want.map(Arc::as_ptr),
        want2.map(Arc::as_ptr),
        "unsound megaflow {wc:?} for {k:?} vs {k2:?}"
    );
    let mut wc2 = FlowKey::zero();
    assert_eq!(
        c.lookup(&k2, &mut wc2).map(Arc::as_ptr),
        want2.map(Arc::as_ptr)
    );
}

/// Insert `rules` (checking replacement), check lookups, remove some, check again.
fn scenario(
    rules: Vec<Arc<Rule>>,
    removals: Vec<prop::sample::Index>,
    keys: Vec<(FlowKey, FlowKey)>,
) -> Result<(), TestCaseError> {
    let mut c = Classifier::new();
    let mut reference: Vec<Arc<Rule>> = Vec::new();
    for r in rules {
        let pos = reference
            .iter()
            .position(|o| o.key == r.key && o.attrs.priority == r.attrs.priority);
        let old = c.insert(r.clone());
        match pos {
            Some(i) => {
                let o = std::mem::replace(&mut reference[i], r);
                prop_assert!(old.is_some_and(|old| Arc::ptr_eq(&old, &o)));
            }
            None => {
                prop_assert!(old.is_none());
                reference.push(r);
            }
        }
    }
    prop_assert_eq!(c.len(), reference.len());
    // Keys built from rule values hit often; the random ones mostly test misses.
    let mut all_keys: Vec<(FlowKey, FlowKey)> = keys.clone();
    for (r, (noise, _)) in reference.iter().zip(keys.iter().cycle()) {
        let mut k = *noise;
        for i in 0..k.w.len() {
            k.w[i] = (k.w[i] & !r.key.mask.w[i]) | r.key.value.w[i];
        }
        all_keys.push((k, *noise));
    }
    for (k, noise) in &all_keys {
        check(&c, &reference, k, noise);
    }
    let snapshot = c.clone();
    let before = reference.clone();
    for ix in removals {
        if reference.is_empty() {
            break;
        }
        let r = reference.swap_remove(ix.index(reference.len()));
        let removed = c.remove(&r.key, r.attrs.priority);
        prop_assert!(removed.is_some_and(|x| Arc::ptr_eq(&x, &r)));
    }
    prop_assert_eq!(c.len(), reference.len());
    for (k, noise) in &all_keys {
        check(&c, &reference, k, noise);
        // The copy taken before the removals still answers as before.
        check(&snapshot, &before, k, noise);
    }
    Ok(())
}

/// Few masks, many values: large multi-stage subtables (several shards under test).
fn dense_rule_gen() -> impl Strategy<Value = Arc<Rule>> {
    (0u16..3, any::<bool>(), 0u128..64, 0u128..4, 0u128..16).prop_map(|(p, which, a, b, c)| {
        if which {
            rule(p, &[(Field::Reg(0), a, 0x3f), (Field::EthType, b, 0x3)])
        } else {
            rule(
                p,
                &[
                    (Field::Reg(1), c, 0xf),
                    (Field::EthType, b, 0x3),
                    (Field::Ipv6Src, a, 0x3f),
                ],
            )
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_linear_scan(
        gens in prop::collection::vec(rule_gen(), 0..40),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        keys in prop::collection::vec((key_gen(), key_gen()), 1..24),
    ) {
        scenario(gens.iter().map(build).collect(), removals, keys)?;
    }

    #[test]
    fn matches_linear_scan_dense(
        rules in prop::collection::vec(dense_rule_gen(), 0..150),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..100),
        keys in prop::collection::vec((key_gen(), key_gen()), 1..24),
    ) {
        scenario(rules, removals, keys)?;
    }
}
