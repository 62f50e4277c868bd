//! A scripted "router" that logs clients in and then answers with whatever
//! bytes a script says: random bytes, truncated sentences, a 4 GiB length
//! prefix, garbage attributes. For testing that clients fail cleanly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use isp_routeros::proto::{encode_sentence, Decoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the server does after a command.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Send these bytes and keep reading.
    Send(Vec<u8>),
    /// Send these bytes and close the connection.
    SendAndClose(Vec<u8>),
    /// Send these bytes and go silent (keep the connection open, read nothing more).
    SendAndStall(Vec<u8>),
}

/// The script: `(command, tag) -> answer`. `/login` is passed too.
pub type Script = Arc<dyn Fn(&str, Option<&str>) -> Answer + Send + Sync>;

/// Encodes sentences (words given as text).
pub fn sentences(list: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for words in list {
        encode_sentence(words, &mut out);
    }
    out
}

/// `!done` with the tag, as a login success.
pub fn done(tag: Option<&str>) -> Vec<u8> {
    let t = tag.map(|t| format!(".tag={t}"));
    let mut words = vec!["!done".to_owned()];
    words.extend(t);
    let mut out = Vec::new();
    encode_sentence(&words, &mut out);
    out
}

/// A running scripted server.
pub struct HostileRouter {
    addr: std::net::SocketAddr,
    commands: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for HostileRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileRouter").field("addr", &self.addr).finish()
    }
}

impl Drop for HostileRouter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileRouter {
    /// Starts the server on a free loopback port.
    pub async fn start(script: Script) -> HostileRouter {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let commands = Arc::new(AtomicU64::new(0));
        let c = commands.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, script.clone(), c.clone()));
            }
        });
        HostileRouter { addr, commands, task }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Commands received so far (including logins).
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }
}

async fn serve(mut sock: TcpStream, script: Script, commands: Arc<AtomicU64>) {
    let mut dec = Decoder::new(1024 * 1024);
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        loop {
            let words = match dec.next_sentence() {
                Ok(Some(w)) => w,
                Ok(None) => break,
                Err(_) => return,
            };
            commands.fetch_add(1, Ordering::Relaxed);
            let command = words
                .first()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .unwrap_or_default();
            let tag = words.iter().find_map(|w| {
                w.strip_prefix(b".tag=")
                    .map(|t| String::from_utf8_lossy(t).into_owned())
            });
            match script(&command, tag.as_deref()) {
                Answer::Send(b) => {
                    if sock.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Answer::SendAndClose(b) => {
                    let _ = sock.write_all(&b).await;
                    let _ = sock.shutdown().await;
                    return;
                }
                Answer::SendAndStall(b) => {
                    let _ = sock.write_all(&b).await;
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// The process's peak virtual memory size (`VmPeak`), in bytes (Linux; 0 elsewhere).
pub fn vm_peak() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmPeak:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`, ...), in bytes; an
/// error naming the field when it cannot be read (never 0 for "unknown").
pub fn proc_status_bytes(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status for {field}: {e}"))?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))
        .ok_or_else(|| format!("/proc/self/status has no {field} line"))?;
    let kb = line
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<u64>().ok())
        .ok_or_else(|| format!("/proc/self/status: unreadable {field} line {line:?}"))?;
    if kb == 0 {
        return Err(format!(
            "/proc/self/status reports {field} = 0, not a measurement"
        ));
    }
    Ok(kb * 1024)
}

/// Resets the process's peak resident set size (`VmHWM`) to its current RSS
/// (Linux: `5` into `/proc/self/clear_refs`), so a later `VmHWM` is the peak
/// of what ran in between; an error when the kernel does not allow it.
pub fn reset_rss_peak() -> Result<(), String> {
    std::fs::write("/proc/self/clear_refs", "5")
        .map_err(|e| format!("cannot reset the peak RSS through /proc/self/clear_refs: {e}"))
}
