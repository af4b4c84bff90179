// Creating and unlocking fieldworker profiles through the lock screen, as a fieldworker would.
import { expect, type Page } from '@playwright/test';

export const PASSPHRASE = 'copper kettle river 42';

/** First run: creates a profile and waits until the app is unlocked. */
export async function createProfile(page: Page, name = 'Sam', passphrase = PASSPHRASE): Promise<void> {
  const newProfile = page.getByRole('button', { name: 'New profile' });
  if (await newProfile.isVisible()) await newProfile.click();
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
  await page.getByLabel('Passphrase again').fill(passphrase);
  await page.getByRole('button', { name: 'Create profile' }).click();
  await expect(page.getByTestId('profile-name')).toHaveText(name, { timeout: 30_000 });
}

/** The lock screen: picks the profile (when there are several) and unlocks it. */
export async function unlock(page: Page, name = 'Sam', passphrase = PASSPHRASE): Promise<void> {
  await expect(page.getByRole('heading', { name: 'Unlock Attune' })).toBeVisible({ timeout: 30_000 });
  await page.getByRole('radio', { name }).check();
  await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await expect(page.getByTestId('profile-name')).toHaveText(name, { timeout: 30_000 });
}
