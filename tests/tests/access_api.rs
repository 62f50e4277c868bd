//! End to end through `ispd`'s admin API on SQLite and simulated routers
//! (issue 17): create a subscriber, grant with a payment (enabled on every
//! router of the tenant when the answer arrives), the same payment again,
//! revoke, vouchers, the audit log, and the errors that name the field.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use isp_core::domain::*;
use isp_tests::{Options, TestDaemon, TOKEN};
use serde_json::{json, Value};

async fn call(t: &TestDaemon, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", t.base);
    let mut req = match method {
        "GET" => http.get(&url),
        _ => http.post(&url),
    }
    .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.expect("JSON answer");
    (status, v)
}

fn user<'a>(
    rows: &'a [std::collections::BTreeMap<String, String>],
    name: &str,
) -> Option<&'a std::collections::BTreeMap<String, String>> {
    rows.iter()
        .find(|r| r.get("name").map(String::as_str) == Some(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_through_the_api_enables_every_router_of_the_tenant_and_a_reference_pays_once() {
    let t = TestDaemon::start(Options {
        routers: 3,
        ..Options::default()
    })
    .await;
    t.repos
        .plans
        .insert(&NewPlan {
            tenant_id: TenantId(1),
            name: RosName::parse("plan", "1-hour").unwrap(),
            price: Money::parse("price", "1000", Currency::parse("c", "TZS").unwrap()).unwrap(),
            duration: Some(RosDuration::from_secs(3600)),
            rate_limit: None,
        })
        .await
        .expect("plan");

    let (status, created) = call(
        &t,
        "POST",
        "/api/subscribers",
        Some(json!({"tenant": "hotel-abc", "phone": "+255712000001", "username": null})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["subscriber"]["id"].as_i64().expect("id");
    assert_eq!(created["subscriber"]["username"], "255712000001");

    let (status, dup) = call(
        &t,
        "POST",
        "/api/subscribers",
        Some(json!({"tenant": "hotel-abc", "phone": "+255712000001"})),
    )
    .await;
    assert_eq!(status, 409, "{dup}");

    let grant =
        json!({"plan": "1-hour", "payment": {"reference": "MP123", "amount": "1000.00", "currency": "TZS"}});
    let (status, granted) = call(
        &t,
        "POST",
        &format!("/api/subscribers/{id}/grant"),
        Some(grant.clone()),
    )
    .await;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(granted["duplicate_payment"], false);
    let routers = granted["routers"].as_array().expect("routers");
    assert_eq!(
        routers.len(),
        2,
        "tenant hotel-abc has routers 1 and 2: {granted}"
    );
    for r in routers {
        assert_eq!(r["state"], "enabled", "{granted}");
        assert!(r["error"].is_null());
    }
    // Enabled on both routers of the tenant when the answer arrived; not on
    // the other tenant's router.
    for h in &t.handles[..2] {
        let rows = h.rows("/ip/hotspot/user");
        let u = user(&rows, "255712000001").expect("our user on the router");
        assert_eq!(
            u.get("comment").map(String::as_str),
            Some(format!("isp:sub:{id}").as_str())
        );
        assert_ne!(u.get("disabled").map(String::as_str), Some("true"));
        h.hotspot_login("255712000001", "02:00:00:00:00:01", "10.5.50.1")
            .expect("login");
    }
    assert!(user(&t.handles[2].rows("/ip/hotspot/user"), "255712000001").is_none());

    // The same reference again: 200, duplicate, not extended.
    let (status, again) = call(&t, "POST", &format!("/api/subscribers/{id}/grant"), Some(grant)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate_payment"], true, "{again}");
    assert_eq!(again["paid_until"], granted["paid_until"]);

    let (status, shown) = call(&t, "GET", &format!("/api/subscribers/{id}"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["subscriber"]["paid_until"], granted["paid_until"]);
    assert!(shown["pending_grants"].as_array().expect("pending").is_empty());
    let actions: Vec<&str> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"grant"), "{shown}");

    // Revoke: disabled on both routers when the answer arrives.
    let (status, revoked) = call(
        &t,
        "POST",
        &format!("/api/subscribers/{id}/revoke"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    for r in revoked["routers"].as_array().expect("routers") {
        assert_eq!(r["state"], "removed", "{revoked}");
    }
    for h in &t.handles[..2] {
        let rows = h.rows("/ip/hotspot/user");
        let u = user(&rows, "255712000001").expect("user");
        assert_eq!(u.get("disabled").map(String::as_str), Some("true"), "revoked");
    }

    // Vouchers: 201 with 20 distinct codes, each a user on the tenant's router.
    let (status, batch) = call(
        &t,
        "POST",
        "/api/vouchers",
        Some(json!({"tenant": "hotel-abc", "plan": "1-hour", "count": 20})),
    )
    .await;
    assert_eq!(status, 201, "{batch}");
    let codes: Vec<String> = batch["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes.len(), 20);
    let unique: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), 20);
    let rows = t.handles[0].rows("/ip/hotspot/user");
    for c in &codes {
        let u = user(&rows, c).expect("voucher user on the router");
        assert_eq!(u.get("limit-uptime").map(String::as_str), Some("1h"), "{u:?}");
    }
    let (status, v) = call(
        &t,
        "GET",
        &format!("/api/vouchers/{}?tenant=hotel-abc", codes[0]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["voucher"]["status"], "unused");
    assert!(v["voucher"]["activation_deadline"].is_string());

    let (status, audit) = call(&t, "GET", "/api/audit?limit=500", None).await;
    assert_eq!(status, 200, "{audit}");
    let events = audit["events"].as_array().expect("events");
    assert!(events.iter().any(|e| e["action"] == "voucher_generate"));

    // Errors name the field and the value.
    let cases = [
        (
            "/api/subscribers",
            json!({"tenant": "hotel-abc", "phone": "12"}),
            400,
            "phone",
        ),
        (
            "/api/subscribers",
            json!({"tenant": "nowhere", "phone": "+255712000009"}),
            404,
            "nowhere",
        ),
        (
            "/api/subscribers",
            json!({"phone": "+255712000009"}),
            400,
            "tenant",
        ),
        (
            &format!("/api/subscribers/{id}/grant"),
            json!({"seconds": 0}),
            400,
            "seconds",
        ),
        (
            &format!("/api/subscribers/{id}/grant"),
            json!({"plan": "no-such-plan"}),
            404,
            "no-such-plan",
        ),
        (
            &format!("/api/subscribers/{id}/grant"),
            json!({"until": "tomorrow"}),
            400,
            "tomorrow",
        ),
        (
            &format!("/api/subscribers/{id}/grant"),
            json!({"seconds": 60, "plan": "1-hour"}),
            400,
            "exactly one",
        ),
        (
            "/api/subscribers/999999/grant",
            json!({"seconds": 60}),
            404,
            "999999",
        ),
        (
            "/api/vouchers",
            json!({"tenant": "hotel-abc", "plan": "1-hour", "count": 0}),
            400,
            "count",
        ),
        (
            "/api/vouchers",
            json!({"tenant": "hotel-abc", "plan": "1-hour", "count": 5, "prefix": "bad prefix"}),
            400,
            "prefix",
        ),
    ];
    for (path, body, want, needle) in cases {
        let (status, v) = call(&t, "POST", path, Some(body.clone())).await;
        assert_eq!(status, want, "{path} {body}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{path} {body}: {msg:?} should name {needle:?}"
        );
    }
    let (status, v) = call(&t, "GET", "/api/audit?since=yesterday", None).await;
    assert_eq!(status, 400, "{v}");
    t.stop().await;
}
