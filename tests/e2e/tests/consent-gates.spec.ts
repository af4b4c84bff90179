// Consent governs what the app allows, in words on the visit hub: a form change published as
// needing re-consent flags a carer who consented on the old form ("Re-consent needed", on the
// hub and their page) while their old consent and notes stay and still export, until their
// consent is recorded on the new form; a "no" to a required item blocks the interview (a
// typed address too) and the child's invitation; a note flagged as a quote from a carer who
// said no to quotes is marked "Not agreed for quotes", in the app and in the export.
import { test, expect, type Page } from '@playwright/test';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { adminCli, startServer, studyInit, type RunningServer } from '../support/server';
import { enrolTablet } from '../support/sync';
import { screenshotDir, waitForOfflineReady } from '../support/app';
import { createProfile, unlock } from '../support/profile';
import { answerConsent, giveConsent, nav, newParticipant, sign, startVisit } from '../support/visit';

let server: RunningServer;
let keyFile: string;
// A server per test: each tablet's codes start at C01 (the server reserves them per study).
test.beforeEach(async () => {
  server = await startServer();
  keyFile = studyInit(server);
});
test.afterEach(async () => { await server.stop(); });

const protocolPath = resolve(__dirname, '..', '..', '..', 'crates', 'core', 'protocols', 'vig-evaluation.json');

function protocolFile(edit: (protocol: any) => void): string {
  const protocol = JSON.parse(readFileSync(protocolPath, 'utf8'));
  edit(protocol);
  const file = join(mkdtempSync(join(tmpdir(), 'attune-protocol-')), 'vig-evaluation.json');
  writeFileSync(file, JSON.stringify(protocol, null, 2));
  return file;
}

function carersForm(protocol: any): any {
  return protocol.consent_forms.find((f: { id: string }) => f.id === 'consent-carers');
}

/** Exports with the study key: records.csv and records.json. */
function exportAll(): { csv: string; json: string } {
  const out = mkdtempSync(join(tmpdir(), 'attune-export-'));
  adminCli(server, ['export', '--key', keyFile, '--out', out]);
  return { csv: readFileSync(join(out, 'records.csv'), 'utf8'), json: readFileSync(join(out, 'records.json'), 'utf8') };
}

async function syncNow(page: Page) {
  await nav(page, 'Sync');
  const button = page.getByRole('button', { name: 'Sync now' });
  await expect(button).toBeEnabled({ timeout: 30_000 });
  await button.click();
  await expect(page.getByRole('button', { name: 'Sync now' })).toBeEnabled({ timeout: 60_000 });
}

async function hubScreenshot(page: Page, name: string) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.setViewportSize({ width: 768, height: 1024 });
  await page.screenshot({ path: join(screenshotDir, `${name}-768x1024.png`), fullPage: true });
}

test('a form change that needs re-consent flags the carer until they consent again; the old consent and notes stay and export', async ({ page }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await enrolTablet(page, server, keyFile, 'Sam');
  await expect(page.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });

  // C01 consents on the carers' form in use (1.1) and is interviewed.
  const oldVersion: string = carersForm(JSON.parse(readFileSync(protocolPath, 'utf8'))).version;
  expect(await newParticipant(page, 'Carers')).toBe('C01');
  await startVisit(page, ['C01']);
  const visitUrl = page.url();
  await giveConsent(page, 'C01');
  await page.getByRole('link', { name: /Interview: C01/ }).click();
  await page.getByLabel('Notes', { exact: true }).fill('Said under the old form.');
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');

  // The study team changes the carers' form and marks the change as needing re-consent.
  const newVersion = '2.0, 2027-01-01';
  const reconsent = protocolFile((p) => {
    p.version = 2;
    const form = carersForm(p);
    form.version = newVersion;
    form.items.find((i: { id: string }) => i.id === 'withdrawal').text =
      'I understand that I can ask for my data to be withdrawn until 30 June 2027.';
    form.reconsent_versions = [oldVersion];
  });
  expect(adminCli(server, ['protocol', 'publish', reconsent, '--key', keyFile])).toContain('version 2 published');
  await syncNow(page);
  await expect(page.getByTestId('sync-protocol')).toContainText('Study protocol updated to version 2', { timeout: 60_000 });

  // The hub says it in words, and the consent step says "Re-consent needed".
  await page.goto(visitUrl);
  await unlock(page);
  const words = page.getByTestId('reconsent');
  await expect(words).toContainText('Re-consent needed: C01 consented on version 1.1');
  await expect(words).toContainText(`version ${newVersion} asks for consent again`);
  await expect(page.getByRole('link', { name: /Consent: C01/ })).toContainText('Re-consent needed');
  await hubScreenshot(page, 'consent-gates-reconsent-hub');
  // The old consent still counts for what it allowed: the interview and its note are there.
  await expect(page.getByRole('link', { name: /Interview: C01/ })).toContainText('1 notes');

  // Their page says so too.
  await nav(page, 'Participants');
  await page.getByRole('link', { name: /^C01/ }).click();
  await expect(page.getByTestId('participant-consent')).toHaveText('Re-consent needed');
  await expect(page.getByTestId('reconsent')).toContainText('Re-consent needed');
  await hubScreenshot(page, 'consent-gates-reconsent-participant');

  // The old consent and the note were synced and export as they were.
  const before = exportAll();
  expect(before.csv).toContain(`""form_version"":""${oldVersion}""`);
  expect(before.csv).toContain('Said under the old form.');

  // The fieldworker records C01's consent on the new form: the flag goes.
  await page.goto(visitUrl);
  await unlock(page);
  await page.getByRole('link', { name: /Consent: C01/ }).click();
  await expect(page.getByTestId('consent-form-changed')).toContainText(`version ${oldVersion}`);
  await expect(page.getByText('until 30 June 2027')).toBeVisible();
  await answerConsent(page);
  await sign(page);
  await page.getByRole('button', { name: 'Save consent' }).click();
  await expect(page.getByText('Consent given')).toBeVisible();
  await expect(page.getByTestId('reconsent')).toHaveCount(0);
  await nav(page, 'Participants');
  await page.getByRole('link', { name: /^C01/ }).click();
  await expect(page.getByTestId('participant-consent')).toHaveText(`Given (form version ${newVersion})`);
  await expect(page.getByTestId('reconsent')).toHaveCount(0);

  // Exported: the consent on the new form, its earlier revision on the old one, the note.
  await syncNow(page);
  await expect.poll(() => exportAll().csv, { timeout: 30_000 }).toContain(`""form_version"":""${newVersion}""`);
  const after = exportAll();
  expect(after.json).toContain(`"form_version": "${oldVersion}"`);
  expect(after.json).toContain(`"form_version": "${newVersion}"`);
  expect(after.csv).toContain('Said under the old form.');
});

test('a required no blocks the interview and the child in words; a quote from a carer who said no to quotes is marked', async ({ page }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page, 'Kim');
  await enrolTablet(page, server, keyFile, 'Kim');
  await expect(page.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });

  // C01 takes part but says no to quotes; C02 says no to taking part; K01 is C02's child.
  expect(await newParticipant(page, 'Carers')).toBe('C01');
  expect(await newParticipant(page, 'Carers')).toBe('C02');
  expect(await newParticipant(page, 'Children', undefined, async () => {
    await page.getByRole('radio', { name: /^C02/ }).check();
  })).toBe('K01');
  await startVisit(page, ['C01', 'C02', 'K01']);
  const visitUrl = page.url();

  await page.getByRole('link', { name: /Consent: C01/ }).click();
  await answerConsent(page, [/short quotes/]);
  await sign(page);
  await page.getByRole('button', { name: 'Save consent' }).click();
  await expect(page.getByRole('link', { name: /Consent: C01/ })).toContainText('Consent given');

  await page.getByRole('link', { name: /Consent: C02/ }).click();
  await answerConsent(page, [/I agree to take part in this study/]);
  await expect(page.getByTestId('consent-blocked')).toBeVisible();
  await page.getByLabel('Verbal consent, witnessed').check();
  await page.getByLabel('Why is consent verbal?').fill('Prefers not to sign');
  await page.getByRole('button', { name: 'Save consent' }).click();

  // The hub says what C02's "no" means, in words.
  const gate = page.getByTestId('participation-gate');
  await expect(gate).toHaveText('C02 did not agree to take part: no interview or activities.');
  await expect(page.getByRole('link', { name: /Interview: C02/ })).toHaveCount(0);
  await expect(page.getByTestId('child-gate')).toHaveText('C02 did not agree to take part: K01 is not invited.');
  await hubScreenshot(page, 'consent-gates-blocked-hub');

  // A typed address to C02's interview gets the same words.
  const consentHref = await page.getByRole('link', { name: /Consent: C02/ }).getAttribute('href');
  expect(consentHref).toMatch(/\/consent\//);
  await page.goto(new URL(consentHref!.replace('/consent/', '/interview/'), server.url).toString());
  await unlock(page, 'Kim');
  await expect(page.getByTestId('interview-blocked')).toHaveText('C02 did not agree to take part: no interview or activities.');
  await expect(page.getByLabel('Notes', { exact: true })).toHaveCount(0);

  // C01's note flagged as a quote is marked on the note, and on the hub.
  await page.goto(visitUrl);
  await unlock(page, 'Kim');
  await page.getByRole('link', { name: /Interview: C01/ }).click();
  await page.getByLabel('Notes', { exact: true }).fill('Words C01 did not agree to have quoted.');
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await expect(page.getByTestId('quote-not-agreed')).toHaveCount(0);
  await page.getByRole('button', { name: 'Quote', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Quote', exact: true })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('quote-not-agreed')).toContainText('Not agreed for quotes: C01 did not agree to direct quotes.');
  await hubScreenshot(page, 'consent-gates-quote-note');
  await page.getByRole('link', { name: 'Back to visit' }).click();
  await expect(page.getByTestId('quotes-not-agreed')).toContainText('Not agreed for quotes: C01');
  await hubScreenshot(page, 'consent-gates-quotes-hub');

  // The export marks the note: its row's last column, quote_not_agreed, is true.
  await syncNow(page);
  await expect.poll(() => {
    const row = exportAll().csv.split('\n').find((line) => line.includes('Words C01 did not agree to have quoted.'));
    return row?.endsWith(',true') && row.includes('""quote""');
  }, { timeout: 30_000 }).toBe(true);
  expect(exportAll().csv.split('\n')[0]).toMatch(/,quote_not_agreed$/);
});
