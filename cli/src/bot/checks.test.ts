/** The per-patch check rules the bot's end-to-end test does not reach (it sees success, fail, warning). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMbox, REPO_DIR } from '@nommu-ci/shared';
import { listSuite, sampleRun, type SampleOutcome } from '@nommu-ci/shared/testing';
import { patchChecks } from './checks.js';

const mbox = parseMbox(readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8'));
const pass = { kind: 'passed' } as const;
const failing: SampleOutcome = { kind: 'test-failed', tests: [listSuite({ list_test_list_empty: 'fail' })] };

describe('patchChecks', () => {
  it('success on every patch when nothing regressed', () => {
    const { run } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': pass, 'series-mmu': pass });
    expect(patchChecks(run).map((c) => c.state)).toEqual(['success', 'success', 'success']);
  });

  it('fail on every patch when the regression was not narrowed to one, naming the test', () => {
    const { run } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': pass, 'series-mmu': failing });
    const checks = patchChecks(run);
    expect(checks.map((c) => c.state)).toEqual(['fail', 'fail', 'fail']);
    expect(checks[0]!.description).toBe('MMU: 1 new failure (list-kunit-test.list_test_list_empty) (not narrowed to a patch)');
  });

  it('pending, not fail, when only tests listed as flaky regressed', () => {
    const { run } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': failing, 'series-mmu': failing });
    const checks = patchChecks(run, ['list-kunit-test.list_test_list_*']);
    expect(checks.map((c) => c.state)).toEqual(['pending', 'pending', 'pending']);
    expect(checks[0]!.description).toBe('only tests known to be flaky failed (list-kunit-test.list_test_list_empty); not a verdict');
    // a build break is never excused by the flaky list
    const broken = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'build-failed' }, 'series-mmu': failing }).run;
    expect(patchChecks(broken, ['list-kunit-test.*']).map((c) => c.state)).toEqual(['fail', 'fail', 'fail']);
  });

  it('pending when the run could not finish', () => {
    const { run } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': { kind: 'error', message: 'infrastructure error: disk full' }, 'series-nommu': pass, 'series-mmu': pass });
    expect(patchChecks(run).map((c) => c.state)).toEqual(['pending', 'pending', 'pending']);
  });
});
