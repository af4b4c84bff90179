//! A newer server opens an older database without loss: SQLite databases made by the
//! migrations up to 0003 (before protocol updates) and up to 0004 (before signed study
//! instructions) are migrated by opening them; their control messages keep their ids (the
//! devices' pull cursors) and stay readable, and new signed messages come after them.

use std::borrow::Cow;

use attune_core::{ParticipantId, Timestamp};
use attune_server::store::suite::{signed, withdrawal};
use attune_server::store::{AddOutcome, ControlKind, PublishOutcome, SqliteStore, Store};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;

/// A database at `dir` migrated up to (and without) `version`.
async fn database_before(dir: &std::path::Path, version: i64) -> sqlx::SqlitePool {
    let path = dir.join(attune_server::store::DATABASE_FILE);
    let all = sqlx::migrate!("./migrations/sqlite");
    let before = Migrator {
        migrations: Cow::Owned(
            all.migrations
                .iter()
                .filter(|migration| migration.version < version)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    assert_eq!(before.migrations.len() as i64, version - 1);
    let pool = sqlx::SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .expect("open the old database");
    before.run(&pool).await.expect("migrate the old database");
    pool
}

#[tokio::test]
async fn a_database_from_before_protocol_updates_keeps_its_withdrawals() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let pool = database_before(dir.path(), 4).await;
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
    let kept: Vec<(i64, Option<ParticipantId>, String)> = store
        .withdrawals()
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.message_id, w.participant_id, w.participant_code))
        .collect();
    assert_eq!(
        kept,
        vec![(1, None, "VIG-001".into()), (2, None, "VIG-002".into())]
    );
    let published = store
        .publish_protocol("vig-evaluation", 2, &signed(1, protocol("{}")))
        .await
        .unwrap();
    assert!(matches!(published, PublishOutcome::Published(p) if p.message_id == 3));
    // The CHECK holds: a withdrawal without its code is refused.
    let refused =
        sqlx::query("INSERT INTO control_messages (kind, created_at) VALUES ('withdrawal', 7)")
            .execute(store.pool())
            .await;
    assert!(refused.is_err());
}

fn protocol(json: &str) -> ControlKind {
    ControlKind::ProtocolUpdate {
        protocol: json.into(),
    }
}

#[tokio::test]
async fn a_database_from_before_signed_instructions_keeps_its_messages_readable_unserved() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let pool = database_before(dir.path(), 5).await;
    sqlx::query("INSERT INTO study (id, public_key, created_at) VALUES (1, 'old-key', 1)")
        .execute(&pool)
        .await
        .expect("old study");
    sqlx::query(
        "INSERT INTO control_messages (kind, participant_code, created_at) \
         VALUES ('withdrawal', 'C01', 5)",
    )
    .execute(&pool)
    .await
    .expect("old withdrawal");
    sqlx::query(
        "INSERT INTO control_messages (kind, protocol_id, protocol_version, protocol, created_at) \
         VALUES ('protocol_update', 'vig-evaluation', 3, '{\"version\": 3}', 6)",
    )
    .execute(&pool)
    .await
    .expect("old protocol update");
    pool.close().await;

    let store = SqliteStore::open(dir.path())
        .await
        .expect("open and migrate");
    // Readable, with what they had...
    let withdrawals = store.withdrawals().await.unwrap();
    assert_eq!(withdrawals.len(), 1);
    assert_eq!(
        (
            withdrawals[0].message_id,
            withdrawals[0].seq,
            withdrawals[0].participant_id,
            withdrawals[0].participant_code.as_str()
        ),
        (1, None, None, "C01")
    );
    let published = store.published_protocols().await.unwrap();
    assert_eq!(
        (
            published[0].message_id,
            published[0].seq,
            published[0].version
        ),
        (2, None, 3)
    );
    // ...but unsigned, so never served to devices.
    assert!(store.control_messages_after(0).await.unwrap().is_empty());
    let study = store.study_keys().await.unwrap().unwrap();
    assert_eq!(
        (study.public_key.as_str(), study.signing_public_key),
        ("old-key", None)
    );
    assert!(store.set_study_signing_key("signing", "sig").await.unwrap());

    // Signed instructions follow, numbered from 1, after the old ids.
    assert_eq!(store.next_control_seq().await.unwrap(), 1);
    let AddOutcome::Added(first) = store.add_withdrawal(&withdrawal(1, "C01")).await.unwrap()
    else {
        panic!("added");
    };
    assert_eq!((first.id, first.seq), (3, 1));
    // The version published unsigned may be published again, signed; an older one may not.
    assert!(matches!(
        store
            .publish_protocol("vig-evaluation", 2, &signed(2, protocol("{}")))
            .await
            .unwrap(),
        PublishOutcome::NotNewer { latest: 3 }
    ));
    assert!(matches!(
        store
            .publish_protocol("vig-evaluation", 3, &signed(2, protocol("{\"version\": 3}")))
            .await
            .unwrap(),
        PublishOutcome::Published(p) if p.seq == Some(2)
    ));
    assert!(matches!(
        store
            .publish_protocol("vig-evaluation", 3, &signed(3, protocol("{}")))
            .await
            .unwrap(),
        PublishOutcome::NotNewer { latest: 3 }
    ));
    let served = store.control_messages_after(0).await.unwrap();
    assert_eq!(
        served.iter().map(|m| (m.id, m.seq)).collect::<Vec<_>>(),
        vec![(3, 1), (4, 2)]
    );

    // The new CHECKs hold: a signed withdrawal names its participant, and a number comes
    // with a signature.
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
    let _ = Timestamp(0);
}
