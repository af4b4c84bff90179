// A new version of the study protocol published with the CLI reaches the tablet by sync: the
// sync screen says so, an interview opened afterwards asks the new question (one whose notes
// were taken under the old version keeps it), and the tablet keeps using the new version
// after a reload while offline.
import { test, expect } from '@playwright/test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { adminCli, startServer, studyInit, type RunningServer } from '../support/server';
import { enrolTablet } from '../support/sync';
import { waitForOfflineReady } from '../support/app';
import { createProfile, unlock } from '../support/profile';
import { giveConsent, nav, newParticipant, startVisit } from '../support/visit';

const OLD_QUESTION = 'How did you come to do VIG?';
const NEW_QUESTION = 'What first brought your family to VIG?';

let server: RunningServer;
let keyFile: string;
test.beforeAll(async () => {
  server = await startServer();
  keyFile = studyInit(server);
});
test.afterAll(async () => { await server.stop(); });

/** The default protocol as version 2, with the carers' first question reworded. */
function version2File(): string {
  const path = resolve(__dirname, '..', '..', '..', 'crates', 'core', 'protocols', 'vig-evaluation.json');
  const protocol = JSON.parse(readFileSync(path, 'utf8'));
  protocol.version = 2;
  const guide = protocol.interview_guides.find((g: { id: string }) => g.id === 'guide-carers');
  expect(guide.sections[0].questions[0].text).toBe(OLD_QUESTION);
  guide.sections[0].questions[0].text = NEW_QUESTION;
  const file = join(mkdtempSync(join(tmpdir(), 'attune-protocol-')), 'vig-evaluation-v2.json');
  writeFileSync(file, JSON.stringify(protocol, null, 2));
  return file;
}

test('a protocol version published with the CLI reaches the tablet and stays after an offline reload', async ({ page, context }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await enrolTablet(page, server, keyFile, 'Sam');
  await expect(page.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });

  // A carer's visit with consent; the interview shows version 1's question.
  expect(await newParticipant(page, 'Carers')).toBe('C01');
  await startVisit(page, ['C01']);
  const visitUrl = page.url();
  await giveConsent(page, 'C01');
  await page.getByRole('link', { name: /Interview: C01/ }).click();
  await expect(page.getByText(OLD_QUESTION).first()).toBeVisible();

  // Another carer's interview already has a note taken under version 1.
  expect(await newParticipant(page, 'Carers')).toBe('C02');
  await startVisit(page, ['C02']);
  await giveConsent(page, 'C02');
  await page.getByRole('link', { name: /Interview: C02/ }).click();
  await page.getByLabel('Notes', { exact: true }).fill('Answered under version 1.');
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');

  // The study team publishes version 2; the tablet syncs.
  expect(adminCli(server, ['protocol', 'publish', version2File(), '--key', keyFile])).toContain('version 2 published');
  expect(adminCli(server, ['protocol', 'list'])).toMatch(/vig-evaluation\t2\t/);
  await nav(page, 'Sync');
  await page.getByRole('button', { name: 'Sync now' }).click();
  await expect(page.getByTestId('sync-protocol')).toContainText('Study protocol updated to version 2', { timeout: 60_000 });

  // An interview opened now asks the new question.
  await page.getByTestId('sync-visit').filter({ hasText: 'C01' }).getByRole('link').click();
  await expect(page).toHaveURL(visitUrl);
  await page.getByRole('link', { name: /Interview: C01/ }).click();
  const interviewUrl = page.url();
  await expect(page.getByText(NEW_QUESTION).first()).toBeVisible();
  await expect(page.getByText(OLD_QUESTION)).toHaveCount(0);

  // The interview whose notes were taken under version 1 keeps version 1's questions.
  await nav(page, 'Sync');
  await page.getByTestId('sync-visit').filter({ hasText: 'C02' }).getByRole('link').click();
  await page.getByRole('link', { name: /Interview: C02/ }).click();
  await expect(page.getByText(OLD_QUESTION).first()).toBeVisible();
  await expect(page.getByText(NEW_QUESTION)).toHaveCount(0);
  await nav(page, 'Sync');
  await page.getByTestId('sync-visit').filter({ hasText: 'C01' }).getByRole('link').click();
  await page.getByRole('link', { name: /Interview: C01/ }).click();
  await expect(page).toHaveURL(interviewUrl);

  // Offline, reloaded and unlocked again: still version 2.
  await context.setOffline(true);
  await page.reload();
  await unlock(page);
  await expect(page).toHaveURL(interviewUrl);
  await expect(page.getByText(NEW_QUESTION).first()).toBeVisible();
  await expect(page.getByText(OLD_QUESTION)).toHaveCount(0);

  // Published again (the same version) it is refused by the server; nothing changes here.
  expect(() => adminCli(server, ['protocol', 'publish', version2File(), '--key', keyFile])).toThrow(/already published/);
  await context.setOffline(false);
});
