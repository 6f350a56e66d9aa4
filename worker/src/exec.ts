/** Trusted host commands (cp, find, chown, rm): argv only, never a shell. */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { TRASH_DIR } from './paths.js';

export interface HostResult {
  code: number;
  out: string;
}

export interface HostOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Told the process id once it runs (e.g. to change its priority later). */
  onSpawn?: (pid: number) => void;
}

/** Runs argv on the host and returns its exit code and merged output (capped at 1 MiB). */
export function runHost(argv: string[], opts: HostOptions = {}): Promise<HostResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let out = '';
    const add = (b: Buffer): void => {
      if (out.length < 1 << 20) out += b.toString('utf8');
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), out }));
  });
}

/** Like runHost but throws with the command's output when it fails. */
export async function mustRun(argv: string[], opts: HostOptions = {}): Promise<string> {
  const r = await runHost(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.slice(0, 3).join(' ')} failed (exit ${r.code}): ${r.out.trim().slice(0, 2000)}`);
  return r.out;
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Removes a directory tree without waiting for it: renamed into the cache's trash at once (so the
 * path is free), deleted by a background `rm -rf` (a kernel tree takes seconds to unlink, and a
 * synchronous delete would stall the event loop and with it BullMQ's lock renewal).
 */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const trash = path.join(TRASH_DIR, `${path.basename(dir)}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(TRASH_DIR, { recursive: true });
  try {
    await rename(dir, trash);
  } catch {
    await rm(dir, { recursive: true, force: true }); // another filesystem: delete in place
    return;
  }
  emptyTrash();
}

/** Deletes whatever is in the trash, in the background. */
export function emptyTrash(): void {
  if (!existsSync(TRASH_DIR)) return;
  const entries = readdirSync(TRASH_DIR).map((e) => path.join(TRASH_DIR, e));
  if (entries.length === 0) return;
  const child = spawn('rm', ['-rf', '--', ...entries], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
}
