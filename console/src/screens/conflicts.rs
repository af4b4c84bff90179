//! Conflicts: a revision the server kept beside its record's chain (two tablets edited the
//! same record, a gap, another fieldworker's device), shown beside the version in the chain.

use attune_core::sync::ConflictReason;
use leptos::prelude::*;

use crate::app::Unlocked;
use crate::study::{readable_body, when};

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
    let codes = study.codes();
    let empty = study.conflicts.is_empty();
    let items = study
        .conflicts
        .iter()
        .map(|conflict| {
            let theirs = &conflict.opened;
            let id = theirs.revision.record_id.to_string();
            let stored = study.record(&id);
            let code = theirs
                .revision
                .participant
                .and_then(|p| codes.get(&p.to_string()).cloned())
                .unwrap_or_else(|| "no participant".into());
            let stored_view = match stored {
                Some(record) => view! {
                    <div class="version">
                        <h3>{format!("In the record: rev {}", record.latest.revision.rev)}</h3>
                        <p class="muted">{format!("{} · {}", record.latest.fieldworker, when(record.time()))}</p>
                        <p class="note-text">{readable_body(&record.latest.revision.body)}</p>
                    </div>
                }
                .into_any(),
                None => view! {
                    <div class="version"><h3>"In the record"</h3><p class="muted">"No revision of this record is stored."</p></div>
                }
                .into_any(),
            };
            view! {
                <li class="card" data-testid="conflict">
                    <h2>{format!("{} · {}", theirs.revision.kind.as_str().replace('_', " "), code)}</h2>
                    <p><strong>{reason_words(conflict.reason)}</strong>{conflict.detail.clone().map(|d| format!(" ({d})"))}</p>
                    <div class="side-by-side">
                        {stored_view}
                        <div class="version">
                            <h3>{format!("Kept apart: rev {}", theirs.revision.rev)}</h3>
                            <p class="muted">{format!("{} · {}", theirs.fieldworker, when(theirs.revision.time))}</p>
                            <p class="note-text">{readable_body(&theirs.revision.body)}</p>
                        </div>
                    </div>
                </li>
            }
        })
        .collect_view();
    view! {
        <section>
            <h1>"Conflicts"</h1>
            <p class="muted">
                "Nothing is lost: both versions are kept. Until resolving from the console arrives, "
                "both are in the export (records.json), the stored one in every analysis file."
            </p>
            {if empty {
                view! { <p class="muted">"No conflicts: every revision fitted its record."</p> }.into_any()
            } else {
                view! { <ul class="plain">{items}</ul> }.into_any()
            }}
        </section>
    }
}
