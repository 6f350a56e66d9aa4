/**
 * The Kconfig a kselftest kernel needs on top of UML's defaults: a host directory as root
 * (hostfs), the pseudo filesystems our init mounts, program loaders (binfmt_elf with an MMU;
 * without one, binfmt_elf_fdpic, which Kconfig turns on by itself), and what the enabled targets'
 * tests exercise (POSIX timers, SysV IPC, userfaultfd, pagemap).
 * Every line here sticks after `make ARCH=um olddefconfig` on 7.2 (checked by configure()'s
 * validation in the integration test), with and without an MMU.
 */
import { createHash } from 'node:crypto';
import { formatKconfig, parseKconfig } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import type { Fragment } from '../stages/config.js';

const LINES = [
  'CONFIG_HOSTFS=y',
  'CONFIG_PROC_FS=y',
  'CONFIG_SYSFS=y',
  'CONFIG_TMPFS=y',
  'CONFIG_DEVTMPFS=y',
  'CONFIG_BINFMT_ELF=y',
  'CONFIG_BINFMT_SCRIPT=y',
  'CONFIG_UNIX98_PTYS=y',
  'CONFIG_SYSVIPC=y',
  'CONFIG_HIGH_RES_TIMERS=y',
  'CONFIG_FUTEX=y',
  'CONFIG_EVENTFD=y',
  'CONFIG_TIMERFD=y',
  'CONFIG_USERFAULTFD=y',
  'CONFIG_PROC_PAGE_MONITOR=y',
];

/** Only meaningful (and only selectable) with an MMU: tmpfs needs shmem, which needs an MMU. */
const MMU_ONLY = new Set(['CONFIG_TMPFS=y', 'CONFIG_BINFMT_ELF=y', 'CONFIG_USERFAULTFD=y', 'CONFIG_PROC_PAGE_MONITOR=y']);

/** The Kconfig lines of a kselftest kernel, without CONFIG_MMU itself. */
export function kselftestKconfig(mmu: boolean): string[] {
  return mmu ? [...LINES] : LINES.filter((l) => !MMU_ONLY.has(l));
}

/**
 * The whole fragment of a kselftest job's kernel, in the shape stages/build.ts's ensureBase and
 * configure() take: our lines, then the job's kconfig_add (which win), then CONFIG_MMU=n for the
 * no-MMU kernel. Unlike KUnit jobs, no KUnit config and no arch_uml.config (KUnit's own output
 * would come first on the console and look like ours).
 */
export function kselftestFragment(o: { mmu: boolean; kconfig_add?: readonly string[] }): Fragment {
  const text = [...kselftestKconfig(o.mmu), ...(o.kconfig_add ?? [])].join('\n') + '\n';
  const { options, errors } = parseKconfig(text);
  if (errors.length > 0) {
    const e = errors[0]!;
    throw new StageError('config', `kconfig_add: ${e.message}: ${JSON.stringify(e.text)}`);
  }
  if (!o.mmu) options.set('CONFIG_MMU', 'n');
  const out = formatKconfig(options);
  return { options, text: out, hash: createHash('sha256').update(`kselftest\n${out}`).digest('hex') };
}
