//! A new enrolment code (study admins): made on the server for one fieldworker, shown once
//! beside the study fingerprint, which this page computes from the study signing key in the
//! opened key file (never from what the server says), as large text and as a QR code.

use attune_core::review::enrolment::{
    ENROLMENT_CODES_PATH, EnrolmentCode, MAX_FIELDWORKER_CHARS, MAX_VALID_HOURS, NewEnrolmentCode,
    enrolment_qr_text,
};
use leptos::prelude::*;

use crate::api;
use crate::app::Unlocked;
use crate::error::Error;
use crate::study::when;

/// A code made here, with whom it is for.
#[derive(Clone)]
struct Made {
    code: EnrolmentCode,
    fieldworker: String,
    hours: u32,
}

/// The form and, once made, the code with the fingerprint.
#[component]
pub fn NewCode(unlocked: Unlocked) -> impl IntoView {
    let fingerprint = unlocked
        .signing
        .as_ref()
        .map(|signing| signing.public_key().fingerprint().to_string());
    let name = RwSignal::new(String::new());
    let hours = RwSignal::new("24".to_owned());
    let made = RwSignal::new(None::<Made>);
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Ok(valid_hours) = hours.get_untracked().trim().parse::<u32>() else {
            problem.set(Some(Error::Form(format!(
                "Type how many hours the code stays valid: a whole number from 1 to {MAX_VALID_HOURS}."
            ))));
            return;
        };
        let body = NewEnrolmentCode {
            fieldworker: name.get_untracked(),
            valid_hours,
        };
        let fieldworker = match body.checked() {
            Ok(fieldworker) => fieldworker,
            Err(why) => {
                problem.set(Some(Error::Form(why)));
                return;
            }
        };
        problem.set(None);
        made.set(None);
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::post::<_, EnrolmentCode>(ENROLMENT_CODES_PATH, &body).await {
                Ok(code) => {
                    made.set(Some(Made {
                        code,
                        fieldworker,
                        hours: valid_hours,
                    }));
                    name.set(String::new());
                }
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    let Some(fingerprint) = fingerprint else {
        return view! {
            <div class="card">
                <h2>"New enrolment code"</h2>
                <p class="error" role="alert">
                    "This study key file is version 1: it has no signing key, so tablets could not check "
                    "the study's instructions. A study admin must make a new key file with "
                    "`attune-server study upgrade-key` and open that one here."
                </p>
            </div>
        }
        .into_any();
    };
    let fingerprint = StoredValue::new(fingerprint);
    view! {
        <div class="card">
            <h2>"New enrolment code"</h2>
            <p>"A code enrols one tablet, once, for the fieldworker named here."</p>
            // The checks and their words are core's (`NewEnrolmentCode::checked`), not the
            // browser's bubbles.
            <form on:submit=submit novalidate>
                <label for="enrol-name">"Fieldworker's name"</label>
                <input id="enrol-name" type="text" maxlength=MAX_FIELDWORKER_CHARS.to_string()
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                <label for="enrol-hours">"Hours it stays valid (1 to 168)"</label>
                <input id="enrol-hours" type="number" min="1" max=MAX_VALID_HOURS.to_string() inputmode="numeric"
                    prop:value=move || hours.get()
                    on:input=move |ev| hours.set(event_target_value(&ev)) />
                <button class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Making the code…" } else { "Make an enrolment code" }}
                </button>
            </form>
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
            {move || made.get().map(|made| {
                let fingerprint = fingerprint.get_value();
                let qr = super::qr::svg(&enrolment_qr_text(&made.code.code, &fingerprint));
                view! {
                    <div class="notice enrol-code" role="status">
                        <p><strong>{format!(
                            "Give this code to {} only. It works once, for {} hours (until {}).",
                            made.fieldworker, made.hours, when(made.code.expires_at)
                        )}</strong></p>
                        <div class="enrol-grid">
                            <dl class="big">
                                <dt>"Enrolment code"</dt>
                                <dd data-testid="enrolment-code">{made.code.code.clone()}</dd>
                                <dt>"Study fingerprint"</dt>
                                <dd data-testid="study-fingerprint">{fingerprint.clone()}</dd>
                            </dl>
                            {qr.map(|svg| view! {
                                <figure class="qr">
                                    <img src=svg alt="QR code of the enrolment code and the study fingerprint" />
                                    <figcaption class="muted">"Both, as a QR code (tablets do not scan it yet: type them)."</figcaption>
                                </figure>
                            })}
                        </div>
                        <p>"On the tablet: open Sync, then Enrol this tablet, and type both. The fingerprint is "
                           "the same for every tablet of this study; it lets the tablet check that "
                           "instructions come from the study team."</p>
                    </div>
                }
            })}
        </div>
    }
    .into_any()
}
