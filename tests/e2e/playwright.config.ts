// Playwright drives Debian's Chromium (/usr/bin/chromium): browsers cannot be downloaded here.
// `cargo xtask test` builds the app and the server once and passes them in ATTUNE_DIST and
// ATTUNE_SERVER_BIN; every test starts its own real attune-server on a free port.
import { defineConfig } from '@playwright/test';
import { chromiumArgs, chromiumPath } from './support/browser';

export default defineConfig({
  testDir: './tests',
  timeout: 90_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list'], ['json', { outputFile: '../../target/e2e-results.json' }]],
  outputDir: '../../target/e2e-artifacts',
  use: {
    browserName: 'chromium',
    launchOptions: { executablePath: chromiumPath, args: chromiumArgs },
    viewport: { width: 768, height: 1024 },
    serviceWorkers: 'allow',
    trace: 'retain-on-failure',
  },
});
