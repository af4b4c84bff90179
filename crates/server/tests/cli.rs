//! The administration commands through the real binary: `study init`/`upgrade-key`/
//! `fingerprint`, `enrol create`, `device list`/`revoke`, `withdraw`, `protocol`, `conflicts`,
//! `check` and `export` (which verifies what it exports).

use std::path::Path;
use std::process::{Command, Output};

use attune_core::sync::ControlKind;
use attune_core::{
    Authorship, DeviceId, DeviceKey, Kind, Links, ParticipantId, ProfileId, RecordId, Revision,
    StudyFingerprint, StudyKeyFile, StudyPublicKey, StudyVerifyingKey, Timestamp, seal_envelope,
};
use attune_server::Store;
use attune_server::store::{NewDevice, SqliteStore};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

const PASSPHRASE: &str = "a long study passphrase";

fn run(data: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_attune-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("ATTUNE_STUDY_PASSPHRASE", PASSPHRASE)
        .env_remove("ATTUNE_DATABASE_URL")
        .output()
        .expect("run attune-server");
    assert!(
        output.status.success(),
        "attune-server {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A device enrolled straight in `store` (for Ana), its key, and its authorship of revisions.
async fn enrolled_device(store: &SqliteStore) -> (DeviceId, DeviceKey, Authorship) {
    enrolled_device_of(store, "Ana").await
}

/// A device enrolled straight in `store` for `fieldworker`.
async fn enrolled_device_of(
    store: &SqliteStore,
    fieldworker: &str,
) -> (DeviceId, DeviceKey, Authorship) {
    let device_id = DeviceId::new(Timestamp(1));
    let device_key = DeviceKey::generate().unwrap();
    let code = format!("h-{device_id}");
    store
        .create_enrolment_code(&code, fieldworker, Timestamp(i64::MAX), Timestamp(0))
        .await
        .unwrap();
    store
        .enrol_device(
            &code,
            NewDevice {
                id: device_id.to_string(),
                name: "Tablet".into(),
                public_key: device_key.public_key().to_text(),
                token_hash: format!("t-{device_id}"),
            },
            Timestamp(0),
        )
        .await
        .unwrap();
    let by = Authorship {
        device: device_id,
        author: ProfileId::new(Timestamp(1)),
        time: Timestamp(1_750_000_000_000),
    };
    (device_id, device_key, by)
}

#[tokio::test]
async fn study_init_then_export_decrypts_latest_revisions_and_leaves_out_withdrawn() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("study.key");
    let out = dir.path().join("export");

    let init = run(
        &data,
        &["study", "init", "--key-out", key_file.to_str().unwrap()],
    );
    assert!(stdout(&init).contains("Public key"));
    assert!(key_file.is_file());
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert!(key_text.contains("attune-study-key"));

    let (code, fingerprint) = enrol_create(&data, &key_file, "Ana");
    assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code:?}");
    assert!(stdout(&init).contains(&fingerprint.to_string()));

    // A device pushes: two revisions for VIG-001, one for VIG-002 (who then withdraws).
    let store = SqliteStore::open(&data).await.unwrap();
    let study =
        StudyPublicKey::from_text(&store.study_public_key().await.unwrap().unwrap()).unwrap();
    let (device_id, device_key, by) = enrolled_device(&store).await;
    let note = |text: &str| serde_json::json!({ "text": text }).to_string().into_bytes();
    let (vig_001, vig_002) = (
        ParticipantId::new(Timestamp(1)),
        ParticipantId::new(Timestamp(1)),
    );
    let about = |participant| Links {
        participant: Some(participant),
        ..Links::default()
    };
    let first = Revision::first(
        RecordId::new(Timestamp(1)),
        Kind::InterviewNote,
        about(vig_001),
        note("she likes the garden"),
        by,
    );
    let second = first
        .next(note("she likes the garden, \"very much\""), by)
        .unwrap();
    let withdrawn = Revision::first(
        RecordId::new(Timestamp(2)),
        Kind::InterviewNote,
        about(vig_002),
        note("withdrawn words"),
        by,
    );
    // A child's drawing: the picture travels as base64 PNG inside the response.
    let picture = b"\x89PNG\r\n\x1a\n a child's house".to_vec();
    let drawing = Revision::first(
        RecordId::new(Timestamp(3)),
        Kind::ActivityResponse,
        about(vig_001),
        serde_json::json!({
            "activity_id": "draw", "prompt_id": "home", "time": 1,
            "answer": { "strokes": [], "png": BASE64.encode(&picture) },
        })
        .to_string()
        .into_bytes(),
        by,
    );
    let envelopes = vec![
        seal_envelope(&drawing, Some("VIG-001".into()), &study, &device_key).unwrap(),
        seal_envelope(&first, Some("VIG-001".into()), &study, &device_key).unwrap(),
        seal_envelope(&second, Some("VIG-001".into()), &study, &device_key).unwrap(),
        seal_envelope(&withdrawn, Some("VIG-002".into()), &study, &device_key).unwrap(),
    ];
    store
        .push(&device_id.to_string(), &envelopes, Timestamp(5))
        .await
        .unwrap();
    store.close().await;

    let list = stdout(&run(&data, &["device", "list"]));
    assert!(list.contains(&device_id.to_string()) && list.contains("active"));
    let withdrawn_out = stdout(&run(
        &data,
        &[
            "withdraw",
            "--key",
            key_file.to_str().unwrap(),
            "--participant",
            "VIG-002",
        ],
    ));
    assert!(
        withdrawn_out.contains(&vig_002.to_string()),
        "{withdrawn_out}"
    );
    run(
        &data,
        &[
            "export",
            "--key",
            key_file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );

    let csv = std::fs::read_to_string(out.join("records.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "record_id,rev,kind,participant_code,time,body,attachment,device,fieldworker,verified,quote_not_agreed"
    );
    assert_eq!(
        lines.len(),
        3,
        "one row per latest revision, VIG-002 left out"
    );
    assert!(lines[1].contains(r#"""very much\"""#), "{}", lines[1]);
    assert!(lines[1].contains("\"VIG-001\"") && lines[1].contains(",2,"));
    assert!(!csv.contains("withdrawn words"));
    // The drawing is a file; its row names it instead of holding the base64.
    let drawing_file = format!("drawings/VIG-001-{vig_001}/{}.png", drawing.record_id);
    assert_eq!(std::fs::read(out.join(&drawing_file)).unwrap(), picture);
    assert!(
        lines[2].ends_with(&format!(
            "\"{drawing_file}\",\"{device_id}\",\"Ana\",true,false"
        )),
        "{}",
        lines[2]
    );
    assert!(!lines[2].contains(&BASE64.encode(&picture)), "{}", lines[2]);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("records.json")).unwrap()).unwrap();
    assert_eq!(
        json["records"][1]["revisions"][0]["body"]["answer"]["png"],
        BASE64.encode(&picture),
        "the JSON keeps the body as recorded"
    );
    let revisions = &json["records"][0]["revisions"];
    assert_eq!(revisions.as_array().unwrap().len(), 2);
    assert_eq!(revisions[0]["body"]["text"], "she likes the garden");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    for file in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(out.join(file["name"].as_str().unwrap())).unwrap();
        let hash = attune_core::hex::encode(&Sha256::digest(&bytes));
        assert_eq!(file["sha256"], hash);
    }

    let store = SqliteStore::open(&data).await.unwrap();
    let log = store.export_log().await.unwrap();
    store.close().await;
    assert_eq!(log.len(), 1, "the CLI's export is logged");
    assert!(log[0].what.contains("2 records"), "{}", log[0].what);
    // Read last: reading the database file with std::fs while this process may still hold a
    // SQLite connection to it (sqlx closes them on a worker thread, a little after `close`)
    // drops that connection's POSIX locks, and SQLite can then misread what other processes
    // wrote. Nothing uses the database after this.
    let database = std::fs::read(data.join(attune_server::DATABASE_FILE)).unwrap();
    assert!(
        !String::from_utf8_lossy(&database).contains("garden"),
        "the server database holds no plaintext"
    );
    let listed = manifest["attachments"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], drawing_file);

    // The analysis files are listed (and hashed, above) with the rest; nothing anywhere in
    // the export names the withdrawn participant's words; only the owner can read it.
    let names: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for expected in [
        "interview_notes.csv",
        "codebook.csv",
        "load_attune.R",
        "attune.qdpx",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    for entry in walk(&out) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("withdrawn words"),
            "{}",
            entry.display()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", entry.display());
            let folder = std::fs::metadata(entry.parent().unwrap()).unwrap();
            assert_eq!(folder.permissions().mode() & 0o777, 0o700);
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn the_export_lays_out_an_interview_with_its_question_words_for_analysis() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("study.key");
    let out = dir.path().join("export");
    run(
        &data,
        &["study", "init", "--key-out", key_file.to_str().unwrap()],
    );
    let store = SqliteStore::open(&data).await.unwrap();
    let study =
        StudyPublicKey::from_text(&store.study_public_key().await.unwrap().unwrap()).unwrap();
    let (device_id, device_key, by) = enrolled_device(&store).await;
    let protocol = attune_core::default_protocol();
    let guide = protocol.guide("guide-carers").unwrap();
    let question = &guide.sections[0].questions[1];
    let carer = ParticipantId::new(Timestamp(1));
    let links = Links {
        participant: Some(carer),
        protocol: Some(protocol.reference()),
        ..Links::default()
    };
    let participant = Revision::first(
        RecordId::from_uuid(*carer.as_uuid()),
        Kind::Participant,
        links.clone(),
        serde_json::json!({"code": "C01", "group": "carers"})
            .to_string()
            .into_bytes(),
        by,
    );
    let note = Revision::first(
        RecordId::new(Timestamp(2)),
        Kind::InterviewNote,
        links,
        serde_json::json!({"guide_id": guide.id, "question_id": question.id,
            "text": "=the tablet stayed charged", "flags": ["follow_up"], "updated": 1_750_000_000_000_i64})
        .to_string()
        .into_bytes(),
        by,
    );
    let envelopes = vec![
        seal_envelope(&participant, Some("C01".into()), &study, &device_key).unwrap(),
        seal_envelope(&note, Some("C01".into()), &study, &device_key).unwrap(),
    ];
    store
        .push(&device_id.to_string(), &envelopes, Timestamp(5))
        .await
        .unwrap();
    store.close().await;
    run(
        &data,
        &[
            "export",
            "--key",
            key_file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let notes = std::fs::read_to_string(out.join("interview_notes.csv")).unwrap();
    let row = notes.lines().nth(1).unwrap();
    assert!(
        row.contains(&question.text) && row.contains(&question.id),
        "{row}"
    );
    assert!(
        row.contains(",'=the tablet stayed charged,0,1,0,0,2025-06-15T"),
        "neutralised: {row}"
    );
    assert!(row.contains(",Ana,"), "{row}");
    let qdpx = std::fs::read(out.join("attune.qdpx")).unwrap();
    let entries = attune_core::export::zip::unzip(&qdpx).unwrap();
    let text = entries
        .iter()
        .find(|(name, _)| name.ends_with(".txt"))
        .map(|(_, bytes)| String::from_utf8(bytes.clone()).unwrap())
        .unwrap();
    assert!(
        text.contains(&format!(
            "2. {}\n=the tablet stayed charged\n[Follow up]",
            question.text
        )),
        "{text}"
    );
    let project = String::from_utf8(entries[0].1.clone()).unwrap();
    let base = out.canonicalize().unwrap();
    assert!(
        project.contains(&format!("basePath=\"{}\"", base.display())),
        "{project}"
    );
    assert!(out.join("interviews/C01-2025-06-15-1.docx").is_file());
    let readme = std::fs::read_to_string(out.join("README.txt")).unwrap();
    assert!(readme.contains("interview_notes.csv (1 row)"), "{readme}");

    // Narrowed to the project: the records and manifest still, no other analysis files; a
    // format that does not exist is refused in words.
    let narrow = dir.path().join("narrow");
    let said = stdout(&run(
        &data,
        &[
            "export",
            "--key",
            key_file.to_str().unwrap(),
            "--out",
            narrow.to_str().unwrap(),
            "--only",
            "qdpx",
        ],
    ));
    assert!(said.contains("For analysis: attune.qdpx"), "{said}");
    assert!(narrow.join("attune.qdpx").is_file() && narrow.join("records.csv").is_file());
    assert!(!narrow.join("interview_notes.csv").exists() && !narrow.join("interviews").exists());
    let refused = run_failing(
        &data,
        &[
            "export",
            "--key",
            key_file.to_str().unwrap(),
            "--out",
            narrow.to_str().unwrap(),
            "--only",
            "pdf",
        ],
    );
    assert!(
        refused.contains("\"pdf\" is not an export format"),
        "{refused}"
    );
}

#[test]
fn export_with_a_wrong_passphrase_fails_and_writes_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("study.key");
    run(
        &data,
        &["study", "init", "--key-out", key_file.to_str().unwrap()],
    );
    let out = dir.path().join("export");
    let output = Command::new(env!("CARGO_BIN_EXE_attune-server"))
        .args(["export", "--key", key_file.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .arg("--data-dir")
        .arg(&data)
        .env("ATTUNE_STUDY_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("passphrase"));
    assert!(!out.exists());
}

#[test]
fn a_revoked_device_is_listed_with_its_reason_and_a_signed_statement() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = study_init(dir.path(), &data);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let device_id = runtime.block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        let (device_id, _, _) = enrolled_device_of(&store, "Ben").await;
        store.close().await;
        device_id
    });
    let key = key_file.to_str().unwrap();
    let id = device_id.to_string();
    let error = run_failing(
        &data,
        &[
            "device", "revoke", "device-1", "--reason", "x", "--key", key,
        ],
    );
    assert!(error.contains("not a device id"), "{error}");
    run(
        &data,
        &[
            "device",
            "revoke",
            &id,
            "--reason",
            "lost on the bus",
            "--key",
            key,
        ],
    );
    let list = stdout(&run(&data, &["device", "list"]));
    assert!(list.contains("revoked: lost on the bus"), "{list}");
    let again = stdout(&run(
        &data,
        &["device", "revoke", &id, "--reason", "again", "--key", key],
    ));
    assert!(again.contains("already revoked"), "{again}");
    // Every tablet receives the revocation as a study instruction signed with the key file's
    // signing key.
    let messages = runtime.block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        let messages = store.control_messages_after(0).await.unwrap();
        store.close().await;
        messages
    });
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].kind,
        ControlKind::Revocation {
            device_id,
            reason: "lost on the bus".into()
        }
    );
    signing_key(&key_file).verify_control(&messages[0]).unwrap();
}

/// Runs a command expected to fail; its stderr.
fn run_failing(data: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_attune-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("ATTUNE_STUDY_PASSPHRASE", PASSPHRASE)
        .env_remove("ATTUNE_DATABASE_URL")
        .output()
        .expect("run attune-server");
    assert!(
        !output.status.success(),
        "attune-server {args:?} should have failed"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The default protocol at `version`, with the first interview question reworded.
fn protocol_file(dir: &Path, version: u32, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(attune_core::DEFAULT_PROTOCOL_JSON).unwrap();
    value["version"] = serde_json::json!(version);
    value["interview_guides"][0]["sections"][0]["questions"][0]["text"] =
        serde_json::json!(format!("Question of version {version}"));
    edit(&mut value);
    let path = dir.join(format!("protocol-{version}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_protocol_is_published_once_checked_and_only_as_a_newer_version() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = study_init(dir.path(), &data);
    let key = key_file.to_str().unwrap();
    run(&data, &["protocol", "list"]);
    assert!(stdout(&run(&data, &["protocol", "list"])).contains("No protocol published"));

    // A bad file: refused with the path of the field, nothing published.
    let bad = protocol_file(dir.path(), 2, |v| v["groups"][1]["target"] = 0.into());
    let error = run_failing(&data, &["protocol", "publish", &bad, "--key", key]);
    assert!(error.contains("groups[1].target"), "{error}");
    assert!(error.contains("nothing was published"), "{error}");
    let typo = protocol_file(dir.path(), 2, |v| {
        v["safeguarding"]["stpes"] = serde_json::json!([]);
    });
    let error = run_failing(&data, &["protocol", "publish", &typo, "--key", key]);
    assert!(error.contains("safeguarding.stpes"), "{error}");

    // The version the app has built in is not an update.
    let built_in = protocol_file(dir.path(), 1, |_| {});
    let error = run_failing(&data, &["protocol", "publish", &built_in, "--key", key]);
    assert!(error.contains("built in"), "{error}");

    let v3 = protocol_file(dir.path(), 3, |_| {});
    let published = stdout(&run(&data, &["protocol", "publish", &v3, "--key", key]));
    assert!(published.contains("version 3 published"), "{published}");
    // An older (or the same) version after it is refused.
    let v2 = protocol_file(dir.path(), 2, |_| {});
    let error = run_failing(&data, &["protocol", "publish", &v2, "--key", key]);
    assert!(error.contains("version 3 was already published"), "{error}");

    let listed = stdout(&run(&data, &["protocol", "list"]));
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert!(rows[0].starts_with("vig-evaluation\t3\t"), "{listed}");
    assert!(rows[0].ends_with("\t1"), "instruction 1: {listed}");

    // What devices receive is the file as published.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let messages = runtime.block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        let messages = store.control_messages_after(0).await.unwrap();
        store.close().await;
        messages
    });
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].kind,
        attune_server::store::ControlKind::ProtocolUpdate {
            protocol: std::fs::read_to_string(&v3).unwrap()
        }
    );
    assert_eq!(messages[0].seq, 1);
    signing_key(&key_file).verify_control(&messages[0]).unwrap();
}

#[tokio::test]
async fn conflicts_are_listed_with_both_hashes() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    assert!(stdout(&run(&data, &["conflicts"])).contains("No conflicts"));

    let store = SqliteStore::open(&data).await.unwrap();
    let study = attune_core::StudyKeyPair::generate().public_key();
    let (device_id, device_key, by) = enrolled_device(&store).await;
    let record = RecordId::new(Timestamp(1));
    let [kept, other] = ["first words", "other words"].map(|text| {
        Revision::first(
            record,
            Kind::InterviewNote,
            Links::default(),
            text.as_bytes().to_vec(),
            by,
        )
    });
    for revision in [&kept, &other] {
        let envelope =
            seal_envelope(revision, Some("VIG-001".into()), &study, &device_key).unwrap();
        store
            .push(&device_id.to_string(), &[envelope], Timestamp(5))
            .await
            .unwrap();
    }
    store.close().await;

    let listed = stdout(&run(&data, &["conflicts"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one conflict: {listed}");
    let row = lines[1];
    assert!(
        row.starts_with(&format!(
            "{record}\t1\tinterview_note\tVIG-001\t{device_id}\t"
        )),
        "{row}"
    );
    assert!(
        row.ends_with(&format!("\t{}\t{}", other.hash, kept.hash)),
        "{row}"
    );
    assert!(
        row.contains("\trev_taken\trev 1 of this record is stored with hash "),
        "{row}"
    );
}

#[tokio::test]
async fn a_participant_code_already_taken_is_listed_as_a_conflict_never_renamed() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let store = SqliteStore::open(&data).await.unwrap();
    let study = attune_core::StudyKeyPair::generate().public_key();
    let (ana, ana_key, ana_by) = device_of(&store, "Ana").await;
    let (ben, ben_key, ben_by) = device_of(&store, "Ben").await;
    let carer = |by: Authorship| {
        Revision::first(
            RecordId::new(Timestamp(1)),
            Kind::Participant,
            Links::default(),
            br#"{"code":"C01"}"#.to_vec(),
            by,
        )
    };
    let (first, second) = (carer(ana_by), carer(ben_by));
    for (device, key, revision) in [(ana, &ana_key, &first), (ben, &ben_key, &second)] {
        let envelope = seal_envelope(revision, Some("C01".into()), &study, key).unwrap();
        store
            .push(&device.to_string(), &[envelope], Timestamp(5))
            .await
            .unwrap();
    }
    store.close().await;
    let listed = stdout(&run(&data, &["conflicts"]));
    let row = listed.lines().nth(1).expect("one conflict");
    assert!(
        row.starts_with(&format!(
            "{}\t1\tparticipant\tC01\t{ben}\t",
            second.record_id
        )),
        "{row}"
    );
    assert!(
        row.contains(&format!(
            "\tcode_taken\tcode C01 is held by participant record {}\t",
            first.record_id
        )),
        "{row}"
    );
    // Nothing found by check: the second carer was never stored under the code.
    assert!(stdout(&run(&data, &["check"])).contains("No problems found."));
}

/// Runs a command whatever its exit status; the output.
fn run_any(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attune-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("ATTUNE_STUDY_PASSPHRASE", PASSPHRASE)
        .env_remove("ATTUNE_DATABASE_URL")
        .output()
        .expect("run attune-server")
}

/// A device enrolled straight in `store` for `fieldworker`.
async fn device_of(store: &SqliteStore, fieldworker: &str) -> (DeviceId, DeviceKey, Authorship) {
    let device_id = DeviceId::new(Timestamp(1));
    let device_key = DeviceKey::generate().unwrap();
    let code = format!("code-{device_id}");
    store
        .create_enrolment_code(&code, fieldworker, Timestamp(i64::MAX), Timestamp(0))
        .await
        .unwrap();
    store
        .enrol_device(
            &code,
            NewDevice {
                id: device_id.to_string(),
                name: "Tablet".into(),
                public_key: device_key.public_key().to_text(),
                token_hash: format!("token-{device_id}"),
            },
            Timestamp(0),
        )
        .await
        .unwrap();
    let by = Authorship {
        device: device_id,
        author: ProfileId::new(Timestamp(1)),
        time: Timestamp(1_750_000_000_000),
    };
    (device_id, device_key, by)
}

/// Puts an envelope straight into a table, past every check of the push (as someone with
/// the database could).
async fn insert_raw(store: &SqliteStore, table: &str, envelope: &attune_core::Envelope) {
    sqlx::query(&format!(
        "INSERT INTO {table} (record_id, rev, hash, kind, participant_code, device_id, time, \
         received_at, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, 5, $8)"
    ))
    .bind(envelope.record_id.to_string())
    .bind(i64::from(envelope.rev))
    .bind(envelope.hash.to_hex())
    .bind(envelope.kind.as_str())
    .bind(envelope.participant_code.as_deref())
    .bind(envelope.device_id.to_string())
    .bind(envelope.time.as_millis())
    .bind(serde_json::to_string(envelope).unwrap())
    .execute(store.pool())
    .await
    .unwrap();
}

/// A forged envelope (valid shape, wrong signature), a revision with a broken parent hash, a
/// deleted middle revision and a record hijacked by another fieldworker's device, each put
/// straight into the database: the export lists each in the manifest's problems and leaves it
/// out, the rest of the export is complete; `check` finds each (and a code held twice) and
/// exits non-zero.
#[tokio::test]
async fn export_and_check_find_what_was_put_into_the_database_behind_the_servers_back() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("study.key");
    let out = dir.path().join("export");
    run(
        &data,
        &["study", "init", "--key-out", key_file.to_str().unwrap()],
    );
    let store = SqliteStore::open(&data).await.unwrap();
    let study =
        StudyPublicKey::from_text(&store.study_public_key().await.unwrap().unwrap()).unwrap();
    let (ana, ana_key, ana_by) = device_of(&store, "Ana").await;
    let (ana_new, ana_new_key, ana_new_by) = device_of(&store, "Ana").await;
    let (ben, ben_key, ben_by) = device_of(&store, "Ben").await;
    let text = |words: &str| {
        serde_json::json!({ "text": words })
            .to_string()
            .into_bytes()
    };
    let note = |words: &str| {
        Revision::first(
            RecordId::new(Timestamp(1)),
            Kind::InterviewNote,
            Links::default(),
            text(words),
            ana_by,
        )
    };
    let seal = |revision: &Revision, key: &DeviceKey| {
        seal_envelope(revision, Some("VIG-001".into()), &study, key).unwrap()
    };
    let push = |device: DeviceId, envelopes: Vec<attune_core::Envelope>| {
        let store = &store;
        async move {
            let pushed = store
                .push_checked(&device.to_string(), &envelopes, Timestamp(5))
                .await
                .unwrap();
            assert!(pushed.iter().all(|p| p.reason.is_none()), "{pushed:?}");
        }
    };

    // Good: a record with two revisions, and one continued on Ana's re-enrolled tablet.
    let good = note("good words");
    let good_2 = good.next(text("good words, edited"), ana_by).unwrap();
    push(ana, vec![seal(&good, &ana_key), seal(&good_2, &ana_key)]).await;
    let moved = note("started on the old tablet");
    let moved_2 = moved
        .next(text("finished on the new tablet"), ana_new_by)
        .unwrap();
    push(ana, vec![seal(&moved, &ana_key)]).await;
    push(ana_new, vec![seal(&moved_2, &ana_new_key)]).await;

    // Forged: sealed to the study key, claiming Ana's device, signed with another key.
    let forged = note("FORGED words");
    insert_raw(
        &store,
        "envelopes",
        &seal(&forged, &DeviceKey::generate().unwrap()),
    )
    .await;

    // A broken parent hash: rev 2 signed by Ana's device, naming a parent that is not rev 1.
    let parented = note("parent words");
    push(ana, vec![seal(&parented, &ana_key)]).await;
    let mut broken = parented.next(text("BROKEN-PARENT words"), ana_by).unwrap();
    broken.parent_hash = Some(good.hash);
    broken.hash = broken.compute_hash();
    insert_raw(&store, "envelopes", &seal(&broken, &ana_key)).await;

    // A deleted middle revision: rev 2 of 3 removed.
    let middle = note("middle 1");
    let middle_2 = middle.next(text("middle 2"), ana_by).unwrap();
    let middle_3 = middle_2.next(text("AFTER-THE-HOLE words"), ana_by).unwrap();
    push(
        ana,
        vec![
            seal(&middle, &ana_key),
            seal(&middle_2, &ana_key),
            seal(&middle_3, &ana_key),
        ],
    )
    .await;
    sqlx::query("DELETE FROM envelopes WHERE record_id = $1 AND rev = 2")
        .bind(middle.record_id.to_string())
        .execute(store.pool())
        .await
        .unwrap();

    // Hijacked: Ana's record continued by Ben's device, validly signed by it.
    let owned = note("Ana's own words");
    push(ana, vec![seal(&owned, &ana_key)]).await;
    let hijack = owned.next(text("HIJACKED words"), ben_by).unwrap();
    insert_raw(&store, "envelopes", &seal(&hijack, &ben_key)).await;

    // A participant code held by two participant records (from before the code checks).
    let carer = |by: Authorship| {
        Revision::first(
            RecordId::new(Timestamp(1)),
            Kind::Participant,
            Links::default(),
            br#"{"code":"C01","group":"carers","links":[],"status":"active"}"#.to_vec(),
            by,
        )
    };
    let (anas_carer, bens_carer) = (carer(ana_by), carer(ben_by));
    for (revision, key) in [(&anas_carer, &ana_key), (&bens_carer, &ben_key)] {
        let envelope = seal_envelope(revision, Some("C01".into()), &study, key).unwrap();
        insert_raw(&store, "envelopes", &envelope).await;
    }
    store.close().await;

    // Export: complete for the rest, each bad revision listed and left out.
    let exported = run_any(
        &data,
        &[
            "export",
            "--key",
            key_file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(exported.status.success(), "{stderr}");
    assert!(
        stderr.contains("4 revisions or conflicts failed verification"),
        "{stderr}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let mut problems: Vec<(String, u64, String)> = manifest["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["record_id"].as_str().unwrap().to_owned(),
                p["rev"].as_u64().unwrap(),
                p["problem"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    problems.sort();
    let mut expected = vec![
        (forged.record_id.to_string(), 1, "bad_signature".to_owned()),
        (
            parented.record_id.to_string(),
            2,
            "parent_mismatch".to_owned(),
        ),
        (middle.record_id.to_string(), 3, "gap".to_owned()),
        (
            owned.record_id.to_string(),
            2,
            "owned_by_another_device".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(problems, expected, "{manifest}");
    for problem in manifest["problems"].as_array().unwrap() {
        assert!(!problem["reason"].as_str().unwrap().is_empty());
    }

    let csv = std::fs::read_to_string(out.join("records.csv")).unwrap();
    for left_out in ["FORGED", "BROKEN-PARENT", "AFTER-THE-HOLE", "HIJACKED"] {
        assert!(!csv.contains(left_out), "{left_out} is in the CSV:\n{csv}");
    }
    let row = |record: RecordId| {
        csv.lines()
            .find(|line| line.starts_with(&format!("\"{record}\",")))
            .map(str::to_owned)
    };
    let good_row = row(good.record_id).expect("the good record");
    assert!(good_row.contains("good words, edited"), "{good_row}");
    assert!(
        good_row.ends_with(&format!(",\"{ana}\",\"Ana\",true,false")),
        "{good_row}"
    );
    let moved_row = row(moved.record_id).expect("the record on the new tablet");
    assert!(
        moved_row.ends_with(&format!(",\"{ana_new}\",\"Ana\",true,false")),
        "{moved_row}"
    );
    assert_eq!(row(forged.record_id), None, "nothing of the forged record");
    // The records that broke later keep what verified, marked as not wholly verified.
    for (record, kept) in [
        (parented.record_id, "parent words"),
        (middle.record_id, "middle 1"),
        (owned.record_id, "Ana's own words"),
    ] {
        let line = row(record).expect("the verified start of the record");
        assert!(
            line.contains(kept) && line.ends_with(",false,false"),
            "{line}"
        );
        assert!(line.starts_with(&format!("\"{record}\",1,")), "{line}");
    }
    assert_eq!(csv.lines().count(), 1 + 7, "a header and 7 records:\n{csv}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("records.json")).unwrap()).unwrap();
    let records = json["records"].as_array().unwrap();
    let middle_json = records
        .iter()
        .find(|r| r["record_id"] == middle.record_id.to_string())
        .unwrap();
    assert_eq!(middle_json["verified"], false);
    assert_eq!(middle_json["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(middle_json["problems"][0]["problem"], "gap");
    let good_json = records
        .iter()
        .find(|r| r["record_id"] == good.record_id.to_string())
        .unwrap();
    assert_eq!(good_json["verified"], true);
    assert_eq!(good_json["fieldworker"], "Ana");
    assert_eq!(good_json["revisions"][1]["fieldworker"], "Ana");
    assert!(
        !String::from_utf8_lossy(&std::fs::read(out.join("records.json")).unwrap())
            .contains("HIJACKED")
    );

    // Check: the same four, the code held twice, and who continued which record.
    let checked = run_any(&data, &["check"]);
    assert!(!checked.status.success(), "check must fail");
    let report = stdout(&checked);
    let line_of = |record: RecordId, problem: &str| {
        report
            .lines()
            .any(|line| line.starts_with(&record.to_string()) && line.contains(problem))
    };
    assert!(line_of(forged.record_id, "bad_signature"), "{report}");
    assert!(line_of(parented.record_id, "parent_mismatch"), "{report}");
    assert!(line_of(middle.record_id, "gap"), "{report}");
    assert!(
        line_of(owned.record_id, "owned_by_another_device"),
        "{report}"
    );
    assert!(line_of(owned.record_id, "\tno"), "{report}");
    assert!(
        line_of(moved.record_id, "yes (a re-enrolled tablet"),
        "{report}"
    );
    for (record, device) in [(anas_carer.record_id, ana), (bens_carer.record_id, ben)] {
        assert!(
            report.contains(&format!("C01\t{record}\t{device}\t")),
            "{report}"
        );
    }
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("check found 6 problems"), "{stderr}");
}

#[test]
fn check_of_a_clean_database_finds_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let report = stdout(&run(&data, &["check"]));
    assert!(report.contains("No problems found."), "{report}");
}

/// `study init` into `data`, the key file in `dir`; its path.
fn study_init(dir: &Path, data: &Path) -> std::path::PathBuf {
    let key_file = dir.join("study.key");
    run(
        data,
        &["study", "init", "--key-out", key_file.to_str().unwrap()],
    );
    key_file
}

/// The study signing key's public half, from the key file's clear part.
fn signing_key(key_file: &Path) -> StudyVerifyingKey {
    StudyKeyFile::read(&std::fs::read(key_file).unwrap())
        .unwrap()
        .study_signing_key()
        .unwrap()
        .unwrap()
}

/// `enrol create`: the code and the fingerprint it printed.
fn enrol_create(data: &Path, key_file: &Path, fieldworker: &str) -> (String, StudyFingerprint) {
    let printed = stdout(&run(
        data,
        &[
            "enrol",
            "create",
            "--key",
            key_file.to_str().unwrap(),
            "--fieldworker",
            fieldworker,
        ],
    ));
    let line = |label: &str| {
        printed
            .lines()
            .find_map(|line| line.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} in {printed:?}"))
            .trim()
            .to_owned()
    };
    let fingerprint = StudyFingerprint::parse(&line("Study fingerprint:")).unwrap();
    (line("Enrolment code:"), fingerprint)
}

#[test]
fn enrol_create_prints_the_fingerprint_of_the_key_files_signing_key_and_checks_the_server() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = study_init(dir.path(), &data);
    let (code, fingerprint) = enrol_create(&data, &key_file, "Ana");
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(fingerprint, signing_key(&key_file).fingerprint());
    assert_eq!(fingerprint.to_string().len(), 24, "five groups of four");
    // No database and no passphrase needed: the key file's clear part.
    let printed = Command::new(env!("CARGO_BIN_EXE_attune-server"))
        .args(["study", "fingerprint", "--key", key_file.to_str().unwrap()])
        .env_remove("ATTUNE_STUDY_PASSPHRASE")
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(stdout(&printed).trim(), fingerprint.to_string());

    // Another study's key file is refused.
    let other_data = dir.path().join("other");
    let other_key = dir.path().join("other.key");
    run(
        &other_data,
        &["study", "init", "--key-out", other_key.to_str().unwrap()],
    );
    let error = run_failing(
        &data,
        &[
            "enrol",
            "create",
            "--key",
            other_key.to_str().unwrap(),
            "--fieldworker",
            "Ana",
        ],
    );
    assert!(
        error.contains("not this server's study key file"),
        "{error}"
    );

    // A database whose signing key was swapped is refused: the fingerprint comes from the
    // key file, and the two must agree.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        sqlx::query("UPDATE study SET signing_public_key = $1")
            .bind(signing_key(&other_key).to_text())
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
    });
    let error = run_failing(
        &data,
        &[
            "enrol",
            "create",
            "--key",
            key_file.to_str().unwrap(),
            "--fieldworker",
            "Ana",
        ],
    );
    assert!(error.contains("was altered"), "{error}");
}

#[tokio::test]
async fn withdraw_resolves_a_code_to_one_participant_and_lists_the_candidates_of_a_shared_one() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = study_init(dir.path(), &data);
    let key = key_file.to_str().unwrap();

    // Two tablets (Ana's and Ben's) each made a C01, offline; Ana's also made C02.
    let store = SqliteStore::open(&data).await.unwrap();
    let study =
        StudyPublicKey::from_text(&store.study_public_key().await.unwrap().unwrap()).unwrap();
    let mut participants = Vec::new();
    for (fieldworker, codes) in [("Ana", &["C01", "C02"][..]), ("Ben", &["C01"][..])] {
        let (device_id, device_key, by) = enrolled_device_of(&store, fieldworker).await;
        for code in codes {
            let id = ParticipantId::new(Timestamp(1));
            let links = Links {
                participant: Some(id),
                ..Links::default()
            };
            let record = Revision::first(
                RecordId::from_uuid(*id.as_uuid()),
                Kind::Participant,
                links.clone(),
                serde_json::json!({"code": code, "group": "carers"})
                    .to_string()
                    .into_bytes(),
                by,
            );
            let note = Revision::first(
                RecordId::new(Timestamp(1)),
                Kind::InterviewNote,
                links,
                format!("{{\"text\": \"about {fieldworker}'s {code}\"}}").into_bytes(),
                by,
            );
            let envelopes: Vec<_> = [record, note]
                .iter()
                .map(|r| seal_envelope(r, Some((*code).into()), &study, &device_key).unwrap())
                .collect();
            store
                .push(&device_id.to_string(), &envelopes, Timestamp(5))
                .await
                .unwrap();
            participants.push((fieldworker, *code, id, device_id));
        }
    }
    store.close().await;
    let (ana_c01, ben_c01) = (participants[0].2, participants[2].2);

    // A shared code: refused, the candidates listed with their device and fieldworker.
    let error = run_failing(&data, &["withdraw", "--key", key, "--participant", "C01"]);
    assert!(
        error.contains("2 participants have the code C01"),
        "{error}"
    );
    assert!(error.contains("--participant-id"), "{error}");
    for (fieldworker, code, id, device) in &participants {
        if *code == "C01" {
            let row = error
                .lines()
                .find(|line| line.contains(&id.to_string()))
                .unwrap_or_else(|| panic!("{id} listed: {error}"));
            assert!(
                row.contains(&device.to_string()) && row.contains(fieldworker),
                "{row}"
            );
        }
    }
    // An unknown code, and an id that is not one of the candidates: refused.
    let error = run_failing(&data, &["withdraw", "--key", key, "--participant", "C09"]);
    assert!(
        error.contains("no participant with the code C09"),
        "{error}"
    );
    let stranger = ParticipantId::new(Timestamp(1)).to_string();
    let error = run_failing(
        &data,
        &[
            "withdraw",
            "--key",
            key,
            "--participant",
            "C01",
            "--participant-id",
            &stranger,
        ],
    );
    assert!(error.contains("has the id"), "{error}");
    // Nothing was recorded by the refusals.
    let store = SqliteStore::open(&data).await.unwrap();
    assert!(store.withdrawals().await.unwrap().is_empty());
    store.close().await;

    // Ben's C01, chosen by id; Ana's C02 by its code alone (one participant has it).
    let done = stdout(&run(
        &data,
        &[
            "withdraw",
            "--key",
            key,
            "--participant",
            "C01",
            "--participant-id",
            &ben_c01.to_string(),
        ],
    ));
    assert!(done.contains("study instruction 1"), "{done}");
    run(&data, &["withdraw", "--key", key, "--participant", "c02"]);
    let again = stdout(&run(
        &data,
        &[
            "withdraw",
            "--key",
            key,
            "--participant",
            "C01",
            "--participant-id",
            &ben_c01.to_string(),
        ],
    ));
    assert!(again.contains("already withdrawn"), "{again}");

    let store = SqliteStore::open(&data).await.unwrap();
    let messages = store.control_messages_after(0).await.unwrap();
    store.close().await;
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0].kind,
        ControlKind::Withdrawal {
            participant_id: ben_c01,
            participant_code: "C01".into()
        }
    );
    let signing = signing_key(&key_file);
    for message in &messages {
        signing.verify_control(message).unwrap();
    }
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );

    // The export leaves out Ben's C01 and Ana's C02, and keeps Ana's C01.
    let out = dir.path().join("export");
    run(
        &data,
        &["export", "--key", key, "--out", out.to_str().unwrap()],
    );
    let csv = std::fs::read_to_string(out.join("records.csv")).unwrap();
    assert!(csv.contains("about Ana's C01"), "{csv}");
    assert!(!csv.contains("about Ben's C01"), "{csv}");
    assert!(!csv.contains("about Ana's C02"), "{csv}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("records.json")).unwrap()).unwrap();
    let kept: Vec<&str> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["revisions"][0]["participant"].as_str())
        .collect();
    assert!(kept.iter().all(|p| *p == ana_c01.to_string()), "{kept:?}");
    assert_eq!(kept.len(), 2);
}

#[test]
fn a_version_1_key_file_exports_but_cannot_sign_until_upgraded() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let old_key = dir.path().join("old.key");
    let cheap = attune_core::KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };
    let (bytes, public) = StudyKeyFile::create_version_1(PASSPHRASE, cheap).unwrap();
    std::fs::write(&old_key, bytes).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        store
            .set_study_public_key(&public.to_text(), Timestamp(0))
            .await
            .unwrap();
        store.close().await;
    });
    let old = old_key.to_str().unwrap();
    // Export still opens with it.
    let out = dir.path().join("export");
    run(
        &data,
        &["export", "--key", old, "--out", out.to_str().unwrap()],
    );
    // Signing commands say what to do.
    let error = run_failing(
        &data,
        &["enrol", "create", "--key", old, "--fieldworker", "Ana"],
    );
    assert!(
        error.contains("version 1") && error.contains("upgrade-key"),
        "{error}"
    );
    let error = run_failing(&data, &["withdraw", "--key", old, "--participant", "C01"]);
    assert!(
        error.contains("version 1") && error.contains("upgrade-key"),
        "{error}"
    );

    let new_key = dir.path().join("new.key");
    let upgraded = stdout(&run(
        &data,
        &[
            "study",
            "upgrade-key",
            "--key",
            old,
            "--key-out",
            new_key.to_str().unwrap(),
        ],
    ));
    assert!(upgraded.contains("enrol again"), "{upgraded}");
    let file = StudyKeyFile::read(&std::fs::read(&new_key).unwrap()).unwrap();
    assert_eq!(file.version, 2);
    assert_eq!(
        file.study_public_key().unwrap(),
        public,
        "the same study key"
    );
    let (_, fingerprint) = enrol_create(&data, &new_key, "Ana");
    assert_eq!(fingerprint, signing_key(&new_key).fingerprint());
    assert!(upgraded.contains(&fingerprint.to_string()));
    // Never twice.
    let error = run_failing(
        &data,
        &[
            "study",
            "upgrade-key",
            "--key",
            old,
            "--key-out",
            dir.path().join("x").to_str().unwrap(),
        ],
    );
    assert!(error.contains("already has a study signing key"), "{error}");
}

#[tokio::test]
async fn reserved_participant_codes_are_listed_with_their_tablet_and_fieldworker() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    assert!(stdout(&run(&data, &["codes"])).contains("No participant codes reserved yet"));

    let store = SqliteStore::open(&data).await.unwrap();
    let (device_id, _, _) = enrolled_device(&store).await;
    let want = |prefix: &str, want| attune_server::store::ReserveWant {
        prefix: prefix.into(),
        want,
        after: 0,
    };
    store
        .reserve_codes(
            &device_id.to_string(),
            &[want("C", 5), want("K", 12)],
            Timestamp(1_750_000_000_000),
        )
        .await
        .unwrap();
    store.close().await;

    let listed = stdout(&run(&data, &["codes"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        lines[1].starts_with("C01-C05\tTablet\tAna\t2025-"),
        "{listed}"
    );
    assert!(lines[2].starts_with("K01-K12\tTablet\tAna\t"), "{listed}");
}

/// A tablet's withdrawal request (its signed withdrawal record, with the request's record id)
/// is listed by `withdrawals` as pending with who and where, without the study key; the export
/// keeps the participant and lists the request as pending in its manifest. After `withdraw`
/// by participant id it is confirmed and the export leaves the participant out. A request with
/// a forged signature (put straight into the database) is listed apart and never counts.
#[tokio::test]
async fn withdrawals_lists_tablet_requests_as_pending_until_the_study_team_confirms_them() {
    use attune_core::fieldwork::withdrawal_request_record;
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = study_init(dir.path(), &data);
    let key = key_file.to_str().unwrap();
    let store = SqliteStore::open(&data).await.unwrap();
    let study =
        StudyPublicKey::from_text(&store.study_public_key().await.unwrap().unwrap()).unwrap();
    let (device_id, device_key, by) = enrolled_device_of(&store, "Ana").await;
    let mut ids = Vec::new();
    for code in ["C01", "C02"] {
        let id = ParticipantId::new(Timestamp(1));
        let links = Links {
            participant: Some(id),
            ..Links::default()
        };
        let record = Revision::first(
            RecordId::from_uuid(*id.as_uuid()),
            Kind::Participant,
            links.clone(),
            serde_json::json!({"code": code, "group": "carers"})
                .to_string()
                .into_bytes(),
            by,
        );
        let note = Revision::first(
            RecordId::new(Timestamp(1)),
            Kind::InterviewNote,
            links,
            format!("{{\"text\": \"about {code}\"}}").into_bytes(),
            by,
        );
        let envelopes: Vec<_> = [record, note]
            .iter()
            .map(|r| seal_envelope(r, Some(code.into()), &study, &device_key).unwrap())
            .collect();
        store
            .push(&device_id.to_string(), &envelopes, Timestamp(5))
            .await
            .unwrap();
        ids.push(id);
    }
    let request = |id: ParticipantId| {
        Revision::first(
            withdrawal_request_record(id),
            Kind::Withdrawal,
            Links {
                participant: Some(id),
                ..Links::default()
            },
            serde_json::json!({"participant": id, "keep_data": false, "at": 1})
                .to_string()
                .into_bytes(),
            by,
        )
    };
    let genuine = seal_envelope(&request(ids[0]), Some("C01".into()), &study, &device_key).unwrap();
    store
        .push(&device_id.to_string(), &[genuine], Timestamp(6))
        .await
        .unwrap();
    let forger = DeviceKey::generate().unwrap();
    let forged = seal_envelope(&request(ids[1]), Some("C02".into()), &study, &forger).unwrap();
    insert_raw(&store, "envelopes", &forged).await;
    store.close().await;

    let listed = run(&data, &["withdrawals"]);
    let out = stdout(&listed);
    let row = out
        .lines()
        .find(|line| line.contains(&ids[0].to_string()))
        .unwrap_or_else(|| panic!("C01's request listed: {out}"));
    for part in ["C01", &device_id.to_string(), "Ana", "pending"] {
        assert!(row.contains(part), "{part} in {row}");
    }
    assert!(out.contains("1 pending"), "{out}");
    assert!(!out.contains(&ids[1].to_string()), "{out}");
    let warning = String::from_utf8_lossy(&listed.stderr);
    assert!(warning.contains("do not verify"), "{warning}");
    assert!(warning.contains(&ids[1].to_string()), "{warning}");

    let export = |name: &str| {
        let out = dir.path().join(name);
        let output = run(
            &data,
            &["export", "--key", key, "--out", out.to_str().unwrap()],
        );
        let csv = std::fs::read_to_string(out.join("records.csv")).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        (
            csv,
            manifest,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (csv, manifest, warning) = export("before");
    assert!(csv.contains("about C01"), "pending: still exported");
    assert_eq!(manifest["pending_withdrawal_requests"], 1);
    let requests = manifest["withdrawal_requests"].as_array().unwrap();
    let c01 = requests
        .iter()
        .find(|r| r["participant_code"] == "C01")
        .unwrap();
    assert_eq!(c01["status"], "pending");
    assert_eq!(c01["participant_id"], ids[0].to_string());
    let c02 = requests
        .iter()
        .find(|r| r["participant_code"] == "C02")
        .unwrap();
    assert_eq!(c02["status"], "refused");
    assert!(
        warning.contains("1 withdrawal requests from tablets are pending"),
        "{warning}"
    );

    // Confirmed by the id `withdrawals` listed (the code is found from it).
    let error = run_failing(
        &data,
        &[
            "withdraw",
            "--key",
            key,
            "--participant-id",
            &ParticipantId::new(Timestamp(1)).to_string(),
        ],
    );
    assert!(
        error.contains("no participant record with the id"),
        "{error}"
    );
    let done = stdout(&run(
        &data,
        &[
            "withdraw",
            "--key",
            key,
            "--participant-id",
            &ids[0].to_string(),
        ],
    ));
    assert!(done.contains("Withdrawal of C01"), "{done}");
    assert!(done.contains("study instruction 1"), "{done}");
    let out = stdout(&run(&data, &["withdrawals"]));
    let row = out
        .lines()
        .find(|line| line.contains(&ids[0].to_string()))
        .unwrap();
    assert!(row.contains("confirmed"), "{row}");
    assert!(!out.contains("pending"), "{out}");
    let (csv, manifest, _) = export("after");
    assert!(!csv.contains("about C01"), "{csv}");
    assert!(csv.contains("about C02"), "{csv}");
    assert_eq!(manifest["pending_withdrawal_requests"], 0);
    let c01 = manifest["withdrawal_requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["participant_code"] == "C01")
        .unwrap();
    assert_eq!(c01["status"], "confirmed");
}

#[path = "support/authenticator.rs"]
mod authenticator;
#[path = "support/console.rs"]
mod console;

/// `team invite` prints a link whose token registers a passkey with the role over real HTTP,
/// valid for `--valid-hours`; `team list` then lists the member.
#[tokio::test]
async fn team_invite_prints_a_working_single_use_link_and_team_list_lists_the_member() {
    use attune_core::team::Role;
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().to_path_buf();
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(SqliteStore::open(&data).await.unwrap());
    let console = console::Console::serve(dir, store, |state| state).await;
    let printed = stdout(&run(
        &data,
        &[
            "team",
            "invite",
            "--role",
            "admin",
            "--name",
            "Ana",
            "--url",
            &format!("{}/", console.origin),
            "--valid-hours",
            "2",
        ],
    ));
    let link = printed
        .lines()
        .find_map(|line| line.strip_prefix("Invitation link:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no link in {printed}"));
    let token = link
        .strip_prefix(&format!("{}/console/#invite=", console.origin))
        .unwrap_or_else(|| panic!("{link}"));
    assert!(printed.contains("Ana (Study admin)"), "{printed}");
    let expires = printed
        .lines()
        .find_map(|line| line.strip_prefix("Expires:"))
        .map(str::trim)
        .unwrap();
    let in_two_hours =
        attune_core::Timestamp(attune_server::api::now().as_millis() + 2 * 3_600_000);
    assert_eq!(
        &expires[..13],
        &in_two_hours.to_rfc3339()[..13],
        "{printed}"
    );

    let client = authenticator::Client::honest(&console.origin);
    let mut passkey = authenticator::Authenticator::new(authenticator::Alg::Es256);
    let joined = console.register_with(&mut passkey, token, &client).await;
    assert_eq!(joined.status, reqwest::StatusCode::OK, "{}", joined.body);
    assert_eq!(joined.body["role"], Role::Admin.as_str());
    let twice = console
        .call(
            "POST",
            "/api/team/register/start",
            Some(serde_json::json!({"token": token, "name": "Eve"})),
            None,
        )
        .await;
    assert_eq!(twice.code(), "invitation_invalid");

    let listed = stdout(&run(&data, &["team", "list"]));
    assert!(listed.contains("admin"), "{listed}");
    assert!(listed.contains("Ana Researcher"), "{listed}");
    assert!(listed.contains("passkeys: 1"), "{listed}");
    let refused = run_failing(&data, &["team", "invite", "--role", "owner"]);
    assert!(refused.contains("admin, researcher or coder"), "{refused}");
}

/// Every file under `dir`, as (path relative to `dir`, bytes).
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_backup_made_while_devices_push_restores_whole_and_exports_the_same() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let key_file = study_init(dir.path(), &data);
    let store = SqliteStore::open(&data).await.unwrap();
    let study =
        StudyPublicKey::from_text(&store.study_public_key().await.unwrap().unwrap()).unwrap();
    let (device_id, device_key, by) = enrolled_device(&store).await;
    let participant = ParticipantId::new(Timestamp(1));
    let sealed = |i: i64| {
        let revision = Revision::first(
            RecordId::new(Timestamp(i)),
            Kind::InterviewNote,
            Links {
                participant: Some(participant),
                ..Links::default()
            },
            serde_json::json!({ "text": format!("note {i}") })
                .to_string()
                .into_bytes(),
            by,
        );
        seal_envelope(&revision, Some("C01".into()), &study, &device_key).unwrap()
    };
    let batch = |from: i64| (from..from + 20).map(sealed).collect::<Vec<_>>();
    store
        .push(&device_id.to_string(), &batch(1), Timestamp(5))
        .await
        .unwrap();
    // A complete attachment and an upload still arriving.
    let blobs = attune_server::blobs::BlobFolder::new(&data);
    let bytes = b"sealed recording bytes".to_vec();
    let sha = attune_core::hex::encode(&Sha256::digest(&bytes));
    blobs
        .append(&sha, bytes.len() as u64, 0, bytes.clone().into())
        .await
        .unwrap();
    let partial = b"half of another".to_vec();
    let partial_sha = attune_core::hex::encode(&Sha256::digest(b"half of another upload"));
    blobs
        .append(&partial_sha, 22, 0, partial.into())
        .await
        .unwrap();

    // Devices keep pushing while the backup is made.
    let before = store.envelopes().await.unwrap().len();
    let writer = {
        let device = device_id.to_string();
        let batches: Vec<_> = (1..=10).map(|n| batch(1000 * n)).collect();
        let data = data.clone();
        tokio::spawn(async move {
            let store = SqliteStore::open(&data).await.unwrap();
            for envelopes in batches {
                store.push(&device, &envelopes, Timestamp(6)).await.unwrap();
            }
            store.close().await;
        })
    };
    let file = dir.path().join("attune.tar");
    let data_for_backup = data.clone();
    let file_for_backup = file.clone();
    let printed = tokio::task::spawn_blocking(move || {
        stdout(&run(
            &data_for_backup,
            &["backup", "--out", file_for_backup.to_str().unwrap()],
        ))
    })
    .await
    .unwrap();
    writer.await.unwrap();
    assert!(printed.contains("1 attachments"), "{printed}");
    let after = store.envelopes().await.unwrap().len();
    store.close().await;

    // A second backup to the same file is refused; nothing is overwritten.
    let refused = run_failing(&data, &["backup", "--out", file.to_str().unwrap()]);
    assert!(refused.contains("already exists"), "{refused}");

    // Restored: the database as of one moment between the first and the last push, whole.
    let restored = dir.path().join("restored");
    run(&restored, &["restore", "--from", file.to_str().unwrap()]);
    let copy = SqliteStore::open(&restored).await.unwrap();
    let held = copy.envelopes().await.unwrap().len();
    copy.close().await;
    assert!(
        (before..=after).contains(&held),
        "{before} <= {held} <= {after}"
    );
    run(&restored, &["check"]);
    let blob = format!("blobs/{}/{sha}", &sha[..2]);
    assert_eq!(std::fs::read(restored.join(&blob)).unwrap(), bytes);
    assert!(
        !restored.join("uploads").exists(),
        "an upload still arriving is left out"
    );

    // Restoring over a study is refused; so is a damaged or altered file, leaving nothing.
    let over = run_failing(&restored, &["restore", "--from", file.to_str().unwrap()]);
    assert!(over.contains("already holds a study"), "{over}");
    let mut tampered = std::fs::read(&file).unwrap();
    let at = tampered
        .windows(bytes.len())
        .position(|w| w == bytes.as_slice())
        .unwrap();
    tampered[at] ^= 1;
    let tampered_file = dir.path().join("tampered.tar");
    std::fs::write(&tampered_file, &tampered).unwrap();
    let fresh = dir.path().join("fresh");
    let damaged = run_failing(
        &fresh,
        &["restore", "--from", tampered_file.to_str().unwrap()],
    );
    assert!(damaged.contains("does not match its SHA-256"), "{damaged}");
    assert!(!fresh.join("attune.db").exists() && !fresh.join("blobs").exists());
    let not_backup = dir.path().join("notes.txt");
    std::fs::write(&not_backup, "not a backup").unwrap();
    let refused = run_failing(&fresh, &["restore", "--from", not_backup.to_str().unwrap()]);
    assert!(
        refused.contains("is not an Attune backup file"),
        "{refused}"
    );

    // A quiet backup restores to a server that exports exactly the same.
    let quiet = dir.path().join("quiet.tar");
    run(&data, &["backup", "--out", quiet.to_str().unwrap()]);
    let again = dir.path().join("again");
    run(&again, &["restore", "--from", quiet.to_str().unwrap()]);
    let key = key_file.to_str().unwrap();
    let (out_a, out_b) = (dir.path().join("export-a"), dir.path().join("export-b"));
    run(
        &data,
        &["export", "--key", key, "--out", out_a.to_str().unwrap()],
    );
    run(
        &again,
        &["export", "--key", key, "--out", out_b.to_str().unwrap()],
    );
    let (a, b) = (files_of(&out_a), files_of(&out_b));
    assert_eq!(
        a.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        b.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // Every file is the same but those that carry the export's own time.
    let differing: Vec<&String> = a
        .iter()
        .zip(&b)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, _), _)| name)
        .collect();
    assert_eq!(differing, ["README.txt", "attune.qdpx", "manifest.json"]);
    assert!(a.iter().any(|(name, _)| name == "records.csv"));
}
