//! What the sync tests over real HTTP share: a server on port 0 with an initialised study, a
//! device enrolled over HTTP, and the sync engine's [`Transport`] on reqwest.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use attune_core::attachment::upload_checksum;
use attune_core::sync::{
    EnrolRequest, EnrolResponse, PullResponse, PushRequest, PushResponse, ReserveRequest,
    ReserveResponse, Transport, TransportError, UploadCreate, UploadState,
};
use attune_core::{DeviceId, DeviceKey, StudyKeyPair, Timestamp};
use attune_server::api::{normalise_code, sha256_hex};
use attune_server::{AppState, Store, router};
use tokio::net::TcpListener;

/// Serves `app` on 127.0.0.1, port 0 (with the client's address, for the enrolment rate
/// limit) until the test ends; returns where.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

/// A running server and what the tests need to look inside it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub study: StudyKeyPair,
    pub data_dir: std::path::PathBuf,
}

impl TestServer {
    /// Serves `store` (study initialised here) on 127.0.0.1, port 0. `data_dir` holds blobs.
    pub async fn start(store: Arc<dyn Store>, data_dir: std::path::PathBuf) -> Self {
        let study = StudyKeyPair::generate();
        store
            .set_study_public_key(&study.public_key().to_text(), Timestamp(0))
            .await
            .expect("study key set");
        let app =
            router(AppState::new(store.clone(), data_dir.join("dist")).with_data_dir(&data_dir));
        let addr = serve(app).await;
        Self {
            addr,
            store,
            study,
            data_dir,
        }
    }

    /// Creates an enrolment code and redeems it over HTTP for a new device.
    pub async fn enrol(&self, device_key: &DeviceKey, device_id: DeviceId) -> String {
        let code = format!("CODE-{device_id}");
        self.store
            .create_enrolment_code(
                &sha256_hex(&normalise_code(&code)),
                "Ana",
                Timestamp(i64::MAX),
                Timestamp(0),
            )
            .await
            .expect("code created");
        let response = reqwest::Client::new()
            .post(format!("http://{}/api/enrol", self.addr))
            .json(&EnrolRequest {
                code,
                device_public_key: device_key.public_key().to_text(),
                device_name: "Tablet 1".into(),
                device_id: Some(device_id),
            })
            .send()
            .await
            .expect("enrolment request");
        assert_eq!(response.status(), 200, "enrolment");
        let enrolled: EnrolResponse = response.json().await.expect("enrolment response");
        assert_eq!(enrolled.device_id, device_id);
        assert_eq!(enrolled.study_public_key, self.study.public_key().to_text());
        enrolled.device_token
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
        let client = reqwest::Client::builder()
            // A fault proxy may leave a request hanging; never wait forever.
            .timeout(Duration::from_secs(10))
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
                Err(error) => Err(TransportError::Network(error.to_string())),
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
    let body: serde_json::Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(error) => return TransportError::Network(error.to_string()),
    };
    let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
    match (status, text("error").as_str(), offset) {
        (403, "device_revoked", _) => TransportError::Revoked {
            reason: text("reason"),
        },
        (409, _, Some(server_offset)) => TransportError::OffsetMismatch { server_offset },
        _ => TransportError::Status {
            status,
            code: text("error"),
            message: text("message"),
        },
    }
}

fn upload_offset(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("upload-offset")?
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
        .map_err(|error| TransportError::Network(error.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|error| TransportError::Network(error.to_string()))
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
                    .header("upload-offset", offset.to_string())
                    .header("upload-checksum", upload_checksum(piece))
                    .header("content-type", "application/offset+octet-stream")
                    .body(piece.to_vec())
            },
            |response| async move {
                if response.status() != 204 {
                    return Err(error_of(response).await);
                }
                upload_offset(&response).ok_or_else(|| TransportError::Status {
                    status: 204,
                    code: String::new(),
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
