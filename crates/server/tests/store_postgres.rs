//! The shared store suite on a real PostgreSQL: a fresh database per test in the server named
//! by `ATTUNE_TEST_POSTGRES_URL` (`cargo xtask test` starts one and sets it).
//!
//! Without the variable the tests are skipped with a note, except under CI (`CI` set), where a
//! missing database is a failure rather than a silent pass.

use std::sync::Arc;

use attune_server::store::{PostgresStore, Store};
use sqlx::Connection as _;

const URL_VAR: &str = "ATTUNE_TEST_POSTGRES_URL";

async fn get_store() -> Option<Arc<dyn Store>> {
    let url = fresh_database().await?;
    Some(Arc::new(
        PostgresStore::connect(&url)
            .await
            .expect("connect to the test database"),
    ))
}

/// The URL of a new, empty database, or `None` when no PostgreSQL is configured.
async fn fresh_database() -> Option<String> {
    let Some(base) = std::env::var(URL_VAR).ok().filter(|url| !url.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{URL_VAR} is not set: the PostgreSQL store tests need a real PostgreSQL \
             (`cargo xtask test` starts one), and CI must not skip them"
        );
        eprintln!(
            "note: {URL_VAR} is not set, so this PostgreSQL test is skipped \
             (`cargo xtask test` starts a PostgreSQL and runs it)"
        );
        return None;
    };
    let name = format!("attune_t_{}", uuid_like());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {URL_VAR}: {error}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let url = match base.rsplit_once('/') {
        Some((server, _database)) => format!("{server}/{name}"),
        None => panic!("{URL_VAR} must end with /DATABASE"),
    };
    Some(url)
}

fn uuid_like() -> String {
    attune_core::RecordId::new(attune_core::Timestamp(0))
        .to_string()
        .replace('-', "")
}

attune_server::store_conformance_tests!(get_store);

/// A newer server opens an older database without loss: a database made by the migrations up
/// to 0003 (before protocol updates), holding a withdrawal, keeps it with its id (a device's
/// pull cursor) and takes protocol updates after it.
#[tokio::test]
async fn a_database_from_before_protocol_updates_keeps_its_withdrawals() {
    use attune_server::store::{ControlKind, PublishOutcome};
    let Some(url) = fresh_database().await else {
        return;
    };
    let all = sqlx::migrate!("./migrations/postgres");
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|migration| migration.version < 4)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    before.run(&pool).await.expect("migrate to 0003");
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO control_messages (kind, participant_code, created_at) \
         VALUES ('withdrawal', 'VIG-001', 5) RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .expect("old withdrawal");
    pool.close().await;

    let store = PostgresStore::connect(&url).await.expect("migrate");
    let kept = store.control_messages_after(0).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, id);
    assert_eq!(
        kept[0].kind,
        ControlKind::Withdrawal {
            participant_code: "VIG-001".into()
        }
    );
    let published = store
        .publish_protocol("vig-evaluation", 2, "{}", attune_core::Timestamp(6))
        .await
        .unwrap();
    assert!(matches!(published, PublishOutcome::Published(p) if p.message_id > id));
    let refused =
        sqlx::query("INSERT INTO control_messages (kind, created_at) VALUES ('withdrawal', 7)")
            .execute(store.pool())
            .await;
    assert!(refused.is_err());
}

/// A PostgreSQL database from before code reservations (migrations up to 0005), whose
/// tablets counted codes themselves: after 0006 the first reserved number of a prefix is
/// above the codes it holds, so the codes already in the field are never given again.
#[tokio::test]
async fn a_database_from_before_code_reservations_keeps_its_codes_unique() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let all = sqlx::migrate!("./migrations/postgres");
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|migration| migration.version < 6)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
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

    let store = PostgresStore::connect(&url).await.expect("migrate");
    let wants = |prefix: &str| attune_server::store::ReserveWant {
        prefix: prefix.into(),
        want: 3,
        after: 0,
    };
    let blocks = store
        .reserve_codes(
            "d1",
            &[wants("C"), wants("K"), wants("P")],
            attune_core::Timestamp(2),
        )
        .await
        .unwrap();
    let firsts: Vec<(&str, u32)> = blocks
        .iter()
        .map(|b| (b.prefix.as_str(), b.first))
        .collect();
    assert_eq!(firsts, [("C", 8), ("K", 3), ("P", 1)]);
}
