//! The test suite every [`Store`] implementation must pass, as matrix-sdk does it: each
//! backend's test file supplies one `async fn get_store() -> Option<Arc<dyn Store>>` and invokes
//! [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! Public (but hidden from the docs) only so the integration tests can reach it.

use attune_core::{
    Authorship, DeviceId, DeviceKey, Envelope, Kind, Links, ProfileId, RecordId, Revision,
    StudyKeyPair, Timestamp, seal_envelope,
};

use super::{
    ControlKind, DeviceStatus, EnrolOutcome, ExportLogEntry, NewDevice, NewUpload, PublishOutcome,
    PushOutcome, Store,
};

const NOW: Timestamp = Timestamp(1_750_000_000_000);

/// Generates one `#[tokio::test]` per suite function, each on a fresh store from `$get_store`
/// (an `async fn() -> Option<Arc<dyn Store>>`; `None` skips the test, e.g. no database).
#[macro_export]
macro_rules! store_conformance_tests {
    ($get_store:path) => {
        $crate::store_conformance_tests!(@tests $get_store;
            the_study_key_is_set_once_and_never_replaced,
            an_enrolment_code_works_once_and_not_after_it_expires,
            an_unknown_code_enrols_nothing,
            enrolled_devices_are_found_by_token_listed_and_revocable,
            a_taken_device_id_leaves_the_code_usable,
            a_device_whose_enrolment_answer_was_lost_enrols_again_with_a_new_token,
            a_resent_revision_is_already_stored_not_duplicated,
            a_different_revision_with_the_same_rev_is_kept_as_a_conflict,
            a_batch_reports_one_outcome_per_item_in_order,
            withdrawals_are_delivered_after_the_cursor,
            protocol_updates_are_delivered_in_order_and_only_newer_versions_are_published,
            exports_are_logged,
            an_upload_is_recorded_once_and_found_by_its_blob,
            a_completed_upload_keeps_its_first_completion_time,
            codes_are_reserved_in_blocks_never_twice_and_a_lost_block_comes_again,
            code_reservations_start_above_the_codes_already_in_the_field,
            devices_reserving_codes_at_once_get_disjoint_numbers,
            a_device_holds_at_most_the_outstanding_cap_of_unused_codes,
        );
    };
    (@tests $get_store:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some(store) = $get_store().await else {
                    return;
                };
                $crate::store::suite::$name(store.as_ref()).await;
            }
        )*
    };
}

/// A device with its key, enrolled in `store`.
pub struct TestDevice {
    pub id: DeviceId,
    pub key: DeviceKey,
    pub token_hash: String,
}

/// Enrols a device for `fieldworker` through a fresh enrolment code.
pub async fn enrol(store: &dyn Store, fieldworker: &str) -> TestDevice {
    let id = DeviceId::new(NOW);
    let key = DeviceKey::generate().expect("device key");
    let code_hash = format!("code-{id}");
    let token_hash = format!("token-{id}");
    store
        .create_enrolment_code(&code_hash, fieldworker, Timestamp(NOW.0 + 60_000), NOW)
        .await
        .expect("create code");
    let outcome = store
        .enrol_device(
            &code_hash,
            NewDevice {
                id: id.to_string(),
                name: "Tablet".into(),
                public_key: key.public_key().to_text(),
                token_hash: token_hash.clone(),
            },
            NOW,
        )
        .await
        .expect("enrol");
    assert!(matches!(outcome, EnrolOutcome::Enrolled(_)), "{outcome:?}");
    TestDevice {
        id,
        key,
        token_hash,
    }
}

/// A first revision of a new record made on `device`, sealed and signed.
pub fn envelope_for(device: &TestDevice, body: &str, participant: Option<&str>) -> Envelope {
    let revision = Revision::first(
        RecordId::new(NOW),
        Kind::InterviewNote,
        Links::default(),
        body.as_bytes().to_vec(),
        Authorship {
            device: device.id,
            author: ProfileId::new(NOW),
            time: NOW,
        },
    );
    sealed(&revision, device, participant)
}

/// `revision` sealed to a throwaway study key and signed by `device`.
pub fn sealed(revision: &Revision, device: &TestDevice, participant: Option<&str>) -> Envelope {
    let study = StudyKeyPair::generate();
    seal_envelope(
        revision,
        participant.map(str::to_owned),
        &study.public_key(),
        &device.key,
    )
    .expect("seal")
}

pub async fn the_study_key_is_set_once_and_never_replaced(store: &dyn Store) {
    assert_eq!(store.study_public_key().await.unwrap(), None);
    assert!(store.set_study_public_key("key-one", NOW).await.unwrap());
    assert!(!store.set_study_public_key("key-two", NOW).await.unwrap());
    assert_eq!(
        store.study_public_key().await.unwrap().as_deref(),
        Some("key-one")
    );
}

fn new_device(id: &str, token_hash: &str) -> NewDevice {
    NewDevice {
        id: id.into(),
        name: "Tablet".into(),
        public_key: "pk".into(),
        token_hash: token_hash.into(),
    }
}

pub async fn an_enrolment_code_works_once_and_not_after_it_expires(store: &dyn Store) {
    let later = Timestamp(NOW.0 + 1000);
    store
        .create_enrolment_code("fresh", "Ana", later, NOW)
        .await
        .unwrap();
    store
        .create_enrolment_code("stale", "Ana", later, NOW)
        .await
        .unwrap();
    let first = store
        .enrol_device("fresh", new_device("d1", "t1"), NOW)
        .await
        .unwrap();
    let EnrolOutcome::Enrolled(device) = first else {
        panic!("expected enrolled, got {first:?}");
    };
    assert_eq!(device.fieldworker, "Ana");
    assert_eq!(device.status, DeviceStatus::Active);
    assert_eq!(
        store
            .enrol_device("fresh", new_device("d2", "t2"), NOW)
            .await
            .unwrap(),
        EnrolOutcome::AlreadyUsed
    );
    assert_eq!(
        store
            .enrol_device("stale", new_device("d3", "t3"), later)
            .await
            .unwrap(),
        EnrolOutcome::Expired
    );
    assert_eq!(store.list_devices().await.unwrap().len(), 1);
}

pub async fn an_unknown_code_enrols_nothing(store: &dyn Store) {
    assert_eq!(
        store
            .enrol_device("nope", new_device("d1", "t1"), NOW)
            .await
            .unwrap(),
        EnrolOutcome::UnknownCode
    );
    assert!(store.list_devices().await.unwrap().is_empty());
}

pub async fn enrolled_devices_are_found_by_token_listed_and_revocable(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let found = store
        .device_by_token(&device.token_hash)
        .await
        .unwrap()
        .expect("found by token");
    assert_eq!(found.id, device.id.to_string());
    assert_eq!(found.public_key, device.key.public_key().to_text());
    assert_eq!(store.device_by_token("other").await.unwrap(), None);
    assert!(
        store
            .revoke_device(&found.id, "tablet lost", NOW)
            .await
            .unwrap()
    );
    assert!(!store.revoke_device("missing", "x", NOW).await.unwrap());
    let listed = store.list_devices().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, DeviceStatus::Revoked);
    assert_eq!(listed[0].revoked_reason.as_deref(), Some("tablet lost"));
}

pub async fn a_taken_device_id_leaves_the_code_usable(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    store
        .create_enrolment_code("second", "Ben", Timestamp(NOW.0 + 1000), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .enrol_device("second", new_device(&device.id.to_string(), "t9"), NOW)
            .await
            .unwrap(),
        EnrolOutcome::DeviceIdTaken
    );
    assert!(matches!(
        store
            .enrol_device("second", new_device("fresh-id", "t9"), NOW)
            .await
            .unwrap(),
        EnrolOutcome::Enrolled(_)
    ));
}

pub async fn a_device_whose_enrolment_answer_was_lost_enrols_again_with_a_new_token(
    store: &dyn Store,
) {
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let first_code = format!("code-{id}");
    let again = |token: &str| NewDevice {
        id: id.clone(),
        name: "Tablet".into(),
        public_key: device.key.public_key().to_text(),
        token_hash: token.into(),
    };
    let by_token = |token: &'static str| async move {
        store.device_by_token(token).await.unwrap().map(|d| d.id)
    };
    // The same code again, soon after: a new token; the lost one no longer works.
    let soon = Timestamp(NOW.0 + 60_000);
    let retried = store
        .enrol_device(&first_code, again("token-2"), soon)
        .await
        .unwrap();
    assert!(
        matches!(retried, EnrolOutcome::Enrolled(ref d) if d.fieldworker == "Ana"),
        "{retried:?}"
    );
    assert_eq!(by_token("token-2").await, Some(id.clone()));
    assert_eq!(
        store.device_by_token(&device.token_hash).await.unwrap(),
        None
    );
    // Not after the window, and never for another device.
    let late = Timestamp(NOW.0 + crate::store::REENROL_WINDOW_MS + 1);
    assert_eq!(
        store
            .enrol_device(&first_code, again("token-3"), late)
            .await
            .unwrap(),
        EnrolOutcome::AlreadyUsed
    );
    assert_eq!(
        store
            .enrol_device(&first_code, new_device("other", "token-4"), soon)
            .await
            .unwrap(),
        EnrolOutcome::AlreadyUsed
    );
    // A new code for the same device and key works too; another key keeps the id taken.
    for code in ["second", "third", "fourth"] {
        store
            .create_enrolment_code(code, "Ana", Timestamp(late.0 + 60_000), NOW)
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .enrol_device("second", again("token-5"), late)
            .await
            .unwrap(),
        EnrolOutcome::Enrolled(_)
    ));
    assert_eq!(by_token("token-5").await, Some(id.clone()));
    assert_eq!(by_token("token-2").await, None);
    let mut other_key = again("token-6");
    other_key.public_key = DeviceKey::generate().unwrap().public_key().to_text();
    assert_eq!(
        store.enrol_device("third", other_key, late).await.unwrap(),
        EnrolOutcome::DeviceIdTaken
    );
    assert_eq!(by_token("token-5").await, Some(id.clone()));
    // A revoked device stays revoked.
    assert!(store.revoke_device(&id, "lost", late).await.unwrap());
    assert_eq!(
        store
            .enrol_device("fourth", again("token-7"), late)
            .await
            .unwrap(),
        EnrolOutcome::DeviceIdTaken
    );
    assert_eq!(by_token("token-7").await, None);
    assert_eq!(store.list_devices().await.unwrap().len(), 1);
}

pub async fn a_resent_revision_is_already_stored_not_duplicated(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let envelope = envelope_for(&device, "hello", Some("VIG-001"));
    let id = device.id.to_string();
    let first = store
        .push(&id, std::slice::from_ref(&envelope), NOW)
        .await
        .unwrap();
    assert_eq!(first, vec![PushOutcome::Stored]);
    let again = store
        .push(&id, &[envelope.clone(), envelope.clone()], NOW)
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![PushOutcome::AlreadyStored, PushOutcome::AlreadyStored]
    );
    let stored = store.envelopes().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].envelope, envelope);
    assert_eq!(stored[0].device_id, id);
    assert!(store.conflicts().await.unwrap().is_empty());
}

pub async fn a_different_revision_with_the_same_rev_is_kept_as_a_conflict(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let original = envelope_for(&device, "first version", None);
    let other_revision = Revision::first(
        original.record_id,
        Kind::InterviewNote,
        Links::default(),
        b"another version".to_vec(),
        Authorship {
            device: device.id,
            author: ProfileId::new(NOW),
            time: NOW,
        },
    );
    let conflicting = sealed(&other_revision, &device, None);
    assert_ne!(conflicting.hash, original.hash);
    assert_eq!(
        store
            .push(&id, &[original.clone(), conflicting.clone()], NOW)
            .await
            .unwrap(),
        vec![PushOutcome::Stored, PushOutcome::Conflict]
    );
    // Sending the conflict again reports it again and keeps one copy.
    assert_eq!(
        store
            .push(&id, std::slice::from_ref(&conflicting), NOW)
            .await
            .unwrap(),
        vec![PushOutcome::Conflict]
    );
    let stored = store.envelopes().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].envelope, original);
    let conflicts = store.conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].envelope, conflicting);
}

pub async fn a_batch_reports_one_outcome_per_item_in_order(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let batch: Vec<Envelope> = (0..50)
        .map(|i| envelope_for(&device, &format!("note {i}"), Some("VIG-002")))
        .collect();
    let first = store.push(&id, &batch[..20], NOW).await.unwrap();
    assert_eq!(first, vec![PushOutcome::Stored; 20]);
    let all = store.push(&id, &batch, NOW).await.unwrap();
    assert_eq!(all[..20], vec![PushOutcome::AlreadyStored; 20][..]);
    assert_eq!(all[20..], vec![PushOutcome::Stored; 30][..]);
    let stored: Vec<Envelope> = store
        .envelopes()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.envelope)
        .collect();
    assert_eq!(stored, batch);
}

pub async fn withdrawals_are_delivered_after_the_cursor(store: &dyn Store) {
    assert!(store.control_messages_after(0).await.unwrap().is_empty());
    let first = store.add_withdrawal("VIG-001", NOW).await.unwrap();
    let second = store.add_withdrawal("VIG-002", NOW).await.unwrap();
    assert!(second.id > first.id);
    let all = store.control_messages_after(0).await.unwrap();
    assert_eq!(all, vec![first.clone(), second.clone()]);
    assert_eq!(
        store.control_messages_after(first.id).await.unwrap(),
        vec![second.clone()]
    );
    assert!(
        store
            .control_messages_after(second.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        second.kind,
        ControlKind::Withdrawal {
            participant_code: "VIG-002".into()
        }
    );
}

pub async fn protocol_updates_are_delivered_in_order_and_only_newer_versions_are_published(
    store: &dyn Store,
) {
    let withdrawal = store.add_withdrawal("VIG-001", NOW).await.unwrap();
    let PublishOutcome::Published(v2) = store
        .publish_protocol("vig-evaluation", 2, "{\"version\": 2}", NOW)
        .await
        .unwrap()
    else {
        panic!("version 2 is the first published");
    };
    assert!(v2.message_id > withdrawal.id);
    // The same version again, or an older one, is refused and records nothing.
    for version in [2, 1] {
        assert_eq!(
            store
                .publish_protocol("vig-evaluation", version, "{}", NOW)
                .await
                .unwrap(),
            PublishOutcome::NotNewer { latest: 2 }
        );
    }
    // Versions count per protocol id.
    let PublishOutcome::Published(other) = store
        .publish_protocol("another-study", 1, "{\"id\": \"another-study\"}", NOW)
        .await
        .unwrap()
    else {
        panic!("another protocol has its own versions");
    };
    let PublishOutcome::Published(v5) = store
        .publish_protocol("vig-evaluation", 5, "{\"version\": 5}", NOW)
        .await
        .unwrap()
    else {
        panic!("version 5 is newer");
    };
    assert_eq!(
        store.published_protocols().await.unwrap(),
        vec![v2.clone(), other, v5.clone()]
    );
    let kinds: Vec<ControlKind> = store
        .control_messages_after(withdrawal.id)
        .await
        .unwrap()
        .into_iter()
        .map(|message| message.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            ControlKind::ProtocolUpdate {
                protocol: "{\"version\": 2}".into()
            },
            ControlKind::ProtocolUpdate {
                protocol: "{\"id\": \"another-study\"}".into()
            },
            ControlKind::ProtocolUpdate {
                protocol: "{\"version\": 5}".into()
            },
        ]
    );
    assert_eq!(
        store.control_messages_after(0).await.unwrap()[0],
        withdrawal
    );
}

pub async fn exports_are_logged(store: &dyn Store) {
    let entry = ExportLogEntry {
        who: "researcher".into(),
        at: NOW,
        what: "3 records to /tmp/out".into(),
    };
    store.log_export(&entry).await.unwrap();
    assert_eq!(store.export_log().await.unwrap(), vec![entry]);
}

fn new_upload(device: &TestDevice, blob_id: &str, sha256_digit: char, length: u64) -> NewUpload {
    NewUpload {
        sha256: sha256_digit.to_string().repeat(64),
        blob_id: blob_id.into(),
        length,
        device_id: device.id.to_string(),
    }
}

pub async fn an_upload_is_recorded_once_and_found_by_its_blob(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let first = new_upload(&device, "blob-1", 'a', 20_000_000);
    let created = store.create_upload(&first, NOW).await.unwrap();
    assert_eq!(created.sha256, first.sha256);
    assert_eq!(created.blob_id, "blob-1");
    assert_eq!(created.length, 20_000_000);
    assert_eq!(created.device_id, device.id.to_string());
    assert_eq!(created.created_at, NOW);
    assert_eq!(created.completed_at, None);

    // Announcing it again (a device resuming after a reload) keeps the first row, and a
    // different announcement under the same name is returned as stored, for the caller to refuse.
    let later = Timestamp(NOW.0 + 1);
    assert_eq!(store.create_upload(&first, later).await.unwrap(), created);
    let clash = new_upload(&device, "blob-2", 'a', 5);
    assert_eq!(store.create_upload(&clash, later).await.unwrap(), created);

    assert_eq!(
        store.upload(&first.sha256).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.upload(&"f".repeat(64)).await.unwrap(), None);

    // A second upload of the same blob (re-sealed): both are listed, oldest first.
    let second = new_upload(&device, "blob-1", 'b', 10);
    let second = store.create_upload(&second, later).await.unwrap();
    assert_eq!(
        store.uploads_of_blob("blob-1").await.unwrap(),
        vec![created, second]
    );
    assert!(store.uploads_of_blob("blob-2").await.unwrap().is_empty());
}

pub async fn a_completed_upload_keeps_its_first_completion_time(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let older = store
        .create_upload(&new_upload(&device, "blob-1", 'a', 3), NOW)
        .await
        .unwrap();
    let newer = new_upload(&device, "blob-1", 'b', 4);
    store
        .create_upload(&newer, Timestamp(NOW.0 + 1))
        .await
        .unwrap();
    let done_at = Timestamp(NOW.0 + 10);
    assert!(
        store
            .mark_upload_complete(&newer.sha256, done_at)
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_upload_complete(&newer.sha256, Timestamp(NOW.0 + 20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_upload_complete(&"c".repeat(64), done_at)
            .await
            .unwrap()
    );
    let listed = store.uploads_of_blob("blob-1").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].sha256, newer.sha256,
        "complete uploads come first"
    );
    assert_eq!(listed[0].completed_at, Some(done_at));
    assert_eq!(listed[1], older);
}

/// A reservation request for one prefix.
fn want(prefix: &str, want: u32, after: i64) -> super::ReserveWant {
    super::ReserveWant {
        prefix: prefix.into(),
        want,
        after,
    }
}

/// `(prefix, first, count)` of blocks.
fn spans(blocks: &[super::CodeBlock]) -> Vec<(&str, u32, u32)> {
    blocks
        .iter()
        .map(|b| (b.prefix.as_str(), b.first, b.count))
        .collect()
}

/// A participant record with this code, made on `device`, as pushed.
fn participant_envelope(device: &TestDevice, code: &str) -> Envelope {
    let revision = Revision::first(
        RecordId::new(NOW),
        Kind::Participant,
        Links::default(),
        format!("{{\"code\":\"{code}\",\"group\":\"carers\"}}").into_bytes(),
        Authorship {
            device: device.id,
            author: ProfileId::new(NOW),
            time: NOW,
        },
    );
    sealed(&revision, device, Some(code))
}

pub async fn codes_are_reserved_in_blocks_never_twice_and_a_lost_block_comes_again(
    store: &dyn Store,
) {
    let ana = enrol(store, "Ana").await;
    let ben = enrol(store, "Ben").await;
    let (ana_id, ben_id) = (ana.id.to_string(), ben.id.to_string());
    let first = store
        .reserve_codes(&ana_id, &[want("C", 5, 0), want("K", 2, 0)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&first), [("C", 1, 5), ("K", 1, 2)]);
    // The answer was lost: the same request gets the same blocks, and nothing new.
    let again = store
        .reserve_codes(&ana_id, &[want("C", 5, 0), want("K", 2, 0)], NOW)
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(store.code_blocks().await.unwrap().len(), 2);
    // Asking after the blocks kept: new numbers, after Ana's.
    let more = store
        .reserve_codes(&ana_id, &[want("C", 3, first[0].id)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&more), [("C", 6, 3)]);
    let bens = store
        .reserve_codes(&ben_id, &[want("C", 5, 0)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&bens), [("C", 9, 5)], "never one of Ana's numbers");
    // A lost block covers part of a want: it comes again with a new block for the rest.
    let topped = store
        .reserve_codes(&ana_id, &[want("C", 5, first[0].id)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&topped), [("C", 6, 3), ("C", 14, 2)]);
    assert!(topped[1].id > topped[0].id);
    // A want of 0 only delivers what was lost; a want over the cap gets at most MAX_BLOCK.
    let nothing = store
        .reserve_codes(&ben_id, &[want("C", 0, bens[0].id)], NOW)
        .await
        .unwrap();
    assert!(nothing.is_empty());
    let capped = store
        .reserve_codes(&ben_id, &[want("M", 1000, 0)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&capped), [("M", 1, attune_core::codes::MAX_BLOCK)]);
    // The list says who holds which numbers.
    let listed = store.code_blocks().await.unwrap();
    let holders: Vec<(&str, u32, &str)> = listed
        .iter()
        .map(|r| (r.block.prefix.as_str(), r.block.first, r.device_id.as_str()))
        .collect();
    assert_eq!(
        holders,
        [
            ("C", 1, ana_id.as_str()),
            ("K", 1, ana_id.as_str()),
            ("C", 6, ana_id.as_str()),
            ("C", 9, ben_id.as_str()),
            ("C", 14, ana_id.as_str()),
            ("M", 1, ben_id.as_str()),
        ]
    );
    assert!(listed.iter().all(|r| r.reserved_at == NOW));
}

pub async fn code_reservations_start_above_the_codes_already_in_the_field(store: &dyn Store) {
    let old = enrol(store, "Ana").await;
    // Codes counted on tablets before reservations: C07 pushed, C12 withdrawn, K3 as a
    // conflict, and one code of another shape.
    let stored = participant_envelope(&old, "C07");
    store
        .push(&old.id.to_string(), std::slice::from_ref(&stored), NOW)
        .await
        .unwrap();
    let mut conflicting = participant_envelope(&old, "K03");
    conflicting.record_id = stored.record_id;
    store
        .push(&old.id.to_string(), &[conflicting], NOW)
        .await
        .unwrap();
    assert_eq!(store.conflicts().await.unwrap().len(), 1);
    store.add_withdrawal("C12", NOW).await.unwrap();
    store
        .push(
            &old.id.to_string(),
            &[participant_envelope(&old, "C999x")],
            NOW,
        )
        .await
        .unwrap();

    let new = enrol(store, "Ben").await;
    let blocks = store
        .reserve_codes(
            &new.id.to_string(),
            &[want("C", 2, 0), want("K", 2, 0), want("M", 2, 0)],
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(spans(&blocks), [("C", 13, 2), ("K", 4, 2), ("M", 1, 2)]);
    // A tablet not yet updated pushes C40 later: the next block starts above it.
    store
        .push(
            &old.id.to_string(),
            &[participant_envelope(&old, "C40")],
            NOW,
        )
        .await
        .unwrap();
    let later = store
        .reserve_codes(&new.id.to_string(), &[want("C", 2, blocks[0].id)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&later), [("C", 41, 2)]);
}

pub async fn devices_reserving_codes_at_once_get_disjoint_numbers(store: &dyn Store) {
    let mut ids = Vec::new();
    for name in ["Ana", "Ben", "Cleo", "Dev"] {
        ids.push(enrol(store, name).await.id.to_string());
    }
    // Each device asks ten times in a row, all four at once.
    let reserve = |device: String| async move {
        let mut after = 0;
        let mut numbers = Vec::new();
        for _ in 0..10 {
            let blocks = store
                .reserve_codes(&device, &[want("C", 3, after), want("K", 1, 0)], NOW)
                .await
                .expect("reserved");
            for block in blocks.iter().filter(|b| b.prefix == "C") {
                after = after.max(block.id);
                numbers.extend(block.first..block.first + block.count);
            }
        }
        numbers
    };
    let (a, b, c, d) = tokio::join!(
        reserve(ids[0].clone()),
        reserve(ids[1].clone()),
        reserve(ids[2].clone()),
        reserve(ids[3].clone()),
    );
    for numbers in [&a, &b, &c, &d] {
        assert_eq!(numbers.len(), 30);
    }
    let mut all: Vec<u32> = [a, b, c, d].concat();
    all.sort_unstable();
    let expected: Vec<u32> = (1..=120).collect();
    assert_eq!(all, expected, "every number once, none skipped");
}

pub async fn a_device_holds_at_most_the_outstanding_cap_of_unused_codes(store: &dyn Store) {
    use attune_core::codes::{MAX_BLOCK, MAX_OUTSTANDING};
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let mut after = 0;
    let mut held = 0;
    // A device that asks again and again (it lost its pool, or a bug) gets up to the cap.
    for _ in 0..10 {
        for block in store
            .reserve_codes(&id, &[want("C", MAX_BLOCK, after)], NOW)
            .await
            .unwrap()
        {
            after = after.max(block.id);
            held += block.count;
        }
    }
    assert_eq!(held, MAX_OUTSTANDING);
    // Once it pushes a participant with one of them, it may hold one more.
    store
        .push(&id, &[participant_envelope(&device, "C01")], NOW)
        .await
        .unwrap();
    let more = store
        .reserve_codes(&id, &[want("C", MAX_BLOCK, after)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&more), [("C", MAX_OUTSTANDING + 1, 1)]);
    // Other prefixes and other devices are not held back by it.
    let other = enrol(store, "Ben").await;
    let theirs = store
        .reserve_codes(&other.id.to_string(), &[want("C", 2, 0)], NOW)
        .await
        .unwrap();
    assert_eq!(spans(&theirs), [("C", MAX_OUTSTANDING + 2, 2)]);
}
