/**
 * Our own kselftest-style targets (OWN_TARGETS, e.g. nommu-ci/mm) in a build root: the job's
 * tree does not have them, so the worker copies their directory into the root's selftests farm
 * (build.ts), at tools/testing/selftests/<target> as the sandbox sees it, where they build with
 * the tree's lib.mk and kselftest.h like any of its targets. Only a job that names one gets it;
 * other targets' sources and outputs are not touched.
 *
 * Cache identity: a hash of the directory's files. The farm's copy is replaced, and the target's
 * outputs (with their remembered build failures) are dropped, when the hash changes; otherwise
 * the copy keeps its mtimes, so make rebuilds nothing.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { OWN_TARGETS } from '@nommu-ci/shared';

const STAMP = '.nommu-ci-sources';

export function isOwnTarget(target: string): boolean {
  return Object.hasOwn(OWN_TARGETS, target);
}

function files(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .sort();
}

/** The hash of an own target's files (names and contents). */
export function ownTargetKey(target: string): string {
  const dir = OWN_TARGETS[target]!;
  const h = createHash('sha256');
  for (const f of files(dir)) h.update(`${f}\0`).update(readFileSync(path.join(dir, f))).update('\0');
  return h.digest('hex').slice(0, 16);
}

const stampOf = (dir: string): string | null => (existsSync(path.join(dir, STAMP)) ? readFileSync(path.join(dir, STAMP), 'utf8') : null);

/**
 * Puts `target`'s sources at selftests/<target> unless the same sources are there, and empties
 * each of `outBases`/<target> built from other sources. `ownDir` makes a directory the sandbox's
 * (Makefiles may write next to their sources); the copied files stay root's.
 */
export function placeOwnTarget(selftests: string, outBases: string[], target: string, ownDir: (dir: string) => void): void {
  const key = ownTargetKey(target);
  const dest = path.join(selftests, target);
  if (stampOf(dest) !== key) {
    rmSync(dest, { recursive: true, force: true });
    const parts = target.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = path.join(selftests, ...parts.slice(0, i));
      if (!existsSync(d)) mkdirSync(d);
      ownDir(d);
    }
    for (const f of files(OWN_TARGETS[target]!)) copyFileSync(path.join(OWN_TARGETS[target]!, f), path.join(dest, f));
    writeFileSync(path.join(dest, STAMP), key);
  }
  for (const base of outBases) {
    const out = path.join(base, target);
    if (stampOf(out) === key) continue;
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, STAMP), key);
  }
}
