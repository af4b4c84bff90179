// The researcher console's first steps, as a study admin takes them: an invitation from the
// CLI, a passkey made with Chromium's virtual authenticator, the study key opened in the
// page. (console.spec.ts walks these same steps itself, checking each screen on the way.)
import { expect, type Browser, type CDPSession, type Page } from '@playwright/test';
import { adminCli, STUDY_PASSPHRASE, type RunningServer } from './server';
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

/** A new desk browser context whose page has joined the study team as an admin named
 *  `name` (invited with the CLI at localhost, where passkeys work) and opened the study key:
 *  the console's Overview is shown. */
export async function consoleWithKey(browser: Browser, server: RunningServer, study: Study, name: string): Promise<Page> {
  const origin = `http://localhost:${server.port}`;
  const printed = adminCli(server, ['team', 'invite', '--role', 'admin', '--name', name, '--url', origin]);
  const link = printed.match(/(http:\/\/\S+#invite=\S+)/)?.[1];
  expect(link, printed).toBeTruthy();
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await desk.newPage();
  await virtualAuthenticator(page);
  await page.goto(link!);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Create my passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Open the study key' })).toBeVisible();
  await page.getByLabel('Study key file').setInputFiles(study.keyFile);
  await page.getByLabel('Passphrase').fill(STUDY_PASSPHRASE);
  await page.getByRole('button', { name: 'Open the study' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible({ timeout: 30_000 });
  return page;
}

/** Goes to a console screen by its navigation button. */
export async function consoleScreen(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name, exact: true }).click();
}
