//! End-to-end: a router that goes offline and comes back alerts the tenant's
//! `alert_phones` by SMS, once per change.
#![allow(clippy::unwrap_used)] // test code: a failed request is a failed test

use std::time::Duration;

use isp_tests::{sent_to, Options, TestDaemon, TOKEN};

async fn deliver(t: &TestDaemon) {
    // Pending notices go out with the notice-sending jobs; run one now.
    let r = reqwest::Client::new()
        .post(format!("{}/api/jobs/warn-before-expiry", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_outage_alerts_the_tenant_once_per_change() {
    let phone = "+255700000900";
    let t = TestDaemon::start(Options {
        alert_phones: vec![phone.into()],
        ..Options::default()
    })
    .await;
    // Let router-health (every 2 s) see every router online first.
    let mut all_online = false;
    for _ in 0..40 {
        if t.health().await["routers"]["online"] == 3 {
            all_online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(all_online, "routers never all online: {}", t.health().await);
    t.handles[0].outage(Duration::from_secs(5));
    let offline = async {
        for _ in 0..40 {
            deliver(&t).await;
            if sent_to(&t.sms, phone).keys().any(|m| m.contains("OFFLINE")) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    };
    assert!(offline.await, "no offline alert: {:?}", sent_to(&t.sms, phone));
    let back = async {
        for _ in 0..60 {
            deliver(&t).await;
            if sent_to(&t.sms, phone).keys().any(|m| m.contains("back online")) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    };
    assert!(back.await, "no back-online alert: {:?}", sent_to(&t.sms, phone));
    // Several health runs later, still exactly one of each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    deliver(&t).await;
    let sent = sent_to(&t.sms, phone);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.values().all(|n| *n == 1), "{sent:?}");
    assert!(sent.keys().all(|m| m.contains("hotel-abc:R1")), "{sent:?}");
    t.stop().await;
}
