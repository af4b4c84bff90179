//! Export: the whole export built in this page, as `attune-server export` writes it, and
//! saved as one zip. The server sends only what it holds sealed (the snapshot, then each
//! recording as uploaded); everything is verified, opened and laid out here with the study
//! key by core's `export::bundle`, the same code the CLI runs, so the files are the same.
//! Problems (a recording that cannot be fetched or opened, revisions that do not verify) are
//! listed on the screen and in the zip's manifest; the export still completes.

use std::collections::HashMap;
use std::rc::Rc;

use attune_core::export::Format;
use attune_core::export::bundle::{self, Options, Upload, WantedAttachment};
use attune_core::review::{SNAPSHOT_PATH, Snapshot, blob_path};
use attune_core::{Kind, StudyPrivateKey, Timestamp};
use leptos::prelude::*;

use crate::api;
use crate::app::{Console, Unlocked};
use crate::error::Error;

/// How far the build has got: for the `<progress>` element and its words.
#[derive(Clone, Debug, PartialEq)]
struct Progress {
    /// Steps done.
    done: u32,
    /// Steps in all: the snapshot, each recording, writing the files.
    steps: u32,
    /// What is happening, in words.
    words: String,
}

/// A finished export, ready to save.
#[derive(Clone, Debug, PartialEq)]
struct Built {
    /// The object URL of the zip (revoked when the screen closes or the export is rebuilt).
    url: String,
    /// `attune-export-YYYY-MM-DD.zip`.
    name: String,
    /// The zip's size.
    bytes: usize,
    /// Files in it.
    files: usize,
    /// Recordings in it.
    recordings: usize,
    /// What could not be exported, in words (also in the manifest).
    problems: Vec<String>,
}

/// The Export screen.
#[component]
pub fn Export(unlocked: Unlocked) -> impl IntoView {
    let console = expect_context::<Console>();
    let study = unlocked.study.clone();
    let participants = study.participants().len();
    let records = study.records.len();
    let recordings = study
        .records
        .iter()
        .filter(|r| r.kind() == Kind::Attachment)
        .count();
    let progress = RwSignal::new(None::<Progress>);
    let built = RwSignal::new(None::<Built>);
    let problem = RwSignal::new(None::<Error>);
    on_cleanup(move || {
        if let Some(done) = built.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&done.url);
        }
    });
    let key = StoredValue::new_local(unlocked.key.clone());
    let start = move |_| {
        if progress.with_untracked(Option::is_some) {
            return;
        }
        if let Some(old) = built.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old.url);
        }
        built.set(None);
        problem.set(None);
        progress.set(Some(Progress {
            done: 0,
            steps: 1,
            words: "Fetching what the server holds…".into(),
        }));
        let key = key.get_value();
        let who = console
            .me
            .with_untracked(|me| me.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        leptos::task::spawn_local(async move {
            match build(&key, &who, progress).await {
                Ok(done) => built.set(Some(done)),
                Err(error) => problem.set(Some(error)),
            }
            progress.set(None);
        });
    };
    view! {
        <section>
            <h1>"Export"</h1>
            <div class="card">
                <h2>"What the zip holds"</h2>
                <p data-testid="export-counts">
                    {format!(
                        "{} · {} · {}, as they are now on the server, checked and opened in this page.",
                        count(participants, "participant", "participants"),
                        count(records, "record", "records"),
                        count(recordings, "recording", "recordings"),
                    )}
                </p>
                <ul>
                    <li>"Every record as a table (records.csv) and in full with every revision (records.json)."</li>
                    <li>"The recordings, and the children's drawings as pictures."</li>
                    <li>"Tidy tables for analysis, one per kind of record, with a codebook and scripts that load them in R and SPSS."</li>
                    <li>"A project for NVivo, ATLAS.ti and MAXQDA (attune.qdpx, REFI-QDA)."</li>
                    <li>"A Word document for each interview, with the questions as headings."</li>
                    <li>"An ELAN file for each recorded interview, with the notes at their times."</li>
                    <li>"A manifest (manifest.json) with a checksum of each file and anything that could not be exported."</li>
                </ul>
                <p class="muted">
                    "The zip holds the study's data decrypted: save it only where the study's data may be kept. "
                    "Withdrawn participants are left out."
                </p>
                <button class="primary" on:click=start disabled=move || progress.with(Option::is_some)>
                    "Build the export"
                </button>
            </div>
            {move || progress.get().map(|p| view! {
                <div class="card" role="status" data-testid="export-progress">
                    <label for="export-progress-bar">{p.words.clone()}</label>
                    <progress id="export-progress-bar" max=p.steps value=p.done>
                        {format!("{} of {}", p.done, p.steps)}
                    </progress>
                </div>
            })}
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
            {move || built.get().map(ready)}
        </section>
    }
}

/// The finished export: the link that saves it, and what could not be exported.
fn ready(done: Built) -> impl IntoView {
    let problems = done.problems.clone();
    view! {
        <div class="card" data-testid="export-ready">
            <h2>"The export is ready"</h2>
            <p>
                {format!(
                    "{} files, with {}, {} in all.",
                    done.files,
                    count(done.recordings, "recording", "recordings"),
                    attune_core::human_bytes(done.bytes as f64)
                )}
            </p>
            <p>
                <a class="primary button" href=done.url.clone() download=done.name.clone()>
                    {format!("Save {}", done.name)}
                </a>
            </p>
            {if problems.is_empty() {
                view! { <p class="muted">"Everything the server holds was exported."</p> }.into_any()
            } else {
                view! {
                    <div class="notice warn" data-testid="export-problems">
                        <h3>{format!("{} could not be exported (listed in manifest.json too)", count(problems.len(), "thing", "things"))}</h3>
                        <ul>{problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
                    </div>
                }
                .into_any()
            }}
        </div>
    }
}

/// `1 participant`, `3 participants`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Fetches, opens and lays out the export, then zips it into an object URL.
async fn build(
    key: &Rc<StudyPrivateKey>,
    who: &str,
    progress: RwSignal<Option<Progress>>,
) -> Result<Built, Error> {
    let snapshot: Snapshot = api::get(SNAPSHOT_PATH).await?;
    let prepared = bundle::prepare(&snapshot, key);
    drop(snapshot);
    let wanted = prepared.attachments();
    let steps = u32::try_from(wanted.len())
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    let step = |done: u32, words: String| progress.set(Some(Progress { done, steps, words }));
    let mut opened = HashMap::new();
    for (n, recording) in (1u32..).zip(&wanted) {
        step(n, format!("Opening recording {n} of {}…", wanted.len()));
        // Let the page paint and answer between recordings.
        gloo_timers::future::TimeoutFuture::new(0).await;
        let plaintext = bundle::open_uploads(key, recording, fetch(recording).await);
        opened.insert(recording.record_id.clone(), plaintext);
    }
    step(steps - 1, "Writing the files…".into());
    gloo_timers::future::TimeoutFuture::new(0).await;
    let now = Timestamp(js_sys::Date::now() as i64);
    let done = prepared
        .assemble(
            opened,
            &Options {
                exported_at: now,
                exported_by: who,
                // Unpacked anywhere: the projects' relative links hold.
                base_path: "",
                formats: &Format::ALL,
            },
        )
        .map_err(|e| Error::Export(e.to_string()))?;
    let recordings = done
        .files
        .iter()
        .filter(|f| f.name.starts_with("attachments/"))
        .count();
    let entries: Vec<(&str, &[u8])> = done
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.bytes.as_slice()))
        .collect();
    let zipped =
        attune_core::export::zip::zip(&entries).map_err(|e| Error::Export(e.to_string()))?;
    let url = object_url(&zipped)?;
    Ok(Built {
        url,
        name: format!("attune-export-{}.zip", now.date_utc()),
        bytes: zipped.len(),
        files: done.files.len(),
        recordings,
        problems: done.problems,
    })
}

/// A recording's sealed bytes from the server (its first complete upload), or why not.
async fn fetch(recording: &WantedAttachment) -> Result<Vec<Upload>, String> {
    match api::get_bytes(&blob_path(&recording.blob)).await {
        Ok(sealed) => Ok(vec![Upload {
            name: "the upload the server sent".into(),
            sealed: Ok(sealed),
        }]),
        Err(Error::Refused {
            code: attune_core::sync::api::ErrorCode::NotFound,
            ..
        }) => Err("the server holds no complete upload of it".into()),
        Err(error) => Err(format!("it could not be fetched: {error}")),
    }
}

/// The zip as a `Blob` in the page, behind an object URL the link saves.
fn object_url(zipped: &[u8]) -> Result<String, Error> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(zipped));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/zip");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|_| Error::Export("the browser could not hold the zip".into()))?;
    web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| Error::Export("the browser could not offer the zip".into()))
}
