//! The video coding framework as protocol data: the code classes and their codes (each a
//! point or state event with a keyboard key and a colour), the rating items with their
//! anchored scales, and the kinds of practice recording each professional shares.
//!
//! It is the protocol's optional `coding` section (see `docs/protocol.md`, "Coding
//! framework"); [`Protocol::validate`](super::Protocol::validate) checks it with the rest of
//! the file, each problem named by its path (`coding.classes[2].codes[0].key`).

use serde::{Deserialize, Serialize};

/// The most points a rating scale can have (0-10 is 11 points).
pub const MAX_SCALE_POINTS: i64 = 11;

/// The most recordings of one type a professional can be asked for.
pub const MAX_RECORDINGS_PER_PROFESSIONAL: u32 = 20;

/// How practice recordings are coded: what can be marked on the timeline, what is rated for
/// the whole recording, and which recordings are expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodingFramework {
    /// A sentence or two about the framework and where it comes from, shown to coders.
    pub title: String,
    /// The id of the group whose members share the recordings (`professionals`).
    pub recorded_group: String,
    /// The classes of codes, in the order the coding screen shows them.
    pub classes: Vec<CodeClass>,
    /// What a coder rates once per recording, in order. May be empty.
    #[serde(default)]
    pub rating_items: Vec<RatingItem>,
    /// The kinds of recording each member of the recorded group shares.
    pub recording_types: Vec<RecordingType>,
}

/// A group of related codes, e.g. one principle of attuned interaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeClass {
    /// Stable id, unique among the classes, e.g. `being-attentive`.
    pub id: String,
    /// Display label, e.g. `Being attentive`.
    pub label: String,
    /// The codes of this class (at least one).
    pub codes: Vec<Code>,
}

/// Something a coder marks on a recording's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// Stable id, unique across the whole framework (coded events name it).
    pub id: String,
    /// Display label, e.g. `Giving time and space`.
    pub label: String,
    /// Whether it marks a moment or an interval.
    pub kind: EventKind,
    /// The keyboard key that marks it: one character, not a space, unique across the
    /// framework (letters compared without case, so Caps Lock does not change the code).
    pub key: String,
    /// The colour it is drawn in on the timeline, `#rrggbb`.
    pub colour: String,
}

/// Whether a code marks a moment or an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A moment: one key press marks it.
    Point,
    /// An interval: one key press starts it and the next ends it.
    State,
}

/// One thing rated for a whole recording, on an anchored scale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingItem {
    /// Stable id, unique among the rating items (ratings name it).
    pub id: String,
    /// The item as the coder reads it.
    pub label: String,
    /// The code class this item rates, if it rates one (e.g. the principle it is about).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Whether this is a stand-in for an instrument's real item that a study must replace
    /// before coding (the default framework's items are: the VIG-SDS is not public), so
    /// that screens and exports can flag it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placeholder: bool,
    /// The scale the item is rated on.
    pub scale: RatingScale,
}

/// A scale of whole numbers from `min` to `max`, each point with its anchor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingScale {
    /// The lowest point.
    pub min: i64,
    /// The highest point, above `min` and at most [`MAX_SCALE_POINTS`] points in all.
    pub max: i64,
    /// What each point means, one anchor for every point from `min` to `max`.
    pub anchors: Vec<ScaleAnchor>,
}

/// What one point of a rating scale means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleAnchor {
    /// The scale point.
    pub value: i64,
    /// Its description, e.g. `Not evident`.
    pub description: String,
}

/// A kind of practice recording, e.g. a VIG shared review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingType {
    /// Stable id, unique among the recording types, e.g. `vig_shared_review`.
    pub id: String,
    /// Display label, e.g. `VIG shared review`.
    pub label: String,
    /// How many recordings of this type each professional shares (1 to
    /// [`MAX_RECORDINGS_PER_PROFESSIONAL`]).
    pub per_professional: u32,
}

impl CodingFramework {
    /// The class with this id.
    pub fn class(&self, id: &str) -> Option<&CodeClass> {
        self.classes.iter().find(|class| class.id == id)
    }

    /// Every code, class by class.
    pub fn codes(&self) -> impl Iterator<Item = &Code> {
        self.classes.iter().flat_map(|class| class.codes.iter())
    }

    /// The code with this id, in any class.
    pub fn code(&self, id: &str) -> Option<&Code> {
        self.codes().find(|code| code.id == id)
    }

    /// The code a key press marks (letters matched without case).
    pub fn code_for_key(&self, key: char) -> Option<&Code> {
        let key = key_identity(key);
        self.codes()
            .find(|code| code.key.chars().next().map(key_identity) == Some(key))
    }

    /// The rating item with this id.
    pub fn rating_item(&self, id: &str) -> Option<&RatingItem> {
        self.rating_items.iter().find(|item| item.id == id)
    }

    /// The recording type with this id.
    pub fn recording_type(&self, id: &str) -> Option<&RecordingType> {
        self.recording_types.iter().find(|kind| kind.id == id)
    }

    /// Whether any rating item is a placeholder the study must replace.
    pub fn has_placeholder_items(&self) -> bool {
        self.rating_items.iter().any(|item| item.placeholder)
    }
}

impl RatingScale {
    /// The anchor of a scale point.
    pub fn anchor(&self, value: i64) -> Option<&ScaleAnchor> {
        self.anchors.iter().find(|anchor| anchor.value == value)
    }

    /// Whether `value` is a point of this scale.
    pub fn contains(&self, value: i64) -> bool {
        self.points().contains(&value)
    }

    /// The scale's points, lowest first: the categories to compare two coders' ratings on
    /// ([`crate::agreement::cohen_kappa`]).
    pub fn points(&self) -> std::ops::RangeInclusive<i64> {
        self.min..=self.max
    }
}

/// The character two keys are compared by: letters without case.
pub(super) fn key_identity(key: char) -> char {
    key.to_lowercase().next().unwrap_or(key)
}

/// Whether `colour` is `#` and six hex digits.
pub(super) fn is_hex_colour(colour: &str) -> bool {
    colour.len() == 7
        && colour.starts_with('#')
        && colour[1..].bytes().all(|b| b.is_ascii_hexdigit())
}
