/**
 * The sandbox every untrusted step runs in: patch application, olddefconfig, the build (a patch
 * can change a Makefile) and the kernel itself (UML is a host process).
 *
 *   sh (a session of its own; root: joins the job's cgroups; sets its autogroup's nice)
 *     -> nice (below the API) -> prlimit (rlimits) -> setpriv (drop to the sandbox uid)
 *     -> bwrap --unshare-all --die-with-parent (no network, private pid/ipc/uts,
 *        only /usr and a few /etc pieces read-only, the job's own directories at fixed paths)
 *
 * Fixed paths inside: /src (the tree, usually read-only), /build (rw), /tmp (the job's tmp),
 * /ccache (optional), /dev/shm (private tmpfs; UML maps its memory there). Everything is killed
 * at the deadline or when the AbortSignal fires: bwrap by SIGKILL (its pid-1 dies with it, and
 * with it the whole pid namespace) and every pid left in the job's cgroup.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const SANDBOX_UID = Number(process.env.NOMMU_CI_SANDBOX_UID ?? 65534);
export const SANDBOX_GID = Number(process.env.NOMMU_CI_SANDBOX_GID ?? SANDBOX_UID);
/**
 * Builds and kernels run this much below normal CPU priority, so that an API process on the same
 * host answers promptly while both cores compile.
 */
export const SANDBOX_NICE = Number(process.env.NOMMU_CI_SANDBOX_NICE ?? 10);

export interface Mount {
  host: string;
  /** Absolute path inside the sandbox. */
  path: string;
  rw?: boolean;
}

export interface Limits {
  /** Largest file a process may write (RLIMIT_FSIZE). UML's memory file needs more than mem=. */
  fsizeBytes: number;
  nofile: number;
  /** CPU seconds per process (RLIMIT_CPU). */
  cpuSeconds: number;
  /** Processes of the sandbox uid (RLIMIT_NPROC) and of the job's pids cgroup. */
  nproc: number;
  /** Memory cgroup limit (page cache and tmpfs included). */
  memoryBytes: number;
}

const GiB = 1024 ** 3;
export const DEFAULT_LIMITS: Limits = {
  fsizeBytes: Number(process.env.NOMMU_CI_FSIZE ?? 4 * GiB),
  nofile: 4096,
  cpuSeconds: Number(process.env.NOMMU_CI_CPU_S ?? 4 * 3600),
  nproc: Number(process.env.NOMMU_CI_NPROC ?? 2048),
  memoryBytes: Number(process.env.NOMMU_CI_MEMORY ?? 4 * GiB),
};

export interface SandboxOptions {
  argv: string[];
  mounts: Mount[];
  /** Host directory mounted at /tmp (rw). */
  tmpDir: string;
  /** Working directory inside the sandbox. */
  cwd?: string;
  env?: Record<string, string>;
  limits?: Partial<Limits>;
  /** Size of the private /dev/shm tmpfs. */
  shmBytes?: number;
  /** Kill after this many ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** stdout and stderr, merged in order. */
  onOutput?: (chunk: Buffer) => void;
  /**
   * Send stdout and stderr to this host file instead of a pipe, and read them back from it into
   * onOutput as it grows. UML makes its console fds non-blocking and drops what a full pipe
   * refuses (EAGAIN); writes to a file are never refused, so no console line is lost however
   * slowly we read.
   */
  outputFile?: string;
  /** Name for the cgroup (unique per run). */
  name: string;
}

export interface SandboxResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why we killed it, if we did. */
  killed: 'timeout' | 'abort' | null;
  /** The memory cgroup saw an OOM kill. */
  oom: boolean;
  /** Forks the job's pids cgroup refused at its limit (a fork bomb, or a build that needs more). */
  forksRefused: number;
  /** That limit. */
  pidsMax: number;
  /** The sandbox could not be set up (its first words came from bwrap/setpriv/prlimit). */
  setupError: string | null;
  ms: number;
}

const isRoot = (): boolean => process.getuid?.() === 0;
/** Where a cgroup v2-only host mounts its hierarchy (here: v1 controllers, so v1 is used). */
const CGROUP2 = '/sys/fs/cgroup';

/** The read-only host pieces a toolchain needs: /usr (merged-/usr Debian) and a few files of /etc. */
function baseArgs(): string[] {
  const a = ['--ro-bind', '/usr', '/usr'];
  for (const [l, t] of [
    ['/bin', 'usr/bin'],
    ['/sbin', 'usr/sbin'],
    ['/lib', 'usr/lib'],
    ['/lib64', 'usr/lib64'],
  ] as const) {
    a.push('--symlink', t, l);
  }
  for (const f of ['/etc/alternatives', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime']) {
    if (existsSync(f)) a.push('--ro-bind', f, f);
  }
  // Minimal identity files so tools that look up the uid do not complain.
  return a;
}

/** Memory + pids cgroups (v1) for one sandbox run; null where we cannot create them (not root). */
class Cgroup {
  private constructor(private readonly dirs: { memory?: string; pids?: string; unified?: string }) {}

  static create(name: string, limits: Limits): Cgroup | null {
    if (!isRoot()) return null;
    const dirs: { memory?: string; pids?: string; unified?: string } = {};
    const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
    try {
      if (existsSync(path.join(CGROUP2, 'cgroup.controllers'))) {
        // cgroup v2 only (current Debian): one directory, controllers enabled on the way down.
        const parent = path.join(CGROUP2, 'nommu-ci');
        mkdirSync(parent, { recursive: true });
        for (const sc of [path.join(CGROUP2, 'cgroup.subtree_control'), path.join(parent, 'cgroup.subtree_control')]) {
          try {
            writeFileSync(sc, '+memory +pids');
          } catch {
            /* already on, or not available */
          }
        }
        const d = path.join(parent, safe);
        mkdirSync(d, { recursive: true });
        if (existsSync(path.join(d, 'memory.max'))) writeFileSync(path.join(d, 'memory.max'), String(limits.memoryBytes));
        if (existsSync(path.join(d, 'pids.max'))) writeFileSync(path.join(d, 'pids.max'), String(limits.nproc));
        dirs.unified = d;
      }
      const mem = '/sys/fs/cgroup/memory';
      if (!dirs.unified && existsSync(path.join(mem, 'cgroup.procs'))) {
        const d = path.join(mem, 'nommu-ci', safe);
        mkdirSync(d, { recursive: true });
        writeFileSync(path.join(d, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        dirs.memory = d;
      }
      const pids = '/sys/fs/cgroup/pids';
      if (!dirs.unified && existsSync(path.join(pids, 'cgroup.procs'))) {
        const d = path.join(pids, 'nommu-ci', safe);
        mkdirSync(d, { recursive: true });
        writeFileSync(path.join(d, 'pids.max'), String(limits.nproc));
        dirs.pids = d;
      }
    } catch {
      // A host without writable cgroups still gets rlimits and the namespace kill.
    }
    return dirs.memory || dirs.pids || dirs.unified ? new Cgroup(dirs) : null;
  }

  private all(): string[] {
    return [this.dirs.memory, this.dirs.pids, this.dirs.unified].filter((d): d is string => !!d);
  }

  procsFiles(): string[] {
    return this.all().map((d) => path.join(d, 'cgroup.procs'));
  }

  pids(): number[] {
    const out = new Set<number>();
    for (const f of this.procsFiles()) {
      try {
        for (const l of readFileSync(f, 'utf8').split('\n')) if (l.trim()) out.add(Number(l));
      } catch {
        /* gone */
      }
    }
    return [...out];
  }

  killAll(): void {
    for (const p of this.pids()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  /** Forks refused at pids.max so far (pids.events). */
  forksRefused(): number {
    const d = this.dirs.pids ?? this.dirs.unified;
    if (!d) return 0;
    try {
      const m = /^max (\d+)/m.exec(readFileSync(path.join(d, 'pids.events'), 'utf8'));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  }

  get hasPids(): boolean {
    return !!(this.dirs.pids ?? (this.dirs.unified && existsSync(path.join(this.dirs.unified, 'pids.max'))));
  }

  oom(): boolean {
    const f = this.dirs.memory
      ? path.join(this.dirs.memory, 'memory.oom_control')
      : this.dirs.unified
        ? path.join(this.dirs.unified, 'memory.events')
        : null;
    if (!f) return false;
    try {
      const m = /oom_kill (\d+)/.exec(readFileSync(f, 'utf8'));
      return !!m && Number(m[1]) > 0;
    } catch {
      return false;
    }
  }

  async remove(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      this.killAll();
      let left = false;
      for (const d of this.all()) {
        if (!existsSync(d)) continue;
        try {
          rmdirSync(d);
        } catch {
          left = true;
        }
      }
      if (!left) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Removes the cgroups of sandboxes whose worker died (their names end in `-<worker pid>-<start>`):
 * bwrap --die-with-parent killed their processes, nothing removed the directories.
 */
export function reapCgroups(): void {
  for (const root of ['/sys/fs/cgroup/memory/nommu-ci', '/sys/fs/cgroup/pids/nommu-ci', path.join(CGROUP2, 'nommu-ci')]) {
    let names: string[];
    try {
      names = readdirSync(root);
    } catch {
      continue;
    }
    for (const n of names) {
      const m = /-(\d+)-\d+$/.exec(n);
      if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
      try {
        rmdirSync(path.join(root, n));
      } catch {
        /* still has processes, or gone */
      }
    }
  }
}

/** This process's hard RLIMIT_NPROC: as high as the sandbox's may go without CAP_SYS_RESOURCE. */
function hardNprocLimit(): number | 'unlimited' {
  const m = /^Max processes\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m && /^\d+$/.test(m[1]!) ? Number(m[1]) : 'unlimited';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sandboxArgv(opts: SandboxOptions, limits: Limits, nproc: number | 'unlimited' = limits.nproc): string[] {
  // No --new-session: the wrapper shell already leads a session of its own (spawned detached), so
  // the sandbox has no controlling terminal to inject input into; a second setsid() would put it
  // in a fresh scheduler autogroup at nice 0, where no nice value inside it counts against the API.
  const bw = ['bwrap', '--unshare-all', '--die-with-parent', '--cap-drop', 'ALL'];
  bw.push(...baseArgs());
  bw.push('--proc', '/proc', '--dev', '/dev');
  bw.push('--size', String(opts.shmBytes ?? 2 * GiB), '--tmpfs', '/dev/shm');
  bw.push('--bind', opts.tmpDir, '/tmp');
  for (const m of opts.mounts) bw.push(m.rw ? '--bind' : '--ro-bind', m.host, m.path);
  bw.push('--chdir', opts.cwd ?? '/');
  bw.push('--', ...opts.argv);
  const pl = [
    'nice',
    '-n',
    String(SANDBOX_NICE),
    'prlimit',
    `--fsize=${limits.fsizeBytes}`,
    `--nofile=${limits.nofile}`,
    `--cpu=${limits.cpuSeconds}`,
    `--nproc=${nproc}`,
    '--',
  ];
  const drop = isRoot() ? ['setpriv', `--reuid=${SANDBOX_UID}`, `--regid=${SANDBOX_GID}`, '--clear-groups', '--'] : [];
  return [...pl, ...drop, ...bw];
}

/** Runs argv in the sandbox; resolves when it and everything it started is gone. Never rejects on exit codes. */
/** How often a quiet output file is looked at again: the streaming latency it adds at most. */
const TAIL_POLL_MS = 25;

export async function runSandboxed(opts: SandboxOptions): Promise<SandboxResult> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const start = Date.now();
  const cg = Cgroup.create(`${opts.name}-${process.pid}-${start}`, limits);
  // RLIMIT_NPROC counts every process of the sandbox uid on the host, other jobs' included: one
  // job's fork bomb at that limit would make every other job's forks fail. Where the job has a
  // pids cgroup of its own, that is its exact limit, and the rlimit is lifted to its hard maximum.
  const inner = sandboxArgv(opts, limits, cg?.hasPids ? hardNprocLimit() : limits.nproc);
  // The wrapper shell joins the cgroups (as root, before dropping privileges), merges stderr into
  // stdout for the exec'd chain, and then becomes nice -> prlimit -> setpriv -> bwrap (same pid).
  // With CONFIG_SCHED_AUTOGROUP (Debian's default) CPU time is shared between sessions first and
  // a process's nice only counts within its session, so the session itself is niced too.
  const procs = cg?.procsFiles() ?? [];
  const first = opts.outputFile ? 2 : 1;
  const script =
    `{ echo ${SANDBOX_NICE} > /proc/self/autogroup; } 2>/dev/null; ` +
    procs.map((_, i) => `echo $$ > "$${i + first}" || exit 125; `).join('') +
    (opts.outputFile ? `out=$1; shift ${procs.length + 1}; exec "$@" >>"$out" 2>&1` : `shift ${procs.length}; exec "$@" 2>&1`);
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    ...opts.env,
  };
  // Output already in the file (an earlier boot of the same job) is not this run's.
  const outputStart = opts.outputFile ? createdSize(opts.outputFile) : 0;
  const child = spawn('/bin/sh', ['-c', script, 'sh', ...(opts.outputFile ? [opts.outputFile] : []), ...procs, ...inner], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
    detached: true,
  });
  let killed: SandboxResult['killed'] = null;
  const kill = (why: 'timeout' | 'abort'): void => {
    if (killed) return;
    killed = why;
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    cg?.killAll();
  };
  const timer = opts.timeoutMs !== undefined ? setTimeout(() => kill('timeout'), Math.max(0, opts.timeoutMs)) : null;
  const onAbort = (): void => kill('abort');
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  let head = '';
  const out = (b: Buffer): void => {
    if (head.length < 512) head += b.toString('utf8', 0, Math.min(b.length, 512));
    opts.onOutput?.(b);
  };
  child.stdout.on('data', out);
  child.stderr.on('data', out);
  const tail = opts.outputFile ? tailFile(opts.outputFile, outputStart, out) : null;
  const res = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (e) => {
      opts.onOutput?.(Buffer.from(`nommu-ci: cannot start sandbox: ${e.message}\n`));
      resolve({ code: 127, signal: null });
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  await tail?.finish();
  if (timer) clearTimeout(timer);
  opts.signal?.removeEventListener('abort', onAbort);
  let oom = false;
  let forksRefused = 0;
  if (cg) {
    oom = cg.oom();
    forksRefused = cg.forksRefused();
    await cg.remove();
  }
  // The sandbox itself failed to start (bwrap, setpriv or prlimit complained first): an
  // infrastructure problem, not the job's.
  const setup = /^(bwrap|setpriv|prlimit|nice|nommu-ci): .*/m.exec(head);
  const setupError = res.code !== 0 && !killed && setup && head.startsWith(setup[0]) ? setup[0] : null;
  return { ...res, killed, oom, forksRefused, pidsMax: limits.nproc, setupError, ms: Date.now() - start };
}

/** A sandbox result as a short phrase for messages: "exit 2", "killed (timeout)", "out of memory". */
export function describeExit(r: SandboxResult): string {
  const how = r.killed ? `killed (${r.killed})` : r.oom ? 'killed: memory limit exceeded' : r.signal ? `killed by ${r.signal}` : r.code === 125 ? 'sandbox setup failed' : `exit ${r.code}`;
  const limit = processLimit(r);
  return limit ? `${how}; ${limit}` : how;
}

/** "process limit reached: ..." when the job's pids cgroup refused forks, else null. */
export function processLimit(r: SandboxResult): string | null {
  return r.forksRefused > 0 ? `process limit reached: ${r.forksRefused} forks refused at ${r.pidsMax} processes` : null;
}

/** Throws (infrastructure) if the sandbox could not even start. */
export function assertSandboxStarted(r: SandboxResult): void {
  if (r.setupError) throw new Error(`sandbox failed to start: ${r.setupError}`);
}

/** Runs `true` in the sandbox: a worker that cannot sandbox must not take jobs. */
export async function sandboxSelfTest(tmpDir: string): Promise<void> {
  let out = '';
  const r = await runSandboxed({ name: 'selftest', argv: ['true'], mounts: [], tmpDir, timeoutMs: 30_000, onOutput: (b) => (out += b.toString()) });
  if (r.code !== 0) throw new Error(`the sandbox does not work on this host (${describeExit(r)}): ${out.trim().slice(0, 500)}`);
}

/** Follows a growing file, handing each new chunk to onData, until finish() has read it to its end. */
function tailFile(file: string, from: number, onData: (b: Buffer) => void): { finish(): Promise<void> } {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(1 << 16);
  let pos = from;
  let stopping = false;
  const pump = (async () => {
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n > 0) {
          pos += n;
          onData(Buffer.from(buf.subarray(0, n)));
          await new Promise((r) => setImmediate(r));
        } else if (stopping) {
          return;
        } else {
          await new Promise((r) => setTimeout(r, TAIL_POLL_MS));
        }
      }
    } finally {
      closeSync(fd);
    }
  })();
  return {
    async finish() {
      stopping = true;
      await pump;
    },
  };
}

/** Creates `file` if need be; returns its size. */
function createdSize(file: string): number {
  closeSync(openSync(file, 'a'));
  return statSync(file).size;
}
