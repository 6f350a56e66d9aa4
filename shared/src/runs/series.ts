/**
 * From a parsed mbox to what a run stores and what its jobs get: the series' metadata (subjects,
 * Message-IDs, authors, per-patch hashes) and, for the jobs, an mbox of the first k patches in
 * series order (cover letter and replies dropped), which the patch stage applies in order.
 */
import { createHash } from 'node:crypto';
import type { JobRequest } from '../job.js';
import { threadIds, type ParsedMbox } from '../mbox.js';
import type { RunRecord, RunSeries } from './model.js';

export function runSeries(m: ParsedMbox): RunSeries {
  const { inReplyTo, references } = threadIds(m);
  return {
    cover: m.cover ? { subject: m.cover.subject, rawSubject: m.cover.rawSubject, messageId: m.cover.messageId, from: m.cover.from } : null,
    patches: m.patches.map((p) => ({
      index: p.index,
      total: p.total,
      subject: p.subject,
      rawSubject: p.rawSubject,
      messageId: p.messageId,
      from: p.from,
      files: p.files,
      sha256: createHash('sha256').update(p.diff).digest('hex'),
    })),
    version: m.version,
    inReplyTo,
    references,
  };
}

/** The first `k` patches (all by default) as an mbox the patch stage applies in order. */
export function prefixMbox(m: ParsedMbox, k = m.patches.length): string {
  return m.patches
    .slice(0, k)
    .map((p) =>
      [
        'From nommu-ci Mon Sep 17 00:00:00 2001',
        `From: ${p.from ?? 'unknown <unknown@localhost>'}`,
        `Subject: [PATCH ${p.index}/${p.total}] ${p.subject}`,
        ...(p.messageId ? [`Message-ID: <${p.messageId}>`] : []),
        '',
        '---',
        p.diff.replace(/\n$/, ''),
        '',
      ].join('\n'),
    )
    .join('\n');
}

/** The resolved KUnit job request of one cell of a run. */
export function cellRequest(run: Pick<RunRecord, 'kernel' | 'options'>, mmu: boolean, patch: string | undefined): JobRequest {
  const o = run.options;
  return {
    kind: 'kunit',
    kernel: run.kernel,
    mmu,
    ...(patch !== undefined ? { patch } : {}),
    ...(o.kunitconfig !== undefined ? { kunitconfig: o.kunitconfig } : {}),
    ...(o.kconfig_add ? { kconfig_add: o.kconfig_add } : {}),
    ...(o.filter_glob ? { filter_glob: o.filter_glob } : {}),
    ...(o.timeout_s ? { timeout_s: o.timeout_s } : {}),
    // Every cell, base included, with the same gcov build: the verdict compares like with like.
    ...(o.coverage ? { coverage: true } : {}),
    // The base half is the same for every series: measured before, it is taken, not run again.
    ...(patch === undefined && !o.fresh_base ? { reuse_base_result: true } : {}),
  };
}

/**
 * BullMQ options of a cell job: those POST /v1/jobs jobs get from the API queue's defaults (a flow
 * does not apply queue defaults), and a failed-for-good child does not block its run.
 */
export function cellJobOptions(jobId: string) {
  return {
    jobId,
    attempts: Number(process.env.NOMMU_CI_ATTEMPTS ?? 3),
    backoff: { type: 'exponential' as const, delay: 5000 },
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 5000 },
    ignoreDependencyOnFailure: true,
  };
}
