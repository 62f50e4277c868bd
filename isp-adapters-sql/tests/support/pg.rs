//! A throwaway PostgreSQL for the tests of one test binary.
//!
//! - `ISP_TEST_POSTGRES_URL` (or a `postgres://` `DATABASE_URL`) names a server
//!   to use instead; each test still gets its own fresh database on it.
//! - Otherwise the first test that needs PostgreSQL starts a private cluster
//!   (installing `postgresql-15` with apt-get first if no server is installed
//!   and we are root):
//!   `initdb` (PostgreSQL 15 from /usr/lib/postgresql, or any version found
//!   there or on PATH) into a temp dir owned by `postgres` (run through
//!   `runuser` when we are root), trust auth, a free port on 127.0.0.1, the
//!   unix socket in the temp dir. Every test creates its own database
//!   (`CREATE DATABASE`).
//! - A watchdog process holds the read end of a pipe whose write end only this
//!   process has; when the test binary exits (even killed), the pipe closes and
//!   the watchdog runs `pg_ctl stop -m immediate` and removes the temp dir. So
//!   no postgres outlives `cargo test`.
//! - If PostgreSQL cannot start, the tests print a LOUD reason and pass as
//!   skipped; with `CI=true` they fail instead.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use sqlx::Connection as _;

/// A running (or external) server: the URL of its `postgres` database.
pub(crate) struct PgServer {
    admin_url: String,
    /// Keeps the watchdog's stdin open while this process lives.
    _watchdog: Option<Mutex<(Child, ChildStdin)>>,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static DB_SEQ: AtomicU32 = AtomicU32::new(0);
static WARNED: Once = Once::new();

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The server, starting it on first use; `Err(reason)` when unavailable.
pub(crate) fn server() -> Result<&'static PgServer, String> {
    SERVER.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// A URL to a fresh, empty database, or `None` (after a loud message) when
/// PostgreSQL is unavailable outside CI. Panics in CI.
pub(crate) async fn fresh_database() -> Option<String> {
    let server = match server() {
        Ok(s) => s,
        Err(reason) => {
            unavailable(&reason);
            return None;
        }
    };
    let name = format!(
        "isp_test_{}_{}",
        std::process::id(),
        DB_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&server.admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    conn.close().await.ok();
    Some(with_database(&server.admin_url, &name))
}

/// Says loudly that PostgreSQL tests did not run (bypassing libtest's capture),
/// or fails when in CI.
pub(crate) fn unavailable(reason: &str) {
    if in_ci() {
        panic!("PostgreSQL is required in CI (CI=true) but unavailable: {reason}");
    }
    WARNED.call_once(|| {
        let banner = "!".repeat(78);
        let _ = writeln!(
            std::io::stderr(),
            "\n{banner}\n!! PostgreSQL tests SKIPPED: {reason}\n!! Install PostgreSQL 15 \
             (apt-get install postgresql-15) or set ISP_TEST_POSTGRES_URL.\n{banner}\n"
        );
    });
}

fn with_database(url: &str, db: &str) -> String {
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

fn start() -> Result<PgServer, String> {
    if let Some(url) = external_url() {
        return Ok(PgServer {
            admin_url: url,
            _watchdog: None,
        });
    }
    let as_root = is_root();
    let bin = match find_bindir() {
        Some(b) => b,
        None => {
            install_postgres(as_root)?;
            find_bindir().ok_or_else(|| {
                "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH, \
                 even after apt-get install postgresql-15"
                    .to_owned()
            })?
        }
    };
    let dir = tempfile::Builder::new()
        .prefix("isp-pg-")
        .tempdir()
        .map_err(|e| format!("creating a temp dir: {e}"))?
        .keep();
    let result = start_in(&bin, &dir, as_root);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn start_in(bin: &Path, dir: &Path, as_root: bool) -> Result<PgServer, String> {
    let data = dir.join("data");
    if as_root {
        let (uid, gid) = postgres_ids()?;
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    let initdb = run_pg(
        as_root,
        bin.join("initdb"),
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
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr).trim()
        ));
    }
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            path_str(dir)?
        );
        let log = dir.join("postgres.log");
        let out = run_pg(
            as_root,
            bin.join("pg_ctl"),
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
            let watchdog = spawn_watchdog(bin, &data, dir, as_root)?;
            return Ok(PgServer {
                admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                _watchdog: Some(Mutex::new(watchdog)),
            });
        }
        last_error = format!(
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr).trim(),
            std::fs::read_to_string(&log).unwrap_or_default().trim()
        );
    }
    Err(last_error)
}

/// A process that waits for our end of its stdin to close (this process
/// exiting, however), then stops the cluster and removes its directory. In its
/// own process group, so that a Ctrl-C to `cargo test` does not kill it first.
fn spawn_watchdog(bin: &Path, data: &Path, dir: &Path, as_root: bool) -> Result<(Child, ChildStdin), String> {
    use std::os::unix::process::CommandExt as _;
    let pg_ctl = bin.join("pg_ctl");
    let stop = if as_root {
        "runuser -u postgres -- \"$1\" -D \"$2\" stop -m immediate -w"
    } else {
        "\"$1\" -D \"$2\" stop -m immediate -w"
    };
    let script = format!("cat >/dev/null; {stop} >/dev/null 2>&1; rm -rf \"$3\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("isp-pg-watchdog")
        .arg(&pg_ctl)
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

fn run_pg(as_root: bool, program: PathBuf, args: &[&str]) -> Result<std::process::Output, String> {
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.arg("-u").arg("postgres").arg("--").arg(&program);
        c
    } else {
        Command::new(&program)
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
    if preferred.join("initdb").exists() {
        return Some(preferred);
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|d| d.join("initdb").exists())
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
