/**
 * A comment for a merge request or pull request (GitHub/GitLab flavoured Markdown): a summary
 * table first, every detail folded in <details>.
 */
import { runCoverageGaps, runCoverageLines, runNotExecutedLines } from '../../coverage/text.js';
import type { RunRecord } from '../model.js';
import type { KernelVerdict, TestChange } from '../verdict.js';
import { cellText, changeText, jobUrl, kernelDescription, reproduceCommand, runApiUrl, runUrl, seriesTitle, type ReportOptions } from './common.js';

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fence = (lines: string[]) => ['```', ...lines.map((l) => l.replace(/```/g, '``\u200b`')), '```'];

function details(summary: string, body: string[]): string[] {
  return ['<details>', `<summary>${esc(summary)}</summary>`, '', ...body, '', '</details>', ''];
}

function testTable(tests: TestChange[]): string[] {
  const out = ['| test | change | base | with series |', '| --- | --- | --- | --- |'];
  for (const t of tests) out.push(`| \`${esc(t.path)}\` | ${t.kind} | ${t.base ?? '—'} | ${t.series ?? '—'} |`);
  return out;
}

function kernelDetails(k: KernelVerdict, onlyNoMmu: boolean): string[] {
  const out: string[] = [];
  if (k.build) {
    out.push(
      ...details(`${k.label}: ${onlyNoMmu && !k.mmu ? 'the series breaks only the no-MMU build' : `${k.build.stage} breakage`}`, [
        ...(k.build.locations.length ? k.build.locations.slice(0, 5).map((l) => `- \`${esc(l.file)}:${l.line}\`: ${esc(l.message)}`) : []),
        '',
        ...fence(k.build.errors),
      ]),
    );
  }
  if (k.boot) out.push(...details(`${k.label}: the kernel with the series does not boot`, fence(k.boot.split('\n'))));
  const regress = k.tests.filter((t) => t.regression);
  if (regress.length) {
    const diag = regress.filter((t) => t.diagnostics.length).slice(0, 10).flatMap((t) => ['', `\`${esc(t.path)}\`:`, ...fence(t.diagnostics)]);
    out.push(...details(`${k.label}: ${regress.length} test regression${regress.length > 1 ? 's' : ''}`, [...testTable(regress), ...diag]));
  }
  const other = k.tests.filter((t) => !t.regression);
  if (other.length) out.push(...details(`${k.label}: ${other.length} other change${other.length > 1 ? 's' : ''}`, testTable(other)));
  return out;
}

function coverageSection(c: NonNullable<RunRecord['coverage']>): string[] {
  const code = (s: string) => `\`${s}\``;
  const out = ['**Changed lines executed** (gcov, each kernel with the series):', ''];
  if (c.files.length === 0) out.push('The series changes no line of a C source or header.');
  for (const l of runCoverageLines(c)) out.push(`- ${esc(l).replace(/^([^:]+):/, (_m, f: string) => `${code(f)}:`)}`);
  const missed = runNotExecutedLines(c);
  if (missed.length) out.push('', '> **Changed lines no test executed:**', ...missed.map((l) => `> - ${esc(l)}`));
  for (const g of runCoverageGaps(c)) out.push('', `> Not measured on ${esc(g)}`);
  return [...out, ''];
}

export function markdownReport(run: RunRecord, o: ReportOptions): string {
  const v = run.verdict;
  const icon = !v ? '⏳' : v.outcome === 'pass' ? '✅' : v.outcome === 'regression' ? '❌' : '⚠️';
  const out: string[] = [];
  out.push(`### nommu-ci ${icon} ${esc(v ? v.headline : `run ${run.state}`)}`, '');
  const n = run.series.patches.length;
  out.push(`**${esc(seriesTitle(run))}** (${n} patch${n > 1 ? 'es' : ''}${run.series.version ? `, v${run.series.version}` : ''}) on \`${run.kernel}\`, User-Mode Linux with and without an MMU.`, '');
  if (v) {
    out.push('| kernel | base | with the series | change |', '| --- | --- | --- | --- |');
    for (const k of v.kernels) {
      out.push(`| ${k.label} | [${cellText(k.base)}](${jobUrl(o, k.base.job)}) | [${cellText(k.series)}](${jobUrl(o, k.series.job)}) | ${esc(changeText(k, v.breaksOnlyNoMmu))} |`);
    }
    out.push('');
    if (v.breaksOnlyNoMmu) out.push('> **The series breaks only the no-MMU build** (`CONFIG_MMU=n`): the MMU kernel builds.', '');
    for (const b of run.blame ?? []) {
      out.push(
        b.patch
          ? `> First bad patch on ${b.mmu ? 'MMU' : 'no-MMU'} (${esc(b.what)}): **${b.patch}/${n} ${esc(b.subject ?? '')}**`
          : `> Per-patch search on ${b.mmu ? 'MMU' : 'no-MMU'} (${esc(b.what)}): could not be narrowed.`,
        '',
      );
    }
    if (run.coverage) out.push(...coverageSection(run.coverage));
    if (v.apply) {
      out.push(
        ...details(`patch ${v.apply.patch ?? '?'}${v.apply.total ? `/${v.apply.total}` : ''} does not apply`, [
          `${v.apply.subject ? `**${esc(v.apply.subject)}**` : ''}${v.apply.file ? ` at \`${esc(v.apply.file)}${v.apply.line ? `:${v.apply.line}` : ''}\`` : ''}`,
          '',
          ...fence(v.apply.message.split('\n').slice(0, 20)),
        ]),
      );
    }
    for (const k of v.kernels) out.push(...kernelDetails(k, v.breaksOnlyNoMmu));
    out.push(
      ...details('how it was tested', [
        ...v.kernels.map((k) => `- ${k.label}: ${esc(kernelDescription(run, k))}${k.series.config ? `, .config sha256 ${k.series.config.hash.slice(0, 12)}` : ''}`),
        `- KUnit: ${run.options.kunitconfig !== undefined ? 'the given kunitconfig' : "the tree's default kunitconfig"}${run.options.kconfig_add?.length ? ` + ${run.options.kconfig_add.map((k) => `\`${k}\``).join(' ')}` : ''}${run.options.filter_glob ? `, filter \`${esc(run.options.filter_glob)}\`` : ''}`,
        '',
        'Reproduce:',
        '',
        ...fence([reproduceCommand(run, o)]),
      ]),
    );
  } else {
    out.push('| cell | job |', '| --- | --- |', ...run.cells.map((c) => `| ${c.series ? 'series' : 'base'} ${c.mmu ? 'MMU' : 'no-MMU'} | [${c.job}](${jobUrl(o, c.job)}) |`), '');
  }
  out.push(`[Run ${run.id}](${runUrl(o, run.id)}) · [JSON](${runApiUrl(o, run.id)}/report?format=json)`);
  return out.join('\n') + '\n';
}
