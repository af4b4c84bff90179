// A fieldworker's day: participants, a visit, consent, the interview, safeguarding, closing.
import { test, expect, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { startServer, type RunningServer } from '../support/server';
import { screenshots, waitForOfflineReady } from '../support/app';
import { createProfile, unlock } from '../support/profile';
import { answerConsent, nav, newParticipant, recordFor, recordingSeconds, sign, startVisit } from '../support/visit';
import { freshProfileDir, launchTablet } from '../support/browser';

let server: RunningServer;
test.beforeAll(async () => { server = await startServer(); });
test.afterAll(async () => { await server.stop(); });

/** No serious or critical accessibility violation on the screen shown. */
async function accessible(page: Page, screen: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${screen}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)).toEqual([]);
}

test('a whole carer visit: consent, notes with a safeguarding flag, close, then offline', async ({ page, context }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await accessible(page, 'home');

  const code = await newParticipant(page, 'Carers', 'Dana', async () => {
    await accessible(page, 'new participant');
    await screenshots(page, 'new-participant');
  });
  expect(code).toBe('C-new-1');
  await accessible(page, 'participant');
  await screenshots(page, 'participant');
  await nav(page, 'Participants');
  await expect(page.getByRole('link', { name: /C-new-1 \(Dana\)/ })).toBeVisible();
  await accessible(page, 'participants');

  await startVisit(page, ['C-new-1'], async () => {
    await accessible(page, 'start visit');
    await screenshots(page, 'start-visit');
  });
  await accessible(page, 'visit hub');
  await screenshots(page, 'visit-hub');
  await expect(page.getByText('Needs consent first')).toBeVisible();

  await page.getByRole('link', { name: /Consent: C-new-1/ }).click();
  await answerConsent(page);
  await sign(page);
  await accessible(page, 'consent');
  await screenshots(page, 'consent');
  await page.getByRole('button', { name: 'Save consent' }).click();
  await expect(page.getByText('Consent given')).toBeVisible();

  await page.getByRole('link', { name: /Interview: C-new-1/ }).click();
  await expect(page.getByTestId('audio-allowed')).toBeVisible();
  await recordFor(page, 10);
  await page.getByRole('button', { name: 'Stop' }).click();
  const seconds = await recordingSeconds(page);
  expect(seconds).toBeGreaterThan(8.5);
  expect(seconds).toBeLessThan(13);
  const questions = page.getByRole('navigation', { name: 'Questions' }).getByRole('button');
  const notes = ['She found being filmed strange at first.', 'The review showed her the baby smiling back.', 'Mentions a neighbour shouting at the children.'];
  for (let i = 0; i < 3; i++) {
    await questions.nth(i).click();
    await page.getByLabel('Notes', { exact: true }).fill(notes[i]);
    await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
    if (i === 2) await page.getByRole('button', { name: 'Safeguarding concern' }).click();
  }
  await expect(page.getByRole('button', { name: 'Safeguarding concern' })).toHaveAttribute('aria-pressed', 'true');
  // Back to the first question: the note is still there.
  await questions.nth(0).click();
  await expect(page.getByLabel('Notes', { exact: true })).toHaveValue(notes[0]);
  await accessible(page, 'interview');
  await screenshots(page, 'interview');
  await page.getByRole('link', { name: 'Back to visit' }).click();

  await page.getByRole('link', { name: /Your reflections/ }).click();
  await page.getByLabel('Your reflections on this visit').fill('Warm welcome; the flat was cold.');
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await accessible(page, 'reflections');
  await screenshots(page, 'reflections');
  await page.getByRole('link', { name: 'Back to visit' }).click();

  await page.getByRole('link', { name: /Summary and close/ }).click();
  const safeguarding = page.getByTestId('safeguarding');
  await expect(safeguarding).toBeVisible();
  await expect(safeguarding).toContainText('neighbour shouting');
  // The flag comes first on the page, before the summary.
  const first = await page.locator('main section').first().getAttribute('data-testid');
  expect(first).toBe('safeguarding');
  await expect(page.getByRole('button', { name: 'Close visit' })).toBeDisabled();
  await expect(page.getByTestId('notes-count')).toHaveText('3');
  await accessible(page, 'close visit');
  await screenshots(page, 'close-visit');
  await page.getByRole('button', { name: 'I have followed these steps' }).click();
  await expect(page.getByTestId('acknowledged')).toBeVisible();
  await page.getByRole('button', { name: 'Close visit' }).click();
  await page.getByRole('button', { name: 'Yes, close the visit' }).click();
  await expect(page.getByTestId('visit-closed')).toBeVisible();

  // Offline, after a reload: everything is there.
  await context.setOffline(true);
  await page.reload();
  await unlock(page);
  // Unlocking returns to where the fieldworker was: the closed visit's summary.
  await expect(page.getByTestId('visit-closed')).toBeVisible();
  await nav(page, 'Home');
  await expect(page.getByTestId('progress-carers')).toContainText('1 of 9');
  await screenshots(page, 'dashboard');
  await page.getByRole('link', { name: /Closed/ }).click();
  await page.getByRole('link', { name: /Interview: C-new-1/ }).click();
  await page.getByRole('navigation', { name: 'Questions' }).getByRole('button').nth(2).click();
  await expect(page.getByLabel('Notes', { exact: true })).toHaveValue(notes[2]);
  // The recording is on the tablet, encrypted, and plays offline.
  const offlineSeconds = await recordingSeconds(page);
  expect(offlineSeconds).toBeGreaterThan(8.5);
  expect(offlineSeconds).toBeLessThan(13);
  await context.setOffline(false);
});

test('a browser closed 8 s into a recording keeps at least 3 s of playable audio', async () => {
  const profile = freshProfileDir();
  let tablet = await launchTablet(profile);
  let page = await tablet.newPage();
  await page.goto(server.url);
  await createProfile(page);
  await newParticipant(page, 'Carers');
  await startVisit(page, ['C-new-1']);
  await page.getByRole('link', { name: /Consent: C-new-1/ }).click();
  await answerConsent(page);
  await sign(page);
  await page.getByRole('button', { name: 'Save consent' }).click();
  await page.getByRole('link', { name: /Interview: C-new-1/ }).click();
  await recordFor(page, 8);
  await tablet.close(); // the tablet dies mid-recording

  tablet = await launchTablet(profile);
  try {
    page = await tablet.newPage();
    await page.goto(server.url);
    await unlock(page);
    await page.getByRole('link', { name: /Open/ }).first().click();
    await page.getByRole('link', { name: /Interview: C-new-1/ }).click();
    const seconds = await recordingSeconds(page);
    expect(seconds).toBeGreaterThanOrEqual(3);
  } finally {
    await tablet.close();
  }
});

test('a required consent item answered no blocks the interview', async ({ page }) => {
  await page.goto(server.url);
  await createProfile(page);
  await newParticipant(page, 'Managers');
  await startVisit(page, ['M-new-1']);
  await page.getByRole('link', { name: /Consent: M-new-1/ }).click();
  await answerConsent(page, [/I agree to take part/]);
  await expect(page.getByTestId('consent-blocked')).toBeVisible();
  await page.getByLabel('Verbal consent, witnessed').check();
  await page.getByLabel('Why is consent verbal?').fill('Prefers not to sign');
  await page.getByRole('button', { name: 'Save consent' }).click();
  await expect(page.getByText('Not given')).toBeVisible();
  await expect(page.getByRole('link', { name: /Interview: M-new-1/ })).toHaveCount(0);
  await expect(page.getByText('Did not agree to take part', { exact: true })).toBeVisible();
  await expect(page.getByTestId('participation-gate')).toHaveText('M-new-1 did not agree to take part: no interview or activities.');
});

test('with audio consent no, the interview has no recording', async ({ page }) => {
  await page.goto(server.url);
  await createProfile(page);
  await newParticipant(page, 'VIG professionals');
  await startVisit(page, ['P-new-1']);
  await page.getByRole('link', { name: /Consent: P-new-1/ }).click();
  await answerConsent(page, [/audio recorded/]);
  await sign(page);
  await page.getByRole('button', { name: 'Save consent' }).click();
  await page.getByRole('link', { name: /Interview: P-new-1/ }).click();
  await expect(page.getByRole('heading', { name: /Interview: P-new-1/ })).toBeVisible();
  await expect(page.getByTestId('audio-allowed')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Record' })).toHaveCount(0);
});
