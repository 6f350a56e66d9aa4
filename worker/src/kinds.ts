/**
 * What differs between job kinds: the Kconfig fragment of the kernel, and how that kernel is
 * booted and read (command line, extra mounts, console reader, idle timeout). Source, patch,
 * build, streaming and storing are one pipeline for all of them (processor.ts).
 */
import { availability, loadBootSelftests, type JobRequest } from '@nommu-ci/shared';
import { StageError } from './errors.js';
import { kselftestBootPlan, kselftestFragment, prepareKselftest } from './kselftest/plan.js';
import { kernelArgs } from './stages/boot.js';
import { mergeFragment, type Fragment } from './stages/config.js';
import type { BootPlan } from './stages/boots.js';
import { bootSelftestReader, kunitReader } from './stages/console-readers.js';
import { selectionOf, shardsFor } from './kunit/job.js';
import { selectionArgs } from './kunit/sharded.js';

/** What a kind may need after the build: the tree the kernel was built from, and the job's room. */
export interface PrepareContext {
  /** The tree as built: pristine, series-applied or the job's patched view. */
  srcDir: string;
  /** Names the unpatched tree, for caches shared between jobs; null for a patched tree. */
  cacheKey: string | null;
  jobDir: string;
  tmpDir: string;
  signal: AbortSignal;
  deadline: number;
  log: (b: Buffer) => void;
  name: string;
}

export interface KindPlan {
  fragment: Fragment;
  /** Runs after the build; says how to boot. */
  prepare(ctx: PrepareContext): Promise<BootPlan>;
}

/**
 * Boot-time selftests run as initcalls; KUnit is built in only so that kunit_shutdown=halt ends
 * the boot once they are done, with every KUnit suite filtered out. initcall_debug brackets each
 * test's output; the larger log buffer keeps the first tests' lines, printed before UML's
 * console is up.
 */
export const BOOT_SELFTEST_ARGS = [...kernelArgs('nommu-ci.none'), 'initcall_debug', 'loglevel=8', 'log_buf_len=32M'];

export function planKind(request: JobRequest, tree: string, mmu: boolean): KindPlan {
  switch (request.kind) {
    case 'kunit': {
      // Time-travel only pays where suites are spread over kernels by time mode; a serial run keeps
      // the config (and so the cached base builds) it had.
      const fragment = mergeFragment(tree, { kunitconfig: request.kunitconfig, kconfig_add: request.kconfig_add, mmu, timeTravel: shardsFor(request) > 1 });
      return { fragment, prepare: async () => ({ args: selectionArgs(selectionOf(request)), reader: kunitReader() }) };
    }
    case 'boot-selftest': {
      const catalog = loadBootSelftests();
      const selected = request.selftests.map((n) => {
        const t = catalog.find((x) => x.name === n);
        if (!t) throw new StageError('config', `boot selftest "${n}" is not in kernel-images/boot-selftests/catalog.json`);
        const a = availability(t, tree);
        if (!a.offered) throw new StageError('config', `boot selftest "${n}": this tree has no ${t.source} or CONFIG_${a.symbol}`);
        if (!mmu && !a.nommu) throw new StageError('config', `boot selftest "${n}": CONFIG_${a.symbol} depends on MMU`);
        return t;
      });
      const kunitconfig = ['CONFIG_KUNIT=y', ...selected.flatMap((t) => t.kconfig)].join('\n') + '\n';
      const fragment = mergeFragment(tree, { kunitconfig, kconfig_add: request.kconfig_add, mmu });
      return { fragment, prepare: async () => ({ args: BOOT_SELFTEST_ARGS, reader: bootSelftestReader(selected) }) };
    }
    case 'kselftest': {
      const fragment = kselftestFragment({ mmu, kconfig_add: request.kconfig_add });
      return {
        fragment,
        async prepare(ctx) {
          const p = await prepareKselftest({ request, mmu, ...ctx });
          return kselftestBootPlan(p);
        },
      };
    }
  }
}
