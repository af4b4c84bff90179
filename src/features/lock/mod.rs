//! The lock screen: choose your profile and unlock it, or create one on first run.

use attune_core::{Profile, Strength, Vault, passphrase_strength};
use leptos::prelude::*;

use crate::session::use_sessions;

/// Shown whenever no vault is open.
#[component]
pub fn LockScreen(profiles: Vec<Profile>) -> impl IntoView {
    // While a child session is on (after an auto-lock or a reload), only the fieldworker who
    // started it may unlock: no other profile, no new one.
    let child_profile = crate::features::child::use_child()
        .current()
        .and_then(|mode| mode.profile);
    let profiles: Vec<Profile> = match child_profile {
        Some(id) if profiles.iter().any(|p| p.id == id) => {
            profiles.into_iter().filter(|p| p.id == id).collect()
        }
        _ => profiles,
    };
    let child_mode = child_profile.is_some();
    let creating = RwSignal::new(profiles.is_empty());
    let first_run = profiles.is_empty();
    view! {
        <section class="lock" aria-labelledby="lock-heading">
            <Show
                when=move || creating.get()
                fallback={
                    let profiles = profiles.clone();
                    move || view! { <UnlockForm profiles=profiles.clone() child_mode=child_mode on_new=Callback::new(move |()| creating.set(true)) /> }
                }
            >
                <CreateProfileForm first_run=first_run on_cancel=Callback::new(move |()| creating.set(false)) />
            </Show>
        </section>
    }
}

/// Lets the browser paint "Unlocking..." before the key derivation blocks the thread.
async fn next_frame() {
    gloo_timers::future::TimeoutFuture::new(30).await;
}

#[component]
fn UnlockForm(profiles: Vec<Profile>, child_mode: bool, on_new: Callback<()>) -> impl IntoView {
    let sessions = use_sessions();
    let selected = RwSignal::new(if profiles.len() == 1 {
        Some(0usize)
    } else {
        None
    });
    let passphrase = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let profiles = StoredValue::new(profiles);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(profile) = selected
            .get_untracked()
            .and_then(|i| profiles.with_value(|p| p.get(i).cloned()))
        else {
            error.set(Some("Choose your profile first.".into()));
            return;
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            next_frame().await;
            let result = sessions.unlock(&profile, &passphrase.get_untracked()).await;
            if let Err(message) = result {
                error.try_set(Some(message));
                busy.try_set(false);
            }
        });
    };
    view! {
        <h1 id="lock-heading">"Unlock Attune"</h1>
        <p class="lead">"Your work on this tablet is encrypted. Enter your passphrase to open it."</p>
        {child_mode.then(|| view! {
            <p class="notice" data-testid="lock-child-mode">"Child mode is on. Only the fieldworker who started it can unlock; the child's session continues after."</p>
        })}
        <form class="panel form" on:submit=submit>
            <fieldset class="profiles">
                <legend>"Who are you?"</legend>
                {move || profiles.with_value(|list| list.iter().enumerate().map(|(i, p)| {
                    let name = p.name.clone();
                    view! {
                        <label class="choice" class:chosen=move || selected.get() == Some(i)>
                            <input type="radio" name="profile" value=i.to_string()
                                prop:checked=move || selected.get() == Some(i)
                                on:change=move |_| { selected.set(Some(i)); error.set(None); } />
                            <span>{name}</span>
                        </label>
                    }
                }).collect_view())}
            </fieldset>
            <label class="field">
                <span>"Passphrase"</span>
                <input type="password" autocomplete="current-password" required
                    prop:value=move || passphrase.get()
                    on:input=move |ev| passphrase.set(event_target_value(&ev)) />
            </label>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
            <div class="form-actions">
                {(!child_mode).then(|| view! {
                    <button type="button" class="button" on:click=move |_| on_new.run(())>"New profile"</button>
                })}
                <button type="submit" class="button primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Unlocking..." } else { "Unlock" }}
                </button>
            </div>
        </form>
    }
}

#[component]
fn CreateProfileForm(first_run: bool, on_cancel: Callback<()>) -> impl IntoView {
    let sessions = use_sessions();
    let name = RwSignal::new(String::new());
    let passphrase = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let strength =
        Memo::new(move |_| passphrase.with(|p| (!p.is_empty()).then(|| passphrase_strength(p))));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (pass, again) = (passphrase.get_untracked(), confirm.get_untracked());
        if pass.chars().count() < Vault::minimum_passphrase_len() {
            error.set(Some(format!(
                "Use a passphrase of at least {} characters.",
                Vault::minimum_passphrase_len()
            )));
            return;
        }
        if pass != again {
            error.set(Some(
                "The two passphrases are different. Type them again.".into(),
            ));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            next_frame().await;
            if let Err(message) = sessions.create_profile(&name.get_untracked(), &pass).await {
                error.try_set(Some(message));
                busy.try_set(false);
            }
        });
    };
    view! {
        <h1 id="lock-heading">{if first_run { "Welcome to Attune" } else { "New profile" }}</h1>
        <p class="lead">
            "Create your profile. Everything you record is encrypted on this tablet with your passphrase. "
            "Each fieldworker sharing the tablet has their own profile, which the others cannot open."
        </p>
        <form class="panel form" on:submit=submit>
            <label class="field">
                <span>"Your name"</span>
                <input type="text" autocomplete="name" required maxlength="60"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            </label>
            <label class="field">
                <span>"Passphrase"</span>
                <input type="password" autocomplete="new-password" required aria-describedby="strength-hint"
                    prop:value=move || passphrase.get() on:input=move |ev| passphrase.set(event_target_value(&ev)) />
            </label>
            <p id="strength-hint" class="hint" data-testid="strength-hint"
                class:weak=move || strength.get().is_some_and(|s| s.strength == Strength::Weak)
                class:strong=move || strength.get().is_some_and(|s| s.strength == Strength::Strong)>
                {move || match strength.get() {
                    None => format!("At least {} characters. A few unrelated words are easy to remember and hard to guess.", Vault::minimum_passphrase_len()),
                    Some(check) => check.hint,
                }}
            </p>
            <label class="field">
                <span>"Passphrase again"</span>
                <input type="password" autocomplete="new-password" required
                    prop:value=move || confirm.get() on:input=move |ev| confirm.set(event_target_value(&ev)) />
            </label>
            <p class="notice warn">
                <strong>"Nobody can recover a forgotten passphrase"</strong>
                ", not even the research team. Work not yet synced would be lost. Write it down and keep it apart from the tablet."
            </p>
            <Show when=move || error.get().is_some()>
                <p class="notice error" role="alert">{move || error.get()}</p>
            </Show>
            <div class="form-actions">
                <Show when=move || !first_run>
                    <button type="button" class="button" on:click=move |_| on_cancel.run(())>"Back"</button>
                </Show>
                <button type="submit" class="button primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating..." } else { "Create profile" }}
                </button>
            </div>
        </form>
    }
}
