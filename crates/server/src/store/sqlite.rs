//! The default store: SQLite in the data directory.

use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::checks::impl_push_checks;
use super::sql::impl_sql_store;
use super::team_records::impl_team_record_store;
use super::team_sql::impl_team_store;
use super::uploads::impl_upload_store;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "attune.db";

/// [`super::Store`] on SQLite.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/attune.db` and applies any pending migrations.
    ///
    /// WAL with `synchronous=FULL`: an upload acknowledged to a device is on disk, even if the
    /// machine loses power right after, because the device then drops its copy from the outbox.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|source| StoreError::CreateDataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let path = data_dir.join(DATABASE_FILE);
        let place = path.display().to_string();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                place: place.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { place, source })?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests and tools that inspect the database directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that writes: `BEGIN IMMEDIATE` takes the write lock at the start, waiting
    /// (up to the busy timeout) for another writer. A deferred transaction that reads first
    /// and then writes fails at once with "database is locked" when another connection wrote
    /// in between, which the busy timeout cannot help with: with several devices pushing at
    /// once that is a 503 for some of them.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

impl_sql_store!(SqliteStore, "sqlite");

#[async_trait::async_trait]
impl super::RateLimitStore for SqliteStore {
    /// In one `BEGIN IMMEDIATE` transaction: writers wait for each other, so the count read
    /// back is this attempt's.
    async fn count_attempt(
        &self,
        limit: &super::RateLimit,
        key: &str,
        now: attune_core::Timestamp,
    ) -> Result<super::Attempt, StoreError> {
        let window_start = limit.window_start(now);
        let mut tx = self.begin_write().await?;
        let (count, start): (i64, i64) = sqlx::query_as(super::rate_limits::COUNT_ATTEMPT)
            .bind(limit.bucket)
            .bind(key)
            .bind(window_start)
            .fetch_one(&mut *tx)
            .await?;
        if count == 1 {
            sqlx::query(super::rate_limits::PRUNE)
                .bind(limit.bucket)
                .bind(window_start)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(super::rate_limits::attempt(limit, count, start))
    }
}
impl_upload_store!(SqliteStore);
impl_team_store!(SqliteStore);
impl_team_record_store!(SqliteStore);
impl_push_checks!(SqliteStore, sqlx::Sqlite);
