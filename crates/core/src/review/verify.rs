//! Verifying what the server holds, without the study key: each revision's signature against
//! the public key of the device enrolled under its device id, each record's chain (revisions
//! 1, 2, 3... each naming the previous one's hash as its parent) and its owner (the device of
//! revision 1, or another device of the same fieldworker). `attune-server export` and
//! `attune-server check` both use it; export adds what only the study key can check (that the
//! envelope opens).
//!
//! A chain fails from its first bad revision on: every later revision of that record fails
//! too ("follows rev n, which failed"), because what it builds on cannot be trusted.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::envelope::DevicePublicKey;
use crate::ids::{ParticipantId, RecordId};
use crate::record::Kind;
use crate::time::Timestamp;

use super::{Device, StoredEnvelope, WithdrawalRecord, same_fieldworker};

/// The enrolled devices, by id.
#[derive(Debug, Default)]
pub struct Devices(HashMap<String, Enrolled>);

#[derive(Debug)]
struct Enrolled {
    fieldworker: String,
    /// `None` if the stored key does not parse (nothing it "signed" verifies).
    key: Option<DevicePublicKey>,
}

impl Devices {
    /// The devices as the server listed them (revoked ones included: what they signed
    /// before revocation still verifies).
    pub fn new(devices: &[Device]) -> Self {
        Self(
            devices
                .iter()
                .map(|device| {
                    (
                        device.id.clone(),
                        Enrolled {
                            fieldworker: device.fieldworker.clone(),
                            key: DevicePublicKey::from_text(&device.public_key).ok(),
                        },
                    )
                })
                .collect(),
        )
    }

    /// The fieldworker the device was enrolled for.
    pub fn fieldworker(&self, device_id: &str) -> Option<&str> {
        self.0
            .get(device_id)
            .map(|device| device.fieldworker.as_str())
    }
}

/// Why a revision does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The signature does not verify with the key of the device enrolled under its device id.
    BadSignature,
    /// No device is enrolled under the envelope's device id.
    UnknownDevice {
        /// The device id the envelope names.
        device: String,
    },
    /// The envelope names one device and was stored as pushed by another.
    PushedByAnotherDevice {
        /// The device the envelope names.
        device: String,
        /// The device whose token pushed it.
        pushed_by: String,
    },
    /// The revision before it is not stored (deleted, or never arrived).
    Gap {
        /// The first rev not stored.
        missing: u32,
    },
    /// Its parent hash is not the hash of the previous revision.
    ParentMismatch,
    /// The record was created on another device, of another fieldworker.
    OwnedByAnotherDevice {
        /// The device of revision 1.
        owner: String,
        /// Its fieldworker.
        owner_fieldworker: String,
    },
    /// The envelope does not open with the study key (export only).
    CannotOpen(String),
    /// An earlier revision of the record failed: the chain is broken from there.
    AfterFailure {
        /// The first revision that failed.
        rev: u32,
    },
}

impl Problem {
    /// A stable name for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::BadSignature => "bad_signature",
            Problem::UnknownDevice { .. } => "unknown_device",
            Problem::PushedByAnotherDevice { .. } => "pushed_by_another_device",
            Problem::Gap { .. } => "gap",
            Problem::ParentMismatch => "parent_mismatch",
            Problem::OwnedByAnotherDevice { .. } => "owned_by_another_device",
            Problem::CannotOpen(_) => "cannot_open",
            Problem::AfterFailure { .. } => "after_failed_revision",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadSignature => f.write_str(
                "the signature does not verify with the key of the device enrolled under its \
                 device id",
            ),
            Problem::UnknownDevice { device } => write!(f, "no device {device} is enrolled"),
            Problem::PushedByAnotherDevice { device, pushed_by } => {
                write!(
                    f,
                    "made on device {device} but pushed by device {pushed_by}"
                )
            }
            Problem::Gap { missing } => write!(f, "rev {missing} of this record is missing"),
            Problem::ParentMismatch => {
                f.write_str("its parent hash is not the hash of the previous revision")
            }
            Problem::OwnedByAnotherDevice {
                owner,
                owner_fieldworker,
            } => write!(
                f,
                "record owned by another device: created on {owner} ({owner_fieldworker}), \
                 continued on a device of another fieldworker"
            ),
            Problem::CannotOpen(error) => write!(f, "it does not open with the study key: {error}"),
            Problem::AfterFailure { rev } => write!(f, "follows rev {rev}, which failed"),
        }
    }
}

/// Whether `stored` was signed by the device enrolled under its device id (and pushed by it).
pub fn signature(stored: &StoredEnvelope, devices: &Devices) -> Result<(), Problem> {
    let device = stored.envelope.device_id.to_string();
    if device != stored.device_id {
        return Err(Problem::PushedByAnotherDevice {
            device,
            pushed_by: stored.device_id.clone(),
        });
    }
    let Some(enrolled) = devices.0.get(&device) else {
        return Err(Problem::UnknownDevice { device });
    };
    let key = enrolled.key.as_ref().ok_or(Problem::BadSignature)?;
    stored
        .envelope
        .verify(key)
        .map_err(|_| Problem::BadSignature)
}

/// The verdict on each of `stored` (same order): signature, then `extra` (e.g. whether it
/// opens), then its place in its record's chain and the record's owner.
pub fn chains(
    stored: &[StoredEnvelope],
    devices: &Devices,
    extra: &dyn Fn(usize) -> Option<Problem>,
) -> Vec<Result<(), Problem>> {
    let mut verdicts = vec![Ok(()); stored.len()];
    let mut records: BTreeMap<RecordId, Vec<usize>> = BTreeMap::new();
    for (index, item) in stored.iter().enumerate() {
        records
            .entry(item.envelope.record_id)
            .or_default()
            .push(index);
    }
    for indices in records.values_mut() {
        indices.sort_by_key(|&index| stored[index].envelope.rev);
        let mut expected = 1;
        let mut previous = None;
        let mut owner: Option<&str> = None;
        let mut failed: Option<u32> = None;
        for &index in indices.iter() {
            let envelope = &stored[index].envelope;
            let problem = if let Some(rev) = failed {
                Some(Problem::AfterFailure { rev })
            } else if envelope.rev != expected {
                Some(Problem::Gap { missing: expected })
            } else if let Err(problem) = signature(&stored[index], devices) {
                Some(problem)
            } else if let Some(problem) = extra(index) {
                Some(problem)
            } else if envelope.parent_hash != previous {
                Some(Problem::ParentMismatch)
            } else {
                let device = stored[index].device_id.as_str();
                match owner {
                    None => {
                        owner = Some(device);
                        None
                    }
                    Some(owner) if owner == device => None,
                    Some(owner) => {
                        let owner_fieldworker = devices.fieldworker(owner).unwrap_or_default();
                        let fieldworker = devices.fieldworker(device).unwrap_or_default();
                        (!same_fieldworker(owner_fieldworker, fieldworker)).then(|| {
                            Problem::OwnedByAnotherDevice {
                                owner: owner.to_owned(),
                                owner_fieldworker: owner_fieldworker.to_owned(),
                            }
                        })
                    }
                }
            };
            if let Some(problem) = problem {
                failed = failed.or(Some(envelope.rev));
                verdicts[index] = Err(problem);
            }
            previous = Some(envelope.hash);
            expected = envelope.rev.saturating_add(1);
        }
    }
    verdicts
}

/// A participant code held by more than one participant record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateCode {
    /// The participant code.
    pub code: String,
    /// Each record holding it (first arrived first), with the device that created it.
    pub records: Vec<(RecordId, String)>,
}

/// The participant codes that more than one participant record (kind `participant`) holds.
pub fn duplicate_codes(stored: &[StoredEnvelope]) -> Vec<DuplicateCode> {
    let mut holders: BTreeMap<&str, Vec<(RecordId, String)>> = BTreeMap::new();
    for item in stored {
        let envelope = &item.envelope;
        let Some(code) = envelope.participant_code.as_deref() else {
            continue;
        };
        if envelope.kind != Kind::Participant {
            continue;
        }
        let records = holders.entry(code).or_default();
        if !records
            .iter()
            .any(|(record, _)| *record == envelope.record_id)
        {
            records.push((envelope.record_id, item.device_id.clone()));
        }
    }
    holders
        .into_iter()
        .filter(|(_, records)| records.len() > 1)
        .map(|(code, records)| DuplicateCode {
            code: code.to_owned(),
            records,
        })
        .collect()
}

/// A record continued on a device other than the one that created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondDevice {
    /// The record.
    pub record_id: RecordId,
    /// The first revision from the other device.
    pub rev: u32,
    /// The device of revision 1.
    pub owner: String,
    /// The other device.
    pub device: String,
    /// Whether both devices are the same fieldworker's (a re-enrolled tablet: allowed).
    pub same_fieldworker: bool,
}

/// The records with revisions pushed by another device than their revision 1's.
pub fn second_devices(stored: &[StoredEnvelope], devices: &Devices) -> Vec<SecondDevice> {
    let mut records: BTreeMap<RecordId, Vec<&StoredEnvelope>> = BTreeMap::new();
    for item in stored {
        records
            .entry(item.envelope.record_id)
            .or_default()
            .push(item);
    }
    let mut found = Vec::new();
    for (record_id, mut revisions) in records {
        revisions.sort_by_key(|item| item.envelope.rev);
        let Some(first) = revisions.first().filter(|item| item.envelope.rev == 1) else {
            continue;
        };
        let owner = first.device_id.as_str();
        if let Some(other) = revisions.iter().find(|item| item.device_id != owner) {
            found.push(SecondDevice {
                record_id,
                rev: other.envelope.rev,
                owner: owner.to_owned(),
                device: other.device_id.clone(),
                same_fieldworker: same_fieldworker(
                    devices.fieldworker(owner).unwrap_or_default(),
                    devices.fieldworker(&other.device_id).unwrap_or_default(),
                ),
            });
        }
    }
    found
}

/// A participant's data withdrawal request, made on a tablet ("Stop and withdraw their
/// data"): a withdrawal record whose id is
/// [`withdrawal_request_record`](attune_core::fieldwork::withdrawal_request_record) of a
/// participant the server holds a participant record of. Found from the clear metadata only:
/// the kind, the record id, the code, the device and the times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalRequest {
    /// The request's record.
    pub record_id: RecordId,
    /// Who asked to withdraw (the id of their participant record).
    pub participant_id: ParticipantId,
    /// Their code, as the request (or else their participant record) carries it.
    pub participant_code: String,
    /// The device that made the request (its revision 1).
    pub device_id: String,
    /// The fieldworker that device was enrolled for (`?` if unknown).
    pub fieldworker: String,
    /// When the tablet recorded the request.
    pub requested_at: Timestamp,
    /// When the server received it.
    pub received_at: Timestamp,
    /// The signed withdrawal that confirmed it (its message id), if the study team recorded
    /// one for this participant; `None` while pending.
    pub confirmed_by: Option<i64>,
    /// Why it does not count, if it does not verify (signature, chain, owner, or made by a
    /// device of another fieldworker than the participant's): such a request is never
    /// listed as pending.
    pub problem: Option<String>,
}

impl WithdrawalRequest {
    /// Verified and not yet confirmed by a signed withdrawal.
    pub fn is_pending(&self) -> bool {
        self.problem.is_none() && self.confirmed_by.is_none()
    }

    /// `pending`, `confirmed` or `refused` (does not verify).
    pub fn status(&self) -> &'static str {
        match (&self.problem, self.confirmed_by) {
            (Some(_), _) => "refused",
            (None, Some(_)) => "confirmed",
            (None, None) => "pending",
        }
    }
}

/// The withdrawal requests in `stored` (the stored envelopes), oldest first. `participants`
/// are the envelopes to find participant records in (stored and kept conflicts: a participant
/// record kept as a conflict still has its requests found); `withdrawals` are the signed
/// withdrawals recorded ([`crate::store::Store::withdrawals`]). A request counts only if
/// every revision of it verifies ([`chains`]) and its device is the same fieldworker's as the
/// participant record's first revision.
pub fn withdrawal_requests(
    stored: &[StoredEnvelope],
    participants: &[StoredEnvelope],
    devices: &Devices,
    withdrawals: &[WithdrawalRecord],
) -> Vec<WithdrawalRequest> {
    use crate::fieldwork::withdrawal_request_record;
    // Participant ids, the code and the device of their first revision, by request id.
    let mut by_request: HashMap<RecordId, (ParticipantId, Option<String>, String)> = HashMap::new();
    for item in participants {
        let envelope = &item.envelope;
        if envelope.kind != Kind::Participant {
            continue;
        }
        let participant = ParticipantId::from_bytes(*envelope.record_id.as_bytes());
        let entry = by_request
            .entry(withdrawal_request_record(participant))
            .or_insert_with(|| (participant, None, item.device_id.clone()));
        if envelope.rev == 1 {
            entry.2.clone_from(&item.device_id);
        }
        if entry.1.is_none() {
            entry.1.clone_from(&envelope.participant_code);
        }
    }
    let verdicts = chains(stored, devices, &|_| None);
    let mut found: BTreeMap<RecordId, WithdrawalRequest> = BTreeMap::new();
    for (item, verdict) in stored.iter().zip(&verdicts) {
        let envelope = &item.envelope;
        if envelope.kind != Kind::Withdrawal {
            continue;
        }
        let Some((participant, code, owner)) = by_request.get(&envelope.record_id) else {
            continue;
        };
        let problem = match verdict {
            Err(problem) => Some(problem.to_string()),
            Ok(()) => {
                let owner_fieldworker = devices.fieldworker(owner).unwrap_or_default();
                let fieldworker = devices.fieldworker(&item.device_id).unwrap_or_default();
                (!same_fieldworker(owner_fieldworker, fieldworker)).then(|| {
                    format!(
                        "made on a device of {fieldworker:?}, not of the participant's \
                         fieldworker {owner_fieldworker:?}"
                    )
                })
            }
        };
        let request = found
            .entry(envelope.record_id)
            .or_insert_with(|| WithdrawalRequest {
                record_id: envelope.record_id,
                participant_id: *participant,
                participant_code: envelope
                    .participant_code
                    .clone()
                    .or_else(|| code.clone())
                    .unwrap_or_else(|| "-".into()),
                device_id: item.device_id.clone(),
                fieldworker: devices
                    .fieldworker(&item.device_id)
                    .unwrap_or("?")
                    .to_owned(),
                requested_at: envelope.time,
                received_at: item.received_at,
                confirmed_by: withdrawals
                    .iter()
                    .find(|w| w.participant_id == Some(*participant))
                    .map(|w| w.message_id),
                problem: None,
            });
        if envelope.rev == 1 {
            request.device_id.clone_from(&item.device_id);
            request.requested_at = envelope.time;
            request.received_at = item.received_at;
        }
        if request.problem.is_none() {
            request.problem = problem;
        }
    }
    let mut list: Vec<WithdrawalRequest> = found.into_values().collect();
    list.sort_by_key(|request| request.received_at);
    list
}

#[cfg(test)]
mod tests {
    use crate::{
        Authorship, DeviceId, DeviceKey, Links, ProfileId, Revision, StudyKeyPair, Timestamp,
        seal_envelope,
    };

    use super::*;
    use crate::review::DeviceStatus;

    fn device(fieldworker: &str) -> (Device, DeviceKey, Authorship) {
        let id = DeviceId::new(Timestamp(1));
        let key = DeviceKey::generate().unwrap();
        let device = Device {
            id: id.to_string(),
            fieldworker: fieldworker.into(),
            name: "Tablet".into(),
            public_key: key.public_key().to_text(),
            status: DeviceStatus::Active,
            revoked_reason: None,
            enrolled_at: Timestamp(0),
        };
        let by = Authorship {
            device: id,
            author: ProfileId::new(Timestamp(1)),
            time: Timestamp(2),
        };
        (device, key, by)
    }

    fn stored(revision: &Revision, key: &DeviceKey) -> StoredEnvelope {
        let study = StudyKeyPair::generate();
        let envelope = seal_envelope(revision, None, &study.public_key(), key).unwrap();
        StoredEnvelope {
            device_id: envelope.device_id.to_string(),
            envelope,
            received_at: Timestamp(3),
        }
    }

    #[test]
    fn a_chain_fails_from_its_first_bad_revision_on_and_other_records_are_untouched() {
        let (ana, ana_key, by) = device("Ana");
        let (ana_again, again_key, again_by) = device(" ANA ");
        let first = Revision::first(
            RecordId::new(Timestamp(1)),
            Kind::InterviewNote,
            Links::default(),
            b"1".to_vec(),
            by,
        );
        let second = first.next(b"2".to_vec(), by).unwrap();
        let third = second.next(b"3".to_vec(), again_by).unwrap();
        let fourth = third.next(b"4".to_vec(), by).unwrap();
        let other = Revision::first(
            RecordId::new(Timestamp(1)),
            Kind::InterviewNote,
            Links::default(),
            b"other".to_vec(),
            by,
        );
        let devices = Devices::new(&[ana, ana_again]);
        let whole = [
            stored(&fourth, &ana_key),
            stored(&first, &ana_key),
            stored(&third, &again_key),
            stored(&other, &ana_key),
            stored(&second, &ana_key),
        ];
        assert!(
            chains(&whole, &devices, &|_| None)
                .iter()
                .all(Result::is_ok),
            "a re-enrolled tablet of the same fieldworker may continue a record"
        );
        // Rev 2 missing: rev 3 is a gap, rev 4 follows it; the other record is fine.
        let verdicts = chains(&whole[..4], &devices, &|_| None);
        assert_eq!(
            verdicts,
            vec![
                Err(Problem::AfterFailure { rev: 3 }),
                Ok(()),
                Err(Problem::Gap { missing: 2 }),
                Ok(()),
            ]
        );
        // An extra problem (e.g. does not open) breaks the chain the same way.
        let verdicts = chains(&whole, &devices, &|index| {
            (index == 4).then(|| Problem::CannotOpen("no".into()))
        });
        assert_eq!(verdicts[4], Err(Problem::CannotOpen("no".into())));
        assert_eq!(verdicts[2], Err(Problem::AfterFailure { rev: 2 }));
        assert_eq!(verdicts[1], Ok(()));
    }
}
