// The end-to-end smoke in WebKit and Firefox (tests/e2e/engines), driven over WebDriver by
// selenium-webdriver: Playwright only runs the steps and reports. `cargo xtask test` starts
// the engine's driver and sets ATTUNE_ENGINE and ATTUNE_WEBDRIVER_URL.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './engines',
  timeout: 240_000,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list'], ['json', { outputFile: `../../target/e2e-${process.env.ATTUNE_ENGINE || 'engine'}-results.json` }]],
  outputDir: '../../target/e2e-engine-artifacts',
});
