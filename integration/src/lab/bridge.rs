//! A plain Linux bridge in the root namespace: the reference switch for the harness's own
//! self-tests and for negative controls.

use super::cmd::{must, run};
use super::veth::Veth;
use std::time::Duration;

/// A Linux bridge, deleted on drop.
#[derive(Debug)]
pub struct LinuxBridge {
    name: String,
}

impl LinuxBridge {
    /// Create it up, without STP (ports forward at once) and without netfilter on bridged
    /// frames (a host firewall's FORWARD policy must not decide the harness's results).
    pub fn new(name: &str) -> LinuxBridge {
        must(&[
            "ip",
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
        ]);
        let br = LinuxBridge {
            name: name.to_owned(),
        };
        let _ = run(
            &[
                "ip",
                "link",
                "set",
                "dev",
                name,
                "type",
                "bridge",
                "nf_call_iptables",
                "0",
                "nf_call_ip6tables",
                "0",
                "nf_call_arptables",
                "0",
            ],
            Duration::from_secs(10),
        );
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        must(&["ip", "link", "set", "dev", name, "up"]);
        br
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Make the veth's root end a port of the bridge.
    pub fn attach(&self, veth: &Veth) {
        must(&[
            "ip",
            "link",
            "set",
            "dev",
            veth.root_end(),
            "master",
            &self.name,
        ]);
    }
}

impl Drop for LinuxBridge {
    fn drop(&mut self) {
        let _ = run(
            &["ip", "link", "del", "dev", &self.name],
            Duration::from_secs(10),
        );
    }
}
