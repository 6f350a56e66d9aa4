/** What the report formatters share: links, labels, the reproduction command. */
import type { RunRecord } from '../model.js';
import type { CellSummary, KernelVerdict } from '../verdict.js';

export interface ReportOptions {
  /** Where this service answers, for links: `http://ci.example.org:8080`. */
  baseUrl: string;
  /** `Name <address>` of the bot, for From: and Reported-by:. */
  reporter?: string;
  /** Date of the report (tests pin it). */
  now?: Date;
}

export const DEFAULT_REPORTER = process.env.NOMMU_CI_REPORTER ?? 'nommu-ci <nommu-ci@localhost>';

export const trimUrl = (u: string) => u.replace(/\/+$/, '');
/** The run's and the job's pages on the dashboard: what a person opens from a report. */
export const runUrl = (o: ReportOptions, id: string) => `${trimUrl(o.baseUrl)}/runs/${id}`;
export const jobUrl = (o: ReportOptions, id: string) => `${trimUrl(o.baseUrl)}/jobs/${id}`;
/** The JSON API and the files it serves. */
export const runApiUrl = (o: ReportOptions, id: string) => `${trimUrl(o.baseUrl)}/v1/runs/${id}`;
export const artifactUrl = (o: ReportOptions, id: string, name: string) => `${trimUrl(o.baseUrl)}/v1/jobs/${id}/artifacts/${name}`;

/** The series' title: the cover letter's subject, else the first patch's. */
export function seriesTitle(run: RunRecord): string {
  return run.series.cover?.subject ?? run.series.patches[0]?.subject ?? 'patch';
}
export function seriesRawSubject(run: RunRecord): string {
  return run.series.cover?.rawSubject ?? run.series.patches[0]?.rawSubject ?? seriesTitle(run);
}

/** One command that repeats the run from a saved copy of the series. */
export function reproduceCommand(run: RunRecord, o: ReportOptions, file = 'series.mbox'): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const args = ['npx', 'nommu-ci', 'run', '--server', trimUrl(o.baseUrl), '--patch', file, '--kernel', run.kernel];
  if (run.options.kunitconfig !== undefined) args.push('--kunitconfig', 'kunitconfig');
  for (const k of run.options.kconfig_add ?? []) args.push('--kconfig-add', k);
  if (run.options.filter_glob) args.push('--filter', run.options.filter_glob);
  if (run.options.per_patch) args.push('--per-patch');
  if (run.options.coverage) args.push('--coverage');
  return args.map(q).join(' ');
}

export function kernelDescription(run: RunRecord, k: KernelVerdict): string {
  const info = k.series.kernel ?? k.base.kernel;
  const v = info ? `${info.name} ${info.version}` : run.kernel;
  return `${v} ARCH=um, CONFIG_MMU=${k.mmu ? 'y' : 'n'}${info?.series ? ` (no-MMU series ${info.series})` : ''}`;
}

/** A cell's state in a few words, for tables. */
export function cellText(c: CellSummary, emoji = true): string {
  const e = (s: string) => (emoji ? `${s} ` : '');
  const sum = c.summary;
  const counts = sum ? `${sum.passed} passed${sum.failed ? `, ${sum.failed} failed` : ''}${sum.crashed ? `, ${sum.crashed} crashed` : ''}${sum.skipped ? `, ${sum.skipped} skipped` : ''}` : '';
  switch (c.state) {
    case 'passed':
      return `${e('✅')}${counts}`;
    case 'failed':
      if (c.stage === 'patch') return `${e('❌')}does not apply`;
      if (c.stage === 'build' || c.stage === 'config') return `${e('❌')}${c.stage} failed`;
      if (c.stage === 'boot') return `${e('❌')}did not boot`;
      return `${e('❌')}${counts || 'failed'}`;
    case 'error':
      return `${e('⚠️')}infrastructure error`;
    case 'canceled':
      return `${e('⚠️')}canceled`;
    case 'missing':
      return `${e('⚠️')}no job`;
    default:
      return `${e('⏳')}${c.state}`;
  }
}

/** What changed on a kernel, in a few words. */
export function changeText(k: KernelVerdict, onlyNoMmu: boolean): string {
  const parts: string[] = [];
  if (k.apply) parts.push(`patch ${k.apply.patch ?? '?'} does not apply`);
  if (k.build) {
    const loc = k.build.locations[0];
    parts.push(`${onlyNoMmu && !k.mmu ? 'breaks only the no-MMU build' : `breaks the ${k.build.stage}`}${loc ? ` (${loc.file}:${loc.line})` : ''}`);
  }
  if (k.boot) parts.push('does not boot');
  const c = k.counts;
  if (c['new-failure']) parts.push(`${c['new-failure']} new failure${c['new-failure'] > 1 ? 's' : ''}`);
  if (c['new-crash']) parts.push(`${c['new-crash']} new crash${c['new-crash'] > 1 ? 'es' : ''}`);
  if (c.missing) parts.push(`${c.missing} missing`);
  const newFailing = k.tests.filter((t) => t.kind === 'new-test' && t.regression).length;
  if (c['new-test']) parts.push(`${c['new-test']} new test${c['new-test'] > 1 ? 's' : ''}${newFailing ? ` (${newFailing} failing)` : ''}`);
  if (c.fixed) parts.push(`${c.fixed} fixed`);
  if (c['still-failing']) parts.push(`${c['still-failing']} still failing`);
  if (k.outcome === 'base-broken') parts.push('base does not build or boot: not compared');
  if (k.outcome === 'error' && parts.length === 0) parts.push('did not finish');
  return parts.length ? parts.join(', ') : 'no change';
}
