//! [`IdbStore`]: attune-core's [`RecordStore`] and [`BlobStore`] on IndexedDB.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use attune_core::{
    BlobId, BlobStore, Kind, ParticipantId, PutOutcome, RecordId, RecordStore, StoreError,
    StoredRevision, SyncAck, VisitId,
};
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbFactory, IdbOpenDbRequest, IdbRequest, IdbVersionChangeEvent};

use super::js::{self, Mode, Pending, Tx, closed_error, store_error};
use super::rows::{self, Head};
use super::schema::{
    self, BY_KIND, BY_PARTICIPANT, BY_VISIT, CHUNKS, HEADS, META, NEXT_SEQ, OUTBOX, REVISIONS,
    SCHEMA, Upgrade, UpgradeStep,
};

/// Whether `error` means the IndexedDB connection was closed (by [`IdbStore::close`], by
/// another tab upgrading the database, or by the browser, as iOS Safari does under memory
/// pressure). The data is safe; call [`IdbStore::reopen`] and retry the operation.
pub fn is_closed_error(error: &StoreError) -> bool {
    js::is_closed(error)
}

/// Deletes the database `name` with everything in it. Open connections to it (in this tab
/// or others) are asked to close first; the deletion waits for them.
///
/// # Errors
/// [`StoreError::Backend`] if IndexedDB is unavailable or the deletion fails.
pub async fn delete_database(name: &str) -> Result<(), StoreError> {
    let request = factory()?
        .delete_database(name)
        .map_err(|error| store_error("delete_database", &error))?;
    Pending::new(request.into())
        .result()
        .await
        .map(drop)
        .map_err(|error| store_error("delete_database", &error))
}

/// The IndexedDB factory of this window or worker.
fn factory() -> Result<IdbFactory, StoreError> {
    Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|factory| factory.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| StoreError::Backend("IndexedDB is not available in this browser".into()))
}

/// A record and blob store in one IndexedDB database (one per fieldworker profile, e.g.
/// `attune-vault-<profile id>`).
///
/// Every operation is one IndexedDB transaction. Writes use `durability: "strict"` and
/// return only after the transaction's `complete` event, so a returned save is on disk.
/// The checks of a write (next revision, parent hash, conflicts, chunk gaps) run in the
/// write's own transaction, so concurrent writes, even from two tabs, cannot both win.
///
/// Not `Send`: IndexedDB lives on one thread. Dropping the store closes its connection.
#[derive(Debug)]
pub struct IdbStore {
    factory: IdbFactory,
    name: String,
    steps: Vec<UpgradeStep>,
    connection: RefCell<Connection>,
}

/// One open connection and the handlers that notice it closing.
#[derive(Debug)]
struct Connection {
    db: IdbDatabase,
    closed: Rc<Cell<bool>>,
    _on_version_change: Closure<dyn FnMut(IdbVersionChangeEvent)>,
    _on_close: Closure<dyn FnMut()>,
}

impl Connection {
    async fn open(
        factory: &IdbFactory,
        name: &str,
        steps: &[UpgradeStep],
    ) -> Result<Self, StoreError> {
        let version = schema::schema_version(steps)?;
        let request = factory
            .open_with_u32(name, version)
            .map_err(|error| store_error("open", &error))?;

        // The upgrade runs in the `upgradeneeded` handler, synchronously, inside the
        // browser's upgrade transaction; a failed step aborts it and the open fails.
        let upgrade_error: Rc<RefCell<Option<StoreError>>> = Rc::default();
        let on_upgrade = {
            let request = request.clone();
            let upgrade_error = Rc::clone(&upgrade_error);
            let steps = steps.to_vec();
            Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event: IdbVersionChangeEvent| {
                let result = run_upgrade(&request, &event, &steps, version);
                if let Err(error) = result {
                    if let Some(tx) = request.transaction() {
                        let _ = tx.abort();
                    }
                    *upgrade_error.borrow_mut() = Some(error);
                }
            })
        };
        request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        let opened = Pending::new(IdbRequest::clone(&request)).result().await;
        request.set_onupgradeneeded(None);
        drop(on_upgrade);

        if let Some(error) = upgrade_error.borrow_mut().take() {
            return Err(error);
        }
        let db = opened
            .map_err(|error| open_error(&error, version))?
            .dyn_into::<IdbDatabase>()
            .map_err(|_| StoreError::Backend("IndexedDB open returned no database".into()))?;
        Ok(Self::watch(db))
    }

    /// Wraps `db`, closing it when another connection wants to upgrade or delete the
    /// database (otherwise this tab would block that forever) and noting when the browser
    /// closes it.
    fn watch(db: IdbDatabase) -> Self {
        let closed = Rc::new(Cell::new(false));
        let on_version_change = {
            let (db, closed) = (db.clone(), Rc::clone(&closed));
            Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |_event| {
                db.close();
                closed.set(true);
            })
        };
        let on_close = {
            let closed = Rc::clone(&closed);
            Closure::<dyn FnMut()>::new(move || closed.set(true))
        };
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Self {
            db,
            closed,
            _on_version_change: on_version_change,
            _on_close: on_close,
        }
    }

    fn close(&self) {
        self.db.close();
        self.closed.set(true);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The handlers' closures are freed with this struct; a later event must not call them.
        self.db.set_onversionchange(None);
        self.db.set_onclose(None);
        self.close();
    }
}

fn run_upgrade(
    request: &IdbOpenDbRequest,
    event: &IdbVersionChangeEvent,
    steps: &[UpgradeStep],
    version: u32,
) -> Result<(), StoreError> {
    let db = request
        .result()
        .ok()
        .and_then(|db| db.dyn_into::<IdbDatabase>().ok())
        .ok_or_else(|| StoreError::Backend("IndexedDB upgrade has no database".into()))?;
    let transaction = request
        .transaction()
        .ok_or_else(|| StoreError::Backend("IndexedDB upgrade has no transaction".into()))?;
    // Versions are small integers set by this code. Any other old version runs every step,
    // which fails on the existing stores and so leaves the database untouched.
    let old_version = event.old_version();
    let old_version =
        if old_version.fract() == 0.0 && (0.0..=f64::from(version)).contains(&old_version) {
            old_version as u32
        } else {
            0
        };
    let upgrade = Upgrade {
        db: &db,
        transaction: &transaction,
    };
    schema::upgrade(&upgrade, steps, old_version, version)
}

fn open_error(error: &JsValue, version: u32) -> StoreError {
    let is_version_error = error
        .dyn_ref::<web_sys::DomException>()
        .is_some_and(|exception| exception.name() == "VersionError");
    if is_version_error {
        // A newer build of the app upgraded this database; this (older) one cannot read it.
        StoreError::Backend(format!(
            "IndexedDB database is newer than this app's schema version {version}; reload the app"
        ))
    } else {
        store_error("open", error)
    }
}

impl IdbStore {
    /// Opens (creating or upgrading as needed) the database `db_name` with this app's
    /// [`SCHEMA`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] if IndexedDB is unavailable, the database was created by a
    /// newer schema, or the upgrade fails.
    pub async fn open(db_name: &str) -> Result<IdbStore, StoreError> {
        Self::open_with_steps(db_name, SCHEMA).await
    }

    /// Opens `db_name` with the schema `steps` (numbered 1, 2, ...) instead of
    /// [`SCHEMA`]: for testing a future schema version against databases made by this one.
    ///
    /// # Errors
    /// As [`IdbStore::open`], and for a misnumbered step list.
    pub async fn open_with_steps(
        db_name: &str,
        steps: &[UpgradeStep],
    ) -> Result<IdbStore, StoreError> {
        Self::open_in(&factory()?, db_name, steps).await
    }

    /// Opens `db_name` with the schema `steps` in another IndexedDB than the page's own:
    /// a storage bucket's (`StorageBucket.indexedDB`), which can have its own quota,
    /// persistence and eviction.
    ///
    /// # Errors
    /// As [`IdbStore::open_with_steps`].
    pub async fn open_in(
        factory: &IdbFactory,
        db_name: &str,
        steps: &[UpgradeStep],
    ) -> Result<IdbStore, StoreError> {
        let connection = Connection::open(factory, db_name, steps).await?;
        Ok(IdbStore {
            factory: factory.clone(),
            name: db_name.to_owned(),
            steps: steps.to_vec(),
            connection: RefCell::new(connection),
        })
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the connection. Later operations fail with an error that
    /// [`is_closed_error`] recognises, until [`IdbStore::reopen`].
    pub fn close(&self) {
        self.connection.borrow().close();
    }

    /// Whether the connection is closed (by [`IdbStore::close`], another tab's upgrade or
    /// the browser).
    pub fn is_closed(&self) -> bool {
        self.connection.borrow().closed.get()
    }

    /// Opens a new connection to the same database and uses it from now on (after a
    /// [closed error](is_closed_error)). The old connection is closed.
    ///
    /// # Errors
    /// As [`IdbStore::open`].
    pub async fn reopen(&self) -> Result<(), StoreError> {
        let connection = Connection::open(&self.factory, &self.name, &self.steps).await?;
        // Replacing drops, and so closes, the old connection.
        *self.connection.borrow_mut() = connection;
        Ok(())
    }

    /// A small value the app keeps beside the records (the profile list, the device id),
    /// under `key`; `None` when never written. Kept in the `meta` store under an `app:`
    /// prefix so it cannot collide with the store's own bookkeeping.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when IndexedDB fails or the value is not bytes.
    pub async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        const WHAT: &str = "get_meta";
        let tx = self.begin(WHAT, &[META], Mode::Read)?;
        let meta = self.store(WHAT, &tx, META)?;
        let value = self.request(WHAT, meta.get(&app_meta_key(key))).await?;
        if value.is_undefined() {
            return Ok(None);
        }
        value
            .dyn_into::<js_sys::Uint8Array>()
            .map(|bytes| Some(bytes.to_vec()))
            .map_err(|_| {
                StoreError::Backend(format!(
                    "malformed row in IndexedDB store `{META}`: `{key}` is not bytes"
                ))
            })
    }

    /// Writes a value read by [`IdbStore::get_meta`], in one strict transaction.
    ///
    /// # Errors
    /// [`StoreError::QuotaExceeded`] when the device is full, else [`StoreError::Backend`].
    pub async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        const WHAT: &str = "put_meta";
        let tx = self.begin(WHAT, &[META], Mode::WriteStrict)?;
        let meta = self.store(WHAT, &tx, META)?;
        let bytes = js_sys::Uint8Array::from(value.as_slice());
        if let Err(error) = meta.put_with_key(&bytes, &app_meta_key(key)) {
            tx.abort();
            return Err(self.error(WHAT, &error));
        }
        self.commit(WHAT, tx).await
    }

    /// Starts a transaction, or says the connection is closed.
    fn begin(&self, what: &str, stores: &[&str], mode: Mode) -> Result<Tx, StoreError> {
        let connection = self.connection.borrow();
        if connection.closed.get() {
            return Err(closed_error(what));
        }
        Tx::start(&connection.db, stores, mode).map_err(|error| self.error(what, &error))
    }

    /// Maps a browser error, reporting any failure after the connection closed as closed.
    fn error(&self, what: &str, error: &JsValue) -> StoreError {
        if self.is_closed() {
            closed_error(&format!("{what}: {}", js::describe(error)))
        } else {
            store_error(what, error)
        }
    }

    /// Waits for a request made by `make`.
    async fn request(
        &self,
        what: &str,
        make: Result<IdbRequest, JsValue>,
    ) -> Result<JsValue, StoreError> {
        let request = make.map_err(|error| self.error(what, &error))?;
        Pending::new(request)
            .result()
            .await
            .map_err(|error| self.error(what, &error))
    }

    /// Waits for `tx` to commit durably.
    async fn commit(&self, what: &str, tx: Tx) -> Result<(), StoreError> {
        tx.commit().await.map_err(|error| self.error(what, &error))
    }

    fn store(
        &self,
        what: &str,
        tx: &Tx,
        name: &str,
    ) -> Result<web_sys::IdbObjectStore, StoreError> {
        tx.store(name).map_err(|error| self.error(what, &error))
    }

    /// The checks and writes of [`RecordStore::put_revision`], inside `tx`. Returns
    /// `Ok(None)` when there is nothing to write.
    async fn put_in(
        &self,
        tx: &Tx,
        revision: &StoredRevision,
    ) -> Result<Option<PutOutcome>, StoreError> {
        const WHAT: &str = "put_revision";
        let record = revision.record_id;
        let heads = self.store(WHAT, tx, HEADS)?;
        let revisions = self.store(WHAT, tx, REVISIONS)?;
        let meta = self.store(WHAT, tx, META)?;

        let head = self
            .request(WHAT, heads.get(&record.to_string().into()))
            .await?;
        let head: Option<Head> = if head.is_undefined() {
            None
        } else {
            Some(rows::read_head(&head)?)
        };

        // The same order of checks as attune-core's MemoryStore.
        if let Some(head) = head
            && revision.rev >= 1
            && revision.rev <= head.rev
        {
            let key = rows::revision_key(record, revision.rev);
            let existing = self.request(WHAT, revisions.get(&key)).await?;
            if existing.is_undefined() {
                return Err(StoreError::Backend(format!(
                    "IndexedDB store `{REVISIONS}` lacks a revision below its `{HEADS}` entry"
                )));
            }
            let existing = rows::read_revision(&existing)?;
            return if existing.is_same_revision(revision) {
                Ok(None)
            } else {
                Err(StoreError::Conflict {
                    record,
                    rev: revision.rev,
                })
            };
        }
        let expected = head.map_or(1, |head| head.rev.saturating_add(1));
        if revision.rev != expected {
            return Err(StoreError::NotNextRevision {
                record,
                expected,
                got: revision.rev,
            });
        }
        if revision.parent_hash != head.map(|head| head.hash) {
            return Err(StoreError::ParentMismatch {
                record,
                rev: revision.rev,
            });
        }

        let next_seq = self.request(WHAT, meta.get(&NEXT_SEQ.into())).await?;
        let seq = if next_seq.is_undefined() {
            0
        } else {
            rows::read_count(META, &next_seq)?
        };
        let revision_row = rows::revision_row(revision, seq)?;
        let head_row = rows::head_row(revision)?;
        let following = rows::seq_value(seq + 1)?;
        // `add`, not `put`: a revision is never overwritten, even if the heads were wrong.
        let writes = [
            revisions.add(&revision_row),
            heads.put(&head_row),
            meta.put_with_key(&following, &NEXT_SEQ.into()),
        ];
        for write in writes {
            write.map_err(|error| self.error(WHAT, &error))?;
        }
        Ok(Some(PutOutcome::Stored))
    }

    /// The latest revisions of the records whose head is in `index` under `key`, ordered
    /// by record id.
    async fn list_latest(
        &self,
        what: &str,
        index: &str,
        key: JsValue,
    ) -> Result<Vec<StoredRevision>, StoreError> {
        let tx = self.begin(what, &[HEADS, REVISIONS], Mode::Read)?;
        let heads = self.store(what, &tx, HEADS)?;
        let revisions = self.store(what, &tx, REVISIONS)?;
        let index = heads
            .index(index)
            .map_err(|error| self.error(what, &error))?;
        // An index lists equal keys by primary key, i.e. by record id.
        let found = self.request(what, index.get_all_with_key(&key)).await?;
        let found = rows::read_array(HEADS, found)?;

        // Ask for every revision at once; they arrive in order.
        let mut pending = Vec::new();
        for head in found.iter() {
            let head = rows::read_head(&head)?;
            let key = rows::revision_key(head.record_id, head.rev);
            let request = revisions
                .get(&key)
                .map_err(|error| self.error(what, &error))?;
            pending.push(Pending::new(request));
        }
        let mut latest = Vec::with_capacity(pending.len());
        for request in pending {
            let row = request
                .result()
                .await
                .map_err(|error| self.error(what, &error))?;
            if row.is_undefined() {
                return Err(StoreError::Backend(format!(
                    "IndexedDB store `{HEADS}` names a revision missing from `{REVISIONS}`"
                )));
            }
            latest.push(rows::read_revision(&row)?);
        }
        Ok(latest)
    }
}

impl RecordStore for IdbStore {
    async fn put_revision(&self, revision: StoredRevision) -> Result<PutOutcome, StoreError> {
        const WHAT: &str = "put_revision";
        // Refuse what cannot be stored before opening a transaction.
        rows::time_value(revision.time)?;
        let tx = self.begin(WHAT, &[REVISIONS, HEADS, META], Mode::WriteStrict)?;
        match self.put_in(&tx, &revision).await {
            Ok(Some(outcome)) => {
                self.commit(WHAT, tx).await?;
                Ok(outcome)
            }
            Ok(None) => {
                // Already stored: nothing was written, so nothing needs flushing.
                tx.abort();
                Ok(PutOutcome::AlreadyStored)
            }
            Err(error) => {
                tx.abort();
                Err(error)
            }
        }
    }

    async fn latest(&self, record: RecordId) -> Result<Option<StoredRevision>, StoreError> {
        const WHAT: &str = "latest";
        let tx = self.begin(WHAT, &[HEADS, REVISIONS], Mode::Read)?;
        let heads = self.store(WHAT, &tx, HEADS)?;
        let revisions = self.store(WHAT, &tx, REVISIONS)?;
        let head = self
            .request(WHAT, heads.get(&record.to_string().into()))
            .await?;
        if head.is_undefined() {
            return Ok(None);
        }
        let head = rows::read_head(&head)?;
        let key = rows::revision_key(head.record_id, head.rev);
        let row = self.request(WHAT, revisions.get(&key)).await?;
        if row.is_undefined() {
            return Err(StoreError::Backend(format!(
                "IndexedDB store `{HEADS}` names a revision missing from `{REVISIONS}`"
            )));
        }
        rows::read_revision(&row).map(Some)
    }

    async fn history(&self, record: RecordId) -> Result<Vec<StoredRevision>, StoreError> {
        const WHAT: &str = "history";
        let tx = self.begin(WHAT, &[REVISIONS], Mode::Read)?;
        let revisions = self.store(WHAT, &tx, REVISIONS)?;
        let range = rows::record_range(record).map_err(|error| self.error(WHAT, &error))?;
        let found = self
            .request(WHAT, revisions.get_all_with_key(&range))
            .await?;
        rows::read_array(REVISIONS, found)?
            .iter()
            .map(|row| rows::read_revision(&row))
            .collect()
    }

    async fn list_latest_by_kind(&self, kind: Kind) -> Result<Vec<StoredRevision>, StoreError> {
        self.list_latest("list_latest_by_kind", BY_KIND, kind.as_str().into())
            .await
    }

    async fn list_latest_by_participant(
        &self,
        participant: ParticipantId,
    ) -> Result<Vec<StoredRevision>, StoreError> {
        self.list_latest(
            "list_latest_by_participant",
            BY_PARTICIPANT,
            participant.to_string().into(),
        )
        .await
    }

    async fn list_latest_by_visit(
        &self,
        visit: VisitId,
    ) -> Result<Vec<StoredRevision>, StoreError> {
        self.list_latest("list_latest_by_visit", BY_VISIT, visit.to_string().into())
            .await
    }

    async fn unsynced(&self, limit: usize) -> Result<Vec<StoredRevision>, StoreError> {
        const WHAT: &str = "unsynced";
        // getAll treats a count of 0 as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let tx = self.begin(WHAT, &[REVISIONS], Mode::Read)?;
        let revisions = self.store(WHAT, &tx, REVISIONS)?;
        let outbox = revisions
            .index(OUTBOX)
            .map_err(|error| self.error(WHAT, &error))?;
        let found = self
            .request(
                WHAT,
                outbox.get_all_with_key_and_limit(&JsValue::UNDEFINED, limit),
            )
            .await?;
        rows::read_array(REVISIONS, found)?
            .iter()
            .map(|row| rows::read_revision(&row))
            .collect()
    }

    async fn mark_synced(&self, acknowledged: &[SyncAck]) -> Result<usize, StoreError> {
        const WHAT: &str = "mark_synced";
        let tx = self.begin(WHAT, &[REVISIONS], Mode::WriteStrict)?;
        let result = self.mark_synced_in(&tx, acknowledged).await;
        match result {
            Ok(0) => {
                tx.abort();
                Ok(0)
            }
            Ok(marked) => {
                self.commit(WHAT, tx).await?;
                Ok(marked)
            }
            Err(error) => {
                tx.abort();
                Err(error)
            }
        }
    }

    async fn count_unsynced(&self) -> Result<usize, StoreError> {
        const WHAT: &str = "count_unsynced";
        let tx = self.begin(WHAT, &[REVISIONS], Mode::Read)?;
        let revisions = self.store(WHAT, &tx, REVISIONS)?;
        let outbox = revisions
            .index(OUTBOX)
            .map_err(|error| self.error(WHAT, &error))?;
        let count = self.request(WHAT, outbox.count()).await?;
        let count = rows::read_count(REVISIONS, &count)?;
        usize::try_from(count).map_err(|_| StoreError::Backend("outbox count overflows".into()))
    }

    async fn purge_participant(&self, participant: ParticipantId) -> Result<usize, StoreError> {
        const WHAT: &str = "purge_participant";
        let tx = self.begin(WHAT, &[HEADS, REVISIONS], Mode::WriteStrict)?;
        match self.purge_participant_in(&tx, participant).await {
            Ok(0) => {
                tx.abort();
                Ok(0)
            }
            Ok(purged) => {
                self.commit(WHAT, tx).await?;
                Ok(purged)
            }
            Err(error) => {
                tx.abort();
                Err(error)
            }
        }
    }
}

impl IdbStore {
    /// The reads and writes of [`RecordStore::mark_synced`], inside `tx`; how many
    /// revisions it marked.
    async fn mark_synced_in(&self, tx: &Tx, acknowledged: &[SyncAck]) -> Result<usize, StoreError> {
        const WHAT: &str = "mark_synced";
        let revisions = self.store(WHAT, tx, REVISIONS)?;
        // Read every acknowledged revision at once.
        let mut pending = Vec::new();
        for &(record, rev, hash) in acknowledged {
            if rev == 0 {
                continue;
            }
            let request = revisions
                .get(&rows::revision_key(record, rev))
                .map_err(|error| self.error(WHAT, &error))?;
            pending.push(((record, rev, hash), Pending::new(request)));
        }
        // The same revision acknowledged twice in one batch counts once.
        let mut marked = HashSet::new();
        for ((record, rev, hash), request) in pending {
            let row = request
                .result()
                .await
                .map_err(|error| self.error(WHAT, &error))?;
            if row.is_undefined() || marked.contains(&(record, rev)) {
                continue;
            }
            let (stored_hash, synced) = rows::read_sync_state(&row)?;
            if stored_hash != hash || synced {
                continue;
            }
            // Change only the sync fields, keeping any field a later schema added.
            let update = || -> Result<(), JsValue> {
                Reflect::set(&row, &"synced".into(), &true.into())?;
                Reflect::delete_property(row.unchecked_ref::<js_sys::Object>(), &"outbox".into())?;
                revisions.put(&row).map(drop)
            };
            update().map_err(|error| self.error(WHAT, &error))?;
            marked.insert((record, rev));
        }
        Ok(marked.len())
    }
}

impl IdbStore {
    /// The deletes of [`RecordStore::purge_participant`], inside `tx`; how many records it
    /// deleted.
    async fn purge_participant_in(
        &self,
        tx: &Tx,
        participant: ParticipantId,
    ) -> Result<usize, StoreError> {
        const WHAT: &str = "purge_participant";
        let heads = self.store(WHAT, tx, HEADS)?;
        let revisions = self.store(WHAT, tx, REVISIONS)?;
        // The heads index holds each record's latest links: exactly the records to purge.
        let index = heads
            .index(BY_PARTICIPANT)
            .map_err(|error| self.error(WHAT, &error))?;
        let records = self
            .request(
                WHAT,
                index.get_all_keys_with_key(&participant.to_string().into()),
            )
            .await?;
        let records = rows::read_array(HEADS, records)?;
        // Deleting revisions also takes them out of the outbox index. The requests run in
        // order within the transaction; its commit is what makes them all happen or none.
        for record in records.iter() {
            let range =
                rows::record_key_range(&record).map_err(|error| self.error(WHAT, &error))?;
            revisions
                .delete(&range)
                .map_err(|error| self.error(WHAT, &error))?;
            heads
                .delete(&record)
                .map_err(|error| self.error(WHAT, &error))?;
        }
        Ok(records.length() as usize)
    }
}

impl BlobStore for IdbStore {
    async fn put_chunk(&self, blob: BlobId, index: u32, sealed: Vec<u8>) -> Result<(), StoreError> {
        const WHAT: &str = "put_chunk";
        let row = rows::chunk_row(blob, index, &sealed)?;
        let tx = self.begin(WHAT, &[CHUNKS], Mode::WriteStrict)?;
        let written = async {
            let chunks = self.store(WHAT, &tx, CHUNKS)?;
            let range = rows::blob_range(blob).map_err(|error| self.error(WHAT, &error))?;
            let count = self.request(WHAT, chunks.count_with_key(&range)).await?;
            // Chunks are gap-free from 0, so their count is the next index.
            let count = u32::try_from(rows::read_count(CHUNKS, &count)?)
                .map_err(|_| StoreError::Backend("too many chunks".into()))?;
            if index > count {
                return Err(StoreError::ChunkGap {
                    blob,
                    expected: count,
                    got: index,
                });
            }
            // `put`: a retried write replaces the chunk.
            chunks
                .put(&row)
                .map(drop)
                .map_err(|error| self.error(WHAT, &error))
        }
        .await;
        match written {
            Ok(()) => self.commit(WHAT, tx).await,
            Err(error) => {
                tx.abort();
                Err(error)
            }
        }
    }

    async fn chunk(&self, blob: BlobId, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        const WHAT: &str = "chunk";
        let tx = self.begin(WHAT, &[CHUNKS], Mode::Read)?;
        let chunks = self.store(WHAT, &tx, CHUNKS)?;
        let row = self
            .request(WHAT, chunks.get(&rows::chunk_key(blob, index)))
            .await?;
        if row.is_undefined() {
            Ok(None)
        } else {
            rows::read_chunk(&row).map(Some)
        }
    }

    async fn chunk_count(&self, blob: BlobId) -> Result<u32, StoreError> {
        const WHAT: &str = "chunk_count";
        let tx = self.begin(WHAT, &[CHUNKS], Mode::Read)?;
        let chunks = self.store(WHAT, &tx, CHUNKS)?;
        let range = rows::blob_range(blob).map_err(|error| self.error(WHAT, &error))?;
        let count = self.request(WHAT, chunks.count_with_key(&range)).await?;
        u32::try_from(rows::read_count(CHUNKS, &count)?)
            .map_err(|_| StoreError::Backend("too many chunks".into()))
    }

    async fn delete_blob(&self, blob: BlobId) -> Result<(), StoreError> {
        const WHAT: &str = "delete_blob";
        let tx = self.begin(WHAT, &[CHUNKS], Mode::WriteStrict)?;
        let deleted = self
            .store(WHAT, &tx, CHUNKS)
            .and_then(|chunks| {
                let range = rows::blob_range(blob).map_err(|error| self.error(WHAT, &error))?;
                chunks
                    .delete(&range)
                    .map_err(|error| self.error(WHAT, &error))
            })
            .map(drop);
        match deleted {
            Ok(()) => self.commit(WHAT, tx).await,
            Err(error) => {
                tx.abort();
                Err(error)
            }
        }
    }
}

/// The `meta` key of an app value.
fn app_meta_key(key: &str) -> JsValue {
    JsValue::from_str(&format!("app:{key}"))
}
