//! The switch's dataplane: flow keys, packet parsing, classifier, pipeline, action execution,
//! and the `vswitchd` daemon that serves the control socket.
#![warn(missing_docs)]

pub mod checksum;
pub mod classifier;
pub mod daemon;
pub mod datapath;
pub mod execute;
pub mod flowtable;
pub mod key;
pub mod packet;
pub mod port;
pub mod xlate;
