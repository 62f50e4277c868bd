//! Mock wiring shared by the job orchestration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use isp_core::domain::*;
use isp_core::jobs::{Engine, EngineConfig, EngineDeps};
use isp_core::ports::*;

/// Every port as a mockall mock, plus a fake clock and a log of audit events.
pub struct Mocks {
    pub tenants: MockTenantRepo,
    pub subscribers: MockSubscriberRepo,
    pub devices: MockDeviceRepo,
    pub vouchers: MockVoucherRepo,
    pub plans: MockPlanRepo,
    pub customers: MockCustomerRepo,
    pub services: MockServiceRepo,
    pub ledger: MockLedgerRepo,
    pub notices: MockNoticeRepo,
    pub audit: MockAuditRepo,
    pub router_status: MockRouterStatusRepo,
    pub leases: MockLeaseRepo,
    pub grants: MockGrantRepo,
    pub directory: MockRouterDirectory,
    pub driver: MockRouterDriver,
    pub sms: MockSmsSender,
    pub clock: Arc<FakeClock>,
    pub audit_log: Arc<Mutex<Vec<AuditEvent>>>,
}

pub fn config() -> EngineConfig {
    EngineConfig {
        holder: "daemon-a".into(),
        batch_size: 50,
        lease_ttl: Duration::from_secs(120),
        per_router_concurrency: 2,
        retry_base: Duration::from_secs(5),
        retry_max: Duration::from_secs(600),
        ..EngineConfig::default()
    }
}

impl Mocks {
    /// Mocks with no expectations except: audit events are recorded.
    pub fn new(now: DateTime<Utc>) -> Self {
        let audit_log = Arc::new(Mutex::new(Vec::new()));
        let mut audit = MockAuditRepo::new();
        let log = audit_log.clone();
        audit.expect_append().returning(move |events| {
            log.lock().unwrap().extend_from_slice(events);
            Ok(())
        });
        Mocks {
            tenants: MockTenantRepo::new(),
            subscribers: MockSubscriberRepo::new(),
            devices: MockDeviceRepo::new(),
            vouchers: MockVoucherRepo::new(),
            plans: MockPlanRepo::new(),
            customers: MockCustomerRepo::new(),
            services: MockServiceRepo::new(),
            ledger: MockLedgerRepo::new(),
            notices: MockNoticeRepo::new(),
            audit,
            router_status: MockRouterStatusRepo::new(),
            leases: MockLeaseRepo::new(),
            grants: MockGrantRepo::new(),
            directory: MockRouterDirectory::new(),
            driver: MockRouterDriver::new(),
            sms: MockSmsSender::new(),
            clock: Arc::new(FakeClock::new(now)),
            audit_log,
        }
    }

    /// Tenants answered from a list.
    pub fn with_tenants(&mut self, tenants: Vec<Tenant>) {
        let list = tenants.clone();
        self.tenants.expect_list().returning(move || Ok(list.clone()));
        self.tenants.expect_get().returning(move |id| {
            tenants
                .iter()
                .find(|t| t.id == id)
                .cloned()
                .ok_or_else(|| isp_core::Error::not_found("tenant", id))
        });
    }

    /// Routers answered from a list.
    pub fn with_routers(&mut self, routers: Vec<Router>) {
        let all = routers.clone();
        let by_id = routers.clone();
        self.directory
            .expect_routers_of()
            .returning(move |t| Ok(routers.iter().filter(|r| r.tenant_id == t).cloned().collect()));
        self.directory
            .expect_all_routers()
            .returning(move || Ok(all.clone()));
        self.directory.expect_router().returning(move |id| {
            by_id
                .iter()
                .find(|r| r.id == id)
                .cloned()
                .ok_or_else(|| isp_core::Error::not_found("router", id))
        });
    }

    pub fn engine(self) -> Engine {
        self.engine_with(config())
    }

    pub fn engine_with(mut self, config: EngineConfig) -> Engine {
        // Jobs renew their leases before each router call or SMS send: unless
        // a test says otherwise, every lease is still ours.
        self.leases
            .expect_renew_all()
            .returning(|_, ids, _, _, _| Ok(vec![true; ids.len()]));
        let repos = Repositories {
            tenants: Arc::new(self.tenants),
            subscribers: Arc::new(self.subscribers),
            devices: Arc::new(self.devices),
            vouchers: Arc::new(self.vouchers),
            plans: Arc::new(self.plans),
            customers: Arc::new(self.customers),
            services: Arc::new(self.services),
            ledger: Arc::new(self.ledger),
            notices: Arc::new(self.notices),
            audit: Arc::new(self.audit),
            router_status: Arc::new(self.router_status),
            leases: Arc::new(self.leases),
            grants: Arc::new(self.grants),
            radius_sessions: isp_core::memory::repositories().radius_sessions,
        };
        Engine::new(
            EngineDeps {
                repos,
                directory: Arc::new(self.directory),
                driver: Arc::new(self.driver),
                sms: Arc::new(self.sms),
                clock: self.clock,
            },
            config,
        )
    }
}

/// What the notice mock saw.
#[derive(Debug, Default)]
pub struct NoticeLog {
    pub reserved: Vec<Notice>,
    pub claimed: Vec<NoticeId>,
    pub sent: Vec<NoticeId>,
    pub retried: Vec<(NoticeId, DateTime<Utc>)>,
    pub abandoned: Vec<NoticeId>,
    /// Notices marked `unknown` (a send whose outcome is unknown).
    pub unknown: Vec<NoticeId>,
}

/// The notice store's reservation: `Conflict` for a key already reserved.
fn reserve_in(log: &mut NoticeLog, new: &NewNotice) -> isp_core::Result<Notice> {
    if log.reserved.iter().any(|n| {
        n.recipient == new.recipient
            && n.kind == new.kind
            && n.deadline == new.deadline
            && n.subject == new.subject
    }) {
        return Err(isp_core::Error::conflict("notice", "already reserved"));
    }
    let n = Notice {
        id: NoticeId(log.reserved.len() as i64 + 1),
        tenant_id: new.tenant_id,
        recipient: new.recipient.clone(),
        kind: new.kind,
        deadline: new.deadline,
        subject: new.subject.clone(),
        body: new.body.clone(),
        status: NoticeStatus::Pending,
        attempts: 0,
        created_at: new.created_at,
        sent_at: None,
        lease: None,
    };
    log.reserved.push(n.clone());
    Ok(n)
}

/// Wires the notice mock to behave like a store: `reserve_all` keeps notices
/// (a second one with the same key is not reserved), `get` finds them,
/// `claim_pending` hands each pending notice out once, and `mark_all_sent`,
/// `abandon` and the notice leases' `retry_later_all` are logged.
pub fn notice_store(m: &mut Mocks) -> Arc<Mutex<NoticeLog>> {
    let notices = &mut m.notices;
    let log = Arc::new(Mutex::new(NoticeLog::default()));
    let l = log.clone();
    notices.expect_get().returning(move |id| {
        let log = l.lock().unwrap();
        log.reserved
            .iter()
            .find(|n| n.id == id)
            .cloned()
            .ok_or_else(|| isp_core::Error::not_found("notice", id))
    });
    let l = log.clone();
    notices.expect_reserve_all().returning(move |new| {
        let mut log = l.lock().unwrap();
        Ok(new
            .iter()
            .map(|n| reserve_in(&mut log, n).ok().map(|n| n.id))
            .collect())
    });
    let l = log.clone();
    notices
        .expect_find()
        .returning(move |to, kind, deadline, subject| {
            let log = l.lock().unwrap();
            Ok(log
                .reserved
                .iter()
                .find(|n| {
                    &n.recipient == to && n.kind == kind && n.deadline == deadline && n.subject == subject
                })
                .cloned())
        });
    let l = log.clone();
    notices.expect_claim_pending().returning(move |claim| {
        let mut log = l.lock().unwrap();
        let fresh: Vec<Notice> = log
            .reserved
            .iter()
            .filter(|n| !log.claimed.contains(&n.id))
            .take(claim.limit)
            .cloned()
            .collect();
        log.claimed.extend(fresh.iter().map(|n| n.id));
        Ok(fresh)
    });
    let l = log.clone();
    notices.expect_mark_all_sent().returning(move |ids, _, _| {
        l.lock().unwrap().sent.extend_from_slice(ids);
        Ok(vec![true; ids.len()])
    });
    let l = log.clone();
    m.leases
        .expect_retry_later_all()
        .withf(|kind, _, _, _| *kind == Leased::Notices)
        .returning(move |_, ids, _, until| {
            let mut log = l.lock().unwrap();
            log.retried.extend(ids.iter().map(|id| (NoticeId(*id), until)));
            Ok(vec![true; ids.len()])
        });
    let notices = &mut m.notices;
    let l = log.clone();
    notices.expect_abandon().returning(move |id, _| {
        l.lock().unwrap().abandoned.push(id);
        Ok(true)
    });
    let l = log.clone();
    notices.expect_mark_unknown().returning(move |id, _| {
        l.lock().unwrap().unknown.push(id);
        Ok(true)
    });
    notices.expect_abandon_stale().returning(|_| Ok(0));
    log
}

/// Runs `job`, then `deliver-notices` as the runtime starts it after a run
/// that reserved notices (the job itself never waits on the SMS gateway): one
/// report with the counts and failures of both.
pub async fn run_with_delivery(
    engine: &isp_core::jobs::Engine,
    job: isp_core::jobs::JobKind,
) -> isp_core::jobs::JobReport {
    use isp_core::jobs::{JobKind, RunOptions};
    let mut report = engine.run(job, RunOptions::default()).await.unwrap();
    assert_eq!(report.count("sms_sent"), 0, "{job} sends nothing itself");
    let delivery = engine
        .run(JobKind::DeliverNotices, RunOptions::default())
        .await
        .unwrap();
    for (k, v) in delivery.counts {
        *report.counts.entry(k).or_default() += v;
    }
    report.failures.extend(delivery.failures);
    report
}
