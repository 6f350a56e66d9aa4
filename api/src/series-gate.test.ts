/**
 * The catalogue's two Debian kernels and the no-MMU gate, against a real redis-server and real
 * trees: a kernel named in NOMMU_CI_KERNELS that is a hardlink copy of linux-source-7.2 with one
 * file changed so that a hunk of the series no longer applies (a real git apply failure on real
 * files). MMU jobs on it are queued; no-MMU jobs and runs get a 422 naming the patch and hunk.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { CACHE_DIR, REPO_DIR, SeriesApplicability, SOURCES_DIR, loadCatalog, loadSeries, type KernelSource, type QueueJobData } from '@nommu-ci/shared';
import { breakableHunk, makeBrokenTree, replaceLine } from '@nommu-ci/shared/series-break';
import { startTestApi, type TestApi } from './testing.js';

const series = loadSeries()!;

let api: TestApi;
let queue: Queue<QueueJobData>;
let app: FastifyInstance;
let scratch: string;
let own: string;
const t = breakableHunk(series, path.join(SOURCES_DIR, 'linux-source-7.2'));
const applicability = new SeriesApplicability();

beforeAll(async () => {
  // Next to the sources: a hardlink farm must be on their file system.
  scratch = mkdtempSync(path.join(CACHE_DIR, 'test-own-tree-'));
  own = path.join(scratch, 'linux');
  makeBrokenTree(path.join(SOURCES_DIR, 'linux-source-7.2'), own, t);
  const catalogFile = path.join(scratch, 'kernels.json');
  writeFileSync(catalogFile, JSON.stringify([{ name: 'own-tree', path: own }]));
  const env = { ...process.env, NOMMU_CI_KERNELS: catalogFile };
  api = await startTestApi('series-gate', {
    catalog: () => loadCatalog(env),
    series: (k) => loadSeries(k?.seriesDir),
    seriesApplies: (k, s) => applicability.check(k, s),
  });
  ({ queue, app } = api);
}, 120_000);
afterAll(async () => {
  await api?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });

describe('the kernel catalogue', () => {
  it('lists debian-7.2 and debian-7.3, present, each with its own no-MMU series', async () => {
    const kernels = (await app.inject('/v1/kernels')).json() as { name: string; version: string; available: boolean; series: string; series_patches: string[] }[];
    const s73 = loadSeries(path.join(REPO_DIR, 'kernel-images/nommu-7.3'))!;
    expect(kernels.slice(0, 2)).toMatchObject([
      { name: 'debian-7.2', version: expect.stringMatching(/^7\.2\./), available: true, series: `nommu@${series.hash}`, series_patches: series.patches },
      { name: 'debian-7.3', version: expect.stringMatching(/^7\.3/), available: true, series: `nommu-7.3@${s73.hash}`, series_patches: s73.patches },
    ]);
    expect(kernels[2]).toMatchObject({ name: 'own-tree', available: true, series: `nommu@${series.hash}` });
  });
});

describe('no-MMU jobs on a kernel the series does not apply to', () => {
  const version = () => loadCatalog({ NOMMU_CI_KERNELS: path.join(scratch, 'kernels.json') }).find((k) => k.name === 'own-tree')!.version;
  const expected = () =>
    `kernel "own-tree" (${version()}): the no-MMU series nommu@${series.hash} does not apply to it: ` +
    `patch ${t.index}/${series.patches.length} ${t.patch} fails at ${t.file} hunk ${t.hunk} of ${t.of} (${t.header}); ` +
    'this kernel runs MMU jobs only ("mmu": true)';

  it('are refused with a 422 naming the patch, file and hunk; MMU jobs are queued', async () => {
    const before = await queue.count();
    const nommu = await post('/v1/jobs', { kind: 'kunit', kernel: 'own-tree', mmu: false });
    expect(nommu.statusCode).toBe(422);
    expect(nommu.json().message).toBe(expected());
    // Without "mmu" the job would be no-MMU (the default once the series exists): refused the same way.
    expect((await post('/v1/jobs', { kind: 'kunit', kernel: 'own-tree' })).json().message).toBe(expected());
    expect(await queue.count()).toBe(before);
    const mmu = await post('/v1/jobs', { kind: 'kunit', kernel: 'own-tree', mmu: true });
    expect(mmu.statusCode).toBe(202);
    expect(await queue.count()).toBe(before + 1);
  });

  it('and runs (which need the no-MMU kernel) too', async () => {
    const mbox = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8');
    const res = await post('/v1/runs', { patch: mbox, kernel: 'own-tree' });
    expect(res.statusCode).toBe(422);
    expect(res.json().message).toBe(expected());
  });

  it('are accepted on both Debian kernels, whose series apply', async () => {
    for (const kernel of ['debian-7.2', 'debian-7.3']) {
      const res = await post('/v1/jobs', { kind: 'kunit', kernel, mmu: false, kunitconfig: 'CONFIG_KUNIT=y\n' });
      expect(res.statusCode, `${kernel}: ${res.body}`).toBe(202);
    }
  });

  it('are checked once per state of the tree: the answer is cached until a touched file changes', async () => {
    const kernel = loadCatalog({ NOMMU_CI_KERNELS: path.join(scratch, 'kernels.json') }).find((k) => k.name === 'own-tree')! as KernelSource;
    const first = applicability.check(kernel, series);
    expect(applicability.check(kernel, series)).toBe(first);
    expect(await first).toMatchObject({ index: t.index, file: t.file, hunk: { number: t.hunk, of: t.of, header: t.header } });
    // Put the line back (a new file, as an operator's git checkout would write it): checked again, and it applies.
    replaceLine(own, t.file, t.changed, t.removed);
    const again = applicability.check(kernel, series);
    expect(again).not.toBe(first);
    expect(await again).toBeNull();
    expect((await post('/v1/jobs', { kind: 'kunit', kernel: 'own-tree', mmu: false })).statusCode).toBe(202);
  });
});
