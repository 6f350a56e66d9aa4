/**
 * Collecting a coverage job's line coverage. UML is a host process: libgcov, linked into the
 * `linux` binary, writes one .gcda file per object when the kernel exits. Every boot of the job
 * writes into the job's own directory, not the build directory (shared between jobs, read-only
 * in the sandbox): GCOV_PREFIX=/gcov, GCOV_PREFIX_STRIP=1 turn the object's compiled-in
 * `/build/mm/nommu.gcda` into `/gcov/mm/nommu.gcda`. libgcov merges into an existing .gcda
 * (under a file lock), so sharded KUnit kernels running side by side, and kselftest boots after
 * a crash, add up.
 *
 * A kernel that does not exit writes nothing: UML's panic path ends in abort() (uml_abort()),
 * and a kernel killed at a timeout gets SIGKILL; neither runs the destructors. Their tests'
 * lines are missing from the tracefile.
 *
 * After the tests, lcov's geninfo runs gcov on each .gcda next to its .gcno (a symbolic link
 * into /build), in the sandbox with the tree at /src; the tracefile keeps the files of the tree
 * only, named relative to its root (`mm/nommu.c`), so tracefiles of different trees and jobs
 * compare. genhtml renders it with /src as its working directory.
 *
 * The start-up probe UML forks before the kernel starts (start_up.c: ptrace_child()) leaves with
 * exit(), so it, too, writes .gcda files: the counts of the host-side start-up code up to that
 * fork. A kernel killed later still leaves those files behind, with next to nothing in them; a
 * killed or crashed kernel is therefore told by its boot's outcome, not by missing files.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CoverageTotals } from '@nommu-ci/shared';
import { InfraError } from '../errors.js';
import { assertSandboxStarted, describeExit, runSandboxed, type Mount } from '../sandbox.js';
import { BUILD_JOBS, ownedDir } from '../stages/build.js';

/** Where a boot's .gcda files go inside the sandbox. */
const GCOV_MOUNT = '/gcov';

/** The mount and environment that make a boot write its .gcda files into `dir` (host path). */
export function gcovBoot(dir: string): { mount: Mount; env: Record<string, string> } {
  return { mount: { host: dir, path: GCOV_MOUNT, rw: true }, env: { GCOV_PREFIX: GCOV_MOUNT, GCOV_PREFIX_STRIP: '1' } };
}

/** Makes the job's .gcda directory, writable by the sandbox. */
export function makeGcdaDir(dir: string): void {
  ownedDir(dir);
}

export interface CaptureOptions {
  /** Host directory of the build: its .gcno files, read-only at /build. */
  kernelDir: string;
  /** Host directory of the tree the kernel was built from, read-only at /src. */
  srcDir: string;
  /** Host directory the boots wrote their .gcda files into (gcovBoot). */
  gcdaDir: string;
  /** Host directory, sandbox-writable, for the tracefile and the HTML report. */
  outDir: string;
  tmpDir: string;
  signal?: AbortSignal;
  deadline?: number;
  name: string;
  /** geninfo processes run at once; default: the worker's build parallelism. */
  parallel?: number;
  /** lcov's and genhtml's output (appended to build.log). */
  log: (b: Buffer) => void;
}

export interface Captured {
  /** The tracefile, SF paths relative to the tree's root. */
  tracefile: Buffer;
  totals: CoverageTotals;
  /** genhtml's report: path relative to its root -> content. */
  html: Map<string, Buffer>;
  /** Why there is no HTML report, if there is none. */
  htmlError?: string;
  /** Milliseconds of geninfo and of genhtml. */
  ms: { capture: number; html: number };
}

/** Why no coverage could be collected: said in the job's message, the job itself unaffected. */
export class NoCoverage extends Error {}

/** Relative paths of the files under `dir` whose names end in `ext`. */
function filesUnder(dir: string, ext: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...filesUnder(dir, ext, r));
    else if (e.isFile() && e.name.endsWith(ext)) out.push(r);
  }
  return out;
}

export async function captureCoverage(o: CaptureOptions): Promise<Captured> {
  const gcda = existsSync(o.gcdaDir) ? filesUnder(o.gcdaDir, '.gcda') : [];
  if (gcda.length === 0) throw new NoCoverage('no kernel wrote .gcda files');
  // geninfo wants each .gcno beside its .gcda. The links point into /build, which exists only in
  // the sandbox; the .gcda files themselves are the kernel's output, never followed on the host.
  let linked = 0;
  for (const f of gcda) {
    const gcno = f.replace(/\.gcda$/, '.gcno');
    if (!existsSync(path.join(o.kernelDir, gcno))) continue;
    try {
      symlinkSync(path.posix.join('/build', gcno), path.join(o.gcdaDir, gcno));
      linked++;
    } catch {
      // the kernel left something of that name: that object is not counted
    }
  }
  if (linked === 0) throw new NoCoverage(`none of the ${gcda.length} .gcda files has a .gcno in the build`);
  let runs = 0;
  const mounts: Mount[] = [
    { host: o.kernelDir, path: '/build' },
    { host: o.srcDir, path: '/src' },
    { host: o.gcdaDir, path: GCOV_MOUNT },
    { host: o.outDir, path: '/out', rw: true },
  ];
  const run = async (argv: string[], cwd: string): Promise<number> => {
    const name = `${o.name}-${path.basename(argv[0]!)}-${++runs}`;
    let tail = '';
    const r = await runSandboxed({
      name,
      argv,
      mounts,
      tmpDir: o.tmpDir,
      cwd,
      signal: o.signal,
      timeoutMs: o.deadline !== undefined ? o.deadline - Date.now() : undefined,
      onOutput: (b) => {
        o.log(b);
        tail = (tail + b.toString('utf8')).slice(-2000);
      },
    });
    assertSandboxStarted(r);
    if (r.killed === 'abort') throw o.signal?.reason ?? new Error('aborted');
    if (r.code !== 0 || r.killed) throw new NoCoverage(`${path.basename(argv[0]!)} failed (${describeExit(r)}): ${tail.trim().split('\n').slice(-3).join(' / ')}`);
    return r.ms;
  };
  // geninfo runs gcov once per .gcda, one at a time: the files are split between as many
  // geninfo processes as the worker builds with, largest first, round robin.
  const parts = Math.max(1, Math.min(o.parallel ?? BUILD_JOBS, gcda.length));
  const bySize = gcda.map((f) => ({ f, size: statSync(path.join(o.gcdaDir, f)).size })).sort((a, b) => b.size - a.size);
  const chunks: string[][] = Array.from({ length: parts }, () => []);
  bySize.forEach(({ f }, i) => chunks[i % parts]!.push(path.posix.join(GCOV_MOUNT, f)));
  o.log(Buffer.from(`=== nommu-ci: coverage: geninfo over ${gcda.length} .gcda files in ${parts} processes\n`));
  const start = Date.now();
  await Promise.all(chunks.map((c, i) => run(['geninfo', '--quiet', '--base-directory', '/src', '--output-filename', `/out/raw-${i}.info`, ...c], '/src')));
  const capture = Date.now() - start;
  let raw = '';
  for (let i = 0; i < parts; i++) {
    const f = path.join(o.outDir, `raw-${i}.info`);
    // Written in the sandbox: read only if it is a plain file (a link could point anywhere on the host).
    if (!existsSync(f) || !lstatSync(f).isFile()) throw new InfraError('test', `geninfo exited 0 but wrote no file ${path.basename(f)}`);
    raw += readFileSync(f, 'utf8');
  }
  // A file kbuild generates in the build directory (arch/um/kernel/config.c) is named as if in
  // the tree: it is not the tree's, and genhtml could not read it.
  const { text, totals } = treeRelative(raw, '/src/', (rel) => existsSync(path.join(o.srcDir, rel)));
  if (totals.files === 0) throw new NoCoverage('the tracefile names no file of the tree');
  const tracefile = Buffer.from(text);
  writeFileSync(path.join(o.outDir, 'coverage.info'), tracefile);
  const htmlDir = path.join(o.outDir, 'html');
  ownedDir(htmlDir);
  const files = new Map<string, Buffer>();
  // The tracefile stands without its report: a genhtml failure only costs the HTML.
  let html = 0;
  try {
    html = await run(['genhtml', '--quiet', '--output-directory', '/out/html', '/out/coverage.info'], '/src');
  } catch (e) {
    if (!(e instanceof NoCoverage)) throw e;
    o.log(Buffer.from(`=== nommu-ci: coverage: no HTML report: ${e.message}\n`));
    return { tracefile, totals, html: files, htmlError: e.message, ms: { capture, html } };
  }
  let bytes = 0;
  for (const f of filesUnder(htmlDir, '')) {
    const b = readFileSync(path.join(htmlDir, f));
    files.set(f, b);
    bytes += b.length;
  }
  o.log(
    Buffer.from(
      `=== nommu-ci: coverage: tracefile ${tracefile.length} bytes (${totals.files} files, ${totals.lines_hit} of ${totals.lines_found} lines), ` +
        `HTML report ${files.size} files ${bytes} bytes; geninfo ${capture} ms, genhtml ${html} ms\n`,
    ),
  );
  return { tracefile, totals, html: files, ms: { capture, html } };
}

interface FileRecord {
  /** Function name -> first line. */
  fn: Map<string, number>;
  /** Function name -> calls. */
  fnda: Map<string, number>;
  /** Line -> executions. */
  da: Map<number, number>;
}

/**
 * The tracefile's records of files under `root` (the tree; not /build's generated headers nor
 * /usr's), named relative to it, one record per file: geninfo writes a record for every object
 * that includes a header (include/linux/mm.h: hundreds), and lines are counted once, executions
 * summed. Totals are the merged records' LF and LH.
 */
export function treeRelative(info: string, root: string, inTree: (rel: string) => boolean = () => true): { text: string; totals: CoverageTotals } {
  const files = new Map<string, FileRecord>();
  let cur: FileRecord | null = null;
  for (const line of info.split('\n')) {
    if (line.startsWith('SF:')) {
      const sf = path.posix.normalize(line.slice(3));
      if (!sf.startsWith(root)) {
        cur = null;
        continue;
      }
      const rel = sf.slice(root.length);
      if (!files.has(rel) && !inTree(rel)) {
        cur = null;
        continue;
      }
      cur = files.get(rel) ?? { fn: new Map(), fnda: new Map(), da: new Map() };
      files.set(rel, cur);
      continue;
    }
    if (!cur) continue;
    const colon = line.indexOf(':');
    const [a, b] = splitPair(line.slice(colon + 1));
    switch (line.slice(0, colon)) {
      case 'DA':
        // (a third field, a checksum, only with --checksum)
        cur.da.set(Number(a), (cur.da.get(Number(a)) ?? 0) + parseInt(b, 10));
        break;
      case 'FN':
        if (!cur.fn.has(b)) cur.fn.set(b, Number(a));
        break;
      case 'FNDA':
        cur.fnda.set(b, (cur.fnda.get(b) ?? 0) + Number(a));
        break;
    }
  }
  const out: string[] = [];
  const totals: CoverageTotals = { lines_found: 0, lines_hit: 0, files: 0 };
  for (const [name, r] of files) {
    const lines = [...r.da].sort((x, y) => x[0] - y[0]);
    const hit = lines.filter(([, n]) => n > 0).length;
    out.push('TN:', `SF:${name}`);
    for (const [fn, at] of r.fn) out.push(`FN:${at},${fn}`);
    for (const [fn, n] of r.fnda) out.push(`FNDA:${n},${fn}`);
    out.push(`FNF:${r.fn.size}`, `FNH:${[...r.fnda.values()].filter((n) => n > 0).length}`);
    for (const [l, n] of lines) out.push(`DA:${l},${n}`);
    out.push(`LF:${lines.length}`, `LH:${hit}`, 'end_of_record');
    totals.lines_found += lines.length;
    totals.lines_hit += hit;
    totals.files++;
  }
  return { text: out.join('\n') + '\n', totals };
}

/** "12,name" -> ["12", "name"]; a name may itself hold commas. */
function splitPair(v: string): [string, string] {
  const i = v.indexOf(',');
  return i < 0 ? [v, ''] : [v.slice(0, i), v.slice(i + 1)];
}
