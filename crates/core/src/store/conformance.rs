//! The test suite every [`RecordStore`] and [`BlobStore`] implementation must pass
//! (cargo feature `conformance`).
//!
//! Each test is a generic async function here, so a failure points at readable code; the
//! [`record_store_conformance_tests!`](crate::record_store_conformance_tests) macro turns
//! the whole list into test functions for one implementation. Stores never look inside
//! sealed bytes, so these tests use recognisable fake sealed bytes instead of a vault.
//!
//! Natively, with a blocking executor:
//!
//! ```ignore
//! async fn get_store() -> attune_core::MemoryStore {
//!     attune_core::MemoryStore::new()
//! }
//! attune_core::record_store_conformance_tests!(#[test], block_on = futures_executor::block_on, get_store);
//! ```
//!
//! In the browser, with wasm-bindgen-test's async tests (`get_store` must return a fresh,
//! empty store on every call, e.g. an IndexedDB database with a unique name):
//!
//! ```ignore
//! wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
//! async fn get_store() -> IndexedDbStore {
//!     IndexedDbStore::open(&format!("conformance-{}", unique())).await.unwrap()
//! }
//! attune_core::record_store_conformance_tests!(#[wasm_bindgen_test::wasm_bindgen_test], get_store);
//! ```

use super::{BlobStore, PutOutcome, RecordStore, StoreError, StoredRevision};
use crate::ids::{BlobId, DeviceId, ParticipantId, ProfileId, RecordId, VisitId};
use crate::record::{Authorship, ContentHash, Kind, Links, Revision};
use crate::time::Timestamp;

/// Expands to one test function per conformance test, for one store implementation.
///
/// Two forms:
///
/// - `record_store_conformance_tests!(#[some::async_test_attribute], get_store);` makes
///   `#[attr] async fn name()` tests, for test harnesses that run async tests
///   (`#[wasm_bindgen_test::wasm_bindgen_test]`, `#[tokio::test]`);
/// - `record_store_conformance_tests!(#[test], block_on = some::block_on, get_store);` makes
///   plain `#[test] fn name()` tests that drive each test future with `block_on`
///   (`futures_executor::block_on`, `pollster::block_on`).
///
/// `get_store` is a path to an `async fn() -> S` where `S: RecordStore + BlobStore`; it is
/// called once per test and must return a fresh, empty store each time. The tests are
/// generated in the calling module, so invoke the macro in its own test file or module.
#[macro_export]
macro_rules! record_store_conformance_tests {
    (#[$($attr:tt)*], block_on = $block_on:path, $get_store:path $(,)?) => {
        $crate::__record_store_conformance_each!([blocking [$($attr)*] $block_on] $get_store);
    };
    (#[$($attr:tt)*], $get_store:path $(,)?) => {
        $crate::__record_store_conformance_each!([async [$($attr)*]] $get_store);
    };
}

/// The list of conformance tests, for [`record_store_conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __record_store_conformance_each {
    ($mode:tt $get_store:path) => {
        $crate::__record_store_conformance_test! { $mode $get_store,
            a_saved_revision_reads_back_as_the_latest
            editing_appends_and_keeps_history
            an_unknown_record_has_no_latest_and_no_history
            a_revision_that_skips_ahead_is_refused
            a_revision_that_forks_from_an_older_parent_is_refused
            the_same_revision_twice_is_stored_once
            same_rev_with_a_different_hash_is_a_conflict_not_an_overwrite
            a_refused_revision_leaves_the_store_unchanged
            lists_by_kind_participant_and_visit_return_latest_only
            relinking_a_record_moves_it_to_the_new_participant
            outbox_lists_unsynced_in_order_and_acknowledgement_removes_them
            the_outbox_limit_returns_the_oldest_first
            acknowledgement_with_wrong_hash_marks_nothing
            acknowledging_twice_is_harmless
            a_revision_saved_as_synced_stays_out_of_the_outbox
            saving_a_synced_revision_again_keeps_it_synced
            purging_a_participant_deletes_every_revision_of_their_records_and_nothing_else
            purging_follows_the_latest_revision_s_participant
            purging_a_participant_with_no_records_changes_nothing
            blobs_roundtrip_in_chunks
            a_chunk_after_a_gap_is_refused
            rewriting_a_chunk_replaces_it
            deleting_a_blob_removes_its_chunks_and_no_others
            an_unknown_blob_has_no_chunks
        }
    };
}

/// Conformance test functions, one per name, for [`record_store_conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __record_store_conformance_test {
    ($mode:tt $get_store:path,) => {};
    ([async [$($attr:tt)*]] $get_store:path, $name:ident $($rest:ident)*) => {
        #[$($attr)*]
        async fn $name() {
            $crate::store::conformance::$name($get_store().await).await;
        }
        $crate::__record_store_conformance_test! { [async [$($attr)*]] $get_store, $($rest)* }
    };
    ([blocking [$($attr:tt)*] $block_on:path] $get_store:path, $name:ident $($rest:ident)*) => {
        #[$($attr)*]
        fn $name() {
            $block_on(async {
                $crate::store::conformance::$name($get_store().await).await;
            });
        }
        $crate::__record_store_conformance_test! {
            [blocking [$($attr)*] $block_on] $get_store, $($rest)*
        }
    };
}

const T0: i64 = 1_750_000_000_000;

fn by(offset: i64) -> Authorship {
    Authorship {
        device: DeviceId::from_bytes([0xd0; 16]),
        author: ProfileId::from_bytes([0xa0; 16]),
        time: Timestamp(T0 + offset),
    }
}

/// A record id made at `T0 + n` ms: ids made with a larger `n` sort later.
fn record_id(n: i64) -> RecordId {
    RecordId::new(Timestamp(T0 + n))
}

fn participant(n: u8) -> ParticipantId {
    ParticipantId::from_bytes([n; 16])
}

fn visit(n: u8) -> VisitId {
    VisitId::from_bytes([n; 16])
}

fn linked(participant: Option<ParticipantId>, visit: Option<VisitId>) -> Links {
    Links {
        participant,
        visit,
        protocol: None,
    }
}

fn first(id: RecordId, kind: Kind, links: Links, body: &str) -> Revision {
    Revision::first(id, kind, links, body.as_bytes().to_vec(), by(0))
}

fn next(previous: &Revision, body: &str) -> Revision {
    previous
        .next(body.as_bytes().to_vec(), by(i64::from(previous.rev)))
        .expect("revision number in range")
}

/// The stored form with recognisable fake sealed bytes (stores never open them).
fn stored(revision: &Revision) -> StoredRevision {
    let sealed = format!("sealed {} rev {}", revision.record_id, revision.rev).into_bytes();
    StoredRevision::new(revision, sealed)
}

fn note(id: RecordId) -> Revision {
    first(id, Kind::InterviewNote, Links::default(), "first words")
}

async fn put<S: RecordStore>(store: &S, revision: &Revision) {
    let outcome = store
        .put_revision(stored(revision))
        .await
        .expect("the revision is accepted");
    assert_eq!(outcome, PutOutcome::Stored);
}

fn revs(revisions: &[StoredRevision]) -> Vec<(RecordId, u32)> {
    revisions.iter().map(|r| (r.record_id, r.rev)).collect()
}

/// A stored revision reads back exactly, as the record's latest and only revision.
pub async fn a_saved_revision_reads_back_as_the_latest<S: RecordStore>(store: S) {
    let revision = first(
        record_id(1),
        Kind::Consent,
        linked(Some(participant(1)), Some(visit(1))),
        "consent",
    );
    put(&store, &revision).await;

    let latest = store.latest(revision.record_id).await.expect("latest");
    assert_eq!(latest, Some(stored(&revision)));
    let history = store.history(revision.record_id).await.expect("history");
    assert_eq!(history, vec![stored(&revision)]);
}

/// Editing appends: the latest is the newest revision, and every earlier one is kept.
pub async fn editing_appends_and_keeps_history<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    let two = next(&one, "more words");
    let three = next(&two, "even more words");
    for revision in [&one, &two, &three] {
        put(&store, revision).await;
    }

    let latest = store.latest(one.record_id).await.expect("latest");
    assert_eq!(latest, Some(stored(&three)));
    let history = store.history(one.record_id).await.expect("history");
    assert_eq!(history, vec![stored(&one), stored(&two), stored(&three)]);
}

/// A record that was never saved has no latest revision and an empty history.
pub async fn an_unknown_record_has_no_latest_and_no_history<S: RecordStore>(store: S) {
    put(&store, &note(record_id(1))).await;
    let unknown = record_id(2);
    assert_eq!(store.latest(unknown).await.expect("latest"), None);
    assert!(store.history(unknown).await.expect("history").is_empty());
}

/// Revision 3 after revision 1 (or revision 2 of an unknown record, or revision 0) is
/// refused with the number that would have been accepted.
pub async fn a_revision_that_skips_ahead_is_refused<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    let two = next(&one, "two");
    let three = next(&two, "three");
    put(&store, &one).await;

    let record = one.record_id;
    assert_eq!(
        store.put_revision(stored(&three)).await,
        Err(StoreError::NotNextRevision {
            record,
            expected: 2,
            got: 3
        })
    );

    let other = note(record_id(2));
    let other_two = next(&other, "two");
    assert_eq!(
        store.put_revision(stored(&other_two)).await,
        Err(StoreError::NotNextRevision {
            record: other.record_id,
            expected: 1,
            got: 2
        })
    );

    let mut zero = stored(&other);
    zero.rev = 0;
    assert_eq!(
        store.put_revision(zero).await,
        Err(StoreError::NotNextRevision {
            record: other.record_id,
            expected: 1,
            got: 0
        })
    );

    assert_eq!(
        store.latest(record).await.expect("latest"),
        Some(stored(&one))
    );
    assert_eq!(store.latest(other.record_id).await.expect("latest"), None);
}

/// A revision with the next number whose parent is not the stored latest (an edit made from
/// an older copy) is refused, and so is a revision 1 that claims a parent.
pub async fn a_revision_that_forks_from_an_older_parent_is_refused<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    let two = next(&one, "two");
    put(&store, &one).await;
    put(&store, &two).await;

    // Another edit of revision 1, then its successor: numbered 3, but not after our 2.
    let other_two = next(&one, "a different two");
    let fork = next(&other_two, "three on the other branch");
    assert_eq!(
        store.put_revision(stored(&fork)).await,
        Err(StoreError::ParentMismatch {
            record: one.record_id,
            rev: 3
        })
    );

    let orphan = note(record_id(2));
    let mut with_parent = stored(&orphan);
    with_parent.parent_hash = Some(two.hash);
    assert_eq!(
        store.put_revision(with_parent).await,
        Err(StoreError::ParentMismatch {
            record: orphan.record_id,
            rev: 1
        })
    );
    assert_eq!(
        store.latest(one.record_id).await.expect("latest"),
        Some(stored(&two))
    );
}

/// Saving the same revision again (even sealed again, with other bytes) is idempotent: it
/// is stored, and queued for sync, once.
pub async fn the_same_revision_twice_is_stored_once<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    let two = next(&one, "two");
    put(&store, &one).await;

    let mut resealed = stored(&one);
    resealed.sealed = b"sealed again with a fresh nonce".to_vec();
    assert_eq!(
        store.put_revision(resealed).await,
        Ok(PutOutcome::AlreadyStored)
    );
    put(&store, &two).await;
    assert_eq!(
        store.put_revision(stored(&one)).await,
        Ok(PutOutcome::AlreadyStored)
    );
    assert_eq!(
        store.put_revision(stored(&two)).await,
        Ok(PutOutcome::AlreadyStored)
    );

    let history = store.history(one.record_id).await.expect("history");
    assert_eq!(history, vec![stored(&one), stored(&two)]);
    assert_eq!(store.count_unsynced().await.expect("count"), 2);
}

/// A different revision with a number that is already stored is a conflict; the stored
/// revision is kept.
pub async fn same_rev_with_a_different_hash_is_a_conflict_not_an_overwrite<S: RecordStore>(
    store: S,
) {
    let id = record_id(1);
    let one = note(id);
    let two = next(&one, "two");
    put(&store, &one).await;
    put(&store, &two).await;

    let other_one = first(id, Kind::InterviewNote, Links::default(), "other words");
    assert_eq!(
        store.put_revision(stored(&other_one)).await,
        Err(StoreError::Conflict { record: id, rev: 1 })
    );
    let other_two = next(&one, "other two");
    assert_eq!(
        store.put_revision(stored(&other_two)).await,
        Err(StoreError::Conflict { record: id, rev: 2 })
    );
    // Same hash but different clear index fields is not the same revision either.
    let mut relabelled = stored(&two);
    relabelled.participant = Some(participant(9));
    assert_eq!(
        store.put_revision(relabelled).await,
        Err(StoreError::Conflict { record: id, rev: 2 })
    );

    let history = store.history(id).await.expect("history");
    assert_eq!(history, vec![stored(&one), stored(&two)]);
}

/// Refused revisions change nothing: not the history, not the lists, not the outbox.
pub async fn a_refused_revision_leaves_the_store_unchanged<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    let two = next(&one, "two");
    put(&store, &one).await;
    let before_history = store.history(one.record_id).await.expect("history");
    let before_outbox = store.unsynced(100).await.expect("outbox");

    let skip = next(&two, "three");
    assert!(store.put_revision(stored(&skip)).await.is_err());
    let conflict = first(one.record_id, Kind::InterviewNote, Links::default(), "x");
    assert!(store.put_revision(stored(&conflict)).await.is_err());
    let unknown_skip = next(&note(record_id(2)), "two");
    assert!(store.put_revision(stored(&unknown_skip)).await.is_err());

    assert_eq!(
        store.history(one.record_id).await.expect("history"),
        before_history
    );
    assert_eq!(store.unsynced(100).await.expect("outbox"), before_outbox);
    assert_eq!(store.count_unsynced().await.expect("count"), 1);
    assert!(
        store
            .history(unknown_skip.record_id)
            .await
            .expect("history")
            .is_empty()
    );
    assert_eq!(
        revs(
            &store
                .list_latest_by_kind(Kind::InterviewNote)
                .await
                .expect("list")
        ),
        vec![(one.record_id, 1)]
    );
}

/// Listing by kind, participant or visit returns each matching record once, at its latest
/// revision, ordered by record id.
pub async fn lists_by_kind_participant_and_visit_return_latest_only<S: RecordStore>(store: S) {
    let (carer, other) = (participant(1), participant(2));
    let home_visit = visit(1);
    // Made in this order, so their ids sort as consent < interview < other_note.
    let consent = first(
        record_id(1),
        Kind::Consent,
        linked(Some(carer), Some(home_visit)),
        "yes",
    );
    let consent_two = next(&consent, "yes, corrected");
    let interview = first(
        record_id(2),
        Kind::InterviewNote,
        linked(Some(carer), Some(home_visit)),
        "notes",
    );
    let other_note = first(
        record_id(3),
        Kind::InterviewNote,
        linked(Some(other), None),
        "other notes",
    );
    // Put in another order than the ids, so the lists must sort.
    for revision in [&other_note, &interview, &consent, &consent_two] {
        put(&store, revision).await;
    }

    let consents = store
        .list_latest_by_kind(Kind::Consent)
        .await
        .expect("list");
    assert_eq!(consents, vec![stored(&consent_two)]);
    let notes = store
        .list_latest_by_kind(Kind::InterviewNote)
        .await
        .expect("list");
    assert_eq!(notes, vec![stored(&interview), stored(&other_note)]);
    let assents = store.list_latest_by_kind(Kind::Assent).await.expect("list");
    assert!(assents.is_empty());

    let carers = store.list_latest_by_participant(carer).await.expect("list");
    assert_eq!(carers, vec![stored(&consent_two), stored(&interview)]);
    let others = store.list_latest_by_participant(other).await.expect("list");
    assert_eq!(others, vec![stored(&other_note)]);
    let nobody = store
        .list_latest_by_participant(participant(3))
        .await
        .expect("list");
    assert!(nobody.is_empty());

    let in_visit = store.list_latest_by_visit(home_visit).await.expect("list");
    assert_eq!(in_visit, vec![stored(&consent_two), stored(&interview)]);
    let elsewhere = store.list_latest_by_visit(visit(2)).await.expect("list");
    assert!(elsewhere.is_empty());
}

/// A record moved to another participant (or visit) is listed under the new one only.
pub async fn relinking_a_record_moves_it_to_the_new_participant<S: RecordStore>(store: S) {
    let (wrong, right) = (participant(1), participant(2));
    let one = first(
        record_id(1),
        Kind::InterviewNote,
        linked(Some(wrong), Some(visit(1))),
        "notes",
    );
    let two = one
        .next_relinked(
            linked(Some(right), Some(visit(2))),
            b"notes".to_vec(),
            by(1),
        )
        .expect("revision number in range");
    put(&store, &one).await;
    put(&store, &two).await;

    let under_wrong = store.list_latest_by_participant(wrong).await.expect("list");
    assert!(under_wrong.is_empty());
    let under_right = store.list_latest_by_participant(right).await.expect("list");
    assert_eq!(under_right, vec![stored(&two)]);
    assert!(
        store
            .list_latest_by_visit(visit(1))
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.list_latest_by_visit(visit(2)).await.expect("list"),
        vec![stored(&two)]
    );
}

/// The outbox lists unsynced revisions in the order they were saved; acknowledged ones
/// leave it, and are kept as synced.
pub async fn outbox_lists_unsynced_in_order_and_acknowledgement_removes_them<S: RecordStore>(
    store: S,
) {
    // Ids sort c < a < b, but they are saved a1, b1, a2, c1.
    let c1 = note(record_id(1));
    let a1 = note(record_id(2));
    let b1 = note(record_id(3));
    let a2 = next(&a1, "a two");
    for revision in [&a1, &b1, &a2, &c1] {
        put(&store, revision).await;
    }

    let outbox = store.unsynced(100).await.expect("outbox");
    assert_eq!(
        outbox,
        vec![stored(&a1), stored(&b1), stored(&a2), stored(&c1)]
    );
    assert_eq!(store.count_unsynced().await.expect("count"), 4);

    let acknowledged = [stored(&a1).sync_key(), stored(&b1).sync_key()];
    assert_eq!(store.mark_synced(&acknowledged).await.expect("mark"), 2);

    let outbox = store.unsynced(100).await.expect("outbox");
    assert_eq!(revs(&outbox), vec![(a2.record_id, 2), (c1.record_id, 1)]);
    assert_eq!(store.count_unsynced().await.expect("count"), 2);

    let history = store.history(a1.record_id).await.expect("history");
    assert_eq!(
        history.iter().map(|r| r.synced).collect::<Vec<_>>(),
        vec![true, false]
    );
    let b = store.latest(b1.record_id).await.expect("latest");
    assert_eq!(b.map(|r| r.synced), Some(true));
}

/// A limited outbox read returns the oldest unsynced revisions first.
pub async fn the_outbox_limit_returns_the_oldest_first<S: RecordStore>(store: S) {
    let notes: Vec<Revision> = (1..=5).map(|n| note(record_id(n))).collect();
    for revision in notes.iter().rev() {
        put(&store, revision).await;
    }
    let oldest_two = store.unsynced(2).await.expect("outbox");
    assert_eq!(oldest_two, vec![stored(&notes[4]), stored(&notes[3])]);
    assert!(store.unsynced(0).await.expect("outbox").is_empty());
    assert_eq!(store.unsynced(100).await.expect("outbox").len(), 5);
}

/// An acknowledgement only counts if record, revision and hash all match.
pub async fn acknowledgement_with_wrong_hash_marks_nothing<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    let two = next(&one, "two");
    put(&store, &one).await;
    put(&store, &two).await;

    let wrong = [
        (one.record_id, 1, ContentHash::sha256(b"something else")),
        (one.record_id, 1, two.hash),
        (one.record_id, 2, one.hash),
        (one.record_id, 0, one.hash),
        (one.record_id, 3, two.hash),
        (record_id(2), 1, one.hash),
    ];
    assert_eq!(store.mark_synced(&wrong).await.expect("mark"), 0);
    assert_eq!(store.count_unsynced().await.expect("count"), 2);
    assert_eq!(
        store.unsynced(100).await.expect("outbox"),
        vec![stored(&one), stored(&two)]
    );
}

/// Acknowledging a revision twice (a retried sync) changes nothing the second time.
pub async fn acknowledging_twice_is_harmless<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    put(&store, &one).await;
    let ack = [stored(&one).sync_key()];
    assert_eq!(store.mark_synced(&ack).await.expect("mark"), 1);
    assert_eq!(store.mark_synced(&ack).await.expect("mark"), 0);
    assert_eq!(store.count_unsynced().await.expect("count"), 0);
    assert!(store.unsynced(100).await.expect("outbox").is_empty());
}

/// A revision saved as already synced (e.g. received from the server) is not queued.
pub async fn a_revision_saved_as_synced_stays_out_of_the_outbox<S: RecordStore>(store: S) {
    let mut received = stored(&note(record_id(1)));
    received.synced = true;
    assert_eq!(
        store.put_revision(received.clone()).await,
        Ok(PutOutcome::Stored)
    );
    assert_eq!(store.count_unsynced().await.expect("count"), 0);
    assert!(store.unsynced(100).await.expect("outbox").is_empty());
    assert_eq!(
        store.latest(received.record_id).await.expect("latest"),
        Some(received)
    );
}

/// Saving a revision again after it was synced does not put it back in the outbox.
pub async fn saving_a_synced_revision_again_keeps_it_synced<S: RecordStore>(store: S) {
    let one = note(record_id(1));
    put(&store, &one).await;
    assert_eq!(
        store
            .mark_synced(&[stored(&one).sync_key()])
            .await
            .expect("mark"),
        1
    );
    assert_eq!(
        store.put_revision(stored(&one)).await,
        Ok(PutOutcome::AlreadyStored)
    );
    assert_eq!(store.count_unsynced().await.expect("count"), 0);
}

/// The participant's own record: its id is the participant's, and it names them.
fn participant_record(who: ParticipantId) -> Revision {
    first(
        RecordId::from_uuid(*who.as_uuid()),
        Kind::Participant,
        linked(Some(who), None),
        "code C07",
    )
}

/// A withdrawal purge deletes every revision, synced or not, of the participant's own
/// record and of every record about them; other participants' records, and the outbox order
/// of what is left, are untouched.
pub async fn purging_a_participant_deletes_every_revision_of_their_records_and_nothing_else<
    S: RecordStore,
>(
    store: S,
) {
    let (withdrawn, staying) = (participant(1), participant(2));
    let own = participant_record(withdrawn);
    let consent = first(
        record_id(1),
        Kind::Consent,
        linked(Some(withdrawn), Some(visit(1))),
        "yes",
    );
    let consent_two = next(&consent, "yes, corrected");
    let their_note = first(
        record_id(2),
        Kind::InterviewNote,
        linked(Some(withdrawn), Some(visit(1))),
        "notes",
    );
    let other_note = first(
        record_id(3),
        Kind::InterviewNote,
        linked(Some(staying), Some(visit(1))),
        "other notes",
    );
    let unlinked = note(record_id(4));
    for revision in [
        &own,
        &consent,
        &other_note,
        &consent_two,
        &their_note,
        &unlinked,
    ] {
        put(&store, revision).await;
    }
    // Synced revisions go too.
    store
        .mark_synced(&[stored(&consent).sync_key(), stored(&own).sync_key()])
        .await
        .expect("mark");

    assert_eq!(
        store.purge_participant(withdrawn).await.expect("purge"),
        3,
        "their own record, the consent and the note"
    );

    for gone in [&own, &consent, &their_note] {
        assert_eq!(store.latest(gone.record_id).await.expect("latest"), None);
        assert!(
            store
                .history(gone.record_id)
                .await
                .expect("history")
                .is_empty()
        );
    }
    assert!(
        store
            .list_latest_by_participant(withdrawn)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .list_latest_by_kind(Kind::Participant)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .list_latest_by_kind(Kind::Consent)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.list_latest_by_visit(visit(1)).await.expect("list"),
        vec![stored(&other_note)]
    );
    assert_eq!(
        store.unsynced(100).await.expect("outbox"),
        vec![stored(&other_note), stored(&unlinked)]
    );
    assert_eq!(store.count_unsynced().await.expect("count"), 2);
    // Nothing of a purged record is left behind: its id starts again at revision 1.
    put(&store, &consent).await;
}

/// Which records are purged depends on their latest revision: a record moved to the
/// participant goes (with its earlier revisions), one moved away from them stays.
pub async fn purging_follows_the_latest_revision_s_participant<S: RecordStore>(store: S) {
    let (withdrawn, staying) = (participant(1), participant(2));
    let moved_in = first(
        record_id(1),
        Kind::InterviewNote,
        linked(Some(staying), None),
        "notes",
    );
    let moved_in_two = moved_in
        .next_relinked(linked(Some(withdrawn), None), b"notes".to_vec(), by(1))
        .expect("revision number in range");
    let moved_out = first(
        record_id(2),
        Kind::InterviewNote,
        linked(Some(withdrawn), None),
        "notes",
    );
    let moved_out_two = moved_out
        .next_relinked(linked(Some(staying), None), b"notes".to_vec(), by(1))
        .expect("revision number in range");
    for revision in [&moved_in, &moved_in_two, &moved_out, &moved_out_two] {
        put(&store, revision).await;
    }

    assert_eq!(store.purge_participant(withdrawn).await.expect("purge"), 1);
    assert!(
        store
            .history(moved_in.record_id)
            .await
            .expect("history")
            .is_empty()
    );
    assert_eq!(
        store.history(moved_out.record_id).await.expect("history"),
        vec![stored(&moved_out), stored(&moved_out_two)]
    );
    assert_eq!(
        store.unsynced(100).await.expect("outbox"),
        vec![stored(&moved_out), stored(&moved_out_two)]
    );
}

/// Purging a participant with no records (or purging twice) deletes nothing.
pub async fn purging_a_participant_with_no_records_changes_nothing<S: RecordStore>(store: S) {
    let kept = participant_record(participant(2));
    put(&store, &kept).await;
    assert_eq!(
        store
            .purge_participant(participant(1))
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        store
            .purge_participant(participant(1))
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        store.latest(kept.record_id).await.expect("latest"),
        Some(stored(&kept))
    );
    assert_eq!(store.count_unsynced().await.expect("count"), 1);
}

fn blob(n: u8) -> BlobId {
    BlobId::from_bytes([n; 16])
}

/// Chunks of any size (empty, small, large) read back exactly, by index.
pub async fn blobs_roundtrip_in_chunks<S: BlobStore>(store: S) {
    let audio = blob(1);
    let chunks: Vec<Vec<u8>> = vec![
        b"first second of audio".to_vec(),
        Vec::new(),
        (0..=255u8).cycle().take(256 * 1024).collect(),
    ];
    for (index, chunk) in (0u32..).zip(&chunks) {
        store
            .put_chunk(audio, index, chunk.clone())
            .await
            .expect("chunk stored");
    }
    assert_eq!(store.chunk_count(audio).await.expect("count"), 3);
    for (index, chunk) in (0u32..).zip(&chunks) {
        assert_eq!(
            store.chunk(audio, index).await.expect("chunk").as_ref(),
            Some(chunk)
        );
    }
    assert_eq!(store.chunk(audio, 3).await.expect("chunk"), None);
}

/// Chunks are written in order: one that would leave a gap is refused.
pub async fn a_chunk_after_a_gap_is_refused<S: BlobStore>(store: S) {
    let audio = blob(1);
    store
        .put_chunk(audio, 0, b"zero".to_vec())
        .await
        .expect("chunk stored");
    assert_eq!(
        store.put_chunk(audio, 2, b"two".to_vec()).await,
        Err(StoreError::ChunkGap {
            blob: audio,
            expected: 1,
            got: 2
        })
    );
    assert_eq!(store.chunk_count(audio).await.expect("count"), 1);

    let fresh = blob(2);
    assert_eq!(
        store.put_chunk(fresh, 1, b"one".to_vec()).await,
        Err(StoreError::ChunkGap {
            blob: fresh,
            expected: 0,
            got: 1
        })
    );
    assert_eq!(store.chunk_count(fresh).await.expect("count"), 0);
}

/// Writing a chunk again (a retried write) replaces it.
pub async fn rewriting_a_chunk_replaces_it<S: BlobStore>(store: S) {
    let audio = blob(1);
    for bytes in [b"first try".to_vec(), b"second try".to_vec()] {
        store
            .put_chunk(audio, 0, bytes)
            .await
            .expect("chunk stored");
    }
    assert_eq!(store.chunk_count(audio).await.expect("count"), 1);
    assert_eq!(
        store.chunk(audio, 0).await.expect("chunk"),
        Some(b"second try".to_vec())
    );
}

/// Deleting a blob removes all its chunks, leaves other blobs alone, can be repeated, and
/// the blob can be written again from chunk 0.
pub async fn deleting_a_blob_removes_its_chunks_and_no_others<S: BlobStore>(store: S) {
    let (doomed, kept) = (blob(1), blob(2));
    for index in 0..3 {
        store
            .put_chunk(doomed, index, vec![1; 10])
            .await
            .expect("chunk stored");
        store
            .put_chunk(kept, index, vec![2; 10])
            .await
            .expect("chunk stored");
    }
    store.delete_blob(doomed).await.expect("deleted");
    assert_eq!(store.chunk_count(doomed).await.expect("count"), 0);
    assert_eq!(store.chunk(doomed, 0).await.expect("chunk"), None);
    assert_eq!(store.chunk_count(kept).await.expect("count"), 3);
    assert_eq!(
        store.chunk(kept, 2).await.expect("chunk"),
        Some(vec![2; 10])
    );

    store
        .delete_blob(doomed)
        .await
        .expect("deleting again is fine");
    store
        .put_chunk(doomed, 0, vec![3])
        .await
        .expect("written again from 0");
    assert_eq!(store.chunk_count(doomed).await.expect("count"), 1);
}

/// A blob that was never written has no chunks.
pub async fn an_unknown_blob_has_no_chunks<S: BlobStore>(store: S) {
    let unknown = blob(9);
    assert_eq!(store.chunk_count(unknown).await.expect("count"), 0);
    assert_eq!(store.chunk(unknown, 0).await.expect("chunk"), None);
    store
        .delete_blob(unknown)
        .await
        .expect("deleting an unknown blob is fine");
}
