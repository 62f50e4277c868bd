//! The `ispd` binary: exit codes, `ispd once` against a demo database, the demo itself.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ispd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ispd"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ISPD_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("ispd runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn usage_and_configuration_mistakes_exit_2() {
    let (code, _, err) = run(ispd().args(["once", "bogus-job"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("disconnect-expired"), "lists the jobs: {err}");

    let (code, _, err) = run(ispd().args(["run", "--config", "/nonexistent/ispd.toml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/ispd.toml"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[tenants]]\nid = 1\nslug = \"a\"\ntime_zone = \"Mars/Olympus\"\n",
    )
    .unwrap();
    let (code, _, err) = run(ispd().args(["once", "disconnect-expired", "--config"]).arg(&bad));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(":4:") && err.contains("tenants[0].time_zone") && err.contains("Mars/Olympus"),
        "{err}"
    );

    let (code, _, err) = run(ispd().arg("frobnicate"));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn unreachable_storage_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ispd.toml");
    std::fs::write(
        &cfg,
        "[storage]\nurl = \"sqlite:///nonexistent-dir/sub/ispd.db\"\n",
    )
    .unwrap();
    let (code, _, err) = run(ispd().args(["status", "--config"]).arg(&cfg));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("storage"), "{err}");
    let (code, _, err) = run(ispd().args(["once", "device-cleanup", "--config"]).arg(&cfg));
    assert_eq!(code, 3, "{err}");
}

#[test]
fn migrate_then_once_on_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ispd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\nurl = \"sqlite://{}\"\n",
            dir.path().join("x.db").display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(ispd().args(["migrate", "--config"]).arg(&cfg));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("schema up to date"), "{out}");
    let (code, out, err) = run(ispd().args(["once", "disconnect-expired", "--config"]).arg(&cfg));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "disconnect-expired complete: 0 users disconnected, 0 devices deactivated, 0 SMS sent, 0 failures"
    );
    let (code, out, err) = run(ispd().args(["status", "--config"]).arg(&cfg));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("health: healthy"), "{out}");
}

fn wait_for(path: &Path, timeout: Duration) {
    let end = Instant::now() + timeout;
    while !path.exists() {
        assert!(Instant::now() < end, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ispd once disconnect-expired` against the demo database, while the demo's
/// routers run but its own watcher and sweep are off (the seeds' cron setup),
/// prints a report like the seeds' closing line.
#[test]
fn once_against_the_demo_database_prints_the_closing_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut demo = ispd()
        .args(["demo", "--duration-secs", "40", "--data-dir"])
        .arg(&data)
        .env("ISPD_SCHEDULER_WATCHER", "false")
        .env("ISPD_SCHEDULE_DISCONNECT_EXPIRED", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cfg = data.join("ispd.toml");
    wait_for(&data.join("admin.token"), Duration::from_secs(30));
    // The first demo subscribers expire 6, 9, 12 s after the start: wait until
    // `ispd status` lists at least 3 as expired but still connected.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = run(ispd().args(["status", "--config"]).arg(&cfg));
        if out.matches("NOT DISCONNECTED: ").count() >= 3 {
            break;
        }
        assert!(Instant::now() < end, "fewer than 3 overdue subscribers: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, err) = run(ispd().args(["once", "disconnect-expired", "--config"]).arg(&cfg));
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let last = out.lines().last().unwrap_or_default();
    let words: Vec<&str> = last.split_whitespace().collect();
    assert!(last.starts_with("disconnect-expired complete: "), "{out}");
    assert_eq!(&words[3..5], ["users", "disconnected,"], "{last}");
    let n: u64 = words[2].parse().unwrap_or(0);
    assert!(n >= 3, "expected at least 3 users disconnected: {out}");
    assert!(last.contains(&format!("{n} users disconnected, ")), "{last}");
    assert!(last.contains(" devices deactivated, "), "{last}");
    assert!(last.contains(&format!("{n} SMS sent, 0 failures")), "{last}");
    assert!(
        out.contains("Router statistics:\n  - "),
        "per-router lines: {out}"
    );
}

/// The demo, on its own, enforces expiries on the simulated routers in real time.
#[test]
fn the_demo_enforces_expiries_in_real_time() {
    let (code, out, err) = run(ispd().args(["demo", "--duration-secs", "14"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin API       http://127.0.0.1:"), "{out}");
    let removals: Vec<&str> = out.lines().filter(|l| l.contains(" removed by api, ")).collect();
    assert!(removals.len() >= 2, "expected removals: {out}");
    for l in &removals {
        let lag: f64 = l
            .split(" removed by api, ")
            .nth(1)
            .and_then(|s| s.split(" s after").next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(99.0);
        assert!(
            (0.0..=2.0).contains(&lag),
            "enforced {lag} s after paid_until: {l}"
        );
    }
    assert!(out.contains("demo data removed"), "{out}");
}

/// `ispd run` stops cleanly on SIGTERM (systemd's stop) and SIGINT (Ctrl-C).
#[cfg(unix)]
#[test]
fn run_stops_gracefully_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ispd.toml");
        std::fs::write(
            &cfg,
            format!(
                "[storage]\nurl = \"sqlite://{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"ISPD_TEST_TOKEN\"\n",
                dir.path().join("x.db").display()
            ),
        )
        .unwrap();
        let mut child = ispd()
            .args(["run", "--log-format", "json", "--config"])
            .arg(&cfg)
            .env("ISPD_TEST_TOKEN", "token-for-the-signal-test-123")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read the logs as they come; signal once the daemon has started (the
        // API listens, and the signal handlers are installed right after).
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("admin API listening") => break,
                Ok(_) => {}
                Err(e) => panic!("{signal}: ispd did not start: {e}"),
            }
        }
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let end = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < end, "ispd did not stop on {signal}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let err = reader.join().expect("stderr reader");
        assert_eq!(code, Some(0), "{signal}: {err}");
        assert!(
            err.contains("\"message\":\"ispd stopped\""),
            "{signal}: JSON logs with the stop event: {err}"
        );
        assert!(err.contains("real-time expiry watcher stopped"), "{err}");
        assert!(
            !err.contains("token-for-the-signal-test-123"),
            "token in the logs"
        );
        for line in err.lines() {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "not JSON: {line}"
            );
        }
    }
}
