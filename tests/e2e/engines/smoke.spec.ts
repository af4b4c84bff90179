// The app end to end in another engine, over WebDriver (selenium-webdriver): WebKit (the
// engine of every iPad browser) through WebKitGTK's WebKitWebDriver, or Firefox ESR through
// geckodriver. `cargo xtask test` starts the driver and sets ATTUNE_ENGINE (`webkit` or
// `firefox`) and ATTUNE_WEBDRIVER_URL; the Playwright runner only runs the steps (it opens no
// Chromium here). As a fieldworker would: a profile, a carer and their child, a visit,
// consent signed with a finger, a recording (played back in the engine), a note; the child's
// screen and Stop; enrolment and sync, and the export has the recording as a file of the
// engine's own format (AAC in MP4 from WebKit, as an iPad records; Opus in WebM from Firefox);
// then the server is stopped and the app starts again from its service worker, unlocks, and
// the note is there.
import { test, expect } from '@playwright/test';
import { By, Capabilities, error, WebDriver, type WebElement } from 'selenium-webdriver';
import { Executor, HttpClient } from 'selenium-webdriver/http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PASSPHRASE } from '../support/profile';
import { adminCli, enrolCode, startServer, studyInit, type RunningServer } from '../support/server';

const engine = process.env.ATTUNE_ENGINE ?? '';
const driverUrl = process.env.ATTUNE_WEBDRIVER_URL ?? '';
const NOTE = 'She found being filmed strange at first.';
const WAIT = 30_000;

/** The session's capabilities: each engine headless (WebKit in the virtual display the
 *  driver runs in), with a fake microphone and no permission prompts. */
function capabilities(): Capabilities {
  if (engine === 'firefox') {
    // The same Firefox options as the wasm browser tests (webdriver.json), headless.
    const options = JSON.parse(readFileSync(resolve(__dirname, '..', '..', '..', 'webdriver.json'), 'utf8'))['moz:firefoxOptions'];
    return new Capabilities({
      browserName: 'firefox',
      'moz:firefoxOptions': { ...options, args: ['-headless'] },
    });
  }
  if (engine === 'webkit') {
    return new Capabilities({
      'webkitgtk:browserOptions': {
        binary: process.env.ATTUNE_MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
        args: ['--automation', '--enable-media-stream=true', '--enable-mock-capture-devices=true',
          '--media-playback-requires-user-gesture=false'],
      },
    });
  }
  throw new Error(`ATTUNE_ENGINE must be webkit or firefox, not "${engine}"`);
}

/** A string as an XPath literal (the texts here hold no double quotes). */
const lit = (s: string) => `"${s}"`;

class App {
  constructor(readonly d: WebDriver) {}

  /**
   * Waits until `cond` holds. The app re-renders as it loads and syncs, so an element found a
   * moment ago may be gone (stale) or not there yet: both mean "not yet", never a failure.
   */
  async poll<T>(cond: () => Promise<T>, message: string, timeout = WAIT): Promise<T> {
    return this.d.wait(async () => {
      try {
        return await cond();
      } catch (e) {
        if (e instanceof error.StaleElementReferenceError || e instanceof error.NoSuchElementError) return false as T;
        throw e;
      }
    }, timeout, message);
  }

  async find(xpath: string): Promise<WebElement> {
    let found: WebElement | undefined;
    await this.poll(async () => {
      const el = await this.d.findElement(By.xpath(xpath));
      if (!(await el.isDisplayed())) return false;
      found = el;
      return true;
    }, `nothing visible matches ${xpath}`);
    return found!;
  }

  /** An input or textarea by the words of its label (the label wraps a span and the field). */
  field(label: string) {
    return this.find(`//label[normalize-space(span)=${lit(label)} or normalize-space(text())=${lit(label)}]//*[self::input or self::textarea]`
      + ` | //label[@for and normalize-space()=${lit(label)}]/following::*[self::input or self::textarea][1]`);
  }

  async fill(label: string, text: string) {
    const f = await this.field(label);
    await f.clear();
    await f.sendKeys(text);
  }

  async click(xpath: string) {
    // Found again if it re-renders between being found and being clicked.
    await this.poll(async () => {
      const el = await this.find(xpath);
      await this.d.executeScript('arguments[0].scrollIntoView({block: "center"})', el);
      if (!(await el.isEnabled())) return false;
      await el.click();
      return true;
    }, `not enabled: ${xpath}`);
  }

  /** A button by its accessible name: its text, or its aria-label (picture buttons such as child mode's Stop). */
  button(name: string) { return this.click(`//button[normalize-space()=${lit(name)} or @aria-label=${lit(name)}]`); }
  link(start: string) { return this.click(`//a[starts-with(normalize-space(), ${lit(start)})]`); }
  choose(start: string) { return this.click(`//label[starts-with(normalize-space(), ${lit(start)})][.//input]`); }
  nav(name: string) { return this.click(`//nav[@aria-label="Main"]//a[normalize-space()=${lit(name)}]`); }

  async text(xpath: string): Promise<string> {
    let text = '';
    await this.poll(async () => { text = await (await this.find(xpath)).getText(); return true; }, `the text of ${xpath}`);
    return text;
  }
  async sees(words: string) { await this.find(`//*[normalize-space()=${lit(words)}]`); }
  testid(id: string) { return this.find(`//*[@data-testid=${lit(id)}]`); }

  /** The code (or provisional label) in the page's heading. */
  async heading(): Promise<string> {
    const code = /^[A-Z](\d\d+|-new-\d+)/;
    let found = '';
    // Found again on every try: the page may re-render the heading while it loads.
    await this.d.wait(async () => {
      try {
        const text = await (await this.d.findElement(By.xpath('//main//h1'))).getText();
        found = text.match(code)?.[0] ?? '';
      } catch {
        found = '';
      }
      return found !== '';
    }, WAIT, 'a participant heading');
    return found;
  }

  async newParticipant(group: string, linkTo?: string): Promise<string> {
    await this.nav('Participants');
    await this.link('New participant');
    await this.choose(`${group} (`);
    if (linkTo) await this.click(`//fieldset[starts-with(normalize-space(legend), "Linked to")]//label[starts-with(normalize-space(), ${lit(linkTo)})]`);
    await this.button('Create participant');
    return this.heading();
  }

  /** Waits until the service worker controls the page (the app can start with no network). */
  async offlineReady() {
    await this.d.wait(async () => this.d.executeAsyncScript(`
      const done = arguments[arguments.length - 1];
      navigator.serviceWorker.getRegistration().then((reg) =>
        done(!!reg && !!reg.active && reg.active.state === 'activated' && !!navigator.serviceWorker.controller),
        () => done(false));`), WAIT, 'the service worker to take control');
  }

  async unlock() {
    await this.find(`//h1[normalize-space()="Unlock Attune"]`);
    await this.choose('Sam');
    await this.fill('Passphrase', PASSPHRASE);
    await this.button('Unlock');
    await this.poll(async () => (await (await this.testid('profile-name')).getText()) === 'Sam', 'unlocked');
  }
}

let server: RunningServer;
let driver: WebDriver;

test.skip(!engine, 'run by cargo xtask test with ATTUNE_ENGINE and ATTUNE_WEBDRIVER_URL');

test.beforeAll(async () => {
  server = await startServer();
  driver = await WebDriver.createSession(new Executor(new HttpClient(driverUrl)), capabilities());
  await driver.manage().window().setRect({ width: 768, height: 1024 }).catch(() => undefined);
});

test.afterAll(async () => {
  await driver?.quit().catch(() => undefined);
  await server?.stop();
});

test(`${engine}: a visit, consent, a recording that plays back, a note, child mode, sync and export, then an offline restart keeps the note`, async () => {
  test.setTimeout(240_000);
  const app = new App(driver);
  await driver.get(server.url);
  await app.offlineReady();

  // A profile.
  await app.fill('Your name', 'Sam');
  await app.fill('Passphrase', PASSPHRASE);
  await app.fill('Passphrase again', PASSPHRASE);
  await app.button('Create profile');
  await app.poll(async () => (await (await app.testid('profile-name')).getText()) === 'Sam', 'the new profile');

  // A carer, their child, a visit with both.
  const carer = await app.newParticipant('Carers');
  const child = await app.newParticipant('Children', carer);
  await app.nav('Home');
  await app.link('Start visit');
  await app.choose(carer);
  await app.choose(child);
  await app.choose('Family home');
  await app.button('Start visit');
  await app.find(`//h2[normalize-space()="1 Consent"]`);

  // The carer's consent: every item yes, signed with a finger on the pad.
  await app.link(`Consent: ${carer}`);
  // The form renders after the consent screen loads: wait for its items.
  let items: WebElement[] = [];
  await app.poll(async () => (items = await driver.findElements(By.css('fieldset.consent-item'))).length > 5, 'the consent items');
  for (const item of items) {
    const yes = await item.findElement(By.xpath(`.//label[normalize-space(span)="Yes"]//input`));
    await driver.executeScript('arguments[0].scrollIntoView({block: "center"})', yes);
    await yes.click();
  }
  const pad = await driver.findElement(By.css('canvas.signature-pad'));
  await driver.executeScript('arguments[0].scrollIntoView({block: "center"})', pad);
  let stroke = driver.actions({ async: true }).move({ origin: pad, x: -120, y: 0 }).press();
  for (let i = 1; i <= 10; i++) stroke = stroke.move({ origin: pad, x: -120 + i * 25, y: i % 2 ? -25 : 25, duration: 20 });
  await stroke.release().perform();
  await app.button('Save consent');
  await app.sees('Consent given');

  // The interview: a short recording that plays back here, then a note, saved on the tablet.
  await app.link(`Interview: ${carer}`);
  await app.button('Record');
  await app.find('//button[normalize-space()="Pause"]');
  await app.poll(async () => {
    const [m, s] = (await (await app.testid('recorder-elapsed')).getText()).trim().split(':').map(Number);
    return m * 60 + s >= 2;
  }, 'two seconds recorded');
  await app.button('Stop');
  // Played back: the player plays the recording to its end (muted), in this engine.
  const duration = await driver.executeAsyncScript(`
    const done = arguments[arguments.length - 1];
    const started = Date.now();
    (function poll() {
      const a = document.querySelector('[data-testid="playback"] audio');
      if (a && a.error) return done('error ' + a.error.code + ' ' + a.error.message);
      if (a && a.readyState >= 1) {
        a.muted = true;
        a.addEventListener('ended', () => done(a.currentTime));
        return a.play().catch((e) => done('does not play: ' + e));
      }
      if (Date.now() - started > 20000) return done('no playback');
      setTimeout(poll, 100);
    })();`);
  expect(duration, 'the recording plays to its end').toBeGreaterThan(1);
  await app.fill('Notes', NOTE);
  await app.poll(async () => (await (await app.testid('save-status')).getText()).includes('Saved on this tablet'), 'the note saved');
  const interviewUrl = await driver.getCurrentUrl();
  await app.link('Back to visit');

  // The child's first screen renders; Stop ends the session with thanks; the fieldworker
  // leaves child mode with the passphrase.
  await app.link(`Hand the tablet to ${child}`);
  await app.button('Start child mode');
  await app.testid('child-mode');
  await app.button('Stop');
  await app.sees('Thank you for doing this with me!');
  await app.button('Fieldworker: finish');
  await app.fill('Fieldworker PIN or passphrase', PASSPHRASE);
  await app.button('Finish child mode');
  await app.testid('child-summary');

  // Enrolled and synced: the recording reaches the export as a file of its own type.
  const keyFile = studyInit(server);
  const { code, fingerprint } = enrolCode(server, keyFile, 'Sam');
  await app.nav('Sync');
  await app.fill('Enrolment code', code);
  await app.fill('Study fingerprint', fingerprint);
  await app.click('//button[starts-with(normalize-space(), "Enrol this tablet")]');
  await app.find('//h2[normalize-space()="Send your work to the research team"] | //h1[normalize-space()="Send your work to the research team"]');
  await app.poll(async () => {
    const visits = await driver.findElements(By.css('[data-testid="sync-visit"]'));
    if (visits.length === 0) return false;
    for (const visit of visits) if (!(await visit.getText()).includes('Confirmed on the server')) return false;
    return true;
  }, 'the visit confirmed on the server', 90_000);
  const out = mkdtempSync(join(tmpdir(), `attune-export-${engine}-`));
  adminCli(server, ['export', '--key', keyFile, '--out', out]);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  expect(manifest.attachment_problems).toEqual([]);
  expect(manifest.attachments).toHaveLength(1);
  const recording = manifest.attachments[0];
  const bytes = readFileSync(join(out, recording.name));
  const signature = { webm: [0x1a, 0x45, 0xdf, 0xa3], m4a: [...Buffer.from('ftyp')], ogg: [...Buffer.from('OggS')] };
  const extension = recording.name.split('.').pop() as keyof typeof signature;
  expect(Object.keys(signature), `${recording.media_type} exported as .${extension}`).toContain(extension);
  const at = extension === 'm4a' ? 4 : 0;
  expect([...bytes.subarray(at, at + 4)], `${recording.name} is ${recording.media_type}`).toEqual(signature[extension]);
  console.log(`${engine} recorded ${recording.media_type} (${bytes.length} bytes), exported as ${recording.name}`);

  // No server: the app starts from the service worker, unlocks, and the note is there.
  await server.stop();
  await driver.get(interviewUrl);
  await app.unlock();
  await app.poll(async () => (await (await app.field('Notes')).getAttribute('value')) === NOTE, 'the note after an offline restart');
});
