//! Conflicts: a revision the server kept beside its record's chain (two tablets edited the
//! same record, a gap, another fieldworker's device), shown beside the version in the chain.
//! A researcher resolves one: keep either version, or (for a note) merge the text. The
//! resolution is a team record, sealed and signed in the page (`records.rs`); nothing is
//! deleted, both versions stay shown here and in the record's history.

use attune_core::Kind;
use attune_core::review::open::{OpenedConflict, OpenedRevision};
use attune_core::review::team_records::{OpenedTeamRecord, Outcome, TeamAction};
use attune_core::sync::ConflictReason;
use leptos::prelude::*;

use crate::app::{Console, Unlocked};
use crate::error::Error;
use crate::records;
use crate::study::{Study, readable_body, when};

fn reason_words(reason: ConflictReason) -> &'static str {
    match reason {
        ConflictReason::RevTaken => "Two tablets made the same revision of this record",
        ConflictReason::Gap => "An earlier revision had not arrived when this one did",
        ConflictReason::ParentMismatch => "It was made from another version than the one stored",
        ConflictReason::OwnedByAnotherDevice => {
            "It was made on a device of another fieldworker than the record's"
        }
        ConflictReason::CodeTaken => "Another participant already holds this code",
        _ => "The server kept it apart for a reason this console does not know",
    }
}

/// The conflicts screen.
#[component]
pub fn Conflicts(unlocked: Unlocked) -> impl IntoView {
    let study = unlocked.study.clone();
    let empty = study.conflicts.is_empty();
    let items = study
        .conflicts
        .iter()
        .map(|conflict| {
            view! { <ConflictCard conflict=conflict.clone() unlocked=unlocked.clone() /> }
        })
        .collect_view();
    view! {
        <section>
            <h1>"Conflicts"</h1>
            <p class="muted">
                "Nothing is lost: both versions are kept. Resolving one (keep a version, or merge "
                "the text) is recorded by the team, signed with the study key; both versions stay "
                "here and in the export (records.json)."
            </p>
            {if empty {
                view! { <p class="muted">"No conflicts: every revision fitted its record."</p> }.into_any()
            } else {
                view! { <ul class="plain">{items}</ul> }.into_any()
            }}
        </section>
    }
}

/// "Resolved by Rosa Lead on 2026-12-03 14:56 UTC: kept the version from Tablet 2".
pub fn resolution_words(study: &Study, resolution: &OpenedTeamRecord) -> String {
    let TeamAction::ConflictResolution {
        record_id,
        record_rev,
        outcome,
        conflict_hash,
    } = &resolution.body.action
    else {
        return String::new();
    };
    let device = |found: Option<&OpenedRevision>| {
        found.map_or_else(|| "another tablet".into(), |r| study.device_name(&r.device))
    };
    let what = match outcome {
        Outcome::KeepRecord => {
            let chain = study
                .record(&record_id.to_string())
                .and_then(|r| r.history.iter().find(|h| h.revision.rev == *record_rev));
            format!("kept the version from {}", device(chain))
        }
        Outcome::KeepConflict => {
            let apart = study
                .conflicts
                .iter()
                .find(|c| c.opened.revision.hash == *conflict_hash)
                .map(|c| &c.opened);
            format!("kept the version from {}", device(apart))
        }
        Outcome::Merged { .. } => "merged the text of both versions".into(),
    };
    format!(
        "Resolved by {} on {}: {what}",
        resolution.body.by,
        when(resolution.body.at)
    )
}

/// How the conflict whose kept-apart revision has `hash` was resolved, if it was.
fn resolution_view(study: &Study, hash: &attune_core::ContentHash) -> Option<AnyView> {
    study.team.resolution_of(hash).map(|r| {
        view! {
            <div class="resolved" data-testid="resolution" role="status">
                <p>{resolution_words(study, r)}</p>
                {(!r.body.note.is_empty()).then(|| view! { <p class="note-text">{format!("Why: {}", r.body.note)}</p> })}
            </div>
        }
        .into_any()
    })
}

/// One kept conflict: both versions, how it was resolved, and the ways to resolve it.
#[component]
fn ConflictCard(conflict: OpenedConflict, unlocked: Unlocked) -> impl IntoView {
    let console = expect_context::<Console>();
    let study = unlocked.study.clone();
    let theirs = conflict.opened.clone();
    let record_id = theirs.revision.record_id;
    let conflict_hash = theirs.revision.hash;
    let stored = study.record(&record_id.to_string()).cloned();
    let record_rev = stored.as_ref().map_or(0, |r| r.latest.revision.rev);
    let code = theirs
        .revision
        .participant
        .and_then(|p| study.codes().get(&p.to_string()).cloned())
        .unwrap_or_else(|| "no participant".into());
    let resolution = resolution_view(&study, &conflict_hash);
    let why = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let unlocked = StoredValue::new_local(unlocked);
    let resolve = move |outcome: Outcome| {
        let by = console
            .me
            .get_untracked()
            .map(|me| me.name)
            .unwrap_or_default();
        let note = why.get_untracked().trim().to_owned();
        let unlocked = unlocked.get_value();
        busy.set(true);
        problem.set(None);
        leptos::task::spawn_local(async move {
            let action = TeamAction::ConflictResolution {
                record_id,
                record_rev,
                conflict_hash,
                outcome,
            };
            match records::save(&unlocked, action, note, by).await {
                Ok(next) => console.unlocked.set(Some(next)),
                Err(error) => {
                    problem.set(Some(error));
                    busy.set(false);
                }
            }
        });
    };
    let is_note = theirs.revision.kind == Kind::InterviewNote && stored.is_some();
    let texts = (
        stored
            .as_ref()
            .map(|r| readable_body(&r.latest.revision.body))
            .unwrap_or_default(),
        readable_body(&theirs.revision.body),
    );
    let stored_view = match &stored {
        Some(record) => view! {
            <div class="version">
                <h3>{format!("In the record: rev {}", record.latest.revision.rev)}</h3>
                <p class="muted">{format!("{} · {} · {}", record.latest.fieldworker, study.device_name(&record.latest.device), when(record.time()))}</p>
                <p class="note-text">{texts.0.clone()}</p>
                <button class="secondary" disabled=move || busy.get()
                    on:click=move |_| resolve(Outcome::KeepRecord)>"Keep this version"</button>
            </div>
        }
        .into_any(),
        None => view! {
            <div class="version"><h3>"In the record"</h3><p class="muted">"No revision of this record is stored."</p></div>
        }
        .into_any(),
    };
    let why_id = format!("why-{conflict_hash}");
    let merge_id = format!("merge-{conflict_hash}");
    let prefill = format!("{}\n\n{}", texts.0, texts.1);
    view! {
        <li class="card" data-testid="conflict">
            <h2>{format!("{} · {}", theirs.revision.kind.as_str().replace('_', " "), code)}</h2>
            <p><strong>{reason_words(conflict.reason)}</strong>{conflict.detail.clone().map(|d| format!(" ({d})"))}</p>
            {resolution}
            <div class="side-by-side">
                {stored_view}
                <div class="version">
                    <h3>{format!("Kept apart: rev {}", theirs.revision.rev)}</h3>
                    <p class="muted">{format!("{} · {} · {}", theirs.fieldworker, study.device_name(&theirs.device), when(theirs.revision.time))}</p>
                    <p class="note-text">{texts.1.clone()}</p>
                    {stored.is_some().then(|| view! {
                        <button class="secondary" disabled=move || busy.get()
                            on:click=move |_| resolve(Outcome::KeepConflict)>"Keep this version"</button>
                    })}
                </div>
            </div>
            <div class="resolve-form">
                <label for=why_id.clone()>"Why (optional, saved with the resolution)"</label>
                <textarea id=why_id rows="2" prop:value=move || why.get()
                    on:input=move |ev| why.set(event_target_value(&ev))></textarea>
                {is_note.then(|| view! {
                    <MergeForm id=merge_id prefill=prefill busy=busy problem=problem
                        save=Callback::new(resolve) />
                })}
            </div>
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        </li>
    }
}

/// "Merge the text…": a box with both versions' text to edit, and "Save the merged text".
#[component]
fn MergeForm(
    id: String,
    prefill: String,
    busy: RwSignal<bool>,
    problem: RwSignal<Option<Error>>,
    save: Callback<Outcome>,
) -> impl IntoView {
    let merging = RwSignal::new(false);
    let merged = RwSignal::new(String::new());
    view! {
        {move || (!merging.get()).then(|| {
            let prefill = prefill.clone();
            view! {
                <button class="secondary" on:click=move |_| { merged.set(prefill.clone()); merging.set(true); }>
                    "Merge the text…"
                </button>
            }
        })}
        {move || merging.get().then(|| {
            let id = id.clone();
            view! {
                <label for=id.clone()>"The merged text (both versions to start with: edit it)"</label>
                <textarea id=id rows="6" prop:value=move || merged.get()
                    on:input=move |ev| merged.set(event_target_value(&ev))></textarea>
                <button class="primary" disabled=move || busy.get() on:click=move |_| {
                    let text = merged.get_untracked();
                    if text.trim().is_empty() {
                        problem.set(Some(Error::Form("The merged text is empty: write the note as it should read.".into())));
                    } else {
                        save.run(Outcome::Merged { text });
                    }
                }>"Save the merged text"</button>
                <button class="secondary" on:click=move |_| merging.set(false)>"Cancel"</button>
            }
        })}
    }
}
