// The researcher console's first steps, as a study admin takes them: an invitation from the
// CLI, a passkey made with Chromium's virtual authenticator, and the study key opened in the
// page. (console.spec.ts walks the same steps with its own checks on each screen.)
import { expect, type Browser, type BrowserContext, type CDPSession, type Page } from '@playwright/test';
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

/** Screenshots of a console screen at desk and tablet sizes. */
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

/** Opens the study key file in the page (the console shows the Overview). */
export async function openKey(page: Page, study: Study): Promise<void> {
  await expect(page.getByRole('heading', { name: 'Open the study key' })).toBeVisible();
  await page.getByLabel('Study key file').setInputFiles(study.keyFile);
  await page.getByLabel('Passphrase').fill(STUDY_PASSPHRASE);
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible({ timeout: 30_000 });
}

/** A study admin invited with the CLI, registered with a passkey, the key opened: their page
 *  (in its own desk-sized context) at the Overview. */
export async function adminConsole(browser: Browser, study: Study, name: string): Promise<{ desk: BrowserContext; page: Page }> {
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desk.newPage();
  await registerAdmin(page, study, name);
  await openKey(page, study);
  return { desk, page };
}

/** Goes to a console screen by its name in the navigation (a count may follow the name, as
 *  "Safeguarding, 2 not acknowledged"), and waits for its heading. */
export async function screen(page: Page, name: string): Promise<void> {
  const label = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( ?, \\d+ [a-z ]+)?$`);
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: label }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
}
