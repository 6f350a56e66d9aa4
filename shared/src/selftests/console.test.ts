import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KtapStream, parseKtap } from '../ktap/index.js';
import { loadBootSelftests, availability } from './catalog.js';
import { BootSelftestConsole } from './console.js';
import { REPO_DIR, SOURCES_DIR } from '../paths.js';

const fixture = (name: string) => readFileSync(path.join(REPO_DIR, 'shared/fixtures/boot-selftests', name), 'utf8').split('\n');
const catalog = loadBootSelftests();
const pick = (...names: string[]) => names.map((n) => catalog.find((t) => t.name === n)!);

function convert(lines: string[], names: string[]): string[] {
  const c = new BootSelftestConsole(pick(...names));
  const out = c.start();
  for (const l of lines) out.push(...c.push(l));
  out.push(...c.end());
  return out;
}

describe('boot-selftest console to KTAP', () => {
  it('reads every selftest of a real boot, with the counts of its summary line', () => {
    const names = ['hexdump', 'ida', 'bitmap', 'xarray', 'maple_tree', 'meminit'];
    const ktap = convert(fixture('all-mmu.console.txt'), names);
    const r = parseKtap(ktap);
    expect(r.errors).toEqual([]);
    expect(r.complete).toBe(true);
    const byName = Object.fromEntries(r.tests.map((t) => [t.name, { status: t.status, diagnostics: t.children[0]!.diagnostics }]));
    expect(Object.keys(byName)).toEqual(names); // initcall order of that kernel
    // The kernel's own summary lines: "maple_tree: 3809321 of 3809321 tests passed", ...
    expect(byName.maple_tree!.diagnostics).toContain('# maple_tree: passed 3809321, failed 0, total 3809321');
    expect(byName.xarray!.diagnostics).toContain('# xarray: passed 6782383, failed 0, total 6782383');
    expect(byName.hexdump!.diagnostics).toContain('# hexdump: passed 1184, failed 0, total 1184');
    expect(byName.bitmap!.diagnostics).toContain('# bitmap: passed 391535, failed 0, total 391535');
    for (const n of ['hexdump', 'ida', 'bitmap', 'xarray', 'maple_tree']) expect(byName[n]!.status).toBe('pass');
    // ida_checks() returns -22 on success; the catalogue says its return value is no verdict.
    expect(byName.ida!.diagnostics).toContain('# ida_checks() returned -22 (not a verdict for this test)');
    // meminit runs with init_on_alloc/init_on_free, which its catalogue entry turns on.
    expect(byName.meminit!.status).toBe('pass');
    expect(byName.meminit!.diagnostics).toContain('# meminit: passed 131, failed 0, total 131');
    expect(r.summary).toEqual({ passed: 6, failed: 0, skipped: 0, crashed: 0 });
  });

  it('fails the maple tree on one wrong expectation, with its failure lines and counts (maple-tree-fail.diff)', () => {
    const r = parseKtap(convert(fixture('maple-tree-fail-mmu.console.txt'), ['maple_tree', 'xarray']));
    const mt = r.tests.find((t) => t.name === 'maple_tree')!;
    expect(mt.status).toBe('fail');
    expect(mt.children[0]!.diagnostics).toEqual([
      '# BUG at check_root_expand:1523 (1)',
      '# Pass: 9 Run:10',
      '# maple_tree: 3809320 of 3809321 tests passed',
      '# maple_tree: passed 3809320, failed 1, total 3809321',
      '# maple_tree_seed() returned -22',
    ]);
    expect(r.tests.find((t) => t.name === 'xarray')!.status).toBe('pass');
    expect(r.summary).toEqual({ passed: 1, failed: 1, skipped: 0, crashed: 0 });
  });

  it('marks the test running at an oops as crashed; the ones after it are missing', () => {
    const names = ['ida', 'xarray', 'maple_tree'];
    const lines = fixture('xarray-oops-mmu.console.txt');
    const ktap = convert(lines, names);
    const s = new KtapStream();
    for (const l of ktap) s.push(l);
    const r = s.end('Kernel panic - not syncing: Segfault with no mm');
    const byName = Object.fromEntries(r.tests.map((t) => [t.name, t]));
    expect(byName.ida!.status).toBe('pass');
    expect(byName.xarray!.status).toBe('crash');
    expect(byName.maple_tree).toBeUndefined();
    expect(r.complete).toBe(false);
    // xarray's one case and the missing maple_tree count as crashed, as kunit_tool counts them.
    expect(r.summary).toEqual({ passed: 1, failed: 0, skipped: 0, crashed: 2 });
  });

  it('reports a selftest whose initcall never ran', () => {
    const r = parseKtap(convert(fixture('all-mmu.console.txt').filter((l) => !l.includes('maple_tree_seed')), ['xarray', 'maple_tree']));
    expect(r.tests.map((t) => [t.name, t.status])).toEqual([['xarray', 'pass'], ['maple_tree', 'fail']]);
    expect(r.tests[1]!.diagnostics.join('\n')).toContain('never ran');
  });

  it('fails a test whose summary line is missing', () => {
    const [t] = pick('xarray');
    const c = new BootSelftestConsole([t!]);
    const out = [...c.start(), ...c.push('calling  xarray_checks+0x0/0x190 @ 1'), ...c.push('initcall xarray_checks+0x0/0x190 returned 0 after 5 usecs')];
    const r = parseKtap(out);
    expect(r.tests[0]!.status).toBe('fail');
    expect(r.tests[0]!.children[0]!.diagnostics).toContain('# xarray: no summary line');
  });

  it('tells from the tree which selftests exist and need an MMU', () => {
    const tree = path.join(SOURCES_DIR, 'linux-source-7.2');
    for (const t of catalog) expect(availability(t, tree)).toMatchObject({ offered: true, nommu: true });
    expect(availability({ ...catalog[0]!, kconfig: ['CONFIG_TEST_NOT_THERE=y'] }, tree).offered).toBe(false);
  });
});
