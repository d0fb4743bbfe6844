//! Conntrack commands: `dump-conntrack`, `flush-conntrack`, `conntrack-stats`, `set-ct-zone`.
//!
//! `set-ct-zone Z profile=strict|liberal|asym invalid=flows|drop|untracked limit=N
//! timeout.NAME=S`: a bad value is refused naming the token, and nothing changes.
//!
//! The tracker belongs to the datapath (one per datapath, shared by the workers); these
//! handlers only read it or change its settings. Zone settings are kept in the switch state
//! too, so `conntrack-stats` can list configured zones that have no entries yet.

use super::handlers::{State, Switch};
use conntrack::config::{InvalidAction, Profile, ZoneConfig};
use conntrack::filter::{FilterError, TupleFilter};
use conntrack::table::EntryInfo;
use conntrack::tuple::Tuple;
use control::protocol::{
    CtEntryDump, CtStatsDump, CtTupleDump, CtZoneDump, ErrorKind, ErrorReply, Reply,
};
use std::fmt::Write as _;

type Outcome = Result<Reply, ErrorReply>;

fn proto_name(p: u8) -> &'static str {
    match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmpv6",
        132 => "sctp",
        _ => "unknown",
    }
}

fn tuple_dump(t: &Tuple) -> CtTupleDump {
    CtTupleDump {
        src: t.src.to_string(),
        dst: t.dst.to_string(),
        sport: t.sport,
        dport: t.dport,
    }
}

/// One direction as `conntrack -L` prints it.
fn tuple_text(s: &mut String, proto: u8, t: &Tuple, packets: u64, bytes: u64) {
    let _ = write!(s, " src={} dst={}", t.src, t.dst);
    if matches!(proto, 1 | 58) {
        let _ = write!(s, " id={}", t.sport);
    } else if matches!(proto, 6 | 17 | 132) {
        let _ = write!(s, " sport={} dport={}", t.sport, t.dport);
    }
    let _ = write!(s, " packets={packets} bytes={bytes}");
}

/// `tcp 6 431999 ESTABLISHED src=.. dst=.. sport=.. dport=.. packets=.. bytes=.. src=..
/// ... [ASSURED] mark=0 zone=5 use=1`, like `conntrack -L`.
fn entry_line(e: &EntryInfo) -> String {
    let mut s = format!(
        "{:<8} {} {} {}",
        proto_name(e.proto),
        e.proto,
        e.timeout_remaining,
        e.state
    );
    tuple_text(&mut s, e.proto, &e.original, e.packets[0], e.bytes[0]);
    tuple_text(&mut s, e.proto, &e.reply, e.packets[1], e.bytes[1]);
    if e.assured {
        s.push_str(" [ASSURED]");
    }
    // Not in `conntrack -L` either: established with only the original direction seen
    // (profile asym).
    if e.one_sided {
        s.push_str(" [ONE_SIDED]");
    }
    // Not in `conntrack -L` (which shows NAT only through the reply tuple); said outright so
    // an operator need not compare tuples.
    if e.snat {
        s.push_str(" [SNAT]");
    }
    if e.dnat {
        s.push_str(" [DNAT]");
    }
    let _ = write!(s, " mark={}", e.mark);
    if e.label != 0 {
        let _ = write!(s, " labels={:#x}", e.label);
    }
    let _ = write!(s, " zone={} use=1", e.zone);
    s
}

fn bad(message: String) -> ErrorReply {
    ErrorReply::new(ErrorKind::BadRequest, message)
}

/// Apply `key=value` settings to `cfg`.
pub(super) fn parse_zone_settings(cfg: &mut ZoneConfig, settings: &[String]) -> Result<(), String> {
    for item in settings {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected key=value"))?;
        let num = || {
            v.parse::<u32>()
                .map_err(|_| format!("{k}: {v:?} is not a non-negative integer"))
        };
        match k {
            "profile" => {
                cfg.profile = Profile::from_name(v)
                    .ok_or_else(|| format!("profile: {v:?} is none of strict, liberal, asym"))?
            }
            "invalid" => {
                cfg.invalid = InvalidAction::from_name(v)
                    .ok_or_else(|| format!("invalid: {v:?} is none of flows, drop, untracked"))?
            }
            "limit" => cfg.limit = num()?,
            _ => {
                let Some(name) = k.strip_prefix("timeout.") else {
                    return Err(format!(
                        "unknown setting {k:?} (profile=, invalid=, limit=, timeout.NAME=)"
                    ));
                };
                let n = num()?;
                let slot = cfg
                    .timeouts
                    .by_name(name)
                    .ok_or_else(|| format!("unknown timeout {name:?}"))?;
                *slot = n;
            }
        }
    }
    Ok(())
}

/// The `flush-conntrack` tuple, or an error whose token is the offending `key=value`.
fn parse_flush_tuple(text: &str) -> Result<TupleFilter, ErrorReply> {
    TupleFilter::parse(text).map_err(|e| {
        let token = match &e {
            FilterError::Empty => None,
            FilterError::NotKeyValue(t)
            | FilterError::UnknownField(t)
            | FilterError::Repeated(t)
            | FilterError::MixedFamilies(t)
            | FilterError::BadValue { item: t, .. }
            | FilterError::Prerequisite { item: t, .. } => Some(t.clone()),
        };
        ErrorReply {
            token,
            ..bad(format!("conntrack tuple: {e}"))
        }
    })
}

/// One zone as `conntrack-stats` and `show` list it.
fn zone_dump(ct: &conntrack::Conntrack, zone: u16, entries: u32) -> CtZoneDump {
    let cfg = ct.zone_config(zone);
    let counts = ct.zone_invalid(zone);
    let named =
        |v: Vec<(&'static str, u64)>| v.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
    CtZoneDump {
        zone,
        entries,
        limit: cfg.limit,
        profile: cfg.profile.name().to_string(),
        invalid_action: cfg.invalid.name().to_string(),
        invalid: named(counts.invalid),
        dropped: named(counts.dropped),
    }
}

impl State {
    /// The zones configured with `set-ct-zone`, for `show`.
    pub(super) fn ct_zone_show(&self) -> Vec<CtZoneDump> {
        let Some(dp) = &self.datapath else {
            return Vec::new();
        };
        let ct = dp.conntrack();
        self.ct_zones
            .keys()
            .map(|&z| zone_dump(ct, z, ct.zone_len(z) as u32))
            .collect()
    }

    /// Apply zone settings to the tracker and remember them.
    pub(super) fn apply_ct_zone(&mut self, zone: u16, settings: &[String]) -> Result<(), String> {
        let mut cfg = self.ct_zones.get(&zone).map_or_else(
            || {
                self.datapath
                    .as_ref()
                    .map(|dp| dp.conntrack().zone_config(zone))
                    .unwrap_or_default()
            },
            |(c, _)| *c,
        );
        parse_zone_settings(&mut cfg, settings)?;
        if let Some(dp) = &self.datapath {
            dp.conntrack().set_zone_config(zone, cfg);
        }
        let written = self.ct_zones.entry(zone).or_default();
        written.0 = cfg;
        // Remembered as written (for the database), a later value of a key replacing the
        // earlier one.
        for item in settings {
            let key = item.split_once('=').map_or(item.as_str(), |(k, _)| k);
            written
                .1
                .retain(|old| old.split_once('=').map_or(old.as_str(), |(k, _)| k) != key);
            written.1.push(item.clone());
        }
        Ok(())
    }
}

impl Switch {
    pub(super) fn dump_conntrack(&self, zone: Option<u16>) -> Outcome {
        let st = self.lock();
        let dp = st.datapath()?;
        let mut entries = dp.conntrack().entries(zone, dp.ct_now_ms());
        entries.sort_by_key(|e| {
            (
                e.zone,
                e.original.src,
                e.original.dst,
                e.original.sport,
                e.original.dport,
            )
        });
        let entries = entries
            .iter()
            .map(|e| CtEntryDump {
                line: entry_line(e),
                zone: e.zone,
                proto: e.proto,
                state: e.state.to_string(),
                timeout: e.timeout_remaining,
                original: tuple_dump(&e.original),
                reply: tuple_dump(&e.reply),
                mark: e.mark,
                label: format!("{:#x}", e.label),
                packets: e.packets,
                bytes: e.bytes,
                assured: e.assured,
                snat: e.snat,
                dnat: e.dnat,
                one_sided: e.one_sided,
            })
            .collect();
        Ok(Reply::Conntrack { entries })
    }

    /// `flush-conntrack [--zone N] [TUPLE]`: a bad tuple is refused (naming the item) before
    /// anything is removed.
    pub(super) fn flush_conntrack(&self, zone: Option<u16>, tuple: Option<&str>) -> Outcome {
        let filter = tuple.map(parse_flush_tuple).transpose()?;
        let st = self.lock();
        let ct = st.datapath()?.conntrack();
        let count = match &filter {
            Some(f) => ct.flush_matching(zone, f),
            None => ct.flush(zone, None),
        };
        Ok(Reply::ConntrackFlushed { count })
    }

    pub(super) fn conntrack_stats(&self) -> Outcome {
        let st = self.lock();
        let ct = st.datapath()?.conntrack();
        let mut zones: std::collections::BTreeMap<u16, u32> =
            st.ct_zones.keys().map(|&z| (z, 0)).collect();
        for (z, n) in ct.zone_counts() {
            zones.insert(z, n);
        }
        let zones = zones
            .into_iter()
            .map(|(zone, entries)| zone_dump(ct, zone, entries))
            .collect();
        let named = |v: Vec<(&'static str, u64)>| {
            v.into_iter()
                .map(|(n, c)| (n.to_string(), c))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        Ok(Reply::ConntrackStats(CtStatsDump {
            entries: ct.len(),
            one_sided: ct.one_sided_count(),
            zones,
            invalid: named(ct.invalid_counters()),
            events: named(ct.event_counters()),
        }))
    }

    pub(super) fn set_ct_zone(&self, zone: u16, settings: &[String]) -> Outcome {
        if settings.is_empty() {
            return Err(bad(
                "set-ct-zone needs settings: profile=strict|liberal|asym, \
                 invalid=flows|drop|untracked, limit=N, timeout.NAME=S"
                    .into(),
            ));
        }
        // Check everything before changing anything.
        parse_zone_settings(&mut ZoneConfig::default(), settings).map_err(bad)?;
        let mut st = self.lock();
        let old = st.ct_zones.get(&zone).cloned();
        let old_cfg = st.datapath()?.conntrack().zone_config(zone);
        st.apply_ct_zone(zone, settings).map_err(bad)?;
        if let Err(e) = self.persist(&st, None) {
            // Not on disk: not applied either.
            match old {
                Some(o) => st.ct_zones.insert(zone, o),
                None => st.ct_zones.remove(&zone),
            };
            st.datapath()?.conntrack().set_zone_config(zone, old_cfg);
            return Err(e);
        }
        Ok(Reply::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str]) -> Result<ZoneConfig, String> {
        let mut cfg = ZoneConfig::default();
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        parse_zone_settings(&mut cfg, &items).map(|()| cfg)
    }

    #[test]
    fn profiles_invalid_actions_and_one_sided_timeouts() {
        let cfg = parse(&[
            "profile=asym",
            "invalid=drop",
            "timeout.tcp_one_sided_established=300",
            "timeout.tcp_one_sided_closing=5",
            "limit=50",
        ])
        .unwrap();
        assert_eq!(cfg.profile, Profile::Asym);
        assert_eq!(cfg.invalid, InvalidAction::Drop);
        assert_eq!(cfg.timeouts.tcp_one_sided_established, 300);
        assert_eq!(cfg.timeouts.tcp_one_sided_closing, 5);
        assert_eq!(cfg.limit, 50);
        assert_eq!(
            parse(&["invalid=untracked"]).unwrap().invalid,
            InvalidAction::Untracked
        );
        assert_eq!(
            parse(&["invalid=flows"]).unwrap().invalid,
            InvalidAction::Flows
        );
        assert_eq!(
            parse(&["profile=liberal"]).unwrap().profile,
            Profile::Liberal
        );
    }

    #[test]
    fn bad_values_name_the_token() {
        for (item, token) in [
            ("profile=loose", "\"loose\""),
            ("invalid=pass", "\"pass\""),
            ("timeout.tcp_one_sided=1", "\"tcp_one_sided\""),
            ("timeout.tcp_one_sided_closing=x", "\"x\""),
            ("bogus=1", "\"bogus\""),
        ] {
            let err = parse(&[item]).unwrap_err();
            assert!(err.contains(token), "{item}: {err}");
        }
    }

    #[test]
    fn dump_line_marks_one_sided_entries() {
        let ct = conntrack::Conntrack::default();
        ct.set_zone_config(
            7,
            ZoneConfig {
                profile: Profile::Asym,
                ..ZoneConfig::default()
            },
        );
        let tcp = |flags, seq| {
            conntrack::PacketInfo::tcp(
                7,
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                conntrack::TcpInfo {
                    sport: 40000,
                    dport: 22,
                    seq,
                    ack: 55,
                    window: 100,
                    flags,
                    wscale: None,
                    payload_len: 0,
                },
            )
        };
        use conntrack::packet::tcp_flags::{ACK, SYN};
        ct.process(&tcp(SYN, 10), 0, true);
        ct.process(&tcp(ACK, 11), 0, true);
        let e = &ct.entries(Some(7), 0)[0];
        let line = entry_line(e);
        assert!(
            line.contains("ESTABLISHED") && line.contains(" [ONE_SIDED]"),
            "{line}"
        );
        assert!(!line.contains("[ASSURED]"), "{line}");
    }
}
