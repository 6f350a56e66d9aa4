/**
 * The compilers kselftest programs are built with, per link mode, in the order they are tried.
 *
 * MMU (`static`): glibc, plain -static, as the tree's Makefiles expect.
 *
 * no-MMU (`static-pie`): musl first, glibc for what musl does not build. glibc's pthread_create
 * mprotect()s each thread stack's guard page and gives up on the ENOSYS a no-MMU kernel answers;
 * musl ignores that failure, so threaded programs only run when built against musl (Debian's
 * musl-tools; the kernel's UAPI headers come from KHDR_INCLUDES as for glibc). A program that
 * does not build against musl (glibc-only interfaces, libraries with no musl build) falls back to
 * glibc, which runs everything but threads. Both link static-pie: glibc with -z norelro (its
 * start-up gives up when it cannot mprotect() RELRO), musl through kernel-images/rootfs's
 * static-pie.specs (musl-gcc's own specs ignore -static-pie).
 *
 * musl's gettimeofday() and settimeofday() ignore their struct timezone (the kernel's sys_tz can
 * be neither read nor set: timers/set-tz fails on any kernel); musl programs are linked with
 * kernel-images/rootfs/tests/musl-timezone.c, which makes both system calls as glibc does.
 *
 * Programs that bring their own start-up code (-nostartfiles / -nostdlib, e.g. size's get_size)
 * are built with glibc even in the musl pass: Debian's musl is built with the stack protector,
 * so even its syscall() reads the canary through a thread pointer that only musl's start-up
 * sets, while glibc's syscall() needs no start-up (and that is what the MMU build uses).
 * Every no-MMU program starts at pie-start.c's `_start_pie`, which applies the program's
 * relative relocations and jumps to its `_start`: nothing else relocates a program that brings
 * its own `_start`, and for the others (libc's rcrt1.o relocates again) it is a second,
 * idempotent pass (a RELATIVE relocation's value does not depend on what is in the slot).
 *
 * The sandbox sees the tools directory (toolsDir()) read-only at TOOLS_MOUNT.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KERNEL_IMAGES_DIR } from '@nommu-ci/shared';
import { mustRun } from '../exec.js';

export type Link = 'static' | 'static-pie';
export type Libc = 'glibc' | 'musl';

export interface Toolchain {
  libc: Libc;
  /** make's CC (and the linker driver of custom rules). */
  cc: string;
  /** USERLDFLAGS: what lib.mk adds to LDFLAGS. */
  ldflags: string;
}

/** Inside the build sandbox. */
export const TOOLS_MOUNT = '/nommu-ci-tools';

const PIE_START_SRC = path.join(KERNEL_IMAGES_DIR, 'rootfs/tests/pie-start.c');
const STATIC_PIE_SPECS = path.join(KERNEL_IMAGES_DIR, 'rootfs/static-pie.specs');
const MUSL_SPECS = '/usr/lib/x86_64-linux-musl/musl-gcc.specs';
const MUSL_LIBC = '/usr/lib/x86_64-linux-musl/libc.a';
const MUSL_TIMEZONE_SRC = path.join(KERNEL_IMAGES_DIR, 'rootfs/tests/musl-timezone.c');

/**
 * The no-MMU compilers, as scripts in the tools directory: they add pie-start only when they
 * link (gcc warns about an object on a compile-only command line).
 */
const PIE_START = `link=yes
for a in "$@"; do
	case "$a" in
	-nostartfiles|-nostdlib) [ "$libc" = musl ] && exec ${TOOLS_MOUNT}/glibc-cc "$@";;
	-c|-S|-E|-M|-MM) link=;;
	esac
done
[ -n "$link" ] && set -- -Wl,-e,_start_pie ${TOOLS_MOUNT}/pie-start.o $libc_objects "$@"
`;
const SCRIPTS: Record<string, string> = {
  'glibc-cc': `#!/bin/sh\nlibc=glibc\nlibc_objects=\n${PIE_START}exec gcc -static-pie -Wl,-z,norelro "$@"\n`,
  // Programs with their own start-up code go to glibc (see above).
  'musl-cc': `#!/bin/sh\nlibc=musl\nlibc_objects=${TOOLS_MOUNT}/musl-timezone.o\n${PIE_START}exec x86_64-linux-gnu-gcc -specs=${MUSL_SPECS} -specs=${TOOLS_MOUNT}/static-pie.specs -static-pie "$@"\n`,
};

export const TOOLCHAINS: Record<Link, Toolchain[]> = {
  static: [{ libc: 'glibc', cc: 'gcc -static', ldflags: '-static' }],
  'static-pie': [
    { libc: 'musl', cc: `${TOOLS_MOUNT}/musl-cc`, ldflags: '-static-pie' },
    { libc: 'glibc', cc: `${TOOLS_MOUNT}/glibc-cc`, ldflags: '-static-pie -Wl,-z,norelro' },
  ],
};

/** What the tools directory and the toolchains are made of (part of the build cache key). */
export function toolsKey(): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(TOOLCHAINS));
  h.update(JSON.stringify(SCRIPTS));
  for (const f of [PIE_START_SRC, STATIC_PIE_SPECS, MUSL_TIMEZONE_SRC]) h.update(readFileSync(f));
  try {
    const s = statSync(MUSL_LIBC);
    h.update(`${s.size} ${s.mtimeMs}`);
  } catch {
    h.update('no musl');
  }
  return h.digest('hex').slice(0, 12);
}

/**
 * Makes `dir` (once per toolsKey()): pie-start.o and musl-timezone.o, compiled here from our
 * repository (trusted), static-pie.specs and the compiler scripts. pie-start.o is compiled without
 * the stack protector: it runs before anything has set a thread pointer.
 */
export async function toolsDir(dir: string, signal?: AbortSignal): Promise<string> {
  const stamp = path.join(dir, '.nommu-ci-complete');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === toolsKey()) return dir;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await mustRun(['gcc', '-c', '-O2', '-fPIE', '-fno-stack-protector', '-o', path.join(tmp, 'pie-start.o'), PIE_START_SRC], { signal });
  if (existsSync(MUSL_SPECS)) {
    await mustRun(['x86_64-linux-gnu-gcc', `-specs=${MUSL_SPECS}`, '-c', '-O2', '-fPIE', '-o', path.join(tmp, 'musl-timezone.o'), MUSL_TIMEZONE_SRC], { signal });
  }
  writeFileSync(path.join(tmp, 'static-pie.specs'), readFileSync(STATIC_PIE_SPECS));
  for (const [name, text] of Object.entries(SCRIPTS)) {
    writeFileSync(path.join(tmp, name), text);
    chmodSync(path.join(tmp, name), 0o755);
  }
  writeFileSync(path.join(tmp, '.nommu-ci-complete'), toolsKey());
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}
