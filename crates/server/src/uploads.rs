//! Attachment uploads, resumable in the manner of tus: announce, ask the offset, append
//! checksummed pieces. Every request needs an active device's `Authorization: Bearer` token.
//!
//! - `POST /api/uploads` `{"blob_id", "length", "sha256"}` -> `{"offset", "length", "complete"}`.
//!   Idempotent: announcing an existing upload answers its current offset. A length over
//!   [`MAX_UPLOAD_LENGTH`] is refused (413); the same SHA-256 with another blob id or length
//!   is a conflict (409 `upload_conflict`).
//! - `HEAD /api/uploads/{sha256}` -> 200 with `Upload-Offset`, `Upload-Length`,
//!   `Cache-Control: no-store`; 404 if never announced.
//! - `PATCH /api/uploads/{sha256}` with `Upload-Offset: n`, `Upload-Checksum: sha256 <base64>`,
//!   `Content-Type: application/offset+octet-stream` and at most [`MAX_UPLOAD_PIECE`] bytes ->
//!   204 with the new `Upload-Offset`, once the piece is fsynced. Refusals: 409
//!   `upload_offset_mismatch` (with the server's `Upload-Offset`; also for a complete upload),
//!   460 `upload_checksum_mismatch` (nothing appended), 422 `upload_hash_mismatch` (the last
//!   piece completed an upload whose SHA-256 is not its name: the partial upload is deleted),
//!   415 for another content type. A body cut off in transit appends nothing.
//!
//! An upload belongs to the device that announced it: another device's `POST`, `HEAD` or
//! `PATCH` on it is refused (403 `upload_of_another_device`).

use attune_core::attachment::{MAX_UPLOAD_LENGTH, MAX_UPLOAD_PIECE, is_sha256_hex};
use attune_core::sync::api::{UPLOAD_CHECKSUM, UPLOAD_LENGTH, UPLOAD_OFFSET};
use attune_core::{UploadCreate, UploadState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::api::{AuthenticatedDevice, active, json_body, now};
use crate::blobs::{AppendError, BlobState};
use crate::error::AppError;
use crate::store::{Device, NewUpload, Upload};

const OFFSET_MEDIA_TYPE: &str = "application/offset+octet-stream";

/// The most uploads one device may have announced and not finished. A tablet sends one
/// upload at a time and resumes an interrupted one under the same name, so it never comes
/// near this; a device that announces upload after upload without sending them is stopped.
pub const MAX_UNFINISHED_UPLOADS: u64 = 32;

/// The most bytes one device's unfinished uploads may announce (8 GiB: a few long videos).
pub const MAX_UNFINISHED_BYTES: u64 = 8 << 30;

/// `POST /api/uploads`.
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UploadState>, AppError> {
    let device = active(device)?;
    let request: UploadCreate = json_body(body)?;
    check_name(&request.sha256)?;
    if request.length > MAX_UPLOAD_LENGTH {
        return Err(AppError::TooLarge {
            limit: usize::try_from(MAX_UPLOAD_LENGTH).unwrap_or(usize::MAX),
        });
    }
    // A new upload only while the device's unfinished ones stay within its quota (a device
    // announcing the same upload again, to resume it, always may).
    if state.store.upload(&request.sha256).await?.is_none() {
        let (uploads, bytes) = state.store.unfinished_uploads(&device.id).await?;
        if uploads >= MAX_UNFINISHED_UPLOADS
            || bytes.saturating_add(request.length) > MAX_UNFINISHED_BYTES
        {
            return Err(AppError::UploadQuotaExceeded {
                uploads,
                megabytes: bytes / 1_000_000,
            });
        }
    }
    let wanted = NewUpload {
        sha256: request.sha256,
        blob_id: request.blob_id.to_string(),
        length: request.length,
        device_id: device.id,
    };
    let upload = state.store.create_upload(&wanted, now()).await?;
    if upload.device_id != wanted.device_id {
        return Err(AppError::UploadOfAnotherDevice);
    }
    if upload.blob_id != wanted.blob_id || upload.length != wanted.length {
        return Err(AppError::UploadConflict);
    }
    Ok(Json(upload_state(&state, &upload).await?))
}

/// `HEAD /api/uploads/{sha256}`.
pub async fn head(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    let device = active(device)?;
    let upload = known_upload(&state, &sha256, &device).await?;
    let current = upload_state(&state, &upload).await?;
    Ok((
        StatusCode::OK,
        [
            (UPLOAD_OFFSET, current.offset.to_string()),
            (UPLOAD_LENGTH, current.length.to_string()),
            (header::CACHE_CONTROL.as_str(), "no-store".to_owned()),
        ],
    )
        .into_response())
}

/// `PATCH /api/uploads/{sha256}`.
pub async fn append(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let device = active(device)?;
    let upload = known_upload(&state, &sha256, &device).await?;
    let offset = offset_header(&headers)?;
    let checksum = checksum_header(&headers)?;
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        != Some(OFFSET_MEDIA_TYPE)
    {
        return Err(AppError::UnsupportedMediaType);
    }
    // Reading the whole body first: a piece cut off in transit never reaches the file.
    let piece = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge {
                limit: MAX_UPLOAD_PIECE,
            }
        } else {
            AppError::Malformed(rejection.body_text())
        }
    })?;
    if piece.len() > MAX_UPLOAD_PIECE {
        return Err(AppError::TooLarge {
            limit: MAX_UPLOAD_PIECE,
        });
    }
    if Sha256::digest(&piece)[..] != checksum[..] {
        return Err(AppError::UploadChecksumMismatch);
    }
    if offset.saturating_add(piece.len() as u64) > upload.length {
        return Err(AppError::Malformed(format!(
            "the piece runs past the upload's length of {} bytes",
            upload.length
        )));
    }
    let _lock = state.blobs.lock(&sha256).await;
    let new_offset = match state
        .blobs
        .append(&sha256, upload.length, offset, piece)
        .await
    {
        Ok(BlobState::Partial(held)) => held,
        Ok(BlobState::Complete) => {
            state.store.mark_upload_complete(&sha256, now()).await?;
            tracing::info!(upload = %sha256, bytes = upload.length, "upload complete");
            upload.length
        }
        Err(AppendError::OffsetMismatch(held)) => {
            return Err(AppError::UploadOffsetMismatch {
                server_offset: held,
            });
        }
        Err(AppendError::Complete) => {
            return Err(AppError::UploadOffsetMismatch {
                server_offset: upload.length,
            });
        }
        Err(AppendError::HashMismatch) => return Err(AppError::UploadHashMismatch),
        Err(AppendError::Io(error)) => return Err(AppError::Blobs(error)),
    };
    Ok((
        StatusCode::NO_CONTENT,
        [
            (UPLOAD_OFFSET, new_offset.to_string()),
            (header::CACHE_CONTROL.as_str(), "no-store".to_owned()),
        ],
    )
        .into_response())
}

fn check_name(sha256: &str) -> Result<(), AppError> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(AppError::Malformed(
            "an upload is named by the SHA-256 of its bytes: 64 lower-case hex digits".into(),
        ))
    }
}

/// The upload named `sha256`, if `device` started it: another device's is refused (403).
async fn known_upload(state: &AppState, sha256: &str, device: &Device) -> Result<Upload, AppError> {
    check_name(sha256)?;
    let upload = state
        .store
        .upload(sha256)
        .await?
        .ok_or_else(|| AppError::UploadNotFound {
            sha256: sha256.to_owned(),
        })?;
    if upload.device_id != device.id {
        return Err(AppError::UploadOfAnotherDevice);
    }
    Ok(upload)
}

/// What the blob store holds of an upload. A blob found complete whose row was not yet
/// marked (the server stopped between the rename and the update) is marked now; an upload
/// that holds all its bytes but was never completed (its final write failed after the last
/// piece) is completed now, or discarded if its bytes do not match its SHA-256.
async fn upload_state(state: &AppState, upload: &Upload) -> Result<UploadState, AppError> {
    let mut found = state.blobs.state(&upload.sha256).await?;
    if found == BlobState::Partial(upload.length) && upload.length > 0 {
        let _lock = state.blobs.lock(&upload.sha256).await;
        found = match state.blobs.finish(&upload.sha256, upload.length).await {
            Ok(finished) => finished,
            Err(AppendError::Complete) => BlobState::Complete,
            Err(AppendError::OffsetMismatch(held)) => BlobState::Partial(held),
            Err(AppendError::HashMismatch) => {
                tracing::warn!(upload = %upload.sha256, "a whole upload did not match its SHA-256: discarded");
                BlobState::Partial(0)
            }
            Err(AppendError::Io(error)) => return Err(AppError::Blobs(error)),
        };
        if found == BlobState::Complete {
            tracing::info!(upload = %upload.sha256, bytes = upload.length, "upload completed on a state query");
        }
    }
    let offset = match found {
        BlobState::Complete => {
            if upload.completed_at.is_none() {
                state
                    .store
                    .mark_upload_complete(&upload.sha256, now())
                    .await?;
            }
            return Ok(UploadState {
                offset: upload.length,
                length: upload.length,
                complete: true,
            });
        }
        BlobState::Partial(held) => held,
    };
    Ok(UploadState {
        offset,
        length: upload.length,
        complete: false,
    })
}

fn offset_header(headers: &HeaderMap) -> Result<u64, AppError> {
    headers
        .get(UPLOAD_OFFSET)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| AppError::Malformed("Upload-Offset must be a number of bytes".into()))
}

/// `Upload-Checksum: sha256 <base64 of the piece's SHA-256>` (tus's checksum extension).
fn checksum_header(headers: &HeaderMap) -> Result<[u8; 32], AppError> {
    let malformed = || {
        AppError::Malformed(
            "Upload-Checksum must be `sha256 <base64 of the piece's SHA-256>`".into(),
        )
    };
    let value = headers
        .get(UPLOAD_CHECKSUM)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(malformed)?;
    let (algorithm, digest) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !algorithm.eq_ignore_ascii_case("sha256") {
        return Err(malformed());
    }
    BASE64
        .decode(digest.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(malformed)
}
