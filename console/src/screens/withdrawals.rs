//! Withdrawals: those the study team recorded (signed with the study key), and the requests
//! fieldworkers recorded on tablets, pending until the team confirms them.

use leptos::prelude::*;

use crate::app::Unlocked;
use crate::study::when;

/// The withdrawals screen.
#[component]
pub fn Withdrawals(unlocked: Unlocked) -> impl IntoView {
    let study = unlocked.study.clone();
    let pending = study.requests.iter().filter(|r| r.is_pending()).count();
    let requests = study
        .requests
        .iter()
        .map(|r| {
            let status = match r.status() {
                "pending" => "Waiting for the study team".to_owned(),
                "confirmed" => "Confirmed by the study team".to_owned(),
                _ => format!("Refused: {}", r.problem.clone().unwrap_or_default()),
            };
            view! {
                <tr>
                    <th scope="row">{r.participant_code.clone()}</th>
                    <td>{r.fieldworker.clone()}</td>
                    <td>{when(r.requested_at)}</td>
                    <td>{status}</td>
                </tr>
            }
        })
        .collect_view();
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
            <div class="card">
                <h2>"Requests from tablets"</h2>
                {(pending > 0).then(|| view! {
                    <p class="notice warn">{format!(
                        "{pending} waiting: confirm each with `attune-server withdraw --key study.key --participant CODE` \
                         (the study key signs it; the participant's data is then deleted on every tablet)."
                    )}</p>
                })}
                {if study.requests.is_empty() {
                    view! { <p class="muted">"No fieldworker has recorded a withdrawal request."</p> }.into_any()
                } else {
                    view! {
                        <table>
                            <thead><tr><th scope="col">"Participant"</th><th scope="col">"Recorded by"</th><th scope="col">"When"</th><th scope="col">"Status"</th></tr></thead>
                            <tbody>{requests}</tbody>
                        </table>
                    }.into_any()
                }}
            </div>
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
