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
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CoverageTotals } from '@nommu-ci/shared';
import { InfraError } from '../errors.js';
import { assertSandboxStarted, describeExit, runSandboxed, type Mount } from '../sandbox.js';
import { ownedDir } from '../stages/build.js';

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
  /** lcov's and genhtml's output (appended to build.log). */
  log: (b: Buffer) => void;
}

export interface Captured {
  /** The tracefile, SF paths relative to the tree's root. */
  tracefile: Buffer;
  totals: CoverageTotals;
  /** genhtml's report: path relative to its root -> content. */
  html: Map<string, Buffer>;
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
  if (gcda.length === 0) throw new NoCoverage('no kernel wrote .gcda files (a kernel that crashes or is killed writes none)');
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
  const mounts: Mount[] = [
    { host: o.kernelDir, path: '/build' },
    { host: o.srcDir, path: '/src' },
    { host: o.gcdaDir, path: GCOV_MOUNT },
    { host: o.outDir, path: '/out', rw: true },
  ];
  const run = async (argv: string[], cwd: string): Promise<number> => {
    let tail = '';
    const r = await runSandboxed({
      name: `${o.name}-${path.basename(argv[0]!)}`,
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
  o.log(Buffer.from(`=== nommu-ci: coverage: lcov --capture over ${gcda.length} .gcda files\n`));
  const capture = await run(['lcov', '--quiet', '--capture', '--directory', GCOV_MOUNT, '--base-directory', '/src', '--output-file', '/out/raw.info'], '/src');
  const raw = path.join(o.outDir, 'raw.info');
  if (!existsSync(raw)) throw new InfraError('test', 'lcov --capture exited 0 but wrote no tracefile');
  const { text, totals } = treeRelative(readFileSync(raw, 'utf8'), '/src/');
  if (totals.files === 0) throw new NoCoverage('the tracefile names no file of the tree');
  const tracefile = Buffer.from(text);
  writeFileSync(path.join(o.outDir, 'coverage.info'), tracefile);
  const htmlDir = path.join(o.outDir, 'html');
  mkdirSync(htmlDir);
  const html = await run(['genhtml', '--quiet', '--output-directory', '/out/html', '/out/coverage.info'], '/src');
  const files = new Map<string, Buffer>();
  for (const f of filesUnder(htmlDir, '')) files.set(f, readFileSync(path.join(htmlDir, f)));
  return { tracefile, totals, html: files, ms: { capture, html } };
}

/**
 * Keeps the tracefile's records of files under `root` (the tree; not /build's generated headers
 * nor /usr's), their SF relative to it, and sums their LF and LH records.
 */
export function treeRelative(info: string, root: string): { text: string; totals: CoverageTotals } {
  const out: string[] = [];
  const totals: CoverageTotals = { lines_found: 0, lines_hit: 0, files: 0 };
  let record: string[] | null = null;
  let keep = false;
  let lf = 0;
  let lh = 0;
  for (const line of info.split('\n')) {
    if (line.startsWith('SF:')) {
      const sf = path.posix.normalize(line.slice(3));
      keep = sf.startsWith(root);
      record = [keep ? `SF:${sf.slice(root.length)}` : line];
      lf = lh = 0;
      continue;
    }
    if (!record) {
      if (line.startsWith('TN:')) out.push(line);
      continue;
    }
    if (line.startsWith('LF:')) lf = Number(line.slice(3));
    else if (line.startsWith('LH:')) lh = Number(line.slice(3));
    if (line === 'end_of_record') {
      if (keep) {
        out.push(...record, line);
        totals.lines_found += lf;
        totals.lines_hit += lh;
        totals.files++;
      }
      record = null;
      continue;
    }
    record.push(line);
  }
  // Each record follows its test name (TN:), which geninfo writes before every file's record.
  return { text: dropOrphanNames(out).join('\n') + '\n', totals };
}

/** Drops TN: lines whose record was dropped (a TN: followed by another TN: or by nothing). */
function dropOrphanNames(lines: string[]): string[] {
  return lines.filter((l, i) => !l.startsWith('TN:') || (lines[i + 1] !== undefined && !lines[i + 1]!.startsWith('TN:')));
}
