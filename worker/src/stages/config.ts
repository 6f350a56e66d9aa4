/**
 * Stage `config`: the job's Kconfig, merged as kunit.py merges it for ARCH=um
 * (tools/testing/kunit/kunit_kernel.py):
 *
 *   kunitconfig  = the job's kunitconfig, or the tree's tools/testing/kunit/configs/default.config
 *   kunitconfig += kconfig_add                       (LinuxSourceTree.__init__: merge_in_entries)
 *   config       = arch_uml.config + kunitconfig     (make_arch_config: the arch file first, the
 *                                                     kunitconfig's entries win)
 * and for no-MMU jobs CONFIG_MMU=n on top. Written as .config, then `make ARCH=um O=... olddefconfig`
 * in the sandbox, then validated as kunit.py's validate_config does (is_subset_of): every entry
 * must be in the result with the same value, except that `=n` may also be absent.
 */
import { createHash } from 'node:crypto';
import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatKconfig, parseKconfig, type KconfigValue } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import { SANDBOX_GID, SANDBOX_UID, describeExit } from '../sandbox.js';
import { kmake, type KmakeOptions } from './build.js';

export const DEFAULT_KUNITCONFIG = 'tools/testing/kunit/configs/default.config';
export const UML_KCONFIG = 'tools/testing/kunit/configs/arch_uml.config';

export interface ConfigRequest {
  kunitconfig?: string;
  kconfig_add?: string[];
  mmu: boolean;
  /**
   * Ask for CONFIG_UML_TIME_TRAVEL_SUPPORT (KUnit jobs: sleeping suites can then run in
   * time-travel mode). A wish, not a requirement: it needs !SMP and !RAID6_PQ_BENCHMARK, and a
   * config without it runs every suite in real time. CONFIG_SMP=n is wished for with it unless
   * the kunitconfig sets CONFIG_SMP: the default config gets SMP only from IRQ_KUNIT_TEST's
   * `imply SMP`, which would otherwise cost every default-config job its time travel.
   */
  timeTravel?: boolean;
}

export const TIME_TRAVEL_OPTION = 'CONFIG_UML_TIME_TRAVEL_SUPPORT';

export interface Fragment {
  options: Map<string, KconfigValue>;
  /** Options asked for but not required: validation does not fail when olddefconfig drops them. */
  wishes?: Set<string>;
  /** What is written as .config before olddefconfig. */
  text: string;
  /** sha256 of `text`: with the tree and series, the key of a base build directory. */
  hash: string;
}

function parseOrFail(text: string, what: string): Map<string, KconfigValue> {
  const { options, errors } = parseKconfig(text);
  if (errors.length > 0) {
    const e = errors[0]!;
    throw new StageError('config', `${what} line ${e.line}: ${e.message}: ${JSON.stringify(e.text)}`);
  }
  return options;
}

/** The merged Kconfig fragment for a job on `tree` (kunit.py's order; see the module comment). */
export function mergeFragment(tree: string, req: ConfigRequest): Fragment {
  const kunitText = req.kunitconfig ?? readFileSync(path.join(tree, DEFAULT_KUNITCONFIG), 'utf8');
  const kunit = parseOrFail(kunitText, req.kunitconfig === undefined ? DEFAULT_KUNITCONFIG : 'kunitconfig');
  const add = parseOrFail((req.kconfig_add ?? []).join('\n'), 'kconfig_add');
  for (const [k, v] of add) kunit.set(k, v);
  const umlPath = path.join(tree, UML_KCONFIG);
  const options = existsSync(umlPath) ? parseOrFail(readFileSync(umlPath, 'utf8'), UML_KCONFIG) : new Map<string, KconfigValue>();
  const wishes = new Set<string>();
  if (req.timeTravel && !kunit.has(TIME_TRAVEL_OPTION)) {
    options.set(TIME_TRAVEL_OPTION, 'y');
    wishes.add(TIME_TRAVEL_OPTION);
    if (!kunit.has('CONFIG_SMP')) {
      options.set('CONFIG_SMP', 'n');
      wishes.add('CONFIG_SMP');
    }
  }
  for (const [k, v] of kunit) options.set(k, v);
  if (!req.mmu) options.set('CONFIG_MMU', 'n');
  const text = formatKconfig(options);
  return { options, wishes, text, hash: createHash('sha256').update(text).digest('hex') };
}

export interface DotConfig {
  text: string;
  options: Map<string, KconfigValue>;
  /** sha256 of the final .config. */
  hash: string;
  /** CONFIG_MMU=y in the final .config. */
  mmu: boolean;
}

export function readDotConfig(file: string): DotConfig {
  const text = readFileSync(file, 'utf8');
  const { options } = parseKconfig(text);
  return { text, options, hash: createHash('sha256').update(text).digest('hex'), mmu: options.get('CONFIG_MMU') === 'y' };
}

/** The requested entries that are not in `actual`, as "CONFIG_X=y (now: not set)". kunit.py's is_subset_of. */
export function missingOptions(requested: ReadonlyMap<string, KconfigValue>, actual: ReadonlyMap<string, KconfigValue>): string[] {
  const out: string[] = [];
  for (const [k, v] of requested) {
    const got = actual.get(k);
    if (got === undefined && v === 'n') continue;
    if (got === v) continue;
    out.push(`${k}=${v} (now: ${got === undefined ? 'not set' : `${k}=${got}`})`);
  }
  return out;
}

/** The fragment's options that must survive olddefconfig (all but its wishes). */
export function requiredOptions(f: Fragment): Map<string, KconfigValue> {
  return new Map([...f.options].filter(([k]) => !f.wishes?.has(k)));
}

export type ConfigureOptions = Omit<KmakeOptions, 'targets'> & { fragment: Fragment };

/** Writes the fragment as .config, runs olddefconfig in the sandbox and validates the result. */
export async function configure(o: ConfigureOptions): Promise<DotConfig> {
  const dot = path.join(o.buildDir, '.config');
  writeFileSync(dot, o.fragment.text);
  if (process.getuid?.() === 0) chownSync(dot, SANDBOX_UID, SANDBOX_GID);
  const r = await kmake({ ...o, targets: ['olddefconfig'] });
  if (r.result.code !== 0 || r.result.killed) {
    if (r.result.killed === 'abort') throw r.abort!;
    throw new StageError('config', `make olddefconfig failed (${describeExit(r.result)}):\n${r.tail}`);
  }
  const result = readDotConfig(dot);
  const missing = missingOptions(requiredOptions(o.fragment), result.options);
  if (missing.length > 0) {
    throw new StageError(
      'config',
      `${missing.length} requested Kconfig option(s) did not stick after olddefconfig (unmet dependencies, or not available on UML): ${missing.join(', ')}`,
      result.text,
    );
  }
  return result;
}

/**
 * Whether a patch touching `files` can change what olddefconfig produces. Kconfig reads Kconfig*
 * files and runs scripts/ (compiler checks); a patch that only touches C/assembly sources and
 * headers elsewhere leaves the base's validated .config as it is, and the job skips olddefconfig
 * (and the rebuild of everything that depends on .config's mtime).
 */
export function affectsConfig(files: readonly string[]): boolean {
  return files.some((f) => !/\.(c|h|S|rs)$/.test(f) || f.startsWith('scripts/') || /(^|\/)Kconfig/.test(f));
}
