//! A VLAN-tagged interface inside a lab namespace.
//!
//! With 802.1Q in the kernel it is the usual `ip link add link X name X.10 type vlan id 10`.
//! Kernels built without it (`CONFIG_VLAN_8021Q`, like this lab's machine, which also lacks
//! bridge VLAN filtering and tc's vlan action) get the same interface from userspace: a TAP
//! device `X.10` carries the host's address and untagged frames, and a small relay tags what
//! the TAP sends and passes to it what arrives on X with VID 10 (read through AF_PACKET, where
//! the kernel reports the tag it stripped in PACKET_AUXDATA). The host's stack sees an ordinary
//! VLAN interface either way; the switch sees 802.1Q frames on the wire either way.

use super::cmd::Spawned;
use super::netns::Netns;
use std::time::Duration;

/// A VLAN interface; the relay (if any) stops when this drops, the interface goes with the
/// namespace.
pub struct Vlan {
    name: String,
    _relay: Option<Spawned>,
}

impl Vlan {
    /// Interface name, `<parent>.<vid>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the kernel's 802.1Q driver provides it (false: the userspace relay does).
    pub fn in_kernel(&self) -> bool {
        self._relay.is_none()
    }
}

/// Relay between TAP `name` (untagged) and `parent` (tagged with `vid`), for `life` seconds at
/// most.
const RELAY: &str = r#"
import fcntl, os, select, socket, struct, sys, time
parent, vid, name, life = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID, ETH_P_ALL = 263, 8, 0x10, 3
tap = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
raw.bind((parent, ETH_P_ALL))
raw.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
print("ready", flush=True)
deadline = time.time() + life
while time.time() < deadline:
    ready, _, _ = select.select([tap, raw], [], [], 1.0)
    if tap in ready:
        f = os.read(tap, 65536)
        raw.send(f[:12] + struct.pack("!HH", 0x8100, vid) + f[12:])
    if raw in ready:
        f, anc, _, addr = raw.recvmsg(65536, socket.CMSG_SPACE(20))
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        tci = None
        for level, kind, data in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 20:
                status, _, _, _, _, vtci, _ = struct.unpack("IIIHHHH", data[:20])
                if status & TP_STATUS_VLAN_VALID:
                    tci = vtci
        if tci is None and f[12:14] == b"\x81\x00":
            tci = struct.unpack("!H", f[14:16])[0]
            f = f[:12] + f[16:]
        if tci is not None and tci & 0xFFF == vid:
            os.write(tap, f)
"#;

/// Create VLAN interface `<parent>.<vid>` inside `ns`, with `ip_cidr` if given, up.
pub fn set_vlan(ns: &Netns, parent: &str, vid: u16, ip_cidr: Option<&str>) -> Vlan {
    let name = format!("{parent}.{vid}");
    let vid_s = vid.to_string();
    let kernel = ns.exec(&[
        "ip", "link", "add", "link", parent, "name", &name, "type", "vlan", "id", &vid_s,
    ]);
    let relay = if kernel.ok {
        // Some features are fixed on VLAN devices; what can be turned off is what matters.
        let _ = ns.exec(&[
            "ethtool", "-K", &name, "tx", "off", "tso", "off", "gso", "off",
        ]);
        // Put the tag in the frame bytes rather than in skb metadata, which an XDP program on
        // the switch's end of the veth might not see.
        let _ = ns.exec(&["ethtool", "-K", parent, "txvlan", "off"]);
        None
    } else {
        let relay = ns.spawn(&["python3", "-c", RELAY, parent, &vid_s, &name, "900"]);
        assert!(
            relay.wait_line(|l| l == "ready", Duration::from_secs(10)),
            "VLAN relay for {name} did not start in {}",
            ns.name()
        );
        Some(relay)
    };
    if let Some(cidr) = ip_cidr {
        ns.exec_ok(&["ip", "addr", "add", cidr, "dev", &name]);
    }
    ns.exec_ok(&["ip", "link", "set", "dev", &name, "up"]);
    Vlan {
        name,
        _relay: relay,
    }
}
