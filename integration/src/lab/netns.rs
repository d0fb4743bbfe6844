//! A network namespace guard: created on `new`, deleted on drop with whatever still runs in it.

use super::cmd::{must, run, CmdOutput, Spawned};
use std::time::Duration;

/// Default bound for a command run inside a namespace.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// A network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create the namespace, bring `lo` up, and turn IPv6 off in it so hosts send no router
    /// solicitations or MLD reports: flow counters then count only the traffic a test makes.
    pub fn new(name: &str) -> Netns {
        must(&["ip", "netns", "add", name]);
        let ns = Netns {
            name: name.to_owned(),
        };
        // Absent on kernels without IPv6, where there is nothing to silence.
        for key in ["all", "default"] {
            let _ = ns.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
            ]);
        }
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn argv<'a>(&'a self, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut argv = vec!["ip", "netns", "exec", self.name.as_str()];
        argv.extend_from_slice(cmd);
        argv
    }

    /// Run `cmd` inside the namespace (bounded by [`EXEC_TIMEOUT`]).
    pub fn exec(&self, cmd: &[&str]) -> CmdOutput {
        self.exec_timeout(cmd, EXEC_TIMEOUT)
    }

    /// Run `cmd` inside the namespace, killed after `timeout`.
    pub fn exec_timeout(&self, cmd: &[&str], timeout: Duration) -> CmdOutput {
        run(&self.argv(cmd), timeout)
    }

    /// Run `cmd` inside the namespace; panic unless it succeeds. Returns stdout.
    pub fn exec_ok(&self, cmd: &[&str]) -> String {
        self.exec(cmd)
            .expect_ok(&format!("in {}: {}", self.name, cmd.join(" ")))
    }

    /// Start `cmd` in the background inside the namespace (`ip netns exec` execs it, so the
    /// guard's PID is the command's own); killed by PID when the guard drops.
    pub fn spawn(&self, cmd: &[&str]) -> Spawned {
        Spawned::start(&self.argv(cmd))
    }

    /// PIDs of processes running inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        run(&["ip", "netns", "pids", &self.name], Duration::from_secs(5))
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in here was started by this test (our namespace, our processes):
        // end it by PID, or the namespace would outlive its name.
        // A process may be entering the namespace right now (`ip netns exec` joins after it
        // starts): list and kill again until none is left (bounded).
        for _ in 0..5 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                crate::signal(pid, "KILL");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = run(&["ip", "netns", "del", &self.name], Duration::from_secs(10));
    }
}
