/**
 * A run as readers see it: its cells' data loaded from the job store, and, once every cell has
 * ended, the verdict computed from them (the run processor stores the same verdict when it ends
 * the run; readers need not wait for it).
 */
import { FINAL_STATES } from '../job.js';
import { QUEUE_NAME } from '../queue.js';
import type { JobStore } from '../store.js';
import { RUNS_QUEUE, WEBHOOKS_QUEUE, type Cell, type CellData, type PrefixCell, type RunRecord, type RunState } from './model.js';
import { computeVerdict, runStateOf } from './verdict.js';
import { mergeExtras } from './extras.js';

/** The runs and webhooks queues that go with a jobs queue (tests use their own jobs queue names). */
export function runQueueNames(jobsQueue: string): { runs: string; webhooks: string } {
  if (jobsQueue === QUEUE_NAME) return { runs: RUNS_QUEUE, webhooks: WEBHOOKS_QUEUE };
  return { runs: `${jobsQueue}-runs`, webhooks: `${jobsQueue}-webhooks` };
}

export async function loadCell(store: JobStore, cell: Cell | PrefixCell): Promise<CellData> {
  const record = await store.get(cell.job);
  const results = record ? await store.results(cell.job) : null;
  const needLog = record?.state === 'failed' && (record.stage === 'build' || record.stage === 'config');
  const log = needLog ? await store.artifact(cell.job, 'build.log') : null;
  return { cell, record, results, buildLog: log ? log.toString('utf8') : null };
}

/** The run's cells, each with its extra cell's results added (extras.ts). */
export async function loadCells(store: JobStore, run: RunRecord): Promise<CellData[]> {
  const [cells, extras] = await Promise.all([Promise.all(run.cells.map((c) => loadCell(store, c))), Promise.all((run.extras ?? []).map((c) => loadCell(store, c)))]);
  return mergeExtras(cells, extras);
}

export const cellDone = (d: CellData) => d.record === null || FINAL_STATES.has(d.record.state);

/** The run with its state brought up to date from the cells and, when they have all ended, a verdict. */
export function liveRun(run: RunRecord, cells: readonly CellData[], prefixes: readonly CellData[] = []): RunRecord {
  if (run.verdict && (run.state === 'passed' || run.state === 'failed' || run.state === 'error')) return run;
  const all = [...cells, ...prefixes];
  if (cells.length > 0 && cells.every(cellDone) && !(run.options.per_patch && prefixes.some((p) => !cellDone(p)))) {
    const verdict = run.verdict ?? computeVerdict(cells);
    // per_patch runs wait for the narrowing (the run processor ends them); the verdict is already final
    const narrowing = run.options.per_patch && verdict.outcome === 'regression' && run.blame === null && run.series.patches.length > 1 && !verdict.apply;
    return { ...run, verdict, state: narrowing ? 'running' : runStateOf(verdict) };
  }
  const started = all.some((d) => d.record && d.record.state !== 'queued');
  const state: RunState = started ? 'running' : 'queued';
  return { ...run, state };
}
