//! Participant codes in the sync engine ([`Syncer::run_with_codes`]): the pool is topped up
//! from a server that reserves numbers like attune-server does (blocks per device, a lost
//! block delivered again), participants made with provisional labels are held back, then
//! confirmed with reserved codes and sent under them. The real server is tested in
//! attune-server's `tests/codes_http.rs`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};

use attune_core::codes::{MemoryCodeKeeper, POOL_TARGET};
use attune_core::fieldwork::{ParticipantBody, ParticipantStatus};
use attune_core::sync::ErrorCode;
use attune_core::sync::{
    CodeBlock, CodeSync, ConflictReason, HoldReason, PullPosition, PullResponse, PushOutcome,
    PushRequest, PushResponse, PushResult, ReserveRequest, ReserveResponse, SyncFailure,
    SyncIdentity, SyncReport, Syncer, Transport, TransportError, UploadCreate, UploadState,
};
use attune_core::{
    Authorship, DeviceId, DeviceKey, Envelope, KdfParams, Kind, Links, MemoryStore, ParticipantId,
    ProfileId, RecordId, RecordStore, Revision, StudyKeyPair, StudyPublicKey, StudySigningKey,
    StudyVerifyingKey, Timestamp, Vault,
};
use futures_executor::block_on;

/// A study server in memory: envelopes, and code numbers reserved in blocks per device.
#[derive(Default)]
struct Server {
    envelopes: RefCell<BTreeMap<(RecordId, u32), Envelope>>,
    /// Next number per prefix.
    next: RefCell<BTreeMap<String, u32>>,
    /// (device, block), in the order reserved.
    blocks: RefCell<Vec<(usize, CodeBlock)>>,
    reserve_requests: Cell<usize>,
    /// Lose the answer of this reserve request (0 = the first), after the server acted.
    lose_reserve_answer: Cell<Option<usize>>,
    /// Answer reserve requests like a server from before code reservations (404).
    no_codes: Cell<bool>,
}

/// One device's connection to the server.
struct Link<'a> {
    server: &'a Server,
    device: usize,
}

impl Transport for Link<'_> {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        let mut envelopes = self.server.envelopes.borrow_mut();
        let results = request
            .envelopes
            .iter()
            .map(|envelope| {
                let key = (envelope.record_id, envelope.rev);
                let outcome = match envelopes.get(&key) {
                    Some(stored) if stored.hash == envelope.hash => PushOutcome::AlreadyStored,
                    Some(_) => PushOutcome::Conflict,
                    None => {
                        envelopes.insert(key, envelope.clone());
                        PushOutcome::Stored
                    }
                };
                PushResult {
                    record_id: envelope.record_id,
                    rev: envelope.rev,
                    hash: envelope.hash,
                    reason: (outcome == PushOutcome::Conflict).then_some(ConflictReason::RevTaken),
                    outcome,
                }
            })
            .collect();
        Ok(PushResponse { results })
    }

    async fn pull(&self, after: i64) -> Result<PullResponse, TransportError> {
        Ok(PullResponse {
            messages: Vec::new(),
            cursor: after,
            revoked: None,
        })
    }

    async fn upload_create(&self, _: &UploadCreate) -> Result<UploadState, TransportError> {
        unreachable!("no attachments here")
    }

    async fn upload_append(&self, _: &str, _: u64, _: &[u8]) -> Result<u64, TransportError> {
        unreachable!("no attachments here")
    }

    async fn reserve_codes(
        &self,
        request: &ReserveRequest,
    ) -> Result<ReserveResponse, TransportError> {
        let server = self.server;
        let n = server.reserve_requests.get();
        server.reserve_requests.set(n + 1);
        if server.no_codes.get() {
            return Err(TransportError::Status {
                status: 404,
                code: ErrorCode::NotFound,
                message: "No API endpoint at /api/codes/reserve".into(),
            });
        }
        let mut answer = Vec::new();
        for want in &request.prefixes {
            let again: Vec<CodeBlock> = server
                .blocks
                .borrow()
                .iter()
                .filter(|(d, b)| *d == self.device && b.prefix == want.prefix && b.id > want.after)
                .map(|(_, b)| b.clone())
                .collect();
            let held: u32 = again.iter().map(|b| b.count).sum();
            answer.extend(again);
            let count = want.want.saturating_sub(held).min(20);
            if count > 0 {
                let mut next = server.next.borrow_mut();
                let first = *next.entry(want.prefix.clone()).or_insert(1);
                next.insert(want.prefix.clone(), first + count);
                let block = CodeBlock {
                    id: server.blocks.borrow().len() as i64 + 1,
                    prefix: want.prefix.clone(),
                    first,
                    count,
                };
                server
                    .blocks
                    .borrow_mut()
                    .push((self.device, block.clone()));
                answer.push(block);
            }
        }
        if server.lose_reserve_answer.get() == Some(n) {
            return Err(TransportError::Network("answer lost".into()));
        }
        Ok(ReserveResponse { blocks: answer })
    }
}

impl Server {
    /// The participant codes in the envelopes the server holds, per record and rev.
    fn codes(&self) -> BTreeMap<(RecordId, u32), Option<String>> {
        self.envelopes
            .borrow()
            .iter()
            .map(|(key, e)| (*key, e.participant_code.clone()))
            .collect()
    }

    fn numbers_reserved(&self) -> u32 {
        self.blocks.borrow().iter().map(|(_, b)| b.count).sum()
    }
}

struct Device {
    index: usize,
    store: MemoryStore,
    vault: Vault,
    key: DeviceKey,
    study: StudyPublicKey,
    /// The public half of the study signing key (nothing is signed here: no instructions).
    signing: StudyVerifyingKey,
    id: DeviceId,
    author: ProfileId,
    clock: Cell<i64>,
    codes: MemoryCodeKeeper,
}

impl Device {
    fn new(index: usize, study: &StudyKeyPair) -> Self {
        let params = KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        };
        let (vault, _) = Vault::create("a long enough passphrase", params).expect("vault");
        Self {
            index,
            store: MemoryStore::new(),
            vault,
            key: DeviceKey::generate().expect("device key"),
            study: study.public_key(),
            signing: StudySigningKey::generate()
                .expect("signing key")
                .public_key(),
            id: DeviceId::from_bytes([0xd0 + index as u8; 16]),
            author: ProfileId::from_bytes([0xa0 + index as u8; 16]),
            clock: Cell::new(1_750_000_000_000 + index as i64 * 1_000_000),
            codes: MemoryCodeKeeper::default(),
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.set(self.clock.get() + 1);
        Timestamp(self.clock.get())
    }

    fn save(&self, id: RecordId, kind: Kind, links: Links, body: Vec<u8>) -> Revision {
        let by = Authorship {
            device: self.id,
            author: self.author,
            time: self.now(),
        };
        let revision = Revision::first(id, kind, links, body, by);
        block_on(
            self.store
                .put_revision(self.vault.seal_revision(&revision).unwrap()),
        )
        .expect("saved");
        revision
    }

    /// Every code and label on the device.
    fn used(&self) -> HashSet<String> {
        self.participants().into_values().map(|b| b.code).collect()
    }

    /// A new participant of `prefix`'s group with the code the app would give: the next
    /// reserved one, or a provisional label.
    fn new_participant(&self, prefix: char) -> (ParticipantId, String) {
        let used = self.used();
        let code = block_on(attune_core::codes::CodeKeeper::update(
            &self.codes,
            |pool| pool.new_code(prefix, &used),
        ))
        .unwrap();
        let id = ParticipantId::new(self.now());
        let body = ParticipantBody {
            code: code.clone(),
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
            serde_json::to_vec(&body).unwrap(),
        );
        (id, code)
    }

    /// A consent record of `participant`.
    fn consent(&self, participant: ParticipantId) -> Revision {
        self.save(
            RecordId::new(self.now()),
            Kind::Consent,
            Links {
                participant: Some(participant),
                ..Links::default()
            },
            br#"{"form_id":"consent-carers","answers":{}}"#.to_vec(),
        )
    }

    fn participants(&self) -> BTreeMap<ParticipantId, ParticipantBody> {
        block_on(self.store.list_latest_by_kind(Kind::Participant))
            .unwrap()
            .iter()
            .map(|stored| {
                let revision = self.vault.open_revision(stored).unwrap();
                (revision.participant.unwrap(), revision.body_json().unwrap())
            })
            .collect()
    }

    fn code_of(&self, participant: ParticipantId) -> String {
        self.participants()[&participant].code.clone()
    }

    fn syncer<'a>(
        &'a self,
        link: &'a Link<'a>,
        clock: &'a dyn Fn() -> Timestamp,
    ) -> Syncer<'a, MemoryStore, Link<'a>> {
        let identity = SyncIdentity {
            vault: &self.vault,
            device_key: &self.key,
            study_key: &self.study,
            study_signing_key: &self.signing,
            device: self.id,
            author: self.author,
        };
        Syncer::new(&self.store, link, identity, clock)
    }

    /// A run with codes for the groups C, K and M.
    fn sync(&self, server: &Server) -> Result<SyncReport, SyncFailure> {
        let link = Link {
            server,
            device: self.index,
        };
        let clock = || self.now();
        let codes = CodeSync {
            keeper: &self.codes,
            prefixes: vec!['C', 'K', 'M'],
            target: POOL_TARGET,
        };
        block_on(
            self.syncer(&link, &clock)
                .run_with_codes(PullPosition::default(), &codes, |_| {}),
        )
    }

    /// A run without codes (as before code reservations).
    fn sync_without_codes(&self, server: &Server) -> SyncReport {
        let link = Link {
            server,
            device: self.index,
        };
        let clock = || self.now();
        block_on(
            self.syncer(&link, &clock)
                .run(PullPosition::default(), |_| {}),
        )
        .expect("synced")
    }

    fn unsynced(&self) -> usize {
        block_on(self.store.count_unsynced()).unwrap()
    }

    fn unused(&self, prefix: char) -> usize {
        self.codes.pool().unused(prefix, &self.used())
    }
}

#[test]
fn a_participant_made_without_codes_is_held_then_confirmed_and_sent_under_the_code() {
    let study = StudyKeyPair::generate();
    let device = Device::new(0, &study);
    let server = Server::default();
    // Never synced: the pool is empty, so the carer gets a provisional label.
    let (carer, label) = device.new_participant('C');
    assert_eq!(label, "C-new-1");
    device.consent(carer);
    let note = device.save(
        RecordId::new(device.now()),
        Kind::FieldNote,
        Links::default(),
        b"not about anyone".to_vec(),
    );

    // A run that does not reserve codes sends the note and holds the carer and their consent.
    let report = device.sync_without_codes(&server);
    assert_eq!(report.pushed, 1);
    let held: Vec<&HoldReason> = report.held.iter().map(|h| &h.reason).collect();
    assert_eq!(
        held,
        [&HoldReason::ProvisionalCode, &HoldReason::ProvisionalCode]
    );
    assert!(server.envelopes.borrow().contains_key(&(note.record_id, 1)));
    assert_eq!(device.unsynced(), 2);

    // A run with codes reserves, confirms the carer as C01 and sends everything under it.
    let report = device.sync(&server).expect("synced");
    assert_eq!(report.confirmed.len(), 1);
    assert_eq!(report.confirmed[0].participant, carer);
    assert_eq!(report.confirmed[0].provisional, "C-new-1");
    assert_eq!(report.confirmed[0].code, "C01");
    assert!(report.held.is_empty(), "{:?}", report.held);
    assert_eq!(device.code_of(carer), "C01");
    assert_eq!(device.unsynced(), 0);
    // Revision 1 (made as C-new-1), revision 2 (the code) and the consent: all under C01.
    let codes = server.codes();
    let carer_record = RecordId::from_uuid(*carer.as_uuid());
    assert_eq!(codes[&(carer_record, 1)].as_deref(), Some("C01"));
    assert_eq!(codes[&(carer_record, 2)].as_deref(), Some("C01"));
    assert!(
        codes.values().all(|c| c.as_deref() != Some("C-new-1")),
        "{codes:?}"
    );
    assert_eq!(
        codes
            .values()
            .filter(|c| c.as_deref() == Some("C01"))
            .count(),
        3
    );
    // The pool holds the target for every group again: 6 carers' numbers were reserved.
    assert_eq!(device.unused('C'), 5);
    assert_eq!(device.unused('K'), 5);
    assert_eq!(device.unused('M'), 5);
    assert_eq!(report.codes_reserved, 16);
    // The next carer takes the next reserved code, and nothing is held.
    let (_, code) = device.new_participant('C');
    assert_eq!(code, "C02");
    let report = device.sync(&server).expect("synced");
    assert!(report.held.is_empty());
    assert!(report.confirmed.is_empty());
    assert_eq!(device.unused('C'), 5, "topped up again");
}

#[test]
fn two_devices_never_get_the_same_code() {
    let study = StudyKeyPair::generate();
    let server = Server::default();
    let first = Device::new(0, &study);
    let second = Device::new(1, &study);
    first.sync(&server).expect("synced");
    second.sync(&server).expect("synced");
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(first.new_participant('C').1);
        codes.push(second.new_participant('C').1);
    }
    // Offline past their pools: provisional labels, then confirmed at the next sync.
    for _ in 0..4 {
        codes.push(first.new_participant('C').1);
        codes.push(second.new_participant('C').1);
    }
    assert!(codes.iter().filter(|c| c.contains("-new-")).count() == 4);
    second.sync(&server).expect("synced");
    first.sync(&server).expect("synced");
    let all: Vec<String> = first
        .participants()
        .into_values()
        .chain(second.participants().into_values())
        .map(|b| b.code)
        .collect();
    assert_eq!(all.len(), 14);
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), 14, "{all:?}");
    assert!(
        all.iter()
            .all(|c| attune_core::protocol::parse_code(c).is_some())
    );
}

#[test]
fn a_lost_answer_to_a_reservation_burns_no_numbers() {
    let study = StudyKeyPair::generate();
    let server = Server::default();
    let device = Device::new(0, &study);
    device.new_participant('C');
    server.lose_reserve_answer.set(Some(0));
    let failure = device
        .sync(&server)
        .expect_err("the lost answer stops the run");
    assert!(failure.error.is_retryable());
    assert_eq!(device.unused('C'), 0, "nothing kept");
    let reserved = server.numbers_reserved();
    assert_eq!(reserved, 16, "6 carers, 5 children, 5 managers");

    // The retry gets the same blocks again, not new ones.
    let report = device.sync(&server).expect("synced");
    assert_eq!(server.numbers_reserved(), reserved);
    assert_eq!(report.confirmed[0].code, "C01");
    assert_eq!(device.unused('C'), 5);
}

#[test]
fn waiting_participants_are_confirmed_oldest_first_beyond_the_target() {
    let study = StudyKeyPair::generate();
    let server = Server::default();
    let device = Device::new(0, &study);
    let carers: Vec<ParticipantId> = (0..7).map(|_| device.new_participant('C').0).collect();
    let report = device.sync(&server).expect("synced");
    let confirmed: Vec<(String, String)> = report
        .confirmed
        .iter()
        .map(|c| (c.provisional.clone(), c.code.clone()))
        .collect();
    let expected: Vec<(String, String)> = (1..=7)
        .map(|n| (format!("C-new-{n}"), format!("C{n:02}")))
        .collect();
    assert_eq!(confirmed, expected);
    for (n, carer) in (1..).zip(&carers) {
        assert_eq!(device.code_of(*carer), format!("C{n:02}"));
    }
    assert_eq!(device.unused('C'), 5);
    assert_eq!(device.unsynced(), 0);
    // The next label after confirmation is not C-new-1 again.
    let mut pool = device.codes.pool();
    assert_eq!(pool.provisional('C', &device.used()), "C-new-8");
}

#[test]
fn a_server_without_code_reservations_leaves_labels_provisional_and_syncs_the_rest() {
    let study = StudyKeyPair::generate();
    let server = Server::default();
    server.no_codes.set(true);
    let device = Device::new(0, &study);
    let (carer, _) = device.new_participant('C');
    device.save(
        RecordId::new(device.now()),
        Kind::FieldNote,
        Links::default(),
        b"a field note".to_vec(),
    );
    let report = device.sync(&server).expect("the rest syncs");
    assert!(report.codes_error.as_deref().unwrap().contains("404"));
    assert_eq!(report.pushed, 1);
    assert_eq!(report.held.len(), 1);
    assert_eq!(report.held[0].reason, HoldReason::ProvisionalCode);
    assert_eq!(device.code_of(carer), "C-new-1");
}

#[test]
fn codes_already_on_the_device_are_never_given_again() {
    let study = StudyKeyPair::generate();
    let server = Server::default();
    let device = Device::new(0, &study);
    // A carer coded on the tablet before reservations existed, as C01; a server that
    // (wrongly) reserves 1 to 5 for this device again.
    device.save(
        RecordId::new(device.now()),
        Kind::Participant,
        Links {
            participant: Some(ParticipantId::new(device.now())),
            ..Links::default()
        },
        br#"{"code":"C01","group":"carers"}"#.to_vec(),
    );
    device.sync(&server).expect("synced");
    assert_eq!(device.unused('C'), 4, "C01 is not counted as unused");
    assert_eq!(device.new_participant('C').1, "C02");
}
