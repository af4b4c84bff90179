//! Safeguarding: every note flagged as a safeguarding concern, newest first, with the
//! protocol's steps, and who in the team acknowledged each (who, when, what they did). An
//! acknowledgement is a team record, sealed and signed in the page (`records.rs`).

use attune_core::review::team_records::{OpenedTeamRecord, TeamAction};
use leptos::prelude::*;

use crate::app::{Console, Page, Unlocked};
use crate::error::Error;
use crate::records;
use crate::study::{FlaggedNote, when};

/// The safeguarding screen.
#[component]
pub fn Safeguarding(unlocked: Unlocked) -> impl IntoView {
    let study = unlocked.study.clone();
    let steps = study.protocol().safeguarding.clone();
    let flagged = study.safeguarding();
    let empty = flagged.is_empty();
    let waiting = study.unacknowledged();
    let failed = study.team.failed.len();
    let items = flagged
        .into_iter()
        .map(|flag| {
            let acknowledged: Vec<OpenedTeamRecord> = study
                .team
                .acknowledgements(&flag.record.latest.revision.record_id)
                .into_iter()
                .cloned()
                .collect();
            view! { <Flag flag=flag acknowledged=acknowledged unlocked=unlocked.clone() /> }
        })
        .collect_view();
    view! {
        <section>
            <h1>"Safeguarding"</h1>
            {(failed > 0).then(|| view! {
                <div class="notice warn" role="status">
                    {format!(
                        "{failed} team records did not verify with the study signing key and are not shown: \
                         they were altered, or made with another study's key file."
                    )}
                </div>
            })}
            {(!empty).then(|| view! {
                <p data-testid="unacknowledged" class={if waiting > 0 { "summary waiting" } else { "summary" }}>
                    {match waiting {
                        0 => "Every flagged note has been acknowledged.".to_owned(),
                        1 => "1 flagged note is not acknowledged yet.".to_owned(),
                        n => format!("{n} flagged notes are not acknowledged yet."),
                    }}
                </p>
            })}
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

/// One flagged note: the note, its acknowledgements, and the form to add one.
#[component]
fn Flag(
    flag: FlaggedNote,
    acknowledged: Vec<OpenedTeamRecord>,
    unlocked: Unlocked,
) -> impl IntoView {
    let console = expect_context::<Console>();
    let participant = flag.participant.clone();
    let latest = flag.record.latest.clone();
    let record_id = latest.revision.record_id;
    let rev = latest.revision.rev;
    let heading = format!("Acknowledgements of the note about {}", flag.code);
    let open = RwSignal::new(false);
    let text = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let field = format!("ack-{record_id}");
    let unlocked = StoredValue::new_local(unlocked);
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let note = text.get_untracked().trim().to_owned();
        if note.is_empty() {
            problem.set(Some(Error::Form(
                "Write what was done first: who you contacted, when, and what was agreed.".into(),
            )));
            return;
        }
        let by = console
            .me
            .get_untracked()
            .map(|me| me.name)
            .unwrap_or_default();
        let unlocked = unlocked.get_value();
        busy.set(true);
        problem.set(None);
        leptos::task::spawn_local(async move {
            let action = TeamAction::SafeguardingAcknowledgement { record_id, rev };
            match records::save(&unlocked, action, note, by).await {
                Ok(next) => console.unlocked.set(Some(next)),
                Err(error) => {
                    problem.set(Some(error));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <li class="card flagged" data-testid="safeguarding-note">
            <div class="meta">
                <strong>{flag.code.clone()}</strong>
                <span>{format!("{} · {}", latest.fieldworker, when(latest.revision.time))}</span>
            </div>
            {flag.question.clone().map(|q| view! { <p class="question">{q}</p> })}
            <p class="note-text">{flag.note.text.clone()}</p>
            <h2 class="small">{heading}</h2>
            <Acknowledgements acknowledged=acknowledged rev=rev />
            <div class="actions">
                <button class="secondary" on:click=move |_| console.go(Page::Participant(participant.clone()))>
                    {format!("Open {}", flag.code)}
                </button>
                {move || (!open.get()).then(|| view! {
                    <button class="primary" on:click=move |_| open.set(true)>"Acknowledge"</button>
                })}
            </div>
            {move || open.get().then(|| {
                let field = field.clone();
                view! {
                    <form class="ack-form" on:submit=save>
                        <label for=field.clone()>"What was done (who you contacted, when, what was agreed)"</label>
                        <textarea
                            id=field
                            rows="4"
                            aria-required="true"
                            prop:value=move || text.get()
                            on:input=move |ev| text.set(event_target_value(&ev))
                        ></textarea>
                        <button class="primary" type="submit" disabled=move || busy.get()>
                            {move || if busy.get() { "Saving…" } else { "Save acknowledgement" }}
                        </button>
                        <button class="secondary" type="button" on:click=move |_| { open.set(false); problem.set(None); }>
                            "Cancel"
                        </button>
                    </form>
                }
            })}
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        </li>
    }
}

/// A flag's acknowledgements (who, when, what they did), or "Not acknowledged yet".
#[component]
fn Acknowledgements(acknowledged: Vec<OpenedTeamRecord>, rev: u32) -> impl IntoView {
    if acknowledged.is_empty() {
        return view! { <p class="badge warn-badge" data-testid="not-acknowledged">"Not acknowledged yet"</p> }.into_any();
    }
    view! {
        <ul class="plain acknowledgements">
            {acknowledged.into_iter().map(|ack| {
                let changed = matches!(ack.body.action,
                    TeamAction::SafeguardingAcknowledgement { rev: seen, .. } if seen < rev);
                view! {
                    <li class="acknowledgement" data-testid="acknowledgement">
                        <p><strong>{format!("Acknowledged by {}", ack.body.by)}</strong>
                            <span class="muted">{format!(" · {}", when(ack.body.at))}</span></p>
                        <p class="note-text">{ack.body.note.clone()}</p>
                        {changed.then(|| view! { <p class="muted">"The note was changed on the tablet after this."</p> })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }.into_any()
}
