//! Devices (study admins): every enrolled tablet, revoking one (a study instruction signed
//! in this page: the tablet's next sync is refused with the reason), and new enrolment codes
//! (`enrolment.rs`).

use attune_core::DeviceId;
use attune_core::review::{Device, DeviceStatus};
use attune_core::sync::ControlKind;
use leptos::prelude::*;

use crate::app::{Console, Unlocked};
use crate::error::Error;
use crate::instruct;
use crate::screens::enrolment::NewCode;
use crate::screens::key;
use crate::study::when;

/// The devices screen.
#[component]
pub fn Devices(unlocked: Unlocked) -> impl IntoView {
    let study = unlocked.study.clone();
    let revoking = RwSignal::new(None::<Device>);
    let done = RwSignal::new(instruct::take_flash());
    let rows = study
        .devices
        .iter()
        .map(|d| {
            let last = study
                .records
                .iter()
                .flat_map(|r| r.history.iter())
                .filter(|o| o.device == d.id)
                .map(|o| o.revision.time)
                .max()
                .map_or_else(|| "nothing yet".to_owned(), when);
            let status = match d.status {
                DeviceStatus::Active => "Active".to_owned(),
                DeviceStatus::Revoked => format!(
                    "Revoked: {}",
                    d.revoked_reason.clone().unwrap_or_else(|| "no reason given".into())
                ),
            };
            let device = d.clone();
            let active = d.status == DeviceStatus::Active;
            let label = format!("Revoke {} ({})", d.name, d.fieldworker);
            view! {
                <tr data-testid="device">
                    <th scope="row">{d.fieldworker.clone()}</th>
                    <td>{d.name.clone()}<br /><span class="muted small device-id">{d.id.clone()}</span></td>
                    <td class="when">{when(d.enrolled_at)}</td>
                    <td class="when">{last}</td>
                    <td>{status}</td>
                    <td>{active.then(|| view! {
                        <button class="secondary danger" aria-label=label.clone()
                            on:click=move |_| { done.set(None); revoking.set(Some(device.clone())); }>
                            "Revoke…"
                        </button>
                    })}</td>
                </tr>
            }
        })
        .collect_view();
    let has_devices = !study.devices.is_empty();
    let kept = StoredValue::new_local(unlocked.clone());
    view! {
        <section>
            <h1>"Devices"</h1>
            {move || done.get().map(|sentence| view! { <p class="notice" role="status">{sentence}</p> })}
            <div class="card">
                <h2>"Enrolled tablets"</h2>
                {if has_devices {
                    view! {
                        <table>
                            <thead><tr>
                                <th scope="col">"Fieldworker"</th><th scope="col">"Tablet"</th>
                                <th scope="col">"Enrolled"</th><th scope="col">"Newest record"</th>
                                <th scope="col">"Status"</th><th scope="col"><span class="sr-only">"Action"</span></th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                        <p class="muted">"Newest record: when the newest record that tablet sent was made, by the tablet's clock."</p>
                    }.into_any()
                } else {
                    view! { <p class="muted">"No tablet is enrolled yet. Make an enrolment code below."</p> }.into_any()
                }}
            </div>
            {move || revoking.get().map(|device| view! {
                <Revoke unlocked=kept.get_value() device=device revoking=revoking />
            })}
            <NewCode unlocked=unlocked.clone() />
        </section>
    }
}

/// Asks for the reason and a confirmation, then revokes.
#[component]
fn Revoke(unlocked: Unlocked, device: Device, revoking: RwSignal<Option<Device>>) -> impl IntoView {
    let on_cancel = move || revoking.set(None);
    let console = expect_context::<Console>();
    let reason = RwSignal::new(String::new());
    let confirming = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let who = format!("{} ({})", device.name, device.fieldworker);
    let device_id = StoredValue::new(device.id.clone());
    let ask = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if reason.get_untracked().trim().is_empty() {
            problem.set(Some(Error::Form(
                "Write the reason: the fieldworker reads it on the tablet.".into(),
            )));
            return;
        }
        problem.set(None);
        confirming.set(true);
    };
    let unlocked = StoredValue::new_local(unlocked);
    let revoke = move |_| {
        let Ok(id) = device_id.get_value().parse::<DeviceId>() else {
            problem.set(Some(Error::Form("This device's id cannot be read.".into())));
            return;
        };
        let kind = ControlKind::Revocation {
            device_id: id,
            reason: reason.get_untracked().trim().to_owned(),
        };
        busy.set(true);
        let unlocked = unlocked.get_value();
        leptos::task::spawn_local(async move {
            match instruct::send(&unlocked, kind).await {
                Ok(recorded) => {
                    instruct::flash(recorded.message);
                    match key::reload(&unlocked).await {
                        Ok(fresh) => console.unlocked.set(Some(fresh)),
                        Err(error) => problem.set(Some(error)),
                    }
                }
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    // Keyboard and screen reader users land on the step that opened.
    let heading = NodeRef::<leptos::html::H2>::new();
    Effect::new(move || {
        if let Some(h2) = heading.get() {
            let _ = h2.focus();
        }
    });
    let title = format!("Revoke {who}");
    let question = format!("Revoke {who}?");
    view! {
        <div class="card steps" role="region" aria-label=title.clone()>
            <h2 tabindex="-1" node_ref=heading>{title.clone()}</h2>
            <form on:submit=ask>
                <label for="revoke-reason">"Reason (the tablet shows it to the fieldworker)"</label>
                <input id="revoke-reason" type="text" maxlength="300"
                    prop:value=move || reason.get()
                    on:input=move |ev| { confirming.set(false); reason.set(event_target_value(&ev)); } />
                {move || (!confirming.get()).then(|| view! {
                    <div class="buttons">
                        <button class="primary" type="submit">"Continue"</button>
                        <button class="secondary" type="button" on:click=move |_| on_cancel()>"Cancel"</button>
                    </div>
                })}
            </form>
            {move || confirming.get().then(|| view! {
                <div class="notice warn" role="alert">
                    <p><strong>{question.clone()}</strong></p>
                    <p>"Its next sync is refused and it shows this reason: "<q>{reason.get()}</q>". "
                       "What it has not synced yet cannot reach the server. It can sync again only "
                       "once enrolled again with a new code."</p>
                    <div class="buttons">
                        <button class="primary danger" disabled=move || busy.get() on:click=revoke>
                            {move || if busy.get() { "Revoking…" } else { "Yes, revoke this device" }}
                        </button>
                        <button class="secondary" type="button" on:click=move |_| on_cancel()>"Keep it"</button>
                    </div>
                </div>
            })}
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        </div>
    }
}
