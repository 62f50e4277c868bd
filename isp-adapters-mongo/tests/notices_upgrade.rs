//! `ensure_indexes` on a database from before the subject was part of the
//! notice key: stored notices without a subject get "", the old
//! (recipient, kind, deadline) unique index is dropped, and a customer's two
//! services then get a notice each while a stored notice keeps its key.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use chrono::{TimeZone, Utc};
use futures::TryStreamExt as _;
use isp_core::domain::{NewNotice, NoticeKind, PhoneNumber, TenantId};
use isp_core::ports::NoticeRepoExt as _;
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

/// The names of the indexes of `coll` that `pick` picks.
async fn index_names(
    coll: &mongodb::Collection<Document>,
    pick: impl Fn(&IndexModel) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = coll.list_indexes().await.unwrap();
    while let Some(m) = cursor.try_next().await.unwrap() {
        if pick(&m) {
            out.extend(m.options.and_then(|o| o.name));
        }
    }
    out
}

#[tokio::test]
async fn ensure_indexes_brings_old_notices_to_the_subject_key() {
    let Some(store) = common::store().await else {
        return;
    };
    let notices = store.database().collection::<Document>("notices");
    let deadline = Utc.with_ymd_and_hms(2026, 5, 10, 0, 0, 0).unwrap();
    // The old shape: no subject field, the old unique index. Indexes are
    // found by their keys: nx-27017 names them itself.
    let with_subject = |m: &IndexModel| m.keys.contains_key("subject");
    for name in index_names(&notices, with_subject).await {
        notices.drop_index(name).await.unwrap();
    }
    notices
        .create_index(
            IndexModel::builder()
                .keys(doc! { "recipient": 1, "kind": 1, "deadline": 1 })
                .options(
                    IndexOptions::builder()
                        .name("recipient_kind_deadline_unique".to_owned())
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    let r = store.repositories();
    let new = |subject: &str| NewNotice {
        tenant_id: TenantId(1),
        recipient: PhoneNumber::parse("phone", "+255700000001").unwrap(),
        kind: NoticeKind::PaymentDue,
        deadline,
        subject: subject.into(),
        body: format!("for {subject:?}"),
        created_at: deadline,
    };
    let old = r.notices.reserve(&new("")).await.unwrap();
    notices
        .update_one(doc! { "_id": old.id.0 }, doc! { "$unset": { "subject": "" } })
        .await
        .unwrap();
    let raw = notices.find_one(doc! { "_id": old.id.0 }).await.unwrap().unwrap();
    assert!(!raw.contains_key("subject"), "stored as before: {raw:?}");

    store.ensure_indexes().await.unwrap();
    store.ensure_indexes().await.unwrap(); // idempotent
    let old_key = |m: &IndexModel| {
        m.keys.keys().map(String::as_str).collect::<Vec<_>>() == ["recipient", "kind", "deadline"]
    };
    assert!(
        index_names(&notices, old_key).await.is_empty(),
        "the old key index is gone"
    );
    assert_eq!(
        index_names(&notices, with_subject).await.len(),
        1,
        "the new one is there"
    );
    let raw = notices.find_one(doc! { "_id": old.id.0 }).await.unwrap().unwrap();
    assert_eq!(raw.get_str("subject").unwrap(), "");

    let stored = r
        .notices
        .find(
            &PhoneNumber::parse("phone", "+255700000001").unwrap(),
            NoticeKind::PaymentDue,
            deadline,
            "",
        )
        .await
        .unwrap()
        .expect("the stored notice, found by its key with subject \"\"");
    assert_eq!(stored.id, old.id);
    r.notices.reserve(&new("service:1")).await.unwrap();
    r.notices.reserve(&new("service:2")).await.unwrap();
    assert!(r.notices.reserve(&new("")).await.unwrap_err().is_conflict());
    assert!(r
        .notices
        .reserve(&new("service:2"))
        .await
        .unwrap_err()
        .is_conflict());
    common::drop(&store).await;
}
