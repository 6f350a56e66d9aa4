/**
 * Faults, traps and host signals on the real no-MMU UML kernel (our series), in the sandbox:
 * - kernel-images/rootfs/tests/faults.c: every kind of fault or trap a program can cause (NULL,
 *   wild, non-canonical jumps and jumps into kernel text; ud2, int3, divide error, with and
 *   without handlers that check the signal and move RIP on; the AC, TF and DF flags; unaligned
 *   accesses with AC set, by the program and by the kernel on its behalf; a stack pointer outside
 *   memory; bad pointers handed to system calls) ends as that program's signal or the call's
 *   error, and the kernel runs the next case; fpstate too, both with the host's own way of
 *   switching the fs/gs base and with `nofsgsbase` (arch_prctl(), the fallback);
 * - SIGTERM and SIGINT from the host stop the UML process cleanly (exit 1 after its cleanup,
 *   last_ditch_exit) while a program spins in user code with a zero fs base and AC and DF set;
 *   SIGHUP is ignored (UML ignores it with or without an MMU) and a SIGTERM after it still works.
 *
 * On each built-in catalogue kernel (debian-7.2 with kernel-images/nommu, debian-7.3 with its port
 * nommu-7.3). Uses each one's no-MMU kselftest kernel (the worker's label and config:
 * nommu.integration.test.ts and kselftest-user.test.ts build the same ones, so cached builds);
 * each boot takes seconds.
 */
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, loadCatalog, loadSeries, type KernelSource, type SeriesInfo } from '@nommu-ci/shared';
import { removeTree } from '../exec.js';
import { runSandboxed, type SandboxResult } from '../sandbox.js';
import { ensureBase, ownedDir } from '../stages/build.js';
import { seriesLabel, seriesTree } from '../stages/source.js';
import { kselftestFragment } from './plan.js';
import { BUSYBOX, buildInit, ROOTFS_MOUNT, rootfsBootArgs } from './rootfs.js';

/** The built-in catalogue (an operator's NOMMU_CI_KERNELS trees are not ours to test). */
const KERNELS = loadCatalog({});

/** faults.c's cases and what each must end as (on any x86_64 Linux, MMU or not). */
const FAULT_CASES: [string, string][] = [
  ['null-call', 'killed by Segmentation fault'],
  ['null-call-handler', 'exit 0'],
  ['wild-jump', 'killed by Segmentation fault'],
  ['noncanonical-jump', 'killed by Segmentation fault'],
  ['kernel-text', 'killed by Segmentation fault'],
  ['ud2', 'killed by Illegal instruction'],
  ['ud2-handler', 'exit 0'],
  ['int3', 'killed by Trace/breakpoint trap'],
  ['int3-handler', 'exit 0'],
  ['divide-error', 'killed by Arithmetic exception'],
  ['divide-error-handler', 'exit 0'],
  ['ac-unaligned-load', 'killed by Bus error'],
  ['ac-unaligned-load-handler', 'exit 0'],
  ['ac-unaligned-syscalls', 'exit 0'],
  ['flags-survive-syscall', 'exit 0'],
  ['trap-flag', 'killed by Trace/breakpoint trap'],
  ['trap-flag-handler', 'exit 0'],
  ['bad-stack', 'killed by Segmentation fault'],
  ['bad-stack-handler', 'killed by Segmentation fault'],
  ['bad-stack-altstack', 'exit 0'],
  ['bad-syscall-pointers', 'exit 0'],
  ['ptrace-singlestep', 'exit 0'],
];

/** One boot of the no-MMU kernel with our /init; `onLine` may act on console lines (send signals). */
interface Boot {
  exit: SandboxResult;
  console: string;
  umid: string;
}

/** One kernel's test directories and its built no-MMU kernel. */
interface Machine {
  jobDir: string;
  tmpDir: string;
  root: string;
  kernelDir: string;
}

let bootNo = 0;

async function bootRoot(m: Machine, extraArgs: string[], initArgs: string[], onLine?: (line: string, umid: string) => void): Promise<Boot> {
  const n = ++bootNo;
  const umid = `nommu-faults-${process.pid}-${n}`;
  const consoleLog = path.join(m.jobDir, `console-${n}.log`);
  let partial = '';
  const exit = await runSandboxed({
    name: umid,
    argv: ['/build/linux', ...rootfsBootArgs(256, '/init'), `umid=${umid}`, ...extraArgs, '--', ...initArgs],
    mounts: [
      { host: m.kernelDir, path: '/build' },
      { host: m.root, path: ROOTFS_MOUNT, rw: true },
    ],
    tmpDir: m.tmpDir,
    cwd: '/tmp',
    env: { TMPDIR: '/dev/shm' },
    shmBytes: 512 * 1024 * 1024,
    timeoutMs: 240_000,
    outputFile: consoleLog,
    onOutput: (b) => {
      const parts = (partial + b.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) onLine?.(l, umid);
    },
  });
  return { exit, console: readFileSync(consoleLog, 'utf8'), umid };
}

/**
 * Host pid of the UML kernel started with umid=<umid>: the /build/linux process of that command
 * line (bwrap's has it too) whose parent is not one (UML's helper threads are its children).
 */
function umlPid(umid: string): number | null {
  const isUml = (pid: string): boolean => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[0] === '/build/linux' && argv.includes(`umid=${umid}`);
    } catch {
      return false;
    }
  };
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (!isUml(pid)) continue;
    try {
      const ppid = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      if (ppid && !isUml(ppid)) return Number(pid);
    } catch {
      continue;
    }
  }
  return null;
}

/** `# <case>: <what happened>, expected <...>` lines of faults' TAP, and its ok/not ok lines. */
function faultResults(console: string): { seen: Map<string, string>; ok: Map<string, boolean> } {
  const seen = new Map<string, string>();
  const ok = new Map<string, boolean>();
  for (const l of console.split('\n')) {
    const d = /^# ([a-z0-9-]+): (.*), expected /.exec(l);
    if (d) seen.set(d[1]!, d[2]!);
    const r = /^(not )?ok \d+ ([a-z0-9-]+)/.exec(l);
    if (r && FAULT_CASES.some(([c]) => c === r[2])) ok.set(r[2]!, !r[1]);
  }
  return { seen, ok };
}

/** fpstate's result lines. */
const fpstateResults = (console: string): string[] =>
  console.split('\n').filter((l) => /^(not )?ok \d+ /.test(l) && !FAULT_CASES.some(([c]) => l.includes(` ${c}`)));

const fsgsPath = (console: string): string | undefined => /fs\/gs base switched with (\S+)/.exec(console)?.[1];
const hostHasFsgsbase = (): boolean => /^flags\s*:.*\bfsgsbase\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));

/** Builds (or reuses) the kernel's no-MMU kselftest kernel and the root filesystem of faults and fpstate. */
async function prepare(kernel: KernelSource, series: SeriesInfo): Promise<Machine> {
  const jobDir = path.join(CACHE_DIR, 'jobs', `nommu-faults-it-${process.pid}-${kernel.name}`);
  const tmpDir = path.join(jobDir, 'tmp');
  const root = path.join(jobDir, 'root');
  await removeTree(jobDir);
  ownedDir(tmpDir);
  const tree = await seriesTree(kernel, series);
  const base = await ensureBase(
    // The worker's label and config for no-MMU kselftest jobs on this kernel: a cached build.
    { label: `${kernel.name}-${seriesLabel(series).replace('@', '-')}`, tree, fragment: kselftestFragment({ mmu: false }) },
    { tmpDir, log: () => undefined, name: `nommu-faults-base-${process.pid}`, onStage: () => undefined },
  );
  const init = await buildInit('static-pie');
  for (const d of [root, path.join(root, 'bin'), path.join(root, 'proc'), path.join(root, 'dev'), path.join(root, 'tmp')]) ownedDir(d);
  copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  for (const a of ['sh', 'mount', 'poweroff']) symlinkSync('busybox', path.join(root, 'bin', a));
  for (const p of ['faults', 'fpstate']) copyFileSync(init.programs[p]!, path.join(root, p));
  writeFileSync(
    path.join(root, 'init'),
    ['#!/bin/sh', 'mount -t proc proc /proc', '[ "$1" = spin ] && exec /faults spin', '/faults', '/fpstate', 'poweroff -f', ''].join('\n'),
  );
  for (const f of ['bin/busybox', 'faults', 'fpstate', 'init']) chmodSync(path.join(root, f), 0o755);
  return { jobDir, tmpDir, root, kernelDir: base.dir };
}

for (const kernel of KERNELS) {
  const series = loadSeries(kernel.seriesDir);
  describe.skipIf(!kernel.available || !series)(`faults and host signals on the no-MMU UML kernel: ${kernel.name}`, () => {
    let m: Machine;
    let defaultBoot: Boot;
    let fallbackBoot: Boot;

    beforeAll(async () => {
      m = await prepare(kernel, series!);
      defaultBoot = await bootRoot(m, [], []);
      fallbackBoot = await bootRoot(m, ['nofsgsbase'], []);
      for (const [name, b] of [['default', defaultBoot], ['nofsgsbase', fallbackBoot]] as const) {
        const { seen, ok } = faultResults(b.console);
        console.log(`faults on ${kernel.name} ${kernel.version} (${name}): ${[...seen].map(([c, r]) => `${c}: ${r} (${ok.get(c) ? 'ok' : 'NOT OK'})`).join('; ')}`);
      }
    }, 2_400_000);

    afterAll(async () => {
      if (m && !process.env.NOMMU_CI_KEEP_TEST_DIRS) await removeTree(m.jobDir);
    });

    it('every fault or trap of a program ends as its own signal or error, and the kernel runs on', () => {
      const { seen, ok } = faultResults(defaultBoot.console);
      expect([...seen]).toEqual(FAULT_CASES);
      expect([...ok].filter(([, v]) => !v)).toEqual([]);
      expect(defaultBoot.console).not.toMatch(/Kernel panic|Kernel mode (fault|signal)/);
      // The kernel went on after the last case: fpstate ran and the kernel powered off.
      expect(fpstateResults(defaultBoot.console).every((l) => l.startsWith('ok'))).toBe(true);
      expect(fpstateResults(defaultBoot.console).length).toBeGreaterThan(0);
      expect([defaultBoot.exit.code, defaultBoot.exit.signal, defaultBoot.exit.killed]).toEqual([0, null, null]);
    });

    it('the XSAVE size comes from a real host signal frame and a round trip keeps the vector registers', () => {
      expect(defaultBoot.console).toMatch(/no-MMU user space: \d+ bytes of XSAVE state per host signal frame \(ptrace offers \d+\), features 0x[0-9a-f]+; [xyz]mm0-\d+ survive a round trip/);
    });

    it('with nofsgsbase the fs/gs base is switched with arch_prctl() and everything passes', () => {
      expect(fsgsPath(fallbackBoot.console)).toBe('arch_prctl');
      const { seen, ok } = faultResults(fallbackBoot.console);
      expect([...seen]).toEqual(FAULT_CASES);
      expect([...ok].filter(([, v]) => !v)).toEqual([]);
      expect(fpstateResults(fallbackBoot.console).length).toBeGreaterThan(0);
      expect(fpstateResults(fallbackBoot.console).filter((l) => l.startsWith('not ok'))).toEqual([]);
      expect([fallbackBoot.exit.code, fallbackBoot.exit.signal]).toEqual([0, null]);
    });

    it('without nofsgsbase the host decides: wrfsbase where it has FSGSBASE (else this variant is skipped)', (ctx) => {
      // The host's own word, not the kernel's: a kernel that never used wrfsbase must not pass here.
      if (!hostHasFsgsbase()) {
        expect(fsgsPath(defaultBoot.console)).toBe('arch_prctl');
        ctx.skip('this host has no FSGSBASE: only the arch_prctl() path exists here, tested above');
      }
      expect(fsgsPath(defaultBoot.console)).toBe('wrfsbase/wrgsbase');
    });

    // UML ignores SIGHUP (with or without an MMU: it survives its terminal going away); a SIGTERM
    // after it must still stop it cleanly. bwrap, UML's parent in the sandbox, passes on its exit code.
    for (const signals of [['SIGTERM'], ['SIGINT'], ['SIGHUP', 'SIGTERM']] as const) {
      it(`${signals.join(' then ')} from the host while a program spins in user code: UML stops cleanly`, async () => {
        let seen = false;
        const sent: string[] = [];
        const b = await bootRoot(m, [], ['spin'], (line, umid) => {
          if (seen || !line.includes('faults: spinning in user code')) return;
          seen = true;
          // Let it spin a little, past the write and into the loop; one signal a second.
          signals.forEach((sig, i) =>
            setTimeout(() => {
              const pid = umlPid(umid);
              if (pid) process.kill(pid, sig);
              sent.push(pid ? sig : `${sig}: no UML process`);
            }, 500 + 1000 * i),
          );
        });
        expect(sent).toEqual([...signals]);
        expect(b.exit.killed).toBeNull();
        // last_ditch_exit(): UML's cleanup, then exit(1).
        expect({ code: b.exit.code, signal: b.exit.signal }).toEqual({ code: 1, signal: null });
        expect(b.console).not.toMatch(/Kernel panic|Segmentation fault|Kernel mode/);
        expect(existsSync(path.join(m.tmpDir, '.uml', b.umid))).toBe(false);
      }, 300_000);
    }
  });
}
