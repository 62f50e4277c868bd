//! Unit tests of the router state.

use chrono::Utc;

use super::values::{normalize_list_address, normalize_mac, normalize_rate, normalize_targets};
use super::{RouterSettings, RouterState};
use crate::proto::Request;
use crate::sim::menus;

fn state() -> RouterState {
    RouterState::new(
        RouterSettings {
            version: "7.18.2 (stable)".into(),
            identity: "sim".into(),
            empty_replies: true,
        },
        Utc::now(),
    )
}

fn req(cmd: &str, attrs: &[(&str, &str)]) -> Request {
    attrs.iter().fold(Request::new(cmd), |r, (k, v)| r.attr(*k, *v))
}

#[test]
fn ids_are_never_reused() {
    let mut s = state();
    let a = s.add_row("/ppp/secret", &[("name", "a")]).unwrap();
    s.execute(&req("/ppp/secret/remove", &[(".id", &a)])).unwrap();
    let b = s.add_row("/ppp/secret", &[("name", "a")]).unwrap();
    assert_ne!(a, b);
    assert_eq!(a, "*1");
    assert_eq!(b, "*2");
}

#[test]
fn validation_traps() {
    let mut s = state();
    let e = s
        .execute(&req(
            "/ip/hotspot/user/add",
            &[("name", "u"), ("limit-uptime", "")],
        ))
        .unwrap_err();
    assert_eq!(e.message, "invalid time value for argument limit-uptime");
    let e = s
        .execute(&req(
            "/ppp/secret/add",
            &[("name", "u"), ("remote-address", "10.0.0.300")],
        ))
        .unwrap_err();
    assert_eq!(e.message, "invalid value for argument remote-address");
    let e = s
        .execute(&req("/ppp/secret/add", &[("name", "u"), ("profile", "gold")]))
        .unwrap_err();
    assert_eq!(e.message, "input does not match any value of profile");
    assert_eq!(e.category, Some(1));
    let e = s.execute(&req("/ip/xyz/print", &[])).unwrap_err();
    assert_eq!(e.message, "no such command or directory (xyz)");
    assert_eq!(e.category, Some(0));
    let e = s.execute(&req("/ip/hotspot/active/add", &[])).unwrap_err();
    assert_eq!(e.message, "no such command or directory (add)");
}

#[test]
fn normalisations() {
    assert_eq!(normalize_rate("10M/20M").as_deref(), Some("10000000/20000000"));
    assert_eq!(normalize_rate("512k").as_deref(), Some("512000/512000"));
    assert_eq!(normalize_rate("x/1"), None);
    assert_eq!(normalize_targets("10.0.0.2").as_deref(), Some("10.0.0.2/32"));
    assert_eq!(normalize_list_address("10.0.0.2/32").as_deref(), Some("10.0.0.2"));
    assert_eq!(
        normalize_list_address("10.0.0.0/24").as_deref(),
        Some("10.0.0.0/24")
    );
    assert_eq!(
        normalize_list_address("example.com").as_deref(),
        Some("example.com")
    );
    assert_eq!(normalize_list_address("not an address"), None);
    assert_eq!(
        normalize_mac("aa-bb-cc-dd-ee-ff").as_deref(),
        Some("AA:BB:CC:DD:EE:FF")
    );
}

#[test]
fn limit_uptime_ends_session_on_sim_clock() {
    let mut s = state();
    s.add_row(
        "/ip/hotspot/user",
        &[("name", "alice"), ("password", "pw"), ("limit-uptime", "1h")],
    )
    .unwrap();
    s.hotspot_login("alice", Some("pw"), "aa:bb:cc:dd:ee:01", "10.5.50.2", "http-pap")
        .unwrap();
    assert_eq!(s.rows("/ip/hotspot/active").len(), 1);
    let later = s.now() + chrono::Duration::minutes(61);
    s.set_clock(later);
    assert!(s.rows("/ip/hotspot/active").is_empty());
    assert_eq!(s.removals.last().unwrap().reason, "limit-uptime");
    let user = &s.rows("/ip/hotspot/user")[0];
    assert_eq!(user["uptime"], "1h1m");
    let host = &s.rows("/ip/hotspot/host")[0];
    assert_eq!(host["authorized"], "false");
    let e = s
        .hotspot_login("alice", Some("pw"), "aa:bb:cc:dd:ee:01", "10.5.50.2", "http-pap")
        .unwrap_err();
    assert_eq!(e.message, "user alice has reached uptime limit");
}

#[test]
fn tick_rests_until_the_earliest_timed_end_and_rescans_after_a_change() {
    let mut s = state();
    s.add_row(
        "/ip/hotspot/user",
        &[("name", "alice"), ("password", "pw"), ("limit-uptime", "1h")],
    )
    .unwrap();
    s.hotspot_login("alice", Some("pw"), "aa:bb:cc:dd:ee:01", "10.5.50.2", "http-pap")
        .unwrap();
    assert_eq!(s.quiet_until, None, "a change makes the next tick scan");
    s.tick();
    let started = s
        .table("/ip/hotspot/active")
        .unwrap()
        .rows
        .values()
        .next()
        .unwrap()
        .started
        .unwrap();
    assert_eq!(s.quiet_until, Some(started + chrono::Duration::hours(1)));

    let before = s.now();
    s.add_row(
        "/ip/firewall/address-list",
        &[("list", "blocked"), ("address", "10.0.0.1"), ("timeout", "10m")],
    )
    .unwrap();
    let after = s.now();
    assert_eq!(s.quiet_until, None);
    s.tick();
    let quiet = s.quiet_until.unwrap();
    let ten = chrono::Duration::minutes(10);
    assert!(
        quiet >= before + ten && quiet <= after + ten,
        "the entry's timeout comes first"
    );

    // Past the quiet instant the entry goes, and the session is still there.
    s.set_clock(quiet);
    assert!(s.rows("/ip/firewall/address-list").is_empty());
    assert_eq!(s.rows("/ip/hotspot/active").len(), 1);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    /// Any sequence of requests, with odd values, never panics; ids stay unique and growing.
    #[test]
    fn random_requests_never_panic(
        ops in proptest::collection::vec(
            (
                proptest::sample::select(menus::MENUS.iter().map(|m| m.path).collect::<Vec<_>>()),
                proptest::sample::select(vec!["print", "add", "set", "remove", "disable", "enable", "unset", "login", "listen", "bogus"]),
                proptest::collection::vec(
                    (
                        proptest::sample::select(vec![
                            "name", ".id", "numbers", "limit-uptime", "mac-address", "address", "target",
                            "max-limit", "list", "timeout", "type", "profile", "server", "disabled",
                            "value-name", "user", "password", "ip", "count-only", ".proplist", "remote-address",
                        ]),
                        proptest::prop_oneof![
                            proptest::strategy::Just("*1".to_owned()),
                            proptest::strategy::Just("10.0.0.1".to_owned()),
                            proptest::strategy::Just("1h".to_owned()),
                            "[ -~]{0,12}",
                            proptest::prelude::any::<String>(),
                        ],
                    ),
                    0..5,
                ),
                proptest::collection::vec("[ -~]{0,10}", 0..3),
            ),
            1..40,
        ),
        advance in 0u64..100_000,
    ) {
        let mut s = state();
        for (menu, cmd, attrs, queries) in ops {
            let mut r = Request::new(format!("{menu}/{cmd}"));
            for (k, v) in attrs {
                r = r.attr(k, v);
            }
            for q in queries {
                r = r.query(q);
            }
            let _ = s.execute(&r);
            let _ = s.hotspot_login("u", None, "AA:BB:CC:DD:EE:01", "10.0.0.9", "x");
            let t = s.now() + chrono::Duration::seconds(i64::try_from(advance).unwrap_or(0));
            s.set_clock(t);
        }
        for table in s.tables.values() {
            let ids: Vec<u64> = table.rows.keys().copied().collect();
            proptest::prop_assert!(ids.iter().all(|id| *id < table.next_id));
        }
    }
}

/// The indexes and the timed ends agree with a scan of every item.
fn assert_consistent(s: &mut RouterState) {
    for table in s.tables.values() {
        for row in table.rows.values() {
            for field in super::INDEXED {
                if let Some(value) = row.get(field) {
                    let scanned: Vec<u64> = table
                        .rows
                        .values()
                        .filter(|r| r.get(field) == Some(value))
                        .map(|r| r.id)
                        .collect();
                    assert_eq!(
                        table.find(field, value),
                        scanned,
                        "{} {field}={value}",
                        table.spec.path
                    );
                }
            }
        }
        let expiring: std::collections::BTreeSet<_> = table
            .rows
            .values()
            .filter_map(|r| r.expires.map(|e| (e, r.id)))
            .collect();
        assert_eq!(table.expiring, expiring, "{}", table.spec.path);
    }
    s.tick();
    let now = s.now();
    let users: Vec<super::Row> = s.tables["/ip/hotspot/user"].rows.values().cloned().collect();
    for session in s.tables["/ip/hotspot/active"].rows.values() {
        let limit = users.iter().find_map(|u| {
            (u.get("name") == session.get("user"))
                .then(|| u.get("limit-uptime").and_then(crate::sim::duration::parse))
                .flatten()
                .map(|l| (l, u.used))
        });
        if let Some((limit, used)) = limit {
            assert!(
                used + super::since(now, session.started) < limit,
                "session {} is past its limit and still there",
                session.id
            );
        }
    }
    for (menu, table) in &s.tables {
        assert!(
            table.rows.values().all(|r| r.expires.is_none_or(|e| e > now)),
            "{menu}: an expired item is still there"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 100, ..Default::default() })]

    /// Users, sessions and timed items changed at random: every lookup through an index finds
    /// what a scan finds, `print` narrowed by the index prints what a scan matches, and `tick`
    /// ends exactly what is due.
    #[test]
    fn indexes_agree_with_scans(
        ops in proptest::collection::vec(
            (0u8..9, 0usize..4, 0usize..4, 0u64..400),
            1..60,
        ),
    ) {
        const NAMES: [&str; 4] = ["u", "v", "yes", "aa:bb:cc:dd:ee:0f"];
        const LIMITS: [&str; 4] = ["1m", "5m", "2m30s", "0s"];
        let mut s = state();
        for (op, a, b, secs) in ops {
            let name = NAMES[a];
            let mac = format!("02:00:00:00:00:0{b}");
            let req = |cmd: &str, attrs: &[(&str, &str)]| {
                attrs.iter().fold(Request::new(cmd), |r, (k, v)| r.attr(*k, *v))
            };
            let _ = match op {
                0 => s.execute(&req("/ip/hotspot/user/add", &[("name", name), ("limit-uptime", LIMITS[b])])),
                1 => s.execute(&req("/ip/hotspot/user/set", &[("numbers", name), ("name", NAMES[b])])),
                2 => s.execute(&req("/ip/hotspot/user/set", &[("numbers", name), ("limit-uptime", LIMITS[b])])),
                3 => s.execute(&req("/ip/hotspot/user/remove", &[("numbers", name)])),
                4 => s.execute(&req("/ip/hotspot/user/unset", &[("numbers", name), ("value-name", "limit-uptime")])),
                5 => s.hotspot_login(name, None, &mac, "10.0.0.9", "x").map(|_| Vec::new()),
                6 => s.execute(&req("/ip/hotspot/host/remove", &[("numbers", "*1")])),
                7 => s.execute(&req("/ip/firewall/address-list/add", &[
                    ("list", name),
                    ("address", &format!("10.0.0.{b}")),
                    ("timeout", LIMITS[a]),
                ])),
                _ => s.execute(&req("/ip/hotspot/cookie/remove", &[("numbers", "*2")])),
            };
            let t = s.now() + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(0));
            s.set_clock(t);
            assert_consistent(&mut s);
            for (menu, query) in [
                ("/ip/hotspot/user", vec![format!("name={name}")]),
                ("/ip/hotspot/active", vec![format!("user={name}"), format!("mac-address={mac}"), "#|".to_owned()]),
                ("/ip/hotspot/host", vec![format!("mac-address={}", mac.to_lowercase()), "authorized=yes".to_owned()]),
                ("/ip/firewall/address-list", vec![format!("list={name}"), format!("address=10.0.0.{b}"), "#&!".to_owned()]),
                ("/ip/hotspot/cookie", vec![".id=*2".to_owned(), "user=u".to_owned(), "#|".to_owned()]),
            ] {
                let printed: Vec<String> = s
                    .execute(&query.iter().fold(Request::new(format!("{menu}/print")), |r, q| r.query(q)))
                    .unwrap()
                    .iter()
                    .filter_map(|r| r.get(".id").map(str::to_owned))
                    .collect();
                let parsed: Vec<crate::sim::query::Query> =
                    query.iter().map(|q| crate::sim::query::Query::parse(q).unwrap()).collect();
                let scanned: Vec<String> = s
                    .rows(menu)
                    .into_iter()
                    .filter(|r| {
                        let row: Vec<(String, String)> = r.clone().into_iter().collect();
                        RouterState::row_matches(&row, &parsed)
                    })
                    .map(|r| r[".id"].clone())
                    .collect();
                proptest::prop_assert_eq!(printed, scanned, "{} {:?}", menu, query);
            }
        }
    }
}
