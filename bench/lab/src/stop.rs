//! Bounded loops: every traffic loop stops at a deadline, at a count, or on SIGINT/SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Stop {
    flag: Arc<AtomicBool>,
    deadline: Instant,
}

impl Stop {
    /// Registers SIGINT/SIGTERM handlers (so Drop guards run) and arms a deadline.
    pub fn new(limit: Duration) -> anyhow::Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
        }
        Ok(Stop {
            flag,
            deadline: Instant::now() + limit,
        })
    }

    pub fn signalled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    pub fn should_stop(&self) -> bool {
        self.signalled() || Instant::now() >= self.deadline
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}
