//! Server ingest rate for `cargo xtask bench` (`ingest_sqlite_rps`, `ingest_postgres_rps`):
//! sealed, signed revisions pushed over real HTTP in batches of 100, as a device's sync does.
//! Ignored in normal test runs; xtask runs it in an optimised build and reads the lines
//! `ingest_rps <median>` and `raw_rps <median>` it prints.
//!
//! The peer, measured in the same process and interleaved with the ingest repetitions so both
//! see the same machine: plain inserts of rows of the same size (the sealed envelope's JSON
//! under a key) into a table of the same database engine, the same durability (SQLite WAL
//! with `synchronous=FULL`; PostgreSQL as configured), the same 100 rows per transaction, no
//! HTTP, no JSON, no signature checks, no revision checks: the floor the server's ingest is
//! compared with.
//!
//! SQLite in a temp directory by default; `ATTUNE_BENCH_DATABASE_URL=postgres://...` (an empty
//! database) measures PostgreSQL instead.

mod support;

use std::time::Instant;

use attune_core::sync::{PushOutcome, PushRequest, PushResponse};
use attune_core::{
    Authorship, DeviceId, DeviceKey, Envelope, Kind, Links, ProfileId, RecordId, Revision,
    Timestamp, seal_envelope,
};
use attune_server::{DatabaseConfig, api, connect};
use support::TestServer;

const BATCH: usize = 100;
const PER_REPETITION: usize = 5_000;
const REPETITIONS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by `cargo xtask bench`"]
async fn ingest_rate() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let data_dir = dir.path().join("data");
    let database_url = std::env::var("ATTUNE_BENCH_DATABASE_URL").ok();
    let store = connect(&DatabaseConfig::new(database_url, &data_dir))
        .await
        .expect("the database opens");
    let backend = store.backend();
    let server = TestServer::start(store, data_dir).await;
    let key = DeviceKey::generate().unwrap();
    let device = DeviceId::new(api::now());
    let token = server.enrol(&key, device).await;
    let study = server.study.public_key();
    let author = ProfileId::new(api::now());
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/push", server.addr);

    let peer = RawPeer::open(dir.path(), std::env::var("ATTUNE_BENCH_DATABASE_URL").ok()).await;
    let mut rates = Vec::new();
    let mut raw_rates = Vec::new();
    for repetition in 0..REPETITIONS {
        // Sealed and signed beforehand: the device's work is not the server's ingest.
        let envelopes: Vec<Envelope> = (0..PER_REPETITION)
            .map(|n| {
                let revision = Revision::first(
                    RecordId::new(api::now()),
                    Kind::InterviewNote,
                    Links::default(),
                    format!("repetition {repetition}, note {n}: a paragraph of field notes about what was said and done during the visit")
                        .into_bytes(),
                    Authorship {
                        device,
                        author,
                        time: Timestamp(api::now().as_millis()),
                    },
                );
                seal_envelope(&revision, Some("C01".into()), &study, &key).unwrap()
            })
            .collect();
        let bodies: Vec<Vec<u8>> = envelopes
            .chunks(BATCH)
            .map(|batch| {
                serde_json::to_vec(&PushRequest {
                    envelopes: batch.to_vec(),
                })
                .unwrap()
            })
            .collect();

        let rows: Vec<(String, String)> = envelopes
            .iter()
            .map(|envelope| {
                (
                    format!("{}/{}", envelope.record_id, envelope.rev),
                    serde_json::to_string(envelope).unwrap(),
                )
            })
            .collect();
        let raw_rate = peer.insert(&rows).await;
        eprintln!("{backend} repetition {repetition}: raw inserts {raw_rate:.0} rows/s");
        raw_rates.push(raw_rate);

        let started = Instant::now();
        for body in bodies {
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("push");
            assert_eq!(response.status(), 200);
            let answer: PushResponse = response.json().await.expect("push answer");
            assert!(
                answer
                    .results
                    .iter()
                    .all(|r| r.outcome == PushOutcome::Stored)
            );
        }
        let rate = PER_REPETITION as f64 / started.elapsed().as_secs_f64();
        eprintln!("{backend} repetition {repetition}: {rate:.0} records/s");
        rates.push(rate);
    }
    assert_eq!(
        server.store.envelopes().await.unwrap().len(),
        PER_REPETITION * REPETITIONS
    );
    rates.sort_by(f64::total_cmp);
    raw_rates.sort_by(f64::total_cmp);
    println!("ingest_rps {:.1}", rates[REPETITIONS / 2]);
    println!("raw_rps {:.1}", raw_rates[REPETITIONS / 2]);
}

/// The floor: plain inserts into a table of its own, in batches of [`BATCH`] per transaction.
enum RawPeer {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl RawPeer {
    /// SQLite: a file of its own beside the server's (WAL, `synchronous=FULL`, as the server
    /// opens its own); PostgreSQL: a table in the same database.
    async fn open(dir: &std::path::Path, database_url: Option<String>) -> Self {
        const TABLE: &str = "CREATE TABLE raw_peer (id TEXT PRIMARY KEY, received_at BIGINT NOT NULL, body TEXT NOT NULL)";
        match database_url {
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.join("raw-peer.db"))
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                sqlx::query(TABLE).execute(&pool).await.unwrap();
                Self::Sqlite(pool)
            }
            Some(url) => {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query("DROP TABLE IF EXISTS raw_peer")
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query(TABLE).execute(&pool).await.unwrap();
                Self::Postgres(pool)
            }
        }
    }

    /// Inserts every row, [`BATCH`] per transaction; rows per second.
    async fn insert(&self, rows: &[(String, String)]) -> f64 {
        const INSERT: &str = "INSERT INTO raw_peer (id, received_at, body) VALUES ($1, $2, $3)";
        let started = Instant::now();
        for batch in rows.chunks(BATCH) {
            let received_at = api::now().as_millis();
            // The same statements on either engine (sqlx pools of two database types).
            macro_rules! insert_batch {
                ($pool:expr) => {{
                    let mut tx = $pool.begin().await.unwrap();
                    for (id, body) in batch {
                        sqlx::query(INSERT)
                            .bind(id)
                            .bind(received_at)
                            .bind(body)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    tx.commit().await.unwrap();
                }};
            }
            match self {
                Self::Sqlite(pool) => insert_batch!(pool),
                Self::Postgres(pool) => insert_batch!(pool),
            }
        }
        rows.len() as f64 / started.elapsed().as_secs_f64()
    }
}
