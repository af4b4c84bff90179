// The researcher console end to end: an invitation from the CLI, a passkey made with
// Chromium's virtual authenticator, the study key opened in the page, and what a tablet
// synced (consent, a safeguarding-flagged note, a recording, a child's drawing) reviewed in
// the browser. Every request and response of the console is recorded: the note's words are
// in none of them, so the decryption happened in the page.
import { test, expect, type Page, type BrowserContext } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { adminCli, startServer, STUDY_PASSPHRASE, type RunningServer } from '../support/server';
import { expectAccessible, waitForOfflineReady, watchErrors } from '../support/app';
import { consoleShots, recordTraffic, screen, virtualAuthenticator } from '../support/console';
import { createProfile, PASSPHRASE } from '../support/profile';
import { giveConsent, newParticipant, recordFor, startVisit } from '../support/visit';
import { initStudy, enrolTablet, syncNow, type Study } from '../support/team';

const protocol = JSON.parse(
  readFileSync(resolve(__dirname, '..', '..', '..', 'crates', 'core', 'protocols', 'vig-evaluation.json'), 'utf8'),
);

// A marker no response could contain by chance.
const FLAGGED = 'Marker-7Q2 mentions a neighbour shouting at the children.';
const OTHER = 'She found being filmed strange at first.';

let server: RunningServer;
test.beforeAll(async () => { server = await startServer(); });
test.afterAll(async () => { await server.stop(); });

const accessible = expectAccessible;

/** Waits, while recording, until the recorder's clock shows at least `seconds`. */
async function recordingUntil(page: Page, seconds: number) {
  const clock = page.getByTestId('recorder-elapsed');
  await expect.poll(async () => {
    const [m, s] = ((await clock.textContent()) ?? '0:0').trim().split(':').map(Number);
    return m * 60 + s;
  }, { timeout: (seconds + 20) * 1000, intervals: [250] }).toBeGreaterThanOrEqual(seconds);
}

/** A fieldworker's visit on a tablet: a carer's consent, a recorded interview with a flagged
 *  note, and their child's drawing, then a sync. */
async function tabletVisit(tablet: BrowserContext, study: Study) {
  const page = await tablet.newPage();
  await page.addInitScript(() => {
    const fake = {
      speak: () => {}, cancel: () => {}, pause: () => {}, resume: () => {},
      getVoices: () => [], speaking: false, pending: false, paused: false,
      addEventListener: () => {}, removeEventListener: () => {},
    };
    Object.defineProperty(window, 'speechSynthesis', { value: fake, configurable: true });
  });
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await enrolTablet(page, study, 'Ana Field');
  const carer = await newParticipant(page, 'Carers');
  const child = await newParticipant(page, 'Children', undefined, async () => {
    await page.getByRole('group', { name: /^Linked to/ }).getByRole('radio', { name: new RegExp(`^${carer}`) }).check();
  });
  await startVisit(page, [carer, child]);
  await giveConsent(page, carer);

  await page.getByRole('link', { name: new RegExp(`Interview: ${carer}`) }).click();
  await expect(page.getByTestId('audio-allowed')).toBeVisible();
  await recordFor(page, 1);
  const questions = page.getByRole('navigation', { name: 'Questions' }).getByRole('button');
  await questions.nth(0).click();
  await page.getByLabel('Notes', { exact: true }).fill(OTHER);
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await recordingUntil(page, 3);
  await questions.nth(1).click();
  await page.getByLabel('Notes', { exact: true }).fill(FLAGGED);
  await page.getByRole('button', { name: 'Safeguarding concern' }).click();
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await recordingUntil(page, 5);
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.locator('[data-testid="playback"] audio').last()).toBeAttached({ timeout: 20_000 });
  await page.getByRole('link', { name: 'Back to visit' }).click();

  await page.getByRole('link', { name: new RegExp(`Hand the tablet to ${child}`) }).click();
  await page.getByRole('button', { name: 'Start child mode' }).click();
  await expect(page.getByTestId('child-mode')).toBeVisible();
  const yes = () => page.getByRole('button', { name: 'Yes', exact: true }).tap();
  await expect(page.getByText(protocol.assent.question, { exact: true })).toBeVisible({ timeout: 30_000 });
  await yes();
  const [faces, sort, drawing] = protocol.activities;
  const recheck = async () => {
    await expect(page.getByText(protocol.assent.recheck, { exact: true })).toBeVisible();
    await yes();
  };
  await recheck();
  for (const [i, p] of faces.prompts.entries()) {
    await expect(page.getByText(p.text, { exact: true })).toBeVisible();
    // The first face is chosen (the console draws it in its row); the rest are skipped.
    if (i === 0) await page.getByRole('button', { name: 'Happy', exact: true }).tap();
    else await page.getByRole('button', { name: 'Skip' }).tap();
  }
  await recheck();
  await expect(page.getByText(sort.prompts[0].text, { exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Skip' }).tap();
  await recheck();
  await expect(page.getByText(drawing.prompts[0].text, { exact: true })).toBeVisible();
  const box = await page.getByTestId('drawing-canvas').boundingBox();
  if (!box) throw new Error('no canvas');
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.4);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + box.width * 0.3 + i * 25, box.y + box.height * 0.4 + (i % 2 ? 20 : -20));
  await page.mouse.up();
  await page.waitForTimeout(500);
  await page.getByRole('button', { name: 'Done' }).tap();
  await expect(page.getByText(drawing.prompts[1].text, { exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Stop' }).tap();
  await expect(page.getByText('Thank you for doing this with me!', { exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Fieldworker: finish' }).tap();
  await page.getByLabel('Fieldworker PIN or passphrase').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Finish child mode' }).tap();
  await expect(page.getByTestId('child-summary')).toBeVisible();

  await syncNow(page);
  await expect(page.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });
  return { carer, child };
}

test('a researcher signs in with a passkey, opens the key in the page and reviews a synced visit', async ({ browser }) => {
  test.setTimeout(300_000);
  const study = initStudy(server);

  // The tablet: its own context with touch, like a real one.
  const tablet = await browser.newContext({ hasTouch: true, viewport: { width: 768, height: 1024 } });
  const { carer } = await tabletVisit(tablet, study);
  await tablet.close();

  // The first admin's invitation, from the CLI on the server. Passkeys need a domain: the
  // console is opened at localhost.
  const origin = `http://localhost:${server.port}`;
  const printed = adminCli(server, ['team', 'invite', '--role', 'admin', '--name', 'Rosa', '--url', origin]);
  const link = printed.match(/(http:\/\/\S+#invite=\S+)/)?.[1];
  expect(link, printed).toBeTruthy();

  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desk.newPage();
  const errors = watchErrors(page);
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  const traffic = recordTraffic(page);
  await virtualAuthenticator(page);

  await page.goto(link!);
  await expect(page.getByRole('heading', { name: 'Join the study team' })).toBeVisible();
  await accessible(page, 'register');
  await consoleShots(page, 'register');
  await page.getByLabel('Your name').fill('Rosa Lead');
  await page.getByRole('button', { name: 'Create my passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Open the study key' })).toBeVisible();
  await expect(page.getByTestId('member')).toContainText('Rosa Lead (Study admin)');
  expect(page.url()).not.toContain('invite=');

  // Sign out and in again with the same passkey.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await accessible(page, 'sign in');
  await consoleShots(page, 'sign-in');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Open the study key' })).toBeVisible();
  await accessible(page, 'open key');
  await consoleShots(page, 'open-key');

  // A wrong passphrase is refused in the page; the right one opens the study.
  await page.getByLabel('Study key file').setInputFiles(study.keyFile);
  await page.getByLabel('Passphrase').fill('not the passphrase');
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('alert')).toContainText('The passphrase does not open this key file', { timeout: 30_000 });
  await page.getByLabel('Passphrase').fill(STUDY_PASSPHRASE);
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('row', { name: /Carers 1 9/ })).toBeVisible();
  await expect(page.getByRole('row', { name: /Ana Field/ })).toBeVisible();
  // The fieldworker never closed the visit: the overview says so.
  await expect(page.getByTestId('missing')).toContainText('was never closed');
  await accessible(page, 'overview');
  await consoleShots(page, 'overview');

  await screen(page, 'Safeguarding');
  const flagged = page.getByTestId('safeguarding-note');
  await expect(flagged).toHaveCount(1);
  await expect(flagged).toContainText(FLAGGED);
  await expect(flagged).toContainText(carer);
  await expect(page.getByText(protocol.safeguarding.steps[0])).toBeVisible();
  await accessible(page, 'safeguarding');
  await consoleShots(page, 'safeguarding');

  await screen(page, 'Participants');
  await expect(page.getByRole('button', { name: carer })).toBeVisible();
  await accessible(page, 'participants');
  await consoleShots(page, 'participants');
  await page.getByRole('button', { name: carer }).click();
  await expect(page.getByTestId('participant-code')).toHaveText(carer);
  await expect(page.getByTestId('note-text').filter({ hasText: FLAGGED })).toBeVisible();
  await expect(page.locator('img.signature')).toBeVisible();

  // The recording opens in the page and plays from the flagged note's time.
  const audio = page.getByTestId('recording');
  await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => a.src.startsWith('blob:')), { timeout: 30_000 }).toBe(true);
  const flaggedCard = page.locator('.record').filter({ hasText: FLAGGED });
  const jump = flaggedCard.getByTestId('play-from');
  const label = (await jump.textContent()) ?? '';
  const [m, s] = label.replace(/.*Play from /, '').split(':').map(Number);
  expect(m * 60 + s).toBeGreaterThanOrEqual(1);
  await jump.click();
  await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => !a.paused && a.currentTime >= 1), { timeout: 15_000 }).toBe(true);
  await accessible(page, 'timeline');
  await consoleShots(page, 'timeline');

  // The child's drawing, as the child drew it.
  await page.getByRole('button', { name: '← All participants' }).click();
  const childRow = page.getByRole('row', { name: /Children/ });
  await childRow.getByRole('button').click();
  const drawingImage = page.getByTestId('drawing');
  await expect(drawingImage).toBeVisible();
  expect(await drawingImage.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
  // The face the child chose, drawn in the row of faces the child saw.
  const faceRow = page.getByTestId('answer-pictures').first();
  await expect(faceRow.locator('figure')).toHaveCount(protocol.activities[0].cards.length);
  await expect(faceRow.locator('figure.chosen')).toHaveText('Happy');
  await expect(faceRow.locator('figure.chosen svg')).toBeVisible();
  await accessible(page, 'child timeline');
  await consoleShots(page, 'child-timeline');

  // No two tablets edited the same record: no conflict.
  await screen(page, 'Conflicts');
  await expect(page.getByText('No conflicts: every revision fitted its record.')).toBeVisible();
  await accessible(page, 'conflicts');
  await consoleShots(page, 'conflicts');

  await screen(page, 'Withdrawals');
  await expect(page.getByText('No participant has withdrawn.')).toBeVisible();
  await accessible(page, 'withdrawals');
  await consoleShots(page, 'withdrawals');

  // A study admin invites a coder from the console and reads the audit log.
  await screen(page, 'Team');
  await page.getByLabel('Their name').fill('Dee Coder');
  await page.getByRole('radio', { name: 'Coder' }).check();
  await page.getByRole('button', { name: 'Make an invitation link' }).click();
  await expect(page.getByTestId('invitation-link')).toContainText(`${origin}/console/#invite=`);
  await expect(page.getByRole('row', { name: /Rosa Lead Study admin/ })).toBeVisible();
  const log = page.getByTestId('audit');
  await expect(log).toContainText('invitation created');
  await expect(log).toContainText('data read');
  await expect(log).toContainText('recording read');
  await accessible(page, 'team');
  await consoleShots(page, 'team');

  // The protocol: a file with a mistake is refused, named by where it is; a newer version
  // shows its changes in words before anything is published.
  await screen(page, 'Protocol');
  await expect(page.getByTestId('protocol-in-use')).toContainText(`version ${protocol.version}`);
  const protocolFile = (value: unknown) => page.getByLabel('Protocol file (.json)').setInputFiles({
    name: 'protocol.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(value, null, 2)),
  });
  const broken = structuredClone(protocol);
  broken.version += 1;
  broken.groups[0].target = 0;
  await protocolFile(broken);
  await expect(page.getByTestId('protocol-problems')).toContainText('groups[0].target');
  await expect(page.getByTestId('protocol-problems')).toContainText('Nothing was published');
  await protocolFile(protocol);
  await expect(page.getByRole('alert')).toContainText(`version ${protocol.version} is already in use`);
  const next = structuredClone(protocol);
  next.version += 1;
  next.safeguarding.contact = 'The study safeguarding lead, 0123 456 789';
  await protocolFile(next);
  const changes = page.getByTestId('protocol-changes');
  await expect(changes.getByRole('row', { name: /Changed Safeguarding › who to call/ })).toContainText('The study safeguarding lead, 0123 456 789');
  await expect(changes.getByRole('button', { name: `Publish version ${next.version}` })).toBeVisible();
  await accessible(page, 'protocol');
  await consoleShots(page, 'protocol');
  // Published, signed in the page: the server lists it, and the screen shows it in use.
  await changes.getByRole('button', { name: `Publish version ${next.version}` }).click();
  await expect(page.getByRole('status')).toContainText(`Version ${next.version} of "${next.title}" is published`, { timeout: 30_000 });
  await expect(page.getByTestId('protocol-in-use')).toContainText(`version ${next.version}`);
  expect(adminCli(server, ['protocol', 'list'])).toContain(`${next.version}`);
  await protocolFile(next);
  await expect(page.getByRole('alert')).toContainText(`version ${next.version} is already in use`);

  // The key file remembered on this browser: next time only the passphrase is asked; it can
  // be forgotten.
  await page.getByRole('button', { name: 'Close the key' }).click();
  await page.getByLabel('Study key file').setInputFiles(study.keyFile);
  await page.getByLabel('Passphrase').fill(STUDY_PASSPHRASE);
  await page.getByRole('checkbox', { name: 'Remember the key file on this browser' }).check();
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Close the key' }).click();
  await expect(page.getByTestId('key-remembered')).toBeVisible();
  await expect(page.getByLabel('Study key file')).toHaveCount(0);
  await accessible(page, 'remembered key');
  await consoleShots(page, 'remembered-key');
  await page.getByLabel('Passphrase').fill('not the passphrase');
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('alert')).toContainText('The passphrase does not open this key file', { timeout: 30_000 });
  await page.getByLabel('Passphrase').fill(STUDY_PASSPHRASE);
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Close the key' }).click();
  await page.getByRole('button', { name: 'Forget the key on this browser' }).click();
  await expect(page.getByLabel('Study key file')).toBeVisible();
  expect(await page.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open('attune-console');
    open.onsuccess = () => {
      const get = open.result.transaction('keys').objectStore('keys').count();
      get.onsuccess = () => resolve(get.result);
    };
  }))).toBe(0);

  // Decryption happened here: the note's words crossed the network in no request and no
  // response.
  expect(traffic.length).toBeGreaterThan(5);
  expect(traffic.filter((t) => t.includes('Marker-7Q2'))).toEqual([]);
  // The only failed request is the session check before signing in (401, by design).
  const sessionCheck = (e: string) => e.includes('status of 401') || /^401 .*\/api\/team\/me$/.test(e);
  expect(errors.filter((e) => !sessionCheck(e))).toEqual([]);
  await desk.close();
});
