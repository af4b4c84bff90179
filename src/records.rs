//! Reading and writing records of the open session: seal with the vault, store in IndexedDB.

use attune_core::{Authorship, Kind, Links, RecordId, RecordStore, Revision, StoreError};

use crate::session::{Session, now};
use crate::store::is_closed_error;

/// Appends a revision with `body` to the record whose latest revision is `head` (or starts the
/// record), seals it and stores it in one transaction. Returns the stored revision.
pub async fn append(
    session: &Session,
    record_id: RecordId,
    kind: Kind,
    links: Links,
    head: Option<&Revision>,
    body: Vec<u8>,
) -> Result<Revision, String> {
    let by = Authorship {
        device: session.device,
        author: session.profile.id,
        time: now(),
    };
    let revision = match head {
        Some(head) => head.next(body, by).map_err(|e| e.to_string())?,
        None => Revision::first(record_id, kind, links, body, by),
    };
    let sealed = session
        .vault
        .seal_revision(&revision)
        .map_err(|e| e.to_string())?;
    match session.store.put_revision(sealed.clone()).await {
        Ok(_) => Ok(revision),
        // Browsers close IndexedDB on their own (iOS under memory pressure): reopen, retry once.
        Err(error) if is_closed_error(&error) => {
            session.store.reopen().await.map_err(|e| explain(&e))?;
            session
                .store
                .put_revision(sealed)
                .await
                .map_err(|e| explain(&e))?;
            Ok(revision)
        }
        Err(error) => Err(explain(&error)),
    }
}

/// A storage failure in words for the fieldworker.
pub fn explain(error: &StoreError) -> String {
    match error {
        StoreError::QuotaExceeded => "the tablet's storage is full".into(),
        e if is_closed_error(e) => "the browser closed the storage".into(),
        other => other.to_string(),
    }
}

/// The latest revision of a record, decrypted.
pub async fn latest(session: &Session, record_id: RecordId) -> Result<Option<Revision>, String> {
    match session
        .store
        .latest(record_id)
        .await
        .map_err(|e| e.to_string())?
    {
        None => Ok(None),
        Some(stored) => session
            .vault
            .open_revision(&stored)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// The latest revision of every record of a kind, decrypted, newest first.
pub async fn latest_of_kind(session: &Session, kind: Kind) -> Result<Vec<Revision>, String> {
    let stored = session
        .store
        .list_latest_by_kind(kind)
        .await
        .map_err(|e| e.to_string())?;
    let mut revisions = stored
        .iter()
        .map(|s| session.vault.open_revision(s).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    revisions.sort_by_key(|r| std::cmp::Reverse(r.time));
    Ok(revisions)
}
