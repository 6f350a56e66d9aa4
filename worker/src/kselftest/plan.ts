/**
 * A kselftest job's preparation, between the kernel build and the boot: pick the tests, build
 * them (build.ts), assemble the rootfs (rootfs.ts) and say how to boot it. The processor calls
 * prepareKselftest() and then boots the kernel with `bootArgs` and `mounts` added to the sandbox.
 *
 * Selection, per target of the request: the tests `tests` names for it ("target:name"), else the
 * target's default set (TEST_GEN_PROGS, TEST_CUSTOM_PROGS, TEST_PROGS). Not built and reported
 * `# SKIP` with the reason, inside the KTAP init prints (so they stream and count like any
 * result): scripts (no shell in the rootfs yet), tests that need an MMU on the no-MMU kernel, and
 * programs that do not build (the compiler's first error lines as diagnostics).
 *
 * Per-test timeout: the request's test_timeout_s, else the target's `settings` timeout, where
 * kselftest's 0 ("none") and anything over MAX_TEST_TIMEOUT_S become MAX_TEST_TIMEOUT_S (a
 * target's timeout is meant for its whole run_tests, e.g. mm's 900 s; ours is per program). It
 * stays under the boot stage's idle timeout (NOMMU_CI_BOOT_IDLE_S, 300 s), so a silent test is
 * killed by init, which reports it, before the boot stage gives up on the kernel.
 */
import path from 'node:path';
import { StageError } from '../errors.js';
import type { Mount } from '../sandbox.js';
import { buildTests, type BuildRequest, type Link } from './build.js';
import { BOOT_IDLE_MS } from '../stages/boot.js';
import type { BootPlan } from '../stages/boots.js';
import { kunitReader } from '../stages/console-readers.js';
import { leftover, markDied } from './resume.js';
import { assembleRootfs, buildInit, rootfsBootArgs, ROOTFS_MOUNT, selftestEntries, writePlan, type PlanEntry } from './rootfs.js';
import { readTarget, type KselftestJobRequest, type KselftestTarget, type KselftestTest, type TestNode } from '@nommu-ci/shared';

export { kselftestFragment, kselftestKconfig } from './kconfig.js';

/** Static-pie programs (musl) and busybox for the no-MMU kernel come with the no-MMU userspace work (planKind refuses such jobs before their kernel is built, and this before their programs are). */

export const MAX_TEST_TIMEOUT_S = Number(process.env.NOMMU_CI_KSELFTEST_MAX_TEST_TIMEOUT_S ?? 240);
/**
 * Run on no-MMU even the tests the source heuristic (nommu_blocker) says need an MMU: for checking
 * the heuristic against real runs (bench/kselftest-counts.ts --ignore-heuristic), not for service.
 */
const IGNORE_NOMMU_BLOCKERS = process.env.NOMMU_CI_KSELFTEST_IGNORE_NOMMU_BLOCKERS === '1';

export interface PrepareOptions {
  request: KselftestJobRequest;
  /** Host path of the job's tree (pristine, series-applied, or the patched view). */
  srcDir: string;
  /**
   * The tree is unpatched: a key naming it (e.g. `${kernel.name}-${kernel.version}` plus the series
   * label on no-MMU) under which its programs are cached and shared between jobs. Null for a
   * patched tree: built in the job's directory.
   */
  cacheKey: string | null;
  /** The job's directory: gets rootfs/ and (patched trees) kselftest-build/. */
  jobDir: string;
  tmpDir: string;
  mmu: boolean;
  signal?: AbortSignal;
  deadline?: number;
  /** build.log */
  log: (b: Buffer) => void;
  name: string;
  jobs?: number;
  /** Also run our own test programs (kernel-images/rootfs/init/selftest.c) as target `nommu-ci` first: tests of the runner itself. */
  selftestPrograms?: readonly string[];
  /** Their per-test timeout (default: the request's test_timeout_s, else 10 s). */
  selftestTimeoutS?: number;
}

export interface PreparedKselftest {
  /** Host directory of the rootfs; boot binds it at ROOTFS_MOUNT (see mounts). */
  rootfs: string;
  /** Extra sandbox mounts for the boot: the rootfs, read-write (tests write their working directory). */
  mounts: Mount[];
  /** The kernel command line (replaces the KUnit one). */
  bootArgs: string[];
  /**
   * Tests that will not run (not built, need MMU, scripts), named "target:test", status skip with
   * the reason. Informational: init prints them as `# SKIP` results, so they are in the KTAP and
   * the parsed results already; do not add them again.
   */
  skipped: TestNode[];
  /** Everything init will report, in order. */
  plan: PlanEntry[];
  /**
   * The boot stage's idle timeout must exceed the longest per-test timeout (a test may print
   * nothing until init kills it): pass this as boot()'s idleMs, or the larger of it and the default.
   */
  idleMs: number;
}

function timeoutOf(req: KselftestJobRequest, t: KselftestTarget): number {
  if (req.test_timeout_s !== undefined) return req.test_timeout_s;
  return t.timeout_s === 0 ? MAX_TEST_TIMEOUT_S : Math.min(t.timeout_s, MAX_TEST_TIMEOUT_S);
}

interface Selected {
  target: KselftestTarget;
  tests: KselftestTest[];
}

/** The targets and tests a request names, checked against the tree; bad names fail the job (stage config). */
export function selectTests(req: KselftestJobRequest, tree: string): Selected[] {
  const byTarget = new Map<string, string[]>();
  for (const t of req.targets) byTarget.set(t, []);
  for (const spec of req.tests ?? []) {
    const i = spec.lastIndexOf(':');
    const target = spec.slice(0, i);
    const name = spec.slice(i + 1);
    if (!byTarget.has(target)) byTarget.set(target, []);
    byTarget.get(target)!.push(name);
  }
  const out: Selected[] = [];
  for (const [name, names] of byTarget) {
    const target = readTarget(tree, name);
    if (!target) throw new StageError('config', `kselftest target "${name}" does not exist in this tree (see GET /v1/kselftests)`);
    let tests: KselftestTest[];
    if (names.length === 0) {
      tests = target.tests.filter((t) => t.default);
    } else {
      tests = names.map((n) => {
        const t = target.tests.find((x) => x.name === n);
        if (!t) throw new StageError('config', `kselftest "${name}:${n}": no such test in ${name}'s Makefile (see GET /v1/kselftests)`);
        return t;
      });
    }
    if (tests.length === 0) throw new StageError('config', `kselftest target "${name}" has no tests to run by default; name some with "tests"`);
    out.push({ target, tests });
  }
  return out;
}

export async function prepareKselftest(o: PrepareOptions): Promise<PreparedKselftest> {
  const selected = selectTests(o.request, o.srcDir);
  const link: Link = o.mmu ? 'static' : 'static-pie';
  const init = await buildInit(link, o.signal);

  // What to build, and what is skipped without building.
  const preSkip = new Map<string, { skip: string; details?: string[] }>();
  const requests: BuildRequest[] = [];
  for (const s of selected) {
    const build: string[] = [];
    for (const t of s.tests) {
      if (t.kind === 'script') preSkip.set(`${s.target.name}:${t.name}`, { skip: "shell script (TEST_PROGS): the rootfs's shell is busybox hush, not the bash these are written for" });
      else if (!o.mmu && t.nommu_blocker && !IGNORE_NOMMU_BLOCKERS) preSkip.set(`${s.target.name}:${t.name}`, { skip: `needs an MMU: ${t.nommu_blocker}` });
      else build.push(t.name);
    }
    if (build.length > 0) requests.push({ target: s.target.name, tests: build });
  }
  o.log(Buffer.from(`=== nommu-ci: kselftest: ${requests.map((r) => `${r.target} (${r.tests.length})`).join(', ') || 'nothing to build'}\n`));
  const built = requests.length === 0 ? { outDirs: new Map<string, string>(), built: new Map(), failed: [], root: '' } : await buildTests({
    tree: o.srcDir,
    selection: requests,
    cacheKey: o.cacheKey,
    link,
    workDir: path.join(o.jobDir, 'kselftest-build'),
    tmpDir: o.tmpDir,
    signal: o.signal,
    deadline: o.deadline,
    jobs: o.jobs,
    log: o.log,
    name: o.name,
  });
  const failed = new Map(built.failed.map((f) => [`${f.target}:${f.test}`, f]));

  const plan: PlanEntry[] = [];
  if (o.selftestPrograms && o.selftestPrograms.length > 0) plan.push(...selftestEntries(init, o.selftestPrograms, o.selftestTimeoutS ?? o.request.test_timeout_s ?? 10));
  const skipped: TestNode[] = [];
  for (const s of selected) {
    const timeout_s = timeoutOf(o.request, s.target);
    for (const t of s.tests) {
      const key = `${s.target.name}:${t.name}`;
      const pre = preSkip.get(key);
      const f = failed.get(key);
      if (pre || f) {
        const skip = pre ? pre.skip : f!.reason;
        const details = pre ? (pre.details ?? []) : f!.details;
        plan.push({ target: s.target.name, test: t.name, timeout_s, skip, details });
        skipped.push({ name: key, status: 'skip', reason: skip, diagnostics: details, children: [] });
        continue;
      }
      plan.push({ target: s.target.name, test: t.name, timeout_s, program: path.join(built.outDirs.get(s.target.name)!, t.name) });
    }
  }
  const rootfs = path.join(o.jobDir, 'rootfs');
  assembleRootfs(rootfs, init, plan);
  return {
    rootfs,
    mounts: [{ host: rootfs, path: ROOTFS_MOUNT, rw: true }],
    bootArgs: rootfsBootArgs(),
    skipped,
    plan,
    idleMs: (Math.max(0, ...plan.map((e) => e.timeout_s)) + 60) * 1000,
  };
}

/**
 * How to boot a prepared kselftest run of `entries` (default: its whole plan). After a test
 * kills the kernel, it names that test crashed and boots again for the tests after it.
 */
export function kselftestBootPlan(p: PreparedKselftest, entries: PlanEntry[] = p.plan): BootPlan {
  return {
    args: p.bootArgs,
    mounts: p.mounts,
    reader: kunitReader(),
    idleMs: Math.max(p.idleMs, BOOT_IDLE_MS),
    resume(tests, reason) {
      const left = leftover(entries, tests);
      if (!left) return null;
      const name = `${left.died.target}:${left.died.test}`;
      const marked = markDied(tests, left.died, reason);
      if (left.rest.length === 0) return { tests: marked, next: null, note: `the kernel died in ${name}` };
      writePlan(p.rootfs, left.rest);
      return { tests: marked, next: kselftestBootPlan(p, left.rest), note: `the kernel died in ${name}; booted again for the ${left.rest.length} test(s) after it` };
    },
  };
}
