/** Small formatting helpers shared by the pages. */
import type { JobRecord, JobRequest, Summary } from '@nommu-ci/shared';
import { html, type Html } from './html.js';

export { duration } from './duration.js';

/** A timestamp in UTC, machine-readable in `datetime` for scripts and screen readers. */
export function when(iso: string | null | undefined): Html | string {
  if (!iso) return '';
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC')}</time>`;
}

/** Elapsed time of a job: queued to finished, or to now while it runs. */
export function elapsedMs(r: JobRecord, now = Date.now()): number {
  const start = Date.parse(r.timings.queued_at);
  const end = r.timings.finished_at ? Date.parse(r.timings.finished_at) : now;
  return end - start;
}

/** A state as a badge: the word is always there, the colour only repeats it. */
export function badge(state: string, extra = ''): Html {
  return html`<span class="badge s-${state}" data-field="state"${extra ? html` ${extra}` : ''}>${state}</span>`;
}

export function counts(s: Summary | null | undefined): Html {
  if (!s) return html``;
  return html`<span class="counts"><span class="c-pass" data-count="pass">${s.passed} passed</span>${s.failed ? html`, <span class="c-fail" data-count="fail">${s.failed} failed</span>` : ''}${s.crashed ? html`, <span class="c-crash" data-count="crash">${s.crashed} crashed</span>` : ''}${s.skipped ? html`, <span class="c-skip" data-count="skip">${s.skipped} skipped</span>` : ''}</span>`;
}

export const mmuLabel = (mmu: boolean | null | undefined): string => (mmu === true ? 'MMU' : mmu === false ? 'no-MMU' : '');

/** The kernel a job runs on: from its record once it started, else from its resolved request. */
export function jobKernel(r: JobRecord, req: JobRequest | null): { name: string | null; mmu: boolean | null } {
  return { name: r.kernel?.name ?? req?.kernel ?? null, mmu: r.config?.mmu ?? req?.mmu ?? null };
}

/** Who submitted a job, once the service records it (tokens). */
export const submitter = (r: JobRecord): string | null => (r as { submitted_by?: string | null }).submitted_by ?? null;

export const shortId = (id: string): string => id.slice(0, 8);
