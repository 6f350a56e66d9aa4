/**
 * Benchmark (run by hand): how much of mm/nommu.c the no-MMU kernel's default tests execute, per
 * part and together. Three coverage jobs on the no-MMU kernel, through the service as `npm start`
 * runs it, on the shared cache:
 *
 *   nice -n 19 npx tsx bench/nommu-coverage.ts [--kernel debian-7.2] [--file mm/nommu.c]
 *
 * - KUnit: the tree's default KUnit config;
 * - boot selftests: every selftest of GET /v1/boot-selftests;
 * - the mm exerciser: the kselftest target nommu-ci/mm.
 *
 * Each job's tracefile (its coverage.info artifact) gives the file's executed and instrumented
 * lines; "together" is the union: a line counts as instrumented if any part's kernel compiled it
 * (the parts' configs differ), and as executed if any part ran it. Also prints the lines no part
 * executed, as ranges, so the gaps can be read against the source.
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CACHE_DIR, parseTracefile, rangesText, toRanges } from '@nommu-ci/shared';
import { runJob, startService } from './service.js';

const { values } = parseArgs({ options: { kernel: { type: 'string', default: 'debian-7.2' }, file: { type: 'string', default: 'mm/nommu.c' } } });
const KERNEL = values.kernel!;
const FILE = values.file!;

const pct = (hit: number, found: number): string => (found === 0 ? '-' : `${((100 * hit) / found).toFixed(1)}%`);

async function main(): Promise<void> {
  console.log(`uptime before: ${execFileSync('uptime').toString().trim()}`);
  const svc = await startService({ cache: CACHE_DIR });
  const rows: string[] = [];
  const found = new Set<number>();
  const hit = new Set<number>();
  try {
    const selftests = ((await (await fetch(`${svc.base}/v1/boot-selftests`)).json()) as { name: string }[]).map((s) => s.name);
    const parts: [string, object][] = [
      ['KUnit (default config)', { kind: 'kunit' }],
      [`boot selftests (${selftests.join(', ')})`, { kind: 'boot-selftest', selftests }],
      ['mm exerciser (nommu-ci/mm)', { kind: 'kselftest', targets: ['nommu-ci/mm'] }],
    ];
    for (const [name, req] of parts) {
      const r = await runJob(svc.base, { ...req, kernel: KERNEL, mmu: false, coverage: true, timeout_s: 7200 });
      const trace = await fetch(`${svc.base}/v1/jobs/${r.id}/artifacts/coverage.info`);
      const lines = trace.ok ? parseTracefile(await trace.text()).get(FILE) : undefined;
      const f = lines ? [...lines.keys()] : [];
      const h = lines ? [...lines].filter(([, n]) => n > 0).map(([l]) => l) : [];
      for (const l of f) found.add(l);
      for (const l of h) hit.add(l);
      const s = r.summary;
      const row = `| ${name} | ${r.state} | ${s.passed}/${s.failed}/${s.skipped}/${s.crashed} | ${((r.timings.stages.build ?? 0) / 1000).toFixed(0)} s | ${lines ? `${h.length} of ${f.length}` : `no tracefile (${trace.status})`} | ${pct(h.length, f.length)} | ${r.id} |`;
      console.log(row, r.message ?? '');
      rows.push(row);
    }
  } finally {
    await svc.stop();
  }
  console.log(`\nLine coverage of ${FILE} on the no-MMU kernel (${KERNEL}):\n`);
  console.log('| part | state | passed/failed/skipped/crashed | build | lines executed | % | job |\n| --- | --- | --- | --: | --: | --: | --- |');
  for (const r of rows) console.log(r);
  console.log(`| together | | | | ${hit.size} of ${found.size} | ${pct(hit.size, found.size)} | |`);
  const missed = [...found].filter((l) => !hit.has(l)).sort((a, b) => a - b);
  console.log(`\nnot executed by any part: ${rangesText(toRanges(missed), 1000)}`);
  console.log(`uptime after: ${execFileSync('uptime').toString().trim()}`);
}

await main();
