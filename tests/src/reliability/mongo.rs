//! A MongoDB-protocol server for the several-daemons scenario: `MONGODB_URL`
//! when set, else the PyPI package `nx-27017` installed into a venv under the
//! given directory (reused between runs; the same venv the Mongo adapter's
//! tests use) and started on a free loopback port. The server is stopped and
//! its data removed when the returned handle drops.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nx-27017 version (as the Mongo adapter's harness).
pub const NX_VERSION: &str = "0.8.1";

/// A running server (or an external one).
#[derive(Debug)]
pub struct MongoServer {
    /// Connection string.
    pub url: String,
    child: Option<Child>,
    data: Option<PathBuf>,
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = self.data.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr)))
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

fn venv_python(base: &Path) -> Result<PathBuf, String> {
    let venv = base.join(format!("nx-27017-{NX_VERSION}-venv"));
    let python = venv.join("bin").join("python");
    if has_nx(&python) {
        return Ok(python);
    }
    std::fs::create_dir_all(base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let tmp = base.join(format!("nx-27017-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
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
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if has_nx(&python) {
        Ok(python)
    } else {
        Err(format!("nx-27017 is not importable from {}", python.display()))
    }
}

/// Starts (or names) a server; `venv_base` is where the venv lives
/// (`env!("CARGO_TARGET_TMPDIR")` in a test).
pub fn start(venv_base: &Path) -> Result<MongoServer, String> {
    if let Ok(url) = std::env::var("MONGODB_URL") {
        if !url.trim().is_empty() {
            return Ok(MongoServer {
                url,
                child: None,
                data: None,
            });
        }
    }
    let python = venv_python(venv_base)?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    let data = std::env::temp_dir().join(format!("isp-rel-nx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(data.join("db")).map_err(|e| format!("create {}: {e}", data.display()))?;
    let log = std::fs::File::create(data.join("server.log")).map_err(|e| format!("log: {e}"))?;
    let mut child = Command::new(&python)
        .arg("-c")
        .arg("import sys; from nx_27017.nx_27017 import main; sys.argv[0] = 'nx-27017'; sys.exit(main())")
        .args(["--host", "127.0.0.1", "-p", &port.to_string()])
        .arg("--data-dir")
        .arg(data.join("db"))
        // Its own PID file: with the default one, a second nx-27017 (another
        // test binary, another checkout) refuses to start.
        .arg("--pid-file")
        .arg(data.join("nx.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
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
                child: Some(child),
                data: Some(data),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&data);
            return Err(format!("nx-27017 exited ({status}): {tail}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&data);
            return Err("nx-27017 did not accept connections within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
