//! veth pairs between the root namespace and a lab namespace, and whether XDP is attached.

use super::cmd::{must, run};
use super::netns::Netns;
use std::time::Duration;

/// A veth pair: `root_end` stays in the root namespace (the switch's port), `ns_end` lives in
/// a namespace. Dropping it deletes the root end, which takes the pair (and any XDP program
/// attached to it) with it.
#[derive(Debug)]
pub struct Veth {
    root_end: String,
    ns: String,
    ns_end: String,
}

/// Options for [`Veth`]; see [`Veth::builder`].
#[derive(Debug)]
pub struct VethBuilder<'a> {
    root_end: String,
    ns: &'a Netns,
    ns_end: String,
    ip_cidr: Option<String>,
    mac: Option<String>,
}

impl Veth {
    /// A pair with `ip_cidr` (e.g. `10.11.0.1/24`) on the namespace end.
    pub fn new(root_end: &str, ns: &Netns, ns_end: &str, ip_cidr: &str) -> Veth {
        Veth::builder(root_end, ns, ns_end).ip(ip_cidr).create()
    }

    /// A pair to configure further (no address, a fixed MAC, ...).
    pub fn builder<'a>(root_end: &str, ns: &'a Netns, ns_end: &str) -> VethBuilder<'a> {
        VethBuilder {
            root_end: root_end.to_owned(),
            ns,
            ns_end: ns_end.to_owned(),
            ip_cidr: None,
            mac: None,
        }
    }

    /// Root-namespace end (the switch port's interface).
    pub fn root_end(&self) -> &str {
        &self.root_end
    }

    /// Namespace end.
    pub fn ns_end(&self) -> &str {
        &self.ns_end
    }

    /// MAC address of the namespace end (the host's MAC as the switch learns it).
    pub fn ns_mac(&self) -> String {
        let out = must(&[
            "ip",
            "-n",
            &self.ns,
            "-j",
            "link",
            "show",
            "dev",
            &self.ns_end,
        ]);
        link_field(&out, "address").unwrap_or_default()
    }
}

impl VethBuilder<'_> {
    /// Address (CIDR) on the namespace end.
    pub fn ip(mut self, cidr: &str) -> Self {
        self.ip_cidr = Some(cidr.to_owned());
        self
    }

    /// MAC address of the namespace end.
    pub fn mac(mut self, mac: &str) -> Self {
        self.mac = Some(mac.to_owned());
        self
    }

    /// Create and configure the pair.
    pub fn create(self) -> Veth {
        let ns = self.ns.name();
        // Create the peer directly inside the namespace: its name is then free (e.g. `eth0`)
        // and never exists in the root namespace.
        must(&[
            "ip",
            "link",
            "add",
            &self.root_end,
            "type",
            "veth",
            "peer",
            "name",
            &self.ns_end,
            "netns",
            ns,
        ]);
        // From here on the guard deletes the pair even if a later step panics.
        let veth = Veth {
            root_end: self.root_end,
            ns: ns.to_owned(),
            ns_end: self.ns_end,
        };
        // Keep the root stack quiet on the port: no IPv6 link-local address, no RS/MLD frames.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", veth.root_end),
            "1",
        );
        if let Some(mac) = &self.mac {
            must(&[
                "ip",
                "-n",
                ns,
                "link",
                "set",
                "dev",
                &veth.ns_end,
                "address",
                mac,
            ]);
        }
        if let Some(cidr) = &self.ip_cidr {
            must(&["ip", "-n", ns, "addr", "add", cidr, "dev", &veth.ns_end]);
        }
        // The namespace stack would otherwise hand the switch CHECKSUM_PARTIAL frames (AF_XDP
        // cannot tell) and GSO super-frames larger than a umem chunk.
        self.ns.exec_ok(&[
            "ethtool",
            "-K",
            &veth.ns_end,
            "tx",
            "off",
            "tso",
            "off",
            "gso",
            "off",
            "gro",
            "off",
        ]);
        must(&["ip", "-n", ns, "link", "set", "dev", &veth.ns_end, "up"]);
        must(&["ip", "link", "set", "dev", &veth.root_end, "up"]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Absent already when a test deleted it on purpose or the namespace went first.
        let _ = run(
            &["ip", "link", "del", "dev", &self.root_end],
            Duration::from_secs(10),
        );
    }
}

/// Whether an XDP program is attached to root-namespace interface `ifname` (any mode).
pub fn xdp_attached(ifname: &str) -> bool {
    let out = run(
        &["ip", "-j", "-d", "link", "show", "dev", ifname],
        Duration::from_secs(10),
    );
    out.ok && link_has_xdp(&out.stdout)
}

fn link_field(json: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.get(0)?.get(field)?.as_str().map(str::to_owned)
}

/// `ip -j link` shows an `xdp` object when a program is attached (`prog/xdp` in text form).
fn link_has_xdp(json: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.get(0).map(|l| l.get("xdp").is_some()))
        .unwrap_or(false)
}
