/** The queue: jobs waiting and running, and the workers that take them, with where they run. */
import type { JobRecord } from '@nommu-ci/shared';
import { badge, duration, elapsedMs, shortId, when } from '../format.js';
import { html, type Html } from '../html.js';

export interface QueueView {
  counts: Record<string, number>;
  running: { record: JobRecord; worker: string | null }[];
  waiting: JobRecord[];
  workers: { name: string; addr: string; age: string; idle: string }[];
}

function jobLink(r: JobRecord): Html {
  return html`<a href="/jobs/${r.id}"><code>${shortId(r.id)}</code></a>`;
}

export function queuePage(v: QueueView): Html {
  return html`<h1>Queue</h1>
<p>${v.counts.active ?? 0} running, ${(v.counts.waiting ?? 0) + (v.counts.prioritized ?? 0)} waiting${v.counts.delayed ? `, ${v.counts.delayed} delayed (retries)` : ''}; ${v.workers.length} worker connection${v.workers.length === 1 ? '' : 's'}.</p>
<section aria-labelledby="running-h"><h2 id="running-h">Running</h2>
<div class="scroll"><table>
<thead><tr><th scope="col">Job</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Worker</th><th scope="col">Elapsed</th></tr></thead>
<tbody>${
    v.running.length
      ? v.running.map(({ record: r, worker }) => html`<tr><td>${jobLink(r)}</td><td>${r.kind}</td><td>${badge(r.state)}${r.stage ? html` <span class="stage">${r.stage}</span>` : ''}</td><td>${worker ?? ''}</td><td>${duration(elapsedMs(r))}</td></tr>`)
      : html`<tr><td colspan="5">Nothing is running.</td></tr>`
  }</tbody></table></div></section>
<section aria-labelledby="waiting-h"><h2 id="waiting-h">Waiting</h2>
<div class="scroll"><table>
<thead><tr><th scope="col">Job</th><th scope="col">Kind</th><th scope="col">Queued</th></tr></thead>
<tbody>${
    v.waiting.length
      ? v.waiting.map((r) => html`<tr><td>${jobLink(r)}</td><td>${r.kind}</td><td>${when(r.timings.queued_at)}</td></tr>`)
      : html`<tr><td colspan="3">Nothing is waiting.</td></tr>`
  }</tbody></table></div></section>
<section aria-labelledby="workers-h"><h2 id="workers-h">Workers</h2>
<div class="scroll"><table>
<thead><tr><th scope="col">Name (host:pid)</th><th scope="col">Address</th><th scope="col">Connected for</th><th scope="col">Idle</th></tr></thead>
<tbody>${
    v.workers.length
      ? v.workers.map((w) => html`<tr><td>${w.name}</td><td>${w.addr}</td><td>${w.age}</td><td>${w.idle}</td></tr>`)
      : html`<tr><td colspan="4">No worker is connected: jobs wait until one starts.</td></tr>`
  }</tbody></table></div></section>`;
}
