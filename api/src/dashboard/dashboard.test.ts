/**
 * The dashboard's pages through Fastify against a real redis-server: they render from what the
 * API stored, filter, escape, and answer bad input with an HTML page that names it. The live
 * parts are tested in a real browser in browser.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { extractKtap, JobStore, newJobRecord, parseKtap, parseMbox, REPO_DIR, runCoverage, RunStore } from '@nommu-ci/shared';
import { finishSampleJob, sampleRun } from '@nommu-ci/shared/testing';
import { startTestApi, type TestApi } from '../testing.js';
import { html } from './html.js';
import { configAskedVsGot, reproducer, suiteDurations } from './job-data.js';

let t: TestApi;
let redis: Redis;
let app: FastifyInstance;
let store: JobStore;

beforeAll(async () => {
  t = await startTestApi('dashboard');
  ({ redis, app, store } = t);
});
afterAll(() => t?.stop());

const submit = async (body: object) => {
  const res = await app.inject({ method: 'POST', url: '/v1/jobs', payload: body });
  expect(res.statusCode).toBe(202);
  return (res.json() as { id: string }).id;
};

describe('dashboard pages', () => {
  it('lists jobs newest first and filters them by state, kind and MMU', async () => {
    const a = await submit({ kind: 'kunit', mmu: true, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n' });
    const b = await submit({ kind: 'boot-selftest', mmu: true, selftests: ['maple_tree'] });
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body.indexOf(`/jobs/${b}`)).toBeLessThan(page.body.indexOf(`/jobs/${a}`));
    expect(page.body).toContain('<label>State');
    const kunit = (await app.inject('/?kind=kunit')).body;
    expect(kunit).toContain(`/jobs/${a}`);
    expect(kunit).not.toContain(`/jobs/${b}`);
    expect((await app.inject('/?mmu=nommu')).body).not.toContain(`/jobs/${a}`);
    expect((await app.inject('/?mmu=mmu&state=queued')).body).toContain(`/jobs/${a}`);
    expect((await app.inject('/?state=passed')).body).toContain('No jobs match.');
  });

  it('answers a bad filter or an unknown job with an HTML page naming it', async () => {
    const bad = await app.inject('/?state=bogus');
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toContain('text/html');
    expect(bad.body).toContain('querystring.state');
    const id = randomUUID();
    const missing = await app.inject(`/jobs/${id}`);
    expect(missing.statusCode).toBe(404);
    expect(missing.body).toContain(`no job ${id}`);
    expect((await app.inject('/runs/not-an-id')).statusCode).toBe(400);
  });

  it('shows a queued job with its reproducer, live section and links to the JSON API', async () => {
    const id = await submit({ kind: 'kunit', mmu: false, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n', kconfig_add: ['CONFIG_KASAN=y'] });
    const page = (await app.inject(`/jobs/${id}`)).body;
    expect(page).toContain('data-page="job"');
    expect(page).toContain('id="live-tests"');
    expect(page).toContain(`href="/v1/jobs/${id}/tap"`);
    expect(page).toContain('npx nommu-ci submit --follow --server http://localhost:80 --kernel debian-7.2 --no-mmu --kunitconfig &lt;(printf &#39;CONFIG_KUNIT=y\\nCONFIG_LIST_KUNIT_TEST=y\\n&#39;)');
    expect(page).toContain('--kconfig-add CONFIG_KASAN=y');
  });

  it('serves the kernels, queue and runs pages and the bundled script', async () => {
    const kernels = await app.inject('/kernels');
    expect(kernels.statusCode).toBe(200);
    expect(kernels.body).toContain('maple_tree');
    const queuePage = await app.inject('/queue');
    expect(queuePage.statusCode).toBe(200);
    expect(queuePage.body).toMatch(/\d+ running, \d+ waiting/);
    expect((await app.inject('/runs')).statusCode).toBe(200);
    const js = await app.inject('/assets/dashboard.js');
    expect(js.headers['content-type']).toContain('javascript');
    expect(js.body).toContain('EventSource');
    expect((await app.inject({ url: '/assets/dashboard.js', headers: { 'if-none-match': js.headers.etag as string } })).statusCode).toBe(304);
  });
});

describe('a crashed job', () => {
  it('lists the crash first, open, with the console around it (captured crash fixture)', async () => {
    const consoleLog = readFileSync(path.join(REPO_DIR, 'shared/fixtures/ktap/crash.console.txt'), 'utf8');
    const { lines, crash } = extractKtap(consoleLog.split('\n'));
    const { tests, summary } = parseKtap(lines, crash ?? undefined);
    // Stored as the worker stores a job that ended with a crash.
    const id = await submit({ kind: 'kunit', mmu: true, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n' });
    await store.setResults(id, tests);
    await store.putArtifact(id, 'console.log', Buffer.from(consoleLog));
    await store.update(id, { state: 'failed', stage: 'test', summary, message: 'crashed', timings: { queued_at: new Date().toISOString(), finished_at: new Date().toISOString(), stages: { build: 1000, boot: 100, test: 900 } } });
    const page = (await app.inject(`/jobs/${id}`)).body;
    expect(page).toContain('data-page="job-final"');
    const problems = page.slice(page.indexOf('<ol class="problems">'), page.indexOf('<h3>Suites</h3>'));
    // The kernel died in list_test_list_move, before the suite's plan was done: the suite crashed.
    expect(problems).toMatch(/^<ol class="problems"><li><details open><summary><span class="badge s-crash">crash<\/span> <code>list-kunit-test<\/code> <span class="reason">Kernel panic - not syncing: Segfault with no mm<\/span>/);
    const excerpt = problems.slice(problems.indexOf('<pre class="console">'));
    expect(excerpt).toContain('    ok 9 list_test_list_del_init_careful');
    expect(excerpt).toContain('RIP: 0033:list_test_list_move+0xac/0x250');
    expect(excerpt).toContain('Kernel panic - not syncing: Segfault with no mm');
    expect(excerpt).toContain('kunit_try_run_case+0x7b/0x100');
  });
});

describe('page parts', () => {
  it('escapes what it interpolates', () => {
    expect(html`<p>${'<script>alert(1)</script>'}</p>`.value).toBe('<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>');
    expect(html`<a href="${'" onclick="x'}">`.value).toBe('<a href="&quot; onclick=&quot;x">');
  });

  it('times each suite from the arrival of its KTAP lines', async () => {
    const id = randomUUID();
    const lines = ['KTAP version 1', '1..2', '    KTAP version 1', '    # Subtest: alpha', '    ok 1 a1', 'ok 1 alpha', '    # Subtest: beta', '    ok 1 b1'];
    for (const l of lines) {
      await store.appendTap(id, 1, [l]);
      await new Promise((r) => setTimeout(r, 20));
    }
    await store.appendTap(id, 1, ['ok 2 beta']);
    const ms = await suiteDurations(redis, store, id, 1);
    expect([...ms.keys()]).toEqual(['alpha', 'beta']);
    expect(ms.get('alpha')).toBeGreaterThanOrEqual(40);
    expect(ms.get('beta')).toBeGreaterThanOrEqual(20);
  });

  it('compares the config lines asked for with the final .config', () => {
    const lines = configAskedVsGot(
      { kind: 'kunit', kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_NOPE=y\n# CONFIG_MMU is not set\n', kconfig_add: ['CONFIG_LOG_BUF_SHIFT=15'] },
      'CONFIG_KUNIT=y\n# CONFIG_MMU is not set\nCONFIG_LOG_BUF_SHIFT=14\n',
      [],
    );
    expect(lines).toEqual([
      { option: 'CONFIG_KUNIT', asked: 'y', got: 'y', ok: true },
      { option: 'CONFIG_NOPE', asked: 'y', got: null, ok: false },
      { option: 'CONFIG_MMU', asked: 'n', got: 'n', ok: true },
      { option: 'CONFIG_LOG_BUF_SHIFT', asked: '15', got: '14', ok: false },
    ]);
  });

  it('puts the kunitconfig in the one-line reproducer so that bash gives it back unchanged', () => {
    const kunitconfig = 'CONFIG_KUNIT=y\nCONFIG_CMDLINE="a\\\\b 100% it\'s"\n# CONFIG_MMU is not set\n';
    const cmd = reproducer({ kind: 'kunit', kunitconfig }, 'http://h:1', 'x');
    expect(cmd).not.toContain('\n');
    expect(execFileSync('bash', ['-c', `cat ${cmd.slice(cmd.indexOf('<('))}`], { encoding: 'utf8' })).toBe(kunitconfig);
  });

  it('quotes the reproducer for the shell', () => {
    expect(reproducer({ kind: 'kunit', filter_glob: "it's" } as never, 'http://h:1', 'x')).toBe(`npx nommu-ci submit --follow --server http://h:1 --filter 'it'\\''s'`);
  });
});

describe('run page: changed lines executed', () => {
  it('a table of changed files by kernel, the lines no test executed named, and why a kernel was not measured', async () => {
    const fixture = (f: string) => readFileSync(path.join(REPO_DIR, 'shared/fixtures/coverage', f), 'utf8');
    const reserves = fixture('nommu-reserves.mbox');
    const pass = { kind: 'passed' } as const;
    const { run } = sampleRun(parseMbox(reserves), { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': pass, 'series-mmu': pass }, { coverage: true });
    const id = randomUUID();
    const jobs = run.cells.map((c) => ({ ...c, job: randomUUID() }));
    for (const c of jobs) {
      await store.create(newJobRecord(c.job, 'kunit'), { kind: 'kunit', mmu: c.mmu });
      await finishSampleJob(store, c.job, c.mmu, pass);
    }
    const coverage = runCoverage(reserves, [
      { mmu: false, job: jobs[2]!.job, tracefile: fixture('nommu.info') },
      { mmu: true, job: jobs[3]!.job, tracefile: null, missing: 'no tracefile: the job ended failed at build' },
    ]);
    await new RunStore(redis).create({ ...run, id, cells: jobs, coverage }, reserves);
    const page = (await app.inject(`/runs/${id}`)).body;
    expect(page).toContain('<h2 id="coverage-h">Changed lines executed</h2>');
    expect(page).toContain('<tr><th scope="row"><code>mm/nommu.c</code></th><td class="cov-missed">2 of 3 changed lines executed<br><strong>not executed by any test: 702</strong></td><td class="cov-missing">not measured</td></tr>');
    expect(page).toContain('<p>MMU: no tracefile: the job ended failed at build</p>');
  });
});
