//! The project's sources: an interview's text (each note coded by its question and flags),
//! its recording (the notes as a synchronised transcript and as audio selections), a child
//! session's text (each prompt's answer coded by the prompt) and the drawings.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::super::layout::{Text, interview_text, note_times};
use super::super::{Interview, Item, guid};
use super::{Project, codes};
use crate::fieldwork::ActivityResponseBody;
use crate::time::Timestamp;

/// Where a note is: its index in the interview, and its characters `start..end`.
type Span = (usize, usize, usize);

/// A selection's name: the question's number and words, or "Free note".
fn selection_name(interview: &Interview<'_>, note: usize) -> String {
    match interview.place(&interview.notes[note].body) {
        Some(place) => format!("Q{} {}", place.number, place.question.text),
        None => "Free note".to_owned(),
    }
}

/// A note timed in the recording: its index, its two sync points, its start and end (ms).
struct Timed {
    note: usize,
    from: String,
    to: String,
    start_ms: u64,
    end_ms: u64,
    /// Its codes (question, flags), the same on the transcript and the audio.
    codes: Vec<String>,
}

impl Project<'_, '_> {
    /// The interview's text source, and its audio source if it was recorded.
    pub(super) fn interview(&mut self, interview: &Interview<'_>) {
        let study = self.study;
        let (text, spans) = interview_text(study, interview);
        let source = guid(&["interview", &interview.stem]);
        let creator = interview
            .notes
            .first()
            .map(|n| n.record.fieldworker.as_str())
            .filter(|f| !f.is_empty())
            .map(Project::user);
        let path = format!("internal://{source}.txt");
        let title = interview.title();
        let mut attributes = vec![
            ("guid", source.as_str()),
            ("name", title.as_str()),
            ("plainTextPath", path.as_str()),
            ("creationDateTime", self.created.as_str()),
        ];
        if let Some(creator) = &creator {
            attributes.push(("creatingUser", creator));
        }
        self.sources.open("TextSource", &attributes);
        for &(note, start, end) in &spans {
            let selection = guid(&["selection", &interview.notes[note].id()]);
            self.sources.open(
                "PlainTextSelection",
                &[
                    ("guid", &selection),
                    ("name", &selection_name(interview, note)),
                    ("startPosition", &start.to_string()),
                    ("endPosition", &end.to_string()),
                ],
            );
            codes::codings(
                &mut self.sources,
                &selection,
                &codes::of_note(study, interview, note),
            );
            self.sources.close();
        }
        self.sources.close();
        self.files
            .push((format!("sources/{source}.txt"), text.clone().into_bytes()));
        self.own(&interview.participant_id, source);
        self.audio(interview, &text, &spans);
    }

    /// The interview's recording as an audio source (a path relative to the export folder),
    /// with the notes as a transcript synchronised at their times and as audio selections.
    fn audio(&mut self, interview: &Interview<'_>, text: &str, spans: &[Span]) {
        let Some(path) = interview.recording.and_then(|r| r.record.file.as_deref()) else {
            return;
        };
        let study = self.study;
        let audio = guid(&["audio", &interview.stem]);
        self.sources.open(
            "AudioSource",
            &[
                ("guid", &audio),
                ("name", &format!("{} (audio)", interview.title())),
                // As the specification writes them: `relative:///` + the path under
                // `basePath`, and where it is now as `absolute:///`.
                ("path", &format!("relative:///{path}")),
                (
                    "currentPath",
                    &format!(
                        "absolute:///{}/{path}",
                        study.input.base_path.trim_matches('/')
                    ),
                ),
                ("creationDateTime", &self.created),
            ],
        );
        self.sources.open(
            "Transcript",
            &[
                ("guid", &guid(&["transcript", &interview.stem])),
                ("name", &format!("Notes: {}", interview.title())),
            ],
        );
        self.sources.text("PlainTextContent", &[], text);
        let times = note_times(interview);
        let mut timed = Vec::new();
        for &(note, start, end) in spans {
            let Some((start_ms, end_ms)) = times[note] else {
                continue;
            };
            let note_id = interview.notes[note].id();
            let (from, to) = (
                guid(&["sync", &note_id, "from"]),
                guid(&["sync", &note_id, "to"]),
            );
            for (point, ms, position) in [(&from, start_ms, start), (&to, end_ms, end)] {
                self.sources.empty(
                    "SyncPoint",
                    &[
                        ("guid", point),
                        ("timeStamp", &ms.to_string()),
                        ("position", &position.to_string()),
                    ],
                );
            }
            timed.push(Timed {
                note,
                from,
                to,
                start_ms,
                end_ms,
                codes: codes::of_note(study, interview, note),
            });
        }
        for t in &timed {
            let selection = guid(&["transcript-selection", &interview.notes[t.note].id()]);
            self.sources.open(
                "TranscriptSelection",
                &[
                    ("guid", &selection),
                    ("name", &selection_name(interview, t.note)),
                    ("fromSyncPoint", &t.from),
                    ("toSyncPoint", &t.to),
                ],
            );
            codes::codings(&mut self.sources, &selection, &t.codes);
            self.sources.close();
        }
        self.sources.close();
        for t in &timed {
            let selection = guid(&["audio-selection", &interview.notes[t.note].id()]);
            self.sources.open(
                "AudioSelection",
                &[
                    ("guid", &selection),
                    ("name", &selection_name(interview, t.note)),
                    ("begin", &t.start_ms.to_string()),
                    ("end", &t.end_ms.to_string()),
                ],
            );
            codes::codings(&mut self.sources, &selection, &t.codes);
            self.sources.close();
        }
        self.sources.close();
        self.own(&interview.participant_id, audio);
    }

    /// One text source per child and visit, and the drawings as picture sources.
    pub(super) fn child_sessions(&mut self) {
        let study = self.study;
        let mut sessions: BTreeMap<(String, String, String), Vec<&Item<'_, ActivityResponseBody>>> =
            BTreeMap::new();
        for r in &study.responses {
            sessions
                .entry((study.code_of(r), r.participant_id(), r.visit_id()))
                .or_default()
                .push(r);
        }
        for ((code, participant, visit), mut responses) in sessions {
            responses.sort_by_key(|r| (r.protocol_order(), r.body.time));
            self.child_session(&code, &participant, &visit, &responses);
            self.pictures(&code, &participant, &responses);
        }
    }

    fn child_session(
        &mut self,
        code: &str,
        participant: &str,
        visit: &str,
        responses: &[&Item<'_, ActivityResponseBody>],
    ) {
        let study = self.study;
        let date = study
            .visit(visit)
            .map(|v| v.body.date)
            .or_else(|| responses.iter().map(|r| r.body.time).min())
            .unwrap_or(Timestamp(0));
        let title = format!("Children's activities: {code}, {}", date.date_utc());
        let source = guid(&["activities", participant, visit]);
        let mut text = Text::default();
        text.line(&title);
        text.blank();
        let mut current: Option<&str> = None;
        let mut selections = Vec::new();
        for r in responses {
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
        self.sources.open(
            "TextSource",
            &[
                ("guid", &source),
                ("name", &title),
                ("plainTextPath", &format!("internal://{source}.txt")),
                ("creationDateTime", &self.created),
            ],
        );
        for (r, start, end) in &selections {
            let selection = guid(&["selection", &r.id()]);
            let known = study
                .protocol
                .activity(&r.body.activity_id)
                .is_some_and(|a| a.prompts.iter().any(|p| p.id == r.body.prompt_id));
            self.sources.open(
                "PlainTextSelection",
                &[
                    ("guid", &selection),
                    ("name", &r.body.prompt_id),
                    ("startPosition", &start.to_string()),
                    ("endPosition", &end.to_string()),
                ],
            );
            if known {
                let code = codes::prompt(&r.body.activity_id, &r.body.prompt_id);
                codes::codings(&mut self.sources, &selection, &[code]);
            }
            self.sources.close();
        }
        self.sources.close();
        self.files
            .push((format!("sources/{source}.txt"), text.out.into_bytes()));
        self.own(participant, source);
    }

    fn pictures(
        &mut self,
        code: &str,
        participant: &str,
        responses: &[&Item<'_, ActivityResponseBody>],
    ) {
        for r in responses {
            let Some(png) = r.body.answer.get("png").and_then(|p| p.as_str()) else {
                continue;
            };
            let Ok(bytes) = BASE64.decode(png) else {
                continue;
            };
            let picture = guid(&["picture", &r.id()]);
            let prompt = r
                .protocol
                .activity(&r.body.activity_id)
                .and_then(|a| a.prompts.iter().find(|p| p.id == r.body.prompt_id))
                .map_or(r.body.prompt_id.as_str(), |p| p.text.as_str());
            self.sources
                .open(
                    "PictureSource",
                    &[
                        ("guid", &picture),
                        (
                            "name",
                            &format!("Drawing: {code}, {}", r.body.time.date_utc()),
                        ),
                        ("path", &format!("internal://{picture}.png")),
                        ("creationDateTime", &self.created),
                    ],
                )
                .text("Description", &[], prompt)
                .close();
            self.files.push((format!("sources/{picture}.png"), bytes));
            self.own(participant, picture);
        }
    }
}
