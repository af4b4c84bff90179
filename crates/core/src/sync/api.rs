//! The sync API's JSON bodies: one definition for the server, the sync engine and the app.
//!
//! - `POST /api/enrol` [`EnrolRequest`] -> [`EnrolResponse`].
//! - `POST /api/push` [`PushRequest`] -> [`PushResponse`], one [`PushResult`] per envelope,
//!   in the order sent, only after the server's transaction committed.
//! - `GET /api/pull?after=CURSOR` -> [`PullResponse`]: [`ControlMessage`]s and, for a revoked
//!   device, the [`Revocation`].
//! - `POST /api/codes/reserve` [`ReserveRequest`] -> [`ReserveResponse`]: participant-code
//!   numbers reserved for this device (see [`crate::codes`]).

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::ids::{DeviceId, RecordId};
use crate::record::ContentHash;
use crate::time::Timestamp;

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
}

impl std::fmt::Debug for EnrolResponse {
    // The token is a credential: never print it, so it cannot end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolResponse")
            .field("device_id", &self.device_id)
            .field("device_token", &"<hidden>")
            .field("study_public_key", &self.study_public_key)
            .finish()
    }
}

/// `POST /api/push` request: a batch of sealed, signed revisions. A batch with any bad
/// envelope is refused whole.
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
    /// them.
    Withdrawal {
        /// The participant's pseudonymous code.
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
    /// A kind of message this version does not know (a newer server): the device stops
    /// reading messages there, so nothing after it is skipped, and asks to be updated.
    #[serde(other)]
    Unknown,
}

/// A message from the study team for devices; `id` is the pull cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlMessage {
    /// Increasing: pull with `after` = the last id seen.
    pub id: i64,
    /// What to do.
    #[serde(flatten)]
    pub kind: ControlKind,
    /// When the study team made it.
    pub created_at: Timestamp,
}

/// Why a device was revoked, in a [`PullResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The study team's reason, shown to the fieldworker.
    pub reason: String,
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
