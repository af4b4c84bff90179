// The researcher console's side of an end-to-end test: Chromium's virtual authenticator, a
// first admin invited with the CLI and registered with a passkey, the study key opened in the
// page, every request and response recorded, and screenshots at desk and tablet sizes.
import { expect, type Page, type CDPSession } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { adminCli, STUDY_PASSPHRASE } from './server';
import { screenshotDir } from './app';
import type { Study } from './team';

/** Chromium's virtual authenticator: a platform passkey with user verification. */
export async function virtualAuthenticator(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return cdp;
}

/** Screenshots of a console screen at desk (1280x800) and tablet (768x1024) sizes. */
export async function consoleShots(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  for (const [w, h] of [[1280, 800], [768, 1024]] as const) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: join(screenshotDir, `console-${name}-${w}x${h}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** Records every request (method, URL, body) and response body of `page`. */
export function recordTraffic(page: Page): string[] {
  const traffic: string[] = [];
  page.on('request', (r) => { traffic.push(`${r.method()} ${r.url()} ${r.postData() ?? ''}`); });
  page.on('response', async (r) => {
    try { traffic.push((await r.body()).toString('latin1')); } catch { /* redirects have no body */ }
  });
  return traffic;
}

/** A first study admin: invited with the CLI, registered on `page` with a passkey as `name`.
 *  Leaves the page on "Open the study key". */
export async function registerAdmin(page: Page, study: Study, name: string): Promise<void> {
  const origin = `http://localhost:${study.server.port}`;
  const printed = adminCli(study.server, ['team', 'invite', '--role', 'admin', '--name', name, '--url', origin]);
  const link = printed.match(/(http:\/\/\S+#invite=\S+)/)?.[1];
  expect(link, printed).toBeTruthy();
  await virtualAuthenticator(page);
  await page.goto(link!);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Create my passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Open the study key' })).toBeVisible();
}

/** Opens the study key file in the page and waits for the overview. */
export async function openStudyKey(page: Page, study: Study): Promise<void> {
  await page.getByLabel('Study key file').setInputFiles(study.keyFile);
  await page.getByLabel('Passphrase').fill(STUDY_PASSPHRASE);
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible({ timeout: 30_000 });
}

/** Goes to a console screen by its button in the nav. */
export async function screen(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name }).click();
}
