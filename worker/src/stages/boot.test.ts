/**
 * The boot stage against fake kernels (shell scripts standing in for `linux`, run in the real
 * sandbox): a clean run, no KTAP at all, a hang, a panic mid-suite, a console flood.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobEvent, TestNode } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import { ownedDir } from './build.js';
import { boot, kernelArgs, type BootOptions } from './boot.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const KTAP_OK = [
  'KTAP version 1',
  '1..1',
  '    KTAP version 1',
  '    # Subtest: demo',
  '    # module: demo',
  '    1..2',
  '    ok 1 demo_one',
  '    ok 2 demo_two',
  'ok 1 demo',
];

function fakeKernel(script: string): { opts: Omit<BootOptions, 'sink'>; tap: string[]; events: JobEvent[]; sink: BootOptions['sink'] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-boot-'));
  dirs.push(dir);
  chmodSync(dir, 0o755);
  writeFileSync(path.join(dir, 'linux'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  ownedDir(path.join(dir, 'tmp'));
  const tap: string[] = [];
  const events: JobEvent[] = [];
  return {
    opts: { kernelDir: dir, tmpDir: path.join(dir, 'tmp'), consoleLog: path.join(dir, 'console.log'), name: 'boot-test' },
    tap,
    events,
    sink: {
      appendTap: async (l) => void tap.push(...l),
      event: async (e) => void events.push(e),
    },
  };
}

/** Paths of crashed nodes (a suite whose test never reported crashes as a whole). */
const crashes = (tests: TestNode[], pre: string[] = []): string[] =>
  tests.flatMap((t) => [...(t.status === 'crash' ? [[...pre, t.name].join('.') + `: ${t.reason ?? ''}`] : []), ...crashes(t.children, [...pre, t.name])]);

const printf = (lines: string[]): string => lines.map((l) => `echo '${l}'`).join('\n');

describe('boot stage (fake kernels in the sandbox)', () => {
  it('passes the kunit.py UML command line', () => {
    expect(kernelArgs('list-kunit-test')).toEqual(['kunit.filter_glob=list-kunit-test', 'kunit.enable=1', 'mem=1G', 'console=tty', 'kunit_shutdown=halt']);
    expect(kernelArgs()).toEqual(['kunit.enable=1', 'mem=1G', 'console=tty', 'kunit_shutdown=halt']);
  });

  it('streams KTAP from the console and results per test; the kernel sees its arguments', async () => {
    const k = fakeKernel(`echo "Linux version 7.2 args: $*"\necho 'random boot noise'\n${printf(KTAP_OK)}\necho 'reboot: System halted'`);
    const out = await boot({ ...k.opts, sink: k.sink, args: kernelArgs('demo') });
    expect(out.problem).toBeNull();
    expect(out.result.summary).toMatchObject({ passed: 2, failed: 0 });
    expect(k.tap[0]).toBe('KTAP version 1');
    expect(k.tap).toHaveLength(KTAP_OK.length);
    expect(k.events.filter((e) => e.type === 'test').map((e) => (e.type === 'test' ? e.path.join('.') : ''))).toEqual(
      expect.arrayContaining(['demo.demo_one', 'demo.demo_two']),
    );
    const log = readFileSync(k.opts.consoleLog, 'utf8');
    expect(log).toContain('args: kunit.filter_glob=demo kunit.enable=1 mem=1G console=tty kunit_shutdown=halt');
  });

  it('fails at stage boot when the kernel prints no KTAP', async () => {
    const k = fakeKernel(`echo 'Kernel panic - not syncing: VFS: Unable to mount root fs'\nexit 1`);
    const e = await boot({ ...k.opts, sink: k.sink }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StageError);
    expect((e as StageError).stage).toBe('boot');
    expect((e as Error).message).toMatch(/no KTAP/);
  });

  it('kills a hung kernel after the idle timeout; open tests crash with "timeout"', async () => {
    const k = fakeKernel(`${printf(KTAP_OK.slice(0, 7))}\nsleep 600`);
    const t0 = Date.now();
    const out = await boot({ ...k.opts, sink: k.sink, idleMs: 1500 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(out.problem).toMatch(/no console output/);
    expect(out.result.summary.passed).toBe(1);
    expect(crashes(out.result.tests)).not.toEqual([]);
  });

  it('ends the stream at a panic; the running test crashes', async () => {
    const k = fakeKernel(`${printf(KTAP_OK.slice(0, 7))}\necho 'Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009'\nexit 1`);
    const out = await boot({ ...k.opts, sink: k.sink });
    expect(out.problem).toMatch(/crash|panic/i);
    expect(crashes(out.result.tests)).not.toEqual([]);
  });

  it('kills a kernel that floods the console and caps console.log', async () => {
    const k = fakeKernel(`${printf(KTAP_OK.slice(0, 7))}\nwhile :; do echo 'flood flood flood flood flood flood flood flood flood flood'; done`);
    const out = await boot({ ...k.opts, sink: k.sink, consoleLimit: 1 << 20 });
    expect(out.problem).toMatch(/console flood/);
    expect(statSync(k.opts.consoleLog).size).toBeLessThan((1 << 20) + 4096);
    expect(crashes(out.result.tests)).not.toEqual([]);
  });
});
