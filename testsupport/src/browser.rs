//! Headless Chromium for browser tests, driven over WebDriver by `chromedriver`.
//!
//! [`chromedriver`] finds Debian's `chromium` and `chromedriver` (packages
//! `chromium` and `chromium-driver`), installs them with `apt-get` when they
//! are missing (under a lock file, so test binaries running at once do not
//! fight over dpkg), and starts `chromedriver` on a free loopback port. The
//! driver process is killed when the returned [`ChromeDriver`] is dropped.
//!
//! When no browser can be had, the test fails with the reason, unless
//! `ISP_TEST_SKIP` names `browser` (see [`crate::skip`]).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::skip::{self, Suite};

/// The lock file `apt-get` runs under.
pub const APT_LOCK: &str = "/tmp/isp-testsupport-apt.lock";

/// A running `chromedriver`; killed on drop.
#[derive(Debug)]
pub struct ChromeDriver {
    /// Its WebDriver URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The Chromium binary sessions should start.
    pub chromium: PathBuf,
    child: Child,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns (after a visible `SKIPPED` line) when `ISP_TEST_SKIP` names `browser`,
/// else fails the test with `reason`.
pub fn skip_or_fail(reason: &str) {
    skip::skip_or_fail(Suite::Browser, reason);
}

/// True when the runner opted out of browser tests with `ISP_TEST_SKIP=browser`.
pub fn skipped() -> bool {
    skip::skipped(Suite::Browser)
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in candidates {
        for dir in std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")])
        {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn binaries() -> Option<(PathBuf, PathBuf)> {
    Some((find(&["chromium", "chromium-browser"])?, find(&["chromedriver"])?))
}

/// Installs `chromium` and `chromium-driver` with apt-get, under [`APT_LOCK`].
fn install() -> Result<(), String> {
    let script = "export DEBIAN_FRONTEND=noninteractive; \
                  command -v chromium >/dev/null && command -v chromedriver >/dev/null && exit 0; \
                  apt-get install -y -qq chromium chromium-driver \
                  || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }";
    let out = Command::new("flock")
        .args([APT_LOCK, "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run flock/apt-get to install chromium: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(format!(
            "apt-get install chromium chromium-driver failed ({}): {tail}",
            out.status
        ));
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Finds (or installs) Chromium and starts `chromedriver` on a free port; waits
/// until it accepts connections.
pub fn chromedriver() -> Result<ChromeDriver, String> {
    let (chromium, driver) = match binaries() {
        Some(b) => b,
        None => {
            install()?;
            binaries().ok_or("chromium or chromedriver still missing after apt-get install")?
        }
    };
    start(&chromium, &driver)
}

fn start(chromium: &Path, driver: &Path) -> Result<ChromeDriver, String> {
    let port = free_port()?;
    let mut child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", driver.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} exited at start: {status}", driver.display()));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} did not listen on {addr} within 30 s",
                driver.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ChromeDriver {
        url: format!("http://{addr}"),
        chromium: chromium.to_owned(),
        child,
    })
}
