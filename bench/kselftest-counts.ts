/**
 * Measurement (run by hand): how many kselftest programs of some targets pass, fail, skip or
 * crash on the no-MMU kernel and on the MMU kernel, each target one kselftest job through the
 * real worker (a private redis-server, the worker's own queue, build and sandboxed boot), as a
 * user's job runs them.
 *
 *   npx tsx bench/kselftest-counts.ts [--kernels nommu,mmu] [--targets timers,mm,...]
 *                                     [--test-timeout 30] [--out FILE.json] [--ignore-heuristic]
 *                                     [--blocked-only]
 *
 * Each job names every compiled program of its target (TEST_GEN_PROGS, TEST_CUSTOM_PROGS,
 * TEST_GEN_PROGS_EXTENDED, TEST_GEN_FILES; not the shell scripts, which the rootfs cannot run):
 * mm's and futex's default sets are scripts that run the programs. Targets as 7.2 names them:
 * the old `sigaltstack` is `signal`, futex's programs are `futex/functional`.
 *
 * Counted per program (the target's children in the results), not per TAP case inside one: a
 * program that skips itself and one the worker skipped (needs an MMU, does not build) are both
 * `skip`; each program that did not pass is listed with its reason. --ignore-heuristic runs on
 * no-MMU also the programs the source heuristic says need an MMU (the worker's
 * NOMMU_CI_KSELFTEST_IGNORE_NOMMU_BLOCKERS), to check the heuristic against real runs;
 * --blocked-only names only those programs (the heuristic's verdicts, without the rest's cost).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { CACHE_DIR, loadCatalog, readTarget, type JobRequest, type TestNode } from '@nommu-ci/shared';

const { values } = parseArgs({
  options: {
    kernels: { type: 'string', default: 'nommu,mmu' },
    targets: { type: 'string', default: 'timers,mm,futex/functional,size,signal,exec' },
    'test-timeout': { type: 'string', default: '30' },
    out: { type: 'string' },
    'ignore-heuristic': { type: 'boolean' },
    'blocked-only': { type: 'boolean' },
  },
});
// Read by the worker's plan.ts when it is imported, below.
if (values['ignore-heuristic']) process.env.NOMMU_CI_KSELFTEST_IGNORE_NOMMU_BLOCKERS = '1';
const { runJobOn, startTestRedis } = await import('../worker/test/helpers.js');
const kernel = loadCatalog()[0]!;
const targets = values.targets!.split(',');
const kernels = values.kernels!.split(',');
const tree = path.join(CACHE_DIR, 'src/linux-source-7.2');

interface Row {
  kernel: string;
  target: string;
  state: string;
  pass: number;
  fail: number;
  skip: number;
  crash: number;
  seconds: number;
  programs: { name: string; status: string; reason?: string }[];
}

/** A skip's reason, or for a failure its first failed case and the program's last diagnostic. */
function why(p: TestNode): string | undefined {
  if (p.reason) return p.reason;
  if (p.status === 'pass') return undefined;
  const failed = p.children.filter((c) => c.status === 'fail' || c.status === 'crash').map((c) => c.name);
  const last = p.diagnostics.filter((d) => !/^\S+: [\d.]+ s$/.test(d)).slice(-1)[0];
  return [failed.length > 0 ? `${failed.length} failed, first: ${failed[0]}` : '', last ?? ''].filter(Boolean).join('; ') || undefined;
}

const rows: Row[] = [];
const t = await startTestRedis('kselftest-counts');
try {
  for (const k of kernels) {
    for (const target of targets) {
      const request: JobRequest = {
        kind: 'kselftest',
        kernel: kernel.name,
        mmu: k === 'mmu',
        targets: [target],
        tests: readTarget(tree, target)!
          .tests.filter((x) => x.kind !== 'script' && (!values['blocked-only'] || x.nommu_blocker !== null))
          .map((x) => `${target}:${x.name}`),
        test_timeout_s: Number(values['test-timeout']),
        timeout_s: 14400,
      };
      const run = await runJobOn(t, request, { timeoutMs: 14_400_000 });
      const results = (await t.store.results(run.id)) ?? [];
      const programs: TestNode[] = results.find((r) => r.name === target)?.children ?? [];
      const n = (s: string): number => programs.filter((p) => p.status === s).length;
      const row: Row = {
        kernel: k,
        target,
        state: run.record.state,
        pass: n('pass'),
        fail: n('fail'),
        skip: n('skip'),
        crash: n('crash'),
        seconds: Math.round(run.ms / 1000),
        programs: programs.map((p) => ({ name: p.name, status: p.status, ...(why(p) ? { reason: why(p) } : {}) })),
      };
      rows.push(row);
      console.log(`${k} ${target}: ${run.record.state} in ${row.seconds} s: pass ${row.pass} fail ${row.fail} skip ${row.skip} crash ${row.crash}${run.record.message ? ` (${run.record.message})` : ''}`);
      for (const p of row.programs) if (p.status !== 'pass') console.log(`    ${p.name}: ${p.status}${p.reason ? ` — ${p.reason.slice(0, 160)}` : ''}`);
    }
  }
} finally {
  await t.stop();
}

console.log(`\n${kernel.name}, test_timeout_s ${values['test-timeout']}; programs per target (pass/fail/skip/crash)`);
console.log(`| target | ${kernels.map((k) => `${k} p/f/s/c`).join(' | ')} |`);
console.log(`|---|${kernels.map(() => '---').join('|')}|`);
for (const target of targets) {
  const cells = kernels.map((k) => {
    const r = rows.find((x) => x.kernel === k && x.target === target);
    return r ? `${r.pass}/${r.fail}/${r.skip}/${r.crash}` : '-';
  });
  console.log(`| ${target} | ${cells.join(' | ')} |`);
}
if (values.out) writeFileSync(values.out, JSON.stringify(rows, null, 2) + '\n');
