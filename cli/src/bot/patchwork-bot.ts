/**
 * The patchwork bot: polls a patchwork project for complete series, submits each as a run to
 * nommu-ci (with per_patch up to a series length), and when the run has ended posts a check on
 * every patch (checks.ts) and, if configured, emails the report in reply to the cover letter.
 *
 * Restarts: the run id, each posted check and the email are recorded in Redis (state.ts) as they
 * happen; before posting, the bot also reads the patch's checks from patchwork and skips one it
 * already posted for this run (a bot killed between posting and recording). A pending check is
 * never posted over a success, warning or fail of the same context (NIPA's "never downgraded").
 * Patchwork errors are retried with backoff (patchwork-api.ts); a series whose turn fails is
 * tried again at the next poll.
 */
import type { RunRecord } from '@nommu-ci/shared';
import { ApiError, type Client } from '../client.js';
import { patchChecks, type PatchCheck } from './checks.js';
import type { PatchworkApi, PwSeries } from './patchwork-api.js';
import type { BotState } from './state.js';
import type { Mailer } from './mail.js';

/** Patchwork's URLField (Check.target_url) holds at most 200 characters. */
export const MAX_TARGET_URL = 200;

export interface PatchworkBotOptions {
  pw: PatchworkApi;
  project: string;
  /** The nommu-ci API, with the bot's submit token. */
  api: Client;
  state: BotState;
  /** Where the links in checks point: the service's public URL. */
  publicUrl: string;
  /** Check context (a slug). */
  context: string;
  /** Series up to this many patches are run with per_patch (narrowed to the first bad patch). */
  perPatchMax: number;
  /** Oldest series date looked at, ISO 8601 (stored on the first start). */
  since: string;
  kunitconfig?: string;
  kernel?: string;
  /** Timeout of each job of a run, seconds (the server's default otherwise). */
  timeoutS?: number;
  /** KUnit test globs (suite.case) whose failures are posted as pending, not fail. */
  flaky: string[];
  mailer?: Mailer;
  log: (msg: string) => void;
}

const normId = (s: string | null | undefined) => (s ?? '').trim().replace(/^<|>$/g, '');

export function runLink(publicUrl: string, runId: string): string {
  const url = `${publicUrl.replace(/\/+$/, '')}/v1/runs/${runId}`;
  if (url.length > MAX_TARGET_URL) throw new Error(`--public-url is too long: a run's link would be ${url.length} characters; patchwork keeps ${MAX_TARGET_URL}`);
  return url;
}

export class PatchworkBot {
  private since: string | null = null;

  constructor(private readonly o: PatchworkBotOptions) {
    runLink(o.publicUrl, '00000000-0000-0000-0000-000000000000'); // refuse a too long URL at the start
  }

  /** One pass over the project's series; returns how many series it finished this pass. */
  async pollOnce(): Promise<number> {
    this.since ??= await this.o.state.since(this.o.since);
    const all = await this.o.pw.seriesSince(this.o.project, this.since);
    let finished = 0;
    let open = 0;
    for (const s of all) {
      if (!s.received_all || s.patches.length === 0) continue;
      const st = await this.o.state.series(s.id);
      if (st.done) continue;
      open++;
      try {
        if (await this.handle(s)) finished++;
      } catch (e) {
        const retry = e instanceof ApiError && e.retryAfter ? ` (server asks to retry in ${e.retryAfter} s)` : '';
        this.o.log(`series ${s.id}: ${(e as Error).message}${retry}; will try again`);
      }
    }
    this.o.log(`pass: ${all.length} series since ${this.since}, ${open} open, ${finished} finished now`);
    return finished;
  }

  /** Runs until `signal` aborts, a pass every `intervalMs`. */
  async run(signal: AbortSignal, intervalMs: number): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.pollOnce();
      } catch (e) {
        this.o.log(`poll failed: ${(e as Error).message}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, intervalMs);
        signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
  }

  private async handle(s: PwSeries): Promise<boolean> {
    const st = await this.o.state.series(s.id);
    let runId = st.run;
    if (!runId) {
      // The cover letter first, so the run (and its email report) knows what to reply to.
      const cover = s.cover_letter ? `${await this.o.pw.text(s.cover_letter.mbox)}\n` : '';
      const mbox = cover + (await this.o.pw.text(s.mbox));
      try {
        const res = await this.o.api.call<{ id: string }>('POST', '/v1/runs', {
          patch: mbox,
          per_patch: s.patches.length <= this.o.perPatchMax,
          ...(this.o.kunitconfig !== undefined ? { kunitconfig: this.o.kunitconfig } : {}),
          ...(this.o.kernel ? { kernel: this.o.kernel } : {}),
          ...(this.o.timeoutS ? { timeout_s: this.o.timeoutS } : {}),
        });
        runId = res.id;
      } catch (e) {
        if (e instanceof ApiError && [400, 413, 422].includes(e.status)) {
          // The service refuses the series as it is: say so on every patch and move on.
          const why = `not tested: nommu-ci cannot take this series: ${e.message.replace(/^\d+: /, '')}`;
          await this.post(s, s.patches.map(() => ({ state: 'warning', description: why.slice(0, 250) })), null);
          await this.o.state.done(s.id, `skipped: ${e.message}`);
          this.o.log(`series ${s.id} "${s.name}": skipped: ${e.message}`);
          return true;
        }
        throw e;
      }
      await this.o.state.setRun(s.id, runId);
      this.o.log(`series ${s.id} "${s.name}": run ${runId} queued`);
    }
    const run = await this.o.api.call<RunRecord>('GET', `/v1/runs/${runId}`);
    if (!run.finished_at) return false;
    const checks = this.align(s, run, patchChecks(run, this.o.flaky));
    await this.post(s, checks, runLink(this.o.publicUrl, run.id));
    if (this.o.mailer && !(await this.o.state.series(s.id)).mailed) {
      const report = await this.o.api.call<string>('GET', `/v1/runs/${run.id}/report?format=email`, undefined, true);
      await this.o.mailer.send(report, s.project.list_email);
      await this.o.state.mailed(s.id);
    }
    await this.o.state.done(s.id, `checked: ${run.verdict?.headline ?? run.state}`);
    this.o.log(`series ${s.id} "${s.name}": ${checks.map((c) => c.state).join(' ')}: ${run.verdict?.headline ?? run.state}`);
    return true;
  }

  /** The run's checks in patchwork's patch order, matched by Message-ID (index as fallback). */
  private align(s: PwSeries, run: RunRecord, checks: PatchCheck[]): PatchCheck[] {
    return s.patches.map((p, i) => {
      const j = run.series.patches.findIndex((rp) => normId(rp.messageId) === normId(p.msgid));
      return checks[j >= 0 ? j : i] ?? { state: 'warning', description: 'not tested: nommu-ci did not find this patch in the series it ran' };
    });
  }

  private async post(s: PwSeries, checks: PatchCheck[], targetUrl: string | null): Promise<void> {
    const st = await this.o.state.series(s.id);
    for (const [i, p] of s.patches.entries()) {
      if (st.posted[String(p.id)]) continue;
      const check = checks[i]!;
      const ours = (await this.o.pw.checks(p.id)).filter((c) => c.context === this.o.context);
      if (targetUrl && ours.some((c) => c.target_url === targetUrl && c.state === check.state)) {
        // posted before a restart that came before it was recorded
        await this.o.state.posted(s.id, p.id, check.state);
        continue;
      }
      const latest = ours.sort((a, b) => a.date.localeCompare(b.date)).pop();
      if (check.state === 'pending' && latest && latest.state !== 'pending') {
        this.o.log(`patch ${p.id}: not downgrading its ${latest.state} check to pending`);
        await this.o.state.posted(s.id, p.id, `kept ${latest.state}`);
        continue;
      }
      await this.o.pw.postCheck(p.id, { state: check.state, context: this.o.context, description: check.description, ...(targetUrl ? { target_url: targetUrl } : {}) });
      await this.o.state.posted(s.id, p.id, check.state);
    }
  }
}
