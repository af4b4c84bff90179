//! Signing in with a passkey, and registering one from an invitation link.

use attune_core::team::{CeremonyFinish, CeremonyOptions, Me, RegisterStart};
use leptos::prelude::*;

use crate::api;
use crate::app::Console;
use crate::error::Error;
use crate::passkey;

async fn sign_in() -> Result<Me, Error> {
    let options: CeremonyOptions =
        api::post("/api/team/login/start", &serde_json::json!({})).await?;
    let credential = passkey::get(&options.public_key).await?;
    api::post(
        "/api/team/login/finish",
        &CeremonyFinish {
            ceremony_id: options.ceremony_id,
            credential,
        },
    )
    .await
}

async fn register(token: String, name: String) -> Result<Me, Error> {
    let options: CeremonyOptions =
        api::post("/api/team/register/start", &RegisterStart { token, name }).await?;
    let credential = passkey::create(&options.public_key).await?;
    api::post(
        "/api/team/register/finish",
        &CeremonyFinish {
            ceremony_id: options.ceremony_id,
            credential,
        },
    )
    .await
}

/// Forgets the invitation in the address bar once it is spent, so a reload signs in instead.
fn clear_fragment() {
    if let Some(window) = web_sys::window()
        && let Ok(history) = window.history()
    {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/console/"));
    }
}

#[component]
fn Unsupported() -> impl IntoView {
    (!passkey::supported()).then(|| {
        view! {
            <p class="error" role="alert">
                "This browser cannot use passkeys. Use a current Chrome, Edge, Firefox or Safari."
            </p>
        }
    })
}

/// "Sign in with a passkey".
#[component]
pub fn SignIn() -> impl IntoView {
    let console = expect_context::<Console>();
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let go = move |_| {
        busy.set(true);
        problem.set(None);
        leptos::task::spawn_local(async move {
            match sign_in().await {
                Ok(me) => console.me.set(Some(me)),
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <p>"The study team signs in with a passkey: your fingerprint, face, PIN or security key."</p>
            <Unsupported />
            <button class="primary" on:click=go disabled=move || busy.get()>
                {move || if busy.get() { "Waiting for your passkey…" } else { "Sign in with a passkey" }}
            </button>
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
            <p class="muted">
                "New to the team? Open the invitation link your study admin sent you."
            </p>
        </section>
    }
}

/// Registering from an invitation: a name, then a new passkey.
#[component]
pub fn Register(token: String) -> impl IntoView {
    let console = expect_context::<Console>();
    let name = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let chosen = name.get_untracked().trim().to_owned();
        if chosen.is_empty() {
            problem.set(Some(Error::Passkey(
                "Type your name as the team should see it.".into(),
            )));
            return;
        }
        busy.set(true);
        problem.set(None);
        let token = token.clone();
        leptos::task::spawn_local(async move {
            match register(token, chosen).await {
                Ok(me) => {
                    clear_fragment();
                    console.invite.set(None);
                    console.me.set(Some(me));
                }
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="card narrow">
            <h1>"Join the study team"</h1>
            <p>"You were invited to the study's console. Make a passkey on this device to sign in from now on."</p>
            <Unsupported />
            <form on:submit=submit>
                <label for="member-name">"Your name"</label>
                <input
                    id="member-name"
                    type="text"
                    autocomplete="name"
                    maxlength="100"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <button class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Waiting for your passkey…" } else { "Create my passkey" }}
                </button>
            </form>
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
        </section>
    }
}
