import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMbox } from '../mbox.js';
import { REPO_DIR } from '../paths.js';
import { blameFrom, narrowTargets, nextPrefixes } from './blame.js';
import type { CellData } from './model.js';
import { listSuite, sampleCell, sampleRun, type SampleOutcome } from './samples.js';

const mbox = parseMbox(readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8'));
const pass = { kind: 'passed' } as const;
const failing: SampleOutcome = { kind: 'test-failed', tests: [listSuite({ list_test_list_empty: 'fail' })] };
const prefix = (patches: number, mmu: boolean, o: SampleOutcome): { patches: number; data: CellData } => {
  const job = `p${patches}-${mmu}`;
  return { patches, data: { cell: { patches, mmu, job }, ...sampleCell(job, mmu, o) } };
};

describe('per-patch blame', () => {
  const { run, cells } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'build-failed' }, 'series-mmu': failing });
  const targets = narrowTargets(run.verdict!);
  const base = (mmu: boolean) => cells.find((c) => 'key' in c.cell && !c.cell.series && c.cell.mmu === mmu);

  it('follows the first regression of each kernel', () => {
    expect(targets).toEqual([
      { mmu: false, kind: 'build', what: 'build breakage at mm/nommu.c:95' },
      { mmu: true, kind: 'test', path: 'list-kunit-test.list_test_list_empty', what: 'list-kunit-test.list_test_list_empty (new-failure)' },
    ]);
  });

  it('names patch 2/3 for the KUnit failure and 3/3 (only the whole series) for the no-MMU build break', () => {
    const mmu = blameFrom(targets[1]!, run.series, [prefix(2, true, failing), prefix(1, true, pass)], base(true));
    expect(mmu).toMatchObject({ mmu: true, patch: 2, subject: '[PATCH 2/3] list: test: check list_empty() after list_add_tail()' });
    expect(mmu.tried).toEqual([
      { patches: 1, failed: false, job: 'p1-true' },
      { patches: 2, failed: true, job: 'p2-true' },
    ]);
    const nommu = blameFrom(targets[0]!, run.series, [prefix(1, false, pass), prefix(2, false, failing)], base(false));
    expect(nommu).toMatchObject({ mmu: false, patch: 3, subject: '[PATCH 3/3] mm/nommu: use vma_span_bytes() in kobjsize()' });
  });

  it('cannot tell when a prefix job did not finish', () => {
    const b = blameFrom(targets[1]!, run.series, [prefix(1, true, { kind: 'error', message: 'x' }), prefix(2, true, failing)], base(true));
    expect(b.patch).toBeNull();
  });

  it('an apply failure needs no narrowing', () => {
    const msg = 'patch 2/3 "x" does not apply:\nerror: patch failed: a.c:1';
    const r = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'patch-failed', message: msg }, 'series-mmu': { kind: 'patch-failed', message: msg } });
    expect(narrowTargets(r.run.verdict!)).toEqual([]);
  });
});

describe('bisection', () => {
  const eight = { ...mbox, patches: Array.from({ length: 8 }, (_, i) => ({ ...mbox.patches[0]!, index: i + 1, total: 8, rawSubject: `[PATCH ${i + 1}/8] p${i + 1}` })) };
  const { run, cells } = sampleRun(eight, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': pass, 'series-mmu': failing });
  const targets = narrowTargets(run.verdict!);
  /** Bisects with patch `bad` introducing the MMU failure; returns the prefixes tried in order and the blame. */
  function bisect(bad: number) {
    const tried: { patches: number; mmu: boolean; data: CellData }[] = [];
    const order: number[] = [];
    for (let round = 0; round < 10; round++) {
      const next = nextPrefixes(targets, 8, tried, cells);
      if (next.length === 0) break;
      for (const x of next) {
        order.push(x.patches);
        tried.push({ ...x, ...prefix(x.patches, x.mmu, x.patches >= bad ? failing : pass) });
      }
    }
    return { order, blame: blameFrom(targets[0]!, run.series, tried, cells.find((c) => 'key' in c.cell && c.cell.key === 'base-mmu')) };
  }
  it.each([1, 2, 5, 7, 8])('finds patch %i of 8 in at most 3 builds', (bad) => {
    const { order, blame } = bisect(bad);
    expect(blame.patch).toBe(bad);
    expect(order.length).toBeLessThanOrEqual(3);
    expect(order[0]).toBe(4);
  });
});
