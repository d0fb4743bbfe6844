use super::*;
use crate::flowtable::Rule;
use control::flow::ast::{ControllerAction, CtAction, CtZoneSrc, FlowSpec, Match};

pub(crate) fn spec(
    table: u8,
    priority: u16,
    m: &[(Field, u128)],
    actions: Vec<Action>,
) -> FlowSpec {
    FlowSpec::new(table, priority, m.iter().copied().collect(), actions)
}

pub(crate) fn pipeline(specs: &[FlowSpec]) -> Pipeline {
    let mut e = Pipeline::default().edit();
    for s in specs {
        e.insert(Rule::from_spec(s, 0));
    }
    e.finish()
}

pub(crate) fn run_ports(p: &Pipeline, key: &FlowKey, ports: &[u32]) -> XlateOutput {
    let ctx = XlateCtx {
        pipeline: p,
        ports,
        now_ms: 1000,
        packet_len: 60,
    };
    let mut out = XlateOutput::new();
    xlate(&ctx, key, &mut out);
    // The traced translation must agree with the untraced one.
    let mut out2 = XlateOutput::new();
    let t = xlate_trace(&ctx, key, &mut out2);
    assert_eq!(out.actions, out2.actions);
    assert_eq!(out.wc, out2.wc);
    assert_eq!(out.drop_reason, out2.drop_reason);
    assert_eq!(t.actions, out.actions);
    out
}

pub(crate) fn run(p: &Pipeline, key: &FlowKey) -> XlateOutput {
    run_ports(p, key, &[])
}

pub(crate) fn tcp_key(in_port: u32, src: u32, dst: u32, sport: u16, dport: u16) -> FlowKey {
    let mut k = FlowKey::zero();
    k.set(Field::InPort, in_port.into());
    k.set(Field::EthSrc, 0x0200_0000_0002);
    k.set(Field::EthDst, 0x0200_0000_0001);
    k.set(Field::EthType, 0x0800);
    k.set(Field::IpProto, 6);
    k.set(Field::IpTtl, 64);
    k.set(Field::Ipv4Src, src.into());
    k.set(Field::Ipv4Dst, dst.into());
    k.set(Field::TcpSrc, sport.into());
    k.set(Field::TcpDst, dport.into());
    k
}

fn out(p: u32) -> Action {
    Action::Output(OutputPort::Port(p))
}

fn set(field: Field, value: u128) -> Action {
    Action::SetField {
        field,
        value,
        mask: field.full_mask(),
    }
}

fn sf(field: Field, ofs: u8, n_bits: u8) -> Subfield {
    Subfield { field, ofs, n_bits }
}

#[test]
fn goto_chain_counts_rules() {
    let p = pipeline(&[
        spec(0, 10, &[], vec![Action::GotoTable(10)]),
        spec(10, 10, &[], vec![Action::GotoTable(20)]),
        spec(20, 10, &[], vec![out(2)]),
    ]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.actions, vec![DpAction::Output(2)]);
    assert_eq!(o.stats.lookups, 3);
    assert_eq!(o.rules.len(), 3);
    assert_eq!(o.drop_reason, None);
    // Run twice (xlate + xlate_trace): only the untraced run counts.
    for r in &o.rules {
        assert_eq!(r.packets.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(r.bytes.load(std::sync::atomic::Ordering::Relaxed), 60);
        assert_eq!(
            r.last_used_ms.load(std::sync::atomic::Ordering::Relaxed),
            1000
        );
    }
}

#[test]
fn resubmit_changes_in_port_temporarily() {
    let p = pipeline(&[
        spec(
            0,
            10,
            &[(Field::InPort, 1)],
            vec![
                Action::Resubmit {
                    port: Some(5),
                    table: Some(10),
                },
                out(5),
            ],
        ),
        spec(
            10,
            10,
            &[(Field::InPort, 5)],
            vec![
                Action::Load {
                    value: 7,
                    dst: Subfield::whole(Field::Reg(0)),
                },
                out(5), // skipped: in_port is 5 inside the resubmit
                out(2),
            ],
        ),
    ]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.actions, vec![DpAction::Output(2), DpAction::Output(5)]);
    assert_eq!(o.final_key.get(Field::InPort), 1);
    assert_eq!(o.final_key.get(Field::Reg(0)), 7);
    assert_eq!(o.stats.resubmits, 1);
    assert_eq!(o.stats.max_depth, 1);
}

#[test]
fn resubmit_loop_drops() {
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            out(3),
            Action::Resubmit {
                port: None,
                table: None,
            },
        ],
    )]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.drop_reason, Some(DropReason::ResubmitLoop));
    assert!(o.actions.is_empty());
    assert_eq!(o.stats.max_depth, MAX_DEPTH);
}

#[test]
fn exponential_resubmit_is_bounded() {
    let r = Action::Resubmit {
        port: None,
        table: Some(1),
    };
    let p = pipeline(&[
        spec(0, 10, &[], vec![r.clone()]),
        spec(1, 10, &[], vec![r.clone(), r]),
    ]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert!(matches!(
        o.drop_reason,
        Some(DropReason::TooManyResubmits | DropReason::ResubmitLoop)
    ));
    assert!(o.stats.lookups <= MAX_LOOKUPS + 1);
}

#[test]
fn goto_backward_or_same_drops() {
    let p = pipeline(&[
        spec(0, 10, &[], vec![Action::GotoTable(5)]),
        spec(5, 10, &[], vec![out(2), Action::GotoTable(3)]),
    ]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.drop_reason, Some(DropReason::GotoBackward));
    assert!(o.actions.is_empty());
    let p = pipeline(&[spec(0, 10, &[], vec![Action::GotoTable(0)])]);
    assert_eq!(
        run(&p, &tcp_key(1, 1, 2, 3, 4)).drop_reason,
        Some(DropReason::GotoBackward)
    );
}

#[test]
fn table_miss_and_no_output() {
    let p = pipeline(&[]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.drop_reason, Some(DropReason::TableMiss));
    assert_eq!(o.stats.misses, 1);
    let p = pipeline(&[spec(0, 10, &[], vec![])]);
    assert_eq!(
        run(&p, &tcp_key(1, 1, 2, 3, 4)).drop_reason,
        Some(DropReason::NoOutput)
    );
    let p = pipeline(&[spec(0, 10, &[], vec![Action::Drop, out(2)])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.drop_reason, Some(DropReason::NoOutput));
    assert!(o.actions.is_empty());
    // A miss in a resubmit is not the end: the caller continues.
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            Action::Resubmit {
                port: None,
                table: Some(9),
            },
            out(2),
        ],
    )]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.actions, vec![DpAction::Output(2)]);
    assert_eq!(o.drop_reason, None);
}

#[test]
fn registers_travel_across_tables() {
    let p = pipeline(&[
        spec(
            0,
            10,
            &[],
            vec![
                Action::Load {
                    value: 0x43e,
                    dst: Subfield::whole(Field::Reg(3)),
                },
                set(Field::Metadata, 0xabc),
                Action::GotoTable(1),
            ],
        ),
        spec(
            1,
            10,
            &[(Field::Reg(3), 0x43e), (Field::Metadata, 0xabc)],
            vec![out(9)],
        ),
        spec(1, 5, &[], vec![out(8)]),
    ]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.actions, vec![DpAction::Output(9)]);
}

#[test]
fn move_and_load_across_word_boundaries() {
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            // Bits 56..72 of ipv6_src straddle the two words of the 128-bit field.
            Action::Load {
                value: 0xbeef,
                dst: sf(Field::Ipv6Src, 56, 16),
            },
            Action::Move {
                src: sf(Field::Ipv6Src, 56, 16),
                dst: sf(Field::Reg(0), 8, 16),
            },
            // Whole 128-bit move.
            Action::Load {
                value: u128::MAX - 5,
                dst: Subfield::whole(Field::CtLabel),
            },
            Action::Move {
                src: Subfield::whole(Field::CtLabel),
                dst: Subfield::whole(Field::Ipv6Dst),
            },
            // Register pair (xreg) spans reg0/reg1.
            Action::Load {
                value: 0x1_2345_6789,
                dst: sf(Field::Xreg(0), 0, 40),
            },
            // Overlapping move inside one field: read before write.
            Action::Move {
                src: sf(Field::Reg(5), 0, 16),
                dst: sf(Field::Reg(5), 8, 16),
            },
        ],
    )]);
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(Field::Reg(5), 0x1234);
    let o = run(&p, &k);
    let f = o.final_key;
    assert_eq!(f.get(Field::Ipv6Src), 0xbeef << 56);
    assert_eq!(f.get(Field::Ipv6Dst), u128::MAX - 5);
    assert_eq!(f.get(Field::Reg(1)), 0x2345_6789);
    assert_eq!(f.get(Field::Reg(0)), 0xbe_ef01);
    assert_eq!(f.get(Field::Reg(5)), 0x12_3434);
    // The move source is in the megaflow mask.
    assert_eq!(o.wc.get(Field::CtLabel), u128::MAX);
    // An out-of-range subfield is an invalid action, not a panic.
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![Action::Load {
            value: 1,
            dst: sf(Field::Reg(0), 30, 8),
        }],
    )]);
    assert_eq!(run(&p, &k).drop_reason, Some(DropReason::InvalidAction));
}

#[test]
fn output_to_in_port_needs_in_port() {
    let p = pipeline(&[spec(0, 10, &[], vec![out(1), out(2)])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.actions, vec![DpAction::Output(2)]);
    let p = pipeline(&[spec(0, 10, &[], vec![Action::Output(OutputPort::InPort)])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.actions, vec![DpAction::Output(1)]);
    assert_eq!(o.wc.get(Field::InPort), 0xffff_ffff);
    // Output to a port read from a register.
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            Action::Load {
                value: 7,
                dst: sf(Field::Reg(2), 0, 16),
            },
            Action::Output(OutputPort::Field(sf(Field::Reg(2), 0, 16))),
            Action::Output(OutputPort::Local),
        ],
    )]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(
        o.actions,
        vec![DpAction::Output(7), DpAction::Output(OFPP_LOCAL)]
    );
}

#[test]
fn flood_excludes_in_port() {
    for port in [OutputPort::Flood, OutputPort::All] {
        let p = pipeline(&[spec(0, 10, &[], vec![Action::Output(port)])]);
        let o = run_ports(&p, &tcp_key(2, 1, 2, 3, 4), &[1, 2, 3, 4]);
        assert_eq!(
            o.actions,
            vec![
                DpAction::Output(1),
                DpAction::Output(3),
                DpAction::Output(4)
            ]
        );
    }
}

#[test]
fn dec_ttl_at_one_drops_and_stops() {
    let p = pipeline(&[spec(0, 10, &[], vec![Action::DecTtl, out(2)])]);
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(Field::IpTtl, 1);
    let o = run(&p, &k);
    assert_eq!(o.drop_reason, Some(DropReason::TtlExceeded));
    assert!(o.actions.is_empty());
    k.set(Field::IpTtl, 0);
    assert_eq!(run(&p, &k).drop_reason, Some(DropReason::TtlExceeded));
    k.set(Field::IpTtl, 2);
    let o = run(&p, &k);
    assert_eq!(
        o.actions,
        vec![
            DpAction::SetIpv4 {
                src: None,
                dst: None,
                tos: None,
                ttl: Some(1)
            },
            DpAction::Output(2)
        ]
    );
    assert_eq!(o.wc.get(Field::IpTtl), 0xff);
    // Non-IP: no-op.
    let mut arp = FlowKey::zero();
    arp.set(Field::EthType, 0x0806);
    assert_eq!(run(&p, &arp).actions, vec![DpAction::Output(2)]);
}

#[test]
fn dec_ttl_failure_keeps_earlier_outputs() {
    // OpenFlow: outputs before a failed dec_ttl happened; nothing after it runs.
    let p = pipeline(&[spec(0, 10, &[], vec![out(2), Action::DecTtl, out(3)])]);
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(Field::IpTtl, 1);
    let o = run(&p, &k);
    assert_eq!(o.actions, vec![DpAction::Output(2)]);
    assert_eq!(o.drop_reason, Some(DropReason::TtlExceeded));
}

#[test]
fn reserved_port_numbers() {
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            out(OFPP_IN_PORT),
            out(OFPP_FLOOD),
            out(OFPP_CONTROLLER),
            out(OFPP_LOCAL),
        ],
    )]);
    let o = run_ports(&p, &tcp_key(1, 1, 2, 3, 4), &[1, 2]);
    assert_eq!(
        o.actions,
        vec![
            DpAction::Output(1),
            DpAction::Output(2),
            DpAction::Controller {
                reason: ControllerReason::Action,
                max_len: u16::MAX,
                id: 0
            },
            DpAction::Output(OFPP_LOCAL),
        ]
    );
    let p = pipeline(&[spec(0, 10, &[], vec![out(0xffff_ffff)])]);
    assert_eq!(
        run(&p, &tcp_key(1, 1, 2, 3, 4)).drop_reason,
        Some(DropReason::InvalidAction)
    );
    let p = pipeline(&[spec(0, 10, &[], vec![Action::GotoTable(255)])]);
    assert_eq!(
        run(&p, &tcp_key(1, 1, 2, 3, 4)).drop_reason,
        Some(DropReason::InvalidAction)
    );
}

#[test]
fn commit_emits_only_changed_fields() {
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            set(Field::Ipv4Dst, 2), // same as the packet: nothing to emit
            set(Field::EthSrc, 0x0a0b_0c0d_0e0f),
            set(Field::TcpDst, 4), // same
            set(Field::Reg(1), 5), // metadata: never emitted
            out(2),
        ],
    )]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(
        o.actions,
        vec![
            DpAction::SetEth {
                src: Some([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]),
                dst: None
            },
            DpAction::Output(2)
        ]
    );
    // The written fields are in the megaflow mask (the result depends on their old value).
    assert_eq!(o.wc.get(Field::Ipv4Dst), 0xffff_ffff);
    assert_eq!(o.wc.get(Field::TcpDst), 0xffff);
}

#[test]
fn set_between_two_outputs_emitted_once() {
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            out(2),
            set(Field::Ipv4Dst, 0x5858_5804),
            set(Field::TcpSrc, 1000),
            out(3),
            out(4),
        ],
    )]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(
        o.actions,
        vec![
            DpAction::Output(2),
            DpAction::SetIpv4 {
                src: None,
                dst: Some(0x5858_5804),
                tos: None,
                ttl: None
            },
            DpAction::SetL4Ports {
                proto: 6,
                src: Some(1000),
                dst: None
            },
            DpAction::Output(3),
            DpAction::Output(4),
        ]
    );
}

#[test]
fn megaflow_includes_consulted_fields() {
    let mut m = Match::new();
    m.set(Field::Ipv4Dst, 0x0a00_0000, 0xff00_0000);
    m.set_exact(Field::EthType, 0x0800);
    let mut s = spec(0, 10, &[(Field::InPort, 1)], vec![out(2)]);
    s.matches = m.clone();
    s.matches.set_exact(Field::InPort, 1);
    let p = pipeline(&[s]);
    let k = tcp_key(1, 1, 0x0a01_0203, 3, 4);
    let o = run(&p, &k);
    assert_eq!(o.actions, vec![DpAction::Output(2)]);
    assert_eq!(o.wc.get(Field::Ipv4Dst), 0xff00_0000);
    assert_eq!(o.wc.get(Field::InPort), 0xffff_ffff);
    assert_eq!(o.wc.get(Field::Ipv4Src), 0);
    assert_eq!(o.wc.get(Field::TcpDst), 0);
}

#[test]
fn vlan_push_set_pop() {
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            Action::PushVlan(0x8100),
            set(Field::VlanTci, 0x1000 | 0x2000 | 10),
            out(2),
            Action::PopVlan,
            out(3),
        ],
    )]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(
        o.actions,
        vec![
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 0x2000 | 10
            },
            DpAction::Output(2),
            DpAction::PopVlan,
            DpAction::Output(3),
        ]
    );
    // Push on a tagged packet: the frame catches up, the inner tag is kept.
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            Action::PushVlan(0x88a8),
            set(Field::VlanTci, 0x1000 | 5),
            out(2),
            Action::PopVlan,
            out(3),
        ],
    )]);
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(Field::VlanTci, 0x1000 | 7);
    let o = run(&p, &k);
    assert_eq!(
        o.actions,
        vec![
            DpAction::PushVlan {
                tpid: 0x88a8,
                tci: 0
            },
            DpAction::SetVlanTci(5),
            DpAction::Output(2),
            DpAction::PopVlan,
            DpAction::Output(3),
        ]
    );
    assert_eq!(o.final_key.get(Field::VlanTci), 0x1000 | 7);
}

#[test]
fn controller_normal_unsupported() {
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![
            Action::Controller(ControllerAction {
                max_len: 128,
                reason: Some("no_match".into()),
                id: 3,
            }),
            Action::Output(OutputPort::Normal),
            Action::Note(vec![1, 2]),
        ],
    )]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(
        o.actions,
        vec![
            DpAction::Controller {
                reason: ControllerReason::NoMatch,
                max_len: 128,
                id: 3
            },
            DpAction::Normal
        ]
    );
    assert_eq!(o.stats.controller, 1);
    assert_eq!(o.drop_reason, None);
    let p = pipeline(&[spec(0, 10, &[], vec![out(2), Action::Group(1)])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.drop_reason, Some(DropReason::Unsupported));
    assert!(o.actions.is_empty());
}

#[test]
fn ct_clear_zeroes_conntrack_fields() {
    let p = pipeline(&[spec(0, 10, &[], vec![Action::CtClear, out(2)])]);
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(Field::CtState, 0x21);
    k.set(Field::CtMark, 9);
    k.set(Field::CtZone, 3);
    k.set(Field::CtLabel, 77);
    let o = run(&p, &k);
    for f in [Field::CtState, Field::CtMark, Field::CtZone, Field::CtLabel] {
        assert_eq!(o.final_key.get(f), 0);
    }
}

#[test]
fn dpaction_is_small() {
    assert!(std::mem::size_of::<DpAction>() <= 24);
}

#[test]
fn drop_reason_names_are_unique() {
    let names: std::collections::HashSet<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), DropReason::ALL.len());
}

/// Seed scenario (b) traced: table 30 rewrites the destination and goes to table 40 (which
/// has only a rule for in_port=7: miss).
#[test]
fn trace_renders_like_ofproto_trace() {
    let mut m30 = Match::new();
    m30.set_exact(Field::EthType, 0x0800);
    m30.set_exact(Field::InPort, 5);
    m30.set_exact(Field::Ipv4Dst, 0xc0a8_6fdf);
    let p = pipeline(&[
        spec(0, 0, &[], vec![Action::GotoTable(30)]),
        FlowSpec {
            matches: m30,
            ..spec(
                30,
                1024,
                &[],
                vec![
                    set(Field::Ipv4Dst, 0x5858_5804),
                    Action::Load {
                        value: 0x43e,
                        dst: Subfield::whole(Field::Reg(3)),
                    },
                    Action::GotoTable(40),
                ],
            )
        },
        spec(
            40,
            36001,
            &[(Field::InPort, 7)],
            vec![Action::GotoTable(50)],
        ),
    ]);
    let k = tcp_key(5, 0xc0a8_6fd2, 0xc0a8_6fdf, 17350, 22);
    let ctx = XlateCtx {
        pipeline: &p,
        ports: &[],
        now_ms: 0,
        packet_len: 74,
    };
    let mut o = XlateOutput::new();
    let mut t = xlate_trace(&ctx, &k, &mut o);
    t.bridge = "br-int".into();
    assert_eq!(o.final_key.get(Field::Ipv4Dst), 0x5858_5804);
    assert_eq!(o.final_key.get(Field::Reg(3)), 0x43e);
    assert_eq!(o.drop_reason, Some(DropReason::TableMiss));
    let text = t.render(|m| format!("{} fields", m.len()), |a| format!("{a:?}"));
    assert!(
        text.contains("bridge(\"br-int\")\n----------------\n"),
        "{text}"
    );
    assert!(text.contains("30. 3 fields, priority 1024\n"), "{text}");
    assert!(
        text.contains("     ip_dst: 192.168.111.223 -> 88.88.88.4\n"),
        "{text}"
    );
    assert!(text.contains("     reg3: 0x0 -> 0x43e\n"), "{text}");
    assert!(text.contains("40. No match (table miss).\n"), "{text}");
    assert!(
        text.contains("Datapath actions: drop (drop reason: table_miss)"),
        "{text}"
    );
    // Serializable.
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains("\"kind\":\"table\""), "{json}");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const FIELDS: [Field; 14] = [
        Field::InPort,
        Field::Reg(0),
        Field::Reg(1),
        Field::Metadata,
        Field::EthSrc,
        Field::EthDst,
        Field::VlanTci,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::IpTtl,
        Field::TcpSrc,
        Field::TcpDst,
        Field::Ipv6Src,
        Field::TunId,
    ];

    fn field() -> impl Strategy<Value = Field> {
        (0..FIELDS.len()).prop_map(|i| FIELDS[i])
    }

    fn subfield() -> impl Strategy<Value = Subfield> {
        (field(), 0u8..140, 0u8..140).prop_map(|(field, ofs, n_bits)| Subfield {
            field,
            ofs,
            n_bits,
        })
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (0u32..6).prop_map(|p| Action::Output(OutputPort::Port(p))),
            Just(Action::Output(OutputPort::InPort)),
            Just(Action::Output(OutputPort::Flood)),
            Just(Action::Output(OutputPort::Normal)),
            subfield().prop_map(|s| Action::Output(OutputPort::Field(s))),
            (field(), any::<u128>(), any::<u128>()).prop_map(|(field, value, mask)| {
                Action::SetField {
                    field,
                    value: value & field.full_mask(),
                    mask: mask & field.full_mask(),
                }
            }),
            (any::<u128>(), subfield()).prop_map(|(value, dst)| Action::Load { value, dst }),
            (subfield(), subfield()).prop_map(|(src, dst)| Action::Move { src, dst }),
            Just(Action::DecTtl),
            Just(Action::PushVlan(0x8100)),
            Just(Action::PopVlan),
            Just(Action::CtClear),
            (0u8..6).prop_map(Action::GotoTable),
            (proptest::option::of(0u32..6), proptest::option::of(0u8..6))
                .prop_map(|(port, table)| Action::Resubmit { port, table }),
            Just(Action::Group(1)),
            Just(Action::FipDnat),
            Just(Action::FipSnat),
            Just(Action::FipArp),
        ]
    }

    fn rule() -> impl Strategy<Value = FlowSpec> {
        (
            0u8..6,
            0u16..4,
            proptest::option::of((0u32..6, field(), any::<u128>())),
            proptest::collection::vec(action(), 0..6),
        )
            .prop_map(|(table, prio, m, actions)| {
                let mut s = spec(table, prio, &[], actions);
                if let Some((p, f, v)) = m {
                    s.matches.set_exact(Field::InPort, p.into());
                    s.matches.set(f, v, 0xff);
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn random_pipelines_never_panic(
            rules in proptest::collection::vec(rule(), 0..12),
            in_port in 0u32..6,
            ttl in 0u8..4,
            sport in any::<u16>(),
            tci in any::<u16>(),
        ) {
            // With a FIP for the key's destination whose fixed IP is its source, so the fip_*
            // actions translate (and their mask bits are checked below too).
            let mut e = pipeline(&rules).edit();
            e.set_fips(std::sync::Arc::new(
                crate::xlate::FipTable::new(vec![crate::xlate::FipEntry {
                    fip: [10, 0, 0, 2].into(),
                    fixed: [10, 0, 0, 1].into(),
                    mac: Some([2, 0, 0, 0, 0, 9]),
                    owned: true,
                    claim: "standalone".into(),
                    stats: Default::default(),
                }])
                .unwrap(),
            ));
            let p = e.finish();
            let mut k = tcp_key(in_port, 0x0a000001, 0x0a000002, sport, 80);
            k.set(Field::IpTtl, ttl.into());
            k.set(Field::VlanTci, tci.into());
            let o = run_ports(&p, &k, &[0, 1, 2, 3, 4, 5]);
            prop_assert!(o.actions.len() <= MAX_DP_ACTIONS);
            prop_assert!(o.stats.max_depth <= MAX_DEPTH);
            // The megaflow mask covers everything the classifier consulted: any key that
            // agrees on those bits translates identically.
            let mut k2 = k;
            for i in 0..crate::key::KEY_WORDS {
                k2.w[i] = (k.w[i] & o.wc.w[i]) | (!k.w[i] & !o.wc.w[i] & 0x5555_5555_5555_5555);
            }
            let o2 = run_ports(&p, &k2, &[0, 1, 2, 3, 4, 5]);
            prop_assert_eq!(o.drop_reason, o2.drop_reason);
            prop_assert_eq!(&o.actions, &o2.actions);
        }
    }
}

#[test]
fn trace_indents_resubmits_and_shows_outputs() {
    let p = pipeline(&[
        spec(
            0,
            100,
            &[(Field::InPort, 1)],
            vec![
                Action::Resubmit {
                    port: Some(9),
                    table: Some(5),
                },
                set(Field::Ipv4Src, 0x0a00_0009),
                out(2),
            ],
        ),
        spec(
            5,
            7,
            &[(Field::InPort, 9)],
            vec![out(9), Action::Output(OutputPort::Normal)],
        ),
    ]);
    let ctx = XlateCtx {
        pipeline: &p,
        ports: &[],
        now_ms: 0,
        packet_len: 60,
    };
    let mut o = XlateOutput::new();
    let mut t = xlate_trace(&ctx, &tcp_key(1, 1, 2, 3, 4), &mut o);
    t.bridge = "br0".into();
    let text = t.render(
        |m| {
            m.iter()
                .map(|(f, e)| format!("{}={}", f.info().name, trace::fmt_value(f, e.value)))
                .collect::<Vec<_>>()
                .join(",")
        },
        |a| format!("{a:?}"),
    );
    let expect = [
        "bridge(\"br0\")\n-------------\n",
        " 0. in_port=1, priority 100\n",
        "    [Resubmit { port: Some(9), table: Some(5) }]\n     5. in_port=9, priority 7\n",
        "\n         >> skipped: output to the input port (use IN_PORT)\n",
        "\n         >> normal: the MAC learning table decides per packet (see fdb-show)\n",
        "     ip_src: 0.0.0.1 -> 10.0.0.9\n",
        "     -> set(ipv4(src=10.0.0.9)),2\n",
        "Datapath actions: normal,set(ipv4(src=10.0.0.9)),2\n",
    ];
    for e in expect {
        assert!(text.contains(e), "missing {e:?} in\n{text}");
    }
}

fn ct_action(commit: bool, zone: Option<CtZoneSrc>, table: Option<u8>) -> Action {
    Action::Ct(CtAction {
        commit,
        force: false,
        zone,
        table,
        alg: None,
        nat: None,
        exec: Vec::new(),
    })
}

#[test]
fn every_translation_marks_the_recirc_id() {
    let p = pipeline(&[spec(0, 10, &[], vec![out(2)])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.wc.w[RECIRC_WORD] & 0xffff_ffff, 0xffff_ffff);
}

#[test]
fn ct_emits_dp_ct_after_committing_rewrites() {
    let mut ct = ct_action(true, Some(CtZoneSrc::Value(5)), Some(1));
    if let Action::Ct(c) = &mut ct {
        c.exec = vec![
            Action::SetField {
                field: Field::CtMark,
                value: 0x10,
                mask: 0xf0,
            },
            Action::Load {
                value: 1,
                dst: sf(Field::CtLabel, 64, 1),
            },
        ];
    }
    let p = pipeline(&[spec(0, 10, &[], vec![set(Field::IpTtl, 9), ct])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(
        o.actions,
        vec![
            DpAction::SetIpv4 {
                src: None,
                dst: None,
                tos: None,
                ttl: Some(9)
            },
            DpAction::Ct {
                zone: 5,
                commit: true,
                recirc: Some(recirc_id(1)),
                again: false
            },
            DpAction::CtSetMark {
                value: 0x10,
                mask: 0xf0
            },
            DpAction::CtSetLabel {
                high: true,
                value: 1,
                mask: 1
            },
        ]
    );
    // Recirculating is not a drop.
    assert_eq!(o.drop_reason, None);
    assert_eq!(recirc_table(recirc_id(1)), Some(1));
    assert_eq!(recirc_table(0), None);
    assert_eq!(
        super::DpActions(&o.actions).to_string(),
        "set(ipv4(ttl=9)),ct(commit,zone=5),recirc(0x2),ct_mark(0x10/0xf0),ct_label_hi(0x1/0x1)"
    );
}

/// `ct(commit)` in a pass recirculated by `ct(table=)` of the same zone: the packet was tracked
/// already, and the datapath action says so (conntrack then does not track it twice). Another
/// zone, or after `ct_clear`, it is tracked afresh. The decision joins the megaflow mask.
#[test]
fn ct_in_a_recirculated_pass_of_its_zone_is_marked_again() {
    let commit = |z: u16| ct_action(true, Some(CtZoneSrc::Value(z)), None);
    let again_of = |o: &XlateOutput| {
        o.actions.iter().find_map(|a| match a {
            DpAction::Ct { again, .. } => Some(*again),
            _ => None,
        })
    };
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(
        Field::CtState,
        u128::from(conntrack::ct_state::TRK | conntrack::ct_state::NEW),
    );
    k.set(Field::CtZone, 5);
    let p = pipeline(&[spec(0, 10, &[], vec![commit(5), out(2)])]);
    let o = run(&p, &k);
    assert_eq!(again_of(&o), Some(true));
    assert_eq!(
        o.wc.get(Field::CtState) & u128::from(conntrack::ct_state::TRK),
        u128::from(conntrack::ct_state::TRK)
    );
    assert_eq!(o.wc.get(Field::CtZone), 0xffff);
    let p = pipeline(&[spec(0, 10, &[], vec![commit(6), out(2)])]);
    assert_eq!(again_of(&run(&p, &k)), Some(false), "another zone");
    let p = pipeline(&[spec(0, 10, &[], vec![Action::CtClear, commit(5), out(2)])]);
    assert_eq!(again_of(&run(&p, &k)), Some(false), "after ct_clear");
    let p = pipeline(&[spec(0, 10, &[], vec![commit(5), out(2)])]);
    assert_eq!(
        again_of(&run(&p, &tcp_key(1, 1, 2, 3, 4))),
        Some(false),
        "first pass"
    );
}

#[test]
fn ct_zone_from_register_joins_the_mask() {
    let zone = CtZoneSrc::Field(sf(Field::Reg(3), 0, 16));
    let p = pipeline(&[spec(
        0,
        10,
        &[],
        vec![ct_action(false, Some(zone), None), out(2)],
    )]);
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(Field::Reg(3), 0x1_0007);
    let o = run(&p, &k);
    assert_eq!(
        o.actions,
        vec![
            DpAction::Ct {
                zone: 7,
                commit: false,
                recirc: None,
                again: false
            },
            DpAction::Output(2)
        ]
    );
    assert_eq!(o.wc.get(Field::Reg(3)), 0xffff);
}

#[test]
fn ct_bad_exec_is_refused() {
    let mut ct = ct_action(true, None, None);
    if let Action::Ct(c) = &mut ct {
        c.exec = vec![set(Field::Reg(0), 1)];
    }
    let p = pipeline(&[spec(0, 10, &[], vec![ct, out(2)])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.drop_reason, Some(DropReason::InvalidAction));
}

#[test]
fn ct_nat_emits_its_request_as_modifiers() {
    let nat = control::flow::ast::NatSpec {
        kind: Some(control::flow::ast::NatKind::Src),
        addrs: Some(("1.2.3.4".parse().unwrap(), "1.2.3.9".parse().unwrap())),
        ports: Some((100, 200)),
        random: true,
        persistent: false,
        hash: false,
        pool: None,
    };
    let mut ct = ct_action(true, Some(CtZoneSrc::Value(5)), Some(1));
    if let Action::Ct(c) = &mut ct {
        c.nat = Some(nat);
    }
    let p = pipeline(&[spec(0, 10, &[], vec![ct])]);
    let o = run(&p, &tcp_key(1, 1, 2, 3, 4));
    assert_eq!(o.drop_reason, None);
    assert_eq!(
        super::DpActions(&o.actions).to_string(),
        "ct(commit,zone=5),recirc(0x2),nat(src,ports=100-200,random),\
         nat_addr_min(1.2.3.4),nat_addr_max(1.2.3.9)"
    );
    // The executor hands conntrack the request as written.
    let mut seen = None;
    let f = crate::execute::testutil::tcp4_frame([1, 1, 1, 1], [2, 2, 2, 2], 3, 4, 0);
    let (k, l) = crate::execute::testutil::extract_at_port(&f, 1).unwrap();
    let mut buf = crate::execute::PacketBuf::from_frame(&f);
    crate::execute::execute(&o.actions, &mut buf, l, &k, &mut |e, _| {
        if let crate::execute::Egress::Ct(r) = e {
            seen = r.nat;
        }
    })
    .unwrap();
    let want = conntrack::NatRequest {
        random: true,
        ..conntrack::NatRequest::snat("1.2.3.4".parse().unwrap()).with_ports(100, 200)
    };
    let want = conntrack::NatRequest {
        addrs: Some(("1.2.3.4".parse().unwrap(), "1.2.3.9".parse().unwrap())),
        ..want
    };
    assert_eq!(seen, Some(want));
}

#[test]
fn recirculated_translation_starts_at_its_table() {
    let p = pipeline(&[
        spec(
            0,
            10,
            &[],
            vec![ct_action(false, Some(CtZoneSrc::Value(5)), Some(3))],
        ),
        spec(3, 10, &[(Field::CtState, 0x21)], vec![out(2)]),
        spec(3, 5, &[], vec![out(4)]),
    ]);
    let ctx = XlateCtx {
        pipeline: &p,
        ports: &[],
        now_ms: 1,
        packet_len: 60,
    };
    let mut k = tcp_key(1, 1, 2, 3, 4);
    k.set(Field::CtState, 0x21);
    k.set(Field::CtZone, 5);
    k.w[RECIRC_WORD] |= u64::from(recirc_id(3));
    let mut o = XlateOutput::new();
    xlate_from(&ctx, &k, 3, &mut o);
    assert_eq!(o.actions, vec![DpAction::Output(2)]);
    assert_eq!(o.wc.w[RECIRC_WORD] & 0xffff_ffff, 0xffff_ffff);
    assert_ne!(o.wc.get(Field::CtState), 0);
    // The trace notes the recirculation.
    let mut o = XlateOutput::new();
    let t = xlate_trace(&ctx, &tcp_key(1, 1, 2, 3, 4), &mut o);
    assert!(t.events.iter().any(
        |e| matches!(e, TraceEvent::Note { text, .. } if text.contains("recirculate to table 3"))
    ));
}

fn with_pool(p: Pipeline, name: &str, public: &str, net: &str, len: u8) -> Pipeline {
    let mut pools = std::collections::BTreeMap::new();
    pools.insert(
        name.to_string(),
        SnatPool {
            public: public.parse().unwrap(),
            blocks: conntrack::PortBlocks::new(net.parse().unwrap(), len, 1024, 65535).unwrap(),
            stats: Default::default(),
        },
    );
    let mut e = p.edit();
    e.set_snat_pools(std::sync::Arc::new(SnatPoolTable::new(pools)));
    e.finish()
}

#[test]
fn ct_nat_pool_hands_the_block_layout_to_conntrack() {
    let parsed = control::flow::parse_flow(
        "ip actions=ct(commit,zone=3,table=1,nat(src=pool:gw))",
        control::flow::ParseMode::Add,
    )
    .unwrap();
    let p = pipeline(std::slice::from_ref(&parsed));
    // No such pool (yet): dropped, and the trace says why.
    let o = run(&p, &tcp_key(1, 0x0a01_0004, 2, 3, 4));
    assert_eq!(o.drop_reason, Some(DropReason::InvalidAction));
    let p = with_pool(p, "gw", "203.0.113.7", "10.1.0.0", 24);
    let k = tcp_key(1, 0x0a01_0004, 2, 3, 4);
    let o = run(&p, &k);
    assert_eq!(o.drop_reason, None);
    assert_eq!(
        super::DpActions(&o.actions).to_string(),
        "ct(commit,zone=3),recirc(0x2),nat(src),nat_addr_min(203.0.113.7),\
         nat_addr_max(203.0.113.7),nat_blocks(10.1.0.0/24:1024-65535)"
    );
    // The block is chosen by conntrack from the packet: the source is not in the mask.
    assert_eq!(o.wc.get(Field::Ipv4Src), 0);
    let mut seen = None;
    let f = crate::execute::testutil::tcp4_frame([10, 1, 0, 4], [2, 2, 2, 2], 3, 4, 0);
    let (k, l) = crate::execute::testutil::extract_at_port(&f, 1).unwrap();
    let mut buf = crate::execute::PacketBuf::from_frame(&f);
    crate::execute::execute(&o.actions, &mut buf, l, &k, &mut |e, _| {
        if let crate::execute::Egress::Ct(r) = e {
            seen = r.nat;
        }
    })
    .unwrap();
    let blocks = conntrack::PortBlocks::new("10.1.0.0".parse().unwrap(), 24, 1024, 65535).unwrap();
    assert_eq!(
        seen,
        Some(conntrack::NatRequest {
            block: Some(blocks),
            ..conntrack::NatRequest::snat("203.0.113.7".parse().unwrap())
        })
    );
    // And conntrack gives that source a port of its block.
    let ct = conntrack::Conntrack::default();
    let pkt = conntrack::PacketInfo::udp(
        0,
        "10.1.0.4".parse().unwrap(),
        "198.51.100.1".parse().unwrap(),
        5000,
        53,
    );
    let v = ct.process_nat(&pkt, 0, true, seen.as_ref());
    let port = v.rewrite.unwrap().src.unwrap().1.unwrap();
    assert_eq!(blocks.owner(port), Some("10.1.0.4".parse().unwrap()));
}

#[test]
fn snat_pool_owner_loads_the_owner_of_the_destination_port() {
    let parsed = control::flow::parse_flow(
        "ip actions=snat_pool_owner(gw)->NXM_NX_REG0[],output:2",
        control::flow::ParseMode::Add,
    )
    .unwrap();
    let p = with_pool(pipeline(&[parsed]), "gw", "203.0.113.7", "10.1.0.0", 24);
    let public = 0xcb00_7107; // 203.0.113.7
                              // 10.1.0.4 owns 1024 + 4*252 .. +251.
    for (port, want) in [
        (2032u16, 0x0a01_0004u128),
        (2283, 0x0a01_0004),
        (2284, 0x0a01_0005),
        (1023, 0),
        (65535, 0x0a01_00ff),
    ] {
        let mut k = tcp_key(1, 0xc633_6401, public, 80, port);
        k.set(Field::Reg(0), 0xdead);
        let mut out = XlateOutput::new();
        let ctx = XlateCtx {
            pipeline: &p,
            ports: &[],
            now_ms: 1,
            packet_len: 60,
        };
        xlate(&ctx, &k, &mut out);
        assert_eq!(out.final_key.get(Field::Reg(0)), want, "port {port}");
        // The decision depends on the destination address and port: both in the mask.
        assert_eq!(out.wc.get(Field::TcpDst), 0xffff);
        assert_eq!(out.wc.get(Field::Ipv4Dst), 0xffff_ffff);
    }
    // Another destination, UDP to the public address, not TCP/UDP: 0 or the owner.
    let ctx = XlateCtx {
        pipeline: &p,
        ports: &[],
        now_ms: 1,
        packet_len: 60,
    };
    let mut k = tcp_key(1, 1, 0xcb00_7108, 80, 2032);
    k.set(Field::Reg(0), 7);
    let mut out = XlateOutput::new();
    assert_eq!(
        {
            xlate(&ctx, &k, &mut out);
            out.final_key.get(Field::Reg(0))
        },
        0
    );
    let mut k = tcp_key(1, 1, public, 80, 0);
    k.set(Field::IpProto, 17);
    k.set(Field::UdpDst, 2032);
    let mut out = XlateOutput::new();
    assert_eq!(
        {
            xlate(&ctx, &k, &mut out);
            out.final_key.get(Field::Reg(0))
        },
        0x0a01_0004
    );
    let mut k = tcp_key(1, 1, public, 80, 2032);
    k.set(Field::IpProto, 1);
    let mut out = XlateOutput::new();
    assert_eq!(
        {
            xlate(&ctx, &k, &mut out);
            out.final_key.get(Field::Reg(0))
        },
        0
    );
}
