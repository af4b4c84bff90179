//! Opening what the server holds with the study key, after [`verify`](super::verify): the
//! same steps for `attune-server export` and for the researcher console in the browser.
//!
//! - Envelopes about a withdrawn participant are left out (counted, never opened into the
//!   result).
//! - A revision that fails verification, or does not open, is listed in [`Opened::failed`]
//!   with why; so is every later revision of its record (its chain is broken from there).
//! - Kept conflicts are opened beside the records, signature-checked only (they are outside
//!   the chain by definition).

use std::collections::{BTreeMap, HashSet};

use crate::envelope::{Envelope, StudyPrivateKey};
use crate::export::ExportRecord;
use crate::ids::ParticipantId;
use crate::record::Revision;
use crate::sync::ConflictReason;

use super::verify::{self, Devices, Problem};
use super::{KeptConflict, StoredEnvelope, WithdrawalRecord};

/// Who is left out: participants with a signed withdrawal, and, for withdrawals from before
/// signing that no signed withdrawal resolved, every participant with that code.
#[derive(Clone, Debug, Default)]
pub struct Withdrawn {
    /// Participants with a signed withdrawal.
    pub ids: HashSet<ParticipantId>,
    /// Codes of unresolved withdrawals from before signing.
    pub legacy_codes: HashSet<String>,
}

impl Withdrawn {
    /// From the withdrawals the server holds.
    pub fn of(withdrawals: &[WithdrawalRecord]) -> Self {
        let signed_codes: HashSet<&str> = withdrawals
            .iter()
            .filter(|w| w.participant_id.is_some())
            .map(|w| w.participant_code.as_str())
            .collect();
        let mut withdrawn = Withdrawn::default();
        for withdrawal in withdrawals {
            match withdrawal.participant_id {
                Some(id) => {
                    withdrawn.ids.insert(id);
                }
                None if !signed_codes.contains(withdrawal.participant_code.as_str()) => {
                    withdrawn
                        .legacy_codes
                        .insert(withdrawal.participant_code.clone());
                }
                None => {}
            }
        }
        withdrawn
    }

    /// How many participants (or legacy codes) are withdrawn.
    pub fn count(&self) -> usize {
        self.ids.len() + self.legacy_codes.len()
    }

    /// Whether `envelope` (opened as `revision`, if it opens) is about a withdrawn
    /// participant: by participant id (a participant record's own id included), by code only
    /// for withdrawals from before signing.
    pub fn excludes(&self, envelope: &Envelope, revision: Option<&Revision>) -> bool {
        let code = envelope.participant_code.as_deref();
        let by_code = code.is_some_and(|code| self.legacy_codes.contains(code));
        match revision {
            Some(revision) => {
                by_code
                    || revision
                        .participant
                        .is_some_and(|id| self.ids.contains(&id))
            }
            None => by_code,
        }
    }
}

/// A revision that verified and opened.
#[derive(Clone, Debug)]
pub struct OpenedRevision {
    /// The plaintext revision.
    pub revision: Revision,
    /// The participant code on the envelope, if any.
    pub participant_code: Option<String>,
    /// The device that made, signed and pushed it.
    pub device: String,
    /// The fieldworker that device was enrolled for.
    pub fieldworker: String,
}

/// A kept conflict that verified and opened.
#[derive(Clone, Debug)]
pub struct OpenedConflict {
    /// The conflicting revision.
    pub opened: OpenedRevision,
    /// Why the server kept it apart.
    pub reason: ConflictReason,
    /// What the server's check found, in words.
    pub detail: Option<String>,
}

/// Whether a failed envelope was in a record's chain or a kept conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Stored in its record's chain.
    Revision,
    /// Kept beside the chain as a conflict.
    Conflict,
}

impl Held {
    /// `revision` or `conflict`, as the export manifest names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Held::Revision => "revision",
            Held::Conflict => "conflict",
        }
    }
}

/// An envelope left out because it did not verify or open.
#[derive(Clone, Debug)]
pub struct Failed {
    /// The envelope as the server holds it.
    pub stored: StoredEnvelope,
    /// Where it was held.
    pub held: Held,
    /// Why it was left out.
    pub problem: Problem,
}

/// Everything opened, in the order the server listed it.
#[derive(Clone, Debug, Default)]
pub struct Opened {
    /// Verified revisions.
    pub revisions: Vec<OpenedRevision>,
    /// Verified conflicts.
    pub conflicts: Vec<OpenedConflict>,
    /// What was left out and why: revisions first, then conflicts.
    pub failed: Vec<Failed>,
    /// Envelopes left out because their participant withdrew.
    pub withdrawn_excluded: usize,
}

impl Opened {
    /// Each record's verified revisions in rev order, records in id order (UUIDv7: creation
    /// order).
    pub fn histories(&self) -> BTreeMap<String, Vec<&OpenedRevision>> {
        let mut records: BTreeMap<String, Vec<&OpenedRevision>> = BTreeMap::new();
        for opened in &self.revisions {
            records
                .entry(opened.revision.record_id.to_string())
                .or_default()
                .push(opened);
        }
        for history in records.values_mut() {
            history.sort_by_key(|opened| opened.revision.rev);
        }
        records
    }

    /// Whether every revision of `record_id` the server holds verified.
    pub fn record_verified(&self, record_id: &str) -> bool {
        !self.failed.iter().any(|failed| {
            failed.held == Held::Revision
                && failed.stored.envelope.record_id.to_string() == record_id
        })
    }

    /// The latest verified revision of every record, as the exports read them (no files
    /// named: attachments are the caller's to write).
    pub fn latest_records(&self) -> Vec<ExportRecord> {
        self.histories()
            .iter()
            .filter_map(|(record_id, history)| {
                let latest = history.last()?;
                Some(ExportRecord {
                    revision: latest.revision.clone(),
                    participant_code: latest.participant_code.clone(),
                    device: latest.device.clone(),
                    fieldworker: latest.fieldworker.clone(),
                    verified: self.record_verified(record_id),
                    file: None,
                })
            })
            .collect()
    }
}

/// Verifies and opens `stored` (the chains) and `kept` (the conflicts) with `key`, leaving out
/// what `withdrawn` excludes.
pub fn open_all(
    stored: &[StoredEnvelope],
    kept: &[KeptConflict],
    devices: &Devices,
    withdrawn: &Withdrawn,
    key: &StudyPrivateKey,
) -> Opened {
    let fieldworker = |device: &str| devices.fieldworker(device).unwrap_or("").to_owned();
    let opened_all: Vec<Result<Revision, String>> = stored
        .iter()
        .map(|item| item.envelope.open(key).map_err(|error| error.to_string()))
        .collect();
    let verdicts = verify::chains(stored, devices, &|index| {
        opened_all[index]
            .as_ref()
            .err()
            .cloned()
            .map(Problem::CannotOpen)
    });
    let mut result = Opened::default();
    for ((item, opened), verdict) in stored.iter().zip(opened_all).zip(verdicts) {
        if withdrawn.excludes(&item.envelope, opened.as_ref().ok()) {
            result.withdrawn_excluded += 1;
            continue;
        }
        match (opened, verdict) {
            (Ok(revision), Ok(())) => result.revisions.push(OpenedRevision {
                revision,
                participant_code: item.envelope.participant_code.clone(),
                device: item.device_id.clone(),
                fieldworker: fieldworker(&item.device_id),
            }),
            (opened, verdict) => {
                let problem = verdict
                    .err()
                    .or_else(|| opened.err().map(Problem::CannotOpen))
                    .unwrap_or(Problem::BadSignature);
                result.failed.push(Failed {
                    stored: item.clone(),
                    held: Held::Revision,
                    problem,
                });
            }
        }
    }
    for conflict in kept {
        let item = &conflict.stored;
        let opened = item.envelope.open(key);
        if withdrawn.excludes(&item.envelope, opened.as_ref().ok()) {
            result.withdrawn_excluded += 1;
            continue;
        }
        let checked = verify::signature(item, devices)
            .and_then(|()| opened.map_err(|error| Problem::CannotOpen(error.to_string())));
        match checked {
            Ok(revision) => result.conflicts.push(OpenedConflict {
                opened: OpenedRevision {
                    revision,
                    participant_code: item.envelope.participant_code.clone(),
                    device: item.device_id.clone(),
                    fieldworker: fieldworker(&item.device_id),
                },
                reason: conflict.reason,
                detail: conflict.detail.clone(),
            }),
            Err(problem) => result.failed.push(Failed {
                stored: item.clone(),
                held: Held::Conflict,
                problem,
            }),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{DeviceKey, StudyKeyPair, seal_envelope};
    use crate::ids::{DeviceId, ParticipantId, ProfileId, RecordId};
    use crate::record::{Authorship, Kind, Links};
    use crate::review::{Device, DeviceStatus};
    use crate::time::Timestamp;

    struct Tablet {
        device: Device,
        key: DeviceKey,
        by: Authorship,
    }

    fn tablet(fieldworker: &str) -> Tablet {
        let id = DeviceId::new(Timestamp(1));
        let key = DeviceKey::generate().unwrap();
        Tablet {
            device: Device {
                id: id.to_string(),
                fieldworker: fieldworker.into(),
                name: "Tablet".into(),
                public_key: key.public_key().to_text(),
                status: DeviceStatus::Active,
                revoked_reason: None,
                enrolled_at: Timestamp(0),
            },
            key,
            by: Authorship {
                device: id,
                author: ProfileId::new(Timestamp(1)),
                time: Timestamp(2),
            },
        }
    }

    fn stored(revision: &Revision, study: &StudyKeyPair, tablet: &Tablet) -> StoredEnvelope {
        let envelope = seal_envelope(
            revision,
            Some("C01".into()),
            &study.public_key(),
            &tablet.key,
        )
        .unwrap();
        StoredEnvelope {
            device_id: envelope.device_id.to_string(),
            envelope,
            received_at: Timestamp(3),
        }
    }

    #[test]
    fn opens_what_verifies_lists_what_does_not_and_leaves_out_the_withdrawn() {
        let study = StudyKeyPair::generate();
        let ana = tablet("Ana");
        let stay = ParticipantId::new(Timestamp(1));
        let gone = ParticipantId::new(Timestamp(1));
        let note = |participant, text: &[u8]| {
            Revision::first(
                RecordId::new(Timestamp(1)),
                Kind::InterviewNote,
                Links {
                    participant: Some(participant),
                    ..Links::default()
                },
                text.to_vec(),
                ana.by,
            )
        };
        let kept = note(stay, b"kept");
        let kept_2 = kept.next(b"kept, edited".to_vec(), ana.by).unwrap();
        let forged = note(stay, b"forged");
        let forged_2 = forged.next(b"after the forgery".to_vec(), ana.by).unwrap();
        let withdrawn = note(gone, b"withdrawn");
        let mut bad = stored(&forged, &study, &ana);
        // Another device's key signed it: the signature does not verify.
        bad.envelope =
            seal_envelope(&forged, None, &study.public_key(), &tablet("Bo").key).unwrap();
        let all = vec![
            stored(&kept, &study, &ana),
            stored(&kept_2, &study, &ana),
            bad,
            stored(&forged_2, &study, &ana),
            stored(&withdrawn, &study, &ana),
        ];
        let out = Withdrawn::of(&[WithdrawalRecord {
            message_id: 1,
            seq: Some(1),
            participant_id: Some(gone),
            participant_code: "C02".into(),
            created_at: Timestamp(4),
        }]);
        let opened = open_all(
            &all,
            &[],
            &Devices::new(std::slice::from_ref(&ana.device)),
            &out,
            study.private_key(),
        );
        assert_eq!(opened.withdrawn_excluded, 1);
        assert_eq!(opened.failed.len(), 2, "the forgery and what follows it");
        assert!(opened.failed.iter().all(|f| f.held == Held::Revision));
        assert_eq!(opened.failed[1].problem, Problem::AfterFailure { rev: 1 });
        let latest = opened.latest_records();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].revision.body, b"kept, edited");
        assert!(latest[0].verified);
        assert_eq!(latest[0].fieldworker, "Ana");
        assert!(!opened.record_verified(&forged.record_id.to_string()));
        // Opened with another study's key: nothing opens, everything is listed.
        let other = StudyKeyPair::generate();
        let none = open_all(
            &all[..2],
            &[],
            &Devices::new(&[ana.device]),
            &out,
            other.private_key(),
        );
        assert!(none.revisions.is_empty());
        assert!(matches!(none.failed[0].problem, Problem::CannotOpen(_)));
    }
}
