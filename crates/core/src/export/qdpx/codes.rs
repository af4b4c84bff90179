//! The project's codebook (flags, interview questions, activity prompts) and the codes of a
//! note. Every code's GUID comes from what it stands for, so it is the same in every export.

use super::super::xml::Xml;
use super::super::{Interview, Study, guid, question_place};
use crate::fieldwork::NoteFlag;

pub(super) fn flag(flag: NoteFlag) -> String {
    guid(&["code", "flag", flag.code()])
}

pub(super) fn not_agreed() -> String {
    guid(&["code", "flag", "quote_not_agreed"])
}

pub(super) fn question(guide: &str, question: &str) -> String {
    guid(&["code", "question", guide, question])
}

pub(super) fn prompt(activity: &str, prompt: &str) -> String {
    guid(&["code", "prompt", activity, prompt])
}

/// A code that groups others and cannot itself be coded.
fn open_group(xml: &mut Xml, guid: &str, name: &str) {
    xml.open(
        "Code",
        &[("guid", guid), ("name", name), ("isCodable", "false")],
    );
}

/// `<CodeBook>`: the flags, every question of every guide, every activity prompt.
pub(super) fn codebook(xml: &mut Xml, study: &Study<'_>) {
    xml.open("CodeBook", &[]).open("Codes", &[]);
    flags(xml);
    questions(xml, study);
    activities(xml, study);
    xml.close().close();
}

fn flags(xml: &mut Xml) {
    open_group(xml, &guid(&["code", "flags"]), "Flags");
    for (f, color) in NoteFlag::ALL
        .into_iter()
        .zip(["#1F6FB2", "#B26B00", "#C62828"])
    {
        xml.empty(
            "Code",
            &[
                ("guid", &flag(f)),
                ("name", f.label()),
                ("isCodable", "true"),
                ("color", color),
            ],
        );
    }
    xml.open(
        "Code",
        &[
            ("guid", &not_agreed()),
            ("name", "Not agreed for quotes"),
            ("isCodable", "true"),
            ("color", "#6B6B6B"),
        ],
    )
    .text(
        "Description",
        &[],
        "Flagged as a quote, but the participant's latest consent does not agree to direct \
         quotes: do not quote.",
    )
    .close();
    xml.close();
}

fn questions(xml: &mut Xml, study: &Study<'_>) {
    open_group(xml, &guid(&["code", "questions"]), "Interview questions");
    for guide in &study.protocol.interview_guides {
        open_group(xml, &guid(&["code", "guide", &guide.id]), &guide.title);
        let mut number = 0;
        for section in &guide.sections {
            for q in &section.questions {
                number += 1;
                let name = format!("Q{number} {}", q.text);
                xml.open(
                    "Code",
                    &[
                        ("guid", &question(&guide.id, &q.id)),
                        ("name", &name),
                        ("isCodable", "true"),
                    ],
                )
                .text(
                    "Description",
                    &[],
                    &format!("{}: {}", section.title, q.text),
                )
                .close();
            }
        }
        xml.close();
    }
    xml.close();
}

fn activities(xml: &mut Xml, study: &Study<'_>) {
    open_group(xml, &guid(&["code", "activities"]), "Children's activities");
    for activity in &study.protocol.activities {
        open_group(
            xml,
            &guid(&["code", "activity", &activity.id]),
            &activity.title,
        );
        for p in &activity.prompts {
            xml.empty(
                "Code",
                &[
                    ("guid", &prompt(&activity.id, &p.id)),
                    ("name", &p.text),
                    ("isCodable", "true"),
                ],
            );
        }
        xml.close();
    }
    xml.close();
}

/// A `<Coding>` of `selection` at each of `codes`.
pub(super) fn codings(xml: &mut Xml, selection: &str, codes: &[String]) {
    for code in codes {
        xml.open("Coding", &[("guid", &guid(&["coding", selection, code]))])
            .empty("CodeRef", &[("targetGUID", code)])
            .close();
    }
}

/// The codes of an interview's note `index`: its question's, each flag's, and "not agreed for
/// quotes".
pub(super) fn of_note(study: &Study<'_>, interview: &Interview<'_>, index: usize) -> Vec<String> {
    let note = interview.notes[index];
    let mut codes = Vec::new();
    // Only questions the codebook holds (the newest protocol's guides).
    if let (Some(place), Some(guide)) = (
        interview.place(&note.body),
        study.protocol.guide(&interview.guide_id),
    ) && question_place(guide, &place.question.id).is_some()
    {
        codes.push(question(&interview.guide_id, &place.question.id));
    }
    codes.extend(
        NoteFlag::ALL
            .into_iter()
            .filter(|f| note.body.has_flag(*f))
            .map(flag),
    );
    if study.quote_not_agreed(note) {
        codes.push(not_agreed());
    }
    codes
}
