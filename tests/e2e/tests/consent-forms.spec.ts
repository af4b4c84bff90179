// A consent is read against the form it was given on, never against whatever protocol is in
// use later: a carer who agreed to audio on version 1 of the form may still be recorded after
// the study team publishes a version whose form no longer asks about audio, also after an
// offline reload; a carer consenting on the new form is not offered the recorder. A version
// that rewords a form but keeps its version is refused by the server.
import { test, expect } from '@playwright/test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { adminCli, startServer, studyInit, type RunningServer } from '../support/server';
import { enrolTablet } from '../support/sync';
import { waitForOfflineReady } from '../support/app';
import { createProfile, unlock } from '../support/profile';
import { giveConsent, nav, newParticipant, startVisit } from '../support/visit';

let server: RunningServer;
let keyFile: string;
test.beforeAll(async () => {
  server = await startServer();
  keyFile = studyInit(server);
});
test.afterAll(async () => { await server.stop(); });

function protocolFile(edit: (protocol: any) => void): string {
  const path = resolve(__dirname, '..', '..', '..', 'crates', 'core', 'protocols', 'vig-evaluation.json');
  const protocol = JSON.parse(readFileSync(path, 'utf8'));
  edit(protocol);
  const file = join(mkdtempSync(join(tmpdir(), 'attune-protocol-')), 'vig-evaluation.json');
  writeFileSync(file, JSON.stringify(protocol, null, 2));
  return file;
}

function carersForm(protocol: any): any {
  return protocol.consent_forms.find((f: { id: string }) => f.id === 'consent-carers');
}

test('a consent keeps allowing what its own form allowed after the form changes', async ({ page, context }) => {
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await enrolTablet(page, server, keyFile, 'Sam');
  await expect(page.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });

  // C01 agrees to everything on version 1.1 of the carers' form, audio included.
  const first = await newParticipant(page, 'Carers');
  await startVisit(page, [first]);
  const visitUrl = page.url();
  await giveConsent(page, first);
  await page.getByRole('link', { name: new RegExp(`Interview: ${first}`) }).click();
  await expect(page.getByTestId('audio-allowed')).toBeVisible();

  // Rewording the form without a new form version is refused: consents name the version.
  const reworded = protocolFile((p) => {
    p.version = 2;
    carersForm(p).items[0].text = 'Reworded, same version.';
  });
  expect(() => adminCli(server, ['protocol', 'publish', reworded, '--key', keyFile])).toThrow(/keeps version/);

  // Version 2: the carers' form (now 2.0) no longer asks about audio recording.
  const noAudio = protocolFile((p) => {
    p.version = 2;
    const form = carersForm(p);
    form.version = '2.0, 2027-01-01';
    form.items = form.items.filter((i: { id: string }) => i.id !== 'audio-recording');
  });
  expect(adminCli(server, ['protocol', 'publish', noAudio, '--key', keyFile])).toContain('version 2 published');
  await nav(page, 'Sync');
  await page.getByRole('button', { name: 'Sync now' }).click();
  await expect(page.getByTestId('sync-protocol')).toContainText('Study protocol updated to version 2', { timeout: 60_000 });

  // C01's consent was given on 1.1, which allowed audio: the recorder is still offered.
  await page.goto(visitUrl);
  await unlock(page);
  await expect(page.getByText('Consent given')).toBeVisible();
  await page.getByRole('link', { name: new RegExp(`Interview: ${first}`) }).click();
  const interviewUrl = page.url();
  await expect(page.getByTestId('audio-allowed')).toBeVisible();
  // The consent screen says the consent stands as given on 1.1.
  await page.goto(visitUrl);
  await unlock(page);
  await page.getByRole('link', { name: new RegExp(`Consent: ${first}`) }).click();
  await expect(page.getByTestId('consent-form-changed')).toContainText('version 1.1');

  // A carer who consents on 2.0 agreed to no audio: no recorder.
  const second = await newParticipant(page, 'Carers');
  await startVisit(page, [second]);
  await giveConsent(page, second);
  await page.getByRole('link', { name: new RegExp(`Interview: ${second}`) }).click();
  await expect(page.getByLabel('Notes', { exact: true }).first()).toBeVisible();
  await expect(page.getByTestId('audio-allowed')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Record' })).toHaveCount(0);

  // Offline and reloaded: C01's consent still reads against 1.1.
  await context.setOffline(true);
  await page.goto(interviewUrl);
  await unlock(page);
  await expect(page.getByTestId('audio-allowed')).toBeVisible();
  await context.setOffline(false);
});
