//! The control side of the switch: the `ovs-ofctl`-compatible flow language, the request/response
//! protocol spoken over the daemon's Unix socket, and the client used by `swctl`.
#![warn(missing_docs)]

pub mod client;
pub mod flow;
pub mod protocol;
