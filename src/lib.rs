//! Attune, the PWA: a Leptos single-page app compiled to WebAssembly.
//!
//! On the host this library is empty (the app only exists on wasm32), which keeps native
//! `cargo clippy` and `cargo test` of the workspace fast. The browser tests in `tests/` use
//! its modules directly.

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod features;
#[cfg(target_arch = "wasm32")]
mod protocol;
#[cfg(target_arch = "wasm32")]
pub mod pwa;
#[cfg(target_arch = "wasm32")]
mod records;
#[cfg(target_arch = "wasm32")]
mod session;
#[cfg(target_arch = "wasm32")]
pub mod store;

/// The interview audio recorder (also used directly by the browser tests).
#[cfg(target_arch = "wasm32")]
pub use components::recorder;
/// The unlocked session the recorder writes into.
#[cfg(target_arch = "wasm32")]
pub use session::Session;

/// Mounts the app on the page's body.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
