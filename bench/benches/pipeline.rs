//! Pipeline translation and action execution, per packet.
//!
//! A 5-table pipeline shaped like a small router/firewall:
//!   0: classify by in_port (sets reg0), goto 10
//!  10: ACL, 300 (or 0) drop rules on (nw_src, tcp_dst) that the packet misses, default goto 20
//!  20: L3 rewrite: DNAT by set_field ip_dst + dec_ttl, goto 30
//!  30: L2 rewrite: set eth_src/eth_dst, goto 40
//!  40: output by reg0
//!
//! `xlate` is the slow path only (what a cache miss costs), `execute` the per-packet work
//! behind a cache hit, `xlate+execute` both.

use control::flow::ast::{Action, FlowSpec, Match, OutputPort, Subfield};
use control::flow::field::Field;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dataplane::execute::testutil::{extract_at_port, tcp4_frame};
use dataplane::execute::{execute, PacketBuf};
use dataplane::flowtable::{Pipeline, Rule};
use dataplane::xlate::{xlate, XlateCtx, XlateOutput};

fn flow(table: u8, priority: u16, m: &[(Field, u128, u128)], actions: Vec<Action>) -> FlowSpec {
    let mut matches = Match::new();
    for &(f, v, mask) in m {
        matches.set(f, v, mask);
    }
    FlowSpec::new(table, priority, matches, actions)
}

fn set(field: Field, value: u128) -> Action {
    Action::SetField {
        field,
        value,
        mask: field.full_mask(),
    }
}

fn pipeline(n_acl: u32) -> Pipeline {
    let all = u128::MAX;
    let mut specs = Vec::new();
    for port in 1..=8u32 {
        specs.push(flow(
            0,
            100,
            &[(Field::InPort, port.into(), all)],
            vec![
                Action::Load {
                    value: u128::from(port % 4 + 1),
                    dst: Subfield::whole(Field::Reg(0)),
                },
                Action::GotoTable(10),
            ],
        ));
    }
    for i in 0..n_acl {
        specs.push(flow(
            10,
            1000,
            &[
                (Field::EthType, 0x0800, all),
                (Field::IpProto, 6, all),
                (Field::Ipv4Src, u128::from(0x0a63_0000 + i), all),
                (Field::TcpDst, u128::from(1000 + i % 50), all),
            ],
            vec![Action::Drop],
        ));
    }
    specs.push(flow(10, 1, &[], vec![Action::GotoTable(20)]));
    specs.push(flow(
        20,
        1024,
        &[
            (Field::EthType, 0x0800, all),
            (Field::Ipv4Dst, 0xc0a8_6f00, 0xffff_ff00),
        ],
        vec![
            set(Field::Ipv4Dst, 0x5858_5804),
            Action::DecTtl,
            Action::GotoTable(30),
        ],
    ));
    specs.push(flow(
        30,
        10,
        &[],
        vec![
            set(Field::EthSrc, 0xfa16_3e74_dbc7),
            set(Field::EthDst, 0x2cab_009a_0437),
            Action::GotoTable(40),
        ],
    ));
    for r in 1..=4u32 {
        specs.push(flow(
            40,
            10,
            &[(Field::Reg(0), r.into(), all)],
            vec![Action::Output(OutputPort::Port(r + 10))],
        ));
    }
    let mut e = Pipeline::default().edit();
    for s in &specs {
        e.insert(Rule::from_spec(s, 0));
    }
    e.finish()
}

fn bench(c: &mut Criterion) {
    let p = pipeline(300);
    let small = pipeline(0);
    let frame = tcp4_frame([10, 0, 0, 5], [192, 168, 111, 223], 40000, 22, 0);
    let (key, layout) = extract_at_port(&frame, 3).expect("frame parses");
    let ports = [1, 2, 3, 4, 5, 6, 7, 8];
    let ctx = XlateCtx {
        pipeline: &p,
        ports: &ports,
        now_ms: 0,
        packet_len: frame.len() as u64,
    };
    let mut out = XlateOutput::new();
    xlate(&ctx, &key, &mut out);
    assert!(out.drop_reason.is_none(), "{:?}", out.drop_reason);
    assert_eq!(out.actions.len(), 3, "{:?}", out.actions);
    let actions = out.actions.clone();

    let ctx_small = XlateCtx {
        pipeline: &small,
        ..ctx
    };
    c.bench_function("xlate/5-table, no ACL rules", |b| {
        b.iter(|| {
            xlate(&ctx_small, black_box(&key), &mut out);
            black_box(out.actions.len())
        })
    });

    c.bench_function("xlate/5-table, 300-rule ACL", |b| {
        b.iter(|| {
            xlate(&ctx, black_box(&key), &mut out);
            black_box(out.actions.len())
        })
    });

    let mut buf = PacketBuf::from_frame(&frame);
    c.bench_function("execute/tcp4 set eth+ipv4(dst,ttl)+output", |b| {
        b.iter(|| {
            buf.reset(black_box(&frame));
            let mut n = 0usize;
            execute(
                &actions,
                &mut buf,
                layout,
                &key,
                &mut |_, f: &mut PacketBuf| n += f.len(),
            )
            .unwrap();
            black_box(n)
        })
    });

    c.bench_function("xlate+execute/5-table, 300-rule ACL, tcp4", |b| {
        b.iter(|| {
            xlate(&ctx, black_box(&key), &mut out);
            buf.reset(black_box(&frame));
            let mut n = 0usize;
            execute(
                &out.actions,
                &mut buf,
                layout,
                &key,
                &mut |_, f: &mut PacketBuf| n += f.len(),
            )
            .unwrap();
            black_box(n)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
