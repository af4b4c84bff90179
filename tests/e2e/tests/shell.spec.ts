// The PWA shell: the app starts, works from a cold browser with the server gone, and waits
// for the fieldworker before applying an update.
import { test, expect } from '@playwright/test';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer, distDir } from '../support/server';
import { freshProfileDir, launchTablet } from '../support/browser';
import { screenshots, waitForOfflineReady, watchErrors } from '../support/app';
import { createProfile, unlock } from '../support/profile';

test('the home screen says what Attune is for and offers a first action, without errors', async ({ page }) => {
  const server = await startServer();
  try {
    const errors = watchErrors(page);
    const encodings: Record<string, string | undefined> = {};
    page.on('response', (response) => {
      const path = new URL(response.url()).pathname;
      if (/\.wasm$|^\/$/.test(path)) encodings[path.endsWith('.wasm') ? 'wasm' : 'page'] = response.headers()['content-encoding'];
    });
    await page.goto(server.url);
    await createProfile(page);
    // The page and the wasm arrive brotli-compressed (written at build time).
    expect(encodings).toEqual({ page: 'br', wasm: 'br' });
    await expect(page.getByRole('heading', { name: /Video Interaction Guidance/, level: 1 })).toBeVisible();
    await expect(page.getByText('Record consent, interview notes')).toBeVisible();
    await expect(page.getByRole('link', { name: 'Start visit' })).toBeVisible();
    await expect(page.getByRole('status').filter({ hasText: 'Online' })).toBeVisible();
    await waitForOfflineReady(page);
    await expect(page.getByTestId('offline-readiness')).toHaveClass(/\bok\b/);
    await screenshots(page, 'home');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await expect(page.getByRole('heading', { name: 'Storage on this tablet' })).toBeVisible();
    await expect(page.getByTestId('storage-used')).not.toHaveText('unknown');
    await expect(page.getByText('deletes any work that has not been synced')).toBeVisible();
    await screenshots(page, 'settings-storage');
    expect(errors, 'console errors (CSP violations show up here)').toEqual([]);
  } finally {
    await server.stop();
  }
});

test('on an iPad the home screen asks for the app to be added to the Home Screen, until it is', async ({ browser }) => {
  // `navigator.standalone` as iPadOS defines it: false in a Safari tab, true from the Home
  // Screen. Other browsers have no such property and get no such line.
  const server = await startServer();
  try {
    for (const standalone of [false, true, undefined]) {
      const context = await browser.newContext({ viewport: { width: 768, height: 1024 } });
      if (standalone !== undefined) {
        await context.addInitScript((value) => {
          Object.defineProperty(Navigator.prototype, 'standalone', { get: () => value, configurable: true });
        }, standalone);
      }
      const page = await context.newPage();
      await page.goto(server.url);
      await createProfile(page);
      const line = page.getByTestId('home-screen');
      if (standalone === false) {
        await expect(line).toHaveClass(/\bwarn\b/);
        await expect(line).toContainText('tap Share, then Add to Home Screen');
        await screenshots(page, 'home-ipad-not-added');
      } else if (standalone === true) {
        await expect(line).toHaveClass(/\bok\b/);
        await expect(line).toContainText('Opened from the Home Screen');
      } else {
        await expect(page.getByTestId('storage-persistence')).toBeVisible();
        await expect(line).toHaveCount(0);
      }
      await context.close();
    }
  } finally {
    await server.stop();
  }
});

test('the manifest makes the app installable', async ({ request }) => {
  const server = await startServer();
  try {
    const res = await request.get(`${server.url}/manifest.webmanifest`);
    expect(res.ok()).toBe(true);
    const manifest = await res.json();
    expect(manifest.display).toBe('standalone');
    expect(manifest.start_url).toBe('/');
    expect(manifest.short_name).toBe('Attune');
    const sizes = manifest.icons.map((i: { sizes: string; purpose: string }) => `${i.sizes}/${i.purpose}`);
    for (const want of ['192x192/any', '512x512/any', '192x192/maskable', '512x512/maskable']) expect(sizes).toContain(want);
    for (const icon of manifest.icons) {
      const r = await request.get(`${server.url}${icon.src}`);
      expect(r.ok(), icon.src).toBe(true);
    }
  } finally {
    await server.stop();
  }
});

test('the app starts from a cold browser when the server is unreachable', async () => {
  const profile = freshProfileDir();
  const server = await startServer();
  const url = server.url;
  let tablet = await launchTablet(profile);
  const page = await tablet.newPage();
  await page.goto(url);
  await waitForOfflineReady(page);
  await createProfile(page);
  await tablet.close();
  await server.stop();

  // Nothing listens on that port any more: a fresh browser on the same profile.
  tablet = await launchTablet(profile);
  try {
    const again = await tablet.newPage();
    const errors = watchErrors(again);
    await again.goto(url);
    await unlock(again);
    await expect(again.getByRole('heading', { name: /Video Interaction Guidance/, level: 1 })).toBeVisible();
    await expect(again.getByTestId('offline-readiness')).toHaveClass(/\bok\b/);
    // A deep link works offline too: every route is the same cached shell. A page load
    // always starts locked (the key lives only in memory); unlocking lands on the link.
    await again.goto(`${url}/settings`);
    await unlock(again);
    await expect(again.getByRole('heading', { name: 'Storage on this tablet' })).toBeVisible();
    expect(errors.filter((e) => !/Failed to update a ServiceWorker|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e))).toEqual([]);
  } finally {
    await tablet.close();
  }
});

test('a new version waits for "Update ready" and only reloads when tapped', async () => {
  // The second version is the same build with a changed index.html, put through the same
  // post-build step, so its service worker is a new version, as after a real deployment.
  const v2 = mkdtempSync(join(tmpdir(), 'attune-dist-v2-'));
  cpSync(distDir, v2, { recursive: true });
  const indexPath = join(v2, 'index.html');
  writeFileSync(indexPath, readFileSync(indexPath, 'utf8').replace('<title>Attune</title>', '<title>Attune</title><meta name="attune-test-build" content="v2" />'));
  execFileSync('node', [resolve(__dirname, '..', '..', '..', 'xtask', 'pwa', 'postbuild.mjs'), v2]);

  const profile = freshProfileDir();
  let server = await startServer();
  const tablet = await launchTablet(profile);
  try {
    const page = await tablet.newPage();
    await page.goto(server.url);
    await waitForOfflineReady(page);
    const firstVersion = await page.evaluate(async () => (await caches.keys()).join(','));
    await page.evaluate(() => { (window as unknown as { stillTheSamePage: boolean }).stillTheSamePage = true; });

    // Deploy v2 on the same address while the app is open, then the tablet comes back online.
    await server.stop();
    server = await startServer({ port: server.port, dist: v2 });
    await tablet.setOffline(true);
    await tablet.setOffline(false);
    // ... and the fieldworker brings the app to the front (the other moment it checks).
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));

    const update = page.getByRole('button', { name: 'Update ready' });
    await expect(update).toBeVisible({ timeout: 60_000 });
    await screenshots(page, 'update-ready');
    // Give it time to misbehave: the page must not reload by itself.
    await page.waitForTimeout(1500);
    expect(await page.evaluate(() => (window as unknown as { stillTheSamePage?: boolean }).stillTheSamePage)).toBe(true);
    expect(await page.locator('meta[name="attune-test-build"]').count()).toBe(0);

    await Promise.all([page.waitForEvent('load'), update.click()]);
    expect(await page.evaluate(() => (window as unknown as { stillTheSamePage?: boolean }).stillTheSamePage)).toBeUndefined();
    await expect(page.locator('meta[name="attune-test-build"]')).toHaveCount(1);
    await expect(page.getByRole('heading', { name: 'Welcome to Attune' })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Update ready' })).toHaveCount(0);
    const secondVersion = await page.evaluate(async () => (await caches.keys()).join(','));
    expect(secondVersion).not.toEqual(firstVersion);
  } finally {
    await tablet.close();
    await server.stop();
  }
});
