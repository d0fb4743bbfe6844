//! The seed flows: five `ovs-ofctl -O OpenFlow13 dump-flows br-int` lines from an
//! OpenDaylight host (corpus/seed000.txt, copied verbatim). Each must parse as an add-flow
//! (counters ignored), print back exactly as ovs-ofctl dumped it, and survive
//! parse → print → parse unchanged.

use control::flow::{
    format_dump_line, format_flow, parse_flow, Action, DumpStats, Field, FlowSpec, ParseMode,
};

fn seeds() -> Vec<String> {
    let path = format!("{}/tests/corpus/seed000.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// The counters of a dump line (`duration=543.500s`, `n_packets=`, `n_bytes=`, `idle_age=`).
fn stats_of(line: &str) -> DumpStats {
    let get = |key: &str| -> Option<&str> {
        line.split([',', ' '])
            .find_map(|t| t.strip_prefix(key))
            .map(|v| v.trim_end_matches('s'))
    };
    DumpStats {
        duration_secs: get("duration=").unwrap().parse().unwrap(),
        n_packets: get("n_packets=").unwrap().parse().unwrap(),
        n_bytes: get("n_bytes=").unwrap().parse().unwrap(),
        idle_age_secs: get("idle_age=").map(|v| v.parse().unwrap()),
    }
}

fn parse(line: &str) -> FlowSpec {
    parse_flow(line, ParseMode::Add).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn seed_corpus_has_the_five_flows() {
    assert_eq!(seeds().len(), 5);
}

#[test]
fn seed_dump_lines_print_back_verbatim() {
    for line in seeds() {
        let spec = parse(&line);
        let printed = format_dump_line(&spec, &stats_of(&line));
        assert_eq!(printed.trim_start(), line.trim_start());
    }
}

#[test]
fn seed_round_trip_is_identity() {
    for line in seeds() {
        let spec = parse(&line);
        let text = format_flow(&spec);
        assert_eq!(parse(&text), spec, "{text}");
        assert!(!text.contains("n_packets"), "{text}");
    }
}

#[test]
fn seed_arp_responder_semantics() {
    let spec = parse(&seeds()[0]);
    assert_eq!(spec.attrs.table, 20);
    assert_eq!(spec.attrs.priority, 1024);
    assert_eq!(spec.matches.exact(Field::EthType), Some(0x0806));
    assert_eq!(spec.matches.exact(Field::TunId), Some(0x43e));
    assert_eq!(spec.matches.exact(Field::ArpTpa), Some(0x58585804));
    assert_eq!(spec.matches.exact(Field::ArpOp), Some(1));
    let actions = spec.actions.unwrap();
    assert_eq!(actions.len(), 8);
    assert!(matches!(
        actions[1],
        Action::SetField {
            field: Field::EthSrc,
            value: 0xfa163e4beb3c,
            ..
        }
    ));
    assert_eq!(
        actions[7],
        Action::Output(control::flow::ast::OutputPort::InPort)
    );
}

#[test]
fn seed_goto_and_dec_ttl() {
    let s = seeds();
    let spec = parse(&s[1]);
    assert_eq!(spec.matches.exact(Field::InPort), Some(5));
    assert_eq!(
        spec.actions.as_ref().unwrap().last(),
        Some(&Action::GotoTable(40))
    );
    let spec = parse(&s[4]);
    assert!(spec.actions.as_ref().unwrap().contains(&Action::DecTtl));
    assert_eq!(spec.matches.exact(Field::EthDst), Some(0xfa163e915fa0));
}
