/**
 * Our init (kernel-images/rootfs/init/init.c) on the host: not PID 1, it skips the mounts and the
 * power-off and takes the plan and the test root as arguments. Its output must be KTAP that
 * shared/src/ktap reads as intended: one top-level result per target, a test's own TAP nested
 * under it, a hanging test killed at its timeout with the run going on.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractKtap, parseKtap, summarize, type TestNode } from '@nommu-ci/shared';
import { formatPlan, INIT_SRC_DIR, SELFTEST_PROGRAMS } from './rootfs.js';

let dir: string;
let init: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nommu-ci-init-'));
  init = path.join(dir, 'init');
  const selftest = path.join(dir, 'selftest');
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', init, path.join(INIT_SRC_DIR, 'init.c')]);
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', selftest, path.join(INIT_SRC_DIR, 'selftest.c')]);
  for (const t of ['nommu-ci', 'other']) {
    mkdirSync(path.join(dir, 'root', t), { recursive: true });
    for (const n of SELFTEST_PROGRAMS) symlinkSync(selftest, path.join(dir, 'root', t, n));
  }
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(plan: string): { out: string; ms: number } {
  const file = path.join(dir, 'plan');
  writeFileSync(file, plan);
  const start = Date.now();
  const r = spawnSync(init, [file, path.join(dir, 'root')], { encoding: 'utf8', timeout: 30_000 });
  return { out: r.stdout, ms: Date.now() - start };
}

const child = (n: TestNode, name: string): TestNode => {
  const c = n.children.find((x) => x.name === name);
  if (!c) throw new Error(`${n.name} has no child ${name}: ${n.children.map((x) => x.name).join(', ')}`);
  return c;
};

describe('init KTAP', () => {
  it('reports every behaviour as the KTAP parser expects', () => {
    const plan = formatPlan([
      ...SELFTEST_PROGRAMS.map((n) => ({ target: 'nommu-ci', test: n, timeout_s: n.includes('hang') ? 1 : 10, program: 'x' })),
      { target: 'nommu-ci', test: 'missing', timeout_s: 5, program: 'x' },
      { target: 'nommu-ci', test: 'nobuild', timeout_s: 5, skip: 'build failed: nobuild.c:3:10: fatal error: numa.h: No such file', details: ['nobuild.c:3:10: fatal error: numa.h: No such file', 'second\tline'] },
      { target: 'other', test: 'plain-pass', timeout_s: 5, program: 'x' },
    ]);
    const { out, ms } = run(plan);
    expect(ms).toBeLessThan(10_000);
    // Through the console extractor as the boot stage does, with kernel noise before it.
    const { lines, crash } = extractKtap(['Linux version 7.2.12', 'random: crng init done', ...out.split('\n')]);
    expect(crash).toBeNull();
    const r = parseKtap(lines);
    expect(r.version).toBe('KTAP version 1');
    expect(r.planned).toBe(2);
    expect(r.tests.map((t) => [t.name, t.status])).toEqual([
      ['nommu-ci', 'fail'],
      ['other', 'pass'],
    ]);
    const own = r.tests[0]!;
    expect(own.planned).toBe(SELFTEST_PROGRAMS.length + 2);
    expect(own.children.map((c) => [c.name, c.status])).toEqual([
      ['tap-pass', 'pass'],
      ['tap-fail', 'fail'],
      ['tap-noversion', 'pass'],
      ['tap-crash', 'fail'],
      ['plain-pass', 'pass'],
      ['exit-fail', 'fail'],
      ['skip', 'skip'],
      ['hang', 'fail'],
      ['tap-hang', 'fail'],
      ['bg', 'pass'],
      ['missing', 'fail'],
      ['nobuild', 'skip'],
    ]);
    // A test's own TAP is nested under it, counted as its cases.
    const tapPass = child(own, 'tap-pass');
    expect(tapPass.planned).toBe(4);
    expect(tapPass.children.map((c) => [c.name, c.status])).toEqual([
      ['first', 'pass'],
      ['second', 'pass'],
      ['third', 'pass'],
      ['fourth', 'skip'],
    ]);
    expect(child(tapPass, 'first').diagnostics).toContain('# checking things');
    const tapFail = child(own, 'tap-fail');
    expect(child(tapFail, 'bad').diagnostics).toContain('# bad: expected 1, got 2');
    // TAP that starts with its plan (no version line) is nested too; what came before is the test's.
    const noVersion = child(own, 'tap-noversion');
    expect(noVersion.children.map((c) => [c.name, c.status])).toEqual([
      ['one', 'pass'],
      ['two', 'pass'],
    ]);
    expect(noVersion.diagnostics).toContain('# Test configs: none');
    // Crashed after one of three: the signal is a failing case of its own, so it counts.
    const crashNode = child(own, 'tap-crash');
    expect(crashNode.children.map((c) => [c.name, c.status])).toEqual([
      ['before', 'pass'],
      ['signal', 'fail'],
    ]);
    expect(child(crashNode, 'signal').diagnostics.join('\n')).toMatch(/tap-crash: killed by signal 11/);
    // Plain output becomes the test's diagnostics.
    expect(child(own, 'plain-pass').diagnostics).toEqual(expect.arrayContaining(['# hello from plain-pass', '# all good']));
    expect(child(own, 'exit-fail').diagnostics.join('\n')).toMatch(/exit code 3/);
    expect(child(own, 'skip').reason).toBe('needs a feature this kernel lacks');
    const hang = child(own, 'hang');
    expect(hang.diagnostics.join('\n')).toMatch(/hang: timed out after 1 s; killed/);
    // A TAP test killed at its timeout with all its results ok: a failing `timeout` case.
    const tapHang = child(own, 'tap-hang');
    expect(tapHang.children.map((c) => [c.name, c.status])).toEqual([
      ['started', 'pass'],
      ['timeout', 'fail'],
    ]);
    expect(child(tapHang, 'timeout').diagnostics.join('\n')).toMatch(/tap-hang: timed out after 1 s; killed/);
    expect(child(own, 'missing').diagnostics.join('\n')).toMatch(/exit code 127/);
    const nobuild = child(own, 'nobuild');
    expect(nobuild.reason).toBe('build failed: nobuild.c:3:10: fatal error: numa.h: No such file');
    expect(nobuild.diagnostics).toEqual(['# nobuild.c:3:10: fatal error: numa.h: No such file', '# second line']);
    // The errors are those of the plan mismatch the crash leaves (3 planned, 2 seen), nothing else.
    // The only parse error: the plan the crash cut short (3 planned, 1 seen + `signal`).
    expect(r.errors).toEqual(['nommu-ci.tap-crash: expected 3 tests, got 2']);
    // tap-crash's third planned case never reported: crashed.
    // tap-pass 3+1skip, tap-fail 1+1, tap-crash 1+1, plain-pass, exit-fail, skip, hang, tap-hang 1+1, bg, missing, nobuild; other: plain-pass
    expect(summarize(r.tests)).toEqual({ passed: 3 + 1 + 2 + 1 + 1 + 1 + 1 + 1, failed: 1 + 1 + 1 + 1 + 1 + 1, skipped: 1 + 1 + 1, crashed: 1 });
  });

  it('times out a hanging test and goes on; a background child does not hold the run', () => {
    const { out, ms } = run(formatPlan([
      { target: 'other', test: 'hang', timeout_s: 2, program: 'x' },
      { target: 'other', test: 'bg', timeout_s: 5, program: 'x' },
      { target: 'other', test: 'plain-pass', timeout_s: 5, program: 'x' },
    ]));
    expect(ms).toBeGreaterThanOrEqual(2000);
    expect(ms).toBeLessThan(8000);
    const r = parseKtap(extractKtap(out.split('\n')).lines);
    expect(r.complete).toBe(true);
    expect(r.tests[0]!.children.map((c) => [c.name, c.status])).toEqual([
      ['hang', 'fail'],
      ['bg', 'pass'],
      ['plain-pass', 'pass'],
    ]);
  });

  it('cleans names KTAP cannot carry', () => {
    const { out } = run('other\tno such#test\t5\n');
    const r = parseKtap(extractKtap(out.split('\n')).lines);
    expect(r.tests[0]!.children.map((c) => [c.name, c.status])).toEqual([['no_such_test', 'fail']]);
  });

  it('an unreadable plan still prints KTAP (an empty run with the reason)', () => {
    const r = spawnSync(init, [path.join(dir, 'no-such-plan'), dir], { encoding: 'utf8' });
    const k = parseKtap(extractKtap(r.stdout.split('\n')).lines);
    expect(k.planned).toBe(0);
    expect(k.tests).toEqual([]);
    expect(r.stdout).toMatch(/cannot read .*no-such-plan/);
  });
});
