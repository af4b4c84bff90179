//! Storage traits for the device, and an in-memory implementation.
//!
//! The app stores records in IndexedDB; tests and tools use [`MemoryStore`]. Both implement
//! [`RecordStore`] and [`BlobStore`] and pass the same test suite
//! ([`record_store_conformance_tests!`](crate::record_store_conformance_tests), feature
//! `conformance`).
//!
//! Stores never see plaintext: the vault seals each revision into a [`StoredRevision`]
//! before it reaches the store, and only the index fields needed to find records (ids,
//! kind, time, hashes, sync state) stay in clear.
//!
//! The traits use `async fn` without a `Send` bound because IndexedDB futures are not
//! `Send`; that is also why `async_fn_in_trait` is allowed.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{BlobId, ParticipantId, RecordId, VisitId};
use crate::record::{ContentHash, Kind, Revision};
use crate::time::Timestamp;

mod memory;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use memory::MemoryStore;

/// A revision as a store holds it: the index fields in clear, the content sealed by the
/// vault.
///
/// The clear fields repeat what is inside the sealed bytes; the vault checks on opening that
/// they agree, so altering them in storage is detected.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRevision {
    /// The record this revision belongs to.
    pub record_id: RecordId,
    /// The revision number, 1 for the first.
    pub rev: u32,
    /// The hash of the previous revision; `None` for revision 1.
    pub parent_hash: Option<ContentHash>,
    /// What the record is.
    pub kind: Kind,
    /// The participant the record is about, if any.
    pub participant: Option<ParticipantId>,
    /// The visit the record belongs to, if any.
    pub visit: Option<VisitId>,
    /// When the revision was made.
    pub time: Timestamp,
    /// The revision's content hash.
    pub hash: ContentHash,
    /// Whether the server has durably acknowledged this revision.
    pub synced: bool,
    /// The revision sealed by the vault (opaque to the store).
    pub sealed: Vec<u8>,
}

impl fmt::Debug for StoredRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRevision")
            .field("record_id", &self.record_id)
            .field("rev", &self.rev)
            .field("parent_hash", &self.parent_hash)
            .field("kind", &self.kind)
            .field("participant", &self.participant)
            .field("visit", &self.visit)
            .field("time", &self.time)
            .field("hash", &self.hash)
            .field("synced", &self.synced)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .finish()
    }
}

impl StoredRevision {
    /// The stored form of `revision` with its `sealed` bytes, not yet synced.
    pub fn new(revision: &Revision, sealed: Vec<u8>) -> Self {
        Self {
            record_id: revision.record_id,
            rev: revision.rev,
            parent_hash: revision.parent_hash,
            kind: revision.kind,
            participant: revision.participant,
            visit: revision.visit,
            time: revision.time,
            hash: revision.hash,
            synced: false,
            sealed,
        }
    }

    /// The key that sync acknowledges: record, revision number and content hash.
    pub fn sync_key(&self) -> SyncAck {
        (self.record_id, self.rev, self.hash)
    }

    /// Whether `other` is the same revision: the same index fields and hash. The sealed
    /// bytes and sync state may differ (sealing the same revision twice uses a fresh nonce).
    pub fn is_same_revision(&self, other: &StoredRevision) -> bool {
        self.record_id == other.record_id
            && self.rev == other.rev
            && self.parent_hash == other.parent_hash
            && self.kind == other.kind
            && self.participant == other.participant
            && self.visit == other.visit
            && self.time == other.time
            && self.hash == other.hash
    }
}

/// A revision the server has durably acknowledged: `(record, revision number, content
/// hash)`. A store marks a revision synced only if all three match.
pub type SyncAck = (RecordId, u32, ContentHash);

/// What [`RecordStore::put_revision`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The revision was new and is now stored.
    Stored,
    /// This exact revision was already stored; nothing changed.
    AlreadyStored,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The revision does not follow the stored latest revision of its record (it skips
    /// ahead, or is revision 0).
    #[error(
        "record {record}: revision {got} does not follow the stored latest, expected {expected}"
    )]
    NotNextRevision {
        /// The record.
        record: RecordId,
        /// The revision number that would be accepted.
        expected: u32,
        /// The revision number that was offered.
        got: u32,
    },
    /// The revision has the next number but its parent hash is not the stored latest
    /// revision's hash (a fork).
    #[error(
        "record {record}: revision {rev} does not name the stored latest revision as its parent"
    )]
    ParentMismatch {
        /// The record.
        record: RecordId,
        /// The revision number that was offered.
        rev: u32,
    },
    /// A revision with this record and number is already stored with different content.
    /// The stored one is kept; nothing is overwritten.
    #[error("record {record}: revision {rev} is already stored with different content")]
    Conflict {
        /// The record.
        record: RecordId,
        /// The revision number.
        rev: u32,
    },
    /// A blob chunk would leave a gap: chunks are written in order from 0.
    #[error("blob {blob}: chunk {got} would leave a gap, the next chunk is {expected}")]
    ChunkGap {
        /// The blob.
        blob: BlobId,
        /// The next chunk index that would be accepted.
        expected: u32,
        /// The chunk index that was offered.
        got: u32,
    },
    /// The device's storage is full (IndexedDB `QuotaExceededError`).
    #[error("storage is full")]
    QuotaExceeded,
    /// The storage backend failed; the message is for logs (it must not contain personal
    /// data).
    #[error("storage failed: {0}")]
    Backend(String),
}

/// Where a device keeps record revisions, including its sync outbox.
///
/// Every method is one atomic operation (one IndexedDB transaction). Lists are ordered by
/// record id, which for UUIDv7 ids is creation order.
#[allow(async_fn_in_trait)]
pub trait RecordStore {
    /// Stores a revision atomically, if it is the next one of its record.
    ///
    /// Accepted: revision 1 of an unknown record (with no parent), or revision n + 1 whose
    /// parent hash is the stored revision n's hash. Storing the same revision again (see
    /// [`StoredRevision::is_same_revision`]) returns [`PutOutcome::AlreadyStored`] and keeps
    /// the stored copy, including its sync state.
    ///
    /// # Errors
    /// [`StoreError::NotNextRevision`], [`StoreError::ParentMismatch`],
    /// [`StoreError::Conflict`] (that number is stored with different content), or a
    /// backend error. A refused revision leaves the store unchanged.
    async fn put_revision(&self, revision: StoredRevision) -> Result<PutOutcome, StoreError>;

    /// The latest revision of a record, or `None` if the record is unknown.
    async fn latest(&self, record: RecordId) -> Result<Option<StoredRevision>, StoreError>;

    /// Every revision of a record, ordered by revision number; empty if unknown.
    async fn history(&self, record: RecordId) -> Result<Vec<StoredRevision>, StoreError>;

    /// The latest revision of every record of this kind.
    async fn list_latest_by_kind(&self, kind: Kind) -> Result<Vec<StoredRevision>, StoreError>;

    /// The latest revision of every record whose latest revision names this participant.
    async fn list_latest_by_participant(
        &self,
        participant: ParticipantId,
    ) -> Result<Vec<StoredRevision>, StoreError>;

    /// The latest revision of every record whose latest revision names this visit.
    async fn list_latest_by_visit(&self, visit: VisitId)
    -> Result<Vec<StoredRevision>, StoreError>;

    /// The outbox: up to `limit` revisions not yet synced, oldest first (in the order they
    /// were stored, so a record's revisions come in revision order).
    async fn unsynced(&self, limit: usize) -> Result<Vec<StoredRevision>, StoreError>;

    /// Marks acknowledged revisions as synced. An acknowledgement only counts when record,
    /// revision number and hash all match a stored revision; others are ignored. Returns how
    /// many revisions changed from unsynced to synced.
    async fn mark_synced(&self, acknowledged: &[SyncAck]) -> Result<usize, StoreError>;

    /// How many revisions are waiting in the outbox.
    async fn count_unsynced(&self) -> Result<usize, StoreError>;

    /// Deletes, in one atomic operation, every revision (synced or not) of every record
    /// whose latest revision names this participant: what a withdrawal without leave to keep
    /// the data asks of a device. That includes the participant's own record, which names
    /// the participant it holds. Records that named them only in an earlier revision (then
    /// were moved to someone else) are kept. Blobs are not touched: the caller deletes the
    /// purged attachments' blobs. Returns how many records were deleted (0 for a participant
    /// with none).
    ///
    /// This is the one operation that removes revisions; the caller records that it
    /// happened (a [`Kind::Purge`] record).
    async fn purge_participant(&self, participant: ParticipantId) -> Result<usize, StoreError>;
}

/// Where a device keeps the chunks of large binary data (audio, photos, drawings), each
/// chunk sealed by the vault before it arrives.
///
/// Chunks are numbered from 0 and written in order, so an interrupted recording keeps every
/// chunk written so far.
#[allow(async_fn_in_trait)]
pub trait BlobStore {
    /// Stores chunk `index` of a blob. `index` must be an existing chunk (which is replaced,
    /// e.g. when a write is retried) or the next one ([`BlobStore::chunk_count`]).
    ///
    /// # Errors
    /// [`StoreError::ChunkGap`] if `index` is beyond the next chunk, or a backend error.
    async fn put_chunk(&self, blob: BlobId, index: u32, sealed: Vec<u8>) -> Result<(), StoreError>;

    /// Chunk `index` of a blob, or `None` if there is no such chunk.
    async fn chunk(&self, blob: BlobId, index: u32) -> Result<Option<Vec<u8>>, StoreError>;

    /// How many chunks a blob has (0 if unknown).
    async fn chunk_count(&self, blob: BlobId) -> Result<u32, StoreError>;

    /// Deletes every chunk of a blob. Deleting an unknown blob is not an error.
    async fn delete_blob(&self, blob: BlobId) -> Result<(), StoreError>;
}
