/**
 * User space of the no-MMU kernel as a kselftest job sees it, through the real worker (real
 * redis-server, kernel build, kselftest build and boot in the job sandbox): one no-MMU job whose
 * patch adds our own programs (kernel-images/rootfs/kselftest/) to the tree as target
 * `nommu-ci-user`, so they are built exactly as the tree's own kselftests are, next to `size`:
 * - size's get_size (its own _start, -nostartfiles) passes: pie-start relocates it;
 * - threads: created, synchronised and joined, built against musl by the job;
 * - host-rights: raw host system calls through a `syscall` instruction in the UML binary's text
 *   reach the host (its uid, pid and release; a file written where the sandbox allows it), and
 *   everything the sandbox should stop fails with the host errno the sandbox causes: reading a
 *   host file, connecting to this service's Redis, writing outside the job, writing the kernel.
 *
 * On each built-in catalogue kernel (debian-7.2, debian-7.3), each with its own series. Costs a
 * patched kernel build per kernel (a copy of the base the other no-MMU kselftest tests build).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KERNEL_IMAGES_DIR, loadCatalog, loadSeries, type KernelSource, type TestNode } from '@nommu-ci/shared';
import { SANDBOX_UID } from '../src/sandbox.js';
import { newFilesPatch } from './patches.js';
import { runJobOn, startTestRedis, type Run, type TestRedis } from './helpers.js';
import { child, named } from './tree.js';

/** The built-in catalogue (an operator's NOMMU_CI_KERNELS trees are not ours to test). */
const KERNELS = loadCatalog({});
const runnable = (k: KernelSource): boolean => k.available && loadSeries(k.seriesDir) !== null;
const SRC = path.join(KERNEL_IMAGES_DIR, 'rootfs/kselftest');
const TARGET = 'nommu-ci-user';
/** World-readable on the host, not in the sandbox. */
const HOST_READ = '/etc/passwd';
/** A directory the sandbox uid could write on the host; the sandbox does not show it. */
const OUTSIDE = path.join('/var/tmp', `nommu-ci-host-rights-${process.pid}`);
const HOST_WRITE = path.join(OUTSIDE, 'written-from-a-job');

let t: TestRedis;

function header(redisPort: number): string {
  return [
    `#define HOST_READ_PATH "${HOST_READ}"`,
    `#define HOST_WRITE_PATH "${HOST_WRITE}"`,
    // The job's rootfs, as the sandbox binds it (ROOTFS_MOUNT), and the same file in the guest.
    `#define HOST_PROOF_PATH "/rootfs/kselftest/${TARGET}/host-rights.proof"`,
    `#define GUEST_PROOF_PATH "/kselftest/${TARGET}/host-rights.proof"`,
    // The kernel's build directory, which boot binds read-only at /build.
    '#define HOST_KERNEL_PATH "/build/.config"',
    `#define REDIS_PORT ${redisPort}`,
    `#define SANDBOX_UID ${SANDBOX_UID}`,
    `#define HOST_RELEASE "${os.release()}"`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  if (!KERNELS.some(runnable)) return;
  t = await startTestRedis('kselftest-user');
  mkdirSync(OUTSIDE, { recursive: true });
  chmodSync(OUTSIDE, 0o777);
});

afterAll(async () => {
  rmSync(OUTSIDE, { recursive: true, force: true });
  await t?.stop();
});

/** The job: size and our programs, patched into the kernel's tree. */
async function runUserJob(kernel: KernelSource): Promise<Run> {
  const dir = `tools/testing/selftests/${TARGET}`;
  const patch = newFilesPatch(
    {
      [`${dir}/Makefile`]: readFileSync(path.join(SRC, 'Makefile'), 'utf8'),
      [`${dir}/threads.c`]: readFileSync(path.join(SRC, 'threads.c'), 'utf8'),
      [`${dir}/host-rights.c`]: readFileSync(path.join(SRC, 'host-rights.c'), 'utf8'),
      [`${dir}/host-rights.h`]: header(t.server.port),
    },
    'selftests: nommu-ci user-space programs',
  );
  const run = await runJobOn(
    t,
    { kind: 'kselftest', kernel: kernel.name, mmu: false, targets: ['size', TARGET], patch, test_timeout_s: 60 },
    { timeoutMs: 1_700_000 },
  );
  console.log(`kselftest-user on ${kernel.name}: ${run.record.state} in ${run.ms} ms, stages ${JSON.stringify(run.record.timings.stages)}: ${run.record.message}`);
  return run;
}

/** A node's diagnostics and its children's, one text. */
const diagnostics = (n: TestNode): string => [...n.diagnostics, ...n.children.flatMap((c) => c.diagnostics)].join('\n');

for (const kernel of KERNELS) {
  describe.skipIf(!runnable(kernel))(`no-MMU user space in a kselftest job (real worker): ${kernel.name}`, () => {
    let run: Run;
    let results: TestNode[];
    let buildLog: string;
    const test = (target: string, name: string): TestNode => child(named(results, target), name);

    beforeAll(async () => {
      run = await runUserJob(kernel);
      results = (await t.store.results(run.id)) ?? [];
      buildLog = (await t.store.artifact(run.id, 'build.log'))?.toString() ?? '';
    }, 1_800_000);

    it('the job passes: size, threads and host-rights', () => {
      expect(run.record.state).toBe('passed');
      expect(run.record.config?.mmu).toBe(false);
      expect(results.map((r) => r.name)).toEqual(['size', TARGET]);
    });

    it('size: get_size, which brings its own _start, passes once relocated', () => {
      expect(test('size', 'get_size').status).toBe('pass');
      expect(test('size', 'get_size').children.map((c) => [c.name, c.status])).toEqual([['get runtime memory use', 'pass']]);
    });

    it('threads: built against musl by the job, created, synchronised and joined', () => {
      expect(buildLog).toMatch(new RegExp(`building ${TARGET} with musl: threads host-rights`));
      expect(buildLog).not.toMatch(new RegExp(`building ${TARGET} with glibc`));
      const th = test(TARGET, 'threads');
      expect(th.status).toBe('pass');
      expect(th.children.map((c) => c.status)).toEqual(Array(6).fill('pass'));
      expect(th.children[0]!.name).toBe('pthread_create starts 8 threads');
    });

    it('host-rights: raw host system calls run with the UML process rights; the sandbox stops each escape', () => {
      const hr = test(TARGET, 'host-rights');
      const diag = diagnostics(hr);
      expect(hr.children.map((c) => [c.name, c.status])).toEqual([
        [expect.stringMatching(/^found a syscall instruction in the UML binary's text at 0x6/), 'pass'],
        ["host getuid is the sandbox's uid, not the guest's", 'pass'],
        ["host getpid and uname are the host's, not the guest's", 'pass'],
        ['a file written through the host appears in the guest', 'pass'],
        [`reading host file ${HOST_READ} fails`, 'pass'],
        ["connecting to the service's Redis on 127.0.0.1 fails", 'pass'],
        [`creating host file ${HOST_WRITE} fails`, 'pass'],
        ["writing the kernel's build directory /build/.config fails", 'pass'],
      ]);
      expect(diag).toContain(`host getuid ${SANDBOX_UID}, guest getuid 0`);
      expect(diag).toContain(`host release ${os.release()}`);
      // Each refusal is the sandbox's: the file, the port and the directory are there on the host.
      const { ENOENT, ECONNREFUSED, EROFS } = os.constants.errno;
      expect(statSync(HOST_READ).mode & 0o004).toBeTruthy();
      expect(diag).toContain(`reading host file ${HOST_READ}: errno ${ENOENT} `);
      // bwrap's network namespace has its own loopback, where nothing listens.
      expect(diag).toContain(`connecting to the service's Redis on 127.0.0.1: errno ${ECONNREFUSED} `);
      expect(diag).toContain(`creating host file ${HOST_WRITE}: errno ${ENOENT} `);
      expect(existsSync(HOST_WRITE)).toBe(false);
      expect(diag).toContain(`writing the kernel's build directory /build/.config: errno ${EROFS} `);
    });

    it("the service's Redis was reachable on the host all along", async () => {
      expect(await t.redis.ping()).toBe('PONG');
    });
  });
}
