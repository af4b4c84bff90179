//! The interview: the group's topic guide as a question list with probes, notes per question
//! (timestamped, flagged), free notes, elapsed time, and audio when consent allows.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use attune_core::fieldwork::{AttachmentBody, InterviewNoteBody, NoteFlag};
use attune_core::protocol::InterviewGuide;
use attune_core::{BlobId, Kind, Links, ParticipantId, RecordId, Revision, VisitId};
use leptos::prelude::*;

use super::data::{self, Participant};
use crate::components::autosave_text::AutosavedText;
use crate::components::recorder::{Playback, Recorder, RecorderHandle, RecordingSummary};
use crate::records::Chain;
use crate::session::{now, use_sessions};

/// The interview of one participant in a visit.
#[component]
pub fn InterviewPage() -> impl IntoView {
    let sessions = use_sessions();
    let ids = data::visit_and_participant_param();
    let loaded = LocalResource::new(move || {
        let ids = ids();
        async move {
            let session = sessions.current().ok_or("Locked")?;
            let (visit, participant) = ids.ok_or("This address is not valid.")?;
            let (who, contents) = data::participant_in_visit(&session, visit, participant).await?;
            if !who.is_active() {
                return Err(format!(
                    "{} has withdrawn: no new interview notes.",
                    who.body.code
                ));
            }
            // Read against the form the consent was given on, not the current protocol. A typed
            // address gets the same gate, in the same words, as the visit hub.
            let consent = contents.consent_of(participant).map(|(_, body)| body);
            if let Some(words) = data::participation_words(&who, &data::participation(consent)) {
                return Err(words);
            }
            let outcome = consent.map(data::consent_allows).transpose()?;
            let quotes_not_agreed =
                data::quotes_not_agreed(&data::latest_consents(&session).await?, participant);
            let notes: Vec<(Revision, InterviewNoteBody)> = contents
                .notes
                .into_iter()
                .filter(|(r, _)| r.participant == Some(participant))
                .collect();
            let recordings = contents
                .attachments
                .iter()
                .filter(|r| r.participant == Some(participant))
                .filter_map(|r| crate::records::body::<AttachmentBody>(r).ok())
                .map(|a| (a.blob, a.media_type))
                .collect::<Vec<_>>();
            Ok((
                visit,
                who,
                notes,
                recordings,
                outcome.is_some_and(|o| o.audio_allowed),
                quotes_not_agreed,
            ))
        }
    });
    view! {
        <Suspense fallback=|| view! { <p>"Opening the interview..."</p> }>
            {move || loaded.get().map(|r| match r {
                Err(message) => view! { <p class="notice error" role="alert" data-testid="interview-blocked">{message}</p> }.into_any(),
                Ok((visit, who, notes, recordings, audio_allowed, quotes_not_agreed)) => view! {
                    <Interview visit=visit participant=who notes=notes recordings=recordings audio_allowed=audio_allowed
                        quotes_not_agreed=quotes_not_agreed />
                }.into_any(),
            })}
        </Suspense>
    }
}

/// One note being written: its record chain and its current body.
#[derive(Clone)]
struct NoteState {
    chain: Chain,
    body: Rc<RefCell<InterviewNoteBody>>,
}

impl NoteState {
    async fn save(
        &self,
        sessions: crate::session::Sessions,
        recorder: RecorderHandle,
    ) -> Result<attune_core::Timestamp, String> {
        let body = {
            let mut b = self.body.borrow_mut();
            b.updated = now();
            // The moment in the recording this note was started, to line notes up with audio.
            if b.started_at_ms.is_none() && recorder.recording().is_some() {
                b.started_at_ms = Some(recorder.elapsed_ms());
            }
            b.clone()
        };
        self.chain.save(sessions, &body).await
    }
}

#[component]
fn Interview(
    visit: VisitId,
    participant: Participant,
    notes: Vec<(Revision, InterviewNoteBody)>,
    recordings: Vec<(BlobId, String)>,
    audio_allowed: bool,
    quotes_not_agreed: bool,
) -> impl IntoView {
    let sessions = use_sessions();
    // An interview already started keeps the protocol version its notes were made under; a
    // new one uses the protocol in use now. Either way, fixed while the screen is open.
    let protocol = notes
        .iter()
        .find_map(|(head, _)| head.protocol.as_ref())
        .map_or_else(crate::protocol::current, crate::protocol::by_reference);
    let Some(guide) = protocol.guide_for(&participant.body.group) else {
        return view! { <p class="notice">"This group has no interview guide in the study protocol."</p> }.into_any();
    };
    let recorder = RecorderHandle::new();
    let recordings = RwSignal::new(recordings);
    let audio = audio_allowed.then(|| audio_panel(visit, participant.id, recorder, recordings));
    let started = now();
    let elapsed = RwSignal::new(0i64);
    if let Ok(handle) = set_interval_with_handle(
        move || {
            elapsed.try_set((now().0 - started.0) / 1000);
        },
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    let current = RwSignal::new(
        guide
            .sections
            .first()
            .and_then(|s| s.questions.first())
            .map(|q| q.id.clone()),
    );
    // One note per question (None: free notes), kept across switches so each save follows
    // the previous one.
    let participant_id = participant.id;
    let code = StoredValue::new(participant.body.code.clone());
    let states: Rc<RefCell<HashMap<Option<String>, NoteState>>> = Rc::new(RefCell::new(
        notes
            .into_iter()
            .map(|(head, body)| {
                let key = body.question_id.clone();
                let chain = Chain::new(
                    head.record_id,
                    Kind::InterviewNote,
                    head.links(),
                    Some(head),
                );
                (
                    key,
                    NoteState {
                        chain,
                        body: Rc::new(RefCell::new(body)),
                    },
                )
            })
            .collect(),
    ));
    let has_notes = RwSignal::new(
        states
            .borrow()
            .iter()
            .filter(|(_, s)| !s.body.borrow().text.trim().is_empty())
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>(),
    );
    let state_for = {
        let states = states.clone();
        let guide_id = guide.id.clone();
        move |question: Option<String>| -> NoteState {
            states
                .borrow_mut()
                .entry(question.clone())
                .or_insert_with(|| {
                    let links = Links {
                        participant: Some(participant_id),
                        visit: Some(visit),
                        protocol: Some(protocol.reference()),
                    };
                    NoteState {
                        chain: Chain::new(RecordId::new(now()), Kind::InterviewNote, links, None),
                        body: Rc::new(RefCell::new(InterviewNoteBody {
                            guide_id: guide_id.clone(),
                            question_id: question,
                            text: String::new(),
                            flags: Vec::new(),
                            started_at_ms: None,
                            updated: now(),
                        })),
                    }
                })
                .clone()
        }
    };
    let state_for = StoredValue::new_local(state_for);
    let question_list = question_list(guide, current, has_notes);
    let editor = move || {
        let question = current.get();
        let state = state_for.with_value(|f| f(question.clone()));
        let text = guide
            .sections
            .iter()
            .flat_map(|s| &s.questions)
            .find(|q| Some(&q.id) == question.as_ref());
        let (title, probes) = match text {
            Some(q) => (q.text.clone(), q.probes.clone()),
            None => ("Free notes".to_string(), vec![]),
        };
        let initial = state.body.borrow().text.clone();
        let flags = RwSignal::new(state.body.borrow().flags.clone());
        let save = {
            let state = state.clone();
            let question = question.clone();
            move |text: String| {
                let state = state.clone();
                let question = question.clone();
                async move {
                    let empty = text.trim().is_empty();
                    state.body.borrow_mut().text = text;
                    let at = state.save(sessions, recorder).await?;
                    has_notes.try_update(|v| {
                        v.retain(|q| *q != question);
                        if !empty {
                            v.push(question);
                        }
                    });
                    Ok(at)
                }
            }
        };
        // A flag that did not save says so: the button shows what the fieldworker tapped,
        // and the note must not look flagged on the tablet when its record is not.
        let flag_error = RwSignal::new(None::<String>);
        let toggle = move |flag: NoteFlag| {
            let state = state.clone();
            move |_| {
                let on = !flags.get_untracked().contains(&flag);
                state.body.borrow_mut().flags.retain(|f| *f != flag);
                if on {
                    state.body.borrow_mut().flags.push(flag);
                }
                flags.set(state.body.borrow().flags.clone());
                let state = state.clone();
                leptos::task::spawn_local(async move {
                    match state.save(sessions, recorder).await {
                        Ok(_) => flag_error.set(None),
                        Err(error) => flag_error.set(Some(format!(
                            "The flag was not saved on this tablet: {error}. Tap it again."
                        ))),
                    }
                });
            }
        };
        view! {
            <div class="question">
                <h2>{title.clone()}</h2>
                {(!probes.is_empty()).then(|| view! {
                    <ul class="probes">{probes.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
                })}
                <AutosavedText label="Notes".to_string() initial=initial save=save rows=10 placeholder="What they said. Saved as you type." />
                <div class="flags" role="group" aria-label="Flags">
                    {NoteFlag::ALL.into_iter().map(|flag| (flag, flag.label())).map(|(flag, label)| view! {
                        <button type="button" class="button flag" class:on=move || flags.get().contains(&flag)
                            class:danger=flag == NoteFlag::Safeguarding
                            aria-pressed=move || flags.get().contains(&flag).to_string()
                            on:click=toggle(flag)>{label}</button>
                    }).collect_view()}
                </div>
                {move || flag_error.get().map(|message| view! {
                    <p class="notice error" role="alert" data-testid="flag-error">{message}</p>
                })}
                {move || (quotes_not_agreed && flags.get().contains(&NoteFlag::Quote)).then(|| view! {
                    <p class="notice gate" data-testid="quote-not-agreed">{format!(
                        "Not agreed for quotes: {} did not agree to direct quotes. The flag is kept, and exports mark this note; do not quote it.",
                        code.get_value()
                    )}</p>
                })}
            </div>
        }
    };
    view! {
        <section class="panel interview" aria-labelledby="interview-heading">
            <div class="interview-head">
                <h1 id="interview-heading">{format!("Interview: {}", participant.label())}</h1>
                <span class="elapsed" aria-label="Time since the interview started">
                    {move || format!("Interview {:02}:{:02}", elapsed.get() / 60, elapsed.get() % 60)}
                </span>
            </div>
            {audio}
            <div class="interview-body">
                <nav class="question-list" aria-label="Questions">{question_list}</nav>
                <div class="question-pane">{editor}</div>
            </div>
        </section>
        <div class="actions"><a class="button primary" href=format!("/visits/{visit}")>"Back to visit"</a></div>
    }.into_any()
}

fn question_list(
    guide: &'static InterviewGuide,
    current: RwSignal<Option<String>>,
    has_notes: RwSignal<Vec<Option<String>>>,
) -> impl IntoView {
    let item = move |id: Option<String>, text: String| {
        let (a, b, c) = (id.clone(), id.clone(), id);
        view! {
            <li>
                <button type="button" class="question-link" class:current=move || current.get() == a
                    aria-current=move || (current.get() == b).then_some("true")
                    on:click=move |_| current.set(c.clone())>
                    <span>{text}</span>
                    {
                        let id = b.clone();
                        move || has_notes.get().contains(&id).then(|| view! { <span class="has-notes" aria-label="has notes">"\u{25cf}"</span> })
                    }
                </button>
            </li>
        }
    };
    view! {
        {guide.sections.iter().map(|section| view! {
            <h3>{section.title.clone()}</h3>
            <ul>{section.questions.iter().map(|q| item(Some(q.id.clone()), q.text.clone())).collect_view()}</ul>
        }).collect_view()}
        <ul>{item(None, "Free notes".to_string())}</ul>
    }
}

/// The SHA-256 (lower-case hex) and size of a blob's content: its first `chunks` chunks
/// opened and hashed in order.
async fn content_digest(
    session: &crate::session::Session,
    blob: BlobId,
    chunks: u32,
) -> Result<(String, u64), String> {
    use attune_core::BlobStore as _;
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0;
    for index in 0..chunks {
        let sealed = session
            .store
            .chunk(blob, index)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("a chunk of the recording is missing")?;
        let plain = session
            .vault
            .open_chunk(blob, index, &sealed)
            .map_err(|e| e.to_string())?;
        hasher.update(&plain);
        bytes += plain.len() as u64;
    }
    let sha256 = attune_core::hex::encode(&hasher.finalize());
    Ok((sha256, bytes))
}

/// Completes recordings that were cut off before they could be finished: the tab was closed
/// or crashed mid-recording, or the tablet locked itself (locking stops the recorder, and the
/// final revision cannot be saved while locked). Their attachment record still says "not
/// finished" (no SHA-256), so sync would never upload the audio that was saved. Only records
/// made before `before` (the unlock) are touched: nothing can be recording them in this tab.
/// Returns how many recordings were completed.
pub async fn finish_interrupted_recordings(
    session: &crate::session::Session,
    before: attune_core::Timestamp,
) -> Result<usize, String> {
    use attune_core::BlobStore as _;
    let mut finished = 0;
    for head in crate::records::latest_of_kind(session, Kind::Attachment).await? {
        if head.time >= before {
            continue;
        }
        let Ok(mut body) = crate::records::body::<AttachmentBody>(&head) else {
            continue;
        };
        if body.sha256.is_some() || !body.media_type.starts_with("audio/") {
            continue;
        }
        let chunks = session
            .store
            .chunk_count(body.blob)
            .await
            .map_err(|e| crate::records::explain(&e))?;
        let (sha256, bytes) = content_digest(session, body.blob, chunks).await?;
        body.chunks = chunks;
        body.bytes = bytes;
        body.duration_ms =
            Some(u64::from(chunks) * u64::from(attune_core::recording::TIMESLICE_MS));
        body.sha256 = Some(sha256);
        crate::records::save_json(
            session,
            head.record_id,
            Kind::Attachment,
            head.links(),
            Some(&head),
            &body,
        )
        .await?;
        finished += 1;
    }
    Ok(finished)
}

/// The recorder bar (audio consent given) and the recordings made so far, playable here.
/// Each recording is an attachment record, created when it starts (so a crash still leaves a
/// record pointing at the chunks already saved) and completed when it stops.
fn audio_panel(
    visit: VisitId,
    participant: ParticipantId,
    recorder: RecorderHandle,
    recordings: RwSignal<Vec<(BlobId, String)>>,
) -> impl IntoView {
    let sessions = use_sessions();
    let session = sessions.current()?;
    let attachment = StoredValue::new_local(None::<(Chain, AttachmentBody)>);
    // A recording's record that did not save says so (the audio itself is in its chunks).
    let save_error = RwSignal::new(None::<String>);
    let links = Links {
        participant: Some(participant),
        visit: Some(visit),
        protocol: Some(crate::protocol::current().reference()),
    };
    let on_started = move |(blob, media_type): (BlobId, String)| {
        let chain = Chain::new(RecordId::new(now()), Kind::Attachment, links.clone(), None);
        let body = AttachmentBody {
            blob,
            media_type,
            bytes: 0,
            duration_ms: None,
            chunks: 0,
            sha256: None,
        };
        attachment.set_value(Some((chain.clone(), body.clone())));
        leptos::task::spawn_local(async move {
            match chain.save(sessions, &body).await {
                Ok(_) => save_error.set(None),
                // The chain creates the record at the next save instead (when it stops).
                Err(error) => save_error.set(Some(format!(
                    "The recording goes on, but its record was not saved yet: {error}. It is \
                     saved again when you stop."
                ))),
            }
        });
    };
    let on_stopped = move |summary: RecordingSummary| {
        let Some((chain, mut body)) = attachment.get_value() else {
            return;
        };
        body.bytes = summary.bytes_saved;
        body.duration_ms = Some(summary.saved_ms);
        body.chunks = summary.chunks_saved;
        let entry = (body.blob, body.media_type.clone());
        leptos::task::spawn_local(async move {
            // The content's SHA-256 makes the recording ready to sync: the engine uploads
            // the blob (checked against it) before this revision.
            if let Some(session) = sessions.current() {
                body.sha256 = content_digest(&session, body.blob, body.chunks)
                    .await
                    .ok()
                    .map(|(sha256, _)| sha256);
            }
            // One retry: a write can fail for a moment (the store reopening, a busy disk).
            let mut saved = chain.save(sessions, &body).await;
            if saved.is_err() {
                gloo_timers::future::TimeoutFuture::new(1_000).await;
                saved = chain.save(sessions, &body).await;
            }
            match saved {
                Ok(_) => save_error.set(None),
                Err(error) => save_error.set(Some(format!(
                    "The end of the recording was not saved: {error}. The audio is kept on \
                     this tablet and the recording is finished the next time you unlock."
                ))),
            }
        });
        recordings.update(|r| r.push(entry));
    };
    // A recording is activity: the tablet must not lock itself in the middle of an interview.
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if recorder.recording().is_some() {
                sessions.activity();
            }
        },
        std::time::Duration::from_secs(20),
    ) {
        on_cleanup(move || handle.clear());
    }
    let playback_session = send_wrapper::SendWrapper::new(session.clone());
    Some(view! {
        <div class="audio" data-testid="audio-allowed">
            <Recorder session=session handle=recorder on_started=on_started on_stopped=on_stopped />
            {move || save_error.get().map(|message| view! {
                <p class="notice error" role="alert" data-testid="recording-save-error">{message}</p>
            })}
            {move || {
                let list = recordings.get();
                (!list.is_empty()).then(|| view! {
                    <div class="recordings">
                        <h2>"Recordings"</h2>
                        {list.into_iter().map(|(blob, media)| view! {
                            <Playback session=(*playback_session).clone() blob_id=blob media_type=media />
                        }).collect_view()}
                    </div>
                })
            }}
        </div>
    })
}
