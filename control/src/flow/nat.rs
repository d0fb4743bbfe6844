//! The `nat(...)` argument of `ct`: `nat`, `nat(src=ADDR[-ADDR][:PORT[-PORT]],random|hash,persistent)`.

use super::ast::{Match, NatKind, NatSpec};
use super::field::Field;
use super::lexer::{split_kv, split_tokens};
use super::matches::{ETH_IP, ETH_IPV6};
use super::parse::FlowError;
use super::value::{parse_ipv4, parse_ipv6, parse_uint};
use std::net::IpAddr;

fn err(raw: &str, msg: impl Into<String>) -> FlowError {
    FlowError {
        token: raw.to_string(),
        message: msg.into(),
    }
}

/// Parse the inside of `nat(...)` for a flow with match `m`; errors name `raw` (the `ct` token).
pub fn parse_nat(raw: &str, inner: &str, m: &Match) -> Result<NatSpec, FlowError> {
    let mut n = NatSpec {
        kind: None,
        addrs: None,
        ports: None,
        random: false,
        persistent: false,
        hash: false,
        pool: None,
    };
    for arg in split_tokens(inner) {
        let t = split_kv(arg, &['=']).map_err(|e| err(raw, e))?;
        match (t.key, t.value) {
            ("src" | "dst", v) => {
                if n.kind.is_some() {
                    return Err(err(raw, "nat: only one of src and dst may be given"));
                }
                n.kind = Some(if t.key == "src" {
                    NatKind::Src
                } else {
                    NatKind::Dst
                });
                if let Some(name) = v.and_then(|r| r.strip_prefix("pool:")) {
                    if t.key != "src" {
                        return Err(err(raw, "nat: a pool (pool:NAME) is for src only"));
                    }
                    validate_pool_name(name).map_err(|e| err(raw, e))?;
                    n.pool = Some(name.to_string());
                } else if let Some(r) = v {
                    let (a, p) = parse_nat_range(r).map_err(|e| err(raw, e))?;
                    n.addrs = Some(a);
                    n.ports = p;
                }
            }
            ("random", None) => n.random = true,
            ("hash", None) => n.hash = true,
            ("persistent", None) => n.persistent = true,
            _ => return Err(err(raw, format!("{arg}: unknown nat argument"))),
        }
    }
    if n.random && n.hash {
        return Err(err(raw, "nat: only one of random and hash may be given"));
    }
    if n.kind.is_none() && (n.random || n.hash || n.persistent) {
        return Err(err(raw, "nat: flags need src or dst"));
    }
    if n.pool.is_some() {
        if n.persistent {
            return Err(err(
                raw,
                "nat: persistent has no meaning with a pool (one address)",
            ));
        }
        if m.exact(Field::EthType) != Some(ETH_IP) {
            return Err(err(
                raw,
                "nat(src=pool:NAME) needs ip in the match (IPv4 only)",
            ));
        }
    }
    if let Some((a, _)) = n.addrs {
        let want = if a.is_ipv4() { ETH_IP } else { ETH_IPV6 };
        if m.exact(Field::EthType) != Some(want) {
            return Err(err(raw, "nat address family does not match the flow's"));
        }
    }
    Ok(n)
}

/// Longest SNAT pool name.
pub const MAX_POOL_NAME: usize = 32;

/// Check an SNAT pool name: 1-32 characters of `[A-Za-z0-9_.-]` (it sits inside flow text).
pub fn validate_pool_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_POOL_NAME {
        return Err(format!(
            "pool name {name:?} must be 1-{MAX_POOL_NAME} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "pool name {name:?}: character {c:?} not allowed (use A-Z a-z 0-9 _ . -)"
        ));
    }
    Ok(())
}

type NatRange = ((IpAddr, IpAddr), Option<(u16, u16)>);

fn parse_nat_range(s: &str) -> Result<NatRange, String> {
    let bad = || format!("invalid nat range \"{s}\"");
    let (addrs, ports): (&str, Option<&str>) = if s.starts_with('[') {
        // [v6]-[v6]:ports
        match s.rfind(']') {
            Some(i) => {
                let rest = &s[i + 1..];
                match rest.strip_prefix(':') {
                    Some(p) => (&s[..=i], Some(p)),
                    None if rest.is_empty() => (s, None),
                    None => return Err(bad()),
                }
            }
            None => return Err(bad()),
        }
    } else if s.matches(':').count() >= 2 {
        (s, None) // bare IPv6, no ports
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let one = |a: &str| -> Result<IpAddr, String> {
        if let Some(v4) = parse_ipv4(a) {
            return Ok(IpAddr::from(std::net::Ipv4Addr::from(v4)));
        }
        parse_ipv6(a)
            .map(|v| IpAddr::from(std::net::Ipv6Addr::from(v)))
            .ok_or_else(bad)
    };
    let (a1, a2) = match split_range(addrs) {
        Some((x, y)) => (one(x)?, one(y)?),
        None => {
            let a = one(addrs)?;
            (a, a)
        }
    };
    if a1.is_ipv4() != a2.is_ipv4() || a1 > a2 {
        return Err(bad());
    }
    let ports = match ports {
        None => None,
        Some(p) => {
            let num = |x: &str| -> Result<u16, String> {
                parse_uint(x)
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or_else(bad)
            };
            let (p1, p2) = match p.split_once('-') {
                Some((x, y)) => (num(x)?, num(y)?),
                None => {
                    let x = num(p)?;
                    (x, x)
                }
            };
            // Port 0 means "no port range" on the wire: a range must start at 1.
            if p1 > p2 || p1 == 0 {
                return Err(bad());
            }
            Some((p1, p2))
        }
    };
    Ok(((a1, a2), ports))
}

/// Split `a-b` where each side may be a bracketed IPv6 address.
fn split_range(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('[') {
        let i = s.find(']')?;
        let rest = &s[i + 1..];
        return rest.strip_prefix('-').map(|r| (&s[..=i], r));
    }
    s.split_once('-')
}
