//! Settings: storage health and what the fieldworker should know about this tablet.

use leptos::prelude::*;

use crate::pwa::{human_bytes, use_storage_status};

/// Share of the quota above which we warn that space is running low.
const LOW_SPACE_WARNING: f64 = 0.8;

/// Storage health and device facts.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let storage = use_storage_status();
    view! {
        <section class="panel" aria-labelledby="storage-heading">
            <h1 id="storage-heading">"Storage on this tablet"</h1>
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
