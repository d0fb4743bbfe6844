//! Running lab commands with a time bound, and background processes killed by PID on drop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a finished (or timed-out) command produced.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Exited with status 0 (false when killed on timeout).
    pub ok: bool,
    /// Killed because it ran past its time bound.
    pub timed_out: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CmdOutput {
    /// Panic with both streams unless the command succeeded; return stdout.
    pub fn expect_ok(self, what: &str) -> String {
        assert!(
            self.ok,
            "{what} failed (timed out: {}):\nstdout: {}\nstderr: {}",
            self.timed_out, self.stdout, self.stderr
        );
        self.stdout
    }
}

/// Run `argv` to completion, killing it (by PID) if it outlives `timeout`.
pub fn run(argv: &[&str], timeout: Duration) -> CmdOutput {
    let mut child = Spawned::start(argv);
    child.wait(timeout)
}

/// Run a setup command that must succeed (10 s bound); panics with its output otherwise.
pub fn must(argv: &[&str]) -> String {
    run(argv, Duration::from_secs(10)).expect_ok(&argv.join(" "))
}

/// A background process we started; killed by PID and reaped on drop. Its stdout is collected
/// line by line as it comes (ping flushes every reply), so a test can watch it live.
pub struct Spawned {
    child: Option<Child>,
    what: String,
    lines: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr_reader: Option<JoinHandle<String>>,
}

impl Spawned {
    /// Start `argv` with stdout and stderr captured.
    pub fn start(argv: &[&str]) -> Spawned {
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {argv:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout pipe");
        let sink = Arc::clone(&lines);
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().expect("lines lock").push(line);
            }
        });
        let mut err = child.stderr.take().expect("stderr pipe");
        let stderr_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Spawned {
            child: Some(child),
            what: argv.join(" "),
            lines,
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Stdout lines received so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Wait until a stdout line satisfies `pred` (true) or `timeout` passes (false).
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines().iter().any(|l| pred(l)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait for the process to exit, killing it if it takes longer than `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> CmdOutput {
        let mut child = self.child.take().expect("process not waited yet");
        let deadline = Instant::now() + timeout;
        let (ok, timed_out) = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break (status.success(), false);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break (false, true);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The pipes close when the process (and anything it forked) exits.
        if let Some(h) = self.stdout_reader.take() {
            let _ = h.join();
        }
        let stderr = self
            .stderr_reader
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let mut stdout = self.lines().join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        CmdOutput {
            ok,
            timed_out,
            stdout,
            stderr: if timed_out {
                format!("{stderr}[killed after {timeout:?}: {}]", self.what)
            } else {
                stderr
            },
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Kill by PID (Child::kill), never by name; the reader threads end with the pipes.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Poll `cond` every 50 ms until it holds (true) or `timeout` passes (false): for effects that
/// are allowed a moment (a port opening, counters being gathered from workers).
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
