//! Participants: the searchable list, adding one with the next code of their group (reserved
//! for this tablet by the server, or a provisional label: see [`super::codes`]), and a
//! participant's page with consent status, visits and withdrawal.

use attune_core::fieldwork::{
    ParticipantBody, ParticipantStatus, WithdrawalBody, withdrawal_request_record,
};
use attune_core::{Kind, Links, ParticipantId, RecordId};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::data::{self, Participant, participant_record};
use super::{codes, names};
use crate::records::Chain;
use crate::session::{now, use_sessions};

/// The list of participants with a search box and "New participant".
#[component]
pub fn ParticipantsPage() -> impl IntoView {
    let sessions = use_sessions();
    let query = RwSignal::new(String::new());
    let list = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        data::participants(&session).await
    });
    let protocol = crate::protocol::current();
    view! {
        <section class="panel" aria-labelledby="participants-heading">
            <h1 id="participants-heading">"Participants"</h1>
            <label class="field">
                <span>"Search by code, name or group"</span>
                <input type="search" prop:value=move || query.get()
                    on:input=move |ev| query.set(event_target_value(&ev)) />
            </label>
            <Suspense fallback=|| view! { <p>"Opening..."</p> }>
                {move || list.get().map(|result| match result {
                    Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                    Ok(all) => {
                        let q = query.get().trim().to_lowercase();
                        let shown: Vec<Participant> = all.into_iter().filter(|p| {
                            let group = protocol.group(&p.body.group).map(|g| g.name.to_lowercase()).unwrap_or_default();
                            q.is_empty() || p.label().to_lowercase().contains(&q) || group.contains(&q)
                        }).collect();
                        if shown.is_empty() {
                            view! { <p class="empty">"No participants yet."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="rows">
                                    {shown.into_iter().map(|p| {
                                        let group = protocol.group(&p.body.group).map(|g| g.name.clone()).unwrap_or_else(|| p.body.group.clone());
                                        let withdrawn = !p.is_active();
                                        let provisional = p.is_provisional();
                                        view! {
                                            <li><a href=format!("/participants/{}", p.id)>
                                                <strong>{p.label()}</strong>
                                                <span class="muted">{group}</span>
                                                {provisional.then(|| view! { <ProvisionalBadge /> })}
                                                {withdrawn.then(|| view! { <span class="badge warn">"Withdrawn"</span> })}
                                            </a></li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
        <div class="actions">
            <a class="button primary" href="/participants/new">"New participant"</a>
        </div>
    }
}

/// Marks a provisional label in lists.
#[component]
pub fn ProvisionalBadge() -> impl IntoView {
    view! { <span class="badge provisional" data-testid="provisional-code">"Code confirmed at next sync"</span> }
}

/// Adds a participant with the next pseudonymous code of their group.
#[component]
pub fn NewParticipantPage() -> impl IntoView {
    let sessions = use_sessions();
    let protocol = crate::protocol::current();
    let group = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let link = RwSignal::new(None::<ParticipantId>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let existing = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        data::participants(&session).await
    });
    let navigate = use_navigate();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(group_id) = group.get_untracked() else {
            error.set(Some("Choose the participant's group.".into()));
            return;
        };
        let Some(prefix) = protocol
            .group(&group_id)
            .and_then(|g| g.code_prefix.chars().next())
        else {
            return;
        };
        let name = name.get_untracked();
        let links_to: Vec<ParticipantId> = link.get_untracked().into_iter().collect();
        let id = ParticipantId::new(now());
        let links = Links {
            participant: Some(id),
            visit: None,
            protocol: Some(protocol.reference()),
        };
        let chain = Chain::new(participant_record(id), Kind::Participant, links, None);
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            // The code first (marked as given before any record uses it), the name
            // (device-only, keyed by the new id), then the synced record.
            let saved = async {
                let session = sessions.current().ok_or("the tablet is locked")?;
                let code = codes::new_code(&session, prefix).await?;
                let body = ParticipantBody {
                    code,
                    group: group_id,
                    name: None,
                    links: links_to,
                    status: ParticipantStatus::Active,
                };
                names::set(&session, id, Some(&name)).await?;
                chain.save(sessions, &body).await
            }
            .await;
            match saved {
                Ok(_) => navigate(&format!("/participants/{id}"), Default::default()),
                Err(message) => {
                    error.try_set(Some(message));
                    busy.try_set(false);
                }
            }
        });
    };
    let link_options = move || {
        let linked_group = group
            .get()
            .and_then(|g| protocol.group(&g))
            .and_then(|g| g.links_to.clone())?;
        let candidates: Vec<Participant> = existing
            .get()?
            .ok()?
            .into_iter()
            .filter(|p| p.is_active() && p.body.group == linked_group)
            .collect();
        let label = protocol
            .group(&linked_group)
            .map(|g| g.name.clone())
            .unwrap_or(linked_group);
        Some(view! {
            <fieldset class="choices">
                <legend>{format!("Linked to ({label})")}</legend>
                {if candidates.is_empty() {
                    view! { <p class="muted">"Nobody in that group yet; you can link them later."</p> }.into_any()
                } else {
                    candidates.into_iter().map(|p| {
                        let id = p.id;
                        view! {
                            <label class="choice" class:chosen=move || link.get() == Some(id)>
                                <input type="radio" name="link" prop:checked=move || link.get() == Some(id)
                                    on:change=move |_| link.set(Some(id)) />
                                <span>{p.label()}</span>
                            </label>
                        }
                    }).collect_view().into_any()
                }}
            </fieldset>
        })
    };
    view! {
        <form class="panel form" on:submit=create aria-labelledby="new-participant-heading">
            <h1 id="new-participant-heading">"New participant"</h1>
            <fieldset class="choices">
                <legend>"Group"</legend>
                {protocol.groups.iter().map(|g| {
                    let id = g.id.clone();
                    let id2 = id.clone();
                    let id3 = id.clone();
                    view! {
                        <label class="choice" class:chosen=move || group.get().as_deref() == Some(id.as_str())>
                            <input type="radio" name="group" prop:checked=move || group.get().as_deref() == Some(id2.as_str())
                                on:change=move |_| { group.set(Some(id3.clone())); link.set(None); } />
                            <span>{format!("{} ({}..)", g.name, g.code_prefix)}</span>
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            {link_options}
            <label class="field">
                <span>"Name (optional, kept only on this tablet)"</span>
                <input type="text" autocomplete="off" maxlength=names::MAX_NAME_CHARS prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
            </label>
            <p class="hint">"Everything else uses the participant's code. The name never leaves this tablet."</p>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
            <div class="form-actions">
                <a class="button" href="/participants">"Cancel"</a>
                <button type="submit" class="button primary" disabled=move || busy.get()>"Create participant"</button>
            </div>
        </form>
    }
}

/// One participant: code, group, links, consent, visits and withdrawal.
#[component]
pub fn ParticipantPage() -> impl IntoView {
    let sessions = use_sessions();
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<ParticipantId>().ok()));
    let version = RwSignal::new(0u32);
    let loaded = LocalResource::new(move || {
        let id = id();
        version.track();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            let id = id.ok_or("This participant's address is not valid.")?;
            let all = data::participants(&session).await?;
            let visits = data::visits(&session).await?;
            let me = all
                .iter()
                .find(|p| p.id == id)
                .cloned()
                .ok_or("No such participant on this tablet.")?;
            let mine: Vec<data::Visit> = visits
                .into_iter()
                .filter(|v| v.body.participants.contains(&id))
                .collect();
            let latest = data::latest_consents(&session).await?;
            let request = data::withdrawal_request(&session, id).await?;
            let consents = data::consents_of(&session, id).await?;
            Ok::<_, String>((me, all, mine, latest, request, consents))
        }
    });
    let protocol = crate::protocol::current();
    view! {
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || loaded.get().map(|result| match result {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((me, all, visits, latest, request, consents)) => {
                    let group = protocol.group(&me.body.group).map(|g| g.name.clone()).unwrap_or_default();
                    let links: Vec<String> = me.body.links.iter()
                        .filter_map(|l| all.iter().find(|p| p.id == *l).map(Participant::label))
                        .collect();
                    let linked_from: Vec<String> = all.iter()
                        .filter(|p| p.body.links.contains(&me.id))
                        .map(Participant::label).collect();
                    let active = me.is_active();
                    let provisional = me.is_provisional();
                    let consent = consent_facts(&me, &latest);
                    let requested = request.is_some();
                    let status = if requested { "Withdrawal requested" } else if active { "Taking part" } else { "Withdrawn" };
                    let code = me.body.code.clone();
                    view! {
                        <section class="panel" aria-labelledby="participant-heading">
                            <h1 id="participant-heading">{me.label()}</h1>
                            {provisional.then(|| view! { <ProvisionalNotice code=me.body.code.clone() /> })}
                            {requested.then(|| view! {
                                <p class="notice warn" role="status" data-testid="withdrawal-requested">
                                    <strong>"Withdrawal requested, waiting for the study team."</strong>
                                    {format!(" {code} takes part in nothing more: no new interviews or activities. Until the study team confirms, their data is kept, encrypted, as before; then it is deleted from this tablet and left out of the study's data.")}
                                </p>
                            })}
                            <dl class="facts">
                                <dt>"Group"</dt><dd>{group}</dd>
                                <dt>"Status"</dt><dd data-testid="participant-status">{status}</dd>
                                <dt>"Linked to"</dt><dd>{if links.is_empty() && linked_from.is_empty() { "Nobody".to_string() } else { [links, linked_from].concat().join(", ") }}</dd>
                                <dt>"Visits"</dt><dd>{visits.len().to_string()}</dd>
                                {consent.facts}
                            </dl>
                            {consent.reconsent.map(|words| view! { <p class="notice gate" data-testid="reconsent">{words}</p> })}
                            <ul class="rows">
                                {visits.into_iter().map(|v| view! {
                                    <li><a href=format!("/visits/{}", v.id)>{super::visits::visit_title(&v)}</a></li>
                                }).collect_view()}
                            </ul>
                        </section>
                        {(!consents.is_empty()).then(|| {
                            let pid = me.id;
                            view! {
                                <section class="panel" aria-labelledby="consents-heading">
                                    <h2 id="consents-heading">"Consent given"</h2>
                                    <p class="hint">"A copy for the participant: open it, then Print (or Save as PDF)."</p>
                                    <ul class="rows">
                                        {consents.into_iter().map(|c| view! {
                                            <li><a href=format!("/participants/{pid}/consent/{}", c.record_id)>
                                                <strong>"Copy of consent to print"</strong>
                                                <span class="muted">{super::copy::day_and_time(c.time.0)}</span>
                                            </a></li>
                                        }).collect_view()}
                                    </ul>
                                </section>
                            }
                        })}
                        <NameOnTablet participant=me.id name=me.name.clone().unwrap_or_default()
                            on_done=Callback::new(move |()| version.update(|v| *v += 1)) />
                        {(!requested).then(|| view! { <Withdraw participant=me.clone() on_done=Callback::new(move |()| version.update(|v| *v += 1)) /> })}
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// What a provisional label means, on the participant's page.
#[component]
fn ProvisionalNotice(code: String) -> impl IntoView {
    view! {
        <div class="notice provisional" data-testid="provisional-notice">
            <p><strong>{format!("{code} is a provisional code: code confirmed at next sync.")}</strong></p>
            <p>"The tablet had no study code left for their group (codes come from the research server at each sync, once the tablet is enrolled). "
               "At the next sync they get their code; until then their records stay on this tablet."</p>
        </div>
    }
}

/// What a participant's latest consent says, for their page.
struct ConsentFacts {
    /// `Consent`, `Quotes` and `Filming` rows of the facts list.
    facts: AnyView,
    /// "Re-consent needed" in words, if it is.
    reconsent: Option<String>,
}

/// The consent rows of a participant's page, from their latest consent in any visit, read
/// against the form it was given on. Groups without a consent form (children) have none.
fn consent_facts(me: &Participant, latest: &data::LatestConsents) -> ConsentFacts {
    use attune_core::consent::Participation;
    use attune_core::protocol::ConsentRole;
    let protocol = crate::protocol::current();
    if protocol.consent_form_for(&me.body.group).is_none() {
        return ConsentFacts {
            facts: ().into_any(),
            reconsent: None,
        };
    }
    let reconsent = data::reconsent_words(latest, me);
    let body = latest.get(&me.id).map(|(_, body)| body);
    let status = match (&reconsent, data::participation(body)) {
        (Some(_), _) => "Re-consent needed".to_string(),
        (None, Participation::Agreed) => format!(
            "Given (form version {})",
            body.map(|b| b.form_version.clone()).unwrap_or_default()
        ),
        (None, Participation::NoConsent) => "Not yet".into(),
        (None, Participation::Declined { .. }) => "Did not agree to take part".into(),
        (None, Participation::Incomplete) => "Not complete".into(),
        (None, Participation::UnknownForm) => "Record again: form not on this tablet".into(),
    };
    let given_on =
        body.and_then(|b| attune_core::consent::form_given_on(b, crate::protocol::known()));
    let outcome = body.and_then(|b| data::consent_allows(b).ok());
    let answer = |role: ConsentRole, yes: fn(&attune_core::consent::ConsentOutcome) -> bool| {
        let form = given_on?;
        form.item_with_role(role)?;
        Some(if outcome.as_ref().is_some_and(yes) {
            "Agreed"
        } else {
            "Not agreed"
        })
    };
    let quotes = answer(ConsentRole::Quotes, |o| o.quotes_allowed);
    let filming = answer(ConsentRole::Filming, |o| o.filming_allowed);
    ConsentFacts {
        facts: view! {
            <dt>"Consent"</dt><dd data-testid="participant-consent">{status}</dd>
            {quotes.map(|q| view! { <dt>"Quotes"</dt><dd data-testid="participant-quotes">{q}</dd> })}
            {filming.map(|f| view! { <dt>"Filming"</dt><dd data-testid="participant-filming">{f}</dd> })}
        }
        .into_any(),
        reconsent,
    }
}

/// The participant's real name: kept only on this tablet, changed or removed here.
#[component]
fn NameOnTablet(participant: ParticipantId, name: String, on_done: Callback<()>) -> impl IntoView {
    let sessions = use_sessions();
    let had_name = !name.is_empty();
    let text = RwSignal::new(name);
    let error = RwSignal::new(None::<String>);
    let save = move |value: Option<String>| {
        leptos::task::spawn_local(async move {
            let result = async {
                let session = sessions.current().ok_or("the tablet is locked")?;
                names::set(&session, participant, value.as_deref()).await
            }
            .await;
            match result {
                Ok(()) => on_done.run(()),
                Err(message) => {
                    error.try_set(Some(message));
                }
            }
        });
    };
    view! {
        <form class="panel form" aria-labelledby="name-heading"
            on:submit=move |ev| { ev.prevent_default(); save(Some(text.get_untracked())); }>
            <h2 id="name-heading">"Name on this tablet"</h2>
            <p class="hint">"Optional. The name stays on this tablet: it is never synced or exported."</p>
            <label class="field">
                <span>"Name"</span>
                <input type="text" autocomplete="off" maxlength=names::MAX_NAME_CHARS
                    prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) />
            </label>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
            <div class="form-actions">
                {had_name.then(|| view! {
                    <button type="button" class="button" on:click=move |_| save(None)>"Remove name"</button>
                })}
                <button type="submit" class="button">"Save name"</button>
            </div>
        </form>
    }
}

/// Which step of withdrawal is open.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WithdrawStep {
    Closed,
    /// Stop taking part, keep the data so far.
    Stop,
    /// Stop and withdraw their data: a request the study team confirms.
    WithdrawData,
}

/// Withdrawal: stop and keep the data so far, or stop and withdraw the data (recorded as a
/// withdrawal request, a sealed record like any other, which the study team confirms with a
/// signed withdrawal; the tablet then deletes the participant's data).
#[component]
fn Withdraw(participant: Participant, on_done: Callback<()>) -> impl IntoView {
    let sessions = use_sessions();
    let step = RwSignal::new(WithdrawStep::Closed);
    let reason = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let active = participant.is_active();
    let code = participant.body.code.clone();
    let participant = StoredValue::new_local(participant);
    let record = move |keep_data: bool| {
        let p = participant.get_value();
        let reason = reason.get_untracked().trim().to_string();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let at = now();
            let withdrawal = WithdrawalBody {
                participant: p.id,
                keep_data,
                reason: (!reason.is_empty()).then_some(reason),
                at,
            };
            let links = Links {
                participant: Some(p.id),
                visit: None,
                protocol: Some(crate::protocol::current().reference()),
            };
            // A request to withdraw the data has the participant's request id, so the server
            // can list it for the study team without opening it.
            let record_id = if keep_data {
                RecordId::new(at)
            } else {
                withdrawal_request_record(p.id)
            };
            let record = Chain::new(record_id, Kind::Withdrawal, links, None);
            let mut body = p.body.clone();
            body.status = ParticipantStatus::Withdrawn;
            let result = async {
                record.save(sessions, &withdrawal).await?;
                if p.is_active() {
                    p.chain().save(sessions, &body).await?;
                }
                Ok::<_, String>(())
            }
            .await;
            match result {
                Ok(()) => on_done.run(()),
                Err(message) => {
                    error.try_set(Some(message));
                    busy.try_set(false);
                }
            }
        });
    };
    let reason_field = move || {
        view! {
            <label class="field">
                <span>"Reason (optional: they do not have to give one)"</span>
                <input type="text" prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev)) />
            </label>
        }
    };
    let cancel = move |_| {
        step.set(WithdrawStep::Closed);
        error.set(None);
    };
    let code_for_view = code.clone();
    view! {
        <section class="panel" aria-labelledby="withdraw-heading">
            <h2 id="withdraw-heading">"Withdrawal"</h2>
            {move || match step.get() {
                WithdrawStep::Closed => view! {
                    <div class="form-actions stacked-actions">
                        {active.then(|| view! {
                            <button type="button" class="button" on:click=move |_| step.set(WithdrawStep::Stop)>"Stop taking part"</button>
                        })}
                        <button type="button" class="button danger" on:click=move |_| step.set(WithdrawStep::WithdrawData)>"Stop and withdraw their data"</button>
                    </div>
                }.into_any(),
                WithdrawStep::Stop => view! {
                    <div class="confirm" data-testid="withdraw-stop">
                        <h3>{format!("Stop {} taking part?", code_for_view)}</h3>
                        <p>"They take part in nothing more: no new interviews or activities. What they have said and done so far is kept for the study."</p>
                        {reason_field()}
                        <div class="form-actions">
                            <button type="button" class="button" on:click=cancel>"Cancel"</button>
                            <button type="button" class="button danger" disabled=move || busy.get() on:click=move |_| record(true)>"Yes, stop taking part"</button>
                        </div>
                    </div>
                }.into_any(),
                WithdrawStep::WithdrawData => view! {
                    <div class="confirm" data-testid="withdraw-confirm">
                        <h3>{format!("Stop and withdraw {}'s data?", code_for_view)}</h3>
                        <p>"What happens:"</p>
                        <ul class="plain-list">
                            <li>{format!("{} takes part in nothing more from now on: no new interviews or activities.", code_for_view)}</li>
                            <li>{format!("This tablet records a request to withdraw everything {} has said and done in the study, and sends it to the study team at the next sync.", code_for_view)}</li>
                            <li>"The study team confirms the request. Then their data is deleted from this tablet and left out of the study's data."</li>
                            <li>"Until then their data is kept, encrypted, as before. The request cannot be taken back on the tablet."</li>
                        </ul>
                        {reason_field()}
                        <div class="form-actions">
                            <button type="button" class="button" on:click=cancel>"Cancel"</button>
                            <button type="button" class="button danger" disabled=move || busy.get() on:click=move |_| record(false)>"Yes, withdraw their data"</button>
                        </div>
                    </div>
                }.into_any(),
            }}
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
        </section>
    }
}
