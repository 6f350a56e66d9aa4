import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { KernelSource, SeriesInfo } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import { SANDBOX_UID } from '../sandbox.js';
import { ownedDir } from './build.js';
import { applyPatches, jobPatches } from './patch.js';
import { ownDir } from '../jobdirs.js';
import { JOBS_DIR } from '../paths.js';
import { clearPartialSpares, hasSpare, makeView, pickKernel, prepareSpare, seriesTree } from './source.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'nci-source-'));
chmodSync(root, 0o755);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fakeTree(name: string): string {
  const t = path.join(root, name);
  mkdirSync(path.join(t, 'lib/tests'), { recursive: true });
  mkdirSync(path.join(t, 'mm'), { recursive: true });
  writeFileSync(path.join(t, 'Makefile'), 'VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\nEXTRAVERSION =\n');
  writeFileSync(path.join(t, 'lib/tests/a.c'), 'one\ntwo\nthree\nfour\n');
  writeFileSync(path.join(t, 'mm/b.c'), 'alpha\nbeta\ngamma\n');
  return t;
}

const diff = (file: string, from: string, to: string, ctx: [string, string]): string =>
  `diff --git a/${file} b/${file}\n--- a/${file}\n+++ b/${file}\n@@ -1,3 +1,3 @@\n ${ctx[0]}\n-${from}\n+${to}\n ${ctx[1]}\n`;

describe('per-job views', () => {
  it("take the spare being made for their tree instead of copying the tree a second time", async () => {
    const tree = fakeTree('spared');
    prepareSpare(tree); // as the end of a job on this tree does
    const view = path.join(root, 'spared-job/src');
    await makeView(tree, view);
    expect(statSync(path.join(view, 'mm/b.c')).ino).toBe(statSync(path.join(tree, 'mm/b.c')).ino);
    // A copy of its own would have left the spare to finish afterwards, unused.
    await new Promise((r) => setTimeout(r, 500));
    expect(hasSpare(tree)).toBe(false);
  });

  it("half-made spares: a starting worker removes a dead worker's, not a live one's", async () => {
    const spares = path.join(JOBS_DIR, '.spare');
    const live = ownDir(spares, `0000000000000000-tmp-test${process.pid}`);
    // The same pid with another start time: a process that is gone.
    const dead = live.replace(/\.\d+$/, '.1');
    for (const d of [live, dead]) mkdirSync(d, { recursive: true });
    try {
      await clearPartialSpares();
      expect(existsSync(live)).toBe(true);
      expect(existsSync(dead)).toBe(false);
    } finally {
      for (const d of [live, dead]) rmSync(d, { recursive: true, force: true });
    }
  });

  it('are hardlink farms; git apply in the sandbox gives patched files new inodes and leaves the pristine tree alone', async () => {
    const tree = fakeTree('pristine');
    const view = path.join(root, 'job/src');
    const patches = jobPatches(diff('lib/tests/a.c', 'two', 'TWO', ['one', 'three']));
    const touched = patches.flatMap((p) => p.touched);
    await makeView(tree, view, touched);
    expect(statSync(path.join(view, 'mm/b.c')).ino).toBe(statSync(path.join(tree, 'mm/b.c')).ino);
    if (process.getuid?.() === 0) {
      expect(statSync(path.join(view, 'lib/tests')).uid).toBe(SANDBOX_UID);
      expect(statSync(path.join(view, 'mm')).uid).toBe(0); // not touched: not writable by the sandbox
    }
    ownedDir(path.join(root, 'job/tmp'));
    let log = '';
    await applyPatches(patches, { viewDir: view, tmpDir: path.join(root, 'job/tmp'), log: (s) => (log += s), name: 'source-test' });
    expect(log).toContain('Applied patch lib/tests/a.c cleanly');
    expect(readFileSync(path.join(view, 'lib/tests/a.c'), 'utf8')).toBe('one\nTWO\nthree\nfour\n');
    expect(readFileSync(path.join(tree, 'lib/tests/a.c'), 'utf8')).toBe('one\ntwo\nthree\nfour\n');
    expect(statSync(path.join(view, 'lib/tests/a.c')).ino).not.toBe(statSync(path.join(tree, 'lib/tests/a.c')).ino);
  });

  it('cannot be patched where the patch did not say it would write', async () => {
    const tree = fakeTree('pristine2');
    const view = path.join(root, 'job2/src');
    const patches = jobPatches(diff('mm/b.c', 'beta', 'BETA', ['alpha', 'gamma']));
    await makeView(tree, view, []); // as if the patch had named other paths
    ownedDir(path.join(root, 'job2/tmp'));
    const e = await applyPatches(patches, { viewDir: view, tmpDir: path.join(root, 'job2/tmp'), log: () => undefined, name: 'source-test' }).catch((x: unknown) => x);
    if (process.getuid?.() === 0) {
      expect(e).toBeInstanceOf(StageError);
      expect((e as Error).message).toMatch(/mm\/b\.c/);
    }
    expect(readFileSync(path.join(tree, 'mm/b.c'), 'utf8')).toBe('alpha\nbeta\ngamma\n');
  });
});

describe('series trees', () => {
  it('applies the series once per (source, series hash) and caches the tree', async () => {
    const tree = fakeTree('pristine3');
    const dir = path.join(root, 'series');
    mkdirSync(dir);
    writeFileSync(path.join(dir, '0001-mm.patch'), diff('mm/b.c', 'beta', 'nommu-beta', ['alpha', 'gamma']));
    const src: KernelSource = { name: `nci-test-${process.pid}`, path: tree, version: '7.2.0', available: true, seriesDir: dir };
    const series: SeriesInfo = { name: 'nommu', dir, patches: ['0001-mm.patch'], hash: `t${Date.now().toString(16)}` };
    const t1 = await seriesTree(src, series);
    try {
      expect(readFileSync(path.join(t1, 'mm/b.c'), 'utf8')).toBe('alpha\nnommu-beta\ngamma\n');
      expect(readFileSync(path.join(tree, 'mm/b.c'), 'utf8')).toBe('alpha\nbeta\ngamma\n');
      expect(statSync(path.join(t1, 'lib/tests/a.c')).ino).toBe(statSync(path.join(tree, 'lib/tests/a.c')).ino);
      const m1 = statSync(path.join(t1, 'mm/b.c')).mtimeMs;
      expect(await seriesTree(src, series)).toBe(t1);
      expect(statSync(path.join(t1, 'mm/b.c')).mtimeMs).toBe(m1);
      // A series that does not apply fails at stage source, naming the patch.
      writeFileSync(path.join(dir, '0002-bad.patch'), diff('mm/b.c', 'nope', 'x', ['alpha', 'gamma']));
      const bad: SeriesInfo = { ...series, patches: ['0001-mm.patch', '0002-bad.patch'], hash: `${series.hash}b` };
      await expect(seriesTree(src, bad)).rejects.toThrow(/0002-bad\.patch does not apply/);
    } finally {
      rmSync(t1, { recursive: true, force: true });
    }
  });

  it('refuses unknown kernels by name', () => {
    expect(() => pickKernel('no-such-kernel')).toThrow(/unknown kernel "no-such-kernel"/);
  });
});
