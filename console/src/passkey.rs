//! Passkey sign-in and registration: the browser's WebAuthn API through `passkey.js`.

use wasm_bindgen::prelude::*;

use crate::error::Error;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/passkey.js")]
extern "C" {
    #[wasm_bindgen(js_name = passkeysSupported)]
    fn passkeys_supported_js() -> bool;
    #[wasm_bindgen(js_name = createPasskey)]
    fn create_passkey_js(options: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = getPasskey)]
    fn get_passkey_js(options: &str) -> js_sys::Promise;
}

/// Whether this browser can use passkeys at all.
pub fn supported() -> bool {
    passkeys_supported_js()
}

/// Why a ceremony in the browser did not finish, in the researcher's words.
fn explain(error: JsValue) -> Error {
    Error::Passkey(explain_text(error))
}

fn explain_text(error: JsValue) -> String {
    let name = js_sys::Reflect::get(&error, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" => {
            "The passkey request was cancelled or timed out. Try again, and confirm on your \
             device when it asks."
                .into()
        }
        "InvalidStateError" => "This device already holds a passkey for this account.".into(),
        "SecurityError" => {
            "This browser refused passkeys for this address. Open the console at the address \
             your study admin gave you (HTTPS, or localhost)."
                .into()
        }
        _ => format!(
            "The passkey did not work: {}",
            error.as_string().unwrap_or_else(|| name.clone())
        ),
    }
}

async fn run(promise: js_sys::Promise) -> Result<serde_json::Value, Error> {
    let answer = JsFuture::from(promise).await.map_err(explain)?;
    let text = answer.as_string().unwrap_or_default();
    serde_json::from_str(&text)
        .map_err(|e| Error::Passkey(format!("The browser's passkey answer was unreadable: {e}")))
}

/// Makes a new passkey from the server's creation options.
pub async fn create(options: &serde_json::Value) -> Result<serde_json::Value, Error> {
    run(create_passkey_js(&options.to_string())).await
}

/// Signs in with a passkey from the server's request options.
pub async fn get(options: &serde_json::Value) -> Result<serde_json::Value, Error> {
    run(get_passkey_js(&options.to_string())).await
}
