// The dashboard in a real browser: Debian's Chromium driven by playwright-core (no browser
// download), against a real server running real flows.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  makeMalformedDataset,
  makeSpeechDataset,
  sharpenedModel,
  tinyQwen2AudioModel,
} from '@eaglet/fixtures';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, type Running, slowDataset, startTestServer, tmp, waitForJob } from './helpers.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

const CHROMIUM = process.env.EAGLET_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots land here (kept as the test's artifacts); EAGLET_UPDATE_DOCS=1 also refreshes docs/dashboard.png. */
const OUT = join(import.meta.dirname, '..', 'test-output');
const DOCS = join(import.meta.dirname, '..', '..', '..', 'docs');

describe('the dashboard in headless Chromium', () => {
  let s: Running;
  let browser: BrowserContext;
  let page: Page;
  let model: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (npm run bootstrap does), or set EAGLET_CHROMIUM`,
      );
    rmSync(OUT, { recursive: true, force: true }); // screenshots of this run only
    mkdirSync(OUT, { recursive: true });
    // The tiny model lives in the fixtures cache: a second root makes it reachable.
    model = sharpenedModel(tinyQwen2AudioModel());
    s = await startTestServer({ roots: [tmp(), dirname(model)] });
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

  it('trains a tiny draft from the page, draws its curves live, then benches it and opens the charts', async () => {
    // Data for it, made through the API the way the quickstart makes it: the target (a tiny random
    // Qwen2-Audio with a sharpened output head) answers real speech again through the embedded
    // backend's OpenAI server, those answers are prepared, and the draft vocabulary built from them.
    makeSpeechDataset(join(s.root, 'speech'));
    const { createEaglet, serveBackend } = await import('@eaglet/flows');
    let answers: string[] = [];
    const backend = await serveBackend((await createEaglet({ cwd: s.root })).registry, {
      backend: 'torch',
      target: 'qwen2-audio',
      targetModel: model,
      host: '127.0.0.1',
      port: await freePort(),
      maxModelLen: 4096,
    });
    try {
      const regen = await http(s.url, 'POST', '/api/jobs', {
        body: {
          kind: 'regenerate',
          config: { data: ['speech/data.jsonl'], outputDir: 'regen', endpoints: backend.urls, maxTokens: 24 },
        },
      });
      const regenerated = await waitForJob(s.url, regen.json.id, undefined, 300_000);
      expect(regenerated.status).toBe('succeeded');
      answers = regenerated.result.shards;
    } finally {
      await backend.stop();
    }
    const prep = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'prepare', config: { model, data: answers, out: 'prepared' } },
    });
    expect((await waitForJob(s.url, prep.json.id, undefined, 180_000)).status).toBe('succeeded');
    const vocab = await http(s.url, 'POST', '/api/jobs', {
      body: { kind: 'vocab', config: { data: ['prepared'], out: 'vocab.safetensors', draftVocabSize: 4096 } },
    });
    expect((await waitForJob(s.url, vocab.json.id)).status).toBe('succeeded');

    await open();
    pageErrors.length = 0;
    const trainId = await startJob(
      'train',
      {
        targetModel: model,
        trainData: ['prepared'],
        vocab: 'vocab.safetensors',
        outputDir: 'train',
        maxSteps: 60,
        logEvery: 5,
        precision: 'fp32',
        device: 'cpu',
        compile: 'off',
        ttt: { steps: 3 },
        optimizer: { lr: 0.003 },
      },
      'tiny',
    );
    const points = () => page.$eval('#chart-loss', (el) => Number((el as HTMLElement).dataset.points));
    const morePoints = (n: number) =>
      page.waitForFunction(
        (k) => Number(document.querySelector<HTMLElement>('#chart-loss')?.dataset.points) > k,
        n,
        {
          timeout: 240_000,
        },
      );
    await morePoints(0);
    const first = await points();
    // More points arrive while the job runs: the curve grows without a reload.
    await morePoints(first);
    expect(await points()).toBeGreaterThan(first);
    const accSeries = await page.$$eval('#chart-acc .u-legend th', (ths) =>
      ths.map((t) => t.textContent?.trim()),
    );
    expect(accSeries).toEqual(expect.arrayContaining(['acc_0', 'acc_1', 'acc_2']));
    await page.waitForFunction(() => document.querySelector('#d-status')?.textContent === 'succeeded', null, {
      timeout: 300_000,
    });
    expect(await points()).toBeGreaterThanOrEqual(12 * 4); // 12 logged steps of loss and ploss_0..2
    await page.screenshot({ path: join(OUT, 'dashboard-training.png'), fullPage: true });
    expect(await page.getAttribute(`#job-list li[data-id="${trainId}"]`, 'data-status')).toBe('succeeded');

    // Bench the draft it trained, from the page too.
    await startJob(
      'bench',
      {
        targetModel: model,
        draftModel: 'train/draft',
        testDataPath: 'speech/data.jsonl',
        outputFile: 'bench/report.json',
        numPrompts: 3,
        outputLen: 16,
        numSpecTokens: 3,
        warmupPrompts: 0,
        device: 'cpu',
      },
      'tiny draft',
    );
    await page.waitForFunction(() => document.querySelector('#d-status')?.textContent === 'succeeded', null, {
      timeout: 300_000,
    });
    // The benchmark: throughput of both runs, acceptance at each of the 3 draft positions.
    await page.waitForSelector('#d-bench:not([hidden])');
    expect(await page.getAttribute('#chart-throughput', 'data-bars')).toBe('2');
    expect(await page.getAttribute('#chart-acceptance', 'data-bars')).toBe('3');
    expect(await page.textContent('#bench-summary')).toMatch(/mean acceptance length/);
    await page.screenshot({ path: join(OUT, 'dashboard-bench.png'), fullPage: true });

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

    // Back to the training job: its curves are rebuilt from the stored events.
    await page.click(`#job-list li[data-id="${trainId}"]`);
    await morePoints(12 * 4 - 1);
    expect(pageErrors).toEqual([]);
  }, 900_000);

  it('keeps the screenshots as artifacts (and for the README when asked)', () => {
    for (const f of ['dashboard-validate.png', 'dashboard-training.png', 'dashboard-bench.png'])
      expect(existsSync(join(OUT, f)), f).toBe(true);
    if (process.env.EAGLET_UPDATE_DOCS === '1') {
      copyFileSync(join(OUT, 'dashboard-training.png'), join(DOCS, 'dashboard.png'));
      copyFileSync(join(OUT, 'dashboard-bench.png'), join(DOCS, 'dashboard-bench.png'));
    }
  });
});
