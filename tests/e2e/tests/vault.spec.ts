// The encrypted record store as a fieldworker meets it: profiles, the lock, notes that are
// never lost, and nothing readable in the browser's storage.
import { test, expect, type Page } from '@playwright/test';
import { startServer, type RunningServer } from '../support/server';
import { freshProfileDir, launchTablet } from '../support/browser';
import { screenshots, waitForOfflineReady } from '../support/app';
import { createProfile, unlock, PASSPHRASE } from '../support/profile';
import { newParticipant } from '../support/visit';

let server: RunningServer;
test.beforeAll(async () => { server = await startServer(); });
test.afterAll(async () => { await server.stop(); });

async function nav(page: Page, name: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name }).click();
}

async function newNote(page: Page) {
  await nav(page, 'Notebook');
  await page.getByRole('button', { name: 'New note' }).click();
  return page.getByLabel('Note text');
}

test('first run creates a profile; a wrong passphrase is refused; the right one unlocks', async ({ page }) => {
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'Welcome to Attune' })).toBeVisible();
  await expect(page.getByText('Nobody can recover a forgotten passphrase')).toBeVisible();
  await page.getByLabel('Passphrase', { exact: true }).fill('abc');
  await expect(page.getByTestId('strength-hint')).toHaveClass(/weak/);
  await screenshots(page, 'create-profile');
  await page.getByLabel('Your name').fill('Sam');
  await page.getByLabel('Passphrase again').fill('abc');
  await page.getByRole('button', { name: 'Create profile' }).click();
  await expect(page.getByRole('alert')).toContainText('at least 10 characters');
  await createProfile(page);

  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Unlock Attune' })).toBeVisible();
  await screenshots(page, 'unlock');
  await page.getByLabel('Passphrase', { exact: true }).fill('not the passphrase');
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByRole('alert')).toHaveText('That passphrase is not right. Check it and try again.');
  await unlock(page);
});

test('a note typed just before the browser is closed is there after reopening', async () => {
  const profile = freshProfileDir();
  let tablet = await launchTablet(profile);
  let page = await tablet.newPage();
  await page.goto(server.url);
  await createProfile(page);
  const note = await newNote(page);
  const text = 'Carer said the shared review made her cry, in a good way. Last words here';
  await note.click();
  await page.keyboard.type(text, { delay: 15 });
  await page.waitForTimeout(300);
  await tablet.close(); // no waiting for "Saved": the tablet just dies

  tablet = await launchTablet(profile);
  try {
    page = await tablet.newPage();
    await page.goto(server.url);
    await unlock(page);
    await nav(page, 'Notebook');
    await page.getByRole('link', { name: /Carer said the shared review/ }).click();
    await expect(page.getByLabel('Note text')).toHaveValue(text);
  } finally {
    await tablet.close();
  }
});

test('notes survive a reload with the network off', async ({ page, context }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  const note = await newNote(page);
  await note.fill('Offline note: dad joined halfway through.');
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await screenshots(page, 'note');
  await context.setOffline(true);
  await page.reload();
  await expect(page.getByRole('status').filter({ hasText: 'Offline' })).toBeVisible();
  await unlock(page);
  await nav(page, 'Notebook');
  await expect(page.getByRole('link', { name: /Offline note: dad joined/ })).toBeVisible();
  await screenshots(page, 'notebook');
  await context.setOffline(false);
});

test('nothing typed is readable in any IndexedDB store, in any encoding', async ({ page }) => {
  const marker = 'ZEBRAMARKER7731';
  // A participant's real name is kept on the tablet only, and sealed there too.
  const name = 'Wren Quillbury';
  await page.goto(server.url);
  await createProfile(page, 'Alex Marker-Free');
  const note = await newNote(page);
  await note.fill(`Private: ${marker} lives at 12 Acacia Road`);
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  expect(await newParticipant(page, 'Carers', name)).toBe('C-new-1');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(`C-new-1 (${name})`);

  const { dump, binaries } = await page.evaluate(async () => {
    const binaries: string[] = [];
    const toB64 = (bytes: Uint8Array) => { let s = ''; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); };
    const walk = (v: unknown): unknown => {
      const bin = (u: Uint8Array) => { binaries.push(toB64(u)); return { bytes: toB64(u), latin1: String.fromCharCode(...u) }; };
      if (v instanceof ArrayBuffer) return bin(new Uint8Array(v));
      if (ArrayBuffer.isView(v)) return bin(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      if (v instanceof Blob) return { blob: v.size };
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
      return v;
    };
    const out: Record<string, unknown> = {};
    for (const info of await indexedDB.databases()) {
      const db: IDBDatabase = await new Promise((ok, fail) => { const r = indexedDB.open(info.name!); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
      for (const storeName of Array.from(db.objectStoreNames)) {
        const tx = db.transaction(storeName, 'readonly');
        const store = tx.objectStore(storeName);
        const get = (req: IDBRequest) => new Promise<unknown>((ok, fail) => { req.onsuccess = () => ok(req.result); req.onerror = () => fail(req.error); });
        out[`${info.name}/${storeName}`] = walk({ keys: await get(store.getAllKeys()), values: await get(store.getAll()) });
        for (const indexName of Array.from(store.indexNames)) {
          out[`${info.name}/${storeName}#${indexName}`] = walk(await get(store.index(indexName).getAllKeys()));
        }
      }
      db.close();
    }
    return { dump: JSON.stringify(out), binaries };
  });

  // The dump is real: it holds the stores and the (clear) profile list.
  expect(dump).toContain('attune-profiles');
  expect(dump).toContain('Alex Marker-Free');
  expect(dump.length).toBeGreaterThan(1000);
  expect(binaries.length, 'sealed bodies are stored as bytes').toBeGreaterThan(0);
  const raw = Buffer.concat([Buffer.from(dump, 'utf8'), ...binaries.map((b) => Buffer.from(b, 'base64'))]);
  for (const secret of [marker, 'Quillbury']) {
    const forms: Record<string, Buffer | string> = {
      utf8: Buffer.from(secret, 'utf8'),
      utf16le: Buffer.from(secret, 'utf16le'),
      utf16be: Buffer.from(secret, 'utf16le').swap16(),
    };
    for (const [form, needle] of Object.entries(forms)) expect(raw.includes(needle), `${secret} ${form}`).toBe(false);
    // base64 at each of the three byte alignments (the part not touched by neighbours), and hex.
    for (let pad = 0; pad < 3; pad++) {
      const b64 = Buffer.from('\0'.repeat(pad) + secret).toString('base64').slice(pad === 0 ? 0 : 4, -4);
      expect(b64.length).toBeGreaterThan(4);
      expect(dump.includes(b64), `${secret} base64 at offset ${pad}`).toBe(false);
    }
    expect(dump.toLowerCase().includes(Buffer.from(secret).toString('hex'))).toBe(false);
    expect(dump.toLowerCase()).not.toContain(secret.toLowerCase());
  }
  expect(dump).not.toContain('Acacia');
});

test('each fieldworker on a shared tablet sees only their own notes', async ({ page }) => {
  await page.goto(server.url);
  await createProfile(page, 'Sam');
  const note = await newNote(page);
  await note.fill('Only Sam may read this');
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await page.getByRole('button', { name: 'New profile' }).click();
  await createProfile(page, 'Priya', 'another long passphrase');
  await nav(page, 'Notebook');
  await expect(page.getByText('No notes yet.')).toBeVisible();
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  // Sam's passphrase does not open Priya's profile.
  await page.getByRole('radio', { name: 'Priya' }).check();
  await page.getByLabel('Passphrase', { exact: true }).fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByRole('alert')).toContainText('not right');
  await unlock(page, 'Sam');
  await nav(page, 'Notebook');
  await expect(page.getByRole('link', { name: /Only Sam may read this/ })).toBeVisible();
});

test('the tablet locks itself after the chosen time without use, and drops what was on screen', async ({ page }) => {
  await page.clock.install();
  await page.goto(server.url);
  await createProfile(page);
  await nav(page, 'Settings');
  await page.getByRole('radio', { name: '2 min' }).check();
  await nav(page, 'Notebook');
  await page.getByRole('button', { name: 'New note' }).click();
  await page.getByLabel('Note text').fill('Secret words on screen');
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await page.clock.fastForward('01:30');
  await expect(page.getByLabel('Note text')).toBeVisible();
  await page.clock.fastForward('00:45');
  await expect(page.getByRole('heading', { name: 'Unlock Attune' })).toBeVisible();
  await expect(page.getByText('Secret words on screen')).toHaveCount(0);
  expect(await page.content()).not.toContain('Secret words on screen');
  // Unlocking returns to where the fieldworker was, with the note saved.
  await unlock(page);
  await expect(page.getByLabel('Note text')).toHaveValue('Secret words on screen');
});
