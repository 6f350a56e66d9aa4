/**
 * The boot-time selftest catalogue (kernel-images/boot-selftests/catalog.json): which Kconfig
 * lines build each test in, which initcall runs it and how its output reads.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KERNEL_IMAGES_DIR } from '../paths.js';

export interface BootSelftest {
  name: string;
  /** The test's source file in the tree, e.g. lib/test_maple_tree.c. */
  source: string;
  kconfig: string[];
  /** The function initcall_debug names when the test starts and returns. */
  initcall: string;
  /** Summary line patterns, with named groups among passed, failed, total. */
  summary: string[];
  /** Lines that report one failure; they become diagnostics of the test. */
  failure: string[];
  /** Whether a non-zero initcall return means failure (not so for every test, see the catalogue). */
  return_code: boolean;
}

export const CATALOG_FILE = path.join(KERNEL_IMAGES_DIR, 'boot-selftests/catalog.json');

export function loadBootSelftests(file = CATALOG_FILE): BootSelftest[] {
  const data = JSON.parse(readFileSync(file, 'utf8')) as { selftests: BootSelftest[] };
  for (const t of data.selftests) {
    for (const re of [...t.summary, ...t.failure]) new RegExp(re); // a bad pattern fails at load, not mid-job
    if (!/^[a-z0-9_]+$/.test(t.name) || !/^[A-Za-z0-9_]+$/.test(t.initcall)) throw new Error(`${file}: bad entry ${t.name}`);
  }
  return data.selftests;
}

export interface BootSelftestAvailability {
  /** The tree has the test's source and Kconfig symbol. */
  offered: boolean;
  /** No `depends on MMU` in the symbol's Kconfig entry. */
  nommu: boolean;
  symbol: string;
}

/** Reads the tree's lib/Kconfig.debug to tell whether a selftest exists there and needs an MMU. */
export function availability(t: BootSelftest, tree: string): BootSelftestAvailability {
  const symbol = t.kconfig[0]!.replace(/^CONFIG_/, '').replace(/=.*$/, '');
  const kconfig = path.join(tree, 'lib/Kconfig.debug');
  if (!existsSync(path.join(tree, t.source)) || !existsSync(kconfig)) return { offered: false, nommu: false, symbol };
  const text = readFileSync(kconfig, 'utf8');
  const start = text.search(new RegExp(`^config ${symbol}$`, 'm'));
  if (start < 0) return { offered: false, nommu: false, symbol };
  const rest = text.slice(start + 1);
  const entry = rest.slice(0, rest.search(/^(config|menuconfig|endmenu|menu|if|endif|source) /m) + 1 || undefined);
  return { offered: true, nommu: !/^\s*depends on .*\bMMU\b/m.test(entry), symbol };
}
