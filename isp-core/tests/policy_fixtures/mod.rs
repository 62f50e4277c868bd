//! Builders and proptest strategies shared by the policy and job tests.
#![allow(dead_code, unreachable_pub)]

use std::net::Ipv4Addr;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use isp_core::domain::*;
use proptest::prelude::*;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

pub fn tz(name: &str) -> Tz {
    name.parse().unwrap()
}

pub fn name(s: &str) -> RosName {
    RosName::parse("name", s).unwrap()
}

pub fn phone(n: i64) -> PhoneNumber {
    PhoneNumber::parse("phone", &format!("+2557{:08}", n)).unwrap()
}

pub fn mac(n: u8) -> MacAddress {
    MacAddress::from_octets([0x02, 0, 0, 0, 0, n])
}

pub fn tenant(id: i64, zone: &str) -> Tenant {
    Tenant {
        id: TenantId(id),
        slug: name(&format!("tenant-{id}")),
        name: format!("Tenant {id}"),
        time_zone: tz(zone),
    }
}

pub fn router(id: i64, tenant: i64, enabled: bool) -> Router {
    Router {
        id: RouterId(id),
        tenant_id: TenantId(tenant),
        name: format!("Router{id}"),
        address: format!("10.0.{id}.1:8728"),
        transport: Transport::Api,
        credentials: RouterCredentials::new("api", "secret-password"),
        tls_fingerprint: None,
        enabled,
    }
}

pub fn subscriber(id: i64, tenant: i64, paid_until: DateTime<Utc>, active: bool) -> Subscriber {
    Subscriber {
        id: SubscriberId(id),
        tenant_id: TenantId(tenant),
        phone: phone(id),
        username: name(&format!("2557{:08}", id)),
        paid_until,
        active,
        disconnected_at: None,
        attempts: 0,
        lease: None,
    }
}

pub fn device(
    id: i64,
    sub: i64,
    mac_n: u8,
    router: Option<i64>,
    active: bool,
    last_seen: DateTime<Utc>,
) -> Device {
    Device {
        id: DeviceId(id),
        subscriber_id: SubscriberId(sub),
        mac: mac(mac_n),
        router_id: router.map(RouterId),
        last_seen,
        active,
    }
}

pub fn tzs() -> Currency {
    Currency::parse("currency", "TZS").unwrap()
}

pub fn plan(id: i64, tenant: i64, price: &str, rate: Option<&str>) -> Plan {
    Plan {
        id: PlanId(id),
        tenant_id: TenantId(tenant),
        name: name(&format!("plan-{id}")),
        price: Money::parse("price", price, tzs()).unwrap(),
        duration: None,
        rate_limit: rate.map(|r| RateLimit::parse("rate", r).unwrap()),
    }
}

pub fn pppoe(user: &str) -> Connection {
    Connection::Pppoe {
        username: name(user),
        password: SecretPassword::parse("password", "pw-123456").unwrap(),
        profile: name("default"),
    }
}

pub fn static_ip(last: u8) -> Connection {
    Connection::StaticIp {
        address: Ipv4Addr::new(10, 9, 0, last),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn service(
    id: i64,
    tenant: i64,
    router: i64,
    status: ServiceStatus,
    connection: Connection,
    next_billing_date: NaiveDate,
    provisioned: bool,
) -> Service {
    Service {
        id: ServiceId(id),
        tenant_id: TenantId(tenant),
        customer_id: CustomerId(id),
        router_id: RouterId(router),
        plan_id: PlanId(1),
        status,
        connection,
        next_billing_date,
        billing_day: 1,
        next_charge_on: next_billing_date,
        provisioned,
        provisioned_at: None,
        deprovisioned_at: None,
        lease: None,
        attempts: 0,
    }
}

pub fn voucher(id: i64, router: i64, code: &str, status: VoucherStatus) -> Voucher {
    Voucher {
        id: VoucherId(id),
        tenant_id: TenantId(1),
        router_id: RouterId(router),
        code: name(code),
        plan_id: PlanId(1),
        status,
        activation_deadline: None,
        purchase_deadline: None,
        duration: RosDuration::from_secs(3600),
        started_at: None,
        expected_end: None,
        expired_reason: None,
        expired_at: None,
        removed_from_router: false,
        lease: None,
        attempts: 0,
    }
}

// ---- strategies ----

/// Instants between 2020 and 2032, to the second.
pub fn arb_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (1_577_836_800i64..1_956_528_000i64).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

/// An offset from -3 days to +3 days, to the second, biased to small values.
pub fn arb_offset() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (-120i64..=120).prop_map(Duration::seconds),
        (-3 * 86_400i64..=3 * 86_400).prop_map(Duration::seconds),
    ]
}

/// Dates from 1999 to 2035.
pub fn arb_date() -> impl Strategy<Value = NaiveDate> {
    (0i64..(36 * 366)).prop_map(|n| d(1999, 1, 1) + Duration::days(n))
}

/// Zones with DST (north and south), midnight transitions, half-hour and
/// quarter-hour offsets, a skipped day, and UTC.
pub const ZONES: &[&str] = &[
    "UTC",
    "Africa/Dar_es_Salaam",
    "Africa/Nairobi",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Asia/Beirut",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Pacific/Chatham",
];

pub fn arb_tz() -> impl Strategy<Value = Tz> {
    proptest::sample::select(ZONES).prop_map(tz)
}
