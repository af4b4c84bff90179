//! Sync: enrolling this profile with the research server, "Sync now", progress, how the
//! last sync ended, and what of each visit the server holds.

mod engine;
pub mod enrolment;
mod http;
pub mod runner;
pub mod status;
mod transport;

use leptos::prelude::*;

use self::runner::use_sync;
use self::status::{VisitSync, when};
use crate::session::use_sessions;

/// The sync screen.
#[component]
pub fn SyncPage() -> impl IntoView {
    let sessions = use_sessions();
    let sync = use_sync();
    let enrolled = LocalResource::new(move || {
        sync.track_changes();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            enrolment::load(&session)
                .await
                .map(|e| e.map(|e| (e.server.clone(), e.enrolled_at, e.needs_reenrolment())))
        }
    });
    view! {
        <h1>"Sync"</h1>
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || enrolled.get().map(|result| match result {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok(None) => view! { <EnrolForm again=false /> }.into_any(),
                Ok(Some((_, _, true))) => view! { <EnrolForm again=true /> }.into_any(),
                Ok(Some((server, since, false))) => view! { <SyncStatus server=server since=since /> }.into_any(),
            })}
        </Suspense>
    }
}

/// Enrolling: the server address, the one-time code and the study fingerprint. `again`: the
/// profile was enrolled before study instructions were signed and must enrol again.
#[component]
fn EnrolForm(again: bool) -> impl IntoView {
    let sessions = use_sessions();
    let sync = use_sync();
    let own = enrolment::own_origin();
    let server = RwSignal::new(own.clone());
    let code = RwSignal::new(String::new());
    let fingerprint = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let (typed_server, typed_code, typed_fingerprint) = (
            server.get_untracked(),
            code.get_untracked(),
            fingerprint.get_untracked(),
        );
        leptos::task::spawn_local(async move {
            let result = match sessions.current() {
                None => Err("The tablet is locked.".to_string()),
                Some(session) => {
                    enrolment::enrol(&session, &typed_server, &typed_code, &typed_fingerprint)
                        .await
                        .map(drop)
                }
            };
            busy.try_set(false);
            match result {
                Ok(()) => sync.enrolled(),
                Err(message) => {
                    error.try_set(Some(message));
                }
            }
        });
    };
    view! {
        <form class="panel form" on:submit=submit aria-labelledby="enrol-heading">
            <h2 id="enrol-heading">{if again { "Enrol this tablet again" } else { "Enrol this tablet" }}</h2>
            {again.then(|| view! {
                <p class="notice warn" role="status" data-testid="enrol-again">{enrolment::REENROL_WORDS}</p>
            })}
            {enrolment::insecure_connection().map(|why| view! {
                <p class="notice error" role="alert" data-testid="enrol-insecure">{why}</p>
            })}
            <p>"Before this tablet can send your work to the research team, it needs a one-time code and the study fingerprint from your study team. "
               "Your work stays on this tablet, encrypted, until then."</p>
            <label class="field">
                <span>"Server address"</span>
                <input type="url" inputmode="url" autocomplete="off" spellcheck="false"
                    prop:value=move || server.get() on:input=move |ev| server.set(event_target_value(&ev)) />
            </label>
            <p class="hint">{format!(
                "For safety, the app only sends data to the server it was opened from: {own}. \
                 To use another server, open Attune from that server's address."
            )}</p>
            <label class="field">
                <span>"Enrolment code"</span>
                <input type="text" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false"
                    class="code-input" prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
            </label>
            <p class="hint">"Your study team makes it with " <code>"attune-server enrol create"</code> ". It works once."</p>
            <label class="field">
                <span>"Study fingerprint"</span>
                <input type="text" autocomplete="off" autocapitalize="characters" spellcheck="false"
                    class="code-input" placeholder="XXXX-XXXX-XXXX-XXXX-XXXX"
                    prop:value=move || fingerprint.get() on:input=move |ev| fingerprint.set(event_target_value(&ev)) />
            </label>
            <p class="hint">"Five groups of four letters and digits, printed with the code. It is the same for every tablet of your study: the tablet checks the server against it, so nobody else can pose as your study team."</p>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert" data-testid="enrol-error">{move || error.get()}</p>
            </Show>
            <div class="form-actions">
                <button type="submit" class="button primary big" disabled=move || busy.get()>
                    {move || if busy.get() { "Enrolling..." } else { "Enrol this tablet" }}
                </button>
            </div>
        </form>
    }
}

/// Enrolled: "Sync now", progress, the last result and the visits.
#[component]
fn SyncStatus(server: String, since: attune_core::Timestamp) -> impl IntoView {
    let sessions = use_sessions();
    let sync = use_sync();
    let visits = LocalResource::new(move || {
        sync.track_changes();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            status::visits(&session).await
        }
    });
    let waiting = LocalResource::new(move || {
        sync.track_changes();
        async move {
            let session = sessions.current()?;
            attune_core::RecordStore::count_unsynced(&session.store)
                .await
                .ok()
        }
    });
    let waiting_line = move || {
        waiting.get().flatten().map(|n| match n {
            0 => "Nothing is waiting: the server has everything from this tablet.".to_string(),
            1 => "1 record is waiting to be sent.".to_string(),
            n => format!("{n} records are waiting to be sent."),
        })
    };
    let revoked = move || sync.last().and_then(|last| last.revoked);
    let last_line = move || match sync.last() {
        None => "Not synced yet.".to_string(),
        Some(last) => format!("Last sync: {}. {}", when(last.at), last.words),
    };
    view! {
        <section class="panel sync-panel" aria-labelledby="sync-heading">
            <h2 id="sync-heading">"Send your work to the research team"</h2>
            <p>{format!("This tablet is enrolled with {server} (since {}).", when(since))}</p>
            <Show when=move || revoked().is_some()>
                <div class="notice error" role="alert" data-testid="sync-revoked">
                    <strong>"Sync has stopped: your study team revoked this tablet."</strong>
                    <p>{move || format!("Reason: {}", revoked().unwrap_or_default())}</p>
                    <p>"Your work is still on this tablet. Ask your study team what to do."</p>
                </div>
            </Show>
            <p class="sync-waiting" data-testid="sync-waiting">{waiting_line}</p>
            <p class=move || if sync.last().is_some_and(|l| !l.ok) { "notice warn" } else { "notice" }
                role="status" aria-live="polite" data-testid="sync-last">{last_line}</p>
            {move || sync.last().filter(|l| !l.purged.is_empty()).map(|l| view! {
                <p class="notice" data-testid="sync-purged">{format!(
                    "Withdrawn at the research team's request, and deleted from this tablet: {}.",
                    l.purged.join(", ")
                )}</p>
            })}
            {move || sync.last().and_then(|l| l.protocol).map(|words| view! {
                <p class="notice" data-testid="sync-protocol">{words}</p>
            })}
            {move || sync.last().filter(|l| !l.instructions.is_empty()).map(|l| view! {
                <div class="notice warn" role="alert" data-testid="sync-instructions">
                    <strong>"Study instructions"</strong>
                    <ul>{l.instructions.into_iter().map(|words| view! { <li>{words}</li> }).collect_view()}</ul>
                </div>
            })}
            {move || sync.last().filter(|l| !l.confirmed.is_empty()).map(|l| view! {
                <p class="notice" data-testid="sync-codes">{format!(
                    "Participant codes confirmed by the server: {}.",
                    l.confirmed.join(", ")
                )}</p>
            })}
            <ProvisionalWaiting />
            <Show when=move || sync.running()>
                <div class="sync-progress" data-testid="sync-progress">
                    <label for="sync-progress-bar">{move || match sync.progress() {
                        Some((done, total)) if total > 0 => format!("Sending {done} of {total}\u{2026}"),
                        _ => "Starting\u{2026}".to_string(),
                    }}</label>
                    <progress id="sync-progress-bar"
                        max=move || sync.progress().map_or(1, |(_, t)| t.max(1)).to_string()
                        value=move || sync.progress().map_or(0, |(d, _)| d).to_string()></progress>
                </div>
            </Show>
            <Show when=move || sync.notice().is_some()>
                <p class="notice warn" role="alert">{move || sync.notice()}</p>
            </Show>
            <div class="form-actions">
                <button class="button primary big" on:click=move |_| sync.start()
                    disabled=move || sync.running() || revoked().is_some()>
                    {move || if sync.running() { "Syncing\u{2026}" } else { "Sync now" }}
                </button>
            </div>
        </section>
        <section class="panel" aria-labelledby="sync-visits-heading">
            <h2 id="sync-visits-heading">"Visits"</h2>
            <Suspense fallback=|| view! { <p>"Opening..."</p> }>
                {move || visits.get().map(|result| match result {
                    Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                    Ok(rows) if rows.is_empty() => view! { <p class="empty">"No visits yet."</p> }.into_any(),
                    Ok(rows) => view! {
                        <ul class="rows sync-visits" data-testid="sync-visits">
                            {rows.into_iter().map(|row| view! { <VisitRow row=row /> }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// Participants waiting with provisional codes, and why their records are not sent yet.
#[component]
fn ProvisionalWaiting() -> impl IntoView {
    let sessions = use_sessions();
    let sync = use_sync();
    let waiting = LocalResource::new(move || {
        sync.track_changes();
        async move {
            let session = sessions.current()?;
            let participants = crate::features::fieldwork::data::participants(&session)
                .await
                .ok()?;
            let codes: Vec<String> = participants
                .into_iter()
                .filter(|p| p.is_provisional())
                .map(|p| p.body.code)
                .collect();
            (!codes.is_empty()).then_some(codes)
        }
    });
    move || {
        waiting.get().flatten().map(|codes| {
            let who = codes.join(", ");
            view! {
                <div class="notice provisional" data-testid="sync-provisional">
                    <p><strong>{format!(
                        "Provisional codes: {who}. Code confirmed at next sync."
                    )}</strong></p>
                    <p>"These participants were added when this tablet had no study code left for their group. "
                       "Their records stay on this tablet until a sync gets codes from the server; then they are sent under their new code."</p>
                </div>
            }
        })
    }
}

#[component]
fn VisitRow(row: VisitSync) -> impl IntoView {
    let sync = use_sync();
    let state = {
        let row = row.clone();
        move || row.state(sync.running())
    };
    let state2 = state.clone();
    let who = if row.codes.is_empty() && row.withdrawn {
        "Withdrawn participant".to_string()
    } else if row.codes.is_empty() {
        "No participants".to_string()
    } else {
        row.codes.clone()
    };
    let waiting =
        (row.unsynced > 0).then(|| format!("{} of {} records waiting", row.unsynced, row.records));
    view! {
        <li data-testid="sync-visit">
            <a href=row.href.clone()>
                <span class="sync-visit-who">
                    <strong>{who}</strong>
                    <span class="muted">{when(row.date)}</span>
                    {waiting.map(|w| view! { <span class="muted">{w}</span> })}
                </span>
                <span class=move || state().class()>{move || state2().words()}</span>
            </a>
        </li>
    }
}
