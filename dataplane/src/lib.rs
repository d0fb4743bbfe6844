//! The switch's dataplane: flow keys, packet parsing, classifier, pipeline, action execution,
//! and the `vswitchd` daemon that serves the control socket.
#![warn(missing_docs)]

pub mod classifier;
pub mod daemon;
pub mod flowtable;
pub mod key;
pub mod packet;
