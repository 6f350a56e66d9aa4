/**
 * A job: its state and stage with times, the test tree (failures and crashes first, expanded,
 * with diagnostics and the console around a crash), per-suite durations, its files and config,
 * and the command that submits it again. While the job runs the script fills the test tree
 * from the events stream and refreshes the status section on each state change.
 */
import { FINAL_STATES, STAGES, summarize, type JobRecord, type JobRequest, type TestNode } from '@nommu-ci/shared';
import { crashExcerpt, problems, type ConfigLine } from '../job-data.js';
import { badge, counts, duration, elapsedMs, jobKernel, mmuLabel, shortId, submitter, when } from '../format.js';
import { html, raw, type Html } from '../html.js';

export interface JobView {
  record: JobRecord;
  request: JobRequest | null;
  results: TestNode[] | null;
  suiteMs: Map<string, number>;
  consoleLog: string | null;
  config: ConfigLine[] | null;
  reproducer: string | null;
}

/** Start of each stage that ran, from the job's start and the stage times before it. */
function stageRows(r: JobRecord, hasPatch: boolean): Html {
  const final = FINAL_STATES.has(r.state);
  const started = r.timings.started_at ? Date.parse(r.timings.started_at) : null;
  let at = started;
  const stages = STAGES.filter((s) => s !== 'infra' && (s !== 'patch' || hasPatch));
  return html`<ol class="stages" aria-label="Pipeline stages">
${stages.map((s) => {
  const ms = r.timings.stages[s];
  const current = r.stage === s && !final;
  const failed = r.stage === s && final && r.state !== 'passed';
  const status = failed ? 'failed' : current ? 'current' : ms !== undefined ? 'done' : 'pending';
  const startAt = at;
  if (ms !== undefined && at !== null) at += ms;
  return html`<li class="st-${status}"><span class="name">${s}</span> <span class="ms">${
    current
      ? html`<span data-since="${startAt !== null ? new Date(startAt).toISOString() : r.timings.queued_at}">${duration(Date.now() - (startAt ?? Date.parse(r.timings.queued_at)))}</span>${s === 'build' ? html` <progress aria-label="build in progress"></progress>` : ''}`
      : ms !== undefined
        ? duration(ms)
        : status === 'failed'
          ? 'failed'
          : ''
  }</span><span class="sr-only"> (${status})</span></li>`;
})}
</ol>`;
}

export function statusSection(v: JobView): Html {
  const r = v.record;
  const final = FINAL_STATES.has(r.state);
  return html`<section id="job-status" aria-live="polite" data-final="${String(final)}" data-state="${r.state}">
<dl class="facts">
<div><dt>State</dt><dd>${badge(r.state)}${r.stage && r.state !== 'passed' ? html` at stage <strong data-field="stage">${r.stage}</strong>` : ''}</dd></div>
<div><dt>Elapsed</dt><dd><span${final ? '' : html` data-since="${r.timings.queued_at}"`} data-field="elapsed">${duration(elapsedMs(r))}</span></dd></div>
<div><dt>Results</dt><dd>${counts(r.summary)}</dd></div>
${r.message ? html`<div class="wide"><dt>Message</dt><dd data-field="message">${r.message}</dd></div>` : ''}
</dl>
${stageRows(r, Boolean(v.request?.patch))}
</section>`;
}

function diagnostics(t: TestNode): Html {
  const lines = t.diagnostics.filter((d) => d.trim() !== '');
  return lines.length ? html`<pre class="diag">${lines.join('\n')}</pre>` : html``;
}

function problemItem(id: string, path: string, t: TestNode, consoleLog: string | null, shownCrash: Set<string>): Html {
  let excerpt: Html | string = '';
  if (t.status === 'crash' && consoleLog !== null && !shownCrash.has(t.reason ?? '')) {
    shownCrash.add(t.reason ?? '');
    const e = crashExcerpt(consoleLog, t.reason);
    excerpt = html`<p class="sub">Console around the crash (from line ${e.from} of <a href="/v1/jobs/${id}/artifacts/console.log">console.log</a>):</p><pre class="console">${e.text}</pre>`;
  }
  return html`<li><details open><summary><span class="badge s-${t.status}">${t.status}</span> <code>${path}</code>${t.reason ? html` <span class="reason">${t.reason}</span>` : ''}</summary>
${diagnostics(t)}${excerpt}</details></li>`;
}

function treeNode(t: TestNode): Html {
  const bad = t.status === 'fail' || t.status === 'crash';
  return html`<li data-status="${t.status}"><span class="badge s-${t.status}">${t.status}</span> ${t.name}${t.reason ? html` <span class="reason">${t.reason}</span>` : ''}${
    t.children.length ? html`<ol>${[...t.children].sort(byTrouble).map(treeNode)}</ol>` : bad ? diagnostics(t) : ''
  }</li>`;
}

/** Failing and crashed tests first, the rest in the kernel's order. */
const rank = (t: TestNode) => (t.status === 'crash' ? 0 : t.status === 'fail' ? 1 : 2);
const byTrouble = (a: TestNode, b: TestNode) => rank(a) - rank(b);

/** Counted as the job's summary is (kunit_tool's rules: tests a plan announced but the kernel never ran are crashed). */
function suiteCounts(t: TestNode): Html {
  const c = summarize([t]);
  return html`${c.passed} passed${c.failed ? `, ${c.failed} failed` : ''}${c.crashed ? `, ${c.crashed} crashed` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''}`;
}

export function testsSection(v: JobView): Html {
  const r = v.record;
  if (!v.results) {
    const final = FINAL_STATES.has(r.state);
    return html`<section id="job-tests" aria-labelledby="tests-h">
<h2 id="tests-h">Tests</h2>
${final ? html`<p>No test results${r.stage ? ` (the job stopped at stage ${r.stage})` : ''}.</p>` : ''}
<div id="live" ${final ? raw('hidden') : ''}>
<p id="live-summary" aria-live="polite">Waiting for the first result…</p>
<h3 class="sub" hidden>Failures and crashes</h3>
<ol id="live-problems" class="problems"></ol>
<h3 class="sub" hidden>All results, as they arrive</h3>
<ol id="live-tests" class="tree"></ol>
</div>
<noscript><p>Results appear here when the job ends; reload the page, or follow <a href="/v1/jobs/${r.id}/tap">the raw KTAP</a> live.</p></noscript>
</section>`;
  }
  const shownCrash = new Set<string>();
  const bad = problems(v.results);
  const suites = [...v.results].sort(byTrouble);
  return html`<section id="job-tests" aria-labelledby="tests-h" data-done="true">
<h2 id="tests-h">Tests</h2>
${bad.length ? html`<h3>Failures and crashes</h3><ol class="problems">${bad.map((b) => problemItem(r.id, b.path, b.node, v.consoleLog, shownCrash))}</ol>` : html`<p>No failures.</p>`}
<h3>Suites</h3>
<div class="scroll"><table class="suites">
<thead><tr><th scope="col">Suite</th><th scope="col">Result</th><th scope="col">Tests</th><th scope="col">Duration</th></tr></thead>
<tbody>${suites.map((s) => html`<tr><td>${s.name}</td><td><span class="badge s-${s.status}">${s.status}</span></td><td>${suiteCounts(s)}</td><td>${duration(v.suiteMs.get(s.name))}</td></tr>`)}</tbody>
</table></div>
<details class="alltests"><summary>Every test (${v.results.length} top-level)</summary><ol class="tree">${suites.map(treeNode)}</ol></details>
</section>`;
}

function configTable(lines: ConfigLine[]): Html {
  const bad = lines.filter((l) => !l.ok).length;
  return html`<details ${bad ? raw('open') : ''}><summary>Config lines asked for against the final .config (${bad ? `${bad} not as asked` : 'all as asked'})</summary>
<div class="scroll"><table class="config">
<thead><tr><th scope="col">Option</th><th scope="col">Asked</th><th scope="col">Got</th></tr></thead>
<tbody>${lines.map((l) => html`<tr class="${l.ok ? 'ok' : 'differs'}"><td><code>${l.option}</code></td><td><code>${l.asked}</code></td><td><code>${l.got ?? 'not set'}</code>${l.ok ? '' : html` <strong>differs</strong>`}</td></tr>`)}</tbody>
</table></div></details>`;
}

export function filesSection(v: JobView): Html {
  const r = v.record;
  const final = FINAL_STATES.has(r.state);
  const a = (name: string, label: string) => html`<li><a href="/v1/jobs/${r.id}/artifacts/${name}">${label}</a></li>`;
  return html`<section id="job-files" aria-labelledby="files-h">
<h2 id="files-h">Logs and files</h2>
<ul class="links">
${final ? html`${a('build.log', 'build log')}${a('console.log', 'console log')}${r.config ? a('config', '.config') : ''}${v.request?.patch ? a('patch.log', 'patch log') : ''}` : ''}
${r.coverage ? html`<li><a href="/v1/jobs/${r.id}/coverage/index.html">coverage report</a> (${r.coverage.lines_hit} of ${r.coverage.lines_found} lines)</li>${a('coverage.info', 'coverage tracefile (lcov)')}` : ''}
<li><a href="/v1/jobs/${r.id}/tap">raw KTAP</a>${final ? '' : ' (live)'}</li>
<li><a href="/v1/jobs/${r.id}">record (JSON)</a></li>
${v.results ? html`<li><a href="/v1/jobs/${r.id}/results">results (JSON)</a></li>` : ''}
${v.request?.patch ? html`<li><a href="/jobs/${r.id}/patch">the patch</a></li>` : ''}
</ul>
${v.config ? configTable(v.config) : ''}
${
  v.reproducer
    ? html`<h3><label for="repro">Submit the same job again</label></h3>
<div class="copy"><textarea id="repro" readonly rows="2">${v.reproducer}</textarea><button type="button" data-copy="repro" hidden>Copy</button></div>`
    : ''
}
</section>`;
}

export function jobPage(v: JobView): Html {
  const r = v.record;
  const k = jobKernel(r, v.request);
  return html`<div id="job" data-job="${r.id}">
<h1>Job <code>${shortId(r.id)}</code> <span class="sub">${r.kind} · ${k.name ?? ''} ${mmuLabel(k.mmu)}${r.kernel ? ` ${r.kernel.version}` : ''}</span></h1>
<p class="meta">Queued ${when(r.timings.queued_at)}${r.timings.finished_at ? html`, ended ${when(r.timings.finished_at)}` : ''}${submitter(r) ? ` by ${submitter(r)}` : ''}${r.kernel?.series ? ` · no-MMU series ${r.kernel.series}` : ''}${r.attempt > 1 ? ` · attempt ${r.attempt}` : ''} · <code class="id">${r.id}</code></p>
${statusSection(v)}
${testsSection(v)}
${filesSection(v)}
</div>`;
}
