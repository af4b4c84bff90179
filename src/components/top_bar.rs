//! The bar at the top of every adult screen: the app, who is working, online or offline,
//! "Update ready" and "Lock".

use leptos::prelude::*;
use leptos_router::components::A;

use crate::pwa::{apply_update, use_shell};
use crate::session::{LockState, use_sessions};

/// Always visible at the top of adult screens.
#[component]
pub fn TopBar() -> impl IntoView {
    let shell = use_shell();
    let sessions = use_sessions();
    let (applying, set_applying) = signal(false);
    let who = move || match sessions.state() {
        LockState::Unlocked(session) => Some(session.profile.name.clone()),
        _ => None,
    };
    view! {
        <header class="top-bar">
            <a class="brand" href="/" aria-label="Attune home">
                <img src="/icons/icon.svg" alt="" width="36" height="36" />
                <span>"Attune"</span>
            </a>
            <div class="top-bar-status">
                <Show when=move || shell.update_ready.get()>
                    <button
                        class="button update"
                        on:click=move |_| {
                            set_applying.set(true);
                            apply_update();
                        }
                        disabled=move || applying.get()
                    >
                        {move || if applying.get() { "Updating..." } else { "Update ready" }}
                    </button>
                </Show>
                <span
                    class="network"
                    class:offline=move || !shell.online.get()
                    role="status"
                    aria-live="polite"
                >
                    <span class="dot" aria-hidden="true"></span>
                    {move || if shell.online.get() { "Online" } else { "Offline" }}
                </span>
                {move || who().map(|name| view! {
                    <span class="who" data-testid="profile-name">{name}</span>
                    <button class="button lock-now" on:click=move |_| sessions.lock()>"Lock"</button>
                })}
            </div>
        </header>
        <Show when=move || who().is_some()>
            <nav class="main-nav" aria-label="Main">
                <A href="/" exact=true>"Home"</A>
                <A href="/participants">"Participants"</A>
                <A href="/notes">"Notebook"</A>
                <A href="/sync">"Sync"</A>
                <A href="/settings">"Settings"</A>
            </nav>
        </Show>
    }
}
