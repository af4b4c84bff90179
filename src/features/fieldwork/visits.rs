//! Visits: starting one, the visit hub with its steps in order, reflections, and closing
//! with the safeguarding check and a summary.

use attune_core::fieldwork::{NoteFlag, ReflectionBody, VisitBody};
use attune_core::{Kind, Links, ParticipantId, RecordId, RecordStore, VisitId};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::data::{self, Participant, Visit, VisitContents, visit_record};
use crate::components::autosave_text::AutosavedText;
use crate::components::save_indicator::clock_time;
use crate::records::Chain;
use crate::session::{now, use_sessions};

/// "Tue 27 Nov, 10:42 · Home".
pub fn visit_title(visit: &Visit) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(visit.body.date.0 as f64));
    let day: String = date.to_date_string().into();
    let place = crate::protocol::current()
        .place_types
        .iter()
        .find(|p| p.id == visit.body.place_type)
        .map(|p| p.label.clone())
        .unwrap_or_else(|| visit.body.place_type.clone());
    format!("{day}, {} \u{b7} {place}", clock_time(visit.body.date.0))
}

/// The visit id in the address.
fn visit_param() -> impl Fn() -> Option<VisitId> + Copy {
    let params = use_params_map();
    move || params.with(|p| p.get("visit").and_then(|s| s.parse::<VisitId>().ok()))
}

/// Start a visit: who is present, and where.
#[component]
pub fn StartVisitPage() -> impl IntoView {
    let sessions = use_sessions();
    let protocol = crate::protocol::current();
    let present = RwSignal::new(Vec::<ParticipantId>::new());
    let place = RwSignal::new(
        protocol
            .place_types
            .first()
            .map(|p| p.id.clone())
            .unwrap_or_default(),
    );
    let error = RwSignal::new(None::<String>);
    let people = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        Ok::<_, String>(
            data::participants(&session)
                .await?
                .into_iter()
                .filter(Participant::is_active)
                .collect::<Vec<_>>(),
        )
    });
    let navigate = use_navigate();
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let participants = present.get_untracked();
        if participants.is_empty() {
            error.set(Some("Choose who is taking part in this visit.".into()));
            return;
        }
        let id = VisitId::new(now());
        let body = VisitBody {
            date: now(),
            place_type: place.get_untracked(),
            participants,
            closed: None,
            safeguarding_acknowledged: None,
        };
        let links = Links {
            participant: None,
            visit: Some(id),
            protocol: Some(protocol.reference()),
        };
        let chain = Chain::new(visit_record(id), Kind::Visit, links, None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match chain.save(sessions, &body).await {
                Ok(_) => navigate(&format!("/visits/{id}"), Default::default()),
                Err(message) => {
                    error.try_set(Some(message));
                }
            }
        });
    };
    view! {
        <form class="panel form" on:submit=start aria-labelledby="start-heading">
            <h1 id="start-heading">"Start a visit"</h1>
            <Suspense fallback=|| view! { <p>"Opening..."</p> }>
                {move || people.get().map(|r| match r {
                    Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p>"Add the participants first."</p>
                        <a class="button" href="/participants/new">"New participant"</a>
                    }.into_any(),
                    Ok(list) => view! {
                        <fieldset class="choices">
                            <legend>"Who is taking part?"</legend>
                            {list.into_iter().map(|p| {
                                let id = p.id;
                                view! {
                                    <label class="choice" class:chosen=move || present.with(|v| v.contains(&id))>
                                        <input type="checkbox" prop:checked=move || present.with(|v| v.contains(&id))
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                present.update(|v| { v.retain(|x| *x != id); if on { v.push(id); } });
                                            } />
                                        <span>{p.label()}</span>
                                    </label>
                                }
                            }).collect_view()}
                        </fieldset>
                    }.into_any(),
                })}
            </Suspense>
            <fieldset class="choices">
                <legend>"Where?"</legend>
                {protocol.place_types.iter().map(|p| {
                    let (a, b, c) = (p.id.clone(), p.id.clone(), p.id.clone());
                    view! {
                        <label class="choice" class:chosen=move || place.get() == a>
                            <input type="radio" name="place" prop:checked=move || place.get() == b on:change=move |_| place.set(c.clone()) />
                            <span>{p.label.clone()}</span>
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
            <div class="form-actions">
                <button type="submit" class="button primary">"Start visit"</button>
            </div>
        </form>
    }
}

/// The visit, who is in it, its records, for each child why they may not be handed the
/// tablet yet (absent: they may), and everyone's latest consent in any visit (for re-consent
/// and quotes).
type LoadedVisit = Result<
    (
        Visit,
        Vec<Participant>,
        VisitContents,
        std::collections::HashMap<ParticipantId, String>,
        data::LatestConsents,
    ),
    String,
>;

/// Loads a visit, its participants and what it holds, again whenever `version` changes.
fn use_visit(version: RwSignal<u32>) -> LocalResource<LoadedVisit> {
    let sessions = use_sessions();
    let visit_id = visit_param();
    LocalResource::new(move || {
        let id = visit_id();
        version.track();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            let id = id.ok_or("This visit's address is not valid.")?;
            let visit = data::visit(&session, id)
                .await?
                .ok_or("No such visit on this tablet.")?;
            let everyone = data::participants(&session).await?;
            let present: Vec<Participant> = visit
                .body
                .participants
                .iter()
                .filter_map(|p| everyone.iter().find(|x| x.id == *p).cloned())
                .collect();
            let contents = data::visit_contents(&session, id).await?;
            let latest = data::latest_consents(&session).await?;
            let mut not_invited = std::collections::HashMap::new();
            for child in &present {
                let protocol = crate::protocol::current();
                if protocol
                    .group(&child.body.group)
                    .is_some_and(|g| g.takes_part_in_activities)
                {
                    if !child.is_active() {
                        not_invited.insert(
                            child.id,
                            format!("{} has withdrawn: no new activities.", child.body.code),
                        );
                        continue;
                    }
                    let gate = data::child_invitation(&latest, child);
                    if let Some(words) = data::child_invitation_words(&gate, child, &everyone) {
                        not_invited.insert(child.id, words);
                    }
                }
            }
            Ok((visit, present, contents, not_invited, latest))
        }
    })
}

/// On the visit hub: who of those present has a provisional code, and what it means.
fn provisional_note(present: &[Participant]) -> Option<impl IntoView + use<>> {
    let codes: Vec<String> = present
        .iter()
        .filter(|p| p.is_provisional())
        .map(|p| p.body.code.clone())
        .collect();
    (!codes.is_empty()).then(|| {
        let (who, verb) = match codes.len() {
            1 => (codes[0].clone(), "is a provisional code"),
            _ => (codes.join(", "), "are provisional codes"),
        };
        view! {
            <p class="notice provisional" data-testid="provisional-notice">
                <strong>{format!("{who} {verb}: code confirmed at next sync.")}</strong>
                " Their records stay on this tablet until then."
            </p>
        }
    })
}

/// The visit hub: the steps in order, each with its status.
#[component]
pub fn VisitPage() -> impl IntoView {
    let version = RwSignal::new(0);
    let loaded = use_visit(version);
    let protocol = crate::protocol::current();
    view! {
        <Suspense fallback=|| view! { <p>"Opening the visit..."</p> }>
            {move || loaded.get().map(|r| match r {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((visit, present, contents, not_invited, latest)) => {
                    let id = visit.id;
                    let closed = visit.body.closed.is_some();
                    let consent_rows = present.iter().filter_map(|p| {
                        // Only groups with a consent form (children give assent in child mode).
                        protocol.consent_form_for(&p.body.group)?;
                        if !p.is_active() {
                            return Some(view! {
                                <li class="step-row locked">
                                    <span class="step-disabled" aria-disabled="true">
                                        <span>{format!("Consent: {}", p.label())}</span>
                                        <span class="status">"Withdrawn"</span>
                                    </span>
                                </li>
                            }.into_any());
                        }
                        let reconsent = data::reconsent_words(&latest, p);
                        let status = match contents.consent_of(p.id).map(|(_, body)| data::consent_allows(body)) {
                            _ if reconsent.is_some() => ("blocked", "Re-consent needed".to_string()),
                            None => ("todo", "Not yet".to_string()),
                            Some(Ok(o)) if o.may_proceed => ("done", "Consent given".into()),
                            Some(Ok(_)) => ("blocked", "Not given".into()),
                            Some(Err(_)) => ("blocked", "Record again: form not on this tablet".into()),
                        };
                        Some(view! {
                            <li class=format!("step-row {}", status.0)>
                                <a href=format!("/visits/{id}/consent/{}", p.id)>
                                    <span>{format!("Consent: {}", p.label())}</span>
                                    <span class="status">{status.1}</span>
                                </a>
                            </li>
                            {reconsent.map(|words| view! { <li class="notice gate" data-testid="reconsent">{words}</li> })}
                        }.into_any())
                    }).collect_view();
                    let interview_rows = present.iter().filter_map(|p| {
                        protocol.consent_form_for(&p.body.group)?;
                        protocol.guide_for(&p.body.group)?;
                        if !p.is_active() {
                            return Some(view! {
                                <li class="step-row locked">
                                    <span class="step-disabled" aria-disabled="true">
                                        <span>{format!("Interview: {}", p.label())}</span>
                                        <span class="status">"Withdrawn"</span>
                                    </span>
                                </li>
                            }.into_any());
                        }
                        let gate = data::participation(contents.consent_of(p.id).map(|(_, b)| b));
                        let mine = || contents.notes.iter().filter(|(r, b)| r.participant == Some(p.id) && !b.text.trim().is_empty());
                        let notes = mine().count();
                        let quotes_not_agreed = if data::quotes_not_agreed(&latest, p.id) {
                            mine().filter(|(_, b)| b.has_flag(NoteFlag::Quote)).count()
                        } else {
                            0
                        };
                        Some(if gate.allowed() {
                            view! {
                                <li class="step-row">
                                    <a href=format!("/visits/{id}/interview/{}", p.id)>
                                        <span>{format!("Interview: {}", p.label())}</span>
                                        <span class="status">{format!("{notes} notes")}</span>
                                    </a>
                                </li>
                                {(quotes_not_agreed > 0).then(|| view! {
                                    <li class="notice gate" data-testid="quotes-not-agreed">{format!(
                                        "Not agreed for quotes: {} did not agree to direct quotes; {quotes_not_agreed} of their notes flagged as a quote must not be quoted.",
                                        p.body.code
                                    )}</li>
                                })}
                            }.into_any()
                        } else {
                            let declined = matches!(gate, attune_core::consent::Participation::Declined { .. });
                            let words = data::participation_words(p, &gate).filter(|_| declined);
                            view! {
                                <li class=if declined { "step-row locked blocked" } else { "step-row locked" }>
                                    <span class="step-disabled" aria-disabled="true">
                                        <span>{format!("Interview: {}", p.label())}</span>
                                        <span class="status">{if declined { "Did not agree to take part" } else { "Needs consent first" }}</span>
                                    </span>
                                </li>
                                {words.map(|words| view! { <li class="notice gate" data-testid="participation-gate">{words}</li> })}
                            }.into_any()
                        })
                    }).collect_view();
                    let children: Vec<(ParticipantId, String, String, Option<String>)> = present.iter()
                        .filter(|p| protocol.group(&p.body.group).is_some_and(|g| g.takes_part_in_activities))
                        .map(|p| (p.id, p.label(), p.body.code.clone(), not_invited.get(&p.id).cloned())).collect();
                    view! {
                        <section class="panel" aria-labelledby="visit-heading">
                            <h1 id="visit-heading">{visit_title(&visit)}</h1>
                            <p class="muted">{present.iter().map(Participant::label).collect::<Vec<_>>().join(", ")}</p>
                            {provisional_note(&present)}
                            {closed.then(|| view! { <p class="notice">"This visit is closed. Its records are kept on this tablet until they are synced."</p> })}
                            <ol class="steps">
                                <li><h2>"1 Consent"</h2><ul class="rows">{consent_rows}</ul></li>
                                <li><h2>"2 Interview"</h2><ul class="rows">{interview_rows}</ul></li>
                                <li>
                                    <h2>"3 Child activities"</h2>
                                    {if children.is_empty() {
                                        view! { <p class="muted">"No child in this visit."</p> }.into_any()
                                    } else {
                                        view! { <ul class="rows">{children.into_iter().map(|(pid, label, code, refused)| view! {
                                            <li class=if refused.is_some() { "step-row blocked" } else { "step-row" }><a href=format!("/visits/{id}/child/{pid}")>
                                                <span>{format!("Hand the tablet to {code}")}</span>
                                                <span class="status">{refused.clone().map_or(label, |_| "Carer's consent needed".to_string())}</span>
                                            </a></li>
                                            {refused.map(|words| view! { <li class="notice gate" data-testid="child-gate">{words}</li> })}
                                            <li class="step-row"><a href=format!("/visits/{id}/child/{pid}/summary")>
                                                <span>{format!("Child session summary: {code}")}</span>
                                                <span class="status">"Notes"</span>
                                            </a></li>
                                        }).collect_view()}</ul> }.into_any()
                                    }}
                                </li>
                                <li><h2>"4 Reflections"</h2><ul class="rows"><li class="step-row"><a href=format!("/visits/{id}/reflections")>
                                    <span>"Your reflections"</span>
                                    <span class="status">{if contents.reflection.as_ref().is_some_and(|(_, b)| !b.text.trim().is_empty()) { "Written" } else { "Not yet" }}</span>
                                </a></li></ul></li>
                                <li><h2>"5 Close visit"</h2><ul class="rows"><li class="step-row"><a href=format!("/visits/{id}/close")>
                                    <span>"Summary and close"</span>
                                    <span class="status">{if closed { "Closed" } else { "Open" }}</span>
                                </a></li></ul></li>
                            </ol>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// The fieldworker's reflections on a visit, saved as they type.
#[component]
pub fn ReflectionsPage() -> impl IntoView {
    let version = RwSignal::new(0);
    let loaded = use_visit(version);
    let sessions = use_sessions();
    view! {
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || loaded.get().map(|r| match r {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((visit, _, contents, _, _)) => {
                    let id = visit.id;
                    let (chain, initial) = match contents.reflection {
                        Some((head, body)) => (Chain::new(head.record_id, Kind::Reflection, head.links(), Some(head)), body.text),
                        None => (Chain::new(RecordId::new(now()), Kind::Reflection,
                            Links { participant: None, visit: Some(id), protocol: Some(crate::protocol::current().reference()) }, None), String::new()),
                    };
                    let save = move |text: String| {
                        let chain = chain.clone();
                        async move { chain.save(sessions, &ReflectionBody { text }).await }
                    };
                    view! {
                        <section class="panel">
                            <h1>"Reflections"</h1>
                            <AutosavedText label="Your reflections on this visit".to_string() initial=initial save=save rows=12
                                placeholder="What stood out, the setting, anything to follow up." />
                        </section>
                        <div class="actions"><a class="button primary" href=format!("/visits/{id}")>"Back to visit"</a></div>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// The closing summary: safeguarding flags first (acknowledged before closing), what was
/// captured, and what is not yet synced.
#[component]
pub fn CloseVisitPage() -> impl IntoView {
    let sessions = use_sessions();
    let version = RwSignal::new(0);
    let loaded = use_visit(version);
    let unsynced = LocalResource::new(move || {
        version.track();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            session
                .store
                .count_unsynced()
                .await
                .map_err(|e| crate::records::explain(&e))
        }
    });
    let error = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(false);
    let protocol = crate::protocol::current();
    let update_visit = move |visit: Visit, change: fn(&mut VisitBody)| {
        let mut body = visit.body.clone();
        change(&mut body);
        leptos::task::spawn_local(async move {
            match visit.chain().save(sessions, &body).await {
                Ok(_) => version.update(|v| *v += 1),
                Err(message) => {
                    error.try_set(Some(message));
                }
            }
        });
    };
    view! {
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || loaded.get().map(|r| match r {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((visit, present, contents, _, _)) => {
                    let id = visit.id;
                    let flagged: Vec<_> = contents.notes.iter()
                        .filter(|(_, b)| b.flags.contains(&NoteFlag::Safeguarding))
                        .map(|(r, b)| {
                            let who = present.iter().find(|p| Some(p.id) == r.participant).map(Participant::label).unwrap_or_default();
                            (who, b.text.clone())
                        }).collect();
                    let acknowledged = visit.body.safeguarding_acknowledged.is_some();
                    let closed = visit.body.closed.is_some();
                    let can_close = flagged.is_empty() || acknowledged;
                    let consents = contents.consents.len();
                    let notes = contents.notes.iter().filter(|(_, b)| !b.text.trim().is_empty()).count();
                    let recordings = contents.attachments.len();
                    let (v1, v2) = (visit.clone(), visit.clone());
                    view! {
                        {(!flagged.is_empty()).then(|| view! {
                            <section class="panel safeguarding" aria-labelledby="sg-heading" data-testid="safeguarding">
                                <h1 id="sg-heading">"Safeguarding concern"</h1>
                                <ul>{flagged.into_iter().map(|(who, text)| view! { <li><strong>{who}</strong>": "{text}</li> }).collect_view()}</ul>
                                <h2>"What to do"</h2>
                                <ol>{protocol.safeguarding.steps.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view()}</ol>
                                <p><strong>"Contact: "</strong>{protocol.safeguarding.contact.clone()}<br/><strong>"By: "</strong>{protocol.safeguarding.deadline.clone()}</p>
                                {if acknowledged {
                                    view! { <p class="notice" data-testid="acknowledged">"Acknowledged: you have followed these steps."</p> }.into_any()
                                } else {
                                    view! { <button class="button primary" on:click=move |_| update_visit(v1.clone(), |b| b.safeguarding_acknowledged = Some(now()))>
                                        "I have followed these steps"</button> }.into_any()
                                }}
                            </section>
                        })}
                        <section class="panel" aria-labelledby="summary-heading">
                            <h2 id="summary-heading">"What this visit captured"</h2>
                            <dl class="facts">
                                <dt>"Consent forms"</dt><dd>{consents.to_string()}</dd>
                                <dt>"Interview notes"</dt><dd data-testid="notes-count">{notes.to_string()}</dd>
                                <dt>"Recordings"</dt><dd>{recordings.to_string()}</dd>
                                <dt>"Not yet synced (all visits)"</dt>
                                <dd>{move || unsynced.get().map(|r| r.map(|n| n.to_string()).unwrap_or_else(|e| e))}</dd>
                            </dl>
                            <p class="muted">"Everything is saved on this tablet. Sync when you are back online."</p>
                            <Show when=move || error.get().is_some()>
                                <p class="notice error" role="alert">{move || error.get()}</p>
                            </Show>
                            {if closed {
                                view! { <p class="notice" data-testid="visit-closed">"This visit is closed."</p> }.into_any()
                            } else if !can_close {
                                view! { <p class="notice warn">"Acknowledge the safeguarding steps above before closing the visit."</p>
                                    <button class="button primary" disabled=true>"Close visit"</button> }.into_any()
                            } else {
                                view! {
                                    <Show when=move || confirming.get() fallback=move || view! {
                                        <button class="button primary" on:click=move |_| confirming.set(true)>"Close visit"</button>
                                    }>
                                        <p>"Close this visit? You can still read it, but it is finished."</p>
                                        <div class="form-actions">
                                            <button class="button" on:click=move |_| confirming.set(false)>"Not yet"</button>
                                            <button class="button primary" on:click={
                                                let v2 = v2.clone();
                                                move |_| update_visit(v2.clone(), |b| b.closed = Some(now()))
                                            }>"Yes, close the visit"</button>
                                        </div>
                                    </Show>
                                }.into_any()
                            }}
                            <p><a href=format!("/visits/{id}")>"Back to the visit"</a></p>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}
