/**
 * A plain-text reply to the series that a mail bot can send as it is, in the layout the kernel
 * test robot (0-day/LKP) uses: what was tested, on which kernel and config, with which compiler,
 * how to reproduce it with one command, the Reported-by/Closes tags to add, then the errors with
 * the new ones prefixed by ">>".
 */
import { runCoverageGaps, runCoverageLines, runNotExecutedLines } from '../../coverage/text.js';
import type { RunRecord, SeriesPatchInfo } from '../model.js';
import type { KernelVerdict, TestChange, Verdict } from '../verdict.js';
import { artifactUrl, DEFAULT_REPORTER, kernelDescription, reproduceCommand, runUrl, seriesRawSubject, type ReportOptions } from './common.js';

const wrapRefs = (ids: string[]) => ids.map((i) => `<${i}>`).join('\n ');

function firstName(from: string | null | undefined): string | null {
  if (!from) return null;
  const name = from.replace(/<[^>]*>/, '').replace(/"/g, '').trim();
  if (!name || name.includes('@')) return null;
  return name.split(/\s+/)[0]!;
}

/** The patch most likely at fault: the blamed one, else the last patch touching the first error's file. */
function suspect(run: RunRecord, v: Verdict): SeriesPatchInfo | null {
  const patches = run.series.patches;
  const first = run.blame?.map((b) => b.patch).filter((p): p is number => p !== null).sort((a, b) => a - b)[0];
  if (first) return patches[first - 1] ?? null;
  if (v.apply?.patch) return patches[v.apply.patch - 1] ?? null;
  const file = v.kernels.map((k) => k.build?.locations[0]?.file).find((f) => f);
  if (file) {
    const touching = patches.filter((p) => p.files.includes(file));
    if (touching.length) return touching[touching.length - 1]!;
  }
  return patches.length === 1 ? patches[0]! : null;
}

function what(v: Verdict): string {
  const kinds: string[] = [];
  if (v.apply) kinds.push('apply failure');
  if (v.kernels.some((k) => k.build)) kinds.push('build errors');
  if (v.kernels.some((k) => k.boot)) kinds.push('boot failure');
  if (v.kernels.some((k) => k.tests.some((t) => t.regression))) kinds.push('KUnit test regressions');
  return kinds.length > 1 ? `${kinds.slice(0, -1).join(', ')} and ${kinds[kinds.length - 1]}` : (kinds[0] ?? 'results');
}

function tag(k: KernelVerdict): string {
  if (k.apply) return 'cannot apply to';
  if (k.build) return 'auto build test ERROR on';
  if (k.boot) return 'auto boot test FAIL on';
  if (k.tests.some((t) => t.regression)) return 'auto KUnit test FAIL on';
  if (k.outcome === 'base-broken') return 'base does not build on';
  if (k.outcome === 'error') return 'test did not finish on';
  return 'no regression on';
}

function testLines(t: TestChange): string[] {
  const was = t.base ? `${t.base} without the series` : 'not run without the series';
  const now = t.series ? t.series.toUpperCase() : 'MISSING';
  const out = [`${t.regression ? '>>' : '  '} ${t.path}: ${now} (${t.kind}; ${was})${t.reason ? ` # ${t.reason}` : ''}`];
  for (const d of t.diagnostics.slice(0, 6)) out.push(`       ${d.trim()}`);
  return out;
}

export interface EmailReport {
  headers: Record<string, string>;
  body: string;
  /** Headers and body as one RFC 5322 message. */
  text: string;
}

export function emailReport(run: RunRecord, o: ReportOptions): EmailReport {
  const v = run.verdict;
  const reporter = o.reporter ?? DEFAULT_REPORTER;
  const now = o.now ?? new Date();
  const host = /@([^>\s]+)/.exec(reporter)?.[1] ?? 'nommu-ci';
  const authors = [...new Set([run.series.cover?.from, ...run.series.patches.map((p) => p.from)].filter((x): x is string => !!x))];
  const headers: Record<string, string> = {
    From: reporter,
    ...(authors.length ? { To: authors.join(', ') } : {}),
    Subject: `Re: ${seriesRawSubject(run)}`,
    Date: now.toUTCString().replace('GMT', '+0000'),
    'Message-ID': `<nommu-ci.${run.id}@${host}>`,
    ...(run.series.inReplyTo ? { 'In-Reply-To': `<${run.series.inReplyTo}>`, References: wrapRefs(run.series.references) } : {}),
    'MIME-Version': '1.0',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Transfer-Encoding': '8bit',
  };
  const b: string[] = [];
  const name = firstName(run.series.patches[0]?.from ?? run.series.cover?.from);
  b.push(`Hi${name ? ` ${name}` : ''},`, '');
  if (!v) {
    b.push(`nommu-ci is still testing your series (run ${run.state}): ${runUrl(o, run.id)}`, '');
  } else if (v.outcome === 'pass') {
    b.push('nommu-ci tested your series on User-Mode Linux with and without an MMU and found no regressions.', '');
  } else if (v.outcome === 'error') {
    b.push(`nommu-ci could not finish testing your series: ${v.headline}.`, '');
  } else {
    b.push(`nommu-ci noticed the following ${what(v)}:`, '');
  }
  if (v) {
    for (const k of v.kernels) b.push(`[${tag(k)} ${run.kernel} (${k.label}, CONFIG_MMU=${k.mmu ? 'y' : 'n'})]`);
    if (v.breaksOnlyNoMmu) b.push('[the series breaks only the no-MMU build: the MMU kernel builds]');
    b.push('');
  }
  const sus = v ? suspect(run, v) : null;
  const link = sus?.messageId ?? run.series.cover?.messageId ?? run.series.patches[0]?.messageId;
  const cfgKernel = v?.kernels.find((k) => k.outcome === 'regression') ?? v?.kernels[0];
  const field = (k: string, val: string) => b.push(`${`${k}:`.padEnd(15)}${val}`);
  field('url', runUrl(o, run.id));
  field('base', cfgKernel ? kernelDescription(run, cfgKernel) : run.kernel);
  if (link) field('patch link', `<${link}>`);
  field('patch subject', sus?.rawSubject ?? seriesRawSubject(run));
  if (cfgKernel) {
    const cfg = cfgKernel.series.config ?? cfgKernel.base.config;
    const cfgJob = cfgKernel.series.config ? cfgKernel.series.job : cfgKernel.base.job;
    field(
      'config',
      `um-kunit-${cfgKernel.mmu ? 'mmu' : 'nommu'}${run.options.kconfig_add?.length ? ` + ${run.options.kconfig_add.join(' ')}` : ''}${cfg ? ` (${artifactUrl(o, cfgJob, 'config')})` : ''}`,
    );
  }
  field('compiler', run.environment?.compiler ?? 'gcc (the worker host\'s)');
  field('reproduce', reproduceCommand(run, o));
  b.push('');
  if (v && v.outcome === 'regression') {
    b.push(
      'If you fix the issue in a separate patch/commit (i.e. not just a new version of',
      'the same patch/commit), kindly add following tags',
      `| Reported-by: ${reporter}`,
      `| Closes: ${runUrl(o, run.id)}`,
      '',
    );
  }
  if (v?.apply) {
    b.push(`The series does not apply: patch ${v.apply.patch ?? '?'}${v.apply.total ? `/${v.apply.total}` : ''}${v.apply.subject ? ` "${v.apply.subject}"` : ''}${v.apply.file ? `, ${v.apply.file}${v.apply.line ? `:${v.apply.line}` : ''}` : ''}${v.apply.hunk ? `, hunk ${v.apply.hunk}` : ''}`, '');
    b.push(...v.apply.message.split('\n').slice(0, 12).map((l) => `   ${l}`), '');
  }
  for (const k of v?.kernels ?? []) {
    if (k.build) {
      b.push(`All errors (new ones prefixed by >>) on the ${k.label} kernel (CONFIG_MMU=${k.mmu ? 'y' : 'n'})${v!.breaksOnlyNoMmu && !k.mmu ? '; the MMU kernel builds' : ''}:`, '');
      const isErr = (l: string) => / error: |undefined reference|multiple definition/.test(l);
      b.push(...k.build.errors.map((l) => (isErr(l) ? `>> ${l}` : `   ${l}`)), '');
      b.push(`   build log: ${artifactUrl(o, k.series.job, 'build.log')}`, '');
    }
    if (k.boot) b.push(`The ${k.label} kernel with the series does not boot:`, '', ...k.boot.split('\n').map((l) => `>> ${l}`), '');
    if (k.tests.length) {
      b.push(`KUnit on the ${k.label} kernel (CONFIG_MMU=${k.mmu ? 'y' : 'n'}), new failures prefixed by >>:`, '');
      for (const t of k.tests.slice(0, 40)) b.push(...testLines(t));
      if (k.tests.length > 40) b.push(`   ... and ${k.tests.length - 40} more: ${runUrl(o, run.id)}`);
      b.push('');
    }
  }
  if (run.coverage) {
    const c = run.coverage;
    b.push('Changed lines executed (gcov, each kernel with the series):', '');
    if (c.files.length === 0) b.push('   the series changes no line of a C source or header');
    b.push(...runCoverageLines(c).map((l) => `   ${l}`));
    const missed = runNotExecutedLines(c);
    if (missed.length) b.push('', 'Changed lines no test executed:', '', ...missed.map((l) => `   ${l}`));
    for (const g of runCoverageGaps(c)) b.push('', `   not measured on ${g}`);
    b.push('');
  }
  for (const bl of run.blame ?? []) {
    b.push(
      bl.patch
        ? `Per-patch search: ${bl.what} on the ${bl.mmu ? 'MMU' : 'no-MMU'} kernel first appears with patch ${bl.patch}/${run.series.patches.length} "${bl.subject}".`
        : `Per-patch search: ${bl.what} on the ${bl.mmu ? 'MMU' : 'no-MMU'} kernel could not be narrowed (prefix jobs did not finish).`,
    );
  }
  if (run.blame?.length) b.push('');
  b.push('-- ', 'nommu-ci: User-Mode Linux with and without an MMU, KUnit on every patch', runUrl(o, run.id));
  const body = b.join('\n') + '\n';
  const text = Object.entries(headers).map(([k, val]) => `${k}: ${val}`).join('\n') + '\n\n' + body;
  return { headers, body, text };
}
