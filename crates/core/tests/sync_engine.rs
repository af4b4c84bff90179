//! The sync engine's state machine against an in-memory server that keeps the real
//! protocol's promises (idempotent push, conflicts kept, resumable uploads) and can cut any
//! request before or after it takes effect. The real HTTP proof is attune-server's
//! `tests/sync_faults.rs`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use attune_core::attachment::{open_attachment, sha256_hex};
use attune_core::fieldwork::{AttachmentBody, ParticipantBody, ParticipantStatus, PurgeBody};
use attune_core::sync::{
    BatchLimits, ConflictReason, ControlKind, ControlMessage, HoldReason, InstructionProblem,
    PullPosition, PullResponse, PushOutcome, PushRequest, PushResponse, PushResult, Revocation,
    SyncIdentity, SyncProgress, SyncReport, Syncer, Transport, TransportError, UploadCreate,
    UploadState,
};
use attune_core::{
    Authorship, BlobId, BlobStore, DeviceId, DeviceKey, Envelope, KdfParams, Kind, Links,
    MemoryStore, ParticipantId, ProfileId, RecordId, RecordStore, Revision, StudyKeyPair,
    StudyPublicKey, StudySigningKey, StudyVerifyingKey, Timestamp, Vault,
};
use futures_executor::block_on;

/// Where a request is cut: before the server acts on it, or after (the answer is lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    Before,
    After,
}

/// The server's promises, in memory.
#[derive(Default)]
struct FakeServer {
    /// (record, rev) -> the first envelope stored.
    envelopes: RefCell<BTreeMap<(RecordId, u32), Envelope>>,
    conflicts: RefCell<Vec<Envelope>>,
    /// How many times each (record, rev, hash) was pushed and acknowledged.
    messages: RefCell<Vec<ControlMessage>>,
    /// Set when the device is revoked: what pull says (push and uploads are refused).
    revoked: RefCell<Option<Revocation>>,
    /// sha256 -> (length, bytes so far).
    uploads: RefCell<HashMap<String, (u64, Vec<u8>)>>,
    requests: Cell<usize>,
    cut: Cell<Option<(usize, Cut)>>,
}

impl FakeServer {
    /// Counts a request; `Err` if this is the one to cut before it acts.
    fn begin(&self) -> Result<Option<Cut>, TransportError> {
        let n = self.requests.get();
        self.requests.set(n + 1);
        match self.cut.get() {
            Some((at, Cut::Before)) if at == n => Err(TransportError::Network("cut".into())),
            Some((at, Cut::After)) if at == n => Ok(Some(Cut::After)),
            _ => Ok(None),
        }
    }

    fn answer<R>(cut: Option<Cut>, answer: R) -> Result<R, TransportError> {
        match cut {
            Some(Cut::After) => Err(TransportError::Network("answer lost".into())),
            _ => Ok(answer),
        }
    }

    fn revoked(&self) -> Result<(), TransportError> {
        match self.revoked.borrow().clone() {
            Some(revocation) => Err(TransportError::Revoked {
                reason: revocation.reason,
            }),
            None => Ok(()),
        }
    }

    fn of_kind(&self, kind: Kind) -> Vec<Envelope> {
        self.envelopes
            .borrow()
            .values()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect()
    }
}

impl Transport for FakeServer {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        let cut = self.begin()?;
        self.revoked()?;
        let mut results = Vec::new();
        for envelope in &request.envelopes {
            let key = (envelope.record_id, envelope.rev);
            let outcome = match self.envelopes.borrow().get(&key) {
                Some(stored) if stored.hash == envelope.hash => PushOutcome::AlreadyStored,
                Some(_) => PushOutcome::Conflict,
                None => PushOutcome::Stored,
            };
            match outcome {
                PushOutcome::Stored => {
                    self.envelopes.borrow_mut().insert(key, envelope.clone());
                }
                PushOutcome::Conflict => {
                    let mut conflicts = self.conflicts.borrow_mut();
                    if !conflicts.iter().any(|c| c.hash == envelope.hash) {
                        conflicts.push(envelope.clone());
                    }
                }
                PushOutcome::AlreadyStored => {}
            }
            results.push(PushResult {
                record_id: envelope.record_id,
                rev: envelope.rev,
                hash: envelope.hash,
                outcome,
                reason: (outcome == PushOutcome::Conflict).then_some(ConflictReason::RevTaken),
            });
        }
        Self::answer(cut, PushResponse { results })
    }

    async fn pull(&self, after: i64) -> Result<PullResponse, TransportError> {
        let cut = self.begin()?;
        let revoked = self.revoked.borrow().clone();
        let messages: Vec<ControlMessage> = self
            .messages
            .borrow()
            .iter()
            .filter(|m| m.id > after)
            .cloned()
            .collect();
        let cursor = messages.last().map_or(after, |m| m.id);
        Self::answer(
            cut,
            PullResponse {
                messages,
                cursor,
                revoked,
            },
        )
    }

    async fn upload_create(&self, upload: &UploadCreate) -> Result<UploadState, TransportError> {
        let cut = self.begin()?;
        self.revoked()?;
        let mut uploads = self.uploads.borrow_mut();
        let (length, bytes) = uploads
            .entry(upload.sha256.clone())
            .or_insert((upload.length, Vec::new()));
        let state = UploadState {
            offset: bytes.len() as u64,
            length: *length,
            complete: bytes.len() as u64 == *length,
        };
        Self::answer(cut, state)
    }

    async fn upload_append(
        &self,
        sha256: &str,
        offset: u64,
        piece: &[u8],
    ) -> Result<u64, TransportError> {
        let cut = self.begin()?;
        self.revoked()?;
        let mut uploads = self.uploads.borrow_mut();
        let (length, bytes) = uploads.get_mut(sha256).expect("upload created first");
        if offset != bytes.len() as u64 || bytes.len() as u64 == *length {
            return Err(TransportError::OffsetMismatch {
                server_offset: bytes.len() as u64,
            });
        }
        bytes.extend_from_slice(piece);
        let offset = bytes.len() as u64;
        if offset == *length {
            assert_eq!(sha256_hex(bytes), sha256, "the completed upload's hash");
        }
        Self::answer(cut, offset)
    }
}

/// A device: its store, keys and the study key pair (to open what the server holds) and
/// signing key (to sign what the study team sends).
struct Device {
    store: MemoryStore,
    vault: Vault,
    key: DeviceKey,
    study: StudyKeyPair,
    study_public: StudyPublicKey,
    signing: StudySigningKey,
    signing_public: StudyVerifyingKey,
    id: DeviceId,
    author: ProfileId,
    clock: Cell<i64>,
}

const T0: i64 = 1_750_000_000_000;

impl Device {
    fn new() -> Self {
        let params = KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        };
        let (vault, _) = Vault::create("a long enough passphrase", params).expect("vault");
        let study = StudyKeyPair::generate();
        let signing = StudySigningKey::generate().expect("signing key");
        Self {
            store: MemoryStore::new(),
            vault,
            key: DeviceKey::generate().expect("device key"),
            study_public: study.public_key(),
            study,
            signing_public: signing.public_key(),
            signing,
            id: DeviceId::from_bytes([0xd0; 16]),
            author: ProfileId::from_bytes([0xa0; 16]),
            clock: Cell::new(T0),
        }
    }

    fn identity(&self) -> SyncIdentity<'_> {
        SyncIdentity {
            vault: &self.vault,
            device_key: &self.key,
            study_key: &self.study_public,
            study_signing_key: &self.signing_public,
            device: self.id,
            author: self.author,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.set(self.clock.get() + 1);
        Timestamp(self.clock.get())
    }

    fn save(&self, id: RecordId, kind: Kind, links: Links, body: &[u8]) -> Revision {
        let revision = Revision::first(
            id,
            kind,
            links,
            body.to_vec(),
            Authorship {
                device: self.id,
                author: self.author,
                time: self.now(),
            },
        );
        let stored = self.vault.seal_revision(&revision).expect("seal");
        block_on(self.store.put_revision(stored)).expect("saved");
        revision
    }

    fn note(&self, participant: Option<ParticipantId>, text: &str) -> Revision {
        let links = Links {
            participant,
            ..Links::default()
        };
        self.save(
            RecordId::new(self.now()),
            Kind::InterviewNote,
            links,
            text.as_bytes(),
        )
    }

    fn participant(&self, code: &str, name: Option<&str>) -> ParticipantId {
        let id = ParticipantId::new(self.now());
        let body = ParticipantBody {
            code: code.into(),
            group: "carers".into(),
            name: None,
            links: vec![],
            status: ParticipantStatus::Active,
        };
        self.save(
            RecordId::from_uuid(*id.as_uuid()),
            Kind::Participant,
            Links {
                participant: Some(id),
                ..Links::default()
            },
            &participant_json(&body, name),
        );
        id
    }

    /// An attachment of `size` bytes in chunks of 100, with its record.
    fn attachment(&self, participant: Option<ParticipantId>, size: usize) -> (BlobId, Vec<u8>) {
        let blob = BlobId::new(self.now());
        let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<&[u8]> = content.chunks(100).collect();
        for (index, chunk) in (0u32..).zip(&chunks) {
            let sealed = self.vault.seal_chunk(blob, index, chunk).unwrap();
            block_on(self.store.put_chunk(blob, index, sealed)).unwrap();
        }
        let body = AttachmentBody {
            blob,
            media_type: "audio/webm".into(),
            bytes: size as u64,
            duration_ms: None,
            chunks: chunks.len() as u32,
            sha256: Some(sha256_hex(&content)),
        };
        self.save(
            RecordId::new(self.now()),
            Kind::Attachment,
            Links {
                participant,
                ..Links::default()
            },
            &serde_json::to_vec(&body).unwrap(),
        );
        (blob, content)
    }

    fn run(
        &self,
        server: &impl Transport,
        position: PullPosition,
        limits: BatchLimits,
    ) -> Result<SyncReport, attune_core::sync::SyncFailure> {
        let clock = || self.now();
        let syncer = Syncer::new(&self.store, server, self.identity(), &clock).with_limits(limits);
        block_on(syncer.run(position, |_| {}))
    }

    /// A control message as the study team's CLI signs it.
    fn signed(&self, id: i64, seq: u64, kind: ControlKind) -> ControlMessage {
        signed_by(&self.signing, id, seq, kind)
    }

    fn withdrawal(
        &self,
        id: i64,
        seq: u64,
        participant: ParticipantId,
        code: &str,
    ) -> ControlMessage {
        self.signed(
            id,
            seq,
            ControlKind::Withdrawal {
                participant_id: participant,
                participant_code: code.into(),
            },
        )
    }

    fn unsynced(&self) -> usize {
        block_on(self.store.count_unsynced()).unwrap()
    }
}

/// A control message signed by `key` (the study's, or a forger's).
fn signed_by(key: &StudySigningKey, id: i64, seq: u64, kind: ControlKind) -> ControlMessage {
    let created_at = Timestamp(T0);
    ControlMessage {
        id,
        seq,
        signature: key.sign_control(seq, &kind, created_at).expect("signed"),
        kind,
        created_at,
    }
}

/// Reading instructions from the start.
const START: PullPosition = PullPosition {
    cursor: 0,
    last_seq: 0,
};

fn at(cursor: i64, last_seq: u64) -> PullPosition {
    PullPosition { cursor, last_seq }
}

fn small_batches() -> BatchLimits {
    BatchLimits {
        max_revisions: 3,
        max_bytes: 1 << 20,
        upload_piece: 64,
    }
}

/// Every envelope the server holds opens with the study key and was signed by the device.
fn assert_server_holds(server: &FakeServer, device: &Device, revisions: &[Revision]) {
    let envelopes = server.envelopes.borrow();
    for revision in revisions {
        let envelope = envelopes
            .get(&(revision.record_id, revision.rev))
            .unwrap_or_else(|| panic!("{:?} is on the server", revision.record_id));
        envelope.verify(&device.key.public_key()).expect("signed");
        let opened = envelope.open(device.study.private_key()).expect("opens");
        assert_eq!(&opened, revision);
    }
}

#[test]
fn the_outbox_reaches_the_server_in_batches_once_and_is_marked_synced() {
    let device = Device::new();
    let notes: Vec<Revision> = (0..250)
        .map(|n| device.note(None, &format!("note {n}")))
        .collect();
    let server = FakeServer::default();
    let clock = || device.now();
    let mut seen: Vec<SyncProgress> = Vec::new();
    let syncer = Syncer::new(&device.store, &server, device.identity(), &clock);
    let report = block_on(syncer.run(START, |progress| seen.push(progress))).expect("synced");

    assert_eq!(report.pushed, 250);
    assert_eq!(report.acknowledged(), 250);
    assert_eq!(device.unsynced(), 0);
    assert_eq!(server.envelopes.borrow().len(), 250);
    // One pull and three pushes of at most 100.
    assert_eq!(server.requests.get(), 4);
    let done: Vec<usize> = seen.iter().map(|p| p.done).collect();
    assert_eq!(done, vec![0, 100, 200, 250]);
    assert!(seen.iter().all(|p| p.total == 250));
    assert_server_holds(&server, &device, &notes);
}

#[test]
fn a_run_cut_at_any_request_loses_nothing_and_duplicates_nothing() {
    // Count the requests of an uninterrupted run, then cut each one in turn, before and
    // after the server acts, and run again.
    let requests = {
        let device = Device::new();
        fill(&device);
        let server = FakeServer::default();
        device.run(&server, START, small_batches()).expect("synced");
        server.requests.get()
    };
    assert!(
        requests > 10,
        "the scenario needs many requests: {requests}"
    );
    for at in 0..requests {
        for cut in [Cut::Before, Cut::After] {
            let device = Device::new();
            let (revisions, attachments) = fill(&device);
            let server = FakeServer::default();
            server.cut.set(Some((at, cut)));
            let failure = device
                .run(&server, START, small_batches())
                .expect_err("the cut stops the run");
            assert!(failure.error.is_retryable(), "{at} {cut:?}: {failure}");
            let report = device
                .run(&server, failure.report.position, small_batches())
                .expect("the second run finishes");
            assert!(report.held.is_empty());
            assert_eq!(device.unsynced(), 0, "{at} {cut:?}");
            assert_eq!(server.envelopes.borrow().len(), revisions.len());
            assert!(server.conflicts.borrow().is_empty());
            assert_server_holds(&server, &device, &revisions);
            let uploads = server.uploads.borrow();
            assert_eq!(uploads.len(), attachments.len(), "{at} {cut:?}");
            for (_, bytes) in uploads.values() {
                let (blob, content) =
                    open_attachment(bytes, device.study.private_key()).expect("opens");
                assert_eq!(attachments[&blob], content);
            }
        }
    }
}

/// A participant, 8 notes and two attachments (one of them in 13 upload pieces).
fn fill(device: &Device) -> (Vec<Revision>, HashMap<BlobId, Vec<u8>>) {
    let mut attachments = HashMap::new();
    let participant = device.participant("C01", None);
    let (blob, content) = device.attachment(Some(participant), 700);
    attachments.insert(blob, content);
    for n in 0..8 {
        device.note(Some(participant), &format!("note {n}"));
    }
    let (blob, content) = device.attachment(None, 50);
    attachments.insert(blob, content);
    let revisions = block_on(device.store.unsynced(1000))
        .unwrap()
        .iter()
        .map(|stored| device.vault.open_revision(stored).unwrap())
        .collect();
    (revisions, attachments)
}

#[test]
fn a_conflict_is_kept_on_the_server_counted_and_the_revision_marked_synced() {
    let device = Device::new();
    let note = device.note(None, "mine");
    let server = FakeServer::default();
    let mut other = note.clone();
    other.body = b"someone else's".to_vec();
    other.hash = other.compute_hash();
    let first =
        attune_core::seal_envelope(&other, None, &device.study.public_key(), &device.key).unwrap();
    server
        .envelopes
        .borrow_mut()
        .insert((note.record_id, 1), first);

    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!((report.pushed, report.conflicts), (0, 1));
    assert_eq!(
        report.conflict_reasons,
        vec![(note.record_id, 1, ConflictReason::RevTaken)]
    );
    assert_eq!(
        report.conflicts_by_reason().as_deref(),
        Some("another revision with this number is stored: 1")
    );
    assert_eq!(device.unsynced(), 0);
    assert_eq!(server.conflicts.borrow()[0].hash, note.hash);
}

#[test]
fn a_conflict_reason_this_version_does_not_know_still_counts_as_held_by_the_server() {
    let answer: PushResponse = serde_json::from_str(
        r#"{"results": [{"record_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "rev": 2,
            "hash": "00000000000000000000000000000000000000000000000000000000000000aa",
            "outcome": "conflict", "reason": "a_future_check"}]}"#,
    )
    .unwrap();
    assert_eq!(answer.results[0].outcome, PushOutcome::Conflict);
    assert_eq!(answer.results[0].reason, Some(ConflictReason::Unknown));
    // And an answer from a server before reasons existed.
    let old: PushResponse = serde_json::from_str(
        r#"{"results": [{"record_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "rev": 1,
            "hash": "00000000000000000000000000000000000000000000000000000000000000aa",
            "outcome": "stored"}]}"#,
    )
    .unwrap();
    assert_eq!(old.results[0].reason, None);
}

#[test]
fn later_revisions_wait_behind_a_held_one_so_the_server_never_sees_a_gap() {
    let device = Device::new();
    // An attachment whose first revision cannot be sent (its blob is gone), then edited.
    let (blob, _) = device.attachment(None, 300);
    block_on(device.store.delete_blob(blob)).unwrap();
    let first = block_on(device.store.unsynced(10)).unwrap()[0].clone();
    let first = device.vault.open_revision(&first).unwrap();
    let second = first
        .next(
            first.body.clone(),
            Authorship {
                device: device.id,
                author: device.author,
                time: device.now(),
            },
        )
        .unwrap();
    block_on(
        device
            .store
            .put_revision(device.vault.seal_revision(&second).unwrap()),
    )
    .unwrap();
    let other = device.note(None, "sent");
    let server = FakeServer::default();
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    let held: Vec<(u32, &HoldReason)> = report.held.iter().map(|h| (h.rev, &h.reason)).collect();
    assert!(
        matches!(held[0], (1, HoldReason::BlobIncomplete { .. })),
        "{held:?}"
    );
    assert_eq!(held[1], (2, &HoldReason::EarlierRevisionHeld { rev: 1 }));
    let envelopes = server.envelopes.borrow();
    assert_eq!(envelopes.len(), 1);
    assert!(envelopes.contains_key(&(other.record_id, 1)));
    assert_eq!(device.unsynced(), 2);
}

#[test]
fn a_batch_never_exceeds_what_the_server_takes() {
    use attune_core::sync::MAX_PUSH_ENVELOPES;
    assert!(BatchLimits::default().max_revisions <= MAX_PUSH_ENVELOPES);
    let device = Device::new();
    let server = FakeServer::default();
    let clock = || device.now();
    let syncer =
        Syncer::new(&device.store, &server, device.identity(), &clock).with_limits(BatchLimits {
            max_revisions: 10 * MAX_PUSH_ENVELOPES,
            ..BatchLimits::default()
        });
    let shown = format!("{syncer:?}");
    assert!(
        shown.contains(&format!("max_revisions: {MAX_PUSH_ENVELOPES},")),
        "{shown}"
    );
}

#[test]
fn a_withdrawal_purges_the_participant_and_their_blobs_and_is_recorded_once() {
    let device = Device::new();
    let withdrawn = device.participant("C01", None);
    let staying = device.participant("C02", None);
    device.note(Some(withdrawn), "about C01");
    let (blob, _) = device.attachment(Some(withdrawn), 250);
    let kept = device.note(Some(staying), "about C02");
    let server = FakeServer::default();
    server
        .messages
        .borrow_mut()
        .push(device.withdrawal(7, 1, withdrawn, "C01"));

    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(report.purged, vec!["C01".to_string()]);
    assert_eq!(report.position, at(7, 1));
    assert!(report.instruction_problems.is_empty());
    let store = &device.store;
    assert!(
        block_on(store.list_latest_by_participant(withdrawn))
            .unwrap()
            .is_empty()
    );
    assert_eq!(block_on(store.chunk_count(blob)).unwrap(), 0);
    assert_eq!(
        block_on(store.list_latest_by_participant(staying))
            .unwrap()
            .len(),
        2
    );
    // Nothing of C01 reached the server; C02 and the purge record did.
    assert!(server.uploads.borrow().is_empty());
    assert!(server.envelopes.borrow().contains_key(&(kept.record_id, 1)));
    assert!(
        server
            .envelopes
            .borrow()
            .values()
            .all(|e| e.participant_code.as_deref() != Some("C01"))
    );
    let purges = server.of_kind(Kind::Purge);
    assert_eq!(purges.len(), 1);
    let purge: PurgeBody = purges[0]
        .open(device.study.private_key())
        .unwrap()
        .body_json()
        .unwrap();
    assert_eq!(
        (
            purge.participant_code.as_str(),
            purge.participant_id,
            purge.message_id,
            purge.records,
            purge.blobs
        ),
        ("C01", Some(withdrawn), 7, 3, 1)
    );

    // The position was lost: the withdrawal comes again, finds nothing left, and is not
    // recorded twice.
    let again = device.run(&server, START, BatchLimits::default()).unwrap();
    assert!(again.purged.is_empty());
    assert_eq!(again.position, at(7, 1));
    assert_eq!(again.pushed, 0);
    assert_eq!(server.of_kind(Kind::Purge).len(), 1);
    assert_eq!(device.unsynced(), 0);
}

#[test]
fn a_protocol_update_is_handed_to_the_caller_in_order_not_applied() {
    let device = Device::new();
    let note = device.note(None, "made under version 1");
    let server = FakeServer::default();
    let messages = [
        (
            4,
            ControlKind::Withdrawal {
                participant_id: ParticipantId::new(Timestamp(T0)),
                participant_code: "C09".into(),
            },
        ),
        (
            5,
            ControlKind::ProtocolUpdate {
                protocol: "{\"id\": \"vig-evaluation\", \"version\": 2}".into(),
            },
        ),
        (
            6,
            ControlKind::ProtocolUpdate {
                protocol: "not even JSON".into(),
            },
        ),
    ];
    for (seq, (id, kind)) in (1..).zip(messages) {
        server
            .messages
            .borrow_mut()
            .push(device.signed(id, seq, kind));
    }

    let report = device
        .run(&server, at(4, 1), BatchLimits::default())
        .unwrap();
    // Handed over as received (the caller checks them), after the cursor, in order.
    let updates: Vec<(i64, &str)> = report
        .protocol_updates
        .iter()
        .map(|u| (u.message_id, u.protocol.as_str()))
        .collect();
    assert_eq!(
        updates,
        vec![
            (5, "{\"id\": \"vig-evaluation\", \"version\": 2}"),
            (6, "not even JSON")
        ]
    );
    assert_eq!(report.position, at(6, 3));
    assert!(report.purged.is_empty());
    // Sync goes on as usual: the record made under version 1 is sent unchanged.
    assert_eq!(report.pushed, 1);
    assert_server_holds(&server, &device, &[note]);

    // Pulled again from the same cursor (it was not saved), the updates come again.
    let again = device
        .run(&server, at(4, 1), BatchLimits::default())
        .unwrap();
    assert_eq!(again.protocol_updates.len(), 2);
    let after = device
        .run(&server, at(6, 3), BatchLimits::default())
        .unwrap();
    assert!(after.protocol_updates.is_empty());
}

impl Device {
    /// What the server hands this device once revoked: the reason and the statement signed
    /// by `key`.
    fn revocation(&self, key: &StudySigningKey, id: i64, reason: &str) -> Revocation {
        Revocation {
            reason: reason.into(),
            statement: Some(signed_by(
                key,
                id,
                9,
                ControlKind::Revocation {
                    device_id: self.id,
                    reason: reason.into(),
                },
            )),
        }
    }
}

#[test]
fn a_revoked_device_stops_and_says_why() {
    let device = Device::new();
    device.note(None, "kept on the tablet");
    let server = FakeServer::default();
    *server.revoked.borrow_mut() = Some(device.revocation(&device.signing, 12, "tablet stolen"));
    let report = device
        .run(&server, at(3, 2), BatchLimits::default())
        .unwrap();
    assert_eq!(report.revoked.as_deref(), Some("tablet stolen"));
    assert_eq!(report.position, at(3, 2));
    assert!(server.envelopes.borrow().is_empty());
    assert_eq!(device.unsynced(), 1);
}

#[test]
fn a_revocation_the_study_team_did_not_sign_is_not_believed_and_reported() {
    let device = Device::new();
    device.note(None, "kept on the tablet");
    let forger = StudySigningKey::generate().unwrap();
    let other_device = Device {
        id: DeviceId::from_bytes([0xd1; 16]),
        ..Device::new()
    };
    let unsigned = Revocation {
        reason: "return the tablet".into(),
        statement: None,
    };
    let forged = device.revocation(&forger, 12, "return the tablet");
    // Genuinely signed, but for another device.
    let elsewhere = Revocation {
        statement: other_device
            .revocation(&device.signing, 12, "return the tablet")
            .statement
            .map(|mut statement| {
                statement.signature = device
                    .signing
                    .sign_control(statement.seq, &statement.kind, statement.created_at)
                    .unwrap();
                statement
            }),
        ..unsigned.clone()
    };
    for revocation in [unsigned, forged, elsewhere] {
        let server = FakeServer::default();
        *server.revoked.borrow_mut() = Some(revocation);
        let report = device.run(&server, START, BatchLimits::default()).unwrap();
        assert_eq!(report.revoked, None, "not revoked by a server's word alone");
        assert_eq!(
            report.instruction_problems,
            vec![InstructionProblem::UnsignedRevocation {
                reason: "return the tablet".into()
            }]
        );
        assert!(server.envelopes.borrow().is_empty());
        assert_eq!(device.unsynced(), 1);
    }
}

/// A server that refuses pushes as revoked after the first pull.
struct RevokedAtPush {
    server: FakeServer,
    /// What pull says once the push was refused.
    revocation: Option<Revocation>,
    refused: Cell<bool>,
}

impl Transport for RevokedAtPush {
    async fn push(&self, _: &PushRequest) -> Result<PushResponse, TransportError> {
        self.refused.set(true);
        Err(TransportError::Revoked {
            reason: "left the study".into(),
        })
    }
    async fn pull(&self, after: i64) -> Result<PullResponse, TransportError> {
        let mut pulled = self.server.pull(after).await?;
        if self.refused.get() {
            pulled.revoked = self.revocation.clone();
        }
        Ok(pulled)
    }
    async fn upload_create(&self, u: &UploadCreate) -> Result<UploadState, TransportError> {
        self.server.upload_create(u).await
    }
    async fn upload_append(&self, s: &str, o: u64, p: &[u8]) -> Result<u64, TransportError> {
        self.server.upload_append(s, o, p).await
    }
}

#[test]
fn a_revocation_refused_at_push_also_stops_and_says_why() {
    let device = Device::new();
    device.note(None, "kept on the tablet");
    let server = RevokedAtPush {
        server: FakeServer::default(),
        revocation: Some(device.revocation(&device.signing, 3, "left the study")),
        refused: Cell::new(false),
    };
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(report.revoked.as_deref(), Some("left the study"));
    assert_eq!(device.unsynced(), 1);

    // Refused at push, but with no signed statement on pull: reported, not believed.
    let server = RevokedAtPush {
        server: FakeServer::default(),
        revocation: None,
        refused: Cell::new(false),
    };
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(report.revoked, None);
    assert_eq!(
        report.instruction_problems,
        vec![InstructionProblem::UnsignedRevocation {
            reason: "left the study".into()
        }]
    );
    assert_eq!(device.unsynced(), 1);
}

#[test]
fn a_signed_revocation_of_this_device_among_the_instructions_stops_sync() {
    let device = Device::new();
    device.note(None, "kept on the tablet");
    let other = Device {
        id: DeviceId::from_bytes([0xd1; 16]),
        ..Device::new()
    };
    let server = FakeServer::default();
    server.messages.borrow_mut().extend([
        // Another device's revocation is read past.
        device.signed(
            1,
            1,
            ControlKind::Revocation {
                device_id: DeviceId::from_bytes([0xee; 16]),
                reason: "another tablet".into(),
            },
        ),
        device.signed(
            2,
            2,
            ControlKind::Revocation {
                device_id: device.id,
                reason: "tablet lost".into(),
            },
        ),
    ]);
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(report.revoked.as_deref(), Some("tablet lost"));
    assert_eq!(report.position, at(2, 2));
    assert!(server.envelopes.borrow().is_empty());
    // The other device reads both and syncs on.
    other.note(None, "still working");
    let clock = || other.now();
    let identity = SyncIdentity {
        study_signing_key: &device.signing_public,
        ..other.identity()
    };
    let syncer = Syncer::new(&other.store, &server, identity, &clock);
    let report = block_on(syncer.run(START, |_| {})).unwrap();
    assert_eq!(report.revoked, None);
    assert_eq!(report.position, at(2, 2));
    assert_eq!(report.pushed, 1);
}

#[test]
fn instructions_not_signed_by_the_study_signing_key_are_refused_and_reading_stops() {
    let forger = StudySigningKey::generate().unwrap();
    let kinds = |device: &Device, target: ParticipantId| {
        [
            ControlKind::Withdrawal {
                participant_id: target,
                participant_code: "C01".into(),
            },
            ControlKind::ProtocolUpdate {
                protocol: "{\"id\": \"vig-evaluation\", \"version\": 9}".into(),
            },
            ControlKind::Revocation {
                device_id: device.id,
                reason: "forged".into(),
            },
        ]
    };
    for forged_kind in 0..3 {
        let device = Device::new();
        let target = device.participant("C01", None);
        let kept = device.participant("C02", None);
        let kind = kinds(&device, target)[forged_kind].clone();
        let server = FakeServer::default();
        server.messages.borrow_mut().extend([
            device.signed(
                1,
                1,
                ControlKind::ProtocolUpdate {
                    protocol: "genuine".into(),
                },
            ),
            // Signed by another key; then one whose signature is garbage; then a genuine one.
            signed_by(&forger, 2, 2, kind.clone()),
            device.withdrawal(3, 3, kept, "C02"),
        ]);
        let report = device.run(&server, START, BatchLimits::default()).unwrap();
        assert_eq!(
            report.instruction_problems,
            vec![InstructionProblem::NotSigned {
                message_id: 2,
                seq: 2
            }],
            "{kind:?}"
        );
        assert_eq!(report.position, at(1, 1), "not past the refused one");
        assert_eq!(report.protocol_updates.len(), 1, "only the genuine update");
        assert_eq!(report.revoked, None);
        assert!(report.purged.is_empty());
        let records_of = |p| {
            block_on(device.store.list_latest_by_participant(p))
                .unwrap()
                .len()
        };
        assert_eq!(records_of(target), 1, "{kind:?}: nothing purged");
        assert_eq!(records_of(kept), 1, "nothing after it applied");
        // Sync goes on: the participants reach the server.
        assert_eq!(report.pushed, 2);

        // A signature that is not even a signature is refused the same way.
        let mut garbage = device.signed(2, 2, kind);
        garbage.signature = "AAAA".into();
        server.messages.borrow_mut()[1] = garbage;
        let again = device
            .run(&server, report.position, BatchLimits::default())
            .unwrap();
        assert_eq!(
            again.instruction_problems,
            vec![InstructionProblem::NotSigned {
                message_id: 2,
                seq: 2
            }]
        );
        assert_eq!(again.position, at(1, 1));
    }
}

#[test]
fn a_replayed_instruction_is_ignored_and_reported() {
    let device = Device::new();
    let first = device.participant("C01", None);
    let second = device.participant("C02", None);
    let server = FakeServer::default();
    let withdrawal = device.withdrawal(1, 1, first, "C01");
    server.messages.borrow_mut().push(withdrawal.clone());
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(report.purged, vec!["C01".to_string()]);
    assert_eq!(report.position, at(1, 1));

    // The server sends instruction 1 again under a new id, then instruction 2.
    let mut replayed = withdrawal;
    replayed.id = 5;
    server
        .messages
        .borrow_mut()
        .extend([replayed, device.withdrawal(6, 2, second, "C02")]);
    let report = device
        .run(&server, report.position, BatchLimits::default())
        .unwrap();
    assert_eq!(
        report.instruction_problems,
        vec![InstructionProblem::Replayed {
            message_id: 5,
            seq: 1
        }]
    );
    assert_eq!(report.purged, vec!["C02".to_string()]);
    assert_eq!(report.position, at(6, 2));
    assert_eq!(
        server.of_kind(Kind::Purge).len(),
        2,
        "the replay is not recorded as a purge"
    );
}

#[test]
fn a_missing_instruction_stops_reading_until_it_arrives() {
    let device = Device::new();
    let first = device.participant("C01", None);
    let third = device.participant("C03", None);
    let server = FakeServer::default();
    server.messages.borrow_mut().extend([
        device.withdrawal(1, 1, first, "C01"),
        // Instruction 2 is withheld; 3 comes.
        device.withdrawal(3, 3, third, "C03"),
    ]);
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(report.purged, vec!["C01".to_string()]);
    assert_eq!(
        report.instruction_problems,
        vec![InstructionProblem::Missing {
            message_id: 3,
            expected: 2,
            found: 3
        }]
    );
    assert_eq!(report.position, at(1, 1), "not past the gap");
    assert!(
        report.instruction_problems[0]
            .to_string()
            .contains("a study instruction is missing")
    );
    assert_eq!(
        block_on(device.store.list_latest_by_participant(third))
            .unwrap()
            .len(),
        1
    );
    // The server's cursor is not trusted past what was read.
    let report = device
        .run(&server, report.position, BatchLimits::default())
        .unwrap();
    assert_eq!(report.position, at(1, 1));

    // Instruction 2 arrives (a protocol update): 2 and 3 are applied in order.
    server.messages.borrow_mut().push(device.signed(
        2,
        2,
        ControlKind::ProtocolUpdate {
            protocol: "{}".into(),
        },
    ));
    let report = device
        .run(&server, report.position, BatchLimits::default())
        .unwrap();
    assert!(report.instruction_problems.is_empty());
    assert_eq!(report.protocol_updates.len(), 1);
    assert_eq!(report.purged, vec!["C03".to_string()]);
    assert_eq!(report.position, at(3, 3));
}

#[test]
fn a_withdrawal_purges_by_id_never_another_participant_with_the_same_code() {
    // Two tablets each made a C01; the study withdraws the other tablet's C01.
    let device = Device::new();
    let mine = device.participant("C01", None);
    device.note(Some(mine), "about my C01");
    let elsewhere = ParticipantId::new(Timestamp(T0 + 99));
    let server = FakeServer::default();
    server
        .messages
        .borrow_mut()
        .push(device.withdrawal(1, 1, elsewhere, "C01"));
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert!(report.purged.is_empty(), "nothing of it was on this tablet");
    assert_eq!(
        block_on(device.store.list_latest_by_participant(mine))
            .unwrap()
            .len(),
        2,
        "this tablet's C01 is kept"
    );
    // The tablet records that it applied the withdrawal, with nothing to delete.
    let purge: PurgeBody = server.of_kind(Kind::Purge)[0]
        .open(device.study.private_key())
        .unwrap()
        .body_json()
        .unwrap();
    assert_eq!(
        (purge.participant_id, purge.records, purge.blobs),
        (Some(elsewhere), 0, 0)
    );
}

#[test]
fn a_participant_name_never_leaves_the_device() {
    let device = Device::new();
    let named = device.participant("C01", Some("Dana Smith"));
    let note = device.note(Some(named), "about C01");
    let unknown = device.note(Some(ParticipantId::new(Timestamp(T0))), "about nobody here");
    let server = FakeServer::default();
    let report = device.run(&server, START, BatchLimits::default()).unwrap();

    let reasons: Vec<&HoldReason> = report.held.iter().map(|h| &h.reason).collect();
    assert_eq!(
        reasons,
        vec![
            &HoldReason::ParticipantName,
            &HoldReason::UnknownParticipant
        ]
    );
    assert_eq!(report.held[1].record_id, unknown.record_id);
    // The note is sent under the participant's code; the participant record is not.
    let envelopes = server.envelopes.borrow();
    assert_eq!(envelopes.len(), 1);
    assert_eq!(
        envelopes[&(note.record_id, 1)].participant_code.as_deref(),
        Some("C01")
    );
    assert_eq!(device.unsynced(), 2);
}

#[test]
fn an_attachment_still_being_recorded_is_held_until_its_chunks_are_all_there() {
    let device = Device::new();
    let (blob, _) = device.attachment(None, 300);
    block_on(device.store.delete_blob(blob)).unwrap();
    let server = FakeServer::default();
    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(
        report.held[0].reason,
        HoldReason::BlobIncomplete {
            expected: 3,
            found: 0
        }
    );
    assert!(server.envelopes.borrow().is_empty());
    assert!(server.uploads.borrow().is_empty());
}

/// A participant body as JSON; with a name as builds before device-only names wrote it (the
/// app no longer can: `ParticipantBody` does not serialise a name).
fn participant_json(body: &ParticipantBody, name: Option<&str>) -> Vec<u8> {
    let mut value = serde_json::to_value(body).unwrap();
    if let Some(name) = name {
        value["name"] = serde_json::Value::String(name.into());
    }
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn a_message_of_an_unknown_kind_stops_reading_there_and_nothing_after_it_is_skipped() {
    let device = Device::new();
    let withdrawn = device.participant("C01", None);
    let kept = device.participant("C02", None);
    let note = device.note(Some(kept), "about C02");
    let server = FakeServer::default();
    // A newer server: its message 2 is of a kind this version does not know. The wire form
    // (another "kind", other fields) reads as `Unknown`.
    let future: ControlMessage = serde_json::from_str(
        r#"{"id": 2, "seq": 2, "kind": "study_closed", "closing_note": "thanks", "created_at": 0,
            "signature": ""}"#,
    )
    .unwrap();
    assert_eq!(future.kind, ControlKind::Unknown);
    server.messages.borrow_mut().extend([
        device.withdrawal(1, 1, withdrawn, "C01"),
        future,
        device.withdrawal(3, 3, kept, "C02"),
    ]);

    let report = device.run(&server, START, BatchLimits::default()).unwrap();
    assert_eq!(report.purged, vec!["C01".to_string()]);
    assert_eq!(report.unknown_message, Some(2));
    assert_eq!(
        report.position,
        at(1, 1),
        "not past the message it could not read"
    );
    // C02's withdrawal (after it) is not applied yet; pushing goes on as usual.
    let records_of = |p| {
        block_on(device.store.list_latest_by_participant(p))
            .unwrap()
            .len()
    };
    assert_eq!(records_of(withdrawn), 0);
    assert_eq!(records_of(kept), 2);
    assert!(server.envelopes.borrow().contains_key(&(note.record_id, 1)));
}

/// A server's enrolment endpoints in memory: hands out `study` and counts enrolments.
struct FakeEnrolment {
    study: attune_core::sync::StudyKeys,
    /// What the enrolment answer carries (the challenge's keys unless changed).
    answer_study: attune_core::sync::StudyKeys,
    enrolled: RefCell<Vec<attune_core::sync::EnrolRequest>>,
}

impl attune_core::sync::enrol::EnrolTransport for FakeEnrolment {
    async fn enrol_challenge(&self) -> Result<attune_core::sync::EnrolChallenge, TransportError> {
        Ok(attune_core::sync::EnrolChallenge {
            challenge: "challenge-1".into(),
            expires_at: Timestamp(T0 + 60_000),
            study: self.study.clone(),
        })
    }

    async fn enrol(
        &self,
        request: &attune_core::sync::EnrolRequest,
    ) -> Result<attune_core::sync::EnrolResponse, TransportError> {
        self.enrolled.borrow_mut().push(request.clone());
        Ok(attune_core::sync::EnrolResponse {
            device_id: request.device_id.expect("an id"),
            device_token: "token".into(),
            study_public_key: self.answer_study.public_key.clone(),
            study: self.answer_study.clone(),
        })
    }
}

fn enrol_with(
    device: &Device,
    server: &FakeEnrolment,
) -> Result<attune_core::sync::enrol::Enrolled, attune_core::sync::enrol::EnrolError> {
    let fingerprint = device.signing_public.fingerprint();
    block_on(attune_core::sync::enrol::enrol(
        server,
        attune_core::sync::enrol::EnrolDetails {
            code: "abcd-efgh-jkmn",
            fingerprint: &fingerprint,
            device_key: &device.key,
            device_id: Some(device.id),
            device_name: "Tablet",
        },
    ))
}

#[test]
fn enrolment_pins_the_signing_key_and_refuses_a_study_key_it_did_not_sign() {
    use attune_core::sync::StudyKeys;
    use attune_core::sync::enrol::EnrolError;
    let device = Device::new();
    let genuine = StudyKeys {
        public_key: device.study_public.to_text(),
        signing_key: device.signing_public.to_text(),
        public_key_signature: device.signing.sign_study_key(&device.study_public),
    };
    let server = FakeEnrolment {
        study: genuine.clone(),
        answer_study: genuine.clone(),
        enrolled: RefCell::new(Vec::new()),
    };
    let enrolled = enrol_with(&device, &server).unwrap();
    assert_eq!(enrolled.study.public_key, device.study_public);
    assert_eq!(enrolled.study.signing_key, device.signing_public);
    // The request proves possession of the key it registers.
    let request = &server.enrolled.borrow()[0];
    device
        .key
        .public_key()
        .verify_enrolment(
            "challenge-1",
            "ABCDEFGHJKMN",
            Some(device.id),
            &request.proof,
        )
        .unwrap();

    // A server that swapped in its own study key (signed by nobody, or by its own signing
    // key, which does not have the fingerprint): refused before the code is spent.
    let own = StudySigningKey::generate().unwrap();
    let swapped_key = StudyKeyPair::generate().public_key();
    for study in [
        StudyKeys {
            public_key: swapped_key.to_text(),
            ..genuine.clone()
        },
        StudyKeys {
            public_key: swapped_key.to_text(),
            signing_key: own.public_key().to_text(),
            public_key_signature: own.sign_study_key(&swapped_key),
        },
    ] {
        let server = FakeEnrolment {
            study: study.clone(),
            answer_study: study,
            enrolled: RefCell::new(Vec::new()),
        };
        assert!(matches!(
            enrol_with(&device, &server),
            Err(EnrolError::Study(_))
        ));
        assert!(server.enrolled.borrow().is_empty(), "the code is not spent");
    }
    // Keys that change between the challenge and the answer: refused.
    let server = FakeEnrolment {
        study: genuine.clone(),
        answer_study: StudyKeys {
            public_key: swapped_key.to_text(),
            ..genuine
        },
        enrolled: RefCell::new(Vec::new()),
    };
    assert_eq!(
        enrol_with(&device, &server).unwrap_err(),
        EnrolError::StudyChanged
    );
}
