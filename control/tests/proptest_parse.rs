//! Property tests: the parser never panics, and whatever parses prints to text that parses
//! back to the same [`FlowSpec`].

use control::flow::{format_flow, parse_flow, ParseMode};
use proptest::prelude::*;

/// Valid (and nearly valid) fragments the token soup is built from.
const FRAGMENTS: &[&str] = &[
    "ip",
    "ipv6",
    "arp",
    "rarp",
    "icmp",
    "icmp6",
    "tcp",
    "tcp6",
    "udp",
    "udp6",
    "sctp",
    "sctp6",
    "mpls",
    "table=20",
    "table=0",
    "priority=1024",
    "priority=0",
    "cookie=0x5",
    "cookie=0x5/0xff",
    "idle_timeout=10",
    "hard_timeout=5",
    "send_flow_rem",
    "check_overlap",
    "out_port=3",
    "duration=1.5s",
    "n_packets=3",
    "n_bytes=4",
    "idle_age=2",
    "in_port=5",
    "in_port=LOCAL",
    "dl_src=fa:16:3e:4b:eb:3c",
    "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
    "dl_type=0x0800",
    "dl_type=0x86dd",
    "eth_type=0x0806",
    "dl_vlan=5",
    "dl_vlan=0xffff",
    "dl_vlan_pcp=3",
    "vlan_tci=0x1000/0x1000",
    "vlan_vid=0x1005",
    "vlan_pcp=2",
    "nw_src=10.0.0.0/8",
    "nw_dst=1.2.3.4/255.255.0.255",
    "ip_src=1.1.1.1",
    "nw_proto=6",
    "nw_proto=17",
    "nw_tos=8",
    "ip_dscp=3",
    "nw_ecn=1",
    "nw_ttl=4",
    "nw_frag=first",
    "nw_frag=later",
    "nw_frag=0x2/0x2",
    "ipv6_src=2001:db8::/32",
    "ipv6_dst=::1",
    "ipv6_label=0x12345",
    "icmp_type=135",
    "icmp_type=8",
    "icmp_code=0",
    "nd_target=fe80::1",
    "nd_sll=00:11:22:33:44:55",
    "nd_tll=00:11:22:33:44:56",
    "tp_src=5",
    "tp_dst=0x100/0xff00",
    "tcp_src=80",
    "udp_dst=53",
    "sctp_src=9",
    "tcp_flags=+syn-ack",
    "tcp_flags=0x002/0x012",
    "tcp_flags=syn|[200]",
    "arp_op=1",
    "arp_spa=1.1.1.1",
    "arp_tpa=2.2.2.0/24",
    "arp_sha=00:00:00:00:00:01",
    "arp_tha=00:00:00:00:00:02",
    "tun_id=0x43e",
    "tun_id=0x5/0xff",
    "tun_src=1.1.1.1",
    "tun_dst=2.2.2.2",
    "metadata=0x3/0xf",
    "reg0=1",
    "reg3[0..15]=0x43e",
    "NXM_NX_REG0[8..15]=3",
    "xreg1=0x123456789",
    "pkt_mark=9",
    "ct_state=+trk-inv",
    "ct_state=0x21/0x21",
    "ct_state=est|trk",
    "ct_zone=4",
    "ct_mark=1/3",
    "ct_label=0x5",
    "tp_src[5]=1",
    "vlan_tci[13..15]=5",
    "NXM_OF_IN_PORT=3",
    "tcp_flags[9]=1",
    "bogus=1",
    "nw_dst=300.1.1.1",
    "(",
    ")",
    "[",
    "]",
    "=",
    "/",
    ",",
    " ",
];

const ACTIONS: &[&str] = &[
    "output:1",
    "2",
    "output:NXM_NX_REG1[0..15]",
    "in_port",
    "IN_PORT",
    "normal",
    "flood",
    "all",
    "local",
    "drop",
    "controller",
    "controller:100",
    "controller(reason=no_match,max_len=200,id=3)",
    "set_field:5->reg0",
    "set_field:0xf0/0xf0->reg2",
    "set_field:fa:16:3e:4b:eb:3c->eth_src",
    "set_field:1.2.3.4->ip_dst",
    "set_field:80->tcp_dst",
    "set_field:4101->vlan_vid",
    "load:0x2->NXM_OF_ARP_OP[]",
    "load:5->reg0[0..7]",
    "load:0->NXM_OF_IN_PORT[]",
    "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]",
    "move:reg0[0..15]->reg1[16..31]",
    "move:eth_src->eth_dst",
    "mod_dl_src:00:11:22:33:44:55",
    "mod_nw_dst:1.2.3.4",
    "mod_nw_tos:8",
    "mod_tp_dst:80",
    "mod_vlan_vid:5",
    "mod_vlan_pcp:3",
    "strip_vlan",
    "push_vlan:0x8100",
    "pop_vlan",
    "dec_ttl",
    "set_tunnel:5",
    "set_tunnel64:0x5",
    "goto_table:40",
    "resubmit(,20)",
    "resubmit(5,20)",
    "resubmit:5",
    "note:00.01.02",
    "ct(commit,zone=5)",
    "ct(commit,nat(src=1.2.3.4-1.2.3.9:100-200,random))",
    "ct(table=3,zone=NXM_NX_REG5[0..15])",
    "ct(commit,exec(set_field:1->ct_mark))",
    "ct(nat)",
    "ct_clear",
    "group:5",
    "bogus",
    "output:",
    "ct(",
    "load:1->reg0[40]",
];

fn roundtrip(text: &str, mode: ParseMode) -> Result<(), TestCaseError> {
    if let Ok(spec) = parse_flow(text, mode) {
        let printed = format_flow(&spec);
        match parse_flow(&printed, mode) {
            Ok(again) => prop_assert_eq!(again, spec, "printed: {}", printed),
            Err(e) => prop_assert!(false, "{text:?} printed as {printed:?} which fails: {e}"),
        }
    }
    Ok(())
}

fn soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..8),
        prop::collection::vec(prop::sample::select(ACTIONS), 0..5),
        prop::bool::ANY,
        prop::sample::select(&[",", " ", ", "][..]),
    )
        .prop_map(|(m, a, with_actions, sep)| {
            let mut s = m.join(sep);
            if with_actions {
                s.push_str(" actions=");
                s.push_str(&a.join(","));
            }
            s
        })
}

const GENERIC: &[&str] = &[
    "in_port=5",
    "dl_src=fa:16:3e:4b:eb:3c",
    "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
    "dl_vlan=5",
    "dl_vlan_pcp=3",
    "reg0=1",
    "reg3[0..15]=0x43e",
    "reg5=0x5/0xff",
    "xreg5=0x123456789",
    "tun_id=0x43e/0xfff",
    "tun_src=1.1.1.1",
    "tun_dst=2.2.2.0/24",
    "metadata=0x3/0xf",
    "pkt_mark=9",
    "ct_state=+trk-inv",
    "ct_zone=4",
    "ct_mark=1/3",
    "ct_label=0x5/0xff",
    "table=20",
    "priority=1024",
    "cookie=0x5",
    "idle_timeout=10",
    "send_flow_rem",
    "n_packets=5",
];
const IPV4: &[&str] = &[
    "nw_src=10.0.0.0/8",
    "nw_dst=1.2.3.4/255.255.0.255",
    "nw_tos=8",
    "nw_ecn=1",
    "nw_ttl=4",
    "nw_frag=not_later",
];
const IPV6: &[&str] = &[
    "ipv6_src=2001:db8::/32",
    "ipv6_dst=::1",
    "ipv6_label=0x12345",
    "nw_tos=4",
];
const L4: &[&str] = &["tp_src=5", "tp_dst=0x100/0xff00", "tp_dst[3]=1"];
const TCP: &[&str] = &["tcp_flags=+syn-ack"];
const ARP: &[&str] = &[
    "arp_op=1",
    "arp_spa=1.1.1.1",
    "arp_tpa=2.2.2.0/24",
    "arp_sha=00:00:00:00:00:01",
];
const ND: &[&str] = &[
    "nd_target=fe80::1",
    "nd_sll=00:11:22:33:44:55",
    "icmp_code=0",
];
const SAFE_ACTIONS: &[&str] = &[
    "output:1",
    "2",
    "IN_PORT",
    "NORMAL",
    "controller:100",
    "set_field:5->reg0",
    "set_field:0xf0/0xf0->reg2",
    "load:5->reg0[0..7]",
    "move:reg0[0..15]->reg1[16..31]",
    "mod_dl_src:00:11:22:33:44:55",
    "mod_vlan_vid:5",
    "set_tunnel:5",
    "resubmit(,20)",
    "note:00.01",
    "group:5",
    "output:NXM_NX_REG1[0..15]",
];
const IP_ACTIONS: &[&str] = &[
    "dec_ttl",
    "ct(commit,zone=5)",
    "ct(table=3,zone=NXM_NX_REG5[0..15])",
    "ct(commit,exec(set_field:1->ct_mark))",
    "ct(nat)",
    "ct_clear",
];

fn structured() -> impl Strategy<Value = String> {
    let groups: Vec<(&'static str, Vec<&'static str>, bool)> = vec![
        ("", GENERIC.to_vec(), false),
        ("ip", [GENERIC, IPV4].concat(), true),
        ("tcp", [GENERIC, IPV4, L4, TCP].concat(), true),
        ("udp6", [GENERIC, IPV6, L4].concat(), true),
        ("sctp", [GENERIC, IPV4, L4].concat(), true),
        ("arp", [GENERIC, ARP].concat(), false),
        ("icmp6,icmp_type=135", [GENERIC, IPV6, ND].concat(), true),
    ];
    (
        prop::sample::select(groups),
        any::<prop::sample::Index>(),
        any::<u64>(),
    )
        .prop_flat_map(|((proto, fields, ip), _, _)| {
            let n = fields.len();
            let acts = if ip {
                [SAFE_ACTIONS, IP_ACTIONS].concat()
            } else {
                SAFE_ACTIONS.to_vec()
            };
            (
                Just(proto),
                prop::sample::subsequence(fields, 0..n.min(8)),
                prop::collection::vec(prop::sample::select(acts), 0..5),
                prop::sample::select(&[",", " ", ", "][..]),
            )
        })
        .prop_map(|(proto, mut fields, acts, sep)| {
            if !proto.is_empty() {
                fields.insert(fields.len() / 2, proto);
            }
            format!("{} actions={}", fields.join(sep), acts.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        for mode in [ParseMode::Add, ParseMode::Modify, ParseMode::Filter] {
            let _ = parse_flow(&s, mode);
        }
    }

    #[test]
    fn ascii_soup_never_panics(s in "[a-z_0-9=:,/()\\[\\]. +\\-|>x]{0,120}") {
        let _ = parse_flow(&s, ParseMode::Add);
        let _ = parse_flow(&format!("ip actions={s}"), ParseMode::Add);
        let _ = parse_flow(&format!("{s} actions=drop"), ParseMode::Filter);
    }

    #[test]
    fn token_soup_round_trips(s in soup()) {
        for mode in [ParseMode::Add, ParseMode::Modify, ParseMode::Filter] {
            roundtrip(&s, mode)?;
        }
    }

    #[test]
    fn structured_flows_parse_and_round_trip(s in structured()) {
        let spec = parse_flow(&s, ParseMode::Add);
        prop_assert!(spec.is_ok(), "{s}: {:?}", spec.err());
        roundtrip(&s, ParseMode::Add)?;
    }

    #[test]
    fn errors_name_a_token_of_the_input(s in soup()) {
        if let Err(e) = parse_flow(&s, ParseMode::Add) {
            prop_assert!(s.contains(e.token.trim()), "{:?} not in {:?}", e.token, s);
        }
    }
}
