// A study team with two tablets, each enrolled with its own code: carers created offline get
// different codes (the server reserved each tablet its own numbers), and a withdrawal of one
// carer purges that carer alone. A tablet with no codes left (never enrolled, or offline past
// its pool) gives provisional labels, shown as such, confirmed at the next sync.
import { test, expect, type BrowserContext, type Page } from '@playwright/test';
import { startServer } from '../support/server';
import { screenshots, waitForOfflineReady } from '../support/app';
import { createProfile } from '../support/profile';
import { giveConsent, nav, newParticipant, startVisit } from '../support/visit';
import { enrolTablet, exportRecords, initStudy, syncNow, withdraw, type Study } from '../support/team';

interface Tablet {
  fieldworker: string;
  context: BrowserContext;
  page: Page;
}

/** A fresh tablet (its own browser profile), with a fieldworker profile on it. */
async function newTablet(browser: import('@playwright/test').Browser, study: Study, fieldworker: string): Promise<Tablet> {
  const context = await browser.newContext({ viewport: { width: 768, height: 1024 }, serviceWorkers: 'allow' });
  const page = await context.newPage();
  await page.goto(study.server.url);
  await waitForOfflineReady(page);
  await createProfile(page, fieldworker);
  return { fieldworker, context, page };
}

/** The consents in an export, by participant code. */
function consentCodes(study: Study): string[] {
  return exportRecords(study).filter((r) => r.kind === 'consent').map((r) => r.participant_code ?? '');
}

test('two tablets give different codes offline; a withdrawal purges that carer alone, on both', async ({ browser }) => {
  const server = await startServer();
  const tablets: Tablet[] = [];
  try {
    const study = initStudy(server);
    // Each tablet is enrolled with its own code; the first sync reserves its codes.
    for (const fieldworker of ['Ana', 'Ben']) {
      const tablet = await newTablet(browser, study, fieldworker);
      await enrolTablet(tablet.page, study, fieldworker);
      tablets.push(tablet);
    }
    const [ana, ben] = tablets;

    // Offline, each fieldworker meets a family: a carer, and their consent.
    for (const t of tablets) await t.context.setOffline(true);
    const codes: string[] = [];
    for (const [t, name] of [[ana, 'Maya Quist'], [ben, 'Olu Brandt']] as const) {
      const code = await newParticipant(t.page, 'Carers', name);
      await startVisit(t.page, [code]);
      await giveConsent(t.page, code);
      codes.push(code);
    }
    const [anaCode, benCode] = codes;
    // Codes the server reserved for each tablet, not provisional, and not the same.
    expect(anaCode).toBe('C01');
    expect(benCode).toBe('C06');

    // Back online, both sync; every visit is confirmed on the server.
    for (const t of tablets) await t.context.setOffline(false);
    for (const [t, code] of [[ana, anaCode], [ben, benCode]] as const) {
      await syncNow(t.page);
      await expect(t.page.getByTestId('sync-visit').filter({ hasText: code })).toContainText('Confirmed on the server', { timeout: 60_000 });
      await expect(t.page.getByTestId('sync-provisional')).toHaveCount(0);
    }
    expect(consentCodes(study).sort()).toEqual([anaCode, benCode]);

    // Ana's carer withdraws and asks for their data to be deleted.
    withdraw(study, anaCode);
    for (const t of tablets) await syncNow(t.page);
    await expect(ana.page.getByTestId('sync-purged')).toContainText(anaCode);
    // Ben's tablet never held that carer: it applies the withdrawal with nothing to delete,
    // and says nothing of it.
    await expect(ben.page.getByTestId('sync-purged')).toHaveCount(0);
    // Ana's tablet lost that carer alone; Ben's carer and their consent are untouched.
    await nav(ana.page, 'Participants');
    await expect(ana.page.getByRole('link', { name: new RegExp(`^${anaCode}`) })).toHaveCount(0);
    await nav(ben.page, 'Participants');
    await expect(ben.page.getByRole('link', { name: new RegExp(`^${benCode} \\(Olu Brandt\\)`) })).toBeVisible();
    await nav(ben.page, 'Sync');
    const benVisit = ben.page.getByTestId('sync-visit').filter({ hasText: benCode });
    await expect(benVisit).toContainText('Confirmed on the server');
    await benVisit.getByRole('link').click();
    await expect(ben.page.getByRole('link', { name: new RegExp(`Consent: ${benCode}`) })).toContainText('Consent given');

    // The next export still holds Ben's carer's consent, and nothing of Ana's carer.
    const exported = exportRecords(study);
    expect(exported.filter((r) => r.kind === 'consent').map((r) => r.participant_code)).toEqual([benCode]);
    expect(exported.filter((r) => r.participant_code === anaCode)).toEqual([]);
    expect(exported.filter((r) => r.kind === 'participant').map((r) => r.participant_code)).toEqual([benCode]);
  } finally {
    for (const t of tablets) await t.context.close();
    await server.stop();
  }
});

test('a tablet with no codes left gives provisional codes, shown as such and confirmed at the next sync', async ({ browser }) => {
  const server = await startServer();
  let tablet: Tablet | undefined;
  try {
    const study = initStudy(server);
    tablet = await newTablet(browser, study, 'Noor');
    const { page, context } = tablet;

    // Never enrolled: the carer gets a provisional code, said to be confirmed at next sync.
    const label = await newParticipant(page, 'Carers', 'Amira Haddad');
    expect(label).toBe('C-new-1');
    await expect(page.getByTestId('provisional-notice')).toContainText('C-new-1 is a provisional code: code confirmed at next sync.');
    await screenshots(page, 'participant-provisional');
    const child = await newParticipant(page, 'Children');
    expect(child).toBe('K-new-1');
    await startVisit(page, [label]);
    await expect(page.getByTestId('provisional-notice')).toContainText('C-new-1 is a provisional code');
    await giveConsent(page, label);
    await nav(page, 'Participants');
    const rows = page.locator('ul.rows li');
    await expect(rows).toHaveCount(2);
    await expect(rows.filter({ hasText: 'C-new-1' })).toContainText('Code confirmed at next sync');
    await expect(rows.filter({ hasText: 'K-new-1' })).toContainText('Code confirmed at next sync');
    await screenshots(page, 'participants-provisional');

    // Enrolled, the first sync reserves codes and confirms both; the records go under them.
    await enrolTablet(page, study, 'Noor');
    await expect(page.getByTestId('sync-codes')).toContainText('C-new-1 is now C01');
    await expect(page.getByTestId('sync-codes')).toContainText('K-new-1 is now K01');
    await expect(page.getByTestId('sync-visit').filter({ hasText: 'C01' })).toContainText('Confirmed on the server', { timeout: 60_000 });
    await nav(page, 'Participants');
    await expect(page.getByRole('link', { name: /^C01 \(Amira Haddad\)/ })).toBeVisible();
    await expect(page.getByTestId('provisional-code')).toHaveCount(0);
    expect(consentCodes(study)).toEqual(['C01']);
    expect(exportRecords(study).some((r) => (r.participant_code ?? '').includes('-new-'))).toBe(false);

    // Offline past the pool: five more carers take the reserved codes, the sixth a new label
    // (never C-new-1 again), held back and explained on the sync screen.
    await context.setOffline(true);
    for (let n = 2; n <= 6; n++) expect(await newParticipant(page, 'Carers')).toBe(`C0${n}`);
    expect(await newParticipant(page, 'Carers')).toBe('C-new-2');
    await nav(page, 'Sync');
    await expect(page.getByTestId('sync-provisional')).toContainText('Provisional codes: C-new-2. Code confirmed at next sync.');
    await screenshots(page, 'sync-provisional');

    // Back online: sync starts by itself and confirms it.
    await context.setOffline(false);
    await expect(page.getByTestId('sync-codes')).toContainText('C-new-2 is now C07', { timeout: 60_000 });
    await expect(page.getByTestId('sync-provisional')).toHaveCount(0);
    await expect(page.getByTestId('sync-waiting')).toContainText('Nothing is waiting');
    const participants = exportRecords(study).filter((r) => r.kind === 'participant').map((r) => r.participant_code).sort();
    expect(participants).toEqual(['C01', 'C02', 'C03', 'C04', 'C05', 'C06', 'C07', 'K01']);
  } finally {
    await tablet?.context.close();
    await server.stop();
  }
});
