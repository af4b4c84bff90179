//! What the server holds, as the study team reviews it: the stored envelopes with the devices
//! that pushed them, kept conflicts and withdrawals, and [`verify`], which checks them without
//! the study key (signatures, chains, owners). `attune-server export` and `check` use it on
//! the server's database; the researcher console uses it in the browser on what the server
//! sent ([`crate::review::Snapshot`]), so a lying server is caught the same way in both.

pub mod enrolment;
pub mod instructions;
pub mod open;
pub mod team_records;
pub mod verify;

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::ids::ParticipantId;
use crate::sync::ConflictReason;
use crate::time::Timestamp;

/// Whether a device may push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Enrolled and allowed to push.
    Active,
    /// Revoked by the study team: its pushes are refused.
    Revoked,
}

/// An enrolled device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device id (the one in its revisions).
    pub id: String,
    /// The fieldworker it was enrolled for (`enrol create --fieldworker`).
    pub fieldworker: String,
    /// The name the tablet gave itself.
    pub name: String,
    /// Ed25519 public key, base64.
    pub public_key: String,
    /// Active or revoked.
    pub status: DeviceStatus,
    /// Why it was revoked, as the admin wrote it.
    pub revoked_reason: Option<String>,
    /// When it redeemed its enrolment code.
    pub enrolled_at: Timestamp,
}

/// An envelope as the server holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEnvelope {
    /// The sealed, signed revision as pushed.
    pub envelope: Envelope,
    /// The device whose token pushed it.
    pub device_id: String,
    /// When the server stored it (the server's clock).
    pub received_at: Timestamp,
}

/// A kept conflict with why it was kept (the server's `Store::kept_conflicts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptConflict {
    /// The envelope kept beside the stored chain.
    pub stored: StoredEnvelope,
    /// Why it was not stored in the chain.
    pub reason: ConflictReason,
    /// What the check found, in words (e.g. "rev 2 of this record is not stored").
    pub detail: Option<String>,
}

/// A withdrawal as stored: signed (by participant id) or from before signing (code only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalRecord {
    /// The control message.
    pub message_id: i64,
    /// Its instruction number; `None` for a withdrawal from before signing.
    pub seq: Option<u64>,
    /// The participant; `None` for a withdrawal from before signing, which named a code.
    pub participant_id: Option<ParticipantId>,
    /// The participant's code, as recorded.
    pub participant_code: String,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// `GET /api/console/snapshot` ([`SNAPSHOT_PATH`]): everything the server holds for the study
/// team to review, still sealed. The console verifies ([`verify`]) and opens
/// ([`open::open_all`]) it in the browser with the study key, which never reaches the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every device ever enrolled (revoked ones too: what they signed before still verifies).
    pub devices: Vec<Device>,
    /// Every stored revision, in the order the server received them.
    pub envelopes: Vec<StoredEnvelope>,
    /// Revisions kept beside their record's chain.
    pub conflicts: Vec<KeptConflict>,
    /// Withdrawals the study team recorded.
    pub withdrawals: Vec<WithdrawalRecord>,
    /// Protocol versions published after the built-in one, as their JSON files.
    pub protocols: Vec<String>,
    /// The study team's own records (acknowledgements, resolutions), sealed and signed in
    /// the console ([`team_records`]); absent from servers older than them.
    #[serde(default)]
    pub team_records: Vec<team_records::StoredTeamRecord>,
}

/// Where the console reads the [`Snapshot`].
pub const SNAPSHOT_PATH: &str = "/api/console/snapshot";

/// Where the console reads a recording's sealed bytes (as uploaded by the tablet), by the
/// blob id in its attachment record.
pub fn blob_path(blob: &crate::ids::BlobId) -> String {
    format!("/api/console/blobs/{blob}")
}

/// Whether two devices' fieldworkers are the same person: the names given to `enrol create`,
/// compared without case or surrounding spaces. A record may be continued on another device of
/// its fieldworker (a re-enrolled tablet), never on another fieldworker's.
pub fn same_fieldworker(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}
