//! The IndexedDB store in headless Chromium (wasm-bindgen-test): the shared conformance
//! suite, schema upgrades, durability and closed connections.
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use attune::store::{IdbStore, SCHEMA, Upgrade, UpgradeStep, delete_database, is_closed_error};
use attune_core::{
    Authorship, BlobId, BlobStore, DeviceId, Kind, Links, ParticipantId, ProfileId, PutOutcome,
    RecordId, RecordStore, Revision, StoreError, StoredRevision, Timestamp, VisitId,
};
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A database name no other test uses.
fn unique_name(purpose: &str) -> String {
    thread_local!(static COUNTER: Cell<u32> = const { Cell::new(0) });
    let n = COUNTER.with(|counter| {
        counter.set(counter.get() + 1);
        counter.get()
    });
    let random = (js_sys::Math::random() * 1e9) as u64;
    format!("attune-test-{purpose}-{}-{n}-{random}", js_sys::Date::now())
}

async fn get_store() -> IdbStore {
    IdbStore::open(&unique_name("conformance"))
        .await
        .expect("a fresh database opens")
}

attune_core::record_store_conformance_tests!(#[wasm_bindgen_test::wasm_bindgen_test], get_store);

const T0: i64 = 1_750_000_000_000;

fn by(offset: i64) -> Authorship {
    Authorship {
        device: DeviceId::from_bytes([0xd0; 16]),
        author: ProfileId::from_bytes([0xa0; 16]),
        time: Timestamp(T0 + offset),
    }
}

fn links(participant: u8, visit: u8) -> Links {
    Links {
        participant: Some(ParticipantId::from_bytes([participant; 16])),
        visit: Some(VisitId::from_bytes([visit; 16])),
        protocol: None,
    }
}

fn first(n: i64, kind: Kind, links: Links) -> Revision {
    let id = RecordId::new(Timestamp(T0 + n));
    Revision::first(id, kind, links, format!("body {n}").into_bytes(), by(0))
}

fn next(previous: &Revision) -> Revision {
    previous
        .next(b"edited".to_vec(), by(i64::from(previous.rev)))
        .expect("revision number in range")
}

fn stored(revision: &Revision) -> StoredRevision {
    let sealed = format!("sealed {} rev {}", revision.record_id, revision.rev).into_bytes();
    StoredRevision::new(revision, sealed)
}

async fn put(store: &IdbStore, revision: &Revision) {
    assert_eq!(
        store.put_revision(stored(revision)).await,
        Ok(PutOutcome::Stored)
    );
}

/// Awaits an `IDBRequest`-like object (`onsuccess`/`onerror`) and returns its result.
async fn idb_request(request: &JsValue) -> JsValue {
    let promise = Promise::new(&mut |resolve, reject| {
        Reflect::set(request, &"onsuccess".into(), &resolve).expect("set onsuccess");
        Reflect::set(request, &"onerror".into(), &reject).expect("set onerror");
    });
    JsFuture::from(promise).await.expect("the request succeeds");
    Reflect::get(request, &"result".into()).expect("request result")
}

/// The index names of object store `store` in database `name`, read with a raw connection
/// at whatever version the database has.
async fn index_names(name: &str, store: &str) -> Vec<String> {
    let db = raw_open(name).await;
    let names = db
        .transaction_with_str(store)
        .and_then(|tx| tx.object_store(store))
        .map(|store| store.index_names())
        .expect("the store exists");
    db.close();
    (0..names.length()).filter_map(|i| names.item(i)).collect()
}

/// A connection to database `name` that bypasses IdbStore, at whatever version it has.
async fn raw_open(name: &str) -> web_sys::IdbDatabase {
    let factory = Reflect::get(&js_sys::global(), &"indexedDB".into()).expect("indexedDB");
    let open: Function = Reflect::get(&factory, &"open".into())
        .expect("indexedDB.open")
        .unchecked_into();
    let request = open.call1(&factory, &name.into()).expect("open request");
    idb_request(&request).await.unchecked_into()
}

thread_local! {
    /// The version the test's schema step 2 upgraded from, once it ran.
    static STEP_2_RAN_FROM: Cell<Option<u32>> = const { Cell::new(None) };
}

/// A future schema step for the tests: an index on `revisions` by time. It has to reach
/// an object store that step 1 created, through the upgrade transaction.
fn step_2(up: &Upgrade<'_>) -> Result<(), JsValue> {
    let revisions = up.store("revisions")?;
    up.create_index(&revisions, "by_time", "time", false)?;
    STEP_2_RAN_FROM.with(|ran| ran.set(Some(1)));
    Ok(())
}

const STEP_2: UpgradeStep = UpgradeStep {
    version: 2,
    summary: "test: index revisions by time",
    apply: step_2,
};

fn steps_plus_a_test_step() -> Vec<UpgradeStep> {
    SCHEMA.iter().copied().chain([STEP_2]).collect()
}

#[wasm_bindgen_test]
async fn a_database_created_by_schema_v1_opens_with_the_next_version_without_loss() {
    assert_eq!(SCHEMA.len(), 1, "this test upgrades from version 1");
    let name = unique_name("upgrade");
    let v1 = IdbStore::open(&name).await.expect("opens at version 1");

    let consent = first(1, Kind::Consent, links(1, 1));
    let consent_2 = next(&consent);
    let note = first(2, Kind::InterviewNote, links(2, 1));
    let reflection = first(3, Kind::Reflection, Links::default());
    for revision in [&consent, &note, &consent_2, &reflection] {
        put(&v1, revision).await;
    }
    assert_eq!(v1.mark_synced(&[stored(&note).sync_key()]).await, Ok(1));
    let audio = BlobId::from_bytes([7; 16]);
    let chunks: Vec<Vec<u8>> = vec![vec![1; 100], Vec::new(), vec![3; 70_000]];
    for (index, chunk) in (0u32..).zip(&chunks) {
        v1.put_chunk(audio, index, chunk.clone())
            .await
            .expect("chunk stored");
    }
    let outbox_before = v1.unsynced(100).await.expect("outbox");
    v1.close();
    drop(v1);

    let v2 = IdbStore::open_with_steps(&name, &steps_plus_a_test_step())
        .await
        .expect("opens at version 2");
    assert_eq!(STEP_2_RAN_FROM.with(Cell::get), Some(1));
    assert!(
        index_names(&name, "revisions")
            .await
            .contains(&"by_time".to_owned())
    );

    let mut synced_note = stored(&note);
    synced_note.synced = true;
    assert_eq!(
        v2.history(consent.record_id).await,
        Ok(vec![stored(&consent), stored(&consent_2)])
    );
    assert_eq!(
        v2.latest(consent.record_id).await,
        Ok(Some(stored(&consent_2)))
    );
    assert_eq!(
        v2.history(note.record_id).await,
        Ok(vec![synced_note.clone()])
    );
    assert_eq!(
        v2.latest(reflection.record_id).await,
        Ok(Some(stored(&reflection)))
    );
    assert_eq!(
        v2.list_latest_by_kind(Kind::Consent).await,
        Ok(vec![stored(&consent_2)])
    );
    assert_eq!(
        v2.list_latest_by_participant(ParticipantId::from_bytes([2; 16]))
            .await,
        Ok(vec![synced_note.clone()])
    );
    assert_eq!(
        v2.list_latest_by_visit(VisitId::from_bytes([1; 16])).await,
        Ok(vec![stored(&consent_2), synced_note])
    );
    let outbox = v2.unsynced(100).await.expect("outbox");
    assert_eq!(outbox, outbox_before);
    assert_eq!(
        outbox,
        vec![stored(&consent), stored(&consent_2), stored(&reflection)]
    );
    assert_eq!(v2.chunk_count(audio).await, Ok(3));
    for (index, chunk) in (0u32..).zip(&chunks) {
        assert_eq!(v2.chunk(audio, index).await, Ok(Some(chunk.clone())));
    }

    // And the upgraded database keeps working: the outbox order continues after the old
    // entries.
    let consent_3 = next(&consent_2);
    put(&v2, &consent_3).await;
    let outbox = v2.unsynced(100).await.expect("outbox");
    assert_eq!(outbox.last(), Some(&stored(&consent_3)));
    assert_eq!(v2.count_unsynced().await, Ok(4));
}

#[wasm_bindgen_test]
async fn an_older_app_refuses_a_database_a_newer_one_upgraded() {
    let name = unique_name("downgrade");
    let newer = IdbStore::open_with_steps(&name, &steps_plus_a_test_step())
        .await
        .expect("opens at version 2");
    newer.close();
    let older = IdbStore::open(&name).await;
    let Err(StoreError::Backend(message)) = older else {
        panic!("an older schema opened a newer database: {older:?}");
    };
    assert!(message.contains("newer"), "{message}");
}

fn failing_step(up: &Upgrade<'_>) -> Result<(), JsValue> {
    // Creating a store that exists fails with ConstraintError.
    up.create_store("revisions", &["record_id", "rev"])
        .map(drop)
}

#[wasm_bindgen_test]
async fn a_failed_upgrade_leaves_the_database_as_it_was() {
    let name = unique_name("failed-upgrade");
    let v1 = IdbStore::open(&name).await.expect("opens at version 1");
    let one = first(1, Kind::InterviewNote, links(1, 1));
    put(&v1, &one).await;
    v1.close();

    let broken = [
        SCHEMA[0],
        UpgradeStep {
            version: 2,
            summary: "test: a step that fails",
            apply: failing_step,
        },
    ];
    let opened = IdbStore::open_with_steps(&name, &broken).await;
    let Err(StoreError::Backend(message)) = opened else {
        panic!("a failing step did not fail the open: {opened:?}");
    };
    assert!(message.contains("schema version 2"), "{message}");

    let again = IdbStore::open(&name)
        .await
        .expect("still at version 1, so version 1 opens it");
    assert_eq!(again.latest(one.record_id).await, Ok(Some(stored(&one))));
    assert_eq!(again.count_unsynced().await, Ok(1));
}

#[wasm_bindgen_test]
async fn a_damaged_row_is_reported_as_an_error_naming_its_store() {
    let name = unique_name("damaged");
    let store = IdbStore::open(&name).await.expect("opens");
    let one = first(1, Kind::InterviewNote, links(1, 1));
    put(&store, &one).await;

    // Damage the revision behind IdbStore's back: its sealed bytes become a string.
    let db = raw_open(&name).await;
    let tx = db
        .transaction_with_str_and_mode("revisions", web_sys::IdbTransactionMode::Readwrite)
        .expect("a raw transaction");
    let revisions = tx.object_store("revisions").expect("revisions");
    let key = Array::of2(&one.record_id.to_string().into(), &1.into());
    let row = idb_request(&revisions.get(&key).expect("get")).await;
    Reflect::set(&row, &"sealed".into(), &"not bytes".into()).expect("set");
    idb_request(&revisions.put(&row).expect("put")).await;
    db.close();

    let damaged = store.latest(one.record_id).await;
    let Err(StoreError::Backend(message)) = damaged else {
        panic!("a damaged row read back as {damaged:?}");
    };
    assert!(message.contains("`revisions`"), "{message}");
    assert!(message.contains("sealed"), "{message}");
    assert!(store.unsynced(10).await.is_err());
}

#[wasm_bindgen_test]
async fn misnumbered_schema_steps_are_refused() {
    let skipping = [
        SCHEMA[0],
        UpgradeStep {
            version: 3,
            ..STEP_2
        },
    ];
    let opened = IdbStore::open_with_steps(&unique_name("misnumbered"), &skipping).await;
    assert!(matches!(opened, Err(StoreError::Backend(_))), "{opened:?}");
}

/// JS that wraps `IDBDatabase.prototype.transaction` to log each transaction's mode,
/// durability and stores, and whether its `complete` event fired. Returns the function
/// that undoes the wrapping.
const LOG_TRANSACTIONS: &str = r#"
const proto = IDBDatabase.prototype;
const original = proto.transaction;
proto.transaction = function (...args) {
  const tx = original.apply(this, args);
  const entry = {
    mode: tx.mode,
    durability: tx.durability,
    stores: Array.from(tx.objectStoreNames),
    completed: false,
  };
  tx.addEventListener("complete", () => { entry.completed = true; });
  log.push(entry);
  return tx;
};
return () => { proto.transaction = original; };
"#;

fn field(entry: &JsValue, name: &str) -> JsValue {
    Reflect::get(entry, &name.into()).expect("log entry field")
}

#[wasm_bindgen_test]
async fn a_save_is_one_strict_transaction_and_resolves_once_it_is_complete() {
    let name = unique_name("strict");
    let store = IdbStore::open(&name).await.expect("opens");
    let revision = first(1, Kind::InterviewNote, links(1, 1));

    let log = Array::new();
    let restore: Function = Function::new_with_args("log", LOG_TRANSACTIONS)
        .call1(&JsValue::NULL, &log)
        .expect("wrapping IDBDatabase.prototype.transaction")
        .unchecked_into();
    let outcome = store.put_revision(stored(&revision)).await;
    // Read the log right when the save resolved, before anything else can run.
    let entries: Vec<JsValue> = log.iter().collect();
    restore.call0(&JsValue::NULL).expect("unwrapping");

    assert_eq!(outcome, Ok(PutOutcome::Stored));
    assert_eq!(entries.len(), 1, "one transaction per save");
    let entry = &entries[0];
    assert_eq!(
        field(entry, "mode").as_string().as_deref(),
        Some("readwrite")
    );
    assert_eq!(
        field(entry, "durability").as_string().as_deref(),
        Some("strict")
    );
    assert_eq!(field(entry, "completed").as_bool(), Some(true));
}

#[wasm_bindgen_test]
async fn a_save_is_visible_to_another_connection_as_soon_as_it_resolves() {
    let name = unique_name("second-connection");
    let store = IdbStore::open(&name).await.expect("opens");
    let revision = first(1, Kind::InterviewNote, links(1, 1));
    put(&store, &revision).await;
    store
        .put_chunk(BlobId::from_bytes([1; 16]), 0, vec![9; 10])
        .await
        .expect("chunk stored");

    let other = IdbStore::open(&name).await.expect("a second connection");
    assert_eq!(
        other.latest(revision.record_id).await,
        Ok(Some(stored(&revision)))
    );
    assert_eq!(
        other.chunk(BlobId::from_bytes([1; 16]), 0).await,
        Ok(Some(vec![9; 10]))
    );
    assert_eq!(other.count_unsynced().await, Ok(1));
}

#[wasm_bindgen_test]
async fn a_closed_connection_says_so_and_reopening_carries_on() {
    let name = unique_name("closed");
    let store = IdbStore::open(&name).await.expect("opens");
    let one = first(1, Kind::InterviewNote, links(1, 1));
    put(&store, &one).await;

    store.close();
    assert!(store.is_closed());
    let two = next(&one);
    let refused = store.put_revision(stored(&two)).await;
    let error = refused.expect_err("a closed connection cannot save");
    assert!(is_closed_error(&error), "{error}");
    let read = store.latest(one.record_id).await;
    assert!(read.as_ref().is_err_and(is_closed_error), "{read:?}");
    let chunk = store
        .put_chunk(BlobId::from_bytes([1; 16]), 0, vec![1])
        .await;
    assert!(chunk.as_ref().is_err_and(is_closed_error), "{chunk:?}");

    store.reopen().await.expect("reopens");
    assert!(!store.is_closed());
    put(&store, &two).await;
    assert_eq!(
        store.history(one.record_id).await,
        Ok(vec![stored(&one), stored(&two)])
    );
}

#[wasm_bindgen_test]
async fn another_tab_upgrading_the_database_is_not_blocked_and_this_tab_is_told() {
    let name = unique_name("versionchange");
    let this_tab = IdbStore::open(&name).await.expect("opens");
    let one = first(1, Kind::InterviewNote, links(1, 1));
    put(&this_tab, &one).await;

    // Would wait forever if this_tab kept its connection open.
    let other_tab = IdbStore::open_with_steps(&name, &steps_plus_a_test_step())
        .await
        .expect("the upgrade is not blocked");
    assert!(this_tab.is_closed());
    let read = this_tab.latest(one.record_id).await;
    assert!(read.as_ref().is_err_and(is_closed_error), "{read:?}");
    assert_eq!(
        other_tab.latest(one.record_id).await,
        Ok(Some(stored(&one)))
    );
    // This tab's (older) schema cannot reopen the upgraded database: it must reload.
    let reopened = this_tab.reopen().await;
    assert!(
        reopened
            .as_ref()
            .is_err_and(|error| !is_closed_error(error)),
        "{reopened:?}"
    );
}

#[wasm_bindgen_test]
async fn deleting_a_database_closes_open_connections_and_removes_everything() {
    let name = unique_name("delete");
    let store = IdbStore::open(&name).await.expect("opens");
    let one = first(1, Kind::InterviewNote, links(1, 1));
    put(&store, &one).await;

    delete_database(&name).await.expect("deleted");
    assert!(store.is_closed());
    store.reopen().await.expect("a fresh, empty database");
    assert_eq!(store.latest(one.record_id).await, Ok(None));
    assert_eq!(store.count_unsynced().await, Ok(0));
}

#[wasm_bindgen_test]
async fn concurrent_saves_of_the_same_revision_number_let_exactly_one_win() {
    let name = unique_name("race");
    // Two connections, as two tabs would have.
    let (a, b) = (
        Rc::new(IdbStore::open(&name).await.expect("opens")),
        Rc::new(IdbStore::open(&name).await.expect("opens again")),
    );
    let one = first(1, Kind::InterviewNote, links(1, 1));
    put(&a, &one).await;
    let mine = one.next(b"mine".to_vec(), by(1)).expect("rev 2");
    let theirs = one.next(b"theirs".to_vec(), by(2)).expect("rev 2");

    let (a2, b2) = (Rc::clone(&a), Rc::clone(&b));
    let (first_result, second_result) = futures_join(
        async move { a2.put_revision(stored(&mine)).await },
        async move { b2.put_revision(stored(&theirs)).await },
    )
    .await;
    let outcomes = [first_result, second_result];
    let won = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .any(|outcome| matches!(outcome, Err(StoreError::Conflict { rev: 2, .. }))),
        "{outcomes:?}"
    );
    assert_eq!(a.history(one.record_id).await.map(|h| h.len()), Ok(2));
}

/// Runs two futures concurrently on the browser's event loop and waits for both.
async fn futures_join<A: 'static, B: 'static>(
    a: impl Future<Output = A> + 'static,
    b: impl Future<Output = B> + 'static,
) -> (A, B) {
    let (a_slot, b_slot) = (Rc::new(Cell::new(None)), Rc::new(Cell::new(None)));
    let (a_done, b_done) = (spawn(a, Rc::clone(&a_slot)), spawn(b, Rc::clone(&b_slot)));
    JsFuture::from(a_done).await.expect("first future");
    JsFuture::from(b_done).await.expect("second future");
    (
        a_slot.take().expect("first result"),
        b_slot.take().expect("second result"),
    )
}

fn spawn<T: 'static>(
    future: impl Future<Output = T> + 'static,
    slot: Rc<Cell<Option<T>>>,
) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        slot.set(Some(future.await));
        Ok(JsValue::UNDEFINED)
    })
}

/// JS that opens a new storage bucket with a quota of `quota` bytes and returns its
/// IndexedDB factory.
const OPEN_SMALL_BUCKET: &str = r#"
return navigator.storageBuckets
  .open("attune-test-quota-" + Date.now() + "-" + Math.floor(Math.random() * 1e9), { quota })
  .then((bucket) => bucket.indexedDB);
"#;

#[wasm_bindgen_test]
async fn a_full_device_reports_storage_full_and_keeps_what_was_saved() {
    // A storage bucket with a small quota stands in for a full tablet. Only Chromium has
    // storage buckets; on Firefox and WebKit a full device cannot be made from a page.
    let has_buckets = Function::new_no_args("return typeof navigator.storageBuckets === 'object'")
        .call0(&JsValue::NULL)
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if !has_buckets {
        web_sys::console::log_1(&"no navigator.storageBuckets in this engine: not run".into());
        return;
    }
    let bucket: Promise = Function::new_with_args("quota", OPEN_SMALL_BUCKET)
        .call1(&JsValue::NULL, &JsValue::from(300_000))
        .expect("navigator.storageBuckets (Chromium)")
        .unchecked_into();
    let factory: web_sys::IdbFactory = JsFuture::from(bucket)
        .await
        .expect("a storage bucket")
        .unchecked_into();
    let store = IdbStore::open_in(&factory, "vault", SCHEMA)
        .await
        .expect("opens in the bucket");

    let one = first(1, Kind::InterviewNote, links(1, 1));
    put(&store, &one).await;
    let audio = BlobId::from_bytes([5; 16]);
    let mut saved = 0u32;
    let full = loop {
        match store
            .put_chunk(audio, saved, vec![saved as u8; 40_000])
            .await
        {
            Ok(()) => saved += 1,
            Err(error) => break error,
        }
        assert!(saved < 100, "the quota was never reached");
    };
    assert_eq!(full, StoreError::QuotaExceeded);
    assert!(saved > 0);

    // A refused save changes nothing, and everything saved before is still there.
    let mut big = stored(&next(&one));
    big.sealed = vec![2; 400_000];
    assert_eq!(
        store.put_revision(big).await,
        Err(StoreError::QuotaExceeded)
    );
    assert_eq!(store.history(one.record_id).await, Ok(vec![stored(&one)]));
    assert_eq!(store.unsynced(10).await, Ok(vec![stored(&one)]));
    assert_eq!(store.chunk_count(audio).await, Ok(saved));
    for index in 0..saved {
        assert_eq!(
            store.chunk(audio, index).await,
            Ok(Some(vec![index as u8; 40_000]))
        );
    }
}
