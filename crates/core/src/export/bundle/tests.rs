//! The bundle of a small opened set, and the zip's 4 GiB limit checked with sizes.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::attachment::seal_attachment;
use crate::envelope::{DeviceKey, StudyKeyPair, seal_envelope};
use crate::export::zip::{check_size, unzip, zip};
use crate::ids::{DeviceId, ParticipantId, ProfileId, RecordId};
use crate::record::{Authorship, Kind, Links, Revision};
use crate::review::{Device, DeviceStatus, StoredEnvelope};
use crate::time::Timestamp;

/// A study with one tablet: a participant, their note and a recording (sealed, uploaded).
struct Fixture {
    study: StudyKeyPair,
    snapshot: Snapshot,
    participant: ParticipantId,
    recording: RecordId,
    audio: Vec<u8>,
    sealed: Vec<u8>,
}

fn fixture() -> Fixture {
    let study = StudyKeyPair::generate();
    let key = DeviceKey::generate().unwrap();
    let device = DeviceId::new(Timestamp(1));
    let by = Authorship {
        device,
        author: ProfileId::new(Timestamp(1)),
        time: Timestamp(1_764_000_000_000),
    };
    let participant = ParticipantId::new(Timestamp(2));
    let about = Links {
        participant: Some(participant),
        ..Links::default()
    };
    let audio = b"not really webm, but bytes".to_vec();
    let blob = crate::ids::BlobId::new(Timestamp(3));
    let sealed = seal_attachment(
        blob,
        std::slice::from_ref(&audio),
        &study.public_key(),
        &[7; 32],
    )
    .unwrap();
    let recording = RecordId::new(Timestamp(4));
    let revisions = [
        Revision::first(
            RecordId::from_uuid(*participant.as_uuid()),
            Kind::Participant,
            Links::default(),
            json!({"code": "C01", "group": "carers"})
                .to_string()
                .into_bytes(),
            by,
        ),
        Revision::first(
            RecordId::new(Timestamp(5)),
            Kind::InterviewNote,
            about.clone(),
            json!({"guide_id": "guide-carers", "text": "She said so.", "flags": [], "updated": 1})
                .to_string()
                .into_bytes(),
            by,
        ),
        Revision::first(
            recording,
            Kind::Attachment,
            about,
            json!({"blob": blob, "media_type": "audio/webm;codecs=opus", "bytes": audio.len(),
                "chunks": 1, "sha256": sha256_hex(&audio)})
            .to_string()
            .into_bytes(),
            by,
        ),
    ];
    let envelopes = revisions
        .iter()
        .map(|revision| {
            let envelope =
                seal_envelope(revision, Some("C01".into()), &study.public_key(), &key).unwrap();
            StoredEnvelope {
                device_id: envelope.device_id.to_string(),
                envelope,
                received_at: Timestamp(9),
            }
        })
        .collect();
    let snapshot = Snapshot {
        devices: vec![Device {
            id: device.to_string(),
            fieldworker: "Ana".into(),
            name: "Tablet".into(),
            public_key: key.public_key().to_text(),
            status: DeviceStatus::Active,
            revoked_reason: None,
            enrolled_at: Timestamp(0),
        }],
        envelopes,
        ..Snapshot::default()
    };
    Fixture {
        study,
        snapshot,
        participant,
        recording,
        audio,
        sealed,
    }
}

fn options() -> Options<'static> {
    Options {
        exported_at: Timestamp(1_764_100_000_000),
        exported_by: "Rosa",
        base_path: "",
        formats: &Format::ALL,
    }
}

#[test]
fn a_small_study_bundles_into_the_files_of_the_export() {
    let f = fixture();
    let key = f.study.private_key();
    let prepared = prepare(&f.snapshot, key);
    let wanted = prepared.attachments();
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].record_id, f.recording.to_string());
    let upload = Upload {
        name: "the upload".into(),
        sealed: Ok(f.sealed.clone()),
    };
    let plaintext = open_uploads(key, &wanted[0], Ok(vec![upload])).unwrap();
    assert_eq!(plaintext, f.audio);
    let opened = HashMap::from([(wanted[0].record_id.clone(), Ok(plaintext))]);
    let bundle = prepared.assemble(opened, &options()).unwrap();
    let names: Vec<&str> = bundle.files.iter().map(|f| f.name.as_str()).collect();
    let recording = format!("attachments/C01-{}/{}.webm", f.participant, f.recording);
    assert_eq!(names[0], recording, "{names:?}");
    assert_eq!(names[1..3], ["records.csv", "records.json"]);
    assert_eq!(names.last(), Some(&"manifest.json"));
    for expected in [
        "participants.csv",
        "codebook.csv",
        "attune.qdpx",
        "load_attune.R",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(bundle.files[0].bytes, f.audio);
    assert_eq!(bundle.summary.records, 3);
    assert_eq!(bundle.summary.attachments, 1);
    assert!(bundle.problems.is_empty(), "{:?}", bundle.problems);
    let manifest: Value = serde_json::from_slice(&bundle.files.last().unwrap().bytes).unwrap();
    assert_eq!(manifest["exported_by"], "Rosa");
    assert_eq!(manifest["attachments"][0]["name"], recording.as_str());
    // Every file but the recordings and the manifest itself is listed with its hash.
    let listed = manifest["files"].as_array().unwrap().len();
    assert_eq!(listed, names.len() - 2);
    // The whole export zips and reads back, entry by entry.
    let entries: Vec<(&str, &[u8])> = bundle
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.bytes.as_slice()))
        .collect();
    let zipped = zip(&entries).unwrap();
    let back = unzip(&zipped).unwrap();
    assert_eq!(back.len(), entries.len());
    assert_eq!(back[0].1, f.audio);
}

#[test]
fn a_recording_that_cannot_be_had_is_a_problem_and_the_export_goes_ahead() {
    let f = fixture();
    let key = f.study.private_key();
    let prepared = prepare(&f.snapshot, key);
    let wanted = &prepared.attachments()[0];
    let other = StudyKeyPair::generate();
    let blob = wanted.blob;
    let foreign = seal_attachment(
        blob,
        std::slice::from_ref(&f.audio),
        &other.public_key(),
        &[1; 32],
    )
    .unwrap();
    let uploads = vec![
        Upload {
            name: "upload a".into(),
            sealed: Err("upload a is incomplete".into()),
        },
        Upload {
            name: "upload b".into(),
            sealed: Ok(foreign),
        },
    ];
    let problem = open_uploads(key, wanted, Ok(uploads)).unwrap_err();
    assert!(
        problem.starts_with("upload a is incomplete; upload b: "),
        "{problem}"
    );
    assert_eq!(
        open_uploads(key, wanted, Ok(vec![])).unwrap_err(),
        "never uploaded"
    );
    let opened = HashMap::from([(wanted.record_id.clone(), Err(problem.clone()))]);
    let bundle = prepared.assemble(opened, &options()).unwrap();
    assert!(
        !bundle
            .files
            .iter()
            .any(|f| f.name.starts_with("attachments/"))
    );
    assert_eq!(bundle.summary.attachment_problems, 1);
    assert_eq!(bundle.problems.len(), 1);
    assert!(
        bundle.problems[0].contains(&problem),
        "{:?}",
        bundle.problems
    );
    let manifest: Value = serde_json::from_slice(&bundle.files.last().unwrap().bytes).unwrap();
    assert_eq!(
        manifest["attachment_problems"][0]["problem"],
        problem.as_str()
    );
}

#[test]
fn the_zip_refuses_what_would_need_zip64() {
    const GIB: u64 = 1 << 30;
    // Small entries: the exact size of the zip.
    assert_eq!(check_size([(5, 10)]).unwrap(), 22 + 30 + 5 + 10 + 46 + 5);
    assert_eq!(zip(&[("a.txt", b"0123456789")]).unwrap().len(), 118);
    // One entry over 4 GiB.
    let entry = check_size([(9, 4 * GIB)]).unwrap_err();
    assert!(matches!(entry, ExportError::NeedsZip64 { .. }));
    assert!(entry.to_string().contains("Zip64"), "{entry}");
    // Entries under 4 GiB each, over it together.
    let archive = check_size([(9, 3 * GIB), (9, 2 * GIB)]).unwrap_err();
    assert!(
        matches!(&archive, ExportError::NeedsZip64 { what, .. } if what == "the zip"),
        "{archive}"
    );
    // Just under: allowed.
    assert!(check_size([(1, 4 * GIB - 200)]).is_ok());
    assert!(matches!(
        check_size(std::iter::repeat_n((1, 0), 70_000)),
        Err(ExportError::TooLarge(_))
    ));
}

// Moved with the code from `attune-server export`'s own tests.
use super::parts::{QuoteConsent, extension};

#[test]
fn a_quote_is_marked_when_its_participant_did_not_agree_to_quotes() {
    use crate::consent::{ConsentAnswers, evaluate};
    use crate::ids::ParticipantId;
    use crate::protocol::default_protocol;
    use std::collections::BTreeMap;
    let form = default_protocol().consent_form_for("carers").unwrap();
    let outcome = |quotes: bool| {
        let mut answers = ConsentAnswers::new();
        for item in &form.items {
            answers.set(item.id.clone(), item.id != "quotes" || quotes);
        }
        Ok(evaluate(form, &answers))
    };
    let (said_no, said_yes, unknown) = (
        ParticipantId::new(Timestamp(1)),
        ParticipantId::new(Timestamp(2)),
        ParticipantId::new(Timestamp(3)),
    );
    let quotes = QuoteConsent {
        latest: BTreeMap::from([
            (said_no, (Timestamp(5), outcome(false))),
            (said_yes, (Timestamp(5), outcome(true))),
        ]),
    };
    let by = Authorship {
        device: DeviceId::new(Timestamp(1)),
        author: ProfileId::new(Timestamp(1)),
        time: Timestamp(9),
    };
    let note = |participant, flags: &[&str]| {
        let body = json!({"guide_id": "guide-carers", "text": "said", "flags": flags,
            "updated": 1});
        Revision::first(
            RecordId::new(Timestamp(9)),
            Kind::InterviewNote,
            Links {
                participant: Some(participant),
                ..Links::default()
            },
            body.to_string().into_bytes(),
            by,
        )
    };
    assert!(quotes.not_agreed(&note(said_no, &["quote"])));
    assert!(!quotes.not_agreed(&note(said_no, &["follow_up"])));
    assert!(!quotes.not_agreed(&note(said_yes, &["quote"])));
    assert!(
        quotes.not_agreed(&note(unknown, &["quote"])),
        "no consent known"
    );
}

#[test]
fn media_types_get_their_usual_extensions() {
    assert_eq!(extension("audio/webm;codecs=opus"), "webm");
    assert_eq!(extension("audio/mp4"), "m4a");
    assert_eq!(extension("image/png"), "png");
    assert_eq!(extension("application/x-unknown"), "bin");
}

#[test]
fn participant_codes_cannot_leave_the_attachments_folder() {
    assert_eq!(crate::export::path_segment("VIG-001"), "VIG-001");
    assert_eq!(crate::export::path_segment("../etc"), "___etc");
    assert_eq!(crate::export::path_segment(".."), "unnamed");
    assert_eq!(crate::export::path_segment(""), "unnamed");
}
