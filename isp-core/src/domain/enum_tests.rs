//! The string enums: every word round-trips through `as_str`/`parse`, `Display`/`FromStr`
//! and serde, the stored words stay what the databases hold, and a bad word is an error
//! naming the field and the value.

use std::fmt::Debug;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::*;
use crate::error::Error;

fn round_trips<T>(all: &[T], as_str: fn(&T) -> &'static str, parse: fn(&str, &str) -> crate::Result<T>)
where
    T: Copy + PartialEq + Debug + std::fmt::Display + FromStr<Err = Error> + Serialize + DeserializeOwned,
{
    assert!(!all.is_empty());
    for v in all {
        let word = as_str(v);
        assert_eq!(parse("f", word).unwrap(), *v);
        assert_eq!(v.to_string(), word);
        assert_eq!(word.parse::<T>().unwrap(), *v);
        let json = serde_json::to_string(v).unwrap();
        assert_eq!(json, format!("\"{word}\""));
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
    }
    let err = parse("the_field", "no-such-word").unwrap_err();
    match &err {
        Error::InvalidInput { field, value, reason } => {
            assert_eq!(field, "the_field");
            assert_eq!(value, "no-such-word");
            assert!(reason.contains(as_str(&all[0])), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let serde_err = serde_json::from_str::<T>("\"no-such-word\"")
        .unwrap_err()
        .to_string();
    assert!(serde_err.contains("no-such-word"), "{serde_err}");
}

#[test]
fn every_string_enum_round_trips_and_names_field_and_value() {
    round_trips(Transport::ALL, Transport::as_str, Transport::parse);
    round_trips(VoucherStatus::ALL, VoucherStatus::as_str, VoucherStatus::parse);
    round_trips(
        VoucherExpiryReason::ALL,
        VoucherExpiryReason::as_str,
        VoucherExpiryReason::parse,
    );
    round_trips(ServiceStatus::ALL, ServiceStatus::as_str, ServiceStatus::parse);
    round_trips(LedgerKind::ALL, LedgerKind::as_str, LedgerKind::parse);
    round_trips(NoticeKind::ALL, NoticeKind::as_str, NoticeKind::parse);
    round_trips(NoticeStatus::ALL, NoticeStatus::as_str, NoticeStatus::parse);
    round_trips(AuditOutcome::ALL, AuditOutcome::as_str, AuditOutcome::parse);
}

#[test]
fn stored_words_are_unchanged() {
    let words = |all: &[&'static str]| all.join(",");
    assert_eq!(
        words(&Transport::ALL.iter().map(Transport::as_str).collect::<Vec<_>>()),
        "api,api-ssl,rest,radius"
    );
    assert_eq!(
        words(
            &VoucherStatus::ALL
                .iter()
                .map(VoucherStatus::as_str)
                .collect::<Vec<_>>()
        ),
        "unused,active,expired,revoked"
    );
    assert_eq!(
        words(
            &VoucherExpiryReason::ALL
                .iter()
                .map(VoucherExpiryReason::as_str)
                .collect::<Vec<_>>()
        ),
        "activation_deadline,purchase_deadline,usage_ended,router_user_gone,uptime_exhausted"
    );
    assert_eq!(
        words(
            &ServiceStatus::ALL
                .iter()
                .map(ServiceStatus::as_str)
                .collect::<Vec<_>>()
        ),
        "active,suspended,inactive,terminated,pending"
    );
    assert_eq!(
        words(&LedgerKind::ALL.iter().map(LedgerKind::as_str).collect::<Vec<_>>()),
        "charge,payment"
    );
    assert_eq!(
        words(&NoticeKind::ALL.iter().map(NoticeKind::as_str).collect::<Vec<_>>()),
        "hotspot_expires_soon,hotspot_expired,service_expires_24h,service_expires_3h,payment_due,router_state_changed"
    );
    assert_eq!(
        words(
            &NoticeStatus::ALL
                .iter()
                .map(NoticeStatus::as_str)
                .collect::<Vec<_>>()
        ),
        "pending,sent,abandoned,unknown"
    );
    assert_eq!(
        words(
            &AuditOutcome::ALL
                .iter()
                .map(AuditOutcome::as_str)
                .collect::<Vec<_>>()
        ),
        "success,retry,failure,skipped"
    );
}

#[test]
fn from_str_names_the_enum_field() {
    let err = "sideways".parse::<ServiceStatus>().unwrap_err().to_string();
    assert!(
        err.contains("service_status") && err.contains("sideways"),
        "{err}"
    );
    let err = serde_json::from_str::<Transport>("\"telnet\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("transport") && err.contains("telnet"), "{err}");
}

#[test]
fn notice_kinds_order_as_declared() {
    let mut sorted = NoticeKind::ALL.to_vec();
    sorted.sort();
    assert_eq!(sorted, NoticeKind::ALL);
}
