//! A throwaway MariaDB server.
//!
//! - [`fresh_database`] (feature `mysql`): a URL to a new, empty database for one
//!   test. The server is `ISP_TEST_MYSQL_URL` when set, else one private [`Server`]
//!   per test binary, started on first use.
//! - [`Server::start`]: a private server a test owns; dropping it stops it and
//!   removes its files.
//!
//! A server is Debian's `mariadbd` (`apt-get install mariadb-server` first when it
//! is missing and we are root, serialized by a lock file so that parallel test
//! binaries install once), a datadir from `mariadb-install-db` in a temp dir, a
//! free port on 127.0.0.1 and the socket in the temp dir. It runs as the `mysql`
//! user when we are root. A user `isp` (password `isp`, every privilege) is
//! created over the socket; tests connect over TCP with it. A watchdog process
//! holds the read end of a pipe only this process writes to; when the test binary
//! exits, however it exits, the watchdog stops the server and removes its
//! directory. No mariadbd outlives `cargo test`.
//!
//! When MariaDB cannot start, the test fails with the reason, unless
//! `ISP_TEST_SKIP` names `mariadb` (see [`crate::skip`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::skip::{self, Suite};

/// The user and password of the tests' account.
const USER: &str = "isp";
const PASSWORD: &str = "isp";

/// A private server. Dropping it stops it and removes its files.
pub struct Server {
    dir: PathBuf,
    port: u16,
    pid: u32,
    /// Keeps the watchdog's stdin open while the server lives.
    _watchdog: Mutex<(Child, ChildStdin)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

struct Binaries {
    server: PathBuf,
    install_db: PathBuf,
    client: PathBuf,
}

impl Server {
    /// Initialises and starts a server; `Err(reason)` when it cannot, or at once
    /// when `ISP_TEST_SKIP` names `mariadb`.
    pub fn start() -> Result<Server, String> {
        if skip::skipped(Suite::Mariadb) {
            return Err(format!("{} names mariadb", skip::VAR));
        }
        let as_root = is_root();
        let bin = match find_binaries() {
            Some(b) => b,
            None => {
                install_mariadb(as_root)?;
                find_binaries().ok_or_else(|| {
                    "no MariaDB server binaries (mariadbd, mariadb-install-db, mariadb) on PATH or in \
                     /usr/sbin, even after apt-get install mariadb-server"
                        .to_owned()
                })?
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("isp-mariadb-")
            .tempdir()
            .map_err(|e| format!("creating a temp dir: {e}"))?
            .keep();
        let started = Self::start_in(&bin, &dir, as_root);
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        started
    }

    fn start_in(bin: &Binaries, dir: &Path, as_root: bool) -> Result<Server, String> {
        let data = dir.join("data");
        let user = if as_root {
            let (uid, gid) = mysql_ids()?;
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
            vec!["--user=mysql".to_owned()]
        } else {
            Vec::new()
        };
        let init = Command::new(&bin.install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", path_str(&data)?))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(&user)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", bin.install_db.display()))?;
        if !init.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {} {}",
                String::from_utf8_lossy(&init.stdout).trim(),
                String::from_utf8_lossy(&init.stderr).trim()
            ));
        }
        // A free port can be taken between the probe and the server's bind: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            match spawn_server(bin, dir, port, &user) {
                Ok((pid, watchdog)) => {
                    let server = Server {
                        dir: dir.to_path_buf(),
                        port,
                        pid,
                        _watchdog: Mutex::new(watchdog),
                    };
                    match server.wait_ready().and_then(|()| server.create_user(bin)) {
                        Ok(()) => return Ok(server),
                        Err(e) => {
                            last_error = e;
                            server.kill();
                        }
                    }
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// `mysql://isp:isp@127.0.0.1:PORT/` (no database selected).
    pub fn url(&self) -> String {
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{}/", self.port)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mariadb.err")).unwrap_or_default()
    }

    /// Waits until the server accepts connections (its log says so), or fails
    /// with the log when it exits or takes longer than a minute.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.log();
            if log.contains("ready for connections") && self.socket().exists() {
                return Ok(());
            }
            let alive = Command::new("kill")
                .arg("-0")
                .arg(self.pid.to_string())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                return Err(format!("mariadbd exited: {}", log.trim()));
            }
            if Instant::now() > deadline {
                return Err(format!("mariadbd not ready after 60 s: {}", log.trim()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn create_user(&self, bin: &Binaries) -> Result<(), String> {
        let sql = format!(
            "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%' WITH GRANT OPTION; FLUSH PRIVILEGES;"
        );
        let out = Command::new(&bin.client)
            .arg("--no-defaults")
            .arg(format!("--socket={}", path_str(&self.socket())?))
            .arg("--user=root")
            .arg("-e")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", bin.client.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "creating the test user failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn kill(&self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && Command::new("kill")
                .arg("-0")
                .arg(self.pid.to_string())
                .status()
                .is_ok_and(|s| s.success())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts mariadbd in the background through a watchdog shell: the shell starts
/// the server, prints its pid, waits for our end of its stdin to close (this
/// process exiting, however), then stops the server and removes the directory.
/// In its own process group, so that a Ctrl-C to `cargo test` does not kill it
/// first.
fn spawn_server(
    bin: &Binaries,
    dir: &Path,
    port: u16,
    user: &[String],
) -> Result<(u32, (Child, ChildStdin)), String> {
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;
    let mut args = vec![
        "--no-defaults".to_owned(),
        format!("--datadir={}", path_str(&dir.join("data"))?),
        format!("--socket={}", path_str(&dir.join("mysqld.sock"))?),
        format!("--pid-file={}", path_str(&dir.join("mariadb.pid"))?),
        format!("--log-error={}", path_str(&dir.join("mariadb.err"))?),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".to_owned(),
        "--skip-name-resolve".to_owned(),
        "--max-connections=500".to_owned(),
        "--innodb-buffer-pool-size=256M".to_owned(),
        "--innodb-flush-log-at-trx-commit=0".to_owned(),
        "--innodb-doublewrite=0".to_owned(),
        "--sync-binlog=0".to_owned(),
    ];
    args.extend(user.iter().cloned());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(
            "dir=\"$1\"; shift; \"$@\" >/dev/null 2>&1 </dev/null & pid=$!; echo $pid; \
             cat >/dev/null; kill $pid 2>/dev/null; \
             i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
             kill -9 $pid 2>/dev/null; rm -rf \"$dir\"",
        )
        .arg("isp-mariadb-watchdog")
        .arg(dir)
        .arg(&bin.server)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting mariadbd: {e}"))?;
    let stdin = child.stdin.take().ok_or("watchdog has no stdin")?;
    let stdout = child.stdout.take().ok_or("watchdog has no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading mariadbd's pid: {e}"))?;
    let pid = line
        .trim()
        .parse()
        .map_err(|_| format!("mariadbd's pid is not a number: {line:?}"))?;
    Ok((pid, (child, stdin)))
}

/// Installs MariaDB from Debian's packages (root only), one installer at a time.
fn install_mariadb(as_root: bool) -> Result<(), String> {
    if !as_root {
        return Err("MariaDB is not installed and we are not root to apt-get install it".to_owned());
    }
    skip::say("isp-testsupport: mariadbd not found; apt-get install -y mariadb-server (may take a minute)");
    let apt = |args: &str| {
        Command::new("flock")
            .arg("/tmp/isp-testsupport-apt.lock")
            .arg("sh")
            .arg("-c")
            .arg(format!(
                "command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt-get {args}"
            ))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
    };
    let install = "install -y --no-install-recommends mariadb-server mariadb-client";
    let first = apt(install).map_err(|e| format!("apt-get (under flock): {e}"))?;
    if first.status.success() {
        return Ok(());
    }
    let _ = apt("update");
    let second = apt(install).map_err(|e| format!("apt-get (under flock): {e}"))?;
    if second.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install mariadb-server failed: {}",
            String::from_utf8_lossy(&second.stderr).trim()
        ))
    }
}

fn find_binaries() -> Option<Binaries> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    let find = |names: &[&str]| {
        dirs.iter()
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find(|p| p.is_file())
    };
    Some(Binaries {
        server: find(&["mariadbd", "mysqld"])?,
        install_db: find(&["mariadb-install-db", "mysql_install_db"])?,
        client: find(&["mariadb", "mysql"])?,
    })
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

fn mysql_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .arg(flag)
            .arg("mysql")
            .output()
            .map_err(|e| format!("id {flag} mysql: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "no `mysql` system user (needed to run MariaDB as root)".to_owned())
    };
    Ok((id("-u")?, id("-g")?))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

#[cfg(feature = "mysql")]
pub use shared::fresh_database;

#[cfg(feature = "mysql")]
mod shared {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    use sqlx::Connection as _;

    use super::Server;
    use crate::skip::{self, Suite};

    /// The server of this test binary: an external one, or a private server that
    /// lives as long as the process (its watchdog stops it at exit).
    enum Shared {
        External(String),
        Private(Server),
    }

    static SERVER: OnceLock<Result<Shared, String>> = OnceLock::new();
    static DB_SEQ: AtomicU32 = AtomicU32::new(0);

    fn start() -> Result<Shared, String> {
        match std::env::var("ISP_TEST_MYSQL_URL") {
            Ok(u) if !u.trim().is_empty() => Ok(Shared::External(u)),
            _ => Server::start().map(Shared::Private),
        }
    }

    /// A URL to a fresh, empty database on this binary's server (started on first
    /// use). `None` only when `ISP_TEST_SKIP` names `mariadb` (after a visible
    /// `SKIPPED` line); fails the test when MariaDB cannot be had.
    pub async fn fresh_database() -> Option<String> {
        if skip::skipped(Suite::Mariadb) {
            skip::announce(Suite::Mariadb);
            return None;
        }
        let admin = match SERVER.get_or_init(start) {
            Ok(Shared::External(url)) => url.clone(),
            Ok(Shared::Private(server)) => server.url(),
            Err(reason) => skip::fail(
                Suite::Mariadb,
                &format!(
                    "{reason}. Install MariaDB (apt-get install mariadb-server) or set ISP_TEST_MYSQL_URL"
                ),
            ),
        };
        let name = format!(
            "isp_test_{}_{}",
            std::process::id(),
            DB_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::MySqlConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test MariaDB: {e}"));
        sqlx::query(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        conn.close().await.ok();
        Some(with_database(&admin, &name))
    }

    /// `url` with its database replaced by `db` (query string kept).
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
}
