//! The study as the console shows it: the server's sealed snapshot verified and opened in the
//! page with the study key (core's `review`), then read into participants, timelines and
//! safeguarding flags. Nothing here talks to the server.

use std::collections::BTreeMap;

use attune_core::fieldwork::{AttachmentBody, InterviewNoteBody, ParticipantBody, VisitBody};
use attune_core::protocol::{Protocol, default_protocol};
use attune_core::review::open::{Opened, OpenedConflict, OpenedRevision, Withdrawn, open_all};
use attune_core::review::team_records::{OpenedTeamRecords, Resolved, resolutions};
use attune_core::review::verify::{Devices, WithdrawalRequest, withdrawal_requests};
use attune_core::review::{Device, Snapshot, WithdrawalRecord};
use attune_core::{Kind, StudyPrivateKey, StudyVerifyingKey, Timestamp};
use serde::de::DeserializeOwned;

/// A record as the console shows it: its latest verified revision and its history.
#[derive(Clone, Debug)]
pub struct Record {
    /// The latest revision that verified.
    pub latest: OpenedRevision,
    /// Every verified revision, oldest first (device, time, author of each).
    pub history: Vec<OpenedRevision>,
    /// Whether every revision the server holds verified.
    pub verified: bool,
    /// The team's resolution of a conflict of this record, if any: the record reads as it
    /// says (the kept version, or the merged text) instead of its latest revision.
    pub resolved: Option<Resolved>,
}

impl Record {
    /// The current body read as `T`, if it reads: as resolved in the console if a conflict
    /// of the record was, otherwise the latest revision's.
    pub fn body<T: DeserializeOwned>(&self) -> Option<T> {
        let body = self
            .resolved
            .as_ref()
            .map_or(&self.latest.revision.body, |r| &r.body);
        serde_json::from_slice(body).ok()
    }

    /// The record id as text.
    pub fn id(&self) -> String {
        self.latest.revision.record_id.to_string()
    }

    /// The record's kind.
    pub fn kind(&self) -> Kind {
        self.latest.revision.kind
    }

    /// When the latest revision was made (the tablet's clock).
    pub fn time(&self) -> Timestamp {
        self.latest.revision.time
    }
}

/// A participant in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantRow {
    /// The participant id (the participant record's id).
    pub id: String,
    /// The pseudonymous code, e.g. `C01`.
    pub code: String,
    /// The group's display name.
    pub group: String,
    /// Still taking part.
    pub active: bool,
    /// Whether a consent (or assent) is recorded.
    pub consented: bool,
    /// Visits they were part of.
    pub visits: usize,
    /// Notes flagged as a safeguarding concern about them.
    pub safeguarding: usize,
}

/// A note flagged as a safeguarding concern.
#[derive(Clone, Debug)]
pub struct FlaggedNote {
    /// The note record.
    pub record: Record,
    /// Its body.
    pub note: InterviewNoteBody,
    /// The participant's code.
    pub code: String,
    /// The participant id.
    pub participant: String,
    /// The question the note answers, in the guide's words.
    pub question: Option<String>,
}

/// The opened study.
#[derive(Clone, Debug)]
pub struct Study {
    /// Every record, in creation order.
    pub records: Vec<Record>,
    /// The devices, as enrolled.
    pub devices: Vec<Device>,
    /// The built-in protocol, then every published version that parses.
    pub protocols: Vec<Protocol>,
    /// Revisions left out because they did not verify or open, with why.
    pub problems: Vec<String>,
    /// Envelopes left out because their participant withdrew.
    pub withdrawn_excluded: usize,
    /// Withdrawn participants.
    pub withdrawn: usize,
    /// Revisions the server kept beside their record's chain, verified and opened.
    pub conflicts: Vec<OpenedConflict>,
    /// Withdrawals the study team recorded (signed), newest first.
    pub withdrawals: Vec<WithdrawalRecord>,
    /// Withdrawal requests recorded on tablets, with whether the team confirmed them.
    pub requests: Vec<WithdrawalRequest>,
    /// The team's own records (acknowledgements, resolutions) that verified and opened, and
    /// those that did not (never used).
    pub team: OpenedTeamRecords,
}

impl Study {
    /// Verifies and opens `snapshot` with `key`; the team's records are checked with
    /// `signing` (the key file's study signing key, never the server's copy).
    pub fn open(
        snapshot: &Snapshot,
        key: &StudyPrivateKey,
        signing: Option<&StudyVerifyingKey>,
    ) -> Self {
        let devices = Devices::new(&snapshot.devices);
        let withdrawn = Withdrawn::of(&snapshot.withdrawals);
        let opened: Opened = open_all(
            &snapshot.envelopes,
            &snapshot.conflicts,
            &devices,
            &withdrawn,
            key,
        );
        let team = OpenedTeamRecords::open(&snapshot.team_records, signing, key);
        let mut resolved = resolutions(&opened, &team);
        let records = opened
            .histories()
            .into_iter()
            .filter_map(|(id, history)| {
                let latest = (*history.last()?).clone();
                Some(Record {
                    resolved: resolved.remove(&latest.revision.record_id),
                    latest,
                    history: history.into_iter().cloned().collect(),
                    verified: opened.record_verified(&id),
                })
            })
            .collect();
        let mut protocols = vec![default_protocol().clone()];
        protocols.extend(
            snapshot
                .protocols
                .iter()
                .filter_map(|json| Protocol::parse(json).ok()),
        );
        Study {
            records,
            devices: snapshot.devices.clone(),
            protocols,
            problems: opened
                .failed
                .iter()
                .map(|failed| {
                    format!(
                        "{} rev {}: {}",
                        failed.stored.envelope.kind.as_str(),
                        failed.stored.envelope.rev,
                        failed.problem
                    )
                })
                .collect(),
            withdrawn_excluded: opened.withdrawn_excluded,
            withdrawn: withdrawn.count(),
            conflicts: opened.conflicts.clone(),
            withdrawals: {
                let mut list = snapshot.withdrawals.clone();
                list.sort_by_key(|w| std::cmp::Reverse(w.created_at));
                list
            },
            requests: {
                let mut participants = snapshot.envelopes.clone();
                participants.extend(snapshot.conflicts.iter().map(|c| c.stored.clone()));
                withdrawal_requests(
                    &snapshot.envelopes,
                    &participants,
                    &devices,
                    &snapshot.withdrawals,
                )
            },
            team,
        }
    }

    /// The flagged notes no one in the team has acknowledged yet.
    pub fn unacknowledged(&self) -> usize {
        self.safeguarding()
            .iter()
            .filter(|f| {
                self.team
                    .acknowledgements(&f.record.latest.revision.record_id)
                    .is_empty()
            })
            .count()
    }

    /// A device's name by id (its id if it is not listed).
    pub fn device_name(&self, id: &str) -> String {
        self.devices
            .iter()
            .find(|d| d.id == id)
            .map_or_else(|| id.to_owned(), |d| d.name.clone())
    }

    /// A record by id.
    pub fn record(&self, id: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.id() == id)
    }

    /// The newest protocol: labels and steps come from it.
    pub fn protocol(&self) -> &Protocol {
        self.protocols.last().unwrap_or_else(|| default_protocol())
    }

    /// The protocol a record was captured under (the newest if it names none known).
    pub fn protocol_of(&self, record: &Record) -> &Protocol {
        record
            .latest
            .revision
            .protocol
            .as_ref()
            .and_then(|reference| self.protocols.iter().find(|p| p.is(reference)))
            .unwrap_or_else(|| self.protocol())
    }

    fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.kind() == kind)
    }

    /// A participant's code by id.
    pub fn codes(&self) -> BTreeMap<String, String> {
        self.of_kind(Kind::Participant)
            .filter_map(|r| Some((r.id(), r.body::<ParticipantBody>()?.code)))
            .collect()
    }

    /// The records about `participant`, oldest first: their own record, consents, notes,
    /// activities, recordings, and the visits they were part of.
    pub fn timeline(&self, participant: &str) -> Vec<&Record> {
        let mut items: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| {
                r.id() == participant
                    || r.latest
                        .revision
                        .participant
                        .is_some_and(|p| p.to_string() == participant)
                    || (r.kind() == Kind::Visit
                        && r.body::<VisitBody>().is_some_and(|v| {
                            v.participants.iter().any(|p| p.to_string() == participant)
                        }))
            })
            .collect();
        items.sort_by_key(|r| {
            r.history
                .first()
                .map(|h| h.revision.time)
                .unwrap_or(r.time())
        });
        items
    }

    /// The participants, by code.
    pub fn participants(&self) -> Vec<ParticipantRow> {
        let flagged = self.safeguarding();
        let mut rows: Vec<ParticipantRow> = self
            .of_kind(Kind::Participant)
            .filter_map(|r| {
                let body = r.body::<ParticipantBody>()?;
                let id = r.id();
                let timeline = self.timeline(&id);
                let group = self
                    .protocol()
                    .group(&body.group)
                    .map_or(body.group.clone(), |g| g.name.clone());
                Some(ParticipantRow {
                    consented: timeline
                        .iter()
                        .any(|t| matches!(t.kind(), Kind::Consent | Kind::Assent)),
                    visits: timeline.iter().filter(|t| t.kind() == Kind::Visit).count(),
                    safeguarding: flagged.iter().filter(|f| f.participant == id).count(),
                    active: body.is_active(),
                    code: body.code,
                    group,
                    id,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.code.cmp(&b.code));
        rows
    }

    /// Every note flagged as a safeguarding concern, newest first.
    pub fn safeguarding(&self) -> Vec<FlaggedNote> {
        let codes = self.codes();
        let mut flagged: Vec<FlaggedNote> = self
            .of_kind(Kind::InterviewNote)
            .filter_map(|r| {
                let note = r.body::<InterviewNoteBody>()?;
                if !note.is_safeguarding() {
                    return None;
                }
                let participant = r.latest.revision.participant?.to_string();
                let question = self.question_text(r, &note);
                Some(FlaggedNote {
                    code: codes
                        .get(&participant)
                        .cloned()
                        .unwrap_or_else(|| "?".into()),
                    participant,
                    question,
                    note,
                    record: r.clone(),
                })
            })
            .collect();
        flagged.sort_by_key(|f| std::cmp::Reverse(f.record.time()));
        flagged
    }

    /// The words of the question a note answers.
    pub fn question_text(&self, record: &Record, note: &InterviewNoteBody) -> Option<String> {
        let guide = self.protocol_of(record).guide(&note.guide_id)?;
        let question = guide.question(note.question_id.as_deref()?)?;
        Some(question.text.clone())
    }

    /// The audio recording made of `participant` in `visit`, if one arrived.
    pub fn recording(&self, participant: &str, visit: &str) -> Option<(&Record, AttachmentBody)> {
        self.of_kind(Kind::Attachment).find_map(|r| {
            let revision = &r.latest.revision;
            let same = revision
                .participant
                .is_some_and(|p| p.to_string() == participant)
                && revision.visit.is_some_and(|v| v.to_string() == visit);
            let body = r.body::<AttachmentBody>()?;
            (same && body.media_type.starts_with("audio/")).then_some((r, body))
        })
    }

    /// What looks unfinished: visits never closed, consents with no interview notes for a
    /// group that is interviewed, recordings whose file the server does not list.
    pub fn missing(&self) -> Vec<String> {
        let codes = self.codes();
        let code = |id: &str| codes.get(id).cloned().unwrap_or_else(|| "?".into());
        let mut missing = Vec::new();
        for visit in self.of_kind(Kind::Visit) {
            if let Some(body) = visit.body::<VisitBody>()
                && body.closed.is_none()
            {
                let who: Vec<String> = body
                    .participants
                    .iter()
                    .map(|p| code(&p.to_string()))
                    .collect();
                missing.push(format!(
                    "A visit on {} with {} was never closed.",
                    body.date.date_utc(),
                    who.join(", ")
                ));
            }
        }
        for participant in self.of_kind(Kind::Participant) {
            let Some(body) = participant.body::<ParticipantBody>() else {
                continue;
            };
            let interviewed = self.protocol().guide_for(&body.group).is_some();
            let timeline = self.timeline(&participant.id());
            let consented = timeline.iter().any(|r| r.kind() == Kind::Consent);
            let noted = timeline.iter().any(|r| r.kind() == Kind::InterviewNote);
            if interviewed && consented && !noted && body.is_active() {
                missing.push(format!(
                    "{} gave consent but has no interview notes yet.",
                    body.code
                ));
            }
        }
        missing
    }

    /// How many records of each kind arrived, for the overview.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for record in &self.records {
            *counts.entry(record.kind().as_str()).or_default() += 1;
        }
        counts
    }
}

/// `m:ss` for a time in a recording.
pub fn clock(ms: u64) -> String {
    let seconds = ms / 1000;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// A time as the console shows it: `2026-12-03 14:56 UTC`.
pub fn when(time: Timestamp) -> String {
    let text = time.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(clock)) => format!("{date} {clock} UTC"),
        _ => text,
    }
}

/// A revision's body as a person reads it: a note's or reflection's text, otherwise its JSON
/// laid out.
pub fn readable_body(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    match value.get("text").and_then(|t| t.as_str()) {
        Some(text) => text.to_owned(),
        None => serde_json::to_string_pretty(&value).unwrap_or_default(),
    }
}
