// Sync with a real attune-server: enrolment, a visit captured offline reaching the server
// sealed, the export that opens it, and a withdrawal made with the CLI reaching the tablet.
import { test, expect, chromium, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdtempSync, readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminCli, enrolCode, startServer, studyInit, type RunningServer } from '../support/server';
import { enrolTablet, fillEnrolment } from '../support/sync';
import { screenshots, waitForOfflineReady } from '../support/app';
import { createProfile, unlock } from '../support/profile';
import { chromiumArgs, chromiumPath, freshProfileDir, launchTablet } from '../support/browser';
import { giveConsent, nav, newParticipant, recordFor, startVisit } from '../support/visit';

let server: RunningServer;
let keyFile: string;
test.beforeAll(async () => {
  server = await startServer();
  keyFile = studyInit(server);
});
test.afterAll(async () => { await server.stop(); });

/** No serious or critical accessibility violation on the screen shown. */
async function accessible(page: Page, screen: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${screen}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)).toEqual([]);
}

/** Every file under a folder (the server's data directory). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Whether `bytes` hold `secret` in clear, as UTF-8/UTF-16, base64 (any alignment) or hex. */
function holdsInAnyEncoding(bytes: Buffer, secret: string): string | null {
  const text = bytes.toString('latin1');
  const forms: Record<string, Buffer> = {
    utf8: Buffer.from(secret, 'utf8'),
    utf16le: Buffer.from(secret, 'utf16le'),
    hex: Buffer.from(Buffer.from(secret).toString('hex')),
    HEX: Buffer.from(Buffer.from(secret).toString('hex').toUpperCase()),
  };
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.from('\0'.repeat(pad) + secret).toString('base64').slice(pad === 0 ? 0 : 4, -4);
    forms[`base64+${pad}`] = Buffer.from(b64);
    forms[`base64url+${pad}`] = Buffer.from(b64.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  for (const [name, needle] of Object.entries(forms)) if (bytes.includes(needle)) return name;
  if (text.toLowerCase().includes(secret.toLowerCase())) return 'any case';
  return null;
}

/** Exports with the study key: the CSVs (concatenated) and every file written. */
function exportAll(): { csv: string; files: string[]; dir: string } {
  const out = mkdtempSync(join(tmpdir(), 'attune-export-'));
  adminCli(server, ['export', '--key', keyFile, '--out', out]);
  const files = filesUnder(out).map((f) => f.slice(out.length + 1));
  const csv = files.filter((f) => f.endsWith('.csv'));
  expect(csv.length).toBeGreaterThan(0);
  return { csv: csv.map((f) => readFileSync(join(out, f), 'utf8')).join('\n'), files, dir: out };
}

/** Enrols the unlocked profile with a fresh code and the study fingerprint from the CLI. */
async function enrol(page: Page, fieldworker: string) {
  await enrolTablet(page, server, keyFile, fieldworker);
  // The first sync reserves the tablet's participant codes.
  await expect(page.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });
}

async function syncNowAndWait(page: Page) {
  const button = page.getByRole('button', { name: 'Sync now' });
  await expect(button).toBeEnabled({ timeout: 30_000 });
  await button.click();
  await expect(page.getByRole('button', { name: 'Sync now' })).toBeEnabled({ timeout: 60_000 });
}

test('enrol, capture a visit offline, sync it sealed; a CLI withdrawal purges the tablet', async ({ page, context }) => {
  const marker = `HERONMARK${Date.now() % 100000}`;
  const name = 'Dana Fernsby';
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);

  // Enrolment: a wrong code is refused in words; so is a wrong study fingerprint (before the
  // code is spent: the same code then works); the real pair enrols.
  await nav(page, 'Sync');
  await expect(page.getByRole('heading', { name: 'Enrol this tablet' })).toBeVisible();
  await expect(page.getByLabel('Server address')).toHaveValue(server.url.replace(/\/$/, ''));
  const { code, fingerprint } = enrolCode(server, keyFile, 'Sam');
  await fillEnrolment(page, 'AAAA-BBBB-CCCC', fingerprint);
  await expect(page.getByTestId('enrol-error')).toContainText('not right');
  const wrong = fingerprint.replace(/^./, (c) => (c === '7' ? '8' : '7'));
  await fillEnrolment(page, code, wrong);
  await expect(page.getByTestId('enrol-error')).toContainText('does not match');
  await expect(page.getByTestId('enrol-error')).toContainText('Your code was not used');
  await accessible(page, 'sync enrol');
  await screenshots(page, 'sync-enrol');
  // Typed as a tired fieldworker might: lower case, spaces for dashes.
  await fillEnrolment(page, code.toLowerCase(), fingerprint.toLowerCase().replace(/-/g, ' '));
  await expect(page.getByRole('heading', { name: 'Send your work to the research team' })).toBeVisible();
  expect(adminCli(server, ['device', 'list'])).toContain('Sam');
  // The first sync reserves the tablet's participant codes: C01 on is this tablet's.
  await expect(page.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });

  // Offline: two participants, a visit with consent and an interview note.
  await context.setOffline(true);
  expect(await newParticipant(page, 'Carers', name)).toBe('C01');
  expect(await newParticipant(page, 'Carers')).toBe('C02');
  await startVisit(page, ['C01']);
  await giveConsent(page, 'C01');
  await page.getByRole('link', { name: /Interview: C01/ }).click();
  await recordFor(page, 3);
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.locator('[data-testid="playback"] audio')).toHaveCount(1, { timeout: 20_000 });
  const question = (await page.locator('.question h2').textContent())!.trim();
  expect(question.length).toBeGreaterThan(5);
  await page.getByLabel('Notes', { exact: true }).fill(`She said ${marker} helped a lot.`);
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await startVisit(page, ['C02']);

  await nav(page, 'Sync');
  const visits = page.getByTestId('sync-visit');
  await expect(visits).toHaveCount(2);
  await expect(visits.filter({ hasText: 'C01' })).toContainText('Saved on this tablet');
  await page.getByRole('button', { name: 'Sync now' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'This tablet is offline' })).toBeVisible();

  // Back online: sync starts by itself; every visit ends confirmed.
  await context.setOffline(false);
  await expect(visits.filter({ hasText: 'C01' })).toContainText('Confirmed on the server', { timeout: 60_000 });
  await expect(visits.filter({ hasText: 'C02' })).toContainText('Confirmed on the server');
  await expect(page.getByTestId('sync-last')).toContainText('Last sync');
  await accessible(page, 'sync');
  await screenshots(page, 'sync');

  // The export opens it with the study key; the server's files hold no plaintext.
  const exported = exportAll();
  expect(exported.csv).toContain(marker);
  // The recording was uploaded (sealed) and comes out of the export as a file of C01's.
  expect(exported.files.filter((f) => f.includes('C01') && f.startsWith('attachments'))).toHaveLength(1);
  // Ready for analysis: the note beside its question's words in interview_notes.csv, laid
  // out under its question in the REFI-QDA project, and in the interview's Word and ELAN files.
  const notes = readFileSync(join(exported.dir, 'interview_notes.csv'), 'utf8');
  const row = notes.split('\r\n').find((line) => line.includes(marker));
  expect(row, 'the note is a row of interview_notes.csv').toBeTruthy();
  expect(row).toContain(question);
  expect(row).toMatch(/,C01,carers,/);
  const qdpx = readFileSync(join(exported.dir, 'attune.qdpx'));
  expect(qdpx.includes(Buffer.from(`${question}\nShe said ${marker} helped a lot.`)), 'the note under its question in the project').toBe(true);
  expect(exported.files.some((f) => /^interviews\/C01-\d{4}-\d\d-\d\d-1\.docx$/.test(f))).toBe(true);
  expect(exported.files.some((f) => /^elan\/C01-.*\.eaf$/.test(f)), 'the recorded interview has an ELAN file').toBe(true);
  const serverFiles = filesUnder(server.dataDir);
  expect(serverFiles.some((f) => f.endsWith('attune.db'))).toBe(true);
  expect(serverFiles.filter((f) => f.includes(`${join(server.dataDir, 'blobs')}`))).toHaveLength(1);
  for (const file of serverFiles) {
    const bytes = readFileSync(file);
    for (const secret of [marker, 'Fernsby']) {
      expect(holdsInAnyEncoding(bytes, secret), `${secret} in ${file}`).toBeNull();
    }
  }

  // The study team withdraws C01 with the CLI (resolved to this tablet's C01, signed with the
  // study signing key); the next sync purges them from the tablet.
  expect(adminCli(server, ['withdraw', '--key', keyFile, '--participant', 'C01'])).toContain('study instruction');
  await syncNowAndWait(page);
  await expect(page.getByTestId('sync-purged')).toContainText('C01');
  await expect(visits.filter({ hasText: 'C01' })).toHaveCount(0);
  await screenshots(page, 'sync-purged');
  await nav(page, 'Participants');
  await expect(page.getByRole('link', { name: /^C02/ })).toBeVisible();
  await expect(page.getByRole('link', { name: /^C01/ })).toHaveCount(0);
  const after = exportAll();
  expect(after.csv).not.toContain(marker);
  expect(after.csv).toContain('C02');
  expect(after.files.filter((f) => f.includes('C01'))).toEqual([]);
  // The tablet's record of the purge reached the server: the team can see it was done.
  const purge = after.csv.split('\n').find((line) => line.includes('"purge"') && line.includes('""participant_code"":""C01""'));
  expect(purge, 'the purge record is in the export').toBeTruthy();
});

test('a recording cut off when the tablet died is finished at the next unlock and sent', async () => {
  const profile = freshProfileDir();
  let tablet = await launchTablet(profile);
  let page = await tablet.newPage();
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page, 'Robin');
  await enrol(page, 'Robin');
  const code = await newParticipant(page, 'Managers');
  await startVisit(page, [code]);
  await giveConsent(page, code);
  await page.getByRole('link', { name: new RegExp(`Interview: ${code}`) }).click();
  await tablet.setOffline(true); // no sync while recording
  await recordFor(page, 6);
  await tablet.close(); // the tablet dies mid-recording: the recording is never stopped

  tablet = await launchTablet(profile);
  try {
    page = await tablet.newPage();
    await page.goto(server.url);
    await unlock(page, 'Robin');
    await nav(page, 'Sync');
    await syncNowAndWait(page);
    const visits = page.getByTestId('sync-visit');
    await expect(visits.filter({ hasText: code })).toContainText('Confirmed on the server', { timeout: 60_000 });
    const exported = exportAll();
    const audio = exported.files.filter((f) => f.startsWith(`attachments/${code}-`));
    expect(audio).toHaveLength(1);
    // At least two 2 s chunks were saved before the tablet died, and all of them came out.
    expect(statSync(join(exported.dir, audio[0])).size).toBeGreaterThan(8_000);
    const manifest = JSON.parse(readFileSync(join(exported.dir, 'manifest.json'), 'utf8'));
    expect(manifest.attachment_problems.filter((p: { participant_code: string }) => p.participant_code === code)).toEqual([]);
  } finally {
    await tablet.close();
  }
});

test('a sync cut off at any point (lost answer, dead connection, offline) resumes and sends every revision once', async ({ page, context }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page, 'Kit');
  await enrol(page, 'Kit');

  // 250 revisions of one notebook note, each committed by the app's own save path.
  await nav(page, 'Notebook');
  await page.getByRole('button', { name: 'New note' }).click();
  await page.getByLabel('Note text').click();
  for (let i = 0; i < 250; i++) {
    const t0 = Date.now();
    await page.keyboard.type(i % 10 === 9 ? ' ' : 'k');
    await page.waitForFunction((t) => Number(document.querySelector('[data-testid="save-status"]')?.getAttribute('data-saved-at') || 0) >= t, t0);
  }
  await nav(page, 'Sync');
  const waiting = page.getByTestId('sync-waiting');
  await expect(waiting).toContainText(/\d+ records are waiting/);
  const count = Number(((await waiting.textContent()) ?? '').match(/(\d+) records/)![1]);
  expect(count).toBeGreaterThanOrEqual(250);

  // The first batch goes through; the second reaches the server, which commits it, but its
  // answer is lost; every later one dies with the connection. Then the tablet goes offline.
  let pushes = 0;
  await page.route('**/api/push', async (route) => {
    pushes += 1;
    if (pushes === 1) return route.fulfill({ response: await route.fetch() });
    if (pushes === 2) { await route.fetch(); return route.abort('connectionreset'); }
    return route.abort('connectionreset');
  });
  await page.getByRole('button', { name: 'Sync now' }).click();
  await expect.poll(() => pushes, { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
  await context.setOffline(true);
  await expect(page.getByRole('button', { name: 'Sync now' })).toBeEnabled();
  await expect(waiting).toContainText(/\d+ records are waiting/);

  // Back online with a good connection: sync starts by itself and ends with nothing waiting.
  await page.unroute('**/api/push');
  await context.setOffline(false);
  await expect(waiting).toContainText('Nothing is waiting', { timeout: 60_000 });

  // The server holds each of the note's revisions exactly once, none missing.
  const exported = exportAll();
  const json = JSON.parse(readFileSync(join(exported.dir, 'records.json'), 'utf8'));
  const notes = json.records.filter((r: { kind: string }) => r.kind === 'field_note');
  expect(notes).toHaveLength(1);
  const revs = notes[0].revisions.map((r: { rev: number }) => r.rev);
  expect(revs).toEqual(Array.from({ length: count }, (_, i) => i + 1));
});

test('a study instruction altered on the way is refused, a withheld one is missing, and both say so in words', async ({ page }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page, 'Lee');
  await enrol(page, 'Lee');
  const first = await newParticipant(page, 'VIG professionals');
  const second = await newParticipant(page, 'VIG professionals');
  await nav(page, 'Sync');
  await syncNowAndWait(page);
  await expect(page.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });

  // The study team withdraws the first; on the way the withdrawal is changed to name the
  // second (as a compromised server or network could): its signature no longer holds.
  adminCli(server, ['withdraw', '--key', keyFile, '--participant', first]);
  await page.route('**/api/pull**', async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    for (const m of body.messages) if (m.participant_code === first) m.participant_code = second;
    await route.fulfill({ response, json: body });
  });
  await syncNowAndWait(page);
  const instructions = page.getByTestId('sync-instructions');
  await expect(instructions).toContainText('was refused: it is not signed by your study team');
  await expect(page.getByTestId('sync-purged')).toHaveCount(0);
  await accessible(page, 'sync refused instruction');
  await screenshots(page, 'sync-refused');

  // Now the server withholds the first withdrawal and sends the next one (of the second).
  adminCli(server, ['withdraw', '--key', keyFile, '--participant', second]);
  await page.unroute('**/api/pull**');
  await page.route('**/api/pull**', async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.messages = body.messages.filter((m: { participant_code?: string }) => m.participant_code !== first);
    await route.fulfill({ response, json: body });
  });
  await syncNowAndWait(page);
  await expect(instructions).toContainText('A study instruction is missing');
  await expect(page.getByTestId('sync-purged')).toHaveCount(0);
  await nav(page, 'Participants');
  await expect(page.getByRole('link', { name: new RegExp(`^${first}`) })).toBeVisible();
  await expect(page.getByRole('link', { name: new RegExp(`^${second}`) })).toBeVisible();

  // Delivered as signed, both are applied in order.
  await page.unroute('**/api/pull**');
  await nav(page, 'Sync');
  await syncNowAndWait(page);
  await expect(page.getByTestId('sync-purged')).toContainText(first);
  await expect(page.getByTestId('sync-purged')).toContainText(second);
  await expect(instructions).toHaveCount(0);
});

test('opened over plain http from another machine, the tablet refuses to enrol and says why', async () => {
  // attune.test resolves to this machine, but the browser sees a plain-http page from another
  // host: not a secure context (unlike http://localhost).
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [...chromiumArgs, '--host-resolver-rules=MAP attune.test 127.0.0.1'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 768, height: 1024 } });
    await page.goto(`http://attune.test:${server.port}/`);
    expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
    await createProfile(page);
    await nav(page, 'Sync');
    await expect(page.getByTestId('enrol-insecure')).toContainText('opened over plain http');
    await expect(page.getByTestId('enrol-insecure')).toContainText('https://');
    const { code, fingerprint } = enrolCode(server, keyFile, 'Noor');
    await fillEnrolment(page, code, fingerprint);
    await expect(page.getByTestId('enrol-error')).toContainText('opened over plain http');
    await expect(page.getByRole('heading', { name: 'Enrol this tablet' })).toBeVisible();
    await screenshots(page, 'enrol-insecure');
  } finally {
    await browser.close();
  }
});
