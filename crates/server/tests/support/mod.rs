//! What the sync tests over real HTTP share: a server on port 0 with an initialised study (its
//! study key signed by a study signing key the test holds, as the CLI's key file would), a
//! device enrolled over HTTP (challenge, fingerprint check, proof of possession), and the sync
//! engine's [`Transport`] on reqwest.
// Each test file uses its own part of this module.
#![allow(dead_code)]

pub mod postgres;
pub mod s3;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use attune_core::attachment::upload_checksum;
use attune_core::sync::api::{UPLOAD_CHECKSUM, UPLOAD_OFFSET};
use attune_core::sync::enrol::{EnrolDetails, EnrolError, EnrolTransport, Enrolled, enrol};
use attune_core::sync::{
    ControlKind, EnrolChallenge, EnrolRequest, EnrolResponse, PullResponse, PushRequest,
    PushResponse, ReserveRequest, ReserveResponse, Transport, TransportError, UploadCreate,
    UploadState,
};
use attune_core::sync::{ErrorBody, ErrorCode};
use attune_core::{
    DeviceId, DeviceKey, StudyFingerprint, StudyKeyPair, StudySigningKey, Timestamp,
};
use attune_server::api::{normalise_code, sha256_hex};
use attune_server::store::NewControlMessage;
use attune_server::{AppState, Store, router};
use tokio::net::TcpListener;

/// Serves `app` on 127.0.0.1, port 0 (with the client's address, for the enrolment rate
/// limit) until the test ends; returns where.
pub async fn serve(app: axum::Router) -> SocketAddr {
    serve_with(app, attune_server::listen::Limits::default()).await
}

/// [`serve`] with these limits on slow clients, as `attune-server serve` serves.
pub async fn serve_with(app: axum::Router, limits: attune_server::listen::Limits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(attune_server::listen::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    addr
}

/// Sets the study's keys in `store` as `study init` does: the public key, the signing key's
/// public half and its signature over the public key.
pub async fn init_study(store: &dyn Store, study: &StudyKeyPair, signing: &StudySigningKey) {
    store
        .set_study_public_key(&study.public_key().to_text(), Timestamp(0))
        .await
        .expect("study key set");
    assert!(
        store
            .set_study_signing_key(
                &signing.public_key().to_text(),
                &signing.sign_study_key(&study.public_key()),
            )
            .await
            .expect("signing key set")
    );
}

/// A running server and what the tests need to look inside it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub study: StudyKeyPair,
    /// The study signing key (the CLI's, from the key file): the server has its public half.
    pub signing: StudySigningKey,
    pub data_dir: std::path::PathBuf,
}

impl TestServer {
    /// Serves `store` (study initialised here) on 127.0.0.1, port 0. `data_dir` holds blobs.
    pub async fn start(store: Arc<dyn Store>, data_dir: std::path::PathBuf) -> Self {
        Self::start_with(store, data_dir, attune_server::listen::Limits::default()).await
    }

    /// [`TestServer::start`] with these limits on slow clients.
    pub async fn start_with(
        store: Arc<dyn Store>,
        data_dir: std::path::PathBuf,
        limits: attune_server::listen::Limits,
    ) -> Self {
        Self::start_configured(store, data_dir, limits, router).await
    }

    /// [`TestServer::start_with`] serving the router `configure` makes of the default state.
    pub async fn start_configured(
        store: Arc<dyn Store>,
        data_dir: std::path::PathBuf,
        limits: attune_server::listen::Limits,
        configure: impl FnOnce(AppState) -> axum::Router,
    ) -> Self {
        let study = StudyKeyPair::generate();
        let signing = StudySigningKey::generate().expect("signing key");
        init_study(store.as_ref(), &study, &signing).await;
        let app =
            configure(AppState::new(store.clone(), data_dir.join("dist")).with_data_dir(&data_dir));
        let addr = serve_with(app, limits).await;
        Self {
            addr,
            store,
            study,
            signing,
            data_dir,
        }
    }

    /// The fingerprint the study team gives fieldworkers.
    pub fn fingerprint(&self) -> StudyFingerprint {
        self.signing.public_key().fingerprint()
    }

    /// Creates a one-time enrolment code for Ana.
    pub async fn add_code(&self, code: &str) {
        self.add_code_for(code, "Ana").await;
    }

    /// Creates a one-time enrolment code for a fieldworker.
    pub async fn add_code_for(&self, code: &str, fieldworker: &str) {
        self.store
            .create_enrolment_code(
                &sha256_hex(&normalise_code(code)),
                fieldworker,
                Timestamp(i64::MAX),
                Timestamp(0),
            )
            .await
            .expect("code created");
    }

    /// Enrols a device over HTTP as the app does ([`attune_core::sync::enrol::enrol`]) with
    /// a fresh code and this study's fingerprint.
    pub async fn try_enrol(
        &self,
        device_key: &DeviceKey,
        device_id: DeviceId,
    ) -> Result<Enrolled, EnrolError> {
        self.try_enrol_for("Ana", device_key, device_id).await
    }

    /// [`TestServer::try_enrol`] for another fieldworker.
    pub async fn try_enrol_for(
        &self,
        fieldworker: &str,
        device_key: &DeviceKey,
        device_id: DeviceId,
    ) -> Result<Enrolled, EnrolError> {
        let code = format!("CODE-{device_id}");
        self.add_code_for(&code, fieldworker).await;
        enrol(
            &EnrolHttp::new(self.addr),
            EnrolDetails {
                code: &code,
                fingerprint: &self.fingerprint(),
                device_key,
                device_id: Some(device_id),
                device_name: "Tablet 1",
            },
        )
        .await
    }

    /// Enrols a device (see [`TestServer::try_enrol`]); its token.
    pub async fn enrol(&self, device_key: &DeviceKey, device_id: DeviceId) -> String {
        self.enrol_for("Ana", device_key, device_id).await
    }

    /// [`TestServer::enrol`] for another fieldworker.
    pub async fn enrol_for(
        &self,
        fieldworker: &str,
        device_key: &DeviceKey,
        device_id: DeviceId,
    ) -> String {
        let enrolled = self
            .try_enrol_for(fieldworker, device_key, device_id)
            .await
            .expect("enrolled");
        assert_eq!(enrolled.response.device_id, device_id);
        assert_eq!(enrolled.study.public_key, self.study.public_key());
        enrolled.response.device_token
    }

    /// A control message signed with the study signing key, numbered next.
    pub async fn signed(&self, kind: ControlKind) -> NewControlMessage {
        let seq = self.store.next_control_seq().await.expect("next seq");
        let created_at = Timestamp(1_750_000_000_000);
        NewControlMessage {
            seq,
            signature: self
                .signing
                .sign_control(seq, &kind, created_at)
                .expect("signed"),
            kind,
            created_at,
        }
    }
}

/// The enrolment endpoints on reqwest (no token: a device enrolling has none).
pub struct EnrolHttp {
    client: reqwest::Client,
    base: String,
}

impl EnrolHttp {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }
}

impl EnrolTransport for EnrolHttp {
    async fn enrol_challenge(&self) -> Result<EnrolChallenge, TransportError> {
        let response = self
            .client
            .post(format!("{}/api/enrol/challenge", self.base))
            .send()
            .await
            .map_err(|error| TransportError::Network(chain(&error)))?;
        json_of(response).await
    }

    async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, TransportError> {
        let response = self
            .client
            .post(format!("{}/api/enrol", self.base))
            .json(request)
            .send()
            .await
            .map_err(|error| TransportError::Network(chain(&error)))?;
        json_of(response).await
    }
}

/// The sync engine's transport on reqwest, retrying retryable failures with exponential
/// backoff (every sync request is idempotent).
pub struct HttpTransport {
    client: reqwest::Client,
    base: String,
    token: String,
    /// Attempts per request before giving up (the engine then stops the run).
    pub attempts: u32,
}

impl HttpTransport {
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        // A fault proxy may leave a request hanging; never wait forever.
        Self::with_timeout(addr, token, Duration::from_secs(10))
    }

    /// [`HttpTransport::new`] giving up on a request after `timeout`.
    pub fn with_timeout(addr: SocketAddr, token: &str, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("HTTP client");
        Self {
            client,
            base: format!("http://{addr}"),
            token: token.to_owned(),
            attempts: 12,
        }
    }

    /// Sends the request `make` builds, retrying with backoff; `read` turns a success into
    /// the answer.
    async fn send<R, F, Fut>(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        read: F,
    ) -> Result<R, TransportError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: std::future::Future<Output = Result<R, TransportError>>,
    {
        let mut delay = Duration::from_millis(5);
        let mut attempt = 1;
        loop {
            let result = match make().bearer_auth(&self.token).send().await {
                Ok(response) => read(response).await,
                Err(error) => Err(TransportError::Network(chain(&error))),
            };
            match result {
                Err(error)
                    if attempt < self.attempts
                        && error.is_retryable()
                        && !matches!(error, TransportError::OffsetMismatch { .. }) =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(200));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// An error answer as the engine sees it: revoked, offset mismatch or status.
async fn error_of(response: reqwest::Response) -> TransportError {
    let status = response.status().as_u16();
    let offset = upload_offset(&response);
    let body: ErrorBody = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| ErrorBody::new(ErrorCode::UnreadableAnswer, "not an error body")),
        Err(error) => return TransportError::Network(chain(&error)),
    };
    match (status, &body.error, offset) {
        (403, ErrorCode::DeviceRevoked, _) => TransportError::Revoked {
            reason: body.reason.unwrap_or_default(),
        },
        (409, _, Some(server_offset)) => TransportError::OffsetMismatch { server_offset },
        _ => TransportError::Status {
            status,
            code: body.error,
            message: body.message,
        },
    }
}

fn upload_offset(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(UPLOAD_OFFSET)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

async fn json_of<R: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<R, TransportError> {
    if !response.status().is_success() {
        return Err(error_of(response).await);
    }
    // A cut mid-body fails here, like a network failure.
    let bytes = response
        .bytes()
        .await
        .map_err(|error| TransportError::Network(chain(&error)))?;
    serde_json::from_slice(&bytes).map_err(|error| TransportError::Network(chain(&error)))
}

impl Transport for HttpTransport {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        let body = serde_json::to_vec(request).expect("push request as JSON");
        self.send(
            || {
                self.client
                    .post(format!("{}/api/push", self.base))
                    .header("content-type", "application/json")
                    .body(body.clone())
            },
            json_of,
        )
        .await
    }

    async fn pull(&self, after: i64) -> Result<PullResponse, TransportError> {
        self.send(
            || {
                self.client
                    .get(format!("{}/api/pull?after={after}", self.base))
            },
            json_of,
        )
        .await
    }

    async fn upload_create(&self, upload: &UploadCreate) -> Result<UploadState, TransportError> {
        self.send(
            || {
                self.client
                    .post(format!("{}/api/uploads", self.base))
                    .json(upload)
            },
            json_of,
        )
        .await
    }

    async fn upload_append(
        &self,
        sha256: &str,
        offset: u64,
        piece: &[u8],
    ) -> Result<u64, TransportError> {
        self.send(
            || {
                self.client
                    .patch(format!("{}/api/uploads/{sha256}", self.base))
                    .header(UPLOAD_OFFSET, offset.to_string())
                    .header(UPLOAD_CHECKSUM, upload_checksum(piece))
                    .header("content-type", "application/offset+octet-stream")
                    .body(piece.to_vec())
            },
            |response| async move {
                if response.status() != 204 {
                    return Err(error_of(response).await);
                }
                upload_offset(&response).ok_or_else(|| TransportError::Status {
                    status: 204,
                    code: ErrorCode::UnreadableAnswer,
                    message: "no Upload-Offset in the answer".into(),
                })
            },
        )
        .await
    }

    async fn reserve_codes(
        &self,
        request: &ReserveRequest,
    ) -> Result<ReserveResponse, TransportError> {
        self.send(
            || {
                self.client
                    .post(format!("{}/api/codes/reserve", self.base))
                    .json(request)
            },
            json_of,
        )
        .await
    }
}

/// An error with its causes ("error decoding response body: operation timed out").
fn chain(error: &dyn std::error::Error) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        words.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    words
}
