//! The conntrack crate keeps its own copy of the `ct_state` bits (so that it depends on
//! nothing), and the datapath writes its verdicts straight into the flow key's `ct_state`
//! field: the two sets must never drift apart.

use conntrack::ct_state as ct;
use control::flow::field::ct_state as lang;

#[test]
fn conntrack_and_flow_language_agree_on_every_ct_state_bit() {
    let pairs = [
        ("new", ct::NEW, lang::NEW),
        ("est", ct::EST, lang::EST),
        ("rel", ct::REL, lang::REL),
        ("rpl", ct::RPL, lang::RPL),
        ("inv", ct::INV, lang::INV),
        ("trk", ct::TRK, lang::TRK),
        ("snat", ct::SNAT, lang::SNAT),
        ("dnat", ct::DNAT, lang::DNAT),
    ];
    for (name, a, b) in pairs {
        assert_eq!(a, b, "ct_state bit {name}");
    }
    // And the language prints them in the same order.
    let names: Vec<&str> = lang::NAMES.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        names,
        ["new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"]
    );
}
