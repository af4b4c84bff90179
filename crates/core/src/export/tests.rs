//! The export from a small study: a carer (C01) interviewed with a recording, their child
//! (K01) doing activities, a consent that refuses quotes.

use serde_json::json;

use super::*;
use crate::consent::ConsentAnswers;
use crate::fieldwork::{ConsentSignature, NoteFlag, ParticipantStatus};
use crate::ids::{BlobId, DeviceId, ParticipantId, ProfileId, RecordId, VisitId};
use crate::protocol::default_protocol;
use crate::record::{Authorship, Links};

pub(crate) struct Fixture {
    pub(crate) records: Vec<ExportRecord>,
    pub(crate) carer: ParticipantId,
}

fn id(n: u8) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[0] = 0x01;
    bytes[15] = n;
    bytes
}

pub(crate) fn fixture() -> Fixture {
    let protocol = default_protocol();
    let carer = ParticipantId::from_bytes(id(1));
    let child = ParticipantId::from_bytes(id(2));
    let visit = VisitId::from_bytes(id(3));
    let by = Authorship {
        device: DeviceId::from_bytes(id(200)),
        author: ProfileId::from_bytes(id(201)),
        time: Timestamp(1_764_511_509_000),
    };
    let mut records = Vec::new();
    let mut add = |n: u8,
                   kind: Kind,
                   participant: Option<ParticipantId>,
                   body: serde_json::Value,
                   file: Option<&str>| {
        let record_id = match kind {
            Kind::Participant => RecordId::from_bytes(*participant.unwrap().as_bytes()),
            Kind::Visit => RecordId::from_bytes(*visit.as_bytes()),
            _ => RecordId::from_bytes(id(n)),
        };
        let links = Links {
            participant,
            visit: (kind != Kind::Participant).then_some(visit),
            protocol: Some(protocol.reference()),
        };
        records.push(ExportRecord {
            revision: Revision::first(record_id, kind, links, body.to_string().into_bytes(), by),
            participant_code: None,
            device: "tablet-1".into(),
            fieldworker: "Sam Field".into(),
            verified: true,
            file: file.map(str::to_owned),
        });
    };
    add(
        0,
        Kind::Participant,
        Some(carer),
        json!({"code": "C01", "group": "carers"}),
        None,
    );
    add(
        0,
        Kind::Participant,
        Some(child),
        json!({"code": "K01", "group": "children", "links": [carer.to_string()]}),
        None,
    );
    add(
        0,
        Kind::Visit,
        None,
        json!({"date": 1_764_500_000_000_i64, "place_type": "home", "participants": [carer.to_string(), child.to_string()]}),
        None,
    );
    let form = protocol.consent_form("consent-carers").unwrap().clone();
    let mut answers = ConsentAnswers::new();
    for item in &form.items {
        answers.set(item.id.clone(), item.id != "quotes");
    }
    let consent = ConsentBody {
        form_id: form.id.clone(),
        form_version: form.version.clone(),
        answers,
        signature: ConsentSignature::VerbalWitnessed {
            reason: "=prefers not to write".into(),
        },
        form: Some(form),
    };
    add(
        10,
        Kind::Consent,
        Some(carer),
        serde_json::to_value(&consent).unwrap(),
        None,
    );
    let guide = protocol.guide("guide-carers").unwrap();
    let first = &guide.sections[0].questions[0];
    let later = &guide.sections[1].questions[1];
    // Written out of guide order: the export puts them back in order.
    add(
        11,
        Kind::InterviewNote,
        Some(carer),
        json!({"guide_id": guide.id, "question_id": later.id, "text": "Watching the film & <talking> helped",
               "flags": ["quote", "safeguarding"], "started_at_ms": 95_000, "updated": 1_764_500_900_000_i64}),
        None,
    );
    add(
        12,
        Kind::InterviewNote,
        Some(carer),
        json!({"guide_id": guide.id, "question_id": first.id, "text": "Nervous at first\nthen fine",
               "flags": ["follow_up"], "started_at_ms": 2_000, "updated": 1_764_500_100_000_i64}),
        None,
    );
    add(
        13,
        Kind::InterviewNote,
        Some(carer),
        json!({"guide_id": guide.id, "text": "-5 degrees outside, a free note", "updated": 1_764_501_000_000_i64}),
        None,
    );
    add(
        14,
        Kind::Attachment,
        Some(carer),
        json!({"blob": BlobId::from_bytes(id(99)).to_string(), "media_type": "audio/webm;codecs=opus",
               "bytes": 1000, "duration_ms": 180_000, "chunks": 1}),
        Some("attachments/C01-x/rec.webm"),
    );
    add(
        20,
        Kind::ActivityResponse,
        Some(child),
        json!({"activity_id": "feelings-faces", "prompt_id": "being-filmed", "answer": {"card": "happy"},
               "time": 1_764_502_000_000_i64, "notes": "liked the camera"}),
        None,
    );
    add(
        21,
        Kind::ActivityResponse,
        Some(child),
        json!({"activity_id": "card-sort", "prompt_id": "sort",
               "answer": {"placement": {"being-filmed": "good", "home-now": "not-good"}, "moves": [["being-filmed", "good"]]},
               "time": 1_764_502_100_000_i64}),
        None,
    );
    // A 1x1 PNG.
    add(
        22,
        Kind::ActivityResponse,
        Some(child),
        json!({"activity_id": "drawing", "prompt_id": "family-doing-something",
               "answer": {"strokes": [[1, 2]], "png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="},
               "time": 1_764_502_200_000_i64}),
        Some("drawings/K01-x/22.png"),
    );
    add(
        23,
        Kind::Assent,
        Some(child),
        json!({"answer": "yes", "time": 1_764_501_900_000_i64}),
        None,
    );
    add(
        24,
        Kind::Reflection,
        None,
        json!({"text": "Went well"}),
        None,
    );
    add(
        25,
        Kind::InterviewNote,
        Some(carer),
        json!({"not": "a note"}),
        None,
    );
    let _ = ParticipantStatus::Active;
    Fixture { records, carer }
}

pub(crate) fn export(fixture: &Fixture) -> Vec<ExportFile> {
    let protocols = [default_protocol()];
    analysis_files(&ExportInput {
        records: &fixture.records,
        protocols: &protocols,
        exported_at: Timestamp(1_764_600_000_000),
        base_path: "/data/export",
        withdrawn_participants: 1,
        formats: &Format::ALL,
    })
    .unwrap()
}

fn file<'a>(files: &'a [ExportFile], name: &str) -> &'a str {
    let f = files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    std::str::from_utf8(&f.bytes).unwrap()
}

#[test]
fn the_export_is_the_same_bytes_for_the_same_data_in_any_order() {
    let mut fixture = fixture();
    let files = export(&fixture);
    fixture.records.reverse();
    assert_eq!(files, export(&fixture));
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for expected in [
        "participants.csv",
        "consents.csv",
        "visits.csv",
        "interview_notes.csv",
        "activity_responses.csv",
        "card_choices.csv",
        "assents.csv",
        "reflections.csv",
        "codebook.csv",
        "README.txt",
        "load_attune.R",
        "load_attune.sps",
        "attune.qdpx",
        "interviews/C01-2025-11-30-1.docx",
        "elan/C01-2025-11-30-1.eaf",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
}

#[test]
fn only_the_formats_asked_for_are_made() {
    let fixture = fixture();
    let protocols = [default_protocol()];
    let files = analysis_files(&ExportInput {
        records: &fixture.records,
        protocols: &protocols,
        exported_at: Timestamp(1),
        base_path: "/data/export",
        withdrawn_participants: 0,
        formats: &[Format::Qdpx, Format::Elan],
    })
    .unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["attune.qdpx", "elan/C01-2025-11-30-1.eaf"]);
    assert_eq!(Format::parse(" DOCX"), Some(Format::Documents));
    assert_eq!(Format::parse("elan"), Some(Format::Elan));
    assert_eq!(Format::parse("pdf"), None);
}

#[test]
fn interview_notes_come_in_guide_order_with_question_words_flags_and_times() {
    let files = export(&fixture());
    let csv = file(&files, "interview_notes.csv");
    assert!(csv.starts_with("\u{FEFF}note_id,participant_id,participant_code,group,"));
    let guide = default_protocol().guide("guide-carers").unwrap();
    let first = &guide.sections[0].questions[0];
    let later = &guide.sections[1].questions[1];
    let lines: Vec<&str> = csv.lines().collect();
    // Header, the first question's note (two lines in one quoted field), the later one, the
    // free note.
    assert!(
        lines[1].contains(&first.text) && lines[1].contains("\"Nervous at first"),
        "{}",
        lines[1]
    );
    assert!(csv.find(&first.text).unwrap() < csv.find(&later.text).unwrap());
    let later_row = lines
        .iter()
        .find(|l| l.contains("Watching the film"))
        .unwrap();
    assert!(
        later_row.contains(",1,0,1,1,"),
        "quote, no follow-up, safeguarding, quote not agreed: {later_row}"
    );
    assert!(
        later_row.contains(
            ",95000,0:01:35,attachments/C01-x/rec.webm,interviews/C01-2025-11-30-1.docx,"
        )
    );
    assert!(
        csv.contains(",'-5 degrees outside, a free note")
            || csv.contains(",\"'-5 degrees outside, a free note\""),
        "neutralised"
    );
    assert!(
        csv.contains("2025-11-30T10:55:00.000+00:00"),
        "ISO times: {csv}"
    );
}

#[test]
fn the_codebook_names_every_column_of_every_csv() {
    let files = export(&fixture());
    let codebook = file(&files, "codebook.csv");
    for f in files
        .iter()
        .filter(|f| f.name.ends_with(".csv") && !f.name.contains('/'))
    {
        let text = std::str::from_utf8(&f.bytes)
            .unwrap()
            .trim_start_matches('\u{FEFF}');
        let header = text.lines().next().unwrap();
        for column in header.split(',') {
            assert!(
                codebook.contains(&format!("\n{},{column},", f.name)),
                "{} {column} is not in the codebook",
                f.name
            );
        }
    }
    assert!(codebook.contains("interview_notes.csv,quote_not_agreed,boolean,"));
    assert!(codebook.contains("carers = Carers"));
}

#[test]
fn consents_give_one_row_per_item_with_its_words_and_how_it_was_given() {
    let files = export(&fixture());
    let csv = file(&files, "consents.csv");
    let form = default_protocol().consent_form("consent-carers").unwrap();
    assert_eq!(csv.lines().count(), 1 + form.items.len());
    let quotes = csv.lines().find(|l| l.contains(",quotes,")).unwrap();
    assert!(
        quotes.contains(",no,") && quotes.contains(",verbal_witnessed,'=prefers not to write,"),
        "{quotes}"
    );
    let participants = file(&files, "participants.csv");
    let child = participants.lines().find(|l| l.contains(",K01,")).unwrap();
    assert!(child.contains(",children,Children,active,C01,"), "{child}");
}

#[test]
fn children_s_answers_are_in_codes_and_words_and_each_card_is_a_row() {
    let files = export(&fixture());
    let csv = file(&files, "activity_responses.csv");
    let face = csv.lines().find(|l| l.contains(",being-filmed,")).unwrap();
    assert!(
        face.contains(",answered,happy,Happy,") && face.contains(",liked the camera,"),
        "{face}"
    );
    let drawing = csv.lines().find(|l| l.contains(",drawing,")).unwrap();
    assert!(drawing.contains(",drawings/K01-x/22.png,"), "{drawing}");
    let cards = file(&files, "card_choices.csv");
    assert_eq!(
        cards.lines().count(),
        1 + 1 + 2,
        "header, one face, two sorted cards"
    );
    assert!(cards.contains(",home-now,") && cards.contains(",not-good\r\n"));
}

#[test]
fn a_record_that_cannot_be_read_is_named_in_the_readme() {
    let files = export(&fixture());
    let readme = file(&files, "README.txt");
    assert!(readme.contains("RECORDS NOT IN THE TABLES"), "{readme}");
    assert!(readme.contains("1 withdrawn"));
    assert!(readme.contains("interview_notes.csv (3 rows)"));
}

#[test]
fn the_project_holds_the_interview_text_coded_by_question_and_flag() {
    let fixture = fixture();
    let files = export(&fixture);
    let qdpx = files.iter().find(|f| f.name == "attune.qdpx").unwrap();
    let entries = zip::unzip(&qdpx.bytes).unwrap();
    let qde = std::str::from_utf8(&entries[0].1).unwrap();
    assert_eq!(entries[0].0, "project.qde");
    assert!(qde.contains("<Project xmlns=\"urn:QDA-XML:project:1.0\""));
    // The interview text file, with the note's range.
    let text_entry = entries
        .iter()
        .find(|(name, bytes)| {
            name.ends_with(".txt") && std::str::from_utf8(bytes).unwrap().contains("Nervous")
        })
        .unwrap();
    let text = std::str::from_utf8(&text_entry.1).unwrap();
    let guide = default_protocol().guide("guide-carers").unwrap();
    assert!(
        text.contains(&format!(
            "1. {}\nNervous at first\nthen fine\n[Follow up]",
            guide.sections[0].questions[0].text
        )),
        "{text}"
    );
    let start = text.chars().collect::<String>().find("Watching").unwrap();
    let start_chars = text[..start].chars().count();
    let end_chars = start_chars + "Watching the film & <talking> helped".chars().count();
    assert!(
        qde.contains(&format!(
            "startPosition=\"{start_chars}\" endPosition=\"{end_chars}\""
        )),
        "{qde}"
    );
    let safeguarding = guid(&["code", "flag", NoteFlag::Safeguarding.code()]);
    assert!(qde.contains(&format!("<CodeRef targetGUID=\"{safeguarding}\"/>")));
    assert!(qde.contains("path=\"relative:///attachments/C01-x/rec.webm\""));
    assert!(qde.contains("currentPath=\"absolute:///data/export/attachments/C01-x/rec.webm\""));
    assert!(
        qde.contains("<AudioSelection") && qde.contains("begin=\"95000\" end=\"180000\""),
        "ends with the recording"
    );
    assert!(qde.contains("<Case guid=") && qde.contains("name=\"C01\""));
    assert!(qde.contains(&format!(
        "guid=\"{}\"",
        guid(&["case", &fixture.carer.to_string()])
    )));
    assert!(
        entries
            .iter()
            .any(|(name, bytes)| name.ends_with(".png") && bytes.starts_with(b"\x89PNG"))
    );
}

#[test]
fn the_elan_file_aligns_each_note_on_its_question_tier() {
    let files = export(&fixture());
    let eaf = file(&files, "elan/C01-2025-11-30-1.eaf");
    assert!(eaf.contains("MEDIA_URL=\"file:///data/export/attachments/C01-x/rec.webm\""));
    assert!(eaf.contains("RELATIVE_MEDIA_URL=\"../attachments/C01-x/rec.webm\""));
    assert!(eaf.contains("MIME_TYPE=\"audio/webm\""));
    assert!(eaf.contains("TIME_VALUE=\"2000\"") && eaf.contains("TIME_VALUE=\"95000\""));
    assert!(eaf.contains("TIER_ID=\"Flags\""));
    assert!(
        !eaf.contains("a free note"),
        "untimed notes are not in the ELAN file"
    );
}

#[test]
fn the_docx_has_the_questions_as_headings() {
    let files = export(&fixture());
    let docx = files.iter().find(|f| f.name.ends_with(".docx")).unwrap();
    let entries = zip::unzip(&docx.bytes).unwrap();
    let document = entries
        .iter()
        .find(|(n, _)| n == "word/document.xml")
        .unwrap();
    let document = std::str::from_utf8(&document.1).unwrap();
    assert!(
        document
            .contains("<w:pStyle w:val=\"Heading2\"/></w:pPr><w:r><w:t xml:space=\"preserve\">1. ")
    );
    assert!(document.contains("Watching the film &amp; &lt;talking&gt; helped"));
    assert!(document.contains("[Quote] [Safeguarding concern] [Not agreed for quotes]"));
}

/// The workspace's root (two up from this crate).
fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A test tool, or a failure saying how to get it (never a skip).
fn tool(env: &str, default: std::path::PathBuf) -> std::path::PathBuf {
    let path = std::env::var_os(env).map_or(default, std::path::PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (or set {env})",
        path.display()
    );
    path
}

fn run(command: &mut std::process::Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Writes the fixture's export into a fresh folder.
fn write_export(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("attune-export-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for f in export(&fixture()) {
        let path = dir.join(&f.name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &f.bytes).unwrap();
    }
    dir
}

#[test]
fn the_files_open_in_the_researchers_tools() {
    let dir = write_export("tools");
    let python = tool(
        "ATTUNE_PYTHON",
        workspace().join("target/test-tools/python/bin/python"),
    );
    let xsd = tool(
        "ATTUNE_REFI_QDA_XSD",
        workspace().join("../shared/standards/refi-qda/Project.xsd"),
    );
    let checked = run(std::process::Command::new(python)
        .arg(workspace().join("tests/tools/check_export.py"))
        .arg(&dir)
        .arg(xsd));
    let found: serde_json::Value = serde_json::from_str(&checked).unwrap();
    let guide = default_protocol().guide("guide-carers").unwrap();
    let later = &guide.sections[1].questions[1];

    // REFI-QDA: valid against Project.xsd (the checker fails otherwise); the interview's
    // text with the note coded by its question and flags.
    let qdpx = &found["qdpx"];
    assert_eq!(qdpx["valid"], true);
    let interview = qdpx["texts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["text"].as_str().unwrap().contains("Nervous"))
        .unwrap();
    assert!(interview["text"].as_str().unwrap().contains(&later.text));
    let selection = interview["selections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["text"] == "Watching the film & <talking> helped")
        .expect("the note's range selects exactly its text");
    let codes: Vec<&str> = selection["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            format!("Q4 {}", later.text).as_str(),
            "Quote",
            "Safeguarding concern",
            "Not agreed for quotes"
        ]
    );
    let carer = qdpx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "C01")
        .unwrap();
    assert_eq!(carer["variables"]["Group"], "Carers");
    assert_eq!(carer["variables"]["Consent: quotes"], "false");
    assert_eq!(carer["variables"]["Visits"], "1");
    assert_eq!(carer["sources"], 2, "the interview's text and audio");
    let audio = &qdpx["audio"][0];
    assert_eq!(audio["path"], "relative:///attachments/C01-x/rec.webm");
    assert_eq!(audio["selections"].as_array().unwrap().len(), 2);
    assert_eq!(audio["sync_points"], 4);
    assert_eq!(qdpx["pictures"].as_array().unwrap().len(), 1);

    // Word: the questions are Heading 2 paragraphs, the notes under them.
    let docx = found["docx"]["C01-2025-11-30-1.docx"].as_array().unwrap();
    let heading = docx
        .iter()
        .position(|p| p["style"] == "Heading 2" && p["text"] == format!("4. {}", later.text))
        .unwrap();
    assert!(
        docx[heading + 1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Watching the film")
    );
    assert_eq!(docx[0]["style"], "Title");

    // ELAN: the note on its question's tier from its start to the next note's... here the
    // end of the recording.
    let eaf = &found["eaf"]["C01-2025-11-30-1.eaf"];
    let tier = &eaf["tiers"][format!("Q4 {}", later.text)];
    assert_eq!(
        tier[0],
        serde_json::json!([95000, 180000, "Watching the film & <talking> helped"])
    );
    let first = &eaf["tiers"][format!("Q1 {}", guide.sections[0].questions[0].text)];
    assert_eq!(
        first[0],
        serde_json::json!([2000, 95000, "Nervous at first\nthen fine"])
    );
    assert_eq!(eaf["tiers"]["Flags"][0][2], "Follow up");
    assert_eq!(
        eaf["media"][0]["RELATIVE_MEDIA_URL"],
        "../attachments/C01-x/rec.webm"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn r_and_spss_load_the_csvs_with_their_types_and_labels() {
    let dir = write_export("r-spss");
    let rscript = tool("ATTUNE_RSCRIPT", "/usr/bin/Rscript".into());
    let r = run(std::process::Command::new(rscript).current_dir(&dir).args([
        "-e",
        r#"source("load_attune.R", chdir = TRUE)
           for (name in c("participants", "consents", "visits", "interview_notes", "activity_responses", "card_choices", "assents", "reflections")) {
             d <- get(name)
             cat(name, nrow(d), "\n")
             for (col in names(d)) cat(" ", col, class(d[[col]])[1], "\n")
           }
           cat("group-label", as.character(interview_notes$group[1]), "\n")
           cat("free-note", interview_notes$note_text[3], "\n")
           cat("visit-date", format(visits$visit_date[1], "%Y-%m-%d %H:%M:%S %Z"), "\n")
           cat("status", as.character(activity_responses$status[1]), "\n")"#,
    ]));
    for expected in [
        "interview_notes 3",
        "  quote logical",
        "  offset_ms integer",
        "  updated_at POSIXct",
        "  group factor",
        "  note_text character",
        "consents 11",
        "card_choices 3",
        "group-label Carers",
        "free-note -5 degrees outside, a free note",
        "visit-date 2025-11-30 10:53:20 UTC",
        "status Answered",
    ] {
        assert!(
            r.contains(&format!("{expected} \n")) || r.contains(&format!("{expected}\n")),
            "{expected:?} in\n{r}"
        );
    }

    let pspp = tool("ATTUNE_PSPP", "/usr/bin/pspp".into());
    let syntax = std::fs::read_to_string(dir.join("load_attune.sps")).unwrap();
    let check = format!(
        "{syntax}\nDATASET ACTIVATE interview_notes.\nLIST /VARIABLES=participant_code question_number quote updated_at.\nDISPLAY DICTIONARY /VARIABLES=quote updated_at group.\n"
    );
    std::fs::write(dir.join("check.sps"), check).unwrap();
    let listed = run(std::process::Command::new(pspp).current_dir(&dir).args([
        "-O",
        "format=txt",
        "-o",
        "-",
        "check.sps",
    ]));
    assert!(
        !listed.contains("error:") && !listed.contains("warning:"),
        "{listed}"
    );
    assert!(
        listed.contains("30-NOV-2025 10:55:00"),
        "a date-time in SPSS: {listed}"
    );
    assert!(listed.contains("Carers"), "value labels: {listed}");
    std::fs::remove_dir_all(&dir).unwrap();
}
