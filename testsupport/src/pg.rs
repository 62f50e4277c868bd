//! A throwaway PostgreSQL cluster.
//!
//! - [`fresh_database`] (feature `postgres`): a URL to a new, empty database for one
//!   test. The server is `ISP_TEST_POSTGRES_URL` (or a `postgres://` `DATABASE_URL`)
//!   when set, else one private [`Cluster`] per test binary, started on first use.
//! - [`Cluster::start`]: a private cluster a test owns, which it can
//!   [`stop`](Cluster::stop) and [`start_again`](Cluster::start_again) (the "database
//!   briefly unavailable" scenarios); dropping it stops it and removes its files.
//!
//! A cluster is `initdb` of PostgreSQL 15 from `/usr/lib/postgresql` (or the newest
//! version there, or one on PATH; `apt-get install postgresql-15` first when none is
//! installed and we are root) into a temp dir owned by `postgres` (run through
//! `runuser` when we are root), trust auth, a free port on 127.0.0.1, the unix socket
//! in the temp dir. A watchdog process holds the read end of a pipe only this process
//! writes to; when the test binary exits, however it exits, the watchdog stops the
//! cluster and removes its directory. No postgres outlives `cargo test`.
//!
//! When PostgreSQL cannot start, the test fails with the reason, unless
//! `ISP_TEST_SKIP` names `postgres` (see [`crate::skip`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use crate::skip::{self, Suite};

/// Returns (after a visible `SKIPPED` line) when `ISP_TEST_SKIP` names `postgres`,
/// else fails the test with `reason`. For callers of [`Cluster::start`].
pub fn skip_or_fail(reason: &str) {
    skip::skip_or_fail(Suite::Postgres, reason);
}

/// A private cluster, running or stopped. Dropping it stops it and removes its files.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
    /// Keeps the watchdog's stdin open while the cluster lives.
    _watchdog: Mutex<(Child, ChildStdin)>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Initialises and starts a cluster; `Err(reason)` when it cannot, or at once
    /// when `ISP_TEST_SKIP` names `postgres` (pass the reason to [`skip_or_fail`]).
    pub fn start() -> Result<Cluster, String> {
        if skip::skipped(Suite::Postgres) {
            return Err(format!("{} names postgres", skip::VAR));
        }
        let as_root = is_root();
        let bin = match find_bindir() {
            Some(b) => b,
            None => {
                install_postgres(as_root)?;
                find_bindir().ok_or_else(|| {
                    "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on \
                     PATH, even after apt-get install postgresql-15"
                        .to_owned()
                })?
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("isp-pg-")
            .tempdir()
            .map_err(|e| format!("creating a temp dir: {e}"))?
            .keep();
        let started = Self::start_in(bin, &dir, as_root);
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        started
    }

    fn start_in(bin: PathBuf, dir: &Path, as_root: bool) -> Result<Cluster, String> {
        let data = dir.join("data");
        if as_root {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
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
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr).trim()
            ));
        }
        let watchdog = spawn_watchdog(&bin, &data, dir, as_root)?;
        let mut cluster = Cluster {
            bin,
            dir: dir.to_path_buf(),
            port: 0,
            as_root,
            _watchdog: Mutex::new(watchdog),
        };
        // A free port can be taken between the probe and the server's bind: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.start_again() {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
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
            Err(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Starts the server (again) on the same port.
    pub fn start_again(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let log = self.dir.join("postgres.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
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
                "pg_ctl start failed: {} {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                std::fs::read_to_string(&log).unwrap_or_default().trim()
            ))
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<std::process::Output, String> {
        run_pg(self.as_root, &self.bin.join(program), args)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.dir.join("data")).map(str::to_owned) {
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(feature = "postgres")]
pub use shared::fresh_database;

#[cfg(feature = "postgres")]
mod shared {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    use sqlx::Connection as _;

    use super::Cluster;
    use crate::skip::{self, Suite};

    /// The server of this test binary: an external one, or a private cluster that
    /// lives as long as the process (its watchdog stops it at exit).
    enum Server {
        External(String),
        Private(Cluster),
    }

    impl Server {
        fn admin_url(&self) -> String {
            match self {
                Server::External(url) => url.clone(),
                Server::Private(cluster) => cluster.url(),
            }
        }
    }

    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    static DB_SEQ: AtomicU32 = AtomicU32::new(0);

    fn start() -> Result<Server, String> {
        if let Some(url) = external_url() {
            return Ok(Server::External(url));
        }
        Cluster::start().map(Server::Private)
    }

    fn external_url() -> Option<String> {
        if let Ok(u) = std::env::var("ISP_TEST_POSTGRES_URL") {
            if !u.trim().is_empty() {
                return Some(u);
            }
        }
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }

    /// A URL to a fresh, empty database on this binary's server (started on first
    /// use). `None` only when `ISP_TEST_SKIP` names `postgres` (after a visible
    /// `SKIPPED` line); fails the test when PostgreSQL cannot be had.
    pub async fn fresh_database() -> Option<String> {
        if skip::skipped(Suite::Postgres) {
            skip::announce(Suite::Postgres);
            return None;
        }
        let admin = match SERVER.get_or_init(start) {
            Ok(server) => server.admin_url(),
            Err(reason) => skip::fail(
                Suite::Postgres,
                &format!(
                    "{reason}. Install PostgreSQL 15 (apt-get install postgresql-15) or set \
                     ISP_TEST_POSTGRES_URL"
                ),
            ),
        };
        let name = format!(
            "isp_test_{}_{}",
            std::process::id(),
            DB_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        conn.close().await.ok();
        Some(with_database(&admin, &name))
    }

    /// `url` with its database replaced by `db` (query string kept).
    pub(super) fn with_database(url: &str, db: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let base = match base[scheme_end..].find('/') {
            Some(i) => &base[..scheme_end + i],
            None => base,
        };
        match query {
            Some(q) => format!("{base}/{db}?{q}"),
            None => format!("{base}/{db}"),
        }
    }
}

/// A process that waits for our end of its stdin to close (this process exiting,
/// however), then stops the cluster and removes its directory. In its own process
/// group, so that a Ctrl-C to `cargo test` does not kill it first.
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
        .arg("isp-pg-watchdog")
        .arg(bin.join("pg_ctl"))
        .arg(data)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the watchdog: {e}"))?;
    let stdin = child.stdin.take().ok_or("watchdog has no stdin")?;
    Ok((child, stdin))
}

/// Installs PostgreSQL 15 from Debian's packages (root only).
fn install_postgres(as_root: bool) -> Result<(), String> {
    if !as_root {
        return Err("PostgreSQL is not installed and we are not root to apt-get install it".to_owned());
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
    };
    let install = ["install", "-y", "--no-install-recommends", "postgresql-15"];
    let first = apt(&install).map_err(|e| format!("apt-get: {e}"))?;
    if first.status.success() {
        return Ok(());
    }
    let _ = apt(&["update"]);
    let second = apt(&install).map_err(|e| format!("apt-get: {e}"))?;
    if second.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install postgresql-15 failed: {}",
            String::from_utf8_lossy(&second.stderr).trim()
        ))
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

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("non-UTF-8 path {}", p.display()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .arg(flag)
            .arg("postgres")
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "no `postgres` system user (needed to run PostgreSQL as root)".to_owned())
    };
    Ok((id("-u")?, id("-g")?))
}

fn find_bindir() -> Option<PathBuf> {
    let preferred = PathBuf::from("/usr/lib/postgresql/15/bin");
    if preferred.join("initdb").exists() && preferred.join("pg_ctl").exists() {
        return Some(preferred);
    }
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

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::shared::with_database;

    #[test]
    fn with_database_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }
}
