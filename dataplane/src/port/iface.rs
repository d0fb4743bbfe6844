//! Interface lookup: index, MTU, MAC and the number of active queues, read from
//! `/sys/class/net/IFACE` (safe code; sysfs reflects the network namespace the daemon runs in).
//!
//! The queue count is what an AF_XDP socket can bind to: the kernel accepts a queue id only if
//! it is below both `real_num_rx_queues` and `real_num_tx_queues`, and sysfs shows exactly those
//! as `queues/rx-N` and `queues/tx-N` (a fresh veth has 1 of each active, 2 possible, until
//! `ethtool -L DEV rx 2 tx 2`).

use super::PortError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the switch needs to know about an interface to open a port on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// MTU (L3 payload bytes; the largest frame is MTU + 14, + 4 per VLAN tag).
    pub mtu: u32,
    /// MAC address.
    pub mac: [u8; 6],
    /// Active RX queues usable by AF_XDP (min of active RX and TX queues, at least 1).
    pub rx_queues: u32,
}

/// True if `name` could be an interface name. Guards the sysfs path against `..` and `/`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
}

fn sys_dir(name: &str) -> Result<PathBuf, PortError> {
    if !valid_name(name) {
        return Err(PortError::NoSuchInterface(name.to_string()));
    }
    let dir = Path::new("/sys/class/net").join(name);
    if dir.exists() {
        Ok(dir)
    } else {
        Err(PortError::NoSuchInterface(name.to_string()))
    }
}

fn read_attr(dir: &Path, attr: &str, iface: &str) -> Result<String, PortError> {
    std::fs::read_to_string(dir.join(attr))
        .map(|s| s.trim().to_string())
        .map_err(|e| match e.kind() {
            // The interface vanished between the existence check and the read.
            std::io::ErrorKind::NotFound => PortError::NoSuchInterface(iface.to_string()),
            _ => PortError::Io {
                context: format!("reading /sys/class/net/{iface}/{attr}"),
                source: e,
            },
        })
}

fn parse_num(s: &str, what: &str, iface: &str) -> Result<u32, PortError> {
    s.parse().map_err(|_| PortError::Io {
        context: format!("parsing {what} of {iface}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{s:?}")),
    })
}

/// Parse "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Count `prefix-N` entries of `dir/queues`.
fn count_queues(dir: &Path, prefix: &str) -> u32 {
    let Ok(rd) = std::fs::read_dir(dir.join("queues")) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .is_some_and(|rest| rest.parse::<u32>().is_ok())
        })
        .count() as u32
}

/// Look an interface up by name.
pub fn lookup(name: &str) -> Result<IfaceInfo, PortError> {
    let dir = sys_dir(name)?;
    let ifindex = parse_num(&read_attr(&dir, "ifindex", name)?, "ifindex", name)?;
    let mtu = parse_num(&read_attr(&dir, "mtu", name)?, "mtu", name)?;
    let addr = read_attr(&dir, "address", name)?;
    // Interfaces without an Ethernet address (e.g. tun) have a different-length address.
    let mac = parse_mac(&addr).unwrap_or([0; 6]);
    let rx = count_queues(&dir, "rx-");
    let tx = count_queues(&dir, "tx-");
    let rx_queues = match (rx, tx) {
        (0, _) => 1,
        (r, 0) => r,
        (r, t) => r.min(t),
    };
    Ok(IfaceInfo {
        name: name.to_string(),
        ifindex,
        mtu,
        mac,
        rx_queues,
    })
}

/// Rate-limited "is the interface still there" check for a queue's `poll()`.
///
/// A deleted interface does not always make the socket fail (an unbound AF_XDP socket just
/// stops receiving), so queues probe the ifindex now and then, and at once when a system call
/// returned an error that hints at it (`suspect`). The probe itself is the backend's (it is a
/// system call); this only decides when to run it, without allocating.
#[derive(Debug)]
pub(crate) struct Liveness {
    ifindex: u32,
    next_check: Instant,
    suspect: bool,
    gone: bool,
    /// Calls left before the clock is consulted again (reading it on every poll was a few
    /// percent of a busy worker's time).
    countdown: u32,
}

impl Liveness {
    /// How often an idle, error-free queue re-checks its interface.
    pub(crate) const PERIOD: Duration = Duration::from_millis(200);
    /// Polls between two clock reads.
    const CALLS_PER_CLOCK_READ: u32 = 1024;

    pub(crate) fn new(ifindex: u32) -> Self {
        Liveness {
            ifindex,
            next_check: Instant::now() + Self::PERIOD,
            suspect: false,
            gone: false,
            countdown: Self::CALLS_PER_CLOCK_READ,
        }
    }

    /// An I/O error hinted that the interface may be gone: check on the next `alive`.
    pub(crate) fn suspect(&mut self) {
        self.suspect = true;
    }

    /// Mark the interface as definitely gone (e.g. the socket reported ENXIO: unbound).
    pub(crate) fn set_gone(&mut self) {
        self.gone = true;
    }

    /// False once the interface has disappeared (sticky). `probe(ifindex)` says whether the
    /// index still exists; it runs at most every [`Self::PERIOD`] unless an error is suspected.
    pub(crate) fn alive(&mut self, probe: impl FnOnce(u32) -> bool) -> bool {
        if self.gone {
            return false;
        }
        if !self.suspect {
            self.countdown = self.countdown.saturating_sub(1);
            if self.countdown > 0 {
                return true;
            }
        }
        self.countdown = Self::CALLS_PER_CLOCK_READ;
        let now = Instant::now();
        if self.suspect || now >= self.next_check {
            self.suspect = false;
            self.next_check = now + Self::PERIOD;
            if !probe(self.ifindex) {
                self.gone = true;
            }
        }
        !self.gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(valid_name("eth0"));
        assert!(valid_name("pl12a-root"));
        for bad in ["", ".", "..", "a/b", "0123456789abcdef", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(matches!(
            lookup("../lo"),
            Err(PortError::NoSuchInterface(_))
        ));
    }

    #[test]
    fn mac_parses() {
        assert_eq!(
            parse_mac("02:00:0a:ff:10:01"),
            Some([2, 0, 0x0a, 0xff, 0x10, 1])
        );
        assert_eq!(parse_mac("02:00:0a:ff:10"), None);
        assert_eq!(parse_mac("02:00:0a:ff:10:01:02"), None);
        assert_eq!(parse_mac("zz:00:0a:ff:10:01"), None);
    }

    #[test]
    fn loopback_is_found_and_missing_is_not() {
        let lo = lookup("lo").expect("lo exists");
        assert_eq!(lo.ifindex, 1);
        assert!(lo.mtu >= 1500);
        assert!(lo.rx_queues >= 1);
        assert!(matches!(
            lookup("nosuchif0"),
            Err(PortError::NoSuchInterface(n)) if n == "nosuchif0"
        ));
    }

    #[test]
    fn liveness_is_rate_limited_and_sticky() {
        let mut l = Liveness::new(7);
        let mut probes = 0;
        // Not due yet: no probe.
        assert!(l.alive(|_| {
            probes += 1;
            true
        }));
        assert_eq!(probes, 0);
        l.suspect();
        assert!(l.alive(|i| {
            assert_eq!(i, 7);
            probes += 1;
            true
        }));
        assert_eq!(probes, 1);
        l.suspect();
        assert!(!l.alive(|_| false));
        // Sticky: no further probing.
        assert!(!l.alive(|_| unreachable!()));
    }
}
