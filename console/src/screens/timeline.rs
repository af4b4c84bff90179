//! One participant's timeline: consent as given (form wording, answers, signature), each
//! visit with its recording, the interview notes under their questions (a note plays the
//! recording from its time), the child's activities as the child saw them, and each record's
//! history (device, fieldworker, time, verified).

use std::rc::Rc;

use attune_core::consent::form_given_on;
use attune_core::fieldwork::{
    ActivityResponseBody, AssentAnswer, AssentBody, AttachmentBody, ConsentBody, ConsentSignature,
    InterviewNoteBody, ParticipantBody, ReflectionBody, VisitBody,
};
use attune_core::review::blob_path;
use attune_core::{Kind, StudyPrivateKey, open_attachment};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::api;
use crate::app::{Console, Page, Unlocked};
use crate::error::Error;
use crate::study::{Record, Study, clock, when};

/// The timeline screen.
#[component]
pub fn Timeline(unlocked: Unlocked, participant: String) -> impl IntoView {
    let console = expect_context::<Console>();
    let study = unlocked.study.clone();
    let items = study.timeline(&participant);
    let own = items
        .iter()
        .find(|r| r.kind() == Kind::Participant)
        .and_then(|r| r.body::<ParticipantBody>());
    let title = own
        .as_ref()
        .map_or("Participant".to_owned(), |p| p.code.clone());
    let group = own
        .as_ref()
        .and_then(|p| study.protocol().group(&p.group))
        .map(|g| g.name.clone())
        .unwrap_or_default();
    let visits: Vec<&Record> = items
        .iter()
        .copied()
        .filter(|r| r.kind() == Kind::Visit)
        .collect();
    let in_a_visit = |r: &Record| {
        r.latest
            .revision
            .visit
            .is_some_and(|v| visits.iter().any(|visit| visit.id() == v.to_string()))
    };
    let loose: Vec<Record> = items
        .iter()
        .filter(|r| r.kind() != Kind::Visit && r.kind() != Kind::Participant && !in_a_visit(r))
        .map(|r| (*r).clone())
        .collect();
    let visit_views = visits
        .iter()
        .map(|visit| {
            view! {
                <VisitSection
                    study=study.clone()
                    key=unlocked.key.clone()
                    visit=(*visit).clone()
                    participant=participant.clone()
                />
            }
        })
        .collect_view();
    let loose_views = loose
        .into_iter()
        .map(|r| view! { <RecordCard study=study.clone() record=r audio=None /> })
        .collect_view();
    view! {
        <section>
            <button class="link" on:click=move |_| console.go(Page::Participants)>"← All participants"</button>
            <h1 data-testid="participant-code">{title}</h1>
            <p class="muted">{group}</p>
            {loose_views}
            {visit_views}
        </section>
    }
}

/// A visit: its date and place, its recording, and what was recorded in it about this
/// participant.
#[component]
fn VisitSection(
    study: Rc<Study>,
    key: Rc<StudyPrivateKey>,
    visit: Record,
    participant: String,
) -> impl IntoView {
    let body = visit.body::<VisitBody>();
    let place = body
        .as_ref()
        .and_then(|v| study.protocol().place_type(&v.place_type))
        .map(|p| p.label.clone())
        .unwrap_or_default();
    let date = body.as_ref().map(|v| v.date.date_utc()).unwrap_or_default();
    let visit_id = visit.id();
    let audio = NodeRef::<leptos::html::Audio>::new();
    let recording = study
        .recording(&participant, &visit_id)
        .map(|(_, body)| body);
    let mut records: Vec<Record> = study
        .timeline(&participant)
        .into_iter()
        .filter(|r| r.kind() != Kind::Visit)
        .filter(|r| {
            r.latest
                .revision
                .visit
                .is_some_and(|v| v.to_string() == visit_id)
        })
        .cloned()
        .collect();
    // Consent first, then the interview in recording order, then the rest as it happened.
    records.sort_by_key(|r| {
        let started = r.body::<InterviewNoteBody>().and_then(|n| n.started_at_ms);
        let first = r.history.first().map_or(r.time(), |h| h.revision.time);
        (r.kind() != Kind::Consent, started.is_none(), started, first)
    });
    let has_recording = recording.is_some();
    let cards = records
        .into_iter()
        .filter(|r| r.kind() != Kind::Attachment)
        .map(|r| {
            view! { <RecordCard study=study.clone() record=r audio=has_recording.then_some(audio) /> }
        })
        .collect_view();
    view! {
        <article class="visit">
            <h2>{format!("Visit, {date}")}<span class="muted">{format!(" · {place}")}</span></h2>
            {recording.map(|body| view! { <Recording key=key.clone() body=body audio=audio /> })}
            <History record=visit.clone() />
            {cards}
        </article>
    }
}

/// Fetches the sealed recording, opens it in the page and plays it.
#[component]
fn Recording(
    key: Rc<StudyPrivateKey>,
    body: AttachmentBody,
    audio: NodeRef<leptos::html::Audio>,
) -> impl IntoView {
    let url = RwSignal::new(None::<String>);
    let problem = RwSignal::new(None::<Error>);
    let duration = body.duration_ms.map(clock).unwrap_or_default();
    leptos::task::spawn_local(async move {
        match open_recording(&key, &body).await {
            Ok(object_url) => url.set(Some(object_url)),
            Err(error) => problem.set(Some(error)),
        }
    });
    on_cleanup(move || {
        if let Some(object_url) = url.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&object_url);
        }
    });
    view! {
        <div class="recording">
            <p><strong>"Interview recording"</strong>{format!(" {duration}")}</p>
            <audio controls node_ref=audio data-testid="recording" src=move || url.get() />
            {move || url.with(Option::is_none).then(|| {
                match problem.get() {
                    Some(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                    None => view! { <p class="muted">"Opening the recording…"</p> }.into_any(),
                }
            })}
        </div>
    }
}

async fn open_recording(key: &StudyPrivateKey, body: &AttachmentBody) -> Result<String, Error> {
    let sealed = api::get_bytes(&blob_path(&body.blob)).await?;
    let (blob, plain) =
        open_attachment(&sealed, key).map_err(|e| Error::Recording(e.to_string()))?;
    if blob != body.blob {
        return Err(Error::Recording("the server sent another recording".into()));
    }
    if let Some(expected) = &body.sha256
        && attune_core::attachment::sha256_hex(&plain) != *expected
    {
        return Err(Error::Recording(
            "it does not match what the tablet recorded".into(),
        ));
    }
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(plain.as_slice()));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(&body.media_type);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|_| Error::Recording("the browser could not hold it".into()))?;
    web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| Error::Recording("the browser could not play it".into()))
}

/// One record, as its kind is shown.
#[component]
fn RecordCard(
    study: Rc<Study>,
    record: Record,
    audio: Option<NodeRef<leptos::html::Audio>>,
) -> impl IntoView {
    let content = match record.kind() {
        Kind::InterviewNote => record
            .body::<InterviewNoteBody>()
            .map(|note| note_view(&study, &record, note, audio)),
        Kind::Consent => record
            .body::<ConsentBody>()
            .map(|c| consent_view(&study, c)),
        Kind::ActivityResponse => record
            .body::<ActivityResponseBody>()
            .map(|r| activity_view(&study, &record, r)),
        Kind::Assent => record.body::<AssentBody>().map(|a| {
            let answer = match a.answer {
                AssentAnswer::Yes => "Yes",
                AssentAnswer::NotSure => "Not sure",
                AssentAnswer::No => "No",
            };
            let when = if a.activity.is_some() {
                "Asked again before an activity"
            } else {
                "Asked at the start"
            };
            view! { <h3>{format!("Assent: {answer}")}</h3><p class="muted">{when}</p> }.into_any()
        }),
        Kind::Reflection => record
            .body::<ReflectionBody>()
            .map(|r| view! { <h3>"Reflection"</h3><p class="note-text">{r.text}</p> }.into_any()),
        _ => None,
    };
    let content = content.unwrap_or_else(|| {
        view! { <h3>{record.kind().as_str().replace('_', " ")}</h3> }.into_any()
    });
    // Two tablets changed it apart and the team chose what it reads as: say so.
    let resolved = record.resolved.as_ref().map(|resolved| {
        view! {
            <p class="resolved" data-testid="resolved-in-console">
                <span class="badge resolved-badge">"Resolved in the console"</span>
                {format!("by {} on {}", resolved.by.body.by, when(resolved.by.body.at))}
            </p>
        }
    });
    view! {
        <div class="card record" data-kind=record.kind().as_str()>
            {resolved}
            {content}
            <History record=record.clone() />
        </div>
    }
}

fn note_view(
    study: &Study,
    record: &Record,
    note: InterviewNoteBody,
    audio: Option<NodeRef<leptos::html::Audio>>,
) -> AnyView {
    let question = study
        .question_text(record, &note)
        .unwrap_or_else(|| "Free note".into());
    let flags = note
        .flags
        .iter()
        .map(|f| {
            let class = if f.code() == "safeguarding" {
                "badge danger"
            } else {
                "badge"
            };
            view! { <span class=class>{f.label()}</span> }
        })
        .collect_view();
    let play = note.started_at_ms.zip(audio).map(|(ms, audio)| {
        let jump = move |_| {
            if let Some(element) = audio.get_untracked() {
                let element: web_sys::HtmlMediaElement = element.unchecked_into();
                element.set_current_time(ms as f64 / 1000.0);
                let _ = element.play();
            }
        };
        view! {
            <button class="secondary" data-testid="play-from" on:click=jump>
                {format!("▶ Play from {}", clock(ms))}
            </button>
        }
    });
    view! {
        <h3 class="question">{question}</h3>
        <p class="note-text" data-testid="note-text">{note.text}</p>
        <div class="flags">{flags}{play}</div>
    }
    .into_any()
}

fn consent_view(study: &Study, consent: ConsentBody) -> AnyView {
    let form = form_given_on(&consent, study.protocols.iter()).cloned();
    let title = form
        .as_ref()
        .map_or(consent.form_id.clone(), |f| f.title.clone());
    let answers = consent
        .answers
        .0
        .iter()
        .map(|(item, yes)| {
            let text = form
                .as_ref()
                .and_then(|f| f.item(item))
                .map_or(item.clone(), |i| i.text.clone());
            view! { <li><span class=if *yes { "yes" } else { "no" }>{if *yes { "Yes" } else { "No" }}</span>" "{text}</li> }
        })
        .collect_view();
    let signature = match &consent.signature {
        ConsentSignature::Drawn { png_base64 } => view! {
            <img class="signature" alt="The participant's signature" src=format!("data:image/png;base64,{png_base64}") />
        }
        .into_any(),
        ConsentSignature::VerbalWitnessed { reason } => {
            view! { <p>{format!("Verbal consent, witnessed: {reason}")}</p> }.into_any()
        }
    };
    view! {
        <h3>{format!("Consent: {title}")}</h3>
        <p class="muted">{format!("Form version {}", consent.form_version)}</p>
        <ul class="plain answers">{answers}</ul>
        {signature}
    }
    .into_any()
}

fn activity_view(study: &Study, record: &Record, response: ActivityResponseBody) -> AnyView {
    let protocol = study.protocol_of(record);
    let activity = protocol.activity(&response.activity_id);
    let title = activity.map_or(response.activity_id.clone(), |a| a.title.clone());
    let prompt = activity
        .and_then(|a| a.prompt(&response.prompt_id))
        .map(|p| p.text.clone())
        .unwrap_or_default();
    let drawing = response
        .answer
        .pointer("/png")
        .and_then(|png| png.as_str())
        .map(|png| {
            view! {
                <img class="drawing" data-testid="drawing" alt="The child's drawing"
                    src=format!("data:image/png;base64,{png}") />
            }
        });
    let words = (drawing.is_none() && response.answered())
        .then(|| response.answer_words(activity))
        .filter(|w| !w.is_empty());
    let pictures = super::activity::pictures(activity, &response);
    view! {
        <h3>{title}</h3>
        <p class="question">{prompt}</p>
        {drawing}
        {pictures}
        {words.map(|w| view! { <p class="note-text">{w}</p> })}
        <p class="muted">{response.status().label()}</p>
    }
    .into_any()
}

/// A record's revisions: who made each, on which device, when, and whether it verified.
#[component]
fn History(record: Record) -> impl IntoView {
    let verified = record.verified;
    let rows = record
        .history
        .iter()
        .map(|h| {
            view! {
                <li>{format!(
                    "rev {} · {} · {} · device {}",
                    h.revision.rev,
                    when(h.revision.time),
                    h.fieldworker,
                    h.device
                )}</li>
            }
        })
        .collect_view();
    view! {
        <details class="history">
            <summary>
                {match record.history.len() {
                    1 => "History (1 revision)".to_owned(),
                    n => format!("History ({n} revisions)"),
                }}
                {if verified { " · verified" } else { " · a later revision did not verify" }}
            </summary>
            <ul class="plain">{rows}</ul>
        </details>
    }
}
