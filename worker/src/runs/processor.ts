/**
 * Run completion. A run is a BullMQ flow: a parent job in the runs queue whose children are the
 * run's cell jobs (see api/src/submit.ts). BullMQ hands the parent to this processor once every
 * child has ended (a child that failed for good is ignored, not blocking). The processor reads the
 * cells from the store, computes the verdict and ends the run; with `per_patch` and a regression,
 * it first bisects: it adds prefix jobs (the first k patches, on the kernel that regressed) as
 * further children and waits for them (moveToWaitingChildren), round after round, then names the
 * first bad patch. A run with a
 * callback URL gets its report delivered by a job in the webhooks queue (webhook.ts).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { WaitingChildrenError, type Job, type Queue } from 'bullmq';
import {
  blameFrom,
  cellJobOptions,
  cellRequest,
  computeVerdict,
  loadCell,
  loadCells,
  narrowTargets,
  nextPrefixes,
  newJobRecord,
  parseMbox,
  prefixMbox,
  runCoverage,
  runStateOf,
  COVERAGE_ARTIFACT,
  FINAL_STATES,
  ANONYMOUS,
  type Blame,
  type FairShare,
  type CellData,
  type JobStore,
  type PrefixCell,
  type QueueJobData,
  type RunCoverage,
  type RunRecord,
  type RunStore,
  type SeriesTrace,
} from '@nommu-ci/shared';

export interface RunJobData {
  id: string;
}

export interface WebhookJobData {
  run: string;
}

export interface RunProcessorDeps {
  store: JobStore;
  runs: RunStore;
  /** The jobs queue: prefix jobs go there, as children of the run's parent job. */
  jobsQueue: Queue<QueueJobData>;
  /** Where deliveries of runs with a callback_url are queued. */
  webhooks: Queue<WebhookJobData>;
  webhookAttempts?: number;
  webhookBackoffMs?: number;
  /** Schedules the narrowing jobs fairly among tokens (shared/src/fair.ts); without it they get no priority. */
  fair?: FairShare;
  log?: (msg: string) => void;
}

let compilerCache: string | null | undefined;
/** `gcc --version`'s first line on this worker host (the builds' compiler). */
export function compilerVersion(): string | null {
  if (compilerCache === undefined) {
    try {
      compilerCache = execFileSync('gcc', ['--version'], { encoding: 'utf8', timeout: 5000 }).split('\n')[0]!.trim() || null;
    } catch {
      compilerCache = null;
    }
  }
  return compilerCache;
}

export function createRunProcessor(deps: RunProcessorDeps) {
  const log = deps.log ?? (() => undefined);
  return async (job: Job<RunJobData>, token?: string): Promise<void> => {
    const id = job.data.id;
    const stored = await deps.runs.get(id);
    if (!stored) {
      log(`run ${id}: no record in the store; dropped`);
      return;
    }
    if (stored.finished_at) return; // already ended (a retried parent)
    // A child that failed for good without recording an end (a crashed worker) counts as an error.
    const cells = (await loadCells(deps.store, stored)).map(endedOrError);
    const verdict = computeVerdict(cells);
    let run: RunRecord = { ...stored, verdict };

    if (run.options.per_patch && verdict.outcome === 'regression' && run.series.patches.length > 1) {
      // Bisect: queue the next prefix jobs as children of this parent and wait for them; BullMQ
      // runs this processor again when they have ended. The state is the prefixes tried so far.
      for (;;) {
        // A retried parent (its worker died after queueing a round) waits for that round first.
        if (token && (await pendingPrefixes(deps, run)) && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
        const next = await queueNextPrefixes(deps, run, cells, job);
        if (next.length === 0) break;
        run = { ...run, prefixes: [...run.prefixes, ...next], state: 'running' };
        await deps.runs.update(id, { prefixes: run.prefixes, verdict, state: 'running' });
        log(`run ${id}: bisecting: ${next.map((p) => `first ${p.patches} on ${p.mmu ? 'MMU' : 'no-MMU'}`).join(', ')}`);
        if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
        if (!token) break; // called outside a Worker (no lock token): cannot wait
      }
      run = { ...run, blame: await blame(deps, run) };
    }
    run = { ...run, coverage: await measureCoverage(deps, run, cells) };
    await endRun(deps, run);
    log(`run ${id}: ${run.verdict!.outcome}: ${run.verdict!.headline}`);
  };
}

async function pendingPrefixes(deps: RunProcessorDeps, run: RunRecord): Promise<boolean> {
  const recs = await Promise.all(run.prefixes.map((p) => deps.store.get(p.job)));
  return recs.some((r) => r !== null && !FINAL_STATES.has(r.state));
}

function endedOrError(d: CellData): CellData {
  if (d.record && FINAL_STATES.has(d.record.state)) return d;
  if (!d.record) return d;
  return { ...d, record: { ...d.record, state: 'error', stage: 'infra', message: `the job ended without a result (last state ${d.record.state})` } };
}

async function queueNextPrefixes(deps: RunProcessorDeps, run: RunRecord, cells: CellData[], parent: Job<RunJobData>): Promise<PrefixCell[]> {
  // BullMQ re-enters this processor only when every child has ended; one that failed for good
  // without recording its end counts as an error (the bisection stops there: blame null).
  const tried = (await Promise.all(run.prefixes.map((p) => loadCell(deps.store, p)))).map(endedOrError);
  const want = nextPrefixes(
    narrowTargets(run.verdict!),
    run.series.patches.length,
    tried.map((d) => ({ patches: (d.cell as PrefixCell).patches, mmu: d.cell.mmu, data: d })),
    cells,
  );
  if (want.length === 0) return [];
  const mbox = await deps.runs.patch(run.id);
  if (mbox === null) return [];
  const parsed = parseMbox(mbox);
  const prefixes: PrefixCell[] = [];
  for (const w of want) {
    const jobId = randomUUID();
    prefixes.push({ patches: w.patches, mmu: w.mmu, job: jobId });
    await deps.store.create({ ...newJobRecord(jobId, 'kunit'), submitted_by: run.submitted_by ?? null }, cellRequest(run, w.mmu, prefixMbox(parsed, w.patches)));
  }
  // The narrowing jobs are the submitter's too: scheduled round-robin with other tokens' jobs.
  const owner = run.submitted_by ?? ANONYMOUS;
  const priorities = deps.fair ? await deps.fair.priorities(owner, prefixes.length) : [];
  // One batch, each a child of the run's parent job.
  await deps.jobsQueue.addBulk(
    prefixes.map((p, i) => ({
      name: 'kunit',
      data: { id: p.job },
      opts: { ...cellJobOptions(p.job), ...(priorities[i] ? { priority: priorities[i] } : {}), parent: { id: parent.id!, queue: parent.queueQualifiedName } },
    })),
  );
  await deps.fair?.track(owner, prefixes.map((p) => p.job));
  return prefixes;
}

async function blame(deps: RunProcessorDeps, run: RunRecord): Promise<Blame[]> {
  const cells = (await loadCells(deps.store, run)).map(endedOrError);
  const prefixData = (await Promise.all(run.prefixes.map((p) => loadCell(deps.store, p)))).map(endedOrError);
  return narrowTargets(run.verdict!).map((t) => {
    const base = cells.find((c) => 'key' in c.cell && !c.cell.series && c.cell.mmu === t.mmu);
    const tried = prefixData.filter((d) => d.cell.mmu === t.mmu).map((d) => ({ patches: (d.cell as PrefixCell).patches, data: d }));
    return blameFrom(t, run.series, tried, base);
  });
}

/** With the coverage option: the series' changed lines against each series job's tracefile. */
async function measureCoverage(deps: RunProcessorDeps, run: RunRecord, cells: readonly CellData[]): Promise<RunCoverage | null> {
  if (!run.options.coverage) return null;
  const mbox = await deps.runs.patch(run.id);
  if (mbox === null) return null;
  const series = cells.filter((d) => 'key' in d.cell && d.cell.series);
  const traces = await Promise.all(
    series.map(async (d): Promise<SeriesTrace> => {
      const at = { mmu: d.cell.mmu, job: d.cell.job };
      const data = await deps.store.artifact(d.cell.job, COVERAGE_ARTIFACT);
      // A series that touches mm/ also ran nommu-ci/mm on this kernel (extras.ts): what it executed
      // counts too. A tracefile may hold several records of one file; they add up when parsed.
      const extras = (run.extras ?? []).filter((e) => e.series && e.mmu === d.cell.mmu);
      const more = await Promise.all(extras.map((e) => deps.store.artifact(e.job, COVERAGE_ARTIFACT)));
      if (data) return { ...at, tracefile: [data, ...more.filter((m) => m !== null)].map((b) => b.toString('utf8')).join('') };
      const r = d.record;
      return { ...at, tracefile: null, missing: r ? `no tracefile: the job ended ${r.state}${r.stage ? ` at ${r.stage}` : ''}` : 'no tracefile: the job has no record' };
    }),
  );
  return runCoverage(mbox, traces);
}

async function endRun(deps: RunProcessorDeps, run: RunRecord): Promise<void> {
  const state = runStateOf(run.verdict!);
  const finished_at = new Date().toISOString();
  await deps.runs.update(run.id, {
    state,
    finished_at,
    verdict: run.verdict,
    blame: run.blame,
    prefixes: run.prefixes,
    coverage: run.coverage ?? null,
    environment: { compiler: compilerVersion() },
  });
  if (run.options.callback_url) {
    await deps.webhooks.add(
      'deliver',
      { run: run.id },
      {
        jobId: `webhook-${run.id}`,
        attempts: deps.webhookAttempts ?? Number(process.env.NOMMU_CI_WEBHOOK_ATTEMPTS ?? 8),
        backoff: { type: 'exponential', delay: deps.webhookBackoffMs ?? 5000 },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 5000 },
      },
    );
  }
}
