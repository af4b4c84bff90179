//! The audio recorder for interviews: encrypted and crash-safe.
//!
//! - [`AudioRecording`] (`capture.rs`): microphone -> MediaRecorder (Opus in WebM, or MP4 on
//!   Safari, 32 kbps) -> a chunk every 2 s -> sealed with the vault -> written to the blob
//!   store in order, one write at a time. A crash loses at most the audio not yet handed over
//!   (up to 2 s) and the chunks not yet written (normally the one in flight).
//! - [`Recorder`]: the buttons, the time, the level meter and what is saved; [`RecorderHandle`]
//!   lets the screen around it read the recording offset for note timestamps.
//! - [`Playback`], [`recording_url`], [`recording_duration_ms`] (`playback.rs`): the chunks
//!   opened and joined for the browser's player.
//!
//! The decisions are `attune_core::recording`, tested natively.
//!
//! ```ignore
//! let recorder = RecorderHandle::new();
//! view! {
//!     <Recorder session=session.clone() handle=recorder
//!         on_started=move |blob_id, media_type: String| { /* create the attachment record */ }
//!         on_stopped=move |summary: RecordingSummary| { /* update it */ } />
//!     // A note taken now: recorder.elapsed_ms() is its offset in the recording.
//! }
//! ```

mod capture;
mod playback;

use std::rc::Rc;

use attune_core::BlobId;
use attune_core::recording::format_clock;
use leptos::callback::UnsyncCallback;
use leptos::prelude::*;

pub use capture::{
    AudioRecording, RecorderSignals, RecorderState, RecordingSummary, Started, explain_media_error,
};
pub use playback::{
    Playback, decoded_duration_ms, media_duration_ms, recording_blob, recording_duration_ms,
    recording_url,
};

use crate::session::Session;

/// The recorder of a [`Recorder`] component, for the screen around it: create it there,
/// pass it as `handle`, and read the recording offset when a note is taken.
#[derive(Clone, Copy, Debug)]
pub struct RecorderHandle {
    signals: RecorderSignals,
    current: StoredValue<Option<AudioRecording>, LocalStorage>,
}

impl Default for RecorderHandle {
    fn default() -> Self {
        RecorderHandle::new()
    }
}

impl RecorderHandle {
    /// A handle with no recording yet (belongs to the current reactive owner).
    pub fn new() -> RecorderHandle {
        RecorderHandle {
            signals: RecorderSignals::new(),
            current: StoredValue::new_local(None),
        }
    }

    /// The recorder's state, elapsed time, level and saved amount, as signals.
    pub fn signals(&self) -> RecorderSignals {
        self.signals
    }

    /// The current (or last) recording.
    pub fn recording(&self) -> Option<AudioRecording> {
        self.current.try_get_value().flatten()
    }

    /// The exact offset into the current recording now, in milliseconds without pauses
    /// (0 before the first recording; the final length after it stopped).
    pub fn elapsed_ms(&self) -> u64 {
        self.recording().map_or(0, |r| r.elapsed_ms())
    }

    /// The current recording's blob, once started.
    pub fn blob_id(&self) -> Option<BlobId> {
        self.recording().and_then(|r| r.blob_id())
    }

    /// Stops the current recording, if any (the last chunk is still written).
    pub fn stop(&self) {
        if let Some(recording) = self.recording() {
            recording.request_stop();
        }
    }

    fn record(
        &self,
        session: Rc<Session>,
        on_started: Option<UnsyncCallback<(BlobId, String)>>,
        on_stopped: Option<UnsyncCallback<RecordingSummary>>,
    ) {
        let recording = AudioRecording::with_signals(session, self.signals);
        if let Some(callback) = on_started {
            recording.on_started(move |blob_id, media_type| {
                callback.try_run((blob_id, media_type.to_owned()));
            });
        }
        if let Some(callback) = on_stopped {
            recording.on_stopped(move |summary| {
                callback.try_run(summary.clone());
            });
        }
        // Only called when the previous recording has ended, so replacing it loses nothing.
        self.current.set_value(Some(recording.clone()));
        wasm_bindgen_futures::spawn_local(async move {
            // A failure is shown through the signals.
            let _ = recording.start().await;
        });
    }
}

/// Whole seconds, rounded down.
fn seconds(millis: u64) -> u64 {
    millis / 1000
}

/// Record, pause, resume and stop an interview recording, with the time, a level meter and
/// how much is saved on the tablet. Stops (and saves the last seconds) when it is removed.
#[component]
pub fn Recorder(
    /// The open session: the recording is sealed with its vault into its store.
    session: Rc<Session>,
    /// To read the recording offset from outside; one is made if not given.
    #[prop(optional)]
    handle: Option<RecorderHandle>,
    /// A recording has started: `(blob id, media type)`. Offset 0 is now.
    #[prop(optional, into)]
    on_started: Option<UnsyncCallback<(BlobId, String)>>,
    /// A recording has ended and its chunks are written.
    #[prop(optional, into)]
    on_stopped: Option<UnsyncCallback<RecordingSummary>>,
) -> impl IntoView {
    let handle = handle.unwrap_or_default();
    let signals = handle.signals();
    let session = StoredValue::new_local(session);
    let state = signals.state();
    let busy = signals.busy();

    let record = move |_| {
        if busy.get_untracked() || state.get_untracked().is_active() {
            return;
        }
        handle.record(session.get_value(), on_started, on_stopped);
    };
    let pause = move |_| {
        if let Some(recording) = handle.recording() {
            let _ = recording.pause();
        }
    };
    let resume = move |_| {
        if let Some(recording) = handle.recording() {
            let _ = recording.resume();
        }
    };
    let stop = move |_| handle.stop();
    on_cleanup(move || handle.stop());

    let percent = move || (signals.level().get() * 100.0).round() as u32;
    let status_text = move || match state.get() {
        RecorderState::Recording => "Recording",
        RecorderState::Paused => "Paused",
        RecorderState::Stopped => "Stopped",
        RecorderState::Idle | RecorderState::Failed(_) => "",
    };
    let failure = move || match state.get() {
        RecorderState::Failed(message) => Some(message),
        _ => None,
    };
    let controls = move || {
        match state.get() {
        RecorderState::Recording => view! {
            <button type="button" class="button recorder-button" on:click=pause disabled=busy>"Pause"</button>
            <button type="button" class="button primary recorder-button" on:click=stop disabled=busy>"Stop"</button>
        }
        .into_any(),
        RecorderState::Paused => view! {
            <button type="button" class="button recorder-button" on:click=resume disabled=busy>"Resume"</button>
            <button type="button" class="button primary recorder-button" on:click=stop disabled=busy>"Stop"</button>
        }
        .into_any(),
        _ => view! {
            <button type="button" class="button primary recorder-button" on:click=record disabled=busy>"Record"</button>
        }
        .into_any(),
    }
    };

    view! {
        <section class="recorder" aria-label="Audio recording" data-testid="recorder"
            data-state=move || format!("{:?}", state.get())>
            <div class="recorder-controls">{controls}</div>
            <p class="recorder-time">
                <span class="recorder-clock" data-testid="recorder-elapsed" aria-label="Recorded time">
                    {move || format_clock(signals.elapsed_ms().get())}
                </span>
                <span class="recorder-status" class:live=move || state.get() == RecorderState::Recording>
                    {status_text}
                </span>
            </p>
            <div class="recorder-meter" role="meter" aria-label="Microphone level"
                aria-valuemin="0" aria-valuemax="100" aria-valuenow=percent>
                <div class="recorder-meter-fill" style:width=move || format!("{}%", percent())></div>
            </div>
            <p class="recorder-saved" role="status" aria-live="polite" data-testid="recorder-saved"
                data-chunks=move || signals.chunks_saved().get().to_string()>
                {move || format!("Saved on this tablet: {} s", seconds(signals.saved_ms().get()))}
            </p>
            {move || signals.warning().get().map(|warning| view! {
                <p class="notice warn" role="status">{warning}</p>
            })}
            {move || failure().map(|message| view! {
                <p class="notice error" role="alert">{message}</p>
            })}
        </section>
    }
}
