//! The administration commands through the real binary: `study init`, `enrol create`,
//! `device list`/`revoke`, `withdraw` and `export`.

use std::path::Path;
use std::process::{Command, Output};

use attune_core::{
    Authorship, DeviceId, DeviceKey, Kind, Links, ProfileId, RecordId, Revision, StudyPublicKey,
    Timestamp, seal_envelope,
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
    let device_id = DeviceId::new(Timestamp(1));
    let device_key = DeviceKey::generate().unwrap();
    store
        .create_enrolment_code("h", "Ana", Timestamp(i64::MAX), Timestamp(0))
        .await
        .unwrap();
    store
        .enrol_device(
            "h",
            NewDevice {
                id: device_id.to_string(),
                name: "Tablet".into(),
                public_key: device_key.public_key().to_text(),
                token_hash: "t".into(),
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

    let code = stdout(&run(&data, &["enrol", "create", "--fieldworker", "Ana"]));
    assert_eq!(code.trim().len(), 14, "XXXX-XXXX-XXXX: {code:?}");

    // A device pushes: two revisions for VIG-001, one for VIG-002 (who then withdraws).
    let store = SqliteStore::open(&data).await.unwrap();
    let study =
        StudyPublicKey::from_text(&store.study_public_key().await.unwrap().unwrap()).unwrap();
    let (device_id, device_key, by) = enrolled_device(&store).await;
    let note = |text: &str| serde_json::json!({ "text": text }).to_string().into_bytes();
    let first = Revision::first(
        RecordId::new(Timestamp(1)),
        Kind::InterviewNote,
        Links::default(),
        note("she likes the garden"),
        by,
    );
    let second = first
        .next(note("she likes the garden, \"very much\""), by)
        .unwrap();
    let withdrawn = Revision::first(
        RecordId::new(Timestamp(2)),
        Kind::InterviewNote,
        Links::default(),
        note("withdrawn words"),
        by,
    );
    // A child's drawing: the picture travels as base64 PNG inside the response.
    let picture = b"\x89PNG\r\n\x1a\n a child's house".to_vec();
    let drawing = Revision::first(
        RecordId::new(Timestamp(3)),
        Kind::ActivityResponse,
        Links::default(),
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
    run(&data, &["withdraw", "--participant", "VIG-002"]);
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
        "record_id,rev,kind,participant_code,time,body,attachment"
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
    let drawing_file = format!("drawings/VIG-001/{}.png", drawing.record_id);
    assert_eq!(std::fs::read(out.join(&drawing_file)).unwrap(), picture);
    assert!(
        lines[2].ends_with(&format!("\"{drawing_file}\"")),
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
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
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
fn a_revoked_device_is_listed_with_its_reason() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        store
            .create_enrolment_code("h", "Ben", Timestamp(i64::MAX), Timestamp(0))
            .await
            .unwrap();
        store
            .enrol_device(
                "h",
                NewDevice {
                    id: "device-1".into(),
                    name: "Tablet".into(),
                    public_key: "pk".into(),
                    token_hash: "t".into(),
                },
                Timestamp(0),
            )
            .await
            .unwrap();
        store.close().await;
    });
    run(
        &data,
        &[
            "device",
            "revoke",
            "device-1",
            "--reason",
            "lost on the bus",
        ],
    );
    let list = stdout(&run(&data, &["device", "list"]));
    assert!(list.contains("revoked: lost on the bus"), "{list}");
}

/// Runs a command expected to fail; its stderr.
fn run_failing(data: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_attune-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
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
    run(&data, &["protocol", "list"]);
    assert!(stdout(&run(&data, &["protocol", "list"])).contains("No protocol published"));

    // A bad file: refused with the path of the field, nothing published.
    let bad = protocol_file(dir.path(), 2, |v| v["groups"][1]["target"] = 0.into());
    let error = run_failing(&data, &["protocol", "publish", &bad]);
    assert!(error.contains("groups[1].target"), "{error}");
    assert!(error.contains("nothing was published"), "{error}");
    let typo = protocol_file(dir.path(), 2, |v| {
        v["safeguarding"]["stpes"] = serde_json::json!([]);
    });
    let error = run_failing(&data, &["protocol", "publish", &typo]);
    assert!(error.contains("safeguarding.stpes"), "{error}");

    // The version the app has built in is not an update.
    let built_in = protocol_file(dir.path(), 1, |_| {});
    let error = run_failing(&data, &["protocol", "publish", &built_in]);
    assert!(error.contains("built in"), "{error}");

    let v3 = protocol_file(dir.path(), 3, |_| {});
    let published = stdout(&run(&data, &["protocol", "publish", &v3]));
    assert!(published.contains("version 3 published"), "{published}");
    // An older (or the same) version after it is refused.
    let v2 = protocol_file(dir.path(), 2, |_| {});
    let error = run_failing(&data, &["protocol", "publish", &v2]);
    assert!(error.contains("version 3 was already published"), "{error}");

    let listed = stdout(&run(&data, &["protocol", "list"]));
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert!(rows[0].starts_with("vig-evaluation\t3\t"), "{listed}");

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
