//! The IndexedDB schema as a list of upgrade steps, one per version.
//!
//! A database at version n has run steps 1..=n. Opening it with a longer list runs only the
//! new steps, in order, inside the browser's upgrade transaction; a later schema therefore
//! adds a step at the end and never edits an old one (a device may be at any old version).

use attune_core::StoreError;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    IdbDatabase, IdbIndex, IdbIndexParameters, IdbObjectStore, IdbObjectStoreParameters,
    IdbTransaction,
};

/// Every revision: key `[record_id, rev]`.
pub(crate) const REVISIONS: &str = "revisions";
/// The latest revision number of each record, with its kind and links: key `record_id`.
pub(crate) const HEADS: &str = "heads";
/// Blob chunks: key `[blob_id, index]`.
pub(crate) const CHUNKS: &str = "chunks";
/// Store-wide counters (the outbox sequence): out-of-line string keys.
pub(crate) const META: &str = "meta";

/// Index (on `revisions` and `heads`) by record kind.
pub(crate) const BY_KIND: &str = "by_kind";
/// Index (on `revisions` and `heads`) by participant id; rows without one are not in it.
pub(crate) const BY_PARTICIPANT: &str = "by_participant";
/// Index (on `revisions` and `heads`) by visit id; rows without one are not in it.
pub(crate) const BY_VISIT: &str = "by_visit";
/// Index on `revisions` of the `outbox` field: the put sequence number, present only while
/// the revision is unsynced, so the index holds exactly the outbox in put order.
pub(crate) const OUTBOX: &str = "outbox";

/// The `meta` key of the next outbox sequence number.
pub(crate) const NEXT_SEQ: &str = "next_seq";

/// One schema upgrade step: what bringing a database to `version` does.
#[derive(Clone, Copy, Debug)]
pub struct UpgradeStep {
    /// The schema version this step produces. Steps are numbered 1, 2, 3... in list order.
    pub version: u32,
    /// What the step does, for error messages.
    pub summary: &'static str,
    /// Applies the step. It runs synchronously inside the upgrade (`versionchange`)
    /// transaction; an error aborts the whole upgrade, leaving the database at its old
    /// version.
    pub apply: fn(&Upgrade<'_>) -> Result<(), JsValue>,
}

/// The schema of this build of the app: version `SCHEMA.len()`.
pub const SCHEMA: &[UpgradeStep] = &[UpgradeStep {
    version: 1,
    summary: "revisions, heads, chunks and meta stores",
    apply: version_1,
}];

/// What an upgrade step works on: the database and its upgrade transaction (needed to
/// reach object stores created by earlier versions, e.g. to add an index to them).
#[derive(Debug)]
pub struct Upgrade<'a> {
    /// The database being upgraded.
    pub db: &'a IdbDatabase,
    /// The upgrade (`versionchange`) transaction.
    pub transaction: &'a IdbTransaction,
}

impl Upgrade<'_> {
    /// Creates an object store with an inline key: one field name, or several for a
    /// compound (array) key.
    ///
    /// # Errors
    /// The browser's error (e.g. `ConstraintError` if the store exists).
    pub fn create_store(&self, name: &str, key_path: &[&str]) -> Result<IdbObjectStore, JsValue> {
        let params = IdbObjectStoreParameters::new();
        match key_path {
            [] => {}
            [field] => params.set_key_path(&JsValue::from_str(field)),
            fields => params.set_key_path(&str_array(fields)),
        }
        self.db
            .create_object_store_with_optional_parameters(name, &params)
    }

    /// An object store that an earlier step created.
    ///
    /// # Errors
    /// `NotFoundError` if there is no such store.
    pub fn store(&self, name: &str) -> Result<IdbObjectStore, JsValue> {
        self.transaction.object_store(name)
    }

    /// Creates an index on one field of `store`.
    ///
    /// # Errors
    /// The browser's error (e.g. `ConstraintError` if the index exists).
    pub fn create_index(
        &self,
        store: &IdbObjectStore,
        name: &str,
        field: &str,
        unique: bool,
    ) -> Result<IdbIndex, JsValue> {
        let params = IdbIndexParameters::new();
        params.set_unique(unique);
        store.create_index_with_str_and_optional_parameters(name, field, &params)
    }
}

fn str_array(items: &[&str]) -> JsValue {
    items
        .iter()
        .map(|item| JsValue::from_str(item))
        .collect::<js_sys::Array>()
        .unchecked_into()
}

/// Version 1. Only ids, kinds, times, hashes and sync state are fields (and so indexable);
/// the sealed revision and chunk bytes are opaque `Uint8Array`s.
fn version_1(up: &Upgrade<'_>) -> Result<(), JsValue> {
    let revisions = up.create_store(REVISIONS, &["record_id", "rev"])?;
    // On every revision, not only the latest: a withdrawal purge must find old revisions
    // that named the participant before the record was relinked.
    up.create_index(&revisions, BY_KIND, "kind", false)?;
    up.create_index(&revisions, BY_PARTICIPANT, "participant", false)?;
    up.create_index(&revisions, BY_VISIT, "visit", false)?;
    up.create_index(&revisions, OUTBOX, "outbox", true)?;

    // The "latest by kind/participant/visit" lists read this small store, not history.
    let heads = up.create_store(HEADS, &["record_id"])?;
    up.create_index(&heads, BY_KIND, "kind", false)?;
    up.create_index(&heads, BY_PARTICIPANT, "participant", false)?;
    up.create_index(&heads, BY_VISIT, "visit", false)?;

    up.create_store(CHUNKS, &["blob_id", "index"])?;
    up.create_store(META, &[])?;
    Ok(())
}

/// Runs the steps that take a database from `old_version` to `new_version`, in order.
///
/// # Errors
/// A step that fails, as a [`StoreError::Backend`] naming it.
pub(crate) fn upgrade(
    up: &Upgrade<'_>,
    steps: &[UpgradeStep],
    old_version: u32,
    new_version: u32,
) -> Result<(), StoreError> {
    for step in steps
        .iter()
        .filter(|step| step.version > old_version && step.version <= new_version)
    {
        (step.apply)(up).map_err(|error| {
            StoreError::Backend(format!(
                "IndexedDB upgrade to schema version {} ({}) failed: {}",
                step.version,
                step.summary,
                super::js::describe(&error)
            ))
        })?;
    }
    Ok(())
}

/// Checks that `steps` is numbered 1, 2, 3... and returns the schema version it makes.
///
/// # Errors
/// [`StoreError::Backend`] for an empty or misnumbered list (a programming error).
pub(crate) fn schema_version(steps: &[UpgradeStep]) -> Result<u32, StoreError> {
    for (expected, step) in (1u32..).zip(steps) {
        if step.version != expected {
            return Err(StoreError::Backend(format!(
                "IndexedDB schema step {:?} is numbered {}, expected {expected}",
                step.summary, step.version
            )));
        }
    }
    u32::try_from(steps.len())
        .ok()
        .filter(|&version| version > 0)
        .ok_or_else(|| StoreError::Backend("IndexedDB schema has no steps".into()))
}
