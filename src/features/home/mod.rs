//! Home: what Attune is for, whether this tablet is ready for a visit, the first action.

use leptos::prelude::*;

use crate::pwa::{OfflineReadiness, use_shell, use_storage_status};

/// The first screen a fieldworker sees.
#[component]
pub fn HomePage() -> impl IntoView {
    let shell = use_shell();
    let storage = use_storage_status();
    let offline_line = move || match shell.offline_ready.get() {
        OfflineReadiness::Ready => (
            "ok",
            "Works with no signal: the app is saved on this tablet.",
        ),
        OfflineReadiness::Preparing => (
            "wait",
            "Saving the app for offline use... keep this page open.",
        ),
        OfflineReadiness::Unsupported => (
            "warn",
            "This browser cannot keep the app offline. Use Chrome, Edge or Safari.",
        ),
    };
    let storage_line = move || match storage.get() {
        None => ("wait", "Checking storage..."),
        Some(s) if s.persisted => (
            "ok",
            "Your work is kept: the browser will not clear it to save space.",
        ),
        Some(_) => (
            "warn",
            "The browser may clear stored work when space runs low. Sync often.",
        ),
    };
    view! {
        <section class="hero" data-testid="home">
            <p class="eyebrow">"Research visits, offline"</p>
            <h1>"Attune"</h1>
            <p class="lead">
                "Record consent, interview notes and children's activities on this tablet, with or without signal. "
                "Everything stays encrypted here until you sync it to your research team."
            </p>
        </section>
        <section class="panel readiness" aria-labelledby="ready-heading">
            <h2 id="ready-heading">"Is this tablet ready for a visit?"</h2>
            <ul class="checklist">
                <li class=move || offline_line().0 data-testid="offline-readiness">{move || offline_line().1}</li>
                <li class=move || storage_line().0 data-testid="storage-persistence">{move || storage_line().1}</li>
            </ul>
        </section>
        <nav class="panel tiles" aria-label="Sections">
            <a class="tile" href="/notes">
                <strong>"Notebook"</strong>
                <span>"Your own notes, saved as you type"</span>
            </a>
            <a class="tile" href="/settings">
                <strong>"Settings"</strong>
                <span>"Auto-lock, storage on this tablet"</span>
            </a>
        </nav>
        <div class="actions">
            <a class="button primary" href="/notes">"Open notebook"</a>
        </div>
    }
}
