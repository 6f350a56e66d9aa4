/**
 * Stage `patch`: a job's `patch` is an mbox (git format-patch, b4; one or many messages, a cover
 * letter skipped) or a plain unified diff, parsed by shared/src/mbox.ts exactly as the API parsed
 * it when it accepted the job (paths outside the tree refused there). Each patch's diff is applied
 * in order with `git apply` inside the sandbox, the job's view as the working directory (no
 * repository needed, and none of `--directory`/`--unsafe-paths`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { diffPath, MboxError, parseMbox, type MboxPatch } from '@nommu-ci/shared';
import { StageError, throwIfAborted } from '../errors.js';
import { assertSandboxStarted, describeExit, runSandboxed } from '../sandbox.js';

/** For a failure at `file:line`, the hunk header of the patch that starts there, if we find it. */
function hunkAt(patch: MboxPatch, file: string, line: number): string | null {
  let inFile = false;
  for (const l of patch.diff.split('\n')) {
    if (l.startsWith('+++ ')) inFile = diffPath(l.slice(4), true) === file;
    if (inFile && l.startsWith('@@ ')) {
      const m = /^@@ -(\d+)/.exec(l);
      if (m && Number(m[1]) === line) return l;
    }
  }
  return null;
}

export interface ApplyOptions {
  viewDir: string;
  tmpDir: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Appends to patch.log. */
  log: (text: string) => void;
  name: string;
}

/** The job's patches; an mbox the API would not have accepted fails the job at stage `patch`. */
export function jobPatches(text: string): MboxPatch[] {
  try {
    return parseMbox(text).patches;
  } catch (e) {
    if (e instanceof MboxError) throw new StageError('patch', `patch: ${e.message}`);
    throw e;
  }
}

/** Applies patches in order inside the sandbox; throws StageError('patch') naming the patch, file and hunk. */
export async function applyPatches(patches: MboxPatch[], opts: ApplyOptions): Promise<void> {
  const dir = path.join(opts.tmpDir, 'patches');
  mkdirSync(dir, { recursive: true });
  for (const p of patches) {
    throwIfAborted(opts.signal);
    const file = `${String(p.index).padStart(4, '0')}.patch`;
    writeFileSync(path.join(dir, file), p.diff);
    opts.log(`=== patch ${p.index}/${patches.length}: ${p.rawSubject}${p.messageId ? ` <${p.messageId}>` : ''}\n`);
    let out = '';
    const r = await runSandboxed({
      name: `${opts.name}-patch${p.index}`,
      argv: ['git', 'apply', '--verbose', `/tmp/patches/${file}`],
      mounts: [{ host: opts.viewDir, path: '/src', rw: true }],
      tmpDir: opts.tmpDir,
      cwd: '/src',
      env: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', HOME: '/tmp' },
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      onOutput: (b) => {
        out += b.toString('utf8');
      },
    });
    opts.log(out);
    throwIfAborted(opts.signal);
    assertSandboxStarted(r);
    if (r.code !== 0 || r.killed) {
      const errs = out.split('\n').filter((l) => /^(error|fatal):/.test(l) && !/^error: while searching for:/.test(l));
      const failed = errs.map((l) => /^error: patch failed: (.*):(\d+)$/.exec(l)).find((m) => m);
      const hunk = failed ? hunkAt(p, failed[1]!, Number(failed[2])) : null;
      const detail = errs.length ? errs.join('\n') : `git apply: ${describeExit(r)}\n${out.trim().split('\n').slice(-5).join('\n')}`;
      throw new StageError('patch', `patch ${p.index}/${patches.length} "${p.rawSubject}" does not apply:\n${detail}${hunk ? `\nfailing hunk: ${failed![1]} ${hunk}` : ''}`);
    }
  }
}
