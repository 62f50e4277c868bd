//! A fault-injecting RouterOS API proxy.
//!
//! It sits between a client (the driver) and a simulated router, decodes both
//! directions sentence by sentence with the crate's own codec, and, with seeded
//! probabilities:
//! - answers a command itself with `!trap` + `!done` (carrying the command's
//!   `.tag`) instead of forwarding it: the router refused the command, nothing
//!   changed on it;
//! - forwards only the first half of a reply sentence and then closes both
//!   connections: a connection dropped mid-sentence.
//!
//! Logins (`/login`) and `/cancel` are never trapped (refused logins are the
//! simulator's own fault, [`isp_routeros::sim::SimHandle::refuse_logins`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use isp_routeros::proto::{encode_sentence, Decoder, Reply};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The text of an injected trap. Deliberately not a text the driver treats
/// as "already gone" or "already exists".
pub const INJECTED_TRAP: &str = "failure: injected fault (reliability proxy)";

/// What a proxy did so far.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Command sentences received from clients.
    pub commands: AtomicU64,
    /// Commands answered with an injected trap.
    pub traps: AtomicU64,
    /// Replies cut mid-sentence (connection dropped).
    pub cuts: AtomicU64,
    /// Client connections accepted.
    pub connections: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    rng: Mutex<StdRng>,
    rates: Mutex<(f64, f64)>,
    stats: ProxyStats,
}

impl Shared {
    fn roll(&self, which: usize) -> bool {
        let rate = {
            let r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
            if which == 0 {
                r.0
            } else {
                r.1
            }
        };
        if rate <= 0.0 {
            return false;
        }
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .gen_bool(rate.min(1.0))
    }
}

/// A running proxy. Dropping it stops accepting (open connections end with their peers).
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rates: Mutex::new((0.0, 0.0)),
            stats: ProxyStats::default(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                s.stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(s.clone(), client));
            }
        });
        Ok(FaultProxy { addr, shared, task })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Probability that a command is answered with an injected trap.
    pub fn set_trap_rate(&self, p: f64) {
        self.shared.rates.lock().unwrap_or_else(|p| p.into_inner()).0 = p;
    }

    /// Probability that a reply sentence is cut half way and the connection dropped.
    pub fn set_cut_rate(&self, p: f64) {
        self.shared.rates.lock().unwrap_or_else(|p| p.into_inner()).1 = p;
    }

    /// Counters.
    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }
}

type ClientWriter = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

async fn serve(shared: Arc<Shared>, client: TcpStream) {
    let Ok(upstream) = TcpStream::connect(shared.upstream).await else {
        return; // router down: the client sees its connection closed
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_rd, client_wr) = client.into_split();
    let (mut up_rd, mut up_wr) = upstream.into_split();
    let client_wr: ClientWriter = Arc::new(tokio::sync::Mutex::new(client_wr));

    // Router -> client.
    let down = {
        let shared = shared.clone();
        let client_wr = client_wr.clone();
        tokio::spawn(async move {
            let mut dec = Decoder::new(64 * 1024 * 1024);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match up_rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                dec.push(&buf[..n]);
                loop {
                    let words = match dec.next_sentence() {
                        Ok(Some(w)) => w,
                        Ok(None) => break,
                        Err(_) => return,
                    };
                    let mut out = Vec::new();
                    encode_sentence(&words, &mut out);
                    let mut w = client_wr.lock().await;
                    if shared.roll(1) {
                        shared.stats.cuts.fetch_add(1, Ordering::Relaxed);
                        let _ = w.write_all(&out[..out.len() / 2]).await;
                        let _ = w.shutdown().await;
                        return;
                    }
                    if w.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
            let _ = client_wr.lock().await.shutdown().await;
        })
    };

    // Client -> router.
    let mut dec = Decoder::new(64 * 1024 * 1024);
    let mut buf = vec![0u8; 16 * 1024];
    'outer: loop {
        let n = match client_rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        loop {
            let words = match dec.next_sentence() {
                Ok(Some(w)) => w,
                Ok(None) => break,
                Err(_) => break 'outer,
            };
            let command = words
                .first()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .unwrap_or_default();
            shared.stats.commands.fetch_add(1, Ordering::Relaxed);
            let exempt = command == "/login" || command == "/cancel" || command == "/quit";
            if !exempt && shared.roll(0) {
                shared.stats.traps.fetch_add(1, Ordering::Relaxed);
                let tag = words.iter().find_map(|w| {
                    w.strip_prefix(b".tag=")
                        .map(|t| String::from_utf8_lossy(t).into_owned())
                });
                let mut out = Vec::new();
                Reply::trap(INJECTED_TRAP, None)
                    .with_tag(tag.clone())
                    .encode(false, &mut out);
                Reply::done().with_tag(tag).encode(false, &mut out);
                if client_wr.lock().await.write_all(&out).await.is_err() {
                    break 'outer;
                }
                continue;
            }
            let mut out = Vec::new();
            encode_sentence(&words, &mut out);
            if up_wr.write_all(&out).await.is_err() {
                break 'outer;
            }
        }
    }
    let _ = up_wr.shutdown().await;
    down.abort();
    let _ = client_wr.lock().await.shutdown().await;
}
