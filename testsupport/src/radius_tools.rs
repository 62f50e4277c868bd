//! FreeRADIUS's own tools, `radclient` and `radtest` (Debian's
//! `freeradius-utils`): a third-party RADIUS implementation to test against.
//!
//! [`radclient`] finds them on `PATH`, or installs the package with `apt-get`
//! (as root) when they are missing. Concurrent test binaries install once: the
//! install runs under a lock file (`isp-freeradius-utils.lock` in the temp
//! directory, created exclusively; a lock older than ten minutes is taken as
//! left behind by a killed process). When the tools cannot be had, the test
//! fails with the reason (under CI too), unless `ISP_TEST_SKIP` names `radius`
//! (see [`crate::skip`]); it then returns `None` after a visible `SKIPPED` line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::skip::{self, Suite};

/// The Debian package that ships `radclient` and `radtest`.
pub const PACKAGE: &str = "freeradius-utils";

/// The tools' directory, or `None` (after `SKIPPED`) when `ISP_TEST_SKIP`
/// names `radius`. Installs [`PACKAGE`] when `radclient` is missing; fails the
/// test with the reason when that does not work.
pub fn radclient() -> Option<PathBuf> {
    if skip::skipped(Suite::Radius) {
        skip::announce(Suite::Radius);
        return None;
    }
    if let Some(p) = find("radclient") {
        return Some(p);
    }
    match install() {
        Ok(()) => match find("radclient") {
            Some(p) => Some(p),
            None => skip::fail(
                Suite::Radius,
                &format!("{PACKAGE} installed but radclient is not on PATH"),
            ),
        },
        Err(reason) => skip::fail(Suite::Radius, &reason),
    }
}

/// `radtest` beside `radclient`.
pub fn radtest(radclient: &Path) -> PathBuf {
    radclient.with_file_name("radtest")
}

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

struct Lock(PathBuf);

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn lock() -> Result<Lock, String> {
    let path = std::env::temp_dir().join("isp-freeradius-utils.lock");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(Lock(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let stale = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age > Duration::from_secs(600));
                if stale {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "waited 15 minutes for the install lock {}",
                        path.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("cannot create the install lock {}: {e}", path.display())),
        }
    }
}

fn apt(args: &[&str]) -> Result<(), String> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        Err(format!(
            "apt-get {} failed ({}): {}",
            args.join(" "),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    }
}

fn install() -> Result<(), String> {
    let _lock = lock()?;
    // Another binary may have installed it while this one waited.
    if find("radclient").is_some() {
        return Ok(());
    }
    skip::say(&format!("installing {PACKAGE} (radclient, radtest) with apt-get"));
    let install = ["install", "-y", "-q", "--no-install-recommends", PACKAGE];
    if apt(&install).is_ok() {
        return Ok(());
    }
    apt(&["update", "-q"])?;
    apt(&install).map_err(|e| format!("cannot install {PACKAGE}: {e}"))
}
