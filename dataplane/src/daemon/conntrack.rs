//! Conntrack commands: `dump-conntrack`, `flush-conntrack`, `conntrack-stats`, `set-ct-zone`.
//!
//! The tracker belongs to the datapath (one per datapath, shared by the workers); these
//! handlers only read it or change its settings. Zone settings are kept in the switch state
//! too, so `conntrack-stats` can list configured zones that have no entries yet.

use super::handlers::{State, Switch};
use conntrack::config::{Profile, ZoneConfig};
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
                cfg.profile = match v {
                    "strict" => Profile::Strict,
                    "liberal" => Profile::Liberal,
                    _ => return Err(format!("profile: {v:?} is neither strict nor liberal")),
                }
            }
            "limit" => cfg.limit = num()?,
            _ => {
                let Some(name) = k.strip_prefix("timeout.") else {
                    return Err(format!(
                        "unknown setting {k:?} (profile=, limit=, timeout.NAME=)"
                    ));
                };
                let t = &mut cfg.timeouts;
                let slot = match name {
                    "tcp_syn_sent" => &mut t.tcp_syn_sent,
                    "tcp_syn_recv" => &mut t.tcp_syn_recv,
                    "tcp_established" => &mut t.tcp_established,
                    "tcp_fin_wait" => &mut t.tcp_fin_wait,
                    "tcp_close_wait" => &mut t.tcp_close_wait,
                    "tcp_last_ack" => &mut t.tcp_last_ack,
                    "tcp_time_wait" => &mut t.tcp_time_wait,
                    "tcp_close" => &mut t.tcp_close,
                    "udp_unreplied" => &mut t.udp_unreplied,
                    "udp_replied" => &mut t.udp_replied,
                    "udp_assured" => &mut t.udp_assured,
                    "icmp" => &mut t.icmp,
                    "other" => &mut t.other,
                    _ => return Err(format!("unknown timeout {name:?}")),
                };
                *slot = num()?;
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

fn profile_name(p: Profile) -> &'static str {
    match p {
        Profile::Strict => "strict",
        Profile::Liberal => "liberal",
    }
}

impl State {
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
            .map(|(zone, entries)| {
                let cfg = ct.zone_config(zone);
                CtZoneDump {
                    zone,
                    entries,
                    limit: cfg.limit,
                    profile: profile_name(cfg.profile).to_string(),
                }
            })
            .collect();
        let named = |v: Vec<(&'static str, u64)>| {
            v.into_iter()
                .map(|(n, c)| (n.to_string(), c))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        Ok(Reply::ConntrackStats(CtStatsDump {
            entries: ct.len(),
            zones,
            invalid: named(ct.invalid_counters()),
            events: named(ct.event_counters()),
        }))
    }

    pub(super) fn set_ct_zone(&self, zone: u16, settings: &[String]) -> Outcome {
        if settings.is_empty() {
            return Err(bad(
                "set-ct-zone needs settings: profile=strict|liberal, limit=N, timeout.NAME=S"
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
