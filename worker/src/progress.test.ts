/** Progress counting on real kbuild and KTAP output, and its throttled writes. */
import { describe, expect, it } from 'vitest';
import type { Progress } from '@nommu-ci/shared';
import { BuildCounter, ProgressReporter, SuiteCounter } from './progress.js';

// The head of a real base build's build.log (a small KUnit config, make -j2, quiet kbuild).
const BUILD_LOG = [
  '=== nommu-ci: base build debian-7.2-mmu-ae0fbe6c69f0e8e2 (trusted tree, shared ccache)',
  "make[1]: Entering directory '/build'",
  '  UPD     /build/Makefile',
  '  HOSTCC  scripts/basic/fixdep',
  '  HOSTCC  scripts/kconfig/conf.o',
  '  YACC    scripts/kconfig/parser.tab.[ch]',
  '  WRAP    arch/x86/include/generated/uapi/asm/types.h',
  '  CC      kernel/sched/build_utility.o',
  '  CC      io_uring/fdinfo.o',
  '  AS      arch/x86/um/setjmp_64.o',
  '  CC      kernel/dma/direct.o',
  '  AR      kernel/dma/built-in.a',
].join('\n') + '\n';

describe('build progress', () => {
  it('counts the objects kbuild compiles (CC, AS), not host tools or archives, across chunk boundaries', () => {
    const c = new BuildCounter();
    const bytes = Buffer.from(BUILD_LOG);
    let n = 0;
    for (let i = 0; i < bytes.length; i += 7) n = c.push(bytes.subarray(i, i + 7));
    expect(n).toBe(4);
  });
});

describe('serial test progress', () => {
  it('counts suites done of the top-level plan', () => {
    const seen: [number, number][] = [];
    const s = new SuiteCounter((d, t) => seen.push([d, t]));
    s.tap(['KTAP version 1', '1..3', '    KTAP version 1', '    # Subtest: list-kunit-test', '    1..2']);
    s.event({ type: 'test', path: ['list-kunit-test', 'list_test_list_init'], status: 'pass' });
    s.event({ type: 'test', path: ['list-kunit-test'], status: 'pass' });
    s.tap(['    1..7']);
    s.event({ type: 'test', path: ['hlist'], status: 'fail' });
    expect(seen).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
  });
});

describe('progress writes', () => {
  it('writes at most about once a second, and the last value on flush', async () => {
    const written: (Progress | null)[] = [];
    const r = new ProgressReporter(async (p) => void written.push(p));
    for (let i = 1; i <= 50; i++) r.set({ stage: 'build', done: i, total: 50, unit: 'objects' });
    await r.flush();
    expect(written.length).toBeLessThanOrEqual(3);
    expect(written.at(-1)).toEqual({ stage: 'build', done: 50, total: 50, unit: 'objects' });
  });
});
