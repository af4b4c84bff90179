//! The sync API's JSON bodies: one definition for the server, the sync engine and the app.
//!
//! - `POST /api/enrol/challenge` -> [`EnrolChallenge`]: a one-time challenge for the device to
//!   sign ([`enrol_proof_bytes`](crate::signing::enrol_proof_bytes)) and the study's public
//!   keys, to check against the fingerprint before the enrolment code is spent.
//! - `POST /api/enrol` [`EnrolRequest`] -> [`EnrolResponse`].
//! - `POST /api/push` [`PushRequest`] -> [`PushResponse`], one [`PushResult`] per envelope,
//!   in the order sent, only after the server's transaction committed.
//! - `GET /api/pull?after=CURSOR` -> [`PullResponse`]: [`ControlMessage`]s and, for a revoked
//!   device, the [`Revocation`]. Every control message is numbered (`seq`) and signed by the
//!   study signing key, which the server never holds ([`crate::signing`]).
//! - `POST /api/codes/reserve` [`ReserveRequest`] -> [`ReserveResponse`]: participant-code
//!   numbers reserved for this device (see [`crate::codes`]).

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::ids::{DeviceId, ParticipantId, RecordId};
use crate::record::ContentHash;
use crate::time::Timestamp;

/// Enrolment codes are typed by hand: case, spaces and dashes do not matter. The server stores
/// and the device signs ([`enrol_proof_bytes`](crate::signing::enrol_proof_bytes)) this form.
pub fn normalise_enrolment_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `POST /api/enrol` request: a one-time enrolment code exchanged for a device token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The one-time code the study admin gave the fieldworker (case, spaces and dashes do
    /// not matter).
    pub code: String,
    /// The device's Ed25519 public key, base64 ([`DevicePublicKey::to_text`]).
    ///
    /// [`DevicePublicKey::to_text`]: crate::DevicePublicKey::to_text
    pub device_public_key: String,
    /// A name for the device, shown in `attune-server device list`.
    pub device_name: String,
    /// The device's own id (the one in its revisions); the server makes one if absent.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// The challenge from `POST /api/enrol/challenge` (single use, expires).
    #[serde(default)]
    pub challenge: String,
    /// Proof that the device holds the key it registers: its Ed25519 signature, base64, over
    /// [`enrol_proof_bytes`](crate::signing::enrol_proof_bytes) of the challenge, the code, the
    /// device id and the public key ([`DeviceKey::sign_enrolment`]).
    ///
    /// [`DeviceKey::sign_enrolment`]: crate::DeviceKey::sign_enrolment
    #[serde(default)]
    pub proof: String,
}

/// `POST /api/enrol/challenge` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolChallenge {
    /// Random, single use: the device signs it in its [`EnrolRequest::proof`].
    pub challenge: String,
    /// When the challenge stops being accepted.
    pub expires_at: Timestamp,
    /// The study's public keys, as in [`EnrolResponse`]: the device checks them against the
    /// fingerprint it was given before it spends its enrolment code.
    pub study: StudyKeys,
}

/// The study's public keys as the server hands them to devices. The device trusts them only
/// if `signing_key` matches the fingerprint the study team gave the fieldworker and
/// `public_key_signature` verifies ([`verify_study_keys`](crate::signing::verify_study_keys)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyKeys {
    /// The study's public encryption key ([`StudyPublicKey::to_text`]).
    ///
    /// [`StudyPublicKey::to_text`]: crate::StudyPublicKey::to_text
    pub public_key: String,
    /// The study signing key's public half ([`StudyVerifyingKey::to_text`]).
    ///
    /// [`StudyVerifyingKey::to_text`]: crate::signing::StudyVerifyingKey::to_text
    pub signing_key: String,
    /// The signing key's signature over the public key, base64.
    pub public_key_signature: String,
}

/// `POST /api/enrol` response.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    /// The device's id: the one sent, or one the server made.
    pub device_id: DeviceId,
    /// The bearer token for push and pull. Shown once; the server keeps only its hash.
    pub device_token: String,
    /// The study's public key as text ([`StudyPublicKey::from_text`]).
    ///
    /// [`StudyPublicKey::from_text`]: crate::StudyPublicKey::from_text
    pub study_public_key: String,
    /// The study's public keys with the signature that binds them: `study.public_key` is
    /// `study_public_key`.
    pub study: StudyKeys,
}

impl std::fmt::Debug for EnrolResponse {
    // The token is a credential: never print it, so it cannot end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolResponse")
            .field("device_id", &self.device_id)
            .field("device_token", &"<hidden>")
            .field("study_public_key", &self.study_public_key)
            .field("study", &self.study)
            .finish()
    }
}

/// The most envelopes the server takes in one push: a larger batch is refused whole (413,
/// `too_many_envelopes`). The engine's default batch ([`BatchLimits`]) stays well under it.
///
/// [`BatchLimits`]: crate::sync::BatchLimits
pub const MAX_PUSH_ENVELOPES: usize = 500;

/// `POST /api/push` request: a batch of sealed, signed revisions (at most
/// [`MAX_PUSH_ENVELOPES`]). A batch with any bad envelope is refused whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The envelopes, oldest first.
    pub envelopes: Vec<Envelope>,
}

/// What happened to one pushed envelope. Every outcome means the server durably holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushOutcome {
    /// New: stored now.
    Stored,
    /// The same (record id, rev, hash) was stored before: nothing to do.
    AlreadyStored,
    /// Another revision with the same record id and rev is stored: this one is kept in the
    /// conflicts and listed for the researchers.
    Conflict,
}

/// One item of a [`PushResponse`], in the order sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResult {
    /// The envelope's record.
    pub record_id: RecordId,
    /// The envelope's revision number.
    pub rev: u32,
    /// The envelope's content hash.
    pub hash: ContentHash,
    /// What the server did with it.
    pub outcome: PushOutcome,
    /// Why a [`PushOutcome::Conflict`] was kept as one (absent for the other outcomes, and
    /// from servers before these checks). A client that does not read it still counts the
    /// revision as held by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ConflictReason>,
}

/// Why the server kept a pushed revision as a conflict instead of storing it in the record's
/// history. The revision is durably held either way (never dropped), and listed for the
/// study team (`attune-server conflicts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConflictReason {
    /// Another revision with the same record id and number is stored.
    RevTaken,
    /// The previous revision of the record is not stored (a gap in the chain). Once it
    /// arrives, the server stores this one after it if it fits.
    Gap,
    /// Its parent hash is not the hash of the stored previous revision (or a first revision
    /// names a parent).
    ParentMismatch,
    /// The record was created on another device, of another fieldworker.
    OwnedByAnotherDevice,
    /// A participant record whose code another participant record already holds.
    CodeTaken,
    /// A reason this version does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl ConflictReason {
    /// Every known reason.
    pub const ALL: &'static [ConflictReason] = &[
        ConflictReason::RevTaken,
        ConflictReason::Gap,
        ConflictReason::ParentMismatch,
        ConflictReason::OwnedByAnotherDevice,
        ConflictReason::CodeTaken,
    ];

    /// The snake_case name, as sent and stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConflictReason::RevTaken => "rev_taken",
            ConflictReason::Gap => "gap",
            ConflictReason::ParentMismatch => "parent_mismatch",
            ConflictReason::OwnedByAnotherDevice => "owned_by_another_device",
            ConflictReason::CodeTaken => "code_taken",
            ConflictReason::Unknown => "unknown",
        }
    }

    /// The reason named by [`ConflictReason::as_str`]; [`ConflictReason::Unknown`] otherwise.
    pub fn from_name(name: &str) -> Self {
        Self::ALL
            .iter()
            .copied()
            .find(|reason| reason.as_str() == name)
            .unwrap_or(ConflictReason::Unknown)
    }

    /// In words, for people.
    pub const fn describe(self) -> &'static str {
        match self {
            ConflictReason::RevTaken => "another revision with this number is stored",
            ConflictReason::Gap => "the previous revision is not stored",
            ConflictReason::ParentMismatch => "its parent is not the stored previous revision",
            ConflictReason::OwnedByAnotherDevice => "record owned by another device",
            ConflictReason::CodeTaken => "code taken",
            ConflictReason::Unknown => "a reason this version does not know",
        }
    }
}

impl std::fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /api/push` response, sent after the batch's transaction committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One result per envelope, in the order sent.
    pub results: Vec<PushResult>,
}

/// What a control message asks devices to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControlKind {
    /// The participant withdrew without leave to keep their data: purge everything about
    /// them. The participant is named by id: two participants may share a code (made on two
    /// tablets), never an id.
    Withdrawal {
        /// The participant's id (`Revision::participant`).
        participant_id: ParticipantId,
        /// The participant's pseudonymous code, for display only.
        participant_code: String,
    },
    /// The study team published a new version of a protocol (`attune-server protocol
    /// publish`): devices check it ([`Protocol::check_update`]) and, if it is a newer version
    /// of the protocol they use, keep it and use it for screens opened from then on.
    ///
    /// [`Protocol::check_update`]: crate::protocol::Protocol::check_update
    ProtocolUpdate {
        /// The protocol file's JSON, as published.
        protocol: String,
    },
    /// The study team revoked a device (`attune-server device revoke`): that device stops
    /// syncing and says why; every other device reads past it.
    Revocation {
        /// The revoked device.
        device_id: DeviceId,
        /// The study team's reason, shown on the revoked device.
        reason: String,
    },
    /// A kind of message this version does not know (a newer server): the device stops
    /// reading messages there, so nothing after it is skipped, and asks to be updated.
    #[serde(other)]
    Unknown,
}

/// A message from the study team for devices ("a study instruction"); `id` is the pull
/// cursor, `seq` its number in the study's sequence of instructions.
///
/// The study team's CLI signs `seq`, the kind with its fields and `created_at` with the study
/// signing key ([`crate::signing`]); the server stores the message with its signature and
/// serves it unchanged. A device applies a message only if the signature verifies with the
/// key it pinned at enrolment and `seq` is the one after the last it applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlMessage {
    /// The server's row id, increasing: pull with `after` = the last id read.
    pub id: i64,
    /// The study's instruction number: 1, 2, 3... with no gaps. Signed.
    pub seq: u64,
    /// What to do. Signed.
    #[serde(flatten)]
    pub kind: ControlKind,
    /// When the study team made it. Signed.
    pub created_at: Timestamp,
    /// The study signing key's Ed25519 signature, base64, over
    /// [`control_signed_bytes`](crate::signing::control_signed_bytes).
    pub signature: String,
}

/// Why a device was revoked, in a [`PullResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The study team's reason, shown to the fieldworker (as the server says it: the signed
    /// `statement` is what the device believes).
    pub reason: String,
    /// The signed [`ControlKind::Revocation`] naming this device. A device treats itself as
    /// revoked only when this verifies; a revocation without it (or with one that does not
    /// verify) is reported as an instruction the study team did not sign.
    #[serde(default)]
    pub statement: Option<ControlMessage>,
}

/// `GET /api/pull?after=CURSOR` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Control messages with an id above the cursor, in order.
    pub messages: Vec<ControlMessage>,
    /// Pass as `after` next time.
    pub cursor: i64,
    /// Set when this device was revoked: it should stop syncing and say why.
    pub revoked: Option<Revocation>,
}

/// `POST /api/codes/reserve` request (Bearer device token): participant-code numbers for
/// this device, per group prefix. See [`crate::codes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRequest {
    /// One item per prefix, each prefix at most once.
    pub prefixes: Vec<ReserveWant>,
}

/// What a device asks for one prefix.
///
/// The server answers with every block it reserved for this device and prefix after `after`
/// (a block whose answer was lost comes again, so a retry burns no numbers) and, if those
/// hold fewer than `want` numbers, one new block with the rest: at most
/// [`MAX_BLOCK`](crate::codes::MAX_BLOCK) numbers, and none once the device holds
/// [`MAX_OUTSTANDING`](crate::codes::MAX_OUTSTANDING) unused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveWant {
    /// The group's prefix: one capital letter A-Z (`code_prefix` in the protocol).
    pub prefix: String,
    /// How many numbers the device is missing (the server gives at most
    /// [`MAX_BLOCK`](crate::codes::MAX_BLOCK)).
    pub want: u32,
    /// The id of the last block of this prefix the device received and kept (0: none).
    #[serde(default)]
    pub after: i64,
}

/// `POST /api/codes/reserve` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveResponse {
    /// The blocks, by prefix and then id.
    pub blocks: Vec<CodeBlock>,
}

/// Numbers `first .. first + count` of a prefix, reserved for one device: its codes are
/// `C{first:02}` and on. No number is ever in two blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeBlock {
    /// Increasing with each block the server reserves (the device's `after` next time).
    pub id: i64,
    /// The prefix letter.
    pub prefix: String,
    /// The first number.
    pub first: u32,
    /// How many numbers.
    pub count: u32,
}

/// The header in which the server says how many bytes of an upload it holds (tus's
/// `Upload-Offset`): on `HEAD`, after a `PATCH`, and with `409 upload_offset_mismatch`.
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// The header naming an upload's whole length (`HEAD`).
pub const UPLOAD_LENGTH: &str = "upload-length";
/// The header carrying a piece's checksum (`sha256 <base64>`, tus's checksum extension).
pub const UPLOAD_CHECKSUM: &str = "upload-checksum";

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// The machine-readable code of an error answer (`error` in [`ErrorBody`]), matched by
        /// the app and the tests; the sentence for people is the body's `message`.
        ///
        /// Serialised as its snake_case string. A code this version does not know (from a
        /// newer server) reads as [`ErrorCode::Unknown`] with the code kept.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
            /// A code this version does not know.
            Unknown(String),
        }

        impl ErrorCode {
            /// Every known code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The code on the wire, e.g. `device_revoked`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$name => $code,)*
                    ErrorCode::Unknown(code) => code,
                }
            }

            /// The code read from the wire (never fails: unknown codes are kept).
            pub fn parse(code: &str) -> ErrorCode {
                match code {
                    $($code => ErrorCode::$name,)*
                    other => ErrorCode::Unknown(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// No such API path or resource.
    NotFound = "not_found",
    /// The server's database is unavailable (503): retry later.
    DatabaseUnavailable = "database_unavailable",
    /// No device token was sent.
    MissingToken = "missing_token",
    /// The device token is unknown.
    UnknownDevice = "unknown_device",
    /// The study team revoked this device (the body's `reason` says why).
    DeviceRevoked = "device_revoked",
    /// The request body is not what the API expects.
    Malformed = "malformed",
    /// An envelope names another device than the one pushing.
    WrongDevice = "wrong_device",
    /// An envelope's signature does not verify.
    BadSignature = "bad_signature",
    /// The body is over the size limit.
    TooLarge = "too_large",
    /// More envelopes than a push may carry (the body's `limit`).
    TooManyEnvelopes = "too_many_envelopes",
    /// An upload made by another device.
    UploadOfAnotherDevice = "upload_of_another_device",
    /// Too many requests of this kind: wait a minute.
    RateLimited = "rate_limited",
    /// The enrolment code is not known.
    EnrolmentCodeUnknown = "enrolment_code_unknown",
    /// The enrolment code has expired.
    EnrolmentCodeExpired = "enrolment_code_expired",
    /// The enrolment code was already used.
    EnrolmentCodeUsed = "enrolment_code_used",
    /// The enrolment challenge is unknown, used or expired.
    EnrolmentChallengeUnknown = "enrolment_challenge_unknown",
    /// The enrolment request is not signed by the key it registers.
    EnrolmentProofInvalid = "enrolment_proof_invalid",
    /// Another device is enrolled with this device id.
    DeviceIdTaken = "device_id_taken",
    /// The server has no study key yet (`attune-server study init`).
    StudyNotInitialised = "study_not_initialised",
    /// The server's study key is not signed by a study signing key yet.
    StudyNotSigned = "study_not_signed",
    /// No such upload.
    UploadNotFound = "upload_not_found",
    /// The upload exists with other details.
    UploadConflict = "upload_conflict",
    /// A piece was sent at another offset than the server holds (`Upload-Offset` says
    /// which).
    UploadOffsetMismatch = "upload_offset_mismatch",
    /// A piece's checksum does not match its bytes (460).
    UploadChecksumMismatch = "upload_checksum_mismatch",
    /// The whole upload's SHA-256 is not the one announced (422).
    UploadHashMismatch = "upload_hash_mismatch",
    /// The device has too many uploads (or bytes) announced and not finished (429): finish
    /// those before announcing more.
    UploadQuotaExceeded = "upload_quota_exceeded",
    /// The request's content type is not the one this endpoint takes.
    UnsupportedMediaType = "unsupported_media_type",
    /// The server could not store the upload.
    BlobStorageFailed = "blob_storage_failed",
    /// Not from the server: its answer could not be read (the client's own code).
    UnreadableAnswer = "unreadable_answer",
    /// The console request needs a signed-in study team member (401).
    SignInRequired = "sign_in_required",
    /// The signed-in member's role does not allow this (403).
    Forbidden = "forbidden",
    /// The invitation is unknown, used or expired (403).
    InvitationInvalid = "invitation_invalid",
    /// The passkey ceremony was refused (403; the message says why).
    PasskeyRefused = "passkey_refused",
    /// A state-changing request that did not come from the console's own origin (403).
    CrossSiteRefused = "cross_site_refused",
    /// Another study instruction took this number meanwhile (409): sign again with the next.
    InstructionSeqTaken = "instruction_seq_taken",
    /// The study instruction's signature is not the study signing key's (400).
    InstructionSignatureInvalid = "instruction_signature_invalid",
    /// The study instruction cannot be carried out (422; the message says why, e.g. a
    /// protocol version not newer than the published one, an unknown device).
    InstructionRefused = "instruction_refused",
    /// A team record's signature is not the study signing key's (400): made with another
    /// study's key file, or altered on the way.
    TeamRecordSignatureInvalid = "team_record_signature_invalid",
    /// A team record with this id is already stored with other contents (409).
    TeamRecordIdTaken = "team_record_id_taken",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Ok(ErrorCode::parse(&code))
    }
}

/// Every error answer's JSON body: `{"error": code, "message": sentence}`, with the details
/// some errors carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub error: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// [`ErrorCode::DeviceRevoked`]: the study team's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// [`ErrorCode::TooManyEnvelopes`]: how many a push may carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// [`ErrorCode::UploadOffsetMismatch`]: how many bytes the server holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl ErrorBody {
    /// A body with `error` and `message` only.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error,
            message: message.into(),
            reason: None,
            limit: None,
            offset: None,
        }
    }
}

#[cfg(test)]
mod error_code_tests {
    use super::*;

    #[test]
    fn error_codes_keep_their_wire_names_and_unknown_ones_are_kept() {
        // The wire names are a contract with every deployed app: never change one.
        let names: Vec<&str> = ErrorCode::ALL.iter().map(ErrorCode::as_str).collect();
        assert_eq!(
            names,
            [
                "not_found",
                "database_unavailable",
                "missing_token",
                "unknown_device",
                "device_revoked",
                "malformed",
                "wrong_device",
                "bad_signature",
                "too_large",
                "too_many_envelopes",
                "upload_of_another_device",
                "rate_limited",
                "enrolment_code_unknown",
                "enrolment_code_expired",
                "enrolment_code_used",
                "enrolment_challenge_unknown",
                "enrolment_proof_invalid",
                "device_id_taken",
                "study_not_initialised",
                "study_not_signed",
                "upload_not_found",
                "upload_conflict",
                "upload_offset_mismatch",
                "upload_checksum_mismatch",
                "upload_hash_mismatch",
                "upload_quota_exceeded",
                "unsupported_media_type",
                "blob_storage_failed",
                "unreadable_answer",
                "sign_in_required",
                "forbidden",
                "invitation_invalid",
                "passkey_refused",
                "cross_site_refused",
                "instruction_seq_taken",
                "instruction_signature_invalid",
                "instruction_refused",
                "team_record_signature_invalid",
                "team_record_id_taken",
            ]
        );
        for code in ErrorCode::ALL {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
        }
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":"device_revoked","message":"Revoked","reason":"lost","extra":1}"#,
        )
        .unwrap();
        assert_eq!(body.error, ErrorCode::DeviceRevoked);
        assert_eq!(body.reason.as_deref(), Some("lost"));
        let newer: ErrorBody =
            serde_json::from_str(r#"{"error":"quota_exceeded","message":"Full"}"#).unwrap();
        assert_eq!(newer.error, ErrorCode::Unknown("quota_exceeded".into()));
        assert_eq!(
            serde_json::to_string(&ErrorBody::new(ErrorCode::RateLimited, "Wait")).unwrap(),
            r#"{"error":"rate_limited","message":"Wait"}"#
        );
    }
}
