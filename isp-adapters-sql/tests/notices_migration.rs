//! The SQLite migration `20260401000000_notices_unknown_subject` on a database
//! at the schema before it, holding notices: rows, ids and the id sequence
//! are kept, the status `unknown` is accepted, the subject is part of the
//! unique key, and the index is back.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

const BEFORE: [&str; 2] = [
    include_str!("../migrations/sqlite/20260101000000_initial.sql"),
    include_str!("../migrations/sqlite/20260301000000_hotspot_names.sql"),
];
const MIGRATION: &str = include_str!("../migrations/sqlite/20260401000000_notices_unknown_subject.sql");

async fn insert(
    pool: &SqlitePool,
    recipient: &str,
    subject: Option<&str>,
    status: &str,
) -> sqlx::Result<i64> {
    let sql = match subject {
        Some(_) => {
            "INSERT INTO notices (tenant_id, recipient, kind, deadline, subject, body, status, created_at) \
                    VALUES (1, $1, 'payment_due', 1000, $3, 'b', $2, 1) RETURNING id"
        }
        None => {
            "INSERT INTO notices (tenant_id, recipient, kind, deadline, body, status, created_at) \
                 VALUES (1, $1, 'payment_due', 1000, 'b', $2, 1) RETURNING id"
        }
    };
    let row = sqlx::query(sql)
        .bind(recipient)
        .bind(status)
        .bind(subject.unwrap_or(""))
        .fetch_one(pool)
        .await?;
    Ok(row.get::<i64, _>("id"))
}

#[tokio::test]
async fn the_notices_rebuild_keeps_rows_ids_and_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("old.db"))
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    for sql in BEFORE {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    }
    assert_eq!(insert(&pool, "+255700000001", None, "pending").await.unwrap(), 1);
    assert_eq!(insert(&pool, "+255700000002", None, "sent").await.unwrap(), 2);
    assert_eq!(
        insert(&pool, "+255700000003", None, "abandoned").await.unwrap(),
        3
    );
    sqlx::query("DELETE FROM notices WHERE id = 3")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        insert(&pool, "+255700000004", None, "unknown").await.is_err(),
        "the old CHECK refuses 'unknown'"
    );

    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql(MIGRATION).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();

    let rows = sqlx::query("SELECT id, recipient, subject, status FROM notices ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let got: Vec<(i64, String, String, String)> = rows
        .iter()
        .map(|r| (r.get("id"), r.get("recipient"), r.get("subject"), r.get("status")))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "+255700000001".into(), String::new(), "pending".into()),
            (2, "+255700000002".into(), String::new(), "sent".into()),
        ]
    );
    assert_eq!(
        insert(&pool, "+255700000004", Some(""), "unknown").await.unwrap(),
        4,
        "'unknown' accepted; the id sequence goes on after the deleted 3"
    );
    insert(&pool, "+255700000001", Some("service:1"), "pending")
        .await
        .expect("same recipient, kind and deadline, another subject");
    insert(&pool, "+255700000001", Some("service:2"), "pending")
        .await
        .expect("and a third subject");
    assert!(
        insert(&pool, "+255700000001", Some("service:2"), "pending")
            .await
            .is_err(),
        "the full key is still unique"
    );
    assert!(
        insert(&pool, "+255700000001", Some(""), "pending").await.is_err(),
        "the stored notice keeps its key with subject ''"
    );
    let index: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' AND name = 'notices_by_status' AND tbl_name = 'notices'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get("n");
    assert_eq!(index, 1);
    let scratch: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'notices_rebuild'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(scratch, 0);
}
