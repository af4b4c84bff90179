// How Chromium is started here: Debian's binary, and flags without which it tries to reach
// Google's services (refused on this closed network) or needs a sandbox we do not have as root.
import { chromium, type BrowserContext, type LaunchOptions } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

/** A fresh, empty browser profile directory. */
export function freshProfileDir(): string {
  return mkdtempSync(join(tmpdir(), 'attune-profile-'));
}

/** Starts Chromium on a profile directory that survives closing it: closing and launching
 *  again on the same directory is a cold start of the same "tablet". */
export async function launchTablet(profileDir: string, options: Partial<LaunchOptions> & { viewport?: { width: number; height: number } } = {}): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    args: chromiumArgs,
    headless: true,
    viewport: options.viewport ?? { width: 768, height: 1024 },
    serviceWorkers: 'allow',
  });
}
