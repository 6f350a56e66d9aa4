/**
 * `npm start` as a user runs it (infra/start.ts with its private redis-server and worker), killed
 * the ways that used to hang it: the worker SIGKILLed is started again; SIGTERM stops everything,
 * also while the worker is dead and waiting for its restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '@nommu-ci/shared/redis-server';
import { REPO_DIR } from '@nommu-ci/shared';

interface Started {
  proc: ChildProcess;
  port: number;
  redisPort: number;
  /** stderr lines so far. */
  lines: string[];
  exited: Promise<number | null>;
}

const started: Started[] = [];
const dirs: string[] = [];

afterEach(async () => {
  // After a failed case: stopped as a user would (its redis-server is in a group of its own, and
  // a SIGKILL would leave it running), forcibly only if that does not work.
  for (const s of started.splice(0)) {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) continue;
    s.proc.kill('SIGTERM');
    const force = setTimeout(() => s.proc.kill('SIGKILL'), 30_000);
    await s.exited;
    clearTimeout(force);
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}, 60_000);

async function start(): Promise<Started> {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'nci-start-'));
  chmodSync(cache, 0o755); // the sandbox user reaches the job directories below it
  dirs.push(cache);
  const [port, redisPort] = [await freePort(), await freePort()];
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'infra/start.ts')], {
    env: { ...process.env, PORT: String(port), NOMMU_CI_REDIS_PORT: String(redisPort), NOMMU_CI_CACHE: cache, NOMMU_CI_QUEUE: `nci-start-${port}`, REDIS_URL: '', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  proc.stderr!.on('data', (b: Buffer) => {
    const parts = (partial + b.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const s = { proc, port, redisPort, lines, exited };
  started.push(s);
  return s;
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, s: Started, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what} not seen within ${ms} ms; npm start said:\n${s.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const workerPids = (s: Started): number[] => s.lines.flatMap((l) => /^nommu-ci: worker pid (\d+)$/.exec(l)?.[1] ?? []).map(Number);

async function healthyWorkers(s: Started): Promise<number | undefined> {
  const r = await fetch(`http://127.0.0.1:${s.port}/healthz`).catch(() => null);
  if (!r?.ok) return undefined;
  const body = (await r.json()) as { workers: number };
  return body.workers > 0 ? body.workers : undefined;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const listening = (port: number): Promise<boolean> =>
  new Promise((r) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), r(true)));
    c.once('error', () => r(false));
  });

describe('npm start supervision', () => {
  it('restarts a SIGKILLed worker, then SIGTERM stops the worker and its redis-server', async () => {
    const s = await start();
    await until('a worker registered with the API', () => healthyWorkers(s), s);
    const [first] = workerPids(s);
    process.kill(first!, 'SIGKILL');
    await until('the restart log line', () => s.lines.find((l) => l.includes(`worker: pid ${first} died (SIGKILL); restarting in`)), s);
    const second = await until('a new worker pid', () => workerPids(s)[1], s);
    expect(second).not.toBe(first);
    expect(alive(second)).toBe(true);
    await until('the new worker registered', () => healthyWorkers(s), s);

    s.proc.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(alive(second)).toBe(false);
    expect(await listening(s.redisPort)).toBe(false);
    expect(await listening(s.port)).toBe(false);
  }, 120_000);

  it('stops on SIGTERM while the worker is dead and waiting to be restarted', async () => {
    const s = await start();
    await until('a worker registered with the API', () => healthyWorkers(s), s);
    const [pid] = workerPids(s);
    process.kill(pid!, 'SIGKILL');
    await until('the restart log line', () => s.lines.find((l) => l.includes('restarting in')), s);
    s.proc.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(workerPids(s)).toEqual([pid]);
    expect(await listening(s.redisPort)).toBe(false);
  }, 120_000);
});
