//! The tables of the adults' fieldwork: participants, consents, visits, interview notes and
//! reflections.

use super::super::{Interview, Study, clock};
use super::table::{Table, Type, codes, opt_time, provenance, provenance_cells, time, yes};
use crate::fieldwork::{ConsentSignature, NoteFlag, ParticipantStatus};
use crate::protocol::ConsentRole;

pub(super) fn group_codes(study: &Study<'_>) -> Type {
    codes(
        study
            .protocol
            .groups
            .iter()
            .map(|g| (g.id.as_str(), g.name.as_str())),
    )
}

pub(super) fn group_name(study: &Study<'_>, id: &str) -> String {
    study
        .protocol
        .group(id)
        .map_or_else(|| id.to_owned(), |g| g.name.clone())
}

/// The columns of `participants.csv`.
fn participants_columns(study: &Study<'_>) -> Table {
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
    t
}

pub(super) fn participants(study: &Study<'_>) -> Table {
    let mut t = participants_columns(study);
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

pub(super) fn role_codes() -> Type {
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

/// The columns of `consents.csv`.
fn consents_columns() -> Table {
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
    t
}

pub(super) fn consents(study: &Study<'_>) -> Table {
    let mut t = consents_columns();
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

pub(super) fn visits(study: &Study<'_>) -> Table {
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

/// The columns of `interview_notes.csv`.
fn interview_notes_columns(study: &Study<'_>) -> Table {
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
    t
}

pub(super) fn interview_notes(study: &Study<'_>, interviews: &[Interview<'_>]) -> Table {
    let mut t = interview_notes_columns(study);
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

pub(super) fn reflections(study: &Study<'_>) -> Table {
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
