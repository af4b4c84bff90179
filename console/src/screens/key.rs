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
use crate::app::{Console, Unlocked};
use crate::error::Error;
use crate::study::Study;

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

/// The key file and passphrase form.
#[component]
pub fn OpenKey() -> impl IntoView {
    let console = expect_context::<Console>();
    let file = NodeRef::<leptos::html::Input>::new();
    let passphrase = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(input) = file.get_untracked() else {
            return;
        };
        let input: web_sys::HtmlInputElement = input.unchecked_into();
        busy.set(true);
        problem.set(None);
        leptos::task::spawn_local(async move {
            let secret = passphrase.get_untracked();
            // Let "Opening…" paint before Argon2 takes the main thread for a moment.
            gloo_timers::future::TimeoutFuture::new(30).await;
            let result = match file_bytes(&input).await {
                Ok(bytes) => open(bytes, secret).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(unlocked) => {
                    passphrase.set(String::new());
                    console.unlocked.set(Some(unlocked));
                }
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
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
                <label for="key-file">"Study key file"</label>
                <input id="key-file" type="file" node_ref=file accept=".key,application/octet-stream" />
                <label for="key-passphrase">"Passphrase"</label>
                <input
                    id="key-passphrase"
                    type="password"
                    autocomplete="off"
                    prop:value=move || passphrase.get()
                    on:input=move |ev| passphrase.set(event_target_value(&ev))
                />
                <button class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Opening…" } else { "Open the study" }}
                </button>
            </form>
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        </section>
    }
}
