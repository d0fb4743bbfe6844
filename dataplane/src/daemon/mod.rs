//! The `vswitchd` daemon: the switch's state (bridges and their published pipelines), the
//! handlers of control commands, and the Unix-socket server.
//!
//! Concurrency: control commands are rare and serialize on one mutex around the bridge map,
//! held for the whole edit (parse, build the next pipeline version, publish). Packet workers
//! never take that lock: they read the current version of a bridge's pipeline through an
//! `ArcSwap` at a quiet point between batches, so a publish is one atomic pointer swap and a
//! packet sees either the old or the new table set, never a mix.

pub mod bridge;
mod conntrack;
pub mod db;
pub mod fip;
pub mod handlers;
pub mod ownership;
pub mod ports;
pub mod server;
pub mod snat_pool;
pub mod trace;

pub use bridge::Bridge;
pub use fip::Ownership;
pub use handlers::Switch;
