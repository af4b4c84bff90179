//! The server's SQLite database: opening it with durable settings and migrating it on start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "attune.db";

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot migrate the database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
}

/// Opens (creating if needed) `data_dir/attune.db` and applies any pending migrations.
///
/// WAL with `synchronous=FULL`: an upload acknowledged to a device is on disk, even if the
/// machine loses power right after, because the device then drops its copy from the outbox.
pub async fn open_store(data_dir: &Path) -> Result<SqlitePool, StoreError> {
    tokio::fs::create_dir_all(data_dir)
        .await
        .map_err(|source| StoreError::CreateDataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
    let path = data_dir.join(DATABASE_FILE);
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
            path: path.clone(),
            source,
        })?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate { path, source })?;
    Ok(pool)
}
