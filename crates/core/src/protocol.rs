//! The study protocol as data: groups and targets, consent forms, interview guides, the
//! children's assent script and activities, safeguarding steps and place types.
//!
//! A protocol is a JSON file (see `docs/protocol.md` for the format field by field). Attune
//! ships one, the VIG evaluation ([`default_protocol`]); a study can load its own with
//! [`Protocol::parse`], which reads the JSON and then [`Protocol::validate`]s it. Unknown
//! fields are errors, so a typo in a hand-written file is caught instead of silently
//! ignored, and every error names the field it is about (`groups[2].code_prefix: ...`).
//!
//! Every record names the protocol id and version it was captured under
//! ([`Protocol::reference`]), so a newer version of a protocol never orphans older records.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::record::ProtocolRef;

/// The JSON of the default protocol, the VIG evaluation (`crates/core/protocols/vig-evaluation.json`).
pub const DEFAULT_PROTOCOL_JSON: &str = include_str!("../protocols/vig-evaluation.json");

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

    /// Checks the rules a protocol must follow beyond its JSON shape (listed in
    /// `docs/protocol.md`): non-empty ids and titles, version 1 or more, unique ids, one
    /// unique uppercase code letter per group, targets from 1 to [`MAX_TARGET`], references
    /// to existing forms, guides and groups, at least one required item per consent form, at
    /// most one item of each role per form, re-consent versions that name other versions,
    /// prompts in every activity and at least two cards in a card sort.
    ///
    /// # Errors
    /// Every problem found, in file order.
    pub fn validate(&self) -> Result<(), Vec<ProtocolError>> {
        let mut v = Validator::default();
        v.not_empty("id", &self.id);
        if self.version == 0 {
            v.push("version", "the version must be 1 or more");
        }
        v.not_empty("title", &self.title);

        if self.groups.is_empty() {
            v.push("groups", "a protocol needs at least one group");
        }
        v.unique(
            "group",
            self.groups
                .iter()
                .enumerate()
                .map(|(i, g)| (format!("groups[{i}].id"), g.id.as_str())),
        );
        let mut prefixes: HashMap<&str, usize> = HashMap::new();
        for (i, group) in self.groups.iter().enumerate() {
            let at = format!("groups[{i}]");
            v.not_empty(&format!("{at}.name"), &group.name);
            let prefix = group.code_prefix.as_str();
            let mut chars = prefix.chars();
            match (chars.next(), chars.next()) {
                (Some(letter), None) if letter.is_ascii_uppercase() => {
                    if let Some(first) = prefixes.get(prefix) {
                        v.push(
                            format!("{at}.code_prefix"),
                            format!("code prefix {prefix:?} is already used by groups[{first}]"),
                        );
                    } else {
                        prefixes.insert(prefix, i);
                    }
                }
                _ => v.push(
                    format!("{at}.code_prefix"),
                    format!("bad code prefix {prefix:?} (must be one uppercase letter A-Z)"),
                ),
            }
            if !(1..=MAX_TARGET).contains(&group.target) {
                v.push(
                    format!("{at}.target"),
                    format!("bad target {} (must be 1 to {MAX_TARGET})", group.target),
                );
            }
            if let Some(form) = &group.consent_form
                && self.consent_form(form).is_none()
            {
                v.push(
                    format!("{at}.consent_form"),
                    format!("unknown consent form {form:?}"),
                );
            }
            if let Some(guide) = &group.interview_guide
                && self.guide(guide).is_none()
            {
                v.push(
                    format!("{at}.interview_guide"),
                    format!("unknown interview guide {guide:?}"),
                );
            }
            if let Some(target) = &group.links_to {
                if self.group(target).is_none() {
                    v.push(
                        format!("{at}.links_to"),
                        format!("unknown group {target:?}"),
                    );
                } else if *target == group.id {
                    v.push(format!("{at}.links_to"), "a group cannot link to itself");
                }
            }
        }

        v.unique(
            "consent form",
            self.consent_forms
                .iter()
                .enumerate()
                .map(|(i, f)| (format!("consent_forms[{i}].id"), f.id.as_str())),
        );
        for (i, form) in self.consent_forms.iter().enumerate() {
            let at = format!("consent_forms[{i}]");
            v.not_empty(&format!("{at}.version"), &form.version);
            v.not_empty(&format!("{at}.title"), &form.title);
            v.unique(
                "consent item",
                form.items
                    .iter()
                    .enumerate()
                    .map(|(j, item)| (format!("{at}.items[{j}].id"), item.id.as_str())),
            );
            for (j, item) in form.items.iter().enumerate() {
                v.not_empty(&format!("{at}.items[{j}].text"), &item.text);
            }
            if !form.items.iter().any(|item| item.required) {
                v.push(
                    format!("{at}.items"),
                    "a consent form needs at least one required item",
                );
            }
            // The app acts on one answer per role: two items with the same role would leave
            // it unclear which answer counts.
            let mut first_with_role: HashMap<ConsentRole, usize> = HashMap::new();
            for (j, item) in form.items.iter().enumerate() {
                if item.role == ConsentRole::Plain {
                    continue;
                }
                if let Some(first) = first_with_role.get(&item.role) {
                    v.push(
                        format!("{at}.items[{j}].role"),
                        format!(
                            "a form can have only one {} item (the first is {at}.items[{first}])",
                            item.role.as_str()
                        ),
                    );
                } else {
                    first_with_role.insert(item.role, j);
                }
            }
            let mut reconsent: HashMap<&str, usize> = HashMap::new();
            for (j, version) in form.reconsent_versions.iter().enumerate() {
                let path = format!("{at}.reconsent_versions[{j}]");
                if version.trim().is_empty() {
                    v.push(path, "must not be empty");
                } else if *version == form.version {
                    v.push(
                        path,
                        format!(
                            "{version:?} is this form's own version: list the earlier versions whose consents must be given again"
                        ),
                    );
                } else if let Some(first) = reconsent.get(version.as_str()) {
                    v.push(
                        path,
                        format!(
                            "{version:?} is already listed at {at}.reconsent_versions[{first}]"
                        ),
                    );
                } else {
                    reconsent.insert(version, j);
                }
            }
        }

        v.unique(
            "interview guide",
            self.interview_guides
                .iter()
                .enumerate()
                .map(|(i, g)| (format!("interview_guides[{i}].id"), g.id.as_str())),
        );
        for (i, guide) in self.interview_guides.iter().enumerate() {
            let at = format!("interview_guides[{i}]");
            v.not_empty(&format!("{at}.title"), &guide.title);
            v.unique(
                "section",
                guide
                    .sections
                    .iter()
                    .enumerate()
                    .map(|(j, s)| (format!("{at}.sections[{j}].id"), s.id.as_str())),
            );
            v.unique(
                "question",
                guide.sections.iter().enumerate().flat_map(|(j, s)| {
                    let at = &at;
                    s.questions.iter().enumerate().map(move |(k, q)| {
                        (
                            format!("{at}.sections[{j}].questions[{k}].id"),
                            q.id.as_str(),
                        )
                    })
                }),
            );
            for (j, section) in guide.sections.iter().enumerate() {
                for (k, question) in section.questions.iter().enumerate() {
                    v.not_empty(
                        &format!("{at}.sections[{j}].questions[{k}].text"),
                        &question.text,
                    );
                }
            }
        }

        v.not_empty("assent.question", &self.assent.question);
        v.not_empty("assent.recheck", &self.assent.recheck);

        v.unique(
            "activity",
            self.activities
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("activities[{i}].id"), a.id.as_str())),
        );
        for (i, activity) in self.activities.iter().enumerate() {
            let at = format!("activities[{i}]");
            v.not_empty(&format!("{at}.title"), &activity.title);
            if activity.prompts.is_empty() {
                v.push(
                    format!("{at}.prompts"),
                    "an activity needs at least one prompt",
                );
            }
            v.unique(
                "prompt",
                activity
                    .prompts
                    .iter()
                    .enumerate()
                    .map(|(j, p)| (format!("{at}.prompts[{j}].id"), p.id.as_str())),
            );
            for (j, prompt) in activity.prompts.iter().enumerate() {
                v.not_empty(&format!("{at}.prompts[{j}].text"), &prompt.text);
            }
            v.unique(
                "card",
                activity
                    .cards
                    .iter()
                    .enumerate()
                    .map(|(j, c)| (format!("{at}.cards[{j}].id"), c.id.as_str())),
            );
            for (j, card) in activity.cards.iter().enumerate() {
                v.not_empty(&format!("{at}.cards[{j}].label"), &card.label);
            }
            if activity.kind == ActivityKind::CardSort && activity.cards.len() < 2 {
                v.push(
                    format!("{at}.cards"),
                    "a card sort needs at least two cards",
                );
            }
        }

        if self.safeguarding.steps.is_empty() {
            v.push(
                "safeguarding.steps",
                "the safeguarding procedure needs at least one step",
            );
        }
        v.not_empty("safeguarding.contact", &self.safeguarding.contact);
        v.not_empty("safeguarding.deadline", &self.safeguarding.deadline);

        v.unique(
            "place type",
            self.place_types
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("place_types[{i}].id"), p.id.as_str())),
        );
        for (i, place) in self.place_types.iter().enumerate() {
            v.not_empty(&format!("place_types[{i}].label"), &place.label);
        }

        if v.problems.is_empty() {
            Ok(())
        } else {
            Err(v.problems)
        }
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

/// How a tablet on its own counted codes before the server reserved them ([`crate::codes`],
/// which the app uses now): two tablets counting like this give the same codes.
///
/// The next participant code for a group: `prefix` followed by one more than the highest
/// number already used with that prefix, at least two digits (`C01`, `C02`, ... `C99`,
/// `C100`).
///
/// Pass every code ever given out, withdrawn participants included: numbers are never
/// reused, and gaps are never filled, so a code always means the same person. Codes with
/// another prefix, or that are not `prefix` followed by digits, are ignored.
pub fn next_code(prefix: &str, existing: &[&str]) -> String {
    let highest = existing
        .iter()
        .filter_map(|code| code.trim().strip_prefix(prefix))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|digits| digits.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    format!("{prefix}{:02}", highest.saturating_add(1))
}

/// Splits a participant code such as `C07` into its prefix letter and number (`('C', 7)`).
/// `None` unless the code is one uppercase letter A-Z followed by at least one digit.
pub fn parse_code(code: &str) -> Option<(char, u32)> {
    let mut chars = code.chars();
    let prefix = chars.next().filter(char::is_ascii_uppercase)?;
    let digits = chars.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prefix, digits.parse().ok()?))
}

/// Collects validation problems.
#[derive(Default)]
struct Validator {
    problems: Vec<ProtocolError>,
}

impl Validator {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ProtocolError::new(path, message));
    }

    fn not_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(path, "must not be empty");
        }
    }

    /// Each `(path, id)` must be non-empty and different from the ones before it.
    fn unique<'a>(&mut self, what: &str, ids: impl IntoIterator<Item = (String, &'a str)>) {
        let mut seen: HashMap<&str, String> = HashMap::new();
        for (path, id) in ids {
            if id.trim().is_empty() {
                self.push(path, format!("the {what} id must not be empty"));
            } else if let Some(first) = seen.get(id) {
                let message = format!("duplicate {what} id {id:?} (also at {first})");
                self.push(path, message);
            } else {
                seen.insert(id, path);
            }
        }
    }
}

/// `parent.field`, or `field` at the top level.
fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// The name between `` ` `` quotes after `lead` in a serde message (`missing field `x``).
fn quoted_field<'m>(message: &'m str, lead: &str) -> Option<&'m str> {
    let rest = &message[message.find(lead)? + lead.len()..];
    rest.find('`').map(|end| &rest[..end])
}

/// The byte offset of serde_json's 1-based line and 0-based byte column.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    line_start.saturating_add(column).min(text.len())
}

/// Where a JSON scan stopped: the open objects and arrays.
struct JsonScan {
    frames: Vec<Frame>,
    /// Whether the last thing read was the `}` closing an object.
    just_closed_object: bool,
}

enum Frame {
    /// An object, with the key whose value is being read (if any).
    Object { key: Option<String> },
    /// An array, with the index of the element being read (if one has started).
    Array { index: usize, started: bool },
}

impl JsonScan {
    /// The path of the value being read, e.g. `groups[2].target`.
    fn path(&self) -> String {
        path_of(&self.frames)
    }

    /// The path of the object whose fields are being read: the innermost open object, or the
    /// one just closed (serde reports a missing field either inside the object or just
    /// after its `}`, depending on the version).
    fn path_of_open_object(&self) -> String {
        match self.frames.last() {
            Some(Frame::Object { .. }) if !self.just_closed_object => {
                path_of(&self.frames[..self.frames.len() - 1])
            }
            _ => self.path(),
        }
    }
}

fn path_of(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Object { key: Some(key) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Array {
                index,
                started: true,
            } => path.push_str(&format!("[{index}]")),
            _ => {}
        }
    }
    path
}

/// Reads `text` up to `offset` bytes, tracking which object key or array element each open
/// container is at. Good enough for locating errors; it does not check the JSON.
fn scan_json_path(text: &str, offset: usize) -> JsonScan {
    let bytes = &text.as_bytes()[..offset.min(text.len())];
    let mut frames: Vec<Frame> = Vec::new();
    let mut expecting_key = false;
    let mut just_closed_object = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        i += 1;
        if byte.is_ascii_whitespace() {
            continue;
        }
        just_closed_object = false;
        // A value starts: in an array, that is the current element.
        let value_start = matches!(byte, b'{' | b'[' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
            || (byte == b'"' && !expecting_key);
        if value_start && let Some(Frame::Array { started, .. }) = frames.last_mut() {
            *started = true;
        }
        match byte {
            b'"' => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(bytes.len());
                i = end.saturating_add(1);
                if expecting_key {
                    let key = String::from_utf8_lossy(&bytes[start..end]).into_owned();
                    if let Some(Frame::Object { key: current }) = frames.last_mut() {
                        *current = Some(key);
                    }
                    expecting_key = false;
                }
            }
            b'{' => {
                frames.push(Frame::Object { key: None });
                expecting_key = true;
            }
            b'[' => frames.push(Frame::Array {
                index: 0,
                started: false,
            }),
            b'}' | b']' => {
                just_closed_object = byte == b'}';
                frames.pop();
                expecting_key = false;
            }
            b',' => match frames.last_mut() {
                Some(Frame::Object { key }) => {
                    *key = None;
                    expecting_key = true;
                }
                Some(Frame::Array { index, started }) => {
                    *index += 1;
                    *started = false;
                }
                None => {}
            },
            _ => {}
        }
    }
    JsonScan {
        frames,
        just_closed_object,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The default protocol as a JSON value, to break on purpose.
    fn default_json() -> Value {
        serde_json::from_str(DEFAULT_PROTOCOL_JSON).unwrap()
    }

    /// Parses `value` expecting errors; returns them as `path: message` lines.
    fn problems(value: &Value) -> Vec<ProtocolError> {
        match Protocol::parse_all(&serde_json::to_string_pretty(value).unwrap()) {
            Ok(_) => panic!("expected the protocol to be refused"),
            Err(errors) => errors,
        }
    }

    fn paths(errors: &[ProtocolError]) -> Vec<&str> {
        errors.iter().map(|error| error.path.as_str()).collect()
    }

    /// The default protocol with another version and first interview question.
    fn updated(version: u32, question: &str) -> String {
        let mut value = default_json();
        value["version"] = json!(version);
        value["interview_guides"][0]["sections"][0]["questions"][0]["text"] = json!(question);
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn a_newer_version_of_the_same_protocol_is_accepted_as_an_update() {
        let current = default_protocol();
        let update = current
            .check_update(&updated(current.version + 1, "What brought you to VIG?"))
            .unwrap();
        assert_eq!(update.version, current.version + 1);
        assert_eq!(
            update.interview_guides[0].sections[0].questions[0].text,
            "What brought you to VIG?"
        );
    }

    #[test]
    fn an_update_that_is_older_the_same_another_study_or_invalid_is_refused() {
        let current = default_protocol();
        assert_eq!(
            current.check_update(&updated(current.version, "same version")),
            Err(UpdateRefused::NotNewer {
                version: current.version,
                current: current.version
            })
        );
        let mut other = default_json();
        other["id"] = json!("another-study");
        other["version"] = json!(current.version + 1);
        assert!(matches!(
            current.check_update(&other.to_string()),
            Err(UpdateRefused::OtherProtocol { id, .. }) if id == "another-study"
        ));
        let mut invalid = default_json();
        invalid["version"] = json!(current.version + 1);
        invalid["groups"][0]["target"] = json!(0);
        match current.check_update(&invalid.to_string()) {
            Err(UpdateRefused::Invalid(error)) => assert_eq!(error.path, "groups[0].target"),
            other => panic!("expected an invalid update, got {other:?}"),
        }
    }

    #[test]
    fn an_update_that_rewords_a_consent_form_must_give_it_a_new_version() {
        let current = default_protocol();
        let mut reworded = default_json();
        reworded["version"] = json!(current.version + 1);
        reworded["consent_forms"][0]["items"][0]["text"] = json!("Reworded.");
        let form_id = current.consent_forms[0].id.clone();
        assert!(matches!(
            current.check_update(&reworded.to_string()),
            Err(UpdateRefused::ConsentFormChanged { form_id: id, .. }) if id == form_id
        ));
        reworded["consent_forms"][0]["version"] = json!("2.0, 2027-01-01");
        assert!(current.check_update(&reworded.to_string()).is_ok());
    }

    #[test]
    fn a_form_has_at_most_one_item_of_each_role() {
        let mut value = default_json();
        value["consent_forms"][2]["items"][0]["role"] = json!("quotes");
        let errors = problems(&value);
        assert_eq!(paths(&errors), ["consent_forms[2].items[4].role"]);
        assert_eq!(
            errors[0].message,
            "a form can have only one quotes item (the first is consent_forms[2].items[0])"
        );
        // Several plain items are fine; roles may repeat across forms.
        let mut value = default_json();
        value["consent_forms"][1]["items"][0]["role"] = json!("filming");
        assert!(Protocol::parse(&value.to_string()).is_ok());
        let mut value = default_json();
        value["consent_forms"][0]["items"][0]["role"] = json!("filmed");
        let error = Protocol::parse(&value.to_string()).unwrap_err();
        assert!(
            error.message.contains("unknown variant `filmed`"),
            "{error}"
        );
    }

    #[test]
    fn re_consent_versions_name_other_versions_once_each() {
        let mut value = default_json();
        let version = value["consent_forms"][2]["version"].clone();
        value["consent_forms"][2]["reconsent_versions"] =
            json!(["1.0, 2026-09-01", "", version, "1.0, 2026-09-01"]);
        let errors = problems(&value);
        assert_eq!(
            paths(&errors),
            [
                "consent_forms[2].reconsent_versions[1]",
                "consent_forms[2].reconsent_versions[2]",
                "consent_forms[2].reconsent_versions[3]"
            ]
        );
        assert!(errors[1].message.contains("this form's own version"));
        assert!(
            errors[2]
                .message
                .contains("already listed at consent_forms[2].reconsent_versions[0]")
        );
        value["consent_forms"][2]["reconsent_versions"] = json!(["1.0, 2026-09-01"]);
        let protocol = Protocol::parse(&value.to_string()).unwrap();
        assert_eq!(
            protocol.consent_forms[2].reconsent_versions,
            ["1.0, 2026-09-01"]
        );
    }

    #[test]
    fn a_form_without_re_consent_versions_serialises_as_before() {
        let form = default_protocol().consent_form_for("carers").unwrap();
        let json = serde_json::to_value(form).unwrap();
        assert!(json.get("reconsent_versions").is_none());
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("reconsent_versions");
        assert_eq!(serde_json::from_value::<ConsentForm>(old).unwrap(), *form);
    }

    #[test]
    fn an_update_that_asks_for_re_consent_is_taken_and_republishing_the_form_is_still_refused() {
        let current = default_protocol();
        let mut update = default_json();
        update["version"] = json!(current.version + 1);
        let old_version = update["consent_forms"][2]["version"].clone();
        update["consent_forms"][2]["version"] = json!("2.0, 2027-01-01");
        update["consent_forms"][2]["items"][0]["text"] = json!("Changed: needs re-consent.");
        update["consent_forms"][2]["reconsent_versions"] = json!([old_version]);
        let taken = current.check_update(&update.to_string()).unwrap();
        assert_eq!(
            taken.consent_form_for("carers").unwrap().reconsent_versions,
            [old_version.as_str().unwrap()]
        );
        // The changed form under the old version is still refused.
        update["consent_forms"][2]["version"] = old_version;
        update["consent_forms"][2]["reconsent_versions"] = json!([]);
        assert!(matches!(
            current.check_update(&update.to_string()),
            Err(UpdateRefused::ConsentFormChanged { .. })
        ));
    }

    #[test]
    fn the_default_protocol_is_the_vig_study() {
        let protocol = default_protocol();
        assert_eq!(protocol.validate(), Ok(()));
        assert_eq!(
            protocol.reference(),
            ProtocolRef {
                id: "vig-evaluation".into(),
                version: 1
            }
        );
        let targets: Vec<_> = protocol
            .groups
            .iter()
            .map(|g| (g.id.as_str(), g.code_prefix.as_str(), g.target))
            .collect();
        assert_eq!(
            targets,
            [
                ("professionals", "P", 12),
                ("managers", "M", 6),
                ("carers", "C", 9),
                ("children", "K", 10)
            ]
        );
        let children = protocol.group("children").unwrap();
        assert!(children.takes_part_in_activities);
        assert_eq!(children.consent_form, None);
        assert_eq!(children.links_to.as_deref(), Some("carers"));
        assert_eq!(
            protocol.group("professionals").unwrap().links_to.as_deref(),
            Some("managers")
        );
        assert!(
            protocol.group_by_prefix('R').is_none(),
            "coding comes later"
        );
        let kinds: Vec<_> = protocol.activities.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                ActivityKind::FeelingsFaces,
                ActivityKind::CardSort,
                ActivityKind::Drawing,
                ActivityKind::ThreeHouses,
                ActivityKind::MagicWand
            ]
        );
        let places: Vec<_> = protocol.place_types.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            places,
            ["home", "family-centre", "school", "office", "online"]
        );
    }

    #[test]
    fn each_adult_group_signs_its_own_form_with_the_right_items() {
        let protocol = default_protocol();
        let ids = |group: &str| -> Vec<String> {
            let form = protocol.consent_form_for(group).unwrap();
            form.items.iter().map(|item| item.id.clone()).collect()
        };
        let common = [
            "information-sheet",
            "voluntary",
            "audio-recording",
            "confidentiality",
            "safeguarding-limits",
            "withdrawal",
            "future-use",
        ];
        for group in ["professionals", "managers", "carers"] {
            let form = protocol.consent_form_for(group).unwrap();
            for id in common {
                assert!(form.item(id).is_some(), "{group} form lacks {id}");
            }
            assert_eq!(ids(group).last().map(String::as_str), Some("take-part"));
            assert!(form.withdrawal_deadline.is_some());
            let audio = form.item_with_role(ConsentRole::AudioRecording).unwrap();
            assert!(!audio.required, "no to audio means a notes-only interview");
            assert!(!form.item("future-use").unwrap().required);
            let required: Vec<_> = form
                .items
                .iter()
                .filter(|item| item.required)
                .map(|item| item.id.as_str())
                .collect();
            assert_eq!(
                required,
                [
                    "information-sheet",
                    "voluntary",
                    "confidentiality",
                    "safeguarding-limits",
                    "withdrawal",
                    "take-part"
                ]
            );
        }
        for group in ["professionals", "managers", "carers"] {
            let form = protocol.consent_form_for(group).unwrap();
            let quotes = form.item_with_role(ConsentRole::Quotes).unwrap();
            assert_eq!(quotes.id, "quotes");
            assert!(!quotes.required, "no to quotes still lets them take part");
            assert!(form.reconsent_versions.is_empty());
        }
        let filming = protocol
            .consent_form_for("carers")
            .unwrap()
            .item_with_role(ConsentRole::Filming)
            .unwrap();
        assert_eq!(filming.id, "filming");
        assert!(!filming.required);
        for group in ["professionals", "managers"] {
            let form = protocol.consent_form_for(group).unwrap();
            assert!(form.item_with_role(ConsentRole::Filming).is_none());
        }
        assert!(ids("carers").contains(&"child-invitation".to_string()));
        assert!(!ids("professionals").contains(&"child-invitation".to_string()));
        assert!(ids("professionals").contains(&"practice-recordings".to_string()));
        assert!(!ids("carers").contains(&"practice-recordings".to_string()));
        assert_eq!(ids("managers").len(), 9);
        assert!(protocol.consent_form_for("children").is_none());
    }

    #[test]
    fn adults_get_their_topic_guide_and_children_get_activities() {
        let protocol = default_protocol();
        let carers = protocol.guide_for("carers").unwrap();
        assert_eq!(
            carers.question("being-filmed").map(|q| q.text.as_str()),
            Some("What was it like being filmed?")
        );
        assert!(
            protocol
                .guide_for("professionals")
                .unwrap()
                .question("beyond-vig")
                .is_some()
        );
        assert!(
            protocol
                .guide_for("managers")
                .unwrap()
                .question("sustainability")
                .is_some()
        );
        assert!(protocol.guide_for("children").is_none());
        assert!(protocol.guide_for("nobody").is_none());

        let sort = protocol.activity("card-sort").unwrap();
        let labels: Vec<_> = sort.cards.iter().map(|c| c.label.as_str()).collect();
        for label in [
            "Being filmed",
            "Watching my video",
            "The worker visiting",
            "Playing with my grown-up",
            "Talking about the video",
        ] {
            assert!(labels.contains(&label), "card sort lacks {label}");
        }
        assert_eq!(sort.card("being-filmed").unwrap().picture, "camera");
        let wand = protocol.activity("magic-wand").unwrap();
        assert_eq!(wand.cards.len(), 9, "the diamond ranks up to 9 cards");
        assert_eq!(protocol.activity("three-houses").unwrap().prompts.len(), 3);
        assert!(!protocol.assent.intro.is_empty());
        assert!(!protocol.safeguarding.steps.is_empty());
    }

    #[test]
    fn the_default_protocol_writes_back_to_the_same_protocol() {
        let json = serde_json::to_string(default_protocol()).unwrap();
        assert_eq!(&Protocol::parse(&json).unwrap(), default_protocol());
    }

    #[test]
    fn a_missing_field_is_named_with_its_path_and_line() {
        let mut value = default_json();
        value["groups"][2].as_object_mut().unwrap().remove("target");
        let errors = problems(&value);
        assert_eq!(paths(&errors), ["groups[2].target"]);
        assert!(errors[0].message.contains("missing field `target`"));
        assert!(errors[0].message.contains("line "), "{}", errors[0].message);

        let mut value = default_json();
        value.as_object_mut().unwrap().remove("title");
        assert_eq!(paths(&problems(&value)), ["title"]);

        let mut value = default_json();
        value["safeguarding"]
            .as_object_mut()
            .unwrap()
            .remove("contact");
        assert_eq!(paths(&problems(&value)), ["safeguarding.contact"]);

        let mut value = default_json();
        value["interview_guides"][1]["sections"][0]["questions"][2]
            .as_object_mut()
            .unwrap()
            .remove("text");
        assert_eq!(
            paths(&problems(&value)),
            ["interview_guides[1].sections[0].questions[2].text"]
        );
    }

    #[test]
    fn a_misspelt_field_is_refused_and_named() {
        let mut value = default_json();
        let group = value["groups"][1].as_object_mut().unwrap();
        let target = group.remove("target").unwrap();
        group.insert("tagret".into(), target);
        let errors = problems(&value);
        assert_eq!(paths(&errors), ["groups[1].tagret"]);
        assert!(errors[0].message.contains("unknown field `tagret`"));

        let mut value = default_json();
        value["activities"][1]["cards"][0]["pictures"] = json!("camera");
        assert_eq!(
            paths(&problems(&value)),
            ["activities[1].cards[0].pictures"]
        );

        let mut value = default_json();
        value["colour"] = json!("blue");
        assert_eq!(paths(&problems(&value)), ["colour"]);
    }

    #[test]
    fn a_wrong_type_or_unknown_kind_is_named() {
        let mut value = default_json();
        value["groups"][0]["target"] = json!("twelve");
        assert_eq!(paths(&problems(&value)), ["groups[0].target"]);

        let mut value = default_json();
        value["activities"][3]["kind"] = json!("four_houses");
        let errors = problems(&value);
        assert_eq!(paths(&errors), ["activities[3].kind"]);
        assert!(errors[0].message.contains("four_houses"));

        let mut value = default_json();
        value["consent_forms"][0]["items"][2]["role"] = json!("audio");
        assert_eq!(paths(&problems(&value)), ["consent_forms[0].items[2].role"]);
    }

    #[test]
    fn broken_json_is_reported_with_its_line() {
        let error =
            Protocol::parse("{\n  \"id\": \"x\",\n  \"version\": 1,\n  oops\n}").unwrap_err();
        assert!(error.message.contains("line 4"), "{error}");
        let error = Protocol::parse("").unwrap_err();
        assert_eq!(error.path, "");
        assert_eq!(error.to_string(), error.message);
    }

    #[test]
    fn duplicate_ids_are_refused_wherever_they_are() {
        let mut value = default_json();
        value["groups"][3]["id"] = json!("carers");
        value["consent_forms"][1]["id"] = json!("consent-professionals");
        value["consent_forms"][2]["items"][1]["id"] = json!("information-sheet");
        value["interview_guides"][2]["id"] = json!("guide-managers");
        value["interview_guides"][0]["sections"][1]["id"] = json!("role");
        // A question id reused in another section of the same guide.
        value["interview_guides"][0]["sections"][2]["questions"][0]["id"] = json!("role-caseload");
        value["activities"][4]["id"] = json!("drawing");
        value["activities"][0]["prompts"][1]["id"] = json!("being-filmed");
        value["activities"][1]["cards"][7]["id"] = json!("camera-card");
        value["activities"][1]["cards"][6]["id"] = json!("camera-card");
        value["place_types"][4]["id"] = json!("home");
        let errors = problems(&value);
        let expected = [
            "groups[3].id",
            "consent_forms[1].id",
            "consent_forms[2].items[1].id",
            "interview_guides[2].id",
            "interview_guides[0].sections[1].id",
            "interview_guides[0].sections[2].questions[0].id",
            "activities[4].id",
            "activities[0].prompts[1].id",
            "activities[1].cards[7].id",
            "place_types[4].id",
        ];
        for path in expected {
            let error = errors
                .iter()
                .find(|e| e.path == path)
                .unwrap_or_else(|| panic!("no error at {path}: {errors:#?}"));
            assert!(error.message.contains("duplicate"), "{error}");
        }
        let group = errors.iter().find(|e| e.path == "groups[3].id").unwrap();
        assert_eq!(
            group.to_string(),
            "groups[3].id: duplicate group id \"carers\" (also at groups[2].id)"
        );
        // Ids only need to be unique where they are looked up: the same card id in two
        // activities, or a question id in two guides, is fine.
        assert!(
            default_protocol()
                .activity("card-sort")
                .unwrap()
                .card("being-filmed")
                .is_some()
        );
    }

    #[test]
    fn references_to_unknown_groups_forms_and_guides_are_refused() {
        let mut value = default_json();
        value["groups"][3]["links_to"] = json!("parents");
        value["groups"][2]["consent_form"] = json!("consent-parents");
        value["groups"][1]["interview_guide"] = json!("guide-bosses");
        value["groups"][0]["links_to"] = json!("professionals");
        let errors = problems(&value);
        assert_eq!(
            paths(&errors),
            [
                "groups[0].links_to",
                "groups[1].interview_guide",
                "groups[2].consent_form",
                "groups[3].links_to"
            ]
        );
        assert_eq!(errors[3].message, "unknown group \"parents\"");
        assert!(errors[0].message.contains("itself"));
    }

    #[test]
    fn a_target_of_zero_or_a_million_is_refused() {
        for bad in [0, 1_000_000] {
            let mut value = default_json();
            value["groups"][2]["target"] = json!(bad);
            let errors = problems(&value);
            assert_eq!(paths(&errors), ["groups[2].target"]);
            assert!(errors[0].message.starts_with("bad target"), "{}", errors[0]);
        }
        for fine in [1, 10_000] {
            let mut value = default_json();
            value["groups"][2]["target"] = json!(fine);
            assert!(Protocol::parse(&value.to_string()).is_ok());
        }
        let mut value = default_json();
        value["groups"][2]["target"] = json!(-3);
        assert_eq!(paths(&problems(&value)), ["groups[2].target"]);
    }

    #[test]
    fn a_code_prefix_must_be_one_unused_capital_letter() {
        for bad in ["", "c", "CC", "1", "É", " C"] {
            let mut value = default_json();
            value["groups"][2]["code_prefix"] = json!(bad);
            let errors = problems(&value);
            assert_eq!(paths(&errors), ["groups[2].code_prefix"], "{bad:?}");
            assert!(errors[0].message.contains("bad code prefix"));
        }
        let mut value = default_json();
        value["groups"][3]["code_prefix"] = json!("C");
        let errors = problems(&value);
        assert_eq!(paths(&errors), ["groups[3].code_prefix"]);
        assert!(errors[0].message.contains("already used by groups[2]"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut value = default_json();
        value["id"] = json!("");
        value["version"] = json!(0);
        value["title"] = json!(" ");
        value["groups"][0]["target"] = json!(0);
        value["groups"][1]["code_prefix"] = json!("m");
        value["consent_forms"][1]["items"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(|item| item["required"] = json!(false));
        value["consent_forms"][2]["items"][0]["role"] = json!("audio_recording");
        value["activities"][2]["prompts"] = json!([]);
        value["activities"][1]["cards"] =
            json!([{ "id": "only", "label": "Only", "picture": "x" }]);
        let errors = problems(&value);
        assert_eq!(
            paths(&errors),
            [
                "id",
                "version",
                "title",
                "groups[0].target",
                "groups[1].code_prefix",
                "consent_forms[1].items",
                "consent_forms[2].items[2].role",
                "activities[1].cards",
                "activities[2].prompts",
            ],
            "{errors:#?}"
        );
        // `parse` stops at the first.
        assert_eq!(Protocol::parse(&value.to_string()).unwrap_err().path, "id");
    }

    #[test]
    fn codes_start_at_01_and_follow_the_highest_used() {
        assert_eq!(next_code("C", &[]), "C01");
        assert_eq!(next_code("C", &["C01"]), "C02");
        // Other groups' codes and junk do not count.
        assert_eq!(next_code("C", &["K07", "P03", "C", "Cx1", "carer"]), "C01");
        // Gaps are not filled: C02 may have been given out and lost.
        assert_eq!(next_code("C", &["C01", "C03"]), "C04");
        assert_eq!(next_code("K", &["K10", "K02"]), "K11");
    }

    #[test]
    fn a_withdrawn_participants_code_is_never_given_again() {
        // C03 withdrew; their code stays in the list and is not reused.
        let codes = ["C01", "C02", "C03"];
        assert_eq!(next_code("C", &codes), "C04");
    }

    #[test]
    fn codes_grow_to_three_digits_after_99() {
        assert_eq!(next_code("P", &["P98"]), "P99");
        assert_eq!(next_code("P", &["P99"]), "P100");
        assert_eq!(next_code("P", &["P100", "P07"]), "P101");
    }

    #[test]
    fn codes_split_into_group_letter_and_number() {
        assert_eq!(parse_code("C07"), Some(('C', 7)));
        assert_eq!(parse_code("K100"), Some(('K', 100)));
        assert_eq!(parse_code("c07"), None);
        assert_eq!(parse_code("C"), None);
        assert_eq!(parse_code("C7a"), None);
        assert_eq!(parse_code("CC07"), None);
        assert_eq!(parse_code(""), None);
        let protocol = default_protocol();
        assert_eq!(
            protocol.group_of_code("K03").map(|g| g.id.as_str()),
            Some("children")
        );
        assert_eq!(
            protocol.group_by_prefix('M').map(|g| g.id.as_str()),
            Some("managers")
        );
        assert!(protocol.group_of_code("R01").is_none());
    }
}
