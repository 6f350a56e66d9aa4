/**
 * The service as `npm start` runs it (infra/start.ts), on a cache root, ports and queue of a bench's
 * own: a bench on the machine's cache shares its Redis data, whose default queue may still hold jobs
 * an interrupted run left, and the bench would time those first.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_DIR } from '@nommu-ci/shared';
import { freePort } from '@nommu-ci/shared/redis-server';

export interface Service {
  base: string;
  stop(): Promise<void>;
}

export async function startService(opts: { cache: string; env?: Record<string, string> }): Promise<Service> {
  const port = await freePort();
  const env = { ...process.env, NOMMU_CI_CACHE: opts.cache, PORT: String(port), NOMMU_CI_REDIS_PORT: String(await freePort()), NOMMU_CI_QUEUE: `nommu-ci-bench-${port}`, REDIS_URL: '', LOG_LEVEL: 'warn', ...opts.env };
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'infra/start.ts')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((r) => proc.once('exit', r));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const health = await fetch(`${base}/healthz`).then((r) => (r.ok ? (r.json() as Promise<{ workers: number }>) : null), () => null);
    if (health && health.workers > 0) break;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error('the service did not start (or no worker registered)');
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    base,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** A job record as the benches read it (GET /v1/jobs/:id). */
export interface BenchJobRecord {
  id: string;
  state: string;
  stage: string | null;
  message: string | null;
  kernel: { name: string; version: string; series?: string };
  summary: { passed: number; failed: number; skipped: number; crashed: number };
  timings: { stages: Record<string, number> };
}

/** POSTs a job and returns its record once it has ended. */
export async function runJob(base: string, body: object): Promise<BenchJobRecord> {
  const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 202) throw new Error(`POST ${JSON.stringify(body)}: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  // Polled: a cold default-config build takes longer than fetch waits for a stream's headers.
  for (;;) {
    const r = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as BenchJobRecord;
    if (['passed', 'failed', 'error', 'canceled'].includes(r.state)) return r;
    await new Promise((res) => setTimeout(res, 5000));
  }
}
