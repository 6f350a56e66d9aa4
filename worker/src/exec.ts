/** Trusted host commands (cp, find, chown, rm): argv only, never a shell. */
import { spawn } from 'node:child_process';

export interface HostResult {
  code: number;
  out: string;
}

/** Runs argv on the host and returns its exit code and merged output (capped at 1 MiB). */
export function runHost(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<HostResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
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
export async function mustRun(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<string> {
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
