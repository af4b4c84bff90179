//! The sync engine's state machine against an in-memory server that keeps the real
//! protocol's promises (idempotent push, conflicts kept, resumable uploads) and can cut any
//! request before or after it takes effect. The real HTTP proof is attune-server's
//! `tests/sync_faults.rs`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use attune_core::attachment::{open_attachment, sha256_hex};
use attune_core::fieldwork::{AttachmentBody, ParticipantBody, ParticipantStatus, PurgeBody};
use attune_core::sync::{
    BatchLimits, ConflictReason, ControlKind, ControlMessage, HoldReason, PullResponse,
    PushOutcome, PushRequest, PushResponse, PushResult, Revocation, SyncIdentity, SyncProgress,
    SyncReport, Syncer, Transport, TransportError, UploadCreate, UploadState,
};
use attune_core::{
    Authorship, BlobId, BlobStore, DeviceId, DeviceKey, Envelope, KdfParams, Kind, Links,
    MemoryStore, ParticipantId, ProfileId, RecordId, RecordStore, Revision, StudyKeyPair,
    StudyPublicKey, Timestamp, Vault,
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
    revoked: RefCell<Option<String>>,
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
            Some(reason) => Err(TransportError::Revoked { reason }),
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
        let revoked = self
            .revoked
            .borrow()
            .clone()
            .map(|reason| Revocation { reason });
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

/// A device: its store, keys and the study key pair (to open what the server holds).
struct Device {
    store: MemoryStore,
    vault: Vault,
    key: DeviceKey,
    study: StudyKeyPair,
    study_public: StudyPublicKey,
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
        Self {
            store: MemoryStore::new(),
            vault,
            key: DeviceKey::generate().expect("device key"),
            study_public: study.public_key(),
            study,
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
        server: &FakeServer,
        cursor: i64,
        limits: BatchLimits,
    ) -> Result<SyncReport, attune_core::sync::SyncFailure> {
        let clock = || self.now();
        let syncer = Syncer::new(&self.store, server, self.identity(), &clock).with_limits(limits);
        block_on(syncer.run(cursor, |_| {}))
    }

    fn unsynced(&self) -> usize {
        block_on(self.store.count_unsynced()).unwrap()
    }
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
    let report = block_on(syncer.run(0, |progress| seen.push(progress))).expect("synced");

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
        device.run(&server, 0, small_batches()).expect("synced");
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
                .run(&server, 0, small_batches())
                .expect_err("the cut stops the run");
            assert!(failure.error.is_retryable(), "{at} {cut:?}: {failure}");
            let report = device
                .run(&server, failure.report.cursor, small_batches())
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

    let report = device.run(&server, 0, BatchLimits::default()).unwrap();
    assert_eq!((report.pushed, report.conflicts), (0, 1));
    assert_eq!(
        report.conflict_reasons,
        vec![(note.record_id, 1, ConflictReason::RevTaken)]
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
    let report = device.run(&server, 0, BatchLimits::default()).unwrap();
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
    server.messages.borrow_mut().push(ControlMessage {
        id: 7,
        kind: ControlKind::Withdrawal {
            participant_code: "C01".into(),
        },
        created_at: Timestamp(T0),
    });

    let report = device.run(&server, 0, BatchLimits::default()).unwrap();
    assert_eq!(report.purged, vec!["C01".to_string()]);
    assert_eq!(report.cursor, 7);
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
            purge.message_id,
            purge.records,
            purge.blobs
        ),
        ("C01", 7, 3, 1)
    );

    // The cursor was lost: the withdrawal comes again, and is neither purged nor recorded
    // twice.
    let again = device.run(&server, 0, BatchLimits::default()).unwrap();
    assert_eq!(again.purged, vec!["C01".to_string()]);
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
    for (id, kind) in messages {
        server.messages.borrow_mut().push(ControlMessage {
            id,
            kind,
            created_at: Timestamp(T0),
        });
    }

    let report = device.run(&server, 4, BatchLimits::default()).unwrap();
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
    assert_eq!(report.cursor, 6);
    assert!(report.purged.is_empty());
    // Sync goes on as usual: the record made under version 1 is sent unchanged.
    assert_eq!(report.pushed, 1);
    assert_server_holds(&server, &device, &[note]);

    // Pulled again from the same cursor (it was not saved), the updates come again.
    let again = device.run(&server, 4, BatchLimits::default()).unwrap();
    assert_eq!(again.protocol_updates.len(), 2);
    let after = device.run(&server, 6, BatchLimits::default()).unwrap();
    assert!(after.protocol_updates.is_empty());
}

#[test]
fn a_revoked_device_stops_and_says_why() {
    let device = Device::new();
    device.note(None, "kept on the tablet");
    let server = FakeServer::default();
    *server.revoked.borrow_mut() = Some("tablet stolen".into());
    let report = device.run(&server, 3, BatchLimits::default()).unwrap();
    assert_eq!(report.revoked.as_deref(), Some("tablet stolen"));
    assert_eq!(report.cursor, 3);
    assert!(server.envelopes.borrow().is_empty());
    assert_eq!(device.unsynced(), 1);
}

#[test]
fn a_revocation_refused_at_push_also_stops_and_says_why() {
    struct RevokedAtPush(FakeServer);
    impl Transport for RevokedAtPush {
        async fn push(&self, _: &PushRequest) -> Result<PushResponse, TransportError> {
            Err(TransportError::Revoked {
                reason: "left the study".into(),
            })
        }
        async fn pull(&self, after: i64) -> Result<PullResponse, TransportError> {
            self.0.pull(after).await
        }
        async fn upload_create(&self, u: &UploadCreate) -> Result<UploadState, TransportError> {
            self.0.upload_create(u).await
        }
        async fn upload_append(&self, s: &str, o: u64, p: &[u8]) -> Result<u64, TransportError> {
            self.0.upload_append(s, o, p).await
        }
    }
    let device = Device::new();
    device.note(None, "kept on the tablet");
    let server = RevokedAtPush(FakeServer::default());
    let clock = || device.now();
    let syncer = Syncer::new(&device.store, &server, device.identity(), &clock);
    let report = block_on(syncer.run(0, |_| {})).unwrap();
    assert_eq!(report.revoked.as_deref(), Some("left the study"));
    assert_eq!(device.unsynced(), 1);
}

#[test]
fn a_participant_name_never_leaves_the_device() {
    let device = Device::new();
    let named = device.participant("C01", Some("Dana Smith"));
    let note = device.note(Some(named), "about C01");
    let unknown = device.note(Some(ParticipantId::new(Timestamp(T0))), "about nobody here");
    let server = FakeServer::default();
    let report = device.run(&server, 0, BatchLimits::default()).unwrap();

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
    let report = device.run(&server, 0, BatchLimits::default()).unwrap();
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
        r#"{"id": 2, "kind": "study_closed", "closing_note": "thanks", "created_at": 0}"#,
    )
    .unwrap();
    assert_eq!(future.kind, ControlKind::Unknown);
    let withdrawal = |id, code: &str| ControlMessage {
        id,
        kind: ControlKind::Withdrawal {
            participant_code: code.into(),
        },
        created_at: Timestamp(T0),
    };
    server
        .messages
        .borrow_mut()
        .extend([withdrawal(1, "C01"), future, withdrawal(3, "C02")]);

    let report = device.run(&server, 0, BatchLimits::default()).unwrap();
    assert_eq!(report.purged, vec!["C01".to_string()]);
    assert_eq!(report.unknown_message, Some(2));
    assert_eq!(report.cursor, 1, "not past the message it could not read");
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
