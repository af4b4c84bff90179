//! Opening the study key file in the page: the file is read from this computer, its
//! passphrase unwraps the key here (Argon2id in WebAssembly), and only then is the sealed
//! data fetched and opened. Neither the key nor the passphrase is ever sent.

use std::rc::Rc;

use attune_core::StudyKeyFile;
use attune_core::review::{SNAPSHOT_PATH, Snapshot};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::api;
use crate::app::{Console, Page, Unlocked};
use crate::error::Error;
use crate::keystore;
use crate::study::{Study, when};

async fn file_bytes(input: &web_sys::HtmlInputElement) -> Result<Vec<u8>, Error> {
    let file = input
        .files()
        .and_then(|files| files.get(0))
        .ok_or_else(|| Error::Key("Choose the study key file first (study.key).".into()))?;
    if file.size() > 1_000_000.0 {
        return Err(Error::Key(
            "That file is too large to be a study key file: choose study.key.".into(),
        ));
    }
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| Error::Key("The file could not be read.".into()))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Opens the key, then the study.
pub async fn open(bytes: Vec<u8>, passphrase: String) -> Result<Unlocked, Error> {
    let keys = StudyKeyFile::open_keys(&bytes, &passphrase).map_err(|error| {
        Error::Key(match error {
            attune_core::EnvelopeError::WrongPassphrase => {
                "The passphrase does not open this key file. Check it and try again.".to_owned()
            }
            other => format!("This is not a study key file that Attune can open: {other}"),
        })
    })?;
    let key = Rc::new(keys.private);
    let signing = keys.signing.map(Rc::new);
    let snapshot: Snapshot = api::get(SNAPSHOT_PATH).await?;
    let verifying = signing.as_ref().map(|s: &Rc<_>| s.public_key());
    let study = Rc::new(Study::open(&snapshot, &key, verifying.as_ref()));
    Ok(Unlocked {
        key,
        signing,
        study,
    })
}

/// The study as the server holds it now, opened with the key already open (after the team
/// acted: a revocation, a withdrawal, an acknowledgement).
pub async fn reload(unlocked: &Unlocked) -> Result<Unlocked, Error> {
    let snapshot: Snapshot = api::get(SNAPSHOT_PATH).await?;
    let verifying = unlocked.signing.as_ref().map(|s| s.public_key());
    let study = Rc::new(Study::open(&snapshot, &unlocked.key, verifying.as_ref()));
    Ok(Unlocked {
        key: unlocked.key.clone(),
        signing: unlocked.signing.clone(),
        study,
    })
}

/// The key file and passphrase form. If the key file is remembered on this browser, only the
/// passphrase is asked (with a way to forget it or use another file).
#[component]
pub fn OpenKey() -> impl IntoView {
    let console = expect_context::<Console>();
    let file = NodeRef::<leptos::html::Input>::new();
    let passphrase = RwSignal::new(String::new());
    let remember = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    // `None` while looking; then the remembered file, if any.
    let remembered = RwSignal::new(None::<Option<keystore::Remembered>>);
    leptos::task::spawn_local(async move {
        remembered.set(Some(keystore::remembered().await));
    });
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let saved = remembered.get_untracked().flatten();
        let input: Option<web_sys::HtmlInputElement> =
            file.get_untracked().map(|input| input.unchecked_into());
        busy.set(true);
        problem.set(None);
        leptos::task::spawn_local(async move {
            let secret = passphrase.get_untracked();
            // Let "Opening…" paint before Argon2 takes the main thread for a moment.
            gloo_timers::future::TimeoutFuture::new(30).await;
            let bytes = match (saved, input) {
                (Some(saved), _) => Ok(saved.bytes),
                (None, Some(input)) => file_bytes(&input).await,
                (None, None) => Err(Error::Key(
                    "Choose the study key file first (study.key).".into(),
                )),
            };
            let result = match bytes {
                Ok(bytes) => {
                    let opened = open(bytes.clone(), secret).await;
                    if opened.is_ok() && remember.get_untracked() {
                        // Remembered only once it opened: a wrong file is never kept.
                        if let Err(error) = keystore::remember(&bytes).await {
                            problem.set(Some(error));
                        }
                    }
                    opened
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(unlocked) => {
                    passphrase.set(String::new());
                    // A study opens on its overview, whatever screen was shown before.
                    console.go(Page::Overview);
                    console.unlocked.set(Some(unlocked));
                }
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    let forget = move |_| {
        leptos::task::spawn_local(async move {
            match keystore::forget().await {
                Ok(()) => remembered.set(Some(None)),
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    view! {
        <section class="card narrow">
            <h1>"Open the study key"</h1>
            <p>
                "The data on the server is sealed to the study key. Open the key file here: it is read and "
                "unlocked in this page only, and never sent to the server."
            </p>
            <form on:submit=submit>
                {move || match remembered.get() {
                    None => view! { <p class="muted">"Looking for a remembered key…"</p> }.into_any(),
                    Some(Some(saved)) => view! {
                        <p class="notice" data-testid="key-remembered">
                            {format!("The study key file is remembered on this browser (since {}). Type its passphrase to open it.", when(saved.saved_at))}
                        </p>
                    }.into_any(),
                    Some(None) => view! {
                        <label for="key-file">"Study key file"</label>
                        <input id="key-file" type="file" node_ref=file accept=".key,application/octet-stream" />
                    }.into_any(),
                }}
                <label for="key-passphrase">"Passphrase"</label>
                <input
                    id="key-passphrase"
                    type="password"
                    autocomplete="off"
                    prop:value=move || passphrase.get()
                    on:input=move |ev| passphrase.set(event_target_value(&ev))
                />
                {move || (remembered.get() == Some(None)).then(|| view! {
                    <label class="choice">
                        <input type="checkbox" prop:checked=move || remember.get() on:change=move |ev| remember.set(event_target_checked(&ev)) />
                        "Remember the key file on this browser"
                    </label>
                    <p class="muted">
                        "Only on a computer that you alone use. The file stays locked by its passphrase, "
                        "which is never stored: you type it each time."
                    </p>
                })}
                <button class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Opening…" } else { "Open the study" }}
                </button>
            </form>
            {move || matches!(remembered.get(), Some(Some(_))).then(|| view! {
                <button class="secondary" on:click=forget>"Forget the key on this browser"</button>
            })}
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        </section>
    }
}
