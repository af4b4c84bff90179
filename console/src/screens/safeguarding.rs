//! Safeguarding: every note flagged as a safeguarding concern, newest first, with the
//! protocol's steps.

use leptos::prelude::*;

use crate::app::{Console, Page, Unlocked};
use crate::study::when;

/// The safeguarding screen.
#[component]
pub fn Safeguarding(unlocked: Unlocked) -> impl IntoView {
    let console = expect_context::<Console>();
    let study = unlocked.study.clone();
    let steps = study.protocol().safeguarding.clone();
    let flagged = study.safeguarding();
    let empty = flagged.is_empty();
    let items = flagged
        .into_iter()
        .map(|f| {
            let participant = f.participant.clone();
            let latest = &f.record.latest;
            view! {
                <li class="card flagged" data-testid="safeguarding-note">
                    <div class="meta">
                        <strong>{f.code.clone()}</strong>
                        <span>{format!("{} · {}", latest.fieldworker, when(latest.revision.time))}</span>
                    </div>
                    {f.question.clone().map(|q| view! { <p class="question">{q}</p> })}
                    <p class="note-text">{f.note.text.clone()}</p>
                    <button class="secondary" on:click=move |_| console.go(Page::Participant(participant.clone()))>
                        {format!("Open {}", f.code)}
                    </button>
                </li>
            }
        })
        .collect_view();
    view! {
        <section>
            <h1>"Safeguarding"</h1>
            <div class="card steps">
                <h2>"What to do"</h2>
                <ol>{steps.steps.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view()}</ol>
                <p><strong>"Contact: "</strong>{steps.contact.trim_end_matches('.').to_owned()}</p>
                <p><strong>"By when: "</strong>{steps.deadline.clone()}</p>
            </div>
            {if empty {
                view! { <p class="muted">"No note is flagged as a safeguarding concern."</p> }.into_any()
            } else {
                view! { <ul class="plain">{items}</ul> }.into_any()
            }}
        </section>
    }
}
