//! UDP "state": whether the peer ever answered, and whether the flow kept going after that.

use serde::Serialize;

use crate::config::Timeouts;
use crate::tuple::Dir;

/// UDP connection states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UdpState {
    /// Only the original direction has been seen. Short timeout; first to be early-dropped.
    Unreplied,
    /// One answer seen (a query/response such as DNS).
    Replied,
    /// Traffic continued after the answer: a stream. Not early-dropped, longest timeout.
    Assured,
}

impl UdpState {
    /// Next state after a packet in direction `dir`.
    pub(crate) fn on_packet(self, dir: Dir) -> UdpState {
        match (self, dir) {
            (UdpState::Unreplied, Dir::Original) => UdpState::Unreplied,
            (UdpState::Unreplied, Dir::Reply) => UdpState::Replied,
            // Any packet after the first answer means the exchange is a stream.
            (UdpState::Replied | UdpState::Assured, _) => UdpState::Assured,
        }
    }

    /// Name for dumps.
    pub fn name(self) -> &'static str {
        match self {
            UdpState::Unreplied => "UNREPLIED",
            UdpState::Replied => "REPLIED",
            UdpState::Assured => "ASSURED",
        }
    }

    /// Timeout in seconds.
    pub fn timeout(self, t: &Timeouts) -> u32 {
        match self {
            UdpState::Unreplied => t.udp_unreplied,
            UdpState::Replied => t.udp_replied,
            UdpState::Assured => t.udp_assured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let s = UdpState::Unreplied.on_packet(Dir::Original);
        assert_eq!(s, UdpState::Unreplied);
        let s = s.on_packet(Dir::Reply);
        assert_eq!(s, UdpState::Replied);
        assert_eq!(s.on_packet(Dir::Original), UdpState::Assured);
        let t = Timeouts::default();
        assert_eq!(UdpState::Unreplied.timeout(&t), 30);
        assert_eq!(UdpState::Assured.timeout(&t), 180);
    }
}
