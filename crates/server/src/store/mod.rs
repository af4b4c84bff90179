//! The server's storage: one [`Store`] trait with a SQLite ([`SqliteStore`], the default, in
//! the data directory) and a PostgreSQL ([`PostgresStore`], `--database-url`) implementation.
//! Both share their SQL (`sql.rs`) and run the same test suite (`store_conformance_tests!`).
//!
//! The server stores ciphertext plus minimal metadata: it can tell who sent what and when,
//! never what a record says. Envelopes and conflicts are append-only; the one mutating paths
//! are consuming an enrolment code or challenge and revoking a device.
//!
//! Control messages are stored as the study team's CLI signed them (`seq`, kind, fields,
//! `created_at`, signature) and served unchanged; the server holds only the study signing
//! key's public half, so it cannot make one. Rows from before signing (seq NULL) stay readable
//! ([`Store::withdrawals`], [`Store::published_protocols`]) and are never served to devices.

mod checks;
mod known;
mod postgres;
pub(crate) mod rate_limits;
mod sql;
mod sqlite;
#[doc(hidden)]
pub mod suite;
#[doc(hidden)]
pub mod suite_team;
pub(crate) mod team;
pub(crate) mod team_records;
mod team_sql;
pub(crate) mod uploads;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
pub use attune_core::review::{
    Device, DeviceStatus, KeptConflict, StoredEnvelope, WithdrawalRecord, same_fieldworker,
};
use attune_core::{Envelope, Timestamp};
// The API's message types are defined once, in attune-core, for the server and devices.
pub use attune_core::sync::{
    CodeBlock, ConflictReason, ControlKind, ControlMessage, PushOutcome, ReserveWant,
};
use serde::{Deserialize, Serialize};

pub use postgres::PostgresStore;
pub use rate_limits::{Attempt, RateLimit, RateLimitStore};
pub use sqlite::{DATABASE_FILE, SqliteStore};
pub use team::{
    Ceremony, CeremonyKind, InvitationState, NewTeamInvitation, NewTeamMember, Passkey,
    RegisterOutcome, TeamMember, TeamStore,
};
pub use team_records::{TeamRecordOutcome, TeamRecordStore};
pub use uploads::{NewUpload, Upload, UploadStore};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {place}: {source}")]
    Open { place: String, source: sqlx::Error },
    #[error("cannot migrate the database {place}: {source}")]
    Migrate {
        place: String,
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored data could not be read back (e.g. an envelope that is no longer valid JSON).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Which database to use. `Debug` hides the password of a PostgreSQL URL, so the settings can
/// be logged.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// SQLite in `data_dir/attune.db` (WAL, synchronous FULL).
    Sqlite { data_dir: PathBuf },
    /// PostgreSQL at this `postgres://` URL.
    Postgres { url: String },
}

impl DatabaseConfig {
    /// PostgreSQL if a URL is given, otherwise SQLite in the data directory.
    pub fn new(database_url: Option<String>, data_dir: &Path) -> Self {
        match database_url {
            Some(url) if !url.trim().is_empty() => DatabaseConfig::Postgres { url },
            _ => DatabaseConfig::Sqlite {
                data_dir: data_dir.to_path_buf(),
            },
        }
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:*****@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:*****@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseConfig::Sqlite { data_dir } => f
                .debug_struct("Sqlite")
                .field("data_dir", data_dir)
                .finish(),
            DatabaseConfig::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .finish(),
        }
    }
}

/// Opens the configured database and applies pending migrations.
pub async fn connect(config: &DatabaseConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config {
        DatabaseConfig::Sqlite { data_dir } => Arc::new(SqliteStore::open(data_dir).await?),
        DatabaseConfig::Postgres { url } => Arc::new(PostgresStore::connect(url).await?),
    })
}

/// Opens (creating if needed) the SQLite store in `data_dir`.
pub async fn open_store(data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open(data_dir).await?))
}

/// A device to register when an enrolment code is redeemed.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub id: String,
    pub name: String,
    pub public_key: String,
    /// SHA-256 hex of the device token.
    pub token_hash: String,
}

/// How long after redeeming a code the same device may redeem it again (15 minutes): its
/// answer was lost on the way (the network dropped), so it never got its token.
pub const REENROL_WINDOW_MS: i64 = 15 * 60 * 1000;

/// What redeeming an enrolment code did.
///
/// A device already enrolled with the same id and signing key (and not revoked) may enrol
/// again, with a new code or, within [`REENROL_WINDOW_MS`], with the code it used: it gets a
/// new token and the old one stops working. So a tablet whose enrolment answer was lost is
/// never stuck with its id "taken".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnrolOutcome {
    Enrolled(Device),
    UnknownCode,
    Expired,
    AlreadyUsed,
    /// A device with this id is already enrolled.
    DeviceIdTaken,
}

/// What the store did with one pushed envelope ([`Store::push_checked`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub outcome: PushOutcome,
    /// Why it was kept as a conflict (only for [`PushOutcome::Conflict`]).
    pub reason: Option<ConflictReason>,
}

/// One export, as logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLogEntry {
    pub who: String,
    pub at: Timestamp,
    pub what: String,
}

/// A protocol version published to devices (`attune-server protocol publish`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedProtocol {
    /// The control message that carries it to devices.
    pub message_id: i64,
    /// Its instruction number; `None` if published before instructions were signed (it is
    /// then not served to devices).
    pub seq: Option<u64>,
    /// The protocol's id, e.g. `vig-evaluation`.
    pub protocol_id: String,
    /// Its version.
    pub version: u32,
    /// The protocol file's JSON, as published.
    pub protocol: String,
    /// When it was published.
    pub published_at: Timestamp,
}

/// What publishing a protocol version did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Recorded: devices receive it on their next sync.
    Published(PublishedProtocol),
    /// Refused: this version of the protocol is not newer than the last one published.
    NotNewer { latest: u32 },
    /// Refused: another instruction took this `seq` meanwhile; sign again with the next.
    SeqTaken,
}

/// A control message to record, as the study team's CLI signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewControlMessage {
    /// Its instruction number ([`Store::next_control_seq`] when signed).
    pub seq: u64,
    /// What it asks.
    pub kind: ControlKind,
    /// When it was made (signed).
    pub created_at: Timestamp,
    /// The study signing key's signature, base64.
    pub signature: String,
}

/// What recording a withdrawal did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// Recorded: devices receive it on their next sync.
    Added(ControlMessage),
    /// Refused: another instruction took this `seq` meanwhile; sign again with the next.
    SeqTaken,
}

/// What revoking a device did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked, with the signed statement it is handed on pull.
    Revoked(ControlMessage),
    /// No device with this id.
    UnknownDevice,
    /// Already revoked with a signed statement: nothing changed.
    AlreadyRevoked,
    /// Refused: another instruction took this `seq` meanwhile; sign again with the next.
    SeqTaken,
}

/// The study's keys as the server holds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyRecord {
    /// The study public key (base64).
    pub public_key: String,
    /// The study signing key's public half (base64); `None` for a study made before
    /// instructions were signed.
    pub signing_public_key: Option<String>,
    /// The signing key's signature over the public key (base64), with `signing_public_key`.
    pub public_key_signature: Option<String>,
}

/// A block of participant-code numbers as the server keeps it: for which device, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedBlock {
    /// The block (id, prefix, first number, how many).
    pub block: CodeBlock,
    /// The device it was reserved for.
    pub device_id: String,
    /// When.
    pub reserved_at: Timestamp,
}

/// The server's storage. Implemented by [`SqliteStore`] and [`PostgresStore`]; the uploads
/// table is its supertrait [`UploadStore`].
#[async_trait]
pub trait Store:
    UploadStore + TeamStore + TeamRecordStore + RateLimitStore + Send + Sync + fmt::Debug
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Runs a trivial query: whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the connections; later calls fail.
    async fn close(&self);

    /// Records the study public key (base64). Returns false if one is already set (it is never
    /// replaced: envelopes sealed to it would become unreadable to the team's key file).
    async fn set_study_public_key(&self, key: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// The study public key, once `study init` has run.
    async fn study_public_key(&self) -> Result<Option<String>, StoreError>;

    /// Stores a one-time enrolment code (as its hash).
    async fn create_enrolment_code(
        &self,
        code_hash: &str,
        fieldworker: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// In one transaction: checks the code (known, not expired, unused), marks it used and
    /// registers the device for the code's fieldworker.
    async fn enrol_device(
        &self,
        code_hash: &str,
        device: NewDevice,
        now: Timestamp,
    ) -> Result<EnrolOutcome, StoreError>;
    /// The device holding this token, whatever its status.
    async fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>, StoreError>;
    /// Every device, oldest first.
    async fn list_devices(&self) -> Result<Vec<Device>, StoreError>;
    /// In one transaction: revokes a device and records the signed revocation `message`
    /// (kind [`ControlKind::Revocation`], naming `device_id`; its reason is the one kept). A
    /// device revoked before revocations were signed gets the signed statement now.
    async fn revoke_device(
        &self,
        device_id: &str,
        message: &NewControlMessage,
    ) -> Result<RevokeOutcome, StoreError>;

    /// Stores a batch in ONE transaction, committed before returning; one outcome per item.
    /// The same checks as [`Store::push_checked`], without the reasons.
    async fn push(
        &self,
        device_id: &str,
        batch: &[Envelope],
        received_at: Timestamp,
    ) -> Result<Vec<PushOutcome>, StoreError>;
    /// Every stored envelope (not the conflicts), in arrival order.
    async fn envelopes(&self) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// Every kept conflict, in arrival order (not those stored since: [`Store::kept_conflicts`]).
    async fn conflicts(&self) -> Result<Vec<StoredEnvelope>, StoreError>;

    /// Records a signed withdrawal (kind [`ControlKind::Withdrawal`]); returns the message.
    async fn add_withdrawal(&self, message: &NewControlMessage) -> Result<AddOutcome, StoreError>;
    /// In one transaction: records a signed protocol update (kind
    /// [`ControlKind::ProtocolUpdate`], the protocol file's JSON, validated by the caller),
    /// unless `version` is not newer than the last signed version published for
    /// `protocol_id` (the same version as one published unsigned, before signing, may be
    /// published again).
    async fn publish_protocol(
        &self,
        protocol_id: &str,
        version: u32,
        message: &NewControlMessage,
    ) -> Result<PublishOutcome, StoreError>;
    /// Every published protocol version, oldest first (also those from before signing).
    async fn published_protocols(&self) -> Result<Vec<PublishedProtocol>, StoreError>;
    /// Signed control messages with an id greater than `cursor`, in order: what devices
    /// pull. Rows from before signing are left out (devices would refuse them).
    async fn control_messages_after(&self, cursor: i64) -> Result<Vec<ControlMessage>, StoreError>;

    /// Logs an export.
    async fn log_export(&self, entry: &ExportLogEntry) -> Result<(), StoreError>;
    /// Every logged export, oldest first.
    async fn export_log(&self) -> Result<Vec<ExportLogEntry>, StoreError>;

    /// Records the study signing key's public half and its signature over the study public
    /// key, once: false if one is already set or there is no study key yet.
    async fn set_study_signing_key(
        &self,
        signing_public_key: &str,
        public_key_signature: &str,
    ) -> Result<bool, StoreError>;
    /// The study's keys, once `study init` has run.
    async fn study_keys(&self) -> Result<Option<StudyRecord>, StoreError>;
    /// The number the next control message is signed with: one more than the highest
    /// recorded, 1 at first. Recording fails with `SeqTaken` if another took it meanwhile.
    async fn next_control_seq(&self) -> Result<u64, StoreError>;
    /// Every withdrawal, oldest first, signed or from before signing.
    async fn withdrawals(&self) -> Result<Vec<WithdrawalRecord>, StoreError>;
    /// The signed revocation of a revoked device, handed to it on pull.
    async fn revocation_statement(
        &self,
        device_id: &str,
    ) -> Result<Option<ControlMessage>, StoreError>;
    /// Stores a one-time enrolment challenge (and forgets expired ones).
    async fn create_enrol_challenge(
        &self,
        challenge: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Consumes a challenge: true if it was known and not expired; it cannot be used again.
    async fn take_enrol_challenge(
        &self,
        challenge: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Stores a batch in ONE transaction, committed before returning, checking each envelope
    /// against what is stored (earlier items of the batch included); one result per item:
    ///
    /// - the same (record id, rev, hash) stored: `already_stored`; another hash under the
    ///   same (record id, rev): a conflict ([`ConflictReason::RevTaken`]);
    /// - rev n > 1 whose rev n-1 is not stored: [`ConflictReason::Gap`]; a parent hash that
    ///   is not the stored rev n-1's hash (or a rev 1 with a parent):
    ///   [`ConflictReason::ParentMismatch`];
    /// - a record whose rev 1 came from another device, unless both devices are the same
    ///   fieldworker's ([`same_fieldworker`]): [`ConflictReason::OwnedByAnotherDevice`];
    /// - a participant record (kind `participant`) whose code another participant record
    ///   holds: [`ConflictReason::CodeTaken`]; otherwise the code is now this record's.
    ///
    /// A conflict is kept (never dropped, listed by [`Store::kept_conflicts`]) and
    /// acknowledged like any outcome. When a revision is stored, a gap conflict that was
    /// waiting for it (the next rev, with it as parent) is checked again and stored if it
    /// passes; its conflict row stays but is no longer listed.
    async fn push_checked(
        &self,
        device_id: &str,
        batch: &[Envelope],
        received_at: Timestamp,
    ) -> Result<Vec<Pushed>, StoreError>;
    /// Every kept conflict with its reason, in arrival order; a conflict stored since (a gap
    /// that was filled) is not listed.
    async fn kept_conflicts(&self) -> Result<Vec<KeptConflict>, StoreError>;
    /// Reserves participant-code numbers for a device, in ONE transaction. For each item of
    /// `wants` (checked by the caller: each prefix one capital letter, at most once, `want`
    /// at most [`MAX_BLOCK`](attune_core::codes::MAX_BLOCK)): every block already reserved
    /// for `device_id` and that prefix with an id above `after` (a lost answer's block comes
    /// again), and, if those hold fewer than `want` numbers, one new block with the rest,
    /// unless the device already holds [`MAX_OUTSTANDING`](attune_core::codes::MAX_OUTSTANDING)
    /// numbers it has not used in a participant record it pushed.
    ///
    /// New numbers come from the prefix's counter, moved under the database's lock, so no
    /// number is ever reserved twice, by concurrent requests or by several server instances
    /// on one database; the first block of a prefix starts above every code the server holds
    /// with it (participant records, conflicts, withdrawals), so codes given out before
    /// reservations existed are never given again.
    async fn reserve_codes(
        &self,
        device_id: &str,
        wants: &[ReserveWant],
        now: Timestamp,
    ) -> Result<Vec<CodeBlock>, StoreError>;
    /// Every block of participant-code numbers reserved, oldest first.
    async fn code_blocks(&self) -> Result<Vec<ReservedBlock>, StoreError>;
}
