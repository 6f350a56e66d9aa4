/**
 * KCIDB I/O data (schema v5.3, kernelci/kcidb-io) for submitting a run to KernelCI's common
 * database: two checkouts (the base, and the base with the series: `patchset_hash` per the
 * schema), one build per cell (ARCH=um, config with or without CONFIG_MMU), and the KUnit tests
 * of each build (`kunit.<suite>.<case>`) plus a `boot` test. Origin `nommu_ci`; every id is
 * `nommu_ci:<...>` and stable for the same run, so a resubmission updates rather than duplicates.
 */
import { createHash } from 'node:crypto';
import { rangesText } from '../../coverage/ranges.js';
import { fileCoverageText } from '../../coverage/text.js';
import type { ChangedFileCoverage, KernelCoverage } from '../../coverage/model.js';
import type { CellData, RunRecord } from '../model.js';
import { flattenTests, type KernelVerdict } from '../verdict.js';
import { artifactUrl, jobUrl, runApiUrl, runUrl, seriesTitle, type ReportOptions } from './common.js';

export const KCIDB_ORIGIN = 'nommu_ci';
export const KCIDB_VERSION = { major: 5, minor: 3 } as const;

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export interface KcidbData {
  version: { major: number; minor: number };
  checkouts: Record<string, unknown>[];
  builds: Record<string, unknown>[];
  tests: Record<string, unknown>[];
}

const id = (s: string) => `${KCIDB_ORIGIN}:${s}`;
/** KCIDB test paths: dot-separated segments of [a-zA-Z0-9_-]. */
export const kcidbPathSegment = (s: string) => s.replace(/[^a-zA-Z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') || '_';
const EMAIL = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;
const clip = (s: string) => (s.length > 16000 ? s.slice(0, 16000) : s);
const iso = (s: string | null | undefined) => (s ? new Date(s).toISOString() : undefined);

export function patchsetHash(run: RunRecord): string {
  if (run.series.patches.length === 0) return '';
  return createHash('sha256').update(run.series.patches.map((p) => `${p.sha256}\n`).join('')).digest('hex');
}

function buildStatus(d: CellData | undefined): KcidbStatus | undefined {
  const r = d?.record;
  if (!r) return undefined;
  if (r.state === 'failed' && (r.stage === 'build' || r.stage === 'config')) return 'FAIL';
  if (r.state === 'passed' || (r.state === 'failed' && (r.stage === 'boot' || r.stage === 'test'))) return 'PASS';
  if (r.state === 'error') return 'ERROR';
  if (r.state === 'canceled') return 'MISS';
  return undefined; // still running
}

const TEST_STATUS: Record<string, KcidbStatus> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP', crash: 'ERROR' };

const percent = (n: number, of: number) => Math.round((1000 * n) / of) / 10;

/**
 * A series build's coverage as tests carrying a `number`: the whole kernel's line coverage, and
 * per file the share of its changed lines with code that ran (DONE: a measurement, not a verdict
 * on the code; a file not built or without changed code is SKIP). Lines no test ran are named in
 * the comment and in misc.
 */
function coverageTests(k: KernelCoverage, buildId: string, job: string, o: ReportOptions): Record<string, unknown>[] {
  const t = k.totals!;
  const base = { build_id: buildId, origin: KCIDB_ORIGIN, log_url: artifactUrl(o, job, 'coverage.info') };
  const out: Record<string, unknown>[] = [];
  if (t.lines_found > 0) {
    out.push({
      ...base,
      id: id(`${job}:coverage.lines`),
      path: 'coverage.lines',
      status: 'DONE',
      number: { value: percent(t.lines_hit, t.lines_found), unit: '%' },
      comment: `${t.lines_hit} of ${t.lines_found} instrumented lines executed in ${t.files} files`,
    });
  }
  for (const f of k.files) {
    const path = `coverage.changed_lines.${kcidbPathSegment(f.file)}`;
    const measured = f.built && f.instrumented_lines > 0;
    out.push({
      ...base,
      id: id(`${job}:${path}`),
      path,
      status: measured ? 'DONE' : 'SKIP',
      ...(measured ? { number: { value: percent(f.executed_lines, f.instrumented_lines), unit: '%' } } : {}),
      comment: `${f.file}: ${fileCoverageText(f)}${f.not_executed.length ? `; lines ${rangesText(f.not_executed)} not executed by any test` : ''}`,
      misc: changedMisc(f),
    });
  }
  return out;
}

const changedMisc = (f: ChangedFileCoverage) => ({
  file: f.file,
  built: f.built,
  changed_lines: f.changed_lines,
  instrumented_lines: f.instrumented_lines,
  executed_lines: f.executed_lines,
  not_executed: f.not_executed,
});

export function kcidbReport(run: RunRecord, cells: readonly CellData[], o: ReportOptions): KcidbData {
  const v = run.verdict;
  const applyFailed = v?.apply ?? null;
  const checkoutId = (series: boolean) => id(`run-${run.id}-${series ? 'series' : 'base'}`);
  const common = (series: boolean) => ({
    id: checkoutId(series),
    origin: KCIDB_ORIGIN,
    tree_name: run.kernel,
    start_time: iso(run.created_at),
    ...(cells[0]?.record?.kernel?.version ? { git_commit_name: cells[0].record.kernel.version } : {}),
  });
  const seriesCheckout: Record<string, unknown> = {
    ...common(true),
    patchset_hash: patchsetHash(run),
    patchset_files: run.series.patches.map((p) => ({ name: `${String(p.index).padStart(4, '0')}.patch`, url: `${runApiUrl(o, run.id)}/patches/${p.index}` })),
    comment: seriesTitle(run),
    valid: applyFailed === null,
    ...(applyFailed ? { log_excerpt: clip(applyFailed.message) } : {}),
    misc: { run_url: runUrl(o, run.id), patches: run.series.patches.length },
  };
  const mid = run.series.cover?.messageId ?? run.series.patches[0]?.messageId;
  if (mid && EMAIL.test(mid)) seriesCheckout.message_id = mid;
  const checkouts = [{ ...common(false), patchset_hash: '', valid: true, comment: `${run.kernel} (base of run ${run.id})` }, seriesCheckout];

  const builds: Record<string, unknown>[] = [];
  const tests: Record<string, unknown>[] = [];
  const kernelOf = (mmu: boolean): KernelVerdict | undefined => v?.kernels.find((k) => k.mmu === mmu);
  for (const d of cells) {
    if (!('key' in d.cell)) continue;
    const c = d.cell;
    if (c.series && applyFailed) continue; // nothing was built from a series that does not apply
    const r = d.record;
    const status = buildStatus(d);
    const k = kernelOf(c.mmu);
    const breakage = c.series ? k?.build : k?.baseBuild;
    const stages = r?.timings?.stages ?? {};
    const buildMs = (stages.config ?? 0) + (stages.build ?? 0);
    const buildId = id(c.job);
    builds.push({
      id: buildId,
      checkout_id: checkoutId(c.series),
      origin: KCIDB_ORIGIN,
      comment: `${c.series ? 'with the series' : 'base'}, ${c.mmu ? 'MMU' : 'no-MMU'}`,
      architecture: 'um',
      config_name: `um-kunit-${c.mmu ? 'mmu' : 'nommu'}`,
      command: 'make ARCH=um olddefconfig all',
      ...(run.environment?.compiler ? { compiler: run.environment.compiler } : {}),
      ...(iso(r?.timings?.started_at) ? { start_time: iso(r?.timings?.started_at) } : {}),
      ...(buildMs > 0 ? { duration: buildMs / 1000 } : {}),
      ...(r?.config ? { config_url: artifactUrl(o, c.job, 'config') } : {}),
      log_url: artifactUrl(o, c.job, 'build.log'),
      ...(breakage ? { log_excerpt: clip(breakage.errors.join('\n')) } : status === 'ERROR' && r?.message ? { log_excerpt: clip(r.message) } : {}),
      ...(status ? { status } : {}),
      misc: { job_url: jobUrl(o, c.job), mmu: c.mmu, series_applied: c.series, ...(r?.kernel?.series ? { nommu_series: r.kernel.series } : {}) },
    });
    if (status !== 'PASS') continue;
    const bootOk = d.results !== null && d.results.length > 0;
    tests.push({
      id: id(`${c.job}:boot`),
      build_id: buildId,
      origin: KCIDB_ORIGIN,
      path: 'boot',
      status: bootOk ? 'PASS' : r?.state === 'failed' ? 'FAIL' : 'ERROR',
      log_url: artifactUrl(o, c.job, 'console.log'),
      ...(!bootOk && r?.message ? { log_excerpt: clip(r.message) } : {}),
    });
    const measured = c.series ? run.coverage?.kernels.find((x) => x.job === c.job && x.missing === null) : undefined;
    if (measured) tests.push(...coverageTests(measured, buildId, c.job, o));
    const leaves = flattenTests(d.results ?? []);
    for (const [path, t] of leaves) {
      const kpath = ['kunit', ...path.split('.').map(kcidbPathSegment)].join('.');
      const change = c.series ? k?.tests.find((x) => x.path === path) : undefined;
      tests.push({
        id: id(`${c.job}:${kpath}`),
        build_id: buildId,
        origin: KCIDB_ORIGIN,
        path: kpath,
        status: TEST_STATUS[t.status]!,
        ...(t.reason ? { comment: t.reason } : {}),
        ...(t.status !== 'pass' && t.diagnostics.length ? { log_excerpt: clip(t.diagnostics.join('\n')) } : {}),
        ...(change ? { misc: { change: change.kind } } : {}),
      });
    }
    // Tests that ran on the base but not with the series.
    if (c.series && k) {
      for (const t of k.tests.filter((x) => x.kind === 'missing')) {
        const kpath = ['kunit', ...t.path.split('.').map(kcidbPathSegment)].join('.');
        tests.push({ id: id(`${c.job}:${kpath}`), build_id: buildId, origin: KCIDB_ORIGIN, path: kpath, status: 'MISS', misc: { change: 'missing' } });
      }
    }
  }
  return { version: { ...KCIDB_VERSION }, checkouts, builds, tests };
}
