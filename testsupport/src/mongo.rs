//! A MongoDB-protocol server: `MONGODB_URL` when set (a real MongoDB), else the PyPI
//! package `nx-27017` installed into a Python venv and started on a free loopback port.
//!
//! - [`server_url`]: one server per test binary, started on first use (tests then take a
//!   database each, [`fresh_db_name`]).
//! - [`start`]: a server a test owns, stopped (and its data removed) when dropped.
//!
//! The venv is `ISP_NX_VENV` when set, else `nx-27017-<version>-venv` in the directory
//! given to [`start`] or, for [`server_url`], in cargo's `target/tmp` (found from the
//! test binary's path); it is built under a temporary name and renamed into place, so
//! concurrent test binaries never see half a venv, and later runs reuse it. A small
//! Python launcher owns each server: when its stdin (a pipe from this process) closes,
//! however this process exits, it stops the server and deletes its data; the server
//! also gets SIGTERM if the launcher dies.
//!
//! When no server can be had, the test fails with the reason, unless `ISP_TEST_SKIP`
//! names `mongo` (see [`crate::skip`]).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::skip::{self, Suite};

/// The nx-27017 version the suites are known to pass on.
pub const NX_VERSION: &str = "0.8.1";

/// Prefix of every database name from [`fresh_db_name`].
pub const DB_PREFIX: &str = "isp_t";

/// A running server (or an external one). Dropping it stops a server it started.
#[derive(Debug)]
pub struct MongoServer {
    /// Connection string.
    pub url: String,
    launcher: Option<Mutex<Child>>,
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        let Some(launcher) = self.launcher.take() else {
            return;
        };
        let mut child = launcher
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Closing its stdin makes the launcher stop the server and remove the data.
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Returns (after a visible `SKIPPED` line) when `ISP_TEST_SKIP` names `mongo`, else
/// fails the test with `reason`. For callers of [`start`].
pub fn skip_or_fail(reason: &str) {
    skip::skip_or_fail(Suite::Mongo, reason);
}

/// True when `MONGODB_URL` names a server (a real MongoDB rather than nx-27017).
pub fn is_external() -> bool {
    external_url().is_some()
}

fn external_url() -> Option<String> {
    std::env::var("MONGODB_URL").ok().filter(|u| !u.trim().is_empty())
}

/// Starts a server owned by the caller (or names `MONGODB_URL`), the venv under
/// `venv_base` unless `ISP_NX_VENV` is set. `Err(reason)` when it cannot, or at once
/// when `ISP_TEST_SKIP` names `mongo` (pass the reason to [`skip_or_fail`]).
pub fn start(venv_base: &Path) -> Result<MongoServer, String> {
    if skip::skipped(Suite::Mongo) {
        return Err(format!("{} names mongo", skip::VAR));
    }
    if let Some(url) = external_url() {
        return Ok(MongoServer { url, launcher: None });
    }
    let python = venv_python(venv_base)?;
    let mut last = String::new();
    // A free port can be taken between our probe and the server's bind: retry.
    for _ in 0..3 {
        match start_once(&python) {
            Ok(server) => return Ok(server),
            Err(e) => last = e,
        }
    }
    Err(last)
}

static SHARED: OnceLock<Result<MongoServer, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// This test binary's server URL, the server started on first use. `None` only when
/// `ISP_TEST_SKIP` names `mongo` (after a visible `SKIPPED` line); fails the test
/// when no server can be had.
pub fn server_url() -> Option<String> {
    if skip::skipped(Suite::Mongo) {
        skip::announce(Suite::Mongo);
        return None;
    }
    match SHARED.get_or_init(|| start(&default_venv_base())) {
        Ok(server) => Some(server.url.clone()),
        Err(reason) => skip::fail(
            Suite::Mongo,
            &format!("{reason}. Set MONGODB_URL to a real MongoDB, or make `python3 -m venv` and PyPI work"),
        ),
    }
}

/// A fresh database name for one test: `isp_t<unix seconds>_<pid>_<n>`.
pub fn fresh_db_name() -> String {
    format!(
        "{DB_PREFIX}{}_{}_{}",
        unix_secs(),
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    )
}

/// Whether a database from [`fresh_db_name`] is older than `max_age_secs`.
pub fn is_stale_test_db(name: &str, max_age_secs: u64) -> bool {
    let Some(rest) = name.strip_prefix(DB_PREFIX) else {
        return false;
    };
    let Some(Ok(secs)) = rest.split('_').next().map(str::parse::<u64>) else {
        return false;
    };
    unix_secs().saturating_sub(secs) > max_age_secs
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Cargo's `target/tmp` (what `CARGO_TARGET_TMPDIR` names for integration tests): the
/// nearest ancestor of the running binary holding cargo's `CACHEDIR.TAG`, plus `tmp`.
/// The system temp dir when there is none.
pub fn default_venv_base() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|d| d.join("CACHEDIR.TAG").is_file())
                .map(|target| target.join("tmp"))
        })
        .unwrap_or_else(std::env::temp_dir)
}

const LAUNCHER: &str = r#"
import ctypes, os, shutil, signal, subprocess, sys
data_dir, log_path = sys.argv[1], sys.argv[2]
args = sys.argv[3:]

def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass

def stop(*_):
    raise SystemExit(0)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
log = open(log_path, "ab")
child = subprocess.Popen(
    [sys.executable, "-c",
     "import sys; from nx_27017.nx_27017 import main; sys.argv[0] = 'nx-27017'; sys.exit(main())"]
    + args,
    stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent)
try:
    sys.stdin.buffer.read()  # returns at EOF: the test binary exited or dropped the server
finally:
    child.terminate()
    try:
        child.wait(3)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    shutil.rmtree(data_dir, ignore_errors=True)
"#;

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn has_nx(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import nx_27017.nx_27017"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv's python with nx-27017 importable, installing it first when needed.
fn venv_python(venv_base: &Path) -> Result<PathBuf, String> {
    let venv = match std::env::var_os("ISP_NX_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => venv_base.join(format!("nx-27017-{NX_VERSION}-venv")),
    };
    let base = venv
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no parent directory for the venv {}", venv.display()))?;
    let python = venv.join("bin").join("python");
    if has_nx(&python) {
        return Ok(python);
    }
    std::fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let tmp = base.join(format!("nx-27017-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    skip::say(&format!(
        "isp-testsupport: installing nx-27017=={NX_VERSION} into {}",
        venv.display()
    ));
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&tmp),
        "python3 -m venv",
    )?;
    run(
        Command::new(tmp.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("nx-27017=={NX_VERSION}"),
        ]),
        "pip install nx-27017",
    )?;
    if std::fs::rename(&tmp, &venv).is_err() {
        // Another test binary won the race; use its venv.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if has_nx(&python) {
        Ok(python)
    } else {
        Err(format!("nx-27017 is not importable from {}", python.display()))
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local address: {e}"))
}

/// The last 2,000 characters of a log.
fn read_log(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let skip = s.chars().count().saturating_sub(2000);
    s.chars().skip(skip).collect()
}

fn start_once(python: &Path) -> Result<MongoServer, String> {
    let port = free_port()?;
    let data = std::env::temp_dir().join(format!("isp-mongo-nx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(data.join("db")).map_err(|e| format!("create {}: {e}", data.display()))?;
    let log = data.join("server.log");
    let mut child = Command::new(python)
        .arg("-c")
        .arg(LAUNCHER)
        .arg(&data)
        .arg(&log)
        .args(["--host", "127.0.0.1", "-p", &port.to_string()])
        .arg("--data-dir")
        .arg(data.join("db"))
        .arg("--log-file")
        .arg(data.join("nx.log"))
        // Its own PID file: with the default one, a second nx-27017 (another test
        // binary, another checkout) refuses to start.
        .arg("--pid-file")
        .arg(data.join("nx.pid"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start nx-27017: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(MongoServer {
                url: format!(
                    "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=10000&directConnection=true"
                ),
                launcher: Some(Mutex::new(child)),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = read_log(&log);
            let _ = std::fs::remove_dir_all(&data);
            return Err(format!(
                "nx-27017 exited ({status}) before accepting connections: {tail}"
            ));
        }
        if Instant::now() > deadline {
            let tail = read_log(&log);
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&data);
            return Err(format!(
                "nx-27017 did not accept connections on {addr} within 30 s: {tail}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_are_distinct_and_only_old_ones_are_stale() {
        let a = fresh_db_name();
        let b = fresh_db_name();
        assert_ne!(a, b);
        assert!(!is_stale_test_db(&a, 3600));
        assert!(is_stale_test_db("isp_t1000_1_0", 3600));
        assert!(!is_stale_test_db("other_1000_1_0", 3600));
        assert!(!is_stale_test_db("isp_tx_1_0", 3600));
    }
}
