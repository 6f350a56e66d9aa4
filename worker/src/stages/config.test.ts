import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKconfig } from '@nommu-ci/shared';
import { affectsConfig, DEFAULT_KUNITCONFIG, mergeFragment, missingOptions, requiredOptions, TIME_TRAVEL_OPTION, UML_KCONFIG } from './config.js';

function fakeTree(): string {
  const t = mkdtempSync(path.join(os.tmpdir(), 'nci-tree-'));
  mkdirSync(path.join(t, path.dirname(DEFAULT_KUNITCONFIG)), { recursive: true });
  writeFileSync(path.join(t, DEFAULT_KUNITCONFIG), 'CONFIG_KUNIT=y\nCONFIG_KUNIT_EXAMPLE_TEST=y\nCONFIG_KUNIT_ALL_TESTS=y\n');
  writeFileSync(path.join(t, UML_KCONFIG), '# UML\nCONFIG_KUNIT_UML_PCI=y\n\nCONFIG_FORTIFY_SOURCE=y\n');
  return t;
}

describe('mergeFragment: time-travel support asked for, not required', () => {
  it('adds CONFIG_UML_TIME_TRAVEL_SUPPORT=y before the kunitconfig, as a wish validation does not insist on', () => {
    const f = mergeFragment(fakeTree(), { mmu: true, timeTravel: true });
    expect(f.options.get(TIME_TRAVEL_OPTION)).toBe('y');
    expect([...f.options.keys()].indexOf(TIME_TRAVEL_OPTION)).toBeLessThan([...f.options.keys()].indexOf('CONFIG_KUNIT'));
    // olddefconfig dropped it (SMP or RAID6_PQ_BENCHMARK): nothing is missing.
    const { options: after } = parseKconfig(f.text.replace('CONFIG_UML_TIME_TRAVEL_SUPPORT=y\n', ''));
    expect(missingOptions(requiredOptions(f), after)).toEqual([]);
    expect(f.hash).not.toBe(mergeFragment(fakeTree(), { mmu: true }).hash);
  });
  it('wishes for a uniprocessor kernel with it (IRQ_KUNIT_TEST implies SMP), unless the kunitconfig sets CONFIG_SMP', () => {
    const f = mergeFragment(fakeTree(), { mmu: true, timeTravel: true });
    expect(f.options.get('CONFIG_SMP')).toBe('n');
    expect(f.wishes?.has('CONFIG_SMP')).toBe(true);
    expect(mergeFragment(fakeTree(), { mmu: true }).options.has('CONFIG_SMP')).toBe(false);
    const smp = mergeFragment(fakeTree(), { mmu: true, timeTravel: true, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_SMP=y\n' });
    expect(smp.options.get('CONFIG_SMP')).toBe('y');
    expect(smp.wishes?.has('CONFIG_SMP')).toBe(false);
  });
  it('leaves it to a kunitconfig that sets it, and then requires it', () => {
    const f = mergeFragment(fakeTree(), { mmu: true, timeTravel: true, kunitconfig: 'CONFIG_KUNIT=y\n# CONFIG_UML_TIME_TRAVEL_SUPPORT is not set\n' });
    expect(f.options.get(TIME_TRAVEL_OPTION)).toBe('n');
    expect(f.wishes?.has(TIME_TRAVEL_OPTION)).toBe(false);
    const g = mergeFragment(fakeTree(), { mmu: true, timeTravel: true, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_UML_TIME_TRAVEL_SUPPORT=y\n' });
    const { options: dropped } = parseKconfig(g.text.replace('CONFIG_UML_TIME_TRAVEL_SUPPORT=y\n', ''));
    expect(missingOptions(requiredOptions(g), dropped)).toEqual(['CONFIG_UML_TIME_TRAVEL_SUPPORT=y (now: not set)']);
  });
});

describe('mergeFragment (kunit.py order: arch_uml.config, then kunitconfig + kconfig_add)', () => {
  it('uses the tree default kunitconfig when none is given', () => {
    const f = mergeFragment(fakeTree(), { mmu: true });
    expect(f.text).toBe('CONFIG_KUNIT_UML_PCI=y\nCONFIG_FORTIFY_SOURCE=y\nCONFIG_KUNIT=y\nCONFIG_KUNIT_EXAMPLE_TEST=y\nCONFIG_KUNIT_ALL_TESTS=y\n');
    expect(f.hash).toMatch(/^[0-9a-f]{64}$/);
  });
  it('lets the kunitconfig override the arch file and kconfig_add override the kunitconfig', () => {
    const f = mergeFragment(fakeTree(), {
      kunitconfig: 'CONFIG_KUNIT=y\n# CONFIG_FORTIFY_SOURCE is not set\nCONFIG_LIST_KUNIT_TEST=y\n',
      kconfig_add: ['CONFIG_LIST_KUNIT_TEST=n', 'CONFIG_FRAME_WARN=2048'],
      mmu: true,
    });
    expect([...f.options]).toEqual([
      ['CONFIG_KUNIT_UML_PCI', 'y'],
      ['CONFIG_FORTIFY_SOURCE', 'n'],
      ['CONFIG_KUNIT', 'y'],
      ['CONFIG_LIST_KUNIT_TEST', 'n'],
      ['CONFIG_FRAME_WARN', '2048'],
    ]);
    expect(f.text).toContain('# CONFIG_FORTIFY_SOURCE is not set\n');
  });
  it('adds CONFIG_MMU=n for no-MMU jobs, last', () => {
    const f = mergeFragment(fakeTree(), { kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_MMU=y\n', mmu: false });
    expect(f.options.get('CONFIG_MMU')).toBe('n');
    expect(f.text.trimEnd().split('\n').pop()).toBe('# CONFIG_MMU is not set');
    expect(f.hash).not.toBe(mergeFragment(fakeTree(), { kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_MMU=y\n', mmu: true }).hash);
  });
  it('fails at stage config on a malformed line, naming it', () => {
    expect(() => mergeFragment(fakeTree(), { kunitconfig: 'CONFIG_KUNIT=y\nrm -rf /\n', mmu: true })).toThrow(/kunitconfig line 2/);
  });
});

describe('missingOptions (kunit.py validate_config)', () => {
  const cfg = parseKconfig('CONFIG_KUNIT=y\n# CONFIG_KASAN is not set\nCONFIG_FRAME_WARN=1024\n').options;
  it('passes a subset, "=n" absent or "is not set"', () => {
    expect(missingOptions(parseKconfig('CONFIG_KUNIT=y\nCONFIG_KASAN=n\nCONFIG_FOO=n\n').options, cfg)).toEqual([]);
  });
  it('names every option that did not stick, with what it became', () => {
    expect(missingOptions(parseKconfig('CONFIG_KUNIT=y\nCONFIG_KASAN=y\nCONFIG_FRAME_WARN=2048\nCONFIG_NOPE=y\n').options, cfg)).toEqual([
      'CONFIG_KASAN=y (now: CONFIG_KASAN=n)',
      'CONFIG_FRAME_WARN=2048 (now: CONFIG_FRAME_WARN=1024)',
      'CONFIG_NOPE=y (now: not set)',
    ]);
  });
});

describe('affectsConfig', () => {
  it('is false only for C/asm sources and headers outside scripts/', () => {
    expect(affectsConfig(['lib/tests/list-test.c', 'include/linux/list.h', 'arch/um/kernel/entry.S'])).toBe(false);
    expect(affectsConfig(['lib/Kconfig.debug'])).toBe(true);
    expect(affectsConfig(['lib/tests/Makefile'])).toBe(true);
    expect(affectsConfig(['scripts/kconfig/conf.c'])).toBe(true);
    expect(affectsConfig(['lib/x.c', 'init/Kconfig'])).toBe(true);
  });
});
