//! Sync between a device and the research server: the engine, and ([`api`]) the JSON bodies
//! of the sync API, shared by the server, this engine and the app so the three cannot drift
//! apart.
//!
//! The engine is sans-I/O in the same sense as the rest of core: it talks to the server
//! through a [`Transport`] (the app's is `fetch`, the tests' is an HTTP client) and to the
//! device through the [`RecordStore`] and [`BlobStore`] traits. One [`Syncer::run`]:
//!
//! 1. **pull**: control messages (study instructions) after the saved cursor, each checked
//!    before it is applied (below, "Study instructions"). A revocation of this device stops
//!    the run and says why. Each withdrawal purges that participant (by id) with their records
//!    and attachment blobs from the device and appends a [`Kind::Purge`] record
//!    ([`PurgeBody`]), which is synced like any other. A protocol update is not applied here:
//!    it is handed to the caller in the report ([`SyncReport::protocol_updates`]), which
//!    checks it and keeps it durably BEFORE saving the position. The report's
//!    [`PullPosition`] is the last message handled: save it after the run (the purges are
//!    durable by then; a purge repeated after a lost position finds nothing left and does not
//!    record itself twice; an update received again is simply not newer).
//! 2. **outbox**: unsynced revisions, oldest first, opened with the vault, sealed to the study
//!    key and signed by the device ([`seal_envelope`]), pushed in batches. An attachment's
//!    blob is uploaded (resumably, from the server's offset) before the revision that names
//!    it. A revision is marked synced only when the server's answer acknowledges exactly its
//!    `(record id, rev, hash)`: `stored`, `already_stored` and `conflict` all mean the server
//!    holds it durably.
//! 3. **progress and report**: a callback after each batch, and a [`SyncReport`].
//!
//! # Study instructions
//!
//! Every control message is signed by the study signing key, which only the research team
//! holds ([`crate::signing`]); the device pinned its public half at enrolment
//! ([`SyncIdentity::study_signing_key`]). Messages are numbered per study (`seq` 1, 2, 3...)
//! and the device keeps the number of the last one it applied
//! ([`PullPosition::last_seq`]). Reading them in order:
//!
//! - a signature that does not verify: refused, not applied, reported
//!   ([`InstructionProblem::NotSigned`]); reading stops there, before it;
//! - `seq` = last + 1: applied;
//! - `seq` <= last: a replay, ignored and reported ([`InstructionProblem::Replayed`]);
//! - `seq` > last + 1: one is missing; reading stops there, before it, and it is reported
//!   ([`InstructionProblem::Missing`]): the next run reads it again, after the missing one if
//!   it has come;
//! - a kind this version does not know: reading stops there ([`SyncReport::unknown_message`]).
//!
//! A revocation counts only with the study team's signed statement naming this device; a
//! server that refuses the device without one is reported
//! ([`InstructionProblem::UnsignedRevocation`]) and the run stops, without the tablet
//! believing itself revoked. The engine never trusts the server's `cursor` beyond the
//! messages it read. So a server can delay or withhold instructions, never forge them.
//! With [`Syncer::run_with_codes`], between 1 and 2: **participant codes**. The device's
//! [`CodePool`] is topped up to its target per group (`POST /api/codes/reserve`), and every
//! participant with a provisional label gets the next reserved code of their group in a new
//! revision of their record, before anything is sent ([`crate::codes`]). A participant whose
//! code is still provisional is held back with their records
//! ([`HoldReason::ProvisionalCode`]).
//!
//! # Interruptions
//!
//! Every step can be cut at any point (a lost request, a lost answer, a closed tab) and
//! [`Syncer::run`] simply run again: pushes are idempotent on `(record id, rev, hash)`, an
//! upload resumes from the offset the server reports and re-seals to the same bytes
//! ([`Vault::attachment_seed`]), and a purge is idempotent. Nothing is lost (a revision
//! leaves the outbox only after the server's acknowledgement) and nothing is duplicated (the
//! server files a resend as `already_stored`). A [`Transport`] may retry failed requests
//! itself ([`TransportError::is_retryable`]), for the same reasons.
//!
//! # What never leaves the device
//!
//! A participant's real name: a [`Kind::Participant`] revision whose body has a non-empty
//! `name` is held back and reported ([`HoldReason::ParticipantName`]), never sealed.

pub mod api;
pub mod enrol;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use thiserror::Error;

pub use crate::attachment::{UploadCreate, UploadState};
pub use api::{
    CodeBlock, ControlKind, ControlMessage, EnrolChallenge, EnrolRequest, EnrolResponse,
    PullResponse, PushOutcome, PushRequest, PushResponse, PushResult, ReserveRequest,
    ReserveResponse, ReserveWant, Revocation, StudyKeys, normalise_enrolment_code,
};
pub use api::{ConflictReason, ErrorBody, ErrorCode, MAX_PUSH_ENVELOPES};

use crate::attachment::{UPLOAD_PIECE, seal_attachment, sha256_hex};
use crate::codes::{CodeKeeper, CodePool, is_provisional, parse_provisional, provisional_counts};
use crate::envelope::{DeviceKey, Envelope, EnvelopeError, StudyPublicKey, seal_envelope};
use crate::fieldwork::{AttachmentBody, ParticipantBody, PurgeBody};
use crate::ids::{BlobId, DeviceId, ParticipantId, ProfileId, RecordId};
use crate::record::{Authorship, Kind, Links, Revision};
use crate::signing::StudyVerifyingKey;
use crate::store::{BlobStore, RecordStore, StoreError, StoredRevision, SyncAck};
use crate::time::Timestamp;
use crate::vault::{Vault, VaultError};

/// Why a request to the server failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No answer: offline, connection cut, timeout. Worth retrying.
    #[error("network error: {0}")]
    Network(String),
    /// The server answered with an error status and its `{"error", "message"}` body.
    #[error("the server answered {status} ({code}): {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's machine-readable error code, e.g. [`ErrorCode::BadSignature`].
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// An upload piece was sent at another offset than the server holds (`409` with
    /// `Upload-Offset`): resume from `server_offset`.
    #[error("the server holds {server_offset} bytes of this upload")]
    OffsetMismatch {
        /// How many bytes of the upload the server holds.
        server_offset: u64,
    },
    /// The study team revoked this device (`403 device_revoked`).
    #[error("this device was revoked: {reason}")]
    Revoked {
        /// The study team's reason.
        reason: String,
    },
}

impl TransportError {
    /// Whether sending the same request again may succeed: network failures, `408`, `429`
    /// and `5xx`. Every sync request is idempotent, so a retry is always safe.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::Network(_) | TransportError::OffsetMismatch { .. } => true,
            TransportError::Status { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            TransportError::Revoked { .. } => false,
        }
    }
}

/// How the engine reaches the server. The app implements it with `fetch`, tests with an HTTP
/// client; every request carries the device token (`Authorization: Bearer`).
///
/// Like [`RecordStore`], the futures need not be `Send` (browser futures are not).
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// `POST /api/push`.
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, TransportError>;

    /// `GET /api/pull?after={after}`.
    async fn pull(&self, after: i64) -> Result<PullResponse, TransportError>;

    /// `POST /api/uploads`: creates the upload, or says how much of it the server holds.
    async fn upload_create(&self, upload: &UploadCreate) -> Result<UploadState, TransportError>;

    /// `PATCH /api/uploads/{sha256}` with `Upload-Offset: offset`, the piece's checksum
    /// (`Upload-Checksum: sha256 <base64>`) and the piece as body. Returns the server's new
    /// offset; a `409` is [`TransportError::OffsetMismatch`].
    async fn upload_append(
        &self,
        sha256: &str,
        offset: u64,
        piece: &[u8],
    ) -> Result<u64, TransportError>;

    /// `POST /api/codes/reserve`: participant-code numbers for this device. The default
    /// answers `404 not_found`, as a server from before code reservations does.
    async fn reserve_codes(
        &self,
        request: &ReserveRequest,
    ) -> Result<ReserveResponse, TransportError> {
        let _ = request;
        Err(TransportError::Status {
            status: 404,
            code: ErrorCode::NotFound,
            message: "this transport cannot reserve participant codes".into(),
        })
    }
}

/// Who is syncing: the unlocked vault that opens the device's records and blobs, the device's
/// signing key, the study key everything is sealed to, the study signing key instructions
/// must be signed by, and the ids that author the purge records the engine writes.
pub struct SyncIdentity<'a> {
    /// The fieldworker's unlocked vault.
    pub vault: &'a Vault,
    /// The device's Ed25519 signing key, registered at enrolment.
    pub device_key: &'a DeviceKey,
    /// The study's public key, received at enrolment (and verified against the signing key).
    pub study_key: &'a StudyPublicKey,
    /// The study signing key, pinned at enrolment by its fingerprint: every control message
    /// must be signed by it.
    pub study_signing_key: &'a StudyVerifyingKey,
    /// This device's id (the one its revisions carry).
    pub device: DeviceId,
    /// The fieldworker profile syncing.
    pub author: ProfileId,
}

impl fmt::Debug for SyncIdentity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncIdentity")
            .field("device", &self.device)
            .field("author", &self.author)
            .finish_non_exhaustive()
    }
}

/// How much goes into one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most revisions in one push (default 100; never more than the server's
    /// [`MAX_PUSH_ENVELOPES`]).
    pub max_revisions: usize,
    /// The most envelope bytes in one push (default 4 MiB; the server takes up to 8 MiB).
    /// A single larger envelope is still sent, alone.
    pub max_bytes: usize,
    /// The size of upload pieces (default [`UPLOAD_PIECE`], 1 MiB).
    pub upload_piece: usize,
}

/// The default batch: well under what the server takes.
const DEFAULT_MAX_REVISIONS: usize = 100;
const _: () = assert!(DEFAULT_MAX_REVISIONS <= MAX_PUSH_ENVELOPES);

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_revisions: DEFAULT_MAX_REVISIONS,
            max_bytes: 4 << 20,
            upload_piece: UPLOAD_PIECE,
        }
    }
}

/// How far a run is, for a progress bar: `done` of `total` revisions acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Revisions acknowledged by the server in this run.
    pub done: usize,
    /// Revisions to send in this run (the outbox after the pull's purges).
    pub total: usize,
    /// Attachment bytes uploaded in this run.
    pub uploaded_bytes: u64,
}

/// Why a revision was held back instead of sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HoldReason {
    /// A participant revision with a real name in its body: names never leave the device.
    ParticipantName,
    /// The revision names a participant whose record (and so code) is not on this device.
    UnknownParticipant,
    /// The body is not valid JSON of its kind.
    UnreadableBody(String),
    /// An attachment's blob has fewer (or more) chunks than its record says: a recording
    /// still being written, or damaged storage.
    BlobIncomplete {
        /// The chunks the record names.
        expected: u32,
        /// The chunks stored.
        found: u32,
    },
    /// An attachment's stored content does not match the SHA-256 its record names.
    ContentHashMismatch,
    /// An earlier revision of the same record is held: the server takes a record's
    /// revisions in order (a later one alone would be a gap in its chain).
    EarlierRevisionHeld {
        /// The held revision.
        rev: u32,
    },
    /// The participant (of this record, or this participant record) has a provisional label,
    /// not a code yet: sent once a sync reserves a code for them ([`crate::codes`]).
    ProvisionalCode,
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldReason::ParticipantName => f.write_str(
                "a participant's real name is in the record; names never leave the device",
            ),
            HoldReason::UnknownParticipant => {
                f.write_str("the record names a participant who is not on this device")
            }
            HoldReason::UnreadableBody(error) => {
                write!(f, "the record's body is unreadable: {error}")
            }
            HoldReason::BlobIncomplete { expected, found } => write!(
                f,
                "the attachment has {found} of its {expected} chunks on this device"
            ),
            HoldReason::ContentHashMismatch => {
                f.write_str("the attachment's content does not match its SHA-256")
            }
            HoldReason::EarlierRevisionHeld { rev } => write!(
                f,
                "revision {rev} of this record is held, and the server takes a record's \
                 revisions in order"
            ),
            HoldReason::ProvisionalCode => f.write_str(
                "the participant's code is provisional until the server reserves codes for this tablet",
            ),
        }
    }
}

/// A revision that stays in the outbox, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRevision {
    /// The record.
    pub record_id: RecordId,
    /// The revision number.
    pub rev: u32,
    /// Why it was not sent.
    pub reason: HoldReason,
}

/// A protocol update pulled from the server, for the caller to check and keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolUpdate {
    /// The control message that carried it.
    pub message_id: i64,
    /// The protocol file's JSON, unchecked: check it with
    /// [`Protocol::check_update`](crate::protocol::Protocol::check_update).
    pub protocol: String,
}

/// Where reading the study's instructions stands: save it after a run, pass it to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PullPosition {
    /// The pull cursor: the server id of the last message read.
    pub cursor: i64,
    /// The number (`seq`) of the last instruction applied; 0 before the first.
    pub last_seq: u64,
}

/// A study instruction the engine did not apply, for the sync screen.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstructionProblem {
    /// Its signature does not verify with the pinned study signing key (a forgery, or
    /// damage): refused, not applied; reading stopped before it.
    NotSigned {
        /// The server's id of the message.
        message_id: i64,
        /// The number it claims.
        seq: u64,
    },
    /// Signed, but applied before (its number is not after the last applied): ignored.
    Replayed {
        /// The server's id of the message.
        message_id: i64,
        /// Its number.
        seq: u64,
    },
    /// Instruction `expected` did not come; `found` came instead. Reading stopped before it.
    Missing {
        /// The server's id of the message that came instead.
        message_id: i64,
        /// The number that should have come next.
        expected: u64,
        /// The number that came.
        found: u64,
    },
    /// The server refused this device as revoked without a revocation signed by the study
    /// team for this device. The run stopped; the device does not take itself as revoked.
    UnsignedRevocation {
        /// The reason the server gave.
        reason: String,
    },
}

impl fmt::Display for InstructionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstructionProblem::NotSigned { seq, .. } => write!(
                f,
                "study instruction {seq} was refused: it is not signed by the study team's key, \
                 so it was not applied, and the instructions after it wait"
            ),
            InstructionProblem::Replayed { seq, .. } => write!(
                f,
                "study instruction {seq} came again and was ignored: it was applied before"
            ),
            InstructionProblem::Missing {
                expected, found, ..
            } => write!(
                f,
                "a study instruction is missing: number {expected} should come next, but \
                 {found} came; the instructions after it wait until it arrives"
            ),
            InstructionProblem::UnsignedRevocation { reason } => write!(
                f,
                "the server refused this tablet as revoked (\u{201c}{reason}\u{201d}), but the \
                 study team did not sign a revocation; sync stopped"
            ),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Revisions the server stored new.
    pub pushed: usize,
    /// Revisions the server already held (a resend after a lost answer).
    pub already_stored: usize,
    /// Revisions the server kept as conflicts (another revision with the same record id and
    /// number was there first, or one of the server's checks failed: see
    /// [`SyncReport::conflict_reasons`]); the researchers see them listed.
    pub conflicts: usize,
    /// Why each conflict of this run was kept, when the server said.
    pub conflict_reasons: Vec<(RecordId, u32, ConflictReason)>,
    /// Attachment bytes uploaded.
    pub uploaded_bytes: u64,
    /// Attachments the server now holds complete (uploaded now or before).
    pub attachments: usize,
    /// The codes of the participants purged from this device (withdrawals of participants
    /// who were not on it are applied, recorded and not listed).
    pub purged: Vec<String>,
    /// Set when the device was revoked (by a revocation the study team signed): their
    /// reason. Sync stops.
    pub revoked: Option<String>,
    /// Protocol updates pulled in this run, in message order. The engine does not apply
    /// them: the caller checks and keeps them durably before it saves `position`, or they
    /// are lost (the next pull starts after them).
    pub protocol_updates: Vec<ProtocolUpdate>,
    /// Where reading instructions stands: save it (after the run) and pass it to the next.
    pub position: PullPosition,
    /// Study instructions refused, replayed or missing, in the order met.
    pub instruction_problems: Vec<InstructionProblem>,
    /// A control message of a kind this version cannot read (from a newer server): messages
    /// were read up to it, not past it. The app should be updated.
    pub unknown_message: Option<i64>,
    /// Revisions held back in the outbox, and why.
    pub held: Vec<HeldRevision>,
    /// Participant-code numbers the server reserved for this device in this run
    /// ([`Syncer::run_with_codes`]).
    pub codes_reserved: usize,
    /// Participants whose provisional label became a code in this run, in order.
    pub confirmed: Vec<ConfirmedCode>,
    /// Why codes could not be reserved, when the server refused (an older server, a bad
    /// request); participants keep their provisional labels and the rest syncs.
    pub codes_error: Option<String>,
}

/// A participant whose provisional label was replaced by a code reserved by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmedCode {
    /// The participant.
    pub participant: ParticipantId,
    /// The label they had, e.g. `C-new-2`.
    pub provisional: String,
    /// Their code from now on, e.g. `C14`.
    pub code: String,
}

/// What [`Syncer::run_with_codes`] needs for participant codes.
pub struct CodeSync<'a, K> {
    /// Keeps the device's [`CodePool`].
    pub keeper: &'a K,
    /// The prefix letters of the current protocol's groups.
    pub prefixes: Vec<char>,
    /// How many unused codes per group to hold after the run
    /// ([`POOL_TARGET`](crate::codes::POOL_TARGET)).
    pub target: u32,
}

impl<K> fmt::Debug for CodeSync<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeSync")
            .field("prefixes", &self.prefixes)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The keeper of a run without codes: never called.
struct NoCodes;

impl CodeKeeper for NoCodes {
    async fn update<R>(&self, change: impl FnOnce(&mut CodePool) -> R) -> Result<R, StoreError> {
        Ok(change(&mut CodePool::default()))
    }
}

impl SyncReport {
    /// Why the server kept this run's conflicts, in words counted by reason, e.g. "code
    /// taken: 2; the previous revision is not stored: 1" (first seen first); `None` when
    /// the server said no reason.
    pub fn conflicts_by_reason(&self) -> Option<String> {
        let mut counts: Vec<(ConflictReason, usize)> = Vec::new();
        for (_, _, reason) in &self.conflict_reasons {
            match counts.iter_mut().find(|(r, _)| r == reason) {
                Some((_, n)) => *n += 1,
                None => counts.push((*reason, 1)),
            }
        }
        (!counts.is_empty()).then(|| {
            counts
                .iter()
                .map(|(reason, n)| format!("{}: {n}", reason.describe()))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Revisions the server acknowledged in this run (stored, already stored or conflicts).
    pub fn acknowledged(&self) -> usize {
        self.pushed + self.already_stored + self.conflicts
    }
}

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The device's storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A stored revision or chunk does not open with the vault.
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
    /// Sealing or signing failed.
    #[error("sealing: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The server could not be reached, or refused a request.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// The server answered something that does not fit what was sent (e.g. acknowledged
    /// none of a batch).
    #[error("the server's answer does not fit the request: {0}")]
    Protocol(String),
}

impl SyncError {
    /// Whether running again later may succeed (the network or server failed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SyncError::Transport(error) if error.is_retryable())
    }
}

/// A run that stopped early: why, and what it did before (save its `position`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("sync stopped: {error}")]
pub struct SyncFailure {
    /// Why it stopped.
    pub error: SyncError,
    /// What it did before stopping (boxed: a report is large, failures are rare).
    pub report: Box<SyncReport>,
}

/// The sync engine for one device store and one server.
pub struct Syncer<'a, S, T> {
    store: &'a S,
    transport: &'a T,
    identity: SyncIdentity<'a>,
    clock: &'a dyn Fn() -> Timestamp,
    limits: BatchLimits,
}

impl<S, T> fmt::Debug for Syncer<'_, S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syncer")
            .field("identity", &self.identity)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What the outbox loop decided about one revision.
enum Prepared {
    /// Seal and send, with this participant code in the envelope.
    Send(Option<String>),
    /// Keep it in the outbox.
    Hold(HoldReason),
}

impl<'a, S, T> Syncer<'a, S, T>
where
    S: RecordStore + BlobStore,
    T: Transport,
{
    /// A syncer with the default [`BatchLimits`]. `clock` gives the time for the purge
    /// records it writes (core reads no clock).
    pub fn new(
        store: &'a S,
        transport: &'a T,
        identity: SyncIdentity<'a>,
        clock: &'a dyn Fn() -> Timestamp,
    ) -> Self {
        Self {
            store,
            transport,
            identity,
            clock,
            limits: BatchLimits::default(),
        }
    }

    /// The same syncer with other batch limits (zero values count as one; more revisions
    /// than the server takes, [`MAX_PUSH_ENVELOPES`], count as that).
    pub fn with_limits(mut self, limits: BatchLimits) -> Self {
        self.limits = BatchLimits {
            max_revisions: limits.max_revisions.clamp(1, MAX_PUSH_ENVELOPES),
            max_bytes: limits.max_bytes.max(1),
            upload_piece: limits.upload_piece.max(1),
        };
        self
    }

    /// One sync: pull (and purge), then send the outbox, calling `progress` after each
    /// batch. `position` is the one saved from the last run's report (the default at first).
    /// Participants with provisional labels stay held; [`Syncer::run_with_codes`] also
    /// confirms them.
    ///
    /// # Errors
    /// A [`SyncFailure`] when the store, the vault or the server fails; its report says what
    /// was done before, including the position to save. Running again is always safe.
    pub async fn run(
        &self,
        position: PullPosition,
        progress: impl FnMut(SyncProgress),
    ) -> Result<SyncReport, SyncFailure> {
        self.run_inner(position, None::<&CodeSync<'_, NoCodes>>, progress)
            .await
    }

    /// [`Syncer::run`] with participant codes: after the pull, tops the device's code pool
    /// up (`codes.target` unused per group of `codes.prefixes`, plus one for each
    /// participant waiting with a provisional label), then gives each waiting participant
    /// the next code of their group in a new revision of their record, before the outbox is
    /// sent. A server that refuses to reserve (e.g. too old) is reported
    /// ([`SyncReport::codes_error`]) and the rest syncs.
    ///
    /// # Errors
    /// As [`Syncer::run`]; a failure of the keeper is a [`SyncError::Store`].
    pub async fn run_with_codes<K: CodeKeeper>(
        &self,
        position: PullPosition,
        codes: &CodeSync<'_, K>,
        progress: impl FnMut(SyncProgress),
    ) -> Result<SyncReport, SyncFailure> {
        self.run_inner(position, Some(codes), progress).await
    }

    async fn run_inner<K: CodeKeeper>(
        &self,
        position: PullPosition,
        codes: Option<&CodeSync<'_, K>>,
        mut progress: impl FnMut(SyncProgress),
    ) -> Result<SyncReport, SyncFailure> {
        let mut report = SyncReport {
            position,
            ..SyncReport::default()
        };
        match self.run_into(&mut report, codes, &mut progress).await {
            Ok(()) => Ok(report),
            Err(SyncError::Transport(TransportError::Revoked { reason })) => {
                // Refused at push or upload: believed only with the signed statement, which
                // the server hands a revoked device on pull.
                let revocation = match self.transport.pull(report.position.cursor).await {
                    Ok(PullResponse {
                        revoked: Some(revocation),
                        ..
                    }) => revocation,
                    _ => Revocation {
                        reason,
                        statement: None,
                    },
                };
                self.revocation(revocation, &mut report);
                Ok(report)
            }
            Err(error) => Err(SyncFailure {
                error,
                report: Box::new(report),
            }),
        }
    }

    async fn run_into<K: CodeKeeper>(
        &self,
        report: &mut SyncReport,
        codes: Option<&CodeSync<'_, K>>,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<(), SyncError> {
        let pulled = self.transport.pull(report.position.cursor).await?;
        if let Some(revocation) = pulled.revoked {
            self.revocation(revocation, report);
            return Ok(());
        }
        // The server's `cursor` is not trusted beyond what was read: a server skipping
        // messages must not move the device past an instruction it withheld.
        let mut messages = pulled.messages;
        let after = report.position.cursor;
        messages.retain(|message| message.id > after);
        messages.sort_by_key(|message| message.id);
        for message in messages {
            if message.kind == ControlKind::Unknown {
                // The position stays before it: an updated app reads it and what follows.
                report.unknown_message = Some(message.id);
                break;
            }
            if self
                .identity
                .study_signing_key
                .verify_control(&message)
                .is_err()
            {
                report
                    .instruction_problems
                    .push(InstructionProblem::NotSigned {
                        message_id: message.id,
                        seq: message.seq,
                    });
                break;
            }
            let expected = report.position.last_seq + 1;
            if message.seq < expected {
                report
                    .instruction_problems
                    .push(InstructionProblem::Replayed {
                        message_id: message.id,
                        seq: message.seq,
                    });
                report.position.cursor = message.id;
                continue;
            }
            if message.seq > expected {
                report
                    .instruction_problems
                    .push(InstructionProblem::Missing {
                        message_id: message.id,
                        expected,
                        found: message.seq,
                    });
                break;
            }
            let applied = PullPosition {
                cursor: message.id,
                last_seq: message.seq,
            };
            match message.kind {
                ControlKind::Withdrawal {
                    participant_id,
                    participant_code,
                } => {
                    if self
                        .purge(participant_id, &participant_code, message.id)
                        .await?
                    {
                        report.purged.push(participant_code);
                    }
                }
                ControlKind::ProtocolUpdate { protocol } => {
                    report.protocol_updates.push(ProtocolUpdate {
                        message_id: message.id,
                        protocol,
                    });
                }
                ControlKind::Revocation { device_id, reason } => {
                    if device_id == self.identity.device {
                        report.position = applied;
                        report.revoked = Some(reason);
                        return Ok(());
                    }
                }
                ControlKind::Unknown => unreachable!("stopped before"),
            }
            report.position = applied;
        }
        if let Some(codes) = codes {
            self.codes(codes, report).await?;
        }
        self.send_outbox(report, progress).await
    }

    /// A revocation from the server: the device is revoked only if the study team's signed
    /// statement names it.
    fn revocation(&self, revocation: Revocation, report: &mut SyncReport) {
        let signed_reason = revocation.statement.and_then(|statement| {
            self.identity
                .study_signing_key
                .verify_control(&statement)
                .ok()?;
            match statement.kind {
                ControlKind::Revocation { device_id, reason }
                    if device_id == self.identity.device =>
                {
                    Some(reason)
                }
                _ => None,
            }
        });
        match signed_reason {
            Some(reason) => report.revoked = Some(reason),
            None => report
                .instruction_problems
                .push(InstructionProblem::UnsignedRevocation {
                    reason: revocation.reason,
                }),
        }
    }

    /// The latest revision and body of every participant record on the device.
    async fn participant_heads(
        &self,
    ) -> Result<Vec<(ParticipantId, Revision, ParticipantBody)>, SyncError> {
        let mut heads = Vec::new();
        for stored in self.store.list_latest_by_kind(Kind::Participant).await? {
            let revision = self.identity.vault.open_revision(&stored)?;
            if let (Some(id), Ok(body)) = (revision.participant, revision.body_json()) {
                heads.push((id, revision, body));
            }
        }
        Ok(heads)
    }

    /// Tops the code pool up and confirms the participants waiting with provisional labels
    /// (see [`Syncer::run_with_codes`]).
    async fn codes<K: CodeKeeper>(
        &self,
        codes: &CodeSync<'_, K>,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let heads = self.participant_heads().await?;
        // Every code on the device, purged participants' included: never given again.
        let mut used: HashSet<String> = heads.iter().map(|(_, _, b)| b.code.clone()).collect();
        for stored in self.store.list_latest_by_kind(Kind::Purge).await? {
            let revision = self.identity.vault.open_revision(&stored)?;
            if let Ok(body) = revision.body_json::<PurgeBody>() {
                used.insert(body.participant_code);
            }
        }
        let waiting = provisional_counts(heads.iter().map(|(_, _, b)| b.code.as_str()));
        let wants = codes
            .keeper
            .update(|pool| pool.wants(&codes.prefixes, codes.target, &waiting, &used))
            .await?;
        if !wants.is_empty() {
            match self
                .transport
                .reserve_codes(&ReserveRequest { prefixes: wants })
                .await
            {
                Ok(response) => {
                    report.codes_reserved += codes
                        .keeper
                        .update(|pool| pool.add_blocks(&response.blocks))
                        .await?;
                }
                Err(error)
                    if error.is_retryable() || matches!(error, TransportError::Revoked { .. }) =>
                {
                    return Err(error.into());
                }
                Err(error) => report.codes_error = Some(error.to_string()),
            }
        }
        // Oldest label first, so C-new-1 gets the lower code.
        let mut provisional: Vec<_> = heads
            .into_iter()
            .filter_map(|(id, head, body)| {
                let (prefix, number) = parse_provisional(&body.code)?;
                Some(((prefix, number, head.time), id, head, body))
            })
            .collect();
        provisional.sort_by_key(|(order, ..)| *order);
        for ((prefix, ..), participant, head, mut body) in provisional {
            let Some(code) = codes.keeper.update(|pool| pool.take(prefix, &used)).await? else {
                continue;
            };
            used.insert(code.clone());
            let label = std::mem::replace(&mut body.code, code.clone());
            let bytes = serde_json::to_vec(&body)
                .map_err(|error| SyncError::Protocol(format!("participant record: {error}")))?;
            let revision = head
                .next(
                    bytes,
                    Authorship {
                        device: self.identity.device,
                        author: self.identity.author,
                        time: (self.clock)(),
                    },
                )
                .map_err(|error| SyncError::Protocol(error.to_string()))?;
            let stored = self.identity.vault.seal_revision(&revision)?;
            match self.store.put_revision(stored).await {
                Ok(_) => report.confirmed.push(ConfirmedCode {
                    participant,
                    provisional: label,
                    code,
                }),
                // The record changed meanwhile (edited on this device during the run): the
                // code is left unused and the next run confirms the participant.
                Err(
                    StoreError::Conflict { .. }
                    | StoreError::ParentMismatch { .. }
                    | StoreError::NotNextRevision { .. },
                ) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// The latest body of every participant record on the device, by participant.
    async fn participants(&self) -> Result<BTreeMap<ParticipantId, ParticipantBody>, SyncError> {
        Ok(self
            .participant_heads()
            .await?
            .into_iter()
            .map(|(id, _, body)| (id, body))
            .collect())
    }

    /// Purges the participant with this id (never by code: two participants made on two
    /// tablets may share one), their attachments' blobs, and records the purge once per
    /// control message, also when the participant was not on this device. Ordered so that
    /// an interruption anywhere leaves a state the next run finishes: the purge record first
    /// (with the counts), then the blobs (while the records that name them still exist),
    /// then the records, atomically. Whether any of their records were on this device.
    async fn purge(
        &self,
        participant: ParticipantId,
        code: &str,
        message_id: i64,
    ) -> Result<bool, SyncError> {
        let latest = self.store.list_latest_by_participant(participant).await?;
        let records = latest.len();
        let mut blobs = HashSet::new();
        for stored in latest.iter().filter(|s| s.kind == Kind::Attachment) {
            for revision in self.store.history(stored.record_id).await? {
                let revision = self.identity.vault.open_revision(&revision)?;
                if let Ok(body) = revision.body_json::<AttachmentBody>() {
                    blobs.insert(body.blob);
                }
            }
        }
        if !self.purge_recorded(message_id).await? {
            self.record_purge(PurgeBody {
                participant_code: code.to_owned(),
                participant_id: Some(participant),
                message_id,
                records: records as u64,
                blobs: blobs.len() as u64,
                at: (self.clock)(),
            })
            .await?;
        }
        for blob in blobs {
            self.store.delete_blob(blob).await?;
        }
        if records > 0 {
            self.store.purge_participant(participant).await?;
        }
        Ok(records > 0)
    }

    /// Whether a purge record for this control message is on the device already.
    async fn purge_recorded(&self, message_id: i64) -> Result<bool, SyncError> {
        for stored in self.store.list_latest_by_kind(Kind::Purge).await? {
            let revision = self.identity.vault.open_revision(&stored)?;
            if revision
                .body_json::<PurgeBody>()
                .is_ok_and(|body| body.message_id == message_id)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn record_purge(&self, body: PurgeBody) -> Result<(), SyncError> {
        let body = serde_json::to_vec(&body)
            .map_err(|error| SyncError::Protocol(format!("purge record: {error}")))?;
        let now = (self.clock)();
        // Not linked to the participant: the record must survive later purges.
        let revision = Revision::first(
            RecordId::new(now),
            Kind::Purge,
            Links::default(),
            body,
            Authorship {
                device: self.identity.device,
                author: self.identity.author,
                time: now,
            },
        );
        let stored = self.identity.vault.seal_revision(&revision)?;
        self.store.put_revision(stored).await?;
        Ok(())
    }

    async fn send_outbox(
        &self,
        report: &mut SyncReport,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<(), SyncError> {
        let participants = self.participants().await?;
        let mut state = SyncProgress {
            done: 0,
            total: self.store.count_unsynced().await?,
            uploaded_bytes: 0,
        };
        progress(state);
        let mut held: HashSet<SyncAck> = HashSet::new();
        // The first held revision of each record: its later revisions wait behind it, so the
        // server never receives a chain with a gap.
        let mut held_records: BTreeMap<RecordId, u32> = BTreeMap::new();
        let mut uploaded: HashSet<BlobId> = HashSet::new();
        loop {
            // Held revisions stay at the head of the outbox: read past them.
            let waiting: Vec<StoredRevision> = self
                .store
                .unsynced(held.len() + self.limits.max_revisions)
                .await?
                .into_iter()
                .filter(|stored| !held.contains(&stored.sync_key()))
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            let mut envelopes: Vec<Envelope> = Vec::new();
            let mut bytes = 0;
            for stored in waiting {
                if let Some(&rev) = held_records.get(&stored.record_id) {
                    held.insert(stored.sync_key());
                    report.held.push(HeldRevision {
                        record_id: stored.record_id,
                        rev: stored.rev,
                        reason: HoldReason::EarlierRevisionHeld { rev },
                    });
                    continue;
                }
                let revision = self.identity.vault.open_revision(&stored)?;
                let code = match self
                    .prepare(&revision, &participants, &mut uploaded, report)
                    .await?
                {
                    Prepared::Send(code) => code,
                    Prepared::Hold(reason) => {
                        held.insert(stored.sync_key());
                        held_records.entry(stored.record_id).or_insert(stored.rev);
                        report.held.push(HeldRevision {
                            record_id: stored.record_id,
                            rev: stored.rev,
                            reason,
                        });
                        continue;
                    }
                };
                let envelope = seal_envelope(
                    &revision,
                    code,
                    self.identity.study_key,
                    self.identity.device_key,
                )?;
                // The base64 fields plus room for the clear metadata as JSON.
                let size = envelope.sealed.len() + envelope.signature.len() + 512;
                if !envelopes.is_empty() && bytes + size > self.limits.max_bytes {
                    break;
                }
                bytes += size;
                envelopes.push(envelope);
            }
            state.uploaded_bytes = report.uploaded_bytes;
            if envelopes.is_empty() {
                // Everything read was held: read further.
                progress(state);
                continue;
            }
            let marked = self.push(envelopes, report).await?;
            state.done += marked;
            progress(state);
        }
    }

    /// Pushes one batch and marks what the server acknowledged; how many were marked.
    async fn push(
        &self,
        envelopes: Vec<Envelope>,
        report: &mut SyncReport,
    ) -> Result<usize, SyncError> {
        let request = PushRequest { envelopes };
        let response = self.transport.push(&request).await?;
        let sent: HashSet<SyncAck> = request
            .envelopes
            .iter()
            .map(|e| (e.record_id, e.rev, e.hash))
            .collect();
        let mut acknowledged = Vec::new();
        for result in &response.results {
            let key = (result.record_id, result.rev, result.hash);
            if !sent.contains(&key) {
                continue;
            }
            acknowledged.push(key);
            match result.outcome {
                PushOutcome::Stored => report.pushed += 1,
                PushOutcome::AlreadyStored => report.already_stored += 1,
                PushOutcome::Conflict => {
                    report.conflicts += 1;
                    if let Some(reason) = result.reason {
                        report
                            .conflict_reasons
                            .push((result.record_id, result.rev, reason));
                    }
                }
            }
        }
        let marked = self.store.mark_synced(&acknowledged).await?;
        if marked == 0 {
            // Nothing would ever change: stop rather than loop.
            return Err(SyncError::Protocol(format!(
                "the server acknowledged none of a batch of {}",
                request.envelopes.len()
            )));
        }
        Ok(marked)
    }

    /// Decides whether a revision may be sent, uploading its attachment first if it has one.
    async fn prepare(
        &self,
        revision: &Revision,
        participants: &BTreeMap<ParticipantId, ParticipantBody>,
        uploaded: &mut HashSet<BlobId>,
        report: &mut SyncReport,
    ) -> Result<Prepared, SyncError> {
        let code = match (revision.kind, revision.participant) {
            (Kind::Participant, participant) => match revision.body_json::<ParticipantBody>() {
                Ok(body) if body.name.as_deref().is_some_and(|n| !n.trim().is_empty()) => {
                    return Ok(Prepared::Hold(HoldReason::ParticipantName));
                }
                // Every revision goes under the participant's code now: an early revision
                // with a provisional label is sent under the code it became.
                Ok(body) => Some(
                    participant
                        .and_then(|id| participants.get(&id))
                        .map_or(body.code, |latest| latest.code.clone()),
                ),
                Err(error) => {
                    return Ok(Prepared::Hold(HoldReason::UnreadableBody(
                        error.to_string(),
                    )));
                }
            },
            (_, Some(participant)) => match participants.get(&participant) {
                Some(body) => Some(body.code.clone()),
                None => return Ok(Prepared::Hold(HoldReason::UnknownParticipant)),
            },
            (_, None) => None,
        };
        if code.as_deref().is_some_and(is_provisional) {
            return Ok(Prepared::Hold(HoldReason::ProvisionalCode));
        }
        if revision.kind == Kind::Attachment {
            let body = match revision.body_json::<AttachmentBody>() {
                Ok(body) => body,
                Err(error) => {
                    return Ok(Prepared::Hold(HoldReason::UnreadableBody(
                        error.to_string(),
                    )));
                }
            };
            if let Some(content_sha256) = &body.sha256
                && !uploaded.contains(&body.blob)
            {
                if let Some(reason) = self.upload(&body, content_sha256, report).await? {
                    return Ok(Prepared::Hold(reason));
                }
                uploaded.insert(body.blob);
                report.attachments += 1;
            }
        }
        Ok(Prepared::Send(code))
    }

    /// Uploads an attachment's blob, sealed to the study key, resuming from what the server
    /// holds. `Some(reason)` when the blob on the device cannot be sent.
    async fn upload(
        &self,
        body: &AttachmentBody,
        content_sha256: &str,
        report: &mut SyncReport,
    ) -> Result<Option<HoldReason>, SyncError> {
        let blob = body.blob;
        let found = self.store.chunk_count(blob).await?;
        if found != body.chunks {
            return Ok(Some(HoldReason::BlobIncomplete {
                expected: body.chunks,
                found,
            }));
        }
        let mut chunks = Vec::with_capacity(found as usize);
        for index in 0..found {
            let sealed = self.store.chunk(blob, index).await?.ok_or_else(|| {
                StoreError::Backend(format!("blob chunk {index} vanished during sync"))
            })?;
            chunks.push(self.identity.vault.open_chunk(blob, index, &sealed)?);
        }
        if sha256_hex(&chunks.concat()) != content_sha256 {
            return Ok(Some(HoldReason::ContentHashMismatch));
        }
        let seed = self.identity.vault.attachment_seed(blob, content_sha256);
        let sealed = seal_attachment(blob, &chunks, self.identity.study_key, &seed)?;
        drop(chunks);
        let length = sealed.len() as u64;
        let sha256 = sha256_hex(&sealed);
        let state = self
            .transport
            .upload_create(&UploadCreate {
                blob_id: blob,
                length,
                sha256: sha256.clone(),
            })
            .await?;
        if state.complete {
            return Ok(None);
        }
        let mut offset = state.offset;
        let mut mismatches = 0;
        while offset < length {
            let start = usize::try_from(offset)
                .map_err(|_| SyncError::Protocol("upload offset out of range".into()))?;
            let end = start
                .saturating_add(self.limits.upload_piece)
                .min(sealed.len());
            match self
                .transport
                .upload_append(&sha256, offset, &sealed[start..end])
                .await
            {
                Ok(next) if next > offset && next <= length => {
                    report.uploaded_bytes += next - offset;
                    offset = next;
                    mismatches = 0;
                }
                Ok(next) => {
                    return Err(SyncError::Protocol(format!(
                        "an upload piece at {offset} moved the server's offset to {next}"
                    )));
                }
                // Another attempt (a lost answer, another tab) moved the server on: resume
                // from where it is. Three times in a row without moving on is not a race.
                Err(TransportError::OffsetMismatch { server_offset })
                    if server_offset <= length && (server_offset > offset || mismatches < 2) =>
                {
                    mismatches = if server_offset > offset {
                        0
                    } else {
                        mismatches + 1
                    };
                    report.uploaded_bytes += server_offset.saturating_sub(offset);
                    offset = server_offset;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(None)
    }
}
