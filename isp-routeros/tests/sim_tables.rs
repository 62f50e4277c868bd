//! The simulated menus over real TCP: sessions, cascades, validation, clock.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod sim_common;

use std::time::Duration;

use isp_routeros::proto::ReplyKind;
use isp_routeros::sim::{SimConfig, SimRouter};
use sim_common::{rows, trap_message, Raw};

async fn setup() -> (SimRouter, Raw) {
    let r = SimRouter::start(SimConfig::new("admin", "secret"), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut c = Raw::connect(r.addr()).await;
    c.login("admin", "secret").await;
    (r, c)
}

#[tokio::test]
async fn hotspot_api_login_limit_uptime_and_cascades() {
    let (r, mut c) = setup().await;
    let h = r.handle();
    c.call(&[
        "/ip/hotspot/user/add",
        "=name=alice",
        "=password=pw",
        "=limit-uptime=1h",
    ])
    .await;
    c.call(&["/ip/hotspot/user/add", "=name=bob", "=password=pw2"])
        .await;
    // wrong password
    let bad = c
        .call(&[
            "/ip/hotspot/active/login",
            "=user=alice",
            "=password=nope",
            "=mac-address=AA:BB:CC:00:00:01",
            "=ip=10.5.50.2",
        ])
        .await;
    assert_eq!(
        trap_message(&bad).as_deref(),
        Some("invalid username or password")
    );
    let ok = c
        .call(&[
            "/ip/hotspot/active/login",
            "=user=alice",
            "=password=pw",
            "=mac-address=aa:bb:cc:00:00:01",
            "=ip=10.5.50.2",
        ])
        .await;
    assert_eq!(ok.len(), 1, "{ok:?}");
    let active = c.call(&["/ip/hotspot/active/print"]).await;
    let s = rows(&active);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].get("user"), Some("alice"));
    assert_eq!(s[0].get("mac-address"), Some("AA:BB:CC:00:00:01"));
    assert_eq!(s[0].get("address"), Some("10.5.50.2"));
    assert_eq!(s[0].get("server"), Some("hotspot1"));
    assert_eq!(s[0].get("session-time-left"), Some("1h"));
    let hosts = c.call(&["/ip/hotspot/host/print", "?authorized=true"]).await;
    assert_eq!(rows(&hosts).len(), 1);
    let cookies = c.call(&["/ip/hotspot/cookie/print", "?user=alice"]).await;
    assert_eq!(rows(&cookies).len(), 1);

    // limit-uptime ends the session on the router clock
    h.advance_clock(Duration::from_secs(3601));
    let active = c.call(&["/ip/hotspot/active/print", "=count-only="]).await;
    assert_eq!(active[0].get("ret"), Some("0"));
    let user = c
        .call(&["/ip/hotspot/user/print", "?name=alice", "=.proplist=uptime"])
        .await;
    assert_eq!(rows(&user)[0].get("uptime"), Some("1h1s"));
    let again = c
        .call(&[
            "/ip/hotspot/active/login",
            "=user=alice",
            "=password=pw",
            "=mac-address=AA:BB:CC:00:00:01",
            "=ip=10.5.50.2",
        ])
        .await;
    assert_eq!(
        trap_message(&again).as_deref(),
        Some("user alice has reached uptime limit")
    );
    let removal = h
        .removals()
        .into_iter()
        .find(|r| r.menu == "/ip/hotspot/active")
        .unwrap();
    assert_eq!(removal.reason, "limit-uptime");
    assert_eq!(removal.row["user"], "alice");

    // removing a user ends its sessions
    h.hotspot_login("bob", "AA:BB:CC:00:00:02", "10.5.50.3").unwrap();
    c.call(&["/ip/hotspot/user/remove", "=numbers=bob"]).await; // name in place of id
    assert!(h.rows("/ip/hotspot/active").is_empty());
    // disabling a user ends its sessions, and a disabled user cannot log in
    c.call(&["/ip/hotspot/user/add", "=name=carol", "=password=x"])
        .await;
    h.hotspot_login("carol", "AA:BB:CC:00:00:03", "10.5.50.4")
        .unwrap();
    c.call(&["/ip/hotspot/user/disable", "=.id=carol"]).await;
    assert!(h.rows("/ip/hotspot/active").is_empty());
    assert_eq!(
        h.hotspot_login("carol", "AA:BB:CC:00:00:03", "10.5.50.4")
            .unwrap_err(),
        "invalid username or password"
    );
    c.call(&["/ip/hotspot/user/enable", "=.id=carol"]).await;
    let id = h
        .hotspot_login("carol", "AA:BB:CC:00:00:03", "10.5.50.4")
        .unwrap();
    assert_eq!(h.hotspot_logout(&id), 1);
    let reasons: Vec<String> = h.removals().into_iter().map(|r| r.reason).collect();
    assert!(reasons.contains(&"user-removed".to_owned()));
    assert!(reasons.contains(&"user-disabled".to_owned()));
    assert!(reasons.contains(&"logout".to_owned()));
}

#[tokio::test]
async fn ppp_secret_removal_keeps_session_active_removal_drops_it() {
    let (r, mut c) = setup().await;
    let h = r.handle();
    let added = c
        .call(&[
            "/ppp/secret/add",
            "=name=pppuser",
            "=password=x",
            "=service=pppoe",
            "=remote-address=10.9.0.2",
        ])
        .await;
    let id = added[0].get("ret").unwrap().to_owned();
    let session = h.ppp_login("pppuser", "AA:BB:CC:DD:EE:FF", "10.9.0.2").unwrap();
    let active = c.call(&["/ppp/active/print"]).await;
    assert_eq!(rows(&active)[0].get("service"), Some("pppoe"));
    c.call(&["/ppp/secret/remove", &format!("=.id={id}")]).await;
    assert_eq!(h.rows("/ppp/active").len(), 1, "a real router keeps the session");
    c.call(&["/ppp/active/remove", &format!("=.id={session}")]).await;
    assert!(h.rows("/ppp/active").is_empty());
    // ids are never reused
    let again = c.call(&["/ppp/secret/add", "=name=pppuser"]).await;
    assert_eq!(again[0].get("ret"), Some("*2"));
    // disabled secrets refuse new sessions
    c.call(&["/ppp/secret/disable", "=numbers=*2"]).await;
    assert!(h.ppp_login("pppuser", "x", "10.9.0.3").is_err());
}

#[tokio::test]
async fn set_unset_and_validation() {
    let (r, mut c) = setup().await;
    let h = r.handle();
    c.call(&["/ip/hotspot/user/add", "=name=u1", "=limit-uptime=2h"])
        .await;
    c.call(&["/ip/hotspot/user/add", "=name=u2"]).await;
    let dup = c.call(&["/ip/hotspot/user/set", "=.id=*2", "=name=u1"]).await;
    assert_eq!(
        trap_message(&dup).as_deref(),
        Some("failure: already have user with this name for this server")
    );
    let set = c
        .call(&[
            "/ip/hotspot/user/set",
            "=.id=*1,*2",
            "=comment=isp:managed",
            "=disabled=yes",
        ])
        .await;
    assert_eq!(set.len(), 1, "{set:?}");
    let managed = c
        .call(&["/ip/hotspot/user/print", "?comment=isp:managed", "?disabled=true"])
        .await;
    assert_eq!(rows(&managed).len(), 2);
    c.call(&["/ip/hotspot/user/unset", "=.id=*1", "=value-name=limit-uptime"])
        .await;
    assert!(!h.rows("/ip/hotspot/user")[0].contains_key("limit-uptime"));
    let bad = c
        .call(&["/ip/hotspot/user/set", "=.id=*1", "=mac-address=zz"])
        .await;
    assert_eq!(
        trap_message(&bad).as_deref(),
        Some("invalid value for argument mac-address")
    );
    let missing = c.call(&["/ip/hotspot/user/set", "=.id=*9", "=comment=x"]).await;
    assert_eq!(trap_message(&missing).as_deref(), Some("no such item"));

    // ip-binding types
    let binding = c
        .call(&[
            "/ip/hotspot/ip-binding/add",
            "=mac-address=AA:BB:CC:DD:EE:01",
            "=type=bypassed",
        ])
        .await;
    assert_eq!(binding[0].kind, ReplyKind::Done);
    let bad_type = c.call(&["/ip/hotspot/ip-binding/add", "=type=friendly"]).await;
    assert_eq!(
        trap_message(&bad_type).as_deref(),
        Some("input does not match any value of type")
    );

    // queues: rates in bit/s, targets with a prefix, generated names
    let q = c
        .call(&[
            "/queue/simple/add",
            "=target=10.0.0.2",
            "=max-limit=10M/20M",
            "=comment=plan:gold",
        ])
        .await;
    assert_eq!(q[0].get("ret"), Some("*1"));
    let queues = c.call(&["/queue/simple/print"]).await;
    let q0 = rows(&queues)[0];
    assert_eq!(q0.get("name"), Some("queue1"));
    assert_eq!(q0.get("target"), Some("10.0.0.2/32"));
    assert_eq!(q0.get("max-limit"), Some("10000000/20000000"));
    let bad_rate = c
        .call(&["/queue/simple/add", "=target=10.0.0.3", "=max-limit=fast"])
        .await;
    assert_eq!(
        trap_message(&bad_rate).as_deref(),
        Some("invalid value for argument max-limit")
    );
}

#[tokio::test]
async fn address_list_timeouts_follow_the_router_clock() {
    let (r, mut c) = setup().await;
    let h = r.handle();
    c.call(&[
        "/ip/firewall/address-list/add",
        "=list=expired",
        "=address=10.0.0.5",
        "=timeout=1h",
    ])
    .await;
    c.call(&[
        "/ip/firewall/address-list/add",
        "=list=expired",
        "=address=10.0.0.6/32",
    ])
    .await;
    let listed = c
        .call(&["/ip/firewall/address-list/print", "?dynamic=true"])
        .await;
    let dynamic = rows(&listed);
    assert_eq!(dynamic.len(), 1);
    assert_eq!(dynamic[0].get("timeout"), Some("1h"));
    assert!(dynamic[0].get("creation-time").is_some());
    h.advance_clock(Duration::from_secs(3600));
    let after = c.call(&["/ip/firewall/address-list/print"]).await;
    let left = rows(&after);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].get("address"), Some("10.0.0.6"));
    assert_eq!(h.removals()[0].reason, "timeout");
}

#[tokio::test]
async fn system_menus() {
    let (r, mut c) = setup().await;
    let h = r.handle();
    let t = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    h.set_clock(t);
    let clock = c.call(&["/system/clock/print"]).await;
    assert_eq!(clock[0].get("date"), Some("2030-01-02"));
    assert!(clock[0].get("time").unwrap().starts_with("03:04:0"));
    assert_eq!(clock[0].get("time-zone-name"), Some("UTC"));
    assert_eq!(clock[0].get(".id"), None);
    let res = c.call(&["/system/resource/print"]).await;
    for p in [
        "uptime",
        "version",
        "cpu-load",
        "free-memory",
        "total-memory",
        "free-hdd-space",
        "board-name",
        "architecture-name",
    ] {
        assert!(res[0].get(p).is_some(), "missing {p}");
    }
    c.call(&["/system/identity/set", "=name=core-1"]).await;
    let id = c.call(&["/system/identity/print"]).await;
    assert_eq!(id[0].get("name"), Some("core-1"));
    let prefix = c.call(&["/system/print"]).await;
    assert_eq!(
        trap_message(&prefix).as_deref(),
        Some("no such command or directory (print)")
    );
    let dir = c.call(&["/system"]).await;
    assert_eq!(trap_message(&dir).as_deref(), Some("no such command prefix"));
    // the command log records every request, in order, with timestamps
    let log = h.command_log();
    let commands: Vec<&str> = log.iter().map(|l| l.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "/login",
            "/system/clock/print",
            "/system/resource/print",
            "/system/identity/set",
            "/system/identity/print",
            "/system/print",
            "/system"
        ]
    );
    assert!(log.windows(2).all(|w| w[0].instant <= w[1].instant));
}

#[tokio::test]
async fn clock_time_zone() {
    let (r, mut c) = setup().await;
    let t = chrono::DateTime::parse_from_rfc3339("2030-01-02T22:30:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    r.handle().set_clock(t);
    let bad = c
        .call(&["/system/clock/set", "=time-zone-name=Mars/Olympus"])
        .await;
    assert_eq!(
        trap_message(&bad).as_deref(),
        Some("input does not match any value of time-zone-name")
    );
    c.call(&["/system/clock/set", "=time-zone-name=Africa/Nairobi"])
        .await;
    let clock = c.call(&["/system/clock/print"]).await;
    assert_eq!(clock[0].get("time-zone-name"), Some("Africa/Nairobi"));
    assert_eq!(clock[0].get("date"), Some("2030-01-03"));
    assert!(clock[0].get("time").unwrap().starts_with("01:30:0"));
    assert_eq!(clock[0].get("gmt-offset"), Some("+03:00"));
}
