//! Overview: recruitment against the protocol's targets, what arrived, and the devices.

use attune_core::Kind;
use attune_core::fieldwork::ParticipantBody;
use attune_core::review::DeviceStatus;
use leptos::prelude::*;

use crate::app::{Console, Page, Unlocked};

/// The overview screen.
#[component]
pub fn Overview(unlocked: Unlocked) -> impl IntoView {
    let study = unlocked.study.clone();
    let protocol = study.protocol().clone();
    let participants: Vec<ParticipantBody> = study
        .records
        .iter()
        .filter(|r| r.kind() == Kind::Participant)
        .filter_map(|r| r.body())
        .collect();
    let groups = protocol
        .groups
        .iter()
        .map(|group| {
            let recruited = participants.iter().filter(|p| p.group == group.id).count();
            view! {
                <tr>
                    <th scope="row">{group.name.clone()}</th>
                    <td>{recruited}</td>
                    <td>{group.target}</td>
                </tr>
            }
        })
        .collect_view();
    let counts = study
        .counts()
        .into_iter()
        .map(|(kind, n)| view! { <li>{arrived(kind, n)}</li> })
        .collect_view();
    let devices = study
        .devices
        .iter()
        .map(|d| {
            let status = match d.status {
                DeviceStatus::Active => "Active".to_owned(),
                DeviceStatus::Revoked => {
                    format!("Revoked: {}", d.revoked_reason.clone().unwrap_or_default())
                }
            };
            view! {
                <tr>
                    <th scope="row">{d.name.clone()}</th>
                    <td>{d.fieldworker.clone()}</td>
                    <td>{d.enrolled_at.date_utc()}</td>
                    <td>{status}</td>
                </tr>
            }
        })
        .collect_view();
    let problems = study.problems.clone();
    let missing = study.missing();
    let console = expect_context::<Console>();
    let flagged = study.safeguarding().len();
    let waiting = study.unacknowledged();
    view! {
        <section>
            <h1>"Overview"</h1>
            {(!problems.is_empty()).then(|| view! {
                <div class="notice warn" role="status">
                    <h2>{format!("{} revisions did not verify and are left out", problems.len())}</h2>
                    <ul>{problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
                </div>
            })}
            {(flagged > 0).then(|| view! {
                <div class={if waiting > 0 { "notice warn" } else { "notice" }} data-testid="overview-safeguarding">
                    <h2>"Safeguarding"</h2>
                    <p>{match waiting {
                        0 => format!("All {flagged} flagged notes are acknowledged."),
                        1 => "1 flagged note is not acknowledged yet.".to_owned(),
                        n => format!("{n} flagged notes are not acknowledged yet."),
                    }}</p>
                    <button class="secondary" on:click=move |_| console.go(Page::Safeguarding)>
                        "Go to Safeguarding"
                    </button>
                </div>
            })}
            <div class="columns">
                <div class="card">
                    <h2>"Recruitment"</h2>
                    <table>
                        <thead><tr><th scope="col">"Group"</th><th scope="col">"Recruited"</th><th scope="col">"Target"</th></tr></thead>
                        <tbody>{groups}</tbody>
                    </table>
                </div>
                <div class="card">
                    <h2>"What arrived"</h2>
                    {if study.records.is_empty() {
                        view! { <p class="muted">"Nothing has arrived yet. Tablets send their records when they sync."</p> }.into_any()
                    } else {
                        view! { <ul class="plain">{counts}</ul> }.into_any()
                    }}
                    {(study.withdrawn > 0).then(|| view! {
                        <p class="muted">{format!(
                            "{} withdrawn participants are left out ({} revisions).",
                            study.withdrawn, study.withdrawn_excluded
                        )}</p>
                    })}
                </div>
            </div>
            <div class="card">
                <h2>"Still to do"</h2>
                {if missing.is_empty() {
                    view! { <p class="muted">"Nothing looks unfinished."</p> }.into_any()
                } else {
                    view! { <ul data-testid="missing">{missing.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul> }.into_any()
                }}
            </div>
            <div class="card">
                <h2>"Devices"</h2>
                <table>
                    <thead><tr><th scope="col">"Device"</th><th scope="col">"Fieldworker"</th><th scope="col">"Enrolled"</th><th scope="col">"Status"</th></tr></thead>
                    <tbody>{devices}</tbody>
                </table>
            </div>
        </section>
    }
}

/// "3 interview notes", "1 consent".
fn arrived(kind: &str, n: usize) -> String {
    let (one, many) = match kind {
        "participant" => ("participant", "participants"),
        "visit" => ("visit", "visits"),
        "consent" => ("consent", "consents"),
        "assent" => ("child's assent answer", "children's assent answers"),
        "interview_note" => ("interview note", "interview notes"),
        "activity_response" => ("activity answer", "activity answers"),
        "reflection" => ("reflection", "reflections"),
        "field_note" => ("field note", "field notes"),
        "attachment" => ("recording", "recordings"),
        "withdrawal" => ("withdrawal request", "withdrawal requests"),
        other => (other, other),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}
