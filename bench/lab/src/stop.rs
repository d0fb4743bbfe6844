//! Bounded loops: every traffic loop stops at a deadline, at a count, or on SIGINT/SIGTERM.
//! After a signal the process dies of that same signal once its guards are dropped
//! (`exit_like_signal`), so a calling shell sees an interrupted child and runs its own traps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The signal received (0: none), shared by every `Stop`.
fn received() -> &'static Arc<AtomicUsize> {
    static R: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    R.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

pub struct Stop {
    deadline: Instant,
}

impl Stop {
    /// Registers SIGINT/SIGTERM handlers (so Drop guards run) and arms a deadline.
    pub fn new(limit: Duration) -> anyhow::Result<Self> {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_usize(sig, Arc::clone(received()), sig as usize)?;
        }
        Ok(Stop {
            deadline: Instant::now() + limit,
        })
    }

    pub fn signalled(&self) -> bool {
        received().load(Ordering::Relaxed) != 0
    }

    pub fn should_stop(&self) -> bool {
        self.signalled() || Instant::now() >= self.deadline
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// If a signal stopped us, die of it now (default action), after the caller's cleanup.
pub fn exit_like_signal() {
    let sig = received().load(Ordering::Relaxed);
    if sig != 0 {
        let _ = signal_hook::low_level::emulate_default_handler(sig as i32);
    }
}
