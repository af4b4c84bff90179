//! `POST /api/codes/reserve` over real HTTP: only an enrolled, active device reserves; bad
//! requests are refused whole; a want is capped; and two tablets running attune-core's sync
//! engine at once, each with carers made offline under provisional labels, end with
//! different codes, under which the server holds all their records.

mod support;

use attune_core::sync::ErrorCode;
use std::collections::HashSet;

use attune_core::codes::{CodeKeeper, MAX_BLOCK, MemoryCodeKeeper, POOL_TARGET};
use attune_core::fieldwork::{ParticipantBody, ParticipantStatus};
use attune_core::sync::{CodeSync, ControlKind, PullPosition, SyncIdentity, Syncer};
use attune_core::{
    Authorship, DeviceId, DeviceKey, KdfParams, Kind, Links, MemoryStore, ParticipantId, ProfileId,
    RecordId, RecordStore, Revision, Timestamp, Vault,
};
use attune_server::store::SqliteStore;
use serde_json::{Value, json};
use support::{HttpTransport, TestServer};

async fn server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db"))
        .await
        .expect("open store");
    let server = TestServer::start(std::sync::Arc::new(store), dir.path().join("data")).await;
    (server, dir)
}

/// `POST /api/codes/reserve` with `body` and an optional token: status and JSON answer.
async fn reserve(server: &TestServer, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/api/codes/reserve", server.addr))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn enrolled(server: &TestServer) -> (DeviceId, String) {
    let id = DeviceId::new(Timestamp(1));
    let token = server.enrol(&DeviceKey::generate().unwrap(), id).await;
    (id, token)
}

#[tokio::test]
async fn only_an_enrolled_active_device_reserves_codes() {
    let (server, _dir) = server().await;
    let body = json!({"prefixes": [{"prefix": "C", "want": 5, "after": 0}]}).to_string();
    let (status, answer) = reserve(&server, None, &body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some(ErrorCode::MissingToken.as_str()))
    );
    let (status, answer) = reserve(&server, Some("not-a-token"), &body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some(ErrorCode::UnknownDevice.as_str()))
    );
    assert!(server.store.code_blocks().await.unwrap().is_empty());

    let (id, token) = enrolled(&server).await;
    let (status, answer) = reserve(&server, Some(&token), &body).await;
    assert_eq!(status, 200, "{answer}");
    let blocks = answer["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0]["prefix"], "C");
    assert_eq!(blocks[0]["first"], 1);
    assert_eq!(blocks[0]["count"], 5);
    // `after` may be left out: the same as 0, so the lost block comes again.
    let (status, again) = reserve(
        &server,
        Some(&token),
        r#"{"prefixes": [{"prefix": "C", "want": 5}]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again, answer);

    server
        .store
        .revoke_device(
            &id.to_string(),
            &server
                .signed(ControlKind::Revocation {
                    device_id: id,
                    reason: "tablet lost".into(),
                })
                .await,
        )
        .await
        .unwrap();
    let (status, answer) = reserve(&server, Some(&token), &body).await;
    assert_eq!(status, 403);
    assert_eq!(answer["error"], ErrorCode::DeviceRevoked.as_str());
    assert_eq!(answer["reason"], "tablet lost");
    assert_eq!(server.store.code_blocks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_reservation_requests_are_refused_whole() {
    let (server, _dir) = server().await;
    let (_, token) = enrolled(&server).await;
    let bad = [
        r#"{"prefixes": [{"prefix": "CC", "want": 5}]}"#,
        r#"{"prefixes": [{"prefix": "c", "want": 5}]}"#,
        r#"{"prefixes": [{"prefix": "", "want": 5}]}"#,
        r#"{"prefixes": [{"prefix": "1", "want": 5}]}"#,
        r#"{"prefixes": [{"prefix": "É", "want": 5}]}"#,
        r#"{"prefixes": [{"prefix": "K", "want": 5}, {"prefix": "C", "want": 1}, {"prefix": "K", "want": 1}]}"#,
        r#"{"prefixes": [{"prefix": "C", "want": 5, "after": -1}]}"#,
        r#"{"prefixes": [{"prefix": "C", "want": -5}]}"#,
        r#"{"prefixes": [{"prefix": "C"}]}"#,
        r#"{"prefix": "C", "want": 5}"#,
        "not json",
    ];
    for body in bad {
        let (status, answer) = reserve(&server, Some(&token), body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], ErrorCode::Malformed.as_str(), "{body}");
    }
    // Nothing was reserved, not even for the good items of a bad request.
    assert!(server.store.code_blocks().await.unwrap().is_empty());
    // An empty request is answered with no blocks.
    let (status, answer) = reserve(&server, Some(&token), r#"{"prefixes": []}"#).await;
    assert_eq!((status, answer), (200, json!({"blocks": []})));
}

#[tokio::test]
async fn a_want_over_the_cap_gets_the_cap_and_every_group_counts_on_its_own() {
    let (server, _dir) = server().await;
    let (_, token) = enrolled(&server).await;
    let body = json!({"prefixes": [
        {"prefix": "C", "want": 1_000_000},
        {"prefix": "K", "want": 2},
        {"prefix": "Z", "want": 0},
    ]})
    .to_string();
    let (status, answer) = reserve(&server, Some(&token), &body).await;
    assert_eq!(status, 200, "{answer}");
    let spans: Vec<(String, u64, u64)> = answer["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["prefix"].as_str().unwrap().to_owned(),
                b["first"].as_u64().unwrap(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [("C".into(), 1, u64::from(MAX_BLOCK)), ("K".into(), 1, 2)]
    );
}

/// A tablet for the engine test: store, vault, keys and code pool.
struct Tablet {
    store: MemoryStore,
    vault: Vault,
    key: DeviceKey,
    id: DeviceId,
    author: ProfileId,
    codes: MemoryCodeKeeper,
}

impl Tablet {
    fn new(n: u8) -> Self {
        let params = KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        };
        Self {
            store: MemoryStore::new(),
            vault: Vault::create("a long enough passphrase", params).unwrap().0,
            key: DeviceKey::generate().unwrap(),
            id: DeviceId::from_bytes([n; 16]),
            author: ProfileId::from_bytes([n + 100; 16]),
            codes: MemoryCodeKeeper::default(),
        }
    }

    /// A carer with the code the app would give now (offline: from the pool or provisional)
    /// and a note about them.
    async fn carer(&self, at: i64) -> ParticipantId {
        let used: HashSet<String> = self.codes().await.into_iter().collect();
        let code = self
            .codes
            .update(|pool| pool.new_code('C', &used))
            .await
            .unwrap();
        let id = ParticipantId::new(Timestamp(at));
        let body = ParticipantBody {
            code,
            group: "carers".into(),
            name: None,
            links: vec![],
            status: ParticipantStatus::Active,
        };
        let links = Links {
            participant: Some(id),
            ..Links::default()
        };
        self.save(
            RecordId::from_uuid(*id.as_uuid()),
            Kind::Participant,
            links.clone(),
            serde_json::to_vec(&body).unwrap(),
            at,
        )
        .await;
        self.save(
            RecordId::new(Timestamp(at)),
            Kind::InterviewNote,
            links,
            b"what they said".to_vec(),
            at,
        )
        .await;
        id
    }

    async fn save(&self, record: RecordId, kind: Kind, links: Links, body: Vec<u8>, at: i64) {
        let by = Authorship {
            device: self.id,
            author: self.author,
            time: Timestamp(at),
        };
        let revision = Revision::first(record, kind, links, body, by);
        self.store
            .put_revision(self.vault.seal_revision(&revision).unwrap())
            .await
            .unwrap();
    }

    async fn codes(&self) -> Vec<String> {
        let mut codes = Vec::new();
        for stored in self
            .store
            .list_latest_by_kind(Kind::Participant)
            .await
            .unwrap()
        {
            let revision = self.vault.open_revision(&stored).unwrap();
            codes.push(revision.body_json::<ParticipantBody>().unwrap().code);
        }
        codes
    }

    async fn sync(&self, server: &TestServer, token: &str) -> attune_core::sync::SyncReport {
        let transport = HttpTransport::new(server.addr, token);
        let study = server.study.public_key();
        let signing = server.signing.public_key();
        let identity = SyncIdentity {
            vault: &self.vault,
            device_key: &self.key,
            study_key: &study,
            study_signing_key: &signing,
            device: self.id,
            author: self.author,
        };
        let clock = || Timestamp(1_760_000_000_000);
        let codes = CodeSync {
            keeper: &self.codes,
            prefixes: vec!['C', 'K'],
            target: POOL_TARGET,
        };
        Syncer::new(&self.store, &transport, identity, &clock)
            .run_with_codes(PullPosition::default(), &codes, |_| {})
            .await
            .expect("synced")
    }
}

#[tokio::test]
async fn two_tablets_syncing_at_once_end_with_different_codes() {
    let (server, _dir) = server().await;
    let (one, two) = (Tablet::new(1), Tablet::new(2));
    let token_one = server.enrol(&one.key, one.id).await;
    let token_two = server.enrol(&two.key, two.id).await;
    // Tablet one synced once (its pool is full); tablet two never did. Then, offline, each
    // makes seven carers: one uses its five codes and then labels, two only labels.
    one.sync(&server, &token_one).await;
    for n in 0..7 {
        one.carer(1_750_000_000_000 + n).await;
        two.carer(1_750_000_100_000 + n).await;
    }
    let labels = [one.codes().await, two.codes().await].concat();
    assert_eq!(labels.iter().filter(|c| c.contains("-new-")).count(), 9);

    // Back online, both sync at the same moment.
    let (report_one, report_two) =
        tokio::join!(one.sync(&server, &token_one), two.sync(&server, &token_two));
    assert_eq!(report_one.confirmed.len(), 2);
    assert_eq!(report_two.confirmed.len(), 7);
    assert!(report_one.held.is_empty() && report_two.held.is_empty());
    let codes = [one.codes().await, two.codes().await].concat();
    let distinct: HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), 14, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| attune_core::protocol::parse_code(c).is_some())
    );
    // The server holds every record under a final code: one code per participant record.
    let stored = server.store.envelopes().await.unwrap();
    let on_server: Vec<String> = stored
        .iter()
        .filter_map(|s| s.envelope.participant_code.clone())
        .collect();
    assert!(on_server.iter().all(|c| !c.contains("-new-")));
    let per_record: HashSet<(RecordId, String)> = stored
        .iter()
        .filter(|s| s.envelope.kind == Kind::Participant)
        .map(|s| {
            (
                s.envelope.record_id,
                s.envelope.participant_code.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_record.len(), 14, "each participant under one code");
    let server_codes: HashSet<&String> = per_record.iter().map(|(_, c)| c).collect();
    assert_eq!(server_codes, distinct);
}
