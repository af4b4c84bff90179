// Service worker registration and storage checks for the Rust side (src/pwa.rs).
// Kept in JS because these browser APIs are callback-shaped; the logic is small on purpose.

let updateRequested = false;

/** Registers /sw.js. Calls `onState(state)` with "installing", "ready" (precached, offline
 *  capable) or "unsupported", and `onUpdate()` when a new version has been installed and is
 *  waiting. The waiting version only takes over in `applyUpdate()`, which the fieldworker
 *  triggers by tapping "Update ready". */
export function registerServiceWorker(onState, onUpdate) {
  if (!('serviceWorker' in navigator)) { onState('unsupported'); return; }
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).then((reg) => {
    // A waiting worker with a controlling one means a new version is installed and waits.
    const notifyIfWaiting = () => { if (reg.waiting && navigator.serviceWorker.controller) onUpdate(); };
    const watch = (worker) => {
      worker.addEventListener('statechange', () => {
        if (worker.state === 'installed') notifyIfWaiting();
        if (worker.state === 'activated') onState('ready');
      });
    };
    notifyIfWaiting();
    if (reg.active) onState('ready'); else onState('installing');
    if (reg.installing) watch(reg.installing);
    reg.addEventListener('updatefound', () => { if (reg.installing) watch(reg.installing); });
    // Look for a new version when the tablet comes back online or the app comes to the front,
    // and every 30 minutes; never reload by itself.
    const check = () => {
      if (!navigator.onLine) return;
      reg.update().then(notifyIfWaiting, () => {});
    };
    window.addEventListener('online', check);
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') check(); });
    setInterval(check, 30 * 60 * 1000);
  }).catch((err) => { console.warn('service worker registration failed', err); onState('failed'); });
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // The first install also changes the controller (clients.claim): only reload when the
    // fieldworker asked for the update.
    if (updateRequested) window.location.reload();
  });
}

/** Activates the waiting version; the page reloads when it has taken over. */
export function applyUpdate() {
  return navigator.serviceWorker.getRegistration().then((reg) => {
    if (reg && reg.waiting) { updateRequested = true; reg.waiting.postMessage({ type: 'SKIP_WAITING' }); }
    else window.location.reload();
  });
}

/** Asks the browser to keep this origin's data (not evict it under storage pressure) and
 *  reports `{ persisted, usage, quota }` (bytes; -1 when the browser does not say).
 *  Firefox answers `persist()` only once the user has answered its permission prompt, which
 *  may be never: the answer is awaited for a moment only, and the space used is not held
 *  back by it. */
export async function storageStatus(requestPersistence) {
  const s = navigator.storage;
  if (!s) return { persisted: false, usage: -1, quota: -1 };
  let persisted = s.persisted ? await s.persisted().catch(() => false) : false;
  if (!persisted && requestPersistence && s.persist) {
    const asked = s.persist().catch(() => false);
    const wait = new Promise((ok) => setTimeout(() => ok(false), 1500));
    persisted = await Promise.race([asked, wait]);
  }
  let usage = -1, quota = -1;
  if (s.estimate) {
    try { const e = await s.estimate(); usage = e.usage ?? -1; quota = e.quota ?? -1; } catch (_) {}
  }
  return { persisted, usage, quota };
}
