//! The bar at the top of every adult screen: the app, online or offline, and "Update ready".

use leptos::prelude::*;

use crate::pwa::{apply_update, use_shell};

/// Always visible at the top of adult screens.
#[component]
pub fn TopBar() -> impl IntoView {
    let shell = use_shell();
    let (applying, set_applying) = signal(false);
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
            </div>
        </header>
    }
}
