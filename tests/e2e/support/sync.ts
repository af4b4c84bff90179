// Enrolling a tablet as a fieldworker does: the code and the study fingerprint from the
// study admin, typed into the Sync screen.
import { expect, type Page } from '@playwright/test';
import { enrolCode, type RunningServer } from './server';
import { nav } from './visit';

/** Types a code and a fingerprint into the enrolment form and submits it. */
export async function fillEnrolment(page: Page, code: string, fingerprint: string): Promise<void> {
  await page.getByLabel('Enrolment code').fill(code);
  await page.getByLabel('Study fingerprint').fill(fingerprint);
  await page.getByRole('button', { name: /^Enrol this tablet/ }).click();
}

/** Enrols the unlocked profile with a fresh code (and the study fingerprint) from the CLI. */
export async function enrolTablet(page: Page, server: RunningServer, keyFile: string, fieldworker: string): Promise<void> {
  await nav(page, 'Sync');
  const { code, fingerprint } = enrolCode(server, keyFile, fieldworker);
  await fillEnrolment(page, code, fingerprint);
  await expect(page.getByRole('heading', { name: 'Send your work to the research team' })).toBeVisible();
}
