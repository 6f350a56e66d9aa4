/**
 * Keeps one child process running for `npm start`: a child that dies is started again after a
 * backoff that doubles while it keeps dying young, and stop() ends it however it is doing
 * (running, dying, or waiting to be restarted). The child gets its own process group, so stop()
 * reaches what it started too, and a terminal's Ctrl-C reaches only us: we decide the order.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface SupervisorOptions {
  name: string;
  argv: string[];
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Delay before a restart; doubled for each further death within `healthyMs` of its start. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A child that ran this long before dying counts as healthy: the backoff starts over. */
  healthyMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  graceMs?: number;
  /** Called with each new pid (tests and the startup line use it). */
  onStart?: (pid: number) => void;
}

export interface Supervisor {
  readonly pid: number | null;
  readonly restarts: number;
  stop(): Promise<void>;
}

const ended = (c: ChildProcess): boolean => c.exitCode !== null || c.signalCode !== null;

export function supervise(opts: SupervisorOptions): Supervisor {
  const base = opts.backoffMs ?? 1000;
  let youngDeaths = 0;
  let child: ChildProcess | null = null;
  let restarts = 0;
  let timer: NodeJS.Timeout | null = null;
  let stopping = false;

  const start = (): void => {
    timer = null;
    const c = spawn(opts.argv[0]!, opts.argv.slice(1), { stdio: 'inherit', env: opts.env ?? process.env, detached: true });
    child = c;
    const startedAt = Date.now();
    c.once('error', (e) => opts.log(`${opts.name}: could not start: ${e.message}`));
    c.once('exit', (code, signal) => {
      // Whatever the child left in its group (it was the leader) goes with it.
      killGroup(c, 'SIGKILL');
      if (stopping) return;
      youngDeaths = Date.now() - startedAt < (opts.healthyMs ?? 60_000) ? youngDeaths + 1 : 0;
      const wait = Math.min(base * 2 ** Math.max(0, youngDeaths - 1), opts.maxBackoffMs ?? 30_000);
      restarts++;
      opts.log(`${opts.name}: pid ${c.pid} died (${signal ?? `exit ${code}`}); restarting in ${(wait / 1000).toFixed(1)} s (restart ${restarts})`);
      timer = setTimeout(start, wait);
    });
    if (c.pid !== undefined) opts.onStart?.(c.pid);
  };
  start();

  return {
    get pid() {
      return child && !ended(child) ? (child.pid ?? null) : null;
    },
    get restarts() {
      return restarts;
    },
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      const c = child;
      if (!c || ended(c) || c.pid === undefined) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      killGroup(c, 'SIGTERM');
      const force = setTimeout(() => killGroup(c, 'SIGKILL'), opts.graceMs ?? 15_000);
      await exited;
      clearTimeout(force);
    },
  };
}

function killGroup(c: ChildProcess, sig: NodeJS.Signals): void {
  if (c.pid === undefined) return;
  try {
    process.kill(-c.pid, sig);
  } catch {
    // the group is already gone
  }
}
