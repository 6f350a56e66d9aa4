/**
 * Open-loop HTTP load at a constant rate: request i is due at start + i/rate whatever happened to
 * the ones before, and its latency is counted from when it was due, not from when it went out.
 *
 * autocannon, used before, is closed-loop: with `overallRate` each connection sends its share of a
 * second back to back as soon as the second starts and then waits, so 200 requests/s arrive as 20
 * concurrent requests for the first part of each second, and its coordinated-omission correction
 * assumes a 1 ms interval, adding dozens of synthetic samples per slow response. Its p99 measured
 * its own bursts. A constant-rate schedule is what "200 requests per second" means for a service,
 * and counting from the due time keeps a stalled client or server from hiding its own delay.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface OpenLoopResult {
  requests: number;
  /** Milliseconds from due time to the end of the response, per request that got one. */
  latencies: number[];
  /** Per path: the same latencies, for the reads the target names. */
  byPath: Map<string, number[]>;
  non2xx: number;
  errors: number;
}

function get(agent: http.Agent, url: URL): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Sends GETs of `paths` in turn at `rate` per second for `seconds`, and waits for every answer. */
export async function openLoop(base: string, paths: string[], rate: number, seconds: number): Promise<OpenLoopResult> {
  // Enough sockets that a slow answer never delays the next request: the schedule stays open-loop.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const result: OpenLoopResult = { requests: 0, latencies: [], byPath: new Map(paths.map((p) => [p, []])), non2xx: 0, errors: 0 };
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const pending: Promise<void>[] = [];
  const start = performance.now() + 50;
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const p = paths[i % paths.length]!;
    result.requests++;
    pending.push(
      get(agent, new URL(p, base)).then(
        (status) => {
          const ms = performance.now() - due;
          result.latencies.push(ms);
          result.byPath.get(p)!.push(ms);
          if (status < 200 || status > 299) result.non2xx++;
        },
        () => void result.errors++,
      ),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return result;
}

/** The q-quantile (0..1) of `xs` by the nearest-rank method, in ms rounded to 0.1. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const v = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return Math.round(v * 10) / 10;
}
