// Consent for carers who prefer listening and a copy for the participant: every consent item
// can be read aloud (speech synthesis, never waited for; no button where the browser has no
// speech), and a consent given can be printed (form, every answer, the signature, date, code,
// and a name typed only for the print). Withdrawal from the tablet: "Stop and withdraw their
// data" records a signed request that reaches the server, is listed as pending by
// `attune-server withdrawals`, confirmed by the study team's signed `withdraw`, and honoured by
// the export.
import { test, expect, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminCli, startServer, studyInit, type RunningServer } from '../support/server';
import { enrolTablet } from '../support/sync';
import { screenshots, screenshotDir, watchErrors } from '../support/app';
import { createProfile, unlock } from '../support/profile';
import { answerConsent, nav, newParticipant, sign, startVisit } from '../support/visit';

let server: RunningServer;
let keyFile: string;
test.beforeAll(async () => {
  server = await startServer();
  keyFile = studyInit(server);
});
test.afterAll(async () => { await server.stop(); });

/** No accessibility violation at all on the screen shown. */
async function noViolations(page: Page, screen: string) {
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => `${screen}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)).toEqual([]);
}

/** Records what the page asks the browser to say, instead of saying it. */
async function stubSpeech(page: Page) {
  await page.addInitScript(() => {
    (window as any).__spoken = [];
    const s = window.speechSynthesis;
    if (s) {
      s.speak = (u: SpeechSynthesisUtterance) => { (window as any).__spoken.push(u.text); };
      s.cancel = () => {};
    }
  });
}

/** From a visit with several participants: the consent of `code`, every item yes, signed. */
async function giveConsentOf(page: Page, code: string) {
  await page.getByRole('link', { name: new RegExp(`Consent: ${code}`) }).click();
  await answerConsent(page);
  await sign(page);
  await page.getByRole('button', { name: 'Save consent' }).click();
  await expect(page.getByRole('link', { name: new RegExp(`Consent: ${code}`) })).toContainText('Consent given');
}

async function syncNowAndWait(page: Page) {
  await nav(page, 'Sync');
  const button = page.getByRole('button', { name: 'Sync now' });
  await expect(button).toBeEnabled({ timeout: 30_000 });
  await button.click();
  await expect(page.getByRole('button', { name: 'Sync now' })).toBeEnabled({ timeout: 60_000 });
}

function exportAll(): { csv: string; manifest: any } {
  const out = mkdtempSync(join(tmpdir(), 'attune-export-'));
  adminCli(server, ['export', '--key', keyFile, '--out', out]);
  return {
    csv: readFileSync(join(out, 'records.csv'), 'utf8'),
    manifest: JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')),
  };
}

test('each consent item is read aloud on request and a consent given prints as a copy', async ({ page, context }) => {
  const errors = watchErrors(page);
  await stubSpeech(page);
  await page.goto(server.url);
  await createProfile(page);
  const code = await newParticipant(page, 'Carers');
  await startVisit(page, [code]);
  await page.getByRole('link', { name: new RegExp(`Consent: ${code}`) }).click();
  const consentUrl = page.url();

  // One "Read aloud" per item; tapping one says that item's words, which stay on screen.
  const items = page.locator('fieldset.consent-item');
  const n = await items.count();
  expect(n).toBeGreaterThan(5);
  await expect(page.getByRole('button', { name: /^Read aloud item/ })).toHaveCount(n);
  const texts: string[] = [];
  for (let i = 0; i < n; i++) texts.push(((await items.nth(i).locator('legend').textContent()) ?? '').replace(' (optional)', '').trim());
  await items.nth(0).getByRole('button', { name: 'Read aloud' }).click();
  await items.nth(2).getByRole('button', { name: 'Read aloud' }).click();
  expect(await page.evaluate(() => (window as any).__spoken)).toEqual([texts[0], texts[2]]);
  await expect(items.nth(2).locator('legend')).toContainText(texts[2]);
  await screenshots(page, 'consent-read-aloud');

  // Every item yes but the first optional one, signed, saved.
  let no = -1;
  for (let i = 0; i < n && no < 0; i++) if (((await items.nth(i).locator('legend').textContent()) ?? '').includes('(optional)')) no = i;
  expect(no).toBeGreaterThanOrEqual(0);
  for (let i = 0; i < n; i++) await items.nth(i).getByRole('radio', { name: i === no ? 'No' : 'Yes' }).check();
  await sign(page);
  await page.getByRole('button', { name: 'Save consent' }).click();
  await expect(page.getByText('Consent given')).toBeVisible();

  // The copy, from the participant's page: the form, every answer, the signature, date, code.
  await nav(page, 'Participants');
  await page.getByRole('link', { name: new RegExp(`^${code}`) }).click();
  await page.getByRole('link', { name: /Copy of consent to print/ }).click();
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  await expect(page.getByText(/^Version /)).toBeVisible();
  await expect(page.getByTestId('copy-code')).toHaveText(code);
  await expect(page.getByTestId('copy-date')).toContainText(String(new Date().getFullYear()));
  await expect(page.getByTestId('copy-deadline')).toHaveText('31 March 2027');
  const copied = page.getByTestId('copy-item');
  await expect(copied).toHaveCount(n);
  for (let i = 0; i < n; i++) {
    await expect(copied.nth(i)).toContainText(texts[i]);
    await expect(copied.nth(i)).toContainText(i === no ? 'Answer: No' : 'Answer: Yes');
  }
  const signature = page.getByTestId('copy-signature');
  await expect(signature).toBeVisible();
  await expect(signature).toHaveAttribute('src', /^data:image\/png;base64,/);
  expect(await signature.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
  await noViolations(page, 'consent copy');

  // A name typed for the print only: on the printed page, never kept.
  await page.getByLabel('Name to print on this copy (optional, not saved)').fill('Dana Fernsby');
  await page.evaluate(() => { (window as any).__printed = 0; window.print = () => { (window as any).__printed++; }; });
  await page.getByRole('button', { name: 'Print' }).click();
  expect(await page.evaluate(() => (window as any).__printed)).toBe(1);
  await noViolations(page, 'consent copy with a name');
  await screenshots(page, 'consent-copy');
  await page.emulateMedia({ media: 'print' });
  await expect(page.getByRole('button', { name: 'Print' })).toBeHidden();
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeHidden();
  await expect(page.getByText('Dana Fernsby')).toBeVisible();
  await screenshots(page, 'consent-copy-print');
  await page.pdf({ path: join(screenshotDir, 'consent-copy.pdf'), format: 'A4' }).catch(() => undefined);
  await page.emulateMedia({ media: 'screen' });
  const copyUrl = page.url();
  await page.reload();
  await unlock(page);
  await expect(page).toHaveURL(copyUrl);
  await expect(page.getByLabel('Name to print on this copy (optional, not saved)')).toHaveValue('');
  expect(errors).toEqual([]);

  // A browser without speech: no buttons, and the screen says to read the items out.
  const quiet = await context.newPage();
  await quiet.addInitScript(() => { Object.defineProperty(window, 'speechSynthesis', { value: undefined, configurable: true }); });
  await quiet.goto(consentUrl);
  await unlock(quiet);
  await expect(quiet.getByTestId('no-speech')).toBeVisible();
  await expect(quiet.getByRole('button', { name: /^Read aloud/ })).toHaveCount(0);
  await expect(quiet.locator('fieldset.consent-item').first()).toBeVisible();
  await quiet.close();
});

test('a withdrawal requested on the tablet is pending on the server until the study team confirms it', async ({ page }) => {
  const marker = `WRENMARK${Date.now() % 100000}`;
  await page.goto(server.url);
  await createProfile(page, 'Robin');
  await enrolTablet(page, server, keyFile, 'Robin');
  const code = await newParticipant(page, 'Carers');
  const other = await newParticipant(page, 'Carers');
  await startVisit(page, [code, other]);
  const visitUrl = page.url();
  await giveConsentOf(page, code);
  await giveConsentOf(page, other);
  await page.getByRole('link', { name: new RegExp(`Interview: ${code}`) }).click();
  await page.getByLabel('Notes', { exact: true }).first().fill(`${code} said ${marker}.`);
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');

  // On the participant page: "Stop and withdraw their data", a confirm step in plain words.
  await nav(page, 'Participants');
  await page.getByRole('link', { name: new RegExp(`^${code}`) }).click();
  await page.getByRole('button', { name: 'Stop and withdraw their data' }).click();
  const confirm = page.getByTestId('withdraw-confirm');
  await expect(confirm).toContainText('no new interviews or activities');
  await expect(confirm).toContainText('The study team confirms the request');
  await noViolations(page, 'withdraw confirm');
  await screenshots(page, 'withdraw-confirm');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('withdraw-confirm')).toHaveCount(0);
  await page.getByRole('button', { name: 'Stop and withdraw their data' }).click();
  await page.getByRole('button', { name: 'Yes, withdraw their data' }).click();
  await expect(page.getByTestId('withdrawal-requested')).toContainText('Withdrawal requested, waiting for the study team');
  await expect(page.getByTestId('participant-status')).toHaveText('Withdrawal requested');
  await expect(page.getByRole('button', { name: 'Stop and withdraw their data' })).toHaveCount(0);
  await screenshots(page, 'withdraw-requested');

  // No new interview or visit for them.
  await page.goto(visitUrl);
  await unlock(page, 'Robin');
  await expect(page.getByRole('link', { name: new RegExp(`Interview: ${code}`) })).toHaveCount(0);
  await expect(page.getByRole('link', { name: new RegExp(`Consent: ${code}`) })).toHaveCount(0);
  await expect(page.getByText(`Interview: ${code}`)).toBeVisible();
  await expect(page.getByRole('link', { name: new RegExp(`Interview: ${other}`) })).toBeVisible();
  await nav(page, 'Home');
  await page.getByRole('link', { name: 'Start visit' }).click();
  await expect(page.getByRole('checkbox', { name: new RegExp(`^${other}`) })).toBeVisible();
  await expect(page.getByRole('checkbox', { name: new RegExp(`^${code}`) })).toHaveCount(0);

  // Synced: the server lists the request as pending, with who and where, without the key.
  await syncNowAndWait(page);
  await expect(page.getByTestId('sync-visit').first()).toContainText('Confirmed on the server', { timeout: 60_000 });
  const pending = adminCli(server, ['withdrawals']);
  const row = pending.split('\n').find((line) => line.split('\t')[1] === code);
  expect(row, pending).toBeTruthy();
  const [participantId, , , fieldworker, , , status] = row!.split('\t');
  expect(fieldworker).toBe('Robin');
  expect(status).toBe('pending');
  let exported = exportAll();
  expect(exported.csv).toContain(marker);
  expect(exported.manifest.pending_withdrawal_requests).toBe(1);
  expect(exported.manifest.withdrawal_requests.find((r: any) => r.participant_code === code)).toMatchObject({ participant_id: participantId, status: 'pending' });

  // The study team confirms with the signed withdrawal: confirmed, and the export leaves them out.
  expect(adminCli(server, ['withdraw', '--key', keyFile, '--participant-id', participantId])).toContain('study instruction');
  const confirmed = adminCli(server, ['withdrawals']);
  expect(confirmed.split('\n').find((line) => line.startsWith(participantId))).toContain('confirmed');
  exported = exportAll();
  expect(exported.csv).not.toContain(marker);
  expect(exported.csv).toContain(other);
  expect(exported.manifest.pending_withdrawal_requests).toBe(0);

  // The tablet receives it and deletes their data.
  await syncNowAndWait(page);
  await expect(page.getByTestId('sync-purged')).toContainText(code);
  await nav(page, 'Participants');
  await expect(page.getByRole('link', { name: new RegExp(`^${other}`) })).toBeVisible();
  await expect(page.getByRole('link', { name: new RegExp(`^${code}`) })).toHaveCount(0);
});
