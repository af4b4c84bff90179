//! Browser tests of the PWA shell, in headless Chromium (wasm-bindgen-test).
#![cfg(target_arch = "wasm32")]

use attune::pwa::storage_status;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn storage_health_reports_used_and_free_space() {
    let status = storage_status(true).await;
    let quota = status.quota.expect("Chromium reports a storage quota");
    let usage = status.usage.expect("Chromium reports storage usage");
    assert!(quota > 0.0, "quota {quota}");
    assert!(usage >= 0.0 && usage <= quota, "usage {usage} of {quota}");
    let fraction = status
        .used_fraction()
        .expect("a fraction when both are known");
    assert!((0.0..=1.0).contains(&fraction));
}
