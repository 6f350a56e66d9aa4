/** Where the worker keeps its caches and per-job directories, all under the shared cache root. */
import path from 'node:path';
import { CACHE_DIR } from '@nommu-ci/shared';

/** Series-applied trees, one hardlink farm per (source, series hash). Trusted, read-only to jobs. */
export const TREES_DIR = path.join(CACHE_DIR, 'trees');
/** Base build directories per (source, series, config hash), built only from unpatched trees. */
export const BUILDS_DIR = path.join(CACHE_DIR, 'builds');
/** Per-job working directories (view, build, tmp, logs); removed when the job ends. */
export const JOBS_DIR = path.join(CACHE_DIR, 'jobs');
export const CCACHE_DIR = process.env.NOMMU_CI_CCACHE ?? path.join(CACHE_DIR, 'ccache');
/** Directories being deleted in the background. */
export const TRASH_DIR = path.join(CACHE_DIR, 'trash');
