//! The notebook: the fieldworker's own notes, encrypted on the tablet and saved as they type.

use attune_core::notes::FieldNote;
use attune_core::{Kind, Links, RecordId, Revision};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::components::autosave_text::AutosavedText;
use crate::components::save_indicator::clock_time;
use crate::records::{self, Chain};
use crate::session::{now, use_sessions};

/// All notes, newest first, and "New note".
#[component]
pub fn NotebookPage() -> impl IntoView {
    let sessions = use_sessions();
    let notes = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        records::latest_of_kind(&session, Kind::FieldNote).await
    });
    let navigate = use_navigate();
    let new_note = move |_| {
        navigate(
            &format!("/notes/{}", RecordId::new(now())),
            Default::default(),
        )
    };
    view! {
        <section class="panel" aria-labelledby="notes-heading">
            <h1 id="notes-heading">"Notebook"</h1>
            <p>"Your own notes. They are encrypted on this tablet and saved as you type."</p>
            <Suspense fallback=|| view! { <p>"Opening your notes..."</p> }>
                {move || notes.get().map(|result| match result {
                    Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No notes yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="note-list">
                            {list.into_iter().map(|rev| {
                                let summary = rev.body_json::<FieldNote>().map(|n| n.summary()).unwrap_or_else(|_| "Unreadable note".into());
                                view! {
                                    <li><a href=format!("/notes/{}", rev.record_id)>
                                        <span class="note-summary">{summary}</span>
                                        <span class="note-time">{clock_time(rev.time.0)}</span>
                                    </a></li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
        </section>
        <div class="actions">
            <button class="button primary" on:click=new_note>"New note"</button>
        </div>
    }
}

/// One note, saved as it is typed.
#[component]
pub fn NotePage() -> impl IntoView {
    let params = use_params_map();
    let record_id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<RecordId>().ok()));
    view! {
        {move || match record_id() {
            None => view! { <p class="notice error" role="alert">"This note's address is not valid."</p> }.into_any(),
            Some(id) => view! { <NoteEditor record_id=id /> }.into_any(),
        }}
    }
}

#[component]
fn NoteEditor(record_id: RecordId) -> impl IntoView {
    let sessions = use_sessions();
    let loaded = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        records::latest(&session, record_id).await
    });
    view! {
        <Suspense fallback=|| view! { <p>"Opening the note..."</p> }>
            {move || loaded.get().map(|result| match result {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok(head) => view! { <NoteText record_id=record_id head=head /> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn NoteText(record_id: RecordId, head: Option<Revision>) -> impl IntoView {
    let sessions = use_sessions();
    let initial = head
        .as_ref()
        .and_then(|h| h.body_json::<FieldNote>().ok())
        .unwrap_or_default()
        .text;
    let chain = Chain::new(record_id, Kind::FieldNote, Links::default(), head);
    let save = move |text: String| {
        let chain = chain.clone();
        async move { chain.save(sessions, &FieldNote { text }).await }
    };
    view! {
        <section class="panel note" aria-labelledby="note-heading">
            <h1 id="note-heading">"Note"</h1>
            <AutosavedText label="Note text".to_string() initial=initial save=save rows=14
                placeholder="Type here. Everything is saved on this tablet as you type." />
        </section>
        <div class="actions">
            <a class="button primary" href="/notes">"Done"</a>
        </div>
    }
}
