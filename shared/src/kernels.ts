/**
 * The kernel catalog: named source trees an operator allows. Jobs name one; they never send a
 * path. The built-in entries are Debian's linux-source-7.2 (the default) and linux-source-7.3 as
 * infra/setup.sh unpacks them; an operator adds local trees with
 * NOMMU_CI_KERNELS=/path/to/catalog.json: [{"name": "...", "path": "...", "series": "nommu"}].
 * Each entry names the no-MMU series its mmu:false jobs apply: a directory of kernel-images
 * (`nommu`, written for 7.2, unless the entry says otherwise; `nommu-7.3` is its port to 7.3,
 * made by kernel-images/bin/rebase-series).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KERNEL_IMAGES_DIR, SOURCES_DIR } from './paths.js';

export const DEFAULT_KERNEL = 'debian-7.2';
/** The series of entries that do not name one. */
export const DEFAULT_SERIES = 'nommu';

interface CatalogEntry {
  name: string;
  path: string;
  series: string;
}

/** The built-in entries: Debian source packages infra/setup.sh unpacks, and the series each uses. */
const BUILTIN: readonly CatalogEntry[] = [
  { name: DEFAULT_KERNEL, path: path.join(SOURCES_DIR, 'linux-source-7.2'), series: DEFAULT_SERIES },
  { name: 'debian-7.3', path: path.join(SOURCES_DIR, 'linux-source-7.3'), series: 'nommu-7.3' },
];

export interface KernelSource {
  name: string;
  /** Pristine tree; read-only to the service. */
  path: string;
  /** Package version or `make kernelversion` of the tree. */
  version: string;
  /** Whether the tree is present on this host (a worker host may lack an entry the API lists). */
  available: boolean;
  /** Directory of the no-MMU series mmu:false jobs on this kernel apply (see loadSeries). */
  seriesDir: string;
}

export interface SeriesInfo {
  name: string;
  dir: string;
  /** Patch file names in order, from the `series` file. */
  patches: string[];
  /** sha256 over the patches' contents, short: identifies the series version in results. */
  hash: string;
}

function treeVersion(dir: string): string {
  const pkg = dir + '.version';
  if (existsSync(pkg)) return readFileSync(pkg, 'utf8').trim();
  const mk = path.join(dir, 'Makefile');
  if (!existsSync(mk)) return 'unknown';
  const head = readFileSync(mk, 'utf8').slice(0, 400);
  const v = (k: string): string => new RegExp(`^${k} = (.*)$`, 'm').exec(head)?.[1]?.trim() ?? '';
  return `${v('VERSION')}.${v('PATCHLEVEL')}.${v('SUBLEVEL')}${v('EXTRAVERSION')}`;
}

export function loadCatalog(env = process.env): KernelSource[] {
  const entries: CatalogEntry[] = [...BUILTIN];
  if (env.NOMMU_CI_KERNELS) {
    const extra = JSON.parse(readFileSync(env.NOMMU_CI_KERNELS, 'utf8')) as { name: string; path: string; series?: string }[];
    for (const e of extra) {
      const series = e.series ?? DEFAULT_SERIES;
      if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(e.name) || !path.isAbsolute(e.path) || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(series)) {
        throw new Error(`kernel catalog ${env.NOMMU_CI_KERNELS}: bad entry ${JSON.stringify(e)}`);
      }
      entries.push({ name: e.name, path: e.path, series });
    }
  }
  return entries.map((e) => {
    const available = existsSync(path.join(e.path, 'Makefile'));
    return { name: e.name, path: e.path, available, version: available ? treeVersion(e.path) : 'unknown', seriesDir: path.join(KERNEL_IMAGES_DIR, e.series) };
  });
}

/** Our no-MMU patch series as shipped in kernel-images/nommu, or null before it exists. */
export function loadSeries(dir = path.join(KERNEL_IMAGES_DIR, DEFAULT_SERIES)): SeriesInfo | null {
  const seriesFile = path.join(dir, 'series');
  if (!existsSync(seriesFile)) return null;
  const patches = readFileSync(seriesFile, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const h = createHash('sha256');
  for (const p of patches) h.update(readFileSync(path.join(dir, p)));
  return { name: path.basename(dir), dir, patches, hash: h.digest('hex').slice(0, 12) };
}

/** `mmu` when a job does not say: the no-MMU kernel once our series exists, since that is what the service is for. */
export function defaultMmu(series: SeriesInfo | null): boolean {
  return series === null;
}
