//! Opening a port: pick the backend the request asks for, with AF_XDP → AF_PACKET fallback.
//!
//! Fallback policy: `auto` tries AF_XDP first (all active queues, native then generic XDP) and,
//! if that fails for any reason, logs a warning with the reason and opens AF_PACKET instead (one
//! queue). An explicit `afxdp` or `afpacket` request gets that kind or the error. A missing
//! interface is never "fallen back" from: it is `NoSuchInterface` for every request.
//!
//! A VXLAN port has no interface: [`open_vxlan`] binds its UDP socket instead (see
//! [`super::vxlan`]).

use super::afpacket::AfPacketQueue;
use super::iface::{self, IfaceInfo};
use super::vxlan::{self, VxlanConfig};
use super::{afxdp, OpenedPort, PortError, PortInfo, PortKind, PortRequest};

/// Open a port on `iface` as `req` asks. See the module docs for the fallback policy.
pub fn open(iface: &str, req: PortRequest) -> Result<OpenedPort, PortError> {
    let info = iface::lookup(iface)?;
    match req {
        PortRequest::Afxdp => open_afxdp(&info),
        PortRequest::Afpacket => open_afpacket(&info),
        PortRequest::Auto => match open_afxdp(&info) {
            Ok(p) => Ok(p),
            Err(e @ PortError::NoSuchInterface(_)) | Err(e @ PortError::Gone(_)) => Err(e),
            Err(e) => {
                tracing::warn!(iface, "AF_XDP unavailable, falling back to AF_PACKET: {e}");
                open_afpacket(&info)
            }
        },
    }
}

/// Open the logical VXLAN port `name` as `cfg` says (bind failures name the address).
pub fn open_vxlan(name: &str, cfg: &VxlanConfig) -> Result<OpenedPort, PortError> {
    vxlan::open(name, cfg)
}

fn port_info(info: &IfaceInfo, kind: PortKind, mode: String, queues: usize) -> PortInfo {
    PortInfo {
        iface: info.name.clone(),
        ifindex: info.ifindex,
        kind,
        mode,
        queues: queues as u32,
        mtu: info.mtu,
        mac: info.mac,
    }
}

fn open_afxdp(info: &IfaceInfo) -> Result<OpenedPort, PortError> {
    let (queues, mode) = afxdp::open(info)?;
    Ok(OpenedPort {
        info: port_info(info, PortKind::Afxdp, mode, queues.len()),
        queues,
    })
}

fn open_afpacket(info: &IfaceInfo) -> Result<OpenedPort, PortError> {
    let q = AfPacketQueue::open(info)?;
    Ok(OpenedPort {
        info: port_info(info, PortKind::Afpacket, String::new(), 1),
        queues: vec![Box::new(q)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_reported_for_every_request() {
        for req in [PortRequest::Auto, PortRequest::Afxdp, PortRequest::Afpacket] {
            assert!(matches!(
                open("nosuchif0", req),
                Err(PortError::NoSuchInterface(n)) if n == "nosuchif0"
            ));
        }
    }
}
