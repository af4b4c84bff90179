//! Settings: auto-lock, locking now, and storage health.

use attune_core::{AutoLockMinutes, human_bytes};
use leptos::prelude::*;

use crate::pwa::use_storage_status;
use crate::session::use_sessions;

/// Share of the quota above which we warn that space is running low.
const LOW_SPACE_WARNING: f64 = 0.8;

/// The settings screen.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <h1>"Settings"</h1>
        <LockSettings />
        <ChildPinSettings />
        <StorageHealth />
    }
}

#[component]
fn LockSettings() -> impl IntoView {
    let sessions = use_sessions();
    let error = RwSignal::new(None::<String>);
    let choose = move |minutes: u32| {
        let Some(choice) = AutoLockMinutes::new(minutes) else {
            return;
        };
        leptos::task::spawn_local(async move {
            error.try_set(sessions.set_auto_lock(choice).await.err());
        });
    };
    view! {
        <section class="panel" aria-labelledby="lock-settings-heading">
            <h2 id="lock-settings-heading">"Locking"</h2>
            <fieldset class="segmented">
                <legend>"Lock after this long without use"</legend>
                {AutoLockMinutes::CHOICES.into_iter().map(|m| view! {
                    <label class="choice" class:chosen=move || sessions.auto_lock_minutes().minutes() == m>
                        <input type="radio" name="auto-lock" value=m.to_string()
                            prop:checked=move || sessions.auto_lock_minutes().minutes() == m
                            on:change=move |_| choose(m) />
                        <span>{format!("{m} min")}</span>
                    </label>
                }).collect_view()}
            </fieldset>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
            <p>"The tablet also locks when it wakes from a sleep longer than this."</p>
            <button class="button" on:click=move |_| sessions.lock()>"Lock now"</button>
        </section>
    }
}

/// The PIN that lets the fieldworker leave child mode (kept as an Argon2id hash).
#[component]
fn ChildPinSettings() -> impl IntoView {
    let sessions = use_sessions();
    let pin = RwSignal::new(String::new());
    let message = RwSignal::new(None::<(bool, String)>);
    let version = RwSignal::new(0u32);
    let has_pin = LocalResource::new(move || {
        version.track();
        async move { matches!(sessions.child_pin().await, Ok(Some(_))) }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = pin.get_untracked();
        leptos::task::spawn_local(async move {
            match sessions.set_child_pin(Some(&value)).await {
                Ok(()) => {
                    pin.set(String::new());
                    version.update(|v| *v += 1);
                    message.set(Some((
                        true,
                        "PIN saved. Use it to leave child mode.".into(),
                    )));
                }
                Err(e) => message.set(Some((false, e))),
            }
        });
    };
    view! {
        <form class="panel form" on:submit=save aria-labelledby="child-pin-heading">
            <h2 id="child-pin-heading">"Child mode"</h2>
            <p>{move || if has_pin.get().unwrap_or(false) {
                "A PIN is set. Leaving child mode asks for it (your passphrase also works)."
            } else {
                "No PIN yet: leaving child mode asks for your passphrase."
            }}</p>
            <label for="child-pin-new">"PIN for child mode (4 to 8 digits)"</label>
            <input id="child-pin-new" type="password" inputmode="numeric" autocomplete="new-password"
                maxlength="8" prop:value=move || pin.get() on:input=move |ev| pin.set(event_target_value(&ev)) />
            <Show when=move || message.get().is_some()>
                {move || message.get().map(|(ok, text)| view! {
                    <p class=if ok { "notice" } else { "notice error" } role=if ok { "status" } else { "alert" }>{text}</p>
                })}
            </Show>
            <div class="form-actions"><button type="submit" class="button">"Save PIN"</button></div>
        </form>
    }
}

#[component]
fn StorageHealth() -> impl IntoView {
    let storage = use_storage_status();
    view! {
        <section class="panel" aria-labelledby="storage-heading">
            <h2 id="storage-heading">"Storage on this tablet"</h2>
            <Suspense fallback=|| view! { <p>"Checking storage..."</p> }>
                {move || storage.get().map(|s| {
                    let used = s.usage.map(human_bytes).unwrap_or_else(|| "unknown".into());
                    let free = match (s.usage, s.quota) {
                        (Some(u), Some(q)) => human_bytes((q - u).max(0.0)),
                        _ => "unknown".into(),
                    };
                    let low = s.used_fraction().is_some_and(|f| f > LOW_SPACE_WARNING);
                    view! {
                        <dl class="facts">
                            <dt>"Kept by the browser"</dt>
                            <dd data-testid="persisted">{if s.persisted { "Yes" } else { "Not guaranteed" }}</dd>
                            <dt>"Used"</dt>
                            <dd data-testid="storage-used">{used}</dd>
                            <dt>"Free"</dt>
                            <dd data-testid="storage-free">{free}</dd>
                        </dl>
                        <Show when=move || low>
                            <p class="notice warn" role="alert">
                                "Storage is over 80% full. Sync and free space before the next visit."
                            </p>
                        </Show>
                    }
                })}
            </Suspense>
            <p class="notice warn">
                "Clearing this site's data in the browser deletes any work that has not been synced. "
                "Sync before clearing anything."
            </p>
        </section>
    }
}
