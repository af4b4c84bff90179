//! The REFI-QDA project (`attune.qdpx`) that NVivo, ATLAS.ti, MAXQDA and QualCoder import:
//! a zip of `project.qde` (QDA-XML 1.0, `urn:QDA-XML:project:1.0`) and `sources/`.
//!
//! - **Codes**: the note flags (quote, follow up, safeguarding concern, and "quote not
//!   agreed"), every question of every guide (under its guide), every activity prompt.
//! - **Text sources**: one per interview, laid out question by question (the question's words
//!   as a heading, then the note), each note's text coded with its question and its flags;
//!   one per child session with the activities' prompts and answers in words.
//! - **Audio sources**: an interview's recording (a `relative://` path under the export
//!   folder, the project's `basePath`), with the notes as a transcript synchronised at their
//!   times and as audio selections coded like the text.
//! - **Picture sources**: the children's drawings, inside the project.
//! - **Cases**: one per participant, with variables (group, status, visits, linked
//!   participants, each consent answer) and the sources that are theirs.
//!
//! Positions in text are counted in characters (Unicode scalar values) from 0, times in
//! milliseconds; every GUID is derived from the data ([`super::guid`]), so an export of the
//! same data is the same project.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::xml::Xml;
use super::{ExportError, ExportFile, Interview, Study, guid, zip};
use crate::fieldwork::NoteFlag;

const NAMESPACE: &str = "urn:QDA-XML:project:1.0";

/// A note's text in an interview's text: characters `start..end`.
struct Span {
    note: usize,
    start: usize,
    end: usize,
}

/// An interview laid out as plain text, and where each note is in it.
pub(crate) fn interview_text(
    study: &Study<'_>,
    interview: &Interview<'_>,
) -> (String, Vec<(usize, usize, usize)>) {
    let mut text = Text::default();
    text.line(&interview.title());
    let recording = interview
        .recording
        .and_then(|r| r.record.file.as_deref())
        .unwrap_or("none");
    let fieldworker = interview
        .notes
        .first()
        .map_or("", |n| n.record.fieldworker.as_str());
    text.line(&format!(
        "Fieldworker: {fieldworker}. Recording: {recording}."
    ));
    text.blank();
    let mut section: Option<&str> = None;
    let mut free_heading = false;
    let mut spans = Vec::new();
    for (index, note) in interview.notes.iter().enumerate() {
        match interview.place(&note.body) {
            Some(place) => {
                if section != Some(place.section.id.as_str()) {
                    text.line(&place.section.title);
                    text.blank();
                    section = Some(place.section.id.as_str());
                }
                text.line(&format!("{}. {}", place.number, place.question.text));
            }
            None if !free_heading => {
                text.line("Free notes");
                text.blank();
                free_heading = true;
            }
            None => {}
        }
        let start = text.chars;
        text.push(note.body.text.trim_end());
        spans.push((index, start, text.chars));
        text.push("\n");
        let marks = study.note_marks(note);
        if !marks.is_empty() {
            text.line(&marks);
        }
        text.blank();
    }
    (text.out, spans)
}

/// Plain text with its length in characters.
#[derive(Default)]
struct Text {
    out: String,
    chars: usize,
}

impl Text {
    fn push(&mut self, s: &str) {
        // One line ending throughout, so positions mean the same in every tool.
        let s = s.replace("\r\n", "\n").replace('\r', "\n");
        self.chars += s.chars().count();
        self.out.push_str(&s);
    }

    fn line(&mut self, s: &str) {
        self.push(s);
        self.push("\n");
    }

    fn blank(&mut self) {
        self.push("\n");
    }
}

/// The end of each timed note in a recording: the next timed note's start, else the end of
/// the recording, else 30 seconds on; never before its start.
pub(crate) fn note_times(interview: &Interview<'_>) -> Vec<Option<(u64, u64)>> {
    let mut starts: Vec<u64> = interview
        .notes
        .iter()
        .filter_map(|n| n.body.started_at_ms)
        .collect();
    starts.sort_unstable();
    let duration = interview.recording.and_then(|r| r.body.duration_ms);
    interview
        .notes
        .iter()
        .map(|n| {
            let start = n.body.started_at_ms?;
            let next = starts.iter().copied().find(|&s| s > start);
            let end = next
                .or(duration.filter(|&d| d > start))
                .unwrap_or(start + 30_000);
            Some((start, end.max(start + 1)))
        })
        .collect()
}

pub(crate) fn project(study: &Study<'_>) -> Result<ExportFile, ExportError> {
    let input = study.input;
    let created = input.exported_at.to_rfc3339();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut xml = Xml::new();
    let origin = format!("Attune {}", crate::VERSION);
    xml.open(
        "Project",
        &[
            ("xmlns", NAMESPACE),
            ("name", &study.protocol.title),
            ("origin", &origin),
            ("creationDateTime", &created),
            ("basePath", input.base_path),
        ],
    );

    // Users: the fieldworkers.
    let fieldworkers: BTreeSet<&str> = input
        .records
        .iter()
        .map(|r| r.fieldworker.as_str())
        .filter(|f| !f.is_empty())
        .collect();
    let user = |name: &str| guid(&["user", name]);
    if !fieldworkers.is_empty() {
        xml.open("Users", &[]);
        for name in &fieldworkers {
            xml.empty("User", &[("guid", &user(name)), ("name", name)]);
        }
        xml.close();
    }

    // Codes.
    let flag_code = |flag: NoteFlag| guid(&["code", "flag", flag.code()]);
    let not_agreed_code = guid(&["code", "flag", "quote_not_agreed"]);
    let question_code = |guide: &str, question: &str| guid(&["code", "question", guide, question]);
    let prompt_code = |activity: &str, prompt: &str| guid(&["code", "prompt", activity, prompt]);
    xml.open("CodeBook", &[]).open("Codes", &[]);
    xml.open(
        "Code",
        &[
            ("guid", &guid(&["code", "flags"])),
            ("name", "Flags"),
            ("isCodable", "false"),
        ],
    );
    for (flag, color) in NoteFlag::ALL
        .into_iter()
        .zip(["#1F6FB2", "#B26B00", "#C62828"])
    {
        xml.empty(
            "Code",
            &[
                ("guid", &flag_code(flag)),
                ("name", flag.label()),
                ("isCodable", "true"),
                ("color", color),
            ],
        );
    }
    xml.open(
        "Code",
        &[("guid", &not_agreed_code), ("name", "Not agreed for quotes"), ("isCodable", "true"), ("color", "#6B6B6B")],
    )
    .text(
        "Description",
        &[],
        "Flagged as a quote, but the participant's latest consent does not agree to direct quotes: do not quote.",
    )
    .close();
    xml.close();
    xml.open(
        "Code",
        &[
            ("guid", &guid(&["code", "questions"])),
            ("name", "Interview questions"),
            ("isCodable", "false"),
        ],
    );
    for guide in &study.protocol.interview_guides {
        xml.open(
            "Code",
            &[
                ("guid", &guid(&["code", "guide", &guide.id])),
                ("name", &guide.title),
                ("isCodable", "false"),
            ],
        );
        let mut number = 0;
        for section in &guide.sections {
            for question in &section.questions {
                number += 1;
                let name = format!("Q{number} {}", question.text);
                xml.open(
                    "Code",
                    &[
                        ("guid", &question_code(&guide.id, &question.id)),
                        ("name", &name),
                        ("isCodable", "true"),
                    ],
                )
                .text(
                    "Description",
                    &[],
                    &format!("{}: {}", section.title, question.text),
                )
                .close();
            }
        }
        xml.close();
    }
    xml.close();
    xml.open(
        "Code",
        &[
            ("guid", &guid(&["code", "activities"])),
            ("name", "Children's activities"),
            ("isCodable", "false"),
        ],
    );
    for activity in &study.protocol.activities {
        xml.open(
            "Code",
            &[
                ("guid", &guid(&["code", "activity", &activity.id])),
                ("name", &activity.title),
                ("isCodable", "false"),
            ],
        );
        for prompt in &activity.prompts {
            xml.empty(
                "Code",
                &[
                    ("guid", &prompt_code(&activity.id, &prompt.id)),
                    ("name", &prompt.text),
                    ("isCodable", "true"),
                ],
            );
        }
        xml.close();
    }
    xml.close();
    xml.close().close();

    // Variables for the cases.
    let consent_items: Vec<String> = {
        let mut seen = BTreeSet::new();
        let mut items = Vec::new();
        for form in &study.protocol.consent_forms {
            for item in &form.items {
                if seen.insert(item.id.clone()) {
                    items.push(item.id.clone());
                }
            }
        }
        for c in &study.consents {
            for id in c.body.answers.0.keys() {
                if seen.insert(id.clone()) {
                    items.push(id.clone());
                }
            }
        }
        items
    };
    let variable = |name: &str| guid(&["variable", name]);
    let mut variables: Vec<(String, &str)> = vec![
        ("Group".into(), "Text"),
        ("Status".into(), "Text"),
        ("Visits".into(), "Integer"),
        ("Linked participants".into(), "Text"),
    ];
    variables.extend(
        consent_items
            .iter()
            .map(|id| (format!("Consent: {id}"), "Boolean")),
    );
    xml.open("Variables", &[]);
    for (name, kind) in &variables {
        xml.empty(
            "Variable",
            &[
                ("guid", &variable(name)),
                ("name", name),
                ("typeOfVariable", kind),
            ],
        );
    }
    xml.close();

    // Sources, gathered first so each case can name its own.
    let mut sources = Xml::fragment(2);
    let mut owned: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for interview in study.interviews() {
        let (text, spans) = interview_text(study, &interview);
        let source = guid(&["interview", &interview.stem]);
        let creator = interview.notes.first().map(|n| user(&n.record.fieldworker));
        let creator = creator.as_deref().unwrap_or("");
        let mut attributes = vec![
            ("guid", source.clone()),
            ("name", interview.title()),
            ("plainTextPath", format!("internal://{source}.txt")),
            ("creationDateTime", created.clone()),
        ];
        if !creator.is_empty() && !fieldworkers.is_empty() {
            attributes.push(("creatingUser", creator.to_owned()));
        }
        let attributes: Vec<(&str, &str)> =
            attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sources.open("TextSource", &attributes);
        let spans: Vec<Span> = spans
            .into_iter()
            .map(|(note, start, end)| Span { note, start, end })
            .collect();
        for span in &spans {
            let note = interview.notes[span.note];
            let codes = note_codes(
                study,
                &interview,
                span.note,
                &flag_code,
                &not_agreed_code,
                &question_code,
            );
            let start = span.start.to_string();
            let end = span.end.to_string();
            let name = selection_name(&interview, span.note);
            let selection = guid(&["selection", &note.id()]);
            sources.open(
                "PlainTextSelection",
                &[
                    ("guid", &selection),
                    ("name", &name),
                    ("startPosition", &start),
                    ("endPosition", &end),
                ],
            );
            codings(&mut sources, &selection, &codes);
            sources.close();
        }
        sources.close();
        files.push((format!("sources/{source}.txt"), text.clone().into_bytes()));
        owned
            .entry(interview.participant_id.clone())
            .or_default()
            .push(source);

        if let Some(recording) = interview.recording {
            let Some(path) = recording.record.file.as_deref() else {
                continue;
            };
            let audio = guid(&["audio", &interview.stem]);
            let relative = format!("relative://{path}");
            let name = format!("{} (audio)", interview.title());
            sources.open(
                "AudioSource",
                &[
                    ("guid", &audio),
                    ("name", &name),
                    ("path", &relative),
                    ("creationDateTime", &created),
                ],
            );
            let times = note_times(&interview);
            let transcript = guid(&["transcript", &interview.stem]);
            sources.open(
                "Transcript",
                &[
                    ("guid", &transcript),
                    ("name", &format!("Notes: {}", interview.title())),
                ],
            );
            sources.text("PlainTextContent", &[], &text);
            let mut points = Vec::new();
            for span in &spans {
                if let Some((start_ms, end_ms)) = times[span.note] {
                    let note_id = interview.notes[span.note].id();
                    let from = guid(&["sync", &note_id, "from"]);
                    let to = guid(&["sync", &note_id, "to"]);
                    sources.empty(
                        "SyncPoint",
                        &[
                            ("guid", &from),
                            ("timeStamp", &start_ms.to_string()),
                            ("position", &span.start.to_string()),
                        ],
                    );
                    sources.empty(
                        "SyncPoint",
                        &[
                            ("guid", &to),
                            ("timeStamp", &end_ms.to_string()),
                            ("position", &span.end.to_string()),
                        ],
                    );
                    points.push((span.note, from, to, start_ms, end_ms));
                }
            }
            for (note, from, to, _, _) in &points {
                let codes = note_codes(
                    study,
                    &interview,
                    *note,
                    &flag_code,
                    &not_agreed_code,
                    &question_code,
                );
                let selection = guid(&["transcript-selection", &interview.notes[*note].id()]);
                sources.open(
                    "TranscriptSelection",
                    &[
                        ("guid", &selection),
                        ("name", &selection_name(&interview, *note)),
                        ("fromSyncPoint", from),
                        ("toSyncPoint", to),
                    ],
                );
                codings(&mut sources, &selection, &codes);
                sources.close();
            }
            sources.close();
            for (note, _, _, start_ms, end_ms) in &points {
                let codes = note_codes(
                    study,
                    &interview,
                    *note,
                    &flag_code,
                    &not_agreed_code,
                    &question_code,
                );
                let selection = guid(&["audio-selection", &interview.notes[*note].id()]);
                sources.open(
                    "AudioSelection",
                    &[
                        ("guid", &selection),
                        ("name", &selection_name(&interview, *note)),
                        ("begin", &start_ms.to_string()),
                        ("end", &end_ms.to_string()),
                    ],
                );
                codings(&mut sources, &selection, &codes);
                sources.close();
            }
            sources.close();
            owned
                .entry(interview.participant_id.clone())
                .or_default()
                .push(audio);
        }
    }

    // The children's sessions: one text source per child and visit; drawings as pictures.
    let mut sessions: BTreeMap<
        (String, String, String),
        Vec<&super::Item<'_, crate::fieldwork::ActivityResponseBody>>,
    > = BTreeMap::new();
    for r in &study.responses {
        sessions
            .entry((study.code_of(r), r.participant_id(), r.visit_id()))
            .or_default()
            .push(r);
    }
    for ((code, participant, visit), mut responses) in sessions {
        responses.sort_by_key(|r| {
            let activity = r
                .protocol
                .activities
                .iter()
                .position(|a| a.id == r.body.activity_id);
            let prompt = r
                .protocol
                .activity(&r.body.activity_id)
                .and_then(|a| a.prompts.iter().position(|p| p.id == r.body.prompt_id));
            (
                activity.unwrap_or(usize::MAX),
                prompt.unwrap_or(usize::MAX),
                r.body.time,
            )
        });
        let date = study
            .visit(&visit)
            .map(|v| v.body.date)
            .or_else(|| responses.iter().map(|r| r.body.time).min())
            .unwrap_or(crate::time::Timestamp(0));
        let title = format!("Children's activities: {code}, {}", date.date_utc());
        let source = guid(&["activities", &participant, &visit]);
        let mut text = Text::default();
        text.line(&title);
        text.blank();
        let mut current: Option<&str> = None;
        let mut selections = Vec::new();
        for r in &responses {
            let activity = r
                .protocol
                .activity(&r.body.activity_id)
                .or_else(|| study.protocol.activity(&r.body.activity_id));
            if current != Some(r.body.activity_id.as_str()) {
                text.line(activity.map_or(r.body.activity_id.as_str(), |a| a.title.as_str()));
                text.blank();
                current = Some(r.body.activity_id.as_str());
            }
            let prompt = activity
                .and_then(|a| a.prompts.iter().find(|p| p.id == r.body.prompt_id))
                .map_or(r.body.prompt_id.as_str(), |p| p.text.as_str());
            let start = text.chars;
            text.line(prompt);
            text.push(&format!("Answer: {}", r.body.answer_words(activity)));
            if let Some(notes) = r.body.notes.as_deref().filter(|n| !n.trim().is_empty()) {
                text.push(&format!("\nThe child said: {}", notes.trim_end()));
            }
            selections.push((r, start, text.chars));
            text.push("\n");
            text.blank();
        }
        sources.open(
            "TextSource",
            &[
                ("guid", &source),
                ("name", &title),
                ("plainTextPath", &format!("internal://{source}.txt")),
                ("creationDateTime", &created),
            ],
        );
        for (r, start, end) in &selections {
            let selection = guid(&["selection", &r.id()]);
            let code = prompt_code(&r.body.activity_id, &r.body.prompt_id);
            let known = study
                .protocol
                .activity(&r.body.activity_id)
                .is_some_and(|a| a.prompts.iter().any(|p| p.id == r.body.prompt_id));
            sources.open(
                "PlainTextSelection",
                &[
                    ("guid", &selection),
                    ("name", &r.body.prompt_id),
                    ("startPosition", &start.to_string()),
                    ("endPosition", &end.to_string()),
                ],
            );
            if known {
                codings(&mut sources, &selection, std::slice::from_ref(&code));
            }
            sources.close();
        }
        sources.close();
        files.push((format!("sources/{source}.txt"), text.out.into_bytes()));
        owned.entry(participant.clone()).or_default().push(source);

        for r in &responses {
            let Some(png) = r.body.answer.get("png").and_then(|p| p.as_str()) else {
                continue;
            };
            let Ok(bytes) = BASE64.decode(png) else {
                continue;
            };
            let picture = guid(&["picture", &r.id()]);
            let activity = r.protocol.activity(&r.body.activity_id);
            let prompt = activity
                .and_then(|a| a.prompts.iter().find(|p| p.id == r.body.prompt_id))
                .map_or(r.body.prompt_id.as_str(), |p| p.text.as_str());
            sources
                .open(
                    "PictureSource",
                    &[
                        ("guid", &picture),
                        (
                            "name",
                            &format!("Drawing: {code}, {}", r.body.time.date_utc()),
                        ),
                        ("path", &format!("internal://{picture}.png")),
                        ("creationDateTime", &created),
                    ],
                )
                .text("Description", &[], prompt)
                .close();
            files.push((format!("sources/{picture}.png"), bytes));
            owned.entry(participant.clone()).or_default().push(picture);
        }
    }

    // Cases.
    if !study.participants.is_empty() {
        xml.open("Cases", &[]);
        for p in &study.participants {
            let id = p.id();
            xml.open(
                "Case",
                &[("guid", &guid(&["case", &id])), ("name", &p.body.code)],
            );
            let group = study
                .protocol
                .group(&p.body.group)
                .map_or(p.body.group.as_str(), |g| g.name.as_str());
            xml.text("Description", &[], &format!("{} ({group})", p.body.code));
            let visits = study.visit_count(&id);
            let links = study.linked_codes(&p.body);
            let status = if p.body.is_active() {
                "Taking part"
            } else {
                "Withdrawn (data kept)"
            };
            let mut values: Vec<(String, &str, String)> = vec![
                ("Group".into(), "TextValue", group.to_owned()),
                ("Status".into(), "TextValue", status.to_owned()),
                ("Visits".into(), "IntegerValue", visits.to_string()),
                ("Linked participants".into(), "TextValue", links.join("; ")),
            ];
            if let Some((consent, _)) = study.latest_consent(&id) {
                for item in &consent_items {
                    if let Some(answer) = consent.body.answers.get(item) {
                        values.push((
                            format!("Consent: {item}"),
                            "BooleanValue",
                            answer.to_string(),
                        ));
                    }
                }
            }
            for (name, element, value) in &values {
                xml.open("VariableValue", &[])
                    .empty("VariableRef", &[("targetGUID", &variable(name))]);
                match *element {
                    "TextValue" => xml.text("TextValue", &[], value),
                    "IntegerValue" => xml.text("IntegerValue", &[], value),
                    _ => xml.text("BooleanValue", &[], value),
                };
                xml.close();
            }
            for source in owned.get(&id).into_iter().flatten() {
                xml.empty("SourceRef", &[("targetGUID", source)]);
            }
            xml.close();
        }
        xml.close();
    }
    if !sources.is_empty() {
        xml.open("Sources", &[]);
        xml.raw(&sources.finish());
        xml.close();
    }
    let mut entries = vec![("project.qde".to_owned(), xml.finish().into_bytes())];
    entries.extend(files);
    Ok(ExportFile {
        name: "attune.qdpx".into(),
        bytes: zip::zip(&entries)?,
    })
}

/// A `<Coding>` of `selection` at each of `codes`.
fn codings(xml: &mut Xml, selection: &str, codes: &[String]) {
    for code in codes {
        xml.open("Coding", &[("guid", &guid(&["coding", selection, code]))])
            .empty("CodeRef", &[("targetGUID", code)])
            .close();
    }
}

/// A selection's name: the question's number and words, or "Free note".
fn selection_name(interview: &Interview<'_>, note: usize) -> String {
    match interview.place(&interview.notes[note].body) {
        Some(place) => format!("Q{} {}", place.number, place.question.text),
        None => "Free note".to_owned(),
    }
}

/// The codes of a note: its question's, each flag's, and "not agreed for quotes".
fn note_codes(
    study: &Study<'_>,
    interview: &Interview<'_>,
    index: usize,
    flag_code: &dyn Fn(NoteFlag) -> String,
    not_agreed: &str,
    question_code: &dyn Fn(&str, &str) -> String,
) -> Vec<String> {
    let note = interview.notes[index];
    let mut codes = Vec::new();
    // Only questions the codebook holds (the newest protocol's guides).
    if let (Some(place), Some(guide)) = (
        interview.place(&note.body),
        study.protocol.guide(&interview.guide_id),
    ) && super::question_place(guide, &place.question.id).is_some()
    {
        codes.push(question_code(&interview.guide_id, &place.question.id));
    }
    codes.extend(
        NoteFlag::ALL
            .into_iter()
            .filter(|f| note.body.has_flag(*f))
            .map(flag_code),
    );
    if study.quote_not_agreed(note) {
        codes.push(not_agreed.to_owned());
    }
    codes
}
