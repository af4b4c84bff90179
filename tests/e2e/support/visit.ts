// Steps of a field visit, as a fieldworker does them.
import { expect, type Page } from '@playwright/test';

export async function nav(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
}

/** A participant code (`C07`) or provisional label (`C-new-1`) at the start of a text. */
export const CODE = /^[A-Z](\d\d+|-new-\d+)/;

/** Creates a participant in a group ("Carers", "Children", ...) and returns their code: a
 *  code reserved for the tablet, or a provisional label (`C-new-1`) when it has none. */
export async function newParticipant(page: Page, group: string, name?: string, onForm?: () => Promise<void>): Promise<string> {
  await nav(page, 'Participants');
  await page.getByRole('link', { name: 'New participant' }).click();
  await page.getByRole('radio', { name: new RegExp(`^${group} \\(`) }).check();
  if (name) await page.getByLabel('Name (optional, kept only on this tablet)').fill(name);
  if (onForm) await onForm();
  await page.getByRole('button', { name: 'Create participant' }).click();
  const heading = page.getByRole('heading', { level: 1 });
  await expect(heading).toHaveText(CODE);
  return ((await heading.textContent()) ?? '').match(CODE)![0];
}

/** Starts a visit at home with these participants (labels as listed). */
export async function startVisit(page: Page, who: string[], onForm?: () => Promise<void>): Promise<void> {
  await nav(page, 'Home');
  await page.getByRole('link', { name: 'Start visit' }).click();
  for (const w of who) await page.getByRole('checkbox', { name: new RegExp(`^${w}`) }).check();
  await page.getByRole('radio', { name: 'Home' }).check();
  if (onForm) await onForm();
  await page.getByRole('button', { name: 'Start visit' }).click();
  await expect(page.getByRole('heading', { name: '1 Consent' })).toBeVisible();
}

/** Answers every consent item: yes, except the item texts matched by `no`. */
export async function answerConsent(page: Page, no: RegExp[] = []): Promise<void> {
  const items = page.locator('fieldset.consent-item');
  await expect(items.first()).toBeVisible();
  const n = await items.count();
  expect(n).toBeGreaterThan(5);
  for (let i = 0; i < n; i++) {
    const item = items.nth(i);
    const text = (await item.locator('legend').textContent()) ?? '';
    const answer = no.some((r) => r.test(text)) ? 'No' : 'Yes';
    await item.getByRole('radio', { name: answer }).check();
  }
}

/** From a visit: the consent of `code`, every item yes, signed and saved. */
export async function giveConsent(page: Page, code: string): Promise<void> {
  await page.getByRole('link', { name: new RegExp(`Consent: ${code}`) }).click();
  await answerConsent(page);
  await sign(page);
  await page.getByRole('button', { name: 'Save consent' }).click();
  await expect(page.getByText('Consent given')).toBeVisible();
}

/** Signs in the signature box with a few strokes. */
export async function sign(page: Page): Promise<void> {
  const pad = page.getByLabel('Signature: sign here with a finger');
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  if (!box) throw new Error('no signature box');
  await page.mouse.move(box.x + 20, box.y + box.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + 20 + i * 25, box.y + box.height / 2 + (i % 2 ? -30 : 30));
  await page.mouse.up();
}

/** The length in seconds of the last recording shown on the page (waits until it is known). */
export async function recordingSeconds(page: Page): Promise<number> {
  const audio = page.locator('[data-testid="playback"] audio').last();
  await expect(audio).toBeAttached({ timeout: 20_000 });
  return audio.evaluate(async (a: HTMLAudioElement) => {
    for (let i = 0; i < 150 && !(Number.isFinite(a.duration) && a.duration > 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return a.duration;
  });
}

/** Records until the recorder's clock shows at least `seconds`. */
export async function recordFor(page: Page, seconds: number): Promise<void> {
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Pause' })).toBeVisible();
  const clock = page.getByTestId('recorder-elapsed');
  await expect.poll(async () => {
    const [m, s] = ((await clock.textContent()) ?? '0:0').trim().split(':').map(Number);
    return m * 60 + s;
  }, { timeout: (seconds + 20) * 1000, intervals: [250] }).toBeGreaterThanOrEqual(seconds);
}
