//! Analysis-ready exports, sans I/O: the study's decrypted, verified records in, files out.
//!
//! [`analysis_files`] turns the latest revision of every record into the files researchers
//! open in their tools, the same bytes for the same data (the CLI's `attune-server export`
//! and the researcher console both call it):
//!
//! - tidy CSVs, one row per observation ([`tables`]): `participants.csv`, `consents.csv`,
//!   `visits.csv`, `interview_notes.csv`, `activity_responses.csv`, `card_choices.csv`,
//!   `assents.csv`, `reflections.csv`; with `codebook.csv` and `README.txt` naming every
//!   column, and `load_attune.R` and `load_attune.sps` that read them with their types and
//!   value labels;
//! - `attune.qdpx`, a REFI-QDA project for NVivo, ATLAS.ti and MAXQDA ([`qdpx`]);
//! - `interviews/<code>-<date>-<n>.docx`, one document per interview with the questions as
//!   headings ([`docx`]);
//! - `elan/<code>-<date>-<n>.eaf`, an ELAN transcription per recorded interview ([`eaf`]).
//!
//! The caller has already verified the records, left out withdrawn participants and laid out
//! the recordings and drawings as files (named in [`ExportRecord::file`]): [`bundle`] does all
//! of that, and makes the whole export around these files.

pub mod bundle;
mod docx;
mod eaf;
mod format;
mod layout;
mod qdpx;
mod tables;
mod xml;
pub mod zip;

pub use format::Format;

use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::consent::{self, ConsentOutcome, UnknownConsentForm};
use crate::fieldwork::{
    ActivityResponseBody, AssentBody, AttachmentBody, ConsentBody, InterviewNoteBody,
    ParticipantBody, ReflectionBody, VisitBody,
};
use crate::protocol::{GuideSection, InterviewGuide, Protocol, Question};
use crate::record::{Kind, Revision};
use crate::time::Timestamp;

/// One record as exported: its latest verified revision and what the server knows about it.
#[derive(Clone, Debug)]
pub struct ExportRecord {
    /// The record's latest revision that verified.
    pub revision: Revision,
    /// The participant code the envelope was filed under, if any.
    pub participant_code: Option<String>,
    /// The device that made the revision.
    pub device: String,
    /// The fieldworker that device is enrolled for.
    pub fieldworker: String,
    /// Whether every revision of the record verified.
    pub verified: bool,
    /// The exported file of an attachment or a drawing, relative to the export folder, e.g.
    /// `attachments/C01-<id>/<record>.webm`.
    pub file: Option<String>,
}

/// What [`analysis_files`] needs.
#[derive(Clone, Debug)]
pub struct ExportInput<'a> {
    /// The records (withdrawn participants already left out), in any order.
    pub records: &'a [ExportRecord],
    /// Every protocol version known (built in and published), oldest first: a record is read
    /// against the one it names, or the newest.
    pub protocols: &'a [&'a Protocol],
    /// When the export was made.
    pub exported_at: Timestamp,
    /// The export folder as an absolute path: the base of the REFI-QDA project's relative
    /// paths and of ELAN's media links.
    pub base_path: &'a str,
    /// How many participants withdrew and were left out (for the README).
    pub withdrawn_participants: usize,
    /// Which files to make ([`Format::ALL`] for every one).
    pub formats: &'a [Format],
}

/// A file of the export: its path inside the export folder and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportFile {
    /// The path, with `/` between folders, e.g. `interviews/C01-2026-11-30-1.docx`.
    pub name: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// Why the analysis files could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// A zip would be too large for the plain zip format.
    #[error("{0} is too large for a zip file (over 4 GiB or 65,535 files)")]
    TooLarge(String),
    /// A zip would pass 4 GiB, which needs Zip64, which this zip writer does not write.
    #[error(
        "{what} would be {bytes} bytes, over the 4 GiB a zip without Zip64 can hold (this \
         export's zip has no Zip64): export to a folder with `attune-server export` instead"
    )]
    NeedsZip64 {
        /// The entry or the archive.
        what: String,
        /// How large it would be.
        bytes: u64,
    },
    /// There is no protocol to read the records against.
    #[error("no protocol is known: the records cannot be read")]
    NoProtocol,
}

/// The analysis files for `input` (see the module documentation), in a fixed order.
///
/// # Errors
/// [`ExportError`] when no protocol is given or a zip would exceed the zip format's limits.
pub fn analysis_files(input: &ExportInput<'_>) -> Result<Vec<ExportFile>, ExportError> {
    let study = Study::of(input)?;
    // Grouped once: every format lays out the same interviews.
    let interviews = study.interviews();
    let mut files = Vec::new();
    for format in Format::ALL {
        if !input.formats.contains(&format) {
            continue;
        }
        match format {
            Format::Tables => files.extend(tables::files(&study, &interviews)),
            Format::Qdpx => files.push(qdpx::project(&study, &interviews)?),
            Format::Documents => files.extend(docx::documents(&study, &interviews)?),
            Format::Elan => files.extend(eaf::transcriptions(&study, &interviews)),
        }
    }
    Ok(files)
}

/// A record's body read as `T`, with the record and the protocol it was captured under.
pub(crate) struct Item<'a, T> {
    pub(crate) record: &'a ExportRecord,
    pub(crate) body: T,
    pub(crate) protocol: &'a Protocol,
}

impl<T> Item<'_, T> {
    pub(crate) fn revision(&self) -> &Revision {
        &self.record.revision
    }

    pub(crate) fn id(&self) -> String {
        self.record.revision.record_id.to_string()
    }

    pub(crate) fn participant_id(&self) -> String {
        self.record
            .revision
            .participant
            .map(|p| p.to_string())
            .unwrap_or_default()
    }

    pub(crate) fn visit_id(&self) -> String {
        self.record
            .revision
            .visit
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

impl Item<'_, ActivityResponseBody> {
    /// Where the response's activity and prompt come in its protocol (unknown ones last).
    pub(crate) fn protocol_order(&self) -> (usize, usize) {
        let activity = self
            .protocol
            .activities
            .iter()
            .position(|a| a.id == self.body.activity_id);
        let prompt = self
            .protocol
            .activity(&self.body.activity_id)
            .and_then(|a| a.prompts.iter().position(|p| p.id == self.body.prompt_id));
        (activity.unwrap_or(usize::MAX), prompt.unwrap_or(usize::MAX))
    }
}

/// A record whose body could not be read: kept in records.csv and records.json, named in
/// the README, left out of the tables.
pub(crate) struct Unreadable {
    pub(crate) record_id: String,
    pub(crate) kind: Kind,
    pub(crate) reason: String,
}

/// One interview: the notes one participant gave in one visit under one guide.
pub(crate) struct Interview<'a> {
    pub(crate) participant_id: String,
    pub(crate) code: String,
    pub(crate) visit_id: String,
    /// The visit's date, or the first note's time when the visit is not in the export.
    pub(crate) date: Timestamp,
    pub(crate) guide_id: String,
    pub(crate) guide: Option<&'a InterviewGuide>,
    /// The notes in guide order (section, then question), free notes last by time.
    pub(crate) notes: Vec<&'a Item<'a, InterviewNoteBody>>,
    /// The participant's audio recording made in the visit, if one was exported.
    pub(crate) recording: Option<&'a Item<'a, AttachmentBody>>,
    /// A file name stem unique in the export, e.g. `C01-2026-11-30-1`.
    pub(crate) stem: String,
}

/// Where a note's question sits in its guide.
pub(crate) struct QuestionPlace<'a> {
    /// 1-based across the whole guide.
    pub(crate) number: usize,
    pub(crate) section: &'a GuideSection,
    pub(crate) question: &'a Question,
}

impl Interview<'_> {
    /// The question a note answers, if it names one the guide has.
    pub(crate) fn place(&self, note: &InterviewNoteBody) -> Option<QuestionPlace<'_>> {
        question_place(self.guide?, note.question_id.as_deref()?)
    }

    /// The interview's title, e.g. `Carers' interview guide: C01, 2026-11-30`.
    pub(crate) fn title(&self) -> String {
        let guide = self
            .guide
            .map_or(self.guide_id.as_str(), |g| g.title.as_str());
        format!("{guide}: {}, {}", self.code, self.date.date_utc())
    }
}

pub(crate) fn question_place<'a>(
    guide: &'a InterviewGuide,
    question_id: &str,
) -> Option<QuestionPlace<'a>> {
    let mut number = 0;
    for section in &guide.sections {
        for question in &section.questions {
            number += 1;
            if question.id == question_id {
                return Some(QuestionPlace {
                    number,
                    section,
                    question,
                });
            }
        }
    }
    None
}

/// The records read into the study's shape.
pub(crate) struct Study<'a> {
    pub(crate) input: &'a ExportInput<'a>,
    pub(crate) participants: Vec<Item<'a, ParticipantBody>>,
    pub(crate) visits: Vec<Item<'a, VisitBody>>,
    pub(crate) consents: Vec<Item<'a, ConsentBody>>,
    pub(crate) notes: Vec<Item<'a, InterviewNoteBody>>,
    pub(crate) responses: Vec<Item<'a, ActivityResponseBody>>,
    pub(crate) assents: Vec<Item<'a, AssentBody>>,
    pub(crate) reflections: Vec<Item<'a, ReflectionBody>>,
    pub(crate) attachments: Vec<Item<'a, AttachmentBody>>,
    pub(crate) unreadable: Vec<Unreadable>,
    /// The newest protocol: the tables' value labels come from it.
    pub(crate) protocol: &'a Protocol,
    /// Each participant's code by id.
    codes: HashMap<String, String>,
    /// Each participant's latest consent, read against the form it was given on.
    latest_consent: HashMap<String, usize>,
    outcomes: Vec<Result<ConsentOutcome, UnknownConsentForm>>,
}

impl<'a> Study<'a> {
    fn of(input: &'a ExportInput<'a>) -> Result<Self, ExportError> {
        let newest = *input.protocols.last().ok_or(ExportError::NoProtocol)?;
        let mut study = Study {
            input,
            participants: Vec::new(),
            visits: Vec::new(),
            consents: Vec::new(),
            notes: Vec::new(),
            responses: Vec::new(),
            assents: Vec::new(),
            reflections: Vec::new(),
            attachments: Vec::new(),
            unreadable: Vec::new(),
            protocol: newest,
            codes: HashMap::new(),
            latest_consent: HashMap::new(),
            outcomes: Vec::new(),
        };
        let mut records: Vec<&ExportRecord> = input.records.iter().collect();
        // Record ids are UUIDv7: creation order, the same every time.
        records.sort_by_key(|r| r.revision.record_id);
        for record in records {
            let protocol = record
                .revision
                .protocol
                .as_ref()
                .and_then(|reference| input.protocols.iter().find(|p| p.is(reference)))
                .copied()
                .unwrap_or(newest);
            match record.revision.kind {
                Kind::Participant => study.read(record, protocol, |s| &mut s.participants),
                Kind::Visit => study.read(record, protocol, |s| &mut s.visits),
                Kind::Consent => study.read(record, protocol, |s| &mut s.consents),
                Kind::InterviewNote => study.read(record, protocol, |s| &mut s.notes),
                Kind::ActivityResponse => study.read(record, protocol, |s| &mut s.responses),
                Kind::Assent => study.read(record, protocol, |s| &mut s.assents),
                Kind::Reflection => study.read(record, protocol, |s| &mut s.reflections),
                Kind::Attachment => study.read(record, protocol, |s| &mut s.attachments),
                // Field notes are the fieldworker's own notebook; withdrawals and purges
                // are in the manifest and records.json.
                _ => {}
            }
        }
        for p in &study.participants {
            study.codes.insert(p.id(), p.body.code.clone());
        }
        study
            .participants
            .sort_by(|a, b| (&a.body.code, a.id()).cmp(&(&b.body.code, b.id())));
        study
            .visits
            .sort_by_key(|v| (v.body.date, v.revision().record_id));
        for (index, consent) in study.consents.iter().enumerate() {
            let participant = consent.participant_id();
            let newer = study
                .latest_consent
                .get(&participant)
                .is_none_or(|&i| study.consents[i].revision().time <= consent.revision().time);
            if newer {
                study.latest_consent.insert(participant, index);
            }
            study.outcomes.push(consent::evaluate_given(
                &consent.body,
                input.protocols.iter().copied(),
            ));
        }
        Ok(study)
    }

    fn read<T: DeserializeOwned>(
        &mut self,
        record: &'a ExportRecord,
        protocol: &'a Protocol,
        list: impl FnOnce(&mut Self) -> &mut Vec<Item<'a, T>>,
    ) {
        match serde_json::from_slice::<T>(&record.revision.body) {
            Ok(body) => list(self).push(Item {
                record,
                body,
                protocol,
            }),
            Err(error) => self.unreadable.push(Unreadable {
                record_id: record.revision.record_id.to_string(),
                kind: record.revision.kind,
                reason: error.to_string(),
            }),
        }
    }

    /// The code of participant `id`: from their participant record, else the envelope's.
    pub(crate) fn code_of<T>(&self, item: &Item<'_, T>) -> String {
        self.codes
            .get(&item.participant_id())
            .cloned()
            .or_else(|| item.record.participant_code.clone())
            .unwrap_or_default()
    }

    pub(crate) fn participant(&self, id: &str) -> Option<&Item<'a, ParticipantBody>> {
        self.participants.iter().find(|p| p.id() == id)
    }

    pub(crate) fn visit(&self, id: &str) -> Option<&Item<'a, VisitBody>> {
        self.visits.iter().find(|v| v.id() == id)
    }

    /// The participant's latest consent and what it allows.
    pub(crate) fn latest_consent(
        &self,
        participant_id: &str,
    ) -> Option<(
        &Item<'a, ConsentBody>,
        &Result<ConsentOutcome, UnknownConsentForm>,
    )> {
        let &index = self.latest_consent.get(participant_id)?;
        Some((&self.consents[index], &self.outcomes[index]))
    }

    /// Whether `note` is flagged as a quote its participant did not agree to.
    pub(crate) fn quote_not_agreed(&self, note: &Item<'_, InterviewNoteBody>) -> bool {
        let consent = self
            .latest_consent(&note.participant_id())
            .map(|(_, outcome)| outcome);
        consent::quote_not_agreed(&note.body, consent)
    }

    /// A note's marks in words, as printed after it in the documents: its flags, "Not agreed
    /// for quotes", and where it is in the recording, e.g. `[Quote] [At 0:01:35 in the
    /// recording]`.
    pub(crate) fn note_marks(&self, note: &Item<'_, InterviewNoteBody>) -> String {
        let mut marks: Vec<String> = crate::fieldwork::NoteFlag::ALL
            .iter()
            .filter(|f| note.body.has_flag(**f))
            .map(|f| format!("[{}]", f.label()))
            .collect();
        if self.quote_not_agreed(note) {
            marks.push("[Not agreed for quotes]".to_owned());
        }
        if let Some(ms) = note.body.started_at_ms {
            marks.push(format!("[At {} in the recording]", clock(ms)));
        }
        marks.join(" ")
    }

    /// How many visits participant `id` was present at.
    pub(crate) fn visit_count(&self, id: &str) -> usize {
        self.visits
            .iter()
            .filter(|v| v.body.participants.iter().any(|x| x.to_string() == id))
            .count()
    }

    /// The codes of the participants `body` links to (the id where one is not exported).
    pub(crate) fn linked_codes(&self, body: &ParticipantBody) -> Vec<String> {
        body.links
            .iter()
            .map(|l| {
                self.participant(&l.to_string())
                    .map_or_else(|| l.to_string(), |linked| linked.body.code.clone())
            })
            .collect()
    }

    /// Every interview, by participant code, then date.
    pub(crate) fn interviews(&self) -> Vec<Interview<'_>> {
        let mut grouped: BTreeMap<(String, String, String), Vec<&Item<'a, InterviewNoteBody>>> =
            BTreeMap::new();
        for note in &self.notes {
            grouped
                .entry((
                    note.participant_id(),
                    note.visit_id(),
                    note.body.guide_id.clone(),
                ))
                .or_default()
                .push(note);
        }
        let mut interviews: Vec<Interview<'_>> = grouped
            .into_iter()
            .map(|((participant_id, visit_id, guide_id), mut notes)| {
                let protocol = notes[0].protocol;
                let guide = protocol
                    .guide(&guide_id)
                    .or_else(|| self.protocol.guide(&guide_id));
                let order = |note: &Item<'_, InterviewNoteBody>| {
                    let number = guide
                        .zip(note.body.question_id.as_deref())
                        .and_then(|(g, q)| question_place(g, q))
                        .map_or(usize::MAX, |place| place.number);
                    (number, note.body.updated, note.revision().record_id)
                };
                notes.sort_by_key(|note| order(note));
                let date = self
                    .visit(&visit_id)
                    .map(|v| v.body.date)
                    .or_else(|| notes.iter().map(|n| n.body.updated).min())
                    .unwrap_or(Timestamp(0));
                let recording = self
                    .attachments
                    .iter()
                    .filter(|a| {
                        a.body.media_type.starts_with("audio/")
                            && a.participant_id() == participant_id
                            && a.visit_id() == visit_id
                            && a.record.file.is_some()
                    })
                    .max_by_key(|a| a.body.duration_ms.unwrap_or(0));
                Interview {
                    code: self.code_of(notes[0]),
                    participant_id,
                    visit_id,
                    date,
                    guide_id,
                    guide,
                    notes,
                    recording,
                    stem: String::new(),
                }
            })
            .collect();
        interviews.sort_by(|a, b| {
            (&a.code, a.date, &a.participant_id, &a.visit_id, &a.guide_id).cmp(&(
                &b.code,
                b.date,
                &b.participant_id,
                &b.visit_id,
                &b.guide_id,
            ))
        });
        let mut counts: HashMap<String, usize> = HashMap::new();
        for interview in &mut interviews {
            let base = format!(
                "{}-{}",
                path_segment(&interview.code),
                interview.date.date_utc()
            );
            let n = counts.entry(base.clone()).or_default();
            *n += 1;
            interview.stem = format!("{base}-{n}");
        }
        interviews
    }
}

/// `text` as one safe path segment (a participant code in a file or folder name): ASCII
/// letters, digits, `-` and `_` kept, anything else `_`, so nothing can leave the folder it is
/// put in; `unnamed` when nothing but `_` would be left.
pub fn path_segment(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.chars().all(|c| c == '_') {
        "unnamed".to_owned()
    } else {
        safe
    }
}

/// A GUID (8-4-4-4-12 hex) derived from `parts`, the same for the same data in every export,
/// so a re-imported project matches the earlier one.
pub(crate) fn guid(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"attune.export.guid.v1");
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // UUID version 8 (custom), RFC 9562 variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// Milliseconds as `h:mm:ss`, e.g. `0:03:07`.
pub(crate) fn clock(millis: u64) -> String {
    let seconds = millis / 1000;
    format!(
        "{}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests;
