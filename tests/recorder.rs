//! The interview audio recorder in headless Chromium (wasm-bindgen-test), with Chromium's
//! fake microphone (`--use-fake-device-for-media-stream`, a beep every second) and automatic
//! permission (`--use-fake-ui-for-media-stream`), both in `webdriver.json`.
//!
//! Timing here is loose on purpose: the machine running the tests may be busy.
#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use attune::Session;
use attune::recorder::{
    AudioRecording, Playback, Recorder, RecorderHandle, RecorderState, RecordingSummary,
    decoded_duration_ms, explain_media_error, recording_duration_ms, recording_url,
};
use attune::store::IdbStore;
use attune_core::{
    AutoLockMinutes, BlobId, BlobStore, DeviceId, KdfParams, Profile, ProfileId, Timestamp, Vault,
    WrappedVaultKey,
};
use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Function, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{Blob, BlobPropertyBag, HtmlElement, HtmlMediaElement};

wasm_bindgen_test_configure!(run_in_browser);

const PASSPHRASE: &str = "correct horse battery";
/// The cheapest Argon2id the vault accepts is fine for tests.
const TEST_KDF: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

/// A database name no other test uses.
fn unique_name(purpose: &str) -> String {
    thread_local!(static COUNTER: Cell<u32> = const { Cell::new(0) });
    let n = COUNTER.with(|counter| {
        counter.set(counter.get() + 1);
        counter.get()
    });
    let random = (js_sys::Math::random() * 1e9) as u64;
    format!(
        "attune-test-recorder-{purpose}-{}-{n}-{random}",
        js_sys::Date::now()
    )
}

/// An unlocked session on a fresh database, and the wrapped key that unlocks it again.
async fn session_on(db: &str) -> (Rc<Session>, WrappedVaultKey) {
    let (vault, wrapped_key) = Vault::create(PASSPHRASE, TEST_KDF).expect("a vault");
    let profile = Profile {
        id: ProfileId::from_bytes([0xa0; 16]),
        name: "Tester".into(),
        wrapped_key: wrapped_key.clone(),
        created: Timestamp(1_750_000_000_000),
        auto_lock: AutoLockMinutes::DEFAULT,
        child_pin: None,
    };
    let store = IdbStore::open(db).await.expect("a fresh database opens");
    let session = Session {
        profile,
        vault,
        store,
        device: DeviceId::from_bytes([0xd0; 16]),
    };
    (Rc::new(session), wrapped_key)
}

async fn sleep(millis: u32) {
    TimeoutFuture::new(millis).await;
}

/// Every chunk of a blob opened with `vault`, in order.
async fn opened_chunks(store: &IdbStore, vault: &Vault, blob: BlobId) -> Vec<Vec<u8>> {
    let count = store.chunk_count(blob).await.expect("chunk count");
    let mut chunks = Vec::new();
    for index in 0..count {
        let sealed = store
            .chunk(blob, index)
            .await
            .expect("chunk read")
            .unwrap_or_else(|| panic!("chunk {index} of {count} is missing"));
        let audio = vault
            .open_chunk(blob, index, &sealed)
            .unwrap_or_else(|e| panic!("chunk {index} does not open: {e}"));
        chunks.push(audio);
    }
    chunks
}

fn joined(chunks: &[Vec<u8>], media_type: &str) -> Blob {
    let parts = Array::new();
    for chunk in chunks {
        parts.push(&Uint8Array::from(chunk.as_slice()));
    }
    let options = BlobPropertyBag::new();
    options.set_type(media_type);
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).expect("a blob")
}

fn assert_near(what: &str, actual: u64, expected: u64, tolerance: u64) {
    assert!(
        actual.abs_diff(expected) <= tolerance,
        "{what}: {actual} ms, expected {expected} ± {tolerance} ms"
    );
}

/// Waits for `done`, checking every 50 ms, for at most `millis`.
async fn wait_until(millis: u32, done: impl Fn() -> bool) -> bool {
    for _ in 0..millis / 50 {
        if done() {
            return true;
        }
        sleep(50).await;
    }
    done()
}

#[wasm_bindgen_test]
async fn records_encrypted_chunks_in_order_that_decode_to_the_recorded_length() {
    let (session, _) = session_on(&unique_name("record")).await;
    let recording = AudioRecording::new(session.clone());
    let started_with = Rc::new(RefCell::new(Vec::new()));
    let stopped_with = Rc::new(RefCell::new(Vec::<RecordingSummary>::new()));
    {
        let started_with = started_with.clone();
        recording.on_started(move |blob, media_type| {
            started_with
                .borrow_mut()
                .push((blob, media_type.to_owned()));
        });
        let stopped_with = stopped_with.clone();
        recording.on_stopped(move |summary| stopped_with.borrow_mut().push(summary.clone()));
    }
    let started = recording.start().await.expect("recording starts");
    assert_eq!(recording.state(), RecorderState::Recording);
    assert!(
        started.media_type.starts_with("audio/webm"),
        "Chromium records WebM, got {}",
        started.media_type
    );
    assert_eq!(
        *started_with.borrow(),
        vec![(started.blob_id, started.media_type.clone())]
    );

    // The meter moves with the fake microphone's beeps.
    let level = recording.signals().level();
    let mut loudest = 0.0f32;
    for _ in 0..50 {
        sleep(100).await;
        loudest = loudest.max(level.get_untracked());
    }
    let saved_while_recording = recording.chunks_saved();
    let summary = recording.stop().await.expect("a summary");
    assert_eq!(recording.state(), RecorderState::Stopped);
    assert_eq!(summary.error, None);
    assert_eq!(summary.chunks_unsaved, 0);
    assert_eq!(*stopped_with.borrow(), vec![summary.clone()]);
    assert!(loudest > 0.05, "the level meter never moved ({loudest})");
    assert!(
        saved_while_recording >= 1,
        "chunks are saved while recording, not only at stop"
    );
    assert_near("elapsed", summary.elapsed_ms, 5_000, 600);

    // Every chunk opens with this vault, for its own index only, and not with another vault.
    let blob = started.blob_id;
    let count = session.store.chunk_count(blob).await.expect("count");
    assert!(count >= 2, "{count} chunks");
    assert_eq!(count, summary.chunks_saved);
    let (other_vault, _) = Vault::create(PASSPHRASE, TEST_KDF).expect("another vault");
    let mut sizes = Vec::new();
    for index in 0..count {
        let sealed = session.store.chunk(blob, index).await.unwrap().unwrap();
        sizes.push(sealed.len());
        assert!(session.vault.open_chunk(blob, index, &sealed).is_ok());
        assert!(other_vault.open_chunk(blob, index, &sealed).is_err());
        assert!(session.vault.open_chunk(blob, index + 1, &sealed).is_err());
    }
    let chunks = opened_chunks(&session.store, &session.vault, blob).await;
    // Written in order: the stream's header (EBML magic) is chunk 0, and only chunk 0.
    let ebml = [0x1a, 0x45, 0xdf, 0xa3];
    assert_eq!(chunks[0][..4], ebml);
    assert!(chunks[1..].iter().all(|c| c[..4] != ebml));
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    assert_eq!(bytes as u64, summary.bytes_saved);

    let decoded = decoded_duration_ms(&joined(&chunks, &started.media_type))
        .await
        .expect("the joined chunks decode");
    assert_near("decoded duration", decoded, 5_000, 1_000);
    let measured = recording_duration_ms(&session, blob, &started.media_type)
        .await
        .expect("a duration");
    assert_near("media element duration", measured, decoded, 300);
    let url = recording_url(&session, blob, &started.media_type)
        .await
        .expect("a playback URL");
    assert!(url.starts_with("blob:"), "{url}");
    web_sys::Url::revoke_object_url(&url).unwrap();
    console_log!(
        "recorded {} ms in {count} chunks, {bytes} bytes ({} bit/s); sealed chunk sizes {sizes:?}; decoded {decoded} ms, media element {measured} ms; loudest level {loudest:.2}",
        summary.elapsed_ms,
        bytes as u64 * 8_000 / summary.elapsed_ms.max(1),
    );
}

#[wasm_bindgen_test]
async fn a_pause_is_left_out_of_the_elapsed_time_and_the_audio() {
    let (session, _) = session_on(&unique_name("pause")).await;
    let recording = AudioRecording::new(session.clone());
    let started = recording.start().await.expect("recording starts");
    sleep(2_000).await;
    recording.pause().expect("pauses");
    assert_eq!(recording.state(), RecorderState::Paused);
    let at_pause = recording.elapsed_ms();
    sleep(2_000).await;
    assert_eq!(recording.elapsed_ms(), at_pause, "the clock stands still");
    assert!(recording.pause().is_err(), "already paused");
    recording.resume().expect("resumes");
    assert_eq!(recording.state(), RecorderState::Recording);
    sleep(2_000).await;
    let summary = recording.stop().await.expect("a summary");
    assert_near("elapsed without the pause", summary.elapsed_ms, 4_000, 600);

    let chunks = opened_chunks(&session.store, &session.vault, started.blob_id).await;
    let decoded = decoded_duration_ms(&joined(&chunks, &started.media_type))
        .await
        .expect("the joined chunks decode");
    assert_near("decoded duration", decoded, 4_000, 1_000);
    console_log!(
        "paused recording: elapsed {} ms, decoded {decoded} ms, {} chunks",
        summary.elapsed_ms,
        chunks.len()
    );
}

#[wasm_bindgen_test]
async fn a_crash_keeps_the_audio_already_saved() {
    let db = unique_name("crash");
    let (session, wrapped_key) = session_on(&db).await;
    let recording = AudioRecording::new(session.clone());
    let started = recording.start().await.expect("recording starts");
    sleep(5_000).await;
    let elapsed = recording.elapsed_ms();
    let saved_at_crash = recording.saved_ms();
    let chunks_at_crash = recording.chunks_saved();
    let pending_at_crash = recording.chunks_pending();
    // The crash: no stop(); the recorder, the session and its store connection are dropped.
    drop(recording);
    drop(session);

    // Start again: unlock the vault with the passphrase and reopen the database.
    let vault = Vault::unlock(PASSPHRASE, &wrapped_key).expect("unlocks");
    let store = IdbStore::open(&db).await.expect("reopens");
    let chunks = opened_chunks(&store, &vault, started.blob_id).await;
    let decoded = decoded_duration_ms(&joined(&chunks, &started.media_type))
        .await
        .expect("the saved chunks decode");
    assert!(decoded >= 3_000, "only {decoded} ms survived the crash");
    console_log!(
        "crash after {elapsed} ms: {chunks_at_crash} chunks ({saved_at_crash} ms) saved and {pending_at_crash} in flight at the crash; {} chunks decode to {decoded} ms after reopening, so {} ms were lost",
        chunks.len(),
        elapsed.saturating_sub(decoded)
    );
}

/// JS that makes every write to the `chunks` object store fail as on a full device, until
/// the returned function is called.
const FULL_DEVICE: &str = r#"
const proto = IDBObjectStore.prototype;
const original = proto.put;
proto.put = function (...args) {
  if (this.name === "chunks") {
    throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
  }
  return original.apply(this, args);
};
return () => { proto.put = original; };
"#;

#[wasm_bindgen_test]
async fn a_full_tablet_stops_the_recording_says_so_and_loses_nothing_saved() {
    let (session, _) = session_on(&unique_name("full")).await;
    let recording = AudioRecording::new(session.clone());
    let started = recording.start().await.expect("recording starts");
    assert!(
        wait_until(5_000, || recording.chunks_saved() >= 1).await,
        "the first chunk is saved"
    );
    let saved_before = recording.chunks_saved();
    let undo: Function = Function::new_with_args("", FULL_DEVICE)
        .call0(&JsValue::NULL)
        .expect("wrapping IDBObjectStore.prototype.put")
        .unchecked_into();

    // The next chunk cannot be written: the recording stops by itself and says why.
    let state = recording.signals().state();
    let failed = wait_until(15_000, || {
        matches!(state.get_untracked(), RecorderState::Failed(_))
    })
    .await;
    let warning = recording.signals().warning().get_untracked();
    let summary = recording.stop().await;
    undo.call0(&JsValue::NULL).expect("unwrapping");
    assert!(failed, "state {:?}", state.get_untracked());
    let RecorderState::Failed(message) = state.get_untracked() else {
        unreachable!()
    };
    assert!(message.contains("storage is full"), "{message}");
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains("storage is full")),
        "{warning:?}"
    );
    let summary = summary.expect("a summary");
    assert!(summary.chunks_unsaved >= 1, "{summary:?}");
    assert_eq!(summary.chunks_saved, saved_before);
    assert_eq!(summary.error.as_deref(), Some(message.as_str()));

    // The chunks written before are still there, and the ones held in memory are written
    // once there is space again (the retries go on), in order.
    assert!(
        wait_until(20_000, || recording.chunks_pending() == 0).await,
        "{} chunks still unsaved",
        recording.chunks_pending()
    );
    let chunks = opened_chunks(&session.store, &session.vault, started.blob_id).await;
    assert_eq!(
        chunks.len() as u32,
        summary.chunks_saved + summary.chunks_unsaved
    );
    let decoded = decoded_duration_ms(&joined(&chunks, &started.media_type))
        .await
        .expect("the chunks decode");
    assert_near("decoded duration", decoded, summary.elapsed_ms, 1_000);
    console_log!(
        "full device: {message} / {summary:?}; after space came back {} chunks decode to {decoded} ms",
        chunks.len()
    );
}

#[wasm_bindgen_test]
async fn a_connection_closed_by_the_browser_is_reopened_without_losing_a_chunk() {
    let (session, _) = session_on(&unique_name("closed")).await;
    let recording = AudioRecording::new(session.clone());
    let started = recording.start().await.expect("recording starts");
    // iOS closes IndexedDB connections under memory pressure, at any time.
    session.store.close();
    sleep(2_500).await;
    session.store.close();
    sleep(2_000).await;
    let summary = recording.stop().await.expect("a summary");
    assert_eq!(summary.error, None);
    assert_eq!(summary.chunks_unsaved, 0);
    let chunks = opened_chunks(&session.store, &session.vault, started.blob_id).await;
    assert_eq!(chunks.len() as u32, summary.chunks_saved);
    let decoded = decoded_duration_ms(&joined(&chunks, &started.media_type))
        .await
        .expect("the chunks decode");
    assert_near("decoded duration", decoded, summary.elapsed_ms, 1_000);
}

#[wasm_bindgen_test]
fn microphone_errors_are_explained_in_words() {
    let error = |name: &str| {
        web_sys::DomException::new_with_message_and_name("browser text", name)
            .expect("a DOMException")
            .into()
    };
    assert!(explain_media_error(&error("NotAllowedError")).contains("may not use the microphone"));
    assert!(explain_media_error(&error("NotFoundError")).contains("No microphone"));
    assert!(explain_media_error(&error("NotReadableError")).contains("busy"));
    assert!(explain_media_error(&error("WeirdError")).contains("WeirdError: browser text"));
}

fn buttons(root: &web_sys::Element) -> Vec<HtmlElement> {
    let found = root.get_elements_by_tag_name("button");
    (0..found.length())
        .filter_map(|i| found.item(i))
        .filter_map(|node| node.dyn_into::<HtmlElement>().ok())
        .collect()
}

fn button(root: &web_sys::Element, label: &str) -> Option<HtmlElement> {
    buttons(root)
        .into_iter()
        .find(|b| b.text_content().as_deref() == Some(label))
}

fn text_of(root: &web_sys::Element, selector: &str) -> String {
    root.query_selector(selector)
        .ok()
        .flatten()
        .and_then(|e| e.text_content())
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn the_recorder_screen_records_pauses_and_stops() {
    let (session, _) = session_on(&unique_name("component")).await;
    let document = web_sys::window().unwrap().document().unwrap();
    // The app's own stylesheet, so sizes are as on the tablet.
    let style = document.create_element("style").unwrap();
    style.set_text_content(Some(include_str!("../style/main.css")));
    document.head().unwrap().append_child(&style).unwrap();
    let container: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&container).unwrap();
    let handle = Rc::new(Cell::new(None::<RecorderHandle>));
    let started = Rc::new(RefCell::new(None::<(BlobId, String)>));
    let stopped = Rc::new(RefCell::new(None::<RecordingSummary>));
    let mounted = {
        let (handle, started, stopped, session) = (
            handle.clone(),
            started.clone(),
            stopped.clone(),
            session.clone(),
        );
        leptos::mount::mount_to(container.clone(), move || {
            let recorder = RecorderHandle::new();
            handle.set(Some(recorder));
            view! {
                <Recorder session=session handle=recorder
                    on_started=move |blob: BlobId, media_type: String| {
                        *started.borrow_mut() = Some((blob, media_type));
                    }
                    on_stopped=move |summary: RecordingSummary| {
                        *stopped.borrow_mut() = Some(summary);
                    } />
            }
        })
    };
    let root: web_sys::Element = container.clone().into();
    let recorder = handle.get().expect("the handle");
    assert_eq!(text_of(&root, "[data-testid=recorder-elapsed]"), "00:00");
    let meter = root
        .query_selector("[role=meter]")
        .unwrap()
        .expect("a meter");
    assert_eq!(meter.get_attribute("aria-valuenow").as_deref(), Some("0"));
    let touch_targets = |root: &web_sys::Element| {
        for b in buttons(root) {
            assert!(
                b.offset_height() >= 48 && b.offset_width() >= 48,
                "touch target {}x{}",
                b.offset_width(),
                b.offset_height()
            );
        }
    };
    touch_targets(&root);

    button(&root, "Record").expect("Record").click();
    assert!(wait_until(5_000, || button(&root, "Pause").is_some()).await);
    assert!(button(&root, "Stop").is_some());
    touch_targets(&root);
    assert!(started.borrow().is_some(), "on_started ran");
    sleep(2_500).await;
    let offset = recorder.elapsed_ms();
    assert_near("handle offset", offset, 2_500, 600);
    button(&root, "Pause").unwrap().click();
    assert!(wait_until(1_000, || button(&root, "Resume").is_some()).await);
    sleep(1_000).await;
    button(&root, "Resume").unwrap().click();
    assert!(wait_until(1_000, || button(&root, "Pause").is_some()).await);
    sleep(1_500).await;
    assert!(
        text_of(&root, "[data-testid=recorder-saved]").starts_with("Saved on this tablet: "),
        "{}",
        text_of(&root, "[data-testid=recorder-saved]")
    );
    button(&root, "Stop").unwrap().click();
    assert!(wait_until(5_000, || stopped.borrow().is_some()).await);
    assert!(wait_until(1_000, || button(&root, "Record").is_some()).await);
    let summary = stopped.borrow().clone().unwrap();
    assert_eq!(
        Some(summary.blob_id),
        started.borrow().as_ref().map(|s| s.0)
    );
    assert_near("elapsed", summary.elapsed_ms, 4_000, 800);
    assert_eq!(
        text_of(&root, "[data-testid=recorder-elapsed]"),
        format!("00:0{}", summary.elapsed_ms / 1000)
    );
    let saved = text_of(&root, "[data-testid=recorder-saved]");
    assert_eq!(
        saved,
        format!("Saved on this tablet: {} s", summary.saved_ms / 1000)
    );
    assert!(summary.saved_ms >= 3_000, "{summary:?}");
    console_log!("component: {saved}; {summary:?}");
    drop(mounted);

    // The player shows the real length, not Infinity, and starts at the beginning.
    let (blob, media_type) = started.borrow().clone().unwrap();
    let player = leptos::mount::mount_to(container.clone(), move || {
        view! { <Playback session=session blob_id=blob media_type=media_type /> }
    });
    let audio = || {
        root.query_selector("audio")
            .ok()
            .flatten()
            .map(|a| a.unchecked_into::<HtmlMediaElement>())
    };
    let known = wait_until(10_000, || {
        audio().is_some_and(|a| a.duration().is_finite() && a.current_time() == 0.0)
    })
    .await;
    let audio = audio().expect("an <audio> element");
    assert!(known, "duration {}", audio.duration());
    assert!(audio.src().starts_with("blob:"), "{}", audio.src());
    assert!(audio.controls());
    assert_near(
        "player duration",
        (audio.duration() * 1000.0) as u64,
        summary.elapsed_ms,
        1_000,
    );
    drop(player);
    container.remove();
    style.remove();
}
