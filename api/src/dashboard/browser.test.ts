/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the real
 * service: the API listening on a port, a real job worker and run worker, real UML builds.
 *  - a small KUnit job submitted through the API: its page shows the first result live, then
 *    the final state, without a reload;
 *  - a real run of the fixture series (the same small kunitconfig and kernels as the run
 *    end-to-end test, so the base builds are shared): its page says the verdict in words;
 *  - the jobs page lists and filters;
 *  - no page logs a console error.
 * Screenshots of the job, run and jobs pages go to $NOMMU_CI_SCREENSHOTS (default: a directory
 * under the system's temporary directory, printed by the test).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { loadBootSelftests, loadCatalog, loadSeries, REPO_DIR, runQueueNames, RunStore, type QueueJobData } from '@nommu-ci/shared';
import { startWorker, type RunningWorker } from '@nommu-ci/worker';
import { startRunWorker, type RunningRunWorker } from '../../../worker/src/runs/index.js';
import { freshQueueName, startTestRedis, type TestRedis } from '../../../worker/test/helpers.js';
import { buildApp } from '../app.js';

const SMALL = 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n';
const FIXTURE = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8');
const CHROMIUM = process.env.NOMMU_CI_CHROMIUM ?? '/usr/bin/chromium';
const kernel = loadCatalog()[0]!;
const series = loadSeries();
// Generous: on a fresh machine the first job builds the small MMU kernel cold, maybe next to other builds.
const JOB_TIMEOUT_MS = 60 * 60_000;
const RUN_TIMEOUT_MS = 75 * 60_000;
const SHOTS = process.env.NOMMU_CI_SCREENSHOTS ?? path.join(os.tmpdir(), `nommu-ci-dashboard-screenshots-${process.pid}`);

describe.skipIf(!kernel.available || series === null)('the dashboard in a real browser', () => {
  let t: TestRedis;
  let queue: Queue<QueueJobData>;
  let worker: RunningWorker | undefined;
  let runWorker: RunningRunWorker;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let base: string;
  let browser: BrowserContext;
  let profile: string;
  const consoleErrors: string[] = [];

  async function open(url: string): Promise<Page> {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${url}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`${url}: ${e.message}`));
    await page.goto(base + url);
    return page;
  }

  beforeAll(async () => {
    t = await startTestRedis('dashboard');
    const name = freshQueueName('nci-dashboard');
    queue = new Queue<QueueJobData>(name, { connection: { host: '127.0.0.1', port: t.server.port, maxRetriesPerRequest: null } });
    app = await buildApp({ redis: t.redis, store: t.store, queue, catalog: () => loadCatalog(), series: () => loadSeries(), bootSelftests: () => loadBootSelftests() });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    runWorker = await startRunWorker({ redisUrl: t.url, jobsQueueName: name, log: () => undefined });
    profile = mkdtempSync(path.join(os.tmpdir(), 'nci-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1100, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    mkdirSync(SHOTS, { recursive: true });
    console.log(`dashboard screenshots: ${SHOTS}`);
  });
  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await runWorker?.close();
    await worker?.close(0);
    await app?.close();
    if (queue) {
      for (const n of [queue.name, runQueueNames(queue.name).runs, runQueueNames(queue.name).webhooks]) {
        // Connection options, not a client: close() then ends the connection it made.
        const q = new Queue(n, { connection: { host: '127.0.0.1', port: t.server.port, maxRetriesPerRequest: null } });
        await q.obliterate({ force: true });
        await q.close();
      }
      await queue.close();
    }
    await t?.stop();
  });

  // The job worker starts only once the first page watches: with warm caches a small job ends in
  // under a second, before a page opened after the POST could see anything live.
  const startJobWorker = async (): Promise<void> => {
    worker ??= await startWorker({ redisUrl: t.url, queueName: queue.name, concurrency: 1, log: () => undefined });
  };

  const post = async (url: string, body: object): Promise<string> => {
    const res = await fetch(base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status, await res.clone().text()).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };

  it(
    "shows a job's first result live and its final state without a reload",
    async () => {
      const id = await post('/v1/jobs', { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL, timeout_s: JOB_TIMEOUT_MS / 1000 });
      const page = await open(`/jobs/${id}`);
      expect(await page.getAttribute('#job-status', 'data-final')).toBe('false');
      // What the page said when the first result appeared, seen from inside the page; and a
      // marker that a reload would lose.
      await page.evaluate(() => {
        const w = window as unknown as { notReloaded: boolean; first: { state: string; final: string; tests: number } | null };
        w.notReloaded = true;
        w.first = null;
        new MutationObserver((_m, obs) => {
          const tests = document.querySelectorAll('#live-tests li[data-status]').length;
          if (tests > 0) {
            w.first = {
              state: document.querySelector('#job-status [data-field="state"]')?.textContent ?? '',
              final: document.getElementById('job-status')?.dataset.final ?? '',
              tests,
            };
            obs.disconnect();
          }
        }).observe(document.getElementById('live-tests')!, { childList: true, subtree: true, attributes: true });
      });
      await startJobWorker();
      await page.waitForFunction(() => (window as unknown as { first: unknown }).first !== null, undefined, { timeout: JOB_TIMEOUT_MS, polling: 250 });
      const first = await page.evaluate(() => (window as unknown as { first: { state: string; final: string; tests: number } }).first);
      expect(first.final, JSON.stringify(first)).toBe('false');
      expect(['building', 'booting', 'running']).toContain(first.state);
      await page.waitForSelector('#job-status[data-final="true"]', { timeout: 120_000 });
      expect(await page.textContent('#job-status [data-field="state"]')).toBe('passed');
      expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
      // The server-rendered results replaced the live tree: suites with durations, config as asked.
      await page.waitForSelector('#job-tests[data-done="true"]');
      expect(await page.textContent('table.suites')).toContain('list-kunit-test');
      expect(await page.textContent('#job-files')).toContain('all as asked');
      expect(await page.inputValue('#repro')).toContain('--kunitconfig');
      await page.screenshot({ path: path.join(SHOTS, 'job.png'), fullPage: true });
      await page.close();
    },
    JOB_TIMEOUT_MS + 180_000,
  );

  it(
    "says a finished run's verdict in words",
    async () => {
      await startJobWorker();
      const id = await post('/v1/runs', { patch: FIXTURE, kunitconfig: SMALL, timeout_s: JOB_TIMEOUT_MS / 1000 });
      const runs = new RunStore(t.redis);
      const deadline = Date.now() + RUN_TIMEOUT_MS;
      while (!(await runs.get(id))?.finished_at) {
        if (Date.now() > deadline) throw new Error(`run ${id} did not finish`);
        await new Promise((r) => setTimeout(r, 2000));
      }
      const page = await open(`/runs/${id}`);
      expect(await page.textContent('#verdict .headline')).toContain('breaks only the no-MMU build; 1 new test failure on MMU');
      expect(await page.textContent('#verdict')).toContain('mm/nommu.c:');
      expect(await page.textContent('table.matrix')).toContain('build failed');
      expect(await page.inputValue('#report-email')).toContain('In-Reply-To: <cover.1795928078.git.fixtures@nommu-ci.invalid>');
      // the report links back to this page
      expect(await page.inputValue('#report-markdown')).toContain(`${base}/runs/${id}`);
      await page.screenshot({ path: path.join(SHOTS, 'run.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: path.join(SHOTS, 'run-phone.png') });
      // a cell links to its job's page
      await page.setViewportSize({ width: 1100, height: 900 });
      await page.click('table.matrix a:has-text("build failed")');
      await page.waitForSelector('#job-status[data-final="true"]');
      expect(await page.textContent('#job-status')).toContain('build');
      await page.close();
    },
    RUN_TIMEOUT_MS + 120_000,
  );

  it('lists the jobs and filters them with the form, by keyboard', async () => {
    const page = await open('/');
    expect(await page.locator('#job-rows tr[data-job]').count()).toBeGreaterThanOrEqual(5);
    await page.screenshot({ path: path.join(SHOTS, 'jobs.png'), fullPage: true });
    await page.getByLabel('State').selectOption('failed');
    await page.getByRole('button', { name: 'Filter' }).focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/state=failed/);
    const states = await page.locator('#job-rows [data-field="state"]').allTextContents();
    expect(states.length).toBeGreaterThan(0);
    expect(new Set(states)).toEqual(new Set(['failed']));
    for (const url of ['/queue', '/kernels', '/runs']) await (await open(url)).close();
    // Every form control has a label.
    const unlabeled = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLSelectElement | HTMLInputElement>('select, input, textarea')].filter((e) => e.labels?.length === 0).map((e) => e.outerHTML),
    );
    expect(unlabeled).toEqual([]);
    await page.close();
    expect(consoleErrors).toEqual([]);
  });
});
