//! Participants by code, and one participant's timeline.

use leptos::prelude::*;

use crate::app::{Console, Page, Unlocked};

pub use super::timeline::Timeline;

/// The participant list.
#[component]
pub fn List(unlocked: Unlocked) -> impl IntoView {
    let console = expect_context::<Console>();
    let rows = unlocked.study.participants();
    let empty = rows.is_empty();
    let body = rows
        .into_iter()
        .map(|row| {
            let id = row.id.clone();
            view! {
                <tr>
                    <th scope="row">
                        <button class="link" on:click=move |_| console.go(Page::Participant(id.clone()))>
                            {row.code.clone()}
                        </button>
                    </th>
                    <td>{row.group.clone()}</td>
                    <td>{if row.active { "Taking part" } else { "Withdrawn" }}</td>
                    <td>{if row.consented { "Recorded" } else { "Missing" }}</td>
                    <td>{row.visits}</td>
                    <td>{(row.safeguarding > 0).then(|| view! { <span class="badge danger">{format!("{} flagged", row.safeguarding)}</span> })}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section>
            <h1>"Participants"</h1>
            {if empty {
                view! { <p class="muted">"No participant has arrived yet."</p> }.into_any()
            } else {
                view! {
                    <table class="card">
                        <thead>
                            <tr>
                                <th scope="col">"Code"</th>
                                <th scope="col">"Group"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Consent"</th>
                                <th scope="col">"Visits"</th>
                                <th scope="col">"Safeguarding"</th>
                            </tr>
                        </thead>
                        <tbody>{body}</tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
