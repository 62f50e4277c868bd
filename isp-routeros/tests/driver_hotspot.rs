//! `RouterOsDriver` hotspot calls against the simulator over real TCP, each over the API and
//! over REST (`name::api`, `name::rest`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;

use std::collections::BTreeMap;

use client_common::{assert_logins, quick, router_for, sim_config, start, verbs};
use isp_core::domain::{
    MacAddress, OwnerTag, RosDuration, RosName, SecretPassword, SubscriberId, Transport, VoucherId,
};
use isp_core::ports::{BindingType, ForeignObject, HotspotTarget, HotspotUserSpec, Menu, RouterDriver};
use isp_core::Error;
use isp_routeros::driver::{DriverConfig, RouterOsDriver};
use isp_routeros::sim::SimHandle;

fn driver() -> RouterOsDriver {
    RouterOsDriver::new(DriverConfig {
        client: quick(),
        ..DriverConfig::default()
    })
    .unwrap()
}

fn mac(i: u8) -> MacAddress {
    MacAddress::from_octets([0x02, 0, 0, 0, 0, i])
}

fn name(s: &str) -> RosName {
    RosName::parse("name", s).unwrap()
}

fn rows_where(handle: &SimHandle, menu: &str, key: &str, value: &str) -> Vec<BTreeMap<String, String>> {
    handle
        .rows(menu)
        .into_iter()
        .filter(|r| r.get(key).map(String::as_str) == Some(value))
        .collect()
}

fn prints(handle: &SimHandle) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in verbs(handle, "print") {
        *out.entry(p).or_insert(0) += 1;
    }
    out
}

async fn a_disconnect_sweep_reads_each_menu_once_and_batches_removals(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);

    let mut targets = Vec::new();
    for i in 0..10u8 {
        let user = format!("2557000000{i:02}");
        handle
            .add_row(
                "/ip/hotspot/user",
                &[
                    ("name", &user),
                    ("comment", &OwnerTag::Subscriber(SubscriberId(i.into())).comment()),
                ],
            )
            .unwrap();
        handle
            .hotspot_login(&user, &mac(i).to_string(), &format!("10.5.50.{}", 10 + i))
            .unwrap();
        handle
            .add_row(
                "/ip/hotspot/ip-binding",
                &[
                    ("mac-address", &mac(i).to_string()),
                    ("type", "bypassed"),
                    ("comment", &OwnerTag::Subscriber(SubscriberId(i.into())).comment()),
                ],
            )
            .unwrap();
        targets.push(HotspotTarget {
            username: Some(name(&user)),
            macs: vec![mac(i)],
            owner: OwnerTag::Subscriber(SubscriberId(i.into())),
            remove_user: false,
        });
    }
    // What must survive: a bystander's session, the operator's binding for a target's MAC,
    // and a block we made earlier for another target's MAC.
    handle.add_row("/ip/hotspot/user", &[("name", "staff")]).unwrap();
    handle
        .hotspot_login("staff", &mac(99).to_string(), "10.5.50.99")
        .unwrap();
    handle
        .add_row(
            "/ip/hotspot/ip-binding",
            &[
                ("mac-address", &mac(0).to_string()),
                ("type", "bypassed"),
                ("comment", "front desk"),
            ],
        )
        .unwrap();
    handle
        .add_row(
            "/ip/hotspot/ip-binding",
            &[
                ("mac-address", &mac(1).to_string()),
                ("type", "blocked"),
                ("comment", "isp:sub:1"),
            ],
        )
        .unwrap();
    // Warm the pool so the log holds only the sweep.
    d.health(&router).await.unwrap();
    handle.clear_command_log();

    let results = d.disconnect_hotspot(&router, &targets).await.unwrap();
    assert_eq!(results.len(), 10);
    for (i, r) in results.iter().enumerate() {
        let report = r.as_ref().unwrap_or_else(|e| panic!("target {i}: {e}"));
        assert_eq!(report.sessions_removed, 1, "target {i}");
        assert_eq!(report.hosts_removed, 1, "target {i}");
        assert_eq!(report.cookies_removed, 1, "target {i}");
        assert_eq!(report.bindings_removed, 1, "target {i}: only our bypass binding");
        assert!(report.user_disabled, "target {i}");
        // The front desk's bypass binding for target 0's MAC is not ours.
        assert_eq!(
            report.foreign.len(),
            usize::from(i == 0),
            "target {i}: {:?}",
            report.foreign
        );
    }

    // One print per menu for all ten targets.
    let expected: BTreeMap<String, usize> = [
        "/ip/hotspot/active/print",
        "/ip/hotspot/cookie/print",
        "/ip/hotspot/host/print",
        "/ip/hotspot/ip-binding/print",
        "/ip/hotspot/user/print",
    ]
    .into_iter()
    .map(|c| (c.to_owned(), 1))
    .collect();
    assert_eq!(prints(&handle), expected);
    for entry in handle
        .command_log()
        .iter()
        .filter(|c| c.command.ends_with("/print"))
    {
        assert!(
            entry.attributes.iter().any(|(k, _)| k == ".proplist"),
            "{} without .proplist",
            entry.command
        );
    }
    // One batched command per menu.
    let mut changes = verbs(&handle, "remove");
    changes.extend(verbs(&handle, "disable"));
    changes.sort();
    assert_eq!(
        changes,
        [
            "/ip/hotspot/active/remove",
            "/ip/hotspot/cookie/remove",
            "/ip/hotspot/host/remove",
            "/ip/hotspot/ip-binding/remove",
            "/ip/hotspot/user/disable",
        ]
    );
    let remove = handle
        .command_log()
        .into_iter()
        .find(|c| c.command == "/ip/hotspot/active/remove")
        .unwrap();
    let ids = remove
        .attributes
        .iter()
        .find(|(k, _)| k == "numbers" || k == ".id")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(ids.split(',').count(), 10, "{ids}");

    // The router agrees.
    let active = handle.rows("/ip/hotspot/active");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["user"], "staff");
    let bindings = handle.rows("/ip/hotspot/ip-binding");
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    assert!(bindings
        .iter()
        .any(|b| b.get("comment").map(String::as_str) == Some("front desk")));
    assert!(bindings.iter().any(|b| b["type"] == "blocked"));
    let disabled = rows_where(&handle, "/ip/hotspot/user", "disabled", "true");
    assert_eq!(disabled.len(), 10);
    assert!(rows_where(&handle, "/ip/hotspot/user", "name", "staff")[0]["disabled"] == "false");

    // Again: nothing left, every target confirmed.
    handle.clear_command_log();
    let again = d.disconnect_hotspot(&router, &targets).await.unwrap();
    for r in again {
        let report = r.unwrap();
        assert_eq!(
            report.sessions_removed + report.hosts_removed + report.cookies_removed,
            0
        );
        assert!(report.user_disabled, "already disabled counts");
    }
    assert!(verbs(&handle, "remove").is_empty());
    assert!(verbs(&handle, "disable").is_empty());
    assert_logins(&handle, transport, 1, 2);
}

async fn a_disconnect_by_mac_only_leaves_users_alone(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    handle.add_row("/ip/hotspot/user", &[("name", "alice")]).unwrap();
    handle
        .hotspot_login("alice", &mac(1).to_string(), "10.5.50.2")
        .unwrap();
    handle
        .hotspot_login("alice", &mac(2).to_string(), "10.5.50.3")
        .unwrap();

    let results = d
        .disconnect_hotspot(
            &router,
            &[HotspotTarget {
                username: None,
                macs: vec![mac(1)],
                owner: OwnerTag::Subscriber(SubscriberId(1)),
                remove_user: false,
            }],
        )
        .await
        .unwrap();
    let report = results.into_iter().next().unwrap().unwrap();
    assert_eq!(report.sessions_removed, 1);
    assert!(!report.user_disabled);
    let active = handle.rows("/ip/hotspot/active");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["mac-address"], mac(2).to_string());
    assert_eq!(
        rows_where(&handle, "/ip/hotspot/user", "name", "alice")[0]["disabled"],
        "false"
    );
    assert!(!verbs(&handle, "print").contains(&"/ip/hotspot/user/print".to_owned()));
    assert!(d.disconnect_hotspot(&router, &[]).await.unwrap().is_empty());
}

async fn one_failing_menu_fails_only_the_targets_that_needed_it(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    handle
        .add_row("/ip/hotspot/user", &[("name", "alice"), ("comment", "isp:sub:1")])
        .unwrap();
    handle
        .add_row("/ip/hotspot/user", &[("name", "bob"), ("comment", "isp:sub:2")])
        .unwrap();
    handle
        .hotspot_login("alice", &mac(1).to_string(), "10.5.50.2")
        .unwrap();
    handle.trap_on("/ip/hotspot/host/remove", "failure: host table busy");

    let results = d
        .disconnect_hotspot(
            &router,
            &[
                HotspotTarget {
                    username: Some(name("alice")),
                    macs: vec![mac(1)],
                    owner: OwnerTag::Subscriber(SubscriberId(1)),
                    remove_user: false,
                },
                HotspotTarget {
                    username: Some(name("bob")),
                    macs: vec![],
                    owner: OwnerTag::Subscriber(SubscriberId(2)),
                    remove_user: false,
                },
            ],
        )
        .await
        .unwrap();
    let alice = results[0].as_ref().unwrap_err();
    assert!(matches!(alice, Error::Rejected { .. }), "{alice:?}");
    assert!(alice.to_string().contains("host table busy"), "{alice}");
    let bob = results[1].as_ref().unwrap();
    assert!(bob.user_disabled);
}

async fn remove_sessions_counts_already_gone_ids(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let a = handle
        .hotspot_login("a", &mac(1).to_string(), "10.5.50.2")
        .unwrap();
    let b = handle
        .hotspot_login("b", &mac(2).to_string(), "10.5.50.3")
        .unwrap();
    handle
        .hotspot_login("c", &mac(3).to_string(), "10.5.50.4")
        .unwrap();

    let removed = d
        .remove_hotspot_sessions(&router, &[a.clone(), b.clone(), "*FFFF".to_owned()])
        .await
        .unwrap();
    assert_eq!(removed, 3, "the vanished *FFFF counts as removed");
    assert_eq!(handle.rows("/ip/hotspot/active").len(), 1);
    assert_eq!(d.remove_hotspot_sessions(&router, &[a]).await.unwrap(), 1);
    assert_eq!(d.remove_hotspot_sessions(&router, &[]).await.unwrap(), 0);
    let bad = d
        .remove_hotspot_sessions(&router, &["*1,*2".to_owned()])
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidInput { .. }), "{bad:?}");
}

async fn block_and_unblock_touch_only_our_bindings(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let owner = OwnerTag::Subscriber(SubscriberId(5));

    d.block_device(&router, mac(1), owner).await.unwrap();
    d.block_device(&router, mac(1), owner).await.unwrap();
    let bindings = rows_where(
        &handle,
        "/ip/hotspot/ip-binding",
        "mac-address",
        &mac(1).to_string(),
    );
    assert_eq!(bindings.len(), 1, "blocking twice adds one binding");
    assert_eq!(bindings[0]["type"], "blocked");
    assert_eq!(bindings[0]["comment"], "isp:sub:5");
    assert_eq!(verbs(&handle, "add").len(), 1);

    // A bypass binding of ours turns into the block.
    handle
        .add_row(
            "/ip/hotspot/ip-binding",
            &[
                ("mac-address", &mac(2).to_string()),
                ("type", "bypassed"),
                ("comment", "isp:sub:6"),
            ],
        )
        .unwrap();
    d.block_device(&router, mac(2), owner).await.unwrap();
    let b2 = rows_where(
        &handle,
        "/ip/hotspot/ip-binding",
        "mac-address",
        &mac(2).to_string(),
    );
    assert_eq!(b2.len(), 1);
    assert_eq!(b2[0]["type"], "blocked");

    // An operator's block is enough, and unblocking leaves it.
    handle
        .add_row(
            "/ip/hotspot/ip-binding",
            &[
                ("mac-address", &mac(3).to_string()),
                ("type", "blocked"),
                ("comment", "stolen phone"),
            ],
        )
        .unwrap();
    d.block_device(&router, mac(3), owner).await.unwrap();
    d.unblock_device(&router, mac(3)).await.unwrap();
    assert_eq!(
        rows_where(
            &handle,
            "/ip/hotspot/ip-binding",
            "mac-address",
            &mac(3).to_string()
        )
        .len(),
        1
    );

    d.unblock_device(&router, mac(1)).await.unwrap();
    d.unblock_device(&router, mac(1)).await.unwrap();
    assert!(rows_where(
        &handle,
        "/ip/hotspot/ip-binding",
        "mac-address",
        &mac(1).to_string()
    )
    .is_empty());
}

async fn hotspot_users_add_conflict_disable_enable_remove(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let spec = HotspotUserSpec {
        name: name("VOUCH123"),
        password: Some(SecretPassword::parse("password", "pin-4321").unwrap()),
        profile: None,
        limit_uptime: Some(RosDuration::parse("limit_uptime", "1h30m").unwrap()),
        mac: Some(mac(7)),
        owner: OwnerTag::Voucher(VoucherId(7)),
    };
    let id = d.add_hotspot_user(&router, &spec).await.unwrap();
    let row = rows_where(&handle, "/ip/hotspot/user", "name", "VOUCH123").remove(0);
    assert_eq!(row[".id"], id);
    assert_eq!(row["comment"], "isp:voucher:7");
    assert_eq!(row["limit-uptime"], "1h30m");
    assert_eq!(row["mac-address"], mac(7).to_string());
    assert_eq!(row["password"], "pin-4321");

    let dup = d.add_hotspot_user(&router, &spec).await.unwrap_err();
    assert!(dup.is_conflict(), "{dup:?}");
    assert!(!dup.to_string().contains("pin-4321"), "{dup}");

    d.set_hotspot_user_disabled(&router, &spec.name, spec.owner, true)
        .await
        .unwrap();
    assert_eq!(
        rows_where(&handle, "/ip/hotspot/user", "name", "VOUCH123")[0]["disabled"],
        "true"
    );
    d.set_hotspot_user_disabled(&router, &spec.name, spec.owner, false)
        .await
        .unwrap();
    assert_eq!(
        rows_where(&handle, "/ip/hotspot/user", "name", "VOUCH123")[0]["disabled"],
        "false"
    );
    let missing = d
        .set_hotspot_user_disabled(&router, &name("nobody"), spec.owner, true)
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    assert!(missing.to_string().contains("nobody"), "{missing}");
    // Another voucher's tag: not this one's to change.
    let other = d
        .set_hotspot_user_disabled(&router, &spec.name, OwnerTag::Voucher(VoucherId(8)), true)
        .await
        .unwrap_err();
    assert!(other.is_conflict(), "{other:?}");
    assert_eq!(
        rows_where(&handle, "/ip/hotspot/user", "name", "VOUCH123")[0]["disabled"],
        "false"
    );

    handle
        .hotspot_login("VOUCH123", &mac(7).to_string(), "10.5.50.7")
        .unwrap();
    assert!(d
        .remove_hotspot_user(&router, &spec.name, spec.owner)
        .await
        .unwrap());
    assert!(rows_where(&handle, "/ip/hotspot/user", "name", "VOUCH123").is_empty());
    assert!(rows_where(&handle, "/ip/hotspot/active", "user", "VOUCH123").is_empty());
    assert!(!d
        .remove_hotspot_user(&router, &spec.name, spec.owner)
        .await
        .unwrap());

    // A voucher code as the whole login: no password sent.
    let code_only = HotspotUserSpec {
        password: None,
        limit_uptime: None,
        mac: None,
        ..spec.clone()
    };
    d.add_hotspot_user(&router, &code_only).await.unwrap();
    let add = handle
        .command_log()
        .into_iter()
        .rev()
        .find(|c| c.command == "/ip/hotspot/user/add")
        .unwrap();
    assert!(add.attributes.iter().all(|(k, _)| k != "password"), "{add:?}");
}

async fn snapshot_reads_one_print_per_menu_and_parses_rows(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    handle
        .add_row(
            "/ip/hotspot/user",
            &[
                ("name", "alice"),
                ("limit-uptime", "2h"),
                ("comment", "isp:sub:1"),
            ],
        )
        .unwrap();
    handle
        .hotspot_login("alice", "aa:bb:cc:dd:ee:01", "10.5.50.2")
        .unwrap();
    handle
        .add_row(
            "/ip/hotspot/ip-binding",
            &[("mac-address", "AA:BB:CC:DD:EE:02"), ("type", "blocked")],
        )
        .unwrap();
    handle
        .add_row(
            "/ppp/secret",
            &[("name", "bob"), ("password", "x"), ("disabled", "yes")],
        )
        .unwrap();
    handle
        .ppp_login("carol", "AA:BB:CC:DD:EE:03", "10.0.0.9")
        .unwrap();
    handle
        .add_row(
            "/ip/firewall/address-list",
            &[("list", "isp-allowed"), ("address", "10.0.0.2")],
        )
        .unwrap();
    handle
        .add_row(
            "/queue/simple",
            &[("name", "q1"), ("target", "10.0.0.2"), ("max-limit", "10M/20M")],
        )
        .unwrap();
    d.health(&router).await.unwrap();
    handle.clear_command_log();

    let menus = [Menu::ALL.as_slice(), &[Menu::HotspotActive]].concat();
    let snap = d.snapshot(&router, &menus).await.unwrap();
    let counts = prints(&handle);
    assert_eq!(counts.len(), 7, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");

    let session = &snap.hotspot_active[0];
    assert_eq!(session.user.as_deref(), Some("alice"));
    assert_eq!(
        session.mac,
        Some(MacAddress::parse("m", "AA:BB:CC:DD:EE:01").unwrap())
    );
    assert_eq!(session.address, Some("10.5.50.2".parse().unwrap()));
    assert!(session.uptime.is_some());
    let user = &snap.hotspot_users[0];
    assert_eq!(user.name, "alice");
    assert_eq!(user.limit_uptime, Some(RosDuration::from_secs(7200)));
    assert_eq!(user.comment.as_deref(), Some("isp:sub:1"));
    assert!(!user.disabled);
    assert_eq!(snap.ip_bindings[0].kind, BindingType::Blocked);
    assert_eq!(snap.ppp_secrets[0].name, "bob");
    assert!(snap.ppp_secrets[0].disabled);
    assert_eq!(snap.ppp_active[0].name, "carol");
    assert_eq!(snap.ppp_active[0].address, Some("10.0.0.9".parse().unwrap()));
    assert_eq!(snap.address_list[0].list, "isp-allowed");
    assert_eq!(snap.queues[0].name, "q1");
    assert_eq!(snap.queues[0].target, "10.0.0.2/32");

    handle.clear_command_log();
    let only = d.snapshot(&router, &[Menu::Queues]).await.unwrap();
    assert_eq!(only.queues.len(), 1);
    assert!(only.hotspot_active.is_empty(), "menus not asked for stay empty");
    assert_eq!(verbs(&handle, "print"), ["/queue/simple/print"]);
}

async fn user_changes_in_one_print_and_one_command_per_verb(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    for (user, disabled) in [
        ("u1", "false"),
        ("u2", "false"),
        ("u3", "true"),
        ("u4", "true"),
        ("u5", "false"),
    ] {
        handle
            .add_row(
                "/ip/hotspot/user",
                &[("name", user), ("disabled", disabled), ("comment", "isp:sub:1")],
            )
            .unwrap();
    }
    // A staff account and another subscriber's user: not subscriber 1's.
    handle
        .add_row(
            "/ip/hotspot/user",
            &[("name", "staff"), ("comment", "front desk")],
        )
        .unwrap();
    handle
        .add_row("/ip/hotspot/user", &[("name", "u7"), ("comment", "isp:sub:7")])
        .unwrap();
    d.health(&router).await.unwrap();
    handle.clear_command_log();

    let one = OwnerTag::Subscriber(SubscriberId(1));
    let changes = [
        (name("u1"), one, true),
        (name("u2"), one, true),
        (name("u3"), one, false),
        (name("u4"), one, true),
        (name("nobody"), one, true),
        (name("staff"), one, true),
        (name("u7"), one, true),
    ];
    let answers = d.set_hotspot_users_disabled(&router, &changes).await.unwrap();
    assert_eq!(answers.len(), 7);
    assert!(answers[..4].iter().all(Result::is_ok), "{answers:?}");
    let missing = answers[4].as_ref().unwrap_err();
    assert!(
        missing.is_not_found() && missing.to_string().contains("nobody"),
        "{missing}"
    );
    for foreign in &answers[5..] {
        let e = foreign.as_ref().unwrap_err();
        assert!(e.is_conflict() && e.to_string().contains("isp:sub:1"), "{e}");
    }
    let disabled = |u: &str| rows_where(&handle, "/ip/hotspot/user", "name", u)[0]["disabled"].clone();
    assert_eq!(
        ["u1", "u2", "u3", "u4", "u5", "staff", "u7"].map(disabled),
        ["true", "true", "false", "true", "false", "false", "false"]
    );
    // One print, one disable naming both ids, one enable; u4 is left alone.
    let log: Vec<(String, usize)> = handle
        .command_log()
        .into_iter()
        .map(|c| {
            let ids = c
                .attributes
                .iter()
                .find(|(k, _)| k == "numbers" || k == ".id")
                .map_or(0, |(_, v)| v.split(',').count());
            (c.command, ids)
        })
        .collect();
    let mut log = log;
    log.sort();
    assert_eq!(
        log,
        [
            ("/ip/hotspot/user/disable".to_owned(), 2),
            ("/ip/hotspot/user/enable".to_owned(), 1),
            ("/ip/hotspot/user/print".to_owned(), 0),
        ]
    );
}

async fn remove_ip_bindings_removes_only_that_owners_non_blocking_bindings_in_one_batch(
    transport: Transport,
) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let (five, six) = (
        OwnerTag::Subscriber(SubscriberId(5)),
        OwnerTag::Subscriber(SubscriberId(6)),
    );
    for (i, kind, comment) in [
        (1, "bypassed", five.comment()),
        (1, "blocked", "isp:voucher:9".to_owned()),
        (2, "regular", five.comment()),
        (2, "bypassed", six.comment()),
        (3, "bypassed", "front desk".to_owned()),
    ] {
        handle
            .add_row(
                "/ip/hotspot/ip-binding",
                &[
                    ("mac-address", &mac(i).to_string()),
                    ("type", kind),
                    ("comment", &comment),
                ],
            )
            .unwrap();
    }
    d.health(&router).await.unwrap();
    handle.clear_command_log();

    let answers = d
        .remove_ip_bindings(&router, &[(mac(1), five), (mac(2), five), (mac(3), five)])
        .await
        .unwrap();
    let counts: Vec<u32> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(counts, [1, 1, 0]);
    let mut log = verbs(&handle, "print");
    log.extend(verbs(&handle, "remove"));
    assert_eq!(
        log,
        ["/ip/hotspot/ip-binding/print", "/ip/hotspot/ip-binding/remove"],
        "one print, one remove"
    );
    let left: Vec<(String, String)> = handle
        .rows("/ip/hotspot/ip-binding")
        .into_iter()
        .map(|b| (b["type"].clone(), b["comment"].clone()))
        .collect();
    assert_eq!(
        left,
        [
            ("blocked".to_owned(), "isp:voucher:9".to_owned()),
            ("bypassed".to_owned(), six.comment()),
            ("bypassed".to_owned(), "front desk".to_owned()),
        ]
    );
    // Nothing left of five's: confirmed, nothing removed.
    let again = d.remove_ip_bindings(&router, &[(mac(1), five)]).await.unwrap();
    assert_eq!(again.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [0]);
    assert!(d.remove_ip_bindings(&router, &[]).await.unwrap().is_empty());
}

async fn a_voucher_disconnect_removes_only_its_own_user_and_tagged_bindings(transport: Transport) {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let d = driver();
    let router = router_for(1, &sim, transport, None);
    let seven = OwnerTag::Voucher(VoucherId(7));
    handle
        .add_row(
            "/ip/hotspot/user",
            &[("name", "V7"), ("comment", &seven.comment())],
        )
        .unwrap();
    handle
        .hotspot_login("V7", &mac(7).to_string(), "10.5.50.7")
        .unwrap();
    handle
        .add_row(
            "/ip/hotspot/ip-binding",
            &[
                ("mac-address", &mac(7).to_string()),
                ("type", "bypassed"),
                ("comment", &seven.comment()),
            ],
        )
        .unwrap();
    // Voucher 8's code names a staff account (no tag), logged in.
    handle
        .add_row("/ip/hotspot/user", &[("name", "V8"), ("comment", "staff")])
        .unwrap();
    handle
        .hotspot_login("V8", &mac(8).to_string(), "10.5.50.8")
        .unwrap();
    let target = |code: &str, id: i64| HotspotTarget {
        username: Some(name(code)),
        macs: vec![],
        owner: OwnerTag::Voucher(VoucherId(id)),
        remove_user: true,
    };

    let results = d
        .disconnect_hotspot(&router, &[target("V7", 7), target("V8", 8)])
        .await
        .unwrap();
    let v7 = results[0].as_ref().unwrap();
    assert!(v7.user_removed && !v7.user_disabled);
    assert_eq!((v7.sessions_removed, v7.bindings_removed), (1, 1));
    assert!(v7.foreign.is_empty(), "{:?}", v7.foreign);
    let v8 = results[1].as_ref().unwrap();
    assert!(!v8.user_removed);
    assert_eq!(v8.sessions_removed, 0, "the staff session stays");
    assert_eq!(
        v8.foreign,
        [ForeignObject {
            menu: Menu::HotspotUsers,
            name: "V8".into()
        }]
    );
    assert_eq!(v8.foreign[0].describe(), "/ip/hotspot/user V8");
    assert!(rows_where(&handle, "/ip/hotspot/user", "name", "V7").is_empty());
    assert!(handle.rows("/ip/hotspot/ip-binding").is_empty());
    assert_eq!(
        rows_where(&handle, "/ip/hotspot/user", "name", "V8")[0]["disabled"],
        "false"
    );
    assert_eq!(rows_where(&handle, "/ip/hotspot/active", "user", "V8").len(), 1);
    assert!(verbs(&handle, "disable").is_empty());

    // The single-user call refuses the staff account, and leaves its session.
    let err = d
        .remove_hotspot_user(&router, &name("V8"), OwnerTag::Voucher(VoucherId(8)))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(rows_where(&handle, "/ip/hotspot/user", "name", "V8").len(), 1);
    assert_eq!(rows_where(&handle, "/ip/hotspot/active", "user", "V8").len(), 1);
}

over_both!(
    remove_ip_bindings_removes_only_that_owners_non_blocking_bindings_in_one_batch,
    a_voucher_disconnect_removes_only_its_own_user_and_tagged_bindings,
    user_changes_in_one_print_and_one_command_per_verb,
    a_disconnect_sweep_reads_each_menu_once_and_batches_removals,
    a_disconnect_by_mac_only_leaves_users_alone,
    one_failing_menu_fails_only_the_targets_that_needed_it,
    remove_sessions_counts_already_gone_ids,
    block_and_unblock_touch_only_our_bindings,
    hotspot_users_add_conflict_disable_enable_remove,
    snapshot_reads_one_print_per_menu_and_parses_rows,
);
