/**
 * Webhook delivery: when a run with a `callback_url` ends, its JSON report is POSTed there, signed
 * with HMAC-SHA256 over the exact body bytes (`X-Nommu-CI-Signature: sha256=<hex>`, the secret from
 * NOMMU_CI_WEBHOOK_SECRET), as GitHub signs its webhooks. A delivery is a BullMQ job: a failed POST
 * (network error, timeout, non-2xx) throws, and BullMQ retries it with exponential backoff; the
 * run's `webhook` field tells how it went.
 */
import { createHmac } from 'node:crypto';
import type { Job } from 'bullmq';
import { jsonReport, loadCells, SIGNATURE_HEADER, webhookAllowed, type JobStore, type RunStore } from '@nommu-ci/shared';
import type { WebhookJobData } from './processor.js';

export interface WebhookDeps {
  store: JobStore;
  runs: RunStore;
  /** HMAC key; without one deliveries are refused (an unsigned report could be forged). */
  secret: string | undefined;
  /** For links in the report: where the API answers. */
  baseUrl: string;
  timeoutMs?: number;
  log?: (msg: string) => void;
}

export function sign(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function createWebhookProcessor(deps: WebhookDeps) {
  return async (job: Job<WebhookJobData>): Promise<void> => {
    const run = await deps.runs.get(job.data.run);
    if (!run?.options.callback_url) return;
    const attempt = job.attemptsMade + 1;
    const last = attempt >= (job.opts.attempts ?? 1);
    const record = async (state: 'pending' | 'delivered' | 'failed', status: number | null, error: string | null) =>
      deps.runs.update(run.id, { webhook: { state, attempts: attempt, status, last_error: error } });
    if (!webhookAllowed(run.options.callback_url)) {
      await record('failed', null, 'callback_url not allowed by NOMMU_CI_WEBHOOK_ALLOW');
      return;
    }
    if (!deps.secret) {
      await record('failed', null, 'NOMMU_CI_WEBHOOK_SECRET is not set: reports are not sent unsigned');
      return;
    }
    const cells = await loadCells(deps.store, run);
    const body = JSON.stringify(jsonReport(run, cells, { baseUrl: deps.baseUrl }));
    let status: number | null = null;
    try {
      const res = await fetch(run.options.callback_url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'nommu-ci-webhook/1',
          [SIGNATURE_HEADER]: sign(deps.secret, body),
          'X-Nommu-CI-Event': 'run.finished',
          'X-Nommu-CI-Delivery': `${job.id}-${attempt}`,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) throw new Error(`callback answered HTTP ${res.status}`);
    } catch (e) {
      const msg = (e as Error).message;
      deps.log?.(`run ${run.id}: webhook attempt ${attempt} failed: ${msg}`);
      await record(last ? 'failed' : 'pending', status, msg);
      throw e;
    }
    await record('delivered', status, null);
  };
}
