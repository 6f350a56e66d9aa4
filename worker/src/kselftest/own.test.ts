/**
 * own.ts on real directories: our target's sources go into a build root's selftests farm and
 * stay there (same mtimes: make rebuilds nothing) while they are the same; outputs built from
 * other sources, and their remembered failures, are dropped; nothing else in the root changes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWN_TARGETS } from '@nommu-ci/shared';
import { isOwnTarget, ownTargetKey, placeOwnTarget } from './own.js';

const T = 'nommu-ci/mm';
let root: string;
let selftests: string;
let out: string;
const owned: string[] = [];
const own = (d: string): void => void owned.push(d);

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'nommu-ci-own-'));
  selftests = path.join(root, 'selftests');
  out = path.join(root, 'out');
  mkdirSync(path.join(selftests, 'timers'), { recursive: true });
  writeFileSync(path.join(selftests, 'timers/Makefile'), 'TEST_GEN_PROGS = x\n');
  mkdirSync(path.join(out, 'timers'), { recursive: true });
  writeFileSync(path.join(out, 'timers/x'), 'program');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('own targets in a build root', () => {
  it('knows only OWN_TARGETS', () => {
    expect(isOwnTarget(T)).toBe(true);
    expect(isOwnTarget('mm')).toBe(false);
    expect(isOwnTarget('toString')).toBe(false);
  });

  it('copies the sources with a key, the directories made the sandbox own', () => {
    placeOwnTarget(selftests, [out], T, own);
    const src = OWN_TARGETS[T]!;
    for (const f of ['Makefile', 'mappings.c', 'sysmem.c', 'mm-util.h']) {
      expect(readFileSync(path.join(selftests, T, f), 'utf8')).toBe(readFileSync(path.join(src, f), 'utf8'));
    }
    expect(owned).toEqual([path.join(selftests, 'nommu-ci'), path.join(selftests, T)]);
    expect(readFileSync(path.join(out, T, '.nommu-ci-sources'), 'utf8')).toBe(ownTargetKey(T));
  });

  it('the same sources again: nothing is copied (mtimes kept) and built programs stay', () => {
    const before = statSync(path.join(selftests, T, 'mappings.c')).mtimeMs;
    writeFileSync(path.join(out, T, 'mappings'), 'program');
    mkdirSync(path.join(out, T, '.failed'));
    writeFileSync(path.join(out, T, '.failed/sysmem.log'), 'error');
    placeOwnTarget(selftests, [out], T, own);
    expect(statSync(path.join(selftests, T, 'mappings.c')).mtimeMs).toBe(before);
    expect(existsSync(path.join(out, T, 'mappings'))).toBe(true);
    expect(existsSync(path.join(out, T, '.failed/sysmem.log'))).toBe(true);
  });

  it('other sources (an older copy): replaced, and what was built from them and failed with them is gone', () => {
    writeFileSync(path.join(selftests, T, '.nommu-ci-sources'), 'older');
    writeFileSync(path.join(selftests, T, 'removed.c'), 'int main(void) { return 0; }\n');
    writeFileSync(path.join(out, T, '.nommu-ci-sources'), 'older');
    const glibc = path.join(root, 'out-glibc');
    placeOwnTarget(selftests, [out, glibc], T, own);
    expect(existsSync(path.join(selftests, T, 'removed.c'))).toBe(false);
    expect(readdirSync(path.join(out, T))).toEqual(['.nommu-ci-sources']);
    expect(readdirSync(path.join(glibc, T))).toEqual(['.nommu-ci-sources']);
    // The tree's own targets and their programs are untouched.
    expect(readFileSync(path.join(out, 'timers/x'), 'utf8')).toBe('program');
    expect(readdirSync(selftests).sort()).toEqual(['nommu-ci', 'timers']);
  });
});
