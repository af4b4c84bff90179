//! Tests of [`super`]: sealing and signing round trips, every refusal, and resolutions.

use super::*;
use crate::envelope::StudyKeyPair;
use crate::ids::{DeviceId, ProfileId};
use crate::record::{Authorship, Kind, Links, Revision};
use crate::sync::ConflictReason;

fn keys() -> (StudyKeyPair, StudySigningKey) {
    (
        StudyKeyPair::generate(),
        StudySigningKey::generate().unwrap(),
    )
}

fn acknowledgement(record_id: RecordId) -> TeamRecordBody {
    TeamRecordBody {
        action: TeamAction::SafeguardingAcknowledgement { record_id, rev: 2 },
        note: "Called the family's social worker on 3 Dec; agreed next steps".into(),
        by: "Rosa Lead".into(),
        at: Timestamp(1_764_800_000_000),
    }
}

fn stored(new: &NewTeamRecord) -> StoredTeamRecord {
    StoredTeamRecord {
        id: new.id,
        member_id: "member-1".into(),
        created_at: Timestamp(1_764_800_000_500),
        sealed: new.sealed.clone(),
        signature: new.signature.clone(),
    }
}

#[test]
fn a_team_record_round_trips_and_its_body_is_tagged_by_kind() {
    let (study, signing) = keys();
    let body = acknowledgement(RecordId::new(Timestamp(1)));
    let new = seal_and_sign(&body, &study.public_key(), &signing).unwrap();
    assert!(!new.sealed.contains("social worker"));
    new.verify(&signing.public_key()).unwrap();
    let opened = verify_and_open(&stored(&new), &signing.public_key(), study.private_key());
    assert_eq!(opened.unwrap(), body);
    let json = serde_json::to_value(&body).unwrap();
    assert_eq!(json["kind"], "safeguarding_acknowledgement");
    assert_eq!(json["rev"], 2);
    let resolution = TeamRecordBody {
        action: TeamAction::ConflictResolution {
            record_id: RecordId::new(Timestamp(1)),
            record_rev: 1,
            conflict_hash: ContentHash::sha256(b"x"),
            outcome: Outcome::Merged {
                text: "both".into(),
            },
        },
        ..body
    };
    let json = serde_json::to_string(&resolution).unwrap();
    assert!(json.contains(r#""kind":"conflict_resolution""#), "{json}");
    assert_eq!(
        serde_json::from_str::<TeamRecordBody>(&json).unwrap(),
        resolution
    );
}

#[test]
fn an_altered_record_another_key_or_another_id_is_refused() {
    let (study, signing) = keys();
    let new = seal_and_sign(
        &acknowledgement(RecordId::new(Timestamp(1))),
        &study.public_key(),
        &signing,
    )
    .unwrap();
    let key = signing.public_key();
    let check = |record: &StoredTeamRecord, key: &StudyVerifyingKey| {
        verify_and_open(record, key, study.private_key())
    };
    // A flipped byte of the sealed body.
    let mut bytes = BASE64.decode(&new.sealed).unwrap();
    bytes[40] ^= 1;
    let mut flipped = stored(&new);
    flipped.sealed = BASE64.encode(&bytes);
    assert_eq!(check(&flipped, &key), Err(TeamRecordProblem::BadSignature));
    // A flipped byte of the signature.
    let mut signature = BASE64.decode(&new.signature).unwrap();
    signature[3] ^= 1;
    let mut forged = stored(&new);
    forged.signature = BASE64.encode(&signature);
    assert_eq!(check(&forged, &key), Err(TeamRecordProblem::BadSignature));
    // Another signing key (the server's own, say).
    let other = StudySigningKey::generate().unwrap().public_key();
    assert_eq!(
        check(&stored(&new), &other),
        Err(TeamRecordProblem::BadSignature)
    );
    assert_eq!(new.verify(&other), Err(TeamRecordProblem::BadSignature));
    // Re-pointed to another id: the signature covers the id.
    let mut moved = stored(&new);
    moved.id = TeamRecordId::new(Timestamp(2));
    assert_eq!(check(&moved, &key), Err(TeamRecordProblem::BadSignature));
    // Not base64.
    let mut garbled = stored(&new);
    garbled.sealed = "not base64!".into();
    assert!(matches!(
        check(&garbled, &key),
        Err(TeamRecordProblem::Malformed(_))
    ));
    // Signed by the study, but sealed to another study's key: it does not open here.
    let elsewhere = StudyKeyPair::generate();
    let sealed_elsewhere = seal_and_sign(
        &acknowledgement(RecordId::new(Timestamp(1))),
        &elsewhere.public_key(),
        &signing,
    )
    .unwrap();
    assert_eq!(
        check(&stored(&sealed_elsewhere), &key),
        Err(TeamRecordProblem::CannotOpen)
    );
    // Opening all of them keeps only the good one and says why of the others.
    let all = OpenedTeamRecords::open(
        &[stored(&new), flipped, moved],
        Some(&key),
        study.private_key(),
    );
    assert_eq!(all.records.len(), 1);
    assert_eq!(all.failed.len(), 2);
    let none = OpenedTeamRecords::open(&[stored(&new)], None, study.private_key());
    assert_eq!(none.failed[0].1, TeamRecordProblem::NoSigningKey);
}

fn revision_of(record: RecordId, text: &str, device: DeviceId) -> Revision {
    Revision::first(
        record,
        Kind::InterviewNote,
        Links::default(),
        format!(r#"{{"guide_id":"g","text":"{text}","flags":[]}}"#).into_bytes(),
        Authorship {
            device,
            author: ProfileId::new(Timestamp(1)),
            time: Timestamp(5),
        },
    )
}

fn opened_revision(revision: Revision, device: &str) -> OpenedRevision {
    OpenedRevision {
        revision,
        participant_code: Some("C01".into()),
        device: device.into(),
        fieldworker: "Ana".into(),
    }
}

fn resolution(
    record_id: RecordId,
    conflict_hash: ContentHash,
    outcome: Outcome,
    at: i64,
) -> OpenedTeamRecord {
    OpenedTeamRecord {
        id: TeamRecordId::new(Timestamp(at)),
        member_id: "m".into(),
        created_at: Timestamp(at),
        body: TeamRecordBody {
            action: TeamAction::ConflictResolution {
                record_id,
                record_rev: 1,
                conflict_hash,
                outcome,
            },
            note: String::new(),
            by: "Rosa Lead".into(),
            at: Timestamp(at),
        },
    }
}

#[test]
fn resolutions_read_the_kept_version_or_the_merged_text_and_the_latest_wins() {
    let record = RecordId::new(Timestamp(1));
    let chain = revision_of(record, "from tablet A", DeviceId::new(Timestamp(1)));
    let apart = revision_of(record, "from tablet B", DeviceId::new(Timestamp(2)));
    let opened = Opened {
        revisions: vec![opened_revision(chain.clone(), "A")],
        conflicts: vec![OpenedConflict {
            opened: opened_revision(apart.clone(), "B"),
            reason: ConflictReason::RevTaken,
            detail: None,
        }],
        ..Opened::default()
    };
    let team = |records| OpenedTeamRecords {
        records,
        failed: Vec::new(),
    };
    // No resolution: nothing changes.
    assert!(resolutions(&opened, &team(vec![])).is_empty());
    // Keep the version kept apart.
    let keep = resolution(record, apart.hash, Outcome::KeepConflict, 10);
    let resolved = resolutions(&opened, &team(vec![keep.clone()]));
    assert_eq!(resolved[&record].body, apart.body);
    assert_eq!(resolved[&record].from.device, "B");
    // A later merge wins over it, whatever the order the server listed them in.
    let merge = resolution(
        record,
        apart.hash,
        Outcome::Merged {
            text: "A and B".into(),
        },
        20,
    );
    let resolved = resolutions(&opened, &team(vec![merge.clone(), keep]));
    let body: serde_json::Value = serde_json::from_slice(&resolved[&record].body).unwrap();
    assert_eq!(body["text"], "A and B");
    assert_eq!(body["guide_id"], "g", "the rest of the note is the chain's");
    assert_eq!(resolved[&record].by, merge);
    // Keep the record's own version.
    let mine = resolution(record, apart.hash, Outcome::KeepRecord, 30);
    let resolved = resolutions(&opened, &team(vec![mine]));
    assert_eq!(resolved[&record].body, chain.body);
    // A resolution of a conflict that is not there (another hash) is not applied.
    let stray = resolution(
        record,
        ContentHash::sha256(b"nothing"),
        Outcome::KeepConflict,
        40,
    );
    assert!(resolutions(&opened, &team(vec![stray])).is_empty());
    // The team's lookups.
    let both = team(vec![
        resolution(record, apart.hash, Outcome::KeepConflict, 10),
        resolution(record, apart.hash, Outcome::KeepRecord, 30),
    ]);
    let latest = both.resolution_of(&apart.hash).unwrap();
    assert_eq!(latest.body.at, Timestamp(30));
    assert!(both.acknowledgements(&record).is_empty());
}
