/**
 * The no-MMU musl toolchain as kselftest builds use it: the tools directory's musl-cc script,
 * in the build sandbox, links a program that reads and sets the timezone through the kernel, as
 * glibc does (musl alone never makes either system call: timers/set-tz failed on every kernel).
 * The program runs on the host, in the sandbox, where setting the timezone is refused.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_DIR } from '@nommu-ci/shared';
import { removeTree } from '../exec.js';
import { runSandboxed } from '../sandbox.js';
import { ownedDir } from '../stages/build.js';
import { TOOLS_MOUNT, toolsDir } from './toolchains.js';

const dir = path.join(CACHE_DIR, 'jobs', `toolchains-test-${process.pid}`);

const PROGRAM = `#include <errno.h>
#include <stdio.h>
#include <sys/time.h>
int main(void)
{
	struct timezone tz = { 123, 45 };
	struct timeval tv;
	int r;

	r = gettimeofday(&tv, &tz);
	printf("gettimeofday %d tz %d %d\\n", r, tz.tz_minuteswest, tz.tz_dsttime);
	tz.tz_minuteswest = 24 * 60;	/* out of range: refused whatever the caller's rights */
	tz.tz_dsttime = 0;
	r = settimeofday(NULL, &tz);
	printf("settimeofday %d errno %d\\n", r, r ? errno : 0);
	return 0;
}
`;

async function sandboxed(argv: string[]): Promise<{ code: number | null; out: string }> {
  let out = '';
  const r = await runSandboxed({
    name: `toolchains-test-${process.pid}-${Date.now()}`,
    argv,
    mounts: [
      { host: path.join(dir, 'tools'), path: TOOLS_MOUNT },
      { host: path.join(dir, 'work'), path: '/work', rw: true },
    ],
    tmpDir: path.join(dir, 'tmp'),
    cwd: '/work',
    timeoutMs: 120_000,
    onOutput: (b) => (out += b.toString()),
  });
  return { code: r.code, out };
}

beforeAll(async () => {
  await removeTree(dir);
  mkdirSync(dir, { recursive: true });
  ownedDir(path.join(dir, 'tmp'));
  ownedDir(path.join(dir, 'work'));
  await toolsDir(path.join(dir, 'tools'));
  writeFileSync(path.join(dir, 'work/tz.c'), PROGRAM);
});

afterAll(async () => {
  await removeTree(dir);
});

describe('the no-MMU musl toolchain', () => {
  it('links programs whose gettimeofday() and settimeofday() pass the timezone to the kernel', async () => {
    const cc = await sandboxed([`${TOOLS_MOUNT}/musl-cc`, '-O2', '-o', 'tz', 'tz.c']);
    expect(cc).toEqual({ code: 0, out: '' });
    const run = await sandboxed(['./tz']);
    expect(run.code).toBe(0);
    // The kernel filled in the timezone (musl's own gettimeofday leaves 123 45 as it was) and
    // refused the bad one (musl's own settimeofday(NULL, tz) returns 0 without asking).
    expect(run.out).toMatch(/^gettimeofday 0 tz -?\d+ \d+\n/);
    expect(run.out).not.toContain('tz 123 45');
    expect(run.out).toMatch(/^settimeofday -1 errno (1|22)$/m); // EPERM in the sandbox, else EINVAL
  });
});
