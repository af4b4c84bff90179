//! The store for studies that outgrow one machine: PostgreSQL, chosen with `--database-url`.

use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::checks::impl_push_checks;
use super::sql::impl_sql_store;
use super::team_records::impl_team_record_store;
use super::team_sql::impl_team_store;
use super::uploads::impl_upload_store;
use super::{StoreError, redact_url};

/// [`super::Store`] on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies any
    /// pending migrations. Errors name the URL with its password hidden.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let place = redact_url(url);
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::Open {
            place: place.clone(),
            source,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                place: place.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { place, source })?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests and tools that inspect the database directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction that writes (PostgreSQL's row locks and unique indexes serialise the
    /// writers; see `SqliteStore::begin_write` for why SQLite needs more).
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
}

impl_sql_store!(PostgresStore, "postgres");

#[async_trait::async_trait]
impl super::RateLimitStore for PostgresStore {
    /// One `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`: the row lock makes concurrent
    /// attempts (from any instance) count one after another. Past windows are pruned in a
    /// statement of their own, so no transaction holds a counter's lock while it waits for
    /// another's rows.
    async fn count_attempt(
        &self,
        limit: &super::RateLimit,
        key: &str,
        now: attune_core::Timestamp,
    ) -> Result<super::Attempt, StoreError> {
        let window_start = limit.window_start(now);
        let (count, start): (i64, i64) = sqlx::query_as(super::rate_limits::COUNT_ATTEMPT)
            .bind(limit.bucket)
            .bind(key)
            .bind(window_start)
            .fetch_one(&self.pool)
            .await?;
        if count == 1 {
            sqlx::query(super::rate_limits::PRUNE)
                .bind(limit.bucket)
                .bind(window_start)
                .execute(&self.pool)
                .await?;
        }
        Ok(super::rate_limits::attempt(limit, count, start))
    }
}
impl_upload_store!(PostgresStore);
impl_team_store!(PostgresStore);
impl_team_record_store!(PostgresStore);
impl_push_checks!(PostgresStore, sqlx::Postgres);
