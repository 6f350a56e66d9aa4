/**
 * Benchmark (run by hand): the default KUnit job (no kunitconfig: the tree's default KUnit
 * config; no shards: the worker's default) on every built-in catalogue kernel, MMU and no-MMU,
 * through the service as `npm start` runs it (private redis-server, API, one worker), on the
 * shared cache so that the builds are the service's own cached ones:
 *
 *   nice -n 19 npx tsx bench/kunit-kernels.ts [--kernels debian-7.2,debian-7.3] [--mmu both|mmu|nommu]
 *
 * Prints a table: state, passed/failed/skipped/crashed, build and test stage times. Prints
 * `uptime` before and after: on a shared machine, say how loaded it was.
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CACHE_DIR, loadCatalog } from '@nommu-ci/shared';
import { runJob, startService } from './service.js';

const { values } = parseArgs({ options: { kernels: { type: 'string' }, mmu: { type: 'string' } } });
const KERNELS = values.kernels?.split(',') ?? loadCatalog({}).map((k) => k.name);
const MMU_CHOICES: Record<string, boolean[]> = { both: [true, false], mmu: [true], nommu: [false] };
const MMU = MMU_CHOICES[values.mmu ?? 'both'] ?? [];
if (MMU.length === 0) throw new Error(`--mmu: both, mmu or nommu, not ${values.mmu}`);

const s = (ms: number | undefined): string => (ms === undefined ? '-' : (ms / 1000).toFixed(1));

async function main(): Promise<void> {
  console.log(`uptime before: ${execFileSync('uptime').toString().trim()}`);
  const svc = await startService({ cache: CACHE_DIR });
  const rows: string[] = [];
  try {
    for (const kernel of KERNELS) {
      for (const mmu of MMU) {
        const r = await runJob(svc.base, { kind: 'kunit', kernel, mmu, timeout_s: 3600 });
        const st = r.timings.stages;
        const row = `| ${kernel} ${r.kernel.version} | ${mmu ? 'MMU' : `no-MMU (${r.kernel.series})`} | ${r.state}${r.state === 'passed' ? '' : ` at ${r.stage}`} | ${r.summary.passed} | ${r.summary.failed} | ${r.summary.skipped} | ${r.summary.crashed} | ${s(st.build)} | ${s(st.test)} | ${r.id} |`;
        console.log(row, r.message ?? '');
        rows.push(row);
      }
    }
  } finally {
    await svc.stop();
  }
  console.log(`uptime after: ${execFileSync('uptime').toString().trim()}; ${execFileSync('nproc').toString().trim()} cores`);
  console.log('| kernel | MMU | state | passed | failed | skipped | crashed | build (s) | test (s) | job |\n| --- | --- | --- | --: | --: | --: | --: | --: | --: | --- |');
  for (const r of rows) console.log(r);
}

await main();
