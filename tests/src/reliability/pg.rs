//! A throwaway PostgreSQL cluster that a test can stop and start again (the
//! "database briefly unavailable" scenarios).
//!
//! `initdb` of the newest PostgreSQL under `/usr/lib/postgresql/*/bin` (or on
//! PATH) into a temp dir, trust auth, a free loopback port; run through
//! `runuser -u postgres` when we are root. A watchdog process stops the
//! cluster and removes its directory when the test binary exits, however it
//! exits. When PostgreSQL is not installed, [`Pg::start`] returns the reason:
//! callers skip loudly, or fail under `CI=true` (as the SQL adapter's tests do).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// A running (or stopped) private cluster.
pub struct Pg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
    _watchdog: (Child, ChildStdin),
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Says loudly that a PostgreSQL scenario was skipped, or panics under `CI=true`.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("PostgreSQL is required under CI=true but unavailable: {reason}");
    }
    let banner = "!".repeat(78);
    eprintln!("\n{banner}\n!! reliability: PostgreSQL scenario SKIPPED: {reason}\n!! Install PostgreSQL (apt-get install postgresql).\n{banner}\n");
}

fn find_bindir() -> Option<PathBuf> {
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
            .collect();
        dirs.sort();
        if let Some(d) = dirs.pop() {
            return Some(d);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("non-UTF-8 path {}", p.display()))
}

impl Pg {
    fn run(&self, program: &str, args: &[&str]) -> Result<std::process::Output, String> {
        run_pg(self.as_root, &self.bin.join(program), args)
    }

    /// Initialises and starts a cluster.
    pub fn start() -> Result<Pg, String> {
        let bin = find_bindir().ok_or("no PostgreSQL server binaries (initdb, pg_ctl) found")?;
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("isp-rel-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        if as_root {
            let out = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir)
                .output()
                .map_err(|e| format!("chown: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "chown postgres {}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let data = dir.join("data");
        let init = run_pg(
            as_root,
            &bin.join("initdb"),
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        if !init.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&init.stderr)));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let watchdog = spawn_watchdog(&bin, &data, &dir, as_root)?;
        let pg = Pg {
            bin,
            dir,
            port,
            as_root,
            _watchdog: watchdog,
        };
        pg.start_again()?;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: connections are closed).
    pub fn stop(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let out = self.run("pg_ctl", &["-D", path_str(&data)?, "-m", "fast", "-w", "stop"])?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Starts the server (again) on the same port.
    pub fn start_again(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let log = self.dir.join("postgres.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200",
            self.port,
            path_str(&self.dir)?
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start: {} {}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            ))
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.dir.join("data")).map(str::to_owned) {
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_pg(as_root: bool, program: &Path, args: &[&str]) -> Result<std::process::Output, String> {
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.arg("-u").arg("postgres").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", program.display()))
}

/// Stops the cluster and removes its directory when our end of its stdin closes.
fn spawn_watchdog(bin: &Path, data: &Path, dir: &Path, as_root: bool) -> Result<(Child, ChildStdin), String> {
    use std::os::unix::process::CommandExt as _;
    let stop = if as_root {
        "runuser -u postgres -- \"$1\" -D \"$2\" stop -m immediate -w"
    } else {
        "\"$1\" -D \"$2\" stop -m immediate -w"
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("cat >/dev/null; {stop} >/dev/null 2>&1; rm -rf \"$3\""))
        .arg("isp-rel-pg-watchdog")
        .arg(bin.join("pg_ctl"))
        .arg(data)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    let stdin = child.stdin.take().ok_or("watchdog has no stdin")?;
    Ok((child, stdin))
}
