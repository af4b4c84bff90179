//! Consent: the protocol's form for the participant's group, each item yes or no, required
//! items gating the interview, and a drawn signature or witnessed verbal consent.

use attune_core::consent::evaluate;
use attune_core::fieldwork::{ConsentBody, ConsentSignature};
use attune_core::{Kind, Links, RecordId, VisitId};
use leptos::html::Canvas;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use wasm_bindgen::prelude::*;

use super::data;
use crate::records::Chain;
use crate::session::{now, use_sessions};

#[wasm_bindgen(module = "/src/features/fieldwork/signature.js")]
extern "C" {
    type SignaturePad;
    #[wasm_bindgen(js_name = attachSignaturePad)]
    fn attach_signature_pad(canvas: &web_sys::HtmlCanvasElement) -> SignaturePad;
    #[wasm_bindgen(method)]
    fn clear(this: &SignaturePad);
    #[wasm_bindgen(method, js_name = isEmpty)]
    fn is_empty(this: &SignaturePad) -> bool;
    #[wasm_bindgen(method, js_name = toPng)]
    fn to_png(this: &SignaturePad) -> String;
}

/// The consent form of one participant in a visit.
#[component]
pub fn ConsentPage() -> impl IntoView {
    let sessions = use_sessions();
    let ids = data::visit_and_participant_param();
    let loaded = LocalResource::new(move || {
        let ids = ids();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            let (visit, participant) = ids.ok_or("This address is not valid.")?;
            let (who, contents) = data::participant_in_visit(&session, visit, participant).await?;
            let existing = contents.consent_of(participant).cloned();
            Ok::<_, String>((visit, who, existing))
        }
    });
    view! {
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || loaded.get().map(|result| match result {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((visit, who, existing)) => view! {
                    <ConsentForm visit=visit participant=who existing=existing />
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn ConsentForm(
    visit: VisitId,
    participant: data::Participant,
    existing: Option<(attune_core::Revision, ConsentBody)>,
) -> impl IntoView {
    let sessions = use_sessions();
    let protocol = crate::protocol::current();
    let Some(form) = protocol.consent_form_for(&participant.body.group) else {
        return view! { <p class="notice">"This group has no consent form in the study protocol."</p> }.into_any();
    };
    let answers = RwSignal::new(
        existing
            .as_ref()
            .map(|(_, b)| b.answers.clone())
            .unwrap_or_default(),
    );
    let verbal = RwSignal::new(matches!(
        existing.as_ref().map(|(_, b)| &b.signature),
        Some(ConsentSignature::VerbalWitnessed { .. })
    ));
    let reason = RwSignal::new(match existing.as_ref().map(|(_, b)| &b.signature) {
        Some(ConsentSignature::VerbalWitnessed { reason }) => reason.clone(),
        _ => String::new(),
    });
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let canvas = NodeRef::<Canvas>::new();
    let pad = StoredValue::new_local(None::<SignaturePad>);
    Effect::new(move |_| {
        if let Some(el) = canvas.get() {
            pad.set_value(Some(attach_signature_pad(&el)));
        }
    });
    let outcome = Memo::new(move |_| answers.with(|a| evaluate(form, a)));
    // Read aloud as in child mode (never waited for); hidden where the browser has no speech.
    let can_speak = web_sys::window().is_some_and(|w| {
        js_sys::Reflect::get(&w, &wasm_bindgen::JsValue::from_str("speechSynthesis"))
            .is_ok_and(|s| !s.is_undefined() && !s.is_null())
    });
    let links = Links {
        participant: Some(participant.id),
        visit: Some(visit),
        protocol: Some(protocol.reference()),
    };
    let chain = match &existing {
        Some((head, _)) => Chain::new(
            head.record_id,
            Kind::Consent,
            head.links(),
            Some(head.clone()),
        ),
        None => Chain::new(RecordId::new(now()), Kind::Consent, links, None),
    };
    let chain = StoredValue::new_local(chain);
    let navigate = use_navigate();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !outcome.get_untracked().complete {
            error.set(Some("Answer every item, yes or no.".into()));
            return;
        }
        let signature = if verbal.get_untracked() {
            let reason = reason.get_untracked().trim().to_string();
            if reason.is_empty() {
                error.set(Some(
                    "Say why consent is verbal (for example: cannot write, prefers not to sign)."
                        .into(),
                ));
                return;
            }
            ConsentSignature::VerbalWitnessed { reason }
        } else {
            let png = pad.with_value(|p| {
                p.as_ref()
                    .filter(|p| !p.is_empty())
                    .map(SignaturePad::to_png)
            });
            match png {
                Some(png_base64) => ConsentSignature::Drawn { png_base64 },
                None => {
                    error.set(Some(
                        "Ask the participant to sign in the box, or choose verbal consent.".into(),
                    ));
                    return;
                }
            }
        };
        let body = ConsentBody {
            form_id: form.id.clone(),
            form_version: form.version.clone(),
            answers: answers.get_untracked(),
            signature,
            // The form as shown, so this consent is always read against it.
            form: Some(form.clone()),
        };
        busy.set(true);
        let chain = chain.get_value();
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match chain.save(sessions, &body).await {
                Ok(_) => navigate(&format!("/visits/{visit}"), Default::default()),
                Err(message) => {
                    error.try_set(Some(message));
                    busy.try_set(false);
                }
            }
        });
    };
    view! {
        <form class="panel form consent" on:submit=save aria-labelledby="consent-heading">
            <h1 id="consent-heading">{format!("Consent: {}", participant.label())}</h1>
            <p class="muted">{format!("{} (version {})", form.title, form.version)}</p>
            {form.withdrawal_deadline.clone().map(|date| view! {
                <p class="muted">{format!("Data can be withdrawn until {date}.")}</p>
            })}
            {existing.as_ref().filter(|(_, b)| b.form_id != form.id || b.form_version != form.version).map(|(_, b)| view! {
                <p class="notice" data-testid="consent-form-changed">{format!(
                    "Consent was given on version {} of this form. It still counts as it was given; saving here records consent again on version {}.",
                    b.form_version, form.version
                )}</p>
            })}
            {if can_speak {
                view! { <p class="hint">"For participants who prefer listening: \"Read aloud\" reads an item out; the words stay on screen."</p> }.into_any()
            } else {
                view! { <p class="hint" data-testid="no-speech">"This browser cannot read aloud: read each item to the participant."</p> }.into_any()
            }}
            <ol class="consent-items">
                {form.items.iter().enumerate().map(|(index, item)| {
                    let spoken = item.text.clone();
                    let id = item.id.clone();
                    let (id_yes, id_no, id_class_yes, id_class_no) = (id.clone(), id.clone(), id.clone(), id.clone());
                    let name = format!("item-{}", item.id);
                    view! {
                        <li>
                            <fieldset class="consent-item">
                                <legend>
                                    {item.text.clone()}
                                    {(!item.required).then(|| view! { <span class="muted">" (optional)"</span> })}
                                </legend>
                                <div class="yes-no">
                                    <label class="choice" class:chosen=move || answers.with(|a| a.0.get(&id_class_yes) == Some(&true))>
                                        <input type="radio" name=name.clone()
                                            prop:checked=move || answers.with(|a| a.0.get(&id) == Some(&true))
                                            on:change=move |_| answers.update(|a| { a.0.insert(id_yes.clone(), true); }) />
                                        <span>"Yes"</span>
                                    </label>
                                    <label class="choice" class:chosen=move || answers.with(|a| a.0.get(&id_class_no) == Some(&false))>
                                        <input type="radio" name=name.clone()
                                            on:change=move |_| answers.update(|a| { a.0.insert(id_no.clone(), false); }) />
                                        <span>"No"</span>
                                    </label>
                                    {can_speak.then(|| view! {
                                        <button type="button" class="button read-aloud" aria-label=format!("Read aloud item {}", index + 1)
                                            on:click=move |_| crate::features::child::say(std::slice::from_ref(&spoken))>
                                            "Read aloud"
                                        </button>
                                    })}
                                </div>
                            </fieldset>
                        </li>
                    }
                }).collect_view()}
            </ol>
            <Show when=move || !outcome.get().blocking.is_empty()>
                <p class="notice warn" role="alert" data-testid="consent-blocked">
                    "A required item was answered No: the interview cannot go ahead. Thank the participant; you can record that consent was not given."
                </p>
            </Show>
            <fieldset class="signature">
                <legend>"Signature"</legend>
                <label class="check">
                    <input type="checkbox" prop:checked=move || verbal.get() on:change=move |ev| verbal.set(event_target_checked(&ev)) />
                    <span>"Verbal consent, witnessed"</span>
                </label>
                <div class:hidden=move || verbal.get()>
                    <canvas node_ref=canvas class="signature-pad" aria-label="Signature: sign here with a finger"></canvas>
                    <button type="button" class="button" on:click=move |_| pad.with_value(|p| if let Some(p) = p { p.clear() })>"Clear signature"</button>
                </div>
                <Show when=move || verbal.get()>
                    <label class="field">
                        <span>"Why is consent verbal?"</span>
                        <input type="text" prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev)) />
                    </label>
                </Show>
            </fieldset>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
            <div class="form-actions">
                <a class="button" href=format!("/visits/{visit}")>"Back to visit"</a>
                <button type="submit" class="button primary" disabled=move || busy.get()>"Save consent"</button>
            </div>
        </form>
    }.into_any()
}
