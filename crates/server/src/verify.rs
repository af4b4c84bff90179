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

use attune_core::{DevicePublicKey, Kind, RecordId};

use crate::store::{Device, StoredEnvelope, same_fieldworker};

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
    UnknownDevice { device: String },
    /// The envelope names one device and was stored as pushed by another.
    PushedByAnotherDevice { device: String, pushed_by: String },
    /// The revision before it is not stored (deleted, or never arrived).
    Gap { missing: u32 },
    /// Its parent hash is not the hash of the previous revision.
    ParentMismatch,
    /// The record was created on another device, of another fieldworker.
    OwnedByAnotherDevice {
        owner: String,
        owner_fieldworker: String,
    },
    /// The envelope does not open with the study key (export only).
    CannotOpen(String),
    /// An earlier revision of the record failed: the chain is broken from there.
    AfterFailure { rev: u32 },
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
    pub record_id: RecordId,
    /// The first revision from the other device.
    pub rev: u32,
    pub owner: String,
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

#[cfg(test)]
mod tests {
    use attune_core::{
        Authorship, DeviceId, DeviceKey, Links, ProfileId, Revision, StudyKeyPair, Timestamp,
        seal_envelope,
    };

    use super::*;
    use crate::store::DeviceStatus;

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
