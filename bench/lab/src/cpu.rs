//! CPU accounting over exactly the generator's traffic window: busy share of CPU 0 and CPU 1
//! from /proc/stat (kernel peers such as the bridge show up only there) and the peer
//! process's utime+stime from /proc/PID/stat (all its threads). CPU 1's softirq share is
//! reported apart: a kernel router's forwarding runs there in softirq (see `bench/LAB.md`).

use std::fs;

/// (busy, total, softirq) jiffies of each CPU, indexed by CPU number.
fn cpu_jiffies() -> Vec<(u64, u64, u64)> {
    let Ok(s) = fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    s.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let get = |i: usize| v.get(i).copied().unwrap_or(0);
            // user nice system idle iowait irq softirq steal
            let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
            (busy, busy + get(3) + get(4), get(6))
        })
        .collect()
}

/// utime + stime of a process in clock ticks, None if it is gone.
fn proc_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub struct Snapshot {
    cpus: Vec<(u64, u64, u64)>,
    peer: Option<u64>,
}

pub fn snapshot(peer: Option<u32>) -> Snapshot {
    Snapshot {
        cpus: cpu_jiffies(),
        peer: peer.and_then(proc_ticks),
    }
}

/// "cpu0=.. cpu1=.. cpu1_softirq=.. peer_cpu=.." (percent; "-" when unknown) between two
/// snapshots.
pub fn report(a: &Snapshot, b: &Snapshot, wall_secs: f64, ticks_per_sec: u64) -> String {
    let pct = |i: usize, field: fn(&(u64, u64, u64)) -> u64| match (a.cpus.get(i), b.cpus.get(i)) {
        (Some(x), Some(y)) if y.1 > x.1 => {
            format!(
                "{:.0}",
                100.0 * (field(y) - field(x)) as f64 / (y.1 - x.1) as f64
            )
        }
        _ => "-".to_string(),
    };
    let share = |i: usize| pct(i, |c| c.0);
    let peer = match (a.peer, b.peer) {
        (Some(x), Some(y)) if wall_secs > 0.0 => {
            format!(
                "{:.0}",
                100.0 * (y - x) as f64 / ticks_per_sec as f64 / wall_secs
            )
        }
        _ => "-".to_string(),
    };
    format!(
        "cpu0={} cpu1={} cpu1_softirq={} peer_cpu={}",
        share(0),
        share(1),
        pct(1, |c| c.2),
        peer
    )
}
