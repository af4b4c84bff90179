//! A text area that saves itself: the building block of notes, interview answers and
//! reflections.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use attune_core::Timestamp;
use leptos::prelude::*;

use crate::components::autosave::use_autosave;
use crate::components::save_indicator::SaveIndicator;

/// A labelled text area whose every change is saved by `save(text)`, throttled as
/// `use_autosave` describes, with its save status beside the label.
#[component]
pub fn AutosavedText<F, Fut>(
    /// The visible label (also the accessible name).
    label: String,
    /// The text when the screen opens.
    initial: String,
    /// Writes the given text; resolves to the time it was stored.
    save: F,
    /// Rows of the text area.
    #[prop(default = 10)]
    rows: u32,
    /// Shown when the text area is empty.
    #[prop(optional, into)]
    placeholder: String,
) -> impl IntoView
where
    F: Fn(String) -> Fut + 'static,
    Fut: Future<Output = Result<Timestamp, String>> + 'static,
{
    // The text lives outside the reactive system so a write still in flight, and the flush
    // when the screen is left, can finish after the screen is gone.
    let text = Rc::new(RefCell::new(initial.clone()));
    let saver = {
        let text = text.clone();
        use_autosave(move || save(text.borrow().clone()))
    };
    let status = saver.status();
    let id = format!("text-{}", js_sys::Math::random().to_bits());
    let on_input = {
        let saver = saver.clone();
        move |ev: leptos::ev::Event| {
            *text.borrow_mut() = event_target_value(&ev);
            saver.changed();
        }
    };
    view! {
        <div class="autosaved">
            <div class="autosaved-head">
                <label for=id.clone()>{label}</label>
                <SaveIndicator status=status />
            </div>
            // `prop:value`: when the same text area is reused for another document (another
            // question), it must show that document's text, not what was typed before.
            <textarea id=id class="note-text" rows=rows spellcheck="true" placeholder=placeholder
                prop:value=initial on:input=on_input on:blur=move |_| saver.flush()></textarea>
        </div>
    }
}
