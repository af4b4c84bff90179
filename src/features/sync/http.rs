//! The few HTTP calls sync makes, with the browser's `fetch` (through gloo-net, which the
//! router already brings in). Errors keep the server's `{"error", "message"}` body.

use attune_core::sync::api::UPLOAD_OFFSET;
use attune_core::sync::{ErrorBody, ErrorCode};
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a request failed.
#[derive(Debug, Clone)]
pub enum HttpError {
    /// No answer: offline, the server down, the connection cut.
    Network(String),
    /// The server answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's error code (`error` in the body); [`ErrorCode::Unknown`] with an empty
        /// code when the body is not an error body (a proxy's page).
        code: ErrorCode,
        /// The server's message, or the status text.
        message: String,
        /// `reason` in the body (a revoked device's reason).
        reason: Option<String>,
        /// The `Upload-Offset` header, if the server sent one.
        upload_offset: Option<u64>,
    },
    /// The answer was not what the API promises.
    Body(String),
}

/// Whether the browser believes it has a network.
pub fn online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

fn url(server: &str, path: &str) -> String {
    format!("{}{path}", server.trim_end_matches('/'))
}

fn with_token(builder: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    let builder = builder.header("Cache-Control", "no-store");
    match token {
        Some(token) => builder.header("Authorization", &format!("Bearer {token}")),
        None => builder,
    }
}

/// Sends a request built by `build`, mapping a failed fetch and an error status.
pub async fn send(request: Result<Request, gloo_net::Error>) -> Result<Response, HttpError> {
    let request = request.map_err(|e| HttpError::Body(e.to_string()))?;
    let response = request
        .send()
        .await
        .map_err(|e| HttpError::Network(e.to_string()))?;
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let upload_offset = upload_offset(&response);
    let body: Option<ErrorBody> = response.json().await.ok();
    Err(match body {
        Some(body) => HttpError::Status {
            status,
            code: body.error,
            message: body.message,
            reason: body.reason,
            upload_offset,
        },
        None => HttpError::Status {
            status,
            code: ErrorCode::Unknown(String::new()),
            message: format!("HTTP status {status}"),
            reason: None,
            upload_offset,
        },
    })
}

/// The `Upload-Offset` header.
pub fn upload_offset(response: &Response) -> Option<u64> {
    response
        .headers()
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.trim().parse().ok())
}

/// `POST` JSON, read JSON.
pub async fn post_json<T: Serialize, R: DeserializeOwned>(
    server: &str,
    path: &str,
    token: Option<&str>,
    body: &T,
) -> Result<R, HttpError> {
    let request = with_token(Request::post(&url(server, path)), token).json(body);
    read_json(send(request).await?).await
}

/// `GET` JSON.
pub async fn get_json<R: DeserializeOwned>(
    server: &str,
    path: &str,
    token: Option<&str>,
) -> Result<R, HttpError> {
    let request = with_token(Request::get(&url(server, path)), token).build();
    read_json(send(request).await?).await
}

/// `PATCH` raw bytes with extra headers; the answer itself (for its headers).
pub async fn patch_bytes(
    server: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Response, HttpError> {
    let mut builder = with_token(Request::patch(&url(server, path)), token);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let bytes = js_sys::Uint8Array::from(body);
    send(builder.body(bytes)).await
}

async fn read_json<R: DeserializeOwned>(response: Response) -> Result<R, HttpError> {
    response
        .json()
        .await
        .map_err(|e| HttpError::Body(e.to_string()))
}
