//! The PWA shell's browser hooks: service worker state, "Update ready", online/offline and
//! storage persistence. The callback-shaped browser APIs live in `pwa.js`.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/pwa.js")]
extern "C" {
    #[wasm_bindgen(js_name = registerServiceWorker)]
    fn register_service_worker(on_state: &Closure<dyn Fn(String)>, on_update: &Closure<dyn Fn()>);
    #[wasm_bindgen(js_name = applyUpdate)]
    fn apply_update_js() -> js_sys::Promise;
    #[wasm_bindgen(js_name = storageStatus)]
    fn storage_status_js(request_persistence: bool) -> js_sys::Promise;
}

/// Whether the app was added to the Home Screen, where the browser says (`navigator.standalone`,
/// which only iOS and iPadOS define): `Some(false)` on an iPad's Safari tab, where WebKit may
/// clear a site's storage after seven days without use; `Some(true)` when opened from the
/// Home Screen, where it does not; `None` in browsers without the property (they keep data by
/// the storage persistence the home screen also reports).
pub fn added_to_home_screen() -> Option<bool> {
    let navigator = web_sys::window()?.navigator();
    js_sys::Reflect::get(&navigator, &JsValue::from_str("standalone"))
        .ok()?
        .as_bool()
}

/// Whether the app can start without a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfflineReadiness {
    /// The service worker is still downloading the app.
    Preparing,
    /// Every file is cached: the app starts with no signal.
    Ready,
    /// This browser cannot keep the app offline.
    Unsupported,
}

/// The app shell's shared state, provided as context by [`provide_shell`].
#[derive(Clone, Copy)]
pub struct Shell {
    /// Whether the browser believes it has a network.
    pub online: ReadSignal<bool>,
    /// Whether the app is cached for offline use.
    pub offline_ready: ReadSignal<OfflineReadiness>,
    /// A new version is installed and waits for the fieldworker to apply it.
    pub update_ready: ReadSignal<bool>,
}

/// Registers the service worker and starts watching the network. Call once, in `App`.
pub fn provide_shell() -> Shell {
    let (online, set_online) = signal(navigator_online());
    let (offline_ready, set_offline_ready) = signal(OfflineReadiness::Preparing);
    let (update_ready, set_update_ready) = signal(false);

    let _ = window_event_listener(leptos::ev::online, move |_| set_online.set(true));
    let _ = window_event_listener(leptos::ev::offline, move |_| set_online.set(false));

    let on_state = Closure::<dyn Fn(String)>::new(move |state: String| {
        set_offline_ready.set(match state.as_str() {
            "ready" => OfflineReadiness::Ready,
            "unsupported" | "failed" => OfflineReadiness::Unsupported,
            _ => OfflineReadiness::Preparing,
        });
    });
    let on_update = Closure::<dyn Fn()>::new(move || set_update_ready.set(true));
    register_service_worker(&on_state, &on_update);
    // The closures live as long as the page: the service worker may call them at any time.
    on_state.forget();
    on_update.forget();

    let shell = Shell {
        online,
        offline_ready,
        update_ready,
    };
    provide_context(shell);
    shell
}

/// The shell state provided by [`provide_shell`].
pub fn use_shell() -> Shell {
    expect_context::<Shell>()
}

/// Switches to the waiting version; the page reloads once it has taken over.
pub fn apply_update() {
    let _ = apply_update_js();
}

fn navigator_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// What the browser says about keeping this tablet's data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StorageStatus {
    /// The browser promised not to evict our data under storage pressure.
    pub persisted: bool,
    /// Bytes used by this origin, if the browser says.
    pub usage: Option<f64>,
    /// Bytes this origin may use, if the browser says.
    pub quota: Option<f64>,
}

impl StorageStatus {
    /// Share of the quota in use, 0.0 to 1.0.
    pub fn used_fraction(&self) -> Option<f64> {
        match (self.usage, self.quota) {
            (Some(u), Some(q)) if q > 0.0 => Some(u / q),
            _ => None,
        }
    }
}

/// Asks for persistent storage (once granted, the browser keeps our data) and reads the
/// estimate of used and free space.
pub async fn storage_status(request_persistence: bool) -> StorageStatus {
    let value = wasm_bindgen_futures::JsFuture::from(storage_status_js(request_persistence))
        .await
        .unwrap_or(JsValue::UNDEFINED);
    let get = |key: &str| js_sys::Reflect::get(&value, &JsValue::from_str(key)).ok();
    let bytes = |key: &str| get(key).and_then(|v| v.as_f64()).filter(|b| *b >= 0.0);
    StorageStatus {
        persisted: get("persisted").and_then(|v| v.as_bool()).unwrap_or(false),
        usage: bytes("usage"),
        quota: bytes("quota"),
    }
}

/// Storage status as a resource that asks for persistence when first read.
pub fn use_storage_status() -> LocalResource<StorageStatus> {
    LocalResource::new(|| storage_status(true))
}
