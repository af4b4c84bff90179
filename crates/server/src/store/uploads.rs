//! Which attachment each upload is: the `uploads` table, behind [`UploadStore`] (a supertrait
//! of [`super::Store`], so every backend has it and `Arc<dyn Store>` reaches it). The bytes
//! themselves live in the [blob folder](crate::blobs).

use async_trait::async_trait;
use attune_core::Timestamp;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// An upload to record when a device announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUpload {
    /// SHA-256 (lower-case hex) of the sealed bytes: the upload's name.
    pub sha256: String,
    /// The attachment's blob id.
    pub blob_id: String,
    /// The number of sealed bytes.
    pub length: u64,
    /// The device that announced it.
    pub device_id: String,
}

/// An upload as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub sha256: String,
    pub blob_id: String,
    pub length: u64,
    pub device_id: String,
    pub created_at: Timestamp,
    /// When its bytes were all received and their SHA-256 checked.
    pub completed_at: Option<Timestamp>,
}

/// The `uploads` table.
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Records an upload unless one with its SHA-256 exists; returns the row now stored (the
    /// existing one if there was one, which may differ from `upload`: the caller checks).
    async fn create_upload(&self, upload: &NewUpload, now: Timestamp)
    -> Result<Upload, StoreError>;
    /// The upload with this SHA-256.
    async fn upload(&self, sha256: &str) -> Result<Option<Upload>, StoreError>;
    /// Marks an upload complete (once; later calls keep the first time). False if unknown.
    async fn mark_upload_complete(&self, sha256: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// The uploads of one attachment, complete ones first, then oldest first.
    async fn uploads_of_blob(&self, blob_id: &str) -> Result<Vec<Upload>, StoreError>;
    /// How many uploads `device_id` announced and has not finished, and their bytes.
    async fn unfinished_uploads(&self, device_id: &str) -> Result<(u64, u64), StoreError>;
}

pub(crate) fn upload_from_row<'r, R>(row: &'r R) -> Result<Upload, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let length: i64 = row.try_get("length")?;
    Ok(Upload {
        sha256: row.try_get("sha256")?,
        blob_id: row.try_get("blob_id")?,
        length: u64::try_from(length)
            .map_err(|_| StoreError::Corrupt(format!("upload length {length}")))?,
        device_id: row.try_get("device_id")?,
        created_at: Timestamp(row.try_get("created_at")?),
        completed_at: row
            .try_get::<Option<i64>, _>("completed_at")?
            .map(Timestamp),
    })
}

pub(crate) const UPLOAD_SELECT: &str =
    "SELECT sha256, blob_id, length, device_id, created_at, completed_at FROM uploads";

/// Implements [`UploadStore`] for a type with a `pool` field of a sqlx pool (same SQL on both
/// backends, as in `sql.rs`).
macro_rules! impl_upload_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::UploadStore for $store {
            async fn create_upload(
                &self,
                upload: &$crate::store::NewUpload,
                now: attune_core::Timestamp,
            ) -> Result<$crate::store::Upload, $crate::store::StoreError> {
                let length = i64::try_from(upload.length).map_err(|_| {
                    $crate::store::StoreError::Corrupt("upload length out of range".into())
                })?;
                sqlx::query(
                    "INSERT INTO uploads (sha256, blob_id, length, device_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(&upload.sha256)
                .bind(&upload.blob_id)
                .bind(length)
                .bind(&upload.device_id)
                .bind(now.as_millis())
                .execute(&self.pool)
                .await?;
                self.upload(&upload.sha256).await?.ok_or_else(|| {
                    $crate::store::StoreError::Corrupt("an upload vanished after insert".into())
                })
            }

            async fn upload(
                &self,
                sha256: &str,
            ) -> Result<Option<$crate::store::Upload>, $crate::store::StoreError> {
                let row = sqlx::query(&format!(
                    "{} WHERE sha256 = $1",
                    $crate::store::uploads::UPLOAD_SELECT
                ))
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| $crate::store::uploads::upload_from_row(&row))
                    .transpose()
            }

            async fn mark_upload_complete(
                &self,
                sha256: &str,
                now: attune_core::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "UPDATE uploads SET completed_at = COALESCE(completed_at, $2) \
                     WHERE sha256 = $1",
                )
                .bind(sha256)
                .bind(now.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn uploads_of_blob(
                &self,
                blob_id: &str,
            ) -> Result<Vec<$crate::store::Upload>, $crate::store::StoreError> {
                let rows = sqlx::query(&format!(
                    "{} WHERE blob_id = $1 \
                     ORDER BY (completed_at IS NULL), created_at, sha256",
                    $crate::store::uploads::UPLOAD_SELECT
                ))
                .bind(blob_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| $crate::store::uploads::upload_from_row(row))
                    .collect()
            }

            async fn unfinished_uploads(
                &self,
                device_id: &str,
            ) -> Result<(u64, u64), $crate::store::StoreError> {
                let (count, bytes): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(length), 0) AS BIGINT) FROM uploads \
                     WHERE device_id = $1 AND completed_at IS NULL",
                )
                .bind(device_id)
                .fetch_one(&self.pool)
                .await?;
                Ok((
                    u64::try_from(count).unwrap_or(0),
                    u64::try_from(bytes).unwrap_or(0),
                ))
            }
        }
    };
}

pub(crate) use impl_upload_store;
