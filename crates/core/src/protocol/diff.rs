//! A readable list of what changed between two versions of a protocol, for the study admin
//! who is about to publish one (the console's Protocol screen). Lists are matched by their
//! stable ids, so a reordered list is not a change and a renamed item is one change, not a
//! removal and an addition.

use super::{
    Activity, AssentScript, Code, CodeClass, CodingFramework, ConsentForm, ConsentItem, EventKind,
    Group, GuideSection, InterviewGuide, PlaceType, Protocol, Question, RatingItem, RecordingType,
    Safeguarding,
};

/// Whether something was added, removed or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// In the new version only.
    Added,
    /// In the current version only.
    Removed,
    /// In both, with another value.
    Changed,
}

impl ChangeKind {
    /// The word shown beside the change.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Added => "Added",
            ChangeKind::Removed => "Removed",
            ChangeKind::Changed => "Changed",
        }
    }
}

/// One change, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// Where, e.g. `Interview guide "Carers" › section "Relationship" › question "q3"`.
    pub place: String,
    /// The current version's value (changed and removed).
    pub before: Option<String>,
    /// The new version's value (changed and added).
    pub after: Option<String>,
}

/// What changed from `current` to `new`, in the order of the protocol file.
pub fn changes(current: &Protocol, new: &Protocol) -> Vec<Change> {
    let mut out = Changes(Vec::new());
    out.value("Protocol id", &current.id, &new.id);
    out.value("Title", &current.title, &new.title);
    out.value("Summary", &current.summary, &new.summary);
    out.list(
        "Group",
        &current.groups,
        &new.groups,
        |g| &g.id,
        |g| g.name.clone(),
        group,
    );
    out.list(
        "Consent form",
        &current.consent_forms,
        &new.consent_forms,
        |f| &f.id,
        |f| f.title.clone(),
        consent_form,
    );
    out.list(
        "Interview guide",
        &current.interview_guides,
        &new.interview_guides,
        |g| &g.id,
        |g| g.title.clone(),
        guide,
    );
    assent(&mut out, &current.assent, &new.assent);
    out.list(
        "Activity",
        &current.activities,
        &new.activities,
        |a| &a.id,
        |a| a.title.clone(),
        activity,
    );
    safeguarding(&mut out, &current.safeguarding, &new.safeguarding);
    out.list(
        "Place",
        &current.place_types,
        &new.place_types,
        |p| &p.id,
        |p| p.label.clone(),
        |out, place, a: &PlaceType, b: &PlaceType| {
            out.value(&format!("{place} › label"), &a.label, &b.label)
        },
    );
    coding(&mut out, current.coding.as_ref(), new.coding.as_ref());
    out.0
}

/// The changes found so far.
struct Changes(Vec<Change>);

impl Changes {
    fn value(&mut self, place: &str, before: &str, after: &str) {
        if before != after {
            self.0.push(Change {
                kind: ChangeKind::Changed,
                place: place.to_owned(),
                before: Some(before.to_owned()),
                after: Some(after.to_owned()),
            });
        }
    }

    fn lines(&mut self, place: &str, before: &[String], after: &[String]) {
        if before != after {
            self.value(place, &before.join("\n"), &after.join("\n"));
        }
    }

    /// Items matched by id: each removed, added, or compared with `compare`.
    fn list<T>(
        &mut self,
        what: &str,
        before: &[T],
        after: &[T],
        id: impl Fn(&T) -> &String,
        summary: impl Fn(&T) -> String,
        compare: impl Fn(&mut Changes, &str, &T, &T),
    ) {
        for old in before {
            let place = format!("{what} \"{}\"", id(old));
            match after.iter().find(|new| id(new) == id(old)) {
                Some(new) => compare(self, &place, old, new),
                None => self.0.push(Change {
                    kind: ChangeKind::Removed,
                    place,
                    before: Some(summary(old)),
                    after: None,
                }),
            }
        }
        for new in after {
            if !before.iter().any(|old| id(old) == id(new)) {
                self.0.push(Change {
                    kind: ChangeKind::Added,
                    place: format!("{what} \"{}\"", id(new)),
                    before: None,
                    after: Some(summary(new)),
                });
            }
        }
    }
}

/// The coding framework: added or removed as a whole, or compared part by part.
fn coding(out: &mut Changes, a: Option<&CodingFramework>, b: Option<&CodingFramework>) {
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return,
        (a, b) => {
            out.0.push(Change {
                kind: if a.is_none() {
                    ChangeKind::Added
                } else {
                    ChangeKind::Removed
                },
                place: "Coding framework".to_owned(),
                before: a.map(|c| c.title.clone()),
                after: b.map(|c| c.title.clone()),
            });
            return;
        }
    };
    out.value("Coding framework › title", &a.title, &b.title);
    out.value(
        "Coding framework › recorded group",
        &a.recorded_group,
        &b.recorded_group,
    );
    out.list(
        "Code class",
        &a.classes,
        &b.classes,
        |c| &c.id,
        |c| c.label.clone(),
        |out, place, a: &CodeClass, b: &CodeClass| {
            out.value(&format!("{place} › label"), &a.label, &b.label);
            out.list(
                &format!("{place} › code"),
                &a.codes,
                &b.codes,
                |c| &c.id,
                code_summary,
                |out, place, a: &Code, b: &Code| {
                    out.value(place, &code_summary(a), &code_summary(b))
                },
            );
        },
    );
    out.list(
        "Rating item",
        &a.rating_items,
        &b.rating_items,
        |i| &i.id,
        rating_summary,
        |out, place, a: &RatingItem, b: &RatingItem| {
            out.value(place, &rating_summary(a), &rating_summary(b))
        },
    );
    out.list(
        "Recording type",
        &a.recording_types,
        &b.recording_types,
        |t| &t.id,
        recording_summary,
        |out, place, a: &RecordingType, b: &RecordingType| {
            out.value(place, &recording_summary(a), &recording_summary(b))
        },
    );
}

fn code_summary(code: &Code) -> String {
    let kind = match code.kind {
        EventKind::Point => "point",
        EventKind::State => "state",
    };
    format!(
        "{} ({kind}, key {}, colour {})",
        code.label, code.key, code.colour
    )
}

fn rating_summary(item: &RatingItem) -> String {
    let anchors: Vec<String> = item
        .scale
        .anchors
        .iter()
        .map(|anchor| format!("{} {}", anchor.value, anchor.description))
        .collect();
    format!(
        "{}{} (class {}; scale {} to {}: {})",
        item.label,
        if item.placeholder {
            " [placeholder]"
        } else {
            ""
        },
        optional(&item.class),
        item.scale.min,
        item.scale.max,
        anchors.join(", ")
    )
}

fn recording_summary(kind: &RecordingType) -> String {
    format!(
        "{} ({} per professional)",
        kind.label, kind.per_professional
    )
}

fn optional(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "(none)".to_owned())
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn group(out: &mut Changes, place: &str, a: &Group, b: &Group) {
    out.value(&format!("{place} › name"), &a.name, &b.name);
    out.value(
        &format!("{place} › code prefix"),
        &a.code_prefix,
        &b.code_prefix,
    );
    out.value(
        &format!("{place} › recruitment target"),
        &a.target.to_string(),
        &b.target.to_string(),
    );
    out.value(
        &format!("{place} › consent form"),
        &optional(&a.consent_form),
        &optional(&b.consent_form),
    );
    out.value(
        &format!("{place} › interview guide"),
        &optional(&a.interview_guide),
        &optional(&b.interview_guide),
    );
    out.value(
        &format!("{place} › takes part in activities"),
        yes_no(a.takes_part_in_activities),
        yes_no(b.takes_part_in_activities),
    );
    out.value(
        &format!("{place} › linked to"),
        &optional(&a.links_to),
        &optional(&b.links_to),
    );
}

fn consent_form(out: &mut Changes, place: &str, a: &ConsentForm, b: &ConsentForm) {
    out.value(&format!("{place} › version"), &a.version, &b.version);
    out.value(&format!("{place} › title"), &a.title, &b.title);
    out.value(
        &format!("{place} › withdrawal deadline"),
        &optional(&a.withdrawal_deadline),
        &optional(&b.withdrawal_deadline),
    );
    out.list(
        &format!("{place} › item"),
        &a.items,
        &b.items,
        |i| &i.id,
        |i| i.text.clone(),
        consent_item,
    );
    out.lines(
        &format!("{place} › versions that need consent again"),
        &a.reconsent_versions,
        &b.reconsent_versions,
    );
}

fn consent_item(out: &mut Changes, place: &str, a: &ConsentItem, b: &ConsentItem) {
    out.value(&format!("{place} › text"), &a.text, &b.text);
    out.value(
        &format!("{place} › required"),
        yes_no(a.required),
        yes_no(b.required),
    );
    out.value(&format!("{place} › role"), a.role.as_str(), b.role.as_str());
}

fn guide(out: &mut Changes, place: &str, a: &InterviewGuide, b: &InterviewGuide) {
    out.value(&format!("{place} › title"), &a.title, &b.title);
    out.list(
        &format!("{place} › section"),
        &a.sections,
        &b.sections,
        |s| &s.id,
        |s| s.title.clone(),
        section,
    );
}

fn section(out: &mut Changes, place: &str, a: &GuideSection, b: &GuideSection) {
    out.value(&format!("{place} › title"), &a.title, &b.title);
    out.list(
        &format!("{place} › question"),
        &a.questions,
        &b.questions,
        |q| &q.id,
        |q| q.text.clone(),
        question,
    );
}

fn question(out: &mut Changes, place: &str, a: &Question, b: &Question) {
    out.value(&format!("{place} › text"), &a.text, &b.text);
    out.lines(&format!("{place} › probes"), &a.probes, &b.probes);
}

fn assent(out: &mut Changes, a: &AssentScript, b: &AssentScript) {
    out.lines("Child assent › introduction", &a.intro, &b.intro);
    out.value("Child assent › question", &a.question, &b.question);
    out.value("Child assent › check again", &a.recheck, &b.recheck);
}

fn activity(out: &mut Changes, place: &str, a: &Activity, b: &Activity) {
    out.value(
        &format!("{place} › kind"),
        &format!("{:?}", a.kind),
        &format!("{:?}", b.kind),
    );
    out.value(&format!("{place} › title"), &a.title, &b.title);
    out.list(
        &format!("{place} › prompt"),
        &a.prompts,
        &b.prompts,
        |p| &p.id,
        |p| p.text.clone(),
        |out, place, a, b| out.value(&format!("{place} › text"), &a.text, &b.text),
    );
    out.list(
        &format!("{place} › card"),
        &a.cards,
        &b.cards,
        |c| &c.id,
        |c| c.label.clone(),
        |out, place, a, b| {
            out.value(&format!("{place} › label"), &a.label, &b.label);
            out.value(&format!("{place} › picture"), &a.picture, &b.picture);
        },
    );
}

fn safeguarding(out: &mut Changes, a: &Safeguarding, b: &Safeguarding) {
    out.lines("Safeguarding › steps", &a.steps, &b.steps);
    out.value("Safeguarding › who to call", &a.contact, &b.contact);
    out.value("Safeguarding › by when", &a.deadline, &b.deadline);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::default_protocol;

    #[test]
    fn the_same_protocol_has_no_changes_and_a_reorder_is_none() {
        let current = default_protocol();
        assert_eq!(changes(current, current), []);
        let mut reordered = current.clone();
        reordered.groups.reverse();
        reordered.version += 1;
        assert_eq!(changes(current, &reordered), []);
    }

    #[test]
    fn each_change_is_named_by_where_it_is() {
        let current = default_protocol();
        let mut new = current.clone();
        new.version += 1;
        let guide = &mut new.interview_guides[0];
        let guide_id = guide.id.clone();
        let section_id = guide.sections[0].id.clone();
        let question = &mut guide.sections[0].questions[0];
        let question_id = question.id.clone();
        let old_text = question.text.clone();
        question.text = "How has it been since the last visit?".into();
        let removed = new.place_types.pop().expect("the default has places");
        new.groups[0].target += 2;
        new.safeguarding.contact = "The study's safeguarding lead, 0123 456 789".into();
        let found = changes(current, &new);
        assert!(found.contains(&Change {
            kind: ChangeKind::Changed,
            place: format!(
                "Interview guide \"{guide_id}\" › section \"{section_id}\" › question \"{question_id}\" › text"
            ),
            before: Some(old_text),
            after: Some("How has it been since the last visit?".into()),
        }));
        assert!(found.contains(&Change {
            kind: ChangeKind::Removed,
            place: format!("Place \"{}\"", removed.id),
            before: Some(removed.label.clone()),
            after: None,
        }));
        assert!(
            found
                .iter()
                .any(|c| c.place.ends_with("› recruitment target")
                    && c.kind == ChangeKind::Changed)
        );
        assert!(
            found
                .iter()
                .any(|c| c.place == "Safeguarding › who to call")
        );
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn an_added_item_is_added_with_its_words() {
        let current = default_protocol();
        let mut new = current.clone();
        new.place_types.push(PlaceType {
            id: "library".into(),
            label: "Public library".into(),
        });
        assert_eq!(
            changes(current, &new),
            [Change {
                kind: ChangeKind::Added,
                place: "Place \"library\"".into(),
                before: None,
                after: Some("Public library".into()),
            }]
        );
    }

    #[test]
    fn coding_framework_changes_are_named_by_class_code_and_item() {
        let current = default_protocol();
        let mut new = current.clone();
        let coding = new.coding.as_mut().expect("the default codes recordings");
        coding.classes[0].codes[0].key = "m".into();
        coding.rating_items[0].placeholder = false;
        coding.recording_types.pop();
        let found = changes(current, &new);
        let places: Vec<_> = found.iter().map(|c| (c.kind, c.place.as_str())).collect();
        assert_eq!(
            places,
            [
                (
                    ChangeKind::Changed,
                    "Code class \"being-attentive\" › code \"att-interested-posture\""
                ),
                (ChangeKind::Changed, "Rating item \"placeholder-1\""),
                (ChangeKind::Removed, "Recording type \"non_vig_meeting\""),
            ]
        );
        assert!(found[0].after.as_deref().unwrap().contains("key m"));

        let mut without = current.clone();
        without.coding = None;
        let found = changes(&without, current);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, ChangeKind::Added);
        assert_eq!(found[0].place, "Coding framework");
    }
}
