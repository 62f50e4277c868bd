//! The simulator over real TCP, driven by a raw client built on the crate's codec.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod sim_common;

use std::time::{Duration, Instant};

use isp_routeros::proto::{ReplyKind, Request};
use isp_routeros::sim::{SimConfig, SimFleet, SimRouter};
use sim_common::{rows, trap_message, Raw};

async fn router(config: SimConfig) -> SimRouter {
    SimRouter::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn logged_in(r: &SimRouter) -> Raw {
    let mut c = Raw::connect(r.addr()).await;
    c.login("admin", "secret").await;
    c
}

fn config() -> SimConfig {
    SimConfig::new("admin", "secret")
}

#[tokio::test]
async fn login_ok_and_refused() {
    let r = router(config()).await;
    let mut c = Raw::connect(r.addr()).await;
    let replies = c.call(&["/login", "=name=admin", "=password=wrong"]).await;
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].kind, ReplyKind::Trap);
    assert_eq!(
        trap_message(&replies).as_deref(),
        Some("invalid user name or password (6)")
    );
    assert_eq!(r.handle().logins(), 0);
    // the connection stays usable
    c.login("admin", "secret").await;
    assert_eq!(r.handle().logins(), 1);
    let identity = c.call(&["/system/identity/print"]).await;
    assert_eq!(identity[0].get("name"), Some("MikroTik"));
    // the password is not in the command log
    let log = r.handle().command_log();
    assert_eq!(log[0].command, "/login");
    assert!(log
        .iter()
        .all(|l| l.attributes.iter().all(|(_, v)| v != "secret" && v != "wrong")));
    r.shutdown().await;
}

#[tokio::test]
async fn not_logged_in_is_fatal_and_quit_closes() {
    let r = router(config()).await;
    let mut c = Raw::connect(r.addr()).await;
    c.send(&["/ip/hotspot/active/print", ".tag=1"]).await;
    let words = c.next_words().await.unwrap();
    assert_eq!(words, vec![b"!fatal".to_vec(), b"not logged in".to_vec()]);
    assert!(c.closed().await);

    let mut c = logged_in(&r).await;
    c.send(&["/quit"]).await;
    let fatal = c.reply().await;
    assert_eq!(fatal.kind, ReplyKind::Fatal);
    assert_eq!(fatal.message.as_deref(), Some("session terminated on request"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn add_print_proplist_count_only_and_empty() {
    let r = router(config()).await;
    let mut c = logged_in(&r).await;
    // !empty on a print that finds nothing (RouterOS >= 7.18)
    let empty = c.call(&["/ip/hotspot/user/print"]).await;
    assert_eq!(
        empty.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec![ReplyKind::Empty, ReplyKind::Done]
    );
    let added = c
        .call(&[
            "/ip/hotspot/user/add",
            "=name=alice",
            "=password=pw",
            "=limit-uptime=90m",
            "=comment=isp:1",
        ])
        .await;
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].get("ret"), Some("*1"));
    c.call(&["/ip/hotspot/user/add", "=name=bob"]).await;
    let all = c.call(&["/ip/hotspot/user/print"]).await;
    let users = rows(&all);
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].get(".id"), Some("*1"));
    assert_eq!(users[0].get("limit-uptime"), Some("1h30m"));
    assert_eq!(users[0].get("profile"), Some("default"));
    assert_eq!(users[0].get("disabled"), Some("false"));
    assert_eq!(users[1].get("comment"), None);
    // .proplist: only those properties
    let some = c
        .call(&["/ip/hotspot/user/print", "=.proplist=.id,name,nonexistent"])
        .await;
    let names: Vec<Vec<String>> = rows(&some)
        .iter()
        .map(|r| r.attributes.iter().map(|(k, _)| k.clone()).collect())
        .collect();
    assert_eq!(names, vec![vec![".id", "name"], vec![".id", "name"]]);
    // count-only
    let count = c
        .call(&["/ip/hotspot/user/print", "=count-only=", "?comment"])
        .await;
    assert_eq!(count.len(), 1);
    assert_eq!(count[0].get("ret"), Some("1"));
    // without !empty, as older routers
    let mut old = config();
    old.empty_replies = false;
    let r2 = router(old).await;
    let mut c2 = logged_in(&r2).await;
    let none = c2.call(&["/ppp/secret/print"]).await;
    assert_eq!(
        none.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec![ReplyKind::Done]
    );
}

#[tokio::test]
async fn traps_verbatim() {
    let r = router(config()).await;
    let mut c = logged_in(&r).await;
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["/ip/hotspot/user/add", "=name=a"], ""),
        (
            vec!["/ip/hotspot/user/add", "=name=a"],
            "failure: already have user with this name for this server",
        ),
        (vec!["/ppp/secret/add", "=name=p"], ""),
        (
            vec!["/ppp/secret/add", "=name=p"],
            "failure: secret with the same name already exists",
        ),
        (
            vec![
                "/ip/firewall/address-list/add",
                "=list=blocked",
                "=address=10.0.0.9",
            ],
            "",
        ),
        (
            vec![
                "/ip/firewall/address-list/add",
                "=list=blocked",
                "=address=10.0.0.9/32",
            ],
            "failure: already have such entry",
        ),
        (vec!["/ip/hotspot/user/remove", "=.id=*99"], "no such item"),
        (
            vec!["/ip/hotspot/user/add", "=name=b", "=limit-uptime=soon"],
            "invalid time value for argument limit-uptime",
        ),
        (
            vec!["/ip/hotspot/user/add", "=name=b", "=limit-uptime="],
            "invalid time value for argument limit-uptime",
        ),
        (
            vec!["/ppp/secret/add", "=name=q", "=remote-address=10.1.2"],
            "invalid value for argument remote-address",
        ),
        (
            vec!["/ppp/secret/add", "=name=q", "=profile=gold"],
            "input does not match any value of profile",
        ),
        (vec!["/ip/xyz/print"], "no such command or directory (xyz)"),
        (vec!["/ppp/active/add"], "no such command or directory (add)"),
        (
            vec!["/ip/hotspot/user/add", "=name=c", "=colour=red"],
            "unknown parameter colour",
        ),
    ];
    for (words, expected) in cases {
        let replies = c.call(&words).await;
        if expected.is_empty() {
            assert_eq!(trap_message(&replies), None, "{words:?}");
        } else {
            assert_eq!(trap_message(&replies).as_deref(), Some(expected), "{words:?}");
            // a trap is followed by !done
            assert_eq!(replies.last().unwrap().kind, ReplyKind::Done);
            assert_eq!(replies.len(), 2);
        }
    }
    let unknown = c.call(&["/ip/xyz/print"]).await;
    assert_eq!(unknown[0].get("category"), Some("0"));
}

#[tokio::test]
async fn queries_over_the_wire() {
    let r = router(config()).await;
    let h = r.handle();
    for (name, profile, disabled) in [
        ("a", "default", "no"),
        ("b", "default-encryption", "no"),
        ("c", "default", "yes"),
    ] {
        h.add_row(
            "/ppp/secret",
            &[("name", name), ("profile", profile), ("disabled", disabled)],
        )
        .unwrap();
    }
    let mut c = logged_in(&r).await;
    let names = |replies: &[isp_routeros::proto::Reply]| -> Vec<String> {
        rows(replies)
            .iter()
            .map(|r| r.get("name").unwrap().to_owned())
            .collect()
    };
    let q = c.call(&["/ppp/secret/print", "?profile=default"]).await;
    assert_eq!(names(&q), ["a", "c"]);
    let q = c
        .call(&["/ppp/secret/print", "?=profile=default", "?disabled=false"])
        .await;
    assert_eq!(names(&q), ["a"]);
    let q = c.call(&["/ppp/secret/print", "?name=a", "?name=b", "?#|"]).await;
    assert_eq!(names(&q), ["a", "b"]);
    let q = c.call(&["/ppp/secret/print", "?name=a", "?name=b", "?#|!"]).await;
    assert_eq!(names(&q), ["c"]);
    let q = c.call(&["/ppp/secret/print", "?>.id=*1", "?<.id=*3"]).await;
    assert_eq!(names(&q), ["b"]);
    let q = c.call(&["/ppp/secret/print", "?comment"]).await;
    assert!(names(&q).is_empty());
    let q = c
        .call(&["/ppp/secret/print", "?-comment", "?disabled=true"])
        .await;
    assert_eq!(names(&q), ["c"]);
}

#[tokio::test]
async fn tag_position_is_an_option() {
    for tag_first in [false, true] {
        let mut cfg = config();
        cfg.tag_first = tag_first;
        let r = router(cfg).await;
        let mut c = logged_in(&r).await;
        c.send(&["/ip/hotspot/user/add", "=name=x", ".tag=t1"]).await;
        let words = c.next_words().await.unwrap();
        let words: Vec<String> = words.into_iter().map(|w| String::from_utf8(w).unwrap()).collect();
        if tag_first {
            assert_eq!(words, ["!done", ".tag=t1", "=ret=*1"]);
        } else {
            assert_eq!(words, ["!done", "=ret=*1", ".tag=t1"]);
        }
    }
}

#[tokio::test]
async fn many_tagged_commands_in_flight() {
    let mut cfg = config();
    cfg.latency = Duration::from_millis(300);
    let r = router(cfg).await;
    r.handle().add_row("/ppp/secret", &[("name", "x")]).unwrap();
    let mut c = logged_in(&r).await;
    let start = Instant::now();
    for i in 0..20 {
        c.send_req(&Request::new("/ppp/secret/print").tag(format!("t{i}")))
            .await;
    }
    let mut done = std::collections::BTreeSet::new();
    while done.len() < 20 {
        let reply = c.reply().await;
        let tag = reply.tag.clone().expect("every reply is tagged");
        if reply.kind == ReplyKind::Done {
            done.insert(tag);
        } else {
            assert_eq!(reply.get("name"), Some("x"));
        }
    }
    // 20 commands of 300 ms each ran concurrently
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn listen_sees_changes_and_dead_items_and_cancel_stops_it() {
    let r = router(config()).await;
    let h = r.handle();
    let mut c = logged_in(&r).await;
    c.send(&["/ip/hotspot/active/listen", "=.proplist=.id,user", ".tag=L"])
        .await;
    // give the listen a moment to subscribe, then make changes
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = h
        .hotspot_login("alice", "aa:bb:cc:dd:ee:01", "10.5.50.2")
        .unwrap();
    let re = c.reply().await;
    assert_eq!(re.kind, ReplyKind::Re);
    assert_eq!(re.tag.as_deref(), Some("L"));
    assert_eq!(re.get("user"), Some("alice"));
    assert_eq!(re.get(".id"), Some(id.as_str()));
    assert_eq!(re.get("address"), None); // proplist applies
                                         // removed through the API on another connection
    let mut c2 = logged_in(&r).await;
    let removed = c2
        .call(&["/ip/hotspot/active/remove", &format!("=.id={id}")])
        .await;
    assert_eq!(removed.len(), 1);
    let dead = c.reply().await;
    assert_eq!(dead.get(".id"), Some(id.as_str()));
    assert_eq!(dead.get(".dead"), Some("true"));
    // cancel with a tag: trap interrupted (X), done (cancel), done (X)
    c.send(&["/cancel", "=tag=L", ".tag=C"]).await;
    let trap = c.reply().await;
    assert_eq!((trap.kind, trap.tag.as_deref()), (ReplyKind::Trap, Some("L")));
    assert_eq!(trap.get("message"), Some("interrupted"));
    assert_eq!(trap.get("category"), Some("2"));
    let done_cancel = c.reply().await;
    assert_eq!(
        (done_cancel.kind, done_cancel.tag.as_deref()),
        (ReplyKind::Done, Some("C"))
    );
    let done_l = c.reply().await;
    assert_eq!((done_l.kind, done_l.tag.as_deref()), (ReplyKind::Done, Some("L")));
    // nothing more arrives for L
    h.hotspot_login("bob", "aa:bb:cc:dd:ee:02", "10.5.50.3").unwrap();
    let next = c.call(&["/system/identity/print"]).await;
    assert_eq!(next.len(), 2);
    assert!(next.iter().all(|r| r.tag.is_none()));

    // cancel without a tag stops every listen
    c.send(&["/ppp/active/listen", ".tag=A"]).await;
    c.send(&["/queue/simple/listen", ".tag=B"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send(&["/cancel"]).await;
    let mut traps = 0;
    let mut dones = std::collections::BTreeSet::new();
    while dones.len() < 3 {
        let r = c.reply().await;
        match r.kind {
            ReplyKind::Trap => traps += 1,
            ReplyKind::Done => {
                dones.insert(r.tag.clone());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(traps, 2);
    assert!(dones.contains(&None) && dones.contains(&Some("A".into())) && dones.contains(&Some("B".into())));
}

#[tokio::test]
async fn listen_with_older_dead_value_and_print_follow() {
    let mut cfg = config();
    cfg.dead_value = "yes".into();
    let r = router(cfg).await;
    let h = r.handle();
    let first = h.add_row("/ppp/secret", &[("name", "one")]).unwrap();
    let mut c = logged_in(&r).await;
    c.send(&["/ppp/secret/print", "=follow=", ".tag=F"]).await;
    let existing = c.reply().await;
    assert_eq!(existing.get("name"), Some("one"));
    let mut c2 = logged_in(&r).await;
    c2.call(&["/ppp/secret/remove", &format!("=numbers={first}")])
        .await;
    let dead = c.reply().await;
    assert_eq!(dead.get(".dead"), Some("yes"));
}

#[tokio::test]
async fn protocol_errors_close_the_connection() {
    let r = router(config()).await;
    let mut c = logged_in(&r).await;
    c.send_bytes(&[0xF8, 0x00]).await;
    assert!(c.closed().await);
    let mut c = logged_in(&r).await;
    // a word longer than the simulator's bound (1 MiB by default)
    c.send_bytes(&[0xE0, 0x20, 0x00, 0x00]).await;
    assert!(c.closed().await);
    // a request that is not a command
    let mut c = logged_in(&r).await;
    c.send(&["login"]).await;
    let fatal = c.reply().await;
    assert_eq!(fatal.kind, ReplyKind::Fatal);
    assert!(c.closed().await);
}

#[tokio::test]
async fn legacy_challenge_login() {
    use md5::{Digest, Md5};
    let mut cfg = config();
    cfg.legacy_login = true;
    let r = router(cfg).await;
    let mut c = Raw::connect(r.addr()).await;
    let challenge = c.call(&["/login"]).await;
    let ret = challenge[0].get("ret").unwrap().to_owned();
    let mut h = Md5::new();
    h.update([0u8]);
    h.update(b"secret");
    h.update(hex::decode(&ret).unwrap());
    let response = format!("=response=00{}", hex::encode(h.finalize()));
    let ok = c.call(&["/login", "=name=admin", &response]).await;
    assert_eq!(ok[0].kind, ReplyKind::Done, "{ok:?}");
    assert_eq!(r.handle().logins(), 1);
}

#[tokio::test]
async fn fleet_on_consecutive_ports() {
    // find a free block by asking for one port and trying from there
    for attempt in 0..10u16 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap();
        drop(probe);
        let Ok(fleet) = SimFleet::start(5, config(), base).await else {
            assert!(attempt < 9, "no free block of ports");
            continue;
        };
        let ports: Vec<u16> = fleet.routers().iter().map(|r| r.addr().port()).collect();
        assert_eq!(ports, (base.port()..base.port() + 5).collect::<Vec<_>>());
        for (i, router) in fleet.routers().iter().enumerate() {
            let mut c = logged_in(router).await;
            let id = c.call(&["/system/identity/print"]).await;
            assert_eq!(id[0].get("name"), Some(format!("MikroTik-{}", i + 1).as_str()));
        }
        fleet.shutdown().await;
        return;
    }
}

/// Many routers, several connections each, many tagged commands in flight: every command is
/// answered and the figures are printed (`cargo test -- --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_load() {
    const ROUTERS: usize = 20;
    const CONNS: usize = 4;
    const COMMANDS: usize = 50;
    let fleet = SimFleet::start(ROUTERS, config(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for h in fleet.handles() {
        for i in 0..20 {
            h.add_row("/ip/hotspot/user", &[("name", &format!("u{i}"))])
                .unwrap();
        }
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for router in fleet.routers() {
        for _ in 0..CONNS {
            let addr = router.addr();
            tasks.push(tokio::spawn(async move {
                let mut c = Raw::connect(addr).await;
                c.login("admin", "secret").await;
                for i in 0..COMMANDS {
                    c.send_req(
                        &Request::new("/ip/hotspot/user/print")
                            .attr(".proplist", ".id,name")
                            .query("name=u7")
                            .tag(i.to_string()),
                    )
                    .await;
                }
                let mut done = 0;
                let mut rows = 0;
                while done < COMMANDS {
                    let r = c.reply().await;
                    match r.kind {
                        ReplyKind::Done => done += 1,
                        ReplyKind::Re => rows += 1,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                rows
            }));
        }
    }
    let mut rows = 0;
    for t in tasks {
        rows += t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let total = ROUTERS * CONNS * COMMANDS;
    assert_eq!(rows, total);
    eprintln!(
        "fleet_load: {ROUTERS} routers x {CONNS} connections x {COMMANDS} prints = {total} commands in {elapsed:?} ({:.0}/s)",
        total as f64 / elapsed.as_secs_f64()
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn cancel_a_command_waiting_on_latency_and_getall() {
    let r = router(config()).await;
    let h = r.handle();
    h.add_row("/queue/simple", &[("target", "10.0.0.2"), ("max-limit", "1M/2M")])
        .unwrap();
    let mut c = logged_in(&r).await;
    let all = c.call(&["/queue/simple/getall"]).await;
    assert_eq!(rows(&all)[0].get("max-limit"), Some("1000000/2000000"));
    h.set_latency(Duration::from_millis(400));
    c.send(&["/queue/simple/remove", "=.id=*1", ".tag=slow"]).await;
    c.send(&["/cancel", "=tag=slow", ".tag=c"]).await;
    let got: Vec<(ReplyKind, Option<String>)> = vec![c.reply().await, c.reply().await, c.reply().await]
        .into_iter()
        .map(|r| (r.kind, r.tag))
        .collect();
    assert_eq!(
        got,
        [
            (ReplyKind::Trap, Some("slow".to_owned())),
            (ReplyKind::Done, Some("c".to_owned())),
            (ReplyKind::Done, Some("slow".to_owned())),
        ]
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        h.rows("/queue/simple").len(),
        1,
        "a cancelled command does not run"
    );
    // cancelling a tag that is not running: just !done
    h.set_latency(Duration::ZERO);
    let done = c.call(&["/cancel", "=tag=nothing"]).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].kind, ReplyKind::Done);
}
