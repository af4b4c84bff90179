//! The bodies of fieldwork records (participants, visits, consent, interview notes,
//! reflections, withdrawals, attachments) and the dashboard's progress against the
//! protocol's recruitment targets.
//!
//! Each body is serialised as JSON and stored as a [`Revision`] body of the matching
//! [`Kind`]. Bodies accept unknown fields and fill missing optional ones, so a record
//! written by a newer version of the app can still be read by an older one.
//!
//! [`Revision`]: crate::Revision
//! [`Kind`]: crate::Kind

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::consent::ConsentAnswers;
use crate::ids::{BlobId, ParticipantId, RecordId};
use crate::protocol::{Activity, Protocol};
use crate::time::Timestamp;

/// Whether a participant is still taking part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantStatus {
    /// Taking part.
    #[default]
    Active,
    /// Withdrew (see the [`WithdrawalBody`] record). Their code is never given out again.
    Withdrawn,
}

/// A participant ([`Kind::Participant`](crate::Kind::Participant)).
///
/// There is no name to write here: a participant record is synced, and real names never
/// leave the device. The app keeps an optional name for each participant in device-only
/// storage (sealed by the vault, never in a record).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantBody {
    /// The pseudonymous code, e.g. `C07`, reserved for the device by the server, or a
    /// provisional label such as `C-new-1` until a sync confirms one (see [`crate::codes`]).
    pub code: String,
    /// The protocol group id, e.g. `carers`.
    pub group: String,
    /// A real name that builds before device-only names wrote into the record. Read from
    /// old revisions only, so the sync engine can hold them back; never serialised, so no
    /// new revision carries it. Leave it `None`.
    #[serde(default, skip_serializing)]
    pub name: Option<String>,
    /// Linked participants: a child's carer, a professional's manager.
    #[serde(default)]
    pub links: Vec<ParticipantId>,
    /// Whether the participant is still taking part.
    #[serde(default)]
    pub status: ParticipantStatus,
}

impl fmt::Debug for ParticipantBody {
    // A legacy name is personal data: never print it, so it cannot end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParticipantBody")
            .field("code", &self.code)
            .field("group", &self.group)
            .field("name", &self.name.as_ref().map(|_| "<hidden>"))
            .field("links", &self.links)
            .field("status", &self.status)
            .finish()
    }
}

impl ParticipantBody {
    /// Whether the participant is still taking part.
    pub fn is_active(&self) -> bool {
        self.status == ParticipantStatus::Active
    }
}

/// A visit ([`Kind::Visit`](crate::Kind::Visit)): a session with one or more participants.
/// The fieldworker is the revision's author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitBody {
    /// When the visit takes place.
    pub date: Timestamp,
    /// The protocol place type id, e.g. `home`.
    pub place_type: String,
    /// The participants present.
    #[serde(default)]
    pub participants: Vec<ParticipantId>,
    /// When the fieldworker closed the visit; `None` while open.
    #[serde(default)]
    pub closed: Option<Timestamp>,
    /// When the fieldworker acknowledged the safeguarding steps for the visit's flagged
    /// items; `None` if not (yet) acknowledged.
    #[serde(default)]
    pub safeguarding_acknowledged: Option<Timestamp>,
}

impl VisitBody {
    /// Whether the visit can be closed: a visit with a safeguarding flag must have the
    /// safeguarding steps acknowledged first.
    pub fn may_close(&self, has_safeguarding_flags: bool) -> bool {
        !has_safeguarding_flags || self.safeguarding_acknowledged.is_some()
    }
}

/// How an adult signed a consent form.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsentSignature {
    /// A signature drawn on screen, as a PNG.
    Drawn {
        /// The PNG image, base64-encoded.
        png_base64: String,
    },
    /// Verbal consent, witnessed by the fieldworker.
    VerbalWitnessed {
        /// Why the participant did not sign (e.g. "remote interview", "prefers not to
        /// write").
        reason: String,
    },
}

impl fmt::Debug for ConsentSignature {
    // A signature image is long and personal: show only its size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsentSignature::Drawn { png_base64 } => f
                .debug_struct("Drawn")
                .field("png_base64", &format_args!("<{} chars>", png_base64.len()))
                .finish(),
            ConsentSignature::VerbalWitnessed { reason } => f
                .debug_struct("VerbalWitnessed")
                .field("reason", reason)
                .finish(),
        }
    }
}

/// An adult's consent ([`Kind::Consent`](crate::Kind::Consent)). The participant, time and
/// fieldworker are the revision's links and authorship.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentBody {
    /// The protocol consent form id, e.g. `consent-carers`.
    pub form_id: String,
    /// The form version shown to the participant, e.g. `1.0, 2026-09-01`.
    pub form_version: String,
    /// The answer to each item.
    pub answers: ConsentAnswers,
    /// How the participant signed.
    pub signature: ConsentSignature,
    /// The form exactly as it was shown (items, wording, roles), kept with the answers so
    /// what the consent allows is always read against the form it was given on
    /// ([`crate::consent::form_given_on`]), whatever protocol is in use later. Absent in
    /// consents recorded before it was kept: those are read against the protocol version
    /// with the same form id and version, if the device has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<crate::protocol::ConsentForm>,
}

/// A flag the fieldworker puts on an interview note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteFlag {
    /// Worth quoting.
    Quote,
    /// To follow up later.
    FollowUp,
    /// A safeguarding concern: shown at the top of the visit summary with the protocol's
    /// safeguarding steps, and synced first.
    Safeguarding,
}

impl NoteFlag {
    /// Every flag, in the order the interview screen shows them.
    pub const ALL: [NoteFlag; 3] = [NoteFlag::Quote, NoteFlag::FollowUp, NoteFlag::Safeguarding];

    /// The code in records and exports, e.g. `follow_up`.
    pub fn code(self) -> &'static str {
        match self {
            NoteFlag::Quote => "quote",
            NoteFlag::FollowUp => "follow_up",
            NoteFlag::Safeguarding => "safeguarding",
        }
    }

    /// In words, as on the interview screen.
    pub fn label(self) -> &'static str {
        match self {
            NoteFlag::Quote => "Quote",
            NoteFlag::FollowUp => "Follow up",
            NoteFlag::Safeguarding => "Safeguarding concern",
        }
    }
}

/// The fieldworker's notes for one interview question
/// ([`Kind::InterviewNote`](crate::Kind::InterviewNote)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterviewNoteBody {
    /// The protocol interview guide id.
    pub guide_id: String,
    /// The question id in that guide; `None` for free notes.
    #[serde(default)]
    pub question_id: Option<String>,
    /// What the fieldworker wrote.
    pub text: String,
    /// Flags on the note.
    #[serde(default)]
    pub flags: Vec<NoteFlag>,
    /// Where in the interview's audio recording the question started, in milliseconds from
    /// the start of the recording.
    #[serde(default)]
    pub started_at_ms: Option<u64>,
    /// When the note was last changed.
    pub updated: Timestamp,
}

impl InterviewNoteBody {
    /// Whether the note carries `flag`.
    pub fn has_flag(&self, flag: NoteFlag) -> bool {
        self.flags.contains(&flag)
    }

    /// Whether the note is flagged as a safeguarding concern.
    pub fn is_safeguarding(&self) -> bool {
        self.has_flag(NoteFlag::Safeguarding)
    }
}

/// A fieldworker's reflection after a visit ([`Kind::Reflection`](crate::Kind::Reflection)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReflectionBody {
    /// What the fieldworker wrote.
    pub text: String,
}

/// A participant's withdrawal ([`Kind::Withdrawal`](crate::Kind::Withdrawal)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalBody {
    /// Who withdrew.
    pub participant: ParticipantId,
    /// Whether the data collected so far may be kept (`false`: purge it everywhere).
    pub keep_data: bool,
    /// The reason, if the participant gave one (they do not have to).
    #[serde(default)]
    pub reason: Option<String>,
    /// When they withdrew.
    pub at: Timestamp,
}

/// The record id of a participant's **withdrawal request**: the [`WithdrawalBody`] with
/// `keep_data: false` made on the tablet when a participant asks for their data to be
/// withdrawn, which the study team confirms with a signed withdrawal.
///
/// It is derived from the participant id (SHA-256 under the domain tag
/// `attune.withdrawal-request.v1`, the first 16 bytes made a UUIDv8), so the server can tell,
/// without opening anything, that a withdrawal envelope is a request and whose: it computes
/// this id for every participant record it holds (a participant record's id is the
/// participant id) and compares. The server learns no more than the request needs; a
/// participant has one request record (asking again is its next revision).
pub fn withdrawal_request_record(participant: ParticipantId) -> RecordId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"attune.withdrawal-request.v1")
        .chain_update(participant.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // UUID version 8 (custom), RFC 9562 variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    RecordId::from_bytes(bytes)
}

/// The record that a withdrawn participant's data was purged from this device
/// ([`Kind::Purge`](crate::Kind::Purge)), made by the sync engine when a withdrawal reaches
/// the device, and synced like any other record.
///
/// It names the participant only in its body (id and code), not in its links: a record linked
/// to the participant would itself be purged by the next withdrawal purge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeBody {
    /// The withdrawn participant's pseudonymous code.
    pub participant_code: String,
    /// The withdrawn participant's id (absent in purges recorded before withdrawals named
    /// participants by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// The id of the server's control message that asked for the purge.
    pub message_id: i64,
    /// How many records (with all their revisions) were deleted.
    pub records: u64,
    /// How many attachment blobs were deleted.
    pub blobs: u64,
    /// When the purge was made.
    pub at: Timestamp,
}

/// An attachment's metadata ([`Kind::Attachment`](crate::Kind::Attachment)); the content is
/// the blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentBody {
    /// The blob holding the content.
    pub blob: BlobId,
    /// The media type, e.g. `audio/webm` or `image/png`.
    pub media_type: String,
    /// The content's size in bytes.
    pub bytes: u64,
    /// The length of audio or video, in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// How many chunks the blob is stored in.
    pub chunks: u32,
    /// The SHA-256 of the content as 64 lower-case hex digits, once known.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// One row of the dashboard: a group's progress against its recruitment target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProgress {
    /// The protocol group id.
    pub group_id: String,
    /// The group's display name.
    pub name: String,
    /// The recruitment target.
    pub target: u32,
    /// Active participants in the group.
    pub recruited: u32,
    /// Active participants with consent recorded (for children: assent).
    pub consented: u32,
    /// Active participants interviewed.
    pub interviewed: u32,
    /// Active participants who did at least one activity.
    pub activities_done: u32,
}

impl GroupProgress {
    /// How many more participants are needed to reach the target (0 once reached).
    pub fn remaining(&self) -> u32 {
        self.target.saturating_sub(self.recruited)
    }

    /// Whether the target is reached.
    pub fn target_reached(&self) -> bool {
        self.recruited >= self.target
    }
}

/// The dashboard's progress, one row per protocol group in protocol order.
///
/// `participants` are the participants known to the device, with their ids. `consented`,
/// `interviewed` and `activities` hold the ids of participants with at least one consent (or
/// assent), interview note, and activity response record. Withdrawn participants are not
/// counted at all, and participants of a group the protocol does not have are ignored.
pub fn progress(
    protocol: &Protocol,
    participants: &[(ParticipantId, ParticipantBody)],
    consented: &HashSet<ParticipantId>,
    interviewed: &HashSet<ParticipantId>,
    activities: &HashSet<ParticipantId>,
) -> Vec<GroupProgress> {
    let count = |ids: &[&ParticipantId], done: &HashSet<ParticipantId>| {
        let n = ids.iter().filter(|id| done.contains(id)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    protocol
        .groups
        .iter()
        .map(|group| {
            // Each participant once, even if listed twice.
            let mut seen = HashSet::new();
            let active: Vec<&ParticipantId> = participants
                .iter()
                .filter(|(id, body)| body.group == group.id && body.is_active() && seen.insert(id))
                .map(|(id, _)| id)
                .collect();
            GroupProgress {
                group_id: group.id.clone(),
                name: group.name.clone(),
                target: group.target,
                recruited: u32::try_from(active.len()).unwrap_or(u32::MAX),
                consented: count(&active, consented),
                interviewed: count(&active, interviewed),
                activities_done: count(&active, activities),
            }
        })
        .collect()
}

/// A child's answer to the assent question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssentAnswer {
    /// Yes: the activities may go on.
    Yes,
    /// Not sure: treated as no, kindly.
    NotSure,
    /// No.
    No,
}

impl AssentAnswer {
    /// Only a plain yes lets the activities go on.
    pub fn may_proceed(self) -> bool {
        self == AssentAnswer::Yes
    }

    /// In words for the fieldworker.
    pub fn label(self) -> &'static str {
        match self {
            AssentAnswer::Yes => "Yes",
            AssentAnswer::NotSure => "Not sure",
            AssentAnswer::No => "No",
        }
    }
}

/// A child's assent ([`Kind::Assent`](crate::Kind::Assent)): at the start of child mode
/// (`activity` is `None`) and again before each activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssentBody {
    /// What the child chose.
    pub answer: AssentAnswer,
    /// The activity about to start, for the re-check before each one.
    #[serde(default)]
    pub activity: Option<String>,
    /// When the child answered.
    #[serde(default)]
    pub time: Option<Timestamp>,
}

/// A child's answer to one prompt of an activity
/// ([`Kind::ActivityResponse`](crate::Kind::ActivityResponse)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityResponseBody {
    /// The protocol's activity id.
    pub activity_id: String,
    /// The prompt within the activity.
    pub prompt_id: String,
    /// The answer, shaped by the activity kind: `{"card": id}` for a face or one card,
    /// `{"cards": [ids]}` for cards picked in order, `{"placement": {card: column},
    /// "moves": [[card, column], ...]}` for the card sort, `{"strokes": [...], "png":
    /// base64}` for a drawing. `null` when skipped or stopped.
    #[serde(default)]
    pub answer: serde_json::Value,
    /// The child pressed the arrow.
    #[serde(default)]
    pub skipped: bool,
    /// The child pressed the red hand here.
    #[serde(default)]
    pub stopped: bool,
    /// When the answer was given.
    pub time: Timestamp,
    /// The fieldworker's notes of what the child said.
    #[serde(default)]
    pub notes: Option<String>,
    /// The child is still answering: the answer so far, kept as each card is placed so a
    /// tablet that dies mid-screen loses nothing. `false` once the child tapped Done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
}

impl ActivityResponseBody {
    /// A prompt the child skipped.
    pub fn skipped(activity_id: &str, prompt_id: &str, time: Timestamp) -> Self {
        ActivityResponseBody {
            activity_id: activity_id.into(),
            prompt_id: prompt_id.into(),
            answer: serde_json::Value::Null,
            skipped: true,
            stopped: false,
            time,
            notes: None,
            in_progress: false,
        }
    }

    /// Whether the child gave an answer (neither skipped nor stopped).
    pub fn answered(&self) -> bool {
        !self.skipped && !self.stopped && !self.answer.is_null()
    }

    /// How the prompt ended: answered, skipped, stopped here, or left unfinished (Done was
    /// never tapped).
    pub fn status(&self) -> ResponseStatus {
        if self.stopped {
            ResponseStatus::Stopped
        } else if self.skipped {
            ResponseStatus::Skipped
        } else if self.in_progress {
            ResponseStatus::Unfinished
        } else if self.answer.is_null() {
            ResponseStatus::NoAnswer
        } else {
            ResponseStatus::Answered
        }
    }

    /// The cards in the answer, in order, with the column each was placed in (card sort) or
    /// their place in the order chosen (picked, ranked or put in a house). A face or a single
    /// card is one choice at position 1. Empty for a drawing or no answer.
    pub fn card_choices(&self) -> Vec<CardChoice> {
        let a = &self.answer;
        if let Some(card) = a.get("card").and_then(|c| c.as_str()) {
            return vec![CardChoice {
                card: card.to_owned(),
                position: Some(1),
                column: None,
            }];
        }
        if let Some(list) = a.get("cards").and_then(|c| c.as_array()) {
            return list
                .iter()
                .filter_map(|c| c.as_str())
                .zip(1..)
                .map(|(card, position)| CardChoice {
                    card: card.to_owned(),
                    position: Some(position),
                    column: None,
                })
                .collect();
        }
        if let Some(placed) = a.get("placement").and_then(|p| p.as_object()) {
            // The sort's columns in their order on screen, then any other.
            let rank = |column: &str| {
                SORT_COLUMNS
                    .iter()
                    .position(|(id, _)| *id == column)
                    .unwrap_or(SORT_COLUMNS.len())
            };
            let mut choices: Vec<CardChoice> = placed
                .iter()
                .filter_map(|(card, column)| {
                    Some(CardChoice {
                        card: card.clone(),
                        position: None,
                        column: Some(column.as_str()?.to_owned()),
                    })
                })
                .collect();
            choices.sort_by_key(|c| rank(c.column.as_deref().unwrap_or("")));
            return choices;
        }
        Vec::new()
    }

    /// The number of strokes of a drawing; `None` when the answer is not a drawing.
    pub fn drawing_strokes(&self) -> Option<usize> {
        self.answer
            .get("strokes")
            .and_then(|s| s.as_array())
            .map(Vec::len)
    }

    /// The answer's codes, e.g. `happy`, `friends; school` (cards in order) or
    /// `good: friends; not-good: school` (card sort): what analysis software counts.
    pub fn answer_codes(&self) -> String {
        if let Some(strokes) = self.drawing_strokes() {
            return format!("drawing: {strokes} strokes");
        }
        self.card_choices()
            .iter()
            .map(|c| match &c.column {
                Some(column) => format!("{column}: {}", c.card),
                None => c.card.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The answer in words for the fieldworker and for analysis, with the cards' labels from
    /// `activity` (the id where a card is unknown), e.g. `Happy`, `Friends, School`, `Good:
    /// Friends; Not sure: -; Not good: School (3 moves)` or `A drawing (4 strokes)`, and how it
    /// ended when it was not simply answered (`skipped`, `stopped here`, `not finished: Done
    /// was not tapped`).
    pub fn answer_words(&self, activity: Option<&Activity>) -> String {
        let card = |id: &str| card_label(activity, id);
        let a = &self.answer;
        let text = if let Some(c) = a.get("card").and_then(|c| c.as_str()) {
            card(c)
        } else if let Some(list) = a.get("cards").and_then(|c| c.as_array()) {
            if list.is_empty() {
                "No cards chosen".into()
            } else {
                list.iter()
                    .filter_map(|c| c.as_str())
                    .map(card)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        } else if a.get("placement").and_then(|p| p.as_object()).is_some() {
            let moves = a
                .get("moves")
                .and_then(|m| m.as_array())
                .map_or(0, Vec::len);
            let choices = self.card_choices();
            let columns: Vec<String> = SORT_COLUMNS
                .iter()
                .map(|(id, name)| {
                    let cards: Vec<String> = choices
                        .iter()
                        .filter(|c| c.column.as_deref() == Some(*id))
                        .map(|c| card(&c.card))
                        .collect();
                    let cards = if cards.is_empty() {
                        "-".to_owned()
                    } else {
                        cards.join(", ")
                    };
                    format!("{name}: {cards}")
                })
                .collect();
            format!("{} ({})", columns.join("; "), counted(moves, "move"))
        } else if let Some(strokes) = self.drawing_strokes() {
            format!("A drawing ({})", counted(strokes, "stroke"))
        } else {
            "No answer".into()
        };
        let mut flags = Vec::new();
        if self.skipped {
            flags.push("skipped");
        }
        if self.stopped {
            flags.push("stopped here");
        }
        if self.in_progress {
            flags.push("not finished: Done was not tapped");
        }
        if flags.is_empty() {
            text
        } else if self.answered() || a.get("strokes").is_some() {
            format!("{text} ({})", flags.join(", "))
        } else {
            flags.join(", ")
        }
    }
}

/// `1 stroke`, `4 strokes`.
fn counted(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The card sort's columns, left to right: (id in the answer, words).
pub const SORT_COLUMNS: [(&str, &str); 3] = [
    ("good", "Good"),
    ("not-sure", "Not sure"),
    ("not-good", "Not good"),
];

/// The words of card `id` in `activity`: its label, or the id if the activity has no such
/// card (or is unknown).
pub fn card_label(activity: Option<&Activity>, id: &str) -> String {
    activity
        .and_then(|a| a.cards.iter().find(|c| c.id == id))
        .map_or_else(|| id.to_owned(), |c| c.label.clone())
}

/// How a prompt of an activity ended ([`ActivityResponseBody::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseStatus {
    /// The child answered and tapped Done (or picked a face or card).
    Answered,
    /// The child pressed the arrow.
    Skipped,
    /// The child pressed the red hand here.
    Stopped,
    /// The answer so far, kept while the child was answering: Done was never tapped.
    Unfinished,
    /// Neither answered, skipped nor stopped (an empty answer).
    NoAnswer,
}

impl ResponseStatus {
    /// Every status, in the order above.
    pub const ALL: [ResponseStatus; 5] = [
        ResponseStatus::Answered,
        ResponseStatus::Skipped,
        ResponseStatus::Stopped,
        ResponseStatus::Unfinished,
        ResponseStatus::NoAnswer,
    ];

    /// The code in exports, e.g. `stopped`.
    pub fn code(self) -> &'static str {
        match self {
            ResponseStatus::Answered => "answered",
            ResponseStatus::Skipped => "skipped",
            ResponseStatus::Stopped => "stopped",
            ResponseStatus::Unfinished => "unfinished",
            ResponseStatus::NoAnswer => "no_answer",
        }
    }

    /// In words.
    pub fn label(self) -> &'static str {
        match self {
            ResponseStatus::Answered => "Answered",
            ResponseStatus::Skipped => "Skipped",
            ResponseStatus::Stopped => "Stopped here (red hand)",
            ResponseStatus::Unfinished => "Not finished (Done not tapped)",
            ResponseStatus::NoAnswer => "No answer",
        }
    }
}

/// One card in a child's answer ([`ActivityResponseBody::card_choices`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardChoice {
    /// The card's id.
    pub card: String,
    /// Its place in the order chosen (1 = first); `None` in a card sort.
    pub position: Option<u32>,
    /// The card sort column it was placed in (`good`, `not-sure`, `not-good`).
    pub column: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::default_protocol;

    #[test]
    fn a_withdrawal_request_has_one_record_id_per_participant_never_the_participant_own() {
        let (a, b) = (
            ParticipantId::new(Timestamp(1)),
            ParticipantId::new(Timestamp(2)),
        );
        let id = withdrawal_request_record(a);
        assert_eq!(id, withdrawal_request_record(a), "the same on every device");
        assert_ne!(id, withdrawal_request_record(b));
        assert_ne!(id.as_bytes(), a.as_bytes());
        assert_eq!(id.as_uuid().get_version_num(), 8);
        // Fixed: the server computes it too, so it must never change.
        let fixed = ParticipantId::from_bytes([7; 16]);
        assert_eq!(
            withdrawal_request_record(fixed).to_string(),
            "39837574-6c6d-8335-b225-93e5d851a538"
        );
    }

    fn participant(n: i64, code: &str, group: &str) -> (ParticipantId, ParticipantBody) {
        (
            ParticipantId::new(Timestamp(1_700_000_000_000 + n)),
            ParticipantBody {
                code: code.into(),
                group: group.into(),
                name: None,
                links: vec![],
                status: ParticipantStatus::Active,
            },
        )
    }

    #[test]
    fn the_dashboard_counts_active_participants_per_group_against_the_targets() {
        let c1 = participant(1, "C01", "carers");
        let c2 = participant(2, "C02", "carers");
        let mut c3 = participant(3, "C03", "carers");
        c3.1.status = ParticipantStatus::Withdrawn;
        let k1 = participant(4, "K01", "children");
        let stray = participant(5, "X01", "no-such-group");
        let participants = vec![c1.clone(), c2.clone(), c3.clone(), k1.clone(), stray];
        let consented: HashSet<_> = [c1.0, c2.0, c3.0, k1.0].into();
        let interviewed: HashSet<_> = [c1.0, c3.0].into();
        let activities: HashSet<_> = [k1.0].into();

        let rows = progress(
            default_protocol(),
            &participants,
            &consented,
            &interviewed,
            &activities,
        );
        let ids: Vec<_> = rows.iter().map(|row| row.group_id.as_str()).collect();
        assert_eq!(ids, ["professionals", "managers", "carers", "children"]);

        let carers = &rows[2];
        assert_eq!(
            (
                carers.target,
                carers.recruited,
                carers.consented,
                carers.interviewed
            ),
            (9, 2, 2, 1),
            "the withdrawn carer C03 is not counted"
        );
        assert_eq!(carers.remaining(), 7);
        assert!(!carers.target_reached());
        let children = &rows[3];
        assert_eq!((children.recruited, children.activities_done), (1, 1));
        assert_eq!(rows[0].recruited, 0);
        assert_eq!(rows[0].remaining(), 12);
    }

    #[test]
    fn a_participant_listed_twice_counts_once() {
        let c1 = participant(1, "C01", "carers");
        let rows = progress(
            default_protocol(),
            &[c1.clone(), c1.clone()],
            &[c1.0].into(),
            &HashSet::new(),
            &HashSet::new(),
        );
        assert_eq!((rows[2].recruited, rows[2].consented), (1, 1));
    }

    #[test]
    fn a_participant_body_never_writes_a_name_and_an_old_one_is_read_but_not_printed() {
        let (_, body) = participant(1, "C01", "carers");
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains("name"), "{json}");
        let old: ParticipantBody = serde_json::from_str(
            r#"{"code":"C01","group":"carers","name":"Alex Example","links":[],"status":"active"}"#,
        )
        .unwrap();
        assert_eq!(old.name.as_deref(), Some("Alex Example"));
        assert!(!format!("{old:?}").contains("Alex"));
        assert!(!serde_json::to_string(&old).unwrap().contains("Alex"));
    }

    #[test]
    fn a_visit_with_a_safeguarding_flag_closes_only_after_acknowledgement() {
        let mut visit = VisitBody {
            date: Timestamp(1_700_000_000_000),
            place_type: "home".into(),
            participants: vec![],
            closed: None,
            safeguarding_acknowledged: None,
        };
        assert!(visit.may_close(false));
        assert!(!visit.may_close(true));
        visit.safeguarding_acknowledged = Some(Timestamp(1_700_000_100_000));
        assert!(visit.may_close(true));
    }

    #[test]
    fn record_bodies_read_back_as_written_and_tolerate_fields_from_newer_apps() {
        let consent = ConsentBody {
            form_id: "consent-carers".into(),
            form_version: "1.0, 2026-09-01".into(),
            answers: ConsentAnswers::default(),
            signature: ConsentSignature::VerbalWitnessed {
                reason: "remote interview".into(),
            },
            form: None,
        };
        let json = serde_json::to_string(&consent).unwrap();
        assert!(
            json.contains(r#""signature":{"kind":"verbal_witnessed","reason":"remote interview"}"#)
        );
        assert_eq!(serde_json::from_str::<ConsentBody>(&json).unwrap(), consent);

        let note: InterviewNoteBody = serde_json::from_str(
            r#"{"guide_id":"guide-carers","text":"Felt nervous at first","updated":5,
                "flags":["quote","follow_up"],"mood":"a field from a newer app"}"#,
        )
        .unwrap();
        assert_eq!(note.question_id, None);
        assert!(note.has_flag(NoteFlag::FollowUp));
        assert!(!note.is_safeguarding());

        let participant: ParticipantBody =
            serde_json::from_str(r#"{"code":"K01","group":"children"}"#).unwrap();
        assert_eq!(participant.status, ParticipantStatus::Active);
        assert!(participant.links.is_empty());
    }
    #[test]
    fn only_a_plain_yes_is_assent_and_child_bodies_read_back() {
        assert!(AssentAnswer::Yes.may_proceed());
        assert!(!AssentAnswer::NotSure.may_proceed());
        assert!(!AssentAnswer::No.may_proceed());
        let assent = AssentBody {
            answer: AssentAnswer::NotSure,
            activity: Some("drawing".into()),
            time: Some(Timestamp(5)),
        };
        let json = serde_json::to_string(&assent).unwrap();
        assert!(json.contains("\"not_sure\""));
        assert_eq!(serde_json::from_str::<AssentBody>(&json).unwrap(), assent);
        let old: AssentBody = serde_json::from_str(r#"{"answer":"yes","extra":1}"#).unwrap();
        assert_eq!(old.activity, None);

        let skip = ActivityResponseBody::skipped("card-sort", "sort", Timestamp(9));
        assert!(skip.skipped && !skip.answered());
        let answer = ActivityResponseBody {
            answer: serde_json::json!({"card": "happy"}),
            skipped: false,
            ..skip.clone()
        };
        assert!(answer.answered());
        let json = serde_json::to_string(&answer).unwrap();
        let back: ActivityResponseBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, answer);
        let minimal: ActivityResponseBody = serde_json::from_str(
            r#"{"activity_id":"a","prompt_id":"p","time":1,"new_field":true}"#,
        )
        .unwrap();
        assert!(!minimal.answered() && minimal.notes.is_none());
    }

    #[test]
    fn answers_read_in_codes_and_words() {
        let protocol = default_protocol();
        let response = |activity: &str, answer: serde_json::Value| ActivityResponseBody {
            answer,
            skipped: false,
            ..ActivityResponseBody::skipped(activity, "p", Timestamp(1))
        };
        let face = response("feelings-faces", serde_json::json!({"card": "happy"}));
        let faces = protocol.activity("feelings-faces");
        assert_eq!(face.answer_words(faces), "Happy");
        assert_eq!(face.answer_codes(), "happy");
        assert_eq!(face.status(), ResponseStatus::Answered);

        let houses = response(
            "three-houses",
            serde_json::json!({"cards": ["friends", "school"]}),
        );
        let activity = protocol.activity("three-houses");
        assert_eq!(houses.answer_words(activity), "Friends, School or nursery");
        assert_eq!(houses.card_choices()[1].position, Some(2));

        let sort = response(
            "card-sort",
            serde_json::json!({"placement": {"worker-visiting": "not-good", "being-filmed": "good",
                "home-now": "good"}, "moves": [["being-filmed", "good"], ["home-now", "good"],
                ["worker-visiting", "not-good"]]}),
        );
        let activity = protocol.activity("card-sort");
        let words = sort.answer_words(activity);
        assert!(words.starts_with("Good: "), "{words}");
        assert!(
            words.contains("Not sure: -; Not good: ") && words.ends_with("(3 moves)"),
            "{words}"
        );
        assert_eq!(
            sort.answer_codes(),
            "good: being-filmed; good: home-now; not-good: worker-visiting"
        );

        let mut unfinished = response("three-houses", serde_json::json!({"cards": ["friends"]}));
        unfinished.in_progress = true;
        assert_eq!(unfinished.status(), ResponseStatus::Unfinished);
        assert_eq!(
            unfinished.answer_words(None),
            "friends (not finished: Done was not tapped)",
            "an unknown activity shows card ids"
        );
        let mut stopped = ActivityResponseBody::skipped("drawing", "p", Timestamp(1));
        stopped.skipped = false;
        stopped.stopped = true;
        assert_eq!(stopped.status(), ResponseStatus::Stopped);
        assert_eq!(stopped.answer_words(None), "stopped here");
        let drawing = response(
            "drawing",
            serde_json::json!({"strokes": [[1], [2]], "png": "AAAA"}),
        );
        assert_eq!(drawing.answer_words(None), "A drawing (2 strokes)");
        let one = response(
            "drawing",
            serde_json::json!({"strokes": [[1]], "png": "AAAA"}),
        );
        assert_eq!(one.answer_words(None), "A drawing (1 stroke)");
        assert_eq!(drawing.answer_codes(), "drawing: 2 strokes");
    }
}
