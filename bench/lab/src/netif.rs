//! Interface facts from sysfs (in the caller's network namespace: `ip netns exec` remounts /sys).

use anyhow::{bail, Context, Result};
use std::fs;

fn read(dev: &str, what: &str) -> Result<String> {
    let p = format!("/sys/class/net/{dev}/{what}");
    fs::read_to_string(&p)
        .with_context(|| format!("reading {p} (does interface {dev} exist in this namespace?)"))
}

pub fn ifindex(dev: &str) -> Result<u32> {
    let s = read(dev, "ifindex")?;
    s.trim()
        .parse()
        .with_context(|| format!("bad ifindex for {dev}: {s:?}"))
}

pub fn mac(dev: &str) -> Result<[u8; 6]> {
    let s = read(dev, "address")?;
    match crate::frame::parse_mac(&s) {
        Some(m) => Ok(m),
        None => bail!("bad MAC address for {dev}: {s:?}"),
    }
}

pub fn counter(dev: &str, name: &str) -> Result<u64> {
    let s = read(dev, &format!("statistics/{name}"))?;
    s.trim()
        .parse()
        .with_context(|| format!("bad counter {name} for {dev}"))
}
