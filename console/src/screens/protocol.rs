//! Protocol (study admins): the version the tablets use, and publishing a new one. The file
//! is checked here with the app's own rules (each problem named by where it is in the file),
//! the changes against the version in use are listed in words, and publishing signs the
//! update with the study signing key in this page. Tablets take it at their next sync, for
//! visits started from then on.

use attune_core::protocol::diff::{Change, changes};
use attune_core::protocol::{Protocol, ProtocolError};
use attune_core::sync::ControlKind;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::app::{Console, Unlocked};
use crate::error::Error;
use crate::instruct;
use crate::screens::key;

/// The largest protocol file the screen reads (the built-in one is about 20 KB).
const MAX_FILE_BYTES: f64 = 2_000_000.0;

/// What the chosen file is.
#[derive(Clone)]
enum Checked {
    /// It does not parse or breaks a rule: nothing can be published.
    Invalid(Vec<ProtocolError>),
    /// It parses but cannot follow the version in use (another protocol, not newer).
    NotNext(String),
    /// It can be published: its JSON, the protocol and its changes.
    Ready {
        json: String,
        protocol: Box<Protocol>,
        changes: Vec<Change>,
    },
}

/// The newest version in use: the highest published version of the study's protocol, or the
/// one built into the app.
fn in_use(unlocked: &Unlocked) -> Protocol {
    let protocols = &unlocked.study.protocols;
    let built_in = attune_core::protocol::default_protocol();
    protocols
        .iter()
        .filter(|p| p.id == built_in.id)
        .max_by_key(|p| p.version)
        .cloned()
        .unwrap_or_else(|| built_in.clone())
}

fn check(json: String, current: &Protocol) -> Checked {
    let protocol = match Protocol::parse_all(&json) {
        Ok(protocol) => protocol,
        Err(problems) => return Checked::Invalid(problems),
    };
    if protocol.id != current.id {
        return Checked::NotNext(format!(
            "This file is the protocol \"{}\", but the study uses \"{}\". Choose this study's \
             protocol file.",
            protocol.id, current.id
        ));
    }
    if protocol.version <= current.version {
        return Checked::NotNext(format!(
            "This file is version {}, but version {} is already in use. Give the file a higher \
             \"version\" (for example {}) and choose it again.",
            protocol.version,
            current.version,
            current.version + 1
        ));
    }
    let changes = changes(current, &protocol);
    Checked::Ready {
        json,
        protocol: Box::new(protocol),
        changes,
    }
}

async fn read_text(input: &web_sys::HtmlInputElement) -> Result<String, Error> {
    let file = input
        .files()
        .and_then(|files| files.get(0))
        .ok_or_else(|| Error::Form("Choose a protocol file first (a .json file).".into()))?;
    if file.size() > MAX_FILE_BYTES {
        return Err(Error::Form(
            "That file is too large to be a protocol file (over 2 MB).".into(),
        ));
    }
    let text = JsFuture::from(file.text())
        .await
        .map_err(|_| Error::Form("The file could not be read.".into()))?;
    text.as_string().ok_or_else(|| {
        Error::Form("The file is not text: choose the protocol's .json file.".into())
    })
}

/// The protocol screen.
#[component]
pub fn ProtocolScreen(unlocked: Unlocked) -> impl IntoView {
    let console = expect_context::<Console>();
    let current = in_use(&unlocked);
    let built_in = current.version == attune_core::protocol::default_protocol().version
        && unlocked.study.protocols.len() <= 1;
    let file = NodeRef::<leptos::html::Input>::new();
    let checked = RwSignal::new(None::<Checked>);
    let problem = RwSignal::new(None::<Error>);
    let done = RwSignal::new(instruct::take_flash());
    let busy = RwSignal::new(false);
    let current_for_check = current.clone();
    let on_change = move |_| {
        let Some(input) = file.get_untracked() else {
            return;
        };
        let input: web_sys::HtmlInputElement = input.unchecked_into();
        let current = current_for_check.clone();
        problem.set(None);
        done.set(None);
        checked.set(None);
        leptos::task::spawn_local(async move {
            match read_text(&input).await {
                Ok(json) => checked.set(Some(check(json, &current))),
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let publish = move |_| {
        let Some(Checked::Ready { json, protocol, .. }) = checked.get_untracked() else {
            return;
        };
        // The key is read from the page's state when the button is pressed, not captured.
        let Some(unlocked) = console.unlocked.get_untracked() else {
            return;
        };
        busy.set(true);
        problem.set(None);
        leptos::task::spawn_local(async move {
            let result =
                instruct::send(&unlocked, ControlKind::ProtocolUpdate { protocol: json }).await;
            match result {
                Ok(_) => {
                    let words = format!(
                        "Version {} of \"{}\" is published. Each tablet takes it at its next \
                         sync and uses it for visits started from then on.",
                        protocol.version, protocol.title
                    );
                    checked.set(None);
                    done.set(Some(words.clone()));
                    // The screen is drawn again with the refreshed study: the words go with it.
                    instruct::flash(words);
                    if let Ok(fresh) = key::reload(&unlocked).await {
                        console.unlocked.set(Some(fresh));
                    }
                }
                Err(error) => problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    view! {
        <section>
            <h1>"Protocol"</h1>
            <div class="card">
                <h2>"In use"</h2>
                <p data-testid="protocol-in-use">
                    <strong>{current.title.clone()}</strong>
                    {format!(" (\"{}\", version {})", current.id, current.version)}
                </p>
                <p class="muted">{if built_in {
                    "The version built into the app: no other version has been published."
                } else {
                    "Published by the study team, signed with the study key."
                }}</p>
                <ul class="plain">
                    {current.groups.iter().map(|g| view! {
                        <li>{format!("{} ({}…): target {}", g.name, g.code_prefix, g.target)}</li>
                    }).collect_view()}
                </ul>
            </div>
            <div class="card">
                <h2>"Publish a new version"</h2>
                <p>
                    "Choose the edited protocol file. It is checked here with the app's own rules, "
                    "and you see every change before anything is published."
                </p>
                <label for="protocol-file">"Protocol file (.json)"</label>
                <input id="protocol-file" type="file" accept=".json,application/json" node_ref=file on:change=on_change />
                {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
                {move || done.get().map(|words| view! { <p class="notice" role="status">{words}</p> })}
                {move || checked.get().map(|c| result_view(c, busy, publish))}
            </div>
        </section>
    }
}

fn result_view(
    checked: Checked,
    busy: RwSignal<bool>,
    publish: impl Fn(leptos::ev::MouseEvent) + Copy + Send + 'static,
) -> AnyView {
    match checked {
        Checked::Invalid(problems) => view! {
            <div role="alert" data-testid="protocol-problems">
                <p class="error">{format!(
                    "This file cannot be published: {} {} to fix. Nothing was published.",
                    problems.len(),
                    if problems.len() == 1 { "problem" } else { "problems" }
                )}</p>
                <ul class="problems">
                    {problems.into_iter().map(|p| view! {
                        <li>
                            {(!p.path.is_empty()).then(|| view! { <code>{p.path.clone()}</code>" " })}
                            {p.message.clone()}
                        </li>
                    }).collect_view()}
                </ul>
            </div>
        }
        .into_any(),
        Checked::NotNext(why) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
        Checked::Ready {
            protocol, changes, ..
        } => {
            let version = protocol.version;
            view! {
                <div data-testid="protocol-changes">
                    <h3>{format!("What changes in version {version}")}</h3>
                    {if changes.is_empty() {
                        view! { <p class="muted">"Nothing but the version number changes."</p> }.into_any()
                    } else {
                        view! {
                            <table class="changes">
                                <thead><tr><th scope="col">"Change"</th><th scope="col">"Where"</th><th scope="col">"Now"</th><th scope="col">"In the new version"</th></tr></thead>
                                <tbody>{changes.into_iter().map(|c| view! {
                                    <tr>
                                        <td><span class=format!("badge change-{}", c.kind.label().to_lowercase())>{c.kind.label()}</span></td>
                                        <th scope="row">{c.place}</th>
                                        <td class="note-text">{c.before.unwrap_or_default()}</td>
                                        <td class="note-text">{c.after.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table>
                        }.into_any()
                    }}
                    <p class="notice">
                        "Tablets take the new version at their next sync and use it for visits started "
                        "from then on; visits already started keep the version they began with."
                    </p>
                    <button class="primary" prop:disabled=move || busy.get() on:click=publish>
                        {move || if busy.get() { "Publishing…".to_owned() } else { format!("Publish version {version}") }}
                    </button>
                </div>
            }
            .into_any()
        }
    }
}
