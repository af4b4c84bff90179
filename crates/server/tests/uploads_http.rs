//! Attachment uploads over real HTTP on port 0, with a real SQLite file and blob folder:
//! create, HEAD, PATCH; every refusal leaves the held bytes as they were; and a 20 MB upload
//! cut off mid-piece resumes from the server's offset. Then `attune-server export` writes an
//! uploaded attachment out byte for byte. The blob store suite runs on the blob folder and on
//! an S3 bucket (s3s-fs), and an upload over HTTP resumes on a second server sharing the bucket.

#[path = "uploads_http/blob_conformance.rs"]
mod blob_conformance;
mod support;

use attune_core::sync::ErrorCode;
use attune_core::sync::api::{UPLOAD_LENGTH, UPLOAD_OFFSET};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use attune_core::attachment::{UPLOAD_PIECE, sha256_hex};
use attune_core::{
    AttachmentBody, Authorship, BlobId, DeviceId, DeviceKey, Envelope, KdfParams, Kind, Links,
    ParticipantId, ProfileId, RecordId, Revision, StudyKeyFile, StudyKeyPair, StudyPublicKey,
    Timestamp, open_attachment, seal_attachment, seal_envelope,
};
use attune_server::blobs::{BlobFolder, BlobStore};
use attune_server::store::{NewDevice, SqliteStore};
use attune_server::{AppState, Store, router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Server {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    data: PathBuf,
    study: StudyKeyPair,
    _dir: TempDir,
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

impl Reply {
    fn offset(&self) -> u64 {
        self.headers[UPLOAD_OFFSET].parse().unwrap()
    }
}

impl Server {
    async fn start() -> Self {
        Self::start_with_blobs(None).await
    }

    /// A server keeping its uploads in `blobs` (the data dir's folder without).
    async fn start_with_blobs(blobs: Option<BlobStore>) -> Self {
        let dir = TempDir::new().unwrap();
        let data = dir.path().join("data");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data).await.unwrap());
        let mut state = AppState::new(store.clone(), dir.path().join("dist")).with_data_dir(&data);
        if let Some(blobs) = blobs {
            state = state.with_blobs(blobs);
        }
        let app = router(state);
        let addr = support::serve(app).await;
        Self {
            addr,
            store,
            data,
            study: StudyKeyPair::generate(),
            _dir: dir,
        }
    }

    /// An enrolled device; returns its token.
    async fn device(&self) -> String {
        self.device_with_key(&DeviceKey::generate().unwrap()).await
    }

    /// A device enrolled with `key` (whose signatures export verifies); returns its token.
    async fn device_with_key(&self, key: &DeviceKey) -> String {
        let id = DeviceId::new(Timestamp(0)).to_string();
        let token = format!("token-{id}");
        self.store
            .create_enrolment_code(&id, "Ana", Timestamp(i64::MAX), Timestamp(0))
            .await
            .unwrap();
        self.store
            .enrol_device(
                &id,
                NewDevice {
                    id: id.clone(),
                    name: "Tablet".into(),
                    public_key: key.public_key().to_text(),
                    token_hash: attune_server::api::sha256_hex(&token),
                },
                Timestamp(0),
            )
            .await
            .unwrap();
        token
    }

    async fn send(&self, head: &str, body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may refuse (413) and close before a large body is written.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    fn head_of(method: &str, path: &str, token: Option<&str>, extra: &str, len: usize) -> String {
        let auth = token
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}{extra}\
             Content-Length: {len}\r\n\r\n"
        )
    }

    async fn create(&self, token: Option<&str>, request: &Value) -> Reply {
        let body = request.to_string();
        let head = Self::head_of(
            "POST",
            "/api/uploads",
            token,
            "Content-Type: application/json\r\n",
            body.len(),
        );
        self.send(&head, body.as_bytes()).await
    }

    async fn head(&self, token: Option<&str>, sha256: &str) -> Reply {
        let head = Self::head_of("HEAD", &format!("/api/uploads/{sha256}"), token, "", 0);
        self.send(&head, b"").await
    }

    fn patch_head(token: Option<&str>, sha256: &str, offset: u64, piece: &[u8]) -> String {
        let extra = format!(
            "Upload-Offset: {offset}\r\nUpload-Checksum: sha256 {}\r\n\
             Content-Type: application/offset+octet-stream\r\n",
            BASE64.encode(Sha256::digest(piece))
        );
        Self::head_of(
            "PATCH",
            &format!("/api/uploads/{sha256}"),
            token,
            &extra,
            piece.len(),
        )
    }

    async fn patch(&self, token: &str, sha256: &str, offset: u64, piece: &[u8]) -> Reply {
        self.send(&Self::patch_head(Some(token), sha256, offset, piece), piece)
            .await
    }

    /// Sends pieces of [`UPLOAD_PIECE`] bytes from `from` to the end.
    async fn upload_from(&self, token: &str, sha256: &str, bytes: &[u8], from: u64) {
        let mut offset = from;
        for piece in bytes[from as usize..].chunks(UPLOAD_PIECE) {
            let reply = self.patch(token, sha256, offset, piece).await;
            assert_eq!(reply.status, 204, "{}", reply.body);
            offset += piece.len() as u64;
            assert_eq!(reply.offset(), offset);
        }
    }

    fn blob_file(&self, sha256: &str) -> PathBuf {
        self.data.join("blobs").join(&sha256[..2]).join(sha256)
    }

    fn part_file(&self, sha256: &str) -> PathBuf {
        self.data.join("uploads").join(format!("{sha256}.part"))
    }
}

fn create_request(blob: BlobId, bytes: &[u8]) -> Value {
    json!({ "blob_id": blob, "length": bytes.len(), "sha256": sha256_hex(bytes) })
}

/// A server, an enrolled device's token, and `bytes` announced as a new upload (named by
/// its SHA-256, also returned).
async fn announced(bytes: &[u8]) -> (Server, String, String) {
    let server = Server::start().await;
    let token = server.device().await;
    let created = server
        .create(
            Some(&token),
            &create_request(BlobId::new(Timestamp(1)), bytes),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    (server, token, sha256_hex(bytes))
}

/// Sealed attachment bytes of about `size` bytes of plaintext, in 1 MiB chunks.
fn sealed(server: &Server, blob: BlobId, size: usize) -> (Vec<u8>, Vec<u8>) {
    let plaintext: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let chunks: Vec<Vec<u8>> = plaintext.chunks(1 << 20).map(<[u8]>::to_vec).collect();
    let bytes = seal_attachment(blob, &chunks, &server.study.public_key(), &[5; 32]).unwrap();
    (bytes, plaintext)
}

#[tokio::test]
async fn an_upload_is_created_appended_and_stored_under_its_hash() {
    let server = Server::start().await;
    let token = server.device().await;
    let blob = BlobId::new(Timestamp(1));
    let (bytes, plaintext) = sealed(&server, blob, 2_500_000);
    let sha = sha256_hex(&bytes);

    let created = server
        .create(Some(&token), &create_request(blob, &bytes))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(
        created.body,
        json!({ "offset": 0, "length": bytes.len(), "complete": false })
    );
    let head = server.head(Some(&token), &sha).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.offset(), 0);
    assert_eq!(head.headers[UPLOAD_LENGTH], bytes.len().to_string());
    assert_eq!(head.headers["cache-control"], "no-store");

    let first = server.patch(&token, &sha, 0, &bytes[..UPLOAD_PIECE]).await;
    assert_eq!(first.status, 204);
    assert_eq!(first.offset(), UPLOAD_PIECE as u64);
    // Announcing it again (a device that reloaded) answers where it stands.
    let again = server
        .create(Some(&token), &create_request(blob, &bytes))
        .await;
    assert_eq!(again.body["offset"], UPLOAD_PIECE);
    assert_eq!(again.body["complete"], false);

    server
        .upload_from(&token, &sha, &bytes, UPLOAD_PIECE as u64)
        .await;
    assert_eq!(std::fs::read(server.blob_file(&sha)).unwrap(), bytes);
    assert!(!server.part_file(&sha).exists());
    let stored = server.store.upload(&sha).await.unwrap().unwrap();
    assert_eq!(stored.blob_id, blob.to_string());
    assert!(stored.completed_at.is_some());
    let (opened_blob, opened) = open_attachment(
        &std::fs::read(server.blob_file(&sha)).unwrap(),
        server.study.private_key(),
    )
    .unwrap();
    assert_eq!((opened_blob, opened), (blob, plaintext));

    let head = server.head(Some(&token), &sha).await;
    assert_eq!(head.offset(), bytes.len() as u64);
    let complete = server
        .create(Some(&token), &create_request(blob, &bytes))
        .await;
    assert_eq!(
        complete.body,
        json!({ "offset": bytes.len(), "length": bytes.len(), "complete": true })
    );
    // A piece for a complete upload: 409 with offset = length, nothing changed.
    let late = server.patch(&token, &sha, 0, &bytes[..10]).await;
    assert_eq!(late.status, 409);
    assert_eq!(late.offset(), bytes.len() as u64);
    assert_eq!(std::fs::read(server.blob_file(&sha)).unwrap(), bytes);
}

#[tokio::test]
async fn a_piece_at_the_wrong_offset_is_refused_with_the_server_offset() {
    let bytes = vec![1u8; 3000];
    let (server, token, sha) = announced(&bytes).await;
    assert_eq!(
        server.patch(&token, &sha, 0, &bytes[..1000]).await.status,
        204
    );
    for wrong in [0, 500, 2000] {
        let reply = server.patch(&token, &sha, wrong, &bytes[..1000]).await;
        assert_eq!(reply.status, 409, "offset {wrong}");
        assert_eq!(reply.offset(), 1000);
        assert_eq!(
            reply.body["error"],
            ErrorCode::UploadOffsetMismatch.as_str()
        );
        assert_eq!(reply.body["offset"], 1000);
    }
    assert_eq!(server.head(Some(&token), &sha).await.offset(), 1000);
}

#[tokio::test]
async fn a_piece_with_a_bad_checksum_appends_nothing() {
    let bytes = vec![2u8; 3000];
    let (server, token, sha) = announced(&bytes).await;
    // The checksum of a different piece.
    let head = Server::patch_head(Some(&token), &sha, 0, &[9u8; 1000]);
    let reply = server.send(&head, &bytes[..1000]).await;
    assert_eq!(reply.status, 460, "{}", reply.body);
    assert_eq!(
        reply.body["error"],
        ErrorCode::UploadChecksumMismatch.as_str()
    );
    assert_eq!(server.head(Some(&token), &sha).await.offset(), 0);
    // No checksum at all is refused too.
    let head = Server::head_of(
        "PATCH",
        &format!("/api/uploads/{sha}"),
        Some(&token),
        "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n",
        1000,
    );
    assert_eq!(server.send(&head, &bytes[..1000]).await.status, 400);
    assert_eq!(server.head(Some(&token), &sha).await.offset(), 0);
}

#[tokio::test]
async fn an_upload_whose_bytes_do_not_match_its_name_is_discarded() {
    let bytes = vec![3u8; 3000];
    let (server, token, sha) = announced(&bytes).await;
    let mut other = bytes.clone();
    other[2999] = 4;
    assert_eq!(
        server.patch(&token, &sha, 0, &other[..2000]).await.status,
        204
    );
    assert!(server.part_file(&sha).exists());
    let last = server.patch(&token, &sha, 2000, &other[2000..]).await;
    assert_eq!(last.status, 422, "{}", last.body);
    assert_eq!(last.body["error"], ErrorCode::UploadHashMismatch.as_str());
    assert!(
        !server.part_file(&sha).exists(),
        "the partial upload is gone"
    );
    assert!(!server.blob_file(&sha).exists());
    assert_eq!(server.head(Some(&token), &sha).await.offset(), 0);
    // It can start again, with the right bytes.
    server.upload_from(&token, &sha, &bytes, 0).await;
    assert_eq!(std::fs::read(server.blob_file(&sha)).unwrap(), bytes);
}

#[tokio::test]
async fn uploads_need_an_active_enrolled_device() {
    let server = Server::start().await;
    let token = server.device().await;
    let bytes = vec![5u8; 100];
    let sha = sha256_hex(&bytes);
    let request = create_request(BlobId::new(Timestamp(1)), &bytes);
    assert_eq!(server.create(Some(&token), &request).await.status, 200);

    let no_token = server.create(None, &request).await;
    assert_eq!(
        (no_token.status, &no_token.body["error"]),
        (401, &json!(ErrorCode::MissingToken.as_str()))
    );
    let unknown = server.create(Some("not-a-token"), &request).await;
    assert_eq!(
        (unknown.status, &unknown.body["error"]),
        (401, &json!(ErrorCode::UnknownDevice.as_str()))
    );
    assert_eq!(server.head(None, &sha).await.status, 401);
    let head = Server::patch_head(Some("not-a-token"), &sha, 0, &bytes);
    assert_eq!(server.send(&head, &bytes).await.status, 401);

    let device_id = server.store.list_devices().await.unwrap()[0].id.clone();
    let revocation = attune_server::store::suite::signed(
        1,
        attune_core::sync::ControlKind::Revocation {
            device_id: device_id.parse().unwrap(),
            reason: "lost on the bus".into(),
        },
    );
    server
        .store
        .revoke_device(&device_id, &revocation)
        .await
        .unwrap();
    let revoked = server.create(Some(&token), &request).await;
    assert_eq!(revoked.status, 403);
    assert_eq!(revoked.body["error"], ErrorCode::DeviceRevoked.as_str());
    assert_eq!(server.head(Some(&token), &sha).await.status, 403);
    assert_eq!(server.patch(&token, &sha, 0, &bytes).await.status, 403);
    assert!(!server.part_file(&sha).exists(), "nothing appended");
}

#[tokio::test]
async fn malformed_and_oversized_uploads_are_refused() {
    let server = Server::start().await;
    let token = server.device().await;
    let blob = BlobId::new(Timestamp(1));
    let huge = json!({ "blob_id": blob, "length": (1u64 << 30) + 1, "sha256": "a".repeat(64) });
    let reply = server.create(Some(&token), &huge).await;
    assert_eq!(
        (reply.status, &reply.body["error"]),
        (413, &json!(ErrorCode::TooLarge.as_str()))
    );
    assert!(
        server
            .store
            .upload(&"a".repeat(64))
            .await
            .unwrap()
            .is_none()
    );
    let bad_name = json!({ "blob_id": blob, "length": 10, "sha256": "ABC" });
    assert_eq!(server.create(Some(&token), &bad_name).await.status, 400);
    assert_eq!(server.head(Some(&token), "ABC").await.status, 400);
    let unknown = server.head(Some(&token), &"b".repeat(64)).await;
    assert_eq!(unknown.status, 404);

    let bytes = vec![6u8; 9 << 20];
    let sha = sha256_hex(&bytes);
    assert_eq!(
        server
            .create(Some(&token), &create_request(blob, &bytes))
            .await
            .status,
        200
    );
    // The same name announced for another blob or length is a conflict.
    let clash =
        json!({ "blob_id": BlobId::new(Timestamp(2)), "length": bytes.len(), "sha256": sha });
    let reply = server.create(Some(&token), &clash).await;
    assert_eq!(
        (reply.status, &reply.body["error"]),
        (409, &json!(ErrorCode::UploadConflict.as_str()))
    );
    // A piece over 8 MiB.
    let reply = server.patch(&token, &sha, 0, &bytes).await;
    assert_eq!(reply.status, 413);
    // A piece past the end, and a piece of the wrong content type.
    let small = vec![7u8; 10];
    let small_sha = sha256_hex(&small);
    server
        .create(Some(&token), &create_request(blob, &small))
        .await;
    assert_eq!(
        server.patch(&token, &small_sha, 0, &[7u8; 11]).await.status,
        400
    );
    let head = Server::patch_head(Some(&token), &small_sha, 0, &small)
        .replace("application/offset+octet-stream", "application/json");
    assert_eq!(server.send(&head, &small).await.status, 415);
    assert_eq!(server.head(Some(&token), &sha).await.offset(), 0);
    assert_eq!(server.head(Some(&token), &small_sha).await.offset(), 0);
}

#[tokio::test]
async fn a_device_announcing_upload_after_upload_without_sending_is_stopped() {
    use attune_server::uploads::{MAX_UNFINISHED_BYTES, MAX_UNFINISHED_UPLOADS};
    let server = Server::start().await;
    let token = server.device().await;
    let other = server.device().await;
    let blob = BlobId::new(Timestamp(1));
    let announce = |n: u64, length: u64| {
        json!({
            "blob_id": blob,
            "length": length,
            "sha256": format!("{n:064x}"),
        })
    };
    for n in 0..MAX_UNFINISHED_UPLOADS {
        let reply = server.create(Some(&token), &announce(n, 10)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let refused = server.create(Some(&token), &announce(999, 10)).await;
    assert_eq!(
        (refused.status, &refused.body["error"]),
        (429, &json!(ErrorCode::UploadQuotaExceeded.as_str()))
    );
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("sync again")
    );
    // Resuming one already announced is always allowed; other devices have their own quota.
    assert_eq!(
        server.create(Some(&token), &announce(0, 10)).await.status,
        200
    );
    assert_eq!(
        server.create(Some(&other), &announce(999, 10)).await.status,
        200
    );
    // So are bytes: a few huge announcements use up the device's quota.
    let big = 1u64 << 30;
    for n in 0..MAX_UNFINISHED_BYTES / big - 1 {
        assert_eq!(
            server
                .create(Some(&other), &announce(2000 + n, big))
                .await
                .status,
            200
        );
    }
    let over = server.create(Some(&other), &announce(3000, big)).await;
    assert_eq!(over.status, 429, "{}", over.body);
}

#[tokio::test]
async fn two_pieces_at_once_on_one_upload_append_once() {
    let server = Arc::new(Server::start().await);
    let token = server.device().await;
    let bytes = vec![8u8; 4 << 20];
    let sha = sha256_hex(&bytes);
    server
        .create(
            Some(&token),
            &create_request(BlobId::new(Timestamp(1)), &bytes),
        )
        .await;
    let piece = &bytes[..2 << 20];
    let (a, b) = tokio::join!(
        server.patch(&token, &sha, 0, piece),
        server.patch(&token, &sha, 0, piece)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 409]);
    assert_eq!(server.head(Some(&token), &sha).await.offset(), 2 << 20);
}

#[tokio::test]
async fn a_20_mb_upload_cut_at_half_resumes_from_the_server_offset() {
    let server = Server::start().await;
    let token = server.device().await;
    let blob = BlobId::new(Timestamp(1));
    let (bytes, plaintext) = sealed(&server, blob, 20_000_000);
    let sha = sha256_hex(&bytes);
    assert_eq!(
        server
            .create(Some(&token), &create_request(blob, &bytes))
            .await
            .status,
        200
    );
    // Ten whole pieces, then the eleventh cut off after 300,000 of its bytes: the connection
    // closes with the headers promising the whole piece.
    let half = 10 * UPLOAD_PIECE;
    let mut offset = 0;
    for piece in bytes[..half].chunks(UPLOAD_PIECE) {
        assert_eq!(server.patch(&token, &sha, offset, piece).await.status, 204);
        offset += piece.len() as u64;
    }
    let cut_piece = &bytes[half..half + UPLOAD_PIECE];
    {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let head = Server::patch_head(Some(&token), &sha, half as u64, cut_piece);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&cut_piece[..300_000]).await.unwrap();
        stream.shutdown().await.unwrap();
        // Read until the server closes its side: it has given up on the request.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    }

    // The device reloads: it re-seals with the same seed (identical bytes), asks the offset.
    let (resealed, _) = sealed(&server, blob, 20_000_000);
    assert_eq!(sha256_hex(&resealed), sha);
    let resumed = server
        .create(Some(&token), &create_request(blob, &resealed))
        .await;
    assert_eq!(resumed.body["offset"], half, "{}", resumed.body);
    let head = server.head(Some(&token), &sha).await;
    assert_eq!(head.offset(), half as u64, "the cut piece appended nothing");
    server
        .upload_from(&token, &sha, &resealed, head.offset())
        .await;

    let stored = std::fs::read(server.blob_file(&sha)).unwrap();
    assert_eq!(stored.len(), bytes.len());
    assert_eq!(
        sha256_hex(&stored),
        sha,
        "the stored file's SHA-256 is its name"
    );
    assert_eq!(
        open_attachment(&stored, server.study.private_key())
            .unwrap()
            .1,
        plaintext
    );
}

/// An Attachment record for `code`, sealed and signed by `device`.
fn attachment_envelope(
    device: &(DeviceId, DeviceKey),
    study: &StudyPublicKey,
    (participant, code): (ParticipantId, &str),
    body: &AttachmentBody,
) -> (RecordId, Envelope) {
    let record = RecordId::new(Timestamp(1));
    let revision = Revision::first(
        record,
        Kind::Attachment,
        Links {
            participant: Some(participant),
            ..Links::default()
        },
        serde_json::to_vec(body).unwrap(),
        Authorship {
            device: device.0,
            author: ProfileId::new(Timestamp(1)),
            time: Timestamp(1_750_000_000_000),
        },
    );
    let envelope = seal_envelope(&revision, Some(code.into()), study, &device.1).unwrap();
    (record, envelope)
}

fn attachment_body(blob: BlobId, media_type: &str, content: &[u8]) -> AttachmentBody {
    AttachmentBody {
        blob,
        media_type: media_type.into(),
        bytes: content.len() as u64,
        duration_ms: None,
        chunks: 1,
        sha256: Some(sha256_hex(content)),
    }
}

#[tokio::test]
async fn an_uploaded_attachment_comes_out_of_the_export_byte_identical() {
    const PASSPHRASE: &str = "a long study passphrase";
    let server = Server::start().await;
    let device_key = DeviceKey::generate().unwrap();
    let token = server.device_with_key(&device_key).await;
    let device_id = server.store.list_devices().await.unwrap()[0].id.clone();
    let device = (device_id.parse::<DeviceId>().unwrap(), device_key);
    let key_file = server.data.parent().unwrap().join("study.key");
    let cheap = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };
    let (key_bytes, keys) = StudyKeyFile::create_with_params(PASSPHRASE, cheap).unwrap();
    let study = keys.private.public_key();
    let (vig_001, vig_002) = (
        ParticipantId::new(Timestamp(1)),
        ParticipantId::new(Timestamp(1)),
    );
    std::fs::write(&key_file, key_bytes).unwrap();

    // A recording, uploaded whole; a drawing of a participant who then withdraws; a recording
    // whose upload stopped half-way; and one never uploaded.
    let upload = |content: &[u8], blob: BlobId| {
        let chunks: Vec<Vec<u8>> = content.chunks(1 << 20).map(<[u8]>::to_vec).collect();
        seal_attachment(blob, &chunks, &study, &[7; 32]).unwrap()
    };
    let recording: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let drawing = b"\x89PNG a child's drawing".to_vec();
    let (recording_blob, drawing_blob, partial_blob, missing_blob) = (
        BlobId::new(Timestamp(1)),
        BlobId::new(Timestamp(1)),
        BlobId::new(Timestamp(1)),
        BlobId::new(Timestamp(1)),
    );
    for (blob, content, whole) in [
        (recording_blob, &recording, true),
        (drawing_blob, &drawing, true),
        (partial_blob, &recording, false),
    ] {
        let sealed = upload(content, blob);
        let sha = sha256_hex(&sealed);
        let created = server
            .create(Some(&token), &create_request(blob, &sealed))
            .await;
        assert_eq!(created.status, 200, "{}", created.body);
        if whole {
            server.upload_from(&token, &sha, &sealed, 0).await;
        } else {
            let reply = server.patch(&token, &sha, 0, &sealed[..UPLOAD_PIECE]).await;
            assert_eq!(reply.status, 204);
        }
    }
    let (recording_record, a) = attachment_envelope(
        &device,
        &study,
        (vig_001, "VIG-001"),
        &attachment_body(recording_blob, "audio/webm;codecs=opus", &recording),
    );
    let (_, b) = attachment_envelope(
        &device,
        &study,
        (vig_002, "VIG-002"),
        &attachment_body(drawing_blob, "image/png", &drawing),
    );
    let (partial_record, c) = attachment_envelope(
        &device,
        &study,
        (vig_001, "VIG-001"),
        &attachment_body(partial_blob, "audio/webm", &recording),
    );
    let (missing_record, d) = attachment_envelope(
        &device,
        &study,
        (vig_001, "VIG-001"),
        &attachment_body(missing_blob, "audio/webm", b"never sent"),
    );
    server
        .store
        .push(&device_id, &[a, b, c, d], Timestamp(2))
        .await
        .unwrap();
    let withdrawal = attune_server::store::suite::signed(
        1,
        attune_core::sync::ControlKind::Withdrawal {
            participant_id: vig_002,
            participant_code: "VIG-002".into(),
        },
    );
    server.store.add_withdrawal(&withdrawal).await.unwrap();
    server.store.close().await;

    let out = server.data.parent().unwrap().join("export");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_attune-server"))
        .args(["export", "--key", key_file.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .arg("--data-dir")
        .arg(&server.data)
        .env("ATTUNE_STUDY_PASSPHRASE", PASSPHRASE)
        .env_remove("ATTUNE_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("2 attachments could not be exported"),
        "{stderr}"
    );

    let relative = format!("attachments/VIG-001-{vig_001}/{recording_record}.webm");
    assert_eq!(std::fs::read(out.join(&relative)).unwrap(), recording);
    assert!(
        !out.join(format!("attachments/VIG-002-{vig_002}")).exists(),
        "withdrawn: left out"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{manifest}");
    assert_eq!(files[0]["name"], relative);
    assert_eq!(files[0]["sha256"], sha256_hex(&recording));
    let problems = manifest["attachment_problems"].as_array().unwrap();
    let problem_of = |record: RecordId| {
        problems
            .iter()
            .find(|p| p["record_id"] == record.to_string())
            .map(|p| p["problem"].as_str().unwrap().to_owned())
    };
    assert!(problem_of(partial_record).unwrap().contains("incomplete"));
    assert!(
        problem_of(missing_record)
            .unwrap()
            .contains("never uploaded")
    );

    let csv = std::fs::read_to_string(out.join("records.csv")).unwrap();
    let row = csv
        .lines()
        .find(|line| line.contains(&recording_record.to_string()))
        .unwrap();
    assert!(
        // ...,verified,quote_not_agreed
        row.ends_with(&format!(
            "\"{relative}\",\"{device_id}\",\"Ana\",true,false"
        )),
        "{row}"
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("records.json")).unwrap()).unwrap();
    let record = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record_id"] == recording_record.to_string())
        .unwrap();
    assert_eq!(record["attachment"], relative);
}

#[tokio::test]
async fn the_blob_folder_passes_the_blob_store_suite() {
    let dir = TempDir::new().unwrap();
    blob_conformance::run(|| BlobFolder::new(dir.path()).into()).await;
}

#[tokio::test]
async fn an_s3_bucket_passes_the_blob_store_suite() {
    let Some(s3) = support::s3::S3Server::start() else {
        return;
    };
    blob_conformance::run(|| s3.blobs("suite").into()).await;
    // Another prefix in the same bucket is another store.
    let other: BlobStore = s3.blobs("elsewhere").into();
    let name = sha256_hex(&[7u8; 10]);
    assert_eq!(
        other
            .append(&name, 10, 0, vec![7u8; 10].into())
            .await
            .unwrap(),
        attune_server::blobs::BlobState::Complete
    );
    assert_eq!(
        BlobStore::from(s3.blobs("suite"))
            .read(&name)
            .await
            .unwrap(),
        None
    );
    // The pieces are gone once the blob is written: only blobs/ is left under the prefix.
    let prefix = s3.root.path().join(support::s3::BUCKET).join("elsewhere");
    assert!(prefix.join("blobs").join(&name).is_file());
    let uploads = prefix.join("uploads").join(&name);
    assert!(
        !uploads.exists() || std::fs::read_dir(&uploads).unwrap().next().is_none(),
        "pieces left in {}",
        uploads.display()
    );
}

#[tokio::test]
async fn an_s3_bucket_completes_large_uploads_by_a_multipart_upload() {
    let Some(s3) = support::s3::S3Server::start() else {
        return;
    };
    // Above the limit the blob is written in parts: the suite again, all through that path.
    blob_conformance::run(|| s3.blobs("multipart").with_single_put_limit(100).into()).await;
}

#[tokio::test]
async fn an_upload_over_http_resumes_on_another_server_sharing_the_bucket() {
    let Some(s3) = support::s3::S3Server::start() else {
        return;
    };
    let server = Server::start_with_blobs(Some(s3.blobs("http").into())).await;
    let token = server.device().await;
    let blob = BlobId::new(Timestamp(1));
    let (bytes, plaintext) = sealed(&server, blob, 2_500_000);
    let sha = sha256_hex(&bytes);
    let created = server
        .create(Some(&token), &create_request(blob, &bytes))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let first = server.patch(&token, &sha, 0, &bytes[..UPLOAD_PIECE]).await;
    assert_eq!(first.status, 204, "{}", first.body);
    assert_eq!(first.offset(), UPLOAD_PIECE as u64);
    let wrong = server.patch(&token, &sha, 0, &bytes[..UPLOAD_PIECE]).await;
    assert_eq!(wrong.status, 409);
    assert_eq!(wrong.offset(), UPLOAD_PIECE as u64);
    // Nothing of the upload is in the data directory: it is all in the bucket.
    assert!(!server.part_file(&sha).exists());

    // A second server process with the same database and bucket (a new S3 client) answers the
    // offset the first acknowledged, and takes the rest.
    let state =
        AppState::new(server.store.clone(), server.data.join("dist")).with_blobs(s3.blobs("http"));
    let second = Server {
        addr: support::serve(router(state)).await,
        store: server.store.clone(),
        data: server.data.clone(),
        // Only its address is used: the study is the first server's.
        study: StudyKeyPair::generate(),
        _dir: TempDir::new().unwrap(),
    };
    let head = second.head(Some(&token), &sha).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.offset(), UPLOAD_PIECE as u64);
    second
        .upload_from(&token, &sha, &bytes, UPLOAD_PIECE as u64)
        .await;
    let stored = server.store.upload(&sha).await.unwrap().unwrap();
    assert!(stored.completed_at.is_some());
    assert!(!server.blob_file(&sha).exists());
    let complete = server
        .create(Some(&token), &create_request(blob, &bytes))
        .await;
    assert_eq!(
        complete.body,
        json!({ "offset": bytes.len(), "length": bytes.len(), "complete": true })
    );
    let read = BlobStore::from(s3.blobs("http")).read(&sha).await.unwrap();
    let (opened_blob, opened) = open_attachment(
        &read.expect("blob in the bucket"),
        server.study.private_key(),
    )
    .unwrap();
    assert_eq!((opened_blob, opened), (blob, plaintext));
}
