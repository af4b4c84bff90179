// The researcher console builds the whole export in the page: a tablet syncs a visit (a
// carer's consent, an interview note, a short recording), the console opens the study key,
// builds the export with progress shown and saves it as one zip. The zip holds the same files
// as `attune-server export` run by the CLI on the same database, with the same bytes, except
// where the two legitimately differ:
// - when it was made and by whom: manifest.json's `exported_at` and `exported_by`, and the
//   export time written into README.txt, attune.qdpx, the Word documents and the ELAN files;
// - where it is: the CLI writes the export folder's absolute path into attune.qdpx
//   (`basePath`, each source's `currentPath`) and the ELAN files (`MEDIA_URL`); the console
//   cannot know where the zip will be unpacked and leaves it empty (the relative links, the
//   same in both, are what the tools follow);
// - hence the manifest's `bytes` and `sha256` of exactly those files.
// Those are compared with the time and the folder replaced by placeholders (the .qdpx and
// .docx files are zips themselves: compared entry by entry); every other file byte for byte.
import { test, expect, type BrowserContext, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { adminCli, startServer, type RunningServer } from '../support/server';
import { expectAccessible, screenshotDir, waitForOfflineReady, watchErrors } from '../support/app';
import { adminConsole, screen } from '../support/console';
import { createProfile } from '../support/profile';
import { giveConsent, newParticipant, recordFor, startVisit } from '../support/visit';
import { enrolTablet, initStudy, syncNow, type Study } from '../support/team';

const NOTE = 'Export-5K9 she describes the first filmed session.';

let server: RunningServer;
test.beforeAll(async () => { server = await startServer(); });
test.afterAll(async () => { await server.stop(); });

/** The Export screen at desk and tablet sizes. */
async function shots(page: Page, name: string) {
  mkdirSync(screenshotDir, { recursive: true });
  for (const [w, h] of [[1280, 800], [768, 1024]] as const) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: join(screenshotDir, `console-export-${name}-${w}x${h}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** A tablet's visit: a carer, their consent, a note during a short recording, a sync. */
async function tabletVisit(tablet: BrowserContext, study: Study): Promise<string> {
  const page = await tablet.newPage();
  await page.goto(server.url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await enrolTablet(page, study, 'Ana Field');
  const carer = await newParticipant(page, 'Carers');
  await startVisit(page, [carer]);
  await giveConsent(page, carer);
  await page.getByRole('link', { name: new RegExp(`Interview: ${carer}`) }).click();
  await expect(page.getByTestId('audio-allowed')).toBeVisible();
  await recordFor(page, 1);
  await page.getByRole('navigation', { name: 'Questions' }).getByRole('button').nth(0).click();
  await page.getByLabel('Notes', { exact: true }).fill(NOTE);
  await expect(page.getByTestId('save-status')).toContainText('Saved on this tablet');
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.locator('[data-testid="playback"] audio').last()).toBeAttached({ timeout: 20_000 });
  await syncNow(page);
  await expect(page.getByTestId('sync-waiting')).toContainText('Nothing is waiting', { timeout: 60_000 });
  return carer;
}

/** Every file under `dir`, by its path relative to `dir` (with `/`). */
function filesUnder(dir: string): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.set(relative(dir, path).split('\\').join('/'), readFileSync(path));
    }
  };
  walk(dir);
  return found;
}

/** A zip's entries, checked (CRC of every entry) and unpacked by Python's zipfile. */
function unzip(zip: Buffer | string): Map<string, Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'attune-unzip-'));
  let zipPath = zip as string;
  if (typeof zip !== 'string') {
    zipPath = `${dir}.zip`;
    writeFileSync(zipPath, zip);
  }
  execFileSync('python3', ['-m', 'zipfile', '-t', zipPath]);
  execFileSync('python3', ['-m', 'zipfile', '-e', zipPath, dir]);
  return filesUnder(dir);
}

/** `text` with the export time and the export folder replaced by placeholders. */
function normalised(bytes: Buffer, exportedAt: number, base: string): string {
  const second = new Date(exportedAt).toISOString().slice(0, 19); // YYYY-MM-DDTHH:MM:SS
  let text = bytes.toString('latin1').split(second).join('<EXPORTED_AT>');
  text = text.replace(/<EXPORTED_AT>(\.\d{3}\+00:00|Z)/g, '<EXPORTED_AT>');
  if (base) text = text.split(base).join('<FOLDER>');
  return text
    .replace(/basePath="[^"]*"/g, 'basePath="<FOLDER>"')
    .replace(/absolute:\/\/\/?(<FOLDER>)?\/+/g, 'absolute:///<FOLDER>/')
    .replace(/MEDIA_URL="file:\/\/(<FOLDER>)?\/+/g, 'MEDIA_URL="file://<FOLDER>/');
}

/** Files whose bytes hold the export's time or folder (see the top of this file). */
const differs = (name: string) =>
  name === 'manifest.json' || name === 'README.txt' || name === 'attune.qdpx' ||
  name.startsWith('interviews/') || name.startsWith('elan/');

test('the console builds the whole export in the page, the same files as the CLI', async ({ browser }) => {
  test.setTimeout(180_000);
  const study = initStudy(server);
  const tablet = await browser.newContext({ hasTouch: true, viewport: { width: 768, height: 1024 } });
  const carer = await tabletVisit(tablet, study);
  await tablet.close();

  const { page } = await adminConsole(browser, study, 'Rosa Lead');
  const errors = watchErrors(page);
  await screen(page, 'Export');
  await expect(page.getByTestId('export-counts')).toContainText('1 participant · ');
  await expect(page.getByTestId('export-counts')).toContainText('1 recording');
  await expectAccessible(page, 'export');
  await shots(page, 'before');

  // Every <progress> shown while building, with its words, as the page showed them.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { progressSeen: string[] }).progressSeen = seen;
    new MutationObserver(() => {
      const bar = document.querySelector('[data-testid="export-progress"]');
      const text = bar?.querySelector('label')?.textContent;
      if (bar?.querySelector('progress') && text && seen[seen.length - 1] !== text) seen.push(text);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('button', { name: 'Build the export' }).click();
  const save = page.getByRole('link', { name: /^Save attune-export-\d{4}-\d{2}-\d{2}\.zip$/ });
  await expect(save).toBeVisible({ timeout: 60_000 });
  const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
  expect(seen).toContain('Opening recording 1 of 1…');
  expect(seen).toContain('Writing the files…');
  await expect(page.getByTestId('export-ready')).toContainText('Everything the server holds was exported.');
  await expectAccessible(page, 'export built');
  await shots(page, 'after');

  const [download] = await Promise.all([page.waitForEvent('download'), save.click()]);
  expect(download.suggestedFilename()).toMatch(/^attune-export-\d{4}-\d{2}-\d{2}\.zip$/);
  const inZip = unzip(await download.path());

  const out = realpathSync(mkdtempSync(join(tmpdir(), 'attune-cli-export-')));
  adminCli(server, ['export', '--key', study.keyFile, '--out', out]);
  const byCli = filesUnder(out);

  // The same files.
  expect([...inZip.keys()].sort()).toEqual([...byCli.keys()].sort());
  const names = [...byCli.keys()];
  expect(names.filter((n) => n.startsWith('attachments/'))).toHaveLength(1);
  expect(names).toEqual(expect.arrayContaining(['records.csv', 'records.json', 'attune.qdpx', 'load_attune.R']));
  expect(names.some((n) => n.startsWith('elan/'))).toBe(true);
  expect(inZip.get('records.json')!.toString('utf8')).toContain(NOTE);
  expect(inZip.get('records.csv')!.toString('utf8')).toContain(carer);

  // The same bytes, but for the time and the folder.
  const consoleManifest = JSON.parse(inZip.get('manifest.json')!.toString('utf8'));
  const cliManifest = JSON.parse(byCli.get('manifest.json')!.toString('utf8'));
  expect(consoleManifest.exported_by).toBe('Rosa Lead');
  for (const name of names) {
    const mine = inZip.get(name)!;
    const theirs = byCli.get(name)!;
    if (!differs(name)) {
      expect(mine.equals(theirs), `${name} is the same bytes`).toBe(true);
      continue;
    }
    if (name === 'manifest.json') continue;
    const pair = (a: Buffer, b: Buffer, what: string) => expect(
      normalised(a, consoleManifest.exported_at, ''), what,
    ).toBe(normalised(b, cliManifest.exported_at, out));
    if (name.endsWith('.qdpx') || name.endsWith('.docx')) {
      const [a, b] = [unzip(mine), unzip(theirs)];
      expect([...a.keys()].sort(), name).toEqual([...b.keys()].sort());
      for (const [entry, bytes] of a) pair(bytes, b.get(entry)!, `${name}: ${entry}`);
    } else {
      pair(mine, theirs, name);
    }
  }
  // The manifest: the same, less when and by whom, and the hashes of the files above.
  const strip = (m: { exported_at?: number; exported_by?: string; files: { name: string; bytes?: number; sha256?: string }[] }) => {
    delete m.exported_at;
    delete m.exported_by;
    for (const f of m.files) if (differs(f.name)) { delete f.bytes; delete f.sha256; }
    return m;
  };
  expect(strip(consoleManifest)).toEqual(strip(cliManifest));
  expect(consoleManifest.attachment_problems).toEqual([]);
  expect(consoleManifest.problems).toEqual([]);

  // The recording's file is lost on the server: the export still completes, and says so on
  // the screen and in its manifest.
  const blobs = join(server.dataDir, 'blobs');
  for (const dir of readdirSync(blobs)) rmSync(join(blobs, dir), { recursive: true });
  await page.getByRole('button', { name: 'Build the export' }).click();
  const problems = page.getByTestId('export-problems');
  await expect(problems).toContainText('1 thing could not be exported');
  await expect(problems).toContainText('the server holds no complete upload of it');
  await expectAccessible(page, 'export with a problem');
  await shots(page, 'problem');
  const [again] = await Promise.all([page.waitForEvent('download'), save.click()]);
  const withProblem = unzip(await again.path());
  expect([...withProblem.keys()].filter((n) => n.startsWith('attachments/'))).toEqual([]);
  const listed = JSON.parse(withProblem.get('manifest.json')!.toString('utf8')).attachment_problems;
  expect(listed).toHaveLength(1);
  expect(listed[0].problem).toBe('the server holds no complete upload of it');
  expect(listed[0].participant_code).toBe(carer);
  // The server answered the missing recording with 404; nothing else went wrong.
  expect(errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
  await page.context().close();
});
