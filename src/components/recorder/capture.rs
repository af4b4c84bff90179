//! [`AudioRecording`]: the microphone, MediaRecorder and the encrypted chunk writes.
//!
//! The decisions (format order, chunk order and retries, elapsed time across pauses, meter
//! scale) are `attune_core::recording`; this module does the browser I/O around them.
//!
//! # Lifetime
//!
//! A started recording keeps itself alive (its MediaRecorder handlers hold it) until it has
//! stopped and every chunk handed over is stored, so `stop()` completes even if the screen
//! that asked for it is gone. Dropping every [`AudioRecording`] clone of a recording that is
//! still running, without [`AudioRecording::stop`], is treated like a crash: the microphone is
//! released at once, the chunks already handed over are still written, and the audio the
//! browser had not yet handed over (at most one timeslice) is lost.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use attune_core::recording::{
    self, ChunkQueue, METER_INTERVAL_MS, QueueAction, Stopwatch, TIMESLICE_MS,
};
use attune_core::{BlobId, BlobStore, StoreError};
use gloo_timers::callback::{Interval, Timeout};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    AnalyserNode, AudioContext, Blob, BlobEvent, MediaRecorder, MediaRecorderOptions, MediaStream,
    MediaStreamConstraints, MediaStreamTrack, RecordingState,
};

use crate::records::explain;
use crate::session::{Session, now};
use crate::store::is_closed_error;

/// After this many failed writes in a row of one chunk, a stopped recording reports its end
/// (with the chunks still unsaved) instead of waiting; the writes go on being retried.
const REPORT_AFTER_FAILURES: u32 = 3;

/// What the recorder is doing, for the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecorderState {
    /// Not started (or asking for the microphone: see [`RecorderSignals::busy`]).
    Idle,
    /// Recording.
    Recording,
    /// Paused: the microphone is still open, nothing is recorded.
    Paused,
    /// Stopped; every chunk is saved.
    Stopped,
    /// Could not start, or ended because of a problem; in words for the fieldworker. What was
    /// saved before stays saved.
    Failed(String),
}

impl RecorderState {
    /// Recording or paused: the microphone is open.
    pub fn is_active(&self) -> bool {
        matches!(self, RecorderState::Recording | RecorderState::Paused)
    }
}

/// A recording started: the blob its chunks are stored under, and their media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// The blob the chunks are written to.
    pub blob_id: BlobId,
    /// The media type of the recording, e.g. `audio/webm;codecs=opus`.
    pub media_type: String,
}

/// How a recording ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The blob the chunks are stored under.
    pub blob_id: BlobId,
    /// Their media type.
    pub media_type: String,
    /// The length recorded, without pauses, in milliseconds.
    pub elapsed_ms: u64,
    /// How much of it is stored on the tablet, in milliseconds.
    pub saved_ms: u64,
    /// Chunks stored.
    pub chunks_saved: u32,
    /// Bytes of audio stored (before encryption).
    pub bytes_saved: u64,
    /// Chunks not stored yet (their writes keep being retried while the app is open).
    pub chunks_unsaved: u32,
    /// Why the recording ended early or is incomplete, in words; `None` for a normal stop.
    pub error: Option<String>,
}

/// The recorder's state as signals, for the screen. Create them in the component that shows
/// them (they belong to its reactive owner); updates after it is gone are skipped.
#[derive(Clone, Copy, Debug)]
pub struct RecorderSignals {
    state: RwSignal<RecorderState>,
    elapsed_ms: RwSignal<u64>,
    level: RwSignal<f32>,
    chunks_saved: RwSignal<u32>,
    bytes_saved: RwSignal<u64>,
    saved_ms: RwSignal<u64>,
    media_type: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    warning: RwSignal<Option<String>>,
}

impl Default for RecorderSignals {
    fn default() -> Self {
        RecorderSignals::new()
    }
}

impl RecorderSignals {
    /// Signals for a recorder that has not started.
    pub fn new() -> RecorderSignals {
        RecorderSignals {
            state: RwSignal::new(RecorderState::Idle),
            elapsed_ms: RwSignal::new(0),
            level: RwSignal::new(0.0),
            chunks_saved: RwSignal::new(0),
            bytes_saved: RwSignal::new(0),
            saved_ms: RwSignal::new(0),
            media_type: RwSignal::new(None),
            busy: RwSignal::new(false),
            warning: RwSignal::new(None),
        }
    }

    /// Idle, recording, paused, stopped or failed.
    pub fn state(&self) -> ReadSignal<RecorderState> {
        self.state.read_only()
    }

    /// The length recorded so far, without pauses (refreshed every 100 ms; for an exact
    /// offset use [`AudioRecording::elapsed_ms`]).
    pub fn elapsed_ms(&self) -> ReadSignal<u64> {
        self.elapsed_ms.read_only()
    }

    /// The microphone level, 0.0..=1.0 (0 when not recording).
    pub fn level(&self) -> ReadSignal<f32> {
        self.level.read_only()
    }

    /// Chunks stored on the tablet.
    pub fn chunks_saved(&self) -> ReadSignal<u32> {
        self.chunks_saved.read_only()
    }

    /// Bytes of audio stored on the tablet (before encryption).
    pub fn bytes_saved(&self) -> ReadSignal<u64> {
        self.bytes_saved.read_only()
    }

    /// How much of the recording is stored on the tablet, in milliseconds.
    pub fn saved_ms(&self) -> ReadSignal<u64> {
        self.saved_ms.read_only()
    }

    /// The media type being recorded, once started.
    pub fn media_type(&self) -> ReadSignal<Option<String>> {
        self.media_type.read_only()
    }

    /// Asking for the microphone, or finishing the last writes after "Stop".
    pub fn busy(&self) -> ReadSignal<bool> {
        self.busy.read_only()
    }

    /// A chunk could not be saved yet and is being retried, in words.
    pub fn warning(&self) -> ReadSignal<Option<String>> {
        self.warning.read_only()
    }

    fn reset(&self) {
        self.state.try_set(RecorderState::Idle);
        self.elapsed_ms.try_set(0);
        self.level.try_set(0.0);
        self.chunks_saved.try_set(0);
        self.bytes_saved.try_set(0);
        self.saved_ms.try_set(0);
        self.media_type.try_set(None);
        self.busy.try_set(false);
        self.warning.try_set(None);
    }
}

/// Where a recording is in its life (finer than [`RecorderState`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not started.
    Idle,
    /// Asking for the microphone, or waiting for MediaRecorder's `start` event.
    Starting,
    Recording,
    Paused,
    /// Stop asked for: waiting for the last chunk and MediaRecorder's `stop` event.
    Stopping,
    /// MediaRecorder stopped: waiting for the last writes.
    Ended,
    /// Reported (or never started).
    Done,
    /// Dropped while running (see the module docs).
    Abandoned,
}

type StartedCallback = Rc<dyn Fn(BlobId, &str)>;
type StoppedCallback = Rc<dyn Fn(&RecordingSummary)>;

/// The Web Audio graph of the level meter.
struct Meter {
    context: AudioContext,
    analyser: AnalyserNode,
    samples: Vec<f32>,
}

impl Meter {
    fn new(stream: &MediaStream) -> Result<Meter, JsValue> {
        let context = AudioContext::new()?;
        let source = context.create_media_stream_source(stream)?;
        let analyser = context.create_analyser()?;
        analyser.set_fft_size(2048);
        // Not connected to the speakers: the analyser is pulled on its own.
        source.connect_with_audio_node(&analyser)?;
        // Browsers start an AudioContext suspended without a recent tap.
        let _ = context.resume();
        let samples = vec![0.0; analyser.fft_size() as usize];
        Ok(Meter {
            context,
            analyser,
            samples,
        })
    }

    fn level(&mut self) -> f32 {
        self.analyser.get_float_time_domain_data(&mut self.samples);
        recording::meter_level(recording::rms(&self.samples))
    }
}

/// What exists only while the microphone is open.
struct Live {
    recorder: MediaRecorder,
    stream: MediaStream,
    meter: Option<Meter>,
    ticker: Option<Interval>,
    /// MediaRecorder's handlers, kept alive while they are attached.
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    on_hidden: Closure<dyn FnMut(JsValue)>,
}

struct Inner {
    session: Rc<Session>,
    signals: RecorderSignals,
    phase: Cell<Phase>,
    /// MediaRecorder's `start` event has come: there is a blob.
    did_start: Cell<bool>,
    blob_id: Cell<Option<BlobId>>,
    media_type: RefCell<String>,
    queue: RefCell<ChunkQueue<Blob>>,
    watch: Cell<Stopwatch>,
    live: RefCell<Option<Live>>,
    error: RefCell<Option<String>>,
    summary: RefCell<Option<RecordingSummary>>,
    /// Resolves the promise `start()` waits on.
    start_waiter: RefCell<Option<Function>>,
    /// Resolve the promises `stop()` calls wait on.
    stop_waiters: RefCell<Vec<Function>>,
    on_started: RefCell<Option<StartedCallback>>,
    on_stopped: RefCell<Option<StoppedCallback>>,
}

/// Owns a recording; dropping the last one abandons a recording still running.
struct Owner(Rc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// One audio recording: microphone to encrypted chunks in the open session's store.
///
/// Cheap to clone; all clones control the same recording. Use each one once: after it has
/// stopped, make a new one for the next recording.
#[derive(Clone)]
pub struct AudioRecording {
    owner: Rc<Owner>,
}

impl std::fmt::Debug for AudioRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioRecording")
            .field("phase", &self.owner.0.phase.get())
            .field("blob_id", &self.owner.0.blob_id.get())
            .finish()
    }
}

impl AudioRecording {
    /// A recording into `session`'s store, not started, with its own signals.
    pub fn new(session: Rc<Session>) -> AudioRecording {
        AudioRecording::with_signals(session, RecorderSignals::new())
    }

    /// A recording that reports to `signals` (which are reset to "idle").
    pub fn with_signals(session: Rc<Session>, signals: RecorderSignals) -> AudioRecording {
        signals.reset();
        let inner = Inner {
            session,
            signals,
            phase: Cell::new(Phase::Idle),
            did_start: Cell::new(false),
            blob_id: Cell::new(None),
            media_type: RefCell::new(String::new()),
            queue: RefCell::new(ChunkQueue::new()),
            watch: Cell::new(Stopwatch::new()),
            live: RefCell::new(None),
            error: RefCell::new(None),
            summary: RefCell::new(None),
            start_waiter: RefCell::new(None),
            stop_waiters: RefCell::new(Vec::new()),
            on_started: RefCell::new(None),
            on_stopped: RefCell::new(None),
        };
        AudioRecording {
            owner: Rc::new(Owner(Rc::new(inner))),
        }
    }

    fn inner(&self) -> &Rc<Inner> {
        &self.owner.0
    }

    /// Called once the recording has started, with its blob id and media type: the moment
    /// to create the attachment record. Elapsed time 0 is now.
    pub fn on_started(&self, callback: impl Fn(BlobId, &str) + 'static) {
        *self.inner().on_started.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called once when the recording has ended (stop, or a problem) and its chunks are
    /// written (or their writes keep failing).
    pub fn on_stopped(&self, callback: impl Fn(&RecordingSummary) + 'static) {
        *self.inner().on_stopped.borrow_mut() = Some(Rc::new(callback));
    }

    /// The signals the screen shows.
    pub fn signals(&self) -> RecorderSignals {
        self.inner().signals
    }

    /// Asks for the microphone and starts recording. Resolves when MediaRecorder has
    /// started (the `on_started` callback has run), or with the reason it could not start
    /// (also shown as [`RecorderState::Failed`]).
    pub async fn start(&self) -> Result<Started, String> {
        let inner = self.inner().clone();
        if inner.phase.get() != Phase::Idle {
            return Err("This recording was already started; make a new one.".into());
        }
        inner.phase.set(Phase::Starting);
        inner.signals.busy.try_set(true);
        let result = begin(&inner).await;
        if let Err(message) = &result {
            inner.start_failed(message);
        }
        result
    }

    /// Pauses: nothing is recorded, and the elapsed time stands still, until
    /// [`AudioRecording::resume`].
    pub fn pause(&self) -> Result<(), String> {
        let inner = self.inner();
        if inner.phase.get() != Phase::Recording {
            return Err("Not recording.".into());
        }
        inner.with_recorder(|r| r.pause())?;
        inner.update_watch(|w, now| w.halt(now));
        inner.phase.set(Phase::Paused);
        inner.signals.state.try_set(RecorderState::Paused);
        inner.signals.level.try_set(0.0);
        inner.tick();
        Ok(())
    }

    /// Resumes a paused recording.
    pub fn resume(&self) -> Result<(), String> {
        let inner = self.inner();
        if inner.phase.get() != Phase::Paused {
            return Err("The recording is not paused.".into());
        }
        inner.with_recorder(|r| r.resume())?;
        inner.update_watch(|w, now| w.run(now));
        inner.phase.set(Phase::Recording);
        inner.signals.state.try_set(RecorderState::Recording);
        Ok(())
    }

    /// Stops: the last chunk is handed over and written, then the microphone is released.
    /// The stop is asked for at once (even if the future is dropped); the future resolves
    /// with the summary when the writes are done, or `None` if nothing was recorded.
    pub fn stop(&self) -> impl Future<Output = Option<RecordingSummary>> + 'static {
        let inner = self.inner().clone();
        let wait = inner.request_stop();
        async move {
            if let Some(promise) = wait {
                let _ = JsFuture::from(promise).await;
            }
            inner.summary.borrow().clone()
        }
    }

    /// Asks the recording to stop, without waiting (the last chunk is still written; see
    /// [`AudioRecording::stop`]).
    pub fn request_stop(&self) {
        let _ = self.inner().request_stop();
    }

    /// The exact recording offset now, in milliseconds without pauses: what a note taken
    /// now should be aligned to.
    pub fn elapsed_ms(&self) -> u64 {
        self.inner().watch.get().elapsed_ms(performance_now())
    }

    /// The current state (not reactive; the screen uses [`RecorderSignals::state`]).
    pub fn state(&self) -> RecorderState {
        self.inner()
            .signals
            .state
            .try_get_untracked()
            .unwrap_or_else(|| match self.inner().phase.get() {
                Phase::Idle | Phase::Starting => RecorderState::Idle,
                Phase::Recording => RecorderState::Recording,
                Phase::Paused => RecorderState::Paused,
                _ => RecorderState::Stopped,
            })
    }

    /// The blob the chunks are written to, once started.
    pub fn blob_id(&self) -> Option<BlobId> {
        self.inner().blob_id.get()
    }

    /// The media type being recorded, once started.
    pub fn media_type(&self) -> Option<String> {
        Some(self.inner().media_type.borrow().clone()).filter(|t| !t.is_empty())
    }

    /// Chunks stored so far.
    pub fn chunks_saved(&self) -> u32 {
        self.inner().queue.borrow().saved_chunks()
    }

    /// Bytes of audio stored so far (before encryption).
    pub fn bytes_saved(&self) -> u64 {
        self.inner().queue.borrow().saved_bytes()
    }

    /// How much of the recording is stored, in milliseconds.
    pub fn saved_ms(&self) -> u64 {
        self.inner().queue.borrow().saved_audio_ms()
    }

    /// Chunks handed over by the browser but not stored yet.
    pub fn chunks_pending(&self) -> usize {
        self.inner().queue.borrow().pending()
    }
}

/// The browser's monotonic clock, in milliseconds.
fn performance_now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// A promise and the function that resolves it.
fn deferred() -> (Promise, Function) {
    let mut resolver = None;
    let promise = Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
    let resolve = resolver.expect("the Promise executor runs at once");
    (promise, resolve)
}

/// A JS error's name and message.
fn error_name(error: &JsValue) -> (String, String) {
    let field = |name: &str| {
        Reflect::get(error, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    (field("name"), field("message"))
}

/// Why the microphone could not be opened, in words for the fieldworker.
pub fn explain_media_error(error: &JsValue) -> String {
    let (name, message) = error_name(error);
    match name.as_str() {
        "NotAllowedError" | "SecurityError" | "PermissionDeniedError" => {
            "Attune may not use the microphone. Allow it in the browser's settings for this \
             site, then tap Record again."
                .into()
        }
        "NotFoundError" | "OverconstrainedError" | "DevicesNotFoundError" => {
            "No microphone was found on this tablet.".into()
        }
        "NotReadableError" | "AbortError" | "TrackStartError" => {
            "The microphone is busy or not working. Close other apps that use it and try again."
                .into()
        }
        "NotSupportedError" => "This browser cannot record audio in a format Attune knows.".into(),
        _ if name.is_empty() && message.is_empty() => "The microphone could not be started.".into(),
        _ => format!("The microphone could not be started ({name}: {message})."),
    }
}

fn stop_tracks(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        track.unchecked_into::<MediaStreamTrack>().stop();
    }
}

/// Opens the microphone and starts MediaRecorder; resolves at its `start` event.
async fn begin(inner: &Rc<Inner>) -> Result<Started, String> {
    let window = web_sys::window().ok_or("There is no browser window.")?;
    let has = |target: &JsValue, name: &str| {
        Reflect::get(target, &JsValue::from_str(name)).is_ok_and(|v| !v.is_undefined())
    };
    if !has(&window, "MediaRecorder") {
        return Err("This browser cannot record audio. Update it, or use Chrome or Safari.".into());
    }
    let navigator = window.navigator();
    if !has(&navigator, "mediaDevices") {
        return Err("This browser does not allow recording on this page (it needs https).".into());
    }
    let devices = navigator
        .media_devices()
        .map_err(|e| explain_media_error(&e))?;
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&JsValue::TRUE);
    let asked = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| explain_media_error(&e))?;
    let stream: MediaStream = JsFuture::from(asked)
        .await
        .map_err(|e| explain_media_error(&e))?
        .unchecked_into();
    if inner.phase.get() != Phase::Starting {
        // Stopped or dropped while the browser was asking for permission.
        stop_tracks(&stream);
        return Err("The recording was cancelled before it started.".into());
    }

    let chosen = recording::choose_media_type(MediaRecorder::is_type_supported);
    let options = MediaRecorderOptions::new();
    if let Some(media_type) = chosen {
        options.set_mime_type(media_type);
    }
    options.set_audio_bits_per_second(recording::AUDIO_BITS_PER_SECOND);
    let recorder =
        match MediaRecorder::new_with_media_stream_and_media_recorder_options(&stream, &options) {
            Ok(recorder) => recorder,
            Err(error) => {
                stop_tracks(&stream);
                return Err(explain_media_error(&error));
            }
        };
    *inner.media_type.borrow_mut() = chosen.unwrap_or_default().to_owned();
    let blob_id = BlobId::new(now());
    inner.blob_id.set(Some(blob_id));

    let handler = |on: fn(&Rc<Inner>, JsValue)| {
        let inner = inner.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| on(&inner, event))
    };
    let handlers = vec![
        handler(Inner::on_data),
        handler(|inner, _| inner.on_recorder_start()),
        handler(|inner, _| inner.on_recorder_stop()),
        handler(Inner::on_recorder_error),
    ];
    recorder.set_ondataavailable(Some(handlers[0].as_ref().unchecked_ref()));
    recorder.set_onstart(Some(handlers[1].as_ref().unchecked_ref()));
    recorder.set_onstop(Some(handlers[2].as_ref().unchecked_ref()));
    recorder.set_onerror(Some(handlers[3].as_ref().unchecked_ref()));
    // Hand the buffered audio over as soon as the tablet sleeps or the app is left.
    let on_hidden = handler(|inner, _| inner.hand_over_now());
    let _ = window.add_event_listener_with_callback("pagehide", on_hidden.as_ref().unchecked_ref());
    if let Some(document) = window.document() {
        let _ = document.add_event_listener_with_callback(
            "visibilitychange",
            on_hidden.as_ref().unchecked_ref(),
        );
    }
    // The meter is a nicety: recording goes on without it.
    let meter = Meter::new(&stream).ok();
    *inner.live.borrow_mut() = Some(Live {
        recorder: recorder.clone(),
        stream,
        meter,
        ticker: None,
        _handlers: handlers,
        on_hidden,
    });

    let (started, resolve) = deferred();
    *inner.start_waiter.borrow_mut() = Some(resolve);
    if let Err(error) = recorder.start_with_time_slice(TIMESLICE_MS as i32) {
        inner.teardown();
        return Err(explain_media_error(&error));
    }
    let _ = JsFuture::from(started).await;
    if inner.did_start.get() {
        Ok(Started {
            blob_id,
            media_type: inner.media_type.borrow().clone(),
        })
    } else {
        Err(inner
            .error
            .borrow()
            .clone()
            .unwrap_or_else(|| "The recording did not start.".into()))
    }
}

impl Inner {
    fn with_recorder(
        &self,
        f: impl FnOnce(&MediaRecorder) -> Result<(), JsValue>,
    ) -> Result<(), String> {
        match self.live.borrow().as_ref() {
            Some(live) => f(&live.recorder).map_err(|e| {
                let (name, message) = error_name(&e);
                format!("The browser refused ({name}: {message}).")
            }),
            None => Err("The microphone is not open.".into()),
        }
    }

    fn update_watch(&self, f: impl FnOnce(&mut Stopwatch, f64)) {
        let mut watch = self.watch.get();
        f(&mut watch, performance_now());
        self.watch.set(watch);
    }

    fn start_failed(&self, message: &str) {
        // Otherwise it was cancelled (`request_stop`) or has ended and reported (`maybe_finish`).
        if self.phase.get() == Phase::Starting {
            self.phase.set(Phase::Done);
            self.signals
                .state
                .try_set(RecorderState::Failed(message.to_owned()));
            self.signals.busy.try_set(false);
            self.resolve_stop_waiters();
        }
    }

    fn resolve_start(&self) {
        if let Some(resolve) = self.start_waiter.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    fn resolve_stop_waiters(&self) {
        let waiters = std::mem::take(&mut *self.stop_waiters.borrow_mut());
        for resolve in waiters {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    fn on_recorder_start(self: &Rc<Self>) {
        self.did_start.set(true);
        self.update_watch(|w, now| w.run(now));
        let recorded_type = self
            .live
            .borrow()
            .as_ref()
            .map(|live| live.recorder.mime_type())
            .unwrap_or_default();
        let media_type = if recorded_type.is_empty() {
            let chosen = self.media_type.borrow().clone();
            if chosen.is_empty() {
                "audio/webm".to_owned()
            } else {
                chosen
            }
        } else {
            recorded_type
        };
        *self.media_type.borrow_mut() = media_type.clone();
        let ticker = {
            let inner = self.clone();
            Interval::new(METER_INTERVAL_MS, move || inner.tick())
        };
        if let Some(live) = self.live.borrow_mut().as_mut() {
            live.ticker = Some(ticker);
        }
        if self.phase.get() == Phase::Starting {
            self.phase.set(Phase::Recording);
            self.signals.state.try_set(RecorderState::Recording);
        }
        self.signals.media_type.try_set(Some(media_type.clone()));
        self.signals
            .busy
            .try_set(self.phase.get() == Phase::Stopping);
        self.resolve_start();
        let callback = self.on_started.borrow().clone();
        if let (Some(callback), Some(blob_id)) = (callback, self.blob_id.get()) {
            callback(blob_id, &media_type);
        }
    }

    fn on_data(self: &Rc<Self>, event: JsValue) {
        let Some(blob) = event.unchecked_into::<BlobEvent>().data() else {
            return;
        };
        let bytes = blob.size() as u64;
        let until = self.watch.get().elapsed_ms(performance_now());
        let action = self.queue.borrow_mut().push(blob, bytes, until);
        self.act(action);
    }

    fn on_recorder_error(self: &Rc<Self>, event: JsValue) {
        let error = Reflect::get(&event, &JsValue::from_str("error")).unwrap_or(event);
        let (name, _) = error_name(&error);
        self.set_error(format!(
            "The recording stopped because of a problem in the browser ({name}). What was \
             recorded before it is saved."
        ));
        // MediaRecorder stops itself after an error; make sure of it.
        let _ = self.with_recorder(|r| {
            if r.state() == RecordingState::Inactive {
                Ok(())
            } else {
                r.stop()
            }
        });
    }

    fn on_recorder_stop(self: &Rc<Self>) {
        self.update_watch(|w, now| w.halt(now));
        if matches!(
            self.phase.get(),
            Phase::Starting | Phase::Recording | Phase::Paused
        ) {
            self.set_error(
                "The microphone stopped: it was unplugged, or another app took it. What was \
                 recorded before is saved."
                    .into(),
            );
        }
        self.phase.set(Phase::Ended);
        self.signals.busy.try_set(true);
        self.teardown();
        self.tick();
        self.resolve_start();
        self.maybe_finish();
    }

    /// Asks MediaRecorder for the audio it holds (the tablet may be about to sleep).
    fn hand_over_now(&self) {
        let _ = self.with_recorder(|r| {
            if r.state() == RecordingState::Recording {
                r.request_data()
            } else {
                Ok(())
            }
        });
    }

    fn set_error(&self, message: String) {
        let mut error = self.error.borrow_mut();
        if error.is_none() {
            *error = Some(message);
        }
    }

    /// Refreshes the elapsed time and the level on screen.
    fn tick(&self) {
        self.signals
            .elapsed_ms
            .try_set(self.watch.get().elapsed_ms(performance_now()));
        let level = if self.phase.get() == Phase::Recording {
            self.live
                .borrow_mut()
                .as_mut()
                .and_then(|live| live.meter.as_mut())
                .map_or(0.0, Meter::level)
        } else {
            0.0
        };
        self.signals.level.try_set(level);
    }

    fn act(self: &Rc<Self>, action: QueueAction<Blob>) {
        match action {
            QueueAction::Write(write) => {
                let inner = self.clone();
                spawn_local(async move {
                    let result = inner.write(write.index, write.payload).await;
                    inner.written(write.index, result);
                });
            }
            QueueAction::RetryAfter { millis } => {
                let inner = self.clone();
                Timeout::new(millis, move || {
                    let next = inner.queue.borrow_mut().retry();
                    inner.act(next);
                })
                .forget();
            }
            QueueAction::Nothing => {}
        }
        self.maybe_finish();
    }

    /// Seals chunk `index` and stores it.
    async fn write(&self, index: u32, chunk: Blob) -> Result<(), StoreError> {
        let blob_id = self
            .blob_id
            .get()
            .ok_or_else(|| StoreError::Backend("the recording has no blob".into()))?;
        let buffer = JsFuture::from(chunk.array_buffer()).await.map_err(|e| {
            let (name, message) = error_name(&e);
            StoreError::Backend(format!("the audio could not be read ({name}: {message})"))
        })?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        let sealed = self
            .session
            .vault
            .seal_chunk(blob_id, index, &bytes)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let store = &self.session.store;
        match store.put_chunk(blob_id, index, sealed.clone()).await {
            // Browsers close IndexedDB on their own (iOS under memory pressure): reopen, retry.
            Err(error) if is_closed_error(&error) => {
                store.reopen().await?;
                store.put_chunk(blob_id, index, sealed).await
            }
            other => other,
        }
    }

    fn written(self: &Rc<Self>, index: u32, result: Result<(), StoreError>) {
        let next = self
            .queue
            .borrow_mut()
            .write_finished(index, result.is_ok());
        {
            let queue = self.queue.borrow();
            self.signals.chunks_saved.try_set(queue.saved_chunks());
            self.signals.bytes_saved.try_set(queue.saved_bytes());
            self.signals.saved_ms.try_set(queue.saved_audio_ms());
        }
        match result {
            Ok(()) => {
                self.signals.warning.try_set(None);
            }
            Err(StoreError::QuotaExceeded) => {
                let saved = self.queue.borrow().saved_audio_ms() / 1000;
                self.set_error(format!(
                    "The tablet's storage is full, so the recording was stopped. Saved so far: \
                     {saved} s. Free some space and keep Attune open to save the rest."
                ));
                self.signals
                    .warning
                    .try_set(Some("Not saved yet: the tablet's storage is full.".into()));
                // Recording on would only pile up audio that cannot be stored.
                let _ = self.request_stop();
            }
            Err(error) => {
                self.signals.warning.try_set(Some(format!(
                    "Not saved yet: {}. Trying again.",
                    explain(&error)
                )));
            }
        }
        self.act(next);
    }

    /// Reports the end once MediaRecorder has stopped and the writes are done (or keep failing).
    fn maybe_finish(self: &Rc<Self>) {
        if self.phase.get() != Phase::Ended {
            return;
        }
        let (ready, summary) = {
            let queue = self.queue.borrow();
            let ready = queue.is_drained() || queue.failures() >= REPORT_AFTER_FAILURES;
            let summary = RecordingSummary {
                blob_id: self
                    .blob_id
                    .get()
                    .unwrap_or_else(|| BlobId::from_bytes([0; 16])),
                media_type: self.media_type.borrow().clone(),
                elapsed_ms: self.watch.get().elapsed_ms(performance_now()),
                saved_ms: queue.saved_audio_ms(),
                chunks_saved: queue.saved_chunks(),
                bytes_saved: queue.saved_bytes(),
                chunks_unsaved: u32::try_from(queue.pending()).unwrap_or(u32::MAX),
                error: self.error.borrow().clone(),
            };
            (ready, summary)
        };
        if !ready {
            return;
        }
        self.phase.set(Phase::Done);
        let state = match &summary.error {
            Some(error) => RecorderState::Failed(error.clone()),
            None if summary.chunks_unsaved > 0 => RecorderState::Failed(format!(
                "The last {} s could not be saved yet; Attune keeps trying while it is open.",
                summary.elapsed_ms.saturating_sub(summary.saved_ms) / 1000
            )),
            None => RecorderState::Stopped,
        };
        self.signals.state.try_set(state);
        self.signals.busy.try_set(false);
        *self.summary.borrow_mut() = Some(summary.clone());
        // The callbacks may hold the recording: let them go, so nothing keeps it alive.
        let on_stopped = self.on_stopped.borrow_mut().take();
        self.on_started.borrow_mut().take();
        if let (Some(callback), true) = (on_stopped, self.did_start.get()) {
            callback(&summary);
        }
        self.resolve_stop_waiters();
    }

    /// Asks MediaRecorder to stop; returns what `stop()` waits on, if anything.
    fn request_stop(self: &Rc<Self>) -> Option<Promise> {
        match self.phase.get() {
            Phase::Idle => {
                self.phase.set(Phase::Done);
                return None;
            }
            Phase::Starting if self.live.borrow().is_none() => {
                // Still asking for the microphone: `begin` sees this and gives up.
                self.phase.set(Phase::Done);
                self.signals.state.try_set(RecorderState::Idle);
                self.signals.busy.try_set(false);
                return None;
            }
            Phase::Starting | Phase::Recording | Phase::Paused => {
                self.phase.set(Phase::Stopping);
                self.update_watch(|w, now| w.halt(now));
                self.signals.busy.try_set(true);
                self.signals.level.try_set(0.0);
                let _ = self.with_recorder(|r| {
                    if r.state() == RecordingState::Inactive {
                        Ok(())
                    } else {
                        r.stop()
                    }
                });
            }
            Phase::Stopping | Phase::Ended => {}
            Phase::Done | Phase::Abandoned => return None,
        }
        let (promise, resolve) = deferred();
        self.stop_waiters.borrow_mut().push(resolve);
        Some(promise)
    }

    /// The last owner was dropped without `stop()`: behave like a crash, but release the
    /// microphone. Chunks already handed over are still written.
    fn abandon(&self) {
        match self.phase.get() {
            Phase::Idle => self.phase.set(Phase::Done),
            Phase::Starting | Phase::Recording | Phase::Paused => {
                self.phase.set(Phase::Abandoned);
                self.update_watch(|w, now| w.halt(now));
                self.teardown();
                self.signals.level.try_set(0.0);
                self.signals.busy.try_set(false);
                self.signals.state.try_set(RecorderState::Failed(
                    "The recording was interrupted; what was saved before stays saved.".into(),
                ));
                self.on_started.borrow_mut().take();
                self.on_stopped.borrow_mut().take();
                self.resolve_start();
            }
            Phase::Stopping | Phase::Ended | Phase::Done | Phase::Abandoned => {}
        }
    }

    /// Detaches from MediaRecorder and releases the microphone and the meter.
    fn teardown(&self) {
        let Some(live) = self.live.borrow_mut().take() else {
            return;
        };
        let recorder = &live.recorder;
        recorder.set_ondataavailable(None);
        recorder.set_onstart(None);
        recorder.set_onstop(None);
        recorder.set_onerror(None);
        if recorder.state() != RecordingState::Inactive {
            let _ = recorder.stop();
        }
        stop_tracks(&live.stream);
        if let Some(meter) = &live.meter {
            let _ = meter.context.close();
        }
        if let Some(window) = web_sys::window() {
            let listener = live.on_hidden.as_ref().unchecked_ref();
            let _ = window.remove_event_listener_with_callback("pagehide", listener);
            if let Some(document) = window.document() {
                let _ = document.remove_event_listener_with_callback("visibilitychange", listener);
            }
        }
        // One of these closures may be running right now (the `stop` event): free them later.
        spawn_local(async move { drop(live) });
    }
}
