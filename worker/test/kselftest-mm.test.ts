/**
 * nommu-ci/mm (kernel-images/rootfs/kselftest/mm/) through the real worker (real redis-server,
 * kernel, kselftest build and sandboxed boot): one kselftest job per kernel, MMU and no-MMU, on
 * debian-7.2 without a patch: the worker itself puts our target into the job's selftests. Every
 * case's outcome is asserted on each kernel: the no-MMU failures are real kernel bugs, each
 * named in its result (see mappings.c and sysmem.c), and would turn to passes on a fixed kernel,
 * which this test would then report.
 *
 * Costs the kselftest kernels' base builds when not cached (the other kselftest tests build the
 * same bases), then about a minute per kernel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, loadSeries, type TestNode } from '@nommu-ci/shared';
import { runJobOn, startTestRedis, type Run, type TestRedis } from './helpers.js';
import { child, named } from './tree.js';

const KERNEL = loadCatalog({}).find((k) => k.name === 'debian-7.2')!;
const runnable = KERNEL.available && loadSeries(KERNEL.seriesDir) !== null;
const TARGET = 'nommu-ci/mm';

/** Each program's cases in order: [the start of its name, status], per kernel. */
const MAPPINGS: Record<'mmu' | 'nommu', [string, 'pass' | 'fail'][]> = {
  nommu: [
    ['anonymous private mapping', 'pass'],
    ['anonymous shared mapping', 'pass'],
    ['anonymous executable mapping', 'pass'],
    ['mmap refuses a zero length', 'pass'],
    ['MAP_FIXED is refused with EINVAL', 'pass'],
    ['munmap of an anonymous mapping in parts; unmapping it again is EINVAL', 'pass'],
    ['munmap of a misaligned address', 'pass'],
    ['private read-only file mapping', 'pass'],
    ['private writable file mapping', 'pass'],
    ['shared file mapping on tmpfs', 'pass'],
    ['shrinking a tmpfs file under a shared mapping: ETXTBSY', 'pass'],
    ['hostfs file: private mapping copies it; shared mapping is ENODEV', 'pass'],
    ['mmap refuses a write-only fd', 'pass'],
    ['code in a tmpfs and a hostfs file, mapped read/exec, runs (7, 7)', 'pass'],
    ['mmap at an offset past the largest file size is EINVAL', 'pass'],
    ['READ_IMPLIES_EXEC makes PROT_READ mappings executable: anonymous r--p, file r--p [no-MMU bug', 'fail'],
    ['vm.nr_trim_pages: a 3-page mapping keeps 12 kB when trimmed, 16 kB with trimming off (12, 16)', 'pass'],
    ['truncating a file past the end of its shared mapping: allowed', 'pass'],
    ['munmap of half a file mapping: EINVAL', 'pass'],
    ['mremap shrinks in place and grows back; past the first size with MREMAP_MAYMOVE: ENOMEM', 'pass'],
    ['mremap refuses part of a mapping and MREMAP_FIXED (EINVAL), a shared mapping (EPERM)', 'pass'],
    ['8 MiB anonymous mapping works; 128 MiB is ENOMEM', 'pass'],
    ['/dev/zero: shared mapping is ENODEV (errno 19); private mapping is zeroes (errno 22) [known no-MMU bug', 'fail'],
    ['a shared mapping of the second page of another: the same bytes, each unmapped on its own (0, 0)', 'pass'],
    ['the same file range mapped twice: each munmap succeeds (0, 22) [known no-MMU bug', 'fail'],
    ['a write through /proc/self/mem into a private read-only file mapping does not reach the file [known no-MMU bug', 'fail'],
  ],
  mmu: [
    ['anonymous private mapping', 'pass'],
    ['anonymous shared mapping', 'pass'],
    ['anonymous executable mapping', 'pass'],
    ['mmap refuses a zero length', 'pass'],
    ['MAP_FIXED replaces the page at the address', 'pass'],
    ['munmap of an anonymous mapping in parts; unmapping it again is a no-op', 'pass'],
    ['munmap of a misaligned address', 'pass'],
    ['private read-only file mapping', 'pass'],
    ['private writable file mapping', 'pass'],
    ['shared file mapping on tmpfs', 'pass'],
    ['shrinking a tmpfs file under a shared mapping: allowed', 'pass'],
    ['hostfs file: private mapping copies it; shared mapping writes it', 'pass'],
    ['mmap refuses a write-only fd', 'pass'],
    ['code in a tmpfs and a hostfs file, mapped read/exec, runs (7, 7)', 'pass'],
    ['mmap at an offset past the largest file size is EOVERFLOW', 'pass'],
    ['READ_IMPLIES_EXEC makes PROT_READ mappings executable: anonymous r-xp, file r-xp', 'pass'],
    ['there is no vm.nr_trim_pages with an MMU', 'pass'],
    ['truncating a file past the end of its shared mapping: allowed', 'pass'],
    ['munmap of half a file mapping: allowed', 'pass'],
    ['mremap shrinks in place and grows back; past the first size with MREMAP_MAYMOVE: moved', 'pass'],
    ['mremap of part of a mapping, MREMAP_FIXED and of a shared mapping all work', 'pass'],
    ['8 MiB anonymous mapping works; 128 MiB works', 'pass'],
    ['/dev/zero: shared mapping works', 'pass'],
    ['a shared mapping of the second page of another: the same bytes, each unmapped on its own (0, 0)', 'pass'],
    ['the same file range mapped twice: each munmap succeeds (0, 0)', 'pass'],
    ['a write through /proc/self/mem into a private read-only file mapping does not reach the file', 'pass'],
  ],
};

const SYSMEM: Record<'mmu' | 'nommu', [string, 'pass' | 'fail'][]> = {
  nommu: [
    ['mprotect, msync, madvise(MADV_DONTNEED), mlock, munlock, mincore: ENOSYS', 'pass'],
    ['mprotect is ENOSYS whatever it is asked', 'pass'],
    ['brk cannot grow past the zero-size brk area', 'pass'],
    ['System V shm: shmat: No such device [no-MMU bug', 'fail'],
    ['System V shm refuses an empty segment', 'pass'],
    ['POSIX shm on /dev/shm', 'pass'],
    ['memfd_create is ENOSYS without tmpfs', 'pass'],
    ['/proc/self/maps lists an anonymous rw-p mapping', 'pass'],
    ['/proc/self/smaps does not exist without an MMU', 'pass'],
    ["/proc/self/mem reads a mapping's bytes; after munmap EIO", 'pass'],
    ['/proc/self/status: Mem grows by at least 1 MiB (in bytes)', 'pass'],
    ['256 one-page mappings made and unmapped', 'pass'],
  ],
  mmu: [
    ['mprotect, msync, madvise(MADV_DONTNEED), mlock, munlock, mincore: work', 'pass'],
    ['mprotect refuses a misaligned address (EINVAL) and unmapped memory (ENOMEM)', 'pass'],
    ['brk grows by 2 pages, by 64 MiB, and shrinks back', 'pass'],
    ['System V shm: one segment attached twice, shared, counted, detached', 'pass'],
    ['System V shm refuses an empty segment', 'pass'],
    ['POSIX shm on /dev/shm', 'pass'],
    ['memfd: a shared mapping writes the file', 'pass'],
    ['/proc/self/maps lists an anonymous rw-p mapping', 'pass'],
    ['/proc/self/smaps: a 4-page mapping with 2 pages touched is Size 16 kB, Rss 8 kB', 'pass'],
    ["/proc/self/mem reads a mapping's bytes; after munmap EIO", 'pass'],
    ['/proc/self/status: VmSize grows by 1024 kB', 'pass'],
    ['256 one-page mappings made and unmapped', 'pass'],
  ],
};

let t: TestRedis;

beforeAll(async () => {
  if (runnable) t = await startTestRedis('kselftest-mm');
});

afterAll(async () => {
  await t?.stop();
});

const cases = (n: TestNode): [string, string][] => n.children.map((c) => [c.name, c.status]);
const expected = (want: [string, 'pass' | 'fail'][]): [unknown, string][] => want.map(([name, status]) => [expect.stringMatching(new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)), status]);

for (const kernel of ['nommu', 'mmu'] as const) {
  describe.skipIf(!runnable)(`nommu-ci/mm on the ${kernel === 'mmu' ? 'MMU' : 'no-MMU'} kernel (real worker)`, () => {
    let run: Run;
    let results: TestNode[];
    let buildLog: string;

    beforeAll(async () => {
      run = await runJobOn(t, { kind: 'kselftest', kernel: KERNEL.name, mmu: kernel === 'mmu', targets: [TARGET], test_timeout_s: 120 }, { timeoutMs: 1_700_000 });
      results = (await t.store.results(run.id)) ?? [];
      buildLog = (await t.store.artifact(run.id, 'build.log'))?.toString() ?? '';
      console.log(`nommu-ci/mm on ${kernel}: ${run.record.state} in ${run.ms} ms, stages ${JSON.stringify(run.record.timings.stages)}: ${run.record.message}`);
    }, 1_800_000);

    it('the worker builds our target from its own directory, as the tree builds its own', () => {
      expect(results.map((r) => r.name)).toEqual([TARGET]);
      expect(buildLog).toMatch(new RegExp(`building ${TARGET} with ${kernel === 'mmu' ? 'glibc' : 'musl'}: mappings sysmem`));
      expect(run.record.config?.mmu).toBe(kernel === 'mmu');
    });

    it('mappings: each case has the outcome of this kernel', () => {
      const m = child(named(results, TARGET), 'mappings');
      expect(cases(m)).toEqual(expected(MAPPINGS[kernel]));
      expect(m.status).toBe(kernel === 'mmu' ? 'pass' : 'fail');
    });

    it('sysmem: each case has the outcome of this kernel', () => {
      const s = child(named(results, TARGET), 'sysmem');
      expect(cases(s)).toEqual(expected(SYSMEM[kernel]));
      expect(s.status).toBe(kernel === 'mmu' ? 'pass' : 'fail');
    });

    it('the job state follows: passed with an MMU, failed (test stage) on the no-MMU kernel bugs', () => {
      expect(run.record.state).toBe(kernel === 'mmu' ? 'passed' : 'failed');
      expect(run.record.message).toBe(kernel === 'mmu' ? '38 passed, 0 skipped' : '5 failed, 0 crashed');
      if (kernel === 'nommu') expect(run.record.stage).toBe('test');
    });
  });
}

/**
 * The heuristic's measured exceptions, in a real no-MMU job: mm programs whose source has
 * MAP_FIXED or the harness, yet which end on a precise skip of their own, are built and run (the
 * skip reason is theirs, not "needs an MMU"), and the job passes; map_fixed_noreplace and
 * mremap_test (which would fail the job, see RUN_ANYWAY) are still not built.
 */
describe.skipIf(!runnable)('the no-MMU heuristic in a real job', () => {
  let results: TestNode[];
  let run: Run;

  beforeAll(async () => {
    const tests = ['pfnmap', 'mseal_test', 'pagemap_ioctl', 'mremap_test', 'map_fixed_noreplace'].map((n) => `mm:${n}`);
    run = await runJobOn(t, { kind: 'kselftest', kernel: KERNEL.name, mmu: false, targets: ['mm'], tests, test_timeout_s: 60 }, { timeoutMs: 1_700_000 });
    results = (await t.store.results(run.id)) ?? [];
    console.log(`heuristic job: ${run.record.state} in ${run.ms} ms: ${run.record.message}`);
  }, 1_800_000);

  it('runs the programs it used to skip; they skip themselves, each with its own reason', () => {
    const mm = named(results, 'mm');
    expect(mm.children.map((c) => [c.name, c.status, c.reason])).toEqual([
      ['pfnmap', 'skip', expect.stringContaining("Cannot find ram target in '/proc/iomem'")],
      ['mseal_test', 'skip', expect.stringContaining('sealing not supported')],
      ['pagemap_ioctl', 'skip', expect.stringContaining('Failed to initialize userfaultfd')],
      ['mremap_test', 'skip', 'needs an MMU: maps at fixed addresses (MAP_FIXED)'],
      ['map_fixed_noreplace', 'skip', 'needs an MMU: maps at fixed addresses (MAP_FIXED)'],
    ]);
    expect(run.record.state).toBe('passed');
    expect(run.record.message).toBe('0 passed, 5 skipped');
  });
});
