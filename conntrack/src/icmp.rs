//! ICMP and ICMPv6: which messages are queries, responses and errors.
//!
//! Queries (echo, timestamp, information, address mask; ICMPv6 echo and node information)
//! open a connection keyed by addresses and identifier; the matching response is its reply.
//! Errors (destination unreachable incl. fragmentation needed, time exceeded, parameter
//! problem, source quench, redirect; ICMPv6 destination unreachable, packet too big, time
//! exceeded, parameter problem) are never connections of their own: they are `+rel` to the
//! connection of the packet they quote. Everything else (router/neighbour discovery, MLD, ...)
//! is not tracked and is reported `+inv`, as Open vSwitch does.

/// What an ICMP message is to the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpKind {
    /// Opens a connection; carries the type of the expected response.
    Query { response: u8 },
    /// Answers a query.
    Response,
    /// Error quoting another packet.
    Error,
    /// Not tracked.
    Unsupported,
}

/// Classify an ICMP (`v6 == false`) or ICMPv6 type.
pub(crate) fn classify(v6: bool, icmp_type: u8) -> IcmpKind {
    use IcmpKind::*;
    if v6 {
        match icmp_type {
            128 => Query { response: 129 },
            139 => Query { response: 140 },
            129 | 140 => Response,
            1..=4 => Error,
            _ => Unsupported,
        }
    } else {
        match icmp_type {
            8 => Query { response: 0 },
            13 => Query { response: 14 },
            15 => Query { response: 16 },
            17 => Query { response: 18 },
            0 | 14 | 16 | 18 => Response,
            3 | 4 | 5 | 11 | 12 => Error,
            _ => Unsupported,
        }
    }
}

/// The query type a response answers (the inverse of [`classify`]'s `Query { response }`).
pub(crate) fn query_of(v6: bool, response: u8) -> Option<u8> {
    let q = if v6 {
        match response {
            129 => 128,
            140 => 139,
            _ => return None,
        }
    } else {
        match response {
            0 => 8,
            14 => 13,
            16 => 15,
            18 => 17,
            _ => return None,
        }
    };
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(classify(false, 8), IcmpKind::Query { response: 0 });
        assert_eq!(classify(false, 3), IcmpKind::Error);
        assert_eq!(classify(false, 11), IcmpKind::Error);
        assert_eq!(classify(true, 2), IcmpKind::Error);
        assert_eq!(classify(true, 129), IcmpKind::Response);
        assert_eq!(classify(true, 135), IcmpKind::Unsupported);
    }

    #[test]
    fn query_of_inverts_classify() {
        for v6 in [false, true] {
            for t in 0..=255u8 {
                if let IcmpKind::Query { response } = classify(v6, t) {
                    assert_eq!(query_of(v6, response), Some(t));
                }
            }
        }
        assert_eq!(query_of(false, 3), None);
    }
}
