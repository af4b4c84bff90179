//! The shared store suite on a real PostgreSQL: a fresh database per test in the server named
//! by `ATTUNE_TEST_POSTGRES_URL` (`cargo xtask test` starts one and sets it).
//!
//! Without the variable the tests are skipped with a note, except under CI (`CI` set), where a
//! missing database is a failure rather than a silent pass.

use std::sync::Arc;

use attune_server::store::suite::{signed, withdrawal};
use attune_server::store::{PostgresStore, Store};

#[path = "support/postgres.rs"]
mod postgres;
use postgres::fresh_database;

async fn get_store() -> Option<Arc<dyn Store>> {
    let url = fresh_database().await?;
    Some(Arc::new(
        PostgresStore::connect(&url)
            .await
            .expect("connect to the test database"),
    ))
}

attune_server::store_conformance_tests!(get_store);

/// A newer server opens an older database without loss: a database made by the migrations up
/// to 0003 (before protocol updates), holding a withdrawal, keeps it with its id (a device's
/// pull cursor) and takes protocol updates after it.
#[tokio::test]
async fn a_database_from_before_protocol_updates_keeps_its_withdrawals() {
    use attune_server::store::PublishOutcome;
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
    let kept = store.withdrawals().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].message_id, id);
    assert_eq!(
        (kept[0].participant_id, kept[0].participant_code.as_str()),
        (None, "VIG-001")
    );
    let published = store
        .publish_protocol("vig-evaluation", 2, &signed(1, protocol("{}")))
        .await
        .unwrap();
    assert!(matches!(published, PublishOutcome::Published(p) if p.message_id > id));
    let refused =
        sqlx::query("INSERT INTO control_messages (kind, created_at) VALUES ('withdrawal', 7)")
            .execute(store.pool())
            .await;
    assert!(refused.is_err());
}

fn protocol(json: &str) -> attune_server::store::ControlKind {
    attune_server::store::ControlKind::ProtocolUpdate {
        protocol: json.into(),
    }
}

/// A database made by the migrations up to 0004 (before signed study instructions) keeps its
/// control messages readable, never serves them unsigned, and numbers signed ones after them.
#[tokio::test]
async fn a_database_from_before_signed_instructions_keeps_its_messages_readable_unserved() {
    use attune_server::store::{AddOutcome, PublishOutcome};
    let Some(url) = fresh_database().await else {
        return;
    };
    let all = sqlx::migrate!("./migrations/postgres");
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|migration| migration.version < 5)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    before.run(&pool).await.expect("migrate to 0004");
    sqlx::query("INSERT INTO study (id, public_key, created_at) VALUES (1, 'old-key', 1)")
        .execute(&pool)
        .await
        .expect("old study");
    let withdrawal_id: i64 = sqlx::query_scalar(
        "INSERT INTO control_messages (kind, participant_code, created_at) \
         VALUES ('withdrawal', 'C01', 5) RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .expect("old withdrawal");
    sqlx::query(
        "INSERT INTO control_messages (kind, protocol_id, protocol_version, protocol, created_at) \
         VALUES ('protocol_update', 'vig-evaluation', 3, '{}', 6)",
    )
    .execute(&pool)
    .await
    .expect("old protocol update");
    pool.close().await;

    let store = PostgresStore::connect(&url).await.expect("migrate");
    let withdrawals = store.withdrawals().await.unwrap();
    assert_eq!(
        (
            withdrawals[0].message_id,
            withdrawals[0].seq,
            withdrawals[0].participant_id
        ),
        (withdrawal_id, None, None)
    );
    assert_eq!(store.published_protocols().await.unwrap()[0].seq, None);
    assert!(store.control_messages_after(0).await.unwrap().is_empty());
    assert_eq!(
        store
            .study_keys()
            .await
            .unwrap()
            .unwrap()
            .signing_public_key,
        None
    );
    assert!(store.set_study_signing_key("signing", "sig").await.unwrap());
    assert_eq!(store.next_control_seq().await.unwrap(), 1);
    let AddOutcome::Added(first) = store.add_withdrawal(&withdrawal(1, "C01")).await.unwrap()
    else {
        panic!("added");
    };
    assert!(first.id > withdrawal_id);
    assert!(matches!(
        store
            .publish_protocol("vig-evaluation", 3, &signed(2, protocol("{}")))
            .await
            .unwrap(),
        PublishOutcome::Published(p) if p.seq == Some(2)
    ));
    assert_eq!(store.control_messages_after(0).await.unwrap().len(), 2);
    for bad in [
        "INSERT INTO control_messages (seq, kind, participant_code, created_at, signature) \
         VALUES (9, 'withdrawal', 'C02', 7, 'sig')",
        "INSERT INTO control_messages (seq, kind, participant_id, participant_code, created_at) \
         VALUES (9, 'withdrawal', 'id', 'C02', 7)",
        "INSERT INTO control_messages (kind, device_id, reason, created_at) \
         VALUES ('revocation', 'd', 'r', 7)",
    ] {
        assert!(
            sqlx::query(bad).execute(store.pool()).await.is_err(),
            "{bad}"
        );
    }
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

/// Sealed, signed participant-record envelopes for the old-database tests.
#[path = "support/old_data.rs"]
mod old_data;

/// A database from before the server checked codes (migrations up to 0006), in which two
/// tablets each gave a participant the code C01 and a conflict was kept: migration 0007 keeps
/// everything, gives C01 to the record that arrived first, notes the duplicate, keeps the
/// old conflict as `rev_taken`; `check` (verify::duplicate_codes) reports both holders, and a
/// later revision of the second holder is kept as `code_taken`.
#[tokio::test]
async fn a_database_with_duplicate_codes_is_migrated_keeping_everything_and_reports_them() {
    use attune_server::store::ConflictReason;
    use attune_server::verify::duplicate_codes;
    use old_data::OldDevice;

    let Some(url) = fresh_database().await else {
        return;
    };
    let all = sqlx::migrate!("./migrations/postgres");
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|migration| migration.version < 7)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    before.run(&pool).await.expect("migrate to before 0007");
    let (first, second) = (OldDevice::new(), OldDevice::new());
    for (device, fieldworker) in [(&first, "Ana"), (&second, "Ben")] {
        sqlx::query(
            "INSERT INTO devices (id, fieldworker, name, public_key, token_hash, status, \
             enrolled_at) VALUES ($1, $2, 'Tablet', $3, $4, 'active', 0)",
        )
        .bind(device.id.to_string())
        .bind(fieldworker)
        .bind(device.key.public_key().to_text())
        .bind(format!("token-{}", device.id))
        .execute(&pool)
        .await
        .expect("old device");
    }
    let anas = first.participant("Ana's C01");
    let bens = second.participant("Ben's C01");
    let mut bens_other = bens.clone();
    bens_other.body = b"Ben's C01, another version".to_vec();
    bens_other.hash = bens_other.compute_hash();
    let rows = [
        ("envelopes", &first, first.seal(&anas, "C01")),
        ("envelopes", &second, second.seal(&bens, "C01")),
        ("conflicts", &second, second.seal(&bens_other, "C01")),
    ];
    for (table, device, envelope) in &rows {
        sqlx::query(&format!(
            "INSERT INTO {table} (record_id, rev, hash, kind, participant_code, device_id, \
             time, received_at, envelope) VALUES ($1, 1, $2, 'participant', 'C01', $3, 2, 3, $4)"
        ))
        .bind(envelope.record_id.to_string())
        .bind(envelope.hash.to_hex())
        .bind(device.id.to_string())
        .bind(serde_json::to_string(envelope).unwrap())
        .execute(&pool)
        .await
        .expect("old envelope");
    }
    pool.close().await;

    let store = PostgresStore::connect(&url).await.expect("migrate");
    // Nothing deleted or renamed.
    let stored = store.envelopes().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|s| s.envelope.participant_code.as_deref() == Some("C01"))
    );
    let kept = store.kept_conflicts().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reason, ConflictReason::RevTaken);
    assert_eq!(kept[0].stored.envelope, rows[2].2);
    // The duplicate is found and noted.
    let holder: String =
        sqlx::query_scalar("SELECT record_id FROM participant_codes WHERE code = 'C01'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(holder, anas.record_id.to_string());
    let noted: String = sqlx::query_scalar(
        "SELECT value FROM server_meta WHERE key = 'duplicate_participant_codes_at_0007'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(noted, "1");
    let duplicates = duplicate_codes(&stored);
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].code, "C01");
    assert_eq!(
        duplicates[0].records,
        vec![
            (anas.record_id, first.id.to_string()),
            (bens.record_id, second.id.to_string())
        ]
    );
    // From now on the code is checked: Ana's record goes on, Ben's is kept apart.
    let by = |device: &OldDevice| attune_core::Authorship {
        device: device.id,
        author: attune_core::ProfileId::new(attune_core::Timestamp(1)),
        time: attune_core::Timestamp(4),
    };
    let anas_next = anas.next(b"edited".to_vec(), by(&first)).unwrap();
    let bens_next = bens.next(b"edited".to_vec(), by(&second)).unwrap();
    let pushed = store
        .push_checked(
            &first.id.to_string(),
            &[first.seal(&anas_next, "C01")],
            attune_core::Timestamp(5),
        )
        .await
        .unwrap();
    assert_eq!(pushed[0].reason, None);
    let pushed = store
        .push_checked(
            &second.id.to_string(),
            &[second.seal(&bens_next, "C01")],
            attune_core::Timestamp(5),
        )
        .await
        .unwrap();
    assert_eq!(pushed[0].reason, Some(ConflictReason::CodeTaken));
}
