//! A TCP proxy that partitions the network without closing anything.
//!
//! While partitioned it forwards no byte in either direction and closes no
//! connection: bytes already read wait in the proxy, later ones in the
//! sockets' buffers, and a new connection is accepted but not connected
//! upstream, as when packets are dropped and TCP retransmits them. Healed,
//! everything held flows again in order (a partition shorter than TCP's
//! retransmission timeout). [`PartitionProxy::partition_after`] starts the
//! partition right after a client sends given bytes (a statement of a
//! transaction), so that it falls mid-transaction.
//! [`PartitionProxy::heal_losing_old_connections`] heals for new connections
//! only: the old ones stay black-holed for good, as when a NAT or firewall
//! lost their state.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Shared {
    upstream: SocketAddr,
    /// `true` while bytes flow.
    open: watch::Sender<bool>,
    /// Partition right after a client chunk containing these bytes.
    trigger: Mutex<Option<Vec<u8>>>,
    connections: AtomicU64,
    partitions: AtomicU64,
    /// Connections numbered below this never forward again.
    lost_below: AtomicU64,
}

impl Shared {
    fn set_open(&self, open: bool) {
        if !open {
            self.partitions.fetch_add(1, Ordering::Relaxed);
        }
        self.open.send_replace(open);
    }

    /// Connection `n` was black-holed for good.
    fn lost(&self, n: u64) -> bool {
        n < self.lost_below.load(Ordering::Relaxed)
    }

    async fn wait_open(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|o| *o).await;
    }
}

/// A running proxy; dropping it stops accepting and ends its connections.
pub struct PartitionProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for PartitionProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("partitioned", &self.partitioned())
            .finish()
    }
}

impl Drop for PartitionProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PartitionProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`, forwarding.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<PartitionProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            open: watch::channel(true).0,
            trigger: Mutex::new(None),
            connections: AtomicU64::new(0),
            partitions: AtomicU64::new(0),
            lost_below: AtomicU64::new(0),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let n = s.connections.fetch_add(1, Ordering::Relaxed);
                conns.spawn(serve(s.clone(), client, n));
            }
        });
        Ok(PartitionProxy { addr, shared, task })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding now.
    pub fn partition(&self) {
        self.shared.set_open(false);
    }

    /// Partitions right after the next client chunk that contains `needle`
    /// has been forwarded.
    pub fn partition_after(&self, needle: &[u8]) {
        *self.shared.trigger.lock().unwrap_or_else(|p| p.into_inner()) = Some(needle.to_vec());
    }

    /// Whether a [`partition_after`](Self::partition_after) is still waiting for its bytes.
    pub fn armed(&self) -> bool {
        self.shared
            .trigger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Forwards again, held bytes first.
    pub fn heal(&self) {
        self.shared.set_open(true);
    }

    /// Forwards again for connections made from now on; every connection
    /// accepted so far stays black-holed for good (its bytes are held, nothing
    /// is closed).
    pub fn heal_losing_old_connections(&self) {
        self.shared
            .lost_below
            .store(self.shared.connections.load(Ordering::Relaxed), Ordering::Relaxed);
        self.shared.set_open(true);
    }

    /// Whether the network is partitioned now.
    pub fn partitioned(&self) -> bool {
        !*self.shared.open.borrow()
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

async fn serve(shared: Arc<Shared>, client: TcpStream, n: u64) {
    // A partition drops the SYN too: connect upstream only when open.
    shared.wait_open().await;
    if shared.lost(n) {
        return std::future::pending().await;
    }
    let Ok(upstream) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_rd, client_wr) = client.into_split();
    let (up_rd, up_wr) = upstream.into_split();
    let up = pump(shared.clone(), client_rd, up_wr, true, n);
    let down = pump(shared, up_rd, client_wr, false, n);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    shared: Arc<Shared>,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    from_client: bool,
    conn: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        shared.wait_open().await;
        if shared.lost(conn) {
            return std::future::pending().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if from_client {
            let mut trigger = shared.trigger.lock().unwrap_or_else(|p| p.into_inner());
            let hit = trigger
                .as_ref()
                .is_some_and(|t| buf[..n].windows(t.len()).any(|w| w == t.as_slice()));
            if hit {
                *trigger = None;
                shared.set_open(false);
            }
        }
    }
    let _ = to.shutdown().await;
}
