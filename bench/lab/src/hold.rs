//! Keep a constant-action XDP program attached to an interface while this process lives
//! (BPF link: detached automatically when the process exits, however it exits).
//! Used for the sink (XDP_DROP: the sink's stack costs nothing, frames are still counted in
//! rx_packets) and to give a kernel peer's veth a NAPI instance (XDP_PASS).

use crate::{bpf_prog, netif, stop::Stop, sys};
use anyhow::Result;
use std::time::Duration;

pub fn run(dev: &str, action: i32, seconds: f64) -> Result<()> {
    let ifindex = netif::ifindex(dev)?;
    let prog = sys::prog_load_xdp(&bpf_prog::constant(action), "benchlab_hold")
        .map_err(|e| anyhow::anyhow!("loading XDP program: {e} (needs root/CAP_BPF)"))?;
    let _link = sys::xdp_link(&prog, ifindex)
        .map_err(|e| anyhow::anyhow!("attaching XDP (native mode) to {dev}: {e}"))?;
    let stop = Stop::new(Duration::from_secs_f64(seconds))?;
    println!("ready dev={dev} action={action}");
    while !stop.should_stop() {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
