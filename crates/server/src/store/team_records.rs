//! The study team's own records (`0009_team_records.sql`) behind [`TeamRecordStore`], a
//! supertrait of [`super::Store`] (as [`super::TeamStore`]). The records are sealed and
//! signed in the console; the store keeps them as posted, append-only. The SQL is shared by
//! both backends through `impl_team_record_store!`.

use async_trait::async_trait;
use attune_core::Timestamp;
use attune_core::review::team_records::{NewTeamRecord, StoredTeamRecord};

use super::StoreError;

/// What [`TeamRecordStore::add_team_record`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeamRecordOutcome {
    /// Stored now.
    Added(StoredTeamRecord),
    /// The same record (same id, same bytes) was already stored: nothing changed.
    AlreadyStored(StoredTeamRecord),
    /// Another record is stored with this id: nothing changed.
    IdTaken,
}

/// The team records table.
#[async_trait]
pub trait TeamRecordStore: Send + Sync {
    /// Stores `record` as posted by `member_id` at `now`, unless its id is taken.
    async fn add_team_record(
        &self,
        record: &NewTeamRecord,
        member_id: &str,
        now: Timestamp,
    ) -> Result<TeamRecordOutcome, StoreError>;
    /// Every team record, in the order they were stored.
    async fn team_records(&self) -> Result<Vec<StoredTeamRecord>, StoreError>;
}

/// A row `(id, member_id, created_at, sealed, signature)` as a record.
pub(crate) fn team_record_of(
    row: (String, String, i64, String, String),
) -> Result<StoredTeamRecord, StoreError> {
    let (id, member_id, created_at, sealed, signature) = row;
    Ok(StoredTeamRecord {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("team record id {id:?}")))?,
        member_id,
        created_at: Timestamp(created_at),
        sealed,
        signature,
    })
}

/// Implements [`TeamRecordStore`] for a type with a `pool` field of a sqlx pool.
macro_rules! impl_team_record_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::TeamRecordStore for $store {
            async fn add_team_record(
                &self,
                record: &attune_core::review::team_records::NewTeamRecord,
                member_id: &str,
                now: attune_core::Timestamp,
            ) -> Result<$crate::store::TeamRecordOutcome, $crate::store::StoreError> {
                use $crate::store::TeamRecordOutcome;
                let id = record.id.to_string();
                let inserted = sqlx::query(
                    "INSERT INTO team_records (id, created_at, member_id, sealed, signature) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(now.as_millis())
                .bind(member_id)
                .bind(&record.sealed)
                .bind(&record.signature)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1;
                let row = sqlx::query_as::<_, (String, String, i64, String, String)>(
                    "SELECT id, member_id, created_at, sealed, signature FROM team_records \
                     WHERE id = $1",
                )
                .bind(&id)
                .fetch_one(&self.pool)
                .await?;
                let stored = $crate::store::team_records::team_record_of(row)?;
                Ok(if inserted {
                    TeamRecordOutcome::Added(stored)
                } else if stored.sealed == record.sealed && stored.signature == record.signature {
                    TeamRecordOutcome::AlreadyStored(stored)
                } else {
                    TeamRecordOutcome::IdTaken
                })
            }

            async fn team_records(
                &self,
            ) -> Result<
                Vec<attune_core::review::team_records::StoredTeamRecord>,
                $crate::store::StoreError,
            > {
                sqlx::query_as::<_, (String, String, i64, String, String)>(
                    "SELECT id, member_id, created_at, sealed, signature FROM team_records \
                     ORDER BY created_at, id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map($crate::store::team_records::team_record_of)
                .collect()
            }
        }
    };
}

pub(crate) use impl_team_record_store;
