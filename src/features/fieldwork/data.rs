//! Loading the study's records of the open session: participants, visits and what a visit
//! holds. Decisions about them (codes, consent, progress) live in attune-core.

use attune_core::fieldwork::{
    ConsentBody, InterviewNoteBody, ParticipantBody, ParticipantStatus, ReflectionBody, VisitBody,
};
use attune_core::{Kind, ParticipantId, RecordId, Revision, VisitId};
use leptos::prelude::With;

use crate::records::{self, Chain};
use crate::session::Session;

/// A participant record, decrypted.
#[derive(Clone)]
pub struct Participant {
    /// The participant (also the id of their record).
    pub id: ParticipantId,
    /// The latest revision, to append the next one.
    pub head: Revision,
    /// Code, group, links, status.
    pub body: ParticipantBody,
    /// The real name, if the fieldworker gave one: kept only on this tablet (see
    /// [`names`](super::names)), never in the record.
    pub name: Option<String>,
}

impl Participant {
    /// Whether they are still taking part.
    pub fn is_active(&self) -> bool {
        self.body.status == ParticipantStatus::Active
    }

    /// The edit chain of this participant's record.
    pub fn chain(&self) -> Chain {
        Chain::new(
            self.head.record_id,
            Kind::Participant,
            self.head.links(),
            Some(self.head.clone()),
        )
    }

    /// Whether their code is a provisional label (`C-new-1`), confirmed at the next sync.
    pub fn is_provisional(&self) -> bool {
        attune_core::codes::is_provisional(&self.body.code)
    }

    /// "C03 (Dana)" or "C03".
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} ({name})", self.body.code),
            None => self.body.code.clone(),
        }
    }
}

/// A visit record, decrypted.
#[derive(Clone)]
pub struct Visit {
    /// The visit (also the id of its record).
    pub id: VisitId,
    /// The latest revision.
    pub head: Revision,
    /// Date, place, participants, closing state.
    pub body: VisitBody,
}

impl Visit {
    /// The edit chain of this visit's record.
    pub fn chain(&self) -> Chain {
        Chain::new(
            self.head.record_id,
            Kind::Visit,
            self.head.links(),
            Some(self.head.clone()),
        )
    }
}

/// The record id that holds a participant (the same UUID).
pub fn participant_record(id: ParticipantId) -> RecordId {
    RecordId::from_uuid(id.as_uuid().to_owned())
}

/// The participant's data withdrawal request made on this tablet, if any (the record at
/// [`withdrawal_request_record`](attune_core::fieldwork::withdrawal_request_record)).
pub async fn withdrawal_request(
    session: &Session,
    participant: ParticipantId,
) -> Result<Option<attune_core::fieldwork::WithdrawalBody>, String> {
    let id = attune_core::fieldwork::withdrawal_request_record(participant);
    records::latest(session, id)
        .await?
        .filter(|r| r.kind == Kind::Withdrawal)
        .map(|r| records::body(&r))
        .transpose()
}

/// Every consent a participant gave on this tablet (the latest revision of each), newest first.
pub async fn consents_of(
    session: &Session,
    participant: ParticipantId,
) -> Result<Vec<Revision>, String> {
    let mut list: Vec<Revision> = records::latest_of_kind(session, Kind::Consent)
        .await?
        .into_iter()
        .filter(|r| r.participant == Some(participant))
        .collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.time));
    Ok(list)
}

/// The record id that holds a visit (the same UUID).
pub fn visit_record(id: VisitId) -> RecordId {
    RecordId::from_uuid(id.as_uuid().to_owned())
}

/// Every participant on this tablet, ordered by code, with their names.
pub async fn participants(session: &Session) -> Result<Vec<Participant>, String> {
    let mut names = super::names::load(session).await?;
    let mut list = Vec::new();
    for head in records::latest_of_kind(session, Kind::Participant).await? {
        let body = records::body::<ParticipantBody>(&head)?;
        let id = ParticipantId::from_uuid(head.record_id.as_uuid().to_owned());
        // A name still in an old record moves to device-only storage the first time it is
        // read, so editing it from now on never writes it into a record again.
        if names.get(id).is_none()
            && let Some(legacy) = body.name.as_deref().filter(|n| !n.trim().is_empty())
        {
            super::names::set(session, id, Some(legacy)).await?;
            names = super::names::load(session).await?;
        }
        let name = names.get(id).map(str::to_owned);
        list.push(Participant {
            id,
            head,
            body,
            name,
        });
    }
    list.sort_by(|a, b| a.body.code.cmp(&b.body.code));
    Ok(list)
}

/// Every visit on this tablet, newest first.
pub async fn visits(session: &Session) -> Result<Vec<Visit>, String> {
    let mut list = records::latest_of_kind(session, Kind::Visit)
        .await?
        .into_iter()
        .map(|head| {
            let body = records::body::<VisitBody>(&head)?;
            let id = VisitId::from_uuid(head.record_id.as_uuid().to_owned());
            Ok(Visit { id, head, body })
        })
        .collect::<Result<Vec<_>, String>>()?;
    list.sort_by_key(|v| std::cmp::Reverse(v.body.date));
    Ok(list)
}

/// One visit, if it exists.
pub async fn visit(session: &Session, id: VisitId) -> Result<Option<Visit>, String> {
    records::latest(session, visit_record(id))
        .await?
        .map(|head| records::body::<VisitBody>(&head).map(|body| Visit { id, head, body }))
        .transpose()
}

/// Everything recorded in one visit.
#[derive(Clone, Default)]
pub struct VisitContents {
    /// Consent forms, with their participant.
    pub consents: Vec<(Revision, ConsentBody)>,
    /// Interview notes.
    pub notes: Vec<(Revision, InterviewNoteBody)>,
    /// The fieldworker's reflections.
    pub reflection: Option<(Revision, ReflectionBody)>,
    /// Attachment records (audio).
    pub attachments: Vec<Revision>,
}

impl VisitContents {
    /// The latest consent of a participant in this visit.
    pub fn consent_of(&self, participant: ParticipantId) -> Option<&(Revision, ConsentBody)> {
        self.consents
            .iter()
            .filter(|(rev, _)| rev.participant == Some(participant))
            .max_by_key(|(rev, _)| rev.time)
    }
}

/// What a recorded consent allows, read against the form it was given on (kept in the record,
/// or the protocol version with its form id and version), never the current form. An error
/// says, in words for the fieldworker, that this tablet lacks that form.
pub fn consent_allows(body: &ConsentBody) -> Result<attune_core::consent::ConsentOutcome, String> {
    attune_core::consent::evaluate_given(body, crate::protocol::known()).map_err(|e| {
        let mut message = e.to_string();
        if let Some(first) = message.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        message + "."
    })
}

/// Each participant's latest consent, in any visit (the latest revision of their newest
/// consent record).
pub type LatestConsents =
    std::collections::HashMap<ParticipantId, (attune_core::Timestamp, ConsentBody)>;

/// Every participant's latest consent on this tablet, in any visit.
pub async fn latest_consents(session: &Session) -> Result<LatestConsents, String> {
    let mut latest = LatestConsents::new();
    for revision in records::latest_of_kind(session, Kind::Consent).await? {
        let Some(pid) = revision.participant else {
            continue;
        };
        let body = records::body::<ConsentBody>(&revision)?;
        if latest
            .get(&pid)
            .is_none_or(|(time, _)| *time < revision.time)
        {
            latest.insert(pid, (revision.time, body));
        }
    }
    Ok(latest)
}

/// Whether `child` may be handed the tablet: a linked carer's latest consent (in any visit,
/// from [`latest_consents`]), read against its own form, says yes to inviting the child
/// ([`attune_core::consent::child_invitation`]).
pub fn child_invitation(
    latest: &LatestConsents,
    child: &Participant,
) -> attune_core::consent::ChildInvitation {
    attune_core::consent::child_invitation(&child.body.links, |carer| {
        latest
            .get(&carer)
            .map(|(_, body)| attune_core::consent::evaluate_given(body, crate::protocol::known()))
    })
}

/// Whether a participant's direct quotes are not agreed, by their latest consent (in any
/// visit, read against its own form): a note of theirs flagged as a quote is then marked
/// "Not agreed for quotes" ([`attune_core::consent::quote_not_agreed`]).
pub fn quotes_not_agreed(latest: &LatestConsents, participant: ParticipantId) -> bool {
    let consent = latest
        .get(&participant)
        .map(|(_, body)| attune_core::consent::evaluate_given(body, crate::protocol::known()));
    !attune_core::consent::quotes_agreed(consent.as_ref())
}

/// "Re-consent needed" in words, when the participant's latest consent (in any visit) was
/// given on a version of their form that the form in use asks to be given again
/// ([`attune_core::consent::reconsent_needed`]); `None` otherwise.
pub fn reconsent_words(latest: &LatestConsents, participant: &Participant) -> Option<String> {
    let form = crate::protocol::current().consent_form_for(&participant.body.group)?;
    let (_, body) = latest.get(&participant.id)?;
    let needed = attune_core::consent::reconsent_needed(body, form)?;
    Some(format!(
        "Re-consent needed: {} consented on version {} of the form; version {} asks for consent again. Their earlier consent and notes are kept. Record their consent on the new form.",
        participant.body.code, needed.given_on, needed.current
    ))
}

/// The gate before a participant's interview, from their consent in this visit read against
/// its own form ([`attune_core::consent::participation`]).
pub fn participation(consent: Option<&ConsentBody>) -> attune_core::consent::Participation {
    let outcome =
        consent.map(|body| attune_core::consent::evaluate_given(body, crate::protocol::known()));
    attune_core::consent::participation(outcome.as_ref())
}

/// Why a participant's interview (and activities) may not go ahead, in words for the
/// fieldworker; `None`: they may.
pub fn participation_words(
    participant: &Participant,
    gate: &attune_core::consent::Participation,
) -> Option<String> {
    use attune_core::consent::Participation;
    let code = &participant.body.code;
    Some(match gate {
        Participation::Agreed => return None,
        Participation::Declined { .. } => {
            format!("{code} did not agree to take part: no interview or activities.")
        }
        Participation::NoConsent | Participation::Incomplete => format!(
            "Consent is needed before {code}'s interview. Go back to the visit and record consent first."
        ),
        Participation::UnknownForm => format!(
            "{code}'s consent was given on a form this tablet does not have: record it again before the interview."
        ),
    })
}

/// Why a child may not be handed the tablet, in words for the fieldworker (`None`: they may).
pub fn child_invitation_words(
    gate: &attune_core::consent::ChildInvitation,
    child: &Participant,
    all: &[Participant],
) -> Option<String> {
    use attune_core::consent::ChildInvitation as Gate;
    let code_of = |id: &ParticipantId| {
        all.iter()
            .find(|p| p.id == *id)
            .map_or_else(|| "Their carer".to_string(), |p| p.body.code.clone())
    };
    let child_code = &child.body.code;
    Some(match gate {
        Gate::Allowed { .. } => return None,
        Gate::NoLinkedCarer => format!(
            "{child_code} is not linked to a carer. Link them to their carer on their participant page; the carer's consent comes first."
        ),
        Gate::NoConsent { carer } => format!(
            "{} has not agreed to {child_code} being invited: record {}'s consent first.",
            code_of(carer),
            code_of(carer)
        ),
        Gate::Declined { carer } => format!(
            "{} did not agree to take part: {child_code} is not invited.",
            code_of(carer)
        ),
        Gate::NotAgreed { carer } => format!(
            "{} has not agreed to {child_code} being invited.",
            code_of(carer)
        ),
        Gate::UnknownForm { carer } => format!(
            "{}'s consent was given on a form this tablet does not have: record it again before {child_code} is invited.",
            code_of(carer)
        ),
    })
}

/// Reads and sorts the records of a visit.
pub async fn visit_contents(session: &Session, id: VisitId) -> Result<VisitContents, String> {
    let mut contents = VisitContents::default();
    for revision in records::of_visit(session, id).await? {
        match revision.kind {
            Kind::Consent => {
                let body = records::body(&revision)?;
                contents.consents.push((revision, body));
            }
            Kind::InterviewNote => {
                let body = records::body(&revision)?;
                contents.notes.push((revision, body));
            }
            Kind::Reflection => {
                let body = records::body(&revision)?;
                contents.reflection = Some((revision, body));
            }
            Kind::Attachment => contents.attachments.push(revision),
            _ => {}
        }
    }
    Ok(contents)
}

/// Who has consented (every required item yes) and who has been interviewed (at least one
/// note), across all visits: what the dashboard counts.
pub async fn consented_and_interviewed(
    session: &Session,
    participants: &[Participant],
) -> Result<
    (
        std::collections::HashSet<ParticipantId>,
        std::collections::HashSet<ParticipantId>,
    ),
    String,
> {
    let mut consented = std::collections::HashSet::new();
    for revision in records::latest_of_kind(session, Kind::Consent).await? {
        let body = records::body::<ConsentBody>(&revision)?;
        let Some(pid) = revision.participant else {
            continue;
        };
        if !participants.iter().any(|p| p.id == pid) {
            continue;
        }
        if consent_allows(&body).is_ok_and(|o| o.may_proceed) {
            consented.insert(pid);
        }
    }
    let mut interviewed = std::collections::HashSet::new();
    for revision in records::latest_of_kind(session, Kind::InterviewNote).await? {
        let body = records::body::<InterviewNoteBody>(&revision)?;
        if let (Some(pid), false) = (revision.participant, body.text.trim().is_empty()) {
            interviewed.insert(pid);
        }
    }
    Ok((consented, interviewed))
}

/// The `(visit, participant)` in addresses like `/visits/:visit/consent/:participant`.
pub fn visit_and_participant_param() -> impl Fn() -> Option<(VisitId, ParticipantId)> + Copy {
    let params = leptos_router::hooks::use_params_map();
    move || {
        params.with(|p| {
            let visit = p.get("visit")?.parse::<VisitId>().ok()?;
            let participant = p.get("participant")?.parse::<ParticipantId>().ok()?;
            Some((visit, participant))
        })
    }
}

/// One participant of a visit and everything the visit holds (consent and interview screens).
pub async fn participant_in_visit(
    session: &Session,
    visit: VisitId,
    participant: ParticipantId,
) -> Result<(Participant, VisitContents), String> {
    let who = participants(session)
        .await?
        .into_iter()
        .find(|p| p.id == participant)
        .ok_or("No such participant.")?;
    Ok((who, visit_contents(session, visit).await?))
}
