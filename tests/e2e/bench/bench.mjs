// Measurements for `cargo xtask bench` (which holds the budgets and prints the table).
//   node bench/bench.mjs DIST SERVER_BIN  -> one JSON object on stdout
import { brotliCompressSync, constants } from 'node:zlib';
import { readFileSync, readdirSync, statSync, mkdtempSync } from 'node:fs';
import { join, extname } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { chromium } from '@playwright/test';

const [dist, serverBin] = process.argv.slice(2);
if (!dist || !serverBin) { console.error('usage: bench.mjs DIST SERVER_BIN'); process.exit(2); }
const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'];
const log = (...a) => console.error('bench:', ...a);

// What the first load fetches: the page, its styles, scripts (incl. the service worker) and wasm.
function firstLoadBrotli() {
  const files = [];
  const walk = (d) => { for (const n of readdirSync(d)) { const p = join(d, n); if (statSync(p).isDirectory()) walk(p); else files.push(p); } };
  walk(dist);
  let total = 0;
  for (const f of files.filter((f) => ['.html', '.css', '.js', '.wasm'].includes(extname(f)))) {
    total += brotliCompressSync(readFileSync(f), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  }
  return total / 1024;
}

const freePort = () => new Promise((ok) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });

async function startServer(port, dataDir = mkdtempSync(join(tmpdir(), 'attune-bench-'))) {
  const child = spawn(serverBin, ['serve'], { env: { ...process.env, ATTUNE_ADDR: `127.0.0.1:${port}`, ATTUNE_DIST: dist, ATTUNE_DATA_DIR: dataDir, RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (/listening on/.test(out)) ok(); });
    child.once('exit', (c) => fail(new Error(`server exited ${c}`)));
  });
  return child;
}

const launch = (dir) => chromium.launchPersistentContext(dir, { executablePath: '/usr/bin/chromium', args: chromiumArgs, headless: true, viewport: { width: 768, height: 1024 } });

// Cold start with the server down: install the app once, stop the server, then launch a fresh
// browser process on the same profile and time navigation -> first screen rendered (the lock
// screen, read from IndexedDB: the first thing a fieldworker can act on).
async function coldOfflineStart(runs) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const profile = mkdtempSync(join(tmpdir(), 'attune-bench-profile-'));
  const server = await startServer(port);
  let ctx = await launch(profile);
  let page = await ctx.newPage();
  await page.goto(url);
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration();
    return reg?.active?.state === 'activated' && !!navigator.serviceWorker.controller;
  }, undefined, { timeout: 60_000 });
  await page.waitForFunction(async () => !!(await caches.match('/index.html')));
  // Chromium writes the service worker registration to the profile lazily; a browser closed
  // the same instant can come back without it (as a tablet switched off at once might).
  await page.waitForTimeout(2000);
  await ctx.close();
  server.kill('SIGTERM');
  await new Promise((ok) => server.once('exit', ok));
  const times = [];
  for (let i = 0; i < runs; i++) {
    ctx = await launch(profile);
    page = await ctx.newPage();
    const t0 = performance.now();
    await page.goto(url);
    await page.getByRole('heading', { name: /Welcome to Attune|Unlock Attune/ }).waitFor();
    times.push(performance.now() - t0);
    await ctx.close();
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], runs: times };
}

const passphrase = 'copper kettle river 42';

/** The first-run form: a profile "Bench" with the bench passphrase. */
async function createProfile(page) {
  await page.getByLabel('Your name').fill('Bench');
  await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
  await page.getByLabel('Passphrase again').fill(passphrase);
  await page.getByRole('button', { name: 'Create profile' }).click();
  await page.getByTestId('profile-name').waitFor({ timeout: 60_000 });
}

// Unlocking runs Argon2id with the vault's parameters: the time a fieldworker waits at the
// lock screen. Median of 5 unlocks of the same profile.
async function unlockTime(runs) {
  const port = await freePort();
  const server = await startServer(port);
  const ctx = await launch(mkdtempSync(join(tmpdir(), 'attune-bench-profile-')));
  try {
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await createProfile(page);
    const times = [];
    for (let i = 0; i < runs; i++) {
      await page.getByRole('button', { name: 'Lock' }).click();
      await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
      const t0 = performance.now();
      await page.getByRole('button', { name: 'Unlock' }).click();
      await page.getByTestId('profile-name').waitFor({ timeout: 60_000 });
      times.push(performance.now() - t0);
    }
    // Save latency: key press in a note -> the write is committed (the indicator's time).
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Notebook' }).click();
    await page.getByRole('button', { name: 'New note' }).click();
    await page.getByLabel('Note text').click();
    const saves = [];
    for (let i = 0; i < 21; i++) {
      const t0 = Date.now();
      await page.keyboard.type('x');
      const savedAt = await page.waitForFunction((t) => {
        const at = Number(document.querySelector('[data-testid="save-status"]')?.dataset.savedAt || 0);
        return at >= t ? at : false;
      }, t0);
      saves.push((await savedAt.jsonValue()) - t0);
      await page.waitForTimeout(50);
    }
    times.sort((a, b) => a - b);
    saves.sort((a, b) => a - b);
    return { median: times[Math.floor(times.length / 2)], runs: times, save: saves[Math.floor(saves.length / 2)], saves };
  } finally {
    await ctx.close();
    server.kill('SIGTERM');
  }
}

// Sync of 1,000 records from the browser to the server: a fieldworker's note typed key by
// key (each save is one revision in the outbox, made by the app's own save path) until
// 1,000 wait, then "Sync now" to "Nothing is waiting" (every revision confirmed).
async function syncThousand() {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-bench-'));
  const server = await startServer(port, dataDir);
  const admin = (args) => execFileSync(serverBin, args, { env: { ...process.env, ATTUNE_DATA_DIR: dataDir, ATTUNE_STUDY_PASSPHRASE: 'bench study passphrase 1', RUST_LOG: 'warn' }, encoding: 'utf8' });
  admin(['study', 'init', '--key-out', join(dataDir, 'study.key')]);
  const code = admin(['enrol', 'create', '--fieldworker', 'Bench']).trim();
  const ctx = await launch(mkdtempSync(join(tmpdir(), 'attune-bench-profile-')));
  try {
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await createProfile(page);
    const nav = (name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
    await nav('Sync');
    await page.getByLabel('Enrolment code').fill(code);
    await page.getByRole('button', { name: 'Enrol this tablet' }).click();
    await page.getByTestId('sync-waiting').waitFor();
    await nav('Notebook');
    await page.getByRole('button', { name: 'New note' }).click();
    await page.getByLabel('Note text').click();
    const target = 1000;
    for (let i = 0; i < target; i++) {
      const t0 = Date.now();
      await page.keyboard.type(i % 10 === 9 ? ' ' : 'x');
      await page.waitForFunction((t) => Number(document.querySelector('[data-testid="save-status"]')?.dataset.savedAt || 0) >= t, t0);
    }
    await nav('Sync');
    const waiting = page.getByTestId('sync-waiting');
    await waiting.filter({ hasText: /\d+ records are waiting/ }).waitFor({ timeout: 60_000 });
    const count = Number(((await waiting.textContent()) ?? '').match(/(\d+) records/)[1]);
    if (count < target) throw new Error(`only ${count} revisions in the outbox`);
    const t0 = performance.now();
    await page.getByRole('button', { name: 'Sync now' }).click();
    await waiting.filter({ hasText: 'Nothing is waiting' }).waitFor({ timeout: 300_000 });
    const ms = performance.now() - t0;
    return { ms: ms * (target / count), count, raw: ms };
  } finally {
    await ctx.close();
    server.kill('SIGTERM');
  }
}

const result = { first_load_brotli_kb: firstLoadBrotli() };
log(`first load ${result.first_load_brotli_kb.toFixed(1)} KB brotli`);
const cold = await coldOfflineStart(5);
log(`cold offline start runs (ms): ${cold.runs.map((t) => t.toFixed(0)).join(', ')}`);
result.cold_offline_start_ms = cold.median;
const unlock = await unlockTime(5);
log(`unlock runs (ms): ${unlock.runs.map((t) => t.toFixed(0)).join(', ')}`);
result.unlock_ms = unlock.median;
log(`save latency (ms): ${unlock.saves.join(', ')}`);
result.save_latency_ms = unlock.save;
const sync = await syncThousand();
log(`sync of ${sync.count} revisions: ${sync.raw.toFixed(0)} ms (scaled to 1,000: ${sync.ms.toFixed(0)} ms)`);
result.sync_1000_ms = sync.ms;
console.log(JSON.stringify(result));
