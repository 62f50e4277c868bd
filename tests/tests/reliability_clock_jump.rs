//! Reliability scenario 10: the daemon's host clock jumps an hour forward,
//! then steps back a minute.
//!
//! The engine reads time only through its clock port. Here the port is the
//! host clock: real time plus an offset the test changes at once (a jump),
//! with the port's default `sleep_until` (a tokio sleep of the distance, as
//! on the system clock). "Early" is defined against the port: a cut-off is
//! early when it happens while the port still reads before `paid_until`.
//! The engine cannot tell a host clock that is an hour fast from an hour that
//! passed, so the subscribers whose `paid_until` lies inside the skipped hour
//! are due at the jump, by the port; nobody whose `paid_until` is after the
//! port's reading is cut off, before or after either jump.
//!
//! The in-process daemon (real watcher, billing every second) on SQLite with
//! one simulated router; tenant zone Africa/Dar_es_Salaam, the port set 20
//! minutes before the tenant's midnight, so the forward jump crosses it.
//! Checked:
//! - 3 subscribers due before any jump are cut off at or after `paid_until`;
//! - after the forward jump the 6 subscribers of the skipped hour are cut off
//!   within 3 s, none before the jump; the 3 due an hour after it are not;
//! - the watcher re-plans: its next wake-up is the earliest `paid_until`
//!   still ahead of the port, right after each jump;
//! - after the step back, one subscriber cut off in the minute the port
//!   re-lives stays cut off and recorded, with one removal (not cut twice,
//!   not re-enabled); 2 subscribers due 2 and 4 s after the old reading are
//!   not cut off until the port reaches their `paid_until` again (62 and 64
//!   real seconds later), and then within 3 s;
//! - the service whose period starts at the tenant's midnight inside the
//!   skipped hour is charged once at the jump, and still once after the step
//!   back and a minute of billing runs every second (no double charge).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;
use isp_core::domain::{LedgerKind, ServiceStatus, TenantId};
use isp_core::memory::RecordingSms;
use isp_core::policy::time::local_date;
use isp_core::ports::Clock;
use isp_routeros::sim::SimHandle;
use isp_tests::eventually;
use isp_tests::reliability::world::{
    add_service, add_subscriber, sessions_of, user_disabled, Fleet, Layout, SubPlan,
};
use ispd::daemon::{self, Daemon};

const PASSWORD: &str = "jump-router-pw";
const TOKEN: &str = "jump-token-0123456789abcdef";

/// The host clock: real time plus an offset that can jump.
#[derive(Debug)]
struct HostClock {
    offset_ms: AtomicI64,
}

impl HostClock {
    fn shift(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
    fn offset(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for HostClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }
}

/// Removals of `user`'s sessions on the router (real time).
fn removals(h: &SimHandle, user: &str) -> Vec<DateTime<Utc>> {
    h.removals()
        .into_iter()
        .filter(|r| r.menu == "/ip/hotspot/active" && r.row.get("user").map(String::as_str) == Some(user))
        .map(|r| r.at.into())
        .collect()
}

/// `t` in whole seconds (rounded up), as the databases store it exactly.
fn whole(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() + 1, 0).expect("instant")
}

fn cut(h: &SimHandle, s: &SubPlan) -> bool {
    sessions_of(h, &s.username) == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clock_jump_cuts_nobody_before_the_port_reads_paid_until_and_charges_once() {
    let tz: Tz = chrono_tz::Africa::Dar_es_Salaam;
    // Port = 20 minutes before the tenant's next midnight.
    let real = Utc::now();
    let tomorrow = local_date(real, tz) + chrono::Duration::days(1);
    let midnight = tz
        .from_local_datetime(&tomorrow.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("one midnight")
        .with_timezone(&Utc);
    let clock = Arc::new(HostClock {
        offset_ms: AtomicI64::new((midnight - chrono::Duration::minutes(20) - real).num_milliseconds()),
    });
    let fleet = Fleet::start(1, PASSWORD, false, 10).await;
    let h = fleet.handles[0].clone();
    let layout = Layout {
        tenants: vec![(TenantId(1), tz, vec![0])],
    };
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("router.password"), PASSWORD).expect("password");
    std::fs::write(dir.path().join("admin.token"), TOKEN).expect("token");
    let text = format!(
        r#"
[storage]
url = "sqlite://{db}"

[admin]
listen = "127.0.0.1:0"
token_file = "admin.token"

[engine]
retry_base = "1s"
retry_max = "2s"
lease_ttl = "4s"

[scheduler]
watcher_max_sleep = "1s"
watcher_min_sleep = "200ms"
shutdown_grace = "5s"

[schedules]
disconnect-expired = "*/30 * * * * *"
warn-before-expiry = "off"
expire-vouchers = "off"
sync-routers = "off"
provision-services = "off"
router-health = "off"
monthly-billing = "* * * * * *"
payment-reminders = "off"
device-cleanup = "off"
log-retention = "off"

[[tenants]]
id = 1
slug = "tenant-1"
time_zone = "{tz}"

[[tenants.routers]]
id = 1
name = "R1"
address = "{addr}"
username = "isp"
password_file = "router.password"
"#,
        db = dir.path().join("jump.db").display(),
        tz = tz.name(),
        addr = fleet.address(0),
    );
    let path = dir.path().join("ispd.toml");
    std::fs::write(&path, &text).expect("config");
    let config = ispd::config::load_file(&path, &HashMap::new()).expect("config loads");
    let (mut wiring, storage) = daemon::wire(&config, true).await.expect("wiring");
    wiring.clock = clock.clone();
    wiring.sms = Arc::new(RecordingSms::new());
    daemon::apply_config(&config, &wiring.repos)
        .await
        .expect("apply config");
    let repos = wiring.repos.clone();
    let plans = layout.seed(&repos).await;

    let t0 = whole(clock.now());
    let secs = chrono::Duration::seconds;
    let mut n = 0;
    let mut add = |paid_until: DateTime<Utc>| {
        n += 1;
        let (repos, fleet, layout) = (repos.clone(), &fleet, &layout);
        let n = n;
        async move { add_subscriber(&repos, fleet, layout, TenantId(1), n, paid_until, &[0], t0).await }
    };
    let mut before = Vec::new();
    for k in 0..3 {
        before.push(add(t0 + secs(4 + k)).await);
    }
    let mut skipped = Vec::new();
    for k in 0..6 {
        skipped.push(add(t0 + chrono::Duration::minutes(8 * k + 5)).await);
    }
    let mut after = Vec::new();
    for k in 0..3 {
        after.push(add(t0 + chrono::Duration::minutes(75 + k)).await);
    }
    // The period that starts at the tenant's midnight, inside the skipped hour.
    let svc = add_service(
        &repos,
        TenantId(1),
        plans[&TenantId(1)],
        0,
        2,
        ServiceStatus::Active,
        tomorrow,
        tomorrow,
    )
    .await;
    assert_eq!(tomorrow.day(), local_date(midnight, tz).day());
    let charges = || {
        let repos = repos.clone();
        async move {
            repos
                .ledger
                .of_service(svc.id)
                .await
                .expect("ledger")
                .into_iter()
                .filter(|e| e.kind == LedgerKind::Charge)
                .filter_map(|e| e.period_start)
                .collect::<Vec<_>>()
        }
    };

    let d = Daemon::start(&config, wiring).await.expect("daemon starts");

    // 1. Before any jump: due subscribers cut off at or after paid_until.
    assert!(
        eventually(Duration::from_secs(15), || before.iter().all(|s| cut(&h, s))).await,
        "the subscribers due before the jump were not cut off"
    );
    for s in &before {
        let at = removals(&h, &s.username)[0] + clock.offset();
        assert!(
            at >= s.paid_until,
            "{} cut off early: {at} < {}",
            s.username,
            s.paid_until
        );
    }
    assert!(skipped.iter().chain(&after).all(|s| !cut(&h, s)));
    assert!(charges().await.is_empty(), "charged before the tenant's midnight");
    // The plan is the earlier of the watcher's two lanes: a deadline of the
    // other lane a few seconds ahead (a warning) comes first until it passed.
    let plan_is_next_expiry = eventually(Duration::from_secs(15), || {
        d.runner().watcher().next_wakeup == Some(skipped[0].paid_until)
    })
    .await;
    assert!(
        plan_is_next_expiry,
        "the watcher's plan before the jump: {:?}, expected {}",
        d.runner().watcher().next_wakeup,
        skipped[0].paid_until
    );

    // 2. Forward an hour.
    let jumped_real = Utc::now();
    clock.shift(chrono::Duration::hours(1));
    let jumped_port = clock.now();
    let took = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || skipped.iter().all(|s| cut(&h, s))).await,
        "the subscribers of the skipped hour were not cut off within 3 s of the jump"
    );
    let skipped_cut_in = took.elapsed();
    for s in &skipped {
        let at = removals(&h, &s.username)[0];
        assert!(at >= jumped_real, "{} cut off before the jump", s.username);
    }
    assert!(
        after.iter().all(|s| !cut(&h, s)),
        "a subscriber due after the jump was cut off"
    );
    let replanned = |want: DateTime<Utc>| {
        let runner = d.runner().clone();
        async move {
            eventually(Duration::from_secs(3), || {
                runner.watcher().next_wakeup == Some(want)
            })
            .await
        }
    };
    assert!(
        replanned(after[0].paid_until).await,
        "the watcher did not re-plan after the forward jump: next wake-up {:?}, want {}",
        d.runner().watcher().next_wakeup,
        after[0].paid_until
    );
    let charge_deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while charges().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < charge_deadline,
            "the period of {tomorrow} was not charged within 5 s of the jump past the tenant's midnight"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(charges().await, vec![tomorrow]);

    // 3. One subscriber cut off in the minute the step back will re-live,
    //    and two due just after the port's reading at the step.
    let relived = add(whole(clock.now()) + secs(2)).await;
    d.runner().nudge();
    assert!(
        eventually(Duration::from_secs(5), || cut(&h, &relived)).await,
        "{} not cut off",
        relived.username
    );
    let at_step = whole(clock.now());
    let late = vec![add(at_step + secs(2)).await, add(at_step + secs(4)).await];
    d.runner().nudge();
    let stepped_real = Utc::now();
    clock.shift(-chrono::Duration::minutes(1));
    assert!(
        replanned(late[0].paid_until).await,
        "the watcher did not re-plan after the step back: next wake-up {:?}, want {}",
        d.runner().watcher().next_wakeup,
        late[0].paid_until
    );
    // Nothing of the re-lived minute is done twice or undone.
    for s in &late {
        let due_real = s.paid_until - clock.offset();
        let wait = (due_real - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(3);
        assert!(
            eventually(wait, || cut(&h, s)).await,
            "{} not cut off within 3 s of the port reaching its paid_until",
            s.username
        );
        let at = removals(&h, &s.username)[0];
        assert!(at >= stepped_real, "{} cut off before the step back", s.username);
        let port_at = at + clock.offset();
        assert!(
            port_at >= s.paid_until,
            "{} cut off early: port read {port_at}, paid until {}",
            s.username,
            s.paid_until
        );
    }
    let db = repos.subscribers.get(relived.id).await.expect("get");
    assert!(
        !db.active && db.disconnected_at.is_some(),
        "{} no longer recorded cut off",
        relived.username
    );
    assert_eq!(
        user_disabled(&h, &relived.username),
        Some(true),
        "{} enabled again",
        relived.username
    );
    assert_eq!(
        removals(&h, &relived.username).len(),
        1,
        "{} cut off twice",
        relived.username
    );
    for s in before.iter().chain(&skipped) {
        assert_eq!(removals(&h, &s.username).len(), 1, "{} cut off twice", s.username);
    }
    assert!(
        after.iter().all(|s| !cut(&h, s)),
        "a subscriber due after the jump was cut off"
    );
    assert_eq!(
        charges().await,
        vec![tomorrow],
        "charged again after the step back (billing ran every second for a minute)"
    );
    eprintln!(
        "scenario 10: port 20 min before the tenant's midnight; 3 expiries before the jump, none early; \
         jump +1 h at {jumped_port}: the 6 subscribers of the skipped hour cut off in {:.1} s, none before \
         the jump, 3 due after it untouched, the watcher re-planned to {}; the midnight period charged once; \
         step back 1 min: 1 subscriber of the re-lived minute stayed cut off (1 removal), 2 due after the old \
         reading cut off {:.1} s after the step (when the port reached them), none early; 1 charge in all",
        skipped_cut_in.as_secs_f64(),
        after[0].paid_until,
        (removals(&h, &late[1].username)[0] - stepped_real).num_milliseconds() as f64 / 1000.0,
    );
    d.stop().await;
    storage.close().await;
}
