//! Reading and writing records of the open session: seal with the vault, store in IndexedDB.

use attune_core::{Authorship, Kind, Links, RecordId, RecordStore, Revision, StoreError, VisitId};

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

/// Decodes a revision's JSON body, with an error a fieldworker can report.
pub fn body<T: serde::de::DeserializeOwned>(revision: &Revision) -> Result<T, String> {
    revision
        .body_json::<T>()
        .map_err(|e| format!("a saved {} could not be read: {e}", revision.kind))
}

/// Appends a revision whose body is `value` as JSON (see [`append`]).
pub async fn save_json<T: serde::Serialize>(
    session: &Session,
    record_id: RecordId,
    kind: Kind,
    links: Links,
    head: Option<&Revision>,
    value: &T,
) -> Result<Revision, String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    append(session, record_id, kind, links, head, bytes).await
}

/// The latest revision of every record of a visit, decrypted.
pub async fn of_visit(session: &Session, visit: VisitId) -> Result<Vec<Revision>, String> {
    let stored = session
        .store
        .list_latest_by_visit(visit)
        .await
        .map_err(|e| explain(&e))?;
    stored
        .iter()
        .map(|s| session.vault.open_revision(s).map_err(|e| e.to_string()))
        .collect()
}

/// One record being edited: its id, kind, links and latest revision, so each save appends
/// the next revision. Cheap to clone into save closures.
#[derive(Clone)]
pub struct Chain(std::rc::Rc<std::cell::RefCell<ChainState>>);

struct ChainState {
    record_id: RecordId,
    kind: Kind,
    links: Links,
    head: Option<Revision>,
    /// A save is in flight: the next one waits, so revisions follow one another.
    busy: bool,
}

impl Chain {
    /// A record whose latest revision is `head` (`None`: a new record, created on first save).
    pub fn new(record_id: RecordId, kind: Kind, links: Links, head: Option<Revision>) -> Chain {
        Chain(std::rc::Rc::new(std::cell::RefCell::new(ChainState {
            record_id,
            kind,
            links,
            head,
            busy: false,
        })))
    }

    /// Saves `value` as the next revision; resolves to when it was stored.
    pub async fn save<T: serde::Serialize>(
        &self,
        sessions: crate::session::Sessions,
        value: &T,
    ) -> Result<attune_core::Timestamp, String> {
        let session = sessions.current().ok_or("the tablet is locked")?;
        // Two saves of one record (typing and a flag tap) must not both build on the same
        // head; the second waits for the first. Writes take milliseconds.
        while self.0.borrow().busy {
            gloo_timers::future::TimeoutFuture::new(5).await;
        }
        let (record_id, kind, links, head) = {
            let mut s = self.0.borrow_mut();
            s.busy = true;
            (s.record_id, s.kind, s.links.clone(), s.head.clone())
        };
        let saved = save_json(&session, record_id, kind, links, head.as_ref(), value).await;
        let mut s = self.0.borrow_mut();
        s.busy = false;
        s.head = Some(saved?);
        Ok(now())
    }
}

/// Reads the JSON value kept under `key` in the profile's database, sealed by the vault as a
/// device-only value (never synced); `None` if there is none. `what` names it in errors.
pub async fn load_device_value<T: serde::de::DeserializeOwned>(
    session: &Session,
    key: &str,
    what: &str,
) -> Result<Option<T>, String> {
    let Some(sealed) = session.store.get_meta(key).await.map_err(|e| explain(&e))? else {
        return Ok(None);
    };
    // The plaintext may hold secrets (the enrolment's signing key): wiped when dropped.
    let bytes = zeroize::Zeroizing::new(
        session
            .vault
            .open_device_value(key, &sealed)
            .map_err(|e| format!("{what} could not be opened: {e}"))?,
    );
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{what} could not be read: {e}"))
}

/// Keeps `value` as JSON under `key`, sealed by the vault, in one strict write.
pub async fn save_device_value<T: serde::Serialize>(
    session: &Session,
    key: &str,
    value: &T,
) -> Result<(), String> {
    let bytes = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(|e| e.to_string())?);
    let sealed = session
        .vault
        .seal_device_value(key, &bytes)
        .map_err(|e| e.to_string())?;
    session
        .store
        .put_meta(key, sealed)
        .await
        .map_err(|e| explain(&e))
}
