//! Hotspot expiry policy: never early, every enabled router of the tenant,
//! complete only when all of them confirmed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use std::collections::BTreeSet;

use isp_core::domain::*;
use isp_core::policy::hotspot::{hotspot_expiry, is_expired};
use policy_fixtures::*;
use proptest::prelude::*;

#[test]
fn seed_000_two_routers_of_the_tenant_both_get_the_removal() {
    let now = t("2026-01-14T12:00:00Z");
    let sub = subscriber(1, 7, t("2026-01-14T08:00:00Z"), true);
    // The device was last seen on Router1 only; Router3 belongs to another
    // tenant, Router4 is disabled.
    let devices = vec![
        device(1, 1, 0x11, Some(1), true, now),
        device(2, 1, 0x12, Some(1), false, now),
        device(3, 2, 0x13, Some(1), true, now),
    ];
    let routers = vec![
        router(1, 7, true),
        router(2, 7, true),
        router(3, 8, true),
        router(4, 7, false),
    ];
    let e = hotspot_expiry(&sub, &devices, &routers, now).expect("expired");
    assert_eq!(e.routers, vec![RouterId(1), RouterId(2)]);
    assert_eq!(e.target.macs, vec![mac(0x11)]);
    assert_eq!(e.target.username, Some(sub.username.clone()));
    assert_eq!(e.devices, vec![DeviceId(1)]);
    assert_eq!(e.notice.kind, NoticeKind::HotspotExpired);
    assert_eq!(e.notice.deadline, sub.paid_until);
    assert_eq!(e.notice.recipient, sub.phone);
    assert_eq!(e.paid_until, sub.paid_until);

    let mut confirmed = BTreeSet::from([RouterId(1)]);
    assert!(!e.is_complete(&confirmed), "one of two routers is not enough");
    confirmed.insert(RouterId(2));
    assert!(e.is_complete(&confirmed));
}

#[test]
fn the_paid_until_instant_itself_is_expired_one_before_is_not() {
    let paid = t("2026-03-01T10:00:00Z");
    let sub = subscriber(1, 1, paid, true);
    let routers = vec![router(1, 1, true)];
    assert!(hotspot_expiry(&sub, &[], &routers, paid - chrono::Duration::nanoseconds(1)).is_none());
    assert!(hotspot_expiry(&sub, &[], &routers, paid).is_some());
}

#[test]
fn inactive_subscribers_are_never_due() {
    let sub = subscriber(1, 1, t("2020-01-01T00:00:00Z"), false);
    assert!(hotspot_expiry(&sub, &[], &[router(1, 1, true)], t("2026-01-01T00:00:00Z")).is_none());
}

#[test]
fn no_enabled_router_means_nothing_left_to_cut_off() {
    let sub = subscriber(1, 1, t("2020-01-01T00:00:00Z"), true);
    let e = hotspot_expiry(&sub, &[], &[router(1, 1, false)], t("2026-01-01T00:00:00Z")).unwrap();
    assert!(e.routers.is_empty());
    assert!(e.is_complete(&BTreeSet::new()));
}

fn arb_world() -> impl Strategy<
    Value = (
        Subscriber,
        Vec<Device>,
        Vec<Router>,
        chrono::DateTime<chrono::Utc>,
    ),
> {
    (
        arb_instant(),
        arb_offset(),
        any::<bool>(),
        1i64..4,
        proptest::collection::vec((1i64..4, any::<u8>(), any::<bool>()), 0..8),
        proptest::collection::vec((1i64..4, any::<bool>()), 0..6),
    )
        .prop_map(|(paid, off, active, tenant, devs, rts)| {
            let now = paid + off;
            let sub = subscriber(1, tenant, paid, active);
            let devices = devs
                .into_iter()
                .enumerate()
                .map(|(i, (owner, m, a))| device(i as i64, owner % 2, m, Some(1), a, now))
                .collect();
            let routers = rts
                .into_iter()
                .enumerate()
                .map(|(i, (t, e))| router(i as i64 + 1, t, e))
                .collect();
            (sub, devices, routers, now)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Promise 2: nobody is cut off before paid_until; everybody active at or after it is.
    #[test]
    fn never_before_paid_until((sub, devices, routers, now) in arb_world()) {
        let e = hotspot_expiry(&sub, &devices, &routers, now);
        prop_assert_eq!(e.is_some(), sub.active && sub.paid_until <= now);
        prop_assert_eq!(is_expired(sub.paid_until, now), sub.paid_until <= now);
    }

    /// Every enabled router of the tenant, and nothing else; the subscriber's active MACs only.
    #[test]
    fn removes_on_every_enabled_router_of_the_tenant((sub, devices, routers, now) in arb_world()) {
        if let Some(e) = hotspot_expiry(&sub, &devices, &routers, now) {
            let want: BTreeSet<RouterId> = routers
                .iter()
                .filter(|r| r.enabled && r.tenant_id == sub.tenant_id)
                .map(|r| r.id)
                .collect();
            prop_assert_eq!(e.routers.iter().copied().collect::<BTreeSet<_>>(), want);
            let macs: BTreeSet<MacAddress> = devices
                .iter()
                .filter(|d| d.subscriber_id == sub.id && d.active)
                .map(|d| d.mac)
                .collect();
            prop_assert_eq!(e.target.macs.iter().copied().collect::<BTreeSet<_>>(), macs);
            prop_assert_eq!(e.notice.deadline, sub.paid_until);
            prop_assert_eq!(e.notice.kind, NoticeKind::HotspotExpired);
        }
    }

    /// Promise 1 in the policy: complete exactly when every required router confirmed.
    #[test]
    fn complete_only_when_every_router_confirmed(
        (sub, devices, routers, now) in arb_world(),
        picks in proptest::collection::vec(any::<bool>(), 8),
    ) {
        if let Some(e) = hotspot_expiry(&sub, &devices, &routers, now) {
            let confirmed: BTreeSet<RouterId> = e
                .routers
                .iter()
                .zip(picks.iter().cycle())
                .filter(|(_, p)| **p)
                .map(|(r, _)| *r)
                .collect();
            prop_assert_eq!(e.is_complete(&confirmed), confirmed.len() == e.routers.len());
        }
    }
}
