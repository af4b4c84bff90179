//! The sync API over real HTTP on port 0: enrolment (with its proof of possession and the
//! study keys checked against the fingerprint), push (with every forged input refused and
//! nothing stored) and pull, and the sync engine refusing study instructions the study
//! signing key did not sign, noticing replayed and missing ones, all on real SQLite.

mod support;

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
    assert_eq!(again.body["error"], "enrolment_code_used");
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
        (403, Some("enrolment_code_expired"))
    );
    let request = server.enrol_request("NOPE", &key, &key, None).await;
    let reply = server.post("/api/enrol", None, &request).await;
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (403, Some("enrolment_code_unknown"))
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
    assert_eq!(reply.body["error"], "rate_limited");
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
    assert_eq!(reply.body["error"], "bad_signature");
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
    assert_eq!(reply.body["error"], "bad_signature");
    assert_eq!(server.stored_count().await, 0);
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
    assert_eq!(reply.body["error"], "wrong_device");
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
    assert_eq!(reply.body["error"], "unknown_device");
    let reply = server.post("/api/push", None, &batch(&[])).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"], "missing_token");
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
    assert_eq!(reply.body["error"], "device_revoked");
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
    assert_eq!(reply.body["error"], "malformed");
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
    assert_eq!(reply.body["error"], "malformed");
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
