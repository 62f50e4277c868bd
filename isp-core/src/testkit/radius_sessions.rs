//! Checks for the sessions routers in RADIUS mode report.

use std::net::Ipv4Addr;

use crate::domain::*;
use crate::ports::Repositories;

use super::fixtures::*;

fn session(router: RouterId, id: &str, user: &str, at: i64) -> RadiusSession {
    RadiusSession {
        router,
        tenant: T1,
        session_id: id.to_owned(),
        user: user.to_owned(),
        kind: RadiusSessionKind::Hotspot,
        address: Some(Ipv4Addr::new(10, 5, 50, 7)),
        calling_station: Some("AA:BB:CC:00:00:01".to_owned()),
        started: t(at),
        updated: t(at),
        input_octets: 0,
        output_octets: 0,
        stopped: None,
    }
}

/// Start inserts, Interim-Update updates and keeps the first `started`, Stop
/// closes with the final counters and keeps the session for history; a late
/// Interim-Update does not reopen it, a Start reusing the key does; a Stop
/// whose Start was lost is kept closed; counters past `i64::MAX` are refused
/// naming the field.
pub(super) async fn radius_sessions_start_interim_stop(repos: Repositories) {
    let r = &repos.radius_sessions;
    let mut s = session(R1, "81a00001", "alice", 0);
    assert!(r.upsert(&s, true).await.expect("start"));
    assert_eq!(r.get(R1, "81a00001").await.expect("get"), Some(s.clone()));
    assert_eq!(
        r.get(R2, "81a00001").await.expect("get"),
        None,
        "keyed by router too"
    );

    let mut interim = s.clone();
    interim.started = t(5);
    interim.updated = t(5);
    interim.input_octets = 5_000_000_000;
    interim.output_octets = 7;
    interim.address = Some(Ipv4Addr::new(10, 5, 50, 8));
    assert!(r.upsert(&interim, false).await.expect("interim"));
    let got = r.get(R1, "81a00001").await.expect("get").expect("there");
    assert_eq!(got.started, t(0), "the first start is kept");
    assert_eq!(got.updated, t(5));
    assert_eq!((got.input_octets, got.output_octets), (5_000_000_000, 7));
    assert_eq!(got.address, Some(Ipv4Addr::new(10, 5, 50, 8)));
    assert!(got.is_live());

    let mut stop = interim.clone();
    stop.updated = t(9);
    stop.stopped = Some(t(9));
    stop.input_octets = 6_000_000_000;
    assert!(r.stop(&stop).await.expect("stop"), "it was live");
    let got = r
        .get(R1, "81a00001")
        .await
        .expect("get")
        .expect("kept for history");
    assert_eq!(got.stopped, Some(t(9)));
    assert_eq!(got.started, t(0));
    assert_eq!(got.input_octets, 6_000_000_000);
    assert!(r.live_on_router(R1).await.expect("live").is_empty());

    // A Stop again (retransmitted, or after a Disconnect closed it) updates
    // the counters only.
    let mut again = stop.clone();
    again.stopped = Some(t(12));
    again.updated = t(12);
    again.output_octets = 99;
    assert!(!r.stop(&again).await.expect("stop again"));
    let got = r.get(R1, "81a00001").await.expect("get").expect("there");
    assert_eq!((got.stopped, got.output_octets), (Some(t(9)), 99));

    // A late Interim-Update does not reopen it; a new Start with the same id does.
    let mut late = interim.clone();
    late.updated = t(13);
    assert!(!r.upsert(&late, false).await.expect("late interim"));
    assert!(!r
        .get(R1, "81a00001")
        .await
        .expect("get")
        .expect("there")
        .is_live());
    s.started = t(20);
    s.updated = t(20);
    assert!(r.upsert(&s, true).await.expect("start again"));
    let got = r.get(R1, "81a00001").await.expect("get").expect("there");
    assert!(got.is_live());
    assert_eq!((got.started, got.input_octets), (t(20), 0));

    // A Stop whose Start was lost: recorded, closed.
    let mut orphan = session(R2, "lost-start", "bob", 3);
    orphan.updated = t(8);
    orphan.stopped = None;
    assert!(!r.stop(&orphan).await.expect("orphan stop"));
    let got = r.get(R2, "lost-start").await.expect("get").expect("recorded");
    assert_eq!(got.stopped, Some(t(8)), "closed at its last record");

    let mut huge = session(R3, "huge", "carol", 0);
    huge.output_octets = u64::MAX;
    let e = r.upsert(&huge, true).await.expect_err("too large");
    assert!(e.to_string().contains("output_octets"), "{e}");
    assert_eq!(r.get(R3, "huge").await.expect("get"), None, "nothing written");
}

/// Live sessions per router and per (tenant, user) in start order; closing
/// one, a router's (Accounting-On) and the stale ones; retention deletes
/// closed sessions strictly before the cutoff and never a live one.
pub(super) async fn radius_sessions_queries_close_and_retention(repos: Repositories) {
    let r = &repos.radius_sessions;
    let a1 = session(R1, "a1", "alice", 2);
    let a2 = session(R2, "a2", "alice", 1);
    let b1 = session(R1, "b1", "bob", 1);
    let mut other_tenant = session(R3, "x", "alice", 0);
    other_tenant.tenant = T2;
    let mut ppp = session(R1, "p1", "pppoe-7", 3);
    ppp.kind = RadiusSessionKind::Ppp;
    ppp.address = None;
    ppp.calling_station = None;
    for s in [&a1, &a2, &b1, &other_tenant, &ppp] {
        assert!(r.upsert(s, true).await.expect("start"));
    }
    let ids = |v: Vec<RadiusSession>| v.into_iter().map(|s| s.session_id).collect::<Vec<_>>();
    assert_eq!(ids(r.live_on_router(R1).await.expect("live")), ["b1", "a1", "p1"]);
    assert_eq!(r.live_on_router(R1).await.expect("live")[2], ppp, "round trip");
    assert_eq!(
        ids(r.live_of_user(T1, "alice").await.expect("of user")),
        ["a2", "a1"]
    );
    assert_eq!(ids(r.live_of_user(T2, "alice").await.expect("of user")), ["x"]);
    assert!(r.live_of_user(T1, "nobody").await.expect("of user").is_empty());

    assert!(r.close(R1, "a1", t(10)).await.expect("close"));
    assert!(!r.close(R1, "a1", t(11)).await.expect("close again"));
    assert!(!r.close(R1, "missing", t(11)).await.expect("close unknown"));
    assert_eq!(
        r.get(R1, "a1").await.expect("get").expect("kept").stopped,
        Some(t(10))
    );
    assert_eq!(ids(r.live_of_user(T1, "alice").await.expect("of user")), ["a2"]);

    assert_eq!(r.close_router(R1, t(20)).await.expect("router"), 2, "b1 and p1");
    assert!(r.live_on_router(R1).await.expect("live").is_empty());
    assert_eq!(ids(r.live_on_router(R2).await.expect("live")), ["a2"]);

    // Stale: last updated strictly before the cutoff.
    let mut fresh = a2.clone();
    fresh.updated = t(30);
    assert!(r.upsert(&fresh, false).await.expect("interim"));
    assert_eq!(r.close_stale(t(30), t(40)).await.expect("stale"), 1, "only x");
    assert_eq!(ids(r.live_on_router(R2).await.expect("live")), ["a2"]);
    assert_eq!(
        r.get(R3, "x").await.expect("get").expect("kept").stopped,
        Some(t(40))
    );

    // Closed: a1 at 10, b1 and p1 at 20, x at 40; a2 live.
    assert_eq!(r.delete_closed_before(t(20)).await.expect("retention"), 1, "a1");
    assert_eq!(r.get(R1, "a1").await.expect("get"), None);
    assert!(
        r.get(R1, "b1").await.expect("get").is_some(),
        "not strictly before"
    );
    assert_eq!(r.delete_closed_before(t(1000)).await.expect("retention"), 3);
    assert_eq!(
        ids(r.live_on_router(R2).await.expect("live")),
        ["a2"],
        "live is kept"
    );
}
