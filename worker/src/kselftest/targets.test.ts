import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, REPO_DIR } from '@nommu-ci/shared';
import { listTargets, makeVariables, nommuBlocker, OWN_TARGETS, readTarget, readTargets, SELFTESTS_DIR } from '@nommu-ci/shared';
import { formatPlan } from './rootfs.js';
import { kselftestFragment, kselftestKconfig } from './kconfig.js';

let tree: string;

beforeAll(() => {
  tree = mkdtempSync(path.join(os.tmpdir(), 'nommu-ci-targets-'));
  const st = path.join(tree, SELFTESTS_DIR);
  mkdirSync(path.join(st, 'alpha'), { recursive: true });
  mkdirSync(path.join(st, 'sub/beta'), { recursive: true });
  mkdirSync(path.join(st, 'unlisted'), { recursive: true });
  writeFileSync(path.join(st, 'Makefile'), 'TARGETS += alpha\nTARGETS += sub/beta\nTARGETS += gone\n# TARGETS += commented\nTARGETS += ../evil\n');
  writeFileSync(
    path.join(st, 'alpha/Makefile'),
    [
      '# comment TEST_GEN_PROGS += not_me',
      'TEST_GEN_PROGS := one two \\',
      '\tthree',
      'ifeq ($(ARCH),x86_64)',
      'TEST_GEN_PROGS += x86only',
      'else',
      'TEST_GEN_PROGS += otherarch',
      'endif',
      'EXTRA = ext1 ext2',
      'TEST_GEN_PROGS_EXTENDED = $(EXTRA) $(OUTPUT)/ext3',
      'TEST_GEN_FILES += helper $(patsubst %,%_64,$(X)) one',
      'TEST_PROGS := run.sh',
      'TEST_CUSTOM_PROGS := $(OUTPUT)/custom',
      'include ../lib.mk',
      '$(OUTPUT)/one: LDLIBS += -lpthread',
      '\t$(CC) -o $@ $^',
    ].join('\n'),
  );
  writeFileSync(path.join(st, 'alpha/settings'), 'timeout=120\n');
  // What comments say is not what the program does (threads.c said "musl does without mprotect()").
  writeFileSync(path.join(st, 'alpha/one.c'), '/* unlike glibc, no mprotect() */\nint main(void) { return 0; } // nor fork()\n');
  writeFileSync(path.join(st, 'alpha/two.c'), '#include <sys/mman.h>\nconst char *s = "/* no comment";\nint main(void) { return mmap(0, 1, 0, MAP_FIXED, 0, 0) != 0; }\n');
  writeFileSync(path.join(st, 'alpha/three.c'), '#include "../kselftest_harness.h"\nTEST(x) {}\nTEST_HARNESS_MAIN\n');
  writeFileSync(path.join(st, 'alpha/helper.c'), 'int main(void) { mremap(0, 0, 0, 0); return vfork(); }\n');
  writeFileSync(path.join(st, 'sub/beta/Makefile'), 'TEST_GEN_PROGS = b\ninclude ../../lib.mk\n');
  writeFileSync(path.join(st, 'unlisted/Makefile'), 'TEST_GEN_PROGS = u\n');
});
afterAll(() => rmSync(tree, { recursive: true, force: true }));

describe('kselftest targets', () => {
  it('lists TARGETS that exist, never outside the tree', () => {
    expect(listTargets(tree)).toEqual(['alpha', 'sub/beta']);
    expect(readTarget(tree, '../evil')).toBeNull();
    expect(readTarget(tree, 'gone')).toBeNull();
  });

  it('reads the test variables with continuations, both branches, references, $(OUTPUT)/', () => {
    const t = readTarget(tree, 'alpha')!;
    expect(t.timeout_s).toBe(120);
    expect(t.tests.map((x) => `${x.name}:${x.kind}:${x.default}`)).toEqual([
      'one:prog:true',
      'two:prog:true',
      'three:prog:true',
      'x86only:prog:true',
      'otherarch:prog:true',
      'custom:custom:true',
      'run.sh:script:true',
      'ext1:extended:false',
      'ext2:extended:false',
      'ext3:extended:false',
      'helper:file:false',
    ]);
    expect(readTarget(tree, 'sub/beta')!.timeout_s).toBe(45);
    expect(makeVariables('A = 1\nA += 2\n\tA += recipe\n').get('A')).toEqual(['1', '2']);
  });

  it('no-MMU heuristic: the harness, MAP_FIXED, scripts; not fork() or mremap() (real runs), not what comments say', () => {
    const t = readTarget(tree, 'alpha')!;
    const why = Object.fromEntries(t.tests.map((x) => [x.name, x.nommu_blocker]));
    expect(why.one).toBeNull();
    expect(why.two).toMatch(/MAP_FIXED/);
    expect(why.three).toMatch(/harness/);
    expect(why.helper).toBeNull();
    expect(why['run.sh']).toMatch(/shell/);
    expect(nommuBlocker(path.join(tree, SELFTESTS_DIR, 'alpha'), 'x86only', 'prog')).toBeNull();
  });

  it('our own targets: offered with every tree after its own, for both kernels (they test the kernel they run on)', () => {
    expect(readTargets(tree).map((t) => t.name)).toEqual(['alpha', 'sub/beta', 'nommu-ci/mm']);
    const mm = readTarget(tree, 'nommu-ci/mm')!;
    expect(mm.tests.map((t) => [t.name, t.kind, t.default, t.nommu_blocker])).toEqual([
      ['mappings', 'prog', true, null],
      ['sysmem', 'prog', true, null],
    ]);
    // The heuristic alone would skip mappings on no-MMU: it checks that MAP_FIXED is refused.
    expect(nommuBlocker(OWN_TARGETS['nommu-ci/mm']!, 'mappings', 'prog')).toMatch(/MAP_FIXED/);
    // Never looked up in the tree, even where a tree has a directory of that name.
    mkdirSync(path.join(tree, SELFTESTS_DIR, 'nommu-ci/mm'), { recursive: true });
    writeFileSync(path.join(tree, SELFTESTS_DIR, 'nommu-ci/mm/Makefile'), 'TEST_GEN_PROGS = other\n');
    expect(readTarget(tree, 'nommu-ci/mm')!.tests.map((t) => t.name)).toEqual(['mappings', 'sysmem']);
    rmSync(path.join(tree, SELFTESTS_DIR, 'nommu-ci'), { recursive: true });
  });

  const real = loadCatalog()[0]!;
  it.skipIf(!real.available)('the real tree: timers and mm as measured', () => {
    const targets = listTargets(real.path);
    expect(targets).toEqual(expect.arrayContaining(['timers', 'mm', 'proc', 'futex']));
    const timers = readTarget(real.path, 'timers')!;
    expect(timers.tests.filter((t) => t.default).map((t) => t.name)).toEqual([
      'posix_timers', 'nanosleep', 'nsleep-lat', 'set-timer-lat', 'mqueue-lat', 'inconsistency-check', 'raw_skew', 'threadtest', 'rtcpie',
    ]);
    const mm = readTarget(real.path, 'mm')!;
    expect(mm.tests.find((t) => t.name === 'mremap_dontunmap')).toMatchObject({ kind: 'file', default: false });
    expect(mm.tests.filter((t) => t.default).every((t) => t.kind === 'script')).toBe(true);
    // What the no-MMU runs showed (see MMU_FEATURES): these ran and passed although they call
    // fork(), mprotect(), madvise() or mlock(); the harness and MAP_FIXED programs failed.
    const blocker = (n: string): string | null => mm.tests.find((t) => t.name === n)!.nommu_blocker;
    for (const n of ['mrelease_test', 'uffd-unit-tests', 'gup_longterm', 'gup_test', 'on-fault-limit', 'thuge-gen']) expect(blocker(n), n).toBeNull();
    expect(blocker('merge')).toMatch(/harness/);
    expect(blocker('map_fixed_noreplace')).toMatch(/MAP_FIXED/);
    // Re-measured with the heuristic ignored (shared/fixtures/kselftest-nommu-heuristic.json):
    // these three are blocked by their source yet end on a precise skip of their own: they run.
    const measured = JSON.parse(readFileSync(path.join(REPO_DIR, 'shared/fixtures/kselftest-nommu-heuristic.json'), 'utf8')) as {
      rows: { target: string; programs: { name: string; status: string; reason?: string }[] }[];
    };
    const outcome = (t: string, n: string) => measured.rows.find((r) => r.target === t)!.programs.find((p) => p.name === n)!;
    for (const n of ['pfnmap', 'mseal_test', 'pagemap_ioctl']) {
      expect(blocker(n), n).toBeNull();
      expect(outcome('mm', n).status, n).toBe('skip');
      expect(outcome('mm', n).reason, n).not.toMatch(/build failed|needs an MMU/);
      expect(nommuBlocker(path.join(real.path, SELFTESTS_DIR, 'mm'), n, 'file'), n).toBeNull();
    }
    // mremap_test skipped itself too, after printing a plan of 26: that job would fail (see RUN_ANYWAY).
    expect(outcome('mm', 'mremap_test').status).toBe('skip');
    expect(blocker('mremap_test')).toMatch(/MAP_FIXED/);
    // Every other program the features block failed (or did not build) when run anyway.
    const blocked = ['mm', 'proc', 'futex/functional'].flatMap((t) =>
      readTarget(real.path, t)!.tests.filter((x) => x.kind !== 'script' && x.nommu_blocker).map((x) => [t, x.name] as const),
    );
    expect(blocked.length).toBe(13 + 3 + 13);
    for (const [t, n] of blocked.filter(([t, n]) => `${t}/${n}` !== 'mm/mremap_test')) expect(outcome(t, n).status === 'fail' || /build failed/.test(outcome(t, n).reason ?? ''), `${t}/${n}`).toBe(true);
    // timers: nothing is blocked, so the heuristic changes nothing there.
    expect(timers.tests.filter((x) => x.nommu_blocker && x.kind !== 'script')).toEqual([]);
    expect(readTarget(real.path, 'futex/functional')!.tests.filter((t) => t.kind !== 'script' && t.nommu_blocker).length).toBe(13);
  });
});

describe('plan and Kconfig', () => {
  it('formats plan lines init reads: tabs and newlines in reasons cannot break a line', () => {
    expect(formatPlan([
      { target: 'mm', test: 'a', timeout_s: 45, program: '/x' },
      { target: 'mm', test: 'b', timeout_s: 45, skip: 'build failed:\tx\ny', details: ['d1', '', 'd\t2'] },
    ])).toBe('mm\ta\t45\nmm\tb\t45\tbuild failed: x y\td1\td 2\n');
  });

  it('the fragment has hostfs and the mounts init needs; no-MMU drops MMU-only lines', () => {
    expect(kselftestKconfig(true)).toEqual(expect.arrayContaining(['CONFIG_HOSTFS=y', 'CONFIG_DEVTMPFS=y', 'CONFIG_TMPFS=y', 'CONFIG_PROC_FS=y', 'CONFIG_BINFMT_ELF=y']));
    for (const l of ['CONFIG_USERFAULTFD=y', 'CONFIG_TMPFS=y', 'CONFIG_BINFMT_ELF=y']) expect(kselftestKconfig(false)).not.toContain(l);
    const f = kselftestFragment({ mmu: false, kconfig_add: ['CONFIG_DEBUG_VM=y', '# CONFIG_HOSTFS is not set'] });
    expect(f.options.get('CONFIG_MMU')).toBe('n');
    expect(f.options.get('CONFIG_DEBUG_VM')).toBe('y');
    expect(f.options.get('CONFIG_HOSTFS')).toBe('n');
    expect(kselftestFragment({ mmu: true }).hash).not.toBe(kselftestFragment({ mmu: false }).hash);
  });
});

describe('selection', () => {
  it('default tests per target, named tests only for their target, bad names fail at config', async () => {
    const { selectTests } = await import('./plan.js');
    const sel = selectTests({ kind: 'kselftest', targets: ['alpha'], tests: ['sub/beta:b', 'alpha:helper'] }, tree);
    expect(sel.map((s) => [s.target.name, s.tests.map((t) => t.name)])).toEqual([
      ['alpha', ['helper']],
      ['sub/beta', ['b']],
    ]);
    const def = selectTests({ kind: 'kselftest', targets: ['alpha'] }, tree);
    expect(def[0]!.tests.map((t) => t.name)).toEqual(['one', 'two', 'three', 'x86only', 'otherarch', 'custom', 'run.sh']);
    expect(() => selectTests({ kind: 'kselftest', targets: ['nope'] }, tree)).toThrow(/target "nope" does not exist/);
    expect(() => selectTests({ kind: 'kselftest', targets: ['alpha'], tests: ['alpha:nope'] }, tree)).toThrow(/"alpha:nope": no such test/);
  });
});
