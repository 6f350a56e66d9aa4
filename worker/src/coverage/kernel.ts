/**
 * What makes a kernel a coverage kernel: UML's own gcov (`CONFIG_GCOV`, arch/um/Kconfig.debug),
 * with kunit.py's fragment for it, plus two things Debian's gcc 12 needs:
 *
 *  - the coverage series (kernel-images/coverage), stacked on the tree the job would build
 *    otherwise: UML's linker scripts drop the `.fini_array.00100` sections gcc puts gcov's
 *    destructors in, so without it the kernel never writes a .gcda file;
 *  - `KCFLAGS=-Dmangle_path=seq_file_mangle_path`: libgcov (linked into the UML binary) has a
 *    global `mangle_path` of its own, which clashes with fs/seq_file.c's at link time. Renaming
 *    the kernel's symbol on every compiler command line renames its definition, declaration
 *    (include/linux/seq_file.h) and every caller alike, and touches no source file, so it
 *    also holds for any patch a job brings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { formatKconfig, KERNEL_IMAGES_DIR, loadSeries, parseKconfig, type SeriesInfo } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import type { Fragment } from '../stages/config.js';

export const COVERAGE_SERIES_DIR = path.join(KERNEL_IMAGES_DIR, 'coverage');

/** kunit.py's coverage fragment, in the tree (tools/testing/kunit/configs/). */
export const COVERAGE_KCONFIG = 'tools/testing/kunit/configs/coverage_uml.config';

/** Make variables of every build of a coverage kernel, base and patched alike (kbuild compares command lines). */
export const COVERAGE_MAKE_VARS: readonly string[] = ['KCFLAGS=-Dmangle_path=seq_file_mangle_path'];

export function coverageSeries(dir = COVERAGE_SERIES_DIR): SeriesInfo {
  const s = loadSeries(dir);
  if (!s) throw new Error(`coverage series missing: ${dir}/series`);
  return s;
}

/**
 * The job's fragment with the tree's coverage fragment on top (its entries win, as a second
 * kunitconfig does in kunit.py), so the base build of a coverage job is its own.
 */
export function coverageFragment(f: Fragment, tree: string): Fragment {
  const file = path.join(tree, COVERAGE_KCONFIG);
  if (!existsSync(file)) throw new StageError('config', `coverage: this tree has no ${COVERAGE_KCONFIG}`);
  const { options: cov, errors } = parseKconfig(readFileSync(file, 'utf8'));
  if (errors.length > 0) throw new StageError('config', `${COVERAGE_KCONFIG} line ${errors[0]!.line}: ${errors[0]!.message}`);
  const options = new Map(f.options);
  for (const [k, v] of cov) options.set(k, v);
  const wishes = f.wishes ? new Set([...f.wishes].filter((k) => !cov.has(k))) : undefined;
  const text = formatKconfig(options);
  return { options, wishes, text, hash: createHash('sha256').update(text).digest('hex') };
}
