//! The study team's own records, made in the researcher console: a **safeguarding
//! acknowledgement** (who dealt with a flagged note, when, and how) and a **conflict
//! resolution** (which version of a record two tablets changed apart is the one to use, or
//! the text merged from both).
//!
//! The server is not trusted with them: they may name people, and they change what the study
//! team reads. So each is sealed and signed in the browser:
//!
//! - the body ([`TeamRecordBody`], JSON) is sealed to the study public key with HPKE, the
//!   same suite as envelopes, under the `info` `attune.team-record.v1`, bound (as `aad`) to
//!   the canonical encoding of the record's id under `attune.team-record-aad.v1`;
//! - the sealed bytes are signed with the study signing key over the encoding
//!   `attune.team-record.v1` of the id then the sealed bytes
//!   ([`crate::signing::team_record_signed_bytes`]), a domain no other signature uses.
//!
//! The server checks the signature with the study signing key it holds, stores the record
//! and hands it back in the [`Snapshot`](super::Snapshot). The console checks the signature
//! again with the key from the study key file (never the server's copy) and opens the body
//! ([`verify_and_open`]); a record moved onto another id fails both. What the records change
//! is applied by [`resolutions`] over the opened study, so the console and a later export
//! read a resolved conflict the same way.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::encoding::Encoder;
use crate::envelope::{
    EnvelopeError, StudyPrivateKey, StudyPublicKey, open_from_study, seal_to_study,
};
use crate::ids::{RecordId, TeamRecordId};
use crate::record::ContentHash;
use crate::signing::{StudySigningKey, StudyVerifyingKey};
use crate::time::Timestamp;

use super::open::{Opened, OpenedConflict, OpenedRevision};

/// `POST` a [`NewTeamRecord`]; the answer is [`TeamRecordAdded`].
pub const TEAM_RECORDS_PATH: &str = "/api/console/team-records";

/// The largest team record the server takes, as its JSON request body (64 KiB).
pub const MAX_TEAM_RECORD_BYTES: usize = 64 * 1024;

/// The HPKE `info` of a team record's sealed body.
const SEAL_INFO: &[u8] = b"attune.team-record.v1";

/// What a team record does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TeamAction {
    /// A researcher dealt with a note flagged as a safeguarding concern.
    SafeguardingAcknowledgement {
        /// The flagged note.
        record_id: RecordId,
        /// The revision of the note that was read.
        rev: u32,
    },
    /// A researcher chose how a kept conflict reads from now on.
    ConflictResolution {
        /// The record two versions of which were kept.
        record_id: RecordId,
        /// The revision of the record's chain the researcher saw beside the conflict.
        record_rev: u32,
        /// The content hash of the conflicting revision (kept apart) this resolves.
        conflict_hash: ContentHash,
        /// What to use.
        outcome: Outcome,
    },
}

/// How a conflict was resolved. Nothing is deleted: both versions stay in the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The version in the record's chain.
    KeepRecord,
    /// The version kept apart.
    KeepConflict,
    /// A note's text merged from both (the rest of the note as in the chain's version).
    Merged {
        /// The merged text.
        text: String,
    },
}

/// A team record's sealed body: what it does, the member's note, who and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecordBody {
    /// What it does (`kind` and its fields).
    #[serde(flatten)]
    pub action: TeamAction,
    /// The member's note ("Called the family's social worker on 3 Dec").
    pub note: String,
    /// The member's display name, as the team knows them.
    pub by: String,
    /// When it was made (the console's clock).
    pub at: Timestamp,
}

/// `POST /api/console/team-records`: a team record as the console made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTeamRecord {
    /// Its id (UUIDv7, made in the console). Sending the same record again is harmless.
    pub id: TeamRecordId,
    /// Base64: the HPKE encapsulated key, then the ciphertext of the body.
    pub sealed: String,
    /// Base64: the study signing key's signature over the id and the sealed bytes.
    pub signature: String,
}

/// The server's answer when it stored a team record (or already had it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecordAdded {
    /// The record's id.
    pub id: TeamRecordId,
    /// When the server first stored it.
    pub created_at: Timestamp,
}

/// A team record as the server holds it ([`Snapshot::team_records`](super::Snapshot)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTeamRecord {
    /// Its id.
    pub id: TeamRecordId,
    /// The study team member whose session posted it.
    pub member_id: String,
    /// When the server stored it (the server's clock).
    pub created_at: Timestamp,
    /// As posted: base64 of the sealed body.
    pub sealed: String,
    /// As posted: base64 of the signature.
    pub signature: String,
}

/// Why a team record was refused or not used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TeamRecordProblem {
    /// The sealed bytes or signature are not base64 of the right length.
    #[error("the team record is malformed: {0}")]
    Malformed(String),
    /// The signature is not the study signing key's over this id and these bytes.
    #[error("its signature is not the study signing key's (altered, or moved onto another id)")]
    BadSignature,
    /// The body does not open with the study key.
    #[error("it does not open with this study key")]
    CannotOpen,
    /// The body opened but is not a team record this console can read.
    #[error("its body cannot be read: {0}")]
    Unreadable(String),
    /// The key file is version 1: it has no signing key to check the record with.
    #[error("it cannot be checked: this study key file has no signing key (version 1)")]
    NoSigningKey,
    /// Sealing failed (the random source, or HPKE).
    #[error("sealing failed: {0}")]
    Seal(String),
}

fn aad(id: &TeamRecordId) -> Vec<u8> {
    Encoder::new("attune.team-record-aad.v1")
        .fixed(id.as_bytes())
        .finish()
}

fn sealed_bytes(sealed: &str) -> Result<Vec<u8>, TeamRecordProblem> {
    BASE64
        .decode(sealed)
        .map_err(|_| TeamRecordProblem::Malformed("sealed is not base64".into()))
}

/// Seals `body` to the study key and signs it with the study signing key, under a new id
/// made from the body's time.
///
/// # Errors
/// [`TeamRecordProblem::Seal`] if HPKE or the body's encoding fails.
pub fn seal_and_sign(
    body: &TeamRecordBody,
    study: &StudyPublicKey,
    signing: &StudySigningKey,
) -> Result<NewTeamRecord, TeamRecordProblem> {
    let id = TeamRecordId::new(body.at);
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(body).map_err(|error| TeamRecordProblem::Seal(error.to_string()))?,
    );
    let sealed = seal_to_study(study, SEAL_INFO, &aad(&id), &plaintext)
        .map_err(|error| TeamRecordProblem::Seal(error.to_string()))?;
    Ok(NewTeamRecord {
        id,
        signature: signing.sign_team_record(&id, &sealed),
        sealed: BASE64.encode(&sealed),
    })
}

impl NewTeamRecord {
    /// Checks the signature with the study signing key (what the server does on `POST`).
    ///
    /// # Errors
    /// [`TeamRecordProblem::Malformed`] or [`TeamRecordProblem::BadSignature`].
    pub fn verify(&self, key: &StudyVerifyingKey) -> Result<(), TeamRecordProblem> {
        let sealed = sealed_bytes(&self.sealed)?;
        key.verify_team_record(&self.id, &sealed, &self.signature)
            .map_err(|error| match error {
                crate::signing::SigningError::Malformed(why) => TeamRecordProblem::Malformed(why),
                _ => TeamRecordProblem::BadSignature,
            })
    }
}

/// Checks a stored team record's signature with the study signing key, then opens its body
/// with the study private key.
///
/// # Errors
/// A [`TeamRecordProblem`]: never a body that did not verify.
pub fn verify_and_open(
    stored: &StoredTeamRecord,
    key: &StudyVerifyingKey,
    private: &StudyPrivateKey,
) -> Result<TeamRecordBody, TeamRecordProblem> {
    let posted = NewTeamRecord {
        id: stored.id,
        sealed: stored.sealed.clone(),
        signature: stored.signature.clone(),
    };
    posted.verify(key)?;
    let sealed = sealed_bytes(&stored.sealed)?;
    let plaintext =
        open_from_study(private, SEAL_INFO, &aad(&stored.id), &sealed).map_err(|e| match e {
            EnvelopeError::Malformed(why) => TeamRecordProblem::Malformed(why),
            _ => TeamRecordProblem::CannotOpen,
        })?;
    serde_json::from_slice(&plaintext)
        .map_err(|error| TeamRecordProblem::Unreadable(error.to_string()))
}

/// A team record that verified and opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedTeamRecord {
    /// Its id.
    pub id: TeamRecordId,
    /// The member whose session posted it.
    pub member_id: String,
    /// When the server stored it.
    pub created_at: Timestamp,
    /// What it says.
    pub body: TeamRecordBody,
}

/// Every team record, opened, and the ones that were not (with why), in the server's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenedTeamRecords {
    /// Verified and opened.
    pub records: Vec<OpenedTeamRecord>,
    /// Left out: the record's id and why.
    pub failed: Vec<(TeamRecordId, TeamRecordProblem)>,
}

impl OpenedTeamRecords {
    /// Verifies and opens `stored`; with no signing key (a version 1 key file) none is used.
    pub fn open(
        stored: &[StoredTeamRecord],
        key: Option<&StudyVerifyingKey>,
        private: &StudyPrivateKey,
    ) -> Self {
        let mut opened = Self::default();
        for record in stored {
            let result = match key {
                Some(key) => verify_and_open(record, key, private),
                None => Err(TeamRecordProblem::NoSigningKey),
            };
            match result {
                Ok(body) => opened.records.push(OpenedTeamRecord {
                    id: record.id,
                    member_id: record.member_id.clone(),
                    created_at: record.created_at,
                    body,
                }),
                Err(problem) => opened.failed.push((record.id, problem)),
            }
        }
        opened
    }

    /// The acknowledgements of the flagged note `record_id`, oldest first.
    pub fn acknowledgements(&self, record_id: &RecordId) -> Vec<&OpenedTeamRecord> {
        let mut found: Vec<&OpenedTeamRecord> = self
            .records
            .iter()
            .filter(|r| {
                matches!(&r.body.action,
                    TeamAction::SafeguardingAcknowledgement { record_id: id, .. } if id == record_id)
            })
            .collect();
        found.sort_by_key(|r| (r.body.at, r.created_at));
        found
    }

    /// The latest resolution of the conflict whose kept-apart revision has `conflict_hash`.
    pub fn resolution_of(&self, conflict_hash: &ContentHash) -> Option<&OpenedTeamRecord> {
        self.records
            .iter()
            .filter(|r| {
                matches!(&r.body.action,
                    TeamAction::ConflictResolution { conflict_hash: hash, .. } if hash == conflict_hash)
            })
            .max_by_key(|r| (r.body.at, r.created_at))
    }
}

/// A record whose conflict the team resolved: what it reads as now.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The record's body as resolved (the kept version's, or the chain's with the merged
    /// text).
    pub body: Vec<u8>,
    /// The revision whose body this is (for a merge: the chain's one the text replaced).
    pub from: OpenedRevision,
    /// The resolution that decided it.
    pub by: OpenedTeamRecord,
}

/// What each resolved record reads as now, by record id: for each record, its latest
/// resolution (by the time it was made) of a conflict that opened. Resolutions of conflicts
/// not in `opened` (withdrawn, failed) are not applied. An export reads `body` instead of
/// the latest revision's for these records.
pub fn resolutions(opened: &Opened, team: &OpenedTeamRecords) -> BTreeMap<RecordId, Resolved> {
    let histories = opened.histories();
    let mut out: BTreeMap<RecordId, Resolved> = BTreeMap::new();
    let mut decided: Vec<&OpenedTeamRecord> = team.records.iter().collect();
    decided.sort_by_key(|r| (r.body.at, r.created_at));
    for record in decided {
        let TeamAction::ConflictResolution {
            record_id,
            record_rev,
            conflict_hash,
            outcome,
        } = &record.body.action
        else {
            continue;
        };
        let Some(conflict) = opened.conflicts.iter().find(|c: &&OpenedConflict| {
            c.opened.revision.hash == *conflict_hash && c.opened.revision.record_id == *record_id
        }) else {
            continue;
        };
        let history = histories.get(&record_id.to_string());
        let chain = history.and_then(|h| {
            h.iter()
                .find(|r| r.revision.rev == *record_rev)
                .or_else(|| h.last())
                .map(|r| (*r).clone())
        });
        let resolved = match (outcome, chain) {
            (Outcome::KeepConflict, _) => Some((
                conflict.opened.revision.body.clone(),
                conflict.opened.clone(),
            )),
            (Outcome::KeepRecord, Some(chain)) => Some((chain.revision.body.clone(), chain)),
            (Outcome::Merged { text }, Some(chain)) => {
                merged_body(&chain.revision.body, text).map(|body| (body, chain))
            }
            (_, None) => None,
        };
        if let Some((body, from)) = resolved {
            out.insert(
                *record_id,
                Resolved {
                    body,
                    from,
                    by: record.clone(),
                },
            );
        }
    }
    out
}

/// `body` (a note's JSON) with its `text` replaced; `None` if it is not a JSON object.
fn merged_body(body: &[u8], text: &str) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .as_object_mut()?
        .insert("text".into(), serde_json::Value::String(text.to_owned()));
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
#[path = "team_records_tests.rs"]
mod tests;
