//! "Saving..." / "Saved on this tablet 10:42" / "Not saved: reason".

use attune_core::SaveStatus;
use leptos::prelude::*;

/// Shows the autosave status of the document on screen.
#[component]
pub fn SaveIndicator(status: RwSignal<SaveStatus>) -> impl IntoView {
    let text = move || match status.get() {
        SaveStatus::Idle => String::new(),
        SaveStatus::Saving => "Saving...".into(),
        SaveStatus::Saved { at } => format!("Saved on this tablet {}", clock_time(at.0)),
        SaveStatus::NotSaved { reason, .. } => {
            format!("Not saved: {reason}. Your text is still here; trying again.")
        }
    };
    let failed = move || matches!(status.get(), SaveStatus::NotSaved { .. });
    // When the last write completed (ms since the epoch), for tests and the save benchmark.
    let saved_at = move || match status.get() {
        SaveStatus::Saved { at } => at.0.to_string(),
        _ => String::new(),
    };
    view! {
        <p class="save-indicator" class:failed=failed role="status" aria-live="polite" data-testid="save-status" data-saved-at=saved_at>
            {text}
        </p>
    }
}

/// "10:42" in the tablet's local time.
pub fn clock_time(millis: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}
