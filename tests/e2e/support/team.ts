// The study team's side of a test with several tablets: the study key, enrolment codes,
// withdrawals and exports made with the real CLI, and enrolling a tablet with a code. Each
// CLI call is in one helper here, so a change of the CLI (e.g. `withdraw` needing the study
// key, an enrolment code carrying the study's fingerprint) is made once.
import { expect, type Page } from '@playwright/test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminCli, studyInit, type RunningServer } from './server';
import { enrolTablet as enrolWithCode } from './sync';
import { nav } from './visit';

/** A study on a running server: the server and the study key file `study init` wrote. */
export interface Study {
  server: RunningServer;
  keyFile: string;
}

/** `attune-server study init`: the study's keys, in a fresh folder. */
export function initStudy(server: RunningServer): Study {
  return { server, keyFile: studyInit(server) };
}

/** Enrols the unlocked profile of `page` with a fresh code and the study fingerprint, on the
 *  Sync screen, and waits for the first sync to end (it reserves the tablet's participant
 *  codes). */
export async function enrolTablet(page: Page, study: Study, fieldworker: string): Promise<void> {
  await enrolWithCode(page, study.server, study.keyFile, fieldworker);
  await expect(page.getByTestId('sync-last')).toContainText('Last sync', { timeout: 60_000 });
}

/** `attune-server withdraw`, signed with the study key: the participant with this code
 *  withdrew and asked for their data to be deleted. */
export function withdraw(study: Study, code: string): string {
  return adminCli(study.server, ['withdraw', '--key', study.keyFile, '--participant', code]);
}

/** One record of the export's records.json (its revisions left out here). */
export interface ExportedRecord {
  record_id: string;
  kind: string;
  participant_code: string | null;
}

/** `attune-server export` with the study key: the records of records.json. */
export function exportRecords(study: Study): ExportedRecord[] {
  const out = mkdtempSync(join(tmpdir(), 'attune-export-'));
  adminCli(study.server, ['export', '--key', study.keyFile, '--out', out]);
  return JSON.parse(readFileSync(join(out, 'records.json'), 'utf8')).records;
}

/** "Sync now" on the Sync screen, waiting for the sync to end. */
export async function syncNow(page: Page): Promise<void> {
  await nav(page, 'Sync');
  const button = page.getByRole('button', { name: 'Sync now' });
  await expect(button).toBeEnabled({ timeout: 60_000 });
  await button.click();
  await expect(page.getByRole('button', { name: 'Sync now' })).toBeEnabled({ timeout: 60_000 });
}
