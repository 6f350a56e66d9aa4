/**
 * Captures the boot-selftest console fixtures (shared/fixtures/boot-selftests/) from real
 * kernels, through the real worker: a private redis-server, one worker, and boot-selftest jobs
 * on the MMU kernel of the default source: every catalogued selftest, then the same with
 * maple-tree-fail.diff (one wrong expectation in the maple tree test) and with xarray-oops.diff
 * (a NULL dereference in the XArray test) applied. Each fixture is the job's console.log
 * artifact. Run by hand when the kernel or the catalogue changes:
 *
 *   npx tsx infra/capture-boot-selftest-fixtures.ts
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { emptySummary, FINAL_STATES, JobStore, loadBootSelftests, loadCatalog, REPO_DIR, type JobRequest, type QueueJobData } from '@nommu-ci/shared';
import { startRedisServer } from '@nommu-ci/shared/redis-server';
import { startWorker } from '../worker/src/index.js';

const OUT = path.join(REPO_DIR, 'shared/fixtures/boot-selftests');
const kernel = loadCatalog()[0]!;
const selftests = loadBootSelftests().map((t) => t.name);
const redisDir = path.join(os.tmpdir(), `nci-capture-${process.pid}`);
const server = await startRedisServer({ dir: redisDir });
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
const store = new JobStore(redis);
const queueName = `nci-capture-${randomUUID().slice(0, 8)}`;
const queue = new Queue<QueueJobData>(queueName, { connection: redis });
const worker = await startWorker({ redisUrl: server.url, queueName, log: (m) => console.error(m) });

async function capture(file: string, request: JobRequest): Promise<void> {
  const id = randomUUID();
  await store.create(
    { id, kind: request.kind, state: 'queued', stage: null, message: null, summary: emptySummary(), timings: { queued_at: new Date().toISOString(), stages: {} }, kernel: null, config: null, attempt: 0 },
    request,
  );
  await queue.add(request.kind, { id }, { jobId: id });
  for (;;) {
    const r = await store.get(id);
    if (r && FINAL_STATES.has(r.state)) {
      console.error(`${file}: job ${r.state}${r.stage ? ` at ${r.stage}` : ''}: ${r.message}`);
      break;
    }
    await new Promise((res) => setTimeout(res, 2000));
  }
  const log = await store.artifact(id, 'console.log');
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
  await worker.close(0);
  await queue.close();
  redis.disconnect();
  await server.stop();
  rmSync(redisDir, { recursive: true, force: true });
}
