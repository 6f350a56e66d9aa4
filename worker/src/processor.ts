/**
 * One job, start to end: source -> patch -> config -> build -> boot/test, each stage in its
 * module under stages/, the job kind's part (Kconfig, boot arguments, console reader, a
 * kselftest rootfs) in kinds.ts. This file only drives them and keeps the JobRecord, the
 * events and the tap stream in the store up to date.
 *
 * Outcomes:
 *  - a job-level failure (StageError: patch, config, build, boot, test; or the job timeout) is the
 *    job's final result: state failed, the stage named, not retried;
 *  - cancel (DELETE, CANCEL_CHANNEL) kills the sandbox: state canceled;
 *  - anything else (Redis, disk, a bug) is infrastructure: stage infra (a full disk: the stage
 *    that hit it), and the error is rethrown so BullMQ retries the job; the last attempt leaves
 *    state error.
 * Artifacts are stored whatever happened; the job's directory is removed at the end.
 */
import { closeSync, existsSync, lstatSync, openSync, readFileSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  CACHE_DIR,
  defaultMmu,
  emptySummary,
  FINAL_STATES,
  loadSeries,
  type ArtifactName,
  type JobEvent,
  type JobRecord,
  type JobRequest,
  type JobState,
  type KernelInfo,
  type Progress,
  type QueueJobData,
  type Stage,
  type JobStore,
} from '@nommu-ci/shared';
import { InfraError, isNoSpace, JobAborted, StageError, throwIfAborted } from './errors.js';
import { removeTree } from './exec.js';
import { ownDir, ownerDead } from './jobdirs.js';
import { JOBS_DIR } from './paths.js';
import { boot } from './stages/boot.js';
import { baseDir, build, collectBases, copyBase, ensureBase, ownedDir, type BaseSpec } from './stages/build.js';
import { affectsConfig, configure, readDotConfig, TIME_TRAVEL_OPTION, type DotConfig } from './stages/config.js';
import { planKind } from './kinds.js';
import { bootAll, type BootPlan } from './stages/boots.js';
import { runKunit, runsSerially } from './kunit/job.js';
import { BuildCounter, expectedObjects, ProgressReporter, recordObjects, SuiteCounter } from './progress.js';
import { applyPatches, jobPatches } from './stages/patch.js';
import { makeView, prepareSpare, pickKernel, seriesLabel, seriesTree } from './stages/source.js';
import { captureCoverage, makeGcdaDir, NoCoverage } from './coverage/collect.js';
import { COVERAGE_MAKE_VARS, coverageFragment, coverageSeries } from './coverage/kernel.js';

export const DEFAULT_TIMEOUT_S = Number(process.env.NOMMU_CI_DEFAULT_TIMEOUT_S ?? 1800);

export interface ProcessorDeps {
  store: JobStore;
  /** A connection for the few reads the store has no method for (the previous tap stream's end). */
  redis: Redis;
  /** Running jobs by id; the cancel subscriber aborts them. */
  running: Map<string, AbortController>;
  log?: (msg: string) => void;
  jobsDir?: string;
  /** Keep job directories (debugging). */
  keepJobDirs?: boolean;
}

export type Processor = (job: Job<QueueJobData>) => Promise<void>;

export function createProcessor(deps: ProcessorDeps): Processor {
  return async (job) => {
    const id = job.data.id;
    const record = await deps.store.get(id);
    if (!record) {
      deps.log?.(`job ${id}: no record in the store; dropped`);
      return;
    }
    if (FINAL_STATES.has(record.state)) return; // canceled while queued, or already finished
    const request = await deps.store.request(id);
    if (!request) throw new Error(`job ${id}: request missing from the store`);
    // Attempts are numbered consecutively per job (the tap streams chain tap:1, tap:2, ...). A
    // worker killed mid-job leaves its attempt's stream open: end it as "retry" before starting.
    const attempt = Math.max(record.attempt + 1, 1);
    if (record.attempt >= 1) await endOpenTap(deps, id, record.attempt, true, record.stage);
    const run = new JobRun(deps, job, record, request, attempt);
    await run.execute();
  };
}

/** Ends an attempt's tap stream unless it was ended; a lost attempt's names the stage its record was last in. */
async function endOpenTap(deps: Pick<ProcessorDeps, 'store' | 'redis'>, id: string, attempt: number, retry: boolean, stage: string | null): Promise<void> {
  const last = (await deps.redis.xrevrange(deps.store.tapKey(id, attempt), '+', '-', 'COUNT', 1)) as [string, string[]][];
  const fields = last[0]?.[1] ?? [];
  if (!fields.includes('eof')) await deps.store.endTap(id, attempt, retry, stage);
}

/**
 * Ends a job BullMQ failed without our processor finishing it (lost more often than
 * maxStalledCount allows: BullMQ fails it as the next worker takes it, without running it) as
 * finish() ends a last attempt: state error at the stage it was in, `why` in its message, its tap
 * stream and events closed. Nothing happens to a job whose record is final. Says whether it ended it.
 */
export async function endLostJob(deps: Pick<ProcessorDeps, 'store' | 'redis'>, id: string, why: string): Promise<boolean> {
  const { store } = deps;
  const record = await store.get(id);
  if (!record || FINAL_STATES.has(record.state)) return false;
  const stage = record.stage ?? 'infra';
  const message = `lost: ${why}`;
  const timings = { ...record.timings, finished_at: new Date().toISOString() };
  await store.update(id, { state: 'error', stage, message, timings, progress: null });
  await store.appendEvent(id, { type: 'state', state: 'error', stage, message });
  await endOpenTap(deps, id, Math.max(1, record.attempt), false, null);
  await store.endEvents(id);
  return true;
}

class JobRun {
  private readonly id: string;
  private readonly dir: string;
  private readonly ctl = new AbortController();
  private state: JobState = 'queued';
  private stage: Stage | null = null;
  private stageStart = 0;
  private readonly timings: JobRecord['timings'];
  private readonly deadline: number;
  private readonly timeoutS: number;
  private readonly logs: Record<ArtifactName, string>;
  private configText: string | null = null;
  /** The .config being produced, kept as the `config` artifact even when the job fails. */
  private configFile: string | null = null;
  /** The tree whose spare view this job used up: made again once the job is over. */
  private spareFor: string | null = null;

  constructor(
    private readonly deps: ProcessorDeps,
    private readonly job: Job<QueueJobData>,
    record: JobRecord,
    private readonly request: JobRequest,
    private readonly attempt: number,
  ) {
    this.id = record.id;
    this.dir = ownDir(deps.jobsDir ?? JOBS_DIR, this.id);
    this.timeoutS = request.timeout_s ?? DEFAULT_TIMEOUT_S;
    this.deadline = Date.now() + this.timeoutS * 1000;
    this.timings = { queued_at: record.timings?.queued_at ?? new Date().toISOString(), started_at: new Date().toISOString(), stages: {} };
    const logs = path.join(this.dir, 'logs');
    this.logs = {
      'build.log': path.join(logs, 'build.log'),
      'console.log': path.join(logs, 'console.log'),
      'patch.log': path.join(logs, 'patch.log'),
      config: path.join(logs, 'config'),
      'coverage.info': path.join(this.dir, 'coverage', 'coverage.info'),
    };
  }

  private get signal(): AbortSignal {
    return this.ctl.signal;
  }

  private async event(e: JobEvent): Promise<void> {
    await this.deps.store.appendEvent(this.id, e);
  }

  private readonly reporter = new ProgressReporter((p) => this.deps.store.update(this.id, { progress: p }).then(() => (p ? this.event({ type: 'progress', ...p }) : undefined)));

  private progress(p: Progress): void {
    this.reporter.set(p);
  }

  private flushProgress(): Promise<void> {
    return this.reporter.flush();
  }

  /** Accounts the time of the stage being left and enters `stage`. */
  private account(): void {
    if (this.stage && this.stageStart) {
      const s = this.stage;
      this.timings.stages[s] = (this.timings.stages[s] ?? 0) + (Date.now() - this.stageStart);
    }
    this.stageStart = Date.now();
  }

  private async enter(stage: Stage, state?: JobState, message: string | null = null): Promise<void> {
    if (stage === this.stage && (!state || state === this.state)) return;
    this.account();
    this.stage = stage;
    if (state) this.state = state;
    await this.deps.store.update(this.id, { state: this.state, stage, message, timings: this.timings });
    await this.event({ type: 'state', state: this.state, stage, message });
  }

  async execute(): Promise<void> {
    const { store, running } = this.deps;
    running.set(this.id, this.ctl);
    const timer = setTimeout(
      () => this.ctl.abort(new JobAborted('timeout', `job timed out after ${this.timeoutS} s`)),
      this.timeoutS * 1000,
    );
    let final = true;
    let rethrow: unknown = null;
    try {
      await this.removeLostAttempts();
      await store.addWorkDir(this.id, this.dir);
      await removeTree(this.dir);
      ownedDir(path.join(this.dir, 'tmp'));
      ownedDir(path.join(this.dir, 'logs'));
      await store.update(this.id, {
        attempt: this.attempt,
        state: 'building',
        stage: 'source',
        message: null,
        summary: emptySummary(),
        timings: this.timings,
        config: null,
      });
      this.state = 'building';
      this.stage = 'source';
      this.stageStart = Date.now();
      await this.event({ type: 'state', state: 'building', stage: 'source', message: this.attempt > 1 ? `attempt ${this.attempt}` : null });
      if (await store.cancelRequested(this.id)) this.ctl.abort(new JobAborted('cancel'));
      await this.pipeline();
    } catch (e) {
      try {
        ({ final, rethrow } = await this.fail(e));
      } catch (e2) {
        // The store itself is failing: nothing more to record; BullMQ retries.
        final = false;
        rethrow = e2;
      }
    } finally {
      clearTimeout(timer);
      running.delete(this.id);
    }
    try {
      await this.finish(final);
    } catch (e) {
      rethrow ??= e;
    }
    if (!this.deps.keepJobDirs) {
      await removeTree(this.dir).catch(() => undefined);
      await store.dropWorkDir(this.id, this.dir).catch(() => undefined);
    }
    if (this.spareFor) prepareSpare(this.spareFor);
    void collectBases().catch(() => undefined);
    if (rethrow) throw rethrow;
  }

  /**
   * Removes the directories of earlier attempts whose worker died on this host: the next worker
   * on the same cache would remove them when it starts, but one on another cache never would.
   */
  private async removeLostAttempts(): Promise<void> {
    for (const d of await this.deps.store.workDirs(this.id)) {
      if (d === this.dir || !ownerDead(path.basename(d))) continue;
      await removeTree(d);
      await this.deps.store.dropWorkDir(this.id, d);
      this.deps.log?.(`job ${this.id}: removed ${d}, left by a lost attempt's worker`);
    }
  }

  private async pipeline(): Promise<void> {
    const request = this.request;
    const sig = this.signal;
    // source
    const kernel = pickKernel(request.kernel);
    const series = loadSeries(kernel.seriesDir);
    const mmu = request.mmu ?? defaultMmu(series);
    const info: KernelInfo = { name: kernel.name, version: kernel.version, series: !mmu && series ? seriesLabel(series) : null };
    await this.deps.store.update(this.id, { kernel: info });
    if (!mmu && !series) {
      throw new StageError('config', `no-MMU kernel requested (mmu: false) but kernel "${kernel.name}" has no no-MMU series (${kernel.seriesDir}/series)`);
    }
    const plain = mmu ? kernel.path : await seriesTree(kernel, series!, sig);
    // A coverage kernel is built from its own tree (the coverage series on top), so neither its
    // tree nor its base builds are an ordinary job's.
    const cov = request.coverage ? coverageSeries() : null;
    const tree = cov ? await seriesTree({ name: mmu ? `${kernel.name}-mmu` : path.basename(plain), path: plain, version: kernel.version }, cov, sig) : plain;
    const viewDir = path.join(this.dir, 'src');
    const tmpDir = path.join(this.dir, 'tmp');
    const patched = request.patch !== undefined;
    const touched: string[] = [];
    // The patch is split and its paths checked before the view is made: the view opens only
    // the directories the patch touches to the sandbox.
    const patches = patched ? jobPatches(request.patch!) : [];
    for (const p of patches) touched.push(...p.touched);
    if (patched) {
      await makeView(tree, viewDir, touched);
      this.spareFor = tree;
    }
    throwIfAborted(sig);

    // patch
    if (patched) {
      await this.enter('patch');
      const fd = openSync(this.logs['patch.log'], 'a');
      try {
        await applyPatches(patches, {
          viewDir,
          tmpDir,
          signal: sig,
          timeoutMs: this.deadline - Date.now(),
          log: (t) => writeSync(fd, t),
          name: `${this.id}-patch`,
        });
      } finally {
        closeSync(fd);
      }
    }

    // config + build: the trusted base first, then (with a patch) the job's own build on top
    await this.enter('config');
    const kind = planKind(request, tree, mmu);
    const fragment = cov ? coverageFragment(kind.fragment, tree) : kind.fragment;
    const treeLabel = `${kernel.name}-${info.series ? info.series.replace('@', '-') : 'mmu'}${cov ? `-coverage-${cov.hash}` : ''}`;
    const gcovDir = cov ? path.join(this.dir, 'gcov') : undefined;
    if (gcovDir) makeGcdaDir(gcovDir);
    const spec: BaseSpec = { label: treeLabel, tree, fragment };
    const buildLog = openSync(this.logs['build.log'], 'a');
    let kernelDir: string;
    let dot: DotConfig;
    let plan: BootPlan;
    try {
      // Build progress: objects compiled, of those the last full build of this config compiled
      // (base builds) or of the C/assembly files the patch touched (patched builds; unknown when a header is).
      let counter = new BuildCounter();
      let expected: number | null = await expectedObjects(this.deps.redis, fragment.hash);
      const log = (b: Buffer): void => {
        writeSync(buildLog, b);
        if (this.stage === 'build') this.progress({ stage: 'build', done: counter.push(b), total: expected, unit: 'objects' });
      };
      const common = { tmpDir, signal: sig, deadline: this.deadline, log, makeVars: cov ? COVERAGE_MAKE_VARS : undefined };
      this.configFile = path.join(baseDir(spec), '.config');
      const base = await ensureBase(spec, {
        ...common,
        name: `${this.id}-base`,
        onStage: (s) => void this.enter(s).catch(() => undefined),
        onWait: () => log(Buffer.from('=== nommu-ci: waiting for another worker building the same base\n')),
      });
      if (base.built) await recordObjects(this.deps.redis, fragment.hash, counter.count);
      counter = new BuildCounter();
      expected = touched.some((f) => !/\.(c|S)$/.test(f)) ? null : touched.length;
      if (!patched) {
        dot = base.dot;
        kernelDir = base.dir;
        if (!base.built) log(Buffer.from(`=== nommu-ci: base build ${path.basename(base.dir)} is up to date\n`));
        await this.enter('build');
      } else {
        await this.enter('build');
        const jobBuild = path.join(this.dir, 'build');
        await copyBase(base.dir, jobBuild);
        // kbuild rebuilds what is newer than its object: when the base was built during this
        // job (after the patch was applied), the patched files must be made newer again.
        touchPatched(viewDir, touched);
        await this.enter('config');
        this.configFile = path.join(jobBuild, '.config');
        const own = { ...common, srcDir: viewDir, buildDir: jobBuild, trusted: false, name: `${this.id}-build` };
        log(Buffer.from(`=== nommu-ci: patched build (copy of ${path.basename(base.dir)}, read-only ccache)\n`));
        if (affectsConfig(touched)) {
          dot = await configure({ ...own, fragment });
        } else {
          log(Buffer.from('=== nommu-ci: the patch touches no Kconfig input; the base .config stands\n'));
          dot = readDotConfig(this.configFile);
        }
        await this.enter('build');
        await build(own);
        await this.flushProgress();
        kernelDir = jobBuild;
      }
      plan = await kind.prepare({
        srcDir: patched ? viewDir : tree,
        cacheKey: patched ? null : `${treeLabel}-${kernel.version}`,
        jobDir: this.dir,
        tmpDir,
        signal: sig,
        deadline: this.deadline,
        log,
        name: `${this.id}-prepare`,
      });
    } finally {
      closeSync(buildLog);
    }
    this.configText = dot.text;
    await this.deps.store.update(this.id, { config: { hash: dot.hash, mmu: dot.mmu } });

    // boot, then test once KTAP flows
    await this.enter('boot', 'booting');
    let running: Promise<void> = Promise.resolve();
    const appendTap = (lines: string[]): Promise<void> => this.deps.store.appendTap(this.id, this.attempt, lines);
    const bootWith = (p: BootPlan, n: number) =>
      boot({
        kernelDir,
        tmpDir,
        consoleLog: this.logs['console.log'],
        ...p,
        signal: sig,
        deadline: this.deadline,
        gcovDir,
        name: `${this.id}-boot${n > 1 ? `-${n}` : ''}`,
        sink: {
          appendTap: (lines) => {
            suites.tap(lines);
            return appendTap(lines);
          },
          event: (e) => {
            suites.event(e);
            return this.event(e);
          },
        },
        onKtap: () => {
          if (n === 1) running = this.enter('test', 'running');
        },
      });
    const kunit = request.kind === 'kunit' && !runsSerially(request) ? request : null;
    const progress = (done: number, total: number): void => this.progress({ stage: 'test', done, total, unit: 'suites' });
    const suites = new SuiteCounter(progress);
    const { tests, summary, notes, last: outcome, info: howRun } = kunit
      ? await runKunit({
          request: kunit,
          jobId: this.id,
          redis: this.deps.redis,
          kernelLabel: `${treeLabel}-${kernel.version}`,
          configHash: dot.hash,
          timeTravel: dot.options.get(TIME_TRAVEL_OPTION) === 'y',
          patched,
          kernelDir,
          tmpDir,
          consoleLog: this.logs['console.log'],
          signal: sig,
          deadline: this.deadline,
          sink: { appendTap, event: (e) => this.event(e) },
          onKtap: () => void (running = this.enter('test', 'running')),
          onProgress: progress,
          log: (m) => this.deps.log?.(`job ${this.id}: ${m}`),
          gcovDir,
        })
      : await bootAll(plan, bootWith, appendTap);
    await this.flushProgress();
    await running;
    await this.deps.store.setResults(this.id, tests);
    await this.deps.store.update(this.id, { summary });
    this.account();
    const problems: string[] = [];
    if (summary.failed > 0 || summary.crashed > 0) problems.push(`${summary.failed} failed, ${summary.crashed} crashed`);
    problems.push(...notes);
    if (outcome.problem) problems.push(outcome.problem);
    else if (!outcome.result.complete) problems.push('KTAP output incomplete');
    // UML writes its coverage when it exits: a kernel that crashed or was killed wrote none.
    const died = outcome.problem !== null;
    const coverage = gcovDir
      ? await this.collectCoverage({
          kernelDir,
          srcDir: patched ? viewDir : tree,
          gcovDir,
          tmpDir,
          none: died && !kunit && notes.length === 0 ? "the kernel did not exit, and UML writes its coverage only when it exits" : null,
          partial: died || summary.crashed > 0 || notes.length > 0,
        })
      : null;
    if (problems.length > 0) {
      this.state = 'failed';
      this.stage = 'test';
      const msg = [...problems, ...(coverage ? [coverage] : [])].join('; ');
      await this.deps.store.update(this.id, { state: 'failed', stage: 'test', message: msg, timings: this.timings });
      await this.event({ type: 'state', state: 'failed', stage: 'test', message: msg });
    } else {
      const msg = [`${summary.passed} passed, ${summary.skipped} skipped`, ...(howRun ?? []), ...(coverage ? [coverage] : [])].join('; ');
      this.state = 'passed';
      this.stage = null;
      await this.deps.store.update(this.id, { state: 'passed', stage: null, message: msg, timings: this.timings });
      await this.event({ type: 'state', state: 'passed', stage: null, message: msg });
    }
  }

  /**
   * Turns the .gcda files the boots wrote into the job's tracefile, totals and HTML report; says
   * what it found, for the job's message. No coverage (every kernel died, lcov failed) is said
   * there and recorded as `coverage: null`; the tests' result stands.
   */
  private async collectCoverage(o: { kernelDir: string; srcDir: string; gcovDir: string; tmpDir: string; none: string | null; partial: boolean }): Promise<string> {
    if (o.none) {
      await this.deps.store.update(this.id, { coverage: null });
      return `no coverage: ${o.none}`;
    }
    const start = Date.now();
    const outDir = path.dirname(this.logs['coverage.info']);
    ownedDir(outDir);
    const fd = openSync(this.logs['build.log'], 'a');
    try {
      const c = await captureCoverage({ ...o, gcdaDir: o.gcovDir, outDir, signal: this.signal, deadline: this.deadline, name: `${this.id}-coverage`, log: (b) => writeSync(fd, b) });
      await this.deps.store.putCoverageReport(this.id, c.html);
      await this.deps.store.update(this.id, { coverage: c.totals });
      const { lines_hit: hit, lines_found: found, files } = c.totals;
      const pct = found > 0 ? ((100 * hit) / found).toFixed(1) : '0.0';
      return `coverage: ${hit} of ${found} lines executed (${pct}%) in ${files} files${o.partial ? ' (a kernel that crashed or was killed wrote no coverage: its tests are not counted)' : ''}${c.htmlError ? `; no HTML report: ${c.htmlError}` : ''}`;
    } catch (e) {
      if (!(e instanceof NoCoverage)) throw e;
      await this.deps.store.update(this.id, { coverage: null });
      return `no coverage: ${e.message}`;
    } finally {
      closeSync(fd);
      this.timings.stages.coverage = Date.now() - start;
      this.stageStart = Date.now();
    }
  }

  /** Records a failure; says whether the job is over and what to rethrow to BullMQ. */
  private async fail(e: unknown): Promise<{ final: boolean; rethrow: unknown }> {
    this.account();
    let state: JobState;
    let stage: Stage | null = this.stage;
    let message: string;
    let final = true;
    let rethrow: unknown = null;
    if (e instanceof StageError) {
      if (e.config !== undefined) this.configText = e.config;
      state = 'failed';
      stage = e.stage;
      message = e.message;
    } else if (e instanceof JobAborted && e.why === 'cancel') {
      state = 'canceled';
      message = `canceled${stage ? ` during ${stage}` : ''}`;
    } else if (e instanceof JobAborted && e.why === 'timeout') {
      state = 'failed';
      message = `job timed out after ${this.timeoutS} s${stage ? ` (during ${stage})` : ''}`;
    } else {
      const maxAttempts = this.job.opts.attempts ?? 1;
      final = this.job.attemptsMade + 1 >= maxAttempts;
      const why = e instanceof JobAborted ? 'worker shut down' : isNoSpace(e) ? `the cache disk is full (${CACHE_DIR}): ${(e as Error).message}` : e instanceof Error ? e.message : String(e);
      state = final ? 'error' : 'queued';
      // A full disk is named at the stage that hit it: the reader learns where, and that it was not the patch.
      stage = e instanceof InfraError ? e.stage : isNoSpace(e) && stage ? stage : 'infra';
      message = final ? `infrastructure error: ${why}` : `infrastructure error, will be retried: ${why}`;
      rethrow = e instanceof Error ? e : new Error(String(e));
      this.deps.log?.(`job ${this.id} attempt ${this.attempt}: ${message}`);
    }
    this.state = state;
    this.stage = stage;
    await this.deps.store.update(this.id, { state, stage, message, timings: this.timings });
    await this.event({ type: 'state', state, stage, message });
    return { final, rethrow };
  }

  private async finish(final: boolean): Promise<void> {
    const { store } = this.deps;
    // A progress write still pending (a job that failed mid-build) goes before the streams end.
    await this.flushProgress();
    if (this.configText !== null) writeFileSync(this.logs.config, this.configText);
    else if (this.configFile && existsSync(this.configFile)) writeFileSync(this.logs.config, readFileSync(this.configFile));
    for (const [name, file] of Object.entries(this.logs) as [ArtifactName, string][]) {
      if (existsSync(file)) await store.putArtifact(this.id, name, readFileSync(file));
    }
    if (final) this.timings.finished_at = new Date().toISOString();
    await store.update(this.id, { timings: this.timings });
    await store.endTap(this.id, this.attempt, !final, this.stage === 'infra' ? null : this.stage);
    if (final) await store.endEvents(this.id);
  }
}

/** Sets the mtime of the files a patch wrote (new inodes in the view, never pristine ones) to now. */
function touchPatched(viewDir: string, files: readonly string[]): void {
  const now = new Date();
  for (const f of files) {
    const p = path.join(viewDir, f);
    try {
      const st = lstatSync(p);
      if (st.isFile() && st.nlink === 1) utimesSync(p, now, now);
    } catch {
      // deleted or renamed away by the patch
    }
  }
}
