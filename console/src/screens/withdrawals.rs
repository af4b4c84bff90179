//! Withdrawals: those the study team recorded (signed with the study key), and the requests
//! fieldworkers recorded on tablets, pending until a study admin confirms them here (a
//! withdrawal signed in this page with the study signing key).

use attune_core::review::verify::WithdrawalRequest;
use attune_core::sync::ControlKind;
use attune_core::team::Role;
use leptos::prelude::*;

use crate::app::{Console, Unlocked};
use crate::error::Error;
use crate::instruct;
use crate::screens::key;
use crate::study::when;

/// The withdrawals screen.
#[component]
pub fn Withdrawals(unlocked: Unlocked) -> impl IntoView {
    let console = expect_context::<Console>();
    let admin = console
        .me
        .with_untracked(|me| me.as_ref().is_some_and(|m| m.role == Role::Admin));
    let study = unlocked.study.clone();
    let pending = study.requests.iter().filter(|r| r.is_pending()).count();
    let confirming = RwSignal::new(None::<WithdrawalRequest>);
    let done = RwSignal::new(instruct::take_flash());
    let requests = study
        .requests
        .iter()
        .map(|r| {
            let status = match r.status() {
                "pending" => "Waiting for the study team".to_owned(),
                "confirmed" => "Confirmed by the study team".to_owned(),
                _ => format!("Refused: {}", r.problem.clone().unwrap_or_default()),
            };
            let request = r.clone();
            let label = format!("Confirm the withdrawal of {}", r.participant_code);
            view! {
                <tr data-testid="withdrawal-request">
                    <th scope="row">{r.participant_code.clone()}</th>
                    <td>{r.fieldworker.clone()}</td>
                    <td>{when(r.requested_at)}</td>
                    <td>{status}</td>
                    {admin.then(|| view! {
                        <td>{r.is_pending().then(|| view! {
                            <button class="secondary danger" aria-label=label.clone()
                                on:click=move |_| { done.set(None); confirming.set(Some(request.clone())); }>
                                "Confirm withdrawal…"
                            </button>
                        })}</td>
                    })}
                </tr>
            }
        })
        .collect_view();
    let kept = StoredValue::new_local(unlocked.clone());
    let recorded = study
        .withdrawals
        .iter()
        .map(|w| {
            view! {
                <tr>
                    <th scope="row">{w.participant_code.clone()}</th>
                    <td>{when(w.created_at)}</td>
                    <td>{if w.participant_id.is_some() { "Signed by the study team" } else { "From before signing (by code)" }}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section>
            <h1>"Withdrawals"</h1>
            {move || done.get().map(|sentence| view! { <p class="notice" role="status">{sentence}</p> })}
            <div class="card">
                <h2>"Requests from tablets"</h2>
                {(pending > 0).then(|| view! {
                    <p class="notice warn">{if admin {
                        format!("{pending} waiting: confirm each below (the study key signs it here; the participant's data is then deleted on every tablet).")
                    } else {
                        format!("{pending} waiting for a study admin to confirm.")
                    }}</p>
                })}
                {if study.requests.is_empty() {
                    view! { <p class="muted">"No fieldworker has recorded a withdrawal request."</p> }.into_any()
                } else {
                    view! {
                        <table>
                            <thead><tr><th scope="col">"Participant"</th><th scope="col">"Recorded by"</th><th scope="col">"When"</th><th scope="col">"Status"</th>
                                {admin.then(|| view! { <th scope="col"><span class="sr-only">"Action"</span></th> })}</tr></thead>
                            <tbody>{requests}</tbody>
                        </table>
                    }.into_any()
                }}
            </div>
            {move || confirming.get().map(|request| view! {
                <Confirm unlocked=kept.get_value() request=request confirming=confirming />
            })}
            <div class="card">
                <h2>"Withdrawn"</h2>
                {if study.withdrawals.is_empty() {
                    view! { <p class="muted">"No participant has withdrawn."</p> }.into_any()
                } else {
                    view! {
                        <table>
                            <thead><tr><th scope="col">"Participant"</th><th scope="col">"When"</th><th scope="col">"How"</th></tr></thead>
                            <tbody>{recorded}</tbody>
                        </table>
                    }.into_any()
                }}
                <p class="muted">"Withdrawn participants are left out of every screen and every export."</p>
            </div>
        </section>
    }
}

/// Says exactly what confirming does, then signs the withdrawal.
#[component]
fn Confirm(
    unlocked: Unlocked,
    request: WithdrawalRequest,
    confirming: RwSignal<Option<WithdrawalRequest>>,
) -> impl IntoView {
    let console = expect_context::<Console>();
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let code = request.participant_code.clone();
    let kind = StoredValue::new(ControlKind::Withdrawal {
        participant_id: request.participant_id,
        participant_code: code.clone(),
    });
    let unlocked = StoredValue::new_local(unlocked);
    let confirm = move |_| {
        busy.set(true);
        let unlocked = unlocked.get_value();
        leptos::task::spawn_local(async move {
            match instruct::send(&unlocked, kind.get_value()).await {
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
    let title = format!("Confirm the withdrawal of {code}");
    view! {
        <div class="card steps" role="region" aria-label=title.clone()>
            <h2 tabindex="-1" node_ref=heading>{title.clone()}</h2>
            <p>{format!(
                "{code} (participant {}) asked to withdraw, recorded by {} on {}.",
                request.participant_id, request.fieldworker, when(request.requested_at)
            )}</p>
            <div class="notice warn">
                <p><strong>"This cannot be undone."</strong></p>
                <ul>
                    <li>"Every tablet deletes everything about this participant at its next sync."</li>
                    <li>"Exports and every screen of this console leave them out from now on."</li>
                </ul>
            </div>
            <div class="buttons">
                <button class="primary danger" disabled=move || busy.get() on:click=confirm>
                    {move || if busy.get() { "Confirming…" } else { "Yes, withdraw this participant" }}
                </button>
                <button class="secondary" type="button" on:click=move |_| confirming.set(None)>"Not now"</button>
            </div>
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        </div>
    }
}
