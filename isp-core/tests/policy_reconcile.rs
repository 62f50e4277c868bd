//! Reconciliation: acts only on objects we own (comment prefix), never cuts off
//! the entitled, restores what entitled services miss, expires records whose
//! router object is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod policy_fixtures;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use isp_core::domain::*;
use isp_core::policy::provisioning::is_entitled;
use isp_core::policy::reconcile::*;
use isp_core::policy::voucher::{voucher_sync, voucher_time_expiry, VoucherAction};
use isp_core::ports::*;
use policy_fixtures::*;
use proptest::prelude::*;

fn hs_user(name: &str, comment: Option<&str>, disabled: bool) -> HotspotUser {
    HotspotUser {
        id: format!("*U{name}"),
        name: name.into(),
        disabled,
        comment: comment.map(str::to_owned),
        uptime: None,
        limit_uptime: None,
    }
}

fn session(id: &str, user: &str) -> HotspotSession {
    HotspotSession {
        id: id.into(),
        user: Some(user.into()),
        mac: None,
        address: None,
        uptime: None,
    }
}

fn secret(name: &str, comment: Option<&str>, disabled: bool) -> PppSecret {
    PppSecret {
        id: format!("*S{name}"),
        name: name.into(),
        profile: None,
        disabled,
        comment: comment.map(str::to_owned),
    }
}

#[derive(Debug, Clone)]
struct World {
    now: DateTime<Utc>,
    observed_at: DateTime<Utc>,
    today: NaiveDate,
    subscribers: Vec<Subscriber>,
    services: Vec<Service>,
    plans: BTreeMap<PlanId, Plan>,
    vouchers: Vec<Voucher>,
    elsewhere: HashSet<VoucherId>,
    list: RosName,
}

impl World {
    fn new(now: DateTime<Utc>) -> Self {
        World {
            now,
            observed_at: now,
            today: now.date_naive(),
            subscribers: vec![],
            services: vec![],
            plans: BTreeMap::from([(PlanId(1), plan(1, 1, "10", Some("5M/10M")))]),
            vouchers: vec![],
            elsewhere: HashSet::new(),
            list: name("isp-allowed"),
        }
    }

    fn desired(&self) -> Desired<'_> {
        Desired {
            now: self.now,
            observed_at: self.observed_at,
            today: self.today,
            subscribers: &self.subscribers,
            services: &self.services,
            plans: &self.plans,
            vouchers: &self.vouchers,
            voucher_users_elsewhere: &self.elsewhere,
            static_ip_list: &self.list,
        }
    }
}

#[test]
fn only_our_unentitled_users_lose_their_sessions() {
    let now = t("2026-01-14T12:00:00Z");
    let mut w = World::new(now);
    w.subscribers = vec![
        subscriber(1, 1, now - Duration::hours(1), true), // expired
        subscriber(2, 1, now + Duration::hours(1), true), // entitled
    ];
    let snap = RouterSnapshot {
        hotspot_users: vec![
            hs_user("expired", Some("isp:sub:1"), false),
            hs_user("paid", Some("isp:sub:2"), false),
            hs_user("guest", Some("made by the operator"), false),
            hs_user("forgotten", Some("isp:sub:99"), true), // already disabled, unknown to the DB
            hs_user("nocomment", None, false),
        ],
        hotspot_active: vec![
            session("*A1", "expired"),
            session("*A2", "paid"),
            session("*A3", "guest"),
            session("*A4", "forgotten"),
            session("*A5", "nocomment"),
        ],
        ..Default::default()
    };
    let actions = reconcile(&w.desired(), &snap);
    assert_eq!(
        actions,
        vec![
            ReconcileAction::RemoveHotspotSessions {
                ids: vec!["*A1".into(), "*A4".into()]
            },
            ReconcileAction::DisableHotspotUser {
                name: name("expired"),
                owner: OwnerTag::Subscriber(SubscriberId(1))
            },
        ]
    );
}

#[test]
fn an_entitled_subscribers_disabled_user_is_enabled_again() {
    let now = t("2026-01-14T12:00:00Z");
    let mut w = World::new(now);
    w.subscribers = vec![subscriber(2, 1, now + Duration::hours(1), true)];
    let snap = RouterSnapshot {
        hotspot_users: vec![
            hs_user("paid", Some("isp:sub:2"), true),
            hs_user("op", None, true),
        ],
        ..Default::default()
    };
    assert_eq!(
        reconcile(&w.desired(), &snap),
        vec![ReconcileAction::EnableHotspotUser {
            name: name("paid"),
            owner: OwnerTag::Subscriber(SubscriberId(2))
        }]
    );
}

#[test]
fn entitled_services_get_missing_objects_back_operator_objects_stay() {
    let now = t("2026-01-14T12:00:00Z");
    let mut w = World::new(now);
    let due = d(2026, 2, 1);
    w.services = vec![
        service(1, 1, 1, ServiceStatus::Active, pppoe("alice"), due, true), // secret missing
        service(2, 1, 1, ServiceStatus::Active, pppoe("bob"), due, true),   // operator secret of that name
        service(3, 1, 1, ServiceStatus::Active, static_ip(3), due, true),   // entry and queue missing
        service(4, 1, 1, ServiceStatus::Suspended, pppoe("dan"), due, false), // ours still there
        service(5, 1, 1, ServiceStatus::Active, static_ip(5), due, true),   // queue with a stale limit
    ];
    let snap = RouterSnapshot {
        ppp_secrets: vec![
            secret("bob", Some("hand made"), true),
            secret("dan", Some("isp:svc:4"), false),
            secret("carol", None, false),
        ],
        address_list: vec![
            AddressListEntry {
                id: "*L1".into(),
                list: "isp-allowed".into(),
                address: "10.9.0.5/32".into(),
                comment: Some("isp:svc:5".into()),
                disabled: false,
            },
            AddressListEntry {
                id: "*L2".into(),
                list: "isp-allowed".into(),
                address: "10.9.0.8".into(),
                comment: Some("office printer".into()),
                disabled: false,
            },
        ],
        queues: vec![
            SimpleQueue {
                id: "*Q1".into(),
                name: "isp-svc-5".into(),
                target: "10.9.0.5/32".into(),
                max_limit: Some("1M/1M".into()),
                comment: Some("isp:svc:5".into()),
                disabled: false,
            },
            SimpleQueue {
                id: "*Q2".into(),
                name: "boss".into(),
                target: "10.9.0.8/32".into(),
                max_limit: None,
                comment: None,
                disabled: false,
            },
        ],
        ..Default::default()
    };
    let actions = reconcile(&w.desired(), &snap);
    let keys: Vec<(&str, String)> = actions
        .iter()
        .map(|a| {
            let what = match a {
                ReconcileAction::RestorePppoe(s) => s.username.to_string(),
                ReconcileAction::RestoreStaticIp(s) => s.address.to_string(),
                ReconcileAction::RestoreQueue(s) => format!("{} {}", s.name, s.limit),
                ReconcileAction::RemovePppoe { name, .. } => name.to_string(),
                other => format!("{other:?}"),
            };
            (a.key(), what)
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("secrets_removed", "dan".to_owned()),
            ("secrets_restored", "alice".to_owned()),
            ("static_ips_restored", "10.9.0.3".to_owned()),
            ("queues_restored", "isp-svc-3 5M/10M".to_owned()),
            ("queues_restored", "isp-svc-5 5M/10M".to_owned()),
        ]
    );
}

#[test]
fn vouchers_expire_when_their_user_is_gone_not_when_logged_out() {
    let now = t("2026-01-14T12:00:00Z");
    let mut w = World::new(now);
    let mut gone = voucher(1, 1, "GONE1", VoucherStatus::Active);
    gone.expected_end = Some(now + Duration::hours(1));
    let mut out = voucher(2, 1, "LOGGEDOUT", VoucherStatus::Active);
    out.expected_end = Some(now + Duration::hours(1));
    w.vouchers = vec![gone, out];
    let snap = RouterSnapshot {
        hotspot_users: vec![hs_user("LOGGEDOUT", Some("isp:voucher:2"), false)],
        ..Default::default()
    };
    assert_eq!(
        reconcile(&w.desired(), &snap),
        vec![ReconcileAction::ExpireVoucher {
            voucher: VoucherId(1),
            reason: VoucherExpiryReason::RouterUserGone
        }]
    );
}

#[test]
fn a_voucher_activated_after_the_router_was_read_is_not_expired_for_its_missing_user() {
    let now = t("2026-01-14T12:00:00Z");
    let mut w = World::new(now);
    w.observed_at = now - Duration::seconds(2);
    let mut fresh = voucher(1, 1, "NEW1", VoucherStatus::Active);
    fresh.started_at = Some(now - Duration::seconds(1));
    fresh.expected_end = Some(now + Duration::hours(1));
    let mut old = voucher(2, 1, "OLD1", VoucherStatus::Active);
    old.started_at = Some(now - Duration::minutes(5));
    old.expected_end = Some(now + Duration::hours(1));
    w.vouchers = vec![fresh, old];
    assert_eq!(
        reconcile(&w.desired(), &RouterSnapshot::default()),
        vec![ReconcileAction::ExpireVoucher {
            voucher: VoucherId(2),
            reason: VoucherExpiryReason::RouterUserGone
        }]
    );
}

#[test]
fn an_unused_vouchers_missing_user_is_created_with_its_tag_and_uptime_limit() {
    let now = t("2026-01-14T12:00:00Z");
    let mut w = World::new(now);
    let mut missing = voucher(1, 1, "MISSING1", VoucherStatus::Unused);
    missing.activation_deadline = Some(now + Duration::days(7));
    let mut here = voucher(2, 1, "HERE2", VoucherStatus::Unused);
    here.activation_deadline = Some(now + Duration::days(7));
    let mut taken = voucher(3, 1, "TAKEN3", VoucherStatus::Unused);
    taken.activation_deadline = Some(now + Duration::days(7));
    let mut late = voucher(4, 1, "LATE4", VoucherStatus::Unused);
    late.activation_deadline = Some(now - Duration::minutes(1));
    w.vouchers = vec![missing.clone(), here, taken, late];
    let snap = RouterSnapshot {
        hotspot_users: vec![
            hs_user("HERE2", Some("isp:voucher:2"), false),
            hs_user("TAKEN3", Some("the operator's"), false),
        ],
        ..Default::default()
    };
    assert_eq!(
        reconcile(&w.desired(), &snap),
        vec![ReconcileAction::AddVoucherUser(HotspotUserSpec {
            name: name("MISSING1"),
            password: None,
            profile: None,
            limit_uptime: Some(missing.duration),
            mac: None,
            owner: OwnerTag::Voucher(VoucherId(1)),
        })],
        "the operator's same-name user and a voucher past its deadline get nothing"
    );
}

#[test]
fn an_active_voucher_missing_here_but_shown_by_another_router_is_restored_not_expired() {
    let now = t("2026-01-14T12:00:00Z");
    let mut w = World::new(now);
    let mut roams = voucher(1, 1, "ROAMS1", VoucherStatus::Active);
    roams.started_at = Some(now - Duration::minutes(10));
    roams.expected_end = Some(now + Duration::hours(1));
    let mut gone = voucher(2, 1, "GONE2", VoucherStatus::Active);
    gone.started_at = Some(now - Duration::minutes(10));
    gone.expected_end = Some(now + Duration::hours(1));
    w.vouchers = vec![roams.clone(), gone];
    w.elsewhere = HashSet::from([VoucherId(1)]);
    assert_eq!(
        reconcile(&w.desired(), &RouterSnapshot::default()),
        vec![
            ReconcileAction::AddVoucherUser(HotspotUserSpec {
                name: name("ROAMS1"),
                password: None,
                profile: None,
                limit_uptime: Some(roams.duration),
                mac: None,
                owner: OwnerTag::Voucher(VoucherId(1)),
            }),
            ReconcileAction::ExpireVoucher {
                voucher: VoucherId(2),
                reason: VoucherExpiryReason::RouterUserGone
            },
        ]
    );
}

// ---- properties ----

const NAMES: &[&str] = &["u1", "u2", "u3", "u4", "alice", "bob", "isp-svc-1", "isp-svc-2"];

fn arb_comment() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("made by hand".to_owned())),
        Just(Some("ISP:sub:1".to_owned())),
        Just(Some("isp:bogus:1".to_owned())),
        Just(Some("note isp:sub:1".to_owned())),
        (1i64..6).prop_map(|i| Some(format!("isp:sub:{i}"))),
        (1i64..5).prop_map(|i| Some(format!("isp:voucher:{i}"))),
        (1i64..5).prop_map(|i| Some(format!("isp:svc:{i}"))),
    ]
}

fn arb_name() -> impl Strategy<Value = String> {
    proptest::sample::select(NAMES).prop_map(str::to_owned)
}

prop_compose! {
    fn arb_snapshot()(
        users in proptest::collection::vec((arb_name(), arb_comment(), any::<bool>(), proptest::option::of(0u64..100), proptest::option::of(0u64..100)), 0..8),
        sessions in proptest::collection::vec(proptest::option::of(arb_name()), 0..8),
        bindings in proptest::collection::vec((1u8..5, 0u8..3, arb_comment()), 0..6),
        secrets in proptest::collection::vec((arb_name(), arb_comment(), any::<bool>()), 0..6),
        entries in proptest::collection::vec((any::<bool>(), 1u8..5, any::<bool>(), arb_comment()), 0..6),
        queues in proptest::collection::vec((arb_name(), arb_comment(), proptest::option::of(prop_oneof![Just("5M/10M"), Just("1M/1M"), Just("garbage")])), 0..8),
    ) -> RouterSnapshot {
        RouterSnapshot {
            hotspot_users: users.into_iter().enumerate().map(|(i, (n, c, dis, up, lim))| HotspotUser {
                id: format!("*U{i}"),
                name: n,
                disabled: dis,
                comment: c,
                uptime: up.map(RosDuration::from_secs),
                limit_uptime: lim.map(RosDuration::from_secs),
            }).collect(),
            hotspot_active: sessions.into_iter().enumerate().map(|(i, u)| HotspotSession {
                id: format!("*A{i}"), user: u, mac: None, address: None, uptime: None,
            }).collect(),
            ip_bindings: bindings.into_iter().enumerate().map(|(i, (m, k, c))| IpBinding {
                id: format!("*B{i}"),
                mac: Some(mac(m)),
                address: None,
                kind: [BindingType::Regular, BindingType::Bypassed, BindingType::Blocked][k as usize],
                comment: c,
                disabled: false,
            }).collect(),
            ppp_secrets: secrets.into_iter().enumerate().map(|(i, (n, c, dis))| PppSecret {
                id: format!("*S{i}"), name: n, profile: None, disabled: dis, comment: c,
            }).collect(),
            ppp_active: vec![],
            address_list: entries.into_iter().enumerate().map(|(i, (ours_list, last, slash, c))| AddressListEntry {
                id: format!("*L{i}"),
                list: if ours_list { "isp-allowed".into() } else { "other".into() },
                address: if slash { format!("10.9.0.{last}/32") } else { format!("10.9.0.{last}") },
                comment: c,
                disabled: false,
            }).collect(),
            queues: queues.into_iter().enumerate().map(|(i, (n, c, m))| SimpleQueue {
                id: format!("*Q{i}"), name: n, target: "10.9.0.1/32".into(), max_limit: m.map(str::to_owned), comment: c, disabled: false,
            }).collect(),
        }
    }
}

const STATUSES: [ServiceStatus; 3] = [
    ServiceStatus::Active,
    ServiceStatus::Suspended,
    ServiceStatus::Pending,
];
const VSTATUSES: [VoucherStatus; 4] = [
    VoucherStatus::Unused,
    VoucherStatus::Active,
    VoucherStatus::Expired,
    VoucherStatus::Revoked,
];

prop_compose! {
    fn arb_world()(
        now in arb_instant(),
        subs in proptest::collection::vec((1i64..6, -7200i64..7200, any::<bool>()), 0..5),
        svcs in proptest::collection::vec((1i64..5, proptest::sample::select(STATUSES.to_vec()), any::<bool>(), -3i64..3, any::<bool>(), 1u8..5), 0..5),
        vouchers in proptest::collection::vec((1i64..5, proptest::sample::select(VSTATUSES.to_vec()), -7200i64..7200, any::<bool>()), 0..5),
    ) -> World {
        let mut w = World::new(now);
        let mut seen = std::collections::BTreeSet::new();
        for (id, off, active) in subs {
            if seen.insert(("s", id)) {
                w.subscribers.push(subscriber(id, 1, now + Duration::seconds(off), active));
            }
        }
        for (id, st, ppp, due_off, prov, last) in svcs {
            if seen.insert(("v", id)) {
                let conn = if ppp { pppoe(NAMES[(id as usize) % NAMES.len()]) } else { static_ip(last) };
                w.services.push(service(id, 1, 1, st, conn, w.today + Duration::days(due_off), prov));
            }
        }
        for (id, st, off, elsewhere) in vouchers {
            if seen.insert(("c", id)) {
                if elsewhere {
                    w.elsewhere.insert(VoucherId(id));
                }
                let mut v = voucher(id, 1, &format!("u{id}"), st);
                v.expected_end = Some(now + Duration::seconds(off));
                v.activation_deadline = Some(now + Duration::seconds(off));
                v.expired_at = Some(now - Duration::seconds(1));
                w.vouchers.push(v);
            }
        }
        w
    }
}

/// [`voucher_sync`], except that a user another router shows is not gone.
fn synced(w: &World, v: &Voucher, snap: &RouterSnapshot) -> Option<VoucherExpiryReason> {
    voucher_sync(v, &snap.hotspot_users)
        .filter(|r| !(*r == VoucherExpiryReason::RouterUserGone && w.elsewhere.contains(&v.id)))
}

/// An independent oracle of who is entitled.
fn entitled(w: &World, snap: &RouterSnapshot, tag: OwnerTag) -> bool {
    match tag {
        OwnerTag::Subscriber(id) => w
            .subscribers
            .iter()
            .any(|s| s.id == id && s.active && s.paid_until > w.now),
        OwnerTag::Service(id) => w.services.iter().any(|s| s.id == id && is_entitled(s, w.today)),
        OwnerTag::Voucher(id) => w.vouchers.iter().any(|v| {
            v.id == id
                && matches!(v.status, VoucherStatus::Unused | VoucherStatus::Active)
                && voucher_time_expiry(v, w.now) == VoucherAction::Keep
                && synced(w, v, snap).is_none()
        }),
    }
}

fn owner(c: &Option<String>) -> Option<OwnerTag> {
    c.as_deref().and_then(OwnerTag::from_comment)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Nothing without our comment is ever changed, and no entitled owner is cut off.
    #[test]
    fn never_touches_unowned_objects_or_entitled_owners(w in arb_world(), snap in arb_snapshot()) {
        let actions = reconcile(&w.desired(), &snap);
        for a in &actions {
            match a {
                ReconcileAction::RemoveHotspotSessions { ids } => {
                    prop_assert!(!ids.is_empty());
                    for id in ids {
                        let s = snap.hotspot_active.iter().find(|s| &s.id == id).unwrap();
                        let user = s.user.as_deref().unwrap();
                        let users: Vec<_> = snap.hotspot_users.iter().filter(|u| u.name == user).collect();
                        prop_assert!(!users.is_empty());
                        for u in users {
                            let tag = owner(&u.comment);
                            prop_assert!(tag.is_some(), "session {} of unowned user {}", id, user);
                            prop_assert!(!entitled(&w, &snap, tag.unwrap()), "session {} of an entitled owner", id);
                        }
                    }
                }
                ReconcileAction::DisableHotspotUser { name, owner: o } | ReconcileAction::EnableHotspotUser { name, owner: o } => {
                    let users: Vec<_> = snap.hotspot_users.iter().filter(|u| u.name == name.as_str()).collect();
                    prop_assert_eq!(users.len(), 1);
                    prop_assert_eq!(owner(&users[0].comment), Some(*o));
                    let disable = matches!(a, ReconcileAction::DisableHotspotUser { .. });
                    prop_assert_eq!(disable, !entitled(&w, &snap, *o));
                    prop_assert_eq!(users[0].disabled, !disable);
                }
                ReconcileAction::RemoveIpBinding { mac, owner: o } => {
                    prop_assert!(!entitled(&w, &snap, *o));
                    prop_assert!(snap.ip_bindings.iter().any(|b| b.mac == Some(*mac) && owner(&b.comment) == Some(*o) && b.kind != BindingType::Blocked));
                    // Nothing of ours on that MAC that must stay.
                    for b in snap.ip_bindings.iter().filter(|b| b.mac == Some(*mac)) {
                        if let Some(t) = owner(&b.comment) {
                            prop_assert!(b.kind != BindingType::Blocked && !entitled(&w, &snap, t));
                        }
                    }
                }
                ReconcileAction::RemovePppoe { name, owner: o } => {
                    prop_assert!(!entitled(&w, &snap, *o));
                    for s in snap.ppp_secrets.iter().filter(|s| s.name == name.as_str()) {
                        prop_assert!(owner(&s.comment).is_some(), "unowned secret {}", name);
                    }
                }
                ReconcileAction::RemoveStaticIp { address, list, owner: o } => {
                    prop_assert!(!entitled(&w, &snap, *o));
                    prop_assert!(snap.address_list.iter().any(|e| owner(&e.comment) == Some(*o)
                        && e.list == list.as_str()
                        && e.address.trim_end_matches("/32") == address.to_string()));
                }
                ReconcileAction::RemoveQueue { name, owner: o } => {
                    prop_assert!(!entitled(&w, &snap, *o));
                    for q in snap.queues.iter().filter(|q| q.name == name.as_str()) {
                        prop_assert!(owner(&q.comment).is_some(), "unowned queue {}", name);
                    }
                }
                ReconcileAction::RestorePppoe(spec) => {
                    prop_assert!(entitled(&w, &snap, spec.owner));
                    for s in snap.ppp_secrets.iter().filter(|s| s.name == spec.username.as_str()) {
                        prop_assert_eq!(owner(&s.comment), Some(spec.owner), "would overwrite someone else's secret");
                    }
                }
                ReconcileAction::RestoreStaticIp(spec) => {
                    prop_assert!(entitled(&w, &snap, spec.owner));
                    prop_assert!(!snap.address_list.iter().any(|e| e.list == spec.list.as_str()
                        && e.address.trim_end_matches("/32") == spec.address.to_string()));
                }
                ReconcileAction::RestoreQueue(spec) => {
                    prop_assert!(entitled(&w, &snap, spec.owner));
                    for q in snap.queues.iter().filter(|q| q.name == spec.name.as_str()) {
                        prop_assert_eq!(owner(&q.comment), Some(spec.owner), "would overwrite someone else's queue");
                    }
                }
                ReconcileAction::ExpireVoucher { voucher, reason } => {
                    let v = w.vouchers.iter().find(|v| v.id == *voucher).unwrap();
                    prop_assert_eq!(v.status, VoucherStatus::Active);
                    prop_assert_eq!(synced(&w, v, &snap), Some(*reason));
                }
                ReconcileAction::AddVoucherUser(spec) => {
                    prop_assert!(entitled(&w, &snap, spec.owner));
                    let OwnerTag::Voucher(id) = spec.owner else {
                        panic!("a voucher user for {:?}", spec.owner);
                    };
                    let v = w.vouchers.iter().find(|v| v.id == id).unwrap();
                    prop_assert_eq!(spec.name.as_str(), v.code.as_str());
                    prop_assert_eq!(spec.limit_uptime, Some(v.duration));
                    prop_assert!(v.status == VoucherStatus::Unused || w.elsewhere.contains(&id));
                    prop_assert!(!snap.hotspot_users.iter().any(|u| u.name == spec.name.as_str()), "would add beside a same-name user");
                }
            }
        }
    }

    /// Every entitled, provisioned PPPoE service without any secret of its name gets it back;
    /// every owned, enabled hotspot user of an unentitled owner is disabled.
    #[test]
    fn restores_and_disables_what_it_must(w in arb_world(), snap in arb_snapshot()) {
        let actions = reconcile(&w.desired(), &snap);
        for s in &w.services {
            if let Connection::Pppoe { username, .. } = &s.connection {
                let missing = !snap.ppp_secrets.iter().any(|x| x.name == username.as_str());
                if s.provisioned && is_entitled(s, w.today) && missing {
                    let restored = actions.iter().any(|a| matches!(a, ReconcileAction::RestorePppoe(spec) if spec.owner == OwnerTag::Service(s.id)));
                    prop_assert!(restored, "service {} not restored", s.id);
                }
            }
        }
        for v in &w.vouchers {
            let missing = !snap.hotspot_users.iter().any(|u| u.name == v.code.as_str());
            if v.status == VoucherStatus::Unused && missing && entitled(&w, &snap, OwnerTag::Voucher(v.id)) {
                let added = actions.iter().any(|a| matches!(a, ReconcileAction::AddVoucherUser(spec) if spec.owner == OwnerTag::Voucher(v.id)));
                prop_assert!(added, "unused voucher {} not pushed", v.code);
            }
        }
        for u in &snap.hotspot_users {
            let same_name = snap.hotspot_users.iter().filter(|x| x.name == u.name).count();
            if let Some(tag) = owner(&u.comment) {
                if same_name == 1 && !u.disabled && !entitled(&w, &snap, tag) {
                    let disabled = actions.iter().any(|a| matches!(a, ReconcileAction::DisableHotspotUser { name, .. } if name.as_str() == u.name));
                    prop_assert!(disabled, "owned user {} of an unentitled owner left enabled", u.name);
                }
            }
        }
    }
}
