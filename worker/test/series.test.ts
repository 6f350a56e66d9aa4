/**
 * The no-MMU series (kernel-images/nommu/) against the real Debian tree: every prefix applies
 * (kernel-images/bin/check-series, as a reviewer runs it; building every prefix is its --build
 * mode, run by hand), and with CONFIG_MMU=y the series changes no KUnit result: the same
 * kunitconfig built from the pristine tree and from the series tree, both booted in the
 * sandbox, give the same tests with the same statuses.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, loadCatalog, loadSeries, REPO_DIR, type TestNode } from '@nommu-ci/shared';
import { removeTree } from '../src/exec.js';
import { boot } from '../src/stages/boot.js';
import { ensureBase, ownedDir } from '../src/stages/build.js';
import { mergeFragment } from '../src/stages/config.js';
import { seriesLabel, seriesTree } from '../src/stages/source.js';

const kernel = loadCatalog()[0]!;
const series = loadSeries();
/** Suites with #ifdef CONFIG_MMU or mm code paths the series touches (uaccess, memory), plus the list test the other tests use. */
const KUNITCONFIG = ['CONFIG_KUNIT=y', 'CONFIG_LIST_KUNIT_TEST=y', 'CONFIG_USERCOPY_KUNIT_TEST=y', 'CONFIG_MEMCPY_KUNIT_TEST=y', 'CONFIG_FORTIFY_SOURCE=y', 'CONFIG_FORTIFY_KUNIT_TEST=y'].join('\n') + '\n';
const jobDir = path.join(CACHE_DIR, 'jobs', `series-test-${process.pid}`);

afterAll(async () => {
  await removeTree(jobDir);
});

const flatten = (tests: TestNode[], pre = ''): string[] =>
  tests.flatMap((t) => [`${pre}${t.name}: ${t.status}`, ...flatten(t.children, `${pre}${t.name}.`)]);

async function kunitResults(tree: string, label: string, name: string): Promise<string[]> {
  const tmpDir = path.join(jobDir, name, 'tmp');
  ownedDir(tmpDir);
  const fragment = mergeFragment(tree, { kunitconfig: KUNITCONFIG, mmu: true });
  const log = (): void => undefined;
  const base = await ensureBase({ label, tree, fragment }, { tmpDir, log, name: `series-test-${name}-${process.pid}`, onStage: () => undefined });
  expect(base.dot.mmu).toBe(true);
  const out = await boot({
    kernelDir: base.dir,
    tmpDir,
    consoleLog: path.join(jobDir, name, 'console.log'),
    name: `series-test-boot-${name}-${process.pid}`,
    sink: { appendTap: async () => undefined, event: async () => undefined },
  });
  expect(out.problem).toBeNull();
  return flatten(out.result.tests);
}

describe.skipIf(!kernel.available || series === null)('the no-MMU series on the real tree', () => {
  it('every prefix of the series applies (kernel-images/bin/check-series)', () => {
    const r = spawnSync(path.join(REPO_DIR, 'kernel-images/bin/check-series'), [kernel.path], { encoding: 'utf8', env: { ...process.env, TMPDIR: path.join(CACHE_DIR, 'jobs') } });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const p of series!.patches) expect(r.stdout + r.stderr).toContain(p);
  });

  it(
    'with CONFIG_MMU=y the series changes no KUnit result',
    async () => {
      const pristine = await kunitResults(kernel.path, `${kernel.name}-mmu`, 'pristine');
      const tree = await seriesTree(kernel, series!);
      const patched = await kunitResults(tree, `${kernel.name}-${seriesLabel(series!).replace('@', '-')}`, 'series');
      console.log(`series, CONFIG_MMU=y: ${patched.length} results, identical to the pristine tree's: ${JSON.stringify(patched) === JSON.stringify(pristine)}`);
      expect(pristine.filter((l) => l.endsWith(': pass')).length).toBeGreaterThan(20);
      expect(patched).toEqual(pristine);
    },
    1_800_000,
  );
});
