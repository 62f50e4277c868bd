//! The `ispd` binary as a child process: built once per test binary with
//! `cargo build -p ispd --bin ispd` into the same target directory, started
//! with its output captured, killed with SIGKILL when asked (or dropped).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The profile directory of this test binary (`target/debug`).
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/debug/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("unexpected test binary path {}", exe.display()))
}

/// Path of a freshly built `ispd` (built on first call; panics with cargo's
/// output when the build fails).
pub fn ispd_bin() -> PathBuf {
    BIN.get_or_init(|| {
        let profile = profile_dir()?;
        let target = profile
            .parent()
            .ok_or("no target directory above the profile directory")?
            .to_path_buf();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = profile.join("ispd");
        // `cargo test --workspace` builds ispd's binary (its own tests run it) in
        // the same invocation: use it when it is newer than every source file.
        if let (Ok(built), Some(newest)) = (
            std::fs::metadata(&bin).and_then(|m| m.modified()),
            newest_source(&workspace),
        ) {
            if built >= newest {
                return Ok(bin);
            }
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = workspace.join("Cargo.toml");
        let started = Instant::now();
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "ispd",
            "--bin",
            "ispd",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdin(Stdio::null());
        // The variables cargo sets for this test (CARGO_MANIFEST_DIR, ...) would
        // look like a changed environment to build scripts (ring's) and rebuild
        // half the dependency tree.
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                if k.starts_with("CARGO_") && k != "CARGO_HOME" {
                    cmd.env_remove(k);
                }
            }
        }
        cmd.env("CARGO_TARGET_DIR", &target);
        if profile.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd
            .output()
            .map_err(|e| format!("running {cargo} build -p ispd: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build -p ispd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if !bin.exists() {
            return Err(format!("{} missing after the build", bin.display()));
        }
        eprintln!(
            "reliability: ispd built in {:.1} s ({})",
            started.elapsed().as_secs_f64(),
            bin.display()
        );
        Ok(bin)
    })
    .clone()
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The newest modification time of the workspace's Rust sources and manifests.
fn newest_source(workspace: &Path) -> Option<std::time::SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "targets" {
                    walk(&p, newest);
                }
            } else if name.ends_with(".rs")
                || name.ends_with(".sql")
                || name == "Cargo.toml"
                || name == "Cargo.lock"
            {
                if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                    *newest = Some(newest.map_or(m, |n| n.max(m)));
                }
            }
        }
    }
    // The whole workspace: the crates sit at its top level (`isp-core/`, ...),
    // and a stale binary would test old code.
    let mut newest = None;
    walk(workspace, &mut newest);
    newest
}

/// A running `ispd` with stdout and stderr collected in memory.
pub struct Ispd {
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Ispd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ispd")
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

fn pump(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Ispd {
    /// Starts `ispd args...` in `dir` with extra environment variables.
    pub fn start(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Ispd {
        let mut cmd = Command::new(ispd_bin());
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start ispd");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().expect("stdout"), stdout.clone()),
            pump(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Ispd {
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Polls stdout until `f` finds something in it, or `timeout` passes.
    pub fn wait_stdout<T>(&self, timeout: Duration, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(t) = f(&self.stdout()) {
                return Some(t);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, then wait for it; returns (stdout, stderr).
    pub fn kill(mut self) -> (String, String) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.drain()
    }

    /// Waits up to `timeout` for it to exit by itself (then kills it); returns the
    /// status (None when it had to be killed), stdout and stderr.
    pub fn wait(mut self, timeout: Duration) -> (Option<ExitStatus>, String, String) {
        let end = Instant::now() + timeout;
        let mut status = None;
        if let Some(mut c) = self.child.take() {
            loop {
                if let Ok(Some(s)) = c.try_wait() {
                    status = Some(s);
                    break;
                }
                if Instant::now() > end {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let (o, e) = self.drain();
        (status, o, e)
    }

    fn drain(&mut self) -> (String, String) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (self.stdout(), self.stderr())
    }
}

impl Drop for Ispd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `ispd args...` to completion (at most `timeout`); returns (exit code, stdout, stderr).
pub fn run_ispd(
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let (status, o, e) = Ispd::start(args, dir, env).wait(timeout);
    (status.and_then(|s| s.code()), o, e)
}
