// Attune's service worker. xtask/pwa/postbuild.mjs fills in VERSION and ASSETS at build time
// and writes the result to dist/sw.js.
const VERSION = '__ATTUNE_VERSION__';
const ASSETS = __ATTUNE_ASSETS__;
const CACHE = `attune-${VERSION}`;

self.addEventListener('install', (event) => {
  // Precache everything the app needs to start with no network. `cache: 'reload'` skips the
  // HTTP cache so a half-deployed version is never mixed in.
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(ASSETS.map((url) => new Request(url, { cache: 'reload' }))))
  );
  // No skipWaiting() here: a new version waits until the fieldworker taps "Update ready".
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('attune-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'SKIP_WAITING') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  // The API and health check always go to the network: they are the server's answer or nothing.
  if (url.pathname.startsWith('/api/') || url.pathname === '/healthz') return;
  // The researcher console is another app, online by design: never the tablets' shell.
  if (url.pathname === '/console' || url.pathname.startsWith('/console/')) return;
  if (request.mode === 'navigate') {
    // Every app route is the same shell; serve it from the cache so the app starts offline.
    event.respondWith(caches.open(CACHE).then((c) => c.match('/index.html')).then((r) => r || fetch(request)));
    return;
  }
  event.respondWith(caches.open(CACHE).then((c) => c.match(request, { ignoreSearch: true })).then((r) => r || fetch(request)));
});
