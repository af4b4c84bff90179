// The study key file remembered on this browser (IndexedDB), only if the researcher asks.
// The file is stored as it is on disk: its private keys stay encrypted under the passphrase
// (Argon2id), which is never stored. Forgetting deletes it.
const DB = 'attune-console';
const STORE = 'keys';
const KEY = 'study.key';

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(mode, act) {
  return open().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = act(tx.objectStore(STORE));
    tx.oncomplete = () => { db.close(); resolve(request.result); };
    tx.onerror = () => { db.close(); reject(tx.error); };
    tx.onabort = () => { db.close(); reject(tx.error); };
  }));
}

/** The remembered key file's bytes and when it was saved, or null. */
export function rememberedKey() {
  return run('readonly', (store) => store.get(KEY)).then((found) => found ?? null);
}

/** Remembers the key file's bytes (replacing any other). */
export function rememberKey(bytes) {
  return run('readwrite', (store) => store.put({ bytes: new Uint8Array(bytes), savedAt: Date.now() }, KEY));
}

/** Forgets the remembered key file. */
export function forgetKey() {
  return run('readwrite', (store) => store.delete(KEY));
}
