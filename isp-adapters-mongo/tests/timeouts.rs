//! Timeouts: a server that goes silent (a black-holed network: connections stay
//! open, nothing answers) frees the caller with a transient `Unavailable`
//! within `MongoOptions`' timeouts, instead of holding it (and the job's gate)
//! forever. The 3.x driver has no socket or operation timeout of its own.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use isp_adapters_mongo::{MongoOptions, MongoStore};
use isp_core::domain::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Copies `from` to `to`; once `silent` is set, swallows what it reads.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, silent: Arc<AtomicBool>) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if silent.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A TCP proxy on 127.0.0.1 to `target` (`host:port`, or `None`: accept and
/// never answer), silent once `silent` is set. Returns its port.
async fn proxy(target: Option<String>, silent: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((client, _)) = listener.accept().await {
            let Some(target) = target.clone() else {
                held.push(client); // open, and silent forever
                continue;
            };
            let silent = silent.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&target).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, silent.clone()));
                tokio::spawn(pump(sr, cw, silent));
            });
        }
    });
    port
}

/// `host:port` of a `mongodb://` URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority).to_owned()
}

fn short() -> MongoOptions {
    MongoOptions {
        connect_timeout: Duration::from_millis(500),
        server_selection_timeout: Duration::from_millis(800),
        operation_timeout: Duration::from_secs(1),
    }
}

#[test]
fn default_timeouts_are_set() {
    let o = MongoOptions::default();
    assert_eq!(o.connect_timeout, Duration::from_secs(10));
    assert_eq!(o.server_selection_timeout, Duration::from_secs(10));
    assert_eq!(o.operation_timeout, Duration::from_secs(30));
}

/// A server that accepts connections and never answers: `connect` fails as
/// transient within its timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_fails_connect_transient() {
    let port = proxy(None, Arc::new(AtomicBool::new(true))).await;
    let url = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let started = Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        MongoStore::connect_with(&url, "isp", short()),
    )
    .await
    .expect("connect must not hang on a silent server")
    .expect_err("nothing answers");
    assert!(e.is_transient(), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// The server answers, then goes silent mid-session: each repository call
/// (a read, a claim, a write) fails as transient soon after the operation
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_frees_repository_calls() {
    let Some(real) = common::server_url() else {
        return;
    };
    let silent = Arc::new(AtomicBool::new(false));
    let port = proxy(Some(host_port(&real)), silent.clone()).await;
    let url = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let db = common::fresh_db_name();
    let store = MongoStore::connect_with(&url, &db, short())
        .await
        .expect("connect through the proxy");
    let repos = store.repositories();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let sub = repos
        .subscribers
        .insert(&NewSubscriber {
            tenant_id: TenantId(1),
            phone: PhoneNumber::parse("phone", "+255700000001").unwrap(),
            username: RosName::parse("username", "quiet").unwrap(),
            paid_until: t0,
        })
        .await
        .expect("insert while the server answers");

    silent.store(true, Ordering::SeqCst);
    let claim = Claim {
        holder: "a".into(),
        now: t0,
        until: t0 + chrono::Duration::minutes(5),
        limit: 10,
    };
    for what in ["get", "claim_expired", "extend"] {
        let started = Instant::now();
        let call = async {
            match what {
                "get" => repos.subscribers.get(sub.id).await.map(|_| ()),
                "claim_expired" => repos.subscribers.claim_expired(&claim).await.map(|_| ()),
                _ => repos
                    .subscribers
                    .extend(sub.id, t0 + chrono::Duration::days(1))
                    .await
                    .map(|_| ()),
            }
        };
        let e = tokio::time::timeout(Duration::from_secs(20), call)
            .await
            .unwrap_or_else(|_| panic!("{what} must not hang on a silent server"))
            .expect_err("nothing answers");
        assert!(e.is_transient(), "{what}: {e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} took {:?}",
            started.elapsed()
        );
    }

    // Clean up through a direct connection.
    let direct = MongoStore::connect(&real, &db).await.expect("connect");
    common::drop(&direct).await;
}
