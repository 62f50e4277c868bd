//! Test harness: a MongoDB wire-protocol server for this test binary.
//!
//! `MONGODB_URL` set: that server (a real MongoDB). Otherwise the PyPI package
//! `nx-27017` is installed into a venv under `CARGO_TARGET_TMPDIR` (reused by later
//! runs) and started once per test binary on a free loopback port. A small Python
//! launcher owns the server: it stops it and deletes its data when this process
//! exits (its stdin, a pipe from us, closes), and the server also gets SIGTERM
//! if the launcher dies. Nothing is left running after `cargo test`.
//!
//! If the server cannot be installed or started, [`store`] prints a loud reason
//! and returns `None` (the test skips); with `CI=true` it panics instead.
//!
//! `ISP_NX_VENV` overrides where the venv lives (for caches). Each test gets a
//! database `isp_t<unix seconds>_<pid>_<n>`; against a real MongoDB, the first
//! test of each binary drops such databases older than an hour (left by the
//! conformance checks of earlier runs, which cannot drop their own).

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use isp_adapters_mongo::MongoStore;

/// The nx-27017 version the suite is known to pass on.
const NX_VERSION: &str = "0.8.1";

/// Owns the server through the launcher's stdin (closed when the process exits).
struct Running {
    url: String,
    _launcher: Mutex<Child>,
}

static SERVER: OnceLock<Result<Running, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);
static CLEANED: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);

/// Prefix of every test database name.
const DB_PREFIX: &str = "isp_t";
/// Test databases older than this are dropped (real MongoDB only).
const STALE_AFTER_SECS: u64 = 3600;

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    sys.stdin.buffer.read()  # returns at EOF: the test binary exited
finally:
    child.terminate()
    try:
        child.wait(3)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    shutil.rmtree(data_dir, ignore_errors=True)
"#;

/// Writes to the real stderr: the test harness captures `eprintln!` of passing
/// tests, and this must be seen.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn loud(reason: &str) {
    let bar = "!".repeat(76);
    say(&format!(
        "\n{bar}\n!! isp-adapters-mongo: NO MONGODB SERVER, TEST SKIPPED\n!! {reason}\n\
         !! Set MONGODB_URL to a real MongoDB, or make `python3 -m venv` + PyPI work.\n\
         !! (With CI=true this fails instead.)\n{bar}\n"
    ));
}

/// The server's URL, or `None` (after a loud message) when there is none.
pub fn server_url() -> Option<String> {
    if let Ok(url) = std::env::var("MONGODB_URL") {
        if !url.trim().is_empty() {
            return Some(url);
        }
    }
    match SERVER.get_or_init(start_nx) {
        Ok(r) => Some(r.url.clone()),
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("isp-adapters-mongo: cannot run the MongoDB suite under CI: {reason}");
            }
            if !WARNED.swap(true, Ordering::SeqCst) {
                loud(reason);
            }
            None
        }
    }
}

/// True when the tests run against nx-27017 rather than a real MongoDB.
pub fn is_nx() -> bool {
    std::env::var("MONGODB_URL").map_or(true, |u| u.trim().is_empty())
}

/// A fresh database name for one test.
pub fn fresh_db_name() -> String {
    format!(
        "{DB_PREFIX}{}_{}_{}",
        unix_secs(),
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    )
}

/// A connected store on a fresh database, indexes created; `None` = skip.
pub async fn store() -> Option<MongoStore> {
    let url = server_url()?;
    let store = MongoStore::connect(&url, &fresh_db_name())
        .await
        .expect("connect to the test server");
    store.ensure_indexes().await.expect("ensure_indexes");
    if !is_nx() && !CLEANED.swap(true, Ordering::SeqCst) {
        drop_stale_databases(&store).await;
    }
    Some(store)
}

/// Drops `isp_t<secs>_...` databases older than [`STALE_AFTER_SECS`].
async fn drop_stale_databases(store: &MongoStore) {
    let client = store.database().client();
    let names = match client.list_database_names().await {
        Ok(n) => n,
        Err(e) => {
            say(&format!(
                "isp-adapters-mongo tests: cannot list databases to clean up: {e}"
            ));
            return;
        }
    };
    let now = unix_secs();
    for name in names {
        let Some(rest) = name.strip_prefix(DB_PREFIX) else {
            continue;
        };
        let Some(Ok(secs)) = rest.split('_').next().map(str::parse::<u64>) else {
            continue;
        };
        if now.saturating_sub(secs) > STALE_AFTER_SECS {
            if let Err(e) = client.database(&name).drop().await {
                say(&format!(
                    "isp-adapters-mongo tests: cannot drop stale {name}: {e}"
                ));
            }
        }
    }
}

/// Every repository on a fresh database; `None` = skip.
pub async fn repositories() -> Option<isp_core::ports::Repositories> {
    Some(store().await?.repositories())
}

/// Drops the test's database (call at the end of a passing test).
pub async fn drop(store: &MongoStore) {
    store.database().drop().await.expect("drop the test database");
}

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

/// Installs nx-27017 into `<target tmp>/nx-27017-venv` (built under a temporary
/// name and renamed into place, so concurrent test binaries never see half a venv).
fn venv_python() -> Result<PathBuf, String> {
    let venv = match std::env::var_os("ISP_NX_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("nx-27017-{NX_VERSION}-venv")),
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
    say(&format!(
        "isp-adapters-mongo tests: installing nx-27017=={NX_VERSION} into {}",
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

fn read_log(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let tail: String = s
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    tail
}

fn start_nx() -> Result<Running, String> {
    let python = venv_python()?;
    let mut last = String::new();
    // A free port can be taken between our probe and the server's bind: retry.
    for _ in 0..3 {
        match start_once(&python) {
            Ok(r) => return Ok(r),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn start_once(python: &Path) -> Result<Running, String> {
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
            return Ok(Running {
                url: format!(
                    "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=10000&directConnection=true"
                ),
                _launcher: Mutex::new(child),
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
