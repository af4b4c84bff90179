//! One error type for every API response, rendered as `{"error": code, "message": text}`.

use attune_core::sync::api::UPLOAD_OFFSET;
use attune_core::sync::{ErrorBody, ErrorCode};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// An API failure, as a client sees it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No endpoint exists at this path.
    #[error("No API endpoint at {path}")]
    NotFound { path: String },
    /// The database failed; details go to the log, not to the client.
    #[error("The database is unavailable")]
    Store(#[from] StoreError),
    /// No `Authorization: Bearer <device token>` header.
    #[error("This request needs a device token (Authorization: Bearer ...)")]
    MissingToken,
    /// The token belongs to no device.
    #[error("Unknown device token: enrol this device again")]
    UnknownToken,
    /// The device was revoked by the study team.
    #[error("This device was revoked: {reason}")]
    DeviceRevoked { reason: String },
    /// The body is not what the endpoint takes.
    #[error("Malformed request: {0}")]
    Malformed(String),
    /// An envelope names another device than the one whose token was sent.
    #[error("Envelope {index} was made on another device than this token's")]
    WrongDevice { index: usize },
    /// An envelope's signature does not verify with the device's key.
    #[error("Envelope {index} has a bad signature")]
    BadSignature { index: usize },
    /// The body is over the limit.
    #[error("The request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// A push batch of more envelopes than the server takes: nothing was stored.
    #[error(
        "A push takes at most {limit} envelopes, this one had {sent}: nothing was stored, send smaller batches"
    )]
    TooManyEnvelopes { sent: usize, limit: usize },
    /// An upload another device started: only that device may read or extend it.
    #[error("This upload was started by another device")]
    UploadOfAnotherDevice,
    /// Too many enrolment attempts from this address.
    #[error("Too many enrolment attempts: wait a minute and try again")]
    RateLimited,
    /// The enrolment code is unknown, expired or used.
    #[error("{message}")]
    EnrolmentRefused {
        code: ErrorCode,
        message: &'static str,
    },
    /// Another device is enrolled with this device id.
    #[error("A device with this id is already enrolled")]
    DeviceIdTaken,
    /// `attune-server study init` has not been run.
    #[error("The study has no key yet: run `attune-server study init`")]
    StudyNotInitialised,
    /// The study was made before study instructions were signed and has no signing key.
    #[error(
        "The study has no signing key yet: run `attune-server study upgrade-key` before enrolling devices"
    )]
    StudyNotSigned,
    /// No upload with this SHA-256 was created (`POST /api/uploads` first).
    #[error("No upload named {sha256}: create it with POST /api/uploads first")]
    UploadNotFound { sha256: String },
    /// An upload with this SHA-256 exists for another blob id or length.
    #[error("An upload with this SHA-256 already exists with another blob id or length")]
    UploadConflict,
    /// A piece does not start at the server's offset (or the upload is already complete).
    #[error("The upload is at offset {server_offset}: send from there")]
    UploadOffsetMismatch { server_offset: u64 },
    /// A piece's `Upload-Checksum` does not match its bytes: nothing was appended.
    #[error("The piece does not match its Upload-Checksum: nothing was appended, send it again")]
    UploadChecksumMismatch,
    /// The whole upload's SHA-256 does not match its name: the partial upload was deleted.
    #[error("The uploaded bytes do not match their SHA-256: the upload was discarded, start again")]
    UploadHashMismatch,
    /// The device has too many unfinished uploads, or too many bytes in them.
    #[error(
        "This tablet has {uploads} uploads ({megabytes} MB) started and not finished: the \
         server takes no more until those are sent (sync again to finish them)"
    )]
    UploadQuotaExceeded { uploads: u64, megabytes: u64 },
    /// A PATCH body that is not `application/offset+octet-stream`.
    #[error("Upload pieces must be sent as Content-Type: application/offset+octet-stream")]
    UnsupportedMediaType,
    /// The blob folder failed; details go to the log.
    #[error("The server could not store the upload")]
    Blobs(#[from] std::io::Error),
    /// A console request without a valid session (cookie missing, unknown or expired).
    #[error("Sign in to the console first")]
    SignInRequired,
    /// The signed-in member's role does not allow this.
    #[error("Your role ({role}) does not allow this")]
    Forbidden { role: &'static str },
    /// The invitation is unknown, used or expired.
    #[error("{message}")]
    InvitationInvalid { message: &'static str },
    /// A passkey ceremony was refused (why, without secrets).
    #[error("The passkey was refused: {0}")]
    PasskeyRefused(String),
    /// A state-changing console request from another origin (or naming none).
    #[error(
        "This request did not come from the console's own page (its Origin header is missing \
         or foreign, or this address is not the server's --public-url): refused"
    )]
    CrossSiteRefused,
    /// Another study instruction took this number meanwhile: sign again with the next.
    #[error(
        "Another study instruction took number {seq} meanwhile: nothing was recorded, sign it \
         again with the next number"
    )]
    InstructionSeqTaken { seq: u64 },
    /// The instruction's signature is not the study signing key's, or it is not current.
    #[error("{0}")]
    InstructionSignatureInvalid(String),
    /// The instruction breaks a rule (in words): nothing was recorded.
    #[error("Nothing was recorded: {0}")]
    InstructionRefused(String),
    /// A team record whose signature is not the study signing key's.
    #[error(
        "This team record is not signed by this study's signing key: open this study's key \
         file in the console and save it again"
    )]
    TeamRecordSignatureInvalid,
    /// Another team record is stored with this id.
    #[error("Another team record is stored with this id: save it again to make a new one")]
    TeamRecordIdTaken,
}

impl AppError {
    /// Stable machine-readable code clients can match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::NotFound { .. } => ErrorCode::NotFound,
            AppError::Store(_) => ErrorCode::DatabaseUnavailable,
            AppError::MissingToken => ErrorCode::MissingToken,
            AppError::UnknownToken => ErrorCode::UnknownDevice,
            AppError::DeviceRevoked { .. } => ErrorCode::DeviceRevoked,
            AppError::Malformed(_) => ErrorCode::Malformed,
            AppError::WrongDevice { .. } => ErrorCode::WrongDevice,
            AppError::BadSignature { .. } => ErrorCode::BadSignature,
            AppError::TooLarge { .. } => ErrorCode::TooLarge,
            AppError::TooManyEnvelopes { .. } => ErrorCode::TooManyEnvelopes,
            AppError::UploadOfAnotherDevice => ErrorCode::UploadOfAnotherDevice,
            AppError::RateLimited => ErrorCode::RateLimited,
            AppError::EnrolmentRefused { code, .. } => code.clone(),
            AppError::DeviceIdTaken => ErrorCode::DeviceIdTaken,
            AppError::StudyNotInitialised => ErrorCode::StudyNotInitialised,
            AppError::StudyNotSigned => ErrorCode::StudyNotSigned,
            AppError::UploadNotFound { .. } => ErrorCode::UploadNotFound,
            AppError::UploadConflict => ErrorCode::UploadConflict,
            AppError::UploadOffsetMismatch { .. } => ErrorCode::UploadOffsetMismatch,
            AppError::UploadChecksumMismatch => ErrorCode::UploadChecksumMismatch,
            AppError::UploadHashMismatch => ErrorCode::UploadHashMismatch,
            AppError::UploadQuotaExceeded { .. } => ErrorCode::UploadQuotaExceeded,
            AppError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            AppError::Blobs(_) => ErrorCode::BlobStorageFailed,
            AppError::SignInRequired => ErrorCode::SignInRequired,
            AppError::Forbidden { .. } => ErrorCode::Forbidden,
            AppError::InvitationInvalid { .. } => ErrorCode::InvitationInvalid,
            AppError::PasskeyRefused(_) => ErrorCode::PasskeyRefused,
            AppError::CrossSiteRefused => ErrorCode::CrossSiteRefused,
            AppError::InstructionSeqTaken { .. } => ErrorCode::InstructionSeqTaken,
            AppError::InstructionSignatureInvalid(_) => ErrorCode::InstructionSignatureInvalid,
            AppError::InstructionRefused(_) => ErrorCode::InstructionRefused,
            AppError::TeamRecordSignatureInvalid => ErrorCode::TeamRecordSignatureInvalid,
            AppError::TeamRecordIdTaken => ErrorCode::TeamRecordIdTaken,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::MissingToken | AppError::UnknownToken => StatusCode::UNAUTHORIZED,
            AppError::DeviceRevoked { .. } | AppError::EnrolmentRefused { .. } => {
                StatusCode::FORBIDDEN
            }
            AppError::Malformed(_)
            | AppError::WrongDevice { .. }
            | AppError::BadSignature { .. } => StatusCode::BAD_REQUEST,
            AppError::TooLarge { .. } | AppError::TooManyEnvelopes { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AppError::UploadOfAnotherDevice => StatusCode::FORBIDDEN,
            AppError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            AppError::DeviceIdTaken | AppError::StudyNotInitialised | AppError::StudyNotSigned => {
                StatusCode::CONFLICT
            }
            AppError::UploadNotFound { .. } => StatusCode::NOT_FOUND,
            AppError::UploadConflict | AppError::UploadOffsetMismatch { .. } => {
                StatusCode::CONFLICT
            }
            // tus's checksum extension: 460 Checksum Mismatch.
            AppError::UploadChecksumMismatch => {
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
            }
            AppError::UploadHashMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::UploadQuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Blobs(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::SignInRequired => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. }
            | AppError::InvitationInvalid { .. }
            | AppError::PasskeyRefused(_)
            | AppError::CrossSiteRefused => StatusCode::FORBIDDEN,
            AppError::InstructionSeqTaken { .. } => StatusCode::CONFLICT,
            AppError::InstructionSignatureInvalid(_) => StatusCode::BAD_REQUEST,
            AppError::InstructionRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TeamRecordSignatureInvalid => StatusCode::BAD_REQUEST,
            AppError::TeamRecordIdTaken => StatusCode::CONFLICT,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Store(err) = &self {
            tracing::error!(error = %err, "database error");
        }
        if let AppError::Blobs(err) = &self {
            tracing::error!(error = %err, "blob folder error");
        }
        let mut body = ErrorBody::new(self.code(), self.to_string());
        if let AppError::DeviceRevoked { reason } = &self {
            body.reason = Some(reason.clone());
        }
        if let AppError::TooManyEnvelopes { limit, .. } = &self {
            body.limit = Some(*limit);
        }
        if let AppError::UploadOffsetMismatch { server_offset } = &self {
            body.offset = Some(*server_offset);
            return (
                self.status(),
                [
                    (UPLOAD_OFFSET, server_offset.to_string()),
                    ("cache-control", "no-store".to_owned()),
                ],
                Json(body),
            )
                .into_response();
        }
        (self.status(), Json(body)).into_response()
    }
}
