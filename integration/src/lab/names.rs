//! Lab object names: one prefix per lab, unique across concurrent runs and recognisable by
//! `make lab-clean`.
//!
//! Scheme: `sw<pid % 1000>t<n>-<suffix>`, e.g. `sw417t3-h1`. `scripts/lab-clean.sh` removes
//! namespaces and root-namespace links matching `^sw[0-9]+t[0-9]+-` and nothing else, so every
//! object a lab creates must be named through [`Lab::name`]. Linux limits interface names to
//! 15 bytes, which is why the prefix is short and suffixes must be too.

use super::{bridge::LinuxBridge, netns::Netns, veth::Veth};
use std::sync::atomic::{AtomicU32, Ordering};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Allocates the names of one lab; the objects themselves are guards of their own.
#[derive(Debug, Clone)]
pub struct Lab {
    prefix: String,
}

impl Lab {
    /// A fresh prefix not in use by any namespace or link (a crashed run with the same
    /// pid % 1000 may have left some behind; skip rather than collide with it).
    pub fn new() -> Lab {
        static N: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id() % 1000;
        let taken = existing_names();
        loop {
            let prefix = format!("sw{pid}t{}", N.fetch_add(1, Ordering::Relaxed));
            let dash = format!("{prefix}-");
            if !taken.iter().any(|n| n.starts_with(&dash)) {
                return Lab { prefix };
            }
        }
    }

    /// The prefix, e.g. `sw417t3`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>-<suffix>`; panics if it would not fit an interface name.
    pub fn name(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        assert!(
            name.len() <= IFNAME_MAX,
            "lab name {name:?} is longer than {IFNAME_MAX} bytes: shorten the suffix"
        );
        name
    }

    /// A namespace named `<prefix>-<suffix>`.
    pub fn netns(&self, suffix: &str) -> Netns {
        Netns::new(&self.name(suffix))
    }

    /// A veth pair: root end `<prefix>-<suffix>`, the other end `ns_end` inside `ns` with
    /// `ip_cidr` (offloads off, see [`Veth`]).
    pub fn veth(&self, suffix: &str, ns: &Netns, ns_end: &str, ip_cidr: &str) -> Veth {
        Veth::new(&self.name(suffix), ns, ns_end, ip_cidr)
    }

    /// A Linux bridge `<prefix>-<suffix>` in the root namespace.
    pub fn bridge(&self, suffix: &str) -> LinuxBridge {
        LinuxBridge::new(&self.name(suffix))
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

/// Namespaces and root-namespace interfaces that exist now.
pub fn existing_names() -> Vec<String> {
    let mut names = netns_names();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        names.extend(
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    names
}

/// Names listed by `ip netns list` (first word of each line).
pub fn netns_names() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Root-namespace interfaces whose name starts with `prefix`.
pub fn links_with_prefix(prefix: &str) -> Vec<String> {
    existing_names()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}
