//! The servers against FreeRADIUS's own tools as the NAS (`radtest`, `radclient`).

mod common;

use chrono::Duration as Span;
use common::*;
use isp_core::domain::{ServiceStatus, VoucherStatus};
use isp_core::ports::Clock as _;
use isp_radius::RadiusSessionKind;

#[tokio::test]
async fn pap_accept_carries_the_exact_paid_seconds_left() {
    let Some(tool) = tools() else { return };
    let w = world().await;
    let s = w.subscriber(1, Span::seconds(3600)).await;
    let name = s.username.as_str();
    let r = radtest(&tool, false, name, name, w.server.auth_addr()).await;
    assert!(r.received("Access-Accept"), "{}", r.out);
    assert_eq!(r.attr("Session-Timeout").as_deref(), Some("3600"), "{}", r.out);
    assert_eq!(
        r.attr("Acct-Interim-Interval").as_deref(),
        Some("300"),
        "{}",
        r.out
    );

    w.clock.advance(Span::milliseconds(2500));
    let r = radtest(&tool, false, name, name, w.server.auth_addr()).await;
    assert_eq!(
        r.attr("Session-Timeout").as_deref(),
        Some("3597"),
        "whole seconds, rounded down: {}",
        r.out
    );
}

#[tokio::test]
async fn chap_is_accepted_and_a_wrong_chap_password_is_rejected() {
    let Some(tool) = tools() else { return };
    let w = world().await;
    let s = w.subscriber(2, Span::seconds(600)).await;
    let name = s.username.as_str();
    let r = radtest(&tool, true, name, name, w.server.auth_addr()).await;
    assert!(r.received("Access-Accept"), "{}", r.out);
    assert_eq!(r.attr("Session-Timeout").as_deref(), Some("600"), "{}", r.out);
    let r = radtest(&tool, true, name, "not-it", w.server.auth_addr()).await;
    assert!(r.received("Access-Reject"), "{}", r.out);
    assert_eq!(
        r.attr("Reply-Message").as_deref(),
        Some("wrong password"),
        "{}",
        r.out
    );
}

#[tokio::test]
async fn expired_and_unknown_users_are_rejected_with_the_reason() {
    let Some(tool) = tools() else { return };
    let w = world().await;
    let s = w.subscriber(3, Span::seconds(60)).await;
    let name = s.username.as_str();
    assert!(radtest(&tool, false, name, name, w.server.auth_addr())
        .await
        .received("Access-Accept"));
    w.clock.advance(Span::seconds(60));
    let r = radtest(&tool, false, name, name, w.server.auth_addr()).await;
    assert!(r.received("Access-Reject"), "{}", r.out);
    let msg = r.attr("Reply-Message").unwrap_or_default();
    assert!(msg.contains("expired"), "{msg:?}");

    let r = radtest(&tool, false, "nobody", "nobody", w.server.auth_addr()).await;
    assert!(r.received("Access-Reject"), "{}", r.out);
    assert_eq!(r.attr("Reply-Message").as_deref(), Some("unknown user nobody"));
    assert_eq!(w.server.stats().rejects, 2);
    assert_eq!(w.server.stats().accepts, 1);
}

#[tokio::test]
async fn a_vouchers_first_accept_activates_it_and_carries_the_plans_rate_limit() {
    let Some(tool) = tools() else { return };
    let w = world().await;
    let v = w.voucher("k7q2m9", 60).await;
    assert_eq!(v.status, VoucherStatus::Unused);
    let r = radtest(&tool, false, "k7q2m9", "k7q2m9", w.server.auth_addr()).await;
    assert!(r.received("Access-Accept"), "{}", r.out);
    assert_eq!(r.attr("Session-Timeout").as_deref(), Some("3600"), "{}", r.out);
    assert_eq!(
        r.attr("Mikrotik-Rate-Limit").as_deref(),
        Some("2M/5M"),
        "{}",
        r.out
    );
    let v = w.repos.vouchers.get(v.id).await.expect("voucher");
    assert_eq!(v.status, VoucherStatus::Active);
    assert_eq!(v.started_at, Some(w.clock.now()));

    // Ten minutes later the same voucher has fifty left: the start is not moved.
    w.clock.advance(Span::minutes(10));
    let r = radtest(&tool, false, "k7q2m9", "k7q2m9", w.server.auth_addr()).await;
    assert_eq!(r.attr("Session-Timeout").as_deref(), Some("3000"), "{}", r.out);
    w.clock.advance(Span::minutes(50));
    let r = radtest(&tool, false, "k7q2m9", "k7q2m9", w.server.auth_addr()).await;
    assert!(r.received("Access-Reject"), "{}", r.out);
    assert_eq!(
        r.attr("Reply-Message").as_deref(),
        Some("voucher k7q2m9 has expired")
    );
}

#[tokio::test]
async fn pppoe_services_answer_from_their_status() {
    let Some(tool) = tools() else { return };
    let w = world().await;
    w.pppoe_service("amina-home", "pppoe-pw-1", ServiceStatus::Active)
        .await;
    w.pppoe_service("baraka-home", "pppoe-pw-2", ServiceStatus::Suspended)
        .await;
    let r = radtest(&tool, true, "amina-home", "pppoe-pw-1", w.server.auth_addr()).await;
    assert!(r.received("Access-Accept"), "{}", r.out);
    let timeout: i64 = r
        .attr("Session-Timeout")
        .and_then(|t| t.parse().ok())
        .expect("timeout");
    // Paid through the third day from now (tenant-local): between 3 and 4 days left.
    assert!((3 * 86_400..4 * 86_400).contains(&timeout), "{timeout}");
    assert_eq!(r.attr("Mikrotik-Rate-Limit").as_deref(), Some("2M/5M"));
    let r = radtest(&tool, false, "baraka-home", "pppoe-pw-2", w.server.auth_addr()).await;
    assert!(r.received("Access-Reject"), "{}", r.out);
    assert_eq!(
        r.attr("Reply-Message").as_deref(),
        Some("service of baraka-home is suspended")
    );
}

#[tokio::test]
async fn accounting_start_and_stop_are_recorded_as_sessions() {
    let Some(tool) = tools() else { return };
    let w = world().await;
    let start = "Acct-Status-Type = Start\nUser-Name = \"255712000004\"\nAcct-Session-Id = \"81000001\"\n\
                 Framed-IP-Address = 10.5.50.9\nCalling-Station-Id = \"AA:BB:CC:DD:EE:04\"\nNAS-Identifier = \"hotel-radius\"\n";
    let r = radclient(&tool, w.server.acct_addr(), "acct", SECRET, start).await;
    assert!(r.received("Accounting-Response"), "{}", r.out);
    let online = w.online().await;
    assert_eq!(online.len(), 1);
    assert_eq!(online[0].user, "255712000004");
    assert_eq!(online[0].session_id, "81000001");
    assert_eq!(online[0].kind, RadiusSessionKind::Hotspot);
    assert_eq!(online[0].address, Some("10.5.50.9".parse().expect("ip")));

    let ppp = "Acct-Status-Type = Start\nUser-Name = \"amina-home\"\nAcct-Session-Id = \"81000002\"\nFramed-Protocol = PPP\n";
    assert!(radclient(&tool, w.server.acct_addr(), "acct", SECRET, ppp)
        .await
        .received("Accounting-Response"));
    assert_eq!(w.online().await.len(), 2);

    let stop = "Acct-Status-Type = Stop\nUser-Name = \"255712000004\"\nAcct-Session-Id = \"81000001\"\nAcct-Session-Time = 42\n";
    let r = radclient(&tool, w.server.acct_addr(), "acct", SECRET, stop).await;
    assert!(r.received("Accounting-Response"), "{}", r.out);
    let online = w.online().await;
    assert_eq!(online.len(), 1);
    assert_eq!(online[0].kind, RadiusSessionKind::Ppp);
    let closed = w
        .sessions
        .get(ROUTER, "81000001")
        .await
        .expect("get")
        .expect("kept for history");
    assert_eq!(closed.stopped, Some(w.clock.now()));
    assert_eq!(closed.tenant, TENANT);

    // A wrong secret: dropped and counted, nothing recorded.
    let r = radclient(&tool, w.server.acct_addr(), "acct", "wrong-secret", start).await;
    assert!(!r.received("Accounting-Response"), "{}", r.out);
    assert_eq!(w.online().await.len(), 1);
    assert!(w.server.stats().bad_authenticator >= 1);
}

#[tokio::test]
async fn requests_without_or_with_a_wrong_message_authenticator_are_dropped_and_counted() {
    let Some(tool) = tools() else { return };
    let w = world().await;
    let s = w.subscriber(5, Span::seconds(600)).await;
    let name = s.username.as_str();
    let no_ma = format!("User-Name = \"{name}\"\nUser-Password = \"{name}\"\n");
    let r = radclient(&tool, w.server.auth_addr(), "auth", SECRET, &no_ma).await;
    assert!(
        !r.received("Access-Accept") && !r.received("Access-Reject"),
        "{}",
        r.out
    );
    assert!(w.server.stats().missing_message_authenticator >= 1);

    let with_ma = format!("{no_ma}Message-Authenticator = 0x00\n");
    let r = radclient(&tool, w.server.auth_addr(), "auth", "wrong-secret", &with_ma).await;
    assert!(
        !r.received("Access-Accept") && !r.received("Access-Reject"),
        "{}",
        r.out
    );
    assert!(w.server.stats().bad_authenticator >= 1);

    let r = radclient(&tool, w.server.auth_addr(), "auth", SECRET, &with_ma).await;
    assert!(r.received("Access-Accept"), "{}", r.out);
}

#[tokio::test]
async fn an_unknown_nas_gets_no_answer() {
    let Some(tool) = tools() else { return };
    let w = world_with_nas("10.9.9.9".parse().expect("ip")).await;
    let s = w.subscriber(6, Span::seconds(600)).await;
    let r = radtest(
        &tool,
        false,
        s.username.as_str(),
        s.username.as_str(),
        w.server.auth_addr(),
    )
    .await;
    assert!(!r.received("Access-Accept"), "{}", r.out);
    assert!(w.server.stats().unknown_nas >= 1);
}
