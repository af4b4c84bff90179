//! Playing a recording back: its chunks opened with the vault and joined into one `Blob`.
//!
//! MediaRecorder writes one continuous stream in timeslices, so the chunks joined in order
//! are a playable file. A WebM written this way has no duration in its header (Chromium
//! says `Infinity` until it has read to the end); [`recording_duration_ms`] and
//! [`Playback`] seek past the end to learn it (`recorder.js`).

use std::rc::Rc;

use attune_core::{BlobId, BlobStore};
use js_sys::{Array, ArrayBuffer, Promise, Reflect, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{AudioBuffer, Blob, BlobPropertyBag, HtmlMediaElement, OfflineAudioContext, Url};

use crate::records::explain;
use crate::session::Session;

#[wasm_bindgen(module = "/src/components/recorder/recorder.js")]
extern "C" {
    #[wasm_bindgen(js_name = mediaDuration)]
    fn media_duration_js(url: &str, timeout_ms: u32) -> Promise;
    #[wasm_bindgen(js_name = showRealDuration)]
    fn show_real_duration(media: &HtmlMediaElement);
}

/// How long reading a recording's length with a media element may take.
const DURATION_TIMEOUT_MS: u32 = 20_000;

fn js_text(error: &JsValue) -> String {
    let field = |name: &str| {
        Reflect::get(error, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
    };
    field("message")
        .filter(|m| !m.is_empty())
        .or_else(|| field("name"))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

/// The recording's chunks, opened with the vault and joined in order into one `Blob` of
/// `media_type`.
pub async fn recording_blob(
    session: &Session,
    blob_id: BlobId,
    media_type: &str,
) -> Result<Blob, String> {
    let store = &session.store;
    let count = store.chunk_count(blob_id).await.map_err(|e| explain(&e))?;
    let parts = Array::new();
    for index in 0..count {
        let sealed = store
            .chunk(blob_id, index)
            .await
            .map_err(|e| explain(&e))?
            .ok_or_else(|| format!("part {index} of the recording is missing"))?;
        let audio = session
            .vault
            .open_chunk(blob_id, index, &sealed)
            .map_err(|e| format!("part {index} of the recording cannot be opened: {e}"))?;
        parts.push(&Uint8Array::from(audio.as_slice()));
    }
    let options = BlobPropertyBag::new();
    options.set_type(media_type);
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(|e| js_text(&e))
}

/// An object URL of the whole recording (see [`recording_blob`]), for an `<audio>`. The
/// caller revokes it (`Url::revoke_object_url`) when done.
pub async fn recording_url(
    session: &Session,
    blob_id: BlobId,
    media_type: &str,
) -> Result<String, String> {
    let blob = recording_blob(session, blob_id, media_type).await?;
    Url::create_object_url_with_blob(&blob).map_err(|e| js_text(&e))
}

/// The real length of a recording in milliseconds (not `Infinity`).
///
/// Read with a media element, which does not decode the whole recording into memory (an
/// hour would be over a gigabyte of samples); if that fails, decoded with Web Audio.
pub async fn recording_duration_ms(
    session: &Session,
    blob_id: BlobId,
    media_type: &str,
) -> Result<u64, String> {
    if session
        .store
        .chunk_count(blob_id)
        .await
        .map_err(|e| explain(&e))?
        == 0
    {
        return Ok(0);
    }
    let blob = recording_blob(session, blob_id, media_type).await?;
    match media_duration_ms(&blob).await {
        Ok(millis) => Ok(millis),
        Err(_) => decoded_duration_ms(&blob).await,
    }
}

/// The length of a media `Blob` read with an `<audio>` element, in milliseconds.
pub async fn media_duration_ms(blob: &Blob) -> Result<u64, String> {
    let url = Url::create_object_url_with_blob(blob).map_err(|e| js_text(&e))?;
    let seconds = JsFuture::from(media_duration_js(&url, DURATION_TIMEOUT_MS)).await;
    Url::revoke_object_url(&url).ok();
    let seconds = seconds
        .map_err(|e| js_text(&e))?
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or("the browser did not say how long the recording is")?;
    Ok((seconds * 1000.0).round() as u64)
}

/// The length of encoded audio in milliseconds, by decoding it all with Web Audio
/// (`decodeAudioData`): exact, but holds every sample in memory.
pub async fn decoded_duration_ms(blob: &Blob) -> Result<u64, String> {
    let buffer: ArrayBuffer = JsFuture::from(blob.array_buffer())
        .await
        .map_err(|e| js_text(&e))?
        .unchecked_into();
    // The context only decodes; its own length and rate do not limit the result.
    let context =
        OfflineAudioContext::new_with_number_of_channels_and_length_and_sample_rate(1, 1, 48_000.0)
            .map_err(|e| js_text(&e))?;
    let decoding = context
        .decode_audio_data(&buffer)
        .map_err(|e| js_text(&e))?;
    let audio: AudioBuffer = JsFuture::from(decoding)
        .await
        .map_err(|e| format!("the recording cannot be decoded: {}", js_text(&e)))?
        .unchecked_into();
    Ok((audio.duration() * 1000.0).round() as u64)
}

/// A recording with the browser's own player (`<audio controls>`).
#[component]
pub fn Playback(
    /// The open session (its store and vault).
    session: Rc<Session>,
    /// The recording's blob.
    blob_id: BlobId,
    /// Its media type, as the recorder reported it.
    #[prop(into)]
    media_type: String,
) -> impl IntoView {
    let url = RwSignal::new(None::<Result<String, String>>);
    spawn_local(async move {
        let opened = recording_url(&session, blob_id, &media_type).await;
        // The screen may be gone by now: then nobody will revoke the URL but us.
        if let Some(Some(Ok(unused))) = url.try_set(Some(opened)) {
            Url::revoke_object_url(&unused).ok();
        }
    });
    on_cleanup(move || {
        if let Some(Some(Ok(address))) = url.try_get_untracked() {
            Url::revoke_object_url(&address).ok();
        }
    });
    view! {
        <div class="playback" data-testid="playback">
            {move || match url.get() {
                None => view! { <p class="loading">"Opening the recording..."</p> }.into_any(),
                Some(Err(message)) => view! {
                    <p class="notice error" role="alert">"This recording cannot be played: " {message}</p>
                }.into_any(),
                Some(Ok(address)) => view! {
                    <audio class="playback-audio" controls preload="metadata" src=address
                        on:loadedmetadata=move |ev| {
                            show_real_duration(&event_target::<HtmlMediaElement>(&ev));
                        }>
                        "This browser cannot play the recording."
                    </audio>
                }.into_any(),
            }}
        </div>
    }
}
