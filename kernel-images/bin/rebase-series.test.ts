/**
 * kernel-images/bin/rebase-series on real trees: redoing the 7.2 -> 7.3 port gives exactly the
 * committed kernel-images/nommu-7.3 (so that directory is the port of the series as it is now),
 * and a tree where a hunk's removed line was changed is reported as a FAILED patch, naming the
 * file and hunk, with nothing written.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, KERNEL_IMAGES_DIR, loadSeries, SOURCES_DIR } from '@nommu-ci/shared';
import { breakableHunk, makeBrokenTree } from '@nommu-ci/shared/series-break';

const SCRIPT = path.join(KERNEL_IMAGES_DIR, 'bin/rebase-series');
const PORT = path.join(KERNEL_IMAGES_DIR, 'nommu-7.3');
const TREE_72 = path.join(SOURCES_DIR, 'linux-source-7.2');
const TREE_73 = path.join(SOURCES_DIR, 'linux-source-7.3');
// Next to the sources: the broken tree is a hardlink farm of one.
const scratch = mkdtempSync(path.join(CACHE_DIR, 'test-rebase-series-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function rebase(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(SCRIPT, ['--base', TREE_72, ...args], { maxBuffer: 16 << 20 });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout + x.stderr };
  }
}

describe('rebase-series', () => {
  it(
    'redoes the port to 7.3 and gets kernel-images/nommu-7.3 byte for byte',
    async () => {
      const out = path.join(scratch, 'nommu-7.3');
      cpSync(PORT, out, { recursive: true });
      const r = await rebase(['--out', out, TREE_73]);
      console.log(r.out);
      expect(r.code).toBe(0);
      const series = loadSeries()!;
      expect(r.out).toContain(`nommu@${series.hash} (${series.patches.length} patches`);
      expect(r.out).toMatch(/summary: \d+ clean, \d+ 3-way, 0 failed/);
      const stale = `kernel-images/nommu-7.3 is not the port of kernel-images/nommu as it is now: run ${SCRIPT} --out ${PORT} ${TREE_73}, read the 3-way patches, build (NOMMU_SERIES_DIR=${PORT} kernel-images/bin/check-series ${TREE_73} --build) and commit`;
      expect(readFileSync(path.join(PORT, 'series'), 'utf8').split('\n')[0], stale).toBe(`# ported from nommu@${series.hash} to ${readFileSync(`${TREE_73}.version`, 'utf8').trim()} by kernel-images/bin/rebase-series`);
      expect(readdirSync(out).sort(), stale).toEqual(readdirSync(PORT).sort());
      for (const f of readdirSync(PORT)) expect(readFileSync(path.join(out, f), 'utf8'), `${f}: ${stale}`).toBe(readFileSync(path.join(PORT, f), 'utf8'));
    },
    300_000,
  );

  it(
    'reports a patch that cannot be ported as FAILED, naming file and hunk, and writes nothing',
    async () => {
      const series = loadSeries()!;
      const b = breakableHunk(series, TREE_72);
      const tree = path.join(scratch, 'broken');
      makeBrokenTree(TREE_72, tree, b);
      const out = path.join(scratch, 'not-written');
      const r = await rebase(['--out', out, tree]);
      console.log(r.out);
      expect(r.code).toBe(1);
      const line = r.out.split('\n').find((l) => l.includes(b.patch))!;
      expect(line).toContain(`FAILED: ${b.file} hunk ${b.hunk} of ${b.of} (${b.header}); conflict in ${b.file}`);
      expect(r.out).toMatch(/summary: \d+ clean, \d+ 3-way, [1-9]\d* failed/);
      expect(r.out).toContain(`nothing written to ${out}`);
      expect(() => readdirSync(out)).toThrow(/ENOENT/);
    },
    300_000,
  );
});
