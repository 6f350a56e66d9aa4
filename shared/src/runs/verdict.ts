/**
 * The verdict of a run, a pure function of its cells' job records, results and build logs:
 * what the series changed, per kernel (no-MMU, MMU), against the same kernel without it.
 *
 *  - per test (leaf of the KUnit tree, `suite.case[.param]`): new failure, new crash, fixed,
 *    still failing, missing (ran on base, not with the series), new test;
 *  - per kernel: build (or config) breakage with the compiler's first error lines and file:line,
 *    boot failure; a series that breaks only the no-MMU build is called out;
 *  - a series that does not apply: which patch, file and hunk.
 */
import type { JobRecord } from '../job.js';
import type { TestNode, TestStatus } from '../result.js';
import type { CellData } from './model.js';

export type ChangeKind = 'new-failure' | 'new-crash' | 'fixed' | 'still-failing' | 'missing' | 'new-test';
/** Kinds that make a run fail (a new test counts only when it does not pass). */
export const REGRESSION_KINDS: ReadonlySet<ChangeKind> = new Set(['new-failure', 'new-crash', 'missing']);

export interface TestChange {
  /** `suite.case` (parameterized cases: `suite.case.param`). */
  path: string;
  kind: ChangeKind;
  base: TestStatus | null;
  series: TestStatus | null;
  reason?: string;
  /** The first diagnostic lines of the failing side (KUnit's "Expected ... but ..."). */
  diagnostics: string[];
  /** True for a new test that does not pass. */
  regression: boolean;
}

export interface SourceLocation {
  file: string;
  line: number;
  column: number | null;
  message: string;
}

export interface BuildBreakage {
  stage: 'config' | 'build';
  /** The compiler's (or make's) first error lines, as printed. */
  errors: string[];
  locations: SourceLocation[];
}

export interface ApplyFailure {
  patch: number | null;
  total: number | null;
  subject: string | null;
  file: string | null;
  line: number | null;
  hunk: string | null;
  message: string;
}

export interface CellSummary {
  job: string;
  state: JobRecord['state'] | 'missing';
  stage: JobRecord['stage'];
  message: string | null;
  summary: JobRecord['summary'] | null;
  kernel: JobRecord['kernel'];
  config: JobRecord['config'];
  /** Milliseconds per stage, from the job's timings. */
  stages: Record<string, number>;
  started_at: string | null;
  finished_at: string | null;
}

export type KernelOutcome = 'ok' | 'regression' | 'base-broken' | 'error';

export interface KernelVerdict {
  mmu: boolean;
  /** "no-MMU" or "MMU". */
  label: string;
  outcome: KernelOutcome;
  base: CellSummary;
  series: CellSummary;
  /** The series does not apply (same on both kernels; repeated here for per-kernel readers). */
  apply: ApplyFailure | null;
  /** The series breaks the config or build of this kernel (the base builds). */
  build: BuildBreakage | null;
  /** The base itself does not build: nothing to compare. */
  baseBuild: BuildBreakage | null;
  /** The series kernel built but printed no KTAP / died (the base booted). */
  boot: string | null;
  tests: TestChange[];
  counts: Record<ChangeKind, number>;
}

export interface Verdict {
  outcome: 'pass' | 'regression' | 'error';
  /** One line: what a bot's subject or a check's description says. */
  headline: string;
  kernels: KernelVerdict[];
  apply: ApplyFailure | null;
  /** The series breaks the no-MMU build while the MMU build of the same series is fine. */
  breaksOnlyNoMmu: boolean;
  regressions: number;
}

const LABEL = (mmu: boolean) => (mmu ? 'MMU' : 'no-MMU');

export function kernelLabel(mmu: boolean): string {
  return LABEL(mmu);
}

/** Leaves of a result tree by dotted path. */
export function flattenTests(tests: readonly TestNode[]): Map<string, TestNode> {
  const out = new Map<string, TestNode>();
  const visit = (t: TestNode, prefix: string): void => {
    const p = prefix ? `${prefix}.${t.name}` : t.name;
    if (t.children.length === 0) {
      out.set(p, t);
      return;
    }
    t.children.forEach((c) => visit(c, p));
  };
  tests.forEach((t) => visit(t, ''));
  return out;
}

const failing = (s: TestStatus | null | undefined) => s === 'fail' || s === 'crash';
const diag = (t: TestNode | undefined) => (t ? t.diagnostics.filter((d) => d.trim() !== '').slice(0, 8) : []);

export function compareTests(base: readonly TestNode[], series: readonly TestNode[]): TestChange[] {
  const b = flattenTests(base);
  const s = flattenTests(series);
  const changes: TestChange[] = [];
  const add = (path: string, kind: ChangeKind, bt: TestNode | undefined, st: TestNode | undefined, regression: boolean) =>
    changes.push({
      path,
      kind,
      base: bt?.status ?? null,
      series: st?.status ?? null,
      ...((st ?? bt)?.reason ? { reason: (st ?? bt)!.reason } : {}),
      diagnostics: diag(failing(st?.status) ? st : bt),
      regression,
    });
  for (const [path, bt] of b) {
    const st = s.get(path);
    if (!st) add(path, 'missing', bt, undefined, true);
    else if (!failing(bt.status) && st.status === 'fail') add(path, 'new-failure', bt, st, true);
    else if (!failing(bt.status) && st.status === 'crash') add(path, 'new-crash', bt, st, true);
    else if (failing(bt.status) && failing(st.status)) add(path, 'still-failing', bt, st, false);
    else if (failing(bt.status) && !failing(st.status)) add(path, 'fixed', bt, st, false);
  }
  for (const [path, st] of s) if (!b.has(path)) add(path, 'new-test', undefined, st, failing(st.status));
  const order: ChangeKind[] = ['new-crash', 'new-failure', 'missing', 'new-test', 'still-failing', 'fixed'];
  return changes.sort((x, y) => order.indexOf(x.kind) - order.indexOf(y.kind) || x.path.localeCompare(y.path));
}

const SRC_PREFIX = /^(?:\/src\/|\.\.\/|\.\/)/;
const COMPILER_ERROR = /^(\S+?):(\d+):(?:(\d+):)? (?:fatal )?error: (.*)$/;
const LINKER_ERROR = /^(?:ld: )?(\S+?\.[chS]):(\d+):\(\.[\w.]+\+0x[0-9a-f]+\): (.*)$/;
const ERRORISH = /(\berror\b:|undefined reference|multiple definition|No rule to make target|\*\*\* )/;

/** file:line of compiler and linker errors, paths relative to the tree. */
export function errorLocations(lines: readonly string[]): SourceLocation[] {
  const out: SourceLocation[] = [];
  const seen = new Set<string>();
  for (const raw of lines) {
    const l = raw.replace(/^>>\s*/, '').trim();
    let m = COMPILER_ERROR.exec(l);
    let loc: SourceLocation | null = null;
    if (m) loc = { file: m[1]!.replace(SRC_PREFIX, ''), line: Number(m[2]), column: m[3] ? Number(m[3]) : null, message: m[4]! };
    else if ((m = LINKER_ERROR.exec(l))) loc = { file: m[1]!.replace(SRC_PREFIX, ''), line: Number(m[2]), column: null, message: m[3]! };
    if (!loc || /^(scripts|Makefile)/.test(loc.file) || loc.file.includes('Makefile')) continue;
    const k = `${loc.file}:${loc.line}:${loc.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(loc);
  }
  return out;
}

/**
 * The first errors of a build log with their context, as a developer would quote them: the
 * "In function" line before each, the error, and gcc's source excerpt after it.
 */
export function firstBuildErrors(log: string, max = 3): string[] {
  const lines = log.split('\n');
  const out: string[] = [];
  let errors = 0;
  for (let i = 0; i < lines.length && errors < max; i++) {
    const l = lines[i]!;
    if (!/: (?:fatal )?error: |undefined reference to|multiple definition of/.test(l)) continue;
    errors++;
    const prev = lines[i - 1];
    if (prev && /: In function|In file included from|: note: |^ld: .*in function/.test(prev) && out[out.length - 1] !== prev) out.push(prev);
    out.push(l);
    for (let j = i + 1; j < lines.length && j <= i + 4 && /^\s+(\d+ )?\|/.test(lines[j]!); j++) out.push(lines[j]!);
  }
  return out.map((l) => l.replace(/\/src\//g, '')).slice(0, 30);
}

function breakage(rec: JobRecord, buildLog: string | null): BuildBreakage {
  const fromMessage = (rec.message ?? '')
    .split('\n')
    .filter((l) => !/^build failed \(|^make olddefconfig failed \(/.test(l) && l.trim() !== '');
  const fromLog = buildLog ? firstBuildErrors(buildLog) : [];
  const errors = (fromLog.length > 0 ? fromLog : fromMessage.filter((l) => ERRORISH.test(l))).slice(0, 20);
  const shown = errors.length > 0 ? errors : fromMessage.slice(0, 10);
  return {
    stage: rec.stage === 'config' ? 'config' : 'build',
    errors: shown.map((l) => l.replace(/\/src\//g, '')),
    locations: errorLocations([...fromLog, ...fromMessage]),
  };
}

/** Reads the patch stage's message: `patch 2/3 "subject" does not apply: ... failing hunk: file @@ ... @@`. */
export function parseApplyFailure(message: string): ApplyFailure {
  const head = /^patch (\d+)\/(\d+) "(.*)" (?:does not apply|refused)/m.exec(message) ?? /^patch (\d+)\/?(\d+)? "(.*)":/m.exec(message);
  const failed = /error: patch failed: (.+):(\d+)$/m.exec(message);
  const hunk = /^failing hunk: (\S+) (@@ .*)$/m.exec(message);
  const noFile = /error: (\S+): No such file or directory/m.exec(message);
  return {
    patch: head ? Number(head[1]) : null,
    total: head?.[2] ? Number(head[2]) : null,
    subject: head ? head[3]! : null,
    file: hunk?.[1] ?? failed?.[1] ?? noFile?.[1] ?? null,
    line: failed ? Number(failed[2]) : null,
    hunk: hunk?.[2] ?? null,
    message: message.trim(),
  };
}

export function summarizeCell(d: CellData | undefined): CellSummary {
  const rec = d?.record ?? null;
  return {
    job: d?.cell.job ?? '',
    state: rec?.state ?? 'missing',
    stage: rec?.stage ?? null,
    message: rec?.message ?? null,
    summary: rec?.summary ?? null,
    kernel: rec?.kernel ?? null,
    config: rec?.config ?? null,
    stages: rec?.timings?.stages ?? {},
    started_at: rec?.timings?.started_at ?? null,
    finished_at: rec?.timings?.finished_at ?? null,
  };
}

const isBuildStage = (r: JobRecord | null) => r?.state === 'failed' && (r.stage === 'build' || r.stage === 'config');
const isInfra = (r: JobRecord | null) => !r || r.state === 'error' || r.state === 'canceled' || r.stage === 'infra';
const booted = (d: CellData) => d.results !== null && d.results.length > 0;

function kernelVerdict(mmu: boolean, base: CellData | undefined, series: CellData | undefined): KernelVerdict {
  const counts: Record<ChangeKind, number> = { 'new-failure': 0, 'new-crash': 0, fixed: 0, 'still-failing': 0, missing: 0, 'new-test': 0 };
  const kv: KernelVerdict = {
    mmu,
    label: LABEL(mmu),
    outcome: 'ok',
    base: summarizeCell(base),
    series: summarizeCell(series),
    apply: null,
    build: null,
    baseBuild: null,
    boot: null,
    tests: [],
    counts,
  };
  const b = base?.record ?? null;
  const s = series?.record ?? null;
  if (s?.state === 'failed' && s.stage === 'patch') {
    kv.apply = parseApplyFailure(s.message ?? '');
    kv.outcome = 'regression';
    return kv;
  }
  if (isBuildStage(b)) kv.baseBuild = breakage(b!, base!.buildLog);
  if (isBuildStage(s)) {
    if (kv.baseBuild) {
      kv.outcome = 'base-broken';
      return kv;
    }
    kv.build = breakage(s!, series!.buildLog);
    kv.outcome = isInfra(b) ? 'error' : 'regression';
    if (!isInfra(b)) return kv;
  }
  if (kv.baseBuild) {
    kv.outcome = 'base-broken';
    return kv;
  }
  if (isInfra(b) || isInfra(s)) {
    kv.outcome = 'error';
    if (!base || !series || !booted(base) || !booted(series)) return kv;
  }
  // Boot: the series kernel died before KTAP while the base booted.
  if (s?.state === 'failed' && s.stage === 'boot' && base && booted(base) && !(series && booted(series))) {
    kv.boot = s.message ?? 'the kernel printed no KTAP';
    kv.outcome = 'regression';
  }
  if (b?.state === 'failed' && b.stage === 'boot' && !(base && booted(base)) && kv.outcome === 'ok') {
    kv.outcome = 'base-broken';
    return kv;
  }
  if (base && series && base.results && series.results) {
    kv.tests = compareTests(base.results, series.results);
    for (const t of kv.tests) counts[t.kind]++;
    if (kv.tests.some((t) => t.regression) && kv.outcome === 'ok') kv.outcome = 'regression';
  }
  if (s?.state === 'failed' && s.stage === 'test' && /timed out/.test(s.message ?? '') && !(b?.state === 'failed' && /timed out/.test(b.message ?? ''))) {
    kv.boot ??= s.message;
    if (kv.outcome === 'ok') kv.outcome = 'regression';
  }
  return kv;
}

/** The verdict of a run from its four cells (missing cells make the run an error). */
export function computeVerdict(cells: readonly CellData[]): Verdict {
  const find = (series: boolean, mmu: boolean) =>
    cells.find((c) => 'key' in c.cell && c.cell.series === series && c.cell.mmu === mmu);
  const kernels = [false, true].map((mmu) => kernelVerdict(mmu, find(false, mmu), find(true, mmu)));
  const apply = kernels.find((k) => k.apply)?.apply ?? null;
  const nommu = kernels[0]!;
  const mmuK = kernels[1]!;
  const breaksOnlyNoMmu = nommu.build !== null && mmuK.build === null && mmuK.apply === null && mmuK.series.state !== 'missing' && !isBuildStage(find(true, true)?.record ?? null);
  const regressions =
    (apply ? 1 : 0) +
    kernels.reduce((n, k) => n + (k.apply ? 0 : (k.build ? 1 : 0) + (k.boot ? 1 : 0) + k.tests.filter((t) => t.regression).length), 0);
  const anyError = kernels.some((k) => k.outcome === 'error');
  const outcome: Verdict['outcome'] = regressions > 0 ? 'regression' : anyError ? 'error' : 'pass';
  return { outcome, headline: headline(kernels, apply, breaksOnlyNoMmu, outcome), kernels, apply, breaksOnlyNoMmu, regressions };
}

function headline(kernels: KernelVerdict[], apply: ApplyFailure | null, onlyNoMmu: boolean, outcome: Verdict['outcome']): string {
  if (apply) {
    return `series does not apply: patch ${apply.patch ?? '?'}${apply.total ? `/${apply.total}` : ''}${apply.file ? ` at ${apply.file}${apply.line ? `:${apply.line}` : ''}` : ''}`;
  }
  const parts: string[] = [];
  if (onlyNoMmu) parts.push('breaks only the no-MMU build');
  for (const k of kernels) {
    if (k.build && !onlyNoMmu) parts.push(`breaks the ${k.label} build`);
    if (k.boot) parts.push(`${k.label} kernel does not boot`);
    const f = k.counts['new-failure'] + k.counts['new-crash'] + k.tests.filter((t) => t.kind === 'new-test' && t.regression).length;
    if (f > 0) parts.push(`${f} new test failure${f > 1 ? 's' : ''} on ${k.label}`);
    if (k.counts.missing > 0) parts.push(`${k.counts.missing} test${k.counts.missing > 1 ? 's' : ''} missing on ${k.label}`);
  }
  if (parts.length > 0) return parts.join('; ');
  if (outcome === 'error') {
    const broken = kernels.filter((k) => k.outcome === 'base-broken').map((k) => k.label);
    return `incomplete: ${kernels.filter((k) => k.outcome === 'error').map((k) => `${k.label} cells did not finish`).join('; ')}${broken.length ? `; base ${broken.join(', ')} does not build` : ''}`;
  }
  const broken = kernels.filter((k) => k.outcome === 'base-broken');
  if (broken.length > 0) return `no regressions found (base ${broken.map((k) => k.label).join(', ')} does not build: not compared)`;
  const fixed = kernels.reduce((n, k) => n + k.counts.fixed, 0);
  return `no regressions on no-MMU and MMU${fixed ? `; ${fixed} test${fixed > 1 ? 's' : ''} fixed` : ''}`;
}

/** The run state a finished verdict gives. */
export function runStateOf(v: Verdict): 'passed' | 'failed' | 'error' {
  return v.outcome === 'pass' ? 'passed' : v.outcome === 'regression' ? 'failed' : 'error';
}
