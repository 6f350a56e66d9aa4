/** Everything the service keeps on disk lives outside the repository, under one cache root. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CACHE_DIR = process.env.NOMMU_CI_CACHE ?? '/var/cache/nommu-ci';
/** Unpacked pristine kernel sources, one directory per catalog entry; never modified. */
export const SOURCES_DIR = path.join(CACHE_DIR, 'src');
/** The repository root, found from this file so it works from any working directory. */
export const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const KERNEL_IMAGES_DIR = path.join(REPO_DIR, 'kernel-images');
