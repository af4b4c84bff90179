//! The study key file remembered on this browser, if the researcher asks (`keystore.js`,
//! IndexedDB). What is kept is the file itself, still locked by its passphrase: opening it
//! always needs the passphrase, which is never stored.

use attune_core::time::Timestamp;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::Error;

#[wasm_bindgen(module = "/src/keystore.js")]
extern "C" {
    #[wasm_bindgen(js_name = rememberedKey)]
    fn remembered_key_js() -> js_sys::Promise;
    #[wasm_bindgen(js_name = rememberKey)]
    fn remember_key_js(bytes: &[u8]) -> js_sys::Promise;
    #[wasm_bindgen(js_name = forgetKey)]
    fn forget_key_js() -> js_sys::Promise;
}

/// A key file remembered on this browser.
#[derive(Clone, Debug, PartialEq)]
pub struct Remembered {
    /// The file's bytes, as on disk.
    pub bytes: Vec<u8>,
    /// When it was remembered.
    pub saved_at: Timestamp,
}

fn failed(what: &str) -> Error {
    Error::Key(format!(
        "This browser could not {what} the key file (its storage may be off or full). Open \
         the key file from the computer instead."
    ))
}

/// The remembered key file, if there is one (`None` also when the browser refuses storage).
pub async fn remembered() -> Option<Remembered> {
    let found = JsFuture::from(remembered_key_js()).await.ok()?;
    if found.is_null() || found.is_undefined() {
        return None;
    }
    let bytes = js_sys::Reflect::get(&found, &"bytes".into()).ok()?;
    let saved_at = js_sys::Reflect::get(&found, &"savedAt".into())
        .ok()?
        .as_f64()?;
    Some(Remembered {
        bytes: js_sys::Uint8Array::new(&bytes).to_vec(),
        saved_at: Timestamp(saved_at as i64),
    })
}

/// Remembers `bytes` as the study key file on this browser.
pub async fn remember(bytes: &[u8]) -> Result<(), Error> {
    JsFuture::from(remember_key_js(bytes))
        .await
        .map(|_| ())
        .map_err(|_| failed("remember"))
}

/// Forgets the remembered key file.
pub async fn forget() -> Result<(), Error> {
    JsFuture::from(forget_key_js())
        .await
        .map(|_| ())
        .map_err(|_| failed("forget"))
}
