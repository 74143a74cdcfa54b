// The dashboard in a real browser: Debian's Chromium driven by playwright-core (no browser
// download), against a real server running real flows.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeMalformedDataset } from '@eaglet/fixtures';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, slowDataset, startTestServer } from './helpers.js';

const CHROMIUM = process.env.EAGLET_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots land here (kept as the test's artifacts); EAGLET_UPDATE_DOCS=1 also refreshes docs/dashboard.png. */
const OUT = join(import.meta.dirname, '..', 'test-output');
const DOCS = join(import.meta.dirname, '..', '..', '..', 'docs');

describe('the dashboard in headless Chromium', () => {
  let s: Running;
  let browser: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (npm run bootstrap does), or set EAGLET_CHROMIUM`,
      );
    mkdirSync(OUT, { recursive: true });
    s = await startTestServer();
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'eaglet-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1000 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  async function open(): Promise<void> {
    await page.goto(s.url);
    await page.waitForSelector('#job-kind option[value="validate"]', { state: 'attached' });
  }

  async function startJob(kind: string, config: unknown, name?: string): Promise<string> {
    await page.selectOption('#job-kind', kind);
    if (name) await page.fill('#job-name', name);
    await page.fill('#job-config', JSON.stringify(config, null, 2));
    await page.click('#job-submit');
    await page.waitForFunction(
      (n) => document.querySelector('#d-title')?.textContent?.startsWith(n),
      `${kind}${name ? `: ${name}` : ''} · j-`,
    );
    return (await page.textContent('#d-title'))!.split(' · ')[1]!;
  }

  it('lists the job kinds and explains a refused config field by field', async () => {
    await open();
    const kinds = await page.$$eval('#job-kind option', (os) =>
      os.map((o) => (o as HTMLOptionElement).value),
    );
    expect(kinds).toEqual(expect.arrayContaining(['validate', 'prepare', 'vocab', 'bench']));
    await page.selectOption('#job-kind', 'validate');
    await page.fill('#job-config', JSON.stringify({ files: ['../outside.jsonl'], purpose: 'eat' }));
    await page.click('#job-submit');
    await page.waitForSelector('#job-errors li');
    const errors = await page.$$eval('#job-errors li', (lis) => lis.map((li) => li.textContent));
    expect(errors).toEqual([expect.stringMatching(/^config\.purpose: /)]);
    await page.fill('#job-config', JSON.stringify({ files: ['../outside.jsonl'] }));
    await page.click('#job-submit');
    await page.waitForFunction(() =>
      /outside the allowed roots/.test(document.querySelector('#job-errors')?.textContent ?? ''),
    );
    expect(await page.textContent('#job-errors')).toMatch(/^config\.files\[0\]: /);
  });

  it('starts a job from the page, shows its live progress, and its report when done', async () => {
    await open();
    pageErrors.length = 0; // the refused submissions above logged their 400s
    const slow = slowDataset(join(s.root, 'slow'), 60);
    const id = await startJob('validate', { files: [slow] }, 'live');
    // The progress bar moves while the job runs (events over SSE), then the report appears.
    await page.waitForSelector('#d-progress .progress[data-task="validate"]');
    const bar = () =>
      page.$eval('#d-progress progress', (p) => [
        (p as HTMLProgressElement).value,
        (p as HTMLProgressElement).max,
      ]);
    const whileRunning: number[] = [];
    const until = Date.now() + 90_000;
    while ((await page.textContent('#d-status')) !== 'succeeded') {
      const [value, max] = await bar();
      if (value! > 0 && value! < max!) whileRunning.push(value!);
      if (Date.now() > until) throw new Error('the job did not finish in time');
      await page.waitForTimeout(50);
    }
    // The page showed part of the work done while the job ran, then all of it.
    expect(whileRunning.length).toBeGreaterThan(0);
    const [value, max] = await bar();
    expect(value).toBe(max);
    await page.waitForSelector('#d-validation:not([hidden])');
    expect(await page.textContent('#validation-summary')).toContain('60 (60 valid, 0 invalid)');
    expect(await page.getAttribute(`#job-list li[data-id="${id}"]`, 'data-status')).toBe('succeeded');

    const bad = makeMalformedDataset(join(s.root, 'bad')).jsonl;
    await startJob('validate', { files: [bad] }, 'malformed');
    await page.waitForSelector('#validation-problems tbody tr');
    const rows = await page.$$eval('#validation-problems tbody tr', (trs) => trs.length);
    expect(rows).toBeGreaterThanOrEqual(12);
    await page.screenshot({ path: join(OUT, 'dashboard-validate.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('runs a tiny training from the page, draws its curves live, then opens the benchmark chart', async () => {
    await open();
    pageErrors.length = 0;
    // The quickstart pipeline: real speech, a tiny random Qwen2-Audio, prepare, regenerate, vocab,
    // then the engine trains a draft (its metrics events are the curves) and benches it.
    const id = await startJob('quickstart', { dir: 'qs', trainSteps: 60, numSpecTokens: 3 }, 'tiny');
    const points = () => page.$eval('#chart-loss', (el) => Number((el as HTMLElement).dataset.points));
    await page.waitForFunction(
      () => Number(document.querySelector<HTMLElement>('#chart-loss')?.dataset.points) > 0,
      null,
      {
        timeout: 240_000,
      },
    );
    const first = await points();
    expect(await page.textContent('#d-status')).toBe('running');
    await page.screenshot({ path: join(OUT, 'dashboard-training.png'), fullPage: true });
    // More points arrive while the job runs: the curve grows without a reload.
    await page.waitForFunction(
      (n) => Number(document.querySelector<HTMLElement>('#chart-loss')?.dataset.points) > n,
      first,
      {
        timeout: 240_000,
      },
    );
    expect(await points()).toBeGreaterThan(first);
    const accSeries = await page.$$eval('#chart-acc .u-legend th', (ths) =>
      ths.map((t) => t.textContent?.trim()),
    );
    expect(accSeries).toEqual(expect.arrayContaining(['acc_0', 'acc_1', 'acc_2']));

    await page.waitForFunction(() => document.querySelector('#d-status')?.textContent === 'succeeded', null, {
      timeout: 300_000,
    });
    // The benchmark: throughput of both runs, acceptance at each of the 3 draft positions.
    await page.waitForSelector('#d-bench:not([hidden])');
    expect(await page.getAttribute('#chart-throughput', 'data-bars')).toBe('2');
    expect(await page.getAttribute('#chart-acceptance', 'data-bars')).toBe('3');
    expect(await page.textContent('#bench-summary')).toMatch(/mean acceptance length/);
    await page.locator('#d-bench').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });

    // The report's own plot is one click away among the artifacts.
    const plot = page.locator('#d-artifacts a', { hasText: 'report.png' });
    const [tab] = await Promise.all([browser.waitForEvent('page'), plot.click()]);
    await tab.waitForLoadState();
    const img = await tab.evaluate(() => {
      const i = document.querySelector('img');
      return i ? { w: i.naturalWidth, h: i.naturalHeight } : undefined;
    });
    expect(img!.w).toBeGreaterThan(100);
    await tab.close();
    expect(await page.getAttribute(`#job-list li[data-id="${id}"]`, 'data-status')).toBe('succeeded');
    expect(pageErrors).toEqual([]);
  });

  it('keeps the screenshots as artifacts (and for the README when asked)', () => {
    for (const f of ['dashboard-validate.png', 'dashboard-training.png', 'dashboard.png'])
      expect(existsSync(join(OUT, f)), f).toBe(true);
    if (process.env.EAGLET_UPDATE_DOCS === '1')
      copyFileSync(join(OUT, 'dashboard.png'), join(DOCS, 'dashboard.png'));
  });
});
