/** The jobs list: newest first, filtered by the form's fields (a plain GET form: works without JS). */
import { JOB_KINDS, JOB_STATES, type JobRecord, type JobRequest, type JobStore } from '@nommu-ci/shared';
import { badge, counts, duration, elapsedMs, jobKernel, mmuLabel, shortId, submitter, when } from '../format.js';
import { html, raw, type Html } from '../html.js';

export interface JobFilters {
  state?: string;
  kind?: string;
  kernel?: string;
  mmu?: 'mmu' | 'nommu';
  submitter?: string;
  offset?: number;
}

export interface JobRow {
  record: JobRecord;
  kernel: string | null;
  mmu: boolean | null;
}

const PAGE = 50;
/** How far back a filtered listing looks: filters are applied to the newest jobs, not an index. */
const SCAN_MAX = 2000;
const BATCH = 100;

/** Jobs matching the filters, newest first: one page of them, and whether there are more. */
export async function listJobs(store: JobStore, f: JobFilters): Promise<{ rows: JobRow[]; more: boolean; submitters: boolean }> {
  const rows: JobRow[] = [];
  let skip = f.offset ?? 0;
  let submitters = false;
  for (let at = 0; at < SCAN_MAX; at += BATCH) {
    const ids = await store.recent(BATCH, at);
    const records = await store.getMany(ids);
    for (const r of records) {
      if (!r) continue;
      if (submitter(r) !== null) submitters = true;
      if (f.state && r.state !== f.state) continue;
      if (f.kind && r.kind !== f.kind) continue;
      if (f.submitter && submitter(r) !== f.submitter) continue;
      const needRequest = r.kernel === null || r.config === null;
      const req: JobRequest | null = needRequest ? await store.request(r.id) : null;
      const k = jobKernel(r, req);
      if (f.kernel && k.name !== f.kernel) continue;
      if (f.mmu && k.mmu !== (f.mmu === 'mmu')) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      if (rows.length === PAGE) return { rows, more: true, submitters };
      rows.push({ record: r, kernel: k.name, mmu: k.mmu });
    }
    if (ids.length < BATCH) break;
  }
  return { rows, more: false, submitters };
}

function select(name: string, label: string, value: string | undefined, options: [string, string][]): Html {
  return html`<label>${label}
<select name="${name}">
<option value="">any</option>
${options.map(([v, text]) => html`<option value="${v}"${v === value ? raw(' selected') : ''}>${text}</option>`)}
</select></label>`;
}

export function jobRowsHtml(rows: readonly JobRow[], showSubmitter: boolean): Html {
  if (rows.length === 0) return html`<tr><td colspan="${showSubmitter ? 8 : 7}">No jobs match.</td></tr>`;
  return html`${rows.map(({ record: r, kernel, mmu }) => html`<tr data-job="${r.id}">
<td><a href="/jobs/${r.id}"><code>${shortId(r.id)}</code></a></td>
<td>${r.kind}</td>
<td>${kernel ?? ''} ${mmuLabel(mmu)}</td>
<td>${badge(r.state)}${r.stage && r.state !== 'passed' ? html` <span class="stage">${r.stage}</span>` : ''}</td>
<td>${counts(r.summary)}</td>
<td>${when(r.timings.queued_at)}</td>
<td>${duration(elapsedMs(r))}</td>
${showSubmitter ? html`<td>${submitter(r) ?? ''}</td>` : ''}
</tr>`)}`;
}

export function jobsPage(f: JobFilters, list: { rows: JobRow[]; more: boolean; submitters: boolean }, kernels: string[]): Html {
  const showSubmitter = list.submitters || f.submitter !== undefined;
  const query = (offset: number) =>
    '?' +
    new URLSearchParams(
      Object.entries({ ...f, offset: offset > 0 ? String(offset) : undefined }).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''),
    ).toString();
  const offset = f.offset ?? 0;
  return html`<h1>Jobs</h1>
<form class="filters" method="get" action="/" aria-label="Filter jobs">
${select('state', 'State', f.state, JOB_STATES.map((s) => [s, s]))}
${select('kind', 'Kind', f.kind, JOB_KINDS.map((k) => [k, k]))}
${select('kernel', 'Kernel', f.kernel, kernels.map((k) => [k, k]))}
${select('mmu', 'MMU', f.mmu, [['nommu', 'no-MMU'], ['mmu', 'MMU']])}
${showSubmitter ? html`<label>Submitter <input name="submitter" value="${f.submitter ?? ''}" size="12"></label>` : ''}
<button type="submit">Filter</button>
</form>
<div class="scroll">
<table class="jobs" data-live="jobs">
<caption class="sr-only">Jobs, newest first</caption>
<thead><tr><th scope="col">Job</th><th scope="col">Kind</th><th scope="col">Kernel</th><th scope="col">State</th><th scope="col">Results</th><th scope="col">Queued</th><th scope="col">Elapsed</th>${showSubmitter ? html`<th scope="col">Submitter</th>` : ''}</tr></thead>
<tbody id="job-rows">
${jobRowsHtml(list.rows, showSubmitter)}
</tbody>
</table>
</div>
<p class="pager">${offset > 0 ? html`<a href="${query(Math.max(0, offset - PAGE))}">Newer</a>` : ''} ${list.more ? html`<a href="${query(offset + PAGE)}">Older</a>` : ''}</p>
<p class="note">JSON: <a href="/v1/jobs">/v1/jobs</a></p>`;
}
