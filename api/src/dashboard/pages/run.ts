/**
 * A run: the base / base + series × no-MMU / MMU matrix, the verdict in words, the first bad
 * patch when the run narrowed it, and the email and markdown reports ready to copy.
 */
import {
  cellText,
  changeText,
  emailReport,
  FINAL_RUN_STATES,
  fileCoverageText,
  markdownReport,
  rangesText,
  seriesTitle,
  summarizeCell,
  type CellData,
  type KernelVerdict,
  type ReportOptions,
  type RunRecord,
  type TestChange,
} from '@nommu-ci/shared';
import { duration, shortId, when } from '../format.js';
import { html, raw, type Html } from '../html.js';

const KIND_WORDS: Record<TestChange['kind'], string> = {
  'new-failure': 'new failure',
  'new-crash': 'new crash',
  fixed: 'fixed',
  'still-failing': 'still failing',
  missing: 'missing with the series',
  'new-test': 'new test',
};

function matrix(run: RunRecord, cells: readonly CellData[]): Html {
  const cell = (series: boolean, mmu: boolean) => {
    const i = run.cells.findIndex((c) => c.series === series && c.mmu === mmu);
    if (i < 0) return html`<td>no job</td>`;
    const c = summarizeCell(cells[i]);
    const job = run.cells[i]!.job;
    const ms = c.started_at && c.finished_at ? Date.parse(c.finished_at) - Date.parse(c.started_at) : null;
    return html`<td class="cell s-${c.state}"><a href="/jobs/${job}">${cellText(c, false)}</a>${c.state === 'failed' && c.stage ? html` <span class="stage">(${c.stage})</span>` : ''}
<span class="links"><a href="/v1/jobs/${job}/artifacts/build.log">build log</a> · <a href="/v1/jobs/${job}/artifacts/console.log">console</a>${ms !== null ? ` · ${duration(ms)}` : ''}</span></td>`;
  };
  return html`<div class="scroll"><table class="matrix">
<caption>Jobs of the run</caption>
<thead><tr><th scope="col">Kernel</th><th scope="col">Base</th><th scope="col">Base + series</th></tr></thead>
<tbody>
<tr><th scope="row">no-MMU</th>${cell(false, false)}${cell(true, false)}</tr>
<tr><th scope="row">MMU</th>${cell(false, true)}${cell(true, true)}</tr>
</tbody></table></div>`;
}

function kernelDetails(k: KernelVerdict, onlyNoMmu: boolean): Html {
  const regressions = k.tests.filter((t) => t.regression || t.kind === 'fixed' || t.kind === 'still-failing');
  return html`<li><strong>${k.label}:</strong> ${changeText(k, onlyNoMmu)}
${k.apply ? html`<p>${k.apply.message}</p>` : ''}
${
  k.build
    ? html`<p>The ${k.build.stage} breaks with the series${k.build.locations.length ? html` at ${k.build.locations.map((l, i) => html`${i ? ', ' : ''}<code>${l.file}:${l.line}</code>`)}` : ''}:</p><pre class="diag">${k.build.errors.join('\n')}</pre>`
    : ''
}
${k.boot ? html`<p>Boot: ${k.boot}</p>` : ''}
${
  regressions.length
    ? html`<ul class="changes">${regressions.map(
        (t) => html`<li><span class="badge k-${t.kind}">${KIND_WORDS[t.kind]}</span> <code>${t.path}</code> (${t.base ?? 'absent'} → ${t.series ?? 'absent'})${t.reason ? html` <span class="reason">${t.reason}</span>` : ''}${t.diagnostics.length ? html`<pre class="diag">${t.diagnostics.join('\n')}</pre>` : ''}</li>`,
      )}</ul>`
    : ''
}
</li>`;
}

function verdictSection(run: RunRecord, cells: readonly CellData[]): Html {
  const v = run.verdict;
  if (!v) {
    const ended = cells.filter((d) => d.record && ['passed', 'failed', 'error', 'canceled'].includes(d.record.state)).length;
    return html`<section id="verdict" aria-labelledby="verdict-h"><h2 id="verdict-h">Verdict</h2><p>Not yet: ${ended} of ${run.cells.length} jobs have ended.</p></section>`;
  }
  return html`<section id="verdict" aria-labelledby="verdict-h" class="o-${v.outcome}">
<h2 id="verdict-h">Verdict</h2>
<p class="headline" data-field="headline">${v.outcome === 'pass' ? 'No regression: ' : v.outcome === 'regression' ? 'Regression: ' : 'Could not tell: '}${v.headline}</p>
${v.breaksOnlyNoMmu ? html`<p><strong>The series breaks only the no-MMU build</strong>: the MMU kernel builds with it.</p>` : ''}
<ul class="kernels">${v.kernels.map((k) => kernelDetails(k, v.breaksOnlyNoMmu))}</ul>
${blameSection(run)}
</section>`;
}

function blameSection(run: RunRecord): Html {
  if (!run.options.per_patch) return html``;
  if (!run.blame) return html`<p>Per patch: ${run.verdict?.outcome === 'regression' ? 'narrowing to the first bad patch…' : 'nothing to narrow.'}</p>`;
  return html`<h3>First bad patch</h3><ul>${run.blame.map(
    (b) => html`<li>${b.mmu ? 'MMU' : 'no-MMU'}, ${b.what}: ${
      b.patch !== null ? html`<strong>patch ${b.patch}/${run.series.patches.length}</strong> <a href="/v1/runs/${run.id}/patches/${b.patch}">${b.subject ?? ''}</a>` : 'could not tell'
    }
<span class="tried">tried: ${b.tried.map((t, i) => html`${i ? ', ' : ''}<a href="/jobs/${t.job}">${t.patches} patch${t.patches > 1 ? 'es' : ''}</a> ${t.failed ? 'fails' : 'passes'}`)}</span></li>`,
  )}</ul>`;
}

/** Per changed file and kernel, the changed lines executed; the ones no test ran, by line. */
function coverageSection(run: RunRecord): Html {
  const c = run.coverage;
  if (!c) return html``;
  const cell = (k: (typeof c.kernels)[number], file: string) => {
    if (k.missing !== null) return html`<td class="cov-missing">not measured</td>`;
    const f = k.files.find((x) => x.file === file);
    if (!f) return html`<td class="cov-missing">not measured</td>`;
    return html`<td class="${f.not_executed.length ? 'cov-missed' : 'cov-ok'}">${fileCoverageText(f)}${
      f.not_executed.length ? html`<br><strong>not executed by any test: ${rangesText(f.not_executed)}</strong>` : ''
    }</td>`;
  };
  return html`<section id="coverage" aria-labelledby="coverage-h">
<h2 id="coverage-h">Changed lines executed</h2>
${
  c.files.length
    ? html`<div class="scroll"><table>
<caption>gcov, each kernel with the series (<a href="/v1/runs/${run.id}/report?format=json">JSON</a>)</caption>
<thead><tr><th scope="col">File</th>${c.kernels.map((k) => html`<th scope="col"><a href="/jobs/${k.job}">${k.mmu ? 'MMU' : 'no-MMU'}</a></th>`)}</tr></thead>
<tbody>${c.files.map((file) => html`<tr><th scope="row"><code>${file}</code></th>${c.kernels.map((k) => cell(k, file))}</tr>`)}</tbody></table></div>`
    : html`<p>The series changes no line of a C source or header.</p>`
}
${c.kernels.filter((k) => k.missing !== null).map((k) => html`<p>${k.mmu ? 'MMU' : 'no-MMU'}: ${k.missing}</p>`)}
</section>`;
}

function reports(run: RunRecord, o: ReportOptions): Html {
  if (!run.verdict) return html``;
  const mail = emailReport(run, o).text;
  const md = markdownReport(run, o);
  const box = (id: string, label: string, text: string) =>
    html`<h3><label for="${id}">${label}</label></h3><div class="copy"><textarea id="${id}" readonly rows="12">${text}</textarea><button type="button" data-copy="${id}" hidden>Copy</button></div>`;
  return html`<section id="reports" aria-labelledby="reports-h">
<h2 id="reports-h">Reports</h2>
${box('report-email', 'Email (reply to the series)', mail)}
${box('report-markdown', 'Markdown (merge request comment)', md)}
<p>Also: ${(['patchwork', 'kcidb', 'json'] as const).map((f, i) => html`${i ? ' · ' : ''}<a href="/v1/runs/${run.id}/report?format=${f}">${f}</a>`)}</p>
</section>`;
}

export function runPage(run: RunRecord, cells: readonly CellData[], o: ReportOptions): Html {
  const final = FINAL_RUN_STATES.has(run.state);
  return html`<div id="run" data-run="${run.id}" data-final="${String(final)}">
<h1>${seriesTitle(run)}</h1>
<p class="meta"><span class="badge s-${run.state}" data-field="state">${run.state}</span> Run <code>${shortId(run.id)}</code> on ${run.kernel} · queued ${when(run.created_at)}${run.finished_at ? html`, ended ${when(run.finished_at)}` : ''}</p>
${verdictSection(run, cells)}
${matrix(run, cells)}
${coverageSection(run)}
<section aria-labelledby="patches-h"><h2 id="patches-h">Patches</h2>
<ol class="patches">${run.series.patches.map((p) => html`<li><a href="/v1/runs/${run.id}/patches/${p.index}">${p.subject}</a>${p.from ? html` <span class="sub">${p.from}</span>` : ''}</li>`)}</ol>
</section>
${reports(run, o)}
<p class="note">JSON: <a href="/v1/runs/${run.id}">/v1/runs/${run.id}</a>${final ? '' : raw(' · this page refreshes while the run goes on')}</p>
</div>`;
}

export function runsPage(rows: { run: RunRecord }[]): Html {
  return html`<h1>Runs</h1>
<div class="scroll"><table>
<caption class="sr-only">Runs, newest first</caption>
<thead><tr><th scope="col">Series</th><th scope="col">State</th><th scope="col">Verdict</th><th scope="col">Queued</th></tr></thead>
<tbody>${
    rows.length
      ? rows.map(({ run }) => html`<tr><td><a href="/runs/${run.id}">${seriesTitle(run)}</a></td><td><span class="badge s-${run.state}">${run.state}</span></td><td>${run.verdict?.headline ?? ''}</td><td>${when(run.created_at)}</td></tr>`)
      : html`<tr><td colspan="4">No runs yet.</td></tr>`
  }</tbody></table></div>
<p class="note">JSON: <a href="/v1/runs">/v1/runs</a></p>`;
}
