//! The tidy CSVs (one row per observation, codes and words side by side, ISO 8601 times in
//! UTC), the codebook and README that name every column, and the R and SPSS scripts that load
//! them with their types and value labels. One description of each table ([`Table`]) makes
//! all of them, so they cannot disagree.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{ExportFile, Interview, Item, Study, clock};
use crate::fieldwork::{
    ActivityResponseBody, AssentAnswer, ConsentSignature, NoteFlag, ParticipantStatus,
    ResponseStatus, SORT_COLUMNS, card_label,
};
use crate::protocol::ConsentRole;
use crate::time::Timestamp;

/// A column's type, which the R and SPSS scripts read it as.
#[derive(Clone, Debug)]
pub(crate) enum Type {
    /// Free text.
    Text,
    /// A whole number.
    Integer,
    /// `1` (yes) or `0` (no).
    Boolean,
    /// A time, ISO 8601 in UTC, e.g. `2026-11-30T14:05:09.123+00:00`.
    DateTime,
    /// One of a set of codes, each with its words: a factor in R, value labels in SPSS.
    Code(Vec<(String, String)>),
}

impl Type {
    fn name(&self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Integer => "integer",
            Type::Boolean => "boolean",
            Type::DateTime => "date-time",
            Type::Code(_) => "code",
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, Type::Text | Type::Code(_))
    }
}

pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) ty: Type,
    pub(crate) about: &'static str,
}

pub(crate) struct Table {
    pub(crate) file: &'static str,
    /// The R data frame and SPSS dataset name.
    pub(crate) name: &'static str,
    pub(crate) about: &'static str,
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    fn new(file: &'static str, name: &'static str, about: &'static str) -> Self {
        Table {
            file,
            name,
            about,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn column(&mut self, name: &'static str, ty: Type, about: &'static str) -> &mut Self {
        self.columns.push(Column { name, ty, about });
        self
    }

    fn text(&mut self, name: &'static str, about: &'static str) -> &mut Self {
        self.column(name, Type::Text, about)
    }

    fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "{}", self.file);
        self.rows.push(cells);
    }

    /// The CSV: UTF-8 with a byte order mark (so spreadsheets read it as UTF-8), a header
    /// row, fields quoted where needed, and text that a spreadsheet would run as a formula
    /// neutralised ([`neutralise`]).
    pub(crate) fn csv(&self) -> Vec<u8> {
        self.csv_with(|cell| cell.to_owned())
    }

    /// The CSV for SPSS and PSPP, whose readers end a case at every line break even inside
    /// quotes: the same, with line breaks inside a cell made spaces.
    pub(crate) fn spss_csv(&self) -> Vec<u8> {
        self.csv_with(one_line)
    }

    fn csv_with(&self, cell_text: impl Fn(&str) -> String) -> Vec<u8> {
        let mut out = String::from("\u{FEFF}");
        let header: Vec<String> = self.columns.iter().map(|c| quote(c.name)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&self.columns)
                .map(|(cell, column)| {
                    let cell = cell_text(cell);
                    if column.ty.is_text() {
                        quote(&neutralise(&cell))
                    } else {
                        quote(&cell)
                    }
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out.into_bytes()
    }
}

/// `cell` on one line: each line break (CR LF, CR or LF) a space.
fn one_line(cell: &str) -> String {
    cell.replace("\r\n", " ").replace(['\r', '\n'], " ")
}

/// A text cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`,
/// a tab or a carriage return) gets a leading `'`; so does one that starts with `'`, so the
/// change can always be undone (the R and SPSS scripts remove one leading `'`).
pub(crate) fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote, line break or edge space.
fn quote(cell: &str) -> String {
    let needs =
        cell.contains([',', '"', '\n', '\r']) || cell.starts_with(' ') || cell.ends_with(' ');
    if needs {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

fn yes(value: bool) -> String {
    if value { "1" } else { "0" }.to_owned()
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

fn opt_time(t: Option<Timestamp>) -> String {
    t.map(time).unwrap_or_default()
}

fn codes(pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>) -> Type {
    Type::Code(
        pairs
            .into_iter()
            .map(|(code, label)| (code.into(), label.into()))
            .collect(),
    )
}

/// The columns every table ends with: who recorded the row and whether it verified.
fn provenance(table: &mut Table) {
    table
        .text(
            "fieldworker",
            "The fieldworker whose device recorded the row's latest revision.",
        )
        .text("device", "The device (tablet) that recorded it.")
        .column(
            "verified",
            Type::Boolean,
            "Every revision of the record verified (signature, chain, owner); 0: later \
             revisions failed and were left out (see manifest.json, problems).",
        );
}

fn provenance_cells<T>(item: &Item<'_, T>) -> [String; 3] {
    [
        item.record.fieldworker.clone(),
        item.record.device.clone(),
        yes(item.record.verified),
    ]
}

pub(crate) fn files(study: &Study<'_>) -> Vec<ExportFile> {
    let interviews = study.interviews();
    let tables = vec![
        participants(study),
        consents(study),
        visits(study),
        interview_notes(study, &interviews),
        activity_responses(study),
        card_choices(study),
        assents(study),
        reflections(study),
    ];
    let mut files: Vec<ExportFile> = tables
        .iter()
        .map(|t| ExportFile {
            name: t.file.to_owned(),
            bytes: t.csv(),
        })
        .collect();
    files.push(ExportFile {
        name: "codebook.csv".into(),
        bytes: codebook(&tables).csv(),
    });
    files.push(ExportFile {
        name: "README.txt".into(),
        bytes: readme(study, &tables).into_bytes(),
    });
    files.push(ExportFile {
        name: "load_attune.R".into(),
        bytes: r_script(&tables).into_bytes(),
    });
    files.push(ExportFile {
        name: "load_attune.sps".into(),
        bytes: spss_syntax(&tables).into_bytes(),
    });
    files.extend(tables.iter().map(|t| ExportFile {
        name: format!("spss/{}", t.file),
        bytes: t.spss_csv(),
    }));
    files
}

fn group_codes(study: &Study<'_>) -> Type {
    codes(
        study
            .protocol
            .groups
            .iter()
            .map(|g| (g.id.as_str(), g.name.as_str())),
    )
}

fn group_name(study: &Study<'_>, id: &str) -> String {
    study
        .protocol
        .group(id)
        .map_or_else(|| id.to_owned(), |g| g.name.clone())
}

fn participants(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "participants.csv",
        "participants",
        "One row per participant: their code, group and status, their latest consent, and \
         how much was recorded with them.",
    );
    t.text(
        "participant_id",
        "The participant's id (the same in every file).",
    )
    .text("participant_code", "The pseudonymous code, e.g. C07.")
    .column("group", group_codes(study), "The participant group.")
    .text("group_name", "The group in words.")
    .column(
        "status",
        codes([
            ("active", "Taking part"),
            ("withdrawn", "Withdrew (data kept)"),
        ]),
        "Whether the participant is still taking part.",
    )
    .text(
        "linked_codes",
        "Linked participants (a child's carer, a professional's manager), separated by \"; \".",
    )
    .text(
        "consent_form_version",
        "The version of the form of their latest consent.",
    )
    .column(
        "consent_given_at",
        Type::DateTime,
        "When their latest consent was recorded.",
    )
    .column(
        "consent_allows_taking_part",
        Type::Boolean,
        "Their latest consent agrees to every required item (empty: no consent recorded, \
             or the form is unknown).",
    )
    .column("visits", Type::Integer, "Visits they were present at.")
    .column(
        "interview_notes",
        Type::Integer,
        "Interview notes recorded with them.",
    )
    .column(
        "activity_responses",
        Type::Integer,
        "Activity prompts they answered, skipped or stopped at.",
    )
    .column(
        "recorded_at",
        Type::DateTime,
        "When the participant record was last changed.",
    );
    provenance(&mut t);
    for p in &study.participants {
        let id = p.id();
        let links = study.linked_codes(&p.body);
        let consent = study.latest_consent(&id);
        let status = match p.body.status {
            ParticipantStatus::Active => "active",
            ParticipantStatus::Withdrawn => "withdrawn",
        };
        let count = |n: usize| n.to_string();
        let visits = study.visit_count(&id);
        let mut row = vec![
            id.clone(),
            p.body.code.clone(),
            p.body.group.clone(),
            group_name(study, &p.body.group),
            status.to_owned(),
            links.join("; "),
            consent
                .map(|(c, _)| c.body.form_version.clone())
                .unwrap_or_default(),
            opt_time(consent.map(|(c, _)| c.revision().time)),
            match consent {
                Some((_, Ok(outcome))) => yes(outcome.may_proceed),
                _ => String::new(),
            },
            count(visits),
            count(
                study
                    .notes
                    .iter()
                    .filter(|n| n.participant_id() == id)
                    .count(),
            ),
            count(
                study
                    .responses
                    .iter()
                    .filter(|r| r.participant_id() == id)
                    .count(),
            ),
            time(p.revision().time),
        ];
        row.extend(provenance_cells(p));
        t.row(row);
    }
    t
}

fn role_codes() -> Type {
    codes(
        [
            ConsentRole::Plain,
            ConsentRole::AudioRecording,
            ConsentRole::ChildInvitation,
            ConsentRole::PracticeRecordings,
            ConsentRole::FutureUse,
            ConsentRole::Quotes,
            ConsentRole::Filming,
        ]
        .map(|role| {
            let words = match role {
                ConsentRole::Plain => "Recorded only",
                ConsentRole::AudioRecording => "Allows audio recording",
                ConsentRole::ChildInvitation => "Allows inviting their child",
                ConsentRole::PracticeRecordings => "Shares practice recordings for coding",
                ConsentRole::FutureUse => "Allows future use of anonymised data",
                ConsentRole::Quotes => "Allows anonymised direct quotes",
                ConsentRole::Filming => "Allows filming and coding of VIG practice",
            };
            (role.as_str(), words)
        }),
    )
}

fn consents(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "consents.csv",
        "consents",
        "One row per consent and item: every answer of every consent recorded, read \
         against the form exactly as it was shown.",
    );
    t.text(
        "consent_id",
        "The consent record's id (one consent: one id, several rows).",
    )
    .text("participant_id", "The participant's id.")
    .text("participant_code", "The participant's code.")
    .text("form_id", "The consent form's id.")
    .text(
        "form_title",
        "The form's title (empty when the form is unknown).",
    )
    .text(
        "form_version",
        "The form's version as shown to the participant.",
    )
    .column(
        "latest",
        Type::Boolean,
        "This is the participant's latest consent (the one that counts).",
    )
    .column(
        "item_number",
        Type::Integer,
        "The item's place on the form, from 1.",
    )
    .text("item_id", "The item's id.")
    .text(
        "item_text",
        "The statement the participant agreed to or not.",
    )
    .column(
        "item_role",
        role_codes(),
        "What the item's answer allows in the study.",
    )
    .column(
        "item_required",
        Type::Boolean,
        "A no to this item means the participant cannot take part.",
    )
    .column(
        "answer",
        codes([("yes", "Yes"), ("no", "No"), ("unanswered", "Not answered")]),
        "The participant's answer.",
    )
    .column("given_at", Type::DateTime, "When the consent was recorded.")
    .column(
        "how_given",
        codes([
            ("drawn", "Signed on screen"),
            ("verbal_witnessed", "Verbal, witnessed"),
        ]),
        "How the participant signed.",
    )
    .text(
        "verbal_reason",
        "Why the participant gave verbal consent instead of signing.",
    );
    provenance(&mut t);
    for (index, c) in study.consents.iter().enumerate() {
        let id = c.id();
        let participant = c.participant_id();
        let latest = study
            .latest_consent(&participant)
            .is_some_and(|(l, _)| std::ptr::eq(l, &study.consents[index]));
        let form = crate::consent::form_given_on(&c.body, study.input.protocols.iter().copied());
        // The form's items in order; for an unknown form, the answers as recorded.
        let items: Vec<(String, String, String, bool)> = match form {
            Some(form) => form
                .items
                .iter()
                .map(|i| {
                    (
                        i.id.clone(),
                        i.text.clone(),
                        i.role.as_str().to_owned(),
                        i.required,
                    )
                })
                .collect(),
            None => c
                .body
                .answers
                .0
                .keys()
                .map(|k| (k.clone(), String::new(), String::new(), false))
                .collect(),
        };
        let (how, reason) = match &c.body.signature {
            ConsentSignature::Drawn { .. } => ("drawn", String::new()),
            ConsentSignature::VerbalWitnessed { reason } => ("verbal_witnessed", reason.clone()),
        };
        for (number, (item_id, text, role, required)) in items.into_iter().enumerate() {
            let answer = match c.body.answers.get(&item_id) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unanswered",
            };
            let mut row = vec![
                id.clone(),
                participant.clone(),
                study.code_of(c),
                c.body.form_id.clone(),
                form.map(|f| f.title.clone()).unwrap_or_default(),
                c.body.form_version.clone(),
                yes(latest),
                (number + 1).to_string(),
                item_id,
                text,
                role,
                if form.is_some() {
                    yes(required)
                } else {
                    String::new()
                },
                answer.to_owned(),
                time(c.revision().time),
                how.to_owned(),
                reason.clone(),
            ];
            row.extend(provenance_cells(c));
            t.row(row);
        }
    }
    t
}

fn visits(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "visits.csv",
        "visits",
        "One row per visit: when and where, who was there, and whether it was closed.",
    );
    t.text("visit_id", "The visit's id (the same in every file).")
        .column("visit_date", Type::DateTime, "When the visit took place.")
        .column(
            "place_type",
            codes(
                study
                    .protocol
                    .place_types
                    .iter()
                    .map(|p| (p.id.as_str(), p.label.as_str())),
            ),
            "The kind of place.",
        )
        .text("place_label", "The kind of place in words.")
        .text(
            "participant_codes",
            "The participants present, separated by \"; \".",
        )
        .column(
            "participants",
            Type::Integer,
            "How many participants were present.",
        )
        .column(
            "interview_notes",
            Type::Integer,
            "Interview notes recorded in the visit.",
        )
        .column(
            "safeguarding_flags",
            Type::Integer,
            "Notes flagged as a safeguarding concern.",
        )
        .column(
            "safeguarding_acknowledged_at",
            Type::DateTime,
            "When the fieldworker acknowledged the safeguarding steps (empty: not acknowledged).",
        )
        .column(
            "closed_at",
            Type::DateTime,
            "When the visit was closed (empty: still open).",
        );
    provenance(&mut t);
    for v in &study.visits {
        let id = v.id();
        let codes: Vec<String> = v
            .body
            .participants
            .iter()
            .map(|p| {
                study
                    .participant(&p.to_string())
                    .map_or_else(|| p.to_string(), |x| x.body.code.clone())
            })
            .collect();
        let notes: Vec<_> = study.notes.iter().filter(|n| n.visit_id() == id).collect();
        let place = v
            .protocol
            .place_type(&v.body.place_type)
            .or_else(|| study.protocol.place_type(&v.body.place_type))
            .map_or_else(|| v.body.place_type.clone(), |p| p.label.clone());
        let mut row = vec![
            id,
            time(v.body.date),
            v.body.place_type.clone(),
            place,
            codes.join("; "),
            v.body.participants.len().to_string(),
            notes.len().to_string(),
            notes
                .iter()
                .filter(|n| n.body.is_safeguarding())
                .count()
                .to_string(),
            opt_time(v.body.safeguarding_acknowledged),
            opt_time(v.body.closed),
        ];
        row.extend(provenance_cells(v));
        t.row(row);
    }
    t
}

fn interview_notes(study: &Study<'_>, interviews: &[Interview<'_>]) -> Table {
    let mut t = Table::new(
        "interview_notes.csv",
        "interview_notes",
        "One row per interview note, in the order of the interview guide: the question's \
         words beside its id, the note, its flags, and where it is in the recording.",
    );
    t.text("note_id", "The note record's id.")
        .text("participant_id", "The participant's id.")
        .text("participant_code", "The participant's code.")
        .column("group", group_codes(study), "The participant's group.")
        .text("visit_id", "The visit's id.")
        .column("visit_date", Type::DateTime, "When the visit took place.")
        .text("guide_id", "The interview guide's id.")
        .text("guide_title", "The interview guide's title.")
        .text(
            "section_id",
            "The guide section's id (empty for a free note).",
        )
        .text("section_title", "The section's heading.")
        .column(
            "question_number",
            Type::Integer,
            "The question's number in the guide, from 1 (empty for a free note).",
        )
        .text("question_id", "The question's id (empty for a free note).")
        .text("question_text", "The question's words.")
        .text("note_text", "What the fieldworker wrote.");
    for flag in NoteFlag::ALL {
        let about = match flag {
            NoteFlag::Quote => "Flagged as worth quoting.",
            NoteFlag::FollowUp => "Flagged to follow up.",
            NoteFlag::Safeguarding => "Flagged as a safeguarding concern.",
        };
        t.column(flag.code(), Type::Boolean, about);
    }
    t.column(
        "quote_not_agreed",
        Type::Boolean,
        "Flagged as a quote, but the participant's latest consent does not agree to direct \
         quotes: do not quote it.",
    )
    .column(
        "updated_at",
        Type::DateTime,
        "When the note was last changed.",
    )
    .column(
        "offset_ms",
        Type::Integer,
        "Where the question started in the recording, in milliseconds.",
    )
    .text("offset", "The same as h:mm:ss.")
    .text(
        "recording_file",
        "The interview's audio recording, relative to this folder.",
    )
    .text(
        "interview_document",
        "The interview's .docx, relative to this folder.",
    );
    provenance(&mut t);
    for interview in interviews {
        let group = study
            .participant(&interview.participant_id)
            .map(|p| p.body.group.clone())
            .unwrap_or_default();
        for note in &interview.notes {
            let place = interview.place(&note.body);
            let guide_title = interview.guide.map(|g| g.title.clone()).unwrap_or_default();
            let mut row = vec![
                note.id(),
                interview.participant_id.clone(),
                interview.code.clone(),
                group.clone(),
                interview.visit_id.clone(),
                time(interview.date),
                interview.guide_id.clone(),
                guide_title,
                place
                    .as_ref()
                    .map(|p| p.section.id.clone())
                    .unwrap_or_default(),
                place
                    .as_ref()
                    .map(|p| p.section.title.clone())
                    .unwrap_or_default(),
                place
                    .as_ref()
                    .map(|p| p.number.to_string())
                    .unwrap_or_default(),
                note.body.question_id.clone().unwrap_or_default(),
                place
                    .as_ref()
                    .map(|p| p.question.text.clone())
                    .unwrap_or_default(),
                note.body.text.clone(),
            ];
            row.extend(NoteFlag::ALL.map(|flag| yes(note.body.has_flag(flag))));
            row.extend([
                yes(study.quote_not_agreed(note)),
                time(note.body.updated),
                note.body
                    .started_at_ms
                    .map(|ms| ms.to_string())
                    .unwrap_or_default(),
                note.body.started_at_ms.map(clock).unwrap_or_default(),
                interview
                    .recording
                    .and_then(|r| r.record.file.clone())
                    .unwrap_or_default(),
                format!("interviews/{}.docx", interview.stem),
            ]);
            row.extend(provenance_cells(note));
            t.row(row);
        }
    }
    t
}

/// The responses in order: participant, visit, the protocol's activity and prompt order.
fn ordered_responses<'s>(study: &'s Study<'_>) -> Vec<&'s Item<'s, ActivityResponseBody>> {
    let mut responses: Vec<_> = study.responses.iter().collect();
    let order = |r: &Item<'_, ActivityResponseBody>| {
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
            study.code_of(r),
            r.visit_id(),
            activity.unwrap_or(usize::MAX),
            prompt.unwrap_or(usize::MAX),
            r.body.time,
        )
    };
    responses.sort_by_cached_key(|r| order(r));
    responses
}

fn activity_codes(study: &Study<'_>) -> Type {
    codes(
        study
            .protocol
            .activities
            .iter()
            .map(|a| (a.id.as_str(), a.title.as_str())),
    )
}

fn activity_responses(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "activity_responses.csv",
        "activity_responses",
        "One row per activity prompt a child answered, skipped or stopped at: the prompt's \
         words, the answer's codes and words, and what the child said.",
    );
    t.text("response_id", "The response record's id.")
        .text("participant_id", "The child's id.")
        .text("participant_code", "The child's code.")
        .text("visit_id", "The visit's id.")
        .column("activity_id", activity_codes(study), "The activity.")
        .text("activity_title", "The activity's title.")
        .column(
            "prompt_number",
            Type::Integer,
            "The prompt's place in the activity, from 1.",
        )
        .text("prompt_id", "The prompt's id.")
        .text("prompt_text", "The words read aloud to the child.")
        .column(
            "status",
            codes(ResponseStatus::ALL.map(|s| (s.code(), s.label()))),
            "How the prompt ended.",
        )
        .text(
            "answer_codes",
            "The answer as card ids, e.g. \"friends; school\" or \"good: friends\" (card sort).",
        )
        .text(
            "answer_words",
            "The answer in words, as the fieldworker saw it.",
        )
        .column("answered_at", Type::DateTime, "When the child answered.")
        .text(
            "child_said",
            "The fieldworker's notes of what the child said.",
        )
        .text(
            "picture_file",
            "A drawing, as a PNG file relative to this folder.",
        );
    provenance(&mut t);
    for r in ordered_responses(study) {
        let activity = r
            .protocol
            .activity(&r.body.activity_id)
            .or_else(|| study.protocol.activity(&r.body.activity_id));
        let prompt = activity.and_then(|a| {
            a.prompts
                .iter()
                .position(|p| p.id == r.body.prompt_id)
                .map(|i| (i + 1, &a.prompts[i]))
        });
        let mut row = vec![
            r.id(),
            r.participant_id(),
            study.code_of(r),
            r.visit_id(),
            r.body.activity_id.clone(),
            activity.map(|a| a.title.clone()).unwrap_or_default(),
            prompt.map(|(n, _)| n.to_string()).unwrap_or_default(),
            r.body.prompt_id.clone(),
            prompt.map(|(_, p)| p.text.clone()).unwrap_or_default(),
            r.body.status().code().to_owned(),
            r.body.answer_codes(),
            r.body.answer_words(activity),
            time(r.body.time),
            r.body.notes.clone().unwrap_or_default(),
            r.record.file.clone().unwrap_or_default(),
        ];
        row.extend(provenance_cells(r));
        t.row(row);
    }
    t
}

fn card_choices(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "card_choices.csv",
        "card_choices",
        "One row per card in a child's answer: faces and cards picked (with their order) and \
         the card sort's placements.",
    );
    t.text(
        "response_id",
        "The response (activity_responses.csv) the card belongs to.",
    )
    .text("participant_code", "The child's code.")
    .column("activity_id", activity_codes(study), "The activity.")
    .text("prompt_id", "The prompt's id.")
    .text("card_id", "The card's id.")
    .text("card_label", "The card's words.")
    .column(
        "position",
        Type::Integer,
        "Its place in the order the child chose, from 1 (empty in the card sort).",
    )
    .column(
        "sort_column",
        codes(SORT_COLUMNS),
        "Where the child put it in the card sort (empty otherwise).",
    );
    for r in ordered_responses(study) {
        let activity = r
            .protocol
            .activity(&r.body.activity_id)
            .or_else(|| study.protocol.activity(&r.body.activity_id));
        for choice in r.body.card_choices() {
            t.row(vec![
                r.id(),
                study.code_of(r),
                r.body.activity_id.clone(),
                r.body.prompt_id.clone(),
                choice.card.clone(),
                card_label(activity, &choice.card),
                choice.position.map(|p| p.to_string()).unwrap_or_default(),
                choice.column.unwrap_or_default(),
            ]);
        }
    }
    t
}

fn assents(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "assents.csv",
        "assents",
        "One row per time a child was asked whether they wanted to go on: at the start of \
         child mode and before each activity.",
    );
    t.text("assent_id", "The assent record's id.")
        .text("participant_id", "The child's id.")
        .text("participant_code", "The child's code.")
        .text("visit_id", "The visit's id.")
        .text(
            "activity_id",
            "The activity about to start (empty: the start of child mode).",
        )
        .text("activity_title", "The activity's title.")
        .column(
            "answer",
            codes(
                [AssentAnswer::Yes, AssentAnswer::NotSure, AssentAnswer::No].map(|a| {
                    let code = match a {
                        AssentAnswer::Yes => "yes",
                        AssentAnswer::NotSure => "not_sure",
                        AssentAnswer::No => "no",
                    };
                    (code, a.label())
                }),
            ),
            "What the child chose (only yes lets the activity go on).",
        )
        .column("answered_at", Type::DateTime, "When the child answered.");
    provenance(&mut t);
    let mut assents: Vec<_> = study.assents.iter().collect();
    assents.sort_by_cached_key(|a| (study.code_of(a), a.body.time, a.revision().record_id));
    for a in assents {
        let code = match a.body.answer {
            AssentAnswer::Yes => "yes",
            AssentAnswer::NotSure => "not_sure",
            AssentAnswer::No => "no",
        };
        let activity = a.body.activity.clone().unwrap_or_default();
        let mut row = vec![
            a.id(),
            a.participant_id(),
            study.code_of(a),
            a.visit_id(),
            activity.clone(),
            a.protocol
                .activity(&activity)
                .map(|x| x.title.clone())
                .unwrap_or_default(),
            code.to_owned(),
            opt_time(a.body.time.or(Some(a.revision().time))),
        ];
        row.extend(provenance_cells(a));
        t.row(row);
    }
    t
}

fn reflections(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "reflections.csv",
        "reflections",
        "One row per fieldworker's reflection after a visit.",
    );
    t.text("reflection_id", "The reflection record's id.")
        .text("visit_id", "The visit's id.")
        .column("visit_date", Type::DateTime, "When the visit took place.")
        .text("text", "What the fieldworker wrote.")
        .column("written_at", Type::DateTime, "When it was last changed.");
    provenance(&mut t);
    for r in &study.reflections {
        let visit = r.visit_id();
        let mut row = vec![
            r.id(),
            visit.clone(),
            opt_time(study.visit(&visit).map(|v| v.body.date)),
            r.body.text.clone(),
            time(r.revision().time),
        ];
        row.extend(provenance_cells(r));
        t.row(row);
    }
    t
}

fn values_text(ty: &Type) -> String {
    match ty {
        Type::Code(pairs) => pairs
            .iter()
            .map(|(code, label)| format!("{code} = {label}"))
            .collect::<Vec<_>>()
            .join("; "),
        Type::Boolean => "1 = yes; 0 = no".to_owned(),
        _ => String::new(),
    }
}

fn codebook(tables: &[Table]) -> Table {
    let mut t = Table::new(
        "codebook.csv",
        "codebook",
        "One row per column of every CSV: its type, meaning and values.",
    );
    t.text("file", "The CSV file.")
        .text("column", "The column's name.")
        .text("type", "text, integer, boolean, date-time or code.")
        .text("description", "What the column holds.")
        .text(
            "values",
            "For codes and booleans: each value and its meaning.",
        );
    for table in tables {
        for column in &table.columns {
            t.row(vec![
                table.file.to_owned(),
                column.name.to_owned(),
                column.ty.name().to_owned(),
                column.about.to_owned(),
                values_text(&column.ty),
            ]);
        }
    }
    let own: Vec<(&'static str, &'static str)> =
        t.columns.iter().map(|c| (c.name, c.about)).collect();
    for (name, about) in own {
        t.row(vec![
            "codebook.csv".to_owned(),
            name.to_owned(),
            "text".to_owned(),
            about.to_owned(),
            String::new(),
        ]);
    }
    t
}

fn readme(study: &Study<'_>, tables: &[Table]) -> String {
    let input = study.input;
    let mut out = String::new();
    let _ = writeln!(out, "Attune export: {}", study.protocol.title);
    let _ = writeln!(
        out,
        "Exported at {} (times are UTC).",
        input.exported_at.to_rfc3339()
    );
    let _ = writeln!(
        out,
        "Participants who withdrew are left out of every file: {} withdrawn.\n",
        input.withdrawn_participants
    );
    out.push_str(
        "WHICH FILE IN WHICH TOOL\n\
         - NVivo, ATLAS.ti, MAXQDA, QualCoder: import attune.qdpx (REFI-QDA project). Keep it in\n\
           this folder: its audio sources point at the attachments folder beside it.\n\
         - Any of those, auto-coding by heading: the interviews folder, one .docx per interview\n\
           (questions in Heading 2).\n\
         - ELAN: the elan folder, one .eaf per recorded interview (the audio is linked).\n\
         - R: source(\"load_attune.R\", chdir = TRUE) loads every CSV with its types and factors.\n\
         - SPSS or PSPP: open load_attune.sps, change the CD line to this folder, run all.\n\
         - Spreadsheets: the CSVs are UTF-8. A text cell that would start with = + - @ (or ')\n\
           has a ' put before it so it is never run as a formula; the R and SPSS scripts take\n\
           it away again.\n\
         - records.csv and records.json: every record as recorded (JSON bodies), for audits.\n\
         - manifest.json: the SHA-256 of every file, what was left out and why.\n\n\
         THE CSV FILES (codebook.csv lists every column with its type and values)\n\
         Types: text; integer; boolean (1 = yes, 0 = no); date-time (ISO 8601 in UTC, e.g.\n\
         2026-11-30T14:05:09.123+00:00); code (one of the values listed, with its words).\n\
         An empty cell is a missing value.\n",
    );
    for table in tables {
        let _ = writeln!(
            out,
            "\n{} ({} {})\n  {}",
            table.file,
            table.rows.len(),
            if table.rows.len() == 1 { "row" } else { "rows" },
            table.about
        );
        for column in &table.columns {
            let values = values_text(&column.ty);
            let _ = write!(
                out,
                "  - {} [{}]: {}",
                column.name,
                column.ty.name(),
                column.about
            );
            if !values.is_empty() && matches!(column.ty, Type::Code(_)) {
                let _ = write!(out, " Values: {values}.");
            }
            out.push('\n');
        }
    }
    if !study.unreadable.is_empty() {
        out.push_str(
            "\nRECORDS NOT IN THE TABLES\nThese records could not be read by this version \
             (they are in records.json as recorded):\n",
        );
        for u in &study.unreadable {
            let _ = writeln!(out, "  - {} ({}): {}", u.record_id, u.kind, u.reason);
        }
    }
    out
}

/// An R string literal.
fn r_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn r_vector(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| r_string(&s)).collect();
    format!("c({})", items.join(", "))
}

fn r_script(tables: &[Table]) -> String {
    let mut out = String::from(
        "# Attune export: loads every CSV of this folder with its types and value labels.\n\
         # In R or RStudio: source(\"load_attune.R\", chdir = TRUE)\n\
         # Each file becomes a data frame of the same name (participants, consents, ...);\n\
         # times are POSIXct in UTC, booleans logical, codes factors labelled in words.\n\n\
         attune_read <- function(file, types, labels = list()) {\n\
         \x20 data <- utils::read.csv(file, fileEncoding = \"UTF-8-BOM\", colClasses = \"character\",\n\
         \x20                         na.strings = \"\", check.names = FALSE, stringsAsFactors = FALSE)\n\
         \x20 for (name in names(types)) {\n\
         \x20   x <- data[[name]]\n\
         \x20   data[[name]] <- switch(types[[name]],\n\
         \x20     text = sub(\"^'\", \"\", x),\n\
         \x20     integer = as.integer(x),\n\
         \x20     boolean = as.logical(as.integer(x)),\n\
         \x20     datetime = as.POSIXct(substr(x, 1, 23), format = \"%Y-%m-%dT%H:%M:%OS\", tz = \"UTC\"),\n\
         \x20     code = {\n\
         \x20       x <- sub(\"^'\", \"\", x)\n\
         \x20       known <- labels[[name]]\n\
         \x20       extra <- setdiff(unique(x[!is.na(x)]), names(known))\n\
         \x20       factor(x, levels = c(names(known), extra), labels = c(unname(known), extra))\n\
         \x20     })\n\
         \x20 }\n\
         \x20 data\n\
         }\n",
    );
    for table in tables {
        let types = table.columns.iter().map(|c| {
            let ty = match c.ty {
                Type::Text => "text",
                Type::Integer => "integer",
                Type::Boolean => "boolean",
                Type::DateTime => "datetime",
                Type::Code(_) => "code",
            };
            format!("{} = {}", r_string(c.name), r_string(ty))
        });
        let labels: Vec<String> = table
            .columns
            .iter()
            .filter_map(|c| match &c.ty {
                Type::Code(pairs) => Some(format!(
                    "{} = stats::setNames({}, {})",
                    r_string(c.name),
                    r_vector(pairs.iter().map(|(_, l)| l.clone())),
                    r_vector(pairs.iter().map(|(code, _)| code.clone())),
                )),
                _ => None,
            })
            .collect();
        let _ = write!(
            out,
            "\n{} <- attune_read({},\n  types = c({}),\n  labels = list({}))\n",
            table.name,
            r_string(table.file),
            types.collect::<Vec<_>>().join(", "),
            labels.join(",\n    "),
        );
    }
    out
}

/// An SPSS string literal.
fn spss_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''").replace(['\n', '\r'], " "))
}

fn spss_syntax(tables: &[Table]) -> String {
    let mut out = String::from(
        "* Attune export: loads every CSV of this folder into SPSS (or PSPP) with types,\n\
         * variable labels and value labels. Change the folder below, then run all.\n\
         * Times become SPSS date-times in UTC; booleans 1 = yes, 0 = no.\n\
         CD '.'.\n",
    );
    for table in tables {
        // Text widths: the longest value in bytes (SPSS counts bytes in UTF-8 mode).
        let mut widths: HashMap<usize, usize> = HashMap::new();
        for row in &table.rows {
            for (i, cell) in row.iter().enumerate() {
                let width = neutralise(&one_line(cell)).len();
                let entry = widths.entry(i).or_insert(1);
                *entry = (*entry).max(width);
            }
        }
        let variables: Vec<String> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let width = widths.get(&i).copied().unwrap_or(1).clamp(1, 32_767);
                match c.ty {
                    Type::Text | Type::Code(_) => format!("{} A{width}", c.name),
                    Type::Integer | Type::Boolean => format!("{} F8.0", c.name),
                    Type::DateTime => format!("{}_iso A29", c.name),
                }
            })
            .collect();
        let _ = write!(
            out,
            "\nGET DATA /TYPE=TXT /FILE={} /ENCODING='UTF8'\n  /ARRANGEMENT=DELIMITED /DELCASE=LINE /FIRSTCASE=2\n  /DELIMITERS=\",\" /QUALIFIER='\"'\n  /VARIABLES=\n    {}.\n",
            spss_string(&format!("spss/{}", table.file)),
            variables.join("\n    ")
        );
        for c in &table.columns {
            match c.ty {
                Type::DateTime => {
                    let _ = write!(
                        out,
                        "COMPUTE {0} = NUMBER(REPLACE(SUBSTR({0}_iso, 1, 19), 'T', ' '), YMDHMS19).\n\
                         FORMATS {0} (DATETIME20).\n",
                        c.name
                    );
                }
                Type::Text | Type::Code(_) => {
                    let _ = writeln!(
                        out,
                        "IF (SUBSTR({0}, 1, 1) = \"'\") {0} = SUBSTR({0}, 2).",
                        c.name
                    );
                }
                _ => {}
            }
        }
        let _ = writeln!(out, "EXECUTE.");
        let dates: Vec<String> = table
            .columns
            .iter()
            .filter(|c| matches!(c.ty, Type::DateTime))
            .map(|c| format!("{}_iso", c.name))
            .collect();
        if !dates.is_empty() {
            let _ = writeln!(out, "DELETE VARIABLES {}.", dates.join(" "));
        }
        let labels: Vec<String> = table
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c.name,
                    spss_string(&c.about.chars().take(250).collect::<String>())
                )
            })
            .collect();
        let _ = writeln!(out, "VARIABLE LABELS\n  {}.", labels.join("\n  /"));
        let values: Vec<String> = table
            .columns
            .iter()
            .filter_map(|c| match &c.ty {
                Type::Code(pairs) => Some(format!(
                    "{} {}",
                    c.name,
                    pairs
                        .iter()
                        .map(|(code, label)| format!(
                            "{} {}",
                            spss_string(code),
                            spss_string(label)
                        ))
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
                Type::Boolean => Some(format!("{} 1 'Yes' 0 'No'", c.name)),
                _ => None,
            })
            .collect();
        if !values.is_empty() {
            let _ = writeln!(out, "VALUE LABELS\n  {}.", values.join("\n  /"));
        }
        // A copy keeps each table open (GET DATA replaces the active dataset).
        let _ = writeln!(out, "DATASET COPY {}.", table.name);
    }
    if let Some(first) = tables.first() {
        let _ = writeln!(out, "\nDATASET ACTIVATE {}.", first.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised_and_fields_quoted() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("-1"), "'-1");
        assert_eq!(neutralise("+44"), "'+44");
        assert_eq!(neutralise("@sum"), "'@sum");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("'quoted"), "''quoted", "reversible");
        assert_eq!(neutralise("fine = ok"), "fine = ok");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote("plain"), "plain");
    }
}
