//! The server checks what it stores, over real HTTP on port 0: a gap or a parent that does not
//! match is kept as a conflict with its reason (and acknowledged, so the tablet does not send
//! it forever); a record belongs to its device or that fieldworker's other devices; a
//! participant code to one participant record; a push has a maximum size; an upload belongs
//! to the device that started it.

mod support;

use attune_core::attachment::upload_checksum;
use attune_core::sync::ErrorCode;
use attune_core::sync::MAX_PUSH_ENVELOPES;
use attune_core::sync::api::{UPLOAD_CHECKSUM, UPLOAD_OFFSET};
use attune_core::{
    Authorship, BlobId, DeviceId, DeviceKey, Envelope, Kind, Links, ProfileId, RecordId, Revision,
    Timestamp, seal_envelope,
};
use attune_server::store::SqliteStore;
use serde_json::{Value, json};
use support::TestServer;

struct Tablet {
    id: DeviceId,
    key: DeviceKey,
    token: String,
}

impl Tablet {
    async fn enrol(server: &TestServer, fieldworker: &str) -> Self {
        let key = DeviceKey::generate().unwrap();
        let id = DeviceId::new(Timestamp(1));
        let token = server.enrol_for(fieldworker, &key, id).await;
        Self { id, key, token }
    }

    fn by(&self) -> Authorship {
        Authorship {
            device: self.id,
            author: ProfileId::new(Timestamp(1)),
            time: Timestamp(1_750_000_000_000),
        }
    }

    fn first(&self, kind: Kind, body: &str) -> Revision {
        Revision::first(
            RecordId::new(Timestamp(1)),
            kind,
            Links::default(),
            body.as_bytes().to_vec(),
            self.by(),
        )
    }

    fn seal(&self, server: &TestServer, revision: &Revision, code: Option<&str>) -> Envelope {
        seal_envelope(
            revision,
            code.map(str::to_owned),
            &server.study.public_key(),
            &self.key,
        )
        .unwrap()
    }

    /// Pushes over HTTP; the status and the JSON answer.
    async fn push(&self, server: &TestServer, envelopes: &[Envelope]) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("http://{}/api/push", server.addr))
            .bearer_auth(&self.token)
            .json(&json!({ "envelopes": envelopes }))
            .send()
            .await
            .expect("push");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }
}

async fn start() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let store = std::sync::Arc::new(SqliteStore::open(&data).await.unwrap());
    (TestServer::start(store, data).await, dir)
}

/// Each result's (outcome, reason).
fn outcomes(answer: &Value) -> Vec<(String, Option<String>)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            (
                result["outcome"].as_str().unwrap().to_owned(),
                result["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn conflict(reason: &str) -> (String, Option<String>) {
    ("conflict".into(), Some(reason.into()))
}

fn stored() -> (String, Option<String>) {
    ("stored".into(), None)
}

#[tokio::test]
async fn a_gap_or_a_parent_that_does_not_match_is_kept_as_a_conflict_with_its_reason() {
    let (server, _dir) = start().await;
    let tablet = Tablet::enrol(&server, "Ana").await;
    let first = tablet.first(Kind::InterviewNote, "rev 1");
    let second = first.next(b"rev 2".to_vec(), tablet.by()).unwrap();
    let third = second.next(b"rev 3".to_vec(), tablet.by()).unwrap();
    let mut forged_parent = first
        .next(b"rev 2, elsewhere".to_vec(), tablet.by())
        .unwrap();
    forged_parent.parent_hash = Some(third.hash);
    forged_parent.hash = forged_parent.compute_hash();

    // Rev 1 and rev 3 (rev 2 missing), and a rev 2 whose parent is not rev 1.
    let (status, answer) = tablet
        .push(
            &server,
            &[
                tablet.seal(&server, &first, None),
                tablet.seal(&server, &third, None),
                tablet.seal(&server, &forged_parent, None),
            ],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        outcomes(&answer),
        vec![stored(), conflict("gap"), conflict("parent_mismatch")]
    );
    // Nothing of it in the record's history; both kept, with what was found.
    assert_eq!(server.store.envelopes().await.unwrap().len(), 1);
    let kept = server.store.kept_conflicts().await.unwrap();
    let details: Vec<String> = kept.iter().filter_map(|c| c.detail.clone()).collect();
    assert_eq!(details[0], "rev 2 of this record is not stored");
    assert!(details[1].contains(&first.hash.to_hex()), "{details:?}");

    // The real rev 2 arrives: stored, and rev 3 (which waited for it) with it.
    let (_, answer) = tablet
        .push(&server, &[tablet.seal(&server, &second, None)])
        .await;
    assert_eq!(outcomes(&answer), vec![stored()]);
    let revs: Vec<u32> = server
        .store
        .envelopes()
        .await
        .unwrap()
        .iter()
        .map(|s| s.envelope.rev)
        .collect();
    assert_eq!(revs, vec![1, 2, 3]);
    assert_eq!(server.store.kept_conflicts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_record_of_another_fieldworkers_tablet_is_kept_apart_and_a_re_enrolled_tablet_continues()
{
    let (server, _dir) = start().await;
    let anas = Tablet::enrol(&server, "Ana").await;
    let bens = Tablet::enrol(&server, "Ben").await;
    let anas_new = Tablet::enrol(&server, "Ana").await;
    let first = anas.first(Kind::InterviewNote, "Ana's note");
    let (_, answer) = anas
        .push(&server, &[anas.seal(&server, &first, None)])
        .await;
    assert_eq!(outcomes(&answer), vec![stored()]);

    let hijack = first.next(b"Ben's words".to_vec(), bens.by()).unwrap();
    let (status, answer) = bens
        .push(&server, &[bens.seal(&server, &hijack, None)])
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(outcomes(&answer), vec![conflict("owned_by_another_device")]);
    assert_eq!(server.store.envelopes().await.unwrap().len(), 1);

    let continued = first
        .next(b"Ana, new tablet".to_vec(), anas_new.by())
        .unwrap();
    let (_, answer) = anas_new
        .push(&server, &[anas_new.seal(&server, &continued, None)])
        .await;
    assert_eq!(outcomes(&answer), vec![stored()]);
    let stored = server.store.envelopes().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].device_id, anas_new.id.to_string());
}

#[tokio::test]
async fn a_participant_code_another_participant_record_holds_is_kept_as_a_conflict() {
    let (server, _dir) = start().await;
    let anas = Tablet::enrol(&server, "Ana").await;
    let bens = Tablet::enrol(&server, "Ben").await;
    let carer = anas.first(Kind::Participant, r#"{"code":"C01"}"#);
    let (_, answer) = anas
        .push(&server, &[anas.seal(&server, &carer, Some("C01"))])
        .await;
    assert_eq!(outcomes(&answer), vec![stored()]);
    let other = bens.first(Kind::Participant, r#"{"code":"C01"}"#);
    let envelope = bens.seal(&server, &other, Some("C01"));
    let (status, answer) = bens.push(&server, std::slice::from_ref(&envelope)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(outcomes(&answer), vec![conflict("code_taken")]);
    // Kept as it came, never renamed.
    let kept = server.store.kept_conflicts().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].stored.envelope, envelope);
    assert_eq!(
        kept[0].stored.envelope.participant_code.as_deref(),
        Some("C01")
    );
}

#[tokio::test]
async fn a_push_over_the_maximum_is_refused_whole() {
    let (server, _dir) = start().await;
    let tablet = Tablet::enrol(&server, "Ana").await;
    let envelopes: Vec<Envelope> = (0..=MAX_PUSH_ENVELOPES)
        .map(|n| {
            let note = tablet.first(Kind::InterviewNote, &format!("note {n}"));
            tablet.seal(&server, &note, None)
        })
        .collect();
    let (status, answer) = tablet.push(&server, &envelopes).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], ErrorCode::TooManyEnvelopes.as_str());
    assert_eq!(answer["limit"], MAX_PUSH_ENVELOPES);
    assert!(server.store.envelopes().await.unwrap().is_empty());
    // The maximum itself is taken.
    let (status, answer) = tablet.push(&server, &envelopes[..MAX_PUSH_ENVELOPES]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        server.store.envelopes().await.unwrap().len(),
        MAX_PUSH_ENVELOPES
    );
}

#[tokio::test]
async fn an_upload_started_by_another_device_is_refused() {
    let (server, _dir) = start().await;
    let owner = Tablet::enrol(&server, "Ana").await;
    let other = Tablet::enrol(&server, "Ana").await;
    let sealed = vec![7u8; 4096];
    let sha256 = attune_core::attachment::sha256_hex(&sealed);
    let client = reqwest::Client::new();
    let base = format!("http://{}/api/uploads", server.addr);
    let create =
        json!({ "blob_id": BlobId::new(Timestamp(1)), "length": sealed.len(), "sha256": sha256 });
    let created = client
        .post(&base)
        .bearer_auth(&owner.token)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let patch = |token: &str, piece: &[u8]| {
        client
            .patch(format!("{base}/{sha256}"))
            .bearer_auth(token)
            .header(UPLOAD_OFFSET, "0")
            .header(UPLOAD_CHECKSUM, upload_checksum(piece))
            .header("content-type", "application/offset+octet-stream")
            .body(piece.to_vec())
    };

    // Another device (even the same fieldworker's) may not announce, read or extend it.
    let announced = client
        .post(&base)
        .bearer_auth(&other.token)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(announced.status(), 403);
    let body: Value = announced.json().await.unwrap();
    assert_eq!(body["error"], ErrorCode::UploadOfAnotherDevice.as_str());
    let head = client
        .head(format!("{base}/{sha256}"))
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 403);
    let appended = patch(&other.token, &sealed[..1024]).send().await.unwrap();
    assert_eq!(appended.status(), 403);
    let body: Value = appended.json().await.unwrap();
    assert_eq!(body["error"], ErrorCode::UploadOfAnotherDevice.as_str());

    // Nothing was appended: the owner goes on from 0.
    let head = client
        .head(format!("{base}/{sha256}"))
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()[UPLOAD_OFFSET], "0");
    let appended = patch(&owner.token, &sealed).send().await.unwrap();
    assert_eq!(appended.status(), 204);
}
