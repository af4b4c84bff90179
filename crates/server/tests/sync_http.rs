//! The sync API over real HTTP on port 0: enrolment (with its proof of possession and the
//! study keys checked against the fingerprint), push (with every forged input refused and
//! nothing stored) and pull, and the sync engine refusing study instructions the study
//! signing key did not sign, noticing replayed and missing ones, all on real SQLite.

mod support;

use attune_core::sync::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;

use attune_core::{
    Authorship, DeviceId, DeviceKey, Envelope, Kind, Links, ProfileId, RecordId, Revision,
    StudyKeyPair, StudySigningKey, Timestamp, seal_envelope,
};
use attune_server::api::{normalise_code, sha256_hex};
use attune_server::store::{NewControlMessage, SqliteStore};
use attune_server::{AppState, Store, router};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CODE: &str = "ABCD-EFGH-JKMN";

struct Server {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    study: StudyKeyPair,
    signing: StudySigningKey,
    _dir: TempDir,
}

struct Reply {
    status: u16,
    body: Value,
}

impl Server {
    async fn start() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("data"))
                .await
                .expect("open store"),
        );
        let study = StudyKeyPair::generate();
        let signing = StudySigningKey::generate().unwrap();
        support::init_study(store.as_ref(), &study, &signing).await;
        let app = router(AppState::new(store.clone(), dir.path().join("dist")));
        let addr = support::serve(app).await;
        Self {
            addr,
            store,
            study,
            signing,
            _dir: dir,
        }
    }

    /// A fresh enrolment challenge.
    async fn challenge(&self) -> String {
        let reply = self.post("/api/enrol/challenge", None, &json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["challenge"].as_str().unwrap().to_owned()
    }

    /// An enrolment request for `key` with a fresh challenge, proved by `signer`.
    async fn enrol_request(
        &self,
        code: &str,
        key: &DeviceKey,
        signer: &DeviceKey,
        device_id: Option<DeviceId>,
    ) -> Value {
        let challenge = self.challenge().await;
        json!({
            "code": code,
            "device_public_key": key.public_key().to_text(),
            "device_name": "Tablet 1",
            "device_id": device_id,
            "challenge": challenge,
            "proof": signer.sign_enrolment(&challenge, code, device_id),
        })
    }

    /// A control message signed with the study signing key, numbered next.
    async fn signed(&self, kind: attune_core::sync::ControlKind) -> NewControlMessage {
        let seq = self.store.next_control_seq().await.unwrap();
        NewControlMessage {
            seq,
            signature: self
                .signing
                .sign_control(seq, &kind, Timestamp(10))
                .unwrap(),
            kind,
            created_at: Timestamp(10),
        }
    }

    async fn add_code(&self, code: &str, expires_at: i64) {
        self.store
            .create_enrolment_code(
                &sha256_hex(&normalise_code(code)),
                "Ana",
                Timestamp(expires_at),
                Timestamp(0),
            )
            .await
            .unwrap();
    }

    async fn request(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        let auth = token
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        // The server may answer (413) and close before a large body is written: that is fine.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| serde_json::from_str(body).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        Reply { status, body }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request("POST", path, token, body.to_string().as_bytes())
            .await
    }

    /// Enrols a fresh device with a fresh code; returns it with its token.
    async fn enrolled_device(&self) -> (TestDevice, String) {
        let code = format!(
            "CODE-{}",
            sha256_hex(&format!("{:?}", DeviceId::new(Timestamp(0))))
        );
        self.add_code(&code, i64::MAX).await;
        let device = TestDevice::new();
        let request = self
            .enrol_request(&code, &device.key, &device.key, Some(device.id))
            .await;
        let reply = self.post("/api/enrol", None, &request).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let token = reply.body["device_token"].as_str().unwrap().to_owned();
        (device, token)
    }

    async fn stored_count(&self) -> usize {
        self.store.envelopes().await.unwrap().len()
    }
}

struct TestDevice {
    id: DeviceId,
    key: DeviceKey,
}

impl TestDevice {
    fn new() -> Self {
        Self {
            id: DeviceId::new(Timestamp(1)),
            key: DeviceKey::generate().unwrap(),
        }
    }

    fn revision(&self, body: &str) -> Revision {
        Revision::first(
            RecordId::new(Timestamp(2)),
            Kind::InterviewNote,
            Links::default(),
            body.as_bytes().to_vec(),
            Authorship {
                device: self.id,
                author: ProfileId::new(Timestamp(2)),
                time: Timestamp(3),
            },
        )
    }

    fn envelope(&self, server: &Server, revision: &Revision) -> Envelope {
        seal_envelope(
            revision,
            Some("VIG-001".into()),
            &server.study.public_key(),
            &self.key,
        )
        .unwrap()
    }
}

fn batch(envelopes: &[Envelope]) -> Value {
    json!({ "envelopes": envelopes })
}

#[tokio::test]
async fn enrolment_returns_a_token_and_the_study_key_and_the_code_works_once() {
    let server = Server::start().await;
    server.add_code(CODE, i64::MAX).await;
    let key = DeviceKey::generate().unwrap();
    let request = server
        .enrol_request("abcd efgh jkmn", &key, &key, None)
        .await;
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["study_public_key"],
        server.study.public_key().to_text()
    );
    assert_eq!(
        reply.body["study"]["signing_key"],
        server.signing.public_key().to_text()
    );
    let token = reply.body["device_token"].as_str().unwrap();
    assert!(token.len() >= 32, "a token of at least 128 bits");
    let devices = server.store.list_devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].fieldworker, "Ana");
    assert_eq!(devices[0].id, reply.body["device_id"].as_str().unwrap());

    let again = server
        .post(
            "/api/enrol",
            None,
            &server
                .enrol_request("abcd efgh jkmn", &key, &key, None)
                .await,
        )
        .await;
    assert_eq!(again.status, 403);
    assert_eq!(again.body["error"], ErrorCode::EnrolmentCodeUsed.as_str());
}

#[tokio::test]
async fn expired_and_unknown_codes_and_bad_keys_are_refused() {
    let server = Server::start().await;
    server.add_code(CODE, 1).await;
    let key = DeviceKey::generate().unwrap();
    let request = server.enrol_request(CODE, &key, &key, None).await;
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (403, Some(ErrorCode::EnrolmentCodeExpired.as_str()))
    );
    let request = server.enrol_request("NOPE", &key, &key, None).await;
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (403, Some(ErrorCode::EnrolmentCodeUnknown.as_str()))
    );
    let mut request = server.enrol_request(CODE, &key, &key, None).await;
    request["device_public_key"] = json!("not-a-key");
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(reply.status, 400);
    assert!(server.store.list_devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn enrolment_attempts_are_rate_limited() {
    let server = Server::start().await;
    let request = json!({ "code": "WRONG", "device_public_key": "x", "device_name": "T" });
    for _ in 0..10 {
        let reply = server.post("/api/enrol", None, &request).await;
        assert_ne!(reply.status, 429);
    }
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.body["error"], ErrorCode::RateLimited.as_str());
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_enrolment_limit() {
    let dir = TempDir::new().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("data"))
            .await
            .expect("open store"),
    );
    let localhost: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let behind = support::serve(router(
        AppState::new(store.clone(), dir.path().join("dist")).with_trusted_proxies(&[localhost]),
    ))
    .await;
    let direct = support::serve(router(AppState::new(store, dir.path().join("dist")))).await;
    let client = reqwest::Client::new();
    let tries = std::sync::atomic::AtomicUsize::new(0);
    // A new wrong code each time: the per-code limit is not what is tested here.
    let attempt = |addr: SocketAddr, forwarded: &'static str| {
        let n = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        client
            .post(format!("http://{addr}/api/enrol"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "code": format!("WRONG-{n}"), "device_public_key": "x", "device_name": "T" }))
            .send()
    };
    // Behind the proxy: one tablet uses up its attempts; another still has its own.
    for _ in 0..10 {
        assert_ne!(attempt(behind, "198.51.100.1").await.unwrap().status(), 429);
    }
    assert_eq!(attempt(behind, "198.51.100.1").await.unwrap().status(), 429);
    assert_ne!(attempt(behind, "198.51.100.2").await.unwrap().status(), 429);
    // Not trusted: the header is the client's claim and is ignored, so changing it does not
    // buy more attempts.
    for n in 0..10 {
        let forwarded = ["192.0.2.1", "192.0.2.2"][n % 2];
        assert_ne!(attempt(direct, forwarded).await.unwrap().status(), 429);
    }
    assert_eq!(attempt(direct, "192.0.2.3").await.unwrap().status(), 429);
}

/// One code (or one device id) tried from many addresses: after 10 attempts in 10 minutes
/// it is refused from any address, though each address is far below its own limit.
#[tokio::test]
async fn one_code_or_device_id_tried_from_many_addresses_is_rate_limited() {
    let dir = TempDir::new().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("data"))
            .await
            .expect("open store"),
    );
    let localhost: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let behind = support::serve(router(
        AppState::new(store.clone(), dir.path().join("dist")).with_trusted_proxies(&[localhost]),
    ))
    .await;
    let client = reqwest::Client::new();
    let attempt = |n: usize, code: String, device_id: Option<String>| {
        client
            .post(format!("http://{behind}/api/enrol"))
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .json(&json!({
                "code": code, "device_public_key": "x", "device_name": "T", "device_id": device_id,
            }))
            .send()
    };
    for n in 0..10 {
        // Case, spaces and dashes do not make another code.
        let code = ["abcd-efgh", "ABCD EFGH"][n % 2].to_owned();
        let reply = attempt(n, code, None).await.unwrap();
        assert_ne!(reply.status(), 429);
    }
    let reply = attempt(20, "abcdefgh".into(), None).await.unwrap();
    assert_eq!(reply.status(), 429);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"], ErrorCode::RateLimited.as_str());
    // Another code is still tried.
    assert_ne!(
        attempt(21, "other".into(), None).await.unwrap().status(),
        429
    );
    // One device id with a new code each time.
    let device_id = DeviceId::new(Timestamp(1_750_000_000_000)).to_string();
    for n in 0..10 {
        let reply = attempt(30 + n, format!("code-{n}"), Some(device_id.clone()))
            .await
            .unwrap();
        assert_ne!(reply.status(), 429);
    }
    let reply = attempt(50, "code-x".into(), Some(device_id)).await.unwrap();
    assert_eq!(reply.status(), 429);
}

#[tokio::test]
async fn a_push_is_stored_a_resend_is_already_stored_and_a_conflict_is_kept() {
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let revision = device.revision("first");
    let envelope = device.envelope(&server, &revision);
    let reply = server
        .post(
            "/api/push",
            Some(&token),
            &batch(std::slice::from_ref(&envelope)),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["results"][0]["outcome"], "stored");
    assert_eq!(reply.body["results"][0]["hash"], envelope.hash.to_hex());

    let resend = server
        .post(
            "/api/push",
            Some(&token),
            &batch(std::slice::from_ref(&envelope)),
        )
        .await;
    assert_eq!(resend.body["results"][0]["outcome"], "already_stored");

    let mut other = revision.clone();
    other.body = b"second opinion".to_vec();
    other.hash = other.compute_hash();
    let conflicting = device.envelope(&server, &other);
    let reply = server
        .post("/api/push", Some(&token), &batch(&[conflicting]))
        .await;
    assert_eq!(reply.body["results"][0]["outcome"], "conflict");
    assert_eq!(server.stored_count().await, 1);
    assert_eq!(server.store.conflicts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_bad_signature_refuses_the_whole_batch() {
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let good = device.envelope(&server, &device.revision("good"));
    let mut forged = device.envelope(&server, &device.revision("forged"));
    forged.participant_code = Some("VIG-999".into());
    let reply = server
        .post("/api/push", Some(&token), &batch(&[good, forged]))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], ErrorCode::BadSignature.as_str());
    assert_eq!(server.stored_count().await, 0);
}

/// Signatures are checked on several threads in a large batch: the error still names the
/// first bad envelope, and nothing of the batch is stored.
#[tokio::test]
async fn a_large_batch_names_its_first_bad_signature() {
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let mut envelopes: Vec<_> = (0..90)
        .map(|n| device.envelope(&server, &device.revision(&format!("note {n}"))))
        .collect();
    for index in [77, 41] {
        envelopes[index].participant_code = Some("VIG-999".into());
    }
    let reply = server
        .post("/api/push", Some(&token), &batch(&envelopes))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], ErrorCode::BadSignature.as_str());
    assert_eq!(reply.body["message"], "Envelope 41 has a bad signature");
    assert_eq!(server.stored_count().await, 0);
}

#[tokio::test]
async fn an_envelope_signed_by_another_key_is_refused() {
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let impostor = TestDevice {
        id: device.id,
        key: DeviceKey::generate().unwrap(),
    };
    let envelope = impostor.envelope(&server, &impostor.revision("fake"));
    let reply = server
        .post("/api/push", Some(&token), &batch(&[envelope]))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], ErrorCode::BadSignature.as_str());
    assert_eq!(server.stored_count().await, 0);
}

/// A withdrawal request from a tablet travels as the tablet's signed withdrawal record: one
/// signed by the enrolled device is stored and listed as pending; a forged one (signed by
/// another key under the device's id, or sent with no device's token) is refused and nothing
/// is stored, so it is never listed.
#[tokio::test]
async fn a_withdrawal_request_not_signed_by_the_enrolled_device_is_refused() {
    use attune_core::ParticipantId;
    use attune_core::fieldwork::withdrawal_request_record;
    use attune_server::verify::{Devices, withdrawal_requests};
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let participant = ParticipantId::new(Timestamp(2));
    let links = Links {
        participant: Some(participant),
        ..Links::default()
    };
    let by = |device: &TestDevice| Authorship {
        device: device.id,
        author: ProfileId::new(Timestamp(2)),
        time: Timestamp(3),
    };
    let record = Revision::first(
        RecordId::from_bytes(*participant.as_bytes()),
        Kind::Participant,
        links.clone(),
        br#"{"code": "VIG-001", "group": "carers"}"#.to_vec(),
        by(&device),
    );
    let request_by = |signer: &TestDevice| {
        let revision = Revision::first(
            withdrawal_request_record(participant),
            Kind::Withdrawal,
            links.clone(),
            br#"{"keep_data": false}"#.to_vec(),
            by(signer),
        );
        signer.envelope(&server, &revision)
    };
    let reply = server
        .post(
            "/api/push",
            Some(&token),
            &batch(&[device.envelope(&server, &record)]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let impostor = TestDevice {
        id: device.id,
        key: DeviceKey::generate().unwrap(),
    };
    let reply = server
        .post("/api/push", Some(&token), &batch(&[request_by(&impostor)]))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], ErrorCode::BadSignature.as_str());
    let reply = server
        .post(
            "/api/push",
            Some("0123456789abcdef"),
            &batch(&[request_by(&impostor)]),
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        server.stored_count().await,
        1,
        "only the participant record"
    );
    let requests = async || {
        let stored = server.store.envelopes().await.unwrap();
        let devices = Devices::new(&server.store.list_devices().await.unwrap());
        withdrawal_requests(&stored, &stored, &devices, &[])
    };
    assert!(requests().await.is_empty());

    // The enrolled device's own request is stored and pending.
    let reply = server
        .post("/api/push", Some(&token), &batch(&[request_by(&device)]))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["results"][0]["outcome"], "stored");
    let found = requests().await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].participant_id, participant);
    assert_eq!(found[0].participant_code, "VIG-001");
    assert_eq!(found[0].device_id, device.id.to_string());
    assert_eq!(found[0].fieldworker, "Ana");
    assert!(found[0].is_pending(), "{:?}", found[0]);
}

#[tokio::test]
async fn an_envelope_from_another_device_id_is_refused() {
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let other = TestDevice {
        id: DeviceId::new(Timestamp(5)),
        key: device.key,
    };
    let envelope = other.envelope(&server, &other.revision("elsewhere"));
    let reply = server
        .post("/api/push", Some(&token), &batch(&[envelope]))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], ErrorCode::WrongDevice.as_str());
    assert_eq!(server.stored_count().await, 0);
}

#[tokio::test]
async fn unknown_or_missing_tokens_are_refused() {
    let server = Server::start().await;
    let device = TestDevice::new();
    let envelope = device.envelope(&server, &device.revision("x"));
    let reply = server
        .post("/api/push", Some("0123456789abcdef"), &batch(&[envelope]))
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"], ErrorCode::UnknownDevice.as_str());
    let reply = server.post("/api/push", None, &batch(&[])).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"], ErrorCode::MissingToken.as_str());
    assert_eq!(server.stored_count().await, 0);
}

#[tokio::test]
async fn a_revoked_device_is_refused_with_the_reason_and_told_on_pull() {
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let revocation = server
        .signed(attune_core::sync::ControlKind::Revocation {
            device_id: device.id,
            reason: "tablet stolen".into(),
        })
        .await;
    server
        .store
        .revoke_device(&device.id.to_string(), &revocation)
        .await
        .unwrap();
    let envelope = device.envelope(&server, &device.revision("after revocation"));
    let reply = server
        .post("/api/push", Some(&token), &batch(&[envelope]))
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body["error"], ErrorCode::DeviceRevoked.as_str());
    assert_eq!(reply.body["reason"], "tablet stolen");
    assert_eq!(server.stored_count().await, 0);
    let pull = server.request("GET", "/api/pull", Some(&token), b"").await;
    assert_eq!(pull.status, 200);
    assert_eq!(pull.body["revoked"]["reason"], "tablet stolen");
    // With the statement the study team signed, as signed.
    let statement = &pull.body["revoked"]["statement"];
    assert_eq!(statement["kind"], "revocation");
    assert_eq!(statement["device_id"], device.id.to_string());
    assert_eq!(statement["signature"], revocation.signature);
}

#[tokio::test]
async fn malformed_envelopes_are_refused() {
    let server = Server::start().await;
    let (device, token) = server.enrolled_device().await;
    let reply = server
        .request("POST", "/api/push", Some(&token), b"{not json")
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], ErrorCode::Malformed.as_str());
    let mut envelope =
        serde_json::to_value(device.envelope(&server, &device.revision("x"))).unwrap();
    envelope["sealed"] = json!("%%% not base64 %%%");
    let reply = server
        .post(
            "/api/push",
            Some(&token),
            &json!({ "envelopes": [envelope] }),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], ErrorCode::Malformed.as_str());
    let reply = server
        .post(
            "/api/push",
            Some(&token),
            &json!({ "envelopes": [{"rev": 1}] }),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(server.stored_count().await, 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let server = Server::start().await;
    let (_device, token) = server.enrolled_device().await;
    let body = vec![b' '; attune_server::api::MAX_BODY_BYTES + 1024];
    let reply = server
        .request("POST", "/api/push", Some(&token), &body)
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(server.stored_count().await, 0);
}

#[tokio::test]
async fn withdrawals_reach_devices_after_their_cursor() {
    let server = Server::start().await;
    let (_device, token) = server.enrolled_device().await;
    let empty = server.request("GET", "/api/pull", Some(&token), b"").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["messages"], json!([]));
    assert_eq!(empty.body["revoked"], Value::Null);
    let participant = attune_core::ParticipantId::new(Timestamp(3));
    let withdrawal = server
        .signed(attune_core::sync::ControlKind::Withdrawal {
            participant_id: participant,
            participant_code: "VIG-001".into(),
        })
        .await;
    server.store.add_withdrawal(&withdrawal).await.unwrap();
    let pull = server
        .request("GET", "/api/pull?after=0", Some(&token), b"")
        .await;
    assert_eq!(pull.body["messages"][0]["kind"], "withdrawal");
    assert_eq!(pull.body["messages"][0]["participant_code"], "VIG-001");
    assert_eq!(
        pull.body["messages"][0]["participant_id"],
        participant.to_string()
    );
    assert_eq!(pull.body["messages"][0]["seq"], 1);
    assert_eq!(pull.body["messages"][0]["signature"], withdrawal.signature);
    let cursor = pull.body["cursor"].as_i64().unwrap();
    let next = server
        .request(
            "GET",
            &format!("/api/pull?after={cursor}"),
            Some(&token),
            b"",
        )
        .await;
    assert_eq!(next.body["messages"], json!([]));
    let anonymous = server.request("GET", "/api/pull", None, b"").await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn enrolling_with_another_devices_public_key_fails() {
    let server = Server::start().await;
    server.add_code(CODE, i64::MAX).await;
    let victim = DeviceKey::generate().unwrap();
    let attacker = DeviceKey::generate().unwrap();
    let id = Some(DeviceId::new(Timestamp(1)));
    // The victim's public key, proved by the attacker's key: refused, nothing registered.
    let request = server.enrol_request(CODE, &victim, &attacker, id).await;
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (403, Some(ErrorCode::EnrolmentProofInvalid.as_str()))
    );
    assert!(server.store.list_devices().await.unwrap().is_empty());
    // A proof for other bytes (another device id) is refused too.
    let challenge = server.challenge().await;
    let other_id = Some(DeviceId::new(Timestamp(2)));
    let request = json!({
        "code": CODE,
        "device_public_key": victim.public_key().to_text(),
        "device_name": "Tablet 1",
        "device_id": id,
        "challenge": challenge,
        "proof": victim.sign_enrolment(&challenge, CODE, other_id),
    });
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(
        reply.body["error"],
        ErrorCode::EnrolmentProofInvalid.as_str()
    );
    // A challenge is good once, and a request without one is refused.
    let request = server.enrol_request(CODE, &victim, &victim, id).await;
    assert_eq!(server.post("/api/enrol", None, &request).await.status, 200);
    let reused = server.post("/api/enrol", None, &request).await;
    assert_eq!(
        (reused.status, reused.body["error"].as_str()),
        (403, Some(ErrorCode::EnrolmentChallengeUnknown.as_str()))
    );
    let mut unchallenged = server.enrol_request(CODE, &victim, &victim, id).await;
    unchallenged.as_object_mut().unwrap().remove("challenge");
    let reply = server.post("/api/enrol", None, &unchallenged).await;
    assert_eq!(
        reply.body["error"],
        ErrorCode::EnrolmentChallengeUnknown.as_str()
    );
    assert_eq!(server.store.list_devices().await.unwrap().len(), 1);
    // The re-enrolment rules still hold: the same device and key, its answer lost, enrols
    // again with the same code (and a fresh challenge); the attacker's key cannot.
    let retry = server.enrol_request(CODE, &victim, &victim, id).await;
    let reply = server.post("/api/enrol", None, &retry).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let hijack = server.enrol_request(CODE, &attacker, &attacker, id).await;
    let reply = server.post("/api/enrol", None, &hijack).await;
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (409, Some(ErrorCode::DeviceIdTaken.as_str()))
    );
}

/// A tablet for the engine tests: its store, vault and keys, enrolled over HTTP.
struct Tablet {
    store: attune_core::MemoryStore,
    vault: attune_core::Vault,
    key: DeviceKey,
    id: DeviceId,
    author: ProfileId,
    token: String,
    study: attune_core::VerifiedStudyKeys,
}

impl Tablet {
    async fn enrol(server: &support::TestServer) -> Self {
        let params = attune_core::KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        };
        let (vault, _) = attune_core::Vault::create("a long enough passphrase", params).unwrap();
        let key = DeviceKey::generate().unwrap();
        let id = DeviceId::new(Timestamp(1));
        let enrolled = server.try_enrol(&key, id).await.expect("enrolled");
        Self {
            store: attune_core::MemoryStore::new(),
            vault,
            key,
            id,
            author: ProfileId::new(Timestamp(1)),
            token: enrolled.response.device_token,
            study: enrolled.study,
        }
    }

    async fn participant(&self, code: &str) -> attune_core::ParticipantId {
        use attune_core::RecordStore as _;
        let id = attune_core::ParticipantId::new(Timestamp(2));
        let revision = Revision::first(
            RecordId::from_uuid(*id.as_uuid()),
            Kind::Participant,
            Links {
                participant: Some(id),
                ..Links::default()
            },
            json!({"code": code, "group": "carers", "links": [], "status": "active"})
                .to_string()
                .into_bytes(),
            Authorship {
                device: self.id,
                author: self.author,
                time: Timestamp(1_750_000_000_000),
            },
        );
        let sealed = self.vault.seal_revision(&revision).unwrap();
        self.store.put_revision(sealed).await.unwrap();
        id
    }

    async fn has(&self, participant: attune_core::ParticipantId) -> bool {
        use attune_core::RecordStore as _;
        !self
            .store
            .list_latest_by_participant(participant)
            .await
            .unwrap()
            .is_empty()
    }

    async fn sync(
        &self,
        server: &support::TestServer,
        position: attune_core::sync::PullPosition,
    ) -> attune_core::sync::SyncReport {
        let transport = support::HttpTransport::new(server.addr, &self.token);
        let clock = || Timestamp(1_750_000_000_000);
        let syncer = attune_core::sync::Syncer::new(
            &self.store,
            &transport,
            attune_core::sync::SyncIdentity {
                vault: &self.vault,
                device_key: &self.key,
                study_key: &self.study.public_key,
                study_signing_key: &self.study.signing_key,
                device: self.id,
                author: self.author,
            },
            &clock,
        );
        syncer.run(position, |_| {}).await.expect("sync ran")
    }
}

/// A server on real SQLite (with its pool, to reach into the database as an attacker would).
async fn sqlite_server() -> (support::TestServer, SqliteStore, TempDir) {
    let dir = TempDir::new().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("data")).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let server = support::TestServer::start(store, dir.path().join("data")).await;
    (server, sqlite, dir)
}

/// Inserts a control message straight into the database, signed by `key`: what a compromised
/// server (or anyone with its database) can do. Its id.
async fn insert_signed_by(
    sqlite: &SqliteStore,
    key: &StudySigningKey,
    seq: u64,
    kind: &attune_core::sync::ControlKind,
) -> i64 {
    use attune_core::sync::ControlKind;
    let created_at = Timestamp(20);
    let signature = key.sign_control(seq, kind, created_at).unwrap();
    let (name, participant_id, code, protocol, device, reason) = match kind {
        ControlKind::Withdrawal {
            participant_id,
            participant_code,
        } => (
            "withdrawal",
            Some(participant_id.to_string()),
            Some(participant_code.clone()),
            None,
            None,
            None,
        ),
        ControlKind::ProtocolUpdate { protocol } => (
            "protocol_update",
            None,
            None,
            Some(protocol.clone()),
            None,
            None,
        ),
        ControlKind::Revocation { device_id, reason } => (
            "revocation",
            None,
            None,
            None,
            Some(device_id.to_string()),
            Some(reason.clone()),
        ),
        ControlKind::Unknown => unreachable!(),
    };
    sqlx::query_scalar(
        "INSERT INTO control_messages (seq, kind, participant_id, participant_code, protocol_id, \
         protocol_version, protocol, device_id, reason, created_at, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(seq as i64)
    .bind(name)
    .bind(participant_id)
    .bind(code)
    .bind(protocol.as_ref().map(|_| "vig-evaluation"))
    .bind(protocol.as_ref().map(|_| 9_i64))
    .bind(protocol)
    .bind(device)
    .bind(reason)
    .bind(created_at.as_millis())
    .bind(signature)
    .fetch_one(sqlite.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn instructions_not_signed_by_the_study_signing_key_are_refused_by_the_tablet() {
    use attune_core::sync::{ControlKind, InstructionProblem, PullPosition};
    let forger = StudySigningKey::generate().unwrap();
    for forged in ["withdrawal", "protocol update", "revocation"] {
        let (server, sqlite, _dir) = sqlite_server().await;
        let tablet = Tablet::enrol(&server).await;
        let target = tablet.participant("C01").await;
        let other = tablet.participant("C02").await;
        // Instruction 1 is genuine.
        let genuine = server
            .signed(ControlKind::ProtocolUpdate {
                protocol: "{\"genuine\": true}".into(),
            })
            .await;
        server
            .store
            .publish_protocol("vig-evaluation", 2, &genuine)
            .await
            .unwrap();
        // Instruction 2, inserted with SQL, signed by another key.
        let kind = match forged {
            "withdrawal" => ControlKind::Withdrawal {
                participant_id: target,
                participant_code: "C01".into(),
            },
            "protocol update" => ControlKind::ProtocolUpdate {
                protocol: "{\"forged\": true}".into(),
            },
            _ => ControlKind::Revocation {
                device_id: tablet.id,
                reason: "forged".into(),
            },
        };
        let forged_id = insert_signed_by(&sqlite, &forger, 2, &kind).await;
        // Instruction 3 is genuine again: it waits behind the refused one.
        let after = server
            .signed(ControlKind::Withdrawal {
                participant_id: other,
                participant_code: "C02".into(),
            })
            .await;
        assert_eq!(after.seq, 3);
        server.store.add_withdrawal(&after).await.unwrap();

        let report = tablet.sync(&server, PullPosition::default()).await;
        assert_eq!(
            report.instruction_problems,
            vec![InstructionProblem::NotSigned {
                message_id: forged_id,
                seq: 2
            }],
            "{forged}"
        );
        assert!(
            report.instruction_problems[0]
                .to_string()
                .contains("not signed by the study team's key")
        );
        assert_eq!(report.position.last_seq, 1, "{forged}: not past it");
        assert_eq!(report.protocol_updates.len(), 1);
        assert_eq!(report.protocol_updates[0].protocol, "{\"genuine\": true}");
        assert_eq!(report.revoked, None, "{forged}");
        assert!(report.purged.is_empty(), "{forged}");
        assert!(tablet.has(target).await && tablet.has(other).await);
        // The rest of sync goes on: the participants reached the server.
        assert_eq!(report.pushed, 2, "{forged}");
    }

    // A revocation statement the study team did not sign, set in the database: the server
    // refuses the tablet, which reports it and does not take itself as revoked.
    let (server, sqlite, _dir) = sqlite_server().await;
    let tablet = Tablet::enrol(&server).await;
    let kind = ControlKind::Revocation {
        device_id: tablet.id,
        reason: "forged".into(),
    };
    let forged_id = insert_signed_by(&sqlite, &forger, 1, &kind).await;
    sqlx::query(
        "UPDATE devices SET status = 'revoked', revoked_reason = 'forged', \
         revocation_message_id = $1",
    )
    .bind(forged_id)
    .execute(sqlite.pool())
    .await
    .unwrap();
    let report = tablet.sync(&server, PullPosition::default()).await;
    assert_eq!(report.revoked, None);
    assert_eq!(
        report.instruction_problems,
        vec![InstructionProblem::UnsignedRevocation {
            reason: "forged".into()
        }]
    );
}

#[tokio::test]
async fn a_study_key_not_signed_by_the_study_signing_key_is_refused_at_enrolment() {
    use attune_core::SigningError;
    use attune_core::sync::enrol::EnrolError;
    let (server, sqlite, _dir) = sqlite_server().await;
    // The server's study key replaced with SQL (by one whose private key an attacker holds).
    let swapped = StudyKeyPair::generate().public_key();
    sqlx::query("UPDATE study SET public_key = $1")
        .bind(swapped.to_text())
        .execute(sqlite.pool())
        .await
        .unwrap();
    let key = DeviceKey::generate().unwrap();
    let refused = server.try_enrol(&key, DeviceId::new(Timestamp(1))).await;
    assert!(
        matches!(refused, Err(EnrolError::Study(SigningError::BadSignature))),
        "{refused:?}"
    );
    // ...and with its own signing key too: that key does not have the study's fingerprint.
    let forger = StudySigningKey::generate().unwrap();
    sqlx::query("UPDATE study SET signing_public_key = $1, public_key_signature = $2")
        .bind(forger.public_key().to_text())
        .bind(forger.sign_study_key(&swapped))
        .execute(sqlite.pool())
        .await
        .unwrap();
    let refused = server.try_enrol(&key, DeviceId::new(Timestamp(1))).await;
    assert!(
        matches!(
            refused,
            Err(EnrolError::Study(SigningError::FingerprintMismatch))
        ),
        "{refused:?}"
    );
    // Refused before the codes were spent: no device enrolled.
    assert!(server.store.list_devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_replayed_and_a_missing_instruction_are_noticed_by_the_tablet() {
    use attune_core::sync::{ControlKind, InstructionProblem};
    let (server, sqlite, _dir) = sqlite_server().await;
    let tablet = Tablet::enrol(&server).await;
    let first = tablet.participant("C01").await;
    let third = tablet.participant("C03").await;
    let withdraw = |participant, code: &str| ControlKind::Withdrawal {
        participant_id: participant,
        participant_code: code.into(),
    };
    let one = server.signed(withdraw(first, "C01")).await;
    server.store.add_withdrawal(&one).await.unwrap();
    let report = tablet.sync(&server, Default::default()).await;
    assert_eq!(report.purged, vec!["C01".to_string()]);
    let position = report.position;
    assert_eq!(position.last_seq, 1);

    // Instructions 2 and 3 are recorded, and the server withholds 2.
    let two = server
        .signed(ControlKind::ProtocolUpdate {
            protocol: "{}".into(),
        })
        .await;
    server
        .store
        .publish_protocol("vig-evaluation", 2, &two)
        .await
        .unwrap();
    let three = server.signed(withdraw(third, "C03")).await;
    server.store.add_withdrawal(&three).await.unwrap();
    let (two_id, two_row): (i64, String) =
        sqlx::query_as("SELECT id, signature FROM control_messages WHERE seq = 2")
            .fetch_one(sqlite.pool())
            .await
            .unwrap();
    sqlx::query("DELETE FROM control_messages WHERE seq = 2")
        .execute(sqlite.pool())
        .await
        .unwrap();
    let report = tablet.sync(&server, position).await;
    assert!(
        matches!(
            report.instruction_problems.as_slice(),
            [InstructionProblem::Missing {
                expected: 2,
                found: 3,
                ..
            }]
        ),
        "{:?}",
        report.instruction_problems
    );
    assert_eq!(report.position, position, "not past the gap");
    assert!(tablet.has(third).await, "instruction 3 waits");

    // The server delivers instruction 2 again: 2 and 3 are applied in order.
    sqlx::query(
        "INSERT INTO control_messages (id, seq, kind, protocol_id, protocol_version, protocol, \
         created_at, signature) VALUES ($1, 2, 'protocol_update', 'vig-evaluation', 2, '{}', \
         $2, $3)",
    )
    .bind(two_id)
    .bind(two.created_at.as_millis())
    .bind(two_row)
    .execute(sqlite.pool())
    .await
    .unwrap();
    let report = tablet.sync(&server, position).await;
    assert!(report.instruction_problems.is_empty());
    assert_eq!(report.protocol_updates.len(), 1);
    assert_eq!(report.purged, vec!["C03".to_string()]);
    assert_eq!(report.position.last_seq, 3);
    let position = report.position;

    // The server serves instruction 1 again, after the tablet's cursor: a replay, ignored.
    sqlx::query("UPDATE control_messages SET id = 1000 WHERE seq = 1")
        .execute(sqlite.pool())
        .await
        .unwrap();
    let report = tablet.sync(&server, position).await;
    assert_eq!(
        report.instruction_problems,
        vec![InstructionProblem::Replayed {
            message_id: 1000,
            seq: 1
        }]
    );
    assert!(report.purged.is_empty());
    assert_eq!(report.position.last_seq, 3);
}
