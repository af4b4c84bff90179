//! [`MemoryStore`]: the storage traits held in memory, for tests and tools.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{BlobStore, PutOutcome, RecordStore, StoreError, StoredRevision, SyncAck};
use crate::ids::{BlobId, ParticipantId, RecordId, VisitId};
use crate::record::Kind;

/// A [`RecordStore`] and [`BlobStore`] in memory. Single-threaded (like IndexedDB in the
/// browser); everything is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RefCell<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each record's revisions; index i holds revision i + 1.
    records: BTreeMap<RecordId, Vec<Entry>>,
    /// The put order of the next stored revision, for the outbox.
    next_sequence: u64,
    blobs: BTreeMap<BlobId, Vec<Vec<u8>>>,
}

#[derive(Debug)]
struct Entry {
    sequence: u64,
    revision: StoredRevision,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn list_latest(&self, wanted: impl Fn(&StoredRevision) -> bool) -> Vec<StoredRevision> {
        self.inner
            .borrow()
            .records
            .values()
            .filter_map(|entries| entries.last())
            .map(|entry| &entry.revision)
            .filter(|revision| wanted(revision))
            .cloned()
            .collect()
    }
}

impl RecordStore for MemoryStore {
    async fn put_revision(&self, revision: StoredRevision) -> Result<PutOutcome, StoreError> {
        let mut inner = self.inner.borrow_mut();
        let record = revision.record_id;
        let stored = inner.records.get(&record).map_or(&[][..], Vec::as_slice);
        let stored_latest = u32::try_from(stored.len())
            .map_err(|_| StoreError::Backend("too many revisions".into()))?;

        let existing = revision
            .rev
            .checked_sub(1)
            .and_then(|index| stored.get(usize::try_from(index).ok()?));
        if let Some(existing) = existing {
            return if existing.revision.is_same_revision(&revision) {
                Ok(PutOutcome::AlreadyStored)
            } else {
                Err(StoreError::Conflict {
                    record,
                    rev: revision.rev,
                })
            };
        }
        let expected = stored_latest.saturating_add(1);
        if revision.rev != expected {
            return Err(StoreError::NotNextRevision {
                record,
                expected,
                got: revision.rev,
            });
        }
        if revision.parent_hash != stored.last().map(|entry| entry.revision.hash) {
            return Err(StoreError::ParentMismatch {
                record,
                rev: revision.rev,
            });
        }

        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        inner
            .records
            .entry(record)
            .or_default()
            .push(Entry { sequence, revision });
        Ok(PutOutcome::Stored)
    }

    async fn latest(&self, record: RecordId) -> Result<Option<StoredRevision>, StoreError> {
        let inner = self.inner.borrow();
        Ok(inner
            .records
            .get(&record)
            .and_then(|entries| entries.last())
            .map(|entry| entry.revision.clone()))
    }

    async fn history(&self, record: RecordId) -> Result<Vec<StoredRevision>, StoreError> {
        let inner = self.inner.borrow();
        Ok(inner
            .records
            .get(&record)
            .map(|entries| entries.iter().map(|entry| entry.revision.clone()).collect())
            .unwrap_or_default())
    }

    async fn list_latest_by_kind(&self, kind: Kind) -> Result<Vec<StoredRevision>, StoreError> {
        Ok(self.list_latest(|revision| revision.kind == kind))
    }

    async fn list_latest_by_participant(
        &self,
        participant: ParticipantId,
    ) -> Result<Vec<StoredRevision>, StoreError> {
        Ok(self.list_latest(|revision| revision.participant == Some(participant)))
    }

    async fn list_latest_by_visit(
        &self,
        visit: VisitId,
    ) -> Result<Vec<StoredRevision>, StoreError> {
        Ok(self.list_latest(|revision| revision.visit == Some(visit)))
    }

    async fn unsynced(&self, limit: usize) -> Result<Vec<StoredRevision>, StoreError> {
        let inner = self.inner.borrow();
        let mut waiting: Vec<&Entry> = inner
            .records
            .values()
            .flatten()
            .filter(|entry| !entry.revision.synced)
            .collect();
        waiting.sort_by_key(|entry| entry.sequence);
        Ok(waiting
            .into_iter()
            .take(limit)
            .map(|entry| entry.revision.clone())
            .collect())
    }

    async fn mark_synced(&self, acknowledged: &[SyncAck]) -> Result<usize, StoreError> {
        let mut inner = self.inner.borrow_mut();
        let mut marked = 0;
        for &(record, rev, hash) in acknowledged {
            let Some(index) = rev.checked_sub(1).and_then(|i| usize::try_from(i).ok()) else {
                continue;
            };
            let entry = inner
                .records
                .get_mut(&record)
                .and_then(|entries| entries.get_mut(index));
            if let Some(entry) = entry
                && entry.revision.hash == hash
                && !entry.revision.synced
            {
                entry.revision.synced = true;
                marked += 1;
            }
        }
        Ok(marked)
    }

    async fn count_unsynced(&self) -> Result<usize, StoreError> {
        let inner = self.inner.borrow();
        Ok(inner
            .records
            .values()
            .flatten()
            .filter(|entry| !entry.revision.synced)
            .count())
    }

    async fn purge_participant(&self, participant: ParticipantId) -> Result<usize, StoreError> {
        let mut inner = self.inner.borrow_mut();
        let before = inner.records.len();
        inner.records.retain(|_, entries| {
            entries
                .last()
                .is_none_or(|entry| entry.revision.participant != Some(participant))
        });
        Ok(before - inner.records.len())
    }
}

impl BlobStore for MemoryStore {
    async fn put_chunk(&self, blob: BlobId, index: u32, sealed: Vec<u8>) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        let count = inner.blobs.get(&blob).map_or(0, Vec::len);
        let count =
            u32::try_from(count).map_err(|_| StoreError::Backend("too many chunks".into()))?;
        if index > count {
            return Err(StoreError::ChunkGap {
                blob,
                expected: count,
                got: index,
            });
        }
        let chunks = inner.blobs.entry(blob).or_default();
        match usize::try_from(index).ok().and_then(|i| chunks.get_mut(i)) {
            // A retried write replaces the chunk.
            Some(existing) => *existing = sealed,
            None => chunks.push(sealed),
        }
        Ok(())
    }

    async fn chunk(&self, blob: BlobId, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = self.inner.borrow();
        Ok(inner
            .blobs
            .get(&blob)
            .and_then(|chunks| chunks.get(usize::try_from(index).ok()?))
            .cloned())
    }

    async fn chunk_count(&self, blob: BlobId) -> Result<u32, StoreError> {
        let inner = self.inner.borrow();
        let count = inner.blobs.get(&blob).map_or(0, Vec::len);
        u32::try_from(count).map_err(|_| StoreError::Backend("too many chunks".into()))
    }

    async fn delete_blob(&self, blob: BlobId) -> Result<(), StoreError> {
        self.inner.borrow_mut().blobs.remove(&blob);
        Ok(())
    }
}
