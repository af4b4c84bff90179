//! A newer server opens an older database without loss: a SQLite database made by the
//! migrations up to 0003 (before protocol updates), holding a withdrawal, is migrated by
//! opening it, keeps the withdrawal with its id (a device's pull cursor), and takes protocol
//! updates after it.

use std::borrow::Cow;

use attune_core::Timestamp;
use attune_server::store::{ControlKind, PublishOutcome, SqliteStore, Store};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;

#[tokio::test]
async fn a_database_from_before_protocol_updates_keeps_its_withdrawals() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let path = dir.path().join(attune_server::store::DATABASE_FILE);
    let all = sqlx::migrate!("./migrations/sqlite");
    let before = Migrator {
        migrations: Cow::Owned(
            all.migrations
                .iter()
                .filter(|migration| migration.version < 4)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    assert_eq!(before.migrations.len(), 3);
    let pool = sqlx::SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .expect("open the old database");
    before.run(&pool).await.expect("migrate to 0003");
    for code in ["VIG-001", "VIG-002"] {
        sqlx::query(
            "INSERT INTO control_messages (kind, participant_code, created_at) \
             VALUES ('withdrawal', $1, 5)",
        )
        .bind(code)
        .execute(&pool)
        .await
        .expect("old withdrawal");
    }
    pool.close().await;

    let store = SqliteStore::open(dir.path())
        .await
        .expect("open and migrate");
    let kept = store.control_messages_after(0).await.unwrap();
    let kept: Vec<(i64, ControlKind)> = kept.into_iter().map(|m| (m.id, m.kind)).collect();
    assert_eq!(
        kept,
        vec![
            (
                1,
                ControlKind::Withdrawal {
                    participant_code: "VIG-001".into()
                }
            ),
            (
                2,
                ControlKind::Withdrawal {
                    participant_code: "VIG-002".into()
                }
            ),
        ]
    );
    let published = store
        .publish_protocol("vig-evaluation", 2, "{}", Timestamp(6))
        .await
        .unwrap();
    assert!(matches!(published, PublishOutcome::Published(p) if p.message_id == 3));
    // The new CHECK holds: a withdrawal without its code is refused.
    let refused =
        sqlx::query("INSERT INTO control_messages (kind, created_at) VALUES ('withdrawal', 7)")
            .execute(store.pool())
            .await;
    assert!(refused.is_err());
}

/// A database from before code reservations (migrations up to 0005), whose tablets counted
/// codes themselves: after 0006 the first reserved number of a prefix is above the codes it
/// holds, so the codes already in the field keep theirs and are never given again.
#[tokio::test]
async fn a_database_from_before_code_reservations_keeps_its_codes_unique() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let path = dir.path().join(attune_server::store::DATABASE_FILE);
    let all = sqlx::migrate!("./migrations/sqlite");
    let before = Migrator {
        migrations: Cow::Owned(
            all.migrations
                .iter()
                .filter(|migration| migration.version < 6)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    let pool = sqlx::SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .expect("open the old database");
    before.run(&pool).await.expect("migrate to 0005");
    sqlx::query(
        "INSERT INTO devices (id, fieldworker, name, public_key, token_hash, status, \
         enrolled_at) VALUES ('d1', 'Ana', 'Tablet', 'pk', 't1', 'active', 1)",
    )
    .execute(&pool)
    .await
    .expect("old device");
    for (record, code) in [("r1", "C07"), ("r2", "C03"), ("r3", "K02")] {
        sqlx::query(
            "INSERT INTO envelopes (record_id, rev, hash, kind, participant_code, device_id, \
             time, received_at, envelope) VALUES ($1, 1, 'h', 'participant', $2, 'd1', 1, 1, '{}')",
        )
        .bind(record)
        .bind(code)
        .execute(&pool)
        .await
        .expect("old participant");
    }
    pool.close().await;

    let store = SqliteStore::open(dir.path())
        .await
        .expect("open and migrate");
    let wants = |prefix: &str| attune_server::store::ReserveWant {
        prefix: prefix.into(),
        want: 3,
        after: 0,
    };
    let blocks = store
        .reserve_codes("d1", &[wants("C"), wants("K"), wants("P")], Timestamp(2))
        .await
        .unwrap();
    let firsts: Vec<(&str, u32)> = blocks
        .iter()
        .map(|b| (b.prefix.as_str(), b.first))
        .collect();
    assert_eq!(firsts, [("C", 8), ("K", 3), ("P", 1)]);
}
