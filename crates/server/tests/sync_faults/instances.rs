//! Several instances: two real `attune-server` processes on one PostgreSQL database and one
//! S3 bucket (a real s3s-fs), as behind a load balancer. Devices (the core sync engine over
//! HTTP) enrol with a challenge from one instance and the code spent on the other, then send
//! every request to the other instance than the one before: each upload is started on one
//! and continued and finished on the other, pushes and pulls alternate. Afterwards the
//! server holds every revision once and every recording whole, both instances serve the same
//! instructions, code reservations never overlap, and the enrolment rate limits are counted
//! once for both: attempts over a limit, split across the two, are refused.
//!
//! PostgreSQL comes from `ATTUNE_TEST_POSTGRES_URL` and s3s-fs from PATH or ~/.cargo/bin;
//! without them the test is skipped with a note, except under CI, where it fails.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Child;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use attune_core::sync::enrol::{EnrolDetails, EnrolTransport, enrol};
use attune_core::sync::{
    BatchLimits, ControlKind, EnrolChallenge, EnrolRequest, EnrolResponse, PullPosition,
    PullResponse, PushRequest, PushResponse, ReserveRequest, ReserveResponse, ReserveWant, Syncer,
    Transport, TransportError, UploadCreate, UploadState,
};
use attune_core::{BlobId, ParticipantId, RecordStore, StudyKeyPair, StudySigningKey, Timestamp};
use attune_server::Store;
use attune_server::api::{normalise_code, sha256_hex};
use attune_server::blobs::BlobStore;
use attune_server::store::{AddOutcome, NewControlMessage, PostgresStore};
use serde_json::json;

use super::crash::{Process, free_addr};
use super::support::s3::{BUCKET, S3Server};
use super::support::{EnrolHttp, HttpTransport, init_study, postgres::fresh_database};
use super::{Device, assert_server_holds, now};

const DEVICES: usize = 3;
const NOTES: usize = 150;
const RECORDINGS: usize = 2;
const PREFIX: &str = "study-a";

/// The running instances, stopped when dropped (also when the test fails).
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The two instances, each request to the other one than the last; remembers which
/// instance saw each upload.
struct Alternating {
    instances: [HttpTransport; 2],
    next: Cell<usize>,
    /// Requests each instance answered.
    served: [Cell<usize>; 2],
    /// Per upload (SHA-256): the instances its create and pieces went to, in order.
    uploads: RefCell<BTreeMap<String, Vec<usize>>>,
}

impl Alternating {
    fn new(addrs: [SocketAddr; 2], token: &str, first: usize) -> Self {
        Self {
            instances: addrs.map(|addr| HttpTransport::new(addr, token)),
            next: Cell::new(first),
            served: Default::default(),
            uploads: RefCell::default(),
        }
    }

    fn pick(&self) -> (usize, &HttpTransport) {
        let which = self.next.get() % 2;
        self.next.set(which + 1);
        self.served[which].set(self.served[which].get() + 1);
        (which, &self.instances[which])
    }

    fn upload_on(&self, sha256: &str, which: usize) {
        self.uploads
            .borrow_mut()
            .entry(sha256.to_owned())
            .or_default()
            .push(which);
    }
}

impl Transport for Alternating {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        self.pick().1.push(request).await
    }

    async fn pull(&self, after: i64) -> Result<PullResponse, TransportError> {
        self.pick().1.pull(after).await
    }

    async fn upload_create(&self, upload: &UploadCreate) -> Result<UploadState, TransportError> {
        let (which, instance) = self.pick();
        self.upload_on(&upload.sha256, which);
        instance.upload_create(upload).await
    }

    async fn upload_append(
        &self,
        sha256: &str,
        offset: u64,
        piece: &[u8],
    ) -> Result<u64, TransportError> {
        let (which, instance) = self.pick();
        self.upload_on(sha256, which);
        instance.upload_append(sha256, offset, piece).await
    }

    async fn reserve_codes(
        &self,
        request: &ReserveRequest,
    ) -> Result<ReserveResponse, TransportError> {
        self.pick().1.reserve_codes(request).await
    }
}

/// Enrolment with the challenge from one instance and the code spent on the other.
struct SplitEnrol {
    challenge: EnrolHttp,
    enrol: EnrolHttp,
}

impl EnrolTransport for SplitEnrol {
    async fn enrol_challenge(&self) -> Result<EnrolChallenge, TransportError> {
        self.challenge.enrol_challenge().await
    }

    async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, TransportError> {
        self.enrol.enrol(request).await
    }
}

/// A device syncing until its outbox is empty; with both instances up, every run succeeds.
async fn sync_all(
    device: Rc<Device>,
    transport: Rc<Alternating>,
    keys: (attune_core::StudyPublicKey, attune_core::StudyVerifyingKey),
) -> PullPosition {
    let clock = now;
    let syncer = Syncer::new(
        &device.store,
        transport.as_ref(),
        device.identity(&keys.0, &keys.1),
        &clock,
    )
    .with_limits(BatchLimits {
        max_revisions: 25,
        // Many pieces per recording, so each upload goes to both instances.
        upload_piece: 2048,
        ..BatchLimits::default()
    });
    let mut cursor = PullPosition::default();
    for _ in 0..100 {
        let report = syncer
            .run(cursor, |_| {})
            .await
            .unwrap_or_else(|failure| panic!("a request failed across two instances: {failure}"));
        assert!(report.held.is_empty(), "{:?}", report.held);
        cursor = report.position;
        if device.store.count_unsynced().await.expect("outbox") == 0 {
            return cursor;
        }
    }
    panic!("the device never finished syncing");
}

/// Sends 12 enrolment attempts alternately to the two instances, the `n`th from address
/// `forwarded(n)` (through the trusted proxy 127.0.0.1) with code `code(n)`: the first 10
/// are not rate limited, the last 2 are, whichever instance they reach. If a window began
/// during the attempts (the limits' windows start on whole minutes), they are made again.
async fn limit_is_shared(
    addrs: [SocketAddr; 2],
    what: &str,
    make: impl Fn(usize, usize) -> (String, String),
) {
    let client = reqwest::Client::new();
    for round in 0..3 {
        let minute = now().as_millis() / 60_000;
        let mut statuses = Vec::new();
        for n in 0..12 {
            let (forwarded, code) = make(round, n);
            let reply = client
                .post(format!("http://{}/api/enrol", addrs[n % 2]))
                .header("x-forwarded-for", forwarded)
                .json(&json!({ "code": code, "device_public_key": "x", "device_name": "T" }))
                .send()
                .await
                .expect("answered");
            statuses.push(reply.status().as_u16());
        }
        if now().as_millis() / 60_000 != minute {
            eprintln!("{what}: a rate-limit window began during the attempts; again");
            continue;
        }
        assert!(
            statuses[..10].iter().all(|&status| status != 429),
            "{what}: {statuses:?}"
        );
        assert_eq!(statuses[10..], [429, 429], "{what}: {statuses:?}");
        return;
    }
    panic!("{what}: a window began during every round");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_and_one_bucket_sync_devices_alternately() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let Some(s3) = S3Server::start() else {
        return;
    };
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
    let study = StudyKeyPair::generate();
    let signing = StudySigningKey::generate().expect("signing key");
    init_study(store.as_ref(), &study, &signing).await;

    // Two processes, each with its own (unused) data directory: everything they share is
    // in the database and the bucket.
    let env: Vec<(String, String)> = s3
        .settings()
        .iter()
        .map(|(key, value)| (format!("AWS_{}", key.to_uppercase()), (*value).to_owned()))
        .collect();
    let processes = ["a", "b"].map(|name| Process {
        addr: free_addr(),
        data_dir: dir.path().join(name),
        database: Some(url.clone()),
        args: [
            "--blob-url",
            &format!("s3://{BUCKET}/{PREFIX}"),
            "--trusted-proxy",
            "127.0.0.1",
        ]
        .map(str::to_owned)
        .to_vec(),
        env: env.clone(),
    });
    let mut running = Running(Vec::new());
    for process in &processes {
        running.0.push(process.start().await);
    }
    let addrs = [processes[0].addr, processes[1].addr];

    // Enrolment: the challenge from one instance, the code spent on the other.
    let fingerprint = signing.public_key().fingerprint();
    let keys = (study.public_key(), signing.public_key());
    let mut devices = Vec::new();
    let mut expected = BTreeMap::new();
    let mut recordings: BTreeMap<BlobId, Vec<u8>> = BTreeMap::new();
    for d in 0..DEVICES {
        let device = Device::new();
        let code = format!("CODE-{}", device.id);
        store
            .create_enrolment_code(
                &sha256_hex(&normalise_code(&code)),
                "Ana",
                Timestamp(i64::MAX),
                Timestamp(0),
            )
            .await
            .expect("code");
        let split = SplitEnrol {
            challenge: EnrolHttp::new(addrs[d % 2]),
            enrol: EnrolHttp::new(addrs[(d + 1) % 2]),
        };
        let enrolled = enrol(
            &split,
            EnrolDetails {
                code: &code,
                fingerprint: &fingerprint,
                device_key: &device.key,
                device_id: Some(device.id),
                device_name: "Tablet",
            },
        )
        .await
        .expect("enrolled across the two instances");
        let participant = device.participant(&format!("C{d:02}")).await;
        for n in 0..NOTES {
            device
                .note(participant, format!("device {d}, note {n}: what was said"))
                .await;
        }
        for n in 0..RECORDINGS {
            let (blob, content) = device.attachment(participant, 24 * 1024 + n * 999).await;
            recordings.insert(blob, content);
        }
        // The first request of device d goes to the instance it did not enrol on.
        let transport = Rc::new(Alternating::new(
            addrs,
            &enrolled.response.device_token,
            (d + 1) % 2,
        ));
        devices.push((Rc::new(device), transport));
    }

    // An instruction recorded once (as the CLI does, in the database) is served by both.
    let kind = ControlKind::Withdrawal {
        participant_id: ParticipantId::new(now()),
        participant_code: "C99".into(),
    };
    let seq = store.next_control_seq().await.expect("seq");
    let created_at = Timestamp(1_750_000_000_000);
    let message = NewControlMessage {
        seq,
        signature: signing
            .sign_control(seq, &kind, created_at)
            .expect("signed"),
        kind,
        created_at,
    };
    let AddOutcome::Added(withdrawal) = store.add_withdrawal(&message).await.expect("added") else {
        panic!("the withdrawal was not recorded");
    };

    let local = tokio::task::LocalSet::new();
    let positions = local
        .run_until(async {
            let tasks: Vec<_> = devices
                .iter()
                .map(|(device, transport)| {
                    tokio::task::spawn_local(sync_all(
                        device.clone(),
                        transport.clone(),
                        keys.clone(),
                    ))
                })
                .collect();
            let mut positions = Vec::new();
            for task in tasks {
                positions.push(
                    tokio::time::timeout(Duration::from_secs(120), task)
                        .await
                        .expect("the devices finish")
                        .expect("device task"),
                );
            }
            positions
        })
        .await;

    // What the devices hold now (they also record applying the instruction).
    for (device, _) in &devices {
        expected.extend(device.revisions().await);
    }
    assert_server_holds(
        store.as_ref(),
        &expected,
        &recordings,
        &BlobStore::from(s3.blobs(PREFIX)),
        &study,
    )
    .await;
    let mut uploads = 0;
    for (_, transport) in &devices {
        assert!(transport.served.iter().all(|served| served.get() > 10));
        for (sha256, instances) in transport.uploads.borrow().iter() {
            // Started on one instance, continued and finished on the other (and back).
            assert!(
                instances.len() > 4 && instances.contains(&0) && instances.contains(&1),
                "upload {sha256}: {instances:?}"
            );
            uploads += 1;
        }
    }
    assert_eq!(uploads, DEVICES * RECORDINGS);
    // Each device pulled the instruction, wherever its pulls went, and both instances
    // serve the same instructions after the same cursor.
    for position in &positions {
        assert_eq!(position.cursor, withdrawal.id, "{position:?}");
    }
    let (_, first) = &devices[0];
    let [on_a, on_b] = [&first.instances[0], &first.instances[1]];
    let (pulled_a, pulled_b) = (on_a.pull(0).await.unwrap(), on_b.pull(0).await.unwrap());
    assert_eq!(pulled_a.messages, std::slice::from_ref(&withdrawal));
    assert_eq!(pulled_b.messages, pulled_a.messages);

    // Participant codes reserved through both instances never overlap.
    let mut numbers = BTreeSet::new();
    for _ in 0..2 {
        for (_, transport) in &devices {
            let request = ReserveRequest {
                prefixes: vec![ReserveWant {
                    prefix: "K".into(),
                    want: 5,
                    // Never a block again: a new one each time.
                    after: i64::MAX,
                }],
            };
            let reply = transport.reserve_codes(&request).await.expect("reserved");
            for block in reply.blocks {
                for number in block.first..block.first + block.count {
                    assert!(numbers.insert(number), "K{number} reserved twice");
                }
            }
        }
    }
    assert_eq!(numbers.len(), DEVICES * 2 * 5);
    let mut every = BTreeSet::new();
    for reserved in store.code_blocks().await.expect("blocks") {
        let block = reserved.block;
        for number in block.first..block.first + block.count {
            assert!(
                every.insert((block.prefix.clone(), number)),
                "{block:?} overlaps"
            );
        }
    }

    // The enrolment rate limits count attempts on both instances together: per address
    // (10 a minute), and per code from many addresses (10 in 10 minutes).
    limit_is_shared(addrs, "per address", |round, n| {
        (format!("198.51.100.{round}"), format!("WRONG-{round}-{n}"))
    })
    .await;
    limit_is_shared(addrs, "per code", |round, n| {
        (
            format!("203.0.113.{}", round * 20 + n),
            format!("GUESSED-{round}"),
        )
    })
    .await;
    drop(running);
}
