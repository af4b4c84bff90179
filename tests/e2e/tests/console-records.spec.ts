// The study team's own records in the console, end to end: a tablet syncs a note flagged as
// a safeguarding concern; a researcher acknowledges it with a note. The acknowledgement is
// sealed and signed in the page, so its words cross the network in no request and no
// response; after a reload and opening the key again it shows, with who made it.
import { test, expect, type BrowserContext } from '@playwright/test';
import { startServer, type RunningServer } from '../support/server';
import { expectAccessible, waitForOfflineReady, watchErrors } from '../support/app';
import { createProfile, unlock } from '../support/profile';
import { giveConsent, newParticipant, startVisit } from '../support/visit';
import { initStudy, enrolTablet, syncNow, type Study } from '../support/team';
import { consoleShots, openKey, recordTraffic, registerAdmin, screen } from '../support/console';

// Markers no response could contain by chance: the flagged note's words, the
// acknowledgement's.
const FLAGGED = 'Marker-F4K the older child said he is scared to go home.';
const ACKNOWLEDGED = 'Marker-A8J called the family social worker on 3 Dec; agreed next steps.';

let server: RunningServer;
test.beforeAll(async () => { server = await startServer(); });
test.afterAll(async () => { await server.stop(); });

/** A fieldworker's visit on a tablet: a carer's consent and one flagged note, then a sync. */
async function flaggedNote(tablet: BrowserContext, study: Study): Promise<string> {
  const page = await tablet.newPage();
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await enrolTablet(page, study, 'Ana Field');
  const carer = await newParticipant(page, 'Carers');
  await startVisit(page, [carer]);
  await giveConsent(page, carer);
  await page.getByRole('link', { name: new RegExp(`Interview: ${carer}`) }).click();
  await page.getByRole('navigation', { name: 'Questions' }).getByRole('button').nth(0).click();
  await page.getByLabel('Notes', { exact: true }).fill(FLAGGED);
  await page.getByRole('button', { name: 'Safeguarding concern' }).click();
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await syncNow(page);
  await expect(page.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });
  return carer;
}

test('a researcher acknowledges a safeguarding flag, sealed and signed in the page', async ({ browser }) => {
  test.setTimeout(120_000);
  const study = initStudy(server);
  const tablet = await browser.newContext({ hasTouch: true, viewport: { width: 768, height: 1024 } });
  const carer = await flaggedNote(tablet, study);
  await tablet.close();

  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desk.newPage();
  const errors = watchErrors(page);
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  const traffic = recordTraffic(page);
  await registerAdmin(page, study, 'Rosa Lead');
  await openKey(page, study);

  // The overview and the nav say a flag waits.
  await expect(page.getByTestId('overview-safeguarding')).toContainText('1 flagged note is not acknowledged yet.');
  await expect(page.getByTestId('nav-unacknowledged')).toHaveText('1');
  await screen(page, 'Safeguarding');
  const flag = page.getByTestId('safeguarding-note');
  await expect(flag).toContainText(FLAGGED);
  await expect(flag.getByTestId('not-acknowledged')).toHaveText('Not acknowledged yet');

  // An empty acknowledgement is refused in the page, with what to write.
  await flag.getByRole('button', { name: 'Acknowledge' }).click();
  await flag.getByRole('button', { name: 'Save acknowledgement' }).click();
  await expect(flag.getByRole('alert')).toContainText('Write what was done first');
  await flag.getByLabel('What was done').fill(ACKNOWLEDGED);
  await flag.getByRole('button', { name: 'Save acknowledgement' }).click();
  const ack = page.getByTestId('acknowledgement');
  await expect(ack).toContainText('Acknowledged by Rosa Lead', { timeout: 30_000 });
  await expect(ack).toContainText(ACKNOWLEDGED);
  await expect(flag.getByTestId('not-acknowledged')).toHaveCount(0);
  await expect(page.getByTestId('nav-unacknowledged')).toHaveCount(0);
  await expect(page.getByTestId('unacknowledged')).toHaveText('Every flagged note has been acknowledged.');
  await expectAccessible(page, 'safeguarding with an acknowledgement');
  await consoleShots(page, 'safeguarding-acknowledged');

  // After a reload the key is gone; opened again, the acknowledgement is read back from the
  // server, checked and opened here.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Open the study key' })).toBeVisible();
  await openKey(page, study);
  await expect(page.getByTestId('overview-safeguarding')).toContainText('All 1 flagged notes are acknowledged.');
  await screen(page, 'Safeguarding');
  await expect(page.getByTestId('acknowledgement')).toContainText('Acknowledged by Rosa Lead');
  await expect(page.getByTestId('acknowledgement')).toContainText(ACKNOWLEDGED);
  await expect(page.getByTestId('safeguarding-note')).toContainText(carer);

  await screen(page, 'Conflicts');
  await expect(page.getByText('No conflicts: every revision fitted its record.')).toBeVisible();
  await consoleShots(page, 'conflicts-none');

  // The audit log names the record, never its words.
  await screen(page, 'Team');
  await expect(page.getByTestId('audit')).toContainText('team record added');

  // Sealed in the page: neither the note's words nor the acknowledgement's crossed the
  // network in any request or response.
  expect(traffic.length).toBeGreaterThan(5);
  expect(traffic.some((t) => t.includes('/api/console/team-records'))).toBe(true);
  expect(traffic.filter((t) => t.includes('Marker-A8J') || t.includes('Marker-F4K'))).toEqual([]);
  const sessionCheck = (e: string) => e.includes('status of 401') || /^401 .*\/api\/team\/me$/.test(e);
  expect(errors.filter((e) => !sessionCheck(e))).toEqual([]);
  await desk.close();
});

// A real conflict: a tablet's state copied onto a second tablet (as a restored backup would
// be), the same note edited on both while offline, then both synced. The server keeps the
// second edit apart; the researcher keeps that version, and the timeline reads it.
test('a researcher resolves a conflict by keeping one version; the timeline reads it', async ({ browser }) => {
  test.setTimeout(150_000);
  const own = await startServer();
  try {
    const study = initStudy(own);
    const first = await browser.newContext({ hasTouch: true, viewport: { width: 768, height: 1024 } });
    const a = await first.newPage();
    await a.goto(own.url);
    await waitForOfflineReady(a);
    await createProfile(a);
    await enrolTablet(a, study, 'Ana Field');
    const carer = await newParticipant(a, 'Carers');
    await startVisit(a, [carer]);
    await giveConsent(a, carer);
    await a.getByRole('link', { name: new RegExp(`Interview: ${carer}`) }).click();
    const interview = a.url();
    const write = async (page: typeof a, text: string) => {
      await page.getByRole('navigation', { name: 'Questions' }).getByRole('button').nth(0).click();
      await page.getByLabel('Notes', { exact: true }).fill(text);
      await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
    };
    await write(a, 'Version one of the note.');
    await syncNow(a);
    await expect(a.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });

    // The second tablet: the first one's storage, copied.
    const state = await first.storageState({ indexedDB: true });
    const second = await browser.newContext({ hasTouch: true, viewport: { width: 768, height: 1024 }, storageState: state });
    const b = await second.newPage();
    for (const page of [b, a]) {
      await page.goto(interview);
      await unlock(page);
    }
    await first.setOffline(true);
    await second.setOffline(true);
    await write(a, 'Edited on the first tablet.');
    await write(b, 'Edited on the second tablet.');
    await first.setOffline(false);
    await syncNow(a);
    await expect(a.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });
    await second.setOffline(false);
    await syncNow(b);
    await expect(b.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });
    await first.close();
    await second.close();

    const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await desk.newPage();
    const errors = watchErrors(page);
    await registerAdmin(page, study, 'Rosa Lead');
    await openKey(page, study);
    await screen(page, 'Conflicts');
    const conflict = page.getByTestId('conflict');
    await expect(conflict).toHaveCount(1);
    await expect(conflict).toContainText('Edited on the first tablet.');
    await expect(conflict).toContainText('Edited on the second tablet.');
    await expectAccessible(page, 'conflicts');
    await consoleShots(page, 'conflicts-kept');
    await conflict.getByLabel('Why (optional').fill('The second tablet has the fuller note.');
    await conflict.locator('.version').nth(1).getByRole('button', { name: 'Keep this version' }).click();
    await expect(page.getByTestId('resolution')).toContainText('Resolved by Rosa Lead on', { timeout: 30_000 });
    await expect(page.getByTestId('resolution')).toContainText('kept the version from');
    await expect(page.getByTestId('resolution')).toContainText('The second tablet has the fuller note.');
    // Both versions are still shown.
    await expect(conflict).toContainText('Edited on the first tablet.');
    await expect(conflict).toContainText('Edited on the second tablet.');
    await expectAccessible(page, 'conflicts resolved');
    await consoleShots(page, 'conflicts-resolved');

    await screen(page, 'Participants');
    await page.getByRole('button', { name: carer }).click();
    const note = page.locator('.record[data-kind="interview_note"]');
    await expect(note.getByTestId('note-text')).toHaveText('Edited on the second tablet.');
    await expect(note.getByTestId('resolved-in-console')).toContainText('Resolved in the console');
    await consoleShots(page, 'timeline-resolved');

    // Changing one's mind: the text merged from both replaces the choice; both versions stay.
    await screen(page, 'Conflicts');
    await page.getByRole('button', { name: 'Merge the text…' }).click();
    const merged = page.getByLabel('The merged text');
    await expect(merged).toHaveValue('Edited on the first tablet.\n\nEdited on the second tablet.');
    await merged.fill('Edited on both tablets, merged.');
    await page.getByRole('button', { name: 'Save the merged text' }).click();
    await expect(page.getByTestId('resolution')).toContainText('merged the text of both versions', { timeout: 30_000 });
    await expect(conflict).toContainText('Edited on the first tablet.');
    await screen(page, 'Participants');
    await page.getByRole('button', { name: carer }).click();
    await expect(note.getByTestId('note-text')).toHaveText('Edited on both tablets, merged.');
    const sessionCheck = (e: string) => e.includes('status of 401');
    expect(errors.filter((e) => !sessionCheck(e))).toEqual([]);
    await desk.close();
  } finally {
    await own.stop();
  }
});
