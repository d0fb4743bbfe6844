//! Pinning worker threads to CPUs (`vswitchd --pmd-cpus`), as Open vSwitch's `pmd-cpu-mask`.
//!
//! Why it matters beyond "one core per worker": the control threads (control socket, FIP
//! store, housekeeping) run wherever the process's own affinity allows, so a deployment can
//! keep them off the workers' cores (`taskset -c 0 vswitchd --pmd-cpus 1`). Measured on the
//! veth lab: when the control thread answers a `swctl` request on the worker's CPU, the Unix
//! socket's reply skb is memory-cgroup accounted and marks that CPU's current skb slab page,
//! after which every transmit skb the worker's AF_XDP wake-ups free from that page pays the
//! memcg free hook (~10 ns per packet); keeping the control thread on another CPU removes it.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Parse a Linux CPU list ("1", "2,3", "1-3,6", as `taskset -c` and `isolcpus` take it).
/// Duplicates are removed; the order is ascending.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let bad = || format!("bad CPU list element {part:?} (expected N or N-M, e.g. \"1,3-4\")");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().map_err(|_| bad())?,
                b.trim().parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("bad CPU range {part:?}: {lo} > {hi}"));
        }
        if hi >= CpuSet::count() {
            return Err(format!(
                "CPU {hi} in {part:?} is beyond the largest CPU number supported ({})",
                CpuSet::count() - 1
            ));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Pin the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .map_err(|e| format!("CPU {cpu} cannot be pinned to: {e}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| {
        format!("pinning to CPU {cpu}: {e} (offline, or outside this cgroup's cpuset?)")
    })
}

/// Check that a thread can be pinned to each of `cpus` (on a scratch thread, so the caller's
/// own affinity is untouched): run at start, so a wrong `--pmd-cpus` is an error, not a
/// warning in a worker.
pub fn check_cpus(cpus: &[usize]) -> Result<(), String> {
    let cpus = cpus.to_vec();
    std::thread::spawn(move || cpus.iter().try_for_each(|&c| pin_current_thread(c)))
        .join()
        .map_err(|_| "the CPU check thread panicked".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_taskset() {
        assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
        assert_eq!(parse_cpu_list("3,1-2, 2"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_cpu_list("0-0"), Ok(vec![0]));
        for bad in ["", "a", "1,", "3-1", "-1", "1-", "1;2", "99999"] {
            let err = parse_cpu_list(bad).expect_err(bad);
            assert!(err.contains("CPU"), "{bad}: {err}");
        }
    }

    #[test]
    fn pinning_to_an_available_cpu_works_and_a_missing_one_is_refused() {
        // CPU 0 exists on every machine the tests run on.
        assert_eq!(check_cpus(&[0]), Ok(()));
        let beyond = CpuSet::count() - 1;
        let err = check_cpus(&[0, beyond]).expect_err("no machine here has that many CPUs");
        assert!(err.contains(&beyond.to_string()), "{err}");
    }
}
