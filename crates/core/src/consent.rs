//! Consent logic: what a participant's answers to a consent form allow.
//!
//! Each item of a [`ConsentForm`] is a separate yes/no. [`evaluate`] tells the consent screen
//! whether every item is answered, whether the participant may take part (every required
//! item "yes"), whether the interview may be audio recorded, and which items block or are
//! still unanswered.
//!
//! A consent is always read against the form it was given on ([`form_given_on`],
//! [`evaluate_given`]): the copy of the form kept in the consent record, or the protocol
//! version with the same form id and version. A protocol update that rewords a form or
//! changes what an item allows never changes what an earlier consent allowed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fieldwork::{ConsentBody, InterviewNoteBody, NoteFlag};
use crate::ids::ParticipantId;
use crate::protocol::{ConsentForm, ConsentRole, Protocol};

/// A participant's answers: consent item id to yes (`true`) or no (`false`). An item not in
/// the map is unanswered.
///
/// Serialised as a JSON object, e.g. `{"audio-recording": false, "take-part": true}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConsentAnswers(pub BTreeMap<String, bool>);

impl ConsentAnswers {
    /// No answers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the answer to an item, replacing an earlier one.
    pub fn set(&mut self, item_id: impl Into<String>, yes: bool) {
        self.0.insert(item_id.into(), yes);
    }

    /// Forgets the answer to an item (it becomes unanswered again).
    pub fn clear(&mut self, item_id: &str) {
        self.0.remove(item_id);
    }

    /// The answer to an item: `Some(true)` for yes, `Some(false)` for no, `None` if
    /// unanswered.
    pub fn get(&self, item_id: &str) -> Option<bool> {
        self.0.get(item_id).copied()
    }
}

/// What a set of answers to a consent form allows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentOutcome {
    /// Every item of the form is answered, yes or no.
    pub complete: bool,
    /// Every required item is answered yes: the participant may take part.
    pub may_proceed: bool,
    /// The form's audio recording item is answered yes (otherwise the interview is notes
    /// only).
    pub audio_allowed: bool,
    /// The form's child invitation item is answered yes: the participant's child may be
    /// invited to child mode ([`child_invitation`]).
    pub child_invitation: bool,
    /// Direct quotes of the participant may be used: the form's quotes item is answered yes,
    /// or the form has no quotes item (its other items cover quotes, as the VIG forms of
    /// version 1.0 did in their confidentiality statement). See [`quote_not_agreed`].
    pub quotes_allowed: bool,
    /// The form's filming item is answered yes: the VIG films of the participant's family may
    /// be watched and coded by the research team.
    pub filming_allowed: bool,
    /// The ids of required items answered no, in form order.
    pub blocking: Vec<String>,
    /// The ids of items not answered yet, in form order.
    pub unanswered: Vec<String>,
}

/// Evaluates `answers` against `form`. Answers to ids the form does not have are ignored.
pub fn evaluate(form: &ConsentForm, answers: &ConsentAnswers) -> ConsentOutcome {
    let mut outcome = ConsentOutcome::default();
    for item in &form.items {
        match answers.get(&item.id) {
            None => outcome.unanswered.push(item.id.clone()),
            Some(false) if item.required => outcome.blocking.push(item.id.clone()),
            Some(yes) => {
                if yes && item.role == ConsentRole::AudioRecording {
                    outcome.audio_allowed = true;
                }
                if yes && item.role == ConsentRole::ChildInvitation {
                    outcome.child_invitation = true;
                }
                if yes && item.role == ConsentRole::Quotes {
                    outcome.quotes_allowed = true;
                }
                if yes && item.role == ConsentRole::Filming {
                    outcome.filming_allowed = true;
                }
            }
        }
    }
    if form.item_with_role(ConsentRole::Quotes).is_none() {
        outcome.quotes_allowed = true;
    }
    outcome.complete = outcome.unanswered.is_empty();
    outcome.may_proceed = form
        .items
        .iter()
        .filter(|item| item.required)
        .all(|item| answers.get(&item.id) == Some(true));
    outcome
}

/// The form a consent was given on: the copy kept in the record, or else the form with the
/// record's form id and version in one of `protocols` (every protocol version the device
/// has). `None` when the device has neither: what the consent allows is then unknown.
pub fn form_given_on<'a>(
    body: &'a ConsentBody,
    protocols: impl IntoIterator<Item = &'a Protocol>,
) -> Option<&'a ConsentForm> {
    if let Some(form) = body
        .form
        .as_ref()
        .filter(|form| form.id == body.form_id && form.version == body.form_version)
    {
        return Some(form);
    }
    protocols
        .into_iter()
        .find_map(|protocol| {
            protocol
                .consent_forms
                .iter()
                .find(|form| form.id == body.form_id && form.version == body.form_version)
        })
        .or_else(|| {
            earlier_built_in_forms()
                .iter()
                .find(|form| form.id == body.form_id && form.version == body.form_version)
        })
}

/// The consent forms an earlier build of the app had built in and the current built-in
/// protocol no longer holds (the VIG forms 1.0, before quotes were asked separately), so a
/// consent given on one of them before consents kept a copy of their form can still be read
/// ([`form_given_on`]).
pub fn earlier_built_in_forms() -> &'static [ConsentForm] {
    static FORMS: std::sync::OnceLock<Vec<ConsentForm>> = std::sync::OnceLock::new();
    FORMS.get_or_init(|| {
        match serde_json::from_str(include_str!("../protocols/vig-evaluation-forms-1.0.json")) {
            Ok(forms) => forms,
            // Tested by `consents_on_the_earlier_built_in_forms_can_still_be_read`.
            Err(error) => panic!("protocols/vig-evaluation-forms-1.0.json is invalid: {error}"),
        }
    })
}

/// A consent whose form the device does not have ([`evaluate_given`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "this consent was given on form {form_id:?} version {form_version:?}, which this tablet \
     does not have: record consent again"
)]
pub struct UnknownConsentForm {
    /// The form id in the record.
    pub form_id: String,
    /// The form version in the record.
    pub form_version: String,
}

/// What a recorded consent allows, read against the form it was given on
/// ([`form_given_on`]), never against whatever form is current.
///
/// # Errors
/// [`UnknownConsentForm`] when the device has no copy of that form: callers allow nothing
/// that needs consent and ask for consent to be recorded again.
pub fn evaluate_given<'a>(
    body: &'a ConsentBody,
    protocols: impl IntoIterator<Item = &'a Protocol>,
) -> Result<ConsentOutcome, UnknownConsentForm> {
    form_given_on(body, protocols)
        .map(|form| evaluate(form, &body.answers))
        .ok_or_else(|| UnknownConsentForm {
            form_id: body.form_id.clone(),
            form_version: body.form_version.clone(),
        })
}

/// Whether a child may be handed the tablet, and if not, why ([`child_invitation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildInvitation {
    /// A linked carer's consent, read against its own form, may proceed and says yes to
    /// inviting the child.
    Allowed {
        /// The carer whose consent allows it.
        carer: ParticipantId,
    },
    /// The child is linked to no carer on this device.
    NoLinkedCarer,
    /// No linked carer has recorded consent.
    NoConsent {
        /// The first linked carer.
        carer: ParticipantId,
    },
    /// A linked carer answered no to a required item: they did not agree to take part, so
    /// their child is not invited either.
    Declined {
        /// That carer.
        carer: ParticipantId,
    },
    /// A linked carer consented but not to the child being invited (or the consent is
    /// incomplete).
    NotAgreed {
        /// That carer.
        carer: ParticipantId,
    },
    /// A linked carer's consent is on a form this device does not have.
    UnknownForm {
        /// That carer.
        carer: ParticipantId,
    },
}

impl ChildInvitation {
    /// Whether child mode may start.
    pub fn allowed(&self) -> bool {
        matches!(self, ChildInvitation::Allowed { .. })
    }
}

/// The gate before child mode. UK research with children asks the carer's consent to the
/// child being invited first, and the child's own assent second (asked in child mode): this
/// is the first. A child may be invited when one of the carers they are linked to has a
/// consent (in any visit; the latest of each carer counts) that may proceed, is complete,
/// and says yes to the form's child invitation item, read against the form it was given on.
/// `consent_of` gives a carer's latest consent, evaluated ([`evaluate_given`]).
pub fn child_invitation(
    links: &[ParticipantId],
    consent_of: impl Fn(ParticipantId) -> Option<Result<ConsentOutcome, UnknownConsentForm>>,
) -> ChildInvitation {
    let mut first_problem = None;
    for &carer in links {
        let state = match consent_of(carer) {
            Some(Ok(outcome))
                if outcome.may_proceed && outcome.complete && outcome.child_invitation =>
            {
                return ChildInvitation::Allowed { carer };
            }
            Some(Ok(outcome)) if !outcome.blocking.is_empty() => {
                ChildInvitation::Declined { carer }
            }
            Some(Ok(_)) => ChildInvitation::NotAgreed { carer },
            Some(Err(_)) => ChildInvitation::UnknownForm { carer },
            None => ChildInvitation::NoConsent { carer },
        };
        // Report the most telling problem: a recorded "no" before a missing consent.
        let rank = |s: &ChildInvitation| match s {
            ChildInvitation::Declined { .. } => 0,
            ChildInvitation::NotAgreed { .. } => 1,
            ChildInvitation::UnknownForm { .. } => 2,
            _ => 3,
        };
        if first_problem
            .as_ref()
            .is_none_or(|p| rank(&state) < rank(p))
        {
            first_problem = Some(state);
        }
    }
    first_problem.unwrap_or(ChildInvitation::NoLinkedCarer)
}

/// What a participant's latest consent allows them to do in the study: the gate before their
/// interview (and, for a carer, before their child is invited: [`child_invitation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Participation {
    /// Every required item is yes: interview and activities may go ahead.
    Agreed,
    /// No consent recorded yet.
    NoConsent,
    /// A required item was answered no: the participant did not agree to take part. No
    /// interview and no activities.
    Declined {
        /// The ids of the required items answered no, in form order.
        blocking: Vec<String>,
    },
    /// Required items are not all answered yet.
    Incomplete,
    /// The consent is on a form this device does not have: record it again.
    UnknownForm,
}

impl Participation {
    /// Whether the interview (and activities) may go ahead.
    pub fn allowed(&self) -> bool {
        matches!(self, Participation::Agreed)
    }
}

/// The gate before a participant's interview: what their latest consent (evaluated against
/// its own form, [`evaluate_given`]; `None` when there is none) allows.
pub fn participation(
    consent: Option<&Result<ConsentOutcome, UnknownConsentForm>>,
) -> Participation {
    match consent {
        None => Participation::NoConsent,
        Some(Err(_)) => Participation::UnknownForm,
        Some(Ok(outcome)) if !outcome.blocking.is_empty() => Participation::Declined {
            blocking: outcome.blocking.clone(),
        },
        Some(Ok(outcome)) if outcome.may_proceed => Participation::Agreed,
        Some(Ok(_)) => Participation::Incomplete,
    }
}

/// Whether an interview note flagged as a quote comes from a participant who has not agreed
/// to direct quotes, so it must be marked "Not agreed for quotes" (in the app and in
/// exports). `consent` is the participant's latest consent, evaluated against its own form
/// ([`evaluate_given`]). A note not flagged as a quote is never marked. A flagged note is
/// marked when the consent says no to (or leaves unanswered) its form's quotes item, and also
/// when there is no consent or its form is unknown: nothing is known to allow the quote.
pub fn quote_not_agreed(
    note: &InterviewNoteBody,
    consent: Option<&Result<ConsentOutcome, UnknownConsentForm>>,
) -> bool {
    note.has_flag(NoteFlag::Quote) && !quotes_agreed(consent)
}

/// Whether a participant's latest consent (evaluated against its own form; `None` when there
/// is none) allows direct quotes ([`ConsentOutcome::quotes_allowed`]). No consent, or one on a
/// form the device does not have, allows none.
pub fn quotes_agreed(consent: Option<&Result<ConsentOutcome, UnknownConsentForm>>) -> bool {
    matches!(consent, Some(Ok(outcome)) if outcome.quotes_allowed)
}

/// A participant's latest consent was given on a version of their form that the current
/// version asks to be given again ([`reconsent_needed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconsent {
    /// The form's id.
    pub form_id: String,
    /// The version the latest consent was given on.
    pub given_on: String,
    /// The current version, on which consent must be given again.
    pub current: String,
}

/// Whether `latest`, a participant's latest consent, must be given again on `current`, the
/// form their group uses now: it is a consent on the same form, given on a version that
/// `current` lists in its `reconsent_versions`. The earlier consent stays as it was given,
/// and still counts for what it allowed, until a new one is recorded; recording one on
/// `current` clears this.
pub fn reconsent_needed(latest: &ConsentBody, current: &ConsentForm) -> Option<Reconsent> {
    (latest.form_id == current.id
        && latest.form_version != current.version
        && current.reconsent_versions.contains(&latest.form_version))
    .then(|| Reconsent {
        form_id: current.id.clone(),
        given_on: latest.form_version.clone(),
        current: current.version.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConsentItem, default_protocol};

    fn item(id: &str, required: bool, role: ConsentRole) -> ConsentItem {
        ConsentItem {
            id: id.into(),
            text: format!("{id} text"),
            required,
            role,
        }
    }

    fn form() -> ConsentForm {
        ConsentForm {
            id: "consent-test".into(),
            version: "1.0".into(),
            title: "Test".into(),
            withdrawal_deadline: None,
            items: vec![
                item("read", true, ConsentRole::Plain),
                item("audio", false, ConsentRole::AudioRecording),
                item("future", false, ConsentRole::FutureUse),
                item("take-part", true, ConsentRole::Plain),
            ],
            reconsent_versions: vec![],
        }
    }

    fn answers(pairs: &[(&str, bool)]) -> ConsentAnswers {
        let mut answers = ConsentAnswers::new();
        for (id, yes) in pairs {
            answers.set(*id, *yes);
        }
        answers
    }

    #[test]
    fn all_yes_may_proceed_with_audio() {
        let outcome = evaluate(
            &form(),
            &answers(&[
                ("read", true),
                ("audio", true),
                ("future", true),
                ("take-part", true),
            ]),
        );
        assert_eq!(
            outcome,
            ConsentOutcome {
                complete: true,
                may_proceed: true,
                audio_allowed: true,
                child_invitation: false,
                quotes_allowed: true,
                filming_allowed: false,
                blocking: vec![],
                unanswered: vec![],
            }
        );
    }

    #[test]
    fn a_required_no_blocks_and_is_named() {
        let outcome = evaluate(
            &form(),
            &answers(&[
                ("read", true),
                ("audio", true),
                ("future", true),
                ("take-part", false),
            ]),
        );
        assert!(outcome.complete);
        assert!(!outcome.may_proceed);
        assert_eq!(outcome.blocking, vec!["take-part".to_string()]);
    }

    #[test]
    fn an_optional_no_does_not_block() {
        let outcome = evaluate(
            &form(),
            &answers(&[
                ("read", true),
                ("audio", true),
                ("future", false),
                ("take-part", true),
            ]),
        );
        assert!(outcome.complete && outcome.may_proceed);
        assert!(outcome.blocking.is_empty());
    }

    #[test]
    fn no_to_audio_means_a_notes_only_interview_not_a_blocked_one() {
        let outcome = evaluate(
            &form(),
            &answers(&[
                ("read", true),
                ("audio", false),
                ("future", true),
                ("take-part", true),
            ]),
        );
        assert!(outcome.may_proceed);
        assert!(!outcome.audio_allowed);
    }

    #[test]
    fn audio_is_not_allowed_until_the_audio_item_is_answered_yes() {
        let unanswered = evaluate(&form(), &answers(&[("read", true), ("take-part", true)]));
        assert!(!unanswered.audio_allowed);
        // A "yes" to another item never switches audio on.
        let others_yes = evaluate(
            &form(),
            &answers(&[("read", true), ("future", true), ("take-part", true)]),
        );
        assert!(!others_yes.audio_allowed);
    }

    #[test]
    fn unanswered_items_are_listed_in_form_order_and_required_ones_hold_consent_back() {
        let outcome = evaluate(&form(), &answers(&[("audio", true)]));
        assert!(!outcome.complete);
        assert!(!outcome.may_proceed);
        assert!(outcome.audio_allowed);
        assert!(outcome.blocking.is_empty());
        assert_eq!(outcome.unanswered, vec!["read", "future", "take-part"]);

        // Only optional items left unanswered: may proceed, but the form is not complete.
        let optional_left = evaluate(&form(), &answers(&[("read", true), ("take-part", true)]));
        assert!(optional_left.may_proceed);
        assert!(!optional_left.complete);
        assert_eq!(optional_left.unanswered, vec!["audio", "future"]);
    }

    #[test]
    fn answers_to_items_the_form_does_not_have_are_ignored() {
        let outcome = evaluate(
            &form(),
            &answers(&[
                ("read", true),
                ("audio", false),
                ("future", false),
                ("take-part", true),
                ("old-item", false),
            ]),
        );
        assert!(outcome.complete && outcome.may_proceed);
    }

    #[test]
    fn a_carer_who_says_yes_to_every_required_item_may_proceed_on_the_default_form() {
        let form = default_protocol().consent_form_for("carers").unwrap();
        let mut answers = ConsentAnswers::new();
        for item in form.items.iter().filter(|item| item.required) {
            answers.set(item.id.clone(), true);
        }
        let outcome = evaluate(form, &answers);
        assert!(outcome.may_proceed);
        assert!(!outcome.audio_allowed);
        assert_eq!(
            outcome.unanswered,
            vec![
                "audio-recording",
                "quotes",
                "future-use",
                "child-invitation",
                "filming"
            ]
        );
    }

    #[test]
    fn answers_serialise_as_a_plain_object() {
        let answers = answers(&[("take-part", true), ("audio", false)]);
        let json = serde_json::to_string(&answers).unwrap();
        assert_eq!(json, r#"{"audio":false,"take-part":true}"#);
        assert_eq!(
            serde_json::from_str::<ConsentAnswers>(&json).unwrap(),
            answers
        );
    }

    fn body(form: &ConsentForm, pairs: &[(&str, bool)], keep_form: bool) -> ConsentBody {
        ConsentBody {
            form_id: form.id.clone(),
            form_version: form.version.clone(),
            answers: answers(pairs),
            signature: crate::fieldwork::ConsentSignature::VerbalWitnessed {
                reason: "test".into(),
            },
            form: keep_form.then(|| form.clone()),
        }
    }

    const ALL_YES: &[(&str, bool)] = &[
        ("read", true),
        ("audio", true),
        ("future", true),
        ("take-part", true),
    ];

    #[test]
    fn a_consent_is_read_against_the_copy_of_its_form_not_the_current_protocol() {
        let given_on = form();
        let consent = body(&given_on, ALL_YES, true);
        // A later protocol: same form id, new version, and "audio" no longer allows audio
        // while a new required item appears.
        let mut later = default_protocol().clone();
        let mut changed = form();
        changed.version = "2.0".into();
        changed.items[1].role = ConsentRole::Plain;
        changed
            .items
            .push(item("new-required", true, ConsentRole::Plain));
        later.consent_forms = vec![changed];
        let outcome = evaluate_given(&consent, [&later]).unwrap();
        assert!(outcome.may_proceed, "{outcome:?}");
        assert!(outcome.audio_allowed, "what was agreed on 1.0 still holds");
        assert_eq!(form_given_on(&consent, [&later]), Some(&given_on));
    }

    #[test]
    fn without_a_copy_the_protocol_version_with_the_same_form_version_is_used() {
        let mut v1 = default_protocol().clone();
        v1.consent_forms = vec![form()];
        let mut v2 = v1.clone();
        v2.version += 1;
        v2.consent_forms[0].version = "2.0".into();
        v2.consent_forms[0].items[1].role = ConsentRole::Plain;
        let consent = body(&form(), ALL_YES, false);
        // Whatever order the device lists its protocols in, the 1.0 form is the one read.
        for protocols in [[&v2, &v1], [&v1, &v2]] {
            assert!(evaluate_given(&consent, protocols).unwrap().audio_allowed);
        }
    }

    #[test]
    fn consents_on_the_earlier_built_in_forms_can_still_be_read() {
        let forms = earlier_built_in_forms();
        assert_eq!(forms.len(), 3);
        let carers = forms.iter().find(|f| f.id == "consent-carers").unwrap();
        assert_eq!(carers.version, "1.0, 2026-09-01");
        assert_ne!(
            default_protocol()
                .consent_form_for("carers")
                .unwrap()
                .version,
            carers.version,
            "the built-in form changed, so it has a new version"
        );
        let mut answers = ConsentAnswers::new();
        for item in &carers.items {
            answers.set(item.id.clone(), true);
        }
        let consent = ConsentBody {
            form_id: carers.id.clone(),
            form_version: carers.version.clone(),
            answers,
            signature: crate::fieldwork::ConsentSignature::VerbalWitnessed {
                reason: "test".into(),
            },
            form: None,
        };
        let outcome = evaluate_given(&consent, [default_protocol()]).unwrap();
        assert!(outcome.may_proceed && outcome.audio_allowed && outcome.child_invitation);
        assert!(
            outcome.quotes_allowed,
            "1.0 covered quotes in its confidentiality item"
        );
    }

    #[test]
    fn a_consent_on_a_form_the_device_does_not_have_allows_nothing_and_says_so() {
        let consent = body(&form(), ALL_YES, false);
        let error = evaluate_given(&consent, [default_protocol()]).unwrap_err();
        assert_eq!(error.form_id, "consent-test");
        assert!(
            error.to_string().contains("record consent again"),
            "{error}"
        );
    }

    #[test]
    fn a_copy_that_does_not_match_the_recorded_form_id_and_version_is_not_trusted() {
        let mut consent = body(&form(), ALL_YES, true);
        consent.form_version = "9.9".into();
        assert!(evaluate_given(&consent, [default_protocol()]).is_err());
    }

    fn carer_form() -> ConsentForm {
        let mut form = form();
        form.items
            .insert(2, item("invite-child", false, ConsentRole::ChildInvitation));
        form
    }

    #[test]
    fn a_child_is_invited_only_after_a_linked_carer_agreed_to_it() {
        let (c1, c2) = (
            ParticipantId::new(crate::Timestamp(1)),
            ParticipantId::new(crate::Timestamp(2)),
        );
        let yes = |invite: bool| {
            let mut pairs = ALL_YES.to_vec();
            pairs.push(("invite-child", invite));
            Some(Ok(evaluate(&carer_form(), &answers(&pairs))))
        };
        // No carer linked, or no consent at all: not allowed.
        assert_eq!(
            child_invitation(&[], |_| yes(true)),
            ChildInvitation::NoLinkedCarer
        );
        assert_eq!(
            child_invitation(&[c1], |_| None),
            ChildInvitation::NoConsent { carer: c1 }
        );
        // A consent that says no to the invitation, or leaves it unanswered.
        assert_eq!(
            child_invitation(&[c1], |_| yes(false)),
            ChildInvitation::NotAgreed { carer: c1 }
        );
        let unanswered = Some(Ok(evaluate(&carer_form(), &answers(ALL_YES))));
        assert!(!child_invitation(&[c1], |_| unanswered.clone()).allowed());
        // Yes to the invitation but no to a required item: not a valid consent.
        let mut pairs = ALL_YES.to_vec();
        pairs.push(("invite-child", true));
        pairs[0] = ("read", false);
        let blocked = Some(Ok(evaluate(&carer_form(), &answers(&pairs))));
        assert!(!child_invitation(&[c1], |_| blocked.clone()).allowed());
        // A consent on a form this tablet lacks allows nothing.
        let unknown = || {
            Some(Err(UnknownConsentForm {
                form_id: "x".into(),
                form_version: "1".into(),
            }))
        };
        assert_eq!(
            child_invitation(&[c1], |_| unknown()),
            ChildInvitation::UnknownForm { carer: c1 }
        );
        // Yes: allowed, by whichever linked carer agreed.
        assert_eq!(
            child_invitation(&[c1], |_| yes(true)),
            ChildInvitation::Allowed { carer: c1 }
        );
        let second_agreed = |c| if c == c2 { yes(true) } else { None };
        assert_eq!(
            child_invitation(&[c1, c2], second_agreed),
            ChildInvitation::Allowed { carer: c2 }
        );
        // Two carers, one said no and one has not consented: the "no" is what is reported.
        let mixed = |c| if c == c2 { yes(false) } else { None };
        assert_eq!(
            child_invitation(&[c1, c2], mixed),
            ChildInvitation::NotAgreed { carer: c2 }
        );
    }

    #[test]
    fn the_default_carers_form_invites_a_child_only_with_a_yes_to_that_item() {
        let form = default_protocol().consent_form_for("carers").unwrap();
        let mut answers = ConsentAnswers::new();
        for item in &form.items {
            answers.set(item.id.clone(), item.role != ConsentRole::ChildInvitation);
        }
        assert!(!evaluate(form, &answers).child_invitation);
        let item = form.item_with_role(ConsentRole::ChildInvitation).unwrap();
        answers.set(item.id.clone(), true);
        assert!(evaluate(form, &answers).child_invitation);
    }

    fn quotes_form() -> ConsentForm {
        let mut form = form();
        form.items
            .insert(1, item("quotes", false, ConsentRole::Quotes));
        form.items
            .insert(2, item("filming", false, ConsentRole::Filming));
        form
    }

    fn note(flags: Vec<NoteFlag>) -> InterviewNoteBody {
        InterviewNoteBody {
            guide_id: "guide".into(),
            question_id: None,
            text: "What they said.".into(),
            flags,
            started_at_ms: None,
            updated: crate::Timestamp(1),
        }
    }

    #[test]
    fn quotes_and_filming_are_allowed_only_by_a_yes_to_their_items() {
        let mut pairs = ALL_YES.to_vec();
        pairs.extend([("quotes", true), ("filming", true)]);
        let yes = evaluate(&quotes_form(), &answers(&pairs));
        assert!(yes.quotes_allowed && yes.filming_allowed && yes.may_proceed);
        let no = evaluate(&quotes_form(), &answers(ALL_YES));
        assert!(
            !no.quotes_allowed && !no.filming_allowed,
            "unanswered is not yes"
        );
        let mut pairs = ALL_YES.to_vec();
        pairs.extend([("quotes", false), ("filming", false)]);
        let no = evaluate(&quotes_form(), &answers(&pairs));
        assert!(!no.quotes_allowed && !no.filming_allowed);
        assert!(
            no.may_proceed,
            "both are optional: a no does not block taking part"
        );
        // A form without a quotes item covers quotes with its other items.
        assert!(evaluate(&form(), &answers(ALL_YES)).quotes_allowed);
    }

    #[test]
    fn a_quote_flag_is_marked_unless_the_participant_agreed_to_quotes() {
        let quote = note(vec![NoteFlag::Quote, NoteFlag::FollowUp]);
        let plain = note(vec![NoteFlag::FollowUp]);
        let with = |quotes: bool| {
            let mut pairs = ALL_YES.to_vec();
            pairs.extend([("quotes", quotes), ("filming", true)]);
            Ok(evaluate(&quotes_form(), &answers(&pairs)))
        };
        assert!(quote_not_agreed(&quote, Some(&with(false))));
        assert!(!quote_not_agreed(&quote, Some(&with(true))));
        // A note that is not a quote is never marked.
        assert!(!quote_not_agreed(&plain, Some(&with(false))));
        // Nothing known to allow it: marked.
        assert!(quote_not_agreed(&quote, None));
        let unknown = Err(UnknownConsentForm {
            form_id: "x".into(),
            form_version: "1".into(),
        });
        assert!(quote_not_agreed(&quote, Some(&unknown)));
        // On the default forms, a no to the quotes item marks the quote.
        let form = default_protocol().consent_form_for("carers").unwrap();
        let mut answers = ConsentAnswers::new();
        for item in &form.items {
            answers.set(item.id.clone(), item.role != ConsentRole::Quotes);
        }
        assert!(quote_not_agreed(
            &quote,
            Some(&Ok(evaluate(form, &answers)))
        ));
    }

    #[test]
    fn a_required_no_declines_taking_part_and_blocks_the_interview() {
        let mut pairs = ALL_YES.to_vec();
        pairs[3] = ("take-part", false);
        let declined = Ok(evaluate(&form(), &answers(&pairs)));
        assert_eq!(
            participation(Some(&declined)),
            Participation::Declined {
                blocking: vec!["take-part".into()]
            }
        );
        assert!(!participation(Some(&declined)).allowed());
        let agreed = Ok(evaluate(&form(), &answers(ALL_YES)));
        assert_eq!(participation(Some(&agreed)), Participation::Agreed);
        assert!(participation(Some(&agreed)).allowed());
        // An optional no does not block.
        let mut pairs = ALL_YES.to_vec();
        pairs[1] = ("audio", false);
        assert!(participation(Some(&Ok(evaluate(&form(), &answers(&pairs))))).allowed());
        assert_eq!(participation(None), Participation::NoConsent);
        let incomplete = Ok(evaluate(&form(), &answers(&[("read", true)])));
        assert_eq!(participation(Some(&incomplete)), Participation::Incomplete);
        let unknown = Err(UnknownConsentForm {
            form_id: "x".into(),
            form_version: "1".into(),
        });
        assert_eq!(participation(Some(&unknown)), Participation::UnknownForm);
        assert!(!participation(Some(&unknown)).allowed());
    }

    #[test]
    fn a_carer_who_declined_to_take_part_does_not_get_their_child_invited() {
        let c1 = ParticipantId::new(crate::Timestamp(1));
        let mut pairs = ALL_YES.to_vec();
        pairs.push(("invite-child", true));
        pairs[3] = ("take-part", false);
        let declined = Some(Ok(evaluate(&carer_form(), &answers(&pairs))));
        assert_eq!(
            child_invitation(&[c1], |_| declined.clone()),
            ChildInvitation::Declined { carer: c1 }
        );
    }

    #[test]
    fn re_consent_is_needed_only_for_a_version_the_current_form_names() {
        let old = form();
        let mut current = form();
        current.version = "2.0".into();
        let consent = body(&old, ALL_YES, true);
        // A new version that does not ask for re-consent: the old consent stands.
        assert_eq!(reconsent_needed(&consent, &current), None);
        current.reconsent_versions = vec!["0.9".into(), "1.0".into()];
        assert_eq!(
            reconsent_needed(&consent, &current),
            Some(Reconsent {
                form_id: "consent-test".into(),
                given_on: "1.0".into(),
                current: "2.0".into(),
            })
        );
        // Consent recorded again on the current version: no longer needed.
        let again = body(&current, ALL_YES, true);
        assert_eq!(reconsent_needed(&again, &current), None);
        // A consent on another form is not this form's business.
        let mut other = consent.clone();
        other.form_id = "consent-other".into();
        assert_eq!(reconsent_needed(&other, &current), None);
        // The old consent still allows what it allowed until then.
        assert!(
            evaluate_given(&consent, [default_protocol()])
                .unwrap()
                .may_proceed
        );
    }
}
