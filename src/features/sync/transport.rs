//! The sync engine's [`Transport`] on the browser's `fetch`, to this app's own server (the
//! Content-Security-Policy allows no other).

use attune_core::attachment::upload_checksum;
use attune_core::sync::api::{UPLOAD_CHECKSUM, UPLOAD_OFFSET};
use attune_core::sync::{
    ErrorCode, PullResponse, PushRequest, PushResponse, ReserveRequest, ReserveResponse, Transport,
    TransportError, UploadCreate, UploadState,
};

use super::http::{self, HttpError};

/// How often a request that failed for a passing reason (network, 5xx, 429) is tried again
/// within one run, waiting a little longer each time. The run itself is repeated later.
const ATTEMPTS: u32 = 3;

/// `fetch` to the enrolled server with the device token.
pub struct FetchTransport {
    server: String,
    token: String,
}

impl FetchTransport {
    /// A transport to `server` (its origin) authenticated by the device `token`.
    pub fn new(server: &str, token: &str) -> Self {
        Self {
            server: server.to_owned(),
            token: token.to_owned(),
        }
    }

    /// Runs `request` until it succeeds, fails for good, or the attempts are used up.
    async fn retrying<R, F, Fut>(&self, request: F) -> Result<R, TransportError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<R, HttpError>>,
    {
        let mut attempt = 1;
        loop {
            let error = match request().await {
                Ok(value) => return Ok(value),
                Err(error) => to_transport_error(error),
            };
            // Offline: no point waiting here; the run stops and starts again when online.
            if attempt >= ATTEMPTS || !error.is_retryable() || !http::online() {
                return Err(error);
            }
            gloo_timers::future::TimeoutFuture::new(500 * 2u32.pow(attempt)).await;
            attempt += 1;
        }
    }
}

pub(super) fn to_transport_error(error: HttpError) -> TransportError {
    match error {
        HttpError::Network(message) => TransportError::Network(message),
        HttpError::Body(message) => TransportError::Status {
            status: 200,
            code: ErrorCode::UnreadableAnswer,
            message,
        },
        HttpError::Status {
            status,
            code,
            message,
            reason,
            upload_offset,
        } => match (&code, upload_offset) {
            (ErrorCode::DeviceRevoked, _) => TransportError::Revoked {
                reason: reason.unwrap_or(message),
            },
            (_, Some(server_offset)) if status == 409 => {
                TransportError::OffsetMismatch { server_offset }
            }
            _ => TransportError::Status {
                status,
                code,
                message,
            },
        },
    }
}

impl Transport for FetchTransport {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        self.retrying(|| http::post_json(&self.server, "/api/push", Some(&self.token), request))
            .await
    }

    async fn pull(&self, after: i64) -> Result<PullResponse, TransportError> {
        let path = format!("/api/pull?after={after}");
        self.retrying(|| http::get_json(&self.server, &path, Some(&self.token)))
            .await
    }

    async fn reserve_codes(
        &self,
        request: &ReserveRequest,
    ) -> Result<ReserveResponse, TransportError> {
        // Retried like the rest: a lost answer's blocks come again (`after`), none is burned.
        self.retrying(|| {
            http::post_json(
                &self.server,
                "/api/codes/reserve",
                Some(&self.token),
                request,
            )
        })
        .await
    }

    async fn upload_create(&self, upload: &UploadCreate) -> Result<UploadState, TransportError> {
        self.retrying(|| http::post_json(&self.server, "/api/uploads", Some(&self.token), upload))
            .await
    }

    async fn upload_append(
        &self,
        sha256: &str,
        offset: u64,
        piece: &[u8],
    ) -> Result<u64, TransportError> {
        let path = format!("/api/uploads/{sha256}");
        let headers = [
            (UPLOAD_OFFSET, offset.to_string()),
            (UPLOAD_CHECKSUM, upload_checksum(piece)),
            ("Content-Type", "application/offset+octet-stream".to_owned()),
        ];
        // Not retried here: after a lost answer the piece may be on the server, and only
        // the engine, asking the offset again, knows where to resume.
        let response = http::patch_bytes(&self.server, &path, Some(&self.token), &headers, piece)
            .await
            .map_err(to_transport_error)?;
        http::upload_offset(&response).ok_or_else(|| TransportError::Status {
            status: response.status(),
            code: ErrorCode::UnreadableAnswer,
            message: "the server's answer has no Upload-Offset".into(),
        })
    }
}
