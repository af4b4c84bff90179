//! The test suite every [`Store`] implementation must pass, as matrix-sdk does it: each
//! backend's test file supplies one `async fn get_store() -> Option<Arc<dyn Store>>` and invokes
//! [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! Public (but hidden from the docs) only so the integration tests can reach it.

use attune_core::{
    Authorship, DeviceId, DeviceKey, Envelope, Kind, Links, ParticipantId, ProfileId, RecordId,
    Revision, StudyKeyPair, StudySigningKey, Timestamp, seal_envelope,
};

use super::{
    AddOutcome, ConflictReason, ControlKind, ControlMessage, DeviceStatus, EnrolOutcome,
    ExportLogEntry, NewControlMessage, NewDevice, NewUpload, PublishOutcome, PushOutcome, Pushed,
    RevokeOutcome, Store, StudyRecord, WithdrawalRecord,
};

pub use super::suite_team::*;

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
            a_chain_is_stored_when_its_revisions_come_in_order_within_one_batch,
            a_revision_whose_previous_is_missing_is_kept_as_a_gap_and_stored_once_it_arrives,
            a_gap_filled_later_in_the_same_batch_is_stored,
            one_batch_pushed_three_times_at_once_is_stored_once,
            a_revision_whose_parent_is_not_the_stored_one_is_kept_as_a_conflict,
            a_record_continued_on_another_fieldworkers_device_is_kept_as_a_conflict,
            a_record_continued_on_a_re_enrolled_device_of_the_same_fieldworker_is_stored,
            a_participant_code_held_by_another_participant_record_is_kept_as_code_taken,
            a_completed_upload_keeps_its_first_completion_time,
            the_study_signing_key_is_set_once_after_the_study_key,
            an_instruction_number_is_taken_once,
            a_revocation_is_recorded_with_its_signed_statement,
            an_enrolment_challenge_is_good_once_and_not_after_it_expires,
            codes_are_reserved_in_blocks_never_twice_and_a_lost_block_comes_again,
            code_reservations_start_above_the_codes_already_in_the_field,
            devices_reserving_codes_at_once_get_disjoint_numbers,
            a_device_holds_at_most_the_outstanding_cap_of_unused_codes,
            a_withdrawal_request_counts_only_when_the_participants_fieldworkers_device_signed_it,
            a_team_invitation_registers_one_member_once_and_not_after_it_expires,
            a_ceremony_is_taken_once_and_not_after_it_expires,
            a_sign_in_moves_the_counter_forward_only,
            a_team_session_ends_when_it_expires_or_is_deleted,
            the_team_audit_log_is_read_newest_first,
            a_team_record_is_stored_once_and_listed_in_the_order_stored,
            attempts_over_a_rate_limit_are_refused_until_the_next_window,
            concurrent_attempts_never_let_more_than_the_rate_limit_through,
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

/// A control message signed (with a throwaway key: the store does not check signatures).
pub fn signed(seq: u64, kind: ControlKind) -> NewControlMessage {
    let key = StudySigningKey::generate().expect("signing key");
    NewControlMessage {
        seq,
        signature: key.sign_control(seq, &kind, NOW).expect("signed"),
        kind,
        created_at: NOW,
    }
}

/// A signed withdrawal of a new participant with `code`.
pub fn withdrawal(seq: u64, code: &str) -> NewControlMessage {
    signed(
        seq,
        ControlKind::Withdrawal {
            participant_id: ParticipantId::new(NOW),
            participant_code: code.into(),
        },
    )
}

fn revocation(seq: u64, device: DeviceId, reason: &str) -> NewControlMessage {
    signed(
        seq,
        ControlKind::Revocation {
            device_id: device,
            reason: reason.into(),
        },
    )
}

fn protocol(seq: u64, json: &str) -> NewControlMessage {
    signed(
        seq,
        ControlKind::ProtocolUpdate {
            protocol: json.into(),
        },
    )
}

async fn add(store: &dyn Store, message: &NewControlMessage) -> ControlMessage {
    match store.add_withdrawal(message).await.unwrap() {
        AddOutcome::Added(stored) => stored,
        other => panic!("expected added, got {other:?}"),
    }
}

async fn publish(
    store: &dyn Store,
    id: &str,
    version: u32,
    message: &NewControlMessage,
) -> PublishOutcome {
    store.publish_protocol(id, version, message).await.unwrap()
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
    assert!(matches!(
        store
            .revoke_device(&found.id, &revocation(1, device.id, "tablet lost"))
            .await
            .unwrap(),
        RevokeOutcome::Revoked(_)
    ));
    let missing = DeviceId::new(Timestamp(NOW.0 + 5));
    assert_eq!(
        store
            .revoke_device(&missing.to_string(), &revocation(2, missing, "x"))
            .await
            .unwrap(),
        RevokeOutcome::UnknownDevice
    );
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
    assert!(matches!(
        store
            .revoke_device(&id, &revocation(1, device.id, "lost"))
            .await
            .unwrap(),
        RevokeOutcome::Revoked(_)
    ));
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
    assert_eq!(store.next_control_seq().await.unwrap(), 1);
    let first_message = withdrawal(1, "VIG-001");
    let first = add(store, &first_message).await;
    assert_eq!(store.next_control_seq().await.unwrap(), 2);
    let second = add(store, &withdrawal(2, "VIG-002")).await;
    assert!(second.id > first.id);
    // Served as signed: the same seq, kind, time and signature.
    assert_eq!(
        (first.seq, &first.kind, first.created_at, &first.signature),
        (
            1,
            &first_message.kind,
            first_message.created_at,
            &first_message.signature
        )
    );
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
    assert!(matches!(
        &second.kind,
        ControlKind::Withdrawal { participant_code, .. } if participant_code == "VIG-002"
    ));
    // The withdrawals are listed with the participant they name.
    let ControlKind::Withdrawal { participant_id, .. } = first.kind else {
        unreachable!()
    };
    let listed = store.withdrawals().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0],
        WithdrawalRecord {
            message_id: first.id,
            seq: Some(1),
            participant_id: Some(participant_id),
            participant_code: "VIG-001".into(),
            created_at: NOW,
        }
    );
}

pub async fn protocol_updates_are_delivered_in_order_and_only_newer_versions_are_published(
    store: &dyn Store,
) {
    let withdrawal = add(store, &withdrawal(1, "VIG-001")).await;
    let PublishOutcome::Published(v2) =
        publish(store, "vig-evaluation", 2, &protocol(2, "{\"version\": 2}")).await
    else {
        panic!("version 2 is the first published");
    };
    assert!(v2.message_id > withdrawal.id);
    assert_eq!(v2.seq, Some(2));
    // The same version again, or an older one, is refused and records nothing.
    for version in [2, 1] {
        assert_eq!(
            publish(store, "vig-evaluation", version, &protocol(3, "{}")).await,
            PublishOutcome::NotNewer { latest: 2 }
        );
    }
    assert_eq!(store.next_control_seq().await.unwrap(), 3);
    // Versions count per protocol id.
    let PublishOutcome::Published(other) = publish(
        store,
        "another-study",
        1,
        &protocol(3, "{\"id\": \"another-study\"}"),
    )
    .await
    else {
        panic!("another protocol has its own versions");
    };
    let PublishOutcome::Published(v5) =
        publish(store, "vig-evaluation", 5, &protocol(4, "{\"version\": 5}")).await
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
    // Only the unfinished one counts against the device's quota, with its bytes.
    assert_eq!(
        store
            .unfinished_uploads(&device.id.to_string())
            .await
            .unwrap(),
        (1, 3)
    );
    assert_eq!(
        store.unfinished_uploads("no-such-device").await.unwrap(),
        (0, 0)
    );
}

pub async fn the_study_signing_key_is_set_once_after_the_study_key(store: &dyn Store) {
    assert_eq!(store.study_keys().await.unwrap(), None);
    assert!(
        !store
            .set_study_signing_key("signing-one", "sig-one")
            .await
            .unwrap(),
        "no study key yet"
    );
    assert!(store.set_study_public_key("key-one", NOW).await.unwrap());
    assert_eq!(
        store.study_keys().await.unwrap(),
        Some(StudyRecord {
            public_key: "key-one".into(),
            signing_public_key: None,
            public_key_signature: None,
        })
    );
    assert!(
        store
            .set_study_signing_key("signing-one", "sig-one")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_study_signing_key("signing-two", "sig-two")
            .await
            .unwrap()
    );
    assert_eq!(
        store.study_keys().await.unwrap(),
        Some(StudyRecord {
            public_key: "key-one".into(),
            signing_public_key: Some("signing-one".into()),
            public_key_signature: Some("sig-one".into()),
        })
    );
}

pub async fn an_instruction_number_is_taken_once(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    add(store, &withdrawal(1, "VIG-001")).await;
    // Two CLI runs read the same next number: the second is told, and records nothing.
    assert_eq!(
        store
            .add_withdrawal(&withdrawal(1, "VIG-002"))
            .await
            .unwrap(),
        AddOutcome::SeqTaken
    );
    assert_eq!(
        publish(store, "vig-evaluation", 2, &protocol(1, "{}")).await,
        PublishOutcome::SeqTaken
    );
    assert_eq!(
        store
            .revoke_device(&device.id.to_string(), &revocation(1, device.id, "lost"))
            .await
            .unwrap(),
        RevokeOutcome::SeqTaken
    );
    let listed = store.list_devices().await.unwrap();
    assert_eq!(listed[0].status, DeviceStatus::Active, "not revoked");
    assert!(store.published_protocols().await.unwrap().is_empty());
    assert_eq!(store.control_messages_after(0).await.unwrap().len(), 1);
    assert_eq!(store.next_control_seq().await.unwrap(), 2);
    // A message of the wrong kind for the call is an error, not a record.
    assert!(store.add_withdrawal(&protocol(2, "{}")).await.is_err());
    assert_eq!(store.control_messages_after(0).await.unwrap().len(), 1);
}

pub async fn a_revocation_is_recorded_with_its_signed_statement(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let other = DeviceId::new(Timestamp(NOW.0 + 1));
    let id = device.id.to_string();
    assert_eq!(store.revocation_statement(&id).await.unwrap(), None);
    add(store, &withdrawal(1, "VIG-001")).await;
    let message = revocation(2, device.id, "tablet lost");
    let RevokeOutcome::Revoked(statement) = store.revoke_device(&id, &message).await.unwrap()
    else {
        panic!("revoked");
    };
    assert_eq!(
        (statement.seq, &statement.kind, &statement.signature),
        (2, &message.kind, &message.signature)
    );
    let found = store
        .device_by_token(&device.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.status, DeviceStatus::Revoked);
    assert_eq!(found.revoked_reason.as_deref(), Some("tablet lost"));
    assert_eq!(
        store.revocation_statement(&id).await.unwrap(),
        Some(statement.clone())
    );
    // Every device reads it among the instructions.
    assert_eq!(store.control_messages_after(0).await.unwrap()[1], statement);
    // Revoking again changes nothing.
    assert_eq!(
        store
            .revoke_device(&id, &revocation(3, device.id, "again"))
            .await
            .unwrap(),
        RevokeOutcome::AlreadyRevoked
    );
    assert_eq!(store.next_control_seq().await.unwrap(), 3);
    // A statement about another device is not recorded for this one.
    assert!(
        store
            .revoke_device(&id, &revocation(3, other, "mixed up"))
            .await
            .is_err()
    );
}

pub async fn an_enrolment_challenge_is_good_once_and_not_after_it_expires(store: &dyn Store) {
    let soon = Timestamp(NOW.0 + 1000);
    store.create_enrol_challenge("c1", soon, NOW).await.unwrap();
    store.create_enrol_challenge("c2", soon, NOW).await.unwrap();
    assert!(store.take_enrol_challenge("c1", NOW).await.unwrap());
    assert!(
        !store.take_enrol_challenge("c1", NOW).await.unwrap(),
        "once"
    );
    assert!(!store.take_enrol_challenge("unknown", NOW).await.unwrap());
    assert!(
        !store.take_enrol_challenge("c2", soon).await.unwrap(),
        "expired"
    );
    // Expired challenges are forgotten when new ones are made.
    store.create_enrol_challenge("c3", soon, NOW).await.unwrap();
    store
        .create_enrol_challenge("c4", Timestamp(soon.0 + 1000), soon)
        .await
        .unwrap();
    assert!(!store.take_enrol_challenge("c3", NOW).await.unwrap());
    assert!(store.take_enrol_challenge("c4", soon).await.unwrap());
}

/// The authorship of a revision made on `device`.
fn by(device: &TestDevice) -> Authorship {
    Authorship {
        device: device.id,
        author: ProfileId::new(NOW),
        time: NOW,
    }
}

/// Revisions 1..=n of one interview note, all made on `device`.
fn chain(device: &TestDevice, n: u32) -> Vec<Revision> {
    let mut revisions = vec![Revision::first(
        RecordId::new(NOW),
        Kind::InterviewNote,
        Links::default(),
        b"rev 1".to_vec(),
        by(device),
    )];
    for rev in 2..=n {
        let next = revisions
            .last()
            .unwrap()
            .next(format!("rev {rev}").into_bytes(), by(device))
            .unwrap();
        revisions.push(next);
    }
    revisions
}

fn stored() -> Pushed {
    Pushed {
        outcome: PushOutcome::Stored,
        reason: None,
    }
}

fn conflict(reason: ConflictReason) -> Pushed {
    Pushed {
        outcome: PushOutcome::Conflict,
        reason: Some(reason),
    }
}

/// The (record, rev) of every stored envelope.
async fn stored_revs(store: &dyn Store) -> Vec<(RecordId, u32)> {
    store
        .envelopes()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.envelope.record_id, s.envelope.rev))
        .collect()
}

pub async fn a_chain_is_stored_when_its_revisions_come_in_order_within_one_batch(
    store: &dyn Store,
) {
    let device = enrol(store, "Ana").await;
    let batch: Vec<Envelope> = chain(&device, 3)
        .iter()
        .map(|r| sealed(r, &device, None))
        .collect();
    let id = device.id.to_string();
    assert_eq!(
        store.push_checked(&id, &batch, NOW).await.unwrap(),
        vec![stored(), stored(), stored()]
    );
    assert_eq!(stored_revs(store).await.len(), 3);
    assert!(store.kept_conflicts().await.unwrap().is_empty());
}

/// Revs out of order within one batch, among other records' first revisions: a rev whose
/// previous comes later in the batch is kept as a gap and stored as soon as that one is, and
/// a gap kept in an earlier batch is filled by a batch of other records too.
pub async fn a_gap_filled_later_in_the_same_batch_is_stored(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let revisions = chain(&device, 3);
    let [first, second, third] = [0, 1, 2].map(|i| sealed(&revisions[i], &device, None));
    let others: Vec<_> = chain(&device, 1)
        .iter()
        .chain(chain(&device, 1).iter())
        .map(|revision| sealed(revision, &device, None))
        .collect();
    let batch = [
        third.clone(),
        others[0].clone(),
        first.clone(),
        second.clone(),
        others[1].clone(),
    ];
    assert_eq!(
        store.push_checked(&id, &batch, NOW).await.unwrap(),
        vec![
            conflict(ConflictReason::Gap),
            stored(),
            stored(),
            stored(),
            stored()
        ]
    );
    let record = first.record_id;
    let mut revs: Vec<_> = stored_revs(store)
        .await
        .into_iter()
        .filter(|(of, _)| *of == record)
        .collect();
    revs.sort();
    assert_eq!(revs, vec![(record, 1), (record, 2), (record, 3)]);
    assert!(store.kept_conflicts().await.unwrap().is_empty());

    // A gap from an earlier batch, filled by a batch that also holds another record.
    let later = chain(&device, 2);
    let [one, two] = [0, 1].map(|i| sealed(&later[i], &device, None));
    assert_eq!(
        store
            .push_checked(&id, std::slice::from_ref(&two), NOW)
            .await
            .unwrap(),
        vec![conflict(ConflictReason::Gap)]
    );
    let another = sealed(&chain(&device, 1)[0], &device, None);
    assert_eq!(
        store.push_checked(&id, &[another, one], NOW).await.unwrap(),
        vec![stored(), stored()]
    );
    assert!(store.kept_conflicts().await.unwrap().is_empty());
    assert_eq!(stored_revs(store).await.len(), 3 + 2 + 3);
}

/// A device that resends a batch while the first send is still being stored (a timeout and a
/// retry): every copy is answered, each revision is stored once, nothing is a conflict.
pub async fn one_batch_pushed_three_times_at_once_is_stored_once(store: &dyn Store) {
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let mut batch: Vec<_> = chain(&device, 3)
        .iter()
        .map(|revision| sealed(revision, &device, None))
        .collect();
    for _ in 0..3 {
        batch.push(sealed(&chain(&device, 1)[0], &device, None));
    }
    let push = || store.push_checked(&id, &batch, NOW);
    let (a, b, c) = tokio::join!(push(), push(), push());
    for answer in [a, b, c] {
        let answer = answer.expect("answered");
        assert_eq!(answer.len(), batch.len());
        assert!(
            answer
                .iter()
                .all(|pushed| pushed.reason.is_none() && pushed.outcome != PushOutcome::Conflict),
            "{answer:?}"
        );
    }
    assert_eq!(stored_revs(store).await.len(), batch.len());
    assert!(store.conflicts().await.unwrap().is_empty());
}

pub async fn a_revision_whose_previous_is_missing_is_kept_as_a_gap_and_stored_once_it_arrives(
    store: &dyn Store,
) {
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let revisions = chain(&device, 4);
    let [first, second, third, fourth] = [0, 1, 2, 3].map(|i| sealed(&revisions[i], &device, None));
    store
        .push_checked(&id, std::slice::from_ref(&first), NOW)
        .await
        .unwrap();
    // Revs 3 and 4 before rev 2: kept, not stored, and said why.
    assert_eq!(
        store
            .push_checked(&id, &[third.clone(), fourth.clone()], NOW)
            .await
            .unwrap(),
        vec![conflict(ConflictReason::Gap), conflict(ConflictReason::Gap)]
    );
    // Resent: the same answer, one copy kept.
    assert_eq!(
        store
            .push_checked(&id, std::slice::from_ref(&third), NOW)
            .await
            .unwrap(),
        vec![conflict(ConflictReason::Gap)]
    );
    assert_eq!(stored_revs(store).await, vec![(first.record_id, 1)]);
    let kept = store.kept_conflicts().await.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].stored.envelope, third);
    assert_eq!(kept[0].reason, ConflictReason::Gap);
    assert_eq!(
        kept[0].detail.as_deref(),
        Some("rev 2 of this record is not stored")
    );
    assert_eq!(store.conflicts().await.unwrap().len(), 2);
    // Rev 2 arrives: it is stored, and so are the revs that waited for it, in order.
    assert_eq!(
        store
            .push_checked(&id, std::slice::from_ref(&second), NOW)
            .await
            .unwrap(),
        vec![stored()]
    );
    let record = first.record_id;
    let mut revs = stored_revs(store).await;
    revs.sort();
    assert_eq!(
        revs,
        vec![(record, 1), (record, 2), (record, 3), (record, 4)]
    );
    assert!(store.kept_conflicts().await.unwrap().is_empty());
    assert!(store.conflicts().await.unwrap().is_empty());
    assert_eq!(
        store
            .push_checked(&id, &[third, fourth], NOW)
            .await
            .unwrap(),
        vec![
            Pushed {
                outcome: PushOutcome::AlreadyStored,
                reason: None
            };
            2
        ]
    );
}

pub async fn a_revision_whose_parent_is_not_the_stored_one_is_kept_as_a_conflict(
    store: &dyn Store,
) {
    let device = enrol(store, "Ana").await;
    let id = device.id.to_string();
    let revisions = chain(&device, 2);
    let first = sealed(&revisions[0], &device, None);
    // Rev 2 built on another rev 1 than the one stored.
    let mut other_first = revisions[0].clone();
    other_first.body = b"another rev 1".to_vec();
    other_first.hash = other_first.compute_hash();
    let astray = other_first.next(b"rev 2".to_vec(), by(&device)).unwrap();
    // And a first revision that names a parent.
    let mut orphan = Revision::first(
        RecordId::new(NOW),
        Kind::InterviewNote,
        Links::default(),
        b"orphan".to_vec(),
        by(&device),
    );
    orphan.parent_hash = Some(first.hash);
    orphan.hash = orphan.compute_hash();
    let batch = [
        first.clone(),
        sealed(&astray, &device, None),
        sealed(&orphan, &device, None),
    ];
    assert_eq!(
        store.push_checked(&id, &batch, NOW).await.unwrap(),
        vec![
            stored(),
            conflict(ConflictReason::ParentMismatch),
            conflict(ConflictReason::ParentMismatch)
        ]
    );
    assert_eq!(stored_revs(store).await, vec![(first.record_id, 1)]);
    let kept = store.kept_conflicts().await.unwrap();
    assert_eq!(kept.len(), 2);
    assert!(
        kept[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains(&first.hash.to_hex())),
        "{kept:?}"
    );
    // The right rev 2 is still stored.
    assert_eq!(
        store
            .push_checked(&id, &[sealed(&revisions[1], &device, None)], NOW)
            .await
            .unwrap(),
        vec![stored()]
    );
}

pub async fn a_record_continued_on_another_fieldworkers_device_is_kept_as_a_conflict(
    store: &dyn Store,
) {
    let ana = enrol(store, "Ana").await;
    let ben = enrol(store, "Ben").await;
    let first = chain(&ana, 1).remove(0);
    store
        .push_checked(&ana.id.to_string(), &[sealed(&first, &ana, None)], NOW)
        .await
        .unwrap();
    let hijack = first.next(b"Ben's words".to_vec(), by(&ben)).unwrap();
    let envelope = sealed(&hijack, &ben, None);
    assert_eq!(
        store
            .push_checked(&ben.id.to_string(), std::slice::from_ref(&envelope), NOW)
            .await
            .unwrap(),
        vec![conflict(ConflictReason::OwnedByAnotherDevice)]
    );
    assert_eq!(stored_revs(store).await, vec![(first.record_id, 1)]);
    let kept = store.kept_conflicts().await.unwrap();
    assert_eq!(kept[0].stored.envelope, envelope);
    assert_eq!(kept[0].stored.device_id, ben.id.to_string());
    let detail = kept[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains(&ana.id.to_string()) && detail.contains("Ana"),
        "{detail}"
    );
}

pub async fn a_record_continued_on_a_re_enrolled_device_of_the_same_fieldworker_is_stored(
    store: &dyn Store,
) {
    let old_tablet = enrol(store, "Ana").await;
    let new_tablet = enrol(store, " ana ").await;
    let first = chain(&old_tablet, 1).remove(0);
    store
        .push_checked(
            &old_tablet.id.to_string(),
            &[sealed(&first, &old_tablet, None)],
            NOW,
        )
        .await
        .unwrap();
    let next = first.next(b"continued".to_vec(), by(&new_tablet)).unwrap();
    assert_eq!(
        store
            .push_checked(
                &new_tablet.id.to_string(),
                &[sealed(&next, &new_tablet, None)],
                NOW
            )
            .await
            .unwrap(),
        vec![stored()]
    );
    assert_eq!(stored_revs(store).await.len(), 2);
}

pub async fn a_participant_code_held_by_another_participant_record_is_kept_as_code_taken(
    store: &dyn Store,
) {
    let ana = enrol(store, "Ana").await;
    let ben = enrol(store, "Ben").await;
    let participant = |device: &TestDevice, body: &str| {
        Revision::first(
            RecordId::new(NOW),
            Kind::Participant,
            Links::default(),
            body.as_bytes().to_vec(),
            by(device),
        )
    };
    let anas = participant(&ana, "Ana's C01");
    let bens = participant(&ben, "Ben's C01");
    let ana_id = ana.id.to_string();
    let ben_id = ben.id.to_string();
    assert_eq!(
        store
            .push_checked(&ana_id, &[sealed(&anas, &ana, Some("C01"))], NOW)
            .await
            .unwrap(),
        vec![stored()]
    );
    // The same record again under its code (a later revision) is fine...
    let edited = anas.next(b"Ana's C01, edited".to_vec(), by(&ana)).unwrap();
    // ...another record with that code is not, nor is another kind of record's code checked.
    let note = envelope_for(&ben, "a note about C01", Some("C01"));
    let taken = sealed(&bens, &ben, Some("C01"));
    assert_eq!(
        store
            .push_checked(&ana_id, &[sealed(&edited, &ana, Some("C01"))], NOW)
            .await
            .unwrap(),
        vec![stored()]
    );
    assert_eq!(
        store
            .push_checked(&ben_id, &[taken.clone(), note], NOW)
            .await
            .unwrap(),
        vec![conflict(ConflictReason::CodeTaken), stored()]
    );
    let kept = store.kept_conflicts().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].stored.envelope, taken);
    assert_eq!(kept[0].reason, ConflictReason::CodeTaken);
    assert_eq!(
        kept[0].detail.as_deref(),
        Some(format!("code C01 is held by participant record {}", anas.record_id).as_str())
    );
    // Another code is free.
    let other = participant(&ben, "Ben's C02");
    assert_eq!(
        store
            .push_checked(&ben_id, &[sealed(&other, &ben, Some("C02"))], NOW)
            .await
            .unwrap(),
        vec![stored()]
    );
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
    add(store, &withdrawal(1, "C12")).await;
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

/// Withdrawal requests from tablets are found from what the store holds, without the study
/// key ([`crate::verify::withdrawal_requests`]): a request signed by the enrolled device that
/// made the participant is pending until a signed withdrawal names the participant, then
/// confirmed; one with a forged signature (put in past the push's check, as someone with the
/// database could), or from another fieldworker's device, is refused and never pending.
pub async fn a_withdrawal_request_counts_only_when_the_participants_fieldworkers_device_signed_it(
    store: &dyn Store,
) {
    use crate::verify::{Devices, withdrawal_requests};
    use attune_core::fieldwork::withdrawal_request_record;
    let ana = enrol(store, "Ana").await;
    let ben = enrol(store, "Ben").await;
    let forger = TestDevice {
        id: ana.id,
        key: DeviceKey::generate().expect("key"),
        token_hash: String::new(),
    };
    let ana_id = ana.id.to_string();
    let mut ids = Vec::new();
    for code in ["C01", "C02", "C03"] {
        let participant = ParticipantId::new(NOW);
        let links = Links {
            participant: Some(participant),
            ..Links::default()
        };
        let record = Revision::first(
            RecordId::from_bytes(*participant.as_bytes()),
            Kind::Participant,
            links,
            code.as_bytes().to_vec(),
            by(&ana),
        );
        store
            .push_checked(&ana_id, &[sealed(&record, &ana, Some(code))], NOW)
            .await
            .unwrap();
        ids.push(participant);
    }
    let request = |participant: ParticipantId, device: &TestDevice, code: &str| {
        let revision = Revision::first(
            withdrawal_request_record(participant),
            Kind::Withdrawal,
            Links {
                participant: Some(participant),
                ..Links::default()
            },
            b"{\"keep_data\": false}".to_vec(),
            by(device),
        );
        sealed(&revision, device, Some(code))
    };
    // C01: Ana's tablet asks. C02: a forged signature under Ana's device id. C03: Ben's
    // tablet asks for a participant of Ana's.
    for (pusher, envelope) in [
        (ana_id.clone(), request(ids[0], &ana, "C01")),
        (ana_id.clone(), request(ids[1], &forger, "C02")),
        (ben.id.to_string(), request(ids[2], &ben, "C03")),
    ] {
        assert_eq!(
            store.push_checked(&pusher, &[envelope], NOW).await.unwrap(),
            vec![stored()]
        );
    }
    // A plain withdrawal record (random id, "stop, keep the data") is not a request.
    let plain = Revision::first(
        RecordId::new(NOW),
        Kind::Withdrawal,
        Links::default(),
        b"{}".to_vec(),
        by(&ana),
    );
    store
        .push_checked(&ana_id, &[sealed(&plain, &ana, Some("C01"))], NOW)
        .await
        .unwrap();

    let requests = async || {
        let envelopes = store.envelopes().await.unwrap();
        let devices = Devices::new(&store.list_devices().await.unwrap());
        withdrawal_requests(
            &envelopes,
            &envelopes,
            &devices,
            &store.withdrawals().await.unwrap(),
        )
    };
    let found = requests().await;
    assert_eq!(found.len(), 3, "{found:?}");
    let of = |code: &str| found.iter().find(|r| r.participant_code == code).unwrap();
    let c01 = of("C01");
    assert_eq!(c01.participant_id, ids[0]);
    assert_eq!(
        (c01.device_id.as_str(), c01.fieldworker.as_str()),
        (ana_id.as_str(), "Ana")
    );
    assert!(c01.is_pending() && c01.status() == "pending", "{c01:?}");
    for refused in [of("C02"), of("C03")] {
        assert_eq!(refused.status(), "refused", "{refused:?}");
        assert!(!refused.is_pending());
    }
    assert!(of("C02").problem.as_deref().unwrap().contains("signature"));
    assert!(of("C03").problem.as_deref().unwrap().contains("Ben"));

    // The study team confirms C01 with a signed withdrawal naming the participant.
    let message = add(
        store,
        &signed(
            1,
            ControlKind::Withdrawal {
                participant_id: ids[0],
                participant_code: "C01".into(),
            },
        ),
    )
    .await;
    let found = requests().await;
    let c01 = found.iter().find(|r| r.participant_code == "C01").unwrap();
    assert_eq!(c01.confirmed_by, Some(message.id));
    assert_eq!(c01.status(), "confirmed");
}

pub async fn attempts_over_a_rate_limit_are_refused_until_the_next_window(store: &dyn Store) {
    use super::RateLimit;
    let limit = RateLimit::new("enrol_address", 3, 60_000);
    let other = RateLimit::new("enrol_code", 3, 60_000);
    let window = limit.window_start(NOW);
    let at = |ms: i64| Timestamp(window + ms);
    let mut allowed = Vec::new();
    for n in 0..5 {
        let attempt = store
            .count_attempt(&limit, "203.0.113.9", at(n * 1000))
            .await
            .expect("counted");
        assert_eq!(attempt.count, n + 1);
        assert_eq!(attempt.window_ends, Timestamp(window + 60_000));
        allowed.push(attempt.allowed);
    }
    assert_eq!(allowed, [true, true, true, false, false]);
    // Another key, or the same key in another bucket, has its own count.
    for (limit, key) in [(&limit, "198.51.100.1"), (&other, "203.0.113.9")] {
        let attempt = store.count_attempt(limit, key, at(10_000)).await.unwrap();
        assert!(attempt.allowed && attempt.count == 1, "{attempt:?}");
    }
    // The next window starts again at one.
    let next = store
        .count_attempt(&limit, "203.0.113.9", at(60_000))
        .await
        .unwrap();
    assert!(next.allowed && next.count == 1, "{next:?}");
    // An instance whose clock is behind counts in the newer window, never resets it.
    let behind = store
        .count_attempt(&limit, "203.0.113.9", at(59_000))
        .await
        .unwrap();
    assert_eq!(
        (behind.count, behind.window_ends),
        (2, Timestamp(window + 120_000))
    );
    // A key last seen in an old window starts again at one.
    let again = store
        .count_attempt(&limit, "198.51.100.1", at(61_000))
        .await
        .unwrap();
    assert_eq!(again.count, 1);
}

pub async fn concurrent_attempts_never_let_more_than_the_rate_limit_through(store: &dyn Store) {
    use super::RateLimit;
    let limit = RateLimit::new("enrol_code", 7, 600_000);
    let attempts = (0..40).map(|_| store.count_attempt(&limit, "code-hash", NOW));
    let results = futures_util::future::join_all(attempts).await;
    let mut counts: Vec<i64> = results
        .iter()
        .map(|result| result.as_ref().expect("counted").count)
        .collect();
    let allowed = results
        .iter()
        .filter(|result| result.as_ref().is_ok_and(|attempt| attempt.allowed))
        .count();
    assert_eq!(allowed, 7, "exactly the limit went through");
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=40).collect::<Vec<i64>>(),
        "each attempt counted once"
    );
}
