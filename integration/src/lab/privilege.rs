//! The lab needs root (namespaces, veths, XDP). Under CI a missing privilege is a failure;
//! on a developer's machine the lab tests skip with a notice.

/// True when the lab can run. Without root: panics when `CI=true`, else prints a skip notice
/// and returns false (the caller returns early).
pub fn require_root() -> bool {
    let missing = missing_requirement();
    let Some(why) = missing else { return true };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("lab test cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED lab test: {why}");
    false
}

fn missing_requirement() -> Option<String> {
    if effective_uid() != Some(0) {
        return Some("it needs root (network namespaces, veth pairs, XDP); run as root".to_owned());
    }
    for tool in ["ip", "ethtool", "ping", "python3"] {
        if !on_path(tool) {
            return Some(format!(
                "`{tool}` is not installed (bash .ci/run installs the lab's packages)"
            ));
        }
    }
    None
}

/// The effective uid from /proc (no libc call, so no `unsafe`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}
