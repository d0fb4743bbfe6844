//! Selecting connections by a partial tuple: `swctl flush-conntrack [--zone N] TUPLE`.
//!
//! The text form is Open vSwitch's `ovs-appctl dpctl/flush-conntrack` tuple: comma-separated
//! `key=value` items among `ct_nw_src`, `ct_nw_dst` (IPv4), `ct_ipv6_src`, `ct_ipv6_dst`,
//! `ct_nw_proto`, `ct_tp_src`, `ct_tp_dst`, `icmp_type`, `icmp_code`, `icmp_id`, e.g.
//! `ct_nw_src=10.1.1.1,ct_nw_dst=10.1.1.2,ct_nw_proto=17,ct_tp_src=2,ct_tp_dst=1`.
//!
//! Semantics (the decisions):
//! - **Omitted fields are wildcards**, as in Open vSwitch since 3.1 (partial tuples), so
//!   `ct_nw_src=10.1.1.1` selects every connection from or to that address.
//! - A connection is selected when its **original or its reply** key matches: the reply key
//!   is what the other side (or the far side of a NAT) sees, so an operator can name a
//!   connection as either end saw it. (Open vSwitch takes two tuples, original then reply;
//!   one tuple against both directions is what `conntrack -D` users expect from one line.)
//! - `icmp_type` is compared with the query type in the original direction (8 for an echo)
//!   and with the response type in the reply direction (0); `icmp_code` with 0, the code of
//!   every query the tracker follows (it does not keep codes); `icmp_id` with the
//!   identifier. ICMP fields need `ct_nw_proto=1` or `58`; ports need `ct_nw_proto` of a
//!   protocol with ports (not ICMP), as in Open vSwitch ("port is set without protocol").
//! - The zone is not part of the text (`--zone N` selects it); without it every zone is
//!   searched. Open vSwitch defaults to zone 0 instead; searching all zones is the safer
//!   reading of "fields omitted = wildcard" and `--zone 0` gives the OVS behaviour.
//! - Any error (unknown key, bad value, repeated key, mixed families, ICMP fields on TCP...)
//!   names the offending `key=value` item; the caller then removes nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::tuple::{proto, Tuple};

/// Why a tuple text was refused. Each variant carries the offending `key=value` item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Nothing to match on.
    #[error("empty conntrack tuple: give key=value items (ct_nw_src=, ct_nw_proto=, ...)")]
    Empty,
    /// An item without `=` or without a value.
    #[error("{0:?}: expected key=value")]
    NotKeyValue(String),
    /// A key Open vSwitch's tuple syntax does not have.
    #[error("{0:?}: unknown conntrack tuple field (ct_nw_src, ct_nw_dst, ct_ipv6_src, ct_ipv6_dst, ct_nw_proto, ct_tp_src, ct_tp_dst, icmp_type, icmp_code, icmp_id)")]
    UnknownField(String),
    /// A value that does not parse for its key.
    #[error("{item:?}: {why}")]
    BadValue {
        /// The item.
        item: String,
        /// What was expected.
        why: &'static str,
    },
    /// The same key twice.
    #[error("{0:?}: field set twice")]
    Repeated(String),
    /// IPv4 and IPv6 addresses in one tuple.
    #[error("{0:?}: the tuple mixes IPv4 (ct_nw_*) and IPv6 (ct_ipv6_*) addresses")]
    MixedFamilies(String),
    /// Ports, or ICMP fields, that do not fit `ct_nw_proto`.
    #[error("{item:?}: {why}")]
    Prerequisite {
        /// The item.
        item: String,
        /// What is missing.
        why: &'static str,
    },
}

/// A partial connection key: every `None` field matches anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TupleFilter {
    /// Source address (`ct_nw_src` / `ct_ipv6_src`).
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// IP protocol (`ct_nw_proto`).
    pub proto: Option<u8>,
    /// Source port (`ct_tp_src`).
    pub sport: Option<u16>,
    /// Destination port (`ct_tp_dst`).
    pub dport: Option<u16>,
    /// ICMP type (`icmp_type`): the query's in the original direction, the response's in
    /// the reply direction.
    pub icmp_type: Option<u8>,
    /// ICMP code (`icmp_code`); tracked ICMP connections are queries, code 0.
    pub icmp_code: Option<u8>,
    /// ICMP identifier (`icmp_id`).
    pub icmp_id: Option<u16>,
}

fn bad(item: &str, why: &'static str) -> FilterError {
    FilterError::BadValue {
        item: item.to_owned(),
        why,
    }
}

impl TupleFilter {
    /// Parse the Open vSwitch `flush-conntrack` tuple text (see the module docs).
    pub fn parse(text: &str) -> Result<TupleFilter, FilterError> {
        let mut f = TupleFilter::default();
        // (family is v6, item that set it) of the first address.
        let mut family: Option<(bool, &str)> = None;
        let mut seen: Vec<&str> = Vec::new();
        let mut ports: Vec<&str> = Vec::new();
        let mut icmp: Vec<&str> = Vec::new();
        let mut proto_item = "";
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| FilterError::NotKeyValue(item.to_owned()))?;
            if seen.contains(&key) {
                return Err(FilterError::Repeated(item.to_owned()));
            }
            match key {
                "ct_nw_src" | "ct_nw_dst" | "ct_ipv6_src" | "ct_ipv6_dst" => {
                    let v6 = key.starts_with("ct_ipv6");
                    let addr: IpAddr = if v6 {
                        value
                            .parse::<Ipv6Addr>()
                            .map_err(|_| bad(item, "not an IPv6 address"))?
                            .into()
                    } else {
                        value
                            .parse::<Ipv4Addr>()
                            .map_err(|_| bad(item, "not an IPv4 address"))?
                            .into()
                    };
                    match family {
                        Some((fam, _)) if fam != v6 => {
                            return Err(FilterError::MixedFamilies(item.to_owned()))
                        }
                        _ => family = Some((v6, item)),
                    }
                    if key.ends_with("src") {
                        f.src = Some(addr);
                    } else {
                        f.dst = Some(addr);
                    }
                }
                "ct_nw_proto" => {
                    f.proto = Some(value.parse().map_err(|_| bad(item, "not a number 0-255"))?);
                    proto_item = item;
                }
                "ct_tp_src" | "ct_tp_dst" => {
                    let p = value
                        .parse()
                        .map_err(|_| bad(item, "not a port number 0-65535"))?;
                    if key == "ct_tp_src" {
                        f.sport = Some(p);
                    } else {
                        f.dport = Some(p);
                    }
                    ports.push(item);
                }
                "icmp_type" | "icmp_code" => {
                    let v = value.parse().map_err(|_| bad(item, "not a number 0-255"))?;
                    if key == "icmp_type" {
                        f.icmp_type = Some(v);
                    } else {
                        f.icmp_code = Some(v);
                    }
                    icmp.push(item);
                }
                "icmp_id" => {
                    f.icmp_id = Some(
                        value
                            .parse()
                            .map_err(|_| bad(item, "not a number 0-65535"))?,
                    );
                    icmp.push(item);
                }
                _ => return Err(FilterError::UnknownField(item.to_owned())),
            }
            seen.push(key);
        }
        if seen.is_empty() {
            return Err(FilterError::Empty);
        }
        let is_icmp = matches!(f.proto, Some(proto::ICMP | proto::ICMPV6));
        if let Some(item) = ports.first() {
            match f.proto {
                None => {
                    return Err(FilterError::Prerequisite {
                        item: (*item).to_owned(),
                        why: "port is set without protocol (add ct_nw_proto=6, 17, ...)",
                    })
                }
                Some(_) if is_icmp => {
                    return Err(FilterError::Prerequisite {
                        item: (*item).to_owned(),
                        why: "ICMP has no ports (use icmp_id, icmp_type, icmp_code)",
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(item) = icmp.first() {
            if !is_icmp {
                return Err(FilterError::Prerequisite {
                    item: (*item).to_owned(),
                    why: "ICMP fields need ct_nw_proto=1 (ICMP) or 58 (ICMPv6)",
                });
            }
        }
        // The protocol must fit the address family when both are given.
        if let (Some(p), Some((v6, _))) = (f.proto, family) {
            if (p == proto::ICMP && v6) || (p == proto::ICMPV6 && !v6) {
                return Err(FilterError::Prerequisite {
                    item: proto_item.to_owned(),
                    why: "ICMP is 1 with IPv4 addresses, 58 with IPv6 ones",
                });
            }
        }
        Ok(f)
    }

    /// Whether a connection key matches. `icmp_type` is the connection's ICMP type in the
    /// key's direction (`None` for other protocols).
    pub fn matches(&self, t: &Tuple, icmp_type: Option<u8>) -> bool {
        let icmp = t.proto == proto::ICMP || t.proto == proto::ICMPV6;
        self.src.is_none_or(|a| a == t.src)
            && self.dst.is_none_or(|a| a == t.dst)
            && self.proto.is_none_or(|p| p == t.proto)
            && self.sport.is_none_or(|p| !icmp && p == t.sport)
            && self.dport.is_none_or(|p| !icmp && p == t.dport)
            && self.icmp_id.is_none_or(|id| icmp && id == t.sport)
            && self.icmp_code.is_none_or(|c| icmp && c == 0)
            && self
                .icmp_type
                .is_none_or(|ty| icmp && icmp_type == Some(ty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(src: &str, dst: &str, proto: u8, sport: u16, dport: u16) -> Tuple {
        Tuple {
            zone: 0,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport,
            dport,
            proto,
        }
    }

    #[test]
    fn parses_the_ovs_examples() {
        let f = TupleFilter::parse(
            "ct_nw_src=10.1.1.1,ct_nw_dst=10.1.1.2,ct_nw_proto=1,icmp_type=8,icmp_code=0,icmp_id=10",
        )
        .unwrap();
        assert_eq!(f.src, Some("10.1.1.1".parse().unwrap()));
        assert_eq!(f.dst, Some("10.1.1.2".parse().unwrap()));
        assert_eq!(
            (f.proto, f.icmp_type, f.icmp_code, f.icmp_id),
            (Some(1), Some(8), Some(0), Some(10))
        );
        let f = TupleFilter::parse(
            "ct_ipv6_src=fc00::1,ct_ipv6_dst=fc00::2,ct_nw_proto=6,ct_tp_src=1,ct_tp_dst=2",
        )
        .unwrap();
        assert_eq!(f.src, Some("fc00::1".parse().unwrap()));
        assert_eq!((f.proto, f.sport, f.dport), (Some(6), Some(1), Some(2)));
        // Partial: one field; order free; spaces around items tolerated.
        let f = TupleFilter::parse(" ct_tp_dst=80 , ct_nw_proto=17").unwrap();
        assert_eq!(
            f,
            TupleFilter {
                proto: Some(17),
                dport: Some(80),
                ..TupleFilter::default()
            }
        );
    }

    #[test]
    fn errors_name_the_offending_item() {
        let cases: &[(&str, &str)] = &[
            ("ct_nw_src=10.0.0.300", "ct_nw_src=10.0.0.300"),
            ("ct_nw_src=fc00::1", "ct_nw_src=fc00::1"),
            ("ct_ipv6_dst=10.0.0.1", "ct_ipv6_dst=10.0.0.1"),
            ("ct_nw_proto=6,ct_tp_src=70000", "ct_tp_src=70000"),
            ("ct_nw_proto=600", "ct_nw_proto=600"),
            (
                "ct_nw_src=10.0.0.1,ct_nw_dts=10.0.0.2",
                "ct_nw_dts=10.0.0.2",
            ),
            (
                "ct_nw_src=10.0.0.1,ct_nw_src=10.0.0.2",
                "ct_nw_src=10.0.0.2",
            ),
            ("ct_nw_src=10.0.0.1,ct_ipv6_dst=::1", "ct_ipv6_dst=::1"),
            ("ct_tp_dst=80", "ct_tp_dst=80"),
            ("ct_nw_proto=1,ct_tp_dst=80", "ct_tp_dst=80"),
            ("ct_nw_proto=6,icmp_id=3", "icmp_id=3"),
            ("icmp_type=8", "icmp_type=8"),
            ("ct_ipv6_src=::1,ct_nw_proto=1", "ct_nw_proto=1"),
            ("ct_nw_src", "ct_nw_src"),
            ("ct_nw_src=", "ct_nw_src="),
            ("ct_nw_proto=tcp", "ct_nw_proto=tcp"),
        ];
        for (text, item) in cases {
            let e = TupleFilter::parse(text).expect_err(text);
            assert!(
                e.to_string().contains(&format!("{item:?}")),
                "{text}: {e} does not name {item:?}"
            );
        }
        assert_eq!(TupleFilter::parse(""), Err(FilterError::Empty));
        assert_eq!(TupleFilter::parse(" , "), Err(FilterError::Empty));
    }

    #[test]
    fn omitted_fields_are_wildcards() {
        let t = tuple("10.0.0.1", "10.0.0.2", proto::TCP, 40000, 80);
        let yes = [
            "ct_nw_src=10.0.0.1",
            "ct_nw_dst=10.0.0.2",
            "ct_nw_proto=6",
            "ct_nw_proto=6,ct_tp_dst=80",
            "ct_nw_proto=6,ct_tp_src=40000,ct_tp_dst=80",
            "ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=6,ct_tp_src=40000,ct_tp_dst=80",
        ];
        for s in yes {
            assert!(TupleFilter::parse(s).unwrap().matches(&t, None), "{s}");
        }
        let no = [
            "ct_nw_src=10.0.0.2",
            "ct_nw_proto=17",
            "ct_nw_proto=6,ct_tp_dst=81",
            "ct_ipv6_src=::1",
            "ct_nw_proto=1,icmp_id=40000",
        ];
        for s in no {
            assert!(!TupleFilter::parse(s).unwrap().matches(&t, None), "{s}");
        }
    }

    #[test]
    fn icmp_fields() {
        let echo = tuple("10.0.0.1", "10.0.0.2", proto::ICMP, 0x1234, 0);
        let f = |s: &str| TupleFilter::parse(s).unwrap();
        assert!(f("ct_nw_proto=1,icmp_id=4660").matches(&echo, Some(8)));
        assert!(!f("ct_nw_proto=1,icmp_id=4661").matches(&echo, Some(8)));
        assert!(f("ct_nw_proto=1,icmp_type=8,icmp_code=0").matches(&echo, Some(8)));
        assert!(!f("ct_nw_proto=1,icmp_type=0").matches(&echo, Some(8)));
        assert!(f("ct_nw_proto=1,icmp_type=0").matches(&echo.reverse(), Some(0)));
        assert!(!f("ct_nw_proto=1,icmp_code=3").matches(&echo, Some(8)));
    }

    /// The table API: original or reply key, partial tuples, zones, ICMP, NAT, counters.
    #[test]
    fn flush_matching_removes_what_matches_and_nothing_else() {
        use crate::packet::tcp_flags::SYN;
        use crate::{Conntrack, NatRequest, PacketInfo, TcpInfo};
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let syn = |zone, src: &str, sport, dst: &str, dport| {
            PacketInfo::tcp(
                zone,
                ip(src),
                ip(dst),
                TcpInfo {
                    sport,
                    dport,
                    seq: 1,
                    ack: 0,
                    window: 65535,
                    flags: SYN,
                    wscale: None,
                    payload_len: 0,
                },
            )
        };
        let ct = Conntrack::default();
        let f = |s: &str| TupleFilter::parse(s).unwrap();
        for (zone, sport) in [(1, 1000), (1, 1001), (2, 1000)] {
            assert!(ct
                .process(&syn(zone, "10.0.0.1", sport, "10.0.0.2", 80), 0, true)
                .entry
                .is_some());
        }
        ct.process(
            &PacketInfo::udp(1, ip("10.0.0.1"), ip("10.0.0.3"), 5, 53),
            0,
            true,
        );
        ct.process(
            &PacketInfo::icmp(1, ip("10.0.0.1"), ip("10.0.0.2"), 8, 0, 77, None),
            0,
            true,
        );
        // SNAT 10.0.0.9:2000 -> 192.0.2.1 (port kept): the reply key is 10.0.0.2:80 ->
        // 192.0.2.1:2000, an address the original key does not have.
        let nat = NatRequest::snat(ip("192.0.2.1"));
        let v = ct.process_nat(
            &syn(1, "10.0.0.9", 2000, "10.0.0.2", 80),
            0,
            true,
            Some(&nat),
        );
        assert!(v.rewrite.is_some());
        assert_eq!(ct.len(), 6);

        // Nothing matches: nothing removed, nothing counted.
        assert_eq!(ct.flush_matching(None, &f("ct_nw_src=10.9.9.9")), 0);
        assert_eq!(ct.flush_matching(Some(3), &f("ct_nw_proto=6")), 0);
        assert_eq!(ct.len(), 6);
        // The NATed connection by its reply key (the translated address).
        assert_eq!(ct.flush_matching(None, &f("ct_nw_dst=192.0.2.1")), 1);
        // ICMP by id and query type; the reply's type matches too.
        assert_eq!(
            ct.flush_matching(None, &f("ct_nw_proto=1,icmp_type=0,icmp_id=78")),
            0
        );
        assert_eq!(
            ct.flush_matching(None, &f("ct_nw_proto=1,icmp_type=0,icmp_id=77")),
            1
        );
        // A full 5-tuple written as the reply direction, zone-restricted.
        let reply =
            "ct_nw_src=10.0.0.2,ct_nw_dst=10.0.0.1,ct_nw_proto=6,ct_tp_src=80,ct_tp_dst=1001";
        assert_eq!(ct.flush_matching(Some(2), &f(reply)), 0);
        assert_eq!(ct.flush_matching(Some(1), &f(reply)), 1);
        // Partial: every TCP connection to port 80, all zones (zone 1 and zone 2 are left).
        assert_eq!(ct.flush_matching(None, &f("ct_nw_proto=6,ct_tp_dst=80")), 2);
        assert_eq!(ct.len(), 1);
        assert_eq!(ct.entries(None, 0)[0].proto, proto::UDP);
        assert!(ct.event_counters().contains(&("flushed", 5)));
        ct.check_invariants();
        // IPv6 addresses never match IPv4 connections.
        assert_eq!(ct.flush_matching(None, &f("ct_ipv6_dst=::1")), 0);
        assert_eq!(ct.flush_matching(None, &f("ct_nw_proto=17")), 1);
        assert!(ct.is_empty());
    }
}
