/**
 * Benchmark (run by hand): API latency under load, with the machine quiet and while a kernel
 * builds on every core.
 *
 *   npx tsx bench/api-load.ts [--rate 200] [--seconds 30] [--followers 50]
 *
 * The service runs as `npm start` runs it (private redis-server, the API, one supervised worker),
 * on a cache root of its own whose ccache is empty, so the job's build is cold and keeps both
 * cores busy. An open-loop client (open-loop.ts) sends GETs of one job, the job list and /healthz
 * in turn at a constant overall rate, each latency counted from when its request was due;
 * meanwhile `--followers` clients hold the job's live /tap open. The table gives latency
 * percentiles per phase, the API process's event-loop lag and CPU seconds over the phase (lag near
 * the request latency: the API itself is slow or starved of CPU; lag small but latency high: the
 * time goes elsewhere, e.g. Redis), the load average, and whether the build was still running at
 * the end (a phase that outlived the build measured nothing). NOMMU_CI_SANDBOX_NICE applies to the
 * build as in the service.
 */
import { cpSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { CACHE_DIR } from '@nommu-ci/shared';
import { openLoop, quantile } from './open-loop.js';
import { startService } from './service.js';

const { values } = parseArgs({ options: { rate: { type: 'string', default: '200' }, seconds: { type: 'string', default: '30' }, followers: { type: 'string', default: '50' } } });
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const FOLLOWERS = Number(values.followers);
const SOURCE = path.join(CACHE_DIR, 'src/linux-source-7.2');

interface Row {
  phase: string;
  requests: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** p99 of the job reads alone (GET /v1/jobs/:id), what the target is stated for. */
  jobP99: number;
  non2xx: number;
  errors: number;
  load: string;
  building: string;
  /** The API process's event-loop delay during the phase (prom-client's, reset at each scrape): ms. */
  lagP99: number;
  lagMax: number;
  /** CPU seconds the API process used during the phase. */
  apiCpu: number;
}

/** The API's event-loop lag (p99, max; since the last scrape) and CPU seconds so far, from /metrics. */
async function apiStats(base: string): Promise<{ lagP99: number; lagMax: number; cpu: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const val = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { lagP99: val('nodejs_eventloop_lag_p99_seconds') * 1000, lagMax: val('nodejs_eventloop_lag_max_seconds') * 1000, cpu: val('process_cpu_seconds_total') };
}

async function load(base: string, jobPath: string): Promise<Omit<Row, 'phase' | 'load' | 'building'>> {
  const before = await apiStats(base);
  const r = await openLoop(base, [jobPath, '/v1/jobs?limit=20', '/healthz'], RATE, SECONDS);
  const after = await apiStats(base);
  return {
    requests: r.requests,
    p50: quantile(r.latencies, 0.5),
    p90: quantile(r.latencies, 0.9),
    p99: quantile(r.latencies, 0.99),
    max: quantile(r.latencies, 1),
    jobP99: quantile(r.byPath.get(jobPath)!, 0.99),
    non2xx: r.non2xx,
    errors: r.errors,
    lagP99: Math.round(after.lagP99 * 10) / 10,
    lagMax: Math.round(after.lagMax * 10) / 10,
    apiCpu: Math.round((after.cpu - before.cpu) * 10) / 10,
  };
}

async function state(base: string, id: string): Promise<{ state: string; stage: string | null }> {
  const r = await fetch(`${base}/v1/jobs/${id}`);
  if (!r.ok) throw new Error(`GET /v1/jobs/${id} answered ${r.status}: ${await r.text()}`);
  return (await r.json()) as { state: string; stage: string | null };
}

async function main(): Promise<void> {
  const root = path.join(CACHE_DIR, 'bench', `api-load-${Date.now()}`);
  mkdirSync(path.join(root, 'src'), { recursive: true });
  symlinkSync(SOURCE, path.join(root, 'src/linux-source-7.2'));
  cpSync(`${SOURCE}.version`, path.join(root, 'src/linux-source-7.2.version'));
  // The per-address rate limit (NOMMU_CI_RATE_LIMIT, 600/min) would answer most of the load with
  // 429s, and refuse the job itself: this bench measures reads, so the limit is lifted.
  const svc = await startService({ cache: root, env: { NOMMU_CI_RATE_LIMIT: String(1e9) } });
  const rows: Row[] = [];
  const loadavg = (): string => os.loadavg().map((x) => x.toFixed(1)).join(' ');
  try {
    // Quiet: nothing builds; the job read is of an unknown id (the same store read, a 404, counted
    // in non-2xx but timed like the others).
    rows.push({ phase: 'quiet', ...(await load(svc.base, `/v1/jobs/${randomUUID()}`)), load: loadavg(), building: '-' });

    const res = await fetch(`${svc.base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'kunit', mmu: true, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n', timeout_s: 3600 }),
    });
    if (res.status !== 201 && res.status !== 202) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    for (let s = await state(svc.base, id); s.stage !== 'build'; s = await state(svc.base, id)) {
      if (['passed', 'failed', 'error'].includes(s.state)) throw new Error(`the job ended before its build: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 10_000)); // make is past its first, single-threaded steps
    const ctl = new AbortController();
    const followers = Array.from({ length: FOLLOWERS }, () =>
      fetch(`${svc.base}/v1/jobs/${id}/tap`, { signal: ctl.signal })
        .then(async (r) => {
          for await (const _ of r.body!);
        })
        .catch(() => undefined),
    );
    const during = await load(svc.base, `/v1/jobs/${id}`);
    const s = await state(svc.base, id);
    rows.push({ phase: `kernel build on ${os.cpus().length} cores, ${FOLLOWERS} /tap followers`, ...during, load: loadavg(), building: s.stage === 'build' ? 'yes' : `no (${s.state}/${s.stage})` });
    ctl.abort();
    await Promise.all(followers);
    await fetch(`${svc.base}/v1/jobs/${id}`, { method: 'DELETE' });
  } finally {
    await svc.stop();
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`\n${RATE} requests/s open-loop for ${SECONDS} s per phase (GET job, job list, /healthz in turn); latency in ms from each request's due time`);
  console.log('| phase | requests | p50 | p90 | p99 | max | job reads p99 | non-2xx | errors | API event-loop lag p99 / max | API CPU s | load average | still building |\n| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- | --- |');
  for (const r of rows) console.log(`| ${r.phase} | ${r.requests} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.max} | ${r.jobP99} | ${r.non2xx} | ${r.errors} | ${r.lagP99} / ${r.lagMax} | ${r.apiCpu} | ${r.load} | ${r.building} |`);
}

await main();
