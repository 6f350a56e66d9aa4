/**
 * The coverage kernel's tree and config on the real catalogue kernels: the coverage series goes
 * on top of both the pristine tree (MMU jobs) and the no-MMU series tree, on every kernel, into a
 * tree of its own; the fragment is the job's plus kunit.py's coverage_uml.config.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCatalog, loadSeries } from '@nommu-ci/shared';
import { mergeFragment } from '../stages/config.js';
import { seriesTree } from '../stages/source.js';
import { coverageFragment, coverageSeries } from './kernel.js';

const kernels = loadCatalog().filter((k) => k.available);

describe.skipIf(kernels.length === 0)('coverage kernel', () => {
  it(
    'the coverage series applies to each kernel with and without its no-MMU series, each result a tree of its own',
    async () => {
      const cov = coverageSeries();
      const made = new Set<string>();
      for (const k of kernels) {
        const nommu = await seriesTree(k, loadSeries(k.seriesDir)!);
        for (const [name, base] of [
          [`${k.name}-mmu`, k.path],
          [path.basename(nommu), nommu],
        ] as const) {
          const tree = await seriesTree({ name, path: base, version: k.version }, cov);
          made.add(tree);
          expect(tree).toMatch(new RegExp(`-coverage-${cov.hash}$`));
          for (const lds of ['arch/um/include/asm/common.lds.S', 'arch/um/kernel/dyn.lds.S']) {
            expect(readFileSync(path.join(tree, lds), 'utf8'), `${tree}/${lds}`).toContain('*(SORT_BY_INIT_PRIORITY(.fini_array.*))');
            // The tree it was made from is untouched (git apply wrote a new inode).
            expect(readFileSync(path.join(base, lds), 'utf8'), `${base}/${lds}`).not.toContain('SORT_BY_INIT_PRIORITY(.fini_array.*)');
          }
        }
      }
      expect(made.size).toBe(kernels.length * 2);
    },
    600_000,
  );

  it("adds kunit.py's coverage fragment to a job's, so its base build is a different one", () => {
    const k = kernels[0]!;
    const plain = mergeFragment(k.path, { kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n', mmu: false });
    const cov = coverageFragment(plain, k.path);
    expect(cov.hash).not.toBe(plain.hash);
    for (const o of ['CONFIG_GCOV', 'CONFIG_DEBUG_INFO', 'CONFIG_DEBUG_KERNEL', 'CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT']) expect(cov.options.get(o), o).toBe('y');
    expect(cov.options.get('CONFIG_MMU')).toBe('n');
    expect(cov.options.get('CONFIG_LIST_KUNIT_TEST')).toBe('y');
    expect(plain.options.has('CONFIG_GCOV')).toBe(false);
  });
});
