//! Browser tests of the PWA shell (wasm-bindgen-test), in Chromium, Firefox and WebKit.
#![cfg(target_arch = "wasm32")]

use attune::pwa::storage_status;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Whether this engine has the Storage API (`navigator.storage.estimate`): Chromium and
/// Firefox do; WebKitGTK's MiniBrowser does not expose it.
fn has_storage_estimate() -> bool {
    js_sys::Function::new_no_args("return typeof navigator.storage?.estimate === 'function'")
        .call0(&wasm_bindgen::JsValue::NULL)
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

#[wasm_bindgen_test]
async fn storage_health_reports_used_and_free_space() {
    let status = storage_status(true).await;
    if !has_storage_estimate() {
        // Unknown, not made up: the readiness check says it cannot tell.
        assert_eq!(
            (status.quota, status.usage, status.persisted),
            (None, None, false)
        );
        assert_eq!(status.used_fraction(), None);
        return;
    }
    let quota = status
        .quota
        .expect("an engine with the Storage API reports a quota");
    let usage = status
        .usage
        .expect("an engine with the Storage API reports usage");
    assert!(quota > 0.0, "quota {quota}");
    assert!(usage >= 0.0 && usage <= quota, "usage {usage} of {quota}");
    let fraction = status
        .used_fraction()
        .expect("a fraction when both are known");
    assert!((0.0..=1.0).contains(&fraction));
}
