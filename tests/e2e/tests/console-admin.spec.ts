// A study admin's console work end to end, with instructions signed in the page: an enrolment
// code made in the console enrols a tablet (the code and the fingerprint typed from the
// screen), the tablet's withdrawal request is confirmed in the console and purges the
// participant on the tablet, and revoking the tablet in the console stops its next sync with
// the reason. Real browser, real server, real SQLite.
import { test, expect, type Page } from '@playwright/test';
import { startServer, type RunningServer } from '../support/server';
import { expectAccessible, waitForOfflineReady, watchErrors } from '../support/app';
import { createProfile } from '../support/profile';
import { giveConsent, nav, newParticipant, startVisit } from '../support/visit';
import { fillEnrolment } from '../support/sync';
import { initStudy, syncNow } from '../support/team';
import { adminConsole, consoleShots, openKey, screen } from '../support/console';

let server: RunningServer;
test.beforeAll(async () => { server = await startServer(); });
test.afterAll(async () => { await server.stop(); });

/** "Sync now", then the tablet's last-sync line. */
async function syncAndRead(tablet: Page): Promise<void> {
  await syncNow(tablet);
  await expect(tablet.getByTestId('sync-last')).toContainText('Last sync');
}

test('an admin enrols a tablet, confirms its withdrawal request and revokes it, all from the console', async ({ browser }) => {
  test.setTimeout(120_000);
  const study = initStudy(server);
  const { desk, page } = await adminConsole(browser, study, 'Rosa Lead');
  const errors = watchErrors(page);

  // A code for Ana, shown once with the fingerprint the page computed, and as a QR code.
  await screen(page, 'Devices');
  await expect(page.getByText('No tablet is enrolled yet.')).toBeVisible();
  await page.getByLabel("Fieldworker's name").fill('Ana Field');
  await expect(page.getByLabel('Hours it stays valid (1 to 168)')).toHaveValue('24');
  await page.getByRole('button', { name: 'Make an enrolment code' }).click();
  const shown = page.getByRole('status').filter({ hasText: 'Give this code to Ana Field only' });
  await expect(shown).toContainText('It works once, for 24 hours');
  const code = ((await page.getByTestId('enrolment-code').textContent()) ?? '').trim();
  const fingerprint = ((await page.getByTestId('study-fingerprint').textContent()) ?? '').trim();
  expect(code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  const qr = page.getByRole('img', { name: /QR code of the enrolment code/ });
  await expect(qr).toBeVisible();
  expect(await qr.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(100);
  await expectAccessible(page, 'devices with a code');

  // The tablet enrols with what the screen shows, makes a participant with a consent, asks
  // for their withdrawal, and syncs.
  const tabletContext = await browser.newContext({ hasTouch: true, viewport: { width: 768, height: 1024 } });
  const tablet = await tabletContext.newPage();
  await tablet.goto(server.url);
  await waitForOfflineReady(tablet);
  await createProfile(tablet, 'Ana');
  await nav(tablet, 'Sync');
  await fillEnrolment(tablet, code, fingerprint);
  await expect(tablet.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });
  const carer = await newParticipant(tablet, 'Carers');
  await startVisit(tablet, [carer]);
  await giveConsent(tablet, carer);
  await nav(tablet, 'Participants');
  await tablet.getByRole('link', { name: new RegExp(`^${carer}`) }).click();
  await tablet.getByRole('button', { name: 'Stop and withdraw their data' }).click();
  await tablet.getByRole('button', { name: 'Yes, withdraw their data' }).click();
  await expect(tablet.getByTestId('withdrawal-requested')).toBeVisible();
  await syncAndRead(tablet);
  await expect(tablet.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });

  // The admin opens the study again (the page keeps no data): the tablet is listed, active.
  await page.reload();
  await openKey(page, study);
  await screen(page, 'Devices');
  await expect(page.getByTestId('device').filter({ hasText: 'Ana Field' })).toContainText('Active');
  await page.getByLabel("Fieldworker's name").fill('Ben Field');
  await page.getByLabel('Hours it stays valid (1 to 168)').fill('169');
  await page.getByRole('button', { name: 'Make an enrolment code' }).click();
  await expect(page.getByRole('alert')).toContainText('between 1 and 168 hours');
  await page.getByLabel('Hours it stays valid (1 to 168)').fill('48');
  await page.getByRole('button', { name: 'Make an enrolment code' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Give this code to Ben Field only' })).toContainText('for 48 hours');
  await expect(page.getByTestId('study-fingerprint')).toHaveText(fingerprint);
  await expectAccessible(page, 'devices');
  await consoleShots(page, 'devices-code');

  // The admin confirms the tablet's withdrawal request.
  await screen(page, 'Withdrawals');
  const request = page.getByTestId('withdrawal-request').filter({ hasText: carer });
  await expect(request).toContainText('Waiting for the study team');
  await request.getByRole('button', { name: `Confirm the withdrawal of ${carer}` }).click();
  const confirm = page.getByRole('region', { name: `Confirm the withdrawal of ${carer}` });
  await expect(confirm).toContainText('This cannot be undone.');
  await expect(confirm).toContainText('Every tablet deletes everything about this participant at its next sync.');
  await expectAccessible(page, 'withdrawal confirm');
  await consoleShots(page, 'withdrawal-confirm');
  await confirm.getByRole('button', { name: 'Yes, withdraw this participant' }).click();
  await expect(page.getByRole('status').filter({ hasText: `Withdrawal of ${carer}` })).toContainText('recorded');
  await expect(page.getByTestId('withdrawal-request').filter({ hasText: carer })).toContainText('Confirmed by the study team');
  await expectAccessible(page, 'withdrawals confirmed');

  // The tablet's next sync deletes them.
  await syncAndRead(tablet);
  await expect(tablet.getByTestId('sync-purged')).toContainText(carer);
  await nav(tablet, 'Participants');
  await expect(tablet.getByRole('link', { name: new RegExp(`^${carer}`) })).toHaveCount(0);

  // The admin revokes the tablet, with a reason and a confirmation.
  await screen(page, 'Devices');
  const row = page.getByTestId('device').filter({ hasText: 'Ana Field' });
  await expect(row).toContainText('Active');
  await row.getByRole('button', { name: /^Revoke .*Ana Field/ }).click();
  const revoke = page.getByRole('region', { name: /^Revoke .*Ana Field/ });
  await revoke.getByRole('button', { name: 'Continue' }).click();
  await expect(revoke.getByRole('alert')).toContainText('Write the reason');
  await revoke.getByLabel(/^Reason/).fill('Tablet lost on the bus');
  await revoke.getByRole('button', { name: 'Continue' }).click();
  await expect(revoke).toContainText('Its next sync is refused');
  await revoke.getByRole('button', { name: 'Yes, revoke this device' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'revoked' })).toContainText('Tablet lost on the bus');
  await expect(page.getByTestId('device').filter({ hasText: 'Ana Field' })).toContainText('Revoked: Tablet lost on the bus');
  await expect(page.getByRole('button', { name: /^Revoke .*Ana Field/ })).toHaveCount(0);
  await expectAccessible(page, 'devices revoked');
  await consoleShots(page, 'devices-revoked');

  // The tablet's next sync says it was revoked, and why (and "Sync now" stays off).
  await nav(tablet, 'Sync');
  await tablet.getByRole('button', { name: 'Sync now' }).click();
  await expect(tablet.getByTestId('sync-revoked')).toContainText('Tablet lost on the bus', { timeout: 30_000 });

  const sessionCheck = (e: string) => e.includes('status of 401');
  expect(errors.filter((e) => !sessionCheck(e))).toEqual([]);
  await tabletContext.close();
  await desk.close();
});
