//! `ispd check-routers` and the static-IP firewall rule, in-process against a
//! simulated router and a SQLite database: missing, `--fix` adds it once, then ok.
#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use chrono::NaiveDate;
use isp_core::domain::{
    Connection, Money, NewCustomer, NewPlan, NewService, RosName, RouterId, ServiceStatus, TenantId,
};
use isp_routeros::sim::{SimConfig, SimRouter};
use ispd::cli::{check_routers, CheckOptions, EXIT_OK, EXIT_ROUTERS};

const FILTER: &str = "/ip/firewall/filter";

fn opts(fix: bool) -> CheckOptions {
    CheckOptions {
        json: false,
        max_skew_secs: 60,
        fix,
        lan_interface_list: RosName::parse("lan", "LAN").unwrap(),
    }
}

async fn check(config: &ispd::config::Config, fix: bool) -> (u8, String) {
    let mut out = Vec::new();
    let code = check_routers(config, &opts(fix), &mut out).await;
    (code, String::from_utf8(out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_routers_reports_the_missing_static_ip_rule_and_fix_adds_it_once() {
    let sim = SimRouter::start(
        SimConfig::new("api", "Sup3r-S3cret-Pw!"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let handle = sim.handle();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[storage]\nurl = \"sqlite://{}\"\n\n[[tenants]]\nid = 1\nslug = \"t1\"\ntime_zone = \"UTC\"\n\n\
         [[tenants.routers]]\nid = 1\nname = \"r1\"\naddress = \"{}\"\nusername = \"api\"\npassword = \"Sup3r-S3cret-Pw!\"\n\n\
         [[tenants.routers]]\nid = 2\nname = \"r2\"\naddress = \"{}\"\nusername = \"api\"\npassword = \"Sup3r-S3cret-Pw!\"\n",
        dir.path().join("ispd.db").display(),
        sim.addr(),
        sim.addr(),
    );
    let config = ispd::config::load_str(&text, "test", None, &HashMap::<String, String>::new()).unwrap();
    let storage = ispd::storage::Storage::open(&config.storage, true).await.unwrap();
    ispd::daemon::apply_config(&config, &storage.repos).await.unwrap();
    let repos = &storage.repos;
    let customer = repos
        .customers
        .insert(&NewCustomer {
            tenant_id: TenantId(1),
            name: "Asha".into(),
            phone: None,
        })
        .await
        .unwrap();
    let plan = repos
        .plans
        .insert(&NewPlan {
            tenant_id: TenantId(1),
            name: RosName::parse("plan", "static-home").unwrap(),
            price: Money::parse(
                "price",
                "30000",
                isp_core::domain::Currency::parse("currency", "TZS").unwrap(),
            )
            .unwrap(),
            duration: None,
            rate_limit: None,
        })
        .await
        .unwrap();
    let due = NaiveDate::from_ymd_opt(2026, 5, 20).unwrap();
    // Only router 1 has a static-IP service.
    repos
        .services
        .insert(&NewService {
            tenant_id: TenantId(1),
            customer_id: customer.id,
            router_id: RouterId(1),
            plan_id: plan.id,
            status: ServiceStatus::Active,
            connection: Connection::StaticIp {
                address: "10.0.0.2".parse().unwrap(),
            },
            next_billing_date: due,
            billing_day: 20,
            next_charge_on: due,
        })
        .await
        .unwrap();
    storage.close().await;

    let command = "/ip/firewall/filter add chain=forward in-interface-list=LAN src-address-list=!isp-allowed action=drop comment=isp:rule:static-ip";
    let (code, out) = check(&config, false).await;
    assert_eq!(code, EXIT_ROUTERS, "{out}");
    assert!(
        out.contains(&format!("static-ip rule: MISSING; add it with: {command}")),
        "{out}"
    );
    assert_eq!(
        out.matches("static-ip rule").count(),
        1,
        "router 2 has no static-IP service: {out}"
    );
    assert!(handle.rows(FILTER).is_empty(), "a check changes nothing");

    let (code, out) = check(&config, true).await;
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("static-ip rule: added (ok)"), "{out}");
    assert_eq!(handle.rows(FILTER).len(), 1);

    let (code, out) = check(&config, true).await;
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("static-ip rule: ok"), "{out}");
    assert_eq!(handle.rows(FILTER).len(), 1, "a rerun adds nothing");

    let (code, out) = check(&config, false).await;
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("static-ip rule: ok"), "{out}");
}
