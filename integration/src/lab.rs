//! Network-namespace lab harness: real kernel traffic through the switch.
//!
//! A lab is a few namespaces ("hosts"), each joined to the root namespace by a veth pair whose
//! root end becomes a switch port (or a Linux bridge port in the harness's own self-tests).
//! Every object is a guard that deletes what it created when dropped, also when the test
//! panics, and every name carries a per-run prefix (`sw<pid%1000>t<n>-…`, see [`names`]) so
//! concurrent runs never collide and `make lab-clean` can remove what a crashed run left behind
//! without touching anything else. Every command and traffic loop is bounded in time.

pub mod bridge;
pub mod cmd;
pub mod names;
pub mod netns;
pub mod privilege;
pub mod s1;
pub mod scripts;
pub mod switch;
pub mod topology;
pub mod traffic;
pub mod veth;
pub mod vlan;

pub use bridge::LinuxBridge;
pub use cmd::{eventually, CmdOutput, Spawned};
pub use names::Lab;
pub use netns::Netns;
pub use privilege::require_root;
pub use topology::{hosts, Host};
pub use traffic::{ping, ping_seqs, tcp_transfer, udp_exchange, BackgroundPing, Transfer};
pub use veth::{xdp_attached, Veth};
pub use vlan::{set_vlan, Vlan};
