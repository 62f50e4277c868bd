//! The harnesses against real servers, and the visibility of `ISP_TEST_SKIP`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use isp_testsupport::{mongo, pg};

/// Waits until `cond` holds, failing after `secs`.
fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn port_of(url: &str) -> u16 {
    let after_host = url.split("127.0.0.1:").nth(1).expect("a loopback URL");
    let digits: String = after_host.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a port")
}

#[test]
fn a_cluster_stops_starts_again_and_goes_away_when_dropped() {
    let cluster = match pg::Cluster::start() {
        Ok(c) => c,
        Err(reason) => return pg::skip_or_fail(&reason),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port_of(&cluster.url())));
    assert!(accepts(addr), "a started cluster accepts connections");
    cluster.stop().expect("stop");
    assert!(!accepts(addr), "a stopped cluster refuses connections");
    cluster.start_again().expect("start again");
    assert!(accepts(addr), "the cluster is back on the same port");
    drop(cluster);
    assert!(!accepts(addr), "a dropped cluster is stopped");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn fresh_databases_are_distinct_and_empty() {
    use sqlx::Connection as _;
    let Some(a) = pg::fresh_database().await else {
        return;
    };
    let b = pg::fresh_database().await.expect("a second database");
    assert_ne!(a, b);
    let mut conn = sqlx::PgConnection::connect(&a).await.expect("connect");
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&mut conn)
            .await
            .expect("count tables");
    assert_eq!(tables, 0);
}

#[test]
fn a_mongo_server_serves_and_stops_when_dropped() {
    let server = match mongo::start(&mongo::default_venv_base()) {
        Ok(s) => s,
        Err(reason) => return mongo::skip_or_fail(&reason),
    };
    if mongo::is_external() {
        return;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port_of(&server.url)));
    assert!(accepts(addr));
    drop(server);
    wait_until(15, "the dropped server to stop listening", || !accepts(addr));
}

/// Run by [`opting_out_skips_with_a_line_libtest_does_not_hide`] in a child process.
#[tokio::test]
#[ignore = "run in a child process with ISP_TEST_SKIP set"]
async fn child_needing_both_servers() {
    #[cfg(feature = "postgres")]
    assert!(pg::fresh_database().await.is_none());
    assert!(mongo::server_url().is_none());
    assert!(pg::Cluster::start().is_err());
}

fn run_child(skip: &str) -> std::process::Output {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "child_needing_both_servers"])
        .env("ISP_TEST_SKIP", skip)
        .output()
        .expect("run the child test")
}

#[test]
fn opting_out_skips_with_a_line_libtest_does_not_hide() {
    let out = run_child("postgres, mongo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(
        stderr.contains("SKIPPED: child_needing_both_servers needs mongo (ISP_TEST_SKIP)"),
        "{stderr}"
    );
    if cfg!(feature = "postgres") {
        assert!(
            stderr.contains("SKIPPED: child_needing_both_servers needs postgres (ISP_TEST_SKIP)"),
            "{stderr}"
        );
    }
}

#[test]
fn a_typo_in_the_opt_out_fails_naming_the_word() {
    let out = run_child("postgres,mongodb");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("ISP_TEST_SKIP") && all.contains("mongodb"), "{all}");
}
