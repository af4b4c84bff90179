//! The device's storage: [`IdbStore`], attune-core's [`RecordStore`] and [`BlobStore`] on
//! IndexedDB. It passes the same conformance suite as the reference
//! [`MemoryStore`](attune_core::MemoryStore) (`tests/idb_store.rs`).
//!
//! # Layout (schema version 1)
//!
//! | object store | key | indexes | row |
//! |---|---|---|---|
//! | `revisions` | `[record_id, rev]` | `by_kind`, `by_participant`, `by_visit`, `outbox` (unique) | every revision |
//! | `heads` | `record_id` | `by_kind`, `by_participant`, `by_visit` | the latest `rev` and `hash` of each record, with its kind and links |
//! | `chunks` | `[blob_id, index]` | | one sealed blob chunk |
//! | `meta` | out-of-line string | | `next_seq`: the next outbox sequence number |
//!
//! In clear: ids (UUID strings), revision numbers, kinds, times, hashes, sync state and the
//! put sequence. The revision content and the chunks are stored only as the vault sealed
//! them (`sealed`, a `Uint8Array`). A revision row has `outbox` (its put sequence number)
//! only while unsynced, so the `outbox` index is exactly the outbox, in put order. The
//! "latest by kind/participant/visit" lists read `heads`, so they never scan history.
//!
//! # Why raw web-sys and not indexed_db_futures
//!
//! indexed_db_futures 0.6 can set `durability: "strict"`, but its upgrade callback gets
//! only the database, not the upgrade transaction, so a later schema step could not add an
//! index to (or migrate rows of) an existing object store; and its transactions report
//! an abort without the transaction's error, which hides `QuotaExceededError`. The bindings
//! needed here are small (`js.rs`), so the store uses web-sys directly.
//!
//! # Schema changes
//!
//! [`SCHEMA`] is a list of [`UpgradeStep`]s; a database at version n has run steps 1..=n,
//! and opening it runs the newer steps in order. A new schema version appends a step and
//! never edits an old one.
//!
//! # Closed connections
//!
//! Browsers close IndexedDB connections on their own (iOS Safari under memory pressure),
//! and a connection closes itself when another tab needs to upgrade or delete the
//! database. Operations then fail with an error [`is_closed_error`] recognises; nothing is
//! lost, and [`IdbStore::reopen`] gets a working connection again.
//!
//! [`RecordStore`]: attune_core::RecordStore
//! [`BlobStore`]: attune_core::BlobStore

mod idb;
mod js;
mod rows;
mod schema;

pub use idb::{IdbStore, delete_database, is_closed_error};
pub use schema::{SCHEMA, Upgrade, UpgradeStep};
