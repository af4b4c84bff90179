//! The fieldworker's side of child mode: handing the tablet over, and the summary of a
//! child's session with a notes field for every answer.

use attune_core::fieldwork::{ActivityResponseBody, AssentBody};
use attune_core::{Kind, ParticipantId, Revision, VisitId};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::use_child;
use crate::components::autosave_text::AutosavedText;
use crate::features::fieldwork::data;
use crate::records::{self, Chain};
use crate::session::use_sessions;

fn ids() -> impl Fn() -> Option<(VisitId, ParticipantId)> + Copy {
    let params = use_params_map();
    move || {
        params.with(|p| {
            Some((
                p.get("visit")?.parse().ok()?,
                p.get("participant")?.parse().ok()?,
            ))
        })
    }
}

/// "Hand the tablet to K01": what child mode is, then the start button.
#[component]
pub fn HandOverPage() -> impl IntoView {
    let sessions = use_sessions();
    let child = use_child();
    let ids = ids();
    let who = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        let (_, pid) = ids().ok_or("This address is not valid.")?;
        let all = data::participants(&session).await?;
        let child = all
            .iter()
            .find(|p| p.id == pid)
            .cloned()
            .ok_or_else(|| "No such participant on this tablet.".to_string())?;
        // The carer's consent to the child being invited comes before the child's assent.
        let gate = data::child_invitation(&data::latest_consents(&session).await?, &child);
        let refused = if child.is_active() {
            data::child_invitation_words(&gate, &child, &all)
        } else {
            Some(format!(
                "{} has withdrawn: no new activities.",
                child.body.code
            ))
        };
        Ok::<_, String>((child, refused))
    });
    view! {
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || who.get().map(|r| match r {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((p, Some(refused))) => view! {
                    <section class="panel" aria-labelledby="handover-heading">
                        <h1 id="handover-heading">{format!("{} cannot be invited yet", p.body.code)}</h1>
                        <p class="notice error" role="alert" data-testid="child-not-invited">{refused}</p>
                        <p>"Child mode starts only after the carer has agreed to the child being invited. Then the child is asked if they want to take part."</p>
                        <div class="form-actions">
                            {ids().map(|(visit, _)| view! { <a class="button primary" href=format!("/visits/{visit}")>"Back to the visit"</a> })}
                        </div>
                    </section>
                }.into_any(),
                Ok((p, None)) => {
                    let code = p.body.code.clone();
                    view! {
                        <section class="panel" aria-labelledby="handover-heading">
                            <h1 id="handover-heading">{format!("Hand the tablet to {code}")}</h1>
                            <p>"Child mode shows only the child's screens: pictures, spoken words, and the red hand to stop and the arrow to skip at any time. It starts by asking the child if they want to take part."</p>
                            <p>"To leave child mode you will need your passphrase."</p>
                            <div class="form-actions">
                                <button type="button" class="button primary" on:click=move |_| {
                                    if let (Some((visit, participant)), Some(session)) = (ids(), sessions.current()) {
                                        child.start(visit, participant, session.profile.id);
                                    }
                                }>"Start child mode"</button>
                            </div>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// One saved answer of the child session.
#[derive(Clone)]
enum Entry {
    Assent(Revision, AssentBody),
    Response(Revision, ActivityResponseBody),
}

/// An answer in words for the fieldworker (core's wording, shared with the exports).
fn answer_words(body: &ActivityResponseBody) -> String {
    body.answer_words(crate::protocol::current().activity(&body.activity_id))
}

/// After child mode: every answer of the session, with notes of what the child said.
#[component]
pub fn ChildSummaryPage() -> impl IntoView {
    let sessions = use_sessions();
    let ids = ids();
    let loaded = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        let (visit, pid) = ids().ok_or("This address is not valid.")?;
        let code = data::participants(&session)
            .await?
            .into_iter()
            .find(|p| p.id == pid)
            .map(|p| p.body.code)
            .unwrap_or_default();
        let mut entries = Vec::new();
        for r in records::of_visit(&session, visit).await? {
            if r.participant != Some(pid) {
                continue;
            }
            match r.kind {
                Kind::Assent => {
                    let b = records::body(&r)?;
                    entries.push(Entry::Assent(r, b));
                }
                Kind::ActivityResponse => {
                    let b = records::body(&r)?;
                    entries.push(Entry::Response(r, b));
                }
                _ => {}
            }
        }
        // In the order the child answered.
        entries.sort_by_key(|e| match e {
            Entry::Assent(r, b) => b.time.unwrap_or(r.time),
            Entry::Response(_, b) => b.time,
        });
        Ok::<_, String>((visit, code, entries))
    });
    let protocol = crate::protocol::current();
    view! {
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || loaded.get().map(|r| match r {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((visit, code, entries)) => view! {
                    <section class="panel" aria-labelledby="child-summary-heading">
                        <h1 id="child-summary-heading">{format!("Child session: {code}")}</h1>
                        <p class="muted">"Everything the child answered, in order. Add what they said in the notes."</p>
                        {entries.is_empty().then(|| view! { <p>"Nothing was recorded."</p> })}
                        <ol class="child-summary" data-testid="child-summary">
                            {entries.into_iter().map(|e| match e {
                                Entry::Assent(_, b) => view! {
                                    <li class="summary-assent">
                                        <strong>{match &b.activity {
                                            None => "Assent".to_string(),
                                            Some(a) => format!("Assent before {}", protocol.activity(a).map_or(a.as_str(), |x| x.title.as_str())),
                                        }}</strong>
                                        ": " {b.answer.label()}
                                    </li>
                                }.into_any(),
                                Entry::Response(r, b) => {
                                    let act = protocol.activity(&b.activity_id);
                                    let title = act.map_or(b.activity_id.clone(), |a| a.title.clone());
                                    let prompt = act.and_then(|a| a.prompts.iter().find(|p| p.id == b.prompt_id))
                                        .map_or(b.prompt_id.clone(), |p| p.text.clone());
                                    let png = b.answer.get("png").and_then(|p| p.as_str()).filter(|p| !p.is_empty())
                                        .map(|p| format!("data:image/png;base64,{p}"));
                                    let chain = Chain::new(r.record_id, Kind::ActivityResponse, r.links(), Some(r.clone()));
                                    let base = std::rc::Rc::new(std::cell::RefCell::new(b.clone()));
                                    let save = move |text: String| {
                                        let chain = chain.clone();
                                        let base = base.clone();
                                        async move {
                                            let body = { let mut b = base.borrow_mut(); b.notes = Some(text); b.clone() };
                                            chain.save(sessions, &body).await
                                        }
                                    };
                                    view! {
                                        <li class="summary-response" data-testid="child-response">
                                            <p><strong>{title}</strong>": "{prompt}</p>
                                            <p class="answer">{answer_words(&b)}</p>
                                            {png.map(|src| view! { <img class="drawing-thumb" src=src alt="The child's drawing" /> })}
                                            <AutosavedText label="Notes: what the child said".to_string()
                                                initial=b.notes.clone().unwrap_or_default() save=save rows=3 />
                                        </li>
                                    }.into_any()
                                }
                            }).collect_view()}
                        </ol>
                        <div class="actions"><a class="button primary" href=format!("/visits/{visit}")>"Back to visit"</a></div>
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}
