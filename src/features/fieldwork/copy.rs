//! A copy of a consent for the participant: a printable page of a consent given (the form's
//! title and version, every item with its answer, the signature, the date and the participant's
//! code), printed with the browser's own "Print" (or "Save as PDF"). A name can be typed on the
//! page to print on the copy; it is never stored.

use attune_core::consent::form_given_on;
use attune_core::fieldwork::{ConsentBody, ConsentSignature};
use attune_core::{Kind, ParticipantId, RecordId};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::data;
use crate::components::save_indicator::clock_time;
use crate::records;
use crate::session::use_sessions;

/// "Tue Dec 01 2026, 10:42": the day and time of a consent, in the tablet's time zone.
pub fn day_and_time(millis: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    let day: String = date.to_date_string().into();
    format!("{day}, {}", clock_time(millis))
}

/// The printable copy of one consent: `/participants/:id/consent/:record`.
#[component]
pub fn ConsentCopyPage() -> impl IntoView {
    let sessions = use_sessions();
    let params = use_params_map();
    let ids = move || {
        params.with(|p| {
            let participant = p.get("id")?.parse::<ParticipantId>().ok()?;
            let record = p.get("record")?.parse::<RecordId>().ok()?;
            Some((participant, record))
        })
    };
    let loaded = LocalResource::new(move || {
        let ids = ids();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            let (participant, record) = ids.ok_or("This address is not valid.")?;
            let who = data::participants(&session)
                .await?
                .into_iter()
                .find(|p| p.id == participant)
                .ok_or("No such participant on this tablet.")?;
            let head = records::latest(&session, record)
                .await?
                .filter(|r| r.kind == Kind::Consent && r.participant == Some(participant))
                .ok_or("This consent is not on this tablet.")?;
            let body = records::body::<ConsentBody>(&head)?;
            Ok::<_, String>((who.id, who.body.code, head.time.0, body))
        }
    });
    view! {
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || loaded.get().map(|result| match result {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((participant, code, at, body)) => view! {
                    <ConsentCopy participant=participant code=code at=at body=body />
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn ConsentCopy(
    participant: ParticipantId,
    code: String,
    at: i64,
    body: ConsentBody,
) -> impl IntoView {
    // Typed here only to print it: never saved, gone when the page is left.
    let name = RwSignal::new(String::new());
    let Some(form) = form_given_on(&body, crate::protocol::known()).cloned() else {
        return view! {
            <section class="panel">
                <h1>"Copy of consent"</h1>
                <p class="notice error" role="alert">{format!(
                    "This consent was given on form {} version {}, which this tablet does not have, so its items cannot be printed.",
                    body.form_id, body.form_version
                )}</p>
                <a class="button" href=format!("/participants/{participant}")>"Back to participant"</a>
            </section>
        }.into_any();
    };
    let when = day_and_time(at);
    let signature = match &body.signature {
        ConsentSignature::Drawn { png_base64 } => view! {
            <img class="signature-copy" data-testid="copy-signature"
                src=format!("data:image/png;base64,{png_base64}")
                alt=format!("Signature of {code}") />
        }.into_any(),
        ConsentSignature::VerbalWitnessed { reason } => view! {
            <p data-testid="copy-signature">{format!("Verbal consent, witnessed by the fieldworker. Reason: {reason}")}</p>
        }.into_any(),
    };
    view! {
        <article class="panel consent-copy" aria-labelledby="copy-heading">
            <p class="eyebrow">"Copy for the participant"</p>
            <h1 id="copy-heading">{form.title.clone()}</h1>
            <p class="muted">{format!("Version {}", form.version)}</p>
            <dl class="facts">
                <dt>"Participant"</dt><dd data-testid="copy-code">{code.clone()}</dd>
                <Show when=move || !name.get().trim().is_empty()>
                    <dt class="print-only">"Name"</dt><dd class="print-only">{move || name.get().trim().to_string()}</dd>
                </Show>
                <dt>"Consent given"</dt><dd data-testid="copy-date">{when}</dd>
                {form.withdrawal_deadline.clone().map(|date| view! {
                    <dt>"Data can be withdrawn until"</dt><dd data-testid="copy-deadline">{date}</dd>
                })}
            </dl>
            <label class="field no-print">
                <span>"Name to print on this copy (optional, not saved)"</span>
                <input type="text" autocomplete="off" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
            </label>
            <p class="hint no-print">"The name is only printed. It is not kept anywhere, on this tablet or the server."</p>
            <h2>"What was agreed"</h2>
            <ol class="copy-items">
                {form.items.iter().map(|item| {
                    let answer = match body.answers.get(&item.id) {
                        Some(true) => "Yes",
                        Some(false) => "No",
                        None => "Not answered",
                    };
                    view! {
                        <li data-testid="copy-item">
                            <p>{item.text.clone()}{(!item.required).then_some(" (optional)")}</p>
                            <p class="copy-answer"><strong>{format!("Answer: {answer}")}</strong></p>
                        </li>
                    }
                }).collect_view()}
            </ol>
            <h2>"Signature"</h2>
            {signature}
            <div class="form-actions no-print">
                <a class="button" href=format!("/participants/{participant}")>"Back to participant"</a>
                <button type="button" class="button primary" on:click=move |_| {
                    if let Some(window) = web_sys::window() {
                        let _ = window.print();
                    }
                }>"Print"</button>
            </div>
        </article>
    }.into_any()
}
