//! The study protocol as data: groups and targets, consent forms, interview guides, the
//! children's assent script and activities, safeguarding steps and place types, and the
//! video coding framework for practice recordings ([`CodingFramework`]).
//!
//! A protocol is a JSON file (see `docs/protocol.md` for the format field by field). Attune
//! ships one, the VIG evaluation ([`default_protocol`]); a study can load its own with
//! [`Protocol::parse`], which reads the JSON and then [`Protocol::validate`]s it. Unknown
//! fields are errors, so a typo in a hand-written file is caught instead of silently
//! ignored, and every error names the field it is about (`groups[2].code_prefix: ...`).
//!
//! Every record names the protocol id and version it was captured under
//! ([`Protocol::reference`]), so a newer version of a protocol never orphans older records.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::record::ProtocolRef;
use json_path::{byte_offset, quoted_field, scan_json_path};

mod codes;
mod coding;
#[cfg(test)]
mod coding_tests;
mod coding_validate;
pub mod diff;
mod json_path;
#[cfg(test)]
mod tests;
mod validate;

pub use codes::{next_code, parse_code};
pub use coding::{
    Code, CodeClass, CodingFramework, EventKind, MAX_RECORDINGS_PER_PROFESSIONAL, MAX_SCALE_POINTS,
    RatingItem, RatingScale, RecordingType, ScaleAnchor,
};

/// The JSON of the default protocol, the VIG evaluation (`crates/core/protocols/vig-evaluation.json`).
pub const DEFAULT_PROTOCOL_JSON: &str = include_str!("../../protocols/vig-evaluation.json");

/// The largest recruitment target a group can have.
pub const MAX_TARGET: u32 = 10_000;

/// A study protocol: everything the app needs to know about one study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Stable id, e.g. `vig-evaluation`. Stored with every record.
    pub id: String,
    /// Version number, 1 or more. A changed protocol gets a higher number; records keep the
    /// version they were captured under.
    pub version: u32,
    /// The study's title, shown on the dashboard.
    pub title: String,
    /// A sentence or two about the study.
    pub summary: String,
    /// The participant groups, in the order the dashboard shows them.
    pub groups: Vec<Group>,
    /// The adults' consent forms (a group names the one it uses).
    pub consent_forms: Vec<ConsentForm>,
    /// The interview topic guides (a group names the one it uses).
    pub interview_guides: Vec<InterviewGuide>,
    /// What is read aloud to a child before the activities.
    pub assent: AssentScript,
    /// The children's activities, in the order they are offered.
    pub activities: Vec<Activity>,
    /// What to do about a safeguarding concern.
    pub safeguarding: Safeguarding,
    /// Where visits can take place.
    pub place_types: Vec<PlaceType>,
    /// How practice recordings are coded, if the study codes any: code classes and codes,
    /// rating items and recording types. Left out of a protocol without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coding: Option<CodingFramework>,
}

/// A participant group with its recruitment target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Stable id, e.g. `carers`.
    pub id: String,
    /// Display name, e.g. `Carers`.
    pub name: String,
    /// The letter participant codes start with, e.g. `C` for `C07`: one uppercase letter
    /// A-Z, different for every group.
    pub code_prefix: String,
    /// How many participants the study aims to recruit (1 to [`MAX_TARGET`]).
    pub target: u32,
    /// The id of the consent form this group signs; `None` for children, who give assent.
    pub consent_form: Option<String>,
    /// The id of the interview guide used with this group, if they are interviewed.
    pub interview_guide: Option<String>,
    /// Whether this group does the children's activities (child mode).
    pub takes_part_in_activities: bool,
    /// The group a participant of this group is linked to: a child to their carer, a
    /// professional to their manager.
    pub links_to: Option<String>,
}

/// An adult consent form: a list of separate yes/no items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentForm {
    /// Stable id, e.g. `consent-carers`.
    pub id: String,
    /// The version shown to the participant and stored with their answers, e.g.
    /// `1.2, 2026-09-01`.
    pub version: String,
    /// The form's title.
    pub title: String,
    /// The date until which a participant can ask for their data to be withdrawn, as shown
    /// to them (e.g. `31 March 2027`).
    pub withdrawal_deadline: Option<String>,
    /// The items, in the order they are asked.
    pub items: Vec<ConsentItem>,
    /// Earlier versions of this form whose consents must be given again on this version: a
    /// participant whose latest consent on this form was given on one of them needs
    /// re-consent ([`crate::consent::reconsent_needed`]). Their earlier consent still counts
    /// as it was given until then. Empty (the default): a consent on any earlier version
    /// stands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconsent_versions: Vec<String>,
}

/// One yes/no consent statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentItem {
    /// Stable id within the form, e.g. `audio-recording`.
    pub id: String,
    /// The statement the participant agrees to or not.
    pub text: String,
    /// Whether a "no" means the participant cannot take part.
    pub required: bool,
    /// What the app does with the answer beyond recording it. Defaults to
    /// [`ConsentRole::Plain`].
    #[serde(default)]
    pub role: ConsentRole,
}

/// What the app does with a consent item's answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentRole {
    /// Only recorded.
    #[default]
    Plain,
    /// "Yes" allows the interview to be audio recorded; "no" means a notes-only interview.
    AudioRecording,
    /// "Yes" allows the participant's child to be invited (carers).
    ChildInvitation,
    /// "Yes" means the participant shares practice recordings for coding (professionals).
    PracticeRecordings,
    /// "Yes" allows anonymised data to be kept for future research.
    FutureUse,
    /// "Yes" allows anonymised direct quotes from the interview in reports; with "no", a note
    /// flagged as a quote is marked "Not agreed for quotes" in the app and in exports.
    Quotes,
    /// "Yes" allows the VIG practice with the participant's family to be filmed and the films
    /// watched and coded by the research team (carers).
    Filming,
}

impl ConsentRole {
    /// The role's name in the protocol file, e.g. `audio_recording`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentRole::Plain => "plain",
            ConsentRole::AudioRecording => "audio_recording",
            ConsentRole::ChildInvitation => "child_invitation",
            ConsentRole::PracticeRecordings => "practice_recordings",
            ConsentRole::FutureUse => "future_use",
            ConsentRole::Quotes => "quotes",
            ConsentRole::Filming => "filming",
        }
    }
}

/// A semi-structured interview topic guide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterviewGuide {
    /// Stable id, e.g. `guide-carers`.
    pub id: String,
    /// The guide's title.
    pub title: String,
    /// The sections, in the suggested order (questions can be asked in any order).
    pub sections: Vec<GuideSection>,
}

/// A group of related questions in an interview guide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuideSection {
    /// Stable id within the guide.
    pub id: String,
    /// The section's heading.
    pub title: String,
    /// The questions in this section.
    pub questions: Vec<Question>,
}

/// An interview question; the fieldworker's notes are kept per question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable id, unique within the whole guide (notes refer to it).
    pub id: String,
    /// The question as the fieldworker might ask it.
    pub text: String,
    /// Follow-up prompts to draw out more detail.
    #[serde(default)]
    pub probes: Vec<String>,
}

/// What is read aloud (and shown to the fieldworker) before a child's activities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssentScript {
    /// Sentences read aloud one after another: who we are, what we will do, no right
    /// answers, stop or skip any time.
    pub intro: Vec<String>,
    /// The question the child answers with yes / not sure / no.
    pub question: String,
    /// The question asked again at the start of each activity.
    pub recheck: String,
}

/// A children's activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    /// Stable id, e.g. `card-sort`.
    pub id: String,
    /// Which screen runs it.
    pub kind: ActivityKind,
    /// The activity's title (for the fieldworker).
    pub title: String,
    /// What the child is asked, read aloud, in order.
    pub prompts: Vec<Prompt>,
    /// Picture cards the child sorts, places or picks (faces for feelings faces).
    #[serde(default)]
    pub cards: Vec<Card>,
}

/// The kinds of children's activity the app can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A prompt and a row of faces from very happy to very sad, plus "don't know".
    FeelingsFaces,
    /// Picture cards sorted onto Good / Not sure / Not good (Talking Mats style).
    CardSort,
    /// A canvas with a few thick colours and an eraser.
    Drawing,
    /// House of good things, house of worries, house of dreams.
    ThreeHouses,
    /// Diamond ranking of cards, or one card for "if you had a magic wand".
    MagicWand,
}

/// One thing a child is asked in an activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// Stable id within the activity (responses refer to it).
    pub id: String,
    /// The words read aloud and shown to the fieldworker.
    pub text: String,
}

/// A picture card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Stable id within the activity (responses refer to it).
    pub id: String,
    /// The words read aloud for the card.
    pub label: String,
    /// The name of the pictogram the app draws, e.g. `camera`.
    pub picture: String,
}

/// What to do when a fieldworker flags a safeguarding concern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Safeguarding {
    /// The steps, in order, shown at the top of the visit summary.
    pub steps: Vec<String>,
    /// Who to call.
    pub contact: String,
    /// By when.
    pub deadline: String,
}

/// A kind of place a visit can happen in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceType {
    /// Stable id, e.g. `home`.
    pub id: String,
    /// Display label, e.g. `Family home`.
    pub label: String,
}

/// A problem with a protocol file: where it is and what is wrong.
///
/// Displayed as `path: message`, e.g.
/// `groups[2].target: bad target 0 (must be 1 to 10000)`; just the message when the path is
/// empty (a problem with the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// Where the problem is, e.g. `groups[2].code_prefix`; empty for the whole file.
    pub path: String,
    /// What is wrong. For a JSON error, serde's message with the line and column.
    pub message: String,
}

impl ProtocolError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Wraps a JSON error from reading `json`, working out the path of the field it is
    /// about from the error's line and column.
    fn from_json(json: &str, error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let offset = byte_offset(json, error.line(), error.column());
        let scan = scan_json_path(json, offset);
        let path = if let Some(field) = quoted_field(&message, "missing field `") {
            join(&scan.path_of_open_object(), field)
        } else if let Some(field) = quoted_field(&message, "unknown field `") {
            join(&scan.path_of_open_object(), field)
        } else {
            scan.path()
        };
        Self { path, message }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ProtocolError {}

impl Protocol {
    /// Reads a protocol from JSON and validates it.
    ///
    /// # Errors
    /// The JSON error (with the field's path, line and column) if the file does not match the
    /// format, otherwise the first problem [`Protocol::validate`] finds. Use
    /// [`Protocol::parse_all`] to get every validation problem at once.
    pub fn parse(json: &str) -> Result<Protocol, ProtocolError> {
        Self::parse_all(json).map_err(|mut errors| {
            if errors.is_empty() {
                ProtocolError::new("", "invalid protocol")
            } else {
                errors.swap_remove(0)
            }
        })
    }

    /// Reads a protocol from JSON and validates it, reporting every problem.
    ///
    /// # Errors
    /// A single JSON error if the file does not match the format (reading stops at the first
    /// one), otherwise every problem [`Protocol::validate`] finds (never empty).
    pub fn parse_all(json: &str) -> Result<Protocol, Vec<ProtocolError>> {
        let protocol: Protocol = serde_json::from_str(json)
            .map_err(|error| vec![ProtocolError::from_json(json, &error)])?;
        protocol.validate()?;
        Ok(protocol)
    }

    /// The group with this id.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|group| group.id == id)
    }

    /// The group whose participant codes start with `prefix` (e.g. `'C'` for carers).
    pub fn group_by_prefix(&self, prefix: char) -> Option<&Group> {
        self.groups
            .iter()
            .find(|group| group.code_prefix.chars().eq(std::iter::once(prefix)))
    }

    /// The group a participant code such as `C07` belongs to.
    pub fn group_of_code(&self, code: &str) -> Option<&Group> {
        parse_code(code).and_then(|(prefix, _)| self.group_by_prefix(prefix))
    }

    /// The consent form with this id.
    pub fn consent_form(&self, id: &str) -> Option<&ConsentForm> {
        self.consent_forms.iter().find(|form| form.id == id)
    }

    /// The consent form a group signs; `None` for an unknown group or one without a form
    /// (children give assent instead).
    pub fn consent_form_for(&self, group_id: &str) -> Option<&ConsentForm> {
        self.group(group_id)?
            .consent_form
            .as_deref()
            .and_then(|id| self.consent_form(id))
    }

    /// The interview guide with this id.
    pub fn guide(&self, id: &str) -> Option<&InterviewGuide> {
        self.interview_guides.iter().find(|guide| guide.id == id)
    }

    /// The interview guide used with a group; `None` for an unknown group or one that is not
    /// interviewed.
    pub fn guide_for(&self, group_id: &str) -> Option<&InterviewGuide> {
        self.group(group_id)?
            .interview_guide
            .as_deref()
            .and_then(|id| self.guide(id))
    }

    /// The activity with this id.
    pub fn activity(&self, id: &str) -> Option<&Activity> {
        self.activities.iter().find(|activity| activity.id == id)
    }

    /// The place type with this id.
    pub fn place_type(&self, id: &str) -> Option<&PlaceType> {
        self.place_types.iter().find(|place| place.id == id)
    }

    /// The protocol id and version, as stored with every record captured under it.
    pub fn reference(&self) -> ProtocolRef {
        ProtocolRef {
            id: self.id.clone(),
            version: self.version,
        }
    }

    /// Whether this is the protocol (id and version) a record names.
    pub fn is(&self, reference: &ProtocolRef) -> bool {
        self.id == reference.id && self.version == reference.version
    }

    /// The first consent form of this protocol whose items differ from the form with the same
    /// id and version in `earlier`: consents name their form by id and version, so a changed
    /// form must get a new version.
    pub fn consent_form_changed_from(&self, earlier: &Protocol) -> Option<&ConsentForm> {
        self.consent_forms.iter().find(|form| {
            earlier.consent_forms.iter().any(|old| {
                old.id == form.id && old.version == form.version && old.items != form.items
            })
        })
    }

    /// Checks a protocol update received from the server against this protocol (the one in
    /// use): it must be a valid protocol file, of the same protocol id, with a higher version.
    /// The device then keeps the returned protocol; records already made keep naming the
    /// version they were made under.
    ///
    /// # Errors
    /// Why the update is refused ([`UpdateRefused`]); the device keeps using this protocol.
    pub fn check_update(&self, json: &str) -> Result<Protocol, UpdateRefused> {
        let update = Protocol::parse(json).map_err(UpdateRefused::Invalid)?;
        if update.id != self.id {
            return Err(UpdateRefused::OtherProtocol {
                id: update.id,
                current: self.id.clone(),
            });
        }
        if update.version <= self.version {
            return Err(UpdateRefused::NotNewer {
                version: update.version,
                current: self.version,
            });
        }
        // A consent form is known by its id and version (consents name them): a change to
        // its items under the same version would change what earlier consents mean.
        if let Some(form) = update.consent_form_changed_from(self) {
            return Err(UpdateRefused::ConsentFormChanged {
                form_id: form.id.clone(),
                form_version: form.version.clone(),
            });
        }
        Ok(update)
    }
}

/// Why a protocol update is not applied ([`Protocol::check_update`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateRefused {
    /// The file is not a valid protocol.
    #[error("the protocol update is invalid: {0}")]
    Invalid(ProtocolError),
    /// The update is for another study's protocol.
    #[error("the protocol update is for {id:?}, but this tablet uses {current:?}")]
    OtherProtocol {
        /// The update's protocol id.
        id: String,
        /// The protocol id in use.
        current: String,
    },
    /// The update changes the items of a consent form but keeps its version: consents name
    /// the form by id and version, so a changed form needs a new version.
    #[error(
        "the protocol update changes the items of consent form {form_id:?} but keeps its \
         version {form_version:?}: give the changed form a new version"
    )]
    ConsentFormChanged {
        /// The form's id.
        form_id: String,
        /// The version it keeps.
        form_version: String,
    },
    /// The update's version is not higher than the one in use (an old or repeated message).
    #[error("the protocol update is version {version}, not newer than version {current} in use")]
    NotNewer {
        /// The update's version.
        version: u32,
        /// The version in use.
        current: u32,
    },
}

impl ConsentForm {
    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&ConsentItem> {
        self.items.iter().find(|item| item.id == id)
    }

    /// The first item with this role (e.g. the audio recording item), if the form has one.
    pub fn item_with_role(&self, role: ConsentRole) -> Option<&ConsentItem> {
        self.items.iter().find(|item| item.role == role)
    }
}

impl InterviewGuide {
    /// The question with this id, in any section.
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions().find(|question| question.id == id)
    }

    /// Every question of the guide, section by section.
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.sections
            .iter()
            .flat_map(|section| section.questions.iter())
    }
}

impl Activity {
    /// The prompt with this id.
    pub fn prompt(&self, id: &str) -> Option<&Prompt> {
        self.prompts.iter().find(|prompt| prompt.id == id)
    }

    /// The card with this id.
    pub fn card(&self, id: &str) -> Option<&Card> {
        self.cards.iter().find(|card| card.id == id)
    }
}

/// The protocol Attune ships with: the VIG evaluation ([`DEFAULT_PROTOCOL_JSON`]), read once.
pub fn default_protocol() -> &'static Protocol {
    static DEFAULT: OnceLock<Protocol> = OnceLock::new();
    DEFAULT.get_or_init(|| match Protocol::parse(DEFAULT_PROTOCOL_JSON) {
        Ok(protocol) => protocol,
        // Tested by `the_default_protocol_is_the_vig_study`; reaching this is a build mistake.
        Err(error) => panic!("the embedded protocols/vig-evaluation.json is invalid: {error}"),
    })
}

/// `parent.field`, or `field` at the top level.
fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}
