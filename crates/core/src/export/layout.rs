//! Interviews laid out as plain text (the question's words as headings, then the notes), with
//! where each note is, and the spans of the notes in a recording: shared by the REFI-QDA
//! project and the ELAN files.

use super::{Interview, Study};

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
pub(crate) struct Text {
    pub(crate) out: String,
    pub(crate) chars: usize,
}

impl Text {
    pub(crate) fn push(&mut self, s: &str) {
        // One line ending throughout, so positions mean the same in every tool.
        let s = s.replace("\r\n", "\n").replace('\r', "\n");
        self.chars += s.chars().count();
        self.out.push_str(&s);
    }

    pub(crate) fn line(&mut self, s: &str) {
        self.push(s);
        self.push("\n");
    }

    pub(crate) fn blank(&mut self) {
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
