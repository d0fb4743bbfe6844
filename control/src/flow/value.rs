//! Parsing and formatting of literal values: integers, MAC, IPv4 and IPv6 addresses, with
//! optional masks, as `ovs-ofctl` writes them.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Parse an unsigned integer: `0x`-prefixed hex or decimal. Rejects signs, empty text and
/// anything that overflows 128 bits.
pub fn parse_uint(s: &str) -> Option<u128> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u128::from_str_radix(digits, radix).ok()
}

/// Parse an integer that must fit in `width` bits.
pub fn parse_uint_width(s: &str, width: u8) -> Result<u128, String> {
    let v = parse_uint(s).ok_or_else(|| format!("`{s}` is not a valid integer"))?;
    if v & !super::field::ones(width) != 0 {
        return Err(format!("value {s} does not fit into {width} bits"));
    }
    Ok(v)
}

/// Parse a MAC address `xx:xx:xx:xx:xx:xx` (hex digits, either case).
pub fn parse_mac(s: &str) -> Option<u128> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut v: u128 = 0;
    for p in parts {
        if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        v = (v << 8) | u128::from(u8::from_str_radix(p, 16).ok()?);
    }
    Some(v)
}

/// Parse a dotted-quad IPv4 address (each octet 0..=255).
pub fn parse_ipv4(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut v: u32 = 0;
    for p in parts {
        if p.is_empty() || p.len() > 3 || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let o: u32 = p.parse().ok()?;
        if o > 255 {
            return None;
        }
        v = (v << 8) | o;
    }
    Some(v)
}

/// Parse an IPv6 address (bracketed or not).
pub fn parse_ipv6(s: &str) -> Option<u128> {
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<Ipv6Addr>().ok().map(u128::from)
}

/// A prefix-length mask of `len` high bits in a `width`-bit field.
pub fn prefix_mask(len: u32, width: u8) -> u128 {
    let w = u32::from(width);
    if len == 0 {
        0
    } else {
        super::field::ones(width) & !(super::field::ones((w - len.min(w)) as u8))
    }
}

/// If `mask` is a prefix mask (contiguous high bits) of a `width`-bit field, its length.
pub fn prefix_len(mask: u128, width: u8) -> Option<u32> {
    let n = mask.count_ones();
    (prefix_mask(n, width) == mask).then_some(n)
}

/// Parse `ADDR[/PREFIX|/MASK]` for IPv4.
pub fn parse_ipv4_masked(s: &str) -> Result<(u128, u128), String> {
    let (a, m) = split_mask(s);
    let v = parse_ipv4(a).ok_or_else(|| format!("{a}: invalid IPv4 address"))?;
    let mask = match m {
        None => 0xffff_ffff,
        Some(m) => {
            if let Some(ip) = parse_ipv4(m) {
                u128::from(ip)
            } else {
                match m.parse::<u32>() {
                    Ok(n) if n <= 32 && !m.starts_with('+') => prefix_mask(n, 32),
                    _ => return Err(format!("{s}: invalid IPv4 prefix or mask")),
                }
            }
        }
    };
    Ok((u128::from(v), mask))
}

/// Parse `ADDR[/PREFIX|/MASK]` for IPv6.
pub fn parse_ipv6_masked(s: &str) -> Result<(u128, u128), String> {
    let (a, m) = split_mask(s);
    let v = parse_ipv6(a).ok_or_else(|| format!("{a}: invalid IPv6 address"))?;
    let mask = match m {
        None => u128::MAX,
        Some(m) => {
            if let Some(ip) = parse_ipv6(m) {
                ip
            } else {
                match m.parse::<u32>() {
                    Ok(n) if n <= 128 && !m.starts_with('+') => prefix_mask(n, 128),
                    _ => return Err(format!("{s}: invalid IPv6 prefix or mask")),
                }
            }
        }
    };
    Ok((v, mask))
}

/// Parse `MAC[/MAC]`.
pub fn parse_mac_masked(s: &str) -> Result<(u128, u128), String> {
    let (a, m) = split_mask(s);
    let v = parse_mac(a).ok_or_else(|| format!("{a}: invalid Ethernet address"))?;
    let mask = match m {
        None => 0xffff_ffff_ffff,
        Some(m) => parse_mac(m).ok_or_else(|| format!("{m}: invalid Ethernet mask"))?,
    };
    Ok((v, mask))
}

/// Parse `INT[/INT]` within `width` bits.
pub fn parse_uint_masked(s: &str, width: u8) -> Result<(u128, u128), String> {
    let (a, m) = split_mask(s);
    let v = parse_uint_width(a, width)?;
    let mask = match m {
        None => super::field::ones(width),
        Some(m) => parse_uint_width(m, width)?,
    };
    Ok((v, mask))
}

/// Split `value/mask` at the first `/`.
pub fn split_mask(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    }
}

/// `aa:bb:cc:dd:ee:ff`, lower case.
pub fn format_mac(v: u128) -> String {
    let b = (v as u64).to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

/// Dotted quad.
pub fn format_ipv4(v: u128) -> String {
    Ipv4Addr::from(v as u32).to_string()
}

/// RFC 5952 text.
pub fn format_ipv6(v: u128) -> String {
    Ipv6Addr::from(v).to_string()
}

/// OVS's integer style for "hex" fields: `0` for zero, else `0x…`.
pub fn format_hex(v: u128) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_uint("0x43e"), Some(0x43e));
        assert_eq!(parse_uint("17"), Some(17));
        assert_eq!(parse_uint("0x"), None);
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("1a"), None);
        assert!(parse_uint_width("256", 8).is_err());
        assert_eq!(parse_uint_masked("0x5/0xf", 16), Ok((5, 0xf)));
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_mac("FA:16:3e:4b:eb:3c"), Some(0xfa163e4beb3c));
        assert_eq!(parse_mac("fa:16:3e:4b:eb"), None);
        assert_eq!(parse_ipv4("88.88.88.4"), Some(0x58585804));
        assert_eq!(parse_ipv4("300.1.1.1"), None);
        assert_eq!(parse_ipv4("1.1.1"), None);
        assert_eq!(
            parse_ipv4_masked("10.0.0.0/8"),
            Ok((0x0a000000, 0xff000000))
        );
        assert_eq!(
            parse_ipv4_masked("1.2.3.4/255.255.0.255"),
            Ok((0x01020304, 0xffff00ff))
        );
        assert!(parse_ipv4_masked("1.2.3.4/33").is_err());
        assert_eq!(
            parse_ipv6_masked("2001:db8::/32").unwrap().1.count_ones(),
            32
        );
        assert_eq!(format_mac(0xfa163e4beb3c), "fa:16:3e:4b:eb:3c");
        assert_eq!(prefix_len(0xffffff00, 32), Some(24));
        assert_eq!(prefix_len(0xffff00ff, 32), None);
        assert_eq!(format_hex(0), "0");
        assert_eq!(format_hex(0x1f), "0x1f");
    }
}
