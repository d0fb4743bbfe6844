//! End-to-end test helpers: run the real `vswitchd` and `swctl` binaries as separate processes.
//!
//! [`Daemon`] starts `vswitchd` on a private socket in a private temporary directory and stops
//! it by PID when dropped (also when the test panics), so tests never touch a system daemon and
//! never leave one behind. [`swctl`] runs the CLI against it and returns what a user would see.
//! [`DaemonBuilder::netns`] starts it inside a network namespace (`ip netns exec NS vswitchd`,
//! which execs, so the PID is still the daemon's own); its socket is a path in the shared
//! filesystem, so `swctl` reaches it from anywhere.

pub mod etcd;
pub mod lab;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Directory holding the built `vswitchd` and `swctl`. The binaries belong to other packages of
/// the workspace, which cargo does not build for this package's tests, so build them once here
/// (a no-op when they are up to date).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("integration/ has a parent")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "control",
                "-p",
                "dataplane",
                // The lab traffic generator (XDP live frames), for overload tests.
                "-p",
                "benchlab",
                "--bins",
            ])
            .current_dir(&workspace)
            .status()
            .expect("running cargo build for the binaries");
        assert!(
            status.success(),
            "building vswitchd, swctl and benchlab failed"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        target.join("debug")
    })
}

/// A unique temporary directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create `/tmp/<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("creating temp dir");
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running `vswitchd` on a private socket; killed by PID on drop.
pub struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
    db: Option<PathBuf>,
    log_level: String,
    options: Vec<String>,
    netns: Option<String>,
    _dir: TempDir,
}

/// Options for a [`Daemon`] beyond the private socket: see [`Daemon::builder`].
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    test: String,
    db: bool,
    log_level: String,
    options: Vec<String>,
    netns: Option<String>,
}

impl DaemonBuilder {
    /// Run the daemon inside network namespace `ns` (a lab "node"): its ports are that
    /// namespace's interfaces and its tunnel sockets bind there.
    pub fn netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_owned());
        self
    }

    /// Keep the configuration database in a file inside the daemon's temp dir (`--db`), so
    /// [`Daemon::restart`] finds it.
    pub fn with_db(mut self) -> Self {
        self.db = true;
        self
    }

    /// `--log-level` (default `debug`).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_owned();
        self
    }

    /// `--workers N`.
    pub fn workers(self, n: u32) -> Self {
        self.option("--workers", &n.to_string())
    }

    /// `--idle busy|sleep`.
    pub fn idle(self, mode: &str) -> Self {
        self.option("--idle", mode)
    }

    /// `--mac-aging SECS`.
    pub fn mac_aging(self, secs: u32) -> Self {
        self.option("--mac-aging", &secs.to_string())
    }

    /// Any other `--flag value`.
    pub fn option(mut self, flag: &str, value: &str) -> Self {
        self.options.extend([flag.to_owned(), value.to_owned()]);
        self
    }

    /// Start the daemon and wait until its socket answers.
    pub fn start(self) -> Daemon {
        let dir = TempDir::new(&format!("swtest-{}", self.test));
        let db = self.db.then(|| dir.path().join("vswitchd.db"));
        let mut d = Daemon {
            child: None,
            socket: dir.path().join("vswitchd.sock"),
            log: dir.path().join("vswitchd.log"),
            db,
            log_level: self.log_level,
            options: self.options,
            netns: self.netns,
            _dir: dir,
        };
        d.spawn();
        d
    }
}

/// A `dump-flows` line without the fields that change with time (`duration=`, `idle_age=`,
/// `hard_age=`) and, unless `keep_counters`, without `n_packets=`/`n_bytes=` either.
pub fn stable_flow_line(line: &str, keep_counters: bool) -> String {
    let volatile: &[&str] = if keep_counters {
        &["duration=", "idle_age=", "hard_age="]
    } else {
        &[
            "duration=",
            "idle_age=",
            "hard_age=",
            "n_packets=",
            "n_bytes=",
        ]
    };
    line.trim()
        .split(", ")
        .filter(|t| !volatile.iter().any(|v| t.starts_with(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Daemon {
    /// `dump-flows BRIDGE [FILTER]`, one [`stable_flow_line`] (counters kept) per flow.
    pub fn flows(&self, bridge: &str, filter: Option<&str>) -> Vec<String> {
        let mut args = vec!["dump-flows", bridge];
        args.extend(filter);
        self.swctl(&args)
            .expect_ok("dump-flows")
            .lines()
            .map(|l| stable_flow_line(l, true))
            .collect()
    }

    /// Start a daemon and wait until its socket answers.
    pub fn start(test: &str) -> Daemon {
        Daemon::builder(test).start()
    }

    /// A daemon with more options (database, workers, idle mode, MAC aging).
    pub fn builder(test: &str) -> DaemonBuilder {
        DaemonBuilder {
            test: test.to_owned(),
            db: false,
            log_level: "debug".to_owned(),
            options: Vec::new(),
            netns: None,
        }
    }

    /// The daemon the labs use: a database (restartable), one worker sleeping when idle (the
    /// machine has 2 cores shared with the traffic generators), and `info` logs (per-packet
    /// debug lines would slow the datapath under real traffic).
    pub fn lab(test: &str) -> Daemon {
        Daemon::builder(test)
            .log_level("info")
            .with_db()
            .workers(1)
            .idle("sleep")
            .start()
    }

    /// Start the process (appending to the log, so it keeps every run) and wait until ready.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let vswitchd = bin_dir().join("vswitchd");
        let mut cmd = match &self.netns {
            // `ip netns exec` execs the command after entering the namespace: the child's PID
            // is vswitchd's, so stopping it by PID works as for a daemon in the root namespace.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&vswitchd);
                c
            }
            None => Command::new(&vswitchd),
        };
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--log-level")
            .arg(&self.log_level);
        // Never the default database under /var/lib: a private one or none.
        match &self.db {
            Some(db) => cmd.arg("--db").arg(db),
            None => cmd.arg("--no-db"),
        };
        cmd.args(&self.options);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting vswitchd");
        self.child = Some(child);
        self.wait_ready();
    }

    /// The configuration database file, when started [`DaemonBuilder::with_db`].
    pub fn db(&self) -> Option<&Path> {
        self.db.as_deref()
    }

    /// SIGKILL the daemon by PID (a crash: no cleanup of its own) and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        signal(child.id(), "KILL");
        let _ = child.wait();
    }

    /// Start a new daemon on the same socket, database and options (after [`Daemon::kill9`]
    /// or [`Daemon::terminate`]; a daemon still running is terminated first).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        self.spawn();
    }

    /// Whether the process is still alive (not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "vswitchd exited early ({status}); log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "vswitchd did not open its socket; log:\n{}",
            self.log_text()
        );
    }

    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// What the daemon has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `swctl --socket <ours> args...`.
    pub fn swctl(&self, args: &[&str]) -> Run {
        let mut full = vec!["--socket", self.socket.to_str().expect("utf-8 path")];
        full.extend_from_slice(args);
        swctl(&full, None)
    }

    /// Run `swctl` with `stdin` fed to it.
    pub fn swctl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut full = vec!["--socket", self.socket.to_str().expect("utf-8 path")];
        full.extend_from_slice(args);
        swctl(&full, Some(stdin))
    }

    /// Send SIGTERM and wait for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("vswitchd ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Send a signal to one process we started, by PID (never by name).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Outcome of one `swctl` run.
#[derive(Debug)]
pub struct Run {
    /// Exit success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panic with both streams unless the command succeeded; return stdout.
    pub fn expect_ok(self, what: &str) -> String {
        assert!(
            self.ok,
            "{what} failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Panic unless the command failed; return stderr.
    pub fn expect_err(self, what: &str) -> String {
        assert!(!self.ok, "{what} unexpectedly succeeded:\n{}", self.stdout);
        self.stderr
    }
}

/// Run `swctl` with the given arguments (and optional stdin).
pub fn swctl(args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(bin_dir().join("swctl"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting swctl");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).expect("writing stdin");
    }
    let out: Output = child.wait_with_output().expect("waiting for swctl");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The flows of host5's `ovs-ofctl -O OpenFlow13 dump-flows br-int` in seed 000, verbatim
/// (the reporter's trailing Chinese remarks in parentheses removed).
pub const SEED_000_FLOWS: &str = include_str!("../tests/data/seed000_host5_flows.txt");
