//! Checking a protocol: every problem found at once, each with its path in the file.

use std::collections::HashMap;

use super::{ActivityKind, ConsentRole, MAX_TARGET, Protocol, ProtocolError};

impl Protocol {
    /// Checks the rules a protocol must follow beyond its JSON shape (listed in
    /// `docs/protocol.md`): non-empty ids and titles, version 1 or more, unique ids, one
    /// unique uppercase code letter per group, targets from 1 to [`MAX_TARGET`], references
    /// to existing forms, guides and groups, at least one required item per consent form, at
    /// most one item of each role per form, re-consent versions that name other versions,
    /// prompts in every activity and at least two cards in a card sort; and the coding
    /// framework's rules, if the protocol has one ([`super::CodingFramework`]).
    ///
    /// # Errors
    /// Every problem found, in file order.
    pub fn validate(&self) -> Result<(), Vec<ProtocolError>> {
        let mut v = Validator::default();
        self.check_header(&mut v);
        self.check_groups(&mut v);
        self.check_consent_forms(&mut v);
        self.check_guides(&mut v);
        self.check_activities(&mut v);
        self.check_safeguarding_and_places(&mut v);
        if let Some(coding) = &self.coding {
            coding.check(self, &mut v);
        }
        if v.problems.is_empty() {
            Ok(())
        } else {
            Err(v.problems)
        }
    }

    fn check_header(&self, v: &mut Validator) {
        v.not_empty("id", &self.id);
        if self.version == 0 {
            v.push("version", "the version must be 1 or more");
        }
        v.not_empty("title", &self.title);

        if self.groups.is_empty() {
            v.push("groups", "a protocol needs at least one group");
        }
    }

    fn check_groups(&self, v: &mut Validator) {
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
    }

    fn check_consent_forms(&self, v: &mut Validator) {
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
    }

    fn check_guides(&self, v: &mut Validator) {
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
    }

    fn check_activities(&self, v: &mut Validator) {
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
    }

    fn check_safeguarding_and_places(&self, v: &mut Validator) {
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
    }
}

/// Collects validation problems.
#[derive(Default)]
pub(super) struct Validator {
    problems: Vec<ProtocolError>,
}

impl Validator {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ProtocolError::new(path, message));
    }

    pub(super) fn not_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(path, "must not be empty");
        }
    }

    /// Each `(path, id)` must be non-empty and different from the ones before it.
    pub(super) fn unique<'a>(
        &mut self,
        what: &str,
        ids: impl IntoIterator<Item = (String, &'a str)>,
    ) {
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
