//! The usual lab shape: N hosts, each a namespace with one veth whose root end is a port.

use super::names::Lab;
use super::netns::Netns;
use super::veth::Veth;

/// One lab host. Field order matters: the veth goes before its namespace.
#[derive(Debug)]
pub struct Host {
    /// The link to the root namespace; `veth.root_end()` is the switch port.
    pub veth: Veth,
    /// The host's namespace.
    pub ns: Netns,
    /// The host's IPv4 address (without prefix length).
    pub ip: String,
    /// The host's MAC (fixed, so assertions can name it).
    pub mac: String,
}

impl Host {
    /// The switch-side interface name.
    pub fn port(&self) -> &str {
        self.veth.root_end()
    }
}

/// `n` hosts named `h1..hn` (root ends `p1..pn`, namespace ends `eth0`), addresses
/// `10.<subnet>.0.<i>/24`, MACs `02:00:00:<subnet>:00:<i>`.
pub fn hosts(lab: &Lab, subnet: u8, n: usize) -> Vec<Host> {
    (1..=n)
        .map(|i| {
            let ns = lab.netns(&format!("h{i}"));
            let ip = format!("10.{subnet}.0.{i}");
            let mac = format!("02:00:00:{subnet:02x}:00:{i:02x}");
            let veth = Veth::builder(&lab.name(&format!("p{i}")), &ns, "eth0")
                .ip(&format!("{ip}/24"))
                .mac(&mac)
                .create();
            Host { veth, ns, ip, mac }
        })
        .collect()
}
