/**
 * An lcov tracefile (`coverage.info`, what `lcov --capture` writes) as line hit counts per source
 * file. The records are read by @friedemannsommer/lcov-parser; this module only decides what a
 * tracefile must be for nommu-ci's use: paths relative to the kernel source root (so they compare
 * with a patch's paths), and whole (an artifact cut to the store's size limit would silently
 * turn executed lines into "not built").
 */
import { lcovParser } from '@friedemannsommer/lcov-parser/sync';
import type { ArtifactName } from '../job.js';
import type { CoverageTotals } from './model.js';

/** The artifact a coverage job stores its tracefile under. */
export const COVERAGE_ARTIFACT: ArtifactName = 'coverage.info';

/** Source path (relative to the kernel tree) to line number to execution count. */
export type Tracefile = Map<string, Map<number, number>>;

export class TracefileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TracefileError';
  }
}

const CUT_NOTE = /^\[\.\.\. \d+ bytes cut by nommu-ci \.\.\.\]$/m;

export function parseTracefile(text: string): Tracefile {
  if (CUT_NOTE.test(text)) throw new TracefileError('the tracefile was cut to the artifact size limit: its line counts are incomplete');
  if (!/^SF:/m.test(text)) throw new TracefileError('not an lcov tracefile: no SF: record');
  const out: Tracefile = new Map();
  for (const section of lcovParser({ from: text })) {
    const file = section.path.replace(/^\.\//, '');
    if (file === '') continue;
    if (file.startsWith('/')) throw new TracefileError(`SF:${file} is an absolute path; a tracefile names files relative to the kernel source root`);
    // lcov writes one record per file, but a tracefile may hold several (one per test name): add them.
    let lines = out.get(file);
    if (!lines) out.set(file, (lines = new Map()));
    for (const d of section.lines.details) lines.set(d.line, (lines.get(d.line) ?? 0) + d.hit);
  }
  return out;
}

export function tracefileTotals(t: Tracefile): CoverageTotals {
  let found = 0;
  let hit = 0;
  for (const lines of t.values()) {
    found += lines.size;
    for (const n of lines.values()) if (n > 0) hit++;
  }
  return { files: t.size, lines_found: found, lines_hit: hit };
}
