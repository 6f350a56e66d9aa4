/**
 * Queueing a run: its cell jobs are created as ordinary jobs (records in the JobStore, so they are
 * listed under /v1/jobs and followed with the same streams) and queued in one BullMQ flow: a parent
 * job in the runs queue with the four cell jobs as children on the jobs queue. The flow is added
 * atomically, so a run is either entirely queued or not at all; the parent runs when every child
 * has ended (a child that failed for good is ignored, not blocking: ignoreDependencyOnFailure).
 */
import { randomUUID } from 'node:crypto';
import { FlowProducer, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  cellJobOptions,
  cellRequest,
  extraCells,
  extraRequest,
  newJobRecord,
  prefixMbox,
  runQueueNames,
  runSeries,
  type Cell,
  type JobStore,
  type ParsedMbox,
  type QueueJobData,
  type RunRecord,
  type RunStore,
} from '@nommu-ci/shared';

export interface RunSubmitDeps {
  redis: Redis;
  store: JobStore;
  runs: RunStore;
  /** The jobs queue: the cells go there; the runs queue is named after it (runQueueNames). */
  queue: Queue<QueueJobData>;
  flow: FlowProducer;
}

export function makeFlowProducer(queue: Queue<QueueJobData>, redis: Redis): FlowProducer {
  return new FlowProducer({ connection: redis, prefix: queue.opts.prefix });
}

/**
 * Creates the run record and its four cell jobs and queues them as one flow. `input` must be fully
 * validated: this only fails on infrastructure errors, and then leaves nothing queued.
 */
export async function queueRun(
  deps: RunSubmitDeps,
  input: {
    mbox: string;
    parsed: ParsedMbox;
    kernel: string;
    options: RunRecord['options'];
    submittedBy?: string | null;
    /** BullMQ priority of each cell job, in cell order (fair scheduling between tokens). */
    priorities?: number[];
  },
): Promise<RunRecord> {
  const id = randomUUID();
  const cells: Cell[] = [
    { key: 'base-nommu', series: false, mmu: false, job: randomUUID() },
    { key: 'base-mmu', series: false, mmu: true, job: randomUUID() },
    { key: 'series-nommu', series: true, mmu: false, job: randomUUID() },
    { key: 'series-mmu', series: true, mmu: true, job: randomUUID() },
  ];
  const series = runSeries(input.parsed);
  // A series touching mm/ also runs the mm exerciser on both kernels (extras.ts).
  const extras = extraCells(series, randomUUID);
  const run: RunRecord = {
    id,
    state: 'queued',
    created_at: new Date().toISOString(),
    finished_at: null,
    kernel: input.kernel,
    options: input.options,
    series,
    cells,
    ...(extras.length > 0 ? { extras } : {}),
    prefixes: [],
    verdict: null,
    blame: null,
    environment: null,
    webhook: input.options.callback_url ? { state: 'pending', attempts: 0, last_error: null, status: null } : null,
    submitted_by: input.submittedBy ?? null,
  };
  const seriesPatch = prefixMbox(input.parsed);
  await deps.runs.create(run, input.mbox);
  for (const c of cells) {
    await deps.store.create({ ...newJobRecord(c.job, 'kunit'), submitted_by: run.submitted_by ?? null }, cellRequest(run, c.mmu, c.series ? seriesPatch : undefined));
  }
  for (const c of extras) {
    await deps.store.create({ ...newJobRecord(c.job, 'kselftest'), submitted_by: run.submitted_by ?? null }, extraRequest(run, c, c.series ? seriesPatch : undefined));
  }
  const names = runQueueNames(deps.queue.name);
  try {
    await deps.flow.add({
      name: 'run',
      queueName: names.runs,
      data: { id },
      opts: { jobId: id, attempts: 5, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } },
      children: [
        ...cells.map((c, i) => {
          const priority = input.priorities?.[i];
          return { name: 'kunit', queueName: deps.queue.name, data: { id: c.job }, opts: { ...cellJobOptions(c.job), ...(priority ? { priority } : {}) } };
        }),
        // After the KUnit cells, at the last cell's priority: the same submitter's work.
        ...extras.map((c) => {
          const priority = input.priorities?.[cells.length - 1];
          return { name: 'kselftest', queueName: deps.queue.name, data: { id: c.job }, opts: { ...cellJobOptions(c.job), ...(priority ? { priority } : {}) } };
        }),
      ],
    });
  } catch (err) {
    const message = `could not queue: ${(err as Error).message}`;
    for (const c of [...cells, ...extras]) await deps.store.update(c.job, { state: 'error', stage: 'infra', message }).catch(() => undefined);
    await deps.runs.remove(id).catch(() => undefined);
    throw err;
  }
  return run;
}
