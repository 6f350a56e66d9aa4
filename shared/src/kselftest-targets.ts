/**
 * What kselftests a kernel tree offers: the targets (tools/testing/selftests/Makefile's
 * TARGETS) and, per target, its test programs, read from the target's Makefile.
 *
 * The Makefiles are *read*, not run: listing must be cheap (GET /v1/kselftests) and must not
 * execute a tree's code outside the sandbox (mm's Makefile alone runs compiler probes). The
 * reader joins continuation lines, collects every assignment (=, :=, ?=, +=) of the test
 * variables and of plain variables they reference (`$(DESTRUCTIVE_TESTS)`), and takes both
 * branches of every conditional, so the list can hold a test an architecture branch leaves out
 * (mm's pkey tests on arm64); the build is what decides in the end, and a listed test that does
 * not build for x86_64 is reported skipped with make's reason.
 *
 * Kinds, after lib.mk: `prog` TEST_GEN_PROGS and `custom` TEST_CUSTOM_PROGS (compiled, run by
 * `make run_tests`: the default selection), `script` TEST_PROGS (run by default, but need a shell,
 * which our rootfs does not have yet: reported skipped), `extended` TEST_GEN_PROGS_EXTENDED and
 * `file` TEST_GEN_FILES (compiled helpers that kselftest runs from scripts, often with arguments;
 * ours only run when a job names them, without arguments).
 *
 * no-MMU: a heuristic, by reading the test's C source (see nommuBlocker and MMU_FEATURES, which
 * says what real no-MMU runs showed): kselftest_harness.h tests (the harness forks each TEST)
 * and MAP_FIXED, except the programs the runs showed end on a precise skip of their own first
 * (RUN_ANYWAY). Everything else runs, and a program that needs an MMU says so by failing or
 * skipping itself.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { KERNEL_IMAGES_DIR } from './paths.js';

export const SELFTESTS_DIR = 'tools/testing/selftests';

/**
 * Our own kselftest-style targets, offered with every tree's: target name -> its directory in
 * this repository. A job that names one gets the directory in its selftests as
 * tools/testing/selftests/<name> (worker/src/kselftest/own.ts), so it builds like the tree's own.
 */
export const OWN_TARGETS: Readonly<Record<string, string>> = {
  'nommu-ci/mm': path.join(KERNEL_IMAGES_DIR, 'rootfs/kselftest/mm'),
};

export type TestKind = 'prog' | 'custom' | 'script' | 'extended' | 'file';

export interface KselftestTest {
  name: string;
  kind: TestKind;
  /** Run when a job names only the target (kselftest's own run_tests set). */
  default: boolean;
  /** Null if it can run without an MMU (as far as the heuristic sees), else why not. */
  nommu_blocker: string | null;
}

export interface KselftestTarget {
  name: string;
  /** Per-test timeout from the target's `settings` file (kselftest's default 45 s; 0 = none). */
  timeout_s: number;
  tests: KselftestTest[];
}

/** Target names: relative paths under tools/testing/selftests, never `..`. */
export const TARGET_RE = /^[a-z0-9][a-z0-9_.+-]*(\/[a-z0-9][a-z0-9_.+-]*)*$/i;
/** Test names: one path component. */
export const TEST_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

const VARS: Record<string, TestKind> = {
  TEST_GEN_PROGS: 'prog',
  TEST_CUSTOM_PROGS: 'custom',
  TEST_PROGS: 'script',
  TEST_GEN_PROGS_EXTENDED: 'extended',
  TEST_GEN_FILES: 'file',
};
/** A test listed under several variables gets the first kind in this order. */
const KIND_ORDER: TestKind[] = ['prog', 'custom', 'script', 'extended', 'file'];

/** The targets the tree's selftests Makefile lists (TARGETS += ...), in its order. */
export function listTargets(tree: string): string[] {
  const mk = path.join(tree, SELFTESTS_DIR, 'Makefile');
  if (!existsSync(mk)) return [];
  const vars = makeVariables(readFileSync(mk, 'utf8'));
  const out: string[] = [];
  for (const t of expand(vars, 'TARGETS')) {
    if (TARGET_RE.test(t) && !t.split('/').includes('..') && !out.includes(t) && existsSync(path.join(tree, SELFTESTS_DIR, t, 'Makefile'))) out.push(t);
  }
  return out;
}

/** Logical lines of a Makefile: continuations joined, comments dropped. */
function logicalLines(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    cur += line;
    out.push(cur.replace(/(^|[^\\])#.*$/, '$1'));
    cur = '';
  }
  if (cur) out.push(cur);
  return out;
}

/** Every variable assignment's words, all branches, in order. Recipes (tab lines) are skipped. */
export function makeVariables(text: string): Map<string, string[]> {
  const vars = new Map<string, string[]>();
  for (const l of logicalLines(text)) {
    if (l.startsWith('\t')) continue;
    const m = /^\s*(?:override\s+|export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(\+=|:=|::=|\?=|=)\s*(.*)$/.exec(l);
    if (!m) continue;
    const words = m[3]!.trim().split(/\s+/).filter(Boolean);
    const name = m[1]!;
    vars.set(name, [...(vars.get(name) ?? []), ...words]);
  }
  return vars;
}

/** A variable's words with `$(VAR)`/`${VAR}` references expanded; other make syntax dropped. */
function expand(vars: Map<string, string[]>, name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const out: string[] = [];
  for (const raw of vars.get(name) ?? []) {
    const w = raw.replace(/^\$[({]OUTPUT[)}]\//, '');
    const ref = /^\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]$/.exec(w);
    if (ref) out.push(...expand(vars, ref[1]!, seen));
    else if (!w.includes('$') && !w.includes('%')) out.push(w);
  }
  seen.delete(name);
  return out;
}

function settingsTimeout(dir: string): number {
  try {
    const m = /^timeout=(\d+)\s*$/m.exec(readFileSync(path.join(dir, 'settings'), 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    /* no settings file */
  }
  return 45;
}

/** A target's tests as its Makefile lists them; null if the tree has no such target (nor do we). */
export function readTarget(tree: string, target: string): KselftestTarget | null {
  if (!TARGET_RE.test(target) || target.split('/').includes('..')) return null;
  const own = Object.hasOwn(OWN_TARGETS, target);
  const dir = own ? OWN_TARGETS[target]! : path.join(tree, SELFTESTS_DIR, target);
  const mk = path.join(dir, 'Makefile');
  if (!existsSync(mk)) return null;
  const vars = makeVariables(readFileSync(mk, 'utf8'));
  const kinds = new Map<string, TestKind>();
  for (const kind of KIND_ORDER) {
    const v = Object.keys(VARS).find((k) => VARS[k] === kind)!;
    for (const w of expand(vars, v)) {
      if (TEST_RE.test(w) && !kinds.has(w)) kinds.set(w, kind);
    }
  }
  const tests: KselftestTest[] = [...kinds].map(([name, kind]) => ({
    name,
    kind,
    default: kind === 'prog' || kind === 'custom' || kind === 'script',
    // Ours are written for both kernels and check, at run time, the one they run on.
    nommu_blocker: own && kind !== 'script' ? null : nommuBlocker(dir, name, kind),
  }));
  return { name: target, timeout_s: settingsTimeout(dir), tests };
}

/** Every target with its tests, the tree's then ours (GET /v1/kselftests). */
export function readTargets(tree: string): KselftestTarget[] {
  return [...listTargets(tree), ...Object.keys(OWN_TARGETS)]
    .map((t) => readTarget(tree, t))
    .filter((t): t is KselftestTarget => t !== null);
}

/**
 * Features of a test's source that keep it from running without an MMU, in the order checked;
 * the first match is the reason. Matched on the C source without its comments (a comment that
 * named mprotect() kept a threaded test that passes on no-MMU from running).
 *
 * Checked against real runs (bench/kselftest-counts.ts --ignore-heuristic: every compiled
 * program of timers, mm, futex/functional and exec run on the no-MMU kernel, 7.2.12 + our
 * series, 30 s per program): all 20 kselftest_harness.h programs that built failed
 * (futex/functional's 13; mm's memory-failure, merge, guard-regions, mdwe_test, process_madv,
 * prctl_thp_disable, hmm-tests), and so did both MAP_FIXED ones. The other features the
 * heuristic used to skip on (fork, mprotect, madvise, mremap, mlock, userfaultfd, pagemap, huge
 * pages) did not predict the outcome: of the 38 such programs that built, 7 passed
 * (mrelease_test, uffd-unit-tests, skew_consistency: fork; gup_longterm: mprotect; gup_test:
 * madvise; on-fault-limit: mlock; thuge-gen: huge pages), 20 skipped themselves with a precise
 * reason (no huge pages, no THP, no userfaultfd...) and 11 failed (cow, map_populate,
 * clocksource-switch, soft-dirty, mlock2-tests, madv_populate, hugetlb-read-hwpoison,
 * write_to_hugetlbfs, mremap_dontunmap, mkdirty, uffd-stress). So those run and report for
 * themselves.
 *
 * Checked again on 2026-12-04 (series nommu@6c8dd5eb8fc9; the figures, program by program, in
 * shared/fixtures/kselftest-nommu-heuristic.json): every program the two features block, in mm,
 * proc, exec, clone3 and futex/functional, run anyway. Of the 23 harness programs that built, 22
 * failed (each TEST's fork() fails) and one, mm/pfnmap, skipped itself in its own main() before
 * the harness runs ("Cannot find ram target in '/proc/iomem'"). Of the 7 MAP_FIXED programs, 4
 * failed on the refused MAP_FIXED (map_fixed_noreplace, soft-dirty, va_high_addr_switch,
 * proc-self-map-files-002) and 3 skipped themselves with a precise reason before mapping anything
 * fixed (mremap_test: no /proc/sys/vm/mmap_min_addr; mseal_test: sealing not supported;
 * pagemap_ioctl: no userfaultfd). No source feature tells those 4 from the others (soft-dirty and
 * va_high_addr_switch have skip paths of their own too, and failed), so they are named in
 * RUN_ANYWAY: a program's own skip reason is truer than ours, and it says when a kernel gains
 * what it needs. Not mremap_test: it prints a plan of 26 before it skips, and a plan left
 * unfinished counts as 26 crashed tests in the job's summary, failing a job that only skipped.
 * timers has no program either feature blocks.
 */
const MMU_FEATURES: [RegExp, string][] = [
  [/#include\s+["<](\.\.\/)*kselftest_harness\.h[">]/, 'kselftest_harness.h forks for every test'],
  [/\bMAP_FIXED(_NOREPLACE)?\b/, 'maps at fixed addresses (MAP_FIXED)'],
];

/** "target/program": blocked by MMU_FEATURES, yet measured to run to a precise skip of its own (see above). */
const RUN_ANYWAY: ReadonlySet<string> = new Set(['mm/pfnmap', 'mm/mseal_test', 'mm/pagemap_ioctl']);

/** Why a test cannot run on no-MMU, or null (heuristic; see the module comment). `dir` is the target's directory. */
export function nommuBlocker(dir: string, name: string, kind: TestKind): string | null {
  if (kind === 'script') return "shell script: the rootfs's shell is busybox hush, not the bash these are written for";
  const at = dir.lastIndexOf(`${SELFTESTS_DIR}/`);
  if (at >= 0 && RUN_ANYWAY.has(`${dir.slice(at + SELFTESTS_DIR.length + 1)}/${name}`)) return null;
  const sources = [`${name}.c`, `${name}.S`].map((f) => path.join(dir, f)).filter((f) => existsSync(f));
  if (sources.length === 0) {
    // Built from other sources (pkey tests' _64 suffix, custom rules): judge by the stem if any.
    const stem = name.replace(/_(32|64)$/, '');
    if (stem !== name && existsSync(path.join(dir, `${stem}.c`))) return nommuBlocker(dir, stem, kind);
    return null;
  }
  let text = '';
  for (const f of sources) {
    try {
      if (statSync(f).size < 4 * 1024 * 1024) text += readFileSync(f, 'utf8');
    } catch {
      /* unreadable: judge by the rest */
    }
  }
  const code = withoutComments(text);
  for (const [re, why] of MMU_FEATURES) if (re.test(code)) return why;
  return null;
}

/** C source with its comments blanked; string and character literals kept (they hold paths). */
export function withoutComments(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const next = src[i + 1];
    if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 2;
      out += ' ';
    } else if (c === '/' && next === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Directory names under tools/testing/selftests that hold a Makefile but are not in TARGETS. */
export function unlistedTargets(tree: string): string[] {
  const root = path.join(tree, SELFTESTS_DIR);
  const listed = new Set(listTargets(tree));
  try {
    return readdirSync(root).filter((d) => !listed.has(d) && existsSync(path.join(root, d, 'Makefile')));
  } catch {
    return [];
  }
}
