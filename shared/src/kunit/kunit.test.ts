/**
 * The pure parts of sharded KUnit runs and kunit.py-compatible results, on the captured console
 * logs of shared/fixtures/ktap (real kernels): suite globs, the shard plan, cutting a boot's KTAP
 * into suites and putting them back together, kunit.py's --json document (compared with kunit.py's
 * own output on the same logs when the tree is here) and JUnit XML (read back by junit2json).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseJunit } from 'junit2json';
import { describe, expect, it } from 'vitest';
import { extractKtap, parseKtap } from '../ktap/index.js';
import { REPO_DIR, SOURCES_DIR } from '../paths.js';
import { kunitJson, junitXml } from './formats.js';
import { globMatch, globsFor } from './globs.js';
import { parseListing } from './list.js';
import { planShards, type TimeMode } from './plan.js';
import { numbered, SuiteSplitter, type SuiteBlock } from './suites.js';

const FIXTURES = path.join(REPO_DIR, 'shared/fixtures/ktap');
const TREE = path.join(SOURCES_DIR, 'linux-source-7.2');

function ktapOf(name: string): { lines: string[]; crash: string | null } {
  return extractKtap(readFileSync(path.join(FIXTURES, name), 'utf8').split('\n'));
}

const defaultRun = parseKtap(ktapOf('default.console.txt').lines);
const DEFAULT_SUITES = defaultRun.tests.map((t) => ({ name: t.name, tests: t.children.map((c) => c.name) }));
const NAMES = DEFAULT_SUITES.map((s) => s.name);

describe('suite globs', () => {
  it('globMatch reads globs as lib/glob.c does', () => {
    expect(globMatch('list-*', 'list-kunit-test')).toBe(true);
    expect(globMatch('list-*', 'list_sort')).toBe(false);
    expect(globMatch('[-_a]x', '-x')).toBe(true);
    expect(globMatch('[-_a]x', 'bx')).toBe(false);
    expect(globMatch('ma[pt]*', 'math-gcd')).toBe(true);
    expect(globMatch('kunit?', 'kunit')).toBe(false);
    expect(globMatch('hash', 'hashtable')).toBe(false);
  });

  it('cover exactly the wanted suites of the default config, for random sets', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 200; round++) {
      const wanted = new Set(NAMES.filter(() => rand() < 0.3 + (round % 3) * 0.3));
      const globs = globsFor(NAMES, wanted);
      const matched = NAMES.filter((n) => globs.some((g) => globMatch(g, n)));
      expect(new Set(matched)).toEqual(wanted);
      expect(globs.length).toBeLessThanOrEqual(wanted.size);
    }
    expect(globsFor(NAMES, new Set(NAMES))).toEqual(['*']);
    // `hash` is a prefix of `hashtable`: wanting one must not select the other.
    expect(globsFor(NAMES, new Set(['hash']))).toEqual(['hash']);
  });
});

describe('shard plan', () => {
  const modeOf = (s: string): TimeMode => (s === 'printk-ringbuffer' ? 'real' : 'time-travel');

  it('runs every listed suite exactly once, each boot in one time mode, the longest suite alone', () => {
    for (const shards of [1, 2, 3, 8]) {
      const plan = planShards({ suites: DEFAULT_SUITES, shards, history: new Map([['printk-ringbuffer', 10_000]]), modeOf });
      const boots = plan.shards.flat();
      const ran = boots.flatMap((b) => b.suites);
      expect(ran.sort()).toEqual([...NAMES].sort());
      for (const b of boots) {
        expect(NAMES.filter((n) => globMatch(b.glob, n)).sort()).toEqual([...b.suites].sort());
        expect(new Set(b.suites.map(modeOf))).toEqual(new Set([b.mode]));
      }
      expect(plan.shards.length).toBeLessThanOrEqual(shards);
      if (shards > 1) expect(boots.find((b) => b.suites.includes('printk-ringbuffer'))!.suites).toEqual(['printk-ringbuffer']);
    }
  });

  it('shards a first run too (no history: a guess per test), and balances by measured time', () => {
    const first = planShards({ suites: DEFAULT_SUITES, shards: 2, history: new Map(), modeOf });
    expect(first.shards).toHaveLength(2);
    const history = new Map(DEFAULT_SUITES.map((s, i) => [s.name, 100 + (i % 7) * 50]));
    const plan = planShards({ suites: DEFAULT_SUITES, shards: 2, history, modeOf, bootMs: 500 });
    const loads = plan.shards.map((s) => s.reduce((t, b) => t + b.expectMs, 0));
    const total = loads.reduce((a, b) => a + b, 0);
    expect(Math.max(...loads)).toBeLessThan(total * 0.6);
  });
});

describe('listing', () => {
  // A real listing boot (kunit.action=list) of the default config on 7.2.12: each suite's name,
  // then `suite.test` per test. `util_macros.h` has a dot in its name.
  const raw = readFileSync(path.join(REPO_DIR, 'shared/fixtures/ktap/default.listing.txt'), 'utf8').split('\n');
  const ktap = raw.slice(raw.indexOf('KTAP version 1'));

  it('reads every suite of a real listing, those with dots in their names included', () => {
    const suites = parseListing(ktap);
    expect(suites.length).toBe(78);
    expect(suites.reduce((n, s) => n + s.tests.length, 0)).toBe(634);
    expect(suites.find((s) => s.name === 'util_macros.h')).toEqual({ name: 'util_macros.h', tests: ['test_find_closest', 'test_find_closest_descending'] });
    expect(suites.find((s) => s.name === 'lib_ratelimit')?.tests).toEqual(['test_ratelimit_smoke', 'test_ratelimit_stress']);
    expect(suites.some((s) => s.name === 'util_macros')).toBe(false);
    // Boot noise around the listing is no suite.
    expect(parseListing(raw).map((s) => s.name)).toEqual(suites.map((s) => s.name));
  });

  it('covers a suite whose name has a dot with a glob the kernel does not split there', () => {
    const names = parseListing(ktap).map((s) => s.name);
    for (const wanted of [['util_macros.h'], ['util_macros.h', 'uuid'], ['usercopy', 'util_macros.h']]) {
      const globs = globsFor(names, new Set(wanted));
      expect(globs.every((g) => !g.includes('.')), globs.join(' ')).toBe(true);
      expect(names.filter((n) => globs.some((g) => globMatch(g, n))).sort()).toEqual([...wanted].sort());
    }
  });
});

describe('suite splitter', () => {
  function split(lines: string[]): { blocks: SuiteBlock[]; rest: SuiteBlock | null } {
    const s = new SuiteSplitter();
    const blocks: SuiteBlock[] = [];
    for (const l of lines) {
      const b = s.push(l);
      if (b) blocks.push(b);
    }
    return { blocks, rest: s.end() };
  }

  it('cuts a boot into whole suites that, renumbered in any order, parse to the same suites', () => {
    for (const f of ['pass.console.txt', 'skip.console.txt', 'default.console.txt']) {
      const { lines } = ktapOf(f);
      const serial = parseKtap(lines);
      const { blocks, rest } = split(lines);
      expect(rest).toBeNull();
      expect(blocks.map((b) => b.name)).toEqual(serial.tests.map((t) => t.name));
      // Out of order, as shards finish: valid KTAP with the same suites.
      const shuffled = [...blocks].reverse();
      const merged = ['KTAP version 1', `1..${blocks.length}`, ...shuffled.flatMap((b, i) => numbered(b, i + 1))];
      const again = parseKtap(merged);
      expect(again.errors).toEqual([]);
      expect(again.complete).toBe(true);
      const byName = new Map(again.tests.map((t) => [t.name, t]));
      expect(serial.tests.map((t) => byName.get(t.name))).toEqual(serial.tests);
    }
  });

  it('keeps the suite a kernel died in, and says so with a result line', () => {
    const { lines, crash } = ktapOf('crash.console.txt');
    const { blocks, rest } = split(lines);
    expect(blocks).toEqual([]);
    expect(rest!.name).toBe('list-kunit-test');
    expect(rest!.complete).toBe(false);
    const out = numbered(rest!, 3, crash!);
    expect(out.at(-1)).toBe('not ok 3 list-kunit-test');
    expect(out.at(-2)).toContain('did not finish');
  });
});

describe('kunit.py --json', () => {
  const files = ['pass', 'skip', 'fail', 'crash', 'crash-param', 'hang', 'default', 'no-tests'].map((f) => `${f}.console.txt`);
  // The worker ends a killed kernel's stream with the crash reason "timeout" (boot.ts).
  const ours = (f: string) => {
    const { lines, crash } = ktapOf(f);
    const r = parseKtap(lines, crash ?? (f.startsWith('hang') ? 'timeout' : undefined));
    return kunitJson(r.tests, r.planned, { buildEnvironment: '' });
  };

  it.skipIf(!existsSync(path.join(TREE, 'tools/testing/kunit/kunit_json.py')))('is the document kunit.py writes for the same console log', () => {
    const ref = JSON.parse(
      execFileSync('python3', [path.join(FIXTURES, 'kunit-tool-json.py'), TREE, ...files.map((f) => path.join(FIXTURES, f))], { encoding: 'utf8' }),
    ) as Record<string, unknown>;
    for (const f of files) expect(ours(f), f).toEqual(ref[path.join(FIXTURES, f)]);
  });

  it('counts as kunit.py counts (the numbers in the fixtures README)', () => {
    expect(ours('default.console.txt').misc).toEqual({ tests: 830, passed: 805, failed: 0, crashed: 0, skipped: 25, errors: 0 });
    expect(ours('crash.console.txt').misc).toEqual({ tests: 41, passed: 9, failed: 0, crashed: 32, skipped: 0, errors: 33 });
    expect(ours('crash-param.console.txt').misc).toEqual({ tests: 12, passed: 6, failed: 0, crashed: 3, skipped: 3, errors: 5 });
  });
});

describe('JUnit XML', () => {
  it('reads back (junit2json) with a case per KUnit test, failures, skips and crashes where the tree has them', async () => {
    for (const f of ['fail.console.txt', 'skip.console.txt', 'crash.console.txt']) {
      const { lines, crash } = ktapOf(f);
      const r = parseKtap(lines, crash ?? undefined);
      const doc = (await parseJunit(junitXml(r.tests, 'job'))) as {
        tests: number;
        failures: number;
        errors: number;
        skipped?: number;
        testsuite: { name: string; testcase: { name: string; failure?: unknown[]; error?: unknown[]; skipped?: unknown[] }[] }[];
      };
      const leaves = (n: (typeof r.tests)[number], p = ''): { name: string; status: string }[] =>
        n.children.flatMap((c) => (c.children.length > 0 ? leaves(c, `${p}${c.name}.`) : [{ name: `${p}${c.name}`, status: c.status }]));
      for (const suite of r.tests) {
        const ts = doc.testsuite.find((s) => s.name === suite.name)!;
        for (const leaf of leaves(suite)) {
          const tc = ts.testcase.find((c) => c.name === leaf.name)!;
          expect(tc, `${f} ${suite.name}.${leaf.name}`).toBeDefined();
          const got = tc.failure ? 'fail' : tc.error ? 'crash' : tc.skipped ? 'skip' : 'pass';
          expect(got, `${f} ${leaf.name}`).toBe(leaf.status);
        }
      }
      if (f === 'fail.console.txt') expect(doc.failures).toBe(2);
      if (f === 'skip.console.txt') expect(doc.testsuite.flatMap((s) => s.testcase).filter((c) => c.skipped).length).toBe(4);
      if (f === 'crash.console.txt') expect(doc.errors).toBeGreaterThan(0);
    }
  });
});
