/**
 * Captures the boot-selftest console fixtures (shared/fixtures/boot-selftests/) from real
 * kernels, through the real worker (a private redis-server and a worker per job, as the worker's
 * tests run them: worker/test/helpers.ts). Boot-selftest jobs on the MMU kernel of the default
 * source: every catalogued selftest, then the same with
 * maple-tree-fail.diff (one wrong expectation in the maple tree test) and with xarray-oops.diff
 * (a NULL dereference in the XArray test) applied. Each fixture is the job's console.log
 * artifact. Run by hand when the kernel or the catalogue changes:
 *
 *   npx tsx infra/capture-boot-selftest-fixtures.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadBootSelftests, loadCatalog, REPO_DIR, type JobRequest } from '@nommu-ci/shared';
import { runJobOn, startTestRedis } from '../worker/test/helpers.js';

const OUT = path.join(REPO_DIR, 'shared/fixtures/boot-selftests');
const kernel = loadCatalog()[0]!;
const selftests = loadBootSelftests().map((t) => t.name);
const t = await startTestRedis('capture');

async function capture(file: string, request: JobRequest): Promise<void> {
  const { id, record: r } = await runJobOn(t, request, { timeoutMs: 3_600_000 });
  console.error(`${file}: job ${r.state}${r.stage ? ` at ${r.stage}` : ''}: ${r.message}`);
  const log = await t.store.artifact(id, 'console.log');
  if (!log) throw new Error(`${file}: the job left no console.log`);
  writeFileSync(path.join(OUT, file), log);
}

try {
  await capture('all-mmu.console.txt', { kind: 'boot-selftest', kernel: kernel.name, mmu: true, selftests });
  for (const [file, diff] of [
    ['maple-tree-fail-mmu.console.txt', 'maple-tree-fail.diff'],
    ['xarray-oops-mmu.console.txt', 'xarray-oops.diff'],
  ] as const) {
    await capture(file, { kind: 'boot-selftest', kernel: kernel.name, mmu: true, selftests, patch: readFileSync(path.join(OUT, diff), 'utf8') });
  }
} finally {
  await t.stop();
}
