//! End-to-end: the admin API refuses a missing or wrong token and never echoes it.

use isp_tests::{Options, TestDaemon, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_requires_the_bearer_token_and_never_echoes_it() {
    let t = TestDaemon::start(Options::default()).await;
    let http = reqwest::Client::new();
    let wrong = "Wrong-Token-That-Must-Not-Come-Back-123";
    let routes = [
        ("GET", "/api/health"),
        ("POST", "/api/jobs/disconnect-expired"),
        ("POST", "/api/services/1/provision"),
        ("POST", "/api/services/1/deprovision"),
        ("GET", "/api/routers/1/check"),
        ("POST", "/api/subscribers"),
        ("GET", "/api/subscribers/1"),
        ("POST", "/api/subscribers/1/grant"),
        ("POST", "/api/subscribers/1/revoke"),
        ("POST", "/api/vouchers"),
        ("GET", "/api/vouchers/ABC?tenant=hotel-abc"),
        ("GET", "/api/audit"),
        ("GET", "/metrics"),
        ("GET", "/no/such/route"),
    ];
    for (method, path) in routes {
        let url = format!("{}{path}", t.base);
        let req = |b: reqwest::RequestBuilder| b;
        let build = || match method {
            "GET" => http.get(&url),
            _ => http.post(&url),
        };
        for (what, r) in [
            ("no token", req(build())),
            ("wrong token", build().bearer_auth(wrong)),
            ("token as basic auth", build().basic_auth("admin", Some(TOKEN))),
            ("token with a prefix", build().bearer_auth(format!("x{TOKEN}"))),
            ("token truncated", build().bearer_auth(&TOKEN[..TOKEN.len() - 1])),
        ] {
            let resp = r.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} with {what}");
            assert!(resp.headers().get("www-authenticate").is_some());
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains(wrong),
                "{method} {path}: wrong token echoed: {body}"
            );
            assert!(
                !body.contains(TOKEN),
                "{method} {path}: real token in body: {body}"
            );
        }
    }

    // With the token: health, metrics, a job, router check, errors.
    let ok = |path: &str| http.get(format!("{}{path}", t.base)).bearer_auth(TOKEN);
    let health = ok("/api/health").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let body = health.text().await.unwrap();
    assert!(!body.contains(TOKEN));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["watcher"]["running"], true, "{v}");
    assert!(v["statistics"]["expired_but_still_active"].is_u64(), "{v}");

    let run = http
        .post(format!("{}/api/jobs/router-health", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 200);
    let v: serde_json::Value = run.json().await.unwrap();
    assert_eq!(v["report"]["job"], "router-health", "{v}");
    assert!(
        v["summary"].as_str().unwrap().contains("router-health complete"),
        "{v}"
    );

    let check: serde_json::Value = ok("/api/routers/1/check")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["online"], true, "{check}");
    assert_eq!(check["clock_skew_secs"], 0, "{check}");
    assert!(!check.to_string().contains(isp_tests::ROUTER_PASSWORD));
    let health: serde_json::Value = ok("/api/health").send().await.unwrap().json().await.unwrap();
    assert!(
        health["routers"]["list"][0]["version"].is_string(),
        "the RouterOS version of a checked router: {health}"
    );
    assert!(health["next_runs"].is_object(), "{health}");
    assert_eq!(
        health["last_hour"].as_array().map(Vec::len),
        Some(60),
        "one entry per minute of the last hour: {health}"
    );
    assert_eq!(ok("/api/routers/99/check").send().await.unwrap().status(), 404);
    assert_eq!(ok("/api/routers/abc/check").send().await.unwrap().status(), 400);

    let metrics = ok("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ispd_job_runs_total"), "{metrics}");
    assert!(metrics.contains("ispd_router_call_duration_seconds"), "{metrics}");
    assert!(!metrics.contains(isp_tests::ROUTER_PASSWORD));

    // Malformed JSON: 400 with a clear message; unknown job: 404; oversized body: 413.
    let post = |path: &str| http.post(format!("{}{path}", t.base)).bearer_auth(TOKEN);
    let bad = post("/api/jobs/sync-routers")
        .header("content-type", "application/json")
        .body("{\"dry_run\": tru")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("malformed JSON body"));
    let unknown = post("/api/jobs/sync-routers")
        .header("content-type", "application/json")
        .body("{\"dryrun\": true}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        post("/api/jobs/reboot-everything").send().await.unwrap().status(),
        404
    );
    let big = post("/api/jobs/sync-routers")
        .header("content-type", "application/json")
        .body(format!(
            "{{\"dry_run\": true, \"pad\": \"{}\"}}",
            "x".repeat(200_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let dry: serde_json::Value = post("/api/jobs/disconnect-expired?dry_run=true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dry["report"]["dry_run"], true, "{dry}");
    assert_eq!(
        post("/api/services/77/provision").send().await.unwrap().status(),
        404
    );
    t.stop().await;
}
